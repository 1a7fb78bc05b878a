// The plan's hooks on the rollout machine with a simulated clock (test/unit/machine-sim.ts): each point in order,
// once per stage entry (across a continue-as-new too), what each onFailure does, and confirm gates.
import type { HookRunInput, HookRunResult } from '../../activities/hooks/types';
import type { PlanSpec } from '../../workflows/plan';
import { runScenario, type Scenario } from './machine-sim';

const MIN = 60_000;
const http = (name: string, extra: Record<string, unknown> = {}) => ({
  name,
  http: { url: `https://hooks.example.com/${name}` },
  ...extra,
});

const plan = (hooks: Record<string, unknown>, checked = false): PlanSpec =>
  ({
    // With a check, rounds every minute wake the walk (and let it continue as new mid-stage).
    analysis: { interval: '1m', checks: checked ? [{ name: 'errors', metric: 'error-rate', max: 1 }] : [] },
    stages: [{ weight: 10, hold: '10m' }, { weight: 50, hold: '10m' }, { weight: 100 }],
    promotion: { cleanupDelay: '0s' },
    hooks,
  }) as PlanSpec;

const EVERY_POINT = {
  before: [http('smoke')],
  beforeStage: [http('bs')],
  afterStage: [http('as')],
  beforePromotion: [http('bp')],
  afterPromotion: [http('ap')],
  onRollback: [http('rb')],
};

const run = (sc: Omit<Scenario, 'neverStuck' | 'alertsV2' | 'machineV2'>) =>
  runScenario({ neverStuck: true, alertsV2: true, machineV2: true, ...sc });

const failing =
  (name: string, result: HookRunResult['result'] = 'failed') =>
  (i: HookRunInput): HookRunResult =>
    i.hook.name === name
      ? { result, detail: 'HTTP 500 from hooks.example.com', tookMs: 4 }
      : { result: 'ok', detail: 'HTTP 200', tookMs: 3 };

const ORDER = [
  'before 1 smoke#1',
  'beforeStage 1 bs#1',
  'afterStage 1 as#1',
  'beforeStage 2 bs#1',
  'afterStage 2 as#1',
  'beforeStage 3 bs#1',
  'afterStage 3 as#1',
  'beforePromotion 3 bp#1',
  'afterPromotion 3 ap#1',
];

