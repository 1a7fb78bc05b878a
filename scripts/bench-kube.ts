// Benchmarks of the Kubernetes traffic routers, printed as figures (not a test). Part of `npm run bench`; alone:
// `node dist-dev/scripts/bench-kube.js [--calls N] [--rollouts N] [--background N] [--routers smi,replicas]
// [--eager-activities]` (--routers: measure only those routers, setWeight and rollback; the background stays mixed).
//  1. setWeight latency of each router against a real local kube-apiserver: calls that change the weight, and the
//     same weight again (the idempotent, read-only path).
//  2. Rollback latency through the real workflow (dev server, in-process worker, Deployment simulator), for every
//     router, with other rollouts running on the same worker and API server (`--background N`, default 100): abort
//     signal sent until the live router object (or the replica ratio) reads canary weight 0.
//  3. Peak RSS (VmHWM) of the API server, etcd and this process.
import { rolloutResult } from '../client/index';
import * as fs from 'node:fs';
import * as os from 'node:os';
import { performance } from 'node:perf_hooks';
import type { CustomObjectsApi, V1Deployment, V1Ingress } from '@kubernetes/client-node';
import { Client, Connection, type WorkflowHandle } from '@temporalio/client';
import { NativeConnection, Worker } from '@temporalio/worker';
import { NO_METRICS_SINKS } from '../worker/worker';
import { providersFromEnv } from '../activities/factory';
import { kubeClients, type KubeClients } from '../activities/kube/client';
import { createActivities } from '../activities/rollout-activities';
import { GatewayApiRouter } from '../activities/traffic/gateway-api';
import { IstioRouter } from '../activities/traffic/istio';
import { NginxRouter } from '../activities/traffic/nginx';
import { ReplicaRatioRouter } from '../activities/traffic/replicas';
import { SmiRouter } from '../activities/traffic/smi';
import type { TrafficRouter } from '../activities/types';
import { abortSignal, rolloutWorkflowId, type RolloutInput } from '../workflows/api';
import type { canaryRollout } from '../workflows';
import { validateTarget, type Target } from '../workflows/target';
import { startDevServer, type DevServer } from '../demo/dev-server';
import { startKubeServer, type KubeServer } from '../harness/kube';
import { startDeploymentSimulator } from '../harness/kube-controller';
import { createTargetFixture, type TargetFixture } from '../harness/kube-rollout';
import { workflowBundle } from '../harness/rollout-env';

export const KUBE_ROUTERS = ['istio', 'nginx', 'gatewayAPI', 'smi', 'replicas'] as const;
export type KubeRouter = (typeof KUBE_ROUTERS)[number];
/** The routers whose rollback is measured through the workflow: every one. */
export const ROLLBACK_ROUTERS = KUBE_ROUTERS;
export type RollbackRouter = (typeof ROLLBACK_ROUTERS)[number];

export interface LatencyStats {
  n: number;
  p50: number;
  p99: number;
  min: number;
  max: number;
}

export interface KubeBenchOptions {
  /** setWeight calls per router and path (default 200). */
  calls?: number;
  /** Rollouts per router for the rollback figure (default 20). */
  rollouts?: number;
  /** Other rollouts running on the same worker and API server while rollback is measured (default 100). */
  background?: number;
  /**
   * Start the dev server with eager activity execution on (`system.enableActivityEagerExecution`, off by default in
   * the server): the rollback's activity comes back with the workflow task's answer instead of through a poll.
   */
  eagerActivities?: boolean;
  /** The routers measured (default all five); the background rollouts use every router either way. */
  routers?: readonly KubeRouter[];
}

