// The backtest loop (client/backtest.ts) with an injected measure function: the live rollout's judges and stage
// walk on simulated time, without Prometheus. Exact round times and decisions.
import {
  BacktestInputError,
  MAX_BACKTEST_ROUNDS,
  checkRange,
  parseTime,
  renderBacktest,
  runBacktest,
  type BacktestResult,
  type MeasureFn,
} from '../../client/backtest';
import type { AnalysisCheck } from '../../workflows/analysis-spec';
import type { RoundMeasurement } from '../../workflows/judge-v2';
import { validatePlan, type PlanSpec } from '../../workflows/plan';
import { validateTarget } from '../../workflows/target';
import type { Plan } from '../../workflows/types';

const MIN = 60_000;
const T0 = Date.UTC(2025, 0, 1, 0, 0, 0);
const at = (minutes: number) => T0 + minutes * MIN;
const isoAt = (minutes: number) => new Date(at(minutes)).toISOString();

function planOf(spec: PlanSpec): Plan {
  const v = validatePlan(spec);
  if (!v.ok) throw new Error(JSON.stringify(v.problems, null, 2));
  return v.plan;
}

/** Every check gets the value `value(minutes since T0)`; null is "no data". */
function measureBy(value: (minutes: number) => number | null): MeasureFn & { calls: number[] } {
  const calls: number[] = [];
  const fn = async (checks: AnalysisCheck[], atMs: number) => {
    calls.push((atMs - T0) / MIN);
    const out: Record<string, RoundMeasurement> = {};
    for (const c of checks) out[c.name] = { value: value((atMs - T0) / MIN) };
    return out;
  };
  return Object.assign(fn, { calls });
}

const run = (plan: Plan, measure: MeasureFn, toMinutes = 120): Promise<BacktestResult> =>
  runBacktest({ plan, fromMs: T0, toMs: at(toMinutes), measure });

const decisions = (r: BacktestResult) => r.rounds.map((x) => `${(x.atMs - T0) / MIN} ${x.decision}`);

const ERROR_RATE_CRITICAL = {
  name: 'error-rate',
  metric: 'error-rate',
  success: { max: 1 },
  abort: { max: 5, severity: 'critical' },
};

/** 10 % for 10 minutes, then 50 % behind an approval gate for 10 minutes, then 100 %. */
function twoStages(check: object, hold2 = '10m'): Plan {
  return planOf({
    analysis: { interval: '1m', checks: [check] },
    stages: [{ weight: 10, hold: '10m' }, { weight: 50, hold: hold2, gate: 'approval' }, { weight: 100 }],
  } as PlanSpec);
}

