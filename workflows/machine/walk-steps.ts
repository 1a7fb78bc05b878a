// The walk's decisions, as the playbook reads them: what a wait waits for and until when, whether a round is due,
// when a gate reminds, escalates, passes, proceeds or rolls back, what entering a stage and a served hold say, when
// a deployment window, a freeze, a slot or a pause holds the rollout. Functions of the view (state, plan, context)
// and `now`; no port, no Temporal, no await: a unit test runs them on a hand-built state.
//
// The walk (walk.ts) carries them out: it asks, carries out the commands returned in their order (awaiting an alert
// or a shift where it awaited it before these were data, so history records the same steps in the same order), feeds
// a wait's end or a step's result back by asking again. Where a decision updates the state, it does so in place on
// `view.s`, and its comment says what it sets. Change an order or a message only behind a patch (workflows/patches.ts).
import {
  approvalExpiresAt,
  approvalsNeeded,
  countedApprovals,
  describeApprovers,
  gateSatisfied,
} from '../approval-policy';
import { formatDuration } from '../duration';
import { fleetIdsFor, type FleetAsk } from '../fleet-model';
import type { Gate } from '../types';
import { describeWindowState, mayAdvance, nextOpen } from '../windows';
import { MAX_APPROVALS_KEPT, iso, pushBounded } from './context';
import { evidenceView } from './status';
import type { MachineCommand } from './transitions';
import type { RolloutView } from './views';

/** What a wait in the walk waits for; the walk analyses on schedule all the while (watch). */
export type WaitFor =
  /** An approval gate: approved, a promote asked, timed out, or its reminder or escalation due (never while paused). */
  | { kind: 'gate'; gate: GateFacts }
  /** A stage's hold: served with evidence (or the evidence alert due), or a promote asked. */
  | { kind: 'hold'; what: string }
  /** Outside the deployment windows: until they open (not while paused), or a promote asked for a stage. */
  | { kind: 'window'; isPromotion: boolean }
  /** A freeze or the slot queue: until neither holds, or a promote asked where it skips a freeze. */
  | { kind: 'fleet'; promoteSkips: boolean; what: string }
  /** Paused (pause-holds-advance): until resumed. */
  | { kind: 'resume' }
  /** Any other wait (a hook's): the caller's own condition and point in time. */
  | {
      kind: 'until';
      done: () => boolean;
      deadline: () => number | undefined;
      what: string;
      roundDue?: () => number | undefined;
    };

/** The commands the walk carries out, in order. */
export type WalkCommand =
  /** Search attributes and details published again; an alert raised by the walk (never a handler's). */
  | Extract<MachineCommand, { type: 'publish' | 'alert' }>
  /** Traffic moves to `weight` (RolloutMachine.shift); `restoring` puts the planned weight back after drift. */
  | { type: 'shift'; weight: number; why: string; restoring?: true }
  /** A round of analysis (analysis.ts), then ask again. */
  | { type: 'round' }
  /** What the wait waited for holds: the wait ends. */
  | { type: 'done' }
  /** Continue as new if the history is long enough, then ask `wakeAt` (the `now` and `analysisDue` it needs). */
  | { type: 'continueAsNewIfDue'; now: number; analysisDue: number | undefined }
  /** Wait for a message or, with a timeout, until `timeoutMs` has passed (a timer the Web UI names by `summary`). */
  | { type: 'wait'; timeoutMs?: number; summary?: string }
  /** A line in the worker's log. */
  | { type: 'log'; message: string; attrs: Record<string, unknown> }
  /** The rollout rolls back (RollbackRequired, with this reason and ending): nothing follows it. */
  | { type: 'rollback'; reason: string; kind: 'timeout' };

const PUBLISH: WalkCommand = { type: 'publish' };

function alert(
  kind: Extract<MachineCommand, { type: 'alert' }>['kind'],
  severity: Extract<MachineCommand, { type: 'alert' }>['severity'],
  message: string,
  extra?: Extract<MachineCommand, { type: 'alert' }>['extra'],
): WalkCommand {
  return { type: 'alert', kind, severity, message, fromHandler: false, ...(extra ? { extra } : {}) };
}

// ---------- waiting and analysing ----------

