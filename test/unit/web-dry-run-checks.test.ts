// Issue 17's `web` checks and `dryRun` checks, below the workflow: their validation (client and workflow share
// validatePlan), a web check's round against a real local HTTP server (secrets from the worker), the preflight's
// word on missing secrets, and the judge: a dry-run check is judged and says what it would have done, and adding one
// to any plan never changes a round's decision (a fast-check property).
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import fc from 'fast-check';
import { measureWeb, valueAt, webPreflight } from '../../activities/metrics/web';
import { renderBacktest, runBacktest } from '../../client/backtest';
import { type AnalysisCheck, validateAnalysisChecks } from '../../workflows/analysis-spec';
import type { InputProblem } from '../../workflows/problems';
import { validatePlan } from '../../workflows/plan';
import { planStartFindings } from '../../workflows/plan-findings';
import { validateTarget } from '../../workflows/target';
import {
  initialJudgeState,
  judgeRound,
  roundOutcome,
  type JudgeState,
  type RoundMeasurement,
} from '../../workflows/judge-v2';

const M = 60_000;
const T0 = Date.UTC(2026, 11, 1, 9, 0, 0);
const DEFAULTS = { windowMs: M, failureLimit: 1, inconclusiveLimit: 3 };

function checksOf(specs: unknown[]): AnalysisCheck[] {
  const result = validateAnalysisChecks(specs, DEFAULTS);
  if (!result.ok) throw new Error(result.problems.map((p) => `${p.path}: ${p.message}`).join('\n'));
  return result.checks;
}

function problemsOf(spec: Record<string, unknown>): InputProblem[] {
  const result = validateAnalysisChecks([{ name: 'health', ...spec }], DEFAULTS);
  if (result.ok) throw new Error('expected the check to be refused');
  return result.problems;
}

const WEB = { url: 'https://status.example.com/api/health', jsonPath: '$.errors.rate' };

