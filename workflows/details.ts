// The workflow's "current details" in the Temporal Web UI: a short markdown page a person reads at a glance.
import { formatDuration } from './duration';
import { describeFreeze, describeQueued } from './fleet-model';
import type { Plan, RolloutEnding, RolloutStatus, StageView } from './types';

/** How a rollout that rolled back ended, in words: `aborted by alice`, `a check failed`, `declined by bob`. */
export function describeEnding(e: RolloutEnding): string {
  const by = e.by ? ` by ${e.by}` : '';
  switch (e.kind) {
    case 'check':
      return 'a check failed';
    case 'step':
      return 'a step failed';
    case 'timeout':
      return 'the approval gate timed out';
    case 'abort':
      return `aborted${by}`;
    case 'decline':
      return `declined${by}`;
    case 'cancel':
      return `cancelled${by || ' from the Temporal UI or API'}`;
    case 'back':
      return `went back${by}`;
  }
}

/** The mark of each stage state, in the Web UI's details and the CLI's stage strip. */
export const STAGE_MARKS: Readonly<Record<StageView['state'], string>> = {
  done: '✓',
  current: '▶',
  pending: '·',
  skipped: '↷',
  failed: '✗',
  stopped: '■',
};

export function renderDetails(st: RolloutStatus, plan: Plan, cli = 'canary'): string {
  // A list, not a table: the Web UI renders markdown tables without spacing.
  const mark = STAGE_MARKS;
  const rows = st.stages.map((s) => {
    const note =
      s.state === 'skipped'
        ? ' (skipped by promotion)'
        : s.state === 'failed'
          ? ' (rolled back here)'
          : s.state === 'stopped'
            ? ` (${st.ending ? describeEnding(st.ending) : 'stopped'} here)`
            : '';
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
  if (st.mirroring) notes.push(`Shadow stage: ${st.mirroring}`);
  if (st.preflight?.state === 'failed') {
    notes.push(
      `**Not started** (${st.preflight.cause === 'input' ? 'fix the plan or the target' : "fix the worker's environment"}); nothing was changed: ` +
        st.preflight.findings
          .filter((f) => f.level === 'refuse')
          .map((f) => (f.path ? `${f.path}: ${f.message}` : f.message))
          .join('; '),
    );
  }
  const warnings = st.preflight?.findings.filter((f) => f.level === 'warn') ?? [];
  if (warnings.length > 0) notes.push(`Preflight warnings: ${warnings.map((f) => f.message).join('; ')}`);
  if (st.retrying) {
    notes.push(
      `**Retrying** "${st.retrying.step}" since ${st.retrying.since} (${st.retrying.attempts} rounds): ${st.retrying.error}` +
        (st.retrying.resolve
          ? `. Once all traffic is on stable (moved by hand), end it: \`${st.retrying.resolve}\``
          : ''),
    );
  }
  if (st.resolved) {
    notes.push(`**Resolved by hand** by ${st.resolved.by} at ${st.resolved.at}: ${st.resolved.reason}`);
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
  if (st.hookQuestion) {
    notes.push(
      `**Waiting for a person:** ${st.hookQuestion.reason}. Go on: \`${cli} approve ${st.workflowId} --stage ${st.hookQuestion.stage}\`, ` +
        `or roll back: \`${cli} abort ${st.workflowId} --reason "why"\``,
    );
  }
  if (st.load)
    notes.push(`Load: stage ${st.load.stage} since ${st.load.since}: ${st.load.what} (job ${st.load.job})`);
  if (st.hookRuns && st.hookRuns.length > 0) {
    notes.push(
      `Hooks: ${st.hookRuns
        .slice(-5)
        .map(
          (r) =>
            `${r.point} ${r.hook} (stage ${r.stage}) ${r.result} at ${r.at} in ${r.tookMs} ms: ${r.detail}`,
        )
        .join('; ')}`,
    );
  }
  if (st.window && !st.window.open) {
    notes.push(
      `**Not advancing:** ${st.window.note}` +
        (st.window.nextOpenAt ? ` (${st.window.nextOpenAt})` : '') +
        '; analysis goes on and still rolls back on trouble',
    );
  }
  if (st.freeze) {
    notes.push(
      `**Not advancing:** ${describeFreeze(st.freeze)}; analysis goes on and still rolls back on trouble`,
    );
  }
  if (st.queued) {
    const q = st.queued;
    notes.push(
      `**Not started:** ${describeQueued({ granted: false, position: q.position, ...(q.max !== undefined ? { max: q.max } : {}) }, q.namespace)}; nothing is deployed until a slot is free`,
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
          `(${c.judged ?? c.outcome}${c.band ? `, ${c.band}${c.severity ? `/${c.severity}` : ''}` : ''})` +
          (c.dryRun && c.note ? ` [${c.note}]` : ''),
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
  if (st.rollbackReason) {
    notes.push(
      `**Rollback reason${st.ending ? ` (${describeEnding(st.ending)})` : ''}:** ${st.rollbackReason}`,
    );
  }
  // Separate paragraphs: single newlines would run together in markdown.
  lines.push(...notes.flatMap((n) => [n, '']));
  return lines.join('\n');
}
