// `canary release backtest -f release.yaml`: the backtest of a whole release (client/backtest-release.ts). It sits
// under `canary release` because, like validate and start, it reads a release file: `canary backtest` is built
// around one --plan and one target (and flags that override that target), which a release of many members has
// not. Never contacts Temporal; exit codes are the single backtest's.
import type { Command } from 'commander';
import { validatePlan } from '../../workflows/plan';
import { validateTarget, versionProblem } from '../../workflows/target';
import {
  BacktestInputError,
  checkRange,
  parseTime,
  shortFormMeasureChecks,
  type MeasureFn,
} from '../backtest';
import { renderReleaseBacktest, runReleaseBacktest, type ReleaseRules } from '../backtest-release';
import type { CliContext } from './context';
import { json, outputOption, type OutputFormat } from './options';
import type { PreparedRelease } from '../release';
import { EXIT_BAD_INPUT, EXIT_INFRASTRUCTURE, EXIT_OK, UsageError } from './usage';

interface Options {
  file: string;
  from: string;
  to: string;
  stableVersion?: string[];
  output: OutputFormat;
}

/** How `canary release` reads a release file (its prepare, passed in: that module registers this one). */
export type PrepareRelease = (
  ctx: CliContext,
  file: string,
  output: OutputFormat,
  nowMs: number,
) => PreparedRelease | undefined;

export function registerReleaseBacktest(release: Command, ctx: CliContext, prepare: PrepareRelease): void {
  release
    .command('backtest')
    .description(
      "run every member's backtest over the same historical range, each from when the release would have " +
        'started it, and say whether the release as a whole would have promoted or rolled back, and which member caused it',
    )
    .requiredOption('-f, --file <file>', 'release file (YAML/JSON)')
    .requiredOption('--from <time>', 'start of the range: RFC 3339 (2025-03-01T12:00:00Z), or -7d, now-36h')
    .option('--to <time>', 'end of the range (same forms)', 'now')
    .option(
      '--stable-version <member=version...>',
      'the version stable ran for a member (checks that compare with stable by version)',
    )
    .addOption(outputOption())
    .addHelpText(
      'after',
      `
Each member's rounds are the single backtest's (canary backtest --help): its plan, its target's Prometheus, its
  version. A member starts when the release would have started it: after those it comes after have passed their
  last stage (or entered the stage its after: names), and after the wave before it has passed and baked.
The verdict is the release's: the first member to roll back rolls back every member not yet promoted (the line
  names the member and its checks); with promotion: together, every member promotes once the last one passed.
Exit codes: ${EXIT_OK} the backtest ran (whatever the release would have done), ${EXIT_BAD_INPUT} bad input (the release file, a
  member's plan or target, the times), ${EXIT_INFRASTRUCTURE} Prometheus unreachable or failing.`,
    )
    .action((opts: Options) => backtestRelease(ctx, opts, prepare));
}

async function backtestRelease(ctx: CliContext, opts: Options, prepare: PrepareRelease): Promise<void> {
  const input = <T>(step: () => T): T => {
    try {
      return step();
    } catch (e) {
      if (e instanceof BacktestInputError) throw new UsageError(e.message);
      throw e;
    }
  };
  const nowMs = ctx.now().getTime();
  const fromMs = input(() => parseTime('--from', opts.from, nowMs));
  const toMs = input(() => parseTime('--to', opts.to, nowMs));
  // Deployment windows are checked from where the backtest starts.
  const prepared = prepare(ctx, opts.file, opts.output, fromMs);
  if (!prepared) return;
  const release = prepared.input;
  const stable = stableVersions(opts.stableVersion ?? [], new Set(release.members.map((m) => m.id)));
  const plans = new Map<string, { plan: ReturnType<typeof planOf>; measure: MeasureFn }>();
  const urls = new Set<string>();
  for (const m of release.members) {
    const under = (message: string) => new UsageError(`member ${m.id}: ${message}`);
    const plan = planOf(m.input.plan);
    try {
      checkRange(plan, fromMs, toMs, nowMs);
    } catch (e) {
      throw e instanceof BacktestInputError ? under(e.message) : e;
    }
    const checks = plan.analysis.rules ?? shortFormMeasureChecks(plan);
    if (checks.length === 0) {
      plans.set(m.id, { plan, measure: async () => ({}) });
      continue;
    }
    const target = validateTarget(m.input.target);
    if (!target.ok) throw under(target.problems.map((p) => `${p.path}: ${p.message}`).join('; '));
    const { prometheusMeasure } = await import('../backtest-prometheus');
    try {
      const source = prometheusMeasure(
        target.target,
        checks,
        { canary: m.input.version, ...(stable.has(m.id) ? { stable: stable.get(m.id) } : {}) },
        ctx.env,
      );
      urls.add(source.url);
      plans.set(m.id, { plan, measure: source.measure });
    } catch (e) {
      if (e instanceof BacktestInputError)
        throw under(e.message.replace('pass --stable-version', `pass --stable-version ${m.id}=VERSION`));
      throw e;
    }
  }
  const rules: ReleaseRules = {
    members: release.members.map((m) => ({
      id: m.id,
      after: m.after,
      ...(m.afterStage ? { afterStage: m.afterStage } : {}),
      wave: m.wave,
    })),
    waves: release.waves,
    promotion: release.promotion,
  };
  const result = await runReleaseBacktest({ rules, plans, fromMs, toMs });
  ctx.out(
    opts.output === 'json'
      ? json({ release: release.release, promotion: release.promotion, ...result })
      : renderReleaseBacktest(release.release, { ...rules, onFailure: release.onFailure }, result, [...urls]),
  );
}

function planOf(spec: unknown) {
  // prepare() validated every member's plan exactly as canary start does: this only normalises it again.
  const v = validatePlan(spec);
  if (!v.ok) throw new Error(`a member's plan failed its second validation: ${v.problems[0]?.message}`);
  return v.plan;
}

/** `--stable-version payments=v6 checkout=v3.0`: by member id. */
function stableVersions(pairs: string[], ids: Set<string>): Map<string, string> {
  const out = new Map<string, string>();
  for (const pair of pairs) {
    const [id, version] = pair.split('=', 2);
    if (!version || !ids.has(id)) {
      throw new UsageError(
        `--stable-version ${pair}: expected MEMBER=VERSION with a member of the release (${[...ids].join(', ')})`,
      );
    }
    const bad = versionProblem(version.trim());
    if (bad) throw new UsageError(`--stable-version ${pair}: ${bad}`);
    out.set(id, version.trim());
  }
  return out;
}