describe('hooks on the rollout machine', () => {
  it('runs every point in order, once per stage entry; before runs at weight 0', async () => {
    const r = await run({ plan: plan(EVERY_POINT), events: [] });
    expect(r.violations).toEqual([]);
    expect(r.outcome).toBe('promoted');
    expect(r.hooks.map((h) => h.run)).toEqual(ORDER);
    expect(r.hooks[0].weight).toBe(0);
    // beforeStage runs before its shift, afterStage after its hold.
    expect(r.hooks.find((h) => h.run === 'beforeStage 2 bs#1')?.weight).toBe(10);
    expect(r.hooks.find((h) => h.run === 'afterStage 2 as#1')?.weight).toBe(50);
    expect(r.state.hookRuns?.map((h) => h.result)).toEqual(ORDER.map(() => 'ok'));
  });

  it('runs each hook once across a continue-as-new (mid-stage, and with a confirm gate)', async () => {
    for (const at of [5 * MIN, 12 * MIN]) {
      const r = await run({ plan: plan(EVERY_POINT, true), events: [], continueAfterMs: at });
      expect(r.runs).toBe(2);
      expect(r.hooks.map((h) => h.run)).toEqual(ORDER);
    }
    let asks = 0;
    const confirming = await run({
      plan: plan({ beforeStage: [http('gate', { confirm: { interval: '1m', limit: 5 } })] }, true),
      events: [],
      continueAfterMs: 90_000,
      hookAnswer: (i) =>
        i.stage === 1 && ++asks < 3
          ? { result: 'not_ready', detail: 'HTTP 409 (not yet)', tookMs: 1 }
          : { result: 'ok', detail: 'HTTP 200', tookMs: 1 },
    });
    expect(confirming.runs).toBe(2);
    expect(confirming.hooks.map((h) => h.run)).toEqual([
      'beforeStage 1 gate#1',
      'beforeStage 1 gate#2',
      'beforeStage 1 gate#3',
      'beforeStage 2 gate#1',
      'beforeStage 3 gate#1',
    ]);
  });

  it('a plan without hooks asks for none', async () => {
    const r = await run({ plan: plan({}), events: [] });
    expect(r.outcome).toBe('promoted');
    expect(r.hooks).toEqual([]);
  });

  it('a failing before hook (abort) rolls back before any traffic moved, alerting hook_failed', async () => {
    const r = await run({ plan: plan(EVERY_POINT), events: [], hookAnswer: failing('smoke') });
    expect(r.violations).toEqual([]);
    expect(r.outcome).toBe('rolled_back');
    expect(r.shifts.every((s) => s.weight === 0)).toBe(true);
    expect(r.result?.reason).toBe('hook smoke (before) failed: HTTP 500 from hooks.example.com');
    expect(r.result?.ending).toEqual({ kind: 'step' });
    expect(r.alerts.map((a) => a.kind)).toContain('hook_failed');
    // onRollback runs once traffic is back on stable.
    expect(r.hooks.map((h) => h.run)).toEqual(['before 1 smoke#1', 'onRollback 1 rb#1']);
  });

  it('a failing afterStage hook with approval asks a person: approve goes on', async () => {
    const hooks = { afterStage: [http('as', { onFailure: 'approval' })] };
    const answer = (i: HookRunInput): HookRunResult =>
      i.stage === 1
        ? { result: 'failed', detail: 'HTTP 422', tookMs: 2 }
        : { result: 'ok', detail: 'HTTP 200', tookMs: 2 };
    const r = await run({
      plan: plan(hooks),
      events: [
        { k: 'advance', ms: 10 * MIN },
        { k: 'advance', ms: 5 * MIN },
        { k: 'msg', m: 'approve', who: 'alice' },
      ],
      hookAnswer: answer,
    });
    expect(r.violations).toEqual([]);
    expect(r.outcome).toBe('promoted');
    expect(r.phases.map((p) => p.phase)).toContain('waiting_approval');
    const waited = r.phases.find((p) => p.phase === 'waiting_approval')!;
    expect(waited.atMs).toBe(10 * MIN);
    expect(r.state.approvals).toContainEqual(
      expect.objectContaining({ stage: 1, by: 'alice', kind: 'hook-failure-accepted' }),
    );
    expect(r.alerts.map((a) => a.kind)).toEqual(expect.arrayContaining(['hook_failed', 'approval_needed']));
    // The traffic held at stage 1 while the question waited.
    expect(r.shifts.find((s) => s.weight === 50)?.atMs).toBe(15 * MIN);
  });

  it('... and an abort while it asks declines it and rolls back', async () => {
    const r = await run({
      plan: plan({ afterStage: [http('as', { onFailure: 'approval' })] }),
      events: [
        { k: 'advance', ms: 10 * MIN },
        { k: 'msg', m: 'abort', who: 'bob' },
      ],
      hookAnswer: failing('as'),
    });
    expect(r.outcome).toBe('rolled_back');
    expect(r.result?.ending).toEqual({ kind: 'decline', by: 'bob' });
    expect(r.result?.reason).toContain('the question about hook as');
  });

  it('warn alerts and goes on', async () => {
    const r = await run({
      plan: plan({ beforeStage: [http('bs', { onFailure: 'warn' })] }),
      events: [],
      hookAnswer: failing('bs'),
    });
    expect(r.outcome).toBe('promoted');
    expect(r.alerts.filter((a) => a.kind === 'hook_failed')).toHaveLength(3);
  });

  it('a confirm gate that never says yes fails once its asks run out, then onFailure decides', async () => {
    const r = await run({
      plan: plan({ beforePromotion: [http('bp', { confirm: { interval: '2m', limit: 3 } })] }),
      events: [],
      hookAnswer: failing('bp', 'not_ready'),
    });
    expect(r.outcome).toBe('rolled_back');
    expect(r.hooks.map((h) => [h.run, h.atMs])).toEqual([
      ['beforePromotion 3 bp#1', 20 * MIN],
      ['beforePromotion 3 bp#2', 22 * MIN],
      ['beforePromotion 3 bp#3', 24 * MIN],
    ]);
    expect(r.result?.reason).toBe(
      'hook bp (beforePromotion) failed: still not ready after 3 asks, 2m apart (HTTP 500 from hooks.example.com)',
    );
    // Never promoted: stable never took the new version.
    expect(r.state.promotedAt).toBeUndefined();
  });

  it('an onRollback hook that fails cannot hold or skip the rollback', async () => {
    const r = await run({
      plan: plan({ afterStage: [http('as', { onFailure: 'abort' })], onRollback: [http('rb')] }),
      events: [],
      failSteps: ['runHook'],
    });
    expect(r.violations).toEqual([]);
    expect(r.outcome).toBe('rolled_back');
    expect(r.state.weight).toBe(0);
    expect(r.hooks.map((h) => h.run)).toEqual(['afterStage 1 as#1', 'onRollback 1 rb#1']);
    expect(r.alerts.filter((a) => a.kind === 'hook_failed')).toHaveLength(2);
  });
});
