// The errors the client library throws on purpose, one class per thing that can go wrong, so CI scripts (and the
// CLI's exit codes) tell bad input from a refusal and from infrastructure.
import type { PreflightFinding, RolloutStatus } from '../workflows/types';

/** Base class of every error this client throws on purpose. */
export class RolloutError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** Bad arguments (empty app, malformed `namespace/app`, missing reason...). Nothing was sent. */
export class RolloutInputError extends RolloutError {}

/** No rollout with that id exists (or the workflow is not a canary rollout). */
export class RolloutNotFoundError extends RolloutError {
  constructor(
    readonly workflowId: string,
    message?: string,
    cli = 'canary',
  ) {
    message ??= `no rollout with id "${workflowId}" exists in this Temporal namespace; list rollouts with \`${cli} list\``;
    super(message);
  }
}

/** Another version is already rolling out to the same target. */
export class RolloutConflictError extends RolloutError {
  constructor(
    readonly workflowId: string,
    readonly runId: string,
    readonly runningVersion: string,
    readonly requestedVersion: string,
    /** Set when the versions are the same but the plan or target differ: what differs. */
    readonly options: { detail?: string; cli?: string; running?: RolloutStatus } = {},
  ) {
    const cli = options.cli ?? 'canary';
    const running = options.running;
    super(
      options.detail !== undefined
        ? `a rollout of version ${runningVersion} is already running as ${workflowId}, with another plan or target than requested; ` +
            `not started again. Abort it (${cli} abort ${workflowId} --reason "new plan") to start over with the new plan, ` +
            `or start with the running plan.\n  ${options.detail}`
        : running?.phase === 'rolling_back'
          ? `the rollout of version ${runningVersion} (${workflowId}) is rolling back; ${requestedVersion} can start once it has ended` +
            (running.retrying
              ? `. It is stuck: "${running.retrying.step}" keeps failing (${running.retrying.error}). Fix what that step needs, or once all traffic is on stable (moved by hand), end it: ` +
                (running.retrying.resolve ??
                  `${cli} resolve ${workflowId} --confirm-traffic-restored --reason "what was done"`)
              : ` (follow it: ${cli} status ${workflowId} --watch)`)
          : `a rollout of version ${runningVersion} is already running as ${workflowId}; ` +
            `abort it (${cli} abort ${workflowId} --reason "why") or wait for it to finish before rolling out ${requestedVersion}`,
    );
  }
}

/**
 * The rollout's preflight refused it: nothing was touched and the target is free. `kind` says whose problem it
 * is: `input` (the plan or target must change; the CLI exits 2) or `infrastructure` (the worker's cluster,
 * credentials or metrics source must; exit 3).
 */
export class RolloutNotStartedError extends RolloutError {
  constructor(
    readonly workflowId: string,
    /** Whose problem it is (the preflight's `cause`); named apart from Error's own `cause`. */
    readonly kind: 'input' | 'infrastructure',
    readonly findings: PreflightFinding[],
  ) {
    const refusals = findings.filter((f) => f.level === 'refuse');
    super(
      `rollout ${workflowId} did not start; nothing was changed (${kind === 'input' ? 'fix the plan or the target' : "fix the worker's cluster, credentials or metrics source"}, then start again):\n` +
        refusals.map((f) => `  - ${f.path ? `${f.path}: ` : ''}${f.message}`).join('\n'),
    );
  }
}

/** The workflow refused the request (update validator, or the rollout has already finished). */
export class RolloutRejectedError extends RolloutError {
  constructor(
    readonly workflowId: string,
    readonly operation: 'approve' | 'promote' | 'abort' | 'pause' | 'resume' | 'resolve',
    /** The workflow's reason, verbatim; also the message. */
    readonly reason: string,
  ) {
    super(reason);
  }
}

/** Temporal cannot be reached, a call timed out, no worker answers, or the workflow ended without an outcome. */
export class InfrastructureError extends RolloutError {
  constructor(
    message: string,
    options: {
      cause?: unknown;
      /** Worth retrying: the server or the network was unavailable or slow. */
      transient?: boolean;
      /** Execution status of the workflow when it ended without an outcome (FAILED, TERMINATED...). */
      workflowStatus?: string;
    } = {},
  ) {
    super(message, { cause: options.cause });
    this.transient = options.transient ?? false;
    this.workflowStatus = options.workflowStatus;
  }
  readonly transient: boolean;
  readonly workflowStatus?: string;
}
