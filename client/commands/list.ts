// `canary list`: rollouts, newest first.
import { Option, type Command } from 'commander';
import type { Phase } from '../../workflows/types';
import { renderList } from '../render';
import type { CliContext } from './context';
import { json, outputOption, type OutputFormat } from './options';
import { UsageError } from './usage';

const PHASES: Phase[] = [
  'progressing',
  'queued',
  'waiting_approval',
  'paused',
  'rolling_back',
  'rolled_back',
  'promoted',
  'failed',
  'not_started',
];

export function registerList(program: Command, ctx: CliContext): void {
  program
    .command('list')
    .description('list rollouts, newest first')
    .option('--app <name>', 'only this application')
    .option('--namespace <namespace>', 'only this target namespace')
    .addOption(new Option('--phase <phase>', 'only rollouts in this phase').choices(PHASES))
    .option('--release <name>', 'only the members of this release')
    .option('--running', 'only running rollouts')
    .option('--limit <n>', 'at most this many rows', '50')
    .addOption(outputOption())
    .action(
      async (opts: {
        app?: string;
        namespace?: string;
        phase?: Phase;
        release?: string;
        running?: boolean;
        limit: string;
        output: OutputFormat;
      }) => {
        const limit = Number(opts.limit);
        if (!Number.isSafeInteger(limit) || limit < 1) {
          throw new UsageError(`--limit must be a positive integer, got "${opts.limit}"`);
        }
        const c = await ctx.connect();
        const rows = await c.list({
          ...(opts.app ? { app: opts.app } : {}),
          ...(opts.namespace ? { namespace: opts.namespace } : {}),
          ...(opts.phase ? { phase: opts.phase } : {}),
          ...(opts.release ? { release: opts.release } : {}),
          ...(opts.running ? { running: true } : {}),
          limit,
        });
        ctx.out(opts.output === 'json' ? json(rows) : renderList(rows, ctx.now()));
      },
    );
}
