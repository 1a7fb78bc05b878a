// The shipped manifests in deploy/ against a real kube-apiserver: the worker's ServiceAccount and RBAC are applied as
// deploy/rbac.yaml documents them, the worker then acts with a real ServiceAccount token, and every router and the
// Deployment workload manager run a whole rollout with nothing but their own ClusterRole bound. Access reviews made
// as that account show that each role allows exactly what its code calls (and no Secrets anywhere). The worker
// Deployment and the search-attribute Job are validated by the API server (dry run), their pods by Pod Security.
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  AuthenticationV1Api,
  AuthorizationV1Api,
  CoreV1Api,
  KubeConfig,
  KubernetesObjectApi,
  type KubernetesObject,
  type V1Deployment,
  type V1Job,
  type V1PodSpec,
} from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';
import { providerConfigFromEnv } from '../../activities/factory';
import { MERGE_PATCH, kubeClients, type KubeClients } from '../../activities/kube/client';
import { GatewayApiRouter, HTTP_ROUTE } from '../../activities/traffic/gateway-api';
import { IstioRouter } from '../../activities/traffic/istio';
import { NginxRouter } from '../../activities/traffic/nginx';
import { ReplicaRatioRouter } from '../../activities/traffic/replicas';
import { SmiRouter } from '../../activities/traffic/smi';
import type { TrafficRouter } from '../../activities/types';
import { DeploymentWorkloadManager, ROLE_LABEL } from '../../activities/workloads/deployment';
import { loadWorkerConfig, loadWorkerProcessConfig, providerDefaultProblems } from '../../worker/config';
import { DEFAULT_TASK_QUEUE, SEARCH_ATTRIBUTES } from '../../workflows/api';
import { parseDuration } from '../../workflows/duration';
import { validateTarget, type Target } from '../../workflows/target';
import { startKubeServer, statusOf, type KubeServer } from '../../harness/kube';
import { startDeploymentSimulator, type DeploymentSimulator } from '../../harness/kube-controller';

jest.setTimeout(300_000);

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const DEPLOY = path.resolve(__dirname, '..', '..', 'deploy');
// The namespaces the manifests are written for (rbac.yaml's header says to replace them).
const WORKER_NS_IN_MANIFESTS = 'temporal-canary';
const APP_NS_IN_MANIFESTS = 'app-namespace';
// The harness starts kube-apiserver with --service-account-issuer and no --api-audiences: the issuer is the audience.
const AUDIENCE = 'https://kubernetes.default.svc.cluster.local';

const ROLES = ['istio', 'nginx', 'gateway-api', 'smi', 'replicas', 'workloads', 'sweeper', 'hooks'] as const;
type Role = (typeof ROLES)[number];
const roleName = (role: Role): string => `temporal-canary-${role}`;

/** Exactly what each role allows, as `group/resource:verb`: the calls its code makes (deploy/README.md says why). */
const EXPECTED: Record<Role, string[]> = {
  istio: [
    'networking.istio.io/virtualservices:get',
    'networking.istio.io/virtualservices:patch',
    'networking.istio.io/destinationrules:get',
    'networking.istio.io/destinationrules:patch',
  ],
  nginx: [
    'networking.k8s.io/ingresses:get',
    'networking.k8s.io/ingresses:create',
    'networking.k8s.io/ingresses:patch',
    'networking.k8s.io/ingresses:delete',
    'services:get',
  ],
  'gateway-api': [
    'gateway.networking.k8s.io/httproutes:get',
    'gateway.networking.k8s.io/httproutes:patch',
    'services:get',
  ],
  smi: [
    'split.smi-spec.io/trafficsplits:get',
    'split.smi-spec.io/trafficsplits:create',
    'split.smi-spec.io/trafficsplits:patch',
    'split.smi-spec.io/trafficsplits:delete',
    'services:get',
  ],
  replicas: ['apps/deployments:get', 'apps/deployments:patch', 'apps/deployments/scale:patch'],
  workloads: [
    'apps/deployments:get',
    'apps/deployments:create',
    'apps/deployments:patch',
    'apps/deployments:delete',
    'apps/deployments/scale:patch',
  ],
  // The sweeper lists the namespace's canaries (activities/sweep.ts); undoing uses the other roles.
  sweeper: ['apps/deployments:list'],
  hooks: [
    'batch/jobs:get',
    'batch/jobs:create',
    'batch/jobs:delete',
    'pods:list',
    'pods/log:get',
    'configmaps:get',
  ],
};

