// How a rollout ends, as decisions: the rollback (never skipped, never cancelled), the promotion (with its soak),
// the canary's cleanup, the slot given back, and not started (a refused preflight). Each function reads the view
// (state, plan, context) and `now`, updates `view.s` in place where it says so, and returns the commands to carry
// out, in order: ending.ts carries them out with the port, awaiting each, and feeds a step's answer back through
// recordAnswer (or as an input of the next decision). No port, no Temporal: a unit test runs it on a hand-built
// state.
//
// The commands come in the order the machine performed these effects before they were data, and the workflow's
// history depends on it (every step, timer and upsert is recorded where it happens): change it only behind a patch
// (workflows/patches.ts).
import type { WeightResult } from '../../activities/rollout-activities';
import type { AlertKind, AlertSeverity } from '../alerts/events';
import type { RolloutEnding, RolloutResult } from '../types';
import { iso } from './context';
import { applyWeight } from './state';
import type { StepCommand, StepName } from './port';
import type { AlertExtra, MachineCommand } from './transitions';
import type { RolloutView } from './views';

/** What a step's answer changes in state (recordAnswer), once it has come. */
export type AnswerUse =
  /** ensureStableCapacity's note, when it has one, is status's capacity note. */
  | 'capacity'
  /** The shift back to 0 % (routing lifecycles before machine-v2): what the router did. */
  | 'trafficBack'
  /** The same from machine-v2 on, whose shift also checks stable's capacity and may say so. */
  | 'trafficBackWithCapacity'
  /** The shift back of rollouts before routing lifecycles: the weight is 0. */
  | 'weightZero'
  /** Who cancelled the workflow (Temporal's cancel-request identity), when Temporal knows. */
  | 'canceller';

/** What ending.ts carries out, in order, awaiting each. */
export type EndingCommand =
  | Extract<MachineCommand, { type: 'alert' | 'publish' }>
  /** Events raised before the sinks were known, or by handlers, start their deliveries now. */
  | { type: 'routeEarly' }
  /**
   * One step. With `persist` it must not give up (RolloutMachine.persist, `persist` naming it for status and the
   * stuck alert); with `record` its answer changes state (recordAnswer).
   */
  | { type: 'run'; step: StepCommand<StepName>; persist?: string; record?: AnswerUse }
  /**
   * The shift back to stable from machine-v2 on: with `localFirst`, where the rollback-local patch is in effect, a
   * first attempt run by the worker at once (policy `rollbackFirst`; a failure goes on to the persistent step, a
   * person's resolve ends it); then, unless that attempt moved the traffic, the persistent step. Its answer:
   * recordAnswer(`trafficBackWithCapacity`).
   */
  | {
      type: 'shiftBack';
      shift: Omit<StepCommand<'setCanaryWeight'>, 'policy'>;
      localFirst: boolean;
      persist: string;
    }
  /** Traffic moves to `weight` (RolloutMachine.shift). */
  | { type: 'shift'; weight: number; why: string }
  /** The state changes in place by `change` (recordAnswer without an answer), between the steps around it. */
  | { type: 'record'; change: 'driftCleared' }
  /** The rollback reason of a cancel names who asked, where the cancel-identity patch is in effect (nameCanceller). */
  | { type: 'nameCanceller' }
  /** The running load stops (load.ts stopStageLoad); `why` for the log. */
  | { type: 'stopLoad'; why: string }
  /** The plan's hooks of a point that can only warn run (hooks.ts). */
  | { type: 'hooks'; point: 'onRollback' | 'afterPromotion' }
  /** The rollout's slot (or its place in the queue) goes back to its fleet workflow (releaseSlot decides). */
  | { type: 'releaseSlot' }
  /** Waits until `ends` holds (soakEnded; `never`: a plain timer) or `timeoutMs` passes; `summary` names the timer. */
  | { type: 'wait'; timeoutMs: number; summary: string; ends: 'soakEnded' | 'never' }
  /** Every message handler finishes, then the deliveries under way (within a bound), before the run ends. */
  | { type: 'handlersFinished' }
  | { type: 'flushAlerts' };

