// The shadow stage (`mirror` on a weight-0 stage): its validation, the routers that can mirror, the warning about
// mirrored writes, and what the rollout machine does with it (the shifts it asks for, analysis on mirrored traffic,
// status), on the simulated clock of test/unit/machine-sim.ts.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { EXIT_BAD_INPUT, EXIT_OK, main } from '../../client/cli';
import { fixedProviders } from '../../activities/factory';
import { runPreflight } from '../../activities/preflight';
import type { TrafficRouter, WorkloadManager } from '../../activities/types';
import { checkStartTarget } from '../../client/prepare-start';
import { renderStatus } from '../../client/render';
import { renderDetails } from '../../workflows/details';
import { offlinePlanFindings } from '../../client/plan-file';
import { describeMirror, mirrorRouterProblems } from '../../workflows/mirror-spec';
import { describePlan, validatePlan, type PlanSpec } from '../../workflows/plan';
import { rolloutStatus } from '../../workflows/machine/status';
import { initialState, type RolloutState } from '../../workflows/machine/state';
import { RolloutView } from '../../workflows/machine/views';
import { runScenario } from './machine-sim';

const CHECKS = { interval: '1m', checks: [{ name: 'errors', metric: 'error-rate', max: 1 }] };

function plan(first: Record<string, unknown>, more: Array<Record<string, unknown>> = []): PlanSpec {
  return {
    analysis: CHECKS,
    stages: [first, ...more, { weight: 10, hold: '10m' }, { weight: 100 }],
    promotion: { cleanupDelay: '0s' },
  } as unknown as PlanSpec;
}

const problemsOf = (spec: PlanSpec, strict = true) => {
  const v = validatePlan(spec, { strict });
  return v.ok ? [] : v.problems;
};

