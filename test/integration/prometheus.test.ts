// The Prometheus metrics provider against a real Prometheus (Debian's 2.42 package) scraping exporters this test
// controls: every template of every set (istio, nginx, http) for both sides, a live change, "no data" (nothing
// matches, NaN, ±Inf) kept apart from "the query failed" (bad PromQL, unreachable, timeout, refused credentials),
// range queries and evaluation times for backtests, and basic auth through Prometheus's own web config.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { ProviderRegistry } from '../../activities/factory';
import {
  MetricsQueryError,
  PrometheusMetricsProvider,
  prometheusConnectionFromEnv,
  RETRY_BASE_MS,
  retryDelayMs,
  type PrometheusQuery,
  type PrometheusSettings,
} from '../../activities/metrics/prometheus';
import { templateNames, type TemplateSetName } from '../../activities/metrics/templates';
import { validateTarget, type Target } from '../../workflows/target';
import { freePort } from '../../demo/dev-server';
import { meanLatencyMs, startExporter, type Exporter, type ExporterOptions } from '../../harness/exporter';
import { findPrometheus, startPrometheus, type PrometheusServer } from '../../harness/prometheus';

jest.setTimeout(60_000);

const NAMESPACE = 'shop';
const APP = 'checkout';
const WINDOW = 10; // seconds each accuracy check looks back
const SETS: TemplateSetName[] = ['istio', 'nginx', 'http'];

type SideSpec = Pick<
  ExporterOptions,
  'version' | 'workload' | 'rps' | 'errorRate' | 'clientErrorRate' | 'latencyMs'
>;
const SIDES: Record<'stable' | 'canary', SideSpec> = {
  stable: {
    version: 'v1',
    workload: APP,
    rps: 60,
    errorRate: 0.01,
    clientErrorRate: 0.03, // 4xx: not errors
    latencyMs: { p50: 40, p95: 120, p99: 300 },
  },
  canary: {
    version: 'v2',
    workload: `${APP}-canary`,
    rps: 40,
    errorRate: 0.03,
    latencyMs: { p50: 70, p95: 400, p99: 800 },
  },
};
// Bucket bounds (ms) both histogram flavours share around these values: 25, 50, 100, 250, 500, 1000.
const BOUNDS_MS = [0, 0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000];

let prom: PrometheusServer;
const exporters = new Map<string, Exporter>();
let idle: Exporter;
let startedAt: number;
const registry = new ProviderRegistry({
  router: 'local',
  workloads: 'local',
  metrics: 'local',
  kube: {},
  localControlUrl: 'http://127.0.0.1:9',
  prometheus: { timeoutMs: 5_000 },
});

function target(spec: Record<string, unknown>): Target {
  const v = validateTarget({ app: APP, namespace: NAMESPACE, ...spec });
  if (!v.ok) throw new Error(JSON.stringify(v.problems));
  return v.target;
}

/** The rollout targets each set is meant for, through the worker's provider registry (templates derived). */
function providerFor(set: TemplateSetName, url = prom.url): PrometheusMetricsProvider {
  const traffic = set === 'istio' ? { istio: {} } : set === 'nginx' ? { nginx: {} } : { gatewayAPI: {} };
  const p = registry.metrics(
    target({ workload: { kind: 'Deployment' }, traffic, metrics: { prometheus: { url } } }),
  ) as PrometheusMetricsProvider;
  expect(p.type).toBe('prometheus');
  expect(p.templates).toBe(set);
  return p;
}

function direct(settings: Partial<PrometheusSettings> = {}, app = APP): PrometheusMetricsProvider {
  return new PrometheusMetricsProvider(
    { url: prom.url, templates: 'http', timeoutMs: 5_000, ...settings },
    target({ app }),
    { stable: 'v1', canary: 'v2' },
  );
}

const q = (
  side: 'stable' | 'canary',
  metric: string,
  extra: Partial<PrometheusQuery> = {},
): PrometheusQuery => ({
  side,
  metric,
  windowSeconds: WINDOW,
  version: SIDES[side].version, // the http set selects a side by its version
  ...extra,
});

