// The fleet workflow: one per scope (`canary-fleet/<namespace>`, `canary-fleet/*` for every namespace), holding that
// scope's freeze durably in Temporal, not in any worker's memory. `canary freeze` starts it (signal-with-start) or
// changes it; it tells the rollouts in scope (those running when it froze, found through visibility, and every
// rollout that asks it before advancing) and tells them again when the freeze is lifted, by `canary unfreeze` or by
// the `--until` timer. It ends once nothing is frozen, so "no fleet workflow" reads as "not frozen": a rollout whose
// ask finds none goes on at once.
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
  fleetNoticeSignal,
  fleetStatusQuery,
  fleetUnfreezeSignal,
  type FleetFreeze,
  type FleetInput,
  type FleetStatus,
} from './fleet-api';

const find = proxyActivities<FleetActivities>({
  startToCloseTimeout: '1 minute',
  retry: { initialInterval: '1 second', maximumAttempts: 5 },
});

/** History length at which a run continues as new (far below Temporal's 10,240-event warning). */
const CONTINUE_AFTER_EVENTS = 2000;

export async function canaryFleet(input: FleetInput): Promise<FleetStatus> {
  const { scope } = input;
  const workflowId = workflowInfo().workflowId;
  let freeze: FleetFreeze | undefined = input.carried?.freeze;
  const members = new Set(input.carried?.members ?? []);
  /** Rollouts waiting for an answer. */
  const asks: string[] = [];
  /** The freeze changed: every member hears of it. */
  let changed = false;
  /** A new freeze: the rollouts already running in scope are found and told. */
  let listRunning = false;
  const status = (): FleetStatus => ({
    scope,
    workflowId,
    ...(freeze ? { freeze } : {}),
    members: [...members],
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
  });
  setHandler(fleetStatusQuery, status);

  /** Tells one rollout the freeze; one that no longer runs is forgotten. */
  const tell = async (id: string): Promise<void> => {
    try {
      await getExternalWorkflowHandle(id).signal(fleetNoticeSignal, {
        fleet: workflowId,
        ...(freeze ? { freeze } : {}),
      });
    } catch (err) {
      members.delete(id);
      log.info('rollout not told (no longer running)', { rollout: id, error: String(err) });
    }
  };
  const pending = (): boolean => changed || listRunning || asks.length > 0;
  const untilMs = (): number | undefined => (freeze?.until ? Date.parse(freeze.until) : undefined);

  for (;;) {
    if (!freeze && !pending()) {
      // Nothing frozen and nobody waiting for an answer: the scope needs no workflow.
      await condition(allHandlersFinished);
      if (!freeze && !pending()) return status();
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
    const told = changed ? [...members] : [...new Set(answer)];
    changed = false;
    await Promise.all(told.map(tell));
    if (!freeze) members.clear();
    if (workflowInfo().historyLength > CONTINUE_AFTER_EVENTS && !pending()) {
      await condition(allHandlersFinished);
      if (!pending()) {
        await continueAsNew<typeof canaryFleet>({
          scope,
          carried: { ...(freeze ? { freeze } : {}), members: [...members] },
        });
      }
    }
  }
}