/** What stopped the walk, as the carrier saw it (the port answers whether it was a cancellation). */
export type WalkStop =
  /** The walk asked for the rollback itself (a check, a step, a gate's timeout, a hook, a failed promotion). */
  | { type: 'rollbackRequired'; reason: string; ending: RolloutEnding }
  /** The walk's scope was cancelled: an abort's, or the workflow's own cancel. */
  | { type: 'cancelled' }
  /** A step failed past its retries. */
  | { type: 'failed'; error: string };

const PUBLISH: EndingCommand = { type: 'publish' };

function alert(kind: AlertKind, severity: AlertSeverity, message: string, extra?: AlertExtra): EndingCommand {
  return { type: 'alert', kind, severity, message, fromHandler: false, ...(extra ? { extra } : {}) };
}

function persistent<K extends StepName>(
  persist: string,
  step: K,
  summary: string,
  args: StepCommand<K>['args'],
  record?: AnswerUse,
): EndingCommand {
  return {
    type: 'run',
    persist,
    step: { policy: 'persistent', step, summary, args } as StepCommand<StepName>,
    ...(record ? { record } : {}),
  };
}

// ---------- who or what ended the walk ----------

/**
 * Who or what ended the walk, and why, from what stopped it: a rollback the walk asked for names its own; otherwise a
 * person's abort (or, in the soak, their going back, or a decline of a question) names them; otherwise a cancel of
 * the workflow, or a step that failed. `cancelled`: a cancel of the workflow that no abort explains (whose rollback
 * names the canceller once traffic is back). Changes nothing.
 */
export function endingOf(
  v: RolloutView,
  stop: WalkStop,
): { ending: RolloutEnding; reason: string; cancelled: boolean } {
  const s = v.s;
  const abort = s.abortRequest;
  if (stop.type === 'rollbackRequired') return { ending: stop.ending, reason: stop.reason, cancelled: false };
  if (abort) {
    const kind = abort.back ? ('back' as const) : abort.declined ? ('decline' as const) : ('abort' as const);
    const reason = abort.back
      ? `went back to ${s.soak?.previousVersion ?? 'the previous version'} during the soak, as ${abort.by} asked: ${abort.reason}`
      : abort.declined && s.neverStuck
        ? `declined by ${abort.by} (${abort.declined}): ${abort.reason}`
        : `aborted by ${abort.by}: ${abort.reason}`;
    return { ending: { kind, by: abort.by }, reason, cancelled: false };
  }
  if (stop.type === 'cancelled') {
    return { ending: { kind: 'cancel' }, reason: 'workflow cancelled (Temporal UI or API)', cancelled: true };
  }
  return { ending: { kind: 'step' }, reason: `rollout step failed: ${stop.error}`, cancelled: false };
}

// ---------- the rollback ----------

/**
 * The rollback begins: state says so (phase, reason, the stage that failed; no pause, no window wait), it is
 * published, the deliveries held back start, and the rollback_started alert is raised (only started, never
 * awaited from alert-sinks-v2 on: a sink cannot delay traffic going back). `ending` is recorded as who ended it.
 */
export function rollbackBegins(v: RolloutView, reason: string, ending?: RolloutEnding): EndingCommand[] {
  const s = v.s;
  if (ending) s.ending = ending;
  s.failedStage ??= s.stageIndex;
  s.phase = 'rolling_back';
  s.rollbackReason = reason;
  s.pausedSince = undefined;
  s.windowWait = undefined;
  return [
    PUBLISH,
    { type: 'routeEarly' },
    alert('rollback_started', 'critical', `${v.label()} is rolling back: ${reason}`, { reason }),
  ];
}

/**
 * Traffic goes back to stable first, before anything else can fail or wait, then the canary goes: the steps after
 * rollbackBegins, up to the load's stop. `cancelled`: the rollback of a workflow cancel (endingOf), which names the
 * canceller once traffic is back. Only what the rollout changed is undone (all of it for rollouts that did not keep
 * track): one that never moved traffic or set up routing has no traffic to bring back. Sets the replica ratio's
 * capacity note in place where it applies (before the shift, which waits for stable's pods).
 *
 * From routing lifecycles on, a person's resolve may end any of these steps (ResolvedByHand): then rollbackResolved.
 * Before them, the steps never give up (policy `rollback`).
 */
