// The plan's hooks and the stage's load as pure decisions (workflows/machine/hook-steps.ts): a hand-built state and a
// hook's answer in, the commands out, with no port and no server. Examples read like the playbook (a smoke test
// before any traffic, a migration check after a stage, a confirm gate before promotion, load at the canary); then
// fast-check drives random plans of hooks through random answers with the pure functions alone (a small loop below
// plays the carrier: it asks, answers, and carries out the commands, continuing as new at random waits), and checks
// what a person relies on. Last, runHooks on a machine is shown to ask exactly the steps the decisions give.
import fc from 'fast-check';
import type { HookRunResult } from '../../activities/hooks/types';
import type { Hook, HookPoint } from '../../workflows/plan-hooks';
import type { PlanSpec } from '../../workflows/plan';
import {
  HOOK_RUNS_KEPT,
  askPerson,
  failedAnswer,
  hookAnswered,
  hookAsk,
  hookOutcome,
  hookStage,
  hookWaitOver,
  loadStart,
  loadStartFailed,
  loadStarted,
  loadStop,
  loadStopFailed,
  loadStopped,
  nextHook,
  openQuestion,
  startLoadStep,
  type HookAsk,
  type HookCommand,
  type HookWaitCommand,
} from '../../workflows/machine/hook-steps';
import { runHooks } from '../../workflows/machine/hooks';
import { RolloutMachine } from '../../workflows/machine/machine';
import { SimPort } from '../../workflows/machine/sim';
import { carryOver, initialState, migrateCarried, type RolloutState } from '../../workflows/machine/state';
import { transition } from '../../workflows/machine/transitions';
import { RolloutView } from '../../workflows/machine/views';
import type { Plan } from '../../workflows/types';
import { planOf, simContext, RUNS, SEED, T0, MINUTE } from './machine-sim';

const LABEL = 'ns/app v2';
const APPROVE = 'canary approve canary.ns.app';
const ABORT = 'canary abort canary.ns.app --reason "why"';

type HookSpec = Record<string, unknown>;
const http = (name: string, extra: HookSpec = {}): HookSpec => ({
  name,
  http: { url: `https://hooks.example.com/${name}` },
  ...extra,
});

const STAGES = [{ weight: 10, hold: '10m' }, { weight: 50, hold: '10m' }, { weight: 100 }];

function planWith(hooks: Record<string, HookSpec[]>, load?: Record<string, unknown>): Plan {
  const p = planOf({
    analysis: { interval: '1m', checks: [] },
    stages: STAGES,
    promotion: { cleanupDelay: '0s' },
    hooks,
    ...(load ? { load } : {}),
  } as unknown as PlanSpec);
  if (!p) throw new Error(`invalid plan: ${JSON.stringify(hooks)}`);
  return p;
}

/** A rollout at stage `stage` (0-based), as the walk leaves it there: entered or not, at its weight or the one before. */
function stateAt(stage: number, entered: boolean): RolloutState {
  return {
    ...initialState(),
    neverStuck: true,
    machineV2: true,
    touched: {},
    canaryReady: true,
    stageIndex: stage,
    stageEntered: entered,
    weight: entered ? STAGES[stage].weight : stage > 0 ? STAGES[stage - 1].weight : 0,
    waitStartedAt: T0,
  };
}

const viewOf = (p: Plan, stage = 0, entered = false) =>
  new RolloutView(stateAt(stage, entered), simContext(p));
const hookOf = (v: RolloutView, point: HookPoint, i = 0): Hook => v.plan.hooks![point]![i];

const OK: HookRunResult = { result: 'ok', detail: 'HTTP 200', tookMs: 3 };
const NOT_YET: HookRunResult = { result: 'not_ready', detail: 'HTTP 409 (not yet)', tookMs: 3 };
const FAILED: HookRunResult = { result: 'failed', detail: 'HTTP 500 from hooks.example.com', tookMs: 4 };

