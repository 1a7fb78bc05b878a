// A rollout's state as the object's .status and conditions, and the transitions worth a Kubernetes Event.
import type { RolloutStatus } from '../workflows/types';
import type { CanaryRolloutStatus, Condition, ConditionType } from './crd';

/** What the controller wants one condition to say; the transition time is kept when the status does not change. */
export interface ConditionWish {
  type: ConditionType;
  status: Condition['status'];
  reason: string;
  message: string;
}

/** Conditions with `wishes` applied: a condition whose status is unchanged keeps its lastTransitionTime. */
export function mergeConditions(
  current: readonly Condition[] | undefined,
  wishes: readonly ConditionWish[],
  generation: number | undefined,
  now = new Date(),
): Condition[] {
  const out = new Map<string, Condition>((current ?? []).map((c) => [c.type, c]));
  for (const w of wishes) {
    const before = out.get(w.type);
    out.set(w.type, {
      ...w,
      lastTransitionTime:
        before && before.status === w.status ? before.lastTransitionTime : now.toISOString(),
      ...(generation !== undefined ? { observedGeneration: generation } : {}),
    });
  }
  return [...out.values()];
}

/** One line on what the rollout is doing now. */
export function messageOf(s: RolloutStatus): string {
  const at = `stage ${s.stage}/${s.stageCount} at ${s.weight} %`;
  switch (s.phase) {
    case 'progressing':
      return s.retrying
        ? `${at}; retrying ${s.retrying.step}: ${s.retrying.error}`
        : s.evidenceWait
          ? `${at}; ${s.evidenceWait.note}`
          : `${s.version}: ${at}`;
    case 'queued':
      return `${s.version}: queued at position ${s.queued?.position ?? 0} for a slot of namespace ${s.queued?.namespace ?? ''}`;
    case 'paused':
      return `${s.version}: paused at ${s.weight} %${s.pausedBy ? ` by ${s.pausedBy}` : ''}${s.pauseReason ? `: ${s.pauseReason}` : ''}`;
    case 'waiting_approval':
      return s.gate?.promotion
        ? `${s.version}: waiting for approval to promote (canary approve ${s.workflowId})`
        : `${s.version}: waiting for approval before stage ${s.gate?.stage ?? s.stage + 1} (canary approve ${s.workflowId})`;
    case 'rolling_back':
      return `${s.version}: rolling back${s.rollbackReason ? `: ${s.rollbackReason}` : ''}${s.retrying ? `; retrying ${s.retrying.step}: ${s.retrying.error}` : ''}`;
    case 'rolled_back':
      return `${s.version}: rolled back${s.rollbackReason ? `: ${s.rollbackReason}` : ''}`;
    case 'promoted':
      return s.soak
        ? `${s.version}: promoted, soaking until ${s.soak.until}`
        : `${s.version}: promoted${s.promotedAt ? ` at ${s.promotedAt}` : ''}`;
    case 'not_started': {
      const findings = (s.preflight?.findings ?? []).filter((f) => f.level === 'refuse');
      return `${s.version}: not started (the preflight refused it${findings.length ? `: ${findings.map((f) => f.message).join('; ')}` : ''}); nothing was changed`;
    }
    case 'failed':
      return `${s.version}: failed${s.rollbackReason ? `: ${s.rollbackReason}` : ''}`;
  }
}

/** The status fields a rollout's state sets (the controller's own fields are left to it). */
export function statusFields(s: RolloutStatus): Partial<CanaryRolloutStatus> {
  return {
    phase: s.phase,
    stage: s.stage,
    stageCount: s.stageCount,
    weight: s.weight,
    ...(s.lastVerdict ? { lastVerdict: s.lastVerdict } : {}),
    message: messageOf(s),
  };
}

const flag = (
  type: ConditionType,
  on: boolean,
  reason: string,
  message: string,
  offReason = 'No',
): ConditionWish => ({
  type,
  status: on ? 'True' : 'False',
  reason: on ? reason : offReason,
  message: on ? message : '',
});

/** The standard conditions for a rollout's phase. */
export function phaseConditions(s: RolloutStatus): ConditionWish[] {
  const message = messageOf(s);
  const running = !['promoted', 'rolled_back', 'failed', 'not_started'].includes(s.phase);
  const progressingReason: Record<RolloutStatus['phase'], string> = {
    progressing: 'StageRunning',
    queued: 'Queued',
    paused: 'Paused',
    waiting_approval: 'WaitingForApproval',
    rolling_back: 'RollingBack',
    rolled_back: 'RolledBack',
    promoted: 'Promoted',
    failed: 'Failed',
    not_started: 'NotStarted',
  };
  return [
    { type: 'Progressing', status: running ? 'True' : 'False', reason: progressingReason[s.phase], message },
    flag('Paused', s.phase === 'paused', 'Paused', message, 'NotPaused'),
    flag('WaitingForApproval', s.phase === 'waiting_approval', 'ApprovalGate', message, 'NotWaiting'),
    flag('Promoted', s.phase === 'promoted', 'Promoted', message, 'NotPromoted'),
    flag(
      'RolledBack',
      s.phase === 'rolled_back' || s.phase === 'failed',
      'RolledBack',
      message,
      'NotRolledBack',
    ),
  ];
}

/** What changed between two states that `kubectl describe` should tell: [reason, message, type]. */
export function transitionEvent(
  before: Partial<CanaryRolloutStatus> | undefined,
  s: RolloutStatus,
): { reason: string; message: string; type: 'Normal' | 'Warning' } | undefined {
  const message = messageOf(s);
  if (before?.phase !== s.phase) {
    const reasons: Record<RolloutStatus['phase'], [string, 'Normal' | 'Warning']> = {
      progressing: ['Progressing', 'Normal'],
      queued: ['Queued', 'Normal'],
      paused: ['Paused', 'Normal'],
      waiting_approval: ['WaitingForApproval', 'Normal'],
      rolling_back: ['RollingBack', 'Warning'],
      rolled_back: ['RolledBack', 'Warning'],
      promoted: ['Promoted', 'Normal'],
      failed: ['Failed', 'Warning'],
      not_started: ['NotStarted', 'Warning'],
    };
    const [reason, type] = reasons[s.phase];
    return { reason, message, type };
  }
  if (before.stage !== s.stage || before.weight !== s.weight) {
    return { reason: 'WeightSet', message, type: 'Normal' };
  }
  return undefined;
}
