// The worker entry point refuses bad configuration (exit 2) and an unreachable Temporal (exit 3) with messages
// that say what to fix, before it polls anything.
import { spawn } from 'node:child_process';
import { WORKER_MAIN, requireBuilt } from '../../harness/processes';
import { freePort, startDevServer, type DevServer } from '../../demo/dev-server';
import { runCli } from '../../harness/processes';

function runWorker(env: Record<string, string>): Promise<{ code: number | null; stderr: string }> {
  requireBuilt(WORKER_MAIN);
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [WORKER_MAIN], {
      env: { ...process.env, CANARY_PROVIDERS: 'local', ...env },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    child.on('exit', (code) => resolve({ code, stderr }));
  });
}

test('bad configuration: exit 2, every problem named', async () => {
  const r = await runWorker({ TEMPORAL_TLS_CERT: '/nowhere/client.pem', CANARY_ROUTER: 'local' });
  expect(r.code).toBe(2);
  expect(r.stderr).toContain('TEMPORAL_TLS_CERT: /nowhere/client.pem: no such file');
  expect(r.stderr).toContain('TEMPORAL_TLS_KEY: is not set but TEMPORAL_TLS_CERT is');
});

test('a sweep interval below 10s or not a duration: exit 2, naming CANARY_SWEEP_EVERY', async () => {
  const short = await runWorker({ CANARY_ROUTER: 'local', CANARY_SWEEP_EVERY: '1s' });
  expect(short.code).toBe(2);
  expect(short.stderr).toContain('CANARY_SWEEP_EVERY: is 1s, below the minimum of 10s');
  const bad = await runWorker({ CANARY_ROUTER: 'local', CANARY_SWEEP_EVERY: 'often' });
  expect(bad.code).toBe(2);
  expect(bad.stderr).toContain('CANARY_SWEEP_EVERY:');
  expect(bad.stderr).toContain('give a duration such as 5m, or off');
});

test('an unknown provider: exit 2, naming the variable and the known providers', async () => {
  const r = await runWorker({ CANARY_ROUTER: 'linkerd' });
  expect(r.code).toBe(2);
  expect(r.stderr).toContain('unknown traffic router "linkerd" (CANARY_ROUTER)');
});

test('Temporal unreachable: exit 3, naming the address', async () => {
  const address = `127.0.0.1:${await freePort()}`;
  const r = await runWorker({ TEMPORAL_ADDRESS: address });
  expect(r.code).toBe(3);
  expect(r.stderr).toContain(`cannot reach Temporal at ${address}`);
}, 60_000);

describe('a security mode the server does not speak: exit 2, naming the setting', () => {
  let server: DevServer;
  beforeAll(async () => {
    server = await startDevServer();
  }, 60_000);
  afterAll(async () => {
    await server?.stop();
  });

  test('an API key (so TLS) against a plaintext dev server: the worker and the CLI say so', async () => {
    const r = await runWorker({ TEMPORAL_ADDRESS: server.address, TEMPORAL_API_KEY: 'k-123' });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(
      `cannot connect to Temporal at ${server.address}: TLS is on (TEMPORAL_API_KEY implies it) but the server answers in plaintext`,
    );
    expect(r.stderr).not.toContain('k-123');
    const cli = await runCli(['list'], { TEMPORAL_ADDRESS: server.address, TEMPORAL_TLS: 'true' });
    expect(cli.code).toBe(2);
    expect(cli.stderr).toContain(
      'TLS is on (TEMPORAL_TLS or a TEMPORAL_TLS_* setting) but the server answers in plaintext',
    );
  }, 60_000);

  test('a CANARY_* URL that is not a URL stops the worker naming it', async () => {
    const r = await runWorker({
      TEMPORAL_ADDRESS: server.address,
      CANARY_LOCAL_CONTROL_URL: 'localhost:7001',
    });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(
      'CANARY_LOCAL_CONTROL_URL="localhost:7001" must be an http or https URL, not localhost:',
    );
  }, 60_000);
});
