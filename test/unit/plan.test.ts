import * as fs from 'fs';
import * as path from 'path';
import {
  describePlan,
  formatProblems,
  MAX_DURATION_MS,
  type PlanProblem,
  type PlanSpec,
  totalHoldMs,
  validatePlan,
} from '../../workflows/plan';
import { planStartFindings } from '../../workflows/plan-findings';
import { judgeRound } from '../../workflows/judge-v2';
import { PRESETS, presetNames } from '../../workflows/presets';
import type { Plan } from '../../workflows/types';

const M = 60_000;
const H = 60 * M;

const FORMS = '90s, 15m, 1h30m or ISO-8601 like PT1H30M';
const GATE_FORMS = 'auto, approval or {type: approval, timeout: 2h, onTimeout: abort|proceed}';
const METRICS = 'error-rate, latency-p50, latency-p95, latency-p99 or request-rate';

function valid(spec: unknown): Plan {
  const result = validatePlan(spec);
  if (!result.ok) throw new Error(formatProblems(result.problems));
  return result.plan;
}

function problems(spec: unknown): PlanProblem[] {
  const result = validatePlan(spec);
  if (result.ok) throw new Error('expected the plan to be refused');
  return result.problems;
}

/** A valid two-stage plan with one stage replaced or extended. */
function withStage(stage: Record<string, unknown>): unknown {
  return { stages: [{ weight: 10, hold: '1h', ...stage }, { weight: 100 }] };
}

function withAnalysis(analysis: Record<string, unknown>): unknown {
  return { analysis, stages: [{ weight: 100 }] };
}

const CHECK = { name: 'errors', metric: 'error-rate', max: 1 };

describe('validatePlan: valid plans', () => {
  test('fills in defaults and converts durations to ms', () => {
    expect(valid({ stages: [{ weight: 5, hold: '1h' }, { weight: 100 }] })).toEqual({
      stages: [
        { weight: 5, holdMs: H, gate: { type: 'auto' } },
        { weight: 100, holdMs: 0, gate: { type: 'auto' } },
      ],
      analysis: { intervalMs: M, failureLimit: 1, inconclusiveLimit: 3, checks: [] },
      promotion: { cleanupDelayMs: 10 * M },
    });
  });

  test('normalises every section', () => {
    const plan = valid({
      name: 'full',
      analysis: {
        interval: '30s',
        failureLimit: 2,
        inconclusiveLimit: 5,
        checks: [
          { name: 'errors', metric: 'error-rate', max: 1 },
          { name: 'throughput', query: 'sum(rate(x[1m]))', min: 10, max: 500 },
        ],
      },
      stages: [
        { weight: 5, hold: 'PT1H30M' },
        { weight: 25, hold: '2h', gate: 'approval' },
        { weight: 50, hold: '1d', gate: { type: 'approval', timeout: '2h', onTimeout: 'proceed' } },
        { weight: 100, hold: '15m', gate: { type: 'approval' } },
      ],
      promotion: { cleanupDelay: '0s' },
    });
    expect(plan).toEqual({
      name: 'full',
      analysis: {
        intervalMs: 30_000,
        failureLimit: 2,
        inconclusiveLimit: 5,
        checks: [
          { name: 'errors', metric: 'error-rate', max: 1 },
          { name: 'throughput', query: 'sum(rate(x[1m]))', min: 10, max: 500 },
        ],
      },
      stages: [
        { weight: 5, holdMs: 90 * M, gate: { type: 'auto' } },
        { weight: 25, holdMs: 2 * H, gate: { type: 'approval' } },
        { weight: 50, holdMs: 24 * H, gate: { type: 'approval', timeoutMs: 2 * H, onTimeout: 'proceed' } },
        { weight: 100, holdMs: 15 * M, gate: { type: 'approval' } },
      ],
      promotion: { cleanupDelayMs: 0 },
    });
    // No undefined-valued keys: the plan is plain data.
    expect(JSON.parse(JSON.stringify(plan))).toEqual(plan);
  });

  test('a single 100% stage is a valid plan, and 30 days is the longest duration', () => {
    expect(valid({ stages: [{ weight: 100, hold: '30d' }] }).stages[0].holdMs).toBe(MAX_DURATION_MS);
    expect(MAX_DURATION_MS).toBe(30 * 24 * H);
  });

  test('ISO and short durations give the same plan', () => {
    const short = valid({
      analysis: { interval: '90s' },
      stages: [
        { weight: 5, hold: '1h30m' },
        { weight: 50, hold: '2d', gate: { type: 'approval', timeout: '2h', onTimeout: 'abort' } },
        { weight: 100 },
      ],
      promotion: { cleanupDelay: '10m' },
    });
    const iso = valid({
      analysis: { interval: 'PT90S' },
      stages: [
        { weight: 5, hold: 'PT1H30M' },
        { weight: 50, hold: 'P2D', gate: { type: 'approval', timeout: 'PT2H', onTimeout: 'abort' } },
        { weight: 100 },
      ],
      promotion: { cleanupDelay: 'PT10M' },
    });
    expect(iso).toEqual(short);
  });

  test('does not modify its input', () => {
    const spec = { stages: [{ weight: 5, hold: '1h', gate: 'approval' }, { weight: 100 }] };
    const copy = structuredClone(spec);
    valid(spec);
    expect(spec).toEqual(copy);
  });
});

