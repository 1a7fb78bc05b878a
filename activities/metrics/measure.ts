// What one analysis round measures for one check of the full form (analysis-spec.ts), shared by the measureChecks
// activity (rollout-activities.ts) and the metrics preflight (./preflight.ts), which runs the same queries once
// before any traffic moves. A query that fails is recorded on the check as `error` (never thrown): a failed query
// is the judge's to weigh.
import type { AnalysisCheck } from '../../workflows/analysis-spec';
import type { RoundMeasurement } from '../../workflows/judge-v2';
import type { MetricQuery, MetricsProvider, RoutingVersions } from '../types';
import { MetricsQueryError } from './errors';

export type QueryFailure = NonNullable<RoundMeasurement['error']>;
type Attempt<T> = { ok: true; value: T } | { ok: false; error: QueryFailure };

/**
 * The kind a failed query is recorded with: a MetricsQueryError's own kind (unreachable, bad_query, execution,
 * timeout, auth, server: Prometheus and the local stack throw them), `no_data` when the provider says it found no
 * values (Flagger's "no values found"), else `error`.
 */
export function queryFailure(err: unknown): QueryFailure {
  const message = err instanceof Error ? err.message : String(err);
  if (err instanceof MetricsQueryError) return { kind: err.kind, message };
  if (/\bno values\b/i.test(message)) return { kind: 'no_data', message };
  return { kind: 'error', message };
}

async function attempt<T>(run: () => Promise<T>): Promise<Attempt<T>> {
  try {
    return { ok: true, value: await run() };
  } catch (err) {
    return { ok: false, error: queryFailure(err) };
  }
}

/** NaN and ±Inf (a ratio over no traffic) are no data, never a number to judge. */
function numberOrNull(v: number | null): number | null {
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
}

export function usesStable(check: AnalysisCheck): boolean {
  return (
    check.compare !== undefined ||
    [check.success, check.abort?.band].some((b) => b?.ratio !== undefined || b?.difference !== undefined)
  );
}

/** Everything the judge reads for one check, its queries in parallel; a failure becomes the check's `error`. */
export async function measureCheck(
  metrics: MetricsProvider,
  check: AnalysisCheck,
  versions: RoutingVersions,
  atMs: number | undefined,
): Promise<RoundMeasurement> {
  const sideOf = (side: 'canary' | 'stable'): Pick<MetricQuery, 'side' | 'version'> => {
    const version = versions[side];
    return version === undefined ? { side } : { side, version };
  };
  const source: Pick<MetricQuery, 'metric' | 'query'> = {};
  if (check.metric !== undefined) source.metric = check.metric;
  if (check.query !== undefined) source.query = check.query;
  const at = atMs === undefined ? {} : { atMs };
  const windowSeconds = check.windowMs / 1000;

  // A day-over-day baseline (compare.offset) reads stable's window that long before the canary's.
  const offsetMs = check.compare?.offsetMs;
  const stableAt = offsetMs === undefined ? at : { atMs: (atMs ?? Date.now()) - offsetMs };
  const instant = (side: 'canary' | 'stable', what: Pick<MetricQuery, 'metric' | 'query'>) =>
    attempt(async () =>
      numberOrNull(
        await metrics.runQuery({
          ...sideOf(side),
          ...what,
          windowSeconds,
          ...(side === 'stable' ? stableAt : at),
        }),
      ),
    );
  const test = check.test;
  const range = metrics.rangeQuery?.bind(metrics);
  const series = (side: 'canary' | 'stable', stepMs: number, run: NonNullable<typeof range>) =>
    attempt(async () => {
      // Each point covers its own step, so the test compares points that do not overlap; together they span
      // the check's window, ending at the round's time.
      const endMs = (atMs ?? Date.now()) - (side === 'stable' ? (offsetMs ?? 0) : 0);
      const stepSeconds = stepMs / 1000;
      const points = await run({
        ...sideOf(side),
        ...source,
        windowSeconds: stepSeconds,
        startMs: endMs - check.windowMs,
        endMs,
        stepSeconds,
      });
      return points.map(([, v]) => v).filter(Number.isFinite);
    });

  const [value, baseline, requests, canarySeries, stableSeries] = await Promise.all([
    instant('canary', source),
    usesStable(check) ? instant('stable', source) : undefined,
    check.minRequests !== undefined ? instant('canary', { metric: 'request-count' }) : undefined,
    test && range ? series('canary', test.stepMs, range) : undefined,
    test && range ? series('stable', test.stepMs, range) : undefined,
  ]);

  const m: RoundMeasurement = { value: value.ok ? value.value : null };
  const failures: QueryFailure[] = [];
  if (!value.ok) failures.push(value.error);
  if (baseline) {
    if (baseline.ok) m.baseline = baseline.value;
    else failures.push(baseline.error);
  }
  if (requests) {
    if (requests.ok) m.requests = requests.value;
    else failures.push(requests.error);
  }
  if (test && !range) {
    failures.push({
      kind: 'unsupported',
      message:
        `the ${metrics.type} metrics provider has no range queries: the ${test.type} test of check ` +
        `${JSON.stringify(check.name)} compares the canary's and stable's series, and range queries need Prometheus`,
    });
  }
  if (canarySeries && stableSeries) {
    if (canarySeries.ok && stableSeries.ok) {
      m.series = { canary: canarySeries.value, baseline: stableSeries.value };
    }
    if (!canarySeries.ok) failures.push(canarySeries.error);
    if (!stableSeries.ok) failures.push(stableSeries.error);
  }
  // A query that did not run outweighs one that found no values.
  const error = failures.find((f) => f.kind !== 'no_data') ?? failures[0];
  if (error) m.error = error;
  return m;
}
