// What the rollout's state means: its phase, the gate it is at, how much of a hold is served, whether a stage has
// the evidence to advance, and why a message would change nothing. Pure reads of the state and the plan.
import {
  canApprove,
  gateTimers,
  promotionRefusal,
  UNKNOWN_IDENTITY,
  type ApprovalPolicy,
} from '../approval-policy';
import { checksForStage } from '../analysis-spec';
import { roundSlackFor } from '../judge-v2';
import type { AlertCommands } from '../alerts/events';
import type { ApproveRequest, PromoteRequest, ResolveRequest } from '../api';
import type { Gate, Phase, Stage, StageMirror, StageView } from '../types';
import type { FleetFreeze } from '../fleet-model';
import { openMsBetween, openReachedAt } from '../windows';
import { iso, type RolloutContext } from './context';
import type { RolloutState } from './state';

export class RolloutView {
  constructor(
    readonly s: RolloutState,
    readonly ctx: RolloutContext,
  ) {}

  get plan() {
    return this.ctx.plan;
  }

  stage(): Stage {
    return this.plan.stages[this.s.stageIndex];
  }
  /** In the soak after promotion, before stable takes the new version (the previous one still runs). */
  soaking(): boolean {
    const s = this.s;
    return s.phase === 'promoted' && s.soak !== undefined && !s.finalizing;
  }
  /** Waiting at the promotion gate: the final stage's hold is served, promotion waits for a person. */
  atPromotionGate(): boolean {
    return this.s.promotionGate === 'waiting' && this.plan.promotion.gate !== undefined;
  }
  /** The gate the rollout is at or comes to next: the promotion gate, or the current stage's. */
  currentGate(): Gate {
    return this.atPromotionGate() ? this.plan.promotion.gate! : this.stage().gate;
  }
  gateWaiting(): boolean {
    const s = this.s;
    return (
      s.phase === 'progressing' &&
      !s.finalizing &&
      (this.atPromotionGate() || (!s.stageEntered && this.stage().gate.type === 'approval'))
    );
  }
  /** How messages name the waiting gate: `stage 3` or `the promotion (after stage 4)`. */
  gateName(): string {
    const n = this.s.stageIndex + 1;
    return this.atPromotionGate() ? `the promotion (after stage ${n})` : `stage ${n}`;
  }
  phase(): Phase {
    const s = this.s;
    if (s.phase !== 'progressing') return s.phase;
    if (s.pausedSince !== undefined) return 'paused';
    if (this.queued()) return 'queued';
    // From machine-v2 on, an approved gate no longer waits for a person (a closed window may still hold it).
    const waiting = this.gateWaiting() && !(s.machineV2 && s.approvedStage === s.stageIndex);
    return waiting || s.evidenceQuestion || s.hookQuestion ? 'waiting_approval' : 'progressing';
  }
  /** Waiting for a slot of its namespace's maxConcurrent (before its canary). */
  queued(): boolean {
    return this.s.slot !== undefined && !this.s.slot.granted;
  }
  /** The freeze that holds the rollout (the first its fleet workflows told it of), if any. */
  frozen(): FleetFreeze | undefined {
    const f = this.s.freezes;
    return f ? Object.values(f)[0] : undefined;
  }
  pausedMs(now: number): number {
    const s = this.s;
    return s.pausedMsInWait + (s.pausedSince !== undefined ? now - s.pausedSince : 0);
  }
  /**
   * Whether a hold counts only time inside the deployment windows (machine-v2, plans with windows): the time in
   * which the step the hold leads to may happen (entering the next stage, or promotion).
   */
  private holdCountsWindows(): boolean {
    return this.s.machineV2 === true && this.plan.windows !== undefined;
  }
  /** Whether the step the current stage's hold leads to is the promotion (entering the final stage counts as it). */
  private holdLeadsToPromotion(): boolean {
    return this.s.stageIndex + 1 >= this.plan.stages.length - 1;
  }
  /** Window time in [from, to) for the current stage's hold (see holdCountsWindows). */
  private holdTime(from: number, to: number): number {
    return openMsBetween(this.plan.windows, from, to, this.holdLeadsToPromotion());
  }
  /**
   * Hold time already served in the current stage (paused time excluded, and from machine-v2 on time outside the
   * deployment windows); all of it at the promotion gate.
   */
  heldMs(now: number): number {
    const s = this.s;
    if (s.promotionGate !== undefined) return this.stage().holdMs;
    if (!s.stageEntered || s.waitStartedAt === undefined) return 0;
    if (!this.holdCountsWindows()) return now - s.waitStartedAt - this.pausedMs(now);
    const pausedNow = s.pausedSince !== undefined ? this.holdTime(s.pausedSince, now) : 0;
    return this.holdTime(s.waitStartedAt, now) - (s.pausedOpenMsInWait ?? 0) - pausedNow;
  }
  /** Window time the pause that ends now took from the current wait (machine-v2, plans with windows). */
  pausedHoldTime(now: number): number {
    const s = this.s;
    return this.holdCountsWindows() && s.pausedSince !== undefined ? this.holdTime(s.pausedSince, now) : 0;
  }
  stageTimeLeft(now: number): number {
    const s = this.s;
    return s.phase !== 'progressing' || s.finalizing
      ? 0
      : s.stageEntered
        ? Math.max(0, this.stage().holdMs - this.heldMs(now))
        : this.stage().holdMs;
  }
  planTimeLeft(now: number): number {
    const s = this.s;
    return s.phase !== 'progressing' || s.finalizing
      ? 0
      : this.stageTimeLeft(now) +
          this.plan.stages.slice(s.stageIndex + 1).reduce((sum, st) => sum + st.holdMs, 0);
  }
  /** The stage (1-based) whose traffic the canary carries: before a stage is entered, the one before it. */
  liveStage(): number {
    return this.s.stageEntered ? this.s.stageIndex + 1 : this.s.stageIndex;
  }
  /**
   * The full analysis form's checks that apply in stage `n` (a check's `stages`); undefined for short-form plans.
   * A stage none of whose checks apply moves by time alone, as a plan without checks does.
   */
  stageChecks(n: number) {
    return this.plan.analysis.rules ? checksForStage(this.plan.analysis.rules, n) : undefined;
  }
  /** Whether a round is due on the schedule: checks apply in the live stage and the canary carries traffic. */
  analysisActive(): boolean {
    return (
      this.plan.analysis.checks.length > 0 &&
      this.stageChecks(this.liveStage())?.length !== 0 &&
      this.s.canaryReady &&
      (this.s.weight > 0 || this.mirroring() !== undefined)
    );
  }
  /** The mirror the live stage keeps on while the canary serves no one (a shadow stage, workflows/mirror-spec.ts). */
  mirroring(): StageMirror | undefined {
    const s = this.s;
    if (s.weight !== 0 || s.phase !== 'progressing' || s.finalizing) return undefined;
    return this.plan.stages[this.liveStage() - 1]?.mirror;
  }
  /**
   * Whether the current stage has the evidence to advance: with checks, its latest analysis passed (or a person let
   * it go on without the missing evidence). A zero hold (the final stage by default) needs none.
   */
  stageEvidence(now: number): boolean {
    const s = this.s;
    return (
      !s.evidenceQuestion &&
      (this.plan.analysis.checks.length === 0 ||
        this.stageChecks(s.stageIndex + 1)?.every((c) => c.dryRun) === true ||
        this.stage().holdMs === 0 ||
        s.evidenceWaivedStage === s.stageIndex ||
        (s.passedInStage &&
          s.lastVerdict === 'pass' &&
          this.healthyLongEnough(now) &&
          (!s.neverStuck || this.roundAfterHold())))
    );
  }
  /**
   * The instant the current stage's hold is served (paused time added, and from machine-v2 on time outside the
   * windows), undefined while paused or not entered, or when the windows do not open for long enough.
   */
  holdServedAt(): number | undefined {
    const s = this.s;
    if (!s.stageEntered || s.waitStartedAt === undefined || s.pausedSince !== undefined) return undefined;
    if (!this.holdCountsWindows()) return s.waitStartedAt + s.pausedMsInWait + this.stage().holdMs;
    return openReachedAt(
      this.plan.windows,
      s.waitStartedAt,
      this.stage().holdMs + (s.pausedOpenMsInWait ?? 0),
      this.holdLeadsToPromotion(),
    );
  }
  /**
   * Whether the latest round was taken at or after the end of the hold (never-stuck): the last interval of a stage is
   * judged before the traffic moves on, not after.
   */
  roundAfterHold(): boolean {
    const served = this.holdServedAt();
    return served === undefined || (this.s.lastAnalysisAt ?? -Infinity) >= served;
  }
  /** A stage with healthyFor: every round has passed for that long (always true without it). */
  healthyLongEnough(now: number): boolean {
    const s = this.s;
    const need = this.stage().healthyForMs;
    // From never-stuck on, within the rounds' slack (JudgeOptions.roundSlackMs).
    const slack = s.neverStuck ? roundSlackFor(this.plan.analysis.intervalMs) : 0;
    return need === undefined || (s.passingSince !== undefined && now - s.passingSince + slack >= need);
  }
  /** How long a served hold may wait for a passing analysis before a person is told: 3 rounds, at least 15 min. */
  evidenceWaitAlertMs(): number {
    return Math.max(15 * 60_000, 3 * this.plan.analysis.intervalMs);
  }