/** Asks `hook` at `now`, answers `r`, and returns what follows (hookAnswered, then hookOutcome). */
function answered(
  v: RolloutView,
  hook: Hook,
  r: HookRunResult,
  now = T0,
): { ask: HookAsk; then: HookCommand[] } {
  const ask = hookAsk(v, hook, hookStage(v), now);
  expect(hookAnswered(v, ask, r)).toEqual([{ type: 'publish' }]);
  return { ask, then: hookOutcome(v, ask, r, now) };
}

describe('hooks, as the playbook tells it', () => {
  it('the step for an ask: the hook, its limits, the stage and weight, and a key stable for its retries', () => {
    const v = viewOf(
      planWith({ afterStage: [http('migrate-check', { http: { url: 'https://x/y', retries: 4 } })] }),
      1,
      true,
    );
    const ask = hookAsk(v, hookOf(v, 'afterStage'), 2, T0);
    expect(ask).toMatchObject({ type: 'runHook', stage: 2, attempt: 1, startedAt: T0 });
    expect(ask.step).toEqual({
      policy: 'hook',
      step: 'runHook',
      summary: 'hook afterStage migrate-check: stage 2',
      hook: { timeoutMs: hookOf(v, 'afterStage').action.timeoutMs, attempts: 5, heartbeat: false },
      args: [
        {
          target: { app: 'app', namespace: 'ns' },
          hook: hookOf(v, 'afterStage'),
          rolloutId: 'canary.ns.app',
          version: 'v2',
          stage: 2,
          weight: 50,
          point: 'afterStage',
          attempt: 1,
          idempotencyKey: 'canary.ns.app/r1/afterStage/2/migrate-check/1',
        },
      ],
    });
    // A step that failed (retries spent) is a failed run, timed from the ask.
    expect(failedAnswer(ask, 'worker lost', T0 + 2500)).toEqual({
      result: 'failed',
      detail: 'worker lost',
      tookMs: 2500,
    });
  });

  it('a hook that passes is done: recorded, published, and not run again for this stage entry', () => {
    const v = viewOf(planWith({ beforeStage: [http('bs'), http('bs2')] }), 1);
    expect(nextHook(v, 'beforeStage', 2, 0)).toBe(0);
    const { then } = answered(v, hookOf(v, 'beforeStage'), { ...OK, excerpt: 'ready' });
    expect(then).toEqual([]);
    expect(v.s.hookRuns).toEqual([
      {
        point: 'beforeStage',
        stage: 2,
        hook: 'bs',
        at: '2026-12-07T10:00:00.000Z',
        tookMs: 3,
        result: 'ok',
        detail: 'HTTP 200',
        excerpt: 'ready',
        attempt: 1,
      },
    ]);
    expect(v.s.hooksDone).toEqual(['beforeStage:2:bs']);
    expect(nextHook(v, 'beforeStage', 2, 0)).toBe(1);
    // The next stage entry runs it again.
    expect(nextHook(v, 'beforeStage', 3, 0)).toBe(0);
  });

  it('a warn hook alerts and goes on', () => {
    const v = viewOf(planWith({ beforeStage: [http('bs', { onFailure: 'warn' })] }), 1);
    const { then } = answered(v, hookOf(v, 'beforeStage'), FAILED);
    const reason = 'hook bs (beforeStage of stage 2) failed: HTTP 500 from hooks.example.com';
    expect(then).toEqual([
      {
        type: 'alert',
        kind: 'hook_failed',
        severity: 'warning',
        message: `${LABEL}: ${reason}; the rollout goes on (onFailure: warn)`,
        fromHandler: false,
        extra: { reason },
      },
    ]);
    expect(v.s.hookQuestion).toBeUndefined();
    expect(v.s.hooksDone).toEqual(['beforeStage:2:bs']);
  });

  it('an abort hook before any traffic rolls back saying so', () => {
    const v = viewOf(planWith({ before: [http('smoke')] }));
    const { then } = answered(v, hookOf(v, 'before'), FAILED);
    const reason = 'hook smoke (before) failed: HTTP 500 from hooks.example.com';
    expect(then).toEqual([
      {
        type: 'alert',
        kind: 'hook_failed',
        severity: 'critical',
        message: `${LABEL}: ${reason}; the rollout rolls back before any traffic moved`,
        fromHandler: false,
        extra: { reason },
      },
      { type: 'rollback', reason, ending: { kind: 'step' } },
    ]);
    // Later abort hooks just roll back.
    const w = viewOf(planWith({ beforePromotion: [http('bp')] }), 2, true);
    expect(answered(w, hookOf(w, 'beforePromotion'), FAILED).then[0]).toMatchObject({
      message: `${LABEL}: hook bp (beforePromotion) failed: HTTP 500 from hooks.example.com; the rollout rolls back`,
    });
  });

  it('an approval hook asks a person once, and an approve goes on', () => {
    const v = viewOf(planWith({ afterStage: [http('as', { onFailure: 'approval' })] }), 0, true);
    const { then } = answered(v, hookOf(v, 'afterStage'), FAILED);
    const reason = 'hook as (afterStage of stage 1) failed: HTTP 500 from hooks.example.com';
    const decides = `a person decides: go on: ${APPROVE} --stage 1, or roll back: ${ABORT}`;
    expect(then).toEqual([
      {
        type: 'alert',
        kind: 'hook_failed',
        severity: 'critical',
        message: `${LABEL}: ${reason}; ${decides}`,
        fromHandler: false,
        extra: { reason },
      },
      { type: 'askPerson', hook: hookOf(v, 'afterStage'), stage: 1, reason, then: decides },
    ]);
    // Nothing is asked until the alert is out: the question comes at the time after it.
    expect(v.s.hookQuestion).toBeUndefined();
    const asked = askPerson(v, then[1] as Extract<HookCommand, { type: 'askPerson' }>, T0 + 5);
    expect(asked).toEqual([
      { type: 'wake' },
      { type: 'publish' },
      {
        type: 'alert',
        kind: 'approval_needed',
        severity: 'warning',
        message: `${LABEL} waits for a person: ${reason}; ${decides}`,
        fromHandler: false,
      },
      { type: 'wait', ends: 'answered', until: undefined, summary: 'a person decides about hook as' },
    ]);
    expect(v.s.hookQuestion).toEqual({ point: 'afterStage', stage: 1, hook: 'as', reason, since: T0 + 5 });
    const wait = asked[3] as HookWaitCommand;
    expect(hookWaitOver(v, wait, T0 + 60 * MINUTE)).toBe(false);
    // A person approves: the question goes, the wait is over, and the hook is not asked again.
    transition(v, { type: 'approve', req: { identity: 'alice' } }, T0 + MINUTE);
    expect(hookWaitOver(v, wait, T0 + MINUTE)).toBe(true);
    expect(nextHook(v, 'afterStage', 1, 0)).toBeUndefined();
    expect(v.s.approvals).toContainEqual(
      expect.objectContaining({ kind: 'hook-failure-accepted', by: 'alice' }),
    );
  });

  it('a confirm gate asks again after its interval, not while paused, and fails after its limit naming the asks', () => {
    const v = viewOf(
      planWith({ beforePromotion: [http('bp', { confirm: { interval: '2m', limit: 3 } })] }),
      2,
      true,
    );
    const hook = hookOf(v, 'beforePromotion');
    let now = T0;
    for (const ask of [1, 2]) {
      const { ask: a, then } = answered(v, hook, NOT_YET, now);
      expect(a.attempt).toBe(ask);
      expect(a.step.summary).toBe(`hook beforePromotion bp${ask > 1 ? ` (ask ${ask})` : ''}: stage 3`);
      expect(a.step.args[0].idempotencyKey).toBe(`canary.ns.app/r1/beforePromotion/3/bp/${ask}`);
      const wait: HookWaitCommand = {
        type: 'wait',
        ends: 'nextAskDue',
        until: now + 2 * MINUTE,
        summary: `hook bp said not yet; asks again (${ask + 1}/3)`,
      };
      expect(then).toEqual([wait]);
      expect(v.s.hookConfirm).toEqual({ key: 'beforePromotion:3:bp', asks: ask });
      expect(hookWaitOver(v, wait, now + 2 * MINUTE - 1)).toBe(false);
      v.s.pausedSince = now;
      expect(hookWaitOver(v, wait, now + 2 * MINUTE)).toBe(false);
      v.s.pausedSince = undefined;
      expect(hookWaitOver(v, wait, now + 2 * MINUTE)).toBe(true);
      now += 2 * MINUTE;
    }
    const { then } = answered(v, hook, NOT_YET, now);
    const reason =
      'hook bp (beforePromotion) failed: still not ready after 3 asks, 2m apart (HTTP 409 (not yet))';
    expect(then).toEqual([
      expect.objectContaining({ kind: 'hook_failed', extra: { reason } }),
      { type: 'rollback', reason, ending: { kind: 'step' } },
    ]);
    expect(v.s.hookConfirm).toBeUndefined();
    // A gate of one ask says so in the singular.
    const one = viewOf(
      planWith({ beforeStage: [http('g', { onFailure: 'warn', confirm: { interval: '1m', limit: 1 } })] }),
      1,
    );
    expect(answered(one, hookOf(one, 'beforeStage'), NOT_YET).then[0]).toMatchObject({
      extra: {
        reason: 'hook g (beforeStage of stage 2) failed: still not ready after 1 ask (HTTP 409 (not yet))',
      },
    });
  });

  it('a hook finished before a continue-as-new is never run again; a question left open is answered first', () => {
    const v = viewOf(
      planWith({ afterStage: [http('a'), http('b', { onFailure: 'approval' }), http('c')] }),
      1,
      true,
    );
    answered(v, hookOf(v, 'afterStage', 0), OK);
    const { then } = answered(v, hookOf(v, 'afterStage', 1), FAILED);
    askPerson(v, then[1] as Extract<HookCommand, { type: 'askPerson' }>, T0);
    // The run continues as new while the question waits: the next run reads the state carried through JSON.
    const next = new RolloutView(migrateCarried(JSON.parse(JSON.stringify(carryOver(v.s))))!, v.ctx);
    expect(openQuestion(next, 'afterStage')).toEqual({
      type: 'wait',
      ends: 'answered',
      until: undefined,
      summary: 'a person decides about hook b',
    });
    // Nothing waits at a point without hooks.
    expect(openQuestion(next, 'beforeStage')).toBeUndefined();
    expect(nextHook(next, 'afterStage', 2, 0)).toBe(2);
    expect(nextHook(next, 'afterStage', 2, 3)).toBeUndefined();
    // A confirm gate's count is carried too: the next ask is the next attempt, never the same one again.
    const g = viewOf(planWith({ beforeStage: [http('g', { confirm: { interval: '1m', limit: 4 } })] }), 1);
    answered(g, hookOf(g, 'beforeStage'), NOT_YET);
    const gNext = new RolloutView(migrateCarried(JSON.parse(JSON.stringify(carryOver(g.s))))!, g.ctx);
    expect(hookAsk(gNext, hookOf(gNext, 'beforeStage'), 2, T0 + MINUTE).attempt).toBe(2);
  });

  it('state keeps the newest hook runs', () => {
    const v = viewOf(planWith({ beforeStage: [http('g', { confirm: { interval: '1m', limit: 50 } })] }), 1);
    for (let i = 0; i < HOOK_RUNS_KEPT + 5; i++)
      answered(v, hookOf(v, 'beforeStage'), NOT_YET, T0 + i * MINUTE);
    expect(v.s.hookRuns).toHaveLength(HOOK_RUNS_KEPT);
    expect(v.s.hookRuns![HOOK_RUNS_KEPT - 1].attempt).toBe(HOOK_RUNS_KEPT + 5);
  });
});

