// The rollout events alert sinks receive, and the pure helpers that build them. Workflow-safe: only type imports
// and no Node API, so the workflow may import this module (its ids must be computed in the workflow, where they
// are deterministic: a retried or replayed delivery carries the same id, and sinks deduplicate on it). The senders
// (activities/alerts/) import it from here.
import type { RolloutTarget } from '../types';
import type { AlertKind, AlertSeverity } from './kinds';

export { ALERT_KINDS, ALERT_SEVERITIES, type AlertKind, type AlertSeverity } from './kinds';

/** A check's severity in the plan (analysis-spec.ts), carried beside the alert's own severity. */
export type CheckSeverity = 'low' | 'medium' | 'high' | 'critical';

/** The kinds after which the rollout is over: sinks resolve everything still open for it. */
export const ENDING_KINDS: readonly AlertKind[] = ['promoted', 'rolled_back', 'not_started'];

/**
 * The conditions a rollout can raise besides its checks (`check:<name>`). PagerDuty keeps no list of what is open
 * that a sink could read, so an ending event resolves these and the `check:<name>` conditions listed in `resolves`.
 */
export const FIXED_CONDITIONS = [
  'rollout',
  'approval',
  'paused',
  'step-back',
  'drift',
  'stuck',
  'hook',
  'freeze',
  'queue',
] as const;

/** What a kind raises by default: trigger and resolve events of one condition share a dedup key. */
const KIND_CONDITION: Record<AlertKind, string> = {
  rollout_started: 'rollout',
  stage_advanced: 'rollout',
  approval_needed: 'approval',
  approval_reminder: 'approval',
  approval_escalated: 'approval',
  approved: 'approval',
  paused: 'paused',
  resumed: 'paused',
  frozen: 'freeze',
  unfrozen: 'freeze',
  queued: 'queue',
  dequeued: 'queue',
  check_breached: 'check',
  stepped_back: 'step-back',
  stepped_forward: 'step-back',
  drift_detected: 'drift',
  stuck: 'stuck',
  hook_failed: 'hook',
  rollback_started: 'rollout',
  rolled_back: 'rollout',
  promoted: 'rollout',
  not_started: 'rollout',
};

/** What a kind resolves by default (ending kinds resolve everything through `ends`). */
const KIND_RESOLVES: Partial<Record<AlertKind, string[]>> = {
  // The gate passed (an approval, or a timeout with onTimeout: proceed) and nothing is stuck any more.
  stage_advanced: ['approval', 'stuck'],
  approved: ['approval'],
  // Resuming also restores the weight a drift paused at.
  resumed: ['paused', 'drift'],
  unfrozen: ['freeze'],
  dequeued: ['queue'],
  stepped_forward: ['step-back'],
};

/** The severity a kind has when the workflow gives none. */
export const DEFAULT_SEVERITY: Record<AlertKind, AlertSeverity> = {
  rollout_started: 'info',
  stage_advanced: 'info',
  approval_needed: 'warning',
  approval_reminder: 'warning',
  approval_escalated: 'critical',
  approved: 'info',
  paused: 'info',
  resumed: 'info',
  frozen: 'warning',
  unfrozen: 'info',
  queued: 'info',
  dequeued: 'info',
  check_breached: 'warning',
  stepped_back: 'warning',
  stepped_forward: 'info',
  drift_detected: 'warning',
  stuck: 'critical',
  hook_failed: 'warning',
  rollback_started: 'critical',
  rolled_back: 'critical',
  promoted: 'info',
  not_started: 'warning',
};

/** The last analysis, in short. */
export interface AlertVerdict {
  verdict: 'pass' | 'fail' | 'inconclusive';
  /** When it ran (ISO-8601, workflow time). */
  at?: string;
  /** Each check's value and outcome (`pass`, `fail`, `no_data`, or judge-v2's `marginal`, `breach`...). */
  checks?: Array<{ name: string; value: number | null; outcome: string }>;
}

