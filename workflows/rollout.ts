// The rollout workflow: walks a stage plan, shifting traffic, analysing the canary on a schedule, waiting at
// approval gates, and rolling back on its own. Only deterministic code: every wait is a Temporal timer.
import {
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
import type { AlertEvent, AlertSeverity } from '../activities/types';
import {
  SA_APP,
  ROLLED_BACK_FAILURE,
  SA_PHASE,
  SA_VERSION,
  SA_STAGE,
  SA_WEIGHT,
  abortSignal,
  approveUpdate,
  pauseSignal,
  pauseUpdate,
  promoteUpdate,
  resumeSignal,
  resumeUpdate,
  statusQuery,
  type PauseAck,
  type PauseRequest,
  type RolloutInput,
} from './api';
import { formatDuration } from './duration';
import { describeResults, judge } from './judge';
import { judgeRound, type JudgeState } from './judge-v2';
import { describePlan, formatProblems, validatePlan } from './plan';
import { describeTarget, formatTargetProblems, validateTarget, versionProblem, type Target } from './target';
import { renderDetails } from './details';
import type {
  AnalysisRecord,
  ApprovalRecord,
  CheckResult,
  Phase,
  Plan,
  RolloutResult,
  RolloutStatus,
  Stage,
  StageView,
  Verdict,
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

const acts = proxyActivities<RolloutActivities>({
  startToCloseTimeout: '1 minute',
  retry: {
    initialInterval: '1 second',
    backoffCoefficient: 2,
    maximumInterval: '30 seconds',
    maximumAttempts: 10,
  },
});
const analysisActs = proxyActivities<RolloutActivities>({
  startToCloseTimeout: '30 seconds',
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
});
const RETRY_PAUSE_MS = 30_000;
/** Time a canary or a promoted stable gets beyond its progress deadline before the activity is timed out. */
const DEADLINE_MARGIN_MS = 60_000;
const alertActs = proxyActivities<RolloutActivities>({
  startToCloseTimeout: '15 seconds',
  retry: { initialInterval: '1 second', maximumAttempts: 3 },
});

/** Everything a run needs to resume where the previous one stopped (carried through continue-as-new). */
interface RolloutState {
  run: number;
  /** Base phase; `paused` and `waiting_approval` are derived. */
  phase: 'progressing' | 'rolling_back' | 'rolled_back' | 'promoted' | 'failed';
  canaryReady: boolean;
  /** 0-based index of the current stage. */
  stageIndex: number;
  /** Whether the current stage's traffic shift happened (false while its gate waits). */
  stageEntered: boolean;
  weight: number;
  /** Start of the current wait (a gate or a hold), in workflow time. */
  waitStartedAt?: number;
  /** Paused time accumulated during the current wait; it does not count toward holds or gate timeouts. */
  pausedMsInWait: number;
  pausedSince?: number;
  pausedBy?: string;
  approvedStage?: number;
  lastAnalysisAt?: number;
  passedInStage: boolean;
  consecutiveFailures: number;
  consecutiveInconclusive: number;
  lastVerdict?: Verdict;
  analyses: AnalysisRecord[];
  approvals: ApprovalRecord[];
  promoteRequest?: { by: string; at: number; fromStage: number };
  abortRequest?: { by: string; reason: string };
  rollbackReason?: string;
  finalizing: boolean;
  promotedAt?: number;
  /** The version stable ran when the canary was prepared (from the workload manager). */
  stableVersion?: string;
  /** The weight the router really carries, where it differs from the stage weight (replica ratios). */
  achievedWeight?: number;
  /** Why the router could not meet or verify the weight, as it said last. */
  routingNote?: string;
  /** Someone else changed the weights; the rollout paused until a person resumes it. */
  drift?: { expected: number; found: number; at: number };
  pauseReason?: string;
  /** A step that must not give up (rollback, return to stable) and keeps failing. */
  retrying?: { step: string; attempts: number; error: string; since: number };
  /** What the rollback found and did about stable's capacity. */
  capacityNote?: string;
  /** judge-v2's memory between rounds (breach streaks, missing evidence, step-backs). */
  judge?: JudgeState;
  steppedBack?: { stageWeight: number; toWeight: number; at: number };
  /** The plan rules the rollout started under (set from the plan-limits patch on). */
  planRules?: { strict: boolean; limits: boolean };
  /** Every analysis that ran (the record keeps only the latest). */
  analysesRun?: number;
  /** 0-based index of the first stage a promotion request skipped (the final stage is never skipped). */
  skippedFrom?: number;
  /** 0-based index of the stage the rollback happened in. */
  failedStage?: number;
}

/** Thrown inside the walk to stop it and roll back; never leaves the workflow. */
class RollbackRequired extends Error {
  constructor(public readonly reason: string) {
    super(reason);
  }
}

export async function canaryRollout(input: RolloutInput): Promise<RolloutResult> {
  // Rollouts started before whole-percent weights, size bounds and the version rule validate by the rules they
  // started with.
  // A continued run keeps the rules its rollout started with (a worker upgrade between runs must not refuse
  // a plan the first run accepted); runs carried before the rules were recorded decide as they did.
  const carriedRules = (input.carried as Partial<RolloutState> | undefined)?.planRules;
  const strict = carriedRules?.strict ?? patched(STRICT_PLAN_PATCH);
  const limits =
    carriedRules?.limits ?? (input.carried === undefined && strict && patched(PLAN_LIMITS_PATCH));
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
  const badVersion = strict ? versionProblem(input.version) : undefined;
  if (badVersion) throw ApplicationFailure.nonRetryable(badVersion, 'InvalidVersion');
  const { version, image } = input;
  const info = workflowInfo();
  const routingLifecycle = patched(TARGET_PATCH);
  // Only plans in the full analysis form change judge; short-form plans keep the original one.
  const judgeV2 = plan.analysis.rules !== undefined && patched(JUDGE_PATCH);
  const s: RolloutState = (input.carried as RolloutState | undefined) ?? {
    run: 1,
    phase: 'progressing',
    canaryReady: false,
    stageIndex: 0,
    stageEntered: false,
    weight: 0,
    pausedMsInWait: 0,
    passedInStage: false,
    consecutiveFailures: 0,
    consecutiveInconclusive: 0,
    analyses: [],
    approvals: [],
    finalizing: false,
  };
  s.planRules ??= { strict, limits };
  const walkScope = new CancellationScope();
  // Bumped by every message so the waiting loop re-evaluates at once.
  let messages = 0;
  let published = { phase: '', stage: -1, weight: -1 };

  // ---------- derived views ----------
  const stage = (): Stage => plan.stages[s.stageIndex];
  const gateWaiting = (): boolean =>
    s.phase === 'progressing' && !s.finalizing && !s.stageEntered && stage().gate.type === 'approval';
  const phase = (): Phase => {
    if (s.phase !== 'progressing') return s.phase;
    if (s.pausedSince !== undefined) return 'paused';
    return gateWaiting() ? 'waiting_approval' : 'progressing';
  };
  const pausedMs = (now: number): number =>
    s.pausedMsInWait + (s.pausedSince !== undefined ? now - s.pausedSince : 0);
  /** Hold time already served in the current stage (paused time excluded). */
  const heldMs = (now: number): number =>
    s.stageEntered && s.waitStartedAt !== undefined ? now - s.waitStartedAt - pausedMs(now) : 0;
  const stageTimeLeft = (now: number): number =>
    s.phase !== 'progressing' || s.finalizing
      ? 0
      : s.stageEntered
        ? Math.max(0, stage().holdMs - heldMs(now))
        : stage().holdMs;
  const planTimeLeft = (now: number): number =>
    s.phase !== 'progressing' || s.finalizing
      ? 0
      : stageTimeLeft(now) + plan.stages.slice(s.stageIndex + 1).reduce((sum, st) => sum + st.holdMs, 0);

  const stageState = (i: number): StageView['state'] => {
    const last = plan.stages.length - 1;
    if (s.skippedFrom !== undefined && i >= s.skippedFrom && i < last) return 'skipped';
    if (s.failedStage === i && (s.phase === 'rolling_back' || s.phase === 'rolled_back')) return 'failed';
    if (s.phase === 'promoted' || i < s.stageIndex) return 'done';
    if (i === s.stageIndex && s.phase === 'progressing') return 'current';
    return 'pending';
  };

  const status = (): RolloutStatus => {
    const now = Date.now();
    const g = stage().gate;
    const gate =
      gateWaiting() && s.waitStartedAt !== undefined
        ? {
            stage: s.stageIndex + 1,
            since: iso(s.waitStartedAt),
            ...(g.type === 'approval' && g.timeoutMs !== undefined
              ? { timeoutAt: iso(s.waitStartedAt + pausedMs(now) + g.timeoutMs), onTimeout: g.onTimeout }
              : {}),
          }
        : undefined;
    const ends =
      s.phase === 'progressing' && s.stageEntered && s.pausedSince === undefined && !s.finalizing
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
      ...(s.stageEntered && s.waitStartedAt !== undefined ? { stageStartedAt: iso(s.waitStartedAt) } : {}),
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
      ...(s.retrying ? { retrying: { ...s.retrying, since: iso(s.retrying.since) } } : {}),
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
      analyses: s.analyses,
      analysesRun: s.analysesRun ?? s.analyses.length,
      ...(s.lastVerdict ? { lastVerdict: s.lastVerdict } : {}),
      approvals: s.approvals,
      ...(s.rollbackReason ? { rollbackReason: s.rollbackReason } : {}),
      ...(s.promotedAt !== undefined ? { promotedAt: iso(s.promotedAt) } : {}),
      stages: plan.stages.map((st, i) => ({
        stage: i + 1,
        weight: st.weight,
        holdMs: st.holdMs,
        gate: st.gate.type,
        state: stageState(i),
      })),
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
    setCurrentDetails(renderDetails(status(), plan));
  };

  /** Sends an alert; from the walk a cancellation still stops the walk, from handlers nothing propagates. */
  const alert = async (
    event: string,
    severity: AlertSeverity,
    message: string,
    fromHandler = false,
  ): Promise<void> => {
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
      const record: ApprovalRecord = {
        stage: s.stageIndex + 1,
        by: req.identity,
        at: iso(Date.now()),
        kind: 'approved',
        ...(req.comment ? { comment: req.comment } : {}),
      };
      s.approvedStage = s.stageIndex;
      pushBounded(s.approvals, record, MAX_APPROVALS_KEPT);
      messages++;
      return record;
    },
    {
      validator: (req) => {
        if (!gateWaiting()) {
          throw new Error(
            `no approval gate is waiting: the rollout is ${phase()} at stage ${s.stageIndex + 1}/${plan.stages.length}`,
          );
        }
        if (req.stage !== undefined && req.stage !== s.stageIndex + 1) {
          throw new Error(`stage ${req.stage} is not waiting for approval; stage ${s.stageIndex + 1} is`);
        }
        if (s.approvedStage === s.stageIndex)
          throw new Error(`stage ${s.stageIndex + 1} is already approved`);
      },
    },
  );

  setHandler(
    promoteUpdate,
    (req) => {
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
      validator: (_req) => {
        if (s.phase !== 'progressing') throw new Error(`cannot promote: the rollout is ${s.phase}`);
        if (s.pausedSince !== undefined)
          throw new Error('cannot promote: the rollout is paused; resume it first');
        if (s.promoteRequest || s.finalizing) throw new Error('promotion is already under way');
      },
    },
  );

  setHandler(abortSignal, async (req) => {
    // Idempotent: only the first abort counts, and a promotion under way is not undone.
    if (s.abortRequest || s.phase !== 'progressing' || s.finalizing) return;
    s.abortRequest = { by: req.identity, reason: req.reason };
    messages++;
    walkScope.cancel();
  });

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
    );
  const resumedAlert = (req: PauseRequest) =>
    alert('resumed', 'info', `${label()} resumed by ${req.identity}`, true);

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
        `the rollout is paused. Resume to restore ${s.weight}%: canary resume ${info.workflowId}; or abort: canary abort ${info.workflowId}`,
    );
  };

  /** Runs a step that must not give up; between batches of attempts, status says why it is stuck. */
  const persist = async <T>(step: string, run: () => Promise<T>): Promise<T> => {
    for (let attempts = 1; ; attempts++) {
      try {
        const result = await run();
        if (s.retrying) {
          s.retrying = undefined;
          publish();
        }
        return result;
      } catch (err) {
        s.retrying = { step, attempts, error: errorMessage(err), since: s.retrying?.since ?? Date.now() };
        publish();
        log.warn('step keeps failing; retrying', { step, attempts, error: errorMessage(err) });
        await sleep(RETRY_PAUSE_MS);
      }
    }
  };

  // ---------- the walk ----------
  const analysisActive = (): boolean => plan.analysis.checks.length > 0 && s.canaryReady && s.weight > 0;

  /** One round of the full analysis form: measure, judge, act by the decision's severity. */
  const analyseV2 = async (): Promise<void> => {
    const rules = plan.analysis.rules ?? [];
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
    const { state, decision } = judgeRound(rules, answer.measurements, now, s.judge);
    s.judge = state;
    s.lastAnalysisAt = now;
    const advances = decision.action === 'advance-ok' || decision.action === 'alert';
    const verdict: Verdict = advances
      ? 'pass'
      : decision.perCheck.some((c) => c.outcome === 'breach' || c.outcome === 'fail')
        ? 'fail'
        : 'inconclusive';
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
      await alert('check_breached', a.level, `${label()}: ${a.check}: ${a.message}`);
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
    const carried: RolloutState = { ...s, run: s.run + 1 };
    await continueAsNew<typeof canaryRollout>({ ...input, carried });
  };

  /**
   * Runs the analysis schedule until `done()` holds. `deadline()` is the caller's own next point in time
   * (a hold's end or a gate's timeout), undefined when only a message or an analysis can change things.
   */
  const watch = async (
    done: () => boolean,
    deadline: () => number | undefined,
    what: string,
  ): Promise<void> => {
    for (;;) {
      if (s.drift && s.pausedSince === undefined && !s.finalizing) {
        // A person resumed after drift: the planned weight goes back first.
        s.drift = undefined;
        await shift(s.weight, 'restore the planned weight after drift', { restoring: true });
        publish();
        continue;
      }
      if (done()) return;
      const now = Date.now();
      const analysisDue = analysisActive() ? (s.lastAnalysisAt ?? now) + plan.analysis.intervalMs : undefined;
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

  const passGate = async (): Promise<void> => {
    const g = stage().gate;
    if (g.type !== 'approval') return;
    const n = s.stageIndex + 1;
    if (s.waitStartedAt === undefined) {
      s.waitStartedAt = Date.now();
      s.pausedMsInWait = 0;
      publish();
      await alert(
        'approval_needed',
        'warning',
        `${label()} waits for approval to enter stage ${n} (${stage().weight}%): canary approve ${info.workflowId} --stage ${n}`,
      );
    }
    const timeoutAt = (): number | undefined =>
      g.timeoutMs !== undefined && s.waitStartedAt !== undefined && s.pausedSince === undefined
        ? s.waitStartedAt + pausedMs(Date.now()) + g.timeoutMs
        : undefined;
    const timedOut = (): boolean => {
      const t = timeoutAt();
      return t !== undefined && Date.now() >= t;
    };
    await watch(
      () =>
        s.pausedSince === undefined &&
        (s.approvedStage === s.stageIndex || s.promoteRequest !== undefined || timedOut()),
      timeoutAt,
      `approval gate of stage ${n}`,
    );
    if (s.approvedStage === s.stageIndex || s.promoteRequest) return;
    if (g.onTimeout === 'proceed') {
      pushBounded(
        s.approvals,
        { stage: n, by: 'gate timeout', at: iso(Date.now()), kind: 'timeout-proceed' },
        MAX_APPROVALS_KEPT,
      );
      return;
    }
    throw new RollbackRequired(`approval for stage ${n} timed out after ${formatDuration(g.timeoutMs ?? 0)}`);
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
    const r = await acts.setCanaryWeight.executeWithOptions(
      { summary: `${why}: canary ${s.weight}% → ${weight}%` },
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
    publish();
    await alert(
      'stage_advanced',
      'info',
      `${label()} entered stage ${s.stageIndex + 1}/${plan.stages.length}: canary at ${s.weight}%` +
        (stage().holdMs > 0 ? ` for ${formatDuration(stage().holdMs)}` : ''),
    );
  };

  const hold = async (): Promise<void> => {
    // A stage advances only on evidence: with checks, its latest analysis must have passed.
    // A zero hold (the final stage by default) promotes at once.
    const evidence = (): boolean =>
      plan.analysis.checks.length === 0 ||
      stage().holdMs === 0 ||
      (s.passedInStage && s.lastVerdict === 'pass');
    const end = (): number | undefined =>
      s.pausedSince === undefined && s.waitStartedAt !== undefined
        ? s.waitStartedAt + s.pausedMsInWait + stage().holdMs
        : undefined;
    await watch(
      () =>
        s.promoteRequest !== undefined ||
        (s.pausedSince === undefined && heldMs(Date.now()) >= stage().holdMs && evidence()),
      end,
      `hold of stage ${s.stageIndex + 1} at ${stage().weight}%`,
    );
  };

  const walk = async (): Promise<void> => {
    if (!s.canaryReady) {
      publish();
      await alert(
        'rollout_started',
        'info',
        `${label()} rollout started by ${input.requestedBy}: ${describePlan(plan)}`,
      );
      const canary = await acts.prepareCanary.executeWithOptions(
        { summary: `deploy canary ${version}`, ...(routingLifecycle ? workloadWaitOptions() : {}) },
        [{ target, version, image }],
      );
      if (canary?.stableVersion) s.stableVersion = canary.stableVersion;
      if (routingLifecycle) {
        await acts.prepareRouting.executeWithOptions({ summary: `prepare ${routerName()} routing` }, [
          { target, versions: { ...(s.stableVersion ? { stable: s.stableVersion } : {}), canary: version } },
        ]);
      }
      s.canaryReady = true;
    }
    for (;;) {
      if (!s.stageEntered) {
        await passGate();
        if (s.promoteRequest) {
          s.skippedFrom = s.stageIndex;
          return;
        }
        await enterStage();
      }
      await hold();
      if (s.promoteRequest) s.skippedFrom = s.stageIndex + 1;
      if (s.promoteRequest || s.stageIndex === plan.stages.length - 1) return;
      s.stageIndex++;
      s.stageEntered = false;
      s.waitStartedAt = undefined;
      s.pausedMsInWait = 0;
      s.approvedStage = undefined;
      publish();
    }
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
      throw new RollbackRequired(`promotion failed: ${errorMessage(err)}`);
    }
    // From here stable runs the new version; sending traffic back to it must not give up.
    if (routingLifecycle) {
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
    } else {
      await rollbackActs.setCanaryWeight.executeWithOptions(
        { summary: `promotion: canary ${s.weight}% → 0%, stable serves ${version}` },
        [{ target, weight: 0 }],
      );
    }
    s.weight = 0;
    s.phase = 'promoted';
    s.promotedAt = Date.now();
    publish();
    await alert('promoted', 'info', `${label()} promoted: stable now runs ${version}`);
  };

  const rollback = async (reason: string): Promise<void> => {
    s.failedStage ??= s.stageIndex;
    s.phase = 'rolling_back';
    s.rollbackReason = reason;
    s.pausedSince = undefined;
    publish();
    if (!routingLifecycle) {
      await rollbackActs.setCanaryWeight.executeWithOptions(
        { summary: `rollback: canary ${s.weight}% → 0%` },
        [{ target, weight: 0 }],
      );
      s.weight = 0;
      publish();
      await rollbackActs.scaleDownCanary.executeWithOptions({ summary: 'rollback: scale canary down' }, [
        { target },
      ]);
    } else {
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
        persistentActs.setCanaryWeight.executeWithOptions({ summary: `rollback: canary ${s.weight}% → 0%` }, [
          { target, weight: 0, mode: 'rollback' },
        ]),
      );
      applyWeight(0, r);
      s.drift = undefined;
      publish();
      await persist('scale the canary down', () =>
        persistentActs.scaleDownCanary.executeWithOptions({ summary: 'rollback: scale canary down' }, [
          { target },
        ]),
      );
      await persist('remove the routing setup', () =>
        persistentActs.teardownRouting.executeWithOptions(
          { summary: `rollback: tear down ${routerName()} routing` },
          [{ target }],
        ),
      );
    }
    s.phase = 'rolled_back';
    publish();
    await alert('rolled_back', 'critical', `${label()} rolled back: ${reason}`);
  };

  const result = (outcome: RolloutResult['outcome']): RolloutResult => ({
    outcome,
    app: target.app,
    namespace: target.namespace,
    version,
    ...(s.rollbackReason ? { reason: s.rollbackReason } : {}),
    finalWeight: s.weight,
    approvals: s.approvals,
  });

  // ---------- main ----------
  publish();
  if (s.phase === 'progressing') {
    try {
      await walkScope.run(walk);
      // Once stable runs the new version there is nothing to roll back to: promotion is not cancellable.
      await CancellationScope.nonCancellable(promote);
    } catch (err) {
      if (err instanceof ContinueAsNew) throw err;
      const reason =
        err instanceof RollbackRequired
          ? err.reason
          : s.abortRequest
            ? `aborted by ${s.abortRequest.by}: ${s.abortRequest.reason}`
            : isCancellation(err)
              ? 'workflow cancelled (Temporal UI or API)'
              : `rollout step failed: ${errorMessage(err)}`;
      // Rollback cannot be skipped: not by a cancel, a timeout or a failing alert sink.
      await CancellationScope.nonCancellable(async () => {
        await rollback(reason);
        await condition(allHandlersFinished);
      });
      const rolledBack = result('rolled_back');
      // The Web UI (and its Failures filter) tells a rolled-back rollout from a promoted one; the failure is typed
      // and carries the result, which clients read as before (client/index.ts rolloutResult).
      if (patched(ROLLBACK_FAILS_PATCH)) {
        throw ApplicationFailure.create({
          type: ROLLED_BACK_FAILURE,
          message: `rolled back: ${reason}`,
          nonRetryable: true,
          details: [rolledBack],
        });
      }
      return rolledBack;
    }
  }
  try {
    // The canary lingers for the cleanup delay (a soak before the old capacity is gone); a cancel only shortens it.
    await walkScope.run(() =>
      condition(() => false, plan.promotion.cleanupDelayMs, { summary: 'cleanup delay' }),
    );
  } catch (err) {
    if (!isCancellation(err)) throw err;
  }
  await CancellationScope.nonCancellable(async () => {
    await acts.cleanupCanary.executeWithOptions({ summary: 'remove canary workload' }, [{ target }]);
    await condition(allHandlersFinished);
  });
  return result('promoted');
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