describe('web checks: validation', () => {
  it('normalises a web check: GET, a 10 s timeout, headers and secrets kept as placeholders', () => {
    const [check] = checksOf([
      {
        name: 'health',
        web: { ...WEB, headers: { Authorization: 'Bearer ${secret:STATUS_TOKEN}' } },
        abort: { max: 5, severity: 'critical' },
      },
    ]);
    expect(check.web).toEqual({
      url: WEB.url,
      method: 'GET',
      jsonPath: '$.errors.rate',
      timeoutMs: 10_000,
      headers: { Authorization: 'Bearer ${secret:STATUS_TOKEN}' },
    });
    expect(check.metric).toBeUndefined();
    expect(check.query).toBeUndefined();
  });

  it("refuses a JSONPath that does not parse, naming the check and the parser's reason", () => {
    expect(problemsOf({ web: { ...WEB, jsonPath: '$.errors[' }, abort: { max: 5 } })).toEqual([
      {
        path: 'analysis.checks[0].web.jsonPath',
        message: expect.stringMatching(
          /^check "health": "\$\.errors\[" is not a JSONPath \(RFC 9535, e\.g\. \$\.errors\.rate\): Expected .* but end of input found\. \(at character 10\)$/,
        ) as string,
      },
    ]);
    expect(problemsOf({ web: { ...WEB, jsonPath: 'errors.rate' }, abort: { max: 5 } })[0].message).toContain(
      'Expected "$" but "e" found',
    );
  });

  it('refuses a URL that is not http(s), a placeholder that is no secret, and fields a web check cannot have', () => {
    const paths = (spec: Record<string, unknown>) => problemsOf(spec).map((p) => `${p.path}: ${p.message}`);
    expect(paths({ web: { ...WEB, url: 'ftp://x/y' }, abort: { max: 5 } })).toEqual([
      'analysis.checks[0].web.url: check "health": must be an http:// or https:// URL, got "ftp://x/y"',
    ]);
    expect(paths({ web: { ...WEB, url: '${secret:URL}' }, abort: { max: 5 } })[0]).toContain(
      'not for its scheme and host',
    );
    expect(paths({ web: { ...WEB, headers: { a: '${env:X}' } }, abort: { max: 5 } })).toEqual([
      'analysis.checks[0].web.headers.a: has ${env:X}; the only placeholder is ${secret:NAME} (NAME: letters, digits and _)',
    ]);
    expect(paths({ web: WEB, window: '5m', minRequests: 10, abort: { max: 5, ratio: { max: 2 } } })).toEqual(
      expect.arrayContaining([
        'analysis.checks[0].window: a web check reads one value per round, as the endpoint answers it: it has no window',
        'analysis.checks[0].minRequests: a web check has no request count to compare with minRequests',
        'analysis.checks[0].abort.ratio: a web check has no stable side to compare with',
      ]),
    );
    expect(paths({ web: WEB, metric: 'error-rate', abort: { max: 5 } })).toEqual([
      'analysis.checks[0]: has both metric and web; keep exactly one',
    ]);
    expect(paths({ web: { ...WEB, method: 'PUT', body: 'x' }, abort: { max: 5 } })).toEqual([
      'analysis.checks[0].web.method: must be GET or POST, got "PUT"',
      'analysis.checks[0].web.body: only applies to method POST (a GET sends no body)',
    ]);
    expect(paths({ web: { ...WEB, jsonpath: '$.x' }, abort: { max: 5 } })).toContain(
      'analysis.checks[0].web.jsonpath: unknown field "jsonpath" (did you mean "jsonPath"?)',
    );
  });

  it('reads dryRun: true on any check, and refuses what is not a boolean', () => {
    const [web, prom] = checksOf([
      { name: 'health', web: WEB, abort: { max: 5 }, dryRun: true },
      { name: 'errors', metric: 'error-rate', abort: { max: 5 }, dryRun: false },
    ]);
    expect(web.dryRun).toBe(true);
    expect(prom.dryRun).toBeUndefined();
    expect(problemsOf({ metric: 'error-rate', abort: { max: 5 }, dryRun: 'yes' })).toEqual([
      { path: 'analysis.checks[0].dryRun', message: 'must be true or false, got "yes"' },
    ]);
  });

  it("is the plan's validation too (the workflow validates its input by it)", () => {
    const result = validatePlan({
      analysis: { checks: [{ name: 'health', web: { ...WEB, jsonPath: '$[?@.x==]' }, abort: { max: 5 } }] },
      stages: [{ weight: 10, hold: '5m' }, { weight: 100 }],
    });
    expect(result.ok).toBe(false);
    if (!result.ok) {
      expect(result.problems.map((p) => p.path)).toEqual(['analysis.checks[0].web.jsonPath']);
      expect(result.problems[0].message).toMatch(/^check "health": "\$\[\?@\.x==\]" is not a JSONPath/);
    }
  });
});

// ---------------------------------------------------------------------------------------------------------------
// A web check's round, against a real HTTP server

