// The provider registry: builds (and caches) the router, workload manager and metrics provider for each
// rollout target, the way Argo Rollouts builds a router from each rollout's spec. Targets that leave a part
// out get the worker's default for it, read from the environment once:
//   CANARY_ROUTER             default router for targets without `traffic` (default local; istio, nginx,
//                             gatewayAPI, smi or replicas derive their object names from the app)
//   CANARY_WORKLOADS          default workloads for targets without `workload`: local or kubernetes (Deployments)
//   CANARY_METRICS            default metrics provider for targets without `metrics`: local (default) or prometheus
//   CANARY_PROMETHEUS_URL     Prometheus base URL for targets that name none (required when CANARY_METRICS=prometheus)
//   CANARY_PROMETHEUS_BEARER_TOKEN or CANARY_PROMETHEUS_BEARER_TOKEN_FILE   bearer token (the file is re-read per query)
//   CANARY_PROMETHEUS_USERNAME with CANARY_PROMETHEUS_PASSWORD or CANARY_PROMETHEUS_PASSWORD_FILE   basic auth
//   CANARY_PROMETHEUS_CA_FILE PEM CA bundle for an https Prometheus; CANARY_PROMETHEUS_INSECURE_SKIP_VERIFY=true skips
//                             verification (test servers only)
//   CANARY_PROMETHEUS_TIMEOUT per-query timeout (default 10s)
//   CANARY_LOCAL_CONTROL_URL  the local stack's control API (default http://127.0.0.1:7001)
//   CANARY_KUBECONFIG         kubeconfig file (else KUBECONFIG, ~/.kube/config, or the pod's service account)
//   CANARY_KUBE_CONTEXT       kubeconfig context (default: the file's current context)
//   CANARY_ALERT_LOG          file the log sink appends to (default: stdout)
// Alert sinks (docs/alerts.md). Secrets come only from here or from mounted files (VAR_FILE, re-read at each
// delivery), never from workflow input; errors name the variable and the receiver's host, never the secret:
//   CANARY_ALERT_WEBHOOK_URL(_FILE)     adds the webhook sink (signed JSON, schema version 1)
//   CANARY_ALERT_WEBHOOK_SECRET(_FILE)  its HMAC-SHA256 key; required unless the URL is loopback or
//                                       CANARY_ALERT_WEBHOOK_UNSIGNED=true
//   CANARY_HOOK_SECRET(_FILE)           the HMAC-SHA256 key HTTP hooks are signed with (default: the webhook's key)
//   CANARY_ALERT_SLACK_URL(_FILE)       adds the Slack sink (an incoming-webhook URL)
//   CANARY_ALERTMANAGER_URL             adds the Alertmanager sink (base URL); CANARY_ALERTMANAGER_BEARER_TOKEN(_FILE)
//                                       or CANARY_ALERTMANAGER_USERNAME with CANARY_ALERTMANAGER_PASSWORD(_FILE);
//                                       CANARY_ALERTMANAGER_TTL (default 24h) how long an unresolved alert stays active
//   CANARY_PAGERDUTY_ROUTING_KEY(_FILE) adds the PagerDuty sink (Events API v2); CANARY_PAGERDUTY_URL its base URL
//                                       (default https://events.pagerduty.com)
//   CANARY_ALERT_TIMEOUT                per-request timeout of every sink (default 10s)
//   CANARY_TEMPORAL_UI_URL              Temporal UI base URL (or {namespace}/{workflowId} template) for links in
//                                       alerts, else CANARY_UI_URL; TEMPORAL_NAMESPACE names the namespace
import { delimiter } from 'node:path';
import { parseDuration } from '../workflows/duration';
import {
  ROUTER_TYPES,
  templateSetForRouter,
  validateTarget,
  type RouterType,
  type MetricsTarget,
  type Target,
  type TrafficTarget,
  type WorkloadTarget,
} from '../workflows/target';
import {
  AlertmanagerAlertSink,
  DEFAULT_ALERTMANAGER_TTL_MS,
  type AlertmanagerSettings,
} from './alerts/alertmanager';
import { DEFAULT_SINK_CONTEXT, type SinkContext } from './alerts/context';
import { DEFAULT_ALERT_TIMEOUT_MS, type HttpAuth } from './alerts/http';
import { LogAlertSink } from './alerts/log';
import { DEFAULT_PAGERDUTY_URL, PagerDutyAlertSink, type PagerDutySettings } from './alerts/pagerduty';
import { fileSecret, literalSecret, type Secret } from './alerts/secrets';
import { SlackAlertSink } from './alerts/slack';
import { WebhookAlertSink, type WebhookSettings } from './alerts/webhook';
import { kubeClients, loadKubeConfig, type KubeClients, type KubeSettings } from './kube/client';
import type { HookProviders } from './hooks';
import { heartbeat } from './heartbeat';
import { DEFAULT_CONTROL_URL, LocalStackClient } from './local/control-client';
import { LocalMetricsProvider } from './local/metrics';
import { LocalTrafficRouter } from './local/router';
import { LocalWorkloadManager } from './local/workloads';
import {
  PrometheusMetricsProvider,
  prometheusConnectionFromEnv,
  type PrometheusConnection,
} from './metrics/prometheus';
import { GatewayApiRouter } from './traffic/gateway-api';
import { IstioRouter } from './traffic/istio';
import { NginxRouter } from './traffic/nginx';
import { ReplicaRatioRouter } from './traffic/replicas';
import { SmiRouter } from './traffic/smi';
import {
  ProviderError,
  type AlertSink,
  type MetricsProvider,
  type RolloutAlertSink,
  type TrafficRouter,
  type WorkloadManager,
} from './types';
import { DeploymentWorkloadManager } from './workloads/deployment';

