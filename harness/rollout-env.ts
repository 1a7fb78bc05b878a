// A rollout test bench on real components: the time-skipping Temporal test server, the real local stack
// (weighted proxy + demo services) with live traffic, and a worker wired with the real `local` providers.
import { rolloutResult } from '../client/index';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  WorkflowUpdateFailedError,
  type WorkflowHandle,
  type WorkflowHandleWithFirstExecutionRunId,
} from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Runtime, Worker } from '@temporalio/worker';
import { sourceBundle } from '../worker/bundle';
import { NO_METRICS_SINKS } from '../worker/worker';

// Worker state chatter drowns test output; warnings and errors still show.
try {
  Runtime.install({ logger: new RolloutLogger('WARN') });
} catch {
  // Already installed by another harness in this process.
}
import { createFleetActivities } from '../activities/fleet';
import { createReleaseActivities } from '../activities/release';
import { createActivities } from '../activities/rollout-activities';
import { identityConfigFromEnv } from '../activities/identity';
import { providersFromEnv, type ProviderRegistry, type ProviderSource } from '../activities/factory';
import { startLocalStack, type Fault, type LocalStack } from '../demo/stack';
import { startTrafficGenerator } from '../demo/traffic-generator';
import type { AlertEvent } from '../activities/types';
import { rolloutWorkflowId, type RolloutInput } from '../workflows/api';
import type { PlanSpec } from '../workflows/plan';
import type { RolloutResult } from '../workflows/types';
import type { canaryRollout } from '../workflows';
import { readAlerts } from './alerts';
import { createTimeSkippingEnv } from './time-skipping';
import { RolloutLogger } from '../worker/logger';

export const STABLE_VERSION = 'v1';

let bundlePromise: Promise<{ code: string }> | undefined;
/** The workflow bundle from the sources: built once for their content and kept on disk (worker/bundle.ts). */
export function workflowBundle(): Promise<{ code: string }> {
  bundlePromise ??= sourceBundle().then((code) => ({ code }));
  return bundlePromise;
}

export interface LiveState {
  weight: number;
  stable: { version: string; url: string };
  canary: { version: string; url: string } | null;
}

export class RolloutBench {
  private constructor(
    readonly env: TestWorkflowEnvironment,
    readonly stack: LocalStack,
    readonly alertLog: string,
    readonly taskQueue: string,
    private worker: Worker,
    private workerRun: Promise<void>,
    private readonly stopTraffic: () => unknown,
    private readonly activities: ReturnType<typeof createActivities>,
    private readonly workerOptions: { maxCachedWorkflows?: number } = {},
  ) {}

