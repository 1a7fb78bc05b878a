// The Istio router against a real kube-apiserver with Istio's CRDs: weights in VirtualService routes, DestinationRule
// subsets, header and sticky-cookie routes, conflicts, drift, missing objects and CRDs, RBAC, and a teardown that
// leaves the objects as they were.
import * as https from 'node:https';
import { ApiextensionsV1Api, CustomObjectsApi } from '@kubernetes/client-node';
import { MERGE_PATCH, kubeClients, type KubeClients } from '../../activities/kube/client';
import { DR_RECORD, IstioRouter, VS_RECORD } from '../../activities/traffic/istio';
import { ProviderError } from '../../activities/types';
import { validateTarget } from '../../workflows/target';
import { startKubeServer, type KubeServer } from '../../harness/kube';
import { expectGatedShift } from './gated-shift';

jest.setTimeout(180_000);

const GROUP = 'networking.istio.io';
const VS_CRD = `virtualservices.${GROUP}`;
const STAGES = [5, 10, 25, 50, 100, 0];

let kube: KubeServer;
let admin: CustomObjectsApi;
let adminClients: KubeClients;
let namespaces = 0;

beforeAll(async () => {
  kube = await startKubeServer({ crds: ['istio'] });
  adminClients = kubeClients(kube.kubeConfig('admin'));
  admin = adminClients.custom;
});

afterAll(async () => {
  await kube?.stop();
});

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

async function freshNamespace(): Promise<string> {
  return kube.createNamespace(`istio-${++namespaces}`);
}

function router(namespace: string, istio: Obj = {}, clients: KubeClients = adminClients): IstioRouter {
  const v = validateTarget({
    app: 'checkout',
    namespace,
    traffic: { istio: { routes: ['primary'], ...istio } },
    workload: { name: 'checkout', versionLabel: 'app.example.com/version' },
  });
  if (!v.ok) throw new Error(JSON.stringify(v.problems));
  return new IstioRouter(clients, v.target);
}

const dest = (subset: string, weight?: number, host = 'checkout') => ({
  destination: { host, subset, port: { number: 8080 } },
  ...(weight !== undefined ? { weight } : {}),
});

/** A VirtualService with a managed route `primary` and a route of someone else's, `admin`. */
function virtualService(primary: Obj[] = [dest('stable', 100), dest('canary', 0)]): Obj {
  return {
    apiVersion: `${GROUP}/v1`,
    kind: 'VirtualService',
    metadata: { name: 'checkout', annotations: { 'example.com/owner': 'payments' } },
    spec: {
      hosts: ['checkout'],
      http: [
        {
          name: 'admin',
          match: [{ uri: { prefix: '/admin' } }],
          route: [dest('stable', undefined, 'admin')],
        },
        { name: 'primary', match: [{ uri: { prefix: '/api' } }], route: primary, timeout: '5s' },
      ],
    },
  };
}

function destinationRule(subsets: Obj[]): Obj {
  return {
    apiVersion: `${GROUP}/v1`,
    kind: 'DestinationRule',
    metadata: { name: 'checkout', annotations: { 'example.com/owner': 'payments' } },
    spec: { host: 'checkout', subsets },
  };
}

const plural = (kind: string) => (kind === 'VirtualService' ? 'virtualservices' : 'destinationrules');

async function create(namespace: string, body: Obj, version = 'v1'): Promise<void> {
  await admin.createNamespacedCustomObject({
    group: GROUP,
    version,
    namespace,
    plural: plural(body.kind),
    body,
  });
}

async function read(
  namespace: string,
  kind: 'VirtualService' | 'DestinationRule',
  version = 'v1',
): Promise<Obj> {
  return (await admin.getNamespacedCustomObject({
    group: GROUP,
    version,
    namespace,
    plural: plural(kind),
    name: 'checkout',
  })) as Obj;
}

