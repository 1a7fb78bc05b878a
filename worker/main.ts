#!/usr/bin/env node
// The worker process: configuration from the environment, the Temporal connection, the activities over the
// configured providers, and a graceful shutdown on SIGTERM/SIGINT.
// Exit codes: 0 after a clean shutdown, 1 on an unexpected failure, 2 on a configuration error (a namespace
// without the rollout's search attributes that the worker may not register is one, a metrics port in use another),
// 3 when Temporal cannot be reached (or does not know the namespace).
import { Runtime, type NativeConnection } from '@temporalio/worker';
import { RolloutLogger } from './logger';
import {
  alertSinkNames,
  providerConfigFromEnv,
  providersFromEnv,
  type ProviderRegistry,
} from '../activities/factory';
import { checkCluster } from '../activities/kube/preflight';
import { identityConfigFromEnv } from '../activities/identity';
import { createActivities } from '../activities/rollout-activities';
import { createFleetActivities } from '../activities/fleet';
import { createSweepActivities } from '../activities/sweep';
import { createReleaseActivities } from '../activities/release';
import {
  ConfigError,
  describeConfig,
  describeVersioning,
  loadWorkerProcessConfig,
  providerDefaultProblems,
  type ConfigProblem,
  type WorkerProcessConfig,
  type WorkerVersioning,
} from './config';
import { ConnectError, connectNative } from '../connection/temporal';
import {
  freeLoopbackPort,
  MetricsPortError,
  rolloutRunning,
  RolloutMetrics,
  serveMetrics,
  type MetricsServer,
} from './metrics';
import { ensureSearchAttributesOn, SearchAttributeError } from './search-attributes';
import { deploymentOptions, readRouting, routingNotice } from './versioning';
import { ensureSweepSchedule, sweepScheduleFromEnv, type SweepSchedule } from './sweep';
import { createRolloutWorker } from './worker';
import {
  ClusterContextError,
  clusterProviders,
  describeClusters,
  loadClusterRegistry,
  type ClusterProviders,
} from './clusters';

export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_CONFIG = 2;
export const EXIT_UNREACHABLE = 3;

export async function main(env: NodeJS.ProcessEnv = process.env): Promise<number> {
  let config: WorkerProcessConfig | undefined;
  let activities: object;
  let registry: ProviderRegistry;
  // Every configuration problem in one message: the connection's, the versioning's and the provider defaults'.
  const problems: ConfigProblem[] = [];
  try {
    config = loadWorkerProcessConfig(env);
  } catch (err) {
    if (!isConfigError(err)) return fail(err, EXIT_FAILURE);
    problems.push(...((err as ConfigError).problems ?? []));
  }
  problems.push(...providerDefaultProblems(env));
  // Who may sign people's requests: allowed_signers, an OIDC issuer's JWKS, and whether rollouts demand it.
  const identity = identityConfigFromEnv(env, problems);
  const sweep = sweepScheduleFromEnv(env, problems);
  // CANARY_CLUSTERS: the clusters this worker serves besides its own, each through a kubeconfig context.
  const clusterEntries = loadClusterRegistry(env, problems);
  if (problems.length > 0 || config === undefined) return fail(new ConfigError(problems), EXIT_CONFIG);
  let clusters: Array<ClusterProviders & { activities: object }>;
  try {
    // Provider names and settings come from the environment too: an error here is a configuration error (no
    // Kubernetes cluster configured at all is one).
    registry = providersFromEnv(env);
    const kube = registry.usesKubernetes() ? () => registry.kubeClients() : undefined;
    activities = {
      ...createActivities(registry, identity),
      ...createSweepActivities({ providers: registry, ...(kube ? { kube } : {}) }),
      ...createReleaseActivities(),
      ...createFleetActivities(),
    };
    clusters = clusterProviders(env, clusterEntries, config.taskQueue).map((c) => ({
      ...c,
      activities: createActivities(c.registry, identity),
    }));
  } catch (err) {
    if (err instanceof ClusterContextError) return fail(err, EXIT_CONFIG);
    return fail(new Error(`cannot build the activities: ${errorMessage(err)}`), EXIT_CONFIG);
  }

  // /metrics first: a port in use stops the worker before it connects to anything.
  let metrics: { collector: RolloutMetrics; server: MetricsServer; sdkPort: number } | undefined;
  if (config.metrics) {
    const collector = new RolloutMetrics();
    try {
      // The SDK's own metrics: its Prometheus exporter on a loopback port, forwarded by /metrics.
      const sdkPort = await freeLoopbackPort();
      const server = await serveMetrics({
        ...config.metrics,
        metrics: collector,
        sdkMetricsUrl: `http://127.0.0.1:${sdkPort}/metrics`,
      });
      metrics = { collector, server, sdkPort };
    } catch (err) {
      return fail(err, err instanceof MetricsPortError ? EXIT_CONFIG : EXIT_FAILURE);
    }
  }

  // This process handles the signals itself (below), so the SDK's own hook is off.
  Runtime.install({
    shutdownSignals: [],
    logger: new RolloutLogger(),
    ...(metrics
      ? { telemetryOptions: { metrics: { prometheus: { bindAddress: `127.0.0.1:${metrics.sdkPort}` } } } }
      : {}),
  });
  try {
    return await runWorker(env, config, activities, registry, metrics?.collector, sweep, clusters);
  } finally {
    await metrics?.server.close();
  }
}

