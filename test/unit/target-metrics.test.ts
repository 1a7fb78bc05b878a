// Where a rollout's metrics come from: the target's `metrics` part (local or prometheus, its URL and template set),
// the worker's CANARY_PROMETHEUS_* environment (credentials, TLS, timeout: never in a target), the registry that
// builds a provider from both, and the template rendering the provider relies on.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ProviderRegistry, providerConfigFromEnv, type ProviderConfig } from '../../activities/factory';
import { LocalMetricsProvider } from '../../activities/local/metrics';
import { PrometheusMetricsProvider, prometheusConnectionFromEnv } from '../../activities/metrics/prometheus';
import {
  TEMPLATE_SETS,
  TemplateError,
  promDuration,
  renderQuery,
  templateNames,
} from '../../activities/metrics/templates';
import { validateTarget, type Target } from '../../workflows/target';

let tmp: string;
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'canary-metrics-'));
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

function ok(spec: Record<string, unknown>): Target {
  const v = validateTarget({ app: 'checkout', namespace: 'prod', ...spec });
  if (!v.ok) throw new Error(JSON.stringify(v.problems));
  return v.target;
}

function problems(spec: Record<string, unknown>): string[] {
  const v = validateTarget({ app: 'checkout', namespace: 'prod', ...spec });
  if (v.ok) throw new Error('expected problems');
  return v.problems.map((p) => `${p.path}: ${p.message}`);
}

describe('the target: metrics', () => {
  test('local keeps working', () => {
    expect(ok({ metrics: { local: {} } }).metrics).toEqual({ provider: 'local' });
    expect(ok({ metrics: { local: { controlUrl: 'http://127.0.0.1:7001' } } }).metrics).toEqual({
      provider: 'local',
      controlUrl: 'http://127.0.0.1:7001',
    });
  });

  test('prometheus: the template set follows the router unless written', () => {
    const m = (traffic: Record<string, unknown> | undefined, prometheus: Record<string, unknown> = {}) =>
      ok({ ...(traffic ? { traffic } : {}), metrics: { prometheus } }).metrics;
    expect(m({ istio: {} })).toEqual({ provider: 'prometheus', templates: 'istio' });
    expect(m({ nginx: {} }, { url: 'http://prometheus.monitoring:9090' })).toEqual({
      provider: 'prometheus',
      url: 'http://prometheus.monitoring:9090',
      templates: 'nginx',
    });
    for (const other of ['gatewayAPI', 'smi', 'replicas', 'local']) {
      expect(m({ [other]: {} })).toEqual({ provider: 'prometheus', templates: 'http' });
    }
    expect(m({ smi: {} }, { templates: 'istio' })).toEqual({ provider: 'prometheus', templates: 'istio' });
    // No router in the target: the worker derives the set from its default router.
    expect(m(undefined)).toEqual({ provider: 'prometheus' });
  });

  test('problems by path: a URL that is not one, credentials in it, unknown sets and fields', () => {
    expect(problems({ metrics: { prometheus: { url: 'prometheus:9090', templates: 'isito' } } })).toEqual([
      'metrics.prometheus.url: must be an http(s) URL, got "prometheus:9090"',
      'metrics.prometheus.templates: unknown template set "isito" (did you mean "istio"?); use istio, nginx, http ' +
        "(istio: Istio telemetry, nginx: ingress-nginx, http: the app's http_requests_total)",
    ]);
    expect(problems({ metrics: { prometheus: { url: 'https://admin:hunter2@prom:9090' } } })).toEqual([
      'metrics.prometheus.url: must not carry credentials (a target is not secret): give the worker ' +
        'CANARY_PROMETHEUS_USERNAME and CANARY_PROMETHEUS_PASSWORD, or CANARY_PROMETHEUS_BEARER_TOKEN',
    ]);
    expect(problems({ metrics: { prometheus: { templates: 'ingress-nginx' } } })[0]).toMatch(
      /unknown template set "ingress-nginx" \(did you mean "nginx"\?\)/,
    );
    expect(problems({ metrics: { prometheus: { templates: 'flagger' } } })[0]).toMatch(
      /^metrics.prometheus.templates: unknown template set "flagger"; use istio, nginx, http/,
    );
    expect(problems({ metrics: { promethus: {} } })).toEqual([
      'metrics.promethus: unknown field "promethus" (did you mean "prometheus"?)',
    ]);
    expect(problems({ metrics: { prometheus: { urll: 'http://x' } } })).toEqual([
      'metrics.prometheus.urll: unknown field "urll" (did you mean "url"?)',
    ]);
    expect(problems({ metrics: { prometheus: { url: 9090, templates: ['istio'] } } })).toEqual([
      'metrics.prometheus.url: must be a URL, got 9090',
      'metrics.prometheus.templates: must be one of istio, nginx, http, got a list',
    ]);
  });

  test('exactly one provider', () => {
    expect(problems({ metrics: {} })).toEqual([
      'metrics: must name one metrics provider, e.g. {local: {}} or {prometheus: {url: http://prometheus:9090}}',
    ]);
    expect(problems({ metrics: { local: {}, prometheus: {} } })).toEqual([
      'metrics: names 2 metrics providers (local, prometheus); a rollout uses exactly one',
    ]);
    expect(problems({ metrics: { prometheus: null } })).toEqual([
      'metrics.prometheus: must be an object with url, templates, got null',
    ]);
  });
});

