// Named PromQL templates, one set per traffic source (as Flagger has one per mesh), so a plan says
// `error-rate: max 1%` instead of PromQL. Every set offers the same metric names with the same units; only the
// series they read differ:
//   istio  Istio's telemetry (istio_requests_total, istio_request_duration_milliseconds_bucket), reported by the
//          destination's sidecar; a side is its Deployment (destination_workload).
//   nginx  ingress-nginx (nginx_ingress_controller_requests, ..._request_duration_seconds_bucket) for the primary
//          Ingress; a side is told apart by the `canary` label, which ingress-nginx fills in (with the canary
//          upstream's name) only for requests the canary Ingress served.
//   http   the app's own instrumentation (http_requests_total, http_request_duration_seconds_bucket) labelled
//          with namespace, app and version; a side is its version.
//
// Placeholders are `{{name}}` (spaces allowed inside the braces): namespace, app, version (that side's version),
// side (stable or canary), workload (that side's Deployment), service (that side's Service), ingress (the primary
// Ingress), window (a PromQL duration such as 5m), and selector (the set's label matchers for that side, already
// rendered). A `custom` check takes any PromQL with the same placeholders. Values (but the selector, which is
// PromQL itself) are escaped for a PromQL string literal, so a version with a quote cannot end the matcher early.
//
// Error rate follows Flagger: a request is an error when the server failed it (5xx) or it got no status at all
// (Istio's response_code 0: a reset or a timeout); 4xx are the client's business. So request-success-rate plus
// error-rate is 100, and 5xx-rate counts 5xx alone.
import { METRICS_TEMPLATE_SETS, type MetricsTemplateSet } from '../../workflows/target';
import { QUERY_PLACEHOLDERS } from '../../workflows/analysis-spec';

export type TemplateSetName = MetricsTemplateSet;
export const TEMPLATE_SET_NAMES: readonly TemplateSetName[] = METRICS_TEMPLATE_SETS;

export type MetricUnit = '%' | 'ms' | 'req/s' | 'requests';

export interface MetricTemplate {
  /** PromQL with placeholders. */
  query: string;
  unit: MetricUnit;
  description: string;
  /** Parameters the template takes besides the standard placeholders (e.g. `quantile`). */
  params?: Record<string, string>;
}

export interface TemplateSet {
  name: TemplateSetName;
  description: string;
  /** The label matchers that select one side's series; templates refer to them as `{{selector}}`. */
  selector: { stable: string; canary: string };
  metrics: Record<string, MetricTemplate>;
}

/** The placeholders every query may use; a template's own parameters come on top. */
export const STANDARD_PLACEHOLDERS = QUERY_PLACEHOLDERS;
export type StandardPlaceholder = (typeof STANDARD_PLACEHOLDERS)[number];

/** Values for rendering; undefined means "known, but not known for this query" (e.g. the stable version). */
export type TemplateVars = Partial<Record<string, string | number | undefined>>;

interface SetShape {
  /** The latency histogram's sum and count series (for the mean). */
  sum: string;
  count: string;
  name: TemplateSetName;
  description: string;
  selector: { stable: string; canary: string };
  requests: string;
  status: string;
  /** The latency histogram's bucket series. */
  buckets: string;
  /** What turns the histogram's unit into milliseconds. */
  toMs: string;
}

const ERROR_CODES = '5..|0';

function makeSet(s: SetShape): TemplateSet {
  const sel = (extra = '') => `{{{selector}}${extra}}`;
  const rate = (extra = '') => `sum(rate(${s.requests}${sel(extra)}[{{window}}]))`;
  // A side without a single error has no 5xx series at all: count that as 0 errors, not as "no data". With no
  // requests at all the denominator is empty (no series) or 0 (NaN): both are no data.
  const share = (matcher: string) => `100 * (${rate(`, ${s.status}${matcher}`)} or vector(0)) / ${rate()}`;
  const quantile = (q: string) =>
    `${s.toMs}histogram_quantile(${q}, sum by (le) (rate(${s.buckets}${sel()}[{{window}}])))`;
  const latency = (p: string): MetricTemplate => ({
    query: quantile(`0.${p}`),
    unit: 'ms',
    description: `p${p} latency from the histogram, in ms`,
  });
  return {
    name: s.name,
    description: s.description,
    selector: s.selector,
    metrics: {
      'request-success-rate': {
        query: share(`!~"${ERROR_CODES}"`),
        unit: '%',
        description: 'share of requests that did not fail (not 5xx, not without a status), in %',
      },
      'error-rate': {
        query: share(`=~"${ERROR_CODES}"`),
        unit: '%',
        description: 'share of requests that failed (5xx, or no status at all), in %',
      },
      '5xx-rate': { query: share('=~"5.."'), unit: '%', description: 'share of 5xx responses, in %' },
      'latency-p50': latency('50'),
      'latency-p95': latency('95'),
      'latency-p99': latency('99'),
      'latency-avg': {
        // Mean = increase of the sum over increase of the count; no requests in the window is 0/0, no data.
        query: `${s.toMs}sum(rate(${s.sum}${sel()}[{{window}}])) / sum(rate(${s.count}${sel()}[{{window}}]))`,
        unit: 'ms',
        description: 'mean latency (the histogram sum over its count), in ms',
      },
      latency: {
        query: quantile('{{quantile}}'),
        unit: 'ms',
        description: 'any latency quantile from the histogram, in ms',
        params: { quantile: 'the quantile, between 0 and 1 (e.g. 0.999)' },
      },
      'request-rate': { query: rate(), unit: 'req/s', description: 'requests per second over the window' },
      'request-count': {
        query: `sum(increase(${s.requests}${sel()}[{{window}}]))`,
        unit: 'requests',
        description: 'requests in the window (for minimum-request rules)',
      },
    },
  };
}

