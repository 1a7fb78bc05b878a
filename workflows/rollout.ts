// The rollout workflow: walks a stage plan, shifting traffic, analysing the canary on a schedule, waiting at
// approval gates, and rolling back on its own. Only deterministic code: every wait is a Temporal timer.
import {
  ActivityCancellationType,
  ApplicationFailure,
  type ActivityOptions,
  CancellationScope,
  ContinueAsNew,
  allHandlersFinished,
  condition,
  continueAsNew,
  isCancellation,
  log,
  patched,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  sleep,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type {
  AnalysisResult,
  CheckMeasurement,
  RolloutActivities,
  WeightResult,
} from '../activities/rollout-activities';
import {
  buildRolloutAlert,
  type AlertEvent,
  type AlertKind,
  type AlertSeverity,
  type AlertVerdict,
  type CheckSeverity,
  type RolloutAlert,
  type RolloutAlertInput,
} from './alerts/events';
import { routes } from './alerts/routing';
import {
  SA_APP,
  NOT_STARTED_FAILURE,
  NOT_STARTED_MESSAGE_PREFIX,
  ROLLED_BACK_FAILURE,
  ROLLED_BACK_MESSAGE_PREFIX,
  SA_PHASE,
  SA_VERSION,
  SA_STAGE,
  SA_WEIGHT,
  abortSignal,
  approveUpdate,
  pauseSignal,
  pauseUpdate,
  promoteUpdate,
  resolveUpdate,
  resumeSignal,
  resumeUpdate,
  statusQuery,
  type PauseAck,
  type PauseRequest,
  type RolloutInput,
} from './api';
import {
  UNKNOWN_IDENTITY,
  approvalExpiresAt,
  approvalsNeeded,
  canApprove,
  countedApprovals,
  describeApprovers,
  gateSatisfied,
  gateTimers,
  promotionRefusal,
  recordApproval,
  type ApprovalPolicy,
} from './approval-policy';
import { checksForStage } from './analysis-spec';
import { formatDuration } from './duration';
import { describeWindowState, mayAdvance, nextOpen } from './windows';
import { metricsOfferProblems } from './metrics-offer';
import { describeResults, judge } from './judge';
import {
  acknowledgeMissingEvidence,
  initialJudgeState,
  judgeRound,
  roundOutcome,
  roundSlackFor,
} from './judge-v2';
import { describePlan, formatProblems, validatePlan } from './plan';
import { describeTarget, formatTargetProblems, validateTarget, versionProblem, type Target } from './target';
import { renderDetails } from './details';
import { carryOver, initialState, migrateCarried, type RolloutState } from './machine/state';
import type {
  ApprovalRecord,
  CheckResult,
  Gate,
  Phase,
  Plan,
  PreflightFinding,
  ResolveRecord,
  RolloutEnding,
  RolloutResult,
  RolloutStatus,
  Stage,
  StageView,
} from './types';

const MAX_ANALYSES_KEPT = 10;
const MAX_APPROVALS_KEPT = 50;
const DEFAULT_CONTINUE_AS_NEW_AFTER_EVENTS = 4000;
/** Rollouts started before targets named their routers ran no routing setup, teardown or capacity check. */
export const TARGET_PATCH = 'per-rollout-target';
/** Rollouts whose plans use the full analysis form are judged by judge-v2 from this patch on. */
export const JUDGE_PATCH = 'judge-v2';
/** Rollouts started before plans were held to whole-percent weights and size bounds. */
export const STRICT_PLAN_PATCH = 'strict-plan-validation';
/** Rollouts started before the 10 s minimum analysis interval and per-metric threshold ranges. */
export const PLAN_LIMITS_PATCH = 'plan-limits';
/** From this patch on, a rolled-back rollout ends as a failed workflow (typed, carrying the result). */
export const ROLLBACK_FAILS_PATCH = 'rolled-back-fails-workflow';
/** From this patch on, the workflow refuses checks its target's metrics provider cannot measure. */
export const METRICS_OFFER_PATCH = 'metrics-offer';
/** From this patch on, a rollback caused by a cancel names who requested it, when Temporal recorded that. */
export const CANCEL_IDENTITY_PATCH = 'cancel-requester';
/**
 * From this patch on, every event has a stable id (workflow id, first run id, sequence number) and goes to each
 * routed sink in its own deliverAlert activity, started without awaiting it (one chain per sink, in order).
 * Rollouts recorded before it keep the single sendAlert activity, awaited where the event happens.
 */
export const ALERTS_PATCH = 'alert-sinks-v2';
/**
 * From this patch on a rollout never stays stuck: a read-only preflight before anything is touched (a refusal ends
 * it as not started), a rollback undoes only what the rollout changed, a person can resolve a rollback stuck on a
 * failing step, permanent query errors count against a check at once, and a rolled-back rollout names who or what
 * ended it. Decided once, at the rollout's first run, and carried in its state.
 */
export const NEVER_STUCK_PATCH = 'never-stuck';

const acts = proxyActivities<RolloutActivities>({
  startToCloseTimeout: '1 minute',
  retry: {
    initialInterval: '1 second',
    backoffCoefficient: 2,
    maximumInterval: '30 seconds',
    maximumAttempts: 10,
  },
});
// An analysis heartbeats while it queries: a worker that dies mid-round holds the rollout up ~10 s, not 30.
const analysisActs = proxyActivities<RolloutActivities>({
  startToCloseTimeout: '30 seconds',
  heartbeatTimeout: '10 seconds',
  retry: { initialInterval: '1 second', maximumAttempts: 3 },
});
// Rollback never gives up: traffic must go back to stable whatever it takes.
const rollbackActs = proxyActivities<RolloutActivities>({
  startToCloseTimeout: '1 minute',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '10 seconds' },
});
// The same steps in batches of attempts, so the workflow can say in status why a rollback is stuck, then retry.
const persistentActs = proxyActivities<RolloutActivities>({
  startToCloseTimeout: '1 minute',
  retry: {
    initialInterval: '1 second',
    backoffCoefficient: 2,
    maximumInterval: '10 seconds',
    maximumAttempts: 4,
  },
  // A person's resolve ends the step without waiting for its attempt: that attempt is left to finish or fail on its
  // own (every step is idempotent and only sends traffic to stable), no cancellation is requested.
  cancellationType: ActivityCancellationType.ABANDON,
});
const RETRY_PAUSE_MS = 30_000;
/** Time a canary or a promoted stable gets beyond its progress deadline before the activity is timed out. */
const DEADLINE_MARGIN_MS = 60_000;
// The preflight answers within seconds (its own requests time out quickly); a worker lost mid-way is noticed by the
// heartbeat, and a second attempt is all it gets: a preflight that cannot run is itself an infrastructure finding.
const preflightActs = proxyActivities<RolloutActivities>({
  startToCloseTimeout: '2 minutes',
  heartbeatTimeout: '20 seconds',
  retry: { initialInterval: '1 second', maximumAttempts: 2 },
});
// A look-up that may fail without consequence: quick, few attempts.
const lookupActs = proxyActivities<RolloutActivities>({
  startToCloseTimeout: '10 seconds',
  retry: { initialInterval: '1 second', maximumAttempts: 2 },
});
const alertActs = proxyActivities<RolloutActivities>({
  startToCloseTimeout: '15 seconds',
  retry: { initialInterval: '1 second', maximumAttempts: 3 },
});
// One event to one sink: retried with backoff, and given up after 10 minutes (a dead sink) or on a refusal. It
// heartbeats while in flight, so a delivery cut off by a worker crash is retried within 10 s, not 30.
const deliveryActs = proxyActivities<RolloutActivities>({
  startToCloseTimeout: '30 seconds',
  heartbeatTimeout: '10 seconds',
  scheduleToCloseTimeout: '10 minutes',
  retry: {
    initialInterval: '1 second',
    backoffCoefficient: 2,
    maximumInterval: '1 minute',
    nonRetryableErrorTypes: ['AlertRejected', 'AlertSinkUnknown'],
  },
});
/** Events only rollouts from alert-sinks-v2 on raise (older histories never scheduled them). */
const V2_ONLY_KINDS: readonly AlertKind[] = [
  'approved',
  'approval_reminder',
  'approval_escalated',
  'stuck',
  'rollback_started',
];
/** How long the end of a run (completion, continue-as-new) waits for deliveries still under way. */
const ALERT_FLUSH_MS = 2 * 60_000;

/** Thrown inside the walk to stop it and roll back; never leaves the workflow. */
class RollbackRequired extends Error {
  constructor(
    public readonly reason: string,
    /** Who or what asks for it: an analysis (`check`), a failed step, a gate's timeout. */
    public readonly ending: RolloutEnding = { kind: 'check' },
  ) {
    super(reason);
  }
}

/** Thrown out of a step that kept failing once a person resolved the rollback by hand (`canary resolve`). */
class ResolvedByHand extends Error {}

/** Thrown by the preflight when it refuses: the rollout ends as not started, with nothing to roll back. */
class NotStarted extends Error {}

