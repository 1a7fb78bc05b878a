// PromQL syntax checked offline with Prometheus's own (lezer) grammar: every template parses, a broken custom query
// is refused with where it breaks, and lezer stays out of the workflow bundle.
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  SAMPLE_VALUES,
  promqlSyntaxError,
  querySyntaxMessage,
  querySyntaxProblems,
  sampleVars,
} from '../../activities/metrics/promql-syntax';
import { TEMPLATE_SETS, TEMPLATE_SET_NAMES, renderQuery } from '../../activities/metrics/templates';
import { validatePlan, type PlanSpec } from '../../workflows/plan';
import type { Plan } from '../../workflows/types';

function plan(spec: PlanSpec): Plan {
  const result = validatePlan(spec);
  if (!result.ok) throw new Error(JSON.stringify(result.problems));
  return result.plan;
}

describe('the named templates', () => {
  const cases = TEMPLATE_SET_NAMES.flatMap((set) =>
    Object.keys(TEMPLATE_SETS[set].metrics).flatMap((metric) =>
      (['canary', 'stable'] as const).map((side) => [set, metric, side] as const),
    ),
  );

  it('cover every set and metric', () => {
    expect(TEMPLATE_SET_NAMES.length).toBeGreaterThanOrEqual(3);
    expect(cases.length).toBe(
      TEMPLATE_SET_NAMES.reduce((n, set) => n + 2 * Object.keys(TEMPLATE_SETS[set].metrics).length, 0),
    );
  });

  it.each(cases)('%s %s (%s side) parses after substitution', (set, metric, side) => {
    const template = TEMPLATE_SETS[set].metrics[metric];
    const vars = { ...SAMPLE_VALUES, side, quantile: 0.999 };
    const query = renderQuery(template.query, {
      ...vars,
      selector: renderQuery(TEMPLATE_SETS[set].selector[side], vars),
    });
    expect(query).not.toContain('{{');
    expect(promqlSyntaxError(query)).toBeUndefined();
  });
});

describe('promqlSyntaxError', () => {
  it('accepts PromQL as Prometheus writes it', () => {
    for (const q of [
      'up',
      'sum(rate(http_requests_total{code=~"5..|0"}[5m])) / sum(rate(http_requests_total[5m]))',
      'histogram_quantile(0.95, sum by (le) (rate(x_bucket[5m])))',
      '100 * (sum(rate(a[1m])) or vector(0))',
      'max_over_time(x[1h:5m]) offset 1d',
      'a\n  + on(pod) group_left b # a comment',
    ]) {
      expect({ q, error: promqlSyntaxError(q) }).toEqual({ q, error: undefined });
    }
  });

  it('says where a query breaks and why', () => {
    expect(promqlSyntaxError('sum(rate(x[5m])')).toEqual({
      offset: 15,
      message: 'the query ends too early: 1 "(" is never closed (missing ")")',
    });
    expect(promqlSyntaxError('sum(rate(x[5m])))')).toEqual({
      offset: 16,
      message: 'unexpected ")" (one ")" too many)',
    });
    expect(promqlSyntaxError('rate(x[5m]) foo')).toEqual({ offset: 12, message: 'unexpected "foo"' });
    expect(promqlSyntaxError('rate(x[5m]) /')?.message).toBe(
      'the query ends too early (an operand or argument is missing)',
    );
    expect(promqlSyntaxError('  ')).toEqual({ offset: 0, message: 'the query is empty' });
  });
});

