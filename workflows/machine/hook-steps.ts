// The plan's hooks and the stage's load as decisions: what runs next, the step that runs it, what its answer changes
// and what must happen because of it. hooks.ts and load.ts ask these functions, carry out the commands in the order
// given (each awaited where it is a step, an alert or a wait), feed the answers back, and ask again. No port, no
// Temporal, no await: a unit test runs them on a hand-built state.
//
// A hook's run is decided in steps, as history records it: hookAsk (the runHook step for the next ask), then, once
// it answered (or failed), hookAnswered (the run recorded and published), then hookOutcome (done, ask again after
// the confirm gate's interval, or what its onFailure does: an alert, then a rollback or a question to a person), and
// for a question, askPerson at the time after that alert. A load's start is loadStart (stop the previous first, then
// start), startLoadStep at the time after the stop, then loadStarted or loadStartFailed; its stop is loadStop, then
// loadStopped or loadStopFailed. Each updates `view.s` in place where its doc says so, and nothing else. Change the
// order of the commands only behind a patch (workflows/patches.ts): the workflow's history depends on it.
import type { HookRunResult } from '../../activities/hooks/types';
import { formatDuration } from '../duration';
import type { Hook, HookPoint } from '../plan-hooks';
import { canaryUrl, describeLoad, stageLoad, type Load, type LoadRun } from '../plan-load';
import type { HookRunRecord } from '../types';
import { iso, pushBounded } from './context';
import type { StepCommand, StepResult } from './port';
import type { RolloutEnding } from '../types';
import type { MachineCommand } from './transitions';
import type { RolloutView } from './views';

/** How many hook runs state (and status) keeps: the newest. */
export const HOOK_RUNS_KEPT = 20;
/** How many finished-hook keys state keeps (only the current stage entry's matter). */
export const HOOKS_DONE_KEPT = 40;

/** One ask of one hook: the step that runs it, and what its answer is recorded against. */
export interface HookAsk {
  type: 'runHook';
  hook: Hook;
  /** 1-based stage of the entry the hook runs for. */
  stage: number;
  /** 1 for the first ask; a confirm gate's later asks count up. */
  attempt: number;
  startedAt: number;
  step: StepCommand<'runHook'>;
}

/** What ends a hook's wait: the confirm gate's next ask being due (and no pause), or a person's answer. */
export type HookWaitEnd = 'nextAskDue' | 'answered';

/** The walk waits (analysing all the while) until `ends` holds, or until `until` when given. */
export interface HookWaitCommand {
  type: 'wait';
  ends: HookWaitEnd;
  until: number | undefined;
  summary: string;
}

/** A failed hook whose onFailure is approval: a person is asked (askPerson), at the time after its alert. */
export interface HookQuestionCommand {
  type: 'askPerson';
  hook: Hook;
  stage: number;
  reason: string;
  /** What the person can do, as the alerts say it. */
  then: string;
}

/** A failed hook whose onFailure is abort: the walk stops and the rollout rolls back (RollbackRequired). */
export interface HookRollbackCommand {
  type: 'rollback';
  reason: string;
  ending: RolloutEnding;
}

/** The machine's own commands the decisions here return (carried out by RolloutMachine.carry). */
export type MachineEffect = Extract<MachineCommand, { type: 'alert' | 'publish' | 'wake' }>;

/** What the hooks' decisions ask the carrier to do, in order; alerts, publishes and wakes are the machine's. */
export type HookCommand =
  MachineEffect | HookAsk | HookWaitCommand | HookQuestionCommand | HookRollbackCommand;

/** What the load's decisions ask the carrier to do, in order. */
export type LoadCommand =
  | MachineEffect
  /** The running load stops first (loadStop, with this reason for its summary). */
  | { type: 'stopLoad'; why: string }
  /** The entered stage's load starts (startLoadStep, at the time after anything before it). */
  | { type: 'startLoad' };

const PUBLISH: MachineEffect = { type: 'publish' };
const WAKE: MachineEffect = { type: 'wake' };

