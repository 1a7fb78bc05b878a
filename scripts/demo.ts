// `npm run demo`: the whole product on one machine in about a minute and a half. Starts a Temporal dev server with
// its Web UI, the local stack (weighted proxy, stable v1, control API) with steady traffic, and an in-process
// worker, then rolls demo/shop out to v2 on a compressed plan and narrates it. `--faulty` makes v2 fail 8 % of its
// requests, so the analysis fails and the rollout rolls back by itself.
// Exit codes: 0 promoted, 1 rolled back, 2 bad flags, 3 infrastructure (a port taken, a server that won't start).
import { rolloutResult } from '../client/index';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { Runtime, type NativeConnection, type Worker } from '@temporalio/worker';
import { providersFromEnv } from '../activities/factory';
import { DEFAULT_CONTROL_PORT, DEFAULT_PROXY_PORT } from '../demo/stack-main';
import { startLocalStack, type Fault, type LocalStack } from '../demo/stack';
import { startTrafficGenerator, type TrafficGenerator } from '../demo/traffic-generator';
import { createActivities } from '../activities/rollout-activities';
import type { AlertEvent, AlertSink } from '../activities/types';
import { RolloutClient, rolloutUiUrl } from '../client/index';
import { formatTime, progressLines, renderStatus } from '../client/render';
import { startDevServer, type DevServer } from '../demo/dev-server';
import { loadWorkerConfig } from '../worker/config';
import { connectNative } from '../connection/temporal';
import { createRolloutWorker } from '../worker/worker';
import { DurationError, formatDuration, parseDuration } from '../workflows/duration';
import { describePlan, formatProblems, totalHoldMs, validatePlan, type PlanSpec } from '../workflows/plan';
import { rolloutWorkflowId } from '../workflows/api';
import type { RolloutStatus } from '../workflows/types';
import { RolloutLogger } from '../worker/logger';

export const EXIT_PROMOTED = 0;
export const EXIT_ROLLED_BACK = 1;
export const EXIT_BAD_FLAGS = 2;
export const EXIT_INFRASTRUCTURE = 3;
/** Ctrl-C before the rollout ended (the shell convention for SIGINT). */
export const EXIT_INTERRUPTED = 130;

export const DEFAULT_GRPC_PORT = 7233;
/** `temporal server start-dev` puts its UI at the gRPC port + 1000; so does the demo. */
const UI_PORT_OFFSET = 1000;
const HOST = '127.0.0.1';
const TARGET = { namespace: 'demo', app: 'shop' } as const;
const STABLE_VERSION = 'v1';
const CANARY_VERSION = 'v2';
/** What `--faulty` makes v2 fail: well above the plan's 2 % limit, so the first stage already catches it. */
const FAULTY_ERROR_PERCENT = 8;
const TRAFFIC_RPS = 50;
const CLI = 'node dist/client/cli.js';

export interface DemoOptions {
  /** Percent of v2's requests that fail (0 unless --faulty or --error-rate). */
  errorPercent: number;
  port: number;
  uiPort: number;
  proxyPort: number;
  controlPort: number;
  /** Exit once the rollout ends instead of keeping the servers up for the UI. */
  exitAtEnd: boolean;
  hold: string;
  interval: string;
  cleanupDelay: string;
  rps: number;
  /** The flags as given, so that advice about ports can repeat them. */
  argv?: string[];
}

class FlagError extends Error {}

const port = (flag: string) => (value: string) => {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || !Number.isInteger(n) || n < 1 || n > 65535) {
    throw new InvalidArgumentError(`${flag} takes a port number from 1 to 65535, got "${value}".`);
  }
  return n;
};

const duration = (flag: string) => (value: string) => {
  try {
    if (parseDuration(value) <= 0) throw new InvalidArgumentError(`${flag} must be more than 0s.`);
  } catch (err) {
    if (err instanceof DurationError) throw new InvalidArgumentError(`${flag}: ${err.message}.`);
    throw err;
  }
  return value;
};

