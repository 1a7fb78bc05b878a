// The release workflow's activities (workflows/release.ts): what a workflow cannot send itself. Approving a member's
// promotion gate is an update, and only clients send updates.
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { approveUpdate } from '../workflows/api';

export function createReleaseActivities() {
  return {
    /**
     * Approves the promotion gate of a member's rollout as the release. An already approved or passed gate is not an
     * error (a retried attempt after the first succeeded): the rollout says so and the release goes on.
     */
    async approveReleaseMember(input: {
      workflowId: string;
      identity: string;
      release: string;
    }): Promise<void> {
      const handle = Context.current().client.workflow.getHandle(input.workflowId);
      try {
        await handle.executeUpdate(approveUpdate, {
          args: [
            {
              identity: input.identity,
              comment: `every member of release ${input.release} passed its last stage`,
            },
          ],
        });
      } catch (err) {
        const message =
          err instanceof Error ? (err.cause instanceof Error ? err.cause.message : err.message) : String(err);
        if (/no approval gate is waiting|is already approved/.test(message)) return;
        throw ApplicationFailure.retryable(
          `cannot approve ${input.workflowId}: ${message}`,
          'ReleaseApproveFailed',
        );
      }
    },
  };
}

export type ReleaseActivities = ReturnType<typeof createReleaseActivities>;
