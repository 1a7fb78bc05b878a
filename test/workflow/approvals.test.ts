// Approval policies on the time-skipping server: who may approve, distinct approvers, expiry, reminders and
// escalation at their instants, and promotion that cannot bypass a policy.
import type { WorkflowHandle } from '@temporalio/client';
import { approveUpdate, pauseUpdate, promoteUpdate, resumeUpdate, statusQuery } from '../../workflows/api';
import type { PlanSpec } from '../../workflows/plan';
import type { canaryRollout } from '../../workflows';
import { HOUR, MINUTE, RolloutBench, rejection } from '../../harness/rollout-env';

jest.setTimeout(300_000);

type Handle = WorkflowHandle<typeof canaryRollout>;
let bench: RolloutBench;

beforeAll(async () => {
  bench = await RolloutBench.start();
}, 180_000);
afterAll(async () => bench?.close());
beforeEach(async () => bench.reset());

const APPROVERS = 'alice, group:sre (bob, carol)';

function plan(gateApprovals: Record<string, unknown>): PlanSpec {
  return {
    analysis: { interval: '10m', checks: [{ name: 'error-rate', metric: 'error-rate', max: 5 }] },
    approvals: { approvers: ['alice', 'group:sre'], groups: { sre: ['bob', 'carol'] } },
    stages: [
      { weight: 5, hold: '1h' },
      { weight: 25, hold: '1h', gate: { type: 'approval', approvals: gateApprovals } },
      { weight: 100 },
    ],
    promotion: { cleanupDelay: '0s' },
  } as PlanSpec;
}

const approve = (h: Handle, identity: string) =>
  h.executeUpdate(approveUpdate, { args: [{ identity, stage: 2, comment: `ok from ${identity}` }] });

async function atGate(app: string, gateApprovals: Record<string, unknown>): Promise<Handle> {
  const h = await bench.startRollout(app, 'v2', plan(gateApprovals));
  await bench.env.sleep(HOUR + 5 * MINUTE);
  expect((await h.query(statusQuery)).phase).toBe('waiting_approval');
  return h;
}

test('only listed approvers (names and group members) may approve; the reason says who may', async () => {
  const h = await atGate('appr-allow', {});
  expect(await rejection(approve(h, 'mallory'))).toBe(
    `mallory is not among the approvers of this gate: ${APPROVERS}`,
  );
  expect(await rejection(approve(h, 'unknown'))).toMatch(/^the approver is unknown/);
  const st = await h.query(statusQuery);
  expect(st.gate).toMatchObject({ stage: 2, required: 1, needed: 1, approvers: APPROVERS, approvedBy: [] });
  const record = await approve(h, 'carol');
  expect(record).toMatchObject({ stage: 2, by: 'carol', kind: 'approved', required: 1, count: 1 });
  expect((await bench.result(h)).outcome).toBe('promoted');
});

test('two-person approval: the same person twice is refused; the second distinct approver passes the gate', async () => {
  const h = await atGate('appr-two', { required: 2 });
  const first = await approve(h, 'alice');
  expect(first).toMatchObject({ by: 'alice', required: 2, count: 1 });
  let st = await h.query(statusQuery);
  expect(st.phase).toBe('waiting_approval');
  expect(st.gate).toMatchObject({ required: 2, needed: 1, approvedBy: [{ by: 'alice', at: first.at }] });
  const at = first.at.replace(/\.000Z$/, 'Z');
  expect(await rejection(approve(h, 'alice'))).toBe(
    `alice already approved this gate at ${at}; it needs 1 more approver other than alice`,
  );
  const second = await approve(h, 'bob');
  expect(second).toMatchObject({ by: 'bob', required: 2, count: 2 });
  await bench.env.sleep(MINUTE);
  st = await h.query(statusQuery);
  expect([st.phase, st.stage, st.weight]).toEqual(['progressing', 2, 25]);
  expect(st.approvals.filter((a) => a.kind === 'approved').map((a) => [a.by, a.count, a.required])).toEqual([
    ['alice', 1, 2],
    ['bob', 2, 2],
  ]);
  const result = await bench.result(h);
  expect(result.outcome).toBe('promoted');
  expect(result.approvals.map((a) => a.by)).toEqual(['alice', 'bob']);
});

test('an approval expires when the gate has not passed within expiresAfter', async () => {
  const h = await atGate('appr-expiry', { required: 2, expiresAfter: '2h' });
  const first = await approve(h, 'alice');
  expect(first.expiresAt).toBe(new Date(Date.parse(first.at) + 2 * HOUR).toISOString());
  await bench.env.sleep(2 * HOUR + MINUTE);
  let st = await h.query(statusQuery);
  expect(st.gate).toMatchObject({ needed: 2, approvedBy: [] });
  // Alice's approval no longer counts: she may approve again, and two fresh approvals pass the gate.
  await approve(h, 'bob');
  st = await h.query(statusQuery);
  expect(st.phase).toBe('waiting_approval');
  expect(st.gate).toMatchObject({ needed: 1 });
  await approve(h, 'alice');
  await bench.env.sleep(MINUTE);
  st = await h.query(statusQuery);
  expect([st.phase, st.stage]).toEqual(['progressing', 2]);
  expect((await bench.result(h)).outcome).toBe('promoted');
});

test('a waiting gate reminds and escalates at their instants, paused time excluded', async () => {
  const h = await bench.startRollout('appr-remind', 'v2', plan({ remindAfter: '1h', escalateAfter: '3h' }));
  await bench.env.sleep(HOUR + 5 * MINUTE);
  const st = await h.query(statusQuery);
  const since = Date.parse(st.gate!.since);
  expect(st.gate!.remindAt).toBe(new Date(since + HOUR).toISOString());
  expect(st.gate!.escalateAt).toBe(new Date(since + 3 * HOUR).toISOString());
  // 30 minutes paused inside the wait move both instants by 30 minutes.
  await bench.env.sleep(25 * MINUTE);
  await h.executeUpdate(pauseUpdate, { args: [{ identity: 'dave' }] });
  await bench.env.sleep(30 * MINUTE);
  await h.executeUpdate(resumeUpdate, { args: [{ identity: 'dave' }] });
  await bench.env.sleep(4 * HOUR);
  await approve(h, 'alice');
  expect((await bench.result(h)).outcome).toBe('promoted');
  const events = bench.alerts(h.workflowId);
  const at = (kind: string) => events.filter((e) => e.event === kind).map((e) => Date.parse(e.at) - since);
  const near = (actual: number[], expected: number) => {
    expect(actual).toHaveLength(1);
    expect(Math.abs(actual[0] - expected)).toBeLessThan(1000);
  };
  near(at('approval_reminder'), HOUR + 30 * MINUTE);
  near(at('approval_escalated'), 3 * HOUR + 30 * MINUTE);
  expect(events.find((e) => e.event === 'approval_escalated')?.severity).toBe('critical');
});

test('promote cannot bypass a policy: refused for someone who may not approve a remaining gate', async () => {
  const h = await bench.startRollout('appr-promote', 'v2', plan({}));
  await bench.env.sleep(10 * MINUTE);
  expect(await rejection(h.executeUpdate(promoteUpdate, { args: [{ identity: 'mallory' }] }))).toBe(
    `cannot promote: mallory may not approve the gate of stage 2 (approvers: ${APPROVERS}), which a promotion would skip`,
  );
  const ack = await h.executeUpdate(promoteUpdate, { args: [{ identity: 'bob', comment: 'hotfix' }] });
  expect(ack.fromStage).toBe(1);
  const result = await bench.result(h);
  expect(result.outcome).toBe('promoted');
});
