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
//   CANARY_ALERT_WEBHOOK_URL  adds a webhook sink; a secret, so it never comes from workflow input
import { delimiter } from 'node:path';
import { Context } from '@temporalio/activity';
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
import { LogAlertSink } from './alerts/log';
import { WebhookAlertSink } from './alerts/webhook';
import { kubeClients, loadKubeConfig, type KubeClients, type KubeSettings } from './kube/client';
import { DEFAULT_CONTROL_URL, LocalStackClient } from './local/control-client';
import { LocalMetricsProvider } from './local/metrics';
import { LocalTrafficRouter } from './local/router';
import { LocalWorkloadManager } from './local/workloads';
import {
  PrometheusMetricsProvider,
  prometheusConnectionFromEnv,
  type PrometheusConnection,
} from './metrics/prometheus';
import { createActivities } from './rollout-activities';
import { GatewayApiRouter } from './traffic/gateway-api';
import { IstioRouter } from './traffic/istio';
import { NginxRouter } from './traffic/nginx';
import { ReplicaRatioRouter } from './traffic/replicas';
import { SmiRouter } from './traffic/smi';
import {
  ProviderError,
  type AlertSink,
  type MetricsProvider,
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
  /** Adds a webhook sink when set. */
  alertWebhookUrl?: string;
}

/** What activities get their providers from: one of each per target, plus the alert sinks. */
export interface ProviderSource {
  router(target: Target): TrafficRouter;
  workloads(target: Target): WorkloadManager;
  metrics(target: Target): MetricsProvider;
  alerts: AlertSink[];
}

/** A fixed set of providers for every target (tests that inject a failing router, benchmarks). */
export function fixedProviders(p: {
  router: TrafficRouter;
  workloads: WorkloadManager;
  metrics: MetricsProvider;
  alerts: AlertSink[];
}): ProviderSource {
  return { router: () => p.router, workloads: () => p.workloads, metrics: () => p.metrics, alerts: p.alerts };
}

/** Heartbeats while an activity waits (a canary becoming available); a no-op outside an activity. */
function heartbeat(details?: unknown): void {
  try {
    Context.current().heartbeat(details);
  } catch {
    // Not inside an activity (a script or a test calling the provider directly).
  }
}

const CACHE_LIMIT = 256;

export class ProviderRegistry implements ProviderSource {
  readonly alerts: AlertSink[];
  private readonly cache = new Map<string, TrafficRouter | WorkloadManager | MetricsProvider>();
  private readonly local = new Map<string, LocalStackClient>();
  private kube?: KubeClients;

  constructor(readonly config: ProviderConfig) {
    this.alerts = [new LogAlertSink(config.alertLogPath)];
    if (config.alertWebhookUrl) this.alerts.push(new WebhookAlertSink(config.alertWebhookUrl));
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
          return new ReplicaRatioRouter(this.kubeClients(), t);
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
        'invalid',
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
    localControlUrl: read(env, 'CANARY_LOCAL_CONTROL_URL') ?? DEFAULT_CONTROL_URL,
    kube: {
      ...(kubeconfigFile(env) ? { kubeconfig: kubeconfigFile(env) } : {}),
      ...(read(env, 'CANARY_KUBE_CONTEXT') ? { context: read(env, 'CANARY_KUBE_CONTEXT') } : {}),
    },
    alertLogPath: read(env, 'CANARY_ALERT_LOG'),
    alertWebhookUrl: read(env, 'CANARY_ALERT_WEBHOOK_URL'),
  };
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
  const c = registry.config;
  if (c.router !== 'local' || c.workloads === 'kubernetes' || c.kube.kubeconfig || c.kube.context) {
    registry.kubeClients();
  }
  return registry;
}

/** The activities object a worker registers. */
export function buildActivities(env: NodeJS.ProcessEnv = process.env) {
  return createActivities(providersFromEnv(env));
}
