// `canary status`: a rollout's state, once or followed until it ends (--watch).
import type { Command } from 'commander';
import type { RolloutStatus } from '../../workflows/types';
import { resolveRolloutId } from '../ids';
import { progressLines, renderStatus } from '../render';
import type { CliContext } from './context';
import { json, outputOption, parseInterval, type OutputFormat } from './options';

export function registerStatus(program: Command, ctx: CliContext): void {
  program
    .command('status')
    .description('show a rollout (ID is the workflow id or namespace/app)')
    .argument('<id>', 'workflow id or namespace/app')
    .option('--watch', 'keep showing the status until the rollout finishes')
    .option('--interval <duration>', 'refresh interval with --watch', '2s')
    .addOption(outputOption())
    .action(async (ref: string, opts: { watch?: boolean; interval: string; output: OutputFormat }) => {
      resolveRolloutId(ref); // a malformed reference is refused before connecting
      const pollMs = parseInterval(opts.interval);
      const c = await ctx.connect();
      const workflowId = await c.locate(ref);
      if (!opts.watch) {
        const status = await c.status(workflowId);
        ctx.out(
          opts.output === 'json'
            ? json(status)
            : renderStatus(status, ctx.now(), { color: ctx.color, cliName: ctx.self() }),
        );
        return;
      }
      let prev: RolloutStatus | undefined;
      await c.waitForOutcome(workflowId, {
        pollMs,
        onStatus: (status) => {
          if (opts.output === 'json') {
            // One JSON document per line, only when something changed.
            if (JSON.stringify(prev) !== JSON.stringify(status)) ctx.out(JSON.stringify(status));
          } else if (ctx.stdout.isTTY) {
            ctx.stdout.write(
              `\u001b[2J\u001b[H${renderStatus(status, ctx.now(), { color: ctx.color, cliName: ctx.self() })}\n`,
            );
          } else if (!prev) {
            ctx.out(renderStatus(status, ctx.now(), { cliName: ctx.self() }));
          } else {
            for (const line of progressLines(prev, status, ctx.now(), { cliName: ctx.self() })) ctx.out(line);
          }
          prev = status;
        },
      });
    });
}
