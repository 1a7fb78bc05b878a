// The walk's decisions as pure functions (workflows/machine/walk-steps.ts): a hand-built state and a time in, the
// commands out, with no port and no server. Examples read like the playbook (a stage waits at its gate, holds for its
// time, advances on evidence, waits for its window or its fleet); fast-check then checks, over random states and
// times, what a person relies on: no shift above the stage's weight, no gate passed on too few approvals, no wait
// that ends in the past, no paused time brought to count.
import fc from 'fast-check';
import { gateSatisfied } from '../../workflows/approval-policy';
import type { PlanSpec } from '../../workflows/plan';
import { initialState, type RolloutState } from '../../workflows/machine/state';
import { RolloutView } from '../../workflows/machine/views';
import {
  enterStageShift,
  enteredStage,
  fleetWait,
  gateAfterWait,
  gateEnd,
  gateFacts,
  holdAfterWait,
  holdWait,
  newWait,
  openGate,
  openWindowWait,
  resumeWait,
  wakeAt,
  waitDeadline,
  waitDone,
  watchNext,
  windowMayGoOn,
  windowNeeded,
  windowWaitEnded,
  type GateFacts,
  type WaitFor,
  type WalkCommand,
} from '../../workflows/machine/walk-steps';
import type { Plan } from '../../workflows/types';
import { walkNext, type WalkAt, type WalkPart } from '../../workflows/machine/walk-order';
import { planOf, simContext, RUNS, SEED, T0, MINUTE } from './machine-sim';

const HOUR = 60 * MINUTE;

const ERRORS = [{ name: 'error-rate', metric: 'error-rate', max: 1 }];
const WEEKDAYS = {
  timeZone: 'UTC',
  allow: [{ days: ['mon', 'tue', 'wed', 'thu', 'fri'], from: '09:00', to: '17:00' }],
};

function planFrom(spec: Record<string, unknown>): Plan {
  const p = planOf({
    analysis: { interval: '1m', checks: [] },
    stages: [{ weight: 10, hold: '10m' }, { weight: 50, hold: '10m' }, { weight: 100 }],
    promotion: { cleanupDelay: '0s' },
    ...spec,
  } as unknown as PlanSpec);
  if (!p) throw new Error(`invalid plan: ${JSON.stringify(spec)}`);
  return p;
}

/** A rollout as this build starts one, its canary deployed, at stage `stage` (0-based), not yet entered. */
function stateAt(stage: number, over: Partial<RolloutState> = {}): RolloutState {
  return {
    ...initialState(),
    neverStuck: true,
    machineV2: true,
    pauseHolds: true,
    fleet: true,
    touched: {},
    canaryReady: true,
    stageIndex: stage,
    ...over,
  };
}

function viewOf(p: Plan, s: RolloutState): RolloutView {
  return new RolloutView(s, simContext(p));
}

/** In stage `stage`, entered at T0 at its weight and holding. */
function holding(p: Plan, stage: number, over: Partial<RolloutState> = {}): RolloutView {
  return viewOf(
    p,
    stateAt(stage, {
      stageEntered: true,
      weight: p.stages[stage].weight,
      waitStartedAt: T0,
      lastAnalysisAt: T0,
      passingSince: T0,
      ...over,
    }),
  );
}

/** At stage `stage`'s gate (stage `stage - 1` served its hold at its weight). */
function atGate(p: Plan, stage: number, over: Partial<RolloutState> = {}): { v: RolloutView; g: GateFacts } {
  const v = viewOf(p, stateAt(stage, { weight: stage > 0 ? p.stages[stage - 1].weight : 0, ...over }));
  const g = gateFacts(v);
  if (!g) throw new Error('no approval gate');
  return { v, g };
}

const alerts = (cs: WalkCommand[] | string) =>
  typeof cs === 'string'
    ? []
    : cs.filter((c): c is Extract<WalkCommand, { type: 'alert' }> => c.type === 'alert');
const kinds = (cs: WalkCommand[] | string) => alerts(cs).map((c) => c.kind);

/** What a wait does at `now` when nothing else is due: continues as new if due, then this wait. */
function waitAt(v: RolloutView, w: WaitFor, now: number): WalkCommand {
  const [c] = watchNext(v, w, now);
  if (c.type !== 'continueAsNewIfDue') return c;
  return wakeAt(v, w, c.now, c.analysisDue);
}

const TWO_PERSON = planFrom({
  stages: [
    { weight: 10, hold: '10m' },
    {
      weight: 50,
      hold: '10m',
      gate: { type: 'approval', approvals: { required: 2, approvers: ['alice', 'bob', 'carol'] } },
    },
    { weight: 100 },
  ],
});
const REMINDING = planFrom({
  approvals: { remindAfter: '5m', escalateAfter: '10m' },
  stages: [{ weight: 10, hold: '10m' }, { weight: 50, hold: '10m', gate: 'approval' }, { weight: 100 }],
});
const timingOut = (onTimeout: 'proceed' | 'abort') =>
  planFrom({
    stages: [
      { weight: 10, hold: '10m' },
      { weight: 50, hold: '10m', gate: { type: 'approval', timeout: '10m', onTimeout } },
      { weight: 100 },
    ],
  });