export const WORKLOAD_DEFAULTS = ['local', 'kubernetes'] as const;
export const METRICS_DEFAULTS = ['local', 'prometheus'] as const;

export interface ProviderConfig {
  /** Router for targets that name none. */
  router: RouterType;
  /** Workloads for targets that name none: the local stack, or Deployments named after the app. */
  workloads: (typeof WORKLOAD_DEFAULTS)[number];
  metrics: (typeof METRICS_DEFAULTS)[number];
  /** How to reach Prometheus (CANARY_PROMETHEUS_*): its default URL, credentials, TLS, timeout. */
  prometheus?: PrometheusConnection;
  /** Control API of the local stack, for `local` providers whose target gives no URL. */
  localControlUrl: string;
  kube: KubeSettings;
  /** File the log sink appends to; absent means stdout. */
  alertLogPath?: string;
  /** Adds an (unsigned) webhook sink when set and `alertSinks` has no webhook. */
  alertWebhookUrl?: string;
  /** The other sinks and their secrets (CANARY_ALERT_*, CANARY_ALERTMANAGER_*, CANARY_PAGERDUTY_*). */
  alertSinks?: AlertSinksConfig;
  /** The HMAC key HTTP hooks are signed with (CANARY_HOOK_SECRET(_FILE); else the alert webhook's). */
  hookSecret?: Secret;
}

/** The alert sinks a worker delivers to besides the log, with where their secrets come from. */
export interface AlertSinksConfig {
  context: SinkContext;
  webhook?: WebhookSettings;
  slack?: { url: Secret };
  alertmanager?: AlertmanagerSettings;
  pagerduty?: PagerDutySettings;
}

/** What activities get their providers from: one of each per target, plus the alert sinks. */
export interface ProviderSource {
  router(target: Target): TrafficRouter;
  workloads(target: Target): WorkloadManager;
  metrics(target: Target): MetricsProvider;
  /** What `sendAlert` delivers to, all at once. */
  alerts: AlertSink[];
  /** What `deliverAlert` delivers to, one sink per activity, by name (default: those of `alerts` that can). */
  alertSinks?: RolloutAlertSink[];
  /** What hooks need: their signing key and the cluster Job hooks run in (activities/hooks). */
  hooks?: HookProviders;
}

/** A fixed set of providers for every target (tests that inject a failing router, benchmarks). */
export function fixedProviders(p: {
  router: TrafficRouter;
  workloads: WorkloadManager;
  metrics: MetricsProvider;
  alerts: AlertSink[];
  alertSinks?: RolloutAlertSink[];
}): ProviderSource {
  return {
    router: () => p.router,
    workloads: () => p.workloads,
    metrics: () => p.metrics,
    alerts: p.alerts,
    alertSinks: p.alertSinks ?? p.alerts.filter(isRolloutAlertSink),
  };
}