describe('validatePlan: every bad input has its own message', () => {
  test.each<[string, unknown, string, string]>([
    // The plan itself
    ['not an object (null)', null, '', 'a plan must be an object with a "stages" list, got null'],
    ['not an object (list)', [], '', 'a plan must be an object with a "stages" list, got a list'],
    ['not an object (text)', 'stages', '', 'a plan must be an object with a "stages" list, got "stages"'],
    ['no stages', {}, 'stages', 'is required: list at least one stage; the last one must have weight 100'],
    [
      'empty stages',
      { stages: [] },
      'stages',
      'must list at least one stage; the last one must have weight 100',
    ],
    ['stages not a list', { stages: { weight: 100 } }, 'stages', 'must be a list of stages, got an object'],
    [
      'stage not an object',
      { stages: [100] },
      'stages[0]',
      'must be an object with weight, hold and gate, got 100',
    ],
    ['name not text', { name: 7, stages: [{ weight: 100 }] }, 'name', 'must be a string, got 7'],
    [
      'unknown top-level field',
      { stages: [{ weight: 100 }], stage: [] },
      'stage',
      'unknown field "stage" (did you mean "stages"?)',
    ],
    [
      'unknown top-level field, no suggestion',
      { stages: [{ weight: 100 }], owner: 'me' },
      'owner',
      'unknown field "owner" (known fields: name, analysis, stages, promotion, alerts, approvals, windows, hooks, load)',
    ],

    // Weights
    [
      'weight missing',
      { stages: [{ hold: '1h' }, { weight: 100 }] },
      'stages[0].weight',
      'is required: the percent of traffic for this stage, e.g. 25',
    ],
    [
      'weight not a number',
      withStage({ weight: '5%' }),
      'stages[0].weight',
      'must be a number (percent of traffic, e.g. 25), got "5%"',
    ],
    [
      'weight zero',
      withStage({ weight: 0 }),
      'stages[0].weight',
      'must be more than 0 and at most 100 (percent of traffic), got 0',
    ],
    [
      'weight negative',
      withStage({ weight: -5 }),
      'stages[0].weight',
      'must be more than 0 and at most 100 (percent of traffic), got -5',
    ],
    [
      'weight over 100',
      { stages: [{ weight: 150 }] },
      'stages[0].weight',
      'must be more than 0 and at most 100 (percent of traffic), got 150',
    ],
    [
      'weights not increasing',
      { stages: [{ weight: 50, hold: '1h' }, { weight: 25, hold: '1h' }, { weight: 100 }] },
      'stages[1].weight',
      'must be greater than 50, the weight of stages[0] (weights must strictly increase)',
    ],
    [
      'weights equal',
      { stages: [{ weight: 50, hold: '1h' }, { weight: 50, hold: '1h' }, { weight: 100 }] },
      'stages[1].weight',
      'must be greater than 50, the weight of stages[0] (weights must strictly increase)',
    ],
    [
      'last weight not 100',
      { stages: [{ weight: 10, hold: '1h' }, { weight: 50 }] },
      'stages[1].weight',
      'the last stage must have weight 100 (full promotion), got 50',
    ],

    // Holds
    [
      'hold missing',
      { stages: [{ weight: 10 }, { weight: 100 }] },
      'stages[0].hold',
      'is required on every stage except the final 100% stage, e.g. 15m or 1h',
    ],
    ['hold zero', withStage({ hold: '0s' }), 'stages[0].hold', 'must be more than 0s'],
    [
      'hold zero on the final stage',
      { stages: [{ weight: 100, hold: 'PT0S' }] },
      'stages[0].hold',
      'must be more than 0s; leave hold out to promote at once',
    ],
    ['hold negative', withStage({ hold: '-5m' }), 'stages[0].hold', 'must not be negative, got "-5m"'],
    ['hold negative number', withStage({ hold: -5 }), 'stages[0].hold', 'must not be negative, got -5'],
    [
      'hold unparseable',
      withStage({ hold: 'soon' }),
      'stages[0].hold',
      `invalid duration "soon": expected a number followed by a unit; use ${FORMS}`,
    ],
    [
      'hold without unit',
      withStage({ hold: 90 }),
      'stages[0].hold',
      `invalid duration "90": missing unit; use ${FORMS}`,
    ],
    [
      'hold with an unknown unit',
      withStage({ hold: '2 hours' }),
      'stages[0].hold',
      `invalid duration "2 hours": unexpected " "; use ${FORMS}`,
    ],
    [
      'hold in months',
      withStage({ hold: 'P1M' }),
      'stages[0].hold',
      'invalid duration "P1M": months are not a fixed length; use days instead, e.g. P30D',
    ],
    [
      'hold in years',
      withStage({ hold: 'P1Y' }),
      'stages[0].hold',
      'invalid duration "P1Y": years are not a fixed length; use days instead, e.g. P365D',
    ],
    [
      'hold absurd',
      withStage({ hold: '45d' }),
      'stages[0].hold',
      'must be at most 30 days (720h), got "45d"',
    ],
    [
      'hold just over 30 days',
      withStage({ hold: '30d1ms' }),
      'stages[0].hold',
      'must be at most 30 days (720h), got "30d1ms"',
    ],
    [
      'hold not text',
      withStage({ hold: true }),
      'stages[0].hold',
      `must be a duration like ${FORMS}, got true`,
    ],
    [
      'unknown stage field',
      withStage({ holdd: '1h' }),
      'stages[0].holdd',
      'unknown field "holdd" (did you mean "hold"?)',
    ],

    // Gates
    [
      'gate of an unknown type (text)',
      withStage({ gate: 'manual' }),
      'stages[0].gate',
      `unknown gate type "manual"; use ${GATE_FORMS}`,
    ],
    [
      'gate of an unknown type (object)',
      withStage({ gate: { type: 'manual' } }),
      'stages[0].gate.type',
      'unknown gate type "manual"; use auto or approval',
    ],
    [
      'gate without a type',
      withStage({ gate: { timeout: '1h', onTimeout: 'abort' } }),
      'stages[0].gate.type',
      'is required: auto or approval',
    ],
    [
      'gate not text or object',
      withStage({ gate: true }),
      'stages[0].gate',
      `must be ${GATE_FORMS}, got true`,
    ],
    [
      'approval timeout without onTimeout',
      withStage({ gate: { type: 'approval', timeout: '2h' } }),
      'stages[0].gate.onTimeout',
      'is required when timeout is set: abort or proceed',
    ],
    [
      'onTimeout without timeout',
      withStage({ gate: { type: 'approval', onTimeout: 'abort' } }),
      'stages[0].gate.timeout',
      'is required when onTimeout is set, e.g. 2h (without a timeout the gate waits forever)',
    ],
    [
      'onTimeout not abort|proceed',
      withStage({ gate: { type: 'approval', timeout: '2h', onTimeout: 'skip' } }),
      'stages[0].gate.onTimeout',
      'must be abort or proceed, got "skip"',
    ],
    [
      'timeout on an auto gate',
      withStage({ gate: { type: 'auto', timeout: '2h' } }),
      'stages[0].gate.timeout',
      'only applies to approval gates',
    ],
    [
      'onTimeout on an auto gate',
      withStage({ gate: { type: 'auto', onTimeout: 'abort' } }),
      'stages[0].gate.onTimeout',
      'only applies to approval gates',
    ],
    [
      'gate timeout zero',
      withStage({ gate: { type: 'approval', timeout: '0m', onTimeout: 'abort' } }),
      'stages[0].gate.timeout',
      'must be more than 0s; leave timeout out to wait forever',
    ],
    [
      'gate timeout absurd',
      withStage({ gate: { type: 'approval', timeout: '31d', onTimeout: 'abort' } }),
      'stages[0].gate.timeout',
      'must be at most 30 days (720h), got "31d"',
    ],
    [
      'gate timeout unparseable',
      withStage({ gate: { type: 'approval', timeout: '2 h', onTimeout: 'abort' } }),
      'stages[0].gate.timeout',
      `invalid duration "2 h": unexpected " "; use ${FORMS}`,
    ],
    [
      'unknown gate field',
      withStage({ gate: { type: 'approval', on_timeout: 'abort' } }),
      'stages[0].gate.on_timeout',
      'unknown field "on_timeout" (did you mean "onTimeout"?)',
    ],

    // Analysis
    [
      'analysis not an object',
      { analysis: 'strict', stages: [{ weight: 100 }] },
      'analysis',
      'must be an object with interval, failureLimit, inconclusiveLimit and checks, got "strict"',
    ],
    ['interval zero', withAnalysis({ interval: '0s' }), 'analysis.interval', 'must be more than 0s'],
    [
      'interval unparseable',
      withAnalysis({ interval: 'often' }),
      'analysis.interval',
      `invalid duration "often": expected a number followed by a unit; use ${FORMS}`,
    ],
    [
      'interval without unit',
      withAnalysis({ interval: 60 }),
      'analysis.interval',
      `invalid duration "60": missing unit; use ${FORMS}`,
    ],
    [
      'interval absurd',
      withAnalysis({ interval: '1000h' }),
      'analysis.interval',
      'must be at most 30 days (720h), got "1000h"',
    ],
    [
      'interval negative',
      withAnalysis({ interval: '-1m' }),
      'analysis.interval',
      'must not be negative, got "-1m"',
    ],
    [
      'failureLimit zero',
      withAnalysis({ failureLimit: 0 }),
      'analysis.failureLimit',
      'must be a whole number of at least 1, got 0',
    ],
    [
      'failureLimit fractional',
      withAnalysis({ failureLimit: 1.5 }),
      'analysis.failureLimit',
      'must be a whole number of at least 1, got 1.5',
    ],
    [
      'failureLimit not a number',
      withAnalysis({ failureLimit: '3' }),
      'analysis.failureLimit',
      'must be a whole number of at least 1, got "3"',
    ],
    [
      'inconclusiveLimit negative',
      withAnalysis({ inconclusiveLimit: -1 }),
      'analysis.inconclusiveLimit',
      'must be a whole number of at least 1, got -1',
    ],
    [
      'checks not a list',
      withAnalysis({ checks: CHECK }),
      'analysis.checks',
      'must be a list of checks, got an object',
    ],
    [
      'check not an object',
      withAnalysis({ checks: ['error-rate'] }),
      'analysis.checks[0]',
      'must be an object with name, metric or query, and max and/or min, got "error-rate"',
    ],
    [
      'check without name',
      withAnalysis({ checks: [{ metric: 'error-rate', max: 1 }] }),
      'analysis.checks[0].name',
      'is required: every check needs a unique name',
    ],
    [
      'check with an empty name',
      withAnalysis({ checks: [{ ...CHECK, name: ' ' }] }),
      'analysis.checks[0].name',
      'must not be empty',
    ],
    [
      'duplicate check names',
      withAnalysis({ checks: [CHECK, { ...CHECK, metric: 'latency-p95', max: 500 }] }),
      'analysis.checks[1].name',
      'duplicate check name "errors" (also used by analysis.checks[0])',
    ],
    [
      'check with neither metric nor query',
      withAnalysis({ checks: [{ name: 'x', max: 1 }] }),
      'analysis.checks[0]',
      `needs a metric (${METRICS}) or a query`,
    ],
    [
      'check with both metric and query',
      withAnalysis({ checks: [{ ...CHECK, query: 'up' }] }),
      'analysis.checks[0]',
      'has both metric and query; keep exactly one',
    ],
    [
      'check with an unknown metric',
      withAnalysis({ checks: [{ ...CHECK, metric: 'error_rate' }] }),
      'analysis.checks[0].metric',
      `unknown metric "error_rate"; use ${METRICS}, or a raw query`,
    ],
    [
      'check with an empty query',
      withAnalysis({ checks: [{ name: 'q', query: '', max: 1 }] }),
      'analysis.checks[0].query',
      'must not be empty',
    ],
    [
      'check with neither max nor min',
      withAnalysis({ checks: [{ name: 'x', metric: 'error-rate' }] }),
      'analysis.checks[0]',
      'needs a threshold: max, min or both',
    ],
    [
      'check with min above max',
      withAnalysis({ checks: [{ ...CHECK, min: 5 }] }),
      'analysis.checks[0]',
      'min (5) is greater than max (1), so every value would fail',
    ],
    [
      'check threshold not a number',
      withAnalysis({ checks: [{ ...CHECK, max: '1%' }] }),
      'analysis.checks[0].max',
      'must be a number, got "1%"',
    ],
    [
      'unknown check field',
      withAnalysis({ checks: [{ ...CHECK, threshold: 1 }] }),
      'analysis.checks[0].threshold',
      'unknown field "threshold" (known fields: name, metric, query, max, min)',
    ],
    [
      'unknown analysis field',
      withAnalysis({ failureLimits: 2 }),
      'analysis.failureLimits',
      'unknown field "failureLimits" (did you mean "failureLimit"?)',
    ],

    // Promotion
    [
      'promotion not an object',
      { stages: [{ weight: 100 }], promotion: '10m' },
      'promotion',
      'must be an object with cleanupDelay and gate, got "10m"',
    ],
    [
      'cleanupDelay negative',
      { stages: [{ weight: 100 }], promotion: { cleanupDelay: '-10m' } },
      'promotion.cleanupDelay',
      'must not be negative, got "-10m"',
    ],
    [
      'cleanupDelay absurd',
      { stages: [{ weight: 100 }], promotion: { cleanupDelay: 'P31D' } },
      'promotion.cleanupDelay',
      'must be at most 30 days (720h), got "P31D"',
    ],
    [
      'cleanupDelay unparseable',
      { stages: [{ weight: 100 }], promotion: { cleanupDelay: 'later' } },
      'promotion.cleanupDelay',
      `invalid duration "later": expected a number followed by a unit; use ${FORMS}`,
    ],
    [
      'unknown promotion field',
      { stages: [{ weight: 100 }], promotion: { delay: '1m' } },
      'promotion.delay',
      'unknown field "delay" (known fields: cleanupDelay, gate)',
    ],
  ])('%s', (_case, spec, path, message) => {
    expect(problems(spec)).toEqual([{ path, message }]);
  });

  test('cleanupDelay is the one duration that may be zero', () => {
    expect(
      valid({ stages: [{ weight: 100 }], promotion: { cleanupDelay: '0s' } }).promotion.cleanupDelayMs,
    ).toBe(0);
  });
});

