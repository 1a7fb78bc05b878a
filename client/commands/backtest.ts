// `canary backtest`: runs a plan's analysis over historical Prometheus data and shows, round by round, when the
// rollout would have advanced, held, stepped back or rolled back. Never contacts Temporal.
import type { Command } from 'commander';
import { versionProblem } from '../../workflows/target';
import {
  BacktestInputError,
  MAX_BACKTEST_ROUNDS,
  checkRange,
  parseTime,
  renderBacktest,
  runBacktest,
  shortFormMeasureChecks,
} from '../backtest';
import { loadAndValidatePlan } from '../plan-file';
import { checkStartTarget, startProblemError } from '../prepare-start';
import type { CliContext } from './context';
import {
  containerOption,
  json,
  outputOption,
  routerOptOption,
  routerOption,
  strictOption,
  targetFileOption,
  targetFromOptions,
  workloadOption,
  type OutputFormat,
  type TargetOptions,
} from './options';
import { EXIT_BAD_INPUT, EXIT_INFRASTRUCTURE, EXIT_OK, UsageError } from './usage';

type BacktestOptions = TargetOptions & {
  plan: string;
  from: string;
  to: string;
  version?: string;
  stableVersion?: string;
  strict?: boolean;
  output: OutputFormat;
};

export function registerBacktest(program: Command, ctx: CliContext): void {
  program
    .command('backtest')
    .description(
      "run a plan's analysis over historical Prometheus data and show, round by round, when the rollout would " +
        'have advanced, held, stepped back or rolled back; never contacts Temporal',
    )
    .requiredOption('--plan <file|preset>', 'plan file (YAML/JSON) or preset name')
    .requiredOption('--from <time>', 'start of the range: RFC 3339 (2025-03-01T12:00:00Z), or -7d, now-36h')
    .option('--to <time>', 'end of the range (same forms)', 'now')
    .addOption(targetFileOption())
    .option('--app <name>', "application (default: the target's app, else its workload name)")
    .option('--namespace <namespace>', "target namespace (default: the target's, else default)")
    .addOption(workloadOption())
    .addOption(containerOption())
    .addOption(routerOption())
    .addOption(routerOptOption())
    .option('--version <version>', 'the version the canary ran (templates that select a side by version)')
    .option('--stable-version <version>', 'the version stable ran (checks that compare with stable)')
    .addOption(strictOption())
    .addOption(outputOption())
    .addHelpText(
      'after',
      `
Times: RFC 3339 with an offset (2025-03-01T12:00:00Z, 2025-03-01T14:00:00+02:00), now, or relative to now
  (-7d, -36h, now-90m). Rounds are spaced by the plan's analysis interval, each evaluated at its own time in
  the range; at most ${MAX_BACKTEST_ROUNDS} rounds per backtest.
Prometheus: the target's metrics.prometheus.url, else CANARY_PROMETHEUS_URL; credentials, CA and timeout from
  CANARY_PROMETHEUS_* as the worker reads them.
Judging: full-form plans by judge-v2, short-form plans by the original judge, as a live rollout judges them.
  Stage weights do not change the history; approval gates are assumed approved at once.
Exit codes: ${EXIT_OK} the backtest ran (whatever it would have done), ${EXIT_BAD_INPUT} bad input (plan, target, times, a range
  that is empty, in the future or over ${MAX_BACKTEST_ROUNDS} rounds), ${EXIT_INFRASTRUCTURE} Prometheus unreachable or failing.`,
    )
    .action((opts: BacktestOptions) => backtest(ctx, opts));
}

async function backtest(ctx: CliContext, opts: BacktestOptions): Promise<void> {
  const input = <T>(step: () => T): T => {
    try {
      return step();
    } catch (e) {
      if (e instanceof BacktestInputError) throw new UsageError(e.message);
      throw e;
    }
  };
  const nowMs = ctx.now().getTime();
  // Deployment windows are checked from where the backtest starts (a bad --from is reported below).
  let startMs = nowMs;
  try {
    startMs = parseTime('--from', opts.from, nowMs);
  } catch {
    // reported after the plan
  }
  const loaded = loadAndValidatePlan(opts.plan, { strict: Boolean(opts.strict), nowMs: startMs });
  const checked = checkStartTarget(
    undefined,
    targetFromOptions(opts, loaded.target),
    opts.target ?? loaded.source,
  );
  if (!checked.ok) throw startProblemError(checked.problems[0]);
  ctx.warnAbout(loaded);
  const fromMs = input(() => parseTime('--from', opts.from, nowMs));
  const toMs = input(() => parseTime('--to', opts.to, nowMs));
  input(() => checkRange(loaded.plan, fromMs, toMs, nowMs));
  const versions = sideVersions(opts);
  const plan = loaded.plan;
  const checks = plan.analysis.rules ?? shortFormMeasureChecks(plan);
  // A plan without checks measures nothing: time alone walks it, and no Prometheus is needed.
  // The providers (and through them the Kubernetes client) load here, not with every command.
  const { prometheusMeasure } =
    checks.length > 0 ? await import('../backtest-prometheus') : { prometheusMeasure: undefined };
  const source = prometheusMeasure
    ? input(() => prometheusMeasure(checked.target, checks, versions, ctx.env))
    : undefined;
  const result = await runBacktest({
    plan,
    fromMs,
    toMs,
    measure: source?.measure ?? (async () => ({})),
  });
  const target = source?.target ?? checked.target;
  if (opts.output === 'json') {
    ctx.out(
      json({
        plan: loaded.source,
        target,
        ...(source ? { prometheus: source.url } : {}),
        ...(versions.canary ? { version: versions.canary } : {}),
        ...(versions.stable ? { stableVersion: versions.stable } : {}),
        ...result,
      }),
    );
  } else {
    ctx.out(
      renderBacktest(result, {
        planSource: loaded.source,
        plan,
        target,
        ...(source ? { prometheus: source.url } : {}),
      }),
    );
  }
}

/** The versions each side ran (--version, --stable-version), for templates that select a side by version. */
function sideVersions(opts: BacktestOptions): { canary?: string; stable?: string } {
  const versions: { canary?: string; stable?: string } = {};
  for (const [flag, value, side] of [
    ['--version', opts.version, 'canary'],
    ['--stable-version', opts.stableVersion, 'stable'],
  ] as const) {
    if (value === undefined) continue;
    const bad = versionProblem(value.trim());
    if (bad) throw new UsageError(`${flag}: ${bad}`);
    versions[side] = value.trim();
  }
  return versions;
}
