// The `canary` program: its global options and help, and every command (one file each in this folder).
import { Command } from 'commander';
import { registerAbort } from './abort';
import { registerApprove } from './approve';
import { registerBacktest } from './backtest';
import type { CliContext, GlobalOptions } from './context';
import { registerFleet } from './fleet';
import { registerReport } from './fleet-report';
import { registerFreeze } from './freeze';
import { registerController } from './controller';
import { registerList } from './list';
import { registerPause } from './pause';
import { registerPromote } from './promote';
import { registerRelease } from './release';
import { registerResolve } from './resolve';
import { registerResume } from './resume';
import { registerStart } from './start';
import { registerStatus } from './status';
import { registerSweep } from './sweep';
import { registerUnfreeze } from './unfreeze';
import { EXIT_BAD_INPUT, EXIT_INFRASTRUCTURE, EXIT_OK, EXIT_ROLLED_BACK } from './usage';
import { registerValidate } from './validate';

/** The commands in the order `canary --help` lists them. */
const COMMANDS = [
  registerStart,
  registerValidate,
  registerBacktest,
  registerStatus,
  registerApprove,
  registerAbort,
  registerPause,
  registerResume,
  registerPromote,
  registerResolve,
  registerFreeze,
  registerUnfreeze,
  registerFleet,
  registerSweep,
  registerList,
  registerRelease,
  registerReport,
  registerController,
];

/** The global options that take a value, for finding the command in argv before commander has parsed it. */
const GLOBAL_VALUE_OPTIONS = [
  '--address',
  '--temporal-namespace',
  '--task-queue',
  '--connect-timeout',
  '--as',
  '--sign-key',
  '--id-token',
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

/**
 * The program with every command registered. `onError` is told commander's own error messages (an unknown flag, a
 * missing option), which validate --output json turns into a problem.
 */
export function createProgram(ctx: CliContext, onError: (message: string) => void): Command {
  const program = new Command('canary');
  program
    .description('Durable canary rollouts on Temporal')
    .exitOverride()
    .configureOutput({
      writeOut: (s) => ctx.stdout.write(s),
      writeErr: (s) => ctx.stderr.write(s),
      outputError: (s, write) => {
        onError(s.trim().replace(/^error: /, ''));
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
  CANARY_UI_URL (Temporal Web UI base URL for links), CANARY_IDENTITY, CANARY_CONNECT_TIMEOUT,
  CANARY_SIGN_KEY, CANARY_ID_TOKEN (sign approve, promote, abort, pause, resume and resolve).`,
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
    )
    .option(
      '--sign-key <path>',
      'sign the request with this SSH key (ssh-keygen -Y sign; default CANARY_SIGN_KEY): the worker verifies who you are',
    )
    .option(
      '--id-token <file|->',
      'send this OIDC ID token with the request (default: the token in CANARY_ID_TOKEN)',
    );
  for (const register of COMMANDS) register(program, ctx);
  return program;
}

/** The global options, once parsed. */
export function globalOptions(program: Command): GlobalOptions {
  return program.opts<GlobalOptions>();
}
