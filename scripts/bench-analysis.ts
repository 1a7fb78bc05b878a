// Benchmarks of the analysis, printed as figures (not a test): `npm run bench:analysis`. About 3 minutes.
//  1. Detection latency: from the moment a canary's error rate crosses a critical threshold in its exporter to the
//     local router reporting weight 0, p50/p99 over 20 rollouts on a real Temporal dev server, with a real
//     Prometheus scraping the exporters every second and the analysis every 10 s (the plans' minimum). Expected:
//     at most interval + scrape (11 s). Four lanes (a local stack each) run their rollouts side by side; within a
//     lane the threshold is crossed at a different phase of the analysis schedule every run, spread over the
//     interval.
//  2. The cost of one analysis round: wall time of measureChecks + judgeRound for a plan with seven checks (eleven
//     PromQL queries, range queries for a Mann-Whitney test among them) against that Prometheus, p50/p99; and the
//     judge alone per round.
import { performance } from 'node:perf_hooks';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Runtime, Worker } from '@temporalio/worker';
import { NO_METRICS_SINKS } from '../worker/worker';
import { ProviderRegistry, providersFromEnv } from '../activities/factory';
import { LocalStackClient } from '../activities/local/control-client';
import { startLocalStack, type LocalStack } from '../demo/stack';
import { createActivities } from '../activities/rollout-activities';
import { validateAnalysisChecks } from '../workflows/analysis-spec';
import { rolloutWorkflowId, type RolloutInput } from '../workflows/api';
import { judgeRound, type JudgeState, type RoundMeasurement } from '../workflows/judge-v2';
import { validateTarget, type TargetSpec } from '../workflows/target';
import type { canaryRollout } from '../workflows';
import { startDevServer } from '../demo/dev-server';
import { startExporter, type Exporter } from '../harness/exporter';
import { startPrometheus, type PrometheusServer } from '../harness/prometheus';
import { RolloutLogger } from '../worker/logger';

const LANES = 4;
const RUNS_PER_LANE = 5;
const RUNS = LANES * RUNS_PER_LANE;
const INTERVAL_MS = 10_000;
const SCRAPE_MS = 1_000; // the harness's scrape interval
const WINDOW_S = 10;
const THRESHOLD = 5; // % errors: critical
const HEALTHY_ERRORS = 0.002;
const BROKEN_ERRORS = 1;
const RPS = 50;
const NAMESPACE = 'bench';
const LATENCY = { p50: 40, p95: 90, p99: 200 };
const ROUNDS = 200;
const JUDGE_ROUNDS = 20_000;

/** When the windowed error rate the check reads crosses the threshold after the flip, in the exporter's counts. */
const CROSSING_MS = (WINDOW_S * 1000 * (THRESHOLD / 100 - HEALTHY_ERRORS)) / (BROKEN_ERRORS - HEALTHY_ERRORS);

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

function figures(values: number[], unit: 'ms' | 's' | 'µs'): string {
  const sorted = [...values].sort((a, b) => a - b);
  const scale = unit === 's' ? 1 / 1000 : unit === 'µs' ? 1000 : 1;
  const f = (v: number) => `${(v * scale).toFixed(unit === 'µs' ? 1 : unit === 's' ? 2 : 1)} ${unit}`;
  return (
    `p50 ${f(percentile(sorted, 50))}   p99 ${f(percentile(sorted, 99))}   ` +
    `min ${f(sorted[0])}   max ${f(sorted[sorted.length - 1])}`
  );
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(10);
  }
}

interface Lane {
  stack: LocalStack;
  control: LocalStackClient;
  app: string;
  /** One canary exporter per run: each rollout rolls out a version of its own. */
  exporters: Exporter[];
}

