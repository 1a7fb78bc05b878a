// Fixtures for whole rollouts on a real API server: a stable Deployment (pod label `version: v1`), its Services, and
// the router objects of one app (Istio VirtualService + DestinationRule, NGINX Ingress, or Gateway API HTTPRoute),
// with snapshots of those objects and a reading of the live weights as a mesh would apply them.
import type { V1Deployment, V1DeploymentSpec } from '@kubernetes/client-node';
import type { KubeClients } from '../activities/kube/client';

export type RouterKind = 'istio' | 'nginx' | 'gatewayAPI';

/** What identifies an object's state for a comparison: no resourceVersion, generation, uid, timestamps. */
export interface ObjectState {
  spec: unknown;
  annotations: Record<string, string>;
  labels: Record<string, string>;
}

/** Router objects by kind/name; null where the object does not exist. */
export type RouterSnapshot = Record<string, ObjectState | null>;

export interface LiveWeights {
  stable: number;
  canary: number;
}

export interface RolloutFixture {
  router: RouterKind;
  namespace: string;
  app: string;
  /** The canary Deployment's name (derived by the target's defaults). */
  canaryName: string;
  /** The `target:` a `--target` file carries. */
  target: Record<string, unknown>;
  stableImage: string;
  /** The router's objects as they are now. */
  snapshot(): Promise<RouterSnapshot>;
  /** The percent of traffic the live router object sends to each side. */
  weights(): Promise<LiveWeights>;
  stableDeployment(): Promise<V1Deployment>;
  /** The canary Deployment, undefined when it does not exist. */
  canaryDeployment(): Promise<V1Deployment | undefined>;
}

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const ISTIO = { group: 'networking.istio.io', version: 'v1' };
const HTTP_ROUTES = { group: 'gateway.networking.k8s.io', version: 'v1', plural: 'httproutes' };
const NGINX_WEIGHT = 'nginx.ingress.kubernetes.io/canary-weight';
const HEADER = { name: 'x-canary', value: 'always' };

/** JSON form (client-node models carry undefined fields and Dates). */
export const plain = <T>(v: T): T => JSON.parse(JSON.stringify(v)) as T;

const stateOf = (o: { metadata?: Obj; spec?: unknown }): ObjectState => ({
  spec: plain(o.spec ?? null),
  annotations: { ...(o.metadata?.annotations ?? {}) },
  labels: { ...(o.metadata?.labels ?? {}) },
});

function status(err: unknown): number | undefined {
  const code = (err as { code?: unknown } | undefined)?.code;
  return typeof code === 'number' ? code : undefined;
}

async function orNull<T>(p: Promise<T>): Promise<T | null> {
  try {
    return await p;
  } catch (err) {
    if (status(err) === 404) return null;
    throw err;
  }
}

/** The stable Deployment: selector on `app` only, so promotion can move the pods' version label to the new one. */
function stableDeploymentBody(app: string, image: string): V1Deployment {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: {
      name: app,
      labels: { app, team: 'shop' },
      annotations: { 'example.com/owner': 'team-shop' },
    },
    spec: {
      replicas: 2,
      selector: { matchLabels: { app } },
      template: {
        metadata: { labels: { app, version: 'v1' } },
        spec: {
          containers: [
            { name: 'app', image, ports: [{ containerPort: 8080 }] },
            { name: 'sidecar', image: 'example/proxy:3' },
          ],
        },
      },
    },
  };
}

/**
 * Creates the app's stable Deployment (pods `app: <app>, version: v1`) and its Services: `<app>` selecting every pod of
 * the app, `<app>-canary` selecting the canary's (`canary.temporal.io/role: canary`). Returns the stable image.
 */
export async function createStableWorkload(
  admin: KubeClients,
  namespace: string,
  app: string,
): Promise<string> {
  const stableImage = `registry.example:5000/shop/${app}:v1`;
  await admin.apps.createNamespacedDeployment({ namespace, body: stableDeploymentBody(app, stableImage) });
  // Services for the routers to point at (nothing serves them: the test API server runs no pods).
  for (const [name, selector] of [
    [app, { app }],
    [`${app}-canary`, { app, 'canary.temporal.io/role': 'canary' }],
  ] as const) {
    await admin.core.createNamespacedService({
      namespace,
      body: {
        metadata: { name },
        spec: {
          selector,
          ports: [{ name: 'http', port: 80, targetPort: 8080 }],
        },
      },
    });
  }
  return stableImage;
}

/**
 * Creates the app's stable Deployment, its Services (`<app>` and `<app>-canary`) and the router's objects in the
 * namespace, and returns the fixture. Objects are named after the app.
 */
