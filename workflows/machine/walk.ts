// The walk through the stage plan, as the playbook reads: check what the rollout needs (preflight), deploy the
// canary, then for each stage pass its gate, wait for a deployment window, shift the traffic and hold it while
// analysing on a schedule; advance only on evidence; pass the promotion gate. Every wait is the port's.
import {
  approvalExpiresAt,
  approvalsNeeded,
  countedApprovals,
  describeApprovers,
  gateSatisfied,
} from '../approval-policy';
import { formatDuration } from '../duration';
import { describePlan } from '../plan';
import type { PreflightFinding } from '../types';
import { describeWindowState, mayAdvance, nextOpen, type Windows } from '../windows';
import { fleetIdsFor } from '../fleet-model';
import { analyse } from './analysis';
import { runHooks, type HookWait } from './hooks';
import { startStageLoad, stopStageLoad } from './load';
import { MAX_APPROVALS_KEPT, errorMessage, iso, pushBounded } from './context';
import { NotStarted, RollbackRequired } from './errors';
import type { RolloutMachine } from './machine';
import { evidenceView } from './status';

/**
 * Runs the analysis schedule until `done()` holds. `deadline()` is the caller's own next point in time
 * (a hold's end or a gate's timeout), undefined when only a message or an analysis can change things.
 */
export async function watch(
  m: RolloutMachine,
  done: () => boolean,
  deadline: () => number | undefined,
  what: string,
  /** An analysis due earlier than the schedule says (the round at a hold's end), if any. */
  roundDue?: () => number | undefined,
): Promise<void> {
  const s = m.s;
  for (;;) {
    m.routeEarly();
    if (s.drift && s.pausedSince === undefined && !s.finalizing) {
      // A person resumed after drift: the planned weight goes back first.
      s.drift = undefined;
      await m.shift(s.weight, 'restore the planned weight after drift', { restoring: true });
      m.publish();
      continue;
    }
    if (done()) return;
    const now = m.now();
    const analysisDue = m.analysisActive()
      ? Math.min((s.lastAnalysisAt ?? now) + m.plan.analysis.intervalMs, roundDue?.() ?? Infinity)
      : undefined;
    if (analysisDue !== undefined && now >= analysisDue) {
      await analyse(m);
      continue;
    }
    await m.maybeContinueAsNew();
    const d = deadline();
    const wakeAt = Math.min(analysisDue ?? Infinity, d !== undefined && d > now ? d : Infinity);
    const seen = m.messages;
    if (wakeAt === Infinity) {
      await m.port.waitUntil(() => m.messages !== seen);
    } else {
      const next = analysisDue === wakeAt ? 'next analysis' : what;
      await m.port.waitUntil(() => m.messages !== seen, Math.max(1, wakeAt - now), next);
    }
  }
}

/** How hooks wait inside the walk (a confirm gate's next ask, a person's answer): analysing all the while. */
function hookWait(m: RolloutMachine): HookWait {
  return (done, until, what) => watch(m, done, () => until, what);
}

