#!/usr/bin/env node
// The `canary` command line: start, follow and steer rollouts from CI or a terminal.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Command, CommanderError, Option } from 'commander';
import { DurationError, formatDuration, parseDuration } from '../workflows/duration';
import { describePlan, totalHoldMs } from '../workflows/plan';
import type { InputProblem } from '../workflows/problems';
import type { Phase, RolloutStatus } from '../workflows/types';
import { ConfigError, loadConnectionConfig, type ConnectionConfig } from '../connection/config';
import {
  PlanFileError,
  PlanInvalidError,
  TargetInvalidError,
  loadAndValidatePlan,
  loadPlan,
  loadTargetFile,
  validateLoadedPlan,
  type PlanCheckOptions,
  type ValidatedPlan,
} from './plan-file';
import { ROUTER_TYPES, describeTarget, versionProblem, type TargetSpec } from '../workflows/target';
import {
  BacktestInputError,
  MAX_BACKTEST_ROUNDS,
  checkRange,
  parseTime,
  renderBacktest,
  runBacktest,
  shortFormMeasureChecks,
} from './backtest';
import { IdentityError, describeIdentity, resolveIdentity } from './identity';
import { checkStartTarget, prepareStart, startProblemError } from './prepare-start';
import {
  InfrastructureError,
  RolloutClient,
  RolloutConflictError,
  RolloutInputError,
  RolloutNotFoundError,
  RolloutNotStartedError,
  RolloutRejectedError,
  resolveRolloutId,
} from './index';
import { progressLines, renderList, renderStatus } from './render';

/** Success; with `--wait`, the rollout was promoted. */
export const EXIT_OK = 0;
/** With `--wait`: the rollout was rolled back (failed analysis, abort, gate timeout). */
export const EXIT_ROLLED_BACK = 1;
/** Bad input: unknown flag, missing option, invalid plan, update rejected, conflict, unknown rollout id. */
export const EXIT_BAD_INPUT = 2;
/** Temporal cannot be reached, a call timed out, or the workflow ended without an outcome. */
export const EXIT_INFRASTRUCTURE = 3;

export const EXIT_CODES = {
  ok: EXIT_OK,
  rolledBack: EXIT_ROLLED_BACK,
  badInput: EXIT_BAD_INPUT,
  infrastructure: EXIT_INFRASTRUCTURE,
} as const;

const PHASES: Phase[] = [
  'progressing',
  'waiting_approval',
  'paused',
  'rolling_back',
  'rolled_back',
  'promoted',
  'failed',
  'not_started',
];

/** Something the user typed is wrong; nothing was sent. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

export interface OutputStream {
  write(chunk: string): unknown;
  isTTY?: boolean;
}

export interface CliOptions {
  /** How hints spell this CLI (default: worked out from how it was run, see cliInvocation). */
  invocation?: string;
  stdout?: OutputStream;
  stderr?: OutputStream;
  /** Environment for TEMPORAL_*, CANARY_UI_URL, identity variables. Default process.env. */
  env?: NodeJS.ProcessEnv;
  /** Replaces RolloutClient.connect (tests, embedding). */
  connect?: (config: ConnectionConfig) => Promise<RolloutClient>;
  now?: () => Date;
}

interface GlobalOptions {
  connectTimeout?: string;
  address?: string;
  temporalNamespace?: string;
  taskQueue?: string;
  as?: string;
}

type OutputFormat = 'text' | 'json';

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

function parseDurationOption(option: string, text: string): number {
  let ms: number;
  try {
    ms = parseDuration(text);
  } catch (err) {
    if (err instanceof DurationError) throw new UsageError(`${option}: ${err.message}`);
    throw err;
  }
  if (ms < 100) throw new UsageError(`${option} must be at least 100ms, got "${text}"`);
  return ms;
}

function parseInterval(text: string): number {
  return parseDurationOption('--interval', text);
}

/**
 * How this CLI was run, as a person should type it again: `canary` from a global install (a bin on PATH),
 * `npx canary` from a project's node_modules/.bin (npx in a clone of this repository too), else
 * `node <script>` (relative to the working directory when inside it), e.g. `node dist/client/cli.js`.
 */
export function cliInvocation(script = process.argv[1] ?? '', cwd = process.cwd()): string {
  if (path.basename(script) === 'canary') {
    return script.split(path.sep).includes('.bin') ? 'npx canary' : 'canary';
  }
  const relative = path.relative(cwd, script);
  const shown =
    relative !== '' && !relative.startsWith('..') && !path.isAbsolute(relative) ? relative : script;
  return `node ${shellWord(shown)}`;
}

/** A word the shell reads back as itself. */
function shellWord(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replaceAll("'", "'\\''")}'`;
}

function parseStage(text: string): number {
  const n = Number(text);
  if (!/^\d+$/.test(text.trim()) || !Number.isSafeInteger(n) || n < 1) {
    throw new UsageError(`--stage must be a stage number (1, 2, ...), got "${text}"`);
  }
  return n;
}

// The target options start and validate share.
const targetFileOption = (): Option =>
  new Option(
    '--target <file>',
    'target file (YAML/JSON): workload, traffic router and its settings, metrics',
  );
const workloadOption = (): Option =>
  new Option('--workload <name>', 'the stable Deployment (the canary is derived from it)');
const containerOption = (): Option =>
  new Option('--container <name>', 'the container that takes the new image (default: the first)');
const routerOption = (): Option =>
  new Option('--router <type>', "traffic router (default: the target's, else the worker's)").choices([
    ...ROUTER_TYPES,
  ]);
