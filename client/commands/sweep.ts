// `canary sweep`: returns traffic to stable for rollouts whose workflow no longer runs (terminated from the Web UI,
// timed out, or a lost history). It runs the sweeper workflow (workflows/sweep.ts) on the workers' task queue and
// waits for its answer; workers with CANARY_SWEEP_EVERY run the same workflow on a schedule.
import type { Command } from 'commander';
import { WorkflowIdConflictPolicy } from '@temporalio/client';
import { dnsLabelProblem } from '../../workflows/target';
import { SWEEP_WORKFLOW, type SweepInput, type SweepResult } from '../../workflows/sweep-model';
import { InfrastructureError } from '../errors';
import type { CliContext } from './context';
import { json, outputOption, type OutputFormat } from './options';
import { EXIT_INFRASTRUCTURE, UsageError } from './usage';

export function registerSweep(program: Command, ctx: CliContext): void {
  program
    .command('sweep')
    .description(
      'send traffic back to stable wherever a rollout left it but its workflow no longer runs (terminated, history lost)',
    )
    .option(
      '--namespace <namespace>',
      'only this Kubernetes namespace (repeatable; default: every namespace the worker may list)',
      (v: string, prev: string[] = []) => [...prev, v],
    )
    .option('--dry-run', 'only say what would be swept')
    .addOption(outputOption())
    .action(async (opts: { namespace?: string[]; dryRun?: boolean; output: OutputFormat }) => {
      for (const ns of opts.namespace ?? []) {
        const problem = dnsLabelProblem(ns);
        if (problem) throw new UsageError(`--namespace ${problem}`);
      }
      const who = ctx.identity();
      const c = await ctx.connect();
      const input: SweepInput = {
        requestedBy: who.name,
        ...(opts.namespace?.length ? { namespaces: opts.namespace } : {}),
        ...(opts.dryRun ? { dryRun: true } : {}),
      };
      let result: SweepResult;
      try {
        // One sweep at a time per task queue: a second `canary sweep` joins the running one.
        result = await c.client.workflow.execute(SWEEP_WORKFLOW, {
          taskQueue: c.taskQueue,
          workflowId: `canary-sweep.${c.taskQueue}${opts.dryRun ? '.dry-run' : ''}`,
          workflowIdConflictPolicy: WorkflowIdConflictPolicy.USE_EXISTING,
          workflowExecutionTimeout: '10 minutes',
          args: [input],
        });
      } catch (err) {
        throw new InfrastructureError(
          `the sweep did not finish: ${err instanceof Error ? (err.cause instanceof Error ? err.cause.message : err.message) : String(err)}` +
            ` (is a worker polling task queue ${c.taskQueue}? start one with npm run worker)`,
          { cause: err },
        );
      }
      ctx.out(opts.output === 'json' ? json(result) : renderSweep(result));
      if (result.swept.some((r) => r.error)) ctx.exitCode = EXIT_INFRASTRUCTURE;
    });
}

export function renderSweep(r: SweepResult): string {
  const lines = [
    `Looked at ${r.scanned} canar${r.scanned === 1 ? 'y' : 'ies'} with a rollout record; ` +
      (r.swept.length === 0
        ? 'nothing is stranded.'
        : `${r.swept.length} stranded${r.dryRun ? ' (dry run: nothing changed)' : ''}:`),
  ];
  for (const s of r.swept) {
    const where = `${s.target.namespace}/${s.target.app}`;
    const what = `canary ${s.weight ?? '?'}%, ${s.canaryReplicas} replica${s.canaryReplicas === 1 ? '' : 's'}`;
    lines.push(`  ${where} (${what}; workflow ${s.workflowId}: ${s.workflowStatus})`);
    if (r.dryRun)
      lines.push('    would: send traffic back to stable, scale the canary down, remove the routing setup');
    else if (s.error) lines.push(`    FAILED after [${s.steps.join('; ')}]: ${s.error}`);
    else lines.push(`    done: ${s.steps.join('; ')}`);
  }
  return lines.join('\n');
}