const VERBS = ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete', 'deletecollection'];
/** Every verb is asked for each of these: what the roles grant, and what a worker must never touch. */
const PROBES: Array<[group: string, resource: string]> = [
  ['networking.istio.io', 'virtualservices'],
  ['networking.istio.io', 'destinationrules'],
  ['networking.istio.io', 'gateways'],
  ['networking.istio.io', 'serviceentries'],
  ['networking.k8s.io', 'ingresses'],
  ['networking.k8s.io', 'ingresses/status'],
  ['networking.k8s.io', 'networkpolicies'],
  ['gateway.networking.k8s.io', 'httproutes'],
  ['gateway.networking.k8s.io', 'httproutes/status'],
  ['gateway.networking.k8s.io', 'gateways'],
  ['split.smi-spec.io', 'trafficsplits'],
  ['apps', 'deployments'],
  ['apps', 'deployments/scale'],
  ['apps', 'deployments/status'],
  ['apps', 'replicasets'],
  ['apps', 'statefulsets'],
  ['autoscaling', 'horizontalpodautoscalers'],
  ['', 'secrets'],
  ['', 'configmaps'],
  ['', 'pods'],
  ['', 'pods/exec'],
  ['', 'pods/log'],
  ['batch', 'jobs'],
  ['batch', 'cronjobs'],
  ['', 'services'],
  ['', 'serviceaccounts'],
  ['', 'serviceaccounts/token'],
  ['', 'events'],
  ['rbac.authorization.k8s.io', 'roles'],
  ['rbac.authorization.k8s.io', 'rolebindings'],
];
/** Escalation verbs, asked once each: always denied. */
const ESCALATIONS: Array<[group: string, resource: string, verb: string]> = [
  ['rbac.authorization.k8s.io', 'clusterroles', 'bind'],
  ['rbac.authorization.k8s.io', 'roles', 'escalate'],
  ['', 'serviceaccounts', 'impersonate'],
  ['', 'users', 'impersonate'],
  ['', 'groups', 'impersonate'],
];

// --- manifests -----------------------------------------------------------------------------------------------------

function manifests(file: string): Obj[] {
  const text = fs.readFileSync(path.join(DEPLOY, file), 'utf8');
  return parseAllDocuments(text)
    .map((doc) => {
      if (doc.errors.length > 0) throw new Error(`deploy/${file}: ${doc.errors[0].message}`);
      return doc.toJS() as Obj | null;
    })
    .filter((o): o is Obj => o !== null);
}

/** A copy with the manifests' namespaces replaced as rbac.yaml documents it; any other namespace is an error. */
function placed<T extends Obj>(obj: T, namespaces: Record<string, string>): T {
  const copy = structuredClone(obj);
  const map = (ns: string, where: string): string => {
    if (!(ns in namespaces)) {
      throw new Error(
        `${obj.kind} "${obj.metadata?.name}" has ${where} "${ns}", not one of the documented ones`,
      );
    }
    return namespaces[ns];
  };
  if (copy.metadata?.namespace !== undefined)
    copy.metadata.namespace = map(copy.metadata.namespace, 'namespace');
  for (const s of (copy.subjects ?? []) as Obj[]) {
    if (s.namespace !== undefined) s.namespace = map(s.namespace, 'subject namespace');
  }
  return copy;
}

/** Whether `live` carries every field of `wanted` (the server may add defaults, never drop what we wrote). */
function missingFields(live: unknown, wanted: unknown, at = ''): string[] {
  if (Array.isArray(wanted)) {
    if (!Array.isArray(live) || live.length !== wanted.length) return [at || '(root)'];
    return wanted.flatMap((w, i) => missingFields(live[i], w, `${at}[${i}]`));
  }
  if (wanted && typeof wanted === 'object') {
    if (!live || typeof live !== 'object') return [at || '(root)'];
    return Object.entries(wanted).flatMap(([k, w]) =>
      missingFields((live as Obj)[k], w, at ? `${at}.${k}` : k),
    );
  }
  return live === wanted ? [] : [`${at} (${JSON.stringify(live)} instead of ${JSON.stringify(wanted)})`];
}