async function queryError(run: Promise<unknown>): Promise<MetricsQueryError> {
  try {
    await run;
  } catch (err) {
    expect(err).toBeInstanceOf(MetricsQueryError);
    return err as MetricsQueryError;
  }
  throw new Error('expected a MetricsQueryError');
}

/** The histogram bucket (ms) a latency falls in: (lower, upper]. */
function bucketOf(ms: number): [number, number] {
  for (let i = 1; i < BOUNDS_MS.length; i++) if (ms <= BOUNDS_MS[i]) return [BOUNDS_MS[i - 1], BOUNDS_MS[i]];
  return [BOUNDS_MS[BOUNDS_MS.length - 1], Infinity];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

beforeAll(async () => {
  startedAt = Date.now();
  for (const set of SETS) {
    for (const side of ['stable', 'canary'] as const) {
      exporters.set(
        `${set}-${side}`,
        await startExporter({ set, side, app: APP, namespace: NAMESPACE, ...SIDES[side] }),
      );
    }
  }
  idle = await startExporter({
    set: 'http',
    side: 'stable',
    app: 'idle',
    namespace: NAMESPACE,
    version: 'v1',
    workload: 'idle',
    rps: 0,
    errorRate: 0,
    latencyMs: { p50: 10, p95: 20, p99: 30 },
  });
  prom = await startPrometheus({
    targets: [
      ...[...exporters].map(([job, e]) => ({ job, url: e.url })),
      { job: 'idle', url: idle.url, labels: { team: 'test' } },
    ],
  });
  await prom.waitUp();
  // Let the window fill with samples: rate() over a half-covered window underestimates.
  await sleep(WINDOW * 1000 + 1500);
});

afterAll(async () => {
  await prom?.stop();
  await Promise.all([...exporters.values(), ...(idle ? [idle] : [])].map((e) => e.stop()));
});

describe.each(SETS)('the %s template set', (set) => {
  test.each(['stable', 'canary'] as const)(
    'every template returns what the %s exporter serves',
    async (side) => {
      const p = providerFor(set);
      const spec = SIDES[side];
      const latency = spec.latencyMs as { p50: number; p95: number; p99: number };
      const values = Object.fromEntries(
        await Promise.all(
          templateNames(set)
            .filter((m) => m !== 'latency')
            .map(async (m) => [m, await p.runQuery(q(side, m))] as const),
        ),
      ) as Record<string, number | null>;
      const errorPct = spec.errorRate * 100;
      expect(Math.abs(values['error-rate']! - errorPct)).toBeLessThanOrEqual(0.5);
      expect(Math.abs(values['5xx-rate']! - errorPct)).toBeLessThanOrEqual(0.5);
      // 4xx count as success: the stable side's 3 % of 404s do not lower it.
      expect(Math.abs(values['request-success-rate']! - (100 - errorPct))).toBeLessThanOrEqual(0.5);
      for (const pct of ['p50', 'p95', 'p99'] as const) {
        const [lo, hi] = bucketOf(latency[pct]);
        const got = values[`latency-${pct}`]!;
        expect({ pct, got, inBucket: got > lo && got <= hi }).toEqual({ pct, got, inBucket: true });
      }
      // The mean from the histogram's _sum / _count, which the exporter fills with the spec's mean.
      expect(Math.abs(values['latency-avg']! / meanLatencyMs(latency) - 1)).toBeLessThanOrEqual(0.02);
      expect(Math.abs(values['request-rate']! / spec.rps - 1)).toBeLessThanOrEqual(0.15);
      expect(Math.abs(values['request-count']! / (spec.rps * WINDOW) - 1)).toBeLessThanOrEqual(0.15);

      // Any quantile through the parameterised template; it agrees with the fixed one. Both are
      // evaluated at one instant a few scrapes back: at "now", a scrape stamped just before the
      // instant can land between the two queries and move the second one's answer.
      const atMs = Date.now() - 3_000;
      const p95 = await p.runQuery(q(side, 'latency', { params: { quantile: 0.95 }, atMs }));
      expect(p95).toBeCloseTo((await p.runQuery(q(side, 'latency-p95', { atMs })))!, 6);
    },
  );
});

test('a custom query takes the same placeholders, the selector included', async () => {
  const p = providerFor('istio');
  const custom = (side: 'stable' | 'canary', query: string) =>
    p.runQuery({ side, query, windowSeconds: WINDOW, version: SIDES[side].version });
  const canaryRate = await custom(
    'canary',
    'sum(rate(istio_requests_total{reporter="destination", destination_workload_namespace="{{namespace}}", destination_workload="{{workload}}"}[{{window}}]))',
  );
  expect(Math.abs(canaryRate! / SIDES.canary.rps - 1)).toBeLessThanOrEqual(0.15);
  const viaSelector = await custom('stable', 'sum(rate(istio_requests_total{ {{selector}} }[{{window}}]))');
  expect(Math.abs(viaSelector! / SIDES.stable.rps - 1)).toBeLessThanOrEqual(0.15);
  // {{app}}, {{version}} and {{side}} render too (here into labels of a constant vector).
  expect(
    await custom('canary', 'count(label_replace(vector(1), "v", "{{app}}/{{version}}/{{side}}", "", ""))'),
  ).toBe(1);
});

describe('no data is null, never a number', () => {
  test('a selector that matches nothing', async () => {
    const ghost = direct({}, 'ghost');
    for (const m of templateNames('http').filter((n) => n !== 'latency')) {
      expect({ m, v: await ghost.runQuery(q('canary', m)) }).toEqual({ m, v: null });
    }
  });

  test('NaN and ±Inf: ratios and quantiles over zero traffic, divisions by zero', async () => {
    const p = direct({}, 'idle');
    const idleQ = (metric: string) =>
      p.runQuery({ side: 'stable', metric, windowSeconds: WINDOW, version: 'v1' });
    expect(await idleQ('request-rate')).toBe(0); // series exist, no requests: a real 0
    expect(await idleQ('request-count')).toBe(0);
    expect(await idleQ('error-rate')).toBeNull(); // 0/0
    expect(await idleQ('request-success-rate')).toBeNull();
    expect(await idleQ('latency-p95')).toBeNull(); // histogram_quantile over empty buckets
    for (const query of ['vector(1) / 0', '-vector(1) / 0', '0 / 0', 'scalar(vector(1)) / 0']) {
      expect({ query, v: await p.runQuery({ side: 'stable', query, windowSeconds: 60 }) }).toEqual({
        query,
        v: null,
      });
    }
    expect(await p.runQuery({ side: 'stable', query: 'scalar(vector(2.5))', windowSeconds: 60 })).toBe(2.5);
  });

  test('an evaluation time before the data began', async () => {
    const p = providerFor('http');
    expect(await p.runQuery(q('stable', 'request-rate', { atMs: startedAt - 120_000 }))).toBeNull();
    const recent = await p.runQuery(q('stable', 'request-rate', { atMs: Date.now() - 2_000 }));
    expect(Math.abs(recent! / SIDES.stable.rps - 1)).toBeLessThanOrEqual(0.15);
  });
});

test('a range query returns the series, ascending, without NaN points', async () => {
  const p = providerFor('nginx');
  const endMs = Date.now();
  const points = await p.rangeQuery({
    ...q('canary', 'request-rate'),
    windowSeconds: 5,
    startMs: endMs - 8_000,
    endMs,
    stepSeconds: 1,
  });
  expect(points.length).toBeGreaterThanOrEqual(7);
  for (const [t, v] of points) {
    expect(t).toBeGreaterThanOrEqual(endMs - 8_000);
    expect(t).toBeLessThanOrEqual(endMs);
    expect(Math.abs(v / SIDES.canary.rps - 1)).toBeLessThanOrEqual(0.2);
  }
  expect(points.map(([t]) => t)).toEqual([...points.map(([t]) => t)].sort((a, b) => a - b));

  const idleSeries = await direct({}, 'idle').rangeQuery({
    side: 'stable',
    metric: 'error-rate',
    version: 'v1',
    windowSeconds: 5,
    startMs: endMs - 8_000,
    endMs,
    stepSeconds: 1,
  });
  expect(idleSeries).toEqual([]); // every point is 0/0
});

describe('a query that did not run is an error of its own kind', () => {
  test('bad PromQL: bad_query, naming the server and the query', async () => {
    const p = direct();
    const err = await queryError(
      p.runQuery({
        side: 'canary',
        query: 'sum(rate(http_requests_total{app="{{app}}"}[{{window}}])',
        windowSeconds: 60,
      }),
    );
    expect(err.kind).toBe('bad_query');
    expect(err.message).toContain(prom.url);
    expect(err.message).toContain('sum(rate(http_requests_total{app="checkout"}[1m])');
    expect(err.message).toMatch(/bad_data/);
  });

  test('a query returning several series, an unknown placeholder or metric, a missing parameter', async () => {
    const p = direct();
    const several = await queryError(
      p.runQuery({ side: 'canary', query: 'http_requests_total', windowSeconds: 60 }),
    );
    expect(several.kind).toBe('bad_query');
    expect(several.message).toMatch(/returned \d+ series; a check needs one value/);
    const typo = await queryError(
      p.runQuery({ side: 'canary', query: 'up{namespace="{{namespce}}"}', windowSeconds: 60 }),
    );
    expect(typo.message).toMatch(/unknown placeholder \{\{namespce\}\}.*known: .*\{\{namespace\}\}/);
    const metric = await queryError(p.runQuery({ side: 'canary', metric: 'eror-rate', windowSeconds: 60 }));
    expect(metric.message).toMatch(/unknown metric "eror-rate": the http template set offers .*error-rate/);
    const param = await queryError(p.runQuery({ side: 'canary', metric: 'latency', windowSeconds: 60 }));
    expect(param.message).toMatch(/needs the parameter quantile/);
    // The http set selects a side by its version: without one it says so instead of querying everything.
    const noVersion = new PrometheusMetricsProvider(
      { url: prom.url, templates: 'http', timeoutMs: 5_000 },
      target({}),
    );
    const err = await queryError(
      noVersion.runQuery({ side: 'stable', metric: 'error-rate', windowSeconds: 60 }),
    );
    expect(err.message).toMatch(/selects the stable side by its version, which is not known/);
  });

  test('unreachable: kind unreachable with the URL; isOnline false', async () => {
    const url = `http://127.0.0.1:${await freePort()}`;
    const p = direct({ url });
    const err = await queryError(p.runQuery(q('canary', 'error-rate')));
    expect(err.kind).toBe('unreachable');
    expect(err.message).toContain(`Prometheus at ${url} is unreachable (ECONNREFUSED`);
    expect(err.message).toContain('http_requests_total');
    expect(await p.isOnline()).toBe(false);
    expect(await direct().isOnline()).toBe(true);
  });

  test('a refused connection is retried with backoff (2 retries by default), then names its attempts', async () => {
    const url = `http://127.0.0.1:${await freePort()}`;
    const started = Date.now();
    const err = await queryError(direct({ url }).runQuery(q('canary', 'error-rate')));
    // 0.5 s, then 1 s: a moment for a restarting server before the round counts it as failed.
    expect(Date.now() - started).toBeGreaterThanOrEqual(RETRY_BASE_MS * 3 - 20);
    expect(err).toMatchObject({ kind: 'unreachable', transient: true });
    expect(err.message).toMatch(/is unreachable \(ECONNREFUSED[^)]*\) \(3 attempts\); query: /);
    const once = await queryError(direct({ url, retries: 0 }).runQuery(q('canary', 'error-rate')));
    expect(once.message).not.toMatch(/attempts/);
    // A probe answers at once.
    const probe = Date.now();
    expect(await direct({ url }).isOnline()).toBe(false);
    expect(Date.now() - probe).toBeLessThan(RETRY_BASE_MS);
    expect([1, 2, 3, 4, 5].map(retryDelayMs)).toEqual([500, 1000, 2000, 4000, 4000]);
  });

  test('what waiting cannot fix is not retried: bad PromQL, a 404, refused credentials', async () => {
    const bad = await queryError(
      direct({ retries: 5 }).runQuery({ side: 'canary', query: 'sum(rate(x[1m])', windowSeconds: 60 }),
    );
    expect(bad).toMatchObject({ kind: 'bad_query', transient: false });
    expect(bad.message).not.toMatch(/attempts/);
    const notFound = await queryError(
      direct({ url: `${prom.url}/nothing-here`, retries: 5 }).runQuery(q('canary', 'error-rate')),
    );
    expect(notFound).toMatchObject({ kind: 'server', transient: false });
    expect(notFound.message).not.toMatch(/attempts/);
  });

  test('a server that never answers: kind timeout', async () => {
    const sockets: net.Socket[] = [];
    const silent = net.createServer((s) => sockets.push(s));
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    try {
      const port = (silent.address() as net.AddressInfo).port;
      const err = await queryError(
        direct({ url: `http://127.0.0.1:${port}`, timeoutMs: 300 }).runQuery(q('canary', 'error-rate')),
      );
      expect(err.kind).toBe('timeout');
      expect(err.message).toContain(`http://127.0.0.1:${port} did not answer within 300 ms`);
    } finally {
      sockets.forEach((s) => s.destroy());
      await new Promise((r) => silent.close(r));
    }
  });
});

