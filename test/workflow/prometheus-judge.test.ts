// The full analysis form (judge-v2) against a real Prometheus: Prometheus killed and restarted mid-stage, a
// Mann-Whitney test that catches a shifted latency distribution a fixed threshold lets through, a comparison with
// stable's baseline, and checks whose query matches nothing (onNoData). The workflow runs on the time-skipping
// server; Prometheus answers for real time, so checks use short windows and the test waits real seconds after
// changing an exporter (see prometheus-analysis.test.ts).
import { rolloutResult } from '../../client/index';
import { ProviderRegistry } from '../../activities/factory';
import type { PlanSpec } from '../../workflows/plan';
import { abortSignal, approveUpdate, statusQuery } from '../../workflows/api';
import { startExporter, type Exporter } from '../../harness/exporter';
import { startPrometheus, type PrometheusServer } from '../../harness/prometheus';
import { RolloutBench } from '../../harness/rollout-env';

const APP = 'shop';
const NAMESPACE = 'test';
const STABLE_LATENCY = { p50: 40, p95: 90, p99: 200 };

let prom: PrometheusServer;
let stable: Exporter;
let canary: Exporter;
let bench: RolloutBench;

const sleepReal = (ms: number) => new Promise((r) => setTimeout(r, ms));

beforeAll(async () => {
  const common = { set: 'http' as const, app: APP, namespace: NAMESPACE, rps: 50, errorRate: 0.002 };
  stable = await startExporter({
    ...common,
    side: 'stable',
    version: 'v1',
    workload: APP,
    latencyMs: STABLE_LATENCY,
  });
  canary = await startExporter({
    ...common,
    side: 'canary',
    version: 'v2',
    workload: `${APP}-canary`,
    latencyMs: STABLE_LATENCY,
  });
  prom = await startPrometheus({
    targets: [
      { job: 'stable', url: stable.url },
      { job: 'canary', url: canary.url },
    ],
  });
  await prom.waitUp();
  // Let the 20 s windows fill with samples before the first analysis.
  await sleepReal(21_000);
  bench = await RolloutBench.start({
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
afterEach(() => canary.set({ latencyMs: STABLE_LATENCY }));

/** Sets the canary exporter and waits (real time) until a window of `windowMs` holds only the new behaviour. */
async function canaryBecomes(change: Parameters<Exporter['set']>[0], windowMs = 15_000): Promise<void> {
  canary.set(change);
  await sleepReal(windowMs + 2_000);
}

type Check = NonNullable<NonNullable<PlanSpec['analysis']>['checks']>[number];
const STAGES: PlanSpec['stages'] = [
  { weight: 10, hold: '10m' },
  { weight: 50, hold: '10m' },
  { weight: 100 },
];
const planOf = (checks: Check[], stages: PlanSpec['stages'] = STAGES): PlanSpec => ({
  analysis: { interval: '1m', checks },
  stages,
  promotion: { cleanupDelay: '0s' },
});

const errorRate: Check = {
  name: 'error-rate',
  metric: 'error-rate',
  window: '15s',
  success: { max: 1 },
  abort: { max: 5, severity: 'critical' },
};

test('Prometheus killed mid-stage and restarted on its storage: the stage holds and alerts, never rolls back, and goes on once Prometheus answers', async () => {
  const h = await bench.startRollout(APP, 'v2', planOf([errorRate]));
  await bench.env.sleep(3.5 * 60_000);
  let st = await h.query(statusQuery);
  expect(st).toMatchObject({ stage: 1, weight: 10, phase: 'progressing' });
  expect(st.analyses[st.analyses.length - 1].checks[0].judged).toBe('pass');

  await prom.halt('SIGKILL');
  try {
    // Past the stage's 10 m hold, and well past the query-failure limit (3, the inconclusiveLimit).
    await bench.env.sleep(9 * 60_000);
    st = await h.query(statusQuery);
    expect(st).toMatchObject({ stage: 1, weight: 10, phase: 'progressing' });
    expect((await bench.live()).weight).toBe(10);
    const failed = st.analyses.filter((a) => a.checks[0].judged === 'query_failed');
    expect(failed.length).toBeGreaterThan(3);
    const last = st.analyses[st.analyses.length - 1];
    expect(last).toMatchObject({ stage: 1, weight: 10, action: 'hold' });
    expect(last.checks[0]).toMatchObject({ judged: 'query_failed' });
    // Each round retried the refused connection with backoff before counting it as failed.
    expect(last.checks[0].note).toMatch(/query failed \(unreachable: .*ECONNREFUSED.*\(3 attempts\)/);
    expect(last.reasons?.join('; ')).toMatch(/query failed \d+ rounds in a row: holding/);
    const alerts = bench.alerts(h.workflowId);
    expect(alerts.some((a) => a.event === 'check_breached' && /query failed/.test(a.message))).toBe(true);
    expect(alerts.some((a) => a.event === 'stuck' && /the stage holds/.test(a.message))).toBe(true);
  } finally {
    await prom.resume();
  }
  // Back on its WAL, it scrapes again: let the check's window fill with fresh samples before time skips on.
  await prom.waitUp();
  await sleepReal(17_000);

  const result = await rolloutResult(h);
  expect(result.outcome).toBe('promoted');
  st = await h.query(statusQuery);
  expect(st.analyses.some((a) => a.weight === 50 && a.verdict === 'pass')).toBe(true);
  const events = bench.alerts(h.workflowId).map((a) => a.event);
  expect(events).not.toContain('rollback_started');
  expect(events).not.toContain('rolled_back');
}, 150_000);

test('onQueryError { limit: 2, then: rollback }: the same outage rolls back after 2 failed rounds, as that plan asks', async () => {
  const check: Check = { ...errorRate, onQueryError: { limit: 2, then: 'rollback' } };
  const h = await bench.startRollout(APP, 'v2', planOf([check]));
  await bench.env.sleep(1.5 * 60_000);
  expect((await h.query(statusQuery)).analyses[0].checks[0].judged).toBe('pass');

  await prom.halt('SIGKILL');
  try {
    const result = await rolloutResult(h);
    expect(result).toMatchObject({
      outcome: 'rolled_back',
      reason: 'analysis at 10%: error-rate: query failed 2 rounds in a row: roll back',
    });
    const st = await h.query(statusQuery);
    expect(st.analyses.map((a) => a.checks[0].judged)).toEqual(['pass', 'query_failed', 'query_failed']);
    expect(await bench.live()).toMatchObject({ weight: 0, canary: null });
  } finally {
    await prom.resume();
  }
  // The next tests need windows full of fresh samples.
  await prom.waitUp();
  await sleepReal(17_000);
}, 150_000);

test('Mann-Whitney rolls back a canary whose latency distribution shifted up, under a fixed p95 threshold', async () => {
  await canaryBecomes({ latencyMs: { p50: 70, p95: 150, p99: 300 } }, 20_000);
  const h = await bench.startRollout(
    APP,
    'v2',
    planOf([
      { name: 'p95', metric: 'latency-p95', window: '15s', abort: { max: 500, severity: 'critical' } },
      {
        name: 'p50-shift',
        metric: 'latency-p50',
        window: '20s',
        test: { type: 'mann-whitney', effectSize: 0.3, step: '2s', minSamples: 5 },
        abort: { severity: 'critical' },
      },
    ]),
  );
  const result = await rolloutResult(h);
  expect(result.outcome).toBe('rolled_back');
  expect(result.reason).toMatch(
    /^analysis at 10%: p50-shift: canary higher than stable: delta [\d.]+ \(effect size 0\.3\), p [\d.e-]+ < 0\.05 \(critical\): roll back at once$/,
  );
  const st = await h.query(statusQuery);
  expect(st.analyses).toHaveLength(1);
  const [p95, shift] = st.analyses[0].checks;
  expect(p95).toMatchObject({ name: 'p95', judged: 'pass', band: 'success' });
  expect(p95.value).toBeLessThan(500);
  expect(shift).toMatchObject({ name: 'p50-shift', judged: 'fail', band: 'abort', severity: 'critical' });
  // The reported values are the series' medians: canary ~81 ms, stable ~45 ms.
  expect(shift.value).toBeGreaterThan(60);
  expect(shift.baseline).toBeLessThan(55);
  expect(await bench.live()).toMatchObject({ weight: 0, canary: null });
}, 120_000);

test('a check of stage 2 only (stages: [2]) is not measured in stage 1, and rolls back once stage 2 begins', async () => {
  const strictP95: Check = {
    name: 'strict-p95',
    metric: 'latency-p95',
    window: '15s',
    abort: { max: 50, severity: 'critical' }, // the canary's p95 is ~90 ms
    stages: [2],
  };
  const h = await bench.startRollout(APP, 'v2', planOf([errorRate, strictP95]));
  const result = await rolloutResult(h);
  expect(result.outcome).toBe('rolled_back');
  expect(result.reason).toMatch(
    /^analysis at 50%: strict-p95: ([\d.]+): \1 > abort max 50 \(critical\): roll back at once$/,
  );
  const st = await h.query(statusQuery);
  const stage1 = st.analyses.filter((a) => a.stage === 1);
  expect(stage1.length).toBeGreaterThanOrEqual(9);
  expect(stage1.every((a) => a.checks.map((c) => c.name).join() === 'error-rate')).toBe(true);
  const stage2 = st.analyses.filter((a) => a.stage === 2);
  expect(stage2).toHaveLength(1);
  expect(stage2[0].checks.map((c) => [c.name, c.judged])).toEqual([
    ['error-rate', 'pass'],
    ['strict-p95', 'breach'],
  ]);
  expect(await bench.live()).toMatchObject({ weight: 0, canary: null });
}, 120_000);

test('healthyFor: a round between the bands mid-stage starts the count again, and the stage advances only after 6 unbroken minutes', async () => {
  const MIN = 60_000;
  const plan = planOf([errorRate], [{ weight: 10, hold: '6m', healthyFor: '6m' }, { weight: 100 }]);
  const h = await bench.startRollout(APP, 'v2', plan);
  await bench.env.sleep(2.5 * MIN);
  await canaryBecomes({ errorRate: 0.03 }); // 3 %: above success (1 %), below abort (5 %): the stage holds
  await bench.env.sleep(1 * MIN);
  await canaryBecomes({ errorRate: 0.002 });
  await bench.env.sleep(3 * MIN); // past the 6 m hold, with passing rounds again
  const st = await h.query(statusQuery);
  expect(st).toMatchObject({ stage: 1, weight: 10, phase: 'progressing' });
  expect(st.analyses.some((a) => a.action === 'hold')).toBe(true);
  expect(st.evidenceWait?.note).toMatch(
    /^the hold is served, but stage 1 advances only once every analysis has passed for 6m in a row \(for \d+m/,
  );

  expect((await rolloutResult(h)).outcome).toBe('promoted');
  // This rollout's events: earlier tests' rollouts of the same app share its workflow id.
  const all = bench.alerts(h.workflowId);
  const mine = all.slice(all.map((a) => a.event).lastIndexOf('rollout_started'));
  const entered = mine.find((a) => a.event === 'stage_advanced' && / stage 2\/2/.test(a.message));
  // The last round that did not pass was at minute 3 at the earliest: 6 unbroken minutes end at minute 10 at best.
  const offset = entered!.offsetMs - mine[0].offsetMs;
  expect(offset).toBeGreaterThanOrEqual(10 * MIN);
  expect(offset).toBeLessThan(14 * MIN);
}, 150_000);

describe("a breach that asks a person (abort.then: approval, playbook 002's hybrid decision)", () => {
  const asking: Check = {
    ...errorRate,
    abort: { max: 5, severity: 'critical', then: 'approval', decideWithin: '5m' },
  } as Check;
  const short: PlanSpec['stages'] = [{ weight: 10, hold: '3m' }, { weight: 100 }];

  test('7 % errors hold traffic and ask; approved, the stage goes on despite the breach; unanswered, it rolls back at decideWithin', async () => {
    await canaryBecomes({ errorRate: 0.07 });
    try {
      const h = await bench.startRollout(APP, 'v2', planOf([asking], short));
      await bench.env.sleep(3.5 * 60_000);
      let st = await h.query(statusQuery);
      expect(st).toMatchObject({ stage: 1, weight: 10, phase: 'waiting_approval' });
      expect(await bench.live()).toMatchObject({ weight: 10 });
      expect(st.evidenceQuestion).toMatchObject({ checks: ['error-rate'], breaches: ['error-rate'] });
      // About 7 %: the 15 s window of a real Prometheus may straddle a scrape (6.99 has been seen).
      expect(st.evidenceQuestion!.reasons[0]).toMatch(
        /^error-rate: (6\.9\d*|7(\.\d+)?): \1 > abort max 5 \(critical\): a person decides/,
      );
      const asked = bench
        .alerts(h.workflowId)
        .filter((e) => e.event === 'approval_needed')
        .pop();
      expect(asked?.message).toContain(`accept it and go on with canary approve ${h.workflowId} --stage 1`);
      const record = await h.executeUpdate(approveUpdate, {
        args: [{ identity: 'alice', stage: 1, comment: 'known noisy client' }],
      });
      expect(record).toMatchObject({ kind: 'breach-accepted', by: 'alice', stage: 1 });
      const result = await rolloutResult(h);
      expect(result.outcome).toBe('promoted');
      st = await h.query(statusQuery);
      const accepted = st.analyses.filter((a) => /accepted by a person/.test(a.checks[0].note ?? ''));
      expect(accepted.length).toBeGreaterThan(0);
      expect(accepted[0].checks[0]).toMatchObject({ judged: 'breach' });

      // The same canary, and nobody answers: rolled back once decideWithin (5m) has passed since the question.
      await bench.reset();
      const h2 = await bench.startRollout(APP, 'v2', planOf([asking], short));
      const result2 = await rolloutResult(h2);
      expect(result2.outcome).toBe('rolled_back');
      expect(result2.reason).toMatch(
        /^analysis at 10%: error-rate: (6\.9\d*|7(\.\d+)?): \1 > abort max 5 \(critical\); nobody decided within 5m: roll back$/,
      );
      const st2 = await h2.query(statusQuery);
      const asks = st2.analyses.filter((a) => a.action === 'await-approval');
      // Asked at the first round (1m), then every round until 6m: 5 rounds asked, the 6th rolled back.
      expect(asks.length).toBe(5);
      expect(await bench.live()).toMatchObject({ weight: 0, canary: null });
    } finally {
      canary.set({ errorRate: 0.002 });
      await sleepReal(17_000);
    }
  }, 180_000);
});

describe('comparison with stable', () => {
  const p95VsStable: Check = {
    name: 'p95-vs-stable',
    metric: 'latency-p95',
    window: '15s',
    compare: { to: 'stable', ratio: { max: 1.2 } },
    abort: { ratio: { max: 1.5 }, severity: 'critical' },
  };

  test('a canary p95 twice stable is rolled back, naming the ratio', async () => {
    await canaryBecomes({ latencyMs: { p50: 80, p95: 180, p99: 400 } });
    const h = await bench.startRollout(APP, 'v2', planOf([p95VsStable]));
    const result = await rolloutResult(h);
    expect(result.outcome).toBe('rolled_back');
    const m =
      /^analysis at 10%: p95-vs-stable: [\d.]+ \(stable [\d.]+, ratio ([\d.]+)\): ratio \1 > abort ratio max 1\.5 \(critical\): roll back at once$/.exec(
        result.reason ?? '',
      );
    expect(m).not.toBeNull();
    expect(Number(m![1])).toBeGreaterThan(1.5);
    const st = await h.query(statusQuery);
    expect(st.analyses[0].checks[0]).toMatchObject({ judged: 'breach', band: 'abort' });
  }, 120_000);

  test('a canary p95 equal to stable advances and is promoted', async () => {
    await canaryBecomes({ latencyMs: STABLE_LATENCY });
    const h = await bench.startRollout(
      APP,
      'v2',
      planOf([p95VsStable], [{ weight: 10, hold: '2m' }, { weight: 50, hold: '2m' }, { weight: 100 }]),
    );
    expect(await rolloutResult(h)).toMatchObject({ outcome: 'promoted' });
    const st = await h.query(statusQuery);
    expect(new Set(st.analyses.map((a) => a.weight))).toEqual(new Set([10, 50]));
    for (const a of st.analyses) {
      expect(a.checks[0]).toMatchObject({ judged: 'pass', band: 'success' });
      expect(a.checks[0].value! / a.checks[0].baseline!).toBeGreaterThan(0.8);
      expect(a.checks[0].value! / a.checks[0].baseline!).toBeLessThan(1.2);
    }
  }, 120_000);
});

describe('onNoData: a query that matches nothing for the canary', () => {
  // Stable (v1) has the series, so the preflight lets the rollout start; the canary's version (v9) has none: every
  // round of the canary finds no data.
  const NO_DATA_VERSION = 'v9';
  const nothing = (onNoData: unknown): Check =>
    ({
      name: 'nope-traffic',
      query: `sum(rate(http_requests_total{app="${APP}", version="{{version}}"}[{{window}}]))`,
      window: '15s',
      success: { max: 1000 },
      onNoData,
    }) as Check;
  const short: PlanSpec['stages'] = [{ weight: 10, hold: '2m' }, { weight: 50, hold: '2m' }, { weight: 100 }];

  test('hold: the stage does not advance past its hold; at the default limit (3 rounds) it rolls back', async () => {
    const h = await bench.startRollout(APP, NO_DATA_VERSION, planOf([nothing('hold')], short));
    await bench.env.sleep(150_000);
    const st = await h.query(statusQuery);
    expect(st).toMatchObject({ stage: 1, weight: 10, phase: 'progressing' });
    expect(st.analyses).toHaveLength(2);
    // The hold (2m) is served, and status says why the stage still waits.
    expect(st.evidenceWait).toEqual({
      since: expect.any(String),
      note: expect.stringMatching(
        /^the hold is served, but stage 1 advances only on a passing analysis \(the latest analysis was inconclusive: nope-traffic: .+\)$/,
      ),
    });
    expect(Date.parse(st.evidenceWait!.since) - Date.parse(st.stageStartedAt!)).toBe(120_000);
    for (const a of st.analyses) {
      expect(a).toMatchObject({ verdict: 'inconclusive', action: 'hold' });
      expect(a.checks[0]).toMatchObject({ judged: 'no_data' });
    }
    const result = await rolloutResult(h);
    expect(result).toMatchObject({
      outcome: 'rolled_back',
      reason: 'analysis at 10%: nope-traffic: no evidence for 3 rounds in a row: roll back',
    });
  }, 120_000);

  test('{ action: hold, limit: 2, then: rollback }: rolled back after 2 rounds', async () => {
    const h = await bench.startRollout(
      APP,
      NO_DATA_VERSION,
      planOf([nothing({ action: 'hold', limit: 2, then: 'rollback' })]),
    );
    const result = await rolloutResult(h);
    expect(result).toMatchObject({
      outcome: 'rolled_back',
      reason: 'analysis at 10%: nope-traffic: no evidence for 2 rounds in a row: roll back',
    });
    const st = await h.query(statusQuery);
    expect(st.analyses).toHaveLength(2);
    expect(await bench.live()).toMatchObject({ weight: 0, canary: null });
  }, 120_000);

  test('{ then: approval }: traffic holds and a person decides; approve lets the stage go on, abort rolls back', async () => {
    const h = await bench.startRollout(
      APP,
      NO_DATA_VERSION,
      planOf([nothing({ action: 'hold', limit: 2, then: 'approval' })], short),
    );
    await bench.env.sleep(200_000); // two rounds without evidence, then more: still waiting, never rolled back
    let st = await h.query(statusQuery);
    expect(st).toMatchObject({ stage: 1, weight: 10, phase: 'waiting_approval' });
    expect(st.evidenceQuestion).toMatchObject({
      checks: ['nope-traffic'],
      reasons: ['nope-traffic: no evidence for 2 rounds in a row: a person decides'],
    });
    // (the alert log holds earlier rollouts of the same workflow id too: this one's is the latest)
    const stuck = bench
      .alerts(h.workflowId)
      .filter((e) => e.event === 'stuck')
      .pop();
    expect(stuck?.message).toContain(`approve ${h.workflowId} --stage 1`);
    const record = await h.executeUpdate(approveUpdate, {
      args: [{ identity: 'alice', stage: 1, comment: 'known gap' }],
    });
    expect(record).toMatchObject({ kind: 'missing-evidence', by: 'alice', stage: 1 });
    await bench.env.sleep(60_000);
    st = await h.query(statusQuery);
    expect(st).toMatchObject({ stage: 2, weight: 50, phase: 'progressing' });
    expect(st.evidenceQuestion).toBeUndefined();
    // Stage 2 needs its own evidence: the question comes again, and this time the answer is no.
    await bench.env.sleep(150_000);
    expect((await h.query(statusQuery)).phase).toBe('waiting_approval');
    await h.signal(abortSignal, { identity: 'bob', reason: 'no evidence, no rollout' });
    // The abort came while the question waited: bob declined it (no check failed).
    expect(await rolloutResult(h)).toMatchObject({
      outcome: 'rolled_back',
      reason: 'declined by bob (the question about nope-traffic): no evidence, no rollout',
      ending: { kind: 'decline', by: 'bob' },
    });
  }, 180_000);

  test('ignore: promoted', async () => {
    const h = await bench.startRollout(APP, NO_DATA_VERSION, planOf([nothing('ignore')], short));
    expect(await rolloutResult(h)).toMatchObject({ outcome: 'promoted' });
    const st = await h.query(statusQuery);
    expect(st.analyses.length).toBeGreaterThan(0);
    for (const a of st.analyses) {
      expect(a).toMatchObject({ verdict: 'pass' });
      expect(a.checks[0]).toMatchObject({ judged: 'no_data' });
    }
  }, 120_000);
});
