// The judge's vocabulary (judge-v2.ts): what a round reads, what it carries between rounds and what it decides.
// Plain JSON throughout: the state crosses continue-as-new, the decision lands in status and history.
import type { Severity } from './analysis-model';
import type { MannWhitneyResult } from './mann-whitney';

/** One round's measurement of one check (canary side, and stable's where the check compares). */
export interface RoundMeasurement {
  /** The canary's value; null (or NaN) when the provider had no data for the window. */
  value: number | null;
  /** Stable's value over the same window, for ratio/difference bounds. */
  baseline?: number | null;
  /** Requests the canary served in the window, for minRequests. */
  requests?: number | null;
  /** The provider could not answer. Kind `no_data` is the provider saying "no values", and counts as no data. */
  error?: { kind: string; message: string };
  /** Range-query points over the window, for test checks. */
  series?: { canary: number[]; baseline: number[] };
  /** What produced the value, for status (a job check: the Job's end and the start of its logs). */
  detail?: string;
}

export type CheckOutcome =
  'pass' | 'hold' | 'breach' | 'inconclusive' | 'no_data' | 'query_failed' | 'marginal' | 'fail';
export type BandName = 'success' | 'between' | 'abort';
export type JudgeAction = 'advance-ok' | 'hold' | 'rollback' | 'step-back' | 'alert' | 'await-approval';

/** What the judge remembers of one check between rounds. Times are workflow time in ms. */
export interface CheckState {
  /** The round the current breach streak began. */
  breachSince?: number;
  consecutiveBreaches: number;
  /** Rounds in a row without evidence (no data, too little traffic), under onNoData hold. */
  consecutiveNoData: number;
  consecutiveQueryFailures: number;
  lastOutcome?: CheckOutcome;
  /** medium: when this check stepped traffic back; absent when it does not hold traffic back. */
  steppedBackAt?: number;
  /** medium: start of the unbroken run of passing rounds since the step-back. */
  healthySince?: number;
  /** then: approval: when this breach streak first asked a person (cleared when it ends or is accepted). */
  askedAt?: number;
  /** then: approval: a person accepted this breach streak; it no longer stands in the way until it ends. */
  breachAccepted?: true;
  /** Alerts already given for the streaks running now, so a long breach or outage alerts once. */
  alerted?: {
    breach?: true;
    queryFailure?: true;
    noDataLimit?: true;
    queryLimit?: true;
    /** permanentQueryErrors: the source rejected this check's query (said once per streak). */
    rejected?: true;
    /** A dry-run check said what it would have done (rolled back, stepped back, asked): once per streak. */
    dryRun?: true;
  };
}

/** How judgeRound reads a round; each option changes decisions, so the workflow turns it on behind a patch. */
export interface JudgeOptions {
  /**
   * A query the metrics source rejected (error kind `bad_query`: invalid PromQL, an unknown metric, an answer that
   * is not one number) fails its check at once, by its severity, instead of being held through as an outage.
   */
  permanentQueryErrors?: boolean;
  /**
   * Durations measured between rounds (a breach's `for`, a step-back's recovery, a question's decideWithin) count
   * as served this much early: rounds run a little off their schedule (each round's query takes its time, and the
   * round at a hold's end comes a few seconds before the one the schedule has there), and a `for 20m` breach on
   * 10m rounds must not wait a fourth round because the third came 2 s early. The workflow passes
   * roundSlackFor(interval) from never-stuck on; without it (recorded rollouts) durations count exactly.
   */
  roundSlackMs?: number;
}

/** The least slack: timers and clocks alone put rounds a few milliseconds off. */
export const ROUND_SLACK_MS = 1000;

/** How early a round may come and still count a duration as served: a tenth of the interval, at least 1 s. */
export function roundSlackFor(intervalMs: number): number {
  return Math.max(ROUND_SLACK_MS, Math.floor(intervalMs / 10));
}

/**
 * Error kinds that say the query itself is wrong: retrying cannot help (MetricsQueryError.permanent). Not
 * `execution` (Prometheus's 422: valid PromQL that failed on the series it met, which may churn back next round).
 */
export const PERMANENT_QUERY_ERROR_KINDS: readonly string[] = ['bad_query'];

/** Carried across rounds and continue-as-new; plain JSON. */
export interface JudgeState {
  version: 1;
  checks: Record<string, CheckState>;
  /** Checks judged as one (AnalysisCheck.roundGroup), by group; absent when no check is in a group. */
  groups?: Record<string, CheckState>;
}

export interface CheckVerdict {
  name: string;
  value: number | null;
  baseline?: number | null;
  /** Absent when the round had no evidence for this check. */
  band?: BandName;
  severity?: Severity;
  outcome: CheckOutcome;
  note: string;
  /** The Mann-Whitney result of a test check. */
  test?: Pick<MannWhitneyResult, 'u' | 'z' | 'pValue' | 'effectSize' | 'method'>;
  /** A dry-run check: its note says what it would have done; it had no part in the decision. */
  dryRun?: true;
}

export interface JudgeAlert {
  check: string;
  level: 'info' | 'warning' | 'critical';
  message: string;
  /** Evidence has been missing for longer than the check allows and the stage holds for it: the rollout is stuck. */
  stuck?: true;
}

export interface Decision {
  action: JudgeAction;
  /** Why, the deciding reason first. */
  reasons: string[];
  /** To send this round (each streak alerts once). */
  alerts: JudgeAlert[];
  /** A medium check holds traffic at the previous stage's weight. */
  steppedBack: boolean;
  /** The checks that ask a person (action await-approval): for missing evidence, or for a breach. */
  approvalFor?: string[];
  /** Those of `approvalFor` that ask about a breach (`then: approval`), not about missing evidence. */
  breachApprovalFor?: string[];
  perCheck: CheckVerdict[];
}
