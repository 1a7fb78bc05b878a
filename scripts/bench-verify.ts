// Benchmark, printed as figures (not a test): `npm run bench:verify`. What verifying a signed request adds to an
// approve: the latency of `approve` through the client library against a Temporal dev server, unsigned and signed
// (ssh-keygen -Y sign in the client, the verifier as a local activity in the worker), each over the same gate, and
// the two halves of the difference measured alone (signing in the client, verifying in the worker).
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Runtime, Worker } from '@temporalio/worker';
import { providersFromEnv } from '../activities/factory';
import { verifyRequest } from '../activities/identity';
import { createActivities } from '../activities/rollout-activities';
import { RolloutClient } from '../client/index';
import { requestPayload, signPayload } from '../client/sign';
import { startDevServer } from '../demo/dev-server';
import { startLocalStack } from '../demo/stack';
import { workflowBundle } from '../harness/rollout-env';
import { rolloutWorkflowId } from '../workflows/api';
import type { PlanSpec } from '../workflows/plan';
import { RolloutLogger } from '../worker/logger';

const N = Number(process.env.BENCH_VERIFY_N ?? 30);
const WARMUP = 3;

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}
function figures(name: string, ms: number[]): string {
  const s = [...ms].sort((a, b) => a - b);
  const f = (x: number) => `${x.toFixed(1)} ms`.padStart(9);
  return `${name.padEnd(46)} p50 ${f(percentile(s, 50))}  p99 ${f(percentile(s, 99))}  (n=${s.length})`;
}
async function timed<T>(fn: () => Promise<T>): Promise<number> {
  const t = performance.now();
  await fn();
  return performance.now() - t;
}

async function main(): Promise<void> {
  try {
    Runtime.install({ logger: new RolloutLogger('WARN') });
  } catch {
    // installed already
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'canary-bench-verify-'));
  const total = WARMUP + N;
  const keys = Array.from({ length: total }, (_, i) => {
    const file = path.join(dir, `k${i}`);
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', file]);
    return file;
  });
  const signers = path.join(dir, 'allowed_signers');
  fs.writeFileSync(
    signers,
    keys
      .map(
        (k, i) => `p${i}@example.com ${fs.readFileSync(`${k}.pub`, 'utf8').split(' ').slice(0, 2).join(' ')}`,
      )
      .join('\n'),
  );
  const identity = { requireVerified: false, allowedSigners: signers };

  const [server, stack] = await Promise.all([
    startDevServer({ ui: false }),
    startLocalStack({ stableVersion: 'v1' }),
  ]);
  const connection = await Connection.connect({ address: server.address });
  const client = new Client({ connection, namespace: server.namespace });
  const native = await NativeConnection.connect({ address: server.address });
  const taskQueue = 'bench-verify';
  const worker = await Worker.create({
    connection: native,
    namespace: server.namespace,
    taskQueue,
    workflowBundle: await workflowBundle(),
    activities: createActivities(
      providersFromEnv({ CANARY_PROVIDERS: 'local', CANARY_LOCAL_CONTROL_URL: stack.controlUrl }),
      identity,
    ),
  });
  const running = worker.run();
  const rollouts = new RolloutClient(client, { taskQueue });
  try {
    // One gate that needs more approvals than the bench gives: every approve is accepted, none passes it.
    const plan = {
      analysis: { interval: '1m', checks: [] },
      stages: [
        { weight: 10, hold: '1m', gate: { type: 'approval', approvals: { required: 2 * total + 1 } } },
        { weight: 100 },
      ],
      promotion: { cleanupDelay: '0s' },
    } as unknown as PlanSpec;
    const target = { app: 'bench', namespace: 'verify' };
    const workflowId = rolloutWorkflowId(target);
    await client.workflow.start('canaryRollout', {
      workflowId,
      taskQueue,
      args: [{ target, version: 'v2', plan, requestedBy: 'bench' }],
    });
    while ((await rollouts.status(workflowId)).phase !== 'waiting_approval') {
      await new Promise((r) => setTimeout(r, 200));
    }
    const unsigned: number[] = [];
    const signed: number[] = [];
    for (let i = 0; i < total; i++) {
      // Alternating, so both see the same history length and server load.
      const u = await timed(() => rollouts.approve(workflowId, { identity: `u${i}` }));
      const s = await timed(() =>
        rollouts.approve(workflowId, { identity: `p${i}`, signer: { sshKey: keys[i] } }),
      );
      if (i >= WARMUP) {
        unsigned.push(u);
        signed.push(s);
      }
    }
    const signing: number[] = [];
    const verifying: number[] = [];
    for (let i = 0; i < N; i++) {
      const payload = requestPayload(workflowId, 'approve', { stage: 1 });
      let sig: Awaited<ReturnType<typeof signPayload>> | undefined;
      signing.push(await timed(async () => (sig = await signPayload(payload, { sshKey: keys[i] }))));
      const input = {
        signature: sig!,
        expect: { rolloutId: workflowId, action: 'approve' as const, stage: 1, promotion: false },
      };
      verifying.push(await timed(() => verifyRequest(input, identity)));
    }
    const st = await rollouts.status(workflowId);
    const p50 = (ms: number[]) =>
      percentile(
        [...ms].sort((a, b) => a - b),
        50,
      );
    const p99 = (ms: number[]) =>
      percentile(
        [...ms].sort((a, b) => a - b),
        99,
      );
    console.log(`approve latency, client library → Temporal dev server → worker (${os.cpus().length} cores)`);
    console.log(figures('unsigned approve', unsigned));
    console.log(figures('signed approve (ssh-keygen sign + verify)', signed));
    console.log(figures('  of which: signing in the client', signing));
    console.log(figures('  of which: verifying in the worker (ed25519)', verifying));
    console.log(
      `added by signing + verification: p50 ${(p50(signed) - p50(unsigned)).toFixed(1)} ms, ` +
        `p99 ${(p99(signed) - p99(unsigned)).toFixed(1)} ms; approvals recorded: ${st.gate?.required !== undefined ? st.gate.required - (st.gate.needed ?? 0) : '?'}`,
    );
  } finally {
    worker.shutdown();
    await running;
    await connection.close();
    await native.close();
    await stack.close();
    await server.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
