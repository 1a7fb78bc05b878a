// The walk through the stage plan, as the playbook reads: check what the rollout needs (preflight), deploy the
// canary, then for each stage pass its gate, wait for a deployment window, shift the traffic and hold it while
// analysing on a schedule; advance only on evidence; pass the promotion gate. Every wait is the port's. What each
// part decides is walk-steps.ts's (pure); here it is asked and carried out, in the order given.
import { describePlan } from '../plan';
import type { PreflightFinding } from '../types';
import { fleetIdsFor } from '../fleet-model';
import { analyse } from './analysis';
import { runHooks, type HookWait } from './hooks';
import { startStageLoad, stopStageLoad } from './load';
import { errorMessage } from './context';
import { NotStarted, RollbackRequired } from './errors';
import type { RolloutMachine } from './machine';
import {
  enterStageShift,
  enteredStage,
  fleetAsk,
  fleetAsked,
  fleetWait,
  gateAfterWait,
  gateEnd,
  gateFacts,
  holdAfterWait,
  holdWait,
  newWait,
  openGate,
  openWindowWait,
  resumeWait,
  wakeAt,
  watchNext,
  windowMayGoOn,
  windowNeeded,
  windowPassed,
  windowWaitEnded,
  type WaitFor,
  type WalkCommand,
} from './walk-steps';

/**
 * The commands of a decision, carried out in order. Yields what to await before the next command (an alert, a
 * shift), as the walk awaited each when it acted inline; a publish and a log line are not awaited; a rollback throws
 * RollbackRequired.
 */
function* effects(m: RolloutMachine, commands: WalkCommand[]): Generator<Promise<void>, void, undefined> {
  for (const c of commands) {
    switch (c.type) {
      case 'publish':
        m.publish();
        break;
      case 'alert':
        yield m.alert(c.kind, c.severity, c.message, c.fromHandler, c.extra);
        break;
      case 'shift':
        yield m.shift(c.weight, c.why, c.restoring ? { restoring: true } : undefined);
        break;
      case 'log':
        m.port.log.info(c.message, c.attrs);
        break;
      case 'rollback':
        throw new RollbackRequired(c.reason, { kind: c.kind });
      default:
        throw new Error(`the walk does not ${c.type} here`);
    }
  }
}

/**
 * Runs the analysis schedule until what `w` waits for holds (watchNext): restores the planned weight after drift,
 * takes the rounds due, continues as new when due, and waits on the port until a message or the next point in time.
 */
async function watchFor(m: RolloutMachine, w: WaitFor): Promise<void> {
  for (;;) {
    m.routeEarly();
    const next = watchNext(m, w, m.now());
    const first = next[0];
    if (first.type === 'done') return;
    if (first.type === 'round') {
      await analyse(m);
      continue;
    }
    if (first.type === 'continueAsNewIfDue') {
      await m.maybeContinueAsNew();
      const wait = wakeAt(m, w, first.now, first.analysisDue);
      const seen = m.messages;
      if (wait.timeoutMs === undefined) await m.port.waitUntil(() => m.messages !== seen);
      else await m.port.waitUntil(() => m.messages !== seen, wait.timeoutMs, wait.summary);
      continue;
    }
    for (const e of effects(m, next)) await e;
  }
}

/**
 * Runs the analysis schedule until `done()` holds. `deadline()` is the caller's own next point in time
 * (a hold's end or a gate's timeout), undefined when only a message or an analysis can change things.
 */
export function watch(
  m: RolloutMachine,
  done: () => boolean,
  deadline: () => number | undefined,
  what: string,
  /** An analysis due earlier than the schedule says (the round at a hold's end), if any. */
  roundDue?: () => number | undefined,
): Promise<void> {
  return watchFor(m, { kind: 'until', done, deadline, what, ...(roundDue ? { roundDue } : {}) });
}

/** How hooks wait inside the walk (a confirm gate's next ask, a person's answer): analysing all the while. */
function hookWait(m: RolloutMachine): HookWait {
  return (done, until, what) => watchFor(m, { kind: 'until', done, deadline: () => until, what });
}

/** The current gate: a stage's before its shift, or the promotion gate after the final stage's hold. */
async function passGate(m: RolloutMachine): Promise<void> {
  const g = gateFacts(m);
  if (!g) return;
  for (const e of effects(m, openGate(m, g, m.now()))) await e;
  for (;;) {
    await watchFor(m, { kind: 'gate', gate: g });
    const next = gateAfterWait(m, g, m.now());
    if (next === 'passed') break;
    for (const e of effects(m, next)) await e;
  }
  for (const e of effects(m, gateEnd(m, g, m.now()))) await e;
}

async function enterStage(m: RolloutMachine): Promise<void> {
  for (const e of effects(m, [enterStageShift(m)])) await e;
  for (const e of effects(m, enteredStage(m, m.now()))) await e;
}

/**
 * A stage advances only on evidence: with checks, its latest analysis must have passed (from never-stuck on, a round
 * taken at or after the hold's end). A zero hold (the final stage by default) promotes at once.
 */
async function hold(m: RolloutMachine): Promise<void> {
  for (;;) {
    await watchFor(m, holdWait(m));
    const next = holdAfterWait(m, m.now());
    if (next === 'end') return;
    for (const e of effects(m, next)) await e;
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
  if (!windowNeeded(m, isPromotion, m.now())) return;
  for (;;) {
    await waitForWindow(m, isPromotion);
    if (windowMayGoOn(m, isPromotion, m.now())) break;
  }
  for (const e of effects(m, windowPassed(m))) await e;
}

async function waitForWindow(m: RolloutMachine, isPromotion: boolean): Promise<void> {
  for (const e of effects(m, openWindowWait(m, m.now()))) await e;
  await watchFor(m, { kind: 'window', isPromotion });
  windowWaitEnded(m);
}

/**
 * Fleet controls: before the rollout advances (deploys its canary, enters a stage, promotes) it asks its scope's fleet
 * workflows whether a freeze holds it, and waits while one does, as outside a deployment window: analysis goes on (a
 * breach still rolls back), an abort still ends it, nothing moves forward.
 */
export async function awaitFleet(m: RolloutMachine, isPromotion: boolean, slot = false): Promise<void> {
  if (m.s.fleet) {
    const ids = fleetIdsFor(m.ctx.target.namespace);
    // Before its canary it asks for a slot too: a namespace with a maxConcurrent grants it or queues the rollout.
    const ask = fleetAsk(m, ids, slot);
    fleetAsked(m, await m.port.askFleet(ids, ask));
  }
  await fleetHold(m, isPromotion, slot);
}

/**
 * Waits while a freeze holds the rollout or it is queued for a slot (what its fleet workflows told it; no ask). A
 * promotion asked for skips a freeze's hold, never the queue; from pause-holds-advance on, not before the canary either
 * (skipping there deployed the canary while frozen: nothing new goes out during a freeze).
 */
async function fleetHold(m: RolloutMachine, isPromotion: boolean, beforeCanary = false): Promise<void> {
  const held = fleetWait(m, isPromotion, beforeCanary);
  if (!held) return;
  for (const e of effects(m, held.commands)) await e;
  await watchFor(m, held.wait);
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
  const paused = resumeWait(m);
  if (!paused) return false;
  for (const e of effects(m, paused.commands)) await e;
  await watchFor(m, paused.wait);
  return true;
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
