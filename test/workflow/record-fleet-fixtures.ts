// Records a replay fixture with fleet controls (the fleet-controls patch): a rollout started while every namespace
// is frozen waits before its canary, goes on once unfrozen, is held past its stage's hold by its namespace's freeze
// (told through visibility), and promotes once that is lifted: test/fixtures/fleet-promoted-run-*.history.json.
// Not part of the suite (its name does not end in .test.ts): run it on purpose with
//   npx jest --testMatch '**/test/workflow/record-fleet-fixtures.ts'
// test/replay replays whatever the folder holds.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { historyToJSON } from '@temporalio/common/lib/proto-utils';
import { statusQuery } from '../../workflows/api';
import {
  FLEET_WORKFLOW,
  fleetFreezeSignal,
  fleetUnfreezeSignal,
  fleetWorkflowId,
} from '../../workflows/fleet-api';
import type { PlanSpec } from '../../workflows/plan';
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