/** The current gate: a stage's before its shift, or the promotion gate after the final stage's hold. */
async function passGate(m: RolloutMachine): Promise<void> {
  const { s, ctx } = m;
  const g = m.currentGate();
  if (g.type !== 'approval') return;
  const n = s.stageIndex + 1;
  const promotion = m.atPromotionGate();
  /** What the gate guards, in messages: `stage 2` or `the promotion`. */
  const subject = promotion ? 'the promotion' : `stage ${n}`;
  const policy = g.policy;
  const needs = (): string =>
    policy
      ? ` (${approvalsNeeded(policy, m.gateState(), m.now())} of ${policy.required} approvals still needed; approvers: ${describeApprovers(policy)})`
      : '';
  const command = `${ctx.cli} approve ${ctx.workflowId} --stage ${n}`;
  /** What the approval lets happen, e.g. `enter stage 2 (25%)` or `promote v2 (stage 4 at 100% served its hold)`. */
  const step = promotion
    ? `promote ${ctx.version} (stage ${n} at ${m.stage().weight}% served its hold)`
    : `enter stage ${n} (${m.stage().weight}%)`;
  if (s.waitStartedAt === undefined) {
    s.waitStartedAt = m.now();
    s.pausedMsInWait = 0;
    if (s.pausedOpenMsInWait !== undefined) s.pausedOpenMsInWait = 0;
    m.publish();
    await m.alert(
      'approval_needed',
      'warning',
      `${m.label()} waits for approval to ${step}: ${command}${needs()}`,
    );
  }
  const approved = (): boolean =>
    s.approvedStage === s.stageIndex ||
    (policy !== undefined && gateSatisfied(policy, m.gateState(), m.now()));
  const reminderDue = (): boolean => {
    const t = m.gateTimes(m.now()).remindAtMs;
    return !s.gateReminded && t !== undefined && m.now() >= t;
  };
  const escalationDue = (): boolean => {
    const t = m.gateTimes(m.now()).escalateAtMs;
    return !s.gateEscalated && t !== undefined && m.now() >= t;
  };
  const timeoutAt = (): number | undefined =>
    g.timeoutMs !== undefined && s.waitStartedAt !== undefined && s.pausedSince === undefined
      ? s.waitStartedAt + m.pausedMs(m.now()) + g.timeoutMs
      : undefined;
  const timedOut = (): boolean => {
    const t = timeoutAt();
    return t !== undefined && m.now() >= t;
  };
  /** The gate's next point in time: its timeout, reminder or escalation, whichever comes first. */
  const nextAt = (): number | undefined => {
    const times = m.gateTimes(m.now());
    // An approval that expires changes what the gate needs: wake then, so status says so on time.
    const expiries = policy
      ? countedApprovals(policy, m.gateState(), m.now()).map((a) => approvalExpiresAt(policy, a))
      : [];
    const candidates = [
      timeoutAt(),
      s.gateReminded ? undefined : times.remindAtMs,
      s.gateEscalated ? undefined : times.escalateAtMs,
      ...expiries,
    ].filter((t): t is number => t !== undefined);
    return candidates.length > 0 ? Math.min(...candidates) : undefined;
  };
  for (;;) {
    await watch(
      m,
      () =>
        s.pausedSince === undefined &&
        (approved() || s.promoteRequest !== undefined || timedOut() || reminderDue() || escalationDue()),
      nextAt,
      `approval gate of ${subject}`,
    );
    if (approved() || s.promoteRequest || timedOut()) break;
    const waited = formatDuration(m.now() - (s.waitStartedAt ?? m.now()) - m.pausedMs(m.now()));
    if (escalationDue()) {
      // An escalation says everything a reminder would: a reminder still due is not sent after it.
      s.gateEscalated = true;
      s.gateReminded = true;
      m.publish();
      await m.alert(
        'approval_escalated',
        'critical',
        `${m.label()} has waited ${waited} for approval to ${step}: ${command}${needs()}`,
      );
    } else if (reminderDue()) {
      s.gateReminded = true;
      m.publish();
      await m.alert(
        'approval_reminder',
        'warning',
        `${m.label()} still waits (${waited}) for approval to ${step}: ${command}${needs()}`,
      );
    }
  }
  if (approved()) {
    s.approvedStage = s.stageIndex;
    const by = policy
      ? countedApprovals(policy, m.gateState(), m.now()).map((a) => a.identity)
      : s.approvals
          .filter((a) => a.kind === 'approved' && a.stage === n && (a.promotion ?? false) === promotion)
          .map((a) => a.by)
          .slice(-1);
    await m.alert(
      'approved',
      'info',
      `${m.label()}: ${subject} approved by ${by.join(', ') || 'unknown'}`,
      false,
      {
        by: by.join(', '),
      },
    );
    return;
  }
  if (s.promoteRequest) return;
  if (g.onTimeout === 'proceed') {
    pushBounded(
      s.approvals,
      {
        stage: n,
        ...(promotion ? { promotion: true } : {}),
        by: 'gate timeout',
        at: iso(m.now()),
        kind: 'timeout-proceed',
      },
      MAX_APPROVALS_KEPT,
    );
    return;
  }
  throw new RollbackRequired(`approval for ${subject} timed out after ${formatDuration(g.timeoutMs ?? 0)}`, {
    kind: 'timeout',
  });
}

