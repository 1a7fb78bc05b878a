// The typed client CI scripts import (re-exported by client/index.ts): start, follow and steer rollouts. Every method
// takes either a workflow id (`canary.prod.checkout`) or a target (`prod/checkout`).
import {
  Client,
  Connection,
  QueryNotRegisteredError,
  WorkflowExecutionAlreadyStartedError,
  WorkflowFailedError,
  WorkflowNotFoundError,
  WorkflowUpdateFailedError,
  type WorkflowExecutionDescription,
  type WorkflowExecutionInfo,
} from '@temporalio/client';
import {
  DEFAULT_TASK_QUEUE,
  SA_APP,
  SA_RELEASE,
  SA_PHASE,
  SA_STAGE,
  SA_VERSION,
  SA_WEIGHT,
  WORKFLOW_TYPE,
  abortSignal,
  abortUpdate,
  approveUpdate,
  pauseUpdate,
  promoteUpdate,
  resolveUpdate,
  resumeUpdate,
  legacyRolloutWorkflowId,
  targetOfWorkflowId,
  statusQuery,
  type PauseAck,
  type RolloutInput,
} from '../workflows/api';
import { TERMINAL_PHASES } from '../workflows/types';
import type { ApprovalRecord, ResolveRecord, RolloutStatus, RolloutTarget } from '../workflows/types';
import type { PlanSpec } from '../workflows/plan';
import { describePlan, validatePlan } from '../workflows/plan';
import type { TargetSpec } from '../workflows/target';
import { ConfigError, loadConnectionConfig, type ConnectionConfig } from '../connection/config';
import { ConnectError, connectClient, connectionOptions, tlsMismatch } from '../connection/temporal';
import {
  InfrastructureError,
  RolloutConflictError,
  RolloutError,
  RolloutInputError,
  RolloutNotFoundError,
  RolloutNotStartedError,
  RolloutRejectedError,
} from './errors';
import { resolveRolloutId, rolloutUiUrl } from './ids';
import { signatureFor, type Signer } from './sign';
import type { SignedAction } from '../workflows/identity';
import { outcomeResult, rolloutResult, statusFromResult } from './outcome';
import { loadPlan, type LoadedPlan } from './plan-file';
import { prepareStartOrThrow, type PreparedStart } from './prepare-start';
import {
  GRPC_INVALID_ARGUMENT,
  GRPC_UNAVAILABLE,
  grpcCode,
  innermostMessage,
  queryValue,
  sleep,
  wrapRpcError,
} from './rpc';
import type {
  AbortResult,
  ListFilter,
  RolloutClientOptions,
  RolloutSummary,
  StartRolloutRequest,
  StartRolloutResult,
  WaitOptions,
} from './types';

/** How long a single call (query, update, start) may take before it counts as an infrastructure failure. */
export const DEFAULT_RPC_TIMEOUT_MS = 30_000;
export const DEFAULT_POLL_MS = 2_000;
/** How long a start waits for a promoted rollout it hands over to finish (stable's own rollout takes time). */
export const HANDOVER_TIMEOUT_MS = 15 * 60_000;

export class RolloutClient {
  readonly namespace: string;
  readonly taskQueue: string;
  readonly address?: string;
  private readonly rpcTimeoutMs: number;
  private readonly ownsConnection: boolean;
  /** The CLI as messages spell it (settable: the CLI sets its own invocation once connected). */
  cli: string;

  constructor(
    readonly client: Client,
    options: RolloutClientOptions = {},
  ) {
    const clientNamespace = client.options.namespace;
    if (options.namespace !== undefined && options.namespace !== clientNamespace) {
      throw new RolloutInputError(
        `namespace "${options.namespace}" differs from the client's namespace "${clientNamespace}"`,
      );
    }
    this.namespace = clientNamespace;
    this.taskQueue = options.taskQueue ?? DEFAULT_TASK_QUEUE;
    this.address = options.address;
    this.rpcTimeoutMs = options.rpcTimeoutMs ?? DEFAULT_RPC_TIMEOUT_MS;
    this.ownsConnection = options.ownsConnection ?? false;
    this.cli = options.cliName ?? 'canary';
  }

