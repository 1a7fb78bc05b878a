// The release backtest (client/backtest-release.ts): the release's rules as pure functions of member timelines
// (when a member starts, the shared verdict), then the walk with injected measure functions: each member's own
// backtest, from the time the release would have started it.
import {
  memberStartMs,
  releaseVerdict,
  renderReleaseBacktest,
  runReleaseBacktest,
  startOrder,
  type MemberTimeline,
  type ReleaseRules,
} from '../../client/backtest-release';
import type { MeasureFn } from '../../client/backtest';
import type { AnalysisCheck } from '../../workflows/analysis-spec';
import type { RoundMeasurement } from '../../workflows/judge-v2';
import { validatePlan, type PlanSpec } from '../../workflows/plan';
import type { Plan } from '../../workflows/types';

const MIN = 60_000;
const T0 = Date.UTC(2025, 0, 1, 0, 0, 0);
const at = (minutes: number) => T0 + minutes * MIN;
const iso = (minutes: number) => new Date(at(minutes)).toISOString();

const promoted = (start: number, entered: number[], end: number): MemberTimeline => ({
  startMs: at(start),
  enteredMs: Object.fromEntries(entered.map((m, i) => [i + 1, at(m)])),
  stages: entered.length,
  outcome: { kind: 'promoted', at: iso(end), atMs: at(end) },
});
const rolledBack = (
  start: number,
  entered: number[],
  end: number,
  checks = ['error-rate'],
): MemberTimeline => ({
  startMs: at(start),
  enteredMs: Object.fromEntries(entered.map((m, i) => [i + 1, at(m)])),
  stages: 3,
  outcome: {
    kind: 'rolled_back',
    at: iso(end),
    atMs: at(end),
    stage: entered.length,
    weight: 50,
    reason: 'analysis at 50%: error-rate: 8 > abort max 5 (critical): roll back at once',
  },
  checks,
});

// payments → checkout (wave 1, bakes 30m) → eu (wave 2).
const rules = (
  promotion: 'together' | 'each' = 'together',
  extra: Partial<ReleaseRules> = {},
): ReleaseRules => ({
  members: [
    { id: 'payments', after: [], wave: 1 },
    { id: 'checkout', after: ['payments'], wave: 1 },
    { id: 'eu', after: [], wave: 2 },
  ],
  waves: [
    { wave: 1, bakeMs: 30 * MIN },
    { wave: 2, bakeMs: 0 },
  ],
  promotion,
  ...extra,
});

describe('when a member starts', () => {
  test('after those it comes after passed, and after the wave before it passed and baked', () => {
    const r = rules();
    const t = new Map<string, MemberTimeline | undefined>([['payments', promoted(0, [0, 10, 20], 20)]]);
    expect(memberStartMs(r, 'payments', new Map(), at(0))).toBe(at(0));
    expect(memberStartMs(r, 'checkout', t, at(0))).toBe(at(20));
    // The wave before it has not passed yet: checkout has no timeline.
    expect(memberStartMs(r, 'eu', t, at(0))).toBeUndefined();
    t.set('checkout', promoted(20, [20, 30, 45], 45));
    expect(memberStartMs(r, 'eu', t, at(0))).toBe(at(45 + 30));
  });

  test('promotion: each passes a member once it entered its last stage; together, once it waits at the gate', () => {
    const t = new Map<string, MemberTimeline | undefined>([['payments', promoted(0, [0, 10, 20], 25)]]);
    expect(memberStartMs(rules('together'), 'checkout', t, at(0))).toBe(at(25));
    expect(memberStartMs(rules('each'), 'checkout', t, at(0))).toBe(at(20));
  });

  test('a dependency that never passed (rolled back, or never started) never starts it', () => {
    expect(
      memberStartMs(rules(), 'checkout', new Map([['payments', rolledBack(0, [0, 10], 12)]]), at(0)),
    ).toBe(undefined);
    expect(memberStartMs(rules(), 'checkout', new Map([['payments', undefined]]), at(0))).toBeUndefined();
  });

  test('the order walks waves, then after:', () => {
    expect(startOrder(rules()).map((m) => m.id)).toEqual(['payments', 'checkout', 'eu']);
    const r = rules('together', {
      members: [
        { id: 'c', after: ['b'], wave: 1 },
        { id: 'b', after: ['a'], wave: 1 },
        { id: 'a', after: [], wave: 1 },
      ],
    });
    expect(startOrder(r).map((m) => m.id)).toEqual(['a', 'b', 'c']);
  });
});

