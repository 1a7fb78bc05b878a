// Releases on real servers: a Temporal dev server, a kube-apiserver (a simulator makes Deployments available), one
// worker process and the real CLI. Three services in two waves: healthy, they promote together; one member rolled
// back rolls back every other; a release abort puts every member at weight 0. Bad release files are refused with
// exit 2 and nothing starts.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { stringify } from 'yaml';
import { Client, Connection } from '@temporalio/client';
import { KubeConfig } from '@kubernetes/client-node';
import { kubeClients, type KubeClients } from '../../activities/kube/client';
import { startDevServer, type DevServer } from '../../demo/dev-server';
import { startKubeServer, type KubeServer } from '../../harness/kube';
import { startDeploymentSimulator, type DeploymentSimulator } from '../../harness/kube-controller';
import { createRolloutFixture, type RolloutFixture } from '../../harness/kube-rollout';
import {
  killAll,
  runCli,
  startWorkerProcess,
  type CliRun,
  type WorkerProcess,
} from '../../harness/processes';
import { resumeSignal, rolloutWorkflowId } from '../../workflows/api';
import type { AlertEvent } from '../../activities/types';
import { readAlerts } from '../../harness/alerts';
import type { ReleaseResult, ReleaseStatus } from '../../workflows/release-model';
import type { RolloutStatus } from '../../workflows/types';

jest.setTimeout(180_000);

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'canary-kube-release-'));
const queue = `kube-release-${process.pid}-${Date.now()}`;
const NS = 'rel';

let server: DevServer;
let kube: KubeServer;
let admin: KubeClients;
let worker: WorkerProcess;
let simulator: DeploymentSimulator;
let cliEnv: Record<string, string>;

function writeFile(name: string, body: unknown): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, typeof body === 'string' ? body : stringify(body));
  return file;
}

const plan = (hold: string) => ({
  analysis: { interval: '10s', checks: [] },
  stages: [
    { weight: 20, hold },
    { weight: 100, hold: '1s' },
  ],
  promotion: { cleanupDelay: '0s' },
});

beforeAll(async () => {
  [server, kube] = await Promise.all([
    // A live worker with nothing to do polls anew every 5 s instead of every minute, so a release can tell a gone
    // cluster worker from an idle one within seconds (workerCheck.goneAfter below).
    startDevServer({ dynamicConfig: { 'matching.longPollExpirationInterval': '5s' } }),
    startKubeServer({ crds: ['istio'] }),
  ]);
  admin = kubeClients(kube.kubeConfig('admin'));
  await kube.createNamespace(NS);
  simulator = startDeploymentSimulator(kube.kubeConfig('admin'), NS, { pollMs: 100 });
  worker = await startWorkerProcess({
    TEMPORAL_ADDRESS: server.address,
    TEMPORAL_NAMESPACE: server.namespace,
    TEMPORAL_TASK_QUEUE: queue,
    KUBECONFIG: kube.kubeconfigFile('admin'),
    CANARY_KUBECONFIG: '',
    CANARY_KUBE_CONTEXT: '',
    CANARY_ALERT_LOG: path.join(dir, 'alerts.jsonl'),
    CANARY_ALERT_WEBHOOK_URL: '',
  });
  cliEnv = {
    TEMPORAL_ADDRESS: server.address,
    TEMPORAL_NAMESPACE: server.namespace,
    TEMPORAL_TASK_QUEUE: queue,
    CANARY_IDENTITY: 'release-bot',
    GITHUB_ACTOR: '',
  };
}, 180_000);

afterAll(async () => {
  await simulator?.stop();
  await worker?.kill('SIGTERM');
  killAll();
  await Promise.all([server?.stop(), kube?.stop()]);
});

const canary = (args: string[]) => runCli(args, cliEnv);

function expectExit(r: CliRun, code: number): void {
  if (r.code !== code) {
    throw new Error(
      `expected exit ${code}, got ${r.code}\n--- stdout ---\n${r.stdout}\n--- stderr ---\n${r.stderr}\n` +
        `--- worker (tail) ---\n${worker.output().slice(-4000)}`,
    );
  }
}

