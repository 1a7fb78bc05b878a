// `canary start`: starts a rollout (idempotently per target), says what was started and what its preflight found,
// and with --wait follows it to its outcome, which then becomes the exit code.
import type { Command } from 'commander';
import { formatDuration } from '../../workflows/duration';
import { describePlan, totalHoldMs } from '../../workflows/plan';
import { describeTarget, versionProblem } from '../../workflows/target';
import type { RolloutStatus } from '../../workflows/types';
import { InfrastructureError, RolloutNotStartedError } from '../errors';
import { describeIdentity, type Identity } from '../identity';
import {
  loadAndValidatePlan,
  validateLoadedPlan,
  type PlanCheckOptions,
  type ValidatedPlan,
} from '../plan-file';
import { prepareStart, startProblemError, type PreparedStart } from '../prepare-start';
import type { RolloutClient } from '../rollout-client';
import type { StartRolloutResult } from '../types';
import type { CliContext } from './context';
import {
  containerOption,
  json,
  outputOption,
  parseDurationOption,
  parseInterval,
  routerOptOption,
  routerOption,
  strictOption,
  targetFileOption,
  targetFromOptions,
  workloadOption,
  type OutputFormat,
  type TargetOptions,
} from './options';
import { exitCodeForStatus } from './report';
import { supersedeRunning } from './supersede';
import { EXIT_BAD_INPUT, EXIT_INFRASTRUCTURE, UsageError } from './usage';

type StartOptions = TargetOptions & {
  workerWait: string;
  version?: string;
  image?: string;
  plan: string;
  like?: string;
  wait?: boolean;
  supersede?: boolean;
  strict?: boolean;
  interval: string;
  output: OutputFormat;
};

/**
 * `registry/app:1.4.2` → `1.4.2`; `app:1.4.2@sha256:…` → `1.4.2`; `app@sha256:abcdef…` → `sha256-abcdef012345`.
 * An image without tag or digest has no version: pass --version.
 */
export function versionFromImage(image: string): string {
  const trimmed = image.trim();
  const at = trimmed.indexOf('@');
  const name = at >= 0 ? trimmed.slice(0, at) : trimmed;
  const digest = at >= 0 ? trimmed.slice(at + 1) : '';
  const colon = name.lastIndexOf(':');
  if (colon > name.lastIndexOf('/')) {
    const tag = name.slice(colon + 1);
    if (tag !== '') return tag;
  }
  const m = /^([a-z0-9]+):([a-f0-9]{12,})$/i.exec(digest);
  if (m) return `${m[1].toLowerCase()}-${m[2].slice(0, 12).toLowerCase()}`;
  throw new UsageError(
    `cannot derive a version from image "${image}": it has no tag; tag the image (app:1.4.2) or pass --version`,
  );
}

export function registerStart(program: Command, ctx: CliContext): void {
  program
    .command('start')
    .description('start a rollout (idempotent: the same version already rolling out is not started twice)')
    .option('--app <name>', "application to roll out (default: the target's app, else its workload name)")
    .option(
      '--namespace <namespace>',
      "target namespace of the application (default: the target's, else default)",
    )
    .addOption(targetFileOption())
    .addOption(workloadOption())
    .addOption(containerOption())
    .addOption(routerOption())
    .addOption(routerOptOption())
    .option('--version <version>', 'version to roll out (default: the tag of --image)')
    .option('--image <image>', 'container image of the new version')
    .option('--plan <file|preset>', 'plan file (YAML/JSON) or preset name', 'default')
    .option(
      '--like <rollout>',
      "take the plan and target of this rollout (namespace/app or workflow id), as it was started; --plan, --target and the target's flags override them",
    )
    .addOption(strictOption())
    .option(
      '--supersede',
      'a rollout of another version running on the target is rolled back first (printed), then this one starts',
    )
    .option('--wait', 'wait for the outcome: exit 0 when promoted, 1 when rolled back')
    .option('--interval <duration>', 'poll interval with --wait', '2s')
    .option(
      '--worker-wait <duration>',
      'with --wait: how long to wait for a worker to poll the task queue before giving up (exit 3)',
      '60s',
    )
    .addOption(outputOption())
    .action((opts: StartOptions, command: Command) => start(ctx, opts, command));
}

