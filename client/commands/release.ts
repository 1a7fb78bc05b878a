// `canary release ...`: one canary across several services (workflows/release.ts). validate and start read a release
// file; the other commands act on every member of a running release; approve --member answers one member's gate.
import type { Command } from 'commander';
import { WorkflowExecutionAlreadyStartedError, type WorkflowHandle } from '@temporalio/client';
import { SA_RELEASE } from '../../workflows/api';
import type { InputProblem } from '../../workflows/problems';
import {
  releaseAbortSignal,
  releaseContinueSignal,
  releasePauseSignal,
  releaseResumeSignal,
  releaseStatusQuery,
} from '../../workflows/release-api';
import {
  RELEASE_ID_PREFIX,
  RELEASE_WORKFLOW,
  releaseWorkflowId,
  type ReleaseResult,
  type ReleaseStatus,
} from '../../workflows/release-model';
import { InfrastructureError, RolloutInputError, RolloutNotFoundError } from '../errors';
import { prepareReleaseFile, type PreparedRelease } from '../release';
import type { RolloutClient } from '../rollout-client';
import type { CliContext } from './context';
import { json, outputOption, type OutputFormat } from './options';
import { registerReleaseBacktest } from './release-backtest';
import { EXIT_BAD_INPUT, EXIT_ROLLED_BACK, UsageError } from './usage';

export function registerRelease(program: Command, ctx: CliContext): void {
  const release = program
    .command('release')
    .description('one canary across several services: start, follow and act on every member at once');

  release
    .command('validate')
    .description('check a release file offline: its members, their order, waves, plans and targets')
    .requiredOption('-f, --file <file>', 'release file (YAML/JSON)')
    .addOption(outputOption())
    .action((opts: { file: string; output: OutputFormat }) => {
      const prepared = prepare(ctx, opts.file, opts.output);
      if (!prepared) return;
      const { input } = prepared;
      ctx.out(
        opts.output === 'json'
          ? json({ valid: true, release: input.release, members: input.members.map((m) => m.id) })
          : `Release ${input.release} is valid: ${input.members.length} members (${input.members.map((m) => `${m.id}${m.after.length ? ` after ${m.after.join(', ')}` : ''}, wave ${m.wave}`).join('; ')}), promotion ${input.promotion}, on failure ${input.onFailure}`,
      );
    });

  registerReleaseBacktest(release, ctx, prepare);

  release
    .command('start')
    .description('start a release: its members roll out in order, with one verdict')
    .requiredOption('-f, --file <file>', 'release file (YAML/JSON)')
    .option('--wait', 'wait for the outcome: exit 0 promoted, 1 rolled back')
    .option('--interval <duration>', 'with --wait: how often to poll', '2s')
    .addOption(outputOption())
    .action(async (opts: { file: string; wait?: boolean; output: OutputFormat }) => {
      const prepared = prepare(ctx, opts.file, opts.output);
      if (!prepared) return;
      const c = await ctx.connect();
      await requireWorkers(c, prepared);
      const handle = await startRelease(c, prepared);
      if (!opts.wait) {
        ctx.out(
          opts.output === 'json'
            ? json({ workflowId: prepared.workflowId, release: prepared.input.release })
            : `Started release ${prepared.input.release} (${prepared.workflowId}). Follow: ${ctx.self()} release status ${prepared.input.release}`,
        );
        return;
      }
      const result = (await handle.result()) as ReleaseResult;
      const status = await handle.query(releaseStatusQuery).catch(() => undefined);
      ctx.out(
        opts.output === 'json' ? json({ ...result, status }) : renderResult(prepared.input.release, result),
      );
      if (result.outcome !== 'promoted') ctx.exitCode = EXIT_ROLLED_BACK;
    });

  release
    .command('status')
    .description('a release as a tree: waves, members, each member stage, weight and last word')
    .argument('<release>', 'release name or workflow id')
    .addOption(outputOption())
    .action(async (ref: string, opts: { output: OutputFormat }) => {
      const c = await ctx.connect();
      const s = await releaseStatus(c, ref);
      ctx.out(opts.output === 'json' ? json(s) : renderStatus(s));
    });

  release
    .command('abort')
    .description('roll every member back (those that depend on others first)')
    .argument('<release>', 'release name or workflow id')
    .requiredOption('--reason <text>', 'why (recorded and alerted on every member)')
    .action(async (ref: string, opts: { reason: string }) => {
      if (opts.reason.trim() === '') throw new UsageError('--reason must not be empty');
      const c = await ctx.connect();
      const handle = await running(c, ref);
      await handle.signal(releaseAbortSignal, { identity: ctx.identity().name, reason: opts.reason });
      ctx.out(
        `Aborting release ${nameOf(ref)}: every member rolls back. Follow: ${ctx.self()} release status ${nameOf(ref)}`,
      );
    });

  for (const [verb, signal] of [
    ['pause', releasePauseSignal],
    ['resume', releaseResumeSignal],
  ] as const) {
    release
      .command(verb)
      .description(`${verb} every running member`)
      .argument('<release>', 'release name or workflow id')
      .option('--reason <text>', 'why (pause only)')
      .action(async (ref: string, opts: { reason?: string }) => {
        const c = await ctx.connect();
        if (verb === 'resume') {
          // A held release waits for a person's answer; a resume would let members go on with the hold still in place.
          const s = await releaseStatus(c, ref);
          if (s.phase === 'held') {
            throw new UsageError(
              `release ${s.release} is held, not paused: ${s.question ?? 'a member rolled back'}; answer it with ` +
                `${ctx.self()} release approve ${s.release} (go on without the members that rolled back) or ` +
                `${ctx.self()} release abort ${s.release} --reason ... (roll every member back)`,
            );
          }
        }
        const handle = await running(c, ref);
        await handle.signal(signal, {
          identity: ctx.identity().name,
          ...(opts.reason ? { reason: opts.reason } : {}),
        });
        ctx.out(`Asked every running member of release ${nameOf(ref)} to ${verb}.`);
      });
  }

  release
    .command('approve')
    .description(
      "with --member, answer one member's gate (a person's approval, with the member's own approval policy); " +
        'without, answer a release held by onFailure: rollback-member: go on without the members that rolled back',
    )
    .argument('<release>', 'release name or workflow id')
    .option('--member <id>', 'the member whose gate waits')
    .option('--stage <n>', 'the stage you mean (1-based)')
    .option('--comment <text>', 'recorded with the approval')
    .action((ref: string, opts: ApproveOptions) => approve(ctx, ref, opts));

  release
    .command('list')
    .description('releases, newest first')
    .addOption(outputOption())
    .action(async (opts: { output: OutputFormat }) => {
      const c = await ctx.connect();
      const rows: Array<{ release: string; workflowId: string; status: string; started: string }> = [];
      for await (const info of c.client.workflow.list({ query: `WorkflowType = '${RELEASE_WORKFLOW}'` })) {
        rows.push({
          release: info.workflowId.slice(RELEASE_ID_PREFIX.length),
          workflowId: info.workflowId,
          status: info.status.name,
          started: info.startTime.toISOString(),
        });
        if (rows.length >= 100) break;
      }
      ctx.out(
        opts.output === 'json'
          ? json(rows)
          : rows.length === 0
            ? 'No releases.'
            : rows.map((r) => `${r.release.padEnd(30)} ${r.status.padEnd(11)} ${r.started}`).join('\n'),
      );
    });
}

