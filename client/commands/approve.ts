// `canary approve`: approves the gate a rollout waits at.
import type { Command } from 'commander';
import { resolveRolloutId } from '../ids';
import type { CliContext } from './context';
import { json, outputOption, parseStage, type OutputFormat } from './options';

export function registerApprove(program: Command, ctx: CliContext): void {
  program
    .command('approve')
    .description('approve the approval gate the rollout waits at')
    .argument('<id>', 'workflow id or namespace/app')
    .option('--stage <n>', 'the stage you approve (refused when another stage is waiting)')
    .option('--comment <text>', 'recorded with the approval')
    .addOption(outputOption())
    .action(async (ref: string, opts: { stage?: string; comment?: string; output: OutputFormat }) => {
      resolveRolloutId(ref); // a malformed reference is refused before connecting
      const stage = opts.stage !== undefined ? parseStage(opts.stage) : undefined;
      const who = ctx.identity();
      const signer = ctx.signer();
      const c = await ctx.connect();
      const workflowId = await c.locate(ref);
      const record = await c.approve(workflowId, {
        identity: who.name,
        ...(stage !== undefined ? { stage } : {}),
        ...(opts.comment ? { comment: opts.comment } : {}),
        ...(signer ? { signer } : {}),
      });
      ctx.out(
        opts.output === 'json'
          ? json(record)
          : record.promotion
            ? `Approved the promotion of ${workflowId} (after stage ${record.stage}) as ${record.by}`
            : `Approved stage ${record.stage} of ${workflowId} as ${record.by}`,
      );
    });
}