const plain = <T>(v: T): T => JSON.parse(JSON.stringify(v)) as T;

function envOf(spec: V1PodSpec, container = 0): Record<string, string> {
  const env: Record<string, string> = {};
  for (const e of spec.containers[container].env ?? []) if (e.value !== undefined) env[e.name] = e.value;
  return env;
}

// --- the server, the namespaces, the worker's identity -------------------------------------------------------------

let kube: KubeServer;
let adminKc: KubeConfig;
let admin: KubeClients;
let objects: KubernetesObjectApi;
let workerKc: KubeConfig;
let worker: KubeClients;
let workerAuthz: AuthorizationV1Api;
let token: string;
const simulators: DeploymentSimulator[] = [];

const WORKER_NS = 'canary-system';
const APP_NS = 'apps';
const UNBOUND_NS = 'unbound';
const only = (role: Role): string => `only-${role}`;

const serviceAccount = manifests('serviceaccount.yaml').find((o) => o.kind === 'ServiceAccount')!;
const rbac = manifests('rbac.yaml');

async function apply(obj: Obj, dryRun?: 'All'): Promise<KubernetesObject> {
  return objects.create(obj as KubernetesObject, undefined, dryRun);
}

async function can(namespace: string, group: string, resource: string, verb: string): Promise<boolean> {
  const [res, subresource] = resource.split('/', 2);
  const review = await workerAuthz.createSelfSubjectAccessReview({
    body: {
      spec: {
        resourceAttributes: {
          ...(namespace ? { namespace } : {}),
          group,
          resource: res,
          ...(subresource ? { subresource } : {}),
          verb,
        },
      },
    },
  });
  return review.status?.allowed === true;
}

/** Everything in PROBES × VERBS (and ESCALATIONS) the worker may do in a namespace ('' for cluster-wide). */
async function allowedIn(namespace: string): Promise<string[]> {
  const checks: Array<[string, string, string]> = [
    ...PROBES.flatMap(([g, r]) => VERBS.map((v) => [g, r, v] as [string, string, string])),
    ...ESCALATIONS,
  ];
  const allowed: string[] = [];
  for (let i = 0; i < checks.length; i += 40) {
    const batch = checks.slice(i, i + 40);
    const answers = await Promise.all(batch.map(([g, r, v]) => can(namespace, g, r, v)));
    batch.forEach(([g, r, v], j) => {
      if (answers[j]) allowed.push(`${g ? `${g}/` : ''}${r}:${v}`);
    });
  }
  return allowed.sort();
}

const sorted = (list: string[]): string[] => [...new Set(list)].sort();

/** What a ClusterRole of rbac.yaml grants, among PROBES × VERBS, as `group/resource:verb`. */
function grantsOf(name: string): string[] {
  const role = rbac.find((o) => o.kind === 'ClusterRole' && o.metadata.name === name);
  if (!role) throw new Error(`deploy/rbac.yaml has no ClusterRole ${name}`);
  return ((role.rules ?? []) as Obj[]).flatMap((r) =>
    ((r.apiGroups ?? []) as string[]).flatMap((g) =>
      ((r.resources ?? []) as string[]).flatMap((res) =>
        ((r.verbs ?? []) as string[])
          .filter((v) => VERBS.includes(v) && PROBES.some(([pg, pr]) => pg === g && pr === res))
          .map((v) => `${g ? `${g}/` : ''}${res}:${v}`),
      ),
    ),
  );
}

