// A namespace's maxConcurrent: the fleet workflow's slots (settleSlots: queue order, grants, releases, a limit set,
// raised or lifted) and the rollout machine's side (simulated clock): queued before its canary until granted, its
// slot given back at every ending, an abort while queued ends it without touching traffic, and a namespace without a
// limit costs nothing new. The fleet workflow itself runs on a real server in cli.test.ts.
import { renderDetails } from '../../workflows/details';
import {
  describeQueued,
  fleetWorkflowId,
  settleSlots,
  slotPlace,
  slotsIdle,
  type FleetSlots,
} from '../../workflows/fleet-model';
import type { PlanSpec } from '../../workflows/plan';
import { maxConcurrent } from '../../client/fleet';
import { renderStatus } from '../../client/render';
import { RolloutInputError } from '../../client/errors';
import { routes, validateAlertRoutes } from '../../workflows/alerts/routing';
import {
  currentMachine,
  currentScenario,
  minutes,
  planOf,
  runScenario,
  type Scenario,
  type SimEvent,
} from './machine-sim';

const PLAN = {
  analysis: { interval: '1m', checks: [{ name: 'error-rate', metric: 'error-rate', max: 0.05 }] },
  stages: [
    { weight: 10, hold: '10m' },
    { weight: 100, hold: '5m' },
  ],
  promotion: { cleanupDelay: '0s' },
} as unknown as PlanSpec;

const NS = fleetWorkflowId('ns');
const LIMIT = { max: 1, by: 'ops', since: '2026-12-07T10:00:00.000Z' };
const base = (over: Partial<Scenario>): Scenario => currentScenario(PLAN, over);

describe("a namespace's slots (settleSlots)", () => {
  const limited = (max: number, holders: string[] = [], queue: string[] = []): FleetSlots => ({
    limit: { ...LIMIT, max },
    holders,
    queue,
  });

  it('grants up to the limit, queues the rest in the order they asked', () => {
    const { slots, moved } = settleSlots(limited(2), ['a', 'b', 'c', 'd'], []);
    expect(slots.holders).toEqual(['a', 'b']);
    expect(slots.queue).toEqual(['c', 'd']);
    expect(moved).toEqual(['a', 'b']);
    expect(slotPlace(slots, 'a')).toEqual({ granted: true, max: 2 });
    expect(slotPlace(slots, 'd')).toEqual({ granted: false, position: 2, max: 2, holders: ['a', 'b'] });
    expect(slotPlace(slots, 'x')).toBeUndefined();
  });

  it('a second ask keeps the place; a release gives the slot to the head of the queue and moves the rest up', () => {
    const once = settleSlots(limited(1), ['a', 'b', 'c'], []).slots;
    const again = settleSlots(once, ['c', 'a'], []);
    expect(again.slots).toEqual(once);
    expect(again.moved).toEqual([]);
    const after = settleSlots(once, [], ['a']);
    expect(after.slots.holders).toEqual(['b']);
    expect(after.slots.queue).toEqual(['c']);
    expect(after.moved).toEqual(['b', 'c']);
  });

  it('a queued rollout that ends (aborted) leaves the queue; those behind it move up', () => {
    const s = settleSlots(limited(1), ['a', 'b', 'c'], []).slots;
    const { slots, moved } = settleSlots(s, [], ['b']);
    expect(slots).toEqual(limited(1, ['a'], ['c']));
    expect(moved).toEqual(['c']);
  });

  it('a raised limit grants more in order; a lifted one grants every queued rollout and then nothing is tracked', () => {
    const s = settleSlots(limited(1), ['a', 'b', 'c'], []).slots;
    expect(settleSlots({ ...s, limit: { ...LIMIT, max: 2 } }, [], []).moved).toEqual(['b', 'c']);
    const lifted = settleSlots({ holders: s.holders, queue: s.queue }, ['d'], []);
    expect(lifted.slots).toEqual({ holders: ['a', 'b', 'c'], queue: [] });
    expect(lifted.moved).toEqual(['b', 'c']);
    expect(slotsIdle(lifted.slots)).toBe(false);
    expect(slotsIdle(settleSlots(lifted.slots, [], ['a', 'b', 'c']).slots)).toBe(true);
  });

  it('a queued rollout is told who holds the slots: the first five by name, and how many in all', () => {
    const ids = ['a', 'b', 'c', 'd', 'e', 'f', 'g'];
    const { slots } = settleSlots(limited(7), [...ids, 'h'], []);
    expect(slotPlace(slots, 'h')).toEqual({
      granted: false,
      position: 1,
      max: 7,
      holders: ['a', 'b', 'c', 'd', 'e'],
      holderCount: 7,
    });
  });

  it('without a limit nobody queues or holds', () => {
    expect(settleSlots({ holders: [], queue: [] }, ['a'], [])).toEqual({
      slots: { holders: [], queue: [] },
      moved: [],
    });
  });
});