describe('web checks: a round against a local HTTP server', () => {
  let server: http.Server;
  let base: string;
  let answer: { status: number; body: string } = { status: 200, body: '{}' };
  const seen: Array<{ method?: string; url?: string; auth?: string; body: string }> = [];

  beforeAll(async () => {
    server = http.createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        seen.push({ method: req.method, url: req.url, auth: req.headers.authorization, body });
        if (req.url?.startsWith('/slow')) return void setTimeout(() => res.end('{}'), 2_000);
        if (req.url?.startsWith('/moved')) return void res.writeHead(302, { location: '/health' }).end();
        res.writeHead(answer.status, { 'content-type': 'application/json' });
        res.end(answer.body);
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise((r) => server.close(r)));

  const web = (extra: Record<string, unknown> = {}) =>
    checksOf([{ name: 'health', web: { ...WEB, url: `${base}/health`, ...extra }, abort: { max: 5 } }])[0]
      .web!;

  it('reads a number, and a boolean as 1 or 0', async () => {
    answer = { status: 200, body: JSON.stringify({ errors: { rate: 2.5 } }) };
    expect(await measureWeb('health', web())).toEqual({ value: 2.5 });
    answer = { status: 200, body: JSON.stringify({ errors: { rate: true } }) };
    expect(await measureWeb('health', web())).toEqual({ value: 1 });
    expect(valueAt({ ok: false }, '$.ok')).toBe(0);
  });

  it('fills secrets in from the worker (environment or secrets directory), never from the plan', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'canary-secrets-'));
    fs.writeFileSync(path.join(dir, 'HOST_TOKEN'), 'from-a-file\n');
    answer = { status: 200, body: JSON.stringify({ errors: { rate: 1 } }) };
    const w = web({
      url: `${base}/health?key=\${secret:KEY}`,
      headers: { Authorization: 'Bearer ${secret:HOST_TOKEN}' },
    });
    const env = { CANARY_SECRET_KEY: 'k1', CANARY_SECRETS_DIR: dir };
    expect(await measureWeb('health', w, { env })).toEqual({ value: 1 });
    expect(seen[seen.length - 1]).toMatchObject({ url: '/health?key=k1', auth: 'Bearer from-a-file' });

    const missing = await measureWeb('health', w, { env: {} });
    expect(missing.error?.kind).toBe('auth');
    expect(missing.error?.message).toContain('this worker has no secret KEY (CANARY_SECRET_KEY');
    const plan = validatePlan({
      analysis: {
        checks: [{ name: 'health', web: { ...WEB, url: w.url, headers: w.headers }, abort: { max: 5 } }],
      },
      stages: [{ weight: 10, hold: '5m' }, { weight: 100 }],
    });
    if (!plan.ok) throw new Error('plan refused');
    expect(webPreflight(plan.plan, { CANARY_SECRET_KEY: 'k1' })).toEqual([
      {
        area: 'metrics',
        cause: 'infrastructure',
        level: 'refuse',
        message:
          'web check "health" names a secret this worker does not have: HOST_TOKEN (set CANARY_SECRET_HOST_TOKEN ' +
          '(or a file in CANARY_SECRETS_DIR))',
        path: 'analysis.checks[0].web',
      },
    ]);
    expect(webPreflight(plan.plan, env)).toEqual([]);
  });

  it('POSTs a JSON body', async () => {
    answer = { status: 200, body: JSON.stringify({ errors: { rate: 0 } }) };
    expect(await measureWeb('health', web({ method: 'POST', body: { since: '5m' } }))).toEqual({ value: 0 });
    expect(seen[seen.length - 1]).toMatchObject({ method: 'POST', body: '{"since":"5m"}' });
  });

  it('records what went wrong with the kinds a metrics query fails with', async () => {
    const kind = async (w = web()) => (await measureWeb('health', w)).error?.kind;
    answer = { status: 503, body: 'down' };
    expect(await kind()).toBe('server');
    answer = { status: 401, body: '' };
    expect(await kind()).toBe('auth');
    answer = { status: 200, body: 'not json' };
    expect(await kind()).toBe('bad_query');
    answer = { status: 200, body: JSON.stringify({ errors: { rate: 'high' } }) };
    expect(await kind()).toBe('bad_query');
    answer = { status: 200, body: JSON.stringify({ other: 1 }) };
    expect(await kind()).toBe('no_data');
    expect(await kind(web({ url: `${base}/slow`, timeout: '1s' }))).toBe('timeout');
    expect(await kind(web({ url: 'http://127.0.0.1:1/x' }))).toBe('unreachable');
    // A redirect is not followed (secrets must not travel to a host the plan did not name).
    const moved = await measureWeb('health', web({ url: `${base}/moved` }));
    expect(moved.error).toEqual({
      kind: 'bad_query',
      message: `web check "health" (GET ${base}/moved): answered HTTP 302 (a redirect to /health), which a web check does not follow: use the URL it names`,
    });
    expect((await measureWeb('health', web(), { atMs: T0 })).error?.kind).toBe('unsupported');
  });
});

