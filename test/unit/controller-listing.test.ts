// The controller's status polling at scale: one list of running rollouts per poll spares the describe of every
// object whose rollout did not move. Only a hint: a rollout the list does not show running and unmoved (another
// fingerprint, another run, absent, or a list too old or failing) is described as before. Temporal and the API
// server are stand-ins here (counting calls); the real path runs in test/integration/kube-controller.test.ts.
import type { CoreV1Api, CustomObjectsApi } from '@kubernetes/client-node';
import type { RolloutClient } from '../../client/rollout-client';
import { FINALIZER, type CanaryRollout } from '../../controller/crd';
import { Reconciler } from '../../controller/reconciler';
import type { RolloutStatus } from '../../workflows/types';

const WF = 'canary.shop.checkout';
const attrs = (phase: string, stage: number, weight: number, version = 'v2') => {
  const values: Record<string, unknown> = {
    CanaryPhase: phase,
    CanaryStage: stage,
    CanaryWeight: weight,
    CanaryVersion: version,
  };
  return { get: (key: { name: string }) => values[key.name] };
};

interface World {
  /** What describe and list answer. */
  live: { phase: string; stage: number; weight: number; running: boolean; runId: string };
  listed: Array<{
    workflowId: string;
    runId: string;
    firstRunId: string;
    phase: string;
    stage: number;
    weight: number;
  }>;
  listFails: boolean;
  calls: { describe: number; list: number; status: number; patch: number };
  logs: string[];
}

function setup(): { world: World; reconciler: Reconciler; object: () => CanaryRollout } {
  const world: World = {
    live: { phase: 'progressing', stage: 1, weight: 10, running: true, runId: 'run-1' },
    listed: [],
    listFails: false,
    calls: { describe: 0, list: 0, status: 0, patch: 0 },
    logs: [],
  };
  const rollouts = {
    client: {
      workflow: {
        getHandle: () => ({
          describe: async () => {
            world.calls.describe++;
            const { phase, stage, weight, running, runId } = world.live;
            return {
              runId,
              status: { name: running ? 'RUNNING' : 'COMPLETED' },
              startTime: new Date(),
              raw: { workflowExecutionInfo: { firstRunId: runId } },
              typedSearchAttributes: attrs(phase, stage, weight),
            };
          },
        }),
        list: ({ query }: { query: string }) => {
          world.calls.list++;
          expect(query).toBe(`WorkflowType = 'canaryRollout' AND ExecutionStatus = 'Running'`);
          if (world.listFails) throw new Error('visibility unavailable');
          return (async function* () {
            for (const l of world.listed) {
              yield {
                workflowId: l.workflowId,
                runId: l.runId,
                raw: { firstRunId: l.firstRunId },
                typedSearchAttributes: attrs(l.phase, l.stage, l.weight),
              };
            }
          })();
        },
      },
    },
    status: async (): Promise<Partial<RolloutStatus>> => {
      world.calls.status++;
      const { phase, stage, weight } = world.live;
      return {
        workflowId: WF,
        version: 'v2',
        phase: phase as RolloutStatus['phase'],
        stage,
        stageCount: 2,
        weight,
      };
    },
  } as unknown as RolloutClient;
  let stored: CanaryRollout['status'] = {
    workflowId: WF,
    runId: 'run-1',
    version: 'v2',
    phase: 'progressing',
    stage: 0,
    weight: 0,
  };
  const custom = {
    patchNamespacedCustomObjectStatus: async ({ body }: { body: { status: Record<string, unknown> } }) => {
      world.calls.patch++;
      stored = { ...stored, ...body.status } as CanaryRollout['status'];
      return { ...object(), status: stored };
    },
  } as unknown as CustomObjectsApi;
  const core = { createNamespacedEvent: async () => ({}) } as unknown as CoreV1Api;
  const object = (): CanaryRollout => ({
    apiVersion: 'canary.temporal.io/v1alpha1',
    kind: 'CanaryRollout',
    metadata: { name: 'checkout', namespace: 'shop', uid: 'u1', generation: 1, finalizers: [FINALIZER] },
    spec: { target: {}, plan: { preset: 'quick' }, version: 'v2' } as CanaryRollout['spec'],
    status: structuredClone(stored),
  });
  const reconciler = new Reconciler({
    rollouts,
    custom,
    core,
    identity: 'test',
    log: (line) => world.logs.push(line),
  });
  return { world, reconciler, object };
}

const listedAs = (world: World, over: Partial<World['listed'][number]> = {}) => {
  const { phase, stage, weight, runId } = world.live;
  world.listed = [{ workflowId: WF, runId, firstRunId: runId, phase, stage, weight, ...over }];
};

test('a rollout listed as running and unmoved is not described; one that moved is described and mirrored', async () => {
  const { world, reconciler, object } = setup();
  // The first look reads the full status (nothing read yet) and mirrors stage 1.
  await reconciler.reconcile(object());
  expect(object().status).toMatchObject({ phase: 'progressing', stage: 1, weight: 10 });
  expect(world.calls).toMatchObject({ describe: 1, status: 1 });

  listedAs(world);
  await reconciler.listRunning(60_000);
  for (let i = 0; i < 5; i++) await reconciler.reconcile(object());
  expect(world.calls).toMatchObject({ list: 1, describe: 1, status: 1 });

  // It moves: the next list shows it, the look describes, reads the status and mirrors it.
  world.live = { ...world.live, stage: 2, weight: 50 };
  listedAs(world);
  await reconciler.listRunning(60_000);
  await reconciler.reconcile(object());
  expect(world.calls).toMatchObject({ describe: 2, status: 2 });
  expect(object().status).toMatchObject({ stage: 2, weight: 50 });
});

test('a list that lags behind a status already mirrored costs a describe, never a wrong status', async () => {
  const { world, reconciler, object } = setup();
  await reconciler.reconcile(object());
  listedAs(world, { stage: 0, weight: 0 }); // visibility still shows the stage before
  await reconciler.listRunning(60_000);
  await reconciler.reconcile(object());
  expect(world.calls).toMatchObject({ describe: 2, status: 1 });
  expect(object().status).toMatchObject({ stage: 1, weight: 10 });
});

test('not listed (ended), another run, a list too old or failing: described as before', async () => {
  const { world, reconciler, object } = setup();
  await reconciler.reconcile(object());
  const looks = async () => {
    const before = world.calls.describe;
    await reconciler.reconcile(object());
    return world.calls.describe - before;
  };

  world.listed = [];
  await reconciler.listRunning(60_000);
  expect(await looks()).toBe(1);

  listedAs(world, { firstRunId: 'run-0' });
  await reconciler.listRunning(60_000);
  expect(await looks()).toBe(1);

  listedAs(world);
  await reconciler.listRunning(0);
  await new Promise((r) => setTimeout(r, 5));
  expect(await looks()).toBe(1);

  world.listFails = true;
  await reconciler.listRunning(60_000);
  await reconciler.listRunning(60_000);
  expect(await looks()).toBe(1);
  expect(world.logs.filter((l) => l.includes('cannot list running rollouts'))).toHaveLength(1);
  world.listFails = false;
  await reconciler.listRunning(60_000);
  expect(await looks()).toBe(0);
  expect(world.logs).toContain('listing running rollouts works again');
});
