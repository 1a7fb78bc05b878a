// What a target's metrics provider can measure, checked against a plan's analysis before anything starts: a plan
// whose checks the provider cannot answer would otherwise hold (or roll back) on query errors at run time.
import { ANALYSIS_METRICS } from './analysis-spec';
import { formatDuration } from './duration';
import type { InputProblem } from './problems';
import type { MetricsTarget, Target } from './target';
import type { Plan } from './types';

/** What each provider offers. Every Prometheus template set (istio, nginx, http) defines every named metric. */
export interface MetricsOffer {
  provider: MetricsTarget['provider'];
  /** Named metrics (`metric:`) it answers. */
  metrics: readonly string[];
  /** Raw PromQL (`query:`). */
  queries: boolean;
  /** Series over a range (Mann-Whitney tests, backtests). */
  ranges: boolean;
  /** Values as of a past time (day-over-day baselines, backtests). */
  past: boolean;
}

export const METRICS_OFFERS: Readonly<Record<MetricsTarget['provider'], MetricsOffer>> = {
  // The demo stack's own counters: named metrics of the present only.
  local: { provider: 'local', metrics: ANALYSIS_METRICS, queries: false, ranges: false, past: false },
  prometheus: {
    provider: 'prometheus',
    metrics: ANALYSIS_METRICS,
    queries: true,
    ranges: true,
    past: true,
  },
};

/**
 * Checks the plan can be measured by the target's metrics provider. A target without `metrics` relies on the
 * worker's default provider, which only the worker knows: nothing to check here.
 */
export function metricsOfferProblems(plan: Plan, target: Target): InputProblem[] {
  const provider = target.metrics?.provider;
  if (!provider) return [];
  const offer = METRICS_OFFERS[provider];
  const where = `target.metrics.${provider}`;
  const problems: InputProblem[] = [];
  const rules = plan.analysis.rules;
  plan.analysis.checks.forEach((check, i) => {
    const path = `analysis.checks[${i}]`;
    if (check.metric !== undefined && !offer.metrics.includes(check.metric)) {
      problems.push({
        path: `${path}.metric`,
        message: `the ${provider} metrics provider (${where}) has no metric "${check.metric}"; it offers ${offer.metrics.join(', ')}`,
      });
    }
    if (check.query !== undefined && !offer.queries) {
      problems.push({
        path: `${path}.query`,
        message:
          `the ${provider} metrics provider (${where}) reads named metrics only (${offer.metrics.join(', ')}), ` +
          'not queries; use a metric, or point target.metrics at Prometheus',
      });
    }
    const offsetMs = rules?.[i]?.compare?.offsetMs;
    if (offsetMs !== undefined && !offer.past) {
      problems.push({
        path: `${path}.compare.offset`,
        message: `a baseline from ${formatDuration(offsetMs)} earlier needs metrics as of a past time, which the ${provider} metrics provider (${where}) cannot give; point target.metrics at Prometheus`,
      });
    }
    if (rules?.[i]?.test && !offer.ranges) {
      problems.push({
        path: `${path}.test`,
        message: `a ${rules[i].test!.type} test needs series over a range, which the ${provider} metrics provider (${where}) cannot give; point target.metrics at Prometheus`,
      });
    }
  });
  return problems;
}