const routerOptOption = (): Option =>
  new Option(
    '--router-opt <key=value>',
    'a router setting, e.g. virtualService=checkout or routes=primary,secondary (repeatable)',
  ).argParser((value: string, previous: string[] = []) => [...previous, value]);

function outputOption(): Option {
  return new Option('--output <format>', 'output format').choices(['text', 'json']).default('text');
}

const strictOption = (): Option =>
  new Option(
    '--strict',
    'refuse what is otherwise a warning (a query that measures the whole fleet, a breach bound longer than the holds)',
  );

/** The global options that take a value, for finding the command in argv before commander has parsed it. */
const GLOBAL_VALUE_OPTIONS = [
  '--address',
  '--temporal-namespace',
  '--task-queue',
  '--connect-timeout',
  '--as',
];

/**
 * Whether argv asks for `validate --output json`: then every refusal, including commander's own (an unknown flag,
 * a missing --plan), is a `{ valid: false, problems }` document on stdout.
 */
export function wantsValidateJson(argv: readonly string[]): boolean {
  let i = 0;
  while (i < argv.length && argv[i].startsWith('-')) {
    i += GLOBAL_VALUE_OPTIONS.includes(argv[i]) ? 2 : 1;
  }
  if (argv[i] !== 'validate') return false;
  const rest = argv.slice(i + 1);
  return rest.some((a, j) => a === '--output=json' || (a === '--output' && rest[j + 1] === 'json'));
}

function json(value: unknown): string {
  return `${JSON.stringify(value, null, 2)}\n`;
}

/** Exit code of a finished rollout as `--wait` reports it. */
export function exitCodeForStatus(status: RolloutStatus): number {
  if (status.phase === 'promoted') return EXIT_OK;
  if (status.phase === 'rolled_back') return EXIT_ROLLED_BACK;
  // Not started: the preflight refused it; the plan or target is wrong (2), or the worker's environment (3).
  if (status.phase === 'not_started')
    return status.preflight?.cause === 'input' ? EXIT_BAD_INPUT : EXIT_INFRASTRUCTURE;
  return EXIT_INFRASTRUCTURE;
}

/**
 * This package's version, from the nearest package.json above this file: the repo's from the sources and from
 * dist/, the installed package's from node_modules. (Importing package.json would copy it into dist/, where the
 * harnesses' project-root lookup would then stop.)
 */
export function packageVersion(): string {
  for (let dir = __dirname; ; dir = path.dirname(dir)) {
    const file = path.join(dir, 'package.json');
    if (fs.existsSync(file))
      return (JSON.parse(fs.readFileSync(file, 'utf8')) as { version: string }).version;
    if (path.dirname(dir) === dir) return 'unknown';
  }
}

