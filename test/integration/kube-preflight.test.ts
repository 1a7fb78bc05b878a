// The preflight of every Kubernetes provider against a real kube-apiserver (started once for the file): a worker
// without a cluster, a server that refuses or never answers, a missing CRD, a missing VirtualService, a forbidden
// verb, example 001's Istio target without a DestinationRule, example 004's NGINX target without a canary Service,
// and a healthy target of each router. Each case runs the preflight as a rollout's first step does (the activities'
// runPreflight over the worker's provider registry), checks what it found, that it found it within seconds, and that
// nothing in the namespace changed.
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { KubeConfig, type V1PolicyRule } from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';
import { ProviderRegistry, providerConfigFromEnv, providersFromEnv } from '../../activities/factory';
import { kubeClients, loadKubeConfig, type KubeClients } from '../../activities/kube/client';
import { runPreflight, type PreflightReport } from '../../activities/preflight';
import { DeploymentWorkloadManager } from '../../activities/workloads/deployment';
import { ProviderError, type PreflightFinding } from '../../activities/types';
import { validatePlan } from '../../workflows/plan';
import { validateTarget, type Target } from '../../workflows/target';
import { startKubeServer, statusOf, type KubeServer } from '../../harness/kube';
import { createRolloutFixture, createStableWorkload } from '../../harness/kube-rollout';

jest.setTimeout(300_000);

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const ISTIO = { group: 'networking.istio.io', version: 'v1' };
const SMI_CRD = 'trafficsplits.split.smi-spec.io';
const VERSION = 'v2';

let kube: KubeServer;
let admin: KubeClients;
/** The worker's registry as a worker builds it from its environment (CANARY_KUBECONFIG), as the admin user. */
let adminWorker: ProviderRegistry;
let restrictedWorker: ProviderRegistry;
let tmp: string;
let counter = 0;
const timings: string[] = [];

beforeAll(async () => {
  kube = await startKubeServer();
  admin = kubeClients(kube.kubeConfig('admin'));
  adminWorker = registry(kube.kubeconfigFile('admin'));
  restrictedWorker = registry(kube.kubeconfigFile('restricted'));
  tmp = await fs.promises.mkdtemp(path.join(os.tmpdir(), 'canary-preflight-'));
});

afterAll(async () => {
  console.log(`preflight times:\n  ${timings.join('\n  ')}`);
  await kube?.stop();
  if (tmp) await fs.promises.rm(tmp, { recursive: true, force: true });
});

function registry(kubeconfig: string, env: Record<string, string> = {}): ProviderRegistry {
  return new ProviderRegistry(providerConfigFromEnv({ CANARY_KUBECONFIG: kubeconfig, ...env }));
}

async function namespace(prefix: string): Promise<string> {
  return kube.createNamespace(`${prefix}-${++counter}`);
}

function target(spec: Obj): Target {
  const v = validateTarget(spec);
  if (!v.ok) throw new Error(JSON.stringify(v.problems));
  return v.target;
}

const PLAN = (() => {
  const v = validatePlan({ stages: [{ weight: 5, hold: '1m' }, { weight: 100 }] });
  if (!v.ok) throw new Error(JSON.stringify(v.problems));
  return v.plan;
})();

/** Runs the preflight as the rollout's first step does, and records how long it took. */
async function preflight(name: string, worker: ProviderRegistry, t: Target): Promise<PreflightReport> {
  const started = Date.now();
  const report = await runPreflight(worker, { target: t, plan: PLAN, version: VERSION });
  const took = Date.now() - started;
  timings.push(
    `${name}: ${took} ms (${report.findings.length} finding${report.findings.length === 1 ? '' : 's'})`,
  );
  console.log(`preflight ${name}: ${took} ms`, JSON.stringify(report.findings, null, 2));
  return report;
}

// --- what the API server holds -------------------------------------------------------------------------------------

