// `canary resume`: resumes a paused rollout.
import type { Command } from 'commander';
import { resolveRolloutId } from '../ids';
import type { CliContext } from './context';
import { json, outputOption, type OutputFormat } from './options';

export function registerResume(program: Command, ctx: CliContext): void {
  program
    .command('resume')
    .description('resume a paused rollout')
    .argument('<id>', 'workflow id or namespace/app')
    .addOption(outputOption())
    .action(async (ref: string, opts: { output: OutputFormat }) => {
      resolveRolloutId(ref); // a malformed reference is refused before connecting
      const who = ctx.identity();
      const signer = ctx.signer();
      const c = await ctx.connect();
      const workflowId = await c.locate(ref);
      const ack = await c.resume(workflowId, { identity: who.name, ...(signer ? { signer } : {}) });
      ctx.out(
        opts.output === 'json'
          ? json({ workflowId, resumed: ack })
          : `Resumed ${workflowId} at stage ${ack.stage} (by ${ack.by})`,
      );
    });
}
