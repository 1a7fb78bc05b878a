// The local stack and the local providers against real servers on loopback (ephemeral ports, no mocks).
import * as http from 'node:http';
import * as net from 'node:net';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ProviderRegistry, providersFromEnv, type ProviderConfig } from '../../activities/factory';
import { LocalStackClient } from '../../activities/local/control-client';
import { startLocalStack, WindowStats, MAX_WINDOW_SECONDS, type LocalStack } from '../../demo/stack';
import { parseStackArgs } from '../../demo/stack-main';
import { startTrafficGenerator } from '../../demo/traffic-generator';
import { createActivities } from '../../activities/rollout-activities';
import type { AlertEvent } from '../../activities/types';

const target = { app: 'demo', namespace: 'default' };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Hit {
  status: number;
  version?: string;
  side: string | null;
}

/** n GETs through the proxy, `concurrency` at a time. */
async function hit(url: string, n: number, concurrency = 20): Promise<Hit[]> {
  const results: Hit[] = [];
  let next = 0;
  const worker = async () => {
    while (next < n) {
      next++;
      const res = await fetch(url);
      const body = (await res.json()) as { version?: string };
      results.push({ status: res.status, version: body.version, side: res.headers.get('x-canary-side') });
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return results;
}

const count = <T>(xs: T[], pred: (x: T) => boolean) => xs.filter(pred).length;

/** A port nothing listens on (bound, then released). */
async function deadPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((r) => server.close(r));
  return port;
}

function alert(overrides: Partial<AlertEvent> = {}): AlertEvent {
  return {
    event: 'rollout_started',
    severity: 'info',
    target,
    version: 'v2',
    workflowId: 'rollout-demo-default',
    message: 'rollout of v2 started',
    at: new Date().toISOString(),
    ...overrides,
  };
}

let stack: LocalStack;
let client: LocalStackClient;
let tmp: string;

beforeAll(async () => {
  stack = await startLocalStack({
    stableVersion: 'v1',
    faults: { bad: { errorRate: 0.3 }, slow: { latencyMs: 60 } },
  });
  client = new LocalStackClient(stack.controlUrl);
  tmp = mkdtempSync(join(tmpdir(), 'local-stack-test-'));
});

afterAll(async () => {
  await stack.close();
  rmSync(tmp, { recursive: true, force: true });
});

// Every test starts from: stable v1, no canary, weight 0.
beforeEach(async () => {
  const state = await client.state();
  if (state.weight !== 0) await client.setWeight(0);
  await client.deleteCanary();
  await client.promote('v1');
});

const config = (overrides: Partial<ProviderConfig> = {}): ProviderConfig => ({
  router: 'local',
  workloads: 'local',
  metrics: 'local',
  kube: {},
  localControlUrl: stack.controlUrl,
  alertLogPath: join(tmp, 'alerts.jsonl'),
  ...overrides,
});

describe('proxy', () => {
  test('splits traffic close to the weight', async () => {
    await client.ensureCanary('v2');
    await client.setWeight(25);
    const hits = await hit(stack.proxyUrl, 1000);
    const toCanary = count(hits, (h) => h.version === 'v2');
    // Binomial(1000, 0.25): mean 250, sd 13.7. ±65 is 4.7 sd, a false failure about once in 400 000 runs,
    // yet it still catches a proxy that ignores the weight or inverts it (0, 750, 1000 are far outside).
    expect(Math.abs(toCanary - 250)).toBeLessThanOrEqual(65);
    expect(count(hits, (h) => h.status === 200)).toBe(1000);
    // The side header and the body agree, and the counters saw exactly what the clients saw.
    expect(count(hits, (h) => h.side === 'canary')).toBe(toCanary);
    expect((await client.metrics('canary', 60)).requests).toBe(toCanary);
  });

  test('weight 0 sends nothing to the canary', async () => {
    await client.ensureCanary('v2');
    const hits = await hit(stack.proxyUrl, 200);
    expect(hits.every((h) => h.version === 'v1' && h.side === 'stable')).toBe(true);
    const m = await client.metrics('canary', 60);
    expect(m).toMatchObject({
      requests: 0,
      errors: 0,
      errorRate: null,
      p50: null,
      p95: null,
      p99: null,
      mean: null,
    });
  });

  test('a faulty canary shows its error rate, and windows filter by time', async () => {
    await client.ensureCanary('bad');
    await client.setWeight(100);
    const hits = await hit(stack.proxyUrl, 400);
    const failed = count(hits, (h) => h.status === 500);
    const canary = await client.metrics('canary', 60);
    expect(canary.requests).toBe(400);
    expect(canary.errors).toBe(failed);
    // Binomial(400, 0.3): sd 2.3 points; ±10 points is over 4 sd.
    expect(canary.errorRate).toBeGreaterThan(20);
    expect(canary.errorRate).toBeLessThan(40);
    expect((await client.metrics('stable', 60)).errors).toBe(0);

    // Buckets are 1 s wide: 2.5 s after the last request a 1 s window no longer overlaps it.
    await sleep(2500);
    expect(await client.metrics('canary', 1)).toMatchObject({ requests: 0, errorRate: null, p95: null });
    expect((await client.metrics('canary', 60)).requests).toBe(400);
  });

  test('latency percentiles reflect a slow version', async () => {
    await client.ensureCanary('slow');
    await client.setWeight(100);
    await hit(stack.proxyUrl, 100);
    const m = await client.metrics('canary', 60);
    // Latency is uniform in [30, 90] ms (median 60) plus proxy overhead. Percentiles never go below the
    // fastest observed request (>= 30 ms); the upper bounds stay loose because a busy CI machine adds
    // event-loop delay to every measured request.
    expect(m.p50).toBeGreaterThan(40);
    expect(m.p50!).toBeLessThanOrEqual(m.p95!);
    expect(m.p95!).toBeLessThanOrEqual(m.p99!);
    expect(m.p99).toBeLessThan(1000);
    expect(m.requestRate).toBeGreaterThan(0);
  });

  test('the traffic generator sends a bounded, steady load', async () => {
    expect(() => startTrafficGenerator({ url: 'http://example.com/', rps: 10 })).toThrow(/loopback/);
    expect(() => startTrafficGenerator({ url: stack.proxyUrl, rps: 100_000 })).toThrow(/rps/);
    const gen = startTrafficGenerator({ url: stack.proxyUrl, rps: 100, durationMs: 1000 });
    await sleep(1300);
    const stats = await gen.stop();
    expect(stats.sent).toBeGreaterThanOrEqual(80);
    expect(stats.sent).toBeLessThanOrEqual(100);
    expect(stats).toMatchObject({ completed: stats.sent, errors: 0, dropped: 0 });
    expect(stats.byVersion).toEqual({ v1: stats.sent });
  });
});

describe('control API', () => {
  const send = (method: string, path: string, body?: string) =>
    fetch(stack.controlUrl + path, { method, body, headers: { 'content-type': 'application/json' } });

  test('refuses bad weights, traffic without a canary, and stopping a canary that has traffic', async () => {
    for (const bad of [
      '{"weight":101}',
      '{"weight":-1}',
      '{"weight":2.5}',
      '{"weight":"10"}',
      '{}',
      'nope',
    ]) {
      const res = await send('PUT', '/weight', bad);
      expect(res.status).toBe(400);
      expect(((await res.json()) as { error: string }).error).toMatch(/weight must be an integer|JSON/);
    }
    await expect(client.setWeight(10)).rejects.toThrow(
      `local stack at ${stack.controlUrl} refused PUT /weight: 409 no canary is running`,
    );
    await client.ensureCanary('v2');
    await client.setWeight(10);
    await expect(client.deleteCanary()).rejects.toThrow(/refused DELETE \/canary: 409 canary weight is 10 %/);
    expect((await client.state()).canary?.version).toBe('v2');

    expect((await send('GET', '/metrics?side=middle&window=60')).status).toBe(400);
    expect((await send('GET', '/metrics?side=canary&window=0')).status).toBe(400);
    expect((await send('GET', `/metrics?side=canary&window=${MAX_WINDOW_SECONDS + 1}`)).status).toBe(400);
    expect((await send('PUT', '/canary', '{"version":""}')).status).toBe(400);
    expect((await send('GET', '/nowhere')).status).toBe(404);
    expect((await send('GET', '/healthz')).status).toBe(200);
  });

  test('is idempotent', async () => {
    await client.ensureCanary('v2');
    expect(await client.setWeight(5)).toMatchObject({ weight: 5, previous: 0 });
    expect(await client.setWeight(5)).toMatchObject({ weight: 5, previous: 5 });

    const first = await client.state();
    expect(await client.ensureCanary('v2')).toMatchObject({ changed: false });
    expect((await client.state()).canary?.url).toBe(first.canary?.url);

    // A different version replaces the running one (new instance, new port), weight untouched.
    const replaced = await client.ensureCanary('v3');
    expect(replaced).toMatchObject({ changed: true, weight: 5, canary: { version: 'v3' } });
    expect(replaced.canary?.url).not.toBe(first.canary?.url);

    await client.setWeight(0);
    expect(await client.deleteCanary()).toMatchObject({ changed: true, canary: null });
    expect(await client.deleteCanary()).toMatchObject({ changed: false, canary: null });
  });

  test('promote swaps the stable version', async () => {
    const before = await client.state();
    const promoted = await client.promote('v2');
    expect(promoted).toMatchObject({ changed: true, stable: { version: 'v2' } });
    expect(promoted.stable.url).not.toBe(before.stable.url);
    expect(await client.promote('v2')).toMatchObject({
      changed: false,
      stable: { url: promoted.stable.url },
    });
    const hits = await hit(stack.proxyUrl, 20);
    expect(hits.every((h) => h.version === 'v2' && h.status === 200)).toBe(true);
  });
});

describe('providers through the rollout activities', () => {
  test('prepare, shift, analyse, promote, clean up', async () => {
    const acts = createActivities(new ProviderRegistry(config()));
    const checks = [
      { name: 'errors', metric: 'error-rate', max: 5 },
      { name: 'p95', metric: 'latency-p95', max: 500 },
      { name: 'rate', metric: 'request-rate', min: 1 },
      { name: 'raw', query: 'sum(rate(http_requests_total[1m]))', max: 1 },
    ];

    await acts.prepareCanary({ target, version: 'v2' });
    await acts.prepareCanary({ target, version: 'v2' });
    expect(await acts.setCanaryWeight({ target, weight: 10 })).toEqual({
      previous: 0,
      current: 10,
      changed: true,
      router: 'local',
    });
    expect(await acts.setCanaryWeight({ target, weight: 10, expected: 10 })).toEqual({
      previous: 10,
      current: 10,
      changed: false,
      router: 'local',
    });
    // Someone else moved the weight: the next shift reports what it found.
    await client.setWeight(30);
    expect(await acts.setCanaryWeight({ target, weight: 10, expected: 10 })).toMatchObject({
      previous: 30,
      current: 10,
      drift: { expected: 10, found: 30 },
    });
    const checked = await acts.runAnalysis({ target, checks: [], windowSeconds: 30, checkWeight: true });
    expect(checked).toEqual({ measurements: [], liveWeight: 10, router: 'local' });

    // No traffic yet: no data, never a healthy zero.
    const { measurements: idle } = await acts.runAnalysis({ target, checks, windowSeconds: 30 });
    expect(idle.slice(0, 3)).toEqual([
      { name: 'errors', value: null },
      { name: 'p95', value: null },
      { name: 'rate', value: null },
    ]);
    expect(idle[3]).toEqual({
      name: 'raw',
      value: null,
      error: 'the local metrics provider takes named metrics (error-rate, latency-p95, ...), not raw queries',
    });

    await acts.setCanaryWeight({ target, weight: 50 });
    await hit(stack.proxyUrl, 200);
    const { measurements: busy } = await acts.runAnalysis({
      target,
      checks: checks.slice(0, 3),
      windowSeconds: 30,
    });
    expect(busy[0]).toEqual({ name: 'errors', value: 0 });
    expect(busy[1].value).toBeGreaterThan(0);
    expect(busy[2].value).toBeGreaterThan(0);

    // Scaling down on its own (weight still 50) first moves the traffic back, then stops the canary.
    await acts.scaleDownCanary({ target });
    expect(await client.state()).toMatchObject({ weight: 0, canary: null });
    await acts.scaleDownCanary({ target });

    await acts.prepareCanary({ target, version: 'v2' });
    await acts.setCanaryWeight({ target, weight: 100 });
    await acts.promoteStable({ target, version: 'v2' });
    await acts.cleanupCanary({ target });
    await acts.cleanupCanary({ target });
    expect(await client.state()).toMatchObject({ weight: 0, stable: { version: 'v2' }, canary: null });
  });

  test('an unreachable control API gives a clear error', async () => {
    const url = `http://127.0.0.1:${await deadPort()}`;
    const providers = new ProviderRegistry(config({ localControlUrl: url }));
    const acts = createActivities(providers);
    await expect(acts.setCanaryWeight({ target, weight: 10 })).rejects.toThrow(
      `cannot reach the local stack at ${url} (is it running? start it with npm run demo or node dist/demo/stack-main.js)`,
    );
    expect(await providers.metrics(target).isOnline()).toBe(false);
    const {
      measurements: [m],
    } = await acts.runAnalysis({
      target,
      checks: [{ name: 'e', metric: 'error-rate' }],
      windowSeconds: 10,
    });
    expect(m.value).toBeNull();
    expect(m.error).toMatch(/cannot reach the local stack/);
  });

  test('unknown metric names are refused with the known ones', async () => {
    const metrics = new ProviderRegistry(config()).metrics(target);
    await expect(metrics.runQuery({ side: 'canary', metric: 'cpu', windowSeconds: 10 })).rejects.toThrow(
      /unknown metric "cpu".*error-rate, latency-p50, latency-p95, latency-p99, request-rate/,
    );
    expect(await metrics.isOnline()).toBe(true);
  });
});

describe('alert sinks', () => {
  test('the log sink appends one JSON line per event', async () => {
    const path = join(tmp, 'log-sink.jsonl');
    const acts = createActivities(new ProviderRegistry(config({ alertLogPath: path })));
    const first = alert();
    const second = alert({ event: 'promoted', message: 'v2 promoted' });
    await acts.sendAlert(first);
    await acts.sendAlert(second);
    const lines = readFileSync(path, 'utf8').trimEnd().split('\n');
    expect(lines.map((l) => JSON.parse(l))).toEqual([first, second]);
  });

  test('the webhook sink posts the event and keeps its URL out of errors', async () => {
    const received: { path?: string; type?: string; body: unknown }[] = [];
    let status = 200;
    const server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        received.push({
          path: req.url,
          type: req.headers['content-type'],
          body: JSON.parse(Buffer.concat(chunks).toString('utf8')),
        });
        res.writeHead(status).end();
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const host = `127.0.0.1:${(server.address() as net.AddressInfo).port}`;
      const secretUrl = `http://${host}/hooks/SECRET-TOKEN`;
      const providers = providersFromEnv({
        CANARY_LOCAL_CONTROL_URL: stack.controlUrl,
        CANARY_ALERT_LOG: join(tmp, 'webhook-test.jsonl'),
        CANARY_ALERT_WEBHOOK_URL: secretUrl,
      });
      expect(providers.alerts.map((s) => s.type)).toEqual(['log', 'webhook']);
      const acts = createActivities(providers);

      const event = alert({ event: 'rollback_started', severity: 'critical' });
      await acts.sendAlert(event);
      expect(received).toEqual([{ path: '/hooks/SECRET-TOKEN', type: 'application/json', body: event }]);

      status = 500;
      const failed = acts.sendAlert(event);
      await expect(failed).rejects.toThrow(`webhook: webhook at ${host} answered 500`);
      await expect(failed).rejects.not.toThrow(/SECRET/);

      const deadHost = `127.0.0.1:${await deadPort()}`;
      const dead = new ProviderRegistry(config({ alertWebhookUrl: `http://${deadHost}/hooks/SECRET-TOKEN` }));
      const unreachable = dead.alerts[1].send(event);
      await expect(unreachable).rejects.toThrow(`webhook at ${deadHost} unreachable: ECONNREFUSED`);
      await expect(unreachable).rejects.not.toThrow(/SECRET/);
    } finally {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  });
});

describe('configuration', () => {
  test('defaults and refusals', () => {
    const p = providersFromEnv({});
    expect([
      p.router(target).type,
      p.workloads(target).type,
      p.metrics(target).type,
      p.alerts.map((a) => a.type),
    ]).toEqual(['local', 'local', 'local', ['log']]);
    expect(() => providersFromEnv({ CANARY_ROUTER: 'nginx-ingress' })).toThrow(
      'unknown traffic router "nginx-ingress" (CANARY_ROUTER); known: istio, nginx, gatewayAPI, smi, replicas, local',
    );
    // A worker whose defaults need Kubernetes loads its cluster credentials at start, and says how to fix them.
    expect(() =>
      providersFromEnv({
        CANARY_WORKLOADS: 'kubernetes',
        CANARY_KUBECONFIG: join(tmp, 'no-such-kubeconfig'),
      }),
    ).toThrow(/cannot load the Kubernetes configuration from .*no-such-kubeconfig/);
    expect(() => providersFromEnv({ CANARY_METRICS: 'prometheus' })).toThrow(
      /CANARY_METRICS=prometheus needs CANARY_PROMETHEUS_URL/,
    );
    expect(() => providersFromEnv({ CANARY_ALERT_WEBHOOK_URL: 'not a url/SECRET' })).toThrow(
      /^invalid alert configuration \(1 problem\):\n {2}CANARY_ALERT_WEBHOOK_URL: is not a valid URL \(the value is not shown: it is a secret\)$/,
    );
  });

  test('stack-main reads flags and environment', () => {
    expect(
      parseStackArgs(['--stable', 'v7', '--fault', 'v2=0.08', '--latency', 'v2=40', '--proxy-port', '0'], {
        CANARY_LOCAL_FAULTS: 'v3=0.5',
        CANARY_LOCAL_CONTROL_PORT: '7101',
      }),
    ).toEqual({
      proxyPort: 0,
      controlPort: 7101,
      stableVersion: 'v7',
      faults: { v2: { errorRate: 0.08, latencyMs: 40 }, v3: { errorRate: 0.5 } },
    });
    expect(parseStackArgs([], {})).toMatchObject({ proxyPort: 7000, controlPort: 7001, stableVersion: 'v1' });
    expect(() => parseStackArgs(['--fault', 'v2=8'], {})).toThrow(/--fault takes VERSION=RATE/);
  });
});

describe('WindowStats', () => {
  test('windows, percentiles and a ring that forgets old laps', () => {
    const t0 = 1_700_000_000_000;
    const stats = new WindowStats(t0);
    for (let i = 1; i <= 100; i++) stats.record(i, i > 90, t0 + 500);
    stats.record(1000, true, t0 + 10_500);

    const recent = stats.summary(5, t0 + 11_000);
    expect(recent).toMatchObject({
      requests: 1,
      errors: 1,
      errorRate: 100,
      p50: 1000,
      p99: 1000,
      mean: 1000,
    });
    const all = stats.summary(60, t0 + 11_000);
    // The mean is exact (a sum, not the histogram): (1 + ... + 100 + 1000) / 101.
    expect(all).toMatchObject({ requests: 101, errors: 11, mean: Math.round((6050 / 101) * 100) / 100 });
    expect(all.p50).toBeGreaterThan(48);
    expect(all.p50).toBeLessThan(54);
    expect(all.p95).toBeGreaterThan(90);
    expect(all.p95).toBeLessThan(101);
    // 101 requests over the 11 s since the instance started, not over the 60 s window.
    expect(all.requestRate).toBeCloseTo(101 / 11, 1);

    // A full lap later the same slot holds new data only.
    const lap = (MAX_WINDOW_SECONDS + 2) * 1000;
    stats.record(5, false, t0 + 500 + lap);
    const later = stats.summary(MAX_WINDOW_SECONDS, t0 + 600 + lap);
    // The 100 requests of the first second are gone; the one at +10.5 s is still inside the hour.
    expect(later).toMatchObject({ requests: 2, errors: 1 });
    expect(later.p50).toBeCloseTo(5, 0);
  });
});