async function enterStage(m: RolloutMachine): Promise<void> {
  const { s, plan } = m;
  await m.shift(m.stage().weight, `stage ${s.stageIndex + 1}/${plan.stages.length}`);
  s.stageEntered = true;
  s.waitStartedAt = m.now();
  s.pausedMsInWait = 0;
  if (s.pausedOpenMsInWait !== undefined) s.pausedOpenMsInWait = 0;
  s.lastAnalysisAt = s.waitStartedAt;
  s.passedInStage = false;
  s.passingSince = s.waitStartedAt;
  m.publish();
  await m.alert(
    'stage_advanced',
    'info',
    `${m.label()} entered stage ${s.stageIndex + 1}/${plan.stages.length}: canary at ${s.weight}%` +
      (m.stage().holdMs > 0 ? ` for ${formatDuration(m.stage().holdMs)}` : ''),
  );
}

async function hold(m: RolloutMachine): Promise<void> {
  const { s, ctx } = m;
  // A stage advances only on evidence: with checks, its latest analysis must have passed (from never-stuck on, a
  // round taken at or after the hold's end). A zero hold (the final stage by default) promotes at once.
  const evidence = (): boolean => m.stageEvidence(m.now());
  const end = (): number | undefined =>
    s.machineV2
      ? m.holdServedAt()
      : s.pausedSince === undefined && s.waitStartedAt !== undefined
        ? s.waitStartedAt + s.pausedMsInWait + m.stage().holdMs
        : undefined;
  const served = (): boolean => s.pausedSince === undefined && m.heldMs(m.now()) >= m.stage().holdMs;
  // The round the hold's end calls for, when none has been taken since.
  const roundDue = (): number | undefined =>
    s.neverStuck && !m.roundAfterHold() ? m.holdServedAt() : undefined;
  // Served, but no evidence for this long: a person hears why the stage does not move (once per stage).
  const alertAt = (): number | undefined => {
    const at = m.holdServedAt();
    return s.neverStuck && s.evidenceAlertedStage !== s.stageIndex && at !== undefined
      ? at + m.evidenceWaitAlertMs()
      : undefined;
  };
  const alertDue = (): boolean => {
    const at = alertAt();
    return at !== undefined && served() && !evidence() && m.now() >= at;
  };
  for (;;) {
    await watch(
      m,
      () => s.promoteRequest !== undefined || (served() && (evidence() || alertDue())),
      () => {
        const times = [end(), alertAt()].filter((t): t is number => t !== undefined && t > m.now());
        return times.length > 0 ? Math.min(...times) : undefined;
      },
      `hold of stage ${s.stageIndex + 1} at ${m.stage().weight}%`,
      roundDue,
    );
    if (s.promoteRequest !== undefined || !alertDue()) return;
    s.evidenceAlertedStage = s.stageIndex;
    const why = evidenceView(m, m.now()).evidenceWait?.note ?? 'no passing analysis yet';
    await m.alert(
      'stuck',
      'warning',
      `${m.label()}: stage ${s.stageIndex + 1} served its hold ${formatDuration(m.now() - (m.holdServedAt() ?? m.now()))} ago ` +
        `and does not advance: ${why}. It advances on the first passing analysis; to end the wait: ` +
        `${ctx.cli} promote ${ctx.workflowId} (skip ahead) or ${ctx.cli} abort ${ctx.workflowId} --reason "why"`,
    );
  }
}

