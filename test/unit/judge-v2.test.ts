import { parse } from 'yaml';
import { type AnalysisCheck, validateAnalysisChecks } from '../../workflows/analysis-spec';
import { judge } from '../../workflows/judge';
import {
  acknowledgeMissingEvidence,
  type Decision,
  initialJudgeState,
  judgeRound,
  type JudgeState,
  type RoundMeasurement,
  roundOutcome,
  ROUND_SLACK_MS,
  roundSlackFor,
} from '../../workflows/judge-v2';

const S = 1000;
const M = 60 * S;
const T0 = Date.UTC(2025, 5, 1, 9, 0, 0);

const DEFAULTS = { windowMs: M, failureLimit: 1, inconclusiveLimit: 3 };

function checksOf(yamlOrSpecs: string | unknown[], defaults = DEFAULTS): AnalysisCheck[] {
  const specs = typeof yamlOrSpecs === 'string' ? (parse(yamlOrSpecs) as unknown[]) : yamlOrSpecs;
  const result = validateAnalysisChecks(specs, defaults);
  if (!result.ok) throw new Error(result.problems.map((p) => `${p.path}: ${p.message}`).join('\n'));
  return result.checks;
}

type Round = Record<string, RoundMeasurement | undefined>;

/** Runs rounds `every` apart from T0, carrying the state through JSON (as continue-as-new does). */
function run(checks: AnalysisCheck[], rounds: Round[], every = M, start?: JudgeState): Decision[] {
  let state = start ?? initialJudgeState();
  return rounds.map((round, i) => {
    const out = judgeRound(checks, round, T0 + i * every, state);
    state = JSON.parse(JSON.stringify(out.state)) as JudgeState;
    return out.decision;
  });
}

const actions = (ds: Decision[]) => ds.map((d) => d.action);
const v = (value: number | null, extra: Partial<RoundMeasurement> = {}): RoundMeasurement => ({
  value,
  ...extra,
});
const failed = (message = 'connection refused'): RoundMeasurement => ({
  value: null,
  error: { kind: 'unavailable', message },
});
const repeat = <T>(n: number, f: (i: number) => T): T[] => Array.from({ length: n }, (_, i) => f(i));

// ---------------------------------------------------------------------------------------------------------------
// The reference playbooks (/work/shared/seeds), their thresholds written as checks

describe('playbook 000: GPU/model canary (10/50/100 %, 5 min observation)', () => {
  const checks = checksOf(`
- name: error-rate               # error rate 1 %; roll back if it exceeds it for 2+ minutes
  metric: error-rate
  window: 1m
  success: { max: 1 }
  abort: { max: 1, severity: high, for: 2m }
- name: latency-p99              # p99 500 ms; roll back when it exceeds it
  metric: latency-p99
  window: 1m
  success: { max: 500 }
  abort: { max: 500, severity: critical }
- name: health-checks            # failed health checks
  query: 'sum(kube_deployment_status_replicas_unavailable{namespace="{{namespace}}",deployment="{{workload}}"})'
  abort: { max: 0, severity: critical }
- name: gpu-memory-errors        # GPU memory errors detected
  query: 'sum(increase(gpu_memory_errors_total{app="{{app}}",version="{{version}}"}[{{window}}]))'
  abort: { max: 0, severity: critical }
  onNoData: ignore               # the counter only exists once a GPU has reported an error
`);
  const healthy = (over: Round = {}): Round => ({
    'error-rate': v(0.3),
    'latency-p99': v(320),
    'health-checks': v(0),
    'gpu-memory-errors': v(0),
    ...over,
  });

  it('validates, and advances on healthy rounds', () => {
    expect(checks).toHaveLength(4);
    expect(actions(run(checks, [healthy(), healthy()]))).toEqual(['advance-ok', 'advance-ok']);
  });

  it('rides out an error-rate breach shorter than 2 minutes', () => {
    const ds = run(checks, [healthy({ 'error-rate': v(3) }), healthy({ 'error-rate': v(3) }), healthy()]);
    expect(actions(ds)).toEqual(['hold', 'hold', 'advance-ok']);
    expect(ds[1].perCheck[0]).toMatchObject({ outcome: 'breach', band: 'abort', severity: 'high' });
    expect(ds[1].perCheck[0].note).toContain('breaching for 1m of 2m');
  });

  it('rolls back when the error rate stays above 1 % for 2 minutes', () => {
    const ds = run(
      checks,
      repeat(3, () => healthy({ 'error-rate': v(3) })),
    );
    expect(actions(ds)).toEqual(['hold', 'hold', 'rollback']);
    expect(ds[2].reasons[0]).toBe('error-rate: 3: 3 > abort max 1, for 2m of 2m (high): roll back');
  });

  it('rolls back at once on a p99 breach, an unavailable replica or a GPU memory error', () => {
    expect(run(checks, [healthy({ 'latency-p99': v(650) })])[0].action).toBe('rollback');
    expect(run(checks, [healthy({ 'health-checks': v(1) })])[0].action).toBe('rollback');
    const [d] = run(checks, [healthy({ 'gpu-memory-errors': v(2) })]);
    expect(d.action).toBe('rollback');
    expect(d.reasons).toEqual(['gpu-memory-errors: 2: 2 > abort max 0 (critical): roll back at once']);
  });

  it('does not wait for a GPU error counter that does not exist yet', () => {
    const [d] = run(checks, [healthy({ 'gpu-memory-errors': v(null) })]);
    expect(d.action).toBe('advance-ok');
    expect(d.perCheck[3]).toMatchObject({
      outcome: 'no_data',
      note: 'no data for 1m; ignored (onNoData: ignore)',
    });
  });
});

describe('playbook 001: Flagger plan, success criteria apart from abort thresholds', () => {
  const checks = checksOf(`
- name: success-rate             # success >= 99 % to advance; abort below 95 %, 3 consecutive failures
  metric: request-success-rate
  window: 1m
  success: { min: 99 }
  abort: { min: 95, consecutive: 3 }
- name: latency-p50              # p50 < 100 ms
  metric: latency-p50
  window: 1m
  success: { max: 100 }
- name: latency-p99              # p99 < 500 ms; abort above 2 s
  metric: latency-p99
  window: 1m
  success: { max: 500 }
  abort: { max: 2000, consecutive: 3 }
- name: error-rate               # errors < 1 %; abort above 5 %
  metric: error-rate
  window: 1m
  success: { max: 1 }
  abort: { max: 5, consecutive: 3 }
- name: 5xx-rate                 # 5xx < 0.1 %
  metric: 5xx-rate
  window: 1m
  success: { max: 0.1 }
`);
  const healthy = (over: Round = {}): Round => ({
    'success-rate': v(99.8),
    'latency-p50': v(40),
    'latency-p99': v(300),
    'error-rate': v(0.2),
    '5xx-rate': v(0.02),
    ...over,
  });

  it('validates, with high severity and 3 rounds as the abort default', () => {
    expect(checks.map((c) => c.abort?.persist)).toEqual([
      { kind: 'consecutive', rounds: 3 },
      undefined,
      { kind: 'consecutive', rounds: 3 },
      { kind: 'consecutive', rounds: 3 },
      undefined,
    ]);
    expect(run(checks, [healthy()])[0].action).toBe('advance-ok');
  });

  it('holds, without rolling back, while a metric sits between its success and abort thresholds', () => {
    const ds = run(
      checks,
      repeat(10, () => healthy({ 'success-rate': v(97), 'latency-p50': v(120) })),
    );
    expect(new Set(actions(ds))).toEqual(new Set(['hold']));
    expect(ds[9].perCheck[0]).toMatchObject({ band: 'between', outcome: 'hold' });
    expect(ds[9].reasons).toEqual([
      'success-rate: 97: 97 < success min 99, not past abort',
      'latency-p50: 120: 120 > success max 100, not past abort',
    ]);
  });

  it('rolls back on the third consecutive abort-level failure', () => {
    expect(
      actions(
        run(
          checks,
          repeat(3, () => healthy({ 'error-rate': v(6) })),
        ),
      ),
    ).toEqual(['hold', 'hold', 'rollback']);
    expect(
      actions(
        run(
          checks,
          repeat(3, () => healthy({ 'latency-p99': v(2500) })),
        ),
      ),
    ).toEqual(['hold', 'hold', 'rollback']);
  });

  it('starts counting again after a round below the abort threshold', () => {
    const errors = [6, 6, 0.5, 6, 6, 3, 6, 6];
    expect(
      actions(
        run(
          checks,
          errors.map((e) => healthy({ 'error-rate': v(e) })),
        ),
      ),
    ).toEqual([
      'hold',
      'hold',
      'advance-ok',
      'hold',
      'hold',
      'hold', // 3 % is between: not a breach, so the streak ends here too
      'hold',
      'hold',
    ]);
  });
});

