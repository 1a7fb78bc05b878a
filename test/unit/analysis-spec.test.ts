import { parse } from 'yaml';
import {
  type AnalysisCheck,
  type AnalysisCheckDefaults,
  CHECK_DEFAULTS,
  validateAnalysisChecks,
} from '../../workflows/analysis-spec';
import type { InputProblem } from '../../workflows/problems';
import { validatePlan } from '../../workflows/plan';
import { PRESETS } from '../../workflows/presets';

const S = 1000;
const M = 60 * S;
const H = 60 * M;

const DEFAULTS: AnalysisCheckDefaults = { windowMs: M, failureLimit: 1, inconclusiveLimit: 3 };

function valid(specs: unknown[], defaults = DEFAULTS): AnalysisCheck[] {
  const result = validateAnalysisChecks(specs, defaults);
  if (!result.ok) throw new Error(result.problems.map((p) => `${p.path}: ${p.message}`).join('\n'));
  return result.checks;
}

function problems(specs: unknown[], defaults = DEFAULTS): InputProblem[] {
  const result = validateAnalysisChecks(specs, defaults);
  if (result.ok) throw new Error('expected the checks to be refused');
  return result.problems;
}

function one(spec: Record<string, unknown>): AnalysisCheck {
  return valid([{ name: 'c', ...spec }])[0];
}

function problemsOf(spec: Record<string, unknown>): InputProblem[] {
  return problems([{ name: 'c', ...spec }]);
}

const HOLD_THEN_ROLLBACK = { action: 'hold', limit: 3, then: 'rollback' };
// The full form holds through an outage by default (a Prometheus restart must not roll back a healthy rollout).
const QUERY_ERRORS = { limit: 3, then: 'hold' };