function isRolloutAlertSink(s: object): s is RolloutAlertSink & AlertSink {
  return typeof (s as Partial<RolloutAlertSink>).deliver === 'function' && 'name' in s;
}

const CACHE_LIMIT = 256;

export class ProviderRegistry implements ProviderSource {
  readonly alerts: AlertSink[];
  readonly alertSinks: RolloutAlertSink[];
  private readonly cache = new Map<string, TrafficRouter | WorkloadManager | MetricsProvider>();
  private readonly local = new Map<string, LocalStackClient>();
  private kube?: KubeClients;
  readonly hooks: HookProviders;

  constructor(readonly config: ProviderConfig) {
    this.alertSinks = buildAlertSinks(config);
    const hookSecret = config.hookSecret ?? config.alertSinks?.webhook?.secret;
    this.hooks = { ...(hookSecret ? { secret: hookSecret } : {}), kube: () => this.kubeClients() };
    // sendAlert keeps delivering to the log and the webhook only, as before per-sink delivery.
    this.alerts = this.alertSinks.filter(
      (s): s is LogAlertSink | WebhookAlertSink => s instanceof LogAlertSink || s instanceof WebhookAlertSink,
    );
  }

  /** The target with the worker's defaults filled in where it names no traffic or workload. */
  effective(target: Target): Target & { traffic: TrafficTarget; workload: WorkloadTarget } {
    return {
      ...target,
      traffic: target.traffic ?? defaultTraffic(this.config.router, target),
      workload:
        target.workload ??
        (this.config.workloads === 'kubernetes'
          ? (derive(target, { workload: { kind: 'Deployment' } }).workload as WorkloadTarget)
          : { kind: 'local' }),
    };
  }

  router(target: Target): TrafficRouter {
    const t = this.effective(target);
    return this.cached('router', t, t.traffic, () => {
      const traffic = t.traffic;
      switch (traffic.router) {
        case 'local':
          return new LocalTrafficRouter(this.localClient(traffic.controlUrl));
        case 'istio':
          return new IstioRouter(this.kubeClients(), t);
        case 'nginx':
          return new NginxRouter(this.kubeClients(), t);
        case 'gatewayAPI':
          return new GatewayApiRouter(this.kubeClients(), t);
        case 'smi':
          return new SmiRouter(this.kubeClients(), t);
        case 'replicas':
          return new ReplicaRatioRouter(this.kubeClients(), t, { waitForCanary: true, heartbeat });
      }
    });
  }

  workloads(target: Target): WorkloadManager {
    const t = this.effective(target);
    return this.cached('workloads', t, [t.workload, t.traffic.router], () =>
      t.workload.kind === 'local'
        ? new LocalWorkloadManager(this.localClient(t.workload.controlUrl))
        : new DeploymentWorkloadManager(this.kubeClients(), t, { heartbeat, stableCapacityWaitMs: 30_000 }),
    );
  }

  metrics(target: Target): MetricsProvider {
    const m: MetricsTarget = target.metrics ?? { provider: this.config.metrics };
    if (m.provider === 'local') {
      return this.cached(
        'metrics',
        target,
        m,
        () => new LocalMetricsProvider(this.localClient(m.controlUrl)),
      );
    }
    // Templates select a side by its Deployment, Service or Ingress: the names the worker's defaults give too.
    const t = this.effective(target);
    const connection = this.config.prometheus ?? { timeoutMs: 10_000 };
    const url = m.url ?? connection.url;
    if (!url) {
      throw new ProviderError(
        'unconfigured',
        `no Prometheus URL for ${target.namespace}/${target.app}: the target's metrics.prometheus.url is not ` +
          "set, nor is the worker's CANARY_PROMETHEUS_URL",
      );
    }
    const templates = m.templates ?? templateSetForRouter(t.traffic.router);
    return this.cached('metrics', t, { provider: 'prometheus', url, templates, traffic: t.traffic }, () => {
      const { url: _default, ...rest } = connection;
      return new PrometheusMetricsProvider({ ...rest, url, templates }, t);
    });
  }

  /** Whether the worker's defaults drive Kubernetes (or a kubeconfig or context was named explicitly). */
  usesKubernetes(): boolean {
    const c = this.config;
    return c.router !== 'local' || c.workloads === 'kubernetes' || !!c.kube.kubeconfig || !!c.kube.context;
  }

