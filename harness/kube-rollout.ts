// Fixtures for whole rollouts on a real API server: a stable Deployment (pod label `version: v1`), its Services, and
// the router objects of one app (Istio VirtualService + DestinationRule, NGINX Ingress, or Gateway API HTTPRoute),
// with snapshots of those objects and a reading of the live weights as a mesh would apply them.
import type { V1Deployment, V1DeploymentSpec } from '@kubernetes/client-node';
import type { KubeClients } from '../activities/kube/client';
import type { Target } from '../workflows/target';

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
  const read = async (): Promise<void> => {
    try {
      const { canary } = await fixture.weights();
      if (seen[seen.length - 1] !== canary) seen.push(canary);
    } catch {
      // A read racing a write (or a 5xx) is retried on the next poll.
    }
  };
  const loop = (async () => {
    while (!stopped) {
      await read();
      await new Promise((r) => setTimeout(r, pollMs));
    }
  })();
  return {
    seen,
    stop: async () => {
      stopped = true;
      await loop;
      // One last read: a stop that came while the loop slept would otherwise miss the weight the caller just saw.
      await read();
      return seen;
    },
  };
}

// --- any target: what a Deployment target needs to exist, created from the target itself ------------------------
// For trying an example plan on the test API server: the stable Deployment (and its pods' labels), the Services the
// router sends to, and the router objects a rollout does not create itself, all named as the target names them.
// Stable's pods carry `app: <app>` and `<versionLabel>: v1`; the canary's will carry `canary.temporal.io/role: canary`
// too (the workload manager adds it), which is what the canary Services select.

/** A router a target can name on a Kubernetes cluster. */
export type KubeRouterKind = Exclude<Target['traffic'], undefined | { router: 'local' }>['router'];

export interface TargetFixtureOptions {
  /** The version stable runs (its pods' version label and image tag). Default v1. */
  stableVersion?: string;
  /** Stable's replicas; default 10 for the replica-ratio router (weights in 10 % steps), else 3. */
  replicas?: number;
  /** The image repository (tag = the version). Default `registry.example:5000/<namespace>/<app>`. */
  repository?: string;
}

/** One object the fixture made, for people: `Service api-gateway-canary (selects app=api-gateway, ...)`. */
export interface CreatedObject {
  kind: string;
  name: string;
  note: string;
}

/** A stable-side selector (a Service or a subset) and whether it selects stable's pods now. */
export interface StableSelector {
  what: string;
  selector: Record<string, string>;
  selectsStable: boolean;
}

export interface TargetFixture {
  router: KubeRouterKind;
  namespace: string;
  app: string;
  target: Target;
  stableName: string;
  canaryName: string;
  versionLabel: string;
  stableImage: string;
  /** The image the new version would run: the same repository, tagged with `version`. */
  imageFor(version: string): string;
  created: CreatedObject[];
  /** The router objects and Services as they are now (null: absent). */
  snapshot(): Promise<RouterSnapshot>;
  /** The percent of traffic the live router object (or the replica ratio) gives each side. */
  weights(): Promise<LiveWeights>;
  stableDeployment(): Promise<V1Deployment>;
  canaryDeployment(): Promise<V1Deployment | undefined>;
  /** The Services and subsets that send stable's share, and whether each selects stable's pods as they are now. */
  stableSelectors(): Promise<StableSelector[]>;
}

const TRAFFIC_SPLITS = { group: 'split.smi-spec.io', version: 'v1alpha2', plural: 'trafficsplits' };
const ROLE_LABEL = 'canary.temporal.io/role';
/** The routes the Istio router adds (and removes again): never managed routes. */
const ISTIO_RESERVED_ROUTES = new Set(['canary-header', 'canary-sticky']);

const formatSelector = (s: Record<string, string>) =>
  Object.entries(s)
    .map(([k, v]) => `${k}=${v}`)
    .join(', ');

const selects = (selector: Record<string, string>, labels: Record<string, string>) =>
  Object.keys(selector).length > 0 && Object.entries(selector).every(([k, v]) => labels[k] === v);

