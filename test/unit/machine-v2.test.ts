// What machine-v2 changes, on the rollout machine with a simulated clock (test/unit/machine-sim.ts), each against the
// behaviour rollouts started before it keep: holds count only window time, an approved gate waiting for a window
// reads as progressing, a pause that outlasts a window's opening does not let a stage in after it closes, and a
// canary that cannot be removed after promotion leaves the rollout promoted.
import type { PlanSpec } from '../../workflows/plan';
import { runScenario, type Scenario } from './machine-sim';

const HOUR = 3600_000;
const MIN = 60_000;
const WEEKDAYS_9_TO_5 = {
  timeZone: 'UTC',
  allow: [{ days: ['mon', 'tue', 'wed', 'thu', 'fri'], from: '09:00', to: '17:00' }],
} as PlanSpec['windows'];

const run = (sc: Omit<Scenario, 'neverStuck' | 'alertsV2'>, machineV2: boolean) =>
  runScenario({ neverStuck: true, alertsV2: true, ...sc, machineV2 });

/** A plan with no checks, no cleanup delay and weekday 09:00–17:00 UTC windows: a first stage, then 100 %. */
const windowed = (first: { weight: number; hold: string }, gate: 'auto' | 'approval'): PlanSpec => ({
  analysis: { interval: '1m', checks: [] },
  stages: [first, { weight: 100, gate }],
  promotion: { cleanupDelay: '0s' },
  windows: WEEKDAYS_9_TO_5,
});

/** When (ms after the rollout's start) the first shift to this weight happened. */
const shiftAt = (report: Awaited<ReturnType<typeof run>>, weight: number) =>
  report.shifts.find((s) => s.weight === weight)?.atMs;

describe('machine-v2 on the rollout machine', () => {
  // Started Monday 16:30 UTC: stage 1 (5 %, 1 h hold) has served 30 minutes when the window closes at 17:00.
  const straddling: Omit<Scenario, 'neverStuck' | 'alertsV2'> = {
    plan: windowed({ weight: 5, hold: '1h' }, 'auto'),
    events: [],
    startAfterMs: 6.5 * HOUR,
  };

  it('a hold counts only time inside the deployment windows', async () => {
    const v2 = await run(straddling, true);
    expect(v2.violations).toEqual([]);
    expect(v2.outcome).toBe('promoted');
    // 30 min on Monday before 17:00, the other 30 from Tuesday 09:00: promotion at Tuesday 09:30.
    expect(shiftAt(v2, 100)).toBe(17 * HOUR);
    const before = await run(straddling, false);
    // Rollouts started before machine-v2 counted the night and advanced as the window opened.
    expect(shiftAt(before, 100)).toBe(16.5 * HOUR);
  });

  it('a pause inside the hold does not count, and neither does the night', async () => {
    const report = await run(
      {
        ...straddling,
        // Paused at 16:30 for 10 minutes: 20 minutes served by 17:00, 40 more from 09:00.
        events: [
          { k: 'msg', m: 'pause', who: 'alice' },
          { k: 'advance', ms: 10 * MIN },
          { k: 'msg', m: 'resume', who: 'alice' },
        ],
      },
      true,
    );
    expect(report.violations).toEqual([]);
    expect(shiftAt(report, 100)).toBe(16.5 * HOUR + 40 * MIN);
  });

  it('an approved gate waiting for its window reads as progressing, not as waiting for approval', async () => {
    const gated: Omit<Scenario, 'neverStuck' | 'alertsV2'> = {
      plan: windowed({ weight: 5, hold: '5m' }, 'approval'),
      // Monday 16:50: the hold ends at 16:55 and the gate waits; approved at 17:15, after the window closed.
      events: [
        { k: 'advance', ms: 5 * MIN },
        { k: 'advance', ms: 20 * MIN },
        { k: 'msg', m: 'approve', who: 'alice' },
        { k: 'advance', ms: HOUR },
      ],
      startAfterMs: 6 * HOUR + 50 * MIN,
    };
    const approvedAt = 25 * MIN;
    const after = (r: Awaited<ReturnType<typeof run>>) =>
      r.phases.filter((p) => p.atMs >= approvedAt).map((p) => p.phase);
    const v2 = await run(gated, true);
    expect(v2.violations).toEqual([]);
    expect(after(v2)[0]).toBe('progressing');
    expect(v2.state.windowWait).toBeUndefined();
    // Promoted when the window opened on Tuesday at 09:00.
    expect(shiftAt(v2, 100)).toBe(16 * HOUR + 10 * MIN);
    const before = await run(gated, false);
    expect(
      before.phases.filter((p) => p.atMs >= approvedAt && p.atMs < 16 * HOUR).map((p) => p.phase),
    ).not.toContain('progressing');
  });

  it('a pause that outlasts the window opening does not let the stage in after the window closed again', async () => {
    const paused: Omit<Scenario, 'neverStuck' | 'alertsV2'> = {
      plan: windowed({ weight: 5, hold: '1h' }, 'auto'),
      // Started Sunday 08:00: waits for Monday 09:00, paused meanwhile until Monday 20:00.
      events: [
        { k: 'msg', m: 'pause', who: 'alice' },
        { k: 'advance', ms: 25 * HOUR },
        { k: 'advance', ms: 11 * HOUR },
        { k: 'msg', m: 'resume', who: 'alice' },
      ],
      startAfterMs: 6 * 24 * HOUR - 2 * HOUR,
    };
    const v2 = await run(paused, true);
    expect(v2.violations).toEqual([]);
    // Stage 1 enters on Tuesday 09:00 (the next opening after the resume), not at Monday 20:00.
    expect(shiftAt(v2, 5)).toBe(49 * HOUR);
    const before = await run(paused, false);
    expect(shiftAt(before, 5)).toBe(36 * HOUR);
  });

  it('a canary that cannot be removed after promotion leaves the rollout promoted, and says how to remove it', async () => {
    const sc: Omit<Scenario, 'neverStuck' | 'alertsV2'> = {
      plan: {
        analysis: { interval: '1m', checks: [] },
        stages: [{ weight: 100, gate: 'auto' }],
        promotion: { cleanupDelay: '0s' },
      },
      events: [],
      failSteps: ['cleanupCanary'],
    };
    const v2 = await run(sc, true);
    expect(v2.outcome).toBe('promoted');
    expect(v2.state.phase).toBe('promoted');
    expect(v2.state.cleanupFailed?.error).toContain('cleanupCanary failed');
    const warning = v2.alerts.find((a) => a.kind === 'stuck');
    expect(warning?.message).toContain('could not be removed: cleanupCanary failed');
    expect(warning?.message).toContain('Remove it by hand: remove the canary workload of ns/app by hand');
    // Before machine-v2 the workflow failed although traffic was on the new stable.
    expect((await run(sc, false)).outcome).toBe('failed');
  });
});

