// The walk through the stage plan, as the playbook reads: check what the rollout needs (preflight), deploy the
// canary, then for each stage pass its gate, wait for a deployment window, shift the traffic and hold it while
// analysing on a schedule; advance only on evidence; pass the promotion gate. Every wait is the port's. Which part
// comes next is walk-order.ts's to say, what each part decides walk-steps.ts's (both pure); here they are asked and
// their commands carried out, in the order given.
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
import {
  canaryDeployed,
  canaryStep,
  preflightFindings,
  preflightStarts,
  preflightStep,
  rolloutStarted,
  routingStep,
  walkNext,
} from './walk-order';

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
  for (const e of effects(m, preflightStarts(m))) await e;
  let answer: Parameters<typeof preflightFindings>[1];
  try {
    answer = { report: await m.port.run(preflightStep(m)) };
  } catch (err) {
    if (m.port.isCancellation(err)) throw err;
    answer = { error: errorMessage(err) };
  }
  const found = preflightFindings(m, answer);
  for (const e of effects(m, found.commands)) await e;
  if (found.notStarted) throw new NotStarted();
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
  // Before its canary it asks for a slot too: a namespace with a maxConcurrent grants it or queues the rollout.
  const asking = fleetAsk(m, slot);
  if (asking) fleetAsked(m, await m.port.askFleet(asking.ids, asking.ask));
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

/**
 * From the canary's deployment to the end of the final stage's hold (and the promotion gate and window): each part in
 * the order walkNext (walk-order.ts) gives.
 */
export async function walk(m: RolloutMachine): Promise<void> {
  let step = walkNext(m, 'start');
  for (;;) {
    const p = step.part;
    let waited = false;
    switch (p.do) {
      case 'end':
        return;
      case 'preflight':
        await preflight(m);
        break;
      case 'askFleet':
        await awaitFleet(m, p.isPromotion, p.slot);
        break;
      case 'fleetHold':
        await fleetHold(m, p.isPromotion, p.beforeCanary);
        break;
      case 'resume':
        waited = await awaitResume(m);
        break;
      case 'canary': {
        // (Inline, as before it was data: history records concurrent code's steps in the order its promises settle.)
        for (const e of effects(m, rolloutStarted(m))) await e;
        // Marked before each step: an attempt may land even when its answer is lost.
        if (m.s.touched) m.s.touched.canary = true;
        canaryDeployed(m, await m.port.run(canaryStep(m)));
        const routing = routingStep(m);
        if (routing) {
          if (m.s.touched) m.s.touched.routing = true;
          await m.port.run(routing);
        }
        m.s.canaryReady = true;
        break;
      }
      case 'hooks':
        await runHooks(m, p.point, hookWait(m));
        break;
      case 'gate':
        await passGate(m);
        break;
      case 'window':
        await awaitWindow(m, p.isPromotion);
        break;
      case 'enterStage':
        await enterStage(m);
        break;
      case 'startLoad':
        await startStageLoad(m);
        break;
      case 'hold':
        await hold(m);
        break;
      case 'stopLoad':
        await stopStageLoad(m, p.why);
        break;
      case 'publish':
        m.publish();
        break;
    }
    step = walkNext(m, step.at, waited);
  }
}
