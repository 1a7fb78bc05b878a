// Job hooks on a real kube-apiserver (activities/hooks): the Job is created (labelled with the rollout, with its
// deadline and TTL), waited for, its pods read (there is no kubelet here, so the excerpt says why there are no
// logs), and deleted. Job status is driven by harness/kube-jobs.ts the way kube-controller.ts drives Deployments.
import { BatchV1Api, type V1Job } from '@kubernetes/client-node';
import { ApplicationFailure } from '@temporalio/common';
import { createHookActivities, type HookRunInput } from '../../activities/hooks';
import { JOB_NAME_LABEL, JOB_ROLLOUT_LABEL, JobRunner, jobName } from '../../activities/hooks/job';
import { kubeClients, type KubeClients } from '../../activities/kube/client';
import type { Hook, JobHookAction } from '../../workflows/plan-hooks';
import { startKubeServer, statusOf, type KubeServer } from '../../harness/kube';
import { startJobSimulator, type JobSimulator } from '../../harness/kube-jobs';
import { measureJobCheck } from '../../activities/hooks/job-check';
import type { AnalysisCheck } from '../../workflows/analysis-model';
import type { LoadStartInput } from '../../activities/hooks/load';
import type { StepCommand, StepName } from '../../workflows/machine/port';
import type { PlanSpec } from '../../workflows/plan';
import { runScenario } from '../unit/machine-sim';

jest.setTimeout(120_000);

const NS = 'hooked';
let kube: KubeServer;
let admin: KubeClients;
let sim: JobSimulator;
const exitCodes = new Map<string, number>();

beforeAll(async () => {
  kube = await startKubeServer({ crds: 'none' });
  admin = kubeClients(kube.kubeConfig('admin'));
  await kube.createNamespace(NS);
  sim = startJobSimulator(kube.kubeConfig('admin'), NS, {
    exitCode: (name) => [...exitCodes].find(([prefix]) => name.startsWith(prefix))?.[1] ?? 0,
    hangs: (name) => name.includes('-hangs-'),
  });
});

afterAll(async () => {
  await sim?.stop();
  await kube?.stop();
});

const TEMPLATE = {
  spec: {
    containers: [
      { name: 'smoke', image: 'busybox:1.36', command: ['sh', '-c', 'wget -qO- http://checkout'] },
    ],
  },
};

function input(name: string, action: Partial<JobHookAction> = {}, attempt = 1): HookRunInput {
  const hook: Hook = {
    name,
    point: 'before',
    onFailure: 'abort',
    action: { kind: 'job', template: TEMPLATE, timeoutMs: 30_000, ttlMs: 600_000, ...action },
  };
  return {
    target: { app: 'checkout', namespace: NS },
    hook,
    rolloutId: 'canary-hooked-checkout',
    version: 'v2',
    stage: 1,
    weight: 0,
    point: 'before',
    attempt,
    idempotencyKey: `canary-hooked-checkout/run-1/before/1/${name}/${attempt}`,
  };
}

const activities = createHookActivities({ kube: () => admin });
const batch = () => kube.kubeConfig('admin').makeApiClient(BatchV1Api);
/** Polls `fn` every 50 ms for up to 10 s. */
async function until(fn: () => Promise<boolean>): Promise<void> {
  for (const deadline = Date.now() + 10_000; !(await fn());) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 50));
  }
}
const jobExists = async (name: string) => {
  try {
    await batch().readNamespacedJob({ name, namespace: NS });
    return true;
  } catch (err) {
    if (statusOf(err) === 404) return false;
    throw err;
  }
};

