// One way to connect, shared by the worker (NativeConnection) and the CLI/client library (Connection): plain, TLS,
// mTLS or API key, from the same WorkerConfig. Importing this file does not load @temporalio/worker, so the CLI
// stays light; connectNative loads it on demand.
import * as fs from 'node:fs';
import { Client, Connection, type ClientOptions, type TLSConfig } from '@temporalio/client';
import type { NativeConnection } from '@temporalio/worker';
import type { WorkerConfig } from './config';

/** What both connection kinds take: `address`, `tls`, `apiKey`. Reads the certificate files. */
export interface SharedConnectionOptions {
  address: string;
  tls?: TLSConfig;
  apiKey?: string;
}

export function connectionOptions(config: WorkerConfig): SharedConnectionOptions {
  const options: SharedConnectionOptions = { address: config.address };
  if (config.tls) {
    const tls: TLSConfig = {};
    if (config.tls.serverName) tls.serverNameOverride = config.tls.serverName;
    if (config.tls.caPath) tls.serverRootCACertificate = fs.readFileSync(config.tls.caPath);
    if (config.tls.certPath && config.tls.keyPath) {
      tls.clientCertPair = {
        crt: fs.readFileSync(config.tls.certPath),
        key: fs.readFileSync(config.tls.keyPath),
      };
    }
    options.tls = tls;
  }
  if (config.apiKey) options.apiKey = config.apiKey;
  return options;
}

/** Temporal could not be reached (or refused us); the message names the address and what to check. */
export class ConnectError extends Error {
  constructor(
    readonly address: string,
    cause: unknown,
  ) {
    const reason = cause instanceof Error ? cause.message : String(cause);
    super(
      `cannot reach Temporal at ${address}: ${reason}\n` +
        `  Is a server running there? For local development start one with \`temporal server start-dev\`;\n` +
        `  otherwise check TEMPORAL_ADDRESS (and TEMPORAL_TLS, TEMPORAL_TLS_CERT/KEY/CA or TEMPORAL_API_KEY for ` +
        `a TLS endpoint such as Temporal Cloud).`,
      { cause },
    );
    this.name = 'ConnectError';
  }
}

/** A connected `@temporalio/client` Client for the configured namespace (for the CLI and scripts). */
export async function connectClient(
  config: WorkerConfig,
  extra: Omit<ClientOptions, 'connection' | 'namespace'> = {},
): Promise<Client> {
  let connection: Connection;
  try {
    connection = await Connection.connect({ ...connectionOptions(config), connectTimeout: '10s' });
  } catch (err) {
    throw new ConnectError(config.address, err);
  }
  return new Client({ ...extra, connection, namespace: config.namespace });
}

/** A connected NativeConnection for a Worker. */
export async function connectNative(config: WorkerConfig): Promise<NativeConnection> {
  const options = connectionOptions(config);
  const { NativeConnection } = await import('@temporalio/worker');
  try {
    return await NativeConnection.connect(options);
  } catch (err) {
    throw new ConnectError(config.address, err);
  }
}