  /** The worker's Kubernetes clients, built once; a worker without cluster access says how to give it one. */
  kubeClients(): KubeClients {
    this.kube ??= kubeClients(loadKubeConfig(this.config.kube));
    return this.kube;
  }

  private localClient(url: string | undefined): LocalStackClient {
    const u = url ?? this.config.localControlUrl;
    let client = this.local.get(u);
    if (!client) {
      client = new LocalStackClient(u);
      this.local.set(u, client);
    }
    return client;
  }

  private cached<T extends TrafficRouter | WorkloadManager | MetricsProvider>(
    kind: string,
    target: Target,
    settings: unknown,
    build: () => T,
  ): T {
    const key = JSON.stringify([kind, target.namespace, target.app, settings, target.workload ?? null]);
    const hit = this.cache.get(key);
    if (hit) {
      // Refresh its place: the oldest entry is the one dropped when the cache is full.
      this.cache.delete(key);
      this.cache.set(key, hit);
      return hit as T;
    }
    const made = build();
    this.cache.set(key, made);
    if (this.cache.size > CACHE_LIMIT) this.cache.delete(this.cache.keys().next().value as string);
    return made;
  }
}

/** A part of a target derived by the same rules as a written one (object names follow the app). */
function derive(target: Target, spec: Record<string, unknown>): Target {
  const v = validateTarget({ app: target.app, namespace: target.namespace, ...spec });
  if (!v.ok) {
    throw new ProviderError(
      'invalid',
      `cannot derive a default for ${target.namespace}/${target.app}: ${v.problems.map((p) => `${p.path}: ${p.message}`).join('; ')}`,
    );
  }
  return v.target;
}

function defaultTraffic(router: RouterType, target: Target): TrafficTarget {
  return derive(target, { traffic: { [router]: {} } }).traffic as TrafficTarget;
}

/** Empty variables count as unset (compose files and CI often export VAR= ). */
const read = (env: NodeJS.ProcessEnv, name: string): string | undefined => env[name]?.trim() || undefined;

function pick<T extends string>(
  env: NodeJS.ProcessEnv,
  variable: string,
  what: string,
  known: readonly T[],
  fallback: T,
  extra: { aliases?: Record<string, T>; planned?: string[] } = {},
): T {
  const value = read(env, variable);
  if (value === undefined) return fallback;
  const found =
    known.find((k) => k.toLowerCase() === value.toLowerCase()) ?? extra.aliases?.[value.toLowerCase()];
  if (found) return found;
  if (extra.planned?.includes(value.toLowerCase())) {
    throw new Error(`${what} "${value}" is not available yet (${variable}); available: ${known.join(', ')}`);
  }
  throw new Error(`unknown ${what} "${value}" (${variable}); known: ${known.join(', ')}`);
}

/**
 * CANARY_KUBECONFIG, else a single KUBECONFIG file from the given environment (a list of files is left to the
 * client's own lookup, which reads the process environment).
 */
function kubeconfigFile(env: NodeJS.ProcessEnv): string | undefined {
  const kubeconfig = read(env, 'KUBECONFIG');
  return (
    read(env, 'CANARY_KUBECONFIG') ?? (kubeconfig && !kubeconfig.includes(delimiter) ? kubeconfig : undefined)
  );
}

export function providerConfigFromEnv(env: NodeJS.ProcessEnv = process.env): ProviderConfig {
  return {
    router: pick(env, 'CANARY_ROUTER', 'traffic router', ROUTER_TYPES, 'local', {
      aliases: { 'gateway-api': 'gatewayAPI', gateway: 'gatewayAPI' },
    }),
    workloads: pick(env, 'CANARY_WORKLOADS', 'workload manager', WORKLOAD_DEFAULTS, 'local', {
      aliases: { deployment: 'kubernetes', deployments: 'kubernetes' },
    }),
    metrics: pick(env, 'CANARY_METRICS', 'metrics provider', METRICS_DEFAULTS, 'local'),
    prometheus: prometheusFromEnv(env),
    localControlUrl: httpUrl(env, 'CANARY_LOCAL_CONTROL_URL') ?? DEFAULT_CONTROL_URL,
    kube: {
      ...(kubeconfigFile(env) ? { kubeconfig: kubeconfigFile(env) } : {}),
      ...(read(env, 'CANARY_KUBE_CONTEXT') ? { context: read(env, 'CANARY_KUBE_CONTEXT') } : {}),
    },
    alertLogPath: read(env, 'CANARY_ALERT_LOG'),
    alertSinks: alertSinksFromEnv(env),
    ...hookSecretFromEnv(env),
  };
}

