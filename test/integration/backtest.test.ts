// `canary backtest` against a real Prometheus (Debian's 2.42) serving a history this test wrote: 48 h and more
// of the http_* series, backfilled with promtool (harness/backfill.ts). Every round is measured by the live
// rollout's measureChecks activity at its historical time and judged by the live judges; the test asserts the
// exact round times and decisions its history implies. Then the built CLI (dist/client/cli.js): output and exit
// codes (bad range 2, Prometheus unreachable 3).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { runBacktest, shortFormMeasureChecks, type BacktestResult } from '../../client/backtest';
import type { ReleaseBacktestResult } from '../../client/backtest-release';
import { prometheusMeasure } from '../../client/backtest-prometheus';
import { validatePlan, type PlanSpec } from '../../workflows/plan';
import { validateTarget, type Target } from '../../workflows/target';
import type { Plan } from '../../workflows/types';
import { startBackfilledPrometheus, type SideHistory } from '../../harness/backfill';
import { freePort } from '../../demo/dev-server';
import { killAll, runCli } from '../../harness/processes';
import type { PrometheusServer } from '../../harness/prometheus';

jest.setTimeout(120_000);

const MIN = 60_000;
const HOUR = 60 * MIN;
const NAMESPACE = 'shop';
const versions = { canary: 'v2', stable: 'v1' };
// The history starts on a whole hour two days and two hours ago, so all of it (48 h 10 m) lies in the past.
const T = Math.floor(Date.now() / HOUR) * HOUR - 50 * HOUR;
const at = (minutes: number) => T + minutes * MIN;
const iso = (ms: number) => new Date(ms).toISOString();
const minutesOf = (ms: number) => (ms - T) / MIN;

const HEALTHY = { rps: 20, errorRate: 0.002 };
const SPIKE = { rps: 20, errorRate: 0.1 };

/** The canary (v2) of `app`, phase by phase (minutes after T), over the first two hours. */
function canary(app: string, phases: Array<[number, typeof HEALTHY]>, histogram = false): SideHistory {
  return {
    namespace: NAMESPACE,
    app,
    version: 'v2',
    histogram,
    untilMs: at(120),
    phases: phases.map(([m, b]) => ({ fromMs: at(m), ...b })),
  };
}

const history = {
  startMs: at(-10),
  endMs: at(48 * 60 + 10),
  stepMs: 15_000,
  sides: [
    // Two days of a healthy canary beside a healthy stable.
    { namespace: NAMESPACE, app: 'steady', version: 'v2', phases: [{ fromMs: at(-10), ...HEALTHY }] },
    { namespace: NAMESPACE, app: 'steady', version: 'v1', phases: [{ fromMs: at(-10), ...HEALTHY }] },
    // 10 % errors from minute 45 on.
    canary(
      'spiky',
      [
        [-10, HEALTHY],
        [45, SPIKE],
      ],
      true,
    ),
    // A 2-minute blip of 10 % errors at minute 10.
    canary('blippy', [
      [-10, HEALTHY],
      [10, SPIKE],
      [12, HEALTHY],
    ]),
    // 10 % errors from minute 10 on.
    canary('stuck', [
      [-10, HEALTHY],
      [10, SPIKE],
    ]),
    // A stable at 1 % errors on day 1 and 0.2 % on day 2, and a canary at 1.5 % on day 2 only: a day-over-day
    // baseline reads day 1's stable.
    {
      namespace: NAMESPACE,
      app: 'daily',
      version: 'v1',
      phases: [
        { fromMs: at(-10), rps: 20, errorRate: 0.01 },
        { fromMs: at(23 * 60), rps: 20, errorRate: 0.002 },
      ],
    },
    {
      namespace: NAMESPACE,
      app: 'daily',
      version: 'v2',
      phases: [{ fromMs: at(24 * 60 - 10), rps: 20, errorRate: 0.015 }],
    },
  ],
};

let prom: PrometheusServer;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'canary-backtest-'));

beforeAll(async () => {
  prom = await startBackfilledPrometheus(history);
}, 120_000);

