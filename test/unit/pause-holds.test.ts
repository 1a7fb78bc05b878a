// A paused rollout moves nothing forward (pause-holds-advance), on the machine's simulated clock: paused before its
// canary (queued for a slot, during its preflight), while waiting for a deployment window, a freeze, a gate or a hook,
// it deploys no canary, enters no stage and does not promote until it is resumed, and then goes on at once. An abort
// still ends it with nothing deployed. Rollouts started before the patch (flag off) keep the old behaviour.
import type { FleetFreeze } from '../../workflows/fleet-model';
import { fleetWorkflowId } from '../../workflows/fleet-model';
import type { PlanSpec } from '../../workflows/plan';
import {
  currentMachine,
  currentScenario,
  THREE_STAGES,
  minutes,
  runScenario,
  type RunReport,
  type Scenario,
  type SimEvent,
} from './machine-sim';

const PLAN = THREE_STAGES;

const NS = fleetWorkflowId('ns');
const QUEUED = { fleets: { [NS]: undefined }, slots: { [NS]: { granted: false, position: 1, max: 1 } } };
const GRANT: SimEvent = { k: 'fleet', fleet: NS, slot: { granted: true, max: 1 } };
const FREEZE: FleetFreeze = {
  scope: 'ns',
  by: 'alice',
  reason: 'incident 42',
  since: '2026-12-07T10:00:00.000Z',
};
const msg = (m: 'pause' | 'resume' | 'abort' | 'approve' | 'promote', who = 'carol'): SimEvent => ({
  k: 'msg',
  m,
  who,
});
const hours = (n: number): SimEvent[] =>
  Array.from({ length: n }, () => ({ k: 'advance', ms: 3600_000 }) as const);

/** When the first pause ended (ms after the start): the first phase after `paused`. */
function resumedAt(r: RunReport): number {
  const i = r.phases.findIndex((p) => p.phase === 'paused');
  expect(i).toBeGreaterThanOrEqual(0);
  expect(r.phases[i + 1]).toBeDefined();
  return r.phases[i + 1].atMs;
}
const pausedAt = (r: RunReport): number => r.phases.find((p) => p.phase === 'paused')!.atMs;
const firstStep = (r: RunReport, step: string): number | undefined =>
  r.commands.find((c) => c.step === step)?.atMs;
/** When the canary first carried traffic (a shift above 0 %), if ever. */
const firstTraffic = (r: RunReport): number | undefined => r.shifts.find((s) => s.weight > 0)?.atMs;

