// MetricsProvider over the local proxy's per-side counters (GET /metrics on the control API).
import type { MetricQuery, MetricsProvider } from '../types';
import { LocalStackClient, type MetricsAnswer } from './control-client';

/** Named metrics and the /metrics field each one reads. */
const FIELDS = {
  'error-rate': 'errorRate',
  'latency-p50': 'p50',
  'latency-p95': 'p95',
  'latency-p99': 'p99',
  'request-rate': 'requestRate',
} as const satisfies Record<string, keyof MetricsAnswer>;

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
      throw new Error(
        q.query
          ? 'the local metrics provider takes named metrics (error-rate, latency-p95, ...), not raw queries'
          : `a check needs a metric for the local metrics provider (one of ${LOCAL_METRICS.join(', ')})`,
      );
    }
    if (!Object.hasOwn(FIELDS, q.metric)) {
      throw new Error(
        `unknown metric ${JSON.stringify(q.metric)}: the local provider knows ${LOCAL_METRICS.join(', ')}`,
      );
    }
    // A side that just started (or just got traffic) may not have a minimum sample yet: give it a moment.
    const deadline = Date.now() + this.sample.waitMs;
    let answer = await this.client.metrics(q.side, q.windowSeconds);
    while (answer.requests < this.sample.minSamples && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
      answer = await this.client.metrics(q.side, q.windowSeconds);
    }
    // Too few requests in the window is no evidence, whatever the metric (a rate of 0 included).
    if (answer.requests < Math.max(1, this.sample.minSamples)) return null;
    return answer[FIELDS[q.metric as keyof typeof FIELDS]];
  }

  isOnline(): Promise<boolean> {
    return this.client.healthy();
  }
}
