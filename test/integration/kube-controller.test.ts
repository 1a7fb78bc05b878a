// The CanaryRollout controller (issue 18) on a real kube-apiserver and a real Temporal dev server, with a real worker
// process and the Deployment simulator (no kubelet), the NGINX router. The controller runs as `canary controller`
// child processes with deploy/controller.yaml's ServiceAccount token and nothing more (its RBAC also checked by
// access reviews). Covered: the CRD's schema and CEL refusals; an invalid spec gets Invalid and nothing starts;
// create → promoted with .status and Events following; spec.version changed mid-rollout → superseded (the old canary
// reads weight 0 before the new rollout's first shift); delete mid-rollout → rolled back and the finalizer released;
// a request annotation; the controller SIGKILLed mid-rollout and restarted → no second start; two replicas → one
// leader, the other takes over when it is killed. And (issue 16) a worker started the way a pod is, with in-cluster
// credentials (KUBERNETES_SERVICE_HOST/PORT, the ServiceAccount token and CA at the kubelet's path) and deploy/'s
// roles only, promotes a rollout, and is refused with exit 3 where no binding grants it anything.
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  AuthorizationV1Api,
  CoordinationV1Api,
  KubeConfig,
  KubernetesObjectApi,
  type KubernetesObject,
} from '@kubernetes/client-node';
import { Client, Connection } from '@temporalio/client';
import { parseAllDocuments, parse } from 'yaml';
import { MERGE_PATCH, kubeClients, type KubeClients } from '../../activities/kube/client';
import {
  CLI_MAIN,
  WORKER_MAIN,
  killAll,
  requireBuilt,
  runCli,
  startWorkerProcess,
  type WorkerProcess,
} from '../../harness/processes';
import { startDevServer, type DevServer } from '../../demo/dev-server';
import { startKubeServer, statusOf, type KubeServer } from '../../harness/kube';
import { startDeploymentSimulator, type DeploymentSimulator } from '../../harness/kube-controller';
import { createRolloutFixture, watchWeights, type RolloutFixture } from '../../harness/kube-rollout';
import { GROUP, PLURAL, VERSION, type CanaryRollout } from '../../controller/crd';

jest.setTimeout(180_000);

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const ROOT = path.resolve(__dirname, '..', '..');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'canary-kube-controller-'));
const queue = `kube-controller-${process.pid}-${Date.now()}`;
const NS = 'kc-apps';
const SYSTEM_NS = 'kc-system';
const LEASE_MS = 3_000;

let server: DevServer;
let kube: KubeServer;
let admin: KubeClients;
let objects: KubernetesObjectApi;
let temporal: Client;
let worker: WorkerProcess | undefined;
let simulator: DeploymentSimulator | undefined;
let controllerKubeconfig: string;
let controllerKc: KubeConfig;
const controllers: ControllerProcess[] = [];

const crdApi = { group: GROUP, version: VERSION, plural: PLURAL, namespace: NS };

const promotePlan = {
  analysis: { interval: '10s', checks: [] },
  stages: [{ weight: 10, hold: '2s' }, { weight: 50, hold: '2s' }, { weight: 100 }],
  promotion: { cleanupDelay: '0s' },
};
const longPlan = {
  analysis: { interval: '10s', checks: [] },
  stages: [{ weight: 10, hold: '1h' }, { weight: 100 }],
  promotion: { cleanupDelay: '0s' },
};

function manifests(file: string): Obj[] {
  return parseAllDocuments(fs.readFileSync(path.join(ROOT, 'deploy', file), 'utf8'))
    .map((d) => d.toJS() as Obj | null)
    .filter((o): o is Obj => o !== null);
}

/** deploy/controller.yaml's objects placed in SYSTEM_NS (its namespace, and the binding subjects'). */
function controllerManifests(): Obj[] {
  return manifests('controller.yaml').map((o) => {
    const c = structuredClone(o);
    if (c.metadata.namespace) c.metadata.namespace = SYSTEM_NS;
    for (const s of (c.subjects ?? []) as Obj[]) s.namespace = SYSTEM_NS;
    return c;
  });
}

