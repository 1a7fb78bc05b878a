// The SMI router against a real kube-apiserver with the TrafficSplit CRD: weights, a split setup creates or extends,
// conflicts, drift, missing objects and CRDs, RBAC, and a teardown that leaves a split as it was.
import { CustomObjectsApi } from '@kubernetes/client-node';
import { MERGE_PATCH, kubeClients, type KubeClients } from '../../activities/kube/client';
import { ADDED_BACKEND, CREATED_BY, SmiRouter } from '../../activities/traffic/smi';
import { ProviderError } from '../../activities/types';
import { validateTarget } from '../../workflows/target';
import { startKubeServer, statusOf, type KubeServer } from '../../harness/kube';

jest.setTimeout(180_000);

const KIND = { group: 'split.smi-spec.io', version: 'v1alpha2', plural: 'trafficsplits' };
const CRD = 'trafficsplits.split.smi-spec.io';
const STAGES = [5, 10, 25, 50, 100, 0];

let kube: KubeServer;
let admin: CustomObjectsApi;
let adminClients: KubeClients;
let namespaces = 0;

beforeAll(async () => {
  kube = await startKubeServer({ crds: ['smi'] });
  adminClients = kubeClients(kube.kubeConfig('admin'));
  admin = adminClients.custom;
});

afterAll(async () => {
  await kube?.stop();
});

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

async function freshNamespace(): Promise<string> {
  return kube.createNamespace(`smi-${++namespaces}`);
}

function router(namespace: string, clients: KubeClients = adminClients): SmiRouter {
  const v = validateTarget({ app: 'checkout', namespace, traffic: { smi: {} } });
  if (!v.ok) throw new Error(JSON.stringify(v.problems));
  return new SmiRouter(clients, v.target);
}

/** A TrafficSplit as a mesh team would have written it, before any rollout. */
function trafficSplit(backends: Obj[] = [{ service: 'checkout-stable', weight: 100 }]): Obj {
  return {
    apiVersion: 'split.smi-spec.io/v1alpha2',
    kind: 'TrafficSplit',
    metadata: { name: 'checkout', annotations: { 'example.com/owner': 'payments' } },
    spec: { service: 'checkout', backends, matches: [{ kind: 'HTTPRouteGroup', name: 'api' }] },
  };
}

async function create(namespace: string, body: Obj): Promise<void> {
  await admin.createNamespacedCustomObject({ ...KIND, namespace, body });
}

async function read(namespace: string): Promise<Obj> {
  return (await admin.getNamespacedCustomObject({ ...KIND, namespace, name: 'checkout' })) as Obj;
}

async function patch(namespace: string, body: Obj): Promise<void> {
  await admin.patchNamespacedCustomObject({ ...KIND, namespace, name: 'checkout', body }, MERGE_PATCH);
}

