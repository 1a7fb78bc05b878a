// The worker's configuration: the Temporal connection settings it shares with the CLI (connection/config.ts) plus
// its own, read from the environment and checked all at once, so a misconfigured deployment reports every mistake in
// one go.
import {
  ConfigError,
  describeConnection,
  envReader,
  readConnectionConfig,
  type ConfigProblem,
  type ConnectionConfig,
} from '../connection/config';
import * as net from 'node:net';
import { parseDuration } from '../workflows/duration';

export {
  ConfigError,
  DEFAULT_ADDRESS,
  DEFAULT_NAMESPACE,
  type ConfigProblem,
  type TlsSettings,
} from '../connection/config';

export interface WorkerConfig extends ConnectionConfig {
  /** How long in-flight activities may run on after SIGTERM before they are cancelled, in milliseconds. */
  shutdownGraceTimeMs: number;
}

export const DEFAULT_SHUTDOWN_GRACE_TIME = '30s';

/** Reads TEMPORAL_* (and WORKER_SHUTDOWN_GRACE_TIME) from `env`; throws one ConfigError listing every problem. */
export function loadWorkerConfig(env: NodeJS.ProcessEnv = process.env): WorkerConfig {
  const problems: ConfigProblem[] = [];
  const connection = readConnectionConfig(env, problems);

  const graceText = envReader(env)('WORKER_SHUTDOWN_GRACE_TIME') ?? DEFAULT_SHUTDOWN_GRACE_TIME;
  let shutdownGraceTimeMs: number | undefined;
  try {
    shutdownGraceTimeMs = parseDuration(graceText);
  } catch (err) {
    // The same duration syntax as plans: 30s, 2m, 1m30s, PT30S.
    problems.push({ variable: 'WORKER_SHUTDOWN_GRACE_TIME', problem: (err as Error).message });
  }

  if (problems.length > 0) throw new ConfigError(problems);
  return { ...connection, shutdownGraceTimeMs: shutdownGraceTimeMs ?? 0 };
}

/**
 * Worker Versioning: the Worker Deployment this worker belongs to and the build it runs. With it, each rollout is
 * pinned to the build that started it (PINNED): it runs to its end on workers of that build, whatever is deployed
 * meanwhile, and new rollouts go to the deployment's current version (`temporal worker deployment
 * set-current-version`).
 */
export interface WorkerVersioning {
  deploymentName: string;
  buildId: string;
}

/** The worker process's settings: the connection (shared with the CLI) and its own. */
export interface WorkerProcessConfig extends WorkerConfig {
  /** Undefined: unversioned, any worker polling the task queue takes any rollout (the default). */
  versioning?: WorkerVersioning;
  /** Where the worker serves /metrics; undefined: it serves none (the default). */
  metrics?: MetricsEndpoint;
}

export interface MetricsEndpoint {
  port: number;
  host: string;
}

export const METRICS_PORT_VARIABLE = 'CANARY_METRICS_PORT';
export const METRICS_HOST_VARIABLE = 'CANARY_METRICS_HOST';
/** The port the Helm chart and deploy/worker.yaml give the worker (OpenTelemetry's Prometheus exporter's). */
export const CONVENTIONAL_METRICS_PORT = 9464;

/**
 * CANARY_METRICS_PORT (1-65535) turns /metrics on, on all interfaces unless CANARY_METRICS_HOST names one. Off when
 * unset: a worker started by hand or by a test binds no port it was not asked to.
 */
export function loadMetricsEndpoint(
  env: NodeJS.ProcessEnv,
  problems: ConfigProblem[],
): MetricsEndpoint | undefined {
  const text = env[METRICS_PORT_VARIABLE]?.trim();
  if (!text) return undefined;
  const port = /^\d{1,5}$/.test(text) ? Number(text) : NaN;
  if (!(port >= 1 && port <= 65535)) {
    problems.push({
      variable: METRICS_PORT_VARIABLE,
      problem: `"${text}" is not a port number (1-65535), e.g. ${CONVENTIONAL_METRICS_PORT}; unset it to serve no /metrics`,
    });
    return undefined;
  }
  const host = env[METRICS_HOST_VARIABLE]?.trim() || '0.0.0.0';
  if (net.isIP(host) === 0 && host !== 'localhost') {
    problems.push({
      variable: METRICS_HOST_VARIABLE,
      problem: `"${host}" is not an IP address to listen on, e.g. 0.0.0.0 (all interfaces, the default) or 127.0.0.1`,
    });
    return undefined;
  }
  return { port, host };
}

/**
 * The names the Temporal Worker Controller sets on the pods it runs, so the worker runs under it as it is. The CLI
 * does not read them.
 */
export const DEPLOYMENT_NAME_VARIABLE = 'TEMPORAL_DEPLOYMENT_NAME';
export const BUILD_ID_VARIABLE = 'TEMPORAL_WORKER_BUILD_ID';