describe('maxConcurrent on the machine', () => {
  it('a namespace without a limit: no slot, nothing given back, nothing new', async () => {
    const r = await runScenario(base({ fleets: { [NS]: undefined }, events: [{ k: 'metric', value: 0 }] }));
    expect(r.violations).toEqual([]);
    expect(r.outcome).toBe('promoted');
    expect(r.phases.map((p) => p.phase)).not.toContain('queued');
    expect(r.fleetReleases).toEqual([]);
  });

  it('queued before its canary until granted, then walks its plan and gives its slot back when promoted', async () => {
    const r = await runScenario(
      base({
        fleets: { [NS]: undefined },
        slots: { [NS]: { granted: false, position: 2, max: 1 } },
        events: [
          ...minutes(10),
          { k: 'fleet', fleet: NS, slot: { granted: false, position: 1, max: 1 } },
          ...minutes(10),
          { k: 'fleet', fleet: NS, slot: { granted: true, max: 1 } },
        ],
      }),
    );
    expect(r.violations).toEqual([]);
    expect(r.outcome).toBe('promoted');
    expect(r.phases.map((p) => p.phase).slice(0, 3)).toEqual(['progressing', 'queued', 'progressing']);
    expect(r.phases[2].atMs).toBe(20 * 60_000);
    expect(r.shifts[0].atMs).toBeGreaterThanOrEqual(20 * 60_000);
    expect(r.fleetReleases).toEqual([{ atMs: expect.any(Number), fleet: NS }]);
    expect(r.state.slot).toBeUndefined();
  });

  it('granted at once: no wait, and the slot is given back when a breach rolls it back', async () => {
    const r = await runScenario(
      base({
        fleets: { [NS]: undefined },
        slots: { [NS]: { granted: true, max: 3 } },
        events: [{ k: 'metric', value: 0.5 }, ...minutes(20)],
      }),
    );
    expect(r.outcome).toBe('rolled_back');
    expect(r.phases.map((p) => p.phase)).not.toContain('queued');
    expect(r.fleetReleases.map((f) => f.fleet)).toEqual([NS]);
  });

  it('an abort while queued ends it without touching traffic and takes it out of the queue (queued, then rolled back: never dequeued)', async () => {
    const r = await runScenario(
      base({
        fleets: { [NS]: undefined },
        slots: { [NS]: { granted: false, position: 1, max: 1 } },
        events: [...minutes(5), { k: 'msg', m: 'abort', who: 'carol' }],
      }),
    );
    // Nothing named the slots' holders: the queued alert says no more than it knows.
    expect(r.alerts.map((a) => a.kind)).toEqual(['queued', 'rollback_started', 'rolled_back']);
    expect(r.alerts[0].message).not.toContain('held by');
    expect(r.violations).toEqual([]);
    expect(r.outcome).toBe('rolled_back');
    expect(r.shifts).toEqual([]);
    expect(r.state.ending?.kind).toBe('abort');
    expect(r.fleetReleases.map((f) => f.fleet)).toEqual([NS]);
  });

  it('promote, pause, resume and approve while queued deploy nothing before the slot is granted', async () => {
    for (const m of ['promote', 'pause', 'resume', 'approve'] as const) {
      const r = await runScenario(
        base({
          fleets: { [NS]: undefined },
          slots: { [NS]: { granted: false, position: 1, max: 1 } },
          events: [
            ...minutes(5),
            { k: 'msg', m, who: 'carol' },
            ...minutes(5),
            { k: 'fleet', fleet: NS, slot: { granted: true, max: 1 } },
            ...minutes(30),
            ...(m === 'pause'
              ? [{ k: 'msg' as const, m: 'resume' as const, who: 'carol' }, ...minutes(30)]
              : []),
          ],
        }),
      );
      expect([m, r.violations]).toEqual([m, []]);
      expect([m, r.outcome]).toEqual([m, 'promoted']);
      // Nothing moves before the slot is granted at 10 minutes, whatever was asked meanwhile; a paused rollout moves
      // nothing before its resume at 40 minutes either (pause-holds-advance; test/unit/pause-holds.test.ts).
      expect([m, Math.min(...r.shifts.map((x) => x.atMs))]).toEqual([m, (m === 'pause' ? 40 : 10) * 60_000]);
      // A promote asked while queued is kept: granted, the rollout goes straight to 100 %.
      if (m === 'promote') expect(r.shifts[0].weight).toBe(100);
      else expect(r.shifts[0].weight).toBe(10);
      expect(r.fleetReleases.map((f) => f.fleet)).toEqual([NS]);
    }
  });

  it('status, the Web UI details and the CLI show the queue position', async () => {
    const plan = planOf(PLAN)!;
    const m = currentMachine(PLAN);
    await m.fleetNotice({ fleet: NS, slot: { granted: false, position: 2, max: 1 } });
    const st = m.status();
    expect(st.phase).toBe('queued');
    expect(st.queued).toEqual({ namespace: 'ns', position: 2, max: 1 });
    const line = describeQueued({ granted: false, position: 2, max: 1 }, 'ns');
    expect(line).toBe('queued: position 2 for a slot in namespace ns (maxConcurrent 1)');
    expect(renderDetails(st, plan, 'canary')).toContain(line);
    expect(renderStatus(st, new Date(Date.UTC(2026, 11, 7, 11)))).toContain(line);
    await m.fleetNotice({ fleet: NS, slot: { granted: true, max: 1 } });
    expect(m.status().phase).toBe('progressing');
    expect(m.status().queued).toBeUndefined();
  });
});

