// The workflow's "current details" in the Temporal Web UI: a short markdown page a person reads at a glance.
import { formatDuration } from './duration';
import type { Plan, RolloutStatus } from './types';

export function renderDetails(st: RolloutStatus, plan: Plan, cli = 'canary'): string {
  // A list, not a table: the Web UI renders markdown tables without spacing.
  const mark = { done: '✓', current: '▶', pending: '·', skipped: '↷', failed: '✗' } as const;
  const rows = st.stages.map((s) => {
    const note =
      s.state === 'skipped' ? ' (skipped by promotion)' : s.state === 'failed' ? ' (rolled back here)' : '';
    const text = `stage ${s.stage}: ${s.weight}%${s.holdMs ? ` for ${formatDuration(s.holdMs)}` : ''}${s.gate === 'approval' ? ', approval gate' : ''}${note}`;
    return `- ${mark[s.state]} ${s.state === 'current' ? `**${text}**` : text}`;
  });
  if (st.promotionGate) {
    const state = st.phase === 'promoted' ? 'done' : st.gate?.promotion ? 'current' : 'pending';
    rows.push(
      `- ${mark[state]} ${state === 'current' ? '**promotion: approval gate**' : 'promotion: approval gate'}`,
    );
  }
  const lines = [
    `### ${st.namespace}/${st.app} → ${st.version}`,
    `**${st.phase}** · stage ${st.stage}/${st.stageCount} · canary weight **${st.weight}%**` +
      (st.achievedWeight !== undefined ? ` (achieved ${st.achievedWeight}%)` : ''),
    ...(st.target ? ['', `Target: ${st.target}`] : []),
    '',
    ...rows,
    '',
  ];
  const notes: string[] = [];
  if (st.stageEndsAt)
    notes.push(`Next transition: ${st.stageEndsAt} (plan time left ${formatDuration(st.planTimeLeftMs)})`);
  if (st.pausedSince) {
    notes.push(
      `**Paused** since ${st.pausedSince} by ${st.pausedBy}${st.pauseReason ? `: ${st.pauseReason}` : ''}` +
        (st.drift ? ` — resume puts ${st.weight}% back: \`${cli} resume ${st.workflowId}\`` : ''),
    );
  }
  if (st.routingNote) notes.push(`Routing: ${st.routingNote}`);
  if (st.retrying) {
    notes.push(
      `**Retrying** "${st.retrying.step}" since ${st.retrying.since} (${st.retrying.attempts} rounds): ${st.retrying.error}`,
    );
  }
  if (st.gate) {
    notes.push(
      `**Waiting for approval** of ${st.gate.promotion ? `the promotion (stage ${st.gate.stage} served its hold)` : `stage ${st.gate.stage}`} since ${st.gate.since}: ` +
        `\`${cli} approve ${st.workflowId} --stage ${st.gate.stage}\``,
    );
    const g = st.gate;
    if (g.required !== undefined) {
      const by = (g.approvedBy ?? []).map((a) => `${a.by} (${a.at})`).join(', ');
      notes.push(
        `Approvals: ${g.required - (g.needed ?? 0)} of ${g.required}${by ? ` by ${by}` : ''}; ` +
          `${g.needed ?? 0} more needed from ${g.approvers ?? 'anyone'}` +
          (g.remindAt ? `; reminder at ${g.remindAt}` : '') +
          (g.escalateAt ? `; escalates at ${g.escalateAt}` : ''),
      );
    }
  }
  if (st.evidenceQuestion) {
    notes.push(
      `**Waiting for a person:** ${st.evidenceQuestion.reasons.join('; ')}. ` +
        `${st.evidenceQuestion.breaches ? 'Accept the breach and go on' : 'Go on without that evidence'}: ` +
        `\`${cli} approve ${st.workflowId} --stage ${st.stage}\`, or roll back: \`${cli} abort ${st.workflowId} --reason "why"\``,
    );
  } else if (st.evidenceWait) {
    notes.push(`**Waiting for evidence** since ${st.evidenceWait.since}: ${st.evidenceWait.note}`);
  }
  if (st.window && !st.window.open) {
    notes.push(
      `**Not advancing:** ${st.window.note}` +
        (st.window.nextOpenAt ? ` (${st.window.nextOpenAt})` : '') +
        '; analysis goes on and still rolls back on trouble',
    );
  }
  const given = st.approvals.filter((a) => a.kind !== 'timeout-proceed');
  if (given.length > 0) {
    notes.push(
      `Approvals: ${given
        .map(
          (a) =>
            `stage ${a.stage} ${a.kind === 'promote' ? 'promotion requested' : a.promotion ? 'promotion approved' : 'approved'} by ${a.by} at ${a.at}` +
            (a.count !== undefined && a.required !== undefined ? ` (${a.count} of ${a.required})` : ''),
        )
        .join('; ')}`,
    );
  }
  const last = st.analyses[st.analyses.length - 1];
  if (last) {
    const checks = last.checks
      .map(
        (c) =>
          `${c.name}=${c.value ?? 'no data'}${c.baseline !== undefined ? ` vs stable ${c.baseline ?? 'no data'}` : ''} ` +
          `(${c.judged ?? c.outcome}${c.band ? `, ${c.band}${c.severity ? `/${c.severity}` : ''}` : ''})`,
      )
      .join(', ');
    notes.push(
      `Last verdict: **${last.verdict}** at ${last.at}: ${checks}` +
        (last.action && last.action !== 'advance-ok' && last.reasons?.length
          ? ` — ${last.action}: ${last.reasons.join('; ')}`
          : ''),
    );
  } else if (plan.analysis.checks.length === 0) {
    notes.push('No analysis checks in this plan.');
  }
  if (st.steppedBack) {
    notes.push(
      `**Stepped back** to ${st.steppedBack.toWeight}% (stage weight ${st.steppedBack.stageWeight}%) since ${st.steppedBack.since}`,
    );
  }
  if (st.rollbackReason) notes.push(`**Rollback reason:** ${st.rollbackReason}`);
  // Separate paragraphs: single newlines would run together in markdown.
  lines.push(...notes.flatMap((n) => [n, '']));
  return lines.join('\n');
}
