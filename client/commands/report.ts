// How a refusal or a failure reaches the user: the message on stderr and the exit code.
import { CommanderError } from 'commander';
import { ConfigError } from '../../connection/config';
import type { InputProblem } from '../../workflows/problems';
import type { RolloutStatus } from '../../workflows/types';
import {
  InfrastructureError,
  RolloutConflictError,
  RolloutInputError,
  RolloutNotFoundError,
  RolloutNotStartedError,
  RolloutRejectedError,
} from '../errors';
import { IdentityError } from '../identity';
import { PlanFileError, PlanInvalidError, TargetInvalidError } from '../plan-file';
import { underTarget } from './options';
import { EXIT_BAD_INPUT, EXIT_INFRASTRUCTURE, EXIT_OK, EXIT_ROLLED_BACK, UsageError } from './usage';

/** Exit code of a finished rollout as `--wait` reports it. */
export function exitCodeForStatus(status: RolloutStatus): number {
  if (status.phase === 'promoted') return EXIT_OK;
  if (status.phase === 'rolled_back') return EXIT_ROLLED_BACK;
  // Not started: the preflight refused it; the plan or target is wrong (2), or the worker's environment (3).
  if (status.phase === 'not_started')
    return status.preflight?.cause === 'input' ? EXIT_BAD_INPUT : EXIT_INFRASTRUCTURE;
  return EXIT_INFRASTRUCTURE;
}

/**
 * The problems a refusal stands for, for validate --output json; undefined for what is not bad input (help, an
 * unexpected failure), which keeps its usual report.
 */
export function problemsOf(e: unknown, commanderMessage = ''): InputProblem[] | undefined {
  if (e instanceof CommanderError) {
    return e.exitCode === 0 ? undefined : [{ path: '', message: commanderMessage || e.message }];
  }
  if (e instanceof PlanInvalidError) return e.problems;
  if (e instanceof TargetInvalidError) return underTarget(e.problems);
  if (e instanceof PlanFileError) return [{ path: e.what === 'target' ? 'target' : '', message: e.message }];
  if (e instanceof UsageError || e instanceof IdentityError || e instanceof RolloutInputError) {
    return [{ path: '', message: e.message }];
  }
  return undefined;
}

/** Prints what went wrong and how to fix it; returns the exit code. */
export function reportError(e: unknown, err: (text: string) => void): number {
  if (e instanceof CommanderError) {
    // Commander already printed its message (and the help hint) through configureOutput.
    return e.exitCode === 0 ? EXIT_OK : EXIT_BAD_INPUT;
  }
  if (e instanceof PlanInvalidError) {
    err(`canary: error: ${e.source}: ${e.message}`);
    return EXIT_BAD_INPUT;
  }
  if (
    e instanceof PlanFileError ||
    e instanceof UsageError ||
    e instanceof IdentityError ||
    e instanceof RolloutInputError ||
    e instanceof TargetInvalidError
  ) {
    err(`canary: error: ${e.message}`);
    return EXIT_BAD_INPUT;
  }
  if (e instanceof RolloutNotFoundError || e instanceof RolloutConflictError) {
    err(`canary: error: ${e.message}`);
    return EXIT_BAD_INPUT;
  }
  if (e instanceof RolloutNotStartedError) {
    err(`canary: error: ${e.message}`);
    return e.kind === 'input' ? EXIT_BAD_INPUT : EXIT_INFRASTRUCTURE;
  }
  if (e instanceof RolloutRejectedError) {
    err(`canary: error: ${e.operation} rejected by ${e.workflowId}: ${e.reason}`);
    return EXIT_BAD_INPUT;
  }
  if (e instanceof ConfigError) {
    err(
      `canary: error: ${e.message}\n(set the TEMPORAL_* variables, or pass --address, --temporal-namespace, --task-queue)`,
    );
    return EXIT_BAD_INPUT;
  }
  if (e instanceof InfrastructureError) {
    err(`canary: error: ${e.message}`);
    return EXIT_INFRASTRUCTURE;
  }
  const message = e instanceof Error ? (e.stack ?? e.message) : String(e);
  err(`canary: unexpected error: ${message}`);
  return EXIT_INFRASTRUCTURE;
}