async function waitUntil(what: string, ms: number, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

beforeAll(async () => {
  kube = await startKubeServer();
  adminKc = kube.kubeConfig('admin');
  admin = kubeClients(adminKc);
  objects = KubernetesObjectApi.makeApiClient(adminKc);

  // The worker's namespace from namespace.yaml (with its Pod Security label), under another name.
  const namespace = manifests('namespace.yaml').find((o) => o.kind === 'Namespace')!;
  expect(namespace.metadata.name).toBe(WORKER_NS_IN_MANIFESTS);
  await apply({ ...namespace, metadata: { ...namespace.metadata, name: WORKER_NS } });
  for (const ns of [APP_NS, UNBOUND_NS, ...ROLES.map(only)]) await kube.createNamespace(ns);

  // serviceaccount.yaml and rbac.yaml as documented: ClusterRoles as they are, the bindings into the app namespace.
  const into = { [WORKER_NS_IN_MANIFESTS]: WORKER_NS, [APP_NS_IN_MANIFESTS]: APP_NS };
  for (const obj of [...manifests('serviceaccount.yaml'), ...rbac]) await apply(placed(obj, into));
  // And each role's binding alone in a namespace of its own, so each role is tried by itself.
  for (const role of ROLES) {
    const binding = rbac.find((o) => o.kind === 'RoleBinding' && o.roleRef?.name === roleName(role));
    if (!binding) throw new Error(`deploy/rbac.yaml has no RoleBinding for ${roleName(role)}`);
    await apply(placed(binding, { [WORKER_NS_IN_MANIFESTS]: WORKER_NS, [APP_NS_IN_MANIFESTS]: only(role) }));
  }

  // A real ServiceAccount token (TokenRequest API), as the kubelet projects into the worker's pod.
  const request = await admin.core.createNamespacedServiceAccountToken({
    name: serviceAccount.metadata.name,
    namespace: WORKER_NS,
    body: { spec: { audiences: [AUDIENCE], expirationSeconds: 3600 } },
  });
  token = request.status!.token;
  workerKc = new KubeConfig();
  workerKc.loadFromOptions({
    clusters: [
      {
        name: 'canary-test',
        server: kube.url,
        caData: Buffer.from(kube.caPem).toString('base64'),
        skipTLSVerify: false,
      },
    ],
    users: [{ name: 'temporal-canary-worker', token }],
    contexts: [{ name: 'worker', cluster: 'canary-test', user: 'temporal-canary-worker' }],
    currentContext: 'worker',
  });
  worker = kubeClients(workerKc);
  workerAuthz = workerKc.makeApiClient(AuthorizationV1Api);

  // The RBAC authorizer works from a cache: wait until it applies every binding (what the manifest's rules say,
  // so a role that grants too little fails its own tests below instead of this wait).
  await waitUntil('the RBAC bindings to apply', 30_000, async () => {
    for (const role of ROLES) {
      const allowed = new Set(await allowedIn(only(role)));
      if (!grantsOf(roleName(role)).every((a) => allowed.has(a))) return false;
    }
    return true;
  });
});

afterEach(async () => {
  await Promise.all(simulators.splice(0).map((s) => s.stop()));
});

afterAll(async () => {
  await kube?.stop();
});

// --- the manifests themselves --------------------------------------------------------------------------------------

describe('deploy/rbac.yaml', () => {
  test('has one ClusterRole per router and one for workloads, each bound by a RoleBinding to the worker', () => {
    const roles = rbac.filter((o) => o.kind === 'ClusterRole').map((o) => o.metadata.name as string);
    expect(roles.sort()).toEqual(ROLES.map(roleName).sort());
    expect(rbac.some((o) => o.kind === 'ClusterRoleBinding')).toBe(false);
    const bindings = rbac.filter((o) => o.kind === 'RoleBinding');
    expect(bindings.map((b) => b.roleRef.name as string).sort()).toEqual(ROLES.map(roleName).sort());
    for (const b of bindings) {
      expect(b.metadata.namespace).toBe(APP_NS_IN_MANIFESTS);
      expect(b.roleRef).toEqual({
        apiGroup: 'rbac.authorization.k8s.io',
        kind: 'ClusterRole',
        name: b.roleRef.name,
      });
      expect(b.subjects).toEqual([
        {
          kind: 'ServiceAccount',
          name: serviceAccount.metadata.name,
          namespace: serviceAccount.metadata.namespace,
        },
      ]);
    }
    expect(serviceAccount.metadata.namespace).toBe(WORKER_NS_IN_MANIFESTS);
  });

  test('the worker acts as its ServiceAccount, with a token for the API server audience', async () => {
    const review = await workerKc.makeApiClient(AuthenticationV1Api).createSelfSubjectReview({ body: {} });
    expect(review.status?.userInfo?.username).toBe(
      `system:serviceaccount:${WORKER_NS}:${serviceAccount.metadata.name}`,
    );
    expect(review.status?.userInfo?.groups).toEqual(
      expect.arrayContaining(['system:serviceaccounts', `system:serviceaccounts:${WORKER_NS}`]),
    );
  });
});

// --- each router and the workload manager, with only its own role bound ----------------------------------------------

function target(namespace: string, traffic: object, workload: object = { name: 'checkout' }): Target {
  const v = validateTarget({ app: 'checkout', namespace, traffic, workload });
  if (!v.ok) throw new Error(JSON.stringify(v.problems));
  return v.target;
}

/** setup → 10 % → 100 % → 0 % → teardown, each weight read back. */
async function walk(router: TrafficRouter): Promise<void> {
  await router.setup({ stable: '1.0', canary: '2.0' });
  for (const weight of [10, 100, 0]) {
    await router.setWeight(weight);
    await expect(router.verifyWeight(weight)).resolves.toMatchObject({ verified: true });
  }
  await router.teardown();
}

async function exists(read: () => Promise<unknown>): Promise<boolean> {
  try {
    await read();
    return true;
  } catch (err) {
    if (statusOf(err) === 404) return false;
    throw err;
  }
}

function stableDeployment(replicas: number): V1Deployment {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'checkout', labels: { app: 'checkout' } },
    spec: {
      replicas,
      selector: { matchLabels: { app: 'checkout' } },
      template: {
        metadata: { labels: { app: 'checkout', version: '1.0' } },
        spec: { containers: [{ name: 'app', image: 'registry.example:5000/shop/checkout:1.0' }] },
      },
    },
  };
}