describe('an approval gate, as the playbook tells it', () => {
  it('opens once: the wait starts, status is published, and a person hears what to approve and how', () => {
    const { v, g } = atGate(TWO_PERSON, 1);
    expect(openGate(v, g, T0)).toEqual([
      { type: 'publish' },
      {
        type: 'alert',
        kind: 'approval_needed',
        severity: 'warning',
        fromHandler: false,
        message:
          'ns/app v2 waits for approval to enter stage 2 (50%): canary approve canary.ns.app --stage 2 ' +
          '(2 of 2 approvals still needed; approvers: alice, bob, carol)',
      },
    ]);
    expect(v.s.waitStartedAt).toBe(T0);
    // A run continued at the gate keeps its wait: nothing is said twice.
    expect(openGate(v, g, T0 + MINUTE)).toEqual([]);
    expect(v.s.waitStartedAt).toBe(T0);
  });

  it('one approver of a two-person gate does not pass it; the second does, and both are named', () => {
    const { v, g } = atGate(TWO_PERSON, 1, { waitStartedAt: T0 });
    v.s.gateApprovals = [{ identity: 'alice', atMs: T0 + MINUTE }];
    const w: WaitFor = { kind: 'gate', gate: g };
    expect(waitDone(v, w, T0 + 2 * MINUTE)).toBe(false);
    expect(gateAfterWait(v, g, T0 + 2 * MINUTE)).toEqual([]);
    // Nothing but a message can change that: the wait has no timer.
    expect(waitAt(v, w, T0 + 2 * MINUTE)).toEqual({ type: 'wait' });
    v.s.gateApprovals.push({ identity: 'bob', atMs: T0 + 3 * MINUTE });
    expect(waitDone(v, w, T0 + 3 * MINUTE)).toBe(true);
    expect(gateAfterWait(v, g, T0 + 3 * MINUTE)).toBe('passed');
    expect(gateEnd(v, g, T0 + 3 * MINUTE)).toEqual([
      {
        type: 'alert',
        kind: 'approved',
        severity: 'info',
        fromHandler: false,
        message: 'ns/app v2: stage 2 approved by alice, bob',
        extra: { by: 'alice, bob' },
      },
    ]);
    expect(v.s.approvedStage).toBe(1);
  });

  it('reminds, then escalates; a reminder still due is not sent after the escalation', () => {
    const { v, g } = atGate(REMINDING, 1);
    const w: WaitFor = { kind: 'gate', gate: g };
    openGate(v, g, T0);
    expect(waitAt(v, w, T0)).toEqual({
      type: 'wait',
      timeoutMs: 5 * MINUTE,
      summary: 'approval gate of stage 2',
    });
    expect(waitDone(v, w, T0 + 5 * MINUTE)).toBe(true);
    const reminder = gateAfterWait(v, g, T0 + 5 * MINUTE);
    expect(reminder).toEqual([
      { type: 'publish' },
      {
        type: 'alert',
        kind: 'approval_reminder',
        severity: 'warning',
        fromHandler: false,
        message:
          'ns/app v2 still waits (5m) for approval to enter stage 2 (50%): canary approve canary.ns.app --stage 2 ' +
          '(1 of 1 approvals still needed; approvers: anyone)',
      },
    ]);
    expect(waitAt(v, w, T0 + 5 * MINUTE)).toEqual({
      type: 'wait',
      timeoutMs: 5 * MINUTE,
      summary: 'approval gate of stage 2',
    });
    expect(kinds(gateAfterWait(v, g, T0 + 10 * MINUTE))).toEqual(['approval_escalated']);
    expect(alerts(gateAfterWait(v, g, T0 + 10 * MINUTE))).toEqual([]);
    // Nothing more to say: the gate waits for a person only.
    expect(waitAt(v, w, T0 + 10 * MINUTE)).toEqual({ type: 'wait' });

    // Both due at once (nobody looked for 12 minutes): the escalation alone, which says what a reminder would.
    const late = atGate(REMINDING, 1);
    openGate(late.v, late.g, T0);
    const cs = gateAfterWait(late.v, late.g, T0 + 12 * MINUTE);
    expect(kinds(cs)).toEqual(['approval_escalated']);
    expect(alerts(cs)[0].severity).toBe('critical');
    expect(alerts(cs)[0].message).toContain('has waited 12m for approval to enter stage 2 (50%)');
    expect(late.v.s.gateReminded).toBe(true);
    expect(gateAfterWait(late.v, late.g, T0 + 20 * MINUTE)).toEqual([]);
  });

  it('times out: with proceed it records the timeout and goes on; otherwise it rolls back, saying why', () => {
    const proceed = atGate(timingOut('proceed'), 1, { waitStartedAt: T0 });
    expect(waitAt(proceed.v, { kind: 'gate', gate: proceed.g }, T0)).toEqual({
      type: 'wait',
      timeoutMs: 10 * MINUTE,
      summary: 'approval gate of stage 2',
    });
    expect(gateAfterWait(proceed.v, proceed.g, T0 + 10 * MINUTE)).toBe('passed');
    expect(gateEnd(proceed.v, proceed.g, T0 + 10 * MINUTE)).toEqual([]);
    expect(proceed.v.s.approvals).toEqual([
      { stage: 2, by: 'gate timeout', at: '2026-12-07T10:10:00.000Z', kind: 'timeout-proceed' },
    ]);
    expect(proceed.v.s.approvedStage).toBeUndefined();

    const abort = atGate(timingOut('abort'), 1, { waitStartedAt: T0 });
    expect(gateAfterWait(abort.v, abort.g, T0 + 10 * MINUTE)).toBe('passed');
    expect(gateEnd(abort.v, abort.g, T0 + 10 * MINUTE)).toEqual([
      { type: 'rollback', reason: 'approval for stage 2 timed out after 10m', kind: 'timeout' },
    ]);
    expect(abort.v.s.approvals).toEqual([]);
  });

  it('a pause stops the timeout clock: the paused time is added, and no timer runs while paused', () => {
    const { v, g } = atGate(timingOut('abort'), 1, { waitStartedAt: T0, pausedSince: T0 + 2 * MINUTE });
    const w: WaitFor = { kind: 'gate', gate: g };
    expect(waitDone(v, w, T0 + 30 * MINUTE)).toBe(false);
    expect(waitAt(v, w, T0 + 30 * MINUTE)).toEqual({ type: 'wait' });
    // Resumed after 28 minutes: 2 of its 10 minutes had passed.
    v.s.pausedSince = undefined;
    v.s.pausedMsInWait = 28 * MINUTE;
    expect(waitAt(v, w, T0 + 30 * MINUTE)).toEqual({
      type: 'wait',
      timeoutMs: 8 * MINUTE,
      summary: 'approval gate of stage 2',
    });
  });

  it('a promote skips it: the gate passes with no approval and says nothing', () => {
    const { v, g } = atGate(TWO_PERSON, 1, { waitStartedAt: T0 });
    v.s.promoteRequest = { by: 'alice', at: T0 + MINUTE, fromStage: 1 };
    expect(waitDone(v, { kind: 'gate', gate: g }, T0 + MINUTE)).toBe(true);
    expect(gateAfterWait(v, g, T0 + MINUTE)).toBe('passed');
    expect(gateEnd(v, g, T0 + MINUTE)).toEqual([]);
    expect(v.s.approvedStage).toBeUndefined();
  });

  it('the promotion gate names the promotion; an automatic gate asks no one', () => {
    const p = planFrom({ promotion: { cleanupDelay: '0s', gate: 'approval' } });
    const { g } = atGate(p, 2, { promotionGate: 'waiting', stageEntered: true, weight: 100 });
    expect(g).toMatchObject({
      subject: 'the promotion',
      step: 'promote v2 (stage 3 at 100% served its hold)',
      promotion: true,
    });
    expect(gateFacts(viewOf(p, stateAt(1)))).toBeUndefined();
  });

  it('a new wait keeps nothing of the previous gate', () => {
    const { v } = atGate(REMINDING, 1, {
      waitStartedAt: T0,
      pausedMsInWait: 5,
      approvedStage: 1,
      gateApprovals: [{ identity: 'alice', atMs: T0 }],
      gateReminded: true,
      gateEscalated: true,
    });
    newWait(v);
    expect(v.s).toMatchObject({ pausedMsInWait: 0 });
    for (const k of [
      'waitStartedAt',
      'approvedStage',
      'gateApprovals',
      'gateReminded',
      'gateEscalated',
    ] as const)
      expect(v.s[k]).toBeUndefined();
  });
});

