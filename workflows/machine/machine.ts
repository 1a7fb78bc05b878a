// The rollout machine: the typed state, what it means (RolloutView), and the transitions every part of the walk
// shares: messages from people, alerts, traffic shifts, and steps that must not give up. Side effects go through the
// port; this file has no Temporal in it.
import {
  buildRolloutAlert,
  rolloutCommands,
  type AlertEvent,
  type AlertKind,
  type AlertSeverity,
  type AlertVerdict,
  type RolloutAlert,
  type RolloutAlertInput,
} from '../alerts/events';
import { routes } from '../alerts/routing';
import type {
  AbortRequest,
  ApproveRequest,
  PauseAck,
  PauseRequest,
  PromoteAck,
  PromoteRequest,
  ResolveRequest,
} from '../api';
import { approvalExpiresAt, approvalsNeeded, recordApproval } from '../approval-policy';
import { renderDetails } from '../details';
import {
  ALL_NAMESPACES,
  describeFreeze,
  describeQueued,
  type FleetNotice,
  type SlotPlace,
} from '../fleet-model';
import { describeMirror } from '../mirror-spec';
import { formatDuration } from '../duration';
import { acknowledgeMissingEvidence, initialJudgeState } from '../judge-v2';
import type { ApprovalRecord, ResolveRecord, RolloutStatus } from '../types';
import type { WeightResult } from '../../activities/rollout-activities';
import {
  ALERT_FLUSH_MS,
  MAX_APPROVALS_KEPT,
  RETRY_PAUSE_MS,
  errorMessage,
  iso,
  pushBounded,
  type RolloutContext,
} from './context';
import { ResolvedByHand } from './errors';
import type { RolloutPort, Scope } from './port';
import { carryOver, type RolloutState } from './state';
import { rolloutStatus } from './status';
import { RolloutView } from './views';

/** Events only rollouts from alert-sinks-v2 on raise (older histories never scheduled them). */
const V2_ONLY_KINDS: readonly AlertKind[] = [
  'frozen',
  'unfrozen',
  'queued',
  'dequeued',
  'approved',
  'approval_reminder',
  'approval_escalated',
  'stuck',
  'rollback_started',
  'hook_failed',
];

type AlertExtra = Partial<Omit<RolloutAlertInput, 'kind' | 'message'>>;

export class RolloutMachine extends RolloutView {
  /** Bumped by every message so a wait re-evaluates at once. */
  messages = 0;
  private published = { phase: '', stage: -1, weight: -1 };
  /** The sinks this worker delivers to (names only), asked once per run (alert-sinks-v2). */
  sinkNames: string[] | undefined;
  /** Events raised before the sinks are known, or by handlers: routed when the walk next runs. */
  private readonly early: RolloutAlert[] = [];
  /** The walk: an abort cancels it. */
  readonly walkScope: Scope;
  /** The step that keeps failing, while it runs one attempt (a resolve cancels it). */
  stepScope: Scope | undefined;

  constructor(
    s: RolloutState,
    ctx: RolloutContext,
    readonly port: RolloutPort,
  ) {
    super(s, ctx);
    this.walkScope = port.scope();
  }

  now(): number {
    return this.port.now();
  }

  status(): RolloutStatus {
    return rolloutStatus(this, this.now());
  }

  /** Search attributes and current details: what the Web UI shows. Upserts only on change (each is a history event). */
  publish(): void {
    const s = this.s;
    const p = this.phase();
    const st = s.stageIndex + 1;
    const changed =
      p !== this.published.phase || st !== this.published.stage || s.weight !== this.published.weight;
    this.port.publish(
      changed
        ? {
            // App and version ride along with the first upsert of a run, for rollouts not started by our client.
            ...(this.published.stage === -1
              ? { first: { app: this.ctx.target.app, version: this.ctx.version } }
              : {}),
            phase: p,
            stage: st,
            weight: s.weight,
          }
        : undefined,
      renderDetails(this.status(), this.plan, this.ctx.cli),
    );
    if (changed) this.published = { phase: p, stage: st, weight: s.weight };
  }

