// Builds the providers the worker's activities run on, from configuration (usually the environment).
//   CANARY_ROUTER             traffic router     (default local)
//   CANARY_WORKLOADS          workload manager   (default local)
//   CANARY_METRICS            metrics provider   (default local)
//   CANARY_LOCAL_CONTROL_URL  the local stack's control API (default http://127.0.0.1:7001)
//   CANARY_ALERT_LOG          file the log sink appends to (default: stdout)
//   CANARY_ALERT_WEBHOOK_URL  adds a webhook sink; a secret, so it never comes from workflow input
import { LogAlertSink } from './alerts/log';
import { WebhookAlertSink } from './alerts/webhook';
import { DEFAULT_CONTROL_URL, LocalStackClient } from './local/control-client';
import { LocalMetricsProvider } from './local/metrics';
import { LocalTrafficRouter } from './local/router';
import { LocalWorkloadManager } from './local/workloads';
import { createActivities } from './rollout-activities';
import type { AlertSink, MetricsProvider, Providers, TrafficRouter, WorkloadManager } from './types';

export interface ProviderConfig {
  router: string;
  workloads: string;
  metrics: string;
  /** Control API of the local stack, used by every `local` provider. */
  localControlUrl: string;
  /** File the log sink appends to; absent means stdout. */
  alertLogPath?: string;
  /** Adds a webhook sink when set. */
  alertWebhookUrl?: string;
}

interface Kind<T> {
  /** Providers that exist, by name. */
  available: Record<string, (config: ProviderConfig, local: () => LocalStackClient) => T>;
  /** Names announced for later, refused with "not available yet" rather than "unknown". */
  planned: string[];
}

const ROUTERS: Kind<TrafficRouter> = {
  available: { local: (_c, local) => new LocalTrafficRouter(local()) },
  planned: ['kubernetes'],
};
const WORKLOADS: Kind<WorkloadManager> = {
  available: { local: (_c, local) => new LocalWorkloadManager(local()) },
  planned: ['kubernetes'],
};
const METRICS: Kind<MetricsProvider> = {
  available: { local: (_c, local) => new LocalMetricsProvider(local()) },
  planned: ['prometheus'],
};

function pick<T>(kind: Kind<T>, what: string, variable: string, name: string) {
  if (Object.hasOwn(kind.available, name)) return kind.available[name];
  const known = Object.keys(kind.available).join(', ');
  if (kind.planned.includes(name)) {
    throw new Error(`${what} "${name}" is not available yet (${variable}); available: ${known}`);
  }
  throw new Error(
    `unknown ${what} "${name}" (${variable}); known: ${known} (coming later: ${kind.planned.join(', ')})`,
  );
}

export function createProviders(config: ProviderConfig): Providers {
  // Resolve every name before building anything, so one bad name is reported before side effects.
  const makeRouter = pick(ROUTERS, 'traffic router', 'CANARY_ROUTER', config.router);
  const makeWorkloads = pick(WORKLOADS, 'workload manager', 'CANARY_WORKLOADS', config.workloads);
  const makeMetrics = pick(METRICS, 'metrics provider', 'CANARY_METRICS', config.metrics);
  // One client shared by the local providers.
  let client: LocalStackClient | undefined;
  const local = () => (client ??= new LocalStackClient(config.localControlUrl));

  const alerts: AlertSink[] = [new LogAlertSink(config.alertLogPath)];
  if (config.alertWebhookUrl) alerts.push(new WebhookAlertSink(config.alertWebhookUrl));

  return {
    router: makeRouter(config, local),
    workloads: makeWorkloads(config, local),
    metrics: makeMetrics(config, local),
    alerts,
  };
}

/** Empty variables count as unset (compose files and CI often export VAR= ). */
const read = (env: NodeJS.ProcessEnv, name: string): string | undefined => env[name]?.trim() || undefined;

export function providerConfigFromEnv(env: NodeJS.ProcessEnv = process.env): ProviderConfig {
  return {
    router: (read(env, 'CANARY_ROUTER') ?? 'local').toLowerCase(),
    workloads: (read(env, 'CANARY_WORKLOADS') ?? 'local').toLowerCase(),
    metrics: (read(env, 'CANARY_METRICS') ?? 'local').toLowerCase(),
    localControlUrl: read(env, 'CANARY_LOCAL_CONTROL_URL') ?? DEFAULT_CONTROL_URL,
    alertLogPath: read(env, 'CANARY_ALERT_LOG'),
    alertWebhookUrl: read(env, 'CANARY_ALERT_WEBHOOK_URL'),
  };
}

export function providersFromEnv(env: NodeJS.ProcessEnv = process.env): Providers {
  return createProviders(providerConfigFromEnv(env));
}

/** The activities object a worker registers. */
export function buildActivities(env: NodeJS.ProcessEnv = process.env) {
  return createActivities(providersFromEnv(env));
}
