// `canary report`: what it reads from recorded histories (test/fixtures), how it counts and spreads them, and the
// range it refuses (exit 2) before it connects.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { historyFromJSON } from '@temporalio/common/lib/proto-utils';
import { EXIT_BAD_INPUT, main } from '../../client/cli';
import { reportRange } from '../../client/commands/fleet-report';
import { buildReport, renderReport, runFromHistory, type RunRecord } from '../../client/rollout-report';
import type { RolloutResult } from '../../workflows/types';

const FIXTURES = path.join(__dirname, '..', 'fixtures');
const NOW = Date.UTC(2026, 11, 5, 12, 0, 0);

function fixture(name: string, run: Partial<RunRecord> & { result?: RolloutResult }): RunRecord {
  const history = historyFromJSON(
    JSON.parse(fs.readFileSync(path.join(FIXTURES, `${name}.history.json`), 'utf8')),
  );
  const events = history.events ?? [];
  const at = (i: number) => Number(events[i].eventTime?.seconds ?? 0) * 1000;
  return runFromHistory(
    history,
    {
      workflowId: run.workflowId ?? name,
      runId: run.runId ?? `${name}-run`,
      status: run.status ?? 'COMPLETED',
      startMs: at(0),
      closeMs: at(events.length - 1),
      ...(run.result ? { result: run.result } : {}),
    },
    NOW,
  );
}

const result = (outcome: RolloutResult['outcome'], extra: Partial<RolloutResult> = {}): RolloutResult => ({
  outcome,
  app: 'checkout',
  namespace: 'prod',
  version: 'v2',
  finalWeight: 0,
  approvals: [],
  ...extra,
});

describe('what a run recorded', () => {
  test('a rollback by a check: its phases, its plan checks, and the round that saw the breach → weight 0', () => {
    const run = fixture('machine-v2-rolled-back-by-analysis', {
      status: 'FAILED',
      result: result('rolled_back', {
        reason: 'analysis at 5%: error-rate: 9 > 1',
        ending: { kind: 'check' },
      }),
    });
    expect(run.first).toBe(true);
    expect(run.checks).toEqual(['error-rate', 'latency-p95']);
    expect(run.phases.map((p) => p.phase)).toEqual(['progressing', 'rolling_back']);
    // The recorded rollback: the round's activity completed, then weight 0 was published 39 ms later.
    expect(run.breachToZeroMs).toBe(39);
  });

  test('a promoted rollout: pauses and the wait for approval are phases of their own', () => {
    const run = fixture('machine-v2-promoted', { result: result('promoted') });
    expect(run.phases.map((p) => p.phase)).toEqual([
      'progressing',
      'paused',
      'progressing',
      'paused',
      'progressing',
      'waiting_approval',
      'progressing',
      'promoted',
    ]);
    const wait = run.phases.find((p) => p.phase === 'waiting_approval')!;
    expect(wait.toMs - wait.fromMs).toBe(5_401_659);
    expect(run.breachToZeroMs).toBeUndefined();
  });

  test('a continued run is not a rollout of its own', () => {
    expect(fixture('machine-v2-continued-as-new-run-2', { result: result('promoted') }).first).toBe(false);
  });
});

