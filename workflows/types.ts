// Shared vocabulary of a rollout. Pure types only: imported by the workflow, the activities and the client.
import type { AlertRoute } from './alerts/kinds';
import type { AnalysisCheck } from './analysis-spec';
import type { ApprovalPolicy } from './approval-policy';
import type { FleetFreeze } from './fleet-model';
import type { Windows } from './windows';
import type { PlanHooks } from './plan-hooks';
import type { LoadRun, PlanLoad } from './plan-load';

/** What a rollout is about: one application in one namespace (its full target is in workflows/target.ts). */
export interface RolloutTarget {
  app: string;
  namespace: string;
}

/** A gate decides whether a stage may be entered. */
export type Gate =
  | { type: 'auto' }
  | {
      type: 'approval';
      /** How long to wait for an approval, in ms; absent means wait forever. */
      timeoutMs?: number;
      /** What happens when the timeout expires (required when timeoutMs is set). */
      onTimeout?: 'abort' | 'proceed';
      /**
       * Who may approve, how many distinct people the gate needs, expiry, reminder and escalation: the plan's
       * `approvals:` with the gate's own on top. Absent: anyone may approve, once.
       */
      policy?: ApprovalPolicy;
    };

/** A metric check evaluated every analysis interval against the canary. */
export interface Check {
  name: string;
  /**
   * A named metric template (`error-rate` in percent, `latency-p50|p95|p99` in ms, `request-rate` in
   * requests per second) or, for providers that take raw queries, a query string in `query`.
   */
  metric?: string;
  query?: string;
  /** The check fails when the value is above max or below min. */
  max?: number;
  min?: number;
}

export interface Stage {
  /** Canary traffic weight in percent, (0, 100]. */
  weight: number;
  /** How long the stage holds before the next one, in ms. Optional (0) only on the final 100 % stage. */
  holdMs: number;
  gate: Gate;
  /**
   * The stage advances only once every round has passed for this long without a break (a round that does not pass
   * starts the count again), counted from its entry at best: "maintained for 3 continuous hours". At most holdMs.
   */
  healthyForMs?: number;
  /** A shadow stage (weight 0): this share of requests is copied to the canary, whose answers nobody sees. */
  mirror?: StageMirror;
}

/** What a shadow stage mirrors (workflows/mirror-spec.ts). */
export interface StageMirror {
  /** Percent of the matching requests copied to the canary, 1..100. */
  percent: number;
  /** The HTTP methods mirrored (upper case); absent: every method. */
  methods?: string[];
}

export interface AnalysisSettings {
  /** Time between two analyses, in ms. Also the metric window each analysis looks at. */
  intervalMs: number;
  /** Consecutive failing analyses that trigger a rollback. */
  failureLimit: number;
  /** Consecutive analyses without data that trigger a rollback (no evidence is never healthy). */
  inconclusiveLimit: number;
  /** Every check's name and what it measures (thresholds too, in the short form). */
  checks: Check[];
  /**
   * Set when the plan uses the full analysis form (success and abort bands, severities, baselines, tests): the
   * checks as judge-v2 reads them. Absent for short-form plans, which keep the original judge.
   */
  rules?: AnalysisCheck[];
}

export interface PromotionSettings {
  /** Time between promotion and removal of the canary workload, in ms. */
  cleanupDelayMs: number;
  /**
   * A gate between the final stage's hold and promotion (`promotion.gate`): a person approves the promotion. Absent
   * for `auto`, as in plans written before it existed.
   */
  gate?: Extract<Gate, { type: 'approval' }>;
}

/** A validated, normalised plan: every duration is in ms. */
export interface Plan {
  name?: string;
  stages: Stage[];
  analysis: AnalysisSettings;
  promotion: PromotionSettings;
  /** Which events go to which alert sinks (absent: each sink's defaults, alerts/routing.ts). */
  alerts?: { routes: AlertRoute[] };
  /** The plan-wide approval policy (each approval gate carries the policy it applies in `gate.policy`). */
  approvals?: ApprovalPolicy;
  /** When stages may advance (absent: any time). */
  windows?: Windows;
  /** Steps run at points of the walk (absent: none; plan-hooks.ts). */
  hooks?: PlanHooks;
  /** Traffic driven at the canary while stages are analysed (absent: none; plan-load.ts). */
  load?: PlanLoad;
}

