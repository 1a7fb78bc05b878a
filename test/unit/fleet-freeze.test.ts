// Fleet freezes on the rollout machine (simulated clock): a freeze holds a rollout as a closed deployment window does:
// nothing new goes out (no canary, no stage, no promotion), analysis goes on and a breach still rolls back, an abort
// still ends it; a lifted freeze lets it go on. The fleet workflow itself is tested on a real server (cli.test.ts).
import { renderDetails } from '../../workflows/details';
import { describeFreeze, fleetIdsFor, fleetWorkflowId, type FleetFreeze } from '../../workflows/fleet-model';
import { fleetScope, freezeUntil } from '../../client/fleet';
import { renderStatus } from '../../client/render';
import { RolloutInputError } from '../../client/errors';
import {
  THREE_STAGES,
  currentMachine,
  currentScenario,
  minutes,
  planOf,
  runScenario,
  type Scenario,
} from './machine-sim';

const PLAN = THREE_STAGES;

const ORG = fleetWorkflowId('*');
const NS = fleetWorkflowId('ns');
const FREEZE: FleetFreeze = {
  scope: '*',
  by: 'alice',
  reason: 'incident 42',
  since: '2026-12-07T10:00:00.000Z',
};
const base = (over: Partial<Scenario>): Scenario => currentScenario(PLAN, over);

