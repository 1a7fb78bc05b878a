// Short-form checks converted to the full form (toFullForm) and judged by judgeRound decide, round by round, as
// the original judge and the workflow's original counting did (legacyRound in workflows/legacy-judge.ts, the path
// rollouts recorded before machine-v2 replay), and shortFormRound renders those rounds as that path recorded and
// reported them.
import fc from 'fast-check';
import { validateAnalysisChecks } from '../../workflows/analysis-spec';
import { judge, type Measurement } from '../../workflows/judge';
import {
  SHORT_FORM_GROUP,
  describeResults,
  shortFormRound,
  toFullForm,
} from '../../workflows/judge-short-form';
import {
  initialJudgeState,
  judgeRound,
  roundOutcome,
  type JudgeOptions,
  type JudgeState,
  type RoundMeasurement,
} from '../../workflows/judge-v2';
import type { Check, CheckResult, Verdict } from '../../workflows/types';

const T0 = Date.UTC(2025, 5, 1, 9, 0, 0);
const M = 60_000;

/** One round as a check's provider answered it: a value, an error, or nothing at all. */
type Answer = { value: number | null; error?: { kind: string; message: string } } | undefined;
type Round = Record<string, Answer>;
interface Limits {
  failureLimit: number;
  inconclusiveLimit: number;
}

/** What a round showed and did on either path. */
interface Shown {
  verdict: Verdict;
  checks: CheckResult[];
  /** advance: the round lets the stage advance; hold: it does not; rollback: the rollout rolls back. */
  action: 'advance' | 'hold' | 'rollback';
  reason?: string;
}

/** The original path: runAnalysis' measurements, judge(), counted as legacyRound (legacy-judge.ts) counts them. */
function original(checks: Check[], rounds: Round[], limits: Limits, weight: number): Shown[] {
  let failures = 0;
  let inconclusive = 0;
  const out: Shown[] = [];
  for (const round of rounds) {
    const measurements: Measurement[] = Object.entries(round).flatMap(([name, a]) =>
      a === undefined
        ? []
        : [
            a.error
              ? { name, value: null, error: a.error.message }
              : { name, value: a.value !== null && Number.isNaN(a.value) ? null : a.value },
          ],
    );
    const { verdict, checks: results } = judge(checks, measurements);
    const summary = describeResults(checks, results);
    const shown: Shown = { verdict, checks: results, action: verdict === 'pass' ? 'advance' : 'hold' };
    if (verdict === 'pass') {
      failures = 0;
      inconclusive = 0;
    } else if (verdict === 'fail') {
      failures++;
      inconclusive = 0;
      if (failures >= limits.failureLimit) {
        shown.action = 'rollback';
        shown.reason = `analysis failed ${failures} time(s) in a row at ${weight}%: ${summary}`;
      }
    } else {
      inconclusive++;
      if (inconclusive >= limits.inconclusiveLimit) {
        shown.action = 'rollback';
        shown.reason = `no metric evidence for ${inconclusive} analyses in a row at ${weight}%: ${summary}`;
      }
    }
    out.push(shown);
    if (shown.action === 'rollback') break;
  }
  return out;
}