describe('full analysis form (judge-v2)', () => {
  test('a healthy history promotes once every hold is served, gates assumed approved', async () => {
    const measure = measureBy(() => 0.2);
    const r = await run(twoStages(ERROR_RATE_CRITICAL), measure);
    expect(r.judge).toBe('judge-v2');
    expect(r.outcome).toEqual({ kind: 'promoted', at: isoAt(20), atMs: at(20) });
    expect(r.summary).toBe(`would have promoted at ${isoAt(20)} (20m after --from)`);
    // A round every minute from each stage's entry; a stage moves on only after the round at its hold's end.
    expect(measure.calls).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20]);
    expect(r.rounds.every((x) => x.verdict === 'pass' && x.action === 'advance-ok')).toBe(true);
    expect(r.rounds[0]).toMatchObject({
      at: isoAt(1),
      stage: 1,
      weight: 10,
      checks: [{ name: 'error-rate', value: 0.2, outcome: 'pass', severity: 'critical' }],
    });
    expect(r.rounds[9]).toMatchObject({ at: isoAt(10), stage: 1, weight: 10, decision: 'advance' });
    expect(r.rounds[10]).toMatchObject({ at: isoAt(11), stage: 2, weight: 50 });
    expect(r.events.map((e) => [(e.atMs - T0) / MIN, e.kind, e.stage, e.weight])).toEqual([
      [0, 'stage_entered', 1, 10],
      [10, 'approval_assumed', 2, 10],
      [10, 'stage_entered', 2, 50],
      [20, 'stage_entered', 3, 100],
      [20, 'promoted', 3, 100],
    ]);
    expect(r.assumptions.join('\n')).toMatch(/approval gates were assumed approved at once \(stage 2\)/);
    expect(r.assumptions.join('\n')).toMatch(/stage weights do not change the historical data/);
  });

  test('a promotion gate is assumed approved once the final hold is served', async () => {
    const plan = planOf({
      analysis: { interval: '1m', checks: [ERROR_RATE_CRITICAL] },
      stages: [
        { weight: 10, hold: '10m', gate: 'approval' },
        { weight: 100, hold: '5m' },
      ],
      promotion: { gate: 'approval' },
    } as PlanSpec);
    const r = await run(
      plan,
      measureBy(() => 0.2),
    );
    expect(r.outcome).toEqual({ kind: 'promoted', at: isoAt(15), atMs: at(15) });
    expect(r.events.map((e) => [(e.atMs - T0) / MIN, e.kind, e.stage, e.message])).toEqual([
      [0, 'approval_assumed', 1, 'stage 1/2: approval gate assumed approved'],
      [0, 'stage_entered', 1, 'stage 1/2 entered: canary at 10% for 10m'],
      [10, 'stage_entered', 2, 'stage 2/2 entered: canary at 100% for 5m'],
      [15, 'approval_assumed', 2, 'stage 2/2: promotion gate assumed approved'],
      [15, 'promoted', 2, 'promoted: stage 2/2 served its hold'],
    ]);
    expect(r.assumptions.join('\n')).toMatch(
      /approval gates were assumed approved at once \(stage 1 and the promotion\)/,
    );
  });

  test('a critical breach rolls back at the first round that sees it', async () => {
    const r = await run(
      twoStages(ERROR_RATE_CRITICAL),
      measureBy((m) => (m >= 13 ? 8 : 0.2)),
    );
    expect(r.outcome).toMatchObject({ kind: 'rolled_back', atMs: at(13), stage: 2, weight: 50 });
    expect(r.outcome.kind === 'rolled_back' && r.outcome.reason).toMatch(
      /^analysis at 50%: error-rate: 8: 8 > abort max 5 \(critical\): roll back at once$/,
    );
    expect(decisions(r).slice(-2)).toEqual(['12 continue', '13 rollback']);
    expect(r.rounds).toHaveLength(13);
    expect(r.events[r.events.length - 1]).toMatchObject({ kind: 'rolled_back', atMs: at(13) });
    expect(r.summary).toMatch(
      new RegExp(`^would have rolled back at ${isoAt(13)} \\(13m after --from, stage 2/3 at 50%\\) because`),
    );
  });

  /** The hybrid decision: a critical breach asks a person, who has 4 minutes. */
  const ASKING = {
    ...ERROR_RATE_CRITICAL,
    abort: { max: 5, severity: 'critical', then: 'approval', decideWithin: '4m' },
  };

  test('a breach that asks a person (then: approval) is left unanswered: asked once, rolled back at decideWithin', async () => {
    const r = await run(
      twoStages(ASKING),
      measureBy((m) => (m >= 3 ? 8 : 0.2)),
    );
    expect(r.outcome).toMatchObject({ kind: 'rolled_back', atMs: at(7), stage: 1, weight: 10 });
    expect(r.outcome.kind === 'rolled_back' && r.outcome.reason).toMatch(
      /^analysis at 10%: error-rate: 8: 8 > abort max 5 \(critical\); nobody decided within 4m: roll back$/,
    );
    expect(decisions(r)).toEqual([
      '1 continue',
      '2 continue',
      '3 hold',
      '4 hold',
      '5 hold',
      '6 hold',
      '7 rollback',
    ]);
    expect(r.rounds[2].action).toBe('await-approval');
    expect(r.events.filter((e) => e.kind === 'person_asked').map((e) => (e.atMs - T0) / MIN)).toEqual([3]);
    expect(r.assumptions.join('\n')).toMatch(
      /a breach that asks a person \(then: approval: error-rate\) was left unanswered/,
    );
  });

  test('a breach that asks and ends before decideWithin: the stage goes on', async () => {
    const r = await run(
      twoStages(ASKING),
      measureBy((m) => (m >= 3 && m < 5 ? 8 : 0.2)),
    );
    expect(r.outcome).toMatchObject({ kind: 'promoted' });
    expect(r.events.filter((e) => e.kind === 'person_asked')).toHaveLength(1);
  });

  const HIGH_FOR_3M = {
    name: 'error-rate',
    metric: 'error-rate',
    success: { max: 1 },
    abort: { max: 5, severity: 'high', for: '3m' },
  };

  test('a high check with for: 3m holds through a 2-minute blip and still promotes on time', async () => {
    const r = await run(
      twoStages(HIGH_FOR_3M),
      measureBy((m) => (m >= 4 && m < 6 ? 8 : 0.2)),
    );
    expect(r.outcome).toMatchObject({ kind: 'promoted', atMs: at(20) });
    expect(decisions(r).slice(2, 7)).toEqual(['3 continue', '4 hold', '5 hold', '6 continue', '7 continue']);
    expect(r.rounds[3].checks[0]).toMatchObject({
      outcome: 'breach',
      note: expect.stringMatching(/for 0s of 3m/),
    });
    expect(r.rounds[4].checks[0].note).toMatch(/for 1m of 3m/);
  });

  test('the same check rolls back once the breach has lasted 3 minutes', async () => {
    const r = await run(
      twoStages(HIGH_FOR_3M),
      measureBy((m) => (m >= 4 ? 8 : 0.2)),
    );
    expect(r.outcome).toMatchObject({ kind: 'rolled_back', atMs: at(7), stage: 1, weight: 10 });
    expect(decisions(r).slice(3)).toEqual(['4 hold', '5 hold', '6 hold', '7 rollback']);
  });

  test('a stage whose latest round did not pass advances at the next passing round', async () => {
    // 2 % is between the bands at minute 9: the hold is served at 10, but only the round of 10 gives evidence.
    const r = await run(
      twoStages(ERROR_RATE_CRITICAL),
      measureBy((m) => (m === 9 ? 2 : 0.2)),
    );
    expect(decisions(r).slice(7, 11)).toEqual(['8 continue', '9 hold', '10 advance', '11 continue']);
    expect(r.events.find((e) => e.kind === 'stage_entered' && e.stage === 2)?.atMs).toBe(at(10));
    expect(r.outcome).toMatchObject({ kind: 'promoted', atMs: at(20) });
  });

  const MEDIUM = {
    name: 'p95',
    metric: 'latency-p95',
    success: { max: 300 },
    abort: { max: 500, severity: 'medium', recoverAfter: '3m', rollbackAfter: '10m' },
  };

  test('a medium breach steps back to the previous weight, and forward after recoverAfter', async () => {
    const r = await run(
      twoStages(MEDIUM, '30m'),
      measureBy((m) => (m >= 12 && m < 14 ? 800 : 100)),
    );
    expect(decisions(r).slice(11, 19)).toEqual([
      '12 step-back',
      '13 hold',
      '14 hold',
      '15 hold',
      '16 hold',
      '17 step-forward',
      '18 continue',
      '19 continue',
    ]);
    expect(r.rounds.map((x) => x.weight).slice(11, 19)).toEqual([50, 10, 10, 10, 10, 10, 50, 50]);
    expect(
      r.events.filter((e) => e.kind.startsWith('stepped')).map((e) => [e.kind, (e.atMs - T0) / MIN]),
    ).toEqual([
      ['stepped_back', 12],
      ['stepped_forward', 17],
    ]);
    expect(r.outcome).toMatchObject({ kind: 'promoted', atMs: at(40) });
  });

  test('a medium breach that outlasts rollbackAfter rolls back', async () => {
    const r = await run(
      twoStages(MEDIUM, '30m'),
      measureBy((m) => (m >= 12 ? 800 : 100)),
    );
    expect(r.outcome).toMatchObject({ kind: 'rolled_back', atMs: at(22), stage: 2, weight: 10 });
    expect(r.outcome.kind === 'rolled_back' && r.outcome.reason).toMatch(
      /still breaching 10m after stepping back/,
    );
  });

  test('no data holds, and rolls back at the onNoData limit', async () => {
    const r = await run(
      twoStages({ ...ERROR_RATE_CRITICAL, onNoData: { action: 'hold', limit: 4, then: 'rollback' } }),
      measureBy((m) => (m >= 3 ? null : 0.2)),
    );
    expect(decisions(r).slice(2)).toEqual(['3 hold', '4 hold', '5 hold', '6 rollback']);
    expect(r.rounds[2]).toMatchObject({
      verdict: 'inconclusive',
      checks: [{ value: null, outcome: 'no_data' }],
    });
  });

  test('the range ends before the plan does', async () => {
    const r = await run(
      twoStages(ERROR_RATE_CRITICAL),
      measureBy(() => 0.2),
      15,
    );
    expect(r.outcome).toEqual({ kind: 'running', at: isoAt(15), atMs: at(15), stage: 2, weight: 50 });
    expect(r.rounds[r.rounds.length - 1].atMs).toBe(at(15));
    expect(r.summary).toBe(`still at stage 2/3 (50%) when the range ended at ${isoAt(15)}`);
  });
});