describe('fleet freeze on the machine', () => {
  it('asks its namespace and the org-wide fleet workflow; with none running it goes on as before', async () => {
    expect(fleetIdsFor('ns')).toEqual(['canary-fleet/ns', 'canary-fleet/*']);
    const r = await runScenario(base({ events: [{ k: 'metric', value: 0 }] }));
    expect(r.violations).toEqual([]);
    expect(r.outcome).toBe('promoted');
    expect(r.alerts.map((a) => a.kind)).not.toContain('frozen');
  });

  it('a rollout started while frozen deploys nothing until the freeze is lifted, then walks its plan', async () => {
    const r = await runScenario(
      base({
        fleets: { [ORG]: FREEZE },
        events: [...minutes(30), { k: 'fleet', fleet: ORG }],
      }),
    );
    expect(r.violations).toEqual([]);
    expect(r.outcome).toBe('promoted');
    // The first shift comes only after the 30 minutes of freeze.
    expect(r.shifts[0].atMs).toBeGreaterThanOrEqual(30 * 60_000);
    const kinds = r.alerts.map((a) => a.kind);
    expect(kinds.indexOf('frozen')).toBeLessThan(kinds.indexOf('unfrozen'));
    expect(kinds.indexOf('unfrozen')).toBeLessThan(kinds.indexOf('rollout_started'));
    expect(r.alerts.find((a) => a.kind === 'frozen')!.message).toContain('frozen by alice: incident 42');
  });

  it('a freeze told mid-stage holds the rollout at its stage: rounds go on, no next stage', async () => {
    const r = await runScenario(
      base({
        events: [
          { k: 'metric', value: 0 },
          ...minutes(2),
          { k: 'fleet', fleet: NS, freeze: { ...FREEZE, scope: 'ns' } },
          ...minutes(60),
          { k: 'fleet', fleet: NS },
        ],
      }),
    );
    expect(r.violations).toEqual([]);
    expect(r.outcome).toBe('promoted');
    const to50 = r.shifts.find((s) => s.weight === 50)!;
    expect(to50.atMs).toBeGreaterThanOrEqual(62 * 60_000);
    // Analysis went on while frozen: rounds every minute of the freeze.
    expect(r.state.analysesRun).toBeGreaterThan(60);
  });

  it('a breach while frozen still rolls back', async () => {
    const r = await runScenario(
      base({
        events: [
          { k: 'metric', value: 0 },
          ...minutes(2),
          { k: 'fleet', fleet: ORG, freeze: FREEZE },
          ...minutes(20),
          { k: 'metric', value: 0.5 },
          ...minutes(10),
        ],
      }),
    );
    expect(r.violations).toEqual([]);
    expect(r.outcome).toBe('rolled_back');
    expect(r.shifts.map((s) => s.weight)).toEqual([10, 0]);
  });

  it('an abort of a rollout held before its canary ends it without touching traffic', async () => {
    const r = await runScenario(
      base({
        fleets: { [ORG]: FREEZE },
        events: [...minutes(5), { k: 'msg', m: 'abort', who: 'bob' }],
      }),
    );
    expect(r.violations).toEqual([]);
    expect(r.outcome).toBe('rolled_back');
    expect(r.shifts.filter((s) => s.weight > 0)).toEqual([]);
  });

  it('a promote request while frozen waits for the freeze too', async () => {
    const r = await runScenario(
      base({
        events: [
          { k: 'metric', value: 0 },
          ...minutes(2),
          { k: 'fleet', fleet: ORG, freeze: FREEZE },
          { k: 'msg', m: 'promote', who: 'carol' },
          ...minutes(30),
          { k: 'fleet', fleet: ORG },
        ],
      }),
    );
    expect(r.violations).toEqual([]);
    expect(r.outcome).toBe('promoted');
    expect(r.shifts.find((s) => s.why.startsWith('promotion'))!.atMs).toBeGreaterThanOrEqual(32 * 60_000);
  });

  it('a promote sent while a freeze holds a rollout before its canary deploys nothing until the freeze is lifted', async () => {
    const events = [
      ...minutes(5),
      { k: 'msg', m: 'promote', who: 'carol' } as const,
      ...minutes(30),
      { k: 'fleet', fleet: ORG } as const,
    ];
    const r = await runScenario(base({ fleets: { [ORG]: FREEZE }, events }));
    expect(r.violations).toEqual([]);
    expect(r.outcome).toBe('promoted');
    // The canary went out only once the freeze was lifted, and the promote then took it straight to 100 %.
    expect(r.commands.find((st) => st.step === 'prepareCanary')!.atMs).toBeGreaterThanOrEqual(35 * 60_000);
    // No stage shift at all: the first weight set is the promotion's 100 %.
    expect(r.shifts[0].weight).toBe(100);
    // Before pause-holds-advance, the promote skipped the freeze and the canary was deployed while frozen.
    const old = await runScenario(base({ fleets: { [ORG]: FREEZE }, events, pauseHolds: false }));
    expect(old.commands.find((st) => st.step === 'prepareCanary')!.atMs).toBeLessThan(35 * 60_000);
  });

  it('a rollout from before fleet-controls asks nobody, but a freeze it is told of holds it too', async () => {
    const r = await runScenario(
      base({
        fleet: false,
        events: [
          { k: 'metric', value: 0 },
          ...minutes(2),
          { k: 'fleet', fleet: ORG, freeze: FREEZE },
          ...minutes(30),
          { k: 'fleet', fleet: ORG },
        ],
      }),
    );
    expect(r.violations).toEqual([]);
    expect(r.outcome).toBe('promoted');
    expect(r.shifts.find((s) => s.weight === 50)!.atMs).toBeGreaterThanOrEqual(32 * 60_000);
  });

  it('status, the Web UI details and the CLI name the freeze', async () => {
    const plan = planOf(PLAN)!;
    const m = currentMachine(PLAN);
    const until = { ...FREEZE, until: '2026-12-07T18:00:00.000Z' };
    await m.fleetNotice({ fleet: ORG, freeze: until });
    const st = m.status();
    expect(st.freeze).toEqual(until);
    const line = `Not advancing: frozen by alice: incident 42 until 2026-12-07T18:00:00.000Z (every namespace)`;
    expect(describeFreeze(until)).toBe(line.slice('Not advancing: '.length));
    expect(renderDetails(st, plan, 'canary')).toContain(`**Not advancing:** ${line.slice(15)}`);
    expect(renderStatus(st, new Date(Date.UTC(2026, 11, 7, 11)))).toContain(line);
    await m.fleetNotice({ fleet: ORG });
    expect(m.status().freeze).toBeUndefined();
  });
});

describe('canary freeze input', () => {
  const now = new Date('2026-12-07T10:00:00Z');
  it('takes an instant or a duration from now, in the future only', () => {
    expect(freezeUntil('2026-12-07T18:00:00Z', now)).toBe('2026-12-07T18:00:00.000Z');
    expect(freezeUntil('2h', now)).toBe('2026-12-07T12:00:00.000Z');
    expect(() => freezeUntil('2026-12-07T09:00:00Z', now)).toThrow(/is in the past/);
    expect(() => freezeUntil('tomorrow', now)).toThrow(RolloutInputError);
  });
  it('a namespace is a DNS label; none is every namespace', () => {
    expect(fleetScope(undefined)).toBe('*');
    expect(fleetScope('shop')).toBe('shop');
    expect(() => fleetScope('Shop_1')).toThrow(/--namespace/);
  });
});
