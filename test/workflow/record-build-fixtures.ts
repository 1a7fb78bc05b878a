// Records replay fixtures of two paths this build added.
// The rollback's first shift as a local activity (the rollback-local-shift patch): a
// rollout aborted while it holds stage 1 sends its traffic back in a local activity the worker ran while it processed
// the abort (rollback-local-aborted-run-1), and one rolled back by its analysis does the same
// (rollback-local-rolled-back-run-1). Each recording checks the path it pins: one `core_local_activity` marker, for
// setCanaryWeight, and setCanaryWeight scheduled through the server only for the shift into stage 1.
// A pause that holds the walk (the pause-holds-advance patch): a rollout paused by signal-with-start, before its
// preflight, deploys nothing until it is resumed, then enters stage 1 and is aborted there
// (pause-holds-paused-before-canary-run-1). The recording checks no canary was deployed before the resume.
// Not part of the suite (its name does not end in .test.ts): run it on purpose with
//   npx jest --testMatch '**/test/workflow/record-build-fixtures.ts' [-t rollback-local|-t pause-holds]
// (re-recording a fixture replaces the history it pinned). test/replay replays whatever the folder holds.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { historyToJSON } from '@temporalio/common/lib/proto-utils';
import type { temporal } from '@temporalio/proto';
import {
  abortSignal,
  pauseSignal,
  resumeSignal,
  rolloutWorkflowId,
  statusQuery,
  type PauseRequest,
  type RolloutInput,
} from '../../workflows/api';
import type { canaryRollout } from '../../workflows';
import type { PlanSpec } from '../../workflows/plan';
import { localActivityType } from '../../harness/history';
import { MINUTE, RolloutBench } from '../../harness/rollout-env';

const record = test;
const FIXTURES = path.join(__dirname, '..', 'fixtures');
const TARGET = { traffic: { local: {} }, workload: { kind: 'local' } };

const plan: PlanSpec = {
  name: 'rollback-fixture',
  analysis: { interval: '10m', checks: [{ name: 'error-rate', metric: 'error-rate', max: 5 }] },
  stages: [{ weight: 10, hold: '1h' }, { weight: 100 }],
  promotion: { cleanupDelay: '0s' },
};

/**
 * The steps of a whole history by kind: local activities (by their markers) and activities scheduled through the
 * server. A rollout that held stage 1 and rolled back schedules setCanaryWeight once (the shift into stage 1) and runs
 * the shift back as its one local activity.
 */
function steps(history: temporal.api.history.v1.IHistory): { local: string[]; scheduled: string[] } {
  const events = history.events ?? [];
  return {
    local: events.flatMap((e) => localActivityType(e.markerRecordedEventAttributes) ?? []),
    scheduled: events.flatMap((e) => e.activityTaskScheduledEventAttributes?.activityType?.name ?? []),
  };
}

function save(name: string, history: temporal.api.history.v1.IHistory): void {
  const file = path.join(FIXTURES, `${name}.history.json`);
  fs.writeFileSync(file, historyToJSON(history));
  console.log(`wrote ${file} (${history.events?.length} events)`);
}

record(
  'records rollback-local-*.history.json',
  async () => {
    const bench = await RolloutBench.start({ faults: { 'v-bad': { errorRate: 0.5 } } });
    try {
      const client = bench.env.client;
      const aborted = await bench.startRollout('rollback-fixture', 'v2', plan, undefined, TARGET);
      await bench.env.sleep(20 * MINUTE);
      expect((await aborted.query(statusQuery)).weight).toBe(10);
      await aborted.signal(abortSignal, { identity: 'fixture', reason: 'recorded abort at stage 1' });
      const abortedResult = await bench.result(aborted);
      expect([abortedResult.outcome, abortedResult.finalWeight]).toEqual(['rolled_back', 0]);
      const abortedHistory = await client.workflow
        .getHandle(aborted.workflowId, aborted.firstExecutionRunId)
        .fetchHistory();
      const a = steps(abortedHistory);
      expect(a.local).toEqual(['setCanaryWeight']);
      expect(a.scheduled.filter((t) => t === 'setCanaryWeight')).toHaveLength(1);
      save('rollback-local-aborted-run-1', abortedHistory);

      await bench.reset();
      const bad = await bench.startRollout('rollback-fixture-bad', 'v-bad', plan, undefined, TARGET);
      const badResult = await bench.result(bad);
      expect([badResult.outcome, badResult.finalWeight]).toEqual(['rolled_back', 0]);
      const badHistory = await client.workflow
        .getHandle(bad.workflowId, bad.firstExecutionRunId)
        .fetchHistory();
      const b = steps(badHistory);
      expect(b.local).toEqual(['setCanaryWeight']);
      expect(b.scheduled.filter((t) => t === 'setCanaryWeight')).toHaveLength(1);
      save('rollback-local-rolled-back-run-1', badHistory);
    } finally {
      await bench.close();
    }
  },
  300_000,
);

record(
  'records pause-holds-*.history.json',
  async () => {
    const bench = await RolloutBench.start();
    try {
      const client = bench.env.client;
      const target = { app: 'pause-fixture', namespace: 'test', ...TARGET };
      const input: RolloutInput = { target, version: 'v2', plan, requestedBy: 'fixture' };
      // Signal-with-start: the pause is in the rollout's first workflow task, before its preflight.
      const h = await client.workflow.signalWithStart<typeof canaryRollout, [PauseRequest]>('canaryRollout', {
        workflowId: rolloutWorkflowId(target),
        taskQueue: bench.taskQueue,
        args: [input],
        signal: pauseSignal,
        signalArgs: [{ identity: 'fixture', reason: 'change review' }],
      });
      await bench.env.sleep(90 * MINUTE);
      const paused = await h.query(statusQuery);
      expect([paused.phase, paused.weight]).toEqual(['paused', 0]);
      expect(await bench.live()).toMatchObject({ weight: 0, canary: null });
      await h.signal(resumeSignal, { identity: 'fixture' });
      await bench.env.sleep(20 * MINUTE);
      expect((await h.query(statusQuery)).weight).toBe(10);
      await h.signal(abortSignal, { identity: 'fixture', reason: 'recorded abort after the resume' });
      expect((await bench.result(h)).outcome).toBe('rolled_back');
      save(
        'pause-holds-paused-before-canary-run-1',
        await client.workflow.getHandle(h.workflowId).fetchHistory(),
      );
    } finally {
      await bench.close();
    }
  },
  300_000,
);
