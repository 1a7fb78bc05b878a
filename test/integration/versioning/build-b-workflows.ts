// Build B of the Worker Versioning test: the same rollout with one visible change, which the rollouts build A
// started could not replay (their histories lack the memo command this adds first). Only pinning keeps them on A.
import { upsertMemo } from '@temporalio/workflow';
import { canaryRollout as rollout } from '../../../workflows';

export async function canaryRollout(...args: Parameters<typeof rollout>): ReturnType<typeof rollout> {
  upsertMemo({ startedByBuild: 'B' });
  return rollout(...args);
}
