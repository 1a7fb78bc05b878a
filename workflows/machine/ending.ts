// How a rollout ends: promotion (with its soak), rollback (never skipped, never cancelled), or not started (a
// refused preflight). And the whole run, from the first step to its result.
import type { RolloutResult } from '../types';
import type { WeightResult } from '../../activities/rollout-activities';
import { errorMessage, iso } from './context';
import { NotStarted, ResolvedByHand, RollbackRequired } from './errors';
import type { RolloutMachine } from './machine';
import type { StepCommand } from './port';
import { runHooks, runRollbackHooks } from './hooks';
import { stopStageLoad } from './load';
import { walk } from './walk';

/** The soak begins: the canary (the new version) carries all the traffic; the rollout counts as promoted. */
async function beginSoak(m: RolloutMachine): Promise<void> {
  const { s, plan, ctx } = m;
  if (s.weight !== 100) await m.shift(100, 'promotion');
  s.stageIndex = plan.stages.length - 1;
  s.stageEntered = true;
  const now = m.now();
  s.phase = 'promoted';
  s.promotedAt = now;
  s.soak = {
    since: now,
    until: now + plan.promotion.cleanupDelayMs,
    ...(s.stableVersion ? { previousVersion: s.stableVersion } : {}),
  };
  m.publish();
  const previous = s.stableVersion ?? 'the previous version';
  await m.alert(
    'promoted',
    'info',
    `${m.label()} promoted: ${ctx.version} serves all traffic; ${previous} keeps running until ${iso(s.soak.until)} ` +
      `(the soak), so going back is a weight change: ${ctx.cli} abort ${ctx.workflowId} --reason "why"`,
  );
}

/** The soak: the previous version keeps running until its end, or until someone ends it or goes back. */
async function soak(m: RolloutMachine): Promise<void> {
  const until = m.s.soak?.until ?? m.now();
  await m.port.waitUntil(
    () => m.s.soak?.endNow !== undefined,
    Math.max(1, until - m.now()),
    `soak until ${iso(until)}: the previous version keeps running`,
  );
}

// Promotion: canary takes all traffic, stable takes the new version, traffic returns to stable, the canary goes.
async function promote(m: RolloutMachine): Promise<void> {
  const { s, plan, ctx } = m;
  const { target, version } = ctx;
  s.finalizing = true;
  let stableLabel = version;
  await stopStageLoad(m, 'promotion');
  try {
    if (s.weight !== 100) await m.shift(100, 'promotion');
    s.stageIndex = plan.stages.length - 1;
    s.stageEntered = true;
    const promoted = await m.port.run({
      policy: 'step',
      step: 'promoteStable',
      summary: `stable takes ${version}`,
      workloadWait: ctx.flags.routingLifecycle,
      args: [{ target, version, image: ctx.image }],
    });
    // Rollouts recorded before this answered nothing; a stable whose selector pins the version label keeps it.
    stableLabel = promoted?.stableLabel ?? version;
  } catch (err) {
    // Stable still runs the old version: rolling back is safe and right.
    s.finalizing = false;
    throw new RollbackRequired(`promotion failed: ${errorMessage(err)}`, { kind: 'step' });
  }
  // From here stable runs the new version; sending traffic back to it must not give up.
  if (ctx.flags.routingLifecycle) {
    try {
      await m.persist('point the stable routing at the new version', () =>
        m.port.run({
          policy: 'persistent',
          step: 'prepareRouting',
          summary: `promotion: ${m.routerName()} routing, stable serves ${version}`,
          args: [{ target, versions: { stable: stableLabel, canary: version }, mode: 'rollback' }],
        }),
      );
      // Stable may have been shrunk while the canary carried the traffic (by an autoscaler, or by the replica
      // ratio at 100 %): it gets its capacity back before the traffic returns (from machine-v2 on, in the same step).
      if (!s.machineV2) {
        const capacity = await m.persist('make sure the promoted stable can take the traffic', () =>
          m.port.run({
            policy: 'persistent',
            step: 'ensureStableCapacity',
            summary: 'promotion: check stable capacity',
            args: [{ target }],
          }),
        );
        if (capacity) s.capacityNote = capacity;
      }
      const r = await m.persist('send traffic back to the promoted stable', () =>
        m.port.run({
          policy: 'persistent',
          step: 'setCanaryWeight',
          summary: `promotion: canary ${s.weight}% → 0%, stable serves ${version}`,
          args: [{ target, weight: 0, mode: 'rollback', ...(s.machineV2 ? { ensureCapacity: true } : {}) }],
        }),
      );
      if (r.capacityNote) s.capacityNote = r.capacityNote;
      m.applyWeight(0, r);
      await m.persist('remove the routing setup', () =>
        m.port.run({
          policy: 'persistent',
          step: 'teardownRouting',
          summary: `promotion: tear down ${m.routerName()} routing`,
          args: [{ target }],
        }),
      );
    } catch (err) {
      // A person confirmed that traffic is on the promoted stable; what the failing step left is theirs now.
      if (!(err instanceof ResolvedByHand)) throw err;
      s.retrying = undefined;
      s.achievedWeight = undefined;
    }
  } else {
    await m.port.run({
      policy: 'rollback',
      step: 'setCanaryWeight',
      summary: `promotion: canary ${s.weight}% → 0%, stable serves ${version}`,
      args: [{ target, weight: 0 }],
    });
  }
  s.weight = 0;
  const soaked = s.soak !== undefined;
  s.phase = 'promoted';
  s.promotedAt ??= m.now();
  s.soak = undefined;
  m.publish();
  // A soaked promotion said so when it began; the end of the soak changes nothing for people.
  if (!soaked) await m.alert('promoted', 'info', `${m.label()} promoted: stable now runs ${version}`);
  // Stable runs the new version: an afterPromotion hook can only warn (validation allows nothing else).
  try {
    await runHooks(m, 'afterPromotion');
  } catch (err) {
    m.port.log.warn('afterPromotion hook did not finish', { error: errorMessage(err) });
  }
}