export interface KubeBenchFigures {
  /** gitVersion of the API server, e.g. v1.34.4. */
  apiserverVersion: string;
  cores: number;
  /** The routers measured, in KUBE_ROUTERS order. */
  routers: KubeRouter[];
  setWeightChange: Partial<Record<KubeRouter, LatencyStats>>;
  setWeightSame: Partial<Record<KubeRouter, LatencyStats>>;
  rollback: Partial<Record<RollbackRouter, LatencyStats>>;
  /** Where each router's abort → 0 went, segment by segment, read from the rollouts' histories. */
  rollbackSegments: Partial<Record<RollbackRouter, Partial<Record<AbortSegment, LatencyStats>>>>;
  /** How many other rollouts were running (at their first stage) while rollback was measured. */
  background: number;
  eagerActivities: boolean;
  /** VmHWM in MiB. */
  peakRssMiB: { apiserver: number; etcd: number; bench: number };
  wallSeconds: number;
  /** Where the wall time went: starting the servers (and bundling), the setWeight calls, the rollouts. */
  phaseSeconds: { startup: number; setWeight: number; rollback: number };
}

/** The weights a plan walks through and back; each differs from the one before it (also cyclically). */
const CYCLE = [5, 10, 25, 50, 100, 0];
const WARMUP_CALLS = CYCLE.length;
/** Stable replicas for the replica-ratio router: enough that every weight of CYCLE moves a replica. */
const RATIO_REPLICAS = 20;
const ROLLOUT_POLL_MS = 5;
const APP = 'checkout';

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

// --- fixture objects, as in test/integration/kube-*.test.ts -------------------------------------------------

const ISTIO = { group: 'networking.istio.io', version: 'v1', plural: 'virtualservices' };
const HTTP_ROUTES = { group: 'gateway.networking.k8s.io', version: 'v1', plural: 'httproutes' };
const TRAFFIC_SPLITS = { group: 'split.smi-spec.io', version: 'v1alpha2', plural: 'trafficsplits' };

function virtualService(app: string): Obj {
  const dest = (subset: string, weight: number) => ({
    destination: { host: app, subset, port: { number: 8080 } },
    weight,
  });
  return {
    apiVersion: 'networking.istio.io/v1',
    kind: 'VirtualService',
    metadata: { name: app },
    spec: {
      hosts: [app],
      http: [
        {
          name: 'admin',
          match: [{ uri: { prefix: '/admin' } }],
          route: [{ destination: { host: 'admin' } }],
        },
        {
          name: 'primary',
          match: [{ uri: { prefix: '/api' } }],
          route: [dest('stable', 100), dest('canary', 0)],
          timeout: '5s',
        },
      ],
    },
  };
}

function primaryIngress(app: string): V1Ingress {
  const backend = { service: { name: app, port: { number: 80 } } };
  return {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'Ingress',
    metadata: {
      name: app,
      labels: { app },
      annotations: {
        'nginx.ingress.kubernetes.io/rewrite-target': '/',
        'kubernetes.io/ingress.class': 'nginx',
      },
    },
    spec: {
      ingressClassName: 'nginx',
      defaultBackend: backend,
      rules: [
        {
          host: `${app}.example.com`,
          http: { paths: [{ path: '/', pathType: 'Prefix', backend }] },
        },
      ],
    },
  };
}

function httpRoute(app: string): Obj {
  return {
    apiVersion: 'gateway.networking.k8s.io/v1',
    kind: 'HTTPRoute',
    metadata: { name: app },
    spec: {
      parentRefs: [{ name: 'public-gateway' }],
      hostnames: [`${app}.example.com`],
      rules: [
        { matches: [{ path: { type: 'PathPrefix', value: '/' } }], backendRefs: [{ name: app, port: 80 }] },
        {
          matches: [{ path: { type: 'PathPrefix', value: '/admin' } }],
          backendRefs: [{ name: 'admin', port: 8080 }],
        },
      ],
    },
  };
}

function trafficSplit(app: string): Obj {
  return {
    apiVersion: 'split.smi-spec.io/v1alpha2',
    kind: 'TrafficSplit',
    metadata: { name: app },
    spec: { service: app, backends: [{ service: `${app}-stable`, weight: 100 }] },
  };
}

function deployment(name: string, app: string, replicas: number, version: string): V1Deployment {
  return {
    metadata: { name, labels: { app } },
    spec: {
      replicas,
      selector: { matchLabels: name.endsWith('-canary') ? { app, version } : { app } },
      template: {
        metadata: { labels: { app, version } },
        spec: { containers: [{ name: 'app', image: `shop/${app}:${version}` }] },
      },
    },
  };
}