async function backends(namespace: string): Promise<Array<[string, number]>> {
  return ((await read(namespace)).spec.backends as Obj[]).map((b) => [b.service, b.weight]);
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

test('walks every stage of a plan and back on an existing split', async () => {
  const ns = await freshNamespace();
  await create(ns, trafficSplit());
  const r = router(ns);
  await r.setup({ stable: 'v1', canary: 'v2' });
  expect(await backends(ns)).toEqual([
    ['checkout-stable', 100],
    ['checkout-canary', 0],
  ]);
  let previous = 0;
  for (const w of STAGES) {
    await expect(r.setWeight(w)).resolves.toEqual({ previous, changed: true });
    expect(await backends(ns)).toEqual([
      ['checkout-stable', 100 - w],
      ['checkout-canary', w],
    ]);
    await expect(r.verifyWeight(w)).resolves.toEqual({ verified: true, weight: w });
    expect(await r.getWeight()).toBe(w);
    previous = w;
  }
});

test('setup creates a missing split (and says so); teardown deletes it', async () => {
  const ns = await freshNamespace();
  const r = router(ns);
  expect(await r.getWeight()).toBe(0); // nothing created yet
  await r.setup({ stable: 'v1', canary: 'v2' });
  const ts = await read(ns);
  expect(ts.metadata.annotations[CREATED_BY]).toBe('temporal-canary');
  expect(ts.spec).toEqual({
    service: 'checkout',
    backends: [
      { service: 'checkout-stable', weight: 100 },
      { service: 'checkout-canary', weight: 0 },
    ],
  });
  const rv = ts.metadata.resourceVersion;
  await r.setup({ stable: 'v1', canary: 'v2' });
  expect((await read(ns)).metadata.resourceVersion).toBe(rv);

  for (const w of STAGES.slice(0, 4)) await r.setWeight(w);
  expect(await r.getWeight()).toBe(50);
  await r.setup({ stable: 'v2', canary: 'v2' }); // after promotion: keeps the weights
  expect(await r.getWeight()).toBe(50);
  await r.teardown();
  expect(statusOf(await read(ns).catch((e: unknown) => e))).toBe(404);
  await r.teardown(); // idempotent
  expect(await r.getWeight()).toBe(0);
});

test('a second identical setWeight writes nothing', async () => {
  const ns = await freshNamespace();
  await create(ns, trafficSplit());
  const r = router(ns);
  await r.setup({ stable: 'v1', canary: 'v2' });
  await r.setWeight(10);
  const before = (await read(ns)).metadata.resourceVersion;
  await expect(r.setWeight(10)).resolves.toEqual({ previous: 10, changed: false });
  await r.setup({ stable: 'v1', canary: 'v2' });
  expect((await read(ns)).metadata.resourceVersion).toBe(before);
});

test('a concurrent writer causes a real 409; the router retries on a fresh read and keeps the other change', async () => {
  const ns = await freshNamespace();
  await create(
    ns,
    trafficSplit([
      { service: 'checkout-stable', weight: 100 },
      { service: 'checkout-canary', weight: 0 },
    ]),
  );
  let patches = 0;
  const custom = new Proxy(adminClients.custom, {
    get(target, prop, receiver) {
      if (prop === 'patchNamespacedCustomObject') {
        return async (...args: Parameters<CustomObjectsApi['patchNamespacedCustomObject']>) => {
          // Someone else changes the matches between the router's read and its write.
          if (++patches === 1)
            await patch(ns, { spec: { matches: [{ kind: 'HTTPRouteGroup', name: 'web' }] } });
          return target.patchNamespacedCustomObject(...args);
        };
      }
      return Reflect.get(target, prop, receiver) as unknown;
    },
  });
  const r = router(ns, { ...adminClients, custom });
  await expect(r.setWeight(25)).resolves.toEqual({ previous: 0, changed: true });
  expect(patches).toBe(2); // the first write was refused with 409, the second went through
  const ts = await read(ns);
  expect(ts.spec.backends).toEqual([
    { service: 'checkout-stable', weight: 75 },
    { service: 'checkout-canary', weight: 25 },
  ]);
  expect(ts.spec.matches).toEqual([{ kind: 'HTTPRouteGroup', name: 'web' }]);
});

test('drift: getWeight and verifyWeight report what someone else wrote', async () => {
  const ns = await freshNamespace();
  await create(ns, trafficSplit());
  const r = router(ns);
  await r.setup({ stable: 'v1', canary: 'v2' });
  await r.setWeight(10);
  await patch(ns, {
    spec: {
      backends: [
        { service: 'checkout-stable', weight: 60 },
        { service: 'checkout-canary', weight: 40 },
      ],
    },
  });
  expect(await r.getWeight()).toBe(40);
  const v = await r.verifyWeight(10);
  expect(v).toMatchObject({ verified: false, weight: 40 });
  expect(v.verified === false && v.reason).toMatch(/40% to "checkout-canary" and 60% to "checkout-stable"/);
  // SMI weights are relative: 1:1 is half each.
  await patch(ns, {
    spec: {
      backends: [
        { service: 'checkout-stable', weight: 1 },
        { service: 'checkout-canary', weight: 1 },
      ],
    },
  });
  expect(await r.getWeight()).toBe(50);
  await expect(r.setWeight(10)).resolves.toEqual({ previous: 50, changed: true });
  expect(await backends(ns)).toEqual([
    ['checkout-stable', 90],
    ['checkout-canary', 10],
  ]);
});

test('a missing split is not_found naming it; a missing CRD is not_found naming the CRD', async () => {
  const ns = await freshNamespace();
  let e = await failure(router(ns).setWeight(10));
  expect(e.kind).toBe('not_found');
  expect(e.message).toMatch(/trafficsplits\.split\.smi-spec\.io "checkout" does not exist/);
  expect(e.message).toContain(ns);

  await create(ns, trafficSplit());
  await kube.deleteCrd(CRD);
  try {
    for (const call of [
      () => router(ns).setWeight(10),
      () => router(ns).getWeight(),
      () => router(ns).setup({ canary: 'v2' }),
      () => router(ns).teardown(),
    ]) {
      e = await failure(call());
      expect(e.kind).toBe('not_found');
      expect(e.message).toContain(CRD);
      expect(e.message).not.toMatch(/does not exist/);
    }
  } finally {
    await kube.installCrds(['smi']);
  }
});

test('a worker that may only read gets forbidden naming patch, the resource and the namespace', async () => {
  const ns = await freshNamespace();
  await create(
    ns,
    trafficSplit([
      { service: 'checkout-stable', weight: 100 },
      { service: 'checkout-canary', weight: 0 },
    ]),
  );
  await kube.grant(ns, 'smi-read', [
    { apiGroups: ['split.smi-spec.io'], resources: ['trafficsplits'], verbs: ['get', 'list'] },
  ]);
  const r = router(ns, kubeClients(kube.kubeConfig('restricted')));
  expect(await r.getWeight()).toBe(0);
  const e = await failure(r.setWeight(10));
  expect(e.kind).toBe('forbidden');
  expect(e.message).toContain('"patch"');
  expect(e.message).toContain(CRD);
  expect(e.message).toContain(`namespace "${ns}"`);
  expect(await backends(ns)).toEqual([
    ['checkout-stable', 100],
    ['checkout-canary', 0],
  ]);
});

test('setup then teardown leaves an existing split exactly as it was', async () => {
  for (const initial of [
    [{ service: 'checkout-stable', weight: 100 }], // setup adds the canary backend, teardown removes it
    [
      { service: 'checkout-stable', weight: 100 },
      { service: 'checkout-canary', weight: 0 },
    ], // the canary backend was there already: it stays, at 0
  ]) {
    const ns = await freshNamespace();
    await create(ns, trafficSplit(initial));
    const before = await read(ns);
    const r = router(ns);
    await r.setup({ stable: 'v1', canary: 'v2' });
    expect((await read(ns)).metadata.annotations[ADDED_BACKEND]).toBe(
      initial.length === 1 ? 'checkout-canary' : undefined,
    );
    for (const w of STAGES.slice(0, 3)) await r.setWeight(w);
    await r.teardown();
    const after = await read(ns);
    expect(after.spec).toEqual(before.spec);
    expect(after.metadata.annotations).toEqual(before.metadata.annotations);
    const rv = after.metadata.resourceVersion;
    await r.teardown(); // idempotent
    expect((await read(ns)).metadata.resourceVersion).toBe(rv);
  }
});

test('a weight that is not a whole percent, or a split without the canary backend, is refused', async () => {
  const ns = await freshNamespace();
  await create(ns, trafficSplit());
  const r = router(ns);
  await expect(r.setWeight(7.5)).rejects.toMatchObject({ kind: 'invalid' });
  await expect(r.setWeight(-1)).rejects.toMatchObject({ kind: 'invalid' });
  const e = await failure(r.setWeight(10));
  expect(e.kind).toBe('invalid');
  expect(e.message).toMatch(/no backend "checkout-canary".*setup/);
  await expect(r.setWeight(0)).resolves.toEqual({ previous: 0, changed: false });
});

/** The clients, with every CustomObjectsApi call's method name recorded in `calls` as it is made. */
function recording(calls: string[]): KubeClients {
  const custom = new Proxy(adminClients.custom, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver) as unknown;
      if (typeof value !== 'function' || typeof prop !== 'string') return value;
      return (...args: unknown[]) => {
        calls.push(prop);
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
  return { ...adminClients, custom };
}

test('a gated shift (the rollback): the split is read while the gate is open, written only once it settles, not at all when it fails', async () => {
  const ns = await freshNamespace();
  await create(ns, trafficSplit());
  await router(ns).setup({ stable: 'v1', canary: 'v2' });
  await router(ns).setWeight(25);
  const calls: string[] = [];
  const r = router(ns, recording(calls));

  let open!: (changed: boolean) => void;
  const gate = new Promise<boolean>((resolve) => (open = resolve));
  const shift = r.setWeight(0, undefined, { writeAfter: gate });
  await new Promise((res) => setTimeout(res, 200));
  // Read at once (what the rollback's capacity check costs the shift: nothing more), nothing written yet.
  expect(calls).toEqual(['getNamespacedCustomObject']);
  expect(await backends(ns)).toEqual([
    ['checkout-stable', 75],
    ['checkout-canary', 25],
  ]);
  open(false);
  await expect(shift).resolves.toEqual({ previous: 25, changed: true });
  // No second read: the gate changes no split.
  expect(calls).toEqual(['getNamespacedCustomObject', 'patchNamespacedCustomObject']);
  expect(await backends(ns)).toEqual([
    ['checkout-stable', 100],
    ['checkout-canary', 0],
  ]);

  await router(ns).setWeight(25);
  const rv = (await read(ns)).metadata.resourceVersion;
  const failed = Promise.reject(new Error('capacity check failed'));
  failed.catch(() => undefined); // the router awaits it after its read
  await expect(router(ns).setWeight(0, undefined, { writeAfter: failed })).rejects.toThrow(
    'capacity check failed',
  );
  expect((await read(ns)).metadata.resourceVersion).toBe(rv);
});
