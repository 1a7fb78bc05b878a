// The original judge (v1), for rollouts that were recorded with it. It reads one round of short-form checks
// (`{ name, metric|query, max?, min? }`): a round fails when any check is past its threshold, is inconclusive
// when none is and any check has no data (an unreadable metric included), and passes otherwise; the workflow
// counts failing and inconclusive rounds into a rollback (failureLimit, inconclusiveLimit).
//
// Who still judges by it: rollouts started before machine-v2 (their rounds: machine/verdict.ts, by legacyRound
// below, which also replays full-form rollouts recorded before JUDGE_PATCH). From machine-v2 on, judge-short-form.ts
// turns short-form checks into full-form rules that judge-v2 decides the same way, with the same messages
// (toFullForm, shortFormRound), so this module serves only the replay of rollouts started before it. Its message
// format (describeResults) lives in judge-short-form.ts, which both paths use. Pure and deterministic: runs inside
// the workflow.
import { describeResults } from './judge-short-form';
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

/** The original path's counts, carried between rounds (consecutiveFailures, consecutiveInconclusive in the state). */
export interface LegacyCounts {
  consecutiveFailures: number;
  consecutiveInconclusive: number;
}

/** One round of the original path: the judge's verdict, the counts after it, and its rollback message if any. */
export interface LegacyRound {
  verdict: Verdict;
  checks: CheckResult[];
  counts: LegacyCounts;
  rollback?: string;
}

/**
 * A round as the original path counted it (rollouts started before machine-v2, short-form plans, or full-form plans
 * recorded before JUDGE_PATCH): a pass starts both counts again; a failing round counts towards `failureLimit` and
 * starts the inconclusive count again; an inconclusive round counts towards `inconclusiveLimit` and leaves the
 * failing count alone. At a limit the round rolls back, with the message the original path gave.
 */
export function legacyRound(
  checks: Check[],
  measurements: Measurement[],
  counts: LegacyCounts,
  limits: { failureLimit: number; inconclusiveLimit: number },
  weight: number,
): LegacyRound {
  const judged = judge(checks, measurements);
  const { verdict } = judged;
  const summary = describeResults(checks, judged.checks);
  if (verdict === 'pass') {
    return { ...judged, counts: { consecutiveFailures: 0, consecutiveInconclusive: 0 } };
  }
  if (verdict === 'fail') {
    const failures = counts.consecutiveFailures + 1;
    return {
      ...judged,
      counts: { consecutiveFailures: failures, consecutiveInconclusive: 0 },
      ...(failures >= limits.failureLimit
        ? { rollback: `analysis failed ${failures} time(s) in a row at ${weight}%: ${summary}` }
        : {}),
    };
  }
  const inconclusive = counts.consecutiveInconclusive + 1;
  return {
    ...judged,
    counts: { consecutiveFailures: counts.consecutiveFailures, consecutiveInconclusive: inconclusive },
    ...(inconclusive >= limits.inconclusiveLimit
      ? { rollback: `no metric evidence for ${inconclusive} analyses in a row at ${weight}%: ${summary}` }
      : {}),
  };
}
