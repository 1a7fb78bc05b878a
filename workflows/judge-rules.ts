// One check's round (judge-v2.ts), as small rules run in order over one mutable record of the round:
//   observe → count evidence (a failed query, a rejected query, missing evidence, a value in a band) → count the
//   breach streak → act on the breach by the severity policy (judge-policy.ts) → say a rejected query once →
//   let an advisory check pass → keep asking a question that stands → recover from a step-back → the verdict.
// Each rule may add notes (shown after the observation), alerts and fired actions; their order is the output's.
import { formatDuration } from './duration';
import type { AnalysisCheck, LimitAction, Severity } from './analysis-model';
import { observe, reportedValue, type Observation } from './judge-observe';
import { PRECEDENCE, SEVERITY_POLICY, type BreachResponse, type Fired } from './judge-policy';
import type {
  CheckOutcome,
  CheckState,
  CheckVerdict,
  JudgeAction,
  JudgeAlert,
  JudgeOptions,
  RoundMeasurement,
} from './judge-types';

/** What one check's round adds to the decision. */
export interface CheckStep {
  verdict: CheckVerdict;
  next: CheckState;
  fired: Fired[];
  alerts: JudgeAlert[];
  /** This check stands in the way of advancing. */
  blocks: boolean;
  /** It asks a person about its breach (then: approval). */
  asksForBreach: boolean;
}

/** A check's round in the making: what the rules read, and what they write. */
export interface CheckRound {
  readonly check: AnalysisCheck;
  readonly at: number;
  /** How early a round may come and still count a duration as served (JudgeOptions.roundSlackMs). */
  readonly slack: number;
  readonly obs: Observation;
  readonly next: CheckState;
  readonly alerted: NonNullable<CheckState['alerted']>;
  readonly fired: Fired[];
  readonly alerts: JudgeAlert[];
  readonly notes: string[];
  blocks: boolean;
  /** The round counts towards the breach streak. */
  breachRound: boolean;
  /** The round brought evidence: a value in a band, or a test's result. */
  evidence: boolean;
  asksForBreach: boolean;
}

export function judgeCheck(
  check: AnalysisCheck,
  m: RoundMeasurement | undefined,
  at: number,
  prev: CheckState | undefined,
  options: JudgeOptions,
): CheckStep {
  const r = judgeObservation(check, observe(check, m, options), at, prev, options);
  return { ...stepOf(r), verdict: verdictOf(r, m) };
}

/** Runs every rule over an observation; the verdict is the caller's to build (verdictOf). */
export function judgeObservation(
  check: AnalysisCheck,
  obs: Observation,
  at: number,
  prev: CheckState | undefined,
  options: JudgeOptions,
): CheckRound {
  const r: CheckRound = {
    check,
    at,
    slack: options.roundSlackMs ?? 0,
    obs,
    next: copyState(prev),
    alerted: { ...(prev?.alerted ?? {}) },
    fired: [],
    alerts: [],
    notes: [obs.note],
    blocks: true,
    breachRound: false,
    evidence: false,
    asksForBreach: false,
  };
  countEvidence(r);
  countBreach(r);
  actOnBreach(r);
  sayRejectedOnce(r);
  if (isAdvisory(check) && (obs.kind === 'evidence' || r.breachRound)) r.blocks = false;
  keepAsking(r);
  recoverFromStepBack(r);
  return r;
}

/** Everything but the verdict; the state's outcome and alert flags are settled here. */
export function stepOf(r: CheckRound): Omit<CheckStep, 'verdict'> {
  r.next.lastOutcome = outcomeOf(r.obs);
  if (Object.keys(r.alerted).length > 0) r.next.alerted = r.alerted;
  else delete r.next.alerted;
  const { next, fired, alerts, blocks, asksForBreach } = r;
  return { next, fired, alerts, blocks, asksForBreach };
}

// ---------------------------------------------------------------------------------------------------------------
// Evidence

