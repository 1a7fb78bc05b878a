// Starts a real Prometheus (Debian's package, 2.42 here) on loopback for tests: a temporary config scraping the
// given targets every second, storage in a temporary folder, optional basic auth through its own web config. It is
// stopped by its process id (SIGTERM, then SIGKILL), and a watchdog stops it if the test process dies first.
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import type * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { freePort } from './dev-server';
import { collectTail, signal, startWatchdog } from './watchdog';

export const PROMETHEUS_HINT =
  "run `bash scripts/setup.sh` (as root it installs Debian's package), or `apt-get install prometheus`, or set " +
  'PROMETHEUS_PATH to a prometheus 2.x binary';

export interface ScrapeTarget {
  job: string;
  /** The exporter's metrics URL, e.g. http://127.0.0.1:43121/metrics. */
  url: string;
  /** Target labels Prometheus attaches to every series it scrapes there. */
  labels?: Record<string, string>;
}

export interface PrometheusOptions {
  targets: ScrapeTarget[];
  extraFlags?: string[];
  /** Basic auth for the whole HTTP API (Prometheus's --web.config.file, a bcrypt hash of the password). */
  webConfig?: { basicAuth: { username: string; password: string } };
  /** How long start() waits for the API to answer (default 30 s). */
  readyTimeoutMs?: number;
  /** Fills the (empty) TSDB folder before Prometheus starts: blocks of history, see backfill.ts. */
  prepareStorage?: (dataDir: string) => Promise<void>;
}

export interface PrometheusServer {
  /** http://127.0.0.1:port */
  url: string;
  pid: number;
  /** Resolves once every target has been scraped successfully (`up == 1`). */
  waitUp(timeoutMs?: number): Promise<void>;
  /** SIGTERM, SIGKILL after a grace period; resolves once the process has exited and its folder is gone. */
  stop(): Promise<void>;
  /** The tail of its log, for failure messages. */
  output(): string;
}

const HOST = '127.0.0.1';
const STOP_GRACE_MS = 5_000;
const OUTPUT_TAIL_CHARS = 8_000;

/** PROMETHEUS_PATH, then PATH, then /usr/bin/prometheus (as scripts/setup.sh looks it up). */
export function findPrometheus(): string | undefined {
  const explicit = process.env.PROMETHEUS_PATH?.trim();
  if (explicit) {
    if (!isExecutable(explicit)) {
      throw new Error(`PROMETHEUS_PATH=${explicit} is not an executable file; fix or unset PROMETHEUS_PATH`);
    }
    return explicit;
  }
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (dir && isExecutable(path.join(dir, 'prometheus'))) return path.join(dir, 'prometheus');
  }
  return isExecutable('/usr/bin/prometheus') ? '/usr/bin/prometheus' : undefined;
}

