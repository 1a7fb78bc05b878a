// The metrics preflight (activities/metrics/preflight.ts) against one real Prometheus (Debian's package) scraping
// exporters this test controls, and against the local stack's provider: before any traffic moves, every check's
// round queries run once and stable's series are looked for. A query Prometheus rejects is the plan's fault (input),
// a source that does not answer the worker's (infrastructure), a check whose series do not exist even for stable a
// `data` finding; a quiet stable is not. Also: a rejected query in a real analysis round (measureChecks) rolls a
// critical check back in one round once the judge reads permanent query errors as failures. No mocks.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parse } from 'yaml';
import { ProviderRegistry, type ProviderConfig } from '../../activities/factory';
import { metricsPreflight } from '../../activities/metrics/preflight';
import { RETRY_BASE_MS } from '../../activities/metrics/prometheus';
import { createActivities } from '../../activities/rollout-activities';
import type { PreflightFinding, RoutingVersions } from '../../activities/types';
import { validateAnalysisChecks } from '../../workflows/analysis-spec';
import { judgeRound } from '../../workflows/judge-v2';
import { validatePlan } from '../../workflows/plan';
import { validateTarget, type Target } from '../../workflows/target';
import type { Plan } from '../../workflows/types';
import { freePort } from '../../demo/dev-server';
import { startExporter, type Exporter, type ExporterOptions } from '../../harness/exporter';
import { startPrometheus, type PrometheusServer } from '../../harness/prometheus';

jest.setTimeout(60_000);

const EXAMPLES = path.join(__dirname, '..', '..', 'examples');
const LATENCY = { p50: 40, p95: 120, p99: 300 };
const TOKEN = 'preflight-secret-token';
const versions: RoutingVersions = { stable: 'v1', canary: 'v2' };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Stable's side of each app, as a cluster serves it before the canary exists (no canary exporter at all). */
const STABLES: Record<
  string,
  Omit<ExporterOptions, 'side' | 'rps' | 'errorRate' | 'latencyMs'> & { rps?: number }
> = {
  // Example 004's cluster: ingress-nginx, no kube-state-metrics.
  autograph: {
    set: 'nginx',
    app: 'api-gateway',
    namespace: 'autograph',
    version: 'v1',
    workload: 'api-gateway',
    ingress: 'api-gateway-ingress',
  },
  // The same app in a cluster that runs kube-state-metrics.
  edge: {
    set: 'nginx',
    app: 'api-gateway',
    namespace: 'edge',
    version: 'v1',
    workload: 'api-gateway',
    ingress: 'api-gateway-ingress',
    extraSeries: [
      {
        name: 'kube_deployment_status_replicas_unavailable',
        labels: { namespace: 'edge', deployment: 'api-gateway' },
        value: 0,
      },
    ],
  },
  // Example 001's cluster: Istio telemetry.
  flagger: {
    set: 'istio',
    app: 'api-gateway',
    namespace: 'agentaskit-production',
    version: 'v1',
    workload: 'api-gateway',
  },
  // Example 000's: the app's own http_* metrics, no kube-state-metrics, no DCGM.
  gpu: { set: 'http', app: 'my-model', namespace: 'production', version: 'v1', workload: 'my-model' },
  // Plain http_* apps for the plans written here.
  checkout: { set: 'http', app: 'checkout', namespace: 'shop', version: 'v1', workload: 'checkout' },
  // Scraped, but serving no requests: its counters stand still.
  quiet: { set: 'http', app: 'quiet', namespace: 'shop', version: 'v1', workload: 'quiet', rps: 0 },
  // Served requests, then its series vanished (stopped below): a quiet stretch longer than a check's window.
  gone: { set: 'http', app: 'gone', namespace: 'shop', version: 'v1', workload: 'gone' },
};

let prom: PrometheusServer;
const exporters = new Map<string, Exporter>();
let goneStoppedAt = 0;
const times: string[] = [];

const config = (over: Partial<ProviderConfig> = {}): ProviderConfig => ({
  router: 'local',
  workloads: 'local',
  metrics: 'prometheus',
  kube: {},
  localControlUrl: 'http://127.0.0.1:9',
  // A token the messages must never show (this Prometheus needs none, and ignores it).
  prometheus: { url: prom.url, timeoutMs: 5_000, bearerToken: TOKEN },
  ...over,
});