describe('playbook 002: general guide, business and resource metrics', () => {
  const checks = checksOf(`
- name: error-rate               # roll back above 5 %
  metric: error-rate
  abort: { max: 5, severity: critical }
- name: latency                  # mean response time, roll back above 1000 ms
  query: >-
    1000 * sum(rate(http_request_duration_seconds_sum{app="{{app}}",version="{{version}}"}[{{window}}]))
    / sum(rate(http_request_duration_seconds_count{app="{{app}}",version="{{version}}"}[{{window}}]))
  abort: { max: 1000, severity: critical }
- name: conversion-rate          # business metric: roll back below 10 %
  query: >-
    100 * sum(rate(conversions_total{app="{{app}}",version="{{version}}"}[{{window}}]))
    / sum(rate(visitors_total{app="{{app}}",version="{{version}}"}[{{window}}]))
  window: 10m
  minRequests: 100               # a conversion rate from a handful of visitors says nothing
  abort: { min: 10, severity: high, consecutive: 1 }
  onNoData: { limit: 10, then: approval }
- name: cpu                      # resources: CPU < 80 %, memory < 80 %: watch, do not stop
  query: '100 * avg(rate(container_cpu_usage_seconds_total{namespace="{{namespace}}",pod=~"{{workload}}-.*"}[{{window}}]))'
  abort: { max: 80, severity: low }
- name: memory
  query: '100 * avg(container_memory_working_set_bytes{pod=~"{{workload}}-.*"} / container_spec_memory_limit_bytes{pod=~"{{workload}}-.*"})'
  abort: { max: 80, severity: low }
`);
  const healthy = (over: Round = {}): Round => ({
    'error-rate': v(1),
    latency: v(240),
    'conversion-rate': v(12.5, { requests: 800 }),
    cpu: v(45),
    memory: v(60),
    ...over,
  });

  it('validates and advances on healthy rounds', () => {
    expect(run(checks, [healthy()])[0].action).toBe('advance-ok');
  });

  it('rolls back on low conversion, high errors or slow responses', () => {
    expect(run(checks, [healthy({ 'conversion-rate': v(8, { requests: 800 }) })])[0].action).toBe('rollback');
    expect(run(checks, [healthy({ 'error-rate': v(5.5) })])[0].action).toBe('rollback');
    expect(run(checks, [healthy({ latency: v(1400) })])[0].action).toBe('rollback');
  });

  it('does not judge conversion on too few visitors, and asks a person after 10 such rounds', () => {
    const ds = run(
      checks,
      repeat(11, () => healthy({ 'conversion-rate': v(2, { requests: 20 }) })),
    );
    expect(actions(ds)).toEqual([...repeat(9, () => 'hold'), 'await-approval', 'await-approval']);
    expect(ds[0].perCheck[2]).toMatchObject({ outcome: 'inconclusive' });
    expect(ds[0].perCheck[2].note).toBe(
      '20 requests in 10m, fewer than minRequests 100; 1 of 10 rounds without evidence',
    );
    expect(ds[9].approvalFor).toEqual(['conversion-rate']);
  });

  it('alerts once on CPU pressure and keeps going', () => {
    const ds = run(checks, [
      healthy({ cpu: v(92) }),
      healthy({ cpu: v(93) }),
      healthy(),
      healthy({ cpu: v(91) }),
    ]);
    expect(actions(ds)).toEqual(['alert', 'advance-ok', 'advance-ok', 'alert']);
    expect(ds[0].alerts).toEqual([{ check: 'cpu', level: 'warning', message: 'cpu: 92: 92 > abort max 80' }]);
    expect(ds[1].alerts).toEqual([]);
    expect(ds[1].perCheck[3]).toMatchObject({ outcome: 'breach', band: 'abort', severity: 'low' });
  });
});