async function patchVs(namespace: string, body: Obj): Promise<void> {
  await admin.patchNamespacedCustomObject(
    { group: GROUP, version: 'v1', namespace, plural: 'virtualservices', name: 'checkout', body },
    MERGE_PATCH,
  );
}

/** [stable, canary] weights of the named route of the live VirtualService. */
async function weights(namespace: string, route = 'primary'): Promise<Array<number | undefined>> {
  const vs = await read(namespace, 'VirtualService');
  const r = (vs.spec.http as Obj[]).find((h) => h.name === route)!;
  return ['stable', 'canary'].map((s) => (r.route as Obj[]).find((d) => d.destination.subset === s)?.weight);
}

async function failure(call: Promise<unknown>): Promise<ProviderError> {
  try {
    await call;
  } catch (err) {
    if (err instanceof ProviderError) return err;
    throw err;
  }
  throw new Error('expected the call to fail');
}

test('walks every stage of a plan and back, leaving other routes alone', async () => {
  const ns = await freshNamespace();
  await create(ns, virtualService());
  const r = router(ns);
  await r.setup({ stable: 'v1', canary: 'v2' });
  expect(await r.getWeight()).toBe(0);
  let previous = 0;
  for (const w of STAGES) {
    await expect(r.setWeight(w)).resolves.toEqual({ previous, changed: true });
    expect(await weights(ns)).toEqual([100 - w, w]);
    await expect(r.verifyWeight(w)).resolves.toEqual({ verified: true, weight: w });
    expect(await r.getWeight()).toBe(w);
    previous = w;
  }
  const vs = await read(ns, 'VirtualService');
  expect(vs.spec.http[0]).toEqual(virtualService().spec.http[0]);
  expect(vs.spec.http[1].timeout).toBe('5s');
});

test('a second identical setWeight writes nothing', async () => {
  const ns = await freshNamespace();
  await create(ns, virtualService());
  const r = router(ns);
  await r.setup({ stable: 'v1', canary: 'v2' });
  await r.setWeight(10);
  const before = (await read(ns, 'VirtualService')).metadata.resourceVersion;
  await expect(r.setWeight(10)).resolves.toEqual({ previous: 10, changed: false });
  await r.setup({ stable: 'v1', canary: 'v2' }); // setup is idempotent too
  expect((await read(ns, 'VirtualService')).metadata.resourceVersion).toBe(before);
});

test('calls share their TLS connections: a shift and its read-back open one connection, not one per call', async () => {
  const ns = await freshNamespace();
  await create(ns, virtualService());
  // A fresh configuration, as a worker loads one: its first call opens the connection the rest reuse.
  const clients = kubeClients(kube.kubeConfig('admin'));
  const r = router(ns, {}, clients);
  await r.setup({ stable: 'v1', canary: 'v2' });
  // Every https.Agent opens its connections here, whoever made the agent.
  const spy = jest.spyOn(https.Agent.prototype, 'createConnection');
  let opened: number;
  try {
    for (const w of [5, 10, 25, 0]) {
      await r.setWeight(w);
      await r.verifyWeight(w);
    }
  } finally {
    opened = spy.mock.calls.length;
    spy.mockRestore();
  }
  // A dozen calls or more (a read and a write per shift, a read per check), on the connections setup opened (reads
  // made at once may open a second); client-node alone opens one per call (kubernetes-client/javascript#2893).
  expect(opened).toBeLessThanOrEqual(2);
  expect(await weights(ns)).toEqual([100, 0]);
});

test('a gated shift (the rollback) writes only once the gate settles, and nothing when it fails', async () => {
  const ns = await freshNamespace();
  await create(ns, virtualService());
  const r = router(ns);
  await r.setup({ stable: 'v1', canary: 'v2' });
  await r.setWeight(10);
  await expectGatedShift(r, 10, async () => (await read(ns, 'VirtualService')).metadata.resourceVersion);
});

