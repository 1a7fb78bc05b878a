// The Temporal side of the rollout machine: carries out its commands with activities, timers and conditions, each
// with the retry policy, timeouts and summary it has always had (recorded histories replay against them), and hands
// back their results. Every method returns Temporal's own promise untouched: the machine awaits exactly what the
// workflow awaited before it was a machine, so commands keep their order in history.
import {
  ActivityCancellationType,
  ApplicationFailure,
  type ActivityOptions,
  CancellationScope,
  ContinueAsNew,
  allHandlersFinished,
  condition,
  continueAsNew,
  getExternalWorkflowHandle,
  isCancellation,
  log,
  patched,
  proxyActivities,
  proxyLocalActivities,
  proxySinks,
  setCurrentDetails,
  sleep,
  upsertSearchAttributes,
  workflowInfo,
  type Sinks,
} from '@temporalio/workflow';
import type { RolloutActivities } from '../activities/rollout-activities';
import { ALERT_DELIVERY_OPTIONS } from './alerts/delivery';
import type { RolloutAlert } from './alerts/events';
import {
  NOT_STARTED_FAILURE,
  NOT_STARTED_MESSAGE_PREFIX,
  ROLLED_BACK_FAILURE,
  ROLLED_BACK_MESSAGE_PREFIX,
  SA_APP,
  SA_PHASE,
  SA_STAGE,
  SA_VERSION,
  SA_WEIGHT,
  type RolloutInput,
} from './api';
import { fleetAskSignal, fleetReleaseSignal, type FleetAsk } from './fleet-api';
import { errorMessage } from './machine/context';
import { memberProgressSignal } from './release-api';
import type { MemberProgress } from './release-model';
import { CANCEL_IDENTITY_PATCH, ROLLBACK_FAILS_PATCH, ROLLBACK_LOCAL_PATCH } from './patches';
import type {
  LatePatch,
  RolloutPort,
  Scope,
  SearchAttributes,
  StepCommand,
  StepName,
  StepPolicy,
  StepResult,
} from './machine/port';
import type { RolloutState } from './machine/state';
import type { Target } from './target';
import type { AnalysisRecord, RolloutResult } from './types';

/**
 * What a rollout tells the worker's /metrics (worker/metrics.ts) through a Temporal sink: sink calls record nothing
 * in history (replay stays identical) and are not made while a worker replays, so a round is counted once, by the
 * worker that ran it. Times are workflow time (ms).
 */
export interface RolloutMetricsSinks extends Sinks {
  canaryMetrics: {
    /**
     * The rollout's phase, stage and weight, at each publish (so a worker that took the rollout over, or restarted,
     * shows it from its next publish on); `changedAt`: when they last changed. Not sent again once it ended.
     */
    rollout(update: {
      namespace: string;
      app: string;
      phase: string;
      stage: number;
      weight: number;
      changedAt: number;
    }): void;
    /** An analysis round was judged: its verdict, the full form's action, the highest severity that failed. */
    decision(d: { verdict: string; action: string; severity: string }): void;
    /** Traffic reached weight 0 after a rollback began (a breach, an abort, a cancel) at a weight above 0. */
    breachToZero(d: { namespace: string; app: string; ms: number }): void;
  };
}

export const ROLLOUT_METRICS_SINK = 'canaryMetrics';

const { canaryMetrics } = proxySinks<RolloutMetricsSinks>();

const SEVERITY_ORDER = ['low', 'medium', 'high', 'critical'];

/** The highest severity among the round's failed checks; `none` when none failed, `unspecified` without one. */
function roundSeverity(record: AnalysisRecord): string {
  const failed = record.checks.filter((c) => c.outcome === 'fail');
  if (failed.length === 0) return 'none';
  const ranks = failed.map((c) => (c.severity ? SEVERITY_ORDER.indexOf(c.severity) : -1));
  const top = Math.max(...ranks);
  return top < 0 ? 'unspecified' : SEVERITY_ORDER[top]!;
}

