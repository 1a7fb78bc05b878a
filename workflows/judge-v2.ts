// The judge of issue 6: turns one round of measurements into a decision, check by check, by the rules of
// analysis-spec.ts (two bands, severities, persistence, missing data and failed queries kept apart). Pure and
// deterministic: time comes in as an argument, and the state it carries between rounds is plain JSON (it
// crosses continue-as-new). The workflow judges full-form plans by it from JUDGE_PATCH on.
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
//
// Where it lives: judge-types.ts (what a round reads, carries and decides), judge-observe.ts (reading a
// measurement into a band), judge-rules.ts (one check's round as small rules), judge-policy.ts (the severity
// policy, and how actions rank); this file judges the round and keeps the API the workflow and backtest use.
import type { AnalysisCheck } from './analysis-model';
import { STRENGTH, type Fired } from './judge-policy';
import { groupsOf, judgeGroup } from './judge-group';
import { judgeCheck, type CheckStep } from './judge-rules';
import { decidingChecks, dryRunRound } from './judge-dry-run';
import type {
  CheckState,
  CheckVerdict,
  Decision,
  JudgeAction,
  JudgeAlert,
  JudgeOptions,
  JudgeState,
  RoundMeasurement,
} from './judge-types';
import type { Verdict } from './types';

export * from './judge-types';

/**
 * What a round means for the stage walk: whether it lets the stage advance (a low-severity alert does), and the
 * verdict status shows for it (fail when a check breached or failed, inconclusive when it only lacked evidence).
 */
export function roundOutcome(decision: Decision): { advances: boolean; verdict: Verdict } {
  const advances = decision.action === 'advance-ok' || decision.action === 'alert';
  const verdict: Verdict = advances
    ? 'pass'
    : decision.perCheck.some((c) => !c.dryRun && (c.outcome === 'breach' || c.outcome === 'fail'))
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
  const out: JudgeState = { version: 1, checks: acknowledged(state.checks, names) };
  if (state.groups) out.groups = acknowledged(state.groups, names);
  return out;
}

function acknowledged(
  states: Record<string, CheckState>,
  names: readonly string[] | undefined,
): Record<string, CheckState> {
  const checks: Record<string, CheckState> = {};
  for (const [name, s] of Object.entries(states)) {
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
  return checks;
}

// ---------------------------------------------------------------------------------------------------------------
// The round

/** What the checks' rounds add up to, before the decision is taken. */
interface Tally {
  fired: Fired[];
  alerts: JudgeAlert[];
  /** `check: note` of the checks that stand in the way without firing a hold of their own. */
  holds: string[];
  perCheck: CheckVerdict[];
  approvalFor: string[];
  breachApprovalFor: string[];
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
  const groups = groupsOf(checks);
  // Dry-run checks are judged, but never decide: traffic is never stepped back for one.
  const deciding = decidingChecks(checks);
  const wasSteppedBack =
    deciding.some((c) => state.checks[c.name]?.steppedBackAt !== undefined) ||
    [...groups.keys()].some((g) => state.groups?.[g]?.steppedBackAt !== undefined);
  const tally: Tally = {
    fired: [],
    alerts: [],
    holds: [],
    perCheck: [],
    approvalFor: [],
    breachApprovalFor: [],
  };
  const nextChecks: Record<string, CheckState> = {};
  const nextGroups: Record<string, CheckState> = {};
  for (const check of checks) {
    const group = check.roundGroup;
    if (check.dryRun && group === undefined) {
      const step = judgeCheck(check, measurements[check.name], at, state.checks[check.name], options);
      const dry = dryRunRound(check.name, step);
      nextChecks[check.name] = dry.next;
      tally.perCheck.push(dry.verdict);
      tally.alerts.push(...dry.alerts);
    } else if (group === undefined) {
      const step = judgeCheck(check, measurements[check.name], at, state.checks[check.name], options);
      nextChecks[check.name] = step.next;
      add(tally, check.name, step, [step.verdict], step.verdict.note, wasSteppedBack);
    } else if (!Object.hasOwn(nextGroups, group)) {
      // A group is judged where its first member stands.
      const step = judgeGroup(
        group,
        groups.get(group) ?? [],
        measurements,
        at,
        state.groups?.[group],
        options,
      );
      nextGroups[group] = step.next;
      add(tally, group, step, step.verdicts, step.note, wasSteppedBack);
    }
  }
  const states = [...deciding.map((c) => nextChecks[c.name]).filter(Boolean), ...Object.values(nextGroups)];
  const decision = decide(tally, deciding.length, states);
  if (deciding.length === 0 && checks.length > 0 && decision.reasons.length === 1) {
    decision.reasons = ['only dry-run checks: nothing to decide'];
  }
  const next: JudgeState = { version: 1, checks: nextChecks };
  if (groups.size > 0) next.groups = nextGroups;
  return { state: next, decision };
}

/** Adds one check's (or group's) step to the round's tally. */
function add(
  tally: Tally,
  name: string,
  step: Omit<CheckStep, 'verdict'>,
  verdicts: CheckVerdict[],
  note: string,
  wasSteppedBack: boolean,
): void {
  tally.perCheck.push(...verdicts);
  tally.alerts.push(...step.alerts);
  for (const f of step.fired) {
    if (f.action === 'step-back' && wasSteppedBack) {
      // Traffic is already back at the previous weight for another check: stay there.
      tally.fired.push({ ...f, action: 'hold', reason: `${f.reason} (traffic is already stepped back)` });
    } else tally.fired.push(f);
    if (f.action === 'await-approval') tally.approvalFor.push(name);
  }
  if (step.asksForBreach) tally.breachApprovalFor.push(name);
  if (step.blocks && !step.fired.some((f) => STRENGTH[f.action] >= STRENGTH.hold)) {
    tally.holds.push(`${name}: ${note}`);
  }
}

/**
 * The strongest action fired (a check that stands in the way makes it at least a hold), its reasons by strength
 * and precedence: those at least a hold, then the holds, then the weaker ones.
 */
function decide(tally: Tally, checkCount: number, states: CheckState[]): Decision {
  const { fired, holds } = tally;
  fired.sort((a, b) => STRENGTH[b.action] - STRENGTH[a.action] || a.precedence - b.precedence);
  let action: JudgeAction = fired.length > 0 ? fired[0].action : 'advance-ok';
  if (holds.length > 0 && STRENGTH[action] < STRENGTH.hold) action = 'hold';
  const reasons = [
    ...fired.filter((f) => STRENGTH[f.action] >= STRENGTH.hold).map((f) => f.reason),
    ...holds,
    ...fired.filter((f) => STRENGTH[f.action] < STRENGTH.hold).map((f) => f.reason),
  ];
  if (reasons.length === 0) {
    reasons.push(checkCount === 0 ? 'no checks: nothing to judge' : `every check passed (${checkCount})`);
  }
  const decision: Decision = {
    action,
    reasons,
    alerts: tally.alerts,
    steppedBack: states.some((s) => s.steppedBackAt !== undefined),
    perCheck: tally.perCheck,
  };
  if (tally.approvalFor.length > 0) decision.approvalFor = tally.approvalFor;
  if (tally.breachApprovalFor.length > 0) decision.breachApprovalFor = tally.breachApprovalFor;
  return decision;
}
