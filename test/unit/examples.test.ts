// Every plan in examples/ validates through `canary validate` (in-process, no server), and the playbook rule each
// one was written for survives normalisation. Each file's header lists what must exist to run it (the objects its
// target needs, the exporters its checks read), and its compressed form for `npm run demo:example` stays valid.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { EXIT_BAD_INPUT, EXIT_OK, main, type CliOptions } from '../../client/cli';
import { totalHoldMs } from '../../workflows/plan';
import type { Plan } from '../../workflows/types';
import type { Target } from '../../workflows/target';
import { loadPlan } from '../../client/plan-file';
import { validatePlan } from '../../workflows/plan';
import { requiredObjects } from '../../harness/kube-rollout';
import { scalePlan } from '../../demo/examples/scale';
import { seriesNeeds } from '../../demo/examples/series';

const EXAMPLES = path.join(__dirname, '..', '..', 'examples');
const files = fs
  .readdirSync(EXAMPLES)
  .filter((f) => /\.ya?ml$/.test(f))
  .sort();

interface Captured {
  code: number;
  stdout: string;
  stderr: string;
  connects: number;
}

async function run(argv: string[]): Promise<Captured> {
  let stdout = '';
  let stderr = '';
  let connects = 0;
  const cli: CliOptions = {
    stdout: { write: (s: string) => (stdout += s) },
    stderr: { write: (s: string) => (stderr += s) },
    // An address nothing listens on: validate must never get as far as connecting.
    env: { PATH: process.env.PATH, TEMPORAL_ADDRESS: '127.0.0.1:1', CANARY_IDENTITY: 'tester' },
    connect: async () => {
      connects++;
      throw new Error('validate must not connect');
    },
  };
  const code = await main(argv, cli);
  return { code, stdout, stderr, connects };
}

async function validated(file: string): Promise<{ plan: Plan; target: Target }> {
  const r = await run(['validate', '--plan', path.join(EXAMPLES, file), '--output', 'json']);
  expect(r.stderr).toBe('');
  expect(r.code).toBe(EXIT_OK);
  const doc = JSON.parse(r.stdout) as { valid: boolean; plan: Plan; target: Target };
  expect(doc.valid).toBe(true);
  return doc;
}

const rule = (plan: Plan, name: string) => {
  const found = plan.analysis.rules?.find((r) => r.name === name);
  if (!found) throw new Error(`no check ${name}`);
  return found;
};
const MIN = 60_000;
const HOUR = 60 * MIN;