describe("the worker's CANARY_PROMETHEUS_* environment", () => {
  const file = (name: string, content: string): string => {
    const p = path.join(tmp, name);
    fs.writeFileSync(p, content);
    return p;
  };
  const PEM = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';

  test('defaults: no URL, no credentials, a 10 s timeout', () => {
    expect(prometheusConnectionFromEnv({})).toEqual({ timeoutMs: 10_000 });
  });

  test('everything set, with files', () => {
    const token = file('token', 'abc\n');
    const ca = file('ca.pem', PEM);
    expect(
      prometheusConnectionFromEnv({
        CANARY_PROMETHEUS_URL: 'https://prometheus.monitoring:9090/prom',
        CANARY_PROMETHEUS_BEARER_TOKEN_FILE: token,
        CANARY_PROMETHEUS_CA_FILE: ca,
        CANARY_PROMETHEUS_INSECURE_SKIP_VERIFY: 'false',
        CANARY_PROMETHEUS_TIMEOUT: '1m30s',
        CANARY_PROMETHEUS_RETRIES: '0',
      }),
    ).toEqual({
      url: 'https://prometheus.monitoring:9090/prom',
      bearerTokenFile: token,
      ca: PEM,
      timeoutMs: 90_000,
      retries: 0,
    });
    const password = file('password', 'pw');
    expect(
      prometheusConnectionFromEnv({
        CANARY_PROMETHEUS_USERNAME: 'canary',
        CANARY_PROMETHEUS_PASSWORD_FILE: password,
        CANARY_PROMETHEUS_INSECURE_SKIP_VERIFY: 'true',
      }),
    ).toEqual({ username: 'canary', passwordFile: password, insecureSkipVerify: true, timeoutMs: 10_000 });
  });

  test('bad configuration fails fast, every problem naming its variable', () => {
    const notPem = file('not.pem', 'hello');
    let message = '';
    try {
      prometheusConnectionFromEnv({
        CANARY_PROMETHEUS_URL: 'prometheus:9090',
        CANARY_PROMETHEUS_BEARER_TOKEN_FILE: path.join(tmp, 'missing-token'),
        CANARY_PROMETHEUS_PASSWORD: 'secret-pw',
        CANARY_PROMETHEUS_CA_FILE: notPem,
        CANARY_PROMETHEUS_INSECURE_SKIP_VERIFY: 'maybe',
        CANARY_PROMETHEUS_TIMEOUT: '10',
        CANARY_PROMETHEUS_RETRIES: '9',
      });
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message.split('\n')).toEqual([
      'invalid Prometheus configuration (7 problems):',
      '  CANARY_PROMETHEUS_URL: "prometheus:9090" is not an http(s) URL',
      `  CANARY_PROMETHEUS_BEARER_TOKEN_FILE: ${path.join(tmp, 'missing-token')}: no such file`,
      '  CANARY_PROMETHEUS_USERNAME: is not set but a password is; basic auth needs both',
      `  CANARY_PROMETHEUS_CA_FILE: ${notPem} holds no PEM certificate (-----BEGIN CERTIFICATE-----)`,
      '  CANARY_PROMETHEUS_INSECURE_SKIP_VERIFY: "maybe" is not a boolean; use true or false',
      expect.stringMatching(/^ {2}CANARY_PROMETHEUS_TIMEOUT: .*10.*; use a duration like 10s or 1m$/),
      '  CANARY_PROMETHEUS_RETRIES: "9" is not a whole number from 0 to 5',
    ]);
    expect(() => prometheusConnectionFromEnv({ CANARY_PROMETHEUS_RETRIES: '-1' })).toThrow(
      /CANARY_PROMETHEUS_RETRIES: "-1" is not a whole number from 0 to 5/,
    );
    expect(message).not.toContain('secret-pw');
    expect(() => prometheusConnectionFromEnv({ CANARY_PROMETHEUS_URL: 'not a url' })).toThrow(
      /CANARY_PROMETHEUS_URL: "not a url" is not a URL/,
    );
    expect(() =>
      prometheusConnectionFromEnv({ CANARY_PROMETHEUS_URL: 'http://u:pw@prometheus:9090' }),
    ).toThrow(/CANARY_PROMETHEUS_URL: must not carry credentials/);
    expect(() =>
      prometheusConnectionFromEnv({ CANARY_PROMETHEUS_BEARER_TOKEN: 't', CANARY_PROMETHEUS_USERNAME: 'u' }),
    ).toThrow(
      /CANARY_PROMETHEUS_PASSWORD: is not set .*\n.*CANARY_PROMETHEUS_USERNAME: basic auth and a bearer token/,
    );
  });

  test('CANARY_METRICS=prometheus is a worker default, and needs a URL', () => {
    expect(() => providerConfigFromEnv({ CANARY_METRICS: 'prometheus' })).toThrow(
      /CANARY_METRICS=prometheus needs CANARY_PROMETHEUS_URL/,
    );
    const config = providerConfigFromEnv({
      CANARY_METRICS: 'Prometheus',
      CANARY_PROMETHEUS_URL: 'http://prometheus:9090',
      CANARY_PROMETHEUS_TIMEOUT: '3s',
    });
    expect(config.metrics).toBe('prometheus');
    expect(config.prometheus).toEqual({ url: 'http://prometheus:9090', timeoutMs: 3_000 });
    expect(providerConfigFromEnv({}).metrics).toBe('local');
    expect(() => providerConfigFromEnv({ CANARY_METRICS: 'datadog' })).toThrow(
      /unknown metrics provider "datadog" \(CANARY_METRICS\); known: local, prometheus/,
    );
  });
});