/** CANARY_HOOK_SECRET or CANARY_HOOK_SECRET_FILE (read now, so a missing file fails the worker at start). */
function hookSecretFromEnv(env: NodeJS.ProcessEnv): { hookSecret?: Secret } {
  const value = read(env, 'CANARY_HOOK_SECRET');
  const file = read(env, 'CANARY_HOOK_SECRET_FILE');
  if (value !== undefined && file !== undefined) {
    throw new Error('CANARY_HOOK_SECRET_FILE: set together with CANARY_HOOK_SECRET; use one');
  }
  if (value !== undefined) return { hookSecret: literalSecret('CANARY_HOOK_SECRET', value) };
  if (file === undefined) return {};
  const secret = fileSecret('CANARY_HOOK_SECRET_FILE', file);
  secret.value();
  return { hookSecret: secret };
}

/** The sinks a configuration gives, the log first; every name is one `deliverAlert` accepts. */
export function buildAlertSinks(config: ProviderConfig): Array<RolloutAlertSink & Partial<AlertSink>> {
  const a = config.alertSinks;
  const ctx = a?.context ?? DEFAULT_SINK_CONTEXT;
  const sinks: Array<RolloutAlertSink & Partial<AlertSink>> = [new LogAlertSink(config.alertLogPath)];
  if (a?.webhook) sinks.push(new WebhookAlertSink(a.webhook, ctx));
  else if (config.alertWebhookUrl) sinks.push(new WebhookAlertSink(config.alertWebhookUrl, ctx));
  if (a?.slack) sinks.push(new SlackAlertSink(a.slack.url, ctx));
  if (a?.alertmanager) sinks.push(new AlertmanagerAlertSink(a.alertmanager, ctx));
  if (a?.pagerduty) sinks.push(new PagerDutyAlertSink(a.pagerduty, ctx));
  return sinks;
}

/** `['log', 'webhook', ...]`: names only (what the worker's start line and `alertSinks` show; no secrets). */
export function alertSinkNames(config: ProviderConfig): string[] {
  const a = config.alertSinks;
  return [
    'log',
    ...(a?.webhook || config.alertWebhookUrl ? ['webhook'] : []),
    ...(a?.slack ? ['slack'] : []),
    ...(a?.alertmanager ? ['alertmanager'] : []),
    ...(a?.pagerduty ? ['pagerduty'] : []),
  ];
}

const LOOPBACK_HOSTS = ['localhost', '127.0.0.1', '[::1]'];

/**
 * CANARY_ALERT_*, CANARY_ALERTMANAGER_*, CANARY_PAGERDUTY_*, checked all at once. Secret files are read now, so
 * a worker that cannot read one fails at start; secret values never appear in a message.
 */
