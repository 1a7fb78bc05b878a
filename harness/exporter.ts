// An HTTP exporter a test controls: one side (stable or canary) of one app, serving /metrics in the Prometheus text
// format with the series a template set reads (Istio telemetry, ingress-nginx, or plain http_* instrumentation).
// It counts synthetic requests over real time at `rps`, deterministically: errors are an exact share of the count,
// and latencies fill the histogram's buckets by the asked distribution, so the quantiles Prometheus computes land
// in the bucket of the asked value. `set()` changes the behaviour live; counters stay monotonic.
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';

export type ExporterSet = 'istio' | 'nginx' | 'http';

/** Latency targets in ms, or a quantile function: u in [0, 1] → latency in ms (non-decreasing). */
export type LatencySpec = { p50: number; p95: number; p99: number } | ((u: number) => number);

export interface ExporterBehaviour {
  /** Requests per second. */
  rps: number;
  /** Share of requests answered 5xx (0..1). */
  errorRate: number;
  /** Share answered 4xx (0..1): the client's fault, not an error of the canary. */
  clientErrorRate?: number;
  latencyMs: LatencySpec;
}

export interface ExporterOptions extends ExporterBehaviour {
  set: ExporterSet;
  side: 'stable' | 'canary';
  app: string;
  namespace: string;
  version: string;
  /** That side's Deployment (Istio's destination_workload). */
  workload: string;
  /** That side's Service (ingress-nginx's service label); default: the app, or `<app>-canary`. */
  service?: string;
  /** The primary Ingress (ingress-nginx's ingress label); default: the app. */
  ingress?: string;
  /** Histogram bucket bounds in the set's unit (ms for istio, s otherwise); defaults as the real exporters. */
  buckets?: number[];
  /**
   * Series of other exporters served beside the set's own, as a cluster that runs them has them (kube-state-metrics'
   * kube_deployment_status_replicas_unavailable, say): fixed gauges.
   */
  extraSeries?: ExtraSeries[];
  /**
   * Counters that grow with this side's requests (an app's business metrics: conversions, visitors, inference cost):
   * each adds `perRequest` per request counted, so their rates follow `rps` as the request counter's does.
   */
  extraCounters?: ExtraCounter[];
}

export interface ExtraCounter {
  name: string;
  labels: Record<string, string>;
  /** What one request adds (1 for a per-request count, 0.25 for one conversion in four visits, a cost...). */
  perRequest: number;
}

