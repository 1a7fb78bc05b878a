// The walk's order, as the playbook reads: the preflight, the canary (once the fleet lets it and no pause holds it),
// the `before` hooks, then for each stage its gate, window, fleet, `beforeStage` hooks and a pause, the stage entered
// and held (its load on meanwhile), its `afterStage` hooks; then the promotion gate, window, fleet, `beforePromotion`
// hooks and a pause. `walkNext` says which part comes next after the one just done, from the state alone (and
// whether a pause was waited out); the walk (walk.ts) carries each part out and asks again. Also what the first
// steps are and what their answers mean. Pure: no port, no Temporal, no await.
import type { HookPoint } from '../plan-hooks';
import { describePlan } from '../plan';
import type { PreflightFinding } from '../types';
import type { StepCommand, StepResult } from './port';
import type { WalkCommand } from './walk-steps';
import { newWait } from './walk-steps';
import type { RolloutView } from './views';

/** Where the walk is: the part just done (or `start`). */
export type WalkAt =
  | 'start'
  | 'preflight'
  | 'canaryFleet'
  | 'canaryResume'
  | 'canaryFleetHold'
  | 'canary'
  | 'beforeHooks'
  | 'gate'
  | 'stageWindow'
  | 'stageFleet'
  | 'stageHooks'
  | 'stageResume'
  | 'stageResumeWindow'
  | 'stageResumeFleetHold'
  | 'enterStage'
  | 'startLoad'
  | 'hold'
  | 'stopLoad'
  | 'afterHooks'
  | 'nextStage'
  | 'promotionGate'
  | 'promotionGatePassed'
  | 'promotionWindow'
  | 'promotionFleet'
  | 'promotionHooks'
  | 'promotionResume'
  | 'promotionResumeWindow'
  | 'promotionResumeFleetHold';

/** A part of the walk, carried out by walk.ts. */
export type WalkPart =
  /** Whether this worker can drive this target with this plan (never-stuck), read-only. */
  | { do: 'preflight' }
  /** Ask the fleet workflows (and before the canary, for a slot), then wait while they hold the rollout. */
  | { do: 'askFleet'; isPromotion: boolean; slot: boolean }
  /** Wait while a freeze or the queue holds the rollout (no ask). */
  | { do: 'fleetHold'; isPromotion: boolean; beforeCanary: boolean }
  /** Wait for a resume while paused (pause-holds-advance); its answer says whether it waited. */
  | { do: 'resume' }
  /** The rollout_started alert, the canary deployed and the router prepared. */
  | { do: 'canary' }
  | { do: 'hooks'; point: Extract<HookPoint, 'before' | 'beforeStage' | 'afterStage' | 'beforePromotion'> }
  /** The current gate: a stage's, or the promotion gate. */
  | { do: 'gate' }
  | { do: 'window'; isPromotion: boolean }
  | { do: 'enterStage' }
  | { do: 'startLoad' }
  | { do: 'hold' }
  | { do: 'stopLoad'; why: string }
  /** Status published after the state changed (the next stage, the promotion gate passed). */
  | { do: 'publish' }
  /** The walk is over: promotion comes next (ending.ts). */
  | { do: 'end' };

export interface WalkStep {
  at: WalkAt;
  part: WalkPart;
}

/** Whether the current stage is the final one (entering it obeys the windows as promotion does). */
function isLast(v: RolloutView): boolean {
  return v.s.stageIndex === v.plan.stages.length - 1;
}

/**
 * The part that comes after `at` (`waited`: whether the resume wait just done waited). Updates `view.s` in place
 * where the walk moves on: `s.skippedFrom` when a promote skips stages, the next stage (`s.stageIndex`,
 * `s.stageEntered`, a new gate wait), and the promotion gate's `s.promotionGate` (`waiting`, then `passed`).
 */