  /** Connects with the worker's connection settings (TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_TASK_QUEUE, TLS...). */
  static async connect(
    config: ConnectionConfig = loadConnectionConfig(process.env),
    options: Pick<RolloutClientOptions, 'rpcTimeoutMs'> & {
      /** How long to try to reach the server (default: connectClient's, 10 s). */
      connectTimeoutMs?: number;
    } = {},
  ): Promise<RolloutClient> {
    const { connectTimeoutMs, ...rest } = options;
    let client: Client;
    try {
      if (connectTimeoutMs === undefined) {
        client = await connectClient(config);
      } else {
        // Same options as connectClient, only the timeout differs.
        const connection = await Connection.connect({
          ...connectionOptions(config),
          connectTimeout: connectTimeoutMs,
        }).catch(async (err: unknown) => {
          throw new ConnectError(config.address, err, await tlsMismatch(config));
        });
        client = new Client({ connection, namespace: config.namespace });
      }
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      // The server answered in the other security mode: the settings are wrong, retrying cannot help.
      if (err instanceof ConnectError && err.tlsMismatch) {
        throw new ConfigError([{ variable: 'TEMPORAL_TLS', problem: err.message }]);
      }
      throw new InfrastructureError(
        err instanceof ConnectError || message.includes(config.address)
          ? message
          : `cannot reach Temporal at ${config.address}: ${message}`,
        { cause: err, transient: true },
      );
    }
    return new RolloutClient(client, {
      namespace: config.namespace,
      taskQueue: config.taskQueue,
      address: config.address,
      ownsConnection: true,
      ...rest,
    });
  }

  /** Closes the connection when this object opened it. */
  async close(): Promise<void> {
    if (this.ownsConnection) await this.client.connection.close();
  }

  /**
   * The workflow id a reference names. `namespace/app` names the rollout of that target: its id under the
   * current scheme, or, when only a rollout started by an older client exists, its legacy id (checked against
   * the app search attribute, so another target's rollout is never picked). Anything else is a workflow id.
   */
  async locate(ref: string): Promise<string> {
    const workflowId = resolveRolloutId(ref);
    const target = ref.includes('/') ? targetOfWorkflowId(workflowId) : undefined;
    if (!target) return workflowId;
    if (await this.exists(workflowId)) return workflowId;
    const legacy = legacyRolloutWorkflowId(target);
    const info = await this.describeIfAny(legacy);
    if (info && info.typedSearchAttributes.get(SA_APP) === target.app) return legacy;
    return workflowId;
  }

  private async exists(workflowId: string): Promise<boolean> {
    return (await this.describeIfAny(workflowId)) !== undefined;
  }

