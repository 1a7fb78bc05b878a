// The metrics part of a rollout's preflight: before any traffic moves, every check runs once, against the rollout's
// real metrics source, the queries an analysis round would run (measureCheck, the same code as the measureChecks
// activity), and stable's side is looked at too. So a query the source rejects, a source that does not answer, or a
// check with no data even for stable (its exporter is missing) is named before the rollout starts, instead of
// holding it at its first stage forever or rolling it back a minute in.
//
// The canary has no traffic yet, so the canary side answering "no data" is expected and never a finding.
//
// When is "no data for stable" a finding? A missing exporter and a quiet stable both answer "no value", so the
// preflight asks the source whether the query matches any series at all (Prometheus: a ratio over zero traffic
// answers NaN, which is a series; a missing exporter answers nothing):
//   1. stable's query over the check's window has a value, or series without a number (NaN: it was quiet): fine;
//   2. it matches nothing: the same query over the last STABLE_LOOKBACK (the {{window}} widened; series created on
//      the first request, e.g. per status code, reappear there after a quiet stretch) matches something: fine, stable
//      was only quiet;
//   3. it matches nothing there either (or the query has no {{window}} to widen, like a gauge of
//      kube-state-metrics): the series do not exist, a `data` finding: `refuse`, or `warn` where the check says
//      `onNoData: ignore` (its rounds go on without it).
// A provider that cannot tell series from values (the local stack, whose counters always exist) is not asked.
import type { AnalysisCheck } from '../../workflows/analysis-spec';
import { formatDuration } from '../../workflows/duration';
import type { RoundMeasurement } from '../../workflows/judge-v2';
import type { Plan } from '../../workflows/types';
import type { MetricQuery, MetricsProvider, PreflightFinding, RoutingVersions } from '../types';
import { measureCheck, queryFailure, type QueryFailure } from './measure';

/** How far back a check with no series over its own window looks for stable's series before it is refused. */
export const STABLE_LOOKBACK_MS = 24 * 3_600_000;
/** How far back a gauge's query (no {{window}}) is looked at, point by point, when an instant query found nothing. */
export const GAUGE_LOOKBACK_MS = 5 * 60_000;
const GAUGE_LOOKBACK_STEP_S = 5;

/**
 * Error kinds that say the query cannot run here: invalid (bad_query), or failing on the series stable has now
 * (execution: a round would meet the same series).
 */
const REJECTED_KINDS = new Set(['bad_query', 'execution']);

/** Error kinds that say the source did not answer (the worker's environment), not that the query is wrong. */
const OUTAGE_KINDS = new Set(['unreachable', 'timeout', 'auth', 'server', 'error']);

/**
 * What a provider offers when it can tell "no series" from "no value" (PrometheusMetricsProvider): the answer with
 * its number of series (NaN samples counted), and the query a MetricQuery renders to.
 */
interface SeriesProbe {
  readonly url?: string;
  readonly templates?: string;
  presence(q: MetricQuery): Promise<{ value: number | null; series: number; query: string }>;
  render(q: MetricQuery): string;
  seriesOver?(q: MetricQuery, lookbackMs: number, stepSeconds: number): Promise<number>;
}

function seriesProbe(metrics: MetricsProvider): SeriesProbe | undefined {
  const p = metrics as MetricsProvider & Partial<SeriesProbe>;
  return typeof p.presence === 'function' && typeof p.render === 'function' ? (p as SeriesProbe) : undefined;
}

/** A check of the plan, in the form measureCheck reads, and where it is written. */
interface PlannedCheck {
  check: AnalysisCheck;
  /** `analysis.checks[2].query` */
  path: string;
}