describe('validation', () => {
  test('a shadow stage: weight 0 and mirror 20 mirrors GET by default', () => {
    const v = validatePlan(plan({ weight: 0, hold: '30m', mirror: 20 }));
    expect(v.ok && v.plan.stages[0]).toEqual({
      weight: 0,
      holdMs: 1_800_000,
      gate: { type: 'auto' },
      mirror: { percent: 20, methods: ['GET'] },
    });
    expect(v.ok && describePlan(v.plan)).toBe('0% (mirror 20 % of GET requests) 30m → 10% 10m → 100%');
  });

  test('mirrorMethods widens it: a list (any case) or all', () => {
    const listed = validatePlan(plan({ weight: 0, hold: '5m', mirror: 5, mirrorMethods: ['get', 'HEAD'] }));
    expect(listed.ok && listed.plan.stages[0].mirror).toEqual({ percent: 5, methods: ['GET', 'HEAD'] });
    const all = validatePlan(plan({ weight: 0, hold: '5m', mirror: 100, mirrorMethods: 'all' }));
    expect(all.ok && all.plan.stages[0].mirror).toEqual({ percent: 100 });
    expect(describeMirror({ percent: 5, methods: ['GET', 'HEAD', 'OPTIONS'] })).toBe(
      '5 % of GET, HEAD and OPTIONS requests',
    );
  });

  test('mirror on a stage whose weight is not 0 is refused, saying why', () => {
    expect(problemsOf(plan({ weight: 5, hold: '5m', mirror: 20 }))).toEqual([
      {
        path: 'stages[0].weight',
        message:
          'must be 0 on a mirror stage (mirror copies requests to a canary that serves no one), got 5: give the ' +
          'shadow stage weight: 0 and put it before the stages that serve traffic',
      },
    ]);
  });

  test.each([0, 101, -5, 12.5, '20', null])('mirror %p is outside 1..100 and refused', (mirror) => {
    expect(problemsOf(plan({ weight: 0, hold: '5m', mirror }))).toEqual([
      {
        path: 'stages[0].mirror',
        message: expect.stringMatching(
          /^must be a whole percent from 1 to 100 \(the share of requests copied to the canary\), got /,
        ),
      },
    ]);
  });

  test('a shadow stage after a stage that serves traffic, or as the last stage, is refused', () => {
    expect(
      problemsOf({
        stages: [{ weight: 5, hold: '5m' }, { weight: 0, hold: '5m', mirror: 20 }, { weight: 100 }],
      }),
    ).toEqual([
      {
        path: 'stages[1].mirror',
        message: 'a shadow stage comes before the stages that serve traffic, not after stages[0] (5%)',
      },
    ]);
    expect(problemsOf({ stages: [{ weight: 0, mirror: 20 }] })).toContainEqual({
      path: 'stages[0].mirror',
      message: 'the last stage serves all traffic (weight 100); it cannot mirror',
    });
  });

  test('two shadow stages may come first; weight 0 without mirror is refused as before', () => {
    expect(
      problemsOf(plan({ weight: 0, hold: '5m', mirror: 5 }, [{ weight: 0, hold: '5m', mirror: 50 }])),
    ).toEqual([]);
    expect(problemsOf(plan({ weight: 0, hold: '5m' }))).toEqual([
      {
        path: 'stages[0].weight',
        message: 'must be more than 0 and at most 100 (percent of traffic), got 0',
      },
    ]);
  });

  test('bad mirrorMethods, and mirrorMethods without mirror, are refused', () => {
    expect(
      problemsOf(plan({ weight: 0, hold: '5m', mirror: 5, mirrorMethods: ['GET', 'FETCH', 'get'] })),
    ).toEqual([
      {
        path: 'stages[0].mirrorMethods[1]',
        message:
          'must be an HTTP method (GET, HEAD, POST, PUT, DELETE, CONNECT, OPTIONS, TRACE, PATCH), got "FETCH"',
      },
      { path: 'stages[0].mirrorMethods[2]', message: 'names GET twice' },
    ]);
    expect(problemsOf(plan({ weight: 0, hold: '5m', mirror: 5, mirrorMethods: [] }))).toEqual([
      { path: 'stages[0].mirrorMethods', message: 'must name at least one method (e.g. [GET]), or be all' },
    ]);
    expect(problemsOf(plan({ weight: 5, hold: '5m', mirrorMethods: ['GET'] }))).toEqual([
      {
        path: 'stages[0].mirrorMethods',
        message: 'only applies to a mirror stage: add mirror (e.g. mirror: 20)',
      },
    ]);
  });

  test('rollouts started before mirroring (strict off) refuse it, as every later field', () => {
    expect(problemsOf(plan({ weight: 0, hold: '5m', mirror: 20 }), false)).toContainEqual({
      path: 'stages[0].mirror',
      message: 'is not available for this rollout (started before it existed)',
    });
  });

  test('mirroring writes is a warning (refused by --strict), mirroring safe methods is not', () => {
    const writes = validatePlan(plan({ weight: 0, hold: '5m', mirror: 5, mirrorMethods: ['GET', 'POST'] }));
    if (!writes.ok) throw new Error('invalid');
    expect(offlinePlanFindings(writes.plan).warnings).toEqual([
      {
        path: 'stages[0].mirrorMethods',
        message: expect.stringMatching(/^mirrors POST requests: each mirrored write is carried out twice/),
      },
    ]);
    const all = validatePlan(plan({ weight: 0, hold: '5m', mirror: 5, mirrorMethods: 'all' }));
    if (!all.ok) throw new Error('invalid');
    expect(offlinePlanFindings(all.plan).warnings[0].message).toMatch(/^mirrors every method requests/);
    const safe = validatePlan(plan({ weight: 0, hold: '5m', mirror: 5, mirrorMethods: ['GET', 'HEAD'] }));
    if (!safe.ok) throw new Error('invalid');
    expect(offlinePlanFindings(safe.plan).warnings).toEqual([]);
  });
});

describe('routers that can mirror', () => {
  const v = validatePlan(plan({ weight: 0, hold: '5m', mirror: 20 }));
  if (!v.ok) throw new Error('invalid');
  const shadow = v.plan;

  test.each(['istio', 'gatewayAPI'])('%s can', (router) => {
    expect(mirrorRouterProblems(shadow, router)).toEqual([]);
  });

  test.each(['nginx', 'smi', 'replicas', 'local'])(
    '%s cannot, and the message names those that can',
    (router) => {
      expect(mirrorRouterProblems(shadow, router)).toEqual([
        {
          path: 'stages[0].mirror',
          message:
            `the ${router} router cannot mirror traffic; only istio (VirtualService mirror) and gatewayAPI (HTTPRoute ` +
            'RequestMirror filter) can: route this target with one of them, or drop the shadow stage',
        },
      ]);
    },
  );

  test('the start of a target with nginx is refused; a target without a router is left to the worker', () => {
    const refused = checkStartTarget(shadow, { app: 'shop', traffic: { nginx: {} } });
    expect(refused.ok).toBe(false);
    expect(!refused.ok && refused.problems[0]).toMatchObject({
      kind: 'unmeasurable',
      problems: [
        { path: 'stages[0].mirror', message: expect.stringContaining('nginx router cannot mirror') },
      ],
    });
    expect(checkStartTarget(shadow, { app: 'shop' }).ok).toBe(true);
    expect(checkStartTarget(shadow, { app: 'shop', traffic: { istio: {} } }).ok).toBe(true);
  });
});

