// MetricsProvider over the local proxy's per-side counters (GET /metrics on the control API). It answers every
// named metric of the analysis checks (ANALYSIS_METRICS), for now only: no evaluation in the past, no range
// queries (a test check needs Prometheus). Its failures are MetricsQueryErrors, as Prometheus's are, so a round and
// the preflight tell a query no retry can fix (a raw query, an unknown metric: bad_query) from a stack that does not
// answer (unreachable, server).
import { MetricsQueryError } from '../metrics/errors';
import type { MetricQuery, MetricsProvider } from '../types';
import { LocalStackClient, LocalStackError, type MetricsAnswer } from './control-client';

/** Named metrics and what each one reads from a /metrics answer. */
const FIELDS = {
  'error-rate': (m) => m.errorRate,
  'latency-p50': (m) => m.p50,
  'latency-p95': (m) => m.p95,
  'latency-p99': (m) => m.p99,
  'request-rate': (m) => m.requestRate,
  'request-count': (m) => m.requests,
  // The local stack fails requests with 500 only, so every error is a 5xx.
  '5xx-rate': (m) => m.errorRate,
  'request-success-rate': (m) => (m.errorRate === null ? null : Math.round((100 - m.errorRate) * 100) / 100),
  'latency-avg': (m) => m.mean,
} as const satisfies Record<string, (m: MetricsAnswer) => number | null>;

export const LOCAL_METRICS = Object.keys(FIELDS);

export interface SampleRule {
  /** Fewer requests than this in the window is not enough evidence to judge. */
  minSamples: number;
  /** How long a query may wait for a fresh canary to collect its minimum sample, in ms. */
  waitMs: number;
}

export const DEFAULT_SAMPLE_RULE: SampleRule = { minSamples: 10, waitMs: 5000 };

export class LocalMetricsProvider implements MetricsProvider {
  readonly type = 'local';

  constructor(
    private readonly client: LocalStackClient,
    private readonly sample: SampleRule = DEFAULT_SAMPLE_RULE,
  ) {}

  async runQuery(q: MetricQuery): Promise<number | null> {
    if (!q.metric) {
      throw new MetricsQueryError(
        'bad_query',
        q.query
          ? 'the local metrics provider takes named metrics (error-rate, latency-p95, ...), not raw queries'
          : `a check needs a metric for the local metrics provider (one of ${LOCAL_METRICS.join(', ')})`,
      );
    }
    if (!Object.hasOwn(FIELDS, q.metric)) {
      throw new MetricsQueryError(
        'bad_query',
        `unknown metric ${JSON.stringify(q.metric)}: the local provider knows ${LOCAL_METRICS.join(', ')}`,
      );
    }
    if (q.atMs !== undefined) {
      throw new Error(
        `the local metrics provider measures the present only, not as of ${Number.isFinite(q.atMs) ? new Date(q.atMs).toISOString() : q.atMs}: ` +
          'evaluating at a past time (a backtest) needs Prometheus',
      );
    }
    const read = FIELDS[q.metric as keyof typeof FIELDS];
    if (q.metric === 'request-count') {
      // The count itself is the evidence of how much traffic there was, a small one included; no side (no
      // canary running) is no data.
      const answer = await this.metrics(q);
      return answer.version === null ? null : read(answer);
    }
    // A side that just started (or just got traffic) may not have a minimum sample yet: give it a moment. A side
    // that does not run (no canary yet, as in the preflight) will not get one: no data at once.
    const deadline = Date.now() + this.sample.waitMs;
    let answer = await this.metrics(q);
    while (answer.version !== null && answer.requests < this.sample.minSamples && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
      answer = await this.metrics(q);
    }
    // Too few requests in the window is no evidence, whatever the metric (a rate of 0 included).
    if (answer.requests < Math.max(1, this.sample.minSamples)) return null;
    return read(answer);
  }

  isOnline(): Promise<boolean> {
    return this.client.healthy();
  }

  /** One side's counters; a stack that does not answer (or fails) is a MetricsQueryError naming its control URL. */
  private async metrics(q: MetricQuery): Promise<MetricsAnswer> {
    try {
      return await this.client.metrics(q.side, q.windowSeconds);
    } catch (err) {
      if (!(err instanceof LocalStackError)) throw err;
      // A refusal (4xx) is this query's fault (a window the stack does not take); anything else is the stack's.
      const kind = err.status === undefined ? 'unreachable' : err.status < 500 ? 'bad_query' : 'server';
      throw new MetricsQueryError(kind, err.message);
    }
  }
}