test('a query the source rejects (bad_query) fails its check at once, as in a new rollout: critical rolls back', async () => {
  const measure: MeasureFn = async (checks, atMs) =>
    Object.fromEntries(
      checks.map((c) => [
        c.name,
        atMs >= at(3)
          ? { value: null, error: { kind: 'bad_query', message: 'parse error' } }
          : { value: 0.2 },
      ]),
    );
  const r = await run(twoStages(ERROR_RATE_CRITICAL), measure);
  expect(r.outcome).toMatchObject({ kind: 'rolled_back', atMs: at(3), stage: 1 });
  expect(r.outcome.kind === 'rolled_back' && r.outcome.reason).toMatch(/parse error/);
});

test('notes: rounds without any data, and failed queries', async () => {
  const measure: MeasureFn = async (checks, atMs) =>
    Object.fromEntries(
      checks.map((c) => [
        c.name,
        atMs === at(2)
          ? { value: null, error: { kind: 'unreachable', message: 'connection refused' } }
          : { value: atMs >= at(5) ? null : 0.2 },
      ]),
    );
  const r = await run(twoStages(ERROR_RATE_CRITICAL), measure, 8);
  expect(r.notes).toEqual([
    `4 of 7 rounds had no data for any check, the first at ${isoAt(2)}: is the range within Prometheus's ` +
      "retention, and do the target and versions match the series' labels?",
    '1 check measurements failed (error-rate: unreachable: connection refused); a live rollout would have met the same failure',
  ]);
  expect(r.rounds[1]).toMatchObject({ checks: [{ outcome: 'query_failed' }] });
  const v = validateTarget({ app: 'a', namespace: 'b' });
  if (!v.ok) throw new Error('bad target');
  const lines = renderBacktest(r, {
    planSource: 'p',
    plan: twoStages(ERROR_RATE_CRITICAL),
    target: v.target,
  }).split('\n');
  expect(lines.slice(-3)).toEqual([`Note: ${r.notes[0]}`, `Note: ${r.notes[1]}`, r.summary]);
});

