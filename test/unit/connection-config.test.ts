// The connection settings the CLI and the worker share, and what only the worker adds to them.
import { ConfigError, loadConnectionConfig } from '../../connection/config';
import { loadWorkerConfig } from '../../worker/config';

function problems(load: () => unknown): string[] {
  try {
    load();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).problems.map((p) => p.variable);
  }
  return [];
}

test('the connection settings alone: TEMPORAL_* only', () => {
  expect(loadConnectionConfig({ TEMPORAL_ADDRESS: 'temporal:7233', TEMPORAL_API_KEY: 'k' })).toEqual({
    address: 'temporal:7233',
    namespace: 'default',
    taskQueue: 'canary-rollouts',
    tls: {},
    apiKey: 'k',
  });
  // A worker-only setting is none of the CLI's business.
  expect(problems(() => loadConnectionConfig({ WORKER_SHUTDOWN_GRACE_TIME: '30' }))).toEqual([]);
});

test("the worker's configuration is the connection's plus its own, every problem in one error", () => {
  const env = { TEMPORAL_ADDRESS: 'http://x:7233', WORKER_SHUTDOWN_GRACE_TIME: '30' };
  expect(problems(() => loadWorkerConfig(env))).toEqual(['TEMPORAL_ADDRESS', 'WORKER_SHUTDOWN_GRACE_TIME']);
  expect(problems(() => loadConnectionConfig(env))).toEqual(['TEMPORAL_ADDRESS']);
  expect(loadWorkerConfig({ WORKER_SHUTDOWN_GRACE_TIME: '1m' })).toEqual({
    ...loadConnectionConfig({}),
    shutdownGraceTimeMs: 60_000,
  });
});