  stageState(i: number): StageView['state'] {
    const s = this.s;
    const last = this.plan.stages.length - 1;
    if (s.skippedFrom !== undefined && i >= s.skippedFrom && i < last) return 'skipped';
    if (s.failedStage === i && (s.phase === 'rolling_back' || s.phase === 'rolled_back')) {
      // Failed only where a check or a step failed; a person's abort, a declined gate, a timeout or a cancel stopped it.
      return !s.ending || s.ending.kind === 'check' || s.ending.kind === 'step' ? 'failed' : 'stopped';
    }
    // At the promotion gate the final stage has served its hold.
    if (s.phase === 'promoted' || i < s.stageIndex || s.promotionGate !== undefined) return 'done';
    if (i === s.stageIndex && s.phase === 'progressing') return 'current';
    return 'pending';
  }

  /** The approval policy of the current stage's gate, if it has one. */
  gatePolicy(): ApprovalPolicy | undefined {
    const g = this.currentGate();
    return g.type === 'approval' ? g.policy : undefined;
  }
  gateState() {
    return { approvals: this.s.gateApprovals ?? [] };
  }
  /** When the current gate reminds and escalates, paused time excluded (absent while paused). */
  gateTimes(now: number): { remindAtMs?: number; escalateAtMs?: number } {
    const s = this.s;
    return s.waitStartedAt === undefined || s.pausedSince !== undefined
      ? {}
      : gateTimers(this.gatePolicy(), s.waitStartedAt + this.pausedMs(now));
  }