  /**
   * `providers` may wrap the real local providers (a router that fails, a workload that misses its deadline)
   * to test the workflow's failure paths.
   */
  static async start(
    opts: {
      faults?: Record<string, Fault>;
      providers?: (real: ProviderRegistry) => ProviderSource;
      /** More worker environment (alert sinks: CANARY_ALERT_*, CANARY_ALERTMANAGER_*, CANARY_PAGERDUTY_*). */
      env?: Record<string, string>;
      /**
       * false: no sticky workflow cache (every task replays the history), so another worker can take over at
       * once after `restartWorker` (the test server keeps sending tasks to a stopped worker's sticky queue).
       */
      stickyCache?: boolean;
    } = {},
  ): Promise<RolloutBench> {
    const env = await createTimeSkippingEnv();
    const stack = await startLocalStack({ stableVersion: STABLE_VERSION, faults: opts.faults });
    // Live traffic, so every analysis window holds real requests.
    const traffic = startTrafficGenerator({ url: stack.proxyUrl, rps: 150 });
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'canary-bench-'));
    const alertLog = path.join(dir, 'alerts.jsonl');
    const real = providersFromEnv({
      ...opts.env,
      CANARY_LOCAL_CONTROL_URL: stack.controlUrl,
      CANARY_ALERT_LOG: alertLog,
    });
    const activities = createActivities(
      opts.providers ? opts.providers(real) : real,
      identityConfigFromEnv(opts.env ?? {}),
    );
    const taskQueue = `rollouts-${Math.random().toString(36).slice(2, 8)}`;
    const cache = opts.stickyCache === false ? { maxCachedWorkflows: 0 } : {};
    const worker = await Worker.create({
      connection: env.nativeConnection,
      taskQueue,
      workflowBundle: await workflowBundle(),
      sinks: NO_METRICS_SINKS,
      activities: { ...activities, ...createFleetActivities(), ...createReleaseActivities() },
      ...cache,
    });
    const workerRun = worker.run();
    return new RolloutBench(
      env,
      stack,
      alertLog,
      taskQueue,
      worker,
      workerRun,
      () => traffic.stop(),
      activities,
      cache,
    );
  }

  /**
   * A worker crash and restart: this worker stops, and another starts on the same task queue (one process can
   * hold one worker per task queue); the rollout carries on in the new worker, replaying its history.
   */
  async restartWorker(): Promise<void> {
    this.worker.shutdown();
    await this.workerRun;
    this.worker = await Worker.create({
      connection: this.env.nativeConnection,
      taskQueue: this.taskQueue,
      workflowBundle: await workflowBundle(),
      sinks: NO_METRICS_SINKS,
      activities: { ...this.activities, ...createFleetActivities(), ...createReleaseActivities() },
      ...this.workerOptions,
    });
    this.workerRun = this.worker.run();
  }

  async startRollout(
    app: string,
    version: string,
    plan: PlanSpec,
    options?: RolloutInput['options'],
    targetSpec: Omit<RolloutInput['target'], 'app' | 'namespace'> = {},
  ): Promise<WorkflowHandleWithFirstExecutionRunId<typeof canaryRollout>> {
    const target = { ...targetSpec, app, namespace: 'test' };
    const input: RolloutInput = {
      target,
      version,
      plan,
      requestedBy: 'jest',
      ...(options ? { options } : {}),
    };
    return this.env.client.workflow.start<typeof canaryRollout>('canaryRollout', {
      workflowId: rolloutWorkflowId(target),
      taskQueue: this.taskQueue,
      args: [input],
    });
  }

  /** Alert events of one rollout, in order; `offsetMs` is workflow time since its rollout_started. */
  alerts(workflowId: string): Array<AlertEvent & { offsetMs: number }> {
    return readAlerts(this.alertLog, workflowId);
  }

  async live(): Promise<LiveState> {
    const res = await fetch(`${this.stack.controlUrl}/state`);
    return (await res.json()) as LiveState;
  }

  /** Puts the stack back to stable v1 with no canary, between tests. */
  async reset(): Promise<void> {
    const put = (p: string, body: unknown, method = 'PUT') =>
      fetch(`${this.stack.controlUrl}${p}`, {
        method,
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
    await put('/weight', { weight: 0 });
    await fetch(`${this.stack.controlUrl}/canary`, { method: 'DELETE' });
    await put('/promote', { version: STABLE_VERSION }, 'POST');
  }

  async result(handle: WorkflowHandle<typeof canaryRollout>): Promise<RolloutResult> {
    return rolloutResult(handle);
  }

  async close(): Promise<void> {
    this.worker.shutdown();
    await this.workerRun;
    await this.stopTraffic();
    await this.stack.close();
    await this.env.teardown();
  }
}

export const HOUR = 3_600_000;
export const MINUTE = 60_000;

/**
 * The reason an Update was rejected with (its validator's message), as the caller sees it; fails when the Update
 * was accepted or failed otherwise.
 */
export async function rejection(update: Promise<unknown>): Promise<string> {
  const err = await update.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(err instanceof WorkflowUpdateFailedError)) {
    throw new Error(
      `expected the update to be rejected, but it ${err === undefined ? 'was accepted' : `failed with ${String(err)}`}`,
    );
  }
  return String(err.cause?.message);
}