interface ApproveOptions {
  member?: string;
  stage?: string;
  comment?: string;
}

/** `release approve`: one member's gate (--member), or a held release's go-on-without (rollback-member). */
async function approve(ctx: CliContext, ref: string, opts: ApproveOptions): Promise<void> {
  const c = await ctx.connect();
  const s = await releaseStatus(c, ref);
  if (opts.member === undefined) {
    if (s.phase !== 'held') {
      throw new UsageError(
        `release ${s.release} is not held (${s.phase}): nothing to go on without; to answer a member's gate, name it with --member ID`,
      );
    }
    const handle = await running(c, ref);
    await handle.signal(releaseContinueSignal, {
      identity: ctx.identity().name,
      ...(opts.comment ? { comment: opts.comment } : {}),
    });
    ctx.out(
      `Release ${s.release} goes on without the members that rolled back (and those after them); the others resume.`,
    );
    return;
  }
  const m = s.members.find((x) => x.id === opts.member);
  if (!m) {
    throw new UsageError(
      `release ${s.release} has no member "${opts.member}" (members: ${s.members.map((x) => x.id).join(', ')})`,
    );
  }
  const record = await c.approve(m.workflowId, {
    identity: ctx.identity().name,
    ...(opts.stage ? { stage: Number(opts.stage) } : {}),
    ...(opts.comment ? { comment: opts.comment } : {}),
  });
  ctx.out(`Approved ${m.id} (${m.workflowId}) stage ${record.stage} as ${record.by}.`);
}

/** The release prepared, or undefined after printing every problem (exit 2); windows are checked as of `nowMs`. */
function prepare(
  ctx: CliContext,
  file: string,
  output: OutputFormat,
  nowMs = ctx.now().getTime(),
): PreparedRelease | undefined {
  const identity = ctx.identity().name;
  const r = prepareReleaseFile(file, {
    requestedBy: identity,
    nowMs,
    taskQueue: ctx.client?.taskQueue ?? ctx.env.TEMPORAL_TASK_QUEUE ?? 'canary-rollouts',
    cli: ctx.invocation(),
  });
  if (r.ok) return r.release;
  reportProblems(ctx, file, r.problems, output);
  return undefined;
}

function reportProblems(ctx: CliContext, file: string, problems: InputProblem[], output: OutputFormat): void {
  if (output === 'json') ctx.out(json({ valid: false, problems }));
  else
    ctx.err(
      `canary: error: release ${file} is invalid:\n${problems.map((p) => `  ${p.path}: ${p.message}`).join('\n')}`,
    );
  ctx.exitCode = EXIT_BAD_INPUT;
}

