// The release's decisions without a server (workflows/release-machine.ts): when a member may start, what a failure
// does under each onFailure, when the release promotes together, and the order it rolls members back in. The
// workflow (workflows/release.ts) only carries these out; test/replay holds recorded releases, and
// test/integration/kube-release.test.ts runs releases end to end.
import fc from 'fast-check';
import type { RolloutInput } from '../../workflows/api';
import { ReleaseMachine, memberState, type ReleaseMember } from '../../workflows/release-machine';
import type { ReleaseInput, ReleaseMemberInput } from '../../workflows/release-model';

const RUNS = Number(process.env.MACHINE_PROPERTY_RUNS ?? 3000);
const place = { firstRunId: 'run-1', temporalNamespace: 'default', taskQueue: 'canary-rollouts' };
const MIN = 60_000;

function memberInput(
  id: string,
  opts: { after?: string[]; wave?: number; afterStage?: Record<string, number>; taskQueue?: string } = {},
): ReleaseMemberInput {
  const input = {
    target: { app: id, namespace: 'shop' },
    version: 'v2',
    plan: { stages: [{ weight: 20, hold: '1h' }, { weight: 100 }] },
    requestedBy: 'ci',
  } as unknown as RolloutInput;
  return {
    id,
    after: opts.after ?? [],
    ...(opts.afterStage ? { afterStage: opts.afterStage } : {}),
    wave: opts.wave ?? 1,
    workflowId: `canary.shop.${id}`,
    ...(opts.taskQueue ? { taskQueue: opts.taskQueue, cluster: opts.taskQueue.split('.')[1] } : {}),
    input,
  };
}

function release(members: ReleaseMemberInput[], extra: Partial<ReleaseInput> = {}): ReleaseMachine {
  const waves = [...new Set(members.map((m) => m.wave))].sort().map((wave) => ({ wave, bakeMs: 0 }));
  return new ReleaseMachine(
    {
      release: 'r1',
      members,
      waves,
      promotion: 'together',
      onFailure: 'rollback-all',
      requestedBy: 'ci',
      ...extra,
    },
    place,
    () => true,
  );
}

const member = (r: ReleaseMachine, id: string): ReleaseMember => r.members.find((m) => m.id === id)!;

/** Starts a member as the workflow does: running, then started. */
function start(r: ReleaseMachine, id: string, now = 0): void {
  r.starting(member(r, id));
  r.startedChild(member(r, id), now);
}

function progress(
  r: ReleaseMachine,
  id: string,
  phase: string,
  stage: number,
  weight: number,
  atPromotionGate = false,
): void {
  r.memberProgress({ member: id, phase, stage, weight, atPromotionGate });
}

describe('a member starts when what it comes after allows', () => {
  test('after: the member it comes after must have passed its last stage (at its promotion gate)', () => {
    const r = release([memberInput('payments'), memberInput('checkout', { after: ['payments'] })]);
    expect(r.eligible(member(r, 'payments'), 0)).toBe(true);
    expect(r.eligible(member(r, 'checkout'), 0)).toBe(false);
    start(r, 'payments');
    progress(r, 'payments', 'progressing', 2, 100);
    expect(r.eligible(member(r, 'checkout'), 0)).toBe(false);
    progress(r, 'payments', 'waiting_approval', 2, 100, true);
    expect(member(r, 'payments').state).toBe('ready');
    expect(r.eligible(member(r, 'checkout'), 0)).toBe(true);
  });

  test('after a stage: entered counts, waiting at the gate before it does not', () => {
    const r = release([
      memberInput('payments'),
      memberInput('checkout', { after: ['payments'], afterStage: { payments: 2 } }),
    ]);
    start(r, 'payments');
    progress(r, 'payments', 'progressing', 1, 20);
    expect(r.eligible(member(r, 'checkout'), 0)).toBe(false);
    progress(r, 'payments', 'waiting_approval', 2, 20);
    expect(r.eligible(member(r, 'checkout'), 0)).toBe(false);
    progress(r, 'payments', 'progressing', 2, 100);
    expect(r.eligible(member(r, 'checkout'), 0)).toBe(true);
  });

  test('a wave starts once the wave before it passed and baked; the walk wakes at the bake end', () => {
    const r = release([memberInput('payments'), memberInput('search', { wave: 2 })], {
      waves: [
        { wave: 1, bakeMs: 0 },
        { wave: 2, bakeMs: 20 * MIN },
      ],
    });
    expect(r.next(0)).toEqual({ type: 'advance' });
    start(r, 'payments');
    progress(r, 'payments', 'waiting_approval', 2, 100, true);
    expect(r.next(5 * MIN)).toEqual({ type: 'advance' });
    expect(r.status().waves[0]?.readyAt).toBe(new Date(5 * MIN).toISOString());
    // A wave's bake holds the waves after it: wave 1 bakes for 0, so search may start at once (wave 2's own 20
    // minutes would hold a wave 3).
    expect(r.eligible(member(r, 'search'), 5 * MIN)).toBe(true);
  });

  test("a wave's bake holds the next wave until it ends", () => {
    const r = release([memberInput('payments'), memberInput('search', { wave: 2 })], {
      waves: [
        { wave: 1, bakeMs: 30 * MIN },
        { wave: 2, bakeMs: 0 },
      ],
    });
    start(r, 'payments');
    progress(r, 'payments', 'waiting_approval', 2, 100, true);
    r.next(10 * MIN);
    expect(r.eligible(member(r, 'search'), 39 * MIN)).toBe(false);
    expect(r.nextBakeEnd(39 * MIN)).toBe(40 * MIN);
    expect(r.eligible(member(r, 'search'), 40 * MIN)).toBe(true);
    expect(r.nextBakeEnd(40 * MIN)).toBeUndefined();
  });
});