async function detectionLatency(prom: PrometheusServer, lanes: Lane[]): Promise<void> {
  const server = await startDevServer({ ui: false });
  const connection = await Connection.connect({ address: server.address });
  const client = new Client({ connection });
  const native = await NativeConnection.connect({ address: server.address });
  const taskQueue = 'bench-analysis';
  const worker = await Worker.create({
    connection: native,
    taskQueue,
    workflowBundle: await (await import('../harness/rollout-env')).workflowBundle(),
    sinks: NO_METRICS_SINKS,
    activities: createActivities(providersFromEnv({ CANARY_ALERT_LOG: '/dev/null' })),
  });
  const running = worker.run();
  const fromCrossing: number[] = [];
  const fromFlip: number[] = [];
  const outcomes: string[] = [];
  try {
    await Promise.all(
      lanes.map(async (lane, l) => {
        for (let r = 0; r < RUNS_PER_LANE; r++) {
          const run = l * RUNS_PER_LANE + r;
          // Phases spread over the interval, interleaved across lanes.
          const phaseMs = (((r * LANES + l) % RUNS) + 0.5) * (INTERVAL_MS / RUNS);
          const target: TargetSpec = {
            app: lane.app,
            namespace: NAMESPACE,
            workload: { kind: 'local', controlUrl: lane.stack.controlUrl },
            traffic: { local: { controlUrl: lane.stack.controlUrl } },
            metrics: { prometheus: { url: prom.url, templates: 'http' } },
          };
          const input: RolloutInput = {
            target: target as RolloutInput['target'],
            version: `v${r + 2}`,
            requestedBy: 'bench',
            plan: {
              analysis: {
                interval: `${INTERVAL_MS / 1000}s`,
                checks: [
                  {
                    name: 'error-rate',
                    metric: 'error-rate',
                    window: `${WINDOW_S}s`,
                    success: { max: 1 },
                    abort: { max: THRESHOLD, severity: 'critical' },
                  },
                ],
              },
              stages: [{ weight: 10, hold: '1h' }, { weight: 100 }],
              promotion: { cleanupDelay: '0s' },
            },
          };
          const h = await client.workflow.start<typeof canaryRollout>('canaryRollout', {
            workflowId: `${rolloutWorkflowId({ app: lane.app, namespace: NAMESPACE })}-${run}`,
            taskQueue,
            args: [input],
          });
          await waitFor(`lane ${l} run ${r} at 10 %`, 60_000, async () =>
            (await lane.control.state()).weight === 10 ? true : undefined,
          );
          await sleep(phaseMs);
          const flippedAt = performance.now();
          lane.exporters[r].set({ errorRate: BROKEN_ERRORS });
          await waitFor(`lane ${l} run ${r} back to 0 %`, 60_000, async () =>
            (await lane.control.state()).weight === 0 ? true : undefined,
          );
          const zeroAt = performance.now();
          fromFlip.push(zeroAt - flippedAt);
          fromCrossing.push(zeroAt - flippedAt - CROSSING_MS);
          // Rollouts that roll back end as a failure typed RolledBack (the Web UI's Failures filter) that says why.
          const why = await h.result().then(
            (result) => `${result.outcome}: ${result.reason ?? ''}`,
            (err: { cause?: { message?: string } }) => String(err.cause?.message ?? err),
          );
          outcomes.push(/^rolled.back: .*error-rate.*\(critical\)/.test(why) ? 'critical' : why);
        }
      }),
    );
  } finally {
    worker.shutdown();
    await running;
    await native.close();
    await connection.close();
    await server.stop();
  }
  const unexpected = outcomes.filter((o) => o !== 'critical');
  console.log(
    `crossing → weight 0 over ${RUNS} rollouts (${LANES} lanes side by side): dev server, Prometheus scraping ` +
      `every ${SCRAPE_MS / 1000} s, local router, analysis every ${INTERVAL_MS / 1000} s, critical error-rate > ` +
      `${THRESHOLD} % over ${WINDOW_S} s`,
  );
  console.log(`  from the crossing       ${figures(fromCrossing, 's')}`);
  console.log(
    `  from the exporter flip  ${figures(fromFlip, 's')}   (the ${WINDOW_S} s rate crosses ` +
      `${THRESHOLD} % ${(CROSSING_MS / 1000).toFixed(2)} s after errors jump to ${BROKEN_ERRORS * 100} %)`,
  );
  console.log(
    `  bound interval + scrape ${((INTERVAL_MS + SCRAPE_MS) / 1000).toFixed(0)} s: ` +
      `${fromCrossing.filter((v) => v <= INTERVAL_MS + SCRAPE_MS).length}/${RUNS} runs within it` +
      (unexpected.length > 0 ? `; UNEXPECTED outcomes: ${unexpected.join('; ')}` : ''),
  );
}

const ROUND_CHECKS = [
  {
    name: 'error-rate',
    metric: 'error-rate',
    minRequests: 100,
    success: { max: 1 },
    abort: { max: 5, severity: 'critical' },
  },
  { name: 'p95', metric: 'latency-p95', success: { max: 300 }, abort: { max: 1000, severity: 'high' } },
  { name: 'p99', metric: 'latency-p99', abort: { max: 2000, severity: 'high', for: '1m' } },
  {
    name: 'p95-vs-stable',
    metric: 'latency-p95',
    compare: { to: 'stable', ratio: { max: 1.2 } },
    abort: { ratio: { max: 2 }, severity: 'medium' },
  },
  { name: 'traffic', metric: 'request-rate', success: { min: 1 } },
  {
    name: 'success-rate',
    metric: 'request-success-rate',
    success: { min: 99 },
    abort: { min: 95, severity: 'low' },
  },
  {
    name: 'p50-distribution',
    metric: 'latency-p50',
    window: '20s',
    test: { type: 'mann-whitney', minSamples: 5, step: '2s' },
  },
];