describe('load, as the playbook tells it', () => {
  const LOAD = { rate: 20, concurrency: 2, url: 'http://app-canary.ns/' };

  it("starts a stage's load once, stopping the previous stage's first", () => {
    const v = viewOf(planWith({}, LOAD), 0, true);
    expect(loadStart(v)).toEqual([{ type: 'startLoad' }]);
    const start = startLoadStep(v, T0);
    expect(start.step).toEqual({
      policy: 'lookup',
      step: 'startLoad',
      summary: 'load at the canary: stage 1, 20 req/s',
      args: [
        {
          target: { app: 'app', namespace: 'ns' },
          load: start.load,
          rolloutId: 'canary.ns.app',
          stage: 1,
          key: `canary.ns.app/r1/load/1/${T0}`,
        },
      ],
    });
    expect(loadStarted(v, start, { job: 'load-1', adopted: false })).toEqual([{ type: 'publish' }]);
    expect(v.s.load).toMatchObject({
      stage: 1,
      job: 'load-1',
      since: '2026-12-07T10:00:00.000Z',
      url: LOAD.url,
    });
    expect(loadStart(v)).toEqual([]);
    v.s.stageIndex = 1;
    expect(loadStart(v)).toEqual([{ type: 'stopLoad', why: 'stage 2 started' }, { type: 'startLoad' }]);
    // A simulated port (the backtest) runs no Job: nothing is recorded.
    const w = viewOf(planWith({}, LOAD), 0, true);
    expect(loadStarted(w, startLoadStep(w, T0), undefined)).toEqual([]);
    expect(w.s.load).toBeUndefined();
    // A plan without load starts none.
    expect(loadStart(viewOf(planWith({}), 0, true))).toEqual([]);
  });

  it('a load that cannot start, or that failed, only warns; a stop that fails forgets it all the same', () => {
    const v = viewOf(planWith({}, LOAD), 0, true);
    const start = startLoadStep(v, T0);
    const reason = 'load for stage 1 did not start: quota exceeded';
    expect(loadStartFailed(v, start, 'quota exceeded')).toEqual([
      {
        type: 'alert',
        kind: 'hook_failed',
        severity: 'warning',
        message: `${LABEL}: ${reason}; the rollout goes on (load is best effort)`,
        fromHandler: false,
        extra: { reason },
      },
    ]);
    expect(loadStop(v, 'stage 1 ended')).toBeUndefined();
    loadStarted(v, start, { job: 'load-1', adopted: false });
    const stop = loadStop(v, 'stage 1 ended')!;
    expect(stop.step).toEqual({
      policy: 'lookup',
      step: 'stopLoad',
      summary: 'stop the load of stage 1: stage 1 ended',
      args: [{ target: { app: 'app', namespace: 'ns' }, job: 'load-1' }],
    });
    expect(loadStopped(v, stop, { failed: 'BackoffLimitExceeded' })).toEqual([
      { type: 'publish' },
      expect.objectContaining({
        kind: 'hook_failed',
        extra: { reason: 'load of stage 1 (job load-1) failed: BackoffLimitExceeded' },
      }),
    ]);
    expect(v.s.load).toBeUndefined();
    loadStarted(v, start, { job: 'load-1', adopted: false });
    expect(loadStopFailed(v, loadStop(v, 'rollback')!, 'forbidden')).toEqual([
      { type: 'publish' },
      expect.objectContaining({
        extra: {
          reason:
            'load of stage 1 (job load-1) could not be stopped: forbidden; its deadline and TTL remove it',
        },
      }),
    ]);
    expect(v.s.load).toBeUndefined();
    loadStarted(v, start, { job: 'load-1', adopted: false });
    expect(loadStopped(v, loadStop(v, 'promotion')!, {})).toEqual([{ type: 'publish' }]);
  });
});

