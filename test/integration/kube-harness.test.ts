// The Kubernetes test harness itself: a real etcd + kube-apiserver on loopback, the admin and restricted identities,
// the Istio / Gateway API / SMI CRDs, and stopping both processes by pid.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  AppsV1Api,
  CoreV1Api,
  CustomObjectsApi,
  KubeConfig,
  type V1Deployment,
} from '@kubernetes/client-node';
import { KUBE_ASSETS_HINT, startKubeServer, statusOf, type KubeServer } from '../../harness/kube';

jest.setTimeout(180_000);

let kube: KubeServer;
const ns = 'harness-test';

beforeAll(async () => {
  kube = await startKubeServer();
  await kube.createNamespace(ns);
});

afterAll(async () => {
  await kube?.stop();
});

function deployment(name: string): V1Deployment {
  const labels = { app: name };
  return {
    metadata: { name, labels },
    spec: {
      replicas: 1,
      selector: { matchLabels: labels },
      template: { metadata: { labels }, spec: { containers: [{ name: 'app', image: 'example/app:v1' }] } },
    },
  };
}

/** The HTTP status the call fails with (the test fails if it succeeds). */
async function failureStatus(call: Promise<unknown>): Promise<number | undefined> {
  try {
    await call;
  } catch (err) {
    return statusOf(err);
  }
  throw new Error('expected the call to fail');
}

const trafficSplit = (name: string) => ({
  apiVersion: 'split.smi-spec.io/v1alpha2',
  kind: 'TrafficSplit',
  metadata: { name },
  spec: {
    service: 'checkout',
    backends: [
      { service: 'checkout-stable', weight: 95 },
      { service: 'checkout-canary', weight: 5 },
    ],
  },
});