describe('entering a stage and holding it', () => {
  it('shifts to the stage weight, then starts the hold and says for how long', () => {
    const p = planFrom({});
    const v = viewOf(p, stateAt(1, { weight: 10 }));
    expect(enterStageShift(v)).toEqual({ type: 'shift', weight: 50, why: 'stage 2/3' });
    v.s.weight = 50; // as the shift records it
    expect(enteredStage(v, T0)).toEqual([
      { type: 'publish' },
      {
        type: 'alert',
        kind: 'stage_advanced',
        severity: 'info',
        fromHandler: false,
        message: 'ns/app v2 entered stage 2/3: canary at 50% for 10m',
      },
    ]);
    expect(v.s).toMatchObject({
      stageEntered: true,
      waitStartedAt: T0,
      lastAnalysisAt: T0,
      passingSince: T0,
      passedInStage: false,
    });
  });

  it('paused time never counts towards the hold', () => {
    const v = holding(planFrom({}), 0, { pausedSince: T0 + 3 * MINUTE });
    const w = holdWait(v);
    expect(waitDone(v, w, T0 + 12 * MINUTE)).toBe(false);
    expect(waitAt(v, w, T0 + 12 * MINUTE)).toEqual({ type: 'wait' });
    // Resumed at 8 minutes: 3 served, 7 to go.
    v.s.pausedSince = undefined;
    v.s.pausedMsInWait = 5 * MINUTE;
    expect(waitDone(v, w, T0 + 12 * MINUTE)).toBe(false);
    expect(waitAt(v, w, T0 + 8 * MINUTE)).toEqual({
      type: 'wait',
      timeoutMs: 7 * MINUTE,
      summary: 'hold of stage 1 at 10%',
    });
    expect(waitDone(v, w, T0 + 15 * MINUTE)).toBe(true);
    expect(holdAfterWait(v, T0 + 15 * MINUTE)).toBe('end');
  });

  it('a never-stuck stage does not advance without a passing round at or after the hold ends', () => {
    const v = holding(planFrom({ analysis: { interval: '1m', checks: ERRORS } }), 0, {
      lastAnalysisAt: T0 + 9 * MINUTE + 30_000,
      passedInStage: true,
      lastVerdict: 'pass',
    });
    const w = holdWait(v);
    // The round at the hold's end comes before the schedule's (at 10:30).
    expect(waitAt(v, w, T0 + 9 * MINUTE + 30_000)).toEqual({
      type: 'wait',
      timeoutMs: 30_000,
      summary: 'next analysis',
    });
    expect(waitDone(v, w, T0 + 10 * MINUTE)).toBe(false);
    expect(watchNext(v, w, T0 + 10 * MINUTE)).toEqual([{ type: 'round' }]);
    v.s.lastAnalysisAt = T0 + 10 * MINUTE; // the round passed
    expect(watchNext(v, w, T0 + 10 * MINUTE)).toEqual([{ type: 'done' }]);
    expect(holdAfterWait(v, T0 + 10 * MINUTE)).toBe('end');
  });

  it('served without evidence: a person hears why, once per stage', () => {
    const v = holding(planFrom({ analysis: { interval: '1m', checks: ERRORS } }), 0, {
      lastVerdict: 'fail',
      passedInStage: false,
    });
    const w = holdWait(v);
    // Served at 10 minutes; the alert 15 minutes later, if no round has passed by then.
    v.s.lastAnalysisAt = T0 + 24 * MINUTE;
    expect(waitDone(v, w, T0 + 24 * MINUTE)).toBe(false);
    expect(waitAt(v, w, T0 + 24 * MINUTE)).toEqual({
      type: 'wait',
      timeoutMs: MINUTE,
      summary: 'next analysis',
    });
    v.s.lastAnalysisAt = T0 + 25 * MINUTE;
    expect(waitDone(v, w, T0 + 25 * MINUTE)).toBe(true);
    const cs = holdAfterWait(v, T0 + 25 * MINUTE);
    expect(kinds(cs)).toEqual(['stuck']);
    expect(alerts(cs)[0].message).toMatch(
      /^ns\/app v2: stage 1 served its hold 15m ago and does not advance: the hold is served, but stage 1 advances only on a passing analysis \(the latest analysis was fail\)\. It advances on the first passing analysis; to end the wait: canary promote canary\.ns\.app \(skip ahead\) or canary abort canary\.ns\.app --reason "why"$/,
    );
    expect(v.s.evidenceAlertedStage).toBe(0);
    expect(waitDone(v, w, T0 + 3 * HOUR)).toBe(false);
    expect(holdAfterWait(v, T0 + 3 * HOUR)).toBe('end');
  });

  it('a promote ends the hold at once', () => {
    const v = holding(planFrom({}), 0, { promoteRequest: { by: 'bob', at: T0, fromStage: 0 } });
    expect(watchNext(v, holdWait(v), T0 + MINUTE)).toEqual([{ type: 'done' }]);
    expect(holdAfterWait(v, T0 + MINUTE)).toBe('end');
  });

  it('after drift a person resumed from, the planned weight goes back before anything else', () => {
    const v = holding(planFrom({}), 0, { drift: { expected: 10, found: 13, at: T0 } });
    expect(watchNext(v, holdWait(v), T0 + 20 * MINUTE)).toEqual([
      { type: 'shift', weight: 10, why: 'restore the planned weight after drift', restoring: true },
      { type: 'publish' },
    ]);
    expect(v.s.drift).toBeUndefined();
  });
});