describe('the rollout machine', () => {
  const spec = plan({ weight: 0, hold: '20m', mirror: 20 });

  test('sets the mirror with weight 0, analyses the mirrored canary, and the next stage removes it', async () => {
    const report = await runScenario({
      plan: spec,
      events: [{ k: 'advance', ms: 2 * 3600_000 }],
      neverStuck: true,
      machineV2: true,
      alertsV2: true,
    });
    expect(report.violations).toEqual([]);
    expect(report.outcome).toBe('promoted');
    expect(report.shifts.map((s) => [s.weight, s.mirror])).toEqual([
      [0, { percent: 20, methods: ['GET'] }],
      [10, undefined],
      [100, undefined],
      [0, undefined],
    ]);
    expect(report.shifts[0].why).toBe('stage 1/3: canary 0% → 0%, mirroring 20 % of GET requests');
    // Rounds ran while the canary served no one: every minute of the 20-minute shadow stage.
    const beforeStage2 = report.shifts[1].atMs;
    expect(report.state.analysesRun).toBeGreaterThanOrEqual(20);
    expect(beforeStage2).toBeGreaterThanOrEqual(20 * 60_000);
  });

  test('a breach in the shadow stage rolls back: traffic (and the mirror) go back, recorded as touched', async () => {
    const report = await runScenario({
      plan: spec,
      events: [
        { k: 'advance', ms: 5 * 60_000 },
        { k: 'metric', value: 9 },
        { k: 'advance', ms: 10 * 60_000 },
      ],
      neverStuck: true,
      machineV2: true,
      alertsV2: true,
    });
    expect(report.outcome).toBe('rolled_back');
    expect(report.state.touched?.traffic).toBe(true);
    expect(report.shifts.map((s) => [s.weight, s.mirror])).toEqual([
      [0, { percent: 20, methods: ['GET'] }],
      [0, undefined],
    ]);
  });

  test('status says what the shadow stage mirrors, and stops saying it once traffic moves', () => {
    const entered = { ...initialState(), canaryReady: true, stageEntered: true, weight: 0, waitStartedAt: 0 };
    expect(rolloutStatusOf(entered)).toMatchObject({
      weight: 0,
      mirroring: 'mirroring 20 % of GET requests to the canary',
    });
    expect(renderStatus(rolloutStatusOf(entered), new Date())).toMatch(
      /Weight +0% canary, mirroring 20 % of GET requests to the canary/,
    );
    const v = validatePlan(spec);
    if (!v.ok) throw new Error('invalid');
    expect(renderDetails(rolloutStatusOf(entered), v.plan)).toContain(
      'Shadow stage: mirroring 20 % of GET requests to the canary',
    );
    expect(rolloutStatusOf({ ...entered, stageIndex: 1, weight: 10 }).mirroring).toBeUndefined();
    expect(rolloutStatusOf({ ...entered, phase: 'rolled_back' }).mirroring).toBeUndefined();
  });

  function rolloutStatusOf(state: RolloutState) {
    const v = validatePlan(spec);
    if (!v.ok) throw new Error('invalid');
    const view = new RolloutView(state, {
      plan: v.plan,
      target: { app: 'app', namespace: 'ns' },
      version: 'v2',
      requestedBy: 'ci',
      cli: 'canary',
      workflowId: 'canary.ns.app',
      firstRunId: 'run-1',
      temporalNamespace: 'default',
      flags: { routingLifecycle: true, judgeV2: false, alertsV2: true },
      historyLimit: 4000,
    });
    return rolloutStatus(view, Date.now());
  }
});

