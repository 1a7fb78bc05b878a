// A round's verdict as a pure transition (workflows/machine/verdict.ts): a round's measurements and a hand-built
// state in, the commands out, with no port and no server. Examples read like the playbook; fast-check then applies
// random sequences of rounds (each check passing, between its bands, breaching, without data or failing its query,
// at random intervals, with drift now and then) with roundDrift and roundTransition alone, and checks what a person
// relies on; and the machine is shown to carry out exactly the commands a round returns, in order.
import fc from 'fast-check';
import type { ChecksMeasurement } from '../../activities/rollout-activities';
import type { RoundMeasurement } from '../../workflows/judge-types';
import { legacyRound } from '../../workflows/legacy-judge';
import type { PlanSpec } from '../../workflows/plan';
import { analyse } from '../../workflows/machine/analysis';
import { iso, MAX_ANALYSES_KEPT, type RolloutContext } from '../../workflows/machine/context';
import { RollbackRequired } from '../../workflows/machine/errors';
import { RolloutMachine } from '../../workflows/machine/machine';
import { SimPort } from '../../workflows/machine/sim';
import { initialState, type RolloutState } from '../../workflows/machine/state';
import { transition, type MachineCommand } from '../../workflows/machine/transitions';
import { roundDrift, roundTransition, type RoundEvent } from '../../workflows/machine/verdict';
import { RolloutView } from '../../workflows/machine/views';
import type { Plan } from '../../workflows/types';
import { planOf, simContext, RUNS, SEED, T0, MINUTE } from './machine-sim';

const SECOND = 1000;

// ---------- plans: one check of each kind the playbook names ----------

type CheckSpec = NonNullable<NonNullable<PlanSpec['analysis']>['checks']>[number];
const bands = { success: { max: 1 }, abort: { max: 5 } };

/** Checks by what they do on a breach; every one passes below 1 (low: up to 5) and breaches above 5. */
const CHECKS = {
  /** A critical breach rolls back at once. */
  critical: {
    name: 'errors',
    metric: 'error-rate',
    ...bands,
    abort: { ...bands.abort, severity: 'critical' },
  },
  /** A medium breach that lasts 2 minutes steps back; 3 healthy minutes go forward again; 20 more roll back. */
  medium: {
    name: 'latency',
    metric: 'latency-p95',
    ...bands,
    abort: { ...bands.abort, severity: 'medium', for: '2m', recoverAfter: '3m', rollbackAfter: '20m' },
  },
  /** Missing evidence for 3 rounds asks a person; a high breach for 3 rounds rolls back. */
  evidence: {
    name: 'success',
    metric: 'request-success-rate',
    ...bands,
    abort: { ...bands.abort, severity: 'high' },
    onNoData: { limit: 3, then: 'approval' },
  },
  /** The hybrid decision (playbook 002): a high breach for 2 rounds asks a person before it rolls back. */
  hybrid: {
    name: '5xx',
    metric: '5xx-rate',
    ...bands,
    abort: { ...bands.abort, severity: 'high', consecutive: 2, then: 'approval', decideWithin: '30m' },
  },
  /** A low breach alerts once per streak; without a success band it never holds a stage. */
  low: { name: 'p99', metric: 'latency-p99', abort: { ...bands.abort, severity: 'low' } },
} as unknown as Record<string, CheckSpec>;
type CheckKind = keyof typeof CHECKS;
const KINDS = Object.keys(CHECKS) as CheckKind[];

const STAGES = [
  { weight: 10, hold: '30m' },
  { weight: 25, hold: '30m' },
  { weight: 50, hold: '30m' },
  { weight: 100 },
];

function planWith(checks: CheckSpec[]): Plan {
  const p = planOf({
    analysis: { interval: '1m', failureLimit: 2, inconclusiveLimit: 3, checks },
    stages: STAGES,
    promotion: { cleanupDelay: '0s' },
  } as unknown as PlanSpec);
  if (!p) throw new Error(`invalid plan: ${JSON.stringify(checks)}`);
  return p;
}
const fullPlan = (...kinds: CheckKind[]) => planWith(kinds.map((k) => CHECKS[k]));
/** The short form (plans before issue 6): two checks, rolled back after 2 failing or 3 inconclusive rounds. */
const SHORT = planWith([
  { name: 'errors', metric: 'error-rate', max: 1 },
  { name: 'latency', metric: 'latency-p95', max: 5 },
] as CheckSpec[]);

/** How a rollout judges: the full form (judge-v2), short-form checks converted at the edge, or the original judge. */
type Form = 'full' | 'short' | 'legacy';

function context(p: Plan, form: Form, alertsV2 = true): RolloutContext {
  const ctx = simContext(p, alertsV2);
  return { ...ctx, flags: { ...ctx.flags, judgeV2: form === 'full' } };
}