/** The converted path: measureChecks' measurements, judgeRound on toFullForm's rules, shortFormRound. */
function converted(
  checks: Check[],
  rounds: Round[],
  limits: Limits,
  weight: number,
  options: JudgeOptions = {},
  every = M,
): Shown[] {
  const rules = toFullForm(checks, { windowMs: M, ...limits });
  let state: JudgeState = initialJudgeState();
  const out: Shown[] = [];
  for (const [i, round] of rounds.entries()) {
    const measurements: Record<string, RoundMeasurement | undefined> = {};
    for (const [name, a] of Object.entries(round)) {
      if (a !== undefined)
        measurements[name] = a.error ? { value: null, error: a.error } : { value: a.value };
    }
    const judged = judgeRound(rules, measurements, T0 + i * every, state, options);
    // The state crosses continue-as-new as JSON.
    state = JSON.parse(JSON.stringify(judged.state)) as JudgeState;
    const r = shortFormRound(rules, measurements, judged, weight);
    const { advances, verdict } = roundOutcome(judged.decision);
    expect(verdict).toBe(r.verdict);
    const action = judged.decision.action === 'rollback' ? 'rollback' : advances ? 'advance' : 'hold';
    expect(['advance-ok', 'hold', 'rollback']).toContain(judged.decision.action);
    expect(judged.decision.alerts).toEqual([]);
    out.push({ verdict: r.verdict, checks: r.checks, action, ...(r.rollback ? { reason: r.rollback } : {}) });
    if (action === 'rollback') break;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// Random plans and rounds

const NAMES = ['error-rate', 'latency-p95', 'success', 'custom'];
const threshold = fc.constantFrom(0, 0.5, 1, 2.5, 100);
const checkOf = (name: string) =>
  fc
    .record({
      max: fc.option(threshold, { nil: undefined }),
      min: fc.option(threshold, { nil: undefined }),
      query: fc.boolean(),
    })
    .map(({ max, min, query }): Check => {
      const c: Check = query
        ? { name, query: `sum(x{app="{{app}}",name="${name}"})` }
        : { name, metric: name };
      // Plans always set a threshold today; a check without one (recorded full-form plans from before
      // JUDGE_PATCH carry names only) always passes on data.
      if (max !== undefined) c.max = Math.max(max, min ?? max);
      if (min !== undefined) c.min = min;
      return c;
    });
// Mostly values that pass most thresholds (long runs of rounds), then edges and anything at all.
const value = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom(0.5, 0.8, 1, 2) },
  {
    weight: 2,
    arbitrary: fc.constantFrom(0, 2.5, 100, -1, 0.004, 1.005, 99.999, 100.001, NaN, Infinity, -Infinity),
  },
  { weight: 2, arbitrary: fc.double({ min: -10, max: 200, noNaN: true }) },
);
const answer: fc.Arbitrary<Answer> = fc.oneof(
  { weight: 24, arbitrary: value.map((v) => ({ value: v })) },
  { weight: 1, arbitrary: fc.constant({ value: null }) },
  {
    weight: 2,
    arbitrary: fc
      .record({
        kind: fc.constantFrom('no_data', 'unavailable', 'bad_query', 'execution', 'timeout'),
        message: fc.constantFrom('no values found', 'connection refused', 'parse error at char 4'),
      })
      .map((error) => ({ value: null, error })),
  },
  { weight: 1, arbitrary: fc.constant(undefined) },
);
const plan = fc.uniqueArray(fc.constantFrom(...NAMES), { minLength: 1, maxLength: 4 }).chain((names) =>
  fc.record({
    checks: fc.tuple(...names.map(checkOf)),
    // A regime of rounds repeats itself a few times, so long streaks happen.
    rounds: fc
      .array(
        fc.tuple(
          fc.record(Object.fromEntries(names.map((n) => [n, answer]))),
          fc.integer({ min: 1, max: 5 }),
        ),
        { minLength: 1, maxLength: 12 },
      )
      .map((runs) => runs.flatMap(([round, times]) => Array<Round>(times).fill(round as Round))),
    limits: fc.record({
      failureLimit: fc.integer({ min: 1, max: 5 }),
      inconclusiveLimit: fc.integer({ min: 1, max: 5 }),
    }),
    weight: fc.constantFrom(1, 5, 10, 25, 50, 100),
    options: fc.record({
      permanentQueryErrors: fc.boolean(),
      roundSlackMs: fc.constantFrom(0, 1000, 6000, 60_000),
    }),
  }),
);

/** fast-check runs per property; FC_RUNS raises it for a longer search. */
const RUNS = Number(process.env.FC_RUNS ?? 1500);

describe('toFullForm: short-form checks in the full form decide as the original judge and counting did', () => {
  it('gives the same verdicts, check results, advances, holds and rollbacks, with the same messages', () => {
    const seen = { rounds: 0, rollbacks: 0, failed: 0, noEvidence: 0 };
    fc.assert(
      fc.property(plan, ({ checks, rounds, limits, weight, options }) => {
        const before = original(checks, rounds, limits, weight);
        expect(converted(checks, rounds, limits, weight, options)).toEqual(before);
        seen.rounds += before.length;
        for (const r of before) {
          if (r.reason?.startsWith('analysis failed')) seen.failed++;
          if (r.reason?.startsWith('no metric evidence')) seen.noEvidence++;
          if (r.action === 'rollback') seen.rollbacks++;
        }
      }),
      { numRuns: RUNS },
    );
    // The search reached both kinds of rollback, many times.
    expect(seen.failed).toBeGreaterThan(RUNS / 20);
    expect(seen.noEvidence).toBeGreaterThan(RUNS / 20);
  });

  it('keeps deciding the same whatever the time between rounds', () => {
    fc.assert(
      fc.property(
        plan,
        fc.constantFrom(1, 30_000, 59_880, M, 5 * M),
        ({ checks, rounds, limits, weight }, every) => {
          expect(converted(checks, rounds, limits, weight, {}, every)).toEqual(
            original(checks, rounds, limits, weight),
          );
        },
      ),
      { numRuns: RUNS / 4 },
    );
  });

  it('is what validating the same checks in a full-form plan gives, plus the round group', () => {
    const checks: Check[] = [
      { name: 'error-rate', metric: 'error-rate', max: 1 },
      { name: 'latency-p95', metric: 'latency-p95', min: 0, max: 500 },
      { name: 'custom', query: 'sum(x{app="{{app}}"})', min: 2 },
    ];
    const limits = { windowMs: 90_000, failureLimit: 2, inconclusiveLimit: 3 };
    const validated = validateAnalysisChecks(checks as unknown[], limits);
    if (!validated.ok) throw new Error('invalid');
    expect(toFullForm(checks, limits)).toEqual(
      validated.checks.map((c) => ({ ...c, roundGroup: SHORT_FORM_GROUP })),
    );
    expect(JSON.stringify(toFullForm(checks, limits))).toBe(
      JSON.stringify(validated.checks.map((c) => ({ ...c, roundGroup: SHORT_FORM_GROUP }))),
    );
  });
});

