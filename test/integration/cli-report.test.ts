// `canary report` against a real Temporal dev server, a real worker process and the real local stack: a few short
// rollouts (promoted after an approval, rolled back by a check, aborted), then the report's counts, reasons and
// times, as text and JSON.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { startDevServer, type DevServer } from '../../demo/dev-server';
import { startLocalStack, type LocalStack } from '../../demo/stack';
import { startTrafficGenerator } from '../../demo/traffic-generator';
import type { RolloutReport } from '../../client/rollout-report';
import { eventually, killAll, runCli, startWorkerProcess, type WorkerProcess } from '../../harness/processes';

jest.setTimeout(300_000);

let server: DevServer;
let stack: LocalStack;
let traffic: { stop(): unknown };
let worker: WorkerProcess;
let env: Record<string, string>;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'canary-report-'));
const canary = (...args: string[]) => runCli(args, env);

function planFile(name: string, body: string): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, body);
  return file;
}

const checks = `analysis:
  interval: 10s
  checks:
    - { name: error-rate, metric: error-rate, max: 5 }
`;
const gated = planFile(
  'gated.yaml',
  `${checks}stages:\n  - { weight: 10, hold: 2s }\n  - { weight: 100, gate: approval }\npromotion: { cleanupDelay: 0s }\n`,
);
const fast = planFile(
  'fast.yaml',
  `${checks}stages:\n  - { weight: 10, hold: 2s }\n  - { weight: 100 }\npromotion: { cleanupDelay: 0s }\n`,
);
const long = planFile(
  'long.yaml',
  `${checks}stages:\n  - { weight: 10, hold: 1h }\n  - { weight: 100 }\npromotion: { cleanupDelay: 0s }\n`,
);

const start = (app: string, version: string, plan: string, ...extra: string[]) =>
  canary('start', '--app', app, '--namespace', 'rep', '--version', version, '--plan', plan, ...extra);

/** The local stack serves one app whatever the target: one rollout at a time, each over before the next. */
async function settled(): Promise<void> {
  await eventually(
    async () => {
      const live = (await fetch(`${stack.controlUrl}/state`).then((x) => x.json())) as {
        weight: number;
        canary: unknown;
      };
      return live.weight === 0 && live.canary === null;
    },
    30_000,
    'the local stack to settle (weight 0, no canary)',
  );
}

beforeAll(async () => {
  server = await startDevServer({ ui: false });
  stack = await startLocalStack({ stableVersion: 'v1', faults: { 'v-bad': { errorRate: 0.5 } } });
  traffic = startTrafficGenerator({ url: stack.proxyUrl, rps: 100 });
  env = {
    TEMPORAL_ADDRESS: server.address,
    TEMPORAL_TASK_QUEUE: 'report-test',
    CANARY_LOCAL_CONTROL_URL: stack.controlUrl,
    CANARY_ALERT_LOG: path.join(dir, 'alerts.jsonl'),
    GITHUB_ACTOR: '',
    CANARY_IDENTITY: 'ci-bot',
  };
  worker = await startWorkerProcess(env);
}, 120_000);

afterAll(async () => {
  await worker?.kill('SIGTERM');
  killAll();
  await traffic?.stop();
  await stack?.close();
  await server?.stop();
});

test('report counts promoted, rolled back and aborted rollouts, names the check, and times phases', async () => {
  // Promoted after a person approved the last stage.
  const waiting = start('shop', 'v2', gated, '--wait');
  await eventually(
    async () =>
      (await canary('status', 'rep/shop', '--output', 'json')).stdout.includes('"waiting_approval"'),
    60_000,
    'the approval gate',
  );
  await new Promise((r) => setTimeout(r, 1500));
  expect((await canary('approve', 'rep/shop', '--as', 'alice')).code).toBe(0);
  expect((await waiting).code).toBe(0);
  await settled();
  // Rolled back by its error-rate check.
  expect((await start('cart', 'v-bad', fast, '--wait')).code).toBe(1);
  await settled();
  // Aborted by a person.
  const aborted = start('pay', 'v2', long, '--wait');
  await eventually(
    async () => (await canary('status', 'rep/pay', '--output', 'json')).stdout.includes('"weight": 10'),
    60_000,
    'stage 1 of rep/pay',
  );
  expect((await canary('abort', 'rep/pay', '--reason', 'bad dashboards', '--as', 'bob')).code).toBe(0);
  expect((await aborted).code).toBe(1);
  await settled();

  // Visibility lags a little behind the histories.
  let report: RolloutReport | undefined;
  await eventually(
    async () => {
      const r = await canary('report', '--since', '1h', '--output', 'json');
      if (r.code !== 0) throw new Error(r.stderr);
      report = JSON.parse(r.stdout) as RolloutReport;
      return report.rollouts.started === 3 && report.rollouts.running === 0;
    },
    30_000,
    'three finished rollouts in visibility',
  );
  expect(report!.rollouts).toEqual({
    started: 3,
    promoted: 1,
    rolledBack: 1,
    aborted: 1,
    notStarted: 0,
    running: 0,
    other: 0,
  });
  expect(report!.rollbackReasons).toEqual([{ check: 'error-rate', count: 1 }]);
  expect(report!.endings).toEqual({ check: 1, abort: 1 });
  expect(report!.breachToZero.count).toBe(1);
  expect(report!.breachToZero.p90Ms).toBeLessThan(10_000);
  expect(report!.approvalWaits.count).toBe(1);
  expect(report!.approvalWaits.p50Ms).toBeGreaterThanOrEqual(1500);
  expect(report!.phases.map((p) => p.phase)).toEqual(
    expect.arrayContaining(['progressing', 'waiting_approval', 'rolling_back']),
  );

  const text = await canary('report', '--since', '1h');
  expect(text.code).toBe(0);
  expect(text.stdout).toContain('promoted 1, rolled back 1, aborted 1, not started 0, running 0');
  expect(text.stdout).toMatch(/Rollback reasons by check:\n {2}error-rate {2}1/);
  expect(text.stdout).toMatch(/Waiting for approval: {2}p50 \S+/);

  // One app only; and a range before any of them holds none.
  const one = JSON.parse(
    (await canary('report', '--since', '1h', '--app', 'cart', '--output', 'json')).stdout,
  );
  expect(one.rollouts).toMatchObject({ started: 1, rolledBack: 1 });
  const before = JSON.parse(
    (await canary('report', '--since', '3h', '--until', '-2h', '--output', 'json')).stdout,
  );
  expect(before.rollouts.started).toBe(0);

  // Bad input: exit 2, with what is wrong.
  const future = await canary('report', '--since', '2099-01-01T00:00:00Z');
  expect(future.code).toBe(2);
  expect(future.stderr).toContain('is in the future');
  const empty = await canary('report', '--since', '0s');
  expect(empty.code).toBe(2);
  expect(empty.stderr).toContain('is empty');
});