export type Phase =
  | 'progressing'
  | 'queued'
  | 'waiting_approval'
  | 'paused'
  | 'rolling_back'
  | 'rolled_back'
  | 'promoted'
  | 'failed'
  | 'not_started';

export const TERMINAL_PHASES: readonly Phase[] = ['rolled_back', 'promoted', 'failed', 'not_started'];

/**
 * One thing the preflight (the rollout's first step, before anything is touched) found wrong with this target on
 * this worker. A rollout with a `refuse` finding ends as not started: nothing was changed, the target is free.
 */
export interface PreflightFinding {
  /**
   * What it concerns: `cluster` (reachable, credentials), `access` (a verb the worker's account lacks), `object` (a
   * router object, Service, Deployment or CRD that is missing or unusable), `selector` (routing that would point at
   * pods of the wrong version), `query` (a check's query does not parse or run), `metrics` (the provider cannot
   * answer a check), `data` (a check has no data even for stable: its exporter is missing), `window` (the plan's
   * deployment windows do not open in time).
   */
  area: 'cluster' | 'access' | 'object' | 'selector' | 'query' | 'metrics' | 'data' | 'window';
  /**
   * `input`: the plan or the target must change (the CLI exits 2); `infrastructure`: the worker's cluster,
   * credentials or metrics source must (exit 3).
   */
  cause: 'input' | 'infrastructure';
  /** `refuse`: the rollout does not start; `warn`: it starts, and its status and start alert name the finding. */
  level: 'refuse' | 'warn';
  /** One sentence that names what is wrong and how to fix it (never a secret). */
  message: string;
  /** Where in the plan or target, e.g. `target.traffic.istio.destinationRule` or `analysis.checks[2].query`. */
  path?: string;
}

/** What the preflight found, as status shows it. */
export interface PreflightView {
  /** `running` until it answers; `failed`: the rollout did not start (see `findings`). */
  state: 'running' | 'passed' | 'failed';
  findings: PreflightFinding[];
  /** Whose problem the refusals are when it failed: the input's wins (exit 2), else the infrastructure's (exit 3). */
  cause?: 'input' | 'infrastructure';
  tookMs?: number;
}

/**
 * Who or what ended a rollout that rolled back: `check` (an analysis), `step` (a step of the rollout failed),
 * `timeout` (a gate timed out with onTimeout: abort), `abort` (a person aborted), `decline` (a person declined the
 * gate or question the rollout waited at), `cancel` (its workflow was cancelled from the Temporal UI or API), `back`
 * (a person went back to the previous version during the soak after promotion).
 */
export interface RolloutEnding {
  kind: 'check' | 'step' | 'timeout' | 'abort' | 'decline' | 'cancel' | 'back';
  /** The person, when one acted. */
  by?: string;
}

/** A person confirmed by hand that traffic is back on stable, ending a rollback stuck on a step that kept failing. */
export interface ResolveRecord {
  by: string;
  reason: string;
  at: string;
  /** The step that kept failing when it was resolved. */
  step?: string;
}

export interface CheckResult {
  name: string;
  /** null when the provider had no data for the window. */
  value: number | null;
  /** Set when the provider could not be queried. */
  error?: string;
  outcome: 'pass' | 'fail' | 'no_data';
  // Full analysis form only (judge-v2): what the judge saw and decided for this check.
  /** Stable's value over the same window, where the check compares. */
  baseline?: number | null;
  /** Which band the value fell in. */
  band?: 'success' | 'between' | 'abort';
  severity?: 'critical' | 'high' | 'medium' | 'low';
  /** The judge's own outcome: pass, hold, breach, inconclusive, no_data, query_failed, marginal, fail. */
  judged?: string;
  note?: string;
  /** A dry-run check: measured and judged, no part in the decision; its note says what it would have done. */
  dryRun?: true;
}

export type Verdict = 'pass' | 'fail' | 'inconclusive';

export interface AnalysisRecord {
  /** 1-based stage number the analysis ran in. */
  stage: number;
  weight: number;
  at: string;
  verdict: Verdict;
  checks: CheckResult[];
  /** Full analysis form only: what the round decided (advance-ok, hold, step-back, alert, rollback) and why. */
  action?: string;
  reasons?: string[];
}

/** One run of one of the plan's hooks (a confirm gate's every ask is one). */
export interface HookRunRecord {
  point: string;
  /** 1-based stage it ran at. */
  stage: number;
  hook: string;
  /** When it started (ISO-8601, workflow time). */
  at: string;
  tookMs: number;
  result: 'ok' | 'not_ready' | 'failed';
  /** The HTTP status or the Job's end, and why. */
  detail: string;
  /** The start of the response body or of the Job's logs. */
  excerpt?: string;
  /** A confirm gate's ask number (1 for the first). */
  attempt: number;
}

