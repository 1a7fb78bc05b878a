// `canary start --supersede`: a rollout of another version running on the target is rolled back first (traffic to
// stable, its canary at weight 0), and what was rolled back is printed; then the new version starts. Without it, a
// start while another version runs is refused (RolloutConflictError from RolloutClient.startPrepared), as before.
import { RolloutNotFoundError } from '../errors';
import type { Identity } from '../identity';
import type { PreparedStart } from '../prepare-start';
import type { RolloutClient } from '../rollout-client';
import type { CliContext } from './context';

/** Rolls back the target's running rollout when it runs another version; resolves once it has ended. */
export async function supersedeRunning(
  ctx: CliContext,
  c: RolloutClient,
  prepared: PreparedStart,
  who: Identity,
  say: (line: string) => void,
  pollMs: number,
): Promise<void> {
  const { workflowId } = prepared;
  const version = prepared.input.version;
  const current = await c.status(workflowId).catch((err: unknown) => {
    if (err instanceof RolloutNotFoundError) return undefined;
    throw err;
  });
  // Nothing runs, the same version runs (the start is idempotent), or a promotion hands over by itself.
  if (!current || current.version === version) return;
  if (['rolled_back', 'failed', 'not_started'].includes(current.phase)) return;
  if (current.phase === 'promoted' && !current.promoting) return;
  const ref = `${current.namespace}/${current.app}`;
  if (current.phase !== 'rolling_back' && !current.promoting) {
    const signer = ctx.signer();
    await c.abort(workflowId, {
      reason: `superseded by ${version} (${ctx.self()} start --supersede by ${who.name})`,
      identity: who.name,
      ...(signer ? { signer } : {}),
    });
  }
  say(
    `${ref}: superseding ${current.version} (stage ${current.stage}/${current.stageCount} at ${current.weight} %): rolling it back before ${version} starts`,
  );
  const ended = await c.waitForOutcome(workflowId, { pollMs });
  say(
    ended.phase === 'rolled_back'
      ? `Rolled back ${ended.version} on ${ref}: traffic is on stable${ended.stableVersion ? ` (${ended.stableVersion})` : ''}, its canary at weight 0${ended.rollbackReason ? ` (${ended.rollbackReason})` : ''}`
      : `${ended.version} on ${ref} ended ${ended.phase} before it could be rolled back`,
  );
}
