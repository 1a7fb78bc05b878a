// A finished rollout's outcome, from its workflow's result or from the typed failure it ends with.
import { ApplicationFailure, WorkflowFailedError } from '@temporalio/client';
import { NOT_STARTED_FAILURE, ROLLED_BACK_FAILURE } from '../workflows/api';
import type { RolloutResult, RolloutStatus } from '../workflows/types';

/**
 * The result of a finished rollout workflow. A rolled-back rollout ends as a failed workflow (so the Temporal
 * Web UI shows it apart from a promoted one) whose typed failure carries the result: it is returned like a
 * promotion's. Any other failure is thrown as it came.
 */
export async function rolloutResult(handle: { result(): Promise<unknown> }): Promise<RolloutResult> {
  try {
    return (await handle.result()) as RolloutResult;
  } catch (err) {
    const outcome = outcomeResult(err);
    if (outcome) return outcome;
    throw err;
  }
}

/**
 * The result a rollout's outcome failure carries (rolled back, or not started by its preflight), undefined for any
 * other error.
 */
export function outcomeResult(err: unknown): RolloutResult | undefined {
  if (!(err instanceof WorkflowFailedError)) return undefined;
  const cause = err.cause;
  if (!(cause instanceof ApplicationFailure)) return undefined;
  const details = cause.details?.[0] as RolloutResult | undefined;
  if (cause.type === ROLLED_BACK_FAILURE) return details?.outcome === 'rolled_back' ? details : undefined;
  if (cause.type === NOT_STARTED_FAILURE) return details?.outcome === 'not_started' ? details : undefined;
  return undefined;
}

/** The result a rolled-back rollout's failure carries, undefined for any other error (a not-started one too). */
export function rolledBackResult(err: unknown): RolloutResult | undefined {
  const result = outcomeResult(err);
  return result?.outcome === 'rolled_back' ? result : undefined;
}

/** A status for a completed workflow whose query could not be answered (no worker left to replay it). */
export function statusFromResult(workflowId: string, result: RolloutResult): RolloutStatus {
  return {
    workflowId,
    app: result.app,
    namespace: result.namespace,
    version: result.version,
    requestedBy: '',
    phase: result.outcome,
    stage: 0,
    stageCount: 0,
    weight: result.finalWeight,
    stageTimeLeftMs: 0,
    planTimeLeftMs: 0,
    analyses: [],
    approvals: result.approvals,
    ...(result.reason ? { rollbackReason: result.reason } : {}),
    ...(result.ending ? { ending: result.ending } : {}),
    ...(result.resolved ? { resolved: result.resolved } : {}),
    ...(result.outcome === 'not_started'
      ? {
          preflight: {
            state: 'failed' as const,
            findings: result.findings ?? [],
            ...(result.cause ? { cause: result.cause } : {}),
          },
        }
      : {}),
    stages: [],
    run: 0,
  };
}