describe("playbook 002's hybrid decision: a breach asks a person (abort.then: approval)", () => {
  // "Auto proceed unless anomaly": an anomaly asks for manual review instead of rolling back.
  const checks = checksOf(`
- name: error-rate
  metric: error-rate
  success: { max: 1 }
  abort: { max: 5, severity: critical, then: approval, decideWithin: 10m }
- name: latency
  metric: latency-p95
  abort: { max: 1000, severity: high, consecutive: 2, then: approval }
`);
  const healthy = (over: Round = {}): Round => ({ 'error-rate': v(0.5), latency: v(300), ...over });
  const bad = (over: Round = {}) => healthy({ 'error-rate': v(7), ...over });

  it('validates: decideWithin defaults to 1h, and only critical and high may ask', () => {
    expect(checks[0].abort).toMatchObject({ severity: 'critical', ask: { decideWithinMs: 10 * M } });
    expect(checks[1].abort).toMatchObject({ severity: 'high', ask: { decideWithinMs: 60 * M } });
    const problems = (abort: unknown) => {
      const r = validateAnalysisChecks([{ name: 'x', metric: 'error-rate', abort }], DEFAULTS);
      return r.ok ? [] : r.problems.map((p) => `${p.path}: ${p.message}`);
    };
    expect(problems({ max: 5, severity: 'medium', then: 'approval' })).toEqual([
      'analysis.checks[0].abort.then: approval only applies to severity critical or high, whose breach rolls back; severity medium steps traffic back instead',
    ]);
    expect(problems({ max: 5, severity: 'low', then: 'approval' })).toEqual([
      'analysis.checks[0].abort.then: approval only applies to severity critical or high, whose breach rolls back; severity low only alerts',
    ]);
    expect(problems({ max: 5, then: 'ask' })).toEqual([
      'analysis.checks[0].abort.then: must be rollback (the default) or approval (a person decides), got "ask"',
    ]);
    expect(problems({ max: 5, decideWithin: '10m' })).toEqual([
      'analysis.checks[0].abort.decideWithin: only applies with then: approval (how long a person has to decide before the breach rolls back)',
    ]);
    expect(problems({ max: 5, then: 'approval', decideWithin: 'soon' })[0]).toMatch(
      /^analysis\.checks\[0\]\.abort\.decideWithin: /,
    );
    expect(problems({ max: 5, then: 'rollback' })).toEqual([]);
    expect(
      validateAnalysisChecks(
        [{ name: 'x', metric: 'error-rate', abort: { max: 5, then: 'rollback' } }],
        DEFAULTS,
      ),
    ).toMatchObject({
      ok: true,
      checks: [{ abort: { severity: 'high' } }],
    });
  });

  it('asks instead of rolling back, holds while nobody answers, and rolls back at decideWithin', () => {
    const ds = run(
      checks,
      repeat(11, () => bad()),
    );
    expect(actions(ds)).toEqual([...repeat(10, () => 'await-approval'), 'rollback']);
    expect(ds[0].approvalFor).toEqual(['error-rate']);
    expect(ds[0].breachApprovalFor).toEqual(['error-rate']);
    expect(ds[0].reasons[0]).toBe(
      'error-rate: 7: 7 > abort max 5 (critical): a person decides (approve goes on, abort rolls back; without an answer it rolls back in 10m)',
    );
    expect(ds[4].reasons[0]).toMatch(/rolls back in 6m\)$/);
    expect(ds[10].reasons[0]).toBe(
      'error-rate: 7: 7 > abort max 5 (critical); nobody decided within 10m: roll back',
    );
    expect(roundOutcome(ds[0])).toEqual({ advances: false, verdict: 'fail' });
  });

  it('a high check asks only once its breach has persisted', () => {
    const ds = run(checks, [healthy({ latency: v(1500) }), healthy({ latency: v(1600) })]);
    expect(actions(ds)).toEqual(['hold', 'await-approval']);
    expect(ds[1].reasons[0]).toMatch(
      /^latency: 1600: 1600 > abort max 1000, 2 of 2 rounds \(high\): a person decides/,
    );
  });

  it('once accepted, the breach no longer holds the stage; a later breach asks again', () => {
    let state = initialJudgeState();
    const at = (i: number) => T0 + i * M;
    const round = (r: Round, i: number) => {
      const out = judgeRound(checks, r, at(i), state);
      state = JSON.parse(JSON.stringify(out.state)) as JudgeState;
      return out.decision;
    };
    expect(round(bad(), 0).action).toBe('await-approval');
    state = acknowledgeMissingEvidence(state, ['error-rate']);
    const accepted = round(bad(), 1);
    expect(accepted.action).toBe('advance-ok');
    expect(accepted.perCheck[0]).toMatchObject({ outcome: 'breach', band: 'abort' });
    expect(accepted.perCheck[0].note).toMatch(/accepted by a person/);
    // Long after the deadline an accepted breach still does not roll back.
    expect(round(bad(), 30).action).toBe('advance-ok');
    // The breach ends; a new one asks again, with a fresh deadline.
    expect(round(healthy(), 31).action).toBe('advance-ok');
    const again = round(bad(), 32);
    expect(again.action).toBe('await-approval');
    expect(again.reasons[0]).toMatch(/rolls back in 10m\)$/);
  });

  it('the question stands through rounds without evidence, and the deadline still counts', () => {
    const ds = run(checks, [
      bad(),
      healthy({ 'error-rate': v(null) }),
      ...repeat(8, () => bad()),
      healthy({ 'error-rate': v(null) }),
    ]);
    expect(actions(ds)).toEqual([...repeat(10, () => 'await-approval'), 'rollback']);
    expect(ds[1].reasons[0]).toMatch(
      /error-rate: the breach still waits for a decision \(this round has no evidence either way\)/,
    );
  });

  it('a breach that ends by itself asks no more', () => {
    const ds = run(checks, [bad(), healthy({ 'error-rate': v(3) }), healthy()]);
    expect(actions(ds)).toEqual(['await-approval', 'hold', 'advance-ok']);
    expect(ds[1].breachApprovalFor).toBeUndefined();
  });

  it('a rollback of a check that does not ask still wins over a question', () => {
    const mixed = checksOf(`
- name: error-rate
  metric: error-rate
  abort: { max: 5, severity: critical, then: approval }
- name: crashes
  query: 'sum(kube_pod_container_status_restarts_total{pod=~"{{workload}}-.*"})'
  abort: { max: 0, severity: critical }
`);
    const [d] = run(mixed, [{ 'error-rate': v(7), crashes: v(2) }]);
    expect(d.action).toBe('rollback');
    expect(d.reasons[0]).toMatch(/^crashes: /);
  });
});

