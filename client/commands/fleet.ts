// `canary fleet status`: what holds a namespace's rollouts: its own freeze and the freeze of every namespace.
import type { Command } from 'commander';
import { describeFreeze } from '../../workflows/fleet-model';
import { fleetScope, fleetStatus } from '../fleet';
import type { CliContext } from './context';
import { json, outputOption, type OutputFormat } from './options';

export function registerFleet(program: Command, ctx: CliContext): void {
  const fleet = program.command('fleet').description('fleet controls: what holds the rollouts of a scope');
  fleet
    .command('status')
    .description('the freezes that hold a namespace (or, without one, every namespace)')
    .option('--namespace <name>', 'this namespace: its own freeze and the one of every namespace')
    .addOption(outputOption())
    .action(async (opts: { namespace?: string; output: OutputFormat }) => {
      const scope = fleetScope(opts.namespace);
      const c = await ctx.connect();
      const scopes = scope === '*' ? ['*'] : [scope, '*'];
      const found = [];
      for (const s of scopes) {
        const st = await fleetStatus(c, s);
        if (st?.freeze) found.push(st);
      }
      if (opts.output === 'json') {
        ctx.out(json({ scope, freezes: found.map((f) => ({ ...f.freeze, rollouts: f.members })) }));
        return;
      }
      if (found.length === 0) {
        ctx.out(
          scope === '*'
            ? 'Not frozen: no freeze holds every namespace (a namespace of its own: fleet status --namespace N).'
            : `Not frozen: namespace ${scope}.`,
        );
        return;
      }
      for (const f of found) {
        ctx.out(`${describeFreeze(f.freeze!)}, since ${f.freeze!.since}; rollouts told: ${f.members.length}`);
      }
    });
}