// ---------------------------------------------------------------------------------------------------------------
// Dry-run checks in the judge

type Round = Record<string, RoundMeasurement | undefined>;

function run(checks: AnalysisCheck[], rounds: Round[]) {
  let state: JudgeState = initialJudgeState();
  return rounds.map((round, i) => {
    const out = judgeRound(checks, round, T0 + i * M, state, {
      permanentQueryErrors: true,
      roundSlackMs: 6_000,
    });
    state = JSON.parse(JSON.stringify(out.state)) as JudgeState;
    return out.decision;
  });
}

describe('dry-run checks in the judge', () => {
  it('judges a breaching dry-run check and says what it would have done, once, without acting', () => {
    const checks = checksOf([
      {
        name: 'errors',
        metric: 'error-rate',
        success: { max: 1 },
        abort: { max: 5, severity: 'high', for: '2m' },
      },
      {
        name: 'new-errors',
        metric: 'error-rate',
        success: { max: 1 },
        abort: { max: 5, severity: 'high', for: '2m' },
        dryRun: true,
      },
    ]);
    const ds = run(checks, [
      { errors: { value: 0.5 }, 'new-errors': { value: 7 } },
      { errors: { value: 0.5 }, 'new-errors': { value: 7 } },
      { errors: { value: 0.5 }, 'new-errors': { value: 7 } },
      { errors: { value: 0.5 }, 'new-errors': { value: 7 } },
    ]);
    expect(ds.map((d) => d.action)).toEqual(['advance-ok', 'advance-ok', 'advance-ok', 'advance-ok']);
    expect(ds.map((d) => roundOutcome(d).verdict)).toEqual(['pass', 'pass', 'pass', 'pass']);
    const notes = ds.map((d) => d.perCheck.find((c) => c.name === 'new-errors')!);
    expect(notes[0]).toMatchObject({ dryRun: true, outcome: 'breach', band: 'abort' });
    expect(notes[0].note).toBe('dry run: would hold the stage — 7: 7 > abort max 5; breaching for 0s of 2m');
    expect(notes[2].note).toBe(
      'dry run: would roll back — 7: 7 > abort max 5, for 2m of 2m (high): roll back',
    );
    expect(ds.map((d) => d.alerts.map((a) => a.message))).toEqual([
      [],
      [],
      ['new-errors: dry run: would roll back — 7: 7 > abort max 5, for 2m of 2m (high): roll back'],
      [],
    ]);
    expect(ds[0].reasons).toEqual(['every check passed (1)']);
  });

  it('a medium dry-run check never steps traffic back; a dry-run check without data never holds', () => {
    const checks = checksOf([
      { name: 'p95', metric: 'latency-p95', abort: { max: 500, severity: 'medium' }, dryRun: true },
      { name: 'gone', metric: 'error-rate', success: { max: 1 }, dryRun: true },
    ]);
    const ds = run(checks, [{ p95: { value: 900 } }, { p95: { value: 900 } }, { p95: { value: 900 } }]);
    expect(ds.map((d) => [d.action, d.steppedBack])).toEqual([
      ['advance-ok', false],
      ['advance-ok', false],
      ['advance-ok', false],
    ]);
    expect(ds[0].reasons).toEqual(['only dry-run checks: nothing to decide']);
    expect(ds[0].perCheck[0].note).toMatch(/^dry run: would step back to the previous weight — /);
    expect(ds[2].perCheck[1].note).toMatch(/^dry run: would roll back — no evidence for 3 rounds in a row/);
    expect(ds[0].alerts.map((a) => a.message)).toEqual([
      expect.stringMatching(/^p95: dry run: 900: 900 > abort max 500; traffic steps back/) as string,
      expect.stringMatching(/^p95: dry run: would step back to the previous weight — /) as string,
    ]);
  });
});

// ---------------------------------------------------------------------------------------------------------------
// The property: adding a dry-run check to any plan never changes a round's decision

