// What `canary status`, the Web UI and alerts show of a rollout: its status, built from the state and the plan.
import { describeMirror } from '../mirror-spec';
import { approvalExpiresAt, approvalsNeeded, countedApprovals, describeApprovers } from '../approval-policy';
import { formatDuration } from '../duration';
import { describeTarget } from '../target';
import { verificationDemand } from '../identity-policy';
import type { RolloutStatus } from '../types';
import { describeWindowState, mayAdvance, nextOpen } from '../windows';
import { iso } from './context';
import type { RolloutView } from './views';

/** What status says about a waiting gate's policy: who approved, how many more, reminder and escalation. */
export function gatePolicyView(v: RolloutView, now: number) {
  const policy = v.gatePolicy();
  if (!policy) return {};
  const counted = countedApprovals(policy, v.gateState(), now);
  const times = v.gateTimes(now);
  return {
    required: policy.required,
    needed: approvalsNeeded(policy, v.gateState(), now),
    approvers: describeApprovers(policy),
    approvedBy: counted.map((a) => {
      const expires = approvalExpiresAt(policy, a);
      return {
        by: a.identity,
        at: iso(a.atMs),
        ...(expires !== undefined ? { expiresAt: iso(expires) } : {}),
      };
    }),
    ...(times.remindAtMs !== undefined && !v.s.gateReminded ? { remindAt: iso(times.remindAtMs) } : {}),
    ...(times.escalateAtMs !== undefined && !v.s.gateEscalated
      ? { escalateAt: iso(times.escalateAtMs) }
      : {}),
  };
}

/** What status says about evidence: a question waiting for a person, or a served hold waiting for a pass. */
export function evidenceView(
  v: RolloutView,
  now: number,
): Pick<RolloutStatus, 'evidenceWait' | 'evidenceQuestion'> {
  const s = v.s;
  if (s.phase !== 'progressing' || s.finalizing) return {};
  if (s.evidenceQuestion) {
    const q = s.evidenceQuestion;
    return {
      evidenceQuestion: {
        since: iso(q.since),
        checks: q.checks,
        reasons: q.reasons,
        ...(q.breaches ? { breaches: q.breaches } : {}),
      },
    };
  }
  if (!s.stageEntered || s.waitStartedAt === undefined || s.pausedSince !== undefined) return {};
  if (s.promotionGate !== undefined) return {};
  const stage = v.stage();
  if (stage.holdMs === 0 || v.heldMs(now) < stage.holdMs || v.stageEvidence(now)) return {};
  const served = s.machineV2 ? (v.holdServedAt() ?? now) : s.waitStartedAt + v.pausedMs(now) + stage.holdMs;
  const record = s.analyses[s.analyses.length - 1];
  const last = s.lastVerdict
    ? `the latest analysis was ${s.lastVerdict}${s.neverStuck && record?.reasons?.length ? `: ${record.reasons.join('; ')}` : ''}`
    : 'no analysis has run yet';
  const need = stage.healthyForMs;
  const note =
    s.passedInStage && s.lastVerdict === 'pass' && need !== undefined
      ? `the hold is served, but stage ${s.stageIndex + 1} advances only once every analysis has passed for ` +
        `${formatDuration(need)} in a row (for ${formatDuration(s.passingSince === undefined ? 0 : now - s.passingSince)} now)`
      : `the hold is served, but stage ${s.stageIndex + 1} advances only on a passing analysis (${last})`;
  return { evidenceWait: { since: iso(served), note } };
}

/**
 * Outside the deployment windows: waiting for them to advance, or (machine-v2) a hold that does not count until they
 * open again.
 */
function windowView(v: RolloutView, now: number): Pick<RolloutStatus, 'window'> {
  const { s, plan } = v;
  if (s.phase !== 'progressing') return {};
  if (s.windowWait) {
    const { note, nextOpenAt } = s.windowWait;
    return {
      window: { open: false, note, ...(nextOpenAt !== undefined ? { nextOpenAt: iso(nextOpenAt) } : {}) },
    };
  }
  const w = plan.windows;
  const holding = s.stageEntered && s.promotionGate === undefined && !s.finalizing;
  if (!s.machineV2 || !w || !holding || v.heldMs(now) >= v.stage().holdMs) return {};
  if (mayAdvance(w, now, s.stageIndex + 1 >= plan.stages.length - 1)) return {};
  const opens = nextOpen(w, now);
  return {
    window: {
      open: false,
      note: `${describeWindowState(w, now)}; the hold of stage ${s.stageIndex + 1} counts only time inside the windows`,
      ...(opens !== undefined ? { nextOpenAt: iso(opens) } : {}),
    },
  };
}