  /** Whether promotion soaks (never-stuck, with a cleanup delay): the previous version keeps running meanwhile. */
  soakPromotion(): boolean {
    return (
      this.s.neverStuck === true && this.ctx.flags.routingLifecycle && this.plan.promotion.cleanupDelayMs > 0
    );
  }

  label(): string {
    return `${this.ctx.target.namespace}/${this.ctx.target.app} ${this.ctx.version}`;
  }
  routerName(): string {
    return this.ctx.target.traffic?.router ?? 'default';
  }
  resolveCommand(): string {
    return `${this.ctx.cli} resolve ${this.ctx.workflowId} --confirm-traffic-restored --reason "what was done"`;
  }

  /** How a person removes the canary workload by hand when the rollout could not (machine-v2). */
  cleanupFix(): string {
    const { target } = this.ctx;
    const w = target.workload;
    return w?.kind === 'Deployment'
      ? `kubectl -n ${target.namespace} delete deployment ${w.canaryName}`
      : `remove the canary workload of ${target.namespace}/${target.app} by hand`;
  }

  // ---------- why a message would change nothing (validators; undefined: it is accepted) ----------

  /** Why a pause would change nothing, or undefined when it would pause. */
  pauseRefusal(): string | undefined {
    const s = this.s;
    if (s.phase !== 'progressing') return `cannot pause: the rollout is ${s.phase}`;
    if (s.finalizing) return 'cannot pause: promotion is under way';
    if (s.pausedSince !== undefined) {
      return `already paused since ${iso(s.pausedSince)} by ${s.pausedBy}${s.pauseReason ? ` (${s.pauseReason})` : ''}`;
    }
    return undefined;
  }
  resumeRefusal(): string | undefined {
    return this.s.pausedSince === undefined
      ? `not paused: the rollout is ${this.phase()} at stage ${this.s.stageIndex + 1}/${this.plan.stages.length}`
      : undefined;
  }

