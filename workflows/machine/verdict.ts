// A round's verdict as a transition: the measurements a round fetched go in, the commands to carry out come out.
// Fetching stays with the port's step (analysis.ts), as Kayenta keeps fetching apart from judging; here it is judged
// (judge-v2 for the full form and for short-form checks converted at the edge, the original judge for rollouts
// started before machine-v2), the state is updated (the judge's memory, the analyses kept, the counts, the passing
// run, the stage passed, a question to a person, a step back), and the effects are returned as MachineCommands:
// drift, rollback, alert, shift and publish. No port, no Temporal: a unit test runs it on a hand-built state.
//
// A round is taken in two steps, as history records it: first roundDrift (a live weight that is not the one this
// rollout set is drift, and the drift event is taken, its publish and alert carried out, before the round is
// judged); then roundTransition, at the time read after that. The commands come in the order the walk performed
// these effects before they were data, and the walk carries them out in that order, awaiting each (a shift's
// result is recorded before the alert that follows it reads the weight): change the order only behind a patch
// (workflows/patches.ts).
import type {
  AnalysisResult,
  CheckMeasurement,
  ChecksMeasurement,
} from '../../activities/rollout-activities';
import type { AlertKind, AlertSeverity, CheckSeverity } from '../alerts/events';
import type { AnalysisCheck } from '../analysis-model';
import { judgeRound, roundOutcome, roundSlackFor } from '../judge-v2';
import { shortFormRound, toFullForm } from '../judge-short-form';
import type { Decision, RoundMeasurement } from '../judge-types';
import { legacyRound } from '../legacy-judge';
import type { CheckResult } from '../types';
import { MAX_ANALYSES_KEPT, analysisWindowSeconds, iso, pushBounded } from './context';
import type { RolloutState } from './state';
import type { AlertExtra, MachineCommand } from './transitions';
import type { RolloutView } from './views';

/** A round's measurements, as the port's step answered them. */
export type RoundEvent =
  /**
   * A round of the full analysis form (judge-v2), or of short-form checks converted to it at the edge (machine-v2):
   * measureChecks' answer, with the router's live weight when it could be read.
   */
  | { type: 'round'; answer: ChecksMeasurement }
  /** A round of the original path (rollouts started before machine-v2): runAnalysis' answer. */
  | { type: 'legacyRound'; answer: AnalysisResult | CheckMeasurement[] };

const PUBLISH: MachineCommand = { type: 'publish' };

/** An alert raised by the walk (a round's alerts are never a handler's). */
function alert(
  kind: AlertKind,
  severity: AlertSeverity,
  message: string,
  extra?: AlertExtra,
): MachineCommand {
  return { type: 'alert', kind, severity, message, fromHandler: false, ...(extra ? { extra } : {}) };
}

/**
 * The rules a round of the full form judges by: the checks that apply in the stage whose traffic the canary carries
 * (empty when none does). The fetch asks for the same ones.
 */
export function roundRules(v: RolloutView): AnalysisCheck[] {
  return v.stageChecks(v.liveStage()) ?? [];
}

/** Short-form checks as the full-form rules machine-v2 judges them by (toFullForm, with the plan's limits). */
export function shortFormRules(v: RolloutView): AnalysisCheck[] {
  const { plan } = v;
  return toFullForm(plan.analysis.checks, {
    windowMs: analysisWindowSeconds(plan) * 1000,
    failureLimit: plan.analysis.failureLimit,
    inconclusiveLimit: plan.analysis.inconclusiveLimit,
  });
}

/**
 * The first step of a round: drift, when the router's live weight is not the one this rollout set (nor achieved).
 * None while drift is already known or stable is taking the new version, nor when the weight could not be read (or,
 * on the original path, was not asked for). Changes nothing: taking the drift event (transitions.ts) does.
 */
export function roundDrift(v: RolloutView, round: RoundEvent): MachineCommand[] {
  const { s } = v;
  const live = Array.isArray(round.answer) ? undefined : round.answer.liveWeight;
  if (live === undefined || s.drift || s.finalizing) return [];
  const expected = s.achievedWeight ?? s.weight;
  return live !== expected ? [{ type: 'drift', expected, found: live }] : [];
}

/**
 * The second step of a round: judges it at `now` by the rollout's form (full, short-form converted, or original).
 * Its one effect is on `view.s` (updated in place); it returns the commands to carry out, in order. A rollback is
 * the only command when the round rolls back (the rollback alerts by itself); otherwise the last is a publish.
 */
export function roundTransition(v: RolloutView, round: RoundEvent, now: number): MachineCommand[] {
  if (round.type === 'legacyRound') return legacy(v, round.answer, now);
  if (v.ctx.flags.judgeV2) return fullForm(v, round.answer, now);
  return shortForm(v, round.answer, now);
}

/** Keeps the unbroken run of passing rounds of the entered stage (healthyFor). */
function passing(s: RolloutState, passed: boolean, at: number): void {
  if (!s.stageEntered) return;
  if (!passed) s.passingSince = undefined;
  else s.passingSince ??= at;
}

