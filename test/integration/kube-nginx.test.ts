// The NGINX router against a real kube-apiserver: the canary Ingress it derives from the primary one, its
// canary-weight annotation through a whole plan, idempotency, a real 409 from a concurrent writer, drift, missing
// objects, a worker account that may only read, and teardown leaving the primary exactly as it was.
import type { V1Ingress } from '@kubernetes/client-node';
import { kubeClients, MERGE_PATCH, type KubeClients } from '../../activities/kube/client';
import { NginxRouter, CREATED_FOR, DERIVED_FROM } from '../../activities/traffic/nginx';
import { ProviderError } from '../../activities/types';
import { validateTarget, type Target } from '../../workflows/target';
import { startKubeServer, type KubeServer } from '../../harness/kube';
import { expectGatedShift } from './gated-shift';

jest.setTimeout(180_000);

let kube: KubeServer;
let admin: KubeClients;

beforeAll(async () => {
  // Ingress is built in: no CRDs needed.
  kube = await startKubeServer({ crds: 'none' });
  admin = kubeClients(kube.kubeConfig('admin'));
});

afterAll(async () => {
  await kube?.stop();
});

const PLAN = [5, 10, 25, 50, 100, 0];
const N = 'nginx.ingress.kubernetes.io/';
let counter = 0;

function primaryIngress(): V1Ingress {
  return {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'Ingress',
    metadata: {
      name: 'checkout',
      labels: { app: 'checkout' },
      annotations: {
        [`${N}rewrite-target`]: '/',
        [`${N}proxy-body-size`]: '8m',
        // Canary annotations on the primary are not the canary Ingress's business.
        [`${N}canary-by-header`]: 'x-old',
        'kubernetes.io/ingress.class': 'nginx',
        'kubectl.kubernetes.io/last-applied-configuration': '{"kind":"Ingress"}',
        'example.com/owner': 'team-shop',
      },
    },
    spec: {
      ingressClassName: 'nginx',
      defaultBackend: { service: { name: 'checkout', port: { number: 80 } } },
      tls: [{ hosts: ['shop.example.com'], secretName: 'shop-tls' }],
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
              {
                path: '/api',
                pathType: 'Prefix',
                backend: { service: { name: 'checkout-api', port: { name: 'http' } } },
              },
            ],
          },
        },
      ],
    },
  };
}

interface Fixture {
  ns: string;
  target: Target;
  router: NginxRouter;
}

/** A fresh namespace with the primary Ingress, and a router for it. */
async function fixture(nginx: Record<string, unknown> = {}): Promise<Fixture> {
  const ns = await kube.createNamespace(`nginx-${++counter}`);
  await admin.networking.createNamespacedIngress({ namespace: ns, body: primaryIngress() });
  const v = validateTarget({ app: 'checkout', namespace: ns, traffic: { nginx } });
  if (!v.ok) throw new Error(JSON.stringify(v.problems));
  return { ns, target: v.target, router: new NginxRouter(admin, v.target) };
}

const read = (ns: string, name: string) => admin.networking.readNamespacedIngress({ name, namespace: ns });

async function exists(ns: string, name: string): Promise<boolean> {
  try {
    await read(ns, name);
    return true;
  } catch (err) {
    if ((err as { code?: number }).code === 404) return false;
    throw err;
  }
}

/** JSON form (client-node models carry undefined fields). */
const plain = <T>(v: T): T => JSON.parse(JSON.stringify(v)) as T;

async function rejection(p: Promise<unknown>): Promise<ProviderError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(ProviderError);
    return err as ProviderError;
  }
  throw new Error('expected a ProviderError');
}