export async function canaryRollout(input: RolloutInput): Promise<RolloutResult> {
  // Rollouts started before whole-percent weights, size bounds and the version rule validate by the rules they
  // started with.
  // A continued run keeps the rules its rollout started with (a worker upgrade between runs must not refuse
  // a plan the first run accepted); runs carried before the rules were recorded decide as they did.
  const carried = migrateCarried(input.carried);
  const carriedRules = carried?.planRules;
  const strict = carriedRules?.strict ?? patched(STRICT_PLAN_PATCH);
  const limits = carriedRules?.limits ?? (carried === undefined && strict && patched(PLAN_LIMITS_PATCH));
  const validation = validatePlan(input.plan, { strict, limits });
  if (!validation.ok) {
    // The client validates first; this guards direct starts. Nothing has been touched yet.
    throw ApplicationFailure.nonRetryable(formatProblems(validation.problems), 'InvalidPlan');
  }
  const plan = validation.plan;
  // Rollouts started before targets carried a router are only {app, namespace}: the worker's defaults apply.
  const legacyTarget = Object.keys(input.target).every((k) => k === 'app' || k === 'namespace');
  const targetCheck = legacyTarget
    ? { ok: true as const, target: { app: input.target.app, namespace: input.target.namespace } }
    : validateTarget(input.target);
  if (!targetCheck.ok) {
    throw ApplicationFailure.nonRetryable(formatTargetProblems(targetCheck.problems), 'InvalidTarget');
  }
  const target: Target = targetCheck.target;
  // Checks the target's metrics provider cannot measure are refused before anything is touched (the client
  // refuses them first; this guards direct starts). Only for new rollouts: a continued run passed this already.
  if (carried === undefined && patched(METRICS_OFFER_PATCH)) {
    const unmeasurable = metricsOfferProblems(plan, target);
    if (unmeasurable.length > 0) {
      throw ApplicationFailure.nonRetryable(formatProblems(unmeasurable), 'InvalidPlan');
    }
  }
  const badVersion = strict ? versionProblem(input.version) : undefined;
  if (badVersion) throw ApplicationFailure.nonRetryable(badVersion, 'InvalidVersion');
  const { version, image } = input;
  const info = workflowInfo();
  const routingLifecycle = patched(TARGET_PATCH);
  // Only plans in the full analysis form change judge; short-form plans keep the original one.
  const judgeV2 = plan.analysis.rules !== undefined && patched(JUDGE_PATCH);
  const alertsV2 = patched(ALERTS_PATCH);
  // How the suggested commands spell the CLI: as the CLI that started the rollout was run.
  const cli =
    typeof input.cli === 'string' && /^[\w@%+=:,./ '-]{1,200}$/.test(input.cli) ? input.cli : 'canary';
  const s: RolloutState = carried ?? initialState();
  s.planRules ??= { strict, limits };
  // Decided once, by the first run; a run continued from a rollout that started before it keeps the old behaviour.
  if (carried === undefined) s.neverStuck = patched(NEVER_STUCK_PATCH);
  if (s.neverStuck) s.touched ??= {};
  const walkScope = new CancellationScope();
  // Bumped by every message so the waiting loop re-evaluates at once.
  let messages = 0;
  let published = { phase: '', stage: -1, weight: -1 };

  // ---------- derived views ----------
  const stage = (): Stage => plan.stages[s.stageIndex];
  /** In the soak after promotion, before stable takes the new version (the previous one still runs). */
  const soaking = (): boolean => s.phase === 'promoted' && s.soak !== undefined && !s.finalizing;
  /** Waiting at the promotion gate: the final stage's hold is served, promotion waits for a person. */
  const atPromotionGate = (): boolean => s.promotionGate === 'waiting' && plan.promotion.gate !== undefined;
  /** The gate the rollout is at or comes to next: the promotion gate, or the current stage's. */
  const currentGate = (): Gate => (atPromotionGate() ? plan.promotion.gate! : stage().gate);
  const gateWaiting = (): boolean =>
    s.phase === 'progressing' &&
    !s.finalizing &&
    (atPromotionGate() || (!s.stageEntered && stage().gate.type === 'approval'));
  /** How messages name the waiting gate: `stage 3` or `the promotion (after stage 4)`. */
  const gateName = (): string =>
    atPromotionGate() ? `the promotion (after stage ${s.stageIndex + 1})` : `stage ${s.stageIndex + 1}`;
  const phase = (): Phase => {
    if (s.phase !== 'progressing') return s.phase;
    if (s.pausedSince !== undefined) return 'paused';
    return gateWaiting() || s.evidenceQuestion ? 'waiting_approval' : 'progressing';
  };
  const pausedMs = (now: number): number =>
    s.pausedMsInWait + (s.pausedSince !== undefined ? now - s.pausedSince : 0);
  /** Hold time already served in the current stage (paused time excluded); all of it at the promotion gate. */
  const heldMs = (now: number): number =>
    s.promotionGate !== undefined
      ? stage().holdMs
      : s.stageEntered && s.waitStartedAt !== undefined
        ? now - s.waitStartedAt - pausedMs(now)
        : 0;
  const stageTimeLeft = (now: number): number =>
    s.phase !== 'progressing' || s.finalizing
      ? 0
      : s.stageEntered
        ? Math.max(0, stage().holdMs - heldMs(now))
        : stage().holdMs;
  /** The stage (1-based) whose traffic the canary carries: before a stage is entered, the one before it. */
  const liveStage = (): number => (s.stageEntered ? s.stageIndex + 1 : s.stageIndex);
  /**
   * The full analysis form's checks that apply in stage `n` (a check's `stages`); undefined for short-form plans.
   * A stage none of whose checks apply moves by time alone, as a plan without checks does.
   */
  const stageChecks = (n: number) =>
    plan.analysis.rules ? checksForStage(plan.analysis.rules, n) : undefined;
  /**
   * Whether the current stage has the evidence to advance: with checks, its latest analysis passed (or a person let
   * it go on without the missing evidence). A zero hold (the final stage by default) needs none.
   */
  const stageEvidence = (): boolean =>
    !s.evidenceQuestion &&
    (plan.analysis.checks.length === 0 ||
      stageChecks(s.stageIndex + 1)?.length === 0 ||
      stage().holdMs === 0 ||
      s.evidenceWaivedStage === s.stageIndex ||
      (s.passedInStage &&
        s.lastVerdict === 'pass' &&
        healthyLongEnough(Date.now()) &&
        (!s.neverStuck || roundAfterHold())));
  /** The instant the current stage's hold is served (paused time added), undefined while paused or not entered. */
  const holdServedAt = (): number | undefined =>
    s.stageEntered && s.waitStartedAt !== undefined && s.pausedSince === undefined
      ? s.waitStartedAt + s.pausedMsInWait + stage().holdMs
      : undefined;
  /**
   * Whether the latest round was taken at or after the end of the hold (never-stuck): the last interval of a stage is
   * judged before the traffic moves on, not after.
   */
  const roundAfterHold = (): boolean => {
    const served = holdServedAt();
    return served === undefined || (s.lastAnalysisAt ?? -Infinity) >= served;
  };
  /** A stage with healthyFor: every round has passed for that long (always true without it). */
  const healthyLongEnough = (now: number): boolean => {
    const need = stage().healthyForMs;
    // From never-stuck on, within the rounds' slack (JudgeOptions.roundSlackMs).
    const slack = s.neverStuck ? roundSlackFor(plan.analysis.intervalMs) : 0;
    return need === undefined || (s.passingSince !== undefined && now - s.passingSince + slack >= need);
  };
  /** Keeps the unbroken run of passing rounds of the entered stage (healthyFor). */
  const passing = (passed: boolean, at: number): void => {
    if (!s.stageEntered) return;
    if (!passed) s.passingSince = undefined;
    else s.passingSince ??= at;
  };
  const planTimeLeft = (now: number): number =>
    s.phase !== 'progressing' || s.finalizing
      ? 0
      : stageTimeLeft(now) + plan.stages.slice(s.stageIndex + 1).reduce((sum, st) => sum + st.holdMs, 0);

  const stageState = (i: number): StageView['state'] => {
    const last = plan.stages.length - 1;
    if (s.skippedFrom !== undefined && i >= s.skippedFrom && i < last) return 'skipped';
    if (s.failedStage === i && (s.phase === 'rolling_back' || s.phase === 'rolled_back')) {
      // Failed only where a check or a step failed; a person's abort, a declined gate, a timeout or a cancel stopped it.
      return !s.ending || s.ending.kind === 'check' || s.ending.kind === 'step' ? 'failed' : 'stopped';
    }
    // At the promotion gate the final stage has served its hold.
    if (s.phase === 'promoted' || i < s.stageIndex || s.promotionGate !== undefined) return 'done';
    if (i === s.stageIndex && s.phase === 'progressing') return 'current';
    return 'pending';
  };

  /** The approval policy of the current stage's gate, if it has one. */
  const gatePolicy = (): ApprovalPolicy | undefined => {
    const g = currentGate();
    return g.type === 'approval' ? g.policy : undefined;
  };
  const gateState = () => ({ approvals: s.gateApprovals ?? [] });
  /** When the current gate reminds and escalates, paused time excluded (absent while paused). */
  const gateTimes = (now: number): { remindAtMs?: number; escalateAtMs?: number } =>
    s.waitStartedAt === undefined || s.pausedSince !== undefined
      ? {}
      : gateTimers(gatePolicy(), s.waitStartedAt + pausedMs(now));
  /** What status says about a waiting gate's policy: who approved, how many more, reminder and escalation. */
  const gatePolicyView = (now: number) => {
    const policy = gatePolicy();
    if (!policy) return {};
    const counted = countedApprovals(policy, gateState(), now);
    const times = gateTimes(now);
    return {
      required: policy.required,
      needed: approvalsNeeded(policy, gateState(), now),
      approvers: describeApprovers(policy),
      approvedBy: counted.map((a) => {
        const expires = approvalExpiresAt(policy, a);
        return {
          by: a.identity,
          at: iso(a.atMs),
          ...(expires !== undefined ? { expiresAt: iso(expires) } : {}),
        };
      }),
      ...(times.remindAtMs !== undefined && !s.gateReminded ? { remindAt: iso(times.remindAtMs) } : {}),
      ...(times.escalateAtMs !== undefined && !s.gateEscalated
        ? { escalateAt: iso(times.escalateAtMs) }
        : {}),
    };
  };

  /** What status says about evidence: a question waiting for a person, or a served hold waiting for a pass. */
  const evidenceView = (now: number): Pick<RolloutStatus, 'evidenceWait' | 'evidenceQuestion'> => {
    if (s.phase !== 'progressing' || s.finalizing) return {};
    if (s.evidenceQuestion) {
      const q = s.evidenceQuestion;
      return {
        evidenceQuestion: {
          since: iso(q.since),
          checks: q.checks,
          reasons: q.reasons,
          ...(q.breaches ? { breaches: q.breaches } : {}),
        },
      };
    }
    if (!s.stageEntered || s.waitStartedAt === undefined || s.pausedSince !== undefined) return {};
    if (s.promotionGate !== undefined) return {};
    if (stage().holdMs === 0 || heldMs(now) < stage().holdMs || stageEvidence()) return {};
    const served = s.waitStartedAt + pausedMs(now) + stage().holdMs;
    const record = s.analyses[s.analyses.length - 1];
    const last = s.lastVerdict
      ? `the latest analysis was ${s.lastVerdict}${s.neverStuck && record?.reasons?.length ? `: ${record.reasons.join('; ')}` : ''}`
      : 'no analysis has run yet';
    const need = stage().healthyForMs;
    const note =
      s.passedInStage && s.lastVerdict === 'pass' && need !== undefined
        ? `the hold is served, but stage ${s.stageIndex + 1} advances only once every analysis has passed for ` +
          `${formatDuration(need)} in a row (for ${formatDuration(s.passingSince === undefined ? 0 : now - s.passingSince)} now)`
        : `the hold is served, but stage ${s.stageIndex + 1} advances only on a passing analysis (${last})`;
    return { evidenceWait: { since: iso(served), note } };
  };

  const status = (): RolloutStatus => {
    const now = Date.now();
    const g = currentGate();
    const gate =
      gateWaiting() && s.waitStartedAt !== undefined
        ? {
            stage: s.stageIndex + 1,
            ...(atPromotionGate() ? { promotion: true as const } : {}),
            since: iso(s.waitStartedAt),
            ...(g.type === 'approval' && g.timeoutMs !== undefined
              ? { timeoutAt: iso(s.waitStartedAt + pausedMs(now) + g.timeoutMs), onTimeout: g.onTimeout }
              : {}),
            ...gatePolicyView(now),
          }
        : undefined;
    const ends =
      s.phase === 'progressing' &&
      s.stageEntered &&
      s.promotionGate === undefined &&
      s.pausedSince === undefined &&
      !s.finalizing
        ? iso(now + stageTimeLeft(now))
        : undefined;
    return {
      workflowId: info.workflowId,
      app: target.app,
      namespace: target.namespace,
      version,
      ...(image ? { image } : {}),
      ...(plan.name ? { planName: plan.name } : {}),
      requestedBy: input.requestedBy,
      phase: phase(),
      stage: s.stageIndex + 1,
      stageCount: plan.stages.length,
      weight: s.weight,
      ...(s.stageEntered && s.promotionGate === undefined && s.waitStartedAt !== undefined
        ? { stageStartedAt: iso(s.waitStartedAt) }
        : {}),
      ...(ends ? { stageEndsAt: ends } : {}),
      stageTimeLeftMs: stageTimeLeft(now),
      planTimeLeftMs: planTimeLeft(now),
      ...(s.pausedSince !== undefined
        ? {
            pausedSince: iso(s.pausedSince),
            pausedBy: s.pausedBy,
            ...(s.pauseReason ? { pauseReason: s.pauseReason } : {}),
          }
        : {}),
      target: describeTarget(target),
      ...(target.traffic ? { router: target.traffic.router } : {}),
      ...(s.stableVersion ? { stableVersion: s.stableVersion } : {}),
      ...(s.achievedWeight !== undefined && s.achievedWeight !== s.weight
        ? { achievedWeight: s.achievedWeight }
        : {}),
      ...(s.routingNote ? { routingNote: s.routingNote } : {}),
      ...(s.drift
        ? { drift: { expected: s.drift.expected, found: s.drift.found, at: iso(s.drift.at) } }
        : {}),
      ...(s.retrying
        ? {
            retrying: {
              ...s.retrying,
              since: iso(s.retrying.since),
              ...(s.neverStuck ? { resolve: resolveCommand() } : {}),
            },
          }
        : {}),
      ...(s.capacityNote ? { capacityNote: s.capacityNote } : {}),
      ...(s.steppedBack
        ? {
            steppedBack: {
              stageWeight: s.steppedBack.stageWeight,
              toWeight: s.steppedBack.toWeight,
              since: iso(s.steppedBack.at),
            },
          }
        : {}),
      ...(gate ? { gate } : {}),
      ...(s.windowWait && s.phase === 'progressing'
        ? {
            window: {
              open: false as const,
              note: s.windowWait.note,
              ...(s.windowWait.nextOpenAt !== undefined ? { nextOpenAt: iso(s.windowWait.nextOpenAt) } : {}),
            },
          }
        : {}),
      ...evidenceView(now),
      analyses: s.analyses,
      analysesRun: s.analysesRun ?? s.analyses.length,
      ...(s.lastVerdict ? { lastVerdict: s.lastVerdict } : {}),
      approvals: s.approvals,
      ...(s.rollbackReason ? { rollbackReason: s.rollbackReason } : {}),
      ...(s.ending && (s.phase === 'rolling_back' || s.phase === 'rolled_back') ? { ending: s.ending } : {}),
      ...(s.resolved ? { resolved: s.resolved } : {}),
      ...(s.preflight ? { preflight: s.preflight } : {}),
      ...(s.finalizing && (s.phase === 'progressing' || s.soak) ? { promoting: true as const } : {}),
      ...(soaking()
        ? {
            soak: {
              until: iso(s.soak!.until),
              ...(s.soak!.previousVersion ? { previousVersion: s.soak!.previousVersion } : {}),
            },
          }
        : {}),
      ...(s.promotedAt !== undefined ? { promotedAt: iso(s.promotedAt) } : {}),
      stages: plan.stages.map((st, i) => ({
        stage: i + 1,
        weight: st.weight,
        holdMs: st.holdMs,
        gate: st.gate.type,
        state: stageState(i),
      })),
      ...(plan.promotion.gate ? { promotionGate: 'approval' as const } : {}),
      run: s.run,
    };
  };

  /** Search attributes and current details: what the Web UI shows. Upserts only on change (each is a history event). */
  const publish = (): void => {
    const p = phase();
    const st = s.stageIndex + 1;
    if (p !== published.phase || st !== published.stage || s.weight !== published.weight) {
      upsertSearchAttributes([
        // App and version ride along with the first upsert of a run, for rollouts not started by our client.
        ...(published.stage === -1
          ? [
              { key: SA_APP, value: target.app },
              { key: SA_VERSION, value: version },
            ]
          : []),
        { key: SA_PHASE, value: p },
        { key: SA_STAGE, value: st },
        { key: SA_WEIGHT, value: s.weight },
      ]);
      published = { phase: p, stage: st, weight: s.weight };
    }
    setCurrentDetails(renderDetails(status(), plan, cli));
  };

  // ---------- alerts ----------
  /** The sinks this worker delivers to (names only), asked once per run (alert-sinks-v2). */
  let sinkNames: string[] | undefined;
  /** Events raised before the sinks are known (a signal in the run's first activation): routed once they are. */
  const early: RolloutAlert[] = [];
  /** One chain of deliveries per sink: a sink's events stay in order, sinks do not wait for each other. */
  const chains = new Map<string, Promise<void>>();
  let pendingDeliveries = 0;

  const lastVerdict = (): AlertVerdict | undefined => {
    const last = s.analyses[s.analyses.length - 1];
    if (!last) return undefined;
    return {
      verdict: last.verdict,
      at: last.at,
      checks: last.checks.map((c) => ({ name: c.name, value: c.value, outcome: c.judged ?? c.outcome })),
    };
  };

  /** Starts one delivery after the sink's previous one; never awaited where the event happens. */
  const enqueue = (sink: string, e: RolloutAlert): void => {
    pendingDeliveries++;
    const previous = chains.get(sink) ?? Promise.resolve();
    // Not cancellable: an abort or a cancel of the walk must not cancel an alert about it.
    const next = CancellationScope.nonCancellable(async () => {
      await previous;
      try {
        await deliveryActs.deliverAlert.executeWithOptions({ summary: `alert ${e.kind} → ${sink}` }, [
          sink,
          e,
        ]);
      } catch (err) {
        // An alert that cannot be delivered never blocks the rollout, and never blocks a rollback.
        log.warn('alert not delivered', { sink, id: e.id, error: errorMessage(err) });
      } finally {
        pendingDeliveries--;
      }
    });
    chains.set(sink, next);
  };

  /** Raises an event (alert-sinks-v2): a stable id, then a delivery to each sink the plan routes it to. */
  const emit = (
    kind: AlertKind,
    message: string,
    extra: Partial<Omit<RolloutAlertInput, 'kind' | 'message'>> = {},
    fromHandler = false,
  ): void => {
    if (!alertsV2) return;
    s.alertSeq = (s.alertSeq ?? 0) + 1;
    const verdict = lastVerdict();
    const e = buildRolloutAlert({
      workflowId: info.workflowId,
      firstRunId: info.firstExecutionRunId,
      seq: s.alertSeq,
      kind,
      target: { app: target.app, namespace: target.namespace },
      version,
      message,
      at: iso(Date.now()),
      stage: s.stageIndex + 1,
      stages: plan.stages.length,
      weight: s.weight,
      temporalNamespace: info.namespace,
      cli,
      ...(verdict ? { lastVerdict: verdict } : {}),
      // The end of a rollout resolves every check's condition too (PagerDuty keeps no list of what is open).
      ...(kind === 'promoted' || kind === 'rolled_back'
        ? { resolves: plan.analysis.checks.map((c) => `check:${c.name}`) }
        : {}),
      ...extra,
    });
    // A handler's deliveries start when the walk next runs, never inside the handler: on replay an Update may
    // be delivered together with activity results it originally preceded, and a delivery started in the handler
    // would then be scheduled in another order than history recorded.
    if (sinkNames === undefined || fromHandler) early.push(e);
    else route(e);
  };
  /** Starts the deliveries of events raised before the sinks were known or by handlers. */
  const routeEarly = (): void => {
    if (sinkNames !== undefined) early.splice(0).forEach(route);
  };
  const route = (e: RolloutAlert): void => {
    for (const sink of sinkNames ?? []) {
      if (routes(plan.alerts?.routes, sink, e)) enqueue(sink, e);
    }
  };

  /** Before the run ends (completion, continue-as-new): the deliveries under way finish, within a bound. */
  const flushAlerts = async (): Promise<void> => {
    routeEarly();
    if (!alertsV2 || pendingDeliveries === 0) return;
    await condition(() => pendingDeliveries === 0, ALERT_FLUSH_MS, { summary: 'deliver the last alerts' });
  };

  /**
   * Sends an alert. From alert-sinks-v2 on it only starts the deliveries (nothing waits for a sink); before it,
   * from the walk a cancellation still stops the walk, and from handlers nothing propagates.
   */
  const alert = async (
    event: AlertKind,
    severity: AlertSeverity,
    message: string,
    fromHandler = false,
    extra: Partial<Omit<RolloutAlertInput, 'kind' | 'message'>> = {},
  ): Promise<void> => {
    if (alertsV2) {
      emit(event, message, { severity, ...extra }, fromHandler);
      return;
    }
    // Kinds that came with alert-sinks-v2 were never sent by older rollouts.
    if (V2_ONLY_KINDS.includes(event)) return;
    const e: AlertEvent = {
      event,
      severity,
      target,
      version,
      workflowId: info.workflowId,
      message,
      stage: s.stageIndex + 1,
      weight: s.weight,
      at: iso(Date.now()),
    };
    try {
      await alertActs.sendAlert.executeWithOptions({ summary: `alert: ${event}` }, [e]);
    } catch (err) {
      if (!fromHandler && isCancellation(err)) throw err;
      // An alert that cannot be delivered never blocks the rollout, and never blocks a rollback.
      log.warn('alert not delivered', { event, error: String(err) });
    }
  };

  // ---------- messages ----------
  setHandler(statusQuery, status);

  setHandler(
    approveUpdate,
    (req) => {
      const now = Date.now();
      if (s.evidenceQuestion && !gateWaiting()) {
        // Going on without the missing evidence: the checks count afresh, so the question comes back only after
        // another full limit.
        const q = s.evidenceQuestion;
        s.evidenceQuestion = undefined;
        s.judge = acknowledgeMissingEvidence(
          s.judge ?? initialJudgeState(),
          q.checks.length > 0 ? q.checks : undefined,
        );
        // A breach that asked is accepted in the judge (it no longer holds the stage); only missing evidence
        // waives the stage's need for a passing analysis.
        const onlyBreaches =
          q.breaches !== undefined && q.checks.length > 0 && q.checks.every((c) => q.breaches?.includes(c));
        if (!onlyBreaches) s.evidenceWaivedStage = s.stageIndex;
        const waived: ApprovalRecord = {
          stage: s.stageIndex + 1,
          by: req.identity,
          at: iso(now),
          kind: onlyBreaches ? 'breach-accepted' : 'missing-evidence',
          ...(req.comment ? { comment: req.comment } : {}),
        };
        pushBounded(s.approvals, waived, MAX_APPROVALS_KEPT);
        messages++;
        publish();
        return waived;
      }
      const policy = gatePolicy();
      const record: ApprovalRecord = {
        stage: s.stageIndex + 1,
        ...(atPromotionGate() ? { promotion: true } : {}),
        by: policy ? req.identity.trim() : req.identity,
        at: iso(now),
        kind: 'approved',
        ...(req.comment ? { comment: req.comment } : {}),
      };
      if (policy) {
        // Under a policy the gate passes once enough distinct, unexpired approvals are in (the walk decides).
        s.gateApprovals = recordApproval(gateState(), req.identity, now, req.comment).approvals;
        const expires = approvalExpiresAt(policy, { identity: record.by, atMs: now });
        record.required = policy.required;
        record.count = policy.required - approvalsNeeded(policy, gateState(), now);
        if (expires !== undefined) record.expiresAt = iso(expires);
      } else {
        s.approvedStage = s.stageIndex;
      }
      pushBounded(s.approvals, record, MAX_APPROVALS_KEPT);
      messages++;
      if (policy) publish();
      return record;
    },
    {
      validator: (req) => {
        if (s.evidenceQuestion && !gateWaiting() && s.phase === 'progressing') {
          if (req.stage !== undefined && req.stage !== s.stageIndex + 1) {
            throw new Error(`stage ${req.stage} is not waiting for approval; stage ${s.stageIndex + 1} is`);
          }
          return;
        }
        if (!gateWaiting()) {
          throw new Error(
            `no approval gate is waiting: the rollout is ${phase()} at stage ${s.stageIndex + 1}/${plan.stages.length}`,
          );
        }
        if (req.stage !== undefined && req.stage !== s.stageIndex + 1) {
          throw new Error(`stage ${req.stage} is not waiting for approval; ${gateName()} is`);
        }
        if (s.approvedStage === s.stageIndex) throw new Error(`${gateName()} is already approved`);
        const policy = gatePolicy();
        if (policy) {
          const check = canApprove(policy, gateState(), req.identity ?? '', Date.now());
          if (!check.ok) throw new Error(check.reason);
        }
      },
    },
  );

  setHandler(
    promoteUpdate,
    (req) => {
      if (soaking()) {
        // Promoted already: `promote --end-soak` during the soak finishes it now (stable takes the new version).
        s.soak!.endNow = { by: req.identity, at: Date.now() };
        messages++;
        publish();
        return { fromStage: s.stageIndex + 1, acceptedAt: iso(Date.now()) };
      }
      s.promoteRequest = { by: req.identity, at: Date.now(), fromStage: s.stageIndex + 1 };
      pushBounded(
        s.approvals,
        {
          stage: s.stageIndex + 1,
          by: req.identity,
          at: iso(Date.now()),
          kind: 'promote',
          ...(req.comment ? { comment: req.comment } : {}),
        },
        MAX_APPROVALS_KEPT,
      );
      messages++;
      return { fromStage: s.stageIndex + 1, acceptedAt: iso(Date.now()) };
    },
    {
      validator: (req) => {
        if (soaking()) {
          if (s.soak?.endNow) throw new Error('the soak is already ending: stable takes the new version now');
          if (req.endSoak) return;
          throw new Error(
            `cannot promote: the rollout is promoted and soaks until ${iso(s.soak!.until)} (the previous version ` +
              `keeps running meanwhile); to end the soak now: ${cli} promote ${info.workflowId} --end-soak`,
          );
        }
        if (req.endSoak) throw new Error(`cannot end the soak: the rollout is ${phase()}, not soaking`);
        if (s.phase !== 'progressing') throw new Error(`cannot promote: the rollout is ${s.phase}`);
        if (s.pausedSince !== undefined)
          throw new Error('cannot promote: the rollout is paused; resume it first');
        if (s.promoteRequest || s.finalizing) throw new Error('promotion is already under way');
        // A promotion skips the remaining gates: under a policy it passes each only with what approving it would
        // take (the two-person rule holds on every path).
        const who = (req.identity ?? '').trim();
        const from = s.stageEntered ? s.stageIndex + 1 : s.stageIndex;
        const skipped = plan.stages.slice(from).map((st, k) => ({
          gate: st.gate,
          name: `stage ${from + k + 1}`,
          waiting: from + k === s.stageIndex,
        }));
        if (plan.promotion.gate && s.promotionGate !== 'passed') {
          skipped.push({ gate: plan.promotion.gate, name: 'the promotion', waiting: atPromotionGate() });
        }
        for (const { gate: g, name, waiting } of skipped) {
          if (g.type !== 'approval' || !g.policy) continue;
          // Validators do not run on replay, so this holds for rollouts in flight too. The approvals a waiting gate
          // holds count with the requester's; a gate not reached yet holds none.
          const refusal = promotionRefusal(
            g.policy,
            waiting ? gateState() : undefined,
            who,
            Date.now(),
            name,
          );
          if (refusal) throw new Error(refusal);
        }
      },
    },
  );

  setHandler(abortSignal, async (req) => {
    // Idempotent: only the first abort counts, and a promotion under way is not undone.
    if (s.abortRequest || s.finalizing) return;
    if (soaking()) {
      // During the soak the previous version still runs: an abort goes back to it.
      s.abortRequest = { by: req.identity, reason: req.reason, back: true };
      messages++;
      walkScope.cancel();
      return;
    }
    if (s.phase !== 'progressing') return;
    // An abort while a gate or a question waits declines it: a person said no, nothing failed.
    const declined = gateWaiting()
      ? `the gate of ${atPromotionGate() ? 'the promotion' : `stage ${s.stageIndex + 1}`}`
      : s.evidenceQuestion
        ? `the question about ${s.evidenceQuestion.checks.join(', ') || 'missing evidence'}`
        : undefined;
    s.abortRequest = { by: req.identity, reason: req.reason, ...(declined ? { declined } : {}) };
    messages++;
    walkScope.cancel();
  });

  /** The step that keeps failing, while it runs one attempt (a resolve cancels it). */
  let stepScope: CancellationScope | undefined;
  setHandler(
    resolveUpdate,
    (req) => {
      const record: ResolveRecord = {
        by: req.identity.trim(),
        reason: req.reason.trim(),
        at: iso(Date.now()),
        ...(s.retrying ? { step: s.retrying.step } : {}),
      };
      s.resolved = record;
      pushBounded(
        s.approvals,
        { stage: s.stageIndex + 1, by: record.by, at: record.at, kind: 'resolved', comment: record.reason },
        MAX_APPROVALS_KEPT,
      );
      messages++;
      stepScope?.cancel();
      publish();
      return record;
    },
    {
      validator: (req) => {
        if (req.confirmTrafficRestored !== true) {
          throw new Error(
            'resolve needs --confirm-traffic-restored: check by hand that all traffic is on stable first, then say so',
          );
        }
        if (!req.reason?.trim()) throw new Error('resolve needs a reason (--reason): what was done by hand');
        const who = req.identity?.trim() ?? '';
        if (who === '' || who === UNKNOWN_IDENTITY)
          throw new Error('resolve needs a named person (--as NAME)');
        if (s.resolved) throw new Error(`already resolved by ${s.resolved.by} at ${s.resolved.at}`);
        if (!s.neverStuck) {
          throw new Error(
            'this rollout started before resolve existed: fix what its step needs (the worker retries it), or terminate its workflow once traffic is on stable',
          );
        }
        const stuck = s.retrying && (s.phase === 'rolling_back' || s.finalizing);
        if (!stuck) {
          throw new Error(
            `nothing to resolve: the rollout is ${phase()} and no rollback step keeps failing; resolve ends only a ` +
              'rollback (or the return to stable after a promotion) stuck on a step that keeps failing',
          );
        }
      },
    },
  );

  /** Why a pause would change nothing, or undefined when it would pause. */
  const pauseRefusal = (): string | undefined => {
    if (s.phase !== 'progressing') return `cannot pause: the rollout is ${s.phase}`;
    if (s.finalizing) return 'cannot pause: promotion is under way';
    if (s.pausedSince !== undefined) {
      return `already paused since ${iso(s.pausedSince)} by ${s.pausedBy}${s.pauseReason ? ` (${s.pauseReason})` : ''}`;
    }
    return undefined;
  };
  const resumeRefusal = (): string | undefined =>
    s.pausedSince === undefined
      ? `not paused: the rollout is ${phase()} at stage ${s.stageIndex + 1}/${plan.stages.length}`
      : undefined;

  const doPause = (req: PauseRequest): PauseAck => {
    s.pausedSince = Date.now();
    s.pausedBy = req.identity;
    s.pauseReason = req.reason;
    messages++;
    publish();
    return { at: iso(s.pausedSince), by: req.identity, stage: s.stageIndex + 1 };
  };
  const doResume = (req: PauseRequest): PauseAck => {
    s.pausedMsInWait += Date.now() - (s.pausedSince ?? Date.now());
    s.pausedSince = undefined;
    s.pausedBy = undefined;
    s.pauseReason = undefined;
    messages++;
    publish();
    return { at: iso(Date.now()), by: req.identity, stage: s.stageIndex + 1 };
  };
  const pausedAlert = (req: PauseRequest) =>
    alert(
      'paused',
      'info',
      `${label()} paused by ${req.identity}${req.reason ? `: ${req.reason}` : ''}`,
      true,
      { by: req.identity, ...(req.reason ? { reason: req.reason } : {}) },
    );
  const resumedAlert = (req: PauseRequest) =>
    alert('resumed', 'info', `${label()} resumed by ${req.identity}`, true, { by: req.identity });

  setHandler(pauseSignal, async (req) => {
    if (pauseRefusal()) return;
    doPause(req);
    await pausedAlert(req);
  });
  setHandler(resumeSignal, async (req) => {
    if (resumeRefusal()) return;
    doResume(req);
    await resumedAlert(req);
  });
  setHandler(
    pauseUpdate,
    async (req) => {
      const ack = doPause(req);
      await pausedAlert(req);
      return ack;
    },
    {
      validator: (_req) => {
        const refusal = pauseRefusal();
        if (refusal) throw new Error(refusal);
      },
    },
  );
  setHandler(
    resumeUpdate,
    async (req) => {
      const ack = doResume(req);
      await resumedAlert(req);
      return ack;
    },
    {
      validator: (_req) => {
        const refusal = resumeRefusal();
        if (refusal) throw new Error(refusal);
      },
    },
  );

  const label = (): string => `${target.namespace}/${target.app} ${version}`;
  const routerName = (): string => target.traffic?.router ?? 'default';

  /**
   * Someone else changed the weights. The rollout does not fight an operator: it pauses (analysis goes on and
   * still rolls back on failure), and a resume puts the planned weight back.
   */
  const driftDetected = async (expected: number, found: number): Promise<void> => {
    s.drift = { expected, found, at: Date.now() };
    if (s.pausedSince === undefined) {
      s.pausedSince = Date.now();
      s.pausedBy = 'drift detection';
      s.pauseReason = `the canary weight is ${found}%, not the ${expected}% this rollout set`;
    }
    messages++;
    publish();
    await alert(
      'drift_detected',
      'warning',
      `${label()}: someone changed the traffic weights (canary at ${found}%, the rollout set ${expected}%); ` +
        `the rollout is paused. Resume to restore ${s.weight}%: ${cli} resume ${info.workflowId}; or abort: ${cli} abort ${info.workflowId} --reason "why"`,
    );
  };

  /**
   * Runs a step that must not give up; between batches of attempts, status says why it is stuck. From never-stuck
   * on, the first failed batch alerts with the way out, and a person's resolve ends the step (ResolvedByHand), even
   * mid-attempt.
   */
  const persist = async <T>(step: string, run: () => Promise<T>): Promise<T> => {
    for (let attempts = 1; ; attempts++) {
      if (s.resolved) throw new ResolvedByHand();
      try {
        let result: T;
        if (s.neverStuck) {
          stepScope = new CancellationScope();
          result = await stepScope.run(run);
        } else {
          result = await run();
        }
        if (s.retrying) {
          s.retrying = undefined;
          publish();
        }
        return result;
      } catch (err) {
        if (s.resolved) throw new ResolvedByHand();
        s.retrying = { step, attempts, error: errorMessage(err), since: s.retrying?.since ?? Date.now() };
        publish();
        log.warn('step keeps failing; retrying', { step, attempts, error: errorMessage(err) });
        if (!s.neverStuck) {
          await sleep(RETRY_PAUSE_MS);
          continue;
        }
        if (attempts === 1) {
          await alert(
            'stuck',
            'critical',
            `${label()} cannot ${step}: ${errorMessage(err)}. It retries every ${formatDuration(RETRY_PAUSE_MS)}; ` +
              `fix what the step needs, or once all traffic is on stable (moved by hand), end it: ${resolveCommand()}`,
            false,
            { commands: { status: `${cli} status ${info.workflowId}`, resolve: resolveCommand() } },
          );
        }
        const seen = s.resolved;
        await condition(() => s.resolved !== seen, RETRY_PAUSE_MS, { summary: `retry: ${step}` });
      } finally {
        stepScope = undefined;
      }
    }
  };
  const resolveCommand = (): string =>
    `${cli} resolve ${info.workflowId} --confirm-traffic-restored --reason "what was done"`;

  // ---------- the walk ----------
  const analysisActive = (): boolean =>
    plan.analysis.checks.length > 0 &&
    stageChecks(liveStage())?.length !== 0 &&
    s.canaryReady &&
    s.weight > 0;

  /** One round of the full analysis form: measure, judge, act by the decision's severity. */
  const analyseV2 = async (): Promise<void> => {
    const rules = stageChecks(liveStage()) ?? [];
    const answer = await analysisActs.measureChecks.executeWithOptions(
      { summary: `analyse canary at ${s.weight}% (${rules.map((c) => c.name).join(', ')})` },
      [
        {
          target,
          checks: rules,
          versions: { canary: version, ...(s.stableVersion ? { stable: s.stableVersion } : {}) },
          checkWeight: true,
        },
      ],
    );
    if (answer.liveWeight !== undefined && !s.drift && !s.finalizing) {
      const expected = s.achievedWeight ?? s.weight;
      if (answer.liveWeight !== expected) await driftDetected(expected, answer.liveWeight);
    }
    const now = Date.now();
    // From never-stuck on, a query the source rejects fails its check at once (an invalid query is no outage).
    const { state, decision } = judgeRound(rules, answer.measurements, now, s.judge, {
      permanentQueryErrors: s.neverStuck === true,
      ...(s.neverStuck ? { roundSlackMs: roundSlackFor(plan.analysis.intervalMs) } : {}),
    });
    s.judge = state;
    s.lastAnalysisAt = now;
    const { advances, verdict } = roundOutcome(decision);
    s.lastVerdict = verdict;
    s.analysesRun = (s.analysesRun ?? s.analyses.length) + 1;
    pushBounded(
      s.analyses,
      {
        stage: s.stageIndex + 1,
        weight: s.weight,
        at: iso(now),
        verdict,
        checks: decision.perCheck.map((v): CheckResult => ({
          name: v.name,
          value: v.value,
          outcome:
            v.outcome === 'pass' || v.outcome === 'marginal'
              ? 'pass'
              : v.outcome === 'breach' || v.outcome === 'fail'
                ? 'fail'
                : 'no_data',
          judged: v.outcome,
          note: v.note,
          ...(v.baseline !== undefined ? { baseline: v.baseline } : {}),
          ...(v.band ? { band: v.band } : {}),
          ...(v.severity ? { severity: v.severity } : {}),
        })),
        action: decision.action,
        reasons: decision.reasons,
      },
      MAX_ANALYSES_KEPT,
    );
    // A rollback goes first: this round's alerts must not delay it (the rollback alerts by itself).
    if (decision.action === 'rollback') {
      throw new RollbackRequired(`analysis at ${s.weight}%: ${decision.reasons.join('; ')}`);
    }
    if (advances && s.stageEntered) s.passedInStage = true;
    passing(advances, now);
    if (decision.action === 'await-approval' && !s.evidenceQuestion && !s.finalizing) {
      const breaches = decision.breachApprovalFor;
      s.evidenceQuestion = {
        checks: decision.approvalFor ?? [],
        since: now,
        reasons: decision.reasons,
        ...(breaches ? { breaches } : {}),
      };
      const approve = `${cli} approve ${info.workflowId} --stage ${s.stageIndex + 1}`;
      const abort = `${cli} abort ${info.workflowId} --reason "why"`;
      if (breaches) {
        // The hybrid decision (abort.then: approval): the breach asks a person before it rolls back.
        const rule = rules.find((r) => r.name === breaches[0]);
        const severity = rule?.abort?.severity as CheckSeverity | undefined;
        await alert(
          'approval_needed',
          'critical',
          `${label()}: ${decision.reasons.join('; ')}. Traffic holds at ${s.weight}%: accept it and go on with ` +
            `${approve}, or roll back with ${abort}`,
          false,
          { check: { name: breaches[0], ...(severity ? { severity } : {}) } },
        );
      } else {
        await alert(
          'stuck',
          'critical',
          `${label()}: ${decision.reasons.join('; ')}. Traffic holds at ${s.weight}%: go on without that evidence with ` +
            `${approve}, or roll back with ${abort}`,
        );
      }
    } else if (s.evidenceQuestion && advances) {
      // The evidence came back by itself: nobody needs to decide any more.
      s.evidenceQuestion = undefined;
    } else if (s.evidenceQuestion?.breaches && decision.action !== 'await-approval') {
      // The breach that asked has ended by itself (the judge asks no more): the question is moot.
      s.evidenceQuestion = undefined;
    }
    if (decision.steppedBack && !s.steppedBack && !s.finalizing) {
      const previous = s.stageIndex > 0 ? plan.stages[s.stageIndex - 1].weight : undefined;
      // In the first stage no earlier weight still carries canary traffic: the judge's hold applies instead.
      if (previous !== undefined && s.stageEntered) {
        s.steppedBack = { stageWeight: s.weight, toWeight: previous, at: now };
        await shift(previous, 'step back after a medium breach');
        await alert(
          'stepped_back',
          'warning',
          `${label()}: traffic stepped back from ${s.steppedBack.stageWeight}% to ${previous}%: ${decision.reasons.join('; ')}`,
        );
      }
    } else if (!decision.steppedBack && s.steppedBack) {
      const back = s.steppedBack;
      s.steppedBack = undefined;
      await shift(back.stageWeight, 'forward again after a healthy period');
      await alert(
        'stepped_forward',
        'info',
        `${label()}: healthy again; traffic back to ${back.stageWeight}%`,
      );
    }
    for (const a of decision.alerts) {
      const rule = rules.find((r) => r.name === a.check);
      const severity = rule?.abort?.severity as CheckSeverity | undefined;
      // Evidence missing for longer than the check allows, and the stage holds: the rollout is stuck.
      const stuck = alertsV2 && a.stuck === true;
      await alert(
        stuck ? 'stuck' : 'check_breached',
        stuck ? 'critical' : a.level,
        `${label()}: ${a.check}: ${a.message}`,
        false,
        {
          check: { name: a.check, ...(severity ? { severity } : {}) },
        },
      );
    }
    publish();
  };

  const analyse = async (): Promise<void> => {
    if (judgeV2) return analyseV2();
    const answer: AnalysisResult | CheckMeasurement[] = await analysisActs.runAnalysis.executeWithOptions(
      { summary: `analyse canary at ${s.weight}% (${plan.analysis.checks.map((c) => c.name).join(', ')})` },
      [
        {
          target,
          checks: plan.analysis.checks,
          windowSeconds: analysisWindowSeconds(plan),
          ...(routingLifecycle ? { checkWeight: true } : {}),
          versions: { canary: version, ...(s.stableVersion ? { stable: s.stableVersion } : {}) },
        },
      ],
    );
    // Rollouts recorded before drift checks got the measurements alone.
    const measurements = Array.isArray(answer) ? answer : answer.measurements;
    if (!Array.isArray(answer) && answer.liveWeight !== undefined && !s.drift && !s.finalizing) {
      const expected = s.achievedWeight ?? s.weight;
      if (answer.liveWeight !== expected) await driftDetected(expected, answer.liveWeight);
    }
    const { verdict, checks } = judge(plan.analysis.checks, measurements);
    s.lastAnalysisAt = Date.now();
    s.lastVerdict = verdict;
    s.analysesRun = (s.analysesRun ?? s.analyses.length) + 1;
    pushBounded(
      s.analyses,
      { stage: s.stageIndex + 1, weight: s.weight, at: iso(s.lastAnalysisAt), verdict, checks },
      MAX_ANALYSES_KEPT,
    );
    const summary = describeResults(plan.analysis.checks, checks);
    passing(verdict === 'pass', s.lastAnalysisAt);
    if (verdict === 'pass') {
      s.consecutiveFailures = 0;
      s.consecutiveInconclusive = 0;
      if (s.stageEntered) s.passedInStage = true;
    } else if (verdict === 'fail') {
      s.consecutiveFailures++;
      s.consecutiveInconclusive = 0;
      if (s.consecutiveFailures >= plan.analysis.failureLimit) {
        throw new RollbackRequired(
          `analysis failed ${s.consecutiveFailures} time(s) in a row at ${s.weight}%: ${summary}`,
        );
      }
    } else {
      s.consecutiveInconclusive++;
      if (s.consecutiveInconclusive >= plan.analysis.inconclusiveLimit) {
        throw new RollbackRequired(
          `no metric evidence for ${s.consecutiveInconclusive} analyses in a row at ${s.weight}%: ${summary}`,
        );
      }
    }
    publish();
  };

  const historyLimit = input.options?.continueAsNewAfterEvents ?? DEFAULT_CONTINUE_AS_NEW_AFTER_EVENTS;
  const maybeContinueAsNew = async (): Promise<void> => {
    const i = workflowInfo();
    if (!i.continueAsNewSuggested && i.historyLength < historyLimit) return;
    // Let in-flight handlers (alerts from pause/resume) finish so nothing is lost across runs.
    await condition(allHandlersFinished);
    await flushAlerts();
    await continueAsNew<typeof canaryRollout>({ ...input, carried: carryOver(s) });
  };

  /**
   * Runs the analysis schedule until `done()` holds. `deadline()` is the caller's own next point in time
   * (a hold's end or a gate's timeout), undefined when only a message or an analysis can change things.
   */
  const watch = async (
    done: () => boolean,
    deadline: () => number | undefined,
    what: string,
    /** An analysis due earlier than the schedule says (the round at a hold's end), if any. */
    roundDue?: () => number | undefined,
  ): Promise<void> => {
    for (;;) {
      routeEarly();
      if (s.drift && s.pausedSince === undefined && !s.finalizing) {
        // A person resumed after drift: the planned weight goes back first.
        s.drift = undefined;
        await shift(s.weight, 'restore the planned weight after drift', { restoring: true });
        publish();
        continue;
      }
      if (done()) return;
      const now = Date.now();
      const analysisDue = analysisActive()
        ? Math.min((s.lastAnalysisAt ?? now) + plan.analysis.intervalMs, roundDue?.() ?? Infinity)
        : undefined;
      if (analysisDue !== undefined && now >= analysisDue) {
        await analyse();
        continue;
      }
      await maybeContinueAsNew();
      const d = deadline();
      const wakeAt = Math.min(analysisDue ?? Infinity, d !== undefined && d > now ? d : Infinity);
      const seen = messages;
      if (wakeAt === Infinity) {
        await condition(() => messages !== seen);
      } else {
        const next = analysisDue === wakeAt ? 'next analysis' : what;
        await condition(() => messages !== seen, Math.max(1, wakeAt - now), { summary: next });
      }
    }
  };

  /** The current gate: a stage's before its shift, or the promotion gate after the final stage's hold. */
  const passGate = async (): Promise<void> => {
    const g = currentGate();
    if (g.type !== 'approval') return;
    const n = s.stageIndex + 1;
    const promotion = atPromotionGate();
    /** What the gate guards, in messages: `stage 2` or `the promotion`. */
    const subject = promotion ? 'the promotion' : `stage ${n}`;
    const policy = g.policy;
    const needs = (): string =>
      policy
        ? ` (${approvalsNeeded(policy, gateState(), Date.now())} of ${policy.required} approvals still needed; approvers: ${describeApprovers(policy)})`
        : '';
    const command = `${cli} approve ${info.workflowId} --stage ${n}`;
    /** What the approval lets happen, e.g. `enter stage 2 (25%)` or `promote v2 (stage 4 at 100% served its hold)`. */
    const step = promotion
      ? `promote ${version} (stage ${n} at ${stage().weight}% served its hold)`
      : `enter stage ${n} (${stage().weight}%)`;
    if (s.waitStartedAt === undefined) {
      s.waitStartedAt = Date.now();
      s.pausedMsInWait = 0;
      publish();
      await alert(
        'approval_needed',
        'warning',
        `${label()} waits for approval to ${step}: ${command}${needs()}`,
      );
    }
    const approved = (): boolean =>
      s.approvedStage === s.stageIndex ||
      (policy !== undefined && gateSatisfied(policy, gateState(), Date.now()));
    const reminderDue = (): boolean => {
      const t = gateTimes(Date.now()).remindAtMs;
      return !s.gateReminded && t !== undefined && Date.now() >= t;
    };
    const escalationDue = (): boolean => {
      const t = gateTimes(Date.now()).escalateAtMs;
      return !s.gateEscalated && t !== undefined && Date.now() >= t;
    };
    const timeoutAt = (): number | undefined =>
      g.timeoutMs !== undefined && s.waitStartedAt !== undefined && s.pausedSince === undefined
        ? s.waitStartedAt + pausedMs(Date.now()) + g.timeoutMs
        : undefined;
    const timedOut = (): boolean => {
      const t = timeoutAt();
      return t !== undefined && Date.now() >= t;
    };
    /** The gate's next point in time: its timeout, reminder or escalation, whichever comes first. */
    const nextAt = (): number | undefined => {
      const times = gateTimes(Date.now());
      // An approval that expires changes what the gate needs: wake then, so status says so on time.
      const expiries = policy
        ? countedApprovals(policy, gateState(), Date.now()).map((a) => approvalExpiresAt(policy, a))
        : [];
      const candidates = [
        timeoutAt(),
        s.gateReminded ? undefined : times.remindAtMs,
        s.gateEscalated ? undefined : times.escalateAtMs,
        ...expiries,
      ].filter((t): t is number => t !== undefined);
      return candidates.length > 0 ? Math.min(...candidates) : undefined;
    };
    for (;;) {
      await watch(
        () =>
          s.pausedSince === undefined &&
          (approved() || s.promoteRequest !== undefined || timedOut() || reminderDue() || escalationDue()),
        nextAt,
        `approval gate of ${subject}`,
      );
      if (approved() || s.promoteRequest || timedOut()) break;
      const waited = formatDuration(Date.now() - (s.waitStartedAt ?? Date.now()) - pausedMs(Date.now()));
      if (escalationDue()) {
        // An escalation says everything a reminder would: a reminder still due is not sent after it.
        s.gateEscalated = true;
        s.gateReminded = true;
        publish();
        await alert(
          'approval_escalated',
          'critical',
          `${label()} has waited ${waited} for approval to ${step}: ${command}${needs()}`,
        );
      } else if (reminderDue()) {
        s.gateReminded = true;
        publish();
        await alert(
          'approval_reminder',
          'warning',
          `${label()} still waits (${waited}) for approval to ${step}: ${command}${needs()}`,
        );
      }
    }
    if (approved()) {
      s.approvedStage = s.stageIndex;
      const by = policy
        ? countedApprovals(policy, gateState(), Date.now()).map((a) => a.identity)
        : s.approvals
            .filter((a) => a.kind === 'approved' && a.stage === n && (a.promotion ?? false) === promotion)
            .map((a) => a.by)
            .slice(-1);
      await alert(
        'approved',
        'info',
        `${label()}: ${subject} approved by ${by.join(', ') || 'unknown'}`,
        false,
        {
          by: by.join(', '),
        },
      );
      return;
    }
    if (s.promoteRequest) return;
    if (g.onTimeout === 'proceed') {
      pushBounded(
        s.approvals,
        {
          stage: n,
          ...(promotion ? { promotion: true } : {}),
          by: 'gate timeout',
          at: iso(Date.now()),
          kind: 'timeout-proceed',
        },
        MAX_APPROVALS_KEPT,
      );
      return;
    }
    throw new RollbackRequired(
      `approval for ${subject} timed out after ${formatDuration(g.timeoutMs ?? 0)}`,
      {
        kind: 'timeout',
      },
    );
  };

  /** Records what the router did: the achieved weight where it differs, and what it could not do. */
  const applyWeight = (weight: number, r: WeightResult | undefined | null): void => {
    s.weight = weight;
    if (r && typeof r === 'object') {
      s.achievedWeight = r.current !== weight ? r.current : undefined;
      s.routingNote = r.note ?? (r.unverified ? `weight not verified: ${r.unverified}` : undefined);
    }
  };

  const shift = async (weight: number, why: string, opts: { restoring?: boolean } = {}): Promise<void> => {
    const expected = s.achievedWeight ?? s.weight;
    // Marked before the call: an attempt may land even when its answer is lost.
    if (s.touched && weight > 0) s.touched.traffic = true;
    const r = await acts.setCanaryWeight.executeWithOptions(
      {
        summary: `${why}: canary ${s.weight}% → ${weight}%`,
        // The replica-ratio router waits for a grown canary's pods before stable shrinks: a workload's deadline.
        ...(target.traffic?.router === 'replicas' ? workloadWaitOptions() : {}),
      },
      [{ target, weight, ...(routingLifecycle && !opts.restoring ? { expected } : {}) }],
    );
    applyWeight(weight, r);
    if (r?.drift && !opts.restoring) {
      // Someone changed the weights since the last shift; the planned weight is now set deliberately.
      await alert(
        'drift_detected',
        'warning',
        `${label()}: the canary weight was ${r.drift.found}%, not the ${r.drift.expected}% this rollout set; now set to ${weight}% (${why})`,
      );
    }
  };

  /** Steps that wait for a workload get its progress deadline (and heartbeat while they wait). */
  const workloadWaitOptions = (): Pick<ActivityOptions, 'startToCloseTimeout' | 'heartbeatTimeout'> => {
    const w = target.workload;
    const deadlineMs =
      w?.kind === 'Deployment' ? w.progressDeadlineMs : w?.kind === 'local' ? 0 : 10 * 60_000;
    return {
      startToCloseTimeout: deadlineMs + DEADLINE_MARGIN_MS,
      ...(w?.kind === 'Deployment' ? { heartbeatTimeout: '30 seconds' } : {}),
    };
  };

  const enterStage = async (): Promise<void> => {
    await shift(stage().weight, `stage ${s.stageIndex + 1}/${plan.stages.length}`);
    s.stageEntered = true;
    s.waitStartedAt = Date.now();
    s.pausedMsInWait = 0;
    s.lastAnalysisAt = s.waitStartedAt;
    s.passedInStage = false;
    s.passingSince = s.waitStartedAt;
    publish();
    await alert(
      'stage_advanced',
      'info',
      `${label()} entered stage ${s.stageIndex + 1}/${plan.stages.length}: canary at ${s.weight}%` +
        (stage().holdMs > 0 ? ` for ${formatDuration(stage().holdMs)}` : ''),
    );
  };

  const hold = async (): Promise<void> => {
    // A stage advances only on evidence: with checks, its latest analysis must have passed (from never-stuck on, a
    // round taken at or after the hold's end). A zero hold (the final stage by default) promotes at once.
    const evidence = stageEvidence;
    const end = (): number | undefined =>
      s.pausedSince === undefined && s.waitStartedAt !== undefined
        ? s.waitStartedAt + s.pausedMsInWait + stage().holdMs
        : undefined;
    const served = (): boolean => s.pausedSince === undefined && heldMs(Date.now()) >= stage().holdMs;
    // The round the hold's end calls for, when none has been taken since.
    const roundDue = (): number | undefined =>
      s.neverStuck && !roundAfterHold() ? holdServedAt() : undefined;
    // Served, but no evidence for this long: a person hears why the stage does not move (once per stage).
    const alertAt = (): number | undefined => {
      const at = holdServedAt();
      return s.neverStuck && s.evidenceAlertedStage !== s.stageIndex && at !== undefined
        ? at + evidenceWaitAlertMs()
        : undefined;
    };
    const alertDue = (): boolean => {
      const at = alertAt();
      return at !== undefined && served() && !evidence() && Date.now() >= at;
    };
    for (;;) {
      await watch(
        () => s.promoteRequest !== undefined || (served() && (evidence() || alertDue())),
        () => {
          const times = [end(), alertAt()].filter((t): t is number => t !== undefined && t > Date.now());
          return times.length > 0 ? Math.min(...times) : undefined;
        },
        `hold of stage ${s.stageIndex + 1} at ${stage().weight}%`,
        roundDue,
      );
      if (s.promoteRequest !== undefined || !alertDue()) return;
      s.evidenceAlertedStage = s.stageIndex;
      const why = evidenceView(Date.now()).evidenceWait?.note ?? 'no passing analysis yet';
      await alert(
        'stuck',
        'warning',
        `${label()}: stage ${s.stageIndex + 1} served its hold ${formatDuration(Date.now() - (holdServedAt() ?? Date.now()))} ago ` +
          `and does not advance: ${why}. It advances on the first passing analysis; to end the wait: ` +
          `${cli} promote ${info.workflowId} (skip ahead) or ${cli} abort ${info.workflowId} --reason "why"`,
      );
    }
  };
  /** How long a served hold may wait for a passing analysis before a person is told: 3 rounds, at least 15 min. */
  const evidenceWaitAlertMs = (): number => Math.max(15 * 60_000, 3 * plan.analysis.intervalMs);

  const walk = async (): Promise<void> => {
    if (!s.canaryReady) {
      if (s.neverStuck && !s.preflight) await preflight();
      publish();
      const warnings = (s.preflight?.findings ?? []).filter((f) => f.level === 'warn');
      await alert(
        'rollout_started',
        'info',
        `${label()} rollout started by ${input.requestedBy}: ${describePlan(plan)}` +
          (warnings.length > 0 ? `. Preflight warnings: ${warnings.map((f) => f.message).join('; ')}` : ''),
      );
      if (s.touched) s.touched.canary = true;
      const canary = await acts.prepareCanary.executeWithOptions(
        { summary: `deploy canary ${version}`, ...(routingLifecycle ? workloadWaitOptions() : {}) },
        [{ target, version, image }],
      );
      if (canary?.stableVersion) s.stableVersion = canary.stableVersion;
      if (routingLifecycle) {
        if (s.touched) s.touched.routing = true;
        await acts.prepareRouting.executeWithOptions({ summary: `prepare ${routerName()} routing` }, [
          { target, versions: { ...(s.stableVersion ? { stable: s.stableVersion } : {}), canary: version } },
        ]);
      }
      s.canaryReady = true;
    }
    /** A new wait at a gate: nothing of the previous gate's approvals, reminders or wait time carries over. */
    const newWait = (): void => {
      s.waitStartedAt = undefined;
      s.pausedMsInWait = 0;
      s.approvedStage = undefined;
      s.gateApprovals = undefined;
      s.gateReminded = undefined;
      s.gateEscalated = undefined;
    };
    // A run continued at the promotion gate (or past it) has walked every stage already.
    while (s.promotionGate === undefined) {
      if (!s.stageEntered) {
        await passGate();
        if (!s.promoteRequest) await awaitWindow(s.stageIndex === plan.stages.length - 1);
        if (s.promoteRequest) {
          s.skippedFrom = s.stageIndex;
          break;
        }
        await enterStage();
      }
      await hold();
      if (s.promoteRequest) s.skippedFrom = s.stageIndex + 1;
      if (s.promoteRequest || s.stageIndex === plan.stages.length - 1) break;
      s.stageIndex++;
      s.stageEntered = false;
      newWait();
      publish();
    }
    // The prompt before promotion (`promotion.gate`), once the final stage has served its hold with evidence. A
    // person's promotion request is that approval already.
    if (plan.promotion.gate && !s.promoteRequest && s.promotionGate !== 'passed') {
      if (s.promotionGate === undefined) {
        s.promotionGate = 'waiting';
        newWait();
      }
      await passGate();
      s.promotionGate = 'passed';
      publish();
    }
    // Promotion obeys the windows too, unless the plan says `promotion: any`.
    await awaitWindow(true);
  };

  /**
   * The first step (never-stuck): whether this worker can drive this target with this plan, read-only. Every
   * refusal is listed at once; any refusal ends the rollout as not started, before anything is touched.
   */
  const preflight = async (): Promise<void> => {
    s.preflight = { state: 'running', findings: [] };
    publish();
    let findings: PreflightFinding[];
    let tookMs: number | undefined;
    try {
      const report = await preflightActs.preflight.executeWithOptions(
        { summary: `preflight: can this worker roll ${version} out to ${target.namespace}/${target.app}?` },
        [{ target, plan, version, ...(image ? { image } : {}) }],
      );
      findings = report.findings;
      tookMs = report.tookMs;
    } catch (err) {
      if (isCancellation(err)) throw err;
      findings = [
        {
          area: 'cluster',
          cause: 'infrastructure',
          level: 'refuse',
          message: `the preflight could not run on the worker: ${errorMessage(err)}`,
        },
      ];
    }
    const refusals = findings.filter((f) => f.level === 'refuse');
    s.preflight = {
      state: refusals.length > 0 ? 'failed' : 'passed',
      findings,
      ...(tookMs !== undefined ? { tookMs } : {}),
      // An input problem needs the plan or target changed whatever else is wrong: it decides the exit code.
      ...(refusals.length > 0
        ? { cause: refusals.some((f) => f.cause === 'input') ? 'input' : 'infrastructure' }
        : {}),
    };
    publish();
    if (refusals.length > 0) throw new NotStarted();
  };

  /**
   * Outside the plan's deployment windows the rollout does not advance: it keeps analysing (and rolls back on
   * trouble) and waits on a timer until the windows open. The next-open instant is computed once, when the wait
   * begins, and kept in state. A promotion request ends a wait for a stage (promotion then waits by its own rule).
   */
  const awaitWindow = async (isPromotion: boolean): Promise<void> => {
    const w = plan.windows;
    if (!w) return;
    if (!s.windowWait) {
      const now = Date.now();
      if (mayAdvance(w, now, isPromotion)) return;
      const next = nextOpen(w, now);
      s.windowWait = {
        since: now,
        ...(next !== undefined ? { nextOpenAt: next } : {}),
        note: describeWindowState(w, now),
      };
      publish();
      log.info('outside the deployment window; waiting', { note: s.windowWait.note });
    }
    const opensAt = (): number | undefined => s.windowWait?.nextOpenAt;
    await watch(
      () => {
        if (!isPromotion && s.promoteRequest !== undefined) return true;
        const t = opensAt();
        return s.pausedSince === undefined && t !== undefined && Date.now() >= t;
      },
      opensAt,
      'deployment window opens',
    );
    s.windowWait = undefined;
    publish();
  };

  /**
   * Whether promotion soaks (never-stuck, with a cleanup delay): the new version first takes all the traffic while
   * stable keeps the previous one, and only at the soak's end does stable take the new version. Before it, stable
   * took the new version at once and the canary lingered for the cleanup delay running the same version.
   */
  const soakPromotion = (): boolean =>
    s.neverStuck === true && routingLifecycle && plan.promotion.cleanupDelayMs > 0;

  /** The soak begins: the canary (the new version) carries all the traffic; the rollout counts as promoted. */
  const beginSoak = async (): Promise<void> => {
    if (s.weight !== 100) await shift(100, 'promotion');
    s.stageIndex = plan.stages.length - 1;
    s.stageEntered = true;
    const now = Date.now();
    s.phase = 'promoted';
    s.promotedAt = now;
    s.soak = {
      since: now,
      until: now + plan.promotion.cleanupDelayMs,
      ...(s.stableVersion ? { previousVersion: s.stableVersion } : {}),
    };
    publish();
    const previous = s.stableVersion ?? 'the previous version';
    await alert(
      'promoted',
      'info',
      `${label()} promoted: ${version} serves all traffic; ${previous} keeps running until ${iso(s.soak.until)} ` +
        `(the soak), so going back is a weight change: ${cli} abort ${info.workflowId} --reason "why"`,
    );
  };

  /** The soak: the previous version keeps running until its end, or until someone ends it or goes back. */
  const soak = async (): Promise<void> => {
    const until = s.soak?.until ?? Date.now();
    await condition(() => s.soak?.endNow !== undefined, Math.max(1, until - Date.now()), {
      summary: `soak until ${iso(until)}: the previous version keeps running`,
    });
  };

  // Promotion: canary takes all traffic, stable takes the new version, traffic returns to stable, the canary goes.
  const promote = async (): Promise<void> => {
    s.finalizing = true;
    let stableLabel = version;
    try {
      if (s.weight !== 100) await shift(100, 'promotion');
      s.stageIndex = plan.stages.length - 1;
      s.stageEntered = true;
      const promoted = await acts.promoteStable.executeWithOptions(
        { summary: `stable takes ${version}`, ...(routingLifecycle ? workloadWaitOptions() : {}) },
        [{ target, version, image }],
      );
      // Rollouts recorded before this answered nothing; a stable whose selector pins the version label keeps it.
      stableLabel = promoted?.stableLabel ?? version;
    } catch (err) {
      // Stable still runs the old version: rolling back is safe and right.
      s.finalizing = false;
      throw new RollbackRequired(`promotion failed: ${errorMessage(err)}`, { kind: 'step' });
    }
    // From here stable runs the new version; sending traffic back to it must not give up.
    if (routingLifecycle) {
      try {
        await persist('point the stable routing at the new version', () =>
          persistentActs.prepareRouting.executeWithOptions(
            { summary: `promotion: ${routerName()} routing, stable serves ${version}` },
            [{ target, versions: { stable: stableLabel, canary: version }, mode: 'rollback' }],
          ),
        );
        // Stable may have been shrunk while the canary carried the traffic (by an autoscaler, or by the replica
        // ratio at 100 %): it gets its capacity back before the traffic returns.
        const capacity = await persist('make sure the promoted stable can take the traffic', () =>
          persistentActs.ensureStableCapacity.executeWithOptions(
            { summary: 'promotion: check stable capacity' },
            [{ target }],
          ),
        );
        if (capacity) s.capacityNote = capacity;
        const r = await persist('send traffic back to the promoted stable', () =>
          persistentActs.setCanaryWeight.executeWithOptions(
            { summary: `promotion: canary ${s.weight}% → 0%, stable serves ${version}` },
            [{ target, weight: 0, mode: 'rollback' }],
          ),
        );
        applyWeight(0, r);
        await persist('remove the routing setup', () =>
          persistentActs.teardownRouting.executeWithOptions(
            { summary: `promotion: tear down ${routerName()} routing` },
            [{ target }],
          ),
        );
      } catch (err) {
        // A person confirmed that traffic is on the promoted stable; what the failing step left is theirs now.
        if (!(err instanceof ResolvedByHand)) throw err;
        s.retrying = undefined;
        s.achievedWeight = undefined;
      }
    } else {
      await rollbackActs.setCanaryWeight.executeWithOptions(
        { summary: `promotion: canary ${s.weight}% → 0%, stable serves ${version}` },
        [{ target, weight: 0 }],
      );
    }
    s.weight = 0;
    const soaked = s.soak !== undefined;
    s.phase = 'promoted';
    s.promotedAt ??= Date.now();
    s.soak = undefined;
    publish();
    // A soaked promotion said so when it began; the end of the soak changes nothing for people.
    if (!soaked) await alert('promoted', 'info', `${label()} promoted: stable now runs ${version}`);
  };

  /**
   * After traffic is back on stable (so it never delays that): the rollback reason of a cancel names who asked,
   * read from the workflow's own history (the cancel-request event's identity), when Temporal knows.
   */
  const nameCanceller = async (cancelled: boolean): Promise<void> => {
    if (!cancelled || !patched(CANCEL_IDENTITY_PATCH)) return;
    try {
      const who = await lookupActs.cancelRequester.executeWithOptions({ summary: 'who cancelled' }, []);
      if (who) s.rollbackReason = `workflow cancelled by ${who} (Temporal UI or API)`;
      if (who && s.ending?.kind === 'cancel') s.ending = { kind: 'cancel', by: who };
    } catch (err) {
      log.warn('could not tell who cancelled the rollout', { error: errorMessage(err) });
    }
  };

  const rollback = async (reason: string, cancelled = false): Promise<void> => {
    s.failedStage ??= s.stageIndex;
    s.phase = 'rolling_back';
    s.rollbackReason = reason;
    s.pausedSince = undefined;
    s.windowWait = undefined;
    publish();
    routeEarly();
    // Only started here, never awaited: a sink cannot delay traffic going back.
    await alert('rollback_started', 'critical', `${label()} is rolling back: ${reason}`, false, { reason });
    if (!routingLifecycle) {
      await rollbackActs.setCanaryWeight.executeWithOptions(
        { summary: `rollback: canary ${s.weight}% → 0%` },
        [{ target, weight: 0 }],
      );
      s.weight = 0;
      publish();
      await nameCanceller(cancelled);
      await rollbackActs.scaleDownCanary.executeWithOptions({ summary: 'rollback: scale canary down' }, [
        { target },
      ]);
    } else {
      // Only what the rollout changed is undone (all of it for rollouts that did not keep track): one that never
      // moved traffic or set up routing has no traffic to bring back, whatever state its cluster is in.
      const t = s.touched;
      try {
        if (!t || t.traffic || t.routing) {
          // Stable must be able to take the traffic back (an autoscaler may have shrunk it); then traffic goes
          // back before anything else (not even an alert) can delay it.
          const capacity = await persist('make sure stable can take the traffic', () =>
            persistentActs.ensureStableCapacity.executeWithOptions(
              { summary: 'rollback: check stable capacity' },
              [{ target }],
            ),
          );
          if (capacity) s.capacityNote = capacity;
          const r = await persist('send traffic back to stable', () =>
            persistentActs.setCanaryWeight.executeWithOptions(
              { summary: `rollback: canary ${s.weight}% → 0%` },
              [{ target, weight: 0, mode: 'rollback' }],
            ),
          );
          applyWeight(0, r);
        }
        s.drift = undefined;
        publish();
        await nameCanceller(cancelled);
        if (!t || t.canary) {
          await persist('scale the canary down', () =>
            persistentActs.scaleDownCanary.executeWithOptions({ summary: 'rollback: scale canary down' }, [
              { target },
            ]),
          );
        }
        if (!t || t.routing) {
          await persist('remove the routing setup', () =>
            persistentActs.teardownRouting.executeWithOptions(
              { summary: `rollback: tear down ${routerName()} routing` },
              [{ target }],
            ),
          );
        }
      } catch (err) {
        if (!(err instanceof ResolvedByHand)) throw err;
        // A person confirmed that traffic is on stable; what the failing step did not finish is theirs now.
        s.weight = 0;
        s.achievedWeight = undefined;
        s.retrying = undefined;
        s.drift = undefined;
        if (s.resolved) {
          s.rollbackReason = `${s.rollbackReason ?? reason}; resolved by hand by ${s.resolved.by}: ${s.resolved.reason}`;
        }
      }
    }
    s.phase = 'rolled_back';
    publish();
    const why = s.rollbackReason ?? reason;
    await alert('rolled_back', 'critical', `${label()} rolled back: ${why}`, false, { reason: why });
  };

  const result = (outcome: RolloutResult['outcome']): RolloutResult => ({
    outcome,
    app: target.app,
    namespace: target.namespace,
    version,
    ...(s.rollbackReason ? { reason: s.rollbackReason } : {}),
    finalWeight: s.weight,
    approvals: s.approvals,
    ...(s.ending ? { ending: s.ending } : {}),
    ...(s.resolved ? { resolved: s.resolved } : {}),
    ...(s.preflight?.state === 'failed'
      ? { findings: s.preflight.findings, ...(s.preflight.cause ? { cause: s.preflight.cause } : {}) }
      : {}),
  });

  /** A refused preflight: nothing was touched, so nothing is rolled back; the target is free at once. */
  const endNotStarted = async (): Promise<never> => {
    const refusals = (s.preflight?.findings ?? []).filter((f) => f.level === 'refuse');
    s.phase = 'not_started';
    publish();
    const why = refusals.map((f) => f.message);
    await CancellationScope.nonCancellable(async () => {
      await alert(
        'not_started',
        'warning',
        `${label()} did not start: nothing was changed. ${why.join('; ')}`,
        false,
        { reason: why.join('; ') },
      );
      await condition(allHandlersFinished);
      await flushAlerts();
    });
    const first = why[0] ?? 'the preflight refused it';
    throw outcomeFailure(
      NOT_STARTED_FAILURE,
      `${NOT_STARTED_MESSAGE_PREFIX}${first}${why.length > 1 ? ` (and ${why.length - 1} more)` : ''}`,
      result('not_started'),
    );
  };

  // ---------- main ----------
  publish();
  if (alertsV2) {
    // Once per run; names only (no secrets), recorded in history, so replays route alike.
    await CancellationScope.nonCancellable(async () => {
      try {
        sinkNames = await alertActs.alertSinks.executeWithOptions({ summary: 'which alert sinks' }, []);
      } catch (err) {
        log.warn('alert sinks unknown; alerts go to the log only', { error: errorMessage(err) });
        sinkNames = ['log'];
      }
      routeEarly();
    });
  }
  if (s.phase === 'progressing' || soaking()) {
    try {
      if (s.phase === 'progressing') {
        await walkScope.run(walk);
        if (soakPromotion()) await CancellationScope.nonCancellable(beginSoak);
      }
      // While it soaks, an abort or a cancel goes back to the previous version, which still runs.
      if (soaking()) await walkScope.run(soak);
      // Once stable runs the new version there is nothing to roll back to: promotion is not cancellable.
      await CancellationScope.nonCancellable(promote);
    } catch (err) {
      if (err instanceof ContinueAsNew) throw err;
      if (err instanceof NotStarted) return endNotStarted();
      const abort = s.abortRequest;
      s.ending =
        err instanceof RollbackRequired
          ? err.ending
          : abort
            ? { kind: abort.back ? 'back' : abort.declined ? 'decline' : 'abort', by: abort.by }
            : isCancellation(err)
              ? { kind: 'cancel' }
              : { kind: 'step' };
      const reason =
        err instanceof RollbackRequired
          ? err.reason
          : abort
            ? abort.back
              ? `went back to ${s.soak?.previousVersion ?? 'the previous version'} during the soak, as ${abort.by} asked: ${abort.reason}`
              : abort.declined && s.neverStuck
                ? `declined by ${abort.by} (${abort.declined}): ${abort.reason}`
                : `aborted by ${abort.by}: ${abort.reason}`
            : isCancellation(err)
              ? 'workflow cancelled (Temporal UI or API)'
              : `rollout step failed: ${errorMessage(err)}`;
      // Rollback cannot be skipped: not by a cancel, a timeout or a failing alert sink.
      const cancelled = !(err instanceof RollbackRequired) && !s.abortRequest && isCancellation(err);
      await CancellationScope.nonCancellable(async () => {
        await rollback(reason, cancelled);
        await condition(allHandlersFinished);
        await flushAlerts();
      });
      const rolledBack = result('rolled_back');
      // The Web UI (and its Failures filter) tells a rolled-back rollout from a promoted one; the failure is typed
      // and carries the result, which clients read as before (client/index.ts rolloutResult).
      if (patched(ROLLBACK_FAILS_PATCH)) {
        throw outcomeFailure(
          ROLLED_BACK_FAILURE,
          `${ROLLED_BACK_MESSAGE_PREFIX}${s.rollbackReason ?? reason}`,
          rolledBack,
        );
      }
      return rolledBack;
    }
  }
  if (!s.neverStuck || !soakPromotion()) {
    try {
      // The canary lingers for the cleanup delay (before soaks, rollouts kept it this way); a cancel only shortens it.
      await walkScope.run(() =>
        condition(() => false, plan.promotion.cleanupDelayMs, { summary: 'cleanup delay' }),
      );
    } catch (err) {
      if (!isCancellation(err)) throw err;
    }
  }
  await CancellationScope.nonCancellable(async () => {
    await acts.cleanupCanary.executeWithOptions({ summary: 'remove canary workload' }, [{ target }]);
    await condition(allHandlersFinished);
    await flushAlerts();
  });
  return result('promoted');
}

/**
 * The typed failure a rollout that did not promote ends with: the Web UI (and its Failures filter) tells it apart
 * from a promotion, and its details carry the result. It has no stack trace: a rollout's end is an outcome, not a
 * crash, and a trace would show the worker's file paths.
 */
function outcomeFailure(type: string, message: string, result: RolloutResult): ApplicationFailure {
  const failure = ApplicationFailure.create({ type, message, nonRetryable: true, details: [result] });
  failure.stack = '';
  return failure;
}

/** Each analysis reads the last interval of metrics, but never less than 30 s: short windows hold too few requests. */
export function analysisWindowSeconds(plan: Plan): number {
  return Math.max(30, Math.round(plan.analysis.intervalMs / 1000));
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

function pushBounded<T>(list: T[], item: T, max: number): void {
  list.push(item);
  if (list.length > max) list.splice(0, list.length - max);
}

function errorMessage(err: unknown): string {
  if (err instanceof Error) {
    const cause = (err as { cause?: unknown }).cause;
    return cause instanceof Error ? `${err.message}: ${cause.message}` : err.message;
  }
  return String(err);
}