/** Whether what `w` waits for holds at `now`. */
export function waitDone(v: RolloutView, w: WaitFor, now: number): boolean {
  const s = v.s;
  switch (w.kind) {
    case 'gate':
      return (
        s.pausedSince === undefined &&
        (gateApproved(v, w.gate, now) ||
          s.promoteRequest !== undefined ||
          gateTimedOut(v, w.gate, now) ||
          reminderDue(v, now) ||
          escalationDue(v, now))
      );
    case 'hold':
      return (
        s.promoteRequest !== undefined ||
        (holdServed(v, now) && (v.stageEvidence(now) || evidenceAlertDue(v, now)))
      );
    case 'window': {
      if (!w.isPromotion && s.promoteRequest !== undefined) return true;
      const t = s.windowWait?.nextOpenAt;
      return s.pausedSince === undefined && t !== undefined && now >= t;
    }
    case 'fleet':
      return !fleetHeld(v) || (w.promoteSkips && s.promoteRequest !== undefined && !v.queued());
    case 'resume':
      return s.pausedSince === undefined;
    case 'until':
      return w.done();
  }
}

/** The wait's own next point in time (a gate's timeout, a hold's end), undefined when only a message changes it. */
export function waitDeadline(v: RolloutView, w: WaitFor, now: number): number | undefined {
  switch (w.kind) {
    case 'gate':
      return gateNextAt(v, w.gate, now);
    case 'hold': {
      const times = [holdEnd(v), evidenceAlertAt(v)].filter((t): t is number => t !== undefined && t > now);
      return times.length > 0 ? Math.min(...times) : undefined;
    }
    case 'window':
      return v.s.windowWait?.nextOpenAt;
    case 'fleet':
    case 'resume':
      return undefined;
    case 'until':
      return w.deadline();
  }
}

/** A round due earlier than the schedule says: the round a hold's end calls for (never-stuck), if none since. */
export function waitRoundDue(v: RolloutView, w: WaitFor): number | undefined {
  if (w.kind === 'until') return w.roundDue?.();
  if (w.kind !== 'hold') return undefined;
  return v.s.neverStuck && !v.roundAfterHold() ? v.holdServedAt() : undefined;
}

/** How the timer of a wait is named when it is the wait's own point in time (not the next analysis). */
export function waitWhat(w: WaitFor): string {
  switch (w.kind) {
    case 'gate':
      return `approval gate of ${w.gate.subject}`;
    case 'window':
      return 'deployment window opens';
    case 'resume':
      return 'resume';
    default:
      return w.what;
  }
}

/**
 * What a wait does next at `now`: put the planned weight back after drift a person resumed from (clears
 * `s.drift`), end (what it waits for holds), run a round that is due, or else continue as new if due and then wait
 * (wakeAt). The walk asks again after each.
 */
export function watchNext(v: RolloutView, w: WaitFor, now: number): WalkCommand[] {
  const s = v.s;
  if (s.drift && s.pausedSince === undefined && !s.finalizing) {
    // A person resumed after drift: the planned weight goes back first.
    s.drift = undefined;
    return [
      { type: 'shift', weight: s.weight, why: 'restore the planned weight after drift', restoring: true },
      PUBLISH,
    ];
  }
  if (waitDone(v, w, now)) return [{ type: 'done' }];
  const analysisDue = v.analysisActive()
    ? Math.min((s.lastAnalysisAt ?? now) + v.plan.analysis.intervalMs, waitRoundDue(v, w) ?? Infinity)
    : undefined;
  if (analysisDue !== undefined && now >= analysisDue) return [{ type: 'round' }];
  return [{ type: 'continueAsNewIfDue', now, analysisDue }];
}

/**
 * The wait itself, asked after continueAsNewIfDue with its `now` and `analysisDue`: until a message, or until the
 * next analysis or the wait's own point in time, whichever comes first (at least 1 ms ahead).
 */
export function wakeAt(
  v: RolloutView,
  w: WaitFor,
  now: number,
  analysisDue: number | undefined,
): Extract<WalkCommand, { type: 'wait' }> {
  const d = waitDeadline(v, w, now);
  const at = Math.min(analysisDue ?? Infinity, d !== undefined && d > now ? d : Infinity);
  if (at === Infinity) return { type: 'wait' };
  return {
    type: 'wait',
    timeoutMs: Math.max(1, at - now),
    summary: analysisDue === at ? 'next analysis' : waitWhat(w),
  };
}

