// Whole canary rollouts through the real CLI and a real worker process, on a real Temporal dev server and a real
// kube-apiserver (no kubelet: a simulator in this process makes Deployments available). For each router (Istio,
// NGINX, Gateway API): a promoted rollout, and an abort mid-rollout that leaves every object as it was. Then a
// worker that may only read: its preflight refuses the rollout before anything is touched (not started, exit 3),
// naming every verb that is missing. And a shadow stage on Istio and the Gateway API: the mirror is on the live object
// while the canary serves no one, gone at the next stage, and an abort (in or after it) leaves the objects as they were.
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { stringify } from 'yaml';
import { Client, Connection } from '@temporalio/client';
import { MERGE_PATCH, kubeClients, type KubeClients } from '../../activities/kube/client';
import { SWEPT_ANNOTATION } from '../../activities/workloads/deployment';
import type { SweepResult } from '../../workflows/sweep-model';
import type { RolloutStatus } from '../../workflows/types';
import { readAlerts } from '../../harness/alerts';
import { localActivityType } from '../../harness/history';
import { startDevServer, type DevServer } from '../../demo/dev-server';
import { startKubeServer, type KubeServer } from '../../harness/kube';
import { startDeploymentSimulator, type DeploymentSimulator } from '../../harness/kube-controller';
import {
  createRolloutFixture,
  deploymentSpec,
  watchWeights,
  type RolloutFixture,
  type RouterKind,
  type RouterSnapshot,
} from '../../harness/kube-rollout';
import {
  eventually,
  killAll,
  runCli,
  startWorkerProcess,
  type CliRun,
  type WorkerProcess,
} from '../../harness/processes';

jest.setTimeout(120_000);

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'canary-kube-rollout-'));
const queue = `kube-rollout-${process.pid}-${Date.now()}`;
const deniedQueue = `${queue}-denied`;
const alertLog = path.join(dir, 'alerts.jsonl');

let server: DevServer;
let kube: KubeServer;
let admin: KubeClients;
let worker: WorkerProcess | undefined;
let deniedWorker: WorkerProcess | undefined;
const simulators: DeploymentSimulator[] = [];
let cliEnv: Record<string, string>;
let workerEnv: Record<string, string>;

function writeFile(name: string, body: unknown): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, typeof body === 'string' ? body : stringify(body));
  return file;
}

// No analysis checks: no metrics are read (the local metrics provider needs the local stack).
const promotePlan = writeFile('promote.yaml', {
  analysis: { interval: '10s', checks: [] },
  stages: [{ weight: 10, hold: '2s' }, { weight: 50, hold: '2s' }, { weight: 100 }],
  promotion: { cleanupDelay: '0s' },
});
const longPlan = writeFile('long.yaml', {
  analysis: { interval: '10s', checks: [] },
  stages: [{ weight: 10, hold: '1h' }, { weight: 100 }],
  promotion: { cleanupDelay: '0s' },
});

// Stage 1 at 25 % for an hour: the rollout is terminated there.
const quarterPlan = writeFile('quarter.yaml', {
  analysis: { interval: '10s', checks: [] },
  stages: [{ weight: 25, hold: '1h' }, { weight: 100 }],
  promotion: { cleanupDelay: '0s' },
});

const NAMESPACES: Record<RouterKind, string> = {
  istio: 'kr-istio',
  nginx: 'kr-nginx',
  gatewayAPI: 'kr-gateway',
};
const DENIED_NS = 'kr-denied';

beforeAll(async () => {
  // Both servers must be there: a missing binary fails every test with the harness's message.
  [server, kube] = await Promise.all([startDevServer(), startKubeServer({ crds: ['istio', 'gateway'] })]);
  admin = kubeClients(kube.kubeConfig('admin'));
  for (const ns of [...Object.values(NAMESPACES), DENIED_NS]) await kube.createNamespace(ns);
  for (const ns of Object.values(NAMESPACES)) {
    simulators.push(startDeploymentSimulator(kube.kubeConfig('admin'), ns, { pollMs: 100 }));
  }
  workerEnv = {
    TEMPORAL_ADDRESS: server.address,
    TEMPORAL_NAMESPACE: server.namespace,
    TEMPORAL_TASK_QUEUE: queue,
    KUBECONFIG: kube.kubeconfigFile('admin'),
    // Empty counts as unset: nothing from the calling shell overrides KUBECONFIG.
    CANARY_KUBECONFIG: '',
    CANARY_KUBE_CONTEXT: '',
    CANARY_ALERT_LOG: alertLog,
    CANARY_ALERT_WEBHOOK_URL: '',
  };
  cliEnv = {
    TEMPORAL_ADDRESS: server.address,
    TEMPORAL_NAMESPACE: server.namespace,
    TEMPORAL_TASK_QUEUE: queue,
    CANARY_IDENTITY: 'ci-bot',
    GITHUB_ACTOR: '',
  };
  worker = await startWorkerProcess(workerEnv);
}, 180_000);

