// Starts a real Temporal dev server (`temporal server start-dev`) on loopback for tests and demos, with the
// rollout's search attributes registered, and stops it by its process id.
import { spawn } from 'node:child_process';
import * as net from 'node:net';
import { Connection } from '@temporalio/client';
import { SEARCH_ATTRIBUTES } from '../workflows/api';
import { findTemporalCli, TEMPORAL_CLI_HINT } from './temporal-bin';
import { collectTail, signal, startWatchdog } from './watchdog';

export interface DevServerOptions {
  /** gRPC port; a free one when not given. */
  port?: number;
  /** Web UI port; a free one when not given (and the UI is on). */
  uiPort?: number;
  /** Serve the Web UI (default false: `--headless`). */
  ui?: boolean;
  /** SQLite file: state survives a restart on the same file. In memory when not given. */
  dbFile?: string;
  /** A namespace to create at start besides `default`. */
  namespace?: string;
  /** How long to wait for the server to answer (default 30 s). */
  readyTimeoutMs?: number;
  /** Server dynamic config values (`--dynamic-config-value KEY=JSON`), e.g. faster Worker Deployment drainage. */
  dynamicConfig?: Record<string, string | number | boolean>;
}

export interface DevServer {
  /** `127.0.0.1:port` */
  address: string;
  /** `http://127.0.0.1:uiPort` when the UI is on. */
  uiUrl?: string;
  /** The namespace tests should use (`default` unless one was asked for). */
  namespace: string;
  pid: number;
  /**
   * SIGTERM, SIGKILL after a grace period; resolves once the process has exited. `signal: 'SIGKILL'` kills at
   * once, as a crash would (reliability tests restart the server on the same `port` and `dbFile`).
   */
  stop(opts?: StopOptions): Promise<void>;
}

export interface StopOptions {
  /** The first signal sent (default SIGTERM). */
  signal?: 'SIGTERM' | 'SIGKILL';
}

const HOST = '127.0.0.1';
const STOP_GRACE_MS = 10_000;
const OUTPUT_TAIL_CHARS = 8_000;

export async function startDevServer(opts: DevServerOptions = {}): Promise<DevServer> {
  const cli = findTemporalCli();
  if (!cli) {
    throw new Error(`Temporal CLI (temporal) not found: ${TEMPORAL_CLI_HINT}`);
  }
  const port = opts.port ?? (await freePort());
  const ui = opts.ui ?? false;
  const uiPort = ui ? (opts.uiPort ?? (await freePort())) : undefined;
  const namespace = opts.namespace ?? 'default';

  const args = ['server', 'start-dev', '--ip', HOST, '--port', String(port), '--log-level', 'warn'];
  if (uiPort !== undefined) args.push('--ui-port', String(uiPort), '--ui-disable-news-fetch');
  else args.push('--headless');
  for (const [name, type] of SEARCH_ATTRIBUTES) args.push('--search-attribute', `${name}=${type}`);
  if (opts.dbFile) args.push('--db-filename', opts.dbFile);
  if (namespace !== 'default') args.push('--namespace', namespace);
  for (const [key, value] of Object.entries(opts.dynamicConfig ?? {}))
    args.push('--dynamic-config-value', `${key}=${JSON.stringify(value)}`);

  const child = spawn(cli, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const output = collectTail(child, OUTPUT_TAIL_CHARS);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const spawned = await new Promise<Error | undefined>((resolve) => {
    child.once('spawn', () => resolve(undefined));
    child.once('error', (err) => resolve(err));
  });
  if (spawned || child.pid === undefined) {
    throw new Error(`cannot run ${cli}: ${spawned?.message ?? 'no process id'}`);
  }
  const pid = child.pid;
  const watchdog = startWatchdog({ graceMs: STOP_GRACE_MS });
  watchdog.watch(pid);
  child.once('exit', () => watchdog.dismiss());
  // A server left running must not keep this process alive; the watchdog stops it once this process is gone.
  child.unref();
  for (const stream of [child.stdout, child.stderr]) (stream as net.Socket | null)?.unref();

  let stopping: Promise<void> | undefined;
  const stop = (stopOpts: StopOptions = {}): Promise<void> => {
    stopping ??= (async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.ref(); // keep this process alive until the server has exited
        signal(pid, stopOpts.signal ?? 'SIGTERM');
        const timer = setTimeout(() => signal(pid, 'SIGKILL'), STOP_GRACE_MS);
        await exited;
        clearTimeout(timer);
      }
    })();
    return stopping;
  };

  const address = `${HOST}:${port}`;
  const uiUrl = uiPort !== undefined ? `http://${HOST}:${uiPort}` : undefined;
  try {
    await waitUntilReady(address, uiUrl, exited, opts.readyTimeoutMs ?? 30_000);
  } catch (err) {
    await stop();
    throw new Error(
      `Temporal dev server (${cli} ${args.join(' ')}) did not become ready: ${(err as Error).message}\n` +
        `--- server output (tail) ---\n${output() || '(none)'}`,
    );
  }
  return { address, uiUrl, namespace, pid, stop };
}

