// The worker's sweep schedule: with CANARY_SWEEP_EVERY set, the worker makes sure a Temporal Schedule runs the
// sweeper (workflows/sweep.ts) on its task queue at that interval. A Schedule, not a timer in this process: it is
// durable, one per task queue however many workers run, and visible (and pausable) in the Web UI.
//   CANARY_SWEEP_EVERY        how often (a duration, at least 10s); unset or `off`: no schedule (`canary sweep` still works)
//   CANARY_SWEEP_NAMESPACES   comma-separated Kubernetes namespaces to look in (default: every namespace)
import { Client, ScheduleAlreadyRunning, ScheduleOverlapPolicy } from '@temporalio/client';
import type { NativeConnection } from '@temporalio/worker';
import type { ConfigProblem } from '../connection/config';
import { parseDuration } from '../workflows/duration';
import { SWEEP_WORKFLOW, type SweepInput } from '../workflows/sweep-model';

export interface SweepSchedule {
  everyMs: number;
  namespaces?: string[];
}

export const MIN_SWEEP_MS = 10_000;

export function sweepScheduleFromEnv(
  env: NodeJS.ProcessEnv,
  problems: ConfigProblem[],
): SweepSchedule | undefined {
  const every = env.CANARY_SWEEP_EVERY?.trim();
  const namespaces = sweepNamespaces(env);
  if (!every || every === 'off') return undefined;
  let everyMs: number;
  try {
    everyMs = parseDuration(every);
  } catch (err) {
    problems.push({
      variable: 'CANARY_SWEEP_EVERY',
      problem: `${(err as Error).message}; give a duration such as 5m, or off`,
    });
    return undefined;
  }
  if (everyMs < MIN_SWEEP_MS) {
    problems.push({
      variable: 'CANARY_SWEEP_EVERY',
      problem: `is ${every}, below the minimum of 10s: each sweep lists the cluster's canaries`,
    });
    return undefined;
  }
  return { everyMs, ...(namespaces ? { namespaces } : {}) };
}

/** CANARY_SWEEP_NAMESPACES as a list, or undefined (every namespace). */
export function sweepNamespaces(env: NodeJS.ProcessEnv): string[] | undefined {
  const list = (env.CANARY_SWEEP_NAMESPACES ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  return list.length > 0 ? list : undefined;
}

/** The schedule's id on a task queue: one per queue, whichever worker made it. */
export const sweepScheduleId = (taskQueue: string) => `canary-sweeper.${taskQueue}`;

/** Creates the schedule, or brings an existing one to this worker's interval and namespaces. */
export async function ensureSweepSchedule(
  connection: NativeConnection,
  namespace: string,
  taskQueue: string,
  schedule: SweepSchedule,
): Promise<'created' | 'updated'> {
  const client = new Client({ connection, namespace });
  const scheduleId = sweepScheduleId(taskQueue);
  const args: [SweepInput] = [
    { requestedBy: 'schedule', ...(schedule.namespaces ? { namespaces: schedule.namespaces } : {}) },
  ];
  const action = {
    type: 'startWorkflow' as const,
    workflowType: SWEEP_WORKFLOW,
    taskQueue,
    workflowId: `canary-sweep.${taskQueue}`,
    args,
  };
  const spec = { intervals: [{ every: schedule.everyMs }] };
  try {
    await client.schedule.create({
      scheduleId,
      spec,
      action,
      policies: { overlap: ScheduleOverlapPolicy.SKIP },
      memo: { purpose: 'returns traffic to stable for rollouts whose workflow no longer runs' },
    });
    return 'created';
  } catch (err) {
    if (!(err instanceof ScheduleAlreadyRunning)) throw err;
    await client.schedule.getHandle(scheduleId).update((prev) => ({ ...prev, spec, action }));
    return 'updated';
  }
}