let temporalClient: Client | undefined;
/** A Temporal client of the dev server, for what only the Web UI or the API does (Terminate). */
function temporal(): Client {
  temporalClient ??= new Client({
    connection: Connection.lazy({ address: server.address }),
    namespace: server.namespace,
  });
  return temporalClient;
}

afterAll(async () => {
  await temporalClient?.connection.close();
  await Promise.all(simulators.map((s) => s.stop()));
  await Promise.all([worker?.kill('SIGTERM'), deniedWorker?.kill('SIGTERM')]);
  killAll();
  await Promise.all([server?.stop(), kube?.stop()]);
});

/**
 * The steps a rollout ran after its abort (signal or update): activities scheduled through the server, and local activities (the
 * markers the worker records for them), by activity type.
 */
async function rollbackSteps(workflowId: string): Promise<{ local: string[]; scheduled: string[] }> {
  const events = (await temporal().workflow.getHandle(workflowId).fetchHistory()).events ?? [];
  const from = events.findIndex(
    (e) =>
      e.workflowExecutionSignaledEventAttributes?.signalName === 'abort' ||
      e.workflowExecutionUpdateAcceptedEventAttributes?.acceptedRequest?.input?.name === 'abortRollout',
  );
  if (from < 0) throw new Error(`no abort in the history of ${workflowId}`);
  const after = events.slice(from);
  return {
    local: after.flatMap((e) => {
      const type = localActivityType(e.markerRecordedEventAttributes);
      return type ? [type] : [];
    }),
    scheduled: after.flatMap((e) => e.activityTaskScheduledEventAttributes?.activityType?.name ?? []),
  };
}

const canary = (args: string[], env: Record<string, string> = {}, timeoutMs?: number) =>
  runCli(args, { ...cliEnv, ...env }, timeoutMs);

/** `canary start --wait --output json` for a fixture's target. */
function start(fx: RolloutFixture, plan: string, env: Record<string, string> = {}): Promise<CliRun> {
  const target = writeFile(`${fx.app}.target.yaml`, { target: fx.target });
  return canary(
    [
      'start',
      '--target',
      target,
      '--version',
      'v2',
      '--image',
      newImage(fx),
      '--plan',
      plan,
      '--wait',
      '--interval',
      '500ms',
      '--output',
      'json',
    ],
    env,
  );
}

const newImage = (fx: RolloutFixture) => fx.stableImage.replace(/:v1$/, ':v2');

/** Fails with everything needed to see why (CLI output and the worker's log tail) when the exit code differs. */
function expectExit(r: CliRun, code: number, w: WorkerProcess | undefined = worker): void {
  if (r.code !== code) {
    throw new Error(
      `expected exit ${code}, got ${r.code}\n--- stdout ---\n${r.stdout}\n--- stderr ---\n${r.stderr}\n` +
        `--- worker (tail) ---\n${(w?.output() ?? '').slice(-4000)}`,
    );
  }
}

async function status(ref: string, env: Record<string, string> = {}): Promise<RolloutStatus> {
  const r = await canary(['status', ref, '--output', 'json'], env);
  expectExit(r, 0);
  return JSON.parse(r.stdout) as RolloutStatus;
}

