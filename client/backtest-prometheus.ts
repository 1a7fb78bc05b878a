// `canary backtest` against Prometheus: the measure function that reads a plan's checks at each round's historical
// time through the live rollout's measureChecks activity and the worker's provider registry. Kept apart from the
// backtest's walk (backtest.ts) so that only the backtest command loads the providers (and, through the registry,
// the Kubernetes client): every other command stays light.
import { ProviderRegistry, providerConfigFromEnv } from '../activities/factory';
import { PrometheusMetricsProvider } from '../activities/metrics/prometheus';
import { createActivities } from '../activities/rollout-activities';
import type { RoutingVersions } from '../activities/types';
import type { AnalysisCheck } from '../workflows/analysis-spec';
import type { Target } from '../workflows/target';
import { BacktestInputError, type MeasureFn } from './backtest';
import { InfrastructureError } from './errors';

/** Query failures that are the backtest's own infrastructure, not the history: they stop it (exit 3). */
const INFRASTRUCTURE_KINDS = new Set(['unreachable', 'timeout', 'auth', 'server']);

export interface PrometheusMeasure {
  measure: MeasureFn;
  /** The target with the metrics the backtest reads (Prometheus, from the target or CANARY_PROMETHEUS_URL). */
  target: Target;
  /** The server's URL without credentials. */
  url: string;
}

/**
 * The measure function of a real backtest: the measureChecks activity (the same code the worker runs), with the
 * worker's provider registry read from `env` (CANARY_PROMETHEUS_* for the URL default, credentials, TLS and
 * timeout). The target's `metrics.prometheus.url` wins; a target without metrics uses CANARY_PROMETHEUS_URL.
 * Renders every check's queries first, so a plan the template set cannot express is refused before any round.
 */
export function prometheusMeasure(
  target: Target,
  checks: AnalysisCheck[],
  versions: Partial<RoutingVersions>,
  env: NodeJS.ProcessEnv,
): PrometheusMeasure {
  let config: ReturnType<typeof providerConfigFromEnv>;
  try {
    config = providerConfigFromEnv(env);
  } catch (err) {
    throw new BacktestInputError((err as Error).message);
  }
  const metrics =
    target.metrics ??
    (config.metrics === 'prometheus' || config.prometheus?.url
      ? { provider: 'prometheus' as const }
      : undefined);
  if (!metrics || metrics.provider !== 'prometheus') {
    throw new BacktestInputError(
      `a backtest reads history from Prometheus, but the metrics of ${target.namespace}/${target.app} are ` +
        `${metrics ? 'the local stack, which measures the present only' : "the worker's default (local)"}: give the ` +
        'target metrics: { prometheus: { url: ... } }, or set CANARY_PROMETHEUS_URL',
    );
  }
  const withMetrics: Target = { ...target, metrics };
  const registry = new ProviderRegistry({ ...config, metrics: 'prometheus' });
  let provider: PrometheusMetricsProvider;
  try {
    const p = registry.metrics(withMetrics);
    if (!(p instanceof PrometheusMetricsProvider)) throw new Error(`unexpected ${p.type} metrics provider`);
    provider = p;
  } catch (err) {
    throw new BacktestInputError((err as Error).message);
  }
  for (const check of checks) {
    const sides: Array<'canary' | 'stable'> =
      check.compare !== undefined || check.test !== undefined ? ['canary', 'stable'] : ['canary'];
    for (const side of sides) {
      try {
        provider.render({
          side,
          ...(versions[side] !== undefined ? { version: versions[side] } : {}),
          ...(check.metric !== undefined ? { metric: check.metric } : {}),
          ...(check.query !== undefined ? { query: check.query } : {}),
          windowSeconds: check.windowMs / 1000,
        });
      } catch (err) {
        const hint = /version/.test((err as Error).message)
          ? ` (pass --${side === 'canary' ? 'version' : 'stable-version'}: the version that side ran)`
          : '';
        throw new BacktestInputError(`check ${JSON.stringify(check.name)}: ${(err as Error).message}${hint}`);
      }
    }
  }
  const activities = createActivities(registry);
  // measureChecks selects a side by its version only when one is known; the type wants the canary's.
  const known = versions as RoutingVersions;
  const measure: MeasureFn = async (list, atMs) => {
    const answer = await activities.measureChecks({
      target: withMetrics,
      checks: list,
      versions: known,
      atMs,
    });
    for (const m of Object.values(answer.measurements)) {
      if (m.error && INFRASTRUCTURE_KINDS.has(m.error.kind)) {
        throw new InfrastructureError(`backtest stopped at the round of ${iso(atMs)}: ${m.error.message}`, {
          transient: m.error.kind !== 'auth',
        });
      }
    }
    return answer.measurements;
  };
  return { measure, target: withMetrics, url: provider.url };
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}
