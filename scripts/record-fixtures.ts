// Records full rollout histories as replay fixtures (test/fixtures/*.history.json). Run it when the
// workflow changes on purpose and old histories no longer matter; otherwise guard changes with patched() and
// record a new set beside the old one with `--prefix NAME-` (the old fixtures keep guarding older rollouts).
import { rolloutResult } from '../client/index';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { historyToJSON } from '@temporalio/common/lib/proto-utils';
import { abortSignal, approveUpdate, pauseSignal, resumeSignal } from '../workflows/api';
import type { PlanSpec } from '../workflows/plan';
import { runHistories } from '../harness/history';
import { HOUR, MINUTE, RolloutBench } from '../harness/rollout-env';

const FIXTURES = path.join(__dirname, '..', '..', 'test', 'fixtures');
const prefixAt = process.argv.indexOf('--prefix');
const PREFIX = prefixAt >= 0 ? (process.argv[prefixAt + 1] ?? '') : '';
// Rollouts name their target's router and workload (the local stack's), as every new rollout may.
const TARGET = { traffic: { local: {} }, workload: { kind: 'local' } };

// Exercises every path a recorded history should pin down: analyses, a gate, pause/resume, promotion.
const plan: PlanSpec = {
  name: 'fixture',
  analysis: {
    interval: '10m',
    checks: [
      { name: 'error-rate', metric: 'error-rate', max: 5 },
      { name: 'latency-p95', metric: 'latency-p95', max: 1000 },
    ],
  },
  stages: [
    { weight: 5, hold: '1h' },
    { weight: 25, hold: '1h', gate: 'approval' },
    { weight: 50, hold: '30m' },
    { weight: 100 },
  ],
  promotion: { cleanupDelay: '15m' },
};

// The full form: an error check that rolls back when its breach lasts, and a latency check that steps back.
const fullForm: PlanSpec = {
  name: 'fixture-full-form',
  analysis: {
    interval: '10m',
    checks: [
      {
        name: 'error-rate',
        metric: 'error-rate',
        success: { max: 1 },
        abort: { max: 5, severity: 'high', for: '20m' },
      },
      {
        name: 'latency-p95',
        metric: 'latency-p95',
        success: { max: 500 },
        abort: { max: 800, severity: 'medium', recoverAfter: '30m', rollbackAfter: '2h' },
      },
    ],
  },
  stages: [{ weight: 5, hold: '30m' }, { weight: 25, hold: '30m' }, { weight: 100 }],
  promotion: { cleanupDelay: '0s' },
} as PlanSpec;