/** Runs the CLI with `argv` (arguments only, no node/script) and returns the exit code. Never exits. */
export async function main(argv: string[], options: CliOptions = {}): Promise<number> {
  const stdout: OutputStream = options.stdout ?? process.stdout;
  const stderr: OutputStream = options.stderr ?? process.stderr;
  const env = options.env ?? process.env;
  const now = options.now ?? ((): Date => new Date());
  const color = Boolean(stdout.isTTY) && env.NO_COLOR === undefined && env.TERM !== 'dumb';
  const out = (text: string): void => {
    stdout.write(text.endsWith('\n') ? text : `${text}\n`);
  };
  const err = (text: string): void => {
    stderr.write(text.endsWith('\n') ? text : `${text}\n`);
  };

  // `canary --version` (alone: `start --version X` names the version to roll out).
  if (argv.length === 1 && (argv[0] === '--version' || argv[0] === '-V')) {
    out(packageVersion());
    return EXIT_OK;
  }

  let exitCode = EXIT_OK;
  let client: RolloutClient | undefined;
  const validateJson = wantsValidateJson(argv);
  /** Commander's last error message (an unknown flag, a missing option), for validate --output json. */
  let commanderMessage = '';

  const program = new Command('canary');
  program
    .description('Durable canary rollouts on Temporal')
    .exitOverride()
    .configureOutput({
      writeOut: (s) => stdout.write(s),
      writeErr: (s) => stderr.write(s),
      outputError: (s, write) => {
        commanderMessage = s.trim().replace(/^error: /, '');
        write(`canary: ${s}`);
      },
    })
    .showHelpAfterError('(run the command with --help for its usage)')
    .addHelpText(
      'after',
      `
IDs: a workflow id (canary.prod.checkout) or namespace/app (prod/checkout).
Exit codes: ${EXIT_OK} success (with --wait: promoted), ${EXIT_ROLLED_BACK} rolled back (with --wait),
  ${EXIT_BAD_INPUT} bad input (flags, plan, rejected request, conflict, unknown rollout; a rollout its preflight
  refused for its plan or target: not started, nothing changed),
  ${EXIT_INFRASTRUCTURE} Temporal unreachable or other infrastructure failure (a rollout its preflight refused for
  the worker's cluster, credentials or metrics source: not started, nothing changed).
Version: canary --version.
Environment: TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_TASK_QUEUE (and TLS/API key settings),
  CANARY_UI_URL (Temporal Web UI base URL for links), CANARY_IDENTITY, CANARY_CONNECT_TIMEOUT.`,
    )
    .option('--address <host:port>', 'Temporal frontend address (overrides TEMPORAL_ADDRESS)')
    .option('--temporal-namespace <namespace>', 'Temporal namespace (overrides TEMPORAL_NAMESPACE)')
    .option('--task-queue <queue>', 'task queue of the canary workers (overrides TEMPORAL_TASK_QUEUE)')
    .option(
      '--connect-timeout <duration>',
      'how long to try to reach Temporal (default CANARY_CONNECT_TIMEOUT or 10s)',
    )
    .option(
      '--as <name>',
      'who is acting (default: CANARY_IDENTITY, then the CI actor: GITHUB_ACTOR, GITLAB_USER_LOGIN, ..., then the OS user)',
    );

  const globals = (): GlobalOptions => program.opts<GlobalOptions>();

  const connectionConfig = (): ConnectionConfig => {
    const g = globals();
    const overlay: NodeJS.ProcessEnv = { ...env };
    if (g.address !== undefined) overlay.TEMPORAL_ADDRESS = g.address;
    if (g.temporalNamespace !== undefined) overlay.TEMPORAL_NAMESPACE = g.temporalNamespace;
    if (g.taskQueue !== undefined) overlay.TEMPORAL_TASK_QUEUE = g.taskQueue;
    return loadConnectionConfig(overlay);
  };

  const connect = async (): Promise<RolloutClient> => {
    const config = connectionConfig();
    const timeoutText = globals().connectTimeout ?? env.CANARY_CONNECT_TIMEOUT?.trim();
    const connectTimeoutMs = timeoutText ? parseDurationOption('--connect-timeout', timeoutText) : undefined;
    client = options.connect
      ? await options.connect(config)
      : await RolloutClient.connect(config, connectTimeoutMs === undefined ? {} : { connectTimeoutMs });
    client.cli = self();
    return client;
  };

  const identity = () => resolveIdentity({ as: globals().as, env });

  /** What a plan may start with but probably should not (`--strict` refuses it), on stderr. */
  const warnAbout = (loaded: ValidatedPlan): void => {
    for (const w of loaded.warnings) err(`canary: warning: ${loaded.source}: ${w.path}: ${w.message}`);
  };

  /** This CLI as a pasted command must spell it: its invocation plus the global options that point it somewhere. */
  const self = (): string => {
    const g = globals();
    const flags = [
      ...(g.address !== undefined ? ['--address', g.address] : []),
      ...(g.temporalNamespace !== undefined ? ['--temporal-namespace', g.temporalNamespace] : []),
      ...(g.taskQueue !== undefined ? ['--task-queue', g.taskQueue] : []),
    ];
    return [options.invocation ?? cliInvocation(), ...flags.map(shellWord)].join(' ');
  };

  const follow = async (
    c: RolloutClient,
    workflowId: string,
    pollMs: number,
    format: OutputFormat,
  ): Promise<RolloutStatus> => {
    // With JSON output, stdout carries only the final status and stderr stays quiet.
    let prev: RolloutStatus | undefined;
    const final = await c.waitForOutcome(workflowId, {
      pollMs,
      onStatus: (status) => {
        if (format === 'text')
          for (const line of progressLines(prev, status, now(), { cliName: self() })) out(line);
        prev = status;
      },
    });
    if (format === 'json') out(json(final));
    else out(`\n${renderStatus(final, now(), { color, cliName: self() })}`);
    return final;
  };

  // ------------------------------------------------------------------------------------------- start
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
    .option('--wait', 'wait for the outcome: exit 0 when promoted, 1 when rolled back')
    .option('--interval <duration>', 'poll interval with --wait', '2s')
    .option(
      '--worker-wait <duration>',
      'with --wait: how long to wait for a worker to poll the task queue before giving up (exit 3)',
      '60s',
    )
    .addOption(outputOption())
    .action(
      async (
        opts: TargetOptions & {
          workerWait: string;
          version?: string;
          image?: string;
          plan: string;
          like?: string;
          wait?: boolean;
          strict?: boolean;
          interval: string;
          output: OutputFormat;
        },
        command: Command,
      ) => {
        // Everything that can be checked locally is checked before Temporal is contacted.
        const version = opts.version?.trim() || (opts.image ? versionFromImage(opts.image) : undefined);
        if (!version)
          throw new UsageError('start needs --version or --image (the version is then the image tag)');
        const badVersion = versionProblem(version);
        if (badVersion) throw new UsageError(badVersion);
        const pollMs = parseInterval(opts.interval);
        const workerWaitMs = parseDurationOption('--worker-wait', opts.workerWait);
        const who = identity();
        const like = opts.like?.trim();
        if (like === '') throw new UsageError('--like needs a rollout: namespace/app or a workflow id');
        const planGiven = command.getOptionValueSource('plan') !== 'default';
        // Without --like, everything is checked before Temporal is contacted; --like reads its rollout first.
        const early = like !== undefined ? await connect() : undefined;
        const setup = early && like !== undefined ? await early.setupOf(like) : undefined;
        const nowMs = now().getTime();
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
          version,
          ...(opts.image ? { image: opts.image } : {}),
          requestedBy: who.name,
          cli: options.invocation ?? cliInvocation(),
        });
        if (!prepared.ok) {
          // The plan's warnings come before what only a start refuses (a check its metrics provider cannot measure).
          if (prepared.problems[0].kind !== 'target') warnAbout(loaded);
          throw startProblemError(prepared.problems[0]);
        }
        const { app, namespace } = prepared.start.target;
        warnAbout(loaded);
        const c = early ?? (await connect());
        // A promoted rollout still running on the target hands over: say what happens to it.
        const started = await c.startPrepared(prepared.start, {
          onHandover: (message) => (opts.output === 'json' ? err(`canary: ${message}`) : out(message)),
        });
        const ref = `${namespace}/${app}`;
        if (started.wentBack) {
          if (opts.output === 'json') out(json({ ...started, app, namespace }));
          else {
            out(
              `Went back to ${version} on ${ref}: traffic is on stable, which still ran ${version}; nothing new ` +
                `started (workflow ${started.workflowId})`,
            );
          }
          return;
        }
        const ui = c.uiUrl(started.workflowId, env);
        const pollers = await c.workersPolling();
        const noWorker = pollers === 0;
        // A rollout that cannot work never starts: its first step (the preflight) answers within seconds, and a
        // refusal is this command's answer (exit 2 for the plan or target, 3 for the worker's environment). With
        // --wait the final status says it.
        let afterPreflight: RolloutStatus | undefined;
        if (started.started && !noWorker && !opts.wait) {
          try {
            afterPreflight = await c.awaitPreflight(started.workflowId, { timeoutMs: 60_000 });
          } catch (e) {
            if (!(e instanceof RolloutNotStartedError) || opts.output !== 'json') throw e;
            out(
              json({
                ...started,
                app,
                namespace,
                phase: 'not_started',
                preflight: { state: 'failed', cause: e.kind, findings: e.findings },
              }),
            );
            exitCode = e.kind === 'input' ? EXIT_BAD_INPUT : EXIT_INFRASTRUCTURE;
            return;
          }
        }
        const preflightWarnings = afterPreflight?.preflight?.findings.filter((f) => f.level === 'warn') ?? [];
        if (noWorker) {
          err(
            `canary: warning: no worker polls task queue "${c.taskQueue}" in Temporal namespace "${c.namespace}": ` +
              'the rollout is recorded but will not move until a canary worker polls that queue ' +
              '(start one with the same TEMPORAL_* settings: node dist/worker/main.js, or npm run worker)',
          );
        }
        if (opts.output === 'json' && !opts.wait) {
          out(
            json({
              ...started,
              ...(afterPreflight?.preflight ? { preflight: afterPreflight.preflight } : {}),
              app,
              namespace,
              target: prepared.start.target,
              ...(opts.image ? { image: opts.image } : {}),
              plan: loaded.source,
              requestedBy: who.name,
              ...(pollers !== undefined ? { workersPolling: pollers } : {}),
              ...(ui ? { uiUrl: ui } : {}),
            }),
          );
        } else if (opts.output === 'text') {
          out(
            started.started
              ? `Started rollout of ${version} to ${ref} (workflow ${started.workflowId}, run ${started.runId})`
              : `A rollout of ${version} to ${ref} is already running (workflow ${started.workflowId}, run ${started.runId}); not started again`,
          );
          out(`  Plan:         ${loaded.source}: ${describePlan(loaded.plan)}`);
          out(`  Target:       ${describeTarget(prepared.start.target)}`);
          out(`  Holds total:  ${formatDuration(totalHoldMs(loaded.plan))} (approval waits not included)`);
          out(`  Requested by: ${describeIdentity(who)}`);
          if (afterPreflight?.preflight?.state === 'passed') {
            out(
              `  Preflight:    passed${afterPreflight.preflight.tookMs !== undefined ? ` in ${afterPreflight.preflight.tookMs} ms` : ''}` +
                (preflightWarnings.length > 0 ? `, ${preflightWarnings.length} warning(s):` : ''),
            );
            for (const f of preflightWarnings) out(`    - ${f.path ? `${f.path}: ` : ''}${f.message}`);
          } else if (started.started && !noWorker) {
            out('  Preflight:    still running; follow the rollout to see its verdict');
          }
          if (ui) out(`  Temporal UI:  ${ui}`);
          if (!opts.wait) out(`  Follow:       ${self()} status ${ref} --watch`);
        }
        if (opts.wait && noWorker) {
          const deadline = Date.now() + workerWaitMs;
          let seen = false;
          while (!seen && Date.now() < deadline) {
            await new Promise((r) => setTimeout(r, Math.min(1000, Math.max(1, deadline - Date.now()))));
            seen = ((await c.workersPolling()) ?? 1) > 0;
          }
          if (!seen) {
            throw new InfrastructureError(
              `no worker polled task queue "${c.taskQueue}" within ${formatDuration(workerWaitMs)}: the rollout ` +
                `${started.workflowId} is recorded and starts when a worker polls that queue; to drop it: ` +
                `${self()} abort ${ref} --reason "no worker"`,
            );
          }
        }
        if (opts.wait) {
          const final = await follow(c, started.workflowId, pollMs, opts.output);
          exitCode = exitCodeForStatus(final);
        }
      },
    );

  // ---------------------------------------------------------------------------------------- validate
  program
    .command('validate')
    .description(
      'check a plan (and its target) offline, exactly as start does before contacting Temporal; never connects',
    )
    .requiredOption('--plan <file|preset>', 'plan file (YAML/JSON) or preset name')
    .addOption(targetFileOption())
    .option('--app <name>', "application (default: the target's app, else its workload name)")
    .option('--namespace <namespace>', "target namespace (default: the target's, else default)")
    .addOption(workloadOption())
    .addOption(containerOption())
    .addOption(routerOption())
    .addOption(routerOptOption())
    .addOption(strictOption())
    .addOption(outputOption())
    .action(
      (
        opts: TargetOptions & {
          plan: string;
          strict?: boolean;
          output: OutputFormat;
        },
      ) => {
        const asJson = opts.output === 'json';
        const targetGiven = (fromPlan?: TargetSpec): boolean =>
          fromPlan !== undefined ||
          [opts.target, opts.app, opts.namespace, opts.workload, opts.container, opts.router].some(
            (v) => v !== undefined,
          ) ||
          Boolean(opts.routerOpt?.length);
        const invalid = (problems: InputProblem[], warnings: InputProblem[]): void => {
          out(json({ valid: false, problems, warnings }));
          exitCode = EXIT_BAD_INPUT;
        };

        let loaded: ValidatedPlan;
        try {
          loaded = loadAndValidatePlan(opts.plan, { strict: Boolean(opts.strict), nowMs: now().getTime() });
        } catch (e) {
          if (!asJson || !(e instanceof PlanInvalidError)) throw e; // the same messages as start
          // List the target's problems too, so one run shows everything to fix.
          const problems: InputProblem[] = [...e.problems];
          try {
            const fromPlan = loadPlan(opts.plan).target;
            if (targetGiven(fromPlan)) {
              const checked = checkStartTarget(undefined, targetFromOptions(opts, fromPlan));
              if (!checked.ok) problems.push(...underTarget(checked.problems[0].problems));
            }
          } catch {
            // A target that cannot even be read is reported once the plan is fixed.
          }
          return invalid(problems, e.warnings);
        }
        if (!asJson) warnAbout(loaded);

        if (!targetGiven(loaded.target)) {
          // No target anywhere: start takes it from its flags and the worker's defaults, so only the plan counts.
          if (asJson) {
            out(json({ valid: true, plan: loaded.plan, warnings: loaded.warnings }));
          } else {
            out(`Plan ${loaded.source} is valid: ${describePlan(loaded.plan)}`);
            out(
              "Target: none given; start takes it from its flags (--app, --target, ...) and the worker's defaults",
            );
          }
          return;
        }
        // The target, and the plan as the target's metrics provider can measure it, as start checks them.
        const checked = checkStartTarget(
          loaded.plan,
          targetFromOptions(opts, loaded.target),
          opts.target ?? loaded.source,
        );
        if (!checked.ok) {
          const [problem] = checked.problems;
          if (problem.kind === 'target') {
            if (asJson) return invalid(underTarget(problem.problems), loaded.warnings);
            throw startProblemError(problem);
          }
          if (asJson) return invalid(problem.problems, loaded.warnings);
          throw new PlanInvalidError(problem.problems, loaded.source);
        }
        if (asJson) {
          out(json({ valid: true, plan: loaded.plan, target: checked.target, warnings: loaded.warnings }));
        } else {
          out(`Plan ${loaded.source} is valid: ${describePlan(loaded.plan)}`);
          out(`Target: ${describeTarget(checked.target)}`);
        }
      },
    );

  // ---------------------------------------------------------------------------------------- backtest
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
    .action(
      async (
        opts: TargetOptions & {
          plan: string;
          from: string;
          to: string;
          version?: string;
          stableVersion?: string;
          strict?: boolean;
          output: OutputFormat;
        },
      ) => {
        const input = <T>(step: () => T): T => {
          try {
            return step();
          } catch (e) {
            if (e instanceof BacktestInputError) throw new UsageError(e.message);
            throw e;
          }
        };
        const nowMs = now().getTime();
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
        warnAbout(loaded);
        const fromMs = input(() => parseTime('--from', opts.from, nowMs));
        const toMs = input(() => parseTime('--to', opts.to, nowMs));
        input(() => checkRange(loaded.plan, fromMs, toMs, nowMs));
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
        const plan = loaded.plan;
        const checks = plan.analysis.rules ?? shortFormMeasureChecks(plan);
        // A plan without checks measures nothing: time alone walks it, and no Prometheus is needed.
        // The providers (and through them the Kubernetes client) load here, not with every command.
        const { prometheusMeasure } =
          checks.length > 0 ? await import('./backtest-prometheus') : { prometheusMeasure: undefined };
        const source = prometheusMeasure
          ? input(() => prometheusMeasure(checked.target, checks, versions, env))
          : undefined;
        const result = await runBacktest({
          plan,
          fromMs,
          toMs,
          measure: source?.measure ?? (async () => ({})),
        });
        const target = source?.target ?? checked.target;
        if (opts.output === 'json') {
          out(
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
          out(
            renderBacktest(result, {
              planSource: loaded.source,
              plan,
              target,
              ...(source ? { prometheus: source.url } : {}),
            }),
          );
        }
      },
    );

  // ------------------------------------------------------------------------------------------ status
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
      const c = await connect();
      const workflowId = await c.locate(ref);
      if (!opts.watch) {
        const status = await c.status(workflowId);
        out(opts.output === 'json' ? json(status) : renderStatus(status, now(), { color, cliName: self() }));
        return;
      }
      let prev: RolloutStatus | undefined;
      await c.waitForOutcome(workflowId, {
        pollMs,
        onStatus: (status) => {
          if (opts.output === 'json') {
            // One JSON document per line, only when something changed.
            if (JSON.stringify(prev) !== JSON.stringify(status)) out(JSON.stringify(status));
          } else if (stdout.isTTY) {
            stdout.write(`\u001b[2J\u001b[H${renderStatus(status, now(), { color, cliName: self() })}\n`);
          } else if (!prev) {
            out(renderStatus(status, now(), { cliName: self() }));
          } else {
            for (const line of progressLines(prev, status, now(), { cliName: self() })) out(line);
          }
          prev = status;
        },
      });
    });

  // ----------------------------------------------------------------------------------------- approve
  program
    .command('approve')
    .description('approve the approval gate the rollout waits at')
    .argument('<id>', 'workflow id or namespace/app')
    .option('--stage <n>', 'the stage you approve (refused when another stage is waiting)')
    .option('--comment <text>', 'recorded with the approval')
    .addOption(outputOption())
    .action(async (ref: string, opts: { stage?: string; comment?: string; output: OutputFormat }) => {
      resolveRolloutId(ref); // a malformed reference is refused before connecting
      const stage = opts.stage !== undefined ? parseStage(opts.stage) : undefined;
      const who = identity();
      const c = await connect();
      const workflowId = await c.locate(ref);
      const record = await c.approve(workflowId, {
        identity: who.name,
        ...(stage !== undefined ? { stage } : {}),
        ...(opts.comment ? { comment: opts.comment } : {}),
      });
      out(
        opts.output === 'json'
          ? json(record)
          : record.promotion
            ? `Approved the promotion of ${workflowId} (after stage ${record.stage}) as ${record.by}`
            : `Approved stage ${record.stage} of ${workflowId} as ${record.by}`,
      );
    });

  // ------------------------------------------------------------------------------------------- abort
  program
    .command('abort')
    .description('roll back now: traffic returns to stable and the canary is scaled down')
    .argument('<id>', 'workflow id or namespace/app')
    .requiredOption('--reason <text>', 'why (recorded and alerted)')
    .addOption(outputOption())
    .action(async (ref: string, opts: { reason: string; output: OutputFormat }) => {
      resolveRolloutId(ref); // a malformed reference is refused before connecting
      if (opts.reason.trim() === '') throw new UsageError('--reason must not be empty');
      const who = identity();
      const c = await connect();
      const workflowId = await c.locate(ref);
      const result = await c.abort(workflowId, { reason: opts.reason, identity: who.name });
      out(
        opts.output === 'json'
          ? json({ ...result, by: who.name, reason: opts.reason })
          : result.state === 'already_rolled_back'
            ? `${workflowId} is already rolled back${result.reason ? ` (${result.reason})` : ''}; nothing to abort`
            : result.state === 'already_rolling_back'
              ? `${workflowId} is already rolling back${result.reason ? ` (${result.reason})` : ''}` +
                (result.retrying
                  ? `, stuck: "${result.retrying.step}" keeps failing (${result.retrying.error}). An abort cannot help; ` +
                    `fix what the step needs, or once all traffic is on stable (moved by hand): ` +
                    (result.retrying.resolve ??
                      `${self()} resolve ${workflowId} --confirm-traffic-restored --reason "what was done"`)
                  : `. Follow: ${self()} status ${workflowId} --watch`)
              : result.state === 'unconfirmed'
                ? `Abort sent to ${workflowId} by ${who.name}, but no worker answered: the rollout rolls back as soon as a worker polls its task queue. Follow: ${self()} status ${workflowId} --watch`
                : `Abort requested for ${workflowId} by ${who.name}; it rolls back to stable. Follow: ${self()} status ${workflowId} --watch`,
      );
    });

  // ------------------------------------------------------------------------------------------- pause
  program
    .command('pause')
    .description('stop the hold timers (traffic stays where it is)')
    .argument('<id>', 'workflow id or namespace/app')
    .option('--reason <text>', 'why (alerted)')
    .addOption(outputOption())
    .action(async (ref: string, opts: { reason?: string; output: OutputFormat }) => {
      resolveRolloutId(ref); // a malformed reference is refused before connecting
      const who = identity();
      const c = await connect();
      const workflowId = await c.locate(ref);
      const ack = await c.pause(workflowId, {
        identity: who.name,
        ...(opts.reason ? { reason: opts.reason } : {}),
      });
      out(
        opts.output === 'json'
          ? json({ workflowId, paused: ack, ...(opts.reason ? { reason: opts.reason } : {}) })
          : `Paused ${workflowId} at stage ${ack.stage} (by ${ack.by}); the hold timer is stopped. Resume: ${self()} resume ${workflowId}`,
      );
    });

  // ------------------------------------------------------------------------------------------ resume
  program
    .command('resume')
    .description('resume a paused rollout')
    .argument('<id>', 'workflow id or namespace/app')
    .addOption(outputOption())
    .action(async (ref: string, opts: { output: OutputFormat }) => {
      resolveRolloutId(ref); // a malformed reference is refused before connecting
      const who = identity();
      const c = await connect();
      const workflowId = await c.locate(ref);
      const ack = await c.resume(workflowId, { identity: who.name });
      out(
        opts.output === 'json'
          ? json({ workflowId, resumed: ack })
          : `Resumed ${workflowId} at stage ${ack.stage} (by ${ack.by})`,
      );
    });

  // ----------------------------------------------------------------------------------------- promote
  program
    .command('promote')
    .description(
      "skip the remaining stages and promote now (with --end-soak: finish a promoted rollout's soak now)",
    )
    .argument('<id>', 'workflow id or namespace/app')
    .option('--comment <text>', 'recorded with the promotion')
    .option(
      '--end-soak',
      'during the soak after a promotion (the previous version still runs): stable takes the new version now',
    )
    .addOption(outputOption())
    .action(async (ref: string, opts: { comment?: string; endSoak?: boolean; output: OutputFormat }) => {
      resolveRolloutId(ref); // a malformed reference is refused before connecting
      const who = identity();
      const c = await connect();
      const workflowId = await c.locate(ref);
      const ack = await c.promote(workflowId, {
        identity: who.name,
        ...(opts.comment ? { comment: opts.comment } : {}),
        ...(opts.endSoak ? { endSoak: true } : {}),
      });
      out(
        opts.output === 'json'
          ? json({ workflowId, ...ack, by: who.name, ...(opts.endSoak ? { endSoak: true } : {}) })
          : opts.endSoak
            ? `The soak of ${workflowId} ends now (by ${who.name}): stable takes the new version and the canary goes. Follow: ${self()} status ${workflowId} --watch`
            : `Promotion of ${workflowId} accepted from stage ${ack.fromStage} (by ${who.name}). Follow: ${self()} status ${workflowId} --watch`,
      );
    });

  // ----------------------------------------------------------------------------------------- resolve
  program
    .command('resolve')
    .description(
      'end a rollback stuck on a step that keeps failing, once you have put all traffic on stable by hand',
    )
    .argument('<id>', 'workflow id or namespace/app')
    .requiredOption('--reason <text>', 'what was done by hand (recorded and alerted)')
    .option(
      '--confirm-traffic-restored',
      'required: you have checked that all traffic is on stable (the rollout cannot, its step keeps failing)',
    )
    .addOption(outputOption())
    .action(
      async (
        ref: string,
        opts: { reason: string; confirmTrafficRestored?: boolean; output: OutputFormat },
      ) => {
        resolveRolloutId(ref); // a malformed reference is refused before connecting
        if (opts.reason.trim() === '') throw new UsageError('--reason must not be empty');
        if (!opts.confirmTrafficRestored) {
          throw new UsageError(
            'resolve needs --confirm-traffic-restored: check by hand that all traffic is on stable first; the rollout then ends as rolled back',
          );
        }
        const who = identity();
        const c = await connect();
        const workflowId = await c.locate(ref);
        const record = await c.resolve(workflowId, {
          identity: who.name,
          reason: opts.reason,
          confirmTrafficRestored: true,
        });
        out(
          opts.output === 'json'
            ? json({ workflowId, resolved: record })
            : `Resolved ${workflowId} by hand (by ${record.by}${record.step ? `; "${record.step}" kept failing` : ''}): it ends as rolled back. Follow: ${self()} status ${workflowId} --watch`,
        );
      },
    );

  // -------------------------------------------------------------------------------------------- list
  program
    .command('list')
    .description('list rollouts, newest first')
    .option('--app <name>', 'only this application')
    .option('--namespace <namespace>', 'only this target namespace')
    .addOption(new Option('--phase <phase>', 'only rollouts in this phase').choices(PHASES))
    .option('--running', 'only running rollouts')
    .option('--limit <n>', 'at most this many rows', '50')
    .addOption(outputOption())
    .action(
      async (opts: {
        app?: string;
        namespace?: string;
        phase?: Phase;
        running?: boolean;
        limit: string;
        output: OutputFormat;
      }) => {
        const limit = Number(opts.limit);
        if (!Number.isSafeInteger(limit) || limit < 1) {
          throw new UsageError(`--limit must be a positive integer, got "${opts.limit}"`);
        }
        const c = await connect();
        const rows = await c.list({
          ...(opts.app ? { app: opts.app } : {}),
          ...(opts.namespace ? { namespace: opts.namespace } : {}),
          ...(opts.phase ? { phase: opts.phase } : {}),
          ...(opts.running ? { running: true } : {}),
          limit,
        });
        out(opts.output === 'json' ? json(rows) : renderList(rows, now()));
      },
    );

  try {
    await program.parseAsync(argv, { from: 'user' });
    return exitCode;
  } catch (e) {
    if (validateJson) {
      // validate --output json: every refusal is a document on stdout, whatever refused it.
      const problems = problemsOf(e, commanderMessage);
      if (problems) {
        out(json({ valid: false, problems, warnings: e instanceof PlanInvalidError ? e.warnings : [] }));
        return EXIT_BAD_INPUT;
      }
    }
    return reportError(e, err);
  } finally {
    if (client) await client.close().catch(() => undefined);
  }
}