describe('healthyFor: a stage advances only after an unbroken run of passing rounds', () => {
  const plan = (stage: Record<string, unknown>, checks: unknown[] = [CHECK]) => ({
    analysis: { checks },
    stages: [{ weight: 10, hold: '3h', ...stage }, { weight: 100 }],
  });
  test('is read as a duration', () => {
    expect(valid(plan({ healthyFor: '3h' })).stages[0].healthyForMs).toBe(3 * H);
    expect(valid(plan({})).stages[0].healthyForMs).toBeUndefined();
  });
  test('at most the hold, only with checks, and a duration', () => {
    expect(problems(plan({ healthyFor: '4h' }))).toEqual([
      {
        path: 'stages[0].healthyFor',
        message: "is longer than the stage's hold (3h); it may be at most the hold: make the hold longer",
      },
    ]);
    expect(problems(plan({ healthyFor: '1h' }, []))).toEqual([
      { path: 'stages[0].healthyFor', message: 'needs analysis checks to tell health: add analysis.checks' },
    ]);
    expect(problems(plan({ healthyFor: 'always' }))[0]).toMatchObject({ path: 'stages[0].healthyFor' });
  });
});

describe('validatePlan: several problems', () => {
  test('are all reported together, in document order', () => {
    const spec = {
      name: 'broken',
      extra: true,
      analysis: { interval: '0s', failureLimit: 0, checks: [{ name: 'a', metric: 'error-rate' }] },
      stages: [
        { weight: 5 },
        { weight: 5, hold: 'PT1M', gate: { type: 'approval', timeout: '2h' } },
        { weight: 20, hold: '-1h', holdd: '1h' },
        { weight: 60, hold: '45d' },
      ],
      promotion: { cleanupDelay: 'soon' },
    };
    expect(problems(spec)).toEqual([
      {
        path: 'extra',
        message:
          'unknown field "extra" (known fields: name, analysis, stages, promotion, alerts, approvals, windows, hooks, load)',
      },
      { path: 'analysis.interval', message: 'must be more than 0s' },
      { path: 'analysis.failureLimit', message: 'must be a whole number of at least 1, got 0' },
      { path: 'analysis.checks[0]', message: 'needs a threshold: max, min or both' },
      {
        path: 'stages[0].hold',
        message: 'is required on every stage except the final 100% stage, e.g. 15m or 1h',
      },
      {
        path: 'stages[1].weight',
        message: 'must be greater than 5, the weight of stages[0] (weights must strictly increase)',
      },
      { path: 'stages[1].gate.onTimeout', message: 'is required when timeout is set: abort or proceed' },
      { path: 'stages[2].hold', message: 'must not be negative, got "-1h"' },
      { path: 'stages[2].holdd', message: 'unknown field "holdd" (did you mean "hold"?)' },
      { path: 'stages[3].weight', message: 'the last stage must have weight 100 (full promotion), got 60' },
      { path: 'stages[3].hold', message: 'must be at most 30 days (720h), got "45d"' },
      {
        path: 'promotion.cleanupDelay',
        message: `invalid duration "soon": expected a number followed by a unit; use ${FORMS}`,
      },
    ]);
  });

  test('a wrongly typed weight does not hide the checks of the other stages', () => {
    expect(
      problems({ stages: [{ weight: '5', hold: '1h' }, { weight: 200, hold: '1h' }, { weight: 100 }] }),
    ).toEqual([
      { path: 'stages[0].weight', message: 'must be a number (percent of traffic, e.g. 25), got "5"' },
      {
        path: 'stages[1].weight',
        message: 'must be more than 0 and at most 100 (percent of traffic), got 200',
      },
    ]);
  });
});

