// Where a rollout points: its workload, its traffic router with that router's own settings, and its metrics
// source. Written beside the stages in a plan file, in a file of its own (`--target`), or from flags; validated
// by the same pure code in the client and the workflow. Nothing in a target is a secret: credentials stay in
// the worker's environment or mounted files.
import { z } from 'zod';
import {
  Collector,
  byHand,
  checkDuration,
  describe,
  distance,
  isObject,
  problemLines,
  sortedProblems,
  typeError,
  type InputProblem,
  type Obj,
  type Segment,
} from './problems';
import {
  METRICS_PROVIDERS,
  METRICS_TEMPLATE_SETS,
  ROUTER_TYPES,
  WORKLOAD_KINDS,
  templateSetForRouter,
  type HeaderMatch,
  type MetricsTemplateSet,
  type MetricsTarget,
  type RouterType,
  type Target,
  type TrafficTarget,
  type WorkloadTarget,
} from './target-model';

// The model (Target and its parts) is target-model.ts; re-exported here for every caller.
export * from './target-model';

// ---------------------------------------------------------------------------------------------------------------
// The target as written

export interface TargetSpec {
  app?: string;
  namespace?: string;
  workload?: Record<string, unknown>;
  /** Exactly one router key, e.g. `{ istio: { virtualService: checkout } }`. */
  traffic?: Record<string, unknown>;
  metrics?: Record<string, unknown>;
}

export const TARGET_DEFAULTS = {
  namespace: 'default',
  progressDeadline: '10m',
  versionLabel: 'version',
  stableSubset: 'stable',
  canarySubset: 'canary',
} as const;

export type TargetValidation = { ok: true; target: Target } | { ok: false; problems: InputProblem[] };

// Kubernetes object names: DNS-1123 subdomain (lower case, digits, '-' and '.'); namespaces and app names are
// DNS-1123 labels (no '.', at most 63 characters).
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const HEADER_NAME = /^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/;

const headerSchema = z.strictObject(
  {
    name: z.string(typeError('a header name', 'is required: the header name, e.g. x-canary')),
    value: z.string(typeError('a string')).optional(),
  },
  typeError('an object with name and value, e.g. {name: x-canary, value: always}'),
);

const name = (what: string) => z.string(typeError(`the name of ${what}`, `is required: the name of ${what}`));
const optName = (what: string) => z.string(typeError(`the name of ${what}`)).optional();

const ROUTER_SCHEMAS = {
  istio: z.strictObject(
    {
      virtualService: name('the VirtualService').optional(),
      routes: z.array(z.string(typeError('a route name')), typeError('a list of route names')).optional(),
      destinationRule: optName('the DestinationRule'),
      stableSubset: optName('the stable subset'),
      canarySubset: optName('the canary subset'),
      header: headerSchema.optional(),
      stickyCookie: optName('the cookie'),
    },
    typeError('an object with virtualService, routes, destinationRule, header, stickyCookie'),
  ),
  nginx: z.strictObject(
    {
      ingress: name('the primary Ingress').optional(),
      canaryIngress: optName('the canary Ingress'),
      canaryService: optName('the canary Service'),
      header: headerSchema.optional(),
      cookie: optName('the cookie'),
    },
    typeError('an object with ingress, canaryIngress, canaryService, header, cookie'),
  ),
  gatewayAPI: z.strictObject(
    {
      httpRoute: name('the HTTPRoute').optional(),
      rule: z.number(typeError('a rule index (0, 1, ...)')).optional(),
      stableBackend: optName('the stable Service'),
      canaryBackend: optName('the canary Service'),
      port: z.number(typeError('a port number')).optional(),
      header: headerSchema.optional(),
    },
    typeError('an object with httpRoute, rule, stableBackend, canaryBackend, port, header'),
  ),
  smi: z.strictObject(
    {
      trafficSplit: name('the TrafficSplit').optional(),
      rootService: optName('the root Service'),
      stableBackend: optName('the stable Service'),
      canaryBackend: optName('the canary Service'),
    },
    typeError('an object with trafficSplit, rootService, stableBackend, canaryBackend'),
  ),
  replicas: z.strictObject({}, typeError('an empty object: {}')),
  local: z.strictObject(
    { controlUrl: z.string(typeError('a URL')).optional() },
    typeError('an object with controlUrl'),
  ),
} as const;