describe('the verdict', () => {
  test('every member passed: together, they promote at once when the last one passed', () => {
    const t = new Map<string, MemberTimeline | undefined>([
      ['payments', promoted(0, [0, 10, 20], 20)],
      ['checkout', promoted(20, [20, 30, 40], 40)],
      ['eu', promoted(70, [70, 80, 90], 90)],
    ]);
    const v = releaseVerdict(rules(), t, at(0), at(200));
    expect(v.outcome).toEqual({ kind: 'promoted', at: iso(90), atMs: at(90) });
    expect(v.members.map((m) => m.state)).toEqual(['promoted', 'promoted', 'promoted']);
    expect(v.summary).toBe(
      `the release would have promoted every member together at ${iso(90)} (1h30m after --from), once eu passed its last stage`,
    );
  });

  test('the first rollback rolls back every member; those not started by then never start', () => {
    const t = new Map<string, MemberTimeline | undefined>([
      ['payments', promoted(0, [0, 10, 20], 20)],
      ['checkout', rolledBack(20, [20, 30], 33)],
      ['eu', undefined],
    ]);
    const v = releaseVerdict(rules(), t, at(0), at(200));
    expect(v.outcome).toMatchObject({
      kind: 'rolled_back',
      atMs: at(33),
      member: 'checkout',
      stage: 2,
      weight: 50,
      checks: ['error-rate'],
    });
    expect(v.members.map((m) => [m.id, m.state])).toEqual([
      ['payments', 'rolled_back_by_release'],
      ['checkout', 'rolled_back'],
      ['eu', 'skipped'],
    ]);
    expect(v.summary).toBe(
      `the release would have rolled back at ${iso(33)} (33m after --from) because member checkout rolled back ` +
        '(check error-rate) at stage 2/3 (50%): analysis at 50%: error-rate: 8 > abort max 5 (critical): roll back at once',
    );
  });

  test('of two members that roll back, the earlier one is the cause', () => {
    const r = rules('together', {
      members: [
        { id: 'a', after: [], wave: 1 },
        { id: 'b', after: [], wave: 1 },
      ],
      waves: [{ wave: 1, bakeMs: 0 }],
    });
    const t = new Map([
      ['a', rolledBack(0, [0, 10], 19, ['latency'])],
      ['b', rolledBack(0, [0, 10], 12)],
    ]);
    expect(releaseVerdict(r, t, at(0), at(60)).outcome).toMatchObject({ member: 'b', atMs: at(12) });
  });

  test('promotion: each keeps a member promoted before the rollback', () => {
    const r = rules('each', {
      members: [
        { id: 'a', after: [], wave: 1 },
        { id: 'b', after: [], wave: 1 },
      ],
      waves: [{ wave: 1, bakeMs: 0 }],
    });
    const t = new Map([
      ['a', promoted(0, [0, 5], 5)],
      ['b', rolledBack(0, [0, 10], 12)],
    ]);
    const v = releaseVerdict(r, t, at(0), at(60));
    expect(v.outcome.kind).toBe('rolled_back');
    expect(v.members.map((m) => m.state)).toEqual(['promoted', 'rolled_back']);
  });

  test('the range ends first: still running, naming who it waits for', () => {
    const t = new Map<string, MemberTimeline | undefined>([
      ['payments', promoted(0, [0, 10, 20], 20)],
      [
        'checkout',
        {
          startMs: at(20),
          enteredMs: { 1: at(20) },
          stages: 3,
          outcome: { kind: 'running', at: iso(30), atMs: at(30), stage: 1, weight: 10 },
        },
      ],
      ['eu', undefined],
    ]);
    const v = releaseVerdict(rules(), t, at(0), at(30));
    expect(v.outcome).toEqual({ kind: 'running', at: iso(30), atMs: at(30), waiting: ['checkout', 'eu'] });
    expect(v.members[2].summary).toBe(
      'never started: the wave before it had not passed and baked by the end of the range',
    );
  });
});

