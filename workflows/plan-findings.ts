// What a new rollout must not start with, beyond validatePlan (plan.ts): checked where a rollout is started and by
// the worker's preflight, never on replay. Deterministic, no Node modules.
import { formatDuration } from './duration';
import type { InputProblem } from './problems';
import type { Plan } from './types';
import { selectsASide, webSecrets } from './analysis-spec';
import { windowOpeningProblem } from './windows';
import { mirrorWriteWarnings } from './mirror-spec';

// ---------------------------------------------------------------------------------------------------------------
// What a new rollout must not start with, beyond validatePlan. validatePlan runs inside the workflow too, on every
// replay of a recorded history, so it must keep accepting what it accepted; these rules are checked where a rollout
// is started (the CLI's validate, start and backtest, the client library) and by the worker's preflight.

/** Refusals (problems) and what only `--strict` refuses (warnings), each with its path in the plan. */
export interface PlanFindings {
  problems: InputProblem[];
  warnings: InputProblem[];
}

/**
 * The checks of a plan that cannot work as written, and the windows that do not open in time from nowMs:
 * a check whose abort persistence (`for`, `consecutive`) can never be reached, a stage-limited check that is never
 * measured, deployment windows that do not open within `windows.opensWithin` (problems); a raw query that measures
 * the whole fleet rather than the canary, a breach bound longer than the holds it could last in (warnings).
 * PromQL syntax is checked apart (activities/metrics/promql-syntax.ts), outside the workflow bundle.
 */
export function planStartFindings(plan: Plan, nowMs: number): PlanFindings {
  const out: PlanFindings = { problems: [], warnings: [] };
  plan.analysis.checks.forEach((check, index) => {
    if (check.query !== undefined && !selectsASide(check.query)) {
      out.warnings.push({
        path: `analysis.checks[${index}].query`,
        message:
          'uses none of {{side}}, {{version}}, {{workload}}, {{service}} or {{selector}}, so it measures the whole ' +
          "fleet (stable and canary alike), not the canary: a bad canary barely moves it. Select the canary's " +
          'series with one of them, e.g. version="{{version}}" or pod=~"{{workload}}-.*"',
      });
    }
  });
  out.warnings.push(...webFindings(plan));
  out.warnings.push(...mirrorWriteWarnings(plan));
  const reach = persistenceFindings(plan);
  out.problems.push(...reach.problems);
  out.warnings.push(...reach.warnings);
  out.problems.push(...testEvidenceProblems(plan));
  if (plan.windows) {
    const closed = windowOpeningProblem(plan.windows, nowMs);
    if (closed) out.problems.push(closed);
  }
  return out;
}

/**
 * A rank test (test: mann-whitney) has evidence only once the canary's series holds minSamples points, one per step,
 * from the moment the canary gets traffic. If its onNoData rolls back after fewer rounds than that takes, every
 * rollout of the plan rolls back for want of data in the first stage the check applies to, however healthy.
 */
function testEvidenceProblems(plan: Plan): InputProblem[] {
  const interval = plan.analysis.intervalMs;
  return (plan.analysis.rules ?? []).flatMap((rule, index) => {
    const test = rule.test;
    const noData = rule.onNoData;
    if (!test || noData.action !== 'hold' || noData.then !== 'rollback') return [];
    const needMs = test.minSamples * test.stepMs;
    const patienceMs = noData.limit * interval;
    if (needMs <= patienceMs) return [];
    const rounds = Math.ceil(needMs / interval);
    return [
      {
        path: `analysis.checks[${index}].onNoData`,
        message:
          `the ${test.type} test needs about ${formatDuration(needMs)} of canary traffic for its first evidence ` +
          `(minSamples ${test.minSamples} × step ${formatDuration(test.stepMs)}), but onNoData rolls back after ` +
          `${noData.limit} rounds without evidence (${formatDuration(patienceMs)} at a ${formatDuration(interval)} ` +
          `interval): every rollout would roll back, however healthy. Raise onNoData's limit to at least ${rounds}, ` +
          'or lower minSamples or step',
      },
    ];
  });
}

/** A web check that sends a worker's secret over plain http: anyone on the path can read it. */
function webFindings(plan: Plan): InputProblem[] {
  return (plan.analysis.rules ?? []).flatMap((rule, index) => {
    const web = rule.web;
    if (!web || !/^http:/i.test(web.url) || webSecrets(web).length === 0) return [];
    return [
      {
        path: `analysis.checks[${index}].web.url`,
        message:
          `sends the worker's secret ${webSecrets(web).join(', ')} over plain http, readable on the way: use an ` +
          'https:// URL',
      },
    ];
  });
}

/** `stage 3`, `stages 1–4`: a run of consecutive stage numbers. */
function describeRun(run: readonly number[]): string {
  return run.length === 1 ? `stage ${run[0]}` : `stages ${run[0]}–${run[run.length - 1]}`;
}

/**
 * Whether a breach can last as long as a check's abort asks before acting. A check is judged in each analysis round
 * of the stages it applies to (its `stages:`, else every stage), and judge-v2 keeps a check's breach streak across a
 * stage change only while the check goes on applying (s.judge carries over; a round without the check drops its
 * streak). A stage with checks waits for its first round even when its hold is shorter than the interval; a zero
 * hold (the final stage's default) promotes at once, without a round. A breach of a check that holds the stage
 * (critical, high, medium, or low with a success band) keeps the stage from advancing, so its `for` is always
 * reached in the end, past the holds; only a low check without a success band lets the stages advance under it.
 */