test('a Job hook is created, labelled, waited for, read and deleted', async () => {
  const i = input('smoke');
  const name = jobName('hook-smoke', i.idempotencyKey);
  const r = await activities.runHook(i);
  expect(r.result).toBe('ok');
  expect(r.detail).toBe(`job ${name} succeeded (exit code 0)`);
  // No kubelet: the pod exists, its logs cannot be read, and the excerpt says so rather than failing the hook.
  expect(r.excerpt).toMatch(new RegExp(`^\\(no logs from pod ${name}-sim: .+\\)$`));
  const job = sim.seen.find((j) => j.metadata?.name === name)!;
  expect(job.metadata?.labels).toMatchObject({
    'app.kubernetes.io/managed-by': 'temporal-canary',
    [JOB_ROLLOUT_LABEL]: 'canary-hooked-checkout',
  });
  expect(job.spec).toMatchObject({
    backoffLimit: 0,
    activeDeadlineSeconds: 30,
    ttlSecondsAfterFinished: 600,
  });
  expect(job.spec?.template.metadata?.labels?.[JOB_NAME_LABEL]).toBe(name);
  expect(job.spec?.template.spec?.restartPolicy).toBe('Never');
  expect(await jobExists(name)).toBe(false); // deleted once read
});

test('a retried run adopts the Job an earlier attempt created; the next ask gets a new one', async () => {
  const i = input('adopt');
  const name = jobName('hook-adopt', i.idempotencyKey);
  // An earlier attempt created the Job, then its worker died.
  const runner = new JobRunner(admin);
  const spec = { namespace: NS, name, labels: {}, podTemplate: TEMPLATE, timeoutMs: 30_000, ttlSeconds: 60 };
  expect(await runner.start(spec)).toEqual({ adopted: false });
  expect(await runner.start(spec)).toEqual({ adopted: true });
  const r = await activities.runHook(i);
  expect(r.result).toBe('ok');
  expect(sim.seen.filter((j) => j.metadata?.name === name)).toHaveLength(1);
  const next = jobName('hook-adopt', input('adopt', {}, 2).idempotencyKey);
  expect(next).not.toBe(name);
});

test('a failing Job fails the hook; exit code 75 is "not yet" for a confirm gate', async () => {
  exitCodes.set('hook-broken', 1);
  exitCodes.set('hook-later', 75);
  const failed = await activities.runHook(input('broken'));
  expect(failed.result).toBe('failed');
  expect(failed.detail).toMatch(/failed \(exit code 1\): BackoffLimitExceeded/);
  const later = await activities.runHook(input('later'));
  expect(later.result).toBe('not_ready');
});

test('a pod template from a ConfigMap; one without containers is refused, not retried', async () => {
  await admin.core.createNamespacedConfigMap({
    namespace: NS,
    body: {
      metadata: { name: 'hooks' },
      data: {
        smoke: 'spec:\n  containers:\n    - name: smoke\n      image: busybox:1.36\n',
        empty: 'spec:\n  containers: []\n',
      },
    },
  });
  const ok = await activities.runHook(
    input('from-cm', { template: undefined, configMapRef: { name: 'hooks', key: 'smoke' } }),
  );
  expect(ok.result).toBe('ok');
  const refused = activities.runHook(
    input('empty-cm', { template: undefined, configMapRef: { name: 'hooks', key: 'empty' } }),
  );
  await expect(refused).rejects.toBeInstanceOf(ApplicationFailure);
  await expect(refused).rejects.toMatchObject({
    nonRetryable: true,
    message:
      'hook empty-cm: configmap hooks key empty must be a pod template with spec.containers (at least one)',
  });
  const missing = activities.runHook(
    input('no-key', { template: undefined, configMapRef: { name: 'hooks', key: 'nope' } }),
  );
  await expect(missing).rejects.toMatchObject({ nonRetryable: true });
});

