// The workflow's side of per-rollout targets, on the time-skipping server against the real local stack: an
// invalid target, drift, a forward step that is forbidden, a rollback step that keeps failing, a missed
// progress deadline, and a router that cannot meet a weight exactly. Failures come from wrappers around the
// real local providers; everything else is real.
import { rolloutResult } from '../../client/index';
import { WorkflowFailedError } from '@temporalio/client';
import { fixedProviders, type ProviderRegistry } from '../../activities/factory';
import { ProviderError, type TrafficRouter, type WorkloadManager } from '../../activities/types';
import { resumeSignal, statusQuery, abortSignal } from '../../workflows/api';
import type { PlanSpec } from '../../workflows/plan';
import type { RolloutStatus } from '../../workflows/types';
import { HOUR, MINUTE, RolloutBench } from '../../harness/rollout-env';

/** What the test switches on and off in the wrapped providers. */
const faults = {
  /** Forward weights above 0 are refused as forbidden. */
  forbidForward: false,
  /** Every setWeight(0) fails (a rollback that cannot send traffic back yet). */
  blockRollback: false,
  /** ensureCanary misses its progress deadline. */
  missDeadline: false,
  /** The router can only do multiples of 25 %, like 4 replicas. */
  quarters: false,
};
const calls = { forwardSetWeight: 0, rollbackSetWeight: 0 };

function wrap(real: ProviderRegistry) {
  const target = { app: 'shop', namespace: 'test' };
  const router = real.router(target);
  const workloads = real.workloads(target);
  const wrappedRouter: TrafficRouter = {
    type: 'local',
    setup: (v) => router.setup(v),
    teardown: () => router.teardown(),
    getWeight: () => router.getWeight(),
    async setWeight(weight) {
      if (weight === 0) {
        calls.rollbackSetWeight++;
        if (faults.blockRollback) throw new ProviderError('forbidden', 'the worker may not patch ingresses');
      } else {
        calls.forwardSetWeight++;
        if (faults.forbidForward) {
          throw new ProviderError(
            'forbidden',
            `the worker's Kubernetes account may not patch virtualservices.networking.istio.io in namespace "test"`,
          );
        }
      }
      if (faults.quarters && weight > 0 && weight < 100) {
        const achieved = Math.max(25, Math.round(weight / 25) * 25);
        const change = await router.setWeight(achieved);
        return { ...change, achieved, note: `${weight}% requested; 4 replicas give ${achieved}%` };
      }
      return router.setWeight(weight);
    },
    async verifyWeight(weight) {
      const want =
        faults.quarters && weight > 0 && weight < 100 ? Math.max(25, Math.round(weight / 25) * 25) : weight;
      return router.verifyWeight(want);
    },
  };
  const wrappedWorkloads: WorkloadManager = {
    type: 'local',
    async ensureCanary(version, image) {
      if (faults.missDeadline) {
        throw new ProviderError(
          'deadline',
          'canary Deployment shop-canary did not become available within 10m (0 of 2 replicas available)',
        );
      }
      return workloads.ensureCanary(version, image);
    },
    promoteStable: (v, i) => workloads.promoteStable(v, i),
    scaleDownCanary: () => workloads.scaleDownCanary(),
    cleanupCanary: () => workloads.cleanupCanary(),
  };
  return fixedProviders({
    router: wrappedRouter,
    workloads: wrappedWorkloads,
    metrics: real.metrics(target),
    alerts: real.alerts,
  });
}

let bench: RolloutBench;
beforeAll(async () => {
  bench = await RolloutBench.start({ providers: wrap });
}, 180_000);
afterAll(async () => bench?.close());
beforeEach(async () => {
  Object.assign(faults, { forbidForward: false, blockRollback: false, missDeadline: false, quarters: false });
  Object.assign(calls, { forwardSetWeight: 0, rollbackSetWeight: 0 });
  await bench.reset();
});

const plan: PlanSpec = {
  analysis: { interval: '10m', checks: [{ name: 'error-rate', metric: 'error-rate', max: 5 }] },
  stages: [{ weight: 10, hold: '1h' }, { weight: 50, hold: '1h' }, { weight: 100 }],
  promotion: { cleanupDelay: '0s' },
};

const statusOf = (h: { query: (q: typeof statusQuery) => Promise<RolloutStatus> }) => h.query(statusQuery);

test('an invalid target fails the workflow before anything is touched', async () => {
  const h = await bench.startRollout('bad-target', 'v2', plan, undefined, {
    traffic: { linkerd: {} },
    workload: { kind: 'Deployment', progressDeadline: 'soon' },
  });
  const err = await rolloutResult(h).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(WorkflowFailedError);
  expect(String((err as WorkflowFailedError).cause?.message)).toBe(
    [
      'target is invalid (2 problems):',
      '  - target.traffic.linkerd: unknown router "linkerd"; use istio, nginx, gatewayAPI, smi, replicas, local',
      '  - target.workload.progressDeadline: invalid duration "soon": expected a number followed by a unit; use 90s, 15m, 1h30m or ISO-8601 like PT1H30M',
    ].join('\n'),
  );
  expect(await bench.live()).toMatchObject({ weight: 0, canary: null });
});