describe('short-form plans (the original judge)', () => {
  const shortPlan = (extra: object = {}) =>
    planOf({
      analysis: {
        interval: '1m',
        failureLimit: 2,
        checks: [{ name: 'error-rate', metric: 'error-rate', max: 1 }],
        ...extra,
      },
      stages: [{ weight: 10, hold: '10m' }, { weight: 100 }],
    } as PlanSpec);

  test('are measured over the plan window and judged by failureLimit', async () => {
    const seen: AnalysisCheck[][] = [];
    const measure: MeasureFn = async (checks, atMs) => {
      seen.push(checks);
      return { 'error-rate': { value: atMs >= at(4) ? 5 : 0.2 } };
    };
    const r = await run(shortPlan(), measure);
    expect(r.judge).toBe('judge');
    expect(seen[0]).toEqual([
      expect.objectContaining({ name: 'error-rate', metric: 'error-rate', windowMs: 60_000 }),
    ]);
    expect(decisions(r)).toEqual(['1 continue', '2 continue', '3 continue', '4 hold', '5 rollback']);
    expect(r.outcome).toMatchObject({
      kind: 'rolled_back',
      atMs: at(5),
      reason: 'analysis failed 2 time(s) in a row at 10%: error-rate 5 > max 1',
    });
    expect(r.rounds[3]).toMatchObject({ verdict: 'fail', checks: [{ value: 5, outcome: 'fail' }] });
  });

  test('roll back after inconclusiveLimit analyses without data', async () => {
    const r = await run(
      shortPlan({ inconclusiveLimit: 3 }),
      measureBy(() => null),
    );
    expect(r.outcome).toMatchObject({
      kind: 'rolled_back',
      atMs: at(3),
      reason: 'no metric evidence for 3 analyses in a row at 10%: error-rate no data',
    });
  });

  test('promote after a healthy hold', async () => {
    const r = await run(
      shortPlan(),
      measureBy(() => 0.2),
    );
    expect(r.outcome).toMatchObject({ kind: 'promoted', atMs: at(10) });
    expect(r.rounds).toHaveLength(10);
    expect(r.rounds[9]).toMatchObject({ atMs: at(10), decision: 'advance' });
  });
});