function isExecutable(file: string): boolean {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

export async function startPrometheus(opts: PrometheusOptions): Promise<PrometheusServer> {
  const bin = findPrometheus();
  if (!bin)
    throw new Error(`prometheus not found (PROMETHEUS_PATH, PATH, /usr/bin/prometheus): ${PROMETHEUS_HINT}`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'canary-prometheus-'));
  const port = await freePort();
  const configFile = path.join(dir, 'prometheus.yml');
  fs.writeFileSync(configFile, scrapeConfig(opts.targets));
  if (opts.prepareStorage) {
    try {
      fs.mkdirSync(path.join(dir, 'data'));
      await opts.prepareStorage(path.join(dir, 'data'));
    } catch (err) {
      fs.rmSync(dir, { recursive: true, force: true });
      throw err;
    }
  }
  const args = [
    `--config.file=${configFile}`,
    `--storage.tsdb.path=${path.join(dir, 'data')}`,
    `--web.listen-address=${HOST}:${port}`,
    '--log.level=warn',
  ];
  const auth = opts.webConfig?.basicAuth;
  if (auth) {
    const webFile = path.join(dir, 'web.yml');
    fs.writeFileSync(
      webFile,
      `basic_auth_users:\n  ${JSON.stringify(auth.username)}: ${JSON.stringify(await bcrypt(auth.password))}\n`,
    );
    args.push(`--web.config.file=${webFile}`);
  }
  args.push(...(opts.extraFlags ?? []));

  const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'], cwd: dir });
  const output = collectTail(child, OUTPUT_TAIL_CHARS, '(none)');
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const spawned = await new Promise<Error | undefined>((resolve) => {
    child.once('spawn', () => resolve(undefined));
    child.once('error', (err) => resolve(err));
  });
  if (spawned || child.pid === undefined) {
    fs.rmSync(dir, { recursive: true, force: true });
    throw new Error(`cannot run ${bin}: ${spawned?.message ?? 'no process id'}; ${PROMETHEUS_HINT}`);
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
  const poll = async (
    what: string,
    timeoutMs: number,
    probe: () => Promise<string | true>,
  ): Promise<void> => {
    const deadline = Date.now() + timeoutMs;
    let last = 'no attempt made';
    for (;;) {
      if (dead)
        throw new Error(`prometheus exited while waiting for ${what}\n--- its output ---\n${output()}`);
      try {
        const r = await probe();
        if (r === true) return;
        last = r;
      } catch (err) {
        last = (err as Error).message;
      }
      if (Date.now() >= deadline) {
        throw new Error(
          `${what} not reached after ${timeoutMs} ms (${last})\n--- prometheus output ---\n${output()}`,
        );
      }
      await new Promise((r) => setTimeout(r, 250));
    }
  };

  try {
    await poll(`${url}/-/ready`, opts.readyTimeoutMs ?? 30_000, async () => {
      const res = await fetch(`${url}/-/ready`, { headers, signal: AbortSignal.timeout(2_000) });
      await res.arrayBuffer();
      return res.ok || `HTTP ${res.status}`;
    });
  } catch (err) {
    await stop();
    throw err;
  }

  const waitUp = (timeoutMs = 30_000): Promise<void> =>
    // Discovery hands targets to the scraper at most every 5 s, so the first sample lands ~7 s after start.
    poll('up == 1 on every target', timeoutMs, async () => {
      const res = await fetch(`${url}/api/v1/query?query=up`, {
        headers,
        signal: AbortSignal.timeout(2_000),
      });
      const body = (await res.json()) as {
        data?: { result?: Array<{ metric: Record<string, string>; value: [number, string] }> };
      };
      const up = new Map(
        (body.data?.result ?? []).map((r) => [`${r.metric.job} ${r.metric.instance}`, r.value[1]]),
      );
      const down = opts.targets.filter((t) => up.get(`${t.job} ${new URL(t.url).host}`) !== '1');
      return down.length === 0 || `not up yet: ${down.map((t) => `${t.job} ${t.url}`).join(', ')}`;
    });

  return { url, pid, waitUp, stop, output };
}

function scrapeConfig(targets: ScrapeTarget[]): string {
  const jobs = new Map<string, ScrapeTarget[]>();
  for (const t of targets) jobs.set(t.job, [...(jobs.get(t.job) ?? []), t]);
  const lines = [
    'global:',
    '  scrape_interval: 1s',
    '  scrape_timeout: 1s',
    '  evaluation_interval: 1s',
    'scrape_configs:',
  ];
  for (const [job, list] of jobs) {
    const first = new URL(list[0].url);
    for (const t of list) {
      const u = new URL(t.url);
      if (u.pathname !== first.pathname || u.protocol !== first.protocol) {
        throw new Error(`targets of job ${job} must share scheme and path (${t.url} vs ${list[0].url})`);
      }
    }
    lines.push(
      `  - job_name: ${JSON.stringify(job)}`,
      `    scheme: ${first.protocol.replace(':', '')}`,
      `    metrics_path: ${JSON.stringify(first.pathname)}`,
      '    static_configs:',
    );
    for (const t of list) {
      lines.push(`      - targets: [${JSON.stringify(new URL(t.url).host)}]`);
      if (t.labels && Object.keys(t.labels).length > 0) {
        lines.push('        labels:');
        for (const [k, v] of Object.entries(t.labels)) lines.push(`          ${k}: ${JSON.stringify(v)}`);
      }
    }
  }
  return `${lines.join('\n')}\n`;
}

/** A bcrypt hash for Prometheus's web config: bcryptjs (a devDependency), else Python's bcrypt if installed. */
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
      `cannot hash a password for Prometheus's web config: npm ci (bcryptjs) or pip install bcrypt (${(err as Error).message})`,
    );
  }
}