describe('deployment windows, fleet holds and pauses', () => {
  const FRIDAY_18 = Date.UTC(2026, 11, 11, 18, 0, 0);
  const MONDAY_9 = Date.UTC(2026, 11, 14, 9, 0, 0);
  const windowed = planFrom({ windows: WEEKDAYS });

  it('no stage is entered outside the windows: the wait knows when they open', () => {
    const v = viewOf(windowed, stateAt(1, { weight: 10 }));
    expect(windowNeeded(v, false, FRIDAY_18)).toBe(true);
    expect(windowNeeded(v, false, MONDAY_9 + HOUR)).toBe(false);
    const cs = openWindowWait(v, FRIDAY_18);
    expect(cs[0]).toEqual({ type: 'publish' });
    expect(cs[1]).toMatchObject({ type: 'log', message: 'outside the deployment window; waiting' });
    expect(v.s.windowWait).toMatchObject({ since: FRIDAY_18, nextOpenAt: MONDAY_9 });
    const w: WaitFor = { kind: 'window', isPromotion: false };
    expect(waitAt(v, w, FRIDAY_18)).toEqual({
      type: 'wait',
      timeoutMs: MONDAY_9 - FRIDAY_18,
      summary: 'deployment window opens',
    });
    expect(openWindowWait(v, FRIDAY_18 + HOUR)).toEqual([]);
    expect(waitDone(v, w, MONDAY_9)).toBe(true);
  });

  it('a pause that outlasts the opening: the windows are asked again when it ends', () => {
    const v = viewOf(windowed, stateAt(1, { weight: 10, pausedSince: FRIDAY_18 + HOUR }));
    openWindowWait(v, FRIDAY_18);
    const w: WaitFor = { kind: 'window', isPromotion: false };
    expect(waitDone(v, w, MONDAY_9 + HOUR)).toBe(false);
    // Resumed on Monday at 18:00, after the windows closed again.
    const resumed = MONDAY_9 + 9 * HOUR;
    v.s.pausedSince = undefined;
    expect(waitDone(v, w, resumed)).toBe(true);
    windowWaitEnded(v);
    expect(windowMayGoOn(v, false, resumed)).toBe(false);
    openWindowWait(v, resumed);
    expect(v.s.windowWait?.nextOpenAt).toBe(MONDAY_9 + 24 * HOUR);
    // Before machine-v2 it went on (the gap the patch closed).
    const old = viewOf(windowed, stateAt(1, { weight: 10, machineV2: undefined }));
    expect(windowMayGoOn(old, false, resumed)).toBe(true);
  });

  it('a promote ends a wait for a stage, never one for the promotion', () => {
    const v = viewOf(windowed, stateAt(1, { weight: 10, promoteRequest: { by: 'a', at: 0, fromStage: 1 } }));
    openWindowWait(v, FRIDAY_18);
    expect(waitDone(v, { kind: 'window', isPromotion: false }, FRIDAY_18)).toBe(true);
    expect(waitDone(v, { kind: 'window', isPromotion: true }, FRIDAY_18)).toBe(false);
  });

  const FREEZE = { scope: 'ns', by: 'ops', reason: 'incident', since: '2026-12-07T10:00:00.000Z' };
  const promote = { by: 'alice', at: T0, fromStage: 0 };

  it('a promote never skips the queue for a slot', () => {
    const v = viewOf(
      planFrom({}),
      stateAt(0, { slot: { granted: false, position: 2, max: 1, fleet: 'f' }, promoteRequest: promote }),
    );
    const held = fleetWait(v, false, false);
    expect(held?.wait).toEqual({ kind: 'fleet', promoteSkips: true, what: 'slot granted' });
    expect(held?.commands[1]).toMatchObject({ type: 'log', message: 'queued for a slot; waiting' });
    expect(waitDone(v, held!.wait, T0)).toBe(false);
    v.s.slot = { granted: true, fleet: 'f' };
    expect(waitDone(v, held!.wait, T0)).toBe(true);
  });

  it("a promote skips a freeze's hold, except before the canary (pause-holds-advance) and for the promotion", () => {
    const v = viewOf(planFrom({}), stateAt(1, { freezes: { f: FREEZE }, promoteRequest: promote }));
    const stage = fleetWait(v, false, false)!;
    expect(stage.wait).toEqual({ kind: 'fleet', promoteSkips: true, what: 'freeze lifted' });
    expect(waitDone(v, stage.wait, T0)).toBe(true);
    expect(waitDone(v, fleetWait(v, false, true)!.wait, T0)).toBe(false);
    expect(waitDone(v, fleetWait(v, true, false)!.wait, T0)).toBe(false);
    v.s.freezes = undefined;
    expect(fleetWait(v, false, false)).toBeUndefined();
  });

  it('paused (pause-holds-advance): it waits for a resume before it advances', () => {
    const v = viewOf(planFrom({}), stateAt(1, { pausedSince: T0, pausedBy: 'carol' }));
    const paused = resumeWait(v)!;
    expect(paused.commands).toEqual([
      { type: 'log', message: 'paused; waiting for a resume before it advances', attrs: { by: 'carol' } },
    ]);
    expect(waitAt(v, paused.wait, T0 + HOUR)).toEqual({ type: 'wait' });
    v.s.pausedSince = undefined;
    expect(watchNext(v, paused.wait, T0 + HOUR)).toEqual([{ type: 'done' }]);
    expect(resumeWait(v)).toBeUndefined();
    expect(
      resumeWait(viewOf(planFrom({}), stateAt(1, { pausedSince: T0, pauseHolds: undefined }))),
    ).toBeUndefined();
  });
});

