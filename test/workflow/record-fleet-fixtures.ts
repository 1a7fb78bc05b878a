// Records a replay fixture with fleet controls (the fleet-controls patch): a rollout started while every namespace
// is frozen waits before its canary, goes on once unfrozen, is held past its stage's hold by its namespace's freeze
// (told through visibility), and promotes once that is lifted: test/fixtures/fleet-promoted-run-*.history.json.
// And the queued path (a namespace's maxConcurrent, with the fleet-queue-alerts patch): under a limit of 1 a rollout
// waits queued behind another, gets its slot when that one ends and promotes (fleet-queued-promoted-run-*); one
// aborted while queued (fleet-queued-aborted-run-*); and the namespace's fleet workflow that held the limit
// (fleet-queued-limit-run-*).
// Not part of the suite (its name does not end in .test.ts): run it on purpose, one recording at a time, with
//   npx jest --testMatch '**/test/workflow/record-fleet-fixtures.ts' -t 'fleet-queued'
// (re-recording a fixture replaces the history it pinned). test/replay replays whatever the folder holds.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Client } from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';
import { historyToJSON } from '@temporalio/common/lib/proto-utils';
import type { temporal } from '@temporalio/proto';
import { abortSignal, statusQuery } from '../../workflows/api';
import type { RolloutAlert } from '../../workflows/alerts/events';
import {
  FLEET_WORKFLOW,
  fleetFreezeSignal,
  fleetLimitSignal,
  fleetStatusQuery,
  fleetUnfreezeSignal,
  fleetWorkflowId,
} from '../../workflows/fleet-api';
import type { PlanSpec } from '../../workflows/plan';
import type { ProviderRegistry, ProviderSource } from '../../activities/factory';
import type { WorkloadManager } from '../../activities/types';
import { runHistories } from '../../harness/history';
import { HOUR, MINUTE, RolloutBench } from '../../harness/rollout-env';

const record = test;
const FIXTURES = path.join(__dirname, '..', 'fixtures');

const plan: PlanSpec = {
  name: 'fleet-fixture',
  analysis: { interval: '30m', checks: [{ name: 'error-rate', metric: 'error-rate', max: 5 }] },
  stages: [{ weight: 10, hold: '1h' }, { weight: 100 }],
  promotion: { cleanupDelay: '0s' },
  alerts: { routes: [{ sinks: ['log'], minSeverity: 'info' }] },
};

record(
  'records fleet-promoted-run-*.history.json',
  async () => {
    const bench = await RolloutBench.start();
    try {
      const client = bench.env.client;
      const freeze = (scope: string, reason: string) =>
        client.workflow.signalWithStart(FLEET_WORKFLOW, {
          workflowId: fleetWorkflowId(scope),
          taskQueue: bench.taskQueue,
          args: [{ scope }],
          signal: fleetFreezeSignal,
          signalArgs: [{ identity: 'alice', reason }],
        });
      const unfreeze = (scope: string) =>
        client.workflow.getHandle(fleetWorkflowId(scope)).signal(fleetUnfreezeSignal, { identity: 'bob' });

      await freeze('*', 'fixture: every namespace');
      const h = await bench.startRollout('fleet-fixture', 'v2', plan, undefined, {
        traffic: { local: {} },
        workload: { kind: 'local' },
      });
      await bench.env.sleep(30 * MINUTE);
      const held = await h.query(statusQuery);
      expect([held.freeze?.scope, held.weight]).toEqual(['*', 0]);
      await unfreeze('*');
      await bench.env.sleep(20 * MINUTE);
      expect((await h.query(statusQuery)).weight).toBe(10);
      await freeze('test', 'fixture: namespace test');
      await bench.env.sleep(2 * HOUR);
      const stage1 = await h.query(statusQuery);
      expect([stage1.freeze?.scope, stage1.weight]).toEqual(['test', 10]);
      await unfreeze('test');
      await bench.result(h);
      const runs = await runHistories(client, h.workflowId, h.firstExecutionRunId);
      for (const [i, run] of runs.entries()) {
        const history = await client.workflow.getHandle(h.workflowId, run.runId).fetchHistory();
        const file = path.join(FIXTURES, `fleet-promoted-run-${i + 1}.history.json`);
        fs.writeFileSync(file, historyToJSON(history));
        console.log(`wrote ${file} (${history.events?.length} events)`);
      }
    } finally {
      await bench.close();
    }
  },
  300_000,
);

/** The alert kinds a run's history delivered (its deliverAlert activities' inputs), in order, once per event. */
function deliveredAlerts(history: temporal.api.history.v1.IHistory): string[] {
  const ids = new Set<string>();
  const kinds: string[] = [];
  for (const e of history.events ?? []) {
    const a = e.activityTaskScheduledEventAttributes;
    if (a?.activityType?.name !== 'deliverAlert') continue;
    const alert = defaultPayloadConverter.fromPayload<RolloutAlert>(a.input!.payloads![1]);
    if (ids.has(alert.id)) continue;
    ids.add(alert.id);
    kinds.push(alert.kind);
  }
  return kinds;
}