/** The exact `canary` commands that act on the rollout, as a person would type them. */
export interface AlertCommands {
  status: string;
  /** While the rollout can still be rolled back. */
  abort?: string;
  /** While a gate waits for approval. */
  approve?: string;
  /** While paused (by a person, or by a drift). */
  resume?: string;
  /** While a rollback is stuck on a step that keeps failing: confirm by hand that traffic is back on stable. */
  resolve?: string;
}

/**
 * The event the `sendAlert` activity takes (the workflow's alerts before per-sink delivery). The per-sink
 * `deliverAlert` activity takes a {@link RolloutAlert}, a superset of this shape.
 */
export interface AlertEvent {
  /** Machine-readable kind: rollout_started, stage_advanced, approval_needed, paused, resumed, rollback_started, rolled_back, promoted, drift_detected, ... (ALERT_KINDS) */
  event: string;
  severity: AlertSeverity;
  target: RolloutTarget;
  version: string;
  workflowId: string;
  message: string;
  stage?: number;
  weight?: number;
  at: string;
}

/**
 * One rollout event, as every sink receives it. A superset of {@link AlertEvent} (the legacy `sendAlert` shape,
 * which the log sink's readers still parse): `event` is the kind under its old name.
 */
export interface RolloutAlert extends AlertEvent {
  /**
   * Stable and unique: `<workflowId>/<firstRunId>/<seq>-<kind>` ({@link alertEventId}), computed by the
   * workflow. Retries and replays carry the same id; the webhook sends it as X-Canary-Event-Id.
   */
  id: string;
  kind: AlertKind;
  /** The same as `kind` (the field's legacy name). */
  event: AlertKind;
  /** Groups a rollout's alerts (Alertmanager's `rollout` label, PagerDuty's dedup keys): the workflow id. */
  rolloutKey: string;
  /**
   * What this event is about: `rollout`, `approval`, `paused`, `step-back`, `drift`, `stuck`, `hook`, `freeze`,
   * `queue` or `check:<name>`.
   * An event that raises a condition and the one that resolves it share it, so they share a dedup key.
   */
  condition: string;
  /** Conditions this event clears (an approval clears `approval`). Such an event opens nothing itself. */
  resolves?: string[];
  /** The rollout ended (promoted, rolled back): resolve everything still open for it. */
  ends?: boolean;
  /** How many stages the plan has (`stage` is 1-based). */
  stages?: number;
  /** The check this event is about, and its severity in the plan. */
  check?: { name: string; severity?: CheckSeverity };
  /** Why (a rollback's reason, a pause's reason). */
  reason?: string;
  /** Who acted (approved, paused, aborted), when a person did. */
  by?: string;
  lastVerdict?: AlertVerdict;
  /** The Temporal namespace the rollout runs in, for the UI link (else the worker's TEMPORAL_NAMESPACE). */
  temporalNamespace?: string;
  /** A link to the rollout in the Temporal UI; when absent, sinks build it from CANARY_TEMPORAL_UI_URL. */
  uiUrl?: string;
  /** When absent, sinks use {@link rolloutCommands}. */
  commands?: AlertCommands;
  /** How the commands spell the CLI (default `canary`). */
  cli?: string;
}

/** `<workflowId>/<firstRunId>/<seq>-<kind>`: `seq` counts the rollout's events across continue-as-new. */
export function alertEventId(workflowId: string, firstRunId: string, seq: number, kind: AlertKind): string {
  return `${workflowId}/${firstRunId}/${seq}-${kind}`;
}

export function conditionFor(kind: AlertKind, check?: string): string {
  return kind === 'check_breached' ? `check:${check ?? 'unknown'}` : KIND_CONDITION[kind];
}

export function resolvesFor(kind: AlertKind): string[] | undefined {
  return KIND_RESOLVES[kind]?.slice();
}

