// Benchmark, printed as figures (not a test): `npm run bench:hooks`. What hooks add to each stage entry: the same
// rollout (9 stages of 1 s holds, then 100 %) on a Temporal dev server with an in-process worker and the local
// stack, without hooks and with a beforeStage and an afterStage HTTP hook (a loopback receiver answering at once,
// signed bodies), alternated; the difference in wall time divided by the stage entries. Each hook is one activity,
// so the figure is mostly Temporal's round trip for scheduling it and recording its result.
import * as os from 'node:os';
import { performance } from 'node:perf_hooks';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Runtime, Worker } from '@temporalio/worker';
import { providersFromEnv } from '../activities/factory';
import { createActivities } from '../activities/rollout-activities';
import { RolloutClient, rolloutResult } from '../client/index';
import { startDevServer } from '../demo/dev-server';
import { startLocalStack } from '../demo/stack';
import { startReceiver } from '../harness/receivers';
import { workflowBundle } from '../harness/rollout-env';
import { rolloutWorkflowId } from '../workflows/api';
import type { PlanSpec } from '../workflows/plan';
import { RolloutLogger } from '../worker/logger';

const ROUNDS = Number(process.env.BENCH_HOOKS_ROUNDS ?? 3);
const WEIGHTS = [10, 20, 30, 40, 50, 60, 70, 80, 90];

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

async function main(): Promise<void> {
  try {
    Runtime.install({ logger: new RolloutLogger('WARN') });
  } catch {
    // installed already
  }
  const secret = 'bench-hooks-hmac-key-0123456789';
  const [server, stack, receiver] = await Promise.all([
    startDevServer({ ui: false }),
    startLocalStack({ stableVersion: 'v1' }),
    startReceiver({ secret }),
  ]);
  const connection = await Connection.connect({ address: server.address });
  const client = new Client({ connection, namespace: server.namespace });
  const native = await NativeConnection.connect({ address: server.address });
  const taskQueue = 'bench-hooks';
  const worker = await Worker.create({
    connection: native,
    namespace: server.namespace,
    taskQueue,
    workflowBundle: await workflowBundle(),
    activities: createActivities(
      providersFromEnv({
        CANARY_PROVIDERS: 'local',
        CANARY_LOCAL_CONTROL_URL: stack.controlUrl,
        CANARY_HOOK_SECRET: secret,
      }),
    ),
  });
  const running = worker.run();
  const rollouts = new RolloutClient(client, { taskQueue });
  const entries = WEIGHTS.length + 1;
  const plan = (hooked: boolean): PlanSpec =>
    ({
      analysis: { interval: '1m', checks: [] },
      stages: [...WEIGHTS.map((weight) => ({ weight, hold: '1s' })), { weight: 100 }],
      promotion: { cleanupDelay: '0s' },
      ...(hooked
        ? {
            hooks: {
              beforeStage: [{ name: 'before', http: { url: `${receiver.url}/before` } }],
              afterStage: [{ name: 'after', http: { url: `${receiver.url}/after` } }],
            },
          }
        : {}),
    }) as PlanSpec;
  let n = 0;
  const once = async (hooked: boolean): Promise<{ ms: number; hookMs: number[] }> => {
    const target = { app: `bench-${n++}`, namespace: 'hooks' };
    const t = performance.now();
    const handle = await client.workflow.start('canaryRollout', {
      workflowId: rolloutWorkflowId(target),
      taskQueue,
      args: [{ target, version: 'v2', plan: plan(hooked), requestedBy: 'bench' }],
    });
    const result = await rolloutResult(handle);
    const ms = performance.now() - t;
    if (result.outcome !== 'promoted') throw new Error(`rollout ended ${result.outcome}: ${result.reason}`);
    const st = await rollouts.status(handle.workflowId);
    return { ms, hookMs: (st.hookRuns ?? []).map((r) => r.tookMs) };
  };
  try {
    await once(false); // warm-up: bundle, caches, the stack
    const plain: number[] = [];
    const hooked: number[] = [];
    const hookMs: number[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      plain.push((await once(false)).ms);
      const h = await once(true);
      hooked.push(h.ms);
      hookMs.push(...h.hookMs);
    }
    const requests = receiver.requests.length;
    const valid = receiver.requests.filter((r) => r.signatureValid).length;
    const perEntry = (median(hooked) - median(plain)) / entries;
    console.log(
      `hook overhead per stage entry, ${entries} entries, 1 s holds, dev server + in-process worker (${os.cpus().length} cores)`,
    );
    console.log(`rollout without hooks          median ${median(plain).toFixed(0)} ms  (n=${plain.length})`);
    console.log(
      `with beforeStage + afterStage  median ${median(hooked).toFixed(0)} ms  (n=${hooked.length})`,
    );
    console.log(
      `added per stage entry (2 hooks): ${perEntry.toFixed(1)} ms; per hook ${(perEntry / 2).toFixed(1)} ms`,
    );
    console.log(
      `  of which the HTTP call itself (activity's own time): median ${median(hookMs).toFixed(1)} ms; ` +
        `${requests} requests, ${valid} with a valid signature`,
    );
  } finally {
    worker.shutdown();
    await running;
    await connection.close();
    await native.close();
    await receiver.close();
    await stack.close();
    await server.stop();
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