async function start(ctx: CliContext, opts: StartOptions, command: Command): Promise<void> {
  // Everything that can be checked locally is checked before Temporal is contacted.
  const version = opts.version?.trim() || (opts.image ? versionFromImage(opts.image) : undefined);
  if (!version) throw new UsageError('start needs --version or --image (the version is then the image tag)');
  const badVersion = versionProblem(version);
  if (badVersion) throw new UsageError(badVersion);
  const pollMs = parseInterval(opts.interval);
  const workerWaitMs = parseDurationOption('--worker-wait', opts.workerWait);
  const who = ctx.identity();
  const like = opts.like?.trim();
  if (like === '') throw new UsageError('--like needs a rollout: namespace/app or a workflow id');
  const planGiven = command.getOptionValueSource('plan') !== 'default';
  // Without --like, everything is checked before Temporal is contacted; --like reads its rollout first.
  const early = like !== undefined ? await ctx.connect() : undefined;
  const setup = early && like !== undefined ? await early.setupOf(like) : undefined;
  const { loaded, prepared } = prepare(ctx, opts, { version, who, planGiven, setup });
  const c = early ?? (await ctx.connect());
  if (opts.supersede) {
    const say = (line: string) => (opts.output === 'json' ? ctx.err(`canary: ${line}`) : ctx.out(line));
    await supersedeRunning(ctx, c, prepared, who, say, pollMs);
  }
  // A promoted rollout still running on the target hands over: say what happens to it.
  const started = await c.startPrepared(prepared, {
    onHandover: (message) => (opts.output === 'json' ? ctx.err(`canary: ${message}`) : ctx.out(message)),
  });
  const { app, namespace } = prepared.target;
  const ref = `${namespace}/${app}`;
  if (started.wentBack) {
    if (opts.output === 'json') ctx.out(json({ ...started, app, namespace }));
    else {
      ctx.out(
        `Went back to ${version} on ${ref}: traffic is on stable, which still ran ${version}; nothing new ` +
          `started (workflow ${started.workflowId})`,
      );
    }
    return;
  }
  const pollers = await c.workersPolling();
  const noWorker = pollers === 0;
  const preflight = await awaitPreflight(ctx, c, opts, started, noWorker, prepared);
  if (preflight === 'refused') return;
  if (noWorker) {
    ctx.err(
      `canary: warning: no worker polls task queue "${c.taskQueue}" in Temporal namespace "${c.namespace}": ` +
        'the rollout is recorded but will not move until a canary worker polls that queue ' +
        '(start one with the same TEMPORAL_* settings: node dist/worker/main.js, or npm run worker)',
    );
  }
  const shown = { started, preflight, noWorker, pollers, ui: c.uiUrl(started.workflowId, ctx.env) };
  if (opts.output === 'json' && !opts.wait) {
    ctx.out(json(startedDocument(opts, shown, prepared, loaded, who)));
  } else if (opts.output === 'text') {
    for (const line of startedLines(ctx, opts, shown, prepared, loaded, who)) ctx.out(line);
  }
  if (opts.wait && noWorker) await awaitWorker(ctx, c, workerWaitMs, started.workflowId, ref);
  if (opts.wait) {
    const final = await ctx.follow(c, started.workflowId, pollMs, opts.output);
    ctx.exitCode = exitCodeForStatus(final);
  }
}

/** The plan and the target, from the files, the flags and the --like rollout, prepared and validated once. */
function prepare(
  ctx: CliContext,
  opts: StartOptions,
  given: {
    version: string;
    who: Identity;
    planGiven: boolean;
    setup?: Awaited<ReturnType<RolloutClient['setupOf']>>;
  },
): { loaded: ValidatedPlan; prepared: PreparedStart } {
  const { setup, planGiven } = given;
  const nowMs = ctx.now().getTime();
  const planChecks: PlanCheckOptions = { strict: Boolean(opts.strict), nowMs };
  const loaded =
    setup && !planGiven
      ? validateLoadedPlan({ spec: setup.plan, source: `the plan of ${setup.workflowId}` }, planChecks)
      : loadAndValidatePlan(opts.plan, planChecks);
  // A plan file's own `target:` is more specific than the --like rollout's target.
  const targetSpec = targetFromOptions(
    opts,
    (setup && !planGiven ? undefined : loaded.target) ?? setup?.target,
  );
  const prepared = prepareStart({
    plan: loaded,
    strict: Boolean(opts.strict),
    nowMs,
    target: targetSpec,
    targetSource: opts.target ?? (setup ? `the target of ${setup.workflowId}` : loaded.source),
    version: given.version,
    ...(opts.image ? { image: opts.image } : {}),
    requestedBy: given.who.name,
    cli: ctx.invocation(),
  });
  if (!prepared.ok) {
    // The plan's warnings come before what only a start refuses (a check its metrics provider cannot measure).
    if (prepared.problems[0].kind !== 'target') ctx.warnAbout(loaded);
    throw startProblemError(prepared.problems[0]);
  }
  ctx.warnAbout(loaded);
  return { loaded, prepared: prepared.start };
}

/**
 * A rollout that cannot work never starts: its first step (the preflight) answers within seconds, and a refusal is
 * this command's answer (exit 2 for the plan or target, 3 for the worker's environment). With --wait the final
 * status says it. `refused`: the refusal was written as JSON and the exit code set.
 */