const LATE_PATCHES: Record<LatePatch, string> = {
  'cancel-identity': CANCEL_IDENTITY_PATCH,
  'rollback-fails': ROLLBACK_FAILS_PATCH,
  'rollback-local': ROLLBACK_LOCAL_PATCH,
};

const proxies: Record<StepPolicy, RolloutActivities> = {
  step: proxyActivities<RolloutActivities>({
    startToCloseTimeout: '1 minute',
    retry: {
      initialInterval: '1 second',
      backoffCoefficient: 2,
      maximumInterval: '30 seconds',
      maximumAttempts: 10,
    },
  }),
  // An analysis heartbeats while it queries: a worker that dies mid-round holds the rollout up ~10 s, not 30.
  analysis: proxyActivities<RolloutActivities>({
    startToCloseTimeout: '30 seconds',
    heartbeatTimeout: '10 seconds',
    retry: { initialInterval: '1 second', maximumAttempts: 3 },
  }),
  // Rollback never gives up: traffic must go back to stable whatever it takes.
  rollback: proxyActivities<RolloutActivities>({
    startToCloseTimeout: '1 minute',
    retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '10 seconds' },
  }),
  // The same steps in batches of attempts, so the workflow can say in status why a rollback is stuck, then retry.
  persistent: proxyActivities<RolloutActivities>({
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
  }),
  // The rollback's first shift, run by this worker as soon as the task that began the rollback is processed: no
  // completion and dispatch through the server before traffic moves. As long as a persistent attempt may take (the
  // capacity check can wait for stable), one attempt: a failure goes on to the persistent path.
  rollbackFirst: proxyLocalActivities<RolloutActivities>({
    startToCloseTimeout: '1 minute',
    retry: { maximumAttempts: 1 },
    cancellationType: ActivityCancellationType.ABANDON,
  }),
  // The preflight answers within seconds (its own requests time out quickly); a worker lost mid-way is noticed by the
  // heartbeat, and a second attempt is all it gets: a preflight that cannot run is itself an infrastructure finding.
  preflight: proxyActivities<RolloutActivities>({
    startToCloseTimeout: '2 minutes',
    heartbeatTimeout: '20 seconds',
    retry: { initialInterval: '1 second', maximumAttempts: 2 },
  }),
  // A look-up that may fail without consequence: quick, few attempts.
  lookup: proxyActivities<RolloutActivities>({
    startToCloseTimeout: '10 seconds',
    retry: { initialInterval: '1 second', maximumAttempts: 2 },
  }),
  alert: proxyActivities<RolloutActivities>({
    startToCloseTimeout: '15 seconds',
    retry: { initialInterval: '1 second', maximumAttempts: 3 },
  }),
  // A plan's hook: each command gives its own timeout and attempts (hookOptions); these are only the defaults.
  hook: proxyActivities<RolloutActivities>({
    startToCloseTimeout: '1 minute',
    retry: {
      initialInterval: '1 second',
      backoffCoefficient: 2,
      maximumInterval: '30 seconds',
      maximumAttempts: 3,
    },
  }),
};

/** A hook's activity options: one attempt's timeout (plus a margin), its attempts with backoff, heartbeats for Jobs. */
function hookOptions(h: NonNullable<StepCommand<StepName>['hook']>): ActivityOptions {
  return {
    startToCloseTimeout: h.timeoutMs + (h.heartbeat ? 2 * 60_000 : 5_000),
    ...(h.heartbeat ? { heartbeatTimeout: '30 seconds' } : {}),
    retry: {
      initialInterval: '1 second',
      backoffCoefficient: 2,
      maximumInterval: '30 seconds',
      maximumAttempts: h.attempts,
      nonRetryableErrorTypes: ['HookRefused', 'HookUnconfigured'],
    },
  };
}
const deliveryActs = proxyActivities<RolloutActivities>(ALERT_DELIVERY_OPTIONS);
/** Time a canary or a promoted stable gets beyond its progress deadline before the activity is timed out. */
const DEADLINE_MARGIN_MS = 60_000;