/** Runs every check's round queries once, and looks for stable's series; returns what it found, never throws. */
export async function metricsPreflight(
  metrics: MetricsProvider,
  plan: Plan,
  versions: RoutingVersions,
): Promise<PreflightFinding[]> {
  const probe = seriesProbe(metrics);
  const looked = await Promise.all(
    plannedChecks(plan).map(async (planned) => {
      const [round, stable] = await Promise.all([
        measureCheck(metrics, planned.check, versions, undefined),
        probe ? lookAtStable(probe, planned.check, versions) : undefined,
      ]);
      return { ...planned, round, stable };
    }),
  );

  const findings: PreflightFinding[] = [];
  const outages = new Map<string, Array<{ name: string; path: string; failure: QueryFailure }>>();
  const outage = (name: string, path: string, failure: QueryFailure) =>
    outages.set(failure.kind, [...(outages.get(failure.kind) ?? []), { name, path, failure }]);

  for (const { check, path, round, stable } of looked) {
    const name = JSON.stringify(check.name);
    // What a round would see first: a query that did not run. The canary's "no data" is expected (no traffic yet).
    const failed = roundFailure(round);
    if (failed) {
      // Stable's version comes from the workload manager; where it cannot tell before the canary is made (it
      // learns it then), a query that selects stable by version cannot be tried yet: no finding either way.
      if (failed.kind === 'unknown_version' && versions.stable === undefined) continue;
      if (REJECTED_KINDS.has(failed.kind)) findings.push(rejected(name, path, failed));
      else if (OUTAGE_KINDS.has(failed.kind)) outage(check.name, path, failed);
      else {
        findings.push({
          area: 'metrics',
          cause: 'input',
          level: 'refuse',
          message: `check ${name} cannot be measured here: ${failed.message}`,
          path,
        });
      }
      continue;
    }
    if (!stable || stable.kind === 'present') continue;
    if (stable.kind === 'failed') {
      // Stable's own query can fail where the canary's ran: more than one series (not aggregated), say. Without
      // stable's version a query that selects a side by it cannot be rendered for stable; a round of a check that
      // does not compare never needs it, so that is no finding.
      if (stable.failure.kind === 'unknown_version') continue;
      if (REJECTED_KINDS.has(stable.failure.kind)) {
        if (versions.stable !== undefined) findings.push(rejected(name, path, stable.failure));
      } else outage(check.name, path, stable.failure);
      continue;
    }
    if (stable.kind === 'unknown') {
      findings.push({
        area: 'data',
        cause: 'infrastructure',
        level: 'warn',
        message:
          `check ${name}: stable has no data over its ${formatDuration(check.windowMs)} window, and looking ` +
          `${formatDuration(stable.lookbackMs)} back failed (${stable.failure.message}); if the series it reads ` +
          'do not exist, no round will ever judge it',
        path,
      });
      continue;
    }
    findings.push(noStableData(check, name, path, versions, stable, metrics));
  }

  for (const group of outages.values()) {
    const names = group.map((g) => JSON.stringify(g.name));
    findings.push({
      area: 'query',
      cause: 'infrastructure',
      level: 'refuse',
      message:
        `${group.length === 1 ? `check ${names[0]}` : `checks ${list(names)}`} could not be measured: ` +
        `${group[0].failure.message}; no round can measure ${group.length === 1 ? 'it' : 'them'} until the metrics source answers`,
      ...(group.length === 1 ? { path: group[0].path } : {}),
    });
  }
  return findings;
}

/** The checks of the plan: the full form's rules, or the short form's checks as their rounds measure them. */
function plannedChecks(plan: Plan): PlannedCheck[] {
  const where = (i: number, c: { query?: string }) =>
    `analysis.checks[${i}].${c.query !== undefined ? 'query' : 'metric'}`;
  if (plan.analysis.rules) {
    // Web checks are not the metrics source's: their own preflight is web.ts's.
    return plan.analysis.rules.flatMap((check, i) =>
      check.web || check.job ? [] : [{ check, path: where(i, check) }],
    );
  }
  // A short-form round (runAnalysis) reads the canary's value over the plan's analysis window.
  const windowMs = Math.max(30, Math.round(plan.analysis.intervalMs / 1000)) * 1000;
  return plan.analysis.checks.map((c, i) => ({
    check: {
      name: c.name,
      ...(c.metric !== undefined ? { metric: c.metric as AnalysisCheck['metric'] } : {}),
      ...(c.query !== undefined ? { query: c.query } : {}),
      windowMs,
      onNoData: { action: 'hold', limit: plan.analysis.inconclusiveLimit, then: 'rollback' },
      onQueryError: { limit: plan.analysis.inconclusiveLimit, then: 'rollback' },
      shortForm: true,
    },
    path: where(i, c),
  }));
}

/** The failure a round would record for this check, unless it is only "no data" (the canary has no traffic). */
function roundFailure(round: RoundMeasurement): QueryFailure | undefined {
  return round.error && round.error.kind !== 'no_data' ? round.error : undefined;
}

type StableLook =
  | { kind: 'present' }
  | { kind: 'absent'; widened: boolean; query: string }
  | { kind: 'unknown'; failure: QueryFailure; lookbackMs: number }
  | { kind: 'failed'; failure: QueryFailure };