function persistenceFindings(plan: Plan): PlanFindings {
  const out: PlanFindings = { problems: [], warnings: [] };
  const rules = plan.analysis.rules ?? [];
  const n = plan.stages.length;
  const interval = plan.analysis.intervalMs;
  rules.forEach((rule, index) => {
    const path = `analysis.checks[${index}]`;
    const runs: number[][] = [];
    for (let k = 1; k <= n; k++) {
      if (rule.stages !== undefined && !rule.stages.includes(k)) continue;
      const last = runs[runs.length - 1];
      if (last && last[last.length - 1] === k - 1) last.push(k);
      else runs.push([k]);
    }
    const holdOf = (k: number): number => plan.stages[k - 1].holdMs;
    // Waits the plan itself may add while the canary still carries a run's traffic: the gates of the run's later
    // stages and of the stage after it (passed at the previous weight), deployment windows, the promotion gate.
    // (Entering stage k waits for its gate and window at stage k - 1's weight, where stage k - 1's checks apply.)
    const stretches = (run: number[]): boolean =>
      [...run.slice(1), run[run.length - 1] + 1].some(
        (k) => k <= n && (plan.windows !== undefined || plan.stages[k - 1].gate.type === 'approval'),
      ) ||
      (run.includes(n) && plan.promotion.gate !== undefined);
    const judged = runs.filter((run) => run.some((k) => holdOf(k) > 0) || stretches(run));
    if (judged.length === 0) {
      out.problems.push({
        path: `${path}.stages`,
        message:
          `the check applies only to ${describeRun(runs[0] ?? [n])}, which holds for 0s: the rollout promotes at once ` +
          'there, without an analysis round, so the check is never measured. Give that stage a hold, or apply the ' +
          'check to other stages too',
      });
      return;
    }
    const persist = rule.abort?.persist;
    if (!persist || rule.abort?.severity === 'critical') return;
    // Per run: the holds (time and rounds that fit in them, each stage with a hold getting at least one round).
    const measured = runs.map((run) => {
      const held = run.filter((k) => holdOf(k) > 0);
      return {
        run,
        holdMs: held.reduce((sum, k) => sum + holdOf(k), 0),
        spanMs: held.reduce((sum, k) => sum + Math.max(holdOf(k), interval), 0),
        rounds: held.reduce((sum, k) => sum + Math.max(1, Math.ceil(holdOf(k) / interval)), 0),
        stretches: stretches(run),
      };
    });
    const best = measured.reduce((a, b) => (b.spanMs > a.spanMs ? b : a));
    const need =
      persist.kind === 'for'
        ? { field: 'for', text: formatDuration(persist.ms), over: persist.ms > best.spanMs }
        : {
            field: 'consecutive',
            text: `${persist.rounds} rounds in a row (${formatDuration(persist.rounds * interval)} at the ${formatDuration(interval)} interval)`,
            over: persist.rounds > best.rounds,
          };
    if (!need.over) return;
    const where =
      `the check is judged in ${describeRun(best.run)}, whose holds add up to ${formatDuration(best.holdMs)}` +
      (runs.length > 1
        ? ' (its longest run of consecutive stages; a breach streak ends where the check stops applying)'
        : '');
    const severity = rule.abort?.severity ?? 'high';
    const advisory = severity === 'low' && rule.success === undefined;
    const at = `${path}.abort.${need.field}`;
    if (rule.dryRun) {
      // A dry-run check never holds the stage: the stages move on under its breach.
      out.warnings.push({
        path: at,
        message:
          `asks a breach to last ${need.text}, longer than ${where}, and a dry-run check does not hold the stage: ` +
          `the stages move on first, so it could never say what its ${severity} abort would do. Shorten ` +
          `${need.field} to fit the holds`,
      });
    } else if (!advisory) {
      out.warnings.push({
        path: at,
        message:
          `asks a breach to last ${need.text}, longer than ${where}: a breach holds the stage, so the canary would keep ` +
          `its traffic past the hold until the breach has lasted that long before the ${severity} abort acts. ` +
          `Shorten ${need.field} to fit the holds, or lengthen the holds`,
      });
    } else if (measured.some((m) => m.stretches)) {
      out.warnings.push({
        path: at,
        message:
          `asks a breach to last ${need.text}, longer than ${where}: this low check without a success band does not ` +
          'hold the stage, so it alerts only if a gate, a deployment window or the promotion gate keeps the rollout ' +
          `there that long. Shorten ${need.field} to fit the holds`,
      });
    } else {
      out.problems.push({
        path: at,
        message:
          `asks a breach to last ${need.text}, but ${where}, and this low check without a success band does not ` +
          `hold the stage: the stages move on first, so it could never alert. Shorten ${need.field} to at most ` +
          `${persist.kind === 'for' ? formatDuration(best.spanMs) : `${best.rounds} rounds`}, or lengthen the holds`,
      });
    }
  });
  return out;
}