describe('the report', () => {
  const promoted = fixture('machine-v2-promoted', { workflowId: 'a', result: result('promoted') });
  const rolledBack = fixture('machine-v2-rolled-back-by-analysis', {
    workflowId: 'b',
    status: 'FAILED',
    result: result('rolled_back', {
      reason: 'analysis at 5%: error-rate: 9 > abort max 5 (critical): roll back at once',
      ending: { kind: 'check' },
    }),
  });
  const aborted = fixture('machine-v2-aborted-at-gate', {
    workflowId: 'c',
    status: 'FAILED',
    result: result('rolled_back', { reason: 'declined by bob', ending: { kind: 'decline', by: 'bob' } }),
  });
  const range = { fromMs: 0, toMs: Date.UTC(2100, 0, 1) };

  test('counts outcomes, rollback reasons by check, endings, and spreads phases, breaches and waits', () => {
    const report = buildReport([promoted, rolledBack, aborted], range);
    expect(report.rollouts).toEqual({
      started: 3,
      promoted: 1,
      rolledBack: 1,
      aborted: 1,
      notStarted: 0,
      running: 0,
      other: 0,
    });
    expect(report.rollbackReasons).toEqual([{ check: 'error-rate', count: 1 }]);
    expect(report.endings).toEqual({ check: 1, decline: 1 });
    expect(report.breachToZero).toEqual({ count: 1, p50Ms: 39, p90Ms: 39 });
    expect(report.approvalWaits).toEqual({ count: 2, p50Ms: 1_799_844, p90Ms: 5_401_659 });
    expect(report.phases.find((p) => p.phase === 'waiting_approval')).toEqual({
      phase: 'waiting_approval',
      count: 2,
      p50Ms: 1_799_844,
      p90Ms: 5_401_659,
    });
    const text = renderReport(report);
    expect(text).toContain('promoted 1, rolled back 1, aborted 1, not started 0, running 0');
    expect(text).toMatch(/Rollback reasons by check:\n {2}error-rate {2}1/);
    expect(text).toContain('Breach → weight 0:     p50 39 ms, p90 39 ms (1)');
    expect(text).toContain('Waiting for approval:  p50 30m, p90 1h30m2s (2)');
  });

  test('a rollout counts once, where its first run started; its continued runs add to its phases', () => {
    const first = { ...promoted, status: 'CONTINUED_AS_NEW', result: undefined } as RunRecord;
    const next = { ...promoted, first: false, startMs: first.closeMs! + 1, closeMs: first.closeMs! + 1000 };
    const report = buildReport([first, next], range);
    expect(report.rollouts.started).toBe(1);
    expect(report.rollouts.promoted).toBe(1);
    expect(report.phases.find((p) => p.phase === 'waiting_approval')).toMatchObject({
      count: 1,
      p50Ms: 2 * 5_401_659,
    });
    // Continued into the range from a rollout that started before it: not one of the range's.
    expect(buildReport([next], range).rollouts.started).toBe(0);
    expect(buildReport([first, next], { fromMs: first.startMs + 1, toMs: range.toMs }).rollouts.started).toBe(
      0,
    );
  });
});

describe('the range (exit 2 before anything connects)', () => {
  test('30d back from now, a time, or -7d', () => {
    expect(reportRange('30d', 'now', NOW)).toEqual({ fromMs: NOW - 30 * 86_400_000, toMs: NOW });
    expect(reportRange('2026-12-01T00:00:00Z', '-1d', NOW)).toEqual({
      fromMs: Date.UTC(2026, 11, 1),
      toMs: NOW - 86_400_000,
    });
    expect(reportRange('-7d', 'now', NOW).fromMs).toBe(NOW - 7 * 86_400_000);
  });

  test.each([
    ['30 days', 'now', /^--since: "30 days" is not a duration or a time/],
    ['yesterday', 'now', /^--since: "yesterday" is not a time/],
    ['0s', 'now', /is empty: --since must be before --until$/],
    ['1d', '-2d', /is empty/],
    ['2099-01-01T00:00:00Z', 'now', /^--since: 2099-01-01T00:00:00.000Z is in the future/],
    ['1d', '2099-01-01T00:00:00Z', /^--until: 2099-01-01T00:00:00.000Z is in the future/],
  ])('--since %s --until %s is refused', (since, until, message) => {
    expect(() => reportRange(since, until, NOW)).toThrow(message);
  });

  test('the CLI exits 2 and never connects', async () => {
    let stderr = '';
    let connects = 0;
    const code = await main(['report', '--since', 'last month'], {
      stdout: { write: () => undefined },
      stderr: { write: (s: string) => (stderr += s) },
      env: { PATH: process.env.PATH, CANARY_IDENTITY: 'tester' },
      connect: async () => {
        connects++;
        throw new Error('connect must not be called');
      },
    });
    expect(code).toBe(EXIT_BAD_INPUT);
    expect(stderr).toContain('--since: "last month" is not');
    expect(connects).toBe(0);
  });
});