export const TEMPLATE_SETS: Readonly<Record<TemplateSetName, TemplateSet>> = {
  istio: makeSet({
    name: 'istio',
    description: "Istio telemetry, as reported by the destination's sidecar",
    selector: {
      stable: `reporter="destination", destination_workload_namespace="{{namespace}}", destination_workload="{{workload}}"`,
      canary: `reporter="destination", destination_workload_namespace="{{namespace}}", destination_workload="{{workload}}"`,
    },
    requests: 'istio_requests_total',
    status: 'response_code',
    buckets: 'istio_request_duration_milliseconds_bucket',
    sum: 'istio_request_duration_milliseconds_sum',
    count: 'istio_request_duration_milliseconds_count',
    toMs: '',
  }),
  nginx: makeSet({
    name: 'nginx',
    description:
      'ingress-nginx metrics of the primary Ingress; the canary label marks what the canary served',
    selector: {
      stable: `namespace="{{namespace}}", ingress="{{ingress}}", canary=""`,
      canary: `namespace="{{namespace}}", ingress="{{ingress}}", canary!=""`,
    },
    requests: 'nginx_ingress_controller_requests',
    status: 'status',
    buckets: 'nginx_ingress_controller_request_duration_seconds_bucket',
    sum: 'nginx_ingress_controller_request_duration_seconds_sum',
    count: 'nginx_ingress_controller_request_duration_seconds_count',
    toMs: '1000 * ',
  }),
  http: makeSet({
    name: 'http',
    description: "the app's own http_requests_total / http_request_duration_seconds, labelled by version",
    selector: {
      stable: `namespace="{{namespace}}", app="{{app}}", version="{{version}}"`,
      canary: `namespace="{{namespace}}", app="{{app}}", version="{{version}}"`,
    },
    requests: 'http_requests_total',
    status: 'code',
    buckets: 'http_request_duration_seconds_bucket',
    sum: 'http_request_duration_seconds_sum',
    count: 'http_request_duration_seconds_count',
    toMs: '1000 * ',
  }),
};

/** The metric names a set offers, in a stable order. */
export function templateNames(set: TemplateSetName): string[] {
  return Object.keys(TEMPLATE_SETS[set].metrics);
}

/** A template that cannot be rendered: an unknown placeholder, a placeholder without a value, bad braces. */
export class TemplateError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TemplateError';
  }
}

const PLACEHOLDER = /\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}/g;

/** The placeholders a template uses, in order of first use. */
export function placeholdersOf(template: string): string[] {
  return [...new Set([...template.matchAll(PLACEHOLDER)].map((m) => m[1]))];
}

/** Escapes a value for a PromQL string literal ("..."), where every placeholder but window and params sits. */
function escapeValue(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

/**
 * Fills a template's placeholders. Refuses a placeholder that `vars` does not know (a typo like `{{namespce}}`),
 * one it knows without a value (`{{version}}` when the stable version is unknown), and stray `{{` / `}}`.
 * Placeholders named in `raw` are PromQL themselves and go in unescaped.
 */
export function renderQuery(
  template: string,
  vars: TemplateVars,
  raw: readonly string[] = ['selector'],
): string {
  const known = Object.keys(vars);
  const unknown = placeholdersOf(template).filter((p) => !Object.hasOwn(vars, p));
  if (unknown.length > 0) {
    throw new TemplateError(
      `unknown placeholder${unknown.length > 1 ? 's' : ''} ${unknown.map((u) => `{{${u}}}`).join(', ')} in ` +
        `${JSON.stringify(template)}; known: ${known.map((k) => `{{${k}}}`).join(', ')}`,
    );
  }
  const stray = template.replace(PLACEHOLDER, '');
  if (/\{\{|\}\}/.test(stray)) {
    throw new TemplateError(
      `malformed placeholder in ${JSON.stringify(template)}: write placeholders as {{name}} with a name of letters, digits and _`,
    );
  }
  return template.replace(PLACEHOLDER, (_, name: string) => {
    const value = vars[name];
    if (value === undefined) {
      throw new TemplateError(`the placeholder {{${name}}} has no value for this query`);
    }
    return raw.includes(name) ? String(value) : escapeValue(String(value));
  });
}

/** A window in seconds as a PromQL duration: 300 → 5m, 3600 → 1h, 90 → 90s. */
export function promDuration(seconds: number): string {
  const s = Math.max(1, Math.round(seconds));
  if (s % 3600 === 0) return `${s / 3600}h`;
  if (s % 60 === 0) return `${s / 60}m`;
  return `${s}s`;
}
