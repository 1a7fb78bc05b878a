// The rollout Worker, built the same way by the worker process and by tests.
import { Worker, type InjectedSinks, type NativeConnection, type WorkerOptions } from '@temporalio/worker';
import type { Duration } from '@temporalio/common';
import type { ProviderSource } from '../activities/factory';
import { DEFAULT_TASK_QUEUE } from '../workflows/api';
import type { RolloutMetricsSinks } from '../workflows/driver';
import { workflowSource, type WorkflowSource } from './bundle';
import type { RolloutMetrics } from './metrics';

/** The rollouts' metrics sink where nothing collects them (a workflow calling an unregistered sink logs an error). */
export const NO_METRICS_SINKS: InjectedSinks<RolloutMetricsSinks> = {
  canaryMetrics: {
    rollout: { fn: () => undefined },
    decision: { fn: () => undefined },
    breachToZero: { fn: () => undefined },
  },
};

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
  /** Collects the rollouts' and the activities' metrics (the worker process's /metrics); none by default. */
  metrics?: { collector: RolloutMetrics; providers?: ProviderSource };
  /** Anything else Worker.create takes (tests: interceptors, sinks, concurrency limits, ...). */
  extra?: Omit<
    WorkerOptions,
    'connection' | 'namespace' | 'taskQueue' | 'activities' | 'workflowsPath' | 'workflowBundle'
  >;
}

export async function createRolloutWorker(opts: RolloutWorkerOptions): Promise<Worker> {
  const metrics = opts.metrics;
  const interceptors = opts.extra?.interceptors;
  return Worker.create({
    ...opts.extra,
    sinks: { ...opts.extra?.sinks, ...(metrics ? metrics.collector.sinks() : NO_METRICS_SINKS) },
    ...(metrics
      ? {
          interceptors: {
            ...interceptors,
            activity: [
              ...(interceptors?.activity ?? []),
              metrics.collector.activityInterceptor(metrics.providers),
            ],
          },
        }
      : {}),
    ...(opts.workflows ?? (await workflowSource())),
    connection: opts.connection,
    namespace: opts.namespace ?? 'default',
    taskQueue: opts.taskQueue ?? DEFAULT_TASK_QUEUE,
    activities: opts.activities,
    shutdownGraceTime: opts.shutdownGraceTime ?? opts.extra?.shutdownGraceTime ?? '30s',
    ...(opts.identity ? { identity: opts.identity } : {}),
  });
}
