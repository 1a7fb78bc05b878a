// The local stack: a weighted reverse proxy in front of a stable and an optional canary demo service,
// a JSON control API that the `local` providers drive, and per-side request/error/latency counters.
// It binds to loopback only: the control API has no authentication.
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import { createProxyServer } from 'http-proxy-3';
import { startDemoService, type DemoService } from './demo-service';

export interface Fault {
  /** Probability (0..1) that the version answers 500. */
  errorRate?: number;
  /** Mean added latency in ms. */
  latencyMs?: number;
}

export interface LocalStackOptions {
  /** 0 (the default) picks a free port. */
  proxyPort?: number;
  controlPort?: number;
  host?: '127.0.0.1';
  stableVersion: string;
  /** Faults injected into whichever side runs that version. */
  faults?: Record<string, Fault>;
}

export interface LocalStack {
  proxyUrl: string;
  controlUrl: string;
  close(): Promise<void>;
}

export type Side = 'stable' | 'canary';

export interface SideMetrics {
  requests: number;
  errors: number;
  /** Percent; null when the window holds no requests. */
  errorRate: number | null;
  /** Milliseconds; null when the window holds no requests. */
  p50: number | null;
  p95: number | null;
  p99: number | null;
  /** Mean latency in ms (the sum of latencies over the count); null when the window holds no requests. */
  mean: number | null;
  /** Requests per second over the part of the window this backend instance existed. */
  requestRate: number;
}

/** Longest metrics window, in seconds. Memory is bounded by it, whatever the uptime. */
export const MAX_WINDOW_SECONDS = 3600;

// Latency histogram: log-spaced bins, 8 per doubling from 0.1 ms to ~105 s. Reporting the geometric
// middle of a bin is within ~4.5 % of the true value, and a bin array is fixed size however busy a second is.
const HIST_MIN_MS = 0.1;
const BINS_PER_DOUBLING = 8;
const HIST_BINS = 1 + BINS_PER_DOUBLING * 20;
const binOf = (ms: number) =>
  ms <= HIST_MIN_MS
    ? 0
    : Math.min(HIST_BINS - 1, 1 + Math.floor(Math.log2(ms / HIST_MIN_MS) * BINS_PER_DOUBLING));
const binValue = (bin: number) => HIST_MIN_MS * 2 ** ((bin - 0.5) / BINS_PER_DOUBLING);

interface Bucket {
  second: number;
  requests: number;
  errors: number;
  min: number;
  max: number;
  /** Sum of the latencies, in ms, for the mean. */
  sum: number;
  hist: Uint32Array;
}

/**
 * Counters of one backend instance in one-second buckets kept in a ring covering MAX_WINDOW_SECONDS,
 * so memory stays flat over days. A window includes every bucket it overlaps (1 s granularity).
 */
export class WindowStats {
  private readonly ring: (Bucket | undefined)[] = new Array(MAX_WINDOW_SECONDS + 2);
  constructor(readonly since = Date.now()) {}

  record(latencyMs: number, error: boolean, now = Date.now()): void {
    const second = Math.floor(now / 1000);
    const slot = second % this.ring.length;
    let b = this.ring[slot];
    if (!b) {
      b = { second, requests: 0, errors: 0, min: Infinity, max: 0, sum: 0, hist: new Uint32Array(HIST_BINS) };
      this.ring[slot] = b;
    } else if (b.second !== second) {
      // A bucket from a previous lap of the ring: reuse its array instead of allocating.
      Object.assign(b, { second, requests: 0, errors: 0, min: Infinity, max: 0, sum: 0 });
      b.hist.fill(0);
    }
    b.requests++;
    if (error) b.errors++;
    b.min = Math.min(b.min, latencyMs);
    b.max = Math.max(b.max, latencyMs);
    b.sum += latencyMs;
    b.hist[binOf(latencyMs)]++;
  }

