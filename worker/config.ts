// The worker's (and the CLI's) connection settings, and the worker's versioning, read from the environment and
// checked all at once, so a misconfigured deployment reports every mistake in one go.
import * as fs from 'node:fs';
import { pemProblem } from '../activities/pem';
import { DEFAULT_TASK_QUEUE } from '../workflows/api';
import { parseDuration } from '../workflows/duration';

export interface TlsSettings {
  /** Client certificate and key (mTLS), both or neither. */
  certPath?: string;
  keyPath?: string;
  /** CA that signed the server's certificate; the system's trust store when not set. */
  caPath?: string;
  /** Overrides the name checked against the server's certificate (SNI). */
  serverName?: string;
}

export interface WorkerConfig {
  address: string;
  namespace: string;
  taskQueue: string;
  /** Undefined: plain connection. */
  tls?: TlsSettings;
  apiKey?: string;
  /** How long in-flight activities may run on after SIGTERM before they are cancelled, in milliseconds. */
  shutdownGraceTimeMs: number;
}

export interface ConfigProblem {
  variable: string;
  problem: string;
}

export class ConfigError extends Error {
  readonly problems: ConfigProblem[];

  constructor(problems: ConfigProblem[]) {
    super(
      `invalid configuration (${problems.length} problem${problems.length === 1 ? '' : 's'}):\n` +
        problems.map((p) => `  ${p.variable}: ${p.problem}`).join('\n'),
    );
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

export const DEFAULT_ADDRESS = 'localhost:7233';
export const DEFAULT_NAMESPACE = 'default';
export const DEFAULT_SHUTDOWN_GRACE_TIME = '30s';

/** Reads TEMPORAL_* (and WORKER_SHUTDOWN_GRACE_TIME) from `env`; throws one ConfigError listing every problem. */
export function loadWorkerConfig(env: NodeJS.ProcessEnv = process.env): WorkerConfig {
  const problems: ConfigProblem[] = [];
  const get = (name: string): string | undefined => {
    const value = env[name]?.trim();
    return value ? value : undefined;
  };

  const address = get('TEMPORAL_ADDRESS') ?? DEFAULT_ADDRESS;
  const addressProblem = checkAddress(address);
  if (addressProblem) {
    problems.push({
      variable: 'TEMPORAL_ADDRESS',
      problem: `${addressProblem}; set it to host:port, e.g. localhost:7233 or my-ns.a1b2c.tmprl.cloud:7233`,
    });
  }

  const namespace = get('TEMPORAL_NAMESPACE') ?? DEFAULT_NAMESPACE;
  if (/\s/.test(namespace)) {
    problems.push({
      variable: 'TEMPORAL_NAMESPACE',
      problem: `"${namespace}" contains whitespace; use the bare name`,
    });
  }
  const taskQueue = get('TEMPORAL_TASK_QUEUE') ?? DEFAULT_TASK_QUEUE;

  const apiKey = get('TEMPORAL_API_KEY');
  const certPath = get('TEMPORAL_TLS_CERT');
  const keyPath = get('TEMPORAL_TLS_KEY');
  const caPath = get('TEMPORAL_TLS_CA');
  const serverName = get('TEMPORAL_TLS_SERVER_NAME');

  let tlsFlag: boolean | undefined;
  const tlsRaw = get('TEMPORAL_TLS');
  if (tlsRaw !== undefined) {
    tlsFlag = parseBool(tlsRaw);
    if (tlsFlag === undefined) {
      problems.push({
        variable: 'TEMPORAL_TLS',
        problem: `"${tlsRaw}" is not a boolean; set it to true or false`,
      });
    }
  }

  const tlsSettingNames = [
    'TEMPORAL_TLS_CERT',
    'TEMPORAL_TLS_KEY',
    'TEMPORAL_TLS_CA',
    'TEMPORAL_TLS_SERVER_NAME',
  ];
  const tlsSettingsGiven = tlsSettingNames.filter((name) => get(name) !== undefined);
  if (tlsFlag === false) {
    if (apiKey) {
      problems.push({
        variable: 'TEMPORAL_TLS',
        problem:
          'is false but TEMPORAL_API_KEY is set, and API keys are only sent over TLS; unset TEMPORAL_TLS or set it to true',
      });
    }
    for (const name of tlsSettingsGiven) {
      problems.push({
        variable: name,
        problem: 'is set but TEMPORAL_TLS is false; unset it, or set TEMPORAL_TLS=true',
      });
    }
  }
  if ((certPath === undefined) !== (keyPath === undefined)) {
    const [given, missing] = certPath
      ? ['TEMPORAL_TLS_CERT', 'TEMPORAL_TLS_KEY']
      : ['TEMPORAL_TLS_KEY', 'TEMPORAL_TLS_CERT'];
    problems.push({
      variable: missing,
      problem: `is not set but ${given} is; mTLS needs both the client certificate and its private key (or neither)`,
    });
  }
  for (const [name, file] of [
    ['TEMPORAL_TLS_CERT', certPath],
    ['TEMPORAL_TLS_KEY', keyPath],
    ['TEMPORAL_TLS_CA', caPath],
  ] as const) {
    if (file === undefined) continue;
    const problem =
      checkReadableFile(file) ?? pemProblem(file, name === 'TEMPORAL_TLS_KEY' ? 'key' : 'certificate');
    if (problem)
      problems.push({ variable: name, problem: `${file}: ${problem}; point it at a readable PEM file` });
  }

  const graceText = get('WORKER_SHUTDOWN_GRACE_TIME') ?? DEFAULT_SHUTDOWN_GRACE_TIME;
  let shutdownGraceTimeMs: number | undefined;
  try {
    shutdownGraceTimeMs = parseDuration(graceText);
  } catch (err) {
    // The same duration syntax as plans: 30s, 2m, 1m30s, PT30S.
    problems.push({ variable: 'WORKER_SHUTDOWN_GRACE_TIME', problem: (err as Error).message });
  }

  if (problems.length > 0) throw new ConfigError(problems);

  // TLS is on when asked for, or implied by an API key or any TLS setting.
  const tlsOn = tlsFlag ?? (apiKey !== undefined || tlsSettingsGiven.length > 0);
  const tls: TlsSettings | undefined = tlsOn
    ? dropUndefined({ certPath, keyPath, caPath, serverName })
    : undefined;
  return dropUndefined({
    address,
    namespace,
    taskQueue,
    tls,
    apiKey,
    shutdownGraceTimeMs: shutdownGraceTimeMs ?? 0,
  });
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
  if (problems.length > 0 || connection === undefined) throw new ConfigError(problems);
  return versioning ? { ...connection, versioning } : connection;
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
  const security = config.apiKey
    ? 'tls+api-key'
    : config.tls?.certPath
      ? 'mtls'
      : config.tls
        ? 'tls'
        : 'plaintext';
  return `address=${config.address} namespace=${config.namespace} taskQueue=${config.taskQueue} security=${security}`;
}

function checkAddress(address: string): string | undefined {
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(address))
    return `"${address}" has a URL scheme, which gRPC addresses do not take`;
  const match = /^(\[[0-9a-fA-F:.]+\]|[^\s:/[\]]+)(?::(\d+))?$/.exec(address);
  if (!match) return `"${address}" is not host:port`;
  if (match[2] !== undefined) {
    const port = Number(match[2]);
    if (!Number.isInteger(port) || port < 1 || port > 65535)
      return `"${address}" has port ${match[2]} outside 1-65535`;
  }
  return undefined;
}

function checkReadableFile(file: string): string | undefined {
  try {
    if (!fs.statSync(file).isFile()) return 'is not a file';
    fs.accessSync(file, fs.constants.R_OK);
    return undefined;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'not readable' : (err as Error).message;
  }
}

function parseBool(value: string): boolean | undefined {
  const v = value.toLowerCase();
  if (['true', '1', 'yes', 'on'].includes(v)) return true;
  if (['false', '0', 'no', 'off'].includes(v)) return false;
  return undefined;
}

function dropUndefined<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;
}
