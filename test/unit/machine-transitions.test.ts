// The rollout's messages as pure transitions (workflows/machine/transitions.ts): a typed event and a hand-built state
// in, the commands out, with no port and no server. Examples read like the playbook; fast-check then applies random
// sequences of messages with transition() alone and checks what a person relies on; and the machine is shown to
// carry out exactly the commands a transition returns, in order.
import fc from 'fast-check';
import type { PlanSpec } from '../../workflows/plan';
import { iso, MAX_APPROVALS_KEPT } from '../../workflows/machine/context';
import { RolloutMachine } from '../../workflows/machine/machine';
import type { Scope } from '../../workflows/machine/port';
import { SimPort } from '../../workflows/machine/sim';
import { initialState, type RolloutState } from '../../workflows/machine/state';
import {
  transition,
  type AbortOutcome,
  type MachineCommand,
  type RolloutEvent,
  type Transition,
} from '../../workflows/machine/transitions';
import { RolloutView } from '../../workflows/machine/views';
import type { FleetFreeze, SlotPlace } from '../../workflows/fleet-model';
import type { PauseAck } from '../../workflows/api';
import type { ApprovalRecord, Plan } from '../../workflows/types';
import { planOf, simContext, RUNS, SEED, MINUTE } from './machine-sim';

/** Monday 2026-12-07 10:00 UTC: inside the weekday windows. */
const MONDAY_10 = Date.UTC(2026, 11, 7, 10, 0, 0);

const SPEC: PlanSpec = {
  analysis: { interval: '1m', checks: [{ name: 'error-rate', metric: 'error-rate', max: 0.05 }] },
  stages: [{ weight: 10, hold: '10m' }, { weight: 50, hold: '10m', gate: 'approval' }, { weight: 100 }],
  promotion: { cleanupDelay: '10m', gate: 'approval' },
} as unknown as PlanSpec;

/** The same plan with a two-person policy at stage 2's gate, and weekday 09:00–17:00 UTC windows. */
const POLICY_SPEC: PlanSpec = {
  ...SPEC,
  stages: [
    { weight: 10, hold: '10m' },
    { weight: 50, hold: '10m', gate: { type: 'approval', approvals: { required: 2 } } },
    { weight: 100 },
  ],
  windows: {
    timeZone: 'UTC',
    allow: [{ days: ['mon', 'tue', 'wed', 'thu', 'fri'], from: '09:00', to: '17:00' }],
  },
} as unknown as PlanSpec;

function plan(spec: PlanSpec): Plan {
  const p = planOf(spec);
  if (!p) throw new Error('invalid plan');
  return p;
}
const PLANS = { plain: plan(SPEC), policy: plan(POLICY_SPEC) };

const context = simContext;

