// Short-form checks (`{ name, metric|query, max?, min? }`, plans without `analysis.rules`) at the edge of the
// full form: toFullForm turns them into full-form rules that judgeRound (judge-v2.ts) decides exactly as the
// original judge (legacy-judge.ts) and the workflow's counting did, and shortFormRound renders such a round the
// way the original path recorded and reported it. test/unit/judge-short-form.test.ts proves both with fast-check.
//
// The original path, per round: the verdict is fail when any check is past its threshold, inconclusive when none
// is and any has no data (an unreadable metric included), pass otherwise; `failureLimit` failing rounds in a row
// roll back ("analysis failed N time(s) in a row at W%: ..."), an inconclusive round leaves that count alone;
// `inconclusiveLimit` inconclusive rounds in a row roll back ("no metric evidence for N analyses in a row at
// W%: ..."), a failing or passing round starts that count again. The rules below say the same in the full form:
// each check's success and abort band is its [min, max]; the checks form one roundGroup (judged as one, round by
// round); the group rolls back after failureLimit breaching rounds (severity high, consecutive) or
// inconclusiveLimit rounds without evidence (onNoData hold, then rollback), and a breach streak survives rounds
// without evidence, as the original count did.
import type { AnalysisCheck, AnalysisCheckDefaults, AnalysisMetric } from './analysis-model';
import type { JudgeState, Decision, RoundMeasurement } from './judge-types';
import type { Check, CheckResult, Verdict } from './types';

/** The roundGroup toFullForm puts short-form checks in; it names the group in the judge's reasons. */
export const SHORT_FORM_GROUP = 'analysis';

/**
 * Short-form checks as full-form rules that judge as the original judge did. `windowMs` is the window the original
 * path reads (analysisWindowSeconds(plan) × 1000 in rollout.ts), `failureLimit` and `inconclusiveLimit` the plan's.
 */
export function toFullForm(
  checks: readonly Check[],
  plan: Pick<AnalysisCheckDefaults, 'windowMs' | 'failureLimit' | 'inconclusiveLimit'>,
): AnalysisCheck[] {
  return checks.map((c) => {
    const bound = {
      ...(c.max !== undefined ? { max: c.max } : {}),
      ...(c.min !== undefined ? { min: c.min } : {}),
    };
    return {
      name: c.name,
      // Plans recorded before the metric list was checked may name any metric: it is passed on as it was.
      ...(c.metric !== undefined ? { metric: c.metric as AnalysisMetric } : {}),
      ...(c.query !== undefined ? { query: c.query } : {}),
      windowMs: plan.windowMs,
      success: { value: bound },
      abort: {
        band: { value: bound },
        severity: 'high',
        persist: { kind: 'consecutive', rounds: plan.failureLimit },
      },
      onNoData: { action: 'hold', limit: plan.inconclusiveLimit, then: 'rollback' },
      onQueryError: { limit: plan.inconclusiveLimit, then: 'rollback' },
      shortForm: true,
      roundGroup: SHORT_FORM_GROUP,
    };
  });
}

/** A round of converted checks as the original path recorded and reported it. */
export interface ShortFormRound {
  verdict: Verdict;
  /** The checks as the original judge recorded them (AnalysisRecord.checks). */
  checks: CheckResult[];
  /** describeResults' line, e.g. `error-rate 7 > max 1; latency-p95 120 ok`. */
  summary: string;
  /** The original path's rollback message, when the round rolls back. */
  rollback?: string;
}

/**
 * Renders judgeRound's answer for toFullForm's rules the way the original path did: its verdict, its check
 * results, its summary line and, when the round rolls back, its message ("analysis failed 1 time(s) in a row at
 * 10%: error-rate 7 > max 1; p95 ok", or "no metric evidence for 3 analyses in a row at 10%: ...").
 */
export function shortFormRound(
  rules: readonly AnalysisCheck[],
  measurements: Readonly<Record<string, RoundMeasurement | undefined>>,
  judged: { state: JudgeState; decision: Decision },
  weight: number,
): ShortFormRound {
  const { decision, state } = judged;
  const checks = decision.perCheck.map((v): CheckResult => {
    if (v.outcome === 'pass' || v.outcome === 'breach') {
      return { name: v.name, value: v.value, outcome: v.outcome === 'pass' ? 'pass' : 'fail' };
    }
    const error = measurements[v.name]?.error?.message;
    return { name: v.name, value: null, outcome: 'no_data', ...(error ? { error } : {}) };
  });
  const verdict: Verdict = checks.some((c) => c.outcome === 'fail')
    ? 'fail'
    : checks.some((c) => c.outcome === 'no_data')
      ? 'inconclusive'
      : 'pass';
  const summary = describeResults(rules.map(thresholdsOf), checks);
  const out: ShortFormRound = { verdict, checks, summary };
  if (decision.action === 'rollback') {
    const group = state.groups?.[rules[0]?.roundGroup ?? SHORT_FORM_GROUP];
    out.rollback =
      verdict === 'fail'
        ? `analysis failed ${group?.consecutiveBreaches} time(s) in a row at ${weight}%: ${summary}`
        : `no metric evidence for ${group?.consecutiveNoData} analyses in a row at ${weight}%: ${summary}`;
  }
  return out;
}

/** A converted rule's thresholds, as the short form wrote them. */
function thresholdsOf(rule: AnalysisCheck): Check {
  const bound = rule.success?.value;
  return {
    name: rule.name,
    ...(bound?.max !== undefined ? { max: bound.max } : {}),
    ...(bound?.min !== undefined ? { min: bound.min } : {}),
  };
}

/** One line a person can read, e.g. `error-rate 8.1 > max 1; latency-p95 120 ok`. */
export function describeResults(checks: Check[], results: CheckResult[]): string {
  return results
    .map((r) => {
      const c = checks.find((x) => x.name === r.name);
      if (r.outcome === 'no_data') return `${r.name} no data${r.error ? ` (${r.error})` : ''}`;
      const v = round(r.value as number);
      if (r.outcome === 'pass') return `${r.name} ${v} ok`;
      if (c?.max !== undefined && (r.value as number) > c.max) return `${r.name} ${v} > max ${c.max}`;
      return `${r.name} ${v} < min ${c?.min}`;
    })
    .join('; ');
}

function round(v: number): number {
  return Math.round(v * 100) / 100;
}