test('a plan without checks measures nothing and moves by time alone', async () => {
  const measure = measureBy(() => 0.2);
  const r = await run(
    planOf({ stages: [{ weight: 10, hold: '10m' }, { weight: 50, hold: '5m' }, { weight: 100 }] }),
    measure,
  );
  expect(measure.calls).toEqual([]);
  expect(r.rounds).toEqual([]);
  expect(r.outcome).toMatchObject({ kind: 'promoted', atMs: at(15) });
  expect(r.assumptions.join('\n')).toMatch(/no checks/);
});

describe('checks of some stages only (stages:)', () => {
  // Flagger's DEP-CANARY: "no errors" at 5 % only; everywhere errors under 1 % advance and over 5 % roll back.
  const plan = (onlyFirst: object[] = []) =>
    planOf({
      analysis: {
        interval: '1m',
        checks: [
          { name: 'no-errors', metric: 'error-rate', success: { max: 0 }, stages: [1] },
          ERROR_RATE_CRITICAL,
          ...onlyFirst,
        ],
      },
      stages: [{ weight: 5, hold: '10m' }, { weight: 50, hold: '10m' }, { weight: 100 }],
    } as PlanSpec);
  const names = (r: BacktestResult, minute: number) =>
    r.rounds.find((x) => x.atMs === at(minute))?.checks.map((c) => c.name);

  test('a check of stage 1 holds it there, and is neither measured nor judged after it', async () => {
    const calls: string[][] = [];
    const measure: MeasureFn = async (checks, atMs) => {
      calls.push(checks.map((c) => c.name));
      const m = (atMs - T0) / MIN;
      return Object.fromEntries(checks.map((c) => [c.name, { value: m >= 12 ? 0.3 : 0 }]));
    };
    const r = await run(plan(), measure);
    expect(names(r, 5)).toEqual(['no-errors', 'error-rate']);
    expect(names(r, 15)).toEqual(['error-rate']);
    expect(calls[0]).toEqual(['no-errors', 'error-rate']);
    expect(calls[calls.length - 1]).toEqual(['error-rate']);
    expect(r.outcome).toMatchObject({ kind: 'promoted', atMs: at(20) });

    // The same 0.3 % from the start: stage 1 never passes "no errors", stage 2 is never reached.
    const held = await run(
      plan(),
      measureBy(() => 0.3),
      60,
    );
    expect(held.outcome).toMatchObject({ kind: 'running', stage: 1, weight: 5 });
    expect(held.rounds.every((x) => x.decision === 'hold')).toBe(true);
  });

  test('a stage none of whose checks apply moves by time alone', async () => {
    const r = await run(
      planOf({
        analysis: {
          interval: '1m',
          checks: [{ name: 'no-errors', metric: 'error-rate', success: { max: 0 }, stages: [1] }],
        },
        stages: [{ weight: 5, hold: '10m' }, { weight: 50, hold: '10m' }, { weight: 100 }],
      } as PlanSpec),
      measureBy(() => 0),
    );
    // Minutes 1-10: the hold is served at 10, after the round of that minute.
    expect(r.rounds.map((x) => x.stage)).toEqual(Array(10).fill(1));
    expect(r.outcome).toMatchObject({ kind: 'promoted', atMs: at(20) });
  });
});

describe('healthyFor: "maintained for 10 continuous minutes"', () => {
  const plan = planOf({
    analysis: { interval: '1m', checks: [ERROR_RATE_CRITICAL] },
    stages: [{ weight: 10, hold: '10m', healthyFor: '10m' }, { weight: 100 }],
  } as PlanSpec);

  test('every round passing: the stage advances when its hold is served', async () => {
    expect(
      (
        await run(
          plan,
          measureBy(() => 0.2),
        )
      ).outcome,
    ).toMatchObject({ kind: 'promoted', atMs: at(10) });
  });

  test('a round between the bands at minute 4 starts the count again: 10 passing minutes from the round after it', async () => {
    const r = await run(
      plan,
      measureBy((m) => (m === 4 ? 2 : 0.2)),
    );
    // Passing again from minute 5: healthy for 10 minutes at minute 15.
    expect(decisions(r).slice(3, 5)).toEqual(['4 hold', '5 continue']);
    expect(r.outcome).toMatchObject({ kind: 'promoted', atMs: at(15) });
  });
});

