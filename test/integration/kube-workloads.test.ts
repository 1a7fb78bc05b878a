// The Deployment workload manager against a real API server. There is no controller or kubelet: the simulator in
// harness/kube-controller.ts writes the status a finished rollout would have, after ~1 s (or never).
import { AppsV1Api, type V1Deployment } from '@kubernetes/client-node';
import { MERGE_PATCH, kubeClients, type KubeClients } from '../../activities/kube/client';
import { ProviderError } from '../../activities/types';
import { heartbeat } from '../../activities/heartbeat';
import { CancelledFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import {
  DeploymentWorkloadManager,
  ROLE_LABEL,
  STABLE_REPLICAS_ANNOTATION,
  imageTag,
  imageWithTag,
  type DeploymentWorkloadOptions,
} from '../../activities/workloads/deployment';
import { validateTarget, type Target } from '../../workflows/target';
import { startKubeServer, type KubeServer } from '../../harness/kube';
import { startDeploymentSimulator, type DeploymentSimulatorOptions } from '../../harness/kube-controller';

jest.setTimeout(120_000);

let kube: KubeServer;
let admin: KubeClients;
let apps: AppsV1Api;
let namespaceCount = 0;
const simulators: Array<{ stop(): Promise<void> }> = [];

beforeAll(async () => {
  kube = await startKubeServer({ crds: 'none' });
  admin = kubeClients(kube.kubeConfig('admin'));
  apps = admin.apps;
});

afterEach(async () => {
  await Promise.all(simulators.splice(0).map((s) => s.stop()));
});

afterAll(async () => {
  await kube?.stop();
});

async function namespace(): Promise<string> {
  return kube.createNamespace(`wl-${++namespaceCount}`);
}

function simulate(ns: string, opts: DeploymentSimulatorOptions = {}): void {
  simulators.push(startDeploymentSimulator(kube.kubeConfig('admin'), ns, opts));
}

interface StableOptions {
  replicas?: number;
  image?: string;
  version?: string | null;
  selectorVersion?: boolean;
  progressDeadlineSeconds?: number;
  containers?: Array<{ name: string; image: string }>;
}

function stableDeployment(name: string, o: StableOptions = {}): V1Deployment {
  const version = o.version === undefined ? '1.0' : o.version;
  const podLabels: Record<string, string> = { app: name, ...(version ? { version } : {}) };
  const matchLabels: Record<string, string> = {
    app: name,
    ...(o.selectorVersion && version ? { version } : {}),
  };
  return {
    metadata: {
      name,
      labels: { app: name, team: 'payments' },
      annotations: { 'example.com/owner': 'payments', 'deployment.kubernetes.io/revision': '7' },
    },
    spec: {
      replicas: o.replicas ?? 3,
      ...(o.progressDeadlineSeconds ? { progressDeadlineSeconds: o.progressDeadlineSeconds } : {}),
      selector: { matchLabels },
      template: {
        metadata: { labels: podLabels, annotations: { 'example.com/scrape': 'true' } },
        spec: {
          containers: o.containers ?? [
            { name: 'app', image: o.image ?? 'registry.example:5000/shop/checkout:1.0' },
            { name: 'sidecar', image: 'example/proxy:3' },
          ],
        },
      },
    },
  };
}

function target(ns: string, workload: Record<string, unknown> = {}, traffic: object = { istio: {} }): Target {
  const v = validateTarget({
    app: 'checkout',
    namespace: ns,
    workload: { name: 'checkout', progressDeadline: '20s', ...workload },
    traffic,
  });
  if (!v.ok) throw new Error(JSON.stringify(v.problems));
  return v.target;
}

function manager(
  ns: string,
  opts: {
    workload?: Record<string, unknown>;
    traffic?: object;
    clients?: KubeClients;
  } & DeploymentWorkloadOptions = {},
): DeploymentWorkloadManager {
  const { workload, traffic, clients, ...options } = opts;
  return new DeploymentWorkloadManager(clients ?? admin, target(ns, workload, traffic), {
    pollMs: 50,
    ...options,
  });
}

const read = (ns: string, name: string) => apps.readNamespacedDeployment({ namespace: ns, name });

async function find(ns: string, name: string): Promise<V1Deployment | undefined> {
  try {
    return await read(ns, name);
  } catch (err) {
    if ((err as { code?: number }).code === 404) return undefined;
    throw err;
  }
}

/** Creates the stable Deployment and waits until the simulator reports it rolled out. */
async function createStable(ns: string, o: StableOptions = {}): Promise<V1Deployment> {
  await apps.createNamespacedDeployment({ namespace: ns, body: stableDeployment('checkout', o) });
  return waitAvailable(ns, 'checkout');
}

async function waitAvailable(ns: string, name: string): Promise<V1Deployment> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const d = await read(ns, name);
    if (
      (d.status?.observedGeneration ?? 0) >= (d.metadata?.generation ?? 1) &&
      (d.status?.availableReplicas ?? 0) >= (d.spec?.replicas ?? 1)
    )
      return d;
    if (Date.now() > deadline) throw new Error(`${name} never became available: ${JSON.stringify(d.status)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function failure(call: Promise<unknown>): Promise<ProviderError> {
  try {
    await call;
  } catch (err) {
    if (err instanceof ProviderError) return err;
    throw err;
  }
  throw new Error('expected a ProviderError');
}

describe('image derivation', () => {
  test('replaces the tag, keeps registry ports, drops digests', () => {
    expect(imageWithTag('repo/app:1.0', '2.0')).toBe('repo/app:2.0');
    expect(imageWithTag('repo/app', '2.0')).toBe('repo/app:2.0');
    expect(imageWithTag('registry:5000/app', 'v2')).toBe('registry:5000/app:v2');
    expect(imageWithTag('registry:5000/app:1.0@sha256:abcd', 'v2')).toBe('registry:5000/app:v2');
    expect(imageWithTag('app@sha256:abcd', 'v2')).toBe('app:v2');
    expect(imageTag('registry:5000/app:1.0@sha256:abcd')).toBe('1.0');
    expect(imageTag('registry:5000/app')).toBeUndefined();
    expect(() => imageWithTag('repo/app:1', '1.0+build')).toThrow(/not a valid image tag/);
  });
});

describe('ensureCanary', () => {
  test('creates the canary from stable: labels, selector, image, replicas, record; waits until it is available', async () => {
    const ns = await namespace();
    simulate(ns, { readyAfterMs: 1000 });
    const stable = await createStable(ns, { replicas: 3 });
    const beats: unknown[] = [];
    const m = manager(ns, { heartbeat: (d) => beats.push(d) });

    const started = Date.now();
    const info = await m.ensureCanary('2.0');
    const took = Date.now() - started;
    expect(info).toEqual({ stableVersion: '1.0' });

    const canary = await read(ns, 'checkout-canary');
    // Returned only once the status says the current generation is available (the simulator needs ~1 s).
    expect(took).toBeGreaterThanOrEqual(900);
    expect(canary.status?.observedGeneration).toBe(canary.metadata?.generation);
    expect(canary.status?.availableReplicas).toBe(3);
    expect(canary.status?.updatedReplicas).toBe(3);
    expect(beats.length).toBeGreaterThan(5);

    expect(canary.metadata?.labels).toEqual({ app: 'checkout', team: 'payments', [ROLE_LABEL]: 'canary' });
    expect(canary.metadata?.annotations).toEqual({
      'example.com/owner': 'payments',
      [STABLE_REPLICAS_ANNOTATION]: '3',
    });
    expect(canary.spec?.selector.matchLabels).toEqual({
      app: 'checkout',
      version: '2.0',
      [ROLE_LABEL]: 'canary',
    });
    expect(canary.spec?.template.metadata?.labels).toEqual({
      app: 'checkout',
      version: '2.0',
      [ROLE_LABEL]: 'canary',
    });
    expect(canary.spec?.template.metadata?.annotations).toEqual({ 'example.com/scrape': 'true' });
    expect(canary.spec?.replicas).toBe(3);
    expect(canary.spec?.template.spec?.containers.map((c) => [c.name, c.image])).toEqual([
      ['app', 'registry.example:5000/shop/checkout:2.0'],
      ['sidecar', 'example/proxy:3'],
    ]);

    // Stable is untouched.
    const after = await read(ns, 'checkout');
    expect(after.metadata?.resourceVersion).toBe(stable.metadata?.resourceVersion);

    // Idempotent: the same version again writes nothing and returns (it is available already).
    const again = Date.now();
    await expect(m.ensureCanary('2.0')).resolves.toEqual({ stableVersion: '1.0' });
    expect(Date.now() - again).toBeLessThan(900);
    expect((await read(ns, 'checkout-canary')).metadata?.resourceVersion).toBe(
      canary.metadata?.resourceVersion,
    );
  });

  test('an explicit image, a named container, the version from the tag, and a canary for the ratio router', async () => {
    const ns = await namespace();
    simulate(ns, { readyAfterMs: 200 });
    await createStable(ns, {
      replicas: 4,
      version: null,
      containers: [
        { name: 'init-proxy', image: 'example/proxy:3' },
        { name: 'web', image: 'shop/checkout:1.4@sha256:0123' },
      ],
    });
    const m = manager(ns, { workload: { container: 'web' }, traffic: { replicas: {} } });
    await expect(m.ensureCanary('2.0')).resolves.toEqual({ stableVersion: '1.4' });
    let canary = await read(ns, 'checkout-canary');
    expect(canary.spec?.template.spec?.containers.map((c) => c.image)).toEqual([
      'example/proxy:3',
      'shop/checkout:2.0',
    ]);
    // The ratio router scales it; stable's count is still recorded.
    expect(canary.spec?.replicas).toBe(0);
    expect(canary.metadata?.annotations?.[STABLE_REPLICAS_ANNOTATION]).toBe('4');

    // Same version, another image: updated in place (same uid).
    await m.ensureCanary('2.0', 'mirror.example/checkout@sha256:feed');
    const updated = await read(ns, 'checkout-canary');
    expect(updated.metadata?.uid).toBe(canary.metadata?.uid);
    expect(updated.spec?.template.spec?.containers[1].image).toBe('mirror.example/checkout@sha256:feed');

    // Another version: the selector (immutable) differs, so the canary is made again.
    canary = updated;
    await m.ensureCanary('3.0');
    const recreated = await read(ns, 'checkout-canary');
    expect(recreated.metadata?.uid).not.toBe(canary.metadata?.uid);
    expect(recreated.spec?.selector.matchLabels?.version).toBe('3.0');
    expect(recreated.spec?.template.spec?.containers[1].image).toBe('shop/checkout:3.0');
  });

  test('a canary that never becomes available misses the progress deadline', async () => {
    const ns = await namespace();
    simulate(ns, { readyAfterMs: 100, neverReady: (name) => name === 'checkout-canary' });
    await createStable(ns, { replicas: 2 });
    const m = manager(ns, { workload: { progressDeadline: '2s' } });
    const started = Date.now();
    const err = await failure(m.ensureCanary('2.0'));
    expect(Date.now() - started).toBeGreaterThanOrEqual(1900);
    expect(err.kind).toBe('deadline');
    expect(err.message).toContain(`Deployment "${ns}/checkout-canary"`);
    expect(err.message).toContain('progress deadline of 2s');
    expect(err.message).toContain('2 of 2 replicas updated, 0 available');
  });

  test('a wait whose activity is cancelled (an abort, its workflow gone) stops polling at once, not at its deadline', async () => {
    const ns = await namespace();
    simulate(ns, { readyAfterMs: 100, neverReady: (name) => name === 'checkout-canary' });
    await createStable(ns, { replicas: 2 });
    // As the worker makes it: the activity's own heartbeat (the SDK's activity context, no server needed for it).
    const m = manager(ns, { workload: { progressDeadline: '60s' }, heartbeat });
    const env = new MockActivityEnvironment();
    const waiting = env.run(() => m.ensureCanary('2.0'));
    waiting.catch(() => undefined); // asserted below
    const until = Date.now() + 10_000;
    while (!(await find(ns, 'checkout-canary')) && Date.now() < until)
      await new Promise((r) => setTimeout(r, 50));
    await new Promise((r) => setTimeout(r, 300)); // polling the canary by now
    const cancelled = Date.now();
    env.cancel('CANCELLED');
    await expect(waiting).rejects.toBeInstanceOf(CancelledFailure);
    expect(Date.now() - cancelled).toBeLessThan(1_000);
  });

  test("the controller's ProgressDeadlineExceeded ends the wait before the target's deadline", async () => {
    const ns = await namespace();
    simulate(ns, { readyAfterMs: 100, neverReady: (name) => name === 'checkout-canary' });
    await createStable(ns, { replicas: 1, progressDeadlineSeconds: 1 });
    const m = manager(ns, { workload: { progressDeadline: '60s' } });
    const started = Date.now();
    const err = await failure(m.ensureCanary('2.0'));
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(err.kind).toBe('deadline');
    expect(err.message).toMatch(/ProgressDeadlineExceeded \(ReplicaSet "checkout-canary-sim" has timed out/);
    expect(err.message).toContain(`"${ns}/checkout-canary"`);
  });

  test('a missing stable Deployment is not_found, naming it', async () => {
    const ns = await namespace();
    const err = await failure(manager(ns).ensureCanary('2.0'));
    expect(err.kind).toBe('not_found');
    expect(err.message).toContain('deployments.apps "checkout"');
    expect(err.message).toContain(`namespace "${ns}"`);
  });

  test('a same-named Deployment it did not create is left alone', async () => {
    const ns = await namespace();
    simulate(ns, { readyAfterMs: 100 });
    await createStable(ns);
    await apps.createNamespacedDeployment({ namespace: ns, body: stableDeployment('checkout-canary') });
    const m = manager(ns);
    expect((await failure(m.ensureCanary('2.0'))).message).toMatch(/refusing to overwrite/);
    expect((await failure(m.cleanupCanary())).message).toMatch(/refusing to delete/);
    expect(await find(ns, 'checkout-canary')).toBeDefined();
  });

  test('a target without a Deployment workload is invalid', () => {
    const v = validateTarget({ app: 'checkout', namespace: 'x', workload: { kind: 'local' } });
    if (!v.ok) throw new Error('target');
    expect(() => new DeploymentWorkloadManager(admin, v.target)).toThrow(ProviderError);
  });
});

describe('promoteStable', () => {
  test('stable takes the image and the version label, and returns once the new generation is rolled out', async () => {
    const ns = await namespace();
    simulate(ns, { readyAfterMs: 1000 });
    const before = await createStable(ns, { replicas: 2 });
    const beats: Array<{ progress?: string }> = [];
    const m = manager(ns, { heartbeat: (d) => beats.push(d as { progress?: string }) });

    const started = Date.now();
    expect(await m.promoteStable('2.0')).toEqual({ stableLabel: '2.0' });
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
    const stable = await read(ns, 'checkout');
    expect(stable.metadata?.generation).toBe((before.metadata?.generation ?? 0) + 1);
    expect(stable.status?.observedGeneration).toBe(stable.metadata?.generation);
    expect(stable.spec?.template.metadata?.labels).toEqual({ app: 'checkout', version: '2.0' });
    expect(stable.spec?.template.spec?.containers.map((c) => c.image)).toEqual([
      'registry.example:5000/shop/checkout:2.0',
      'example/proxy:3',
    ]);
    // The old status said "2 of 2 available" all along: only observedGeneration held the wait back.
    expect(
      beats.some((b) => b.progress?.startsWith('observed generation 1 of 2, 2 of 2 replicas updated')),
    ).toBe(true);

    // Idempotent.
    await m.promoteStable('2.0');
    expect((await read(ns, 'checkout')).metadata?.resourceVersion).toBe(stable.metadata?.resourceVersion);
  });

  test("a version label in stable's (immutable) selector stays; only the image changes", async () => {
    const ns = await namespace();
    simulate(ns, { readyAfterMs: 100 });
    await createStable(ns, { selectorVersion: true });
    // Routing that selects stable by the version label must keep selecting 1.0: promotion says so.
    expect(await manager(ns).promoteStable('2.0', 'shop/checkout:2.0-rc1')).toEqual({ stableLabel: '1.0' });
    const stable = await read(ns, 'checkout');
    expect(stable.spec?.selector.matchLabels).toEqual({ app: 'checkout', version: '1.0' });
    expect(stable.spec?.template.metadata?.labels?.version).toBe('1.0');
    expect(stable.spec?.template.spec?.containers[0].image).toBe('shop/checkout:2.0-rc1');
  });

  test('a promotion that does not roll out misses the deadline', async () => {
    const ns = await namespace();
    let broken = false;
    simulate(ns, { readyAfterMs: 100, neverReady: (name) => broken && name === 'checkout' });
    await createStable(ns, { replicas: 2 });
    broken = true;
    const err = await failure(manager(ns, { workload: { progressDeadline: '1s' } }).promoteStable('2.0'));
    expect(err.kind).toBe('deadline');
    expect(err.message).toContain(`Deployment "${ns}/checkout"`);
  });
});

describe('ensureStableCapacity', () => {
  test('scales stable back to the count recorded when the canary was made, and says so', async () => {
    const ns = await namespace();
    simulate(ns, { readyAfterMs: 300 });
    await createStable(ns, { replicas: 4 });
    const m = manager(ns);
    await m.ensureCanary('2.0');
    expect(await m.ensureStableCapacity()).toBeUndefined();

    // An autoscaler shrinks stable while the canary carries traffic.
    await admin.apps.patchNamespacedDeploymentScale(
      { namespace: ns, name: 'checkout', body: { spec: { replicas: 1 } } },
      MERGE_PATCH,
    );
    await waitAvailable(ns, 'checkout');
    const remark = await m.ensureStableCapacity();
    expect(remark).toBe(
      'stable had 1 of 4 replicas (an autoscaler may have shrunk it); scaled back to 4, available 4',
    );
    const stable = await read(ns, 'checkout');
    expect(stable.spec?.replicas).toBe(4);
    expect(stable.status?.availableReplicas).toBe(4);
    expect(await m.ensureStableCapacity()).toBeUndefined();
  });

  test('a slow stable is a remark, never a failure', async () => {
    const ns = await namespace();
    let slow = false;
    simulate(ns, { readyAfterMs: 100, neverReady: (name) => slow && name === 'checkout' });
    await createStable(ns, { replicas: 3 });
    const m = manager(ns, { stableCapacityWaitMs: 500 });
    await m.ensureCanary('2.0');
    slow = true;
    await apps.patchNamespacedDeploymentScale(
      { namespace: ns, name: 'checkout', body: { spec: { replicas: 1 } } },
      MERGE_PATCH,
    );
    const remark = await m.ensureStableCapacity();
    expect(remark).toMatch(
      /^stable had 1 of 3 replicas .*scaled back to 3, but only 0 available after 500ms/,
    );
    expect(remark).toContain('traffic goes back to stable anyway');
    expect((await read(ns, 'checkout')).spec?.replicas).toBe(3);
  });
});

describe('scaleDownCanary and cleanupCanary', () => {
  test('scale the canary to zero, then delete it; both idempotent, both fine when it is gone', async () => {
    const ns = await namespace();
    simulate(ns, { readyAfterMs: 100 });
    await createStable(ns, { replicas: 2 });
    const m = manager(ns);
    await m.ensureCanary('2.0');

    await m.scaleDownCanary();
    const down = await waitAvailable(ns, 'checkout-canary');
    expect(down.spec?.replicas).toBe(0);
    await m.scaleDownCanary();
    expect((await read(ns, 'checkout-canary')).metadata?.resourceVersion).toBe(
      down.metadata?.resourceVersion,
    );

    // A retry after a rollback: the same version again, back at stable's capacity for the mesh router.
    await m.ensureCanary('2.0');
    expect((await read(ns, 'checkout-canary')).spec?.replicas).toBe(2);

    await m.cleanupCanary();
    expect(await find(ns, 'checkout-canary')).toBeUndefined();
    await m.cleanupCanary();
    await m.scaleDownCanary();
    expect(await find(ns, 'checkout')).toBeDefined();
  });
});

describe('the restricted identity', () => {
  test('forbidden names the verb, the resource and the namespace', async () => {
    const ns = await namespace();
    simulate(ns, { readyAfterMs: 100 });
    await createStable(ns);
    await manager(ns).ensureCanary('2.0');
    await kube.grant(ns, 'read-deployments', [
      { apiGroups: ['apps'], resources: ['deployments'], verbs: ['get', 'list'] },
    ]);
    const restricted = kubeClients(kube.kubeConfig('restricted'));
    const m = manager(ns, { clients: restricted });

    await expect(m.ensureCanary('2.0')).resolves.toEqual({ stableVersion: '1.0' }); // reads suffice

    const scale = await failure(m.scaleDownCanary());
    expect(scale.kind).toBe('forbidden');
    expect(scale.message).toContain(`may not patch deployments/scale in namespace "${ns}"`);
    expect(scale.message).toContain('grant the verb "patch" on "deployments/scale"');

    const promote = await failure(m.promoteStable('2.0'));
    expect(promote.kind).toBe('forbidden');
    expect(promote.message).toContain(`may not patch deployments.apps in namespace "${ns}"`);

    // Not allowed to restore capacity: a remark, and traffic still goes back.
    await apps.patchNamespacedDeploymentScale(
      { namespace: ns, name: 'checkout', body: { spec: { replicas: 1 } } },
      MERGE_PATCH,
    );
    expect(await m.ensureStableCapacity()).toMatch(
      /may not patch deployments\/scale.*traffic goes back to stable anyway/,
    );

    // A new version needs the old canary gone first.
    const replace = await failure(m.ensureCanary('3.0'));
    expect(replace.kind).toBe('forbidden');
    expect(replace.message).toContain(`may not delete deployments.apps in namespace "${ns}"`);

    await manager(ns).cleanupCanary();
    const create = await failure(m.ensureCanary('2.0'));
    expect(create.kind).toBe('forbidden');
    expect(create.message).toContain(`may not create deployments.apps in namespace "${ns}"`);
  });
});