function countEvidence(r: CheckRound): void {
  if (r.obs.kind === 'query_failed') return queryFailed(r);
  // The provider answered: whatever its answer, it is not down.
  r.next.consecutiveQueryFailures = 0;
  delete r.alerted.queryFailure;
  delete r.alerted.queryLimit;
  if (r.obs.kind === 'rejected') return queryRejected(r);
  delete r.alerted.rejected;
  if (r.obs.kind === 'no_evidence') return missingEvidence(r);
  r.evidence = true;
  r.next.consecutiveNoData = 0;
  delete r.alerted.noDataLimit;
  r.breachRound = r.obs.band === 'abort';
  r.blocks = r.obs.outcome !== 'pass';
}

/** Not evidence either way: alert once, no advance, and onQueryError.then at its limit. */
function queryFailed(r: CheckRound): void {
  const { next, alerted, check } = r;
  next.consecutiveQueryFailures++;
  delete next.healthySince;
  if (!alerted.queryFailure) {
    alerted.queryFailure = true;
    alert(r, 'warning', `${r.obs.note}; no advance until it answers (retrying every round)`);
  }
  const limit = check.onQueryError.limit;
  r.notes.push(`failed ${next.consecutiveQueryFailures} of ${limit} rounds in a row`);
  if (next.consecutiveQueryFailures >= limit) {
    const what = `query failed ${next.consecutiveQueryFailures} rounds in a row`;
    limitReached(r, check.onQueryError.then, what, 'queryLimit');
  }
}

/**
 * No retry can fix the query: the check fails. With an abort band that is a breach round, for the severity to act
 * on; without one the stage cannot advance on this check until someone fixes the plan.
 */
function queryRejected(r: CheckRound): void {
  delete r.next.healthySince;
  if (r.check.abort) {
    r.breachRound = true;
    return;
  }
  r.notes.push('the stage holds until the query is fixed');
  if (!r.alerted.rejected) {
    alert(r, 'warning', `${r.obs.note}; the stage holds until the check's query is fixed`, true);
  }
}

/** onNoData: ignore lets the stage advance, fail counts a breach, hold counts rounds and acts at its limit. */
function missingEvidence(r: CheckRound): void {
  const rule = r.check.onNoData;
  if (rule.action === 'ignore') {
    r.blocks = false;
    r.notes.push('ignored (onNoData: ignore)');
  } else if (rule.action === 'fail') {
    r.breachRound = true;
    r.notes.push('counted as a breach (onNoData: fail)');
  } else {
    const n = ++r.next.consecutiveNoData;
    delete r.next.healthySince;
    r.notes.push(`${n} of ${rule.limit} rounds without evidence`);
    if (n >= rule.limit) limitReached(r, rule.then, `no evidence for ${n} rounds in a row`, 'noDataLimit');
  }
}

/** Missing evidence or failing queries at their limit: roll back, ask, or hold (and say once that it is stuck). */
function limitReached(
  r: CheckRound,
  then: LimitAction,
  what: string,
  flag: 'noDataLimit' | 'queryLimit',
): void {
  if (then === 'rollback') fire(r, 'rollback', PRECEDENCE.evidence, `${what}: roll back`);
  else if (then === 'approval') fire(r, 'await-approval', PRECEDENCE.evidence, `${what}: a person decides`);
  else {
    fire(r, 'hold', PRECEDENCE.evidence, `${what}: holding until evidence arrives`);
    if (!r.alerted[flag]) {
      r.alerted[flag] = true;
      alert(r, 'warning', `${what}; the stage holds`, true);
    }
  }
}

/**
 * A breach streak survives rounds without evidence (they show neither health nor harm) and ends at the first round
 * with evidence outside abort, with what it alerted and asked.
 */
