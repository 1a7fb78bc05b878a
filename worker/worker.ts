// The rollout Worker, built the same way by the worker process and by tests.
import { Worker, type NativeConnection, type WorkerOptions } from '@temporalio/worker';
import type { Duration } from '@temporalio/common';
import { DEFAULT_TASK_QUEUE } from '../workflows/api';
import { workflowSource, type WorkflowSource } from './bundle';

export interface RolloutWorkerOptions {
  connection: NativeConnection;
  namespace?: string;
  taskQueue?: string;
  /** The activities object (createActivities); the SDK registers only its function-valued properties. */
  activities: object;
  /** How long in-flight activities may run on after shutdown() before they are cancelled (default 30 s). */
  shutdownGraceTime?: Duration;
  identity?: string;
  /** Where the workflow code comes from; by default the prebuilt bundle when present, else the sources. */
  workflows?: WorkflowSource;
  /** Anything else Worker.create takes (tests: interceptors, sinks, concurrency limits, ...). */
  extra?: Omit<
    WorkerOptions,
    'connection' | 'namespace' | 'taskQueue' | 'activities' | 'workflowsPath' | 'workflowBundle'
  >;
}

export async function createRolloutWorker(opts: RolloutWorkerOptions): Promise<Worker> {
  return Worker.create({
    ...opts.extra,
    ...(opts.workflows ?? workflowSource()),
    connection: opts.connection,
    namespace: opts.namespace ?? 'default',
    taskQueue: opts.taskQueue ?? DEFAULT_TASK_QUEUE,
    activities: opts.activities,
    shutdownGraceTime: opts.shutdownGraceTime ?? opts.extra?.shutdownGraceTime ?? '30s',
    ...(opts.identity ? { identity: opts.identity } : {}),
  });
}
