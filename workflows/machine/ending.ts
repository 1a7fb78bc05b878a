// How a rollout ends: promotion (with its soak), rollback (never skipped, never cancelled), or not started (a
// refused preflight). And the whole run, from the first step to its result. What happens at each ending, and in
// which order, is decided in ending-steps.ts; this file asks it, carries out the commands it returns with the port,
// awaiting each where the machine always awaited it, and feeds the answers back.
import type { RolloutResult } from '../types';
import type { WeightResult } from '../../activities/rollout-activities';
import { errorMessage } from './context';
import {
  CANCELLER,
  afterTrafficBack,
  cleanupCanary,
  cleanupDelay,
  cleanupFailed,
  endingOf,
  notStarted,
  promoteBegins,
  promoteStable,
  promotionShift,
  promoteTraffic,
  promoted,
  promotionFailed,
  promotionResolved,
  recordAnswer,
  releaseSlot,
  resultOf,
  rollbackBegins,
  rollbackResolved,
  rollbackSteps,
  rolledBack,
  soakBegins,
  soakEnded,
  soakWait,
  stableLabelOf,
  type EndingCommand,
  type WalkStop,
} from './ending-steps';
import { NotStarted, ResolvedByHand, RollbackRequired } from './errors';
import type { RolloutMachine } from './machine';
import type { StepCommand } from './port';
import { runHooks, runRollbackHooks } from './hooks';
import { stopStageLoad } from './load';
import { walk } from './walk';

/** Carries out ending-steps' commands in the order given, awaiting each; returns the last step's answer. */
async function carry(m: RolloutMachine, commands: readonly EndingCommand[]): Promise<unknown> {
  const { port } = m;
  let answer: unknown;
  for (const c of commands) {
    switch (c.type) {
      case 'publish':
        m.publish();
        break;
      case 'routeEarly':
        m.routeEarly();
        break;
      case 'alert':
        await m.alert(c.kind, c.severity, c.message, c.fromHandler, c.extra);
        break;
      case 'run':
        answer = c.persist ? await m.persist(c.persist, () => port.run(c.step)) : await port.run(c.step);
        if (c.record) recordAnswer(m, c.record, answer);
        break;
      case 'shiftBack':
        answer =
          (c.localFirst ? await shiftBackAtOnce(m, c.shift) : undefined) ??
          (await m.persist(c.persist, () => port.run({ policy: 'persistent', ...c.shift })));
        recordAnswer(m, 'trafficBackWithCapacity', answer);
        break;
      case 'shift':
        await m.shift(c.weight, c.why);
        break;
      case 'record':
        recordAnswer(m, c.change);
        break;
      case 'nameCanceller':
        await nameCanceller(m);
        break;
      case 'stopLoad':
        await stopStageLoad(m, c.why);
        break;
      case 'hooks':
        if (c.point === 'onRollback') await runRollbackHooks(m);
        else {
          // Stable runs the new version: an afterPromotion hook can only warn (validation allows nothing else).
          try {
            await runHooks(m, 'afterPromotion');
          } catch (err) {
            port.log.warn('afterPromotion hook did not finish', { error: errorMessage(err) });
          }
        }
        break;
      case 'releaseSlot': {
        const fleet = releaseSlot(m);
        if (fleet !== undefined) await port.releaseFleetSlot(fleet, m.ctx.workflowId);
        break;
      }
      case 'wait':
        await port.waitUntil(
          c.ends === 'soakEnded' ? () => soakEnded(m) : () => false,
          c.timeoutMs,
          c.summary,
        );
        break;
      case 'handlersFinished':
        await port.handlersFinished();
        break;
      case 'flushAlerts':
        await m.flushAlerts();
        break;
    }
  }
  return answer;
}

/**
 * After traffic is back on stable (so it never delays that): the rollback reason of a cancel names who asked, read
 * from the workflow's own history (the cancel-request event's identity), when Temporal knows.
 */
async function nameCanceller(m: RolloutMachine): Promise<void> {
  if (!m.port.patched('cancel-identity')) return;
  try {
    recordAnswer(m, 'canceller', await m.port.run(CANCELLER));
  } catch (err) {
    m.port.log.warn('could not tell who cancelled the rollout', { error: errorMessage(err) });
  }
}

/**
 * From rollback-local-shift on, the first attempt of the shift back to stable, run by the worker at once (policy
 * `rollbackFirst`); undefined when it is not made or fails (the persistent path takes over). A person's resolve ends it
 * as it ends a persistent attempt.
 */
