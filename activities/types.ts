// One small interface per concern; one file (or folder) per provider implements it. Nothing here knows about
// stages. A provider instance is built for one rollout target (its settings are bound at construction) and
// cached by the activities' provider registry, the way Argo Rollouts builds a router from each rollout's spec.
import type { PreflightFinding, StageMirror } from '../workflows/types';
import type { AlertEvent, RolloutAlert } from '../workflows/alerts/events';

/** Which versions the routing must point at: the stable side and the canary side. */
export interface RoutingVersions {
  /** The version the stable workload runs (unknown when the workload manager could not tell). */
  stable?: string;
  canary: string;
}

/** What a weight change did. */
export interface WeightChange {
  /** The live canary weight before the call. */
  previous: number;
  /** Whether anything was written (false: the live object already matched). */
  changed: boolean;
  /** The weight the router could actually achieve, when it differs from the one asked (replica ratios). */
  achieved?: number;
  /** A person-readable remark, e.g. why the requested weight cannot be met exactly. */
  note?: string;
}

/**
 * The result of reading a weight back: `verified` true when the live object carries the weight, false
 * when it carries another one, null when this router cannot verify (Argo Rollouts' "not supported").
 */
export type WeightVerification =
  | { verified: true; weight: number }
  | { verified: false; weight: number; reason: string }
  | { verified: null; reason: string };

/** The preflight's findings are part of a rollout's status: the model lives beside it (workflows/types.ts). */
export type { PreflightFinding } from '../workflows/types';

/** The labels the pods of each side carry (or will carry, for a canary not made yet), for selector checks. */
export interface PodLabels {
  stable?: Record<string, string>;
  canary?: Record<string, string>;
}

/** What a workload manager's preflight found, and what routers need to check their selectors. */
export interface WorkloadPreflight {
  findings: PreflightFinding[];
  /** The version stable runs now, when the manager can tell. */
  stableVersion?: string;
  pods?: PodLabels;
}

/** How one setWeight call runs. */
export interface WeightOptions {
  /**
   * Settles when the shift may write (the rollback's capacity check): the router reads what it needs meanwhile, so
   * the check costs no round trip of its own before the shift, and writes nothing before it settles (nor at all when
   * it rejects). Resolves to true when it changed objects the router may have read: the router reads them again.
   */
  writeAfter?: Promise<boolean>;
}

/**
 * What a router calls before each write of a setWeight: the first call awaits `options.writeAfter` (and rejects when
 * it does), resolving to whether it changed what the router read; later calls (a retry) resolve to false at once.
 */
export function writeGate(options: WeightOptions = {}): () => Promise<boolean> {
  let gate = options.writeAfter;
  return async () => {
    const pending = gate;
    gate = undefined;
    return pending ? pending : false;
  };
}

/** Shifts traffic between stable and canary (Istio, NGINX, Gateway API, SMI, replica ratio, local proxy). */
export interface TrafficRouter {
  readonly type: string;
  /**
   * Creates or updates what the routing needs before traffic moves (a canary Ingress, DestinationRule
   * subsets, a canary backendRef...), pointing at these versions. Idempotent; also called after promotion
   * with both versions equal, so the stable side follows the new version.
   */
  setup(versions: RoutingVersions): Promise<void>;
  /** Reads the live canary weight (percent). */
  getWeight(): Promise<number>;
  /**
   * Sets the canary weight (percent): reads the live object, changes only what differs, and on a conflict
   * retries with a fresh read. `mirror` (a shadow stage, weight 0) copies that share of the matching requests to
   * the canary; a router that can mirror removes its mirror on every call without one, a router that cannot refuses
   * one (ProviderError `invalid`).
   */
  setWeight(weight: number, mirror?: StageMirror, options?: WeightOptions): Promise<WeightChange>;
  /**
   * Set on a router whose setWeight honours `options.writeAfter`. Without it, a caller with something to finish
   * first (the rollback's capacity check) awaits it before calling setWeight.
   */
  readonly writesAfterGate?: true;
  /** Reads the weight (and the mirror, where the router mirrors) back. */
  verifyWeight(weight: number, mirror?: StageMirror): Promise<WeightVerification>;
  /** Removes what setup created, leaving all traffic on stable. Idempotent. Called after promotion or rollback. */
  teardown(): Promise<void>;
  /**
   * Read-only: whether this router can drive this target on this worker (the objects and CRDs it needs exist, the
   * verbs it uses are allowed, its routing would point at pods of the right version). Changes nothing; a problem it
   * cannot check is not a finding. Absent: nothing to check (the local proxy).
   */
  preflight?(versions: RoutingVersions, pods: PodLabels): Promise<PreflightFinding[]>;
}

/** What the workload manager knows about the two sides after preparing the canary. */
export interface CanaryInfo {
  /** The version the stable workload runs, when it can tell. */
  stableVersion?: string;
}