describe('examples/', () => {
  it('holds one plan per reference playbook', () => {
    expect(files).toEqual([
      '000-gpu-model.yaml',
      '001-flagger.yaml',
      '002-general-istio.yaml',
      '003-ai-model-default.yaml',
      '004-nginx-ingress.yaml',
    ]);
  });

  it.each(files)('%s: canary validate exits 0 and names plan and target', async (file) => {
    const r = await run(['validate', '--plan', path.join(EXAMPLES, file)]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(EXIT_OK);
    expect(r.connects).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^Plan .*${file} is valid: `));
    expect(r.stdout).toMatch(/\nTarget: \S+\/\S+/);
  });

  it('000: 10/50/100 % for 5 min, errors for 2 min, p99 and GPU memory errors roll back at once', async () => {
    const { plan, target } = await validated('000-gpu-model.yaml');
    expect(plan.stages.map((s) => [s.weight, s.holdMs])).toEqual([
      [10, 5 * MIN],
      [50, 5 * MIN],
      [100, 5 * MIN],
    ]);
    expect(rule(plan, 'error-rate').abort).toMatchObject({
      band: { value: { max: 1 } },
      persist: { kind: 'for', ms: 2 * MIN },
    });
    expect(rule(plan, 'latency-p99').abort).toMatchObject({
      band: { value: { max: 500 } },
      severity: 'critical',
    });
    expect(rule(plan, 'gpu-memory-errors').abort?.severity).toBe('critical');
    expect(rule(plan, 'health-checks').abort?.severity).toBe('critical');
    expect(target.traffic?.router).toBe('replicas');
    expect(target.metrics).toEqual({ provider: 'prometheus', templates: 'http' });
  });

  it('001: success bands kept apart from abort bands, 3 consecutive failures', async () => {
    const { plan, target } = await validated('001-flagger.yaml');
    expect(plan.stages.map((s) => [s.weight, s.holdMs])).toEqual([
      [5, 5 * MIN],
      [10, 10 * MIN],
      [25, 15 * MIN],
      [50, 20 * MIN],
      [100, 0],
    ]);
    const success = rule(plan, 'success-rate');
    expect(success.success).toEqual({ value: { min: 99 } });
    expect(success.abort).toMatchObject({
      band: { value: { min: 95 } },
      severity: 'high',
      persist: { kind: 'consecutive', rounds: 3 },
    });
    expect(rule(plan, 'error-rate').success).toEqual({ value: { max: 1 } });
    expect(rule(plan, 'error-rate').abort?.band).toEqual({ value: { max: 5 } });
    expect(rule(plan, 'latency-p99').success).toEqual({ value: { max: 500 } });
    expect(rule(plan, 'latency-p99').abort?.band).toEqual({ value: { max: 2000 } });
    // Success-only criteria hold the stage but never abort.
    expect(rule(plan, 'latency-p50').abort).toBeUndefined();
    // "No errors" at the first stage only.
    expect(rule(plan, 'no-errors')).toMatchObject({ success: { value: { max: 0 } }, stages: [1] });
    expect(rule(plan, 'error-rate').stages).toBeUndefined();
    expect(rule(plan, '5xx-rate').success).toEqual({ value: { max: 0.1 } });
    expect(target.traffic?.router).toBe('istio');
    expect(target.workload).toMatchObject({ name: 'api-gateway', progressDeadlineMs: HOUR });
  });

  it('002: 5/25/50/100 %, Istio header match and sticky cookie, conversion rate floor', async () => {
    const { plan, target } = await validated('002-general-istio.yaml');
    expect(plan.stages.map((s) => s.weight)).toEqual([5, 25, 50, 100]);
    expect(plan.stages[3].gate).toEqual({ type: 'approval' });
    expect(rule(plan, 'conversion-rate').abort?.band).toEqual({ value: { min: 10 } });
    // The hybrid decision: a conversion dip asks a person, who has 30 minutes before it rolls back.
    expect(rule(plan, 'conversion-rate').abort?.ask).toEqual({ decideWithinMs: 30 * MIN });
    // The guide's latency is the mean response time.
    expect(rule(plan, 'latency-avg')).toMatchObject({
      metric: 'latency-avg',
      success: { value: { max: 1000 } },
    });
    expect(rule(plan, 'error-rate').abort).toMatchObject({ band: { value: { max: 5 } } });
    expect(target.traffic).toMatchObject({
      router: 'istio',
      virtualService: 'web-app',
      header: { name: 'canary', value: 'true' },
      stickyCookie: 'canary',
    });
  });

  it('003: promotion at 48 h total hold, errors abort at 5 % for 5 min, p95 within 20 % of stable', async () => {
    const { plan, target } = await validated('003-ai-model-default.yaml');
    expect(plan.stages.map((s) => s.weight)).toEqual([5, 10, 25, 50, 100]);
    expect(totalHoldMs(plan)).toBe(48 * HOUR);
    expect(plan.promotion.cleanupDelayMs).toBe(24 * HOUR);
    const errors = rule(plan, 'error-rate');
    expect(errors.success).toEqual({ value: { max: 1 } });
    expect(errors.abort).toMatchObject({
      band: { value: { max: 5 } },
      persist: { kind: 'for', ms: 5 * MIN },
    });
    const p95 = rule(plan, 'latency-p95');
    expect(p95.compare).toEqual({ to: 'stable' });
    expect(p95.success?.ratio).toEqual({ max: 1.2 });
    // "Maintained for 3 (24) continuous hours", "no anomalies over 20 hours": the whole hold without a break.
    expect(plan.stages.map((s) => s.healthyForMs)).toEqual([
      undefined,
      3 * HOUR,
      20 * HOUR,
      24 * HOUR,
      undefined,
    ]);
    expect(rule(plan, 'latency-p95-phase-2')).toMatchObject({
      success: { value: { max: 2000 } },
      stages: [1],
    });
    // Phase 4's "compare day-over-day performance": stable's p95 a day earlier, at 25 % only.
    expect(rule(plan, 'latency-day-over-day')).toMatchObject({
      compare: { to: 'stable', offsetMs: 24 * HOUR },
      abort: { band: { ratio: { max: 1.2 } }, severity: 'low' },
      stages: [3],
    });
    expect(p95.abort).toMatchObject({
      band: { value: { max: 5000 } },
      persist: { kind: 'for', ms: 5 * MIN },
    });
    // The severity matrix: critical, high, medium and low all appear.
    const severities = new Set(plan.analysis.rules?.map((r) => r.abort?.severity));
    expect([...severities].sort()).toEqual(['critical', 'high', 'low', 'medium']);
    expect(rule(plan, 'latency-degradation').test?.type).toBe('mann-whitney');
    expect(target.traffic?.router).toBe('istio');
    // Who hears what: the pager for critical events, Slack for the rest.
    expect(plan.alerts?.routes).toEqual([
      { sinks: ['pagerduty'], minSeverity: 'critical' },
      { sinks: ['slack'], minSeverity: 'info' },
    ]);
  });

  it('004: 5/25/50/100 % with 60 s holds on the nginx router', async () => {
    const { plan, target } = await validated('004-nginx-ingress.yaml');
    expect(plan.stages.map((s) => [s.weight, s.holdMs])).toEqual([
      [5, 60_000],
      [25, 60_000],
      [50, 60_000],
      [100, 60_000],
    ]);
    expect(rule(plan, 'error-rate')).toMatchObject({
      metric: '5xx-rate',
      abort: { band: { value: { max: 5 } } },
    });
    expect(rule(plan, 'latency-p95').abort?.band).toEqual({ value: { max: 1000 } });
    // "Prompts to promote to stable" after the 100 % stage.
    expect(plan.promotion.gate).toEqual({ type: 'approval' });
    expect(target.traffic).toMatchObject({ router: 'nginx', canaryIngress: 'api-gateway-ingress-canary' });
    expect(target.metrics).toEqual({ provider: 'prometheus', templates: 'nginx' });
    // "Monitor during business hours": a weekday 09:00-17:00 window.
    expect(plan.windows?.timeZone).toBe('UTC');
    expect(plan.windows?.allow).toHaveLength(1);
  });

  it.each(['001-flagger.yaml', '003-ai-model-default.yaml'])(
    '%s: names its DestinationRule, so the canary subset exists and stable follows the promotion',
    async (file) => {
      const { target } = await validated(file);
      expect(target.traffic).toMatchObject({
        router: 'istio',
        destinationRule: target.app,
        stableSubset: 'stable',
        canarySubset: 'canary',
      });
    },
  );
});

/** The comment block a file starts with, as one line of text. */
function header(file: string): string {
  const lines = fs.readFileSync(path.join(EXAMPLES, file), 'utf8').split('\n');
  const end = lines.findIndex((l) => !l.startsWith('#'));
  return lines
    .slice(0, end)
    .map((l) => l.replace(/^#\s?/, ''))
    .join(' ')
    .replace(/\s+/g, ' ');
}

/** What each series source is called in a header. */
const SOURCE_WORDS: Record<string, (templates: string) => string> = {
  templates: (t) =>
    ({
      istio: "Istio's telemetry",
      nginx: "ingress-nginx's controller metrics",
      http: 'http_* instrumentation',
    })[t] ?? t,
  'kube-state-metrics': () => 'kube-state-metrics',
  cadvisor: () => 'cAdvisor',
  dcgm: () => 'DCGM exporter',
  app: () => 'own',
};

describe('examples/ as they run end to end (npm run demo:example)', () => {
  it.each(files)(
    '%s: the header lists every object its target needs and every exporter its checks read',
    async (file) => {
      const { target } = await validated(file);
      const loaded = loadPlan(path.join(EXAMPLES, file));
      const v = validatePlan(loaded.spec);
      if (!v.ok) throw new Error(JSON.stringify(v.problems));
      const text = header(file);
      expect(text).toContain('What must exist before a rollout');
      expect(text).toContain(`npm run demo:example -- --plan examples/${file}`);
      expect(text).toContain(`namespace ${target.namespace}`);
      for (const o of requiredObjects(target)) expect(text).toContain(`${o.kind} ${o.name}`);
      const templates =
        target.metrics?.provider === 'prometheus' && target.metrics.templates
          ? target.metrics.templates
          : 'http';
      const needs = seriesNeeds(v.plan, templates);
      expect([...needs.unknown.keys()]).toEqual([]);
      for (const [source, { series, checks }] of needs.sources) {
        expect(text).toContain(SOURCE_WORDS[source](templates));
        // Raw queries' series by name, with the checks that read them (a template set's are named by the set).
        if (source === 'templates') continue;
        for (const name of series) expect(text).toContain(name);
        for (const check of checks) expect(text).toContain(check);
      }
    },
  );

  it.each(files)(
    '%s: compressed to about a minute, every floor kept, windows lifted, still valid',
    (file) => {
      const loaded = loadPlan(path.join(EXAMPLES, file));
      const original = validatePlan(loaded.spec);
      if (!original.ok) throw new Error(JSON.stringify(original.problems));
      const scaled = scalePlan(loaded.spec);
      const v = validatePlan(scaled.spec);
      if (!v.ok) throw new Error(JSON.stringify(v.problems));
      const plan = v.plan;
      // One factor for every duration: holds and soak add up to about 60 s (rounding to whole seconds).
      const planned =
        original.plan.stages.reduce((n, st) => n + st.holdMs, 0) + original.plan.promotion.cleanupDelayMs;
      expect(scaled.factor).toBeCloseTo(Math.min(1, 60_000 / planned), 10);
      const total = totalHoldMs(plan) + plan.promotion.cleanupDelayMs;
      expect(total).toBeGreaterThan(45_000);
      expect(total).toBeLessThanOrEqual(60_000 + plan.stages.length * 1_000);
      plan.stages.forEach((st, i) => {
        const before = original.plan.stages[i];
        expect(st.weight).toBe(before.weight);
        expect(st.gate.type).toBe(before.gate.type);
        if (before.holdMs > 0)
          expect(st.holdMs).toBe(Math.max(1000, Math.round((before.holdMs * scaled.factor) / 1000) * 1000));
        if (st.healthyForMs !== undefined) expect(st.healthyForMs).toBeLessThanOrEqual(st.holdMs);
      });
      // The product's minimum interval; windows that span 10 scrapes; a test step of at least one scrape.
      expect(plan.analysis.intervalMs).toBeGreaterThanOrEqual(10_000);
      for (const r of plan.analysis.rules ?? []) {
        expect(r.windowMs).toBeGreaterThanOrEqual(10_000);
        if (r.test) {
          expect(r.test.stepMs).toBeGreaterThanOrEqual(1_000);
          expect(Math.floor(r.windowMs / r.test.stepMs) + 1).toBeGreaterThanOrEqual(r.test.minSamples);
        }
        const before = original.plan.analysis.rules?.find((o) => o.name === r.name);
        // A day-over-day baseline reads live data: its offset shrinks by the same factor.
        if (before?.compare?.offsetMs) {
          expect(r.compare?.offsetMs).toBe(
            Math.round((before.compare.offsetMs * scaled.factor) / 1000) * 1000,
          );
        }
      }
      // Deployment windows are lifted (and said), approval gates kept.
      expect(plan.windows).toBeUndefined();
      expect(Boolean(scaled.liftedWindows)).toBe(original.plan.windows !== undefined);
      expect(Boolean(plan.promotion.gate)).toBe(Boolean(original.plan.promotion.gate));
    },
  );
});

describe('canary validate', () => {
  let tmp: string;
  beforeAll(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'canary-validate-'));
  });
  afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

  const badPlan = (): string => {
    const file = path.join(tmp, 'bad.yaml');
    fs.writeFileSync(
      file,
      [
        'stages:',
        '  - { weight: 50, hold: 5m }',
        '  - { weight: 20 }',
        '  - { weight: 90 }',
        'target:',
        '  app: Checkout',
      ].join('\n'),
    );
    return file;
  };

  it('a bad plan exits 2 with the problem paths, as start reports them', async () => {
    const file = badPlan();
    const r = await run(['validate', '--plan', file]);
    expect(r.code).toBe(EXIT_BAD_INPUT);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain(`canary: error: ${file}: plan is invalid`);
    expect(r.stderr).toContain('  - stages[1].weight: must be greater than 50');
    expect(r.stderr).toContain('  - stages[1].hold: is required');
    expect(r.stderr).toContain('  - stages[2].weight: the last stage must have weight 100');
    expect(r.connects).toBe(0);
  });

  it('--output json lists plan and target problems on stdout, still exit 2', async () => {
    const r = await run(['validate', '--plan', badPlan(), '--output', 'json']);
    expect(r.code).toBe(EXIT_BAD_INPUT);
    const doc = JSON.parse(r.stdout) as {
      valid: boolean;
      problems: Array<{ path: string; message: string }>;
    };
    expect(doc.valid).toBe(false);
    const paths = doc.problems.map((p) => p.path);
    expect(paths).toEqual(
      expect.arrayContaining(['stages[1].weight', 'stages[1].hold', 'stages[2].weight', 'target.app']),
    );
    for (const p of doc.problems) expect(p.message).not.toBe('');
  });

  it('a bad target alone exits 2 with the same message as start', async () => {
    const r = await run(['validate', '--plan', 'default', '--app', 'Bad_App']);
    expect(r.code).toBe(EXIT_BAD_INPUT);
    expect(r.stderr).toContain('target is invalid (1 problem):');
    expect(r.stderr).toContain('  - target.app: "Bad_App" is not a valid Kubernetes name');
  });

  it("a check the target's metrics provider cannot measure is refused before anything starts", async () => {
    const file = path.join(tmpDir(), 'local-query.yaml');
    fs.writeFileSync(
      file,
      [
        'analysis:',
        '  checks:',
        '    - { name: errors, metric: error-rate, max: 1 }',
        '    - { name: gpu, query: "sum(gpu_memory_errors_total)", max: 0 }',
        '    - name: shift',
        '      metric: latency-p95',
        '      test: { type: mann-whitney }',
        '      abort: { severity: high }',
        '      onNoData: { action: hold, limit: 10, then: rollback }', // room for the test's first 10 points
        '    - name: p95-vs-yesterday',
        '      metric: latency-p95',
        '      compare: { to: stable, offset: 1d, ratio: { max: 1.2 } }',
        'stages: [{ weight: 10, hold: 1h }, { weight: 100 }]',
        'target:',
        '  app: checkout',
        '  metrics: { local: {} }',
      ].join('\n'),
    );
    const r = await run(['validate', '--plan', file]);
    expect(r.code).toBe(EXIT_BAD_INPUT);
    expect(r.stderr).toContain(
      '  - analysis.checks[1].query: the local metrics provider (target.metrics.local) reads named metrics only',
    );
    expect(r.stderr).toContain(
      '  - analysis.checks[2].test: a mann-whitney test needs series over a range, which the local metrics provider (target.metrics.local) cannot give; point target.metrics at Prometheus',
    );
    expect(r.stderr).toContain(
      '  - analysis.checks[3].compare.offset: a baseline from 24h earlier needs metrics as of a past time, which the local metrics provider (target.metrics.local) cannot give; point target.metrics at Prometheus',
    );
    // The same plan against Prometheus is fine.
    fs.writeFileSync(
      file,
      fs.readFileSync(file, 'utf8').replace('{ local: {} }', '{ prometheus: { url: "http://prom:9090" } }'),
    );
    expect((await run(['validate', '--plan', file])).code).toBe(EXIT_OK);
  });

  it('a preset without a target validates the plan alone', async () => {
    const r = await run(['validate', '--plan', 'default']);
    expect(r.code).toBe(EXIT_OK);
    expect(r.stdout).toContain('Plan preset "default" is valid: 5% 1h → 10% 3h → 25% 20h → 50% 24h → 100%');
    expect(r.stdout).toContain('Target: none given; start takes it from its flags');
  });
});

let scratch: string | undefined;
function tmpDir(): string {
  scratch ??= fs.mkdtempSync(path.join(os.tmpdir(), 'canary-offer-'));
  return scratch;
}
