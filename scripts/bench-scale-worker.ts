// The worker process of `npm run bench:scale` (scripts/bench-scale.ts starts it with IPC): the product's rollout
// worker (createRolloutWorker, the prebuilt workflow bundle, the real activities) with in-memory providers, so the
// figures are the orchestrator's own and not a router's or Prometheus's. It tells its parent when a rollout first
// takes traffic and when an abort reaches weight 0, and answers for its analysis rounds, memory and a heap snapshot.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as v8 from 'node:v8';
import { DefaultLogger, NativeConnection, Runtime } from '@temporalio/worker';
import { fixedProviders } from '../activities/factory';
import { createActivities } from '../activities/rollout-activities';
import type { MetricsProvider, TrafficRouter, WorkloadManager } from '../activities/types';
import type { Target } from '../workflows/target';
import { createRolloutWorker } from '../worker/worker';

export type WorkerMessage =
  | { type: 'ready' }
  | { type: 'first'; app: string; at: number }
  | { type: 'zero'; app: string; at: number }
  | {
      type: 'report';
      rounds: Record<string, number[]>;
      rss: number;
      hwm: number;
      memory: NodeJS.MemoryUsage;
    }
  | { type: 'snapshot'; file: string };

export type ParentMessage = { type: 'report' } | { type: 'snapshot'; dir: string } | { type: 'stop' };

function send(m: WorkerMessage): void {
  process.send?.(m);
}

const weights = new Map<string, number>();
/** Per app, when each analysis round queried (the first query of a round: queries a second apart are one round). */
const rounds = new Map<string, number[]>();

function router(app: string): TrafficRouter {
  return {
    type: 'memory',
    setup: async () => undefined,
    getWeight: async () => weights.get(app) ?? 0,
    setWeight: async (weight) => {
      const previous = weights.get(app) ?? 0;
      weights.set(app, weight);
      if (previous === 0 && weight > 0) send({ type: 'first', app, at: Date.now() });
      if (previous > 0 && weight === 0) send({ type: 'zero', app, at: Date.now() });
      return { previous, changed: previous !== weight };
    },
    verifyWeight: async (weight) => ({ verified: true, weight: weights.get(app) ?? weight }),
    teardown: async () => {
      weights.set(app, 0);
    },
  };
}

const workloads: WorkloadManager = {
  type: 'memory',
  ensureCanary: async () => ({ stableVersion: 'v1' }),
  promoteStable: async () => undefined,
  scaleDownCanary: async () => undefined,
  cleanupCanary: async () => undefined,
};

function metrics(app: string): MetricsProvider {
  return {
    type: 'memory',
    runQuery: async () => {
      const now = Date.now();
      const list = rounds.get(app) ?? [];
      if (list.length === 0 || now - list[list.length - 1] > 1000) list.push(now);
      rounds.set(app, list);
      return 0;
    },
    isOnline: async () => true,
  };
}

async function main(): Promise<void> {
  const address = process.env.BENCH_ADDRESS ?? '';
  const taskQueue = process.env.BENCH_QUEUE ?? 'bench-scale';
  const cached = Number(process.env.BENCH_MAX_CACHED ?? '1100');
  const routers = new Map<string, TrafficRouter>();
  const providers = {
    ...fixedProviders({ router: router(''), workloads, metrics: metrics(''), alerts: [] }),
    router: (t: Target) => {
      let r = routers.get(t.app);
      if (!r) routers.set(t.app, (r = router(t.app)));
      return r;
    },
    metrics: (t: Target) => metrics(t.app),
  };
  // Rollouts that roll back end as failed workflows, which the SDK logs as warnings: keep the figures readable.
  Runtime.install({ logger: new DefaultLogger('ERROR') });
  const connection = await NativeConnection.connect({ address });
  const worker = await createRolloutWorker({
    connection,
    taskQueue,
    activities: createActivities(providers),
    // BENCH_BUNDLE: another prebuilt workflow bundle to compare (default: the build's).
    ...(process.env.BENCH_BUNDLE
      ? { workflows: { workflowBundle: { codePath: process.env.BENCH_BUNDLE } } }
      : {}),
    extra: { maxCachedWorkflows: cached },
  });
  process.on('message', (m: ParentMessage) => {
    if (m.type === 'report') {
      const status = fs.readFileSync('/proc/self/status', 'utf8');
      const kb = (k: string): number => Number(new RegExp(`${k}:\\s+(\\d+)`).exec(status)?.[1] ?? 0) * 1024;
      send({
        type: 'report',
        rounds: Object.fromEntries(rounds),
        rss: kb('VmRSS'),
        hwm: kb('VmHWM'),
        memory: process.memoryUsage(),
      });
    } else if (m.type === 'snapshot') {
      send({ type: 'snapshot', file: v8.writeHeapSnapshot(path.join(m.dir, 'worker.heapsnapshot')) });
    } else if (m.type === 'stop') {
      worker.shutdown();
    }
  });
  const running = worker.run();
  send({ type: 'ready' });
  await running;
  await connection.close();
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(3);
  },
);