describe('queued and dequeued alerts (fleet-queue-alerts)', () => {
  const queuedAt = (position: number): SimEvent => ({
    k: 'fleet',
    fleet: NS,
    slot: { granted: false, position, max: 1, holders: ['canary.ns.first'] },
  });

  it('a rollout that starts queued says where it stands and how to leave; granted, it says so', async () => {
    const r = await runScenario(
      base({
        fleets: { [NS]: undefined },
        slots: { [NS]: { granted: false, position: 2, max: 1, holders: ['canary.ns.first'] } },
        events: [
          ...minutes(10),
          queuedAt(1),
          ...minutes(10),
          { k: 'fleet', fleet: NS, slot: { granted: true, max: 1 } },
        ],
      }),
    );
    expect(r.violations).toEqual([]);
    expect(r.outcome).toBe('promoted');
    // Once each: a move up the queue raises nothing.
    expect(r.alerts.map((a) => a.kind).slice(0, 3)).toEqual(['queued', 'dequeued', 'rollout_started']);
    const [queued, dequeued] = r.events;
    expect(queued.message).toBe(
      'ns/app v2 queued: position 2 for a slot in namespace ns (maxConcurrent 1); the slots are held by ' +
        'canary.ns.first. It deploys nothing until its turn comes; to leave the queue: ' +
        'canary abort canary-ns-app --reason "<why>"',
    );
    expect([queued.severity, queued.condition, queued.resolves]).toEqual(['info', 'queue', undefined]);
    expect(queued.commands?.abort).toBe('canary abort canary-ns-app --reason "<why>"');
    expect(dequeued.message).toBe(
      'ns/app v2: its slot in namespace ns is granted (maxConcurrent 1); it leaves the queue and goes on to its canary',
    );
    expect([dequeued.severity, dequeued.condition, dequeued.resolves]).toEqual(['info', 'queue', ['queue']]);
    // By default Slack, the webhook and the log hear both; Alertmanager only the resolution, PagerDuty likewise.
    expect(routes(undefined, 'slack', queued)).toBe(true);
    expect(routes(undefined, 'alertmanager', queued)).toBe(false);
    expect(routes(undefined, 'alertmanager', dequeued)).toBe(true);
    expect(validateAlertRoutes([{ sinks: ['slack'], kinds: ['queued', 'dequeued'] }])).toEqual([]);
  });

  it('a limit lifted lets a queued rollout go: its dequeued alert says so', async () => {
    const r = await runScenario(
      base({
        fleets: { [NS]: undefined },
        slots: { [NS]: { granted: false, position: 1, max: 1 } },
        events: [...minutes(3), { k: 'fleet', fleet: NS, slot: { granted: true } }],
      }),
    );
    expect(r.outcome).toBe('promoted');
    const dequeued = r.alerts.find((a) => a.kind === 'dequeued')!;
    expect(dequeued.message).toBe(
      'ns/app v2: the limit of namespace ns was lifted; it leaves the queue and goes on to its canary',
    );
  });

  it('granted at once, or no limit at all: no queue alerts', async () => {
    for (const slots of [{ [NS]: { granted: true, max: 3 } }, undefined]) {
      const r = await runScenario(
        base({
          fleets: { [NS]: undefined },
          ...(slots ? { slots } : {}),
          events: [{ k: 'metric', value: 0 }],
        }),
      );
      expect(r.outcome).toBe('promoted');
      expect(r.alerts.map((a) => a.kind)).not.toContain('queued');
      expect(r.alerts.map((a) => a.kind)).not.toContain('dequeued');
    }
  });

  it('rollouts started before fleet-queue-alerts queue and leave the queue as before, silently', async () => {
    const r = await runScenario(
      base({
        queueAlerts: false,
        fleets: { [NS]: undefined },
        slots: { [NS]: { granted: false, position: 1, max: 1 } },
        events: [...minutes(3), { k: 'fleet', fleet: NS, slot: { granted: true, max: 1 } }],
      }),
    );
    expect(r.outcome).toBe('promoted');
    expect(r.phases.map((p) => p.phase)).toContain('queued');
    expect(r.alerts.map((a) => a.kind).filter((k) => k === 'queued' || k === 'dequeued')).toEqual([]);
  });
});

describe('canary fleet limit input', () => {
  it('takes a count of 1 or more; 0 or none lifts the limit; anything else is refused', () => {
    expect(maxConcurrent('3')).toBe(3);
    expect(maxConcurrent('0')).toBeUndefined();
    expect(maxConcurrent('none')).toBeUndefined();
    expect(() => maxConcurrent('-1')).toThrow(RolloutInputError);
    expect(() => maxConcurrent('1.5')).toThrow(/whole number/);
    expect(() => maxConcurrent('many')).toThrow(/--max-concurrent/);
  });
});