async function awaitPreflight(
  ctx: CliContext,
  c: RolloutClient,
  opts: StartOptions,
  started: StartRolloutResult,
  noWorker: boolean,
  prepared: PreparedStart,
): Promise<RolloutStatus | undefined | 'refused'> {
  if (!started.started || noWorker || opts.wait) return undefined;
  try {
    return await c.awaitPreflight(started.workflowId, { timeoutMs: 60_000 });
  } catch (e) {
    if (!(e instanceof RolloutNotStartedError) || opts.output !== 'json') throw e;
    const { app, namespace } = prepared.target;
    ctx.out(
      json({
        ...started,
        app,
        namespace,
        phase: 'not_started',
        preflight: { state: 'failed', cause: e.kind, findings: e.findings },
      }),
    );
    ctx.exitCode = e.kind === 'input' ? EXIT_BAD_INPUT : EXIT_INFRASTRUCTURE;
    return 'refused';
  }
}

interface Shown {
  started: StartRolloutResult;
  /** The status once the preflight answered (undefined when it was not awaited or did not answer). */
  preflight: RolloutStatus | undefined;
  noWorker: boolean;
  pollers: number | undefined;
  ui: string | undefined;
}

/** What `start --output json` prints (without --wait, which prints the final status instead). */
function startedDocument(
  opts: StartOptions,
  shown: Shown,
  prepared: PreparedStart,
  loaded: ValidatedPlan,
  who: Identity,
): object {
  const { started, preflight, pollers, ui } = shown;
  return {
    ...started,
    ...(preflight?.preflight ? { preflight: preflight.preflight } : {}),
    app: prepared.target.app,
    namespace: prepared.target.namespace,
    target: prepared.target,
    ...(opts.image ? { image: opts.image } : {}),
    plan: loaded.source,
    requestedBy: who.name,
    ...(pollers !== undefined ? { workersPolling: pollers } : {}),
    ...(ui ? { uiUrl: ui } : {}),
  };
}

/** What `start` prints in text: what was started, the plan, the target, the preflight's verdict, where to look. */
function startedLines(
  ctx: CliContext,
  opts: StartOptions,
  shown: Shown,
  prepared: PreparedStart,
  loaded: ValidatedPlan,
  who: Identity,
): string[] {
  const { started, preflight, noWorker, ui } = shown;
  const version = started.version;
  const ref = `${prepared.target.namespace}/${prepared.target.app}`;
  const lines = [
    started.started
      ? `Started rollout of ${version} to ${ref} (workflow ${started.workflowId}, run ${started.runId})`
      : `A rollout of ${version} to ${ref} is already running (workflow ${started.workflowId}, run ${started.runId}); not started again`,
    `  Plan:         ${loaded.source}: ${describePlan(loaded.plan)}`,
    `  Target:       ${describeTarget(prepared.target)}`,
    `  Holds total:  ${formatDuration(totalHoldMs(loaded.plan))} (approval waits not included)`,
    `  Requested by: ${describeIdentity(who)}`,
  ];
  const warnings = preflight?.preflight?.findings.filter((f) => f.level === 'warn') ?? [];
  if (preflight?.preflight?.state === 'passed') {
    lines.push(
      `  Preflight:    passed${preflight.preflight.tookMs !== undefined ? ` in ${preflight.preflight.tookMs} ms` : ''}` +
        (warnings.length > 0 ? `, ${warnings.length} warning(s):` : ''),
    );
    for (const f of warnings) lines.push(`    - ${f.path ? `${f.path}: ` : ''}${f.message}`);
  } else if (started.started && !noWorker) {
    lines.push('  Preflight:    still running; follow the rollout to see its verdict');
  }
  if (ui) lines.push(`  Temporal UI:  ${ui}`);
  if (!opts.wait) lines.push(`  Follow:       ${ctx.self()} status ${ref} --watch`);
  return lines;
}

/** With --wait and no worker polling yet: waits for one up to --worker-wait, else gives up (exit 3). */
async function awaitWorker(
  ctx: CliContext,
  c: RolloutClient,
  workerWaitMs: number,
  workflowId: string,
  ref: string,
): Promise<void> {
  const deadline = Date.now() + workerWaitMs;
  let seen = false;
  while (!seen && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, Math.min(1000, Math.max(1, deadline - Date.now()))));
    seen = ((await c.workersPolling()) ?? 1) > 0;
  }
  if (!seen) {
    throw new InfrastructureError(
      `no worker polled task queue "${c.taskQueue}" within ${formatDuration(workerWaitMs)}: the rollout ` +
        `${workflowId} is recorded and starts when a worker polls that queue; to drop it: ` +
        `${ctx.self()} abort ${ref} --reason "no worker"`,
    );
  }
}
