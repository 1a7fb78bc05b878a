// The activities the rollout workflow calls. Each takes the rollout's target and gets its providers for that
// target from the registry. Every activity is idempotent: a retried or duplicated attempt reads the live state
// and changes only what differs.
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type { AnalysisCheck } from '../workflows/analysis-spec';
import type { RoundMeasurement } from '../workflows/judge-v2';
import type { Target } from '../workflows/target';
import type { Check, StageMirror } from '../workflows/types';
import { cannotMirror } from '../workflows/mirror-spec';
import type { RolloutAlert } from '../workflows/alerts/events';
import { AlertDeliveryError } from './alerts/http';
import { heartbeating } from './heartbeat';
import { createHookActivities } from './hooks';
import { measureJobCheck } from './hooks/job-check';
import type { ProviderSource } from './factory';
import { createIdentityActivities, type IdentityConfig } from './identity';
import { runPreflight, type PreflightInput, type PreflightReport } from './preflight';
import { measureCheck, queryFailure, type QueryFailure } from './metrics/measure';
import { measureWeb } from './metrics/web';
import {
  ProviderError,
  type AlertEvent,
  type CanaryInfo,
  type MetricsProvider,
  type RoutingVersions,
  type WeightChange,
} from './types';

export interface CheckMeasurement {
  name: string;
  value: number | null;
  error?: string;
}

/** Forward steps fail fast on permanent errors; a rollback (or a promotion's return to stable) never gives up. */
export type StepMode = 'forward' | 'rollback';

export interface WeightResult {
  previous: number;
  /** The live weight after the change, as read back (the achieved one, where the router cannot be exact). */
  current: number;
  changed?: boolean;
  /** Why the requested weight could not be met exactly. */
  note?: string;
  /** Set when the live weight before the change was not the one the rollout last set. */
  drift?: { expected: number; found: number };
  /** Set when the router cannot read its weight back. */
  unverified?: string;
  router?: string;
  /** What making sure stable could take the traffic found or did (asked with `ensureCapacity`), when worth saying. */
  capacityNote?: string;
}

export interface AnalysisResult {
  measurements: CheckMeasurement[];
  /** The router's live weight, when the rollout asked for a drift check. */
  liveWeight?: number;
  router?: string;
}

/** One analysis round's measurements for the judge (judge-v2.ts judgeRound), by check name. */
export interface ChecksMeasurement {
  measurements: Record<string, RoundMeasurement>;
  /** The router's live weight, when the rollout asked for a drift check (absent when it could not be read). */
  liveWeight?: number;
  router?: string;
}

/**
 * Permanent provider errors (forbidden, not found, invalid target, missed deadline) stop a forward step at once.
 * In a rollback they stay retryable: someone may fix the permission, and traffic must go back.
 */
function failure(err: unknown, mode: StepMode): unknown {
  if (err instanceof ProviderError) {
    const type = `${err.kind.replace(/(^|_)(\w)/g, (_m, _s, c: string) => c.toUpperCase())}`;
    if (err.permanent && mode === 'forward') return ApplicationFailure.nonRetryable(err.message, type);
    return ApplicationFailure.retryable(err.message, type);
  }
  return err;
}

/** The workflow id of the rollout running this activity; undefined outside an activity (direct calls in tests). */
function activityWorkflowId(): string | undefined {
  try {
    return Context.current().info.workflowExecution?.workflowId;
  } catch {
    return undefined;
  }
}

async function step<T>(mode: StepMode, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw failure(err, mode);
  }
}