describe('formatProblems', () => {
  test('one problem', () => {
    expect(formatProblems([{ path: 'stages[0].hold', message: 'must be more than 0s' }])).toBe(
      'plan is invalid (1 problem):\n  - stages[0].hold: must be more than 0s',
    );
  });

  test('several problems, and one about the plan itself', () => {
    expect(
      formatProblems([
        { path: '', message: 'a plan must be an object with a "stages" list, got null' },
        { path: 'unknownField', message: 'unknown field "unknownField"' },
      ]),
    ).toBe(
      [
        'plan is invalid (2 problems):',
        '  - a plan must be an object with a "stages" list, got null',
        '  - unknownField: unknown field "unknownField"',
      ].join('\n'),
    );
  });
});

describe('bounds and whole percents', () => {
  test('weights are whole percents', () => {
    expect(problems(withStage({ weight: 2.5 }))).toEqual([
      { path: 'stages[0].weight', message: 'must be a whole percent (every router takes integers), got 2.5' },
    ]);
    // Rollouts started before the rule keep validating (the workflow replays them with strict off).
    expect(validatePlan(withStage({ weight: 2.5 }), { strict: false }).ok).toBe(true);
  });

  test('stage count, check count and name length are bounded, each with its own message', () => {
    const stages = Array.from({ length: 10_000 }, (_, i) => ({ weight: i, hold: 'x' }));
    expect(problems({ stages })).toEqual([
      { path: 'stages', message: 'lists 10000 stages; a plan may have at most 100' },
    ]);
    const checks = Array.from({ length: 51 }, (_, i) => ({ ...CHECK, name: `c${i}` }));
    expect(problems(withAnalysis({ checks }))).toEqual([
      { path: 'analysis.checks', message: 'lists 51 checks; a plan may have at most 50' },
    ]);
    expect(problems({ name: 'n'.repeat(101), stages: [{ weight: 100 }] })).toEqual([
      { path: 'name', message: 'must be at most 100 characters, got 101' },
    ]);
  });

  test('a long problem list is capped at 50 lines, then counted', () => {
    const many = Array.from({ length: 80 }, (_, i) => ({
      path: `stages[${i}].hold`,
      message: 'must be more than 0s',
    }));
    const lines = formatProblems(many).split('\n');
    expect(lines[0]).toBe('plan is invalid (80 problems):');
    expect(lines).toHaveLength(1 + 50 + 1);
    expect(lines[50]).toBe('  - stages[49].hold: must be more than 0s');
    expect(lines[51]).toBe('  ... and 30 more');
  });
});

