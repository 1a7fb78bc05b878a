// Many rollouts on one worker, printed as figures (not a test):
//   npm run bench:scale [-- --rollouts 1000 --steady 150 --settle 60 --aborts 20 --interval 1m --heap-snapshot DIR]
// A Temporal dev server and ONE worker process (scripts/bench-scale-worker.ts: the product's worker with in-memory
// providers, every rollout cached). N rollouts start, each holding 5 % for an hour with an analysis round every
// interval. Printed: the start rate; the time until every rollout took its first stage; the analysis lag over the
// steady phase (how late each round ran against its schedule), p50/p99, measured from --settle seconds (default: one
// interval) after the last rollout took its first stage, so the start-up's backlog is not counted as steady; the CPU
// the worker and the dev server used meanwhile; the worker's and the dev server's RSS; and abort → weight 0 under
// that load, p50/p99, for rollouts aborted one at a time while the others run.
import { fork } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Client, Connection, type WorkflowHandle } from '@temporalio/client';
import { startDevServer } from '../demo/dev-server';
import { parseDuration } from '../workflows/duration';
import { abortSignal, rolloutWorkflowId, type RolloutInput } from '../workflows/api';
import type { canaryRollout } from '../workflows';
import type { ParentMessage, WorkerMessage } from './bench-scale-worker';

interface Options {
  rollouts: number;
  steadyS: number;
  aborts: number;
  interval: string;
  heapSnapshot?: string;
  settleS?: number;
}

function options(argv: string[]): Options {
  const o: Options = { rollouts: 1000, steadyS: 150, aborts: 20, interval: '1m' };
  for (let i = 0; i < argv.length; i += 2) {
    const [flag, value] = [argv[i], argv[i + 1]];
    const whole = (): number => {
      const n = Number(value);
      if (!Number.isInteger(n) || n < 0) fail(`${flag} must be a whole number, not ${value}`);
      return n;
    };
    if (flag === '--rollouts') o.rollouts = Math.max(1, whole());
    else if (flag === '--steady') o.steadyS = whole();
    else if (flag === '--aborts') o.aborts = whole();
    else if (flag === '--interval') o.interval = value;
    else if (flag === '--heap-snapshot') o.heapSnapshot = value;
    else if (flag === '--settle') o.settleS = whole();
    else fail(`unknown flag ${flag} (--rollouts, --steady, --settle, --aborts, --interval, --heap-snapshot)`);
  }
  if (o.aborts > o.rollouts) fail('--aborts must not exceed --rollouts');
  return o;
}

function fail(message: string): never {
  console.error(message);
  process.exit(2);
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

/** CPU seconds (user + system, every thread) a process has used so far. */
function cpuOf(pid: number): number {
  try {
    // Fields after the command name (which may hold spaces): state is the 3rd field, utime and stime the 14th, 15th.
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return NaN;
  }
}

function rssOf(pid: number): number {
  try {
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) * 1024;
  } catch {
    return NaN;
  }
}

const mib = (b: number): string => `${(b / 2 ** 20).toFixed(0)} MiB`;
const secs = (ms: number): string => `${(ms / 1000).toFixed(2)} s`;

