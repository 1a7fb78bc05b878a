// `canary fleet status`: what holds a namespace's rollouts: its own freeze and the freeze of every namespace.
import type { Command } from 'commander';
import { describeFreeze, fleetWorkflowId } from '../../workflows/fleet-model';
import { fleetScope, fleetStatus, limit, maxConcurrent } from '../fleet';
import type { CliContext } from './context';
import { json, outputOption, type OutputFormat } from './options';
import { UsageError } from './usage';

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
      let slots: Awaited<ReturnType<typeof fleetStatus>>;
      for (const s of scopes) {
        const st = await fleetStatus(c, s);
        if (st?.freeze) found.push(st);
        if (s !== '*' && st && (st.limit || st.holders)) slots = st;
      }
      const queue = slots ? { holders: slots.holders ?? [], queue: slots.queue ?? [] } : undefined;
      if (opts.output === 'json') {
        ctx.out(
          json({
            scope,
            freezes: found.map((f) => ({ ...f.freeze, rollouts: f.members })),
            ...(slots?.limit ? { limit: slots.limit } : {}),
            ...(queue ?? {}),
          }),
        );
        return;
      }
      if (slots?.limit) {
        ctx.out(
          `maxConcurrent ${slots.limit.max} (set by ${slots.limit.by}, since ${slots.limit.since}); ` +
            `running: ${queue!.holders.length}, queued: ${queue!.queue.length}`,
        );
      } else if (queue) {
        ctx.out(`No limit; rollouts that took a slot before it was lifted: ${queue.holders.length}`);
      }
      queue?.queue.forEach((id, i) => ctx.out(`  queued ${i + 1}: ${id}`));
      if (found.length === 0 && slots) return;
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
  fleet
    .command('limit')
    .description(
      'at most K rollouts of a namespace under way at once; further ones wait, queued in order, before their canary',
    )
    .requiredOption('--namespace <name>', 'the namespace the limit holds')
    .option('--max-concurrent <K>', 'rollouts under way at once (1 or more); 0 or none lifts the limit')
    .option('--clear', 'lift the limit: queued rollouts go on')
    .addOption(outputOption())
    .action(
      async (opts: { namespace: string; maxConcurrent?: string; clear?: boolean; output: OutputFormat }) => {
        const scope = fleetScope(opts.namespace);
        if ((opts.maxConcurrent === undefined) === !opts.clear) {
          throw new UsageError('fleet limit takes one of --max-concurrent K and --clear');
        }
        const max = opts.clear ? undefined : maxConcurrent(opts.maxConcurrent!);
        const who = ctx.identity();
        const c = await ctx.connect();
        const changed = await limit(c, scope, { identity: who.name, ...(max !== undefined ? { max } : {}) });
        if (opts.output === 'json') {
          ctx.out(
            json({
              workflowId: fleetWorkflowId(scope),
              namespace: scope,
              maxConcurrent: max ?? null,
              changed,
            }),
          );
          return;
        }
        ctx.out(
          max !== undefined
            ? `Limit set: at most ${max} rollout${max === 1 ? '' : 's'} of namespace ${scope} under way at once; ` +
                `further ones wait in phase queued before their canary, in order. ` +
                `Lift it: ${ctx.self()} fleet limit --namespace ${scope} --clear (held in workflow ${fleetWorkflowId(scope)})`
            : changed
              ? `Limit lifted: namespace ${scope}; queued rollouts go on.`
              : `Nothing to lift: namespace ${scope} has no limit.`,
        );
      },
    );
}