describe('validateAnalysisChecks: the new form', () => {
  it('normalises the examples of issue 6', () => {
    const checks = valid(
      parse(`
- name: error-rate
  metric: error-rate
  window: 5m
  minRequests: 100
  success: { max: 1 }
  abort: { max: 5, severity: high, for: 5m }
  onNoData: hold
- name: p95-vs-baseline
  metric: latency-p95
  compare: { to: stable, ratio: { max: 1.2 } }
  abort: { ratio: { max: 2 }, severity: medium }
- name: p95-distribution
  metric: latency-p95
  test: { type: mann-whitney, effectSize: 0.3 }
- name: gpu-memory-errors
  query: 'sum(increase(gpu_memory_errors_total{app="{{app}}",version="{{version}}"}[{{window}}]))'
  abort: { max: 0, severity: critical }
`),
    );
    expect(checks).toEqual([
      {
        name: 'error-rate',
        metric: 'error-rate',
        windowMs: 5 * M,
        minRequests: 100,
        success: { value: { max: 1 } },
        abort: { band: { value: { max: 5 } }, severity: 'high', persist: { kind: 'for', ms: 5 * M } },
        onNoData: HOLD_THEN_ROLLBACK,
        onQueryError: QUERY_ERRORS,
      },
      {
        name: 'p95-vs-baseline',
        metric: 'latency-p95',
        windowMs: M,
        compare: { to: 'stable' },
        success: { ratio: { max: 1.2 } },
        abort: {
          band: { ratio: { max: 2 } },
          severity: 'medium',
          persist: { kind: 'consecutive', rounds: 1 },
          stepBack: { recoverAfterMs: 10 * M, rollbackAfterMs: 30 * M },
        },
        onNoData: HOLD_THEN_ROLLBACK,
        onQueryError: QUERY_ERRORS,
      },
      {
        name: 'p95-distribution',
        metric: 'latency-p95',
        windowMs: 9 * 30 * S, // a test reads at least minSamples points: (10 - 1) x 30s
        compare: { to: 'stable' },
        abort: { severity: 'high', persist: { kind: 'consecutive', rounds: 3 } },
        test: {
          type: 'mann-whitney',
          effectSize: 0.3,
          alpha: 0.05,
          direction: 'increase',
          minSamples: 10,
          stepMs: 30 * S,
        },
        onNoData: HOLD_THEN_ROLLBACK,
        onQueryError: QUERY_ERRORS,
      },
      {
        name: 'gpu-memory-errors',
        query: 'sum(increase(gpu_memory_errors_total{app="{{app}}",version="{{version}}"}[{{window}}]))',
        windowMs: M,
        abort: {
          band: { value: { max: 0 } },
          severity: 'critical',
          persist: { kind: 'consecutive', rounds: 1 },
        },
        onNoData: HOLD_THEN_ROLLBACK,
        onQueryError: QUERY_ERRORS,
      },
    ]);
  });

  it('gives the result as plain JSON (it is carried in workflow input)', () => {
    const checks = valid([
      {
        name: 'a',
        metric: 'error-rate',
        success: { max: 1 },
        abort: { max: 5, severity: 'medium', for: '5m' },
      },
      { name: 'b', metric: 'latency-p99', test: { type: 'mann-whitney' } },
    ]);
    expect(JSON.parse(JSON.stringify(checks))).toEqual(checks);
  });

  it('fills severity defaults: high 3 rounds, medium and low 1 round, critical always 1', () => {
    const persist = (abort: Record<string, unknown>) =>
      one({ metric: 'error-rate', abort: { max: 5, ...abort } }).abort;
    expect(persist({})).toEqual({
      band: { value: { max: 5 } },
      severity: 'high',
      persist: { kind: 'consecutive', rounds: 3 },
    });
    expect(persist({ severity: 'low' })?.persist).toEqual({ kind: 'consecutive', rounds: 1 });
    expect(
      persist({ severity: 'medium', consecutive: 2, recoverAfter: '1h', rollbackAfter: '2h' }),
    ).toMatchObject({
      persist: { kind: 'consecutive', rounds: 2 },
      stepBack: { recoverAfterMs: H, rollbackAfterMs: 2 * H },
    });
    expect(persist({ severity: 'critical' })?.persist).toEqual({ kind: 'consecutive', rounds: 1 });
    expect(persist({ consecutive: 5 })?.persist).toEqual({ kind: 'consecutive', rounds: 5 });
  });

  it('takes ratio and difference bounds, in compare, success and abort, and measures stable for them', () => {
    const c = one({
      metric: 'latency-p95',
      success: { max: 2000, difference: { max: 50 } },
      abort: { ratio: { max: 2, min: 0.1 }, max: 5000 },
    });
    expect(c.compare).toEqual({ to: 'stable' });
    expect(c.success).toEqual({ value: { max: 2000 }, difference: { max: 50 } });
    expect(c.abort?.band).toEqual({ value: { max: 5000 }, ratio: { max: 2, min: 0.1 } });
    expect(one({ metric: 'error-rate', success: { max: 1 } }).compare).toBeUndefined();
  });

  it('reads onNoData and onQueryError in their short and long forms', () => {
    const c = (extra: Record<string, unknown>) => one({ metric: 'error-rate', abort: { max: 5 }, ...extra });
    expect(c({ onNoData: 'fail' }).onNoData).toEqual({ action: 'fail', limit: 3, then: 'rollback' });
    expect(c({ onNoData: 'ignore' }).onNoData.action).toBe('ignore');
    expect(c({ onNoData: { limit: 10, then: 'approval' } }).onNoData).toEqual({
      action: 'hold',
      limit: 10,
      then: 'approval',
    });
    expect(c({ onQueryError: 'hold' }).onQueryError).toEqual({ limit: 3, then: 'hold' });
    expect(c({ onQueryError: { limit: 5 } }).onQueryError).toEqual({ limit: 5, then: 'hold' });
    // the plan's inconclusiveLimit is the default limit of both
    const d = valid([{ name: 'x', metric: 'error-rate', max: 1 }], { ...DEFAULTS, inconclusiveLimit: 7 })[0];
    expect(d.onNoData.limit).toBe(7);
    expect(d.onQueryError.limit).toBe(7);
  });

  it('picks the bad direction of a test from the metric', () => {
    const dir = (metric: string) => one({ metric, test: { type: 'mann-whitney' } }).test?.direction;
    expect(dir('latency-p99')).toBe('increase');
    expect(dir('error-rate')).toBe('increase');
    expect(dir('request-success-rate')).toBe('decrease');
    expect(dir('request-rate')).toBe('either');
    expect(
      one({ query: 'x{side="{{ side }}"}', test: { type: 'mann-whitney', direction: 'decrease' } }).test
        ?.direction,
    ).toBe('decrease');
  });

  it('accepts every placeholder the metrics templates fill in, spaces inside the braces too', () => {
    const q =
      'sum(rate(x{namespace="{{namespace}}",app="{{ app }}",v="{{version}}",s="{{side}}",w="{{workload}}",' +
      'svc="{{service}}",i="{{ingress}}",{{selector}}}[{{window}}]))';
    expect(one({ query: q, abort: { max: 1 } }).query).toBe(q);
  });
});