describe('the CLI refuses a bad shadow stage before anything starts (exit 2)', () => {
  let tmp: string;
  beforeAll(() => (tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'canary-mirror-'))));
  afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

  const write = (name: string, text: string): string => {
    const file = path.join(tmp, name);
    fs.writeFileSync(file, text);
    return file;
  };
  const shadowPlan = (stage: string) =>
    `analysis:\n  checks:\n    - { name: errors, metric: error-rate, max: 1 }\nstages:\n  - ${stage}\n  - { weight: 10, hold: 10m }\n  - { weight: 100 }\n`;

  async function run(argv: string[]) {
    let stdout = '';
    let stderr = '';
    let connects = 0;
    const code = await main(argv, {
      stdout: { write: (s: string) => (stdout += s) },
      stderr: { write: (s: string) => (stderr += s) },
      env: { PATH: process.env.PATH, CANARY_IDENTITY: 'tester', TEMPORAL_ADDRESS: '127.0.0.1:1' },
      connect: async () => {
        connects++;
        throw new Error('connect must not be called');
      },
    });
    return { code, stdout, stderr, connects };
  }

  test('start with a router that cannot mirror names the routers that can', async () => {
    const plan = write('shadow.yaml', shadowPlan('{ weight: 0, hold: 30m, mirror: 20 }'));
    const r = await run([
      'start',
      '--app',
      'checkout',
      '--namespace',
      'prod',
      '--version',
      'v2',
      '--router',
      'nginx',
      '--plan',
      plan,
    ]);
    expect(r.code).toBe(EXIT_BAD_INPUT);
    expect(r.stderr).toContain(
      '  - stages[0].mirror: the nginx router cannot mirror traffic; only istio (VirtualService mirror) and ' +
        'gatewayAPI (HTTPRoute RequestMirror filter) can',
    );
    expect(r.connects).toBe(0);
    const target = write('smi.target.yaml', 'app: checkout\ntraffic: { smi: {} }\n');
    const v = await run(['validate', '--plan', plan, '--target', target]);
    expect(v.code).toBe(EXIT_BAD_INPUT);
    expect(v.stderr).toContain('stages[0].mirror: the smi router cannot mirror traffic');
    const istio = write('istio.target.yaml', 'app: checkout\ntraffic: { istio: {} }\n');
    expect((await run(['validate', '--plan', plan, '--target', istio])).code).toBe(EXIT_OK);
  });

  test('a mirror on a stage with weight, or outside 1..100', async () => {
    const weighted = await run([
      'validate',
      '--plan',
      write('w.yaml', shadowPlan('{ weight: 5, hold: 30m, mirror: 20 }')),
    ]);
    expect(weighted.code).toBe(EXIT_BAD_INPUT);
    expect(weighted.stderr).toContain('  - stages[0].weight: must be 0 on a mirror stage');
    const outside = await run([
      'validate',
      '--plan',
      write('o.yaml', shadowPlan('{ weight: 0, hold: 30m, mirror: 120 }')),
    ]);
    expect(outside.code).toBe(EXIT_BAD_INPUT);
    expect(outside.stderr).toContain('  - stages[0].mirror: must be a whole percent from 1 to 100');
  });

  test('mirroring writes warns, and --strict refuses it', async () => {
    const plan = write(
      'writes.yaml',
      shadowPlan('{ weight: 0, hold: 30m, mirror: 20, mirrorMethods: [GET, POST] }'),
    );
    const warned = await run(['validate', '--plan', plan]);
    expect(warned.code).toBe(EXIT_OK);
    expect(warned.stderr).toContain('mirrors POST requests: each mirrored write is carried out twice');
    expect((await run(['validate', '--plan', plan, '--strict'])).code).toBe(EXIT_BAD_INPUT);
  });
});

describe("the worker's preflight", () => {
  test("refuses a shadow stage on the worker's default router when that cannot mirror (input: exit 2)", async () => {
    const v = validatePlan(plan({ weight: 0, hold: '5m', mirror: 20 }));
    if (!v.ok) throw new Error('invalid');
    const router = { type: 'nginx' } as TrafficRouter;
    const providers = fixedProviders({
      router,
      workloads: { type: 'none' } as WorkloadManager,
      metrics: { type: 'none', runQuery: async () => 0, isOnline: async () => true },
      alerts: [],
    });
    const report = await runPreflight(providers, {
      target: { app: 'shop', namespace: 'prod' },
      plan: v.plan,
      version: 'v2',
    });
    expect(report.findings).toContainEqual({
      area: 'object',
      cause: 'input',
      level: 'refuse',
      message: expect.stringMatching(
        /^the nginx router cannot mirror traffic; .*\(the target names no router, so this worker's default, nginx, routes it\)$/,
      ),
      path: 'stages[0].mirror',
    });
  });
});