async function main(): Promise<void> {
  const o = options(process.argv.slice(2));
  const intervalMs = parseDuration(o.interval);
  const server = await startDevServer({ ui: false });
  const taskQueue = 'bench-scale';
  const child = fork(path.join(__dirname, 'bench-scale-worker.js'), [], {
    env: {
      ...process.env,
      BENCH_ADDRESS: server.address,
      BENCH_QUEUE: taskQueue,
      BENCH_MAX_CACHED: String(o.rollouts + 100),
    },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const first = new Map<string, number>();
  const zero = new Map<string, (at: number) => void>();
  const replies: Array<(m: WorkerMessage) => void> = [];
  let ready!: () => void;
  const isReady = new Promise<void>((r) => (ready = r));
  child.on('message', (m: WorkerMessage) => {
    if (m.type === 'ready') ready();
    else if (m.type === 'first') first.set(m.app, m.at);
    else if (m.type === 'zero') zero.get(m.app)?.(m.at);
    else replies.shift()?.(m);
  });
  const ask = (m: ParentMessage): Promise<WorkerMessage> =>
    new Promise((r) => {
      replies.push(r);
      child.send(m);
    });
  const connection = await Connection.connect({ address: server.address });
  const client = new Client({ connection });
  try {
    await isReady;
    console.log(
      `bench:scale — ${o.rollouts} rollouts on one worker (in-memory providers), dev server, analysis every ${o.interval}`,
    );
    // 1. Starts, 50 in flight.
    const t0 = Date.now();
    const handles: Array<WorkflowHandle<typeof canaryRollout>> = [];
    const apps = Array.from({ length: o.rollouts }, (_, i) => `scale-${i}`);
    for (let i = 0; i < apps.length; i += 50) {
      handles.push(
        ...(await Promise.all(
          apps.slice(i, i + 50).map((app) => {
            const target = { app, namespace: 'bench' };
            const input: RolloutInput = {
              target,
              version: 'v2',
              requestedBy: 'bench',
              plan: {
                analysis: {
                  interval: o.interval,
                  checks: [{ name: 'errors', metric: 'error-rate', max: 5 }],
                },
                stages: [{ weight: 5, hold: '1h' }, { weight: 100 }],
                promotion: { cleanupDelay: '0s' },
              },
            };
            return client.workflow.start<typeof canaryRollout>('canaryRollout', {
              workflowId: rolloutWorkflowId(target),
              taskQueue,
              args: [input],
            });
          }),
        )),
      );
    }
    const startedMs = Date.now() - t0;
    console.log(
      `  started                 ${o.rollouts} in ${secs(startedMs)} (${((o.rollouts * 1000) / startedMs).toFixed(0)}/s)`,
    );
    // 2. Every rollout at its first stage.
    while (first.size < o.rollouts) await sleep(100);
    const firstAll = Math.max(...first.values()) - t0;
    console.log(`  all at their first stage ${secs(firstAll)} after the first start`);
    // 3. Steady: rounds on schedule, after the start-up's backlog has settled (one interval by default: the rounds
    // of rollouts that started first fall due while the last ones still start).
    const settleS = o.settleS ?? Math.round(intervalMs / 1000);
    await sleep(settleS * 1000);
    const steadyFrom = Date.now();
    const cpuFrom = cpuOf(child.pid ?? 0);
    const serverCpuFrom = cpuOf(server.pid);
    await sleep(o.steadyS * 1000);
    const cpuSteady = cpuOf(child.pid ?? 0) - cpuFrom;
    const serverCpuSteady = cpuOf(server.pid) - serverCpuFrom;
    const report = await ask({ type: 'report' });
    if (report.type !== 'report') throw new Error(`unexpected reply ${report.type}`);
    const lags: number[] = [];
    for (const times of Object.values(report.rounds)) {
      for (let i = 1; i < times.length; i++) {
        if (times[i] >= steadyFrom) lags.push(Math.max(0, times[i] - times[i - 1] - intervalMs));
      }
    }
    lags.sort((a, b) => a - b);
    console.log(
      `  analysis lag            p50 ${secs(percentile(lags, 50))}, p99 ${secs(percentile(lags, 99))}, max ${secs(lags[lags.length - 1] ?? NaN)} (${lags.length} rounds in ${o.steadyS} s, from ${settleS} s after the last first stage)`,
    );
    const roundsSteady = lags.length;
    console.log(
      `  worker CPU              ${cpuSteady.toFixed(1)} s in ${o.steadyS} s steady (${((100 * cpuSteady) / o.steadyS).toFixed(0)} % of a core, ${((1000 * cpuSteady) / Math.max(1, roundsSteady)).toFixed(1)} ms per round); dev server ${((100 * serverCpuSteady) / o.steadyS).toFixed(0)} % of a core`,
    );
    const mem = report.memory;
    console.log(`  worker RSS              ${mib(report.rss)} (peak ${mib(report.hwm)})`);
    console.log(
      `  worker V8 heap          ${mib(mem.heapUsed)} used of ${mib(mem.heapTotal)}, external ${mib(mem.external)} (array buffers ${mib(mem.arrayBuffers)})`,
    );
    console.log(`  worker RSS per rollout  ${(report.rss / 2 ** 20 / o.rollouts).toFixed(2)} MiB`);
    console.log(`  dev server RSS          ${mib(rssOf(server.pid))}`);
    if (o.heapSnapshot) {
      fs.mkdirSync(o.heapSnapshot, { recursive: true });
      const snap = await ask({ type: 'snapshot', dir: o.heapSnapshot });
      if (snap.type === 'snapshot') console.log(`  heap snapshot           ${snap.file}`);
    }
    // 4. Aborts under load, one at a time.
    const latencies: number[] = [];
    for (let i = 0; i < o.aborts; i++) {
      const app = apps[i];
      const reached = new Promise<number>((r) => zero.set(app, r));
      const sent = Date.now();
      await handles[i].signal(abortSignal, { identity: 'bench', reason: 'latency probe' });
      latencies.push((await reached) - sent);
    }
    latencies.sort((a, b) => a - b);
    if (o.aborts > 0) {
      console.log(
        `  abort → weight 0        p50 ${percentile(latencies, 50).toFixed(0)} ms, p99 ${percentile(latencies, 99).toFixed(0)} ms, max ${latencies[latencies.length - 1].toFixed(0)} ms (${o.aborts} aborts, ${o.rollouts - o.aborts} others running)`,
      );
    }
  } finally {
    child.send({ type: 'stop' } satisfies ParentMessage);
    const exited = new Promise((r) => child.once('exit', r));
    const killer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    await exited;
    clearTimeout(killer);
    await connection.close();
    await server.stop();
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(3);
  },
);