const workloadSchema = z.strictObject(
  {
    kind: z.string(typeError('Deployment or local')).optional(),
    name: optName('the stable Deployment'),
    canaryName: optName('the canary Deployment'),
    container: optName('the container'),
    versionLabel: z.string(typeError('a label key')).optional(),
    progressDeadline: byHand<string>().optional(),
    controlUrl: z.string(typeError('a URL')).optional(),
  },
  typeError('an object with kind, name, container, canaryName, versionLabel, progressDeadline'),
);

const METRICS_FORMS = '{local: {}} or {prometheus: {url: http://prometheus:9090}}';

const metricsSchema = z.strictObject(
  {
    local: z
      .strictObject(
        { controlUrl: z.string(typeError('a URL')).optional() },
        typeError('an object with controlUrl'),
      )
      .optional(),
    prometheus: z
      .strictObject(
        {
          url: z.string(typeError('a URL')).optional(),
          templates: z.string(typeError(`one of ${METRICS_TEMPLATE_SETS.join(', ')}`)).optional(),
        },
        typeError('an object with url, templates'),
      )
      .optional(),
  },
  typeError(`an object naming one metrics provider, e.g. ${METRICS_FORMS}`),
);

const targetSchema = z.strictObject({
  app: z.string(typeError('a name')).optional(),
  namespace: z.string(typeError('a namespace name')).optional(),
  workload: workloadSchema.optional(),
  traffic: byHand<Record<string, unknown>>().optional(),
  metrics: metricsSchema.optional(),
});

const KNOWN_FIELDS: Record<string, readonly string[]> = {
  '': Object.keys(targetSchema.shape),
  workload: Object.keys(workloadSchema.shape),
  metrics: Object.keys(metricsSchema.shape),
  'metrics.local': ['controlUrl'],
  'metrics.prometheus': ['url', 'templates'],
  ...Object.fromEntries(
    Object.entries(ROUTER_SCHEMAS).map(([router, schema]) => [
      `traffic.${router}`,
      Object.keys(schema.shape),
    ]),
  ),
  'traffic.istio.header': ['name', 'value'],
  'traffic.nginx.header': ['name', 'value'],
  'traffic.gatewayAPI.header': ['name', 'value'],
};

/** Why a namespace or app name is not a DNS-1123 label (the rule and its length limit), or undefined. */
export function dnsLabelProblem(value: string): string | undefined {
  const c = new Collector();
  checkDnsName(c, value, [], 'label');
  return c.problems[0]?.message;
}

function checkDnsName(
  c: Collector,
  value: unknown,
  path: Segment[],
  rule: 'label' | 'subdomain' = 'subdomain',
): string | undefined {
  if (typeof value !== 'string') return undefined;
  const max = rule === 'label' ? 63 : 253;
  const pattern = rule === 'label' ? DNS_LABEL : DNS_SUBDOMAIN;
  if (value === '') {
    c.add(path, 'must not be empty');
    return undefined;
  }
  if (value.length > max) {
    c.add(path, `must be at most ${max} characters (a Kubernetes name), got ${value.length}`);
    return undefined;
  }
  if (!pattern.test(value)) {
    c.add(
      path,
      `${describe(value)} is not a valid Kubernetes name: use lower-case letters, digits and "-"` +
        `${rule === 'subdomain' ? ' (and ".")' : ''}, starting and ending with a letter or digit`,
    );
    return undefined;
  }
  return value;
}

function checkHeader(c: Collector, value: unknown, path: Segment[]): HeaderMatch | undefined {
  if (!isObject(value) || typeof value.name !== 'string') return undefined;
  if (!HEADER_NAME.test(value.name)) {
    c.add([...path, 'name'], `${describe(value.name)} is not a valid HTTP header name`);
    return undefined;
  }
  return { name: value.name, ...(typeof value.value === 'string' ? { value: value.value } : {}) };
}

