// Rollouts whose analysis reads a real Prometheus (Debian's package) scraping a stable and a canary exporter
// that this test controls, with the plain http_requests_total / http_request_duration_seconds instrumentation.
// The workflow runs on the time-skipping server; traffic shifts on the real local stack. Prometheus answers for
// real time, so every analysis of a test sees the exporters as they are set for that test.
import { rolloutResult } from '../../client/index';
import { ProviderRegistry } from '../../activities/factory';
import type { PlanSpec } from '../../workflows/plan';
import { statusQuery } from '../../workflows/api';
import { startExporter, type Exporter } from '../../harness/exporter';
import { startPrometheus, type PrometheusServer } from '../../harness/prometheus';
import { RolloutBench } from '../../harness/rollout-env';

const APP = 'shop';
// RolloutBench starts every rollout in namespace `test`; the stack's stable runs v1.
const NAMESPACE = 'test';

let prom: PrometheusServer;
let stable: Exporter;
let canary: Exporter;
let bench: RolloutBench;

beforeAll(async () => {
  const common = { set: 'http' as const, app: APP, namespace: NAMESPACE, rps: 50 };
  stable = await startExporter({
    ...common,
    side: 'stable',
    version: 'v1',
    workload: APP,
    errorRate: 0.002,
    latencyMs: { p50: 40, p95: 90, p99: 200 },
  });
  canary = await startExporter({
    ...common,
    side: 'canary',
    version: 'v2',
    workload: `${APP}-canary`,
    errorRate: 0.004,
    latencyMs: { p50: 45, p95: 95, p99: 220 },
  });
  prom = await startPrometheus({
    targets: [
      { job: 'stable', url: stable.url },
      { job: 'canary', url: canary.url },
    ],
  });
  await prom.waitUp();
  // Let a 10 s window fill with samples before the first analysis.
  await new Promise((r) => setTimeout(r, 11_500));
  bench = await RolloutBench.start({
    // The real local router and workloads; metrics from Prometheus, with the set the local router implies (http).
    providers: (real) =>
      new ProviderRegistry({
        ...real.config,
        metrics: 'prometheus',
        prometheus: { url: prom.url, timeoutMs: 5000 },
      }),
  });
}, 180_000);

afterAll(async () => {
  await bench?.close();
  await prom?.stop();
  await stable?.stop();
  await canary?.stop();
});
beforeEach(async () => bench.reset());

const plan = (interval = '30s'): PlanSpec => ({
  analysis: {
    interval,
    checks: [
      { name: 'error-rate', metric: 'error-rate', max: 1 },
      { name: 'p95', metric: 'latency-p95', max: 500 },
    ],
  },
  stages: [{ weight: 10, hold: '2m' }, { weight: 50, hold: '2m' }, { weight: 100 }],
  promotion: { cleanupDelay: '0s' },
});

test('a healthy canary advances stage by stage on what Prometheus measures, and is promoted', async () => {
  canary.set({ errorRate: 0.004, latencyMs: { p50: 45, p95: 95, p99: 220 } });
  const h = await bench.startRollout(APP, 'v2', plan());
  const result = await rolloutResult(h);
  expect(result.outcome).toBe('promoted');
  const st = await h.query(statusQuery);
  const last = st.analyses[st.analyses.length - 1];
  expect(last.verdict).toBe('pass');
  const errors = last.checks.find((c) => c.name === 'error-rate')!;
  // 0.4 % errors on the canary side only (the stable exporter answers 0.2 %).
  expect(errors.value).toBeGreaterThan(0.2);
  expect(errors.value).toBeLessThan(0.8);
  const p95 = last.checks.find((c) => c.name === 'p95')!;
  expect(p95.value).toBeGreaterThan(50);
  expect(p95.value).toBeLessThan(250);
  expect(new Set(st.analyses.map((a) => a.weight))).toEqual(new Set([10, 50]));
}, 180_000);

test('a canary at 7 % errors is rolled back at its first analysis, traffic back to 0', async () => {
  canary.set({ errorRate: 0.07 });
  // Let the window hold the new rate.
  await new Promise((r) => setTimeout(r, 11_000));
  const h = await bench.startRollout(APP, 'v2', plan());
  const result = await rolloutResult(h);
  expect(result.outcome).toBe('rolled_back');
  // The 30 s analysis window still holds some samples from before the change, so it reads between 1 and 7 %.
  const m =
    /^analysis failed 1 time\(s\) in a row at 10%: error-rate (\d+\.\d+) > max 1; p95 [\d.]+ ok$/.exec(
      result.reason ?? '',
    );
  expect(m).not.toBeNull();
  expect(Number(m![1])).toBeGreaterThan(1);
  expect(Number(m![1])).toBeLessThan(7.5);
  expect(await bench.live()).toMatchObject({ weight: 0, canary: null });
  const st = await h.query(statusQuery);
  expect(st.analyses).toHaveLength(1);
}, 180_000);

// ---------------------------------------------------------------------------------------------------------------
// The full analysis form (judge-v2): bands, severities, for durations, step-backs, outages.

