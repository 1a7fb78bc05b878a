// The judge of issue 6: turns one round of measurements into a decision, check by check, by the rules of
// analysis-spec.ts (two bands, severities, persistence, missing data and failed queries kept apart). Pure and
// deterministic: time comes in as an argument, and the state it carries between rounds is plain JSON (it
// crosses continue-as-new). Not wired into the workflow yet.
//
// Per check, each round is one of:
//   query_failed             the provider could not answer: not evidence either way
//   fail (rejected query)    with permanentQueryErrors: the source refused the query itself (error kind bad_query:
//                            invalid PromQL, an unknown metric); no retry can fix it, so the check fails at once
//   no_data / inconclusive   it answered, but without data / with too little traffic (minRequests, minSamples)
//   pass | hold | breach     a threshold check's value in its success band, between the bands, in its abort band
//   pass | marginal | fail   a test check's result
//
// What a breach does depends on its severity (abort.severity):
//   critical  rolls back at once
//   high      rolls back once the breach has lasted `for`, or `consecutive` rounds in a row (default 3)
//             (either one with `then: approval` asks a person instead: await-approval, traffic holds; accepted,
//             the breach no longer stands in the way until its streak ends; unanswered for `decideWithin`, it
//             rolls back)
//   medium    once persisted: steps traffic back to the previous stage's weight and alerts; goes forward again
//             after `recoverAfter` of unbroken passing rounds, rolls back if still breaching `rollbackAfter`
//             after the step-back
//   low       alerts once per breach and keeps going (a low check without a success band never holds a stage)
// Missing evidence: onNoData hold counts rounds without evidence and does `then` at `limit`; fail counts the
// round as a breach; ignore lets the stage advance without this check. A failed query alerts at once (no
// advance, the next round retries) and does onQueryError.then at its limit. A breach streak survives rounds
// without evidence (they show neither health nor harm) and ends at the first round with evidence outside abort.
// A rejected query (option permanentQueryErrors) is not an outage: it counts as a breach round in the abort band,
// so its severity decides (critical rolls back now, high once persisted, medium steps back, low alerts); a check
// without an abort band holds the stage and alerts once that it is stuck. Without the option (rollouts recorded
// before it) a rejected query is a failed query like any other.
//
// The decision is the strongest action any rule fired: rollback > await-approval > step-back > hold > alert >
// advance-ok (so a medium step-back is not lost behind a missing-data hold, nor a medium rollback behind a
// missing-data approval). Its reasons come by that strength, and within it like Kayenta's scorer: critical
// breaches first, then high ones, then missing data and failed queries at their limits, then medium, then low. `advance-ok` means only that analysis
// does not stand in the way: every check passed with evidence (or ignores missing data, or is a low check with
// no success band), and no medium check holds traffic back.
import { formatDuration } from './duration';
import type { AnalysisCheck, Band, Bound, LimitAction, Severity } from './analysis-spec';
import { compareSeries, type MannWhitneyResult } from './mann-whitney';
import type { Verdict } from './types';

// ---------------------------------------------------------------------------------------------------------------
// Input, state and output

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

/**
 * What a round means for the stage walk: whether it lets the stage advance (a low-severity alert does), and the
 * verdict status shows for it (fail when a check breached or failed, inconclusive when it only lacked evidence).
 */
export function roundOutcome(decision: Decision): { advances: boolean; verdict: Verdict } {
  const advances = decision.action === 'advance-ok' || decision.action === 'alert';
  const verdict: Verdict = advances
    ? 'pass'
    : decision.perCheck.some((c) => c.outcome === 'breach' || c.outcome === 'fail')
      ? 'fail'
      : 'inconclusive';
  return { advances, verdict };
}

export function initialJudgeState(): JudgeState {
  return { version: 1, checks: {} };
}

/**
 * After a person answered an await-approval: the named checks (all when none are named) start counting
 * missing evidence and failed queries afresh, so the question comes again only after another full limit; and a
 * breach that asked (`then: approval`) is accepted until its streak ends, so only a later breach asks again.
 */