describe("the walk's order", () => {
  /** Walks from `start` as the carrier would, doing to the state what each part does; `onPart` may add a message. */
  function parts(v: RolloutView, onPart: (p: WalkPart) => void = () => {}): string[] {
    const s = v.s;
    const out: string[] = [];
    let step = walkNext(v, 'start');
    for (let i = 0; i < 100 && step.part.do !== 'end'; i++) {
      const p = step.part;
      out.push(
        p.do === 'hooks'
          ? `hooks ${p.point}`
          : p.do === 'window' || p.do === 'askFleet' || p.do === 'fleetHold'
            ? `${p.do}${p.isPromotion ? ' promotion' : ''}`
            : p.do === 'gate' || p.do === 'enterStage' || p.do === 'hold'
              ? `${p.do} ${s.stageIndex + 1}`
              : p.do,
      );
      let waited = false;
      if (p.do === 'preflight') s.preflight = { state: 'passed', findings: [] };
      if (p.do === 'canary') s.canaryReady = true;
      if (p.do === 'enterStage') s.stageEntered = true;
      if (p.do === 'resume' && s.pausedSince !== undefined) {
        s.pausedSince = undefined;
        waited = true;
      }
      onPart(p);
      step = walkNext(v, step.at, waited);
    }
    return out;
  }

  it('preflight, canary, before hooks, then each stage through its gate, window, fleet and hooks; then promotion', () => {
    const p = planFrom({
      stages: [{ weight: 10, hold: '10m' }, { weight: 50, hold: '10m', gate: 'approval' }, { weight: 100 }],
      promotion: { cleanupDelay: '0s', gate: 'approval' },
    });
    const v = viewOf(p, stateAt(0, { canaryReady: undefined }));
    const stage = (n: number) => [
      `gate ${n}`,
      // Entering the final stage obeys the windows as promotion does.
      n === 3 ? 'window promotion' : 'window',
      'askFleet',
      'hooks beforeStage',
      'resume',
      `enterStage ${n}`,
      'startLoad',
      `hold ${n}`,
      'stopLoad',
      'hooks afterStage',
    ];
    expect(parts(v)).toEqual([
      'preflight',
      'askFleet',
      'resume',
      'canary',
      'hooks before',
      ...stage(1),
      'publish',
      ...stage(2),
      'publish',
      ...stage(3),
      'gate 3',
      'publish',
      'window promotion',
      'askFleet promotion',
      'hooks beforePromotion',
      'resume',
    ]);
    expect(v.s.promotionGate).toBe('passed');
    expect(v.s.stageIndex).toBe(2);
  });

  it('a promote at a gate skips the rest of the stages, and the promotion gate', () => {
    const p = planFrom({
      stages: [{ weight: 10, hold: '10m', gate: 'approval' }, { weight: 50, hold: '10m' }, { weight: 100 }],
      promotion: { cleanupDelay: '0s', gate: 'approval' },
    });
    const v = viewOf(p, stateAt(0));
    const seen = parts(v, (part) => {
      if (part.do === 'gate') v.s.promoteRequest = { by: 'alice', at: T0, fromStage: 0 };
    });
    expect(seen).toEqual([
      'hooks before',
      'gate 1',
      'window promotion',
      'askFleet promotion',
      'hooks beforePromotion',
      'resume',
    ]);
    expect(v.s.skippedFrom).toBe(0);
    expect(v.s.promotionGate).toBeUndefined();
  });

  it('a pause before a stage asks the windows and the fleet again once resumed', () => {
    const v = viewOf(planFrom({}), stateAt(1, { weight: 10 }));
    const seen = parts(v, (part) => {
      if (part.do === 'hooks' && part.point === 'beforeStage') v.s.pausedSince = T0;
    });
    expect(seen.slice(0, 9)).toEqual([
      'gate 2',
      'window',
      'askFleet',
      'hooks beforeStage',
      'resume',
      'window',
      'fleetHold',
      'resume',
      'enterStage 2',
    ]);
  });

  it('a run continued in a held stage goes straight back to its load and hold', () => {
    const v = holding(planFrom({}), 1);
    expect(walkNext(v, 'start')).toEqual({ at: 'startLoad', part: { do: 'startLoad' } });
    const at: WalkAt = 'start';
    v.s.promotionGate = 'passed';
    expect(walkNext(v, at).part).toEqual({ do: 'window', isPromotion: true });
  });
});