function createCustom(custom: CustomObjectsApi, kind: typeof ISTIO, namespace: string, body: Obj) {
  return custom.createNamespacedCustomObject({ ...kind, namespace, body });
}

/** The router's objects for an app (a stable Deployment too, for the workload manager and the ratio router). */
async function createFixture(admin: KubeClients, router: KubeRouter, ns: string, app: string): Promise<void> {
  switch (router) {
    case 'istio':
      await createCustom(admin.custom, ISTIO, ns, virtualService(app));
      break;
    case 'nginx':
      await admin.networking.createNamespacedIngress({ namespace: ns, body: primaryIngress(app) });
      break;
    case 'gatewayAPI':
      await createCustom(admin.custom, HTTP_ROUTES, ns, httpRoute(app));
      break;
    case 'smi':
      await createCustom(admin.custom, TRAFFIC_SPLITS, ns, trafficSplit(app));
      break;
    case 'replicas':
      await admin.apps.createNamespacedDeployment({
        namespace: ns,
        body: deployment(`${app}-canary`, app, 0, 'v2'),
      });
      break;
  }
  const stableReplicas = router === 'replicas' ? RATIO_REPLICAS : 2;
  await admin.apps.createNamespacedDeployment({
    namespace: ns,
    body: deployment(app, app, stableReplicas, 'v1'),
  });
}

/** The target as written, so the workflow and the routers validate it the same way. */
function targetSpec(
  router: KubeRouter,
  ns: string,
  app: string,
  opts: { destinationRule?: boolean } = {},
): RolloutInput['target'] {
  const traffic =
    router === 'istio'
      ? { istio: { routes: ['primary'], ...(opts.destinationRule ? { destinationRule: app } : {}) } }
      : { [router]: {} };
  return { app, namespace: ns, workload: { kind: 'Deployment', name: app }, traffic };
}

function buildRouter(clients: KubeClients, router: KubeRouter, target: Target): TrafficRouter {
  switch (router) {
    case 'istio':
      return new IstioRouter(clients, target);
    case 'nginx':
      return new NginxRouter(clients, target);
    case 'gatewayAPI':
      return new GatewayApiRouter(clients, target);
    case 'smi':
      return new SmiRouter(clients, target);
    case 'replicas':
      return new ReplicaRatioRouter(clients, target);
  }
}

/** The canary's share in percent as the live router object says it (no object, or no canary entry: 0). */
async function liveCanaryWeight(
  admin: KubeClients,
  router: 'istio' | 'nginx' | 'gatewayAPI',
  ns: string,
  app: string,
): Promise<number> {
  const missing = (err: unknown) => (err as { code?: number }).code === 404;
  try {
    switch (router) {
      case 'istio': {
        const vs = (await admin.custom.getNamespacedCustomObject({
          ...ISTIO,
          namespace: ns,
          name: app,
        })) as Obj;
        const primary = (vs.spec?.http as Obj[] | undefined)?.find((r) => r.name === 'primary');
        const canary = (primary?.route as Obj[] | undefined)?.find((d) => d.destination?.subset === 'canary');
        return typeof canary?.weight === 'number' ? canary.weight : 0;
      }
      case 'nginx': {
        const ing = await admin.networking.readNamespacedIngress({ namespace: ns, name: `${app}-canary` });
        const a = ing.metadata?.annotations ?? {};
        if (a['nginx.ingress.kubernetes.io/canary'] !== 'true') return 0;
        return Number.parseInt(a['nginx.ingress.kubernetes.io/canary-weight'] ?? '0', 10) || 0;
      }
      case 'gatewayAPI': {
        const route = (await admin.custom.getNamespacedCustomObject({
          ...HTTP_ROUTES,
          namespace: ns,
          name: app,
        })) as Obj;
        const refs = (route.spec?.rules?.[0]?.backendRefs as Obj[] | undefined) ?? [];
        const w = (name: string) => {
          const ref = refs.find((r) => r.name === name);
          return ref ? ((ref.weight as number | undefined) ?? 1) : 0;
        };
        const canary = w(`${app}-canary`);
        const total = canary + w(app);
        return total === 0 ? 0 : Math.round((100 * canary) / total);
      }
    }
  } catch (err) {
    if (missing(err)) return 0;
    throw err;
  }
}