test('a live change on the canary shows within a few scrapes', async () => {
  const providers = SETS.map((set) => providerFor(set));
  const before = await Promise.all(
    providers.map((p) => p.runQuery(q('canary', 'error-rate', { windowSeconds: 3 }))),
  );
  for (const v of before) expect(v!).toBeLessThan(5);
  const changedAt = Date.now();
  for (const set of SETS) exporters.get(`${set}-canary`)!.set({ errorRate: 0.07 });
  const seenAfter: number[] = [];
  await Promise.all(
    providers.map(async (p, i) => {
      for (;;) {
        const v = await p.runQuery(q('canary', 'error-rate', { windowSeconds: 3 }));
        if (v !== null && v > 6) break;
        if (Date.now() - changedAt > 10_000)
          throw new Error(`${SETS[i]}: canary error rate still ${v} after 10 s`);
        await sleep(250);
      }
      seenAfter[i] = Date.now() - changedAt;
    }),
  );
  // A 3 s window at a 1 s scrape: the new rate dominates after two or three scrapes.
  for (const ms of seenAfter) expect(ms).toBeLessThan(6_000);
  await sleep(4_000);
  for (const p of providers) {
    expect(
      Math.abs((await p.runQuery(q('canary', 'error-rate', { windowSeconds: 3 })))! - 7),
    ).toBeLessThanOrEqual(1);
    // The stable side did not move.
    expect(Math.abs((await p.runQuery(q('stable', 'error-rate')))! - 1)).toBeLessThanOrEqual(0.5);
  }
});