describe('each role alone is enough for its code', () => {
  test('istio: VirtualService and DestinationRule', async () => {
    const ns = only('istio');
    const istio = { group: 'networking.istio.io', version: 'v1', namespace: ns };
    const dest = (subset: string, weight: number) => ({ destination: { host: 'checkout', subset }, weight });
    await admin.custom.createNamespacedCustomObject({
      ...istio,
      plural: 'virtualservices',
      body: {
        apiVersion: 'networking.istio.io/v1',
        kind: 'VirtualService',
        metadata: { name: 'checkout' },
        spec: { hosts: ['checkout'], http: [{ name: 'primary', route: [dest('stable', 100)] }] },
      },
    });
    await admin.custom.createNamespacedCustomObject({
      ...istio,
      plural: 'destinationrules',
      body: {
        apiVersion: 'networking.istio.io/v1',
        kind: 'DestinationRule',
        metadata: { name: 'checkout' },
        spec: { host: 'checkout', subsets: [{ name: 'stable', labels: { version: '1.0' } }] },
      },
    });
    const read = async (plural: string) =>
      (await admin.custom.getNamespacedCustomObject({ ...istio, plural, name: 'checkout' })) as Obj;
    const before = [(await read('virtualservices')).spec, (await read('destinationrules')).spec];

    const router = new IstioRouter(
      worker,
      target(ns, {
        istio: { routes: ['primary'], destinationRule: 'checkout', header: { name: 'x-canary' } },
      }),
    );
    await router.setup({ stable: '1.0', canary: '2.0' });
    expect((await read('destinationrules')).spec.subsets).toHaveLength(2);
    await router.setWeight(10);
    expect((await read('virtualservices')).spec.http[1].route).toEqual([
      dest('stable', 90),
      dest('canary', 10),
    ]);
    await router.setWeight(100);
    await router.setWeight(0);
    await expect(router.verifyWeight(0)).resolves.toEqual({ verified: true, weight: 0 });
    await router.teardown();
    expect([(await read('virtualservices')).spec, (await read('destinationrules')).spec]).toEqual(before);
  });

  test('nginx: creates, weights and deletes the canary Ingress', async () => {
    const ns = only('nginx');
    await admin.networking.createNamespacedIngress({
      namespace: ns,
      body: {
        metadata: { name: 'checkout' },
        spec: {
          ingressClassName: 'nginx',
          rules: [
            {
              host: 'shop.example.com',
              http: {
                paths: [
                  {
                    path: '/',
                    pathType: 'Prefix',
                    backend: { service: { name: 'checkout', port: { number: 80 } } },
                  },
                ],
              },
            },
          ],
        },
      },
    });
    const readCanary = () =>
      admin.networking.readNamespacedIngress({ namespace: ns, name: 'checkout-canary' });
    const router = new NginxRouter(worker, target(ns, { nginx: {} }));
    await router.setup({ canary: '2.0' });
    await router.setWeight(10);
    expect((await readCanary()).metadata?.annotations?.['nginx.ingress.kubernetes.io/canary-weight']).toBe(
      '10',
    );
    await router.setWeight(100);
    await router.setWeight(0);
    await router.teardown();
    expect(await exists(readCanary)).toBe(false);
  });

  test('gateway-api: HTTPRoute backendRefs', async () => {
    const ns = only('gateway-api');
    await admin.custom.createNamespacedCustomObject({
      ...HTTP_ROUTE,
      namespace: ns,
      body: {
        apiVersion: 'gateway.networking.k8s.io/v1',
        kind: 'HTTPRoute',
        metadata: { name: 'checkout' },
        spec: {
          parentRefs: [{ name: 'public' }],
          rules: [{ backendRefs: [{ name: 'checkout', port: 80 }] }],
        },
      },
    });
    const read = async () =>
      (await admin.custom.getNamespacedCustomObject({
        ...HTTP_ROUTE,
        namespace: ns,
        name: 'checkout',
      })) as Obj;
    const before = (await read()).spec;
    await walk(new GatewayApiRouter(worker, target(ns, { gatewayAPI: { header: { name: 'x-canary' } } })));
    expect((await read()).spec).toEqual(before);
  });

  test('smi: creates the TrafficSplit and deletes it again', async () => {
    const ns = only('smi');
    const split = { group: 'split.smi-spec.io', version: 'v1alpha2', plural: 'trafficsplits', namespace: ns };
    const router = new SmiRouter(worker, target(ns, { smi: {} }));
    await router.setup({ canary: '2.0' });
    await router.setWeight(10);
    const live = (await admin.custom.getNamespacedCustomObject({ ...split, name: 'checkout' })) as Obj;
    expect(live.spec.backends).toEqual([
      { service: 'checkout-stable', weight: 90 },
      { service: 'checkout-canary', weight: 10 },
    ]);
    await router.setWeight(100);
    await router.setWeight(0);
    await router.teardown();
    expect(await exists(() => admin.custom.getNamespacedCustomObject({ ...split, name: 'checkout' }))).toBe(
      false,
    );
  });

  test('replicas: scales stable and canary through deployments/scale', async () => {
    const ns = only('replicas');
    await admin.apps.createNamespacedDeployment({ namespace: ns, body: stableDeployment(10) });
    const canary = stableDeployment(0);
    canary.metadata = { name: 'checkout-canary', labels: { app: 'checkout', [ROLE_LABEL]: 'canary' } };
    canary.spec!.selector = { matchLabels: { app: 'checkout', version: '2.0', [ROLE_LABEL]: 'canary' } };
    canary.spec!.template.metadata!.labels = { app: 'checkout', version: '2.0', [ROLE_LABEL]: 'canary' };
    await admin.apps.createNamespacedDeployment({ namespace: ns, body: canary });
    const replicas = async () =>
      Promise.all(
        ['checkout', 'checkout-canary'].map(
          async (name) => (await admin.apps.readNamespacedDeployment({ namespace: ns, name })).spec?.replicas,
        ),
      );
    const router = new ReplicaRatioRouter(worker, target(ns, { replicas: {} }));
    await router.setup({ canary: '2.0' });
    await router.setWeight(10);
    expect(await replicas()).toEqual([9, 1]);
    await router.setWeight(100);
    expect(await replicas()).toEqual([0, 10]);
    await router.setWeight(0);
    await router.teardown();
    expect(await replicas()).toEqual([10, 0]);
  });

  test('workloads: canary Deployment created, replaced, re-created, promoted, scaled and removed', async () => {
    const ns = only('workloads');
    await admin.apps.createNamespacedDeployment({ namespace: ns, body: stableDeployment(3) });
    simulators.push(startDeploymentSimulator(adminKc, ns, { readyAfterMs: 200 }));
    const read = (name: string) => admin.apps.readNamespacedDeployment({ namespace: ns, name });
    const manager = new DeploymentWorkloadManager(
      worker,
      target(ns, { istio: {} }, { name: 'checkout', progressDeadline: '30s' }),
      { pollMs: 50, stableCapacityWaitMs: 20_000 },
    );

    await expect(manager.ensureCanary('2.0')).resolves.toEqual({ stableVersion: '1.0' }); // create
    // The same version with another image: patched in place.
    await manager.ensureCanary('2.0', 'registry.example:5000/shop/checkout:2.0-rc2');
    expect((await read('checkout-canary')).spec?.template.spec?.containers[0].image).toBe(
      'registry.example:5000/shop/checkout:2.0-rc2',
    );
    // Another version: the selector changes, so the canary is deleted and created again.
    const uid = (await read('checkout-canary')).metadata?.uid;
    await manager.ensureCanary('2.1');
    expect((await read('checkout-canary')).metadata?.uid).not.toBe(uid);

    await manager.promoteStable('2.1'); // patch
    expect((await read('checkout')).spec?.template.spec?.containers[0].image).toBe(
      'registry.example:5000/shop/checkout:2.1',
    );
    // An autoscaler shrank stable meanwhile: its capacity comes back through deployments/scale.
    await admin.apps.patchNamespacedDeploymentScale(
      { namespace: ns, name: 'checkout', body: { spec: { replicas: 1 } } },
      MERGE_PATCH,
    );
    await expect(manager.ensureStableCapacity()).resolves.toMatch(/scaled back to 3, available 3/);
    await manager.scaleDownCanary();
    expect((await read('checkout-canary')).spec?.replicas).toBe(0);
    await manager.cleanupCanary();
    expect(await exists(() => read('checkout-canary'))).toBe(false);
  });
});