/** Every cluster a member names must have a worker polling its task queue, or nothing starts. */
async function requireWorkers(c: RolloutClient, prepared: PreparedRelease): Promise<void> {
  for (const { cluster, taskQueue } of prepared.clusterQueues) {
    const r = await c.client.workflowService.describeTaskQueue({
      namespace: c.namespace,
      taskQueue: { name: taskQueue },
    });
    if ((r.pollers ?? []).length === 0) {
      throw new InfrastructureError(
        `no worker serves cluster ${cluster}: nothing polls task queue ${taskQueue}; start that cluster's worker with TEMPORAL_TASK_QUEUE=${taskQueue}. Nothing was started.`,
      );
    }
  }
}

async function startRelease(c: RolloutClient, prepared: PreparedRelease): Promise<WorkflowHandle> {
  try {
    return await c.client.workflow.start(RELEASE_WORKFLOW, {
      taskQueue: c.taskQueue,
      workflowId: prepared.workflowId,
      args: [prepared.input],
      typedSearchAttributes: [{ key: SA_RELEASE, value: prepared.input.release }],
    });
  } catch (err) {
    if (err instanceof WorkflowExecutionAlreadyStartedError) {
      throw new RolloutInputError(
        `release ${prepared.input.release} is already running (${prepared.workflowId})`,
      );
    }
    throw new InfrastructureError(
      `cannot start release ${prepared.input.release}: ${(err as Error).message}`,
      { cause: err },
    );
  }
}

const nameOf = (ref: string) =>
  ref.startsWith(RELEASE_ID_PREFIX) ? ref.slice(RELEASE_ID_PREFIX.length) : ref;
const idOf = (ref: string) => (ref.startsWith(RELEASE_ID_PREFIX) ? ref : releaseWorkflowId(ref));

async function running(c: RolloutClient, ref: string): Promise<WorkflowHandle> {
  const handle = c.client.workflow.getHandle(idOf(ref));
  const d = await handle.describe().catch(() => undefined);
  if (!d)
    throw new RolloutNotFoundError(
      idOf(ref),
      `no release ${nameOf(ref)} (${idOf(ref)}); list releases with canary release list`,
    );
  if (d.status.name !== 'RUNNING') {
    throw new RolloutInputError(`release ${nameOf(ref)} is not running (${d.status.name.toLowerCase()})`);
  }
  return handle;
}

async function releaseStatus(c: RolloutClient, ref: string): Promise<ReleaseStatus> {
  const handle = c.client.workflow.getHandle(idOf(ref));
  try {
    return await handle.query(releaseStatusQuery);
  } catch (err) {
    const d = await handle.describe().catch(() => undefined);
    if (!d)
      throw new RolloutNotFoundError(
        idOf(ref),
        `no release ${nameOf(ref)} (${idOf(ref)}); list releases with canary release list`,
      );
    throw new InfrastructureError(`cannot read release ${nameOf(ref)}: ${(err as Error).message}`, {
      cause: err,
    });
  }
}

export function renderStatus(s: ReleaseStatus): string {
  const lines = [`Release ${s.release}: ${s.phase} (promotion ${s.promotion}, on failure ${s.onFailure})`];
  if (s.reason) lines.push(`  reason: ${s.reason}`);
  if (s.question) lines.push(`  waiting for a person: ${s.question}`);
  if (s.dropped?.length) lines.push(`  going on without: ${s.dropped.join(', ')}`);
  for (const c of s.clusters ?? []) {
    if (c.workers !== 'gone') continue;
    lines.push(
      `  cluster ${c.cluster}: no worker polls ${c.taskQueue}${c.lastSeen ? ` (last poll ${c.lastSeen})` : ''}; its members hold and nothing is promoted until one does`,
    );
  }
  for (const w of s.waves) {
    lines.push(
      `  wave ${w.wave}${w.bakeMs ? ` (bakes ${Math.round(w.bakeMs / 1000)} s)` : ''}${w.readyAt ? `, passed at ${w.readyAt}` : ''}`,
    );
    for (const id of w.members) {
      const m = s.members.find((x) => x.id === id)!;
      const where = m.stage !== undefined ? ` stage ${m.stage}/${m.stages}, weight ${m.weight ?? 0}%` : '';
      const after = m.after.length ? ` (after ${m.after.join(', ')})` : '';
      lines.push(
        `    ${m.id}${after}: ${m.state}${where}${m.reason ? ` — ${m.reason}` : ''}  [${m.workflowId}]`,
      );
    }
  }
  return lines.join('\n');
}

function renderResult(name: string, r: ReleaseResult): string {
  return r.outcome === 'promoted'
    ? `Release ${name} promoted: ${r.members
        .filter((m) => !r.dropped?.includes(m.id))
        .map((m) => m.id)
        .join(', ')}${r.dropped?.length ? ` (without ${r.dropped.join(', ')})` : ''}`
    : `Release ${name} rolled back: ${r.reason ?? ''}\n${r.members.map((m) => `  ${m.id}: ${m.state}${m.reason ? ` — ${m.reason}` : ''}`).join('\n')}`;
}