describe('deployment windows, as the live rollout keeps them', () => {
  // T0 is Wed 2025-01-01 00:00 UTC; minute 540 is 09:00, 1020 is 17:00, 1980 is Thu 09:00.
  const windowed = (promotion: 'windows' | 'any' = 'windows'): Plan =>
    planOf({
      analysis: { interval: '1m', checks: [ERROR_RATE_CRITICAL] },
      stages: [{ weight: 10, hold: '10m' }, { weight: 50, hold: '10m' }, { weight: 100 }],
      windows: {
        timeZone: 'UTC',
        allow: [{ days: ['mon', 'tue', 'wed', 'thu', 'fri'], from: '09:00', to: '17:00' }],
        promotion,
      },
    } as PlanSpec);
  const from = (minutes: number, plan: Plan, measure: MeasureFn, toMinutes: number) =>
    runBacktest({ plan, fromMs: at(minutes), toMs: at(toMinutes), measure });

  test('before the window opens nothing starts: stage 1 is entered at 09:00, with no round before it', async () => {
    const measure = measureBy(() => 0.2);
    const r = await run(windowed(), measure, 600);
    expect(r.events.slice(0, 2)).toMatchObject([
      { kind: 'window_wait', atMs: at(0), weight: 0 },
      { kind: 'stage_entered', atMs: at(540), stage: 1, weight: 10 },
    ]);
    expect(r.events[0].message).toMatch(/^stage 1\/3 at 10% waits: outside the deployment window/);
    expect(measure.calls[0]).toBe(541);
    expect(r.outcome).toMatchObject({ kind: 'promoted', atMs: at(560) });
  });

  test('a hold that the window closes on serves the rest the next morning, analysing all night at 50 %', async () => {
    const measure = measureBy(() => 0.2);
    const r = await from(1005, windowed(), measure, 2000);
    expect(r.events.find((e) => e.kind === 'stage_entered' && e.stage === 2)?.atMs).toBe(at(1015));
    // Stage 2 served 5 of its 10 minutes by 17:00: the hold counts only window time, so it serves the other 5 on
    // Thursday from 09:00 and promotes at 09:05 (the rollout does not wait for a window: its hold is not served).
    expect(r.events.find((e) => e.kind === 'window_wait')).toBeUndefined();
    expect(r.outcome).toMatchObject({ kind: 'promoted', atMs: at(1985) });
    // Every minute from 16:56 all night, until the round at the hold's end.
    expect(measure.calls.filter((m) => m > 1015)).toEqual(
      Array.from({ length: 1985 - 1015 }, (_, i) => 1016 + i),
    );
  });

  test('trouble during the wait still rolls back', async () => {
    const r = await from(
      1005,
      windowed(),
      measureBy((m) => (m >= 1100 ? 9 : 0.2)),
      2000,
    );
    expect(r.outcome).toMatchObject({ kind: 'rolled_back', atMs: at(1100), weight: 50 });
  });

  test('promotion: any promotes outside the windows', async () => {
    const r = await from(
      1005,
      windowed('any'),
      measureBy(() => 0.2),
      2000,
    );
    expect(r.outcome).toMatchObject({ kind: 'promoted', atMs: at(1025) });
    expect(r.events.some((e) => e.kind === 'window_wait')).toBe(false);
  });

  test('a window that has not opened by the end of the range leaves the rollout waiting', async () => {
    const r = await run(
      windowed(),
      measureBy(() => 0.2),
      300,
    );
    expect(r.outcome).toMatchObject({ kind: 'running', stage: 1, weight: 0 });
    expect(r.rounds).toEqual([]);
  });
});