// ---------- approval gates ----------

/** An approval gate as the walk meets it: what it guards and what it lets happen, fixed when the wait begins. */
export interface GateFacts {
  gate: Extract<Gate, { type: 'approval' }>;
  /** The stage (1-based) the gate belongs to (the final stage's, for the promotion gate). */
  n: number;
  promotion: boolean;
  /** What the gate guards, in messages: `stage 2` or `the promotion`. */
  subject: string;
  /** What the approval lets happen, e.g. `enter stage 2 (25%)` or `promote v2 (stage 4 at 100% served its hold)`. */
  step: string;
  /** The command that approves it. */
  command: string;
}

/** The gate the walk is at (a stage's before its shift, or the promotion gate), if it asks a person. */
export function gateFacts(v: RolloutView): GateFacts | undefined {
  const { s, ctx } = v;
  const gate = v.currentGate();
  if (gate.type !== 'approval') return undefined;
  const n = s.stageIndex + 1;
  const promotion = v.atPromotionGate();
  return {
    gate,
    n,
    promotion,
    subject: promotion ? 'the promotion' : `stage ${n}`,
    step: promotion
      ? `promote ${ctx.version} (stage ${n} at ${v.stage().weight}% served its hold)`
      : `enter stage ${n} (${v.stage().weight}%)`,
    command: `${ctx.cli} approve ${ctx.workflowId} --stage ${n}`,
  };
}

/** ` (1 of 2 approvals still needed; approvers: ...)` for a gate with a policy, else nothing. */
function needs(v: RolloutView, g: GateFacts, now: number): string {
  const policy = g.gate.policy;
  return policy
    ? ` (${approvalsNeeded(policy, v.gateState(), now)} of ${policy.required} approvals still needed; approvers: ${describeApprovers(policy)})`
    : '';
}

export function gateApproved(v: RolloutView, g: GateFacts, now: number): boolean {
  const s = v.s;
  const policy = g.gate.policy;
  return (
    s.approvedStage === s.stageIndex || (policy !== undefined && gateSatisfied(policy, v.gateState(), now))
  );
}

function reminderDue(v: RolloutView, now: number): boolean {
  const t = v.gateTimes(now).remindAtMs;
  return !v.s.gateReminded && t !== undefined && now >= t;
}

function escalationDue(v: RolloutView, now: number): boolean {
  const t = v.gateTimes(now).escalateAtMs;
  return !v.s.gateEscalated && t !== undefined && now >= t;
}

/** When the gate times out: its timeout after the wait began, paused time added; none while paused. */
export function gateTimeoutAt(v: RolloutView, g: GateFacts, now: number): number | undefined {
  const s = v.s;
  return g.gate.timeoutMs !== undefined && s.waitStartedAt !== undefined && s.pausedSince === undefined
    ? s.waitStartedAt + v.pausedMs(now) + g.gate.timeoutMs
    : undefined;
}

function gateTimedOut(v: RolloutView, g: GateFacts, now: number): boolean {
  const t = gateTimeoutAt(v, g, now);
  return t !== undefined && now >= t;
}

/** The gate's next point in time: its timeout, reminder, escalation or an approval's expiry, whichever comes first. */
function gateNextAt(v: RolloutView, g: GateFacts, now: number): number | undefined {
  const s = v.s;
  const policy = g.gate.policy;
  const times = v.gateTimes(now);
  // An approval that expires changes what the gate needs: wake then, so status says so on time.
  const expiries = policy
    ? countedApprovals(policy, v.gateState(), now).map((a) => approvalExpiresAt(policy, a))
    : [];
  const candidates = [
    gateTimeoutAt(v, g, now),
    s.gateReminded ? undefined : times.remindAtMs,
    s.gateEscalated ? undefined : times.escalateAtMs,
    ...expiries,
  ].filter((t): t is number => t !== undefined);
  return candidates.length > 0 ? Math.min(...candidates) : undefined;
}

/**
 * The gate's wait begins (once: a run continued at the gate keeps its wait): sets `s.waitStartedAt` to `now` and
 * clears the paused time in the wait; the approval_needed alert says what it lets happen and how to approve.
 */