  /**
   * A release member paused by its release's hold (onFailure: rollback-member) waits for the release's answer: only
   * the release resumes it. Undefined when the resume is someone else's to give.
   */
  releaseHoldRefusal(identity: string | undefined): string | undefined {
    const r = this.ctx.release;
    const s = this.s;
    // Only the hold pauses a member as the release: a release pause carries the person's identity.
    if (!r || s.pausedSince === undefined || s.pausedBy !== r.identity || identity === r.identity)
      return undefined;
    const { cli } = this.ctx;
    return (
      `cannot resume: this rollout is member ${r.member} of release ${r.name}, which holds it` +
      `${s.pauseReason ? ` (${s.pauseReason})` : ''}; answer the release: \`${cli} release approve ${r.name}\` goes on ` +
      `without the members that rolled back, \`${cli} release abort ${r.name} --reason ...\` rolls every member back`
    );
  }

  /**
   * The commands a `paused` alert offers when the pause is the release's hold (rollback-member): only the release's
   * answers move the member on, so they stand where `canary resume` would. Undefined for any other pause.
   */
  releaseHoldCommands(pausedBy: string): AlertCommands | undefined {
    const r = this.ctx.release;
    if (!r || pausedBy !== r.identity) return undefined;
    const { cli, workflowId } = this.ctx;
    return {
      status: `${cli} status ${workflowId}`,
      resume: `${cli} release approve ${r.name}`,
      abort: `${cli} release abort ${r.name} --reason "<why>"`,
    };
  }

  approveRefusal(req: Partial<ApproveRequest>, now: number): string | undefined {
    const s = this.s;
    if ((s.evidenceQuestion || s.hookQuestion) && !this.gateWaiting() && s.phase === 'progressing') {
      if (req.stage !== undefined && req.stage !== s.stageIndex + 1) {
        return `stage ${req.stage} is not waiting for approval; stage ${s.stageIndex + 1} is`;
      }
      return undefined;
    }
    if (!this.gateWaiting()) {
      return `no approval gate is waiting: the rollout is ${this.phase()} at stage ${s.stageIndex + 1}/${this.plan.stages.length}`;
    }
    if (req.stage !== undefined && req.stage !== s.stageIndex + 1) {
      return `stage ${req.stage} is not waiting for approval; ${this.gateName()} is`;
    }
    if (s.approvedStage === s.stageIndex) return `${this.gateName()} is already approved`;
    const release = this.ctx.releaseTogether;
    if (release && this.atPromotionGate() && req.identity !== release.identity) {
      return `this rollout is member ${release.member} of release ${release.name}, which promotes its members together: the release approves this gate once every member waits at it (see ${this.ctx.cli} release status ${release.name}; abort with ${this.ctx.cli} release abort ${release.name})`;
    }
    const policy = this.gatePolicy();
    if (policy) {
      const check = canApprove(policy, this.gateState(), req.identity ?? '', now, req.groups);
      if (!check.ok) return check.reason;
    }
    return undefined;
  }