// ---------- properties: a small carrier of the pure decisions alone ----------

type Answer = 'ok' | 'not_ready' | 'failed' | 'throw';
const POINTS: HookPoint[] = ['before', 'beforeStage', 'afterStage', 'beforePromotion'];

const hookArb = fc.record({
  onFailure: fc.constantFrom('abort', 'warn', 'approval'),
  confirm: fc.option(
    fc.record({ interval: fc.constantFrom('30s', '1m', '5m'), limit: fc.integer({ min: 1, max: 6 }) }),
    {
      nil: undefined,
    },
  ),
});
const caseArb = fc.record({
  point: fc.constantFrom(...POINTS),
  hooks: fc.array(hookArb, { minLength: 1, maxLength: 4 }),
  stage: fc.integer({ min: 0, max: 2 }),
  /** What each ask answers, in order (cycled). */
  answers: fc.array(fc.constantFrom<Answer>('ok', 'not_ready', 'not_ready', 'failed', 'throw'), {
    minLength: 1,
    maxLength: 20,
  }),
  /** Whether a person approves a question (else: the walk is cancelled, as an abort does). */
  approves: fc.boolean(),
  /** At which waits the run continues as new (the state carried through JSON, runHooks asked again). */
  continueAt: fc.array(fc.integer({ min: 0, max: 30 }), { maxLength: 4 }),
  paused: fc.boolean(),
});
type Case = typeof caseArb extends fc.Arbitrary<infer C> ? C : never;

