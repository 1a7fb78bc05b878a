// Reading one check's measurement (judge-v2.ts): what the round shows of the canary, before any rule counts it.
// An observation is one of: the provider could not answer (query_failed), the source refused the query itself
// (rejected, with permanentQueryErrors), it answered without evidence (no data, too little traffic), or evidence:
// a value in one of the check's bands, or a test's result. Pure and deterministic.
import { formatDuration } from './duration';
import type { AnalysisCheck, Band, Bound } from './analysis-model';
import { compareSeries, type MannWhitneyResult } from './mann-whitney';
import {
  PERMANENT_QUERY_ERROR_KINDS,
  type BandName,
  type JudgeOptions,
  type RoundMeasurement,
} from './judge-types';

export type Observation =
  | { kind: 'query_failed'; note: string }
  | { kind: 'rejected'; note: string }
  | { kind: 'no_evidence'; outcome: 'no_data' | 'inconclusive'; note: string }
  | {
      kind: 'evidence';
      band: BandName;
      outcome: 'pass' | 'hold' | 'breach' | 'marginal' | 'fail';
      note: string;
      test?: MannWhitneyResult;
    };

type NoEvidence = Extract<Observation, { kind: 'no_evidence' }>;

export function observe(
  check: AnalysisCheck,
  m: RoundMeasurement | undefined,
  options: JudgeOptions,
): Observation {
  if (!m) return { kind: 'no_evidence', outcome: 'no_data', note: 'no measurement this round' };
  if (m.error) return observeError(m.error, options);
  const requests = finite(m.requests);
  if (check.minRequests !== undefined && requests !== undefined && requests < check.minRequests) {
    return inconclusive(
      `${requests} requests in ${formatDuration(check.windowMs)}, fewer than minRequests ${check.minRequests}`,
    );
  }
  return check.test ? observeTest(check, check.test, m, requests) : observeValue(check, m, requests);
}

/** A provider's error: its own "no values", a query the source refused (permanentQueryErrors), or an outage. */
function observeError(error: NonNullable<RoundMeasurement['error']>, options: JudgeOptions): Observation {
  if (error.kind === 'no_data') {
    return { kind: 'no_evidence', outcome: 'no_data', note: `no data (${error.message})` };
  }
  if (options.permanentQueryErrors && PERMANENT_QUERY_ERROR_KINDS.includes(error.kind)) {
    return { kind: 'rejected', note: `query rejected (${error.kind}: ${error.message})` };
  }
  return { kind: 'query_failed', note: `query failed (${error.kind}: ${error.message})` };
}

/** A test check: the canary's series against stable's, once both have enough points. */
function observeTest(
  check: AnalysisCheck,
  test: NonNullable<AnalysisCheck['test']>,
  m: RoundMeasurement,
  requests: number | undefined,
): Observation {
  const canary = (m.series?.canary ?? []).filter(Number.isFinite);
  const baseline = (m.series?.baseline ?? []).filter(Number.isFinite);
  if (canary.length === 0 || baseline.length === 0) {
    return noData(canary.length === 0 ? 'no canary series' : 'no stable series');
  }
  if (Math.min(canary.length, baseline.length) < test.minSamples) {
    return inconclusive(
      `${canary.length} canary and ${baseline.length} stable points, fewer than minSamples ${test.minSamples}`,
    );
  }
  if (check.minRequests !== undefined && requests === undefined) return unknownRequests(check);
  const c = compareSeries(canary, baseline, test);
  const band: BandName = c.outcome === 'pass' ? 'success' : c.outcome === 'marginal' ? 'between' : 'abort';
  return { kind: 'evidence', band, outcome: c.outcome, note: c.note, test: c.result };
}