/**
 * Creates what a validated target with a Deployment workload and a Kubernetes router needs in its namespace (which
 * must exist), named as the target names it, and returns the fixture. Istio: the VirtualService (its managed routes
 * sending to the `stable` subset of `<app>.<ns>.svc.cluster.local`) and, when the target names one, the
 * DestinationRule with the stable subset (setup adds the canary's); a target that names none gets none, so its
 * preflight says why it needs one. NGINX: the primary Ingress and both backend Services. Gateway API: the HTTPRoute
 * and both Services. SMI: the root and both backend Services (setup creates the TrafficSplit). Replicas: one Service
 * over both sides' pods.
 */
export async function createTargetFixture(
  admin: KubeClients,
  target: Target,
  opts: TargetFixtureOptions = {},
): Promise<TargetFixture> {
  const { app, namespace } = target;
  if (target.workload?.kind !== 'Deployment') {
    throw new Error(`target ${namespace}/${app}: a fixture needs a Deployment workload (target.workload)`);
  }
  const traffic = target.traffic;
  if (!traffic || traffic.router === 'local') {
    throw new Error(`target ${namespace}/${app}: a fixture needs a Kubernetes router (target.traffic)`);
  }
  const workload = target.workload;
  const versionLabel = workload.versionLabel;
  const stableVersion = opts.stableVersion ?? 'v1';
  const repository = opts.repository ?? `registry.example:5000/${namespace}/${app}`;
  const imageFor = (version: string) => `${repository}:${version}`;
  const stableImage = imageFor(stableVersion);
  const replicas = opts.replicas ?? (traffic.router === 'replicas' ? 10 : 3);
  const created: CreatedObject[] = [];
  const made = (kind: string, name: string, note: string) => created.push({ kind, name, note });

  // The stable Deployment: selected by `app` only, so promotion can move its pods to the new version.
  const podLabels = { app, [versionLabel]: stableVersion };
  const container = workload.container ?? 'app';
  await admin.apps.createNamespacedDeployment({
    namespace,
    body: {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: workload.name, labels: { app } },
      spec: {
        replicas,
        selector: { matchLabels: { app } },
        template: {
          metadata: { labels: podLabels },
          spec: {
            containers: [
              {
                name: container,
                image: stableImage,
                ports: [{ containerPort: 8080 }],
                resources: {
                  requests: { cpu: '250m', memory: '256Mi' },
                  limits: { cpu: '500m', memory: '512Mi' },
                },
              },
              {
                name: container === 'sidecar' ? 'proxy' : 'sidecar',
                image: 'example/proxy:3',
                resources: { limits: { cpu: '100m', memory: '128Mi' } },
              },
            ],
          },
        },
      },
    },
  });
  made(
    'Deployment',
    workload.name,
    `${replicas} replicas, pods ${formatSelector(podLabels)}, image ${stableImage}`,
  );

  const stableSelector = { app };
  const canarySelector = { app, [ROLE_LABEL]: 'canary' };
  const services = new Map<string, Record<string, string>>();
  const service = async (name: string, selector: Record<string, string>, why: string) => {
    if (services.has(name)) return;
    services.set(name, selector);
    await admin.core.createNamespacedService({
      namespace,
      body: {
        metadata: { name, labels: { app } },
        spec: { selector, ports: [{ name: 'http', port: 80, targetPort: 8080 }] },
      },
    });
    made('Service', name, `selects ${formatSelector(selector)}: ${why}`);
  };
  const custom = (kind: { group: string; version: string }, plural: string, body: Obj) =>
    admin.custom.createNamespacedCustomObject({ ...kind, namespace, plural, body });
  const getCustom = (kind: { group: string; version: string }, plural: string, name: string) =>
    orNull(admin.custom.getNamespacedCustomObject({ ...kind, namespace, plural, name }) as Promise<Obj>);

  let snapshotObjects: () => Promise<RouterSnapshot>;
  let weights: () => Promise<LiveWeights>;
  let stableSides: () => Promise<Array<{ what: string; selector: Record<string, string> }>>;
  const serviceSides = (names: string[]) => async () =>
    names.map((name) => ({ what: `Service ${name}`, selector: services.get(name) ?? {} }));

  switch (traffic.router) {
    case 'istio': {
      const host = `${app}.${namespace}.svc.cluster.local`;
      await service(app, stableSelector, `the VirtualService's host ${host}`);
      const dr = traffic.destinationRule;
      if (dr) {
        await custom(ISTIO, 'destinationrules', {
          apiVersion: `${ISTIO.group}/${ISTIO.version}`,
          kind: 'DestinationRule',
          metadata: { name: dr, labels: { app } },
          spec: {
            host,
            subsets: [{ name: traffic.stableSubset, labels: { [versionLabel]: stableVersion } }],
          },
        });
        made(
          'DestinationRule',
          dr,
          `host ${host}, subset "${traffic.stableSubset}" selects ${versionLabel}=${stableVersion} (setup adds "${traffic.canarySubset}" and keeps both on their versions)`,
        );
      }
      const names = traffic.routes.length > 0 ? traffic.routes : ['primary'];
      await custom(ISTIO, 'virtualservices', {
        apiVersion: `${ISTIO.group}/${ISTIO.version}`,
        kind: 'VirtualService',
        metadata: { name: traffic.virtualService, labels: { app } },
        spec: {
          hosts: [host],
          http: names.map((name) => ({
            name,
            route: [{ destination: { host, subset: traffic.stableSubset, port: { number: 80 } } }],
          })),
        },
      });
      made(
        'VirtualService',
        traffic.virtualService,
        `route${names.length > 1 ? 's' : ''} ${names.join(', ')}: all traffic to subset "${traffic.stableSubset}" of ${host}`,
      );
      const managed = (vs: Obj | null): Obj | undefined => {
        const http = (vs?.spec?.http as Obj[] | undefined) ?? [];
        return traffic.routes.length > 0
          ? http.find((h) => h.name === traffic.routes[0])
          : http.find((h) => !ISTIO_RESERVED_ROUTES.has(h.name as string));
      };
      snapshotObjects = async () => {
        const [vs, rule] = await Promise.all([
          getCustom(ISTIO, 'virtualservices', traffic.virtualService),
          dr ? getCustom(ISTIO, 'destinationrules', dr) : Promise.resolve(null),
        ]);
        return {
          [`VirtualService/${traffic.virtualService}`]: vs && stateOf(vs),
          ...(dr ? { [`DestinationRule/${dr}`]: rule && stateOf(rule) } : {}),
        };
      };
      weights = async () => {
        const dests = (managed(await getCustom(ISTIO, 'virtualservices', traffic.virtualService))?.route ??
          []) as Obj[];
        const share = (subset: string): number => {
          const d = dests.find((x) => x.destination?.subset === subset);
          if (!d) return 0;
          return typeof d.weight === 'number' ? d.weight : dests.length === 1 ? 100 : 0;
        };
        return { stable: share(traffic.stableSubset), canary: share(traffic.canarySubset) };
      };
      stableSides = async () => {
        const sides: Array<{ what: string; selector: Record<string, string> }> = [
          { what: `Service ${app}`, selector: stableSelector },
        ];
        const rule = dr ? await getCustom(ISTIO, 'destinationrules', dr) : null;
        const subset = ((rule?.spec?.subsets as Obj[] | undefined) ?? []).find(
          (s) => s.name === traffic.stableSubset,
        );
        if (rule) {
          sides.push({
            what: `subset "${traffic.stableSubset}" of DestinationRule ${dr}`,
            selector: { ...((subset?.labels as Record<string, string> | undefined) ?? {}) },
          });
        }
        return sides;
      };
      break;
    }
    case 'nginx': {
      const backend = app;
      const canaryService = traffic.canaryService ?? `${backend}-canary`;
      await service(backend, stableSelector, 'the primary Ingress sends to it');
      await service(canaryService, canarySelector, "the canary Ingress sends the canary's share to it");
      await admin.networking.createNamespacedIngress({
        namespace,
        body: {
          apiVersion: 'networking.k8s.io/v1',
          kind: 'Ingress',
          metadata: { name: traffic.ingress, labels: { app } },
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
                      backend: { service: { name: backend, port: { number: 80 } } },
                    },
                  ],
                },
              },
            ],
          },
        },
      });
      made(
        'Ingress',
        traffic.ingress,
        `host ${app}.example.com → Service ${backend} (setup derives ${traffic.canaryIngress})`,
      );
      const get = (name: string) => orNull(admin.networking.readNamespacedIngress({ namespace, name }));
      snapshotObjects = async () => {
        const [primary, canary] = await Promise.all([get(traffic.ingress), get(traffic.canaryIngress)]);
        return {
          [`Ingress/${traffic.ingress}`]: primary && stateOf(primary),
          [`Ingress/${traffic.canaryIngress}`]: canary && stateOf(canary),
        };
      };
      weights = async () => {
        const annotations = (await get(traffic.canaryIngress))?.metadata?.annotations ?? {};
        const w =
          annotations['nginx.ingress.kubernetes.io/canary'] === 'true'
            ? Number(annotations[NGINX_WEIGHT] ?? 0)
            : 0;
        return { stable: 100 - w, canary: w };
      };
      stableSides = serviceSides([backend]);
      break;
    }
    case 'gatewayAPI': {
      await service(traffic.stableBackend, stableSelector, "the HTTPRoute sends stable's share to it");
      await service(traffic.canaryBackend, canarySelector, "the HTTPRoute sends the canary's share to it");
      const rules = Array.from({ length: traffic.rule + 1 }, (_, i) =>
        i === traffic.rule
          ? {
              matches: [{ path: { type: 'PathPrefix', value: '/' } }],
              backendRefs: [{ name: traffic.stableBackend, port: traffic.port ?? 80 }],
            }
          : {
              matches: [{ path: { type: 'PathPrefix', value: `/other-${i}` } }],
              backendRefs: [{ name: `${app}-other-${i}`, port: 80 }],
            },
      );
      await custom(HTTP_ROUTES, 'httproutes', {
        apiVersion: `${HTTP_ROUTES.group}/${HTTP_ROUTES.version}`,
        kind: 'HTTPRoute',
        metadata: { name: traffic.httpRoute, labels: { app } },
        spec: { parentRefs: [{ name: 'public-gateway' }], hostnames: [`${app}.example.com`], rules },
      });
      made('HTTPRoute', traffic.httpRoute, `rule ${traffic.rule} → Service ${traffic.stableBackend}`);
      const get = () => getCustom(HTTP_ROUTES, 'httproutes', traffic.httpRoute);
      snapshotObjects = async () => {
        const route = await get();
        return { [`HTTPRoute/${traffic.httpRoute}`]: route && stateOf(route) };
      };
      weights = async () => {
        const route = await get();
        const refs = ((route?.spec?.rules as Obj[] | undefined)?.[traffic.rule]?.backendRefs ?? []) as Obj[];
        const weightOf = (name: string): number => {
          const r = refs.find((x) => x.name === name);
          return r ? (typeof r.weight === 'number' ? r.weight : 1) : 0;
        };
        return split(weightOf(traffic.stableBackend), weightOf(traffic.canaryBackend));
      };
      stableSides = serviceSides([traffic.stableBackend]);
      break;
    }
    case 'smi': {
      await service(traffic.rootService, stableSelector, "the TrafficSplit's root: the traffic it splits");
      await service(traffic.stableBackend, stableSelector, "the TrafficSplit sends stable's share to it");
      await service(traffic.canaryBackend, canarySelector, "the TrafficSplit sends the canary's share to it");
      const get = () => getCustom(TRAFFIC_SPLITS, 'trafficsplits', traffic.trafficSplit);
      snapshotObjects = async () => {
        const ts = await get();
        return { [`TrafficSplit/${traffic.trafficSplit}`]: ts && stateOf(ts) };
      };
      weights = async () => {
        const backends = ((await get())?.spec?.backends ?? []) as Obj[];
        const weightOf = (name: string): number =>
          Number(backends.find((b) => b.service === name)?.weight ?? 0);
        const s = weightOf(traffic.stableBackend);
        const c = weightOf(traffic.canaryBackend);
        // No split (before setup, after teardown): the root Service's traffic reaches stable's pods.
        return s + c === 0 ? { stable: 100, canary: 0 } : split(s, c);
      };
      stableSides = serviceSides([traffic.stableBackend]);
      break;
    }
    case 'replicas': {
      await service(app, stableSelector, "one Service over both sides' pods: the replica ratio is the split");
      snapshotObjects = async () => ({});
      weights = async () => {
        const [stable, canary] = await Promise.all([
          admin.apps.readNamespacedDeployment({ namespace, name: workload.name }),
          orNull(admin.apps.readNamespacedDeployment({ namespace, name: workload.canaryName })),
        ]);
        return split(stable.spec?.replicas ?? 0, canary?.spec?.replicas ?? 0);
      };
      stableSides = serviceSides([app]);
      break;
    }
  }

  const readService = (name: string) => orNull(admin.core.readNamespacedService({ namespace, name }));
  const stableDeployment = () => admin.apps.readNamespacedDeployment({ namespace, name: workload.name });
  return {
    router: traffic.router,
    namespace,
    app,
    target,
    stableName: workload.name,
    canaryName: workload.canaryName,
    versionLabel,
    stableImage,
    imageFor,
    created,
    snapshot: async () => {
      const objects = await snapshotObjects();
      for (const name of [...services.keys()].sort()) {
        const s = await readService(name);
        objects[`Service/${name}`] = s && {
          spec: plain(s.spec?.selector ?? {}),
          annotations: {},
          labels: {},
        };
      }
      return objects;
    },
    weights,
    stableDeployment,
    canaryDeployment: async () =>
      (await orNull(admin.apps.readNamespacedDeployment({ namespace, name: workload.canaryName }))) ??
      undefined,
    stableSelectors: async () => {
      const pods = (await stableDeployment()).spec?.template?.metadata?.labels ?? {};
      return (await stableSides()).map((s) => ({ ...s, selectsStable: selects(s.selector, pods) }));
    },
  };
}

