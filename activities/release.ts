// The release workflow's activities (workflows/release.ts): what a workflow cannot do itself. Approving a member's
// promotion gate is an update, and only clients send updates; whether a cluster's worker still polls its task queue
// is a question for the Temporal frontend.
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { WorkflowNotFoundError } from '@temporalio/client';
import { approveUpdate } from '../workflows/api';
import { clusterWorkersSignal } from '../workflows/release-api';
import type { ClusterWorkersReport } from '../workflows/release-model';

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

    /**
     * Runs as long as the release does: every `everyMs` it asks the frontend who polls each cluster's task queue, and
     * signals the release when a queue's workers went (no poll for `goneAfterMs`) or came back. One activity for the
     * whole release, heartbeating, so a two-day release records a few events per change, not one per look. After a
     * retry (this worker died) it says every queue's state once more; the release acts only on changes.
     */
    async watchClusterWorkers(input: {
      releaseWorkflowId: string;
      taskQueues: string[];
      everyMs: number;
      goneAfterMs: number;
    }): Promise<void> {
      const ctx = Context.current();
      const { client } = ctx;
      const namespace = ctx.info.namespace;
      const said = new Map<string, boolean>();
      const release = client.workflow.getHandle(input.releaseWorkflowId);
      for (;;) {
        // The release cancels this watch when it ends, but a cancel reaches an activity only with a heartbeat's
        // answer, which the SDK throttles: asking is quicker, and frees a worker's shutdown from waiting on it.
        try {
          if ((await release.describe()).status.name !== 'RUNNING') return;
        } catch (err) {
          if (err instanceof WorkflowNotFoundError) return;
          ctx.log.warn('cannot describe the release', { error: String(err) });
        }
        const now = Date.now();
        const changed: ClusterWorkersReport['queues'] = [];
        for (const taskQueue of input.taskQueues) {
          let newest: number | undefined;
          try {
            newest = await lastPoll(client, namespace, taskQueue);
          } catch (err) {
            // The frontend did not answer: nothing is known about this queue this time.
            ctx.log.warn('cannot read the pollers of a cluster queue', { taskQueue, error: String(err) });
            continue;
          }
          const serving = newest !== undefined && now - newest < input.goneAfterMs;
          if (said.get(taskQueue) === serving) continue;
          changed.push({
            taskQueue,
            serving,
            ...(newest !== undefined ? { lastSeen: new Date(newest).toISOString() } : {}),
          });
        }
        if (changed.length > 0) {
          try {
            await release.signal(clusterWorkersSignal, { at: new Date(now).toISOString(), queues: changed });
          } catch (err) {
            if (err instanceof WorkflowNotFoundError) return; // the release has ended
            throw err;
          }
          for (const q of changed) said.set(q.taskQueue, q.serving);
        }
        ctx.heartbeat();
        await ctx.sleep(input.everyMs);
      }
    },
  };
}

/** When a worker last polled the queue for workflow tasks (ms), or undefined when the server lists none. */
async function lastPoll(
  client: Context['client'],
  namespace: string,
  taskQueue: string,
): Promise<number | undefined> {
  const r = await client.workflowService.describeTaskQueue({ namespace, taskQueue: { name: taskQueue } });
  let newest: number | undefined;
  for (const p of r.pollers ?? []) {
    const t = p.lastAccessTime;
    if (!t?.seconds) continue;
    const ms = Number(t.seconds) * 1000 + Math.floor((t.nanos ?? 0) / 1e6);
    newest = Math.max(newest ?? 0, ms);
  }
  return newest;
}

export type ReleaseActivities = ReturnType<typeof createReleaseActivities>;