  promoteRefusal(req: Partial<PromoteRequest>, now: number): string | undefined {
    const s = this.s;
    const { cli, workflowId } = this.ctx;
    if (this.soaking()) {
      if (s.soak?.endNow) return 'the soak is already ending: stable takes the new version now';
      if (req.endSoak) return undefined;
      return (
        `cannot promote: the rollout is promoted and soaks until ${iso(s.soak!.until)} (the previous version ` +
        `keeps running meanwhile); to end the soak now: ${cli} promote ${workflowId} --end-soak`
      );
    }
    if (req.endSoak) return `cannot end the soak: the rollout is ${this.phase()}, not soaking`;
    if (s.phase !== 'progressing') return `cannot promote: the rollout is ${s.phase}`;
    if (s.pausedSince !== undefined) return 'cannot promote: the rollout is paused; resume it first';
    if (s.promoteRequest || s.finalizing) return 'promotion is already under way';
    if (this.ctx.releaseTogether) {
      const { member, name } = this.ctx.releaseTogether;
      return `cannot promote: this rollout is member ${member} of release ${name}, which promotes its members together once every one has passed its last stage (see ${this.ctx.cli} release status ${name})`;
    }
    // A promotion skips the remaining gates: under a policy it passes each only with what approving it would
    // take (the two-person rule holds on every path).
    const who = (req.identity ?? '').trim();
    const from = s.stageEntered ? s.stageIndex + 1 : s.stageIndex;
    const skipped = this.plan.stages.slice(from).map((st, k) => ({
      gate: st.gate,
      name: `stage ${from + k + 1}`,
      waiting: from + k === s.stageIndex,
    }));
    if (this.plan.promotion.gate && s.promotionGate !== 'passed') {
      skipped.push({
        gate: this.plan.promotion.gate,
        name: 'the promotion',
        waiting: this.atPromotionGate(),
      });
    }
    for (const { gate: g, name, waiting } of skipped) {
      if (g.type !== 'approval' || !g.policy) continue;
      // Validators do not run on replay, so this holds for rollouts in flight too. The approvals a waiting gate
      // holds count with the requester's; a gate not reached yet holds none.
      const refusal = promotionRefusal(
        g.policy,
        waiting ? this.gateState() : undefined,
        who,
        now,
        name,
        req.groups,
      );
      if (refusal) return refusal;
    }
    return undefined;
  }

  resolveRefusal(req: Partial<ResolveRequest>): string | undefined {
    const s = this.s;
    if (req.confirmTrafficRestored !== true) {
      return 'resolve needs --confirm-traffic-restored: check by hand that all traffic is on stable first, then say so';
    }
    if (!req.reason?.trim()) return 'resolve needs a reason (--reason): what was done by hand';
    const who = req.identity?.trim() ?? '';
    if (who === '' || who === UNKNOWN_IDENTITY) return 'resolve needs a named person (--as NAME)';
    if (s.resolved) return `already resolved by ${s.resolved.by} at ${s.resolved.at}`;
    if (!s.neverStuck) {
      return 'this rollout started before resolve existed: fix what its step needs (the worker retries it), or terminate its workflow once traffic is on stable';
    }
    const stuck = s.retrying && (s.phase === 'rolling_back' || s.finalizing);
    if (!stuck) {
      return (
        `nothing to resolve: the rollout is ${this.phase()} and no rollback step keeps failing; resolve ends only a ` +
        'rollback (or the return to stable after a promotion) stuck on a step that keeps failing'
      );
    }
    return undefined;
  }
}