async function roundCost(prom: PrometheusServer): Promise<void> {
  const v = validateAnalysisChecks(ROUND_CHECKS, {
    windowMs: 30_000,
    failureLimit: 1,
    inconclusiveLimit: 3,
  });
  if (!v.ok) throw new Error(JSON.stringify(v.problems));
  const checks = v.checks;
  const t = validateTarget({
    app: 'bench-round',
    namespace: NAMESPACE,
    metrics: { prometheus: { url: prom.url, templates: 'http' } },
  });
  if (!t.ok) throw new Error(JSON.stringify(t.problems));
  const acts = createActivities(
    new ProviderRegistry({
      router: 'local',
      workloads: 'local',
      metrics: 'prometheus',
      kube: {},
      localControlUrl: 'http://127.0.0.1:9',
      alertLogPath: '/dev/null',
    }),
  );
  const versions = { stable: 'v1', canary: 'v2' };
  const rounds: number[] = [];
  const recorded: Array<Record<string, RoundMeasurement>> = [];
  let state: JudgeState | undefined;
  let lastAction = '';
  for (let i = 0; i < ROUNDS + 10; i++) {
    const t0 = performance.now();
    const answer = await acts.measureChecks({ target: t.target, checks, versions });
    const now = Date.now();
    const judged = judgeRound(checks, answer.measurements, now, state);
    state = judged.state;
    const elapsed = performance.now() - t0;
    // The first rounds warm connections and the query path up.
    if (i >= 10) {
      rounds.push(elapsed);
      recorded.push(answer.measurements);
    }
    lastAction = judged.decision.action;
  }
  const judgeTimes: number[] = [];
  let s: JudgeState | undefined;
  const base = Date.now();
  for (let i = 0; i < JUDGE_ROUNDS; i++) {
    const m = recorded[i % recorded.length];
    const t0 = performance.now();
    s = judgeRound(checks, m, base + i * INTERVAL_MS, s).state;
    judgeTimes.push(performance.now() - t0);
  }
  console.log(
    `one analysis round: ${checks.length} checks (11 PromQL queries, 2 of them range queries for a ` +
      `Mann-Whitney test) against the real Prometheus, ${ROUNDS} rounds in a row (last action: ${lastAction})`,
  );
  console.log(`  measureChecks + judgeRound  ${figures(rounds, 'ms')}`);
  console.log(
    `  judgeRound alone            ${figures(judgeTimes.slice(1000), 'µs')}   (${JUDGE_ROUNDS} rounds)`,
  );
}

async function main(): Promise<void> {
  const started = performance.now();
  // Rolled-back rollouts are expected here: the worker's warning for each would drown the figures.
  Runtime.install({ logger: new RolloutLogger('ERROR') });
  const lanes: Lane[] = [];
  const common = { set: 'http' as const, namespace: NAMESPACE, rps: RPS, latencyMs: LATENCY };
  for (let l = 0; l < LANES; l++) {
    const stack = await startLocalStack({ stableVersion: 'v1' });
    const app = `bench-lane${l}`;
    const exporters: Exporter[] = [];
    for (let r = 0; r < RUNS_PER_LANE; r++) {
      exporters.push(
        await startExporter({
          ...common,
          app,
          side: 'canary',
          version: `v${r + 2}`,
          workload: `${app}-canary`,
          errorRate: HEALTHY_ERRORS,
        }),
      );
    }
    lanes.push({ stack, control: new LocalStackClient(stack.controlUrl), app, exporters });
  }
  const roundExporters = [
    await startExporter({
      ...common,
      app: 'bench-round',
      side: 'stable',
      version: 'v1',
      workload: 'bench-round',
      errorRate: 0.002,
    }),
    await startExporter({
      ...common,
      app: 'bench-round',
      side: 'canary',
      version: 'v2',
      workload: 'bench-round-canary',
      errorRate: 0.003,
    }),
  ];
  const all = [...lanes.flatMap((l) => l.exporters), ...roundExporters];
  const prom = await startPrometheus({
    targets: all.map((e, i) => ({ job: `exporter-${i}`, url: e.url })),
  });
  try {
    await prom.waitUp(60_000);
    // Let the longest window (the test's 20 s, plus its first step) fill.
    await sleep(23_000);
    await roundCost(prom);
    await detectionLatency(prom, lanes);
  } finally {
    await prom.stop();
    for (const e of all) await e.stop();
    for (const l of lanes) await l.stack.close();
  }
  console.log(`wall time ${((performance.now() - started) / 1000).toFixed(0)} s`);
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(3);
  },
);