interface Trace {
  asks: HookAsk[];
  commands: HookCommand[];
  /** How the point ended: its hooks all finished, a rollback, or the walk cancelled by an abort. */
  end: 'done' | 'rollback' | 'aborted';
}

/** Plays the carrier of hooks.ts with the pure functions alone: ask, answer, carry out, repeat. */
function play(c: Case): { plan: Plan; trace: Trace; final: RolloutState } {
  const plan = planWith({
    [c.point]: c.hooks.map((h, i) =>
      http(`h${i}`, { onFailure: h.onFailure, ...(h.confirm ? { confirm: h.confirm } : {}) }),
    ),
  });
  let v = viewOf(plan, c.stage, c.point === 'afterStage' || c.point === 'beforePromotion');
  let now = T0;
  let answers = 0;
  let waits = 0;
  const trace: Trace = { asks: [], commands: [], end: 'done' };
  const continueAsNew = () => {
    v = new RolloutView(migrateCarried(JSON.parse(JSON.stringify(carryOver(v.s))))!, v.ctx);
  };
  /** Carries out a wait; true when the run continued as new there (the carrier starts runHooks again). */
  const wait = (w: HookWaitCommand): boolean | 'aborted' => {
    const at = waits++;
    if (w.ends === 'answered') {
      if (!c.approves) return 'aborted';
      if (c.continueAt.includes(at)) return true;
      transition(v, { type: 'approve', req: { identity: 'alice' } }, now);
    } else {
      if (c.continueAt.includes(at)) return true;
      if (c.paused && at % 2 === 0) {
        v.s.pausedSince = now;
        expect(hookWaitOver(v, w, w.until!)).toBe(false);
        v.s.pausedSince = undefined;
      }
      expect(hookWaitOver(v, w, w.until! - 1)).toBe(false);
      now = w.until!;
    }
    expect(hookWaitOver(v, w, now)).toBe(true);
    return false;
  };
  const carry = (cs: HookCommand[]): 'again' | 'next' | 'restart' | 'rollback' | 'aborted' => {
    let out: 'again' | 'next' = 'next';
    for (const cmd of cs) {
      trace.commands.push(cmd);
      if (cmd.type === 'rollback') return 'rollback';
      if (cmd.type === 'wait') {
        const w = wait(cmd);
        if (w === 'aborted') return 'aborted';
        if (w) return 'restart';
        out = cmd.ends === 'nextAskDue' ? 'again' : 'next';
      }
      if (cmd.type === 'askPerson') return carry(askPerson(v, cmd, now));
    }
    return out;
  };
  for (let runs = 0; runs < 20; runs++) {
    const stage = hookStage(v);
    const q = openQuestion(v, c.point);
    let restart = false;
    if (q) {
      const r = carry([q]);
      if (r === 'aborted') return { plan, trace: { ...trace, end: 'aborted' }, final: v.s };
      if (r === 'restart') {
        continueAsNew();
        continue;
      }
    }
    for (
      let i = nextHook(v, c.point, stage, 0);
      i !== undefined && !restart;
      i = nextHook(v, c.point, stage, i + 1)
    ) {
      const hook = hookOf(v, c.point, i);
      for (;;) {
        const ask = hookAsk(v, hook, stage, now);
        trace.asks.push(ask);
        const a = c.answers[answers++ % c.answers.length];
        const r: HookRunResult =
          a === 'throw'
            ? failedAnswer(ask, 'worker lost', now + 10)
            : { result: a, detail: `said ${a}`, tookMs: 10 };
        hookAnswered(v, ask, r);
        const next = carry(hookOutcome(v, ask, r, now));
        if (next === 'rollback') return { plan, trace: { ...trace, end: 'rollback' }, final: v.s };
        if (next === 'aborted') return { plan, trace: { ...trace, end: 'aborted' }, final: v.s };
        if (next === 'restart') {
          restart = true;
          break;
        }
        if (next === 'next') break;
      }
    }
    if (!restart) return { plan, trace, final: v.s };
    continueAsNew();
  }
  throw new Error('more than 20 runs');
}

