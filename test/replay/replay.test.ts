// Replays recorded rollout histories against today's workflow code: a change that would break rollouts
// already in flight fails here. Record new fixtures with `npm run record-fixtures`.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { historyFromJSON } from '@temporalio/common/lib/proto-utils';
import { Worker } from '@temporalio/worker';
import { NO_METRICS_SINKS } from '../../worker/worker';
import { DeterminismViolationError } from '@temporalio/workflow';
import { workflowBundle } from '../../harness/rollout-env';

const FIXTURES = path.join(__dirname, '..', 'fixtures');
const files = fs.readdirSync(FIXTURES).filter((f) => f.endsWith('.history.json'));

test('fixtures exist', () => {
  expect(files).toEqual(
    expect.arrayContaining([
      'promoted.history.json',
      'rolled-back-by-analysis.history.json',
      'aborted-at-gate.history.json',
      'continued-as-new-run-2.history.json',
      // Recorded after rollouts carried their own target (routing setup and teardown, drift, capacity check).
      'target-promoted.history.json',
      'target-rolled-back-by-analysis.history.json',
      'target-aborted-at-gate.history.json',
      'target-continued-as-new-run-2.history.json',
      // Recorded with the never-stuck rollout (preflight, rounds at a hold's end, the soak), and its new paths: the
      // full analysis form, a rollout that did not start, going back during the soak.
      'never-stuck-promoted.history.json',
      'never-stuck-rolled-back-by-analysis.history.json',
      'never-stuck-aborted-at-gate.history.json',
      'never-stuck-continued-as-new-run-2.history.json',
      'never-stuck-full-form-rolled-back.history.json',
      'never-stuck-full-form-medium-rolled-back.history.json',
      'never-stuck-not-started.history.json',
      'never-stuck-soak-went-back.history.json',
      // Fleet controls: a rollout held by freezes; one queued by its namespace's maxConcurrent that gets its slot and
      // promotes, one aborted while queued (both with the queued/dequeued alerts), and the fleet workflow that held
      // the limit.
      'fleet-promoted-run-1.history.json',
      'fleet-queued-promoted-run-1.history.json',
      'fleet-queued-aborted-run-1.history.json',
      'fleet-queued-limit-run-1.history.json',
      // The rollback's first shift back as a local activity (an abort, an analysis rollback), and a pause that holds
      // the walk: paused before the preflight, nothing deployed until the resume.
      'rollback-local-aborted-run-1.history.json',
      'rollback-local-rolled-back-run-1.history.json',
      'pause-holds-paused-before-canary-run-1.history.json',
      // The release workflow: three members promoted together after a wave's bake, one member aborted (the release
      // rolls the others back), and a member's failure held until a person went on without it.
      'release-together-promoted-run-1.history.json',
      'release-member-aborted-run-1.history.json',
      'release-held-continued-run-1.history.json',
    ]),
  );
});

test.each(files)(
  '%s replays without non-determinism',
  async (file) => {
    const history = historyFromJSON(JSON.parse(fs.readFileSync(path.join(FIXTURES, file), 'utf8')));
    await expect(
      Worker.runReplayHistory(
        { workflowBundle: await workflowBundle(), sinks: NO_METRICS_SINKS },
        history,
        `replay-${file}`,
      ),
    ).resolves.toBeUndefined();
  },
  120_000,
);

test('a workflow change that alters commands is caught as non-determinism', async () => {
  const history = historyFromJSON(
    JSON.parse(fs.readFileSync(path.join(FIXTURES, 'promoted.history.json'), 'utf8')),
  );
  await expect(
    Worker.runReplayHistory(
      { workflowsPath: require.resolve('./diverged-workflow') },
      history,
      'replay-diverged',
    ),
  ).rejects.toThrow(DeterminismViolationError);
}, 120_000);