async function main(): Promise<void> {
  const bench = await RolloutBench.start({
    faults: { 'v-bad': { errorRate: 0.5 }, 'v-slow': { latencyMs: 900 } },
  });
  try {
    fs.mkdirSync(FIXTURES, { recursive: true });
    const save = async (name: string, workflowId: string, runId: string) => {
      const history = await bench.env.client.workflow.getHandle(workflowId, runId).fetchHistory();
      const file = path.join(FIXTURES, `${PREFIX}${name}.history.json`);
      fs.writeFileSync(file, historyToJSON(history));
      console.log(`wrote ${file} (${history.events?.length} events)`);
    };

    const promoted = await bench.startRollout('fixture-promoted', 'v2', plan, undefined, TARGET);
    await bench.env.sleep(30 * MINUTE);
    await promoted.signal(pauseSignal, { identity: 'fixture', reason: 'look closer' });
    await bench.env.sleep(20 * MINUTE);
    await promoted.signal(resumeSignal, { identity: 'fixture' });
    // Someone moves the weight by hand: the rollout pauses on drift until it is resumed.
    await fetch(`${bench.stack.controlUrl}/weight`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ weight: 40 }),
    });
    await bench.env.sleep(15 * MINUTE);
    await promoted.signal(resumeSignal, { identity: 'fixture' });
    await bench.env.sleep(2 * HOUR);
    await promoted.executeUpdate(approveUpdate, { args: [{ identity: 'fixture', stage: 2, comment: 'ok' }] });
    await rolloutResult(promoted);
    await save('promoted', promoted.workflowId, promoted.firstExecutionRunId);

    await bench.reset();
    const faulty = await bench.startRollout('fixture-faulty', 'v-bad', plan, undefined, TARGET);
    await rolloutResult(faulty);
    await save('rolled-back-by-analysis', faulty.workflowId, faulty.firstExecutionRunId);

    await bench.reset();
    const aborted = await bench.startRollout('fixture-aborted', 'v2', plan, undefined, TARGET);
    await bench.env.sleep(HOUR + 30 * MINUTE);
    await aborted.signal(abortSignal, { identity: 'fixture', reason: 'recorded abort' });
    await rolloutResult(aborted);
    await save('aborted-at-gate', aborted.workflowId, aborted.firstExecutionRunId);

    // A run that starts from carried state: continue-as-new must resume, not restart, the plan.
    await bench.reset();
    const long = await bench.startRollout(
      'fixture-continued',
      'v2',
      { ...plan, stages: plan.stages.map((st) => ({ ...st, gate: undefined })) },
      { continueAsNewAfterEvents: 150 },
      TARGET,
    );
    await long.result();
    const runs = await runHistories(bench.env.client, long.workflowId, long.firstExecutionRunId);
    if (runs.length < 2) throw new Error('expected the rollout to continue as new');
    await save('continued-as-new-run-2', long.workflowId, runs[1].runId);

    // The full analysis form (bands, severities, a breach that must last, a medium breach): a canary too slow from
    // its first stage holds there until rollbackAfter rolls it back; one with errors rolls back once they last.
    await bench.reset();
    const full = await bench.startRollout('fixture-full-form', 'v-slow', fullForm, undefined, TARGET);
    await bench.env.sleep(3 * HOUR);
    await rolloutResult(full);
    await save('full-form-medium-rolled-back', full.workflowId, full.firstExecutionRunId);

    await bench.reset();
    const breach = await bench.startRollout('fixture-full-form-bad', 'v-bad', fullForm, undefined, TARGET);
    await rolloutResult(breach);
    await save('full-form-rolled-back', breach.workflowId, breach.firstExecutionRunId);

    // A rollout the preflight refuses (its windows never open): it ends not started, nothing touched.
    await bench.reset();
    const refused = await bench.startRollout(
      'fixture-not-started',
      'v2',
      {
        ...plan,
        windows: { timeZone: 'UTC', freeze: [{ from: '2026-01-01', to: '2999-01-01', reason: 'forever' }] },
      },
      undefined,
      TARGET,
    );
    await rolloutResult(refused);
    await save('not-started', refused.workflowId, refused.firstExecutionRunId);

    // Going back during the soak: promoted, then an abort sends the traffic back to the previous version.
    await bench.reset();
    const soak = await bench.startRollout(
      'fixture-soak-back',
      'v2',
      { ...plan, stages: [{ weight: 10, hold: '30m' }, { weight: 100 }], promotion: { cleanupDelay: '2h' } },
      undefined,
      TARGET,
    );
    await bench.env.sleep(HOUR);
    await soak.signal(abortSignal, { identity: 'fixture', reason: 'went back in the soak' });
    await rolloutResult(soak);
    await save('soak-went-back', soak.workflowId, soak.firstExecutionRunId);

    // Deployment windows (machine-v2): a daily window that closes during stage 1's hold (the hold counts only window
    // time, so the stage serves the rest the next day), then a gate approved while the window is closed again.
    await bench.reset();
    // The test server's clock, not this process's: the rollouts before skipped hours of it.
    const minuteOfDay = async () => {
      const t = new Date(await bench.env.currentTimeMs());
      return t.getUTCHours() * 60 + t.getUTCMinutes();
    };
    // A full hour of window today: after 23:00 the recording starts just after midnight.
    if ((await minuteOfDay()) >= 23 * 60)
      await bench.env.sleep((24 * 60 - (await minuteOfDay()) + 5) * MINUTE);
    const startMinute = Math.floor((await minuteOfDay()) / 15) * 15;
    const hhmm = (m: number) =>
      `${String(Math.floor(m / 60)).padStart(2, '0')}:${String(m % 60).padStart(2, '0')}`;
    const windowed = await bench.startRollout(
      'fixture-windows',
      'v2',
      {
        ...plan,
        // Rounds every 30 minutes keep the two days' history small.
        analysis: { ...plan.analysis, interval: '30m' },
        stages: [{ weight: 5, hold: '1h' }, { weight: 25, hold: '30m', gate: 'approval' }, { weight: 100 }],
        windows: {
          timeZone: 'UTC',
          allow: [
            { from: hhmm(startMinute), to: startMinute + 60 >= 1440 ? '24:00' : hhmm(startMinute + 60) },
          ],
        },
      },
      undefined,
      TARGET,
    );
    await bench.env.sleep(26 * HOUR);
    await windowed.executeUpdate(approveUpdate, { args: [{ identity: 'fixture', stage: 2, comment: 'ok' }] });
    await bench.env.sleep(24 * HOUR);
    await rolloutResult(windowed);
    await save('windows-promoted', windowed.workflowId, windowed.firstExecutionRunId);
  } finally {
    await bench.close();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