/** An alert raised by the walk (never a handler's). */
function alert(
  kind: 'hook_failed' | 'approval_needed',
  severity: 'warning' | 'critical',
  message: string,
  reason?: string,
): MachineEffect {
  return {
    type: 'alert',
    kind,
    severity,
    message,
    fromHandler: false,
    ...(reason !== undefined ? { extra: { reason } } : {}),
  };
}

// ---------- hooks ----------

/** `point:stage:hook`: a hook's run at one stage entry (the key hooksDone and hookConfirm keep). */
export function hookKey(point: HookPoint, stage: number, hook: Hook): string {
  return `${point}:${stage}:${hook.name}`;
}

/** The stage entry hooks run for now (1-based): the point's hooks run for the stage the walk is at. */
export function hookStage(v: RolloutView): number {
  return v.s.stageIndex + 1;
}

/**
 * A question about a failed hook asked before a continue-as-new and still open: its answer comes first, before any
 * hook of `point` runs. None for a point without hooks (nothing runs there, nothing waits).
 */
export function openQuestion(v: RolloutView, point: HookPoint): HookWaitCommand | undefined {
  const q = v.s.hookQuestion;
  if (!q || !(v.plan.hooks?.[point]?.length ?? 0)) return undefined;
  return {
    type: 'wait',
    ends: 'answered',
    until: undefined,
    summary: `a person decides about hook ${q.hook}`,
  };
}

/**
 * The index of the next hook of `point` (in the plan's order, from `from` on) that has not finished for the stage
 * entry `stage`; undefined when none is left. A hook finished before a replay, a worker crash or a continue-as-new
 * is never run again.
 */
export function nextHook(v: RolloutView, point: HookPoint, stage: number, from: number): number | undefined {
  const hooks = v.plan.hooks?.[point] ?? [];
  for (let i = from; i < hooks.length; i++) {
    if (!v.s.hooksDone?.includes(hookKey(point, stage, hooks[i]))) return i;
  }
  return undefined;
}

/** The next ask of `hook` for the stage entry `stage` at `now`: the first, or the confirm gate's next. */
export function hookAsk(v: RolloutView, hook: Hook, stage: number, now: number): HookAsk {
  const { s, ctx } = v;
  const key = hookKey(hook.point, stage, hook);
  const attempt = (s.hookConfirm?.key === key ? s.hookConfirm.asks : 0) + 1;
  return {
    type: 'runHook',
    hook,
    stage,
    attempt,
    startedAt: now,
    step: {
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
    },
  };
}

/** The answer of an ask whose step failed (retries spent, a refusal): a failed run, timed to `now`. */
export function failedAnswer(ask: HookAsk, detail: string, now: number): HookRunResult {
  return { result: 'failed', detail, tookMs: now - ask.startedAt };
}

/** The record state and status keep of an ask's answer. */
export function hookRunRecord(ask: HookAsk, r: HookRunResult): HookRunRecord {
  return {
    point: ask.hook.point,
    stage: ask.stage,
    hook: ask.hook.name,
    at: iso(ask.startedAt),
    tookMs: r.tookMs,
    result: r.result,
    detail: r.detail,
    ...(r.excerpt ? { excerpt: r.excerpt } : {}),
    attempt: ask.attempt,
  };
}

/** An ask answered: its run is kept in `view.s.hookRuns` (the newest HOOK_RUNS_KEPT), and published. */
export function hookAnswered(v: RolloutView, ask: HookAsk, r: HookRunResult): MachineEffect[] {
  const s = v.s;
  s.hookRuns ??= [];
  pushBounded(s.hookRuns, hookRunRecord(ask, r), HOOK_RUNS_KEPT);
  return [PUBLISH];
}