/** A threshold check: the canary's value (and stable's, where it compares) placed in a band. */
function observeValue(check: AnalysisCheck, m: RoundMeasurement, requests: number | undefined): Observation {
  const window = formatDuration(check.windowMs);
  const value = finite(m.value);
  if (value === undefined) return noData(`no data for ${window}`);
  // A day-over-day baseline is stable as it was `offset` earlier.
  const offset = check.compare?.offsetMs;
  const stableName = offset === undefined ? 'stable' : `stable ${formatDuration(offset)} earlier`;
  const baseline = check.compare ? finite(m.baseline) : undefined;
  if (check.compare && baseline === undefined) {
    return noData(
      offset === undefined
        ? `no stable data for ${window} to compare with`
        : `no data for ${window} of ${stableName} to compare with`,
    );
  }
  if (check.minRequests !== undefined && requests === undefined) return unknownRequests(check);

  const ratio = baseline === undefined ? undefined : ratioOf(value, baseline);
  if (baseline !== undefined && ratio === undefined && usesRatio(check)) {
    return inconclusive(`ratio undefined: stable's value ${fmt(baseline)} is negative`);
  }
  const sides = { value, ratio, difference: baseline === undefined ? undefined : value - baseline };
  const shown =
    baseline === undefined
      ? fmt(value)
      : `${fmt(value)} (${stableName} ${fmt(baseline)}, ratio ${ratio === undefined ? '-' : fmt(ratio)})`;
  return placeInBands(check, sides, shown);
}

/** Past any abort bound: abort; short of a success bound: between; else success. */
function placeInBands(check: AnalysisCheck, sides: Sides, shown: string): Observation {
  const crossed = check.abort?.band ? crossings(check.abort.band, sides, 'abort') : [];
  if (crossed.length > 0) {
    return { kind: 'evidence', band: 'abort', outcome: 'breach', note: `${shown}: ${crossed.join(', ')}` };
  }
  const missed = check.success ? misses(check.success, sides) : [];
  if (missed.length > 0) {
    return {
      kind: 'evidence',
      band: 'between',
      outcome: 'hold',
      note: `${shown}: ${missed.join(', ')}, not past abort`,
    };
  }
  return { kind: 'evidence', band: 'success', outcome: 'pass', note: `${shown} ok` };
}

function noData(note: string): NoEvidence {
  return { kind: 'no_evidence', outcome: 'no_data', note };
}

function inconclusive(note: string): NoEvidence {
  return { kind: 'no_evidence', outcome: 'inconclusive', note };
}

function unknownRequests(check: AnalysisCheck): Observation {
  return inconclusive(`request count unknown (minRequests ${check.minRequests})`);
}

function usesRatio(check: AnalysisCheck): boolean {
  return check.success?.ratio !== undefined || check.abort?.band?.ratio !== undefined;
}

/** canary / stable; 1 when both are 0, +Infinity for a canary above a stable 0; undefined below a negative. */
function ratioOf(value: number, baseline: number): number | undefined {
  if (baseline > 0) return value / baseline;
  if (baseline < 0) return undefined;
  return value === 0 ? 1 : value > 0 ? Infinity : -Infinity;
}

type Sides = { value: number; ratio?: number; difference?: number };
const DIMENSIONS = ['value', 'ratio', 'difference'] as const;

/** The abort bounds crossed, e.g. `7.2 > abort max 5`, `ratio 2.1 > abort ratio max 2`. */
function crossings(band: Band, sides: Sides, label: string): string[] {
  const out: string[] = [];
  for (const dim of DIMENSIONS) {
    const bound: Bound | undefined = band[dim];
    const v = sides[dim];
    if (!bound || v === undefined) continue;
    const what = dim === 'value' ? '' : `${dim} `;
    const shown = dim === 'value' ? fmt(v) : `${dim} ${fmt(v)}`;
    if (bound.max !== undefined && v > bound.max) out.push(`${shown} > ${label} ${what}max ${bound.max}`);
    if (bound.min !== undefined && v < bound.min) out.push(`${shown} < ${label} ${what}min ${bound.min}`);
  }
  return out;
}

/** The success bounds not met (a success bound holds at equality). */
function misses(band: Band, sides: Sides): string[] {
  return crossings(band, sides, 'success');
}

function finite(v: number | null | undefined): number | undefined {
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

export function reportedValue(v: number | null | undefined, series: number[] | undefined): number | null {
  const own = finite(v);
  if (own !== undefined) return own;
  const points = (series ?? []).filter(Number.isFinite).sort((a, b) => a - b);
  if (points.length === 0) return null;
  const mid = Math.floor(points.length / 2);
  return points.length % 2 === 1 ? points[mid] : (points[mid - 1] + points[mid]) / 2;
}

function fmt(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  return String(Math.round(v * 1000) / 1000);
}