export function createActivities(p: ProviderSource, identity: IdentityConfig = { requireVerified: false }) {
  return {
    /**
     * The rollout's first step: whether this worker can drive this target with this plan (cluster, objects,
     * verbs, selectors, queries, data), read-only. Returns every finding; throws only when it cannot run at all.
     * It also tells the rollout whether this worker demands verified identities (recorded once, at its start).
     */
    async preflight(input: PreflightInput): Promise<PreflightReport> {
      const report = await heartbeating(() => runPreflight(p, input));
      return identity.requireVerified ? { ...report, requireVerified: true } : report;
    },

    /** Verifies a signed request (a local activity, run before the rollout accepts it): activities/identity. */
    ...createIdentityActivities(identity),

    /** Runs one of the plan's hooks (an HTTP call or a Kubernetes Job): activities/hooks. */
    ...createHookActivities(p.hooks),

    async prepareCanary(input: { target: Target; version: string; image?: string }): Promise<CanaryInfo> {
      const w = p.workloads(input.target);
      return step('forward', async () => {
        const info = await w.ensureCanary(input.version, input.image);
        // Before any traffic reaches the canary: which rollout owns it, for the sweeper (activities/sweep.ts).
        const workflowId = activityWorkflowId();
        if (workflowId && w.recordOwner) await w.recordOwner({ workflowId, target: input.target });
        return info;
      });
    },

    /** Creates what routing needs (canary Ingress, subsets, backendRefs) for these versions. */
    async prepareRouting(input: {
      target: Target;
      versions: RoutingVersions;
      mode?: StepMode;
    }): Promise<void> {
      await step(input.mode ?? 'forward', () => p.router(input.target).setup(input.versions));
    },

    /**
     * Sets the canary weight, then reads it back: the router must report what was asked (or what it can
     * achieve). `expected` is the weight the rollout last set, so a change by someone else shows as drift.
     */
    async setCanaryWeight(input: {
      target: Target;
      weight: number;
      expected?: number;
      mode?: StepMode;
      /**
       * First make sure stable can take the traffic (machine-v2's rollback and promotion): in this activity, so the
       * check costs no round trip through the workflow before the shift.
       */
      ensureCapacity?: boolean;
      /**
       * A shadow stage (weight 0): copy this share of the matching requests to the canary. Every shift without it
       * removes a mirror the router set before.
       */
      mirror?: StageMirror;
    }): Promise<WeightResult> {
      const router = p.router(input.target);
      return step(input.mode ?? 'forward', async () => {
        const refusal = input.mirror ? cannotMirror(router.type) : undefined;
        if (refusal) throw new ProviderError('invalid', refusal);
        const workloads = input.ensureCapacity ? p.workloads(input.target) : undefined;
        // The check runs while the router reads its objects: when stable is big enough (one read of the
        // Deployments, at once with the router's own) it costs the shift no round trip; when stable must grow
        // first, the router writes only after it did (and reads again what the check changed).
        const capacity = workloads?.ensureStableCapacity?.();
        const writeAfter = capacity?.then((note) => note !== undefined);
        // Both are awaited below; a router that fails before it awaits the check must not leave them unhandled.
        for (const pending of [capacity, writeAfter]) pending?.catch(() => undefined);
        if (capacity && !router.writesAfterGate) await capacity;
        let change: WeightChange;
        try {
          change = await router.setWeight(
            input.weight,
            input.mirror,
            writeAfter && router.writesAfterGate ? { writeAfter } : undefined,
          );
        } catch (err) {
          await capacity?.catch(() => undefined); // the next attempt starts after this one's check ended
          throw err;
        }
        const capacityNote = await capacity;
        const want = change.achieved ?? input.weight;
        const check = await router.verifyWeight(input.weight, input.mirror);
        if (check.verified === false) {
          throw new Error(
            `${router.type} router reports canary weight ${check.weight}% after setting ${input.weight}%: ${check.reason}`,
          );
        }
        const current = check.verified === true ? check.weight : want;
        return {
          previous: change.previous,
          current,
          changed: change.changed,
          router: router.type,
          ...(change.note ? { note: change.note } : {}),
          ...(capacityNote ? { capacityNote } : {}),
          ...(input.expected !== undefined && change.previous !== input.expected
            ? { drift: { expected: input.expected, found: change.previous } }
            : {}),
          ...(check.verified === null ? { unverified: check.reason } : {}),
        };
      });
    },

    /** Measures every check on the canary (judging is the workflow's job), and reads the live weight for drift. */
    async runAnalysis(input: {
      target: Target;
      checks: Check[];
      windowSeconds: number;
      /** When set, the router's live weight is read too. */
      checkWeight?: boolean;
      /** The versions of both sides, for metrics that select a side by its version. */
      versions?: RoutingVersions;
    }): Promise<AnalysisResult> {
      return heartbeating(async () => {
        const metrics = p.metrics(input.target);
        const measurements = await Promise.all(
          input.checks.map(async (check): Promise<CheckMeasurement> => {
            try {
              const value = await metrics.runQuery({
                side: 'canary',
                ...(input.versions?.canary ? { version: input.versions.canary } : {}),
                metric: check.metric,
                query: check.query,
                windowSeconds: input.windowSeconds,
              });
              return { name: check.name, value: value === null || Number.isNaN(value) ? null : value };
            } catch (err) {
              // An unreadable metric is recorded as no data, never as healthy.
              return {
                name: check.name,
                value: null,
                error: err instanceof Error ? err.message : String(err),
              };
            }
          }),
        );
        if (!input.checkWeight) return { measurements };
        const router = p.router(input.target);
        // A weight that cannot be read is no drift evidence either way; the next shift reads it again.
        const liveWeight = await router.getWeight().catch(() => undefined);
        return { measurements, router: router.type, ...(liveWeight !== undefined ? { liveWeight } : {}) };
      });
    },

    /**
     * Measures one analysis round of the new checks (analysis-spec.ts) for the judge, every query in parallel:
     * the canary's value over each check's window; stable's too where the check compares with it; the canary's
     * request count where it sets minRequests; both sides' series for a test check. A query that fails is
     * recorded on its check as `error` (never thrown: a failed query is the judge's to weigh). `atMs` evaluates
     * as of that time (backtests; a provider that cannot look into the past answers with an error).
     */
    async measureChecks(input: {
      target: Target;
      checks: AnalysisCheck[];
      versions: RoutingVersions;
      /** When set, the router's live weight is read too. */
      checkWeight?: boolean;
      atMs?: number;
      /** Job checks' round: names their Jobs (the same for every attempt of the round). */
      round?: { rolloutId: string; roundKey: string };
    }): Promise<ChecksMeasurement> {
      return heartbeating(async () => {
        let metrics: MetricsProvider | undefined;
        let unavailable: QueryFailure | undefined;
        try {
          // Web checks read their own endpoints: a plan of web checks alone needs no metrics source.
          if (input.checks.some((c) => !c.web && !c.job)) metrics = p.metrics(input.target);
        } catch (err) {
          // No provider for this target (no Prometheus URL, say): every check's query fails the same way.
          unavailable = queryFailure(err);
        }
        const measured = Promise.all(
          input.checks.map(async (check): Promise<[string, RoundMeasurement]> => [
            check.name,
            check.web
              ? await measureWeb(check.name, check.web, { atMs: input.atMs })
              : check.job
                ? await measureJobCheck(
                    check,
                    input.round && { namespace: input.target.namespace, ...input.round },
                    p.hooks?.kube,
                    { atMs: input.atMs },
                  )
                : metrics
                  ? await measureCheck(metrics, check, input.versions, input.atMs)
                  : { value: null, error: unavailable! },
          ]),
        );
        const weight = input.checkWeight
          ? (async () => {
              const router = p.router(input.target);
              // A weight that cannot be read is no drift evidence either way; the next shift reads it again.
              return { router: router.type, liveWeight: await router.getWeight().catch(() => undefined) };
            })()
          : undefined;
        const [entries, live] = await Promise.all([measured, weight]);
        const out: ChecksMeasurement = { measurements: Object.fromEntries(entries) };
        if (live) {
          out.router = live.router;
          if (live.liveWeight !== undefined) out.liveWeight = live.liveWeight;
        }
        return out;
      });
    },

    async promoteStable(input: {
      target: Target;
      version: string;
      image?: string;
    }): Promise<{ stableLabel?: string }> {
      const promoted = await step('forward', () =>
        p.workloads(input.target).promoteStable(input.version, input.image),
      );
      return promoted ?? {};
    },

    /** Before traffic goes back to stable: stable gets back the capacity it had. Returns a remark when it acted. */
    async ensureStableCapacity(input: { target: Target }): Promise<string | undefined> {
      const w = p.workloads(input.target);
      return step('rollback', async () => (w.ensureStableCapacity ? w.ensureStableCapacity() : undefined));
    },

    async scaleDownCanary(input: { target: Target }): Promise<void> {
      await step('rollback', () => p.workloads(input.target).scaleDownCanary());
    },

    /**
     * Who asked Temporal to cancel this rollout's workflow (the Web UI, `temporal workflow cancel`, an API
     * client), from its own history's cancel-request event; undefined when Temporal recorded no identity.
     */
    async cancelRequester(): Promise<string | undefined> {
      const ctx = Context.current();
      const execution = ctx.info.workflowExecution;
      if (!execution) return undefined; // not run by a workflow
      const { workflowId, runId } = execution;
      const history = await ctx.client.workflow.getHandle(workflowId, runId).fetchHistory();
      for (const event of history.events ?? []) {
        const identity = event.workflowExecutionCancelRequestedEventAttributes?.identity?.trim();
        if (event.workflowExecutionCancelRequestedEventAttributes) return identity || undefined;
      }
      return undefined;
    },

    /** Removes what routing setup created, leaving all traffic on stable. */
    async teardownRouting(input: { target: Target }): Promise<void> {
      await step('rollback', () => p.router(input.target).teardown());
    },

    async cleanupCanary(input: { target: Target }): Promise<void> {
      await step('rollback', () => p.workloads(input.target).cleanupCanary());
    },

    /** Delivers to every sink; fails (and is retried a few times) if any sink failed. Alerts are at-least-once. */
    async sendAlert(event: AlertEvent): Promise<void> {
      const results = await Promise.allSettled(p.alerts.map((sink) => sink.send(event)));
      const failed = results.flatMap((r, i) =>
        r.status === 'rejected' ? [`${p.alerts[i].type}: ${String(r.reason?.message ?? r.reason)}`] : [],
      );
      if (failed.length > 0) {
        throw ApplicationFailure.retryable(`alert not delivered (${failed.join('; ')})`, 'AlertFailed');
      }
    },

    /** The names of the sinks this worker delivers to (`log` always; no secrets), for routing in the workflow. */
    async alertSinks(): Promise<string[]> {
      return (p.alertSinks ?? []).map((s) => s.name);
    },

    /**
     * Delivers one event to one sink; start one per routed sink, so none waits for another. Retryable failures
     * (`AlertFailed`: 5xx, 429, timeouts, network) honour the receiver's Retry-After; refusals (`AlertRejected`:
     * any other 4xx) and unknown sinks (`AlertSinkUnknown`) are not retried. Webhook, Alertmanager and PagerDuty
     * deduplicate by event id or dedup key, so retries are harmless; Slack cannot (at-least-once).
     */
    async deliverAlert(sink: string, event: RolloutAlert): Promise<void> {
      // A delivery cut off by a crash is retried (same id) as soon as the heartbeat timeout notices.
      await heartbeating(() => deliverToSink(p, sink, event));
    },
  };
}

export type RolloutActivities = ReturnType<typeof createActivities>;

/** deliverAlert's body, with its failures turned into what Temporal's retry policy acts on. */
export async function deliverToSink(p: ProviderSource, sinkName: string, event: RolloutAlert): Promise<void> {
  const sink = (p.alertSinks ?? []).find((s) => s.name === sinkName);
  if (!sink) {
    const known = (p.alertSinks ?? []).map((s) => s.name).join(', ') || 'none';
    throw ApplicationFailure.nonRetryable(
      `alert sink "${sinkName}" is not configured on this worker (configured: ${known})`,
      'AlertSinkUnknown',
    );
  }
  try {
    await sink.deliver(event);
  } catch (err) {
    const message = `alert ${event.id} not delivered: ${err instanceof Error ? err.message : String(err)}`;
    if (err instanceof AlertDeliveryError && err.permanent) {
      throw ApplicationFailure.nonRetryable(message, 'AlertRejected');
    }
    throw ApplicationFailure.create({
      message,
      type: 'AlertFailed',
      nonRetryable: false,
      ...(err instanceof AlertDeliveryError && err.retryAfterMs !== undefined
        ? { nextRetryDelay: err.retryAfterMs }
        : {}),
    });
  }
}