describe('playbook 003: AI-model playbook, the default plan', () => {
  const checks = checksOf(`
- name: error-rate               # error < 1 %; roll back when errors > 5 % for 5 min
  metric: error-rate
  window: 5m
  minRequests: 100
  success: { max: 1 }
  abort: { max: 5, severity: high, for: 5m }
- name: latency-p95              # p95 within 20 % of baseline; roll back when p95 > 5 s for 5 min
  metric: latency-p95
  window: 5m
  success: { ratio: { max: 1.2 } }
  abort: { max: 5000, severity: high, for: 5m }
- name: service-up               # critical - service down: roll back in < 30 s
  query: 'sum(up{namespace="{{namespace}}",app="{{app}}",version="{{version}}"})'
  abort: { min: 1, severity: critical }
  onNoData: fail                 # no scrape target at all is the service being down
- name: fairness                 # disparate impact above 0.8; below it for 10 min: high
  query: 'min(model_disparate_impact{app="{{app}}",version="{{version}}"})'
  window: 10m
  success: { min: 0.8 }
  abort: { min: 0.8, severity: high, for: 10m }
- name: cost-per-request         # within 1.5x of baseline; over it for 1 h: medium (reduce traffic or roll back)
  query: >-
    sum(rate(model_cost_dollars_total{app="{{app}}",version="{{version}}"}[{{window}}]))
    / sum(rate(model_requests_total{app="{{app}}",version="{{version}}"}[{{window}}]))
  window: 1h
  compare: { to: stable, ratio: { max: 1.5 } }
  abort: { ratio: { max: 1.5 }, severity: medium, for: 1h, recoverAfter: 30m, rollbackAfter: 2h }
- name: latency-distribution     # "no degradation compared to stable", Kayenta-style
  metric: latency-p95
  window: 10m
  test: { type: mann-whitney, effectSize: 0.33, step: 30s }
  abort: { severity: medium, consecutive: 3 }
`);
  const stableSeries = repeat(21, (i) => 200 + ((i * 7) % 11));
  const healthy = (over: Round = {}): Round => ({
    'error-rate': v(0.4, { requests: 5000 }),
    'latency-p95': v(210, { baseline: 200 }),
    'service-up': v(3),
    fairness: v(0.93),
    'cost-per-request': v(0.011, { baseline: 0.01 }),
    'latency-distribution': {
      value: null,
      series: { canary: stableSeries.map((x) => x + 1), baseline: stableSeries },
    },
    ...over,
  });

  it('validates and advances on healthy rounds', () => {
    expect(checks).toHaveLength(6);
    const [d] = run(checks, [healthy()]);
    expect(d.action).toBe('advance-ok');
    expect(d.perCheck[5]).toMatchObject({ outcome: 'pass', band: 'success' });
  });

  it('rolls back when errors stay above 5 % for 5 minutes', () => {
    const ds = run(
      checks,
      repeat(6, () => healthy({ 'error-rate': v(8, { requests: 5000 }) })),
    );
    expect(actions(ds)).toEqual(['hold', 'hold', 'hold', 'hold', 'hold', 'rollback']);
    expect(ds[5].reasons[0]).toBe('error-rate: 8: 8 > abort max 5, for 5m of 5m (high): roll back');
  });

  it('does not roll back for a 2-minute error blip, and advances once it is over', () => {
    const errors = [8, 8, 8, 0.4, 0.4, 0.4, 0.4, 0.4];
    const ds = run(
      checks,
      errors.map((e) => healthy({ 'error-rate': v(e, { requests: 5000 }) })),
    );
    expect(actions(ds)).toEqual([
      'hold',
      'hold',
      'hold',
      'advance-ok',
      'advance-ok',
      'advance-ok',
      'advance-ok',
      'advance-ok',
    ]);
  });

  it('rolls back when p95 stays above 5 s for 5 minutes; holds while it is only 30 % above stable', () => {
    const slow = run(
      checks,
      repeat(6, () => healthy({ 'latency-p95': v(6000, { baseline: 400 }) })),
    );
    expect(slow[5].action).toBe('rollback');
    const ds = run(
      checks,
      repeat(30, () => healthy({ 'latency-p95': v(260, { baseline: 200 }) })),
    );
    expect(new Set(actions(ds))).toEqual(new Set(['hold']));
    expect(ds[0].perCheck[1].note).toBe(
      '260 (stable 200, ratio 1.3): ratio 1.3 > success ratio max 1.2, not past abort',
    );
  });

  it('rolls back at once when the service is down or has vanished from the scrape', () => {
    expect(run(checks, [healthy({ 'service-up': v(0) })])[0].reasons[0]).toBe(
      'service-up: 0: 0 < abort min 1 (critical): roll back at once',
    );
    expect(run(checks, [healthy({ 'service-up': v(null) })])[0].reasons[0]).toBe(
      'service-up: no data for 1m (critical): roll back at once',
    );
  });

  it('rolls back on fairness below 0.8 for 10 minutes, not for a shorter dip', () => {
    const dip = run(
      checks,
      repeat(10, (i) => healthy({ fairness: v(i < 9 ? 0.7 : 0.9) })),
    );
    expect(dip.map((d) => d.action)).not.toContain('rollback');
    const long = run(
      checks,
      repeat(11, () => healthy({ fairness: v(0.7) })),
    );
    expect(long[10].action).toBe('rollback');
  });

  it('steps back on cost over 1.5x stable for an hour, then goes forward after 30 healthy minutes', () => {
    const expensive = healthy({ 'cost-per-request': v(0.018, { baseline: 0.01 }) });
    const rounds = [...repeat(13, () => expensive), ...repeat(7, () => healthy())];
    const ds = run(checks, rounds, 5 * M);
    expect(actions(ds)).toEqual([
      ...repeat(12, () => 'hold'), // 0..55 min: breaching, not yet an hour
      'step-back', // 60 min
      ...repeat(6, () => 'hold'), // healthy for 0..25 min: still stepped back
      'advance-ok', // healthy for 30 min: forward again
    ]);
    expect(ds[12].steppedBack).toBe(true);
    expect(ds[12].alerts[0].message).toContain("traffic steps back to the previous stage's weight");
    expect(ds[18].perCheck[4].note).toContain('stepped back; healthy for 25m of 30m');
    expect(ds[19].steppedBack).toBe(false);
    expect(ds[19].alerts).toEqual([
      {
        check: 'cost-per-request',
        level: 'info',
        message: 'cost-per-request: healthy for 30m; traffic may go forward again',
      },
    ]);
  });

  it('rolls back when the cost stays high for 2 hours after stepping back', () => {
    const expensive = healthy({ 'cost-per-request': v(0.018, { baseline: 0.01 }) });
    const ds = run(
      checks,
      repeat(12 + 1 + 24, () => expensive),
      5 * M,
    );
    expect(ds[12].action).toBe('step-back');
    expect(actions(ds.slice(13, 36))).toEqual(repeat(23, () => 'hold'));
    expect(ds[36].action).toBe('rollback');
    expect(ds[36].reasons[0]).toContain('still breaching 2h after stepping back (medium): roll back');
  });

  it('fails the distribution test on a clearly slower canary and steps back after 3 rounds', () => {
    const slower = healthy({
      'latency-distribution': {
        value: null,
        series: { canary: stableSeries.map((x) => x * 1.4), baseline: stableSeries },
      },
    });
    const ds = run(
      checks,
      repeat(3, () => slower),
    );
    expect(actions(ds)).toEqual(['hold', 'hold', 'step-back']);
    expect(ds[0].perCheck[5]).toMatchObject({ outcome: 'fail', band: 'abort', severity: 'medium' });
    expect(ds[0].perCheck[5].test).toMatchObject({ effectSize: 1 });
    expect(ds[0].perCheck[5].value).toBeCloseTo(287, 0);
  });
});

describe('playbook 004: NGINX-ingress canary (5/25/50/100 %, 60 s each)', () => {
  const checks = checksOf(`
- name: error-rate               # error rate 5 %: roll back when exceeded
  metric: error-rate
  window: 60s
  success: { max: 5 }
  abort: { max: 5, severity: high, consecutive: 1 }
  onQueryError: rollback         # as the short form does (the full form holds by default)
- name: latency-p95              # p95 1000 ms
  metric: latency-p95
  window: 60s
  success: { max: 1000 }
  abort: { max: 1000, severity: high, consecutive: 1 }
  onQueryError: rollback
`);

  it('is what the short form of its preset means', () => {
    const short = checksOf(
      [
        { name: 'error-rate', metric: 'error-rate', max: 5 },
        { name: 'latency-p95', metric: 'latency-p95', max: 1000 },
      ],
      { windowMs: 60 * S, failureLimit: 1, inconclusiveLimit: 3 },
    );
    expect(short.map(({ shortForm: _, ...c }) => c)).toEqual(checks);
  });

  it('rolls back at the first round over either threshold', () => {
    expect(run(checks, [{ 'error-rate': v(2), 'latency-p95': v(900) }])[0].action).toBe('advance-ok');
    expect(run(checks, [{ 'error-rate': v(6), 'latency-p95': v(900) }])[0].action).toBe('rollback');
    expect(run(checks, [{ 'error-rate': v(2), 'latency-p95': v(1200) }])[0].action).toBe('rollback');
  });
});

// ---------------------------------------------------------------------------------------------------------------
// The rules one by one