interface ControllerProcess {
  name: string;
  child: ChildProcess;
  output(): string;
  kill(signal: NodeJS.Signals): Promise<void>;
}

/** `canary controller` as a child process, with the controller's ServiceAccount token; resolves once it watches. */
async function startControllerProcess(name: string): Promise<ControllerProcess> {
  requireBuilt(CLI_MAIN);
  const child = spawn(
    process.execPath,
    [CLI_MAIN, 'controller', '--identity', name, '--lease-duration', `${LEASE_MS}ms`, '--poll', '500ms'],
    {
      env: {
        ...process.env,
        TEMPORAL_ADDRESS: server.address,
        TEMPORAL_NAMESPACE: server.namespace,
        TEMPORAL_TASK_QUEUE: queue,
        KUBECONFIG: controllerKubeconfig,
        CANARY_KUBECONFIG: '',
        CANARY_KUBE_CONTEXT: '',
        POD_NAMESPACE: SYSTEM_NS,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  const proc: ControllerProcess = {
    name,
    child,
    output: () => out,
    kill: async (signal) => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      await exited;
    },
  };
  controllers.push(proc);
  await until(`controller ${name} to watch`, async () => /watching CanaryRollouts/.test(out), 30_000);
  return proc;
}

async function until<T>(
  what: string,
  fn: () => Promise<T | undefined | false>,
  timeoutMs = 60_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) {
      const logs = controllers.map((c) => `--- ${c.name} ---\n${c.output().slice(-3000)}`).join('\n');
      throw new Error(
        `timed out waiting for ${what}${last ? ` (last error: ${String(last)})` : ''}\n${logs}`,
      );
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function waitEstablished(name: string): Promise<void> {
  await until(`CRD ${name} Established`, async () => {
    const crd = (await objects.read({
      apiVersion: 'apiextensions.k8s.io/v1',
      kind: 'CustomResourceDefinition',
      metadata: { name },
    })) as Obj;
    return (crd.status?.conditions ?? []).some((c: Obj) => c.type === 'Established' && c.status === 'True');
  });
  // The API server delays the first create of a custom object for 2 s after its CRD became Established.
  await new Promise((r) => setTimeout(r, 2_100));
}

beforeAll(async () => {
  [server, kube] = await Promise.all([startDevServer(), startKubeServer({ crds: 'none' })]);
  const adminKc = kube.kubeConfig('admin');
  admin = kubeClients(adminKc);
  objects = KubernetesObjectApi.makeApiClient(adminKc);
  const crd = parse(fs.readFileSync(path.join(ROOT, 'deploy', 'crds', 'canaryrollouts.yaml'), 'utf8')) as Obj;
  // Untyped: client-node's typed CRD model would drop the x-kubernetes-* keys written as JSON names.
  await admin.custom.createClusterCustomObject({
    group: 'apiextensions.k8s.io',
    version: 'v1',
    plural: 'customresourcedefinitions',
    body: crd,
  });
  await waitEstablished(crd.metadata.name);
  for (const ns of [NS, SYSTEM_NS]) await kube.createNamespace(ns);

  // The controller's identity as deploy/controller.yaml makes it, and a real token for it (TokenRequest API).
  for (const o of controllerManifests().filter((m) => m.kind !== 'Deployment')) {
    await objects.create(o as KubernetesObject);
  }
  const token = await admin.core.createNamespacedServiceAccountToken({
    name: 'temporal-canary-controller',
    namespace: SYSTEM_NS,
    body: { spec: { audiences: ['https://kubernetes.default.svc.cluster.local'], expirationSeconds: 3600 } },
  });
  controllerKc = new KubeConfig();
  controllerKc.loadFromOptions({
    clusters: [{ name: 'kc', server: kube.url, caFile: kube.caFile }],
    users: [{ name: 'controller', token: token.status!.token }],
    contexts: [{ name: 'kc', cluster: 'kc', user: 'controller' }],
    currentContext: 'kc',
  });
  controllerKubeconfig = path.join(dir, 'controller.kubeconfig');
  fs.writeFileSync(controllerKubeconfig, controllerKc.exportConfig(), { mode: 0o600 });

  simulator = startDeploymentSimulator(adminKc, NS, { pollMs: 100 });
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
  temporal = new Client({
    connection: await Connection.connect({ address: server.address }),
    namespace: server.namespace,
  });
  await startControllerProcess('controller-a');
}, 240_000);

afterAll(async () => {
  await Promise.all(controllers.map((c) => c.kill('SIGKILL')));
  await simulator?.stop();
  await worker?.kill('SIGTERM');
  await temporal?.connection.close();
  killAll();
  await Promise.all([server?.stop(), kube?.stop()]);
  fs.rmSync(dir, { recursive: true, force: true });
});

// --- objects --------------------------------------------------------------------------------------------------------

function rolloutObject(name: string, spec: Obj): Obj {
  return {
    apiVersion: `${GROUP}/${VERSION}`,
    kind: 'CanaryRollout',
    metadata: { name, namespace: NS },
    spec,
  };
}

function specFor(fx: RolloutFixture, version: string, plan: Obj, extra: Obj = {}): Obj {
  return {
    target: fx.target,
    plan: { inline: plan },
    version,
    image: fx.stableImage.replace(/:v1$/, `:${version}`),
    ...extra,
  };
}

const create = (name: string, spec: Obj) =>
  admin.custom.createNamespacedCustomObject({ ...crdApi, body: rolloutObject(name, spec) });

async function read(name: string): Promise<CanaryRollout | undefined> {
  try {
    return (await admin.custom.getNamespacedCustomObject({ ...crdApi, name })) as CanaryRollout;
  } catch (e) {
    if (statusOf(e) === 404) return undefined;
    throw e;
  }
}

const patchSpec = (name: string, spec: Obj) =>
  admin.custom.patchNamespacedCustomObject({ ...crdApi, name, body: { spec } }, MERGE_PATCH);

async function events(name: string): Promise<string[]> {
  const list = await admin.core.listNamespacedEvent({
    namespace: NS,
    fieldSelector: `involvedObject.name=${name},involvedObject.kind=CanaryRollout`,
  });
  return list.items
    .sort((a, b) =>
      String(a.metadata?.creationTimestamp).localeCompare(String(b.metadata?.creationTimestamp)),
    )
    .map((e) => e.reason ?? '');
}

/** Every run the workflow id has had (one per start). */
async function runsOf(workflowId: string): Promise<number> {
  let n = 0;
  for await (const _ of temporal.workflow.list({ query: `WorkflowId = "${workflowId}"` })) n++;
  return n;
}

const condition = (o: CanaryRollout | undefined, type: string) =>
  o?.status?.conditions?.find((c) => c.type === type);

// --- tests ----------------------------------------------------------------------------------------------------------

test('the API server refuses what the schema and its CEL rules can check', async () => {
  const target = { workload: { name: 'x' }, traffic: { nginx: {} } };
  const refused = async (spec: Obj): Promise<string> => {
    try {
      await create('refused', spec);
    } catch (e) {
      expect(statusOf(e)).toBe(422);
      return String((e as { body?: unknown }).body ?? e);
    }
    throw new Error(`created: ${JSON.stringify(spec)}`);
  };
  expect(
    await refused({ target, plan: { preset: 'quick', inline: { stages: [] } }, version: 'v2' }),
  ).toContain('exactly one of plan.inline, plan.preset and plan.configMapRef must be set');
  expect(await refused({ target, plan: {}, version: 'v2' })).toContain('exactly one of');
  expect(await refused({ target, plan: { preset: 'quick' }, version: 'v 2' })).toContain('spec.version');
  expect(await refused({ target, plan: { preset: 'quick' }, version: '' })).toContain('spec.version');
  expect(await refused({ target, plan: { preset: 'fastest' }, version: 'v2' })).toContain('spec.plan.preset');
  expect(
    await refused({ target, plan: { preset: 'quick' }, version: 'v2', onNewVersion: 'maybe' }),
  ).toContain('spec.onNewVersion');
  expect(await refused({ target, plan: { configMapRef: { name: 'p' } }, version: 'v2' })).toContain('key');
  expect(await refused({ plan: { preset: 'quick' }, version: 'v2' })).toContain('spec.target');
});

test('an invalid spec gets an Invalid condition listing every problem by path, and nothing starts', async () => {
  await create('bad', {
    target: { traffic: { nginx: { ingres: 'bad' } }, workload: { name: 'bad' } },
    plan: { inline: { stages: [{ weight: 200, hold: '1h' }] } },
    version: 'v2',
  });
  const o = await until('Invalid', async () => {
    const r = await read('bad');
    return condition(r, 'Invalid')?.status === 'True' ? r : undefined;
  });
  const message = condition(o, 'Invalid')!.message;
  expect(message).toContain('spec.plan.inline.stages[0].weight');
  expect(message).toContain('spec.target.traffic.nginx.ingres');
  expect(o!.status?.runId).toBeUndefined();
  expect(await runsOf('canary.kc-apps.bad')).toBe(0);
  expect(await events('bad')).toContain('Invalid');
});

test('create → the rollout runs, .status and Events follow it, it is promoted', async () => {
  const fx = await createRolloutFixture(admin, 'nginx', NS, 'promote');
  const phases: string[] = [];
  const weights: number[] = [];
  const watch = watchWeights(fx, 50);
  const created = Date.now();
  await create('promote', specFor(fx, 'v2', promotePlan));
  const firstWeight = await until('the first weight set', async () =>
    (await fx.weights()).canary > 0 ? Date.now() : 0,
  );
  const o = await until('promoted', async () => {
    const r = await read('promote');
    const s = r?.status;
    if (s?.phase && phases[phases.length - 1] !== s.phase) phases.push(s.phase);
    if (s?.weight !== undefined && weights[weights.length - 1] !== s.weight) weights.push(s.weight);
    return s?.phase === 'promoted' ? r : undefined;
  });
  await watch.stop();
  process.stdout.write(`object created → first weight set: ${firstWeight - created} ms\n`);
  expect(watch.seen).toEqual(expect.arrayContaining([10, 50]));
  expect(weights).toEqual(expect.arrayContaining([10, 50]));
  expect(phases[phases.length - 1]).toBe('promoted');
  expect(o!.status).toMatchObject({
    workflowId: 'canary.kc-apps.promote',
    version: 'v2',
    observedGeneration: 1,
  });
  expect(condition(o, 'Promoted')).toMatchObject({ status: 'True', reason: 'Promoted' });
  expect(condition(o, 'Progressing')).toMatchObject({ status: 'False' });
  expect(o!.metadata.finalizers).toContain('canary.temporal.io/rollback');
  const stable = await fx.stableDeployment();
  expect(stable.spec!.template.spec!.containers[0].image).toMatch(/:v2$/);
  const reasons = await until('the Promoted event', async () => {
    const r = await events('promote');
    return r.includes('Promoted') ? r : undefined;
  });
  expect(reasons).toEqual(expect.arrayContaining(['Started', 'Promoted']));
  expect(await runsOf('canary.kc-apps.promote')).toBe(1);
});

test('spec.version changed mid-rollout → superseded: the old canary reads weight 0 before the new first shift', async () => {
  const fx = await createRolloutFixture(admin, 'nginx', NS, 'supersede');
  await create('supersede', specFor(fx, 'v2', longPlan));
  await until('v2 at 10 %', async () => (await fx.weights()).canary === 10);
  const watch = watchWeights(fx, 50);
  const changed = Date.now();
  await patchSpec('supersede', { version: 'v3', image: fx.stableImage.replace(/:v1$/, ':v3') });
  const atZero = await until('the old canary at weight 0', async () =>
    watch.seen.slice(1).includes(0) ? Date.now() : 0,
  );
  process.stdout.write(`spec.version changed → old canary at weight 0: ${atZero - changed} ms\n`);
  const o = await until('v3 at 10 %', async () => {
    const r = await read('supersede');
    return r?.status?.version === 'v3' && r.status.weight === 10 && (await fx.weights()).canary === 10
      ? r
      : undefined;
  });
  const seen = await watch.stop();
  // 10 (v2) → 0 (rolled back) → 10 (v3): never a shift of v3 before v2's canary was at 0.
  expect(seen).toEqual([10, 0, 10]);
  const canary = await fx.canaryDeployment();
  expect(canary?.spec?.template.spec?.containers[0].image).toMatch(/:v3$/);
  expect(o.status?.observedGeneration).toBe(2);
  expect(await events('supersede')).toEqual(expect.arrayContaining(['Started', 'Superseding', 'RolledBack']));
  expect(await runsOf('canary.kc-apps.supersede')).toBe(2);
});

test('deleted mid-rollout → rolled back, the finalizer released, routing as before', async () => {
  const fx = await createRolloutFixture(admin, 'nginx', NS, 'remove');
  const before = await fx.snapshot();
  await create('remove', specFor(fx, 'v2', longPlan));
  await until('v2 at 10 %', async () => (await fx.weights()).canary === 10);
  await admin.custom.deleteNamespacedCustomObject({ ...crdApi, name: 'remove' });
  // The finalizer holds the object while the rollout rolls back (unless the rollback was already done).
  const held = await read('remove');
  expect(held === undefined || held.metadata.deletionTimestamp !== undefined).toBe(true);
  await until('the object gone', async () => (await read('remove')) === undefined);
  expect(await fx.weights()).toEqual({ stable: 100, canary: 0 });
  expect(await fx.snapshot()).toEqual(before);
  const canary = await fx.canaryDeployment();
  expect(canary?.spec?.replicas ?? 0).toBe(0);
  const closed = await temporal.workflow.getHandle('canary.kc-apps.remove').describe();
  expect(closed.status.name).not.toBe('RUNNING');
});

test('a request annotation is sent, cleared, and answered as a condition; SIGKILL and restart start nothing twice', async () => {
  const fx = await createRolloutFixture(admin, 'nginx', NS, 'crash');
  await create('crash', specFor(fx, 'v2', longPlan));
  await until('v2 at 10 %', async () => (await read('crash'))?.status?.weight === 10);
  const [leader] = controllers;
  await leader.kill('SIGKILL');
  controllers.splice(0, 1);
  await admin.custom.patchNamespacedCustomObject(
    {
      ...crdApi,
      name: 'crash',
      body: { metadata: { annotations: { 'canary.temporal.io/request': 'pause' } } },
    },
    MERGE_PATCH,
  );
  // Restarted: it must wait out the killed leader's Lease, then picks the object up where it was.
  await startControllerProcess('controller-a2');
  const o = await until('paused', async () => {
    const r = await read('crash');
    return r?.status?.phase === 'paused' && condition(r, 'Request')?.status === 'True' ? r : undefined;
  });
  expect(o.metadata.annotations?.['canary.temporal.io/request']).toBeUndefined();
  expect(condition(o, 'Paused')).toMatchObject({ status: 'True' });
  expect(await runsOf('canary.kc-apps.crash')).toBe(1);
  await admin.custom.deleteNamespacedCustomObject({ ...crdApi, name: 'crash' });
  await until('crash gone', async () => (await read('crash')) === undefined);
});

test('two replicas: one leads; when it is killed the other takes over within the lease duration', async () => {
  const leases = controllerKc.makeApiClient(CoordinationV1Api);
  const holder = async () =>
    (await leases.readNamespacedLease({ namespace: SYSTEM_NS, name: 'temporal-canary-controller' })).spec
      ?.holderIdentity;
  const first = controllers[0];
  await until('a leader', async () => (await holder()) === first.name);
  const second = await startControllerProcess('controller-b');
  await new Promise((r) => setTimeout(r, LEASE_MS));
  expect(await holder()).toBe(first.name);
  const killed = Date.now();
  await first.kill('SIGKILL');
  await until('controller-b to lead', async () => (await holder()) === second.name, 4 * LEASE_MS);
  const tookOver = Date.now() - killed;
  process.stdout.write(`leader killed → the other replica leads: ${tookOver} ms\n`);
  expect(tookOver).toBeLessThan(2 * LEASE_MS + 2_000);
  // And it acts.
  const fx = await createRolloutFixture(admin, 'nginx', NS, 'takeover');
  await create('takeover', specFor(fx, 'v2', promotePlan));
  await until('takeover promoted', async () => (await read('takeover'))?.status?.phase === 'promoted');
});

test('canary start --supersede rolls the running version back (and says so) before it starts the new one', async () => {
  const fx = await createRolloutFixture(admin, 'nginx', NS, 'cli');
  const planFile = path.join(dir, 'long.yaml');
  fs.writeFileSync(planFile, JSON.stringify(longPlan));
  const targetFile = path.join(dir, 'cli.target.json');
  fs.writeFileSync(targetFile, JSON.stringify({ target: fx.target }));
  const env = {
    TEMPORAL_ADDRESS: server.address,
    TEMPORAL_NAMESPACE: server.namespace,
    TEMPORAL_TASK_QUEUE: queue,
    CANARY_IDENTITY: 'ci-bot',
  };
  const start = (version: string, ...more: string[]) =>
    runCli(
      [
        'start',
        '--target',
        targetFile,
        '--plan',
        planFile,
        '--version',
        version,
        '--image',
        fx.stableImage.replace(/:v1$/, `:${version}`),
        ...more,
      ],
      env,
    );
  const first = await start('v2');
  expect([first.code, first.stderr]).toEqual([0, '']);
  await until('v2 at 10 %', async () => (await fx.weights()).canary === 10);
  // Without --supersede: refused, as before (exit 2), naming the running version.
  const refused = await start('v3');
  expect(refused.code).toBe(2);
  expect(refused.stderr).toContain('v2');
  const watch = watchWeights(fx, 50);
  const r = await start('v3', '--supersede');
  expect([r.code, r.stderr]).toEqual([0, '']);
  expect(r.stdout).toContain('superseding v2');
  expect(r.stdout).toMatch(/Rolled back v2 on kc-apps\/cli: traffic is on stable/);
  await until('v3 at 10 %', async () => (await fx.weights()).canary === 10);
  expect(await watch.stop()).toEqual([10, 0, 10]);
  expect(await runsOf('canary.kc-apps.cli')).toBe(2);
  await runCli(['abort', 'kc-apps/cli', '--reason', 'test over'], env);
});

test("the controller's role allows what it calls and nothing more (access reviews as its ServiceAccount)", async () => {
  const authz = controllerKc.makeApiClient(AuthorizationV1Api);
  const can = async (
    namespace: string,
    group: string,
    resource: string,
    verb: string,
    subresource?: string,
  ) =>
    (
      await authz.createSelfSubjectAccessReview({
        body: {
          spec: {
            resourceAttributes: { namespace, group, resource, verb, ...(subresource ? { subresource } : {}) },
          },
        },
      })
    ).status?.allowed === true;
  for (const verb of ['get', 'list', 'watch', 'patch']) expect(await can(NS, GROUP, PLURAL, verb)).toBe(true);
  expect(await can(NS, GROUP, PLURAL, 'patch', 'status')).toBe(true);
  expect(await can(NS, GROUP, PLURAL, 'update', 'finalizers')).toBe(true);
  expect(await can(NS, '', 'events', 'create')).toBe(true);
  expect(await can(NS, '', 'configmaps', 'get')).toBe(true);
  for (const verb of ['get', 'create', 'update']) {
    expect(await can(SYSTEM_NS, 'coordination.k8s.io', 'leases', verb)).toBe(true);
  }
  // Nothing more: no deletes, no Secrets, no workloads or routing, no Leases outside its namespace, no RBAC.
  expect(await can(NS, GROUP, PLURAL, 'delete')).toBe(false);
  expect(await can(NS, GROUP, PLURAL, 'create')).toBe(false);
  expect(await can(NS, '', 'secrets', 'get')).toBe(false);
  expect(await can(NS, '', 'configmaps', 'list')).toBe(false);
  expect(await can(NS, 'apps', 'deployments', 'patch')).toBe(false);
  expect(await can(NS, 'networking.k8s.io', 'ingresses', 'patch')).toBe(false);
  expect(await can(NS, 'coordination.k8s.io', 'leases', 'update')).toBe(false);
  expect(await can('', 'rbac.authorization.k8s.io', 'clusterroles', 'escalate')).toBe(false);
});

// --- issue 16 item 6: the worker with in-cluster credentials ---------------------------------------------------------

const IC_NS = 'ic-apps';
const IC_SYSTEM_NS = 'ic-system';
const IC_UNBOUND_NS = 'ic-unbound';
/** Where client-node's loadFromDefault (and loadFromCluster) read a pod's ServiceAccount; not configurable in 1.4. */
const SA_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

/**
 * `canary-worker` (dist/worker) started the way a pod is: KUBERNETES_SERVICE_HOST/PORT and no KUBECONFIG (nor a
 * ~/.kube/config), the token, CA and namespace at the kubelet's path. That path is fixed in client-node, so the process
 * runs in a mount namespace of its own (unshare) where `saDir` is bind-mounted there, as the kubelet mounts the
 * projected volume; nothing on this machine changes.
 */
async function startInClusterWorker(saDir: string, env: Record<string, string>): Promise<WorkerProcess> {
  requireBuilt(WORKER_MAIN);
  const port = new URL(kube.url).port;
  const home = fs.mkdtempSync(path.join(dir, 'home-'));
  const base = { ...process.env };
  for (const k of ['KUBECONFIG', 'CANARY_KUBECONFIG', 'CANARY_KUBE_CONTEXT']) delete base[k];
  // /run holds nothing the worker needs: a tmpfs over it (in this mount namespace only) gives the mount point.
  const script = 'mount -t tmpfs tmpfs /run && mkdir -p "$1" && mount --bind "$0" "$1" && shift && exec "$@"';
  const child = spawn(
    'unshare',
    [
      '--mount',
      '--map-root-user',
      '--',
      '/bin/sh',
      '-c',
      script,
      saDir,
      SA_DIR,
      process.execPath,
      WORKER_MAIN,
    ],
    {
      env: {
        ...base,
        HOME: home,
        KUBERNETES_SERVICE_HOST: '127.0.0.1',
        KUBERNETES_SERVICE_PORT: port,
        CANARY_PROVIDERS: 'local',
        ...env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const proc: WorkerProcess = {
    pid: child.pid!,
    output: () => out,
    kill: async (signal = 'SIGTERM') => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
  inClusterWorkers.push(proc);
  const started = await Promise.race([
    until('the in-cluster worker to start', async () => /worker started/i.test(out), 60_000),
    exited.then((code) => {
      throw new Error(`the in-cluster worker exited with ${code} before starting:\n${out}`);
    }),
  ]);
  expect(started).toBe(true);
  return proc;
}
const inClusterWorkers: WorkerProcess[] = [];
afterAll(async () => {
  await Promise.all(inClusterWorkers.map((w) => w.kill('SIGKILL')));
});

test("in-cluster credentials: a worker started as in a pod, with deploy/'s ServiceAccount and roles only, promotes a rollout; a namespace without a binding is refused with exit 3 naming the account", async () => {
  // deploy/serviceaccount.yaml and rbac.yaml as shipped: every ClusterRole, and the bindings rbac.yaml says an NGINX
  // target with a Deployment workload needs (the router's and the workloads'), into the app namespace.
  for (const ns of [IC_NS, IC_SYSTEM_NS, IC_UNBOUND_NS]) await kube.createNamespace(ns);
  const into: Record<string, string> = { 'temporal-canary': IC_SYSTEM_NS, 'app-namespace': IC_NS };
  const rbac = manifests('rbac.yaml');
  for (const o of [
    ...manifests('serviceaccount.yaml'),
    ...rbac.filter((m) => m.kind === 'ClusterRole'),
    ...rbac.filter(
      (m) =>
        m.kind === 'RoleBinding' &&
        ['temporal-canary-nginx', 'temporal-canary-workloads'].includes(m.roleRef.name),
    ),
  ]) {
    const c = structuredClone(o);
    if (c.metadata.namespace) c.metadata.namespace = into[c.metadata.namespace];
    for (const s of (c.subjects ?? []) as Obj[]) s.namespace = into[s.namespace];
    await objects.create(c as KubernetesObject);
  }
  // A projected token as the kubelet asks for it (TokenRequest API), the cluster CA and the namespace.
  const token = await admin.core.createNamespacedServiceAccountToken({
    name: 'temporal-canary-worker',
    namespace: IC_SYSTEM_NS,
    body: { spec: { audiences: ['https://kubernetes.default.svc.cluster.local'], expirationSeconds: 3600 } },
  });
  const saDir = fs.mkdtempSync(path.join(dir, 'serviceaccount-'));
  fs.writeFileSync(path.join(saDir, 'token'), token.status!.token, { mode: 0o600 });
  fs.writeFileSync(path.join(saDir, 'ca.crt'), kube.caPem);
  fs.writeFileSync(path.join(saDir, 'namespace'), IC_SYSTEM_NS);
  const icQueue = `${queue}-in-cluster`;
  // The router and workloads defaults are Kubernetes: the worker loads its credentials at start.
  const icWorker = await startInClusterWorker(saDir, {
    TEMPORAL_ADDRESS: server.address,
    TEMPORAL_NAMESPACE: server.namespace,
    TEMPORAL_TASK_QUEUE: icQueue,
    CANARY_ROUTER: 'nginx',
    CANARY_WORKLOADS: 'kubernetes',
    CANARY_ALERT_LOG: path.join(dir, 'alerts-in-cluster.jsonl'),
    CANARY_ALERT_WEBHOOK_URL: '',
  });
  const icSimulator = startDeploymentSimulator(kube.kubeConfig('admin'), IC_NS, { pollMs: 100 });
  try {
    const env = {
      TEMPORAL_ADDRESS: server.address,
      TEMPORAL_NAMESPACE: server.namespace,
      TEMPORAL_TASK_QUEUE: icQueue,
      CANARY_IDENTITY: 'ci-bot',
    };
    const planFile = path.join(dir, 'in-cluster.plan.json');
    fs.writeFileSync(planFile, JSON.stringify(promotePlan));
    const start = async (fx: RolloutFixture, ...more: string[]) => {
      const targetFile = path.join(dir, `${fx.namespace}.${fx.app}.target.json`);
      fs.writeFileSync(targetFile, JSON.stringify({ target: fx.target }));
      return runCli(
        [
          'start',
          '--target',
          targetFile,
          '--plan',
          planFile,
          '--version',
          'v2',
          '--image',
          fx.stableImage.replace(/:v1$/, ':v2'),
          ...more,
        ],
        env,
      );
    };

    const fx = await createRolloutFixture(admin, 'nginx', IC_NS, 'in-cluster');
    const watch = watchWeights(fx, 50);
    const promoted = await start(fx, '--wait', '--interval', '500ms');
    expect([promoted.code, promoted.stderr]).toEqual([0, '']);
    expect(await watch.stop()).toEqual(expect.arrayContaining([10, 50]));
    const stable = await fx.stableDeployment();
    expect(stable.spec!.template.spec!.containers[0].image).toMatch(/:v2$/);

    // No binding in this namespace: the preflight, run by the same worker with the same token, is refused.
    const unbound = await createRolloutFixture(admin, 'nginx', IC_UNBOUND_NS, 'in-cluster');
    const refused = await start(unbound);
    expect(refused.code).toBe(3);
    expect(refused.stderr).toContain(`system:serviceaccount:${IC_SYSTEM_NS}:temporal-canary-worker`);
    expect(refused.stderr).toContain('deploy/rbac.yaml');
    expect(refused.stderr).toContain(IC_UNBOUND_NS);
    expect((await unbound.weights()).canary).toBe(0);
  } finally {
    await icSimulator.stop();
    await icWorker.kill('SIGTERM');
  }
});