describe('basic auth through Prometheus --web.config.file', () => {
  const USER = 'canary';
  const PASSWORD = 'pa55-Correct-Horse';
  let secured: PrometheusServer;
  let dir: string;

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'canary-prom-auth-'));
    secured = await startPrometheus({
      targets: [],
      webConfig: { basicAuth: { username: USER, password: PASSWORD } },
    });
  });
  afterAll(async () => {
    await secured?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const ask = (settings: Partial<PrometheusSettings>) =>
    new PrometheusMetricsProvider(
      { url: secured.url, templates: 'http', timeoutMs: 5_000, ...settings },
      target({}),
    );
  const one = { side: 'canary' as const, query: 'vector(1)', windowSeconds: 60 };

  test('the right password (given directly, or as a file from the environment) works', async () => {
    expect(await ask({ username: USER, password: PASSWORD }).runQuery(one)).toBe(1);
    const file = path.join(dir, 'password');
    fs.writeFileSync(file, `${PASSWORD}\n`);
    const env = prometheusConnectionFromEnv({
      CANARY_PROMETHEUS_URL: secured.url,
      CANARY_PROMETHEUS_USERNAME: USER,
      CANARY_PROMETHEUS_PASSWORD_FILE: file,
    });
    expect(await ask(env).runQuery(one)).toBe(1);
    expect(await ask(env).isOnline()).toBe(true);
  });

  test('a wrong password, none, or a bearer token: kind auth, and no secret in the message', async () => {
    const wrong = await queryError(ask({ username: USER, password: 'wrong-Battery-Staple' }).runQuery(one));
    expect(wrong.kind).toBe('auth');
    expect(wrong.message).toContain(`Prometheus at ${secured.url} refused the request (HTTP 401`);
    expect(wrong.message).not.toContain('wrong-Battery-Staple');
    expect(wrong.message).not.toContain(PASSWORD);
    expect((await queryError(ask({}).runQuery(one))).kind).toBe('auth');
    const token = await queryError(ask({ bearerToken: 'tok-0123456789abcdef' }).runQuery(one));
    expect(token.kind).toBe('auth');
    expect(token.message).not.toContain('tok-0123456789abcdef');
    expect(await ask({ username: USER, password: 'nope-nope' }).isOnline()).toBe(false);
  });

  test('once stopped: kind unreachable, naming the URL', async () => {
    const p = ask({ username: USER, password: PASSWORD });
    await secured.stop();
    const err = await queryError(p.runQuery(one));
    expect(err.kind).toBe('unreachable');
    expect(err.message).toContain(secured.url);
    expect(err.message).not.toContain(PASSWORD);
  });
});