/**
 * After traffic is back on stable (so it never delays that): the rollback reason of a cancel names who asked,
 * read from the workflow's own history (the cancel-request event's identity), when Temporal knows.
 */
async function nameCanceller(m: RolloutMachine, cancelled: boolean): Promise<void> {
  const s = m.s;
  if (!cancelled || !m.port.patched('cancel-identity')) return;
  try {
    const who = await m.port.run({
      policy: 'lookup',
      step: 'cancelRequester',
      summary: 'who cancelled',
      args: [],
    });
    if (who) s.rollbackReason = `workflow cancelled by ${who} (Temporal UI or API)`;
    if (who && s.ending?.kind === 'cancel') s.ending = { kind: 'cancel', by: who };
  } catch (err) {
    m.port.log.warn('could not tell who cancelled the rollout', { error: errorMessage(err) });
  }
}

/**
 * Removes the canary workload after promotion. Traffic is already on stable, so from machine-v2 on a removal that
 * fails past its retries leaves the rollout promoted: status and a warning say so, with the command that removes it.
 */
async function cleanupCanary(m: RolloutMachine): Promise<void> {
  const { s, ctx, port } = m;
  try {
    await port.run({
      policy: 'step',
      step: 'cleanupCanary',
      summary: 'remove canary workload',
      args: [{ target: ctx.target }],
    });
  } catch (err) {
    if (!s.machineV2) throw err;
    s.cleanupFailed = { at: m.now(), error: errorMessage(err) };
    m.publish();
    await m.alert(
      'stuck',
      'warning',
      `${m.label()} is promoted (stable runs ${ctx.version}), but its canary workload could not be removed: ` +
        `${errorMessage(err)}. Remove it by hand: ${m.cleanupFix()}`,
    );
  }
}

/**
 * From rollback-local-shift on, the first attempt of the shift back to stable, run by the worker at once (policy
 * `rollbackFirst`); undefined when it is not made or fails (the persistent path takes over). A person's resolve ends it
 * as it ends a persistent attempt. Not for the replica ratio, whose shift waits for stable's pods.
 */
async function shiftBackAtOnce(
  m: RolloutMachine,
  shift: Omit<StepCommand<'setCanaryWeight'>, 'policy'>,
): Promise<WeightResult | undefined> {
  if (m.ctx.target.traffic?.router === 'replicas' || !m.port.patched('rollback-local')) return undefined;
  m.stepScope = m.port.scope();
  try {
    return await m.stepScope.run(() => m.port.run({ policy: 'rollbackFirst', ...shift }));
  } catch (err) {
    if (m.s.resolved) throw new ResolvedByHand();
    m.port.log.warn('the first shift back to stable failed; retrying as a persistent step', {
      error: errorMessage(err),
    });
    return undefined;
  } finally {
    m.stepScope = undefined;
  }
}