describe('short-form checks keep the semantics of today’s judge', () => {
  type Kind = 'pass' | 'fail' | 'none';
  const value: Record<Kind, number | null> = { pass: 0.5, fail: 3, none: null };

  /** Today: judge() per round, counted as rollout.ts counts (failures reset inconclusive and vice versa). */
  function today(seq: Kind[], failureLimit: number, inconclusiveLimit: number): string[] {
    let failures = 0;
    let inconclusive = 0;
    const out: string[] = [];
    for (const k of seq) {
      const { verdict } = judge(
        [{ name: 'e', metric: 'error-rate', max: 1 }],
        [{ name: 'e', value: value[k] }],
      );
      if (verdict === 'pass') {
        failures = 0;
        inconclusive = 0;
        out.push('advance-ok');
      } else if (verdict === 'fail') {
        failures++;
        inconclusive = 0;
        out.push(failures >= failureLimit ? 'rollback' : 'hold');
      } else {
        inconclusive++;
        out.push(inconclusive >= inconclusiveLimit ? 'rollback' : 'hold');
      }
      if (out[out.length - 1] === 'rollback') break;
    }
    return out;
  }

  function now(seq: Kind[], failureLimit: number, inconclusiveLimit: number): string[] {
    const checks = checksOf([{ name: 'e', metric: 'error-rate', max: 1 }], {
      windowMs: M,
      failureLimit,
      inconclusiveLimit,
    });
    const out: string[] = [];
    for (const d of run(
      checks,
      seq.map((k) => ({ e: v(value[k]) })),
    )) {
      out.push(d.action);
      if (d.action === 'rollback') break;
    }
    return out;
  }

  const sequences: Kind[][] = [
    ['pass', 'pass', 'pass'],
    ['fail'],
    ['pass', 'fail', 'pass', 'fail', 'fail', 'fail'],
    ['none', 'none', 'pass', 'none', 'none', 'none'],
    ['none', 'fail', 'none', 'fail', 'none', 'none', 'none'],
    ['fail', 'none', 'fail', 'none', 'fail'],
    ['none', 'pass', 'none', 'fail', 'none', 'none', 'pass', 'fail'],
  ];
  it.each([
    [1, 3],
    [2, 3],
    [3, 2],
  ])('failureLimit %p, inconclusiveLimit %p', (failureLimit, inconclusiveLimit) => {
    for (const seq of sequences) {
      expect(now(seq, failureLimit, inconclusiveLimit)).toEqual(today(seq, failureLimit, inconclusiveLimit));
    }
  });
});

describe('rounds that run a little off their schedule (roundSlackMs)', () => {
  const [check] = checksOf([
    { name: 'e', metric: 'error-rate', success: { max: 1 }, abort: { max: 5, severity: 'high', for: '20m' } },
  ]);
  /** Rounds 10m apart, except that the third runs `early` ms before its time (the round at a hold's end). */
  const rounds = (early: number, options: { roundSlackMs?: number }) => {
    let state = initialJudgeState();
    return repeat(4, (i) => {
      const at = T0 + i * 10 * M - (i === 2 ? early : 0);
      const out = judgeRound([check], { e: v(8, { requests: 5000 }) }, at, state, options);
      state = out.state;
      return out.decision;
    });
  };

  it('is a tenth of the interval, at least 1 s', () => {
    expect(roundSlackFor(10 * M)).toBe(M);
    expect(roundSlackFor(M)).toBe(6 * S);
    expect(roundSlackFor(5 * S)).toBe(ROUND_SLACK_MS);
  });

  it('counts a breach as lasting 20m when its third round on 10m rounds runs 2 s early', () => {
    const ds = rounds(2 * S, { roundSlackMs: roundSlackFor(10 * M) });
    expect(actions(ds)).toEqual(['hold', 'hold', 'rollback', 'rollback']);
    expect(ds[2].reasons[0]).toBe('e: 8: 8 > abort max 5, for 19m58s of 20m (high): roll back');
  });

  it('without it (rollouts started before never-stuck) waits a round more, as it did', () => {
    expect(actions(rounds(2 * S, {}))).toEqual(['hold', 'hold', 'hold', 'rollback']);
  });

  it('does not count a round more than the slack early', () => {
    expect(actions(rounds(2 * M, { roundSlackMs: roundSlackFor(10 * M) }))[2]).toBe('hold');
  });
});