describe('validateAnalysisChecks: the short form of plans before issue 6', () => {
  it('maps { name, metric, max, min } to success = abort, high, failureLimit rounds, hold then roll back', () => {
    const [c] = valid([{ name: 'error-rate', metric: 'error-rate', max: 1 }], {
      windowMs: 30 * S,
      failureLimit: 2,
      inconclusiveLimit: 4,
    });
    expect(c).toEqual({
      name: 'error-rate',
      metric: 'error-rate',
      windowMs: 30 * S,
      success: { value: { max: 1 } },
      abort: { band: { value: { max: 1 } }, severity: 'high', persist: { kind: 'consecutive', rounds: 2 } },
      onNoData: { action: 'hold', limit: 4, then: 'rollback' },
      onQueryError: { limit: 4, then: 'rollback' },
      shortForm: true,
    });
    expect(one({ query: 'up{app="{{app}}"}', min: 1, max: 3 }).success).toEqual({
      value: { min: 1, max: 3 },
    });
  });

  it('accepts every preset plan as it stands', () => {
    for (const [name, preset] of Object.entries(PRESETS)) {
      const plan = validatePlan(preset);
      if (!plan.ok) throw new Error(`preset ${name} is invalid`);
      const a = plan.plan.analysis;
      const checks = valid(a.checks, {
        windowMs: Math.max(30 * S, a.intervalMs),
        failureLimit: a.failureLimit,
        inconclusiveLimit: a.inconclusiveLimit,
      });
      expect(checks.map((c) => c.name)).toEqual(a.checks.map((c) => c.name));
      for (const [i, c] of checks.entries()) {
        expect(c.shortForm).toBe(true);
        expect(c.success?.value).toEqual({ max: a.checks[i].max });
      }
    }
  });

  it('keeps the short form apart from success/abort/test/compare', () => {
    expect(problemsOf({ metric: 'error-rate', max: 1, abort: { max: 5 } })).toEqual([
      {
        path: 'analysis.checks[0].abort',
        message:
          'cannot be combined with the short form max/min (which sets success and abort at the same threshold); ' +
          'write the thresholds in success and abort instead',
      },
    ]);
  });
});