test('setup derives the canary Ingress from the primary one and leaves the primary alone', async () => {
  const { ns, router } = await fixture();
  const before = await read(ns, 'checkout');
  await router.setup({ stable: 'v1', canary: 'v2' });

  const canary = await read(ns, 'checkout-canary');
  expect(canary.metadata?.labels).toEqual({ 'app.kubernetes.io/managed-by': 'temporal-canary' });
  expect(canary.metadata?.annotations).toEqual({
    [`${N}rewrite-target`]: '/',
    [`${N}proxy-body-size`]: '8m',
    'kubernetes.io/ingress.class': 'nginx',
    [`${N}canary`]: 'true',
    [`${N}canary-weight`]: '0',
    [CREATED_FOR]: 'checkout',
    [DERIVED_FROM]: 'checkout',
  });
  const expected = plain(primaryIngress().spec!);
  expected.defaultBackend!.service!.name = 'checkout-canary';
  expected.rules![0].http!.paths[0].backend.service!.name = 'checkout-canary';
  expected.rules![0].http!.paths[1].backend.service!.name = 'checkout-api-canary';
  expect(plain(canary.spec)).toEqual(expected);

  const after = await read(ns, 'checkout');
  expect(after.metadata?.resourceVersion).toBe(before.metadata?.resourceVersion);
  expect(await router.getWeight()).toBe(0);
  expect(await router.verifyWeight(0)).toEqual({ verified: true, weight: 0 });
});

test('canaryService, header and cookie settings become the canary Service and canary-by-* annotations', async () => {
  const { ns, router } = await fixture({
    canaryIngress: 'shop-canary',
    canaryService: 'checkout-next',
    header: { name: 'x-canary', value: 'yes' },
    cookie: 'canary',
  });
  await router.setup({ stable: 'v1', canary: 'v2' });
  const canary = await read(ns, 'shop-canary');
  const names = [
    canary.spec?.defaultBackend?.service?.name,
    ...(canary.spec?.rules?.[0].http?.paths.map((p) => p.backend.service?.name) ?? []),
  ];
  expect(names).toEqual(['checkout-next', 'checkout-next', 'checkout-next']);
  expect(canary.metadata?.annotations).toMatchObject({
    [`${N}canary-by-header`]: 'x-canary',
    [`${N}canary-by-header-value`]: 'yes',
    [`${N}canary-by-cookie`]: 'canary',
  });

  // A header without a value: ingress-nginx's own convention (`always`), so no canary-by-header-value.
  const v = validateTarget({
    app: 'checkout',
    namespace: ns,
    traffic: {
      nginx: { canaryIngress: 'shop-canary', canaryService: 'checkout-next', header: { name: 'x-c' } },
    },
  });
  if (!v.ok) throw new Error('invalid target');
  await new NginxRouter(admin, v.target).setup({ stable: 'v1', canary: 'v2' });
  const again = (await read(ns, 'shop-canary')).metadata?.annotations ?? {};
  expect(again[`${N}canary-by-header`]).toBe('x-c');
  expect(again[`${N}canary-by-header-value`]).toBeUndefined();
  expect(again[`${N}canary-by-cookie`]).toBeUndefined();
});

test('shifts through every stage of the plan and back to 0, verified on the live object', async () => {
  const { ns, router } = await fixture();
  await router.setup({ stable: 'v1', canary: 'v2' });
  let previous = 0;
  for (const weight of PLAN) {
    const change = await router.setWeight(weight);
    expect(change).toEqual({ previous, changed: true });
    const live = await read(ns, 'checkout-canary');
    expect(live.metadata?.annotations?.[`${N}canary-weight`]).toBe(String(weight));
    expect(live.metadata?.annotations?.[`${N}canary`]).toBe('true');
    expect(await router.verifyWeight(weight)).toEqual({ verified: true, weight });
    expect(await router.getWeight()).toBe(weight);
    previous = weight;
  }
  const other = await router.verifyWeight(25);
  expect(other).toMatchObject({ verified: false, weight: 0 });
});

test('a second identical setWeight (or setup) changes nothing', async () => {
  const { ns, router } = await fixture();
  await router.setup({ stable: 'v1', canary: 'v2' });
  const afterSetup = (await read(ns, 'checkout-canary')).metadata?.resourceVersion;
  await router.setup({ stable: 'v1', canary: 'v2' });
  expect((await read(ns, 'checkout-canary')).metadata?.resourceVersion).toBe(afterSetup);

  expect(await router.setWeight(25)).toEqual({ previous: 0, changed: true });
  const rv = (await read(ns, 'checkout-canary')).metadata?.resourceVersion;
  expect(await router.setWeight(25)).toEqual({ previous: 25, changed: false });
  expect((await read(ns, 'checkout-canary')).metadata?.resourceVersion).toBe(rv);

  // Setup after promotion (both versions equal) keeps the weight reached and writes nothing.
  await router.setup({ stable: 'v2', canary: 'v2' });
  expect((await read(ns, 'checkout-canary')).metadata?.resourceVersion).toBe(rv);
  expect(await router.getWeight()).toBe(25);
});

