// The workflow's "current details" in the Temporal Web UI: a short markdown page a person reads at a glance.
import { formatDuration } from './duration';
import type { Plan, RolloutStatus } from './types';

export function renderDetails(st: RolloutStatus, plan: Plan): string {
  const rows = st.stages.map(
    (s) =>
      `| ${s.state === 'current' ? `**${s.stage}**` : s.stage} | ${s.weight}% | ${s.holdMs ? formatDuration(s.holdMs) : '-'} | ${s.gate} | ${s.state} |`,
  );
  const lines = [
    `### ${st.namespace}/${st.app} → ${st.version}`,
    `**${st.phase}** · stage ${st.stage}/${st.stageCount} · canary weight **${st.weight}%**`,
    '',
    '| stage | weight | hold | gate | state |',
    '| --- | --- | --- | --- | --- |',
    ...rows,
    '',
  ];
  if (st.stageEndsAt)
    lines.push(`Next transition: ${st.stageEndsAt} (plan time left ${formatDuration(st.planTimeLeftMs)})`);
  if (st.pausedSince) lines.push(`Paused since ${st.pausedSince} by ${st.pausedBy}`);
  if (st.gate) lines.push(`Waiting for approval of stage ${st.gate.stage} since ${st.gate.since}`);
  const last = st.analyses[st.analyses.length - 1];
  if (last) {
    const checks = last.checks.map((c) => `${c.name}=${c.value ?? 'no data'} (${c.outcome})`).join(', ');
    lines.push(`Last verdict: **${last.verdict}** at ${last.at}: ${checks}`);
  } else if (plan.analysis.checks.length === 0) {
    lines.push('No analysis checks in this plan.');
  }
  if (st.rollbackReason) lines.push(`Rollback reason: ${st.rollbackReason}`);
  return lines.join('\n');
}
