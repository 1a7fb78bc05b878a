// Worker/CLI connection settings: defaults, TLS, mTLS and API-key combinations, every problem reported at once.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ConfigError, describeConfig, loadWorkerConfig } from '../../worker/config';
import { connectionOptions } from '../../worker/connection';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'canary-config-'));
const cert = path.join(dir, 'client.pem');
const key = path.join(dir, 'client.key');
const ca = path.join(dir, 'ca.pem');
fs.writeFileSync(cert, 'CERT');
fs.writeFileSync(key, 'KEY');
fs.writeFileSync(ca, 'CA');

function problemsOf(env: NodeJS.ProcessEnv): string[] {
  try {
    loadWorkerConfig(env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).problems.map((p) => `${p.variable}: ${p.problem}`);
  }
  throw new Error('expected a ConfigError');
}

test('defaults: a plain connection to the local dev server', () => {
  expect(loadWorkerConfig({})).toEqual({
    address: 'localhost:7233',
    namespace: 'default',
    taskQueue: 'canary-rollouts',
    shutdownGraceTimeMs: 30_000,
  });
});

test('mTLS reads the certificate files into the connection options', () => {
  const config = loadWorkerConfig({
    TEMPORAL_ADDRESS: 'temporal.example.com:7233',
    TEMPORAL_TLS_CERT: cert,
    TEMPORAL_TLS_KEY: key,
    TEMPORAL_TLS_CA: ca,
    TEMPORAL_TLS_SERVER_NAME: 'temporal.internal',
    WORKER_SHUTDOWN_GRACE_TIME: '1m30s',
  });
  expect(config.tls).toEqual({ certPath: cert, keyPath: key, caPath: ca, serverName: 'temporal.internal' });
  expect(config.shutdownGraceTimeMs).toBe(90_000);
  expect(describeConfig(config)).toContain('security=mtls');
  const options = connectionOptions(config);
  expect(options.tls).toEqual({
    serverNameOverride: 'temporal.internal',
    serverRootCACertificate: Buffer.from('CA'),
    clientCertPair: { crt: Buffer.from('CERT'), key: Buffer.from('KEY') },
  });
});

test('an API key implies TLS and never shows in the description', () => {
  const config = loadWorkerConfig({
    TEMPORAL_API_KEY: 'secret-key',
    TEMPORAL_ADDRESS: 'ns.acct.tmprl.cloud:7233',
  });
  expect(config.tls).toEqual({});
  expect(connectionOptions(config)).toMatchObject({ apiKey: 'secret-key', tls: {} });
  expect(describeConfig(config)).toContain('security=tls+api-key');
  expect(describeConfig(config)).not.toContain('secret-key');
});

test('every problem is reported at once, each naming its variable and the fix', () => {
  expect(
    problemsOf({
      TEMPORAL_ADDRESS: 'http://localhost:7233',
      TEMPORAL_TLS: 'maybe',
      TEMPORAL_TLS_CERT: cert,
      TEMPORAL_TLS_CA: path.join(dir, 'missing.pem'),
      WORKER_SHUTDOWN_GRACE_TIME: '30',
    }),
  ).toEqual([
    'TEMPORAL_ADDRESS: "http://localhost:7233" has a URL scheme, which gRPC addresses do not take; set it to host:port, e.g. localhost:7233 or my-ns.a1b2c.tmprl.cloud:7233',
    'TEMPORAL_TLS: "maybe" is not a boolean; set it to true or false',
    'TEMPORAL_TLS_KEY: is not set but TEMPORAL_TLS_CERT is; mTLS needs both the client certificate and its private key (or neither)',
    `TEMPORAL_TLS_CA: ${path.join(dir, 'missing.pem')}: no such file; point it at a readable PEM file`,
    expect.stringMatching(/^WORKER_SHUTDOWN_GRACE_TIME: invalid duration "30": missing unit/),
  ]);
});

test('TLS turned off explicitly conflicts with an API key and TLS files', () => {
  expect(problemsOf({ TEMPORAL_TLS: 'false', TEMPORAL_API_KEY: 'k', TEMPORAL_TLS_CA: ca })).toEqual([
    'TEMPORAL_TLS: is false but TEMPORAL_API_KEY is set, and API keys are only sent over TLS; unset TEMPORAL_TLS or set it to true',
    'TEMPORAL_TLS_CA: is set but TEMPORAL_TLS is false; unset it, or set TEMPORAL_TLS=true',
  ]);
});
