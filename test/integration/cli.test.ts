// The real CLI and the real worker process against a real Temporal dev server and the real local stack.
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import { Client, Connection } from '@temporalio/client';
import * as os from 'node:os';
import * as path from 'node:path';
import { startLocalStack, type LocalStack } from '../../demo/stack';
import { startTrafficGenerator } from '../../demo/traffic-generator';
import { readAlerts } from '../../harness/alerts';
import { SA_APP } from '../../workflows/api';
import {
  FLEET_WORKFLOW,
  fleetLimitSignal,
  fleetReleaseSignal,
  fleetStatusQuery,
  fleetWorkflowId,
} from '../../workflows/fleet-api';
import type { RolloutStatus } from '../../workflows/types';
import { startDevServer, type DevServer } from '../../demo/dev-server';
import { eventually, killAll, runCli, startWorkerProcess, type WorkerProcess } from '../../harness/processes';

let server: DevServer;
let stack: LocalStack;
let traffic: { stop(): unknown };
let worker: WorkerProcess;
let env: Record<string, string>;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'canary-cli-'));

function planFile(name: string, body: string): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, body);
  return file;
}

// Seconds-long holds: the dev server runs in real time.
const fastPlan = planFile(
  'fast.yaml',
  `analysis:
  interval: 10s
  checks:
    - { name: error-rate, metric: error-rate, max: 5 }
stages:
  - { weight: 10, hold: 2s }
  - { weight: 50, hold: 2s }
  - { weight: 100 }
promotion: { cleanupDelay: 0s }
`,
);
const gatedPlan = planFile(
  'gated.yaml',
  `analysis:
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
const longPlan = planFile(
  'long.json',
  JSON.stringify({
    analysis: { interval: '10s', checks: [{ name: 'error-rate', metric: 'error-rate', max: 5 }] },
    stages: [{ weight: 10, hold: '1h' }, { weight: 100 }],
    promotion: { cleanupDelay: '0s' },
  }),
);

const canary = (...args: string[]) => runCli(args, env);
/** A command line as a person pastes it: through a shell, in the repository. */
function pasted(line: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      'bash',
      ['-c', line],
      { cwd: path.resolve(__dirname, '..', '..'), env: { ...process.env, ...env } },
      (err, stdout, stderr) =>
        resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr }),
    );
  });
}
/** `canary start` for app APP in namespace `it`. */
const start = (app: string, version: string, plan: string, ...extra: string[]) =>
  canary('start', '--app', app, '--namespace', 'it', '--version', version, '--plan', plan, ...extra);
async function status(id: string): Promise<RolloutStatus> {
  const r = await canary('status', id, '--output', 'json');
  expect(r.code).toBe(0);
  return JSON.parse(r.stdout) as RolloutStatus;
}

/**
 * The local stack serves one app whatever the target, so a rollout's tail (its canary cleanup after promotion)
 * must be over before the next test starts another: in production the one-rollout-per-target rule does this.
 */
afterEach(async () => {
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
});

beforeAll(async () => {
  server = await startDevServer({ ui: false });
  stack = await startLocalStack({ stableVersion: 'v1', faults: { 'v-bad': { errorRate: 0.5 } } });
  traffic = startTrafficGenerator({ url: stack.proxyUrl, rps: 100 });
  env = {
    TEMPORAL_ADDRESS: server.address,
    TEMPORAL_TASK_QUEUE: 'cli-test',
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

test('start --wait promotes and exits 0; status and list show it', async () => {
  const r = await start('web', 'v2', fastPlan, '--wait', '--output', 'json');
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  const final = JSON.parse(r.stdout) as RolloutStatus;
  expect(final).toMatchObject({ phase: 'promoted', app: 'web', namespace: 'it', version: 'v2' });
  expect(await fetch(`${stack.controlUrl}/state`).then((x) => x.json())).toMatchObject({
    weight: 0,
    stable: { version: 'v2' },
  });

  // The Web UI's summary and details of the rollout, set by the client at start.
  const connection = await Connection.connect({ address: server.address });
  try {
    const described = await new Client({ connection }).workflow.getHandle('canary.it.web').describe();
    expect(await described.staticSummary()).toBe('it/web → v2, by ci-bot');
    expect(await described.staticDetails()).toBe(
      "Plan: 10% 2s → 50% 2s → 100%\n\nTarget: it/web, the worker's default workloads and router",
    );
  } finally {
    await connection.close();
  }

  const text = await canary('status', 'it/web');
  expect(text.code).toBe(0);
  expect(text.stdout).toContain('promoted');
  expect(text.stdout).toContain('v2');

  const list = await canary('list', '--app', 'web', '--output', 'json');
  expect(list.code).toBe(0);
  expect(JSON.parse(list.stdout)).toEqual(
    expect.arrayContaining([expect.objectContaining({ app: 'web', version: 'v2' })]),
  );
}, 120_000);

test('start is idempotent per target: same version returns the running one, another version is refused', async () => {
  const first = await start('api', 'v3', longPlan, '--output', 'json');
  expect(first.code).toBe(0);
  const { workflowId } = JSON.parse(first.stdout) as { workflowId: string };
  expect(workflowId).toBe('canary.it.api');

  const again = await start('api', 'v3', longPlan, '--output', 'json');
  expect(again.code).toBe(0);
  expect(JSON.parse(again.stdout)).toMatchObject({ workflowId, started: false });

  // The same version with another plan is not the same rollout: refused, showing both plans.
  const otherPlan = await start('api', 'v3', fastPlan);
  expect(otherPlan.code).toBe(2);
  expect(otherPlan.stderr).toContain(
    'a rollout of version v3 is already running as canary.it.api, with another plan or target than requested; not started again',
  );
  expect(otherPlan.stderr).toContain('running plan: 10% 1h → 100%');
  expect(otherPlan.stderr).toContain('requested plan: 10% 2s → 50% 2s → 100%');

  const other = await start('api', 'v4', longPlan);
  expect(other.code).toBe(2);
  expect(other.stderr).toContain('canary.it.api');
  expect(other.stderr).toContain('v3');

  // status text: stage, weight and progress bars
  await eventually(async () => (await status(workflowId)).weight === 10, 30_000, 'stage 1');
  const text = await canary('status', workflowId);
  expect(text.stdout).toMatch(/1\/2/);
  expect(text.stdout).toMatch(/10 ?%/);
  expect(text.stdout).toMatch(/[█#]/);

  // pause, promote refused while paused, resume, promote
  const paused = await canary('pause', workflowId, '--reason', 'lunch');
  expect(paused.code).toBe(0);
  expect(paused.stdout).toContain(`Paused ${workflowId} at stage 1`);
  const resumeHint = /Resume: (.+)$/m.exec(paused.stdout)?.[1];
  expect(resumeHint).toBe(`node dist/client/cli.js resume ${workflowId}`);
  expect((await status(workflowId)).pauseReason).toBe('lunch');
  // A second pause changes nothing: refused with why, exit 2.
  const twice = await canary('pause', workflowId);
  expect(twice.code).toBe(2);
  expect(twice.stderr).toMatch(/already paused since .* by ci-bot \(lunch\)/);
  const refused = await canary('promote', workflowId);
  expect(refused.code).toBe(2);
  expect(refused.stderr).toContain('cannot promote: the rollout is paused; resume it first');
  expect((await pasted(resumeHint!)).code).toBe(0); // the hint, pasted as printed
  expect((await status(workflowId)).phase).toBe('progressing');
  const notPaused = await canary('resume', workflowId);
  expect(notPaused.code).toBe(2);
  expect(notPaused.stderr).toContain('not paused: the rollout is progressing at stage');
  const watching = canary('status', workflowId, '--watch', '--interval', '500ms');
  expect((await canary('promote', workflowId, '--comment', 'ship it', '--as', 'erin')).code).toBe(0);
  const done = await eventually(
    async () => {
      const st = await status(workflowId);
      return st.phase === 'promoted' ? st : undefined;
    },
    30_000,
    'promoted',
  );
  expect(done.approvals).toEqual([
    expect.objectContaining({ by: 'erin', kind: 'promote', comment: 'ship it' }),
  ]);
  // status --watch follows the rollout and ends with it
  const watched = await watching;
  expect(watched.code).toBe(0);
  // (it may start before or after the promotion lands: either way it shows who asked and ends promoted)
  expect(watched.stdout).toContain('promotion requested by erin');
  expect(watched.stdout).toMatch(/Phase\s+promoted|promoted: stable now runs v3/);
  // An abort after promotion would change nothing: refused, with how to go back.
  const late = await canary('abort', workflowId, '--reason', 'too late');
  expect(late.code).toBe(2);
  expect(late.stderr).toContain('stable already runs v3, so there is nothing to roll back to');
  // (the local stack serves one app: stable ran whatever the previous test promoted)
  const back =
    /roll out the previous version \((v\d) before this rollout\): (node dist\/client\/cli\.js start --like it\/api --version \1)$/m.exec(
      late.stderr,
    );
  expect(back).not.toBeNull();
  // status of the promoted rollout offers the same way back.
  expect((await canary('status', workflowId)).stdout).toContain(`Go back: ${back![2]}   `);
  // The way back works as pasted: the previous version, with the plan and target this rollout was started with.
  const again2 = await pasted(back![2]);
  expect(again2.stderr).toBe('');
  expect(again2.code).toBe(0);
  expect(again2.stdout).toContain(`Started rollout of ${back![1]} to it/api`);
  expect(again2.stdout).toContain('Plan:         the plan of canary.it.api: 10% 1h → 100%');
  const goingBack = await status('it/api');
  expect(goingBack).toMatchObject({ version: back![1], app: 'api', namespace: 'it', stageCount: 2 });
  expect((await canary('abort', 'it/api', '--reason', 'only checking the way back')).code).toBe(0);
  await eventually(async () => (await status('it/api')).phase === 'rolled_back', 30_000, 'rolled back');
}, 120_000);

test("start --like: copies a rollout's plan and target, lets flags override them, and names a missing rollout", async () => {
  const missing = await canary('start', '--like', 'it/nobody', '--version', 'v2');
  expect(missing.code).toBe(2);
  expect(missing.stderr).toContain('no rollout with id "canary.it.nobody" exists');
  const empty = await canary('start', '--like', ' ', '--version', 'v2');
  expect(empty.code).toBe(2);
  expect(empty.stderr).toContain('--like needs a rollout');

  const first = await start('likeme', 'v2', longPlan, '--output', 'json');
  expect(first.code).toBe(0);
  // Same version, --like: the idempotent start sees the very same plan and target.
  const same = await canary('start', '--like', 'it/likeme', '--version', 'v2');
  expect(same.stderr).toBe('');
  expect(same.code).toBe(0);
  expect(same.stdout).toContain('is already running');
  expect(same.stdout).toContain('Plan:         the plan of canary.it.likeme: 10% 1h → 100%');
  // --plan overrides the copied plan: then it is another plan, refused as such.
  const otherPlan = await canary('start', '--like', 'it/likeme', '--plan', fastPlan, '--version', 'v2');
  expect(otherPlan.code).toBe(2);
  expect(otherPlan.stderr).toContain('requested plan: 10% 2s → 50% 2s → 100%');
  expect((await canary('abort', 'it/likeme', '--reason', 'done')).code).toBe(0);
  await eventually(async () => (await status('it/likeme')).phase === 'rolled_back', 30_000, 'rolled back');

  // A finished rollout still lends its setup; --app overrides the copied target (the local stack serves one
  // app at a time, hence one after the other).
  const copy = await canary('start', '--like', 'it/likeme', '--app', 'likeyou', '--version', 'v2');
  expect(copy.stderr).toBe('');
  expect(copy.code).toBe(0);
  expect(copy.stdout).toContain('Started rollout of v2 to it/likeyou');
  expect(copy.stdout).toContain('Plan:         the plan of canary.it.likeme: 10% 1h → 100%');
  expect(await status('it/likeyou')).toMatchObject({ app: 'likeyou', namespace: 'it', version: 'v2' });
  expect((await canary('abort', 'it/likeyou', '--reason', 'done')).code).toBe(0);
  await eventually(async () => (await status('it/likeyou')).phase === 'rolled_back', 30_000, 'rolled back');
}, 120_000);

test('approve: refused with the reason when the stage is wrong, accepted with identity and comment', async () => {
  const started = await start('gated', 'v2', gatedPlan, '--output', 'json');
  expect(started.code).toBe(0);
  const id = 'it/gated';
  let seen: RolloutStatus | undefined;
  await eventually(
    async () => (seen = await status(id)).phase === 'waiting_approval',
    30_000,
    'the gate',
  ).catch((err: Error) => {
    throw new Error(`${err.message}; last status: ${JSON.stringify(seen)}`);
  });
  const wrong = await canary('approve', id, '--stage', '3');
  expect(wrong.code).toBe(2);
  expect(wrong.stderr).toContain('stage 3 is not waiting for approval; stage 2 is');
  const ok = await canary('approve', id, '--stage', '2', '--comment', 'looks good', '--as', 'alice');
  expect(ok.code).toBe(0);
  const st = await eventually(
    async () => {
      const s = await status(id);
      return s.weight === 50 ? s : undefined;
    },
    30_000,
    'stage 2',
  );
  expect(st.approvals).toEqual([expect.objectContaining({ stage: 2, by: 'alice', comment: 'looks good' })]);
  expect((await canary('abort', id, '--reason', 'test over')).code).toBe(0);
  await eventually(async () => (await status(id)).phase === 'rolled_back', 30_000, 'rolled back');
}, 120_000);

test('abort while another CI job waits: the waiting start exits 1, weight back to 0', async () => {
  const waiting = start('pay', 'v2', longPlan, '--wait');
  await eventually(
    async () => (await status('it/pay').catch(() => undefined))?.weight === 10,
    30_000,
    'stage 1',
  );
  const abort = await canary('abort', 'it/pay', '--reason', 'bad dashboards', '--as', 'bob');
  expect(abort.code).toBe(0);
  const again = await canary('abort', 'it/pay', '--reason', 'idempotent');
  expect(again.code).toBe(0);
  expect(again.stdout).toMatch(/is already (rolled back|rolling back) \(aborted by bob: bad dashboards\)/);
  const r = await waiting;
  expect(r.code).toBe(1);
  const st = await status('it/pay');
  expect(st).toMatchObject({
    phase: 'rolled_back',
    rollbackReason: 'aborted by bob: bad dashboards',
    weight: 0,
  });
  expect(await fetch(`${stack.controlUrl}/state`).then((x) => x.json())).toMatchObject({
    weight: 0,
    canary: null,
  });
}, 120_000);

test('a rollout on a task queue no worker polls: start says so, --wait gives up with exit 3, abort is honest', async () => {
  const args = ['start', '--app', 'lonely', '--namespace', 'it', '--version', 'v2', '--plan', fastPlan];
  const queue = ['--task-queue', 'nobody-polls-this'];
  const started = await canary(...queue, ...args);
  expect(started.code).toBe(0);
  expect(started.stderr).toContain(
    'canary: warning: no worker polls task queue "nobody-polls-this" in Temporal namespace "default"',
  );
  const t0 = Date.now();
  const waited = await canary(...queue, ...args, '--wait', '--worker-wait', '2s');
  expect(waited.code).toBe(3);
  expect(waited.stderr).toContain(
    'no worker polled task queue "nobody-polls-this" within 2s: the rollout canary.it.lonely is recorded',
  );
  expect(Date.now() - t0).toBeLessThan(30_000);
  // The command it prints to drop the rollout works when pasted into a shell as printed.
  const printed = /to drop it: (.+)$/m.exec(waited.stderr)?.[1];
  expect(printed).toBe(
    'node dist/client/cli.js --task-queue nobody-polls-this abort it/lonely --reason "no worker"',
  );
  const abort = await pasted(printed!);
  expect(abort.code).toBe(0);
  expect(abort.stdout).toContain('but no worker answered');
}, 120_000);

test('a faulty canary rolls back by itself: start --wait exits 1', async () => {
  const r = await start('faulty', 'v-bad', fastPlan, '--wait');
  expect(r.code).toBe(1);
  const st = await status('it/faulty');
  expect(st.phase).toBe('rolled_back');
  expect(st.rollbackReason).toContain('error-rate');
  // The worker logs the outcome in one line, not as a workflow failure with a stack trace.
  await eventually(
    async () => worker.output().includes('Rollout rolled back'),
    10_000,
    'the worker log line',
  ).catch((e: Error) => {
    throw new Error(`${e.message}; worker output:\n${worker.output().slice(-3000)}`);
  });
  expect(worker.output()).not.toContain('Workflow failed');
}, 120_000);

test('bad input exits 2 and starts nothing; an unknown rollout exits 2', async () => {
  const bad = planFile('bad.yaml', 'stages:\n  - { weight: 50, hold: 0s }\n  - { weight: 40, hold: 1h }\n');
  const r = await start('never', 'v2', bad);
  expect(r.code).toBe(2);
  expect(r.stderr).toContain('stages[0].hold');
  expect(r.stderr).toContain('stages[1].weight');
  const list = await canary('list', '--app', 'never', '--output', 'json');
  expect(JSON.parse(list.stdout)).toEqual([]);
  const unknown = await canary('status', 'it/nothing-here');
  expect(unknown.code).toBe(2);
  expect(unknown.stderr).toContain('canary.it.nothing-here');
});

test('ids never collide: t/eu-coll and t-eu/coll are two rollouts, and an abort of one leaves the other', async () => {
  const startIn = (ns: string, app: string) =>
    canary(
      'start',
      '--app',
      app,
      '--namespace',
      ns,
      '--version',
      'v2',
      '--plan',
      longPlan,
      '--output',
      'json',
    );
  const a = await startIn('t', 'eu-coll');
  const b = await startIn('t-eu', 'coll');
  expect([a.code, b.code]).toEqual([0, 0]);
  expect(JSON.parse(a.stdout)).toMatchObject({ workflowId: 'canary.t.eu-coll', started: true });
  expect(JSON.parse(b.stdout)).toMatchObject({ workflowId: 'canary.t-eu.coll', started: true });
  expect((await status('t/eu-coll')).namespace).toBe('t');
  expect((await status('t-eu/coll')).namespace).toBe('t-eu');

  expect((await canary('abort', 't/eu-coll', '--reason', 'only this one')).code).toBe(0);
  await eventually(async () => (await status('t/eu-coll')).phase === 'rolled_back', 30_000, 'a rolled back');
  const other = await status('t-eu/coll');
  expect(other.phase).not.toMatch(/rolling_back|rolled_back/);
  expect((await canary('abort', 't-eu/coll', '--reason', 'test over')).code).toBe(0);
  await eventually(async () => (await status('t-eu/coll')).phase === 'rolled_back', 30_000, 'b rolled back');
}, 120_000);

test('a rollout started under the legacy id is still found by namespace/app, and never doubled', async () => {
  const connection = await Connection.connect({ address: server.address });
  try {
    const client = new Client({ connection });
    const spec = JSON.parse(fs.readFileSync(longPlan, 'utf8')) as unknown;
    await client.workflow.start('canaryRollout', {
      workflowId: 'canary-it-old',
      taskQueue: 'cli-test',
      args: [
        { target: { app: 'old', namespace: 'it' }, version: 'v2', plan: spec, requestedBy: 'old-client' },
      ],
      typedSearchAttributes: [{ key: SA_APP, value: 'old' }],
    });
    await eventually(
      async () => (await status('it/old')).weight === 10,
      30_000,
      'stage 1 of the legacy rollout',
    );
    expect((await status('it/old')).workflowId).toBe('canary-it-old');
    const again = await start('old', 'v2', longPlan, '--output', 'json');
    expect(again.code).toBe(0);
    expect(JSON.parse(again.stdout)).toMatchObject({ workflowId: 'canary-it-old', started: false });
    const newer = await start('old', 'v3', longPlan);
    expect(newer.code).toBe(2);
    expect(newer.stderr).toContain('a rollout of version v2 is already running as canary-it-old');
    expect((await canary('abort', 'it/old', '--reason', 'test over')).code).toBe(0);
    await eventually(async () => (await status('it/old')).phase === 'rolled_back', 30_000, 'rolled back');
  } finally {
    await connection.close();
  }
}, 120_000);

test('an unreachable Temporal exits 3 naming the address', async () => {
  const r = await runCli(['status', 'it/web'], { ...env, TEMPORAL_ADDRESS: '127.0.0.1:1' });
  expect(r.code).toBe(3);
  expect(r.stderr).toContain('127.0.0.1:1');
});

test('freeze holds a namespace, or every one, across two workers: running and new rollouts stop advancing, abort still works, unfreeze and --until lift it', async () => {
  // Bad input: nothing is sent, exit 2.
  const past = await canary('freeze', '--reason', 'x', '--until', '2020-01-01T00:00:00Z');
  expect([past.code, past.stderr]).toEqual([2, expect.stringContaining('is in the past') as unknown]);
  const badNs = await canary('freeze', '--reason', 'x', '--namespace', 'Not_A_Label');
  expect([badNs.code, badNs.stderr]).toEqual([2, expect.stringContaining('--namespace') as unknown]);
  expect((await canary('freeze', '--namespace', 'fz')).code).toBe(2); // no --reason

  // A second worker process on the same task queue: the freeze lives in Temporal, not in either worker.
  const second = await startWorkerProcess(env);
  const startFz = (app: string, plan: string) =>
    canary('start', '--app', app, '--namespace', 'fz', '--version', 'v2', '--plan', plan);
  expect((await startFz('running', longPlan)).code).toBe(0);
  await eventually(async () => (await status('fz/running')).weight === 10, 30_000, 'stage 1 of fz/running');

  const frozen = await canary('freeze', '--namespace', 'fz', '--reason', 'incident 42');
  expect(frozen.code).toBe(0);
  expect(frozen.stdout).toContain('Frozen: frozen by ci-bot: incident 42 (namespace fz)');
  // The running rollout is found through visibility and told.
  await eventually(
    async () => (await status('fz/running')).freeze?.reason === 'incident 42',
    20_000,
    'the running rollout told of the freeze',
  );

  // A rollout started while frozen deploys nothing: it asked its fleet workflows before its canary.
  expect((await startFz('held', fastPlan)).code).toBe(0);
  await eventually(async () => (await status('fz/held')).freeze !== undefined, 20_000, 'fz/held held');
  const text = await canary('status', 'fz/held');
  expect(text.stdout).toContain('Not advancing: frozen by ci-bot: incident 42 (namespace fz)');

  // Abort still ends a frozen rollout.
  expect((await canary('abort', 'fz/running', '--reason', 'not during the incident')).code).toBe(0);
  await eventually(async () => (await status('fz/running')).phase === 'rolled_back', 30_000, 'rolled back');
  await eventually(
    async () => {
      const live = (await fetch(`${stack.controlUrl}/state`).then((x) => x.json())) as { canary: unknown };
      return live.canary === null;
    },
    30_000,
    'the local stack free again',
  );

  // The first worker dies; the second carries on with everything.
  await worker.kill('SIGKILL');
  worker = second;

  // An org-wide freeze that lifts by itself (the fleet workflow's timer).
  const orgWide = await canary('freeze', '--reason', 'release train', '--until', '20s', '--output', 'json');
  expect(orgWide.code).toBe(0);
  const until = (JSON.parse(orgWide.stdout) as { freeze: { until: string } }).freeze.until;
  // (A generous wait: a task handed to the killed worker's poll is dispatched again only after its timeout.)
  await eventually(
    async () => (await canary('fleet', 'status', '--namespace', 'fz')).stdout.includes('release train'),
    20_000,
    'fleet status naming the org-wide freeze',
  );
  const fleet = await canary('fleet', 'status', '--namespace', 'fz');
  expect(fleet.stdout).toContain('incident 42 (namespace fz)');
  expect(fleet.stdout).toContain(`release train until ${until} (every namespace)`);

  const lifted = await canary('unfreeze', '--namespace', 'fz');
  expect(lifted.stdout).toContain('Unfrozen: namespace fz');
  await eventually(
    async () => (await status('fz/held')).freeze?.reason === 'release train',
    8_000,
    'still held by the org-wide freeze',
  );
  expect((await status('fz/held')).weight).toBe(0);
  expect((await canary('unfreeze', '--namespace', 'fz')).stdout).toContain('Nothing to lift');
  // The --until timer lifts the org-wide freeze; the rollout then walks its plan.
  await eventually(async () => (await status('fz/held')).phase === 'promoted', 60_000, 'fz/held promoted');
  const kinds = readAlerts(env.CANARY_ALERT_LOG, 'canary.fz.held').map((a) => a.event);
  expect(kinds).toEqual(expect.arrayContaining(['frozen', 'unfrozen', 'promoted']));
  expect(Date.now()).toBeGreaterThanOrEqual(Date.parse(until));
}, 180_000);

test('fleet limit: with maxConcurrent 1 further rollouts of the namespace wait queued in order (alerting queued, then dequeued), across the fleet workflow continuing as new, until the first ends', async () => {
  // Bad input: nothing is sent, exit 2.
  const negative = await canary('fleet', 'limit', '--namespace', 'lq', '--max-concurrent', '-1');
  expect([negative.code, negative.stderr]).toEqual([
    2,
    expect.stringContaining('--max-concurrent') as unknown,
  ]);
  expect((await canary('fleet', 'limit', '--max-concurrent', '1')).code).toBe(2); // no --namespace

  // The namespace's fleet workflow, started here to continue as new after 40 events (the default is 2000), so that
  // the limit and the queue below have to cross a new run.
  const client = new Client({ connection: await Connection.connect({ address: server.address }) });
  const fleetWf = client.workflow.getHandle(fleetWorkflowId('lq'));
  await client.workflow.signalWithStart(FLEET_WORKFLOW, {
    workflowId: fleetWorkflowId('lq'),
    taskQueue: env.TEMPORAL_TASK_QUEUE,
    args: [{ scope: 'lq', continueAfterEvents: 40 }],
    signal: fleetLimitSignal,
    signalArgs: [{ identity: 'ci-bot', max: 1 }],
  });
  const set = await canary('fleet', 'limit', '--namespace', 'lq', '--max-concurrent', '1');
  expect([set.code, set.stdout]).toEqual([
    0,
    expect.stringContaining('at most 1 rollout of namespace lq') as unknown,
  ]);
  const startLq = (app: string, plan: string) =>
    canary('start', '--app', app, '--namespace', 'lq', '--version', 'v2', '--plan', plan);
  expect((await startLq('first', longPlan)).code).toBe(0);
  await eventually(async () => (await status('lq/first')).weight === 10, 30_000, 'stage 1 of lq/first');
  expect((await startLq('second', fastPlan)).code).toBe(0);
  await eventually(async () => (await status('lq/second')).phase === 'queued', 20_000, 'lq/second queued');
  expect((await startLq('third', fastPlan)).code).toBe(0);
  await eventually(async () => (await status('lq/third')).phase === 'queued', 20_000, 'lq/third queued');
  const queued = await status('lq/second');
  expect([queued.queued, queued.weight]).toEqual([{ namespace: 'lq', position: 1, max: 1 }, 0]);
  expect((await status('lq/third')).queued).toEqual({ namespace: 'lq', position: 2, max: 1 });
  expect((await canary('status', 'lq/second')).stdout).toContain(
    'queued: position 1 for a slot in namespace lq',
  );

  // The fleet workflow continues as new (messages that change nothing: a release from no holder, until the run
  // changes); the limit, the holder and the queue in order are the same in the new run, and so is what rollouts show.
  const before = await fleetWf.query(fleetStatusQuery);
  expect([before.holders, before.queue]).toEqual([
    ['canary.lq.first'],
    ['canary.lq.second', 'canary.lq.third'],
  ]);
  const firstRun = (await fleetWf.describe()).runId;
  await eventually(
    async () => {
      await fleetWf.signal(fleetReleaseSignal, { workflowId: 'canary.lq.none' });
      return (await fleetWf.describe()).runId !== firstRun;
    },
    20_000,
    'the fleet workflow continued as new',
  );
  expect(await fleetWf.query(fleetStatusQuery)).toEqual(before);
  const fleet = await canary('fleet', 'status', '--namespace', 'lq');
  expect(fleet.stdout).toContain(`maxConcurrent 1 (set by ci-bot, since ${before.limit!.since})`);
  expect(fleet.stdout).toContain('queued 1: canary.lq.second\n  queued 2: canary.lq.third');
  expect((await status('lq/third')).queued).toEqual({ namespace: 'lq', position: 2, max: 1 });

  // The first ends (aborted); the new run gives its slot to the second and moves the third up; the third, aborted
  // while queued, leaves the queue; the second walks its plan.
  expect((await canary('abort', 'lq/first', '--reason', 'make room')).code).toBe(0);
  await eventually(
    async () => (await status('lq/third')).queued?.position === 1,
    20_000,
    'lq/third moved up to position 1',
  );
  expect((await canary('abort', 'lq/third', '--reason', 'not needed')).code).toBe(0);
  await eventually(
    async () => (await status('lq/second')).phase === 'promoted',
    60_000,
    'lq/second promoted',
  );
  const third = await status('lq/third');
  expect([third.phase, third.weight]).toEqual(['rolled_back', 0]);
  expect((await fleetWf.query(fleetStatusQuery)).queue ?? []).toEqual([]);
  // The alert sink heard each queued rollout once when it queued (where, who holds the slot, the way out), and the
  // second once more when its slot was granted; the third, aborted while queued, never was.
  const second = readAlerts(env.CANARY_ALERT_LOG, 'canary.lq.second');
  expect(second.map((a) => a.event).slice(0, 3)).toEqual(['queued', 'dequeued', 'rollout_started']);
  expect(second[0].message).toContain(
    'queued: position 1 for a slot in namespace lq (maxConcurrent 1); the slots are held by canary.lq.first.',
  );
  expect(second[0].message).toContain('to leave the queue: ');
  expect(second[0].message).toContain(' abort canary.lq.second --reason "<why>"');
  expect(second[1].message).toContain('its slot in namespace lq is granted (maxConcurrent 1)');
  await eventually(
    async () => Promise.resolve(readAlerts(env.CANARY_ALERT_LOG, 'canary.lq.third').length >= 3),
    10_000,
    "lq/third's alerts",
  );
  const thirdAlerts = readAlerts(env.CANARY_ALERT_LOG, 'canary.lq.third');
  expect(thirdAlerts.map((a) => a.event)).toEqual(['queued', 'rollback_started', 'rolled_back']);
  expect(thirdAlerts[0].message).toContain('queued: position 2');
  const lifted = await canary('fleet', 'limit', '--namespace', 'lq', '--clear');
  expect(lifted.stdout).toContain('Limit lifted: namespace lq');
  await eventually(
    async () => !(await canary('fleet', 'status', '--namespace', 'lq')).stdout.includes('maxConcurrent'),
    10_000,
    'the limit gone',
  );
}, 120_000);