/** The options that say a target, shared by start, validate and backtest. */
export interface TargetOptions {
  app?: string;
  namespace?: string;
  target?: string;
  workload?: string;
  container?: string;
  router?: string;
  routerOpt?: string[];
}

/**
 * The target from, in rising precedence: a `target:` in the plan file, `--target FILE`, then the flags.
 * `--router` replaces the router; `--router-opt key=value` sets one of its settings (comma lists for `routes`).
 */
export function targetFromOptions(opts: TargetOptions, fromPlan?: TargetSpec): TargetSpec {
  const base: TargetSpec = structuredClone(opts.target ? loadTargetFile(opts.target) : (fromPlan ?? {}));
  if (typeof base !== 'object' || base === null || Array.isArray(base)) return base;
  const t: TargetSpec = { ...base };
  if (opts.app !== undefined) t.app = opts.app.trim();
  if (opts.namespace !== undefined) t.namespace = opts.namespace.trim();
  if (opts.workload !== undefined || opts.container !== undefined) {
    t.workload = {
      ...(t.workload ?? {}),
      ...(opts.workload !== undefined ? { name: opts.workload.trim() } : {}),
      ...(opts.container !== undefined ? { container: opts.container.trim() } : {}),
    };
  }
  if (opts.router !== undefined) t.traffic = { [opts.router]: {} };
  if (opts.routerOpt?.length) {
    const keys = Object.keys(t.traffic ?? {});
    if (keys.length !== 1) {
      throw new UsageError('--router-opt needs a router: pass --router, or a target that names one');
    }
    const settings: Record<string, unknown> = { ...((t.traffic![keys[0]] as object | undefined) ?? {}) };
    for (const pair of opts.routerOpt) {
      const eq = pair.indexOf('=');
      if (eq <= 0) throw new UsageError(`--router-opt takes key=value, got "${pair}"`);
      const key = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      if (value === '') {
        // `routes=` would read as "no routes named", which the router takes as every route: never by accident.
        throw new UsageError(
          key === 'routes'
            ? '--router-opt routes= names no route; name the routes to shift (routes=primary,secondary), or leave ' +
                '--router-opt routes out to shift every HTTP route'
            : `--router-opt ${key}= has no value; give ${key}=VALUE, or leave it out for the router's default`,
        );
      }
      settings[key] = routerOptValue(key, value);
    }
    t.traffic = { [keys[0]]: settings };
  }
  return t;
}