export function openGate(v: RolloutView, g: GateFacts, now: number): WalkCommand[] {
  const s = v.s;
  if (s.waitStartedAt !== undefined) return [];
  s.waitStartedAt = now;
  s.pausedMsInWait = 0;
  if (s.pausedOpenMsInWait !== undefined) s.pausedOpenMsInWait = 0;
  return [
    PUBLISH,
    alert(
      'approval_needed',
      'warning',
      `${v.label()} waits for approval to ${g.step}: ${g.command}${needs(v, g, now)}`,
    ),
  ];
}

/**
 * After the gate's wait ended at `now`: `passed` when approved, a promote was asked or it timed out (gateEnd says
 * how); otherwise the escalation (sets `s.gateEscalated` and `s.gateReminded`: an escalation says everything a
 * reminder would) or the reminder (sets `s.gateReminded`) due, and the gate waits again.
 */
export function gateAfterWait(v: RolloutView, g: GateFacts, now: number): 'passed' | WalkCommand[] {
  const s = v.s;
  if (gateApproved(v, g, now) || s.promoteRequest || gateTimedOut(v, g, now)) return 'passed';
  const waited = formatDuration(now - (s.waitStartedAt ?? now) - v.pausedMs(now));
  if (escalationDue(v, now)) {
    s.gateEscalated = true;
    s.gateReminded = true;
    return [
      PUBLISH,
      alert(
        'approval_escalated',
        'critical',
        `${v.label()} has waited ${waited} for approval to ${g.step}: ${g.command}${needs(v, g, now)}`,
      ),
    ];
  }
  if (reminderDue(v, now)) {
    s.gateReminded = true;
    return [
      PUBLISH,
      alert(
        'approval_reminder',
        'warning',
        `${v.label()} still waits (${waited}) for approval to ${g.step}: ${g.command}${needs(v, g, now)}`,
      ),
    ];
  }
  return [];
}

/**
 * How a passed gate ends: approved (sets `s.approvedStage`; the approved alert names who), a promote asked (nothing:
 * promotion is that approval), timed out and proceeding (records the timeout in `s.approvals`), or a rollback.
 */
export function gateEnd(v: RolloutView, g: GateFacts, now: number): WalkCommand[] {
  const s = v.s;
  const { gate, n, promotion, subject } = g;
  const policy = gate.policy;
  if (gateApproved(v, g, now)) {
    s.approvedStage = s.stageIndex;
    const by = policy
      ? countedApprovals(policy, v.gateState(), now).map((a) => a.identity)
      : s.approvals
          .filter((a) => a.kind === 'approved' && a.stage === n && (a.promotion ?? false) === promotion)
          .map((a) => a.by)
          .slice(-1);
    return [
      alert('approved', 'info', `${v.label()}: ${subject} approved by ${by.join(', ') || 'unknown'}`, {
        by: by.join(', '),
      }),
    ];
  }
  if (s.promoteRequest) return [];
  if (gate.onTimeout === 'proceed') {
    pushBounded(
      s.approvals,
      {
        stage: n,
        ...(promotion ? { promotion: true } : {}),
        by: 'gate timeout',
        at: iso(now),
        kind: 'timeout-proceed',
      },
      MAX_APPROVALS_KEPT,
    );
    return [];
  }
  return [
    {
      type: 'rollback',
      reason: `approval for ${subject} timed out after ${formatDuration(gate.timeoutMs ?? 0)}`,
      kind: 'timeout',
    },
  ];
}

/** A new wait at a gate: nothing of the previous gate's approvals, reminders or wait time carries over. */
export function newWait(v: RolloutView): void {
  const s = v.s;
  s.waitStartedAt = undefined;
  s.pausedMsInWait = 0;
  if (s.pausedOpenMsInWait !== undefined) s.pausedOpenMsInWait = 0;
  s.approvedStage = undefined;
  s.gateApprovals = undefined;
  s.gateReminded = undefined;
  s.gateEscalated = undefined;
}

// ---------- entering a stage and holding it ----------

/** Entering the current stage moves the traffic to its weight first. */
export function enterStageShift(v: RolloutView): WalkCommand {
  return {
    type: 'shift',
    weight: v.stage().weight,
    why: `stage ${v.s.stageIndex + 1}/${v.plan.stages.length}`,
  };
}