async function runWorker(
  env: NodeJS.ProcessEnv,
  config: WorkerProcessConfig,
  activities: object,
  registry: ProviderRegistry,
  metrics: RolloutMetrics | undefined,
  sweep: SweepSchedule | undefined,
  clusters: Array<ClusterProviders & { activities: object }> = [],
): Promise<number> {
  let connection;
  try {
    connection = await connectNative(config);
  } catch (err) {
    // A server that answers in the other security mode is a configuration error; nobody answering is not.
    const code =
      err instanceof ConnectError ? (err.tlsMismatch ? EXIT_CONFIG : EXIT_UNREACHABLE) : EXIT_FAILURE;
    return fail(err, code);
  }

  try {
    // The namespace must have the rollout's search attributes before a rollout can start; register what is
    // missing, or refuse (exit 2) with the commands that do.
    try {
      const { registered } = await ensureSearchAttributesOn(connection, config);
      if (registered.length > 0) {
        console.log(
          `canary worker: registered the search attributes ${registered.join(', ')} in namespace ${config.namespace}`,
        );
      }
    } catch (err) {
      if (err instanceof SearchAttributeError) return fail(err, EXIT_CONFIG);
      if (isNamespaceNotFound(err)) return fail(noNamespace(config, err), EXIT_UNREACHABLE);
      // Not allowed to list them (a restricted operator API): the worker cannot tell, so it says so and runs.
      console.error(
        `canary worker: warning: cannot check the search attributes of namespace ${config.namespace}: ` +
          `${errorMessage(err)}; rollouts fail to start while any is missing`,
      );
    }

    let worker;
    // One Worker per cluster of CANARY_CLUSTERS besides the worker's own: each polls its cluster's queue.
    const clusterWorkers: Array<Awaited<ReturnType<typeof createRolloutWorker>>> = [];
    try {
      const create = (taskQueue: string, acts: object, providers: ProviderRegistry) =>
        createRolloutWorker({
          connection,
          namespace: config.namespace,
          taskQueue,
          activities: acts,
          shutdownGraceTime: config.shutdownGraceTimeMs,
          ...(metrics ? { metrics: { collector: metrics, providers } } : {}),
          ...(config.versioning
            ? { extra: { workerDeploymentOptions: deploymentOptions(config.versioning) } }
            : {}),
        });
      worker = await create(config.taskQueue, activities, registry);
      for (const c of clusters) clusterWorkers.push(await create(c.taskQueue, c.activities, c.registry));
    } catch (err) {
      if (isNamespaceNotFound(err)) return fail(noNamespace(config, err), EXIT_UNREACHABLE);
      throw err;
    }

    let signals = 0;
    const onSignal = (signal: NodeJS.Signals): void => {
      signals += 1;
      if (signals > 1) {
        console.error(`canary worker: ${signal} again, exiting without waiting for in-flight activities`);
        process.exit(EXIT_FAILURE);
      }
      console.log(
        `canary worker: ${signal} received, shutting down (in-flight activities get up to ${config.shutdownGraceTimeMs / 1000} s)`,
      );
      for (const w of [worker, ...clusterWorkers]) if (w.getState() === 'RUNNING') w.shutdown();
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);

    // An unversioned worker's line stays as it was; a versioned one says its deployment and build.
    const versioned = config.versioning ? ` ${describeVersioning(config.versioning)}` : '';
    const served = config.metrics ? ` /metrics=${config.metrics.host}:${config.metrics.port}` : '';
    const serving = clusters.length > 0 ? ` clusters=${describeClusters(clusters)}` : '';
    if (metrics) metrics.running = () => worker.getState() === 'RUNNING';
    const pruning = metrics ? prunePeriodically(metrics, connection, config.namespace) : undefined;
    console.log(
      `canary worker started: ${describeConfig(config)} ${describeProviders(env)}${versioned}${served}${serving}`,
    );
    if (config.versioning) await tellRouting(connection, config.namespace, config.versioning);
    if (sweep) {
      try {
        const done = await ensureSweepSchedule(connection, config.namespace, config.taskQueue, sweep);
        console.log(
          `canary worker: sweep schedule ${done} (every ${sweep.everyMs / 1000} s): rollouts whose workflow no longer runs get their traffic sent back to stable`,
        );
      } catch (err) {
        console.error(`canary worker: warning: cannot create the sweep schedule: ${errorMessage(err)}`);
      }
    }
    // A cluster that does not answer now is said at once, not first at a rollout's start. The worker runs anyway:
    // the cluster may come back, and every rollout's preflight checks it again (and refuses while it is down).
    await warnAboutCluster(registry);
    for (const c of clusters) await warnAboutCluster(c.registry, ` (cluster ${c.cluster})`);
    try {
      // If one stops on its own (a fatal error), the others stop too: the process exits with its error.
      await Promise.all(
        [worker, ...clusterWorkers].map((w) =>
          w.run().catch((err: unknown) => {
            for (const o of [worker, ...clusterWorkers]) if (o.getState() === 'RUNNING') o.shutdown();
            throw err;
          }),
        ),
      );
    } finally {
      if (pruning) clearInterval(pruning);
      process.off('SIGTERM', onSignal);
      process.off('SIGINT', onSignal);
    }
    console.log('canary worker stopped');
    return EXIT_OK;
  } catch (err) {
    return fail(err, EXIT_FAILURE);
  } finally {
    await connection.close().catch(() => undefined);
  }
}