export function alertSinksFromEnv(env: NodeJS.ProcessEnv): AlertSinksConfig {
  const problems: string[] = [];
  const problem = (variable: string, text: string) => problems.push(`${variable}: ${text}`);
  const isSet = (name: string) => read(env, name) !== undefined;

  /** NAME or NAME_FILE; `check` says what is wrong with a value (without quoting it). */
  const secret = (name: string, check?: (value: string) => string | undefined): Secret | undefined => {
    const fileVar = `${name}_FILE`;
    const value = read(env, name);
    const file = read(env, fileVar);
    if (value !== undefined && file !== undefined) {
      problem(fileVar, `set together with ${name}; use one`);
      return undefined;
    }
    if (value !== undefined) {
      const bad = check?.(value);
      if (bad) problem(name, bad);
      return bad ? undefined : literalSecret(name, value);
    }
    if (file === undefined) return undefined;
    const s = fileSecret(fileVar, file);
    try {
      const bad = check?.(s.value());
      if (bad) problem(fileVar, `the content of ${file} ${bad}`);
      return bad ? undefined : s;
    } catch (err) {
      problems.push((err as Error).message);
      return undefined;
    }
  };
  /** A problem with a URL, or undefined; `secret` URLs are never quoted. */
  const urlProblem = (value: string, secretUrl: boolean): string | undefined => {
    let u: URL;
    try {
      u = new URL(value.replaceAll('{namespace}', 'ns').replaceAll('{workflowId}', 'id'));
    } catch {
      return secretUrl
        ? 'is not a valid URL (the value is not shown: it is a secret)'
        : `${JSON.stringify(value)} is not a valid URL`;
    }
    if (u.protocol !== 'http:' && u.protocol !== 'https:')
      return `must be an http or https URL, not ${u.protocol}`;
    if (u.username || u.password) return 'must not carry credentials (user:password@)';
    return undefined;
  };
  const duration = (name: string, fallbackMs: number): number => {
    const v = read(env, name);
    if (v === undefined) return fallbackMs;
    try {
      const ms = parseDuration(v);
      if (ms > 0) return ms;
      problem(name, 'must be more than 0s');
    } catch (err) {
      problem(name, `${(err as Error).message}; use a duration like 10s or 1m`);
    }
    return fallbackMs;
  };
  const flag = (name: string): boolean => {
    const v = read(env, name)?.toLowerCase();
    if (v === undefined || ['false', '0', 'no'].includes(v)) return false;
    if (['true', '1', 'yes'].includes(v)) return true;
    problem(name, `${JSON.stringify(read(env, name))} is not a boolean; use true or false`);
    return false;
  };
  const plainUrl = (name: string): string | undefined => {
    const v = read(env, name);
    const bad = v === undefined ? undefined : urlProblem(v, false);
    if (bad) problem(name, bad);
    return bad ? undefined : v;
  };

  const uiBase =
    plainUrl('CANARY_TEMPORAL_UI_URL') ??
    (isSet('CANARY_TEMPORAL_UI_URL') ? undefined : plainUrl('CANARY_UI_URL'));
  const context: SinkContext = {
    timeoutMs: duration('CANARY_ALERT_TIMEOUT', DEFAULT_ALERT_TIMEOUT_MS),
    temporalNamespace: read(env, 'TEMPORAL_NAMESPACE') ?? 'default',
    ...(uiBase ? { uiBase } : {}),
  };
  const out: AlertSinksConfig = { context };

  // Webhook: signed unless it stays on this machine, or its owner says unsigned on purpose.
  let webhookHost: string | undefined;
  const webhookUrl = secret('CANARY_ALERT_WEBHOOK_URL', (v) => {
    const bad = urlProblem(v, true);
    if (!bad) webhookHost = new URL(v).hostname;
    return bad;
  });
  const webhookKey = secret('CANARY_ALERT_WEBHOOK_SECRET');
  const unsigned = flag('CANARY_ALERT_WEBHOOK_UNSIGNED');
  if (webhookUrl) {
    const loopback = webhookHost !== undefined && LOOPBACK_HOSTS.includes(webhookHost);
    if (!webhookKey && !unsigned && !loopback) {
      problem(
        'CANARY_ALERT_WEBHOOK_SECRET',
        'is not set (nor CANARY_ALERT_WEBHOOK_SECRET_FILE): webhook bodies are signed (HMAC-SHA256) so the ' +
          'receiver can check them; set one, or CANARY_ALERT_WEBHOOK_UNSIGNED=true to send unsigned bodies',
      );
    }
    out.webhook = { url: webhookUrl, ...(webhookKey && !unsigned ? { secret: webhookKey } : {}) };
  } else if (webhookKey && !isSet('CANARY_ALERT_WEBHOOK_URL') && !isSet('CANARY_ALERT_WEBHOOK_URL_FILE')) {
    problem('CANARY_ALERT_WEBHOOK_SECRET', 'is set but no webhook is (CANARY_ALERT_WEBHOOK_URL or _FILE)');
  }

  const slack = secret('CANARY_ALERT_SLACK_URL', (v) => urlProblem(v, true));
  if (slack) out.slack = { url: slack };

  // Alertmanager: its URL is no secret; credentials for a proxy in front of it are.
  const amUrl = plainUrl('CANARY_ALERTMANAGER_URL');
  const amToken = secret('CANARY_ALERTMANAGER_BEARER_TOKEN');
  const amUser = read(env, 'CANARY_ALERTMANAGER_USERNAME');
  const amPasswordSet = isSet('CANARY_ALERTMANAGER_PASSWORD') || isSet('CANARY_ALERTMANAGER_PASSWORD_FILE');
  // A password may begin or end with spaces: taken as it is.
  const amPassword =
    env.CANARY_ALERTMANAGER_PASSWORD && !isSet('CANARY_ALERTMANAGER_PASSWORD_FILE')
      ? literalSecret('CANARY_ALERTMANAGER_PASSWORD', env.CANARY_ALERTMANAGER_PASSWORD)
      : secret('CANARY_ALERTMANAGER_PASSWORD');
  let amAuth: HttpAuth | undefined;
  if (amUser !== undefined && amToken) {
    problem('CANARY_ALERTMANAGER_USERNAME', 'basic auth and a bearer token are both set; use one');
  } else if (amUser !== undefined && !amPasswordSet) {
    problem(
      'CANARY_ALERTMANAGER_PASSWORD',
      'is not set (nor CANARY_ALERTMANAGER_PASSWORD_FILE) but a username is',
    );
  } else if (amUser === undefined && amPasswordSet) {
    problem('CANARY_ALERTMANAGER_USERNAME', 'is not set but a password is; basic auth needs both');
  } else if (amUser !== undefined && amPassword) amAuth = { username: amUser, password: amPassword };
  else if (amToken) amAuth = { bearerToken: amToken };
  const ttlMs = duration('CANARY_ALERTMANAGER_TTL', DEFAULT_ALERTMANAGER_TTL_MS);
  if (amUrl) out.alertmanager = { url: amUrl, ttlMs, ...(amAuth ? { auth: amAuth } : {}) };
  else if (!isSet('CANARY_ALERTMANAGER_URL') && (amAuth || amUser !== undefined || amToken)) {
    problem('CANARY_ALERTMANAGER_URL', 'is not set but Alertmanager credentials are');
  }

  const routingKey = secret('CANARY_PAGERDUTY_ROUTING_KEY', (v) =>
    /\s/.test(v) ? 'contains whitespace (the value is not shown: it is a secret)' : undefined,
  );
  const pdUrl = plainUrl('CANARY_PAGERDUTY_URL');
  if (routingKey) out.pagerduty = { routingKey, url: pdUrl ?? DEFAULT_PAGERDUTY_URL };
  else if (pdUrl && !isSet('CANARY_PAGERDUTY_ROUTING_KEY') && !isSet('CANARY_PAGERDUTY_ROUTING_KEY_FILE')) {
    problem(
      'CANARY_PAGERDUTY_ROUTING_KEY',
      'is not set (nor CANARY_PAGERDUTY_ROUTING_KEY_FILE) but CANARY_PAGERDUTY_URL is',
    );
  }

  if (problems.length > 0) {
    throw new Error(
      `invalid alert configuration (${problems.length} problem${problems.length === 1 ? '' : 's'}):\n` +
        problems.map((p) => `  ${p}`).join('\n'),
    );
  }
  return out;
}