/** A rollout in stage `stage` (0-based), entered at T0 and holding, as the walk leaves it; new or original. */
function stateIn(stage: number, form: Form): RolloutState {
  return {
    ...initialState(),
    neverStuck: form !== 'legacy',
    machineV2: form !== 'legacy',
    touched: {},
    canaryReady: true,
    stageIndex: stage,
    stageEntered: true,
    weight: STAGES[stage].weight,
    waitStartedAt: T0,
    lastAnalysisAt: T0,
    passingSince: T0,
  };
}

function viewIn(p: Plan, stage: number, form: Form = 'full', alertsV2 = true): RolloutView {
  return new RolloutView(stateIn(stage, form), context(p, form, alertsV2));
}

// ---------- rounds ----------

/** What a check measured in a round. */
type Reading = 'pass' | 'between' | 'breach' | 'noData' | 'queryError';

function measured(r: Reading): RoundMeasurement {
  switch (r) {
    case 'pass':
      return { value: 0.5 };
    case 'between':
      return { value: 3 };
    case 'breach':
      return { value: 10 };
    case 'noData':
      return { value: null };
    case 'queryError':
      return { value: null, error: { kind: 'connection', message: 'prometheus unreachable' } };
  }
}

/** A round of the view's form: each of its checks read as `readings` says (pass where it says nothing). */
function roundOf(v: RolloutView, readings: Record<string, Reading>, liveWeight?: number): RoundEvent {
  const names = v.plan.analysis.checks.map((c) => c.name);
  const live = liveWeight !== undefined ? { liveWeight } : {};
  if (!v.s.machineV2) {
    const measurements = names.map((name) => {
      const m = measured(readings[name] ?? 'pass');
      return { name, value: m.value, ...(m.error ? { error: m.error.message } : {}) };
    });
    return { type: 'legacyRound', answer: { measurements, ...live } };
  }
  const answer: ChecksMeasurement = {
    measurements: Object.fromEntries(names.map((n) => [n, measured(readings[n] ?? 'pass')])),
    ...live,
  };
  return { type: 'round', answer };
}

const types = (cs: MachineCommand[]) => cs.map((c) => c.type);
const alertsIn = (cs: MachineCommand[]) =>
  cs.filter((c): c is Extract<MachineCommand, { type: 'alert' }> => c.type === 'alert');
const shiftsIn = (cs: MachineCommand[]) =>
  cs.filter((c): c is Extract<MachineCommand, { type: 'shift' }> => c.type === 'shift');

/** What the machine records of a shift the router made exactly (RolloutMachine.applyWeight). */
function shifted(v: RolloutView, cs: MachineCommand[]): void {
  for (const c of shiftsIn(cs)) {
    // Marked before the call: the rollback knows the canary carried traffic.
    if (v.s.touched && c.weight > 0) v.s.touched.traffic = true;
    v.s.weight = c.weight;
    v.s.achievedWeight = undefined;
    v.s.routingNote = undefined;
  }
}

/** The question a round asks a person (its alert says how to go on or roll back); not the judge's own alerts. */
const asks = (c: MachineCommand) => c.type === 'alert' && c.message.includes('Traffic holds at');