export function rollbackSteps(v: RolloutView, cancelled: boolean): EndingCommand[] {
  const { s, ctx } = v;
  const { target } = ctx;
  const named: EndingCommand[] = cancelled ? [{ type: 'nameCanceller' }] : [];
  if (!ctx.flags.routingLifecycle) {
    return [
      {
        type: 'run',
        step: {
          policy: 'rollback',
          step: 'setCanaryWeight',
          summary: `rollback: canary ${s.weight}% → 0%`,
          args: [{ target, weight: 0 }],
        },
        record: 'weightZero',
      },
      PUBLISH,
      ...named,
      {
        type: 'run',
        step: {
          policy: 'rollback',
          step: 'scaleDownCanary',
          summary: 'rollback: scale canary down',
          args: [{ target }],
        },
      },
    ];
  }
  const t = s.touched;
  const commands: EndingCommand[] = [];
  const replicas = target.traffic?.router === 'replicas';
  if ((!t || t.traffic || t.routing) && s.machineV2) {
    // Stable must be able to take the traffic back (an autoscaler may have shrunk it), then traffic goes back:
    // one step, so a stable big enough costs no round trip through the workflow before the shift.
    if (replicas && s.weight > 0) {
      // The ratio gave stable's replicas to the canary: status says why traffic waits while they come back.
      s.capacityNote =
        `the replica ratio moved stable's replicas to the canary: stable grows back to its full size first, ` +
        `and the canary goes to 0 once those pods are available (traffic follows the pods)`;
      commands.push(PUBLISH);
    }
    commands.push({
      type: 'shiftBack',
      shift: {
        step: 'setCanaryWeight',
        summary: `rollback: canary ${s.weight}% → 0% (stable's capacity checked first)`,
        args: [{ target, weight: 0, mode: 'rollback', ensureCapacity: true }],
      },
      // Not for the replica ratio, whose shift waits for stable's pods.
      localFirst: !replicas,
      persist: 'send traffic back to stable',
    });
  } else if (!t || t.traffic || t.routing) {
    // Stable must be able to take the traffic back; then traffic goes back before anything else (not even an
    // alert) can delay it.
    commands.push(
      persistent(
        'make sure stable can take the traffic',
        'ensureStableCapacity',
        'rollback: check stable capacity',
        [{ target }],
        'capacity',
      ),
      persistent(
        'send traffic back to stable',
        'setCanaryWeight',
        `rollback: canary ${s.weight}% → 0%`,
        [{ target, weight: 0, mode: 'rollback' }],
        'trafficBack',
      ),
    );
  }
  commands.push({ type: 'record', change: 'driftCleared' }, PUBLISH, ...named);
  if (!t || t.canary) {
    commands.push(
      persistent('scale the canary down', 'scaleDownCanary', 'rollback: scale canary down', [{ target }]),
    );
  }
  if (!t || t.routing) {
    commands.push(
      persistent(
        'remove the routing setup',
        'teardownRouting',
        `rollback: tear down ${v.routerName()} routing`,
        [{ target }],
      ),
    );
  }
  return commands;
}

/**
 * A person confirmed that traffic is on stable while a rollback step kept failing: what that step did not finish is
 * theirs now. The weight is 0, nothing is retried, and the reason says who resolved it and why. State only.
 */
export function rollbackResolved(v: RolloutView, reason: string): void {
  const s = v.s;
  s.weight = 0;
  s.achievedWeight = undefined;
  s.retrying = undefined;
  s.drift = undefined;
  if (s.resolved) {
    s.rollbackReason = `${s.rollbackReason ?? reason}; resolved by hand by ${s.resolved.by}: ${s.resolved.reason}`;
  }
}

/**
 * Traffic is back on stable: the load stops, then the plan's onRollback hooks run (neither can hold or undo it).
 * Then rolledBack.
 */
export function afterTrafficBack(): EndingCommand[] {
  return [
    { type: 'stopLoad', why: 'rollback' },
    { type: 'hooks', point: 'onRollback' },
  ];
}