describe('job checks (analysis): one Job per round, its end is the value', () => {
  const check = (name: string, timeoutMs = 30_000): AnalysisCheck => ({
    name,
    job: { kind: 'job', template: TEMPLATE, timeoutMs, ttlMs: 600_000 },
    windowMs: 60_000,
    success: { value: { min: 1 } },
    abort: { band: { value: { min: 1 } }, severity: 'critical', persist: { kind: 'consecutive', rounds: 1 } },
    onNoData: { action: 'hold', limit: 3, then: 'rollback' },
    onQueryError: { limit: 3, then: 'rollback' },
  });
  const round = (n: number) => ({
    namespace: NS,
    rolloutId: 'canary.hooked.checkout',
    roundKey: `id/run/1/${n}`,
  });

  test('a Job that succeeds is 1, one that fails is 0, each with its end for status; the Job is gone after', async () => {
    const t0 = Date.now();
    const ok = await measureJobCheck(check('smoke'), round(1), () => admin, { pollMs: 100 });
    const tookMs = Date.now() - t0;
    const name = jobName('check-smoke', 'id/run/1/1/smoke');
    expect(ok).toMatchObject({
      value: 1,
      detail: expect.stringMatching(`^job ${name} succeeded \\(exit code 0\\)`),
    });
    expect(sim.seen.find((j) => j.metadata?.name === name)?.metadata?.labels).toMatchObject({
      [JOB_ROLLOUT_LABEL]: 'canary.hooked.checkout',
      'canary.temporal.io/purpose': 'check-smoke',
    });
    expect(await jobExists(name)).toBe(false);
    // The round's cost against the API server: Job created → simulated run (300 ms) → judged → deleted.
    expect(tookMs).toBeLessThan(10_000);
    console.log(`job check round: ${tookMs} ms (Job created, simulated 300 ms run, read, deleted)`);

    exitCodes.set('check-broken', 1);
    const bad = await measureJobCheck(check('broken'), round(1), () => admin, { pollMs: 100 });
    expect(bad).toMatchObject({
      value: 0,
      detail: expect.stringMatching(/failed \(exit code 1\): BackoffLimitExceeded/),
    });
  });

  test('a cancelled round (an abort mid-round) deletes its Job at once, not at its deadline or TTL', async () => {
    const name = jobName('check-x-hangs-1', 'id/run/1/9/x-hangs-1');
    const cancel = new AbortController();
    const measuring = measureJobCheck(check('x-hangs-1'), round(9), () => admin, {
      pollMs: 100,
      cancelled: cancel.signal,
    });
    await until(() => jobExists(name));
    cancel.abort(new Error('cancelled: the rollout was aborted'));
    await expect(measuring).rejects.toThrow('cancelled: the rollout was aborted');
    expect(await jobExists(name)).toBe(false);

    // The runner on its own (what hooks use): the same.
    const hook = new AbortController();
    const runner = new JobRunner(admin, { pollMs: 100, cancelled: hook.signal });
    const spec = {
      namespace: NS,
      name: 'hook-x-hangs-2',
      labels: {},
      podTemplate: TEMPLATE,
      timeoutMs: 30_000,
      ttlSeconds: 600,
    };
    const running = runner.run(spec);
    await until(() => jobExists(spec.name));
    hook.abort();
    await expect(running).rejects.toThrow();
    expect(await jobExists(spec.name)).toBe(false);
  });

  test('a retried round adopts its Job; a worker without a cluster has no evidence', async () => {
    const runner = new JobRunner(admin);
    const name = jobName('check-adopted', 'id/run/1/2/adopted');
    await runner.start({
      namespace: NS,
      name,
      labels: {},
      podTemplate: TEMPLATE,
      timeoutMs: 30_000,
      ttlSeconds: 60,
    });
    const r = await measureJobCheck(check('adopted'), round(2), () => admin, { pollMs: 100 });
    expect(r.value).toBe(1);
    expect(sim.seen.filter((j) => j.metadata?.name === name)).toHaveLength(1);

    // No cluster on the worker: no evidence, said plainly.
    const none = await measureJobCheck(check('smoke'), round(3), undefined);
    expect(none).toMatchObject({ value: null, error: { kind: 'auth' } });
  });
});