export async function createRolloutFixture(
  admin: KubeClients,
  router: RouterKind,
  namespace: string,
  app: string,
): Promise<RolloutFixture> {
  const stableImage = await createStableWorkload(admin, namespace, app);

  const objects = routerObjects(admin, router, namespace, app);
  await objects.create();
  const canaryName = `${app}-canary`;
  return {
    router,
    namespace,
    app,
    canaryName,
    stableImage,
    target: {
      app,
      namespace,
      workload: { kind: 'Deployment', name: app, container: 'app', progressDeadline: '30s' },
      traffic: { [router]: objects.traffic },
    },
    snapshot: objects.snapshot,
    weights: objects.weights,
    stableDeployment: () => admin.apps.readNamespacedDeployment({ namespace, name: app }),
    canaryDeployment: async () =>
      (await orNull(admin.apps.readNamespacedDeployment({ namespace, name: canaryName }))) ?? undefined,
  };
}

interface RouterObjects {
  traffic: Record<string, unknown>;
  create(): Promise<void>;
  snapshot(): Promise<RouterSnapshot>;
  weights(): Promise<LiveWeights>;
}

function routerObjects(
  admin: KubeClients,
  router: RouterKind,
  namespace: string,
  app: string,
): RouterObjects {
  switch (router) {
    case 'istio':
      return istioObjects(admin, namespace, app);
    case 'nginx':
      return nginxObjects(admin, namespace, app);
    case 'gatewayAPI':
      return gatewayObjects(admin, namespace, app);
  }
}

// --- Istio: a VirtualService with a managed route (one stable destination, no weight) and a route of someone
// else's; a DestinationRule with the stable subset only. -------------------------------------------------------

function istioObjects(admin: KubeClients, namespace: string, app: string): RouterObjects {
  const get = (plural: string) =>
    orNull(
      admin.custom.getNamespacedCustomObject({ ...ISTIO, namespace, plural, name: app }) as Promise<Obj>,
    );
  return {
    traffic: { virtualService: app, routes: ['primary'], destinationRule: app, header: HEADER },
    async create() {
      const host = `${app}.${namespace}.svc.cluster.local`;
      await admin.custom.createNamespacedCustomObject({
        ...ISTIO,
        namespace,
        plural: 'destinationrules',
        body: {
          apiVersion: `${ISTIO.group}/v1`,
          kind: 'DestinationRule',
          metadata: { name: app, labels: { app }, annotations: { 'example.com/owner': 'team-shop' } },
          spec: {
            host,
            trafficPolicy: { connectionPool: { http: { http1MaxPendingRequests: 100 } } },
            subsets: [{ name: 'stable', labels: { version: 'v1' } }],
          },
        },
      });
      await admin.custom.createNamespacedCustomObject({
        ...ISTIO,
        namespace,
        plural: 'virtualservices',
        body: {
          apiVersion: `${ISTIO.group}/v1`,
          kind: 'VirtualService',
          metadata: { name: app, labels: { app }, annotations: { 'example.com/owner': 'team-shop' } },
          spec: {
            hosts: [host],
            http: [
              {
                name: 'admin',
                match: [{ uri: { prefix: '/admin' } }],
                route: [{ destination: { host: `admin.${namespace}.svc.cluster.local` } }],
              },
              {
                name: 'primary',
                match: [{ uri: { prefix: '/' } }],
                route: [{ destination: { host, subset: 'stable', port: { number: 80 } } }],
                timeout: '5s',
              },
            ],
          },
        },
      });
    },
    async snapshot() {
      const [vs, dr] = await Promise.all([get('virtualservices'), get('destinationrules')]);
      return {
        [`VirtualService/${app}`]: vs && stateOf(vs),
        [`DestinationRule/${app}`]: dr && stateOf(dr),
      };
    },
    async weights() {
      const vs = await get('virtualservices');
      const route = (vs?.spec?.http as Obj[] | undefined)?.find((h) => h.name === 'primary');
      const dests = (route?.route as Obj[] | undefined) ?? [];
      const share = (subset: string): number => {
        const d = dests.find((x) => x.destination?.subset === subset);
        if (!d) return 0;
        return typeof d.weight === 'number' ? d.weight : dests.length === 1 ? 100 : 0;
      };
      return { stable: share('stable'), canary: share('canary') };
    },
  };
}

// --- NGINX: the primary Ingress; the router derives a canary Ingress `<app>-canary` from it. --------------------

