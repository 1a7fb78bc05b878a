// `canary report --since 30d`: how the rollouts of a range went (counts, rollback reasons by check, time per phase,
// breach → weight 0, approvals' waiting time), from Temporal visibility and each run's history and result.
import type { Client } from '@temporalio/client';
import { Option, type Command } from 'commander';
import { WORKFLOW_TYPE } from '../../workflows/api';
import { DurationError, parseDuration } from '../../workflows/duration';
import { BacktestInputError, parseTime } from '../backtest';
import { InfrastructureError } from '../errors';
import { rolloutResult } from '../outcome';
import { buildReport, renderReport, runFromHistory, type RunRecord } from '../rollout-report';
import type { CliContext } from './context';
import { json, outputOption, type OutputFormat } from './options';
import { UsageError } from './usage';

interface ReportOptions {
  since: string;
  until: string;
  app?: string;
  limit: string;
  output: OutputFormat;
}

export function registerReport(program: Command, ctx: CliContext): void {
  program
    .command('report')
    .description('how the rollouts of a range went: outcomes, rollback reasons, time per phase, approvals')
    .requiredOption(
      '--since <time>',
      'start of the range: a duration back from now (30d, 12h), RFC 3339, or -7d',
    )
    .option('--until <time>', 'end of the range: RFC 3339, now, or -1d', 'now')
    .option('--app <name>', 'only this application')
    .addOption(
      new Option('--limit <n>', 'read at most this many workflow runs (newest first)').default('1000'),
    )
    .addOption(outputOption())
    .action(async (opts: ReportOptions) => {
      const nowMs = ctx.now().getTime();
      const { fromMs, toMs } = reportRange(opts.since, opts.until, nowMs);
      const limit = Number(opts.limit);
      if (!Number.isSafeInteger(limit) || limit < 1) {
        throw new UsageError(`--limit must be a positive integer, got "${opts.limit}"`);
      }
      const c = await ctx.connect();
      const temporal = c.client;
      // Runs that started in the range: the report groups each rollout's runs (continued as new) by their first.
      const clauses = [
        `WorkflowType = '${WORKFLOW_TYPE}'`,
        `StartTime >= '${new Date(fromMs).toISOString()}'`,
        `StartTime < '${new Date(toMs).toISOString()}'`,
      ];
      if (opts.app) clauses.push(`CanaryApp = '${opts.app.replace(/'/g, "\\'")}'`);
      const infos = [];
      let truncated = 0;
      try {
        for await (const info of temporal.workflow.list({ query: clauses.join(' AND ') })) {
          if (infos.length >= limit) truncated++;
          else infos.push(info);
        }
      } catch (err) {
        throw new InfrastructureError(
          `cannot list rollouts in Temporal namespace "${c.namespace}": ${err instanceof Error ? err.message : String(err)}` +
            ' (are the search attributes CanaryApp, CanaryPhase, ... registered there?)',
          { cause: err },
        );
      }
      // Each run's result and history, a few at a time (histories are read in pages; a long rollout has several).
      const runs: RunRecord[] = [];
      for (let i = 0; i < infos.length; i += HISTORY_READS) {
        runs.push(
          ...(await Promise.all(
            infos.slice(i, i + HISTORY_READS).map((info) => readRun(info, nowMs, temporal)),
          )),
        );
      }
      const report = buildReport(runs, { fromMs, toMs }, truncated);
      ctx.out(opts.output === 'json' ? json(report) : renderReport(report));
    });
}

/** Histories read at once. */
const HISTORY_READS = 8;

/** One run as the report reads it: its result (when it ended as a rollout does) and its history. */
async function readRun(
  info: { workflowId: string; runId: string; status: { name: string }; startTime: Date; closeTime?: Date },
  nowMs: number,
  temporal: Client,
): Promise<RunRecord> {
  const handle = temporal.workflow.getHandle(info.workflowId, info.runId);
  const status = info.status.name;
  const result =
    status === 'COMPLETED' || status === 'FAILED'
      ? await rolloutResult(handle).catch(() => undefined)
      : undefined;
  const history = await handle.fetchHistory();
  return runFromHistory(
    history,
    {
      workflowId: info.workflowId,
      runId: info.runId,
      status,
      startMs: info.startTime.getTime(),
      ...(info.closeTime ? { closeMs: info.closeTime.getTime() } : {}),
      ...(result ? { result } : {}),
    },
    nowMs,
  );
}

/**
 * The report's range, refused (exit 2) when it cannot be read, is empty, or lies in the future. `--since` is a
 * duration back from now (`30d`) or any time `--until` takes.
 */
export function reportRange(since: string, until: string, nowMs: number): { fromMs: number; toMs: number } {
  const time = (option: string, text: string): number => {
    try {
      if (option === '--since' && /^\s*(\d|P)/i.test(text) && !/^\s*\d{4}-/.test(text)) {
        return nowMs - parseDuration(text.trim());
      }
      return parseTime(option, text, nowMs);
    } catch (e) {
      if (e instanceof DurationError) {
        throw new UsageError(
          `--since: "${since}" is not a duration or a time: ${e.reason}; use 30d, 12h, RFC 3339 (2025-03-01T12:00:00Z) or -7d`,
        );
      }
      if (e instanceof BacktestInputError) throw new UsageError(e.message);
      throw e;
    }
  };
  const fromMs = time('--since', since);
  const toMs = time('--until', until);
  if (fromMs > nowMs) {
    throw new UsageError(
      `--since: ${new Date(fromMs).toISOString()} is in the future; nothing has run there yet`,
    );
  }
  if (toMs > nowMs) {
    throw new UsageError(
      `--until: ${new Date(toMs).toISOString()} is in the future; use now or an earlier time`,
    );
  }
  if (toMs <= fromMs) {
    throw new UsageError(
      `the range ${new Date(fromMs).toISOString()} – ${new Date(toMs).toISOString()} is empty: --since must be before --until`,
    );
  }
  return { fromMs, toMs };
}