describe('a round, as the playbook tells it', () => {
  it('a critical breach rolls back at once, with no other command before it', () => {
    const v = viewIn(fullPlan('critical', 'low'), 1);
    const cs = roundTransition(v, roundOf(v, { errors: 'breach', p99: 'breach' }), T0 + MINUTE);
    expect(cs).toEqual([
      {
        type: 'rollback',
        reason: expect.stringMatching(
          /^analysis at 25%: errors: 10: 10 > abort max 5 \(critical\): roll back at once/,
        ),
      },
    ]);
    // The round is recorded all the same: status shows what rolled it back.
    expect(v.s.analyses).toHaveLength(1);
    expect(v.s.analyses[0]).toMatchObject({ stage: 2, weight: 25, verdict: 'fail', action: 'rollback' });
    expect(v.s.lastVerdict).toBe('fail');
    expect(v.s.analysesRun).toBe(1);
  });

  it('a passing round marks the stage passed, keeps the passing run, and publishes', () => {
    const v = viewIn(fullPlan('critical', 'medium'), 0);
    v.s.passingSince = undefined;
    const cs = roundTransition(v, roundOf(v, {}), T0 + MINUTE);
    expect(cs).toEqual([{ type: 'publish' }]);
    expect(v.s.passedInStage).toBe(true);
    expect(v.s.passingSince).toBe(T0 + MINUTE);
    expect(v.s.lastAnalysisAt).toBe(T0 + MINUTE);
    expect(v.s.analyses[0]).toMatchObject({ verdict: 'pass', action: 'advance-ok', at: iso(T0 + MINUTE) });
    // A round between the bands holds the stage: not passed, and the passing run is broken.
    const held = viewIn(fullPlan('critical'), 0);
    expect(roundTransition(held, roundOf(held, { errors: 'between' }), T0 + MINUTE)).toEqual([
      { type: 'publish' },
    ]);
    expect([held.s.passedInStage, held.s.passingSince, held.s.lastVerdict]).toEqual([
      false,
      undefined,
      'inconclusive',
    ]);
  });

  it("a medium breach steps back to the previous stage's weight, then forward again after a healthy period", () => {
    const v = viewIn(fullPlan('medium'), 2);
    let now = T0;
    const round = (reading: Reading) => {
      now += MINUTE;
      const cs = roundTransition(v, roundOf(v, { latency: reading }), now);
      shifted(v, cs);
      return cs;
    };
    // The breach must last 2 minutes: the first two rounds hold the stage.
    expect(types(round('breach'))).toEqual(['publish']);
    expect(types(round('breach'))).toEqual(['publish']);
    // Then traffic steps back, the step back is announced, and the check's own alert says what comes next.
    const back = round('breach');
    expect(types(back)).toEqual(['shift', 'alert', 'alert', 'publish']);
    expect(back[0]).toEqual({ type: 'shift', weight: 25, why: 'step back after a medium breach' });
    expect(back[1]).toMatchObject({
      kind: 'stepped_back',
      severity: 'warning',
      message: expect.stringMatching(/^ns\/app v2: traffic stepped back from 50% to 25%: latency/),
    });
    expect(back[2]).toMatchObject({
      kind: 'check_breached',
      extra: { check: { name: 'latency', severity: 'medium' } },
      message: expect.stringContaining('rolls back if this lasts 20m'),
    });
    expect(v.s.steppedBack).toEqual({ stageWeight: 50, toWeight: 25, at: now });
    expect(types(round('breach'))).toEqual(['publish']);
    // Stepped back, it holds there while healthy rounds add up to recoverAfter (3m).
    const healthy: MachineCommand[][] = [round('pass'), round('pass'), round('pass'), round('pass')];
    const forward = healthy.find((cs) => shiftsIn(cs).length > 0);
    expect(healthy.map((cs) => shiftsIn(cs).length)).toEqual([0, 0, 0, 1]);
    expect(forward && types(forward)).toEqual(['shift', 'alert', 'alert', 'publish']);
    expect(forward?.[0]).toEqual({ type: 'shift', weight: 50, why: 'forward again after a healthy period' });
    expect(forward?.[1]).toMatchObject({
      kind: 'stepped_forward',
      severity: 'info',
      message: 'ns/app v2: healthy again; traffic back to 50%',
    });
    expect(v.s.steppedBack).toBeUndefined();
    expect(v.s.weight).toBe(50);
    // Each shift once: back, then forward.
    expect(healthy.flat().filter((c) => c.type === 'shift')).toHaveLength(1);
  });

  it('in the first stage a medium breach holds instead: no earlier weight carries canary traffic', () => {
    const v = viewIn(fullPlan('medium'), 0);
    const cs = [1, 2, 3, 4].flatMap((i) =>
      roundTransition(v, roundOf(v, { latency: 'breach' }), T0 + i * MINUTE),
    );
    expect(shiftsIn(cs)).toEqual([]);
    expect(v.s.steppedBack).toBeUndefined();
    expect(v.s.passedInStage).toBe(false);
  });

  it('missing evidence past its limit asks a person once; the evidence coming back clears the question', () => {
    const v = viewIn(fullPlan('evidence'), 1);
    const rounds = [1, 2, 3, 4, 5].map((i) =>
      roundTransition(v, roundOf(v, { success: 'noData' }), T0 + i * MINUTE),
    );
    const questions = rounds.map((cs) => cs.filter(asks));
    expect(questions.map((q) => q.length)).toEqual([0, 0, 1, 0, 0]);
    expect(questions[2][0]).toMatchObject({
      kind: 'stuck',
      severity: 'critical',
      fromHandler: false,
      message: expect.stringContaining(
        'Traffic holds at 25%: go on without that evidence with canary approve canary.ns.app --stage 2, ' +
          'or roll back with canary abort canary.ns.app --reason "why"',
      ),
    });
    expect(v.s.evidenceQuestion).toMatchObject({ checks: ['success'], since: T0 + 3 * MINUTE });
    expect(v.s.passedInStage).toBe(false);
    // The evidence comes back by itself: nobody needs to decide any more.
    expect(roundTransition(v, roundOf(v, {}), T0 + 6 * MINUTE)).toEqual([{ type: 'publish' }]);
    expect(v.s.evidenceQuestion).toBeUndefined();
    expect(v.s.passedInStage).toBe(true);
  });

  it('a person who answers the question lets the checks count afresh: asked again only after another full limit', () => {
    const v = viewIn(fullPlan('evidence'), 1);
    let asked = 0;
    for (let i = 1; i <= 3; i++) {
      asked += roundTransition(v, roundOf(v, { success: 'noData' }), T0 + i * MINUTE).filter(asks).length;
    }
    transition(v, { type: 'approve', req: { identity: 'alice' } }, T0 + 3 * MINUTE + SECOND);
    expect(v.s.evidenceQuestion).toBeUndefined();
    const again = [4, 5, 6].map(
      (i) => roundTransition(v, roundOf(v, { success: 'noData' }), T0 + i * MINUTE).filter(asks).length,
    );
    expect([asked, ...again]).toEqual([1, 0, 0, 1]);
  });

  it('a breach whose plan says then: approval asks before it rolls back, naming the check and its severity', () => {
    const v = viewIn(fullPlan('hybrid'), 1);
    roundTransition(v, roundOf(v, { '5xx': 'breach' }), T0 + MINUTE);
    const cs = roundTransition(v, roundOf(v, { '5xx': 'breach' }), T0 + 2 * MINUTE);
    expect(cs.filter(asks)).toEqual([
      {
        type: 'alert',
        kind: 'approval_needed',
        severity: 'critical',
        fromHandler: false,
        message: expect.stringContaining('Traffic holds at 25%: accept it and go on with canary approve'),
        extra: { check: { name: '5xx', severity: 'high' } },
      },
    ]);
    expect(v.s.evidenceQuestion).toMatchObject({ checks: ['5xx'], breaches: ['5xx'] });
    // The breach ends by itself: the question is moot.
    roundTransition(v, roundOf(v, {}), T0 + 3 * MINUTE);
    expect(v.s.evidenceQuestion).toBeUndefined();
  });

  it('a low breach alerts once per streak, names its check, and lets the stage pass', () => {
    const v = viewIn(fullPlan('low'), 0);
    const first = roundTransition(v, roundOf(v, { p99: 'breach' }), T0 + MINUTE);
    expect(first).toEqual([
      {
        type: 'alert',
        kind: 'check_breached',
        severity: 'warning',
        fromHandler: false,
        message: expect.stringMatching(/^ns\/app v2: p99: /),
        extra: { check: { name: 'p99', severity: 'low' } },
      },
      { type: 'publish' },
    ]);
    expect(roundTransition(v, roundOf(v, { p99: 'breach' }), T0 + 2 * MINUTE)).toEqual([{ type: 'publish' }]);
    expect(v.s.passedInStage).toBe(true);
  });

  it('drift comes before judging: roundDrift names it, and changes nothing itself', () => {
    const v = viewIn(fullPlan('critical'), 1);
    const off = roundOf(v, { errors: 'breach' }, 40);
    const before = structuredClone(v.s);
    expect(roundDrift(v, off)).toEqual([{ type: 'drift', expected: 25, found: 40 }]);
    expect(v.s).toEqual(before);
    // The judgement never returns drift: a critical breach still rolls back, paused by drift or not.
    transition(v, { type: 'drift', expected: 25, found: 40 }, T0 + MINUTE);
    expect(roundDrift(v, off)).toEqual([]);
    expect(types(roundTransition(v, off, T0 + MINUTE))).toEqual(['rollback']);
    // No drift where the weight is the one set (or achieved), unknown, or stable is taking the new version.
    const w = viewIn(fullPlan('critical'), 1);
    expect(roundDrift(w, roundOf(w, {}, 25))).toEqual([]);
    expect(roundDrift(w, roundOf(w, {}))).toEqual([]);
    w.s.achievedWeight = 24;
    expect(roundDrift(w, roundOf(w, {}, 24))).toEqual([]);
    expect(roundDrift(w, roundOf(w, {}, 25))).toEqual([{ type: 'drift', expected: 24, found: 25 }]);
    w.s.finalizing = true;
    expect(roundDrift(w, roundOf(w, {}, 40))).toEqual([]);
    // The original path asked for no live weight before drift checks: its answer was the measurements alone.
    const old = viewIn(SHORT, 1, 'legacy');
    expect(roundDrift(old, { type: 'legacyRound', answer: [{ name: 'errors', value: 0 }] })).toEqual([]);
    expect(roundDrift(old, roundOf(old, {}, 40))).toEqual([{ type: 'drift', expected: 25, found: 40 }]);
  });

  it('the short form rolls back after failureLimit failing rounds, with the message the original path gave', () => {
    for (const form of ['short', 'legacy'] as const) {
      const v = viewIn(SHORT, 1, form);
      const first = roundTransition(v, roundOf(v, { errors: 'breach' }), T0 + MINUTE);
      expect([form, first]).toEqual([form, [{ type: 'publish' }]]);
      expect(v.s.consecutiveFailures).toBe(1);
      const second = roundTransition(v, roundOf(v, { errors: 'breach' }), T0 + 2 * MINUTE);
      expect([form, second]).toEqual([
        form,
        [
          {
            type: 'rollback',
            reason: 'analysis failed 2 time(s) in a row at 25%: errors 10 > max 1; latency 0.5 ok',
          },
        ],
      ]);
    }
  });

  it('the short form rolls back after inconclusiveLimit rounds without evidence; a pass counts afresh', () => {
    for (const form of ['short', 'legacy'] as const) {
      const v = viewIn(SHORT, 0, form);
      const at = (i: number) => T0 + i * MINUTE;
      roundTransition(v, roundOf(v, { latency: 'noData' }), at(1));
      roundTransition(v, roundOf(v, { latency: 'noData' }), at(2));
      expect(roundTransition(v, roundOf(v, {}), at(3))).toEqual([{ type: 'publish' }]);
      expect([v.s.consecutiveInconclusive, v.s.passedInStage]).toEqual([0, true]);
      roundTransition(v, roundOf(v, { latency: 'noData' }), at(4));
      roundTransition(v, roundOf(v, { latency: 'noData' }), at(5));
      expect([form, roundTransition(v, roundOf(v, { latency: 'noData' }), at(6))]).toEqual([
        form,
        [
          {
            type: 'rollback',
            reason: 'no metric evidence for 3 analyses in a row at 10%: errors 0.5 ok; latency no data',
          },
        ],
      ]);
    }
  });

  it('legacyRound counts as the original path did: a failing round keeps the inconclusive count at 0, an inconclusive one leaves the failing count', () => {
    const checks = [{ name: 'errors', max: 1 }];
    const limits = { failureLimit: 3, inconclusiveLimit: 3 };
    const fail = legacyRound(
      checks,
      [{ name: 'errors', value: 2 }],
      { consecutiveFailures: 1, consecutiveInconclusive: 2 },
      limits,
      10,
    );
    expect([fail.verdict, fail.counts, fail.rollback]).toEqual([
      'fail',
      { consecutiveFailures: 2, consecutiveInconclusive: 0 },
      undefined,
    ]);
    const none = legacyRound(checks, [], { consecutiveFailures: 2, consecutiveInconclusive: 0 }, limits, 10);
    expect([none.verdict, none.counts]).toEqual([
      'inconclusive',
      { consecutiveFailures: 2, consecutiveInconclusive: 1 },
    ]);
    const pass = legacyRound(
      checks,
      [{ name: 'errors', value: 0 }],
      { consecutiveFailures: 2, consecutiveInconclusive: 2 },
      limits,
      10,
    );
    expect([pass.verdict, pass.counts]).toEqual([
      'pass',
      { consecutiveFailures: 0, consecutiveInconclusive: 0 },
    ]);
  });

  it('the analyses list stays bounded however many rounds come, and every round is counted', () => {
    const v = viewIn(fullPlan('low'), 0);
    for (let i = 1; i <= 3 * MAX_ANALYSES_KEPT; i++) roundTransition(v, roundOf(v, {}), T0 + i * MINUTE);
    expect(v.s.analyses).toHaveLength(MAX_ANALYSES_KEPT);
    expect(v.s.analysesRun).toBe(3 * MAX_ANALYSES_KEPT);
    expect(v.s.analyses.at(-1)?.at).toBe(iso(T0 + 3 * MAX_ANALYSES_KEPT * MINUTE));
  });
});

