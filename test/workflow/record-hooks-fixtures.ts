// Records a replay fixture of a hooked rollout (issue 17): HTTP hooks at every point but onRollback, a confirm gate
// that says "not yet" once, and an afterStage hook whose failure asks a person, who approves:
// test/fixtures/hooks-promoted-run-*.history.json.
// Not part of the suite (its name does not end in .test.ts): run it on purpose with
//   npx jest --testMatch '**/test/workflow/record-hooks-fixtures.ts'
// test/replay replays whatever the folder holds.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { historyToJSON } from '@temporalio/common/lib/proto-utils';
import { approveUpdate, statusQuery } from '../../workflows/api';
import type { PlanSpec } from '../../workflows/plan';
import { runHistories } from '../../harness/history';
import { startReceiver } from '../../harness/receivers';
import { HOUR, MINUTE, RolloutBench } from '../../harness/rollout-env';

const record = test;
const FIXTURES = path.join(__dirname, '..', 'fixtures');

record(
  'records hooks-promoted-run-*.history.json',
  async () => {
    let afterStage = 0;
    let confirm = 0;
    const receiver = await startReceiver({
      respond: (r) =>
        r.path === '/afterStage' && ++afterStage === 1
          ? { status: 422, body: 'migration check failed' }
          : r.path === '/confirm' && ++confirm === 1
            ? { status: 409, body: 'not yet' }
            : { status: 200, body: '{"ok":true}' },
    });
    const hook = (name: string, point: string, extra: Record<string, unknown> = {}) => ({
      name,
      http: { url: `${receiver.url}/${point}`, timeout: '10s', retries: 1 },
      ...extra,
    });
    const plan = {
      name: 'hooks-fixture',
      analysis: { interval: '30m', checks: [{ name: 'error-rate', metric: 'error-rate', max: 5 }] },
      stages: [{ weight: 10, hold: '1h' }, { weight: 50, hold: '1h' }, { weight: 100 }],
      promotion: { cleanupDelay: '0s' },
      hooks: {
        before: [hook('smoke', 'before')],
        beforeStage: [hook('ready', 'beforeStage')],
        afterStage: [hook('migration', 'afterStage', { onFailure: 'approval' })],
        beforePromotion: [hook('confirm', 'confirm', { confirm: { interval: '5m', limit: 3 } })],
        afterPromotion: [hook('notify', 'afterPromotion')],
        onRollback: [hook('page', 'onRollback')],
      },
    } as PlanSpec;
    const bench = await RolloutBench.start();
    try {
      const h = await bench.startRollout('hooks-fixture', 'v2', plan, undefined, {
        traffic: { local: {} },
        workload: { kind: 'local' },
      });
      await bench.env.sleep(HOUR + 10 * MINUTE);
      expect((await h.query(statusQuery)).hookQuestion?.hook).toBe('migration');
      await h.executeUpdate(approveUpdate, {
        args: [{ identity: 'alice', stage: 1, comment: 'checked by hand' }],
      });
      await bench.result(h);
      expect(receiver.requests.length).toBeGreaterThanOrEqual(9);
      const runs = await runHistories(bench.env.client, h.workflowId, h.firstExecutionRunId);
      for (const [i, run] of runs.entries()) {
        const history = await bench.env.client.workflow.getHandle(h.workflowId, run.runId).fetchHistory();
        const file = path.join(FIXTURES, `hooks-promoted-run-${i + 1}.history.json`);
        fs.writeFileSync(file, historyToJSON(history));
        console.log(`wrote ${file} (${history.events?.length} events)`);
      }
    } finally {
      await bench.close();
      await receiver.close();
    }
  },
  300_000,
);