describe('the shift back to stable (rollback-local-shift)', () => {
  const PLAN: PlanSpec = {
    analysis: { interval: '1m', checks: [] },
    stages: [{ weight: 10, hold: '1h' }, { weight: 100 }],
    promotion: { cleanupDelay: '0s' },
  };
  const aborted = (over: Partial<Scenario> = {}) =>
    run(
      {
        plan: PLAN,
        events: [
          { k: 'advance', ms: 5 * MIN },
          { k: 'msg', m: 'abort', who: 'bob' },
        ],
        ...over,
      },
      true,
    );
  const back = (r: Awaited<ReturnType<typeof run>>) =>
    r.commands.filter((c) => c.step === 'setCanaryWeight' && c.summary.startsWith('rollback'));

  it('runs first as the worker’s own attempt (a local activity); no persistent step when it lands', async () => {
    const r = await aborted();
    expect(r.violations).toEqual([]);
    expect(r.outcome).toBe('rolled_back');
    expect(back(r).map((c) => c.policy)).toEqual(['rollbackFirst']);
    expect(r.shifts.map((s) => s.weight)).toEqual([10, 0]);
  });

  it('when that attempt fails, the persistent step takes over and traffic still goes back', async () => {
    let failed = 0;
    const r = await aborted({
      stepAnswer: async (c) => {
        if (c.policy === 'rollbackFirst') {
          failed++;
          throw new Error('connection refused');
        }
        return undefined;
      },
    });
    expect(r.violations).toEqual([]);
    expect(failed).toBe(1);
    expect(r.outcome).toBe('rolled_back');
    expect(back(r).map((c) => c.policy)).toEqual(['rollbackFirst', 'persistent']);
    expect(r.state.weight).toBe(0);
  });

  it('the replica ratio keeps the persistent step, and status says why traffic waits: stable grows back first', async () => {
    const notes: Array<string | undefined> = [];
    const r = await aborted({
      target: { traffic: { router: 'replicas', replicas: {} } } as Scenario['target'],
      stepAnswer: async (c, m) => {
        if (c.step === 'setCanaryWeight' && c.summary.startsWith('rollback'))
          notes.push(m.status().capacityNote);
        return undefined;
      },
    });
    expect(r.violations).toEqual([]);
    expect(back(r).map((c) => c.policy)).toEqual(['persistent']);
    expect(notes[0]).toMatch(
      /stable grows back to its full size first, and the canary goes to 0 once those pods/,
    );
  });
});
