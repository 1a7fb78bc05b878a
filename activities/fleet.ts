// The fleet workflow's activity (workflows/fleet.ts): the rollouts running in a scope, from Temporal visibility, so a
// new freeze reaches the rollouts already under way (those that start later ask the fleet workflow themselves).
import { Context } from '@temporalio/activity';
import { targetOfWorkflowId } from '../workflows/api';

/** More than any one scope runs; a list this long is cut (the rest learn of the freeze when they next advance). */
const MAX_LISTED = 10_000;

export interface FleetActivities {
  /** Ids of the running rollouts in `namespace` (every namespace without one). */
  listRunningRollouts(input: { namespace?: string }): Promise<string[]>;
}

export function createFleetActivities(): FleetActivities {
  return {
    async listRunningRollouts(input) {
      const client = Context.current().client;
      const ids: string[] = [];
      const query = `WorkflowType = 'canaryRollout' AND ExecutionStatus = 'Running'`;
      for await (const w of client.workflow.list({ query })) {
        const namespace = targetOfWorkflowId(w.workflowId)?.namespace;
        if (input.namespace === undefined || namespace === input.namespace) ids.push(w.workflowId);
        if (ids.length >= MAX_LISTED) break;
      }
      return ids;
    },
  };
}
