// Reading gRPC and SDK failures (the status code, the innermost message) and turning them into the client's typed
// errors; the small waits between polls.
import {
  NamespaceNotFoundError,
  WorkflowNotFoundError,
  WorkflowUpdateRPCTimeoutOrCancelledError,
} from '@temporalio/client';
import { InfrastructureError, RolloutError } from './errors';

export function grpcCode(err: unknown): number | undefined {
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 8; e = e.cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'number' && typeof (e as { details?: unknown }).details === 'string') return code;
  }
  return undefined;
}

export function innermostMessage(err: unknown): string {
  let message = err instanceof Error ? err.message : String(err);
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 8; e = e.cause, depth++) {
    const details = (e as { details?: unknown }).details;
    if (typeof details === 'string' && details !== '') message = details;
    else if (e.message) message = e.message;
  }
  return message;
}

export const GRPC_CANCELLED = 1;
export const GRPC_DEADLINE_EXCEEDED = 4;
export const GRPC_RESOURCE_EXHAUSTED = 8;
export const GRPC_FAILED_PRECONDITION = 9;
export const GRPC_UNAVAILABLE = 14;
export const GRPC_INVALID_ARGUMENT = 3;

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason ?? new Error('aborted'));
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal?.reason ?? new Error('aborted'));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** A string literal in a visibility query. */
export function queryValue(value: string): string {
  return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

/** Where the client talks to, as messages name it. */
export interface RpcContext {
  address?: string;
  namespace: string;
  taskQueue: string;
  rpcTimeoutMs: number;
}

/** Turns SDK and gRPC errors into this client's typed errors; keeps the SDK's typed "not found". */
export function wrapRpcError(err: unknown, what: string, where: RpcContext): Error {
  if (err instanceof RolloutError || err instanceof WorkflowNotFoundError) return err;
  const at = where.address ? ` at ${where.address}` : '';
  if (err instanceof NamespaceNotFoundError) {
    return new InfrastructureError(
      `cannot ${what}: Temporal namespace "${err.namespace}" does not exist${at}; set TEMPORAL_NAMESPACE or --temporal-namespace`,
      { cause: err },
    );
  }
  const detail = innermostMessage(err);
  const code = grpcCode(err);
  if (
    err instanceof WorkflowUpdateRPCTimeoutOrCancelledError ||
    code === GRPC_DEADLINE_EXCEEDED ||
    code === GRPC_CANCELLED
  ) {
    return new InfrastructureError(
      `cannot ${what}: no answer within ${Math.round(where.rpcTimeoutMs / 1000)}s from Temporal${at}. ` +
        `Queries and updates need a running canary worker polling task queue "${where.taskQueue}" in namespace "${where.namespace}"`,
      { cause: err, transient: true },
    );
  }
  if (code === GRPC_UNAVAILABLE || code === GRPC_RESOURCE_EXHAUSTED) {
    return new InfrastructureError(`cannot ${what}: Temporal${at} is unavailable (${detail})`, {
      cause: err,
      transient: true,
    });
  }
  if (/workflow task in failed state/i.test(detail)) {
    return new InfrastructureError(
      `cannot ${what}: the rollout's workflow task keeps failing on the worker, so the rollout is stuck; check the worker's logs`,
      { cause: err, transient: true },
    );
  }
  const unmapped = /no mapping defined for search attribute (\w+)/i.exec(detail);
  if (unmapped) {
    // The namespace lacks the rollout's search attributes: a worker registers them (or says how) at start-up.
    return new InfrastructureError(
      `cannot ${what}: namespace "${where.namespace}"${at} has no search attribute ${unmapped[1]} (nor, likely, the ` +
        `other Canary* ones). Start a canary worker on this namespace once: it registers them where the server lets ` +
        `it, and otherwise refuses to start with the exact \`temporal operator search-attribute create\` commands`,
      { cause: err },
    );
  }
  if (code === GRPC_FAILED_PRECONDITION) {
    return new InfrastructureError(
      `cannot ${what}: ${detail}. Is a canary worker polling task queue "${where.taskQueue}"?`,
      { cause: err, transient: true },
    );
  }
  return new InfrastructureError(`cannot ${what}: ${detail}`, { cause: err });
}