/** Creates, scales, promotes and removes the canary workload. */
export interface WorkloadManager {
  readonly type: string;
  /**
   * Makes sure a canary running `version` exists and is available to take traffic, within the target's
   * progress deadline (a missed deadline is a {@link ProviderError} of kind `deadline`). Idempotent.
   */
  ensureCanary(version: string, image?: string): Promise<CanaryInfo>;
  /** Scales the canary for a stage's weight, where the router needs that. Idempotent. */
  scaleCanary?(weight: number): Promise<void>;
  /**
   * The stable workload takes `version`; returns once its rollout is complete. Idempotent. May say which
   * version label stable's pods carry afterwards, when that is not the new version (an immutable selector).
   */
  promoteStable(version: string, image?: string): Promise<{ stableLabel?: string } | void>;
  /**
   * Before traffic goes back to stable: makes sure stable has the capacity it had before the rollout (an
   * autoscaler may have shrunk it while the canary carried traffic). Returns a remark when it had to act.
   */
  ensureStableCapacity?(): Promise<string | undefined>;
  /** Scales the canary to zero (rollback). Idempotent. */
  scaleDownCanary(): Promise<void>;
  /**
   * Records on the canary which rollout (workflow id) drives it and its target, so the sweeper can undo routing
   * whose rollout no longer runs. Idempotent. Absent: nothing can be stranded (the local stack).
   */
  recordOwner?(owner: { workflowId: string; target: unknown }): Promise<void>;
  /** Removes the canary workload after promotion. Idempotent. */
  cleanupCanary(): Promise<void>;
  /**
   * Read-only: whether the canary can be made from stable here (stable exists, the verbs are allowed), and the pod
   * labels of both sides for the router's selector checks. Changes nothing. Absent: nothing to check.
   */
  preflight?(version: string, image?: string): Promise<WorkloadPreflight>;
}

export interface MetricQuery {
  /** Which side the query measures. */
  side: 'canary' | 'stable';
  /** The version that side runs, for templates that select a side by its version label. */
  version?: string;
  /** A named template (`error-rate`, `latency-p95`, ...) or a provider-specific raw query. */
  metric?: string;
  query?: string;
  /** The window the value covers, in seconds. */
  windowSeconds: number;
  /**
   * Evaluate as of this time (ms since the epoch) instead of now, for backtests. A provider that cannot look
   * into the past throws rather than answer for now.
   */
  atMs?: number;
}

/** Runs metric queries (local proxy counters, Prometheus, ...). */
export interface MetricsProvider {
  readonly type: string;
  /** The value for the window, or null when there is no data (never treated as healthy). */
  runQuery(query: MetricQuery): Promise<number | null>;
  /**
   * The series over [startMs, endMs] every stepSeconds, as ascending [timestamp ms, value] pairs, each point
   * covering the query's window ending at its timestamp; points without a number are left out. Absent where
   * the provider has no range queries (test checks then cannot be measured).
   */
  rangeQuery?(
    query: MetricQuery & { startMs: number; endMs: number; stepSeconds: number },
  ): Promise<Array<[number, number]>>;
  isOnline(): Promise<boolean>;
}

/**
 * A failure a provider can name precisely. `forbidden` and `not_found` are permanent: a forward step fails
 * fast on them, a rollback keeps retrying (someone may fix the permission). `deadline`: the canary did not
 * become available in time. `conflict`: the object kept changing under us. `invalid`: the target asks for
 * something this provider cannot do. `unconfigured`: the worker lacks what the provider needs (no cluster
 * credentials, no Prometheus URL): its environment must change, not the rollout.
 */
export class ProviderError extends Error {
  constructor(
    readonly kind: 'forbidden' | 'not_found' | 'deadline' | 'conflict' | 'invalid' | 'unconfigured',
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'ProviderError';
  }

  /** Retrying cannot help without someone changing the cluster or the target. */
  get permanent(): boolean {
    return this.kind !== 'conflict';
  }
}

/** The alert model (kinds, events, routing) is pure and lives with the workflow that raises the events. */
export type { AlertEvent, AlertSeverity } from '../workflows/alerts/events';

/** What `sendAlert` delivers to (the log and webhook sinks, and the demo's echo). */
export interface AlertSink {
  readonly type: string;
  send(event: AlertEvent): Promise<void>;
}

/**
 * One place alerts go (log, webhook, Slack, Alertmanager, PagerDuty), one file each in alerts/. Each sink is
 * delivered in its own `deliverAlert` activity, so a failing or slow sink delays no other. `deliver` throws an
 * AlertDeliveryError (alerts/http.ts) saying whether a retry can help; receivers deduplicate on the event's id
 * or its condition's dedup key, so retried deliveries are harmless (Slack excepted: it cannot deduplicate).
 */
export interface RolloutAlertSink {
  /** `log`, `webhook`, `slack`, `alertmanager`, `pagerduty`: what routing rules and deliverAlert name. */
  readonly name: string;
  deliver(event: RolloutAlert): Promise<void>;
}
