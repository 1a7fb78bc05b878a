// Analysis checks as written in a plan (issue 6) and their validation into the normalised AnalysisCheck the
// judge (judge-v2.ts) reads. Pure and deterministic: imported by the workflow sandbox and the client alike.
// The full form is what validatePlan reads for a plan that uses any of its fields (plan.ts, usesFullForm).
//
// Grammar (YAML; durations as everywhere in a plan: 90s, 5m, 1h30m, PT5M):
//
//   - name: error-rate               # unique
//     metric: error-rate             # a named metric (ANALYSIS_METRICS), or
//     query: 'PromQL {{app}} ...'    # custom PromQL with {{namespace}} {{app}} {{version}} {{side}} {{window}} ...
//     window: 5m                     # the range the value covers (default: the plan's analysis window)
//     minRequests: 100               # fewer requests in the window: inconclusive, not judged
//     compare: { to: stable, ratio: { max: 1.2 } }   # measure stable too; ratio/difference here join success
//     compare: { to: stable, offset: 1d, ... }       # stable as it was 1 day earlier (day-over-day baseline)
//     success: { max: 1, min: .., ratio: { max: .. }, difference: { max: .. } }   # all must hold to advance
//     abort:                         # crossing any bound acts by severity
//       max: 5                       # ..., min, ratio: {max,min}, difference: {max,min}
//       severity: high               # critical | high (default) | medium | low
//       for: 5m                      # high/medium/low: the breach must last this long, or
//       consecutive: 3               #   this many rounds in a row (high's default: 3; others: 1)
//       recoverAfter: 10m            # medium: healthy this long after a step-back goes forward again
//       rollbackAfter: 30m           # medium: still breaching this long after the step-back rolls back
//       then: approval               # critical/high: ask a person instead of rolling back (playbook 002's hybrid
//       decideWithin: 1h             #   decision); nobody answers within decideWithin (default 1h): roll back
//     test: { type: mann-whitney, effectSize: 0.33, alpha: 0.05, direction: increase, minSamples: 10, step: 30s }
//                                    # (a test check's window defaults to at least (minSamples - 1) x step)
//     onNoData: hold                 # hold (default) | fail | ignore | { action: hold, limit: 3, then: rollback }
//     onQueryError: rollback         # then-action after `limit` failed queries, or { limit: 3, then: approval }
//     stages: [1]                    # only in these stages (1-based), e.g. "no errors at 5 %"; default: every one
//
//   Short form (plans before issue 6):   - { name, metric | query, max?, min? }
//   (window, minRequests, onNoData and onQueryError may join it; success, abort, compare and test may not)
//
// A band holds when every bound in it holds (max: value <= max; min: value >= min); an abort band is crossed
// when any of its bounds is (value > max, value < min). Between success and abort the stage holds. Without an
// explicit success band, success is "not crossing abort"; without an abort band the check can only hold.
// `ratio` is canary / stable, `difference` is canary - stable: either one measures stable over the same window.
// A `test` check compares the canary's series with stable's (judge: pass, marginal or fail); its abort may
// carry a severity and for/consecutive but no thresholds (a failing test is the breach).
import { z } from 'zod';
import {
  Collector,
  byHand,
  checkDuration,
  describe,
  isObject,
  sortedProblems,
  typeError,
  type InputProblem,
  type Obj,
  type Segment,
} from './problems';
import type { Direction } from './mann-whitney';

// ---------------------------------------------------------------------------------------------------------------
// The normalised model (what the judge reads)

/** Metric names every metrics provider's template set defines, with their units. */
export const ANALYSIS_METRICS = [
  'request-success-rate', // %
  'error-rate', // %
  '5xx-rate', // %
  'latency-p50', // ms
  'latency-p95', // ms
  'latency-p99', // ms
  'latency-avg', // ms: the mean (histogram sum / count)
  'request-rate', // requests per second
  'request-count', // requests in the window
] as const;
export type AnalysisMetric = (typeof ANALYSIS_METRICS)[number];

/** Placeholders a custom query may use (the metrics templates fill them in for each side). */
export const QUERY_PLACEHOLDERS = [
  'namespace',
  'app',
  'version',
  'side',
  'workload',
  'service',
  'ingress',
  'window',
  'selector',
] as const;

/**
 * The placeholders whose value differs between the canary's side and stable's (the others, namespace, app, ingress
 * and window, are the same for both): a query without any of them measures the whole fleet, not the canary.
 */
export const SIDE_PLACEHOLDERS = ['side', 'version', 'workload', 'service', 'selector'] as const;

/** Whether a query uses a placeholder that tells the canary's series from stable's. */
export function selectsASide(query: string): boolean {
  return [...query.matchAll(/\{\{\s*([^{}]*?)\s*\}\}/g)].some((m) =>
    (SIDE_PLACEHOLDERS as readonly string[]).includes(m[1]),
  );
}

export const SEVERITIES = ['critical', 'high', 'medium', 'low'] as const;
export type Severity = (typeof SEVERITIES)[number];

