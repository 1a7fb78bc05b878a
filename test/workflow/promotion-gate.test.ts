// The promotion gate (`promotion.gate`, playbook 004's "prompt to promote") on the time-skipping server: it waits
// once the final stage has served its hold, keeps the canary at 100 % meanwhile, and is passed by an approval, a
// promotion request or its timeout; it survives continue-as-new without serving the hold again.
import { approveUpdate, promoteUpdate, statusQuery } from '../../workflows/api';
import type { PlanSpec } from '../../workflows/plan';
import { HOUR, MINUTE, RolloutBench, rejection } from '../../harness/rollout-env';
import { runHistories } from '../../harness/history';

jest.setTimeout(300_000);

let bench: RolloutBench;

beforeAll(async () => {
  bench = await RolloutBench.start();
}, 180_000);
afterAll(async () => bench?.close());
beforeEach(async () => bench.reset());

/** 5 % for 1 h, then 100 % for 1 h, then the promotion gate. */
function plan(gate: unknown, extra: Partial<PlanSpec> = {}): PlanSpec {
  return {
    analysis: { interval: '10m', checks: [{ name: 'error-rate', metric: 'error-rate', max: 5 }] },
    stages: [
      { weight: 5, hold: '1h' },
      { weight: 100, hold: '1h' },
    ],
    promotion: { cleanupDelay: '0s', gate },
    ...extra,
  } as PlanSpec;
}

test('the gate waits after the final hold with the canary at 100 %; status, UI and alerts say so; approval promotes', async () => {
  const h = await bench.startRollout('promo-gate', 'v2', plan('approval'));
  await bench.env.sleep(HOUR + 30 * MINUTE); // in the final stage's hold: no gate yet
  let st = await h.query(statusQuery);
  expect([st.phase, st.stage, st.weight, st.gate]).toEqual(['progressing', 2, 100, undefined]);
  expect(st.promotionGate).toBe('approval');
  expect(await rejection(h.executeUpdate(approveUpdate, { args: [{ identity: 'alice' }] }))).toBe(
    'no approval gate is waiting: the rollout is progressing at stage 2/2',
  );

  await bench.env.sleep(3 * HOUR); // far past the hold: promotion keeps waiting
  st = await h.query(statusQuery);
  expect([st.phase, st.stage, st.weight]).toEqual(['waiting_approval', 2, 100]);
  expect(st.gate).toMatchObject({ stage: 2, promotion: true });
  expect(st.stageTimeLeftMs).toBe(0);
  expect(st.planTimeLeftMs).toBe(0);
  expect(st.stageEndsAt).toBeUndefined();
  expect(st.evidenceWait).toBeUndefined();
  expect((await bench.live()).weight).toBe(100);
  expect((await bench.live()).stable.version).toBe('v1');
  // Analysis goes on while the gate waits.
  expect(Date.parse(st.analyses[st.analyses.length - 1].at)).toBeGreaterThan(Date.parse(st.gate!.since));
  const meta = await h.query<{ currentDetails?: string }>('__temporal_workflow_metadata');
  expect(meta.currentDetails).toContain('- ✓ stage 2: 100% for 1h\n- ▶ **promotion: approval gate**');
  expect(st.stages.map((x) => x.state)).toEqual(['done', 'done']);
  expect(meta.currentDetails).toContain(
    '**Waiting for approval** of the promotion (stage 2 served its hold)',
  );

  expect(await rejection(h.executeUpdate(approveUpdate, { args: [{ identity: 'alice', stage: 1 }] }))).toBe(
    'stage 1 is not waiting for approval; the promotion (after stage 2) is',
  );
  const record = await h.executeUpdate(approveUpdate, { args: [{ identity: 'alice', stage: 2 }] });
  expect(record).toMatchObject({ stage: 2, promotion: true, by: 'alice', kind: 'approved' });
  const result = await bench.result(h);
  expect(result.outcome).toBe('promoted');
  expect(result.approvals).toEqual([expect.objectContaining({ by: 'alice', promotion: true })]);
  const live = await bench.live();
  expect([live.weight, live.stable.version]).toEqual([0, 'v2']);

  const events = bench.alerts(h.workflowId);
  const needed = events.filter((e) => e.event === 'approval_needed');
  expect(needed).toHaveLength(1);
  expect(needed[0].message).toContain('waits for approval to promote v2 (stage 2 at 100% served its hold)');
  // Asked for once the hold is served (2 h in), not before.
  expect(Math.abs(needed[0].offsetMs - 2 * HOUR)).toBeLessThan(15 * MINUTE);
  expect(events.find((e) => e.event === 'approved')?.message).toContain('the promotion approved by alice');
  const promoted = events.find((e) => e.event === 'promoted')!;
  expect(promoted.offsetMs).toBeGreaterThan(4 * HOUR);
});

