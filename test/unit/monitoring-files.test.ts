// deploy/monitoring: the Grafana dashboard and the PrometheusRule. The Helm chart ships copies (a chart reads files
// inside its own folder only), which must stay the same; every query parses as PromQL. Against a live worker and
// Prometheus: test/integration/worker-metrics.test.ts.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parse } from 'yaml';
import { promqlSyntaxError } from '../../activities/metrics/promql-syntax';

const ROOT = path.resolve(__dirname, '..', '..');
const MONITORING = path.join(ROOT, 'deploy', 'monitoring');
const CHART_FILES = path.join(ROOT, 'deploy', 'helm', 'temporal-canary', 'files');
const FILES = ['grafana-dashboard.json', 'prometheus-rules.yaml'];

/** Every PromQL query of the dashboard, with its template variables given a value. */
function dashboardQueries(): Array<{ panel: string; expr: string }> {
  const dashboard = JSON.parse(fs.readFileSync(path.join(MONITORING, 'grafana-dashboard.json'), 'utf8')) as {
    panels: Array<{ title: string; targets?: Array<{ expr: string }> }>;
  };
  return dashboard.panels.flatMap((p) =>
    (p.targets ?? []).map((t) => ({ panel: p.title, expr: t.expr.replace(/\$namespace/g, '.*') })),
  );
}

test.each(FILES)("the chart's copy of %s is deploy/monitoring's", (file) => {
  expect(fs.readFileSync(path.join(CHART_FILES, file), 'utf8')).toBe(
    fs.readFileSync(path.join(MONITORING, file), 'utf8'),
  );
});

test('every dashboard query parses as PromQL', () => {
  const queries = dashboardQueries();
  expect(queries.length).toBeGreaterThanOrEqual(15);
  expect(queries.filter((q) => promqlSyntaxError(q.expr) !== undefined)).toEqual([]);
});

test('every rule expression parses, and each alert says what to do', () => {
  const rule = parse(fs.readFileSync(path.join(MONITORING, 'prometheus-rules.yaml'), 'utf8')) as {
    kind: string;
    spec: {
      groups: Array<{ rules: Array<{ alert: string; expr: string; annotations: Record<string, string> }> }>;
    };
  };
  expect(rule.kind).toBe('PrometheusRule');
  const rules = rule.spec.groups.flatMap((g) => g.rules);
  expect(rules.map((r) => r.alert)).toEqual([
    'CanaryRolloutStuck',
    'CanaryRollbackStuck',
    'CanaryRollbackRateRising',
    'CanaryWorkerNoPoller',
    'CanaryActivityFailures',
  ]);
  for (const r of rules) {
    expect([r.alert, promqlSyntaxError(r.expr)]).toEqual([r.alert, undefined]);
    expect(r.annotations.summary && r.annotations.description).toBeTruthy();
  }
});