  // ---------- alerts ----------

  private lastVerdict(): AlertVerdict | undefined {
    const last = this.s.analyses[this.s.analyses.length - 1];
    if (!last) return undefined;
    return {
      verdict: last.verdict,
      at: last.at,
      checks: last.checks.map((c) => ({ name: c.name, value: c.value, outcome: c.judged ?? c.outcome })),
    };
  }

  /** Raises an event (alert-sinks-v2): a stable id, then a delivery to each sink the plan routes it to. */
  private emit(kind: AlertKind, message: string, extra: AlertExtra = {}, fromHandler = false): void {
    const { s, ctx } = this;
    if (!ctx.flags.alertsV2) return;
    s.alertSeq = (s.alertSeq ?? 0) + 1;
    const verdict = this.lastVerdict();
    const e = buildRolloutAlert({
      workflowId: ctx.workflowId,
      firstRunId: ctx.firstRunId,
      seq: s.alertSeq,
      kind,
      target: { app: ctx.target.app, namespace: ctx.target.namespace },
      version: ctx.version,
      message,
      at: iso(this.now()),
      stage: s.stageIndex + 1,
      stages: this.plan.stages.length,
      weight: s.weight,
      temporalNamespace: ctx.temporalNamespace,
      cli: ctx.cli,
      ...(verdict ? { lastVerdict: verdict } : {}),
      // The end of a rollout resolves every check's condition too (PagerDuty keeps no list of what is open).
      ...(kind === 'promoted' || kind === 'rolled_back'
        ? { resolves: this.plan.analysis.checks.map((c) => `check:${c.name}`) }
        : {}),
      ...extra,
    });
    // A handler's deliveries start when the walk next runs, never inside the handler: on replay an Update may
    // be delivered together with activity results it originally preceded, and a delivery started in the handler
    // would then be scheduled in another order than history recorded.
    if (this.sinkNames === undefined || fromHandler) this.early.push(e);
    else this.route(e);
  }

  /** Starts the deliveries of events raised before the sinks were known or by handlers. */
  routeEarly(): void {
    if (this.sinkNames !== undefined) this.early.splice(0).forEach((e) => this.route(e));
  }

  private route(e: RolloutAlert): void {
    for (const sink of this.sinkNames ?? []) {
      if (routes(this.plan.alerts?.routes, sink, e)) this.port.deliver(sink, e);
    }
  }

  /** Before the run ends (completion, continue-as-new): the deliveries under way finish, within a bound. */
  async flushAlerts(): Promise<void> {
    this.routeEarly();
    if (!this.ctx.flags.alertsV2 || this.port.pendingDeliveries() === 0) return;
    await this.port.waitUntil(
      () => this.port.pendingDeliveries() === 0,
      ALERT_FLUSH_MS,
      'deliver the last alerts',
    );
  }

  /**
   * Sends an alert. From alert-sinks-v2 on it only starts the deliveries (nothing waits for a sink); before it,
   * from the walk a cancellation still stops the walk, and from handlers nothing propagates.
   */
  async alert(
    event: AlertKind,
    severity: AlertSeverity,
    message: string,
    fromHandler = false,
    extra: AlertExtra = {},
  ): Promise<void> {
    const { s, ctx } = this;
    if (ctx.flags.alertsV2) {
      this.emit(event, message, { severity, ...extra }, fromHandler);
      return;
    }
    // Kinds that came with alert-sinks-v2 were never sent by older rollouts.
    if (V2_ONLY_KINDS.includes(event)) return;
    const e: AlertEvent = {
      event,
      severity,
      target: ctx.target,
      version: ctx.version,
      workflowId: ctx.workflowId,
      message,
      stage: s.stageIndex + 1,
      weight: s.weight,
      at: iso(this.now()),
    };
    try {
      await this.port.run({ policy: 'alert', step: 'sendAlert', summary: `alert: ${event}`, args: [e] });
    } catch (err) {
      if (!fromHandler && this.port.isCancellation(err)) throw err;
      // An alert that cannot be delivered never blocks the rollout, and never blocks a rollback.
      this.port.log.warn('alert not delivered', { event, error: String(err) });
    }
  }