test('a gated shift (the rollback) writes only once the gate settles, and nothing when it fails', async () => {
  const { ns, router } = await fixture();
  await router.setup({ stable: 'v1', canary: 'v2' });
  await router.setWeight(25);
  await expectGatedShift(
    router,
    25,
    async () => (await read(ns, 'checkout-canary')).metadata?.resourceVersion,
  );
});

test('setup re-derives a changed primary and keeps what others put on the canary Ingress', async () => {
  const { ns, router } = await fixture();
  await router.setup({ stable: 'v1', canary: 'v2' });
  await router.setWeight(10);
  await admin.networking.patchNamespacedIngress(
    {
      name: 'checkout-canary',
      namespace: ns,
      body: { metadata: { annotations: { 'example.com/audit': 'seen' } } },
    },
    MERGE_PATCH,
  );
  const primary = await read(ns, 'checkout');
  const rules = plain(primary.spec!.rules!);
  rules[0].http!.paths.push({
    path: '/cart',
    pathType: 'Exact',
    backend: { service: { name: 'cart', port: { number: 8080 } } },
  });
  await admin.networking.patchNamespacedIngress(
    {
      name: 'checkout',
      namespace: ns,
      body: {
        metadata: { annotations: { [`${N}proxy-body-size`]: null, [`${N}ssl-redirect`]: 'false' } },
        spec: { rules, defaultBackend: null },
      },
    },
    MERGE_PATCH,
  );

  await router.setup({ stable: 'v1', canary: 'v2' });
  const canary = await read(ns, 'checkout-canary');
  const annotations = canary.metadata?.annotations ?? {};
  expect(annotations[`${N}proxy-body-size`]).toBeUndefined();
  expect(annotations[`${N}ssl-redirect`]).toBe('false');
  expect(annotations[`${N}canary-weight`]).toBe('10');
  expect(annotations['example.com/audit']).toBe('seen');
  expect(canary.spec?.defaultBackend).toBeUndefined();
  expect(canary.spec?.rules?.[0].http?.paths.map((p) => [p.path, p.backend.service?.name])).toEqual([
    ['/', 'checkout-canary'],
    ['/api', 'checkout-api-canary'],
    ['/cart', 'cart-canary'],
  ]);
});

/**
 * The router's clients, with a concurrent writer: just before the router's first patch of the canary Ingress, the
 * admin writes an unrelated annotation to it, so the router's patch (carrying the resourceVersion it read) gets 409.
 */
