// Compressing an example plan for a demo run: every duration of the plan is multiplied by one factor (so that its
// holds and its soak after promotion add up to about a minute), with floors where the product or the metrics need them: the analysis interval
// stays at least the product's 10 s, a check's window spans enough scrapes for rate() to read, a rank test's step
// at least one scrape apart, and an approval gate's timeout long enough for the approval to arrive. Defaults that
// are durations (the 1 m interval, the 10 m cleanup delay, a medium check's recover/rollback times, a test's step,
// a breach question's decideWithin) are written out first, so they shrink too. Deployment windows are lifted: a demo
// at night or on a weekend must still move. Pure: the plan as written in, the plan to run and what changed out.
import { DurationError, formatDuration, parseDuration } from '../../workflows/duration';
import {
  PLAN_DEFAULTS,
  PLAN_LIMITS,
  totalHoldMs,
  validatePlan,
  formatProblems,
  type PlanSpec,
} from '../../workflows/plan';
import { CHECK_DEFAULTS } from '../../workflows/analysis-spec';
import type { WindowsSpec } from '../../workflows/windows';

export interface ScaleOptions {
  /**
   * What the scaled holds and the soak after promotion (the cleanup delay) should add up to (default 60 s); plans
   * shorter than that keep their durations.
   */
  targetMs?: number;
  /** The scrape interval of the Prometheus the demo reads (default 1 s). */
  scrapeIntervalMs?: number;
  /** A check's window spans at least this (default 10 scrapes). */
  minWindowMs?: number;
  /** An approval gate's timeout is at least this, so the demo's (or a person's) approval arrives in time (2 m). */
  minGateTimeoutMs?: number;
}

export interface ScaledPlan {
  /** The plan to run. */
  spec: PlanSpec;
  /** What every duration was multiplied by (1 when the plan was short already). */
  factor: number;
  holdMs: { before: number; after: number };
  /** One line per duration changed, e.g. `stages[0].hold: 1h → 2s`, with the floor named where one applied. */
  changes: string[];
  /** The deployment windows lifted for the demo, in words; absent when the plan has none. */
  liftedWindows?: string;
}

type Obj = Record<string, unknown>;

const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** `90s`, `1500ms`, `0s`: a duration in the plan's own syntax. */
export function durationText(ms: number): string {
  if (ms % 1000 === 0) return `${ms / 1000}s`;
  return `${Math.round(ms)}ms`;
}

/**
 * Scales a plan (as written, without its `target:`) for a demo run. Throws when the plan does not validate before
 * or after (a bug here, not in the plan: the scaled plan must stay valid).
 */
