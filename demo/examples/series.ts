// Which series an example plan reads, and where a demo gets each one. Named metrics read the target's template set
// (Istio telemetry, ingress-nginx, or the app's http_* instrumentation); each raw `query:` is parsed with Prometheus's
// own grammar for the metric names it selects, and each name is looked up here: kube-state-metrics, cAdvisor and
// DCGM series come from harness/cluster-exporter.ts (derived from the live Deployments), an app's business metrics
// (per version, following its requests) from the side's synthetic exporter. A name found nowhere is reported, and the
// worker's preflight then refuses the check: the demo serves no series it cannot stand in for.
import { parser } from '@prometheus-io/lezer-promql';
import { SAMPLE_VALUES } from '../../activities/metrics/promql-syntax';
import { TEMPLATE_SETS, renderQuery, type TemplateSetName } from '../../activities/metrics/templates';
import { CLUSTER_SERIES, type ClusterSource } from '../../harness/cluster-exporter';
import type { Plan } from '../../workflows/types';

/** Where a series comes from in a cluster (and in the demo). */
export type SeriesSource = 'templates' | ClusterSource | 'app';

export const SOURCE_TITLES: Readonly<Record<Exclude<SeriesSource, 'templates'>, string>> = {
  'kube-state-metrics': 'kube-state-metrics',
  cadvisor: "cAdvisor (the kubelet's container metrics)",
  dcgm: "NVIDIA's DCGM exporter",
  app: "the app's own business metrics",
};

export const TEMPLATE_SOURCE_TITLES: Readonly<Record<TemplateSetName, string>> = {
  istio: "Istio's telemetry (the sidecars' istio_requests_total and request-duration histogram)",
  nginx: "ingress-nginx's controller metrics (nginx_ingress_controller_requests and its duration histogram)",
  http: "the app's http_* instrumentation (http_requests_total and http_request_duration_seconds, by version)",
};

/** A business metric of the app, by version, as a healthy and a faulty version report it. */
export interface AppSeries {
  kind: 'counter' | 'gauge';
  /** counter: what one request adds; gauge: the value. */
  healthy: number;
  faulty: number;
  help: string;
}

/**
 * The app-level series the examples read (labels: namespace, app, version). A faulty version converts less, costs
 * more per request and is less fair: what the examples' business checks watch for.
 */
export const APP_SERIES: Readonly<Record<string, AppSeries>> = {
  visitors_total: { kind: 'counter', healthy: 1, faulty: 1, help: 'visits (one per request)' },
  conversions_total: { kind: 'counter', healthy: 0.25, faulty: 0.04, help: 'conversions per visit' },
  model_requests_total: { kind: 'counter', healthy: 1, faulty: 1, help: 'inference requests' },
  model_inference_cost_total: {
    kind: 'counter',
    healthy: 0.002,
    faulty: 0.0045,
    help: 'inference cost (USD per request)',
  },
  model_fairness_disparate_impact: {
    kind: 'gauge',
    healthy: 0.93,
    faulty: 0.62,
    help: 'disparate-impact ratio of the model',
  },
};

/** The metric names a PromQL expression selects (placeholders filled with sample values first). */
export function metricNames(query: string): string[] {
  let expr: string;
  try {
    expr = renderQuery(query, { ...SAMPLE_VALUES, selector: 'namespace="default"', quantile: 0.95 });
  } catch {
    expr = query.replace(/\{\{[^{}]*\}\}/g, 'x');
  }
  const names = new Set<string>();
  const tree = parser.parse(expr);
  tree.iterate({
    enter: (node) => {
      if (node.type.name !== 'VectorSelector') return undefined;
      const id = node.node.getChild('Identifier');
      if (id) names.add(expr.slice(id.from, id.to));
      return false;
    },
  });
  return [...names];
}

/** The series names a template set's queries select. */
export function templateSeries(set: TemplateSetName): string[] {
  return [...new Set(Object.values(TEMPLATE_SETS[set].metrics).flatMap((m) => metricNames(m.query)))];
}

export interface SeriesNeeds {
  /** Each source the plan's checks read, with the series and the checks that read them. */
  sources: Map<SeriesSource, { series: Set<string>; checks: Set<string> }>;
  /** Series no source here serves, with the checks that read them. */
  unknown: Map<string, Set<string>>;
}

/** Where each series the plan's checks read comes from. */
export function seriesNeeds(plan: Plan, templates: TemplateSetName): SeriesNeeds {
  const sources: SeriesNeeds['sources'] = new Map();
  const unknown: SeriesNeeds['unknown'] = new Map();
  const fromTemplates = new Set(templateSeries(templates));
  const need = (source: SeriesSource, series: string, check: string) => {
    const entry = sources.get(source) ?? { series: new Set<string>(), checks: new Set<string>() };
    entry.series.add(series);
    entry.checks.add(check);
    sources.set(source, entry);
  };
  for (const check of plan.analysis.rules ?? plan.analysis.checks) {
    const names = check.query !== undefined ? metricNames(check.query) : [...fromTemplates];
    for (const name of names) {
      if (fromTemplates.has(name)) need('templates', name, check.name);
      else if (name in APP_SERIES) need('app', name, check.name);
      else {
        const cluster = (Object.keys(CLUSTER_SERIES) as ClusterSource[]).find((s) =>
          CLUSTER_SERIES[s].includes(name),
        );
        if (cluster) need(cluster, name, check.name);
        else unknown.set(name, (unknown.get(name) ?? new Set()).add(check.name));
      }
    }
  }
  return { sources, unknown };
}

/** `kube-state-metrics (kube_deployment_status_replicas_unavailable: check pod-health)` per source. */
export function describeNeeds(needs: SeriesNeeds, templates: TemplateSetName): string[] {
  const lines: string[] = [];
  for (const [source, { series, checks }] of needs.sources) {
    const title = source === 'templates' ? TEMPLATE_SOURCE_TITLES[templates] : SOURCE_TITLES[source];
    lines.push(`${title}: ${[...series].join(', ')} (${plural('check', checks)} ${[...checks].join(', ')})`);
  }
  for (const [name, checks] of needs.unknown) {
    lines.push(`${name}: no stand-in in this demo (${plural('check', checks)} ${[...checks].join(', ')})`);
  }
  return lines;
}

function plural(word: string, set: Set<string>): string {
  return set.size === 1 ? word : `${word}s`;
}