test('a concurrent writer causes a real 409; the router retries on a fresh read and keeps the other change', async () => {
  const ns = await freshNamespace();
  await create(ns, virtualService());
  let patches = 0;
  const custom = new Proxy(adminClients.custom, {
    get(target, prop, receiver) {
      if (prop === 'patchNamespacedCustomObject') {
        return async (...args: Parameters<CustomObjectsApi['patchNamespacedCustomObject']>) => {
          if (++patches === 1) {
            // Someone else adds a route between the router's read and its write.
            const vs = await read(ns, 'VirtualService');
            await patchVs(ns, {
              spec: {
                http: [...vs.spec.http, { name: 'other', route: [dest('stable', undefined, 'other')] }],
              },
            });
          }
          return target.patchNamespacedCustomObject(...args);
        };
      }
      return Reflect.get(target, prop, receiver) as unknown;
    },
  });
  const r = router(ns, {}, { ...adminClients, custom });
  await expect(r.setWeight(25)).resolves.toEqual({ previous: 0, changed: true });
  expect(patches).toBe(2); // the first write was refused with 409, the second went through
  expect(await weights(ns)).toEqual([75, 25]);
  const vs = await read(ns, 'VirtualService');
  expect((vs.spec.http as Obj[]).map((h) => h.name)).toEqual(['admin', 'primary', 'other']);
});

test('drift: getWeight and verifyWeight report what someone else wrote', async () => {
  const ns = await freshNamespace();
  await create(ns, virtualService());
  const r = router(ns);
  await r.setWeight(10);
  const vs = await read(ns, 'VirtualService');
  vs.spec.http[1].route = [dest('stable', 70), dest('canary', 30)];
  await patchVs(ns, { spec: { http: vs.spec.http } });
  expect(await r.getWeight()).toBe(30);
  const v = await r.verifyWeight(10);
  expect(v).toMatchObject({ verified: false, weight: 30 });
  expect(v.verified === false && v.reason).toMatch(/HTTP route "primary".*30%.*70%/);
  await expect(r.setWeight(10)).resolves.toEqual({ previous: 30, changed: true });
});