/**
 * `router=local workloads=local metrics=local alerts=log,webhook,slack,alertmanager,pagerduty` (sink names only:
 * their URLs and keys are secrets).
 */
export function describeProviders(env: NodeJS.ProcessEnv): string {
  const p = providerConfigFromEnv(env);
  return `router=${p.router} workloads=${p.workloads} metrics=${p.metrics} alerts=${alertSinkNames(p).join(',')}`;
}

/** Every 5 minutes: the metrics forget rollouts that went quiet here and are no longer running (ended elsewhere). */
function prunePeriodically(
  metrics: RolloutMetrics,
  connection: NativeConnection,
  namespace: string,
): NodeJS.Timeout {
  const timer = setInterval(() => void metrics.prune(rolloutRunning(connection, namespace)), 5 * 60_000);
  timer.unref();
  return timer;
}

/** When the worker's defaults use Kubernetes: whether its API server answers with these credentials (≤ 5 s). */
async function warnAboutCluster(registry: ProviderRegistry, which = ''): Promise<void> {
  if (!registry.usesKubernetes()) return;
  try {
    for (const f of await checkCluster(registry.kubeClients())) {
      console.error(
        `canary worker: warning${which}: ${f.message}; rollouts on this cluster will not start until it answers`,
      );
    }
  } catch (err) {
    console.error(
      `canary worker: warning${which}: cannot check the Kubernetes cluster: ${errorMessage(err)}`,
    );
  }
}

/** Whether this build takes new rollouts, and how to make it, when it does not (never stops the worker). */
async function tellRouting(
  connection: NativeConnection,
  namespace: string,
  versioning: WorkerVersioning,
): Promise<void> {
  try {
    const notice = routingNotice(await readRouting(connection, namespace, versioning), versioning);
    if (notice?.warning) console.error(`canary worker: warning: ${notice.message}`);
    else if (notice) console.log(`canary worker: ${notice.message}`);
  } catch (err) {
    console.error(
      `canary worker: warning: cannot read deployment ${versioning.deploymentName}: ${errorMessage(err)}`,
    );
  }
}

function isNamespaceNotFound(err: unknown): boolean {
  return /namespace/i.test(errorMessage(err)) && /not.?found/i.test(errorMessage(err));
}

function noNamespace(config: WorkerProcessConfig, err: unknown): Error {
  return new Error(
    `Temporal at ${config.address} has no namespace "${config.namespace}": create it ` +
      `(temporal operator namespace create --namespace ${config.namespace}) or fix TEMPORAL_NAMESPACE ` +
      `(${errorMessage(err)})`,
  );
}

function isConfigError(err: unknown): boolean {
  return err instanceof ConfigError || (err instanceof Error && err.name === 'ConfigError');
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function fail(err: unknown, code: number): number {
  console.error(`canary worker: ${errorMessage(err)}`);
  return code;
}

if (require.main === module) {
  main().then(
    (code) => process.exit(code),
    (err: unknown) => {
      console.error(err);
      process.exit(EXIT_FAILURE);
    },
  );
}
