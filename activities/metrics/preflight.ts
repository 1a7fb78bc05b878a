// The metrics part of a rollout's preflight: before any traffic moves, every check's query runs once against the
// metrics source, so a query the source rejects, a source that does not answer, or a check with no data even for
// stable (its exporter is missing) is named before the rollout starts instead of holding or rolling it back later.
import type { Plan } from '../../workflows/types';
import type { MetricsProvider, PreflightFinding, RoutingVersions } from '../types';
import { MetricsQueryError } from './prometheus';

/** Runs each check's query once, for stable (the side that has traffic before the canary gets any). */
export async function metricsPreflight(
  metrics: MetricsProvider,
  plan: Plan,
  versions: RoutingVersions,
): Promise<PreflightFinding[]> {
  const windowSeconds = Math.max(30, Math.round(plan.analysis.intervalMs / 1000));
  const answers = await Promise.all(
    plan.analysis.checks.map(async (check, i): Promise<PreflightFinding | undefined> => {
      const path = `analysis.checks[${i}].${check.query !== undefined ? 'query' : 'metric'}`;
      try {
        await metrics.runQuery({
          side: 'stable',
          ...(versions.stable ? { version: versions.stable } : {}),
          ...(check.metric !== undefined ? { metric: check.metric } : {}),
          ...(check.query !== undefined ? { query: check.query } : {}),
          windowSeconds,
        });
        return undefined;
      } catch (err) {
        const message = err instanceof Error ? err.message : String(err);
        const rejected = err instanceof MetricsQueryError && err.permanent;
        return {
          area: 'query',
          cause: rejected ? 'input' : 'infrastructure',
          level: 'refuse',
          message: `check ${JSON.stringify(check.name)}: ${message}`,
          path,
        };
      }
    }),
  );
  return answers.filter((f): f is PreflightFinding => f !== undefined);
}