/** Parses the demo's flags; throws CommanderError (already printed) or FlagError. */
export function parseDemoArgs(
  argv: string[],
  output: { out: (s: string) => void; err: (s: string) => void },
): DemoOptions {
  const program = new Command('demo')
    .description(
      'Start a Temporal dev server with its Web UI, the local stack and a worker, then roll demo/shop out from v1 to v2.',
    )
    .exitOverride()
    .configureOutput({
      writeOut: output.out,
      writeErr: output.err,
      outputError: (s, write) => write(`demo: ${s}`),
    })
    .showHelpAfterError('(npm run demo -- --help lists the options)')
    .option('--faulty', `v2 answers ${FAULTY_ERROR_PERCENT} % errors, so the rollout rolls back by itself`)
    .option('--error-rate <percent>', 'percent of v2 requests that fail (overrides --faulty)', (v) => {
      const n = Number(v);
      if (v.trim() === '' || !Number.isFinite(n) || n < 0 || n > 100) {
        throw new InvalidArgumentError(`--error-rate takes a percent from 0 to 100, got "${v}".`);
      }
      return n;
    })
    .option('--port <port>', 'Temporal gRPC port', port('--port'), DEFAULT_GRPC_PORT)
    .option('--ui-port <port>', 'Temporal Web UI port (default: --port + 1000, i.e. 8233)', port('--ui-port'))
    .option(
      '--proxy-port <port>',
      'local proxy port (the demo app)',
      port('--proxy-port'),
      DEFAULT_PROXY_PORT,
    )
    .option(
      '--control-port <port>',
      'local stack control API port',
      port('--control-port'),
      DEFAULT_CONTROL_PORT,
    )
    .option(
      '--exit',
      'exit when the rollout ends (default when stdout is not a terminal; on a terminal the servers stay up until Ctrl-C)',
    )
    // Shorter plans for tests; not part of the story the demo tells.
    .addOption(
      new Option('--hold <duration>', 'hold of each stage')
        .default('20s')
        .argParser(duration('--hold'))
        .hideHelp(),
    )
    .addOption(
      new Option('--interval <duration>', 'analysis interval')
        .default('10s')
        .argParser(duration('--interval'))
        .hideHelp(),
    )
    .addOption(
      new Option('--cleanup-delay <duration>', 'cleanup delay after promotion')
        .default('10s')
        .argParser(duration('--cleanup-delay'))
        .hideHelp(),
    )
    .addOption(
      new Option('--rps <n>', 'traffic rate')
        .default(TRAFFIC_RPS)
        .argParser((v) => {
          const n = Number(v);
          if (!(n > 0 && n <= 1000)) throw new InvalidArgumentError(`--rps takes 1..1000, got "${v}".`);
          return n;
        })
        .hideHelp(),
    )
    .addHelpText(
      'after',
      `
Exit codes: ${EXIT_PROMOTED} promoted, ${EXIT_ROLLED_BACK} rolled back, ${EXIT_BAD_FLAGS} bad flags, ${EXIT_INFRASTRUCTURE} infrastructure (a port in use, a server that won't start).
Examples:
  npm run demo                      # v2 is healthy: 5% → 25% → 50% → 100%, promoted
  npm run demo -- --faulty          # v2 fails ${FAULTY_ERROR_PERCENT}% of requests: automatic rollback
  npm run demo -- --port 7300       # gRPC on 7300, UI on 8300`,
    )
    .allowExcessArguments(false);
  program.parse(argv, { from: 'user' });
  const o = program.opts<{
    faulty?: boolean;
    errorRate?: number;
    port: number;
    uiPort?: number;
    proxyPort: number;
    controlPort: number;
    exit?: boolean;
    hold: string;
    interval: string;
    cleanupDelay: string;
    rps: number;
  }>();
  const uiPort = o.uiPort ?? o.port + UI_PORT_OFFSET;
  if (uiPort > 65535)
    throw new FlagError(`--port ${o.port} leaves no room for the UI at +1000: pass --ui-port`);
  const options: DemoOptions = {
    errorPercent: o.errorRate ?? (o.faulty ? FAULTY_ERROR_PERCENT : 0),
    port: o.port,
    uiPort,
    proxyPort: o.proxyPort,
    controlPort: o.controlPort,
    exitAtEnd: o.exit ?? !process.stdout.isTTY,
    hold: o.hold,
    interval: o.interval,
    cleanupDelay: o.cleanupDelay,
    rps: o.rps,
    argv,
  };
  const ports: Array<[string, number]> = [
    ['--port', options.port],
    ['--ui-port', options.uiPort],
    ['--proxy-port', options.proxyPort],
    ['--control-port', options.controlPort],
  ];
  for (let i = 0; i < ports.length; i++) {
    for (let j = i + 1; j < ports.length; j++) {
      if (ports[i][1] === ports[j][1]) {
        throw new FlagError(
          `${ports[i][0]} and ${ports[j][0]} are both ${ports[i][1]}: give each its own port`,
        );
      }
    }
  }
  const validation = validatePlan(demoPlan(options));
  if (!validation.ok) throw new FlagError(formatProblems(validation.problems));
  return options;
}