describe('shortFormRound: the original messages', () => {
  const checks: Check[] = [
    { name: 'error-rate', metric: 'error-rate', max: 1 },
    { name: 'p95', metric: 'latency-p95', max: 500 },
  ];
  const limits = { failureLimit: 1, inconclusiveLimit: 3 };

  it('says a failed analysis as the original path did', () => {
    const [r] = converted(checks, [{ 'error-rate': { value: 7 }, p95: { value: 120 } }], limits, 10);
    expect(r.reason).toBe('analysis failed 1 time(s) in a row at 10%: error-rate 7 > max 1; p95 120 ok');
    expect(r.checks).toEqual([
      { name: 'error-rate', value: 7, outcome: 'fail' },
      { name: 'p95', value: 120, outcome: 'pass' },
    ]);
  });

  it('counts failures across stretches without evidence, by round, not by check', () => {
    const fail = (name: string): Round => ({
      'error-rate': { value: name === 'error-rate' ? 3 : 0.5 },
      p95: { value: name === 'p95' ? 900 : 100 },
    });
    const shown = converted(
      checks,
      [fail('error-rate'), { 'error-rate': { value: null }, p95: { value: 100 } }, fail('p95')],
      { failureLimit: 2, inconclusiveLimit: 3 },
      25,
    );
    expect(shown.map((r) => r.action)).toEqual(['hold', 'hold', 'rollback']);
    expect(shown[2].reason).toBe(
      'analysis failed 2 time(s) in a row at 25%: error-rate 0.5 ok; p95 900 > max 500',
    );
  });

  it('says missing evidence with the provider’s error, counting failed queries and empty answers as one streak', () => {
    const shown = converted(
      checks,
      [
        {
          'error-rate': { value: null, error: { kind: 'unavailable', message: 'connection refused' } },
          p95: { value: 1 },
        },
        { 'error-rate': { value: null }, p95: { value: 1 } },
        { 'error-rate': { value: 0.2 }, p95: undefined },
      ],
      limits,
      5,
      { permanentQueryErrors: true },
    );
    expect(shown.map((r) => r.action)).toEqual(['hold', 'hold', 'rollback']);
    expect(shown[0].checks[0]).toEqual({
      name: 'error-rate',
      value: null,
      outcome: 'no_data',
      error: 'connection refused',
    });
    expect(shown[2].reason).toBe(
      'no metric evidence for 3 analyses in a row at 5%: error-rate 0.2 ok; p95 no data',
    );
  });

  it('keeps the group’s streaks in JudgeState.groups, apart from any check of the same name', () => {
    const rules = toFullForm([{ name: SHORT_FORM_GROUP, metric: 'error-rate', max: 1 }], {
      windowMs: M,
      failureLimit: 3,
      inconclusiveLimit: 3,
    });
    const { state, decision } = judgeRound(rules, { [SHORT_FORM_GROUP]: { value: 4 } }, T0);
    expect(state).toEqual({
      version: 1,
      checks: {},
      groups: {
        [SHORT_FORM_GROUP]: {
          consecutiveBreaches: 1,
          consecutiveNoData: 0,
          consecutiveQueryFailures: 0,
          breachSince: T0,
          lastOutcome: 'breach',
        },
      },
    });
    expect(decision.action).toBe('hold');
    expect(decision.reasons).toEqual(['analysis: analysis: 4: 4 > abort max 1; breaching 1 of 3 rounds']);
  });
});