describe('missing evidence and failed queries', () => {
  const [check] = checksOf([
    { name: 'e', metric: 'error-rate', success: { max: 1 }, abort: { max: 5 }, onQueryError: 'rollback' },
  ]);

  it('by default holds through an outage, however long, and alerts once', () => {
    const [outage] = checksOf([{ name: 'e', metric: 'error-rate', success: { max: 1 }, abort: { max: 5 } }]);
    const ds = run(
      [outage],
      repeat(10, () => ({ e: failed() })),
    );
    expect(new Set(actions(ds))).toEqual(new Set(['hold']));
    // One alert when the outage starts, one when it reaches the limit, none after.
    expect(ds.flatMap((d) => d.alerts).map((a) => a.message)).toEqual([
      'e: query failed (unavailable: connection refused); no advance until it answers (retrying every round)',
      'e: query failed 3 rounds in a row; the stage holds',
    ]);
  });

  it('holds on no data and rolls back at the limit (default: the plan’s inconclusiveLimit)', () => {
    const ds = run(
      [check],
      repeat(3, () => ({ e: v(null) })),
    );
    expect(actions(ds)).toEqual(['hold', 'hold', 'rollback']);
    expect(ds[2].reasons).toEqual(['e: no evidence for 3 rounds in a row: roll back']);
  });

  it('counts NaN, a missing measurement and a provider "no_data" error as no data', () => {
    const ds = run(
      [check],
      [{ e: v(NaN) }, {}, { e: { value: null, error: { kind: 'no_data', message: 'no values found' } } }],
    );
    expect(ds.map((d) => d.perCheck[0].outcome)).toEqual(['no_data', 'no_data', 'no_data']);
    expect(ds[2].action).toBe('rollback');
  });

  it('alerts at the first failed query, holds, and rolls back at the limit', () => {
    const ds = run(
      [check],
      repeat(3, () => ({ e: failed() })),
    );
    expect(actions(ds)).toEqual(['hold', 'hold', 'rollback']);
    expect(ds[0].alerts).toEqual([
      {
        check: 'e',
        level: 'warning',
        message:
          'e: query failed (unavailable: connection refused); no advance until it answers (retrying every round)',
      },
    ]);
    expect(ds[1].alerts).toEqual([]);
    expect(ds[0].perCheck[0]).toMatchObject({ outcome: 'query_failed', value: null });
    expect(ds[0].perCheck[0].band).toBeUndefined();
  });

  it('keeps a failed query apart from no data: neither streak resets the other, evidence resets both', () => {
    const ds = run(
      [check],
      [{ e: v(null) }, { e: failed() }, { e: v(null) }, { e: failed() }, { e: v(null) }],
    );
    expect(actions(ds)).toEqual(['hold', 'hold', 'hold', 'hold', 'rollback']);
    expect(ds[4].reasons[0]).toBe('e: no evidence for 3 rounds in a row: roll back');
    const healed = run(
      [check],
      [{ e: v(null) }, { e: v(null) }, { e: v(0.2) }, { e: v(null) }, { e: v(null) }],
    );
    expect(actions(healed)).toEqual(['hold', 'hold', 'advance-ok', 'hold', 'hold']);
  });

  it('an answering provider ends a failed-query streak, even if it has no data', () => {
    const ds = run(
      [check],
      [{ e: failed() }, { e: failed() }, { e: v(null) }, { e: failed() }, { e: failed() }],
    );
    expect(actions(ds)).toEqual(['hold', 'hold', 'hold', 'hold', 'hold']);
    expect(ds[3].alerts).toHaveLength(1); // a new outage, a new alert
  });

  it('can hold instead, alerting once, or ask a person', () => {
    const [holding] = checksOf([
      { name: 'e', metric: 'error-rate', max: 1, onQueryError: 'hold', onNoData: { limit: 2, then: 'hold' } },
    ]);
    const ds = run([holding], [...repeat(5, () => ({ e: failed() })), ...repeat(4, () => ({ e: v(null) }))]);
    expect(new Set(actions(ds))).toEqual(new Set(['hold']));
    expect(ds.map((d) => d.alerts.length)).toEqual([1, 0, 1, 0, 0, 0, 1, 0, 0]);
    expect(ds[2].alerts[0].message).toBe('e: query failed 3 rounds in a row; the stage holds');
    expect(ds[6].alerts[0].message).toBe('e: no evidence for 2 rounds in a row; the stage holds');
    // Those two say the rollout is stuck (typed, so the workflow needs not read the text); the first is not.
    expect([ds[0], ds[2], ds[6]].map((d) => d.alerts[0].stuck)).toEqual([undefined, true, true]);

    const [asking] = checksOf([
      { name: 'e', metric: 'error-rate', max: 1, onQueryError: { limit: 2, then: 'approval' } },
    ]);
    let state = initialJudgeState();
    const at = (i: number) => T0 + i * M;
    const decide = (i: number, m: RoundMeasurement) => {
      const out = judgeRound([asking], { e: m }, at(i), state);
      state = out.state;
      return out.decision;
    };
    expect(decide(0, failed()).action).toBe('hold');
    expect(decide(1, failed())).toMatchObject({ action: 'await-approval', approvalFor: ['e'] });
    expect(decide(2, failed()).action).toBe('await-approval');
    state = acknowledgeMissingEvidence(state, ['e']);
    expect(decide(3, failed()).action).toBe('hold');
    expect(decide(4, failed()).action).toBe('await-approval');
  });

  it('ignores missing data when told to, and fails on it when told to', () => {
    const [ignoring] = checksOf([{ name: 'e', metric: 'error-rate', max: 1, onNoData: 'ignore' }]);
    expect(
      actions(
        run(
          [ignoring],
          repeat(5, () => ({ e: v(null) })),
        ),
      ),
    ).toEqual(repeat(5, () => 'advance-ok'));
    // a failed query is not "no data": ignore does not cover it
    expect(run([ignoring], [{ e: failed() }])[0].action).toBe('hold');
    const [failing] = checksOf([
      { name: 'e', metric: 'error-rate', abort: { max: 5, consecutive: 2 }, onNoData: 'fail' },
    ]);
    expect(actions(run([failing], [{ e: v(null) }, { e: v(7) }]))).toEqual(['hold', 'rollback']);
  });

  it('is inconclusive below minRequests, or when the request count is unknown', () => {
    const [c] = checksOf([
      { name: 'e', metric: 'error-rate', minRequests: 50, success: { max: 1 }, abort: { max: 5 } },
    ]);
    const ds = run([c], [{ e: v(40, { requests: 10 }) }, { e: v(0.5) }, { e: v(0.5, { requests: 50 }) }]);
    expect(ds.map((d) => d.perCheck[0].outcome)).toEqual(['inconclusive', 'inconclusive', 'pass']);
    expect(ds[1].perCheck[0].note).toBe(
      'request count unknown (minRequests 50); 2 of 3 rounds without evidence',
    );
    expect(ds[2].action).toBe('advance-ok');
  });

  it('a breach streak survives rounds without evidence', () => {
    const [c] = checksOf([{ name: 'e', metric: 'error-rate', abort: { max: 5, for: '3m' } }]);
    const ds = run([c], [{ e: v(7) }, { e: failed() }, { e: v(null) }, { e: v(7) }]);
    expect(actions(ds)).toEqual(['hold', 'hold', 'hold', 'rollback']);
  });
});

describe('comparisons with stable', () => {
  const [c] = checksOf([
    {
      name: 'p95',
      metric: 'latency-p95',
      success: { ratio: { max: 1.2 }, difference: { max: 50 } },
      abort: { ratio: { max: 2 } },
    },
  ]);

  it('needs stable’s value', () => {
    const [d] = run([c], [{ p95: v(200) }]);
    expect(d.perCheck[0]).toMatchObject({
      outcome: 'no_data',
      baseline: null,
      note: expect.stringContaining('no stable data'),
    });
  });

  it('a day-over-day baseline (compare.offset) names stable as it was, and refuses a bad offset', () => {
    const [daily] = checksOf([
      {
        name: 'p95-vs-yesterday',
        metric: 'latency-p95',
        compare: { to: 'stable', offset: '1d', ratio: { max: 1.2 } },
        abort: { ratio: { max: 2 }, severity: 'critical' },
      },
    ]);
    expect(daily.compare).toEqual({ to: 'stable', offsetMs: 24 * 60 * M });
    const ds = run(
      [daily],
      [{ 'p95-vs-yesterday': v(230, { baseline: 200 }) }, { 'p95-vs-yesterday': v(230) }],
    );
    expect(ds[0].perCheck[0]).toMatchObject({ band: 'success', baseline: 200 });
    expect(ds[0].perCheck[0].note).toBe('230 (stable 24h earlier 200, ratio 1.15) ok');
    expect(ds[1].perCheck[0].note).toMatch(/^no data for 1m of stable 24h earlier to compare with/);
    const problems = (offset: unknown) => {
      const r = validateAnalysisChecks(
        [{ name: 'x', metric: 'latency-p95', compare: { to: 'stable', offset, ratio: { max: 1.2 } } }],
        DEFAULTS,
      );
      return r.ok ? [] : r.problems.map((p) => `${p.path}: ${p.message}`);
    };
    expect(problems('0s')).toEqual(['analysis.checks[0].compare.offset: must be more than 0s']);
    expect(problems('yesterday')[0]).toMatch(/^analysis\.checks\[0\]\.compare\.offset: /);
    // Without offset, the baseline is stable now, as before.
    expect(c.compare).toEqual({ to: 'stable' });
  });

  it('checks every success bound and any abort bound', () => {
    const ds = run(
      [c],
      [
        { p95: v(210, { baseline: 200 }) },
        { p95: v(250, { baseline: 200 }) },
        { p95: v(1100, { baseline: 1000 }) },
        { p95: v(450, { baseline: 200 }) },
      ],
    );
    expect(ds.map((d) => d.perCheck[0].band)).toEqual(['success', 'between', 'between', 'abort']);
    expect(ds[2].perCheck[0].note).toBe(
      '1100 (stable 1000, ratio 1.1): difference 100 > success difference max 50, not past abort',
    );
  });

  it('reads a stable value of 0 as "equal" for a canary at 0, and as infinitely worse above it', () => {
    const ds = run([c], [{ p95: v(0, { baseline: 0 }) }, { p95: v(5, { baseline: 0 }) }]);
    expect(ds.map((d) => d.perCheck[0].band)).toEqual(['success', 'abort']);
  });

  it('needs enough points for a test, on both sides', () => {
    const [t] = checksOf([
      { name: 't', metric: 'latency-p95', test: { type: 'mann-whitney', minSamples: 5 } },
    ]);
    const ds = run(
      [t],
      [
        { t: { value: null, series: { canary: [1, 2, 3], baseline: [1, 2, 3, 4, 5] } } },
        { t: { value: null, series: { canary: [1, 2, 3, 4, 5], baseline: [] } } },
        { t: { value: null, series: { canary: [1, 2, 3, 4, NaN], baseline: [1, 2, 3, 4, 5] } } },
      ],
    );
    expect(ds.map((d) => d.perCheck[0].outcome)).toEqual(['inconclusive', 'no_data', 'inconclusive']);
    expect(ds[0].perCheck[0].note).toMatch(/^3 canary and 5 stable points, fewer than minSamples 5/);
  });
});

