// Heartbeats from activities, and from the providers they call, that also work outside an activity (a script or a
// test calling a provider or an activity body directly), where they do nothing.
import { Context } from '@temporalio/activity';

/** How often an activity heartbeats while it waits on the outside world; its heartbeat timeout is a few of these. */
export const HEARTBEAT_MS = 2_000;

/** The running activity's context; undefined when called directly. */
function activityContext(): Context | undefined {
  try {
    return Context.current();
  } catch {
    return undefined;
  }
}

/** Heartbeats once (a provider reporting progress while it waits); a no-op outside an activity. */
export function heartbeat(details?: unknown): void {
  const ctx = activityContext();
  // A local activity (the rollback's first shift) has no heartbeat: the worker keeps its workflow task alive.
  if (ctx && !ctx.info.isLocal) ctx.heartbeat(details);
}

/** The running activity's cancellation (an abort mid-round cancels it); undefined outside an activity. */
export function cancellation(): AbortSignal | undefined {
  return activityContext()?.cancellationSignal;
}

/**
 * Waits between two polls of the outside world. Inside an activity the wait ends with the activity's cancellation
 * (it throws the CancelledFailure): an abort mid-wait, or, as the next heartbeat's answer reports, a workflow that has
 * ended or an attempt that timed out. A poll loop built on it stops then, instead of polling on until its own deadline
 * with nobody waiting for the answer (and holding a worker's shutdown that long). Outside an activity: a plain sleep.
 */
export function pollWait(ms: number): Promise<void> {
  const ctx = activityContext();
  return ctx ? ctx.sleep(ms) : new Promise((r) => setTimeout(r, ms));
}

/**
 * Runs `work`, heartbeating meanwhile: a worker that dies in the middle is noticed within the activity's heartbeat
 * timeout, and the next worker retries at once rather than after the whole start-to-close timeout.
 */
export async function heartbeating<T>(work: () => Promise<T>): Promise<T> {
  const ctx = activityContext();
  const beat = ctx && !ctx.info.isLocal && setInterval(() => ctx.heartbeat(), HEARTBEAT_MS);
  try {
    return await work();
  } finally {
    if (beat) clearInterval(beat);
  }
}