/** Whole percents from two weights (stable, canary). */
function split(stable: number, canary: number): LiveWeights {
  const c = stable + canary > 0 ? Math.round((100 * canary) / (stable + canary)) : 0;
  return { stable: 100 - c, canary: c };
}

/**
 * The objects a target needs to exist before a rollout (what createTargetFixture creates), as `Kind name` pairs: the
 * stable Deployment, the router objects setup does not create, and the Services the router sends to.
 */
export function requiredObjects(target: Target): Array<{ kind: string; name: string }> {
  const out: Array<{ kind: string; name: string }> = [];
  if (target.workload?.kind === 'Deployment') out.push({ kind: 'Deployment', name: target.workload.name });
  const t = target.traffic;
  switch (t?.router) {
    case 'istio':
      out.push({ kind: 'Service', name: target.app }, { kind: 'VirtualService', name: t.virtualService });
      if (t.destinationRule) out.push({ kind: 'DestinationRule', name: t.destinationRule });
      break;
    case 'nginx':
      out.push(
        { kind: 'Ingress', name: t.ingress },
        { kind: 'Service', name: target.app },
        { kind: 'Service', name: t.canaryService ?? `${target.app}-canary` },
      );
      break;
    case 'gatewayAPI':
      out.push(
        { kind: 'HTTPRoute', name: t.httpRoute },
        { kind: 'Service', name: t.stableBackend },
        { kind: 'Service', name: t.canaryBackend },
      );
      break;
    case 'smi':
      for (const name of new Set([t.rootService, t.stableBackend, t.canaryBackend])) {
        out.push({ kind: 'Service', name });
      }
      break;
    default:
      break;
  }
  return out;
}
