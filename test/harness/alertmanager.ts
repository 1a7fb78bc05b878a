// Starts a real Alertmanager (Debian's package prometheus-alertmanager, 0.25 here) on loopback for tests: clustering
// off (--cluster.listen-address=), a minimal configuration routing everything to a receiver that notifies no one,
// its own storage in a temporary folder, optional basic auth through its web config. It is stopped by its process
// id (SIGTERM, then SIGKILL), and a watchdog stops it if the test process dies first.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import type * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { freePort } from './dev-server';
import { collectTail, signal, startWatchdog } from './watchdog';

export const ALERTMANAGER_HINT =
  "run `npm run setup` (as root it installs Debian's package prometheus-alertmanager), or " +
  '`apt-get install prometheus-alertmanager`, or set ALERTMANAGER_PATH to an alertmanager 0.2x binary';

export interface AlertmanagerOptions {
  /** Basic auth for the whole API (Alertmanager's --web.config.file, a bcrypt hash of the password). */
  basicAuth?: { username: string; password: string };
  /** How long start() waits for the API to answer (default 30 s). */
  readyTimeoutMs?: number;
}

/** An alert as GET /api/v2/alerts returns it. */
export interface GettableAlert {
  labels: Record<string, string>;
  annotations: Record<string, string>;
  startsAt: string;
  endsAt: string;
  updatedAt: string;
  fingerprint: string;
  generatorURL?: string;
  status: { state: 'active' | 'suppressed' | 'unprocessed'; silencedBy: string[]; inhibitedBy: string[] };
}

export interface AlertmanagerServer {
  /** http://127.0.0.1:port */
  url: string;
  pid: number;
  /** GET /api/v2/alerts (alerts not resolved yet), optionally with matchers such as `rollout="x"`. */
  alerts(...filters: string[]): Promise<GettableAlert[]>;
  /** SIGTERM, SIGKILL after a grace period; resolves once the process has exited and its folder is gone. */
  stop(): Promise<void>;
  /** The tail of its log, for failure messages. */
  output(): string;
}

const HOST = '127.0.0.1';
const STOP_GRACE_MS = 5_000;
const BINARIES = ['prometheus-alertmanager', 'alertmanager'];

/** ALERTMANAGER_PATH, then PATH (prometheus-alertmanager, alertmanager), then /usr/bin/prometheus-alertmanager. */
export function findAlertmanager(): string | undefined {
  const explicit = process.env.ALERTMANAGER_PATH?.trim();
  if (explicit) {
    if (!isExecutable(explicit)) {
      throw new Error(
        `ALERTMANAGER_PATH=${explicit} is not an executable file; fix or unset ALERTMANAGER_PATH`,
      );
    }
    return explicit;
  }
  for (const name of BINARIES) {
    for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
      if (dir && isExecutable(path.join(dir, name))) return path.join(dir, name);
    }
  }
  return isExecutable('/usr/bin/prometheus-alertmanager') ? '/usr/bin/prometheus-alertmanager' : undefined;
}

function isExecutable(file: string): boolean {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

const CONFIG = `route:
  receiver: nobody
  group_by: [rollout]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: nobody
`;

export async function startAlertmanager(opts: AlertmanagerOptions = {}): Promise<AlertmanagerServer> {
  const bin = findAlertmanager();
  if (!bin) {
    throw new Error(
      `alertmanager not found (ALERTMANAGER_PATH, PATH, /usr/bin/prometheus-alertmanager): ${ALERTMANAGER_HINT}`,
    );
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'canary-alertmanager-'));
  const port = await freePort();
  const configFile = path.join(dir, 'alertmanager.yml');
  fs.writeFileSync(configFile, CONFIG);
  const args = [
    `--config.file=${configFile}`,
    `--storage.path=${path.join(dir, 'data')}`,
    `--web.listen-address=${HOST}:${port}`,
    // No gossip: a single instance that neither listens for nor looks for peers.
    '--cluster.listen-address=',
    '--log.level=warn',
  ];
  const auth = opts.basicAuth;
  if (auth) {
    const { hashSync } = await import('bcryptjs');
    const webFile = path.join(dir, 'web.yml');
    fs.writeFileSync(
      webFile,
      `basic_auth_users:\n  ${JSON.stringify(auth.username)}: ${JSON.stringify(hashSync(auth.password, 5))}\n`,
    );
    args.push(`--web.config.file=${webFile}`);
  }

  const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'], cwd: dir });
  const output = collectTail(child, 8_000, '(none)');
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const spawned = await new Promise<Error | undefined>((resolve) => {
    child.once('spawn', () => resolve(undefined));
    child.once('error', (err) => resolve(err));
  });
  if (spawned || child.pid === undefined) {
    fs.rmSync(dir, { recursive: true, force: true });
    throw new Error(`cannot run ${bin}: ${spawned?.message ?? 'no process id'}; ${ALERTMANAGER_HINT}`);
  }
  const pid = child.pid;
  const watchdog = startWatchdog({ graceMs: STOP_GRACE_MS, dir });
  watchdog.watch(pid);
  child.once('exit', () => watchdog.dismiss());
  child.unref();
  for (const stream of [child.stdout, child.stderr]) (stream as net.Socket | null)?.unref();

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.ref();
        signal(pid, 'SIGTERM');
        const timer = setTimeout(() => signal(pid, 'SIGKILL'), STOP_GRACE_MS);
        await exited;
        clearTimeout(timer);
      }
      fs.rmSync(dir, { recursive: true, force: true });
    })();
    return stopping;
  };

  const url = `http://${HOST}:${port}`;
  const headers: Record<string, string> = auth
    ? { authorization: `Basic ${Buffer.from(`${auth.username}:${auth.password}`).toString('base64')}` }
    : {};
  let dead = false;
  void exited.then(() => (dead = true));

  const deadline = Date.now() + (opts.readyTimeoutMs ?? 30_000);
  let last = 'no attempt made';
  for (;;) {
    if (dead) {
      await stop();
      throw new Error(`alertmanager exited while starting\n--- its output ---\n${output()}`);
    }
    try {
      const res = await fetch(`${url}/-/ready`, { headers, signal: AbortSignal.timeout(2_000) });
      await res.arrayBuffer();
      if (res.ok) break;
      last = `HTTP ${res.status}`;
    } catch (err) {
      last = (err as Error).message;
    }
    if (Date.now() >= deadline) {
      await stop();
      throw new Error(`alertmanager at ${url} not ready (${last})\n--- its output ---\n${output()}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }

  const alerts = async (...filters: string[]): Promise<GettableAlert[]> => {
    const query = filters.map((f) => `filter=${encodeURIComponent(f)}`).join('&');
    const res = await fetch(`${url}/api/v2/alerts${query ? `?${query}` : ''}`, {
      headers,
      signal: AbortSignal.timeout(5_000),
    });
    if (!res.ok) throw new Error(`GET /api/v2/alerts answered ${res.status}: ${await res.text()}`);
    return (await res.json()) as GettableAlert[];
  };

  return { url, pid, alerts, stop, output };
}
