// The activities the rollout workflow calls. Each takes the rollout's target and gets its providers for that
// target from the registry. Every activity is idempotent: a retried or duplicated attempt reads the live state
// and changes only what differs.
import { ApplicationFailure } from '@temporalio/common';
import type { Target } from '../workflows/target';
import type { Check } from '../workflows/types';
import type { ProviderSource } from './factory';
import { ProviderError, type AlertEvent, type CanaryInfo, type RoutingVersions } from './types';

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
}

export interface AnalysisResult {
  measurements: CheckMeasurement[];
  /** The router's live weight, when the rollout asked for a drift check. */
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

async function step<T>(mode: StepMode, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw failure(err, mode);
  }
}

export function createActivities(p: ProviderSource) {
  return {
    async prepareCanary(input: { target: Target; version: string; image?: string }): Promise<CanaryInfo> {
      return step('forward', () => p.workloads(input.target).ensureCanary(input.version, input.image));
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
    }): Promise<WeightResult> {
      const router = p.router(input.target);
      return step(input.mode ?? 'forward', async () => {
        const change = await router.setWeight(input.weight);
        const want = change.achieved ?? input.weight;
        const check = await router.verifyWeight(input.weight);
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
            return { name: check.name, value: null, error: err instanceof Error ? err.message : String(err) };
          }
        }),
      );
      if (!input.checkWeight) return { measurements };
      const router = p.router(input.target);
      // A weight that cannot be read is no drift evidence either way; the next shift reads it again.
      const liveWeight = await router.getWeight().catch(() => undefined);
      return { measurements, router: router.type, ...(liveWeight !== undefined ? { liveWeight } : {}) };
    },

    async promoteStable(input: { target: Target; version: string; image?: string }): Promise<void> {
      await step('forward', () => p.workloads(input.target).promoteStable(input.version, input.image));
    },

    /** Before traffic goes back to stable: stable gets back the capacity it had. Returns a remark when it acted. */
    async ensureStableCapacity(input: { target: Target }): Promise<string | undefined> {
      const w = p.workloads(input.target);
      return step('rollback', async () => (w.ensureStableCapacity ? w.ensureStableCapacity() : undefined));
    },

    async scaleDownCanary(input: { target: Target }): Promise<void> {
      await step('rollback', () => p.workloads(input.target).scaleDownCanary());
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
  };
}

export type RolloutActivities = ReturnType<typeof createActivities>;