/** What happens once missing evidence or failing queries reach their limit. */
export const LIMIT_ACTIONS = ['rollback', 'hold', 'approval'] as const;
export type LimitAction = (typeof LIMIT_ACTIONS)[number];

export const NO_DATA_ACTIONS = ['hold', 'fail', 'ignore'] as const;
export type NoDataAction = (typeof NO_DATA_ACTIONS)[number];

export const DIRECTIONS = ['increase', 'decrease', 'either'] as const;

export interface Bound {
  min?: number;
  max?: number;
}

/** Bounds on the canary's value, on canary / stable, and on canary - stable. */
export interface Band {
  value?: Bound;
  ratio?: Bound;
  difference?: Bound;
}

/** How long a breach must last before its severity acts. */
export type Persistence = { kind: 'consecutive'; rounds: number } | { kind: 'for'; ms: number };

export interface AbortRule {
  /** The thresholds; absent on test checks, where a failing test is the breach. */
  band?: Band;
  severity: Severity;
  /** critical: always one round. */
  persist: Persistence;
  /** medium only: the step-back's way forward (healthy this long) and way out (still breaching this long). */
  stepBack?: { recoverAfterMs: number; rollbackAfterMs: number };
  /**
   * critical/high with `then: approval`: a breach that would roll back asks a person instead, and traffic holds
   * while they decide. `approve` accepts this breach (the stage goes on; a later breach asks again), `abort` rolls
   * back, and without an answer within `decideWithinMs` it rolls back. Absent: the breach rolls back.
   */
  ask?: { decideWithinMs: number };
}

export interface MannWhitneyTest {
  type: 'mann-whitney';
  /** Smallest Cliff's delta in the bad direction that counts (see mann-whitney.ts compareSeries). */
  effectSize: number;
  alpha: number;
  direction: Direction;
  /** Fewer points than this on either side: inconclusive. */
  minSamples: number;
  /** Resolution of the range query the series come from. */
  stepMs: number;
}

export interface NoDataRule {
  action: NoDataAction;
  /** hold: rounds in a row without evidence (no data, or too few requests) before `then`. */
  limit: number;
  then: LimitAction;
}

export interface QueryErrorRule {
  /** Failed queries in a row before `then` (before it: no advance, an alert, the next round retries). */
  limit: number;
  then: LimitAction;
}

/** A validated, normalised check: durations in ms, every default filled in. */
export interface AnalysisCheck {
  name: string;
  metric?: AnalysisMetric;
  query?: string;
  windowMs: number;
  /** Absent: no floor (the provider may still answer "no data" for an empty window). */
  minRequests?: number;
  /**
   * Stable is measured too, over the same window: set by ratio/difference bounds and by tests. With `offsetMs`,
   * stable's window ends that long before the canary's (a day-over-day baseline: the same hour yesterday).
   */
  compare?: { to: 'stable'; offsetMs?: number };
  /** Must hold for the stage to advance. Absent: success is "not crossing the abort band". */
  success?: Band;
  abort?: AbortRule;
  test?: MannWhitneyTest;
  onNoData: NoDataRule;
  onQueryError: QueryErrorRule;
  /** Written in the short form `{ name, metric|query, max?, min? }`. */
  shortForm?: true;
  /** The stages (1-based) the check is measured and judged in; absent: every stage. */
  stages?: number[];
}

/**
 * The checks that apply in stage `stage` (1-based: the stage whose traffic the canary carries). A check limited to
 * other stages is neither measured nor judged there, and its streaks start afresh when it applies again.
 */
export function checksForStage(checks: readonly AnalysisCheck[], stage: number): AnalysisCheck[] {
  return checks.filter((c) => c.stages === undefined || c.stages.includes(stage));
}

/** What the plan around the checks supplies. */
export interface AnalysisCheckDefaults {
  /** The window of a check that names none, in ms: the plan's analysis window (max(interval, 30s) today). */
  windowMs: number;
  /** analysis.failureLimit: consecutive breaches after which a short-form check rolls back. */
  failureLimit: number;
  /** analysis.inconclusiveLimit: rounds without evidence (or with failing queries) that roll back. */
  inconclusiveLimit: number;
  /** How many stages the plan has, for checking a check's `stages` (absent: not checked against it). */
  stageCount?: number;
}

/** Defaults of the new form, where the plan does not decide. */
export const CHECK_DEFAULTS = {
  severity: 'high' as Severity,
  /** high: "3 consecutive failures", as Flagger's threshold and playbook 001. */
  highConsecutive: 3,
  recoverAfter: '10m',
  rollbackAfter: '30m',
  /** A breach that asks a person (then: approval) rolls back after this without an answer. */
  decideWithin: '1h',
  noDataThen: 'rollback' as LimitAction,
  queryErrorThen: 'rollback' as LimitAction,
  test: { effectSize: 0.33, alpha: 0.05, minSamples: 10, step: '30s' },
} as const;