describe('one verdict', () => {
  test('rollback-all: a member that rolls back ends the walk, naming it', () => {
    const r = release([memberInput('payments'), memberInput('checkout')]);
    start(r, 'payments');
    start(r, 'checkout');
    progress(r, 'checkout', 'rolled_back', 1, 0);
    r.memberEnded(member(r, 'checkout'), { outcome: 'rolled_back', finalWeight: 0, reason: 'p95 spike' });
    expect(r.next(0)).toEqual({ type: 'end' });
    expect([r.cause, r.reason]).toEqual(['checkout', 'member checkout rolled back: p95 spike']);
    expect(r.endsPromoted()).toBe(false);
  });

  test('an abort ends the walk with who asked and why; the first abort counts', () => {
    const r = release([memberInput('payments')]);
    r.abort({ identity: 'alice', reason: 'bad deploy' });
    r.abort({ identity: 'bob', reason: 'second' });
    expect(r.next(0)).toEqual({ type: 'end' });
    expect([r.cause, r.reason]).toEqual([undefined, 'aborted by alice: bad deploy']);
    expect(r.beginRollback()).toMatchObject({ type: 'log', message: 'release rolling back' });
    expect(r.phase).toBe('aborted');
    expect(member(r, 'payments').state).toBe('skipped');
  });

  test('rollback-member: the others pause once, a person goes on without it and the members after it', () => {
    const r = release(
      [
        memberInput('payments'),
        memberInput('checkout'),
        memberInput('search', { after: ['checkout'] }),
        memberInput('cart', { after: ['search'] }),
      ],
      { onFailure: 'rollback-member' },
    );
    start(r, 'payments');
    start(r, 'checkout');
    r.memberFailed(member(r, 'checkout'), 'rolled_back', 'p95 spike');
    const held = r.next(0);
    expect(held).toEqual({
      type: 'held',
      commands: [
        {
          type: 'log',
          level: 'warn',
          message: 'release held',
          attrs: { why: 'member checkout rolled back: p95 spike' },
        },
        {
          type: 'pause',
          member: 'payments',
          identity: 'release:r1',
          reason: 'release r1 holds: member checkout rolled back: p95 spike',
        },
      ],
    });
    expect(r.status()).toMatchObject({ phase: 'held' });
    expect(r.status().question).toContain('`canary release approve r1` goes on without it');
    // Asked again while held: no second pause.
    expect(r.next(0)).toEqual({ type: 'held', commands: [] });
    // A person's resume while held resumes nothing.
    expect(r.resume({ identity: 'bob' })).toEqual([]);
    r.continueWithout({ identity: 'alice' });
    const goOn = r.next(0);
    expect(goOn).toMatchObject({ type: 'goOn' });
    expect(goOn.type === 'goOn' && goOn.commands.slice(1)).toEqual([
      { type: 'resume', member: 'payments', identity: 'release:r1' },
    ]);
    expect([...r.dropped]).toEqual(['checkout', 'search', 'cart']);
    expect(member(r, 'cart').reason).toBe('skipped: it comes after search');
    expect(r.next(0)).toEqual({ type: 'advance' });
  });

  test('a continue with no hold is ignored', () => {
    const r = release([memberInput('payments')], { onFailure: 'rollback-member' });
    const before = r.changes;
    r.continueWithout({ identity: 'alice' });
    expect(r.changes).toBe(before);
    expect(r.next(0)).toEqual({ type: 'advance' });
  });
});

