// Records replay fixtures of the release workflow (canaryRelease), which had none: a change to it that cannot replay
// a release already in flight must fail test/replay, as it does for a rollout.
// - release-together-promoted-run-1: three members in two waves (the second after the first has baked), `checkout`
//   after `payments`; promotion together: every member waits at its promotion gate and the release approves them all.
// - release-member-aborted-run-1: the same release; a person aborts checkout in its stage 1 (payments waits at its
//   promotion gate), so the release rolls every other member back (search, in wave 2, never starts).
// - release-held-continued-run-1: onFailure rollback-member; one member is aborted, the others hold (paused) until a
//   person goes on without it, then promote.
// Each recording checks the path it pins. Each member has a local stack of its own (its own router and canary).
// Not part of the suite (its name does not end in .test.ts): run it on purpose with
//   npx jest --testMatch '**/test/workflow/record-release-fixtures.ts' [-t together|-t aborted|-t held]
// (re-recording a fixture replaces the history it pinned). test/replay replays whatever the folder holds.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { historyToJSON } from '@temporalio/common/lib/proto-utils';
import type { temporal } from '@temporalio/proto';
import { prepareRelease } from '../../client/release';
import { abortSignal, statusQuery } from '../../workflows/api';
import type { canaryRelease, canaryRollout } from '../../workflows';
import { releaseContinueSignal, releaseStatusQuery } from '../../workflows/release-api';
import type { ReleaseStatus } from '../../workflows/release-model';
import { startLocalStack, type LocalStack } from '../../demo/stack';
import { MINUTE, RolloutBench, STABLE_VERSION } from '../../harness/rollout-env';

const record = test;
const FIXTURES = path.join(__dirname, '..', 'fixtures');

function save(name: string, history: temporal.api.history.v1.IHistory): void {
  const file = path.join(FIXTURES, `${name}.history.json`);
  fs.writeFileSync(file, historyToJSON(history));
  console.log(`wrote ${file} (${history.events?.length} events)`);
}

const memberPlan = {
  analysis: { interval: '10m', checks: [] },
  stages: [{ weight: 20, hold: '30m' }, { weight: 100 }],
  promotion: { cleanupDelay: '0s' },
};

const APPS = ['payments', 'checkout', 'search'] as const;
/** One local stack per member: a member's canary and weight are its own. */
const stacks = new Map<string, LocalStack>();

/** The release file: payments and checkout (after payments) in wave 1, search in wave 2 after a 20-minute bake. */
function releaseDoc(name: string, extra: Record<string, unknown> = {}) {
  const member = (id: (typeof APPS)[number], wave: number, after?: string[]) => ({
    id,
    target: {
      app: id,
      namespace: 'test',
      traffic: { local: { controlUrl: stacks.get(id)!.controlUrl } },
      workload: { kind: 'local', controlUrl: stacks.get(id)!.controlUrl },
    },
    version: 'v2',
    plan: memberPlan,
    wave,
    ...(after ? { after } : {}),
  });
  return {
    release: name,
    members: [member('payments', 1), member('checkout', 1, ['payments']), member('search', 2)],
    waves: [{ wave: 2, bake: '20m' }],
    ...extra,
  };
}

async function startRelease(bench: RolloutBench, doc: ReturnType<typeof releaseDoc>) {
  const prepared = prepareRelease(doc, __dirname, {
    requestedBy: 'fixture',
    nowMs: Date.now(),
    taskQueue: bench.taskQueue,
  });
  if (!prepared.ok) throw new Error(`release refused: ${JSON.stringify(prepared.problems)}`);
  const { workflowId, input } = prepared.release;
  return bench.env.client.workflow.start<typeof canaryRelease>('canaryRelease', {
    workflowId,
    taskQueue: bench.taskQueue,
    args: [input],
  });
}

/** Waits (in workflow time, which skips) until the release's status satisfies `ok`. */
async function until(
  bench: RolloutBench,
  handle: { query: (q: typeof releaseStatusQuery) => Promise<ReleaseStatus> },
  what: string,
  ok: (s: ReleaseStatus) => boolean,
): Promise<ReleaseStatus> {
  for (let i = 0; i < 240; i++) {
    const s = await handle.query(releaseStatusQuery);
    if (ok(s)) return s;
    await bench.env.sleep(MINUTE);
  }
  throw new Error(`the release never reached: ${what}`);
}