// ---------- the machine carries a round out: fetch, drift, judgement, commands ----------

/** What the machine's port saw while it carried out one round. */
interface Carried {
  /** RollbackRequired's reason, when the round rolled back. */
  rollback?: string;
  /** The steps after the fetch: shifts (weight and why) and the older alert step (kind). */
  steps: string[];
}

/**
 * Runs analyse() on a machine whose port answers the fetch with `round`'s answer, each shift as exactly done, and
 * the older alert step; `beforeAlertStep` runs before that step's answer (time may pass there).
 */
async function carry(
  m: RolloutMachine,
  port: SimPort,
  round: RoundEvent,
  beforeAlertStep: () => void = () => undefined,
): Promise<Carried> {
  const out: Carried = { steps: [] };
  let settled = false;
  analyse(m).then(
    () => (settled = true),
    (err: unknown) => {
      settled = true;
      if (!(err instanceof RollbackRequired)) throw err;
      out.rollback = err.reason;
    },
  );
  for (;;) {
    await new Promise((r) => setImmediate(r));
    if (settled) return out;
    const p = port.steps.shift();
    if (!p) throw new Error(`analyse waits for nothing it was given: ${port.waiting().join(', ')}`);
    const [arg] = p.command.args as unknown as [Record<string, unknown>];
    switch (p.command.step) {
      case 'measureChecks':
      case 'runAnalysis':
        p.resolve(round.answer);
        break;
      case 'setCanaryWeight':
        out.steps.push(`shift ${String(arg.weight)}: ${p.command.summary.split(':')[0]}`);
        p.resolve({ previous: m.s.weight, current: arg.weight });
        break;
      case 'sendAlert':
        out.steps.push(`alert ${String(arg.event)}`);
        beforeAlertStep();
        p.resolve(undefined);
        break;
      default:
        throw new Error(`unexpected step ${p.command.step}`);
    }
  }
}

