// A shadow stage the workflow refuses by itself, on the time-skipping server against the local stack: started
// directly (not through the CLI, which refuses it first) with a target whose router cannot mirror, the workflow fails
// with InvalidPlan before anything is touched; a target that leaves the router to the worker (here the local proxy,
// which cannot mirror) is refused by the preflight: not started, the plan's fault (exit 2 for `canary start`).
import { ApplicationFailure, WorkflowFailedError } from '@temporalio/client';
import { rolloutResult } from '../../client/index';
import { RolloutBench } from '../../harness/rollout-env';
import type { PlanSpec } from '../../workflows/plan';

jest.setTimeout(300_000);

let bench: RolloutBench;

beforeAll(async () => {
  bench = await RolloutBench.start();
}, 180_000);

afterAll(async () => {
  await bench?.close();
});
beforeEach(async () => bench.reset());

const shadow = {
  analysis: { interval: '1m', checks: [{ name: 'errors', metric: 'error-rate', max: 5 }] },
  stages: [{ weight: 0, mirror: 20, hold: '10m' }, { weight: 10, hold: '10m' }, { weight: 100 }],
  promotion: { cleanupDelay: '0s' },
} as unknown as PlanSpec;

test('a router that cannot mirror: the workflow fails with InvalidPlan, nothing touched', async () => {
  const h = await bench.startRollout('shop', 'v2', shadow, undefined, { traffic: { nginx: {} } });
  const err = await h.result().catch((e: unknown) => e);
  expect(err).toBeInstanceOf(WorkflowFailedError);
  const cause = (err as WorkflowFailedError).cause as ApplicationFailure;
  expect(cause.type).toBe('InvalidPlan');
  expect(cause.message).toContain('stages[0].mirror: the nginx router cannot mirror traffic; only istio');
  expect(await bench.live()).toMatchObject({ weight: 0, canary: null });
});

test("the worker's default router cannot mirror: the preflight refuses it, not started, the input's fault", async () => {
  const h = await bench.startRollout('shop', 'v2', shadow);
  const result = await rolloutResult(h);
  expect(result).toMatchObject({ outcome: 'not_started', cause: 'input' });
  expect(result.findings).toContainEqual(
    expect.objectContaining({
      level: 'refuse',
      cause: 'input',
      path: 'stages[0].mirror',
      message: expect.stringContaining(
        'the local router cannot mirror traffic; only istio (VirtualService mirror)',
      ),
    }),
  );
  expect(await bench.live()).toMatchObject({ weight: 0, canary: null });
});
