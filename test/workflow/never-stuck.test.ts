// A rollout never stays stuck, and the approval policy holds on every path (issue 21), on the time-skipping server
// against the real local stack: the preflight ends a rollout that cannot work as "not started" with nothing touched;
// a rollback undoes only what was changed; a rollback stuck on a failing step is resolved by a person; a promotion
// cannot pass a two-person gate with one person; each human action at each kind of gate; stages advance on a round
// taken at the end of their hold; a stage that waits for evidence alerts; the soak keeps the old version running.
import { ApplicationFailure, WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import { RolloutClient, rolloutResult } from '../../client/index';
import { MINUTE, RolloutBench, rejection } from '../../harness/rollout-env';
import type { ProviderRegistry, ProviderSource } from '../../activities/factory';
import type { TrafficRouter, WorkloadManager } from '../../activities/types';
import { ProviderError } from '../../activities/types';
import {
  abortSignal,
  approveUpdate,
  pauseUpdate,
  promoteUpdate,
  resolveUpdate,
  resumeUpdate,
  statusQuery,
} from '../../workflows/api';
import type { PlanSpec } from '../../workflows/plan';
import type { PreflightFinding } from '../../workflows/types';
import type { canaryRollout } from '../../workflows';

jest.setTimeout(300_000);

type Handle = WorkflowHandle<typeof canaryRollout>;

/** What the wrapped providers do, set per test. */
const faults: {
  /** Findings the router's preflight reports; a function may throw instead. */
  preflight?: () => PreflightFinding[];
  /** setWeight fails for these weights (a cluster lost after the rollout moved traffic). */
  failWeights?: Set<number>;
  /** ensureCanary fails permanently (the canary cannot be made). */
  canaryFails?: boolean;
  /** Every call the router got, in order. */
  routerCalls: string[];
  /** A preflight that takes its time (resolves when the test says). */
  slowPreflight?: () => Promise<PreflightFinding[]>;
} = { routerCalls: [] };

/** The real local providers, with a router and a workload manager a test can make fail. */
function wrapped(real: ProviderRegistry): ProviderSource {
  return {
    alerts: real.alerts,
    alertSinks: real.alertSinks,
    metrics: (t) => real.metrics(t),
    router: (t): TrafficRouter => {
      const r = real.router(t);
      return {
        type: r.type,
        setup: (v) => (faults.routerCalls.push('setup'), r.setup(v)),
        getWeight: () => r.getWeight(),
        setWeight: async (w) => {
          faults.routerCalls.push(`setWeight ${w}`);
          if (faults.failWeights?.has(w))
            throw new Error(`connect ECONNREFUSED 127.0.0.1:6443 (weight ${w})`);
          return r.setWeight(w);
        },
        verifyWeight: (w) => r.verifyWeight(w),
        teardown: async () => {
          faults.routerCalls.push('teardown');
          if (faults.failWeights?.has(0)) throw new Error('connect ECONNREFUSED 127.0.0.1:6443 (teardown)');
          return r.teardown();
        },
        preflight: async () => (faults.slowPreflight ? faults.slowPreflight() : (faults.preflight?.() ?? [])),
      };
    },
    workloads: (t): WorkloadManager => {
      const w = real.workloads(t);
      return {
        type: w.type,
        ensureCanary: async (version, image) => {
          if (faults.canaryFails) throw new ProviderError('deadline', 'the canary did not become available');
          return w.ensureCanary(version, image);
        },
        promoteStable: (v, i) => w.promoteStable(v, i),
        scaleDownCanary: () => w.scaleDownCanary(),
        cleanupCanary: () => w.cleanupCanary(),
      };
    },
  };
}

let bench: RolloutBench;
let client: RolloutClient;
/** Every rollout a test started: one a failing test leaves running (stuck, say) is ended after it. */
const started: Array<{ workflowId: string; runId?: string }> = [];
const startRollout = async (...args: Parameters<RolloutBench['startRollout']>) => {
  const h = await bench.startRollout(...args);
  started.push({ workflowId: h.workflowId, runId: h.firstExecutionRunId });
  return h;
};
const startWithClient = async (request: Parameters<RolloutClient['start']>[0]) => {
  const r = await client.start(request);
  started.push({ workflowId: r.workflowId, runId: r.runId });
  return r;
};

beforeAll(async () => {
  bench = await RolloutBench.start({ providers: wrapped, faults: { 'v-bad': { errorRate: 0.5 } } });
  client = new RolloutClient(bench.env.client, { taskQueue: bench.taskQueue });
}, 180_000);
afterAll(async () => bench?.close());
// A rollout left running by a failing test would keep the time-skipping server from skipping (its retries count as
// outstanding work) and so stall every later test: terminate whatever is still running.
afterEach(async () => {
  for (const { workflowId, runId } of started.splice(0)) {
    const h = bench.env.client.workflow.getHandle(workflowId, runId);
    const running = await h.describe().then(
      (d) => d.status.name === 'RUNNING',
      () => false,
    );
    if (running) await h.terminate('left running by a failing test').catch(() => undefined);
  }
});
beforeEach(async () => {
  faults.preflight = undefined;
  faults.failWeights = undefined;
  faults.canaryFails = undefined;
  faults.slowPreflight = undefined;
  faults.routerCalls = [];
  await bench.reset();
});

const status = (h: Handle) => h.query(statusQuery);
const approve = (h: Handle, identity: string, stage?: number) =>
  h.executeUpdate(approveUpdate, { args: [{ identity, ...(stage ? { stage } : {}) }] });
const promote = (h: Handle, identity: string, extra: { endSoak?: boolean } = {}) =>
  h.executeUpdate(promoteUpdate, { args: [{ identity, ...extra }] });
const abort = (h: Handle, identity: string, reason = 'no') => h.signal(abortSignal, { identity, reason });

const checks = [{ name: 'error-rate', metric: 'error-rate', max: 5 }];
function simple(extra: Partial<PlanSpec> = {}): PlanSpec {
  return {
    analysis: { interval: '10m', checks },
    stages: [{ weight: 5, hold: '1h' }, { weight: 100 }],
    promotion: { cleanupDelay: '0s' },
    ...extra,
  } as PlanSpec;
}

/**
 * Polls the status until `ok`, moving workflow time on by a minute between looks. With `realTime`, only looks (every
 * 100 ms), for what activities bring without workflow time passing: the time-skipping server cannot skip while an
 * activity is outstanding, so a skip begun then costs its length in real time.
 */
async function waitFor(
  h: Handle,
  what: string,
  ok: (s: Awaited<ReturnType<typeof status>>) => boolean,
  opts: { realTime?: boolean } = {},
) {
  const deadline = Date.now() + (opts.realTime ? 60_000 : 240_000);
  for (let i = 0; i < 200 && Date.now() < deadline; i++) {
    const st = await status(h);
    if (ok(st)) return st;
    if (opts.realTime) await new Promise((r) => setTimeout(r, 100));
    else await bench.env.sleep(MINUTE);
  }
  throw new Error(`never reached: ${what}: ${JSON.stringify(await status(h))}`);
}

describe('preflight: a rollout that cannot work never starts', () => {
  test('a refusal ends it as not started (typed, no stack trace), nothing touched, the target free at once', async () => {
    faults.preflight = () => [
      {
        area: 'object',
        cause: 'input',
        level: 'refuse',
        message: 'VirtualService "shop" does not exist in namespace "test"',
        path: 'target.traffic.istio.virtualService',
      },
      { area: 'data', cause: 'input', level: 'warn', message: 'check "cpu" has no data for stable' },
    ];
    const h = await startRollout('pf-refused', 'v2', simple());
    const err = await h.result().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WorkflowFailedError);
    const cause = (err as WorkflowFailedError).cause as ApplicationFailure;
    expect(cause.type).toBe('NotStarted');
    expect(cause.message).toBe('not started: VirtualService "shop" does not exist in namespace "test"');
    // An outcome, not a crash: no stack trace, no worker paths in the Web UI.
    expect(cause.stack ?? '').not.toMatch(/\.ts|\.js|node_modules/);
    const result = await rolloutResult(h);
    expect(result).toMatchObject({ outcome: 'not_started', cause: 'input', finalWeight: 0 });
    expect(result.findings?.map((f) => f.level)).toEqual(['refuse', 'warn']);
    const st = await status(h);
    expect(st.phase).toBe('not_started');
    expect(st.preflight).toMatchObject({ state: 'failed', cause: 'input' });
    // Nothing touched: no canary, no weight, no routing call; the only alert is the not_started one.
    expect(await bench.live()).toMatchObject({ weight: 0, canary: null, stable: { version: 'v1' } });
    expect(faults.routerCalls).toEqual([]);
    expect(bench.alerts(h.workflowId).map((e) => e.event)).toEqual(['not_started']);
    // Every human action is answered: the rollout is over and nothing is left to act on.
    await expect(client.abort(h.workflowId, { identity: 'erin', reason: 'x' })).rejects.toThrow(
      /cannot abort: rollout canary\.test\.pf-refused did not start/,
    );
    await expect(client.approve(h.workflowId, { identity: 'erin' })).rejects.toThrow(/has already finished/);
    // The target is free: the next start runs.
    faults.preflight = undefined;
    const again = await startRollout('pf-refused', 'v3', simple());
    await waitFor(again, 'stage 1 entered', (s) => s.weight === 5, { realTime: true });
    await abort(again, 'jest', 'done');
    await rolloutResult(again);
  });

  test("the worker's own checks of a direct start: a check its default metrics cannot answer, windows that never open", async () => {
    // The target names no metrics source: the worker's default (the local stack) reads named metrics only.
    const q = await startRollout(
      'pf-default-metrics',
      'v2',
      simple({
        analysis: {
          interval: '10m',
          checks: [{ name: 'gpu', query: 'sum(gpu_errors{pod=~"{{workload}}-.*"})', max: 0 }],
        },
      } as Partial<PlanSpec>),
    );
    const offer = await rolloutResult(q);
    expect(offer).toMatchObject({ outcome: 'not_started', cause: 'input' });
    expect(offer.findings).toEqual([
      expect.objectContaining({
        area: 'metrics',
        path: 'analysis.checks[0].query',
        message: expect.stringMatching(/reads named metrics only.*this worker's default, local, measures it/),
      }),
    ]);
    // A freeze until 2999: the windows never open within the 30-day default.
    const w = await startRollout(
      'pf-windows',
      'v2',
      simple({
        windows: { timeZone: 'UTC', freeze: [{ from: '2026-01-01', to: '2999-01-01', reason: 'forever' }] },
      } as Partial<PlanSpec>),
    );
    const closed = await rolloutResult(w);
    expect(closed).toMatchObject({ outcome: 'not_started', cause: 'input' });
    expect(closed.findings).toEqual([
      expect.objectContaining({ area: 'window', path: 'windows', level: 'refuse' }),
    ]);
    expect(await bench.live()).toMatchObject({ weight: 0, canary: null });
  });

  test('a preflight that cannot run at all is an infrastructure refusal', async () => {
    faults.preflight = () => {
      throw new Error('connect ECONNREFUSED 127.0.0.1:6443');
    };
    const h = await startRollout('pf-infra', 'v2', simple());
    const result = await rolloutResult(h);
    expect(result).toMatchObject({ outcome: 'not_started', cause: 'infrastructure' });
    expect(result.findings?.[0].message).toContain('ECONNREFUSED');
    expect(await bench.live()).toMatchObject({ weight: 0, canary: null });
  });

  test('the client waits for the verdict and says why it did not start', async () => {
    faults.preflight = () => [
      { area: 'query', cause: 'input', level: 'refuse', message: 'Prometheus rejected the query', path: 'q' },
    ];
    const started = await startWithClient({
      app: 'pf-client',
      namespace: 'test',
      version: 'v2',
      plan: simple(),
      requestedBy: 'ci',
    });
    const err = await client.awaitPreflight(started.workflowId).catch((e: unknown) => e);
    expect(err).toMatchObject({ name: 'RolloutNotStartedError', kind: 'input' });
    expect(String((err as Error).message)).toContain('q: Prometheus rejected the query');
    const final = await client.waitForOutcome(started.workflowId, { pollMs: 50 });
    expect(final.phase).toBe('not_started');
  });
});

describe('a rollback undoes only what the rollout changed, and never stays stuck', () => {
  test('a canary that cannot be made rolls back at once: no traffic was moved, so the lost router is never asked', async () => {
    faults.canaryFails = true;
    faults.failWeights = new Set([0]);
    const h = await startRollout('rb-nothing', 'v2', simple());
    const result = await rolloutResult(h);
    expect(result).toMatchObject({ outcome: 'rolled_back', ending: { kind: 'step' } });
    expect(result.reason).toContain('the canary did not become available');
    expect(faults.routerCalls).toEqual([]);
    const st = await status(h);
    expect(st.retrying).toBeUndefined();
    expect(st.stages.map((s) => s.state)).toEqual(['failed', 'pending']);
  });

  test('a rollback stuck on a lost cluster alerts with the way out; resolve ends it; a new version then starts', async () => {
    const h = await startRollout('rb-stuck', 'v2', simple());
    await waitFor(h, 'stage 1', (s) => s.weight === 5, { realTime: true });
    faults.failWeights = new Set([0]);
    await abort(h, 'alice', 'p95 spike');
    const stuck = await waitFor(h, 'a retrying rollback', (s) => s.retrying !== undefined, {
      realTime: true,
    });
    expect(stuck.phase).toBe('rolling_back');
    expect(stuck.retrying).toMatchObject({ step: 'send traffic back to stable' });
    expect(stuck.retrying?.resolve).toBe(
      `canary resolve ${h.workflowId} --confirm-traffic-restored --reason "what was done"`,
    );
    // Delivered by its own activity, so it may trail the status a moment.
    let alert = bench.alerts(h.workflowId).find((e) => e.event === 'stuck');
    for (let i = 0; !alert && i < 100; i++) {
      await new Promise((r) => setTimeout(r, 100));
      alert = bench.alerts(h.workflowId).find((e) => e.event === 'stuck');
    }
    expect(alert?.message).toContain(`canary resolve ${h.workflowId} --confirm-traffic-restored`);
    // Refused without the confirmation, without a named person, and outside a stuck step.
    const resolve = (identity: string, confirm: boolean) =>
      h.executeUpdate(resolveUpdate, {
        args: [{ identity, reason: 'weights set by hand', confirmTrafficRestored: confirm }],
      });
    expect(await rejection(resolve('ops', false))).toMatch(/^resolve needs --confirm-traffic-restored/);
    expect(await rejection(resolve('unknown', true))).toBe('resolve needs a named person (--as NAME)');
    // The person puts the traffic back by hand, then resolves.
    await fetch(`${bench.stack.controlUrl}/weight`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ weight: 0 }),
    });
    const record = await resolve('ops', true);
    expect(record).toMatchObject({
      by: 'ops',
      reason: 'weights set by hand',
      step: 'send traffic back to stable',
    });
    const result = await rolloutResult(h);
    expect(result).toMatchObject({
      outcome: 'rolled_back',
      finalWeight: 0,
      ending: { kind: 'abort', by: 'alice' },
      resolved: { by: 'ops', reason: 'weights set by hand' },
    });
    expect(result.reason).toBe('aborted by alice: p95 spike; resolved by hand by ops: weights set by hand');
    faults.failWeights = undefined;
    const next = await startRollout('rb-stuck', 'v3', simple());
    await waitFor(next, 'the next version at stage 1', (s) => s.weight === 5, { realTime: true });
    await abort(next, 'jest');
    await rolloutResult(next);
  });

  test('resolve is refused while nothing is stuck', async () => {
    const h = await startRollout('rb-none', 'v2', simple());
    await waitFor(h, 'stage 1', (s) => s.weight === 5, { realTime: true });
    expect(
      await rejection(
        h.executeUpdate(resolveUpdate, {
          args: [{ identity: 'ops', reason: 'x', confirmTrafficRestored: true }],
        }),
      ),
    ).toMatch(/^nothing to resolve: the rollout is progressing/);
    await abort(h, 'jest');
    expect((await rolloutResult(h)).ending).toEqual({ kind: 'abort', by: 'jest' });
    // A person's abort stopped the stage: not "failed".
    expect((await status(h)).stages.map((s) => s.state)).toEqual(['stopped', 'pending']);
  });
});