// --- where an abort's time goes ----------------------------------------------------------------------------

/**
 * The segments of one abort → 0, from the bench's clock (the signal sent, weight 0 seen) and the server's event times
 * (same machine, same wall clock): the signal reaching history, the workflow task that takes it being picked up, and
 * from there to weight 0 seen. That last segment holds the task's processing and, when the shift is an activity
 * scheduled through the server, the task's answer and the activity's dispatch (shown apart); when it is the local
 * activity of rollback-local-shift, the worker runs the shift while it processes the task.
 */
export const ABORT_SEGMENTS = [
  'signal sent → recorded',
  'recorded → task started',
  'task started → weight 0 seen',
  '  of which: task answered (activity)',
  '  of which: activity started → seen',
] as const;
export type AbortSegment = (typeof ABORT_SEGMENTS)[number];

type HistoryEvent = NonNullable<Awaited<ReturnType<WorkflowHandle['fetchHistory']>>['events']>[number];

function eventMs(e: HistoryEvent): number {
  const t = e.eventTime;
  return Number(t?.seconds ?? 0) * 1000 + (t?.nanos ?? 0) / 1e6;
}

/** The segments of one measured abort (those the history shows), or undefined where it shows none. */
export function abortSegments(
  events: HistoryEvent[],
  sentAtMs: number,
  seenAtMs: number,
): Partial<Record<AbortSegment, number>> | undefined {
  const signaled = events.findIndex(
    (e) => e.workflowExecutionSignaledEventAttributes?.signalName === abortSignal.name,
  );
  if (signaled < 0) return undefined;
  const taskStarted = events.find((e, i) => i > signaled && e.workflowTaskStartedEventAttributes);
  if (!taskStarted) return undefined;
  const t = { signaled: eventMs(events[signaled]), taskStarted: eventMs(taskStarted) };
  const segments: Partial<Record<AbortSegment, number>> = {
    'signal sent → recorded': t.signaled - sentAtMs,
    'recorded → task started': t.taskStarted - t.signaled,
    'task started → weight 0 seen': seenAtMs - t.taskStarted,
  };
  const scheduled = events.findIndex(
    (e, i) =>
      i > signaled && e.activityTaskScheduledEventAttributes?.activityType?.name === 'setCanaryWeight',
  );
  const scheduledId = scheduled >= 0 ? String(events[scheduled].eventId) : undefined;
  const activityStarted = events.find(
    (e) => String(e.activityTaskStartedEventAttributes?.scheduledEventId ?? '') === scheduledId,
  );
  if (scheduled >= 0 && activityStarted) {
    segments['  of which: task answered (activity)'] = eventMs(events[scheduled]) - t.taskStarted;
    segments['  of which: activity started → seen'] = seenAtMs - eventMs(activityStarted);
  }
  return segments;
}

// --- figures -----------------------------------------------------------------------------------------------

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

function stats(samples: number[]): LatencyStats {
  const sorted = [...samples].sort((a, b) => a - b);
  return {
    n: sorted.length,
    p50: percentile(sorted, 50),
    p99: percentile(sorted, 99),
    min: sorted[0],
    max: sorted[sorted.length - 1],
  };
}