/** The record status keeps of a judge-v2 round. */
function roundChecks(decision: Decision, measured: Record<string, RoundMeasurement> = {}): CheckResult[] {
  return decision.perCheck.map((v): CheckResult => ({
    name: v.name,
    value: v.value,
    outcome:
      v.outcome === 'pass' || v.outcome === 'marginal'
        ? 'pass'
        : v.outcome === 'breach' || v.outcome === 'fail'
          ? 'fail'
          : 'no_data',
    judged: v.outcome,
    // A job check's Job: how it ended and the start of its logs.
    note: measured[v.name]?.detail ? `${v.note} — ${measured[v.name].detail}` : v.note,
    ...(v.baseline !== undefined ? { baseline: v.baseline } : {}),
    ...(v.band ? { band: v.band } : {}),
    ...(v.severity ? { severity: v.severity } : {}),
    ...(v.dryRun ? { dryRun: true as const } : {}),
  }));
}

/** The check an alert names, with its severity in the plan when it has an abort band. */
function checkOf(rules: readonly AnalysisCheck[], name: string): AlertExtra {
  const severity = rules.find((r) => r.name === name)?.abort?.severity as CheckSeverity | undefined;
  return { check: { name, ...(severity ? { severity } : {}) } };
}

/** A round of the full analysis form: judged by judge-v2, acted on by its decision's severity. */
function fullForm(v: RolloutView, answer: ChecksMeasurement, now: number): MachineCommand[] {
  const { s, plan, ctx } = v;
  const rules = roundRules(v);
  // From never-stuck on, a query the source rejects fails its check at once (an invalid query is no outage).
  const { state, decision } = judgeRound(rules, answer.measurements, now, s.judge, {
    permanentQueryErrors: s.neverStuck === true,
    ...(s.neverStuck ? { roundSlackMs: roundSlackFor(plan.analysis.intervalMs) } : {}),
  });
  s.judge = state;
  s.lastAnalysisAt = now;
  const { advances, verdict } = roundOutcome(decision);
  s.lastVerdict = verdict;
  s.analysesRun = (s.analysesRun ?? s.analyses.length) + 1;
  pushBounded(
    s.analyses,
    {
      stage: s.stageIndex + 1,
      weight: s.weight,
      at: iso(now),
      verdict,
      checks: roundChecks(decision, answer.measurements),
      action: decision.action,
      reasons: decision.reasons,
    },
    MAX_ANALYSES_KEPT,
  );
  // A rollback goes first: this round's alerts must not delay it (the rollback alerts by itself).
  if (decision.action === 'rollback') {
    return [{ type: 'rollback', reason: `analysis at ${s.weight}%: ${decision.reasons.join('; ')}` }];
  }
  if (advances && s.stageEntered) s.passedInStage = true;
  passing(s, advances, now);
  const commands = [...question(v, rules, decision, now), ...stepping(v, decision, now)];
  for (const a of decision.alerts) {
    // Evidence missing for longer than the check allows, and the stage holds: the rollout is stuck.
    const stuck = ctx.flags.alertsV2 && a.stuck === true;
    commands.push(
      alert(
        stuck ? 'stuck' : 'check_breached',
        stuck ? 'critical' : a.level,
        `${v.label()}: ${a.check}: ${a.message}`,
        checkOf(rules, a.check),
      ),
    );
  }
  commands.push(PUBLISH);
  return commands;
}

/**
 * A person is asked once when the judge awaits approval (evidence missing past its limit, or a breach whose plan
 * says `then: approval`); the question goes away by itself when the evidence comes back, or the breach ends.
 */
function question(
  v: RolloutView,
  rules: readonly AnalysisCheck[],
  decision: Decision,
  now: number,
): MachineCommand[] {
  const { s, ctx } = v;
  const advances = roundOutcome(decision).advances;
  if (decision.action === 'await-approval' && !s.evidenceQuestion && !s.finalizing) {
    const breaches = decision.breachApprovalFor;
    s.evidenceQuestion = {
      checks: decision.approvalFor ?? [],
      since: now,
      reasons: decision.reasons,
      ...(breaches ? { breaches } : {}),
    };
    const approve = `${ctx.cli} approve ${ctx.workflowId} --stage ${s.stageIndex + 1}`;
    const abort = `${ctx.cli} abort ${ctx.workflowId} --reason "why"`;
    const why = decision.reasons.join('; ');
    if (breaches) {
      // The hybrid decision (abort.then: approval): the breach asks a person before it rolls back.
      return [
        alert(
          'approval_needed',
          'critical',
          `${v.label()}: ${why}. Traffic holds at ${s.weight}%: accept it and go on with ${approve}, or roll back ` +
            `with ${abort}`,
          checkOf(rules, breaches[0]),
        ),
      ];
    }
    return [
      alert(
        'stuck',
        'critical',
        `${v.label()}: ${why}. Traffic holds at ${s.weight}%: go on without that evidence with ${approve}, or ` +
          `roll back with ${abort}`,
      ),
    ];
  }
  if (s.evidenceQuestion && advances) {
    // The evidence came back by itself: nobody needs to decide any more.
    s.evidenceQuestion = undefined;
  } else if (s.evidenceQuestion?.breaches && decision.action !== 'await-approval') {
    // The breach that asked has ended by itself (the judge asks no more): the question is moot.
    s.evidenceQuestion = undefined;
  }
  return [];
}