/** A failed hook (onFailure: approval) waiting for a person. */
export interface HookQuestion {
  point: string;
  stage: number;
  hook: string;
  reason: string;
  since: string;
}

export interface ApprovalRecord {
  stage: number;
  by: string;
  at: string;
  comment?: string;
  /**
   * `approved`: a person approved a gate; `promote`: a person asked to skip the remaining holds;
   * `timeout-proceed`: a gate timed out with onTimeout: proceed; `missing-evidence`: a person let the stage go on
   * without the evidence a check's onNoData/onQueryError limit asked about; `breach-accepted`: a person let the stage
   * go on despite a breach whose check asks first (abort.then: approval); `resolved`: a person confirmed that
   * traffic is back on stable while a rollback step kept failing (`canary resolve`; the comment is the reason).
   */
  kind:
    | 'approved'
    | 'promote'
    | 'timeout-proceed'
    | 'missing-evidence'
    | 'breach-accepted'
    | 'resolved'
    /** A person let the rollout go on after a hook with onFailure: approval failed. */
    | 'hook-failure-accepted';
  /** Given at the promotion gate (after `stage`, the final one, served its hold). */
  promotion?: boolean;
  /** Under an approval policy: distinct approvals the gate needs, and how many counted once this one was given. */
  required?: number;
  count?: number;
  /** When this approval stops counting (the policy's expiresAfter), if the rollout has not moved on by then. */
  expiresAt?: string;
}

export interface GateWait {
  stage: number;
  /** The promotion gate: the final stage (`stage`) served its hold, promotion waits for approval. */
  promotion?: true;
  since: string;
  /** ISO time the gate times out, absent when it waits forever. */
  timeoutAt?: string;
  onTimeout?: 'abort' | 'proceed';
  /** Under an approval policy: distinct approvals needed in all, and how many more are still needed. */
  required?: number;
  needed?: number;
  /** Who may approve (`anyone`, or names and groups). */
  approvers?: string;
  /** The approvals that count now (unexpired, one per person). */
  approvedBy?: Array<{ by: string; at: string; expiresAt?: string }>;
  /** When the gate sends a reminder, and escalates (paused time excluded). */
  remindAt?: string;
  escalateAt?: string;
}

/** Outside the plan's deployment windows: the rollout analyses but does not advance until they open. */
export interface WindowState {
  open: false;
  /** One sentence, e.g. `outside the deployment window (Mon–Fri 09:00–17:00 Europe/Berlin); next opens ...`. */
  note: string;
  /** When the rollout may advance again (absent when the windows do not open within 400 days). */
  nextOpenAt?: string;
}

export interface StageView {
  stage: number;
  weight: number;
  holdMs: number;
  gate: Gate['type'];
  /**
   * skipped: a promotion request went past it; failed: a check or a step failed in it and it rolled back; stopped:
   * a person (or a gate's timeout, or a cancel) ended the rollout in it (status.ending says who).
   */
  state: 'done' | 'current' | 'pending' | 'skipped' | 'failed' | 'stopped';
}

