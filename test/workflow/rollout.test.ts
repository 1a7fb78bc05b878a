// The rollout workflow on the time-skipping test server, against the real local stack with live traffic.
import { rolloutResult } from '../../client/index';
import type { WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure, WorkflowFailedError } from '@temporalio/client';
import {
  SA_APP,
  SA_PHASE,
  SA_STAGE,
  SA_VERSION,
  SA_WEIGHT,
  abortSignal,
  approveUpdate,
  pauseSignal,
  promoteUpdate,
  resumeSignal,
  rolloutWorkflowId,
  statusQuery,
  type PauseRequest,
  type RolloutInput,
} from '../../workflows/api';
import type { PlanSpec } from '../../workflows/plan';
import { PRESETS } from '../../workflows/presets';
import type { canaryRollout } from '../../workflows';
import { HOUR, MINUTE, RolloutBench, rejection } from '../../harness/rollout-env';
import { runHistories } from '../../harness/history';

type Handle = WorkflowHandle<typeof canaryRollout>;
let bench: RolloutBench;

beforeAll(async () => {
  bench = await RolloutBench.start({ faults: { 'v-bad': { errorRate: 0.5 } } });
}, 180_000);
afterAll(async () => bench?.close());
beforeEach(async () => bench.reset());

/** The default preset's stages, analysed every 30 minutes so a test walks 48 h quickly. */
function defaultStages(extra: Partial<PlanSpec> = {}): PlanSpec {
  const d = PRESETS.default;
  return { ...d, analysis: { ...d.analysis, interval: '30m' }, promotion: { cleanupDelay: '0s' }, ...extra };
}

const twoGatePlan = (gate: unknown): PlanSpec =>
  ({
    analysis: { interval: '10m', checks: [{ name: 'error-rate', metric: 'error-rate', max: 5 }] },
    stages: [{ weight: 5, hold: '1h' }, { weight: 25, hold: '1h', gate }, { weight: 100 }],
    promotion: { cleanupDelay: '0s' },
  }) as PlanSpec;

async function status(h: Handle) {
  return h.query(statusQuery);
}

function stageOffsets(workflowId: string): Array<[number | undefined, number]> {
  return bench
    .alerts(workflowId)
    .filter((e) => e.event === 'stage_advanced')
    .map((e) => [e.weight, e.offsetMs]);
}

function expectNear(actualMs: number, expectedMs: number, toleranceMs = 15_000): void {
  expect(Math.abs(actualMs - expectedMs)).toBeLessThanOrEqual(toleranceMs);
}

test('default plan (1-minute analysis): each stage at its moment, promotion at 48 h, small histories', async () => {
  const h = await bench.startRollout('default-e2e', 'v2', PRESETS.default);
  const at = async (sleepMs: number, weight: number, stage: number) => {
    await bench.env.sleep(sleepMs);
    const st = await status(h);
    expect([st.phase, st.stage, st.weight]).toEqual(['progressing', stage, weight]);
    expect((await bench.live()).weight).toBe(weight);
    expect(st.lastVerdict).toBe('pass');
  };
  await at(30 * MINUTE, 5, 1); // t = 30m
  await at(HOUR, 10, 2); // t = 1h30m
  await at(3 * HOUR, 25, 3); // t = 4h30m
  await at(20 * HOUR, 50, 4); // t = 24h30m
  // Every analysis that ran is counted across continue-as-new runs, though only the latest 10 are kept.
  const mid = await status(h);
  expect(mid.analyses.length).toBe(10);
  expect(mid.analysesRun).toBeGreaterThanOrEqual(24 * 60 + 25);
  expect(mid.analysesRun).toBeLessThanOrEqual(24 * 60 + 35);
  const result = await rolloutResult(h);
  expect(result.outcome).toBe('promoted');

  const offsets = stageOffsets(h.workflowId);
  expect(offsets.map(([w]) => w)).toEqual([5, 10, 25, 50, 100]);
  [0, 1, 4, 24, 48].forEach((hours, i) => expectNear(offsets[i][1], hours * HOUR));
  const promoted = bench.alerts(h.workflowId).find((e) => e.event === 'promoted');
  expectNear(promoted!.offsetMs, 48 * HOUR);

  const live = await bench.live();
  expect(live.weight).toBe(0);
  expect(live.stable.version).toBe('v2');
  expect(live.canary).toBeNull(); // cleaned up after the 24 h cleanup delay

  const runs = await runHistories(bench.env.client, h.workflowId, h.firstExecutionRunId);
  expect(runs.length).toBeGreaterThan(1); // continue-as-new kept each run small
  for (const r of runs) expect(r.events).toBeLessThan(10_240);
}, 600_000);