/**
 * A medium breach that persisted steps traffic back to the previous stage's weight; once the judge holds it back no
 * more (a healthy period), traffic goes forward again to the stage's weight. Each shift, then its alert.
 */
function stepping(v: RolloutView, decision: Decision, now: number): MachineCommand[] {
  const { s, plan } = v;
  if (decision.steppedBack && !s.steppedBack && !s.finalizing) {
    const before = s.stageIndex > 0 ? plan.stages[s.stageIndex - 1].weight : 0;
    const previous = before > 0 ? before : undefined;
    // In the first stage (or the first after a shadow stage) no earlier weight still carries canary traffic: the
    // judge's hold applies instead.
    if (previous === undefined || !s.stageEntered) return [];
    s.steppedBack = { stageWeight: s.weight, toWeight: previous, at: now };
    return [
      { type: 'shift', weight: previous, why: 'step back after a medium breach' },
      alert(
        'stepped_back',
        'warning',
        `${v.label()}: traffic stepped back from ${s.steppedBack.stageWeight}% to ${previous}%: ${decision.reasons.join('; ')}`,
      ),
    ];
  }
  if (!decision.steppedBack && s.steppedBack) {
    const back = s.steppedBack;
    s.steppedBack = undefined;
    return [
      { type: 'shift', weight: back.stageWeight, why: 'forward again after a healthy period' },
      alert('stepped_forward', 'info', `${v.label()}: healthy again; traffic back to ${back.stageWeight}%`),
    ];
  }
  return [];
}

/** Records a short-form or original-path round: its time, verdict and count, the bounded list, the passing run. */
function recordRound(
  s: RolloutState,
  round: { verdict: RolloutState['analyses'][number]['verdict']; checks: CheckResult[] },
  now: number,
): void {
  s.lastAnalysisAt = now;
  s.lastVerdict = round.verdict;
  s.analysesRun = (s.analysesRun ?? s.analyses.length) + 1;
  pushBounded(
    s.analyses,
    { stage: s.stageIndex + 1, weight: s.weight, at: iso(now), verdict: round.verdict, checks: round.checks },
    MAX_ANALYSES_KEPT,
  );
  passing(s, round.verdict === 'pass', now);
}

/**
 * A round of short-form checks from machine-v2 on: converted to the full form at the edge (toFullForm), judged by
 * judge-v2, then recorded and reported as the original path did (shortFormRound; test/unit/judge-short-form.test.ts
 * proves the decisions and messages the same).
 */
function shortForm(v: RolloutView, answer: ChecksMeasurement, now: number): MachineCommand[] {
  const { s, plan } = v;
  const rules = shortFormRules(v);
  const judged = judgeRound(rules, answer.measurements, now, s.judge, {
    permanentQueryErrors: true,
    roundSlackMs: roundSlackFor(plan.analysis.intervalMs),
  });
  s.judge = judged.state;
  const round = shortFormRound(rules, answer.measurements, judged, s.weight);
  recordRound(s, round, now);
  // The original path's counts, kept for status and for a run carried into an older reading of the state.
  if (round.verdict === 'pass') {
    s.consecutiveFailures = 0;
    s.consecutiveInconclusive = 0;
    if (s.stageEntered) s.passedInStage = true;
  } else if (round.verdict === 'fail') {
    s.consecutiveFailures++;
    s.consecutiveInconclusive = 0;
  } else {
    s.consecutiveInconclusive++;
  }
  if (round.rollback) return [{ type: 'rollback', reason: round.rollback }];
  return [PUBLISH];
}

/** A round of the original path (legacy-judge.ts), for rollouts started before machine-v2. */
function legacy(v: RolloutView, answer: AnalysisResult | CheckMeasurement[], now: number): MachineCommand[] {
  const { s, plan } = v;
  // Rollouts recorded before drift checks got the measurements alone.
  const measurements = Array.isArray(answer) ? answer : answer.measurements;
  const round = legacyRound(plan.analysis.checks, measurements, s, plan.analysis, s.weight);
  recordRound(s, round, now);
  s.consecutiveFailures = round.counts.consecutiveFailures;
  s.consecutiveInconclusive = round.counts.consecutiveInconclusive;
  if (round.verdict === 'pass' && s.stageEntered) s.passedInStage = true;
  if (round.rollback) return [{ type: 'rollback', reason: round.rollback }];
  return [PUBLISH];
}
