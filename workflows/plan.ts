// The rollout plan as written in a file (PlanSpec) and its validation into the normalised Plan.
// Imported by the workflow sandbox and the client: deterministic, no Node modules.
import { z } from 'zod';
import { formatDuration } from './duration';
import {
  Collector,
  MAX_DURATION_MS,
  byHand,
  checkDuration,
  describe,
  isObject,
  problemLines,
  sortedProblems,
  typeError,
  type InputProblem,
  type Obj,
  type Segment,
} from './problems';
import type { AnalysisSettings, Check, Gate, Plan, Stage } from './types';
import { analysisCheckKnownFields, collectAnalysisChecks } from './analysis-spec';
import {
  approvalPolicyKnownFields,
  collectApprovalPolicy,
  collectGateApprovals,
  mergeApprovalPolicy,
  type ApprovalPolicy,
  type ApprovalPolicySpec,
  type GateApprovalSpec,
} from './approval-policy';
import type { WindowsSpec } from './windows';
import { collectWindows, windowsKnownFields } from './windows-spec';
import { validateAlertRoutes, type AlertRoute } from './alerts/routing';
import { collectMirror, type ShadowStageSpec } from './mirror-spec';
import { LOAD_FIELDS, collectLoad } from './plan-load';
import { collectHooks, hooksKnownFields } from './plan-hooks';

export { MAX_DURATION_MS };
export { describePlan } from './plan-describe';

/** Named metric templates a check may use instead of a raw query. */
export const METRIC_TEMPLATES = [
  'error-rate',
  'latency-p50',
  'latency-p95',
  'latency-p99',
  'request-rate',
] as const;

export const PLAN_DEFAULTS = {
  interval: '1m',
  failureLimit: 1,
  inconclusiveLimit: 3,
  cleanupDelay: '10m',
} as const;

export type GateSpec =
  | 'auto'
  | 'approval'
  | {
      type: 'auto' | 'approval';
      timeout?: string;
      onTimeout?: 'abort' | 'proceed';
      /** This gate's own approval policy, on top of the plan's `approvals:` (workflows/approval-policy.ts). */
      approvals?: GateApprovalSpec;
    };

export interface CheckSpec {
  name: string;
  metric?: string;
  query?: string;
  max?: number;
  min?: number;
}

/** A check in the full analysis form, as written; see workflows/analysis-spec.ts for its fields. */
export interface FullCheckSpec {
  name: string;
  [field: string]: unknown;
}

export interface StageSpec extends ShadowStageSpec {
  /** Percent of traffic, (0, 100]. */
  weight: number;
  /** Duration text; optional only on the final 100 % stage. */
  hold?: string;
  gate?: GateSpec;
  /** Duration text: every round must have passed for this long in a row before the stage advances. */
  healthyFor?: string;
}

export interface AnalysisSpec {
  interval?: string;
  failureLimit?: number;
  inconclusiveLimit?: number;
  /** The short form, or the full analysis form of analysis-spec.ts (bands, severities, baselines, tests). */
  checks?: Array<CheckSpec | FullCheckSpec>;
}

export interface PromotionSpec {
  cleanupDelay?: string;
  /** A gate after the final stage's hold, before promotion ("prompt to promote"): auto (default) or approval. */
  gate?: GateSpec;
}

/** A plan as written in a YAML/JSON file or a preset: durations are text. */
export interface PlanSpec {
  name?: string;
  analysis?: AnalysisSpec;
  stages: StageSpec[];
  promotion?: PromotionSpec;
  /** Routing of events to alert sinks (alerts/routing.ts): `{ routes: [{ sinks, kinds?, minSeverity? }] }`. */
  alerts?: { routes: AlertRoute[] };
  /** Who may approve the approval gates, how many, expiry, reminders and escalation (workflows/approval-policy.ts). */
  approvals?: ApprovalPolicySpec;
  /** When stages may advance: days, hours in a time zone, freezes (workflows/windows.ts). */
  windows?: WindowsSpec;
  hooks?: Record<string, unknown>;
}

/** Where in the plan (e.g. `stages[2].weight`; empty for the plan itself) and what is wrong. */
export type PlanProblem = InputProblem;

export type PlanValidation = { ok: true; plan: Plan } | { ok: false; problems: PlanProblem[] };