/** Where a rollout can stand when a message comes, as the walk leaves its state there. */
const POSITIONS = {
  /** Stage 1 entered, its hold running. */
  holding: { stageIndex: 0, stageEntered: true, weight: 10, canaryReady: true, waitStartedAt: MONDAY_10 },
  /** Stage 1 served; stage 2's approval gate waits. */
  atGate: { stageIndex: 1, stageEntered: false, weight: 10, canaryReady: true, waitStartedAt: MONDAY_10 },
  /** The final stage's hold is served; the promotion gate waits. */
  atPromotionGate: {
    stageIndex: 2,
    stageEntered: true,
    weight: 100,
    canaryReady: true,
    promotionGate: 'waiting',
  },
  /** A round's evidence has been missing past its limit: a person is asked. */
  evidenceQuestion: {
    stageIndex: 0,
    stageEntered: true,
    weight: 10,
    canaryReady: true,
    waitStartedAt: MONDAY_10,
    evidenceQuestion: { checks: ['error-rate'], since: MONDAY_10, reasons: ['no data'] },
  },
  /** A hook failed with onFailure: approval. */
  hookQuestion: {
    stageIndex: 0,
    stageEntered: true,
    weight: 10,
    canaryReady: true,
    waitStartedAt: MONDAY_10,
    hookQuestion: { point: 'pre-stage', stage: 1, hook: 'smoke', reason: 'exit code 1', since: MONDAY_10 },
  },
  /** Stable is taking the new version. */
  finalizing: { stageIndex: 2, stageEntered: true, weight: 100, canaryReady: true, finalizing: true },
  /** Promoted; the previous version still runs for the soak. */
  soaking: {
    phase: 'promoted',
    stageIndex: 2,
    stageEntered: true,
    weight: 100,
    canaryReady: true,
    soak: { since: MONDAY_10, until: MONDAY_10 + 10 * MINUTE },
  },
  /** A rollback step keeps failing. */
  rollingBack: {
    phase: 'rolling_back',
    stageIndex: 1,
    stageEntered: true,
    weight: 50,
    abortRequest: { by: 'alice', reason: 'errors' },
    retrying: { step: 'setCanaryWeight', attempts: 3, error: 'router unreachable', since: MONDAY_10 },
  },
  rolledBack: { phase: 'rolled_back', stageIndex: 1, stageEntered: true, weight: 0 },
  promoted: { phase: 'promoted', stageIndex: 2, stageEntered: true, weight: 100 },
  failed: { phase: 'failed', stageIndex: 0, weight: 0 },
  notStarted: { phase: 'not_started', stageIndex: 0, weight: 0 },
  /** Waiting for its namespace's slot before its canary. */
  queued: {
    slot: { granted: false, position: 2, max: 1, fleet: 'canary-fleet/ns' },
    slotAsked: 'canary-fleet/ns',
  },
} satisfies Record<string, Partial<RolloutState>>;
type Position = keyof typeof POSITIONS;

/** A rollout as this build starts one (never-stuck, machine-v2, fleet controls and queue alerts), at `at`. */
function stateAt(at: Position): RolloutState {
  return {
    ...initialState(),
    neverStuck: true,
    machineV2: true,
    fleet: true,
    queueAlerts: true,
    touched: {},
    ...structuredClone(POSITIONS[at] as Partial<RolloutState>),
  };
}

function viewAt(at: Position, p: Plan = PLANS.plain): RolloutView {
  return new RolloutView(stateAt(at), context(p));
}

const types = (t: Transition<unknown>) => t.commands.map((c) => c.type);
const alertsOf = (t: Transition<unknown>) =>
  t.commands.filter((c): c is Extract<MachineCommand, { type: 'alert' }> => c.type === 'alert');

const NOW = MONDAY_10 + 5 * MINUTE;
const freeze = (scope: string): FleetFreeze => ({
  scope,
  by: 'ops',
  reason: 'incident 42',
  since: iso(MONDAY_10),
});

