// Starts a real Prometheus (Debian's package, 2.42 here) on loopback for tests: a temporary config scraping the
// given targets every second, storage in a temporary folder, optional basic auth through its own web config. It is
// stopped by its process id (SIGTERM, then SIGKILL), and a watchdog stops it if the test process dies first.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { freePort } from '../demo/dev-server';
import {
  basicAuthHeaders,
  findBinary,
  startServedBinary,
  writeBasicAuthWebConfig,
  type ServedBinary,
} from './served-binary';

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
  /**
   * Also scrape targets added while it runs (setTargets), through file-based service discovery: a test or demo that
   * starts exporters later (one set per example, say) shares one Prometheus.
   */
  discovery?: boolean;
}

export interface PrometheusServer {
  /** http://127.0.0.1:port */
  url: string;
  /** The running process's id (a new one after resume()). */
  readonly pid: number;
  /** Resolves once every target has been scraped successfully (`up == 1`). */
  waitUp(timeoutMs?: number): Promise<void>;
  /** SIGTERM, SIGKILL after a grace period; resolves once the process has exited and its folder is gone. */
  stop(): Promise<void>;
  /** Ends the process (SIGTERM: a clean shutdown; SIGKILL: a crash), keeping its config and storage. */
  halt(sig?: 'SIGTERM' | 'SIGKILL'): Promise<void>;
  /** Starts it again after halt(), on the same port and storage (its TSDB replays the WAL); resolves once ready. */
  resume(): Promise<void>;
  /** The tail of its log, for failure messages. */
  output(): string;
  /**
   * With `discovery`: replaces the group of targets named `group` (an empty list removes them). Prometheus picks the
   * change up within seconds; waitUp() then includes them.
   */
  setTargets(group: string, targets: ScrapeTarget[]): void;
}

const HOST = '127.0.0.1';

/** PROMETHEUS_PATH, then PATH, then /usr/bin/prometheus (as scripts/setup.sh looks it up). */
export function findPrometheus(): string | undefined {
  return findBinary('PROMETHEUS_PATH', ['prometheus'], ['/usr/bin/prometheus']);
}

export async function startPrometheus(opts: PrometheusOptions): Promise<PrometheusServer> {
  const bin = findPrometheus();
  if (!bin)
    throw new Error(`prometheus not found (PROMETHEUS_PATH, PATH, /usr/bin/prometheus): ${PROMETHEUS_HINT}`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'canary-prometheus-'));
  const port = await freePort();
  const configFile = path.join(dir, 'prometheus.yml');
  const sdDir = path.join(dir, 'targets');
  if (opts.discovery) fs.mkdirSync(sdDir);
  fs.writeFileSync(configFile, scrapeConfig(opts.targets, opts.discovery ? sdDir : undefined));
  const discovered = new Map<string, ScrapeTarget[]>();
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
  if (auth) args.push(`--web.config.file=${await writeBasicAuthWebConfig(dir, auth)}`);
  args.push(...(opts.extraFlags ?? []));

  const url = `http://${HOST}:${port}`;
  const headers = basicAuthHeaders(auth);
  const served = {
    name: 'prometheus',
    bin,
    args,
    dir,
    hint: PROMETHEUS_HINT,
    url,
    headers,
    readyTimeoutMs: opts.readyTimeoutMs ?? 30_000,
  };
  let server = await startServedBinary(served);
  let halted = false;
  const poll: ServedBinary['poll'] = (...a) => server.poll(...a);

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
      const all = [...opts.targets, ...[...discovered.values()].flat()];
      const down = all.filter((t) => up.get(`${t.job} ${new URL(t.url).host}`) !== '1');
      return down.length === 0 || `not up yet: ${down.map((t) => `${t.job} ${t.url}`).join(', ')}`;
    });

  return {
    url,
    get pid() {
      return server.pid;
    },
    waitUp,
    stop: () => server.stop(),
    halt: async (sig) => {
      await server.halt(sig);
      halted = true;
    },
    resume: async () => {
      // A second process on the same port and storage would fail, and its failed start would remove the folder.
      if (!halted) throw new Error('prometheus resume() without halt(): it is still running');
      halted = false;
      server = await startServedBinary(served);
    },
    output: () => server.output(),
    setTargets: (group, targets) => {
      if (!opts.discovery) throw new Error('setTargets() needs startPrometheus({ discovery: true })');
      if (!/^[A-Za-z0-9_.-]+$/.test(group))
        throw new Error(`target group "${group}": use letters, digits, _ . -`);
      const file = path.join(sdDir, `${group}.json`);
      if (targets.length === 0) {
        discovered.delete(group);
        fs.rmSync(file, { force: true });
        return;
      }
      discovered.set(group, targets);
      // Written aside, then renamed: Prometheus never reads half a file (the *.tmp name is not in its pattern).
      fs.writeFileSync(`${file}.tmp`, JSON.stringify(targets.map(fileSdGroup)));
      fs.renameSync(`${file}.tmp`, file);
    },
  };
}

/** One file_sd target group: the job, path and scheme travel as labels (SD labels win over the job's own). */
function fileSdGroup(t: ScrapeTarget): { targets: string[]; labels: Record<string, string> } {
  const u = new URL(t.url);
  return {
    targets: [u.host],
    labels: {
      ...(t.labels ?? {}),
      job: t.job,
      __metrics_path__: u.pathname,
      __scheme__: u.protocol.replace(':', ''),
    },
  };
}

function scrapeConfig(targets: ScrapeTarget[], sdDir?: string): string {
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
  if (sdDir) {
    lines.push(
      '  - job_name: "discovered"',
      '    file_sd_configs:',
      `      - files: [${JSON.stringify(path.join(sdDir, '*.json'))}]`,
      '        refresh_interval: 5s',
    );
  }
  return `${lines.join('\n')}\n`;
}
