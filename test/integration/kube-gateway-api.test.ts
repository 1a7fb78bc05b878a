// The Gateway API router against a real kube-apiserver with the standard-channel CRDs: the weighted backendRefs of
// one HTTPRoute rule through a whole plan, the header rule, idempotency, a real 409 from a concurrent writer,
// drift, a missing route and a missing CRD, a worker account that may only read, and teardown leaving the route
// exactly as it was.
import { kubeClients, MERGE_PATCH, type KubeClients } from '../../activities/kube/client';
import {
  GatewayApiRouter,
  HTTP_ROUTE,
  LEGACY_SETUP_ANNOTATION,
  headerRuleName,
  mirrorRuleName,
  setupAnnotation,
} from '../../activities/traffic/gateway-api';
import { ProviderError } from '../../activities/types';
import { validateTarget } from '../../workflows/target';
import { startKubeServer, type KubeServer } from '../../harness/kube';
import { expectGatedShift } from './gated-shift';

jest.setTimeout(180_000);

let kube: KubeServer;
let admin: KubeClients;

beforeAll(async () => {
  kube = await startKubeServer({ crds: ['gateway'] });
  admin = kubeClients(kube.kubeConfig('admin'));
});

afterAll(async () => {
  await kube?.stop();
});

const PLAN = [5, 10, 25, 50, 100, 0];
const CRD = 'httproutes.gateway.networking.k8s.io';
let counter = 0;

interface Ref {
  name: string;
  port?: number;
  weight?: number;
  group?: string;
  kind?: string;
}
interface Rule {
  name?: string;
  matches?: Array<Record<string, unknown>>;
  backendRefs?: Ref[];
  filters?: unknown[];
}
interface Route {
  metadata: { resourceVersion?: string; annotations?: Record<string, string> };
  spec: { rules: Rule[]; [k: string]: unknown };
}

function httpRoute(rules?: Rule[]) {
  return {
    apiVersion: 'gateway.networking.k8s.io/v1',
    kind: 'HTTPRoute',
    metadata: {
      name: 'checkout',
      annotations: { 'example.com/owner': 'team-shop' },
    },
    spec: {
      parentRefs: [{ name: 'public-gateway' }],
      hostnames: ['shop.example.com'],
      rules: rules ?? [
        {
          matches: [
            { path: { type: 'PathPrefix', value: '/' } },
            { path: { type: 'PathPrefix', value: '/shop' }, headers: [{ name: 'x-region', value: 'eu' }] },
          ],
          backendRefs: [{ name: 'checkout', port: 80 }],
        },
        {
          matches: [{ path: { type: 'PathPrefix', value: '/admin' } }],
          backendRefs: [{ name: 'admin', port: 8080 }],
        },
      ],
    },
  };
}

/** A fresh namespace with the HTTPRoute (unless `route` is null), and a router for it. */
async function fixture(gatewayAPI: Record<string, unknown> = {}, route: object | null = httpRoute()) {
  const ns = await kube.createNamespace(`gateway-${++counter}`);
  if (route) {
    await admin.custom.createNamespacedCustomObject({ ...HTTP_ROUTE, namespace: ns, body: route });
  }
  const v = validateTarget({ app: 'checkout', namespace: ns, traffic: { gatewayAPI } });
  if (!v.ok) throw new Error(JSON.stringify(v.problems));
  return { ns, target: v.target, router: new GatewayApiRouter(admin, v.target) };
}

async function read(ns: string, name = 'checkout'): Promise<Route> {
  return (await admin.custom.getNamespacedCustomObject({ ...HTTP_ROUTE, namespace: ns, name })) as Route;
}

async function adminPatch(ns: string, body: object): Promise<void> {
  await admin.custom.patchNamespacedCustomObject(
    { ...HTTP_ROUTE, namespace: ns, name: 'checkout', body },
    MERGE_PATCH,
  );
}

const weights = (route: Route, rule = 0) =>
  Object.fromEntries((route.spec.rules[rule].backendRefs ?? []).map((r) => [r.name, r.weight]));

async function rejection(p: Promise<unknown>): Promise<ProviderError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(ProviderError);
    return err as ProviderError;
  }
  throw new Error('expected a ProviderError');
}

