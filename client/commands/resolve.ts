// `canary resolve`: ends a rollback stuck on a failing step, once a person has put all traffic on stable by hand.
import type { Command } from 'commander';
import { resolveRolloutId } from '../ids';
import type { CliContext } from './context';
import { json, outputOption, type OutputFormat } from './options';
import { UsageError } from './usage';

export function registerResolve(program: Command, ctx: CliContext): void {
  program
    .command('resolve')
    .description(
      'end a rollback stuck on a step that keeps failing, once you have put all traffic on stable by hand',
    )
    .argument('<id>', 'workflow id or namespace/app')
    .requiredOption('--reason <text>', 'what was done by hand (recorded and alerted)')
    .option(
      '--confirm-traffic-restored',
      'required: you have checked that all traffic is on stable (the rollout cannot, its step keeps failing)',
    )
    .addOption(outputOption())
    .action(
      async (
        ref: string,
        opts: { reason: string; confirmTrafficRestored?: boolean; output: OutputFormat },
      ) => {
        resolveRolloutId(ref); // a malformed reference is refused before connecting
        if (opts.reason.trim() === '') throw new UsageError('--reason must not be empty');
        if (!opts.confirmTrafficRestored) {
          throw new UsageError(
            'resolve needs --confirm-traffic-restored: check by hand that all traffic is on stable first; the rollout then ends as rolled back',
          );
        }
        const who = ctx.identity();
        const signer = ctx.signer();
        const c = await ctx.connect();
        const workflowId = await c.locate(ref);
        const record = await c.resolve(workflowId, {
          identity: who.name,
          reason: opts.reason,
          confirmTrafficRestored: true,
          ...(signer ? { signer } : {}),
        });
        ctx.out(
          opts.output === 'json'
            ? json({ workflowId, resolved: record })
            : `Resolved ${workflowId} by hand (by ${record.by}${record.step ? `; "${record.step}" kept failing` : ''}): it ends as rolled back. Follow: ${ctx.self()} status ${workflowId} --watch`,
        );
      },
    );
}