/**
 * A TCP port that was free a moment ago, for a server that binds it a little later (another process, often). It is
 * taken from below the range the system hands out on its own (Linux 32768-60999, macOS and Windows 49152-65535): a
 * port from there could be given to any outgoing connection or `listen(0)` in between, and the server would then
 * fail with EADDRINUSE (the demo test hit it in CI). Below 31000, so a port + 1000 (the dev server's derived UI
 * port) stays out of that range too. After a few tries it takes whatever port 0 gives. `random` for tests.
 */
export async function freePort(random: () => number = Math.random): Promise<number> {
  for (let attempt = 0; attempt < 40; attempt++) {
    const port = FIXED_LOW + Math.floor(random() * (FIXED_HIGH - FIXED_LOW));
    if ((await bindOnce(port)) !== undefined) return port;
  }
  const port = await bindOnce(0);
  if (port === undefined) throw new Error(`no free TCP port on ${HOST}`);
  return port;
}
const FIXED_LOW = 20_000;
const FIXED_HIGH = 31_000;

/** Binds `port` (0: any) on HOST and releases it; the port bound, or undefined when it is in use. */
function bindOnce(port: number): Promise<number | undefined> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.once('error', (err: NodeJS.ErrnoException) =>
      err.code === 'EADDRINUSE' || err.code === 'EACCES' ? resolve(undefined) : reject(err),
    );
    server.listen(port, HOST, () => {
      const bound = (server.address() as net.AddressInfo).port;
      server.close(() => resolve(bound));
    });
  });
}

async function waitUntilReady(
  address: string,
  uiUrl: string | undefined,
  exited: Promise<void>,
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let dead = false;
  void exited.then(() => (dead = true));
  let lastError = 'no attempt made';

  const retry = async (attempt: () => Promise<void>, what: string): Promise<void> => {
    for (;;) {
      if (dead) throw new Error(`the server process exited while waiting for ${what}`);
      try {
        await attempt();
        return;
      } catch (err) {
        lastError = (err as Error).message;
      }
      if (Date.now() >= deadline) throw new Error(`${what} not ready after ${timeoutMs} ms (${lastError})`);
      await new Promise((r) => setTimeout(r, 200));
    }
  };

  await retry(async () => {
    const remaining = Math.max(1_000, deadline - Date.now());
    const connection = await Connection.connect({ address, connectTimeout: Math.min(remaining, 5_000) });
    try {
      await connection.workflowService.getSystemInfo({});
    } finally {
      await connection.close();
    }
  }, `gRPC at ${address}`);

  if (uiUrl) {
    await retry(async () => {
      const res = await fetch(uiUrl, { signal: AbortSignal.timeout(5_000) });
      await res.arrayBuffer();
    }, `Web UI at ${uiUrl}`);
  }
}