test('setup adds the canary backendRef at weight 0 (same port) and records what it found', async () => {
  const { ns, router } = await fixture();
  await router.setup({ stable: 'v1', canary: 'v2' });
  const route = await read(ns);
  expect(route.spec.rules).toHaveLength(2);
  expect(route.spec.rules[0].backendRefs).toEqual([
    { group: '', kind: 'Service', name: 'checkout', port: 80, weight: 1 },
    { group: '', kind: 'Service', name: 'checkout-canary', port: 80, weight: 0 },
  ]);
  expect(JSON.parse(route.metadata.annotations![setupAnnotation(0)])).toEqual({
    canaryBackend: 'checkout-canary',
    rule: 0,
    stableWeight: 1,
    addedCanary: true,
  });
  expect(route.metadata.annotations!['example.com/owner']).toBe('team-shop');
  expect(await router.getWeight()).toBe(0);
  expect(await router.verifyWeight(0)).toEqual({ verified: true, weight: 0 });
});

test('traffic.port sets the canary backendRef port, rule picks the weighted rule', async () => {
  const rules: Rule[] = [
    {
      matches: [{ path: { type: 'PathPrefix', value: '/admin' } }],
      backendRefs: [{ name: 'admin', port: 8080 }],
    },
    { backendRefs: [{ name: 'checkout', port: 80, weight: 7 }] },
  ];
  const { ns, router } = await fixture({ rule: 1, port: 8443 }, httpRoute(rules));
  await router.setup({ stable: 'v1', canary: 'v2' });
  const route = await read(ns);
  expect(route.spec.rules[1].backendRefs?.[1]).toMatchObject({
    name: 'checkout-canary',
    port: 8443,
    weight: 0,
  });
  expect(route.spec.rules[0].backendRefs).toHaveLength(1);
  await router.setWeight(10);
  expect(weights(await read(ns), 1)).toEqual({ checkout: 90, 'checkout-canary': 10 });
  await router.teardown();
  expect((await read(ns)).spec.rules[1].backendRefs).toEqual([
    { group: '', kind: 'Service', name: 'checkout', port: 80, weight: 7 },
  ]);
});

test('a rule index out of range is invalid and says how many rules there are', async () => {
  const { router } = await fixture({ rule: 5 });
  for (const call of [
    () => router.setup({ canary: 'v2' }),
    () => router.setWeight(10),
    () => router.getWeight(),
  ]) {
    const err = await rejection(call());
    expect(err.kind).toBe('invalid');
    expect(err.message).toContain('has 2 rules');
    expect(err.message).toContain('rule 5');
  }
});

test('shifts through every stage of the plan and back to 0, verified on the live object', async () => {
  const { ns, router } = await fixture();
  await router.setup({ stable: 'v1', canary: 'v2' });
  let previous = 0;
  for (const weight of PLAN) {
    expect(await router.setWeight(weight)).toEqual({ previous, changed: true });
    expect(weights(await read(ns))).toEqual({ checkout: 100 - weight, 'checkout-canary': weight });
    expect(await router.verifyWeight(weight)).toEqual({ verified: true, weight });
    expect(await router.getWeight()).toBe(weight);
    previous = weight;
  }
  // At 0 the canary backendRef stays (weight 0) until teardown.
  expect((await read(ns)).spec.rules[0].backendRefs).toHaveLength(2);
  expect(await router.verifyWeight(5)).toMatchObject({ verified: false, weight: 0 });
});

test('a second identical setWeight (or setup) changes nothing', async () => {
  const { ns, router } = await fixture({ header: { name: 'x-canary', value: 'always' } });
  await router.setup({ stable: 'v1', canary: 'v2' });
  const afterSetup = (await read(ns)).metadata.resourceVersion;
  await router.setup({ stable: 'v1', canary: 'v2' });
  expect((await read(ns)).metadata.resourceVersion).toBe(afterSetup);

  expect(await router.setWeight(25)).toEqual({ previous: 0, changed: true });
  const rv = (await read(ns)).metadata.resourceVersion;
  expect(await router.setWeight(25)).toEqual({ previous: 25, changed: false });
  expect((await read(ns)).metadata.resourceVersion).toBe(rv);
  // Setup after promotion keeps the weights and writes nothing.
  await router.setup({ stable: 'v2', canary: 'v2' });
  expect((await read(ns)).metadata.resourceVersion).toBe(rv);
});

test('a gated shift (the rollback) writes only once the gate settles, and nothing when it fails', async () => {
  const { ns, router } = await fixture();
  await router.setup({ stable: 'v1', canary: 'v2' });
  await router.setWeight(25);
  await expectGatedShift(router, 25, async () => (await read(ns)).metadata.resourceVersion);
});