function planOf(spec: PlanSpec): Plan {
  const v = validatePlan(spec);
  if (!v.ok) throw new Error(JSON.stringify(v.problems, null, 2));
  return v.plan;
}

/** Every check reads `value(minutes since T0)`. */
const measureBy =
  (value: (minutes: number) => number): MeasureFn =>
  async (checks: AnalysisCheck[], atMs: number) => {
    const out: Record<string, RoundMeasurement> = {};
    for (const c of checks) out[c.name] = { value: value((atMs - T0) / MIN) };
    return out;
  };

const plan = planOf({
  analysis: {
    interval: '1m',
    checks: [
      {
        name: 'error-rate',
        metric: 'error-rate',
        success: { max: 1 },
        abort: { max: 5, severity: 'critical' },
      },
    ],
  },
  stages: [{ weight: 10, hold: '10m' }, { weight: 50, hold: '10m' }, { weight: 100 }],
} as PlanSpec);

describe('the walk: each member its own backtest, from when the release would have started it', () => {
  test('healthy members start in order, bake, and promote together', async () => {
    const healthy = measureBy(() => 0.2);
    const r = await runReleaseBacktest({
      rules: rules(),
      plans: new Map(['payments', 'checkout', 'eu'].map((id) => [id, { plan, measure: healthy }])),
      fromMs: at(0),
      toMs: at(300),
    });
    // payments 0 → 20, checkout 20 → 40, wave 1 bakes 30m, eu 70 → 90.
    expect(Object.fromEntries(Object.entries(r.backtests).map(([id, b]) => [id, b.from]))).toEqual({
      payments: iso(0),
      checkout: iso(20),
      eu: iso(70),
    });
    expect(r.outcome).toEqual({ kind: 'promoted', at: iso(90), atMs: at(90) });
    const text = renderReleaseBacktest('r', { ...rules(), onFailure: 'rollback-all' }, r, []);
    expect(text).toContain(
      `  checkout (after payments): promoted, started ${iso(20)}: passed its last stage at ${iso(40)}`,
    );
    expect(text.split('\n').pop()).toMatch(/^the release would have promoted every member together at /);
  });

  test("a breach in checkout's history rolls the release back; eu never runs", async () => {
    const measures = new Map([
      ['payments', measureBy(() => 0.2)],
      ['checkout', measureBy((m) => (m >= 32 ? 8 : 0.2))],
      ['eu', measureBy(() => 0.2)],
    ]);
    const r = await runReleaseBacktest({
      rules: rules(),
      plans: new Map([...measures].map(([id, measure]) => [id, { plan, measure }])),
      fromMs: at(0),
      toMs: at(300),
    });
    expect(Object.keys(r.backtests)).toEqual(['payments', 'checkout']);
    expect(r.outcome).toMatchObject({
      kind: 'rolled_back',
      member: 'checkout',
      atMs: at(32),
      checks: ['error-rate'],
    });
    expect(r.members.map((m) => m.state)).toEqual(['rolled_back_by_release', 'rolled_back', 'skipped']);
  });
});

test('after: { member, stage } starts a member once that one entered the stage', () => {
  const r = rules('together', {
    members: [
      { id: 'payments', after: [], wave: 1 },
      { id: 'checkout', after: ['payments'], afterStage: { payments: 2 }, wave: 1 },
    ],
    waves: [{ wave: 1, bakeMs: 0 }],
  });
  const t = new Map<string, MemberTimeline | undefined>([['payments', promoted(0, [0, 10, 20], 20)]]);
  expect(memberStartMs(r, 'checkout', t, at(0))).toBe(at(10));
  t.set('payments', rolledBack(0, [0], 5));
  expect(memberStartMs(r, 'checkout', t, at(0))).toBeUndefined();
});