describe('the registry builds the provider a target asks for', () => {
  const config = (overrides: Partial<ProviderConfig> = {}): ProviderConfig => ({
    router: 'local',
    workloads: 'local',
    metrics: 'local',
    kube: {},
    localControlUrl: 'http://127.0.0.1:7001',
    alertLogPath: path.join(tmp, 'alerts.jsonl'),
    ...overrides,
  });

  test('local by default, prometheus when the target says so (templates from its router)', () => {
    const registry = new ProviderRegistry(
      config({ prometheus: { url: 'http://default:9090', timeoutMs: 5_000 } }),
    );
    expect(registry.metrics(ok({}))).toBeInstanceOf(LocalMetricsProvider);
    const istio = registry.metrics(ok({ traffic: { istio: {} }, metrics: { prometheus: {} } }));
    expect(istio).toBeInstanceOf(PrometheusMetricsProvider);
    expect((istio as PrometheusMetricsProvider).templates).toBe('istio');
    expect((istio as PrometheusMetricsProvider).url).toBe('http://default:9090');
    const own = registry.metrics(
      ok({ traffic: { nginx: {} }, metrics: { prometheus: { url: 'http://own:9090/' } } }),
    );
    expect((own as PrometheusMetricsProvider).url).toBe('http://own:9090');
    expect((own as PrometheusMetricsProvider).templates).toBe('nginx');
    // Cached per target and settings.
    expect(registry.metrics(ok({ traffic: { istio: {} }, metrics: { prometheus: {} } }))).toBe(istio);
  });

  test("a target without a router gets the set of the worker's default router", () => {
    const registry = new ProviderRegistry(
      config({
        router: 'istio',
        metrics: 'prometheus',
        prometheus: { url: 'http://p:9090', timeoutMs: 5_000 },
      }),
    );
    const p = registry.metrics(ok({})) as PrometheusMetricsProvider;
    expect(p.templates).toBe('istio');
    // The canary's Deployment follows the worker's defaults too.
    expect(p.render({ side: 'canary', metric: 'request-rate', windowSeconds: 300 })).toBe(
      'sum(rate(istio_requests_total{reporter="destination", destination_workload_namespace="prod", ' +
        'destination_workload="checkout-canary"}[5m]))',
    );
  });

  test('no URL anywhere: a clear error', () => {
    expect(() => new ProviderRegistry(config()).metrics(ok({ metrics: { prometheus: {} } }))).toThrow(
      /no Prometheus URL for prod\/checkout: the target's metrics.prometheus.url is not set, nor is the worker's CANARY_PROMETHEUS_URL/,
    );
  });
});

