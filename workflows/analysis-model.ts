// The normalised model of analysis checks (analysis-spec.ts): what the judge (judge-v2.ts) reads, every default
// filled in and every duration in ms. Pure data and small helpers: imported by the workflow and the client alike.
import type { Direction } from './mann-whitney';
import type { JobHookAction } from './plan-hooks';

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

/** HTTP methods a web check may use. */
export const WEB_METHODS = ['GET', 'POST'] as const;
export type WebMethod = (typeof WEB_METHODS)[number];

/**
 * A web check's source: one HTTP request per round, one number (or boolean: true is 1, false is 0) read from its
 * JSON answer with an RFC 9535 JSONPath. `${secret:NAME}` placeholders in the URL and the header values stay as
 * written here (in the plan, the workflow's input and its history); the worker fills them in when it sends the
 * request (activities/metrics/web.ts), from its own environment or secrets directory.
 */
export interface WebSource {
  url: string;
  method: WebMethod;
  headers?: Record<string, string>;
  /** POST only: sent as is (a string) or as JSON. */
  body?: unknown;
  jsonPath: string;
  timeoutMs: number;
}

/** A web check's request gives up after this long unless it says otherwise. */
export const WEB_DEFAULT_TIMEOUT = '10s';

/** `${secret:NAME}`: a value only the worker knows. */
export const SECRET_PLACEHOLDER = /\$\{secret:([A-Za-z_][A-Za-z0-9_]*)\}/g;

/** The secrets a web check names, in order, each once. */
export function webSecrets(web: Pick<WebSource, 'url' | 'headers'>): string[] {
  const texts = [web.url, ...Object.values(web.headers ?? {})];
  const names = texts.flatMap((t) => [...t.matchAll(SECRET_PLACEHOLDER)].map((m) => m[1]));
  return [...new Set(names)];
}

/** A validated, normalised check: durations in ms, every default filled in. */
export interface AnalysisCheck {
  name: string;
  metric?: AnalysisMetric;
  query?: string;
  /** The value comes from an HTTP endpoint instead of the metrics source. */
  web?: WebSource;
  /**
   * The value is a Kubernetes Job's end, one Job per round (analysis-job.ts): 1 when it succeeded, 0 when it failed;
   * one that does not finish within its timeout is a failed query (no evidence either way), as a web timeout is.
   */
  job?: JobHookAction;
  /**
   * Measured and judged every round, shown in status, alerts and the backtest, but it never advances, holds, steps
   * back or rolls back anything: the round is decided as if the check were not in the plan, and the check's
   * verdict says what it would have done ("dry run: would roll back — ...").
   */
  dryRun?: true;
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
  /**
   * Checks that share a group are judged as one, round by round, as the original judge judged a short-form plan:
   * the group breaches when any member crosses its abort band, has no evidence when none does and any member has
   * none (a failed or rejected query is missing evidence here), and passes otherwise. It keeps one set of streaks
   * (JudgeState.groups) and acts by its first member's abort and onNoData. Set by toFullForm (judge-short-form.ts)
   * for short-form checks converted to this form; a plan cannot write it.
   */
  roundGroup?: string;
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