// ---------------------------------------------------------------------------------------------------------------
// Messages

const METRIC_LIST = 'error-rate, latency-p50, latency-p95, latency-p99 or request-rate';
const GATE_FORMS = 'auto, approval or {type: approval, timeout: 2h, onTimeout: abort|proceed}';

// ---------------------------------------------------------------------------------------------------------------
// Structure (zod): strict objects and primitive types. Every message is ours; semantics are checked by hand below.

const gateObjectSchema = z.strictObject(
  {
    type: z.string(typeError('auto or approval', 'is required: auto or approval')),
    timeout: byHand<string>().optional(),
    onTimeout: z.string(typeError('abort or proceed')).optional(),
    approvals: byHand<unknown>().optional(),
  },
  typeError(GATE_FORMS),
);

const stageSchema = z.strictObject(
  {
    weight: z.number(
      typeError(
        'a number (percent of traffic, e.g. 25)',
        'is required: the percent of traffic for this stage, e.g. 25',
      ),
    ),
    hold: byHand<string>().optional(),
    gate: byHand<GateSpec>().optional(),
    healthyFor: byHand<string>().optional(),
    mirror: byHand<number>().optional(), // a shadow stage: mirror-spec.ts

    mirrorMethods: byHand<unknown>().optional(),
    load: byHand<unknown>().optional(), // plan-load.ts
  },
  typeError('an object with weight, hold and gate'),
);

const wholeNumber = typeError('a whole number of at least 1');

const checkSchema = z.strictObject(
  {
    name: z.string(typeError('a string', 'is required: every check needs a unique name')),
    metric: z.string(typeError(`a metric name (${METRIC_LIST})`)).optional(),
    query: z.string(typeError('a query string')).optional(),
    max: z.number(typeError('a number')).optional(),
    min: z.number(typeError('a number')).optional(),
  },
  typeError('an object with name, metric or query, and max and/or min'),
);

const analysisSchema = z.strictObject(
  {
    interval: byHand<string>().optional(),
    failureLimit: z.number(wholeNumber).optional(),
    inconclusiveLimit: z.number(wholeNumber).optional(),
    // Each check is checked on its own (short form, or the full analysis form of analysis-spec.ts).
    checks: z.array(byHand<CheckSpec>(), typeError('a list of checks')).optional(),
  },
  typeError('an object with interval, failureLimit, inconclusiveLimit and checks'),
);

const promotionSchema = z.strictObject(
  { cleanupDelay: byHand<string>().optional(), gate: byHand<GateSpec>().optional() },
  typeError('an object with cleanupDelay and gate'),
);

const planSchema = z.strictObject({
  name: z.string(typeError('a string')).optional(),
  analysis: analysisSchema.optional(),
  stages: z.array(
    stageSchema,
    typeError('a list of stages', 'is required: list at least one stage; the last one must have weight 100'),
  ),
  promotion: promotionSchema.optional(),
  // Checked by their own modules (routing.ts, approval-policy.ts, windows.ts, plan-hooks.ts), strict plans only.
  alerts: byHand<unknown>().optional(),
  approvals: byHand<unknown>().optional(),
  windows: byHand<unknown>().optional(),
  hooks: byHand<unknown>().optional(),
  load: byHand<unknown>().optional(),
});

const ALERTS_FIELDS = ['routes'] as const;

/** Known fields per object, by path pattern (indexes as `*`), for "did you mean". */
const KNOWN_FIELDS: Record<string, readonly string[]> = {
  '': Object.keys(planSchema.shape),
  analysis: Object.keys(analysisSchema.shape),
  'analysis.checks.*': Object.keys(checkSchema.shape),
  'stages.*': Object.keys(stageSchema.shape),
  'stages.*.gate': Object.keys(gateObjectSchema.shape),
  load: LOAD_FIELDS,
  'stages.*.load': LOAD_FIELDS,
  'promotion.gate': Object.keys(gateObjectSchema.shape),
  promotion: Object.keys(promotionSchema.shape),
  alerts: ALERTS_FIELDS,
  ...approvalPolicyKnownFields(),
  ...windowsKnownFields(),
  ...hooksKnownFields(),
};

// ---------------------------------------------------------------------------------------------------------------
// Validation

