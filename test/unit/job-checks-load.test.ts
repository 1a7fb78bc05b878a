// `job` checks and `load:` in a plan (issue 17): validation, the defaults a job check gets, what the machine does with
// a Job's end, and bad input through the CLI's validate (exit 2). The Jobs themselves run on a real API server in
// test/integration/kube-hooks.test.ts.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { EXIT_BAD_INPUT, main } from '../../client/cli';
import { formatProblems, validatePlan, type PlanSpec } from '../../workflows/plan';
import { runScenario } from './machine-sim';
import { canaryUrl, loadTargetProblems, stageLoad } from '../../workflows/plan-load';
import { loadPodTemplate } from '../../activities/hooks/load';
import { checkStartTarget } from '../../client/prepare-start';
import { hookStatusLines } from '../../client/render-hooks';
import type { RolloutStatus } from '../../workflows/types';

let tmp: string;
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'canary-jobcheck-'));
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

async function validateFile(text: string): Promise<{ code: number; stdout: string; stderr: string }> {
  const file = path.join(tmp, `plan-${Math.random().toString(36).slice(2)}.yaml`);
  fs.writeFileSync(file, text);
  let stdout = '';
  let stderr = '';
  const code = await main(['validate', '--plan', file], {
    stdout: { write: (s: string) => (stdout += s) },
    stderr: { write: (s: string) => (stderr += s) },
    env: { PATH: process.env.PATH, CANARY_IDENTITY: 'tester' },
    connect: async () => {
      throw new Error('validate must not connect');
    },
  });
  return { code, stdout, stderr };
}

const TEMPLATE = { spec: { containers: [{ name: 'smoke', image: 'busybox:1.36', command: ['true'] }] } };

const jobPlan = (check: Record<string, unknown>): PlanSpec =>
  ({
    analysis: { interval: '1m', checks: [{ name: 'smoke', ...check }] },
    stages: [{ weight: 10, hold: '5m' }, { weight: 100 }],
    promotion: { cleanupDelay: '0s' },
  }) as PlanSpec;

describe('job checks', () => {
  it('is a full-form check whose Job succeeding passes and failing is a critical breach', () => {
    const v = validatePlan(jobPlan({ job: { template: TEMPLATE } }));
    if (!v.ok) throw new Error(formatProblems(v.problems));
    const rule = v.plan.analysis.rules![0];
    expect(rule.job).toEqual({ kind: 'job', template: TEMPLATE, timeoutMs: 300_000, ttlMs: 3_600_000 });
    expect(rule.success).toEqual({ value: { min: 1 } });
    expect(rule.abort).toMatchObject({ band: { value: { min: 1 } }, severity: 'critical' });
  });

  it('keeps bands written in the plan, and a ConfigMap reference', () => {
    const v = validatePlan(
      jobPlan({
        job: { configMapRef: { name: 'checks', key: 'smoke' }, timeout: '2m' },
        abort: { min: 1, severity: 'high', consecutive: 2 },
      }),
    );
    if (!v.ok) throw new Error(formatProblems(v.problems));
    const rule = v.plan.analysis.rules![0];
    expect(rule.job).toMatchObject({ configMapRef: { name: 'checks', key: 'smoke' }, timeoutMs: 120_000 });
    expect(rule.abort).toMatchObject({ severity: 'high' });
  });

  it('refuses a template without containers, two sources, a window and a stable comparison', () => {
    const v = validatePlan(
      jobPlan({ job: { template: { spec: { containers: [] } } }, metric: 'error-rate', window: '5m' }),
    );
    expect(v.ok).toBe(false);
    const text = formatProblems(v.ok ? [] : v.problems);
    expect(text).toContain(
      'analysis.checks[0].job.template.spec.containers: must list at least one container (name and image), got an empty list',
    );
    expect(text).toContain('analysis.checks[0]: has both metric and job; keep exactly one');
    expect(text).toContain(
      "analysis.checks[0].window: a job check's value is its Job's end: it has no window",
    );
    const timeout = validatePlan(jobPlan({ job: { template: TEMPLATE, timeout: '1h' } }));
    expect(timeout.ok ? [] : timeout.problems).toEqual([
      {
        path: 'analysis.checks[0].job.timeout',
        message: 'must be at most 30m (a round waits for the Job), got "1h"',
      },
    ]);
  });

  it('validate exits 2 on a job check whose template has no containers', async () => {
    const r = await validateFile(
      'analysis:\n  checks:\n    - name: smoke\n      job: { template: { spec: { containers: [] } } }\n' +
        'stages:\n  - weight: 10\n    hold: 1m\n  - weight: 100\n',
    );
    expect(r.code).toBe(EXIT_BAD_INPUT);
    expect(r.stderr).toContain(
      'analysis.checks[0].job.template.spec.containers: must list at least one container',
    );
  });

  it('on the machine: a Job that succeeds lets the stages advance; one that fails rolls back to weight 0', async () => {
    const base = { neverStuck: true, alertsV2: true, machineV2: true } as const;
    const plan = jobPlan({ job: { template: TEMPLATE } });
    // Once its events are spent the simulation measures 0 (healthy for an error rate): keep the Job passing.
    const minutes = Array.from({ length: 12 }, () => ({ k: 'advance' as const, ms: 60_000 }));
    const ok = await runScenario({ ...base, plan, events: [{ k: 'metric', value: 1 }, ...minutes] });
    expect(ok.violations).toEqual([]);
    expect(ok.outcome).toBe('promoted');
    const bad = await runScenario({
      ...base,
      plan,
      events: [
        { k: 'metric', value: 1 },
        { k: 'advance', ms: 90_000 },
        { k: 'metric', value: 0 },
      ],
    });
    expect(bad.violations).toEqual([]);
    expect(bad.outcome).toBe('rolled_back');
    expect(bad.shifts.at(-1)?.weight).toBe(0);
    expect(bad.result?.reason).toMatch(/smoke/);
  });
});

