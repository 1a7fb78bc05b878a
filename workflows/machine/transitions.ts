// The rollout's messages as transitions: a typed event in, the commands to carry out out. A person's approve, promote,
// abort, resolve, pause or resume, a fleet workflow's notice, and drift found by a round each become a RolloutEvent;
// transition() decides what it changes and what must happen because of it (wake the walk, publish, alert, cancel the
// walk or the failing step), and RolloutMachine carries the commands out in the order given. No port, no Temporal:
// a unit test runs it on a hand-built state.
//
// The order of the commands is the order the machine performed these effects before they were data, and the
// workflow's history depends on it (an upsert, an alert's activity and a cancel are each recorded where they happen):
// change it only behind a patch (workflows/patches.ts).
import {
  rolloutCommands,
  type AlertKind,
  type AlertSeverity,
  type RolloutAlertInput,
} from '../alerts/events';
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
import {
  ALL_NAMESPACES,
  describeFreeze,
  describeQueued,
  type FleetNotice,
  type SlotPlace,
} from '../fleet-model';
import { acknowledgeMissingEvidence, initialJudgeState } from '../judge-v2';
import type { ApprovalRecord, ResolveRecord } from '../types';
import { MAX_APPROVALS_KEPT, iso, pushBounded } from './context';
import type { RolloutView } from './views';

/** What an alert carries besides its kind and message (RolloutMachine.alert's `extra`). */
export type AlertExtra = Partial<Omit<RolloutAlertInput, 'kind' | 'message'>>;

/** A message to the rollout, with its payload (validated first: see the refusals in RolloutView). */
export type RolloutEvent =
  /** A gate's answer, or a person's answer to a question about missing evidence, a breach or a failed hook. */
  | { type: 'approve'; req: ApproveRequest }
  /** Skip ahead to promotion, or, in the soak, end the soak now. */
  | { type: 'promote'; req: PromoteRequest }
  | { type: 'abort'; req: AbortRequest }
  /** A person confirms traffic is back on stable while a rollback step keeps failing. */
  | { type: 'resolve'; req: ResolveRequest }
  | { type: 'pause'; req: PauseRequest }
  | { type: 'resume'; req: PauseRequest }
  /** A fleet workflow's answer to an ask, or its news: its scope's freeze (or none), the rollout's slot. */
  | { type: 'fleetNotice'; notice: FleetNotice }
  /** A round found the canary's weight not where this rollout set it: someone else changed it. */
  | { type: 'drift'; expected: number; found: number };

/** What a transition asks the machine to do, in order. */
export type MachineCommand =
  /** The walk re-evaluates at once (whatever it waits for may have changed). */
  | { type: 'wake' }
  /** Search attributes and details are published again (an upsert only where they changed). */
  | { type: 'publish' }
  /** An alert, as RolloutMachine.alert raises it (alert-sinks-v2 routing, or the older sendAlert step). */
  | {
      type: 'alert';
      kind: AlertKind;
      severity: AlertSeverity;
      message: string;
      /** Raised by a message handler: its deliveries start when the walk next runs, and nothing propagates. */
      fromHandler: boolean;
      extra?: AlertExtra;
    }
  /** The walk is cancelled: the rollout rolls back (or, in the soak, goes back). */
  | { type: 'cancelWalk' }
  /** The step that keeps failing ends its attempt (a resolve). */
  | { type: 'cancelStep' }
  // A round's commands (verdict.ts), carried out by the walk one after the other, each awaited; never a message's.
  /** The live weight is not where this rollout set it: the drift event is taken (see drift below). */
  | { type: 'drift'; expected: number; found: number }
  /** Traffic moves to `weight` (RolloutMachine.shift, which records what the router did). */
  | { type: 'shift'; weight: number; why: string }
  /** The round rolls the rollout back (RollbackRequired, with this reason): nothing follows it. */
  | { type: 'rollback'; reason: string };

/** What an accepted abort did: false when it changed nothing (already aborted, finishing, or ended). */
export interface AbortOutcome {
  accepted: boolean;
}

/** The answer each event's sender gets. */
export interface RolloutAcks {
  approve: ApprovalRecord;
  promote: PromoteAck;
  abort: AbortOutcome;
  resolve: ResolveRecord;
  pause: PauseAck;
  resume: PauseAck;
  fleetNotice: undefined;
  drift: undefined;
}