function checkLimit(c: Collector, value: unknown, path: Segment[], fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value === 'number' && Number.isFinite(value) && !(Number.isInteger(value) && value >= 1)) {
    c.add(path, `must be a whole number of at least 1, got ${value}`);
  }
  return value as number;
}

/** The approval gate with the policy it applies, when there is one. */
function approvalGate(gate: Extract<Gate, { type: 'approval' }>, policy: ApprovalPolicy | undefined): Gate {
  return policy ? { ...gate, policy } : gate;
}

function checkGate(
  c: Collector,
  value: unknown,
  path: Segment[],
  planPolicy?: ApprovalPolicy,
  strict = true,
): Gate | undefined {
  if (value === undefined || value === 'auto') return { type: 'auto' };
  if (value === 'approval') return approvalGate({ type: 'approval' }, planPolicy);
  if (typeof value === 'string') {
    c.add(path, `unknown gate type ${describe(value)}; use ${GATE_FORMS}`);
    return undefined;
  }
  if (!isObject(value)) {
    c.add(path, `must be ${GATE_FORMS}, got ${describe(value)}`);
    return undefined;
  }
  c.structure(gateObjectSchema, value, path);
  const { type, timeout, onTimeout, approvals } = value;
  let policy = planPolicy;
  if (approvals !== undefined) {
    if (!strict) {
      c.add([...path, 'approvals'], 'is not available for this rollout (started before approval policies)');
    } else if (type === 'auto') {
      c.add([...path, 'approvals'], 'only applies to approval gates');
    } else {
      const override = collectGateApprovals(c, approvals, [...path, 'approvals'], planPolicy);
      if (override) policy = mergeApprovalPolicy(planPolicy, override);
    }
  }
  if (typeof type === 'string' && type !== 'auto' && type !== 'approval') {
    c.add([...path, 'type'], `unknown gate type ${describe(type)}; use auto or approval`);
  }
  const timeoutMs =
    timeout === undefined
      ? undefined
      : checkDuration(c, timeout, [...path, 'timeout'], { zeroHint: '; leave timeout out to wait forever' });
  if (typeof onTimeout === 'string' && onTimeout !== 'abort' && onTimeout !== 'proceed') {
    c.add([...path, 'onTimeout'], `must be abort or proceed, got ${describe(onTimeout)}`);
  }
  if (type === 'auto') {
    if (timeout !== undefined) c.add([...path, 'timeout'], 'only applies to approval gates');
    if (onTimeout !== undefined) c.add([...path, 'onTimeout'], 'only applies to approval gates');
    return { type: 'auto' };
  }
  if (timeout !== undefined && onTimeout === undefined) {
    c.add([...path, 'onTimeout'], 'is required when timeout is set: abort or proceed');
  }
  if (timeout === undefined && onTimeout !== undefined) {
    c.add(
      [...path, 'timeout'],
      'is required when onTimeout is set, e.g. 2h (without a timeout the gate waits forever)',
    );
  }
  if (timeoutMs === undefined) return approvalGate({ type: 'approval' }, policy);
  return approvalGate({ type: 'approval', timeoutMs, onTimeout: onTimeout as 'abort' | 'proceed' }, policy);
}