export function scalePlan(written: PlanSpec, options: ScaleOptions = {}): ScaledPlan {
  const targetMs = options.targetMs ?? 60_000;
  const scrapeMs = options.scrapeIntervalMs ?? 1_000;
  const minWindowMs = options.minWindowMs ?? 10 * scrapeMs;
  const minGateTimeoutMs = options.minGateTimeoutMs ?? 120_000;
  const before = validatePlan(written);
  if (!before.ok) throw new Error(formatProblems(before.problems));
  const beforeHold = totalHoldMs(before.plan);
  // The soak after promotion counts too: a rollout is over once the previous version is gone.
  const planned = beforeHold + before.plan.promotion.cleanupDelayMs;
  const factor = planned > targetMs ? targetMs / planned : 1;

  const spec = structuredClone(written) as PlanSpec & Obj;
  const changes: string[] = [];

  /** Scales `obj[key]` (a duration text, or `fallback` when absent), at least `min`, and records the change. */
  const scale = (
    obj: Obj,
    key: string,
    path: string,
    opts: { min?: number; max?: number; fallback?: string; floorWhy?: string } = {},
  ): number | undefined => {
    const defaulted = obj[key] === undefined;
    const text = obj[key] ?? opts.fallback;
    if (typeof text !== 'string') return undefined;
    let ms: number;
    try {
      ms = parseDuration(text);
    } catch (err) {
      if (err instanceof DurationError) return undefined; // validated above: cannot happen
      throw err;
    }
    let scaled = ms === 0 ? 0 : Math.max(1000, Math.round((ms * factor) / 1000) * 1000);
    let why = '';
    if (opts.min !== undefined && ms > 0 && scaled < opts.min) {
      scaled = opts.min;
      why = ` (at least ${formatDuration(opts.min)}${opts.floorWhy ? `: ${opts.floorWhy}` : ''})`;
    }
    if (opts.max !== undefined && scaled > opts.max) scaled = opts.max;
    obj[key] = durationText(scaled);
    if (scaled !== ms || obj[key] !== text) {
      changes.push(`${path}: ${text}${defaulted ? ' (the default)' : ''} → ${formatDuration(scaled)}${why}`);
    }
    return scaled;
  };

  const gate = (g: unknown, path: string): void => {
    if (!isObj(g)) return;
    scale(g, 'timeout', `${path}.timeout`, { min: minGateTimeoutMs, floorWhy: 'time to approve' });
    if (isObj(g.approvals)) policy(g.approvals, `${path}.approvals`);
  };
  const policy = (p: Obj, path: string): void => {
    for (const key of ['expiresAfter', 'remindAfter', 'escalateAfter']) {
      scale(p, key, `${path}.${key}`, { min: PLAN_LIMITS.minIntervalMs });
    }
  };

  // Stages: holds, healthyFor (kept within the hold), gate timeouts.
  (spec.stages ?? []).forEach((stage, i) => {
    const s = stage as unknown as Obj;
    const hold = scale(s, 'hold', `stages[${i}].hold`);
    const healthy = scale(s, 'healthyFor', `stages[${i}].healthyFor`);
    if (healthy !== undefined && hold !== undefined && healthy > hold) s.healthyFor = durationText(hold);
    gate(s.gate, `stages[${i}].gate`);
  });

  // Analysis: the interval (the product's minimum), then each check's durations.
  const analysis = (isObj(spec.analysis) ? spec.analysis : undefined) as Obj | undefined;
  if (analysis) {
    const writtenIntervalMs = parseDuration(String(analysis.interval ?? PLAN_DEFAULTS.interval));
    const intervalMs =
      scale(analysis, 'interval', 'analysis.interval', {
        min: PLAN_LIMITS.minIntervalMs,
        fallback: PLAN_DEFAULTS.interval,
        floorWhy: "the product's minimum",
      }) ?? PLAN_LIMITS.minIntervalMs;
    const checks = Array.isArray(analysis.checks) ? (analysis.checks as unknown[]) : [];
    checks.forEach((check, i) => {
      if (!isObj(check)) return;
      const at = `analysis.checks[${i}]`;
      const windowMs = scale(check, 'window', `${at}.window`, {
        min: minWindowMs,
        floorWhy: `${Math.round(minWindowMs / scrapeMs)} scrapes`,
      });
      if (isObj(check.compare)) scale(check.compare, 'offset', `${at}.compare.offset`);
      if (isObj(check.abort)) {
        const abort = check.abort;
        scale(abort, 'for', `${at}.abort.for`);
        if (abort.severity === 'medium') {
          scale(abort, 'recoverAfter', `${at}.abort.recoverAfter`, {
            fallback: CHECK_DEFAULTS.recoverAfter,
            min: intervalMs,
            floorWhy: 'one analysis interval',
          });
          scale(abort, 'rollbackAfter', `${at}.abort.rollbackAfter`, {
            fallback: CHECK_DEFAULTS.rollbackAfter,
            min: intervalMs,
            floorWhy: 'one analysis interval',
          });
        }
        if (abort.then === 'approval') {
          scale(abort, 'decideWithin', `${at}.abort.decideWithin`, {
            fallback: CHECK_DEFAULTS.decideWithin,
            min: 2 * intervalMs,
            floorWhy: 'two analysis intervals',
          });
        }
      }
      if (isObj(check.test)) {
        const test = check.test;
        // Each point of the test's series is a rate over one step: it spans a few scrapes, and keeps its ratio to the
        // analysis interval (where the interval's floor lifted it), so the series fills in as many rounds as before.
        const writtenStepMs = parseDuration(String(test.step ?? CHECK_DEFAULTS.test.step));
        const stepFloor = Math.max(
          5 * scrapeMs,
          Math.round((writtenStepMs * intervalMs) / writtenIntervalMs / 1000) * 1000,
        );
        const stepMs =
          scale(test, 'step', `${at}.test.step`, {
            fallback: CHECK_DEFAULTS.test.step,
            min: stepFloor,
            floorWhy: 'a rate over a few scrapes, in step with the interval',
          }) ?? stepFloor;
        const minSamples =
          typeof test.minSamples === 'number' ? test.minSamples : CHECK_DEFAULTS.test.minSamples;
        // A window of its own must still give minSamples points per side.
        if (windowMs !== undefined && Math.floor(windowMs / stepMs) + 1 < minSamples) {
          const widened = (minSamples - 1) * stepMs;
          check.window = durationText(widened);
          changes.push(`${at}.window: → ${formatDuration(widened)} (${minSamples} samples of the test)`);
        }
      }
    });
  }

  // Promotion: the cleanup delay (soak), and its gate.
  const promotion = (isObj(spec.promotion) ? spec.promotion : (spec.promotion = {})) as Obj;
  scale(promotion, 'cleanupDelay', 'promotion.cleanupDelay', { fallback: PLAN_DEFAULTS.cleanupDelay });
  gate(promotion.gate, 'promotion.gate');
  if (isObj(spec.approvals)) policy(spec.approvals as Obj, 'approvals');

  let liftedWindows: string | undefined;
  if (spec.windows !== undefined) {
    liftedWindows = describeWindows(spec.windows);
    delete spec.windows;
  }

  const after = validatePlan(spec);
  if (!after.ok) {
    throw new Error(
      `the scaled plan does not validate (a bug of the demo):\n${formatProblems(after.problems)}`,
    );
  }
  return {
    spec,
    factor,
    holdMs: { before: beforeHold, after: totalHoldMs(after.plan) },
    changes,
    ...(liftedWindows ? { liftedWindows } : {}),
  };
}

/** `mon–fri 09:00–17:00 UTC`, freezes counted. */
export function describeWindows(w: WindowsSpec): string {
  const allow = (w.allow ?? []).map((r) => {
    const days = r.days && r.days.length > 0 && r.days.length < 7 ? `${r.days.join(', ')} ` : 'every day ';
    return `${days}${r.from}–${r.to}`;
  });
  const parts = [
    allow.length > 0 ? `advance only ${allow.join('; ')} ${w.timeZone}` : `any time (${w.timeZone})`,
  ];
  if (w.freeze && w.freeze.length > 0) {
    parts.push(`${w.freeze.length} freeze${w.freeze.length === 1 ? '' : 's'}`);
  }
  return parts.join(', ');
}