/** The compressed plan: the default plan's shape, in seconds instead of days. */
export function demoPlan(o: Pick<DemoOptions, 'hold' | 'interval' | 'cleanupDelay'>): PlanSpec {
  return {
    name: 'demo',
    analysis: {
      interval: o.interval,
      checks: [
        { name: 'error-rate', metric: 'error-rate', max: 2 },
        { name: 'latency-p95', metric: 'latency-p95', max: 500 },
      ],
    },
    stages: [
      { weight: 5, hold: o.hold },
      { weight: 25, hold: o.hold },
      { weight: 50, hold: o.hold },
      { weight: 100 },
    ],
    promotion: { cleanupDelay: o.cleanupDelay },
  };
}

/** True when HOST:port can be bound (nothing listens there, on it or on the wildcard address). */
function portFree(p: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen(p, HOST, () => server.close(() => resolve(true)));
  });
}

/**
 * `npm run demo -- <the same flags, with free ports>`: every taken port replaced by one that is free now (and
 * not another of the demo's), the UI port always explicit so that moving --port does not move it onto a taken one.
 */
async function freePortAdvice(
  o: DemoOptions,
  wanted: Array<[string, string, number]>,
  taken: Array<[string, string, number]>,
): Promise<string> {
  const chosen = new Map<string, number>(wanted.map(([, flag, p]) => [flag, p]));
  const inUse = new Set(wanted.map(([, , p]) => p));
  for (const [, flag, p] of taken) {
    let q = p;
    do {
      q = q >= 65535 ? 1024 : q + 1;
    } while (inUse.has(q) || !(await portFree(q)));
    inUse.add(q);
    chosen.set(flag, q);
  }
  const replaced = new Set([...taken.map(([, flag]) => flag), '--ui-port']);
  const kept: string[] = [];
  const given = o.argv ?? [];
  for (let i = 0; i < given.length; i++) {
    const arg = given[i];
    const [flag] = arg.split('=');
    if (replaced.has(flag)) {
      if (!arg.includes('=')) i++; // its value
      continue;
    }
    kept.push(arg);
  }
  const flags = [...replaced].flatMap((flag) => [flag, String(chosen.get(flag))]);
  return ['npm run demo --', ...kept, ...flags].join(' ');
}

class InfrastructureFailure extends Error {}
class Interrupted extends Error {}

/** Alerts as one readable line each; the JSON lines also go to a file (the log sink) for reference. */
class EchoAlertSink implements AlertSink {
  readonly type = 'demo-echo';
  constructor(private readonly say: (line: string) => void) {}
  async send(event: AlertEvent): Promise<void> {
    this.say(`[${formatTime(new Date(event.at), new Date())}] alert (${event.severity}): ${event.message}`);
  }
}

type Cleanup = { what: string; run: () => Promise<unknown> };