test('an approval gate waits, refuses the wrong stage, and records who approved', async () => {
  const h = await bench.startRollout('gate', 'v2', twoGatePlan('approval'));
  await bench.env.sleep(30 * MINUTE);
  expect(await rejection(h.executeUpdate(approveUpdate, { args: [{ identity: 'alice' }] }))).toBe(
    'no approval gate is waiting: the rollout is progressing at stage 1/3',
  );
  await bench.env.sleep(5 * HOUR); // far past the hold: the gate keeps waiting
  let st = await status(h);
  expect(st.phase).toBe('waiting_approval');
  expect(st.gate?.stage).toBe(2);
  expect(st.weight).toBe(5);
  expect((await bench.live()).weight).toBe(5);
  // What the Web UI shows: search attributes and the current details.
  const sa = (await h.describe()).typedSearchAttributes;
  expect([sa.get(SA_APP), sa.get(SA_VERSION), sa.get(SA_PHASE), sa.get(SA_STAGE), sa.get(SA_WEIGHT)]).toEqual(
    ['gate', 'v2', 'waiting_approval', 2, 5],
  );
  const meta = await h.query<{ currentDetails?: string }>('__temporal_workflow_metadata');
  expect(meta.currentDetails).toContain('**waiting_approval** · stage 2/3 · canary weight **5%**');
  expect(meta.currentDetails).toContain('- ▶ **stage 2: 25% for 1h, approval gate**');
  expect(meta.currentDetails).toContain('- ✓ stage 1: 5% for 1h');
  // The worker records no stack for each promise a rollout creates (workflows/stack-limit.ts): the Web UI's Stack
  // Trace tab names no workflow code. (CANARY_WORKFLOW_STACK_TRACES=full at bundle time brings them back.)
  const trace = await h.query<string>('__stack_trace');
  if (process.env.CANARY_WORKFLOW_STACK_TRACES === 'full') expect(trace).toMatch(/workflows\/\S+\.ts/);
  else expect(trace).not.toMatch(/workflows\/|\bat /);
  expect(await rejection(h.executeUpdate(approveUpdate, { args: [{ identity: 'alice', stage: 3 }] }))).toBe(
    'stage 3 is not waiting for approval; stage 2 is',
  );
  const record = await h.executeUpdate(approveUpdate, {
    args: [{ identity: 'alice', stage: 2, comment: 'dashboards look good' }],
  });
  expect(record).toMatchObject({ stage: 2, by: 'alice', comment: 'dashboards look good', kind: 'approved' });
  await bench.env.sleep(MINUTE);
  st = await status(h);
  expect([st.phase, st.stage, st.weight]).toEqual(['progressing', 2, 25]);
  const result = await rolloutResult(h);
  expect(result.outcome).toBe('promoted');
  expect(result.approvals).toEqual([expect.objectContaining({ stage: 2, by: 'alice' })]);
  expectNear(stageOffsets(h.workflowId)[1][1], 5.5 * HOUR);
}, 300_000);

test('an approval timeout with onTimeout: abort rolls back', async () => {
  const h = await bench.startRollout(
    'gate-abort',
    'v2',
    twoGatePlan({ type: 'approval', timeout: '2h', onTimeout: 'abort' }),
  );
  const result = await rolloutResult(h);
  expect(result.outcome).toBe('rolled_back');
  expect(result.reason).toBe('approval for stage 2 timed out after 2h');
  const rolledBack = bench.alerts(h.workflowId).find((e) => e.event === 'rolled_back');
  expectNear(rolledBack!.offsetMs, 3 * HOUR);
  expect(await bench.live()).toMatchObject({ weight: 0, canary: null });
}, 300_000);

test('an approval timeout with onTimeout: proceed moves on and logs it', async () => {
  const h = await bench.startRollout(
    'gate-proceed',
    'v2',
    twoGatePlan({ type: 'approval', timeout: '2h', onTimeout: 'proceed' }),
  );
  const result = await rolloutResult(h);
  expect(result.outcome).toBe('promoted');
  expect(result.approvals).toEqual([expect.objectContaining({ stage: 2, kind: 'timeout-proceed' })]);
  expectNear(stageOffsets(h.workflowId)[1][1], 3 * HOUR);
}, 300_000);

