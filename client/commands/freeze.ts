// `canary freeze`: holds every rollout in a scope (one namespace, or every one) at its current stage, like a closed
// deployment window, until `canary unfreeze` or `--until`. Durable: the scope's fleet workflow holds it.
import type { Command } from 'commander';
import { describeFreeze, fleetWorkflowId } from '../../workflows/fleet-model';
import { fleetScope, freeze, freezeUntil } from '../fleet';
import type { CliContext } from './context';
import { json, outputOption, type OutputFormat } from './options';
import { UsageError } from './usage';

/** How a command names a scope: `--namespace N`, or nothing for every namespace. */
export function scopeFlag(scope: string): string {
  return scope === '*' ? '' : ` --namespace ${scope}`;
}

export function registerFreeze(program: Command, ctx: CliContext): void {
  program
    .command('freeze')
    .description(
      'hold every rollout in a namespace (or every namespace) at its current stage until unfrozen; ' +
        'analysis goes on and trouble still rolls back',
    )
    .requiredOption('--reason <text>', 'why (shown in status, the Web UI and alerts)')
    .option('--until <time>', 'lift it by itself at this instant (ISO-8601) or after this long (2h)')
    .option('--namespace <name>', 'only this namespace (default: every namespace)')
    .addOption(outputOption())
    .action(async (opts: { reason: string; until?: string; namespace?: string; output: OutputFormat }) => {
      const scope = fleetScope(opts.namespace);
      if (!opts.reason.trim()) throw new UsageError('--reason must say why the rollouts are frozen');
      const until = opts.until !== undefined ? freezeUntil(opts.until, ctx.now()) : undefined;
      const who = ctx.identity();
      const c = await ctx.connect();
      const workflowId = await freeze(c, scope, {
        identity: who.name,
        reason: opts.reason.trim(),
        ...(until ? { until } : {}),
      });
      const f = { scope, by: who.name, reason: opts.reason.trim(), ...(until ? { until } : {}) };
      ctx.out(
        opts.output === 'json'
          ? json({ workflowId, freeze: f })
          : `Frozen: ${describeFreeze({ ...f, since: ctx.now().toISOString() })}. Rollouts there start no canary, ` +
              `enter no stage and do not promote; analysis goes on and trouble still rolls back. ` +
              `Lift it: ${ctx.self()} unfreeze${scopeFlag(scope)}` +
              ` (held in workflow ${fleetWorkflowId(scope)})`,
      );
    });
}