async function histories(bench: RolloutBench, workflowId: string, runId: string) {
  return bench.env.client.workflow.getHandle(workflowId, runId).fetchHistory();
}

const memberHandle = (bench: RolloutBench, app: string) =>
  bench.env.client.workflow.getHandle<typeof canaryRollout>(`canary.test.${app}`);

describe('release fixtures', () => {
  // Each recording starts on a server and stacks of its own: nothing of another recording's members is left.
  let bench: RolloutBench;
  beforeEach(async () => {
    bench = await RolloutBench.start();
    for (const app of APPS) stacks.set(app, await startLocalStack({ stableVersion: STABLE_VERSION }));
  });
  afterEach(async () => {
    for (const stack of stacks.values()) await stack.close();
    stacks.clear();
    await bench?.close();
  });

  record(
    'records release-together-promoted-run-1.history.json',
    async () => {
      const release = await startRelease(bench, releaseDoc('together'));
      const result = await release.result();
      expect(result.outcome).toBe('promoted');
      expect(result.members.map((m) => [m.id, m.state])).toEqual([
        ['payments', 'promoted'],
        ['checkout', 'promoted'],
        ['search', 'promoted'],
      ]);
      // The release approved every member's promotion gate.
      for (const app of ['payments', 'checkout', 'search']) {
        const r = await memberHandle(bench, app).result();
        expect(r.approvals.some((a) => a.by === 'release:together')).toBe(true);
      }
      const history = await histories(bench, release.workflowId, release.firstExecutionRunId);
      const children = (history.events ?? []).flatMap(
        (e) => e.startChildWorkflowExecutionInitiatedEventAttributes?.workflowId ?? [],
      );
      expect(children).toEqual(['canary.test.payments', 'canary.test.checkout', 'canary.test.search']);
      const approvals = (history.events ?? []).filter(
        (e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'approveReleaseMember',
      );
      expect(approvals).toHaveLength(3);
      save('release-together-promoted-run-1', history);
    },
    300_000,
  );

  record(
    'records release-member-aborted-run-1.history.json',
    async () => {
      const release = await startRelease(bench, releaseDoc('aborted'));
      await until(bench, release, 'checkout in its stage 1', (s) =>
        s.members.some((m) => m.id === 'checkout' && m.state === 'running' && m.stage === 1),
      );
      // payments waits at its promotion gate (the release promotes together), checkout holds its stage 1.
      for (let i = 0; (await memberHandle(bench, 'checkout').query(statusQuery)).weight !== 20; i++) {
        if (i > 10) throw new Error('checkout never reached 20 %');
        await bench.env.sleep(MINUTE);
      }
      await memberHandle(bench, 'checkout').signal(abortSignal, {
        identity: 'fixture',
        reason: 'recorded abort of one member',
      });
      const result = await release.result();
      expect(result.outcome).toBe('rolled_back');
      expect(result.cause).toBe('checkout');
      expect(result.members.map((m) => [m.id, m.state])).toEqual([
        ['payments', 'rolled_back'],
        ['checkout', 'rolled_back'],
        ['search', 'skipped'],
      ]);
      // The release rolled payments back, naming the member that failed.
      expect((await memberHandle(bench, 'payments').query(statusQuery)).rollbackReason).toContain(
        'release aborted: member checkout rolled back',
      );
      save(
        'release-member-aborted-run-1',
        await histories(bench, release.workflowId, release.firstExecutionRunId),
      );
    },
    300_000,
  );

  record(
    'records release-held-continued-run-1.history.json',
    async () => {
      const release = await startRelease(bench, releaseDoc('held', { onFailure: 'rollback-member' }));
      await until(bench, release, 'search in its stage 1', (s) =>
        s.members.some((m) => m.id === 'search' && m.state === 'running' && m.stage === 1),
      );
      await memberHandle(bench, 'search').signal(abortSignal, {
        identity: 'fixture',
        reason: 'recorded abort of the last member',
      });
      const held = await until(bench, release, 'the hold', (s) => s.phase === 'held');
      expect(held.question).toContain('member search rolled back');
      await release.signal(releaseContinueSignal, { identity: 'fixture', comment: 'go on without search' });
      const result = await release.result();
      expect(result.outcome).toBe('promoted');
      expect(result.dropped).toEqual(['search']);
      save(
        'release-held-continued-run-1',
        await histories(bench, release.workflowId, release.firstExecutionRunId),
      );
    },
    300_000,
  );
});
