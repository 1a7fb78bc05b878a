// Issue 17's `web` and `dryRun` checks on the time-skipping server against the real local stack, with a real HTTP
// server started here whose answers the test changes mid-rollout: a web check whose endpoint starts to report
// errors rolls the rollout back to weight 0; a dry-run check that breaches changes nothing and status and alerts say
// what it would have done; a JSONPath that does not parse is refused by the CLI (exit 2) and by the workflow's own
// validation. Also measures a web check's round cost and the workflow time from breach to weight 0.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { ApplicationFailure, WorkflowFailedError } from '@temporalio/client';
import { rolloutResult } from '../../client/index';
import { renderStatus } from '../../client/render';
import { measureWeb } from '../../activities/metrics/web';
import { MINUTE, RolloutBench } from '../../harness/rollout-env';
import { statusQuery } from '../../workflows/api';
import type { PlanSpec } from '../../workflows/plan';

jest.setTimeout(300_000);

const APP = 'shop';
let bench: RolloutBench;
let server: http.Server;
let base: string;
/** What each path answers now (JSON), set by the tests. */
const answers = new Map<string, unknown>();
let requests = 0;

beforeAll(async () => {
  server = http.createServer((req, res) => {
    requests++;
    const url = new URL(req.url ?? '/', 'http://x');
    if (req.headers.authorization !== 'Bearer s3cret') {
      res.writeHead(401).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(answers.get(url.pathname) ?? {}));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  // The worker's secret: the plan only names it.
  process.env.CANARY_SECRET_STATUS_TOKEN = 's3cret';
  // v3 answers 30 % errors: a dry-run metric check breaches on what the local stack measures.
  bench = await RolloutBench.start({ faults: { v3: { errorRate: 0.3 } } });
}, 180_000);

afterAll(async () => {
  await bench?.close();
  await new Promise((r) => server.close(r));
  delete process.env.CANARY_SECRET_STATUS_TOKEN;
});
beforeEach(async () => bench.reset());

const headers = { Authorization: 'Bearer ${secret:STATUS_TOKEN}' };
const webCheck = (name: string, pathname: string, extra: Record<string, unknown> = {}) => ({
  name,
  web: { url: `${base}${pathname}`, jsonPath: '$.errors.rate', headers },
  success: { max: 1 },
  abort: { max: 5, severity: 'critical' },
  ...extra,
});

const plan = (checks: unknown[], stages?: PlanSpec['stages']): PlanSpec =>
  ({
    analysis: { interval: '1m', checks },
    stages: stages ?? [{ weight: 10, hold: '5m' }, { weight: 50, hold: '10m' }, { weight: 100 }],
    promotion: { cleanupDelay: '0s' },
  }) as PlanSpec;

test('a web check whose endpoint starts to report errors mid-rollout rolls it back to weight 0', async () => {
  answers.set('/health', { errors: { rate: 0.5 } });
  const h = await bench.startRollout(APP, 'v2', plan([webCheck('health', '/health')]));
  await bench.env.sleep(7 * MINUTE);
  let st = await h.query(statusQuery);
  expect({ stage: st.stage, weight: (await bench.live()).weight }).toEqual({ stage: 2, weight: 50 });
  expect(st.analyses[st.analyses.length - 1].checks[0]).toMatchObject({ value: 0.5, judged: 'pass' });

  // The endpoint changes its answer: the next round breaches, critical rolls back at once.
  const changedAt = await bench.env.currentTimeMs();
  answers.set('/health', { errors: { rate: 9 } });
  const result = await rolloutResult(h);
  expect(result.outcome).toBe('rolled_back');
  expect(result.reason).toBe('analysis at 50%: health: 9: 9 > abort max 5 (critical): roll back at once');
  expect(await bench.live()).toMatchObject({ weight: 0, canary: null });
  st = await h.query(statusQuery);
  expect(st.analyses[st.analyses.length - 1].checks[0]).toMatchObject({
    value: 9,
    band: 'abort',
    severity: 'critical',
    judged: 'breach',
  });
  // Figure: workflow time from the endpoint's change to weight 0 (the round due next, then the rollback).
  const alerts = bench.alerts(h.workflowId);
  const started = alerts.find((a) => a.event === 'rollout_started')!;
  const rolledBack = alerts.find((a) => a.event === 'rolled_back')!;
  const toZeroMs = Date.parse(rolledBack.at) - changedAt;
  // At most one interval until the next round, then the rollback itself.
  expect(toZeroMs).toBeLessThanOrEqual(MINUTE + 5_000);
  const breachRound = Date.parse(st.analyses[st.analyses.length - 1].at);
  console.log(
    `web check breach -> weight 0: ${(toZeroMs / 1000).toFixed(1)} s of workflow time from the endpoint's ` +
      `change, ${((Date.parse(rolledBack.at) - breachRound) / 1000).toFixed(1)} s from the breaching round ` +
      `(interval 1m; rollout started ${started.at})`,
  );
});

test('a dry-run check that breaches changes nothing; status and alerts say what it would have done', async () => {
  answers.set('/health', { errors: { rate: 0.2 } });
  answers.set('/candidate', { errors: { rate: 7 } });
  const h = await bench.startRollout(
    APP,
    'v2',
    plan(
      [webCheck('health', '/health'), webCheck('candidate', '/candidate', { dryRun: true })],
      [{ weight: 10, hold: '3m' }, { weight: 100 }],
    ),
  );
  await bench.env.sleep(2 * MINUTE);
  const st = await h.query(statusQuery);
  const last = st.analyses[st.analyses.length - 1];
  expect(last).toMatchObject({ verdict: 'pass', action: 'advance-ok' });
  expect(last.checks.find((c) => c.name === 'candidate')).toMatchObject({
    value: 7,
    judged: 'breach',
    band: 'abort',
    dryRun: true,
    note: 'dry run: would roll back — 7: 7 > abort max 5 (critical): roll back at once',
  });
  const shown = renderStatus(st, new Date(await bench.env.currentTimeMs()));
  expect(shown).toContain('candidate=7 BREACH abort/critical (dry run)');
  expect(shown).toContain(
    'candidate: dry run: would roll back — 7: 7 > abort max 5 (critical): roll back at once',
  );

  expect(await rolloutResult(h)).toMatchObject({ outcome: 'promoted' });
  const said = bench
    .alerts(h.workflowId)
    .filter((a) => a.event === 'check_breached')
    .map((a) => a.message);
  // Once for the streak, not every round.
  expect(said).toEqual([
    expect.stringContaining('candidate: candidate: dry run: would roll back — 7: 7 > abort max 5 (critical)'),
  ]);
});

test('a dry-run metric check at 30 % errors changes nothing either: the metrics path judges it the same way', async () => {
  const h = await bench.startRollout(
    APP,
    'v3',
    plan(
      [
        {
          name: 'error-rate',
          metric: 'error-rate',
          success: { max: 1 },
          abort: { max: 5, severity: 'high', consecutive: 2 },
          dryRun: true,
        },
      ],
      [{ weight: 20, hold: '3m' }, { weight: 100 }],
    ),
  );
  expect(await rolloutResult(h)).toMatchObject({ outcome: 'promoted' });
  const st = await h.query(statusQuery);
  const checks = st.analyses.map((a) => a.checks[0]);
  expect(checks.every((c) => c.dryRun && c.judged === 'breach')).toBe(true);
  expect(checks[1].note).toMatch(
    /^dry run: would roll back — [\d.]+: [\d.]+ > abort max 5, 2 of 2 rounds \(high\): roll back$/,
  );
  expect(st.analyses.every((a) => a.verdict === 'pass')).toBe(true);
  // The workflow id is the target's: this rollout's alerts are v3's.
  const said = bench.alerts(h.workflowId).filter((a) => a.event === 'check_breached' && a.version === 'v3');
  expect(said).toHaveLength(1);
  expect(said[0].message).toContain('dry run: would roll back');
});

test('a JSONPath that does not parse: the CLI refuses it with exit 2, the workflow with InvalidPlan', async () => {
  const bad = plan([{ ...webCheck('health', '/health'), web: { url: `${base}/h`, jsonPath: '$.errors[' } }]);
  const cli = path.join(__dirname, '../../dist/client/cli.js');
  if (!fs.existsSync(cli)) throw new Error(`${cli} is missing: run npm run build first`);
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'web-plan-')), 'plan.json');
  fs.writeFileSync(file, JSON.stringify(bad));
  const run = spawnSync(process.execPath, [cli, 'validate', '--plan', file], { encoding: 'utf8' });
  expect(run.status).toBe(2);
  expect(run.stdout + run.stderr).toContain(
    'analysis.checks[0].web.jsonPath: check "health": "$.errors[" is not a JSONPath (RFC 9535, e.g. $.errors.rate)',
  );

  const h = await bench.startRollout(APP, 'v2', bad);
  const err = await h.result().catch((e: unknown) => e);
  expect(err).toBeInstanceOf(WorkflowFailedError);
  const cause = (err as WorkflowFailedError).cause as ApplicationFailure;
  expect(cause.type).toBe('InvalidPlan');
  expect(cause.message).toContain(
    'analysis.checks[0].web.jsonPath: check "health": "$.errors[" is not a JSONPath',
  );
  expect(await bench.live()).toMatchObject({ weight: 0, canary: null });
});

