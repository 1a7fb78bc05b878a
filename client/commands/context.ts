// What every command is given: where to write, the clock, the connection to Temporal (made once, on demand), who is
// acting, and how to spell this CLI in the hints it prints.
import { loadConnectionConfig, type ConnectionConfig } from '../../connection/config';
import type { RolloutStatus } from '../../workflows/types';
import { resolveIdentity, type Identity } from '../identity';
import type { ValidatedPlan } from '../plan-file';
import { signerFrom, type Signer } from '../sign';
import { progressLines, renderStatus } from '../render';
import { RolloutClient } from '../rollout-client';
import { cliInvocation, shellWord } from './invocation';
import { json, parseDurationOption, type OutputFormat } from './options';
import { EXIT_OK } from './usage';

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

/** The options every command takes, before its name. */
export interface GlobalOptions {
  connectTimeout?: string;
  address?: string;
  temporalNamespace?: string;
  taskQueue?: string;
  as?: string;
  signKey?: string;
  idToken?: string;
}

export interface CliContext {
  readonly env: NodeJS.ProcessEnv;
  readonly stdout: OutputStream;
  readonly stderr: OutputStream;
  /** ANSI colours: stdout is a terminal, and neither NO_COLOR nor TERM=dumb says otherwise. */
  readonly color: boolean;
  now(): Date;
  /** A line on stdout (a newline is added when missing). */
  out(text: string): void;
  /** A line on stderr. */
  err(text: string): void;
  /** How this CLI was run, without the global options (recorded with a rollout). */
  invocation(): string;
  /** This CLI as a pasted command must spell it: its invocation plus the global options that point it somewhere. */
  self(): string;
  /** The client, connected on first use with the global options over TEMPORAL_*; main closes it. */
  connect(): Promise<RolloutClient>;
  client: RolloutClient | undefined;
  /** Who is acting (--as, CANARY_IDENTITY, the CI actor, the OS user). */
  identity(): Identity;
  /** How requests are signed (--sign-key, --id-token, CANARY_SIGN_KEY, CANARY_ID_TOKEN); undefined: unsigned. */
  signer(): Signer | undefined;
  /** What a plan may start with but probably should not (`--strict` refuses it), on stderr. */
  warnAbout(loaded: ValidatedPlan): void;
  /** Follows a rollout to its outcome (progress lines in text), then shows its final status. */
  follow(c: RolloutClient, workflowId: string, pollMs: number, format: OutputFormat): Promise<RolloutStatus>;
  /** The exit code main returns when the command completes. */
  exitCode: number;
}

/** The context of one run of the CLI; `globals` reads the global options once commander has parsed them. */
export function createContext(globals: () => GlobalOptions, options: CliOptions): CliContext {
  const stdout: OutputStream = options.stdout ?? process.stdout;
  const stderr: OutputStream = options.stderr ?? process.stderr;
  const env = options.env ?? process.env;
  const now = options.now ?? ((): Date => new Date());
  const line = (stream: OutputStream) => (text: string) => {
    stream.write(text.endsWith('\n') ? text : `${text}\n`);
  };
  const invocation = (): string => options.invocation ?? cliInvocation();

  const connectionConfig = (): ConnectionConfig => {
    const g = globals();
    const overlay: NodeJS.ProcessEnv = { ...env };
    if (g.address !== undefined) overlay.TEMPORAL_ADDRESS = g.address;
    if (g.temporalNamespace !== undefined) overlay.TEMPORAL_NAMESPACE = g.temporalNamespace;
    if (g.taskQueue !== undefined) overlay.TEMPORAL_TASK_QUEUE = g.taskQueue;
    return loadConnectionConfig(overlay);
  };

  const ctx: CliContext = {
    env,
    stdout,
    stderr,
    color: Boolean(stdout.isTTY) && env.NO_COLOR === undefined && env.TERM !== 'dumb',
    now,
    out: line(stdout),
    err: line(stderr),
    invocation,
    self: () => {
      const g = globals();
      const flags = [
        ...(g.address !== undefined ? ['--address', g.address] : []),
        ...(g.temporalNamespace !== undefined ? ['--temporal-namespace', g.temporalNamespace] : []),
        ...(g.taskQueue !== undefined ? ['--task-queue', g.taskQueue] : []),
      ];
      return [invocation(), ...flags.map(shellWord)].join(' ');
    },
    client: undefined,
    connect: async () => {
      const config = connectionConfig();
      const timeoutText = globals().connectTimeout ?? env.CANARY_CONNECT_TIMEOUT?.trim();
      const connectTimeoutMs = timeoutText
        ? parseDurationOption('--connect-timeout', timeoutText)
        : undefined;
      const client = options.connect
        ? await options.connect(config)
        : await RolloutClient.connect(config, connectTimeoutMs === undefined ? {} : { connectTimeoutMs });
      ctx.client = client;
      client.cli = ctx.self();
      return client;
    },
    identity: () => resolveIdentity({ as: globals().as, env }),
    signer: () => signerFrom(globals(), env),
    warnAbout: (loaded) => {
      for (const w of loaded.warnings) ctx.err(`canary: warning: ${loaded.source}: ${w.path}: ${w.message}`);
    },
    follow: (c, workflowId, pollMs, format) => follow(ctx, c, workflowId, pollMs, format),
    exitCode: EXIT_OK,
  };
  return ctx;
}

async function follow(
  ctx: CliContext,
  c: RolloutClient,
  workflowId: string,
  pollMs: number,
  format: OutputFormat,
): Promise<RolloutStatus> {
  // With JSON output, stdout carries only the final status and stderr stays quiet.
  let prev: RolloutStatus | undefined;
  const final = await c.waitForOutcome(workflowId, {
    pollMs,
    onStatus: (status) => {
      if (format === 'text')
        for (const line of progressLines(prev, status, ctx.now(), { cliName: ctx.self() })) ctx.out(line);
      prev = status;
    },
  });
  if (format === 'json') ctx.out(json(final));
  else ctx.out(`\n${renderStatus(final, ctx.now(), { color: ctx.color, cliName: ctx.self() })}`);
  return final;
}
