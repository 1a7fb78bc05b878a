// Records a replay fixture with the issue-8 features (alert-sinks-v2 deliveries, an approval policy with two
// approvers and a reminder, pause and resume Updates, a deployment-window wait): test/fixtures/people-promoted-run-*.history.json.
// Not part of the suite (its name does not end in .test.ts): run it on purpose with
//   npx jest --testMatch '**/test/workflow/record-people-fixtures.ts'
// test/replay replays whatever the folder holds.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { historyToJSON } from '@temporalio/common/lib/proto-utils';
import { approveUpdate, pauseUpdate, resumeUpdate, statusQuery } from '../../workflows/api';
import type { PlanSpec } from '../../workflows/plan';
import { localToInstant } from '../../workflows/windows';
import { runHistories } from '../../harness/history';
import { HOUR, MINUTE, RolloutBench } from '../../harness/rollout-env';

const record = test;
const FIXTURES = path.join(__dirname, '..', 'fixtures');
const DAY = 24 * HOUR;

const plan: PlanSpec = {
  name: 'people-fixture',
  analysis: { interval: '30m', checks: [{ name: 'error-rate', metric: 'error-rate', max: 5 }] },
  approvals: {
    approvers: ['alice', 'group:sre'],
    groups: { sre: ['bob', 'carol'] },
    remindAfter: '30m',
    escalateAfter: '2h',
  },
  stages: [
    { weight: 10, hold: '1h' },
    { weight: 50, hold: '4h', gate: { type: 'approval', approvals: { required: 2 } } },
    { weight: 100 },
  ],
  promotion: { cleanupDelay: '10m' },
  windows: {
    timeZone: 'Europe/Berlin',
    allow: [{ from: '09:00', to: '17:00' }], // daily: the wait lasts a night, the fixture stays small
  },
  alerts: { routes: [{ sinks: ['log'], minSeverity: 'info' }] },
};

record(
  'records people-promoted-run-*.history.json',
  async () => {
    const bench = await RolloutBench.start();
    try {
      // Tomorrow 12:00 in Berlin: the gate passes in the afternoon, stage 2's hold ends after 17:00.
      const now = await bench.env.currentTimeMs();
      const day = Math.floor(now / DAY) * DAY + DAY;
      const start = localToInstant('Europe/Berlin', day + 12 * HOUR);
      await bench.env.sleep(start - now);
      const h = await bench.startRollout('people-fixture', 'v2', plan, undefined, {
        traffic: { local: {} },
        workload: { kind: 'local' },
      });
      await bench.env.sleep(20 * MINUTE);
      await h.executeUpdate(pauseUpdate, { args: [{ identity: 'alice', reason: 'fixture' }] });
      await bench.env.sleep(10 * MINUTE);
      await h.executeUpdate(resumeUpdate, { args: [{ identity: 'alice' }] });
      await bench.env.sleep(HOUR + 15 * MINUTE); // the gate waits; it reminds after 30 minutes
      await h.executeUpdate(approveUpdate, { args: [{ identity: 'alice', stage: 2 }] });
      await bench.env.sleep(5 * MINUTE);
      await h.executeUpdate(approveUpdate, { args: [{ identity: 'bob', stage: 2, comment: 'ok' }] });
      await bench.env.sleep(4 * HOUR + 30 * MINUTE);
      expect((await h.query(statusQuery)).window?.open).toBe(false);
      await bench.result(h);
      // Every run of the rollout (one, unless it continued as new).
      const runs = await runHistories(bench.env.client, h.workflowId, h.firstExecutionRunId);
      for (const [i, run] of runs.entries()) {
        const history = await bench.env.client.workflow.getHandle(h.workflowId, run.runId).fetchHistory();
        const file = path.join(FIXTURES, `people-promoted-run-${i + 1}.history.json`);
        fs.writeFileSync(file, historyToJSON(history));
        console.log(`wrote ${file} (${history.events?.length} events)`);
      }
    } finally {
      await bench.close();
    }
  },
  300_000,
);