test('the preflight refuses a web check whose secret this worker does not have: nothing is touched', async () => {
  const check = webCheck('health', '/health');
  const h = await bench.startRollout(
    APP,
    'v2',
    plan([{ ...check, web: { ...check.web, headers: { Authorization: 'Bearer ${secret:NOT_HERE}' } } }]),
  );
  const result = await rolloutResult(h);
  expect(result).toMatchObject({ outcome: 'not_started', cause: 'infrastructure', finalWeight: 0 });
  expect(result.findings).toEqual([
    // The local endpoint is http: the secret would travel in the clear (a warning; --strict refuses it).
    expect.objectContaining({ level: 'warn', path: 'analysis.checks[0].web.url' }),
    {
      area: 'metrics',
      cause: 'infrastructure',
      level: 'refuse',
      message:
        'web check "health" names a secret this worker does not have: NOT_HERE (set CANARY_SECRET_NOT_HERE ' +
        '(or a file in CANARY_SECRETS_DIR))',
      path: 'analysis.checks[0].web',
    },
  ]);
  expect(await bench.live()).toMatchObject({ weight: 0, canary: null });
});

test("figure: a web check's round cost against a local endpoint", async () => {
  answers.set('/health', { errors: { rate: 0.5 } });
  const web = {
    url: `${base}/health`,
    method: 'GET' as const,
    jsonPath: '$.errors.rate',
    headers,
    timeoutMs: 10_000,
  };
  const before = requests;
  const times: number[] = [];
  for (let i = 0; i < 200; i++) {
    const t = performance.now();
    expect(await measureWeb('health', web)).toEqual({ value: 0.5 });
    times.push(performance.now() - t);
  }
  expect(requests - before).toBe(200);
  times.sort((a, b) => a - b);
  const q = (p: number) => times[Math.min(times.length - 1, Math.floor(p * times.length))].toFixed(2);
  console.log(`web check round cost over 200 rounds: median ${q(0.5)} ms, p95 ${q(0.95)} ms, max ${q(1)} ms`);
  expect(Number(q(0.5))).toBeLessThan(50);
});
