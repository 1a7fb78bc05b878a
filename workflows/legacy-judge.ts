// The original judge (v1), for rollouts that were recorded with it. It reads one round of short-form checks
// (`{ name, metric|query, max?, min? }`): a round fails when any check is past its threshold, is inconclusive
// when none is and any check has no data (an unreadable metric included), and passes otherwise; the workflow
// counts failing and inconclusive rounds into a rollback (failureLimit, inconclusiveLimit).
//
// Who still judges by it: the workflow's short-form path (rollout.ts analyse(), plans without `analysis.rules`),
// which also replays full-form rollouts recorded before JUDGE_PATCH; and the backtest of short-form plans.
// judge-short-form.ts turns short-form checks into full-form rules that judge-v2 decides the same way, with the
// same messages (toFullForm, shortFormRound): once the workflow judges new short-form rollouts that way (behind a
// patch), this module serves only the replay of rollouts started before it. Its message format (describeResults)
// lives in judge-short-form.ts, which both paths use. Pure and deterministic: runs inside the workflow.
import type { Check, CheckResult, Verdict } from './types';

export interface Measurement {
  name: string;
  value: number | null;
  error?: string;
}

export function judgeCheck(check: Check, m: Measurement | undefined): CheckResult {
  if (!m || m.value === null || !Number.isFinite(m.value)) {
    // No data is its own outcome: it is never read as healthy.
    return { name: check.name, value: null, outcome: 'no_data', ...(m?.error ? { error: m.error } : {}) };
  }
  const tooHigh = check.max !== undefined && m.value > check.max;
  const tooLow = check.min !== undefined && m.value < check.min;
  return { name: check.name, value: m.value, outcome: tooHigh || tooLow ? 'fail' : 'pass' };
}

export function judge(
  checks: Check[],
  measurements: Measurement[],
): { verdict: Verdict; checks: CheckResult[] } {
  const byName = new Map(measurements.map((m) => [m.name, m]));
  const results = checks.map((c) => judgeCheck(c, byName.get(c.name)));
  const verdict: Verdict = results.some((r) => r.outcome === 'fail')
    ? 'fail'
    : results.some((r) => r.outcome === 'no_data')
      ? 'inconclusive'
      : 'pass';
  return { verdict, checks: results };
}