describe('abort at every stage rolls back to weight 0', () => {
  const into = [
    [1, 30 * MINUTE],
    [2, 2 * HOUR],
    [3, 10 * HOUR],
    [4, 30 * HOUR],
  ] as const;
  test.each(into)(
    'stage %i',
    async (stage, sleepMs) => {
      const h = await bench.startRollout(`abort-${stage}`, 'v2', defaultStages());
      await bench.env.sleep(sleepMs);
      const st = await status(h);
      expect(st.stage).toBe(stage);
      expect((await bench.live()).weight).toBe(st.weight);
      await h.signal(abortSignal, { identity: 'bob', reason: 'saw a spike' });
      await h.signal(abortSignal, { identity: 'carol', reason: 'second abort is ignored' });
      const result = await rolloutResult(h);
      expect(result).toMatchObject({
        outcome: 'rolled_back',
        reason: 'aborted by bob: saw a spike',
        finalWeight: 0,
      });
      expect(await bench.live()).toMatchObject({ weight: 0, canary: null });
      expect((await status(h)).phase).toBe('rolled_back');
    },
    300_000,
  );

  test('while waiting at a gate', async () => {
    const h = await bench.startRollout('abort-gate', 'v2', twoGatePlan('approval'));
    await bench.env.sleep(2 * HOUR);
    expect((await status(h)).phase).toBe('waiting_approval');
    await h.signal(abortSignal, { identity: 'bob', reason: 'not today' });
    // An abort while the gate waits declines it: a person said no, nothing failed.
    expect(await rolloutResult(h)).toMatchObject({
      outcome: 'rolled_back',
      reason: 'declined by bob (the gate of stage 2): not today',
      ending: { kind: 'decline', by: 'bob' },
    });
    expect(await bench.live()).toMatchObject({ weight: 0, canary: null });
  }, 300_000);
});

test('pause lengthens the stage by exactly the paused time, and promote is refused while paused', async () => {
  const h = await bench.startRollout('pause', 'v2', defaultStages());
  await bench.env.sleep(20 * MINUTE);
  await h.signal(pauseSignal, { identity: 'dave', reason: 'investigating' });
  await bench.env.sleep(MINUTE);
  let st = await status(h);
  expect(st.phase).toBe('paused');
  expect(st.pausedBy).toBe('dave');
  expect(await rejection(h.executeUpdate(promoteUpdate, { args: [{ identity: 'dave' }] }))).toBe(
    'cannot promote: the rollout is paused; resume it first',
  );
  await bench.env.sleep(2 * HOUR - MINUTE); // paused for 2 h in total
  st = await status(h);
  expect([st.phase, st.stage, st.weight]).toEqual(['paused', 1, 5]);
  expectNear(st.stageTimeLeftMs, 40 * MINUTE);
  await h.signal(resumeSignal, { identity: 'dave' });
  await bench.env.sleep(HOUR);
  st = await status(h);
  expect([st.phase, st.stage, st.weight]).toEqual(['progressing', 2, 10]);
  expectNear(stageOffsets(h.workflowId)[1][1], 3 * HOUR); // 1 h hold + 2 h paused
  const events = bench.alerts(h.workflowId).map((e) => e.event);
  expect(events).toEqual(expect.arrayContaining(['paused', 'resumed']));
  await h.signal(abortSignal, { identity: 'dave', reason: 'done testing' });
  expect((await rolloutResult(h)).outcome).toBe('rolled_back');
}, 300_000);

test('paused before its first stage: no canary and weight 0 until resumed, then stage 1 at once', async () => {
  const target = { app: 'paused-early', namespace: 'test' };
  const input: RolloutInput = { target, version: 'v2', plan: defaultStages(), requestedBy: 'jest' };
  // Signal-with-start: the pause is in the rollout's first workflow task, before its preflight.
  const h = await bench.env.client.workflow.signalWithStart<typeof canaryRollout, [PauseRequest]>(
    'canaryRollout',
    {
      workflowId: rolloutWorkflowId(target),
      taskQueue: bench.taskQueue,
      args: [input],
      signal: pauseSignal,
      signalArgs: [{ identity: 'dave', reason: 'change review' }],
    },
  );
  await bench.env.sleep(2 * HOUR);
  let st = await status(h);
  expect([st.phase, st.pausedBy, st.pauseReason, st.stage, st.weight]).toEqual([
    'paused',
    'dave',
    'change review',
    1,
    0,
  ]);
  expect(st.preflight?.state).toBe('passed');
  expect(await bench.live()).toMatchObject({ weight: 0, canary: null });
  expect(bench.alerts(h.workflowId).map((e) => e.event)).toEqual(['paused']);
  await h.signal(resumeSignal, { identity: 'dave' });
  await bench.env.sleep(10 * MINUTE);
  st = await status(h);
  expect([st.phase, st.stage, st.weight]).toEqual(['progressing', 1, 5]);
  expect(await bench.live()).toMatchObject({ weight: 5, canary: { version: 'v2' } });
  const events = bench.alerts(h.workflowId).map((e) => e.event);
  expect(events.slice(0, 4)).toEqual(['paused', 'resumed', 'rollout_started', 'stage_advanced']);
  await h.signal(abortSignal, { identity: 'dave', reason: 'done testing' });
  expect((await rolloutResult(h)).outcome).toBe('rolled_back');
}, 300_000);