function nginxObjects(admin: KubeClients, namespace: string, app: string): RouterObjects {
  const get = (name: string) => orNull(admin.networking.readNamespacedIngress({ namespace, name }));
  const canaryIngress = `${app}-canary`;
  return {
    traffic: { ingress: app, header: HEADER },
    async create() {
      await admin.networking.createNamespacedIngress({
        namespace,
        body: {
          apiVersion: 'networking.k8s.io/v1',
          kind: 'Ingress',
          metadata: {
            name: app,
            labels: { app },
            annotations: {
              'nginx.ingress.kubernetes.io/proxy-body-size': '8m',
              'example.com/owner': 'team-shop',
            },
          },
          spec: {
            ingressClassName: 'nginx',
            rules: [
              {
                host: `${app}.example.com`,
                http: {
                  paths: [
                    {
                      path: '/',
                      pathType: 'Prefix',
                      backend: { service: { name: app, port: { number: 80 } } },
                    },
                  ],
                },
              },
            ],
          },
        },
      });
    },
    async snapshot() {
      const [primary, canary] = await Promise.all([get(app), get(canaryIngress)]);
      return {
        [`Ingress/${app}`]: primary && stateOf(primary),
        [`Ingress/${canaryIngress}`]: canary && stateOf(canary),
      };
    },
    async weights() {
      const canary = await get(canaryIngress);
      const annotations = canary?.metadata?.annotations ?? {};
      const w =
        annotations['nginx.ingress.kubernetes.io/canary'] === 'true'
          ? Number(annotations[NGINX_WEIGHT] ?? 0)
          : 0;
      return { stable: 100 - w, canary: w };
    },
  };
}

// --- Gateway API: an HTTPRoute whose first rule sends to the stable Service (no weight: implied 1), and a second
// rule of someone else's. ------------------------------------------------------------------------------------------

function gatewayObjects(admin: KubeClients, namespace: string, app: string): RouterObjects {
  const get = () =>
    orNull(admin.custom.getNamespacedCustomObject({ ...HTTP_ROUTES, namespace, name: app }) as Promise<Obj>);
  return {
    traffic: { httpRoute: app, header: HEADER },
    async create() {
      await admin.custom.createNamespacedCustomObject({
        ...HTTP_ROUTES,
        namespace,
        body: {
          apiVersion: 'gateway.networking.k8s.io/v1',
          kind: 'HTTPRoute',
          metadata: { name: app, labels: { app }, annotations: { 'example.com/owner': 'team-shop' } },
          spec: {
            parentRefs: [{ name: 'public-gateway' }],
            hostnames: [`${app}.example.com`],
            rules: [
              {
                matches: [{ path: { type: 'PathPrefix', value: '/' } }],
                backendRefs: [{ name: app, port: 80 }],
              },
              {
                matches: [{ path: { type: 'PathPrefix', value: '/admin' } }],
                backendRefs: [{ name: 'admin', port: 8080 }],
              },
            ],
          },
        },
      });
    },
    async snapshot() {
      const route = await get();
      return { [`HTTPRoute/${app}`]: route && stateOf(route) };
    },
    async weights() {
      const route = await get();
      const refs = ((route?.spec?.rules as Obj[] | undefined)?.[0]?.backendRefs as Obj[] | undefined) ?? [];
      const weightOf = (name: string): number => {
        const r = refs.find((x) => x.name === name);
        return r ? (typeof r.weight === 'number' ? r.weight : 1) : 0;
      };
      const s = weightOf(app);
      const c = weightOf(`${app}-canary`);
      const canary = s + c > 0 ? Math.round((100 * c) / (s + c)) : 0;
      return { stable: 100 - canary, canary };
    },
  };
}

/** The parts of a Deployment spec a rollout may change, for a before/after comparison. */
export function deploymentSpec(d: V1Deployment): V1DeploymentSpec {
  return plain(d.spec!);
}

export interface WeightWatch {
  /** Canary weights seen on the live object, in order, consecutive repeats collapsed. */
  seen: number[];
  stop(): Promise<number[]>;
}

/** Polls the live router object (every `pollMs`) and records the canary weights it carries. */
export function watchWeights(fixture: RolloutFixture, pollMs = 100): WeightWatch {
  const seen: number[] = [];
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      try {
        const { canary } = await fixture.weights();
        if (seen[seen.length - 1] !== canary) seen.push(canary);
      } catch {
        // A read racing a write (or a 5xx) is retried on the next poll.
      }
      await new Promise((r) => setTimeout(r, pollMs));
    }
  })();
  return {
    seen,
    stop: async () => {
      stopped = true;
      await loop;
      return seen;
    },
  };
}