export function walkNext(v: RolloutView, at: WalkAt, waited = false): WalkStep {
  const s = v.s;
  const promote = s.promoteRequest !== undefined;
  switch (at) {
    case 'start':
      // The canary is deployed (after the preflight, from never-stuck on) and the router prepared, once.
      if (s.canaryReady) return walkNext(v, 'canary');
      if (s.neverStuck && !s.preflight) return { at: 'preflight', part: { do: 'preflight' } };
      return walkNext(v, 'preflight');
    case 'preflight':
      // A freeze holds a new rollout before its canary is deployed: nothing new goes out; nor while it is paused.
      return { at: 'canaryFleet', part: { do: 'askFleet', isPromotion: false, slot: true } };
    case 'canaryFleet':
    case 'canaryFleetHold':
      return { at: 'canaryResume', part: { do: 'resume' } };
    case 'canaryResume':
      return waited
        ? { at: 'canaryFleetHold', part: { do: 'fleetHold', isPromotion: false, beforeCanary: true } }
        : { at: 'canary', part: { do: 'canary' } };
    case 'canary':
      // The plan's `before` hooks: the canary runs, no traffic has moved yet (once: only before the first stage).
      if (s.stageIndex === 0 && !s.stageEntered)
        return { at: 'beforeHooks', part: { do: 'hooks', point: 'before' } };
      return walkNext(v, 'beforeHooks');
    case 'beforeHooks':
    case 'nextStage':
      // A run continued at the promotion gate (or past it) has walked every stage already.
      if (s.promotionGate !== undefined) return afterStages(v);
      if (s.stageEntered) return { at: 'startLoad', part: { do: 'startLoad' } };
      return { at: 'gate', part: { do: 'gate' } };
    case 'gate':
      if (promote) return walkNext(v, 'stageWindow');
      return { at: 'stageWindow', part: { do: 'window', isPromotion: isLast(v) } };
    case 'stageWindow':
      if (promote) return walkNext(v, 'stageFleet');
      return { at: 'stageFleet', part: { do: 'askFleet', isPromotion: false, slot: false } };
    case 'stageFleet':
      if (promote) return walkNext(v, 'stageHooks');
      return { at: 'stageHooks', part: { do: 'hooks', point: 'beforeStage' } };
    case 'stageHooks':
    case 'stageResumeFleetHold':
      // A pause holds the stage; after it, the windows and the fleet are asked again.
      if (!promote) return { at: 'stageResume', part: { do: 'resume' } };
      return enterOrSkip(v);
    case 'stageResume':
      if (!waited) return enterOrSkip(v);
      return { at: 'stageResumeWindow', part: { do: 'window', isPromotion: isLast(v) } };
    case 'stageResumeWindow':
      if (promote) return walkNext(v, 'stageResumeFleetHold');
      return {
        at: 'stageResumeFleetHold',
        part: { do: 'fleetHold', isPromotion: false, beforeCanary: false },
      };
    case 'enterStage':
      return { at: 'startLoad', part: { do: 'startLoad' } };
    case 'startLoad':
      return { at: 'hold', part: { do: 'hold' } };
    case 'hold':
      return { at: 'stopLoad', part: { do: 'stopLoad', why: `stage ${s.stageIndex + 1} ended` } };
    case 'stopLoad':
      if (promote) return walkNext(v, 'afterHooks');
      return { at: 'afterHooks', part: { do: 'hooks', point: 'afterStage' } };
    case 'afterHooks':
      if (promote) s.skippedFrom = s.stageIndex + 1;
      if (promote || isLast(v)) return afterStages(v);
      s.stageIndex++;
      s.stageEntered = false;
      newWait(v);
      return { at: 'nextStage', part: { do: 'publish' } };
    case 'promotionGate':
      s.promotionGate = 'passed';
      return { at: 'promotionGatePassed', part: { do: 'publish' } };
    case 'promotionGatePassed':
      // Promotion obeys the windows too, unless the plan says `promotion: any`.
      return { at: 'promotionWindow', part: { do: 'window', isPromotion: true } };
    case 'promotionWindow':
      return { at: 'promotionFleet', part: { do: 'askFleet', isPromotion: true, slot: false } };
    case 'promotionFleet':
      return { at: 'promotionHooks', part: { do: 'hooks', point: 'beforePromotion' } };
    case 'promotionHooks':
    case 'promotionResumeFleetHold':
      return { at: 'promotionResume', part: { do: 'resume' } };
    case 'promotionResume':
      if (!waited) return { at: 'promotionResume', part: { do: 'end' } };
      return { at: 'promotionResumeWindow', part: { do: 'window', isPromotion: true } };
    case 'promotionResumeWindow':
      return {
        at: 'promotionResumeFleetHold',
        part: { do: 'fleetHold', isPromotion: true, beforeCanary: false },
      };
  }
}

/** Before a stage is entered: a promote asked skips the rest of the stages (sets `s.skippedFrom`). */
function enterOrSkip(v: RolloutView): WalkStep {
  const s = v.s;
  if (s.promoteRequest === undefined) return { at: 'enterStage', part: { do: 'enterStage' } };
  s.skippedFrom = s.stageIndex;
  return afterStages(v);
}