/** Writes every run of a workflow as `<name>-run-<n>.history.json`; returns the histories. */
async function writeRuns(
  client: Client,
  workflowId: string,
  firstRunId: string,
  name: string,
): Promise<temporal.api.history.v1.IHistory[]> {
  const histories = [];
  const runs = await runHistories(client, workflowId, firstRunId);
  for (const [i, run] of runs.entries()) {
    const history = await client.workflow.getHandle(workflowId, run.runId).fetchHistory();
    const file = path.join(FIXTURES, `${name}-run-${i + 1}.history.json`);
    fs.writeFileSync(file, historyToJSON(history));
    console.log(`wrote ${file} (${history.events?.length} events)`);
    histories.push(history);
  }
  return histories;
}

record(
  'records fleet-queued-{promoted,aborted,limit}-run-*.history.json',
  async () => {
    // The local stack runs one app: the holder's removal of its canary after it promotes (after it gave its slot
    // back) would remove the next rollout's. On a cluster each app has its own; here the holder leaves it, and the
    // next rollout's canary replaces it.
    const holderApp = 'fleet-holder';
    const bench = await RolloutBench.start({
      providers: (real: ProviderRegistry): ProviderSource => ({
        router: (t) => real.router(t),
        workloads: (t) => {
          const w = real.workloads(t);
          if (t.app !== holderApp) return w;
          return Object.assign(Object.create(w) as WorkloadManager, {
            cleanupCanary: () => Promise.resolve(),
          });
        },
        metrics: (t) => real.metrics(t),
        alerts: real.alerts,
        alertSinks: real.alertSinks,
      }),
    });
    try {
      const client = bench.env.client;
      const target = { traffic: { local: {} }, workload: { kind: 'local' } };
      // A limit of 1 on namespace test, set as `canary fleet limit` does (client/fleet.ts): signal-with-start.
      const fleet = await client.workflow.signalWithStart(FLEET_WORKFLOW, {
        workflowId: fleetWorkflowId('test'),
        taskQueue: bench.taskQueue,
        args: [{ scope: 'test' }],
        signal: fleetLimitSignal,
        signalArgs: [{ identity: 'alice', max: 1 }],
      });
      const first = await bench.startRollout(holderApp, 'v2', plan, undefined, target);
      await bench.env.sleep(20 * MINUTE);
      expect((await first.query(statusQuery)).weight).toBe(10);

      // Two more queue behind it, in order, with no traffic.
      const queued = await bench.startRollout('fleet-queued', 'v3', plan, undefined, target);
      await bench.env.sleep(5 * MINUTE);
      const aborted = await bench.startRollout('fleet-queued-abort', 'v3', plan, undefined, target);
      await bench.env.sleep(5 * MINUTE);
      const q1 = await queued.query(statusQuery);
      const q2 = await aborted.query(statusQuery);
      expect([q1.phase, q1.queued, q1.weight]).toEqual([
        'queued',
        { namespace: 'test', position: 1, max: 1 },
        0,
      ]);
      expect([q2.phase, q2.queued]).toEqual(['queued', { namespace: 'test', position: 2, max: 1 }]);
      expect(await fleet.query(fleetStatusQuery)).toMatchObject({
        holders: [first.workflowId],
        queue: [queued.workflowId, aborted.workflowId],
      });

      // The third leaves the queue by an abort (nothing to roll back). Then the holder ends (promoted: aborting it
      // mid-analysis can wedge the time-skipping server, sdk-typescript#1058), and the second gets the slot and walks
      // its plan.
      await aborted.signal(abortSignal, { identity: 'bob', reason: 'fixture: not needed' });
      const abortedResult = await bench.result(aborted);
      expect([abortedResult.outcome, abortedResult.finalWeight]).toEqual(['rolled_back', 0]);
      expect((await bench.result(first)).outcome).toBe('promoted');
      const promoted = await bench.result(queued);
      expect([promoted.outcome, promoted.version]).toEqual(['promoted', 'v3']);

      // The histories hold the queued phase's alerts: queued then dequeued before the canary; queued then the
      // rollback for the one aborted while queued.
      const promotedRuns = await writeRuns(
        client,
        queued.workflowId,
        queued.firstExecutionRunId,
        'fleet-queued-promoted',
      );
      expect(deliveredAlerts(promotedRuns[0]).slice(0, 3)).toEqual(['queued', 'dequeued', 'rollout_started']);
      const abortedRuns = await writeRuns(
        client,
        aborted.workflowId,
        aborted.firstExecutionRunId,
        'fleet-queued-aborted',
      );
      expect(deliveredAlerts(abortedRuns[0])).toEqual(['queued', 'rollback_started', 'rolled_back']);

      // Lifting the limit leaves the fleet workflow nothing to hold: it ends, and its whole history is recorded.
      await fleet.signal(fleetLimitSignal, { identity: 'alice' });
      await fleet.result();
      await writeRuns(client, fleet.workflowId, fleet.signaledRunId, 'fleet-queued-limit');
    } finally {
      await bench.close();
    }
  },
  300_000,
);