function countBreach(r: CheckRound): void {
  const { next } = r;
  if (r.breachRound) {
    next.consecutiveBreaches++;
    next.breachSince ??= r.at;
  } else if (r.evidence) {
    next.consecutiveBreaches = 0;
    delete next.breachSince;
    delete r.alerted.breach;
    delete next.askedAt;
    delete next.breachAccepted;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Severity

interface Breach {
  severity: Severity;
  note: string;
  progress: string;
  precedence: number;
  rollbackAfterMs: number;
}

/** A breach round acts by the severity policy. */
function actOnBreach(r: CheckRound): void {
  const abort = r.check.abort;
  if (!r.breachRound || !abort) return;
  const { persisted, progress } = persistence(abort.persist, r.next, r.at, r.slack);
  const severity = abort.severity;
  if (severity === 'medium') delete r.next.healthySince;
  const rollbackAfterMs = abort.stepBack?.rollbackAfterMs ?? 0;
  const { steppedBackAt } = r.next;
  const response = SEVERITY_POLICY[severity]({
    persisted,
    asks: abort.ask !== undefined,
    ...(steppedBackAt !== undefined ? { steppedBackFor: r.at - steppedBackAt + r.slack } : {}),
    rollbackAfterMs,
    alerted: r.alerted.breach === true,
  });
  const breach = { severity, note: r.obs.note, progress, precedence: PRECEDENCE[severity], rollbackAfterMs };
  RESPONSES[response](r, breach);
}

/** What each response of the policy says and does. */
const RESPONSES: Record<BreachResponse, (r: CheckRound, b: Breach) => void> = {
  wait: (r, b) => void r.notes.push(`breaching ${b.progress}`),
  'roll back': (r, b) =>
    fire(
      r,
      'rollback',
      b.precedence,
      b.severity === 'critical'
        ? `${b.note} (critical): roll back at once`
        : `${b.note}, ${b.progress} (${b.severity}): roll back`,
    ),
  ask: (r, b) =>
    ask(r, b.severity === 'critical' ? `${b.note} (critical)` : `${b.note}, ${b.progress} (${b.severity})`),
  'step back': (r, b) => {
    r.next.steppedBackAt = r.at;
    fire(r, 'step-back', b.precedence, `${b.note}, ${b.progress} (medium): step back to the previous weight`);
    alert(
      r,
      'warning',
      `${b.note}; traffic steps back to the previous stage's weight, rolls back if this ` +
        `lasts ${formatDuration(b.rollbackAfterMs)}`,
    );
  },
  'roll back after step-back': (r, b) => {
    const lasted = formatDuration(r.at - (r.next.steppedBackAt ?? r.at));
    fire(
      r,
      'rollback',
      b.precedence,
      `${b.note}, still breaching ${lasted} after stepping back (medium): roll back`,
    );
  },
  'wait stepped back': (r, b) =>
    void r.notes.push(
      `stepped back ${formatDuration(r.at - (r.next.steppedBackAt ?? r.at))} ago; rolls back at ` +
        `${formatDuration(b.rollbackAfterMs)} if this persists`,
    ),
  alert: (r, b) => {
    r.alerted.breach = true;
    fire(r, 'alert', b.precedence, `${b.note} (low): alert${isAdvisory(r.check) ? ' and keep going' : ''}`);
    alert(r, 'warning', b.note);
  },
  nothing: () => undefined,
};

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

/** A low check without a success band never holds a stage. */
function isAdvisory(check: AnalysisCheck): boolean {
  return check.abort?.severity === 'low' && check.success === undefined;
}

// ---------------------------------------------------------------------------------------------------------------
// Questions, rejected queries, step-backs

/**
 * then: approval. A breach that would roll back asks a person; the question stands through rounds without
 * evidence, until it is answered, the breach ends, or decideWithin passes.
 */
function ask(r: CheckRound, why: string): void {
  const { next, at } = r;
  const precedence = PRECEDENCE[r.check.abort?.severity ?? 'high'];
  const within = r.check.abort?.ask?.decideWithinMs ?? 0;
  if (next.breachAccepted) {
    r.notes.push('accepted by a person: does not hold the stage while this breach lasts');
    r.blocks = false;
    return;
  }
  next.askedAt ??= at;
  const waited = at - next.askedAt;
  if (waited + r.slack >= within) {
    fire(r, 'rollback', precedence, `${why}; nobody decided within ${formatDuration(within)}: roll back`);
    return;
  }
  r.asksForBreach = true;
  fire(
    r,
    'await-approval',
    precedence,
    `${why}: a person decides (approve goes on, abort rolls back; without an answer it rolls back in ` +
      `${formatDuration(within - waited)})`,
  );
}

/** A question asked about a breach stands through rounds without evidence. */
function keepAsking(r: CheckRound): void {
  if (!r.breachRound && r.check.abort?.ask && r.next.askedAt !== undefined && !r.next.breachAccepted) {
    ask(r, 'the breach still waits for a decision (this round has no evidence either way)');
  }
}

/** Said once per streak, unless this round already says it (a step-back or low alert) or rolls back. */
function sayRejectedOnce(r: CheckRound): void {
  if (r.obs.kind !== 'rejected') return;
  const severity = r.check.abort?.severity;
  if (r.check.abort && !r.alerted.rejected && r.alerts.length === 0 && r.fired.length === 0) {
    alert(
      r,
      'warning',
      `${r.obs.note}; it counts as a breach (${severity}) until the check's query is fixed`,
    );
  }
  r.alerted.rejected = true;
}

/** A medium step-back ends after an unbroken run of passing rounds. */
function recoverFromStepBack(r: CheckRound): void {
  const { next, at } = r;
  if (next.steppedBackAt === undefined) return;
  const stepBack = r.check.abort?.stepBack;
  if (!stepBack) {
    // The check is no longer medium (a changed plan): it holds traffic back no more.
    delete next.steppedBackAt;
    delete next.healthySince;
  } else if (r.obs.kind === 'evidence' && r.obs.outcome === 'pass') {
    next.healthySince ??= at;
    const healthy = at - next.healthySince;
    if (healthy + r.slack >= stepBack.recoverAfterMs) {
      delete next.steppedBackAt;
      delete next.healthySince;
      r.notes.push(`healthy for ${formatDuration(healthy)} since stepping back: goes forward again`);
      alert(r, 'info', `healthy for ${formatDuration(healthy)}; traffic may go forward again`);
    } else {
      r.blocks = true;
      r.notes.push(
        `stepped back; healthy for ${formatDuration(healthy)} of ${formatDuration(stepBack.recoverAfterMs)}`,
      );
    }
  } else {
    if (!r.breachRound) delete next.healthySince;
    r.blocks = true;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Output

function fire(r: CheckRound, action: JudgeAction, precedence: number, reason: string): void {
  const check = r.check.name;
  r.fired.push({ action, precedence, reason: `${check}: ${reason}`, check });
}

function alert(r: CheckRound, level: JudgeAlert['level'], message: string, stuck = false): void {
  const check = r.check.name;
  r.alerts.push({ check, level, message: `${check}: ${message}`, ...(stuck ? { stuck } : {}) });
}

export function outcomeOf(obs: Observation): CheckOutcome {
  return obs.kind === 'query_failed' ? 'query_failed' : obs.kind === 'rejected' ? 'fail' : obs.outcome;
}

/** What the round shows of the check: its value, band, severity and notes. */
export function verdictOf(r: CheckRound, m: RoundMeasurement | undefined): CheckVerdict {
  return verdictFor(r.check, r.obs, r.notes, m);
}

/** The verdict of a check observed as `obs`, its notes joined. */
export function verdictFor(
  check: AnalysisCheck,
  obs: Observation,
  notes: readonly string[],
  m: RoundMeasurement | undefined,
): CheckVerdict {
  const verdict: CheckVerdict = {
    name: check.name,
    value: reportedValue(m?.value, m?.series?.canary),
    outcome: outcomeOf(obs),
    note: notes.join('; '),
  };
  if (check.compare) verdict.baseline = reportedValue(m?.baseline, m?.series?.baseline);
  if (obs.kind === 'evidence') verdict.band = obs.band;
  if (check.abort?.severity) verdict.severity = check.abort.severity;
  if (obs.kind === 'evidence' && obs.test) {
    const { u, z, pValue, effectSize, method } = obs.test;
    verdict.test = { u, z, pValue, effectSize, method };
  }
  return verdict;
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