describe('messages, as the playbook tells them', () => {
  it("each event's answer has its own type (checked by the compiler)", () => {
    const v = viewAt('atGate');
    const approved: ApprovalRecord = transition(v, { type: 'approve', req: { identity: 'alice' } }, NOW).ack;
    const paused: PauseAck = transition(v, { type: 'pause', req: { identity: 'alice' } }, NOW).ack;
    const aborted: AbortOutcome = transition(
      v,
      { type: 'abort', req: { identity: 'bob', reason: 'no' } },
      NOW,
    ).ack;
    // @ts-expect-error a resume answers with a PauseAck, not an approval record
    const wrong: ApprovalRecord = transition(v, { type: 'resume', req: { identity: 'alice' } }, NOW).ack;
    expect([approved.kind, paused.by, aborted.accepted, 'kind' in wrong]).toEqual([
      'approved',
      'alice',
      true,
      false,
    ]);
  });

  it('an abort at a gate declines it and cancels the walk', () => {
    const v = viewAt('atGate');
    const t = transition(v, { type: 'abort', req: { identity: 'alice', reason: 'not today' } }, NOW);
    expect(t.ack).toEqual({ accepted: true });
    expect(types(t)).toEqual(['wake', 'cancelWalk']);
    expect(v.s.abortRequest).toEqual({ by: 'alice', reason: 'not today', declined: 'the gate of stage 2' });
  });

  it('an abort at the promotion gate, or while a question waits, declines that', () => {
    const declined = (at: Position) => {
      const v = viewAt(at);
      transition(v, { type: 'abort', req: { identity: 'bob', reason: 'no' } }, NOW);
      return v.s.abortRequest?.declined;
    };
    expect(declined('atPromotionGate')).toBe('the gate of the promotion');
    expect(declined('evidenceQuestion')).toBe('the question about error-rate');
    expect(declined('hookQuestion')).toBe('the question about hook smoke');
    expect(declined('holding')).toBeUndefined();
  });

  it('a second abort changes nothing and returns no commands', () => {
    const v = viewAt('holding');
    transition(v, { type: 'abort', req: { identity: 'alice', reason: 'errors' } }, NOW);
    const first = structuredClone(v.s);
    const t = transition(v, { type: 'abort', req: { identity: 'bob', reason: 'me too' } }, NOW + MINUTE);
    expect(t).toEqual({ ack: { accepted: false }, commands: [] });
    expect(v.s).toEqual(first);
  });

  it('an abort while stable takes the new version, or after the end, changes nothing', () => {
    for (const at of ['finalizing', 'rolledBack', 'promoted', 'failed', 'notStarted'] as const) {
      const v = viewAt(at);
      const t = transition(v, { type: 'abort', req: { identity: 'alice', reason: 'late' } }, NOW);
      expect([at, t]).toEqual([at, { ack: { accepted: false }, commands: [] }]);
      expect(v.s.abortRequest).toBeUndefined();
    }
  });

  it('an abort in the soak goes back to the previous version', () => {
    const v = viewAt('soaking');
    const t = transition(v, { type: 'abort', req: { identity: 'alice', reason: 'latency' } }, NOW);
    expect(types(t)).toEqual(['wake', 'cancelWalk']);
    expect(v.s.abortRequest).toEqual({ by: 'alice', reason: 'latency', back: true });
  });

  it('a pause publishes and alerts', () => {
    const v = viewAt('holding');
    const t = transition(v, { type: 'pause', req: { identity: 'alice', reason: 'lunch' } }, NOW);
    expect(t.ack).toEqual({ at: iso(NOW), by: 'alice', stage: 1 });
    expect(t.commands).toEqual([
      { type: 'wake' },
      { type: 'publish' },
      {
        type: 'alert',
        kind: 'paused',
        severity: 'info',
        message: 'ns/app v2 paused by alice: lunch',
        fromHandler: true,
        extra: { by: 'alice', reason: 'lunch' },
      },
    ]);
    expect(v.phase()).toBe('paused');
  });

  it('a resume counts the paused time out of the hold, publishes and alerts', () => {
    const v = viewAt('holding');
    transition(v, { type: 'pause', req: { identity: 'alice' } }, NOW);
    expect(v.heldMs(NOW + 7 * MINUTE)).toBe(5 * MINUTE);
    const t = transition(v, { type: 'resume', req: { identity: 'bob' } }, NOW + 7 * MINUTE);
    expect(t.ack).toEqual({ at: iso(NOW + 7 * MINUTE), by: 'bob', stage: 1 });
    expect(types(t)).toEqual(['wake', 'publish', 'alert']);
    expect(alertsOf(t)[0]).toMatchObject({
      kind: 'resumed',
      message: 'ns/app v2 resumed by bob',
      extra: { by: 'bob' },
    });
    expect(v.s.pausedMsInWait).toBe(7 * MINUTE);
    expect(v.s.pausedSince).toBeUndefined();
    expect(v.phase()).toBe('progressing');
  });

  it('a resolve cancels the failing step, records who confirmed traffic is back, and publishes', () => {
    const v = viewAt('rollingBack');
    const t = transition(
      v,
      {
        type: 'resolve',
        req: { identity: ' carol ', reason: ' moved by hand ', confirmTrafficRestored: true },
      },
      NOW,
    );
    expect(types(t)).toEqual(['wake', 'cancelStep', 'publish']);
    expect(t.ack).toEqual({ by: 'carol', reason: 'moved by hand', at: iso(NOW), step: 'setCanaryWeight' });
    expect(v.s.resolved).toEqual(t.ack);
    expect(v.s.approvals.at(-1)).toMatchObject({ kind: 'resolved', by: 'carol', comment: 'moved by hand' });
  });

  it('promote during the soak ends the soak', () => {
    const v = viewAt('soaking');
    const t = transition(v, { type: 'promote', req: { identity: 'alice', endSoak: true } }, NOW);
    expect(types(t)).toEqual(['wake', 'publish']);
    expect(t.ack).toEqual({ fromStage: 3, acceptedAt: iso(NOW) });
    expect(v.s.soak?.endNow).toEqual({ by: 'alice', at: NOW });
    expect(v.s.promoteRequest).toBeUndefined();
  });

  it('promote before promotion asks the walk to skip ahead, and only wakes it', () => {
    const v = viewAt('holding');
    const t = transition(v, { type: 'promote', req: { identity: 'alice', comment: 'hotfix' } }, NOW);
    expect(types(t)).toEqual(['wake']);
    expect(v.s.promoteRequest).toEqual({ by: 'alice', at: NOW, fromStage: 1 });
    expect(v.s.approvals).toEqual([
      { stage: 1, by: 'alice', at: iso(NOW), kind: 'promote', comment: 'hotfix' },
    ]);
  });

  it('an approval passes a plain gate and only wakes the walk; under a policy it counts, and publishes', () => {
    const plain = viewAt('atGate');
    const t = transition(plain, { type: 'approve', req: { identity: 'alice' } }, NOW);
    expect(types(t)).toEqual(['wake']);
    expect(t.ack).toEqual({ stage: 2, by: 'alice', at: iso(NOW), kind: 'approved' });
    expect(plain.s.approvedStage).toBe(1);

    const policy = viewAt('atGate', PLANS.policy);
    const first = transition(policy, { type: 'approve', req: { identity: ' alice ' } }, NOW);
    expect(types(first)).toEqual(['wake', 'publish']);
    expect(first.ack).toMatchObject({ by: 'alice', required: 2, count: 1 });
    expect(policy.s.approvedStage).toBeUndefined();
    const second = transition(policy, { type: 'approve', req: { identity: 'bob' } }, NOW + MINUTE);
    expect(second.ack).toMatchObject({ by: 'bob', required: 2, count: 2 });
  });

  it('an approval at the promotion gate says so', () => {
    const v = viewAt('atPromotionGate');
    expect(transition(v, { type: 'approve', req: { identity: 'alice' } }, NOW).ack).toMatchObject({
      stage: 3,
      promotion: true,
      kind: 'approved',
    });
  });

  it('an approval answers a failed hook first, then missing evidence, and publishes', () => {
    const hook = viewAt('hookQuestion');
    const h = transition(hook, { type: 'approve', req: { identity: 'alice' } }, NOW);
    expect(types(h)).toEqual(['wake', 'publish']);
    expect(h.ack).toEqual({
      stage: 1,
      by: 'alice',
      at: iso(NOW),
      kind: 'hook-failure-accepted',
      comment: 'exit code 1',
    });
    expect(hook.s.hookQuestion).toBeUndefined();

    const evidence = viewAt('evidenceQuestion');
    const e = transition(
      evidence,
      { type: 'approve', req: { identity: 'bob', comment: 'dashboards fine' } },
      NOW,
    );
    expect(types(e)).toEqual(['wake', 'publish']);
    expect(e.ack).toMatchObject({ kind: 'missing-evidence', comment: 'dashboards fine' });
    expect(evidence.s.evidenceQuestion).toBeUndefined();
    expect(evidence.s.evidenceWaivedStage).toBe(0);
  });

  it('a freeze holds the rollout with a warning; its lifting says it advances again', () => {
    const v = viewAt('holding');
    const org = 'canary-fleet/*';
    const frozen = transition(v, { type: 'fleetNotice', notice: { fleet: org, freeze: freeze('*') } }, NOW);
    expect(types(frozen)).toEqual(['wake', 'publish', 'alert']);
    expect(alertsOf(frozen)[0]).toMatchObject({
      kind: 'frozen',
      severity: 'warning',
      fromHandler: true,
      extra: { by: 'ops', reason: 'incident 42' },
    });
    expect(v.frozen()).toEqual(freeze('*'));
    // The same news again changes nothing but a wake.
    expect(
      types(transition(v, { type: 'fleetNotice', notice: { fleet: org, freeze: freeze('*') } }, NOW)),
    ).toEqual(['wake']);
    const lifted = transition(v, { type: 'fleetNotice', notice: { fleet: org } }, NOW);
    expect(alertsOf(lifted)[0]).toMatchObject({
      kind: 'unfrozen',
      message: 'ns/app v2: the freeze of every namespace was lifted; it advances again',
    });
    expect(v.s.freezes).toBeUndefined();
  });

  it('a queued rollout says so once; granted its slot, it says that', () => {
    const v = viewAt('holding');
    const ns = 'canary-fleet/ns';
    const queued: SlotPlace = { granted: false, position: 1, max: 1, holders: ['canary.ns.other'] };
    const q = transition(v, { type: 'fleetNotice', notice: { fleet: ns, slot: queued } }, NOW);
    expect(types(q)).toEqual(['wake', 'alert', 'publish']);
    expect(alertsOf(q)[0].kind).toBe('queued');
    expect(alertsOf(q)[0].message).toContain('the slots are held by canary.ns.other');
    expect(v.s.slot).toEqual({ granted: false, position: 1, max: 1, fleet: ns });
    const granted = transition(
      v,
      { type: 'fleetNotice', notice: { fleet: ns, slot: { granted: true, max: 1 } } },
      NOW,
    );
    expect(types(granted)).toEqual(['wake', 'alert', 'publish']);
    expect(alertsOf(granted)[0].kind).toBe('dequeued');
    expect(v.queued()).toBe(false);
  });

  it('an ended rollout takes no notice of a freeze: the walk is woken, nothing published or alerted', () => {
    const v = viewAt('rolledBack');
    const t = transition(
      v,
      { type: 'fleetNotice', notice: { fleet: 'canary-fleet/ns', freeze: freeze('ns') } },
      NOW,
    );
    expect(types(t)).toEqual(['wake']);
  });

  it('drift pauses the rollout and warns, from the walk (not a handler); a pause already there stays', () => {
    const v = viewAt('holding');
    const t = transition(v, { type: 'drift', expected: 10, found: 30 }, NOW);
    expect(types(t)).toEqual(['wake', 'publish', 'alert']);
    expect(alertsOf(t)[0]).toMatchObject({ kind: 'drift_detected', severity: 'warning', fromHandler: false });
    expect(alertsOf(t)[0].message).toContain('canary at 30%, the rollout set 10%');
    expect(v.s.pausedBy).toBe('drift detection');
    expect(v.s.drift).toEqual({ expected: 10, found: 30, at: NOW });

    const paused = viewAt('holding');
    transition(paused, { type: 'pause', req: { identity: 'alice' } }, NOW);
    transition(paused, { type: 'drift', expected: 10, found: 30 }, NOW + MINUTE);
    expect(paused.s.pausedBy).toBe('alice');
    expect(paused.s.pausedSince).toBe(NOW);
  });
});