test('the header rule copies the weighted matches, adds the header and sends to the canary', async () => {
  const { ns, router } = await fixture({ header: { name: 'x-canary', value: 'always' } });
  await router.setup({ stable: 'v1', canary: 'v2' });
  const route = await read(ns);
  expect(route.spec.rules).toHaveLength(3);
  expect(route.spec.rules[1].matches).toEqual([{ path: { type: 'PathPrefix', value: '/admin' } }]);
  const added = route.spec.rules[2];
  expect(added.name).toBe(headerRuleName(0));
  expect(added.matches).toEqual([
    {
      path: { type: 'PathPrefix', value: '/' },
      headers: [{ type: 'Exact', name: 'x-canary', value: 'always' }],
    },
    {
      path: { type: 'PathPrefix', value: '/shop' },
      headers: [
        { type: 'Exact', name: 'x-region', value: 'eu' },
        { type: 'Exact', name: 'x-canary', value: 'always' },
      ],
    },
  ]);
  expect(added.backendRefs).toEqual([
    { group: '', kind: 'Service', name: 'checkout-canary', port: 80, weight: 1 },
  ]);

  // Another rule inserted before it does not confuse teardown: it finds the rule by its name.
  await adminPatch(ns, {
    spec: {
      rules: [
        ...route.spec.rules.slice(0, 2),
        {
          matches: [{ path: { type: 'Exact', value: '/health' } }],
          backendRefs: [{ name: 'health', port: 80 }],
        },
        route.spec.rules[2],
      ],
    },
  });
  await router.teardown();
  const after = await read(ns);
  expect(after.spec.rules.map((r) => r.matches?.[0].path)).toEqual([
    { type: 'PathPrefix', value: '/' },
    { type: 'PathPrefix', value: '/admin' },
    { type: 'Exact', value: '/health' },
  ]);
});

test('a weighted rule without matches gets a single header match; a header without value means "always"', async () => {
  const { ns, router } = await fixture(
    { header: { name: 'x-canary' } },
    httpRoute([{ backendRefs: [{ name: 'checkout', port: 80 }] }]),
  );
  await router.setup({ stable: 'v1', canary: 'v2' });
  const route = await read(ns);
  expect(route.spec.rules[1].matches).toEqual([
    {
      path: { type: 'PathPrefix', value: '/' },
      headers: [{ type: 'Exact', name: 'x-canary', value: 'always' }],
    },
  ]);
});

test('a header rule that lost its name (a CRD without rule names) is still found by what setup recorded', async () => {
  const { ns, router } = await fixture({ header: { name: 'x-canary', value: 'always' } });
  const before = await read(ns);
  await router.setup({ stable: 'v1', canary: 'v2' });
  await router.setWeight(10);
  const route = await read(ns);
  const { name: _name, ...unnamed } = route.spec.rules[2];
  await adminPatch(ns, { spec: { rules: [route.spec.rules[0], route.spec.rules[1], unnamed] } });
  // Re-running setup finds it (and does not add a second one) and writes nothing.
  const rv = (await read(ns)).metadata.resourceVersion;
  await router.setup({ stable: 'v1', canary: 'v2' });
  expect((await read(ns)).metadata.resourceVersion).toBe(rv);
  await router.teardown();
  const after = await read(ns);
  expect(after.spec).toEqual(before.spec);
  expect(after.metadata.annotations).toEqual(before.metadata.annotations);
});

test('dropping the header from the target removes the header rule at the next setup', async () => {
  const { ns, target } = await fixture({ header: { name: 'x-canary', value: 'always' } });
  await new GatewayApiRouter(admin, target).setup({ canary: 'v2' });
  expect((await read(ns)).spec.rules).toHaveLength(3);
  const v = validateTarget({ app: 'checkout', namespace: ns, traffic: { gatewayAPI: {} } });
  if (!v.ok) throw new Error('invalid target');
  await new GatewayApiRouter(admin, v.target).setup({ canary: 'v2' });
  const route = await read(ns);
  expect(route.spec.rules).toHaveLength(2);
  expect(JSON.parse(route.metadata.annotations![setupAnnotation(0)]).headerRule).toBeUndefined();
});

/**
 * The router's clients, with a concurrent writer: just before the router's first patch, the admin writes an
 * unrelated annotation to the HTTPRoute, so the router's patch (carrying the resourceVersion it read) gets 409.
 */
