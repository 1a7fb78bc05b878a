// Steady GET load against the local proxy, for the demo and tests. Deliberately bounded: loopback targets
// only, a capped rate and a capped number of requests in flight (ticks that find the cap reached are
// counted as dropped instead of queueing up).
import * as http from 'node:http';

export interface TrafficGeneratorOptions {
  /** Must point at 127.0.0.1, ::1 or localhost. */
  url: string;
  /** Requests per second, 1..MAX_RPS. */
  rps: number;
  /** Stops by itself after this long; absent means until stop(). */
  durationMs?: number;
}

export interface TrafficStats {
  sent: number;
  completed: number;
  /** 2xx-4xx answers. */
  ok: number;
  /** 5xx answers and failed requests. */
  errors: number;
  /** Requests skipped because MAX_IN_FLIGHT were still pending. */
  dropped: number;
  /** Answers per `version` found in the JSON body (the demo service reports it). */
  byVersion: Record<string, number>;
  /** Answers per side, from the proxy's x-canary-side header. */
  bySide: Record<string, number>;
}

export interface TrafficGenerator {
  /** Stops sending, waits for requests in flight, and returns the final stats. Idempotent. */
  stop(): Promise<TrafficStats>;
  stats(): TrafficStats;
}

export const MAX_RPS = 1000;
export const MAX_IN_FLIGHT = 64;
const TICK_MS = 20;
const REQUEST_TIMEOUT_MS = 10_000;
const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]']);

export function startTrafficGenerator(opts: TrafficGeneratorOptions): TrafficGenerator {
  const target = new URL(opts.url);
  if (target.protocol !== 'http:' || !LOOPBACK.has(target.hostname)) {
    throw new Error(
      `the traffic generator only targets http on loopback, not ${target.protocol}//${target.host}`,
    );
  }
  if (!(Number.isFinite(opts.rps) && opts.rps > 0 && opts.rps <= MAX_RPS)) {
    throw new Error(`rps must be within (0, ${MAX_RPS}], got ${opts.rps}`);
  }

  if (opts.durationMs !== undefined && !(opts.durationMs >= 0)) {
    throw new Error(`durationMs must be >= 0, got ${opts.durationMs}`);
  }

  const agent = new http.Agent({ keepAlive: true, maxSockets: MAX_IN_FLIGHT });
  const s: TrafficStats = { sent: 0, completed: 0, ok: 0, errors: 0, dropped: 0, byVersion: {}, bySide: {} };
  const inFlight = new Set<Promise<void>>();
  const bump = (m: Record<string, number>, k: string) => (m[k] = (m[k] ?? 0) + 1);

  const fire = () => {
    s.sent++;
    const done = new Promise<void>((resolve) => {
      const finish = (error: boolean) => {
        s.completed++;
        if (error) s.errors++;
        else s.ok++;
        resolve();
      };
      const req = http.get(target, { agent, timeout: REQUEST_TIMEOUT_MS }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', () => finish(true));
        res.on('end', () => {
          const side = res.headers['x-canary-side'];
          if (typeof side === 'string') bump(s.bySide, side);
          try {
            const version = (JSON.parse(Buffer.concat(chunks).toString('utf8')) as { version?: unknown })
              .version;
            if (typeof version === 'string') bump(s.byVersion, version);
          } catch {
            // Not the demo service's JSON: counted, just not by version.
          }
          finish((res.statusCode ?? 0) >= 500);
        });
      });
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', () => finish(true));
    });
    inFlight.add(done);
    void done.then(() => inFlight.delete(done));
  };

  // Sends however many requests are due since the start, so timer jitter does not change the rate.
  const started = Date.now();
  let due = 0;
  const tick = () => {
    // Capped at durationMs: a late tick must not add requests beyond rps × duration.
    const elapsed = Math.min(Date.now() - started, opts.durationMs ?? Infinity);
    const dueNow = Math.floor((elapsed * opts.rps) / 1000);
    for (; due < dueNow; due++) {
      if (inFlight.size >= MAX_IN_FLIGHT) s.dropped++;
      else fire();
    }
  };
  const timer = setInterval(tick, TICK_MS);
  const deadline =
    opts.durationMs === undefined
      ? undefined
      : setTimeout(() => {
          tick(); // the requests due up to the deadline itself
          void stop();
        }, opts.durationMs);

  const snapshot = (): TrafficStats => ({ ...s, byVersion: { ...s.byVersion }, bySide: { ...s.bySide } });
  let stopped: Promise<TrafficStats> | undefined;
  const stop = () => {
    stopped ??= (async () => {
      clearInterval(timer);
      if (deadline) clearTimeout(deadline);
      await Promise.all(inFlight);
      agent.destroy();
      return snapshot();
    })();
    return stopped;
  };

  return { stop, stats: snapshot };
}
