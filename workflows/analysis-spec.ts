// Analysis checks as written in a plan (issue 6) and their validation into the normalised AnalysisCheck the
// judge (judge-v2.ts) reads. Pure and deterministic: imported by the workflow sandbox and the client alike.
// The full form is what validatePlan reads for a plan that uses any of its fields (plan.ts, usesFullForm).
// The normalised model lives in analysis-model.ts (re-exported here), the single fields' validation in
// analysis-fields.ts; this file checks a check as a whole.
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
//     web: { url: 'https://...', method: GET, headers: { authorization: 'Bearer ${secret:TOKEN}' },
//            body: .., jsonPath: $.errors.rate, timeout: 10s }
//                                    # instead of metric/query: one number (or boolean: 1/0) from an HTTP answer;
//                                    # no window, minRequests, compare, test, ratio or difference (no stable side)
//     dryRun: true                   # measured, judged and shown; never advances, holds, steps back or rolls back
//
//   Short form (plans before issue 6):   - { name, metric | query, max?, min? }
//   (window, minRequests, onNoData and onQueryError may join it; success, abort, compare and test may not)
//
// A band holds when every bound in it holds (max: value <= max; min: value >= min); an abort band is crossed
// when any of its bounds is (value > max, value < min). Between success and abort the stage holds. Without an
// explicit success band, success is "not crossing abort"; without an abort band the check can only hold.
// `ratio` is canary / stable, `difference` is canary - stable: either one measures stable over the same window.
// A `test` check compares the canary's series with stable's (judge: pass, marginal or fail); its abort may
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
import {
  ANALYSIS_METRICS,
  CHECK_DEFAULTS,
  type AnalysisCheck,
  type AnalysisCheckDefaults,
  type AbortRule,
  type AnalysisMetric,
  type Band,
} from './analysis-model';
import {
  bandOf,
  boundOf,
  checkAbort,
  checkBandsAgree,
  checkCompare,
  checkNoData,
  checkQuery,
  checkQueryError,
  checkStageList,
  checkTest,
  NO_DATA_FIELDS,
  QUERY_ERROR_FIELDS,
  wholeAtLeast,
} from './analysis-fields';
import { WEB_FIELDS, checkWeb, checkWebFits } from './analysis-web';
import { JOB_CHECK_FIELDS, checkJobCheck, checkJobFits, withJobDefaults } from './analysis-job';

export * from './analysis-model';

// Short-form mapping (keeps what plans mean today, where a check is `{ name, metric|query, max?, min? }`):
//   success       = { value: { min, max } }                 a value inside [min, max] passes
//   abort         = { band: { value: { min, max } }, severity: high, persist: failureLimit rounds in a row }
//   onNoData      = { action: hold, limit: inconclusiveLimit, then: rollback }
//   onQueryError  = { limit: inconclusiveLimit, then: rollback }   (today a failed query counts as no data)
//   windowMs      = the plan's analysis window; no minRequests (providers answer "no data" for empty windows)
// One difference remains: the new judge counts per check, where the original judge (legacy-judge.ts) counts per
// analysis round (a round with check A failing then one with only B failing is 2 failures in a row there, 1 and
// 1 here), and a failed query and a "no data" answer are two streaks, not one. toFullForm (judge-short-form.ts)
// closes that gap for plans written wholly in the short form: it puts their checks in one roundGroup.

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
    web: byHand<unknown>().optional(),
    job: byHand<unknown>().optional(),
    dryRun: z.boolean(typeError('true or false')).optional(),
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
    [`${base}.onNoData`]: NO_DATA_FIELDS,
    [`${base}.onQueryError`]: QUERY_ERROR_FIELDS,
    [`${base}.web`]: WEB_FIELDS,
    [`${base}.job`]: JOB_CHECK_FIELDS,
    [`${base}.job.configMapRef`]: ['name', 'key'],
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
  written: Obj,
  path: Segment[],
  defaults: AnalysisCheckDefaults,
): AnalysisCheck | undefined {
  const before = c.problems.length;
  const spec = withJobDefaults(written);
  const { metric, query, max, min } = spec;
  checkSource(c, spec, path);
  const web = spec.web === undefined ? undefined : checkWeb(c, spec.web, [...path, 'web'], String(spec.name));
  if (spec.web !== undefined) checkWebFits(c, spec, path);
  const job =
    spec.job === undefined ? undefined : checkJobCheck(c, spec.job, [...path, 'job'], String(spec.name));
  if (spec.job !== undefined) checkJobFits(c, spec, path);
  const windowMs =
    spec.window === undefined ? defaults.windowMs : checkDuration(c, spec.window, [...path, 'window']);
  const minRequests = wholeAtLeast(c, spec.minRequests, [...path, 'minRequests'], 0);

  const shortForm = max !== undefined || min !== undefined;
  const check = shortForm
    ? shortFormOf(c, spec, path, windowMs, defaults)
    : fullFormOf(c, spec, path, windowMs);

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
  if (web) out.web = web;
  if (job) out.job = job;
  if (minRequests !== undefined) out.minRequests = minRequests;
  if (spec.dryRun === true) out.dryRun = true;
  return reorder(out);
}