export type AckOf<E extends RolloutEvent> = RolloutAcks[E['type']];

export interface Transition<A> {
  ack: A;
  commands: MachineCommand[];
}

type EventOf<K extends RolloutEvent['type']> = Extract<RolloutEvent, { type: K }>;
type Transitions = {
  [K in RolloutEvent['type']]: (v: RolloutView, e: EventOf<K>, now: number) => Transition<RolloutAcks[K]>;
};

const WAKE: MachineCommand = { type: 'wake' };
const PUBLISH: MachineCommand = { type: 'publish' };
const CANCEL_WALK: MachineCommand = { type: 'cancelWalk' };
const CANCEL_STEP: MachineCommand = { type: 'cancelStep' };

function alert(
  kind: AlertKind,
  severity: AlertSeverity,
  message: string,
  fromHandler: boolean,
  extra?: AlertExtra,
): MachineCommand {
  return { type: 'alert', kind, severity, message, fromHandler, ...(extra ? { extra } : {}) };
}

// ---------- a person's answers: gates and questions ----------

function approve(v: RolloutView, { req }: EventOf<'approve'>, now: number): Transition<ApprovalRecord> {
  const s = v.s;
  if (s.hookQuestion && !v.gateWaiting()) {
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
    return { ack: accepted, commands: [WAKE, PUBLISH] };
  }
  if (s.evidenceQuestion && !v.gateWaiting()) {
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
    return { ack: waived, commands: [WAKE, PUBLISH] };
  }
  const policy = v.gatePolicy();
  const record: ApprovalRecord = {
    stage: s.stageIndex + 1,
    ...(v.atPromotionGate() ? { promotion: true } : {}),
    by: policy ? req.identity.trim() : req.identity,
    at: iso(now),
    kind: 'approved',
    ...(req.comment ? { comment: req.comment } : {}),
  };
  if (policy) {
    // Under a policy the gate passes once enough distinct, unexpired approvals are in (the walk decides).
    s.gateApprovals = recordApproval(v.gateState(), req.identity, now, req.comment, req.groups).approvals;
    const expires = approvalExpiresAt(policy, { identity: record.by, atMs: now });
    record.required = policy.required;
    record.count = policy.required - approvalsNeeded(policy, v.gateState(), now);
    if (expires !== undefined) record.expiresAt = iso(expires);
  } else {
    s.approvedStage = s.stageIndex;
  }
  pushBounded(s.approvals, record, MAX_APPROVALS_KEPT);
  // A plain approval publishes nothing here, as it never did: the walk publishes once it moves on.
  return { ack: record, commands: policy ? [WAKE, PUBLISH] : [WAKE] };
}

function promote(v: RolloutView, { req }: EventOf<'promote'>, now: number): Transition<PromoteAck> {
  const s = v.s;
  const ack: PromoteAck = { fromStage: s.stageIndex + 1, acceptedAt: iso(now) };
  if (v.soaking()) {
    // Promoted already: `promote --end-soak` during the soak finishes it now (stable takes the new version).
    s.soak!.endNow = { by: req.identity, at: now };
    return { ack, commands: [WAKE, PUBLISH] };
  }
  s.promoteRequest = { by: req.identity, at: now, fromStage: s.stageIndex + 1 };
  pushBounded(
    s.approvals,
    {
      stage: s.stageIndex + 1,
      by: req.identity,
      at: iso(now),
      kind: 'promote',
      ...(req.comment ? { comment: req.comment } : {}),
    },
    MAX_APPROVALS_KEPT,
  );
  return { ack, commands: [WAKE] };
}

// ---------- control: abort, resolve, pause, resume ----------

function abort(v: RolloutView, { req }: EventOf<'abort'>): Transition<AbortOutcome> {
  const s = v.s;
  const unchanged = { ack: { accepted: false }, commands: [] };
  // Idempotent: only the first abort counts, and a promotion under way is not undone.
  if (s.abortRequest || s.finalizing) return unchanged;
  if (v.soaking()) {
    // During the soak the previous version still runs: an abort goes back to it.
    s.abortRequest = { by: req.identity, reason: req.reason, back: true };
    return { ack: { accepted: true }, commands: [WAKE, CANCEL_WALK] };
  }
  if (s.phase !== 'progressing') return unchanged;
  // An abort while a gate or a question waits declines it: a person said no, nothing failed.
  const declined = v.gateWaiting()
    ? `the gate of ${v.atPromotionGate() ? 'the promotion' : `stage ${s.stageIndex + 1}`}`
    : s.evidenceQuestion
      ? `the question about ${s.evidenceQuestion.checks.join(', ') || 'missing evidence'}`
      : s.hookQuestion
        ? `the question about hook ${s.hookQuestion.hook}`
        : undefined;
  s.abortRequest = { by: req.identity, reason: req.reason, ...(declined ? { declined } : {}) };
  return { ack: { accepted: true }, commands: [WAKE, CANCEL_WALK] };
}

