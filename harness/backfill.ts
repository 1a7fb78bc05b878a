// History for backtests: writes the series the `http` template set reads (http_requests_total by code, and the
// http_request_duration_seconds histogram) for a past time range as OpenMetrics text, turns it into TSDB blocks with
// `promtool tsdb create-blocks-from openmetrics` (Debian's prometheus package ships promtool beside prometheus), and
// starts a real Prometheus over those blocks. Deterministic: counters grow by exactly rps × seconds, errors are an
// exact share of them, latencies fill the buckets by the asked distribution (as the live exporter does), so a rate
// over a window that lies inside one phase is exactly that phase's value.
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { cdf, quantileFunction, type LatencySpec } from './exporter';
import { findPrometheus, startPrometheus, type PrometheusOptions, type PrometheusServer } from './prometheus';

const run = promisify(execFile);

/** From `fromMs` on (until the next phase), one side behaves like this. */
export interface HistoryPhase {
  fromMs: number;
  rps: number;
  /** Share of requests answered 5xx (0..1). */
  errorRate: number;
  latencyMs?: LatencySpec;
}

export interface SideHistory {
  namespace: string;
  app: string;
  /** The version label (the http set selects a side by it). */
  version: string;
  /** Sorted by fromMs; the first one starts the side's series. */
  phases: HistoryPhase[];
  /** Where the side's series end (default: the history's end). */
  untilMs?: number;
  /** Write the latency histogram too (default false: only the request counters). */
  histogram?: boolean;
}

export interface History {
  startMs: number;
  endMs: number;
  /** Sample spacing, as a scrape interval (default 15 s). */
  stepMs?: number;
  sides: SideHistory[];
}

/** Bucket bounds in seconds, as client libraries default them. */
const BUCKETS_S = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const DEFAULT_LATENCY = { p50: 40, p95: 90, p99: 200 };

interface PhaseShape {
  fromMs: number;
  rps: number;
  errorRate: number;
  /** Cumulative bucket shares, in BUCKETS_S order. */
  buckets: number[];
  meanS: number;
}

function shape(p: HistoryPhase): PhaseShape {
  const q = quantileFunction(p.latencyMs ?? DEFAULT_LATENCY);
  let total = 0;
  for (let i = 0; i < 1000; i++) total += q((i + 0.5) / 1000);
  return {
    fromMs: p.fromMs,
    rps: p.rps,
    errorRate: p.errorRate,
    buckets: BUCKETS_S.map((le) => cdf(q, le * 1000)),
    meanS: total / 1000 / 1000,
  };
}

/** Requests, errors, bucket counts and latency sum from the side's start up to `t`. */
function totalsAt(phases: PhaseShape[], t: number) {
  const out = { requests: 0, errors: 0, buckets: BUCKETS_S.map(() => 0), sumS: 0 };
  phases.forEach((p, i) => {
    const end = Math.min(t, i + 1 < phases.length ? phases[i + 1].fromMs : Infinity);
    if (end <= p.fromMs) return;
    const n = (p.rps * (end - p.fromMs)) / 1000;
    out.requests += n;
    out.errors += n * p.errorRate;
    p.buckets.forEach((share, b) => (out.buckets[b] += n * share));
    out.sumS += n * p.meanS;
  });
  return out;
}

const num = (v: number) => (Number.isInteger(v) ? String(v) : v.toFixed(6));

/**
 * The history as OpenMetrics text (no metadata: the series are untyped, which PromQL does not mind), timestamp by
 * timestamp so every series' samples come in order, ending with `# EOF`.
 */
export function historyOpenMetrics(h: History): string {
  const step = h.stepMs ?? 15_000;
  const sides = h.sides.map((s) => ({ ...s, shapes: s.phases.map(shape) }));
  const lines: string[] = [];
  for (let t = h.startMs; t <= h.endMs; t += step) {
    const ts = (t / 1000).toFixed(3);
    for (const s of sides) {
      if (t < s.phases[0].fromMs || t > (s.untilMs ?? h.endMs)) continue;
      const c = totalsAt(s.shapes, t);
      const base = `namespace="${s.namespace}",app="${s.app}",version="${s.version}"`;
      lines.push(
        `http_requests_total{${base},method="GET",code="200"} ${num(c.requests - c.errors)} ${ts}`,
        `http_requests_total{${base},method="GET",code="500"} ${num(c.errors)} ${ts}`,
      );
      if (s.histogram) {
        BUCKETS_S.forEach((le, i) =>
          lines.push(`http_request_duration_seconds_bucket{${base},le="${le}"} ${num(c.buckets[i])} ${ts}`),
        );
        lines.push(
          `http_request_duration_seconds_bucket{${base},le="+Inf"} ${num(c.requests)} ${ts}`,
          `http_request_duration_seconds_sum{${base}} ${num(c.sumS)} ${ts}`,
          `http_request_duration_seconds_count{${base}} ${num(c.requests)} ${ts}`,
        );
      }
    }
  }
  lines.push('# EOF');
  return `${lines.join('\n')}\n`;
}

/** PROMTOOL_PATH, then promtool beside the prometheus binary the harness runs, then PATH. */
export function findPromtool(): string | undefined {
  const candidates = [
    process.env.PROMTOOL_PATH?.trim(),
    (() => {
      const bin = findPrometheus();
      return bin ? path.join(path.dirname(bin), 'promtool') : undefined;
    })(),
    ...(process.env.PATH ?? '').split(path.delimiter).map((d) => (d ? path.join(d, 'promtool') : undefined)),
  ];
  for (const c of candidates) {
    if (!c) continue;
    try {
      fs.accessSync(c, fs.constants.X_OK);
      if (fs.statSync(c).isFile()) return c;
    } catch {
      // not this one
    }
  }
  return undefined;
}

/** Writes the history into TSDB blocks in `dataDir` with promtool. */
export async function backfill(dataDir: string, h: History): Promise<void> {
  const promtool = findPromtool();
  if (!promtool) {
    throw new Error(
      "promtool not found (PROMTOOL_PATH, beside prometheus, PATH): Debian's prometheus package ships it; run " +
        '`bash scripts/setup.sh` (as root it installs the package)',
    );
  }
  const input = path.join(path.dirname(dataDir), 'history.om');
  fs.writeFileSync(input, historyOpenMetrics(h));
  try {
    await run(promtool, ['tsdb', 'create-blocks-from', 'openmetrics', '--quiet', input, dataDir], {
      maxBuffer: 16 * 1024 * 1024,
    });
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`promtool could not backfill ${input}: ${e.stderr?.trim() || e.message}`);
  } finally {
    fs.rmSync(input, { force: true });
  }
}

/** A real Prometheus serving only this history (it scrapes nothing). */
export function startBackfilledPrometheus(
  h: History,
  opts: Omit<PrometheusOptions, 'targets' | 'prepareStorage'> = {},
): Promise<PrometheusServer> {
  return startPrometheus({ ...opts, targets: [], prepareStorage: (dir) => backfill(dir, h) });
}