/** Whether stable's side of the check matches any series, over its window or else over STABLE_LOOKBACK_MS. */
async function lookAtStable(
  probe: SeriesProbe,
  check: AnalysisCheck,
  versions: RoutingVersions,
): Promise<StableLook> {
  const q: MetricQuery = {
    side: 'stable',
    ...(versions.stable !== undefined ? { version: versions.stable } : {}),
    ...(check.metric !== undefined ? { metric: check.metric } : {}),
    ...(check.query !== undefined ? { query: check.query } : {}),
    windowSeconds: check.windowMs / 1000,
  };
  let now: Awaited<ReturnType<SeriesProbe['presence']>>;
  try {
    now = await probe.presence(q);
  } catch (err) {
    return { kind: 'failed', failure: queryFailure(err) };
  }
  if (now.series > 0) return { kind: 'present' };
  const longer: MetricQuery = { ...q, windowSeconds: Math.max(q.windowSeconds, STABLE_LOOKBACK_MS / 1000) };
  // A query without {{window}} (a gauge) reads the same series however far the window reaches. Its series vanish
  // from an instant query for a moment after a failed scrape (Prometheus marks them stale), so look at the last
  // GAUGE_LOOKBACK_MS point by point before calling them absent.
  if (probe.render(longer) === now.query) {
    if (!probe.seriesOver) return { kind: 'absent', widened: false, query: now.query };
    try {
      const seen = await probe.seriesOver(q, GAUGE_LOOKBACK_MS, GAUGE_LOOKBACK_STEP_S);
      return seen > 0 ? { kind: 'present' } : { kind: 'absent', widened: false, query: now.query };
    } catch (err) {
      return { kind: 'unknown', failure: queryFailure(err), lookbackMs: GAUGE_LOOKBACK_MS };
    }
  }
  try {
    const back = await probe.presence(longer);
    return back.series > 0 ? { kind: 'present' } : { kind: 'absent', widened: true, query: now.query };
  } catch (err) {
    return { kind: 'unknown', failure: queryFailure(err), lookbackMs: STABLE_LOOKBACK_MS };
  }
}

function rejected(name: string, path: string, failure: QueryFailure): PreflightFinding {
  return {
    area: 'query',
    cause: 'input',
    level: 'refuse',
    message: `check ${name}: its query cannot run, so no round could measure it; fix it: ${failure.message}`,
    path,
  };
}

function noStableData(
  check: AnalysisCheck,
  name: string,
  path: string,
  versions: RoutingVersions,
  stable: Extract<StableLook, { kind: 'absent' }>,
  metrics: MetricsProvider,
): PreflightFinding {
  const ignored = check.onNoData.action === 'ignore';
  const probe = seriesProbe(metrics);
  const source = probe?.url ? `Prometheus at ${probe.url}` : `the ${metrics.type} metrics source`;
  const side = `stable${versions.stable !== undefined ? ` (${versions.stable})` : ''}`;
  const when = stable.widened
    ? `, neither over its ${formatDuration(check.windowMs)} window nor over the last ${formatDuration(STABLE_LOOKBACK_MS)}`
    : '';
  const hint =
    check.metric !== undefined
      ? `does this cluster export the series the ${probe?.templates ?? "target's"} template set reads, with this ` +
        "app's labels (target.metrics.prometheus.templates)?"
      : 'is the exporter it reads, such as kube-state-metrics, cAdvisor or DCGM, installed and scraped, and do ' +
        "the query's labels match?";
  return {
    area: 'data',
    // The check asks for series this source does not have: the plan must drop or fix it (or the cluster gain the
    // exporter it reads); starting the same rollout again cannot help.
    cause: 'input',
    level: ignored ? 'warn' : 'refuse',
    message:
      `check ${name}: its query matches no series for ${side} on ${source}${when}, so the series it reads do ` +
      `not exist (${hint}); ` +
      (ignored
        ? 'its rounds will go on without it (onNoData: ignore)'
        : 'no round could judge it: fix the query, or say onNoData: ignore if the check may lack data') +
      `; query: ${shorten(stable.query)}`,
    path,
  };
}

function list(items: string[]): string {
  return items.length <= 1
    ? (items[0] ?? '')
    : `${items.slice(0, -1).join(', ')} and ${items[items.length - 1]}`;
}

function shorten(query: string, max = 300): string {
  const flat = query.replace(/\s+/g, ' ').trim();
  return flat.length > max ? `${flat.slice(0, max)}...` : flat;
}