describe('analysis limits: a sane interval and thresholds a metric can reach', () => {
  test('the analysis interval is at least 10 s', () => {
    expect(problems(withAnalysis({ interval: '1s', checks: [CHECK] }))).toEqual([
      {
        path: 'analysis.interval',
        message:
          'must be at least 10s, got 1s: metrics are scraped seconds apart, so shorter rounds only judge the same samples again',
      },
    ]);
    expect(validatePlan(withAnalysis({ interval: '10s', checks: [CHECK] })).ok).toBe(true);
    // Rollouts started before the rule keep validating as they did.
    expect(validatePlan(withAnalysis({ interval: '1s', checks: [CHECK] }), { limits: false }).ok).toBe(true);
    expect(validatePlan(withAnalysis({ interval: '1s', checks: [CHECK] }), { strict: false }).ok).toBe(true);
  });

  test('a threshold outside its metric range is refused, naming the range', () => {
    expect(
      problems(
        withAnalysis({
          checks: [
            { name: 'a', metric: 'error-rate', max: -1 },
            { name: 'b', metric: 'error-rate', max: 120 },
            { name: 'c', metric: 'latency-p95', max: -5 },
          ],
        }),
      ),
    ).toEqual([
      {
        path: 'analysis.checks[0].max',
        message: 'error-rate is a percentage from 0 to 100, so -1 can never be reached',
      },
      {
        path: 'analysis.checks[1].max',
        message: 'error-rate is a percentage from 0 to 100, so 120 can never be reached',
      },
      {
        path: 'analysis.checks[2].max',
        message: 'latency-p95 is a duration in ms of at least 0, so -5 can never be reached',
      },
    ]);
  });

  test('the full form: bands and differences are held to the range too', () => {
    expect(
      problems(
        withAnalysis({
          checks: [
            {
              name: 'ok',
              metric: 'request-success-rate',
              success: { min: 99 },
              abort: { min: 101, severity: 'critical' },
            },
            { name: 'diff', metric: 'error-rate', compare: { to: 'stable', difference: { max: 150 } } },
          ],
        }),
      ).map((p) => p.path),
    ).toEqual(
      expect.arrayContaining(['analysis.checks[0].abort.min', 'analysis.checks[1].compare.difference.max']),
    );
    // A custom query has no known range: any number goes.
    expect(validatePlan(withAnalysis({ checks: [{ name: 'q', query: 'sum(up)', max: -3 }] })).ok).toBe(true);
  });
});