// ---------- properties over random states and times ----------

const policyArb = fc.record({
  required: fc.integer({ min: 1, max: 2 }),
  approvers: fc.constantFrom(undefined, ['alice', 'bob'], ['alice', 'bob', 'carol', 'dave']),
  expiresAfter: fc.constantFrom(undefined, '20m'),
  times: fc.constantFrom([undefined, undefined], ['5m', undefined], ['5m', '10m'], [undefined, '1h']),
});
const gateArb = fc.oneof(
  fc.constant<unknown>('auto'),
  fc.constant<unknown>('approval'),
  fc.record({
    type: fc.constant('approval'),
    timeout: fc.constantFrom('10m', '1h'),
    onTimeout: fc.constantFrom('abort', 'proceed'),
  }),
  policyArb.map(({ times, ...r }) => ({
    type: 'approval',
    approvals: Object.fromEntries(
      Object.entries({ ...r, remindAfter: times[0], escalateAfter: times[1] }).filter(
        ([, x]) => x !== undefined,
      ),
    ),
  })),
);
const planArb = fc
  .record({
    weights: fc.uniqueArray(fc.constantFrom(5, 10, 25, 50), { minLength: 1, maxLength: 3 }),
    holds: fc.array(fc.constantFrom('1m', '10m', '1h'), { minLength: 3, maxLength: 3 }),
    gates: fc.array(gateArb, { minLength: 4, maxLength: 4 }),
    checks: fc.boolean(),
    windows: fc.boolean(),
  })
  .map((r) => {
    const weights = [...r.weights].sort((a, b) => a - b);
    return planFrom({
      analysis: { interval: '1m', checks: r.checks ? ERRORS : [] },
      stages: [
        ...weights.map((weight, i) => ({ weight, hold: r.holds[i], gate: r.gates[i] })),
        { weight: 100, gate: r.gates[3] },
      ],
      ...(r.windows ? { windows: WEEKDAYS } : {}),
    });
  });