// Short-form mapping (keeps what plans mean today, where a check is `{ name, metric|query, max?, min? }`):
//   success       = { value: { min, max } }                 a value inside [min, max] passes
//   abort         = { band: { value: { min, max } }, severity: high, persist: failureLimit rounds in a row }
//   onNoData      = { action: hold, limit: inconclusiveLimit, then: rollback }
//   onQueryError  = { limit: inconclusiveLimit, then: rollback }   (today a failed query counts as no data)
//   windowMs      = the plan's analysis window; no minRequests (providers answer "no data" for empty windows)
// One difference remains: the new judge counts per check, where today's counts per analysis round (a round
// with check A failing then one with only B failing is 2 failures in a row today, 1 and 1 now), and a failed
// query and a "no data" answer are two streaks, not one.

export type AnalysisChecksValidation =
  { ok: true; checks: AnalysisCheck[] } | { ok: false; problems: InputProblem[] };

// ---------------------------------------------------------------------------------------------------------------
// Structure (zod): strict objects and primitive types with our messages; the rules are checked by hand below.

const METRIC_LIST = ANALYSIS_METRICS.join(', ');
const num = typeError('a number');
const whole = typeError('a whole number');

const boundSchema = z.strictObject(
  { max: z.number(num).optional(), min: z.number(num).optional() },
  typeError('an object with max and/or min'),
);

const bandShape = {
  max: z.number(num).optional(),
  min: z.number(num).optional(),
  ratio: boundSchema.optional(),
  difference: boundSchema.optional(),
};

const successSchema = z.strictObject(
  bandShape,
  typeError('an object with max, min, ratio and/or difference'),
);

const abortSchema = z.strictObject(
  {
    ...bandShape,
    severity: z.string(typeError('critical, high, medium or low')).optional(),
    for: byHand<string>().optional(),
    consecutive: z.number(whole).optional(),
    recoverAfter: byHand<string>().optional(),
    rollbackAfter: byHand<string>().optional(),
    then: z.string(typeError('rollback or approval')).optional(),
    decideWithin: byHand<string>().optional(),
  },
  typeError('an object with thresholds (max, min, ratio, difference), severity and for or consecutive'),
);

const compareSchema = z.strictObject(
  {
    to: z.string(typeError('stable', 'is required: stable')),
    ratio: boundSchema.optional(),
    difference: boundSchema.optional(),
    offset: byHand<string>().optional(),
  },
  typeError('an object like { to: stable, ratio: { max: 1.2 } }'),
);

const testSchema = z.strictObject(
  {
    type: z.string(typeError('mann-whitney', 'is required: mann-whitney')),
    effectSize: z.number(num).optional(),
    alpha: z.number(num).optional(),
    direction: z.string(typeError('increase, decrease or either')).optional(),
    minSamples: z.number(whole).optional(),
    step: byHand<string>().optional(),
  },
  typeError('an object like { type: mann-whitney, effectSize: 0.33 }'),
);

const noDataSchema = z.strictObject({
  action: z.string(typeError('hold, fail or ignore')).optional(),
  limit: z.number(whole).optional(),
  then: z.string(typeError('rollback, hold or approval')).optional(),
});

const queryErrorSchema = z.strictObject({
  limit: z.number(whole).optional(),
  then: z.string(typeError('rollback, hold or approval')).optional(),
});

const checkSchema = z.strictObject(
  {
    name: z.string(typeError('a string', 'is required: every check needs a unique name')),
    metric: z.string(typeError(`a metric name (${METRIC_LIST})`)).optional(),
    query: z.string(typeError('a query string')).optional(),
    window: byHand<string>().optional(),
    minRequests: z.number(whole).optional(),
    max: z.number(num).optional(),
    min: z.number(num).optional(),
    compare: compareSchema.optional(),
    success: successSchema.optional(),
    abort: abortSchema.optional(),
    test: testSchema.optional(),
    onNoData: byHand<unknown>().optional(),
    onQueryError: byHand<unknown>().optional(),
    stages: byHand<unknown>().optional(),
  },
  typeError('an object with name, metric or query, and thresholds'),
);