/**
 * The first step (never-stuck): whether this worker can drive this target with this plan, read-only. Every
 * refusal is listed at once; any refusal ends the rollout as not started, before anything is touched.
 */
async function preflight(m: RolloutMachine): Promise<void> {
  const { s, ctx } = m;
  s.preflight = { state: 'running', findings: [] };
  m.publish();
  let findings: PreflightFinding[];
  let tookMs: number | undefined;
  try {
    const report = await m.port.run({
      policy: 'preflight',
      step: 'preflight',
      summary: `preflight: can this worker roll ${ctx.version} out to ${ctx.target.namespace}/${ctx.target.app}?`,
      args: [
        {
          target: ctx.target,
          plan: m.plan,
          version: ctx.version,
          ...(ctx.image ? { image: ctx.image } : {}),
        },
      ],
    });
    findings = report.findings;
    tookMs = report.tookMs;
    if (report.requireVerified) s.requireVerified = true;
  } catch (err) {
    if (m.port.isCancellation(err)) throw err;
    findings = [
      {
        area: 'cluster',
        cause: 'infrastructure',
        level: 'refuse',
        message: `the preflight could not run on the worker: ${errorMessage(err)}`,
      },
    ];
  }
  const refusals = findings.filter((f) => f.level === 'refuse');
  s.preflight = {
    state: refusals.length > 0 ? 'failed' : 'passed',
    findings,
    ...(tookMs !== undefined ? { tookMs } : {}),
    // An input problem needs the plan or target changed whatever else is wrong: it decides the exit code.
    ...(refusals.length > 0
      ? { cause: refusals.some((f) => f.cause === 'input') ? 'input' : 'infrastructure' }
      : {}),
  };
  m.publish();
  if (refusals.length > 0) throw new NotStarted();
}

/**
 * Outside the plan's deployment windows the rollout does not advance: it keeps analysing (and rolls back on
 * trouble) and waits on a timer until the windows open. The next-open instant is computed once, when the wait
 * begins, and kept in state. A promotion request ends a wait for a stage (promotion then waits by its own rule).
 */
export async function awaitWindow(m: RolloutMachine, isPromotion: boolean): Promise<void> {
  const s = m.s;
  const w = m.plan.windows;
  if (!w || (!s.windowWait && mayAdvance(w, m.now(), isPromotion))) return;
  for (;;) {
    await waitForWindow(m, w, isPromotion);
    // From machine-v2 on, the windows are asked again when the wait ends: a pause that outlasted the opening must
    // not let the rollout advance after the windows closed again.
    if (
      !s.machineV2 ||
      (!isPromotion && s.promoteRequest !== undefined) ||
      mayAdvance(w, m.now(), isPromotion)
    )
      break;
  }
  s.windowWait = undefined;
  m.publish();
}

async function waitForWindow(m: RolloutMachine, w: Windows, isPromotion: boolean): Promise<void> {
  const s = m.s;
  if (!s.windowWait) {
    const now = m.now();
    const next = nextOpen(w, now);
    s.windowWait = {
      since: now,
      ...(next !== undefined ? { nextOpenAt: next } : {}),
      note: describeWindowState(w, now),
    };
    m.publish();
    m.port.log.info('outside the deployment window; waiting', { note: s.windowWait.note });
  }
  const opensAt = (): number | undefined => s.windowWait?.nextOpenAt;
  await watch(
    m,
    () => {
      if (!isPromotion && s.promoteRequest !== undefined) return true;
      const t = opensAt();
      return s.pausedSince === undefined && t !== undefined && m.now() >= t;
    },
    opensAt,
    'deployment window opens',
  );
  if (s.machineV2) s.windowWait = undefined;
}