export function isEnding(kind: AlertKind): boolean {
  return ENDING_KINDS.includes(kind);
}

/** An event that clears conditions (or ends the rollout): stateful sinks resolve, and open nothing for it. */
export function isResolution(e: Pick<RolloutAlert, 'ends' | 'resolves'>): boolean {
  return e.ends === true || (e.resolves?.length ?? 0) > 0;
}

/** The alert severity for a breach of a check of this plan severity. */
export function severityForCheck(severity: CheckSeverity): AlertSeverity {
  return severity === 'critical' || severity === 'high' ? 'critical' : 'warning';
}

const SEVERITY_RANK: Record<AlertSeverity, number> = { info: 0, warning: 1, critical: 2 };

export function severityAtLeast(severity: AlertSeverity, min: AlertSeverity): boolean {
  return SEVERITY_RANK[severity] >= SEVERITY_RANK[min];
}

/** The CLI commands for this event (client/cli.ts syntax); the workflow id is the rollout's reference. */
export function rolloutCommands(
  workflowId: string,
  kind: AlertKind,
  stage?: number,
  /** How the CLI is spelled (the starting CLI's own invocation, RolloutInput.cli). */
  cli = 'canary',
): AlertCommands {
  const out: AlertCommands = { status: `${cli} status ${workflowId}` };
  if (kind === 'approval_needed' || kind === 'approval_reminder' || kind === 'approval_escalated') {
    out.approve = `${cli} approve ${workflowId}${stage !== undefined ? ` --stage ${stage}` : ''}`;
  }
  if (kind === 'paused' || kind === 'drift_detected') out.resume = `${cli} resume ${workflowId}`;
  if (!isEnding(kind) && kind !== 'rollback_started') {
    out.abort = `${cli} abort ${workflowId} --reason "<why>"`;
  }
  return out;
}

/**
 * The rollout's page in the Temporal UI: `base` is a URL (`https://temporal.example.com`) or a template with
 * `{namespace}` and `{workflowId}`, as the CLI's CANARY_UI_URL.
 */
export function rolloutUiUrl(base: string, temporalNamespace: string, workflowId: string): string {
  const id = encodeURIComponent(workflowId);
  const ns = encodeURIComponent(temporalNamespace);
  if (base.includes('{workflowId}')) return base.replaceAll('{workflowId}', id).replaceAll('{namespace}', ns);
  return `${base.replace(/\/+$/, '')}/namespaces/${ns}/workflows/${id}`;
}

/** What the workflow knows when it raises an event; the rest has defaults. */
export interface RolloutAlertInput extends Omit<
  RolloutAlert,
  'id' | 'event' | 'severity' | 'rolloutKey' | 'condition' | 'commands'
> {
  firstRunId: string;
  /** The event's sequence number in the rollout (carried across continue-as-new). */
  seq: number;
  severity?: AlertSeverity;
  rolloutKey?: string;
  condition?: string;
  commands?: AlertCommands;
}

/** Builds an event with the default condition, resolutions, severity, commands and rollout key. Pure. */
export function buildRolloutAlert(input: RolloutAlertInput): RolloutAlert {
  const { firstRunId, seq, ...rest } = input;
  const kind = input.kind;
  const resolves = input.resolves ?? resolvesFor(kind);
  const e: RolloutAlert = {
    ...rest,
    id: alertEventId(input.workflowId, firstRunId, seq, kind),
    kind,
    event: kind,
    severity: input.severity ?? DEFAULT_SEVERITY[kind],
    rolloutKey: input.rolloutKey ?? input.workflowId,
    condition: input.condition ?? conditionFor(kind, input.check?.name),
    commands: input.commands ?? rolloutCommands(input.workflowId, kind, input.stage, input.cli),
  };
  if (resolves && resolves.length > 0) e.resolves = resolves;
  else delete e.resolves;
  if (input.ends ?? isEnding(kind)) e.ends = true;
  return e;
}