describe('hooks over random plans and answers (pure decisions alone)', () => {
  it('a hook never runs twice for one stage entry; each ask has its own attempt and key', () => {
    let cases = 0;
    fc.assert(
      fc.property(caseArb, (c) => {
        cases++;
        const { trace, final, plan } = play(c);
        const keys = trace.asks.map((a) => a.step.args[0].idempotencyKey);
        expect(new Set(keys).size).toBe(keys.length);
        // Each hook's asks count 1, 2, 3, ... and stop once it finished.
        const byHook = new Map<string, number[]>();
        for (const a of trace.asks) byHook.set(a.hook.name, [...(byHook.get(a.hook.name) ?? []), a.attempt]);
        for (const attempts of byHook.values()) expect(attempts).toEqual(attempts.map((_, i) => i + 1));
        // Once the point is done, asking runHooks again (a replay, a later run) runs nothing.
        if (trace.end === 'done') {
          const v = new RolloutView(final, simContext(plan));
          expect(nextHook(v, c.point, hookStage(v), 0)).toBeUndefined();
          expect(final.hookConfirm).toBeUndefined();
        }
      }),
      { numRuns: RUNS, seed: SEED },
    );
    expect(cases).toBe(RUNS);
  });

  it('a failed abort hook always gives a rollback, after its critical alert and nothing else', () => {
    fc.assert(
      fc.property(caseArb, (c) => {
        const { trace } = play(c);
        const failures = trace.commands.filter((x) => x.type === 'alert' && x.kind === 'hook_failed');
        const aborting = failures.filter(
          (x) => x.type === 'alert' && x.severity === 'critical' && x.message.includes('rolls back'),
        );
        if (aborting.length > 0) {
          expect(trace.end).toBe('rollback');
          const last = trace.commands.slice(-2);
          expect(last[0]).toBe(aborting[0]);
          expect(last[1]).toMatchObject({ type: 'rollback', ending: { kind: 'step' } });
        }
        if (trace.end === 'rollback') {
          const failed = trace.asks[trace.asks.length - 1].hook;
          expect(failed.onFailure).toBe('abort');
        }
      }),
      { numRuns: RUNS, seed: SEED },
    );
  });

  it('a warn hook never holds the rollout: its failure is one warning, no wait, no question, no rollback', () => {
    fc.assert(
      fc.property(caseArb, fc.constantFrom<Answer>('failed', 'throw', 'not_ready'), (c, a) => {
        const plan = planWith({
          [c.point]: c.hooks.map((h, i) =>
            http(`h${i}`, { onFailure: 'warn', ...(h.confirm ? { confirm: h.confirm } : {}) }),
          ),
        });
        const v = viewOf(plan, c.stage, true);
        const hook = hookOf(v, c.point);
        // Its last ask: the gate's count at its limit (or an ordinary hook's only ask).
        const limit = hook.confirm?.limit ?? 1;
        if (limit > 1) v.s.hookConfirm = { key: `${c.point}:${c.stage + 1}:${hook.name}`, asks: limit - 1 };
        const ask = hookAsk(v, hook, hookStage(v), T0);
        const r: HookRunResult =
          a === 'throw' ? failedAnswer(ask, 'worker lost', T0) : { result: a, detail: 'x', tookMs: 1 };
        hookAnswered(v, ask, r);
        const cs = hookOutcome(v, ask, r, T0);
        expect(cs).toHaveLength(1);
        expect(cs[0]).toMatchObject({ type: 'alert', kind: 'hook_failed', severity: 'warning' });
        expect(v.s.hookQuestion).toBeUndefined();
        expect(nextHook(v, c.point, hookStage(v), 0)).toBe(c.hooks.length > 1 ? 1 : undefined);
        // And in whole runs, no wait ever follows a warn hook's warning.
        const { trace } = play({ ...c, hooks: c.hooks.map((h) => ({ ...h, onFailure: 'warn' })) });
        expect(trace.end).toBe('done');
        expect(trace.commands.filter((x) => x.type === 'askPerson' || x.type === 'rollback')).toEqual([]);
      }),
      { numRuns: RUNS, seed: SEED },
    );
  });

  it('the confirm gate never asks more than its limit, each ask an interval after the last', () => {
    fc.assert(
      fc.property(caseArb, (c) => {
        const { trace } = play(c);
        for (const ask of trace.asks) expect(ask.attempt).toBeLessThanOrEqual(ask.hook.confirm?.limit ?? 1);
        // (A run continued as new while the gate waits asks at once when the next run reaches it.)
        if (c.continueAt.length > 0) return;
        for (let i = 1; i < trace.asks.length; i++) {
          const [a, b] = [trace.asks[i - 1], trace.asks[i]];
          if (b.hook === a.hook && b.attempt === a.attempt + 1)
            expect(b.startedAt - a.startedAt).toBeGreaterThanOrEqual(a.hook.confirm!.intervalMs);
        }
        const waits = trace.commands.filter(
          (x): x is HookWaitCommand => x.type === 'wait' && x.ends === 'nextAskDue',
        );
        for (const w of waits) expect(w.until).toBeDefined();
      }),
      { numRuns: RUNS, seed: SEED },
    );
  });
});

