// `npm run demo:example -- --plan examples/004-nginx-ingress.yaml [--faulty]`: one example plan, run for real before
// you trust it. Starts a Temporal dev server with its Web UI, a local kube-apiserver (no kubelet: a simulator makes
// Deployments available), a local Prometheus and a worker process; creates what the example's target names; serves
// every series its checks read, following the live router weight; compresses the plan to about a minute (deployment
// windows lifted, approval gates approved by the demo unless --approve-by-hand); and narrates the rollout of v2.
// `--faulty` makes v2 unhealthy, so it rolls back. (`npm run demo` stays the light one: no Kubernetes, no Prometheus.)
// Exit codes: 0 promoted, 1 rolled back, 2 bad flags or an example the preflight refuses for its plan or target,
// 3 infrastructure (a server that won't start, a refusal for the worker's environment), 130 interrupted.
import * as net from 'node:net';
import { Command, CommanderError, InvalidArgumentError } from 'commander';
import { ExampleInputError, prepareExample, runExample, type ExampleResult } from '../demo/examples/run';
import { startExampleStack, type ExampleStack } from '../demo/examples/stack';

export const EXIT_PROMOTED = 0;
export const EXIT_ROLLED_BACK = 1;
export const EXIT_BAD_INPUT = 2;
export const EXIT_INFRASTRUCTURE = 3;
export const EXIT_INTERRUPTED = 130;

const DEFAULT_PORT = 7233;
const UI_PORT_OFFSET = 1000;

export interface DemoExampleOptions {
  plan: string;
  faulty: boolean;
  approveByHand: boolean;
  port: number;
  uiPort: number;
  exitAtEnd: boolean;
  namespace?: string;
  targetMs?: number;
}

class Interrupted extends Error {}
class FlagError extends Error {}

const port = (flag: string) => (value: string) => {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || n < 1 || n > 65535) {
    throw new InvalidArgumentError(`${flag} takes a port number from 1 to 65535, got "${value}".`);
  }
  return n;
};

export function parseArgs(
  argv: string[],
  output: { out: (s: string) => void; err: (s: string) => void },
): DemoExampleOptions {
  const program = new Command('demo:example')
    .description(
      'Run an example plan for real: a local kube-apiserver, Prometheus, a Temporal dev server with its Web UI and a worker; the plan compressed to about a minute.',
    )
    .exitOverride()
    .configureOutput({
      writeOut: output.out,
      writeErr: output.err,
      outputError: (s, write) => write(`demo:example: ${s}`),
    })
    .showHelpAfterError('(npm run demo:example -- --help lists the options)')
    .requiredOption(
      '--plan <file>',
      'the example plan (with its target:), e.g. examples/004-nginx-ingress.yaml',
    )
    .option(
      '--faulty',
      'v2 is unhealthy (errors, latency, and whatever else its checks read), so it rolls back',
    )
    .option('--approve-by-hand', 'leave approval gates to you (the demo prints the canary approve command)')
    .option('--namespace <name>', "run in this namespace instead of the target's own")
    .option('--port <port>', 'Temporal gRPC port', port('--port'), DEFAULT_PORT)
    .option('--ui-port <port>', 'Temporal Web UI port (default: --port + 1000, i.e. 8233)', port('--ui-port'))
    .option(
      '--exit',
      'exit when the rollout ends (default when stdout is not a terminal; on a terminal the servers stay up until Ctrl-C)',
    )
    .option('--duration <seconds>', 'what the compressed holds and soak add up to (default 60)', (v) => {
      const n = Number(v);
      if (!(n >= 1 && n <= 3600))
        throw new InvalidArgumentError(`--duration takes 1..3600 seconds, got "${v}".`);
      return n;
    })
    .addHelpText(
      'after',
      `
Exit codes: ${EXIT_PROMOTED} promoted, ${EXIT_ROLLED_BACK} rolled back, ${EXIT_BAD_INPUT} bad flags or refused for the plan or target, ${EXIT_INFRASTRUCTURE} infrastructure.
Examples:
  npm run demo:example -- --plan examples/004-nginx-ingress.yaml            # promoted
  npm run demo:example -- --plan examples/001-flagger.yaml --faulty         # rolled back
  npm run demo:example -- --plan examples/002-general-istio.yaml --approve-by-hand`,
    )
    .allowExcessArguments(false);
  program.parse(argv, { from: 'user' });
  const o = program.opts<{
    plan: string;
    faulty?: boolean;
    approveByHand?: boolean;
    namespace?: string;
    port: number;
    uiPort?: number;
    exit?: boolean;
    duration?: number;
  }>();
  const uiPort = o.uiPort ?? o.port + UI_PORT_OFFSET;
  if (uiPort > 65535) throw new FlagError(`--port ${o.port} leaves no room for the UI: pass --ui-port`);
  if (uiPort === o.port) throw new FlagError('--port and --ui-port must differ');
  return {
    plan: o.plan,
    faulty: o.faulty ?? false,
    approveByHand: o.approveByHand ?? false,
    port: o.port,
    uiPort,
    exitAtEnd: o.exit ?? !process.stdout.isTTY,
    ...(o.namespace ? { namespace: o.namespace } : {}),
    ...(o.duration !== undefined ? { targetMs: o.duration * 1000 } : {}),
  };
}