/** The rollback is over: phase rolled_back, published, and the rolled_back alert with the reason. */
export function rolledBack(v: RolloutView, reason: string): EndingCommand[] {
  const s = v.s;
  s.phase = 'rolled_back';
  const why = s.rollbackReason ?? reason;
  return [PUBLISH, alert('rolled_back', 'critical', `${v.label()} rolled back: ${why}`, { reason: why })];
}

/**
 * What a step's answer (or, for `driftCleared`, the step's place) changes in state, in place: the capacity note,
 * what the router did on the way back to 0 % (the achieved weight where it differs, what it could not do), who
 * cancelled.
 */
export function recordAnswer(v: RolloutView, use: AnswerUse | 'driftCleared', answer?: unknown): void {
  const s = v.s;
  switch (use) {
    case 'capacity':
      if (answer) s.capacityNote = answer as string;
      return;
    case 'trafficBackWithCapacity':
    case 'trafficBack': {
      const r = answer as WeightResult | undefined | null;
      // (An answer of nothing fails here, as it always did: every router answers this shift.)
      if (use === 'trafficBackWithCapacity' && (r as WeightResult).capacityNote) {
        s.capacityNote = (r as WeightResult).capacityNote;
      }
      applyWeight(s, 0, r);
      return;
    }
    case 'weightZero':
      s.weight = 0;
      return;
    case 'canceller': {
      const who = answer as string | undefined;
      if (who) s.rollbackReason = `workflow cancelled by ${who} (Temporal UI or API)`;
      if (who && s.ending?.kind === 'cancel') s.ending = { kind: 'cancel', by: who };
      return;
    }
    case 'driftCleared':
      s.drift = undefined;
      return;
  }
}

/** Asks Temporal who cancelled the workflow (a look-up that may fail: the reason then stays as it is). */
export const CANCELLER: StepCommand<'cancelRequester'> = {
  policy: 'lookup',
  step: 'cancelRequester',
  summary: 'who cancelled',
  args: [],
};

// ---------- the promotion, with its soak ----------

/**
 * The canary (the new version) takes all traffic, for a soak or for promotion, unless it has it already. Then
 * soakBegins or promoteStable, at the time read after the shift.
 */
export function promotionShift(v: RolloutView): EndingCommand[] {
  return v.s.weight !== 100 ? [{ type: 'shift', weight: 100, why: 'promotion' }] : [];
}

/**
 * The soak begins at `now`: the rollout counts as promoted, in its last stage, and the previous version keeps running
 * until the soak's end (going back is a weight change). State, then a publish and the promoted alert.
 */
export function soakBegins(v: RolloutView, now: number): EndingCommand[] {
  const { s, plan, ctx } = v;
  s.stageIndex = plan.stages.length - 1;
  s.stageEntered = true;
  s.phase = 'promoted';
  s.promotedAt = now;
  s.soak = {
    since: now,
    until: now + plan.promotion.cleanupDelayMs,
    ...(s.stableVersion ? { previousVersion: s.stableVersion } : {}),
  };
  const previous = s.stableVersion ?? 'the previous version';
  return [
    PUBLISH,
    alert(
      'promoted',
      'info',
      `${v.label()} promoted: ${ctx.version} serves all traffic; ${previous} keeps running until ${iso(s.soak.until)} ` +
        `(the soak), so going back is a weight change: ${ctx.cli} abort ${ctx.workflowId} --reason "why"`,
    ),
  ];
}

/** The soak's wait at `now`: until its end, or until someone ends it (soakEnded) or goes back (an abort). */
export function soakWait(v: RolloutView, now: number): EndingCommand {
  const until = v.s.soak?.until ?? now;
  return {
    type: 'wait',
    timeoutMs: Math.max(1, until - now),
    summary: `soak until ${iso(until)}: the previous version keeps running`,
    ends: 'soakEnded',
  };
}

/** Whether someone ended the soak early (`canary promote --end-soak`). */
export function soakEnded(v: RolloutView): boolean {
  return v.s.soak?.endNow !== undefined;
}

/** Promotion begins (no longer abortable): the load stops. Then promotionShift and promoteStable. */
export function promoteBegins(v: RolloutView): EndingCommand[] {
  v.s.finalizing = true;
  return [{ type: 'stopLoad', why: 'promotion' }];
}