  private async describeIfAny(workflowId: string): Promise<WorkflowExecutionDescription | undefined> {
    try {
      return await this.rpc(() => this.client.workflow.getHandle(workflowId).describe());
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) return undefined;
      throw this.wrap(err, `describe rollout ${workflowId}`);
    }
  }

  uiUrl(ref: string, env?: NodeJS.ProcessEnv): string | undefined {
    return rolloutUiUrl(resolveRolloutId(ref), { address: this.address, namespace: this.namespace, env });
  }

  // ------------------------------------------------------------------------------------------- start

  /**
   * Starts a rollout, idempotently per target: the same version already running is returned with
   * `started: false`; another version running throws {@link RolloutConflictError}. The plan is
   * resolved and validated first; nothing is sent to Temporal when it is invalid.
   */
  async start(request: StartRolloutRequest): Promise<StartRolloutResult> {
    const loaded: LoadedPlan =
      typeof request.plan === 'string'
        ? loadPlan(request.plan)
        : { spec: request.plan, source: 'plan object' };
    const target: TargetSpec = { ...(request.target ?? loaded.target ?? {}) };
    if (request.app !== undefined) target.app = request.app.trim();
    if (request.namespace !== undefined) target.namespace = request.namespace.trim();
    const prepared = prepareStartOrThrow({
      plan: loaded,
      strict: request.strict === true,
      nowMs: Date.now(),
      target,
      version: request.version,
      ...(request.image ? { image: request.image } : {}),
      requestedBy: request.requestedBy,
      ...(request.cli ? { cli: request.cli } : {}),
    });
    return this.startPrepared(prepared, request.onHandover ? { onHandover: request.onHandover } : {});
  }

  /**
   * Starts a rollout {@link prepareStart} validated (as {@link start}, which prepares its request first): nothing
   * is checked again.
   */
  async startPrepared(
    start: PreparedStart,
    options: Pick<StartRolloutRequest, 'onHandover'> = {},
  ): Promise<StartRolloutResult> {
    const { workflowId, input } = start;
    const { version, requestedBy } = input;
    const target: RolloutTarget = { app: input.target.app, namespace: input.target.namespace };
    // A rollout an older client started for this target, under the legacy id, is the one to answer for.
    const legacy = await this.runningRollout(legacyRolloutWorkflowId(target), target.app);
    if (legacy) {
      if (legacy.version === version) {
        await this.requireSameInput(legacy.workflowId, legacy.runId, start);
        return { workflowId: legacy.workflowId, runId: legacy.runId, started: false, version };
      }
      throw new RolloutConflictError(legacy.workflowId, legacy.runId, legacy.version, version, {
        cli: this.cli,
      });
    }

    // Two attempts: the running rollout may finish between the failed start and the describe.
    let handedOver = false;
    for (let attempt = 1; ; attempt++) {
      try {
        const handle = await this.rpc(() =>
          this.client.workflow.start(WORKFLOW_TYPE, {
            workflowId,
            taskQueue: this.taskQueue,
            args: [input],
            typedSearchAttributes: [
              { key: SA_APP, value: target.app },
              { key: SA_VERSION, value: version },
              { key: SA_PHASE, value: 'progressing' },
              { key: SA_STAGE, value: 0 },
              { key: SA_WEIGHT, value: 0 },
            ],
            workflowIdConflictPolicy: 'FAIL',
            workflowIdReusePolicy: 'ALLOW_DUPLICATE',
            staticSummary: start.summary,
            staticDetails: start.details,
          }),
        );
        return { workflowId, runId: handle.firstExecutionRunId, started: true, version };
      } catch (err) {
        if (!(err instanceof WorkflowExecutionAlreadyStartedError))
          throw this.wrap(err, `start rollout ${workflowId}`);
      }
      const running = await this.runningRollout(workflowId);
      if (running) {
        if (running.version === version) {
          await this.requireSameInput(workflowId, running.runId, start);
          return { workflowId, runId: running.runId, started: false, version };
        }
        const current = await this.status(workflowId).catch(() => undefined);
        if (current?.phase === 'promoted' && !handedOver) {
          // The way back (and forward) works at once: a promoted rollout that still soaks or cleans up hands over.
          const how = await this.handOver(workflowId, current, version, requestedBy, options.onHandover);
          if (how === 'went_back') {
            return { workflowId, runId: running.runId, started: false, version, wentBack: true };
          }
          handedOver = true;
          attempt = 0;
          continue;
        }
        throw new RolloutConflictError(workflowId, running.runId, running.version, version, {
          cli: this.cli,
          ...(current ? { running: current } : {}),
        });
      }
      if (attempt >= 3) {
        throw new InfrastructureError(
          `could not start ${workflowId}: it keeps being reported as already started`,
          {
            transient: true,
          },
        );
      }
    }
  }

  /**
   * A start while the target's last rollout is promoted but still running (soaking, or waiting out its cleanup
   * delay). A start of the version it replaced, which still runs beside it during a soak, goes back to it: traffic
   * returns in seconds and nothing new starts. A start of any other version first finishes that promotion now
   * (the soak, or the cleanup delay, ends early), then starts.
   */
  private async handOver(
    workflowId: string,
    current: RolloutStatus,
    version: string,
    by: string,
    say: ((message: string) => void) | undefined,
  ): Promise<'went_back' | 'finished'> {
    const handle = this.client.workflow.getHandle(workflowId);
    const ref = `${current.namespace}/${current.app}`;
    if (current.soak && current.soak.previousVersion === version) {
      say?.(
        `${ref}: ${current.version} is promoted and soaking while ${version} still runs beside it; going back to ` +
          `${version} (traffic returns in seconds; nothing new starts)`,
      );
      await this.rpc(() =>
        handle.signal(abortSignal, {
          identity: by,
          reason: `going back to ${version} (a start of ${version} by ${by})`,
        }),
      );
    } else if (current.soak) {
      say?.(
        `${ref}: ${current.version} is promoted and soaking; its soak ends now (stable takes ${current.version}, ` +
          `the canary goes), then ${version} starts`,
      );
      await this.update(workflowId, 'promote', () =>
        handle.executeUpdate(promoteUpdate, {
          args: [{ identity: by, comment: `a start of ${version} ends the soak`, endSoak: true }],
        }),
      );
    } else {
      // A cancel during the cleanup delay only shortens it (promotion itself cannot be cancelled).
      say?.(`${ref}: ${current.version} is promoted; its cleanup runs now, then ${version} starts`);
      await this.rpc(() => handle.cancel());
    }
    await this.awaitClosed(workflowId, HANDOVER_TIMEOUT_MS);
    return current.soak && current.soak.previousVersion === version ? 'went_back' : 'finished';
  }

  /** Polls until the workflow is no longer running; an InfrastructureError after `timeoutMs`. */
  private async awaitClosed(workflowId: string, timeoutMs: number): Promise<void> {
    const handle = this.client.workflow.getHandle(workflowId);
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const info = await this.rpc(() => handle.describe());
      if (info.status.name !== 'RUNNING') return;
      if (Date.now() >= deadline) {
        throw new InfrastructureError(
          `${workflowId} is still running after ${Math.round(timeoutMs / 60_000)} minutes of waiting for it to finish; ` +
            `follow it (${this.cli} status ${workflowId} --watch) and start again once it has ended`,
          { transient: true },
        );
      }
      await sleep(500);
    }
  }

  /**
   * An idempotent start is only one when the running rollout was started with the same plan and target: the
   * same version with another plan is refused, showing both, rather than answered as if the requested plan ran.
   */
  private async requireSameInput(workflowId: string, runId: string, start: PreparedStart): Promise<void> {
    const requested = start.input;
    const running = await this.startInput(workflowId, runId);
    if (!running) return; // The history cannot be read (e.g. archived): keep the version-only answer.
    const runningPlan = validatePlan(running.plan);
    const samePlan = runningPlan.ok && JSON.stringify(runningPlan.plan) === JSON.stringify(start.plan);
    const sameTarget =
      JSON.stringify(sortedKeys(running.target)) === JSON.stringify(sortedKeys(requested.target));
    if (samePlan && sameTarget) return;
    const show = (r: ReturnType<typeof validatePlan>) => (r.ok ? describePlan(r.plan) : 'an invalid plan');
    const differences = [
      ...(samePlan
        ? []
        : [`running plan: ${show(runningPlan)}`, `requested plan: ${describePlan(start.plan)}`]),
      ...(sameTarget
        ? []
        : [
            `running target: ${JSON.stringify(running.target)}`,
            `requested target: ${JSON.stringify(requested.target)}`,
          ]),
    ];
    throw new RolloutConflictError(workflowId, runId, requested.version, requested.version, {
      cli: this.cli,
      detail: differences.join('\n  '),
    });
  }

  /**
   * The `start` command that rolls the same target out again at `version`: `start --like` this rollout, which
   * reads its plan and target from the history. When the history cannot be read, that is said in words.
   */
  private async startCommandFor(workflowId: string, version: string): Promise<string> {
    const info = await this.describeIfAny(workflowId).catch(() => undefined);
    const input = info ? await this.startInput(workflowId, info.runId) : undefined;
    const t = input?.target;
    if (!t || typeof t.app !== 'string' || typeof t.namespace !== 'string')
      return `start it with this rollout's plan and target (its history cannot be read, so \`${this.cli} start --like\` cannot copy them)`;
    // --like reads the target and plan from this rollout's history: pasteable whatever the plan's source was.
    return `${this.cli} start --like ${t.namespace}/${t.app} --version ${version}`;
  }

  /**
   * What a rollout was started with: its target and plan as written, from the first event of its latest run (a
   * run continued as new carries both on). `canary start --like` reuses them, so rolling the same service out
   * again, or going back after a promotion, needs neither the plan file nor the target's flags.
   */
  async setupOf(
    ref: string,
  ): Promise<{ workflowId: string; runId: string; target: TargetSpec; plan: PlanSpec }> {
    const workflowId = await this.locate(ref);
    const info = await this.describeIfAny(workflowId);
    if (!info) throw new RolloutNotFoundError(workflowId, undefined, this.cli);
    if (info.type !== WORKFLOW_TYPE) {
      throw new RolloutNotFoundError(
        workflowId,
        `workflow "${workflowId}" is a ${info.type}, not a canary rollout; name a rollout (${this.cli} list shows them)`,
        this.cli,
      );
    }
    const input = await this.startInput(workflowId, info.runId);
    if (!input || typeof input.target !== 'object' || input.target === null || input.plan === undefined) {
      throw new RolloutInputError(
        `cannot read what rollout ${workflowId} was started with (its history is gone, e.g. past the namespace's retention); pass --plan and the target (--target FILE or --workload/--router) instead of --like`,
      );
    }
    return { workflowId, runId: info.runId, target: input.target, plan: input.plan };
  }

  /** The input the run was started with (the first event of its history), undefined when unreadable. */
  private async startInput(workflowId: string, runId: string): Promise<RolloutInput | undefined> {
    try {
      const res = await this.rpc(() =>
        this.client.workflowService.getWorkflowExecutionHistory({
          namespace: this.namespace,
          execution: { workflowId, runId },
          maximumPageSize: 1,
        }),
      );
      const payload = res.history?.events?.[0]?.workflowExecutionStartedEventAttributes?.input?.payloads?.[0];
      if (!payload) return undefined;
      return this.client.options.loadedDataConverter.payloadConverter.fromPayload<RolloutInput>(payload);
    } catch {
      return undefined;
    }
  }

  /**
   * How many workers polled the rollout task queue recently (the server remembers pollers for a few minutes),
   * or undefined when the server cannot say. A rollout on a queue nobody polls never moves.
   */
  async workersPolling(): Promise<number | undefined> {
    try {
      const res = await this.rpc(() =>
        this.client.workflowService.describeTaskQueue({
          namespace: this.namespace,
          taskQueue: { name: this.taskQueue, kind: 1 /* TASK_QUEUE_KIND_NORMAL */ },
          taskQueueType: 1 /* TASK_QUEUE_TYPE_WORKFLOW */,
        }),
      );
      return res.pollers?.length ?? 0;
    } catch {
      return undefined;
    }
  }

  /**
   * The version and run of the running rollout with that id, or undefined when none runs. With `app`, only a
   * rollout of that app counts (a legacy id may belong to another target).
   */
  private async runningRollout(
    workflowId: string,
    app?: string,
  ): Promise<{ workflowId: string; runId: string; version: string } | undefined> {
    const info = await this.describeIfAny(workflowId);
    if (!info || info.status.name !== 'RUNNING') return undefined;
    if (app !== undefined && info.typedSearchAttributes.get(SA_APP) !== app) return undefined;
    const version = info.typedSearchAttributes.get(SA_VERSION) ?? (await this.status(workflowId)).version;
    return { workflowId, runId: info.runId, version };
  }

  // ------------------------------------------------------------------------------------------- reads

  /** The `status` query's answer. A completed rollout with no worker left still gets a (reduced) status. */
  async status(ref: string): Promise<RolloutStatus> {
    const workflowId = await this.locate(ref);
    try {
      return await this.rpc(() => this.client.workflow.getHandle(workflowId).query(statusQuery));
    } catch (err) {
      if (err instanceof WorkflowNotFoundError)
        throw new RolloutNotFoundError(workflowId, undefined, this.cli);
      if (err instanceof QueryNotRegisteredError) {
        throw new RolloutNotFoundError(
          workflowId,
          `workflow "${workflowId}" exists but is not a canary rollout`,
        );
      }
      const wrapped = this.wrap(err, `query the status of ${workflowId}`);
      if (grpcCode(err) === GRPC_UNAVAILABLE) throw wrapped;
      // Closed workflows are answered by replay on a worker; without one, fall back to the result.
      const closed = await this.closedStatus(workflowId).catch(() => undefined);
      if (closed) return closed;
      throw wrapped;
    }
  }

  /** A status built from the workflow's result when it completed, undefined while it runs. */
  private async closedStatus(workflowId: string): Promise<RolloutStatus | undefined> {
    const handle = this.client.workflow.getHandle(workflowId);
    const info = await this.rpc(() => handle.describe());
    if (info.status.name !== 'COMPLETED' && info.status.name !== 'FAILED') return undefined;
    const result = await this.rpc(() => rolloutResult(handle)).catch(() => undefined);
    return result ? statusFromResult(workflowId, result) : undefined;
  }

  /** Rollouts, newest first, from the visibility store (eventually consistent: a second or so behind). */
  async list(filter: ListFilter = {}): Promise<RolloutSummary[]> {
    const clauses = [`WorkflowType = ${queryValue(WORKFLOW_TYPE)}`];
    if (filter.app) clauses.push(`${SA_APP.name} = ${queryValue(filter.app)}`);
    if (filter.phase) clauses.push(`${SA_PHASE.name} = ${queryValue(filter.phase)}`);
    if (filter.release) clauses.push(`${SA_RELEASE.name} = ${queryValue(filter.release)}`);
    if (filter.running) clauses.push(`ExecutionStatus = 'Running'`);
    const query = clauses.join(' AND ');
    const limit = filter.limit ?? 100;
    const rows: RolloutSummary[] = [];
    try {
      await this.rpc(async () => {
        for await (const info of this.client.workflow.list({ query })) {
          const row = summarize(info);
          if (filter.namespace !== undefined && row.namespace !== filter.namespace) continue;
          rows.push(row);
          if (rows.length >= limit) break;
        }
      });
    } catch (err) {
      const wrapped = this.wrap(err, 'list rollouts');
      if (grpcCode(err) === GRPC_INVALID_ARGUMENT) {
        throw new InfrastructureError(
          `${wrapped.message}; are the search attributes (CanaryApp, CanaryPhase, ...) registered in namespace "${this.namespace}"? \`npm run setup\` registers them on a dev server`,
          { cause: err },
        );
      }
      throw wrapped;
    }
    return rows.sort((a, b) => b.startTime.getTime() - a.startTime.getTime());
  }

  /**
   * Polls until the rollout reaches a terminal phase (`promoted`, `rolled_back`, `failed`) or its workflow
   * closes. A workflow that fails, is terminated, cancelled or times out throws {@link InfrastructureError}.
   */
  async waitForOutcome(ref: string, options: WaitOptions = {}): Promise<RolloutStatus> {
    const workflowId = await this.locate(ref);
    const pollMs = options.pollMs ?? DEFAULT_POLL_MS;
    const toleranceMs = options.toleranceMs ?? 60_000;
    const handle = this.client.workflow.getHandle(workflowId);
    let failingSince: number | undefined;
    for (;;) {
      try {
        let info: WorkflowExecutionDescription;
        try {
          info = await this.rpc(() => handle.describe());
        } catch (err) {
          if (err instanceof WorkflowNotFoundError)
            throw new RolloutNotFoundError(workflowId, undefined, this.cli);
          throw err;
        }
        const state = info.status.name;
        if (state === 'RUNNING') {
          const status = await this.status(workflowId);
          failingSince = undefined;
          await options.onStatus?.(status);
          if (TERMINAL_PHASES.includes(status.phase)) return status;
        } else if (
          state === 'COMPLETED' ||
          (state === 'FAILED' && (await this.endedWithOutcome(workflowId)))
        ) {
          const result = await this.rpc(() => rolloutResult(handle));
          let status: RolloutStatus;
          try {
            // Answered by replay on a worker: do not wait long when none is left.
            status = await this.rpc(() => handle.query(statusQuery), 5_000);
            if (!TERMINAL_PHASES.includes(status.phase)) status = { ...status, phase: result.outcome };
          } catch {
            status = statusFromResult(workflowId, result);
          }
          await options.onStatus?.(status);
          return status;
        } else if (state !== 'CONTINUED_AS_NEW') {
          throw await this.endedWithoutOutcome(workflowId, state);
        }
      } catch (err) {
        const wrapped = err instanceof RolloutError ? err : this.wrap(err, `follow rollout ${workflowId}`);
        if (!(wrapped instanceof InfrastructureError && wrapped.transient)) throw wrapped;
        failingSince ??= Date.now();
        if (Date.now() - failingSince > toleranceMs) throw wrapped;
      }
      await sleep(pollMs, options.signal);
    }
  }

  /** Whether the closed workflow failed with its rollout's outcome (rolled back, not started: the typed failures). */
  private async endedWithOutcome(workflowId: string): Promise<boolean> {
    try {
      await this.client.workflow.getHandle(workflowId).result();
      return false;
    } catch (err) {
      return outcomeResult(err) !== undefined;
    }
  }

  /**
   * Waits for the rollout's preflight (its first step) to answer, at most `timeoutMs`: throws
   * {@link RolloutNotStartedError} when it refused the rollout, returns the status otherwise (passed, still running
   * when the time is up). Call it for a rollout just started: one started before preflights existed never answers.
   */
  async awaitPreflight(
    ref: string,
    options: { timeoutMs?: number; pollMs?: number } = {},
  ): Promise<RolloutStatus | undefined> {
    const workflowId = await this.locate(ref);
    const deadline = Date.now() + (options.timeoutMs ?? 60_000);
    for (;;) {
      let status: RolloutStatus | undefined;
      try {
        status = await this.status(workflowId);
      } catch (err) {
        if (!(err instanceof InfrastructureError && err.transient)) throw err;
      }
      if (status?.phase === 'not_started' || status?.preflight?.state === 'failed') {
        throw new RolloutNotStartedError(
          workflowId,
          status.preflight?.cause ?? 'infrastructure',
          status.preflight?.findings ?? [],
        );
      }
      if (status?.preflight && status.preflight.state !== 'running') return status;
      if (Date.now() >= deadline) return status;
      await sleep(options.pollMs ?? 250);
    }
  }

  private async endedWithoutOutcome(workflowId: string, state: string): Promise<InfrastructureError> {
    let detail = '';
    if (state === 'FAILED') {
      try {
        await this.client.workflow.getHandle(workflowId).result();
      } catch (err) {
        if (err instanceof WorkflowFailedError) detail = `: ${innermostMessage(err.cause ?? err)}`;
      }
    }
    return new InfrastructureError(
      `rollout ${workflowId} ended without an outcome: its workflow is ${state}${detail}. ` +
        `Check the traffic weight of the target by hand and look at the workflow's history in the Temporal UI`,
      { workflowStatus: state },
    );
  }

  // ---------------------------------------------------------------------------------------- actions

  /** Approves the waiting gate. The workflow's refusal reason surfaces as {@link RolloutRejectedError}. */
  async approve(
    ref: string,
    request: { stage?: number; comment?: string; identity: string; signer?: Signer },
  ): Promise<ApprovalRecord> {
    const workflowId = await this.locate(ref);
    if (request.stage !== undefined && (!Number.isInteger(request.stage) || request.stage < 1)) {
      throw new RolloutInputError(`stage must be a positive integer (1-based), got ${request.stage}`);
    }
    const signed = await this.sign(workflowId, 'approve', request.signer);
    return this.update(workflowId, 'approve', () =>
      this.client.workflow.getHandle(workflowId).executeUpdate(approveUpdate, {
        args: [
          {
            identity: identityOf(request.identity),
            ...(request.stage !== undefined ? { stage: request.stage } : {}),
            ...(request.comment ? { comment: request.comment } : {}),
            ...signed,
          },
        ],
      }),
    );
  }

  /** A request's signature (workflows/identity.ts), made with `signer`; nothing without one. */
  private sign(workflowId: string, action: SignedAction, signer: Signer | undefined) {
    return signatureFor(workflowId, action, signer, () => this.status(workflowId));
  }

  /**
   * Skips the remaining stages and promotes now. With `endSoak`, during the soak after a promotion: finishes it now
   * (stable takes the new version, the canary goes).
   */
  async promote(
    ref: string,
    request: { identity: string; comment?: string; endSoak?: boolean; signer?: Signer },
  ) {
    const workflowId = await this.locate(ref);
    const signed = await this.sign(workflowId, 'promote', request.signer);
    return this.update(workflowId, 'promote', () =>
      this.client.workflow.getHandle(workflowId).executeUpdate(promoteUpdate, {
        args: [
          {
            identity: identityOf(request.identity),
            ...(request.comment ? { comment: request.comment } : {}),
            ...(request.endSoak ? { endSoak: true } : {}),
            ...signed,
          },
        ],
      }),
    );
  }

  /**
   * Asks the rollout to roll back (a durable signal: accepted even while no worker runs). Idempotent: a
   * rollout that is already rolled back answers `already_rolled_back`; one that was promoted and has
   * finished is refused with {@link RolloutRejectedError}.
   */
  async abort(
    ref: string,
    request: { reason: string; identity: string; signer?: Signer },
  ): Promise<AbortResult> {
    const workflowId = await this.locate(ref);
    const reason = request.reason?.trim() ?? '';
    if (reason === '') throw new RolloutInputError('an abort needs a reason');
    const identity = identityOf(request.identity);
    const handle = this.client.workflow.getHandle(workflowId);
    // Look first, so an abort that would change nothing says why instead of "requested".
    const current = await this.status(workflowId).catch((err: unknown) => {
      if (err instanceof RolloutNotFoundError) throw err;
      return undefined;
    });
    if (current?.phase === 'rolling_back' || current?.phase === 'rolled_back') {
      return {
        workflowId,
        state: current.phase === 'rolling_back' ? 'already_rolling_back' : 'already_rolled_back',
        ...(current.rollbackReason ? { reason: current.rollbackReason } : {}),
        ...(current.retrying ? { retrying: current.retrying } : {}),
      };
    }
    if (current?.phase === 'not_started') {
      throw new RolloutRejectedError(
        workflowId,
        'abort',
        `cannot abort: rollout ${workflowId} did not start (its preflight refused it; nothing was changed)`,
      );
    }
    // At a gate (the promotion's too) and in the final 100 % hold an abort still rolls back, and during the soak
    // after a promotion it goes back to the previous version (still running); only a promotion under way or
    // finished cannot be undone by one.
    if ((current?.phase === 'promoted' && !current.soak) || current?.promoting) {
      const previous = current.stableVersion
        ? ` (${current.stableVersion} before this rollout)`
        : ' (which this rollout did not record: write it in place of VERSION)';
      const again = await this.startCommandFor(workflowId, current.stableVersion ?? 'VERSION');
      throw new RolloutRejectedError(
        workflowId,
        'abort',
        current.phase === 'promoted'
          ? `${current.namespace}/${current.app} was promoted${current.promotedAt ? ` at ${current.promotedAt}` : ''}: stable already runs ${current.version}, so there is nothing to roll back to. To go back, roll out the previous version${previous}: ${again}`
          : `promotion of ${current.version} is under way and cannot be undone; once it completes, roll out the previous version${previous} to go back`,
      );
    }
    if (current?.verifiedBy && !request.signer) {
      // The rollout would ignore an unsigned abort signal: say so rather than "requested".
      throw new RolloutRejectedError(
        workflowId,
        'abort',
        `unsigned abort refused: this rollout demands a verified identity (${current.verifiedBy}); sign it with ` +
          "--sign-key PATH (an SSH key in the worker's allowed signers) or --id-token FILE (an OIDC ID token)",
      );
    }
    if (request.signer) {
      // A signed abort is an Update: the worker verifies it before the rollout accepts it (a signal cannot be).
      const signed = await this.sign(workflowId, 'abort', request.signer);
      const ack = await this.update(workflowId, 'abort', () =>
        handle.executeUpdate(abortUpdate, { args: [{ reason, identity, ...signed }] }),
      );
      return { workflowId, state: 'requested', by: ack.by };
    }
    try {
      await this.rpc(() => handle.signal(abortSignal, { reason, identity }));
      return { workflowId, state: current ? 'requested' : 'unconfirmed' };
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) {
        const closed = await this.closedStatus(workflowId).catch(() => undefined);
        if (closed?.phase === 'rolled_back') return { workflowId, state: 'already_rolled_back' };
      }
      throw await this.notRunning(err, workflowId, 'abort', `send abort to ${workflowId}`);
    }
  }

  /** Pauses the hold timers; refused (RolloutRejectedError) when already paused or past the point of pausing. */
  async pause(
    ref: string,
    request: { identity: string; reason?: string; signer?: Signer },
  ): Promise<PauseAck> {
    const workflowId = await this.locate(ref);
    const signed = await this.sign(workflowId, 'pause', request.signer);
    return this.update(workflowId, 'pause', () =>
      this.client.workflow.getHandle(workflowId).executeUpdate(pauseUpdate, {
        args: [
          {
            identity: identityOf(request.identity),
            ...(request.reason ? { reason: request.reason } : {}),
            ...signed,
          },
        ],
      }),
    );
  }

  /** Resumes a paused rollout; refused (RolloutRejectedError) when it is not paused. */
  async resume(
    ref: string,
    request: { identity: string; reason?: string; signer?: Signer },
  ): Promise<PauseAck> {
    const workflowId = await this.locate(ref);
    const signed = await this.sign(workflowId, 'resume', request.signer);
    return this.update(workflowId, 'resume', () =>
      this.client.workflow.getHandle(workflowId).executeUpdate(resumeUpdate, {
        args: [
          {
            identity: identityOf(request.identity),
            ...(request.reason ? { reason: request.reason } : {}),
            ...signed,
          },
        ],
      }),
    );
  }

  /**
   * Ends a rollback stuck on a step that keeps failing, once a person has put all traffic on stable by hand:
   * records who and why, and the rollout ends as rolled back. Refused (RolloutRejectedError) unless a step keeps
   * failing, and without `confirmTrafficRestored`.
   */
  async resolve(
    ref: string,
    request: { identity: string; reason: string; confirmTrafficRestored: boolean; signer?: Signer },
  ): Promise<ResolveRecord> {
    const workflowId = await this.locate(ref);
    const reason = request.reason?.trim() ?? '';
    if (reason === '') throw new RolloutInputError('a resolve needs a reason: what was done by hand');
    if (request.confirmTrafficRestored !== true) {
      throw new RolloutInputError(
        'a resolve needs the confirmation that all traffic is on stable (--confirm-traffic-restored): check it by hand first',
      );
    }
    const signed = await this.sign(workflowId, 'resolve', request.signer);
    return this.update(workflowId, 'resolve', () =>
      this.client.workflow.getHandle(workflowId).executeUpdate(resolveUpdate, {
        args: [{ identity: identityOf(request.identity), reason, confirmTrafficRestored: true, ...signed }],
      }),
    );
  }

  // -------------------------------------------------------------------------------------- plumbing

  private async update<R>(
    workflowId: string,
    operation: 'approve' | 'promote' | 'pause' | 'resume' | 'resolve' | 'abort',
    call: () => Promise<R>,
  ): Promise<R> {
    try {
      return await this.rpc(call);
    } catch (err) {
      if (err instanceof WorkflowUpdateFailedError) {
        throw new RolloutRejectedError(workflowId, operation, innermostMessage(err.cause ?? err));
      }
      throw await this.notRunning(err, workflowId, operation, `${operation} ${workflowId}`);
    }
  }

  /** Not found: either no such rollout, or it has finished (messages need a running workflow). */
  private async notRunning(
    err: unknown,
    workflowId: string,
    operation: RolloutRejectedError['operation'],
    what: string,
  ): Promise<Error> {
    if (!(err instanceof WorkflowNotFoundError)) return this.wrap(err, what);
    try {
      const info = await this.rpc(() => this.client.workflow.getHandle(workflowId).describe());
      return new RolloutRejectedError(
        workflowId,
        operation,
        `cannot ${operation}: rollout ${workflowId} has already finished (workflow ${info.status.name.toLowerCase()})`,
      );
    } catch {
      return new RolloutNotFoundError(workflowId, undefined, this.cli);
    }
  }

  /** Runs one call under the RPC deadline. */
  private rpc<R>(fn: () => Promise<R>, timeoutMs = this.rpcTimeoutMs): Promise<R> {
    return this.client.withDeadline(Date.now() + timeoutMs, fn);
  }

  /** Turns SDK and gRPC errors into this client's typed errors; keeps the SDK's typed "not found". */
  private wrap(err: unknown, what: string): Error {
    return wrapRpcError(err, what, {
      address: this.address,
      namespace: this.namespace,
      taskQueue: this.taskQueue,
      rpcTimeoutMs: this.rpcTimeoutMs,
    });
  }
}

