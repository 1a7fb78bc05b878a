// The words a plan uses about alerts: the event kinds, the severities and a routing rule. It imports nothing, so
// workflows/types.ts can name a plan's routing rules without importing the alert model (events.ts), which itself
// names the rollout's types: either way round would be an import cycle.

/** Every event kind, in the order a rollout meets them. */
export const ALERT_KINDS = [
  'rollout_started',
  'stage_advanced',
  'approval_needed',
  'approval_reminder',
  'approval_escalated',
  'approved',
  'paused',
  'resumed',
  'frozen',
  'unfrozen',
  'queued',
  'dequeued',
  'check_breached',
  'stepped_back',
  'stepped_forward',
  'drift_detected',
  'stuck',
  'hook_failed',
  'rollback_started',
  'rolled_back',
  'promoted',
  'not_started',
] as const;
export type AlertKind = (typeof ALERT_KINDS)[number];

export type AlertSeverity = 'info' | 'warning' | 'critical';

export const ALERT_SEVERITIES = ['info', 'warning', 'critical'] as const satisfies readonly AlertSeverity[];

/**
 * A plan's routing rule. A sink that at least one rule names (or `*`) receives exactly the events its rules
 * match (plus resolutions, for Alertmanager and PagerDuty); a sink no rule names keeps its default routing.
 */
export interface AlertRoute {
  /** Sink names (`log`, `webhook`, `slack`, `alertmanager`, `pagerduty`), or `*` for every sink. */
  sinks: string[];
  /** Only these kinds (default: every kind). */
  kinds?: AlertKind[];
  /** Only events of at least this severity (default: every severity). */
  minSeverity?: AlertSeverity;
}
