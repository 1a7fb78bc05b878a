// What a hook run is given and what it answers: the activity's input (from the workflow) and result (back to it).
import type { Hook, HookPoint } from '../../workflows/plan-hooks';
import type { Target } from '../../workflows/target';

/** One run of one hook at one point of one stage entry (and, for a confirm gate, one ask). */
export interface HookRunInput {
  target: Target;
  hook: Hook;
  /** The rollout's workflow id. */
  rolloutId: string;
  version: string;
  /** 1-based stage the run belongs to. */
  stage: number;
  weight: number;
  point: HookPoint;
  /** 1 for the first ask; a confirm gate's later asks count up. */
  attempt: number;
  /**
   * Stable per (rollout, point, stage entry, hook, ask): every retry of this run sends the same key, so a receiver
   * can drop a duplicate (a worker killed after the request left), and a Job run adopts the Job an earlier attempt
   * created.
   */
  idempotencyKey: string;
}

/**
 * `ok`: the hook passed. `not_ready`: a confirm gate said "not yet" (HTTP 409 or 423, a JSON body with
 * `"ready": false`, or a Job whose container exited with {@link NOT_READY_EXIT_CODE}). `failed`: it refused.
 */
export interface HookRunResult {
  result: 'ok' | 'not_ready' | 'failed';
  /** One line: the HTTP status or the Job's end, and why. */
  detail: string;
  /** The start of the response body or of the Job's logs (bounded, secrets redacted). */
  excerpt?: string;
  tookMs: number;
}

/** A Job hook's container exit code that means "not yet" for a confirm gate (EX_TEMPFAIL). */
export const NOT_READY_EXIT_CODE = 75;

/** How much of a response body or a log a hook run keeps. */
export const EXCERPT_CHARS = 500;

export function excerptOf(text: string, secrets: readonly string[] = []): string | undefined {
  let t = text;
  for (const s of secrets) if (s.length >= 4) t = t.split(s).join('***');
  t = t.trim();
  if (t === '') return undefined;
  return t.length > EXCERPT_CHARS ? `${t.slice(0, EXCERPT_CHARS)}…` : t;
}