  // ---------- messages (each validated first: see the refusals in RolloutView) ----------

  /** A gate's answer, or a person's answer to a question about missing evidence or a breach. */
  approve(req: ApproveRequest): ApprovalRecord {
    const s = this.s;
    const now = this.now();
    if (s.hookQuestion && !this.gateWaiting()) {
      // Going on despite a failed hook (onFailure: approval).
      const q = s.hookQuestion;
      s.hookQuestion = undefined;
      const accepted: ApprovalRecord = {
        stage: q.stage,
        by: req.identity,
        at: iso(now),
        kind: 'hook-failure-accepted',
        comment: req.comment ?? q.reason,
      };
      pushBounded(s.approvals, accepted, MAX_APPROVALS_KEPT);
      this.messages++;
      this.publish();
      return accepted;
    }
    if (s.evidenceQuestion && !this.gateWaiting()) {
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
      this.messages++;
      this.publish();
      return waived;
    }
    const policy = this.gatePolicy();
    const record: ApprovalRecord = {
      stage: s.stageIndex + 1,
      ...(this.atPromotionGate() ? { promotion: true } : {}),
      by: policy ? req.identity.trim() : req.identity,
      at: iso(now),
      kind: 'approved',
      ...(req.comment ? { comment: req.comment } : {}),
    };
    if (policy) {
      // Under a policy the gate passes once enough distinct, unexpired approvals are in (the walk decides).
      s.gateApprovals = recordApproval(
        this.gateState(),
        req.identity,
        now,
        req.comment,
        req.groups,
      ).approvals;
      const expires = approvalExpiresAt(policy, { identity: record.by, atMs: now });
      record.required = policy.required;
      record.count = policy.required - approvalsNeeded(policy, this.gateState(), now);
      if (expires !== undefined) record.expiresAt = iso(expires);
    } else {
      s.approvedStage = s.stageIndex;
    }
    pushBounded(s.approvals, record, MAX_APPROVALS_KEPT);
    this.messages++;
    if (policy) this.publish();
    return record;
  }

  /** Skip ahead to promotion, or, in the soak, end the soak now. */
  promote(req: PromoteRequest): PromoteAck {
    const s = this.s;
    if (this.soaking()) {
      // Promoted already: `promote --end-soak` during the soak finishes it now (stable takes the new version).
      s.soak!.endNow = { by: req.identity, at: this.now() };
      this.messages++;
      this.publish();
      return { fromStage: s.stageIndex + 1, acceptedAt: iso(this.now()) };
    }
    s.promoteRequest = { by: req.identity, at: this.now(), fromStage: s.stageIndex + 1 };
    pushBounded(
      s.approvals,
      {
        stage: s.stageIndex + 1,
        by: req.identity,
        at: iso(this.now()),
        kind: 'promote',
        ...(req.comment ? { comment: req.comment } : {}),
      },
      MAX_APPROVALS_KEPT,
    );
    this.messages++;
    return { fromStage: s.stageIndex + 1, acceptedAt: iso(this.now()) };
  }