describe('promotion together', () => {
  test('only once every kept member waits at its gate, and only once', () => {
    const r = release([memberInput('payments'), memberInput('checkout')]);
    start(r, 'payments');
    start(r, 'checkout');
    progress(r, 'payments', 'waiting_approval', 2, 100, true);
    expect(r.promoteTogether()).toBeUndefined();
    progress(r, 'checkout', 'waiting_approval', 2, 100, true);
    expect(r.promoteTogether()?.map((m) => m.id)).toEqual(['payments', 'checkout']);
    expect(r.phase).toBe('promoting');
    expect(r.promoteTogether()).toBeUndefined();
  });

  test("not while a kept member's cluster has no worker; its running members alert once, and resolve", () => {
    const r = release([
      memberInput('payments', { taskQueue: 'canary-rollouts.eu' }),
      memberInput('checkout'),
    ]);
    start(r, 'payments');
    start(r, 'checkout');
    progress(r, 'payments', 'waiting_approval', 2, 100, true);
    progress(r, 'checkout', 'waiting_approval', 2, 100, true);
    const gone = r.clusterWorkers(
      { at: '2026-12-06T10:00:00.000Z', queues: [{ taskQueue: 'canary-rollouts.eu', serving: false }] },
      0,
    );
    expect(gone.map((c) => c.type)).toEqual(['log', 'alert']);
    const alert = gone[1]?.type === 'alert' ? gone[1].event : undefined;
    expect(alert).toMatchObject({ kind: 'stuck', workflowId: 'canary.shop.payments' });
    expect(alert?.message).toContain('no worker serves cluster eu');
    expect(r.promoteTogether()).toBeUndefined();
    expect(
      r.clusterWorkers(
        { at: '2026-12-06T10:01:00.000Z', queues: [{ taskQueue: 'canary-rollouts.eu', serving: false }] },
        MIN,
      ),
    ).toEqual([]);
    const back = r.clusterWorkers(
      { at: '2026-12-06T10:02:00.000Z', queues: [{ taskQueue: 'canary-rollouts.eu', serving: true }] },
      2 * MIN,
    );
    expect(back).toHaveLength(1);
    expect(back[0]?.type === 'alert' && back[0].event).toMatchObject({
      severity: 'info',
      resolves: ['stuck'],
    });
    expect(r.promoteTogether()?.map((m) => m.id)).toEqual(['payments', 'checkout']);
  });

  test('promotion each: a member has passed once it reached its last stage', () => {
    const m = {
      id: 'a',
      wave: 1,
      after: [],
      workflowId: 'w',
      state: 'running' as const,
      stages: 2,
      stage: 2,
    };
    expect(memberState(m, 'progressing', false, 'each')).toBe('ready');
    expect(memberState(m, 'progressing', false, 'together')).toBe('running');
    expect(memberState(m, 'rolling_back', true, 'each')).toBe('rolling_back');
  });
});

test('the rollback goes in reverse dependency order: members nothing remaining comes after go first', () => {
  const r = release([
    memberInput('db'),
    memberInput('payments', { after: ['db'] }),
    memberInput('checkout', { after: ['payments'] }),
    memberInput('search'),
  ]);
  for (const id of ['db', 'payments', 'checkout', 'search']) start(r, id);
  r.abort({ identity: 'alice', reason: 'stop' });
  r.next(0);
  r.beginRollback();
  let left = r.running();
  const levels: string[][] = [];
  while (left.length > 0) {
    const level = r.rollbackLevel(left);
    levels.push(level.map((m) => m.id));
    left = left.filter((m) => !level.includes(m));
  }
  expect(levels).toEqual([['checkout', 'search'], ['payments'], ['db']]);
  expect(r.abortReason()).toBe('release r1: aborted by alice: stop');
});