type CheckForm = Omit<AnalysisCheck, 'onNoData' | 'onQueryError'>;

/** Where the value comes from: exactly one of a known metric, a query, a web endpoint and a Job. */
function checkSource(c: Collector, spec: Obj, path: Segment[]): void {
  const { metric, query } = spec;
  const sources = (['metric', 'query', 'web', 'job'] as const).filter((k) => spec[k] !== undefined);
  if (sources.length === 0) {
    c.add(path, `needs a metric (${METRIC_LIST}) or a query`);
  } else if (sources.length > 1) {
    c.add(path, `has both ${sources.join(' and ')}; keep exactly one`);
  }
  if (typeof metric === 'string' && !(ANALYSIS_METRICS as readonly string[]).includes(metric)) {
    c.add([...path, 'metric'], `unknown metric ${describe(metric)}; use ${METRIC_LIST}, or a query`);
  }
  if (typeof query === 'string') checkQuery(c, query, [...path, 'query']);
}

/** `{ name, metric|query, max?, min? }`: one threshold for success and abort (see the mapping above). */
function shortFormOf(
  c: Collector,
  spec: Obj,
  path: Segment[],
  windowMs: number | undefined,
  defaults: AnalysisCheckDefaults,
): CheckForm {
  for (const field of ['success', 'abort', 'compare', 'test'] as const) {
    if (spec[field] !== undefined) {
      c.add(
        [...path, field],
        'cannot be combined with the short form max/min (which sets success and abort at the same threshold); ' +
          'write the thresholds in success and abort instead',
      );
    }
  }
  const bound = boundOf(c, { max: spec.max, min: spec.min }, path);
  return {
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
}

/** Bands, a baseline, a severity, a test. */
function fullFormOf(c: Collector, spec: Obj, path: Segment[], windowMs: number | undefined): CheckForm {
  const isTest = spec.test !== undefined;
  const { success, offsetMs } = successOf(c, spec, path);
  const abort = isObject(spec.abort) ? checkAbort(c, spec.abort, [...path, 'abort'], isTest) : undefined;
  const test = isObject(spec.test)
    ? checkTest(
        c,
        spec.test,
        [...path, 'test'],
        spec.metric,
        spec.window === undefined ? undefined : windowMs,
      )
    : undefined;
  // A test needs a series: without a window of its own it reads at least minSamples points.
  if (test && spec.window === undefined && windowMs !== undefined) {
    windowMs = Math.max(windowMs, (test.minSamples - 1) * test.stepMs);
  }
  const comparing = checkThresholds(c, spec, path, success, abort);

  const abortRule =
    abort ??
    (isTest
      ? {
          severity: CHECK_DEFAULTS.severity,
          persist: { kind: 'consecutive' as const, rounds: CHECK_DEFAULTS.highConsecutive },
        }
      : undefined);
  return {
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

/** The success band, with compare's ratio and difference joined to it; and compare's offset. */
function successOf(c: Collector, spec: Obj, path: Segment[]): { success?: Band; offsetMs?: number } {
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
  return { ...(success ? { success } : {}), ...(offsetMs !== undefined ? { offsetMs } : {}) };
}

/** The check has thresholds that fit together; returns whether it compares with stable. */
function checkThresholds(
  c: Collector,
  spec: Obj,
  path: Segment[],
  success: Band | undefined,
  abort: AbortRule | undefined,
): boolean {
  const isTest = spec.test !== undefined;
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
  const relative = [success, abort?.band].some((b) => b?.ratio !== undefined || b?.difference !== undefined);
  const comparing = isTest || spec.compare !== undefined || relative;
  if (spec.compare !== undefined && !isTest && !relative) {
    c.add(
      [...path, 'compare'],
      'nothing compares with stable: add ratio or difference here, in success or in abort',
    );
  }
  const query = spec.query;
  if (comparing && typeof query === 'string' && !/\{\{\s*(side|version|selector)\s*\}\}/.test(query)) {
    c.add(
      [...path, 'query'],
      'is compared with stable, so it must tell the sides apart with {{side}}, {{version}} or {{selector}}',
    );
  }
  if (success && abort?.band) checkBandsAgree(c, success, abort.band, path);
  return comparing;
}

/** Fields in one order whatever the form (stable JSON, readable snapshots). */
function reorder(c: AnalysisCheck): AnalysisCheck {
  const out: AnalysisCheck = { name: c.name } as AnalysisCheck;
  if (c.metric !== undefined) out.metric = c.metric;
  if (c.query !== undefined) out.query = c.query;
  if (c.web !== undefined) out.web = c.web;
  if (c.job !== undefined) out.job = c.job;
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
  if (c.dryRun) out.dryRun = true;
  return out;
}