function resolve(v: RolloutView, { req }: EventOf<'resolve'>, now: number): Transition<ResolveRecord> {
  const s = v.s;
  const record: ResolveRecord = {
    by: req.identity.trim(),
    reason: req.reason.trim(),
    at: iso(now),
    ...(s.retrying ? { step: s.retrying.step } : {}),
  };
  s.resolved = record;
  pushBounded(
    s.approvals,
    { stage: s.stageIndex + 1, by: record.by, at: record.at, kind: 'resolved', comment: record.reason },
    MAX_APPROVALS_KEPT,
  );
  return { ack: record, commands: [WAKE, CANCEL_STEP, PUBLISH] };
}

function pause(v: RolloutView, { req }: EventOf<'pause'>, now: number): Transition<PauseAck> {
  const s = v.s;
  s.pausedSince = now;
  s.pausedBy = req.identity;
  s.pauseReason = req.reason;
  const commands = v.releaseHoldCommands(req.identity);
  return {
    ack: { at: iso(now), by: req.identity, stage: s.stageIndex + 1 },
    commands: [
      WAKE,
      PUBLISH,
      alert(
        'paused',
        'info',
        `${v.label()} paused by ${req.identity}${req.reason ? `: ${req.reason}` : ''}`,
        true,
        {
          by: req.identity,
          ...(req.reason ? { reason: req.reason } : {}),
          ...(commands ? { commands } : {}),
        },
      ),
    ],
  };
}

function resume(v: RolloutView, { req }: EventOf<'resume'>, now: number): Transition<PauseAck> {
  const s = v.s;
  s.pausedMsInWait += now - (s.pausedSince ?? now);
  if (s.machineV2 && v.plan.windows)
    s.pausedOpenMsInWait = (s.pausedOpenMsInWait ?? 0) + v.pausedHoldTime(now);
  s.pausedSince = undefined;
  s.pausedBy = undefined;
  s.pauseReason = undefined;
  return {
    ack: { at: iso(now), by: req.identity, stage: s.stageIndex + 1 },
    commands: [
      WAKE,
      PUBLISH,
      alert('resumed', 'info', `${v.label()} resumed by ${req.identity}`, true, { by: req.identity }),
    ],
  };
}

// ---------- news: a fleet workflow's notice, drift ----------

/**
 * A fleet workflow's answer to an ask, or its news: the freeze of its scope, or none. Whatever build started the
 * rollout, a freeze holds it from its next advance on; only an ended rollout takes no notice.
 */
function fleetNotice(v: RolloutView, { notice: n }: EventOf<'fleetNotice'>): Transition<undefined> {
  const s = v.s;
  const commands: MachineCommand[] = [];
  const before = s.freezes?.[n.fleet];
  const asked = s.fleetAsked?.filter((id) => id !== n.fleet);
  s.fleetAsked = asked && asked.length > 0 ? asked : undefined;
  const freezes = { ...s.freezes };
  if (n.freeze) freezes[n.fleet] = n.freeze;
  else delete freezes[n.fleet];
  s.freezes = Object.keys(freezes).length > 0 ? freezes : undefined;
  commands.push(WAKE);
  const slotBefore = JSON.stringify(s.slot);
  const wasQueued = v.queued();
  if (s.slotAsked === n.fleet) s.slotAsked = undefined;
  // A slot is taken only before the canary; one granted later (a limit lifted) is still given back at the end.
  if (n.slot && s.phase === 'progressing') {
    // Who holds the slots is news for the alert, not state.
    const { holders: _holders, holderCount: _count, ...place } = n.slot;
    s.slot = { ...place, fleet: n.fleet };
    const queue = s.queueAlerts && !s.abortRequest ? queueAlert(v, wasQueued, n.slot) : undefined;
    if (queue) commands.push(queue);
  }
  if (s.phase === 'progressing' && JSON.stringify(s.slot) !== slotBefore) commands.push(PUBLISH);
  if (s.phase !== 'progressing' || JSON.stringify(before) === JSON.stringify(n.freeze)) {
    return { ack: undefined, commands };
  }
  commands.push(PUBLISH);
  if (n.freeze) {
    const f = n.freeze;
    commands.push(
      alert('frozen', 'warning', `${v.label()} does not advance: ${describeFreeze(f)}`, true, {
        by: f.by,
        reason: f.reason,
      }),
    );
    return { ack: undefined, commands };
  }
  const still = v.frozen();
  commands.push(
    alert(
      'unfrozen',
      'info',
      `${v.label()}: the freeze of ${before!.scope === ALL_NAMESPACES ? 'every namespace' : `namespace ${before!.scope}`} was lifted` +
        (still ? `; still ${describeFreeze(still)}` : '; it advances again'),
      true,
    ),
  );
  return { ack: undefined, commands };
}