// --- least privilege -------------------------------------------------------------------------------------------------

describe('least privilege', () => {
  test.each(ROLES)('%s: the role allows exactly what its code calls, nothing else', async (role) => {
    expect(await allowedIn(only(role))).toEqual(sorted(EXPECTED[role]));
  });

  test('the example namespace with every binding allows the union, and nothing beyond it', async () => {
    expect(await allowedIn(APP_NS)).toEqual(sorted(ROLES.flatMap((r) => EXPECTED[r])));
  });

  test('nothing at all in namespaces without a binding, its own included, nor cluster-wide', async () => {
    for (const ns of [UNBOUND_NS, WORKER_NS, '']) expect(await allowedIn(ns)).toEqual([]);
  });

  test('examples: no delete or create on VirtualServices, no create on HTTPRoutes, no update on Ingresses', async () => {
    expect(await can(only('istio'), 'networking.istio.io', 'virtualservices', 'delete')).toBe(false);
    expect(await can(only('istio'), 'networking.istio.io', 'virtualservices', 'create')).toBe(false);
    expect(await can(only('gateway-api'), 'gateway.networking.k8s.io', 'httproutes', 'create')).toBe(false);
    expect(await can(only('gateway-api'), 'gateway.networking.k8s.io', 'httproutes', 'delete')).toBe(false);
    expect(await can(only('nginx'), 'networking.k8s.io', 'ingresses', 'update')).toBe(false);
    expect(await can(only('replicas'), 'apps', 'deployments', 'create')).toBe(false);
    expect(await can(only('workloads'), 'apps', 'deployments/scale', 'update')).toBe(false);
  });

  test('the worker cannot read Secrets at all', async () => {
    await admin.core.createNamespacedSecret({
      namespace: APP_NS,
      body: { metadata: { name: 'checkout-db' }, stringData: { password: 'hunter2' } },
    });
    const core = workerKc.makeApiClient(CoreV1Api);
    const status = async (call: Promise<unknown>) => {
      try {
        await call;
        return 200;
      } catch (err) {
        return statusOf(err);
      }
    };
    expect(await status(core.readNamespacedSecret({ namespace: APP_NS, name: 'checkout-db' }))).toBe(403);
    expect(await status(core.listNamespacedSecret({ namespace: APP_NS }))).toBe(403);
    expect(await status(core.listSecretForAllNamespaces())).toBe(403);
    for (const ns of [APP_NS, WORKER_NS, UNBOUND_NS, '', ...ROLES.map(only)]) {
      for (const verb of ['get', 'list', 'watch']) expect(await can(ns, '', 'secrets', verb)).toBe(false);
    }
  });

  test("API discovery (the Istio router's served-version lookup) needs no grant of ours", async () => {
    const review = await workerAuthz.createSelfSubjectAccessReview({
      body: { spec: { nonResourceAttributes: { path: '/apis/networking.istio.io/v1', verb: 'get' } } },
    });
    expect(review.status?.allowed).toBe(true);
    expect(rbac.flatMap((o) => (o.rules ?? []) as Obj[]).some((r) => r.nonResourceURLs)).toBe(false);
  });
});