test('analysis keeps running while paused: a failing verdict still rolls back', async () => {
  const h = await bench.startRollout('faulty-paused', 'v-bad', PRESETS.default);
  // Paused once stage 1 carries traffic, before its first analysis (paused earlier, it would deploy nothing).
  await bench.env.sleep(30_000);
  expect((await status(h)).weight).toBe(5);
  await h.signal(pauseSignal, { identity: 'dave' });
  const result = await rolloutResult(h);
  expect(result.outcome).toBe('rolled_back');
  expect(result.reason).toMatch(/error-rate/);
  expect(await bench.live()).toMatchObject({ weight: 0, canary: null });
  expect(bench.alerts(h.workflowId).map((e) => e.event)).toContain('paused');
}, 300_000);

test('a failing check rolls back on its own, weight back to 0, critical alert', async () => {
  const h = await bench.startRollout('faulty', 'v-bad', PRESETS.default);
  const result = await rolloutResult(h);
  expect(result.outcome).toBe('rolled_back');
  expect(result.reason).toMatch(
    /^analysis failed 1 time\(s\) in a row at 5%: error-rate \d+(\.\d+)? > max 1/,
  );
  expect(await bench.live()).toMatchObject({ weight: 0, canary: null });
  const alert = bench.alerts(h.workflowId).find((e) => e.event === 'rolled_back');
  expect(alert?.severity).toBe('critical');
  expectNear(alert!.offsetMs, MINUTE);
  const st = await status(h);
  expect(st.phase).toBe('rolled_back');
  expect(st.analyses[st.analyses.length - 1].verdict).toBe('fail');
  // The stage it rolled back in shows as failed, not as never run.
  expect(st.stages.map((x) => x.state)).toEqual(['failed', 'pending', 'pending', 'pending', 'pending']);
  // The workflow itself ends failed (red in the Web UI, counted by its Failures filter), typed, with the result.
  const err = await h.result().catch((e: unknown) => e);
  expect(err).toBeInstanceOf(WorkflowFailedError);
  const cause = (err as WorkflowFailedError).cause as ApplicationFailure;
  expect(cause.type).toBe('RolledBack');
  expect(cause.nonRetryable).toBe(true);
  expect(cause.message).toBe(`rolled back: ${result.reason}`);
  expect((await h.describe()).status.name).toBe('FAILED');
}, 300_000);

test('promote skips the remaining holds; a second promote is refused', async () => {
  const h = await bench.startRollout('promote', 'v2', defaultStages({ promotion: { cleanupDelay: '1h' } }));
  await bench.env.sleep(30 * MINUTE);
  const ack = await h.executeUpdate(promoteUpdate, { args: [{ identity: 'erin', comment: 'hotfix' }] });
  expect(ack.fromStage).toBe(1);
  expect(await rejection(h.executeUpdate(promoteUpdate, { args: [{ identity: 'erin' }] }))).toMatch(
    /^(promotion is already under way|cannot promote: the rollout is promoted)$/,
  );
  const result = await rolloutResult(h);
  expect(result.outcome).toBe('promoted');
  expect(await bench.live()).toMatchObject({ weight: 0, canary: null, stable: { version: 'v2' } });
  const promoted = bench.alerts(h.workflowId).find((e) => e.event === 'promoted');
  expectNear(promoted!.offsetMs, 30 * MINUTE);
  // Stage 1 ran (cut short); 2 to 4 never did; the final stage is the promotion.
  const st = await status(h);
  expect(st.stages.map((x) => x.state)).toEqual(['done', 'skipped', 'skipped', 'skipped', 'done']);
  expect((await h.describe()).status.name).toBe('COMPLETED');
}, 300_000);

test('cancelling the workflow (as the Web UI does) rolls back', async () => {
  const h = await bench.startRollout('cancel', 'v2', defaultStages());
  await bench.env.sleep(2 * HOUR);
  expect((await bench.live()).weight).toBe(10);
  await h.cancel();
  const result = await rolloutResult(h);
  // The reason names who asked for the cancel, as Temporal recorded it (the client's identity).
  const identity = bench.env.client.options.identity;
  expect(identity).toBeTruthy();
  expect(result).toMatchObject({
    outcome: 'rolled_back',
    reason: `workflow cancelled by ${identity} (Temporal UI or API)`,
  });
  expect(await bench.live()).toMatchObject({ weight: 0, canary: null });
}, 300_000);

test('an invalid plan fails the workflow before anything is touched', async () => {
  const h = await bench.startRollout('invalid', 'v2', { stages: [{ weight: 50, hold: '0s' }] } as PlanSpec);
  const err = await rolloutResult(h).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(WorkflowFailedError);
  expect(String((err as WorkflowFailedError).cause?.message)).toContain('plan is invalid');
  expect(await bench.live()).toMatchObject({ weight: 0, canary: null, stable: { version: 'v1' } });
}, 120_000);