describe('querySyntaxMessage: the query as written, placeholders and all', () => {
  const vars = sampleVars(5 * 60_000);

  it('refuses one parenthesis short, naming the column in the query as written', () => {
    expect(querySyntaxMessage('sum(rate(x[{{window}}])', vars)).toBe(
      'is not valid PromQL: at column 24, after "sum(rate(x[{{window}}])": the query ends too early: 1 "(" is ' +
        'never closed (missing ")"). Fix the query; it was parsed with Prometheus\'s own grammar, with {{window}} ' +
        'as "5m"',
    );
  });

  it('maps a position after placeholders back to the text as written, with lines in a multi-line query', () => {
    const message = querySyntaxMessage(
      'sum(rate(x{app="{{app}}", version="{{version}}"}[{{window}}]))\n  / sum(rate(y{ {{selector}} }[{{window}}])) )',
      vars,
    );
    expect(message).toMatch(
      /^is not valid PromQL: at line 2, column 46, after "… {{selector}} }\[{{window}}\]\)\) ": unexpected "\)" \(one "\)" too many\)/,
    );
    expect(message).toContain('unexpected ")"');
    expect(message).toContain(`{{selector}} as the template set's selector`);
  });

  it('accepts a query whose placeholders stand where values go', () => {
    expect(
      querySyntaxMessage(
        'sum(rate(x{ {{selector}} }[{{window}}])) / sum(rate(y{namespace="{{namespace}}", pod=~"{{workload}}-.*"}[{{window}}]))',
        vars,
      ),
    ).toBeUndefined();
  });

  it('refuses an unknown placeholder with the known ones', () => {
    expect(querySyntaxMessage('rate(x[{{windw}}])', vars)).toMatch(
      /^unknown placeholder \{\{windw\}\} in "rate\(x\[\{\{windw\}\}\]\)"; known: \{\{namespace\}\}/,
    );
  });

  it("uses the check's own window", () => {
    expect(sampleVars(90_000).window).toBe('90s');
    expect(sampleVars(undefined).window).toBe('5m');
    expect(sampleVars(60_000, 'nginx').selector).toBe('namespace="default", ingress="checkout", canary!=""');
  });
});

describe('querySyntaxProblems', () => {
  it('finds broken queries in short-form and full-form checks, by their path in the plan', () => {
    const short = plan({
      analysis: {
        checks: [
          { name: 'ok', query: 'sum(rate(x{version="{{version}}"}[{{window}}]))', max: 1 },
          { name: 'named', metric: 'error-rate', max: 1 },
          { name: 'broken', query: 'sum(rate(x{version="{{version}}"}[{{window}}])', max: 1 },
        ],
      },
      stages: [{ weight: 10, hold: '10m' }, { weight: 100 }],
    });
    expect(querySyntaxProblems(short).map((p) => p.path)).toEqual(['analysis.checks[2].query']);

    const full = plan({
      analysis: {
        checks: [
          { name: 'errors', metric: 'error-rate', success: { max: 1 } },
          {
            name: 'gpu',
            query: 'sum(increase(gpu_errors{version="{{version}}"}[{{window}}]) by (pod)',
            window: '2m',
            abort: { max: 0, severity: 'critical' },
          },
        ],
      },
      stages: [{ weight: 10, hold: '10m' }, { weight: 100 }],
    });
    const problems = querySyntaxProblems(full);
    expect(problems).toHaveLength(1);
    expect(problems[0].path).toBe('analysis.checks[1].query');
    expect(problems[0].message).toContain('{{window}} as "2m"');
    expect(problems[0].message).toContain('1 "(" is never closed (missing ")")');
  });
});

describe('lezer stays out of the workflow bundle', () => {
  const root = path.join(__dirname, '..', '..');

  /** Every file the workflow entry points reach through relative imports (as webpack would follow them). */
  function reachable(entries: string[]): Map<string, string[]> {
    const seen = new Map<string, string[]>();
    const queue = entries.map((e) => path.join(root, e));
    while (queue.length > 0) {
      const file = queue.pop()!;
      if (seen.has(file)) continue;
      const text = fs.readFileSync(file, 'utf8');
      const specifiers = [
        ...text.matchAll(/(?:import|export)[^'";]*?from\s+'([^']+)'|import\('([^']+)'\)/g),
      ].map((m) => m[1] ?? m[2]);
      seen.set(file, specifiers);
      for (const s of specifiers) {
        if (!s.startsWith('.')) continue;
        const base = path.resolve(path.dirname(file), s);
        const resolved = [`${base}.ts`, path.join(base, 'index.ts')].find((f) => fs.existsSync(f));
        if (resolved) queue.push(resolved);
      }
    }
    return seen;
  }

  it('no module the workflows import reaches promql-syntax.ts or @prometheus-io/lezer-promql', () => {
    const files = reachable(['workflows/index.ts', 'workflows/rollout.ts', 'workflows/plan.ts']);
    expect(files.size).toBeGreaterThan(10);
    const offenders = [...files].filter(
      ([file, specifiers]) =>
        file.endsWith('promql-syntax.ts') || specifiers.some((s) => s.includes('lezer')),
    );
    expect(offenders.map(([file]) => path.relative(root, file))).toEqual([]);
  });
});