/** Three services: payments, then checkout after it (wave 1), then checkout-eu after checkout (wave 2). */
async function threeMembers(name: string, holds: [string, string, string], release: object = {}) {
  const fx = await Promise.all(
    ['payments', 'checkout', 'checkout-eu'].map((m) =>
      createRolloutFixture(admin, 'istio', NS, `${name}-${m}`),
    ),
  );
  const member = (i: number, id: string, extra: object) => ({
    id,
    target: writeFile(`${name}-${id}.target.yaml`, { target: fx[i].target }),
    version: 'v2',
    image: fx[i].stableImage.replace(/:v1$/, ':v2'),
    plan: writeFile(`${name}-${id}.plan.yaml`, plan(holds[i])),
    ...extra,
  });
  const file = writeFile(`${name}.release.yaml`, {
    release: name,
    members: [
      member(0, 'payments', {}),
      member(1, 'checkout', { after: ['payments'] }),
      member(2, 'checkout-eu', { after: ['checkout'], wave: 2 }),
    ],
    waves: [{ wave: 1, bake: '2s' }, { wave: 2 }],
    promotion: 'together',
    ...release,
  });
  return { fx, file };
}

async function memberStatus(fx: RolloutFixture): Promise<RolloutStatus> {
  const r = await canary(['status', `${fx.namespace}/${fx.app}`, '--output', 'json']);
  expectExit(r, 0);
  return JSON.parse(r.stdout) as RolloutStatus;
}

async function releaseStatus(name: string): Promise<ReleaseStatus> {
  const r = await canary(['release', 'status', name, '--output', 'json']);
  expectExit(r, 0);
  return JSON.parse(r.stdout) as ReleaseStatus;
}