function checkStages(
  c: Collector,
  stages: unknown[],
  strict: boolean,
  planPolicy: ApprovalPolicy | undefined,
  hasChecks: boolean,
): Stage[] {
  if (stages.length === 0) {
    c.add(['stages'], 'must list at least one stage; the last one must have weight 100');
  }
  if (strict && stages.length > PLAN_LIMITS.stages) {
    // Whole, strictly increasing percents cannot need more; checking each would only bury this.
    c.add(['stages'], `lists ${stages.length} stages; a plan may have at most ${PLAN_LIMITS.stages}`);
    return [];
  }
  const out: Stage[] = [];
  let previous: { weight: number; index: number } | undefined;
  stages.forEach((stage, index) => {
    if (!isObject(stage)) return;
    const path: Segment[] = ['stages', index];
    const final = index === stages.length - 1;
    const { weight, hold, gate } = stage;
    // A shadow stage serves no one: collectMirror checks its weight (0) and its place (first).
    const mirror = collectMirror(c, stage, path, { strict, final, previous });
    if (typeof weight === 'number' && Number.isFinite(weight) && !(strict && stage.mirror !== undefined)) {
      if (!(weight > 0 && weight <= 100)) {
        c.add([...path, 'weight'], `must be more than 0 and at most 100 (percent of traffic), got ${weight}`);
      } else if (strict && !Number.isInteger(weight)) {
        c.add([...path, 'weight'], `must be a whole percent (every router takes integers), got ${weight}`);
      } else {
        if (previous && weight <= previous.weight) {
          c.add(
            [...path, 'weight'],
            `must be greater than ${previous.weight}, the weight of stages[${previous.index}] (weights must strictly increase)`,
          );
        }
        if (final && weight !== 100) {
          c.add([...path, 'weight'], `the last stage must have weight 100 (full promotion), got ${weight}`);
        }
      }
      previous = weight > 0 && weight <= 100 ? { weight, index } : undefined;
    } else {
      previous = undefined;
    }
    let holdMs: number | undefined = 0;
    if (hold === undefined) {
      if (!final)
        c.add([...path, 'hold'], 'is required on every stage except the final 100% stage, e.g. 15m or 1h');
    } else {
      holdMs = checkDuration(c, hold, [...path, 'hold'], {
        zeroHint: final ? '; leave hold out to promote at once' : '',
      });
    }
    const normalisedGate = checkGate(c, gate, [...path, 'gate'], planPolicy, strict);
    let healthyForMs: number | undefined;
    if (stage.healthyFor !== undefined) {
      healthyForMs = checkDuration(c, stage.healthyFor, [...path, 'healthyFor']);
      if (healthyForMs !== undefined && holdMs !== undefined && healthyForMs > holdMs) {
        c.add(
          [...path, 'healthyFor'],
          `is longer than the stage's hold (${formatDuration(holdMs)}); it may be at most the hold: make the hold longer`,
        );
      }
      if (!hasChecks) {
        c.add([...path, 'healthyFor'], 'needs analysis checks to tell health: add analysis.checks');
      }
    }
    if (typeof weight === 'number' && holdMs !== undefined && normalisedGate) {
      const optional = { ...(healthyForMs ? { healthyForMs } : {}), ...(mirror ? { mirror } : {}) };
      out.push({ weight, holdMs, gate: normalisedGate, ...optional });
    }
  });
  return out;
}

/** Fields only the full analysis form has (a typo of a short-form field keeps the short form's messages). */
const FULL_FORM_FIELDS = new Set(
  (analysisCheckKnownFields()['analysis.checks.*'] ?? []).filter(
    (k) => !['name', 'metric', 'query', 'max', 'min'].includes(k),
  ),
);

/** Whether any check uses the full form (bands, severities, baselines, tests...). */
function usesFullForm(spec: Obj): boolean {
  const checks = isObject(spec.analysis) && Array.isArray(spec.analysis.checks) ? spec.analysis.checks : [];
  return checks.some((check) => isObject(check) && Object.keys(check).some((k) => FULL_FORM_FIELDS.has(k)));
}

function checkChecks(c: Collector, checks: unknown[]): Check[] {
  checks.forEach((check, index) => c.structure(checkSchema, check, ['analysis', 'checks', index]));
  const seen = new Map<string, number>();
  const out: Check[] = [];
  checks.forEach((check, index) => {
    if (!isObject(check)) return;
    const path: Segment[] = ['analysis', 'checks', index];
    const { name, metric, query, max, min } = check;
    if (typeof name === 'string') {
      const first = seen.get(name);
      if (name.trim() === '') c.add([...path, 'name'], 'must not be empty');
      else if (first !== undefined) {
        c.add([...path, 'name'], `duplicate check name "${name}" (also used by analysis.checks[${first}])`);
      } else seen.set(name, index);
    }
    if (metric === undefined && query === undefined) {
      c.add(path, `needs a metric (${METRIC_LIST}) or a query`);
    } else if (metric !== undefined && query !== undefined) {
      c.add(path, 'has both metric and query; keep exactly one');
    }
    if (typeof metric === 'string' && !(METRIC_TEMPLATES as readonly string[]).includes(metric)) {
      c.add([...path, 'metric'], `unknown metric ${describe(metric)}; use ${METRIC_LIST}, or a raw query`);
    }
    if (typeof query === 'string' && query.trim() === '') c.add([...path, 'query'], 'must not be empty');
    if (max === undefined && min === undefined) {
      c.add(path, 'needs a threshold: max, min or both');
    } else if (typeof max === 'number' && typeof min === 'number' && min > max) {
      c.add(path, `min (${min}) is greater than max (${max}), so every value would fail`);
    }
    const normalised: Check = { name: name as string };
    if (metric !== undefined) normalised.metric = metric as string;
    if (query !== undefined) normalised.query = query as string;
    if (max !== undefined) normalised.max = max as number;
    if (min !== undefined) normalised.min = min as number;
    out.push(normalised);
  });
  return out;
}