export function acknowledgeMissingEvidence(state: JudgeState, names?: readonly string[]): JudgeState {
  const checks: Record<string, CheckState> = {};
  for (const [name, s] of Object.entries(state.checks)) {
    if (names && !names.includes(name)) {
      checks[name] = s;
      continue;
    }
    const next: CheckState = { ...s, consecutiveNoData: 0, consecutiveQueryFailures: 0 };
    if (s.askedAt !== undefined) {
      delete next.askedAt;
      next.breachAccepted = true;
    }
    if (s.alerted) {
      const rest = { ...s.alerted };
      delete rest.noDataLimit;
      delete rest.queryLimit;
      delete rest.queryFailure;
      if (Object.keys(rest).length > 0) next.alerted = rest;
      else delete next.alerted;
    }
    checks[name] = next;
  }
  return { version: 1, checks };
}

// ---------------------------------------------------------------------------------------------------------------
// The round

const STRENGTH: Record<JudgeAction, number> = {
  rollback: 5,
  'await-approval': 4,
  'step-back': 3,
  hold: 2,
  alert: 1,
  'advance-ok': 0,
};

/** Kayenta-like precedence of reasons within one strength. */
const PRECEDENCE = { critical: 1, high: 2, evidence: 3, medium: 4, low: 5, hold: 6 } as const;

interface Fired {
  action: JudgeAction;
  precedence: number;
  reason: string;
  check: string;
}

/**
 * Judges one round. `at` is the round's workflow time in ms; `state` what the previous round returned; `options`
 * what the rollout's workflow version judges by (none: as rollouts recorded before them).
 */
export function judgeRound(
  checks: readonly AnalysisCheck[],
  measurements: Readonly<Record<string, RoundMeasurement | undefined>>,
  at: number,
  state: JudgeState = initialJudgeState(),
  options: JudgeOptions = {},
): { state: JudgeState; decision: Decision } {
  const wasSteppedBack = checks.some((c) => state.checks[c.name]?.steppedBackAt !== undefined);
  const fired: Fired[] = [];
  const alerts: JudgeAlert[] = [];
  const holds: string[] = [];
  const perCheck: CheckVerdict[] = [];
  const nextChecks: Record<string, CheckState> = {};
  const approvalFor: string[] = [];
  const breachApprovalFor: string[] = [];

  for (const check of checks) {
    const step = judgeCheck(check, measurements[check.name], at, state.checks[check.name], options);
    nextChecks[check.name] = step.next;
    perCheck.push(step.verdict);
    alerts.push(...step.alerts);
    for (const f of step.fired) {
      if (f.action === 'step-back' && wasSteppedBack) {
        // Traffic is already back at the previous weight for another check: stay there.
        fired.push({ ...f, action: 'hold', reason: `${f.reason} (traffic is already stepped back)` });
      } else fired.push(f);
      if (f.action === 'await-approval') approvalFor.push(check.name);
    }
    if (step.asksForBreach) breachApprovalFor.push(check.name);
    if (step.blocks && !step.fired.some((f) => STRENGTH[f.action] >= STRENGTH.hold)) {
      holds.push(`${check.name}: ${step.verdict.note}`);
    }
  }

  fired.sort((a, b) => STRENGTH[b.action] - STRENGTH[a.action] || a.precedence - b.precedence);
  let action: JudgeAction = fired.length > 0 ? fired[0].action : 'advance-ok';
  if (holds.length > 0 && STRENGTH[action] < STRENGTH.hold) action = 'hold';
  const reasons = [
    ...fired.filter((f) => STRENGTH[f.action] >= STRENGTH.hold).map((f) => f.reason),
    ...holds,
    ...fired.filter((f) => STRENGTH[f.action] < STRENGTH.hold).map((f) => f.reason),
  ];
  if (reasons.length === 0) {
    reasons.push(
      checks.length === 0 ? 'no checks: nothing to judge' : `every check passed (${checks.length})`,
    );
  }
  const decision: Decision = {
    action,
    reasons,
    alerts,
    steppedBack: Object.values(nextChecks).some((s) => s.steppedBackAt !== undefined),
    perCheck,
  };
  if (approvalFor.length > 0) decision.approvalFor = approvalFor;
  if (breachApprovalFor.length > 0) decision.breachApprovalFor = breachApprovalFor;
  return { state: { version: 1, checks: nextChecks }, decision };
}