export async function runDemo(o: DemoOptions): Promise<number> {
  const color =
    Boolean(process.stdout.isTTY) && process.env.NO_COLOR === undefined && process.env.TERM !== 'dumb';
  const bold = (s: string) => (color ? `\u001b[1m${s}\u001b[0m` : s);
  const say = (line = ''): void => {
    process.stdout.write(`${line}\n`);
  };
  const started = Date.now();
  const since = (t: number) => seconds(Date.now() - t);

  // Ctrl-C / SIGTERM: stop waiting, then everything below is stopped in reverse order. A second one forces out.
  const interrupt = new AbortController();
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals): void => {
    signals++;
    if (signals > 1) {
      process.stderr.write(`demo: ${signal} again, exiting without cleaning up\n`);
      process.exit(EXIT_INTERRUPTED);
    }
    say(
      `\n${signal === 'SIGINT' ? 'Ctrl-C' : signal}: stopping the worker, the local stack and the Temporal server...`,
    );
    interrupt.abort(new Interrupted(signal));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  // Aborted by a signal (Interrupted) or by the worker dying (InfrastructureFailure): rethrow that reason.
  const checkInterrupted = () => {
    if (interrupt.signal.aborted) throw interrupt.signal.reason;
  };

  const cleanups: Cleanup[] = [];
  let code = EXIT_INFRASTRUCTURE;
  try {
    const v2 = o.errorPercent > 0 ? `v2 fails ${o.errorPercent}% of its requests` : 'v2 is healthy';
    say(
      bold(
        `Canary demo: rolling ${TARGET.namespace}/${TARGET.app} out from ${STABLE_VERSION} to ${CANARY_VERSION} (${v2})`,
      ),
    );

    // Every port first: a clear message beats a half-started demo.
    const wanted: Array<[string, string, number]> = [
      ['Temporal gRPC', '--port', o.port],
      ['Temporal Web UI', '--ui-port', o.uiPort],
      ['local proxy', '--proxy-port', o.proxyPort],
      ['local control API', '--control-port', o.controlPort],
    ];
    const taken: Array<[string, string, number]> = [];
    for (const entry of wanted) if (!(await portFree(entry[2]))) taken.push(entry);
    if (taken.length > 0) {
      const lines = taken.map(
        ([what, , p]) =>
          `port ${p} (${what}) is already in use on ${HOST}` +
          (what.startsWith('Temporal') ? ' (another Temporal dev server, or a demo still running?)' : ''),
      );
      const advice = await freePortAdvice(o, wanted, taken);
      throw new InfrastructureFailure(
        `${lines.join('\n')}.\n  Stop what uses ${taken.length === 1 ? 'it' : 'them'}, or run the demo on ports that are free now:\n    ${advice}`,
      );
    }

    // --- Temporal dev server -------------------------------------------------------------------------------
    const t = Date.now();
    process.stdout.write(`  Temporal dev server (gRPC ${HOST}:${o.port}, Web UI port ${o.uiPort}) ... `);
    let server: DevServer;
    try {
      server = await startDevServer({ port: o.port, uiPort: o.uiPort, ui: true });
    } catch (err) {
      say('failed');
      checkInterrupted();
      throw new InfrastructureFailure(
        `${errorMessage(err)}\n  (the Temporal CLI comes from \`npm run setup\`, or set TEMPORAL_CLI_PATH)`,
      );
    }
    cleanups.push({ what: 'Temporal dev server', run: () => server.stop() });
    say(`ready in ${since(t)} (pid ${server.pid})`);
    checkInterrupted();

    // --- local stack + traffic -----------------------------------------------------------------------------
    const faults: Record<string, Fault> =
      o.errorPercent > 0 ? { [CANARY_VERSION]: { errorRate: o.errorPercent / 100 } } : {};
    let stack: LocalStack;
    try {
      stack = await startLocalStack({
        stableVersion: STABLE_VERSION,
        faults,
        proxyPort: o.proxyPort,
        controlPort: o.controlPort,
      });
    } catch (err) {
      throw new InfrastructureFailure(`the local stack did not start: ${errorMessage(err)}`);
    }
    cleanups.push({ what: 'local stack', run: () => stack.close() });
    const traffic: TrafficGenerator = startTrafficGenerator({ url: stack.proxyUrl, rps: o.rps });
    cleanups.push({ what: 'traffic generator', run: () => traffic.stop() });
    say(
      `  local stack: app at ${stack.proxyUrl} (stable ${STABLE_VERSION}), control API ${stack.controlUrl}`,
    );
    say(`  traffic: ${o.rps} requests/s to ${stack.proxyUrl}`);

    // --- worker --------------------------------------------------------------------------------------------
    const config = loadWorkerConfig({ TEMPORAL_ADDRESS: server.address });
    const alertDir = fs.mkdtempSync(path.join(os.tmpdir(), 'canary-demo-'));
    const alertLog = path.join(alertDir, 'alerts.jsonl');
    const providers = providersFromEnv({
      CANARY_LOCAL_CONTROL_URL: stack.controlUrl,
      CANARY_ALERT_LOG: alertLog,
    });
    providers.alerts.push(new EchoAlertSink(say));
    const activities = createActivities(providers);
    let connection: NativeConnection;
    let worker: Worker;
    try {
      connection = await connectNative(config);
      cleanups.push({ what: 'worker connection', run: () => connection.close() });
      worker = await createRolloutWorker({
        connection,
        activities,
        shutdownGraceTime: '2s',
        identity: `canary-demo@${os.hostname()}`,
      });
    } catch (err) {
      throw new InfrastructureFailure(`the worker did not start: ${errorMessage(err)}`);
    }
    const workerRun = worker.run();
    let workerError: unknown;
    workerRun.catch((err: unknown) => {
      workerError = err;
      if (!interrupt.signal.aborted) {
        say(`worker stopped unexpectedly: ${errorMessage(err)}`);
        interrupt.abort(new InfrastructureFailure(`the worker stopped: ${errorMessage(err)}`));
      }
    });
    cleanups.push({
      what: 'worker',
      run: async () => {
        if (worker.getState() === 'RUNNING') worker.shutdown();
        await workerRun.catch(() => undefined);
      },
    });
    say(`  worker: polling task queue ${config.taskQueue}, alerts also in ${alertLog}`);
    checkInterrupted();

    // --- the rollout ---------------------------------------------------------------------------------------
    let client: RolloutClient;
    try {
      client = await RolloutClient.connect(config);
    } catch (err) {
      throw new InfrastructureFailure(errorMessage(err));
    }
    cleanups.push({ what: 'client', run: () => client.close() });

    const plan = demoPlan(o);
    const validated = validatePlan(plan);
    if (!validated.ok) throw new FlagError(formatProblems(validated.problems));
    const workflowId = rolloutWorkflowId(TARGET);
    const uiUrl = rolloutUiUrl(workflowId, {
      namespace: config.namespace,
      env: { CANARY_UI_URL: `http://localhost:${o.uiPort}` },
    });
    say(`  ready in ${since(started)}`);
    say();
    const t0 = Date.now();
    let start;
    try {
      start = await client.start({
        ...TARGET,
        version: CANARY_VERSION,
        plan,
        requestedBy: 'canary-demo',
        cli: CLI,
      });
    } catch (err) {
      throw new InfrastructureFailure(`the rollout did not start: ${errorMessage(err)}`);
    }
    say(bold(`Temporal UI: ${uiUrl}`));
    say(`  Rollout:  ${start.workflowId} (run ${start.runId})`);
    say(
      `  Plan:     ${describePlan(validated.plan)}; analysis every ${o.interval}: error-rate ≤ 2%, latency-p95 ≤ 500 ms`,
    );
    say(
      `            holds ${formatDuration(totalHoldMs(validated.plan))} in all, then the canary is removed ${o.cleanupDelay} after promotion`,
    );
    say();
    const envPrefix = o.port === DEFAULT_GRPC_PORT ? '' : `TEMPORAL_ADDRESS=${server.address} `;
    const ref = `${TARGET.namespace}/${TARGET.app}`;
    say(
      o.port === DEFAULT_GRPC_PORT
        ? 'Meanwhile, in another terminal (the CLI talks to TEMPORAL_ADDRESS, by default localhost:7233):'
        : `Meanwhile, in another terminal (the CLI needs TEMPORAL_ADDRESS=${server.address}):`,
    );
    say(`  ${envPrefix}${CLI} status ${ref} --watch`);
    say(`  ${envPrefix}${CLI} pause ${ref}          # the hold clock stops; then: resume ${ref}`);
    say(`  ${envPrefix}${CLI} abort ${ref} --reason "looks wrong"`);
    say(`  curl -s ${stack.proxyUrl}/                # the app: {"version":"v1"} or "v2"`);
    say();

    let prev: RolloutStatus | undefined;
    let final: RolloutStatus;
    try {
      final = await client.waitForOutcome(workflowId, {
        pollMs: 1_000,
        signal: interrupt.signal,
        onStatus: (status) => {
          for (const line of progressLines(prev, status, new Date())) say(line);
          prev = status;
        },
      });
      if (final.phase === 'promoted') {
        // The workflow removes the canary after the cleanup delay; wait for it so the story ends cleanly.
        say(
          `[${formatTime(new Date(), new Date())}] removing the canary workload after the ${o.cleanupDelay} cleanup delay...`,
        );
        await Promise.race([
          rolloutResult(client.client.workflow.getHandle(workflowId)),
          new Promise((_, reject) =>
            interrupt.signal.addEventListener('abort', () => reject(interrupt.signal.reason), { once: true }),
          ),
        ]);
      }
    } catch (err) {
      checkInterrupted();
      if (workerError) throw new InfrastructureFailure(`the worker stopped: ${errorMessage(workerError)}`);
      throw new InfrastructureFailure(`following the rollout failed: ${errorMessage(err)}`);
    }
    const rolloutTime = since(t0);
    const stats = traffic.stats();

    say();
    say(renderStatus(final, new Date(), { color, cliName: CLI }));
    say();
    const byVersion = Object.entries(stats.byVersion)
      .map(([v, n]) => `${v} ${n}`)
      .join(', ');
    say(
      `Traffic: ${stats.completed} requests, ${stats.errors} errors (${percent(stats.errors, stats.completed)}); answered by ${byVersion || 'nobody'}`,
    );
    if (final.phase === 'promoted') {
      code = EXIT_PROMOTED;
      say(
        bold(
          `Outcome: promoted in ${rolloutTime}: ${TARGET.namespace}/${TARGET.app} stable now runs ${CANARY_VERSION}.`,
        ),
      );
    } else if (final.phase === 'rolled_back') {
      code = EXIT_ROLLED_BACK;
      say(bold(`Outcome: rolled back after ${rolloutTime}: all traffic is back on ${STABLE_VERSION}.`));
      say(`  Reason: ${final.rollbackReason ?? 'not given'}`);
    } else {
      code = EXIT_INFRASTRUCTURE;
      say(bold(`Outcome: ${final.phase} after ${rolloutTime}.`));
    }
    say(`  History: ${uiUrl}`);

    if (!o.exitAtEnd) {
      say();
      say(
        `The Temporal UI (http://localhost:${o.uiPort}), the worker and the local stack keep running so you can look around;`,
      );
      say(
        `try another rollout: ${envPrefix}${CLI} start --namespace demo --app shop --version v3 --plan quick --wait`,
      );
      say('Press Ctrl-C to stop everything.');
      await new Promise<void>((resolve) =>
        interrupt.signal.addEventListener('abort', () => resolve(), { once: true }),
      );
    }
    return code;
  } catch (err) {
    if (err instanceof Interrupted || interrupt.signal.reason instanceof Interrupted) {
      return EXIT_INTERRUPTED;
    }
    if (err instanceof FlagError) {
      process.stderr.write(`demo: ${err.message}\n`);
      return EXIT_BAD_FLAGS;
    }
    // InfrastructureFailure carries its own explanation; anything else is unexpected: show where it came from.
    const detail =
      err instanceof InfrastructureFailure || !(err instanceof Error) ? errorMessage(err) : err.stack;
    process.stderr.write(`demo: ${detail}\n`);
    return EXIT_INFRASTRUCTURE;
  } finally {
    const t = Date.now();
    for (const c of cleanups.reverse()) {
      await c
        .run()
        .catch((err: unknown) =>
          process.stderr.write(`demo: stopping the ${c.what}: ${errorMessage(err)}\n`),
        );
    }
    if (cleanups.length > 0)
      say(`Stopped the worker, the local stack and the Temporal server (${since(t)}).`);
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

/** `2.1 s`, `1m 12.3s`. */
function seconds(ms: number): string {
  const s = Math.max(0, ms) / 1000;
  return s < 60 ? `${s.toFixed(1)}s` : `${Math.floor(s / 60)}m ${(s % 60).toFixed(1)}s`;
}

function percent(n: number, of: number): string {
  return of === 0 ? '0%' : `${Math.round((n / of) * 1000) / 10}%`;
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export async function main(argv: string[]): Promise<number> {
  let options: DemoOptions;
  try {
    options = parseDemoArgs(argv, {
      out: (s) => process.stdout.write(s),
      err: (s) => process.stderr.write(s),
    });
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : EXIT_BAD_FLAGS;
    if (err instanceof FlagError) {
      process.stderr.write(`demo: ${err.message}\n`);
      return EXIT_BAD_FLAGS;
    }
    throw err;
  }
  // Worker chatter would drown the story; warnings and errors still show. Signals are handled by runDemo.
  Runtime.install({ logger: new RolloutLogger('WARN'), shutdownSignals: [] });
  return runDemo(options);
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => {
      // Exit even if a library left a handle open; flush first so piped output is complete.
      process.stdout.write('', () => process.exit(code));
    },
    (err: unknown) => {
      process.stderr.write(
        `demo: unexpected error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
      );
      process.exit(EXIT_INFRASTRUCTURE);
    },
  );
}