describe('templates', () => {
  test('every set offers the same names', () => {
    const names = templateNames('istio');
    expect(names).toEqual(
      expect.arrayContaining([
        'request-success-rate',
        'error-rate',
        '5xx-rate',
        'latency-p50',
        'latency-p95',
        'latency-p99',
        'request-rate',
        'request-count',
      ]),
    );
    expect(templateNames('nginx')).toEqual(names);
    expect(templateNames('http')).toEqual(names);
    // Istio's histogram is in ms already, the others in seconds.
    expect(TEMPLATE_SETS.istio.metrics['latency-p95'].query).toMatch(/^histogram_quantile/);
    expect(TEMPLATE_SETS.nginx.metrics['latency-p95'].query).toMatch(/^1000 \* histogram_quantile/);
  });

  test('rendering: values escaped for PromQL strings, unknown placeholders refused', () => {
    expect(
      renderQuery('up{app="{{ app }}", v="{{version}}"}[{{window}}]', {
        app: 'a',
        version: 'x"y\\z',
        window: '5m',
      }),
    ).toBe('up{app="a", v="x\\"y\\\\z"}[5m]');
    expect(() => renderQuery('up{ns="{{namespce}}"}', { namespace: 'prod', app: 'a' })).toThrow(
      new TemplateError(
        'unknown placeholder {{namespce}} in "up{ns=\\"{{namespce}}\\"}"; known: {{namespace}}, {{app}}',
      ),
    );
    expect(() => renderQuery('up{v="{{version}}"}', { version: undefined })).toThrow(
      /the placeholder \{\{version\}\} has no value/,
    );
    expect(() => renderQuery('up{a="{{ap-p}}"}', { app: 'a' })).toThrow(/malformed placeholder/);
  });

  test('windows as PromQL durations', () => {
    expect([30, 90, 300, 3600, 5400, 0.2].map(promDuration)).toEqual(['30s', '90s', '5m', '1h', '90m', '1s']);
  });
});