function withConcurrentWriter(ns: string): { clients: KubeClients; patches: () => number } {
  let patches = 0;
  const custom = new Proxy(admin.custom, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver) as unknown;
      if (prop !== 'patchNamespacedCustomObject' || typeof value !== 'function') return value;
      return async (...args: unknown[]) => {
        if (++patches === 1) {
          await adminPatch(ns, { metadata: { annotations: { 'example.com/touched-by': 'someone-else' } } });
        }
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
  return { clients: { ...admin, custom }, patches: () => patches };
}

test('a concurrent writer causes a real 409: the router retries on a fresh read and keeps both changes', async () => {
  const { ns, target, router } = await fixture();
  await router.setup({ stable: 'v1', canary: 'v2' });
  const { clients, patches } = withConcurrentWriter(ns);
  const racing = new GatewayApiRouter(clients, target);

  expect(await racing.setWeight(50)).toEqual({ previous: 0, changed: true });
  expect(patches()).toBe(2); // the first attempt was refused with 409
  const live = await read(ns);
  expect(weights(live)).toEqual({ checkout: 50, 'checkout-canary': 50 });
  expect(live.metadata.annotations?.['example.com/touched-by']).toBe('someone-else');
});

test('drift: getWeight reports the live share when someone else changes the weights', async () => {
  const { ns, router } = await fixture();
  await router.setup({ stable: 'v1', canary: 'v2' });
  await router.setWeight(25);
  const route = await read(ns);
  route.spec.rules[0].backendRefs![0].weight = 70;
  route.spec.rules[0].backendRefs![1].weight = 30;
  await adminPatch(ns, { spec: { rules: route.spec.rules } });
  expect(await router.getWeight()).toBe(30);
  const v = await router.verifyWeight(25);
  expect(v).toMatchObject({ verified: false, weight: 30 });
  expect((v as { reason: string }).reason).toMatch(/weight 70 .*weight 30, expected 75 and 25/);

  // Weights are proportions, not percents: 900/100 is a 10 % canary.
  route.spec.rules[0].backendRefs![0].weight = 900;
  route.spec.rules[0].backendRefs![1].weight = 100;
  await adminPatch(ns, { spec: { rules: route.spec.rules } });
  expect(await router.getWeight()).toBe(10);
  expect(await router.verifyWeight(10)).toEqual({ verified: true, weight: 10 });
  expect(await router.setWeight(25)).toEqual({ previous: 10, changed: true });
  expect(weights(await read(ns))).toEqual({ checkout: 75, 'checkout-canary': 25 });
});

test('setWeight before setup: invalid, except 0, which is a no-op', async () => {
  const { ns, router } = await fixture();
  const rv = (await read(ns)).metadata.resourceVersion;
  const err = await rejection(router.setWeight(10));
  expect(err.kind).toBe('invalid');
  expect(err.message).toMatch(/setup must run first/);
  expect(err.message).toContain('checkout-canary');
  expect(await router.setWeight(0)).toEqual({ previous: 0, changed: false });
  expect(await router.getWeight()).toBe(0);
  expect(await router.verifyWeight(0)).toEqual({ verified: true, weight: 0 });
  expect((await read(ns)).metadata.resourceVersion).toBe(rv);
});

test('a missing HTTPRoute is not_found naming it', async () => {
  const { ns, router } = await fixture({}, null);
  for (const call of [
    () => router.setup({ canary: 'v2' }),
    () => router.setWeight(10),
    () => router.getWeight(),
  ]) {
    const err = await rejection(call());
    expect(err.kind).toBe('not_found');
    expect(err.message).toContain(`${CRD} "checkout"`);
    expect(err.message).toContain(ns);
  }
  // Nothing to tear down on a route that does not exist.
  await expect(router.teardown()).resolves.toBeUndefined();
});

test('a missing HTTPRoute CRD is not_found naming the CRD', async () => {
  const { router } = await fixture();
  await kube.deleteCrd(CRD);
  try {
    for (const call of [() => router.setWeight(10), () => router.getWeight(), () => router.teardown()]) {
      const err = await rejection(call());
      expect(err.kind).toBe('not_found');
      expect(err.message).toContain(CRD);
      expect(err.message).toMatch(/CRD/);
    }
  } finally {
    await kube.installCrds(['gateway']);
  }
});

test('a worker account that may only read gets forbidden naming patch, the resource and the namespace', async () => {
  const { ns, target, router } = await fixture();
  await router.setup({ stable: 'v1', canary: 'v2' });
  await kube.grant(ns, 'read-routes', [
    { apiGroups: ['gateway.networking.k8s.io'], resources: ['httproutes'], verbs: ['get', 'list'] },
  ]);
  const restricted = new GatewayApiRouter(kubeClients(kube.kubeConfig('restricted')), target);
  expect(await restricted.getWeight()).toBe(0);
  const err = await rejection(restricted.setWeight(10));
  expect(err.kind).toBe('forbidden');
  expect(err.message).toContain('"patch"');
  expect(err.message).toContain(CRD);
  expect(err.message).toContain(`"${ns}"`);
  expect(weights(await read(ns))).toEqual({ checkout: 1, 'checkout-canary': 0 });
});

test('setup then teardown leaves the HTTPRoute exactly as before', async () => {
  const { ns, router } = await fixture({ header: { name: 'x-canary', value: 'always' } });
  const before = await read(ns);
  await router.setup({ stable: 'v1', canary: 'v2' });
  for (const w of [5, 50, 100]) await router.setWeight(w);
  await router.teardown();
  const after = await read(ns);
  expect(after.spec).toEqual(before.spec);
  expect(after.metadata.annotations).toEqual(before.metadata.annotations);
  expect(await router.getWeight()).toBe(0);
  // Idempotent: a second teardown writes nothing.
  await router.teardown();
  expect((await read(ns)).metadata.resourceVersion).toBe(after.metadata.resourceVersion);
});

test('a canary backendRef that was there before the rollout stays, without traffic', async () => {
  const rules: Rule[] = [
    {
      backendRefs: [
        { name: 'checkout', port: 80, weight: 100 },
        { name: 'checkout-canary', port: 80, weight: 0 },
      ],
    },
  ];
  const { ns, router } = await fixture({}, httpRoute(rules));
  const before = await read(ns);
  await router.setup({ stable: 'v1', canary: 'v2' });
  expect(JSON.parse((await read(ns)).metadata.annotations![setupAnnotation(0)]).addedCanary).toBe(false);
  await router.setWeight(25);
  await router.teardown();
  const after = await read(ns);
  expect(after.spec).toEqual(before.spec);
  expect(after.metadata.annotations).toEqual(before.metadata.annotations);
});

describe('several apps on one HTTPRoute, a rule each', () => {
  const routerFor = (ns: string, gatewayAPI: Record<string, unknown>, app: string) => {
    const v = validateTarget({ app, namespace: ns, traffic: { gatewayAPI } });
    if (!v.ok) throw new Error(JSON.stringify(v.problems));
    return new GatewayApiRouter(admin, v.target);
  };
  const header = { name: 'x-canary', value: 'always' };
  const adminRule = {
    httpRoute: 'checkout',
    rule: 1,
    stableBackend: 'admin',
    canaryBackend: 'admin-canary',
    header,
  };

  test('each rollout keeps its own weights, header rule and record, and teardown of one leaves the other', async () => {
    const { ns, router: shop } = await fixture({ header });
    const adminApp = routerFor(ns, adminRule, 'admin');
    const before = await read(ns);
    await shop.setup({ canary: 'v2' });
    await adminApp.setup({ canary: 'v9' });
    await shop.setWeight(25);
    await adminApp.setWeight(50);
    let route = await read(ns);
    expect(weights(route, 0)).toEqual({ checkout: 75, 'checkout-canary': 25 });
    expect(weights(route, 1)).toEqual({ admin: 50, 'admin-canary': 50 });
    expect(route.spec.rules.map((r) => r.name)).toEqual([
      undefined,
      undefined,
      'canary-header-0',
      'canary-header-1',
    ]);
    expect(route.spec.rules[3].backendRefs?.map((r) => r.name)).toEqual(['admin-canary']);
    expect(JSON.parse(route.metadata.annotations![setupAnnotation(1)])).toMatchObject({
      canaryBackend: 'admin-canary',
      rule: 1,
    });
    expect(await shop.verifyWeight(25)).toEqual({ verified: true, weight: 25 });
    expect(await adminApp.verifyWeight(50)).toEqual({ verified: true, weight: 50 });

    await shop.teardown();
    route = await read(ns);
    expect(route.spec.rules[0]).toEqual(before.spec.rules[0]);
    expect(route.spec.rules.map((r) => r.name)).toEqual([undefined, undefined, 'canary-header-1']);
    expect(route.metadata.annotations![setupAnnotation(0)]).toBeUndefined();
    expect(await adminApp.getWeight()).toBe(50);
    await adminApp.setWeight(100);
    await adminApp.teardown();
    const after = await read(ns);
    expect(after.spec).toEqual(before.spec);
    expect(after.metadata.annotations).toEqual(before.metadata.annotations);
  });

  test('a second rollout on a rule another rollout holds is refused, naming it, and writes nothing', async () => {
    const { ns, router: shop } = await fixture();
    await shop.setup({ canary: 'v2' });
    await shop.setWeight(10);
    const held = await read(ns);
    const other = routerFor(
      ns,
      { httpRoute: 'checkout', stableBackend: 'checkout', canaryBackend: 'checkout-next' },
      'next',
    );
    const err = await rejection(other.setup({ canary: 'v3' }));
    expect(err.kind).toBe('invalid');
    expect(err.message).toMatch(
      /^rule 0 of HTTPRoute "checkout" in namespace "gateway-\d+" is in another rollout, to canary backend "checkout-canary" \(annotation canary\.temporal\.io\/gateway-api-setup\.rule-0\): one rollout per rule/,
    );
    expect((await read(ns)).metadata.resourceVersion).toBe(held.metadata.resourceVersion);
    // Nor can a target name the header rule another rollout added as its weighted rule.
    const { ns: ns2, router: withHeader } = await fixture({ header });
    await withHeader.setup({ canary: 'v2' });
    const onHeader = routerFor(ns2, { ...adminRule, rule: 2 }, 'admin');
    expect((await rejection(onHeader.setup({ canary: 'v9' }))).message).toMatch(
      /rule 2 of HTTPRoute "checkout" .* is the header rule "canary-header-0" another rollout's setup added/,
    );
  });

  test('a rollout set up before one annotation per rule is carried over by setup, and torn down completely', async () => {
    const { ns, router } = await fixture({ header });
    const before = await read(ns);
    /** Rewrites this rollout's setup the way the previous version wrote it: one annotation, one header rule name. */
    const makeLegacy = async () => {
      const route = await read(ns);
      const { rule: _rule, ...record } = JSON.parse(route.metadata.annotations![setupAnnotation(0)]);
      record.headerRule.name = 'canary-header';
      const rules = route.spec.rules.map((r) =>
        r.name === headerRuleName(0) ? { ...r, name: 'canary-header' } : r,
      );
      await adminPatch(ns, {
        metadata: {
          annotations: { [setupAnnotation(0)]: null, [LEGACY_SETUP_ANNOTATION]: JSON.stringify(record) },
        },
        spec: { rules },
      });
    };

    // Torn down straight from the old record.
    await router.setup({ canary: 'v2' });
    await router.setWeight(50);
    await makeLegacy();
    await router.teardown();
    let after = await read(ns);
    expect(after.spec).toEqual(before.spec);
    expect(after.metadata.annotations).toEqual(before.metadata.annotations);

    // Set up again (a retried setup after the upgrade): the record moves to the rule's annotation.
    await router.setup({ canary: 'v2' });
    await makeLegacy();
    await router.setup({ canary: 'v2' });
    const moved = await read(ns);
    expect(moved.metadata.annotations![LEGACY_SETUP_ANNOTATION]).toBeUndefined();
    expect(JSON.parse(moved.metadata.annotations![setupAnnotation(0)])).toMatchObject({
      rule: 0,
      headerRule: { name: headerRuleName(0) },
    });
    expect(moved.spec.rules.map((r) => r.name)).toEqual([undefined, undefined, headerRuleName(0)]);
    await router.teardown();
    after = await read(ns);
    expect(after.spec).toEqual(before.spec);
    expect(after.metadata.annotations).toEqual(before.metadata.annotations);
  });
});

test('the constructor refuses another router type', () => {
  const v = validateTarget({ app: 'checkout', namespace: 'x', traffic: { nginx: {} } });
  if (!v.ok) throw new Error('invalid target');
  expect(() => new GatewayApiRouter(admin, v.target)).toThrow(ProviderError);
});

describe('a shadow stage (mirror)', () => {
  const GET_ONLY = { percent: 20, methods: ['GET'] };
  const mirrorFilter = (percent?: number) => ({
    type: 'RequestMirror',
    requestMirror: {
      backendRef: { group: '', kind: 'Service', name: 'checkout-canary', port: 80 },
      ...(percent !== undefined ? { percent } : {}),
    },
  });

  test('mirrors 20 % of GET requests through a rule of its own; the next stage and a rollback remove it', async () => {
    const { ns, router } = await fixture();
    await router.setup({ stable: 'v1', canary: 'v2' });
    const setUp = await read(ns);

    expect(await router.setWeight(0, GET_ONLY)).toEqual({ previous: 0, changed: true });
    expect(await router.verifyWeight(0, GET_ONLY)).toEqual({ verified: true, weight: 0 });
    let route = await read(ns);
    expect(route.spec.rules.map((r) => r.name)).toEqual([undefined, undefined, mirrorRuleName(0)]);
    const mirror = route.spec.rules[2];
    // Each of the weighted rule's matches, for GET only: a method match ranks it above the weighted rule for them.
    expect(mirror.matches).toEqual([
      { path: { type: 'PathPrefix', value: '/' }, method: 'GET' },
      {
        path: { type: 'PathPrefix', value: '/shop' },
        headers: [{ type: 'Exact', name: 'x-region', value: 'eu' }],
        method: 'GET',
      },
    ]);
    expect(mirror.backendRefs).toEqual(route.spec.rules[0].backendRefs);
    expect(mirror.filters).toEqual([mirrorFilter(20)]);
    // Other methods still take the weighted rule: all to stable, no filter.
    expect(weights(route)).toEqual({ checkout: 100, 'checkout-canary': 0 });
    expect(route.spec.rules[0].filters).toBeUndefined();
    expect(route.spec.rules[1]).toEqual(setUp.spec.rules[1]);
    expect(JSON.parse(route.metadata.annotations![setupAnnotation(0)]).mirror).toEqual({
      percent: 20,
      rule: { name: mirrorRuleName(0), matches: mirror.matches },
    });
    expect(await router.setWeight(0, GET_ONLY)).toEqual({ previous: 0, changed: false });

    // The next stage: traffic moves and the mirror goes.
    await router.setWeight(5);
    expect(await router.verifyWeight(5)).toEqual({ verified: true, weight: 5 });
    route = await read(ns);
    expect(route.spec.rules).toHaveLength(2);
    expect(JSON.parse(route.metadata.annotations![setupAnnotation(0)]).mirror).toBeUndefined();

    // Every method: the filter goes on the weighted rule itself; a rollback (weight 0, no mirror) removes it.
    await router.setWeight(0, { percent: 50 });
    route = await read(ns);
    expect(route.spec.rules).toHaveLength(2);
    expect(route.spec.rules[0].filters).toEqual([mirrorFilter(50)]);
    expect(await router.verifyWeight(0)).toMatchObject({ verified: false });
    await router.setWeight(0);
    expect(await router.verifyWeight(0)).toEqual({ verified: true, weight: 0 });
    expect((await read(ns)).spec.rules[0].filters).toBeUndefined();
  });

  test('teardown by any worker removes a mirror left behind, leaving the route as it was', async () => {
    const { ns, router, target } = await fixture();
    const before = await read(ns);
    await router.setup({ stable: 'v1', canary: 'v2' });
    await router.setWeight(0, { percent: 30, methods: ['GET', 'HEAD'] });
    const route = await read(ns);
    expect(route.spec.rules[2].matches?.map((m) => m.method)).toEqual(['GET', 'HEAD', 'GET', 'HEAD']);
    await new GatewayApiRouter(admin, target).teardown();
    const after = await read(ns);
    expect(after.spec).toEqual(before.spec);
    expect(after.metadata.annotations).toEqual(before.metadata.annotations);
  });

  test('a mirror with a weight, or on a rule that takes no GET, is refused', async () => {
    const { ns, router } = await fixture();
    await router.setup({ stable: 'v1', canary: 'v2' });
    expect((await rejection(router.setWeight(5, GET_ONLY))).message).toMatch(/canary weight 0/);
    const route = await read(ns);
    const rules = route.spec.rules;
    await adminPatch(ns, {
      spec: {
        rules: [
          { ...rules[0], matches: [{ path: { type: 'PathPrefix', value: '/' }, method: 'POST' }] },
          rules[1],
        ],
      },
    });
    expect((await rejection(router.setWeight(0, GET_ONLY))).message).toMatch(
      /takes no GET requests .*nothing can be mirrored/,
    );
  });
});