  summary(windowSeconds: number, now = Date.now()): SideMetrics {
    const first = Math.floor((now - windowSeconds * 1000) / 1000);
    const last = Math.floor(now / 1000);
    const hist = new Uint32Array(HIST_BINS);
    let requests = 0;
    let errors = 0;
    let min = Infinity;
    let max = 0;
    let sum = 0;
    for (let s = first; s <= last; s++) {
      const b = this.ring[s % this.ring.length];
      if (!b || b.second !== s || b.requests === 0) continue;
      requests += b.requests;
      errors += b.errors;
      min = Math.min(min, b.min);
      max = Math.max(max, b.max);
      sum += b.sum;
      for (let i = 0; i < HIST_BINS; i++) hist[i] += b.hist[i];
    }
    const percentile = (q: number): number | null => {
      if (requests === 0) return null;
      const rank = Math.max(1, Math.ceil(q * requests));
      let seen = 0;
      for (let i = 0; i < HIST_BINS; i++) {
        seen += hist[i];
        // Clamping to the observed extremes makes single-valued and narrow distributions exact.
        if (seen >= rank) return round(Math.min(max, Math.max(min, binValue(i))));
      }
      return round(max);
    };
    // Rate over the time actually covered: the window, cut to when this instance started (at least 1 s,
    // so a just-started canary does not report a burst as a huge rate).
    const coveredSeconds = Math.max(1, (now - Math.max(first * 1000, this.since)) / 1000);
    return {
      requests,
      errors,
      errorRate: requests === 0 ? null : round((errors / requests) * 100),
      p50: percentile(0.5),
      p95: percentile(0.95),
      p99: percentile(0.99),
      mean: requests === 0 ? null : round(sum / requests),
      requestRate: round(requests / coveredSeconds),
    };
  }
}

const round = (n: number) => Math.round(n * 100) / 100;

/** One running version on one side: its service, its own connection pool, its own counters. */
interface Backend {
  version: string;
  service: DemoService;
  agent: http.Agent;
  stats: WindowStats;
  /** Requests the proxy has routed here and not yet answered. */
  inFlight: number;
}

/** How long a replaced backend may take to answer what was routed to it before it is cut off. */
const DRAIN_MS = 5000;

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

const MAX_BODY_BYTES = 64 * 1024;

async function readJson(req: http.IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) throw new HttpError(413, `body larger than ${MAX_BODY_BYTES} bytes`);
    chunks.push(chunk);
  }
  const text = Buffer.concat(chunks).toString('utf8').trim();
  if (text === '') return {};
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new HttpError(400, 'body must be JSON');
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new HttpError(400, 'body must be a JSON object');
  }
  return body as Record<string, unknown>;
}

function versionOf(body: Record<string, unknown>): string {
  const v = body.version;
  if (typeof v !== 'string' || v.trim() === '' || v.length > 128) {
    throw new HttpError(
      400,
      `version must be a non-empty string (at most 128 characters), got ${JSON.stringify(v)}`,
    );
  }
  return v.trim();
}

