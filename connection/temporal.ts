// One way to connect, shared by the worker (NativeConnection) and the CLI/client library (Connection): plain, TLS,
// mTLS or API key, from the same ConnectionConfig. Importing this file does not load @temporalio/worker, so the CLI
// stays light; connectNative loads it on demand.
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as tls from 'node:tls';
import { Client, Connection, type ClientOptions, type TLSConfig } from '@temporalio/client';
import type { NativeConnection } from '@temporalio/worker';
import { SEARCH_ATTRIBUTES } from '../workflows/api';
import type { ConnectionConfig } from './config';

/** What both connection kinds take: `address`, `tls`, `apiKey`. Reads the certificate files. */
export interface SharedConnectionOptions {
  address: string;
  tls?: TLSConfig;
  apiKey?: string;
}

export function connectionOptions(config: ConnectionConfig): SharedConnectionOptions {
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

/** A local dev server that the worker and the CLI can use as they are (the binary is not on PATH in a clone). */
export const DEV_SERVER_COMMAND =
  '.tools/py/bin/temporal server start-dev ' +
  SEARCH_ATTRIBUTES.map(([name, type]) => `--search-attribute ${name}=${type}`).join(' ');

/** Temporal could not be reached (or refused us); the message names the address and what to check. */
export class ConnectError extends Error {
  constructor(
    readonly address: string,
    cause: unknown,
    /** Set when the server answered, but not in the security mode configured: a configuration error. */
    readonly tlsMismatch?: string,
  ) {
    const reason = cause instanceof Error ? cause.message : String(cause);
    super(
      tlsMismatch
        ? `cannot connect to Temporal at ${address}: ${tlsMismatch}`
        : `cannot reach Temporal at ${address}: ${reason}\n` +
            `  Is a server running there? For local development start one with the CLI that npm run setup installs,\n` +
            `  with the rollout's search attributes: ${DEV_SERVER_COMMAND}\n` +
            `  (npm run demo runs a whole rollout on a server of its own);\n` +
            `  otherwise check TEMPORAL_ADDRESS (and TEMPORAL_TLS, TEMPORAL_TLS_CERT/KEY/CA or TEMPORAL_API_KEY for ` +
            `a TLS endpoint such as Temporal Cloud).`,
      { cause },
    );
    this.name = 'ConnectError';
  }
}

/**
 * After a failed connect: does the server speak the other security mode? TLS (or an API key, which is only
 * sent over TLS) against a plaintext dev server, or plaintext against a TLS endpoint, otherwise surface as a
 * bare "transport error" or a timeout.
 */
export async function tlsMismatch(config: ConnectionConfig): Promise<string | undefined> {
  const tlsOn = config.tls !== undefined;
  const answer = await speaksTls(config.address);
  if (tlsOn && answer === false) {
    return (
      `TLS is on (${config.apiKey ? 'TEMPORAL_API_KEY implies it' : 'TEMPORAL_TLS or a TEMPORAL_TLS_* setting'}) ` +
      `but the server answers in plaintext. For a local dev server unset TEMPORAL_TLS, TEMPORAL_TLS_* and ` +
      `TEMPORAL_API_KEY (API keys are only ever sent over TLS); otherwise point TEMPORAL_ADDRESS at the TLS endpoint.`
    );
  }
  if (!tlsOn && answer === true) {
    return (
      'the server speaks TLS but TLS is off. Set TEMPORAL_TLS=true (with TEMPORAL_TLS_CA for a private CA), ' +
      'plus TEMPORAL_TLS_CERT and TEMPORAL_TLS_KEY for mTLS or TEMPORAL_API_KEY, as the server requires.'
    );
  }
  return undefined;
}

/** true: a TLS handshake completes; false: something answers, but not TLS; undefined: nothing to tell. */
export function speaksTls(address: string, timeoutMs = 3_000): Promise<boolean | undefined> {
  const m = /^\[?([^\]]+?)\]?:(\d+)$/.exec(address.trim());
  if (!m) return Promise.resolve(undefined);
  const [, host, port] = m;
  return new Promise((resolve) => {
    const socket = tls.connect({
      host,
      port: Number(port),
      ...(net.isIP(host) ? {} : { servername: host }),
      rejectUnauthorized: false,
      ALPNProtocols: ['h2'],
    });
    const done = (value: boolean | undefined): void => {
      socket.destroy();
      resolve(value);
    };
    socket.setTimeout(timeoutMs, () => done(undefined));
    socket.once('secureConnect', () => done(true));
    socket.once('error', (err: NodeJS.ErrnoException) => {
      const unreachable = [
        'ECONNREFUSED',
        'EHOSTUNREACH',
        'ENETUNREACH',
        'ENOTFOUND',
        'EAI_AGAIN',
        'ETIMEDOUT',
      ];
      done(unreachable.includes(err.code ?? '') ? undefined : false);
    });
  });
}

/** A connected `@temporalio/client` Client for the configured namespace (for the CLI and scripts). */
export async function connectClient(
  config: ConnectionConfig,
  extra: Omit<ClientOptions, 'connection' | 'namespace'> = {},
): Promise<Client> {
  let connection: Connection;
  try {
    connection = await Connection.connect({ ...connectionOptions(config), connectTimeout: '10s' });
  } catch (err) {
    throw new ConnectError(config.address, err, await tlsMismatch(config));
  }
  return new Client({ ...extra, connection, namespace: config.namespace });
}

/** A connected NativeConnection for a Worker. */
export async function connectNative(config: ConnectionConfig): Promise<NativeConnection> {
  const options = connectionOptions(config);
  const { NativeConnection } = await import('@temporalio/worker');
  try {
    return await NativeConnection.connect(options);
  } catch (err) {
    throw new ConnectError(config.address, err, await tlsMismatch(config));
  }
}
