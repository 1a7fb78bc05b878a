// Worker Versioning (Temporal Worker Deployments): a versioned worker pins every rollout to the build that started
// it, so a later build never replays a rollout the earlier one began (no patched() needed for rollouts in flight).
// Which build takes new rollouts is the deployment's current version, set by whoever deploys (see the README).
import type { NativeConnection, WorkerDeploymentOptions } from '@temporalio/worker';
import type { WorkerVersioning } from './config';

/** The Worker option: PINNED for every workflow this worker runs (canaryRollout is the only one). */
export function deploymentOptions(versioning: WorkerVersioning): WorkerDeploymentOptions {
  return {
    useWorkerVersioning: true,
    version: { deploymentName: versioning.deploymentName, buildId: versioning.buildId },
    defaultVersioningBehavior: 'PINNED',
  };
}

/** What the deployment routes new rollouts to, as far as it concerns this build. */
export type Routing =
  | { kind: 'current' }
  | { kind: 'ramping'; percentage: number; current?: string }
  | { kind: 'other'; current: string }
  | { kind: 'none' };

/** Reads the deployment's routing (a deployment that does not exist yet routes nothing). */
export async function readRouting(
  connection: NativeConnection,
  namespace: string,
  versioning: WorkerVersioning,
): Promise<Routing> {
  let routing;
  try {
    const res = await connection.workflowService.describeWorkerDeployment({
      namespace,
      deploymentName: versioning.deploymentName,
    });
    routing = res.workerDeploymentInfo?.routingConfig ?? undefined;
  } catch (err) {
    // NOT_FOUND: no worker of this deployment has polled yet, so nothing is current.
    if ((err as { code?: number }).code === 5) return { kind: 'none' };
    throw err;
  }
  const current = routing?.currentDeploymentVersion?.buildId || undefined;
  const ramping = routing?.rampingDeploymentVersion?.buildId || undefined;
  if (current === versioning.buildId) return { kind: 'current' };
  if (ramping === versioning.buildId)
    return { kind: 'ramping', percentage: routing?.rampingVersionPercentage ?? 0, current };
  return current === undefined ? { kind: 'none' } : { kind: 'other', current };
}

/**
 * One line for the worker's log when this build does not take every new rollout (undefined when it does): starting
 * a build that is not current yet is the normal first step of an upgrade; a deployment with no current version at
 * all leaves new rollouts waiting.
 */
export function routingNotice(
  routing: Routing,
  versioning: WorkerVersioning,
): { warning: boolean; message: string } | undefined {
  const { deploymentName, buildId } = versioning;
  const makeCurrent = `temporal worker deployment set-current-version --deployment-name ${deploymentName} --build-id ${buildId}`;
  switch (routing.kind) {
    case 'current':
      return undefined;
    case 'ramping':
      return {
        warning: false,
        message: `build ${buildId} is ramping in deployment ${deploymentName} (${routing.percentage}% of new rollouts); all of them once it is current: ${makeCurrent}`,
      };
    case 'other':
      return {
        warning: false,
        message: `build ${buildId} is not current in deployment ${deploymentName}: new rollouts go to build ${routing.current}, this worker runs the rollouts pinned to ${buildId}; to send new rollouts here: ${makeCurrent}`,
      };
    case 'none':
      return {
        warning: true,
        message: `deployment ${deploymentName} has no current version: new rollouts wait (or go to unversioned workers of the task queue) until one is set; for this build: ${makeCurrent}`,
      };
  }
}
