// The rollout machine: the typed state, what it means (RolloutView), and what every part of the walk shares: messages
// from people (their transitions are in transitions.ts; this class carries out the commands they return), alerts,
// traffic shifts, and steps that must not give up. Side effects go through the port; this file has no Temporal in it.
import {
  buildRolloutAlert,
  type AlertEvent,
  type AlertKind,
  type AlertSeverity,
  type AlertVerdict,
  type RolloutAlert,
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
import { renderDetails } from '../details';
import type { FleetNotice } from '../fleet-model';
import { describeMirror } from '../mirror-spec';
import { formatDuration } from '../duration';
import type { ApprovalRecord, ResolveRecord, RolloutStatus } from '../types';
import type { WeightResult } from '../../activities/rollout-activities';
import { ALERT_FLUSH_MS, RETRY_PAUSE_MS, errorMessage, iso, type RolloutContext } from './context';
import { ResolvedByHand } from './errors';
import type { RolloutPort, Scope } from './port';
import { applyWeight, carryOver, type RolloutState } from './state';
import { rolloutStatus } from './status';
import {
  transition,
  type AckOf,
  type AlertExtra,
  type MachineCommand,
  type RolloutEvent,
} from './transitions';
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
  /** The alert the last pause or resume raised, until its handler takes it (pausedAlert, resumedAlert). */
  private messageAlert: Promise<void> | undefined;

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

  // ---------- messages (each validated first: see the refusals in RolloutView; what each does: transitions.ts) ----------

  /**
   * Carries out a transition's commands in the order given, each at once (no await between them: the order of the
   * upserts, alert steps and cancels is the order history records). Returns the promise of the last alert, as the
   * messages awaited it before they were data; an alert before it is started and not awaited (only a handler's comes
   * first, and a handler's alert never fails).
   */
  private carryOut(commands: readonly MachineCommand[]): Promise<void> | undefined {
    let alerted: Promise<void> | undefined;
    for (const c of commands) {
      switch (c.type) {
        case 'wake':
          this.messages++;
          break;
        case 'publish':
          this.publish();
          break;
        case 'alert':
          alerted = this.alert(c.kind, c.severity, c.message, c.fromHandler, c.extra);
          break;
        case 'cancelWalk':
          this.walkScope.cancel();
          break;
        case 'cancelStep':
          this.stepScope?.cancel();
          break;
        default:
          // A round's commands (drift, shift, rollback) are the walk's to carry out (analysis.ts), never a message's.
          throw new Error(`a message does not ${c.type}`);
      }
    }
    return alerted;
  }

  /**
   * Carries out commands the walk's decisions returned (a wake, a publish, an alert) as a message's are carried out:
   * in order, at once. Returns the promise of the last alert, for the caller to await as it awaited that alert
   * (undefined without one). The one way anything but a message wakes the walk.
   */
  carry(commands: readonly MachineCommand[]): Promise<void> | undefined {
    return this.carryOut(commands);
  }

  /** Applies a message as its transition says, carries out its commands, and returns its answer. */
  private take<E extends RolloutEvent>(event: E): { ack: AckOf<E>; alerted: Promise<void> } {
    const { ack, commands } = transition(this, event, this.now());
    return { ack, alerted: this.carryOut(commands) ?? Promise.resolve() };
  }

  /** A gate's answer, or a person's answer to a question about missing evidence, a breach or a failed hook. */
  approve(req: ApproveRequest): ApprovalRecord {
    return this.take({ type: 'approve', req }).ack;
  }

  /** Skip ahead to promotion, or, in the soak, end the soak now. */
  promote(req: PromoteRequest): PromoteAck {
    return this.take({ type: 'promote', req }).ack;
  }

  /** An abort: the walk is cancelled and the rollout rolls back (or, in the soak, goes back). */
  abort(req: AbortRequest): void {
    this.take({ type: 'abort', req });
  }

  /** A person confirms traffic is back on stable while a rollback step keeps failing: that step ends. */
  resolve(req: ResolveRequest): ResolveRecord {
    return this.take({ type: 'resolve', req }).ack;
  }

  /** Pauses, and raises the `paused` alert; a handler awaits that alert through pausedAlert(). */
  pause(req: PauseRequest): PauseAck {
    const { ack, alerted } = this.take({ type: 'pause', req });
    this.messageAlert = alerted;
    return ack;
  }

  /** Resumes, and raises the `resumed` alert; a handler awaits that alert through resumedAlert(). */
  resume(req: PauseRequest): PauseAck {
    const { ack, alerted } = this.take({ type: 'resume', req });
    this.messageAlert = alerted;
    return ack;
  }

  /** A fleet workflow's answer to an ask, or its news (see transitions.ts); resolves once its alert is raised. */
  fleetNotice(n: FleetNotice): Promise<void> {
    return this.take({ type: 'fleetNotice', notice: n }).alerted;
  }

  /**
   * The `paused` alert the pause just taken raised (pause() raises it, right after its publish): handlers await it,
   * so that a run waits for it (handlersFinished) before it continues as new.
   */
  pausedAlert(_req: PauseRequest): Promise<void> {
    return this.takeMessageAlert();
  }

  /** The `resumed` alert the resume just taken raised: see pausedAlert. */
  resumedAlert(_req: PauseRequest): Promise<void> {
    return this.takeMessageAlert();
  }

  private takeMessageAlert(): Promise<void> {
    const alerted = this.messageAlert ?? Promise.resolve();
    this.messageAlert = undefined;
    return alerted;
  }

  // ---------- steps every part of the walk shares ----------

  /** Someone else changed the weights: the rollout pauses and says so (see transitions.ts). */
  async driftDetected(expected: number, found: number): Promise<void> {
    await this.take({ type: 'drift', expected, found }).alerted;
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
    applyWeight(this.s, weight, r);
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