function target(spec: Record<string, unknown>): Target {
  const v = validateTarget(spec);
  if (!v.ok) throw new Error(JSON.stringify(v.problems));
  return v.target;
}

/** An app of the http set in namespace shop, as the plans written here target it. */
const shop = (app = 'checkout') =>
  target({ app, namespace: 'shop', metrics: { prometheus: { templates: 'http' } } });

function planOf(checks: unknown[], interval = '10s'): Plan {
  const v = validatePlan({
    analysis: { interval, checks },
    stages: [{ weight: 10, hold: '1m' }, { weight: 100 }],
  });
  if (!v.ok) throw new Error(JSON.stringify(v.problems, null, 2));
  return v.plan;
}

/** An example's plan, its target, and the target as written (to point it elsewhere). */
function example(file: string): { plan: Plan; target: Target; spec: Record<string, unknown> } {
  const { target: spec, ...rest } = parse(fs.readFileSync(path.join(EXAMPLES, file), 'utf8')) as Record<
    string,
    unknown
  >;
  const plan = validatePlan(rest);
  if (!plan.ok) throw new Error(`${file}: ${JSON.stringify(plan.problems, null, 2)}`);
  const written = spec as Record<string, unknown>;
  return { plan: plan.plan, target: target(written), spec: written };
}

/** Runs the metrics preflight as the preflight activity does, with the worker's provider for the target. */
async function preflight(
  what: string,
  plan: Plan,
  t: Target,
  over: Partial<ProviderConfig> = {},
  sides: RoutingVersions = versions,
): Promise<{ findings: PreflightFinding[]; ms: number }> {
  const registry = new ProviderRegistry(config(over));
  const started = Date.now();
  const findings = await metricsPreflight(registry.metrics(t), plan, sides);
  const ms = Date.now() - started;
  times.push(`${what}: ${ms} ms`);
  for (const f of findings) expect(f.message).not.toContain(TOKEN);
  return { findings, ms };
}

beforeAll(async () => {
  for (const [name, opts] of Object.entries(STABLES)) {
    exporters.set(
      name,
      await startExporter({ rps: 40, errorRate: 0.01, latencyMs: LATENCY, ...opts, side: 'stable' }),
    );
  }
  prom = await startPrometheus({
    targets: [...exporters].map(([job, e]) => ({ job, url: e.url })),
  });
  await prom.waitUp();
  // A few scrapes, so each rate has its two samples; then `gone` stops answering (its series go stale).
  await sleep(4_000);
  await exporters.get('gone')!.stop();
  goneStoppedAt = Date.now();
}, 90_000);

afterAll(async () => {
  // The measured times, for the record (the assertions bound them).
  if (times.length > 0) process.stdout.write(`metrics preflight times:\n  ${times.join('\n  ')}\n`);
  await prom?.stop();
  for (const [name, e] of exporters) if (name !== 'gone') await e.stop();
});