function checkAnalysis(
  c: Collector,
  analysis: Obj,
  full: boolean,
  stageCount: number | undefined,
): AnalysisSettings {
  const interval = analysis.interval ?? PLAN_DEFAULTS.interval;
  const intervalMs = checkDuration(c, interval, ['analysis', 'interval']) ?? 0;
  const failureLimit = checkLimit(
    c,
    analysis.failureLimit,
    ['analysis', 'failureLimit'],
    PLAN_DEFAULTS.failureLimit,
  );
  const inconclusiveLimit = checkLimit(
    c,
    analysis.inconclusiveLimit,
    ['analysis', 'inconclusiveLimit'],
    PLAN_DEFAULTS.inconclusiveLimit,
  );
  const specs = Array.isArray(analysis.checks) ? analysis.checks : [];
  if (full) {
    // The full form: judged by judge-v2 (bands, severities, baselines, tests). Rollouts started before it
    // existed never get here (strict is off for them).
    const rules = collectAnalysisChecks(c, specs, {
      windowMs: Math.max(30_000, intervalMs),
      failureLimit: typeof failureLimit === 'number' ? failureLimit : PLAN_DEFAULTS.failureLimit,
      inconclusiveLimit:
        typeof inconclusiveLimit === 'number' ? inconclusiveLimit : PLAN_DEFAULTS.inconclusiveLimit,
      ...(stageCount !== undefined ? { stageCount } : {}),
    });
    return {
      intervalMs,
      failureLimit,
      inconclusiveLimit,
      // The names (and what they measure) for everything that only needs to know which checks exist.
      checks: rules.map((r) => ({
        name: r.name,
        ...(r.metric ? { metric: r.metric } : {}),
        ...(r.query ? { query: r.query } : {}),
      })),
      rules,
    };
  }
  return { intervalMs, failureLimit, inconclusiveLimit, checks: checkChecks(c, specs) };
}

/** Bounds on what a plan may hold, each refused with its own message. */
export const PLAN_LIMITS = { stages: 100, checks: 50, nameLength: 100, minIntervalMs: 10_000 } as const;

/** The values a named metric can take, for refusing thresholds it could never reach. */
const METRIC_RANGES: Record<string, { min: number; max?: number; unit: string }> = {
  'request-success-rate': { min: 0, max: 100, unit: 'a percentage' },
  'error-rate': { min: 0, max: 100, unit: 'a percentage' },
  '5xx-rate': { min: 0, max: 100, unit: 'a percentage' },
  'latency-p50': { min: 0, unit: 'a duration in ms' },
  'latency-p95': { min: 0, unit: 'a duration in ms' },
  'latency-p99': { min: 0, unit: 'a duration in ms' },
  'latency-avg': { min: 0, unit: 'a duration in ms' },
  'request-rate': { min: 0, unit: 'requests per second' },
  'request-count': { min: 0, unit: 'a number of requests' },
};

/**
 * Rules that came with 0.2 (the workflow applies them only to rollouts started since): an analysis interval
 * of at least 10 s (scrapes are seconds apart; faster rounds judge the same samples again), and thresholds
 * inside the range of their metric (a negative maximum error rate, a percentage over 100).
 */