/** Every object of the kinds a rollout touches in the namespace, as kind/name → resourceVersion. */
async function state(ns: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const add = (kind: string, items: Array<{ metadata?: { name?: string; resourceVersion?: string } }>) => {
    for (const i of items) out[`${kind}/${i.metadata?.name}`] = i.metadata?.resourceVersion ?? '';
  };
  const custom = async (group: string, version: string, plural: string): Promise<Obj[]> => {
    try {
      const list = (await admin.custom.listNamespacedCustomObject({
        group,
        version,
        plural,
        namespace: ns,
      })) as Obj;
      return (list.items as Obj[]) ?? [];
    } catch (err) {
      if (statusOf(err) === 404) return []; // its CRD is not installed (for a moment)
      throw err;
    }
  };
  add('Deployment', (await admin.apps.listNamespacedDeployment({ namespace: ns })).items);
  add('Service', (await admin.core.listNamespacedService({ namespace: ns })).items);
  add('Ingress', (await admin.networking.listNamespacedIngress({ namespace: ns })).items);
  add('ConfigMap', (await admin.core.listNamespacedConfigMap({ namespace: ns })).items);
  add('VirtualService', await custom(ISTIO.group, ISTIO.version, 'virtualservices'));
  add('DestinationRule', await custom(ISTIO.group, ISTIO.version, 'destinationrules'));
  add('HTTPRoute', await custom('gateway.networking.k8s.io', 'v1', 'httproutes'));
  add('TrafficSplit', await custom('split.smi-spec.io', 'v1alpha2', 'trafficsplits'));
  return out;
}

/** Runs `fn` and checks that the namespace holds exactly the same objects, unchanged, afterwards. */
async function unchanged<T>(ns: string, fn: () => Promise<T>): Promise<T> {
  const before = await state(ns);
  const result = await fn();
  expect(await state(ns)).toEqual(before);
  return result;
}

const refusals = (r: PreflightReport) => r.findings.filter((f) => f.level === 'refuse');

/** The one finding with these fields whose message says all of these phrases. */
function only(r: PreflightReport, match: Partial<PreflightFinding>, ...phrases: string[]): PreflightFinding {
  const found = r.findings.filter(
    (f) =>
      Object.entries(match).every(([k, v]) => f[k as keyof PreflightFinding] === v) &&
      phrases.every((p) => f.message.includes(p)),
  );
  if (found.length !== 1) {
    throw new Error(
      `expected one finding ${JSON.stringify(match)} saying ${JSON.stringify(phrases)}, got ${found.length} of:\n` +
        JSON.stringify(r.findings, null, 2),
    );
  }
  return found[0];
}

/** The rules of a ClusterRole in deploy/rbac.yaml, to grant the restricted user exactly what a worker gets. */
function rbacRules(role: string): V1PolicyRule[] {
  const text = fs.readFileSync(path.resolve(__dirname, '..', '..', 'deploy', 'rbac.yaml'), 'utf8');
  const doc = parseAllDocuments(text)
    .map((d) => d.toJS() as Obj | null)
    .find((o) => o?.kind === 'ClusterRole' && o.metadata?.name === role);
  if (!doc) throw new Error(`deploy/rbac.yaml has no ClusterRole ${role}`);
  return doc.rules as V1PolicyRule[];
}

/** A port nothing listens on (it was free a moment ago, and stays closed). */
async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

function kubeconfigFor(server: string, file: string): string {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'elsewhere', server, caData: Buffer.from(kube.caPem).toString('base64') }],
    users: [{ name: 'worker', token: 'some-token' }],
    contexts: [{ name: 'prod', cluster: 'elsewhere', user: 'worker' }],
    currentContext: 'prod',
  });
  const full = path.join(tmp, file);
  fs.writeFileSync(full, kc.exportConfig(), { mode: 0o600 });
  return full;
}

// --- no cluster at all ---------------------------------------------------------------------------------------------

