// `canary abort`: rolls a rollout back now.
import type { Command } from 'commander';
import { resolveRolloutId } from '../ids';
import type { CliContext } from './context';
import { json, outputOption, type OutputFormat } from './options';
import { UsageError } from './usage';

export function registerAbort(program: Command, ctx: CliContext): void {
  program
    .command('abort')
    .description('roll back now: traffic returns to stable and the canary is scaled down')
    .argument('<id>', 'workflow id or namespace/app')
    .requiredOption('--reason <text>', 'why (recorded and alerted)')
    .addOption(outputOption())
    .action(async (ref: string, opts: { reason: string; output: OutputFormat }) => {
      resolveRolloutId(ref); // a malformed reference is refused before connecting
      if (opts.reason.trim() === '') throw new UsageError('--reason must not be empty');
      const signer = ctx.signer();
      const who = { name: ctx.identity().name };
      const c = await ctx.connect();
      const workflowId = await c.locate(ref);
      const result = await c.abort(workflowId, {
        reason: opts.reason,
        identity: who.name,
        ...(signer ? { signer } : {}),
      });
      if (result.by) who.name = result.by;
      ctx.out(
        opts.output === 'json'
          ? json({ ...result, by: who.name, reason: opts.reason })
          : result.state === 'already_rolled_back'
            ? `${workflowId} is already rolled back${result.reason ? ` (${result.reason})` : ''}; nothing to abort`
            : result.state === 'already_rolling_back'
              ? `${workflowId} is already rolling back${result.reason ? ` (${result.reason})` : ''}` +
                (result.retrying
                  ? `, stuck: "${result.retrying.step}" keeps failing (${result.retrying.error}). An abort cannot help; ` +
                    `fix what the step needs, or once all traffic is on stable (moved by hand): ` +
                    (result.retrying.resolve ??
                      `${ctx.self()} resolve ${workflowId} --confirm-traffic-restored --reason "what was done"`)
                  : `. Follow: ${ctx.self()} status ${workflowId} --watch`)
              : result.state === 'unconfirmed'
                ? `Abort sent to ${workflowId} by ${who.name}, but no worker answered: the rollout rolls back as soon as a worker polls its task queue. Follow: ${ctx.self()} status ${workflowId} --watch`
                : `Abort requested for ${workflowId} by ${who.name}; it rolls back to stable. Follow: ${ctx.self()} status ${workflowId} --watch`,
      );
    });
}