function withConcurrentWriter(ns: string): { clients: KubeClients; patches: () => number } {
  let patches = 0;
  const networking = new Proxy(admin.networking, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver) as unknown;
      if (prop !== 'patchNamespacedIngress' || typeof value !== 'function') return value;
      return async (...args: unknown[]) => {
        if (++patches === 1) {
          await admin.networking.patchNamespacedIngress(
            {
              name: 'checkout-canary',
              namespace: ns,
              body: { metadata: { annotations: { 'example.com/touched-by': 'someone-else' } } },
            },
            MERGE_PATCH,
          );
        }
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
  return { clients: { ...admin, networking }, patches: () => patches };
}

test('a concurrent writer causes a real 409: the router retries on a fresh read and keeps both changes', async () => {
  const { ns, target, router } = await fixture();
  await router.setup({ stable: 'v1', canary: 'v2' });
  const { clients, patches } = withConcurrentWriter(ns);
  const racing = new NginxRouter(clients, target);

  expect(await racing.setWeight(50)).toEqual({ previous: 0, changed: true });
  expect(patches()).toBe(2); // the first attempt was refused with 409
  const live = await read(ns, 'checkout-canary');
  expect(live.metadata?.annotations?.[`${N}canary-weight`]).toBe('50');
  expect(live.metadata?.annotations?.['example.com/touched-by']).toBe('someone-else');
});

test('drift: getWeight reports what someone else wrote', async () => {
  const { ns, router } = await fixture();
  await router.setup({ stable: 'v1', canary: 'v2' });
  await router.setWeight(25);
  await admin.networking.patchNamespacedIngress(
    {
      name: 'checkout-canary',
      namespace: ns,
      body: { metadata: { annotations: { [`${N}canary-weight`]: '40' } } },
    },
    MERGE_PATCH,
  );
  expect(await router.getWeight()).toBe(40);
  const v = await router.verifyWeight(25);
  expect(v).toMatchObject({ verified: false, weight: 40 });
  expect((v as { reason: string }).reason).toContain('checkout-canary');
  // Setting the weight again repairs it.
  expect(await router.setWeight(25)).toEqual({ previous: 40, changed: true });
  expect(await router.getWeight()).toBe(25);
});

test('setWeight before setup: invalid, except 0, which is a no-op', async () => {
  const { ns, router } = await fixture();
  const err = await rejection(router.setWeight(10));
  expect(err.kind).toBe('invalid');
  expect(err.message).toMatch(/setup must run first/);
  expect(err.message).toContain('checkout-canary');
  expect(await router.setWeight(0)).toEqual({ previous: 0, changed: false });
  expect(await router.getWeight()).toBe(0);
  expect(await router.verifyWeight(0)).toEqual({ verified: true, weight: 0 });
  expect(await exists(ns, 'checkout-canary')).toBe(false);
});

test('a missing primary Ingress at setup is not_found naming it', async () => {
  const { ns, router } = await fixture({ ingress: 'storefront' });
  const err = await rejection(router.setup({ stable: 'v1', canary: 'v2' }));
  expect(err.kind).toBe('not_found');
  expect(err.message).toContain('ingresses.networking.k8s.io "storefront"');
  expect(err.message).toContain(ns);
  expect(await exists(ns, 'storefront-canary')).toBe(false);
});

test('setup refuses to take over an Ingress it did not create', async () => {
  const { ns, router } = await fixture();
  const foreign = primaryIngress();
  foreign.metadata = { name: 'checkout-canary' };
  await admin.networking.createNamespacedIngress({ namespace: ns, body: foreign });
  const err = await rejection(router.setup({ stable: 'v1', canary: 'v2' }));
  expect(err.kind).toBe('invalid');
  expect(err.message).toMatch(/not created by temporal-canary/);
  // Teardown leaves it alone too.
  await router.teardown();
  expect(await exists(ns, 'checkout-canary')).toBe(true);
});

test('a worker account that may only read gets forbidden naming patch, the resource and the namespace', async () => {
  const { ns, target, router } = await fixture();
  await router.setup({ stable: 'v1', canary: 'v2' });
  await kube.grant(ns, 'read-ingresses', [
    { apiGroups: ['networking.k8s.io'], resources: ['ingresses'], verbs: ['get', 'list'] },
  ]);
  const restricted = new NginxRouter(kubeClients(kube.kubeConfig('restricted')), target);
  expect(await restricted.getWeight()).toBe(0);
  const err = await rejection(restricted.setWeight(10));
  expect(err.kind).toBe('forbidden');
  expect(err.message).toContain('"patch"');
  expect(err.message).toContain('ingresses.networking.k8s.io');
  expect(err.message).toContain(`"${ns}"`);
  expect(await router.getWeight()).toBe(0);
});

test('setup then teardown leaves the primary exactly as before and removes the canary Ingress', async () => {
  const { ns, router } = await fixture({ header: { name: 'x-canary', value: 'always' }, cookie: 'canary' });
  const before = await read(ns, 'checkout');
  await router.setup({ stable: 'v1', canary: 'v2' });
  for (const w of [5, 50]) await router.setWeight(w);
  await router.teardown();
  expect(await exists(ns, 'checkout-canary')).toBe(false);
  const after = await read(ns, 'checkout');
  expect(plain(after.spec)).toEqual(plain(before.spec));
  expect(after.metadata?.annotations).toEqual(before.metadata?.annotations);
  expect(after.metadata?.resourceVersion).toBe(before.metadata?.resourceVersion);
  expect(await router.getWeight()).toBe(0);
  // Idempotent: a second teardown (another worker, a retried activity) finds nothing to do.
  await router.teardown();
  // And a rollback after teardown can still go to 0.
  expect(await router.setWeight(0)).toEqual({ previous: 0, changed: false });
});

test('the constructor refuses another router type', () => {
  const v = validateTarget({ app: 'checkout', namespace: 'x', traffic: { istio: {} } });
  if (!v.ok) throw new Error('invalid target');
  expect(() => new NginxRouter(admin, v.target)).toThrow(ProviderError);
});