/**
 * From fleet-queue-alerts on: a rollout its namespace's maxConcurrent queues says so (its position, the limit, who
 * holds the slots, and how to leave the queue); once granted its slot, it says that. A move up the queue is quiet.
 */
function queueAlert(v: RolloutView, wasQueued: boolean, told: SlotPlace): MachineCommand | undefined {
  const { ctx } = v;
  const ns = ctx.target.namespace;
  if (!wasQueued && !told.granted) {
    const named = told.holders ?? [];
    const more = (told.holderCount ?? named.length) - named.length;
    const held =
      named.length > 0
        ? `; the slots are held by ${named.join(', ')}${more > 0 ? ` and ${more} more` : ''}`
        : '';
    const abort = rolloutCommands(ctx.workflowId, 'queued', undefined, ctx.cli).abort!;
    return alert(
      'queued',
      'info',
      `${v.label()} ${describeQueued(told, ns)}${held}. It deploys nothing until its turn comes; ` +
        `to leave the queue: ${abort}`,
      true,
    );
  }
  if (wasQueued && told.granted) {
    return alert(
      'dequeued',
      'info',
      `${v.label()}: ` +
        (told.max !== undefined
          ? `its slot in namespace ${ns} is granted (maxConcurrent ${told.max})`
          : `the limit of namespace ${ns} was lifted`) +
        '; it leaves the queue and goes on to its canary',
      true,
    );
  }
  return undefined;
}

/**
 * Someone else changed the weights. The rollout does not fight an operator: it pauses (analysis goes on and still
 * rolls back on failure), and a resume puts the planned weight back.
 */
function drift(v: RolloutView, { expected, found }: EventOf<'drift'>, now: number): Transition<undefined> {
  const { s, ctx } = v;
  s.drift = { expected, found, at: now };
  if (s.pausedSince === undefined) {
    s.pausedSince = now;
    s.pausedBy = 'drift detection';
    s.pauseReason = `the canary weight is ${found}%, not the ${expected}% this rollout set`;
  }
  return {
    ack: undefined,
    commands: [
      WAKE,
      PUBLISH,
      alert(
        'drift_detected',
        'warning',
        `${v.label()}: someone changed the traffic weights (canary at ${found}%, the rollout set ${expected}%); ` +
          `the rollout is paused. Resume to restore ${s.weight}%: ${ctx.cli} resume ${ctx.workflowId}; or abort: ${ctx.cli} abort ${ctx.workflowId} --reason "why"`,
        false,
      ),
    ],
  };
}

const TRANSITIONS: Transitions = {
  approve,
  promote,
  abort,
  resolve,
  pause,
  resume,
  fleetNotice,
  drift,
};

/**
 * What `event` does to the rollout at `now`: its one effect is on `view.s` (updated in place), and it returns the
 * answer for the sender and the commands to carry out, in order. It calls no port and starts nothing; an event that
 * changes nothing returns no commands. The event is taken as it comes: whether it is acceptable at all is the
 * refusals' business (RolloutView), asked before.
 */
export function transition<E extends RolloutEvent>(
  view: RolloutView,
  event: E,
  now: number,
): Transition<AckOf<E>> {
  // TypeScript cannot tie the handler looked up by `event.type` to E (TRANSITIONS' type does, entry by entry).
  const step = TRANSITIONS[event.type] as unknown as (
    v: RolloutView,
    e: E,
    now: number,
  ) => Transition<AckOf<E>>;
  return step(view, event, now);
}