/**
 * The stage is entered once its shift is done, at `now`: sets `s.stageEntered`, starts the hold's wait (and the
 * analysis schedule and the passing run) at `now`, clears the stage's passed round; the stage_advanced alert.
 */
export function enteredStage(v: RolloutView, now: number): WalkCommand[] {
  const { s, plan } = v;
  s.stageEntered = true;
  s.waitStartedAt = now;
  s.pausedMsInWait = 0;
  if (s.pausedOpenMsInWait !== undefined) s.pausedOpenMsInWait = 0;
  s.lastAnalysisAt = s.waitStartedAt;
  s.passedInStage = false;
  s.passingSince = s.waitStartedAt;
  return [
    PUBLISH,
    alert(
      'stage_advanced',
      'info',
      `${v.label()} entered stage ${s.stageIndex + 1}/${plan.stages.length}: canary at ${s.weight}%` +
        (v.stage().holdMs > 0 ? ` for ${formatDuration(v.stage().holdMs)}` : ''),
    ),
  ];
}

/** The hold of the current stage. */
export function holdWait(v: RolloutView): WaitFor {
  return { kind: 'hold', what: `hold of stage ${v.s.stageIndex + 1} at ${v.stage().weight}%` };
}

/** When the hold ends: before machine-v2 its wait's start, paused time and hold; none while paused. */
function holdEnd(v: RolloutView): number | undefined {
  const s = v.s;
  return s.machineV2
    ? v.holdServedAt()
    : s.pausedSince === undefined && s.waitStartedAt !== undefined
      ? s.waitStartedAt + s.pausedMsInWait + v.stage().holdMs
      : undefined;
}

/** Served: not paused, and the hold's time counted (paused time never counts; see RolloutView.heldMs). */
export function holdServed(v: RolloutView, now: number): boolean {
  return v.s.pausedSince === undefined && v.heldMs(now) >= v.stage().holdMs;
}

/** Served, but no evidence for this long: a person hears why the stage does not move (never-stuck, once a stage). */
function evidenceAlertAt(v: RolloutView): number | undefined {
  const s = v.s;
  const at = v.holdServedAt();
  return s.neverStuck && s.evidenceAlertedStage !== s.stageIndex && at !== undefined
    ? at + v.evidenceWaitAlertMs()
    : undefined;
}

function evidenceAlertDue(v: RolloutView, now: number): boolean {
  const at = evidenceAlertAt(v);
  return at !== undefined && holdServed(v, now) && !v.stageEvidence(now) && now >= at;
}

/**
 * After the hold's wait ended at `now`: `end` (served with evidence, or a promote asked), or the evidence alert
 * (sets `s.evidenceAlertedStage`: once per stage) and the hold waits again.
 */
export function holdAfterWait(v: RolloutView, now: number): 'end' | WalkCommand[] {
  const { s, ctx } = v;
  if (s.promoteRequest !== undefined || !evidenceAlertDue(v, now)) return 'end';
  s.evidenceAlertedStage = s.stageIndex;
  const why = evidenceView(v, now).evidenceWait?.note ?? 'no passing analysis yet';
  return [
    alert(
      'stuck',
      'warning',
      `${v.label()}: stage ${s.stageIndex + 1} served its hold ${formatDuration(now - (v.holdServedAt() ?? now))} ago ` +
        `and does not advance: ${why}. It advances on the first passing analysis; to end the wait: ` +
        `${ctx.cli} promote ${ctx.workflowId} (skip ahead) or ${ctx.cli} abort ${ctx.workflowId} --reason "why"`,
    ),
  ];
}

// ---------- deployment windows, fleet holds, pauses ----------

/** Whether the walk waits for a deployment window before it advances (a wait begun is waited out). */
export function windowNeeded(v: RolloutView, isPromotion: boolean, now: number): boolean {
  const w = v.plan.windows;
  return w !== undefined && (v.s.windowWait !== undefined || !mayAdvance(w, now, isPromotion));
}

/**
 * The window wait begins, unless it has (sets `s.windowWait`: since `now`, the next opening computed once, and
 * what status says of the windows).
 */
