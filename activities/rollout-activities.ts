// The activities the rollout workflow calls, built over whichever providers the worker was configured with.
// Every activity is idempotent: a retried or duplicated attempt reads the live state and changes only what differs.
import { ApplicationFailure } from '@temporalio/common';
import type { Check, RolloutTarget } from '../workflows/types';
import type { AlertEvent, Providers } from './types';

export interface CheckMeasurement {
  name: string;
  value: number | null;
  error?: string;
}

export function createActivities(p: Providers) {
  return {
    async prepareCanary(input: { target: RolloutTarget; version: string; image?: string }): Promise<void> {
      await p.workloads.ensureCanary(input.target, input.version, input.image);
    },

    /** Sets the canary weight, then reads it back: the router must report what was asked. */
    async setCanaryWeight(input: {
      target: RolloutTarget;
      weight: number;
    }): Promise<{ previous: number; current: number }> {
      const previous = await p.router.getWeight(input.target);
      if (previous !== input.weight) await p.router.setWeight(input.target, input.weight);
      const current = await p.router.getWeight(input.target);
      if (current !== input.weight) {
        throw new Error(
          `${p.router.type} router reports canary weight ${current} % after setting ${input.weight} %`,
        );
      }
      return { previous, current };
    },

    /** Measures every check on the canary; judging the numbers is the workflow's job. */
    async runAnalysis(input: {
      target: RolloutTarget;
      checks: Check[];
      windowSeconds: number;
    }): Promise<CheckMeasurement[]> {
      return Promise.all(
        input.checks.map(async (check): Promise<CheckMeasurement> => {
          try {
            const value = await p.metrics.runQuery({
              target: input.target,
              side: 'canary',
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
    },

    async promoteStable(input: { target: RolloutTarget; version: string; image?: string }): Promise<void> {
      await p.workloads.promoteStable(input.target, input.version, input.image);
    },

    async scaleDownCanary(input: { target: RolloutTarget }): Promise<void> {
      await p.workloads.scaleDownCanary(input.target);
    },

    async cleanupCanary(input: { target: RolloutTarget }): Promise<void> {
      await p.workloads.cleanupCanary(input.target);
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