describe('runHooks carries out exactly what the decisions say', () => {
  it('asks the steps the pure carrier asks, in order, and raises the alerts it returns', async () => {
    const cases = fc.sample(caseArb, { numRuns: Math.min(RUNS, 300), seed: SEED ?? 15 });
    for (const c of cases) {
      const cc = { ...c, continueAt: [], paused: false };
      const { plan, trace } = play(cc);
      const port = new SimPort(T0);
      const m = new RolloutMachine(
        stateAt(c.stage, c.point === 'afterStage' || c.point === 'beforePromotion'),
        simContext(plan),
        port,
      );
      m.sinkNames = ['log'];
      let answers = 0;
      let ended: string | undefined;
      void m.walkScope
        .run(() => runHooks(m, c.point))
        .then(
          () => (ended = 'done'),
          (err: unknown) =>
            (ended = port.isCancellation(err)
              ? 'aborted'
              : err instanceof Error
                ? `rollback: ${err.message}`
                : 'other'),
        );
      const walk = m.walkScope;
      for (let i = 0; i < 500 && ended === undefined; i++) {
        await new Promise((r) => setImmediate(r));
        if (ended !== undefined) break;
        if (port.wakeOne()) continue;
        const p = port.steps.shift();
        if (p) {
          const a = cc.answers[answers++ % cc.answers.length];
          if (a === 'throw') p.reject(new Error('worker lost'));
          else p.resolve({ result: a, detail: `said ${a}`, tookMs: 10 });
          continue;
        }
        if (m.s.hookQuestion) {
          if (cc.approves) m.approve({ identity: 'alice' });
          else walk.cancel();
          continue;
        }
        const d = port.nextDeadline();
        if (d !== undefined) port.advanceTo(d);
      }
      expect(port.commands.map((x) => x.command)).toEqual(trace.asks.map((a) => a.step));
      const alerts = trace.commands
        .filter((x) => x.type === 'alert')
        .map((x) => x.type === 'alert' && x.message);
      expect(port.alerts.map((a) => a.message)).toEqual(alerts);
      expect(ended?.startsWith('rollback') ? 'rollback' : ended).toBe(trace.end);
    }
  });
});