/** The answer of the `status` query. Stage numbers are 1-based everywhere a person sees them. */
export interface RolloutStatus {
  workflowId: string;
  app: string;
  namespace: string;
  version: string;
  image?: string;
  planName?: string;
  requestedBy: string;
  phase: Phase;
  stage: number;
  stageCount: number;
  weight: number;
  stageStartedAt?: string;
  /** When the current stage's hold ends at the earliest (absent while paused or waiting at a gate). */
  stageEndsAt?: string;
  /** Hold time left in the current stage, paused time excluded. */
  stageTimeLeftMs: number;
  /** Hold time left in the whole plan (current stage plus all later holds), gate waits excluded. */
  planTimeLeftMs: number;
  pausedSince?: string;
  pausedBy?: string;
  pauseReason?: string;
  /** The target in one line: workload and router. */
  target?: string;
  /** The router the target names (absent: the worker's default). */
  router?: string;
  /** The version stable ran when the canary was prepared. */
  stableVersion?: string;
  /** The weight the router really carries, where it cannot meet the stage weight exactly (replica ratios). */
  achievedWeight?: number;
  /** What the router said about the weight: why it cannot be met exactly, or why it cannot be verified. */
  routingNote?: string;
  /** A shadow stage: `mirroring 20 % of GET requests to the canary` (its weight is 0). */
  mirroring?: string;
  /** Someone else changed the weights mid-rollout: what the rollout had set and what it found. */
  drift?: { expected: number; found: number; at: string };
  /** A step that must not give up (rollback, return to stable) keeps failing: which, how often, and why. */
  retrying?: {
    step: string;
    attempts: number;
    error: string;
    since: string;
    /** The command that ends the rollback once a person has put all traffic on stable by hand. */
    resolve?: string;
  };
  /** What the rollback found about stable's capacity and did about it. */
  capacityNote?: string;
  /** Promoted, but the canary workload could not be removed (machine-v2): when, why, and how to remove it by hand. */
  cleanupFailed?: { at: string; error: string; fix: string };
  /** A medium breach stepped traffic back to the previous stage's weight; it goes forward after a healthy period. */
  steppedBack?: { stageWeight: number; toWeight: number; since: string };
  gate?: GateWait;
  /** Set while the rollout waits for a deployment window to open before it advances. */
  window?: WindowState;
  /** A freeze holds the rollout (`canary freeze`): it analyses but does not advance until the freeze is lifted. */
  freeze?: FleetFreeze;
  /** Fleet workflows asked whether the rollout may advance, whose answer has not come yet. */
  fleetAsked?: string[];
  /** Waiting for a slot of its namespace's maxConcurrent, before its canary: its place in the queue (1 is next). */
  queued?: { namespace: string; position: number; max?: number };
  /** The stage's hold is served but it cannot advance yet: no passing analysis (evidence) since it began. */
  evidenceWait?: { since: string; note: string };
  /**
   * A check's missing evidence reached a limit whose `then` is approval, or a breach of a check whose abort says
   * `then: approval` (`breaches` names those): a person decides (approve or abort).
   */
  evidenceQuestion?: { since: string; checks: string[]; reasons: string[]; breaches?: string[] };
  /** A hook with onFailure: approval failed: a person decides (approve goes on, abort rolls back). */
  hookQuestion?: HookQuestion;
  /** The plan's hook runs, newest last (the last few: a bounded list). */
  hookRuns?: HookRunRecord[];
  /** The load driven at the canary now (plan-load.ts). */
  load?: LoadRun;
  /** The latest analyses (at most 10 are kept). */
  analyses: AnalysisRecord[];
  /** How many analyses ran in all (absent from rollouts recorded before it was counted). */
  analysesRun?: number;
  lastVerdict?: Verdict;
  approvals: ApprovalRecord[];
  rollbackReason?: string;
  /** Who or what ended a rollout that rolls or rolled back (absent for rollouts recorded before it was kept). */
  ending?: RolloutEnding;
  /** A rollback stuck on a failing step that a person resolved by hand. */
  resolved?: ResolveRecord;
  /** The first step's findings (absent for rollouts recorded before preflight existed). */
  preflight?: PreflightView;
  /** Promotion is under way (stable takes the new version): it can no longer be aborted. */
  promoting?: true;
  /**
   * After promotion, the soak: the new version serves all traffic while the previous one keeps running, until
   * `until`; going back (`canary abort`, or a start of the previous version) shifts traffic back in seconds.
   */
  soak?: { until: string; previousVersion?: string };
  promotedAt?: string;
  stages: StageView[];
  /** The plan asks for approval before promotion, after the final stage's hold (`promotion.gate`). */
  promotionGate?: 'approval';
  /**
   * Requests by people must be signed: who demands it (the plan, or the worker that started the rollout). Unsigned
   * ones are refused (workflows/identity-policy.ts).
   */
  verifiedBy?: string;
  /** Which run of the workflow this is (continue-as-new increments it). */
  run: number;
}

export interface RolloutResult {
  /** `not_started`: the preflight refused it; nothing was touched. */
  outcome: 'promoted' | 'rolled_back' | 'not_started';
  app: string;
  namespace: string;
  version: string;
  reason?: string;
  finalWeight: number;
  approvals: ApprovalRecord[];
  /** Who or what ended a rolled-back rollout. */
  ending?: RolloutEnding;
  resolved?: ResolveRecord;
  /** not_started: what the preflight found, and whose problem it is. */
  findings?: PreflightFinding[];
  cause?: 'input' | 'infrastructure';
}
