// The normalised target: where a rollout points (its workload, its traffic router with that router's own settings,
// and its metrics source), as activities receive it. Its validation from what a plan or flags say is target.ts.

// ---------------------------------------------------------------------------------------------------------------
// The normalised target (what activities receive)

export const ROUTER_TYPES = ['istio', 'nginx', 'gatewayAPI', 'smi', 'replicas', 'local'] as const;
export type RouterType = (typeof ROUTER_TYPES)[number];
export const WORKLOAD_KINDS = ['Deployment', 'local'] as const;
export const METRICS_PROVIDERS = ['local', 'prometheus'] as const;
/** Prometheus query-template sets, one per traffic source (activities/metrics/templates.ts). */
export const METRICS_TEMPLATE_SETS = ['istio', 'nginx', 'http'] as const;
export type MetricsTemplateSet = (typeof METRICS_TEMPLATE_SETS)[number];

/** A header that sends a request to the canary whatever the weight (e.g. `x-canary: always`). */
export interface HeaderMatch {
  name: string;
  /** Exact value; absent for NGINX means its default (`always` routes to the canary). */
  value?: string;
}

export interface IstioTraffic {
  router: 'istio';
  virtualService: string;
  /** Names of the HTTP routes to change; empty means every HTTP route. */
  routes: string[];
  /** The DestinationRule whose subsets select stable and canary pods by the version label. */
  destinationRule?: string;
  stableSubset: string;
  canarySubset: string;
  /** Requests carrying this header go to the canary at any weight. */
  header?: HeaderMatch;
  /** Sticky sessions: a request with this cookie stays on the canary. */
  stickyCookie?: string;
}

export interface NginxTraffic {
  router: 'nginx';
  /** The primary Ingress; a canary Ingress is derived from it (`<ingress>-canary`). */
  ingress: string;
  canaryIngress: string;
  /** The Service the canary Ingress sends to (`<service>-canary` of each primary backend by default). */
  canaryService?: string;
  /** `canary-by-header` (and `canary-by-header-value` when a value is given). */
  header?: HeaderMatch;
  /** `canary-by-cookie`: a cookie with value `always` goes to the canary. */
  cookie?: string;
}

export interface GatewayApiTraffic {
  router: 'gatewayAPI';
  httpRoute: string;
  /** Index of the HTTPRoute rule whose backendRefs carry the weights (default 0). */
  rule: number;
  stableBackend: string;
  canaryBackend: string;
  /** Backend port; taken from the stable backendRef when absent. */
  port?: number;
  /** An extra rule sending requests with this header to the canary. */
  header?: HeaderMatch;
}

export interface SmiTraffic {
  router: 'smi';
  trafficSplit: string;
  /** The root service the TrafficSplit splits (default: the app). */
  rootService: string;
  stableBackend: string;
  canaryBackend: string;
}

export interface ReplicasTraffic {
  router: 'replicas';
}

export interface LocalTraffic {
  router: 'local';
  /** The local stack's control API (default: the worker's CANARY_LOCAL_CONTROL_URL). */
  controlUrl?: string;
}

export type TrafficTarget =
  IstioTraffic | NginxTraffic | GatewayApiTraffic | SmiTraffic | ReplicasTraffic | LocalTraffic;

export interface DeploymentWorkload {
  kind: 'Deployment';
  /** The stable Deployment; the canary is derived from it. */
  name: string;
  /** The canary Deployment's name (default `<name>-canary`). */
  canaryName: string;
  /** The container that takes the new image (default: the first one). */
  container?: string;
  /** The pod label carrying the version; routers select on it (default `version`). */
  versionLabel: string;
  /** How long the canary (and a promoted stable) may take to become available, in ms. */
  progressDeadlineMs: number;
}

export interface LocalWorkload {
  kind: 'local';
  controlUrl?: string;
}

export type WorkloadTarget = DeploymentWorkload | LocalWorkload;

export interface LocalMetrics {
  provider: 'local';
  controlUrl?: string;
}

export interface PrometheusMetrics {
  provider: 'prometheus';
  /** The Prometheus server's base URL (default: the worker's CANARY_PROMETHEUS_URL). Never carries credentials. */
  url?: string;
  /**
   * The query-template set: as written, else derived from the target's router (istio → istio, nginx → nginx,
   * any other → http). Absent only when the target names no router: the worker derives it from its default one.
   */
  templates?: MetricsTemplateSet;
}

export type MetricsTarget = LocalMetrics | PrometheusMetrics;

/** The template set that fits a router's telemetry: Istio's own, ingress-nginx's, else the app's http_* metrics. */
export function templateSetForRouter(router: RouterType): MetricsTemplateSet {
  return router === 'istio' ? 'istio' : router === 'nginx' ? 'nginx' : 'http';
}

/**
 * A validated target. `app` and `namespace` name the rollout; workload, traffic and metrics are absent
 * when the rollout relies on the worker's defaults (a shop with one mesh, the demo).
 */
export interface Target {
  app: string;
  namespace: string;
  workload?: WorkloadTarget;
  traffic?: TrafficTarget;
  metrics?: MetricsTarget;
}
