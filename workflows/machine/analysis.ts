// A round of analysis: the port fetches the measurements, the round's transition judges them and says what to do
// (verdict.ts), and the machine carries that out (roll back, ask a person, step back or forward, alert, publish).
// Fetching is kept apart from judging, as Kayenta does.
import { analysisWindowSeconds } from './context';
import { RollbackRequired } from './errors';
import type { RolloutMachine } from './machine';
import type { StepCommand } from './port';
import { roundDrift, roundRules, roundTransition, shortFormRules, type RoundEvent } from './verdict';

/** The versions a round compares: the canary's, and stable's where the rollout knows it. */
function versions(m: RolloutMachine) {
  const { s, ctx } = m;
  return { canary: ctx.version, ...(s.stableVersion ? { stable: s.stableVersion } : {}) };
}

/** The step that fetches a round of the full analysis form (judge-v2): the checks that apply in the live stage. */
function fullFormStep(m: RolloutMachine): StepCommand<'measureChecks'> {
  const { s, ctx } = m;
  const rules = roundRules(m);
  // Job checks (new plans only) run a Job per round: the round names it, and the step waits as long as it may run.
  const jobs = rules.flatMap((c) => (c.job ? [c.job.timeoutMs] : []));
  const round = (s.analysesRun ?? s.analyses.length) + 1;
  return {
    policy: 'analysis',
    step: 'measureChecks',
    summary: `analyse canary at ${s.weight}% (${rules.map((c) => c.name).join(', ')})`,
    ...(jobs.length > 0 ? { hook: { timeoutMs: Math.max(...jobs), attempts: 2, heartbeat: true } } : {}),
    args: [
      {
        target: ctx.target,
        checks: rules,
        versions: versions(m),
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
  };
}

/** The step that fetches a round of short-form checks from machine-v2 on: converted to the full form at the edge. */
function shortFormStep(m: RolloutMachine): StepCommand<'measureChecks'> {
  const { s, plan, ctx } = m;
  return {
    policy: 'analysis',
    step: 'measureChecks',
    summary: `analyse canary at ${s.weight}% (${plan.analysis.checks.map((c) => c.name).join(', ')})`,
    args: [
      {
        target: ctx.target,
        checks: shortFormRules(m),
        versions: versions(m),
        ...(ctx.flags.routingLifecycle ? { checkWeight: true } : {}),
      },
    ],
  };
}

/** The step that fetches a round the original way (rollouts started before machine-v2, judged by legacy-judge.ts). */
function legacyStep(m: RolloutMachine): StepCommand<'runAnalysis'> {
  const { s, plan, ctx } = m;
  return {
    policy: 'analysis',
    step: 'runAnalysis',
    summary: `analyse canary at ${s.weight}% (${plan.analysis.checks.map((c) => c.name).join(', ')})`,
    args: [
      {
        target: ctx.target,
        checks: plan.analysis.checks,
        windowSeconds: analysisWindowSeconds(plan),
        ...(ctx.flags.routingLifecycle ? { checkWeight: true } : {}),
        versions: versions(m),
      },
    ],
  };
}

/**
 * A fetched round, carried out: first its drift (the drift event taken, its alert awaited), then, at the time after
 * that, its judgement's commands in order (roundTransition). Yields what to await before the next command (a
 * shift, an alert, the drift), as the walk awaited each when it acted inline, so history records the same steps in
 * the same order; a publish is not awaited, and a rollback throws RollbackRequired. Lazy: the round is judged only
 * once the drift's promise has been awaited.
 */
function* carryOut(m: RolloutMachine, round: RoundEvent): Generator<Promise<void>, void, undefined> {
  for (const c of roundDrift(m, round)) {
    if (c.type === 'drift') yield m.driftDetected(c.expected, c.found);
  }
  for (const c of roundTransition(m, round, m.now())) {
    switch (c.type) {
      case 'rollback':
        throw new RollbackRequired(c.reason);
      case 'alert':
        yield m.alert(c.kind, c.severity, c.message, c.fromHandler, c.extra);
        break;
      case 'shift':
        yield m.shift(c.weight, c.why);
        break;
      case 'publish':
        m.publish();
        break;
      default:
        throw new Error(`a round does not ${c.type}`);
    }
  }
}

/** A round of the full analysis form, or of short-form checks converted to it (machine-v2). */
async function analyseMeasured(m: RolloutMachine): Promise<void> {
  const step = m.ctx.flags.judgeV2 ? fullFormStep(m) : shortFormStep(m);
  const round: RoundEvent = { type: 'round', answer: await m.port.run(step) };
  for (const effect of carryOut(m, round)) await effect;
}

/**
 * One round: the full analysis form through judge-v2; the short form converted to it at the edge (machine-v2), or
 * through the original judge (legacy-judge.ts) for rollouts started before machine-v2. Fetched by the port's step,
 * judged by verdict.ts, carried out here.
 */
export async function analyse(m: RolloutMachine): Promise<void> {
  // (Two functions, as when each form had its own: history records the steps of concurrent code in the order its
  // promises settle.)
  if (m.ctx.flags.judgeV2 || m.s.machineV2) return analyseMeasured(m);
  const round: RoundEvent = { type: 'legacyRound', answer: await m.port.run(legacyStep(m)) };
  for (const effect of carryOut(m, round)) await effect;
}