describe('the machine carries a round out', () => {
  it('takes the drift first (published and alerted), then judges the round at the time after its alert', async () => {
    // A rollout from before alert-sinks-v2: its alert is a step, and time passes while it runs.
    const p = fullPlan('critical');
    const port = new SimPort(T0 + MINUTE);
    const m = new RolloutMachine(stateIn(1, 'full'), context(p, 'full', false), port);
    const analysesAtPublish: number[] = [];
    port.onPublish = () => analysesAtPublish.push(m.s.analyses.length);
    const out = await carry(m, port, roundOf(m, { errors: 'pass' }, 40), () => (port.clock += 5 * SECOND));
    expect(out).toEqual({ steps: ['alert drift_detected'] });
    expect(m.s.drift).toEqual({ expected: 25, found: 40, at: T0 + MINUTE });
    expect(m.s.pausedBy).toBe('drift detection');
    // The drift's publish saw no round yet; the round's own publish came last.
    expect(analysesAtPublish).toEqual([0, 1]);
    expect(m.s.analyses[0].at).toBe(iso(T0 + MINUTE + 5 * SECOND));
    expect(m.s.lastAnalysisAt).toBe(T0 + MINUTE + 5 * SECOND);
  });

  it('a step back shifts, and its alert reads the weight the shift set', async () => {
    const port = new SimPort(T0);
    const m = new RolloutMachine(stateIn(2, 'full'), context(fullPlan('medium'), 'full'), port);
    m.sinkNames = ['log'];
    for (let i = 1; i <= 3; i++) {
      port.clock = T0 + i * MINUTE;
      const out = await carry(m, port, roundOf(m, { latency: 'breach' }));
      expect(out.steps).toEqual(i < 3 ? [] : ['shift 25: step back after a medium breach']);
    }
    expect(port.alerts.map((a) => [a.kind, a.weight])).toEqual([
      ['stepped_back', 25],
      ['check_breached', 25],
    ]);
    expect(m.s.weight).toBe(25);
  });

  it('a rollback throws RollbackRequired with the round recorded, and nothing else happens', async () => {
    const port = new SimPort(T0 + MINUTE);
    const m = new RolloutMachine(stateIn(1, 'full'), context(fullPlan('critical', 'low'), 'full'), port);
    m.sinkNames = ['log'];
    let publishes = 0;
    port.onPublish = () => publishes++;
    const out = await carry(m, port, roundOf(m, { errors: 'breach', p99: 'breach' }));
    expect(out.rollback).toMatch(/^analysis at 25%: errors: /);
    expect([out.steps, port.alerts, publishes, m.s.analyses.length]).toEqual([[], [], 0, 1]);
  });
});

