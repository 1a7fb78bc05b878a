// Benchmark, printed as figures (not a test): `npm run bench:release`. A release of N members (default 10), each a
// real rollout on Istio objects of a real kube-apiserver, driven by a real worker process on a Temporal dev server.
// Measures, over several releases each:
//   - release abort → every member's live VirtualService at weight 0;
//   - one member aborted on its own (as a breach would roll it back) → every member at weight 0;
// and the history size of the release workflow. BENCH_RELEASE_MEMBERS and BENCH_RELEASE_RUNS override the sizes.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { Client, Connection } from '@temporalio/client';
import { kubeClients } from '../activities/kube/client';
import { prepareRelease } from '../client/release';
import { startDevServer } from '../demo/dev-server';
import { startKubeServer } from '../harness/kube';
import { startDeploymentSimulator } from '../harness/kube-controller';
import { createRolloutFixture, type RolloutFixture } from '../harness/kube-rollout';
import { killAll, startWorkerProcess } from '../harness/processes';
import { abortSignal } from '../workflows/api';
import { releaseAbortSignal } from '../workflows/release-api';
import { RELEASE_WORKFLOW } from '../workflows/release-model';

const MEMBERS = Number(process.env.BENCH_RELEASE_MEMBERS ?? 10);
const RUNS = Number(process.env.BENCH_RELEASE_RUNS ?? 3);
const NS = 'bench';

const pct = (sorted: number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
const fmt = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return `p50 ${pct(s, 50).toFixed(0)} ms, p99 ${pct(s, 99).toFixed(0)} ms (n=${s.length}, min ${s[0].toFixed(0)}, max ${s[s.length - 1].toFixed(0)})`;
};

async function waitFor(
  what: string,
  fn: () => Promise<boolean>,
  timeoutMs = 120_000,
  pollMs = 20,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await fn().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, pollMs));
  }
}

async function main(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'canary-bench-release-'));
  const [server, kube] = await Promise.all([
    startDevServer({ ui: false }),
    startKubeServer({ crds: ['istio'] }),
  ]);
  const queue = `bench-release-${process.pid}`;
  const admin = kubeClients(kube.kubeConfig('admin'));
  await kube.createNamespace(NS);
  const simulator = startDeploymentSimulator(kube.kubeConfig('admin'), NS, {
    pollMs: 100,
    readyAfterMs: 200,
  });
  const worker = await startWorkerProcess({
    TEMPORAL_ADDRESS: server.address,
    TEMPORAL_NAMESPACE: server.namespace,
    TEMPORAL_TASK_QUEUE: queue,
    KUBECONFIG: kube.kubeconfigFile('admin'),
    CANARY_KUBECONFIG: '',
    CANARY_KUBE_CONTEXT: '',
    CANARY_ALERT_LOG: path.join(dir, 'alerts.jsonl'),
    CANARY_ALERT_WEBHOOK_URL: '',
  });
  const connection = await Connection.connect({ address: server.address });
  const client = new Client({ connection, namespace: server.namespace });
  const results: Record<'release abort' | 'member breach', number[]> = {
    'release abort': [],
    'member breach': [],
  };
  const historyEvents: number[] = [];
  try {
    let n = 0;
    for (let run = 0; run < RUNS; run++) {
      for (const kind of ['release abort', 'member breach'] as const) {
        n++;
        const fx: RolloutFixture[] = [];
        for (let i = 0; i < MEMBERS; i++)
          fx.push(await createRolloutFixture(admin, 'istio', NS, `r${n}-m${i}`));
        const name = `bench-${n}`;
        const prepared = prepareRelease(
          {
            release: name,
            members: fx.map((f, i) => ({
              id: `m${i}`,
              target: f.target,
              version: 'v2',
              image: f.stableImage.replace(/:v1$/, ':v2'),
              plan: {
                analysis: { interval: '1m', checks: [] },
                stages: [{ weight: 20, hold: '1h' }, { weight: 100 }],
                promotion: { cleanupDelay: '0s' },
              },
            })),
          },
          '.',
          { requestedBy: 'bench', nowMs: Date.now(), taskQueue: queue },
        );
        if (!prepared.ok) throw new Error(JSON.stringify(prepared.problems));
        const handle = await client.workflow.start(RELEASE_WORKFLOW, {
          taskQueue: queue,
          workflowId: prepared.release.workflowId,
          args: [prepared.release.input],
        });
        await waitFor(`every member of ${name} at 20 %`, async () =>
          (await Promise.all(fx.map((f) => f.weights()))).every((w) => w.canary === 20),
        );
        const t0 = performance.now();
        if (kind === 'release abort') {
          await handle.signal(releaseAbortSignal, { identity: 'bench', reason: 'bench' });
        } else {
          await client.workflow
            .getHandle(prepared.release.input.members[MEMBERS - 1].workflowId)
            .signal(abortSignal, { identity: 'bench', reason: 'bench breach' });
        }
        await waitFor(`every member of ${name} at 0 %`, async () =>
          (await Promise.all(fx.map((f) => f.weights()))).every((w) => w.canary === 0),
        );
        results[kind].push(performance.now() - t0);
        await handle.result().catch(() => undefined);
        historyEvents.push((await handle.fetchHistory()).events?.length ?? 0);
        process.stdout.write(
          `  ${name} (${kind}): ${results[kind][results[kind].length - 1].toFixed(0)} ms\n`,
        );
      }
    }
    console.log(`\nRelease of ${MEMBERS} members on a real kube-apiserver (Istio), one worker, 2 cores:`);
    for (const [kind, xs] of Object.entries(results))
      console.log(`  ${kind} → every member at weight 0: ${fmt(xs)}`);
    console.log(
      `  release workflow history: ${Math.min(...historyEvents)}–${Math.max(...historyEvents)} events per release ` +
        `(children, member signals, approvals; no timers besides a wave's bake, so a 48 h release records the same)`,
    );
  } finally {
    await connection.close();
    await simulator.stop();
    await worker.kill('SIGTERM');
    killAll();
    await Promise.all([server.stop(), kube.stop()]);
  }
}

main().catch((err) => {
  console.error(err);
  killAll();
  process.exit(1);
});
