// A start, validated once and offline: the plan, the target, whether the target's metrics provider can measure the
// plan, the version and who asks. `canary start` and RolloutClient.start both go through prepareStart, so what is
// refused, and how it is said, is the same whichever way a rollout is started. Pure: files are read (and clocks
// read) by the caller; the result is either everything a start sends or the problems, typed.
import { rolloutWorkflowId, type RolloutInput } from '../workflows/api';
import { metricsOfferProblems } from '../workflows/metrics-offer';
import { mirrorRouterProblems } from '../workflows/mirror-spec';
import { loadTargetProblems } from '../workflows/plan-load';
import { describePlan } from '../workflows/plan';
import type { InputProblem } from '../workflows/problems';
import type { Plan } from '../workflows/types';
import {
  describeTarget,
  validateTarget,
  versionProblem,
  type Target,
  type TargetSpec,
} from '../workflows/target';
import { RolloutInputError } from './errors';
import {
  PlanInvalidError,
  TargetInvalidError,
  validateLoadedPlan,
  type LoadedPlan,
  type ValidatedPlan,
} from './plan-file';

export interface StartSpec {
  /** The plan as read (a file, a preset, a plan object, a rollout's history), or as validateLoadedPlan returned it. */
  plan: LoadedPlan | ValidatedPlan;
  /** Refuse what is otherwise only warned about (`--strict`). */
  strict?: boolean;
  /** The time the plan's deployment windows must open soon after. */
  nowMs: number;
  /** The target as written, every source merged (flags over a target file over the plan's own `target:`). */
  target: TargetSpec;
  /** How target problems name where the target came from (default `target`). */
  targetSource?: string;
  version: string;
  image?: string;
  requestedBy: string;
  /** How the commands the rollout suggests spell the CLI; `canary` (the default) is not recorded. */
  cli?: string;
}

/** Everything a start sends, and what a person is shown about it. */
export interface PreparedStart {
  workflowId: string;
  input: RolloutInput;
  /** The validated plan, where it came from, and what it is only warned about. */
  plan: Plan;
  planSource: string;
  warnings: InputProblem[];
  target: Target;
  /** What the Web UI shows as the workflow's summary and details. */
  summary: string;
  details: string;
}

/** Why a start cannot be sent, by what is wrong. */
export type StartProblem =
  | { kind: 'plan'; source: string; problems: InputProblem[]; warnings: InputProblem[] }
  | { kind: 'target'; source: string; problems: InputProblem[] }
  /** Checks the target's metrics provider cannot measure (a query for the local stack, a past baseline...). */
  | { kind: 'unmeasurable'; problems: InputProblem[] }
  | { kind: 'version'; message: string }
  | { kind: 'requested-by'; message: string };

/** What is wrong with a start's target: the target itself, or checks its metrics provider cannot measure. */
export type TargetProblem = Extract<StartProblem, { kind: 'target' | 'unmeasurable' }>;

export type StartPreparation = { ok: true; start: PreparedStart } | { ok: false; problems: StartProblem[] };

/**
 * Validates a start: every problem that can be known without Temporal, in the order they are reported (the plan,
 * the target, what the target cannot measure, the version, who asks), or the start ready to send.
 */
export function prepareStart(spec: StartSpec): StartPreparation {
  const problems: StartProblem[] = [];
  const plan = checkPlan(spec);
  if (!plan.ok) problems.push(plan.problem);
  const target = checkStartTarget(plan.ok ? plan.plan.plan : undefined, spec.target, spec.targetSource);
  if (!target.ok) problems.push(...target.problems);
  const version = spec.version?.trim() ?? '';
  const badVersion = versionProblem(version);
  if (badVersion) problems.push({ kind: 'version', message: badVersion });
  const requestedBy = spec.requestedBy?.trim() ?? '';
  if (requestedBy === '') problems.push({ kind: 'requested-by', message: 'requestedBy is empty' });
  if (!plan.ok || !target.ok || problems.length > 0) return { ok: false, problems };

  const validated = plan.plan;
  const { app, namespace } = target.target;
  const input: RolloutInput = {
    target: { ...spec.target, app, namespace },
    version,
    ...(spec.image ? { image: spec.image } : {}),
    plan: validated.spec,
    requestedBy,
    ...(spec.cli && spec.cli !== 'canary' ? { cli: spec.cli } : {}),
  };
  const planName = validated.plan.name ? ` (plan ${validated.plan.name})` : '';
  return {
    ok: true,
    start: {
      workflowId: rolloutWorkflowId({ app, namespace }),
      input,
      plan: validated.plan,
      planSource: validated.source,
      warnings: validated.warnings,
      target: target.target,
      summary: `${namespace}/${app} → ${version}${planName}, by ${requestedBy}`,
      details:
        `Plan: ${describePlan(validated.plan)}\n\nTarget: ${describeTarget(target.target)}` +
        (spec.image ? `\n\nImage: ${spec.image}` : ''),
    },
  };
}

/**
 * The target checked for a start of `plan`: valid, and able to measure every check of the plan (without a plan,
 * only the target). `canary validate` checks a target with it too.
 */
export function checkStartTarget(
  plan: Plan | undefined,
  spec: TargetSpec,
  source = 'target',
): { ok: true; target: Target } | { ok: false; problems: TargetProblem[] } {
  const checked = validateTarget(spec);
  if (!checked.ok) return { ok: false, problems: [{ kind: 'target', source, problems: checked.problems }] };
  const unmeasurable = plan
    ? [
        ...metricsOfferProblems(plan, checked.target),
        ...mirrorRouterProblems(plan, checked.target.traffic?.router),
        ...loadTargetProblems(plan.load, checked.target),
      ]
    : [];
  if (unmeasurable.length > 0)
    return { ok: false, problems: [{ kind: 'unmeasurable', problems: unmeasurable }] };
  return { ok: true, target: checked.target };
}

/** The error a problem is thrown as: the same classes, and messages, as a start has always refused with. */
export function startProblemError(problem: StartProblem): Error {
  switch (problem.kind) {
    case 'plan':
      return new PlanInvalidError(problem.problems, problem.source, problem.warnings);
    case 'target':
      return new TargetInvalidError(problem.problems, problem.source);
    case 'unmeasurable':
      return new PlanInvalidError(problem.problems, 'plan');
    case 'version':
    case 'requested-by':
      return new RolloutInputError(problem.message);
  }
}

/** prepareStart, throwing the first problem as {@link startProblemError} does. */
export function prepareStartOrThrow(spec: StartSpec): PreparedStart {
  const prepared = prepareStart(spec);
  if (!prepared.ok) throw startProblemError(prepared.problems[0]);
  return prepared.start;
}

function isValidated(plan: LoadedPlan | ValidatedPlan): plan is ValidatedPlan {
  return 'plan' in plan && 'warnings' in plan;
}

/** The plan, validated here unless the caller already did (the CLI validates it before it reads the target). */
function checkPlan(
  spec: StartSpec,
): { ok: true; plan: ValidatedPlan } | { ok: false; problem: StartProblem } {
  if (isValidated(spec.plan)) return { ok: true, plan: spec.plan };
  try {
    return { ok: true, plan: validateLoadedPlan(spec.plan, { strict: spec.strict, nowMs: spec.nowMs }) };
  } catch (err) {
    if (!(err instanceof PlanInvalidError)) throw err;
    return {
      ok: false,
      problem: { kind: 'plan', source: err.source, problems: err.problems, warnings: err.warnings },
    };
  }
}