async function shiftBackAtOnce(
  m: RolloutMachine,
  shift: Omit<StepCommand<'setCanaryWeight'>, 'policy'>,
): Promise<WeightResult | undefined> {
  if (!m.port.patched('rollback-local')) return undefined;
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

/** The rollback: traffic back to stable first, then the canary, the routing, the load, the onRollback hooks. */
async function rollback(
  m: RolloutMachine,
  { ending, reason, cancelled }: ReturnType<typeof endingOf>,
): Promise<void> {
  await carry(m, rollbackBegins(m, reason, ending));
  try {
    await carry(m, rollbackSteps(m, cancelled));
  } catch (err) {
    if (!(err instanceof ResolvedByHand)) throw err;
    rollbackResolved(m, reason);
  }
  await carry(m, afterTrafficBack());
  await carry(m, rolledBack(m, reason));
}

/** The soak begins: the canary (the new version) carries all the traffic; the rollout counts as promoted. */
async function beginSoak(m: RolloutMachine): Promise<void> {
  await carry(m, promotionShift(m));
  await carry(m, soakBegins(m, m.now()));
}

// Promotion: canary takes all traffic, stable takes the new version, traffic returns to stable, the canary goes.
async function promote(m: RolloutMachine): Promise<void> {
  await carry(m, promoteBegins(m));
  let stableLabel: string;
  try {
    await carry(m, promotionShift(m));
    stableLabel = stableLabelOf(m, (await carry(m, promoteStable(m))) as { stableLabel?: string });
  } catch (err) {
    const failed = promotionFailed(m, errorMessage(err));
    throw new RollbackRequired(failed.reason, failed.ending);
  }
  try {
    await carry(m, promoteTraffic(m, stableLabel));
  } catch (err) {
    if (!(err instanceof ResolvedByHand)) throw err;
    promotionResolved(m);
  }
  await carry(m, promoted(m, m.now()));
}

export function rolloutResult(m: RolloutMachine, outcome: RolloutResult['outcome']): RolloutResult {
  return resultOf(m, outcome);
}

async function endNotStarted(m: RolloutMachine): Promise<never> {
  const { first, then, why } = notStarted(m);
  await carry(m, first);
  await m.port.nonCancellable(() => carry(m, then));
  throw m.port.outcome('not_started', why, rolloutResult(m, 'not_started'));
}

/** What stopped the walk, as ending-steps reads it (the port tells a cancellation). */
function stopOf(m: RolloutMachine, err: unknown): WalkStop {
  if (err instanceof RollbackRequired)
    return { type: 'rollbackRequired', reason: err.reason, ending: err.ending };
  if (m.port.isCancellation(err)) return { type: 'cancelled' };
  return { type: 'failed', error: errorMessage(err) };
}

/** The whole run: the walk, then promotion (with its soak) or rollback, then the canary's cleanup. */
export async function runRollout(m: RolloutMachine): Promise<RolloutResult> {
  const { s, ctx, port } = m;
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
      if (m.soaking()) await m.walkScope.run(() => carry(m, [soakWait(m, m.now())]));
      // Once stable runs the new version there is nothing to roll back to: promotion is not cancellable.
      await port.nonCancellable(async () => {
        await promote(m);
        await carry(m, [{ type: 'releaseSlot' }]);
      });
    } catch (err) {
      if (port.isContinueAsNew(err)) throw err;
      if (err instanceof NotStarted) return endNotStarted(m);
      const ended = endingOf(m, stopOf(m, err));
      // Rollback cannot be skipped: not by a cancel, a timeout or a failing alert sink.
      await port.nonCancellable(async () => {
        await rollback(m, ended);
        await carry(m, [{ type: 'releaseSlot' }, { type: 'handlersFinished' }, { type: 'flushAlerts' }]);
      });
      const rolledBack = rolloutResult(m, 'rolled_back');
      // The Web UI (and its Failures filter) tells a rolled-back rollout from a promoted one; the failure is typed
      // and carries the result, which clients read as before (client/index.ts rolloutResult).
      if (port.patched('rollback-fails')) {
        throw port.outcome('rolled_back', s.rollbackReason ?? ended.reason, rolledBack);
      }
      return rolledBack;
    }
  }
  const delay = cleanupDelay(m);
  if (delay) {
    try {
      // The canary lingers for the cleanup delay; a cancel only shortens it.
      await m.walkScope.run(() => carry(m, [delay]));
    } catch (err) {
      if (!port.isCancellation(err)) throw err;
    }
  }
  await port.nonCancellable(async () => {
    try {
      await carry(m, [cleanupCanary(m)]);
    } catch (err) {
      const failed = cleanupFailed(m, errorMessage(err), m.now());
      if (!failed) throw err;
      await carry(m, failed);
    }
    await carry(m, [{ type: 'handlersFinished' }, { type: 'flushAlerts' }]);
  });
  return rolloutResult(m, 'promoted');
}