async function rollback(m: RolloutMachine, reason: string, cancelled = false): Promise<void> {
  const { s, ctx } = m;
  const { target } = ctx;
  s.failedStage ??= s.stageIndex;
  s.phase = 'rolling_back';
  s.rollbackReason = reason;
  s.pausedSince = undefined;
  s.windowWait = undefined;
  m.publish();
  m.routeEarly();
  // Only started here, never awaited: a sink cannot delay traffic going back.
  await m.alert('rollback_started', 'critical', `${m.label()} is rolling back: ${reason}`, false, { reason });
  if (!ctx.flags.routingLifecycle) {
    await m.port.run({
      policy: 'rollback',
      step: 'setCanaryWeight',
      summary: `rollback: canary ${s.weight}% → 0%`,
      args: [{ target, weight: 0 }],
    });
    s.weight = 0;
    m.publish();
    await nameCanceller(m, cancelled);
    await m.port.run({
      policy: 'rollback',
      step: 'scaleDownCanary',
      summary: 'rollback: scale canary down',
      args: [{ target }],
    });
  } else {
    // Only what the rollout changed is undone (all of it for rollouts that did not keep track): one that never
    // moved traffic or set up routing has no traffic to bring back, whatever state its cluster is in.
    const t = s.touched;
    try {
      if ((!t || t.traffic || t.routing) && s.machineV2) {
        // Stable must be able to take the traffic back (an autoscaler may have shrunk it), then traffic goes back:
        // one step, so a stable big enough costs no round trip through the workflow before the shift.
        if (m.ctx.target.traffic?.router === 'replicas' && s.weight > 0) {
          // The ratio gave stable's replicas to the canary: status says why traffic waits while they come back.
          s.capacityNote =
            `the replica ratio moved stable's replicas to the canary: stable grows back to its full size first, ` +
            `and the canary goes to 0 once those pods are available (traffic follows the pods)`;
          m.publish();
        }
        const shift: Omit<StepCommand<'setCanaryWeight'>, 'policy'> = {
          step: 'setCanaryWeight',
          summary: `rollback: canary ${s.weight}% → 0% (stable's capacity checked first)`,
          args: [{ target, weight: 0, mode: 'rollback', ensureCapacity: true }],
        };
        const r =
          (await shiftBackAtOnce(m, shift)) ??
          (await m.persist('send traffic back to stable', () =>
            m.port.run({ policy: 'persistent', ...shift }),
          ));
        if (r.capacityNote) s.capacityNote = r.capacityNote;
        m.applyWeight(0, r);
      } else if (!t || t.traffic || t.routing) {
        // Stable must be able to take the traffic back (an autoscaler may have shrunk it); then traffic goes
        // back before anything else (not even an alert) can delay it.
        const capacity = await m.persist('make sure stable can take the traffic', () =>
          m.port.run({
            policy: 'persistent',
            step: 'ensureStableCapacity',
            summary: 'rollback: check stable capacity',
            args: [{ target }],
          }),
        );
        if (capacity) s.capacityNote = capacity;
        const r = await m.persist('send traffic back to stable', () =>
          m.port.run({
            policy: 'persistent',
            step: 'setCanaryWeight',
            summary: `rollback: canary ${s.weight}% → 0%`,
            args: [{ target, weight: 0, mode: 'rollback' }],
          }),
        );
        m.applyWeight(0, r);
      }
      s.drift = undefined;
      m.publish();
      await nameCanceller(m, cancelled);
      if (!t || t.canary) {
        await m.persist('scale the canary down', () =>
          m.port.run({
            policy: 'persistent',
            step: 'scaleDownCanary',
            summary: 'rollback: scale canary down',
            args: [{ target }],
          }),
        );
      }
      if (!t || t.routing) {
        await m.persist('remove the routing setup', () =>
          m.port.run({
            policy: 'persistent',
            step: 'teardownRouting',
            summary: `rollback: tear down ${m.routerName()} routing`,
            args: [{ target }],
          }),
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
  // Traffic is back on stable: the load stops, then the plan's onRollback hooks run (neither can hold or undo it).
  await stopStageLoad(m, 'rollback');
  await runRollbackHooks(m);
  s.phase = 'rolled_back';
  m.publish();
  const why = s.rollbackReason ?? reason;
  await m.alert('rolled_back', 'critical', `${m.label()} rolled back: ${why}`, false, { reason: why });
}

export function rolloutResult(m: RolloutMachine, outcome: RolloutResult['outcome']): RolloutResult {
  const { s, ctx } = m;
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

/** A refused preflight: nothing was touched, so nothing is rolled back; the target is free at once. */
/**
 * Every ending gives back the rollout's slot of its namespace's maxConcurrent, or its place in the queue (also one
 * asked for whose answer has not come). Rollouts that never took one send nothing.
 */
async function releaseSlot(m: RolloutMachine): Promise<void> {
  const s = m.s;
  const fleet = s.slot?.fleet ?? s.slotAsked;
  if (fleet === undefined) return;
  s.slot = undefined;
  s.slotAsked = undefined;
  await m.port.releaseFleetSlot(fleet, m.ctx.workflowId);
}

async function endNotStarted(m: RolloutMachine): Promise<never> {
  const s = m.s;
  const refusals = (s.preflight?.findings ?? []).filter((f) => f.level === 'refuse');
  s.phase = 'not_started';
  m.publish();
  const why = refusals.map((f) => f.message);
  await m.port.nonCancellable(async () => {
    await releaseSlot(m);
    await m.alert(
      'not_started',
      'warning',
      `${m.label()} did not start: nothing was changed. ${why.join('; ')}`,
      false,
      { reason: why.join('; ') },
    );
    await m.port.handlersFinished();
    await m.flushAlerts();
  });
  const first = why[0] ?? 'the preflight refused it';
  throw m.port.outcome(
    'not_started',
    `${first}${why.length > 1 ? ` (and ${why.length - 1} more)` : ''}`,
    rolloutResult(m, 'not_started'),
  );
}

/** Who or what ended the walk, and why, from what stopped it. */
function endingOf(m: RolloutMachine, err: unknown): { ending: RolloutResult['ending']; reason: string } {
  const s = m.s;
  const abort = s.abortRequest;
  const cancelled = m.port.isCancellation(err);
  const ending =
    err instanceof RollbackRequired
      ? err.ending
      : abort
        ? {
            kind: abort.back ? ('back' as const) : abort.declined ? ('decline' as const) : ('abort' as const),
            by: abort.by,
          }
        : cancelled
          ? { kind: 'cancel' as const }
          : { kind: 'step' as const };
  const reason =
    err instanceof RollbackRequired
      ? err.reason
      : abort
        ? abort.back
          ? `went back to ${s.soak?.previousVersion ?? 'the previous version'} during the soak, as ${abort.by} asked: ${abort.reason}`
          : abort.declined && s.neverStuck
            ? `declined by ${abort.by} (${abort.declined}): ${abort.reason}`
            : `aborted by ${abort.by}: ${abort.reason}`
        : cancelled
          ? 'workflow cancelled (Temporal UI or API)'
          : `rollout step failed: ${errorMessage(err)}`;
  return { ending, reason };
}

/** The whole run: the walk, then promotion (with its soak) or rollback, then the canary's cleanup. */
export async function runRollout(m: RolloutMachine): Promise<RolloutResult> {
  const { s, plan, ctx, port } = m;
  m.publish();
  if (ctx.flags.alertsV2) {
    // Once per run; names only (no secrets), recorded in history, so replays route alike.
    await port.nonCancellable(async () => {
      try {
        m.sinkNames = await port.run({
          policy: 'alert',
          step: 'alertSinks',
          summary: 'which alert sinks',
          args: [],
        });
      } catch (err) {
        port.log.warn('alert sinks unknown; alerts go to the log only', { error: errorMessage(err) });
        m.sinkNames = ['log'];
      }
      m.routeEarly();
    });
  }
  if (s.phase === 'progressing' || m.soaking()) {
    try {
      if (s.phase === 'progressing') {
        await m.walkScope.run(() => walk(m));
        if (m.soakPromotion()) await port.nonCancellable(() => beginSoak(m));
      }
      // While it soaks, an abort or a cancel goes back to the previous version, which still runs.
      if (m.soaking()) await m.walkScope.run(() => soak(m));
      // Once stable runs the new version there is nothing to roll back to: promotion is not cancellable.
      await port.nonCancellable(async () => {
        await promote(m);
        await releaseSlot(m);
      });
    } catch (err) {
      if (port.isContinueAsNew(err)) throw err;
      if (err instanceof NotStarted) return endNotStarted(m);
      const { ending, reason } = endingOf(m, err);
      s.ending = ending;
      // Rollback cannot be skipped: not by a cancel, a timeout or a failing alert sink.
      const cancelled = !(err instanceof RollbackRequired) && !s.abortRequest && port.isCancellation(err);
      await port.nonCancellable(async () => {
        await rollback(m, reason, cancelled);
        await releaseSlot(m);
        await port.handlersFinished();
        await m.flushAlerts();
      });
      const rolledBack = rolloutResult(m, 'rolled_back');
      // The Web UI (and its Failures filter) tells a rolled-back rollout from a promoted one; the failure is typed
      // and carries the result, which clients read as before (client/index.ts rolloutResult).
      if (port.patched('rollback-fails')) {
        throw port.outcome('rolled_back', s.rollbackReason ?? reason, rolledBack);
      }
      return rolledBack;
    }
  }
  if (!s.neverStuck || !m.soakPromotion()) {
    try {
      // The canary lingers for the cleanup delay (before soaks, rollouts kept it this way); a cancel only shortens it.
      await m.walkScope.run(() =>
        port.waitUntil(() => false, plan.promotion.cleanupDelayMs, 'cleanup delay'),
      );
    } catch (err) {
      if (!port.isCancellation(err)) throw err;
    }
  }
  await port.nonCancellable(async () => {
    await cleanupCanary(m);
    await port.handlersFinished();
    await m.flushAlerts();
  });
  return rolloutResult(m, 'promoted');
}
