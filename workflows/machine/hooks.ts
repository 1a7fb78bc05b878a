// The plan's hooks, run by the machine at their points of the walk: each at most once per point and stage entry
// (finished ones are kept in state, so a replay, a worker crash or a continue-as-new never runs one twice), each
// through the port as a `runHook` step with the hook's own timeout and retries. What a failure does is the hook's
// onFailure: abort rolls back (before any traffic, for `before`), warn alerts and goes on, approval asks a person
// (approve goes on, abort rolls back). A confirm gate's "not yet" holds the rollout and asks again every interval.
// Plans without hooks give no command here: their histories are what they were.
//
// What runs and what follows is decided in hook-steps.ts; here it is carried out: each step run and its answer fed
// back, each alert and wait awaited where the decision puts it, a rollback thrown.
import type { HookRunResult } from '../../activities/hooks/types';
import type { HookPoint } from '../plan-hooks';
import { errorMessage } from './context';
import { RollbackRequired } from './errors';
import {
  askPerson,
  failedAnswer,
  hookAnswered,
  hookAsk,
  hookOutcome,
  hookStage,
  hookWaitOver,
  nextHook,
  openQuestion,
  type HookAsk,
  type HookCommand,
} from './hook-steps';
import type { RolloutMachine } from './machine';

export { HOOK_RUNS_KEPT } from './hook-steps';

/**
 * How the caller waits between a confirm gate's asks and for a person's answer: the walk keeps analysing (and may
 * continue as new) meanwhile; elsewhere a plain timer. `until` undefined: until `done()`.
 */
export type HookWait = (done: () => boolean, until: number | undefined, what: string) => Promise<void>;

function plainWait(m: RolloutMachine): HookWait {
  return async (done, until, what) => {
    for (;;) {
      if (done() || (until !== undefined && m.now() >= until)) return;
      const seen = m.messages;
      await m.port.waitUntil(
        () => m.messages !== seen,
        until === undefined ? undefined : Math.max(1, until - m.now()),
        what,
      );
    }
  };
}

/** Runs one ask; a failure of the activity (retries spent, a refusal) is a failed run. Records it. */
async function runAsk(m: RolloutMachine, ask: HookAsk): Promise<HookRunResult> {
  let r: HookRunResult;
  try {
    r = await m.port.run(ask.step);
  } catch (err) {
    if (m.port.isCancellation(err)) throw err;
    r = failedAnswer(ask, errorMessage(err), m.now());
  }
  // A publish: carried out at once, not awaited.
  void m.carry(hookAnswered(m, ask, r));
  return r;
}

/**
 * Carries out a hook's commands in order, each awaited where it is an alert or a wait; a rollback throws
 * RollbackRequired. True when the last was the wait for a confirm gate's next ask: the same hook is asked again.
 */
async function carryOut(m: RolloutMachine, commands: HookCommand[], wait: HookWait): Promise<boolean> {
  let again = false;
  for (const c of commands) {
    switch (c.type) {
      case 'wait':
        await wait(() => hookWaitOver(m, c, m.now()), c.until, c.summary);
        again = c.ends === 'nextAskDue';
        break;
      case 'rollback':
        throw new RollbackRequired(c.reason, c.ending);
      case 'askPerson':
        again = await carryOut(m, askPerson(m, c, m.now()), wait);
        break;
      case 'runHook':
        throw new Error('a hook is asked by runOne');
      default: {
        // A wake or a publish at once; an alert awaited, as the walk awaited it.
        const alerted = m.carry([c]);
        if (alerted) await alerted;
      }
    }
  }
  return again;
}

/** Runs one hook to its result: once, or for a confirm gate until it says yes or its asks run out. */
async function runOne(m: RolloutMachine, point: HookPoint, i: number, stage: number, wait: HookWait) {
  const hook = m.plan.hooks![point]![i];
  for (;;) {
    const ask = hookAsk(m, hook, stage, m.now());
    const r = await runAsk(m, ask);
    if (!(await carryOut(m, hookOutcome(m, ask, r, m.now()), wait))) return;
  }
}

/**
 * Runs the plan's hooks at `point` for the current stage entry, in the plan's order, each at most once. `wait`
 * is how the caller waits (the walk keeps analysing); without one, a plain timer.
 */
export async function runHooks(m: RolloutMachine, point: HookPoint, wait?: HookWait): Promise<void> {
  const stage = hookStage(m);
  const w = wait ?? plainWait(m);
  // A question asked before a continue-as-new is still open: its answer comes first.
  const question = openQuestion(m, point);
  if (question) await carryOut(m, [question], w);
  for (let i = nextHook(m, point, stage, 0); i !== undefined; i = nextHook(m, point, stage, i + 1)) {
    await runOne(m, point, i, stage, w);
  }
}

/**
 * The hooks of a rollback (`onRollback`): they run after traffic is back on stable, and nothing they do (a failure,
 * a timeout, a lost worker) can hold, skip or undo the rollback: every failure is only alerted.
 */
export async function runRollbackHooks(m: RolloutMachine): Promise<void> {
  try {
    await runHooks(m, 'onRollback');
  } catch (err) {
    m.port.log.warn('onRollback hook did not finish; the rollback goes on', { error: errorMessage(err) });
  }
}
