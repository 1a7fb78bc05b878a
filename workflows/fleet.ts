// The fleet workflow: one per scope (`canary-fleet/<namespace>`, `canary-fleet/*` for every namespace), holding that
// scope's freeze durably in Temporal, not in any worker's memory. `canary freeze` starts it (signal-with-start) or
// changes it; it tells the rollouts in scope (those running when it froze, found through visibility, and every
// rollout that asks it before advancing) and tells them again when the freeze is lifted, by `canary unfreeze` or by
// the `--until` timer. A namespace's fleet workflow also holds its maxConcurrent (`canary fleet limit`): a rollout
// asks for a slot before its canary, gets one or a place in the queue, and gives it back at its end; slots go to the
// queue in order. It ends once nothing is frozen, no limit is set and no slot is held or queued for, so "no fleet
// workflow" reads as "nothing holds this scope": a rollout whose ask finds none goes on at once.
import {
  allHandlersFinished,
  condition,
  continueAsNew,
  getExternalWorkflowHandle,
  log,
  proxyActivities,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import type { FleetActivities } from '../activities/fleet';
import {
  ALL_NAMESPACES,
  describeFreeze,
  fleetAskSignal,
  fleetFreezeSignal,
  fleetLimitSignal,
  fleetNoticeSignal,
  fleetReleaseSignal,
  fleetStatusQuery,
  fleetUnfreezeSignal,
  type FleetFreeze,
  type FleetInput,
  type FleetSlots,
  type FleetStatus,
  settleSlots,
  slotPlace,
  slotsIdle,
} from './fleet-api';

const find = proxyActivities<FleetActivities>({
  startToCloseTimeout: '1 minute',
  retry: { initialInterval: '1 second', maximumAttempts: 5 },
});

/** History length at which a run continues as new, unless the input says otherwise (FleetInput.continueAfterEvents). */
const CONTINUE_AFTER_EVENTS = 2000;

export async function canaryFleet(input: FleetInput): Promise<FleetStatus> {
  const { scope } = input;
  const continueAfter = input.continueAfterEvents ?? CONTINUE_AFTER_EVENTS;
  const workflowId = workflowInfo().workflowId;
  let freeze: FleetFreeze | undefined = input.carried?.freeze;
  const members = new Set(input.carried?.members ?? []);
  let slots: FleetSlots = input.carried?.slots ?? { holders: [], queue: [] };
  /** Rollouts waiting for an answer. */
  const asks: string[] = [];
  /** Of those, the ones that asked for a slot (before their canary), and rollouts that ended (slots to give back). */
  const slotAsks: string[] = [];
  const released: string[] = [];
  /** The limit changed: the queue may move. */
  let limitChanged = false;
  /** The freeze changed: every member hears of it. */
  let changed = false;
  /** A new freeze: the rollouts already running in scope are found and told. */
  let listRunning = false;
  const status = (): FleetStatus => ({
    scope,
    workflowId,
    ...(freeze ? { freeze } : {}),
    members: [...members],
    ...(slots.limit ? { limit: slots.limit } : {}),
    ...(slots.holders.length > 0 || slots.queue.length > 0
      ? { holders: slots.holders, queue: slots.queue }
      : {}),
  });

  setHandler(fleetFreezeSignal, (r) => {
    freeze = {
      scope,
      by: r.identity,
      reason: r.reason,
      since: new Date(Date.now()).toISOString(),
      ...(r.until ? { until: r.until } : {}),
    };
    changed = true;
    listRunning = true;
    log.info('frozen', { freeze: describeFreeze(freeze) });
  });
  setHandler(fleetUnfreezeSignal, (r) => {
    if (!freeze) return;
    log.info('unfrozen', { by: r.identity });
    freeze = undefined;
    changed = true;
  });
  setHandler(fleetAskSignal, (a) => {
    asks.push(a.workflowId);
    if (a.slot) slotAsks.push(a.workflowId);
  });
  setHandler(fleetLimitSignal, (r) => {
    const { holders, queue } = slots;
    slots =
      r.max !== undefined
        ? { limit: { max: r.max, by: r.identity, since: new Date(Date.now()).toISOString() }, holders, queue }
        : { holders, queue };
    limitChanged = true;
    log.info(r.max !== undefined ? 'limit set' : 'limit lifted', { by: r.identity, max: r.max });
  });
  setHandler(fleetReleaseSignal, (r) => {
    released.push(r.workflowId);
  });
  setHandler(fleetStatusQuery, status);

  /** Tells one rollout the freeze; one that no longer runs is forgotten. */
  const tell = async (id: string): Promise<void> => {
    const place = slotPlace(slots, id);
    try {
      await getExternalWorkflowHandle(id).signal(fleetNoticeSignal, {
        fleet: workflowId,
        ...(freeze ? { freeze } : {}),
        ...(place ? { slot: place } : {}),
      });
    } catch (err) {
      members.delete(id);
      // One that ended without giving its slot back (terminated, say) gives it back now.
      if (place) released.push(id);
      log.info('rollout not told (no longer running)', { rollout: id, error: String(err) });
    }
  };
  const pending = (): boolean =>
    changed || listRunning || asks.length > 0 || released.length > 0 || limitChanged;
  const idle = (): boolean => !freeze && slotsIdle(slots) && !pending();
  const untilMs = (): number | undefined => (freeze?.until ? Date.parse(freeze.until) : undefined);

  for (;;) {
    if (idle()) {
      // Nothing frozen, no limit, no slot held and nobody waiting for an answer: the scope needs no workflow.
      await condition(allHandlersFinished);
      if (idle()) return status();
    }
    const until = untilMs();
    if (until === undefined) await condition(pending);
    else await condition(pending, Math.max(1, until - Date.now()));
    const lift = untilMs();
    if (freeze && lift !== undefined && Date.now() >= lift) {
      log.info('freeze lifted by its --until', { until: freeze.until });
      freeze = undefined;
      changed = true;
    }
    if (listRunning) {
      listRunning = false;
      if (freeze) {
        try {
          const running = await find.listRunningRollouts({
            ...(scope !== ALL_NAMESPACES ? { namespace: scope } : {}),
          });
          running.forEach((id) => members.add(id));
        } catch (err) {
          // The freeze still holds: every rollout asks before its next advance. Only status and alerts come later.
          log.warn('running rollouts not listed; they learn of the freeze when they next advance', {
            error: String(err),
          });
        }
      }
    }
    const answer = asks.splice(0);
    answer.forEach((id) => members.add(id));
    const settled = settleSlots(slots, slotAsks.splice(0), released.splice(0));
    slots = settled.slots;
    limitChanged = false;
    const told = new Set([...(changed ? members : []), ...answer, ...settled.moved]);
    changed = false;
    await Promise.all([...told].map(tell));
    if (!freeze) members.clear();
    if (workflowInfo().historyLength > continueAfter && !pending()) {
      await condition(allHandlersFinished);
      if (!pending()) {
        await continueAsNew<typeof canaryFleet>({
          scope,
          carried: { ...(freeze ? { freeze } : {}), members: [...members], slots },
          ...(input.continueAfterEvents !== undefined
            ? { continueAfterEvents: input.continueAfterEvents }
            : {}),
        });
      }
    }
  }
}