describe('a worker without a cluster', () => {
  const saved: Record<string, string | undefined> = {};
  const VARS = [
    'HOME',
    'KUBECONFIG',
    'CANARY_KUBECONFIG',
    'KUBERNETES_SERVICE_HOST',
    'KUBERNETES_SERVICE_PORT',
  ];
  let home: string;

  beforeEach(async () => {
    home = await fs.promises.mkdtemp(path.join(tmp, 'home-'));
    for (const v of VARS) saved[v] = process.env[v];
    for (const v of VARS) delete process.env[v];
    process.env.HOME = home; // a home without .kube/config
  });

  afterEach(() => {
    for (const v of VARS) {
      if (saved[v] === undefined) delete process.env[v];
      else process.env[v] = saved[v];
    }
  });

  test('no kubeconfig anywhere: loading refuses instead of falling back to localhost:8080', async () => {
    let error: unknown;
    try {
      loadKubeConfig();
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ProviderError);
    expect((error as ProviderError).kind).toBe('unconfigured');
    const message = (error as ProviderError).message;
    expect(message).toContain('no Kubernetes cluster configured');
    expect(message).toContain('set KUBECONFIG (or CANARY_KUBECONFIG)');
    expect(message).toContain(path.join(home, '.kube', 'config'));
    expect(message).toContain('KUBERNETES_SERVICE_HOST is not set');
    expect(message).not.toContain('localhost:8080');

    // A worker whose default router is Istio does not start.
    expect(() => providersFromEnv({ CANARY_ROUTER: 'istio' })).toThrow(/no Kubernetes cluster configured/);
  });

  test('a rollout on such a worker is refused by its preflight as the infrastructure’s problem', async () => {
    const ns = await namespace('nocluster');
    await createRolloutFixture(admin, 'istio', ns, 'shop');
    const worker = new ProviderRegistry(providerConfigFromEnv({}));
    const t = target({ app: 'shop', namespace: ns, workload: { name: 'shop' }, traffic: { istio: {} } });
    const report = await unchanged(ns, () => preflight('no kubeconfig', worker, t));
    // Said once, though both the workload manager and the router met it.
    expect(report.findings).toHaveLength(1);
    for (const f of report.findings) {
      expect(f).toMatchObject({ area: 'cluster', cause: 'infrastructure', level: 'refuse' });
      expect(f.message).toContain('no Kubernetes cluster configured');
    }
    expect(report.tookMs).toBeLessThan(1_000);
  });
});

// --- a server that is not there ------------------------------------------------------------------------------------