/** A random rollout somewhere in its walk: at a gate or holding, maybe paused, drifted, promoted, reminded. */
const situationArb = fc
  .record({
    plan: planArb,
    stage: fc.nat(3),
    entered: fc.boolean(),
    weightShare: fc.double({ min: 0, max: 1, noNaN: true }),
    started: fc.integer({ min: 0, max: 48 * 60 }).map((m) => T0 + m * MINUTE),
    elapsed: fc.integer({ min: 0, max: 24 * 60 }).map((m) => m * MINUTE),
    pausedMs: fc.integer({ min: 0, max: 120 }).map((m) => m * MINUTE),
    pausedAgo: fc.option(
      fc.integer({ min: 0, max: 600 }).map((m) => m * MINUTE),
      { nil: undefined },
    ),
    lastRoundAgo: fc.option(
      fc.integer({ min: 0, max: 90 }).map((s) => s * 20_000),
      { nil: undefined },
    ),
    passed: fc.boolean(),
    drift: fc.boolean(),
    promote: fc.boolean(),
    reminded: fc.boolean(),
    escalated: fc.boolean(),
    approvals: fc.array(
      fc.record({
        identity: fc.constantFrom('alice', 'bob', 'carol', 'dave', 'eve'),
        agoMin: fc.integer({ min: 0, max: 60 }),
      }),
      { maxLength: 5 },
    ),
    neverStuck: fc.boolean(),
    machineV2: fc.boolean(),
  })
  .map((r) => {
    const stage = Math.min(r.stage, r.plan.stages.length - 1);
    const now = r.started + r.elapsed;
    const current = r.plan.stages[stage].weight;
    const below = stage > 0 ? r.plan.stages[stage - 1].weight : 0;
    const top = r.entered ? current : below;
    const s = stateAt(stage, {
      neverStuck: r.neverStuck,
      machineV2: r.neverStuck && r.machineV2 ? true : undefined,
      stageEntered: r.entered,
      // Anywhere at or below where the walk put it (a step back lowers it).
      weight: Math.round(top * r.weightShare),
      waitStartedAt: r.started,
      pausedMsInWait: Math.min(r.pausedMs, r.elapsed),
      ...(r.pausedAgo !== undefined ? { pausedSince: now - Math.min(r.pausedAgo, r.elapsed) } : {}),
      ...(r.lastRoundAgo !== undefined ? { lastAnalysisAt: now - r.lastRoundAgo } : {}),
      passedInStage: r.passed,
      lastVerdict: r.passed ? 'pass' : 'fail',
      passingSince: r.started,
      ...(r.drift ? { drift: { expected: top, found: top + 3, at: now } } : {}),
      ...(r.promote ? { promoteRequest: { by: 'alice', at: now, fromStage: stage } } : {}),
      ...(r.reminded ? { gateReminded: true } : {}),
      ...(r.escalated ? { gateEscalated: true, gateReminded: true } : {}),
      gateApprovals: r.approvals.map((a) => ({ identity: a.identity, atMs: now - a.agoMin * MINUTE })),
    });
    return { v: viewOf(r.plan, s), now };
  });