test('a gate with timeout and onTimeout: abort rolls back, and the reason names the promotion', async () => {
  const h = await bench.startRollout(
    'promo-timeout',
    'v2',
    plan({ type: 'approval', timeout: '2h', onTimeout: 'abort' }),
  );
  await bench.env.sleep(2 * HOUR + 30 * MINUTE);
  const st = await h.query(statusQuery);
  expect(st.gate).toMatchObject({ promotion: true, onTimeout: 'abort' });
  expect(Date.parse(st.gate!.timeoutAt!) - Date.parse(st.gate!.since)).toBe(2 * HOUR);
  const result = await bench.result(h);
  expect(result.outcome).toBe('rolled_back');
  expect(result.reason).toBe('approval for the promotion timed out after 2h');
  const live = await bench.live();
  expect([live.weight, live.stable.version]).toEqual([0, 'v1']);
});

test('onTimeout: proceed promotes when nobody answers, and records the time-out', async () => {
  const h = await bench.startRollout(
    'promo-proceed',
    'v2',
    plan({ type: 'approval', timeout: '30m', onTimeout: 'proceed' }),
  );
  const result = await bench.result(h);
  expect(result.outcome).toBe('promoted');
  expect(result.approvals).toEqual([
    expect.objectContaining({ kind: 'timeout-proceed', promotion: true, stage: 2 }),
  ]);
  const promoted = bench.alerts(h.workflowId).find((e) => e.event === 'promoted')!;
  expect(Math.abs(promoted.offsetMs - (2 * HOUR + 30 * MINUTE))).toBeLessThan(5 * MINUTE);
});

test('canary promote passes the gate; under an approval policy only an approver may', async () => {
  const h = await bench.startRollout(
    'promo-promote',
    'v2',
    plan('approval', { approvals: { approvers: ['alice'] } } as Partial<PlanSpec>),
  );
  await bench.env.sleep(2 * HOUR + 10 * MINUTE);
  expect((await h.query(statusQuery)).gate).toMatchObject({ promotion: true, approvers: 'alice' });
  expect(await rejection(h.executeUpdate(promoteUpdate, { args: [{ identity: 'mallory' }] }))).toBe(
    'cannot promote: mallory may not approve the gate of the promotion (approvers: alice), which a promotion would skip',
  );
  expect(await rejection(h.executeUpdate(approveUpdate, { args: [{ identity: 'mallory' }] }))).toMatch(
    /^mallory is not among the approvers of this gate: alice/,
  );
  await h.executeUpdate(promoteUpdate, { args: [{ identity: 'alice' }] });
  const result = await bench.result(h);
  expect(result.outcome).toBe('promoted');
  expect(result.approvals.map((a) => [a.kind, a.by])).toEqual([['promote', 'alice']]);
});

test('continue-as-new while the gate waits: the next run waits at the gate, without serving the hold again', async () => {
  const h = await bench.startRollout('promo-can', 'v2', plan('approval'), { continueAsNewAfterEvents: 120 });
  await bench.env.sleep(12 * HOUR);
  const st = await h.query(statusQuery);
  expect(st.run).toBeGreaterThan(1);
  expect([st.phase, st.weight]).toEqual(['waiting_approval', 100]);
  expect(st.gate).toMatchObject({ stage: 2, promotion: true });
  const record = await h.executeUpdate(approveUpdate, { args: [{ identity: 'alice' }] });
  const result = await bench.result(h);
  expect(result.outcome).toBe('promoted');
  const events = bench.alerts(h.workflowId);
  expect(events.filter((e) => e.event === 'approval_needed')).toHaveLength(1);
  const promoted = events.find((e) => e.event === 'promoted')!;
  // Promoted right after the approval (not a served hold later).
  expect(Date.parse(promoted.at) - Date.parse(record.at)).toBeLessThan(30 * MINUTE);
  const runs = await runHistories(bench.env.client, h.workflowId, h.firstExecutionRunId);
  expect(runs.length).toBeGreaterThan(1);
});