describe('decisions across checks', () => {
  const checks = checksOf(`
- { name: crit, metric: error-rate, abort: { max: 10, severity: critical } }
- { name: high, metric: latency-p99, abort: { max: 1000, severity: high, consecutive: 1 } }
- { name: med, metric: latency-p95, abort: { max: 500, severity: medium } }
- { name: med2, metric: latency-p50, abort: { max: 100, severity: medium }, onQueryError: rollback }
- { name: low, metric: request-rate, success: { min: 1 }, abort: { min: 0.5, severity: low } }
`);
  const fine: Round = { crit: v(1), high: v(300), med: v(200), med2: v(50), low: v(5) };

  it('orders reasons like Kayenta’s scorer: critical, high, missing evidence, medium, low', () => {
    const ds = run(checks, [
      { ...fine, med2: failed() },
      { ...fine, med2: failed() },
      { crit: v(20), high: v(2000), med: v(800), med2: failed(), low: v(0.1) },
    ]);
    const d = ds[2];
    expect(d.action).toBe('rollback');
    expect(d.reasons.map((r) => r.split(':')[0])).toEqual(['crit', 'high', 'med2', 'med', 'low', 'low']);
    expect(d.reasons[0]).toBe('crit: 20: 20 > abort max 10 (critical): roll back at once');
    expect(d.reasons[2]).toBe('med2: query failed 3 rounds in a row: roll back');
  });

  it('tells the stage walk what a round means: advance on pass or a low alert, fail on a breach, else inconclusive', () => {
    const advisory = checksOf('- { name: cpu, metric: request-rate, abort: { min: 0.5, severity: low } }');
    const ok = { ...fine, cpu: v(5) };
    const ds = run(
      [...checks, ...advisory],
      [ok, { ...ok, cpu: v(0.1) }, { ...ok, low: v(0.1) }, { ...ok, med: v(800) }, { ...ok, crit: v(null) }],
    );
    expect(actions(ds)).toEqual(['advance-ok', 'alert', 'hold', 'step-back', 'hold']);
    expect(ds.map(roundOutcome)).toEqual([
      { advances: true, verdict: 'pass' },
      { advances: true, verdict: 'pass' },
      { advances: false, verdict: 'fail' },
      { advances: false, verdict: 'fail' },
      { advances: false, verdict: 'inconclusive' },
    ]);
  });

  it('steps back once for several medium checks, and stays back until every one recovered', () => {
    const ds = run(checks, [{ ...fine, med: v(800) }, { ...fine, med: v(800), med2: v(300) }, fine]);
    expect(actions(ds)).toEqual(['step-back', 'hold', 'hold']);
    expect(ds[1].reasons[0]).toBe(
      'med2: 300: 300 > abort max 100, this round (medium): step back to the previous weight (traffic is already stepped back)',
    );
    expect(ds.map((d) => d.steppedBack)).toEqual([true, true, true]);
  });

  it('a low check with a success band holds the stage, and alerts', () => {
    const [d] = run(checks, [{ ...fine, low: v(0.2) }]);
    expect(d.action).toBe('hold');
    expect(d.alerts).toHaveLength(1);
    expect(d.reasons).toEqual([
      'low: 0.2: 0.2 < abort min 0.5',
      'low: 0.2: 0.2 < abort min 0.5 (low): alert',
    ]);
  });

  it('says so when nothing stands in the way', () => {
    expect(run(checks, [fine])[0].reasons).toEqual(['every check passed (5)']);
    expect(judgeRound([], {}, T0).decision).toMatchObject({
      action: 'advance-ok',
      reasons: ['no checks: nothing to judge'],
    });
  });

  it('is deterministic, leaves its input alone, and keeps state for the current checks only', () => {
    const state = judgeRound(checks, { ...fine, high: v(5000) }, T0).state;
    const frozen = JSON.parse(
      JSON.stringify({
        ...state,
        checks: {
          ...state.checks,
          gone: { consecutiveBreaches: 9, consecutiveNoData: 0, consecutiveQueryFailures: 0 },
        },
      }),
    );
    const copy = JSON.stringify(frozen);
    const a = judgeRound(checks, { ...fine, med: v(900) }, T0 + M, frozen);
    const b = judgeRound(checks, { ...fine, med: v(900) }, T0 + M, frozen);
    expect(a).toEqual(b);
    expect(JSON.stringify(frozen)).toBe(copy);
    expect(Object.keys(a.state.checks)).toEqual(['crit', 'high', 'med', 'med2', 'low']);
    expect(a.state.checks.med).toEqual({
      consecutiveBreaches: 1,
      consecutiveNoData: 0,
      consecutiveQueryFailures: 0,
      breachSince: T0 + M,
      lastOutcome: 'breach',
      steppedBackAt: T0 + M,
    });
  });
});