function checkTraffic(c: Collector, traffic: unknown, app: string): TrafficTarget | undefined {
  const path: Segment[] = ['traffic'];
  const forms = `one of ${ROUTER_TYPES.join(', ')}, e.g. {istio: {virtualService: ${app}}}`;
  if (!isObject(traffic)) {
    c.add(path, `must be an object naming ${forms}, got ${describe(traffic)}`);
    return undefined;
  }
  const keys = Object.keys(traffic);
  if (keys.length !== 1) {
    c.add(
      path,
      keys.length === 0
        ? `must name a router: ${forms}`
        : `names ${keys.length} routers (${keys.join(', ')}); a rollout uses exactly one`,
    );
    return undefined;
  }
  const router = keys[0];
  if (!(ROUTER_TYPES as readonly string[]).includes(router)) {
    const close = ROUTER_TYPES.find((r) => r.toLowerCase() === router.toLowerCase().replace(/[-_]/g, ''));
    c.add(
      [...path, router],
      close
        ? `unknown router "${router}" (did you mean "${close}"?)`
        : `unknown router "${router}"; use ${ROUTER_TYPES.join(', ')}`,
    );
    return undefined;
  }
  const type = router as RouterType;
  const settings = traffic[router] ?? {};
  const at: Segment[] = [...path, router];
  const before = c.problems.length;
  c.structure(ROUTER_SCHEMAS[type], settings, at);
  if (c.problems.length > before || !isObject(settings)) return undefined;
  const s = settings as Obj;
  const str = (key: string, fallback: string): string => {
    const v = s[key] === undefined ? fallback : s[key];
    return checkDnsName(c, v, [...at, key]) ?? fallback;
  };
  const header = s.header === undefined ? undefined : checkHeader(c, s.header, [...at, 'header']);
  switch (type) {
    case 'istio': {
      const routes = (s.routes as string[] | undefined) ?? [];
      routes.forEach((r, i) => {
        if (r.trim() === '') c.add([...at, 'routes', i], 'must not be empty');
      });
      const stableSubset = str('stableSubset', TARGET_DEFAULTS.stableSubset);
      const canarySubset = str('canarySubset', TARGET_DEFAULTS.canarySubset);
      if (stableSubset === canarySubset) {
        c.add([...at, 'canarySubset'], `must differ from stableSubset ("${stableSubset}")`);
      }
      return {
        router: 'istio',
        virtualService: str('virtualService', app),
        routes,
        ...(s.destinationRule !== undefined ? { destinationRule: str('destinationRule', app) } : {}),
        stableSubset,
        canarySubset,
        ...(header ? { header } : {}),
        ...(typeof s.stickyCookie === 'string' ? { stickyCookie: s.stickyCookie } : {}),
      };
    }
    case 'nginx': {
      const ingress = str('ingress', app);
      const canaryIngress = str('canaryIngress', `${ingress}-canary`);
      if (canaryIngress === ingress) c.add([...at, 'canaryIngress'], 'must differ from the primary ingress');
      return {
        router: 'nginx',
        ingress,
        canaryIngress,
        ...(s.canaryService !== undefined ? { canaryService: str('canaryService', '') } : {}),
        ...(header ? { header } : {}),
        ...(typeof s.cookie === 'string' ? { cookie: s.cookie } : {}),
      };
    }
    case 'gatewayAPI': {
      const rule = s.rule === undefined ? 0 : (s.rule as number);
      if (!Number.isInteger(rule) || rule < 0) {
        c.add([...at, 'rule'], `must be a rule index (0, 1, ...), got ${rule}`);
      }
      const port = s.port as number | undefined;
      if (port !== undefined && !(Number.isInteger(port) && port >= 1 && port <= 65535)) {
        c.add([...at, 'port'], `must be a port number from 1 to 65535, got ${port}`);
      }
      const stableBackend = str('stableBackend', app);
      const canaryBackend = str('canaryBackend', `${app}-canary`);
      if (stableBackend === canaryBackend) c.add([...at, 'canaryBackend'], 'must differ from stableBackend');
      return {
        router: 'gatewayAPI',
        httpRoute: str('httpRoute', app),
        rule,
        stableBackend,
        canaryBackend,
        ...(port !== undefined ? { port } : {}),
        ...(header ? { header } : {}),
      };
    }
    case 'smi': {
      const stableBackend = str('stableBackend', `${app}-stable`);
      const canaryBackend = str('canaryBackend', `${app}-canary`);
      if (stableBackend === canaryBackend) c.add([...at, 'canaryBackend'], 'must differ from stableBackend');
      return {
        router: 'smi',
        trafficSplit: str('trafficSplit', app),
        rootService: str('rootService', app),
        stableBackend,
        canaryBackend,
      };
    }
    case 'replicas':
      return { router: 'replicas' };
    case 'local':
      return {
        router: 'local',
        ...(typeof s.controlUrl === 'string'
          ? { controlUrl: checkUrl(c, s.controlUrl, [...at, 'controlUrl']) }
          : {}),
      };
  }
}