const STAGES = [{ weight: 10, hold: '5m' }, { weight: 50, hold: '5m' }, { weight: 100 }];
const loadPlan = (load: unknown, stages: unknown[] = STAGES): PlanSpec =>
  ({ stages, load, promotion: { cleanupDelay: '0s' } }) as unknown as PlanSpec;

describe('load', () => {
  it('is the default for every stage; a stage overrides it or switches it off', () => {
    const v = validatePlan(
      loadPlan({ rate: 20, concurrency: 2, url: 'http://shop-canary.prod/' }, [
        { weight: 10, hold: '5m' },
        { weight: 50, hold: '5m', load: { rate: 50, concurrency: 5, tool: 'k6', duration: '4m' } },
        { weight: 75, hold: '5m', load: false },
        { weight: 100, load: 'none' },
      ]),
    );
    if (!v.ok) throw new Error(formatProblems(v.problems));
    const load = v.plan.load;
    expect(stageLoad(load, 0)).toEqual({
      rate: 20,
      concurrency: 2,
      url: 'http://shop-canary.prod/',
      tool: 'hey',
      image: 'williamyeh/hey:latest',
    });
    expect(stageLoad(load, 1)).toMatchObject({
      rate: 50,
      tool: 'k6',
      image: 'grafana/k6:latest',
      durationMs: 240_000,
    });
    expect(stageLoad(load, 2)).toBeUndefined();
    expect(stageLoad(load, 3)).toBeUndefined();
    // A plan without load has none, and its normalised form does not change.
    const none = validatePlan(loadPlan(undefined));
    expect(none.ok && none.plan.load).toBeUndefined();
  });

  it('refuses load without a rate, and bad values, each with its path', () => {
    const v = validatePlan(
      loadPlan({ concurrency: 0, url: 'ftp://x', tool: 'wrk' }, [
        { weight: 10, hold: '5m', load: { rate: -1 } },
        { weight: 100 },
      ]),
    );
    expect(v.ok).toBe(false);
    const text = formatProblems(v.ok ? [] : v.problems);
    expect(text).toContain('load.rate: is required: requests per second, e.g. 10');
    expect(text).toContain('load.concurrency: must be a whole number from 1 to 1000, got 0');
    expect(text).toContain('load.url: must be an http:// or https:// URL, got "ftp://x"');
    expect(text).toContain('load.tool: must be hey or k6, got "wrk"');
    expect(text).toContain(
      'stages[0].load.rate: must be more than 0 and at most 100000 requests per second, got -1',
    );
  });

  it('validate exits 2 on load without a rate', async () => {
    const r = await validateFile(
      'load: { concurrency: 2 }\nstages:\n  - weight: 10\n    hold: 1m\n  - weight: 100\n',
    );
    expect(r.code).toBe(EXIT_BAD_INPUT);
    expect(r.stderr).toContain('load.rate: is required: requests per second, e.g. 10');
  });

  it("defaults its URL to the target's canary Service, and requires one where the router has none", () => {
    const gw = {
      router: 'gatewayAPI' as const,
      httpRoute: 'shop',
      rule: 0,
      stableBackend: 'shop',
      canaryBackend: 'shop-canary',
      port: 8080,
    };
    expect(canaryUrl({ namespace: 'prod', traffic: gw })).toBe('http://shop-canary.prod:8080/');
    const v = validatePlan(loadPlan({ rate: 10 }));
    if (!v.ok) throw new Error(formatProblems(v.problems));
    expect(loadTargetProblems(v.plan.load, { namespace: 'prod', traffic: gw })).toEqual([]);
    const refused = checkStartTarget(v.plan, {
      app: 'shop',
      namespace: 'prod',
      traffic: { istio: { virtualService: 'shop' } },
    } as never);
    expect(refused.ok).toBe(false);
    expect(JSON.stringify(refused)).toContain(
      "is required: the target's router (istio) has no canary Service to send load to",
    );
  });

  it('builds the tool: hey gets the rate per worker; k6 a constant arrival rate; a template gets the settings as env', () => {
    const v = validatePlan(loadPlan({ rate: 20, concurrency: 2, duration: '1m', url: 'http://c/' }));
    if (!v.ok) throw new Error(formatProblems(v.problems));
    const hey = loadPodTemplate(stageLoad(v.plan.load, 0)!, 'http://c/');
    expect(hey.spec?.containers[0]).toMatchObject({
      image: 'williamyeh/hey:latest',
      args: ['-z', '60s', '-q', '10', '-c', '2', 'http://c/'],
    });
    const k6 = loadPodTemplate(
      { ...stageLoad(v.plan.load, 0)!, tool: 'k6', image: 'grafana/k6:latest' },
      'http://c/',
    );
    const script = k6.spec?.containers[0].env?.find((e) => e.name === 'K6_SCRIPT')?.value;
    expect(script).toContain('"executor":"constant-arrival-rate","rate":20');
    const own = loadPodTemplate({ ...stageLoad(v.plan.load, 0)!, template: TEMPLATE }, 'http://c/');
    expect(own.spec?.containers[0].env).toEqual(
      expect.arrayContaining([
        { name: 'LOAD_URL', value: 'http://c/' },
        { name: 'LOAD_RATE', value: '20' },
      ]),
    );
  });

  it('on the machine: runs only while its stage runs, starts after the weight is set, stops on promotion', async () => {
    const plan = loadPlan({ rate: 10, url: 'http://c/' }, [
      { weight: 10, hold: '5m' },
      { weight: 50, hold: '5m', load: false },
      { weight: 100, hold: '5m' },
    ]);
    const r = await runScenario({ neverStuck: true, alertsV2: true, machineV2: true, plan, events: [] });
    expect(r.violations).toEqual([]);
    expect(r.outcome).toBe('promoted');
    expect(r.loads.map((l) => `${l.op} ${l.job.split('-').slice(0, 2).join('-')} at ${l.weight}%`)).toEqual([
      'start load-1 at 10%',
      'stop load-1 at 10%',
      'start load-3 at 100%',
      'stop load-3 at 100%',
    ]);
    // Stage 1's load stops when its hold is served, before stage 2's shift.
    const shift50 = r.shifts.find((s) => s.weight === 50)!.atMs;
    expect(r.loads[1].atMs).toBeLessThanOrEqual(shift50);
    expect(r.state.load).toBeUndefined();
  });

  it('on the machine: a rollback stops the load, and an abort too', async () => {
    const plan = loadPlan({ rate: 10, url: 'http://c/' });
    const r = await runScenario({
      neverStuck: true,
      alertsV2: true,
      machineV2: true,
      plan,
      events: [
        { k: 'advance', ms: 60_000 },
        { k: 'msg', m: 'abort', who: 'alice' },
      ],
    });
    expect(r.outcome).toBe('rolled_back');
    expect(r.loads.map((l) => l.op)).toEqual(['start', 'stop']);
    expect(r.loads[1].weight).toBe(0); // after traffic is back on stable
    expect(r.state.load).toBeUndefined();
  });

  it('status lists the running load', () => {
    const load = {
      stage: 1,
      job: 'load-stage-1-abc',
      since: '2026-12-07T10:00:00.000Z',
      what: '20 req/s, 2 workers',
    };
    expect(hookStatusLines({ load } as RolloutStatus, 'canary', 'prod/shop')).toEqual([
      '',
      'Load: stage 1 since 2026-12-07T10:00:00.000Z: 20 req/s, 2 workers (job load-stage-1-abc)',
    ]);
  });
});
