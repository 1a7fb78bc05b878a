// Signed requests end to end: the real CLI (`canary --sign-key`) and the real worker process (its verifier reading
// CANARY_ALLOWED_SIGNERS) against a Temporal dev server and the local stack. A plan that demands verified identities
// refuses unsigned and unknown-key requests with exit 2 and the reason, and records the verified principal.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { startDevServer, type DevServer } from '../../demo/dev-server';
import { startLocalStack, type LocalStack } from '../../demo/stack';
import { startTrafficGenerator } from '../../demo/traffic-generator';
import { eventually, killAll, runCli, startWorkerProcess, type WorkerProcess } from '../../harness/processes';
import type { RolloutStatus } from '../../workflows/types';

let server: DevServer;
let stack: LocalStack;
let traffic: { stop(): unknown };
let worker: WorkerProcess;
let env: Record<string, string>;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'canary-cli-signed-'));
const keys: Record<string, string> = {};

const canary = (...args: string[]) => runCli(args, env);
async function status(id: string): Promise<RolloutStatus> {
  const r = await canary('status', id, '--output', 'json');
  expect(r.code).toBe(0);
  return JSON.parse(r.stdout) as RolloutStatus;
}

beforeAll(async () => {
  for (const name of ['alice', 'mallory']) {
    keys[name] = path.join(dir, name);
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', name, '-f', keys[name]]);
  }
  const pub = fs.readFileSync(`${keys.alice}.pub`, 'utf8').split(' ').slice(0, 2).join(' ');
  fs.writeFileSync(path.join(dir, 'allowed_signers'), `alice@example.com ${pub}\n`);
  server = await startDevServer({ ui: false });
  stack = await startLocalStack({ stableVersion: 'v1' });
  traffic = startTrafficGenerator({ url: stack.proxyUrl, rps: 100 });
  env = {
    TEMPORAL_ADDRESS: server.address,
    TEMPORAL_TASK_QUEUE: 'cli-signed',
    CANARY_LOCAL_CONTROL_URL: stack.controlUrl,
    CANARY_ALERT_LOG: path.join(dir, 'alerts.jsonl'),
    CANARY_ALLOWED_SIGNERS: path.join(dir, 'allowed_signers'),
    GITHUB_ACTOR: '',
    CANARY_IDENTITY: 'alice',
  };
  worker = await startWorkerProcess(env);
}, 120_000);

afterAll(async () => {
  await worker?.kill('SIGTERM');
  killAll();
  await traffic?.stop();
  await stack?.close();
  await server?.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

test('a verified plan: unsigned and unknown keys exit 2 with the reason; a signed approve, pause, resume and abort record ssh:alice@example.com', async () => {
  const plan = path.join(dir, 'plan.yaml');
  fs.writeFileSync(
    plan,
    `approvals: { verified: true, approvers: [alice@example.com] }
analysis:
  interval: 10s
  checks:
    - { name: error-rate, metric: error-rate, max: 5 }
stages:
  - { weight: 10, hold: 1s }
  - { weight: 50, hold: 1h, gate: approval }
  - { weight: 100 }
promotion: { cleanupDelay: 0s }
`,
  );
  const started = await canary(
    'start',
    '--app',
    'signed',
    '--namespace',
    'it',
    '--version',
    'v2',
    '--plan',
    plan,
  );
  expect(started.code).toBe(0);
  const id = 'canary.it.signed';
  await eventually(
    async () => (await status(id)).phase === 'waiting_approval',
    60_000,
    'the gate of stage 2',
  );

  const shown = await canary('status', id);
  expect(shown.stdout).toContain('Signed requests only (its plan (approvals.verified)):');
  const unsigned = await canary('approve', id);
  expect(unsigned.code).toBe(2);
  expect(unsigned.stderr).toContain('unsigned approve refused: this rollout demands a verified identity');
  const unknown = await canary('--sign-key', keys.mallory, 'approve', id);
  expect(unknown.code).toBe(2);
  expect(unknown.stderr).toMatch(
    /unknown key ssh-ed25519 SHA256:\S+: it is not in this worker's allowed signers/,
  );

  const approved = await canary('--sign-key', keys.alice, 'approve', id, '--output', 'json');
  expect(approved.stderr).toBe('');
  expect(approved.code).toBe(0);
  expect(JSON.parse(approved.stdout)).toMatchObject({
    stage: 2,
    by: 'ssh:alice@example.com',
    kind: 'approved',
  });
  await eventually(async () => (await status(id)).weight === 50, 60_000, 'stage 2 at 50%');

  const paused = await canary('--sign-key', keys.alice, 'pause', id, '--reason', 'looking');
  expect(paused.code).toBe(0);
  expect(paused.stdout).toContain('(by ssh:alice@example.com)');
  expect((await canary('--sign-key', keys.alice, 'resume', id)).code).toBe(0);
  const unsignedAbort = await canary('abort', id, '--reason', 'no');
  expect(unsignedAbort.code).toBe(2);
  expect(unsignedAbort.stderr).toContain('unsigned abort refused');
  const aborted = await canary('--sign-key', keys.alice, 'abort', id, '--reason', 'enough');
  expect(aborted.code).toBe(0);
  expect(aborted.stdout).toContain('by ssh:alice@example.com');
  const final = await eventually(
    async () => {
      const st = await status(id);
      return st.phase === 'rolled_back' ? st : undefined;
    },
    60_000,
    'the rollback',
  );
  expect(final.approvals.map((a) => [a.kind, a.by])).toEqual([['approved', 'ssh:alice@example.com']]);
  expect(final.rollbackReason).toContain('ssh:alice@example.com');
}, 180_000);