describe('validateAnalysisChecks: problems, by path, in document order', () => {
  it('lists every problem of a list of checks at once', () => {
    const found = problems(
      parse(`
- name: errors
  metric: eror-rate
  windoww: 5m
  success: { max: 1 }
- name: errors
  query: 'rate(x{app="{{ap}}"}[{{window}}'
  abort: { max: 5, severity: critical, for: 5m }
- name: latency
  metric: latency-p95
  success: { max: 500 }
  abort: { max: 400, severity: high, for: 5m, consecutive: 3 }
  onNoData: skip
`),
    );
    expect(found).toEqual([
      {
        path: 'analysis.checks[0].metric',
        message:
          'unknown metric "eror-rate"; use request-success-rate, error-rate, 5xx-rate, latency-p50, latency-p95, ' +
          'latency-p99, latency-avg, request-rate, request-count, or a query',
      },
      { path: 'analysis.checks[0].windoww', message: 'unknown field "windoww" (did you mean "window"?)' },
      {
        path: 'analysis.checks[1].name',
        message: 'duplicate check name "errors" (also used by analysis.checks[0])',
      },
      {
        path: 'analysis.checks[1].query',
        message:
          'unknown placeholder {{ap}}; use {{namespace}} {{app}} {{version}} {{side}} {{workload}} {{service}} ' +
          '{{ingress}} {{window}} {{selector}}',
      },
      {
        path: 'analysis.checks[1].abort.for',
        message:
          'does not apply to severity critical, which rolls back at once; use severity high for a breach that must last',
      },
      {
        path: 'analysis.checks[2].abort',
        message: 'has both for and consecutive; keep one (a duration, or a number of rounds in a row)',
      },
      {
        path: 'analysis.checks[2].abort.max',
        message: '(400) is below success.max (500): a value between them would pass and abort at once',
      },
      {
        path: 'analysis.checks[2].onNoData',
        message: 'must be hold, fail or ignore (or { action: hold, limit: 3, then: rollback }), got "skip"',
      },
    ]);
  });

  it('refuses a check without a source, or with two', () => {
    expect(problemsOf({ max: 1 })).toEqual([
      {
        path: 'analysis.checks[0]',
        message:
          'needs a metric (request-success-rate, error-rate, 5xx-rate, latency-p50, latency-p95, latency-p99, ' +
          'latency-avg, request-rate, request-count) or a query',
      },
    ]);
    expect(problemsOf({ metric: 'error-rate', query: 'x', max: 1 })[0].message).toBe(
      'has both metric and query; keep exactly one',
    );
  });

  it('refuses a check without any threshold', () => {
    expect(problemsOf({ metric: 'error-rate', window: '5m' })).toEqual([
      {
        path: 'analysis.checks[0]',
        message: 'needs a threshold: success, abort (or the short form max/min), or a test',
      },
    ]);
    expect(problemsOf({ metric: 'error-rate', abort: { severity: 'high' } })).toEqual([
      { path: 'analysis.checks[0].abort', message: 'needs a threshold: max, min, ratio or difference' },
    ]);
  });

  it('refuses contradictory bounds', () => {
    expect(problemsOf({ metric: 'error-rate', success: { min: 5, max: 1 } })[0]).toEqual({
      path: 'analysis.checks[0].success',
      message: 'min (5) is greater than max (1), so no value could pass',
    });
    expect(
      problemsOf({ metric: 'request-success-rate', success: { min: 95 }, abort: { min: 99 } })[0],
    ).toEqual({
      path: 'analysis.checks[0].abort.min',
      message: '(99) is above success.min (95): a value between them would pass and abort at once',
    });
    expect(
      problemsOf({
        metric: 'latency-p95',
        success: { ratio: { max: 2 } },
        abort: { ratio: { max: 1.5 } },
      })[0],
    ).toEqual({
      path: 'analysis.checks[0].abort.ratio.max',
      message: '(1.5) is below success.ratio.max (2): a value between them would pass and abort at once',
    });
    expect(problemsOf({ metric: 'latency-p95', success: { ratio: { max: 0 } } })).toEqual([
      {
        path: 'analysis.checks[0].success.ratio.max',
        message: 'must be more than 0 (canary / stable), got 0',
      },
    ]);
    expect(problemsOf({ metric: 'latency-p95', success: { ratio: {} } })).toEqual([
      { path: 'analysis.checks[0].success.ratio', message: 'must set max and/or min' },
    ]);
  });

  it('wants compare to compare, with stable, and said once', () => {
    expect(problemsOf({ metric: 'latency-p95', compare: { to: 'stable' }, success: { max: 1 } })).toEqual([
      {
        path: 'analysis.checks[0].compare',
        message: 'nothing compares with stable: add ratio or difference here, in success or in abort',
      },
    ]);
    expect(problemsOf({ metric: 'latency-p95', compare: { to: 'canary', ratio: { max: 1.2 } } })).toEqual([
      {
        path: 'analysis.checks[0].compare.to',
        message: 'must be stable (the only baseline a rollout has), got "canary"',
      },
    ]);
    expect(
      problemsOf({
        metric: 'latency-p95',
        compare: { to: 'stable', ratio: { max: 1.2 } },
        success: { ratio: { max: 1.3 } },
      }),
    ).toEqual([
      { path: 'analysis.checks[0].compare.ratio', message: 'is also set in success.ratio; say it once' },
    ]);
    expect(problemsOf({ metric: 'latency-p95', compare: { ratio: { max: 1.2 } } })).toEqual([
      { path: 'analysis.checks[0].compare.to', message: 'is required: stable' },
    ]);
  });

  it('wants a compared query to tell the sides apart', () => {
    expect(
      problemsOf({ query: 'sum(rate(x{app="{{app}}"}[{{window}}]))', success: { ratio: { max: 1.5 } } }),
    ).toEqual([
      {
        path: 'analysis.checks[0].query',
        message:
          'is compared with stable, so it must tell the sides apart with {{side}}, {{version}} or {{selector}}',
      },
    ]);
    expect(problemsOf({ query: 'x{app="{{app}"}', abort: { max: 1 } })).toEqual([
      {
        path: 'analysis.checks[0].query',
        message: 'has an unclosed placeholder: write placeholders as {{name}}',
      },
    ]);
    expect(problemsOf({ query: '  ', abort: { max: 1 } })).toEqual([
      { path: 'analysis.checks[0].query', message: 'must not be empty' },
    ]);
  });

  it('checks severities and their fields', () => {
    expect(problemsOf({ metric: 'error-rate', abort: { max: 5, severity: 'urgent' } })).toEqual([
      {
        path: 'analysis.checks[0].abort.severity',
        message: 'must be critical, high, medium or low, got "urgent"',
      },
    ]);
    expect(problemsOf({ metric: 'error-rate', abort: { max: 5, recoverAfter: '10m' } })).toEqual([
      {
        path: 'analysis.checks[0].abort.recoverAfter',
        message: 'only applies to severity medium (step back, then recover or roll back)',
      },
    ]);
    expect(problemsOf({ metric: 'error-rate', abort: { max: 5, consecutive: 0 } })).toEqual([
      {
        path: 'analysis.checks[0].abort.consecutive',
        message: 'must be a whole number of at least 1, got 0',
      },
    ]);
    expect(problemsOf({ metric: 'error-rate', abort: { max: 5, for: '5 minutes' } })[0].path).toBe(
      'analysis.checks[0].abort.for',
    );
    expect(
      problemsOf({ metric: 'error-rate', abort: { max: 5, severity: 'medium', rollbackAfter: '0s' } }),
    ).toEqual([{ path: 'analysis.checks[0].abort.rollbackAfter', message: 'must be more than 0s' }]);
    expect(problemsOf({ metric: 'error-rate', abort: { max: 5, severty: 'high' } })).toEqual([
      {
        path: 'analysis.checks[0].abort.severty',
        message: 'unknown field "severty" (did you mean "severity"?)',
      },
    ]);
  });

  it('checks tests', () => {
    expect(problemsOf({ metric: 'latency-p95', test: { type: 'mann-whitney' }, abort: { max: 5 } })).toEqual([
      {
        path: 'analysis.checks[0].abort',
        message:
          'a test check breaches when the test fails; its abort takes severity and for/consecutive, not thresholds',
      },
    ]);
    expect(
      problemsOf({ metric: 'latency-p95', test: { type: 'mann-whitney' }, success: { max: 5 } })[0].path,
    ).toBe('analysis.checks[0].success');
    expect(
      problemsOf({ metric: 'latency-p95', test: { type: 't-test', effectSize: 2, alpha: 0.9 } }),
    ).toEqual([
      { path: 'analysis.checks[0].test.type', message: 'unknown test "t-test"; use mann-whitney' },
      {
        path: 'analysis.checks[0].test.effectSize',
        message: "must be more than 0 and at most 1 (Cliff's delta), got 2",
      },
      {
        path: 'analysis.checks[0].test.alpha',
        message: 'must be more than 0 and at most 0.5 (a significance level), got 0.9',
      },
    ]);
    expect(
      problemsOf({ metric: 'latency-p95', window: '2m', test: { type: 'mann-whitney', step: '30s' } }),
    ).toEqual([
      {
        path: 'analysis.checks[0].test.step',
        message:
          "gives at most 5 points per side over the check's window, fewer than minSamples (10): shorten the step or widen the window",
      },
    ]);
    expect(
      problemsOf({ metric: 'latency-p95', window: '7d', test: { type: 'mann-whitney', step: '10s' } })[0]
        .message,
    ).toBe(
      "gives 60481 points per side over the check's window; a range query answers at most 11000 (Prometheus' limit): lengthen the step",
    );
    expect(
      one({ metric: 'latency-p95', window: '5m', test: { type: 'mann-whitney', step: '30s' } }).test
        ?.minSamples,
    ).toBe(CHECK_DEFAULTS.test.minSamples);
  });

  it('checks onNoData and onQueryError', () => {
    expect(
      problemsOf({ metric: 'error-rate', abort: { max: 5 }, onNoData: { action: 'ignore', limit: 2 } }),
    ).toEqual([
      {
        path: 'analysis.checks[0].onNoData.limit',
        message: 'only applies to action hold (ignore never waits for data)',
      },
    ]);
    expect(problemsOf({ metric: 'error-rate', success: { max: 1 }, onNoData: 'fail' })).toEqual([
      {
        path: 'analysis.checks[0].onNoData',
        message: 'fail treats missing data as crossing the abort band, but this check has no abort band',
      },
    ]);
    expect(problemsOf({ metric: 'error-rate', max: 1, onQueryError: { limit: 0, then: 'pause' } })).toEqual([
      {
        path: 'analysis.checks[0].onQueryError.limit',
        message: 'must be a whole number of at least 1, got 0',
      },
      {
        path: 'analysis.checks[0].onQueryError.then',
        message: 'must be rollback, hold or approval, got "pause"',
      },
    ]);
    expect(problemsOf({ metric: 'error-rate', max: 1, onQueryError: 'retry' })).toEqual([
      { path: 'analysis.checks[0].onQueryError', message: 'must be rollback, hold or approval, got "retry"' },
    ]);
    expect(problemsOf({ metric: 'error-rate', max: 1, onNoData: { lmit: 2 } })).toEqual([
      { path: 'analysis.checks[0].onNoData.lmit', message: 'unknown field "lmit" (did you mean "limit"?)' },
    ]);
  });

  it('reads stages: the checks of some stages only, and checks the numbers against the plan', () => {
    expect(one({ metric: 'error-rate', success: { max: 0 }, stages: [2, 1] }).stages).toEqual([1, 2]);
    expect(one({ metric: 'error-rate', max: 1 }).stages).toBeUndefined();
    // The short form with stages is judged by the new judge, with the short form's meaning.
    expect(one({ metric: 'error-rate', max: 1, stages: [1] })).toMatchObject({
      shortForm: true,
      stages: [1],
    });
    expect(problemsOf({ metric: 'error-rate', max: 1, stages: [] })).toEqual([
      {
        path: 'analysis.checks[0].stages',
        message: 'must be a list of stage numbers, counted from 1 (e.g. [1, 2]), got an empty list',
      },
    ]);
    expect(problemsOf({ metric: 'error-rate', max: 1, stages: 2 })[0].message).toMatch(/got 2$/);
    expect(
      problems([{ name: 'c', metric: 'error-rate', max: 1, stages: [0, 1.5, 3, 3, 4] }], {
        ...DEFAULTS,
        stageCount: 3,
      }),
    ).toEqual([
      {
        path: 'analysis.checks[0].stages[0]',
        message: 'must be a stage number (a whole number from 1), got 0',
      },
      {
        path: 'analysis.checks[0].stages[1]',
        message: 'must be a stage number (a whole number from 1), got 1.5',
      },
      { path: 'analysis.checks[0].stages[3]', message: 'stage 3 is listed twice' },
      { path: 'analysis.checks[0].stages[4]', message: 'the plan has 3 stages; there is no stage 4' },
    ]);
    // validatePlan tells it the number of stages.
    const plan = validatePlan({
      analysis: { checks: [{ name: 'e', metric: 'error-rate', success: { max: 0 }, stages: [1, 3] }] },
      stages: [{ weight: 5, hold: '5m' }, { weight: 100 }],
    });
    expect(plan.ok ? [] : plan.problems).toEqual([
      { path: 'analysis.checks[0].stages[1]', message: 'the plan has 2 stages; there is no stage 3' },
    ]);
  });

  it('checks the plain fields', () => {
    expect(problems(['error-rate'])).toEqual([
      {
        path: 'analysis.checks[0]',
        message: 'must be an object with name, metric or query, and thresholds, got "error-rate"',
      },
    ]);
    expect(problemsOf({ metric: 'error-rate', max: 1, minRequests: 1.5, window: '0s' })).toEqual([
      { path: 'analysis.checks[0].minRequests', message: 'must be a whole number of at least 0, got 1.5' },
      { path: 'analysis.checks[0].window', message: 'must be more than 0s' },
    ]);
    expect(problemsOf({ metric: 'error-rate', max: '1%' })).toEqual([
      { path: 'analysis.checks[0].max', message: 'must be a number, got "1%"' },
    ]);
    expect(problems([{ metric: 'error-rate', max: 1 }])).toEqual([
      { path: 'analysis.checks[0].name', message: 'is required: every check needs a unique name' },
    ]);
  });

  it('puts paths under another prefix when asked', () => {
    const result = validateAnalysisChecks([{ name: 'a', metric: 'nope', max: 1 }], DEFAULTS, ['checks']);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.problems[0].path).toBe('checks[0].metric');
  });
});