/**
 * Fleet controls: before the rollout advances (deploys its canary, enters a stage, promotes) it asks its scope's fleet
 * workflows whether a freeze holds it, and waits while one does, as outside a deployment window: analysis goes on (a
 * breach still rolls back), an abort still ends it, nothing moves forward.
 */
export async function awaitFleet(m: RolloutMachine, isPromotion: boolean, slot = false): Promise<void> {
  const s = m.s;
  if (s.fleet) {
    const ids = fleetIdsFor(m.ctx.target.namespace);
    // Marked before the ask: an answer may come back before the ask's own result does.
    s.fleetAsked = ids;
    // Before its canary it asks for a slot too: a namespace with a maxConcurrent grants it or queues the rollout.
    if (slot) s.slotAsked = ids[0];
    const reached = await m.port.askFleet(ids, { workflowId: m.ctx.workflowId, ...(slot ? { slot } : {}) });
    const waiting = (s.fleetAsked ?? []).filter((id) => reached.includes(id));
    s.fleetAsked = waiting.length > 0 ? waiting : undefined;
    if (s.slotAsked !== undefined && !reached.includes(s.slotAsked)) s.slotAsked = undefined;
  }
  await fleetHold(m, isPromotion, slot);
}

/**
 * Waits while a freeze holds the rollout or it is queued for a slot (what its fleet workflows told it; no ask). A
 * promotion asked for skips a freeze's hold, never the queue; from pause-holds-advance on, not before the canary either
 * (skipping there deployed the canary while frozen: nothing new goes out during a freeze).
 */
async function fleetHold(m: RolloutMachine, isPromotion: boolean, beforeCanary = false): Promise<void> {
  const s = m.s;
  const held = (): boolean => m.frozen() !== undefined || s.fleetAsked !== undefined || m.queued();
  if (!held()) return;
  m.publish();
  m.port.log.info(m.queued() ? 'queued for a slot; waiting' : 'held by a freeze; waiting', {
    freeze: m.frozen(),
    slot: s.slot,
  });
  const promoteSkips = !isPromotion && !(beforeCanary && s.pauseHolds);
  await watch(
    m,
    () => !held() || (promoteSkips && s.promoteRequest !== undefined && !m.queued()),
    () => undefined,
    m.queued() ? 'slot granted' : 'freeze lifted',
  );
  m.publish();
}

/**
 * From pause-holds-advance on, a paused rollout moves nothing forward: before it deploys its canary, enters a stage or
 * promotes, it waits for a resume, analysing all the while (a breach still rolls back, an abort still ends it). A
 * promotion asked before the pause waits too (promote is refused while paused: it takes effect once resumed). Says
 * whether it waited: the windows and freezes are then asked again, since a pause may outlast an opening or see a
 * freeze begin. Status says why it waits: the phase is `paused`, with who paused it and why.
 */
async function awaitResume(m: RolloutMachine): Promise<boolean> {
  const s = m.s;
  if (!s.pauseHolds || s.pausedSince === undefined) return false;
  m.port.log.info('paused; waiting for a resume before it advances', { by: s.pausedBy });
  await watch(
    m,
    () => s.pausedSince === undefined,
    () => undefined,
    'resume',
  );
  return true;
}

/** A new wait at a gate: nothing of the previous gate's approvals, reminders or wait time carries over. */
function newWait(m: RolloutMachine): void {
  const s = m.s;
  s.waitStartedAt = undefined;
  s.pausedMsInWait = 0;
  if (s.pausedOpenMsInWait !== undefined) s.pausedOpenMsInWait = 0;
  s.approvedStage = undefined;
  s.gateApprovals = undefined;
  s.gateReminded = undefined;
  s.gateEscalated = undefined;
}

