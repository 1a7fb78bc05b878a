// The test harness itself: the real dev server (with the rollout's search attributes and the Web UI) and the
// time-skipping test server. A missing binary fails here with how to get it; nothing is skipped.
import { Connection } from '@temporalio/client';
import { SEARCH_ATTRIBUTES } from '../../workflows/api';
import { startDevServer, type DevServer } from '../../demo/dev-server';
import { createTimeSkippingEnv } from '../../harness/time-skipping';

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('dev server', () => {
  let server: DevServer | undefined;

  afterEach(async () => {
    await server?.stop();
    server = undefined;
  });

  test('registers the rollout search attributes, serves the Web UI, and stops by pid', async () => {
    server = await startDevServer({ ui: true });
    expect(server.address).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(isRunning(server.pid)).toBe(true);

    const connection = await Connection.connect({ address: server.address });
    try {
      const { customAttributes } = await connection.operatorService.listSearchAttributes({
        namespace: server.namespace,
      });
      const registered = Object.keys(customAttributes ?? {});
      for (const [name] of SEARCH_ATTRIBUTES) expect(registered).toContain(name);
      // Keyword = 2, Int = 3 (temporal.api.enums.v1.IndexedValueType).
      const expectedTypes = Object.fromEntries(
        SEARCH_ATTRIBUTES.map(([name, type]) => [name, type === 'Keyword' ? 2 : 3]),
      );
      for (const [name, type] of Object.entries(expectedTypes)) expect(customAttributes?.[name]).toBe(type);
    } finally {
      await connection.close();
    }

    expect(server.uiUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const res = await fetch(server.uiUrl!, { signal: AbortSignal.timeout(10_000) });
    expect(res.status).toBe(200);
    expect(await res.text()).toMatch(/<html/i);

    const { pid } = server;
    await server.stop();
    server = undefined;
    expect(isRunning(pid)).toBe(false);
  });
});

describe('time-skipping test server', () => {
  test('starts and skips a day in far less time', async () => {
    const env = await createTimeSkippingEnv();
    try {
      expect(env.supportsTimeSkipping).toBe(true);
      const before = await env.currentTimeMs();
      const startedAt = Date.now();
      await env.sleep('1 day');
      expect(Date.now() - startedAt).toBeLessThan(10_000);
      expect((await env.currentTimeMs()) - before).toBeGreaterThanOrEqual(24 * 60 * 60 * 1000);
    } finally {
      await env.teardown();
    }
  });
});