describe('a query the source rejects', () => {
  test('a PromQL syntax error is refused as the plan’s fault, with Prometheus’s reason and the check’s path', async () => {
    const plan = planOf([
      {
        name: 'requests',
        query: 'sum(rate(http_requests_total{ {{selector}} }[{{window}}]))',
        success: { min: 1 },
      },
      {
        name: 'unclosed',
        query: 'sum(rate(http_requests_total{ {{selector}} }[{{window}}])',
        abort: { max: 5, severity: 'critical' },
      },
    ]);
    const { findings, ms } = await preflight('syntax error', plan, shop());
    expect(findings).toEqual([
      {
        area: 'query',
        cause: 'input',
        level: 'refuse',
        message: expect.stringContaining(
          'check "unclosed": its query cannot run, so no round could measure it; fix it:',
        ),
        path: 'analysis.checks[1].query',
      },
    ]);
    // Prometheus's own words (400 bad_data, a parse error), and which server said them.
    expect(findings[0].message).toMatch(/rejected the query \(HTTP 400 bad_data: .*parse error/);
    expect(findings[0].message).toContain(prom.url);
    expect(ms).toBeLessThan(3_000);
  });

  test('a short-form plan on the wrong template set: no series for stable, at each metric path', async () => {
    const plan = planOf([
      { name: 'errors', metric: 'error-rate', max: 5 },
      { name: 'p95', metric: 'latency-p95', max: 500 },
    ]);
    // The nginx set on an app of the http set: every query runs, and finds nothing for stable.
    const nginx = target({
      app: 'checkout',
      namespace: 'shop',
      metrics: { prometheus: { templates: 'nginx' } },
    });
    const { findings } = await preflight('short form, wrong template set', plan, nginx);
    expect(findings.map((f) => [f.area, f.cause, f.level, f.path])).toEqual([
      ['data', 'input', 'refuse', 'analysis.checks[0].metric'],
      ['data', 'input', 'refuse', 'analysis.checks[1].metric'],
    ]);
    expect(findings[0].message).toContain('does this cluster export the series the nginx template set reads');
  });

  test('a query that is fine for an idle canary but not one number for stable (not aggregated)', async () => {
    const plan = planOf([
      {
        name: 'per-code',
        query:
          'rate(http_requests_total{namespace="{{namespace}}", app="{{app}}", version="{{version}}"}[{{window}}])',
        success: { min: 1 },
      },
    ]);
    const { findings } = await preflight('not aggregated', plan, shop());
    expect(findings).toEqual([
      expect.objectContaining({
        area: 'query',
        cause: 'input',
        level: 'refuse',
        path: 'analysis.checks[0].query',
      }),
    ]);
    expect(findings[0].message).toMatch(/returned \d+ series; a check needs one value/);
    // Without stable's version the query cannot be rendered for stable, and a round never needs it: no finding.
    const unknown = await preflight(
      'not aggregated, stable version unknown',
      plan,
      shop(),
      {},
      { canary: 'v2' },
    );
    expect(unknown.findings).toEqual([]);
  });
  test('a query that cannot run on stable’s series (Prometheus’s 422: many-to-many matching) is refused too', async () => {
    const plan = planOf([
      {
        name: 'joined',
        query: 'sum(http_requests_total{ {{selector}} } / on(app) http_requests_total{ {{selector}} })',
        success: { max: 1 },
      },
    ]);
    const { findings } = await preflight('422 on stable', plan, shop());
    expect(findings).toEqual([
      expect.objectContaining({
        area: 'query',
        cause: 'input',
        level: 'refuse',
        path: 'analysis.checks[0].query',
      }),
    ]);
    expect(findings[0].message).toMatch(
      /could not evaluate the query on its data \(HTTP 422 execution: .*many-to-many/,
    );
  });
});

describe('checks whose series do not exist even for stable', () => {
  test('example 004: its pod-health query without kube-state-metrics is refused; with it, nothing is found', async () => {
    const { plan, target: t, spec } = example('004-nginx-ingress.yaml');
    const { findings, ms } = await preflight('example 004 without kube-state-metrics', plan, t);
    expect(findings).toEqual([
      {
        area: 'data',
        cause: 'input',
        level: 'refuse',
        message: expect.stringContaining(
          `check "pod-health": its query matches no series for stable (v1) on Prometheus at ${prom.url}, so`,
        ),
        path: 'analysis.checks[2].query',
      },
    ]);
    expect(findings[0].message).toContain('the series it reads do not exist');
    expect(findings[0].message).toContain('kube-state-metrics');
    expect(findings[0].message).toContain(
      'query: sum(kube_deployment_status_replicas_unavailable{namespace="autograph", deployment="api-gateway"})',
    );
    expect(ms).toBeLessThan(3_000);

    const edge = target({ ...spec, namespace: 'edge' });
    const healthy = await preflight('example 004 with kube-state-metrics', plan, edge);
    expect(healthy.findings).toEqual([]);
    expect(healthy.ms).toBeLessThan(3_000);
  });

  test('example 000: health checks refused, DCGM (onNoData: ignore) a warning only', async () => {
    const { plan, target: t } = example('000-gpu-model.yaml');
    const { findings } = await preflight('example 000', plan, t);
    expect(findings.map((f) => [f.area, f.level, f.path])).toEqual([
      ['data', 'refuse', 'analysis.checks[2].query'],
      ['data', 'warn', 'analysis.checks[3].query'],
    ]);
    expect(findings[0].message).toContain('check "health-checks"');
    expect(findings[1].message).toContain('check "gpu-memory-errors"');
    expect(findings[1].message).toContain('its rounds will go on without it (onNoData: ignore)');
    // Windowed: looked back a day before saying so.
    expect(findings[1].message).toContain('neither over its 1m window nor over the last 24h');
  });

  test('a quiet stable (no requests in the window, its series scraped) is not a finding', async () => {
    const plan = planOf([
      { name: 'errors', metric: 'error-rate', window: '10s', success: { max: 1 }, abort: { max: 5 } },
      { name: 'p95', metric: 'latency-p95', window: '10s', abort: { max: 500 } },
      {
        name: 'ghost',
        query: 'sum(rate(nothing_here_total{ {{selector}} }[{{window}}]))',
        abort: { max: 1 },
      },
    ]);
    const { findings } = await preflight('quiet stable', plan, shop('quiet'));
    // The counters are there (the ratio is NaN: 0 / 0); only the series nobody exports are refused.
    expect(findings.map((f) => [f.area, f.level, f.path])).toEqual([
      ['data', 'refuse', 'analysis.checks[2].query'],
    ]);
  });

  test('a stable whose series vanished for longer than the window, but served within the last day, is not refused', async () => {
    // `gone` stopped answering in beforeAll: more than its 10 s window ago, nothing matches over the window.
    await sleep(Math.max(0, goneStoppedAt + 12_000 - Date.now()));
    const plan = planOf([{ name: 'rate', metric: 'request-rate', window: '10s', success: { min: 1 } }]);
    const registry = new ProviderRegistry(config());
    const now = await registry
      .metrics(shop('gone'))
      .runQuery({ side: 'stable', version: 'v1', metric: 'request-rate', windowSeconds: 10 });
    expect(now).toBeNull();
    const { findings } = await preflight('stable quiet longer than the window', plan, shop('gone'));
    expect(findings).toEqual([]);
    // An app that never had series: the same plan is refused, saying how far it looked.
    const never = await preflight('never any series', plan, shop('never'));
    expect(never.findings).toEqual([
      expect.objectContaining({
        area: 'data',
        cause: 'input',
        level: 'refuse',
        path: 'analysis.checks[0].metric',
      }),
    ]);
    expect(never.findings[0].message).toContain('neither over its 10s window nor over the last 24h');
  });

  test('a gauge whose series went stale a moment ago (a failed scrape, a restarting exporter) is not refused', async () => {
    // No {{window}}: the same series however far a window reaches. `gone` stopped answering in beforeAll, so
    // Prometheus marked its series stale and an instant query finds none, though they were there seconds ago.
    const query = 'sum(http_requests_total{ {{selector}} })';
    const plan = planOf([{ name: 'served', query, abort: { max: 1e12 } }]);
    const registry = new ProviderRegistry(config());
    const now = await registry
      .metrics(shop('gone'))
      .runQuery({ side: 'stable', version: 'v1', query, windowSeconds: 10 });
    expect(now).toBeNull();
    const { findings } = await preflight('gauge stale for a moment', plan, shop('gone'));
    expect(findings).toEqual([]);
    // Never there: refused, and the message does not claim a day's look back it did not take.
    const never = await preflight('gauge never there', plan, shop('never'));
    expect(never.findings).toEqual([
      expect.objectContaining({
        area: 'data',
        cause: 'input',
        level: 'refuse',
        path: 'analysis.checks[0].query',
      }),
    ]);
    expect(never.findings[0].message).not.toContain('neither over');
  });
});

describe('healthy plans', () => {
  test('example 001 on Istio telemetry: no findings, within a few seconds', async () => {
    const { plan, target: t } = example('001-flagger.yaml');
    expect(plan.analysis.rules).toHaveLength(6);
    const { findings, ms } = await preflight('example 001 (6 checks)', plan, t);
    expect(findings).toEqual([]);
    expect(ms).toBeLessThan(3_000);
  });

  test('a short-form plan and a full-form plan with a comparison and a test', async () => {
    const short = planOf([
      { name: 'errors', metric: 'error-rate', max: 1 },
      { name: 'p95', metric: 'latency-p95', max: 500 },
      { name: 'custom', query: 'sum(rate(http_requests_total{ {{selector}} }[{{window}}]))', min: 1 },
    ]);
    expect(short.analysis.rules).toBeUndefined();
    expect((await preflight('short form', short, shop())).findings).toEqual([]);
    const full = planOf([
      {
        name: 'p95-vs-stable',
        metric: 'latency-p95',
        window: '10s',
        compare: { to: 'stable', ratio: { max: 1.5 } },
      },
      {
        name: 'p95-test',
        metric: 'latency-p95',
        window: '12s',
        test: { type: 'mann-whitney', minSamples: 4, step: '3s' },
      },
      { name: 'errors', metric: 'error-rate', minRequests: 10, success: { max: 1 }, abort: { max: 5 } },
    ]);
    expect((await preflight('full form, compare and test', full, shop())).findings).toEqual([]);
  });

  test('through the preflight activity: the worker’s default provider, every finding at once', async () => {
    const acts = createActivities(new ProviderRegistry(config()));
    const plan = planOf([
      { name: 'fine', metric: 'error-rate', success: { max: 1 } },
      {
        name: 'broken',
        query: 'sum(rate(http_requests_total{ {{selector}} }[{{window}}])',
        success: { max: 1 },
      },
      { name: 'ghost', query: 'max(nothing_here{ {{selector}} })', success: { max: 1 } },
    ]);
    // The local workloads' stack (a closed port here) cannot say which version stable runs, and says so; the
    // http set's selector needs that version for stable, so only what a round runs (the canary's side) is checked.
    const report = await acts.preflight({
      target: target({ app: 'checkout', namespace: 'shop' }),
      plan,
      version: 'v2',
    });
    expect(report.findings).toEqual([
      expect.objectContaining({
        area: 'cluster',
        cause: 'infrastructure',
        level: 'refuse',
        message: expect.stringMatching(/^the workload manager could not be checked: .*127\.0\.0\.1:9/),
      }),
      expect.objectContaining({
        area: 'query',
        cause: 'input',
        level: 'refuse',
        path: 'analysis.checks[1].query',
      }),
    ]);
    times.push(`preflight activity: ${report.tookMs} ms`);
  });
});

describe('a metrics source that does not answer', () => {
  test('a Prometheus URL nothing listens on: one infrastructure refusal naming the server, within seconds', async () => {
    const url = `http://127.0.0.1:${await freePort()}`;
    const { plan, target: t } = example('001-flagger.yaml');
    const { findings, ms } = await preflight('Prometheus unreachable (closed port)', plan, t, {
      prometheus: { url, timeoutMs: 5_000, bearerToken: TOKEN },
    });
    expect(findings).toEqual([
      {
        area: 'query',
        cause: 'infrastructure',
        level: 'refuse',
        message: expect.stringMatching(
          /^checks "no-errors", "success-rate", "error-rate", "5xx-rate", "latency-p50" and "latency-p99" could not be measured: Prometheus at http:\/\/127\.0\.0\.1:\d+ is unreachable \(ECONNREFUSED/,
        ),
      },
    ]);
    expect(findings[0].message).toContain(url);
    // Retried as a blip is (2 retries: 0.5 s + 1 s), then given up.
    expect(ms).toBeLessThan(5_000);
  });

  test('the local stack’s control URL closed: an infrastructure refusal naming it, at once', async () => {
    const url = `http://127.0.0.1:${await freePort()}`;
    const plan = planOf([
      { name: 'errors', metric: 'error-rate', max: 1 },
      {
        name: 'p95',
        metric: 'latency-p95',
        success: { max: 500 },
        compare: { to: 'stable', ratio: { max: 2 } },
      },
    ]);
    const { findings, ms } = await preflight(
      'local stack unreachable',
      plan,
      target({ app: 'checkout', namespace: 'shop' }),
      { metrics: 'local', localControlUrl: url },
    );
    expect(findings).toEqual([
      {
        area: 'query',
        cause: 'infrastructure',
        level: 'refuse',
        message: expect.stringContaining(
          `checks "errors" and "p95" could not be measured: cannot reach the local stack at ${url}`,
        ),
      },
    ]);
    expect(ms).toBeLessThan(2_000);
  });
});

describe('a rejected query in an analysis round', () => {
  test('measureChecks records bad_query at once (no retries), and the judge rolls a critical check back in one round', async () => {
    const acts = createActivities(
      new ProviderRegistry(config({ prometheus: { url: prom.url, timeoutMs: 5_000, retries: 5 } })),
    );
    const v = validateAnalysisChecks(
      [
        {
          name: 'unclosed',
          query: 'sum(rate(http_requests_total{ {{selector}} }[{{window}}])',
          abort: { max: 5, severity: 'critical' },
        },
      ],
      { windowMs: 10_000, failureLimit: 3, inconclusiveLimit: 3 },
    );
    if (!v.ok) throw new Error(JSON.stringify(v.problems));
    const started = Date.now();
    const round = await acts.measureChecks({ target: shop(), checks: v.checks, versions });
    const ms = Date.now() - started;
    times.push(`measureChecks with a rejected query (retries: 5): ${ms} ms`);
    const m = round.measurements.unclosed;
    expect(m.error).toMatchObject({ kind: 'bad_query' });
    expect(m.error!.message).toMatch(/HTTP 400 bad_data: .*parse error/);
    // Not retried: one attempt (a retry would wait RETRY_BASE_MS first, and the message would count attempts).
    expect(m.error!.message).not.toMatch(/attempts/);
    expect(ms).toBeLessThan(RETRY_BASE_MS);

    const on = judgeRound(v.checks, round.measurements, Date.now(), undefined, {
      permanentQueryErrors: true,
    });
    expect(on.decision.action).toBe('rollback');
    expect(on.decision.reasons[0]).toMatch(
      /^unclosed: query rejected \(bad_query: .*parse error.*\(critical\): roll back at once$/,
    );
    // As recorded rollouts judged it: an outage, held.
    const off = judgeRound(v.checks, round.measurements, Date.now());
    expect(off.decision.action).toBe('hold');
    expect(off.decision.perCheck[0].outcome).toBe('query_failed');
  });
  test('a query that failed on its data (422) is no rejection: held as an outage, as before', async () => {
    const acts = createActivities(new ProviderRegistry(config()));
    const v = validateAnalysisChecks(
      [
        {
          name: 'joined',
          query: 'sum(http_requests_total{ {{selector}} } / on(app) http_requests_total{ {{selector}} })',
          compare: { to: 'stable', ratio: { max: 2 } },
          abort: { max: 5, severity: 'critical' },
        },
      ],
      { windowMs: 10_000, failureLimit: 3, inconclusiveLimit: 3 },
    );
    if (!v.ok) throw new Error(JSON.stringify(v.problems));
    // Stable's side (the baseline) has the series the join fails on.
    const round = await acts.measureChecks({ target: shop(), checks: v.checks, versions });
    expect(round.measurements.joined.error).toMatchObject({ kind: 'execution' });
    const { decision } = judgeRound(v.checks, round.measurements, Date.now(), undefined, {
      permanentQueryErrors: true,
    });
    expect(decision.action).toBe('hold');
    expect(decision.perCheck[0].outcome).toBe('query_failed');
  });
});

// Last: it stops the one Prometheus of this file.
describe('Prometheus stopped', () => {
  test('an infrastructure refusal naming the server, within seconds', async () => {
    await prom.stop();
    const { plan, target: t } = example('004-nginx-ingress.yaml');
    const { findings, ms } = await preflight('Prometheus stopped', plan, t);
    expect(findings).toEqual([
      {
        area: 'query',
        cause: 'infrastructure',
        level: 'refuse',
        message: expect.stringContaining(
          `checks "error-rate", "latency-p95" and "pod-health" could not be measured: Prometheus at ${prom.url} is unreachable`,
        ),
      },
    ]);
    expect(ms).toBeLessThan(5_000);
  });
});
