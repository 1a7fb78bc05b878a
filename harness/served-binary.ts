// What the Prometheus and Alertmanager harnesses share: finding the binary (an explicit path first), a web
// config with basic auth, and running the server as a child process on loopback, stopped by its process id
// (SIGTERM, then SIGKILL), with a watchdog that stops it if the test process dies first, ready once its
// `/-/ready` answers.
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import type * as net from 'node:net';
import * as path from 'node:path';
import { isExecutableFile } from '../demo/temporal-bin';
import { collectTail, signal, startWatchdog } from '../demo/watchdog';

const STOP_GRACE_MS = 5_000;
const OUTPUT_TAIL_CHARS = 8_000;

/** `envVar` when set (refused when not executable), then each name on PATH, then the fallback paths. */
export function findBinary(envVar: string, names: string[], fallbacks: string[]): string | undefined {
  const explicit = process.env[envVar]?.trim();
  if (explicit) {
    if (!isExecutableFile(explicit)) {
      throw new Error(`${envVar}=${explicit} is not an executable file; fix or unset ${envVar}`);
    }
    return explicit;
  }
  for (const name of names) {
    for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
      if (dir && isExecutableFile(path.join(dir, name))) return path.join(dir, name);
    }
  }
  return fallbacks.find(isExecutableFile);
}

export interface BasicAuth {
  username: string;
  password: string;
}

/** Writes a Prometheus-style web config (both servers read it) with one bcrypt-hashed user; returns its path. */
export async function writeBasicAuthWebConfig(dir: string, auth: BasicAuth): Promise<string> {
  const webFile = path.join(dir, 'web.yml');
  fs.writeFileSync(
    webFile,
    `basic_auth_users:\n  ${JSON.stringify(auth.username)}: ${JSON.stringify(await bcrypt(auth.password))}\n`,
  );
  return webFile;
}

/** The Authorization header for basic auth, or none. */
export function basicAuthHeaders(auth: BasicAuth | undefined): Record<string, string> {
  return auth
    ? { authorization: `Basic ${Buffer.from(`${auth.username}:${auth.password}`).toString('base64')}` }
    : {};
}

/** A bcrypt hash for a web config: bcryptjs (a devDependency), else Python's bcrypt if installed. */
async function bcrypt(password: string): Promise<string> {
  try {
    const { hashSync } = await import('bcryptjs');
    return hashSync(password, 5);
  } catch (err) {
    const py = spawnSync(
      'python3',
      [
        '-c',
        'import bcrypt,sys; print(bcrypt.hashpw(sys.stdin.read().encode(), bcrypt.gensalt(5)).decode())',
      ],
      { input: password, encoding: 'utf8' },
    );
    if (py.status === 0) return py.stdout.trim();
    throw new Error(
      `cannot hash a password for a web config: npm ci (bcryptjs) or pip install bcrypt (${(err as Error).message})`,
    );
  }
}

export interface ServedBinary {
  pid: number;
  /** SIGTERM, SIGKILL after a grace period; resolves once the process has exited and `dir` is gone. */
  stop(): Promise<void>;
  /**
   * Ends the process and keeps `dir` (config, storage), so the same server can be started again on it: SIGTERM
   * (a clean shutdown, SIGKILL after the grace period) or SIGKILL (a crash). Resolves once it has exited.
   */
  halt(sig?: 'SIGTERM' | 'SIGKILL'): Promise<void>;
  /** The tail of its log, for failure messages. */
  output(): string;
  /**
   * Polls `probe` until it answers true, failing after `timeoutMs` with its last answer (a string says what is
   * missing) and the server's output, or at once when the server has exited.
   */
  poll(what: string, timeoutMs: number, probe: () => Promise<string | true>): Promise<void>;
}

export interface ServedBinaryOptions {
  /** How messages name it: `prometheus`, `alertmanager`. */
  name: string;
  bin: string;
  args: string[];
  /** Its working folder (config, storage), removed when it stops. */
  dir: string;
  /** How to get the binary, for a failure to run it. */
  hint: string;
  /** http://host:port: ready once GET `${url}/-/ready` answers 2xx. */
  url: string;
  headers: Record<string, string>;
  readyTimeoutMs: number;
}

/** Runs the server and waits until it is ready; on any failure it is stopped and its folder removed. */
export async function startServedBinary(opts: ServedBinaryOptions): Promise<ServedBinary> {
  const { name, bin, dir } = opts;
  const child = spawn(bin, opts.args, { stdio: ['ignore', 'pipe', 'pipe'], cwd: dir });
  const output = collectTail(child, OUTPUT_TAIL_CHARS, '(none)');
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const spawned = await new Promise<Error | undefined>((resolve) => {
    child.once('spawn', () => resolve(undefined));
    child.once('error', (err) => resolve(err));
  });
  if (spawned || child.pid === undefined) {
    fs.rmSync(dir, { recursive: true, force: true });
    throw new Error(`cannot run ${bin}: ${spawned?.message ?? 'no process id'}; ${opts.hint}`);
  }
  const pid = child.pid;
  const watchdog = startWatchdog({ graceMs: STOP_GRACE_MS, dir });
  watchdog.watch(pid);
  child.once('exit', () => watchdog.dismiss());
  child.unref();
  for (const stream of [child.stdout, child.stderr]) (stream as net.Socket | null)?.unref();

  const halt = async (sig: 'SIGTERM' | 'SIGKILL' = 'SIGTERM'): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      child.ref();
      signal(pid, sig);
      const timer = sig === 'SIGTERM' ? setTimeout(() => signal(pid, 'SIGKILL'), STOP_GRACE_MS) : undefined;
      await exited;
      clearTimeout(timer);
    }
  };
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      await halt();
      fs.rmSync(dir, { recursive: true, force: true });
    })();
    return stopping;
  };

  let dead = false;
  void exited.then(() => (dead = true));
  const poll = async (
    what: string,
    timeoutMs: number,
    probe: () => Promise<string | true>,
  ): Promise<void> => {
    const deadline = Date.now() + timeoutMs;
    let last = 'no attempt made';
    for (;;) {
      if (dead) throw new Error(`${name} exited while waiting for ${what}\n--- its output ---\n${output()}`);
      try {
        const r = await probe();
        if (r === true) return;
        last = r;
      } catch (err) {
        last = (err as Error).message;
      }
      if (Date.now() >= deadline) {
        throw new Error(
          `${what} not reached after ${timeoutMs} ms (${last})\n--- ${name} output ---\n${output()}`,
        );
      }
      await new Promise((r) => setTimeout(r, 250));
    }
  };

  try {
    await poll(`${opts.url}/-/ready`, opts.readyTimeoutMs, async () => {
      const res = await fetch(`${opts.url}/-/ready`, {
        headers: opts.headers,
        signal: AbortSignal.timeout(2_000),
      });
      await res.arrayBuffer();
      return res.ok || `HTTP ${res.status}`;
    });
  } catch (err) {
    await stop();
    throw err;
  }
  return { pid, stop, halt, output, poll };
}