const CHECK_SPECS: Array<Record<string, unknown>> = [
  { metric: 'error-rate', success: { max: 1 }, abort: { max: 5, severity: 'critical' } },
  { metric: 'error-rate', success: { max: 1 }, abort: { max: 5, severity: 'high', for: '2m' } },
  {
    metric: 'error-rate',
    abort: { max: 5, severity: 'high', consecutive: 2, then: 'approval', decideWithin: '3m' },
  },
  { metric: 'latency-p95', success: { max: 2 }, abort: { max: 5, severity: 'medium', recoverAfter: '2m' } },
  { metric: 'error-rate', abort: { max: 5, severity: 'low' } },
  { metric: 'error-rate', success: { max: 1 }, onNoData: { action: 'hold', limit: 2, then: 'approval' } },
  { metric: 'error-rate', max: 2 },
  { query: 'sum(rate(x{version="{{version}}"}[{{window}}]))', abort: { max: 5 }, onNoData: 'fail' },
  {
    web: WEB,
    success: { max: 1 },
    abort: { max: 5, severity: 'high' },
    onQueryError: { limit: 2, then: 'rollback' },
  },
  { metric: 'error-rate', success: { max: 1 }, onNoData: 'ignore', stages: [1] },
];

const measurementArb: fc.Arbitrary<RoundMeasurement | undefined> = fc.oneof(
  fc.constantFrom(0, 0.5, 1.5, 3, 7, 12).map((value) => ({ value })),
  fc.constant({ value: null }),
  fc.constant({ value: null, error: { kind: 'unreachable', message: 'refused' } }),
  fc.constant({ value: null, error: { kind: 'bad_query', message: 'parse error' } }),
  fc.constant(undefined),
);

test('adding a dry-run check to any plan never changes the decisions of a round', () => {
  fc.assert(
    fc.property(
      fc.uniqueArray(fc.nat(CHECK_SPECS.length - 1), { minLength: 0, maxLength: 4 }),
      fc.nat(CHECK_SPECS.length - 1),
      fc
        .integer({ min: 1, max: 12 })
        .chain((n) =>
          fc.array(fc.array(measurementArb, { minLength: 5, maxLength: 5 }), { minLength: n, maxLength: n }),
        ),
      fc.array(fc.constantFrom(20_000, 60_000, 90_000, 5 * M), { minLength: 12, maxLength: 12 }),
      (picked, dryPick, rounds, gaps) => {
        const base = checksOf(picked.map((i, k) => ({ name: `c${k}`, ...CHECK_SPECS[i] })));
        const dry = checksOf([{ name: 'dry', ...CHECK_SPECS[dryPick], dryRun: true }])[0];
        const withDry = [...base, dry];
        const first = [dry, ...base];
        let a = initialJudgeState();
        let b = initialJudgeState();
        let c = initialJudgeState();
        let at = T0;
        rounds.forEach((row, i) => {
          at += gaps[i];
          const m: Round = Object.fromEntries(base.map((ch, k) => [ch.name, row[k]]));
          const opts = { permanentQueryErrors: true, roundSlackMs: 6_000 };
          const plain = judgeRound(base, m, at, a, opts);
          const dried = judgeRound(withDry, { ...m, dry: row[4] }, at, b, opts);
          const before = judgeRound(first, { ...m, dry: row[4] }, at, c, opts);
          a = plain.state;
          b = dried.state;
          c = before.state;
          for (const d of [dried.decision, before.decision]) {
            expect(d.action).toBe(plain.decision.action);
            expect(d.steppedBack).toBe(plain.decision.steppedBack);
            expect(d.approvalFor).toEqual(plain.decision.approvalFor);
            expect(d.breachApprovalFor).toEqual(plain.decision.breachApprovalFor);
            expect(roundOutcome(d)).toEqual(roundOutcome(plain.decision));
            if (base.length > 0) expect(d.reasons).toEqual(plain.decision.reasons);
            expect(d.alerts.filter((x) => x.check !== 'dry')).toEqual(plain.decision.alerts);
          }
        });
      },
    ),
    { numRuns: 300 },
  );
});

