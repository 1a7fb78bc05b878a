// One plan over one metric series, twice: through the real workflow on the time-skipping server (metrics answered
// from the series at each round's workflow time) and through `canary backtest` (the same series as history). Both
// run the rollout machine, so they must take the same rounds, decide the same, and move traffic at the same times.
import { Context } from '@temporalio/activity';
import type { ProviderRegistry, ProviderSource } from '../../activities/factory';
import type { MetricQuery, MetricsProvider } from '../../activities/types';
import { runBacktest, type MeasureFn } from '../../client/backtest';
import { rolloutResult } from '../../client/index';
import { RolloutBench } from '../../harness/rollout-env';
import { statusQuery } from '../../workflows/api';
import type { RoundMeasurement } from '../../workflows/judge-v2';
import { validatePlan, type PlanSpec } from '../../workflows/plan';

const MIN = 60_000;

/** p95 latency of the canary, by minutes since the rollout started: a breach from 4.5 to 6.5 minutes. */
const p95At = (minutes: number): number => (minutes >= 4.5 && minutes < 6.5 ? 800 : 100);

const PLAN: PlanSpec = {
  analysis: {
    interval: '1m',
    checks: [
      {
        name: 'p95',
        metric: 'latency-p95',
        success: { max: 300 },
        abort: { max: 500, severity: 'medium', recoverAfter: '2m', rollbackAfter: '10m' },
      },
    ],
  },
  stages: [{ weight: 10, hold: '3m' }, { weight: 50, hold: '4m' }, { weight: 100 }],
  promotion: { cleanupDelay: '0s' },
};

/** The workflow time the rollout started at; the series is read relative to it. */
let origin = 0;
/** The series, answered at the workflow time the measuring activity was scheduled. */
const series: MetricsProvider = {
  type: 'series',
  runQuery: async (q: MetricQuery) => {
    if (q.side !== 'canary') return 100;
    const at = Context.current().info.currentAttemptScheduledTimestampMs;
    return p95At((at - origin) / MIN);
  },
  isOnline: async () => true,
};

let bench: RolloutBench;

beforeAll(async () => {
  bench = await RolloutBench.start({
    providers: (real: ProviderRegistry): ProviderSource => ({
      router: (t) => real.router(t),
      workloads: (t) => real.workloads(t),
      metrics: () => series,
      alerts: real.alerts,
      alertSinks: real.alertSinks,
    }),
  });
}, 180_000);

afterAll(async () => {
  await bench?.close();
});

const minute = (ms: number) => Math.round(ms / MIN);

test('the workflow and the backtest take the same rounds, decisions and stage changes on the same series', async () => {
  const h = await bench.startRollout('parity', 'v2', PLAN);
  origin = (await h.describe()).startTime.getTime();
  const result = await rolloutResult(h);
  expect(result.outcome).toBe('promoted');
  const status = await h.query(statusQuery);

  const validation = validatePlan(PLAN);
  if (!validation.ok) throw new Error('invalid plan');
  const measure: MeasureFn = async (checks, atMs) => {
    const out: Record<string, RoundMeasurement> = {};
    for (const c of checks) out[c.name] = { value: p95At((atMs - origin) / MIN) };
    return out;
  };
  const backtest = await runBacktest({
    plan: validation.plan,
    fromMs: origin,
    toMs: origin + 60 * MIN,
    measure,
  });
  expect(backtest.outcome.kind).toBe('promoted');

  // Every round: when, at which stage and weight, and what the judge decided.
  const live = status.analyses.map((a) => [
    minute(Date.parse(a.at) - origin),
    a.stage,
    a.weight,
    a.verdict,
    a.action,
  ]);
  const simulated = backtest.rounds.map((r) => [
    minute(r.atMs - origin),
    r.stage,
    r.weight,
    r.verdict,
    r.action,
  ]);
  expect(status.analysesRun).toBe(backtest.rounds.length);
  expect(live).toEqual(simulated);
  expect(simulated.some((r) => r[4] === 'step-back')).toBe(true);

  // Every change of traffic: stage entries, the step back and forward, and promotion.
  const kinds: Record<string, string> = {
    stage_advanced: 'stage_entered',
    stepped_back: 'stepped_back',
    stepped_forward: 'stepped_forward',
    promoted: 'promoted',
  };
  const liveChanges = bench
    .alerts(h.workflowId)
    .filter((a) => kinds[a.event] !== undefined)
    .map((a) => [kinds[a.event], minute(a.offsetMs), a.event === 'promoted' ? '-' : a.weight]);
  const simulatedChanges = backtest.events
    .filter((e) => Object.values(kinds).includes(e.kind))
    .map((e) => [e.kind, minute(e.atMs - origin), e.kind === 'promoted' ? '-' : e.weight]);
  expect(liveChanges).toEqual(simulatedChanges);
  expect(minute(Date.parse(status.promotedAt!) - origin)).toBe(minute(backtest.outcome.atMs - origin));
}, 300_000);