/**
 * What an answered ask leads to at `now` (after hookAnswered). Ok: the hook is done (no command). A confirm gate's
 * "not yet" with asks left: `view.s.hookConfirm` counts the ask, and the walk waits for the next (the same hook is
 * asked again after it). Otherwise the hook failed: the gate's count goes, the hook is marked finished first (an
 * approval that lets it go on must not run it again), and hookFailed says what follows. Updates `view.s.hookConfirm`
 * and `view.s.hooksDone` in place.
 */
export function hookOutcome(v: RolloutView, ask: HookAsk, r: HookRunResult, now: number): HookCommand[] {
  const s = v.s;
  const { hook, stage } = ask;
  const key = hookKey(hook.point, stage, hook);
  const limit = hook.confirm?.limit ?? 1;
  if (r.result === 'not_ready' && hook.confirm && ask.attempt < limit) {
    s.hookConfirm = { key, asks: ask.attempt };
    return [
      {
        type: 'wait',
        ends: 'nextAskDue',
        until: now + hook.confirm.intervalMs,
        summary: `hook ${hook.name} said not yet; asks again (${ask.attempt + 1}/${limit})`,
      },
    ];
  }
  s.hookConfirm = undefined;
  s.hooksDone ??= [];
  pushBounded(s.hooksDone, key, HOOKS_DONE_KEPT);
  if (r.result === 'ok') return [];
  const why =
    r.result === 'not_ready'
      ? `still not ready after ${limit} ${limit === 1 ? 'ask' : `asks, ${formatDuration(hook.confirm?.intervalMs ?? 0)} apart`} (${r.detail})`
      : r.detail;
  return hookFailed(v, hook, stage, why);
}

/**
 * A failed hook: the hook_failed alert always (a warning for warn, critical otherwise), then what its onFailure says:
 * warn goes on (nothing more), abort rolls back (before any traffic moved, for `before`), approval asks a person.
 */
export function hookFailed(v: RolloutView, hook: Hook, stage: number, why: string): HookCommand[] {
  const { s, ctx } = v;
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
  const failed = alert(
    'hook_failed',
    hook.onFailure === 'warn' ? 'warning' : 'critical',
    `${v.label()}: ${reason}; ${then}`,
    reason,
  );
  if (hook.onFailure === 'warn') return [failed];
  if (hook.onFailure === 'abort') return [failed, { type: 'rollback', reason, ending: { kind: 'step' } }];
  return [failed, { type: 'askPerson', hook, stage, reason, then }];
}

/**
 * A person is asked about a failed hook at `now`: the question is kept in `view.s.hookQuestion` (it outlives a
 * continue-as-new), the walk wakes, status shows it, the approval_needed alert says what to do, and the walk waits
 * for the answer (approve clears the question and goes on; an abort cancels the walk and rolls back).
 */
export function askPerson(v: RolloutView, q: HookQuestionCommand, now: number): HookCommand[] {
  v.s.hookQuestion = { point: q.hook.point, stage: q.stage, hook: q.hook.name, reason: q.reason, since: now };
  return [
    WAKE,
    PUBLISH,
    alert('approval_needed', 'warning', `${v.label()} waits for a person: ${q.reason}; ${q.then}`),
    {
      type: 'wait',
      ends: 'answered',
      until: undefined,
      summary: `a person decides about hook ${q.hook.name}`,
    },
  ];
}

/** Whether a hook's wait is over at `now` (its `until`, when given, ends it too: the carrier's timer). */
export function hookWaitOver(v: RolloutView, w: HookWaitCommand, now: number): boolean {
  if (w.ends === 'answered') return v.s.hookQuestion === undefined;
  return v.s.pausedSince === undefined && w.until !== undefined && now >= w.until;
}

// ---------- load ----------

/**
 * Whether the entered stage's load starts: not when the plan gives the stage none or it runs already; a load of
 * another stage still running stops first.
 */
export function loadStart(v: RolloutView): LoadCommand[] {
  const { s } = v;
  const load = stageLoad(v.plan.load, s.stageIndex);
  const stage = s.stageIndex + 1;
  if (!load || s.load?.stage === stage) return [];
  return [
    ...(s.load ? [{ type: 'stopLoad' as const, why: `stage ${stage} started` }] : []),
    { type: 'startLoad' },
  ];
}