/**
 * After the stages: the prompt before promotion (`promotion.gate`), once the final stage has served its hold with
 * evidence (sets `s.promotionGate` to `waiting` with a new wait, once). A person's promotion request is that
 * approval already.
 */
function afterStages(v: RolloutView): WalkStep {
  const { s, plan } = v;
  if (plan.promotion.gate && s.promoteRequest === undefined && s.promotionGate !== 'passed') {
    if (s.promotionGate === undefined) {
      s.promotionGate = 'waiting';
      newWait(v);
    }
    return { at: 'promotionGate', part: { do: 'gate' } };
  }
  return walkNext(v, 'promotionGatePassed');
}

// ---------- the first steps ----------

/** The preflight begins: status says it runs (sets `s.preflight`). */
export function preflightStarts(v: RolloutView): WalkCommand[] {
  v.s.preflight = { state: 'running', findings: [] };
  return [{ type: 'publish' }];
}

export function preflightStep(v: RolloutView): StepCommand<'preflight'> {
  const { ctx } = v;
  return {
    policy: 'preflight',
    step: 'preflight',
    summary: `preflight: can this worker roll ${ctx.version} out to ${ctx.target.namespace}/${ctx.target.app}?`,
    args: [
      {
        target: ctx.target,
        plan: v.plan,
        version: ctx.version,
        ...(ctx.image ? { image: ctx.image } : {}),
      },
    ],
  };
}

/**
 * What the preflight found (its report, or the error it could not run with): recorded in `s.preflight` (and
 * `s.requireVerified` when the report demands it). Every refusal is listed at once; any refusal ends the rollout as
 * not started, before anything is touched.
 */
export function preflightFindings(
  v: RolloutView,
  answer: { report: StepResult<'preflight'> } | { error: string },
): { commands: WalkCommand[]; notStarted: boolean } {
  const s = v.s;
  let findings: PreflightFinding[];
  let tookMs: number | undefined;
  if ('report' in answer) {
    findings = answer.report.findings;
    tookMs = answer.report.tookMs;
    if (answer.report.requireVerified) s.requireVerified = true;
  } else {
    findings = [
      {
        area: 'cluster',
        cause: 'infrastructure',
        level: 'refuse',
        message: `the preflight could not run on the worker: ${answer.error}`,
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
  return { commands: [{ type: 'publish' }], notStarted: refusals.length > 0 };
}

/** The rollout starts: status, and the rollout_started alert with the plan and the preflight's warnings. */
export function rolloutStarted(v: RolloutView): WalkCommand[] {
  const { s, ctx } = v;
  const warnings = (s.preflight?.findings ?? []).filter((f) => f.level === 'warn');
  return [
    { type: 'publish' },
    {
      type: 'alert',
      kind: 'rollout_started',
      severity: 'info',
      fromHandler: false,
      message:
        `${v.label()} rollout started by ${ctx.requestedBy}: ${describePlan(v.plan)}` +
        (warnings.length > 0 ? `. Preflight warnings: ${warnings.map((f) => f.message).join('; ')}` : ''),
    },
  ];
}

export function canaryStep(v: RolloutView): StepCommand<'prepareCanary'> {
  const { ctx } = v;
  return {
    policy: 'step',
    step: 'prepareCanary',
    summary: `deploy canary ${ctx.version}`,
    workloadWait: ctx.flags.routingLifecycle,
    args: [{ target: ctx.target, version: ctx.version, image: ctx.image }],
  };
}

/** The canary is deployed: the version stable runs, when the step could tell (sets `s.stableVersion`). */
export function canaryDeployed(v: RolloutView, answer: StepResult<'prepareCanary'>): void {
  if (answer?.stableVersion) v.s.stableVersion = answer.stableVersion;
}

/** The router prepared for both versions (routing lifecycles only), once the canary is deployed. */
export function routingStep(v: RolloutView): StepCommand<'prepareRouting'> | undefined {
  const { s, ctx } = v;
  if (!ctx.flags.routingLifecycle) return undefined;
  return {
    policy: 'step',
    step: 'prepareRouting',
    summary: `prepare ${v.routerName()} routing`,
    args: [
      {
        target: ctx.target,
        versions: { ...(s.stableVersion ? { stable: s.stableVersion } : {}), canary: ctx.version },
      },
    ],
  };
}