export function openWindowWait(v: RolloutView, now: number): WalkCommand[] {
  const s = v.s;
  const w = v.plan.windows;
  if (!w || s.windowWait) return [];
  const next = nextOpen(w, now);
  s.windowWait = {
    since: now,
    ...(next !== undefined ? { nextOpenAt: next } : {}),
    note: describeWindowState(w, now),
  };
  return [
    PUBLISH,
    { type: 'log', message: 'outside the deployment window; waiting', attrs: { note: s.windowWait.note } },
  ];
}

/** A window's wait ended: from machine-v2 on, clears `s.windowWait` (a new wait computes its own opening). */
export function windowWaitEnded(v: RolloutView): void {
  if (v.s.machineV2) v.s.windowWait = undefined;
}

/**
 * After a window's wait, at `now`: whether the walk may go on. From machine-v2 on the windows are asked again, since
 * a pause that outlasted the opening must not let the rollout advance after the windows closed again; a promote
 * asked ends a wait for a stage.
 */
export function windowMayGoOn(v: RolloutView, isPromotion: boolean, now: number): boolean {
  const s = v.s;
  const w = v.plan.windows;
  return (
    !s.machineV2 ||
    (!isPromotion && s.promoteRequest !== undefined) ||
    (w !== undefined && mayAdvance(w, now, isPromotion))
  );
}

/** The window is passed: clears `s.windowWait`. */
export function windowPassed(v: RolloutView): WalkCommand[] {
  v.s.windowWait = undefined;
  return [PUBLISH];
}

/**
 * The ask to the scope's fleet workflows before the rollout advances (fleet-controls; undefined before it): marks
 * them asked (`s.fleetAsked`, and before the canary `s.slotAsked`, the namespace's whose slot it asks for) before
 * the ask, since an answer may come back before the ask's own result does.
 */
export function fleetAsk(v: RolloutView, slot: boolean): { ids: string[]; ask: FleetAsk } | undefined {
  const s = v.s;
  if (!s.fleet) return undefined;
  const ids = fleetIdsFor(v.ctx.target.namespace);
  s.fleetAsked = ids;
  if (slot) s.slotAsked = ids[0];
  return { ids, ask: { workflowId: v.ctx.workflowId, ...(slot ? { slot } : {}) } };
}

/** The ask reached `reached`: the others do not run (nothing is frozen there, no slot to wait for). */
export function fleetAsked(v: RolloutView, reached: string[]): void {
  const s = v.s;
  const waiting = (s.fleetAsked ?? []).filter((id) => reached.includes(id));
  s.fleetAsked = waiting.length > 0 ? waiting : undefined;
  if (s.slotAsked !== undefined && !reached.includes(s.slotAsked)) s.slotAsked = undefined;
}

/** Held by a freeze, an unanswered ask, or the slot queue. */
export function fleetHeld(v: RolloutView): boolean {
  return v.frozen() !== undefined || v.s.fleetAsked !== undefined || v.queued();
}

/**
 * Whether the fleet holds the walk, and if so what it says and waits for. A promotion asked for skips a freeze's
 * hold, never the queue; from pause-holds-advance on, not before the canary either.
 */
export function fleetWait(
  v: RolloutView,
  isPromotion: boolean,
  beforeCanary: boolean,
): { commands: WalkCommand[]; wait: WaitFor } | undefined {
  const s = v.s;
  if (!fleetHeld(v)) return undefined;
  const queued = v.queued();
  return {
    commands: [
      PUBLISH,
      {
        type: 'log',
        message: queued ? 'queued for a slot; waiting' : 'held by a freeze; waiting',
        attrs: { freeze: v.frozen(), slot: s.slot },
      },
    ],
    wait: {
      kind: 'fleet',
      promoteSkips: !isPromotion && !(beforeCanary && s.pauseHolds),
      what: queued ? 'slot granted' : 'freeze lifted',
    },
  };
}

/** From pause-holds-advance on, a paused rollout waits for a resume before it advances. */
export function resumeWait(v: RolloutView): { commands: WalkCommand[]; wait: WaitFor } | undefined {
  const s = v.s;
  if (!s.pauseHolds || s.pausedSince === undefined) return undefined;
  return {
    commands: [
      { type: 'log', message: 'paused; waiting for a resume before it advances', attrs: { by: s.pausedBy } },
    ],
    wait: { kind: 'resume' },
  };
}
