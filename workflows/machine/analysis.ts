// A round of analysis: the port fetches the measurements, the judge decides, and the machine acts on the decision
// (roll back, ask a person, step back or forward, alert). Fetching is kept apart from judging, as Kayenta does.
import type { AnalysisResult, CheckMeasurement } from '../../activities/rollout-activities';
import type { CheckSeverity } from '../alerts/events';
import { describeResults, judge } from '../judge';
import { judgeRound, roundOutcome, roundSlackFor } from '../judge-v2';
import { shortFormRound, toFullForm } from '../judge-short-form';
import type { CheckResult } from '../types';
import type { RoundMeasurement } from '../judge-types';
import { MAX_ANALYSES_KEPT, analysisWindowSeconds, iso, pushBounded } from './context';
import { RollbackRequired } from './errors';
import type { RolloutMachine } from './machine';

/** Keeps the unbroken run of passing rounds of the entered stage (healthyFor). */
function passing(m: RolloutMachine, passed: boolean, at: number): void {
  const s = m.s;
  if (!s.stageEntered) return;
  if (!passed) s.passingSince = undefined;
  else s.passingSince ??= at;
}

/** The record status keeps of a judge-v2 round. */
function roundChecks(
  decision: ReturnType<typeof judgeRound>['decision'],
  measured: Record<string, RoundMeasurement> = {},
): CheckResult[] {
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

/** One round of the full analysis form: measure, judge, act by the decision's severity. */
async function analyseV2(m: RolloutMachine): Promise<void> {
  const { s, plan, ctx } = m;
  const rules = m.stageChecks(m.liveStage()) ?? [];
  // Job checks (new plans only) run a Job per round: the round names it, and the step waits as long as it may run.
  const jobs = rules.flatMap((c) => (c.job ? [c.job.timeoutMs] : []));
  const round = (s.analysesRun ?? s.analyses.length) + 1;
  const answer = await m.port.run({
    policy: 'analysis',
    step: 'measureChecks',
    summary: `analyse canary at ${s.weight}% (${rules.map((c) => c.name).join(', ')})`,
    ...(jobs.length > 0 ? { hook: { timeoutMs: Math.max(...jobs), attempts: 2, heartbeat: true } } : {}),
    args: [
      {
        target: ctx.target,
        checks: rules,
        versions: { canary: ctx.version, ...(s.stableVersion ? { stable: s.stableVersion } : {}) },
        checkWeight: true,
        ...(jobs.length > 0
          ? {
              round: {
                rolloutId: ctx.workflowId,
                roundKey: `${ctx.workflowId}/${ctx.firstRunId}/${s.stageIndex + 1}/${round}`,
              },
            }
          : {}),
      },
    ],
  });
  if (answer.liveWeight !== undefined && !s.drift && !s.finalizing) {
    const expected = s.achievedWeight ?? s.weight;
    if (answer.liveWeight !== expected) await m.driftDetected(expected, answer.liveWeight);
  }
  const now = m.now();
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
    throw new RollbackRequired(`analysis at ${s.weight}%: ${decision.reasons.join('; ')}`);
  }
  if (advances && s.stageEntered) s.passedInStage = true;
  passing(m, advances, now);
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
    if (breaches) {
      // The hybrid decision (abort.then: approval): the breach asks a person before it rolls back.
      const rule = rules.find((r) => r.name === breaches[0]);
      const severity = rule?.abort?.severity as CheckSeverity | undefined;
      await m.alert(
        'approval_needed',
        'critical',
        `${m.label()}: ${decision.reasons.join('; ')}. Traffic holds at ${s.weight}%: accept it and go on with ` +
          `${approve}, or roll back with ${abort}`,
        false,
        { check: { name: breaches[0], ...(severity ? { severity } : {}) } },
      );
    } else {
      await m.alert(
        'stuck',
        'critical',
        `${m.label()}: ${decision.reasons.join('; ')}. Traffic holds at ${s.weight}%: go on without that evidence with ` +
          `${approve}, or roll back with ${abort}`,
      );
    }
  } else if (s.evidenceQuestion && advances) {
    // The evidence came back by itself: nobody needs to decide any more.
    s.evidenceQuestion = undefined;
  } else if (s.evidenceQuestion?.breaches && decision.action !== 'await-approval') {
    // The breach that asked has ended by itself (the judge asks no more): the question is moot.
    s.evidenceQuestion = undefined;
  }
  if (decision.steppedBack && !s.steppedBack && !s.finalizing) {
    const before = s.stageIndex > 0 ? plan.stages[s.stageIndex - 1].weight : 0;
    const previous = before > 0 ? before : undefined;
    // In the first stage (or the first after a shadow stage) no earlier weight still carries canary traffic: the
    // judge's hold applies instead.
    if (previous !== undefined && s.stageEntered) {
      s.steppedBack = { stageWeight: s.weight, toWeight: previous, at: now };
      await m.shift(previous, 'step back after a medium breach');
      await m.alert(
        'stepped_back',
        'warning',
        `${m.label()}: traffic stepped back from ${s.steppedBack.stageWeight}% to ${previous}%: ${decision.reasons.join('; ')}`,
      );
    }
  } else if (!decision.steppedBack && s.steppedBack) {
    const back = s.steppedBack;
    s.steppedBack = undefined;
    await m.shift(back.stageWeight, 'forward again after a healthy period');
    await m.alert(
      'stepped_forward',
      'info',
      `${m.label()}: healthy again; traffic back to ${back.stageWeight}%`,
    );
  }
  for (const a of decision.alerts) {
    const rule = rules.find((r) => r.name === a.check);
    const severity = rule?.abort?.severity as CheckSeverity | undefined;
    // Evidence missing for longer than the check allows, and the stage holds: the rollout is stuck.
    const stuck = ctx.flags.alertsV2 && a.stuck === true;
    await m.alert(
      stuck ? 'stuck' : 'check_breached',
      stuck ? 'critical' : a.level,
      `${m.label()}: ${a.check}: ${a.message}`,
      false,
      {
        check: { name: a.check, ...(severity ? { severity } : {}) },
      },
    );
  }
  m.publish();
}