function identityOf(identity: string): string {
  const v = identity?.trim() ?? '';
  if (v === '') throw new RolloutInputError('identity is empty: say who is acting');
  return v;
}

function summarize(info: WorkflowExecutionInfo): RolloutSummary {
  const sa = info.typedSearchAttributes;
  const app = sa.get(SA_APP);
  const namespace = targetOfWorkflowId(info.workflowId, app)?.namespace;
  return {
    workflowId: info.workflowId,
    runId: info.runId,
    ...(app !== undefined ? { app } : {}),
    ...(namespace !== undefined ? { namespace } : {}),
    ...(sa.get(SA_VERSION) !== undefined ? { version: sa.get(SA_VERSION) } : {}),
    ...(sa.get(SA_PHASE) !== undefined ? { phase: sa.get(SA_PHASE) } : {}),
    ...(sa.get(SA_STAGE) !== undefined ? { stage: sa.get(SA_STAGE) } : {}),
    ...(sa.get(SA_WEIGHT) !== undefined ? { weight: sa.get(SA_WEIGHT) } : {}),
    status: info.status.name,
    startTime: info.startTime,
    ...(info.closeTime ? { closeTime: info.closeTime } : {}),
  };
}

/** A copy with object keys in sorted order, so that two equal objects serialise alike. */
function sortedKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortedKeys);
  if (value === null || typeof value !== 'object') return value;
  return Object.fromEntries(
    Object.keys(value as Record<string, unknown>)
      .sort()
      .map((k) => [k, sortedKeys((value as Record<string, unknown>)[k])]),
  );
}