function checkAnalysisLimits(c: Collector, analysis: Obj, intervalMs: number): void {
  if (intervalMs > 0 && intervalMs < PLAN_LIMITS.minIntervalMs) {
    c.add(
      ['analysis', 'interval'],
      `must be at least ${formatDuration(PLAN_LIMITS.minIntervalMs)}, got ${formatDuration(intervalMs)}: ` +
        'metrics are scraped seconds apart, so shorter rounds only judge the same samples again',
    );
  }
  const checks = Array.isArray(analysis.checks) ? analysis.checks : [];
  checks.forEach((check, index) => {
    if (!isObject(check) || typeof check.metric !== 'string') return;
    const range = METRIC_RANGES[check.metric];
    if (!range) return;
    const path: Segment[] = ['analysis', 'checks', index];
    const bounds: Array<[Segment[], unknown]> = [
      [[...path, 'max'], check.max],
      [[...path, 'min'], check.min],
    ];
    for (const band of ['success', 'abort'] as const) {
      const b = check[band];
      if (isObject(b)) bounds.push([[...path, band, 'max'], b.max], [[...path, band, 'min'], b.min]);
    }
    for (const [at, value] of bounds) {
      if (typeof value !== 'number') continue;
      if (value < range.min || (range.max !== undefined && value > range.max)) {
        const allowed =
          range.max !== undefined ? `from ${range.min} to ${range.max}` : `of at least ${range.min}`;
        c.add(at, `${check.metric} is ${range.unit} ${allowed}, so ${value} can never be reached`);
      }
    }
    if (range.max === undefined) return;
    const span = range.max - range.min;
    const places: Array<[Segment[], unknown]> = [
      [path, check],
      [[...path, 'success'], check.success],
      [[...path, 'abort'], check.abort],
      [[...path, 'compare'], check.compare],
    ];
    for (const [at, band] of places) {
      const difference = isObject(band) ? band.difference : undefined;
      if (!isObject(difference)) continue;
      for (const key of ['max', 'min'] as const) {
        const value = difference[key];
        if (typeof value === 'number' && Math.abs(value) > span) {
          c.add(
            [...at, 'difference', key],
            `${check.metric} is ${range.unit} from ${range.min} to ${range.max}, so canary and stable can never differ by ${value}`,
          );
        }
      }
    }
  });
}

/** `alerts.routes[0].sinks[1]` as path segments. */
function segmentsOf(path: string): Segment[] {
  const out: Segment[] = [];
  for (const m of path.matchAll(/([^.[\]]+)|\[(\d+)\]/g)) out.push(m[2] !== undefined ? Number(m[2]) : m[1]);
  return out;
}

/** The plan's `alerts:`, `approvals:` and `windows:` sections (refused for rollouts started before them). */
function checkPlanExtras(
  c: Collector,
  spec: Obj,
  strict: boolean,
): Pick<Plan, 'alerts' | 'approvals' | 'windows' | 'hooks' | 'load'> {
  const out: Pick<Plan, 'alerts' | 'approvals' | 'windows' | 'hooks' | 'load'> = {};
  if (!strict) {
    for (const field of ['alerts', 'approvals', 'windows', 'hooks', 'load'] as const) {
      if (spec[field] !== undefined)
        c.add([field], 'is not available for this rollout (started before it existed)');
    }
    return out;
  }
  if (spec.alerts !== undefined) {
    if (!isObject(spec.alerts)) {
      c.add(['alerts'], `must be an object with routes, got ${describe(spec.alerts)}`);
    } else {
      const before = c.problems.length;
      for (const key of Object.keys(spec.alerts)) {
        if (!(ALERTS_FIELDS as readonly string[]).includes(key)) {
          c.add(['alerts', key], `unknown field "${key}" (known fields: ${ALERTS_FIELDS.join(', ')})`);
        }
      }
      if (spec.alerts.routes === undefined) {
        c.add(['alerts', 'routes'], 'is required: a list of rules ({ sinks, kinds?, minSeverity? })');
      } else {
        for (const p of validateAlertRoutes(spec.alerts.routes, 'alerts.routes'))
          c.add(segmentsOf(p.path), p.message);
      }
      if (c.problems.length === before) out.alerts = { routes: spec.alerts.routes as AlertRoute[] };
    }
  }
  if (spec.approvals !== undefined) {
    const policy = collectApprovalPolicy(c, spec.approvals, ['approvals']);
    if (policy) out.approvals = policy;
  }
  if (spec.windows !== undefined) {
    const windows = collectWindows(c, spec.windows, ['windows']);
    if (windows) out.windows = windows;
  }
  const hooks = spec.hooks === undefined ? undefined : collectHooks(c, spec.hooks, ['hooks']);
  const load = collectLoad(c, spec);
  return { ...out, ...(hooks ? { hooks } : {}), ...(load ? { load } : {}) };
}