/** VmHWM (peak resident set) of a process, in MiB. */
function peakRssMiB(pid: number | 'self'): number {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = Number(/^VmHWM:\s+(\d+)\s+kB/m.exec(status)?.[1]);
  if (!Number.isFinite(kib)) throw new Error(`no VmHWM in /proc/${pid}/status`);
  return kib / 1024;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

// --- 1. setWeight ------------------------------------------------------------------------------------------

async function setWeightLatency(
  kube: KubeServer,
  admin: KubeClients,
  router: KubeRouter,
  calls: number,
): Promise<{ change: LatencyStats; same: LatencyStats }> {
  const ns = await kube.createNamespace(`bench-${router.toLowerCase()}`);
  await createFixture(admin, router, ns, APP);
  const v = validateTarget(targetSpec(router, ns, APP));
  if (!v.ok) throw new Error(`bench target for ${router} is invalid: ${JSON.stringify(v.problems)}`);
  const r = buildRouter(admin, router, v.target);
  await r.setup({ stable: 'v1', canary: 'v2' });

  const change: number[] = [];
  const same: number[] = [];
  // Warm-up rounds (API discovery, TLS sessions, the JIT) are not counted.
  for (let i = 0; i < WARMUP_CALLS + calls; i++) {
    const weight = CYCLE[i % CYCLE.length];
    let t0 = performance.now();
    const changed = await r.setWeight(weight);
    const tChange = performance.now() - t0;
    t0 = performance.now();
    const again = await r.setWeight(weight);
    const tSame = performance.now() - t0;
    if (!changed.changed || again.changed) {
      throw new Error(
        `${router} setWeight(${weight}): expected a change then none, got changed=${changed.changed} then ${again.changed}`,
      );
    }
    if (i >= WARMUP_CALLS) {
      change.push(tChange);
      same.push(tSame);
    }
  }
  return { change: stats(change), same: stats(same) };
}

// --- 2. rollback through the workflow ---------------------------------------------------------------------

/** The weight every rollout here holds at (the replica ratio's 1 of 10 replicas is 10 % too). */
const STAGE_WEIGHT = 10;

/** The plan of every rollout here: it holds at STAGE_WEIGHT (analysis rounds every 15 s) until aborted. */
function holdingInput(target: RolloutInput['target']): RolloutInput {
  return {
    target,
    version: 'v2',
    requestedBy: 'bench',
    plan: {
      analysis: { interval: '15s', checks: [] },
      stages: [{ weight: STAGE_WEIGHT, hold: '1h' }, { weight: 100 }],
      promotion: { cleanupDelay: '0s' },
    },
  };
}

/**
 * Waits until the live weight is its first stage's, or fails naming where the rollout is. Not merely above 0: the
 * replica ratio grows the canary first and shrinks stable only once the canary's pods are available, and an abort
 * in between would find stable still whole (nothing for the rollback's capacity check to restore).
 */
async function untilFirstStage(
  h: { workflowId: string; describe(): Promise<{ status: { name: string } }> },
  canaryWeight: () => Promise<number>,
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while ((await canaryWeight()) < STAGE_WEIGHT) {
    if (Date.now() > deadline) {
      const d = await h.describe();
      throw new Error(
        `rollout ${h.workflowId} did not reach its first stage within ${timeoutMs / 1000} s (${d.status.name})`,
      );
    }
    await sleep(ROLLOUT_POLL_MS);
  }
}

/**
 * Starts `count` rollouts (every router in turn) in their own namespace and waits until each holds at its first
 * stage: the load the measured aborts run beside. Their analysis rounds (every 15 s) check the live weight.
 */
async function startBackground(
  kube: KubeServer,
  admin: KubeClients,
  client: Client,
  taskQueue: string,
  count: number,
): Promise<{ handles: Array<{ workflowId: string }>; stop(): Promise<void> }> {
  const ns = await kube.createNamespace('bench-background');
  const simulator = startDeploymentSimulator(kube.kubeConfig('admin'), ns, { readyAfterMs: 0 });
  const handles: Array<Awaited<ReturnType<Client['workflow']['start']>>> = [];
  const fixtures: TargetFixture[] = [];
  for (let i = 0; i < count; i++) {
    const router = KUBE_ROUTERS[i % KUBE_ROUTERS.length];
    const target = targetSpec(router, ns, `other-${i}`, { destinationRule: true });
    const validated = validateTarget(target);
    if (!validated.ok)
      throw new Error(`bench target ${ns}/other-${i}: ${JSON.stringify(validated.problems)}`);
    fixtures.push(await createTargetFixture(admin, validated.target, { stableVersion: 'v1', replicas: 10 }));
    handles.push(
      await client.workflow.start<typeof canaryRollout>('canaryRollout', {
        workflowId: rolloutWorkflowId(target),
        taskQueue,
        args: [holdingInput(target)],
      }),
    );
  }
  for (let i = 0; i < count; i++) {
    await untilFirstStage(handles[i], async () => (await fixtures[i].weights()).canary, 300_000);
  }
  return {
    handles,
    stop: async () => {
      await Promise.all(
        handles.map((h) => h.signal(abortSignal, { identity: 'bench', reason: 'bench over' })),
      );
      await Promise.all(handles.map((h) => rolloutResult(h)));
      await simulator.stop();
    },
  };
}

async function rollbackLatency(
  kube: KubeServer,
  admin: KubeClients,
  client: Client,
  taskQueue: string,
  router: RollbackRouter,
  rollouts: number,
): Promise<{ latency: LatencyStats; segments: Partial<Record<AbortSegment, LatencyStats>> }> {
  const ns = await kube.createNamespace(`bench-rollback-${router.toLowerCase()}`);
  // Stands in for the Deployment controller: the canary is "available" on the simulator's next look at it.
  const simulator = startDeploymentSimulator(kube.kubeConfig('admin'), ns, { readyAfterMs: 0 });
  const latencies: number[] = [];
  const segments: Partial<Record<AbortSegment, number>>[] = [];
  // The previous rollout's tail (canary scaled down, routing torn down, alert) runs while the next one deploys its
  // canary; it is awaited before the next abort, so no two measured windows overlap.
  let previous: Promise<void> = Promise.resolve();
  try {
    for (let i = 0; i < rollouts; i++) {
      const app = `${APP}-${i}`;
      // Everything the preflight checks (a DestinationRule, the backend Services), as the real-server tests make it.
      const target = targetSpec(router, ns, app, { destinationRule: true });
      const validated = validateTarget(target);
      if (!validated.ok) throw new Error(`bench target ${ns}/${app}: ${JSON.stringify(validated.problems)}`);
      // The replica ratio needs stable replicas enough that 10 % moves one.
      const fixture = await createTargetFixture(admin, validated.target, {
        stableVersion: 'v1',
        replicas: router === 'replicas' ? 10 : 2,
      });
      // The three routers measured before read their own object; SMI and the replica ratio read as the tests do.
      const canaryWeight =
        router === 'smi' || router === 'replicas'
          ? async () => (await fixture.weights()).canary
          : () => liveCanaryWeight(admin, router, ns, app);
      const h = await client.workflow.start<typeof canaryRollout>('canaryRollout', {
        workflowId: rolloutWorkflowId(target),
        taskQueue,
        args: [holdingInput(target)],
      });
      await untilFirstStage(h, canaryWeight, 180_000);
      await previous;
      const t0 = performance.now();
      const sentAtMs = Date.now();
      await h.signal(abortSignal, { identity: 'bench', reason: 'rollback latency probe' });
      while ((await canaryWeight()) !== 0) await sleep(ROLLOUT_POLL_MS);
      latencies.push(performance.now() - t0);
      const seenAtMs = sentAtMs + (performance.now() - t0);
      previous = rolloutResult(h).then(async (result) => {
        if (result.outcome !== 'rolled_back') {
          throw new Error(`${router} rollout ${h.workflowId} ended ${result.outcome}, expected rolled_back`);
        }
        const seg = abortSegments((await h.fetchHistory()).events ?? [], sentAtMs, seenAtMs);
        if (seg) segments.push(seg);
      });
      previous.catch(() => undefined); // awaited below; not an unhandled rejection meanwhile
    }
    await previous;
  } finally {
    await simulator.stop();
  }
  const segmentStats: Partial<Record<AbortSegment, LatencyStats>> = {};
  for (const name of ABORT_SEGMENTS) {
    const values = segments.flatMap((seg) => seg[name] ?? []);
    if (values.length > 0) segmentStats[name] = stats(values);
  }
  return { latency: stats(latencies), segments: segmentStats };
}

// --- the whole benchmark -----------------------------------------------------------------------------------

export async function benchKubeRouters(opts: KubeBenchOptions = {}): Promise<KubeBenchFigures> {
  const calls = opts.calls ?? 200;
  const rollouts = opts.rollouts ?? 20;
  const backgroundCount = opts.background ?? 100;
  const routers = KUBE_ROUTERS.filter((r) => !opts.routers || opts.routers.includes(r));
  const started = performance.now();
  // The workflow bundle is built while the servers start (it is CPU-bound; nothing is measured yet).
  const bundle = workflowBundle();
  const eager = opts.eagerActivities === true;
  const startups = await Promise.allSettled([
    startKubeServer(),
    startDevServer({
      ui: false,
      ...(eager ? { dynamicConfig: { 'system.enableActivityEagerExecution': true } } : {}),
    }),
    bundle,
  ]);
  const [kubeStart, serverStart] = startups;
  const failed = startups.find((r) => r.status === 'rejected');
  if (failed) {
    // Stop whichever server did start before reporting why the other did not.
    await Promise.all(
      [kubeStart, serverStart].map((r) => (r.status === 'fulfilled' ? r.value.stop() : undefined)),
    );
    throw failed.reason;
  }
  const kube = (kubeStart as PromiseFulfilledResult<KubeServer>).value;
  const server = (serverStart as PromiseFulfilledResult<DevServer>).value;
  let connection: Connection | undefined;
  let native: NativeConnection | undefined;
  const since = (t: number) => (performance.now() - t) / 1000;
  const startup = since(started);
  try {
    const admin = kubeClients(kube.kubeConfig('admin'));
    const setWeightStarted = performance.now();
    const setWeightChange: KubeBenchFigures['setWeightChange'] = {};
    const setWeightSame: KubeBenchFigures['setWeightSame'] = {};
    for (const router of routers) {
      const { change, same } = await setWeightLatency(kube, admin, router, calls);
      setWeightChange[router] = change;
      setWeightSame[router] = same;
    }

    const setWeightSeconds = since(setWeightStarted);
    const rollbackStarted = performance.now();
    connection = await Connection.connect({ address: server.address });
    const client = new Client({ connection });
    native = await NativeConnection.connect({ address: server.address });
    const taskQueue = 'bench-kube-rollback';
    const kubeconfig = kube.kubeconfigFile('admin');
    const worker = await Worker.create({
      connection: native,
      taskQueue,
      workflowBundle: await bundle,
      sinks: NO_METRICS_SINKS,
      activities: createActivities(
        providersFromEnv({ KUBECONFIG: kubeconfig, CANARY_ALERT_LOG: '/dev/null' }),
      ),
    });
    const rollback: KubeBenchFigures['rollback'] = {};
    const rollbackSegments: KubeBenchFigures['rollbackSegments'] = {};
    await worker
      .runUntil(async () => {
        const background = await startBackground(kube, admin, client, taskQueue, backgroundCount);
        console.error(`bench: ${backgroundCount} other rollouts holding at their first stage`);
        for (const router of routers) {
          const measured = await rollbackLatency(kube, admin, client, taskQueue, router, rollouts);
          rollback[router] = measured.latency;
          rollbackSegments[router] = measured.segments;
          console.error(`bench: ${router} measured`);
        }
        await background.stop();
      })
      .catch((err: unknown) => {
        // Said now: closing the connections below can end the process (a client retry on a closed channel) first.
        console.error('bench failed:', err);
        throw err;
      });

    const rollbackSeconds = since(rollbackStarted);
    const peak = {
      apiserver: peakRssMiB(kube.pids.apiserver),
      etcd: peakRssMiB(kube.pids.etcd),
      bench: peakRssMiB('self'),
    };
    return {
      apiserverVersion: kube.version,
      cores: os.cpus().length,
      routers,
      setWeightChange,
      setWeightSame,
      rollback,
      rollbackSegments,
      background: backgroundCount,
      eagerActivities: eager,
      peakRssMiB: peak,
      wallSeconds: since(started),
      phaseSeconds: { startup, setWeight: setWeightSeconds, rollback: rollbackSeconds },
    };
  } finally {
    await native?.close();
    await connection?.close();
    await Promise.all([kube.stop(), server.stop()]);
  }
}

/** The figures as bench.ts prints its own: a heading, then one aligned line per figure. */
export function kubeFigureLines(f: KubeBenchFigures): string[] {
  const ms = (v: number) => `${v.toFixed(1)} ms`;
  const width = Math.max(...KUBE_ROUTERS.map((r) => r.length));
  const line = (label: string, router: string, s: LatencyStats | undefined) =>
    s &&
    `  ${label.padEnd(22)}  ${router.padEnd(width)}  p50 ${ms(s.p50).padStart(8)}   p99 ${ms(s.p99).padStart(8)}   ` +
      `min ${ms(s.min).padStart(8)}   max ${ms(s.max).padStart(8)}   (n=${s.n})`;
  const lines = (label: string, figures: Partial<Record<KubeRouter, LatencyStats>>): string[] =>
    f.routers.flatMap((r) => line(label, r, figures[r]) ?? []);
  return [
    `kube routers against a local kube-apiserver ${f.apiserverVersion} (${f.cores} cores):`,
    ...lines('setWeight (changes)', f.setWeightChange),
    ...lines('setWeight (no change)', f.setWeightSame),
    `  rollback through the workflow, with ${f.background} other rollouts running on the same worker and API server` +
      `${f.eagerActivities ? ', eager activity execution on' : ''}:`,
    ...lines('rollback (abort → 0)', f.rollback),
    ...f.routers.flatMap((r) => {
      const seg = f.rollbackSegments[r];
      if (!seg) return [];
      return [
        `  where ${r}'s abort → 0 went (from its histories), p50 / p99:`,
        ...ABORT_SEGMENTS.flatMap((name) => {
          const st = seg[name];
          return st
            ? [`    ${name.padEnd(38)} ${ms(st.p50).padStart(8)} / ${ms(st.p99).padStart(8)}   (n=${st.n})`]
            : [];
        }),
      ];
    }),
    `  peak RSS                kube-apiserver ${f.peakRssMiB.apiserver.toFixed(0)} MiB   etcd ${f.peakRssMiB.etcd.toFixed(0)} MiB   ` +
      `bench process ${f.peakRssMiB.bench.toFixed(0)} MiB`,
    `  wall time               ${f.wallSeconds.toFixed(1)} s (servers ${f.phaseSeconds.startup.toFixed(1)} s, ` +
      `setWeight ${f.phaseSeconds.setWeight.toFixed(1)} s, rollouts ${f.phaseSeconds.rollback.toFixed(1)} s)`,
  ];
}

function intArg(name: string, fallback: number, min = 1): number {
  const i = process.argv.indexOf(name);
  if (i < 0) return fallback;
  const n = Number(process.argv[i + 1]);
  if (!Number.isInteger(n) || n < min) {
    console.error(`${name} must be a whole number of at least ${min}`);
    process.exit(2);
  }
  return n;
}

/** `--routers a,b`: a subset of KUBE_ROUTERS (default all of them); an unknown name exits 2. */
function routersArg(): KubeRouter[] | undefined {
  const i = process.argv.indexOf('--routers');
  if (i < 0) return undefined;
  const names = (process.argv[i + 1] ?? '').split(',').filter((n) => n !== '');
  const known = new Set<string>(KUBE_ROUTERS);
  const unknown = names.filter((n) => !known.has(n));
  if (names.length === 0 || unknown.length > 0) {
    console.error(
      `--routers takes a comma-separated list of ${KUBE_ROUTERS.join(', ')}` +
        (unknown.length > 0 ? `; unknown: ${unknown.join(', ')}` : ''),
    );
    process.exit(2);
  }
  return names as KubeRouter[];
}

if (require.main === module) {
  const routers = routersArg();
  benchKubeRouters({
    ...(routers ? { routers } : {}),
    calls: intArg('--calls', 200),
    rollouts: intArg('--rollouts', 20),
    background: intArg('--background', 100, 0),
    eagerActivities: process.argv.includes('--eager-activities'),
  }).then(
    (figures) => {
      for (const l of kubeFigureLines(figures)) console.log(l);
      process.exit(0);
    },
    (err) => {
      console.error(err);
      process.exit(3);
    },
  );
}
