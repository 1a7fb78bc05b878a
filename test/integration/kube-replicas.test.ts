// The replica-ratio router against a real API server: weights become replica counts of the stable and canary
// Deployments, written through the scale subresource.
import { AppsV1Api, type V1Deployment } from '@kubernetes/client-node';
import { providersFromEnv } from '../../activities/factory';
import { MERGE_PATCH, kubeClients, type KubeClients } from '../../activities/kube/client';
import { createActivities } from '../../activities/rollout-activities';
import { ReplicaRatioRouter, replicaSplit } from '../../activities/traffic/replicas';
import { ProviderError } from '../../activities/types';
import { DeploymentWorkloadManager, TOTAL_REPLICAS_ANNOTATION } from '../../activities/workloads/deployment';
import { validateTarget, type Target } from '../../workflows/target';
import { startKubeServer, type KubeServer } from '../../harness/kube';
import { startDeploymentSimulator } from '../../harness/kube-controller';

jest.setTimeout(120_000);

let kube: KubeServer;
let admin: KubeClients;
let apps: AppsV1Api;
let namespaceCount = 0;

beforeAll(async () => {
  kube = await startKubeServer({ crds: 'none' });
  admin = kubeClients(kube.kubeConfig('admin'));
  apps = admin.apps;
});

afterAll(async () => {
  await kube?.stop();
});

function deployment(name: string, replicas: number, version: string): V1Deployment {
  const labels = { app: 'checkout', version };
  return {
    metadata: { name, labels: { app: 'checkout' }, annotations: { 'example.com/owner': 'payments' } },
    spec: {
      replicas,
      selector: { matchLabels: name.endsWith('-canary') ? labels : { app: 'checkout' } },
      template: {
        metadata: { labels },
        spec: { containers: [{ name: 'app', image: `shop/checkout:${version}` }] },
      },
    },
  };
}

/** A namespace with stable `checkout` (total replicas) and, unless told otherwise, an empty canary. */
async function cluster(total: number, opts: { canary?: boolean; stable?: boolean } = {}): Promise<string> {
  const ns = await kube.createNamespace(`rr-${++namespaceCount}`);
  if (opts.stable !== false) {
    await apps.createNamespacedDeployment({ namespace: ns, body: deployment('checkout', total, '1.0') });
  }
  if (opts.canary !== false) {
    await apps.createNamespacedDeployment({ namespace: ns, body: deployment('checkout-canary', 0, '2.0') });
  }
  return ns;
}

function target(ns: string, traffic: object = { replicas: {} }): Target {
  const v = validateTarget({ app: 'checkout', namespace: ns, workload: { name: 'checkout' }, traffic });
  if (!v.ok) throw new Error(JSON.stringify(v.problems));
  return v.target;
}

const router = (ns: string, clients: KubeClients = admin) => new ReplicaRatioRouter(clients, target(ns));
const read = (ns: string, name: string) => apps.readNamespacedDeployment({ namespace: ns, name });

async function replicas(ns: string): Promise<{ canary: number; stable: number }> {
  const [stable, canary] = await Promise.all([read(ns, 'checkout'), read(ns, 'checkout-canary')]);
  return { canary: canary.spec!.replicas!, stable: stable.spec!.replicas! };
}