  /** An abort: the walk is cancelled and the rollout rolls back (or, in the soak, goes back). */
  abort(req: AbortRequest): void {
    const s = this.s;
    // Idempotent: only the first abort counts, and a promotion under way is not undone.
    if (s.abortRequest || s.finalizing) return;
    if (this.soaking()) {
      // During the soak the previous version still runs: an abort goes back to it.
      s.abortRequest = { by: req.identity, reason: req.reason, back: true };
      this.messages++;
      this.walkScope.cancel();
      return;
    }
    if (s.phase !== 'progressing') return;
    // An abort while a gate or a question waits declines it: a person said no, nothing failed.
    const declined = this.gateWaiting()
      ? `the gate of ${this.atPromotionGate() ? 'the promotion' : `stage ${s.stageIndex + 1}`}`
      : s.evidenceQuestion
        ? `the question about ${s.evidenceQuestion.checks.join(', ') || 'missing evidence'}`
        : s.hookQuestion
          ? `the question about hook ${s.hookQuestion.hook}`
          : undefined;
    s.abortRequest = { by: req.identity, reason: req.reason, ...(declined ? { declined } : {}) };
    this.messages++;
    this.walkScope.cancel();
  }

  /** A person confirms traffic is back on stable while a rollback step keeps failing: that step ends. */
  resolve(req: ResolveRequest): ResolveRecord {
    const s = this.s;
    const record: ResolveRecord = {
      by: req.identity.trim(),
      reason: req.reason.trim(),
      at: iso(this.now()),
      ...(s.retrying ? { step: s.retrying.step } : {}),
    };
    s.resolved = record;
    pushBounded(
      s.approvals,
      { stage: s.stageIndex + 1, by: record.by, at: record.at, kind: 'resolved', comment: record.reason },
      MAX_APPROVALS_KEPT,
    );
    this.messages++;
    this.stepScope?.cancel();
    this.publish();
    return record;
  }

  pause(req: PauseRequest): PauseAck {
    const s = this.s;
    s.pausedSince = this.now();
    s.pausedBy = req.identity;
    s.pauseReason = req.reason;
    this.messages++;
    this.publish();
    return { at: iso(s.pausedSince), by: req.identity, stage: s.stageIndex + 1 };
  }

  resume(req: PauseRequest): PauseAck {
    const s = this.s;
    s.pausedMsInWait += this.now() - (s.pausedSince ?? this.now());
    if (s.machineV2 && this.plan.windows)
      s.pausedOpenMsInWait = (s.pausedOpenMsInWait ?? 0) + this.pausedHoldTime(this.now());
    s.pausedSince = undefined;
    s.pausedBy = undefined;
    s.pauseReason = undefined;
    this.messages++;
    this.publish();
    return { at: iso(this.now()), by: req.identity, stage: s.stageIndex + 1 };
  }

  /**
   * A fleet workflow's answer to an ask, or its news: the freeze of its scope, or none. Whatever build started the
   * rollout, a freeze holds it from its next advance on; only an ended rollout takes no notice.
   */
  fleetNotice(n: FleetNotice): Promise<void> {
    const s = this.s;
    const before = s.freezes?.[n.fleet];
    const asked = s.fleetAsked?.filter((id) => id !== n.fleet);
    s.fleetAsked = asked && asked.length > 0 ? asked : undefined;
    const freezes = { ...s.freezes };
    if (n.freeze) freezes[n.fleet] = n.freeze;
    else delete freezes[n.fleet];
    s.freezes = Object.keys(freezes).length > 0 ? freezes : undefined;
    this.messages++;
    const slotBefore = JSON.stringify(s.slot);
    const wasQueued = this.queued();
    if (s.slotAsked === n.fleet) s.slotAsked = undefined;
    // A slot is taken only before the canary; one granted later (a limit lifted) is still given back at the end.
    if (n.slot && s.phase === 'progressing') {
      // Who holds the slots is news for the alert, not state.
      const { holders: _holders, holderCount: _count, ...place } = n.slot;
      s.slot = { ...place, fleet: n.fleet };
      if (s.queueAlerts && !s.abortRequest) this.queueAlert(wasQueued, n.slot);
    }
    if (s.phase === 'progressing' && JSON.stringify(s.slot) !== slotBefore) this.publish();
    if (s.phase !== 'progressing' || JSON.stringify(before) === JSON.stringify(n.freeze))
      return Promise.resolve();
    this.publish();
    if (n.freeze) {
      const f = n.freeze;
      return this.alert('frozen', 'warning', `${this.label()} does not advance: ${describeFreeze(f)}`, true, {
        by: f.by,
        reason: f.reason,
      });
    }
    const still = this.frozen();
    return this.alert(
      'unfrozen',
      'info',
      `${this.label()}: the freeze of ${before!.scope === ALL_NAMESPACES ? 'every namespace' : `namespace ${before!.scope}`} was lifted` +
        (still ? `; still ${describeFreeze(still)}` : '; it advances again'),
      true,
    );
  }