/** An http(s) URL from the environment, or a start-up error naming the variable. */
function httpUrl(env: NodeJS.ProcessEnv, name: string): string | undefined {
  const value = read(env, name);
  if (value === undefined) return undefined;
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new Error(`${name}="${value}" is not a URL; use e.g. http://127.0.0.1:7001`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new Error(`${name}="${value}" must be an http or https URL, not ${url.protocol}`);
  }
  return value;
}

/** CANARY_PROMETHEUS_*, checked all at once; a Prometheus default needs a URL. */
function prometheusFromEnv(env: NodeJS.ProcessEnv): PrometheusConnection {
  const connection = prometheusConnectionFromEnv(env);
  if (read(env, 'CANARY_METRICS')?.toLowerCase() === 'prometheus' && !connection.url) {
    throw new Error(
      'CANARY_METRICS=prometheus needs CANARY_PROMETHEUS_URL (the server targets without metrics.prometheus.url use)',
    );
  }
  return connection;
}

/**
 * The registry for a worker. When its defaults need Kubernetes, or a kubeconfig is named explicitly, the
 * cluster configuration is loaded now, so a worker that cannot reach its cluster's credentials fails at start.
 */
export function providersFromEnv(env: NodeJS.ProcessEnv = process.env): ProviderRegistry {
  const registry = new ProviderRegistry(providerConfigFromEnv(env));
  if (registry.usesKubernetes()) registry.kubeClients();
  return registry;
}
