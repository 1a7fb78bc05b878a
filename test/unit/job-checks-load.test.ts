// `job` checks and `load:` in a plan (issue 17): validation, the defaults a job check gets, what the machine does with
// a Job's end, and bad input through the CLI's validate (exit 2). The Jobs themselves run on a real API server in
// test/integration/kube-hooks.test.ts.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { EXIT_BAD_INPUT, main } from '../../client/cli';
import { formatProblems, validatePlan, type PlanSpec } from '../../workflows/plan';
import { runScenario } from './machine-sim';

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