/** Steps that wait for a workload get its progress deadline (and heartbeat while they wait). */
function workloadWaitOptions(
  target: Target,
): Pick<ActivityOptions, 'startToCloseTimeout' | 'heartbeatTimeout'> {
  const w = target.workload;
  const deadlineMs = w?.kind === 'Deployment' ? w.progressDeadlineMs : w?.kind === 'local' ? 0 : 10 * 60_000;
  return {
    startToCloseTimeout: deadlineMs + DEADLINE_MARGIN_MS,
    ...(w?.kind === 'Deployment' ? { heartbeatTimeout: '30 seconds' } : {}),
  };
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

class TemporalScope implements Scope {
  private readonly scope = new CancellationScope();
  run<T>(fn: () => Promise<T>): Promise<T> {
    return this.scope.run(fn);
  }
  cancel(): void {
    this.scope.cancel();
  }
}

export class TemporalPort implements RolloutPort {
  /** One chain of deliveries per sink: a sink's events stay in order, sinks do not wait for each other. */
  private readonly chains = new Map<string, Promise<void>>();
  private deliveries = 0;
  /** Rounds already reported to the metrics sink (the carried count at the start of a run). */
  private roundsReported: number;
  /** Workflow time a rollback began at a weight above 0, until traffic reaches 0. */
  private rollbackSince: number | undefined;
  /** The last published attributes and when they changed (tracked through replay too, so a new worker knows them). */
  private published: { phase: string; stage: number; weight: number; changedAt: number } | undefined;
  private ended = false;

  constructor(
    private readonly input: RolloutInput,
    private readonly target: Target,
    /** The machine's state, read (never written) for the metrics sink. */
    private readonly state?: RolloutState,
  ) {
    this.roundsReported = state ? (state.analysesRun ?? state.analyses.length) : 0;
  }

  now(): number {
    return Date.now();
  }

  run<K extends StepName>(c: StepCommand<K>): Promise<StepResult<K>> {
    const fn = proxies[c.policy][c.step] as unknown as {
      executeWithOptions(o: ActivityOptions, args: unknown[]): Promise<StepResult<K>>;
    };
    return fn.executeWithOptions(
      {
        summary: c.summary,
        ...(c.workloadWait ? workloadWaitOptions(this.target) : {}),
        ...(c.hook ? hookOptions(c.hook) : {}),
      },
      c.args as unknown[],
    );
  }

  /** One signal per fleet workflow, sent together; one that does not run fails the signal: nothing is frozen there. */
  async askFleet(fleetIds: string[], ask: FleetAsk): Promise<string[]> {
    const reached = await Promise.all(
      fleetIds.map((id) =>
        getExternalWorkflowHandle(id)
          .signal(fleetAskSignal, ask)
          .then(
            () => id,
            () => undefined,
          ),
      ),
    );
    return reached.filter((id): id is string => id !== undefined);
  }

  /** A fleet workflow that no longer runs has no slot to take back. */
  async releaseFleetSlot(fleetId: string, workflowId: string): Promise<void> {
    await getExternalWorkflowHandle(fleetId)
      .signal(fleetReleaseSignal, { workflowId })
      .catch((err: unknown) =>
        log.info('fleet slot not given back', { fleet: fleetId, error: errorMessage(err) }),
      );
  }

  waitUntil(done: () => boolean, timeoutMs?: number, summary?: string): Promise<boolean | void> {
    return timeoutMs === undefined ? condition(done) : condition(done, timeoutMs, { summary });
  }

  sleep(ms: number): Promise<void> {
    return sleep(ms);
  }

  handlersFinished(): Promise<void> {
    return condition(allHandlersFinished);
  }

  scope(): Scope {
    return new TemporalScope();
  }

  nonCancellable<T>(fn: () => Promise<T>): Promise<T> {
    return CancellationScope.nonCancellable(fn);
  }

  isCancellation(err: unknown): boolean {
    return isCancellation(err);
  }

  isContinueAsNew(err: unknown): boolean {
    return err instanceof ContinueAsNew;
  }

  /** Starts one delivery after the sink's previous one; never awaited where the event happens. */
  deliver(sink: string, e: RolloutAlert): void {
    this.deliveries++;
    const previous = this.chains.get(sink) ?? Promise.resolve();
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
        this.deliveries--;
      }
    });
    this.chains.set(sink, next);
  }

  pendingDeliveries(): number {
    return this.deliveries;
  }

  publish(attributes: SearchAttributes | undefined, details: string): void {
    if (attributes) {
      upsertSearchAttributes([
        ...(attributes.first
          ? [
              { key: SA_APP, value: attributes.first.app },
              { key: SA_VERSION, value: attributes.first.version },
            ]
          : []),
        { key: SA_PHASE, value: attributes.phase },
        { key: SA_STAGE, value: attributes.stage },
        { key: SA_WEIGHT, value: attributes.weight },
      ]);
    }
    setCurrentDetails(details);
    this.reportMetrics(attributes);
    if (attributes && this.input.release) this.tellRelease(this.input.release, attributes);
  }

  /**
   * A release's member tells the release where it is: a signal per change (only rollouts a release started have
   * `input.release`, so no other history records it). A release that is gone is no reason to stop.
   */
  private tellRelease(release: { workflowId: string; member: string }, a: SearchAttributes): void {
    const progress: MemberProgress = {
      member: release.member,
      phase: a.phase,
      stage: a.stage,
      weight: a.weight,
      atPromotionGate: this.state?.promotionGate === 'waiting',
      ...(this.state?.rollbackReason ? { reason: this.state.rollbackReason } : {}),
    };
    getExternalWorkflowHandle(release.workflowId)
      .signal(memberProgressSignal, progress)
      .catch((err: unknown) => log.warn('release not told', { error: errorMessage(err) }));
  }

  /** Sink calls only: nothing here reaches history or changes what the workflow does. */
  private reportMetrics(attributes: SearchAttributes | undefined): void {
    const { namespace, app } = this.target;
    const s = this.state;
    if (s) {
      const rounds = s.analysesRun ?? s.analyses.length;
      const last = s.analyses[s.analyses.length - 1];
      if (rounds > this.roundsReported && last) {
        canaryMetrics.decision({
          verdict: last.verdict,
          action: last.action ?? 'none',
          severity: roundSeverity(last),
        });
      }
      this.roundsReported = rounds;
    }
    const now = Date.now();
    if (attributes) {
      const { phase, stage, weight } = attributes;
      if (phase === 'rolling_back' && this.rollbackSince === undefined) {
        if ((this.published?.weight ?? weight) > 0) this.rollbackSince = now;
      }
      if (this.rollbackSince !== undefined && weight === 0) {
        canaryMetrics.breachToZero({ namespace, app, ms: now - this.rollbackSince });
        this.rollbackSince = undefined;
      }
      this.published = { phase, stage, weight, changedAt: now };
    }
    const p = this.published;
    if (!p || this.ended) return;
    canaryMetrics.rollout({ namespace, app, ...p });
    this.ended =
      p.phase === 'rolled_back' ||
      p.phase === 'failed' ||
      p.phase === 'not_started' ||
      (p.phase === 'promoted' && p.weight === 0);
  }

  continueAsNewDue(historyLimit: number): boolean {
    const i = workflowInfo();
    return i.continueAsNewSuggested || i.historyLength >= historyLimit;
  }

  continueAsNew(carried: RolloutState): Promise<never> {
    return continueAsNew<(input: RolloutInput) => Promise<RolloutResult>>({ ...this.input, carried });
  }

  patched(which: LatePatch): boolean {
    return patched(LATE_PATCHES[which]);
  }

  outcome(outcome: 'rolled_back' | 'not_started', why: string, result: RolloutResult): Error {
    return outcome === 'rolled_back'
      ? outcomeFailure(ROLLED_BACK_FAILURE, `${ROLLED_BACK_MESSAGE_PREFIX}${why}`, result)
      : outcomeFailure(NOT_STARTED_FAILURE, `${NOT_STARTED_MESSAGE_PREFIX}${why}`, result);
  }

  readonly log = {
    info: (message: string, attrs?: Record<string, unknown>): void => log.info(message, attrs),
    warn: (message: string, attrs?: Record<string, unknown>): void => log.warn(message, attrs),
  };
}