describe('a paused rollout deploys nothing and enters no stage until resumed (pause-holds-advance)', () => {
  it('queued, paused, then granted its slot: keeps the slot, deploys nothing; resumed, it deploys and enters stage 1', async () => {
    const sc = (pauseHolds: boolean): Scenario =>
      currentScenario(PLAN, {
        ...QUEUED,
        pauseHolds,
        events: [...minutes(5), msg('pause'), ...minutes(5), GRANT, ...minutes(30), msg('resume')],
      });
    const r = await runScenario(sc(true));
    expect(r.violations).toEqual([]);
    expect(r.outcome).toBe('promoted');
    expect(r.phases.map((p) => p.phase).slice(0, 4)).toEqual([
      'progressing',
      'queued',
      'paused',
      'progressing',
    ]);
    const resumed = resumedAt(r);
    expect(resumed).toBeGreaterThanOrEqual(40 * 60_000);
    // Nothing is deployed while paused: the canary and stage 1 come with the resume, at once.
    expect(firstStep(r, 'prepareCanary')).toBe(resumed);
    expect(firstStep(r, 'prepareRouting')).toBe(resumed);
    expect(r.shifts[0]).toMatchObject({ atMs: resumed, weight: 10 });
    // The slot granted at 10 minutes was kept through the pause, and given back once, at the end.
    expect(r.fleetReleases).toEqual([{ atMs: expect.any(Number), fleet: NS }]);
    expect(r.fleetReleases[0].atMs).toBeGreaterThan(resumed);
    expect(r.commands.filter((c) => c.step === 'prepareCanary')).toHaveLength(1);

    // Before the patch, the grant deployed the canary and entered stage 1 while the rollout was still paused.
    const old = await runScenario(sc(false));
    expect(old.violations).toEqual([]);
    expect(old.outcome).toBe('promoted');
    expect(firstStep(old, 'prepareCanary')).toBe(10 * 60_000);
    expect(old.shifts[0]).toMatchObject({ atMs: 10 * 60_000, weight: 10 });
    expect(resumedAt(old)).toBeGreaterThan(old.shifts[0].atMs);
  });

  it('status while paused and granted: the phase is paused, by whom and why, no longer queued', async () => {
    const m = currentMachine(PLAN);
    await m.fleetNotice({ fleet: NS, slot: { granted: false, position: 1, max: 1 } });
    m.pause({ identity: 'carol', reason: 'checking the dashboards' });
    await m.fleetNotice({ fleet: NS, slot: { granted: true, max: 1 } });
    const st = m.status();
    expect(st.phase).toBe('paused');
    expect([st.pausedBy, st.pauseReason, st.weight]).toEqual(['carol', 'checking the dashboards', 0]);
    expect(st.queued).toBeUndefined();
  });

  it('paused during its preflight: deploys nothing until resumed', async () => {
    const sc = (pauseHolds: boolean): Scenario =>
      currentScenario(PLAN, {
        pauseHolds,
        // The pause arrives while the preflight runs.
        stepAnswer: (c, m) => {
          if (c.step === 'preflight') m.pause({ identity: 'carol' });
          return Promise.resolve(undefined);
        },
        events: [...minutes(20), msg('resume')],
      });
    const r = await runScenario(sc(true));
    expect(r.violations).toEqual([]);
    expect(r.outcome).toBe('promoted');
    expect(firstStep(r, 'preflight')).toBe(0);
    const resumed = resumedAt(r);
    expect(resumed).toBeGreaterThanOrEqual(20 * 60_000);
    expect(firstStep(r, 'prepareCanary')).toBe(resumed);
    expect(r.shifts[0]).toMatchObject({ atMs: resumed, weight: 10 });

    const old = await runScenario(sc(false));
    expect(old.violations).toEqual([]);
    expect(firstStep(old, 'prepareCanary')).toBe(0);
    expect(firstTraffic(old)).toBe(0);
  });

  it('paused while waiting for a deployment window: the window opens, nothing moves until the resume', async () => {
    const r = await runScenario(
      currentScenario(
        {
          ...PLAN,
          windows: {
            timeZone: 'UTC',
            allow: [{ days: ['mon', 'tue', 'wed', 'thu', 'fri'], from: '09:00', to: '17:00' }],
          },
        } as PlanSpec,
        {
          // Monday 18:00 UTC: the canary is deployed (no traffic); stage 1 waits for Tuesday 09:00.
          startAfterMs: 8 * 3600_000,
          events: [...minutes(5), msg('pause'), ...hours(17), msg('resume')],
        },
      ),
    );
    expect(r.violations).toEqual([]);
    expect(r.outcome).toBe('promoted');
    expect(firstStep(r, 'prepareCanary')).toBe(0);
    const resumed = resumedAt(r);
    // Tuesday 09:00 is 15 h after the start: the window was open for an hour and more before the resume.
    expect(resumed).toBeGreaterThan(16 * 3600_000);
    expect(r.shifts[0]).toMatchObject({ atMs: resumed, weight: 10 });
    // (As before the patch: a window's wait never ended while paused, and the windows are asked again after it.)
  });

  it('paused at a gate that is then approved: the stage is entered at the resume, not at the approval', async () => {
    const gated = {
      ...PLAN,
      stages: [PLAN.stages[0], { ...PLAN.stages[1], gate: 'approval' }, PLAN.stages[2]],
    } as PlanSpec;
    const r = await runScenario(
      currentScenario(gated, {
        events: [...minutes(15), msg('pause'), ...minutes(1), msg('approve'), ...minutes(30), msg('resume')],
      }),
    );
    expect(r.violations).toEqual([]);
    expect(r.outcome).toBe('promoted');
    const resumed = resumedAt(r);
    expect(resumed).toBeGreaterThanOrEqual(45 * 60_000);
    expect(r.shifts.find((s) => s.weight === 50)!.atMs).toBe(resumed);
    expect(r.state.approvals.some((a) => a.kind === 'approved' && a.stage === 2 && a.by === 'carol')).toBe(
      true,
    );
    // (As before the patch: a gate's wait never ended while paused.)
  });

  it('paused while a freeze holds stage 2: the freeze lifts, nothing moves until the resume', async () => {
    const sc = (pauseHolds: boolean): Scenario =>
      currentScenario(PLAN, {
        pauseHolds,
        events: [
          ...minutes(2),
          { k: 'fleet', fleet: NS, freeze: FREEZE },
          ...minutes(13),
          msg('pause'),
          ...minutes(45),
          { k: 'fleet', fleet: NS },
          ...minutes(30),
          msg('resume'),
        ],
      });
    const r = await runScenario(sc(true));
    expect(r.violations).toEqual([]);
    expect(r.outcome).toBe('promoted');
    const resumed = resumedAt(r);
    expect(resumed).toBeGreaterThanOrEqual(90 * 60_000);
    expect(r.shifts.find((s) => s.weight === 50)!.atMs).toBe(resumed);
    // Stage 1 was analysed all the while (a breach would still have rolled it back).
    expect(r.state.analysesRun).toBeGreaterThan(85);

    // Before the patch, the lifted freeze let stage 2 in while the rollout was paused.
    const old = await runScenario(sc(false));
    expect(old.violations).toEqual([]);
    const to50 = old.shifts.find((s) => s.weight === 50)!.atMs;
    expect(to50).toBeGreaterThan(pausedAt(old));
    expect(to50).toBeLessThan(resumedAt(old));
  });

  it('paused while a beforeStage or beforePromotion hook runs: the stage, or the promotion, waits for the resume', async () => {
    const hook = (name: string) => ({ name, http: { url: `https://hooks.example.com/${name}` } });
    const hooked = {
      ...PLAN,
      hooks: { beforeStage: [hook('bs')], beforePromotion: [hook('bp')] },
    } as PlanSpec;
    for (const point of ['beforeStage', 'beforePromotion']) {
      const sc = (pauseHolds: boolean): Scenario =>
        currentScenario(hooked, {
          pauseHolds,
          // Paused while stage 2's beforeStage hook runs, or while the beforePromotion hook runs after a promote at
          // minute 3 (a promote ends stage 1's hold at once, as it always did).
          stepAnswer: (c, m) => {
            const i = c.args[0] as { point?: string; stage?: number };
            if (c.step === 'runHook' && i.point === point && (point !== 'beforeStage' || i.stage === 2))
              m.pause({ identity: 'carol' });
            return Promise.resolve(undefined);
          },
          events: [
            ...minutes(3),
            ...(point === 'beforePromotion' ? [msg('promote', 'alice')] : []),
            ...minutes(40),
            msg('resume'),
          ],
        });
      const r = await runScenario(sc(true));
      expect([point, r.violations, r.outcome]).toEqual([point, [], 'promoted']);
      const next = r.shifts.find((s) => s.weight === (point === 'beforeStage' ? 50 : 100))!;
      expect([point, next.atMs]).toEqual([point, resumedAt(r)]);
      expect(next.atMs).toBeGreaterThan(40 * 60_000);

      // Before the patch, the hook's end let the stage in, or promoted, while the rollout was paused.
      const old = await runScenario(sc(false));
      const oldNext = old.shifts.find((s) => s.weight === (point === 'beforeStage' ? 50 : 100))!;
      expect([point, oldNext.atMs < 40 * 60_000]).toEqual([point, true]);
      expect(old.phases.map((p) => p.phase)).toContain('paused');
    }
  });

  it('a breach while paused before stage 2 still rolls back', async () => {
    const r = await runScenario(
      currentScenario(PLAN, {
        events: [
          ...minutes(2),
          { k: 'fleet', fleet: NS, freeze: FREEZE },
          ...minutes(13),
          msg('pause'),
          ...minutes(5),
          { k: 'metric', value: 0.5 },
          ...minutes(10),
        ],
      }),
    );
    expect(r.violations).toEqual([]);
    expect(r.outcome).toBe('rolled_back');
    expect(r.state.ending?.kind).toBe('check');
    expect(r.shifts.map((s) => s.weight)).toEqual([10, 0]);
  });

  it('an abort while paused before the canary ends it rolled back (as an abort while queued does), nothing deployed', async () => {
    for (const queued of [true, false]) {
      const r = await runScenario(
        currentScenario(PLAN, {
          ...(queued ? QUEUED : {}),
          // Not queued: paused during its preflight.
          stepAnswer: (c, m) => {
            if (!queued && c.step === 'preflight') m.pause({ identity: 'carol' });
            return Promise.resolve(undefined);
          },
          events: queued
            ? [...minutes(5), msg('pause'), ...minutes(5), GRANT, ...minutes(5), msg('abort')]
            : [...minutes(5), msg('abort')],
        }),
      );
      expect([queued, r.violations]).toEqual([queued, []]);
      expect([queued, r.outcome]).toEqual([queued, 'rolled_back']);
      expect(r.state.ending).toEqual({ kind: 'abort', by: 'carol' });
      expect(r.shifts).toEqual([]);
      expect(r.commands.map((c) => c.step)).not.toContain('prepareCanary');
      expect(r.commands.map((c) => c.step)).not.toContain('prepareRouting');
      expect(r.fleetReleases.map((f) => f.fleet)).toEqual(queued ? [NS] : []);
    }
  });

  it('a promote accepted while queued, then a pause: the promotion waits for the resume, then goes straight to 100 %', async () => {
    const r = await runScenario(
      currentScenario(PLAN, {
        ...QUEUED,
        events: [
          ...minutes(5),
          msg('promote'),
          ...minutes(1),
          msg('pause'),
          ...minutes(4),
          GRANT,
          ...minutes(30),
          msg('resume'),
        ],
      }),
    );
    expect(r.violations).toEqual([]);
    expect(r.outcome).toBe('promoted');
    const resumed = resumedAt(r);
    expect(resumed).toBeGreaterThanOrEqual(40 * 60_000);
    expect(firstStep(r, 'prepareCanary')).toBe(resumed);
    expect(r.shifts[0]).toMatchObject({ atMs: resumed, weight: 100 });
  });
});
