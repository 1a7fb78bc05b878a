// `canary promote`: skips the remaining stages and promotes now (or, with --end-soak, ends a promotion's soak).
import type { Command } from 'commander';
import { resolveRolloutId } from '../ids';
import type { CliContext } from './context';
import { json, outputOption, type OutputFormat } from './options';

export function registerPromote(program: Command, ctx: CliContext): void {
  program
    .command('promote')
    .description(
      "skip the remaining stages and promote now (with --end-soak: finish a promoted rollout's soak now)",
    )
    .argument('<id>', 'workflow id or namespace/app')
    .option('--comment <text>', 'recorded with the promotion')
    .option(
      '--end-soak',
      'during the soak after a promotion (the previous version still runs): stable takes the new version now',
    )
    .addOption(outputOption())
    .action(async (ref: string, opts: { comment?: string; endSoak?: boolean; output: OutputFormat }) => {
      resolveRolloutId(ref); // a malformed reference is refused before connecting
      const who = { name: ctx.identity().name };
      const signer = ctx.signer();
      const c = await ctx.connect();
      const workflowId = await c.locate(ref);
      const ack = await c.promote(workflowId, {
        identity: who.name,
        ...(opts.comment ? { comment: opts.comment } : {}),
        ...(opts.endSoak ? { endSoak: true } : {}),
        ...(signer ? { signer } : {}),
      });
      if (ack.by) who.name = ack.by;
      ctx.out(
        opts.output === 'json'
          ? json({ workflowId, ...ack, by: who.name, ...(opts.endSoak ? { endSoak: true } : {}) })
          : opts.endSoak
            ? `The soak of ${workflowId} ends now (by ${who.name}): stable takes the new version and the canary goes. Follow: ${ctx.self()} status ${workflowId} --watch`
            : `Promotion of ${workflowId} accepted from stage ${ack.fromStage} (by ${who.name}). Follow: ${ctx.self()} status ${workflowId} --watch`,
      );
    });
}