test('drift: a weight changed behind the rollout pauses it and alerts; resume restores the planned weight', async () => {
  const h = await bench.startRollout('drift', 'v2', plan);
  await bench.env.sleep(5 * MINUTE);
  expect((await bench.live()).weight).toBe(10);
  // An operator moves the weight by hand.
  await fetch(`${bench.stack.controlUrl}/weight`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ weight: 40 }),
  });
  await bench.env.sleep(10 * MINUTE);
  let st = await statusOf(h);
  expect(st).toMatchObject({
    phase: 'paused',
    pausedBy: 'drift detection',
    pauseReason: 'the canary weight is 40%, not the 10% this rollout set',
    drift: { expected: 10, found: 40 },
    weight: 10,
  });
  // The rollout does not fight the operator while paused.
  await bench.env.sleep(2 * HOUR);
  expect((await bench.live()).weight).toBe(40);
  expect((await statusOf(h)).stage).toBe(1);
  const drift = bench.alerts(h.workflowId).filter((a) => a.event === 'drift_detected');
  expect(drift).toHaveLength(1);
  expect(drift[0].message).toContain(`canary resume ${h.workflowId}`);

  await h.signal(resumeSignal, { identity: 'erin' });
  await bench.env.sleep(MINUTE);
  st = await statusOf(h);
  expect(st.drift).toBeUndefined();
  expect(st.phase).toBe('progressing');
  expect((await bench.live()).weight).toBe(10);
  expect(await rolloutResult(h)).toMatchObject({ outcome: 'promoted' });
}, 300_000);

test('a forbidden forward step fails fast and rolls back, naming what the worker lacks', async () => {
  faults.forbidForward = true;
  const h = await bench.startRollout('forbidden', 'v2', plan);
  const result = await rolloutResult(h);
  expect(result.outcome).toBe('rolled_back');
  expect(result.reason).toContain(`may not patch virtualservices.networking.istio.io in namespace "test"`);
  // Non-retryable: one attempt, not the ten a transient failure gets.
  expect(calls.forwardSetWeight).toBe(1);
  expect(await bench.live()).toMatchObject({ weight: 0, canary: null });
});

test('a rollback step that keeps failing keeps retrying and says why in status', async () => {
  const h = await bench.startRollout('stuck-rollback', 'v2', plan);
  await bench.env.sleep(5 * MINUTE);
  faults.blockRollback = true;
  await h.signal(abortSignal, { identity: 'bob', reason: 'bad numbers' });
  await bench.env.sleep(2 * MINUTE);
  const st = await statusOf(h);
  expect(st.phase).toBe('rolling_back');
  expect(st.retrying).toMatchObject({
    step: 'send traffic back to stable',
    error: expect.stringContaining('the worker may not patch ingresses'),
  });
  expect(st.retrying!.attempts).toBeGreaterThanOrEqual(1);
  // A forbidden verb does not stop a rollback: it goes on trying until someone fixes the permission.
  const before = calls.rollbackSetWeight;
  await bench.env.sleep(5 * MINUTE);
  expect(calls.rollbackSetWeight).toBeGreaterThan(before);
  expect((await statusOf(h)).phase).toBe('rolling_back');

  faults.blockRollback = false;
  const result = await rolloutResult(h);
  expect(result).toMatchObject({
    outcome: 'rolled_back',
    reason: 'aborted by bob: bad numbers',
    finalWeight: 0,
  });
  expect((await statusOf(h)).retrying).toBeUndefined();
  expect(await bench.live()).toMatchObject({ weight: 0, canary: null });
}, 300_000);

test('a canary that misses its progress deadline rolls back with the reason', async () => {
  faults.missDeadline = true;
  const h = await bench.startRollout('deadline', 'v2', plan);
  const result = await rolloutResult(h);
  expect(result.outcome).toBe('rolled_back');
  expect(result.reason).toContain('did not become available within 10m');
  expect(calls.forwardSetWeight).toBe(0);
});

test('a router that cannot meet a weight exactly: status shows what it achieved, and that is no drift', async () => {
  faults.quarters = true;
  const h = await bench.startRollout('quarters', 'v2', plan);
  await bench.env.sleep(30 * MINUTE);
  const st = await statusOf(h);
  expect(st).toMatchObject({
    phase: 'progressing',
    weight: 10,
    achievedWeight: 25,
    routingNote: '10% requested; 4 replicas give 25%',
  });
  expect(st.drift).toBeUndefined();
  expect((await bench.live()).weight).toBe(25);
  expect(await rolloutResult(h)).toMatchObject({ outcome: 'promoted' });
  expect(bench.alerts(h.workflowId).some((a) => a.event === 'drift_detected')).toBe(false);
}, 300_000);
