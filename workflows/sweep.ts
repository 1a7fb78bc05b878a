// The sweeper: finds routing a rollout set up whose workflow no longer runs (terminated from the Web UI, timed out,
// or its history lost) and undoes it the way a rollback would: traffic back to stable (stable's capacity first), the
// canary scaled down, the routing setup removed. It alerts naming the workflow, and leaves its own record on the
// canary and in this workflow's history. Run by `canary sweep` and, when the worker is told to, by a Temporal
// Schedule. Every step is idempotent, so two sweeps racing (two workers, a retried run) do no harm.
import { log, proxyActivities, workflowInfo } from '@temporalio/workflow';
import type { RolloutActivities } from '../activities/rollout-activities';
import type { SweepActivities } from '../activities/sweep';
import { buildRolloutAlert, type RolloutAlert } from './alerts/events';

import {
  SWEEP_WORKFLOW,
  type StrandedRollout,
  type SweepInput,
  type SweepResult,
  type SweptRollout,
} from './sweep-model';

export { SWEEP_WORKFLOW, type StrandedRollout, type SweepInput, type SweepResult, type SweptRollout };

const find = proxyActivities<SweepActivities>({
  startToCloseTimeout: '2 minutes',
  retry: { initialInterval: '1 second', maximumAttempts: 3 },
});
// The same steps and retries as a rollback's persistent batches: a step that keeps failing is reported, and the next
// sweep tries again (the canary still shows traffic or replicas, so it is found again).
const steps = proxyActivities<RolloutActivities>({
  startToCloseTimeout: '1 minute',
  retry: {
    initialInterval: '1 second',
    backoffCoefficient: 2,
    maximumInterval: '10 seconds',
    maximumAttempts: 4,
  },
});
const record = proxyActivities<SweepActivities>({
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '1 second', maximumAttempts: 5 },
});
const alerts = proxyActivities<RolloutActivities>({
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumAttempts: 5 },
});

export async function canarySweep(input: SweepInput = {}): Promise<SweepResult> {
  const dryRun = input.dryRun === true;
  const found = await find.findStrandedRollouts({ namespaces: input.namespaces });
  const swept: SweptRollout[] = [];
  for (const r of found.stranded) {
    if (dryRun) {
      swept.push({ ...r, steps: [] });
      continue;
    }
    swept.push(await sweepOne(r, input.requestedBy ?? 'sweeper'));
  }
  return { scanned: found.scanned, swept, dryRun };
}

async function sweepOne(r: StrandedRollout, by: string): Promise<SweptRollout> {
  const { target } = r;
  const done: string[] = [];
  const at = new Date().toISOString();
  const why = `its workflow ${r.workflowId} is ${r.workflowStatus === 'NOT_FOUND' ? 'gone (history lost)' : r.workflowStatus.toLowerCase().replace('_', ' ')}`;
  try {
    // Traffic first, as a rollback does: stable's capacity is checked in the same activity, then the weight goes to 0.
    await steps.setCanaryWeight({ target, weight: 0, mode: 'rollback', ensureCapacity: true });
    done.push(`traffic back to stable (canary ${r.weight ?? '?'}% → 0%)`);
    await steps.scaleDownCanary({ target });
    done.push(`canary ${r.namespace}/${r.canary} scaled down (was ${r.canaryReplicas})`);
    await steps.teardownRouting({ target });
    done.push('routing setup removed');
  } catch (err) {
    const error =
      err instanceof Error ? (err.cause instanceof Error ? err.cause.message : err.message) : String(err);
    log.warn('sweep step failed', { workflowId: r.workflowId, error });
    await alert(
      r,
      `The sweeper could not return ${label(r)} to stable (${why}): ${error}. It tries again at the next sweep.`,
      why,
      by,
    );
    return { ...r, steps: done, error };
  }
  const message = `${label(r)}: traffic sent back to stable by the sweeper, because ${why}. Done: ${done.join('; ')}.`;
  await alert(r, message, why, by);
  await record.recordSweep({
    namespace: r.namespace,
    canary: r.canary,
    record: {
      at,
      workflowId: r.workflowId,
      workflowStatus: r.workflowStatus,
      by,
      sweep: workflowInfo().workflowId,
      steps: done,
    },
  });
  return { ...r, steps: done };
}

const label = (r: StrandedRollout) => `${r.target.namespace}/${r.target.app}`;

/** A `rolled_back` alert naming the workflow: the rollout is over, so sinks resolve what it left open. Best effort. */
async function alert(r: StrandedRollout, message: string, reason: string, by: string): Promise<void> {
  const info = workflowInfo();
  const event: RolloutAlert = {
    ...buildRolloutAlert({
      kind: 'rolled_back',
      severity: 'critical',
      target: { namespace: r.target.namespace, app: r.target.app },
      version: r.version ?? 'unknown',
      workflowId: r.workflowId,
      firstRunId: info.runId,
      seq: 0,
      message,
      reason: `swept: ${reason}`,
      by,
      at: new Date().toISOString(),
    }),
    // One id per sweep of this rollout: a retried delivery is deduplicated, a later sweep is a new event.
    id: `${r.workflowId}/sweep/${info.workflowId}/${info.runId}`,
  };
  try {
    const sinks = await alerts.alertSinks();
    await Promise.all(sinks.map((sink) => alerts.deliverAlert(sink, event)));
  } catch (err) {
    log.warn('sweep alert not delivered', { workflowId: r.workflowId, error: String(err) });
  }
}
