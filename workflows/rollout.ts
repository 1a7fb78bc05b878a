// The rollout workflow: a thin Temporal driver over the rollout machine (workflows/machine/). It checks the input,
// decides the patches once, and hands the machine its state, its context and the port that carries out its commands
// with activities and timers (workflows/driver.ts); messages go to the machine through workflows/handlers.ts.
import { ApplicationFailure, patched, workflowInfo } from '@temporalio/workflow';
import type { RolloutInput } from './api';
import { TemporalPort } from './driver';
import { setRolloutHandlers } from './handlers';
import { runRollout } from './machine/ending';
import { RolloutMachine } from './machine/machine';
import { initialState, migrateCarried, type RolloutState } from './machine/state';
import { metricsOfferProblems } from './metrics-offer';
import { mirrorRouterProblems } from './mirror-spec';
import { loadTargetProblems } from './plan-load';
import {
  ALERTS_PATCH,
  FLEET_PATCH,
  JUDGE_PATCH,
  MACHINE_V2_PATCH,
  METRICS_OFFER_PATCH,
  NEVER_STUCK_PATCH,
  PAUSE_HOLDS_PATCH,
  PLAN_LIMITS_PATCH,
  QUEUE_ALERTS_PATCH,
  STRICT_PLAN_PATCH,
  TARGET_PATCH,
} from './patches';
import { formatProblems, validatePlan } from './plan';
import { RELEASE_ID_PREFIX, releaseIdentity } from './release-model';
import { formatTargetProblems, validateTarget, versionProblem, type Target } from './target';
import type { RolloutResult } from './types';

export * from './patches';
export { analysisWindowSeconds } from './machine/context';

const DEFAULT_CONTINUE_AS_NEW_AFTER_EVENTS = 4000;

export async function canaryRollout(input: RolloutInput): Promise<RolloutResult> {
  // Rollouts started before whole-percent weights, size bounds and the version rule validate by the rules they
  // started with.
  // A continued run keeps the rules its rollout started with (a worker upgrade between runs must not refuse
  // a plan the first run accepted); runs carried before the rules were recorded decide as they did.
  const carried = migrateCarried(input.carried);
  const carriedRules = carried?.planRules;
  const strict = carriedRules?.strict ?? patched(STRICT_PLAN_PATCH);
  const limits = carriedRules?.limits ?? (carried === undefined && strict && patched(PLAN_LIMITS_PATCH));
  const validation = validatePlan(input.plan, { strict, limits });
  if (!validation.ok) {
    // The client validates first; this guards direct starts. Nothing has been touched yet.
    throw ApplicationFailure.nonRetryable(formatProblems(validation.problems), 'InvalidPlan');
  }
  const plan = validation.plan;
  // Rollouts started before targets carried a router are only {app, namespace}: the worker's defaults apply.
  const legacyTarget = Object.keys(input.target).every((k) => k === 'app' || k === 'namespace');
  const targetCheck = legacyTarget
    ? { ok: true as const, target: { app: input.target.app, namespace: input.target.namespace } }
    : validateTarget(input.target);
  if (!targetCheck.ok) {
    throw ApplicationFailure.nonRetryable(formatTargetProblems(targetCheck.problems), 'InvalidTarget');
  }
  const target: Target = targetCheck.target;
  // Checks the target's metrics provider cannot measure are refused before anything is touched (the client
  // refuses them first; this guards direct starts). Only for new rollouts: a continued run passed this already.
  if (carried === undefined && patched(METRICS_OFFER_PATCH)) {
    const unmeasurable = metricsOfferProblems(plan, target);
    if (unmeasurable.length > 0) {
      throw ApplicationFailure.nonRetryable(formatProblems(unmeasurable), 'InvalidPlan');
    }
  }
  // A shadow stage needs a router that can mirror. Plans without one (every recorded rollout) find nothing here.
  const cannotMirror =
    carried === undefined
      ? [...mirrorRouterProblems(plan, target.traffic?.router), ...loadTargetProblems(plan.load, target)]
      : [];
  if (cannotMirror.length > 0) {
    throw ApplicationFailure.nonRetryable(formatProblems(cannotMirror), 'InvalidPlan');
  }
  const badVersion = strict ? versionProblem(input.version) : undefined;
  if (badVersion) throw ApplicationFailure.nonRetryable(badVersion, 'InvalidVersion');
  const info = workflowInfo();
  const routingLifecycle = patched(TARGET_PATCH);
  // Only plans in the full analysis form change judge; short-form plans keep the original one.
  const judgeV2 = plan.analysis.rules !== undefined && patched(JUDGE_PATCH);
  const alertsV2 = patched(ALERTS_PATCH);
  // How the suggested commands spell the CLI: as the CLI that started the rollout was run.
  const cli =
    typeof input.cli === 'string' && /^[\w@%+=:,./ '-]{1,200}$/.test(input.cli) ? input.cli : 'canary';
  const s: RolloutState = carried ?? initialState();
  s.planRules ??= { strict, limits };
  // Decided once, by the first run; a run continued from a rollout that started before it keeps the old behaviour.
  if (carried === undefined) s.neverStuck = patched(NEVER_STUCK_PATCH);
  if (carried === undefined) s.machineV2 = patched(MACHINE_V2_PATCH);
  if (carried === undefined) s.fleet = patched(FLEET_PATCH);
  if (carried === undefined) s.queueAlerts = patched(QUEUE_ALERTS_PATCH);
  if (carried === undefined) s.pauseHolds = patched(PAUSE_HOLDS_PATCH);
  if (s.neverStuck) s.touched ??= {};
  const machine = new RolloutMachine(
    s,
    {
      plan,
      target,
      version: input.version,
      ...(input.image !== undefined ? { image: input.image } : {}),
      requestedBy: input.requestedBy,
      cli,
      workflowId: info.workflowId,
      firstRunId: info.firstExecutionRunId,
      temporalNamespace: info.namespace,
      flags: { routingLifecycle, judgeV2, alertsV2 },
      historyLimit: input.options?.continueAsNewAfterEvents ?? DEFAULT_CONTINUE_AS_NEW_AFTER_EVENTS,
      ...(input.release?.together
        ? { releaseTogether: { ...input.release.together, member: input.release.member } }
        : {}),
      ...(input.release ? { release: releaseOf(input.release) } : {}),
    },
    new TemporalPort(input, target, s),
  );
  setRolloutHandlers(machine);
  return runRollout(machine);
}

/** The release a member belongs to, from what its input carries (the release's workflow id names it). */
function releaseOf(r: NonNullable<RolloutInput['release']>): {
  name: string;
  identity: string;
  member: string;
} {
  const name =
    r.together?.name ??
    (r.workflowId.startsWith(RELEASE_ID_PREFIX)
      ? r.workflowId.slice(RELEASE_ID_PREFIX.length)
      : r.workflowId);
  return { name, identity: r.together?.identity ?? releaseIdentity(name), member: r.member };
}
