// The plan's hooks, run by the machine at their points of the walk: each at most once per point and stage entry
// (finished ones are kept in state, so a replay, a worker crash or a continue-as-new never runs one twice), each
// through the port as a `runHook` step with the hook's own timeout and retries. What a failure does is the hook's
// onFailure: abort rolls back (before any traffic, for `before`), warn alerts and goes on, approval asks a person
// (approve goes on, abort rolls back). A confirm gate's "not yet" holds the rollout and asks again every interval.
// Plans without hooks give no command here: their histories are what they were.
import type { HookRunResult } from '../../activities/hooks/types';
import { formatDuration } from '../duration';
import type { Hook, HookPoint } from '../plan-hooks';
import type { HookRunRecord } from '../types';
import { errorMessage, iso, pushBounded } from './context';
import { RollbackRequired } from './errors';
import type { RolloutMachine } from './machine';

/** How many hook runs state (and status) keeps: the newest. */
export const HOOK_RUNS_KEPT = 20;
/** How many finished-hook keys state keeps (only the current stage entry's matter). */
const HOOKS_DONE_KEPT = 40;

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

/** `point:stage:hook`: a hook's run at one stage entry. */
function runKey(point: HookPoint, stage: number, hook: Hook): string {
  return `${point}:${stage}:${hook.name}`;
}

/** Runs one ask of one hook; a failure of the activity (retries spent, a refusal) is a failed run. */
async function ask(m: RolloutMachine, hook: Hook, stage: number, attempt: number): Promise<HookRunResult> {
  const { ctx, s } = m;
  const startedAt = m.now();
  let r: HookRunResult;
  try {
    r = await m.port.run({
      policy: 'hook',
      step: 'runHook',
      summary: `hook ${hook.point} ${hook.name}${attempt > 1 ? ` (ask ${attempt})` : ''}: stage ${stage}`,
      hook: {
        timeoutMs: hook.action.timeoutMs,
        attempts: hook.action.kind === 'http' ? hook.action.retries + 1 : 3,
        heartbeat: hook.action.kind === 'job',
      },
      args: [
        {
          target: ctx.target,
          hook,
          rolloutId: ctx.workflowId,
          version: ctx.version,
          stage,
          weight: s.weight,
          point: hook.point,
          attempt,
          // Stable for every retry of this ask, different for the next ask and for every other rollout.
          idempotencyKey: `${ctx.workflowId}/${ctx.firstRunId}/${hook.point}/${stage}/${hook.name}/${attempt}`,
        },
      ],
    });
  } catch (err) {
    if (m.port.isCancellation(err)) throw err;
    r = { result: 'failed', detail: errorMessage(err), tookMs: m.now() - startedAt };
  }
  const record: HookRunRecord = {
    point: hook.point,
    stage,
    hook: hook.name,
    at: iso(startedAt),
    tookMs: r.tookMs,
    result: r.result,
    detail: r.detail,
    ...(r.excerpt ? { excerpt: r.excerpt } : {}),
    attempt,
  };
  s.hookRuns ??= [];
  pushBounded(s.hookRuns, record, HOOK_RUNS_KEPT);
  m.publish();
  return r;
}

/** A failed hook: an alert always, then what its onFailure says. */
async function failed(
  m: RolloutMachine,
  hook: Hook,
  stage: number,
  why: string,
  wait: HookWait,
): Promise<void> {
  const { s, ctx } = m;
  const where = hook.point === 'beforeStage' || hook.point === 'afterStage' ? ` of stage ${stage}` : '';
  const reason = `hook ${hook.name} (${hook.point}${where}) failed: ${why}`;
  const then =
    hook.onFailure === 'abort'
      ? hook.point === 'before'
        ? 'the rollout rolls back before any traffic moved'
        : 'the rollout rolls back'
      : hook.onFailure === 'approval'
        ? `a person decides: go on: ${ctx.cli} approve ${ctx.workflowId} --stage ${s.stageIndex + 1}, or roll back: ${ctx.cli} abort ${ctx.workflowId} --reason "why"`
        : 'the rollout goes on (onFailure: warn)';
  await m.alert(
    'hook_failed',
    hook.onFailure === 'warn' ? 'warning' : 'critical',
    `${m.label()}: ${reason}; ${then}`,
    false,
    { reason },
  );
  if (hook.onFailure === 'warn') return;
  if (hook.onFailure === 'abort') throw new RollbackRequired(reason, { kind: 'step' });
  s.hookQuestion = { point: hook.point, stage, hook: hook.name, reason, since: m.now() };
  m.messages++;
  m.publish();
  await m.alert('approval_needed', 'warning', `${m.label()} waits for a person: ${reason}; ${then}`);
  // approve clears the question (go on); an abort cancels the walk (roll back).
  await wait(() => s.hookQuestion === undefined, undefined, `a person decides about hook ${hook.name}`);
}

/** Runs one hook to its result: once, or for a confirm gate until it says yes or its asks run out. */
async function runOne(m: RolloutMachine, hook: Hook, stage: number, wait: HookWait): Promise<void> {
  const s = m.s;
  const key = runKey(hook.point, stage, hook);
  const limit = hook.confirm?.limit ?? 1;
  for (;;) {
    const asks = s.hookConfirm?.key === key ? s.hookConfirm.asks : 0;
    const r = await ask(m, hook, stage, asks + 1);
    if (r.result === 'ok') break;
    if (r.result === 'not_ready' && hook.confirm && asks + 1 < limit) {
      s.hookConfirm = { key, asks: asks + 1 };
      const next = m.now() + hook.confirm.intervalMs;
      await wait(
        () => s.pausedSince === undefined && m.now() >= next,
        next,
        `hook ${hook.name} said not yet; asks again (${asks + 2}/${limit})`,
      );
      continue;
    }
    s.hookConfirm = undefined;
    const why =
      r.result === 'not_ready'
        ? `still not ready after ${limit} ${limit === 1 ? 'ask' : `asks, ${formatDuration(hook.confirm?.intervalMs ?? 0)} apart`} (${r.detail})`
        : r.detail;
    // Marked finished first: an approval that lets it go on must not run it again.
    s.hooksDone ??= [];
    pushBounded(s.hooksDone, key, HOOKS_DONE_KEPT);
    await failed(m, hook, stage, why, wait);
    return;
  }
  s.hookConfirm = undefined;
  s.hooksDone ??= [];
  pushBounded(s.hooksDone, key, HOOKS_DONE_KEPT);
}

/**
 * Runs the plan's hooks at `point` for the current stage entry, in the plan's order, each at most once. `wait`
 * is how the caller waits (the walk keeps analysing); without one, a plain timer.
 */
export async function runHooks(m: RolloutMachine, point: HookPoint, wait?: HookWait): Promise<void> {
  const hooks = m.plan.hooks?.[point];
  if (!hooks || hooks.length === 0) return;
  const s = m.s;
  const stage = s.stageIndex + 1;
  const w = wait ?? plainWait(m);
  // A question asked before a continue-as-new is still open: its answer comes first.
  if (s.hookQuestion)
    await w(
      () => s.hookQuestion === undefined,
      undefined,
      `a person decides about hook ${s.hookQuestion.hook}`,
    );
  for (const hook of hooks) {
    if (m.s.hooksDone?.includes(runKey(point, stage, hook))) continue;
    await runOne(m, hook, stage, w);
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