describe('properties over random releases and member histories', () => {
  /** A release of up to 6 members, each after some earlier ones, in up to 3 waves, with random events. */
  const scenario = fc.record({
    members: fc.array(
      fc.record({ after: fc.array(fc.nat(5), { maxLength: 2 }), wave: fc.integer({ min: 1, max: 3 }) }),
      { minLength: 1, maxLength: 6 },
    ),
    onFailure: fc.constantFrom('rollback-all' as const, 'rollback-member' as const),
    promotion: fc.constantFrom('together' as const, 'each' as const),
    events: fc.array(
      fc.record({
        member: fc.nat(5),
        what: fc.constantFrom('stage1', 'stage2', 'gate', 'promoted', 'rolled_back', 'abort', 'continue'),
      }),
      { maxLength: 30 },
    ),
  });

  test('a member starts only when eligible; promotion only with every kept member ready; rollback covers each running member once, dependents first', () => {
    fc.assert(
      fc.property(scenario, (sc) => {
        const ids = sc.members.map((_, i) => `m${i}`);
        const inputs = sc.members.map((m, i) =>
          memberInput(ids[i]!, {
            // Only earlier members: no cycles (the client refuses them).
            after: [...new Set(m.after.filter((a) => a < i).map((a) => ids[a]!))],
            wave: m.wave,
          }),
        );
        const r = release(inputs, { onFailure: sc.onFailure, promotion: sc.promotion });
        let now = 0;
        for (const e of sc.events) {
          now += MIN;
          const step = r.next(now);
          if (step.type === 'end') break;
          if (step.type === 'advance') {
            for (const m of r.kept()) {
              if (!r.eligible(m, now)) continue;
              // What it comes after has passed (or reached its stage): never a pending or failed dependency.
              for (const d of m.after) expect(['ready', 'promoted']).toContain(member(r, d).state);
              start(r, m.id, now);
            }
            const together = r.promoteTogether();
            if (together) {
              expect(sc.promotion).toBe('together');
              for (const m of r.kept()) expect(m.state).toBe('ready');
            }
          }
          const target = r.members[e.member % r.members.length]!;
          const running = r.running().includes(target);
          if (e.what === 'abort') r.abort({ identity: 'alice', reason: 'stop' });
          else if (e.what === 'continue') r.continueWithout({ identity: 'alice' });
          else if (!running) continue;
          else if (e.what === 'stage1') progress(r, target.id, 'progressing', 1, 20);
          else if (e.what === 'stage2') progress(r, target.id, 'progressing', 2, 100);
          else if (e.what === 'gate') progress(r, target.id, 'waiting_approval', 2, 100, true);
          else if (e.what === 'promoted') r.memberEnded(target, { outcome: 'promoted', finalWeight: 0 });
          else r.memberEnded(target, { outcome: 'rolled_back', finalWeight: 0, reason: 'breach' });
        }
        if (r.next(now + MIN).type !== 'end' && !r.abortRequest) return;
        if (r.endsPromoted()) {
          for (const m of r.kept()) expect(m.state).toBe('promoted');
          return;
        }
        r.beginRollback();
        expect(r.members.some((m) => m.state === 'pending')).toBe(false);
        const toGoBack = r.running();
        let left = toGoBack;
        const levelOf = new Map<string, number>();
        for (let level = 0; left.length > 0; level++) {
          const members = r.rollbackLevel(left);
          expect(members.length).toBeGreaterThan(0);
          for (const m of members) {
            expect(levelOf.has(m.id)).toBe(false);
            levelOf.set(m.id, level);
          }
          left = left.filter((m) => !members.includes(m));
        }
        // Every running member goes back once, marked as asked, and after every member that comes after it.
        expect([...levelOf.keys()].sort()).toEqual(toGoBack.map((m) => m.id).sort());
        for (const m of toGoBack) {
          expect(m.aborted).toBe(true);
          for (const d of m.after) {
            if (levelOf.has(d)) expect(levelOf.get(m.id)!).toBeLessThan(levelOf.get(d)!);
          }
        }
      }),
      { numRuns: RUNS },
    );
  });
});