// ---------- random sequences of rounds ----------

const readingArb = fc.constantFrom<Reading>(
  'pass',
  'pass',
  'pass',
  'pass',
  'between',
  'breach',
  'breach',
  'noData',
  'queryError',
);

const roundStepArb = fc.record({
  dt: fc.constantFrom(30 * SECOND, MINUTE, MINUTE, MINUTE, 2 * MINUTE, 5 * MINUTE, 30 * MINUTE),
  /** What each of the plan's checks reads, by its place in the plan. */
  readings: fc.array(readingArb, { minLength: KINDS.length, maxLength: KINDS.length }),
  /** The router's live weight: where this rollout set it, elsewhere (drift), or unreadable. */
  live: fc.constantFrom('set', 'set', 'set', 'set', 'set', 'set', 'set', 'off', 'unread'),
  /** A person between rounds: nobody, an approval (answers a question), or a resume (after drift). */
  person: fc.constantFrom('none', 'none', 'none', 'none', 'none', 'approve', 'resume'),
});
type RoundStep = typeof roundStepArb extends fc.Arbitrary<infer T> ? T : never;

const sequenceArb = fc.record({
  form: fc.constantFrom<Form>('full', 'full', 'full', 'short', 'legacy'),
  kinds: fc.subarray(KINDS, { minLength: 1 }),
  stage: fc.integer({ min: 0, max: STAGES.length - 1 }),
  alertsV2: fc.boolean(),
  // Long enough to fill the analyses list, step back and forward, and roll back.
  rounds: fc.array(roundStepArb, { maxLength: 80, size: 'medium' }),
});
type Sequence = typeof sequenceArb extends fc.Arbitrary<infer T> ? T : never;

