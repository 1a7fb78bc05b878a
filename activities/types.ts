// One small interface per concern; one file per provider implements it. Nothing here knows about stages.
import type { RolloutTarget } from '../workflows/types';

/** Shifts traffic between stable and canary (Istio, NGINX, Gateway API, SMI, replica ratio, local proxy). */
export interface TrafficRouter {
  readonly type: string;
  /** Reads the live canary weight (percent). */
  getWeight(target: RolloutTarget): Promise<number>;
  /** Sets the canary weight (percent); must be a no-op when the live weight already matches. */
  setWeight(target: RolloutTarget, weight: number): Promise<void>;
}

/** Creates, scales, promotes and removes the canary workload. */
export interface WorkloadManager {
  readonly type: string;
  /** Makes sure a canary running `version` exists and is ready to take traffic. Idempotent. */
  ensureCanary(target: RolloutTarget, version: string, image?: string): Promise<void>;
  /** The stable workload takes `version`; returns once it is ready. Idempotent. */
  promoteStable(target: RolloutTarget, version: string, image?: string): Promise<void>;
  /** Scales the canary to zero (rollback). Idempotent. */
  scaleDownCanary(target: RolloutTarget): Promise<void>;
  /** Removes the canary workload after promotion. Idempotent. */
  cleanupCanary(target: RolloutTarget): Promise<void>;
}

export interface MetricQuery {
  target: RolloutTarget;
  /** Which side the query measures. */
  side: 'canary' | 'stable';
  /** A named template (`error-rate`, `latency-p95`, ...) or a provider-specific raw query. */
  metric?: string;
  query?: string;
  /** The window the value covers, in seconds. */
  windowSeconds: number;
}

/** Runs metric queries (local proxy counters, Prometheus, ...). */
export interface MetricsProvider {
  readonly type: string;
  /** The value for the window, or null when there is no data (never treated as healthy). */
  runQuery(query: MetricQuery): Promise<number | null>;
  isOnline(): Promise<boolean>;
}

export type AlertSeverity = 'info' | 'warning' | 'critical';

export interface AlertEvent {
  /** Machine-readable kind: rollout_started, stage_advanced, approval_needed, paused, resumed, rollback_started, rolled_back, promoted, ... */
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

/** Delivers alerts (log, webhook, Alertmanager, Slack, ...). */
export interface AlertSink {
  readonly type: string;
  send(event: AlertEvent): Promise<void>;
}

export interface Providers {
  router: TrafficRouter;
  workloads: WorkloadManager;
  metrics: MetricsProvider;
  alerts: AlertSink[];
}