describe('an unreachable API server', () => {
  const istioTarget = (ns: string) =>
    target({
      app: 'shop',
      namespace: ns,
      workload: { name: 'shop' },
      traffic: { istio: { destinationRule: 'shop' } },
    });

  test('a closed port: one cluster finding naming the server and the kubeconfig, within a second or two', async () => {
    const ns = await namespace('closed');
    await createRolloutFixture(admin, 'istio', ns, 'shop');
    const port = await closedPort();
    const file = kubeconfigFor(`https://127.0.0.1:${port}`, 'closed.kubeconfig');
    const report = await unchanged(ns, () => preflight('closed port', registry(file), istioTarget(ns)));
    // The workload manager and the router both found it: said once.
    expect(report.findings).toHaveLength(1);
    only(
      report,
      { area: 'cluster', cause: 'infrastructure', level: 'refuse' },
      `https://127.0.0.1:${port}`,
      'refused the connection',
      `kubeconfig ${file}`,
      'context "prod"',
    );
    expect(report.tookMs).toBeLessThan(2_000);
  });

  test('a server that accepts connections and never answers: a finding after the 5 s request timeout', async () => {
    const ns = await namespace('blackhole');
    await createRolloutFixture(admin, 'istio', ns, 'shop');
    const held: net.Socket[] = [];
    const server = net.createServer((socket) => held.push(socket)); // accepts, reads nothing, answers nothing
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const port = (server.address() as net.AddressInfo).port;
      const file = kubeconfigFor(`https://127.0.0.1:${port}`, 'blackhole.kubeconfig');
      const report = await unchanged(ns, () =>
        preflight('black-holed server', registry(file), istioTarget(ns)),
      );
      expect(report.findings).toHaveLength(1);
      only(
        report,
        { area: 'cluster', cause: 'infrastructure', level: 'refuse' },
        `https://127.0.0.1:${port}`,
        'did not answer within 5 s',
      );
      // One timeout, not one per provider or per request.
      expect(report.tookMs).toBeGreaterThanOrEqual(4_500);
      expect(report.tookMs).toBeLessThan(8_000);
    } finally {
      for (const s of held) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  test('a token the server does not accept: a credentials finding', async () => {
    const ns = await namespace('badtoken');
    await createRolloutFixture(admin, 'istio', ns, 'shop');
    const file = kubeconfigFor(kube.url, 'badtoken.kubeconfig');
    const report = await unchanged(ns, () => preflight('rejected token', registry(file), istioTarget(ns)));
    expect(report.findings).toHaveLength(1);
    only(
      report,
      { area: 'cluster', cause: 'infrastructure', level: 'refuse' },
      kube.url,
      "does not accept the worker's credentials",
      '401',
    );
  });
});

// --- objects and kinds ---------------------------------------------------------------------------------------------

describe('missing objects and kinds', () => {
  test('the SMI TrafficSplit CRD removed: an infrastructure finding; back once it is reinstalled', async () => {
    const ns = await namespace('nocrd');
    await createStableWorkload(admin, ns, 'shop');
    await admin.core.createNamespacedService({
      namespace: ns,
      body: { metadata: { name: 'shop-stable' }, spec: { selector: { app: 'shop' }, ports: [{ port: 80 }] } },
    });
    const t = target({ app: 'shop', namespace: ns, workload: { name: 'shop' }, traffic: { smi: {} } });
    await kube.deleteCrd(SMI_CRD);
    let report: PreflightReport;
    try {
      report = await unchanged(ns, () => preflight('SMI CRD missing', adminWorker, t));
    } finally {
      await kube.installCrds(['smi']);
    }
    expect(refusals(report)).toHaveLength(1);
    only(
      report,
      { area: 'object', cause: 'infrastructure', level: 'refuse' },
      SMI_CRD,
      'CRD is not installed',
      'split.smi-spec.io/v1alpha2',
    );
    // Reinstalled: the same target has nothing left to find.
    const again = await unchanged(ns, () => preflight('SMI CRD reinstalled', adminWorker, t));
    expect(again.findings).toEqual([]);
  });

  test('a missing VirtualService: the target’s problem, naming it and its namespace', async () => {
    const ns = await namespace('novs');
    const f = await createRolloutFixture(admin, 'istio', ns, 'shop');
    await admin.custom.deleteNamespacedCustomObject({
      ...ISTIO,
      plural: 'virtualservices',
      namespace: ns,
      name: 'shop',
    });
    const report = await unchanged(ns, () =>
      preflight('missing VirtualService', adminWorker, target(f.target)),
    );
    expect(report.findings).toHaveLength(1);
    const finding = only(
      report,
      { area: 'object', cause: 'input', level: 'refuse' },
      `VirtualService "shop" in namespace "${ns}" does not exist`,
      'traffic.istio.virtualService',
    );
    expect(finding.path).toBe('target.traffic.istio.virtualService');
  });

  test('a missing stable Deployment: the target’s problem, said once for the workload and the replica router', async () => {
    const ns = await namespace('nodeploy');
    const t = target({ app: 'shop', namespace: ns, workload: { name: 'shop' }, traffic: { replicas: {} } });
    const report = await unchanged(ns, () => preflight('missing Deployment', adminWorker, t));
    expect(report.findings).toHaveLength(1);
    expect(
      only(report, { area: 'object', cause: 'input' }, `Deployment "${ns}/shop"`, 'does not exist').path,
    ).toBe('target.workload.name');
  });
});

// --- the worker's account ------------------------------------------------------------------------------------------

describe("the worker's account", () => {
  test('a verb the role lacks: an access finding naming verb, resource, namespace and the role to bind', async () => {
    const ns = await namespace('forbidden');
    const f = await createRolloutFixture(admin, 'istio', ns, 'shop');
    await kube.grant(ns, 'workloads', rbacRules('temporal-canary-workloads'));
    // Istio objects readable, not writable.
    await kube.grant(ns, 'istio-read', [
      { apiGroups: [ISTIO.group], resources: ['virtualservices', 'destinationrules'], verbs: ['get'] },
    ]);
    const report = await unchanged(ns, () =>
      preflight('forbidden patch', restrictedWorker, target(f.target)),
    );
    expect(report.findings).toHaveLength(2);
    for (const resource of ['virtualservices', 'destinationrules']) {
      only(
        report,
        { area: 'access', cause: 'infrastructure', level: 'refuse' },
        `user "restricted" in context "restricted"`,
        `may not patch ${resource}.networking.istio.io in namespace "${ns}"`,
        'temporal-canary-istio',
        'deploy/rbac.yaml',
      );
    }
  });

  test('no rights at all: one finding per resource, nothing read', async () => {
    const ns = await namespace('norights');
    const f = await createRolloutFixture(admin, 'gatewayAPI', ns, 'shop');
    const report = await unchanged(ns, () => preflight('no rights', restrictedWorker, target(f.target)));
    only(report, { area: 'access' }, 'may not get, create, patch, delete deployments.apps');
    only(report, { area: 'access' }, 'may not patch deployments.apps/scale');
    only(report, { area: 'access' }, 'may not get, patch httproutes.gateway.networking.k8s.io');
    expect(report.findings.every((x) => x.area === 'access' && x.cause === 'infrastructure')).toBe(true);
  });

  test('exactly the roles of deploy/rbac.yaml: a healthy target has nothing to refuse', async () => {
    const ns = await namespace('rbacroles');
    const f = await createRolloutFixture(admin, 'istio', ns, 'shop');
    await kube.grant(ns, 'workloads', rbacRules('temporal-canary-workloads'));
    await kube.grant(ns, 'istio', rbacRules('temporal-canary-istio'));
    const report = await unchanged(ns, () =>
      preflight('istio with the shipped roles', restrictedWorker, target(f.target)),
    );
    expect(report.findings).toEqual([]);
    expect(report.stableVersion).toBe('v1');
  });
});

// --- example 001: Istio without a DestinationRule ------------------------------------------------------------------

describe("example 001's Istio target (no destinationRule named)", () => {
  const HOST = (ns: string) => `api-gateway.${ns}.svc.cluster.local`;

  /** Example 001's target: only the VirtualService named. */
  function example001(ns: string): Target {
    return target({
      app: 'api-gateway',
      namespace: ns,
      workload: { name: 'api-gateway', progressDeadline: '1h' },
      traffic: { istio: { virtualService: 'api-gateway' } },
    });
  }

  async function create(ns: string, subsets?: Obj[]): Promise<void> {
    await createStableWorkload(admin, ns, 'api-gateway');
    await admin.custom.createNamespacedCustomObject({
      ...ISTIO,
      namespace: ns,
      plural: 'virtualservices',
      body: {
        apiVersion: `${ISTIO.group}/v1`,
        kind: 'VirtualService',
        metadata: { name: 'api-gateway' },
        spec: {
          hosts: [HOST(ns)],
          http: [{ route: [{ destination: { host: HOST(ns), subset: 'stable' } }] }],
        },
      },
    });
    if (subsets) {
      await admin.custom.createNamespacedCustomObject({
        ...ISTIO,
        namespace: ns,
        plural: 'destinationrules',
        body: {
          apiVersion: `${ISTIO.group}/v1`,
          kind: 'DestinationRule',
          metadata: { name: 'api-gateway-subsets' },
          spec: { host: 'api-gateway', subsets },
        },
      });
    }
  }

  const KEEP =
    'name it as traffic.istio.destinationRule so the router keeps the canary and stable subsets on the right versions';

  test('no DestinationRule at all: refused, the subsets would answer 503 (the shipped roles: it looks by name)', async () => {
    const ns = await namespace('ex001');
    await create(ns);
    await kube.grant(ns, 'workloads', rbacRules('temporal-canary-workloads'));
    await kube.grant(ns, 'istio', rbacRules('temporal-canary-istio'));
    const report = await unchanged(ns, () =>
      preflight('example 001, no DestinationRule', restrictedWorker, example001(ns)),
    );
    expect(report.findings).toHaveLength(1);
    const finding = only(
      report,
      { area: 'object', cause: 'input', level: 'refuse' },
      `subsets "stable" and "canary" of host "${HOST(ns)}"`,
      'no DestinationRule',
      'the worker may not list DestinationRules',
      '503',
      KEEP,
    );
    expect(finding.path).toBe('target.traffic.istio.destinationRule');
  });

  test('a DestinationRule with the stable subset only: refused, nothing would define "canary"', async () => {
    const ns = await namespace('ex001');
    await create(ns, [{ name: 'stable', labels: { version: 'v1' } }]);
    const report = await unchanged(ns, () =>
      preflight('example 001, stable subset only', adminWorker, example001(ns)),
    );
    expect(report.findings).toHaveLength(1);
    only(
      report,
      { area: 'object', cause: 'input', level: 'refuse' },
      'DestinationRule "api-gateway-subsets"',
      'defines no subset "canary"',
      KEEP,
    );
  });

  test('both subsets pinned to versions it does not manage: refused, stable would select nothing after promotion', async () => {
    const ns = await namespace('ex001');
    await create(ns, [
      { name: 'stable', labels: { version: 'v1' } },
      { name: 'canary', labels: { version: 'v2' } },
    ]);
    const report = await unchanged(ns, () =>
      preflight('example 001, pinned subsets', adminWorker, example001(ns)),
    );
    expect(report.findings).toHaveLength(1);
    only(
      report,
      { area: 'selector', cause: 'input', level: 'refuse' },
      'subset "stable" of DestinationRule "api-gateway-subsets"',
      'selects version=v1',
      'after promotion (they then carry version=v2)',
      KEEP,
    );
  });

  test('subsets that select by a role label stay right without the router: nothing to refuse', async () => {
    const ns = await namespace('ex001');
    await create(ns, [
      { name: 'stable', labels: { app: 'api-gateway' } },
      { name: 'canary', labels: { 'canary.temporal.io/role': 'canary' } },
    ]);
    const report = await unchanged(ns, () =>
      preflight('example 001, role-label subsets', adminWorker, example001(ns)),
    );
    expect(report.findings).toEqual([]);
  });

  test('naming the DestinationRule fixes it: the router keeps the subsets', async () => {
    const ns = await namespace('ex001');
    await create(ns, [{ name: 'stable', labels: { version: 'v1' } }]);
    const named = target({
      app: 'api-gateway',
      namespace: ns,
      workload: { name: 'api-gateway' },
      traffic: { istio: { virtualService: 'api-gateway', destinationRule: 'api-gateway-subsets' } },
    });
    const report = await unchanged(ns, () =>
      preflight('example 001, DestinationRule named', adminWorker, named),
    );
    expect(report.findings).toEqual([]);
  });
});

// --- example 004: NGINX without a canary Service -------------------------------------------------------------------

describe("example 004's NGINX target", () => {
  /** Example 004's target, on the primary Ingress the fixture makes (backend Service `api-gateway`). */
  async function example004(ns: string): Promise<Target> {
    const f = await createRolloutFixture(admin, 'nginx', ns, 'api-gateway');
    return target({
      ...f.target,
      traffic: { nginx: { ingress: 'api-gateway', canaryIngress: 'api-gateway-ingress-canary' } },
    });
  }

  test('no canary Service: refused before 5 % goes nowhere', async () => {
    const ns = await namespace('ex004');
    const t = await example004(ns);
    await admin.core.deleteNamespacedService({ namespace: ns, name: 'api-gateway-canary' });
    const report = await unchanged(ns, () => preflight('example 004, no canary Service', adminWorker, t));
    expect(report.findings).toHaveLength(1);
    const finding = only(
      report,
      { area: 'object', cause: 'input', level: 'refuse' },
      `Service "api-gateway-canary" in namespace "${ns}" does not exist`,
      "the canary's share of traffic",
      'canary.temporal.io/role=canary',
      'traffic.nginx.canaryService',
    );
    expect(finding.path).toBe('target.traffic.nginx.canaryService');
  });

  test('a canary Service that selects stable’s pods too: a selector refusal', async () => {
    const ns = await namespace('ex004');
    const t = await example004(ns);
    await admin.core.patchNamespacedService({
      namespace: ns,
      name: 'api-gateway-canary',
      body: [{ op: 'replace', path: '/spec/selector', value: { app: 'api-gateway' } }],
    });
    const report = await unchanged(ns, () =>
      preflight('example 004, canary Service selects stable', adminWorker, t),
    );
    expect(report.findings).toHaveLength(1);
    only(
      report,
      { area: 'selector', cause: 'input', level: 'refuse' },
      'Service "api-gateway-canary"',
      "stable's pods (app=api-gateway, version=v1) match too",
    );
  });

  test('a primary backend Service pinned to the stable version: refused, it would select nothing after promotion', async () => {
    const ns = await namespace('ex004');
    const t = await example004(ns);
    await admin.core.patchNamespacedService({
      namespace: ns,
      name: 'api-gateway',
      body: [{ op: 'replace', path: '/spec/selector', value: { app: 'api-gateway', version: 'v1' } }],
    });
    const report = await unchanged(ns, () => preflight('example 004, stable Service pinned', adminWorker, t));
    expect(report.findings).toHaveLength(1);
    only(report, { area: 'selector', cause: 'input' }, 'Service "api-gateway"', 'after promotion');
  });

  test('with the shipped roles (deploy/rbac.yaml), the missing canary Service is refused', async () => {
    const ns = await namespace('ex004');
    const t = await example004(ns);
    await admin.core.deleteNamespacedService({ namespace: ns, name: 'api-gateway-canary' });
    await kube.grant(ns, 'workloads', rbacRules('temporal-canary-workloads'));
    await kube.grant(ns, 'nginx', rbacRules('temporal-canary-nginx'));
    const report = await unchanged(ns, () => preflight('example 004, shipped roles', restrictedWorker, t));
    only(
      report,
      { area: 'object', cause: 'input', level: 'refuse', path: 'target.traffic.nginx.canaryService' },
      'Service "api-gateway-canary"',
      'does not exist',
    );
  });

  test('a role that cannot read Services: a warning, not a refusal', async () => {
    const ns = await namespace('ex004');
    const t = await example004(ns);
    await admin.core.deleteNamespacedService({ namespace: ns, name: 'api-gateway-canary' });
    await kube.grant(ns, 'workloads', rbacRules('temporal-canary-workloads'));
    await kube.grant(
      ns,
      'nginx',
      rbacRules('temporal-canary-nginx').filter((r) => !(r.resources ?? []).includes('services')),
    );
    const report = await unchanged(ns, () => preflight('example 004, no get services', restrictedWorker, t));
    expect(refusals(report)).toEqual([]);
    only(
      report,
      { area: 'access', cause: 'infrastructure', level: 'warn' },
      `may not get services in namespace "${ns}"`,
      'temporal-canary-nginx',
    );
  });
});

// --- healthy targets -----------------------------------------------------------------------------------------------

describe('a healthy target of each router: no findings', () => {
  test.each(['istio', 'nginx', 'gatewayAPI'] as const)('%s', async (router) => {
    const ns = await namespace(`healthy-${router.toLowerCase()}`);
    const f = await createRolloutFixture(admin, router, ns, 'shop');
    const report = await unchanged(ns, () => preflight(`healthy ${router}`, adminWorker, target(f.target)));
    expect(report.findings).toEqual([]);
    expect(report.stableVersion).toBe('v1');
    expect(report.tookMs).toBeLessThan(3_000);
  });

  test('smi (no TrafficSplit yet: setup creates it)', async () => {
    const ns = await namespace('healthy-smi');
    await createStableWorkload(admin, ns, 'shop');
    await admin.core.createNamespacedService({
      namespace: ns,
      body: { metadata: { name: 'shop-stable' }, spec: { selector: { app: 'shop' }, ports: [{ port: 80 }] } },
    });
    const t = target({ app: 'shop', namespace: ns, workload: { name: 'shop' }, traffic: { smi: {} } });
    const report = await unchanged(ns, () => preflight('healthy smi', adminWorker, t));
    expect(report.findings).toEqual([]);
    expect(report.tookMs).toBeLessThan(3_000);
  });

  test('replicas', async () => {
    const ns = await namespace('healthy-replicas');
    await createStableWorkload(admin, ns, 'shop');
    const t = target({ app: 'shop', namespace: ns, workload: { name: 'shop' }, traffic: { replicas: {} } });
    const report = await unchanged(ns, () => preflight('healthy replicas', adminWorker, t));
    expect(report.findings).toEqual([]);
    expect(report.tookMs).toBeLessThan(3_000);
  });

  test("the workload manager gives the canary's pods the labels the canary Deployment will carry", async () => {
    const ns = await namespace('pods');
    const f = await createRolloutFixture(admin, 'istio', ns, 'shop');
    const manager = new DeploymentWorkloadManager(admin, target(f.target));
    const w = await unchanged(ns, () => manager.preflight(VERSION));
    expect(w.findings).toEqual([]);
    expect(w.stableVersion).toBe('v1');
    expect(w.pods).toEqual({
      stable: { app: 'shop', version: 'v1' },
      canary: { app: 'shop', version: 'v2', 'canary.temporal.io/role': 'canary' },
    });
  });
});