// --- the worker Deployment and the search-attribute Job -------------------------------------------------------------

describe('deploy/worker.yaml and deploy/search-attributes.yaml', () => {
  const into = { [WORKER_NS_IN_MANIFESTS]: WORKER_NS };

  /** The API server validates the object (dry run); nothing we wrote may be dropped or pruned on the way. */
  async function dryRun(obj: Obj): Promise<void> {
    const created = plain(await apply(obj, 'All'));
    expect(missingFields(created, obj)).toEqual([]);
  }

  /** A pod from the template, dry run in the worker's namespace: Pod Security (restricted) admits it or says why. */
  async function podAdmitted(name: string, spec: V1PodSpec): Promise<void> {
    await admin.core.createNamespacedPod({
      namespace: WORKER_NS,
      body: { metadata: { name }, spec },
      dryRun: 'All',
    });
  }

  test('the worker Deployment is a valid object, its pod passes the restricted Pod Security Standard', async () => {
    const [deployment, ...rest] = manifests('worker.yaml');
    expect(rest).toEqual([]);
    expect(deployment.kind).toBe('Deployment');
    await dryRun(placed(deployment, into));
    const spec = (deployment as V1Deployment).spec!.template.spec!;
    await podAdmitted('worker-pod', spec);

    expect(spec.serviceAccountName).toBe(serviceAccount.metadata.name);
    expect(spec.containers[0].image).toBe('temporal-canary:latest');
    expect(spec.containers[0].securityContext).toMatchObject({
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
    });
    expect(spec.securityContext).toMatchObject({ runAsNonRoot: true });
    expect(spec.containers[0].resources?.requests).toBeDefined();
    const env = envOf(spec);
    // The worker accepts its configuration as written, and the kubelet's SIGKILL comes after the shutdown grace.
    const config = loadWorkerConfig(env);
    expect(config.taskQueue).toBe(DEFAULT_TASK_QUEUE);
    // /metrics on the port the container declares.
    expect(loadWorkerProcessConfig(env).metrics).toEqual({ port: 9464, host: '0.0.0.0' });
    expect(spec.containers[0].ports).toEqual([{ name: 'metrics', containerPort: 9464, protocol: 'TCP' }]);
    expect(spec.terminationGracePeriodSeconds! * 1000).toBeGreaterThan(
      parseDuration(env.WORKER_SHUTDOWN_GRACE_TIME) + 10_000,
    );
    const providers = providerConfigFromEnv(env);
    expect(providers.router).toBe(env.CANARY_ROUTER);
    expect(providers.workloads).toBe('kubernetes');
    // Every provider default is named (a worker outside the demo refuses the local stack's).
    expect(providerDefaultProblems(env)).toEqual([]);
    expect(providers.metrics).toBe('prometheus');
  });

  test('the search-attribute Job is a valid object and registers every attribute the workflow writes', async () => {
    const [job, ...rest] = manifests('search-attributes.yaml');
    expect(rest).toEqual([]);
    expect(job.kind).toBe('Job');
    await dryRun(placed(job, into));
    const spec = (job as V1Job).spec!.template.spec!;
    await podAdmitted('search-attributes-pod', spec);

    expect(spec.containers[0].image).toMatch(/^temporalio\/admin-tools:/);
    const script = [...(spec.containers[0].command ?? []), ...(spec.containers[0].args ?? [])].join(' ');
    for (const [name, type] of SEARCH_ATTRIBUTES) expect(script).toContain(`${name}:${type}`);
    expect(script).toContain('temporal operator search-attribute create');
    // The same Temporal namespace as the worker's.
    const [deployment] = manifests('worker.yaml');
    const workerEnv = envOf((deployment as V1Deployment).spec!.template.spec!);
    expect(envOf(spec)).toMatchObject({
      TEMPORAL_ADDRESS: workerEnv.TEMPORAL_ADDRESS,
      TEMPORAL_NAMESPACE: workerEnv.TEMPORAL_NAMESPACE,
    });
  });
});
