// The Temporal patches the rollout workflow has taken, oldest first. Each keeps rollouts recorded before it deciding
// as they did; the driver decides them (patched()) and hands the machine the answers as flags or asks where a run
// first reaches them.
/** Rollouts started before targets named their routers ran no routing setup, teardown or capacity check. */
export const TARGET_PATCH = 'per-rollout-target';
/** Rollouts whose plans use the full analysis form are judged by judge-v2 from this patch on. */
export const JUDGE_PATCH = 'judge-v2';
/** Rollouts started before plans were held to whole-percent weights and size bounds. */
export const STRICT_PLAN_PATCH = 'strict-plan-validation';
/** Rollouts started before the 10 s minimum analysis interval and per-metric threshold ranges. */
export const PLAN_LIMITS_PATCH = 'plan-limits';
/** From this patch on, a rolled-back rollout ends as a failed workflow (typed, carrying the result). */
export const ROLLBACK_FAILS_PATCH = 'rolled-back-fails-workflow';
/** From this patch on, the workflow refuses checks its target's metrics provider cannot measure. */
export const METRICS_OFFER_PATCH = 'metrics-offer';
/** From this patch on, a rollback caused by a cancel names who requested it, when Temporal recorded that. */
export const CANCEL_IDENTITY_PATCH = 'cancel-requester';
/**
 * From this patch on, every event has a stable id (workflow id, first run id, sequence number) and goes to each
 * routed sink in its own deliverAlert activity, started without awaiting it (one chain per sink, in order).
 * Rollouts recorded before it keep the single sendAlert activity, awaited where the event happens.
 */
export const ALERTS_PATCH = 'alert-sinks-v2';
/**
 * From this patch on a rollout never stays stuck: a read-only preflight before anything is touched (a refusal ends
 * it as not started), a rollback undoes only what the rollout changed, a person can resolve a rollback stuck on a
 * failing step, permanent query errors count against a check at once, and a rolled-back rollout names who or what
 * ended it. Decided once, at the rollout's first run, and carried in its state.
 */
export const NEVER_STUCK_PATCH = 'never-stuck';
/**
 * From this patch on (decided once, at the rollout's first run, and carried in its state as `machineV2`):
 * - a hold counts only time inside the deployment windows (as it never counted paused time);
 * - a gate that is approved reads as approved while the rollout waits for a window (phase progressing, not
 *   waiting_approval);
 * - a canary workload that cannot be removed after promotion leaves the rollout promoted, with a warning and the
 *   command that removes it, instead of failing the workflow;
 * - short-form checks are converted to the full form at the edge (toFullForm) and judged by judge-v2, with the
 *   short form's messages.
 */
export const MACHINE_V2_PATCH = 'machine-v2';
/**
 * From this patch on, a resume signal from anyone but the release is ignored while a release member is paused by its
 * release's hold (onFailure: rollback-member); the person answers the release instead. Only release members reach it.
 */
export const RELEASE_HOLD_PATCH = 'release-hold-resume';
/**
 * From this patch on, a release whose members name clusters watches each cluster's workers (one heartbeating activity
 * for the whole release): a member whose cluster has no worker raises a `stuck` alert, the release promotes nothing
 * meanwhile, and the alert is resolved once a worker is back. Releases without clusters never reach it.
 */
export const RELEASE_WORKERS_PATCH = 'release-cluster-workers';
/**
 * From this patch on (decided once, at the rollout's first run, and carried in its state as `fleet`), a rollout asks
 * its scope's fleet workflows (workflows/fleet.ts) before it deploys its canary, enters a stage or promotes, and waits
 * while one says its scope is frozen. A freeze such a workflow tells a rollout of holds it whatever build started it.
 */
export const FLEET_PATCH = 'fleet-controls';
/**
 * From this patch on (decided once, at the rollout's first run, and carried in its state as `queueAlerts`), a rollout
 * that its namespace's maxConcurrent queues raises a `queued` alert (its position, the limit, who holds the slots, and
 * how to leave the queue), and a `dequeued` alert when its slot is granted. Only rollouts with fleet-controls queue.
 */
export const QUEUE_ALERTS_PATCH = 'fleet-queue-alerts';
/**
 * From this patch on (decided once, at the rollout's first run, and carried in its state as `pauseHolds`), a paused
 * rollout moves nothing forward: it deploys no canary, enters no stage and does not promote until it is resumed (it
 * waits analysing, so a breach still rolls back; an abort still ends it). Before it, a pause held only the hold's
 * clock, a gate and a window's wait. And a promote no longer skips a freeze before the canary (it deployed the canary
 * while frozen); the freeze holds it there as it holds the promotion.
 */
export const PAUSE_HOLDS_PATCH = 'pause-holds-advance';
/**
 * From this patch on (decided where a rollback first reaches its shift back to stable), the first attempt of that
 * shift runs as a local activity: the worker starts it as soon as the workflow task that began the rollback is
 * processed, with no round trip through the server (task completion, activity dispatch) before traffic moves. One
 * attempt; if it fails, the persistent path takes over as before. Not for the replica ratio, whose shift waits for
 * stable's pods. Rollouts whose rollback began before this build keep the activity they scheduled.
 */
export const ROLLBACK_LOCAL_PATCH = 'rollback-local-shift';