/** loadWorkerConfig plus the worker's versioning settings, every problem of both in one ConfigError. */
export function loadWorkerProcessConfig(env: NodeJS.ProcessEnv = process.env): WorkerProcessConfig {
  const problems: ConfigProblem[] = [];
  let connection: WorkerConfig | undefined;
  try {
    connection = loadWorkerConfig(env);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    problems.push(...err.problems);
  }
  const versioning = loadWorkerVersioning(env, problems);
  const metrics = loadMetricsEndpoint(env, problems);
  if (problems.length > 0 || connection === undefined) throw new ConfigError(problems);
  return { ...connection, ...(versioning ? { versioning } : {}), ...(metrics ? { metrics } : {}) };
}

/**
 * TEMPORAL_DEPLOYMENT_NAME and TEMPORAL_WORKER_BUILD_ID: both (versioned) or neither (unversioned). Problems are
 * added to `problems`.
 */
export function loadWorkerVersioning(
  env: NodeJS.ProcessEnv,
  problems: ConfigProblem[],
): WorkerVersioning | undefined {
  const deploymentName = env[DEPLOYMENT_NAME_VARIABLE]?.trim() || undefined;
  const buildId = env[BUILD_ID_VARIABLE]?.trim() || undefined;
  if (deploymentName === undefined && buildId === undefined) return undefined;
  const before = problems.length;
  if (deploymentName === undefined || buildId === undefined) {
    const [given, missing] =
      deploymentName === undefined
        ? [BUILD_ID_VARIABLE, DEPLOYMENT_NAME_VARIABLE]
        : [DEPLOYMENT_NAME_VARIABLE, BUILD_ID_VARIABLE];
    problems.push({
      variable: missing,
      problem: `is not set but ${given} is; Worker Versioning needs both the deployment name and the build id (or neither)`,
    });
  }
  if (deploymentName !== undefined) {
    // The server refuses these in a deployment name: a worker using one would poll and never be registered.
    const bad = /\s/.test(deploymentName)
      ? 'whitespace'
      : deploymentName.includes('.')
        ? '"."'
        : deploymentName.includes(':')
          ? '":"'
          : undefined;
    if (bad)
      problems.push({
        variable: DEPLOYMENT_NAME_VARIABLE,
        problem: `"${deploymentName}" contains ${bad}, which Temporal does not take in a deployment name; use letters, digits, - and _`,
      });
  }
  if (buildId !== undefined && /\s/.test(buildId)) {
    problems.push({
      variable: BUILD_ID_VARIABLE,
      problem: `"${buildId}" contains whitespace; use the image tag or commit, e.g. 1.4.2 or 3f9c2e1`,
    });
  }
  if (problems.length > before || deploymentName === undefined || buildId === undefined) return undefined;
  return { deploymentName, buildId };
}

/** `deployment=canary-worker build=3f9c2e1 (rollouts pinned)`, or `unversioned`. */
export function describeVersioning(versioning: WorkerVersioning | undefined): string {
  return versioning
    ? `deployment=${versioning.deploymentName} build=${versioning.buildId} (rollouts pinned)`
    : 'unversioned';
}

/** One line for logs: never includes the API key. */
export function describeConfig(config: WorkerConfig): string {
  return describeConnection(config);
}

/**
 * The demo's opt-in: CANARY_PROVIDERS=local lets the local stack (activities/local, the demo's proxy and counters)
 * be the default of every provider variable left unset. `npm run demo`, docker-compose.yml and the test harness
 * set it.
 */
export const DEMO_PROVIDERS_VARIABLE = 'CANARY_PROVIDERS';

/** The provider defaults (activities/factory.ts) and what a worker outside the demo sets them to. */
const PROVIDER_DEFAULT_CHOICES: ReadonlyArray<readonly [string, string, string]> = [
  ['CANARY_ROUTER', 'targets without `traffic`', 'istio, nginx, gatewayAPI, smi or replicas'],
  ['CANARY_WORKLOADS', 'targets without `workload`', 'kubernetes'],
  ['CANARY_METRICS', 'targets without `metrics`', 'prometheus (with CANARY_PROMETHEUS_URL)'],
];

/**
 * Outside the demo a worker does not fall back to the local stack: each provider variable left unset is a problem,
 * unless CANARY_PROVIDERS=local says the demo's stack is meant. A variable set to `local` explicitly is a choice
 * and stays allowed. Without this a production worker left a target without `metrics:` on the demo's counters,
 * which never answer there, and every such rollout rolled back after three rounds.
 */
export function providerDefaultProblems(env: NodeJS.ProcessEnv = process.env): ConfigProblem[] {
  const optIn = env[DEMO_PROVIDERS_VARIABLE]?.trim();
  if (optIn) {
    if (optIn.toLowerCase() === 'local') return [];
    return [
      {
        variable: DEMO_PROVIDERS_VARIABLE,
        problem: `"${optIn}" is not known; local (the demo's stack as every unset default) is the only value, or unset it`,
      },
    ];
  }
  return PROVIDER_DEFAULT_CHOICES.filter(([variable]) => !env[variable]?.trim()).map(
    ([variable, forWhat, choices]) => ({
      variable,
      problem:
        `is not set, and a worker outside the demo has no default for ${forWhat}: set it to ${choices}, ` +
        `or set ${DEMO_PROVIDERS_VARIABLE}=local to run on the demo's local stack`,
    }),
  );
}