describe('the approval policy holds on every path', () => {
  const policy = { approvers: ['alice', 'bob'], required: 2 };
  const gated: PlanSpec = {
    analysis: { interval: '10m', checks },
    approvals: policy,
    stages: [
      { weight: 5, hold: '1h' },
      { weight: 50, hold: '1h', gate: 'approval' },
      { weight: 100, hold: '1h' },
    ],
    promotion: { cleanupDelay: '0s', gate: 'approval' },
  } as PlanSpec;

  test('stage gate: one approver cannot pass a two-person gate through promote; pause and resume keep it waiting; a second person can', async () => {
    const h = await startRollout('pol-stage', 'v2', gated);
    await waitFor(h, 'the stage 2 gate', (s) => s.gate?.stage === 2);
    await approve(h, 'alice', 2);
    expect(await rejection(promote(h, 'alice'))).toMatch(
      /^cannot promote: the gate of stage 2 needs 2 distinct approvals .*it has 1 \(alice\) and alice approved it already, so 1 more approver must approve it first/,
    );
    expect(await rejection(promote(h, 'mallory'))).toMatch(
      /^cannot promote: mallory may not approve the gate of stage 2/,
    );
    await h.executeUpdate(pauseUpdate, { args: [{ identity: 'carol' }] });
    expect((await status(h)).phase).toBe('paused');
    await h.executeUpdate(resumeUpdate, { args: [{ identity: 'carol' }] });
    let st = await status(h);
    expect(st.phase).toBe('waiting_approval');
    expect(st.gate).toMatchObject({ stage: 2, needed: 1 });
    // bob's promotion brings the second approval of stage 2, but it would also skip the promotion gate, which has
    // none yet: refused as well.
    expect(await rejection(promote(h, 'bob'))).toMatch(
      /^cannot promote: the gate of the promotion needs 2 distinct approvals/,
    );
    await approve(h, 'bob', 2);
    st = await waitFor(h, 'stage 2 entered', (s) => s.weight === 50, { realTime: true });
    expect(st.approvals.filter((a) => a.kind === 'approved').map((a) => a.by)).toEqual(['alice', 'bob']);
    await abort(h, 'jest');
    await rolloutResult(h);
  });

  test('promotion gate: approve, promote by the same person refused, abort declines it and rolls back', async () => {
    const h = await startRollout('pol-promo', 'v2', {
      ...gated,
      stages: [
        { weight: 5, hold: '1h' },
        { weight: 100, hold: '1h' },
      ],
    } as PlanSpec);
    const st = await waitFor(h, 'the promotion gate', (s) => s.gate?.promotion === true);
    expect(st.weight).toBe(100);
    await approve(h, 'alice');
    expect(await rejection(promote(h, 'alice'))).toMatch(
      /^cannot promote: the gate of the promotion needs 2 distinct approvals/,
    );
    // The client lets an abort through at the promotion gate (it declines it).
    const aborted = await client.abort(h.workflowId, { identity: 'bob', reason: 'not today' });
    expect(aborted.state).toBe('requested');
    const result = await rolloutResult(h);
    expect(result).toMatchObject({
      outcome: 'rolled_back',
      finalWeight: 0,
      ending: { kind: 'decline', by: 'bob' },
    });
    expect(result.reason).toBe('declined by bob (the gate of the promotion): not today');
    expect((await status(h)).stages.map((s) => s.state)).toEqual(['done', 'stopped']);
    expect(await bench.live()).toMatchObject({ weight: 0, canary: null, stable: { version: 'v1' } });
  });

  test('the final 100 % hold: the client lets an abort through, and it rolls back', async () => {
    const h = await startRollout(
      'pol-final',
      'v2',
      simple({
        stages: [
          { weight: 5, hold: '1h' },
          { weight: 100, hold: '1h' },
        ],
      } as Partial<PlanSpec>),
    );
    await waitFor(h, 'the final stage', (s) => s.weight === 100);
    expect((await client.abort(h.workflowId, { identity: 'erin', reason: 'late doubt' })).state).toBe(
      'requested',
    );
    expect(await rolloutResult(h)).toMatchObject({
      outcome: 'rolled_back',
      ending: { kind: 'abort', by: 'erin' },
    });
  });

  test('hybrid question: pause and resume keep it waiting; abort declines the question and rolls back', async () => {
    const plan = {
      analysis: {
        interval: '10m',
        checks: [
          {
            name: 'errors',
            metric: 'error-rate',
            success: { max: 5 },
            abort: { max: 5, severity: 'critical', then: 'approval', decideWithin: '2h' },
          },
        ],
      },
      approvals: policy,
      stages: [{ weight: 5, hold: '1h' }, { weight: 100 }],
      promotion: { cleanupDelay: '0s' },
    } as PlanSpec;
    const h = await startRollout('pol-question', 'v-bad', plan);
    const st = await waitFor(h, 'the question', (s) => s.evidenceQuestion !== undefined);
    expect(st.phase).toBe('waiting_approval');
    await h.executeUpdate(pauseUpdate, { args: [{ identity: 'carol' }] });
    expect((await status(h)).phase).toBe('paused');
    await h.executeUpdate(resumeUpdate, { args: [{ identity: 'carol' }] });
    expect((await status(h)).evidenceQuestion).toBeDefined();
    await abort(h, 'alice', 'errors are real');
    const result = await rolloutResult(h);
    expect(result).toMatchObject({ outcome: 'rolled_back', ending: { kind: 'decline', by: 'alice' } });
    expect(result.reason).toMatch(/^declined by alice \(the question about errors\): errors are real$/);
  });
});