/**
 * After promotionShift, the rollout is in its last stage (set in place) and stable takes the new version. A failure
 * of this step or of the shift before it leaves stable on the old version (promotionFailed); its answer goes to
 * stableLabelOf, then promoteTraffic.
 */
export function promoteStable(v: RolloutView): EndingCommand[] {
  const { s, plan, ctx } = v;
  s.stageIndex = plan.stages.length - 1;
  s.stageEntered = true;
  return [
    {
      type: 'run',
      step: {
        policy: 'step',
        step: 'promoteStable',
        summary: `stable takes ${ctx.version}`,
        workloadWait: ctx.flags.routingLifecycle,
        args: [{ target: ctx.target, version: ctx.version, image: ctx.image }],
      },
    },
  ];
}

/**
 * Stable still runs the old version: rolling back is safe and right. The reason and ending of the rollback that
 * follows (the carrier throws RollbackRequired with them).
 */
export function promotionFailed(v: RolloutView, error: string): { reason: string; ending: RolloutEnding } {
  v.s.finalizing = false;
  return { reason: `promotion failed: ${error}`, ending: { kind: 'step' } };
}

/**
 * The label stable's selector uses after promoteStable's answer: rollouts recorded before it answered nothing, and a
 * stable whose selector pins the version label keeps it.
 */
export function stableLabelOf(v: RolloutView, answer: { stableLabel?: string } | undefined | null): string {
  return answer?.stableLabel ?? v.ctx.version;
}

/**
 * From here stable runs the new version; sending traffic back to it must not give up (from routing lifecycles on;
 * a person's resolve may end it: then promotionResolved). Stable's routing points at the new version (labelled
 * `stableLabel`), stable gets its capacity back (before machine-v2 as a step of its own; from it on, in the shift),
 * the canary goes to 0 %, the routing setup goes. Before routing lifecycles: one shift that never gives up.
 */
export function promoteTraffic(v: RolloutView, stableLabel: string): EndingCommand[] {
  const { s, ctx } = v;
  const { target, version } = ctx;
  const back = `promotion: canary ${s.weight}% → 0%, stable serves ${version}`;
  if (!ctx.flags.routingLifecycle) {
    return [
      {
        type: 'run',
        step: { policy: 'rollback', step: 'setCanaryWeight', summary: back, args: [{ target, weight: 0 }] },
      },
    ];
  }
  return [
    persistent(
      'point the stable routing at the new version',
      'prepareRouting',
      `promotion: ${v.routerName()} routing, stable serves ${version}`,
      [{ target, versions: { stable: stableLabel, canary: version }, mode: 'rollback' }],
    ),
    // Stable may have been shrunk while the canary carried the traffic (by an autoscaler, or by the replica ratio
    // at 100 %): it gets its capacity back before the traffic returns (from machine-v2 on, in the same step).
    ...(s.machineV2
      ? []
      : [
          persistent(
            'make sure the promoted stable can take the traffic',
            'ensureStableCapacity',
            'promotion: check stable capacity',
            [{ target }],
            'capacity',
          ),
        ]),
    persistent(
      'send traffic back to the promoted stable',
      'setCanaryWeight',
      back,
      [{ target, weight: 0, mode: 'rollback', ...(s.machineV2 ? { ensureCapacity: true } : {}) }],
      'trafficBackWithCapacity',
    ),
    persistent(
      'remove the routing setup',
      'teardownRouting',
      `promotion: tear down ${v.routerName()} routing`,
      [{ target }],
    ),
  ];
}

/** A person confirmed that traffic is on the promoted stable; what the failing step left is theirs now. State only. */
export function promotionResolved(v: RolloutView): void {
  v.s.retrying = undefined;
  v.s.achievedWeight = undefined;
}

/**
 * Promoted at `now` (or when its soak began): weight 0, the soak over, published; the promoted alert unless the soak
 * already said so (its end changes nothing for people); then the afterPromotion hooks, which can only warn.
 */
export function promoted(v: RolloutView, now: number): EndingCommand[] {
  const { s, ctx } = v;
  s.weight = 0;
  const soaked = s.soak !== undefined;
  s.phase = 'promoted';
  s.promotedAt ??= now;
  s.soak = undefined;
  return [
    PUBLISH,
    ...(soaked ? [] : [alert('promoted', 'info', `${v.label()} promoted: stable now runs ${ctx.version}`)]),
    { type: 'hooks', point: 'afterPromotion' },
  ];
}