/** 0 promoted, 1 rolled back, 2 refused for the plan or target, 3 refused for the worker's environment (or failed). */
export function exitCodeFor(result: Pick<ExampleResult, 'outcome' | 'refused'>): number {
  switch (result.outcome) {
    case 'promoted':
      return EXIT_PROMOTED;
    case 'rolled_back':
      return EXIT_ROLLED_BACK;
    case 'not_started':
      return result.refused?.kind === 'input' ? EXIT_BAD_INPUT : EXIT_INFRASTRUCTURE;
    default:
      return EXIT_INFRASTRUCTURE;
  }
}

function portFree(p: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen(p, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

export async function runDemoExample(o: DemoExampleOptions): Promise<number> {
  const say = (line = ''): void => {
    process.stdout.write(`${line}\n`);
  };
  const interrupt = new AbortController();
  let signals = 0;
  const onSignal = (sig: NodeJS.Signals): void => {
    if (++signals > 1) {
      process.stderr.write(`demo:example: ${sig} again, exiting without cleaning up\n`);
      process.exit(EXIT_INTERRUPTED);
    }
    say(`\n${sig === 'SIGINT' ? 'Ctrl-C' : sig}: stopping the worker and the servers...`);
    interrupt.abort(new Interrupted(sig));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  let stack: ExampleStack | undefined;
  try {
    // The example first: a plan that cannot run is said before any server starts.
    try {
      prepareExample(o.plan, o);
    } catch (err) {
      if (err instanceof ExampleInputError) {
        process.stderr.write(`demo:example: ${err.message}\n`);
        return EXIT_BAD_INPUT;
      }
      throw err;
    }
    const taken: string[] = [];
    for (const [what, p] of [
      ['--port', o.port],
      ['--ui-port', o.uiPort],
    ] as const) {
      if (!(await portFree(p))) taken.push(`${what} ${p}`);
    }
    if (taken.length > 0) {
      process.stderr.write(
        `demo:example: ${taken.join(' and ')} ${taken.length === 1 ? 'is' : 'are'} in use (another Temporal dev server, or a demo still running?); stop it or pass other ports\n`,
      );
      return EXIT_INFRASTRUCTURE;
    }

    say(`Example ${o.plan}${o.faulty ? ' (faulty v2)' : ''}: starting a local stack...`);
    try {
      stack = await startExampleStack({
        port: o.port,
        uiPort: o.uiPort,
        ui: true,
        taskQueue: 'canary-rollouts',
        say,
      });
    } catch (err) {
      if (interrupt.signal.aborted) return EXIT_INTERRUPTED;
      process.stderr.write(`demo:example: the local stack did not start:\n${(err as Error).message}\n`);
      return EXIT_INFRASTRUCTURE;
    }
    say();
    const result = await runExample(stack, {
      file: o.plan,
      faulty: o.faulty,
      approveByHand: o.approveByHand,
      ...(o.namespace ? { namespace: o.namespace } : {}),
      ...(o.targetMs !== undefined ? { targetMs: o.targetMs } : {}),
      say,
      signal: interrupt.signal,
    });
    const code = exitCodeFor(result);
    const left = await result.fixture.weights();
    const canary = await result.fixture.canaryDeployment();
    say(
      `Left behind in ${result.namespace}: canary at ${left.canary}% on the router, ` +
        (canary
          ? `canary Deployment ${canary.metadata?.name} at ${canary.spec?.replicas ?? 0} replicas`
          : 'no canary Deployment') +
        `, stable runs ${(await result.fixture.stableDeployment()).spec?.template?.metadata?.labels?.[result.fixture.versionLabel] ?? '?'}.`,
    );
    if (!o.exitAtEnd) {
      say();
      say(
        `The Temporal UI (${stack.uiUrl}), the API server and the worker keep running so you can look around.`,
      );
      say(`  ${stack.cli} status ${result.namespace}/${result.app}`);
      say(
        `  KUBECONFIG=${stack.kube.kubeconfigFile('admin')} kubectl -n ${result.namespace} get deploy,svc,ingress`,
      );
      say('Press Ctrl-C to stop everything.');
      await new Promise<void>((resolve) =>
        interrupt.signal.addEventListener('abort', () => resolve(), { once: true }),
      );
    }
    return code;
  } catch (err) {
    if (interrupt.signal.aborted) return EXIT_INTERRUPTED;
    if (err instanceof ExampleInputError) {
      process.stderr.write(`demo:example: ${err.message}\n`);
      return EXIT_BAD_INPUT;
    }
    process.stderr.write(
      `demo:example: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
    );
    if (stack) process.stderr.write(`--- worker (tail) ---\n${stack.worker.output().slice(-4000)}\n`);
    return EXIT_INFRASTRUCTURE;
  } finally {
    if (stack) {
      const t = Date.now();
      await stack.stop();
      say(`Stopped the worker and the servers (${((Date.now() - t) / 1000).toFixed(1)}s).`);
    }
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

export async function main(argv: string[]): Promise<number> {
  let options: DemoExampleOptions;
  try {
    options = parseArgs(argv, {
      out: (s) => process.stdout.write(s),
      err: (s) => process.stderr.write(s),
    });
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : EXIT_BAD_INPUT;
    if (err instanceof FlagError) {
      process.stderr.write(`demo:example: ${err.message}\n`);
      return EXIT_BAD_INPUT;
    }
    throw err;
  }
  return runDemoExample(options);
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => process.stdout.write('', () => process.exit(code)),
    (err: unknown) => {
      process.stderr.write(
        `demo:example: unexpected error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
      );
      process.exit(EXIT_INFRASTRUCTURE);
    },
  );
}