/** The wait the walk is in for this situation: the gate before a stage is entered, else the hold. */
function waitOf(v: RolloutView): WaitFor | undefined {
  if (v.s.stageEntered) return holdWait(v);
  const g = gateFacts(v);
  return g ? { kind: 'gate', gate: g } : undefined;
}

/** Every decision the walk takes in this situation, in the order it may take them (each may update the state). */
function decide(v: RolloutView, now: number): WalkCommand[] {
  const out: WalkCommand[] = [];
  const w = waitOf(v);
  if (w) {
    const next = watchNext(v, w, now);
    out.push(...next);
    if (next[0].type === 'continueAsNewIfDue') out.push(wakeAt(v, w, now, next[0].analysisDue));
  }
  if (!v.s.stageEntered) {
    const g = gateFacts(v);
    if (g) {
      const after = gateAfterWait(v, g, now);
      if (after === 'passed') out.push(...gateEnd(v, g, now));
      else out.push(...after);
    }
    out.push(enterStageShift(v));
  } else {
    const after = holdAfterWait(v, now);
    if (after !== 'end') out.push(...after);
  }
  return out;
}

describe('properties of the walk', () => {
  it("no decision shifts above the current stage's weight", () => {
    fc.assert(
      fc.property(situationArb, ({ v, now }) => {
        for (const c of decide(v, now)) {
          if (c.type === 'shift') expect(c.weight).toBeLessThanOrEqual(v.stage().weight);
        }
      }),
      { numRuns: RUNS, seed: SEED },
    );
  });

  it('a gate is never passed as approved while its policy is not satisfied and no promote was asked', () => {
    fc.assert(
      fc.property(situationArb, ({ v, now }) => {
        if (v.s.stageEntered) return;
        const g = gateFacts(v);
        if (!g) return;
        const policy = g.gate.policy;
        // Counted by hand: distinct listed approvers whose approval has not expired.
        const counted = new Set(
          (v.s.gateApprovals ?? [])
            .filter((a) => policy?.approvers === undefined || policy.approvers.includes(a.identity))
            .filter((a) => policy?.expiresAfterMs === undefined || now < a.atMs + policy.expiresAfterMs)
            .map((a) => a.identity),
        );
        const satisfied = policy !== undefined && counted.size >= policy.required;
        expect(satisfied).toBe(policy !== undefined && gateSatisfied(policy, v.gateState(), now));
        const before = structuredClone(v.s);
        const after = gateAfterWait(v, g, now);
        const end = after === 'passed' ? gateEnd(v, g, now) : [];
        if (!satisfied && before.promoteRequest === undefined && before.approvedStage !== before.stageIndex) {
          expect(kinds(end)).not.toContain('approved');
          expect(v.s.approvedStage).toBeUndefined();
        }
        if (after === 'passed' && kinds(end).includes('approved')) expect(satisfied || !policy).toBe(true);
      }),
      { numRuns: RUNS, seed: SEED },
    );
  });

  it("a wait's time is never in the past", () => {
    fc.assert(
      fc.property(situationArb, ({ v, now }) => {
        const w = waitOf(v);
        if (!w) return;
        const next = watchNext(v, w, now);
        if (next[0].type !== 'continueAsNewIfDue') return;
        const c = wakeAt(v, w, now, next[0].analysisDue);
        if (c.timeoutMs !== undefined) {
          expect(c.timeoutMs).toBeGreaterThanOrEqual(1);
          expect(Number.isFinite(c.timeoutMs)).toBe(true);
          expect(c.summary).toBeDefined();
        }
        const d = waitDeadline(v, w, now);
        if (c.timeoutMs === undefined) expect(d === undefined || d <= now).toBe(true);
      }),
      { numRuns: RUNS, seed: SEED },
    );
  });

  it('paused time does not bring a gate or a hold closer: no timer while paused, and the pause is added after', () => {
    fc.assert(
      fc.property(
        situationArb,
        fc.integer({ min: 1, max: 600 }).map((m) => m * MINUTE),
        ({ v, now }, pause) => {
          const s = v.s;
          // Outside deployment windows (whose own time rule holdCountsWindows covers), approvals that do not expire.
          if (v.plan.windows || s.pausedSince !== undefined) return;
          const w = waitOf(v);
          if (!w || (w.kind === 'gate' && w.gate.gate.policy?.expiresAfterMs !== undefined)) return;
          const before = waitDeadline(v, w, now);
          s.pausedSince = now;
          expect(waitDeadline(v, w, now + pause)).toBeUndefined();
          expect(waitDone(v, w, now + pause) && w.kind === 'gate').toBe(false);
          s.pausedSince = undefined;
          s.pausedMsInWait += pause;
          const after = waitDeadline(v, w, now + pause);
          if (before === undefined) expect(after).toBeUndefined();
          else expect(after).toBe(before + pause);
        },
      ),
      { numRuns: RUNS, seed: SEED },
    );
  });
});