export interface ExtraSeries {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface Exporter {
  /** http://127.0.0.1:port/metrics */
  url: string;
  set(change: Partial<ExporterBehaviour>): void;
  /** The counters as of now (requests, 5xx), for assertions. */
  totals(): { requests: number; errors: number };
  stop(): Promise<void>;
}

const ISTIO_BUCKETS_MS = [0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000];
const DEFAULT_BUCKETS_S = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

interface Counts {
  requests: number;
  errors: number;
  clientErrors: number;
  /** Cumulative bucket counts, in bucket order. */
  buckets: number[];
  sumMs: number;
  /** The extra counters' values, in the order of opts.extraCounters. */
  extra: number[];
}

/** The quantile function: piecewise linear through (0, p50/2), (.5, p50), (.95, p95), (.99, p99), (1, 1.2·p99). */
export function quantileFunction(spec: LatencySpec): (u: number) => number {
  if (typeof spec === 'function') return spec;
  const points: Array<[number, number]> = [
    [0, spec.p50 / 2],
    [0.5, spec.p50],
    [0.95, spec.p95],
    [0.99, spec.p99],
    [1, spec.p99 * 1.2],
  ];
  return (u) => {
    for (let i = 1; i < points.length; i++) {
      const [u0, v0] = points[i - 1];
      const [u1, v1] = points[i];
      if (u <= u1) return v0 + ((v1 - v0) * (u - u0)) / (u1 - u0);
    }
    return points[points.length - 1][1];
  };
}

/** The share of requests at or below `ms`: the inverse of the quantile function, by bisection. */
export function cdf(q: (u: number) => number, ms: number): number {
  if (q(0) > ms) return 0;
  if (q(1) <= ms) return 1;
  let lo = 0;
  let hi = 1;
  for (let i = 0; i < 50; i++) {
    const mid = (lo + hi) / 2;
    if (q(mid) <= ms) lo = mid;
    else hi = mid;
  }
  return lo;
}

/** The mean latency in ms of a latency spec: what the histogram's _sum over its _count reads. */
export function meanLatencyMs(spec: LatencySpec): number {
  return mean(quantileFunction(spec));
}

function mean(q: (u: number) => number): number {
  let total = 0;
  const n = 1000;
  for (let i = 0; i < n; i++) total += q((i + 0.5) / n);
  return total / n;
}

export async function startExporter(opts: ExporterOptions): Promise<Exporter> {
  const unitMs = opts.set === 'istio' ? 1 : 1000; // one bucket unit in ms
  const bounds = opts.buckets ?? (opts.set === 'istio' ? ISTIO_BUCKETS_MS : DEFAULT_BUCKETS_S);
  let behaviour: ExporterBehaviour = {
    rps: opts.rps,
    errorRate: opts.errorRate,
    clientErrorRate: opts.clientErrorRate ?? 0,
    latencyMs: opts.latencyMs,
  };
  // Counts at the start of the current segment (the last set()), plus what the segment has added since.
  const extraCounters = opts.extraCounters ?? [];
  let base: Counts = {
    requests: 0,
    errors: 0,
    clientErrors: 0,
    buckets: bounds.map(() => 0),
    sumMs: 0,
    extra: extraCounters.map(() => 0),
  };
  let segmentStart = Date.now();
  let shares = sharesOf(behaviour);

  function sharesOf(b: ExporterBehaviour) {
    const q = quantileFunction(b.latencyMs);
    return { buckets: bounds.map((le) => cdf(q, le * unitMs)), meanMs: mean(q) };
  }

  function countsAt(now: number): Counts {
    const n = Math.floor((behaviour.rps * (now - segmentStart)) / 1000);
    return {
      requests: base.requests + n,
      errors: base.errors + Math.floor(n * behaviour.errorRate),
      clientErrors: base.clientErrors + Math.floor(n * (behaviour.clientErrorRate ?? 0)),
      buckets: base.buckets.map((c, i) => c + Math.floor(n * shares.buckets[i])),
      sumMs: base.sumMs + n * shares.meanMs,
      extra: base.extra.map((v, i) => v + n * extraCounters[i].perRequest),
    };
  }

  const side = opts.side;
  const service = opts.service ?? (side === 'canary' ? `${opts.app}-canary` : opts.app);
  const ingress = opts.ingress ?? opts.app;

  function render(): string {
    const c = countsAt(Date.now());
    const ok = c.requests - c.errors - c.clientErrors;
    const byStatus: Array<[string, number]> = [
      ['200', ok],
      ['404', c.clientErrors],
      ['500', c.errors],
    ];
    const out: string[] = [];
    const labels = (l: Record<string, string>) =>
      `{${Object.entries(l)
        .map(([k, v]) => `${k}="${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`)
        .join(',')}}`;
    const counter = (name: string, help: string, series: Array<[Record<string, string>, number]>) => {
      out.push(`# HELP ${name} ${help}`, `# TYPE ${name} counter`);
      for (const [l, v] of series) out.push(`${name}${labels(l)} ${v}`);
    };
    const histogram = (name: string, help: string, l: Record<string, string>, scale: number) => {
      out.push(`# HELP ${name} ${help}`, `# TYPE ${name} histogram`);
      bounds.forEach((le, i) =>
        out.push(`${name}_bucket${labels({ ...l, le: String(le) })} ${c.buckets[i]}`),
      );
      out.push(`${name}_bucket${labels({ ...l, le: '+Inf' })} ${c.requests}`);
      out.push(`${name}_sum${labels(l)} ${(c.sumMs / scale).toFixed(6)}`);
      out.push(`${name}_count${labels(l)} ${c.requests}`);
    };
    switch (opts.set) {
      case 'istio': {
        // Both sidecars report a request; the templates read the destination's report only.
        const series = (reporter: string) =>
          byStatus.map(([code, v]): [Record<string, string>, number] => [
            {
              reporter,
              destination_workload: opts.workload,
              destination_workload_namespace: opts.namespace,
              destination_app: opts.app,
              destination_version: opts.version,
              destination_service_name: service,
              response_code: code,
            },
            v,
          ]);
        counter('istio_requests_total', 'Requests, as Istio reports them', [
          ...series('destination'),
          ...series('source'),
        ]);
        histogram(
          'istio_request_duration_milliseconds',
          'Request duration in ms',
          {
            reporter: 'destination',
            destination_workload: opts.workload,
            destination_workload_namespace: opts.namespace,
          },
          1,
        );
        break;
      }
      case 'nginx': {
        // ingress-nginx fills `canary` (the canary upstream's name) only for requests the canary Ingress served.
        const canary = side === 'canary' ? `${opts.namespace}-${service}-80` : '';
        const common = { namespace: opts.namespace, ingress, service, canary, host: `${opts.app}.example` };
        counter(
          'nginx_ingress_controller_requests',
          'Requests by the ingress controller',
          byStatus.map(([status, v]) => [{ ...common, method: 'GET', path: '/', status }, v]),
        );
        histogram(
          'nginx_ingress_controller_request_duration_seconds',
          'Request duration in s',
          { ...common, method: 'GET', path: '/' },
          1000,
        );
        break;
      }
      case 'http': {
        const common = { namespace: opts.namespace, app: opts.app, version: opts.version };
        counter(
          'http_requests_total',
          'HTTP requests',
          byStatus.map(([code, v]) => [{ ...common, method: 'GET', code }, v]),
        );
        histogram('http_request_duration_seconds', 'HTTP request duration in s', common, 1000);
        break;
      }
    }
    const extra = new Map<string, ExtraSeries[]>();
    for (const e of opts.extraSeries ?? []) extra.set(e.name, [...(extra.get(e.name) ?? []), e]);
    for (const [name, series] of extra) {
      out.push(`# HELP ${name} A series of another exporter`, `# TYPE ${name} gauge`);
      for (const e of series) out.push(`${name}${labels(e.labels)} ${e.value}`);
    }
    const counters = new Map<string, Array<[ExtraCounter, number]>>();
    extraCounters.forEach((e, i) => counters.set(e.name, [...(counters.get(e.name) ?? []), [e, c.extra[i]]]));
    for (const [name, series] of counters) {
      out.push(`# HELP ${name} A counter of the app's own`, `# TYPE ${name} counter`);
      for (const [e, v] of series) out.push(`${name}${labels(e.labels)} ${v}`);
    }
    return `${out.join('\n')}\n`;
  }

  const server = http.createServer((req, res) => {
    if (req.url?.split('?')[0] !== '/metrics') {
      res.writeHead(404).end('not found\n');
      return;
    }
    res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' }).end(render());
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  server.unref();
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}/metrics`,
    set(change) {
      const now = Date.now();
      base = countsAt(now);
      segmentStart = now;
      behaviour = { ...behaviour, ...change };
      if (change.latencyMs) shares = sharesOf(behaviour);
    },
    totals() {
      const c = countsAt(Date.now());
      return { requests: c.requests, errors: c.errors };
    },
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