/**
 * The canary lingers for the cleanup delay (before soaks, rollouts kept it this way; a cancel only shortens it);
 * undefined when the soak was the delay.
 */
export function cleanupDelay(v: RolloutView): EndingCommand | undefined {
  if (v.s.neverStuck && v.soakPromotion()) return undefined;
  return {
    type: 'wait',
    timeoutMs: v.plan.promotion.cleanupDelayMs,
    summary: 'cleanup delay',
    ends: 'never',
  };
}

/** Removes the canary workload after promotion (a failure: cleanupFailed). */
export function cleanupCanary(v: RolloutView): EndingCommand {
  return {
    type: 'run',
    step: {
      policy: 'step',
      step: 'cleanupCanary',
      summary: 'remove canary workload',
      args: [{ target: v.ctx.target }],
    },
  };
}

/**
 * The canary's removal failed past its retries at `now`. Traffic is already on stable, so from machine-v2 on the
 * rollout stays promoted: state records it, status and a warning say so, with the command that removes it. Before
 * machine-v2: undefined, the failure stands (the workflow fails).
 */
export function cleanupFailed(v: RolloutView, error: string, now: number): EndingCommand[] | undefined {
  const { s, ctx } = v;
  if (!s.machineV2) return undefined;
  s.cleanupFailed = { at: now, error };
  return [
    PUBLISH,
    alert(
      'stuck',
      'warning',
      `${v.label()} is promoted (stable runs ${ctx.version}), but its canary workload could not be removed: ` +
        `${error}. Remove it by hand: ${v.cleanupFix()}`,
    ),
  ];
}

// ---------- every ending ----------

/**
 * Every ending gives back the rollout's slot of its namespace's maxConcurrent, or its place in the queue (also one
 * asked for whose answer has not come): the fleet workflow to tell, forgotten in state. Undefined for rollouts that
 * never took one.
 */
export function releaseSlot(v: RolloutView): string | undefined {
  const s = v.s;
  const fleet = s.slot?.fleet ?? s.slotAsked;
  if (fleet === undefined) return undefined;
  s.slot = undefined;
  s.slotAsked = undefined;
  return fleet;
}

/**
 * A refused preflight: nothing was touched, so nothing is rolled back; the target is free at once. `first`: the
 * commands before the non-cancellable part (phase not_started, published); `then`: that part (the slot, the
 * not_started alert, handlers and deliveries finished); `why`: the failure's message (the first refusal, and how
 * many more).
 */
export function notStarted(v: RolloutView): { first: EndingCommand[]; then: EndingCommand[]; why: string } {
  const s = v.s;
  const why = (s.preflight?.findings ?? []).filter((f) => f.level === 'refuse').map((f) => f.message);
  s.phase = 'not_started';
  const first = why[0] ?? 'the preflight refused it';
  return {
    first: [PUBLISH],
    then: [
      { type: 'releaseSlot' },
      alert('not_started', 'warning', `${v.label()} did not start: nothing was changed. ${why.join('; ')}`, {
        reason: why.join('; '),
      }),
      { type: 'handlersFinished' },
      { type: 'flushAlerts' },
    ],
    why: `${first}${why.length > 1 ? ` (and ${why.length - 1} more)` : ''}`,
  };
}

/** The rollout's result: its outcome, target, reason, final weight, approvals, ending, resolve and refusals. */
export function resultOf(v: RolloutView, outcome: RolloutResult['outcome']): RolloutResult {
  const { s, ctx } = v;
  return {
    outcome,
    app: ctx.target.app,
    namespace: ctx.target.namespace,
    version: ctx.version,
    ...(s.rollbackReason ? { reason: s.rollbackReason } : {}),
    finalWeight: s.weight,
    approvals: s.approvals,
    ...(s.ending ? { ending: s.ending } : {}),
    ...(s.resolved ? { resolved: s.resolved } : {}),
    ...(s.preflight?.state === 'failed'
      ? { findings: s.preflight.findings, ...(s.preflight.cause ? { cause: s.preflight.cause } : {}) }
      : {}),
  };
}
