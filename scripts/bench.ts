// Benchmarks, printed as figures (not a test): `npm run bench [-- --rollouts N]`.
//  1. Wall time to simulate the full `default` plan (48 h, 1-minute analysis) on the time-skipping server.
//  2. History events per run and in total for that rollout (Temporal warns at 10,240 events per run).
//  3. Abort latency on the dev server: abort signal sent until the router reports weight 0, p50/p99.
//  4. The Kubernetes routers against a local kube-apiserver (scripts/bench-kube.ts): setWeight latency, rollback
//     latency through the workflow, peak RSS.
import { rolloutResult } from '../client/index';
import { performance } from 'node:perf_hooks';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Worker } from '@temporalio/worker';
import { NO_METRICS_SINKS } from '../worker/worker';
import { providersFromEnv } from '../activities/factory';
import { LocalStackClient } from '../activities/local/control-client';
import { startLocalStack } from '../demo/stack';
import { startTrafficGenerator } from '../demo/traffic-generator';
import { createActivities } from '../activities/rollout-activities';
import { abortSignal, rolloutWorkflowId, type RolloutInput } from '../workflows/api';
import { PRESETS } from '../workflows/presets';
import type { canaryRollout } from '../workflows';
import { startDevServer } from '../demo/dev-server';
import { runHistories } from '../harness/history';
import { RolloutBench, workflowBundle } from '../harness/rollout-env';
import { benchKubeRouters, kubeFigureLines } from './bench-kube';

const HISTORY_WARNING = 10_240;

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

async function defaultPlan(): Promise<void> {
  const bench = await RolloutBench.start();
  try {
    const t0 = performance.now();
    const h = await bench.startRollout('bench-default', 'v2', PRESETS.default);
    const result = await rolloutResult(h);
    const wallMs = performance.now() - t0;
    const runs = await runHistories(bench.env.client, h.workflowId, h.firstExecutionRunId);
    const events = runs.map((r) => r.events);
    const total = events.reduce((a, b) => a + b, 0);
    console.log('default plan: 5/10/25/50/100 %, 48 h, analysis every 1 minute, time-skipping server');
    console.log(`  outcome                 ${result.outcome}`);
    console.log(`  wall time               ${(wallMs / 1000).toFixed(1)} s`);
    console.log(`  runs (continue-as-new)  ${runs.length}`);
    console.log(`  history events per run  ${events.join(', ')}`);
    console.log(
      `  largest run             ${Math.max(...events)} events (Temporal warns at ${HISTORY_WARNING})`,
    );
    console.log(`  history events total    ${total}`);
  } finally {
    await bench.close();
  }
}

async function abortLatency(rollouts: number): Promise<void> {
  const server = await startDevServer({ ui: false });
  const stack = await startLocalStack({ stableVersion: 'v1' });
  const traffic = startTrafficGenerator({ url: stack.proxyUrl, rps: 100 });
  const control = new LocalStackClient(stack.controlUrl);
  const connection = await Connection.connect({ address: server.address });
  const client = new Client({ connection });
  const taskQueue = 'bench-abort';
  const native = await NativeConnection.connect({ address: server.address });
  const worker = await Worker.create({
    connection: native,
    taskQueue,
    workflowBundle: await workflowBundle(),
    sinks: NO_METRICS_SINKS,
    activities: createActivities(
      providersFromEnv({ CANARY_LOCAL_CONTROL_URL: stack.controlUrl, CANARY_ALERT_LOG: '/dev/null' }),
    ),
  });
  const running = worker.run();
  const latencies: number[] = [];
  try {
    for (let i = 0; i < rollouts; i++) {
      const target = { app: `bench-abort-${i}`, namespace: 'bench' };
      const input: RolloutInput = {
        target,
        version: 'v2',
        requestedBy: 'bench',
        plan: {
          analysis: { interval: '1m', checks: [{ name: 'error-rate', metric: 'error-rate', max: 5 }] },
          stages: [{ weight: 10, hold: '1h' }, { weight: 100 }],
          promotion: { cleanupDelay: '0s' },
        },
      };
      const h = await client.workflow.start<typeof canaryRollout>('canaryRollout', {
        workflowId: rolloutWorkflowId(target),
        taskQueue,
        args: [input],
      });
      while ((await control.state()).weight !== 10) await sleep(5);
      const t0 = performance.now();
      await h.signal(abortSignal, { identity: 'bench', reason: 'latency probe' });
      while ((await control.state()).weight !== 0) await sleep(1);
      latencies.push(performance.now() - t0);
      await rolloutResult(h);
    }
  } finally {
    worker.shutdown();
    await running;
    await native.close();
    await connection.close();
    await traffic.stop();
    await stack.close();
    await server.stop();
  }
  const sorted = [...latencies].sort((a, b) => a - b);
  console.log(
    `abort latency over ${rollouts} rollouts on the dev server (signal sent → router reports weight 0)`,
  );
  console.log(
    `  p50 ${percentile(sorted, 50).toFixed(1)} ms   p99 ${percentile(sorted, 99).toFixed(1)} ms   ` +
      `min ${sorted[0].toFixed(1)} ms   max ${sorted[sorted.length - 1].toFixed(1)} ms`,
  );
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

async function main(): Promise<void> {
  const i = process.argv.indexOf('--rollouts');
  const rollouts = i > 0 ? Number(process.argv[i + 1]) : 50;
  if (!Number.isInteger(rollouts) || rollouts < 1) {
    console.error('--rollouts must be a positive whole number');
    process.exit(2);
  }
  await defaultPlan();
  await abortLatency(rollouts);
  for (const line of kubeFigureLines(await benchKubeRouters())) console.log(line);
  console.log(`peak RSS ${(process.memoryUsage().rss / 2 ** 20).toFixed(0)} MiB`);
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(3);
  },
);