/** Flag text to the setting's type: lists for routes, numbers for rule and port, {name, value} for header. */
function routerOptValue(key: string, value: string): unknown {
  if (key === 'routes') return value.split(',').map((r) => r.trim());
  if (key === 'rule' || key === 'port') return /^\d+$/.test(value) ? Number(value) : value;
  if (key === 'header') {
    const colon = value.indexOf(':');
    return colon < 0
      ? { name: value }
      : { name: value.slice(0, colon).trim(), value: value.slice(colon + 1).trim() };
  }
  return value;
}

/** Target problems with their paths under `target`, as validate --output json lists them beside the plan's. */
function underTarget(problems: readonly InputProblem[]): InputProblem[] {
  return problems.map((p) => ({ ...p, path: p.path === '' ? 'target' : `target.${p.path}` }));
}

/**
 * The problems a refusal stands for, for validate --output json; undefined for what is not bad input (help, an
 * unexpected failure), which keeps its usual report.
 */
export function problemsOf(e: unknown, commanderMessage = ''): InputProblem[] | undefined {
  if (e instanceof CommanderError) {
    return e.exitCode === 0 ? undefined : [{ path: '', message: commanderMessage || e.message }];
  }
  if (e instanceof PlanInvalidError) return e.problems;
  if (e instanceof TargetInvalidError) return underTarget(e.problems);
  if (e instanceof PlanFileError) return [{ path: e.what === 'target' ? 'target' : '', message: e.message }];
  if (e instanceof UsageError || e instanceof IdentityError || e instanceof RolloutInputError) {
    return [{ path: '', message: e.message }];
  }
  return undefined;
}