/** A load's start: the step, and what its answer is recorded against. */
export interface LoadStart {
  stage: number;
  load: Load;
  since: number;
  step: StepCommand<'startLoad'>;
}

/** The startLoad step for the entered stage at `now` (after loadStart said it starts). */
export function startLoadStep(v: RolloutView, now: number): LoadStart {
  const { s, ctx } = v;
  const load = stageLoad(v.plan.load, s.stageIndex)!;
  const stage = s.stageIndex + 1;
  return {
    stage,
    load,
    since: now,
    step: {
      policy: 'lookup',
      step: 'startLoad',
      summary: `load at the canary: stage ${stage}, ${load.rate} req/s`,
      args: [
        {
          target: ctx.target,
          load,
          rolloutId: ctx.workflowId,
          stage,
          // Stable for every attempt of this stage entry; another entry of the same stage gets another Job.
          key: `${ctx.workflowId}/${ctx.firstRunId}/load/${stage}/${now}`,
        },
      ],
    },
  };
}

/**
 * The load started: `view.s.load` records it (its Job, since when, what it does, where), and it is published. A
 * simulated port (the backtest) runs no Job and answers nothing: then nothing is recorded.
 */
export function loadStarted(
  v: RolloutView,
  start: LoadStart,
  r: StepResult<'startLoad'> | undefined,
): MachineEffect[] {
  if (r === undefined) return [];
  const { stage, load, since } = start;
  const url = r.url ?? load.url ?? canaryUrl(v.ctx.target);
  v.s.load = { stage, job: r.job, since: iso(since), what: describeLoad(load, url), ...(url ? { url } : {}) };
  return [PUBLISH];
}

/** Load is best effort: a warning, and the rollout goes on. */
function loadWarning(v: RolloutView, reason: string): MachineEffect {
  return alert(
    'hook_failed',
    'warning',
    `${v.label()}: ${reason}; the rollout goes on (load is best effort)`,
    reason,
  );
}

/** The load could not start (`error`): a warning; nothing is recorded. */
export function loadStartFailed(v: RolloutView, start: LoadStart, error: string): MachineEffect[] {
  return [loadWarning(v, `load for stage ${start.stage} did not start: ${error}`)];
}

/** A load's stop: the step, and the load it stops. */
export interface LoadStop {
  running: LoadRun;
  step: StepCommand<'stopLoad'>;
}

/** The stopLoad step for the running load (`why` in its summary); undefined when none runs. */
export function loadStop(v: RolloutView, why: string): LoadStop | undefined {
  const running = v.s.load;
  if (!running) return undefined;
  return {
    running,
    step: {
      policy: 'lookup',
      step: 'stopLoad',
      summary: `stop the load of stage ${running.stage}: ${why}`,
      args: [{ target: v.ctx.target, job: running.job }],
    },
  };
}

/** The load stopped: `view.s.load` goes, it is published, and a load that had failed meanwhile warns. */
export function loadStopped(v: RolloutView, stop: LoadStop, r: StepResult<'stopLoad'>): MachineEffect[] {
  const { running } = stop;
  v.s.load = undefined;
  return [
    PUBLISH,
    ...(r.failed
      ? [loadWarning(v, `load of stage ${running.stage} (job ${running.job}) failed: ${r.failed}`)]
      : []),
  ];
}

/** The load could not be stopped (`error`): `view.s.load` goes all the same (its deadline and TTL remove it). */
export function loadStopFailed(v: RolloutView, stop: LoadStop, error: string): MachineEffect[] {
  const { running } = stop;
  v.s.load = undefined;
  return [
    PUBLISH,
    loadWarning(
      v,
      `load of stage ${running.stage} (job ${running.job}) could not be stopped: ${error}; ` +
        'its deadline and TTL remove it',
    ),
  ];
}
