// Validation of the single fields of an analysis check (analysis-spec.ts checks the check as a whole): bands and
// their bounds, the abort rule and its severity, a test, missing evidence, failed queries, stages and queries.
// Each adds its problems to the caller's Collector, at the field's path, and returns what it could read.
import { z } from 'zod';
import { Collector, checkDuration, describe, isObject, typeError, type Obj, type Segment } from './problems';
import {
  CHECK_DEFAULTS,
  DIRECTIONS,
  LIMIT_ACTIONS,
  NO_DATA_ACTIONS,
  QUERY_PLACEHOLDERS,
  SEVERITIES,
  defaultDirection,
  type AbortRule,
  type AnalysisCheckDefaults,
  type Band,
  type Bound,
  type LimitAction,
  type MannWhitneyTest,
  type NoDataAction,
  type NoDataRule,
  type Persistence,
  type QueryErrorRule,
  type Severity,
} from './analysis-model';
import type { Direction } from './mann-whitney';

const whole = typeError('a whole number');

// Module-private: a worker shares this module between rollouts, frozen, and a frozen zod schema cannot parse
// (worker/bundle.ts, SHARED_WORKFLOW_MODULES). What other modules need is the field names.
const noDataSchema = z.strictObject({
  action: z.string(typeError('hold, fail or ignore')).optional(),
  limit: z.number(whole).optional(),
  then: z.string(typeError('rollback, hold or approval')).optional(),
});

const queryErrorSchema = z.strictObject({
  limit: z.number(whole).optional(),
  then: z.string(typeError('rollback, hold or approval')).optional(),
});

/** The fields of `onNoData` and `onQueryError`, for "did you mean". */
export const NO_DATA_FIELDS: readonly string[] = Object.keys(noDataSchema.shape);
export const QUERY_ERROR_FIELDS: readonly string[] = Object.keys(queryErrorSchema.shape);

/** `stages: [1, 2]`: distinct stage numbers of the plan, ascending in the result. */
export function checkStageList(
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

export function checkQuery(c: Collector, query: string, path: Segment[]): void {
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

export function wholeAtLeast(
  c: Collector,
  value: unknown,
  path: Segment[],
  least: number,
): number | undefined {
  if (typeof value !== 'number' || !Number.isFinite(value)) return undefined;
  if (!Number.isInteger(value) || value < least) {
    c.add(path, `must be a whole number of at least ${least}, got ${value}`);
    return undefined;
  }
  return value;
}

/** A {max, min} pair whose types zod has checked; undefined when neither is a number. */
export function boundOf(c: Collector, value: Obj, path: Segment[], what = ''): Bound | undefined {
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
export function bandOf(c: Collector, value: Obj, path: Segment[]): Band | undefined {
  const band: Band = {};
  const own = boundOf(c, value, path);
  if (own) band.value = own;
  const ratio = ratioBoundOf(c, value.ratio, [...path, 'ratio']);
  if (ratio) band.ratio = ratio;
  const difference = differenceBoundOf(c, value.difference, [...path, 'difference']);
  if (difference) band.difference = difference;
  return band.value || band.ratio || band.difference ? band : undefined;
}

export function checkCompare(c: Collector, value: Obj, path: Segment[]): Band {
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

export function checkAbort(c: Collector, value: Obj, path: Segment[], isTest: boolean): AbortRule {
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

  const persist = checkPersistence(c, value, path, sev);
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

/** `for` or `consecutive`, and the fields that only some severities take. */
function checkPersistence(c: Collector, value: Obj, path: Segment[], sev: Severity): Persistence {
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
  if (sev === 'critical') return { kind: 'consecutive', rounds: 1 };
  if (forMs !== undefined) return { kind: 'for', ms: forMs };
  return { kind: 'consecutive', rounds: rounds ?? (sev === 'high' ? CHECK_DEFAULTS.highConsecutive : 1) };
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
export function checkBandsAgree(c: Collector, success: Band, abort: Band, path: Segment[]): void {
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

export function checkTest(
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

function checkLimitAction(c: Collector, value: unknown, path: Segment[]): LimitAction | undefined {
  if (typeof value !== 'string') return undefined;
  if (!(LIMIT_ACTIONS as readonly string[]).includes(value)) {
    c.add(path, `must be rollback, hold or approval, got ${describe(value)}`);
    return undefined;
  }
  return value as LimitAction;
}

export function checkNoData(
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

export function checkQueryError(
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