/** Prints what went wrong and how to fix it; returns the exit code. */
export function reportError(e: unknown, err: (text: string) => void): number {
  if (e instanceof CommanderError) {
    // Commander already printed its message (and the help hint) through configureOutput.
    return e.exitCode === 0 ? EXIT_OK : EXIT_BAD_INPUT;
  }
  if (e instanceof PlanInvalidError) {
    err(`canary: error: ${e.source}: ${e.message}`);
    return EXIT_BAD_INPUT;
  }
  if (
    e instanceof PlanFileError ||
    e instanceof UsageError ||
    e instanceof IdentityError ||
    e instanceof RolloutInputError ||
    e instanceof TargetInvalidError
  ) {
    err(`canary: error: ${e.message}`);
    return EXIT_BAD_INPUT;
  }
  if (e instanceof RolloutNotFoundError || e instanceof RolloutConflictError) {
    err(`canary: error: ${e.message}`);
    return EXIT_BAD_INPUT;
  }
  if (e instanceof RolloutNotStartedError) {
    err(`canary: error: ${e.message}`);
    return e.kind === 'input' ? EXIT_BAD_INPUT : EXIT_INFRASTRUCTURE;
  }
  if (e instanceof RolloutRejectedError) {
    err(`canary: error: ${e.operation} rejected by ${e.workflowId}: ${e.reason}`);
    return EXIT_BAD_INPUT;
  }
  if (e instanceof ConfigError) {
    err(
      `canary: error: ${e.message}\n(set the TEMPORAL_* variables, or pass --address, --temporal-namespace, --task-queue)`,
    );
    return EXIT_BAD_INPUT;
  }
  if (e instanceof InfrastructureError) {
    err(`canary: error: ${e.message}`);
    return EXIT_INFRASTRUCTURE;
  }
  const message = e instanceof Error ? (e.stack ?? e.message) : String(e);
  err(`canary: unexpected error: ${message}`);
  return EXIT_INFRASTRUCTURE;
}

function flush(stream: NodeJS.WriteStream): Promise<void> {
  if (stream.destroyed || stream.writableEnded) return Promise.resolve();
  return new Promise((resolve) => stream.write('', () => resolve()));
}

/**
 * A reader that stops reading (`canary --help | head -1`, a closed terminal) is no error of ours: once stdout or
 * stderr reports EPIPE, whatever else is written to it is dropped, and the CLI ends as it would have, without a
 * stack trace. Other stream errors stay errors.
 */
export function quietOnClosedPipe(stream: NodeJS.WritableStream): void {
  stream.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE' || e.code === 'ERR_STREAM_DESTROYED') return;
    throw e;
  });
}

if (require.main === module) {
  quietOnClosedPipe(process.stdout);
  quietOnClosedPipe(process.stderr);
  void (async () => {
    let code: number;
    try {
      code = await main(process.argv.slice(2));
    } catch (e) {
      process.stderr.write(`canary: unexpected error: ${String(e)}\n`);
      code = EXIT_INFRASTRUCTURE;
    }
    process.exitCode = code;
    // Exit even if a library left a handle open (a gRPC channel retrying a dead address...).
    await Promise.all([flush(process.stdout), flush(process.stderr)]);
    process.exit(code);
  })();
}