async function scale(ns: string, name: string, n: number): Promise<void> {
  await apps.patchNamespacedDeploymentScale(
    { namespace: ns, name, body: { spec: { replicas: n } } },
    MERGE_PATCH,
  );
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

describe('replicaSplit', () => {
  test('rounds, and keeps one replica on each side between 0 and 100 %', () => {
    const achieved = (total: number) => [0, 5, 10, 25, 50, 100].map((w) => replicaSplit(total, w).achieved);
    expect(achieved(4)).toEqual([0, 25, 25, 25, 50, 100]);
    expect(achieved(3)).toEqual([0, 33, 33, 33, 67, 100]);
    expect(achieved(5)).toEqual([0, 20, 20, 20, 60, 100]);
    expect(achieved(10)).toEqual([0, 10, 10, 30, 50, 100]);
    // One replica cannot be split: both sides get one until promotion.
    expect(replicaSplit(1, 5)).toEqual({ canary: 1, stable: 1, achieved: 50 });
    expect(replicaSplit(1, 100)).toEqual({ canary: 1, stable: 0, achieved: 100 });
    expect(replicaSplit(2, 99)).toEqual({ canary: 1, stable: 1, achieved: 50 });
    expect(replicaSplit(0, 50)).toEqual({ canary: 0, stable: 0, achieved: 0 });
  });
});

describe('ReplicaRatioRouter', () => {
  test('walks the plan with 4 replicas, noting what each weight achieves, and back to 0', async () => {
    const ns = await cluster(4);
    const r = router(ns);
    await r.setup({ stable: '1.0', canary: '2.0' });
    expect((await read(ns, 'checkout')).metadata?.annotations?.[TOTAL_REPLICAS_ANNOTATION]).toBe('4');
    expect(await r.getWeight()).toBe(0);

    const stages: Array<[number, number, number, boolean]> = [
      // weight, canary, stable, changed
      [5, 1, 3, true],
      [10, 1, 3, false],
      [25, 1, 3, false],
      [50, 2, 2, true],
      [100, 4, 0, true],
      [0, 0, 4, true],
    ];
    let previous = 0;
    for (const [weight, canary, stable, changed] of stages) {
      const change = await r.setWeight(weight);
      const achieved = Math.round((100 * canary) / 4);
      expect(change.previous).toBe(previous);
      expect(change.changed).toBe(changed);
      if (achieved === weight) {
        expect(change.achieved).toBeUndefined();
        expect(change.note).toBeUndefined();
      } else {
        expect(change.achieved).toBe(achieved);
        expect(change.note).toBe(`${weight}% requested; 1 canary and 3 stable replicas (of 4) give 25%`);
      }
      expect(await replicas(ns)).toEqual({ canary, stable });
      expect(await r.getWeight()).toBe(achieved);
      expect(await r.verifyWeight(weight)).toEqual({ verified: true, weight: achieved });
      previous = achieved;
    }
  });

  test('odd totals', async () => {
    const ns = await cluster(3);
    const r = router(ns);
    await r.setup({ canary: '2.0' });
    await expect(r.setWeight(50)).resolves.toMatchObject({ achieved: 67, changed: true });
    expect(await replicas(ns)).toEqual({ canary: 2, stable: 1 });
    await expect(r.setWeight(10)).resolves.toMatchObject({ achieved: 33 });
    expect(await replicas(ns)).toEqual({ canary: 1, stable: 2 });

    const one = await cluster(1);
    const r1 = router(one);
    await r1.setup({ canary: '2.0' });
    const change = await r1.setWeight(5);
    expect(change).toMatchObject({ achieved: 50 });
    expect(change.note).toBe('5% requested; 1 canary and 1 stable replica (of 1) give 50%');
    expect(await replicas(one)).toEqual({ canary: 1, stable: 1 });
    await r1.setWeight(100);
    expect(await replicas(one)).toEqual({ canary: 1, stable: 0 });
  });

  test('a second identical setWeight writes nothing', async () => {
    const ns = await cluster(4);
    const r = router(ns);
    await r.setup({ canary: '2.0' });
    expect((await r.setWeight(50)).changed).toBe(true);
    const [stable, canary] = await Promise.all([read(ns, 'checkout'), read(ns, 'checkout-canary')]);
    const again = await r.setWeight(50);
    expect(again).toEqual({ previous: 50, changed: false });
    expect((await read(ns, 'checkout')).metadata?.resourceVersion).toBe(stable.metadata?.resourceVersion);
    expect((await read(ns, 'checkout-canary')).metadata?.resourceVersion).toBe(
      canary.metadata?.resourceVersion,
    );
    // setup again (after the router shrank stable) keeps the original total.
    await r.setup({ stable: '2.0', canary: '2.0' });
    expect((await read(ns, 'checkout')).metadata?.annotations?.[TOTAL_REPLICAS_ANNOTATION]).toBe('4');
    expect((await read(ns, 'checkout')).metadata?.resourceVersion).toBe(stable.metadata?.resourceVersion);
  });

  test('a concurrent writer: the 409 is retried on a fresh read, and both changes stay', async () => {
    const ns = await cluster(4);
    await router(ns).setup({ canary: '2.0' });
    let patches = 0;
    let interfered = false;
    const racing = new Proxy(admin.apps, {
      get(target, prop, receiver) {
        if (prop === 'patchNamespacedDeploymentScale') {
          return async (...args: Parameters<AppsV1Api['patchNamespacedDeploymentScale']>) => {
            patches++;
            if (!interfered) {
              interfered = true;
              // Someone else writes to the same Deployment between the router's read and its write.
              await apps.patchNamespacedDeployment(
                {
                  namespace: ns,
                  name: args[0].name,
                  body: { metadata: { annotations: { 'example.com/touched': 'yes' } } },
                },
                MERGE_PATCH,
              );
            }
            return target.patchNamespacedDeploymentScale(...args);
          };
        }
        const value = Reflect.get(target, prop, receiver) as unknown;
        return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
      },
    });
    const r = router(ns, { ...admin, apps: racing });
    const change = await r.setWeight(50);
    expect(change).toEqual({ previous: 0, changed: true });
    expect(patches).toBe(3); // the refused one, then canary and stable
    expect(await replicas(ns)).toEqual({ canary: 2, stable: 2 });
    const touched = await Promise.all([read(ns, 'checkout'), read(ns, 'checkout-canary')]);
    expect(touched.map((d) => d.metadata?.annotations?.['example.com/touched']).filter(Boolean)).toEqual([
      'yes',
    ]);
  });

  test('drift: someone else scales a side; getWeight and verifyWeight report the live ratio', async () => {
    const ns = await cluster(4);
    const r = router(ns);
    await r.setup({ canary: '2.0' });
    await r.setWeight(25);
    await scale(ns, 'checkout-canary', 2);
    expect(await r.getWeight()).toBe(40);
    expect(await r.verifyWeight(25)).toEqual({
      verified: false,
      weight: 40,
      reason:
        '25% means 1 canary and 3 stable replicas (25%), but the Deployments ask for 2 canary and 3 stable (40%)',
    });
    // Setting the weight again repairs it.
    await expect(r.setWeight(25)).resolves.toMatchObject({ previous: 40, changed: true });
    expect(await replicas(ns)).toEqual({ canary: 1, stable: 3 });
  });

  test('missing Deployments are not_found, naming them; a missing canary reads as 0', async () => {
    const noCanary = await cluster(4, { canary: false });
    const r = router(noCanary);
    await r.setup({ canary: '2.0' });
    expect(await r.getWeight()).toBe(0);
    await expect(r.setWeight(0)).resolves.toEqual({ previous: 0, changed: false });
    const err = await failure(r.setWeight(25));
    expect(err.kind).toBe('not_found');
    expect(err.message).toContain(`"${noCanary}/checkout-canary"`);

    const noStable = await cluster(4, { stable: false });
    const missing = await failure(router(noStable).setup({ canary: '2.0' }));
    expect(missing.kind).toBe('not_found');
    expect(missing.message).toContain('deployments.apps "checkout" does not exist');
    expect(missing.message).toContain(`namespace "${noStable}"`);
    expect((await failure(router(noStable).getWeight())).kind).toBe('not_found');
  });

  test('the restricted identity may read but not scale: forbidden names patch, deployments/scale, namespace', async () => {
    const ns = await cluster(4);
    await router(ns).setup({ canary: '2.0' });
    await kube.grant(ns, 'read-deployments', [
      { apiGroups: ['apps'], resources: ['deployments'], verbs: ['get', 'list'] },
    ]);
    const r = router(ns, kubeClients(kube.kubeConfig('restricted')));
    expect(await r.getWeight()).toBe(0);
    const err = await failure(r.setWeight(25));
    expect(err.kind).toBe('forbidden');
    expect(err.message).toContain(`may not patch deployments/scale in namespace "${ns}"`);
    expect(err.message).toContain('grant the verb "patch" on "deployments/scale"');
    expect(await replicas(ns)).toEqual({ canary: 0, stable: 4 });
  });

  test('setup then teardown leaves stable exactly as before; teardown is idempotent', async () => {
    const ns = await cluster(4);
    const before = await read(ns, 'checkout');
    const r = router(ns);
    await r.setup({ stable: '1.0', canary: '2.0' });
    await r.setWeight(50);
    await r.teardown();
    const after = await read(ns, 'checkout');
    expect(after.spec).toEqual(before.spec);
    expect(after.metadata?.annotations).toEqual(before.metadata?.annotations);
    expect(await replicas(ns)).toEqual({ canary: 0, stable: 4 });
    const rv = after.metadata?.resourceVersion;
    await r.teardown();
    expect((await read(ns, 'checkout')).metadata?.resourceVersion).toBe(rv);
  });

  test('with the workload manager: an empty canary, the ratio, then rollback capacity', async () => {
    const ns = await cluster(4, { canary: false });
    const simulator = startDeploymentSimulator(kube.kubeConfig('admin'), ns, { readyAfterMs: 100 });
    try {
      const t = target(ns);
      const workloads = new DeploymentWorkloadManager(admin, t, { pollMs: 50, stableCapacityWaitMs: 5_000 });
      const r = new ReplicaRatioRouter(admin, t);
      await workloads.ensureCanary('2.0');
      expect((await read(ns, 'checkout-canary')).spec?.replicas).toBe(0);
      await r.setup({ stable: '1.0', canary: '2.0' });
      await r.setWeight(50);
      expect(await replicas(ns)).toEqual({ canary: 2, stable: 2 });
      // Rollback: stable gets its capacity back first, then the weight goes to 0.
      expect(await workloads.ensureStableCapacity()).toBe(
        'stable had 2 of 4 replicas (the replica-ratio router had moved them to the canary); scaled back to 4, available 4',
      );
      await r.setWeight(0);
      expect(await replicas(ns)).toEqual({ canary: 0, stable: 4 });
      await r.teardown();
      expect((await read(ns, 'checkout')).metadata?.annotations?.[TOTAL_REPLICAS_ANNOTATION]).toBeUndefined();
    } finally {
      await simulator.stop();
    }
  });

  test('a gated shift reads both sides at once, writes only once the gate settles, and reads again what it changed', async () => {
    const ns = await cluster(4);
    const calls: string[] = [];
    const apps = new Proxy(admin.apps, {
      get(t, prop, receiver) {
        const value = Reflect.get(t, prop, receiver) as unknown;
        if (typeof value !== 'function' || typeof prop !== 'string') return value;
        return (...args: unknown[]) => {
          calls.push(`${prop} ${(args[0] as { name?: string }).name}`);
          return (value as (...a: unknown[]) => unknown).apply(t, args);
        };
      },
    });
    const r = router(ns, { ...admin, apps });
    await r.setup({ stable: '1.0', canary: '2.0' });
    await r.setWeight(50);
    calls.length = 0;

    let open!: (changed: boolean) => void;
    const gate = new Promise<boolean>((resolve) => (open = resolve));
    const shift = r.setWeight(0, undefined, { writeAfter: gate });
    await new Promise((res) => setTimeout(res, 200));
    expect(calls.sort()).toEqual([
      'readNamespacedDeployment checkout',
      'readNamespacedDeployment checkout-canary',
    ]);
    expect(await replicas(ns)).toEqual({ canary: 2, stable: 2 });
    // What the rollback's capacity check does meanwhile: stable back to its total.
    await scale(ns, 'checkout', 4);
    calls.length = 0;
    open(true);
    await expect(shift).resolves.toEqual({ previous: 50, changed: true });
    // Read again (stable changed under the first read), then only the canary is left to write.
    expect(calls).toEqual([
      'readNamespacedDeployment checkout',
      'readNamespacedDeployment checkout-canary',
      'patchNamespacedDeploymentScale checkout-canary',
    ]);
    expect(await replicas(ns)).toEqual({ canary: 0, stable: 4 });
  });

  test('rollback through setCanaryWeight: stable is back and available before the canary shrinks, and the note says so', async () => {
    const ns = await cluster(4, { canary: false });
    const simulator = startDeploymentSimulator(kube.kubeConfig('admin'), ns, { readyAfterMs: 300 });
    try {
      const t = target(ns);
      const acts = createActivities(
        providersFromEnv({ KUBECONFIG: kube.kubeconfigFile('admin'), CANARY_ALERT_LOG: '/dev/null' }),
      );
      await acts.prepareCanary({ target: t, version: '2.0' });
      await acts.prepareRouting({ target: t, versions: { stable: '1.0', canary: '2.0' } });
      await acts.setCanaryWeight({ target: t, weight: 50 });
      expect(await replicas(ns)).toEqual({ canary: 2, stable: 2 });

      const seen: Array<{ canary: number; stable: number; stableAvailable: number }> = [];
      let watching = true;
      const watcher = (async () => {
        while (watching) {
          const [st, ca] = await Promise.all([read(ns, 'checkout'), read(ns, 'checkout-canary')]);
          const current = (st.status?.observedGeneration ?? 0) >= (st.metadata?.generation ?? 0);
          seen.push({
            canary: ca.spec!.replicas!,
            stable: st.spec!.replicas!,
            stableAvailable: current ? (st.status?.availableReplicas ?? 0) : 0,
          });
          await new Promise((res) => setTimeout(res, 20));
        }
      })();
      const r = await acts.setCanaryWeight({ target: t, weight: 0, mode: 'rollback', ensureCapacity: true });
      watching = false;
      await watcher;
      expect(r).toMatchObject({ current: 0, changed: true });
      // The router reads while the capacity check runs (by design, so a big enough stable costs no round trip): it
      // saw 2 of 4 (50 %), or, when the check had already restored stable, 2 canary beside 4 stable (33 %).
      expect([50, 33]).toContain(r.previous);
      expect(r.capacityNote).toBe(
        'stable had 2 of 4 replicas (the replica-ratio router had moved them to the canary); scaled back to 4, available 4',
      );
      expect(await replicas(ns)).toEqual({ canary: 0, stable: 4 });
      // The order: stable grew (and its pods became available) while the canary still had its 2.
      expect(seen.some((x) => x.stable === 4 && x.canary === 2)).toBe(true);
      for (const x of seen) if (x.canary < 2) expect(x.stableAvailable).toBe(4);
    } finally {
      await simulator.stop();
    }
  });

  test('stable shrinks only once the grown canary is available, and not at all when it never is', async () => {
    const ns = await cluster(4);
    const slow = startDeploymentSimulator(kube.kubeConfig('admin'), ns, { readyAfterMs: 1_500 });
    try {
      const r = new ReplicaRatioRouter(admin, target(ns), { waitForCanary: true, pollMs: 50 });
      await r.setup({ stable: '1.0', canary: '2.0' });
      // Watch both sides while 0 → 50 % runs: stable must keep 4 until the canary's 2 pods are available.
      const seen: Array<{ canary: number; stable: number; canaryAvailable: number }> = [];
      let watching = true;
      const watcher = (async () => {
        while (watching) {
          const [st, ca] = await Promise.all([read(ns, 'checkout'), read(ns, 'checkout-canary')]);
          const current = (ca.status?.observedGeneration ?? 0) >= (ca.metadata?.generation ?? 0);
          seen.push({
            canary: ca.spec!.replicas!,
            stable: st.spec!.replicas!,
            canaryAvailable: current ? (ca.status?.availableReplicas ?? 0) : 0,
          });
          await new Promise((res) => setTimeout(res, 25));
        }
      })();
      const t0 = Date.now();
      await r.setWeight(50);
      watching = false;
      await watcher;
      expect(Date.now() - t0).toBeGreaterThanOrEqual(1_400);
      expect(await replicas(ns)).toEqual({ canary: 2, stable: 2 });
      expect(seen.some((x) => x.canary === 2 && x.stable === 4)).toBe(true); // the canary grew first
      for (const x of seen) if (x.stable < 4) expect(x.canaryAvailable).toBeGreaterThanOrEqual(2);
    } finally {
      await slow.stop();
    }

    const ns2 = await cluster(4);
    const crashing = startDeploymentSimulator(kube.kubeConfig('admin'), ns2, {
      neverReady: (name) => name === 'checkout-canary',
    });
    try {
      const v = validateTarget({
        app: 'checkout',
        namespace: ns2,
        workload: { name: 'checkout', progressDeadline: '2s' },
        traffic: { replicas: {} },
      });
      if (!v.ok) throw new Error(JSON.stringify(v.problems));
      const r = new ReplicaRatioRouter(admin, v.target, { waitForCanary: true, pollMs: 50 });
      await r.setup({ stable: '1.0', canary: '2.0' });
      const err = await failure(r.setWeight(50));
      expect(err.kind).toBe('deadline');
      expect(err.message).toBe(
        `Deployment "${ns2}/checkout-canary" has 0 of 2 replicas available after the progress deadline of 2 s ` +
          '(target.workload.progressDeadline); "checkout" was not scaled down, so no capacity was lost',
      );
      expect(await replicas(ns2)).toEqual({ canary: 2, stable: 4 });
    } finally {
      await crashing.stop();
    }
  });

  test('needs replicas traffic settings and a Deployment workload', () => {
    expect(() => new ReplicaRatioRouter(admin, target('x', { istio: {} }))).toThrow(ProviderError);
    const v = validateTarget({ app: 'checkout', namespace: 'x', traffic: { replicas: {} } });
    if (!v.ok) throw new Error('target');
    expect(() => new ReplicaRatioRouter(admin, v.target)).toThrow(/needs a Deployment workload/);
  });
});
