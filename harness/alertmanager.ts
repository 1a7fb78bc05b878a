// Starts a real Alertmanager (Debian's package prometheus-alertmanager, 0.25 here) on loopback for tests: clustering
// off (--cluster.listen-address=), a minimal configuration routing everything to a receiver that notifies no one,
// its own storage in a temporary folder, optional basic auth through its web config. It is stopped by its process
// id (SIGTERM, then SIGKILL), and a watchdog stops it if the test process dies first.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { freePort } from '../demo/dev-server';
import { basicAuthHeaders, findBinary, startServedBinary, writeBasicAuthWebConfig } from './served-binary';

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

/** ALERTMANAGER_PATH, then PATH (prometheus-alertmanager, alertmanager), then /usr/bin/prometheus-alertmanager. */
export function findAlertmanager(): string | undefined {
  return findBinary(
    'ALERTMANAGER_PATH',
    ['prometheus-alertmanager', 'alertmanager'],
    ['/usr/bin/prometheus-alertmanager'],
  );
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
  if (auth) args.push(`--web.config.file=${await writeBasicAuthWebConfig(dir, auth)}`);

  const url = `http://${HOST}:${port}`;
  const headers = basicAuthHeaders(auth);
  const { pid, stop, output } = await startServedBinary({
    name: 'alertmanager',
    bin,
    args,
    dir,
    hint: ALERTMANAGER_HINT,
    url,
    headers,
    readyTimeoutMs: opts.readyTimeoutMs ?? 30_000,
  });

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