/**
 * One round of short-form checks from machine-v2 on: converted to the full form at the edge (toFullForm), measured
 * like full-form checks and judged by judge-v2, then recorded and reported as the original path did (shortFormRound;
 * test/unit/judge-short-form.test.ts proves the decisions and messages the same).
 */
async function analyseShortForm(m: RolloutMachine): Promise<void> {
  const { s, plan, ctx } = m;
  const rules = toFullForm(plan.analysis.checks, {
    windowMs: analysisWindowSeconds(plan) * 1000,
    failureLimit: plan.analysis.failureLimit,
    inconclusiveLimit: plan.analysis.inconclusiveLimit,
  });
  const answer = await m.port.run({
    policy: 'analysis',
    step: 'measureChecks',
    summary: `analyse canary at ${s.weight}% (${plan.analysis.checks.map((c) => c.name).join(', ')})`,
    args: [
      {
        target: ctx.target,
        checks: rules,
        versions: { canary: ctx.version, ...(s.stableVersion ? { stable: s.stableVersion } : {}) },
        ...(ctx.flags.routingLifecycle ? { checkWeight: true } : {}),
      },
    ],
  });
  if (answer.liveWeight !== undefined && !s.drift && !s.finalizing) {
    const expected = s.achievedWeight ?? s.weight;
    if (answer.liveWeight !== expected) await m.driftDetected(expected, answer.liveWeight);
  }
  const now = m.now();
  const judged = judgeRound(rules, answer.measurements, now, s.judge, {
    permanentQueryErrors: true,
    roundSlackMs: roundSlackFor(plan.analysis.intervalMs),
  });
  s.judge = judged.state;
  const round = shortFormRound(rules, answer.measurements, judged, s.weight);
  s.lastAnalysisAt = now;
  s.lastVerdict = round.verdict;
  s.analysesRun = (s.analysesRun ?? s.analyses.length) + 1;
  pushBounded(
    s.analyses,
    { stage: s.stageIndex + 1, weight: s.weight, at: iso(now), verdict: round.verdict, checks: round.checks },
    MAX_ANALYSES_KEPT,
  );
  passing(m, round.verdict === 'pass', now);
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
  if (round.rollback) throw new RollbackRequired(round.rollback);
  m.publish();
}

/**
 * One round: the full analysis form through judge-v2; the short form converted to it at the edge (machine-v2), or
 * through the original judge (legacy-judge.ts) for rollouts started before machine-v2.
 */
export async function analyse(m: RolloutMachine): Promise<void> {
  const { s, plan, ctx } = m;
  if (ctx.flags.judgeV2) return analyseV2(m);
  if (s.machineV2) return analyseShortForm(m);
  const answer: AnalysisResult | CheckMeasurement[] = await m.port.run({
    policy: 'analysis',
    step: 'runAnalysis',
    summary: `analyse canary at ${s.weight}% (${plan.analysis.checks.map((c) => c.name).join(', ')})`,
    args: [
      {
        target: ctx.target,
        checks: plan.analysis.checks,
        windowSeconds: analysisWindowSeconds(plan),
        ...(ctx.flags.routingLifecycle ? { checkWeight: true } : {}),
        versions: { canary: ctx.version, ...(s.stableVersion ? { stable: s.stableVersion } : {}) },
      },
    ],
  });
  // Rollouts recorded before drift checks got the measurements alone.
  const measurements = Array.isArray(answer) ? answer : answer.measurements;
  if (!Array.isArray(answer) && answer.liveWeight !== undefined && !s.drift && !s.finalizing) {
    const expected = s.achievedWeight ?? s.weight;
    if (answer.liveWeight !== expected) await m.driftDetected(expected, answer.liveWeight);
  }
  const { verdict, checks } = judge(plan.analysis.checks, measurements);
  s.lastAnalysisAt = m.now();
  s.lastVerdict = verdict;
  s.analysesRun = (s.analysesRun ?? s.analyses.length) + 1;
  pushBounded(
    s.analyses,
    { stage: s.stageIndex + 1, weight: s.weight, at: iso(s.lastAnalysisAt), verdict, checks },
    MAX_ANALYSES_KEPT,
  );
  const summary = describeResults(plan.analysis.checks, checks);
  passing(m, verdict === 'pass', s.lastAnalysisAt);
  if (verdict === 'pass') {
    s.consecutiveFailures = 0;
    s.consecutiveInconclusive = 0;
    if (s.stageEntered) s.passedInStage = true;
  } else if (verdict === 'fail') {
    s.consecutiveFailures++;
    s.consecutiveInconclusive = 0;
    if (s.consecutiveFailures >= plan.analysis.failureLimit) {
      throw new RollbackRequired(
        `analysis failed ${s.consecutiveFailures} time(s) in a row at ${s.weight}%: ${summary}`,
      );
    }
  } else {
    s.consecutiveInconclusive++;
    if (s.consecutiveInconclusive >= plan.analysis.inconclusiveLimit) {
      throw new RollbackRequired(
        `no metric evidence for ${s.consecutiveInconclusive} analyses in a row at ${s.weight}%: ${summary}`,
      );
    }
  }
  m.publish();
}