describe('load during analysis: the stage load Job on a real API server, started and stopped by the machine', () => {
  const hooks = createHookActivities({ kube: () => admin });
  const plan = {
    load: { rate: 10, concurrency: 2, url: 'http://checkout-canary.hooked/' },
    stages: [
      { weight: 10, hold: '5m' },
      { weight: 50, hold: '5m', load: false },
      { weight: 100, hold: '2m' },
    ],
    promotion: { cleanupDelay: '0s' },
  } as unknown as PlanSpec;
  const failedYet = async (name: string) => {
    for (let i = 0; i < 50; i++) {
      const job = await batch().readNamespacedJob({ name, namespace: NS });
      if (job.status?.conditions?.some((c) => c.type === 'Failed')) return;
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  /** The machine's load steps, carried out by the real activities; what exists on the API server after each. */
  function onServer(seen: string[], waitForFailure = false) {
    return async (c: StepCommand<StepName>): Promise<unknown> => {
      if (c.step !== 'startLoad' && c.step !== 'stopLoad') return undefined;
      const target = { app: 'checkout', namespace: NS };
      if (c.step === 'startLoad') {
        const input = { ...(c.args[0] as LoadStartInput), target };
        const r = await hooks.startLoad(input);
        // A retried start adopts the Job the first attempt made.
        expect((await hooks.startLoad(input)).adopted).toBe(true);
        seen.push(`start stage ${input.stage}: exists ${await jobExists(r.job)}`);
        started.push(await batch().readNamespacedJob({ name: r.job, namespace: NS }));
        return r;
      }
      const job = (c.args[0] as { job: string }).job;
      if (waitForFailure) await failedYet(job);
      const r = await hooks.stopLoad({ target, job });
      seen.push(`stop ${job.split('-').slice(0, 3).join('-')}: exists ${await jobExists(job)}`);
      return r;
    };
  }
  const sim = { neverStuck: true, alertsV2: true, machineV2: true } as const;
  /** The load Jobs as the API server had them once started. */
  const started: V1Job[] = [];

  test('the Job exists while its stage runs and is gone when the stage ends; a stage without load has none', async () => {
    const seen: string[] = [];
    const r = await runScenario({ ...sim, plan, events: [], stepAnswer: onServer(seen) });
    expect(r.outcome).toBe('promoted');
    expect(seen).toEqual([
      'start stage 1: exists true',
      'stop load-stage-1: exists false',
      'start stage 3: exists true',
      'stop load-stage-3: exists false',
    ]);
    const job = started.find((j) => j.metadata?.name?.startsWith('load-stage-1'));
    expect(job?.metadata?.labels).toMatchObject({ 'canary.temporal.io/purpose': 'load' });
    expect(job?.spec?.template.spec?.containers[0].args).toEqual([
      '-z',
      '86400s',
      '-q',
      '5',
      '-c',
      '2',
      'http://checkout-canary.hooked/',
    ]);
  });

  test('a rollback stops it (after traffic is back on stable); a load that failed only warns', async () => {
    exitCodes.set('load-stage-1', 1);
    const seen: string[] = [];
    const r = await runScenario({
      ...sim,
      plan,
      events: [
        { k: 'advance', ms: 60_000 },
        { k: 'msg', m: 'abort', who: 'alice' },
      ],
      stepAnswer: onServer(seen, true),
    });
    exitCodes.delete('load-stage-1');
    expect(r.outcome).toBe('rolled_back');
    expect(seen).toEqual(['start stage 1: exists true', 'stop load-stage-1: exists false']);
    expect(r.alerts.filter((a) => a.kind === 'hook_failed').map((a) => a.message)).toEqual([
      expect.stringMatching(
        /load of stage 1 \(job load-stage-1-\w+\) failed: BackoffLimitExceeded.*the rollout goes on/,
      ),
    ]);
    expect(r.result?.reason).toMatch(/aborted by alice/);
  });
});