describe('a query the source rejects (bad_query) fails its check, with permanentQueryErrors', () => {
  const REASON =
    'Prometheus at http://prom:9090 rejected the query (HTTP 400 bad_data: 1:27: parse error: unclosed left parenthesis); query: sum(rate(x[1m])';
  const rejected = (message = REASON): RoundMeasurement => ({
    value: null,
    error: { kind: 'bad_query', message },
  });
  const ON = { permanentQueryErrors: true };

  /** As run(), with the judge's options. */
  function runWith(
    checks: AnalysisCheck[],
    rounds: Round[],
    options: { permanentQueryErrors?: boolean } = ON,
    every = M,
  ): Decision[] {
    let state = initialJudgeState();
    return rounds.map((round, i) => {
      const out = judgeRound(checks, round, T0 + i * every, state, options);
      state = JSON.parse(JSON.stringify(out.state)) as JudgeState;
      return out.decision;
    });
  }

  it('critical: rolls back in the first round, naming the source’s reason', () => {
    const [c] = checksOf([
      { name: 'e', query: 'sum(rate(x[{{window}}])', abort: { max: 5, severity: 'critical' } },
    ]);
    const [d] = runWith([c], [{ e: rejected() }]);
    expect(d.action).toBe('rollback');
    expect(d.reasons).toEqual([`e: query rejected (bad_query: ${REASON}) (critical): roll back at once`]);
    expect(d.perCheck[0]).toMatchObject({ outcome: 'fail', value: null, severity: 'critical' });
    expect(roundOutcome(d)).toEqual({ advances: false, verdict: 'fail' });
    // The rollback says it; no extra alert.
    expect(d.alerts).toEqual([]);
  });

  it('high: breach rounds that roll back once persisted (3 in a row by default), alerting once meanwhile', () => {
    const [c] = checksOf([{ name: 'e', metric: 'error-rate', success: { max: 1 }, abort: { max: 5 } }]);
    const ds = runWith(
      [c],
      repeat(3, () => ({ e: rejected() })),
    );
    expect(actions(ds)).toEqual(['hold', 'hold', 'rollback']);
    expect(ds[0].reasons).toEqual([`e: query rejected (bad_query: ${REASON}); breaching 1 of 3 rounds`]);
    expect(ds[2].reasons).toEqual([
      `e: query rejected (bad_query: ${REASON}), 3 of 3 rounds (high): roll back`,
    ]);
    expect(ds.map((d) => d.alerts.length)).toEqual([1, 0, 0]);
    expect(ds[0].alerts[0]).toEqual({
      check: 'e',
      level: 'warning',
      message: `e: query rejected (bad_query: ${REASON}); it counts as a breach (high) until the check's query is fixed`,
    });
    // Rejected rounds and real breaches make one streak; evidence inside the bands ends it.
    expect(actions(runWith([c], [{ e: v(7) }, { e: rejected() }, { e: v(7) }]))).toEqual([
      'hold',
      'hold',
      'rollback',
    ]);
    expect(
      actions(runWith([c], [{ e: rejected() }, { e: rejected() }, { e: v(0.2) }, { e: rejected() }])),
    ).toEqual(['hold', 'hold', 'advance-ok', 'hold']);
  });

  it('high with `for`: rolls back once the rejection has lasted that long', () => {
    const [c] = checksOf([{ name: 'e', metric: 'error-rate', abort: { max: 5, for: '2m' } }]);
    expect(
      actions(
        runWith(
          [c],
          repeat(3, () => ({ e: rejected() })),
        ),
      ),
    ).toEqual(['hold', 'hold', 'rollback']);
  });

  it('medium: steps traffic back, and rolls back if still rejected rollbackAfter later', () => {
    const [c] = checksOf([
      { name: 'e', metric: 'error-rate', abort: { max: 5, severity: 'medium', rollbackAfter: '3m' } },
    ]);
    const ds = runWith(
      [c],
      repeat(4, () => ({ e: rejected() })),
    );
    expect(actions(ds)).toEqual(['step-back', 'hold', 'hold', 'rollback']);
    expect(ds[0].reasons[0]).toBe(
      `e: query rejected (bad_query: ${REASON}), this round (medium): step back to the previous weight`,
    );
    expect(ds[0].steppedBack).toBe(true);
    // The step-back's own alert says it; the rejection adds none.
    expect(ds.map((d) => d.alerts.length)).toEqual([1, 0, 0, 0]);
  });

  it('low: alerts once and keeps going (no success band), or holds with one', () => {
    const [advisory] = checksOf([{ name: 'e', metric: 'request-rate', abort: { min: 1, severity: 'low' } }]);
    const ds = runWith(
      [advisory],
      repeat(3, () => ({ e: rejected() })),
    );
    expect(actions(ds)).toEqual(['alert', 'advance-ok', 'advance-ok']);
    expect(ds.map((d) => d.alerts.length)).toEqual([1, 0, 0]);
    expect(ds[0].reasons).toEqual([`e: query rejected (bad_query: ${REASON}) (low): alert and keep going`]);
    const [holding] = checksOf([
      { name: 'e', metric: 'request-rate', success: { min: 5 }, abort: { min: 1, severity: 'low' } },
    ]);
    expect(actions(runWith([holding], [{ e: rejected() }]))).toEqual(['hold']);
  });

  it('without an abort band: holds the stage, says once that it is stuck, never rolls back', () => {
    const [c] = checksOf([
      { name: 'e', metric: 'error-rate', success: { max: 1 }, onQueryError: 'rollback' },
    ]);
    const ds = runWith(
      [c],
      repeat(6, () => ({ e: rejected() })),
    );
    expect(new Set(actions(ds))).toEqual(new Set(['hold']));
    expect(ds[0].reasons).toEqual([
      `e: query rejected (bad_query: ${REASON}); the stage holds until the query is fixed`,
    ]);
    expect(ds.flatMap((d) => d.alerts)).toEqual([
      {
        check: 'e',
        level: 'warning',
        message: `e: query rejected (bad_query: ${REASON}); the stage holds until the check's query is fixed`,
        stuck: true,
      },
    ]);
    expect(ds.map((d) => d.perCheck[0].outcome)).toEqual(repeat(6, () => 'fail'));
  });

  it('a short-form check rolls back at its failureLimit, as for a breach', () => {
    const [c] = checksOf([{ name: 'e', metric: 'error-rate', max: 1 }], { ...DEFAULTS, failureLimit: 2 });
    expect(actions(runWith([c], [{ e: rejected() }, { e: rejected() }]))).toEqual(['hold', 'rollback']);
  });

  it('then: approval asks a person, as for a breach', () => {
    const [c] = checksOf([
      { name: 'e', metric: 'error-rate', abort: { max: 5, severity: 'critical', then: 'approval' } },
    ]);
    const [d] = runWith([c], [{ e: rejected() }]);
    expect(d).toMatchObject({ action: 'await-approval', approvalFor: ['e'], breachApprovalFor: ['e'] });
  });

  it('an outage, or a query that failed on its data, keeps today’s behaviour with the option on', () => {
    const [c] = checksOf([
      { name: 'e', metric: 'error-rate', success: { max: 1 }, abort: { max: 5, severity: 'critical' } },
    ]);
    // `execution` too: valid PromQL that failed on the data it met (many-to-many while series churn) may run next round.
    for (const kind of ['unreachable', 'timeout', 'server', 'auth', 'execution']) {
      const outage: RoundMeasurement = {
        value: null,
        error: { kind, message: 'Prometheus at http://prom:9090 ...' },
      };
      const ds = runWith(
        [c],
        repeat(4, () => ({ e: outage })),
      );
      expect({ kind, actions: actions(ds) }).toEqual({ kind, actions: ['hold', 'hold', 'hold', 'hold'] });
      expect(ds.map((d) => d.perCheck[0].outcome)).toEqual(repeat(4, () => 'query_failed'));
      expect(ds.map((d) => d.alerts.length)).toEqual([1, 0, 1, 0]);
    }
  });

  it('without the option (recorded rollouts), a rejected query is a failed query like any other', () => {
    const [c] = checksOf([
      { name: 'e', metric: 'error-rate', success: { max: 1 }, abort: { max: 5, severity: 'critical' } },
    ]);
    const rounds = [...repeat(4, () => ({ e: rejected() })), { e: v(0.2) }, { e: rejected() }];
    const off = runWith([c], rounds, {});
    expect(actions(off)).toEqual(['hold', 'hold', 'hold', 'hold', 'advance-ok', 'hold']);
    expect(off[0].perCheck[0].outcome).toBe('query_failed');
    // Exactly what judgeRound decided before it took options, and the same as for an outage.
    expect(off).toEqual(run([c], rounds));
    const asOutage = run(
      [c],
      rounds.map((r) => (r.e?.error ? { e: { ...r.e, error: { ...r.e.error, kind: 'unreachable' } } } : r)),
    );
    expect(actions(off)).toEqual(actions(asOutage));
  });
});