// ---------------------------------------------------------------------------------------------------------------
// One check

type Observation =
  | { kind: 'query_failed'; note: string }
  | { kind: 'rejected'; note: string }
  | { kind: 'no_evidence'; outcome: 'no_data' | 'inconclusive'; note: string }
  | {
      kind: 'evidence';
      band: BandName;
      outcome: 'pass' | 'hold' | 'breach' | 'marginal' | 'fail';
      note: string;
      test?: MannWhitneyResult;
    };

interface CheckStep {
  verdict: CheckVerdict;
  next: CheckState;
  fired: Fired[];
  alerts: JudgeAlert[];
  /** This check stands in the way of advancing. */
  blocks: boolean;
  /** It asks a person about its breach (then: approval). */
  asksForBreach: boolean;
}

function judgeCheck(
  check: AnalysisCheck,
  m: RoundMeasurement | undefined,
  at: number,
  prev: CheckState | undefined,
  options: JudgeOptions,
): CheckStep {
  const obs = observe(check, m, options);
  const slack = options.roundSlackMs ?? 0;
  const next: CheckState = copyState(prev);
  const alerted = { ...(prev?.alerted ?? {}) };
  const fired: Fired[] = [];
  const alerts: JudgeAlert[] = [];
  const notes: string[] = [obs.note];
  const abort = check.abort;
  const severity = abort?.severity;
  const advisory = severity === 'low' && check.success === undefined;
  const name = check.name;
  const fire = (action: JudgeAction, precedence: number, reason: string) =>
    fired.push({ action, precedence, reason: `${name}: ${reason}`, check: name });
  const limitReached = (then: LimitAction, what: string, flag: 'noDataLimit' | 'queryLimit') => {
    if (then === 'rollback') fire('rollback', PRECEDENCE.evidence, `${what}: roll back`);
    else if (then === 'approval') fire('await-approval', PRECEDENCE.evidence, `${what}: a person decides`);
    else {
      fire('hold', PRECEDENCE.evidence, `${what}: holding until evidence arrives`);
      if (!alerted[flag]) {
        alerted[flag] = true;
        alerts.push({
          check: name,
          level: 'warning',
          message: `${name}: ${what}; the stage holds`,
          stuck: true,
        });
      }
    }
  };

  let blocks = true;
  let breachRound = false;
  let evidence = false;
  if (obs.kind === 'query_failed') {
    next.consecutiveQueryFailures++;
    delete next.healthySince;
    if (!alerted.queryFailure) {
      alerted.queryFailure = true;
      alerts.push({
        check: name,
        level: 'warning',
        message: `${name}: ${obs.note}; no advance until it answers (retrying every round)`,
      });
    }
    const limit = check.onQueryError.limit;
    notes.push(`failed ${next.consecutiveQueryFailures} of ${limit} rounds in a row`);
    if (next.consecutiveQueryFailures >= limit) {
      limitReached(
        check.onQueryError.then,
        `query failed ${next.consecutiveQueryFailures} rounds in a row`,
        'queryLimit',
      );
    }
  } else {
    // The provider answered: whatever its answer, it is not down.
    next.consecutiveQueryFailures = 0;
    delete alerted.queryFailure;
    delete alerted.queryLimit;
    if (obs.kind !== 'rejected') delete alerted.rejected;
    if (obs.kind === 'rejected') {
      // No retry can fix the query: the check fails. With an abort band that is a breach round, for the severity
      // to act on below; without one the stage cannot advance on this check until someone fixes the plan.
      delete next.healthySince;
      if (abort) breachRound = true;
      else {
        notes.push('the stage holds until the query is fixed');
        if (!alerted.rejected) {
          alerts.push({
            check: name,
            level: 'warning',
            message: `${name}: ${obs.note}; the stage holds until the check's query is fixed`,
            stuck: true,
          });
        }
      }
    } else if (obs.kind === 'no_evidence') {
      const rule = check.onNoData;
      if (rule.action === 'ignore') {
        blocks = false;
        notes.push('ignored (onNoData: ignore)');
      } else if (rule.action === 'fail') {
        breachRound = true;
        notes.push('counted as a breach (onNoData: fail)');
      } else {
        next.consecutiveNoData++;
        delete next.healthySince;
        notes.push(`${next.consecutiveNoData} of ${rule.limit} rounds without evidence`);
        if (next.consecutiveNoData >= rule.limit) {
          limitReached(rule.then, `no evidence for ${next.consecutiveNoData} rounds in a row`, 'noDataLimit');
        }
      }
    } else {
      evidence = true;
      next.consecutiveNoData = 0;
      delete alerted.noDataLimit;
      breachRound = obs.band === 'abort';
      blocks = obs.outcome !== 'pass';
    }
  }

  if (breachRound) {
    next.consecutiveBreaches++;
    next.breachSince ??= at;
  } else if (evidence) {
    next.consecutiveBreaches = 0;
    delete next.breachSince;
    delete alerted.breach;
    delete next.askedAt;
    delete next.breachAccepted;
  }

  // then: approval. A breach that would roll back asks a person; the question stands through rounds without
  // evidence, until it is answered, the breach ends, or decideWithin passes.
  let asksForBreach = false;
  const ask = (why: string, precedence: number) => {
    const within = abort?.ask?.decideWithinMs ?? 0;
    if (next.breachAccepted) {
      notes.push('accepted by a person: does not hold the stage while this breach lasts');
      blocks = false;
      return;
    }
    next.askedAt ??= at;
    const waited = at - next.askedAt;
    if (waited + slack >= within) {
      fire('rollback', precedence, `${why}; nobody decided within ${formatDuration(within)}: roll back`);
    } else {
      asksForBreach = true;
      fire(
        'await-approval',
        precedence,
        `${why}: a person decides (approve goes on, abort rolls back; without an answer it rolls back in ` +
          `${formatDuration(within - waited)})`,
      );
    }
  };

  if (breachRound && abort) {
    const { persisted, progress } = persistence(abort.persist, next, at, slack);
    if (severity === 'critical') {
      if (abort.ask) ask(`${obs.note} (critical)`, PRECEDENCE.critical);
      else fire('rollback', PRECEDENCE.critical, `${obs.note} (critical): roll back at once`);
    } else if (severity === 'high') {
      if (!persisted) notes.push(`breaching ${progress}`);
      else if (abort.ask) ask(`${obs.note}, ${progress} (high)`, PRECEDENCE.high);
      else fire('rollback', PRECEDENCE.high, `${obs.note}, ${progress} (high): roll back`);
    } else if (severity === 'medium') {
      delete next.healthySince;
      const stepBack = abort.stepBack ?? { recoverAfterMs: 0, rollbackAfterMs: 0 };
      if (!persisted) notes.push(`breaching ${progress}`);
      else if (next.steppedBackAt === undefined) {
        next.steppedBackAt = at;
        fire(
          'step-back',
          PRECEDENCE.medium,
          `${obs.note}, ${progress} (medium): step back to the previous weight`,
        );
        alerts.push({
          check: name,
          level: 'warning',
          message:
            `${name}: ${obs.note}; traffic steps back to the previous stage's weight, rolls back if this ` +
            `lasts ${formatDuration(stepBack.rollbackAfterMs)}`,
        });
      } else if (at - next.steppedBackAt + slack >= stepBack.rollbackAfterMs) {
        fire(
          'rollback',
          PRECEDENCE.medium,
          `${obs.note}, still breaching ${formatDuration(at - next.steppedBackAt)} after stepping back (medium): roll back`,
        );
      } else {
        notes.push(
          `stepped back ${formatDuration(at - next.steppedBackAt)} ago; rolls back at ` +
            `${formatDuration(stepBack.rollbackAfterMs)} if this persists`,
        );
      }
    } else if (severity === 'low') {
      if (persisted && !alerted.breach) {
        alerted.breach = true;
        fire('alert', PRECEDENCE.low, `${obs.note} (low): alert${advisory ? ' and keep going' : ''}`);
        alerts.push({ check: name, level: 'warning', message: `${name}: ${obs.note}` });
      } else if (!persisted) notes.push(`breaching ${progress}`);
    }
  }
  if (obs.kind === 'rejected') {
    // Said once per streak, unless this round already says it (a step-back or low alert) or rolls back.
    if (abort && !alerted.rejected && alerts.length === 0 && fired.length === 0) {
      alerts.push({
        check: name,
        level: 'warning',
        message: `${name}: ${obs.note}; it counts as a breach (${severity}) until the check's query is fixed`,
      });
    }
    alerted.rejected = true;
  }
  if (advisory && (obs.kind === 'evidence' || breachRound)) blocks = false;
  if (!breachRound && abort?.ask && next.askedAt !== undefined && !next.breachAccepted) {
    ask(
      'the breach still waits for a decision (this round has no evidence either way)',
      PRECEDENCE[severity ?? 'high'],
    );
  }

  // A medium step-back ends after an unbroken run of passing rounds.
  if (next.steppedBackAt !== undefined) {
    const stepBack = abort?.stepBack;
    if (!stepBack) {
      // The check is no longer medium (a changed plan): it holds traffic back no more.
      delete next.steppedBackAt;
      delete next.healthySince;
    } else if (obs.kind === 'evidence' && obs.outcome === 'pass') {
      next.healthySince ??= at;
      const healthy = at - next.healthySince;
      if (healthy + slack >= stepBack.recoverAfterMs) {
        delete next.steppedBackAt;
        delete next.healthySince;
        notes.push(`healthy for ${formatDuration(healthy)} since stepping back: goes forward again`);
        alerts.push({
          check: name,
          level: 'info',
          message: `${name}: healthy for ${formatDuration(healthy)}; traffic may go forward again`,
        });
      } else {
        blocks = true;
        notes.push(
          `stepped back; healthy for ${formatDuration(healthy)} of ${formatDuration(stepBack.recoverAfterMs)}`,
        );
      }
    } else {
      if (!breachRound) delete next.healthySince;
      blocks = true;
    }
  }

  const outcome: CheckOutcome =
    obs.kind === 'query_failed' ? 'query_failed' : obs.kind === 'rejected' ? 'fail' : obs.outcome;
  next.lastOutcome = outcome;
  if (Object.keys(alerted).length > 0) next.alerted = alerted;
  else delete next.alerted;

  const verdict: CheckVerdict = {
    name,
    value: reportedValue(m?.value, m?.series?.canary),
    outcome,
    note: notes.join('; '),
  };
  if (check.compare) verdict.baseline = reportedValue(m?.baseline, m?.series?.baseline);
  if (obs.kind === 'evidence') verdict.band = obs.band;
  if (severity) verdict.severity = severity;
  if (obs.kind === 'evidence' && obs.test) {
    const { u, z, pValue, effectSize, method } = obs.test;
    verdict.test = { u, z, pValue, effectSize, method };
  }
  return { verdict, next, fired, alerts, blocks, asksForBreach };
}