const healthy = { errorRate: 0.004, latencyMs: { p50: 45, p95: 95, p99: 220 } };
/** Sets the canary exporter and waits until the checks' 15 s window holds only the new behaviour. */
async function canaryBecomes(change: Parameters<Exporter['set']>[0]): Promise<void> {
  canary.set(change);
  await new Promise((r) => setTimeout(r, 17_000));
}

const fullForm = (errorAbort: Record<string, unknown>, stages?: PlanSpec['stages']): PlanSpec => ({
  analysis: {
    interval: '1m',
    checks: [
      {
        name: 'error-rate',
        metric: 'error-rate',
        // Prometheus answers for real time while the workflow skips ahead: a short window follows the exporter.
        window: '15s',
        success: { max: 1 },
        abort: { max: 5, ...errorAbort },
      },
    ],
  },
  stages: stages ?? [{ weight: 10, hold: '10m' }, { weight: 50, hold: '10m' }, { weight: 100 }],
  promotion: { cleanupDelay: '0s' },
});

describe('the full analysis form', () => {
  afterEach(() => canary.set(healthy));

  test('critical: a canary at 7 % errors is at weight 0 after one analysis round', async () => {
    await canaryBecomes({ errorRate: 0.07 });
    const h = await bench.startRollout(APP, 'v2', fullForm({ severity: 'critical' }));
    const result = await rolloutResult(h);
    expect(result.outcome).toBe('rolled_back');
    const m =
      /^analysis at 10%: error-rate: (\d+(?:\.\d+)?): \1 > abort max 5 \(critical\): roll back at once$/.exec(
        result.reason ?? '',
      );
    expect(Number(m![1])).toBeGreaterThan(5);
    const st = await h.query(statusQuery);
    expect(st.analyses).toHaveLength(1);
    expect(st.analyses[0]).toMatchObject({ action: 'rollback', verdict: 'fail' });
    expect(st.analyses[0].checks[0]).toMatchObject({ band: 'abort', severity: 'critical', judged: 'breach' });
    expect(await bench.live()).toMatchObject({ weight: 0, canary: null });
  }, 180_000);

  test('high for 5m: a short blip does not roll back, a lasting breach does', async () => {
    await canaryBecomes(healthy);
    const h = await bench.startRollout(APP, 'v2', fullForm({ severity: 'high', for: '5m' }));
    await bench.env.sleep(90_000);
    expect((await h.query(statusQuery)).weight).toBe(10);
    // A blip: one breaching round, then healthy again.
    await canaryBecomes({ errorRate: 0.07 });
    await bench.env.sleep(60_000);
    let st = await h.query(statusQuery);
    expect(st.analyses[st.analyses.length - 1].checks[0]).toMatchObject({ band: 'abort', judged: 'breach' });
    expect(st.phase).toBe('progressing');
    await canaryBecomes(healthy);
    await bench.env.sleep(60_000);
    st = await h.query(statusQuery);
    expect(st.phase).toBe('progressing');
    // Now it lasts: rolled back once the breach has lasted 5 minutes, not before.
    await canaryBecomes({ errorRate: 0.07 });
    await bench.env.sleep(4 * 60_000);
    expect((await h.query(statusQuery)).phase).toBe('progressing');
    const result = await rolloutResult(h);
    expect(result.outcome).toBe('rolled_back');
    // Rounds count as served up to a tenth of the interval early (roundSlackFor), and the reason names the time
    // measured: under load a round a second early reads 4m59s.
    expect(result.reason).toMatch(/> abort max 5, for (5m|4m5\ds) of 5m \(high\): roll back/);
  }, 300_000);

  test('medium: steps traffic back to the previous stage, holds, and goes forward after a healthy period', async () => {
    await canaryBecomes(healthy);
    const h = await bench.startRollout(
      APP,
      'v2',
      fullForm({ severity: 'medium', recoverAfter: '3m', rollbackAfter: '30m' }, [
        { weight: 10, hold: '2m' },
        { weight: 50, hold: '20m' },
        { weight: 100 },
      ]),
    );
    await bench.env.sleep(4 * 60_000);
    expect((await h.query(statusQuery)).stage).toBe(2);
    expect((await bench.live()).weight).toBe(50);
    await canaryBecomes({ errorRate: 0.07 });
    await bench.env.sleep(60_000);
    let st = await h.query(statusQuery);
    expect(st.steppedBack).toMatchObject({ stageWeight: 50, toWeight: 10 });
    expect((await bench.live()).weight).toBe(10);
    expect(bench.alerts(h.workflowId).some((a) => a.event === 'stepped_back')).toBe(true);
    await canaryBecomes(healthy);
    await bench.env.sleep(5 * 60_000);
    st = await h.query(statusQuery);
    expect(st.steppedBack).toBeUndefined();
    expect((await bench.live()).weight).toBe(50);
    expect(st.stage).toBe(2);
    expect(await rolloutResult(h)).toMatchObject({ outcome: 'promoted' });
  }, 300_000);
});
