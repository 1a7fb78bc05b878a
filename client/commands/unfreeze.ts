// `canary unfreeze`: lifts a scope's freeze; its rollouts advance again.
import type { Command } from 'commander';
import { fleetScope, unfreeze } from '../fleet';
import type { CliContext } from './context';
import { scopeFlag } from './freeze';
import { json, outputOption, type OutputFormat } from './options';

export function registerUnfreeze(program: Command, ctx: CliContext): void {
  program
    .command('unfreeze')
    .description('lift the freeze of a namespace (or of every namespace): its rollouts advance again')
    .option(
      '--namespace <name>',
      'the namespace frozen with --namespace (default: the freeze of every namespace)',
    )
    .addOption(outputOption())
    .action(async (opts: { namespace?: string; output: OutputFormat }) => {
      const scope = fleetScope(opts.namespace);
      const who = ctx.identity();
      const c = await ctx.connect();
      const lifted = await unfreeze(c, scope, who.name);
      const where = scope === '*' ? 'every namespace' : `namespace ${scope}`;
      ctx.out(
        opts.output === 'json'
          ? json({ scope, lifted })
          : lifted
            ? `Unfrozen: ${where} (by ${who.name}); its rollouts advance again.`
            : `Nothing to lift: ${where} is not frozen (see: ${ctx.self()} fleet status${scopeFlag(scope)}).`,
      );
    });
}