test('all HTTP routes when none are named; verifyWeight names the route that differs', async () => {
  const ns = await freshNamespace();
  const vs = virtualService();
  vs.spec.http[0] = { name: 'web', route: [dest('stable')] }; // one destination, no weight, no canary yet
  vs.spec.http.push({ route: [dest('stable', 100), dest('canary', 0)] }); // unnamed
  await create(ns, vs);
  const r = router(ns, { routes: [] });
  await r.setup({ stable: 'v1', canary: 'v2' });
  await r.setWeight(50);
  const live = await read(ns, 'VirtualService');
  for (const route of live.spec.http as Obj[]) {
    expect((route.route as Obj[]).map((d) => [d.destination.subset, d.weight])).toEqual([
      ['stable', 50],
      ['canary', 50],
    ]);
  }
  await expect(r.verifyWeight(50)).resolves.toEqual({ verified: true, weight: 50 });

  live.spec.http[2].route[1].weight = 40;
  live.spec.http[2].route[0].weight = 60;
  await patchVs(ns, { spec: { http: live.spec.http } });
  const v = await r.verifyWeight(50);
  expect(v.verified === false && v.reason).toMatch(/HTTP route #2 .*40%/);
  expect(await r.getWeight()).toBe(50); // the first managed route

  await r.teardown();
  expect((await read(ns, 'VirtualService')).spec).toEqual(vs.spec);
});

test('a missing VirtualService, route or DestinationRule is not_found naming it', async () => {
  const ns = await freshNamespace();
  let e = await failure(router(ns).setWeight(10));
  expect(e.kind).toBe('not_found');
  expect(e.message).toMatch(/virtualservices\.networking\.istio\.io "checkout" does not exist/);
  expect(e.message).toContain(ns);
  await expect(router(ns).getWeight()).rejects.toMatchObject({ kind: 'not_found' });

  await create(ns, virtualService());
  e = await failure(router(ns, { routes: ['primary', 'checkout'] }).setWeight(10));
  expect(e.kind).toBe('not_found');
  expect(e.message).toMatch(/no HTTP route named "checkout"/);

  e = await failure(router(ns, { destinationRule: 'checkout-dr' }).setup({ stable: 'v1', canary: 'v2' }));
  expect(e.kind).toBe('not_found');
  expect(e.message).toMatch(/destinationrules\.networking\.istio\.io "checkout-dr" does not exist/);
});

test('a missing CRD is not_found naming the CRD', async () => {
  const ns = await freshNamespace();
  await create(ns, virtualService());
  const r = router(ns);
  await r.setWeight(5); // discovers and remembers v1
  await kube.deleteCrd(VS_CRD);
  try {
    for (const call of [() => r.setWeight(10), () => router(ns).getWeight()]) {
      const e = await failure(call());
      expect(e.kind).toBe('not_found');
      expect(e.message).toContain(VS_CRD);
    }
  } finally {
    await kube.installCrds(['istio']);
  }
  await create(ns, virtualService());
  await expect(r.setWeight(10)).resolves.toEqual({ previous: 0, changed: true });
});

test('a worker that may only read gets forbidden naming patch, the resource and the namespace', async () => {
  const ns = await freshNamespace();
  await create(ns, virtualService());
  await kube.grant(ns, 'istio-read', [
    { apiGroups: [GROUP], resources: ['virtualservices', 'destinationrules'], verbs: ['get', 'list'] },
  ]);
  const r = router(ns, {}, kubeClients(kube.kubeConfig('restricted')));
  expect(await r.getWeight()).toBe(0);
  const e = await failure(r.setWeight(10));
  expect(e.kind).toBe('forbidden');
  expect(e.message).toContain('"patch"');
  expect(e.message).toContain(VS_CRD);
  expect(e.message).toContain(`namespace "${ns}"`);
  expect(await weights(ns)).toEqual([100, 0]);
});

test('setup adds the canary destination, subsets, header and sticky routes; teardown restores the objects', async () => {
  const ns = await freshNamespace();
  const vs = virtualService([dest('stable')]); // before the first rollout: one destination, no weight
  const dr = destinationRule([
    {
      name: 'stable',
      labels: { app: 'checkout', 'app.example.com/version': 'v1' },
      trafficPolicy: { tls: { mode: 'ISTIO_MUTUAL' } },
    },
  ]);
  await create(ns, vs);
  await create(ns, dr);
  const r = router(ns, {
    destinationRule: 'checkout',
    header: { name: 'X-Canary', value: 'yes' },
    stickyCookie: 'checkout-canary',
  });
  const before = { vs: await read(ns, 'VirtualService'), dr: await read(ns, 'DestinationRule') };

  await r.setup({ stable: 'v1', canary: 'v2' });
  const liveDr = await read(ns, 'DestinationRule');
  expect(liveDr.spec.subsets).toEqual([
    dr.spec.subsets[0],
    { name: 'canary', labels: { 'app.example.com/version': 'v2' } },
  ]);
  const live = await read(ns, 'VirtualService');
  const http = live.spec.http as Obj[];
  expect(http.map((h) => h.name)).toEqual(['canary-header', 'canary-sticky', 'admin', 'primary']);
  const toCanary = [
    { destination: { host: 'checkout', subset: 'canary', port: { number: 8080 } }, weight: 100 },
  ];
  expect(http[0]).toEqual({
    name: 'canary-header',
    match: [{ uri: { prefix: '/api' }, headers: { 'x-canary': { exact: 'yes' } } }],
    route: toCanary,
  });
  expect(http[1]).toEqual({
    name: 'canary-sticky',
    match: [
      {
        uri: { prefix: '/api' },
        headers: { cookie: { regex: '^(.*?;\\s*)?(checkout-canary=canary)(;.*)?$' } },
      },
    ],
    route: toCanary,
  });
  expect(http[3].route).toEqual([
    dest('stable', 100),
    {
      ...dest('canary', 0),
      headers: { response: { add: { 'Set-Cookie': 'checkout-canary=canary; Path=/' } } },
    },
  ]);
  expect(live.metadata.annotations[VS_RECORD]).toBeDefined();
  expect(http[2]).toEqual(vs.spec.http[0]);

  for (const w of STAGES.slice(0, 3)) await r.setWeight(w);
  await expect(r.verifyWeight(25)).resolves.toEqual({ verified: true, weight: 25 });
  expect(await r.getWeight()).toBe(25);

  // Promotion: setup again with both sides on the new version, then teardown.
  await r.setup({ stable: 'v2', canary: 'v2' });
  await r.teardown();
  const after = { vs: await read(ns, 'VirtualService'), dr: await read(ns, 'DestinationRule') };
  expect(after.vs.spec).toEqual(before.vs.spec);
  expect(after.vs.metadata.annotations).toEqual(before.vs.metadata.annotations);
  // The stable subset follows the promoted version; the canary subset setup added is gone.
  const promoted = structuredClone(before.dr.spec);
  promoted.subsets[0].labels['app.example.com/version'] = 'v2';
  expect(after.dr.spec).toEqual(promoted);
  expect(after.dr.metadata.annotations).toEqual(before.dr.metadata.annotations);
  expect(after.dr.metadata.annotations[DR_RECORD]).toBeUndefined();

  // Teardown is idempotent.
  const rv = after.vs.metadata.resourceVersion;
  await r.teardown();
  expect((await read(ns, 'VirtualService')).metadata.resourceVersion).toBe(rv);
});

test('setup then teardown after a rollback leaves existing destinations, subsets and headers as they were', async () => {
  const ns = await freshNamespace();
  const canary = {
    ...dest('canary', 0),
    headers: { response: { add: { 'Set-Cookie': 'other=1' }, remove: ['x-debug'] } },
  };
  await create(ns, virtualService([dest('stable', 100), canary]));
  await create(
    ns,
    destinationRule([
      { name: 'stable', labels: { 'app.example.com/version': 'v1' } },
      { name: 'canary', labels: { 'app.example.com/version': 'v0' } },
    ]),
  );
  const before = { vs: await read(ns, 'VirtualService'), dr: await read(ns, 'DestinationRule') };
  const r = router(ns, { destinationRule: 'checkout', stickyCookie: 'ck' });
  await r.setup({ stable: 'v1', canary: 'v2' });
  expect((await read(ns, 'DestinationRule')).spec.subsets[1].labels).toEqual({
    'app.example.com/version': 'v2',
  });
  const primary = (await read(ns, 'VirtualService')).spec.http.find((h: Obj) => h.name === 'primary');
  expect(primary.route[1].headers.response).toEqual({
    add: { 'Set-Cookie': 'ck=canary; Path=/' },
    remove: ['x-debug'],
  });
  await r.setWeight(10);
  await r.setWeight(0); // rollback
  await r.teardown();
  const after = { vs: await read(ns, 'VirtualService'), dr: await read(ns, 'DestinationRule') };
  expect(after.vs.spec).toEqual(before.vs.spec);
  expect(after.vs.metadata.annotations).toEqual(before.vs.metadata.annotations);
  expect(after.dr.spec).toEqual(before.dr.spec);
  expect(after.dr.metadata.annotations).toEqual(before.dr.metadata.annotations);
});

test('setup leaves the stable subset alone when the stable version is unknown', async () => {
  const ns = await freshNamespace();
  await create(ns, virtualService());
  await create(ns, destinationRule([{ name: 'stable', labels: { 'app.example.com/version': 'v1' } }]));
  const r = router(ns, { destinationRule: 'checkout' });
  await r.setup({ canary: 'v2' });
  const dr = await read(ns, 'DestinationRule');
  await r.setup({ canary: 'v2' }); // idempotent
  expect((await read(ns, 'DestinationRule')).metadata.resourceVersion).toBe(dr.metadata.resourceVersion);
  expect(dr.spec.subsets).toEqual([
    { name: 'stable', labels: { 'app.example.com/version': 'v1' } },
    { name: 'canary', labels: { 'app.example.com/version': 'v2' } },
  ]);
});

test('a weight that is not a whole percent, or a route without a canary destination, is refused', async () => {
  const ns = await freshNamespace();
  await create(ns, virtualService([dest('stable')]));
  const r = router(ns);
  await expect(r.setWeight(12.5)).rejects.toMatchObject({ kind: 'invalid' });
  await expect(r.setWeight(101)).rejects.toMatchObject({ kind: 'invalid' });
  const e = await failure(r.setWeight(10));
  expect(e.kind).toBe('invalid');
  expect(e.message).toMatch(/no destination with subset "canary".*setup/);
  // 0 % needs no canary destination: nothing to change.
  await expect(r.setWeight(0)).resolves.toEqual({ previous: 0, changed: false });
  await expect(r.verifyWeight(0)).resolves.toEqual({ verified: true, weight: 0 });
});

// Last: it changes the CRD every other test uses.
test('falls back to v1beta1 when the CRD does not serve v1', async () => {
  const ns = await freshNamespace();
  await create(ns, virtualService());
  const ext = kube.kubeConfig('admin').makeApiClient(ApiextensionsV1Api);
  const serveV1 = async (served: boolean) => {
    const crd = await ext.readCustomResourceDefinition({ name: VS_CRD });
    for (const v of crd.spec.versions) if (v.name === 'v1') v.served = served;
    await ext.replaceCustomResourceDefinition({ name: VS_CRD, body: crd });
    // Wait until discovery says so.
    for (const deadline = Date.now() + 30_000; ;) {
      const list = await admin.getAPIResources({ group: GROUP, version: 'v1' });
      if (list.resources.some((r) => r.name === 'virtualservices') === served) break;
      if (Date.now() > deadline)
        throw new Error(`v1 virtualservices served=${served} not visible in discovery`);
      await new Promise((res) => setTimeout(res, 200));
    }
  };
  await serveV1(false);
  try {
    const r = router(ns);
    await expect(r.setWeight(25)).resolves.toEqual({ previous: 0, changed: true });
    const vs = await read(ns, 'VirtualService', 'v1beta1');
    expect(vs.apiVersion).toBe(`${GROUP}/v1beta1`);
    expect(vs.spec.http[1].route.map((d: Obj) => d.weight)).toEqual([75, 25]);
    await expect(r.verifyWeight(25)).resolves.toEqual({ verified: true, weight: 25 });
  } finally {
    await serveV1(true);
  }
});

describe('a shadow stage (mirror)', () => {
  const GET_ONLY = { percent: 20, methods: ['GET'] };

  /** The routes of the live VirtualService, by name. */
  async function routes(ns: string): Promise<Obj[]> {
    return (await read(ns, 'VirtualService')).spec.http as Obj[];
  }

  test('mirrors 20 % of GET requests through a route of its own; the next stage and a rollback remove it', async () => {
    const ns = await freshNamespace();
    await create(ns, virtualService());
    await create(ns, destinationRule([{ name: 'stable', labels: { 'app.example.com/version': 'v1' } }]));
    const r = router(ns, { destinationRule: 'checkout' });
    await r.setup({ stable: 'v1', canary: 'v2' });
    const original = await routes(ns);

    await expect(r.setWeight(0, GET_ONLY)).resolves.toEqual({ previous: 0, changed: true });
    await expect(r.verifyWeight(0, GET_ONLY)).resolves.toEqual({ verified: true, weight: 0 });
    let http = await routes(ns);
    expect(http.map((h) => h.name)).toEqual(['admin', 'canary-mirror', 'primary']);
    const mirror = http[1];
    // GET requests to the managed route's paths: served by stable as before, and 20 % copied to the canary subset.
    expect(mirror.match).toEqual([{ uri: { prefix: '/api' }, method: { exact: 'GET' } }]);
    expect(mirror.route).toEqual(http[2].route);
    expect(mirror.timeout).toBe('5s');
    expect(mirror.mirror).toEqual({ host: 'checkout', subset: 'canary', port: { number: 8080 } });
    expect(mirror.mirrorPercentage).toEqual({ value: 20 });
    // Every other method still takes the managed route, unchanged, all to stable; someone else's route is untouched.
    expect(http[2]).toEqual(original.find((h) => h.name === 'primary'));
    expect(http[0]).toEqual(original[0]);
    expect(await weights(ns)).toEqual([100, 0]);
    expect(JSON.parse((await read(ns, 'VirtualService')).metadata.annotations[VS_RECORD]).mirror).toEqual({
      routes: ['canary-mirror'],
      percent: 20,
    });
    await expect(r.setWeight(0, GET_ONLY)).resolves.toEqual({ previous: 0, changed: false });

    // The next stage: traffic moves and the mirror goes.
    await r.setWeight(5);
    await expect(r.verifyWeight(5)).resolves.toEqual({ verified: true, weight: 5 });
    http = await routes(ns);
    expect(http.map((h) => h.name)).toEqual(['admin', 'primary']);
    expect(
      JSON.parse((await read(ns, 'VirtualService')).metadata.annotations[VS_RECORD]).mirror,
    ).toBeUndefined();

    // Back in a shadow stage, then a rollback (weight 0 without a mirror) removes it too.
    await r.setWeight(0, { percent: 35, methods: ['GET', 'HEAD'] });
    http = await routes(ns);
    expect(http[1].match).toEqual([{ uri: { prefix: '/api' }, method: { regex: 'GET|HEAD' } }]);
    expect(http[1].mirrorPercentage).toEqual({ value: 35 });
    await expect(r.verifyWeight(0)).resolves.toMatchObject({ verified: false });
    await r.setWeight(0);
    await expect(r.verifyWeight(0)).resolves.toEqual({ verified: true, weight: 0 });
    expect((await routes(ns)).map((h) => h.name)).toEqual(['admin', 'primary']);
  });

  test('teardown by any worker removes a mirror left behind; every method mirrors when asked', async () => {
    const ns = await freshNamespace();
    await create(ns, virtualService());
    await r0(ns).setup({ stable: 'v1', canary: 'v2' });
    await r0(ns).setWeight(0, { percent: 100 });
    let http = await routes(ns);
    expect(http[1].name).toBe('canary-mirror');
    expect(http[1].match).toEqual([{ uri: { prefix: '/api' } }]);
    expect(http[1].mirrorPercentage).toEqual({ value: 100 });
    // Another worker (a fresh router) tears it down from what the objects say.
    await r0(ns).teardown();
    http = await routes(ns);
    expect(http).toEqual(virtualService().spec.http);
    expect((await read(ns, 'VirtualService')).metadata.annotations[VS_RECORD]).toBeUndefined();
  });

  test('a mirror with a weight, a route that mirrors already, or routes that take no GET are refused', async () => {
    const ns = await freshNamespace();
    await create(ns, virtualService());
    const r = r0(ns);
    await r.setup({ stable: 'v1', canary: 'v2' });
    expect((await failure(r.setWeight(5, GET_ONLY))).message).toMatch(/canary weight 0/);
    const vs = await read(ns, 'VirtualService');
    const http = vs.spec.http as Obj[];
    await patchVs(ns, {
      spec: {
        http: [http[0], { ...http[1], match: [{ uri: { prefix: '/api' }, method: { exact: 'POST' } }] }],
      },
    });
    expect((await failure(r.setWeight(0, GET_ONLY))).message).toMatch(
      /takes GET requests .*nothing can be mirrored/,
    );
    await patchVs(ns, { spec: { http: [http[0], { ...http[1], mirror: { host: 'audit' } }] } });
    expect((await failure(r.setWeight(0, GET_ONLY))).message).toMatch(/mirrors requests already/);
  });

  function r0(ns: string): IstioRouter {
    return router(ns);
  }
});