describe('presets', () => {
  test('names', () => {
    expect(presetNames()).toEqual(['default', 'progressive', 'quick', 'gpu-model']);
  });

  test.each(Object.keys(PRESETS))('%s validates', (name) => {
    const result = validatePlan(PRESETS[name]);
    expect(result).toMatchObject({ ok: true });
  });

  test('default is the AI-model playbook: promotion at 48 h, 24 h soak', () => {
    const plan = valid(PRESETS.default);
    expect(plan.stages).toEqual([
      { weight: 5, holdMs: 1 * H, gate: { type: 'auto' } },
      { weight: 10, holdMs: 3 * H, gate: { type: 'auto' } },
      { weight: 25, holdMs: 20 * H, gate: { type: 'auto' } },
      { weight: 50, holdMs: 24 * H, gate: { type: 'auto' } },
      { weight: 100, holdMs: 0, gate: { type: 'auto' } },
    ]);
    expect(totalHoldMs(plan)).toBe(48 * H);
    expect(plan.analysis).toEqual({
      intervalMs: M,
      failureLimit: 1,
      inconclusiveLimit: 3,
      checks: [
        { name: 'error-rate', metric: 'error-rate', max: 1 },
        { name: 'latency-p95', metric: 'latency-p95', max: 5000 },
      ],
    });
    expect(plan.promotion).toEqual({ cleanupDelayMs: 24 * H });
  });

  test.each([
    ['default', '5% 1h → 10% 3h → 25% 20h → 50% 24h → 100%', 48 * H],
    ['progressive', '5% 5m → 10% 10m → 25% 15m → 50% 20m → 100%', 50 * M],
    ['quick', '5% 1m → 25% 1m → 50% 1m → 100%', 3 * M],
    ['gpu-model', '10% 5m → 50% 5m → 100%', 10 * M],
  ])('%s: %s', (name, description, total) => {
    const plan = valid(PRESETS[name]);
    expect(describePlan(plan)).toBe(description);
    expect(totalHoldMs(plan)).toBe(total);
  });

  test('failure limits and thresholds from the playbooks', () => {
    expect(valid(PRESETS.progressive).analysis.failureLimit).toBe(3);
    expect(valid(PRESETS['gpu-model']).analysis.failureLimit).toBe(2);
    expect(valid(PRESETS.quick).analysis.checks.map((c) => [c.metric, c.max])).toEqual([
      ['error-rate', 5],
      ['latency-p95', 1000],
    ]);
    expect(valid(PRESETS['gpu-model']).analysis.checks.map((c) => [c.metric, c.max])).toEqual([
      ['error-rate', 1],
      ['latency-p99', 500],
    ]);
  });
});

describe('describePlan and totalHoldMs', () => {
  test('show approval gates before the stage they guard, and a final hold', () => {
    const spec: PlanSpec = {
      stages: [
        { weight: 5, hold: '90m' },
        { weight: 50, hold: '2h', gate: 'approval' },
        { weight: 100, hold: '30s', gate: { type: 'approval', timeout: '4h', onTimeout: 'abort' } },
      ],
    };
    const plan = valid(spec);
    expect(describePlan(plan)).toBe(
      '5% 1h30m → [approval] 50% 2h → [approval within 4h, else abort] 100% 30s',
    );
    expect(totalHoldMs(plan)).toBe(3 * H + 30 * M + 30_000);
  });
});

describe('promotion.gate: the prompt before promotion', () => {
  const withPromotion = (promotion: Record<string, unknown>): unknown => ({
    stages: [
      { weight: 10, hold: '1h' },
      { weight: 100, hold: '1h' },
    ],
    promotion,
  });

  test('approval, with or without a timeout, is kept with the policy it applies; auto is no gate', () => {
    expect(valid(withPromotion({ gate: 'approval' })).promotion).toEqual({
      cleanupDelayMs: 10 * M,
      gate: { type: 'approval' },
    });
    const timed = valid(withPromotion({ gate: { type: 'approval', timeout: '4h', onTimeout: 'proceed' } }));
    expect(timed.promotion.gate).toEqual({ type: 'approval', timeoutMs: 4 * H, onTimeout: 'proceed' });
    expect(describePlan(timed)).toBe('10% 1h → 100% 1h → [approval within 4h, else proceed] promotion');
    expect(describePlan(valid(withPromotion({ gate: 'approval' })))).toBe(
      '10% 1h → 100% 1h → [approval] promotion',
    );
    const auto = valid(withPromotion({ gate: 'auto', cleanupDelay: '0s' }));
    expect(auto.promotion).toEqual({ cleanupDelayMs: 0 });
    expect(describePlan(auto)).toBe('10% 1h → 100% 1h');
    const policed = valid({
      ...(withPromotion({ gate: { type: 'approval', approvals: { required: 2 } } }) as object),
      approvals: { approvers: ['alice', 'bob'] },
    });
    expect(policed.promotion.gate?.policy).toMatchObject({ required: 2 });
  });

  test.each([
    [
      'an unknown gate',
      { gate: 'manual' },
      'promotion.gate',
      `unknown gate type "manual"; use ${GATE_FORMS}`,
    ],
    [
      'a timeout without onTimeout',
      { gate: { type: 'approval', timeout: '2h' } },
      'promotion.gate.onTimeout',
      'is required when timeout is set: abort or proceed',
    ],
    [
      'a misspelt field',
      { gate: { type: 'approval', timout: '2h' } },
      'promotion.gate.timout',
      'unknown field "timout" (did you mean "timeout"?)',
    ],
    [
      'a misspelt promotion field',
      { gates: 'approval' },
      'promotion.gates',
      'unknown field "gates" (did you mean "gate"?)',
    ],
  ])('refuses %s', (_what, promotion, where, message) => {
    expect(problems(withPromotion(promotion))).toContainEqual({ path: where, message });
  });
});

