// `canary pause`: stops a rollout's hold timers; traffic stays where it is.
import type { Command } from 'commander';
import { resolveRolloutId } from '../ids';
import type { CliContext } from './context';
import { json, outputOption, type OutputFormat } from './options';

export function registerPause(program: Command, ctx: CliContext): void {
  program
    .command('pause')
    .description('stop the hold timers (traffic stays where it is)')
    .argument('<id>', 'workflow id or namespace/app')
    .option('--reason <text>', 'why (alerted)')
    .addOption(outputOption())
    .action(async (ref: string, opts: { reason?: string; output: OutputFormat }) => {
      resolveRolloutId(ref); // a malformed reference is refused before connecting
      const who = ctx.identity();
      const signer = ctx.signer();
      const c = await ctx.connect();
      const workflowId = await c.locate(ref);
      const ack = await c.pause(workflowId, {
        identity: who.name,
        ...(opts.reason ? { reason: opts.reason } : {}),
        ...(signer ? { signer } : {}),
      });
      ctx.out(
        opts.output === 'json'
          ? json({ workflowId, paused: ack, ...(opts.reason ? { reason: opts.reason } : {}) })
          : `Paused ${workflowId} at stage ${ack.stage} (by ${ack.by}); the hold timer is stopped. Resume: ${ctx.self()} resume ${workflowId}`,
      );
    });
}