const PLANS = new Map<string, Plan>();
function planFor(sq: Sequence): Plan {
  if (sq.form !== 'full') return SHORT;
  const key = sq.kinds.join(',');
  if (!PLANS.has(key)) PLANS.set(key, fullPlan(...sq.kinds));
  return PLANS.get(key)!;
}

/** The round a step reads, for the view's plan: each check in the plan's order takes the step's reading there. */
function roundFor(v: RolloutView, step: RoundStep): RoundEvent {
  const readings = Object.fromEntries(v.plan.analysis.checks.map((c, i) => [c.name, step.readings[i]]));
  const set = v.s.achievedWeight ?? v.s.weight;
  const live = step.live === 'set' ? set : step.live === 'off' ? set + 7 : undefined;
  return roundOf(v, readings, live);
}

/** A person's message before the round, as the walk would take it (a resume after drift restores the weight). */
function person(v: RolloutView, step: RoundStep, now: number): void {
  if (step.person === 'approve' && v.s.evidenceQuestion) {
    transition(v, { type: 'approve', req: { identity: 'alice' } }, now);
  } else if (step.person === 'resume' && v.s.pausedSince !== undefined) {
    transition(v, { type: 'resume', req: { identity: 'alice' } }, now);
    // The walk puts the planned weight back before its next round (watch(), then shift restoring it).
    v.s.drift = undefined;
  }
}

interface Stats {
  cases: number;
  rounds: number;
  rollbacks: number;
  stepsBack: number;
  forward: number;
  questions: number;
  drifts: number;
  mostAnalyses: number;
}

/** Applies the sequence's rounds with roundDrift and roundTransition alone; returns what broke (empty: nothing). */
function runRounds(sq: Sequence, stats: Stats): string[] {
  const broke: string[] = [];
  const v = viewIn(planFor(sq), sq.stage, sq.form, sq.alertsV2);
  const s = v.s;
  const stageWeight = v.plan.stages[s.stageIndex].weight;
  const firstWeight = v.plan.stages[0].weight;
  let now = T0;
  for (const [i, step] of sq.rounds.entries()) {
    now += step.dt;
    person(v, step, now);
    stats.rounds++;
    const where = `round ${i + 1} (${sq.form}, stage ${s.stageIndex + 1} at ${s.weight}%)`;
    const round = roundFor(v, step);
    const drifting = step.live === 'off' && !s.drift;
    const drift = roundDrift(v, round);
    if (drift.length !== (drifting ? 1 : 0)) broke.push(`${where}: drift ${JSON.stringify(drift)}`);
    for (const d of drift) {
      if (d.type !== 'drift') broke.push(`${where}: roundDrift returned ${d.type}`);
      else transition(v, { type: 'drift', expected: d.expected, found: d.found }, now);
      stats.drifts++;
    }
    const asked = s.evidenceQuestion;
    const counted = s.analysesRun ?? s.analyses.length;
    const cs = roundTransition(v, round, now);
    const kinds = types(cs);
    if (kinds.includes('rollback')) {
      stats.rollbacks++;
      if (kinds.length !== 1) broke.push(`${where}: a rollback came with ${kinds}`);
    } else if (kinds.filter((k) => k === 'publish').length !== 1 || kinds.at(-1) !== 'publish') {
      broke.push(`${where}: a round that goes on publishes once, last: ${kinds}`);
    }
    if (kinds.includes('drift') || kinds.includes('wake'))
      broke.push(`${where}: judgement returned ${kinds}`);
    for (const c of shiftsIn(cs)) {
      if (c.weight > stageWeight)
        broke.push(`${where}: shift to ${c.weight}% above the stage's ${stageWeight}%`);
      if (c.weight < firstWeight || c.weight <= 0) {
        broke.push(`${where}: shift to ${c.weight}%, below the first stage's ${firstWeight}%`);
      }
      if (c.weight < stageWeight) stats.stepsBack++;
      else stats.forward++;
    }
    if (alertsIn(cs).some((a) => a.fromHandler))
      broke.push(`${where}: a round's alert raised as a handler's`);
    const questions = cs.filter(asks).length;
    stats.questions += questions;
    if (questions > 1 || (questions === 1 && asked !== undefined)) {
      broke.push(
        `${where}: asked ${questions} time(s) with a question already waiting: ${JSON.stringify(asked)}`,
      );
    }
    if (questions === 1 && !s.evidenceQuestion) broke.push(`${where}: asked without keeping the question`);
    if ((s.analysesRun ?? 0) !== counted + 1)
      broke.push(`${where}: analysesRun ${s.analysesRun} after ${counted}`);
    stats.mostAnalyses = Math.max(stats.mostAnalyses, s.analyses.length);
    if (s.analyses.length > MAX_ANALYSES_KEPT) broke.push(`${where}: ${s.analyses.length} analyses kept`);
    shifted(v, cs);
    if (s.steppedBack && (s.weight !== s.steppedBack.toWeight || s.stageIndex === 0)) {
      broke.push(`${where}: stepped back ${JSON.stringify(s.steppedBack)} at ${s.weight}%`);
    }
    if (!s.steppedBack && s.weight !== stageWeight) broke.push(`${where}: at ${s.weight}%, not stepped back`);
    if (broke.length > 0 || kinds.includes('rollback')) break;
  }
  return broke;
}