/** Polls until `fn` holds; fails at once when `finished` says the rollout ended first. */
async function until(
  what: string,
  fn: () => Promise<boolean>,
  finished: () => CliRun | undefined,
  timeoutMs = 60_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await fn().catch(() => false)) return;
    const done = finished();
    if (done) throw new Error(`the rollout ended before ${what}:\n${done.stdout}\n${done.stderr}`);
    if (Date.now() > deadline) {
      throw new Error(
        `timed out waiting for ${what}\n--- worker (tail) ---\n${worker?.output().slice(-4000)}`,
      );
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The pre-rollout router objects with what a promotion legitimately changes: Istio's stable subset follows v2. */
function promotedSnapshot(router: RouterKind, app: string, before: RouterSnapshot): RouterSnapshot {
  const expected = structuredClone(before);
  if (router === 'istio') {
    const dr = expected[`DestinationRule/${app}`]!.spec as {
      subsets: Array<{ name: string; labels: object }>;
    };
    dr.subsets.find((s) => s.name === 'stable')!.labels = { version: 'v2' };
  }
  return expected;
}

describe.each<RouterKind>(['istio', 'nginx', 'gatewayAPI'])('%s router', (router) => {
  const ns = NAMESPACES[router];
  const short = router === 'gatewayAPI' ? 'gw' : router;

  test('a promoted rollout: the live object walks 10 % and 50 %, stable runs v2, routing is as before', async () => {
    const fx = await createRolloutFixture(admin, router, ns, `${short}-promote`);
    const before = await fx.snapshot();
    const stableBefore = deploymentSpec(await fx.stableDeployment());
    expect(await fx.weights()).toEqual({ stable: 100, canary: 0 });

    const watch = watchWeights(fx);
    const r = await start(fx, promotePlan);
    const seen = await watch.stop();
    expectExit(r, 0);
    const final = JSON.parse(r.stdout) as RolloutStatus;
    expect(final).toMatchObject({ phase: 'promoted', app: fx.app, namespace: ns, version: 'v2', router });

    // Every stage was on the live object, in order, and traffic ended back on (the promoted) stable.
    const at = (w: number) => seen.indexOf(w);
    expect(seen).toEqual(expect.arrayContaining([10, 50, 100]));
    expect(at(10)).toBeLessThan(at(50));
    expect(at(50)).toBeLessThan(at(100));
    expect(seen[seen.length - 1]).toBe(0);
    expect(await fx.weights()).toEqual({ stable: 100, canary: 0 });

    // The canary goes after the cleanup delay (0 s), once the outcome is known.
    await until(
      'the canary Deployment to be deleted',
      async () => !(await fx.canaryDeployment()),
      () => undefined,
      30_000,
    );

    // Stable took the new image and version label; nothing else of its spec changed.
    const expectedStable = structuredClone(stableBefore);
    expectedStable.template.metadata!.labels!.version = 'v2';
    expectedStable.template.spec!.containers[0].image = newImage(fx);
    expect(deploymentSpec(await fx.stableDeployment())).toEqual(expectedStable);

    // What setup added is gone (nginx: the canary Ingress is deleted).
    expect(await fx.snapshot()).toEqual(promotedSnapshot(router, fx.app, before));

    const s = await status(`${ns}/${fx.app}`);
    expect(s).toMatchObject({ phase: 'promoted', weight: 0 });
    expect(s.rollbackReason).toBeUndefined();
    expect(s.drift).toBeUndefined();
    expect(s.retrying).toBeUndefined();
  });

  test('an abort at 10 % leaves every object exactly as it was and the canary at 0 replicas', async () => {
    const fx = await createRolloutFixture(admin, router, ns, `${short}-abort`);
    const before = await fx.snapshot();
    const stableBefore = deploymentSpec(await fx.stableDeployment());

    let finished: CliRun | undefined;
    const run = start(fx, longPlan).then((r) => (finished = r));
    await until(
      'the live object to carry 10 %',
      async () => (await fx.weights()).canary === 10,
      () => finished,
    );
    // The workflow records the weight once the shift is read back: an abort now hits the hold of stage 1.
    await until(
      'the rollout to hold stage 1 at 10 %',
      async () => {
        const s = await status(`${ns}/${fx.app}`);
        return s.phase === 'progressing' && s.stage === 1 && s.weight === 10;
      },
      () => finished,
    );

    const abort = await canary(['abort', `${ns}/${fx.app}`, '--reason', 'test']);
    expectExit(abort, 0);
    const r = await run;
    expectExit(r, 1);
    const final = JSON.parse(r.stdout) as RolloutStatus;
    expect(final.phase).toBe('rolled_back');
    expect(final.rollbackReason).toBe('aborted by ci-bot: test');

    const s = await status(`${ns}/${fx.app}`);
    expect(s).toMatchObject({ phase: 'rolled_back', weight: 0 });
    expect(s.retrying).toBeUndefined();

    expect(await fx.snapshot()).toEqual(before);
    expect(await fx.weights()).toEqual({ stable: 100, canary: 0 });
    expect(deploymentSpec(await fx.stableDeployment())).toEqual(stableBefore);
    const canaryDeployment = await fx.canaryDeployment();
    expect(canaryDeployment).toBeDefined();
    expect(canaryDeployment!.spec?.replicas).toBe(0);

    // The shift back to stable ran as a local activity (rollback-local-shift): the worker started it while it
    // processed the abort, with no activity task through the server; it then needed no persistent attempt.
    const steps = await rollbackSteps(s.workflowId);
    expect(steps.local).toEqual(['setCanaryWeight']);
    expect(steps.scheduled).not.toContain('setCanaryWeight');
    expect(steps.scheduled).toEqual(expect.arrayContaining(['scaleDownCanary', 'teardownRouting']));
  });

  test('terminated at 25 % from the Web UI: canary sweep sends traffic back to stable, alerts and leaves its record', async () => {
    const fx = await createRolloutFixture(admin, router, ns, `${short}-swept`);
    const before = await fx.snapshot();
    const stableBefore = deploymentSpec(await fx.stableDeployment());
    const workflowId = `canary.${ns}.${fx.app}`;

    let finished: CliRun | undefined;
    const run = start(fx, quarterPlan).then((r) => (finished = r));
    await until(
      'the rollout to hold stage 1 at 25 %',
      async () => {
        const s = await status(`${ns}/${fx.app}`);
        return s.phase === 'progressing' && s.stage === 1 && s.weight === 25;
      },
      () => finished,
    );
    // Terminate skips every rollback: what the Web UI's Terminate button does.
    await temporal().workflow.getHandle(workflowId).terminate('test: terminated at 25 %');
    expectExit(await run, 3);
    expect(await fx.weights()).toEqual({ stable: 75, canary: 25 });

    // A dry run says what it would do and changes nothing.
    const dry = await canary(['sweep', '--namespace', ns, '--dry-run']);
    expectExit(dry, 0);
    expect(dry.stdout).toContain(`${ns}/${fx.app} (canary 25%`);
    expect(dry.stdout).toContain(`workflow ${workflowId}: TERMINATED`);
    expect(dry.stdout).toContain('would: send traffic back to stable');
    expect(await fx.weights()).toEqual({ stable: 75, canary: 25 });

    const swept = await canary(['sweep', '--namespace', ns, '--output', 'json']);
    expectExit(swept, 0);
    const result = JSON.parse(swept.stdout) as SweepResult;
    expect(result.dryRun).toBe(false);
    expect(result.swept).toHaveLength(1);
    expect(result.swept[0]).toMatchObject({
      workflowId,
      workflowStatus: 'TERMINATED',
      namespace: ns,
      weight: 25,
      version: 'v2',
    });
    expect(result.swept[0].error).toBeUndefined();
    expect(result.swept[0].steps).toHaveLength(3);

    // Every object as before the rollout; the canary scaled down, with the sweeper's record on it.
    expect(await fx.weights()).toEqual({ stable: 100, canary: 0 });
    expect(await fx.snapshot()).toEqual(before);
    expect(deploymentSpec(await fx.stableDeployment())).toEqual(stableBefore);
    const canaryDeployment = await fx.canaryDeployment();
    expect(canaryDeployment!.spec?.replicas).toBe(0);
    const record = JSON.parse(canaryDeployment!.metadata!.annotations![SWEPT_ANNOTATION]) as object;
    expect(record).toMatchObject({ workflowId, workflowStatus: 'TERMINATED', by: 'ci-bot' });

    // The alert names the workflow and says why.
    const alerted = await eventually(
      async () =>
        readAlerts(alertLog, workflowId).find(
          (e) => e.event === 'rolled_back' && e.message.includes('sweeper'),
        ),
      10_000,
      "the sweeper's alert",
    );
    expect(alerted.message).toContain(`its workflow ${workflowId} is terminated`);

    // Nothing is left to sweep: a second sweep changes nothing.
    const again = await canary(['sweep', '--namespace', ns]);
    expectExit(again, 0);
    expect(again.stdout).toContain('nothing is stranded');
  });
});

test('with CANARY_SWEEP_EVERY the worker schedules the sweeper: a terminated rollout is swept without anyone asking', async () => {
  const ns = 'kr-scheduled';
  const sweepQueue = `${queue}-sweep`;
  await kube.createNamespace(ns);
  simulators.push(startDeploymentSimulator(kube.kubeConfig('admin'), ns, { pollMs: 100 }));
  const sweeper = await startWorkerProcess({
    ...workerEnv,
    TEMPORAL_TASK_QUEUE: sweepQueue,
    CANARY_SWEEP_EVERY: '10s',
    CANARY_SWEEP_NAMESPACES: ns,
  });
  try {
    await eventually(
      async () => (sweeper.output().includes('sweep schedule created (every 10 s)') ? true : undefined),
      10_000,
      `the worker to create its sweep schedule\n${sweeper.output()}`,
    );
    const schedule = await temporal().schedule.getHandle(`canary-sweeper.${sweepQueue}`).describe();
    expect(schedule.spec.intervals?.[0]?.every).toBe(10_000);

    const fx = await createRolloutFixture(admin, 'istio', ns, 'shop-scheduled');
    const before = await fx.snapshot();
    const workflowId = `canary.${ns}.${fx.app}`;
    const env = { TEMPORAL_TASK_QUEUE: sweepQueue };
    let finished: CliRun | undefined;
    const run = start(fx, quarterPlan, env).then((r) => (finished = r));
    await until(
      'the rollout to hold stage 1 at 25 %',
      async () => (await status(workflowId, env)).weight === 25,
      () => finished,
    );
    await temporal().workflow.getHandle(workflowId).terminate('test: terminated at 25 %');
    expectExit(await run, 3, sweeper);

    // Within two intervals, the schedule's sweep put everything back; its record on the canary comes last.
    await eventually(
      async () => {
        const d = await fx.canaryDeployment();
        return d?.metadata?.annotations?.[SWEPT_ANNOTATION] ? d : undefined;
      },
      30_000,
      'the scheduled sweep to leave its record on the canary',
    );
    expect(await fx.weights()).toEqual({ stable: 100, canary: 0 });
    expect(await fx.snapshot()).toEqual(before);
    expect((await fx.canaryDeployment())!.spec?.replicas).toBe(0);
    const record = JSON.parse(
      (await fx.canaryDeployment())!.metadata!.annotations![SWEPT_ANNOTATION],
    ) as object;
    expect(record).toMatchObject({ workflowId, by: 'schedule' });
  } finally {
    await temporal()
      .schedule.getHandle(`canary-sweeper.${sweepQueue}`)
      .delete()
      .catch(() => undefined);
    await sweeper.kill('SIGKILL');
  }
});

// A shadow stage first: the worker mirrors 20 % of GET requests to the canary, then serves it 10 %.
const shadowPlan = writeFile('shadow.yaml', {
  analysis: { interval: '10s', checks: [] },
  // The shadow stage holds long enough for the test to read it through the CLI: a 3 s hold passed before a `canary
  // status` process answered on a loaded machine.
  stages: [{ weight: 0, mirror: 20, hold: '10s' }, { weight: 10, hold: '1h' }, { weight: 100 }],
  promotion: { cleanupDelay: '0s' },
});

/** The mirror the live router object carries: Istio's mirror route, or the Gateway API's RequestMirror rule. */
async function liveMirror(fx: RolloutFixture): Promise<{ methods: unknown[]; percent: unknown } | undefined> {
  const snapshot = await fx.snapshot();
  type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
  if (fx.router === 'istio') {
    const http = ((snapshot[`VirtualService/${fx.app}`]?.spec as Obj).http ?? []) as Obj[];
    const route = http.find((h) => h.name === 'canary-mirror');
    if (!route) return undefined;
    return {
      methods: (route.match as Obj[]).map((m) => m.method),
      percent: route.mirrorPercentage?.value,
    };
  }
  const rules = ((snapshot[`HTTPRoute/${fx.app}`]?.spec as Obj).rules ?? []) as Obj[];
  const rule = rules.find((r) => r.name === 'canary-mirror-0');
  if (!rule) return undefined;
  return {
    methods: (rule.matches as Obj[]).map((m) => m.method),
    percent: (rule.filters as Obj[]).find((f) => f.type === 'RequestMirror')?.requestMirror?.percent,
  };
}

describe.each<RouterKind>(['istio', 'gatewayAPI'])('%s router, a shadow stage', (router) => {
  const ns = NAMESPACES[router];
  const short = router === 'gatewayAPI' ? 'gw' : router;

  test('mirrors GET while the canary serves no one, drops the mirror at the next stage, and an abort leaves the objects as they were', async () => {
    const fx = await createRolloutFixture(admin, router, ns, `${short}-shadow`);
    const before = await fx.snapshot();
    let finished: CliRun | undefined;
    const run = start(fx, shadowPlan).then((r) => (finished = r));
    await until(
      'the live object to carry the mirror',
      async () => (await liveMirror(fx)) !== undefined,
      () => finished,
    );
    expect(await liveMirror(fx)).toEqual({
      methods: [router === 'istio' ? { exact: 'GET' } : 'GET'],
      percent: 20,
    });
    expect(await fx.weights()).toEqual({ stable: 100, canary: 0 });
    const shadow = await status(`${ns}/${fx.app}`);
    expect(shadow).toMatchObject({
      stage: 1,
      weight: 0,
      mirroring: 'mirroring 20 % of GET requests to the canary',
    });

    // The next stage: 10 % served, the mirror gone.
    await until(
      'the rollout to hold stage 2 at 10 %',
      async () => {
        const s = await status(`${ns}/${fx.app}`);
        return s.phase === 'progressing' && s.stage === 2 && s.weight === 10;
      },
      () => finished,
    );
    expect(await fx.weights()).toEqual({ stable: 90, canary: 10 });
    expect(await liveMirror(fx)).toBeUndefined();
    expect((await status(`${ns}/${fx.app}`)).mirroring).toBeUndefined();

    // A rollback leaves the router objects exactly as they were.
    expectExit(await canary(['abort', `${ns}/${fx.app}`, '--reason', 'test']), 0);
    expectExit(await run, 1);
    expect(await fx.snapshot()).toEqual(before);
  });

  test('an abort during the shadow stage removes the mirror', async () => {
    const fx = await createRolloutFixture(admin, router, ns, `${short}-shadow-abort`);
    const before = await fx.snapshot();
    const longShadow = writeFile(`${short}-long-shadow.yaml`, {
      analysis: { interval: '10s', checks: [] },
      stages: [{ weight: 0, mirror: 50, mirrorMethods: ['GET', 'HEAD'], hold: '1h' }, { weight: 100 }],
      promotion: { cleanupDelay: '0s' },
    });
    let finished: CliRun | undefined;
    const run = start(fx, longShadow).then((r) => (finished = r));
    await until(
      'the rollout to hold the shadow stage',
      async () =>
        (await status(`${ns}/${fx.app}`)).mirroring !== undefined && (await liveMirror(fx)) !== undefined,
      () => finished,
    );
    expect((await liveMirror(fx))?.percent).toBe(50);
    expectExit(await canary(['abort', `${ns}/${fx.app}`, '--reason', 'test']), 0);
    expectExit(await run, 1);
    expect(await liveMirror(fx)).toBeUndefined();
    expect(await fx.snapshot()).toEqual(before);
  });
});

test('a worker that may only read: the preflight refuses at once, nothing touched, naming every missing verb', async () => {
  const fx = await createRolloutFixture(admin, 'nginx', DENIED_NS, 'shop-denied');
  await kube.grant(DENIED_NS, 'read-only', [
    { apiGroups: ['apps'], resources: ['deployments'], verbs: ['get', 'list'] },
    { apiGroups: ['networking.k8s.io'], resources: ['ingresses'], verbs: ['get', 'list'] },
  ]);
  deniedWorker = await startWorkerProcess({
    ...workerEnv,
    KUBECONFIG: kube.kubeconfigFile('restricted'),
    TEMPORAL_TASK_QUEUE: deniedQueue,
  });
  const before = await fx.snapshot();
  const stableBefore = deploymentSpec(await fx.stableDeployment());

  const t0 = Date.now();
  const r = await start(fx, promotePlan, { TEMPORAL_TASK_QUEUE: deniedQueue });
  const elapsedMs = Date.now() - t0;
  // The worker's RBAC is its environment, not the user's input: exit 3.
  expectExit(r, 3, deniedWorker);
  // The first step answers: no retries, no rollback.
  expect(elapsedMs).toBeLessThan(15_000);

  const final = JSON.parse(r.stdout) as RolloutStatus;
  expect(final.phase).toBe('not_started');
  expect(final.preflight).toMatchObject({ state: 'failed', cause: 'infrastructure' });
  const refusals = (final.preflight?.findings ?? []).filter((f) => f.level === 'refuse');
  const messages = refusals.map((f) => f.message).join('\n');
  expect(messages).toMatch(
    new RegExp(`may not create, patch, delete deployments\\.apps in namespace "${DENIED_NS}"`),
  );
  expect(messages).toContain('deploy/rbac.yaml');
  expect(refusals.every((f) => f.area === 'access' && f.cause === 'infrastructure')).toBe(true);

  const s = await status(`${DENIED_NS}/${fx.app}`, { TEMPORAL_TASK_QUEUE: deniedQueue });
  expect(s).toMatchObject({ phase: 'not_started', weight: 0 });
  expect(s.retrying).toBeUndefined();

  // The alert says it did not start, and why (sent before the workflow ends).
  const alerted = await eventually(
    async () => readAlerts(alertLog, final.workflowId).find((e) => e.event === 'not_started'),
    10_000,
    'the not_started alert',
  );
  expect(alerted.message).toContain('did not start: nothing was changed');
  expect(readAlerts(alertLog, final.workflowId).map((e) => e.event)).toEqual(['not_started']);

  // Nothing was created or changed.
  expect(await fx.canaryDeployment()).toBeUndefined();
  expect(await fx.snapshot()).toEqual(before);
  expect(deploymentSpec(await fx.stableDeployment())).toEqual(stableBefore);
});

/**
 * A TCP proxy in front of the API server: closing it is a lost cluster for whoever connects through it (connections
 * refused at once, open ones cut), reopening it on the same port brings the cluster back.
 */
async function apiProxy(
  target: URL,
): Promise<{ url: string; close(): Promise<void>; reopen(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  let listener: net.Server | undefined;
  let port = 0;
  const open = () =>
    new Promise<void>((resolve, reject) => {
      const s = net.createServer((client) => {
        const upstream = net.connect(Number(target.port), target.hostname);
        for (const sock of [client, upstream]) {
          sockets.add(sock);
          sock.on('close', () => sockets.delete(sock));
          sock.on('error', () => undefined);
        }
        client.pipe(upstream).pipe(client);
      });
      s.once('error', reject);
      s.listen(port, '127.0.0.1', () => {
        port = (s.address() as net.AddressInfo).port;
        listener = s;
        resolve();
      });
    });
  await open();
  return {
    url: `https://127.0.0.1:${port}`,
    close: async () => {
      const s = listener;
      listener = undefined;
      for (const sock of sockets) sock.destroy();
      await new Promise<void>((resolve) => (s ? s.close(() => resolve()) : resolve()));
    },
    reopen: open,
  };
}

test('a rollback stuck on a lost cluster: canary resolve ends it once traffic is on stable by hand; a new version then starts', async () => {
  const ns = 'kr-lost';
  await kube.createNamespace(ns);
  simulators.push(startDeploymentSimulator(kube.kubeConfig('admin'), ns, { pollMs: 100 }));
  const fx = await createRolloutFixture(admin, 'nginx', ns, 'shop-lost');
  // The worker reaches the API server through a proxy this test can close.
  const proxy = await apiProxy(new URL(kube.url));
  const config = JSON.parse(kube.kubeConfig('admin').exportConfig()) as {
    clusters: Array<{ cluster: { server: string } }>;
  };
  for (const c of config.clusters) c.cluster.server = proxy.url;
  const lostQueue = `${queue}-lost`;
  const lostWorker = await startWorkerProcess({
    ...workerEnv,
    KUBECONFIG: writeFile('lost.kubeconfig', config),
    TEMPORAL_TASK_QUEUE: lostQueue,
  });
  const env = { TEMPORAL_TASK_QUEUE: lostQueue };
  const ref = `${ns}/${fx.app}`;
  try {
    const target = writeFile(`${fx.app}.target.yaml`, { target: fx.target });
    const started = await canary(
      ['start', '--target', target, '--version', 'v2', '--image', newImage(fx), '--plan', longPlan],
      env,
    );
    expectExit(started, 0, lostWorker);
    expect(started.stdout).toContain('Preflight:    passed');
    await until(
      'the canary at 10 %',
      async () => (await fx.weights()).canary === 10,
      () => undefined,
    );
    await until(
      'the rollout to hold stage 1',
      async () => (await status(ref, env)).weight === 10,
      () => undefined,
    );

    await proxy.close();
    expectExit(await canary(['abort', ref, '--reason', 'p95 spike'], env), 0);
    await until(
      'the rollback to be stuck on the lost cluster',
      async () => (await status(ref, env)).retrying !== undefined,
      () => undefined,
    );
    const stuck = await status(ref, env);
    expect(stuck.phase).toBe('rolling_back');
    // Stable's capacity is checked inside the step that sends traffic back (machine-v2): that step is stuck.
    expect(stuck.retrying).toMatchObject({ step: 'send traffic back to stable' });
    expect(stuck.retrying?.error).toMatch(/ECONNREFUSED|socket hang up|ECONNRESET/);
    expect(stuck.retrying?.resolve).toMatch(/resolve canary\.kr-lost\.shop-lost --confirm-traffic-restored/);
    const alert = await eventually(
      async () => readAlerts(alertLog, stuck.workflowId).find((e) => e.event === 'stuck'),
      10_000,
      'the stuck alert',
    );
    expect(alert.message).toContain('--confirm-traffic-restored');

    // A new version is told what can help: resolve, not abort.
    const blocked = await canary(
      [
        'start',
        '--target',
        target,
        '--version',
        'v3',
        '--image',
        newImage(fx).replace(':v2', ':v3'),
        '--plan',
        longPlan,
      ],
      env,
    );
    expectExit(blocked, 2, lostWorker);
    expect(blocked.stderr).toMatch(/is rolling back.*It is stuck.*resolve .* --confirm-traffic-restored/s);
    expect(blocked.stderr).not.toMatch(/abort it/);
    // Resolve is refused without the confirmation, before anything is sent.
    const unconfirmed = await canary(['resolve', ref, '--reason', 'by hand'], env);
    expectExit(unconfirmed, 2, lostWorker);
    expect(unconfirmed.stderr).toContain('--confirm-traffic-restored');

    // A person puts the traffic back on stable with their own access, then resolves.
    await admin.networking.patchNamespacedIngress(
      {
        namespace: ns,
        name: `${fx.app}-canary`,
        body: { metadata: { annotations: { 'nginx.ingress.kubernetes.io/canary-weight': '0' } } },
      },
      MERGE_PATCH,
    );
    expect(await fx.weights()).toEqual({ stable: 100, canary: 0 });
    const resolved = await canary(
      ['resolve', ref, '--confirm-traffic-restored', '--reason', 'weight set to 0 by hand', '--as', 'oncall'],
      env,
    );
    expectExit(resolved, 0, lostWorker);
    await until(
      'the rollout to end',
      async () => (await status(ref, env)).phase === 'rolled_back',
      () => undefined,
    );
    const ended = await status(ref, env);
    expect(ended).toMatchObject({
      phase: 'rolled_back',
      weight: 0,
      ending: { kind: 'abort', by: 'ci-bot' },
      resolved: { by: 'oncall', reason: 'weight set to 0 by hand' },
    });
    expect(ended.rollbackReason).toBe(
      'aborted by ci-bot: p95 spike; resolved by hand by oncall: weight set to 0 by hand',
    );
    // The first shift back ran at once in the worker (a local activity) and failed on the lost cluster; the
    // persistent step that status showed stuck took over.
    const steps = await rollbackSteps(ended.workflowId);
    expect(steps.local).toEqual(['setCanaryWeight']);
    expect(steps.scheduled).toContain('setCanaryWeight');

    // The cluster comes back; the target is free: the next version starts (its preflight passes).
    await proxy.reopen();
    const next = await canary(
      [
        'start',
        '--target',
        target,
        '--version',
        'v3',
        '--image',
        newImage(fx).replace(':v2', ':v3'),
        '--plan',
        longPlan,
      ],
      env,
    );
    expectExit(next, 0, lostWorker);
    await until(
      'v3 at 10 %',
      async () => (await status(ref, env)).version === 'v3',
      () => undefined,
    );
    expectExit(await canary(['abort', ref, '--reason', 'done'], env), 0);
    await until(
      'v3 rolled back',
      async () => (await status(ref, env)).phase === 'rolled_back',
      () => undefined,
    );
  } finally {
    await proxy.close().catch(() => undefined);
    await lostWorker.kill('SIGTERM');
  }
});