/** Known fields per object for "did you mean", by path pattern under `base` (e.g. `analysis.checks.*`). */
export function analysisCheckKnownFields(base = 'analysis.checks.*'): Record<string, readonly string[]> {
  const bound = Object.keys(boundSchema.shape);
  return {
    [base]: Object.keys(checkSchema.shape),
    [`${base}.compare`]: Object.keys(compareSchema.shape),
    [`${base}.compare.ratio`]: bound,
    [`${base}.compare.difference`]: bound,
    [`${base}.success`]: Object.keys(successSchema.shape),
    [`${base}.success.ratio`]: bound,
    [`${base}.success.difference`]: bound,
    [`${base}.abort`]: Object.keys(abortSchema.shape),
    [`${base}.abort.ratio`]: bound,
    [`${base}.abort.difference`]: bound,
    [`${base}.test`]: Object.keys(testSchema.shape),
    [`${base}.onNoData`]: Object.keys(noDataSchema.shape),
    [`${base}.onQueryError`]: Object.keys(queryErrorSchema.shape),
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Validation

/**
 * Validates checks as written and normalises them. Lists every problem, with paths under `prefix`
 * (`analysis.checks[i]...` by default), in document order.
 */
export function validateAnalysisChecks(
  specs: unknown[],
  defaults: AnalysisCheckDefaults,
  prefix: Segment[] = ['analysis', 'checks'],
): AnalysisChecksValidation {
  const base = prefix.map((s) => (typeof s === 'number' ? '*' : s)).join('.');
  const c = new Collector(analysisCheckKnownFields(base === '' ? '*' : `${base}.*`));
  const checks = collectAnalysisChecks(c, specs, defaults, prefix);
  if (c.problems.length > 0) {
    // sortedProblems ranks paths from the root: rebuild the document around the list.
    const root = prefix.reduceRight<unknown>(
      (inner, s) => (typeof s === 'number' ? [inner] : { [s]: inner }),
      specs,
    );
    return { ok: false, problems: sortedProblems(root, c.problems) };
  }
  return { ok: true, checks };
}

/** The same, into a caller's Collector (validatePlan, once the workflow judges by these rules). */
export function collectAnalysisChecks(
  c: Collector,
  specs: unknown[],
  defaults: AnalysisCheckDefaults,
  prefix: Segment[] = ['analysis', 'checks'],
): AnalysisCheck[] {
  const seen = new Map<string, number>();
  const out: AnalysisCheck[] = [];
  specs.forEach((spec, index) => {
    const path = [...prefix, index];
    if (!isObject(spec)) {
      c.add(path, `must be an object with name, metric or query, and thresholds, got ${describe(spec)}`);
      return;
    }
    c.structure(checkSchema, spec, path);
    if (typeof spec.name === 'string') {
      const first = seen.get(spec.name);
      if (spec.name.trim() === '') c.add([...path, 'name'], 'must not be empty');
      else if (first !== undefined) {
        c.add(
          [...path, 'name'],
          `duplicate check name "${spec.name}" (also used by ${formatIndexPath(prefix, first)})`,
        );
      } else seen.set(spec.name, index);
    }
    const check = checkOne(c, spec, path, defaults);
    if (check) out.push(check);
  });
  return out;
}

function formatIndexPath(prefix: Segment[], index: number): string {
  return [...prefix, index].reduce<string>(
    (out, s) => (typeof s === 'number' ? `${out}[${s}]` : out === '' ? s : `${out}.${s}`),
    '',
  );
}

/** Validates one check that is an object; returns it when its own fields were usable. */
function checkOne(
  c: Collector,
  spec: Obj,
  path: Segment[],
  defaults: AnalysisCheckDefaults,
): AnalysisCheck | undefined {
  const before = c.problems.length;
  const { metric, query, max, min } = spec;

  // Where the value comes from.
  if (metric === undefined && query === undefined) {
    c.add(path, `needs a metric (${METRIC_LIST}) or a query`);
  } else if (metric !== undefined && query !== undefined) {
    c.add(path, 'has both metric and query; keep exactly one');
  }
  if (typeof metric === 'string' && !(ANALYSIS_METRICS as readonly string[]).includes(metric)) {
    c.add([...path, 'metric'], `unknown metric ${describe(metric)}; use ${METRIC_LIST}, or a query`);
  }
  if (typeof query === 'string') checkQuery(c, query, [...path, 'query']);

  let windowMs =
    spec.window === undefined ? defaults.windowMs : checkDuration(c, spec.window, [...path, 'window']);
  const minRequests = wholeAtLeast(c, spec.minRequests, [...path, 'minRequests'], 0);

  const shortForm = max !== undefined || min !== undefined;
  const isTest = spec.test !== undefined;
  let check: Omit<AnalysisCheck, 'onNoData' | 'onQueryError'>;
  if (shortForm) {
    for (const field of ['success', 'abort', 'compare', 'test'] as const) {
      if (spec[field] !== undefined) {
        c.add(
          [...path, field],
          'cannot be combined with the short form max/min (which sets success and abort at the same threshold); ' +
            'write the thresholds in success and abort instead',
        );
      }
    }
    const bound = boundOf(c, { max, min }, path);
    check = {
      name: spec.name as string,
      windowMs: windowMs ?? 0,
      success: { value: bound },
      abort: {
        band: { value: bound },
        severity: 'high',
        persist: { kind: 'consecutive', rounds: defaults.failureLimit },
      },
      shortForm: true,
    };
  } else {
    const compareBand = isObject(spec.compare) ? checkCompare(c, spec.compare, [...path, 'compare']) : {};
    const offsetMs =
      isObject(spec.compare) && spec.compare.offset !== undefined
        ? checkDuration(c, spec.compare.offset, [...path, 'compare', 'offset'])
        : undefined;
    let success = isObject(spec.success) ? bandOf(c, spec.success, [...path, 'success']) : undefined;
    if (compareBand.ratio || compareBand.difference) {
      if (success?.ratio && compareBand.ratio) {
        c.add([...path, 'compare', 'ratio'], 'is also set in success.ratio; say it once');
      }
      if (success?.difference && compareBand.difference) {
        c.add([...path, 'compare', 'difference'], 'is also set in success.difference; say it once');
      }
      success = { ...compareBand, ...success };
    }
    const abort = isObject(spec.abort) ? checkAbort(c, spec.abort, [...path, 'abort'], isTest) : undefined;
    const test = isObject(spec.test)
      ? checkTest(c, spec.test, [...path, 'test'], metric, spec.window === undefined ? undefined : windowMs)
      : undefined;
    // A test needs a series: without a window of its own it reads at least minSamples points.
    if (test && spec.window === undefined && windowMs !== undefined) {
      windowMs = Math.max(windowMs, (test.minSamples - 1) * test.stepMs);
    }

    if (isTest) {
      if (spec.success !== undefined) {
        c.add(
          [...path, 'success'],
          'a test check passes on the test itself (pass, marginal or fail); put thresholds in a check of their own',
        );
      }
    } else if (!isObject(spec.success) && !isObject(spec.abort) && !isObject(spec.compare)) {
      c.add(path, 'needs a threshold: success, abort (or the short form max/min), or a test');
    }
    const comparing =
      isTest ||
      spec.compare !== undefined ||
      [success, abort?.band].some((b) => b?.ratio !== undefined || b?.difference !== undefined);
    if (
      spec.compare !== undefined &&
      !isTest &&
      ![success, abort?.band].some((b) => b?.ratio !== undefined || b?.difference !== undefined)
    ) {
      c.add(
        [...path, 'compare'],
        'nothing compares with stable: add ratio or difference here, in success or in abort',
      );
    }
    if (comparing && typeof query === 'string' && !/\{\{\s*(side|version|selector)\s*\}\}/.test(query)) {
      c.add(
        [...path, 'query'],
        'is compared with stable, so it must tell the sides apart with {{side}}, {{version}} or {{selector}}',
      );
    }
    if (success && abort?.band) checkBandsAgree(c, success, abort.band, path);

    const abortRule =
      abort ??
      (isTest
        ? {
            severity: CHECK_DEFAULTS.severity,
            persist: { kind: 'consecutive' as const, rounds: CHECK_DEFAULTS.highConsecutive },
          }
        : undefined);
    check = {
      name: spec.name as string,
      windowMs: windowMs ?? 0,
      ...(comparing
        ? { compare: { to: 'stable' as const, ...(offsetMs !== undefined ? { offsetMs } : {}) } }
        : {}),
      ...(success ? { success } : {}),
      ...(abortRule ? { abort: abortRule } : {}),
      ...(test ? { test } : {}),
    };
  }

  const onNoData = checkNoData(c, spec.onNoData, [...path, 'onNoData'], defaults);
  if (onNoData.action === 'fail' && !check.abort) {
    c.add(
      [...path, 'onNoData'],
      'fail treats missing data as crossing the abort band, but this check has no abort band',
    );
  }
  const onQueryError = checkQueryError(c, spec.onQueryError, [...path, 'onQueryError'], defaults, shortForm);
  const stages = checkStageList(c, spec.stages, [...path, 'stages'], defaults.stageCount);
  if (c.problems.length > before) return undefined;

  const out: AnalysisCheck = { ...check, onNoData, onQueryError };
  if (stages) out.stages = stages;
  if (typeof metric === 'string') out.metric = metric as AnalysisMetric;
  if (typeof query === 'string') out.query = query;
  if (minRequests !== undefined) out.minRequests = minRequests;
  return reorder(out);
}

/** Fields in one order whatever the form (stable JSON, readable snapshots). */
function reorder(c: AnalysisCheck): AnalysisCheck {
  const out: AnalysisCheck = { name: c.name } as AnalysisCheck;
  if (c.metric !== undefined) out.metric = c.metric;
  if (c.query !== undefined) out.query = c.query;
  out.windowMs = c.windowMs;
  if (c.minRequests !== undefined) out.minRequests = c.minRequests;
  if (c.compare) out.compare = c.compare;
  if (c.success) out.success = c.success;
  if (c.abort) out.abort = c.abort;
  if (c.test) out.test = c.test;
  out.onNoData = c.onNoData;
  out.onQueryError = c.onQueryError;
  if (c.shortForm) out.shortForm = true;
  if (c.stages) out.stages = c.stages;
  return out;
}

/** `stages: [1, 2]`: distinct stage numbers of the plan, ascending in the result. */
function checkStageList(
  c: Collector,
  value: unknown,
  path: Segment[],
  stageCount: number | undefined,
): number[] | undefined {
  if (value === undefined) return undefined;
  const how = `a list of stage numbers, counted from 1 (e.g. [1, 2])`;
  if (!Array.isArray(value) || value.length === 0) {
    c.add(path, `must be ${how}, got ${Array.isArray(value) ? 'an empty list' : describe(value)}`);
    return undefined;
  }
  const out: number[] = [];
  value.forEach((n, i) => {
    if (typeof n !== 'number' || !Number.isInteger(n) || n < 1) {
      c.add([...path, i], `must be a stage number (a whole number from 1), got ${describe(n)}`);
    } else if (stageCount !== undefined && n > stageCount) {
      c.add(
        [...path, i],
        `the plan has ${stageCount} stage${stageCount === 1 ? '' : 's'}; there is no stage ${n}`,
      );
    } else if (out.includes(n)) {
      c.add([...path, i], `stage ${n} is listed twice`);
    } else out.push(n);
  });
  return out.sort((a, b) => a - b);
}

function checkQuery(c: Collector, query: string, path: Segment[]): void {
  if (query.trim() === '') {
    c.add(path, 'must not be empty');
    return;
  }
  const known = QUERY_PLACEHOLDERS as readonly string[];
  for (const match of query.matchAll(/\{\{\s*([^{}]*?)\s*\}\}/g)) {
    if (!known.includes(match[1])) {
      c.add(path, `unknown placeholder {{${match[1]}}}; use ${known.map((p) => `{{${p}}}`).join(' ')}`);
    }
  }
  // What is left after the placeholders must not open or close one: `{{app}` or `{{ app` is a typo.
  const rest = query.replace(/\{\{\s*[^{}]*?\s*\}\}/g, '');
  if (rest.includes('{{') || rest.includes('}}')) {
    c.add(path, 'has an unclosed placeholder: write placeholders as {{name}}');
  }
}

function wholeAtLeast(c: Collector, value: unknown, path: Segment[], least: number): number | undefined {
  if (typeof value !== 'number' || !Number.isFinite(value)) return undefined;
  if (!Number.isInteger(value) || value < least) {
    c.add(path, `must be a whole number of at least ${least}, got ${value}`);
    return undefined;
  }
  return value;
}

/** A {max, min} pair whose types zod has checked; undefined when neither is a number. */
function boundOf(c: Collector, value: Obj, path: Segment[], what = ''): Bound | undefined {
  const out: Bound = {};
  if (typeof value.max === 'number') out.max = value.max;
  if (typeof value.min === 'number') out.min = value.min;
  if (out.max === undefined && out.min === undefined) return undefined;
  if (out.max !== undefined && out.min !== undefined && out.min > out.max) {
    c.add(path, `${what}min (${out.min}) is greater than ${what}max (${out.max}), so no value could pass`);
  }
  return out;
}

function ratioBoundOf(c: Collector, value: unknown, path: Segment[]): Bound | undefined {
  if (!isObject(value)) return undefined;
  const bound = boundOf(c, value, path);
  if (bound === undefined) {
    c.add(path, 'must set max and/or min');
    return undefined;
  }
  for (const key of ['max', 'min'] as const) {
    const v = bound[key];
    if (v !== undefined && v <= 0) {
      c.add([...path, key], `must be more than 0 (canary / stable), got ${v}`);
    }
  }
  return bound;
}

function differenceBoundOf(c: Collector, value: unknown, path: Segment[]): Bound | undefined {
  if (!isObject(value)) return undefined;
  const bound = boundOf(c, value, path);
  if (bound === undefined) c.add(path, 'must set max and/or min');
  return bound;
}

/** A success band or the thresholds of an abort band. */
function bandOf(c: Collector, value: Obj, path: Segment[]): Band | undefined {
  const band: Band = {};
  const own = boundOf(c, value, path);
  if (own) band.value = own;
  const ratio = ratioBoundOf(c, value.ratio, [...path, 'ratio']);
  if (ratio) band.ratio = ratio;
  const difference = differenceBoundOf(c, value.difference, [...path, 'difference']);
  if (difference) band.difference = difference;
  return band.value || band.ratio || band.difference ? band : undefined;
}

function checkCompare(c: Collector, value: Obj, path: Segment[]): Band {
  if (typeof value.to === 'string' && value.to !== 'stable') {
    c.add([...path, 'to'], `must be stable (the only baseline a rollout has), got ${describe(value.to)}`);
  }
  const band: Band = {};
  const ratio = ratioBoundOf(c, value.ratio, [...path, 'ratio']);
  if (ratio) band.ratio = ratio;
  const difference = differenceBoundOf(c, value.difference, [...path, 'difference']);
  if (difference) band.difference = difference;
  return band;
}

function checkAbort(c: Collector, value: Obj, path: Segment[], isTest: boolean): AbortRule {
  const band = bandOf(c, value, path);
  if (isTest && band) {
    c.add(
      path,
      'a test check breaches when the test fails; its abort takes severity and for/consecutive, not thresholds',
    );
  } else if (!isTest && !band) {
    c.add(path, 'needs a threshold: max, min, ratio or difference');
  }
  // An unknown severity is reported; the rest is checked as for the default, so its problems show too.
  let sev: Severity = CHECK_DEFAULTS.severity;
  if (typeof value.severity === 'string') {
    if ((SEVERITIES as readonly string[]).includes(value.severity)) sev = value.severity as Severity;
    else
      c.add([...path, 'severity'], `must be critical, high, medium or low, got ${describe(value.severity)}`);
  }

  if (value.for !== undefined && value.consecutive !== undefined) {
    c.add(path, 'has both for and consecutive; keep one (a duration, or a number of rounds in a row)');
  }
  if (sev === 'critical') {
    for (const field of ['for', 'consecutive'] as const) {
      if (value[field] !== undefined) {
        c.add(
          [...path, field],
          'does not apply to severity critical, which rolls back at once; use severity high for a breach that must last',
        );
      }
    }
  }
  if (sev !== 'medium') {
    for (const field of ['recoverAfter', 'rollbackAfter'] as const) {
      if (value[field] !== undefined) {
        c.add([...path, field], 'only applies to severity medium (step back, then recover or roll back)');
      }
    }
  }
  const forMs = value.for === undefined ? undefined : checkDuration(c, value.for, [...path, 'for']);
  const rounds = wholeAtLeast(c, value.consecutive, [...path, 'consecutive'], 1);
  let persist: Persistence;
  if (sev === 'critical') persist = { kind: 'consecutive', rounds: 1 };
  else if (forMs !== undefined) persist = { kind: 'for', ms: forMs };
  else
    persist = {
      kind: 'consecutive',
      rounds: rounds ?? (sev === 'high' ? CHECK_DEFAULTS.highConsecutive : 1),
    };

  const rule: AbortRule = { severity: sev, persist };
  if (band && !isTest) rule.band = band;
  if (sev === 'medium') {
    const recoverAfterMs = checkDuration(c, value.recoverAfter ?? CHECK_DEFAULTS.recoverAfter, [
      ...path,
      'recoverAfter',
    ]);
    const rollbackAfterMs = checkDuration(c, value.rollbackAfter ?? CHECK_DEFAULTS.rollbackAfter, [
      ...path,
      'rollbackAfter',
    ]);
    rule.stepBack = { recoverAfterMs: recoverAfterMs ?? 0, rollbackAfterMs: rollbackAfterMs ?? 0 };
  }
  const ask = checkAsk(c, value, path, sev);
  if (ask) rule.ask = ask;
  return rule;
}

/** `then` and `decideWithin` of an abort band: whether a breach rolls back or asks a person first. */
function checkAsk(c: Collector, value: Obj, path: Segment[], sev: Severity): AbortRule['ask'] {
  const then = value.then;
  if (then !== undefined && then !== 'rollback' && then !== 'approval') {
    c.add(
      [...path, 'then'],
      `must be rollback (the default) or approval (a person decides), got ${describe(then)}`,
    );
    return undefined;
  }
  if (then === 'approval' && sev !== 'critical' && sev !== 'high') {
    c.add(
      [...path, 'then'],
      `approval only applies to severity critical or high, whose breach rolls back; severity ${sev} ` +
        (sev === 'medium' ? 'steps traffic back instead' : 'only alerts'),
    );
    return undefined;
  }
  if (value.decideWithin !== undefined && then !== 'approval') {
    c.add(
      [...path, 'decideWithin'],
      'only applies with then: approval (how long a person has to decide before the breach rolls back)',
    );
  }
  if (then !== 'approval') return undefined;
  const ms = checkDuration(c, value.decideWithin ?? CHECK_DEFAULTS.decideWithin, [...path, 'decideWithin']);
  return ms === undefined ? undefined : { decideWithinMs: ms };
}

/** Every bound of the abort band must lie outside the success band, or a value could pass and abort at once. */
function checkBandsAgree(c: Collector, success: Band, abort: Band, path: Segment[]): void {
  for (const dim of ['value', 'ratio', 'difference'] as const) {
    const s = success[dim];
    const a = abort[dim];
    if (!s || !a) continue;
    const label = dim === 'value' ? '' : `${dim}.`;
    if (s.max !== undefined && a.max !== undefined && a.max < s.max) {
      c.add(
        [...path, 'abort', ...(dim === 'value' ? [] : [dim]), 'max'],
        `(${a.max}) is below success.${label}max (${s.max}): a value between them would pass and abort at once`,
      );
    }
    if (s.min !== undefined && a.min !== undefined && a.min > s.min) {
      c.add(
        [...path, 'abort', ...(dim === 'value' ? [] : [dim]), 'min'],
        `(${a.min}) is above success.${label}min (${s.min}): a value between them would pass and abort at once`,
      );
    }
  }
}

function checkTest(
  c: Collector,
  value: Obj,
  path: Segment[],
  metric: unknown,
  windowMs: number | undefined,
): MannWhitneyTest | undefined {
  const before = c.problems.length;
  if (typeof value.type === 'string' && value.type !== 'mann-whitney') {
    c.add([...path, 'type'], `unknown test ${describe(value.type)}; use mann-whitney`);
  }
  const d = CHECK_DEFAULTS.test;
  const effectSize = typeof value.effectSize === 'number' ? value.effectSize : d.effectSize;
  if (!(effectSize > 0 && effectSize <= 1)) {
    c.add([...path, 'effectSize'], `must be more than 0 and at most 1 (Cliff's delta), got ${effectSize}`);
  }
  const alpha = typeof value.alpha === 'number' ? value.alpha : d.alpha;
  if (!(alpha > 0 && alpha <= 0.5)) {
    c.add([...path, 'alpha'], `must be more than 0 and at most 0.5 (a significance level), got ${alpha}`);
  }
  const direction = value.direction ?? defaultDirection(metric);
  if (typeof direction === 'string' && !(DIRECTIONS as readonly string[]).includes(direction)) {
    c.add([...path, 'direction'], `must be increase, decrease or either, got ${describe(direction)}`);
  }
  const minSamples = wholeAtLeast(c, value.minSamples, [...path, 'minSamples'], 3) ?? d.minSamples;
  const stepMs = checkDuration(c, value.step ?? d.step, [...path, 'step']);
  if (stepMs !== undefined && windowMs !== undefined && Math.floor(windowMs / stepMs) + 1 < minSamples) {
    c.add(
      [...path, 'step'],
      `gives at most ${Math.floor(windowMs / stepMs) + 1} points per side over the check's window, ` +
        `fewer than minSamples (${minSamples}): shorten the step or widen the window`,
    );
  }
  if (stepMs !== undefined && windowMs !== undefined && windowMs / stepMs > MAX_RANGE_POINTS) {
    c.add(
      [...path, 'step'],
      `gives ${Math.floor(windowMs / stepMs) + 1} points per side over the check's window; a range query ` +
        `answers at most ${MAX_RANGE_POINTS} (Prometheus' limit): lengthen the step`,
    );
  }
  if (c.problems.length > before || stepMs === undefined) return undefined;
  return { type: 'mann-whitney', effectSize, alpha, direction: direction as Direction, minSamples, stepMs };
}

/** Prometheus refuses range queries of more than 11,000 points per series. */
const MAX_RANGE_POINTS = 11_000;

/** Which way a named metric gets worse; custom queries and traffic metrics: either way. */
export function defaultDirection(metric: unknown): Direction {
  if (metric === 'request-success-rate') return 'decrease';
  if (
    metric === 'error-rate' ||
    metric === '5xx-rate' ||
    (typeof metric === 'string' && metric.startsWith('latency-'))
  )
    return 'increase';
  return 'either';
}

function checkLimitAction(c: Collector, value: unknown, path: Segment[]): LimitAction | undefined {
  if (typeof value !== 'string') return undefined;
  if (!(LIMIT_ACTIONS as readonly string[]).includes(value)) {
    c.add(path, `must be rollback, hold or approval, got ${describe(value)}`);
    return undefined;
  }
  return value as LimitAction;
}

function checkNoData(
  c: Collector,
  value: unknown,
  path: Segment[],
  defaults: AnalysisCheckDefaults,
): NoDataRule {
  const rule: NoDataRule = {
    action: 'hold',
    limit: defaults.inconclusiveLimit,
    then: CHECK_DEFAULTS.noDataThen,
  };
  if (value === undefined) return rule;
  if (typeof value === 'string') {
    if (!(NO_DATA_ACTIONS as readonly string[]).includes(value)) {
      c.add(
        path,
        `must be hold, fail or ignore (or { action: hold, limit: 3, then: rollback }), got ${describe(value)}`,
      );
    } else rule.action = value as NoDataAction;
    return rule;
  }
  if (!isObject(value)) {
    c.add(
      path,
      `must be hold, fail, ignore or { action: hold, limit: 3, then: rollback }, got ${describe(value)}`,
    );
    return rule;
  }
  c.structure(noDataSchema, value, path);
  const action = value.action ?? 'hold';
  if (typeof action === 'string') {
    if (!(NO_DATA_ACTIONS as readonly string[]).includes(action)) {
      c.add([...path, 'action'], `must be hold, fail or ignore, got ${describe(action)}`);
    } else rule.action = action as NoDataAction;
  }
  if (rule.action !== 'hold') {
    for (const field of ['limit', 'then'] as const) {
      if (value[field] !== undefined) {
        c.add([...path, field], `only applies to action hold (${rule.action} never waits for data)`);
      }
    }
  }
  rule.limit = wholeAtLeast(c, value.limit, [...path, 'limit'], 1) ?? rule.limit;
  rule.then = checkLimitAction(c, value.then, [...path, 'then']) ?? rule.then;
  return rule;
}

function checkQueryError(
  c: Collector,
  value: unknown,
  path: Segment[],
  defaults: AnalysisCheckDefaults,
  shortForm: boolean,
): QueryErrorRule {
  // An outage is not evidence: by default the full form holds (and alerts) rather than rolling a healthy
  // rollout back because Prometheus restarted. The short form keeps what it always meant.
  const rule: QueryErrorRule = {
    limit: defaults.inconclusiveLimit,
    then: shortForm ? CHECK_DEFAULTS.queryErrorThen : 'hold',
  };
  if (value === undefined) return rule;
  if (typeof value === 'string') {
    rule.then = checkLimitAction(c, value, path) ?? rule.then;
    return rule;
  }
  if (!isObject(value)) {
    c.add(path, `must be rollback, hold, approval or { limit: 3, then: approval }, got ${describe(value)}`);
    return rule;
  }
  c.structure(queryErrorSchema, value, path);
  rule.limit = wholeAtLeast(c, value.limit, [...path, 'limit'], 1) ?? rule.limit;
  rule.then = checkLimitAction(c, value.then, [...path, 'then']) ?? rule.then;
  return rule;
}
