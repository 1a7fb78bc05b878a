#!/usr/bin/env node
// The `canary` command line: start, follow and steer rollouts from CI or a terminal. This file runs it; each command
// lives in client/commands/ (start.ts, status.ts, ...), with what they share (context.ts, options.ts, report.ts).
import { PlanInvalidError } from './plan-file';
import { createContext, type CliOptions } from './commands/context';
import { packageVersion } from './commands/invocation';
import { json } from './commands/options';
import { createProgram, globalOptions, wantsValidateJson } from './commands/program';
import { problemsOf, reportError } from './commands/report';
import { EXIT_BAD_INPUT, EXIT_INFRASTRUCTURE, EXIT_OK } from './commands/usage';

export {
  EXIT_BAD_INPUT,
  EXIT_CODES,
  EXIT_INFRASTRUCTURE,
  EXIT_OK,
  EXIT_ROLLED_BACK,
  UsageError,
} from './commands/usage';
export type { CliOptions, OutputStream } from './commands/context';
export { cliInvocation, packageVersion } from './commands/invocation';
export { targetFromOptions, type TargetOptions } from './commands/options';
export { wantsValidateJson } from './commands/program';
export { exitCodeForStatus, problemsOf, reportError } from './commands/report';
export { versionFromImage } from './commands/start';

/** Runs the CLI with `argv` (arguments only, no node/script) and returns the exit code. Never exits. */
export async function main(argv: string[], options: CliOptions = {}): Promise<number> {
  const ctx = createContext(() => globalOptions(program), options);
  /** Commander's last error message (an unknown flag, a missing option), for validate --output json. */
  let commanderMessage = '';
  const program = createProgram(ctx, (message) => (commanderMessage = message));

  // `canary --version` (alone: `start --version X` names the version to roll out).
  if (argv.length === 1 && (argv[0] === '--version' || argv[0] === '-V')) {
    ctx.out(packageVersion());
    return EXIT_OK;
  }

  const validateJson = wantsValidateJson(argv);
  try {
    await program.parseAsync(argv, { from: 'user' });
    return ctx.exitCode;
  } catch (e) {
    if (validateJson) {
      // validate --output json: every refusal is a document on stdout, whatever refused it.
      const problems = problemsOf(e, commanderMessage);
      if (problems) {
        ctx.out(json({ valid: false, problems, warnings: e instanceof PlanInvalidError ? e.warnings : [] }));
        return EXIT_BAD_INPUT;
      }
    }
    return reportError(e, ctx.err);
  } finally {
    if (ctx.client) await ctx.client.close().catch(() => undefined);
  }
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