afterAll(async () => {
  killAll();
  await prom?.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

function planOf(spec: PlanSpec): Plan {
  const v = validatePlan(spec);
  if (!v.ok) throw new Error(JSON.stringify(v.problems, null, 2));
  return v.plan;
}

function targetOf(app: string, url = prom.url): Target {
  const v = validateTarget({
    app,
    namespace: NAMESPACE,
    metrics: { prometheus: { url, templates: 'http' } },
  });
  if (!v.ok) throw new Error(JSON.stringify(v.problems));
  return v.target;
}

/** The backtest as the CLI runs it: measureChecks against the real Prometheus, the live judges. */
async function backtest(app: string, plan: Plan, fromMs: number, toMs: number): Promise<BacktestResult> {
  const checks = plan.analysis.rules ?? shortFormMeasureChecks(plan);
  const { measure } = prometheusMeasure(targetOf(app), checks, versions, {});
  return runBacktest({ plan, fromMs, toMs, measure });
}

const ERROR_RATE_CRITICAL = {
  name: 'error-rate',
  metric: 'error-rate',
  minRequests: 100,
  success: { max: 1 },
  abort: { max: 5, severity: 'critical' },
};
const ERROR_RATE_HIGH_FOR_3M = {
  name: 'error-rate',
  metric: 'error-rate',
  success: { max: 1 },
  abort: { max: 5, severity: 'high', for: '3m' },
};
const decisions = (r: BacktestResult, from: number, to: number) =>
  r.rounds
    .filter((x) => x.atMs >= at(from) && x.atMs <= at(to))
    .map((x) => `${minutesOf(x.atMs)} ${x.decision}`);

test('48 h of healthy history promotes at the end of the last hold, every round passing', async () => {
  const plan = planOf({
    analysis: {
      interval: '1m',
      checks: [
        ERROR_RATE_CRITICAL,
        { name: 'errors-vs-stable', metric: 'error-rate', compare: { to: 'stable', ratio: { max: 3 } } },
        { name: 'traffic', metric: 'request-rate', success: { min: 5 } },
      ],
    },
    stages: [
      { weight: 5, hold: '1h' },
      { weight: 10, hold: '3h' },
      { weight: 25, hold: '20h', gate: 'approval' },
      { weight: 50, hold: '24h' },
      { weight: 100 },
    ],
  } as PlanSpec);
  const r = await backtest('steady', plan, at(0), at(48 * 60 + 5));
  expect(r.outcome).toEqual({ kind: 'promoted', at: iso(at(48 * 60)), atMs: at(48 * 60) });
  // A round every minute from each stage's entry, the one at the minute a hold ends included (the stage moves on
  // after it): 60 + 180 + 1200 + 1440.
  expect(r.rounds).toHaveLength(2880);
  const failed = r.rounds.filter((x) => x.verdict !== 'pass');
  expect(failed).toEqual([]);
  expect(r.notes).toEqual([]);
  expect(r.rounds[0].checks).toEqual([
    expect.objectContaining({ name: 'error-rate', outcome: 'pass', value: expect.closeTo(0.2, 6) }),
    expect.objectContaining({ name: 'errors-vs-stable', outcome: 'pass', baseline: expect.closeTo(0.2, 6) }),
    expect.objectContaining({ name: 'traffic', outcome: 'pass', value: expect.closeTo(20, 6) }),
  ]);
  expect(r.events.map((e) => [minutesOf(e.atMs), e.kind, e.weight])).toEqual([
    [0, 'stage_entered', 5],
    [60, 'stage_entered', 10],
    [240, 'approval_assumed', 10],
    [240, 'stage_entered', 25],
    [1440, 'stage_entered', 50],
    [2880, 'stage_entered', 100],
    [2880, 'promoted', 100],
  ]);
  expect(r.assumptions.join('\n')).toMatch(/approval gates were assumed approved at once \(stage 3\)/);
});

const twoStages = (checks: object[]): Plan =>
  planOf({
    analysis: { interval: '1m', checks },
    stages: [{ weight: 10, hold: '30m' }, { weight: 50, hold: '30m' }, { weight: 100 }],
  } as PlanSpec);

test('an error spike under a critical check rolls back at the round after the spike begins', async () => {
  const plan = twoStages([
    ERROR_RATE_CRITICAL,
    { name: 'p95', metric: 'latency-p95', success: { max: 300 }, abort: { max: 1000, severity: 'high' } },
  ]);
  const r = await backtest('spiky', plan, at(0), at(119));
  expect(r.outcome).toMatchObject({ kind: 'rolled_back', atMs: at(46), stage: 2, weight: 50 });
  expect(r.outcome.kind === 'rolled_back' && r.outcome.reason).toMatch(
    /^analysis at 50%: error-rate: 10: 10 > abort max 5 \(critical\): roll back at once$/,
  );
  expect(decisions(r, 44, 46)).toEqual(['44 continue', '45 continue', '46 rollback']);
  // Stage 1's rounds at minutes 1-30 (its hold's end included), then stage 2's at 31-46.
  expect(r.rounds).toHaveLength(30 + 16);
  const last = r.rounds[r.rounds.length - 1];
  expect(last.checks[0]).toMatchObject({
    name: 'error-rate',
    outcome: 'breach',
    value: expect.closeTo(10, 6),
  });
  // The latency histogram is read too: 90 ms lies in the (50, 100] ms bucket.
  expect(last.checks[1]).toMatchObject({ name: 'p95', outcome: 'pass' });
  expect(last.checks[1].value).toBeGreaterThan(50);
  expect(last.checks[1].value).toBeLessThanOrEqual(100);
});

test('a high check with for: 3m holds through a 2-minute blip and promotes on time', async () => {
  const plan = planOf({
    analysis: { interval: '1m', checks: [ERROR_RATE_HIGH_FOR_3M] },
    stages: [{ weight: 10, hold: '30m' }, { weight: 100 }],
  } as PlanSpec);
  const r = await backtest('blippy', plan, at(0), at(119));
  expect(r.outcome).toMatchObject({ kind: 'promoted', atMs: at(30) });
  expect(decisions(r, 10, 14)).toEqual(['10 continue', '11 hold', '12 hold', '13 continue', '14 continue']);
  expect(r.rounds.find((x) => x.atMs === at(12))?.checks[0].note).toMatch(/breaching for 1m of 3m/);
});

test('the same check rolls back once the errors have lasted 3 minutes', async () => {
  const plan = planOf({
    analysis: { interval: '1m', checks: [ERROR_RATE_HIGH_FOR_3M] },
    stages: [{ weight: 10, hold: '30m' }, { weight: 100 }],
  } as PlanSpec);
  const r = await backtest('stuck', plan, at(0), at(119));
  expect(decisions(r, 10, 14)).toEqual(['10 continue', '11 hold', '12 hold', '13 hold', '14 rollback']);
  expect(r.outcome).toMatchObject({ kind: 'rolled_back', atMs: at(14), stage: 1, weight: 10 });
  expect(r.outcome.kind === 'rolled_back' && r.outcome.reason).toMatch(/for 3m of 3m \(high\): roll back/);
});

const SHORT_FORM = {
  analysis: {
    interval: '1m',
    failureLimit: 2,
    checks: [{ name: 'error-rate', metric: 'error-rate', max: 1 }],
  },
  stages: [
    { weight: 10, hold: '30m' },
    { weight: 100, hold: '10m' },
  ],
};

test('a short-form plan is judged by the original judge: failureLimit failures in a row roll back', async () => {
  const r = await backtest('stuck', planOf(SHORT_FORM as PlanSpec), at(0), at(119));
  expect(r.judge).toBe('judge');
  expect(decisions(r, 9, 12)).toEqual(['9 continue', '10 continue', '11 hold', '12 rollback']);
  expect(r.outcome).toMatchObject({
    kind: 'rolled_back',
    atMs: at(12),
    reason: 'analysis failed 2 time(s) in a row at 10%: error-rate 10 > max 1',
  });
});

test('a day-over-day baseline (compare.offset: 1d) compares with stable as it was a day earlier', async () => {
  const planWith = (offset?: string) =>
    planOf({
      analysis: {
        interval: '1m',
        checks: [
          {
            name: 'errors-vs-stable',
            metric: 'error-rate',
            window: '5m',
            compare: { to: 'stable', ...(offset ? { offset } : {}), difference: { max: 1 } },
            abort: { difference: { max: 3 }, severity: 'critical' },
          },
        ],
      },
      stages: [{ weight: 10, hold: '10m' }, { weight: 100 }],
    } as PlanSpec);
  const from = at(24 * 60 + 30);
  const to = at(24 * 60 + 50);
  const daily = await backtest('daily', planWith('1d'), from, to);
  const first = daily.rounds[0].checks[0];
  expect(first).toMatchObject({ outcome: 'pass' });
  expect(first.value).toBeCloseTo(1.5, 1);
  expect(first.baseline).toBeCloseTo(1, 1);
  expect(first.note).toMatch(/\(stable 24h earlier 1(\.\d+)?, ratio 1\.5\d*\) ok/);
  expect(daily.outcome).toMatchObject({ kind: 'promoted', atMs: at(24 * 60 + 40) });
  // Against stable now (0.2 %) the same canary is 1.3 points worse: between the bands, it never advances.
  const now = await backtest('daily', planWith(), from, to);
  expect(now.rounds[0].checks[0].baseline).toBeCloseTo(0.2, 1);
  expect(now.rounds.every((x) => x.decision === 'hold')).toBe(true);
  expect(now.outcome.kind).toBe('running');
});

describe('the CLI (dist/client/cli.js)', () => {
  const file = (name: string, body: unknown): string => {
    const f = path.join(dir, name);
    fs.writeFileSync(f, JSON.stringify(body, null, 2));
    return f;
  };
  const shortPlan = () => file('short.json', SHORT_FORM);
  const targetFile = (app: string, url: string) =>
    file(`${app}.target.json`, {
      app,
      namespace: NAMESPACE,
      metrics: { prometheus: { url, templates: 'http' } },
    });
  const canary = (...args: string[]) => runCli(['backtest', ...args], {});

  test('text output: header, rounds, the final line; exit 0 even when it would have rolled back', async () => {
    const r = await canary(
      '--plan',
      shortPlan(),
      '--target',
      targetFile('stuck', prom.url),
      '--version',
      'v2',
      '--from',
      iso(at(0)),
      '--to',
      iso(at(60)),
    );
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
    const lines = r.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^Backtest of .*short\.json \(10% 30m → 100% 10m\)$/);
    expect(r.stdout).toContain(`Prometheus: ${prom.url}`);
    expect(r.stdout).toMatch(/Judge: +the original judge \(short-form plan\)/);
    expect(r.stdout).toMatch(/stage weights do not change the historical data/);
    expect(r.stdout).toMatch(
      new RegExp(`${iso(at(11))}  1 +10% +10 fail +fail +hold: error-rate 10 > max 1`),
    );
    expect(lines[lines.length - 1]).toBe(
      `would have rolled back at ${iso(at(12))} (12m after --from, stage 1/2 at 10%) because analysis failed 2 ` +
        'time(s) in a row at 10%: error-rate 10 > max 1',
    );
  });

  test('--output json gives the same as JSON', async () => {
    const r = await canary(
      '--plan',
      shortPlan(),
      '--target',
      targetFile('blippy', prom.url),
      '--version',
      'v2',
      '--from',
      iso(at(0)),
      '--to',
      iso(at(60)),
      '--output',
      'json',
    );
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout) as BacktestResult & { prometheus: string; version: string };
    expect(out).toMatchObject({ prometheus: prom.url, version: 'v2', judge: 'judge', intervalMs: 60_000 });
    // The blip fails two rounds in a row: failureLimit 2 rolls back at the second.
    expect(out.outcome).toMatchObject({ kind: 'rolled_back', at: iso(at(12)) });
    expect(out.rounds.map((x) => x.verdict).slice(9, 12)).toEqual(['pass', 'fail', 'fail']);
  });

  test('a template that needs the version, without --version: exit 2 naming the flag', async () => {
    const r = await canary('--plan', shortPlan(), '--target', targetFile('stuck', prom.url), '--from', '-1h');
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/check "error-rate": .*version.*pass --version/);
  });

  test.each([
    [['--from', '-1h', '--to', '-2h'], /the range is empty: --from .* is not before --to/],
    [
      ['--from', '-30d'],
      /holds 43200 analysis rounds .* use a shorter range \(at most 166h40m at this interval\)/,
    ],
    [['--from', 'yesterday'], /--from: "yesterday" is not a time; use RFC 3339/],
    [['--from', '-1h', '--to', '+1h'], /--to: "\+1h" is not a time/],
  ])('bad range %j: exit 2', async (args, message) => {
    const r = await canary('--plan', shortPlan(), '--target', targetFile('stuck', prom.url), ...args);
    expect({ code: r.code, stdout: r.stdout }).toEqual({ code: 2, stdout: '' });
    expect(r.stderr).toMatch(message);
  });

  test('an invalid plan: exit 2 listing its problems', async () => {
    const bad = file('bad.json', { stages: [{ weight: 0, hold: '1h' }, { weight: 100 }] });
    const r = await canary('--plan', bad, '--target', targetFile('stuck', prom.url), '--from', '-1h');
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/plan is invalid/);
  });

  test('Prometheus unreachable: exit 3, the message names its host', async () => {
    const port = await freePort();
    const r = await canary(
      '--plan',
      shortPlan(),
      '--target',
      targetFile('stuck', `http://127.0.0.1:${port}`),
      '--version',
      'v2',
      '--from',
      '-1h',
    );
    expect(r.code).toBe(3);
    expect(r.stderr).toContain(`127.0.0.1:${port}`);
    expect(r.stderr).toMatch(/unreachable/);
  });

  test('canary release backtest: members in order over the same range; the breach of one rolls the release back', async () => {
    const plan = file('release-plan.json', {
      analysis: { interval: '1m', checks: [ERROR_RATE_CRITICAL] },
      stages: [{ weight: 10, hold: '30m' }, { weight: 100 }],
    });
    const release = file('release.json', {
      release: 'shop-1',
      members: [
        { id: 'steady', target: targetFile('steady', prom.url), version: 'v2', plan },
        { id: 'spiky', target: targetFile('spiky', prom.url), version: 'v2', plan, after: ['steady'] },
      ],
    });
    const range = ['--from', iso(at(0)), '--to', iso(at(119))];
    const r = await runCli(['release', 'backtest', '-f', release, ...range], {});
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
    // steady passes at minute 30 and spiky starts then; its errors from minute 45 breach at 46.
    expect(r.stdout).toContain(`steady: rolled back by release, started ${iso(at(0))}`);
    expect(r.stdout).toMatch(new RegExp(`spiky \\(after steady\\): rolled back, started ${iso(at(30))}`));
    const lines = r.stdout.trim().split('\n');
    expect(lines[lines.length - 1]).toMatch(
      new RegExp(
        `^the release would have rolled back at ${iso(at(46))} \\(46m after --from\\) because member spiky rolled back ` +
          '\\(check error-rate\\) at stage 1/2 \\(10%\\): analysis at 10%: error-rate',
      ),
    );
    const j = await runCli(['release', 'backtest', '-f', release, ...range, '--output', 'json'], {});
    expect(j.code).toBe(0);
    const out = JSON.parse(j.stdout) as ReleaseBacktestResult;
    expect(out.outcome).toMatchObject({
      kind: 'rolled_back',
      member: 'spiky',
      atMs: at(46),
      checks: ['error-rate'],
    });
    expect(out.backtests.steady.outcome).toMatchObject({ kind: 'promoted', atMs: at(30) });
    // A bad range is the single backtest's exit 2.
    const bad = await runCli(['release', 'backtest', '-f', release, '--from', '-1h', '--to', '-2h'], {});
    expect(bad.code).toBe(2);
  });

  test('--help documents times, Prometheus and the exit codes', async () => {
    const r = await canary('--help');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/--from <time>/);
    expect(r.stdout).toMatch(/Times: RFC 3339 .*now, or relative to now\n +\(-7d, -36h, now-90m\)/);
    expect(r.stdout).toMatch(/Exit codes: 0 the backtest ran .*, 2 bad input/);
    expect(r.stdout).toMatch(/3 Prometheus unreachable/);
  });
});