describe('workflow-safe modules', () => {
  test.each(['workflows/plan.ts', 'workflows/duration.ts', 'workflows/presets.ts'])(
    '%s imports no Node module',
    (file) => {
      const source = fs.readFileSync(path.join(__dirname, '..', '..', file), 'utf8');
      const imports = [...source.matchAll(/from '([^']+)'/g)].map((m) => m[1]);
      // Modules beside it (./alerts/routing too) are checked by their own tests (test/unit/alert-routing.test.ts).
      const pure = new Set(['zod']);
      expect(imports.filter((i) => !pure.has(i) && !i.startsWith('./'))).toEqual([]);
    },
  );
});

describe('planStartFindings: what a new rollout must not start with, beyond validatePlan', () => {
  const NOW = Date.UTC(2026, 2, 2, 10);
  const twoTenMinuteStages = [{ weight: 10, hold: '10m' }, { weight: 50, hold: '10m' }, { weight: 100 }];
  const findings = (spec: unknown) => planStartFindings(valid(spec), NOW);
  const withCheck = (check: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({
    analysis: { checks: [{ name: 'errors', metric: 'error-rate', ...check }] },
    stages: twoTenMinuteStages,
    ...extra,
  });

  it('finds nothing in the presets', () => {
    for (const name of presetNames()) {
      expect({ name, ...planStartFindings(valid(PRESETS[name]), NOW) }).toEqual({
        name,
        problems: [],
        warnings: [],
      });
    }
  });

  describe('a raw query without a side or version placeholder measures the whole fleet', () => {
    it.each([
      ['sum(rate(http_requests_total{app="{{app}}", namespace="{{namespace}}"}[{{window}}]))', true],
      ['sum(up)', true],
      ['sum(rate(x{ingress="{{ingress}}"}[{{window}}]))', true],
      ['sum(rate(x{version="{{version}}"}[{{window}}]))', false],
      ['sum(rate(x{ {{selector}} }[{{window}}]))', false],
      ['sum(kube_deployment_status_replicas_unavailable{deployment="{{ workload }}"})', false],
      ['sum(rate(x{service="{{service}}"}[5m]))', false],
      ['sum(rate(x{side="{{side}}"}[5m]))', false],
    ])('%s: warned %s', (query, warned) => {
      const short = findings({
        analysis: { checks: [{ name: 'q', query, max: 1 }] },
        stages: twoTenMinuteStages,
      });
      const full = findings({
        analysis: { checks: [{ name: 'q', query, success: { max: 1 } }] },
        stages: twoTenMinuteStages,
      });
      for (const f of [short, full]) {
        expect(f.problems).toEqual([]);
        expect(f.warnings.map((w) => w.path)).toEqual(warned ? ['analysis.checks[0].query'] : []);
      }
      if (warned) {
        expect(short.warnings[0].message).toBe(
          'uses none of {{side}}, {{version}}, {{workload}}, {{service}} or {{selector}}, so it measures the whole ' +
            "fleet (stable and canary alike), not the canary: a bad canary barely moves it. Select the canary's " +
            'series with one of them, e.g. version="{{version}}" or pod=~"{{workload}}-.*"',
        );
      }
    });
  });

  describe('persistence a breach could never reach', () => {
    it('a breach of a high check holds the stage, so judge-v2 reaches a long `for` past the holds: a warning', () => {
      // What the finding rests on: a breach that has not lasted `for` yet holds (the stage does not advance).
      const rule = valid(withCheck({ abort: { max: 5, for: '2h' } })).analysis.rules![0];
      const breach = { errors: { value: 9 } };
      const first = judgeRound([rule], breach, 0);
      expect(first.decision.action).toBe('hold');
      expect(judgeRound([rule], breach, 2 * H, first.state).decision.action).toBe('rollback');

      const f = findings(withCheck({ abort: { max: 5, for: '2h' } }));
      expect(f.problems).toEqual([]);
      expect(f.warnings).toEqual([
        {
          path: 'analysis.checks[0].abort.for',
          message:
            'asks a breach to last 2h, longer than the check is judged in stages 1–3, whose holds add up to 20m: ' +
            'a breach holds the stage, so the canary would keep its traffic past the hold until the breach has ' +
            'lasted that long before the high abort acts. Shorten for to fit the holds, or lengthen the holds',
        },
      ]);
      expect(findings(withCheck({ abort: { max: 5, for: '20m' } }))).toEqual({ problems: [], warnings: [] });
    });

    it('a low check without a success band lets the stages move on: a `for` past its holds is refused', () => {
      const f = findings(withCheck({ abort: { max: 5, severity: 'low', for: '2h' } }));
      expect(f.warnings).toEqual([]);
      expect(f.problems).toEqual([
        {
          path: 'analysis.checks[0].abort.for',
          message:
            'asks a breach to last 2h, but the check is judged in stages 1–3, whose holds add up to 20m, and this ' +
            'low check without a success band does not hold the stage: the stages move on first, so it could ' +
            'never alert. Shorten for to at most 20m, or lengthen the holds',
        },
      ]);
      // With a success band it holds the stage like any other: only a warning.
      expect(
        findings(withCheck({ success: { max: 1 }, abort: { max: 5, severity: 'low', for: '2h' } })).problems,
      ).toEqual([]);
    });

    it('counts only the stages the check applies to, and the longest run of consecutive ones', () => {
      const stages = [
        { weight: 5, hold: '10m' },
        { weight: 10, hold: '1h' },
        { weight: 25, hold: '10m' },
        { weight: 100 },
      ];
      const low = (applies: number[], persist: Record<string, unknown>) =>
        findings({
          analysis: {
            checks: [
              {
                name: 'p',
                metric: 'latency-p99',
                abort: { max: 500, severity: 'low', ...persist },
                stages: applies,
              },
            ],
          },
          stages,
        });
      expect(low([1, 3], { for: '15m' }).problems[0].message).toContain(
        'the check is judged in stage 1, whose holds add up to 10m (its longest run of consecutive stages; a breach ' +
          'streak ends where the check stops applying)',
      );
      expect(low([1, 2], { for: '70m' }).problems).toEqual([]);
      expect(low([1, 2], { for: '71m' }).problems.map((p) => p.path)).toEqual([
        'analysis.checks[0].abort.for',
      ]);
      // Consecutive rounds at the 1m interval: stage 3 has room for 10.
      expect(low([3], { consecutive: 10 }).problems).toEqual([]);
      expect(low([3], { consecutive: 11 }).problems[0].message).toMatch(
        /^asks a breach to last 11 rounds in a row \(11m at the 1m interval\), but the check is judged in stage 3, whose holds add up to 10m.* Shorten consecutive to at most 10 rounds/,
      );
    });

    it('is only a warning when an approval gate or windows may keep the rollout in those stages longer', () => {
      const gated = findings(
        withCheck(
          { abort: { max: 5, severity: 'low', for: '2h' } },
          {
            stages: [
              { weight: 10, hold: '10m' },
              { weight: 50, hold: '10m', gate: 'approval' },
              { weight: 100 },
            ],
          },
        ),
      );
      expect(gated.problems).toEqual([]);
      expect(gated.warnings.map((w) => w.path)).toEqual(['analysis.checks[0].abort.for']);
      expect(gated.warnings[0].message).toContain(
        'it alerts only if a gate, a deployment window or the promotion gate',
      );
    });

    it('refuses a check that applies only to a final stage without a hold: it is never measured', () => {
      const spec = {
        analysis: { checks: [{ name: 'full', metric: 'error-rate', success: { max: 1 }, stages: [2] }] },
        stages: [{ weight: 10, hold: '10m' }, { weight: 100 }],
      };
      expect(findings(spec).problems).toEqual([
        {
          path: 'analysis.checks[0].stages',
          message:
            'the check applies only to stage 2, which holds for 0s: the rollout promotes at once there, without an ' +
            'analysis round, so the check is never measured. Give that stage a hold, or apply the check to other ' +
            'stages too',
        },
      ]);
      // A promotion gate keeps the canary at 100 % with analysis running: then it is measured.
      expect(findings({ ...spec, promotion: { gate: 'approval' } }).problems).toEqual([]);
    });
  });

  it('refuses a rank test whose onNoData rolls back before the test can have its first evidence', () => {
    const spec = (onNoData?: unknown) => ({
      analysis: {
        interval: '1m',
        checks: [
          {
            name: 'shift',
            metric: 'latency-p95',
            test: { type: 'mann-whitney', minSamples: 10, step: '30s' },
            ...(onNoData !== undefined ? { onNoData } : {}),
          },
        ],
      },
      stages: twoTenMinuteStages,
    });
    // 10 points of 30 s need 5m of canary traffic; the default onNoData rolls back after 3 rounds (3m).
    const refused = findings(spec());
    expect(refused.problems).toEqual([
      {
        path: 'analysis.checks[0].onNoData',
        message:
          'the mann-whitney test needs about 5m of canary traffic for its first evidence (minSamples 10 × step 30s), ' +
          'but onNoData rolls back after 3 rounds without evidence (3m at a 1m interval): every rollout would roll ' +
          "back, however healthy. Raise onNoData's limit to at least 5, or lower minSamples or step",
      },
    ]);
    expect(findings(spec({ action: 'hold', limit: 5, then: 'rollback' })).problems).toEqual([]);
    expect(findings(spec({ action: 'hold', limit: 3, then: 'hold' })).problems).toEqual([]);
  });

  it('refuses deployment windows that do not open within opensWithin', () => {
    const spec = {
      stages: twoTenMinuteStages,
      windows: { timeZone: 'UTC', freeze: [{ from: '2026-01-01', to: '2999-01-01' }] },
    };
    // validatePlan itself keeps accepting it (recorded histories re-validate their plans).
    const plan = valid(spec);
    expect(plan.windows).toEqual({
      timeZone: 'UTC',
      freeze: [expect.objectContaining({ from: '2026-01-01', to: '2999-01-01' })],
      promotion: 'windows',
    });
    expect(planStartFindings(plan, NOW).problems.map((p) => p.path)).toEqual(['windows']);
    expect(planStartFindings(plan, Date.UTC(2999, 0, 5)).problems).toEqual([]);
  });
});
