// `canary validate`: checks a plan (and its target) offline, exactly as start does before it contacts Temporal.
// With --output json every refusal, commander's own included, is a `{ valid: false, problems }` document.
import type { Command } from 'commander';
import { describePlan } from '../../workflows/plan';
import { allHooks, describeHook } from '../../workflows/plan-hooks';
import type { InputProblem } from '../../workflows/problems';
import { describeTarget, type TargetSpec } from '../../workflows/target';
import { PlanInvalidError, loadAndValidatePlan, loadPlan, type ValidatedPlan } from '../plan-file';
import { checkStartTarget, startProblemError } from '../prepare-start';
import type { CliContext } from './context';
import {
  containerOption,
  json,
  outputOption,
  routerOptOption,
  routerOption,
  strictOption,
  targetFileOption,
  targetFromOptions,
  underTarget,
  workloadOption,
  type OutputFormat,
  type TargetOptions,
} from './options';
import { EXIT_BAD_INPUT } from './usage';

type ValidateOptions = TargetOptions & { plan: string; strict?: boolean; output: OutputFormat };

export function registerValidate(program: Command, ctx: CliContext): void {
  program
    .command('validate')
    .description(
      'check a plan (and its target) offline, exactly as start does before contacting Temporal; never connects',
    )
    .requiredOption('--plan <file|preset>', 'plan file (YAML/JSON) or preset name')
    .addOption(targetFileOption())
    .option('--app <name>', "application (default: the target's app, else its workload name)")
    .option('--namespace <namespace>', "target namespace (default: the target's, else default)")
    .addOption(workloadOption())
    .addOption(containerOption())
    .addOption(routerOption())
    .addOption(routerOptOption())
    .addOption(strictOption())
    .addOption(outputOption())
    .action((opts: ValidateOptions) => validate(ctx, opts));
}

function validate(ctx: CliContext, opts: ValidateOptions): void {
  const asJson = opts.output === 'json';
  const targetGiven = (fromPlan?: TargetSpec): boolean =>
    fromPlan !== undefined ||
    [opts.target, opts.app, opts.namespace, opts.workload, opts.container, opts.router].some(
      (v) => v !== undefined,
    ) ||
    Boolean(opts.routerOpt?.length);
  const invalid = (problems: InputProblem[], warnings: InputProblem[]): void => {
    ctx.out(json({ valid: false, problems, warnings }));
    ctx.exitCode = EXIT_BAD_INPUT;
  };

  let loaded: ValidatedPlan;
  try {
    loaded = loadAndValidatePlan(opts.plan, { strict: Boolean(opts.strict), nowMs: ctx.now().getTime() });
  } catch (e) {
    if (!asJson || !(e instanceof PlanInvalidError)) throw e; // the same messages as start
    // List the target's problems too, so one run shows everything to fix.
    const problems: InputProblem[] = [...e.problems];
    try {
      const fromPlan = loadPlan(opts.plan).target;
      if (targetGiven(fromPlan)) {
        const checked = checkStartTarget(undefined, targetFromOptions(opts, fromPlan));
        if (!checked.ok) problems.push(...underTarget(checked.problems[0].problems));
      }
    } catch {
      // A target that cannot even be read is reported once the plan is fixed.
    }
    return invalid(problems, e.warnings);
  }
  if (!asJson) ctx.warnAbout(loaded);

  if (!targetGiven(loaded.target)) {
    // No target anywhere: start takes it from its flags and the worker's defaults, so only the plan counts.
    if (asJson) {
      ctx.out(json({ valid: true, plan: loaded.plan, warnings: loaded.warnings }));
    } else {
      ctx.out(`Plan ${loaded.source} is valid: ${describePlan(loaded.plan)}`);
      for (const h of allHooks(loaded.plan.hooks)) ctx.out(`  hook ${describeHook(h)}`);
      ctx.out(
        "Target: none given; start takes it from its flags (--app, --target, ...) and the worker's defaults",
      );
    }
    return;
  }
  // The target, and the plan as the target's metrics provider can measure it, as start checks them.
  const checked = checkStartTarget(
    loaded.plan,
    targetFromOptions(opts, loaded.target),
    opts.target ?? loaded.source,
  );
  if (!checked.ok) {
    const [problem] = checked.problems;
    if (problem.kind === 'target') {
      if (asJson) return invalid(underTarget(problem.problems), loaded.warnings);
      throw startProblemError(problem);
    }
    if (asJson) return invalid(problem.problems, loaded.warnings);
    throw new PlanInvalidError(problem.problems, loaded.source);
  }
  if (asJson) {
    ctx.out(json({ valid: true, plan: loaded.plan, target: checked.target, warnings: loaded.warnings }));
  } else {
    ctx.out(`Plan ${loaded.source} is valid: ${describePlan(loaded.plan)}`);
    for (const h of allHooks(loaded.plan.hooks)) ctx.out(`  hook ${describeHook(h)}`);
    ctx.out(`Target: ${describeTarget(checked.target)}`);
  }
}