// ---------------------------------------------------------------------------------------------------------------
// The backtest shows dry-run verdicts

test('the backtest shows what a dry-run check would have done, and decides without it', async () => {
  const plan = validatePlan({
    analysis: {
      interval: '1m',
      checks: [
        {
          name: 'errors',
          metric: 'error-rate',
          success: { max: 1 },
          abort: { max: 5, severity: 'critical' },
        },
        {
          name: 'candidate',
          metric: 'latency-p95',
          success: { max: 200 },
          abort: { max: 300, severity: 'high', consecutive: 2 },
          dryRun: true,
        },
      ],
    },
    stages: [{ weight: 10, hold: '10m' }, { weight: 100 }],
  });
  if (!plan.ok) throw new Error('plan refused');
  // errors stays at 0.2 %; the candidate's p95 is 400 ms from minute 4 to minute 7, then 100 ms.
  const measure = async (checks: AnalysisCheck[], atMs: number) => {
    const minute = (atMs - T0) / M;
    return Object.fromEntries(
      checks.map((c) => [
        c.name,
        { value: c.name === 'errors' ? 0.2 : minute >= 4 && minute <= 7 ? 400 : 100 },
      ]),
    );
  };
  const r = await runBacktest({ plan: plan.plan, fromMs: T0, toMs: T0 + 60 * M, measure });
  expect(r.outcome).toMatchObject({ kind: 'promoted', atMs: T0 + 10 * M });
  expect(r.rounds.every((x) => x.verdict === 'pass')).toBe(true);
  expect(r.assumptions).toContain(
    'dry-run checks (candidate) are measured and judged and say what they would have done; they decide nothing, ' +
      'as in a live rollout',
  );
  const candidate = r.rounds.map((x) => x.checks.find((c) => c.name === 'candidate')!);
  expect(candidate[4]).toMatchObject({ value: 400, outcome: 'breach', dryRun: true });
  expect(candidate[4].note).toBe(
    'dry run: would roll back — 400: 400 > abort max 300, 2 of 2 rounds (high): roll back',
  );
  expect(r.events.filter((e) => e.kind === 'dry_run').map((e) => [(e.atMs - T0) / M, e.message])).toEqual([
    [5, 'candidate: dry run: would roll back — 400: 400 > abort max 300, 2 of 2 rounds (high): roll back'],
  ]);
  const target = validateTarget({ app: 'shop', namespace: 'prod' });
  if (!target.ok) throw new Error('target refused');
  const text = renderBacktest(r, { planSource: 'plan.yaml', plan: plan.plan, target: target.target });
  expect(text).toContain('400 breach (dry run)');
  expect(text).toContain('» candidate: dry run: would roll back');
});

test('start findings: a secret over plain http, and a dry-run breach that could never last its `for`', () => {
  const plan = validatePlan({
    analysis: {
      interval: '1m',
      checks: [
        {
          name: 'health',
          web: { url: 'http://status.internal/h?key=${secret:KEY}', jsonPath: '$.rate' },
          abort: { max: 5 },
        },
        { name: 'candidate', metric: 'error-rate', abort: { max: 5, for: '30m' }, dryRun: true },
      ],
    },
    stages: [{ weight: 10, hold: '5m' }, { weight: 100 }],
  });
  if (!plan.ok) throw new Error('plan refused');
  const { problems, warnings } = planStartFindings(plan.plan, T0);
  expect(problems).toEqual([]);
  expect(warnings).toEqual([
    {
      path: 'analysis.checks[0].web.url',
      message: "sends the worker's secret KEY over plain http, readable on the way: use an https:// URL",
    },
    {
      path: 'analysis.checks[1].abort.for',
      message:
        'asks a breach to last 30m, longer than the check is judged in stages 1–2, whose holds add up to 5m, and ' +
        'a dry-run check does not hold the stage: the stages move on first, so it could never say what its high ' +
        'abort would do. Shorten for to fit the holds',
    },
  ]);
});