/**
 * Validates a plan as written and normalises it (durations in ms, defaults filled in). Lists every problem.
 * `strict` (the default) adds the rules that came later: whole-percent weights and size bounds; the workflow
 * turns it off for rollouts started before them, which must keep replaying.
 */
export function validatePlan(
  spec: unknown,
  options: { strict?: boolean; limits?: boolean } = {},
): PlanValidation {
  const strict = options.strict ?? true;
  const limits = strict && (options.limits ?? true);
  if (!isObject(spec)) {
    return {
      ok: false,
      problems: [
        { path: '', message: `a plan must be an object with a "stages" list, got ${describe(spec)}` },
      ],
    };
  }
  // Rollouts started before the full form existed (strict off) are read by the short form alone.
  const full = strict && usesFullForm(spec);
  const c = new Collector(full ? { ...KNOWN_FIELDS, ...analysisCheckKnownFields() } : KNOWN_FIELDS);
  c.structure(planSchema, spec);

  // Sections that came with issue 8 (alert routing, approval policy, deployment windows): strict plans only.
  const extras = checkPlanExtras(c, spec, strict);
  const hasChecks =
    isObject(spec.analysis) && Array.isArray(spec.analysis.checks) && spec.analysis.checks.length > 0;
  const stages = Array.isArray(spec.stages)
    ? checkStages(c, spec.stages, strict, extras.approvals, hasChecks)
    : [];
  if (strict && typeof spec.name === 'string' && spec.name.length > PLAN_LIMITS.nameLength) {
    c.add(['name'], `must be at most ${PLAN_LIMITS.nameLength} characters, got ${spec.name.length}`);
  }
  if (strict && isObject(spec.analysis) && Array.isArray(spec.analysis.checks)) {
    if (spec.analysis.checks.length > PLAN_LIMITS.checks) {
      c.add(
        ['analysis', 'checks'],
        `lists ${spec.analysis.checks.length} checks; a plan may have at most ${PLAN_LIMITS.checks}`,
      );
    }
  }
  const analysis = checkAnalysis(
    c,
    isObject(spec.analysis) ? spec.analysis : {},
    full,
    Array.isArray(spec.stages) ? spec.stages.length : undefined,
  );
  if (limits && isObject(spec.analysis)) checkAnalysisLimits(c, spec.analysis, analysis.intervalMs);
  const promotion = isObject(spec.promotion) ? spec.promotion : {};
  const cleanupDelayMs =
    checkDuration(c, promotion.cleanupDelay ?? PLAN_DEFAULTS.cleanupDelay, ['promotion', 'cleanupDelay'], {
      allowZero: true,
    }) ?? 0;
  // The prompt before promotion: passed after the final stage's hold, like a stage's gate before its shift.
  const promotionGate =
    promotion.gate === undefined
      ? undefined
      : checkGate(c, promotion.gate, ['promotion', 'gate'], extras.approvals, strict);

  if (c.problems.length > 0) {
    return { ok: false, problems: sortedProblems(spec, c.problems) };
  }
  const plan: Plan = {
    stages,
    analysis,
    promotion: {
      cleanupDelayMs,
      ...(promotionGate?.type === 'approval' ? { gate: promotionGate } : {}),
    },
  };
  if (typeof spec.name === 'string') plan.name = spec.name;
  if (extras.alerts) plan.alerts = extras.alerts;
  if (extras.approvals) plan.approvals = extras.approvals;
  if (extras.windows) plan.windows = extras.windows;
  if (extras.hooks) plan.hooks = extras.hooks;
  if (extras.load) plan.load = extras.load;
  return { ok: true, plan };
}

/** `plan is invalid (N problems):` followed by one `  - path: message` line per problem. */
export function formatProblems(problems: PlanProblem[]): string {
  const header = `plan is invalid (${problems.length} ${problems.length === 1 ? 'problem' : 'problems'}):`;
  return [header, ...problemLines(problems)].join('\n');
}

/** The sum of all stage holds: the earliest promotion time, gate waits excluded. */
export function totalHoldMs(plan: Plan): number {
  return plan.stages.reduce((sum, stage) => sum + stage.holdMs, 0);
}