function copyState(prev: CheckState | undefined): CheckState {
  const next: CheckState = {
    consecutiveBreaches: prev?.consecutiveBreaches ?? 0,
    consecutiveNoData: prev?.consecutiveNoData ?? 0,
    consecutiveQueryFailures: prev?.consecutiveQueryFailures ?? 0,
  };
  if (prev?.breachSince !== undefined) next.breachSince = prev.breachSince;
  if (prev?.lastOutcome !== undefined) next.lastOutcome = prev.lastOutcome;
  if (prev?.steppedBackAt !== undefined) next.steppedBackAt = prev.steppedBackAt;
  if (prev?.healthySince !== undefined) next.healthySince = prev.healthySince;
  if (prev?.askedAt !== undefined) next.askedAt = prev.askedAt;
  if (prev?.breachAccepted) next.breachAccepted = true;
  return next;
}

/** Whether the breach has lasted long enough, and how far it is (`2 of 3 rounds`, `for 2m of 5m`). */
function persistence(
  rule: NonNullable<AnalysisCheck['abort']>['persist'],
  s: CheckState,
  at: number,
  slack: number,
): { persisted: boolean; progress: string } {
  if (rule.kind === 'consecutive') {
    return {
      persisted: s.consecutiveBreaches >= rule.rounds,
      progress:
        rule.rounds === 1
          ? 'this round'
          : `${Math.min(s.consecutiveBreaches, rule.rounds)} of ${rule.rounds} rounds`,
    };
  }
  const lasted = at - (s.breachSince ?? at);
  return {
    persisted: lasted + slack >= rule.ms,
    progress: `for ${formatDuration(lasted)} of ${formatDuration(rule.ms)}`,
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Reading a measurement

function observe(check: AnalysisCheck, m: RoundMeasurement | undefined, options: JudgeOptions): Observation {
  if (!m) return { kind: 'no_evidence', outcome: 'no_data', note: 'no measurement this round' };
  if (m.error) {
    if (m.error.kind === 'no_data') {
      return { kind: 'no_evidence', outcome: 'no_data', note: `no data (${m.error.message})` };
    }
    if (options.permanentQueryErrors && PERMANENT_QUERY_ERROR_KINDS.includes(m.error.kind)) {
      return { kind: 'rejected', note: `query rejected (${m.error.kind}: ${m.error.message})` };
    }
    return { kind: 'query_failed', note: `query failed (${m.error.kind}: ${m.error.message})` };
  }
  const window = formatDuration(check.windowMs);
  const requests = finite(m.requests);
  if (check.minRequests !== undefined && requests !== undefined && requests < check.minRequests) {
    return {
      kind: 'no_evidence',
      outcome: 'inconclusive',
      note: `${requests} requests in ${window}, fewer than minRequests ${check.minRequests}`,
    };
  }
  if (check.test) {
    const canary = (m.series?.canary ?? []).filter(Number.isFinite);
    const baseline = (m.series?.baseline ?? []).filter(Number.isFinite);
    if (canary.length === 0 || baseline.length === 0) {
      return {
        kind: 'no_evidence',
        outcome: 'no_data',
        note: canary.length === 0 ? 'no canary series' : 'no stable series',
      };
    }
    if (Math.min(canary.length, baseline.length) < check.test.minSamples) {
      return {
        kind: 'no_evidence',
        outcome: 'inconclusive',
        note: `${canary.length} canary and ${baseline.length} stable points, fewer than minSamples ${check.test.minSamples}`,
      };
    }
    if (check.minRequests !== undefined && requests === undefined) return unknownRequests(check);
    const c = compareSeries(canary, baseline, check.test);
    const band: BandName = c.outcome === 'pass' ? 'success' : c.outcome === 'marginal' ? 'between' : 'abort';
    return { kind: 'evidence', band, outcome: c.outcome, note: c.note, test: c.result };
  }

  const value = finite(m.value);
  if (value === undefined) return { kind: 'no_evidence', outcome: 'no_data', note: `no data for ${window}` };
  let baseline: number | undefined;
  // A day-over-day baseline is stable as it was `offset` earlier.
  const offset = check.compare?.offsetMs;
  const stableName = offset === undefined ? 'stable' : `stable ${formatDuration(offset)} earlier`;
  if (check.compare) {
    baseline = finite(m.baseline);
    if (baseline === undefined) {
      return {
        kind: 'no_evidence',
        outcome: 'no_data',
        note:
          offset === undefined
            ? `no stable data for ${window} to compare with`
            : `no data for ${window} of ${stableName} to compare with`,
      };
    }
  }
  if (check.minRequests !== undefined && requests === undefined) return unknownRequests(check);

  const ratio = baseline === undefined ? undefined : ratioOf(value, baseline);
  if (baseline !== undefined && ratio === undefined && usesRatio(check)) {
    return {
      kind: 'no_evidence',
      outcome: 'inconclusive',
      note: `ratio undefined: stable's value ${fmt(baseline)} is negative`,
    };
  }
  const sides = { value, ratio, difference: baseline === undefined ? undefined : value - baseline };
  const shown =
    baseline === undefined
      ? fmt(value)
      : `${fmt(value)} (${stableName} ${fmt(baseline)}, ratio ${ratio === undefined ? '-' : fmt(ratio)})`;
  const crossed = check.abort?.band ? crossings(check.abort.band, sides, 'abort') : [];
  if (crossed.length > 0) {
    return { kind: 'evidence', band: 'abort', outcome: 'breach', note: `${shown}: ${crossed.join(', ')}` };
  }
  const missed = check.success ? misses(check.success, sides) : [];
  if (missed.length > 0) {
    return {
      kind: 'evidence',
      band: 'between',
      outcome: 'hold',
      note: `${shown}: ${missed.join(', ')}, not past abort`,
    };
  }
  return { kind: 'evidence', band: 'success', outcome: 'pass', note: `${shown} ok` };
}

function unknownRequests(check: AnalysisCheck): Observation {
  return {
    kind: 'no_evidence',
    outcome: 'inconclusive',
    note: `request count unknown (minRequests ${check.minRequests})`,
  };
}

function usesRatio(check: AnalysisCheck): boolean {
  return check.success?.ratio !== undefined || check.abort?.band?.ratio !== undefined;
}

/** canary / stable; 1 when both are 0, +Infinity for a canary above a stable 0; undefined below a negative. */
function ratioOf(value: number, baseline: number): number | undefined {
  if (baseline > 0) return value / baseline;
  if (baseline < 0) return undefined;
  return value === 0 ? 1 : value > 0 ? Infinity : -Infinity;
}

type Sides = { value: number; ratio?: number; difference?: number };
const DIMENSIONS = ['value', 'ratio', 'difference'] as const;

/** The abort bounds crossed, e.g. `7.2 > abort max 5`, `ratio 2.1 > abort ratio max 2`. */
function crossings(band: Band, sides: Sides, label: string): string[] {
  const out: string[] = [];
  for (const dim of DIMENSIONS) {
    const bound: Bound | undefined = band[dim];
    const v = sides[dim];
    if (!bound || v === undefined) continue;
    const what = dim === 'value' ? '' : `${dim} `;
    const shown = dim === 'value' ? fmt(v) : `${dim} ${fmt(v)}`;
    if (bound.max !== undefined && v > bound.max) out.push(`${shown} > ${label} ${what}max ${bound.max}`);
    if (bound.min !== undefined && v < bound.min) out.push(`${shown} < ${label} ${what}min ${bound.min}`);
  }
  return out;
}

/** The success bounds not met (a success bound holds at equality). */
function misses(band: Band, sides: Sides): string[] {
  return crossings(band, sides, 'success');
}

function finite(v: number | null | undefined): number | undefined {
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

function reportedValue(v: number | null | undefined, series: number[] | undefined): number | null {
  const own = finite(v);
  if (own !== undefined) return own;
  const points = (series ?? []).filter(Number.isFinite).sort((a, b) => a - b);
  if (points.length === 0) return null;
  const mid = Math.floor(points.length / 2);
  return points.length % 2 === 1 ? points[mid] : (points[mid - 1] + points[mid]) / 2;
}

function fmt(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  return String(Math.round(v * 1000) / 1000);
}