test(`${RUNS} random sequences of rounds keep what a person relies on (roundTransition alone)`, () => {
  const stats: Stats = {
    cases: 0,
    rounds: 0,
    rollbacks: 0,
    stepsBack: 0,
    forward: 0,
    questions: 0,
    drifts: 0,
    mostAnalyses: 0,
  };
  fc.assert(
    fc.property(sequenceArb, (sq) => {
      stats.cases++;
      const broke = runRounds(sq, stats);
      if (broke.length > 0) throw new Error(broke.join('\n'));
    }),
    { numRuns: RUNS, seed: SEED },
  );
  // Recorded for the CI log: how many sequences ran, and what they reached.
  console.log(
    `rollout rounds: ${stats.cases} random sequences, ${stats.rounds} rounds: ${stats.rollbacks} rollbacks, ` +
      `${stats.stepsBack} steps back, ${stats.forward} forward again, ${stats.questions} questions, ` +
      `${stats.drifts} drifts, at most ${stats.mostAnalyses} analyses kept`,
  );
  expect(stats.cases).toBe(RUNS);
  if (RUNS >= 1000) {
    expect(
      Math.min(stats.rollbacks, stats.stepsBack, stats.forward, stats.questions, stats.drifts),
    ).toBeGreaterThan(0);
    expect(stats.mostAnalyses).toBe(MAX_ANALYSES_KEPT);
  }
}, 120_000);

test(`${Math.ceil(RUNS / 10)} random sequences: RolloutMachine carries out exactly what a round returns, in order`, async () => {
  let cases = 0;
  await fc.assert(
    fc.asyncProperty(sequenceArb, async (sq) => {
      cases++;
      const p = planFor(sq);
      const s0 = stateIn(sq.stage, sq.form);
      const ctx = context(p, sq.form, sq.alertsV2);
      const port = new SimPort(T0);
      const m = new RolloutMachine(structuredClone(s0), ctx, port);
      m.sinkNames = ['log'];
      let publishes = 0;
      port.onPublish = () => publishes++;
      const v = new RolloutView(structuredClone(s0), ctx);
      for (const step of sq.rounds) {
        port.clock += step.dt;
        // People stay out of it here: their messages are transitions.ts' (machine-transitions.test.ts).
        const round = roundFor(v, step);
        const alertsBefore = port.alerts.length;
        const publishedBefore = publishes;
        const carried = await carry(m, port, round);
        // What the round said, applied to the view as the machine's shift records it.
        const said: MachineCommand[] = [];
        for (const d of roundDrift(v, round)) {
          if (d.type === 'drift') {
            said.push(
              ...transition(v, { type: 'drift', expected: d.expected, found: d.found }, port.clock).commands,
            );
          }
        }
        said.push(...roundTransition(v, round, port.clock));
        shifted(v, said);
        const rollback = said.find((c) => c.type === 'rollback');
        const alerts = alertsIn(said).filter((a) => sq.alertsV2 || !['stuck'].includes(a.kind));
        const seen = {
          rollback: carried.rollback,
          shifts: carried.steps.filter((x) => x.startsWith('shift')),
          alerts: sq.alertsV2
            ? port.alerts.slice(alertsBefore).map((a) => `${a.kind} ${a.severity}: ${a.message}`)
            : carried.steps.filter((x) => x.startsWith('alert')),
          publishes: publishes - publishedBefore,
          state: { ...m.s, alertSeq: undefined },
        };
        const expected = {
          rollback: rollback?.type === 'rollback' ? rollback.reason : undefined,
          shifts: shiftsIn(said).map((c) => `shift ${c.weight}: ${c.why}`),
          alerts: sq.alertsV2
            ? alerts.map((a) => `${a.kind} ${a.severity}: ${a.message}`)
            : alerts.map((a) => `alert ${a.kind}`),
          publishes: said.filter((c) => c.type === 'publish').length,
          state: { ...v.s, alertSeq: undefined },
        };
        // Compared as JSON (absent and undefined fields alike), with expect only for the report of a difference.
        if (JSON.stringify(seen) !== JSON.stringify(expected)) expect(seen).toEqual(expected);
        if (rollback) break;
      }
    }),
    { numRuns: Math.ceil(RUNS / 10), seed: SEED },
  );
  expect(cases).toBe(Math.ceil(RUNS / 10));
}, 120_000);