// ---------- random sequences of messages, with transition() alone ----------

type Msg =
  | { k: 'approve' | 'promote' | 'endSoak' | 'abort' | 'resolve' | 'pause' | 'resume'; who: string }
  | { k: 'fleet'; fleet: string; freeze: boolean; slot?: SlotPlace }
  | { k: 'drift'; found: number };

const msgArb: fc.Arbitrary<Msg> = fc.oneof(
  {
    weight: 8,
    arbitrary: fc.record({
      k: fc.constantFrom('approve', 'promote', 'endSoak', 'abort', 'resolve', 'pause', 'resume' as const),
      who: fc.constantFrom('alice', 'bob', 'carol'),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record(
      {
        k: fc.constant<'fleet'>('fleet'),
        fleet: fc.constantFrom('canary-fleet/ns', 'canary-fleet/*'),
        freeze: fc.boolean(),
        slot: fc.constantFrom<SlotPlace>(
          { granted: true, max: 1 },
          { granted: true },
          { granted: false, position: 1, max: 1, holders: ['x'] },
          { granted: false, position: 2, max: 1 },
        ),
      },
      { requiredKeys: ['k', 'fleet', 'freeze'] },
    ),
  },
  {
    weight: 1,
    arbitrary: fc.record({ k: fc.constant<'drift'>('drift'), found: fc.constantFrom(0, 30, 100) }),
  },
);

const scenarioArb = fc.record({
  at: fc.constantFrom(...(Object.keys(POSITIONS) as Position[])),
  plan: fc.constantFrom<keyof typeof PLANS>('plain', 'policy'),
  machineV2: fc.boolean(),
  /** Whether each message passes the refusals first, as the handlers ask them (or is taken as it comes). */
  validated: fc.boolean(),
  steps: fc.array(
    fc.record({ dt: fc.constantFrom(0, 1_000, MINUTE, 45 * MINUTE, 8 * 3600_000), msg: msgArb }),
    // Long enough to fill the approvals list (fast-check's default size keeps arrays to about 10).
    { maxLength: 120, size: 'medium' },
  ),
});
type Scenario = typeof scenarioArb extends fc.Arbitrary<infer T> ? T : never;

/** The event a message becomes, or undefined where the handler's refusal drops it. */
function eventOf(v: RolloutView, m: Msg, now: number, validated: boolean): RolloutEvent | undefined {
  const s = v.s;
  const ok = (refusal: string | undefined) => !validated || refusal === undefined;
  switch (m.k) {
    case 'approve': {
      const req = { identity: m.who };
      return ok(v.approveRefusal(req, now)) ? { type: 'approve', req } : undefined;
    }
    case 'promote':
    case 'endSoak': {
      const req = { identity: m.who, ...(m.k === 'endSoak' ? { endSoak: true } : {}) };
      return ok(v.promoteRefusal(req, now)) ? { type: 'promote', req } : undefined;
    }
    case 'abort':
      return { type: 'abort', req: { identity: m.who, reason: 'property test' } };
    case 'resolve': {
      const req = { identity: m.who, reason: 'moved by hand', confirmTrafficRestored: true };
      return ok(v.resolveRefusal(req)) ? { type: 'resolve', req } : undefined;
    }
    case 'pause':
      return ok(v.pauseRefusal()) ? { type: 'pause', req: { identity: m.who } } : undefined;
    case 'resume':
      return ok(v.resumeRefusal()) ? { type: 'resume', req: { identity: m.who } } : undefined;
    case 'fleet': {
      const scope = m.fleet === 'canary-fleet/*' ? '*' : 'ns';
      return {
        type: 'fleetNotice',
        notice: {
          fleet: m.fleet,
          ...(m.freeze ? { freeze: freeze(scope) } : {}),
          ...(m.slot ? { slot: m.slot } : {}),
        },
      };
    }
    case 'drift':
      return { type: 'drift', expected: s.achievedWeight ?? s.weight, found: m.found };
  }
}

/** Ended: nothing is left to cancel (rolled back, failed, not started, or promoted with no soak running). */
const ended = (v: RolloutView) =>
  ['rolled_back', 'failed', 'not_started'].includes(v.s.phase) || (v.s.phase === 'promoted' && !v.soaking());

/** Applies the scenario's messages with transition() alone; returns what broke (empty: nothing). */
function runMessages(
  sc: Scenario,
  stats: { events: number; accepted: number; mostApprovals: number },
): string[] {
  const broke: string[] = [];
  const v = new RolloutView(
    { ...stateAt(sc.at), ...(sc.machineV2 ? {} : { machineV2: undefined }) },
    context(PLANS[sc.plan]),
  );
  const s = v.s;
  const start = MONDAY_10;
  let now = start + MINUTE;
  let abortsAccepted = 0;
  let abortSeen = s.abortRequest ? structuredClone(s.abortRequest) : undefined;
  const moving = () => JSON.stringify([s.phase, s.stageIndex, s.stageEntered, s.weight, s.finalizing]);
  for (const [i, { dt, msg }] of sc.steps.entries()) {
    now += dt;
    const e = eventOf(v, msg, now, sc.validated);
    if (!e) continue;
    stats.events++;
    const where = `step ${i} (${e.type} at ${v.phase()})`;
    const wasEnded = ended(v);
    const abortable = s.phase === 'progressing' && !s.finalizing && !s.abortRequest;
    const before = moving();
    const t = transition(v, e, now);
    const kinds = t.commands.map((c) => c.type);
    if (kinds.length > 0) stats.accepted++;
    if (moving() !== before) broke.push(`${where}: a message moved the rollout (${before} → ${moving()})`);
    if (kinds.length > 0 && kinds[0] !== 'wake')
      broke.push(`${where}: the walk is not woken first: ${kinds}`);
    const cancels = kinds.includes('cancelWalk');
    if (e.type === 'abort') {
      const accepted = (t.ack as { accepted: boolean }).accepted;
      if (accepted) abortsAccepted++;
      if (accepted !== cancels) broke.push(`${where}: accepted ${accepted} but cancelWalk ${cancels}`);
      if (abortable && !accepted) broke.push(`${where}: an abort before promotion was not accepted`);
      if (!accepted && kinds.length > 0)
        broke.push(`${where}: an abort that changed nothing returned ${kinds}`);
    } else if (cancels) broke.push(`${where}: only an abort cancels the walk`);
    if (wasEnded && cancels) broke.push(`${where}: a message to an ended rollout cancelled the walk`);
    if (kinds.includes('cancelStep') && e.type !== 'resolve')
      broke.push(`${where}: only a resolve cancels a step`);
    for (const a of alertsOf(t)) {
      if (a.fromHandler !== (e.type !== 'drift'))
        broke.push(`${where}: alert ${a.kind} fromHandler ${a.fromHandler}`);
    }
    if (abortsAccepted > 1) broke.push(`${where}: a second abort was accepted`);
    if (abortSeen && JSON.stringify(s.abortRequest) !== JSON.stringify(abortSeen)) {
      broke.push(`${where}: the accepted abort changed`);
    }
    abortSeen ??= s.abortRequest ? structuredClone(s.abortRequest) : undefined;
    const elapsed = now - start;
    if (s.pausedMsInWait < 0 || s.pausedMsInWait > elapsed) {
      broke.push(`${where}: paused ${s.pausedMsInWait} ms of ${elapsed}`);
    }
    if (v.pausedMs(now) < 0 || v.pausedMs(now) > elapsed) broke.push(`${where}: pausedMs ${v.pausedMs(now)}`);
    const open = s.pausedOpenMsInWait ?? 0;
    if (open < 0 || open > s.pausedMsInWait)
      broke.push(`${where}: paused window time ${open} of ${s.pausedMsInWait}`);
    stats.mostApprovals = Math.max(stats.mostApprovals, s.approvals.length);
    if (s.approvals.length > MAX_APPROVALS_KEPT) broke.push(`${where}: ${s.approvals.length} approvals kept`);
    if (broke.length > 0) break;
  }
  return broke;
}

test(`${RUNS} random message sequences keep what a person relies on (transition alone)`, () => {
  const stats = { cases: 0, events: 0, accepted: 0, mostApprovals: 0 };
  fc.assert(
    fc.property(scenarioArb, (sc) => {
      stats.cases++;
      const broke = runMessages(sc, stats);
      if (broke.length > 0) throw new Error(broke.join('\n'));
    }),
    { numRuns: RUNS, seed: SEED },
  );
  // Recorded for the CI log: how many sequences ran and how many events they applied.
  console.log(
    `rollout messages: ${stats.cases} random sequences, ${stats.events} events (${stats.accepted} with commands), ` +
      `at most ${stats.mostApprovals} approvals kept`,
  );
  expect(stats.cases).toBe(RUNS);
  expect(stats.accepted).toBeGreaterThan(RUNS);
  // Whether random sequences reach the bound depends on the seed (49 in one CI run): the test below reaches it.
  expect(stats.mostApprovals).toBeLessThanOrEqual(MAX_APPROVALS_KEPT);
}, 120_000);

test('the approvals list stays bounded however many answers come', () => {
  const v = viewAt('holding');
  for (let i = 0; i < 3 * MAX_APPROVALS_KEPT; i++) {
    transition(v, { type: 'promote', req: { identity: `p${i}` } }, NOW + i);
    transition(
      v,
      { type: 'resolve', req: { identity: `r${i}`, reason: 'x', confirmTrafficRestored: true } },
      NOW + i,
    );
  }
  expect(v.s.approvals).toHaveLength(MAX_APPROVALS_KEPT);
  expect(v.s.approvals.at(-1)).toMatchObject({ kind: 'resolved', by: `r${3 * MAX_APPROVALS_KEPT - 1}` });
});

// ---------- the machine carries out exactly what a transition returns ----------

test(`${Math.ceil(RUNS / 10)} random sequences: RolloutMachine's messages do what transition() says, in order`, () => {
  let cases = 0;
  fc.assert(
    fc.property(scenarioArb, fc.boolean(), (sc, alertsV2) => {
      cases++;
      const s0 = { ...stateAt(sc.at), ...(sc.machineV2 ? {} : { machineV2: undefined }) };
      const ctx = context(PLANS[sc.plan], alertsV2);
      const port = new SimPort(MONDAY_10 + MINUTE);
      const m = new RolloutMachine(structuredClone(s0), ctx, port);
      const step = port.scope();
      m.stepScope = step;
      const v = new RolloutView(structuredClone(s0), ctx);
      let wakes = 0;
      let alerts = 0;
      let legacyAlerts = 0;
      let publishes = 0;
      let walkCancelled = false;
      let stepCancelled = false;
      port.onPublish = () => publishes++;
      let expectedPublishes = 0;
      for (const { dt, msg } of sc.steps) {
        port.clock += dt;
        const e = eventOf(v, msg, port.clock, sc.validated);
        if (!e) continue;
        const t = transition(v, e, port.clock);
        carryOutEvent(m, e);
        for (const c of t.commands) {
          if (c.type === 'wake') wakes++;
          if (c.type === 'publish') expectedPublishes++;
          if (c.type === 'alert') alerts++;
          // Kinds that came with alert-sinks-v2 were never sent the older way.
          if (c.type === 'alert' && ['paused', 'resumed', 'drift_detected'].includes(c.kind)) legacyAlerts++;
          if (c.type === 'cancelWalk') walkCancelled = true;
          if (c.type === 'cancelStep') stepCancelled = true;
        }
        const { alertSeq, ...ms } = m.s;
        const { alertSeq: _none, ...vs } = v.s;
        // alert-sinks-v2 numbers every alert it raises; before it, each alert of an older kind is a sendAlert step.
        const sent = port.commands.filter((c) => c.command.step === 'sendAlert').length;
        const seen: unknown[] = [
          ms,
          m.messages,
          publishes,
          alertsV2 ? (alertSeq ?? 0) : sent,
          (m.walkScope as SimScopeView).cancelled,
          (step as SimScopeView).cancelled,
        ];
        const said = [
          vs,
          wakes,
          expectedPublishes,
          alertsV2 ? alerts : legacyAlerts,
          walkCancelled,
          stepCancelled,
        ];
        // Compared as JSON (absent and undefined fields alike), with expect only for the report of a difference.
        if (JSON.stringify(seen) !== JSON.stringify(said)) expect(seen).toEqual(said);
      }
    }),
    { numRuns: Math.ceil(RUNS / 10), seed: SEED },
  );
  expect(cases).toBe(Math.ceil(RUNS / 10));
}, 120_000);

/** The simulated port's scopes say whether they were cancelled. */
type SimScopeView = Scope & { cancelled: boolean };

/** A message as the handlers hand it to the machine (pause and resume: the method, then the alert it raised). */
function carryOutEvent(m: RolloutMachine, e: RolloutEvent): void {
  switch (e.type) {
    case 'approve':
      m.approve(e.req);
      return;
    case 'promote':
      m.promote(e.req);
      return;
    case 'abort':
      m.abort(e.req);
      return;
    case 'resolve':
      m.resolve(e.req);
      return;
    case 'pause':
      m.pause(e.req);
      void m.pausedAlert(e.req);
      return;
    case 'resume':
      m.resume(e.req);
      void m.resumedAlert(e.req);
      return;
    case 'fleetNotice':
      void m.fleetNotice(e.notice);
      return;
    case 'drift':
      void m.driftDetected(e.expected, e.found).catch(() => undefined);
      return;
  }
}