function checkUrl(c: Collector, value: string, path: Segment[]): string {
  let ok = false;
  try {
    const u = new URL(value);
    ok = u.protocol === 'http:' || u.protocol === 'https:';
  } catch {
    ok = false;
  }
  if (!ok) c.add(path, `must be an http(s) URL, got ${describe(value)}`);
  return value;
}

function checkWorkload(c: Collector, w: Obj, app: string): WorkloadTarget | undefined {
  const at: Segment[] = ['workload'];
  const kind = w.kind ?? 'Deployment';
  if (typeof kind === 'string' && !(WORKLOAD_KINDS as readonly string[]).includes(kind)) {
    const close = WORKLOAD_KINDS.find((k) => k.toLowerCase() === kind.toLowerCase());
    c.add(
      [...at, 'kind'],
      close
        ? `unknown workload kind "${kind}" (did you mean "${close}"?)`
        : `unknown workload kind "${kind}"; use Deployment (or local for the demo stack)`,
    );
    return undefined;
  }
  if (kind === 'local') {
    for (const key of ['name', 'canaryName', 'container', 'versionLabel', 'progressDeadline']) {
      if (w[key] !== undefined) c.add([...at, key], 'only applies to kind Deployment');
    }
    return {
      kind: 'local',
      ...(typeof w.controlUrl === 'string'
        ? { controlUrl: checkUrl(c, w.controlUrl, [...at, 'controlUrl']) }
        : {}),
    };
  }
  if (w.controlUrl !== undefined) c.add([...at, 'controlUrl'], 'only applies to kind local');
  const nameValue = checkDnsName(c, w.name ?? app, [...at, 'name']) ?? app;
  const canaryName = checkDnsName(c, w.canaryName ?? `${nameValue}-canary`, [...at, 'canaryName']) ?? '';
  if (canaryName === nameValue) c.add([...at, 'canaryName'], 'must differ from the stable Deployment name');
  const container =
    w.container === undefined ? undefined : checkDnsName(c, w.container, [...at, 'container'], 'label');
  const versionLabel = (w.versionLabel as string | undefined) ?? TARGET_DEFAULTS.versionLabel;
  if (!/^([a-z0-9]([-a-z0-9.]*[a-z0-9])?\/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/.test(versionLabel)) {
    c.add([...at, 'versionLabel'], `${describe(versionLabel)} is not a valid Kubernetes label key`);
  }
  const progressDeadlineMs =
    checkDuration(c, w.progressDeadline ?? TARGET_DEFAULTS.progressDeadline, [...at, 'progressDeadline']) ??
    0;
  return {
    kind: 'Deployment',
    name: nameValue,
    canaryName,
    ...(container ? { container } : {}),
    versionLabel,
    progressDeadlineMs,
  };
}

/**
 * Validates a target as written and normalises it (defaults derived from the app name, durations in ms).
 * `defaults` supplies app and namespace given elsewhere (flags); a value in the spec wins. Lists every problem.
 */
export function validateTarget(
  spec: unknown,
  defaults: { app?: string; namespace?: string } = {},
): TargetValidation {
  if (spec !== undefined && !isObject(spec)) {
    return {
      ok: false,
      problems: [
        {
          path: '',
          message: `a target must be an object (app, namespace, workload, traffic, metrics), got ${describe(spec)}`,
        },
      ],
    };
  }
  const s: Obj = spec ?? {};
  const c = new Collector(KNOWN_FIELDS);
  c.structure(targetSchema, s);
  const workloadName =
    isObject(s.workload) && typeof s.workload.name === 'string' ? s.workload.name : undefined;
  const appValue = s.app ?? defaults.app ?? workloadName;
  let app = '';
  if (appValue === undefined) {
    c.add(['app'], 'is required: the application to roll out (or give workload.name)');
  } else {
    app = checkDnsName(c, appValue, ['app'], 'label') ?? '';
  }
  const namespace =
    checkDnsName(c, s.namespace ?? defaults.namespace ?? TARGET_DEFAULTS.namespace, ['namespace'], 'label') ??
    '';

  const workload = isObject(s.workload) ? checkWorkload(c, s.workload, app || 'app') : undefined;
  const traffic = s.traffic === undefined ? undefined : checkTraffic(c, s.traffic, app || 'app');
  const metrics = isObject(s.metrics) ? checkMetrics(c, s.metrics, traffic?.router) : undefined;
  if (traffic?.router === 'replicas' && workload?.kind === 'local') {
    c.add(['traffic', 'replicas'], 'needs a Deployment workload (the local stack has no replicas)');
  }
  if (c.problems.length > 0) return { ok: false, problems: sortedProblems(s, c.problems) };
  return {
    ok: true,
    target: {
      app,
      namespace,
      ...(workload ? { workload } : {}),
      ...(traffic ? { traffic } : {}),
      ...(metrics ? { metrics } : {}),
    },
  };
}

/** The metrics part; its structure (known fields, types) was checked with the whole target. */
function checkMetrics(c: Collector, m: Obj, router: RouterType | undefined): MetricsTarget | undefined {
  const named = Object.keys(m).filter((k) => (METRICS_PROVIDERS as readonly string[]).includes(k));
  if (Object.keys(m).length === 0) {
    c.add(['metrics'], `must name one metrics provider, e.g. ${METRICS_FORMS}`);
    return undefined;
  }
  if (named.length > 1) {
    c.add(
      ['metrics'],
      `names ${named.length} metrics providers (${named.join(', ')}); a rollout uses exactly one`,
    );
    return undefined;
  }
  if (named.length === 0 || !isObject(m[named[0]])) return undefined; // an unknown field, reported already
  const settings = m[named[0]] as Obj;
  if (named[0] === 'local') {
    return {
      provider: 'local',
      ...(typeof settings.controlUrl === 'string'
        ? { controlUrl: checkUrl(c, settings.controlUrl, ['metrics', 'local', 'controlUrl']) }
        : {}),
    };
  }
  const at: Segment[] = ['metrics', 'prometheus'];
  let url: string | undefined;
  if (typeof settings.url === 'string') {
    url = checkUrl(c, settings.url, [...at, 'url']);
    if (hasCredentials(settings.url)) {
      c.add(
        [...at, 'url'],
        'must not carry credentials (a target is not secret): give the worker CANARY_PROMETHEUS_USERNAME and ' +
          'CANARY_PROMETHEUS_PASSWORD, or CANARY_PROMETHEUS_BEARER_TOKEN',
      );
    }
  }
  let templates: MetricsTemplateSet | undefined = router ? templateSetForRouter(router) : undefined;
  if (typeof settings.templates === 'string') {
    const written = settings.templates;
    if ((METRICS_TEMPLATE_SETS as readonly string[]).includes(written)) {
      templates = written as MetricsTemplateSet;
    } else {
      const close = closest(written, METRICS_TEMPLATE_SETS);
      c.add(
        [...at, 'templates'],
        `unknown template set "${written}"${close ? ` (did you mean "${close}"?)` : ''}; use ` +
          `${METRICS_TEMPLATE_SETS.join(', ')} (istio: Istio telemetry, nginx: ingress-nginx, http: the app's ` +
          'http_requests_total)',
      );
    }
  }
  return {
    provider: 'prometheus',
    ...(url !== undefined ? { url } : {}),
    ...(templates ? { templates } : {}),
  };
}

function hasCredentials(value: string): boolean {
  try {
    const u = new URL(value);
    return u.username !== '' || u.password !== '';
  } catch {
    return false;
  }
}

/** The known name a typo most likely meant: one inside it, or one at most two edits away (any case). */
function closest(value: string, known: readonly string[]): string | undefined {
  const v = value.toLowerCase();
  const inside = known.find((k) => v.includes(k.toLowerCase())); // ingress-nginx, istio-telemetry
  if (inside) return inside;
  const ranked = known.map((k) => ({ k, d: distance(v, k.toLowerCase()) })).sort((a, b) => a.d - b.d);
  return ranked[0] && ranked[0].d <= Math.min(2, Math.max(1, Math.floor(v.length / 2)))
    ? ranked[0].k
    : undefined;
}

/**
 * A version goes into a pod label, a search attribute and an image tag, so it follows the strictest of them, a
 * Kubernetes label value: at most 63 characters, letters, digits, '-', '_' and '.', starting and ending with a
 * letter or digit. Returns what is wrong, or undefined.
 */
export function versionProblem(version: string): string | undefined {
  if (version === '') return 'version is empty';
  if (version.length > 63) {
    return `version must be at most 63 characters (it becomes a Kubernetes label value), got ${version.length}`;
  }
  if (!/^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/.test(version)) {
    return (
      `version ${JSON.stringify(version)} may only hold letters, digits, "-", "_" and ".", starting and ending ` +
      'with a letter or digit (it becomes a label value and an image tag)'
    );
  }
  return undefined;
}

/** `target is invalid (N problems):` followed by one `  - target.path: message` line per problem. */
export function formatTargetProblems(problems: InputProblem[], prefix = 'target'): string {
  const header = `target is invalid (${problems.length} ${problems.length === 1 ? 'problem' : 'problems'}):`;
  return [header, ...problemLines(problems, prefix)].join('\n');
}

/** One line for people, e.g. `Deployment checkout via istio VirtualService checkout (routes primary)`. */
export function describeTarget(t: Target): string {
  const parts: string[] = [`${t.namespace}/${t.app}`];
  if (t.workload?.kind === 'Deployment')
    parts.push(`Deployment ${t.workload.name} (canary ${t.workload.canaryName})`);
  if (t.traffic) parts.push(`via ${describeTraffic(t.traffic)}`);
  if (!t.workload || !t.traffic) {
    parts.push(
      `the worker's default ${!t.workload && !t.traffic ? 'workloads and router' : t.workload ? 'router' : 'workloads'}`,
    );
  }
  return parts.join(', ');
}

export function describeTraffic(t: TrafficTarget): string {
  switch (t.router) {
    case 'istio':
      return `istio VirtualService ${t.virtualService}${t.routes.length ? ` (routes ${t.routes.join(', ')})` : ''}`;
    case 'nginx':
      return `nginx Ingress ${t.ingress} (canary Ingress ${t.canaryIngress})`;
    case 'gatewayAPI':
      return `gatewayAPI HTTPRoute ${t.httpRoute} rule ${t.rule} (${t.stableBackend} / ${t.canaryBackend})`;
    case 'smi':
      return `smi TrafficSplit ${t.trafficSplit} (${t.stableBackend} / ${t.canaryBackend})`;
    case 'replicas':
      return 'replica ratio';
    case 'local':
      return 'local proxy';
  }
}