describe('behind an https proxy that wants a bearer token (TLS and tokens from the environment)', () => {
  let proxy: https.Server;
  let proxyUrl: string;
  let dir: string;
  let ca: string;
  let token = 'token-one-0123456789';

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'canary-prom-tls-'));
    const made = spawnSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:prime256v1',
        '-nodes',
        '-days',
        '1',
      ].concat([
        '-keyout',
        path.join(dir, 'key.pem'),
        '-out',
        path.join(dir, 'cert.pem'),
        '-subj',
        '/CN=127.0.0.1',
        '-addext',
        'subjectAltName=IP:127.0.0.1',
      ]),
      { encoding: 'utf8' },
    );
    if (made.status !== 0) throw new Error(`openssl could not make a test certificate: ${made.stderr}`);
    ca = fs.readFileSync(path.join(dir, 'cert.pem'), 'utf8');
    proxy = https.createServer({ key: fs.readFileSync(path.join(dir, 'key.pem')), cert: ca }, (req, res) => {
      if (req.headers.authorization !== `Bearer ${token}`) {
        res.writeHead(403, { 'content-type': 'text/plain' }).end('Forbidden\n');
        return;
      }
      const upstream = http.request(
        `${prom.url}${req.url}`,
        { method: req.method, headers: req.headers },
        (r) => {
          res.writeHead(r.statusCode ?? 502, r.headers);
          r.pipe(res);
        },
      );
      upstream.on('error', () => res.writeHead(502).end('bad gateway\n'));
      req.pipe(upstream);
    });
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
    proxyUrl = `https://127.0.0.1:${(proxy.address() as net.AddressInfo).port}`;
  });
  afterAll(async () => {
    proxy?.closeAllConnections();
    await new Promise((r) => proxy?.close(r));
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('the CA and a token file (re-read at each query, so a rotated token is picked up)', async () => {
    const tokenFile = path.join(dir, 'token');
    fs.writeFileSync(tokenFile, `${token}\n`);
    fs.writeFileSync(path.join(dir, 'ca.pem'), ca);
    const env = prometheusConnectionFromEnv({
      CANARY_PROMETHEUS_BEARER_TOKEN_FILE: tokenFile,
      CANARY_PROMETHEUS_CA_FILE: path.join(dir, 'ca.pem'),
    });
    const p = direct({ ...env, url: proxyUrl });
    const rate = await p.runQuery(q('stable', 'request-rate'));
    expect(Math.abs(rate! / SIDES.stable.rps - 1)).toBeLessThanOrEqual(0.15);
    token = 'token-two-9876543210';
    const refused = await queryError(p.runQuery(q('stable', 'request-rate')));
    expect(refused.kind).toBe('auth');
    expect(refused.message).toContain(`Prometheus at ${proxyUrl} refused the request (HTTP 403: Forbidden)`);
    expect(refused.message).not.toContain('token-one');
    fs.writeFileSync(tokenFile, token);
    expect(await p.runQuery(q('stable', 'request-rate'))).not.toBeNull();
  });

  test('without the CA: kind unreachable, saying which setting helps; skipping verification works', async () => {
    const err = await queryError(
      direct({ url: proxyUrl, bearerToken: token }).runQuery(q('stable', 'request-rate')),
    );
    expect(err.kind).toBe('unreachable');
    expect(err.message).toMatch(
      /failed the TLS handshake \(DEPTH_ZERO_SELF_SIGNED_CERT.*CANARY_PROMETHEUS_CA_FILE/,
    );
    expect(err.message).not.toContain(token);
    const insecure = direct({ url: proxyUrl, bearerToken: token, insecureSkipVerify: true });
    expect(await insecure.runQuery(q('stable', 'request-rate'))).not.toBeNull();
  });
});

test('a server that is not Prometheus: kind server', async () => {
  const web = http.createServer((req, res) =>
    req.url?.startsWith('/api/v1/') && req.url !== '/api/v1/query'
      ? res.writeHead(404).end('404 page not found\n')
      : res.writeHead(200, { 'content-type': 'text/html' }).end('<html>hello</html>'),
  );
  await new Promise<void>((r) => web.listen(0, '127.0.0.1', r));
  try {
    const base = `http://127.0.0.1:${(web.address() as net.AddressInfo).port}`;
    const html = await queryError(direct({ url: base }).runQuery(q('stable', 'request-rate')));
    expect(html.kind).toBe('server');
    expect(html.message).toContain(
      `Prometheus at ${base} answered with something that is not the Prometheus HTTP API`,
    );
    const missing = await queryError(direct({ url: `${base}/nested` }).runQuery(q('stable', 'request-rate')));
    expect(missing.kind).toBe('server');
  } finally {
    web.closeAllConnections();
    await new Promise((r) => web.close(r));
  }
});

test('Prometheus killed and restarted on its storage while a query waits: the retries carry the query across, and what it scraped before is still there', async () => {
  const p = direct({ retries: 5 }); // 0.5 + 1 + 2 + 4 + 4 s of backoff at most
  const beforeMs = Date.now() - 2_000;
  const before = await p.runQuery(q('canary', 'request-count', { atMs: beforeMs }));
  expect(before).toBeGreaterThan(0);
  const oldPid = prom.pid;
  await prom.halt('SIGKILL');
  const started = Date.now();
  const answer = p.runQuery({ side: 'canary', query: 'vector(1)', windowSeconds: 60 });
  await sleep(RETRY_BASE_MS + 200); // the first attempt was refused, and the first retry too
  await prom.resume();
  expect(await answer).toBe(1);
  expect(Date.now() - started).toBeGreaterThanOrEqual(RETRY_BASE_MS);
  expect(prom.pid).not.toBe(oldPid);
  // The TSDB replayed its write-ahead log: the samples from before the kill answer as before.
  expect(await p.runQuery(q('canary', 'request-count', { atMs: beforeMs }))).toBe(before);
  await prom.waitUp();
});

test('a missing binary says how to get one', async () => {
  const saved = process.env.PROMETHEUS_PATH;
  process.env.PROMETHEUS_PATH = '/nonexistent/prometheus';
  try {
    expect(() => findPrometheus()).toThrow(
      /PROMETHEUS_PATH=\/nonexistent\/prometheus is not an executable file/,
    );
    await expect(startPrometheus({ targets: [] })).rejects.toThrow(/PROMETHEUS_PATH/);
  } finally {
    if (saved === undefined) delete process.env.PROMETHEUS_PATH;
    else process.env.PROMETHEUS_PATH = saved;
  }
});