  /**
   * From fleet-queue-alerts on: a rollout its namespace's maxConcurrent queues says so (its position, the limit, who
   * holds the slots, and how to leave the queue); once granted its slot, it says that. A move up the queue is quiet.
   */
  private queueAlert(wasQueued: boolean, told: SlotPlace): void {
    const { ctx } = this;
    const ns = ctx.target.namespace;
    if (!wasQueued && !told.granted) {
      const named = told.holders ?? [];
      const more = (told.holderCount ?? named.length) - named.length;
      const held =
        named.length > 0
          ? `; the slots are held by ${named.join(', ')}${more > 0 ? ` and ${more} more` : ''}`
          : '';
      const abort = rolloutCommands(ctx.workflowId, 'queued', undefined, ctx.cli).abort!;
      void this.alert(
        'queued',
        'info',
        `${this.label()} ${describeQueued(told, ns)}${held}. It deploys nothing until its turn comes; ` +
          `to leave the queue: ${abort}`,
        true,
      );
    } else if (wasQueued && told.granted) {
      void this.alert(
        'dequeued',
        'info',
        `${this.label()}: ` +
          (told.max !== undefined
            ? `its slot in namespace ${ns} is granted (maxConcurrent ${told.max})`
            : `the limit of namespace ${ns} was lifted`) +
          '; it leaves the queue and goes on to its canary',
        true,
      );
    }
  }

  pausedAlert(req: PauseRequest): Promise<void> {
    const commands = this.releaseHoldCommands(req.identity);
    return this.alert(
      'paused',
      'info',
      `${this.label()} paused by ${req.identity}${req.reason ? `: ${req.reason}` : ''}`,
      true,
      { by: req.identity, ...(req.reason ? { reason: req.reason } : {}), ...(commands ? { commands } : {}) },
    );
  }

  resumedAlert(req: PauseRequest): Promise<void> {
    return this.alert('resumed', 'info', `${this.label()} resumed by ${req.identity}`, true, {
      by: req.identity,
    });
  }

  // ---------- steps every part of the walk shares ----------

  /**
   * Someone else changed the weights. The rollout does not fight an operator: it pauses (analysis goes on and
   * still rolls back on failure), and a resume puts the planned weight back.
   */
  async driftDetected(expected: number, found: number): Promise<void> {
    const { s, ctx } = this;
    s.drift = { expected, found, at: this.now() };
    if (s.pausedSince === undefined) {
      s.pausedSince = this.now();
      s.pausedBy = 'drift detection';
      s.pauseReason = `the canary weight is ${found}%, not the ${expected}% this rollout set`;
    }
    this.messages++;
    this.publish();
    await this.alert(
      'drift_detected',
      'warning',
      `${this.label()}: someone changed the traffic weights (canary at ${found}%, the rollout set ${expected}%); ` +
        `the rollout is paused. Resume to restore ${s.weight}%: ${ctx.cli} resume ${ctx.workflowId}; or abort: ${ctx.cli} abort ${ctx.workflowId} --reason "why"`,
    );
  }