describe('stages and soaks', () => {
  test('a stage advances only on a round taken at or after the end of its hold', async () => {
    const plan = simple({
      analysis: { interval: '25m', checks },
      stages: [{ weight: 5, hold: '1h' }, { weight: 50, hold: '1h' }, { weight: 100 }],
    } as Partial<PlanSpec>);
    const h = await startRollout('adv-round', 'v2', plan);
    await waitFor(h, 'stage 2', (s) => s.weight === 50);
    const st = await status(h);
    const stage1 = st.analyses.filter((a) => a.stage === 1);
    const entered2 = Date.parse(st.stageStartedAt!);
    const lastOf1 = Date.parse(stage1[stage1.length - 1].at);
    const firstOf1 = Date.parse(stage1[0].at);
    // Rounds at 25 and 50 minutes, then one at the hold's end (60), which the advance waits for.
    expect(stage1).toHaveLength(3);
    expect(lastOf1 - firstOf1).toBeGreaterThanOrEqual(35 * MINUTE - 5_000);
    expect(entered2).toBeGreaterThanOrEqual(lastOf1);
    await abort(h, 'jest');
    await rolloutResult(h);
  });

  test('a stage that served its hold but keeps holding alerts once, and status says why', async () => {
    const plan = {
      analysis: {
        interval: '5m',
        checks: [{ name: 'no-errors', metric: 'error-rate', success: { max: 0 } }],
      },
      stages: [{ weight: 5, hold: '10m' }, { weight: 100 }],
      promotion: { cleanupDelay: '0s' },
    } as PlanSpec;
    const h = await startRollout('adv-wait', 'v-bad', plan);
    await bench.env.sleep(10 * MINUTE + 16 * MINUTE);
    const st = await status(h);
    expect(st.weight).toBe(5);
    expect(st.evidenceWait?.note).toMatch(
      /advances only on a passing analysis \(the latest analysis was (inconclusive|fail): no-errors/,
    );
    const stuck = bench.alerts(h.workflowId).filter((e) => e.event === 'stuck');
    expect(stuck).toHaveLength(1);
    expect(stuck[0].message).toMatch(/stage 1 served its hold .* and does not advance/);
    await abort(h, 'jest');
    await rolloutResult(h);
  });

  test('the soak keeps the old version running: going back is a weight change, and the soak then ends rolled back', async () => {
    const h = await startRollout(
      'soak-back',
      'v2',
      simple({ promotion: { cleanupDelay: '2h' } } as Partial<PlanSpec>),
    );
    const st = await waitFor(h, 'the soak', (s) => s.soak !== undefined);
    expect(st.phase).toBe('promoted');
    expect(st.soak?.previousVersion).toBe('v1');
    expect(await bench.live()).toMatchObject({
      weight: 100,
      stable: { version: 'v1' },
      canary: { version: 'v2' },
    });
    // Every other human action during the soak: a plain promote is refused (it would cut the soak short by
    // accident), and so are approve, pause, resume and resolve, each saying why.
    expect(await rejection(promote(h, 'erin'))).toMatch(
      /^cannot promote: the rollout is promoted and soaks until/,
    );
    expect(await rejection(approve(h, 'erin'))).toMatch(
      /^no approval gate is waiting: the rollout is promoted/,
    );
    expect(await rejection(h.executeUpdate(pauseUpdate, { args: [{ identity: 'erin' }] }))).toBe(
      'cannot pause: the rollout is promoted',
    );
    expect(await rejection(h.executeUpdate(resumeUpdate, { args: [{ identity: 'erin' }] }))).toMatch(
      /^not paused/,
    );
    expect(
      await rejection(
        h.executeUpdate(resolveUpdate, {
          args: [{ identity: 'ops', reason: 'x', confirmTrafficRestored: true }],
        }),
      ),
    ).toMatch(/^nothing to resolve: the rollout is promoted/);
    expect((await client.abort(h.workflowId, { identity: 'erin', reason: 'regression' })).state).toBe(
      'requested',
    );
    const result = await rolloutResult(h);
    expect(result).toMatchObject({ outcome: 'rolled_back', ending: { kind: 'back', by: 'erin' } });
    expect(result.reason).toBe('went back to v1 during the soak, as erin asked: regression');
    expect(await bench.live()).toMatchObject({ weight: 0, canary: null, stable: { version: 'v1' } });
  });

  test('a soak that runs out promotes stable; one ended early does too', async () => {
    const h = await startRollout(
      'soak-out',
      'v2',
      simple({ promotion: { cleanupDelay: '2h' } } as Partial<PlanSpec>),
    );
    await waitFor(h, 'the soak', (s) => s.soak !== undefined);
    expect((await rolloutResult(h)).outcome).toBe('promoted');
    expect(await bench.live()).toMatchObject({ weight: 0, canary: null, stable: { version: 'v2' } });
    await bench.reset();
    const early = await startRollout(
      'soak-out',
      'v3',
      simple({ promotion: { cleanupDelay: '24h' } } as Partial<PlanSpec>),
    );
    await waitFor(early, 'the soak', (s) => s.soak !== undefined);
    await promote(early, 'erin', { endSoak: true });
    expect((await rolloutResult(early)).outcome).toBe('promoted');
    expect(await bench.live()).toMatchObject({ weight: 0, canary: null, stable: { version: 'v3' } });
  });

  test('during a soak, a start of the previous version goes back; a start of another finishes the promotion and starts', async () => {
    const plan = simple({ promotion: { cleanupDelay: '24h' } } as Partial<PlanSpec>);
    const first = await startWithClient({
      app: 'soak-start',
      namespace: 'test',
      version: 'v2',
      plan,
      requestedBy: 'ci',
    });
    const h = bench.env.client.workflow.getHandle(first.workflowId, first.runId) as Handle;
    await waitFor(h, 'the soak', (s) => s.soak !== undefined);
    const told: string[] = [];
    const back = await startWithClient({
      app: 'soak-start',
      namespace: 'test',
      version: 'v1',
      plan,
      requestedBy: 'ci',
      onHandover: (m) => told.push(m),
    });
    expect(back).toMatchObject({ started: false, wentBack: true, version: 'v1' });
    expect(told[0]).toMatch(/going back to v1/);
    expect(await bench.live()).toMatchObject({ weight: 0, canary: null, stable: { version: 'v1' } });

    const second = await startWithClient({
      app: 'soak-start',
      namespace: 'test',
      version: 'v2',
      plan,
      requestedBy: 'ci',
    });
    // By run: a handle by id alone follows the id's newest run, which becomes v3's.
    const h2 = bench.env.client.workflow.getHandle(second.workflowId, second.runId) as Handle;
    await waitFor(h2, 'the soak', (s) => s.soak !== undefined);
    const next = await startWithClient({
      app: 'soak-start',
      namespace: 'test',
      version: 'v3',
      plan,
      requestedBy: 'ci',
    });
    expect(next).toMatchObject({ started: true, version: 'v3' });
    expect((await rolloutResult(h2)).outcome).toBe('promoted');
    const h3 = bench.env.client.workflow.getHandle(next.workflowId, next.runId) as Handle;
    await waitFor(h3, 'v3 at stage 1', (s) => s.weight === 5, { realTime: true });
    expect((await bench.live()).stable.version).toBe('v2');
    await abort(h3, 'jest');
    await rolloutResult(h3);
  });
});

describe('an abort while the preflight runs', () => {
  // Last in the file: the time-skipping test server keeps the cancelled preflight activity as outstanding work after
  // its workflow has ended, and no longer skips time for any later test (an env.sleep then takes its length in real
  // time). The dev server has no such quirk.
  test('an abort while the preflight runs ends the rollout at once: nothing was touched, nothing to undo', async () => {
    // A preflight that takes its time (a slow API server): the abort comes while it runs.
    faults.slowPreflight = async () => {
      await new Promise((r) => setTimeout(r, 1_500));
      return [];
    };
    const h = await startRollout('pf-abort', 'v2', simple());
    await waitFor(h, 'the preflight running', (s) => s.preflight?.state === 'running', { realTime: true });
    await abort(h, 'dave', 'wrong version');
    const result = await rolloutResult(h);
    expect(result).toMatchObject({
      outcome: 'rolled_back',
      ending: { kind: 'abort', by: 'dave' },
      finalWeight: 0,
    });
    expect(faults.routerCalls).toEqual([]);
    expect(await bench.live()).toMatchObject({ weight: 0, canary: null });
  });
});
