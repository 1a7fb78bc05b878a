// Fleet controls from the client: freeze and unfreeze a scope through its fleet workflow (workflows/fleet.ts), which
// holds the freeze durably and tells the rollouts in scope. The scope's arguments are checked before anything is sent.
import { WorkflowNotFoundError } from '@temporalio/client';
import { parseDuration } from '../workflows/duration';
import {
  ALL_NAMESPACES,
  FLEET_WORKFLOW,
  fleetFreezeSignal,
  fleetLimitSignal,
  fleetStatusQuery,
  fleetUnfreezeSignal,
  fleetWorkflowId,
  type FleetStatus,
  type FreezeRequest,
  type LimitRequest,
} from '../workflows/fleet-api';
import { dnsLabelProblem } from '../workflows/target';
import { InfrastructureError, RolloutInputError } from './errors';
import type { RolloutClient } from './rollout-client';

/** `--namespace N` (a DNS label), or every namespace without one. */
export function fleetScope(namespace: string | undefined): string {
  if (namespace === undefined) return ALL_NAMESPACES;
  const problem = dnsLabelProblem(namespace);
  if (problem) throw new RolloutInputError(`--namespace ${problem}`);
  return namespace;
}

/** `--until`: an ISO-8601 instant or a duration from now (`2h`); it must lie in the future. */
export function freezeUntil(text: string, now: Date): string {
  const t = text.trim();
  let at: number;
  if (/^\d+(\.\d+)?(ms|s|m|h|d)/.test(t)) {
    try {
      at = now.getTime() + parseDuration(t);
    } catch (err) {
      throw new RolloutInputError(`--until: ${(err as Error).message}`);
    }
  } else {
    at = /^\d{4}-\d{2}-\d{2}/.test(t) ? Date.parse(t) : NaN;
    if (Number.isNaN(at)) {
      throw new RolloutInputError(
        `--until must be an instant (2026-12-07T18:00:00Z) or a duration from now (2h), got "${text}"`,
      );
    }
  }
  if (at <= now.getTime()) {
    throw new RolloutInputError(
      `--until ${text} is in the past (now is ${now.toISOString()}); a freeze lifts at a time still to come`,
    );
  }
  return new Date(at).toISOString();
}

/** `--max-concurrent`: a whole number >= 1, or 0 / `none` to lift the limit (undefined). */
export function maxConcurrent(text: string): number | undefined {
  const t = text.trim().toLowerCase();
  if (t === 'none' || t === '0') return undefined;
  if (!/^\d+$/.test(t) || Number(t) < 1) {
    throw new RolloutInputError(
      `--max-concurrent must be a whole number of rollouts (1 or more), or 0 / none to lift the limit; got "${text}"`,
    );
  }
  return Number(t);
}

function infrastructure(what: string, err: unknown): InfrastructureError {
  return new InfrastructureError(`cannot ${what}: ${(err as Error).message ?? String(err)}`, { cause: err });
}

/** Freezes a scope: starts its fleet workflow if none runs (signal-with-start), or replaces its freeze. */
export async function freeze(c: RolloutClient, scope: string, req: FreezeRequest): Promise<string> {
  const workflowId = fleetWorkflowId(scope);
  try {
    await c.client.workflow.signalWithStart(FLEET_WORKFLOW, {
      workflowId,
      taskQueue: c.taskQueue,
      args: [{ scope }],
      signal: fleetFreezeSignal,
      signalArgs: [req],
    });
  } catch (err) {
    throw infrastructure(`freeze ${scope}`, err);
  }
  return workflowId;
}

/** Lifts a scope's freeze; false when it has none (no fleet workflow runs there, or it holds no freeze). */
export async function unfreeze(c: RolloutClient, scope: string, identity: string): Promise<boolean> {
  try {
    const h = c.client.workflow.getHandle(fleetWorkflowId(scope));
    const d = await h.describe();
    if (d.status.name !== 'RUNNING' || !(await h.query(fleetStatusQuery)).freeze) return false;
    await h.signal(fleetUnfreezeSignal, { identity });
    return true;
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return false;
    throw infrastructure(`unfreeze ${scope}`, err);
  }
}

/** The scope's fleet workflow as it stands, or undefined when none runs (nothing frozen). */
export async function fleetStatus(c: RolloutClient, scope: string): Promise<FleetStatus | undefined> {
  try {
    const h = c.client.workflow.getHandle(fleetWorkflowId(scope));
    const d = await h.describe();
    if (d.status.name !== 'RUNNING') return undefined;
    return await h.query(fleetStatusQuery);
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return undefined;
    throw infrastructure(`read the freeze of ${scope}`, err);
  }
}

/**
 * Sets a namespace's maxConcurrent (signal-with-start) or lifts it. Lifting where no limit is set sends nothing and
 * returns false.
 */
export async function limit(c: RolloutClient, scope: string, req: LimitRequest): Promise<boolean> {
  if (req.max === undefined) {
    const st = await fleetStatus(c, scope);
    if (!st?.limit) return false;
  }
  try {
    await c.client.workflow.signalWithStart(FLEET_WORKFLOW, {
      workflowId: fleetWorkflowId(scope),
      taskQueue: c.taskQueue,
      args: [{ scope }],
      signal: fleetLimitSignal,
      signalArgs: [req],
    });
  } catch (err) {
    throw infrastructure(`set the limit of ${scope}`, err);
  }
  return true;
}