export function rolloutStatus(v: RolloutView, now: number): RolloutStatus {
  const { s, plan } = v;
  const { target } = v.ctx;
  const g = v.currentGate();
  const gate =
    v.gateWaiting() && s.waitStartedAt !== undefined
      ? {
          stage: s.stageIndex + 1,
          ...(v.atPromotionGate() ? { promotion: true as const } : {}),
          since: iso(s.waitStartedAt),
          ...(g.type === 'approval' && g.timeoutMs !== undefined
            ? { timeoutAt: iso(s.waitStartedAt + v.pausedMs(now) + g.timeoutMs), onTimeout: g.onTimeout }
            : {}),
          ...gatePolicyView(v, now),
        }
      : undefined;
  const ends =
    s.phase === 'progressing' &&
    s.stageEntered &&
    s.promotionGate === undefined &&
    s.pausedSince === undefined &&
    !s.finalizing
      ? iso(now + v.stageTimeLeft(now))
      : undefined;
  return {
    workflowId: v.ctx.workflowId,
    app: target.app,
    namespace: target.namespace,
    version: v.ctx.version,
    ...(v.ctx.image ? { image: v.ctx.image } : {}),
    ...(plan.name ? { planName: plan.name } : {}),
    requestedBy: v.ctx.requestedBy,
    phase: v.phase(),
    stage: s.stageIndex + 1,
    stageCount: plan.stages.length,
    weight: s.weight,
    ...(s.stageEntered && s.promotionGate === undefined && s.waitStartedAt !== undefined
      ? { stageStartedAt: iso(s.waitStartedAt) }
      : {}),
    ...(ends ? { stageEndsAt: ends } : {}),
    stageTimeLeftMs: v.stageTimeLeft(now),
    planTimeLeftMs: v.planTimeLeft(now),
    ...(s.pausedSince !== undefined
      ? {
          pausedSince: iso(s.pausedSince),
          pausedBy: s.pausedBy,
          ...(s.pauseReason ? { pauseReason: s.pauseReason } : {}),
        }
      : {}),
    target: describeTarget(target),
    ...(target.traffic ? { router: target.traffic.router } : {}),
    ...(s.stableVersion ? { stableVersion: s.stableVersion } : {}),
    ...(s.achievedWeight !== undefined && s.achievedWeight !== s.weight
      ? { achievedWeight: s.achievedWeight }
      : {}),
    ...(s.routingNote ? { routingNote: s.routingNote } : {}),
    ...(v.mirroring() ? { mirroring: `mirroring ${describeMirror(v.mirroring()!)} to the canary` } : {}),
    ...(s.drift ? { drift: { expected: s.drift.expected, found: s.drift.found, at: iso(s.drift.at) } } : {}),
    ...(s.retrying
      ? {
          retrying: {
            ...s.retrying,
            since: iso(s.retrying.since),
            ...(s.neverStuck ? { resolve: v.resolveCommand() } : {}),
          },
        }
      : {}),
    ...(s.capacityNote ? { capacityNote: s.capacityNote } : {}),
    ...(s.cleanupFailed
      ? { cleanupFailed: { at: iso(s.cleanupFailed.at), error: s.cleanupFailed.error, fix: v.cleanupFix() } }
      : {}),
    ...(s.steppedBack
      ? {
          steppedBack: {
            stageWeight: s.steppedBack.stageWeight,
            toWeight: s.steppedBack.toWeight,
            since: iso(s.steppedBack.at),
          },
        }
      : {}),
    ...(gate ? { gate } : {}),
    ...windowView(v, now),
    ...(s.phase === 'progressing' && v.frozen() ? { freeze: v.frozen() } : {}),
    ...(s.phase === 'progressing' && s.fleetAsked ? { fleetAsked: s.fleetAsked } : {}),
    ...(s.phase === 'progressing' && s.slot && v.queued()
      ? {
          queued: {
            namespace: v.ctx.target.namespace,
            position: s.slot.position ?? 0,
            ...(s.slot.max !== undefined ? { max: s.slot.max } : {}),
          },
        }
      : {}),
    ...evidenceView(v, now),
    ...(s.hookRuns && s.hookRuns.length > 0 ? { hookRuns: s.hookRuns } : {}),
    ...(s.load ? { load: s.load } : {}),
    ...(s.hookQuestion && s.phase === 'progressing'
      ? { hookQuestion: { ...s.hookQuestion, since: iso(s.hookQuestion.since) } }
      : {}),
    analyses: s.analyses,
    analysesRun: s.analysesRun ?? s.analyses.length,
    ...(s.lastVerdict ? { lastVerdict: s.lastVerdict } : {}),
    approvals: s.approvals,
    ...(s.rollbackReason ? { rollbackReason: s.rollbackReason } : {}),
    ...(s.ending && (s.phase === 'rolling_back' || s.phase === 'rolled_back') ? { ending: s.ending } : {}),
    ...(s.resolved ? { resolved: s.resolved } : {}),
    ...(s.preflight ? { preflight: s.preflight } : {}),
    ...verifiedView(v),
    ...(s.finalizing && (s.phase === 'progressing' || s.soak) ? { promoting: true as const } : {}),
    ...(v.soaking()
      ? {
          soak: {
            until: iso(s.soak!.until),
            ...(s.soak!.previousVersion ? { previousVersion: s.soak!.previousVersion } : {}),
          },
        }
      : {}),
    ...(s.promotedAt !== undefined ? { promotedAt: iso(s.promotedAt) } : {}),
    stages: plan.stages.map((st, i) => ({
      stage: i + 1,
      weight: st.weight,
      holdMs: st.holdMs,
      gate: st.gate.type,
      state: v.stageState(i),
    })),
    ...(plan.promotion.gate ? { promotionGate: 'approval' as const } : {}),
    run: s.run,
  };
}

/** Who demands signed requests from people (the plan or the worker), for status and the client. */
function verifiedView(v: RolloutView): { verifiedBy?: string } {
  const by = verificationDemand(v, 'abort');
  return by ? { verifiedBy: by } : {};
}