  /**
   * Runs a step that must not give up; between batches of attempts, status says why it is stuck. From never-stuck
   * on, the first failed batch alerts with the way out, and a person's resolve ends the step (ResolvedByHand), even
   * mid-attempt.
   */
  async persist<T>(step: string, run: () => Promise<T>): Promise<T> {
    const { s, ctx } = this;
    for (let attempts = 1; ; attempts++) {
      if (s.resolved) throw new ResolvedByHand();
      try {
        let result: T;
        if (s.neverStuck) {
          this.stepScope = this.port.scope();
          result = await this.stepScope.run(run);
        } else {
          result = await run();
        }
        if (s.retrying) {
          s.retrying = undefined;
          this.publish();
        }
        return result;
      } catch (err) {
        if (s.resolved) throw new ResolvedByHand();
        s.retrying = { step, attempts, error: errorMessage(err), since: s.retrying?.since ?? this.now() };
        this.publish();
        this.port.log.warn('step keeps failing; retrying', { step, attempts, error: errorMessage(err) });
        if (!s.neverStuck) {
          await this.port.sleep(RETRY_PAUSE_MS);
          continue;
        }
        if (attempts === 1) {
          await this.alert(
            'stuck',
            'critical',
            `${this.label()} cannot ${step}: ${errorMessage(err)}. It retries every ${formatDuration(RETRY_PAUSE_MS)}; ` +
              `fix what the step needs, or once all traffic is on stable (moved by hand), end it: ${this.resolveCommand()}`,
            false,
            { commands: { status: `${ctx.cli} status ${ctx.workflowId}`, resolve: this.resolveCommand() } },
          );
        }
        const seen = s.resolved;
        await this.port.waitUntil(() => s.resolved !== seen, RETRY_PAUSE_MS, `retry: ${step}`);
      } finally {
        this.stepScope = undefined;
      }
    }
  }

  /** Records what the router did: the achieved weight where it differs, and what it could not do. */
  applyWeight(weight: number, r: WeightResult | undefined | null): void {
    const s = this.s;
    s.weight = weight;
    if (r && typeof r === 'object') {
      s.achievedWeight = r.current !== weight ? r.current : undefined;
      s.routingNote = r.note ?? (r.unverified ? `weight not verified: ${r.unverified}` : undefined);
    }
  }

  async shift(weight: number, why: string, opts: { restoring?: boolean } = {}): Promise<void> {
    const { s, ctx } = this;
    const expected = s.achievedWeight ?? s.weight;
    // A shadow stage's mirror: set with the stage's weight 0 (kept when restoring it); any other shift removes it.
    const mirror =
      weight === 0 && s.phase === 'progressing' && !s.finalizing
        ? opts.restoring
          ? this.mirroring()
          : this.stage().mirror
        : undefined;
    // Marked before the call: an attempt may land even when its answer is lost.
    if (s.touched && (weight > 0 || mirror)) s.touched.traffic = true;
    const r = await this.port.run({
      policy: 'step',
      step: 'setCanaryWeight',
      summary: `${why}: canary ${s.weight}% → ${weight}%${mirror ? `, mirroring ${describeMirror(mirror)}` : ''}`,
      // The replica-ratio router waits for a grown canary's pods before stable shrinks: a workload's deadline.
      workloadWait: ctx.target.traffic?.router === 'replicas',
      args: [
        {
          target: ctx.target,
          weight,
          ...(ctx.flags.routingLifecycle && !opts.restoring ? { expected } : {}),
          ...(mirror ? { mirror } : {}),
        },
      ],
    });
    this.applyWeight(weight, r);
    if (r?.drift && !opts.restoring) {
      // Someone changed the weights since the last shift; the planned weight is now set deliberately.
      await this.alert(
        'drift_detected',
        'warning',
        `${this.label()}: the canary weight was ${r.drift.found}%, not the ${r.drift.expected}% this rollout set; now set to ${weight}% (${why})`,
      );
    }
  }

  async maybeContinueAsNew(): Promise<void> {
    if (!this.port.continueAsNewDue(this.ctx.historyLimit)) return;
    // Let in-flight handlers (alerts from pause/resume) finish so nothing is lost across runs.
    await this.port.handlersFinished();
    await this.flushAlerts();
    await this.port.continueAsNew(carryOver(this.s));
  }
}
