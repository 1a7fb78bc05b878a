// What a rollout is about and how it was started: fixed for a run, read by every part of the machine.
import type { Plan } from '../types';
import type { Target } from '../target';

/** Behaviour decided by Temporal patches once per run (recorded rollouts keep what they started with). */
export interface RolloutFlags {
  /** Targets name their routers: routing setup, teardown, capacity checks, drift on shifts (TARGET_PATCH). */
  routingLifecycle: boolean;
  /** Full-form plans are judged by judge-v2 (JUDGE_PATCH). */
  judgeV2: boolean;
  /** Alerts are events with stable ids, one delivery per routed sink (ALERTS_PATCH). */
  alertsV2: boolean;
}

export interface RolloutContext {
  plan: Plan;
  target: Target;
  version: string;
  image?: string;
  requestedBy: string;
  /** How suggested commands spell the CLI. */
  cli: string;
  workflowId: string;
  firstRunId: string;
  temporalNamespace: string;
  flags: RolloutFlags;
  /** History length after which a run continues as new. */
  historyLimit: number;
  /** A member of a release that promotes its members together: only the release may pass the promotion gate. */
  releaseTogether?: { name: string; identity: string; member: string };
  /** Any member of a release: the release's name, the identity it acts as, and this member's id. */
  release?: { name: string; identity: string; member: string };
}

export const MAX_ANALYSES_KEPT = 10;
export const MAX_APPROVALS_KEPT = 50;
/** Pause between batches of attempts of a step that must not give up. */
export const RETRY_PAUSE_MS = 30_000;
/** How long the end of a run (completion, continue-as-new) waits for deliveries still under way. */
export const ALERT_FLUSH_MS = 2 * 60_000;

export function iso(ms: number): string {
  return new Date(ms).toISOString();
}

export function pushBounded<T>(list: T[], item: T, max: number): void {
  list.push(item);
  if (list.length > max) list.splice(0, list.length - max);
}

export function errorMessage(err: unknown): string {
  if (err instanceof Error) {
    const cause = (err as { cause?: unknown }).cause;
    return cause instanceof Error ? `${err.message}: ${cause.message}` : err.message;
  }
  return String(err);
}

/** Each analysis reads the last interval of metrics, but never less than 30 s: short windows hold too few requests. */
export function analysisWindowSeconds(plan: Plan): number {
  return Math.max(30, Math.round(plan.analysis.intervalMs / 1000));
}
