// Dry-run checks (`dryRun: true`, issue 17): a new check proves itself before it may act. Each round it is measured
// and judged by the same rules as any check (judge-rules.ts), its streaks kept in the judge's state, but what it
// fires never reaches the round's decision: the round is decided as if the check were not in the plan. Its verdict
// says what it would have done ("dry run: would roll back — ..."), and it alerts once per streak in which it would
// have rolled back, stepped back or asked a person, besides its own alerts (each marked "dry run").
import type { AnalysisCheck } from './analysis-model';
import { STRENGTH } from './judge-policy';
import type { CheckStep } from './judge-rules';
import type { CheckVerdict, JudgeAction, JudgeAlert } from './judge-types';

const WOULD: Record<JudgeAction, string> = {
  rollback: 'would roll back',
  'await-approval': 'would ask a person',
  'step-back': 'would step back to the previous weight',
  hold: 'would hold the stage',
  alert: 'would alert',
  'advance-ok': 'would let the stage advance',
};

/** The checks that decide a round: every check but the dry-run ones. */
export function decidingChecks(checks: readonly AnalysisCheck[]): AnalysisCheck[] {
  return checks.filter((c) => !c.dryRun);
}

/** What a dry-run check's round shows and says; its state is the step's own. */
export function dryRunRound(
  name: string,
  step: CheckStep,
): { verdict: CheckVerdict; alerts: JudgeAlert[]; next: CheckStep['next'] } {
  const strongest = [...step.fired].sort(
    (a, b) => STRENGTH[b.action] - STRENGTH[a.action] || a.precedence - b.precedence,
  )[0];
  const action: JudgeAction = strongest?.action ?? (step.blocks ? 'hold' : 'advance-ok');
  const prefix = `${name}: `;
  const why = strongest
    ? strongest.reason.startsWith(prefix)
      ? strongest.reason.slice(prefix.length)
      : strongest.reason
    : step.verdict.note;
  const said = `dry run: ${WOULD[action]} — ${why}`;
  const next = { ...step.next };
  const alerted = { ...(next.alerted ?? {}) };
  const alerts: JudgeAlert[] = step.alerts.map((a) => ({
    check: a.check,
    level: a.level,
    message: a.message.startsWith(prefix) ? `${prefix}dry run: ${a.message.slice(prefix.length)}` : a.message,
  }));
  const acts = STRENGTH[action] > STRENGTH.hold;
  if (acts && !alerted.dryRun) {
    alerted.dryRun = true;
    alerts.push({ check: name, level: 'warning', message: `${prefix}${said}` });
  } else if (!acts) delete alerted.dryRun;
  if (Object.keys(alerted).length > 0) next.alerted = alerted;
  else delete next.alerted;
  return { verdict: { ...step.verdict, dryRun: true, note: said }, alerts, next };
}