async function until(what: string, fn: () => Promise<boolean>, timeoutMs = 40_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await fn().catch(() => false))) {
    if (Date.now() > deadline) {
      const list = await canary(['release', 'list']);
      const st = await canary(['list', '--output', 'json']);
      throw new Error(
        `timed out waiting for ${what}\n${list.stdout}${list.stderr}\n${st.stdout}${st.stderr}\n${worker.output().slice(-3000)}`,
      );
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}

test('healthy: members start in order, and all promote together once every one has passed its last stage', async () => {
  // payments holds briefly, checkout-eu (wave 2, after a bake) last: without "together" payments would promote first.
  const { fx, file } = await threeMembers('healthy', ['1s', '3s', '1s']);
  const r = await canary(['release', 'start', '-f', file, '--wait', '--output', 'json']);
  expectExit(r, 0);
  const result = JSON.parse(r.stdout) as ReleaseResult & { status: ReleaseStatus };
  expect(result.outcome).toBe('promoted');
  expect(result.members.map((m) => [m.id, m.state])).toEqual([
    ['payments', 'promoted'],
    ['checkout', 'promoted'],
    ['checkout-eu', 'promoted'],
  ]);
  const statuses = await Promise.all(fx.map(memberStatus));
  for (const s of statuses) expect(s).toMatchObject({ phase: 'promoted', version: 'v2' });
  // Each promotion gate was approved by the release, and all within moments of each other: payments waited for
  // the slowest member instead of promoting on its own.
  const approvals = statuses.map((s) => s.approvals.find((a) => a.promotion));
  for (const a of approvals) expect(a).toMatchObject({ by: 'release:healthy' });
  const times = approvals.map((a) => Date.parse(a!.at));
  expect(Math.max(...times) - Math.min(...times)).toBeLessThan(3_000);
  // Each member started after the one it comes after (checkout-eu only once wave 1 passed and baked 2 s).
  const list = await canary(['list', '--output', 'json']);
  const rows = JSON.parse(list.stdout) as Array<{ app: string; startTime: string }>;
  const started = fx.map((f) => Date.parse(rows.find((row) => row.app === f.app)!.startTime));
  expect(started[1]).toBeGreaterThan(started[0]);
  expect(started[2] - started[1]).toBeGreaterThan(2_000);
  for (const f of fx) expect(await f.weights()).toEqual({ stable: 100, canary: 0 });
  // The members carry the CanaryRelease search attribute: canary list --release finds exactly them.
  let members: string[] = [];
  await until('canary list --release healthy', async () => {
    const r = await canary(['list', '--release', 'healthy', '--output', 'json']);
    members = (JSON.parse(r.stdout) as Array<{ app: string }>).map((row) => row.app).sort();
    return members.length === 3;
  });
  expect(members).toEqual(fx.map((f) => f.app).sort());
});

test('one member rolled back: every member ends at weight 0, the release names the member', async () => {
  const { fx, file } = await threeMembers('breach', ['1s', '1h', '1h']);
  const started = await canary(['release', 'start', '-f', file]);
  expectExit(started, 0);
  // payments passed its last stage and waits at its promotion gate; checkout, after it, holds 20 %.
  await until('payments ready and checkout at 20 %', async () => {
    const s = await releaseStatus('breach');
    return s.members[0].state === 'ready' && s.members[1].weight === 20;
  });
  // checkout is aborted on its own (as a failing check would roll it back).
  expectExit(await canary(['abort', `${NS}/${fx[1].app}`, '--reason', 'p95 spike']), 0);
  await until('the release to end', async () => {
    const s = await releaseStatus('breach');
    return s.phase === 'rolled_back';
  });
  const s = await releaseStatus('breach');
  expect(s.cause).toBe('checkout');
  expect(s.reason).toContain('member checkout rolled back');
  expect(s.reason).toContain('p95 spike');
  expect(s.members.map((m) => [m.id, m.state])).toEqual([
    ['payments', 'rolled_back'],
    ['checkout', 'rolled_back'],
    ['checkout-eu', 'skipped'],
  ]);
  for (const f of fx.slice(0, 2)) {
    expect(await f.weights()).toEqual({ stable: 100, canary: 0 });
    expect((await f.canaryDeployment())?.spec?.replicas).toBe(0);
  }
  expect(await fx[2].canaryDeployment()).toBeUndefined();
  expect((await memberStatus(fx[0])).rollbackReason).toContain('release breach: member checkout rolled back');
});

test('onFailure: rollback-member: checkout rolls back alone, payments holds paused, a person goes on without it', async () => {
  const { fx, file } = await threeMembers('alone', ['1s', '1h', '1h'], { onFailure: 'rollback-member' });
  expectExit(await canary(['release', 'start', '-f', file]), 0);
  await until('payments ready and checkout at 20 %', async () => {
    const s = await releaseStatus('alone');
    return s.members[0].state === 'ready' && s.members[1].weight === 20;
  });
  expectExit(await canary(['abort', `${NS}/${fx[1].app}`, '--reason', 'p95 spike']), 0);
  await until('the release to hold', async () => (await releaseStatus('alone')).phase === 'held');
  await until(
    'payments paused by the release',
    async () => (await memberStatus(fx[0])).pausedBy === 'release:alone',
  );
  const held = await releaseStatus('alone');
  expect(held.question).toMatch(
    /^member checkout rolled back: .*p95 spike.*release approve alone. goes on without it/,
  );
  expect((await memberStatus(fx[0])).pauseReason).toContain(
    'release alone holds: member checkout rolled back',
  );
  expect(await fx[0].weights()).toEqual({ stable: 0, canary: 100 });
  await until(
    'checkout back at 0',
    async () => (await releaseStatus('alone')).members[1].state === 'rolled_back',
  );

  // Held is not paused: a resume is refused (exit 2) and names the two answers; payments stays paused.
  const resume = await canary(['release', 'resume', 'alone']);
  expectExit(resume, 2);
  expect(resume.stderr).toMatch(
    /release alone is held, not paused: .*release approve alone.*release abort alone/s,
  );
  expect((await memberStatus(fx[0])).pausedBy).toBe('release:alone');
  // Nor is payments resumed on its own: the CLI is refused (exit 2) naming the release's two answers, and a resume
  // signal sent some other way is ignored.
  const own = await canary(['resume', `${NS}/${fx[0].app}`]);
  expectExit(own, 2);
  expect(own.stderr).toMatch(
    /member payments of release alone, which holds it .*release approve alone.*release abort alone/s,
  );
  const connection = await Connection.connect({ address: server.address });
  try {
    const client = new Client({ connection, namespace: server.namespace });
    await client.workflow.getHandle(held.members[0].workflowId).signal(resumeSignal, { identity: 'alice' });
  } finally {
    await connection.close();
  }
  await until('the resume signal ignored', async () => worker.output().includes('resume signal ignored'));
  expect((await memberStatus(fx[0])).pausedBy).toBe('release:alone');

  const ok = await canary(['release', 'approve', 'alone']);
  expectExit(ok, 0);
  await until('the release to end', async () => (await releaseStatus('alone')).phase === 'promoted');
  const s = await releaseStatus('alone');
  expect(s.dropped).toEqual(['checkout', 'checkout-eu']);
  expect(s.members.map((m) => [m.id, m.state])).toEqual([
    ['payments', 'promoted'],
    ['checkout', 'rolled_back'],
    ['checkout-eu', 'skipped'],
  ]);
  expect(await fx[0].weights()).toEqual({ stable: 100, canary: 0 });
  expect(await fx[1].weights()).toEqual({ stable: 100, canary: 0 });
  // Nothing is held any more: a bare approve is refused (exit 2).
  expectExit(await canary(['release', 'approve', 'alone']), 2);
});

test('release abort: every member reads weight 0', async () => {
  const { fx, file } = await threeMembers('aborted', ['1s', '1h', '1h']);
  expectExit(await canary(['release', 'start', '-f', file]), 0);
  await until('payments ready and checkout at 20 %', async () => {
    const s = await releaseStatus('aborted');
    return s.members[0].state === 'ready' && s.members[1].weight === 20;
  });
  // The release promotes its members together: nobody passes one member's promotion gate on their own.
  const approve = await canary(['approve', `${NS}/${fx[0].app}`]);
  expectExit(approve, 2);
  expect(approve.stderr).toContain(
    'is member payments of release aborted, which promotes its members together',
  );
  const promote = await canary(['promote', `${NS}/${fx[1].app}`]);
  expectExit(promote, 2);
  expect(promote.stderr).toContain('cannot promote: this rollout is member checkout of release aborted');
  expect((await memberStatus(fx[0])).phase).toBe('waiting_approval');
  expectExit(await canary(['release', 'abort', 'aborted', '--reason', 'bad config']), 0);
  await until(
    'the release to end',
    async () =>
      (await releaseStatus('aborted')).phase === 'aborted' &&
      (await releaseStatus('aborted')).members.every((m) => ['rolled_back', 'skipped'].includes(m.state)),
  );
  for (const f of fx.slice(0, 2)) expect(await f.weights()).toEqual({ stable: 100, canary: 0 });
  expect((await releaseStatus('aborted')).reason).toBe('aborted by release-bot: bad config');
});

describe('bad release files: exit 2, every problem named, nothing started', () => {
  const target = { app: 'x', namespace: NS };
  const member = (id: string, extra: object = {}) => ({
    id,
    target: { ...target, app: id },
    version: 'v2',
    plan: 'default',
    ...extra,
  });
  test.each<[string, object, string]>([
    [
      'a cycle',
      { release: 'cyc', members: [member('a', { after: ['b'] }), member('b', { after: ['a'] })] },
      'after: forms a cycle: a → b → a',
    ],
    [
      'an unknown after',
      { release: 'unk', members: [member('a', { after: ['zz'] })] },
      'names no member: "zz"',
    ],
    [
      'two members with the same target',
      { release: 'dup', members: [member('a'), { ...member('b'), target: { ...target, app: 'a' } }] },
      `${NS}/a is also a's target`,
    ],
    [
      'a wave with no members',
      { release: 'wav', members: [member('a')], waves: [{ wave: 1 }, { wave: 3, bake: '1h' }] },
      'wave 3 has no members',
    ],
    [
      'a member whose plan is invalid',
      { release: 'pln', members: [member('a', { plan: { stages: [{ weight: 150 }] } })] },
      'members[0].plan: a:',
    ],
  ])('%s', async (_what, doc, message) => {
    const file = writeFile(`bad-${(doc as { release: string }).release}.yaml`, doc);
    const v = await canary(['release', 'validate', '-f', file]);
    expectExit(v, 2);
    expect(v.stderr).toContain(message);
    const s = await canary(['release', 'start', '-f', file]);
    expectExit(s, 2);
    expect(s.stderr).toContain(message);
    const list = await canary(['release', 'list', '--output', 'json']);
    expect((JSON.parse(list.stdout) as Array<{ release: string }>).map((r) => r.release)).not.toContain(
      (doc as { release: string }).release,
    );
  });
});

describe('two clusters: a second API server', () => {
  let eu: KubeServer;
  let euAdmin: KubeClients;
  let euSimulator: DeploymentSimulator | undefined;
  beforeAll(async () => {
    eu = await startKubeServer({ crds: ['istio'] });
    euAdmin = kubeClients(eu.kubeConfig('admin'));
    await eu.createNamespace(NS);
    euSimulator = startDeploymentSimulator(eu.kubeConfig('admin'), NS, { pollMs: 100 });
  }, 120_000);
  afterAll(async () => {
    await euSimulator?.stop();
    await eu?.stop();
  });

  test('each served by its own worker: the eu-west worker SIGKILLed mid-release holds every promotion until a new one resumes it', async () => {
    // The eu-west worker polls the release queue's eu-west queue.
    let euWorker: WorkerProcess | undefined;
    try {
      const euEnv = {
        TEMPORAL_ADDRESS: server.address,
        TEMPORAL_NAMESPACE: server.namespace,
        TEMPORAL_TASK_QUEUE: `${queue}.eu-west`,
        KUBECONFIG: eu.kubeconfigFile('admin'),
        CANARY_KUBECONFIG: '',
        CANARY_KUBE_CONTEXT: '',
        CANARY_ALERT_LOG: path.join(dir, 'alerts-eu.jsonl'),
        CANARY_ALERT_WEBHOOK_URL: '',
      };

      // No worker serves eu-west yet: refused before anything starts.
      const home = await createRolloutFixture(admin, 'istio', NS, 'multi-payments');
      const away = await createRolloutFixture(euAdmin, 'istio', NS, 'multi-checkout');
      const member = (fx: RolloutFixture, id: string, hold: string, extra: object) => ({
        id,
        target: fx.target,
        version: 'v2',
        image: fx.stableImage.replace(/:v1$/, ':v2'),
        plan: plan(hold),
        ...extra,
      });
      const file = writeFile('multi.release.yaml', {
        release: 'multi',
        members: [
          member(home, 'payments', '1s', {}),
          member(away, 'checkout-eu', '8s', { after: ['payments'], wave: 2, cluster: 'eu-west' }),
        ],
        workerCheck: { every: '2s', goneAfter: '12s' },
      });
      const refused = await canary(['release', 'start', '-f', file]);
      expectExit(refused, 3);
      expect(refused.stderr).toContain(
        `no worker serves cluster eu-west: nothing polls task queue ${queue}.eu-west`,
      );
      expect((await canary(['release', 'list'])).stdout).not.toContain('multi');

      euWorker = await startWorkerProcess(euEnv);
      expectExit(await canary(['release', 'start', '-f', file]), 0);
      await until(
        'checkout-eu at 20 % in the eu-west cluster',
        async () =>
          (await away.weights()).canary === 20 && (await releaseStatus('multi')).members[1].weight === 20,
      );
      await euWorker.kill('SIGKILL');
      euWorker = undefined;
      // Once nothing has polled eu-west's queue for goneAfter (12 s), checkout-eu holds and one stuck alert goes out
      // (from the release, on the main worker's sinks) naming the cluster and its queue.
      const alertLog = path.join(dir, 'alerts.jsonl');
      const stuckAlerts = () =>
        readAlerts(alertLog, rolloutWorkflowId({ namespace: away.namespace, app: away.app })).filter(
          (e) => e.event === 'stuck',
        ) as Array<AlertEvent & { resolves?: string[] }>;
      await until('the stuck alert for checkout-eu', async () => stuckAlerts().length > 0, 40_000);
      expect(stuckAlerts()[0]).toMatchObject({ severity: 'critical', weight: 20 });
      expect(stuckAlerts()[0].message).toContain(
        `no worker serves cluster eu-west: nothing has polled its task queue ${queue}.eu-west since `,
      );
      // While eu-west has no worker, nothing is promoted: payments waits at its gate at 100 %, checkout-eu stays at 20 %.
      const held = await releaseStatus('multi');
      expect(held.members.map((m) => [m.id, m.state])).toEqual([
        ['payments', 'ready'],
        ['checkout-eu', 'running'],
      ]);
      expect(held.clusters).toEqual([
        expect.objectContaining({ cluster: 'eu-west', taskQueue: `${queue}.eu-west`, workers: 'gone' }),
      ]);
      expect((await canary(['release', 'status', 'multi'])).stdout).toContain(
        `cluster eu-west: no worker polls ${queue}.eu-west`,
      );
      expect((await home.stableDeployment()).spec?.template.metadata?.labels?.version).toBe('v1');
      expect(await away.weights()).toEqual({ stable: 80, canary: 20 });

      euWorker = await startWorkerProcess(euEnv);
      await until('the back alert', async () => stuckAlerts().some((e) => e.resolves?.includes('stuck')));
      await until(
        'the release to be promoted',
        async () => (await releaseStatus('multi')).phase === 'promoted',
        90_000,
      );
      expect((await home.stableDeployment()).spec?.template.metadata?.labels?.version).toBe('v2');
      expect((await away.stableDeployment()).spec?.template.metadata?.labels?.version).toBe('v2');
      expect(await away.weights()).toEqual({ stable: 100, canary: 0 });
      // One stuck alert and the one that resolved it: the cluster's absence was said once.
      expect(stuckAlerts().map((e) => e.severity)).toEqual(['critical', 'info']);
      expect((await releaseStatus('multi')).clusters?.[0].workers).toBe('serving');
    } finally {
      await euWorker?.kill('SIGKILL');
    }
  });

  test('one worker serving both clusters through named kubeconfig contexts: a release across both promotes', async () => {
    // One kubeconfig with a context per API server; CANARY_CLUSTERS maps the release's cluster names onto them.
    const one = `${queue}-one`;
    const contexts = writeFile(
      'two-contexts.kubeconfig.yaml',
      twoContexts(kube.kubeConfig('admin'), eu.kubeConfig('admin')),
    );
    const oneEnv = {
      TEMPORAL_ADDRESS: server.address,
      TEMPORAL_NAMESPACE: server.namespace,
      TEMPORAL_TASK_QUEUE: one,
      KUBECONFIG: contexts,
      CANARY_KUBECONFIG: '',
      CANARY_KUBE_CONTEXT: '',
      CANARY_ALERT_LOG: path.join(dir, 'alerts-one.jsonl'),
      CANARY_ALERT_WEBHOOK_URL: '',
    };
    // A context the kubeconfig does not have: the worker does not start (exit 2) and names it.
    await expect(
      startWorkerProcess({ ...oneEnv, CANARY_CLUSTERS: 'home=home,eu-west=eu-typo' }),
    ).rejects.toThrow(
      /exited with 2 before starting:.*cluster eu-west names kubeconfig context "eu-typo", which is not in kubeconfig/s,
    );
    const both = await startWorkerProcess({ ...oneEnv, CANARY_CLUSTERS: 'home=home,eu-west=eu' });
    try {
      expect(both.output()).toContain(
        `clusters=home (context home) on ${one}.home, eu-west (context eu) on ${one}.eu-west`,
      );
      const home = await createRolloutFixture(admin, 'istio', NS, 'one-payments');
      const away = await createRolloutFixture(euAdmin, 'istio', NS, 'one-checkout');
      const member = (fx: RolloutFixture, id: string, extra: object) => ({
        id,
        target: fx.target,
        version: 'v2',
        image: fx.stableImage.replace(/:v1$/, ':v2'),
        plan: plan('1s'),
        ...extra,
      });
      const file = writeFile('one.release.yaml', {
        release: 'one',
        members: [
          member(home, 'payments', { cluster: 'home' }),
          member(away, 'checkout-eu', { after: ['payments'], cluster: 'eu-west' }),
        ],
        workerCheck: { every: '2s', goneAfter: '12s' },
      });
      const r = await runCli(['release', 'start', '-f', file, '--wait', '--output', 'json'], {
        ...cliEnv,
        TEMPORAL_TASK_QUEUE: one,
      });
      expectExit(r, 0);
      expect((JSON.parse(r.stdout) as ReleaseResult).members.map((m) => [m.id, m.state])).toEqual([
        ['payments', 'promoted'],
        ['checkout-eu', 'promoted'],
      ]);
      // Each member's rollout ran through its own cluster's context: the other cluster has no such Deployment.
      for (const fx of [home, away]) {
        expect((await fx.stableDeployment()).spec?.template.metadata?.labels?.version).toBe('v2');
        expect(await fx.weights()).toEqual({ stable: 100, canary: 0 });
      }
    } finally {
      await both.kill('SIGTERM');
    }
  });
});

/** One kubeconfig with a context per API server (`home`, `eu`), each with its own cluster and user entry. */
function twoContexts(home: KubeConfig, eu: KubeConfig): string {
  const kc = new KubeConfig();
  const entries = (name: string, from: KubeConfig) => ({
    cluster: { ...from.getCurrentCluster()!, name },
    user: { ...from.getCurrentUser()!, name: `${name}-admin` },
    context: { name, cluster: name, user: `${name}-admin` },
  });
  const all = [entries('home', home), entries('eu', eu)];
  kc.loadFromOptions({
    clusters: all.map((e) => e.cluster),
    users: all.map((e) => e.user),
    contexts: all.map((e) => e.context),
    currentContext: 'home',
  });
  return kc.exportConfig();
}