test('reports the real version, not v0.0.0', () => {
  expect(kube.version).toBe('v1.34.4');
  expect(kube.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
  expect(kube.caPem).toContain('BEGIN CERTIFICATE');
});

test('createNamespace is idempotent', async () => {
  await expect(kube.createNamespace(ns)).resolves.toBe(ns);
  const core = kube.kubeConfig('admin').makeApiClient(CoreV1Api);
  const got = await core.readNamespace({ name: ns });
  expect(got.metadata?.name).toBe(ns);
});

test('the admin creates a Deployment', async () => {
  const apps = kube.kubeConfig('admin').makeApiClient(AppsV1Api);
  await apps.createNamespacedDeployment({ namespace: ns, body: deployment('checkout') });
  const got = await apps.readNamespacedDeployment({ namespace: ns, name: 'checkout' });
  expect(got.spec?.replicas).toBe(1);
});

test('Istio VirtualService, Gateway API HTTPRoute and SMI TrafficSplit can be created', async () => {
  const custom = kube.kubeConfig('admin').makeApiClient(CustomObjectsApi);
  await custom.createNamespacedCustomObject({
    group: 'networking.istio.io',
    version: 'v1',
    namespace: ns,
    plural: 'virtualservices',
    body: {
      apiVersion: 'networking.istio.io/v1',
      kind: 'VirtualService',
      metadata: { name: 'checkout' },
      spec: {
        hosts: ['checkout'],
        http: [
          {
            route: [
              { destination: { host: 'checkout', subset: 'stable' }, weight: 95 },
              { destination: { host: 'checkout', subset: 'canary' }, weight: 5 },
            ],
          },
        ],
      },
    },
  });
  await custom.createNamespacedCustomObject({
    group: 'gateway.networking.k8s.io',
    version: 'v1',
    namespace: ns,
    plural: 'httproutes',
    body: {
      apiVersion: 'gateway.networking.k8s.io/v1',
      kind: 'HTTPRoute',
      metadata: { name: 'checkout' },
      spec: {
        parentRefs: [{ name: 'gateway' }],
        rules: [
          {
            backendRefs: [
              { name: 'checkout-stable', port: 80, weight: 95 },
              { name: 'checkout-canary', port: 80, weight: 5 },
            ],
          },
        ],
      },
    },
  });
  await custom.createNamespacedCustomObject({
    group: 'split.smi-spec.io',
    version: 'v1alpha2',
    namespace: ns,
    plural: 'trafficsplits',
    body: trafficSplit('checkout'),
  });
  const ts = (await custom.getNamespacedCustomObject({
    group: 'split.smi-spec.io',
    version: 'v1alpha2',
    namespace: ns,
    plural: 'trafficsplits',
    name: 'checkout',
  })) as { spec: { backends: Array<{ weight: number }> } };
  expect(ts.spec.backends.map((b) => b.weight)).toEqual([95, 5]);

  // The schema is enforced: a weight must be an integer.
  const bad = trafficSplit('bad');
  (bad.spec.backends[0] as { weight: unknown }).weight = 'ninety-five';
  expect(
    await failureStatus(
      custom.createNamespacedCustomObject({
        group: 'split.smi-spec.io',
        version: 'v1alpha2',
        namespace: ns,
        plural: 'trafficsplits',
        body: bad,
      }),
    ),
  ).toBe(422);
});

test('the restricted user gets only what it is granted', async () => {
  const apps = kube.kubeConfig('restricted').makeApiClient(AppsV1Api);
  expect(await failureStatus(apps.listNamespacedDeployment({ namespace: ns }))).toBe(403);

  await kube.grant(ns, 'read', [{ apiGroups: ['apps'], resources: ['deployments'], verbs: ['get', 'list'] }]);
  const list = await apps.listNamespacedDeployment({ namespace: ns });
  expect(list.items.map((d) => d.metadata?.name)).toContain('checkout');

  expect(
    await failureStatus(
      apps.patchNamespacedDeployment({
        namespace: ns,
        name: 'checkout',
        body: [{ op: 'replace', path: '/spec/replicas', value: 2 }],
      }),
    ),
  ).toBe(403);
  // Other namespaces stay closed.
  await kube.createNamespace('harness-other');
  expect(await failureStatus(apps.listNamespacedDeployment({ namespace: 'harness-other' }))).toBe(403);

  // Granting again under the same name replaces the rules.
  await kube.grant(ns, 'read', [{ apiGroups: ['apps'], resources: ['deployments'], verbs: ['get'] }]);
  expect(await failureStatus(apps.listNamespacedDeployment({ namespace: ns }))).toBe(403);
  await expect(apps.readNamespacedDeployment({ namespace: ns, name: 'checkout' })).resolves.toBeDefined();
});

test('kubeconfigFile writes a kubeconfig that a client can load', async () => {
  const kc = new KubeConfig();
  kc.loadFromFile(kube.kubeconfigFile('admin'));
  const core = kc.makeApiClient(CoreV1Api);
  const got = await core.readNamespace({ name: ns });
  expect(got.metadata?.name).toBe(ns);
});

test('deleteCrd removes a kind, installCrds brings it back', async () => {
  const custom = kube.kubeConfig('admin').makeApiClient(CustomObjectsApi);
  const create = (name: string) =>
    custom.createNamespacedCustomObject({
      group: 'split.smi-spec.io',
      version: 'v1alpha2',
      namespace: ns,
      plural: 'trafficsplits',
      body: trafficSplit(name),
    });

  await kube.deleteCrd('trafficsplits.split.smi-spec.io');
  expect(await failureStatus(create('after-delete'))).toBe(404);

  await kube.installCrds(['smi']);
  await create('after-reinstall');
  const list = (await custom.listNamespacedCustomObject({
    group: 'split.smi-spec.io',
    version: 'v1alpha2',
    namespace: ns,
    plural: 'trafficsplits',
  })) as { items: Array<{ metadata: { name: string } }> };
  // Deleting the CRD deleted its objects too.
  expect(list.items.map((i) => i.metadata.name)).toEqual(['after-reinstall']);
});

test('missing binaries fail with a message that says how to get them', async () => {
  const saved = process.env.KUBEBUILDER_ASSETS;
  const empty = fs.mkdtempSync(path.join(os.tmpdir(), 'canary-no-kube-'));
  process.env.KUBEBUILDER_ASSETS = empty;
  try {
    await expect(startKubeServer({ crds: 'none' })).rejects.toThrow(KUBE_ASSETS_HINT);
  } finally {
    if (saved === undefined) delete process.env.KUBEBUILDER_ASSETS;
    else process.env.KUBEBUILDER_ASSETS = saved;
    fs.rmSync(empty, { recursive: true, force: true });
  }
});

test('stop() ends both processes', async () => {
  const { etcd, apiserver } = kube.pids;
  await kube.stop();
  expect(() => process.kill(apiserver, 0)).toThrow();
  expect(() => process.kill(etcd, 0)).toThrow();
  await kube.stop(); // idempotent
});