function listen(server: http.Server, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

function closeServer(server: http.Server): Promise<void> {
  return new Promise((resolve) => {
    if (!server.listening) return resolve();
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

export async function startLocalStack(opts: LocalStackOptions): Promise<LocalStack> {
  const host = opts.host ?? '127.0.0.1';
  const faults = opts.faults ?? {};

  const startBackend = async (version: string): Promise<Backend> => ({
    version,
    service: await startDemoService({ version, host, ...faults[version] }),
    // One keep-alive pool per backend, destroyed with it, so no pooled socket outlives its server.
    agent: new http.Agent({ keepAlive: true, maxSockets: 256 }),
    stats: new WindowStats(),
    inFlight: 0,
  });
  const stopBackend = async (b: Backend) => {
    // Requests routed here just before the swap may not have reached the service yet; closing it now
    // would reset their pooled connections and turn them into 502s.
    const deadline = Date.now() + DRAIN_MS;
    while (b.inFlight > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    await b.service.close();
    b.agent.destroy();
  };

  let stable = await startBackend(opts.stableVersion);
  let canary: Backend | null = null;
  let weight = 0;

  // --- proxy -----------------------------------------------------------------------------------------
  const proxy = createProxyServer({ proxyTimeout: 30_000 });
  // Errors are handled per request below; this listener only keeps a stray one from throwing.
  proxy.on('error', () => {});

  const proxyServer = http.createServer((req, res) => {
    const toCanary = canary !== null && weight > 0 && Math.random() * 100 < weight;
    const backend = toCanary && canary ? canary : stable;
    const side: Side = backend === stable ? 'stable' : 'canary';
    const started = performance.now();
    let recorded = false;
    backend.inFlight++;
    res.once('close', () => backend.inFlight--);
    const record = (error: boolean) => {
      if (recorded) return;
      recorded = true;
      backend.stats.record(performance.now() - started, error);
    };
    // A client that hangs up before the answer tells nothing about the backend: only finished answers count.
    res.once('finish', () => record(res.statusCode >= 500));
    res.setHeader('x-canary-side', side);
    proxy.web(req, res, { target: backend.service.url, agent: backend.agent }, (err) => {
      if (!res.headersSent) {
        res.writeHead(502, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: `${side} ${backend.version} unreachable: ${err.message}` }));
      } else {
        record(true);
        res.destroy();
      }
    });
  });

  // --- control API -----------------------------------------------------------------------------------
  // Mutations run one at a time: two PUT /canary racing must not start two services.
  let chain: Promise<unknown> = Promise.resolve();
  const exclusive = <T>(fn: () => Promise<T>): Promise<T> => {
    const run = chain.then(fn, fn);
    chain = run.catch(() => undefined);
    return run;
  };

  const state = () => ({
    weight,
    stable: { version: stable.version, url: stable.service.url },
    canary: canary && { version: canary.version, url: canary.service.url },
  });

  const handle = async (method: string, path: string, url: URL, req: http.IncomingMessage) => {
    const route = `${method} ${path}`;
    switch (route) {
      case 'GET /healthz':
        return { ok: true };
      case 'GET /state':
        return state();
      case 'PUT /weight': {
        const body = await readJson(req);
        const w = body.weight;
        if (typeof w !== 'number' || !Number.isInteger(w) || w < 0 || w > 100) {
          throw new HttpError(400, `weight must be an integer from 0 to 100, got ${JSON.stringify(w)}`);
        }
        return exclusive(async () => {
          if (w > 0 && !canary) {
            throw new HttpError(409, `no canary is running: start one (PUT /canary) before giving it ${w} %`);
          }
          const previous = weight;
          weight = w;
          return { ...state(), previous };
        });
      }
      case 'PUT /canary': {
        const version = versionOf(await readJson(req));
        return exclusive(async () => {
          if (canary?.version === version) return { ...state(), changed: false };
          // Start the new one before swapping, so traffic already on the canary never meets a gap.
          const old = canary;
          canary = await startBackend(version);
          if (old) await stopBackend(old);
          return { ...state(), changed: true };
        });
      }
      case 'DELETE /canary':
        return exclusive(async () => {
          if (weight > 0) {
            throw new HttpError(
              409,
              `canary weight is ${weight} %: set it to 0 (PUT /weight) before stopping the canary, so no traffic is stranded`,
            );
          }
          const old = canary;
          canary = null;
          if (old) await stopBackend(old);
          return { ...state(), changed: old !== null };
        });
      case 'POST /promote': {
        const version = versionOf(await readJson(req));
        return exclusive(async () => {
          if (stable.version === version) return { ...state(), changed: false };
          const old = stable;
          stable = await startBackend(version);
          await stopBackend(old);
          return { ...state(), changed: true };
        });
      }
      case 'GET /metrics': {
        const side = url.searchParams.get('side');
        if (side !== 'canary' && side !== 'stable') {
          throw new HttpError(400, `side must be canary or stable, got ${JSON.stringify(side)}`);
        }
        const windowParam = url.searchParams.get('window');
        const window = Number(windowParam);
        if (windowParam === null || !(window > 0 && window <= MAX_WINDOW_SECONDS)) {
          throw new HttpError(
            400,
            `window must be a number of seconds in (0, ${MAX_WINDOW_SECONDS}], got ${JSON.stringify(windowParam)}`,
          );
        }
        const backend = side === 'stable' ? stable : canary;
        // No canary is simply no data: every value null, the analysis judges that.
        const metrics = backend ? backend.stats.summary(window) : new WindowStats().summary(window);
        return { side, version: backend?.version ?? null, window, ...metrics };
      }
      default:
        throw new HttpError(404, `no such endpoint: ${route}`);
    }
  };

  const controlServer = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://control');
    const reply = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    handle(req.method ?? 'GET', url.pathname, url, req).then(
      (body) => reply(200, body),
      (err: unknown) =>
        err instanceof HttpError
          ? reply(err.status, { error: err.message })
          : reply(500, { error: err instanceof Error ? err.message : String(err) }),
    );
  });

  let proxyPort: number;
  let controlPort: number;
  try {
    proxyPort = await listen(proxyServer, opts.proxyPort ?? 0, host);
    controlPort = await listen(controlServer, opts.controlPort ?? 0, host);
  } catch (err) {
    await Promise.all([closeServer(proxyServer), closeServer(controlServer), stopBackend(stable)]);
    throw err;
  }

  let closed: Promise<void> | undefined;
  return {
    proxyUrl: `http://${host}:${proxyPort}`,
    controlUrl: `http://${host}:${controlPort}`,
    close() {
      closed ??= (async () => {
        await Promise.all([closeServer(proxyServer), closeServer(controlServer)]);
        // Let a mutation in progress finish, so the backend it starts is stopped too.
        await chain;
        await Promise.all([stopBackend(stable), canary ? stopBackend(canary) : undefined]);
        proxy.close();
      })();
      return closed;
    },
  };
}