/** From the canary's deployment to the end of the final stage's hold (and the promotion gate and window). */
export async function walk(m: RolloutMachine): Promise<void> {
  const { s, plan, ctx } = m;
  // The canary is deployed (after the preflight, from never-stuck on) and the router prepared, once.
  if (!s.canaryReady) {
    if (s.neverStuck && !s.preflight) await preflight(m);
    // A freeze holds a new rollout before its canary is deployed: nothing new goes out; nor while it is paused.
    await awaitFleet(m, false, true);
    while (await awaitResume(m)) await fleetHold(m, false, true);
    m.publish();
    const warnings = (s.preflight?.findings ?? []).filter((f) => f.level === 'warn');
    await m.alert(
      'rollout_started',
      'info',
      `${m.label()} rollout started by ${ctx.requestedBy}: ${describePlan(m.plan)}` +
        (warnings.length > 0 ? `. Preflight warnings: ${warnings.map((f) => f.message).join('; ')}` : ''),
    );
    if (s.touched) s.touched.canary = true;
    const canary = await m.port.run({
      policy: 'step',
      step: 'prepareCanary',
      summary: `deploy canary ${ctx.version}`,
      workloadWait: ctx.flags.routingLifecycle,
      args: [{ target: ctx.target, version: ctx.version, image: ctx.image }],
    });
    if (canary?.stableVersion) s.stableVersion = canary.stableVersion;
    if (ctx.flags.routingLifecycle) {
      if (s.touched) s.touched.routing = true;
      await m.port.run({
        policy: 'step',
        step: 'prepareRouting',
        summary: `prepare ${m.routerName()} routing`,
        args: [
          {
            target: ctx.target,
            versions: { ...(s.stableVersion ? { stable: s.stableVersion } : {}), canary: ctx.version },
          },
        ],
      });
    }
    s.canaryReady = true;
  }
  // The plan's `before` hooks: the canary runs, no traffic has moved yet (once: only before the first stage).
  if (s.stageIndex === 0 && !s.stageEntered) await runHooks(m, 'before', hookWait(m));
  // A run continued at the promotion gate (or past it) has walked every stage already.
  while (s.promotionGate === undefined) {
    if (!s.stageEntered) {
      await passGate(m);
      if (!s.promoteRequest) await awaitWindow(m, s.stageIndex === plan.stages.length - 1);
      if (!s.promoteRequest) await awaitFleet(m, false);
      if (!s.promoteRequest) await runHooks(m, 'beforeStage', hookWait(m));
      while (!s.promoteRequest && (await awaitResume(m))) {
        await awaitWindow(m, s.stageIndex === plan.stages.length - 1);
        if (!s.promoteRequest) await fleetHold(m, false);
      }
      if (s.promoteRequest) {
        s.skippedFrom = s.stageIndex;
        break;
      }
      await enterStage(m);
    }
    await startStageLoad(m);
    await hold(m);
    await stopStageLoad(m, `stage ${s.stageIndex + 1} ended`);
    if (!s.promoteRequest) await runHooks(m, 'afterStage', hookWait(m));
    if (s.promoteRequest) s.skippedFrom = s.stageIndex + 1;
    if (s.promoteRequest || s.stageIndex === plan.stages.length - 1) break;
    s.stageIndex++;
    s.stageEntered = false;
    newWait(m);
    m.publish();
  }
  // The prompt before promotion (`promotion.gate`), once the final stage has served its hold with evidence. A
  // person's promotion request is that approval already.
  if (plan.promotion.gate && !s.promoteRequest && s.promotionGate !== 'passed') {
    if (s.promotionGate === undefined) {
      s.promotionGate = 'waiting';
      newWait(m);
    }
    await passGate(m);
    s.promotionGate = 'passed';
    m.publish();
  }
  // Promotion obeys the windows too, unless the plan says `promotion: any`.
  await awaitWindow(m, true);
  await awaitFleet(m, true);
  await runHooks(m, 'beforePromotion', hookWait(m));
  while (await awaitResume(m)) {
    await awaitWindow(m, true);
    await fleetHold(m, true);
  }
}
