// The Temporal connection settings the worker and the CLI share (address, namespace, task queue, TLS, mTLS, API
// key), read from TEMPORAL_* and checked all at once, so a misconfigured deployment reports every mistake in one go.
import * as fs from 'node:fs';
import { pemProblem } from '../activities/pem';
import { DEFAULT_TASK_QUEUE } from '../workflows/api';

export interface TlsSettings {
  /** Client certificate and key (mTLS), both or neither. */
  certPath?: string;
  keyPath?: string;
  /** CA that signed the server's certificate; the system's trust store when not set. */
  caPath?: string;
  /** Overrides the name checked against the server's certificate (SNI). */
  serverName?: string;
}

export interface ConnectionConfig {
  address: string;
  namespace: string;
  taskQueue: string;
  /** Undefined: plain connection. */
  tls?: TlsSettings;
  apiKey?: string;
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

/** Reads TEMPORAL_* from `env`; throws one ConfigError listing every problem. */
export function loadConnectionConfig(env: NodeJS.ProcessEnv = process.env): ConnectionConfig {
  const problems: ConfigProblem[] = [];
  const config = readConnectionConfig(env, problems);
  if (problems.length > 0) throw new ConfigError(problems);
  return config;
}

/**
 * Reads TEMPORAL_* from `env`, adding every problem to `problems` (a caller with settings of its own, such as the
 * worker, adds theirs and throws one ConfigError for all). The result is only meaningful when none was added.
 */
export function readConnectionConfig(env: NodeJS.ProcessEnv, problems: ConfigProblem[]): ConnectionConfig {
  const get = envReader(env);
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
  const tls = readTls(get, apiKey, problems);
  return dropUndefined({ address, namespace, taskQueue, tls, apiKey });
}

/** One line for logs: never includes the API key. */
export function describeConnection(config: ConnectionConfig): string {
  const security = config.apiKey
    ? 'tls+api-key'
    : config.tls?.certPath
      ? 'mtls'
      : config.tls
        ? 'tls'
        : 'plaintext';
  return `address=${config.address} namespace=${config.namespace} taskQueue=${config.taskQueue} security=${security}`;
}

/** A variable's trimmed value; undefined when unset or blank. */
export function envReader(env: NodeJS.ProcessEnv): (name: string) => string | undefined {
  return (name) => {
    const value = env[name]?.trim();
    return value ? value : undefined;
  };
}

/** The TLS settings: on when asked for, or implied by an API key or any TLS setting; undefined when off. */
function readTls(
  get: (name: string) => string | undefined,
  apiKey: string | undefined,
  problems: ConfigProblem[],
): TlsSettings | undefined {
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

  const tlsOn = tlsFlag ?? (apiKey !== undefined || tlsSettingsGiven.length > 0);
  return tlsOn ? dropUndefined({ certPath, keyPath, caPath, serverName }) : undefined;
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