describe('times and ranges', () => {
  const now = Date.UTC(2025, 5, 1, 12, 0, 0);

  test.each([
    ['now', now],
    ['-7d', now - 7 * 86_400_000],
    ['now-90m', now - 90 * MIN],
    ['-1h30m', now - 90 * MIN],
    ['2025-03-01T12:00:00Z', Date.UTC(2025, 2, 1, 12)],
    ['2025-03-01T14:00:00+02:00', Date.UTC(2025, 2, 1, 12)],
    ['2025-03-01 12:00:30.5Z', Date.UTC(2025, 2, 1, 12, 0, 30, 500)],
  ])('%s', (text, expected) => {
    expect(parseTime('--from', text, now)).toBe(expected);
  });

  test.each(['yesterday', '2025-03-01', '2025-03-01T12:00:00', '-7x', '+7d', ''])('refuses %j', (text) => {
    expect(() => parseTime('--from', text, now)).toThrow(BacktestInputError);
  });

  // Date.parse would read these as other times (2025-02-30 as March 2) or not at all: each is named.
  test.each([
    ['2025-02-30T00:00:00Z', 'February 2025 has 28 days, so there is no day 30'],
    ['2024-02-30T00:00:00Z', 'February 2024 has 29 days, so there is no day 30'],
    ['2025-04-31T12:00:00+02:00', 'April 2025 has 30 days, so there is no day 31'],
    ['2025-13-01T00:00:00Z', 'there is no month 13 (months go from 01 to 12)'],
    ['2025-00-10T00:00:00Z', 'there is no month 0 (months go from 01 to 12)'],
    ['2025-03-01T24:00:00Z', 'there is no hour 24 (hours go from 00 to 23)'],
    ['2025-03-01T23:61Z', 'there is no minute 61 (minutes go from 00 to 59)'],
    ['2025-03-01T23:59:60Z', 'there is no second 60 (seconds go from 00 to 59)'],
    ['2025-03-01T12:00:00+24:00', '+24:00 is not a UTC offset'],
  ])('refuses the impossible %s: %s', (text, why) => {
    expect(() => parseTime('--from', text, now)).toThrow(
      new BacktestInputError(`--from: "${text}" is not a real time: ${why}`),
    );
  });

  test('a leap day is a real day', () => {
    expect(parseTime('--to', '2024-02-29T23:59:59Z', now)).toBe(Date.UTC(2024, 1, 29, 23, 59, 59));
  });

  const plan = twoStages(ERROR_RATE_CRITICAL);
  test('an empty, reversed or future range is refused', () => {
    expect(() => checkRange(plan, now, now, now)).toThrow(/the range is empty/);
    expect(() => checkRange(plan, now, now - MIN, now)).toThrow(/is not before --to/);
    expect(() => checkRange(plan, now - MIN, now + MIN, now)).toThrow(/in the future/);
  });

  test(`more than ${MAX_BACKTEST_ROUNDS} rounds is refused with a shorter range suggested`, () => {
    expect(() => checkRange(plan, now - MAX_BACKTEST_ROUNDS * MIN, now, now)).not.toThrow();
    expect(() => checkRange(plan, now - (MAX_BACKTEST_ROUNDS + 1) * MIN, now, now)).toThrow(
      /holds 10001 analysis rounds .* at most 10000 are run: use a shorter range \(at most 166h40m at this interval\)/,
    );
  });
});

test('the text output: header, a row per round with events between, the final line', async () => {
  const plan = twoStages(ERROR_RATE_CRITICAL);
  const r = await run(
    plan,
    measureBy((m) => (m >= 13 ? 8 : 0.2)),
  );
  const v = validateTarget({
    app: 'checkout',
    namespace: 'shop',
    metrics: { prometheus: { url: 'http://prom:9090' } },
  });
  if (!v.ok) throw new Error('bad target');
  const text = renderBacktest(r, {
    planSource: 'plan.yaml',
    plan,
    target: v.target,
    prometheus: 'http://prom:9090',
  });
  const lines = text.split('\n');
  expect(lines[0]).toBe('Backtest of plan.yaml (10% 10m → [approval] 50% 10m → 100%)');
  expect(text).toMatch(/Prometheus: http:\/\/prom:9090/);
  expect(text).toMatch(/Assumed: +stage weights do not change the historical data/);
  expect(text).toMatch(/approval gates were assumed approved at once \(stage 2\)/);
  expect(lines.find((l) => l.startsWith('time'))).toMatch(
    /^time +stage +weight +error-rate +verdict +decision$/,
  );
  expect(text).toContain(`${isoAt(1)}  1      10%     0.2 pass    pass     continue`);
  expect(text).toContain(`${isoAt(10)}  » stage 2/3: approval gate assumed approved`);
  expect(text).toMatch(
    new RegExp(`${isoAt(13)}  2 +50% +8 breach +fail +rollback: error-rate: 8: 8 > abort max 5`),
  );
  expect(lines[lines.length - 1]).toBe(r.summary);
});
