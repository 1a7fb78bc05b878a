// Worker/CLI connection settings: defaults, TLS, mTLS and API-key combinations, every problem reported at once.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  ConfigError,
  describeConfig,
  describeVersioning,
  loadWorkerConfig,
  loadWorkerProcessConfig,
} from '../../worker/config';
import { connectionOptions } from '../../connection/temporal';
import { deploymentOptions, routingNotice } from '../../worker/versioning';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'canary-config-'));
const cert = path.join(dir, 'client.pem');
const key = path.join(dir, 'client.key');
const ca = path.join(dir, 'ca.pem');
// Real PEM files: the worker parses them at start.
execFileSync(
  'openssl',
  [
    ...['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'],
    ...['-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=canary-test'],
  ],
  { stdio: 'ignore' },
);
fs.copyFileSync(cert, ca);

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
    serverRootCACertificate: fs.readFileSync(ca),
    clientCertPair: { crt: fs.readFileSync(cert), key: fs.readFileSync(key) },
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

test('a certificate or key file that is not PEM is refused at start, naming the variable', () => {
  const der = path.join(dir, 'ca.der');
  execFileSync('openssl', ['x509', '-in', cert, '-outform', 'DER', '-out', der]);
  expect(
    problemsOf({ TEMPORAL_TLS_CA: der, TEMPORAL_TLS_CERT: key, TEMPORAL_TLS_KEY: cert }).map((p) =>
      p.replace(dir, 'DIR'),
    ),
  ).toEqual([
    'TEMPORAL_TLS_CERT: DIR/client.key: is not a PEM certificate (no "-----BEGIN CERTIFICATE-----" block); point it at a readable PEM file',
    'TEMPORAL_TLS_KEY: DIR/client.pem: is not a PEM private key (no "-----BEGIN ... PRIVATE KEY-----" block); point it at a readable PEM file',
    'TEMPORAL_TLS_CA: DIR/ca.der: is not a PEM certificate (no "-----BEGIN CERTIFICATE-----" block); point it at a readable PEM file',
  ]);
  const broken = path.join(dir, 'broken.pem');
  fs.writeFileSync(broken, '-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n');
  expect(problemsOf({ TEMPORAL_TLS_CA: broken })[0]).toMatch(
    /^TEMPORAL_TLS_CA: .*broken\.pem: is not a valid PEM certificate: /,
  );
});

test('TLS turned off explicitly conflicts with an API key and TLS files', () => {
  expect(problemsOf({ TEMPORAL_TLS: 'false', TEMPORAL_API_KEY: 'k', TEMPORAL_TLS_CA: ca })).toEqual([
    'TEMPORAL_TLS: is false but TEMPORAL_API_KEY is set, and API keys are only sent over TLS; unset TEMPORAL_TLS or set it to true',
    'TEMPORAL_TLS_CA: is set but TEMPORAL_TLS is false; unset it, or set TEMPORAL_TLS=true',
  ]);
});

describe('Worker Versioning (TEMPORAL_DEPLOYMENT_NAME, TEMPORAL_WORKER_BUILD_ID)', () => {
  const processProblems = (env: NodeJS.ProcessEnv): string[] => {
    try {
      loadWorkerProcessConfig(env);
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      return (err as ConfigError).problems.map((p) => `${p.variable}: ${p.problem}`);
    }
    throw new Error('expected a ConfigError');
  };

  test('off by default: the worker runs unversioned, and the connection settings are as before', () => {
    expect(loadWorkerProcessConfig({})).toEqual(loadWorkerConfig({}));
    expect(describeVersioning(undefined)).toBe('unversioned');
  });

  test('both set: rollouts pinned to this build', () => {
    const config = loadWorkerProcessConfig({
      TEMPORAL_DEPLOYMENT_NAME: 'canary-worker',
      TEMPORAL_WORKER_BUILD_ID: ' 3f9c2e1 ',
    });
    expect(config.versioning).toEqual({ deploymentName: 'canary-worker', buildId: '3f9c2e1' });
    expect(describeVersioning(config.versioning)).toBe(
      'deployment=canary-worker build=3f9c2e1 (rollouts pinned)',
    );
    expect(deploymentOptions(config.versioning!)).toEqual({
      useWorkerVersioning: true,
      version: { deploymentName: 'canary-worker', buildId: '3f9c2e1' },
      defaultVersioningBehavior: 'PINNED',
    });
  });

  test('the CLI ignores them: loadWorkerConfig has no versioning', () => {
    expect(loadWorkerConfig({ TEMPORAL_WORKER_BUILD_ID: 'x' })).not.toHaveProperty('versioning');
  });

  test('one without the other, or a name the server refuses, is a configuration error with the rest', () => {
    expect(processProblems({ TEMPORAL_WORKER_BUILD_ID: '1.4.2', TEMPORAL_TLS: 'maybe' })).toEqual([
      'TEMPORAL_TLS: "maybe" is not a boolean; set it to true or false',
      'TEMPORAL_DEPLOYMENT_NAME: is not set but TEMPORAL_WORKER_BUILD_ID is; Worker Versioning needs both the deployment name and the build id (or neither)',
    ]);
    expect(processProblems({ TEMPORAL_DEPLOYMENT_NAME: 'canary' })).toEqual([
      'TEMPORAL_WORKER_BUILD_ID: is not set but TEMPORAL_DEPLOYMENT_NAME is; Worker Versioning needs both the deployment name and the build id (or neither)',
    ]);
    expect(
      processProblems({ TEMPORAL_DEPLOYMENT_NAME: 'canary.prod', TEMPORAL_WORKER_BUILD_ID: 'v 2' }),
    ).toEqual([
      'TEMPORAL_DEPLOYMENT_NAME: "canary.prod" contains ".", which Temporal does not take in a deployment name; use letters, digits, - and _',
      'TEMPORAL_WORKER_BUILD_ID: "v 2" contains whitespace; use the image tag or commit, e.g. 1.4.2 or 3f9c2e1',
    ]);
    expect(processProblems({ TEMPORAL_DEPLOYMENT_NAME: 'a:b', TEMPORAL_WORKER_BUILD_ID: '1' })[0]).toContain(
      'contains ":"',
    );
  });

  test('the start line says when this build does not take new rollouts, and the command that makes it', () => {
    const v = { deploymentName: 'canary-worker', buildId: 'B' };
    const cmd = 'temporal worker deployment set-current-version --deployment-name canary-worker --build-id B';
    expect(routingNotice({ kind: 'current' }, v)).toBeUndefined();
    expect(routingNotice({ kind: 'other', current: 'A' }, v)).toEqual({
      warning: false,
      message: `build B is not current in deployment canary-worker: new rollouts go to build A, this worker runs the rollouts pinned to B; to send new rollouts here: ${cmd}`,
    });
    expect(routingNotice({ kind: 'none' }, v)).toEqual({
      warning: true,
      message: `deployment canary-worker has no current version: new rollouts wait (or go to unversioned workers of the task queue) until one is set; for this build: ${cmd}`,
    });
    expect(routingNotice({ kind: 'ramping', percentage: 10, current: 'A' }, v)?.message).toContain(
      '(10% of new rollouts)',
    );
  });
});
