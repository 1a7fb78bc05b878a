// A tiny HTTP service standing in for one version of the application behind the local proxy.
// Faults (error rate, added latency) are injected here so the canary analysis has something real to measure.
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface DemoServiceOptions {
  version: string;
  /** Probability (0..1) that `GET /` answers 500. */
  errorRate?: number;
  /** Mean added latency of `GET /` in ms; each request draws uniformly from [0.5, 1.5] × the mean. */
  latencyMs?: number;
  /** 0 (the default) picks a free port. */
  port?: number;
  host?: string;
}

export interface DemoService {
  url: string;
  port: number;
  version: string;
  close(): Promise<void>;
}

const DEFAULT_LATENCY_MS = 5;
/** How long close() waits for delayed answers before cutting connections. */
const DRAIN_MS = 2000;

export async function startDemoService(opts: DemoServiceOptions): Promise<DemoService> {
  const { version } = opts;
  const errorRate = opts.errorRate ?? 0;
  const latencyMs = opts.latencyMs ?? DEFAULT_LATENCY_MS;
  if (!version) throw new Error('a demo service needs a version');
  if (!(errorRate >= 0 && errorRate <= 1)) throw new Error(`errorRate must be within 0..1, got ${errorRate}`);
  if (!(latencyMs >= 0)) throw new Error(`latencyMs must be >= 0, got ${latencyMs}`);
  const host = opts.host ?? '127.0.0.1';

  // Pending delayed answers, cleared on close so a stopped service leaves no timers behind.
  const pending = new Set<NodeJS.Timeout>();
  const send = (res: http.ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  };

  // Requests whose answer has not been handed to the OS yet; close() drains them.
  let inFlight = 0;
  const server = http.createServer((req, res) => {
    inFlight++;
    res.once('close', () => inFlight--);
    const path = (req.url ?? '/').split('?')[0];
    if (req.method === 'GET' && path === '/healthz') return send(res, 200, { ok: true, version });
    if (req.method !== 'GET' || path !== '/') return send(res, 404, { error: 'not found', version });
    const delay = latencyMs * (0.5 + Math.random());
    const timer = setTimeout(() => {
      pending.delete(timer);
      if (Math.random() < errorRate) send(res, 500, { version, error: 'injected fault' });
      else send(res, 200, { version });
    }, delay);
    pending.add(timer);
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;

  let closed: Promise<void> | undefined;
  return {
    url: `http://${host}:${port}`,
    port,
    version,
    close() {
      // Stop accepting, let answers already being delayed finish (a replaced backend drains instead of
      // failing its in-flight requests), then drop whatever is left, keep-alive sockets included.
      closed ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        const force = () => {
          for (const t of pending) clearTimeout(t);
          pending.clear();
          server.closeAllConnections();
        };
        const deadline = Date.now() + DRAIN_MS;
        const poll = () => {
          if (inFlight === 0 || Date.now() >= deadline) force();
          else setTimeout(poll, 10);
        };
        poll();
      });
      return closed;
    },
  };
}
