// How a rollout ends, as pure decisions (workflows/machine/ending-steps.ts): a hand-built view in, the commands out,
// with no port and no server. Examples read like the playbook (an abort, a breach, a cancel, a resolve by hand, a
// promotion with and without its soak, a failing cleanup, a refused preflight); fast-check then builds random views
// (weights, stages, what the rollout touched, its router, its behaviours, who stopped it) and checks with the pure
// functions alone what a person relies on: traffic goes back first, a rollback never promotes, it always ends rolled
// back at 0 %, and an abort accepted before promotion always ends in a rollback. A few examples run the machine on
// the simulated clock to show ending.ts carries the decisions out (a failed local first attempt, a resolve).
import fc from 'fast-check';
import type { PlanSpec } from '../../workflows/plan';
import {
  afterTrafficBack,
  cleanupCanary,
  cleanupDelay,
  cleanupFailed,
  endingOf,
  notStarted,
  promoteBegins,
  promoteStable,
  promoteTraffic,
  promoted,
  promotionFailed,
  promotionShift,
  recordAnswer,
  releaseSlot,
  rollbackBegins,
  rollbackResolved,
  rollbackSteps,
  rolledBack,
  soakBegins,
  soakWait,
  stableLabelOf,
  type EndingCommand,
  type WalkStop,
} from '../../workflows/machine/ending-steps';
import { iso } from '../../workflows/machine/context';
import { initialState, type RolloutState } from '../../workflows/machine/state';
import { transition } from '../../workflows/machine/transitions';
import { RolloutView } from '../../workflows/machine/views';
import type { Target } from '../../workflows/target';
import type { Plan } from '../../workflows/types';
import {
  THREE_STAGES,
  currentScenario,
  minutes,
  planOf,
  runScenario,
  simContext,
  RUNS,
  SEED,
  T0,
  MINUTE,
} from './machine-sim';

const plans = new Map<string, Plan>();
/** THREE_STAGES with its cleanup delay (the soak's length where one applies). */
const plan = (cleanupDelay = '0s'): Plan => {
  const p = plans.get(cleanupDelay) ?? planOf({ ...THREE_STAGES, promotion: { cleanupDelay } } as PlanSpec);
  if (!p) throw new Error('invalid plan');
  plans.set(cleanupDelay, p);
  return p;
};

interface ViewSpec {
  state?: Partial<RolloutState>;
  routingLifecycle?: boolean;
  target?: Partial<Target>;
  cleanupDelay?: string;
}

/** A rollout as this build starts one (never-stuck, machine-v2), in stage 2 at 50 %, having touched everything. */
function viewOf({
  state = {},
  routingLifecycle = true,
  target = {},
  cleanupDelay,
}: ViewSpec = {}): RolloutView {
  const ctx = simContext(plan(cleanupDelay));
  return new RolloutView(
    {
      ...initialState(),
      neverStuck: true,
      machineV2: true,
      touched: { canary: true, routing: true, traffic: true },
      canaryReady: true,
      stableVersion: 'v1',
      stageIndex: 1,
      stageEntered: true,
      weight: 50,
      ...state,
    },
    { ...ctx, target: { ...ctx.target, ...target }, flags: { ...ctx.flags, routingLifecycle } },
  );
}

const TARGET = { app: 'app', namespace: 'ns' };
const ABORT = { by: 'alice', reason: 'error budget burning' };

/** The whole rollback as ending.ts asks for it, every step answering as the router does (exactly). */
function rollbackOf(v: RolloutView, reason: string, cancelled = false): EndingCommand[] {
  const out = [...rollbackBegins(v, reason)];
  const steps = rollbackSteps(v, cancelled);
  carryOut(v, steps);
  out.push(...steps, ...afterTrafficBack(), ...rolledBack(v, reason));
  return out;
}

/** What carrying out `commands` does to state, each answering as the router and Temporal do. */
function carryOut(v: RolloutView, commands: EndingCommand[], who?: string): void {
  for (const c of commands) {
    if (c.type === 'run' && c.record) {
      const weight = (c.step.args[0] as { weight?: number } | undefined)?.weight;
      recordAnswer(v, c.record, weight === undefined ? undefined : { previous: v.s.weight, current: weight });
    } else if (c.type === 'shiftBack') {
      recordAnswer(v, 'trafficBackWithCapacity', { previous: v.s.weight, current: 0 });
    } else if (c.type === 'shift') {
      v.s.weight = c.weight;
    } else if (c.type === 'record') {
      recordAnswer(v, c.change);
    } else if (c.type === 'nameCanceller') {
      recordAnswer(v, 'canceller', who);
    }
  }
}

const summaries = (cs: EndingCommand[]) =>
  cs.map((c) =>
    c.type === 'run'
      ? `${c.step.policy} ${c.step.summary}`
      : c.type === 'shiftBack'
        ? `${c.localFirst ? 'local, then ' : ''}persistent ${c.shift.summary}`
        : c.type === 'alert'
          ? `alert ${c.kind}`
          : c.type === 'shift'
            ? `shift ${c.weight}% (${c.why})`
            : c.type === 'hooks' || c.type === 'stopLoad'
              ? `${c.type} ${c.type === 'hooks' ? c.point : c.why}`
              : c.type === 'record'
                ? `record ${c.change}`
                : c.type,
  );

describe('how a rollout ends, as the playbook tells it', () => {
  it('an abort rolls back: the alert, then the shift back before anything else', () => {
    const v = viewOf({ state: { abortRequest: ABORT } });
    const { ending, reason, cancelled } = endingOf(v, { type: 'cancelled' });
    expect(ending).toEqual({ kind: 'abort', by: 'alice' });
    expect(reason).toBe('aborted by alice: error budget burning');
    expect(cancelled).toBe(false);
    const begins = rollbackBegins(v, reason, ending);
    expect(begins).toEqual([
      { type: 'publish' },
      { type: 'routeEarly' },
      {
        type: 'alert',
        kind: 'rollback_started',
        severity: 'critical',
        message: 'ns/app v2 is rolling back: aborted by alice: error budget burning',
        fromHandler: false,
        extra: { reason },
      },
    ]);
    expect(v.s).toMatchObject({ phase: 'rolling_back', rollbackReason: reason, failedStage: 1, ending });
    const steps = rollbackSteps(v, cancelled);
    expect(steps[0]).toEqual({
      type: 'shiftBack',
      shift: {
        step: 'setCanaryWeight',
        summary: "rollback: canary 50% → 0% (stable's capacity checked first)",
        args: [{ target: TARGET, weight: 0, mode: 'rollback', ensureCapacity: true }],
      },
      localFirst: true,
      persist: 'send traffic back to stable',
    });
    expect(summaries(steps)).toEqual([
      "local, then persistent rollback: canary 50% → 0% (stable's capacity checked first)",
      'record driftCleared',
      'publish',
      'persistent rollback: scale canary down',
      'persistent rollback: tear down default routing',
    ]);
    expect(steps.filter((c) => c.type === 'run').map((c) => c.type === 'run' && c.persist)).toEqual([
      'scale the canary down',
      'remove the routing setup',
    ]);
    carryOut(v, steps);
    expect(v.s.weight).toBe(0);
    expect(summaries(afterTrafficBack())).toEqual(['stopLoad rollback', 'hooks onRollback']);
    const end = rolledBack(v, reason);
    expect(v.s.phase).toBe('rolled_back');
    expect(end).toEqual([
      { type: 'publish' },
      {
        type: 'alert',
        kind: 'rolled_back',
        severity: 'critical',
        message: 'ns/app v2 rolled back: aborted by alice: error budget burning',
        fromHandler: false,
        extra: { reason },
      },
    ]);
  });

  it('a critical breach rolls back with the reason and ending the analysis gave', () => {
    const v = viewOf();
    const stop: WalkStop = {
      type: 'rollbackRequired',
      reason: 'analysis at 50%: errors: 10 > abort max 5 (critical): roll back at once',
      ending: { kind: 'check' },
    };
    expect(endingOf(v, stop)).toEqual({ ending: { kind: 'check' }, reason: stop.reason, cancelled: false });
  });

  it('nothing the rollout never touched is undone', () => {
    const untouched = viewOf({ state: { touched: {}, weight: 0, stageIndex: 0 } });
    rollbackBegins(untouched, 'preflight hook failed');
    expect(summaries(rollbackSteps(untouched, false))).toEqual(['record driftCleared', 'publish']);
    const deployedOnly = viewOf({ state: { touched: { canary: true }, weight: 0, stageIndex: 0 } });
    expect(summaries(rollbackSteps(deployedOnly, false))).toEqual([
      'record driftCleared',
      'publish',
      'persistent rollback: scale canary down',
    ]);
    // A rollout that did not keep track (before never-stuck) undoes all of it.
    const untracked = viewOf({ state: { touched: undefined } });
    expect(summaries(rollbackSteps(untracked, false))).toHaveLength(5);
  });

  it('the replica ratio says why traffic waits, and its shift back is never a local attempt', () => {
    const v = viewOf({ target: { traffic: { router: 'replicas' } } as Partial<Target> });
    const steps = rollbackSteps(v, false);
    expect(v.s.capacityNote).toMatch(/^the replica ratio moved stable's replicas to the canary/);
    expect(summaries(steps).slice(0, 2)).toEqual([
      'publish',
      "persistent rollback: canary 50% → 0% (stable's capacity checked first)",
    ]);
  });

  it('before machine-v2, stable’s capacity is checked in a step of its own, then traffic goes back', () => {
    const v = viewOf({ state: { machineV2: undefined } });
    const steps = rollbackSteps(v, false);
    expect(summaries(steps).slice(0, 2)).toEqual([
      'persistent rollback: check stable capacity',
      'persistent rollback: canary 50% → 0%',
    ]);
    carryOut(v, [steps[0]]);
    recordAnswer(v, 'capacity', 'stable scaled back to 4 replicas');
    expect(v.s.capacityNote).toBe('stable scaled back to 4 replicas');
  });

  it('before routing lifecycles, the shift back never gives up, then the canary scales down', () => {
    const v = viewOf({
      routingLifecycle: false,
      state: { touched: undefined, neverStuck: false, machineV2: undefined },
    });
    expect(summaries(rollbackSteps(v, true))).toEqual([
      'rollback rollback: canary 50% → 0%',
      'publish',
      'nameCanceller',
      'rollback rollback: scale canary down',
    ]);
  });

  it('a cancel of the workflow rolls back, and names who cancelled once traffic is back', () => {
    const v = viewOf();
    const { ending, reason, cancelled } = endingOf(v, { type: 'cancelled' });
    expect([ending, reason, cancelled]).toEqual([
      { kind: 'cancel' },
      'workflow cancelled (Temporal UI or API)',
      true,
    ]);
    rollbackBegins(v, reason, ending);
    const steps = rollbackSteps(v, cancelled);
    expect(summaries(steps).indexOf('nameCanceller')).toBe(3);
    carryOut(v, steps, 'bob@example.com');
    expect(v.s.rollbackReason).toBe('workflow cancelled by bob@example.com (Temporal UI or API)');
    expect(v.s.ending).toEqual({ kind: 'cancel', by: 'bob@example.com' });
  });

  it('a step that failed past its retries rolls back naming it', () => {
    expect(endingOf(viewOf(), { type: 'failed', error: 'prepareCanary failed' })).toEqual({
      ending: { kind: 'step' },
      reason: 'rollout step failed: prepareCanary failed',
      cancelled: false,
    });
  });

  it('a resolve by hand ends at weight 0 with the reason naming who', () => {
    const v = viewOf({ state: { abortRequest: ABORT } });
    const { reason } = endingOf(v, { type: 'cancelled' });
    rollbackBegins(v, reason);
    v.s.retrying = { step: 'send traffic back to stable', attempts: 3, error: 'router down', since: T0 };
    v.s.achievedWeight = 50;
    v.s.resolved = { by: 'carol', reason: 'moved by hand', at: iso(T0) };
    rollbackResolved(v, reason);
    expect(v.s).toMatchObject({ weight: 0, achievedWeight: undefined, retrying: undefined });
    expect(v.s.rollbackReason).toBe(
      'aborted by alice: error budget burning; resolved by hand by carol: moved by hand',
    );
    rolledBack(v, reason);
    expect(v.s.phase).toBe('rolled_back');
  });

  it('a declined gate and a soak’s going back name the person', () => {
    const declined = viewOf({ state: { abortRequest: { ...ABORT, declined: 'the gate of stage 2' } } });
    expect(endingOf(declined, { type: 'cancelled' })).toMatchObject({
      ending: { kind: 'decline', by: 'alice' },
      reason: 'declined by alice (the gate of stage 2): error budget burning',
    });
    const soaking = viewOf({
      state: {
        phase: 'promoted',
        weight: 100,
        stageIndex: 2,
        soak: { since: T0, until: T0 + 10 * MINUTE, previousVersion: 'v1' },
        abortRequest: { ...ABORT, back: true },
      },
    });
    const { ending, reason } = endingOf(soaking, { type: 'cancelled' });
    expect(ending).toEqual({ kind: 'back', by: 'alice' });
    expect(reason).toBe('went back to v1 during the soak, as alice asked: error budget burning');
    rollbackBegins(soaking, reason, ending);
    expect(summaries(rollbackSteps(soaking, false))[0]).toBe(
      "local, then persistent rollback: canary 100% → 0% (stable's capacity checked first)",
    );
  });

  it('a promotion that fails before stable took the version rolls back', () => {
    const v = viewOf({ state: { stageIndex: 2, weight: 100 } });
    expect(promoteBegins(v)).toEqual([{ type: 'stopLoad', why: 'promotion' }]);
    expect(v.s.finalizing).toBe(true);
    expect(promotionShift(v)).toEqual([]);
    expect(promoteStable(v)).toEqual([
      {
        type: 'run',
        step: {
          policy: 'step',
          step: 'promoteStable',
          summary: 'stable takes v2',
          workloadWait: true,
          args: [{ target: TARGET, version: 'v2', image: undefined }],
        },
      },
    ]);
    expect(promotionFailed(v, 'image pull failed')).toEqual({
      reason: 'promotion failed: image pull failed',
      ending: { kind: 'step' },
    });
    expect(v.s.finalizing).toBe(false);
  });

  it('after stable took the version, traffic goes back to it with steps that never give up', () => {
    const v = viewOf({ state: { stageIndex: 1, weight: 50 } });
    promoteBegins(v);
    const shift = promotionShift(v);
    expect(shift).toEqual([{ type: 'shift', weight: 100, why: 'promotion' }]);
    carryOut(v, shift);
    promoteStable(v);
    expect(v.s.stageIndex).toBe(2);
    const steps = promoteTraffic(v, stableLabelOf(v, { stableLabel: 'stable' }));
    expect(summaries(steps)).toEqual([
      'persistent promotion: default routing, stable serves v2',
      'persistent promotion: canary 100% → 0%, stable serves v2',
      'persistent promotion: tear down default routing',
    ]);
    expect(steps.every((c) => c.type === 'run' && c.persist !== undefined)).toBe(true);
    expect(steps[0].type === 'run' && steps[0].step.args).toEqual([
      { target: TARGET, versions: { stable: 'stable', canary: 'v2' }, mode: 'rollback' },
    ]);
    carryOut(v, steps);
    expect(promoted(v, T0)).toEqual([
      { type: 'publish' },
      {
        type: 'alert',
        kind: 'promoted',
        severity: 'info',
        message: 'ns/app v2 promoted: stable now runs v2',
        fromHandler: false,
      },
      { type: 'hooks', point: 'afterPromotion' },
    ]);
    expect(v.s).toMatchObject({ weight: 0, phase: 'promoted', promotedAt: T0 });
    expect(stableLabelOf(v, undefined)).toBe('v2');
  });

  it('a soak keeps the previous version until its end; its end raises no second promoted alert', () => {
    const v = viewOf({ cleanupDelay: '30m', state: { stageIndex: 2, weight: 100 } });
    expect(promotionShift(v)).toEqual([]);
    const begins = soakBegins(v, T0);
    expect(v.s.soak).toEqual({ since: T0, until: T0 + 30 * MINUTE, previousVersion: 'v1' });
    expect(begins[1]).toMatchObject({
      kind: 'promoted',
      message:
        'ns/app v2 promoted: v2 serves all traffic; v1 keeps running until 2026-12-07T10:30:00.000Z (the soak), so ' +
        'going back is a weight change: canary abort canary.ns.app --reason "why"',
    });
    expect(soakWait(v, T0 + 10 * MINUTE)).toEqual({
      type: 'wait',
      timeoutMs: 20 * MINUTE,
      summary: 'soak until 2026-12-07T10:30:00.000Z: the previous version keeps running',
      ends: 'soakEnded',
    });
    // The soak was the cleanup delay.
    expect(cleanupDelay(v)).toBeUndefined();
    expect(summaries(promoted(v, T0 + 30 * MINUTE))).toEqual(['publish', 'hooks afterPromotion']);
    expect(v.s.promotedAt).toBe(T0);
  });

  it('a cleanup that fails leaves a machine-v2 rollout promoted, with the way out', () => {
    const v = viewOf({ state: { phase: 'promoted', weight: 0, stageIndex: 2 } });
    expect(summaries([cleanupCanary(v)])).toEqual(['step remove canary workload']);
    expect(cleanupFailed(v, 'forbidden', T0)).toEqual([
      { type: 'publish' },
      {
        type: 'alert',
        kind: 'stuck',
        severity: 'warning',
        message:
          'ns/app v2 is promoted (stable runs v2), but its canary workload could not be removed: forbidden. ' +
          'Remove it by hand: remove the canary workload of ns/app by hand',
        fromHandler: false,
      },
    ]);
    expect(v.s.cleanupFailed).toEqual({ at: T0, error: 'forbidden' });
    expect(cleanupFailed(viewOf({ state: { machineV2: undefined } }), 'forbidden', T0)).toBeUndefined();
  });

  it('every ending gives back the slot once; a refused preflight ends not started', () => {
    const v = viewOf({ state: { slotAsked: 'fleet-ns', phase: 'progressing', weight: 0 } });
    expect(releaseSlot(v)).toBe('fleet-ns');
    expect(releaseSlot(v)).toBeUndefined();
    v.s.preflight = {
      state: 'failed',
      findings: [
        { level: 'refuse', message: 'no stable Deployment' },
        { level: 'warn', message: 'no PDB' },
        { level: 'refuse', message: 'no Service' },
      ],
    } as RolloutState['preflight'];
    const { first, then, why } = notStarted(v);
    expect(v.s.phase).toBe('not_started');
    expect(first).toEqual([{ type: 'publish' }]);
    expect(summaries(then)).toEqual(['releaseSlot', 'alert not_started', 'handlersFinished', 'flushAlerts']);
    expect(then[1]).toMatchObject({
      message: 'ns/app v2 did not start: nothing was changed. no stable Deployment; no Service',
    });
    expect(why).toBe('no stable Deployment (and 1 more)');
  });
});

describe('ending.ts carries the decisions out (simulated clock)', () => {
  it('a failed local first attempt is followed by the persistent one', async () => {
    const r = await runScenario(
      currentScenario(THREE_STAGES, {
        events: [...minutes(3), { k: 'msg', m: 'abort', who: 'alice' }],
        stepAnswer: (c) =>
          c.policy === 'rollbackFirst'
            ? Promise.reject(new Error('router busy'))
            : Promise.resolve(undefined),
      }),
    );
    expect(r.outcome).toBe('rolled_back');
    const back = r.commands.filter((c) => c.summary.startsWith('rollback:'));
    expect(back.map((c) => `${c.policy} ${c.summary}`)).toEqual([
      "rollbackFirst rollback: canary 10% → 0% (stable's capacity checked first)",
      "persistent rollback: canary 10% → 0% (stable's capacity checked first)",
      'persistent rollback: scale canary down',
      'persistent rollback: tear down default routing',
    ]);
    expect(r.result?.finalWeight).toBe(0);
  });

  it('a resolve by hand ends a rollback stuck on its shift back, at 0 %, naming who', async () => {
    const r = await runScenario(
      currentScenario(THREE_STAGES, {
        events: [...minutes(3), { k: 'msg', m: 'abort', who: 'alice' }, ...minutes(5)],
        stepAnswer: (c) => {
          if (c.step === 'setCanaryWeight' && c.summary.startsWith('rollback'))
            return Promise.reject(new Error('router down'));
          return Promise.resolve(undefined);
        },
      }),
    );
    expect(r.outcome).toBe('rolled_back');
    expect(r.result?.finalWeight).toBe(0);
    expect(r.result?.reason).toBe(
      'aborted by alice: property test; resolved by hand by carol: moved by hand',
    );
    expect(r.commands.some((c) => c.step === 'scaleDownCanary')).toBe(false);
    expect(r.alerts.map((a) => a.kind)).toEqual(expect.arrayContaining(['stuck', 'rolled_back']));
  });

  it('a promotion whose promoteStable fails rolls back; one whose teardown fails persists and promotes', async () => {
    const failed = await runScenario(currentScenario(THREE_STAGES, { failSteps: ['promoteStable'] }));
    expect(failed.outcome).toBe('rolled_back');
    expect(failed.result?.reason).toBe('promotion failed: promoteStable failed');
    expect(failed.result?.ending).toEqual({ kind: 'step' });
    const persisted = await runScenario(currentScenario(THREE_STAGES, { failSteps: ['teardownRouting'] }));
    expect(persisted.outcome).toBe('promoted');
    expect(persisted.state.phase).toBe('promoted');
    expect(persisted.commands.filter((c) => c.step === 'teardownRouting')[0].policy).toBe('persistent');
  });
});

// ---------- properties: random views, the pure functions alone ----------

const viewArb: fc.Arbitrary<{ spec: ViewSpec; cancelled: boolean; stop: WalkStop; resolveAt: number }> = fc
  .record({
    weight: fc.constantFrom(0, 5, 10, 25, 50, 100),
    stageIndex: fc.integer({ min: 0, max: 2 }),
    touched: fc.option(
      fc.record({ canary: fc.boolean(), routing: fc.boolean(), traffic: fc.boolean() }, { requiredKeys: [] }),
      { nil: undefined },
    ),
    machineV2: fc.boolean(),
    neverStuck: fc.boolean(),
    routingLifecycle: fc.boolean(),
    router: fc.constantFrom(undefined, 'istio', 'replicas', 'nginx'),
    drift: fc.boolean(),
    abort: fc.option(
      fc.record({
        by: fc.constantFrom('alice', 'bob'),
        reason: fc.constant('why'),
        declined: fc.option(fc.constant('the gate of stage 2'), { nil: undefined }),
      }),
      { nil: undefined },
    ),
    stop: fc.constantFrom<WalkStop>(
      { type: 'cancelled' },
      { type: 'failed', error: 'boom' },
      { type: 'rollbackRequired', reason: 'analysis failed', ending: { kind: 'check' } },
    ),
    resolved: fc.boolean(),
    resolveAt: fc.nat({ max: 8 }),
  })
  .map((r) => {
    // The weight rises only once traffic was marked touched (RolloutMachine.shift marks it before the call).
    const weight = r.touched && !r.touched.traffic ? 0 : r.weight;
    return {
      spec: {
        routingLifecycle: r.routingLifecycle,
        target: r.router ? ({ traffic: { router: r.router } } as Partial<Target>) : {},
        state: {
          weight,
          stageIndex: r.stageIndex,
          touched: r.touched,
          machineV2: r.machineV2 || undefined,
          neverStuck: r.neverStuck,
          ...(r.drift ? { drift: { expected: weight, found: weight + 3, at: T0 } } : {}),
          ...(r.abort ? { abortRequest: r.abort } : {}),
          ...(r.resolved ? { resolved: { by: 'carol', reason: 'moved by hand', at: iso(T0) } } : {}),
        } as Partial<RolloutState>,
      },
      cancelled: r.stop.type === 'cancelled' && !r.abort,
      stop: r.stop,
      resolveAt: r.resolved ? r.resolveAt : -1,
    };
  });

/** A command that may fail (a step) or wait (a timer, a hook, a step that must not give up). */
const mayFailOrWait = (c: EndingCommand) =>
  c.type === 'run' ||
  c.type === 'shiftBack' ||
  c.type === 'shift' ||
  c.type === 'nameCanceller' ||
  c.type === 'stopLoad' ||
  c.type === 'hooks' ||
  c.type === 'wait' ||
  c.type === 'alert';
const isShiftBackToZero = (c: EndingCommand) =>
  c.type === 'shiftBack' ||
  (c.type === 'run' &&
    c.step.step === 'setCanaryWeight' &&
    (c.step.args[0] as { weight: number }).weight === 0);

describe('every ending, over random views', () => {
  const params = { numRuns: RUNS, ...(SEED !== undefined ? { seed: SEED } : {}) };

  it('a rollback puts the weight at 0 before anything that could fail or wait but its first alert', () => {
    fc.assert(
      fc.property(viewArb, ({ spec, cancelled, stop }) => {
        const v = viewOf(spec);
        const { reason } = endingOf(v, stop);
        const cs = rollbackOf(v, reason, cancelled);
        const first = cs.findIndex(mayFailOrWait);
        expect(cs[first]).toMatchObject({ type: 'alert', kind: 'rollback_started' });
        const next = cs.findIndex((c, i) => i > first && mayFailOrWait(c));
        const back = cs.findIndex(isShiftBackToZero);
        const capacity = cs.findIndex((c) => c.type === 'run' && c.step.step === 'ensureStableCapacity');
        if (back >= 0) {
          // Before machine-v2 stable's capacity is checked in a step of its own, right before the shift it serves.
          expect(next).toBe(capacity >= 0 ? capacity : back);
          if (capacity >= 0) expect(back).toBe(capacity + 1);
        }
        // Traffic back is skipped only where the rollout never moved traffic nor set up routing (so it is at 0 %).
        const t = spec.state?.touched;
        if (back === -1) {
          expect(t !== undefined && !t.traffic && !t.routing).toBe(true);
          expect(spec.state?.weight).toBe(0);
        }
        // The canary scales down and the routing goes only once traffic is back.
        for (const step of ['scaleDownCanary', 'teardownRouting']) {
          const i = cs.findIndex((c) => c.type === 'run' && c.step.step === step);
          if (i >= 0 && back >= 0) expect(back).toBeLessThan(i);
        }
      }),
      params,
    );
  });

  it('no rollback has a promotion step', () => {
    fc.assert(
      fc.property(viewArb, ({ spec, cancelled, stop }) => {
        const v = viewOf(spec);
        const cs = rollbackOf(v, endingOf(v, stop).reason, cancelled);
        const promoting = cs.filter(
          (c) =>
            (c.type === 'run' && c.step.step === 'promoteStable') ||
            c.type === 'shift' ||
            (c.type === 'hooks' && c.point === 'afterPromotion') ||
            (c.type === 'alert' && c.kind === 'promoted') ||
            /promot/.test(summaries([c])[0]),
        );
        expect(promoting).toEqual([]);
      }),
      params,
    );
  });

  it('a rolled-back ending always ends with weight 0 and phase rolled_back, resolved by hand or not', () => {
    fc.assert(
      fc.property(viewArb, ({ spec, cancelled, stop, resolveAt }) => {
        const v = viewOf(spec);
        const { reason, ending } = endingOf(v, stop);
        rollbackBegins(v, reason, ending);
        const steps = rollbackSteps(v, cancelled);
        if (resolveAt >= 0 && spec.routingLifecycle) {
          // A person resolved it while one of the steps kept failing: the rest is theirs.
          carryOut(v, steps.slice(0, Math.min(resolveAt, steps.length)));
          rollbackResolved(v, reason);
          expect(v.s.rollbackReason).toMatch(/; resolved by hand by carol: moved by hand$/);
        } else {
          carryOut(v, steps);
        }
        const end = rolledBack(v, reason);
        expect(v.s.weight).toBe(0);
        expect(v.s.phase).toBe('rolled_back');
        // (Before routing lifecycles the rollback did not track drift.)
        if (spec.routingLifecycle) expect(v.s.drift).toBeUndefined();
        expect(end[end.length - 1]).toMatchObject({ type: 'alert', kind: 'rolled_back' });
        expect(v.s.ending).toEqual(ending);
      }),
      params,
    );
  });

  it('an abort accepted before promotion always gives a rollback ending naming the person', () => {
    fc.assert(
      fc.property(viewArb, fc.constantFrom('alice', 'bob'), fc.boolean(), ({ spec }, who, finalizing) => {
        const v = viewOf({ ...spec, state: { ...spec.state, abortRequest: undefined, finalizing } });
        const { ack, commands } = transition(v, { type: 'abort', req: { identity: who, reason: 'why' } }, T0);
        // A promotion under way (finalizing) cannot be aborted: stable already takes the new version.
        expect(ack.accepted).toBe(!finalizing);
        if (!ack.accepted) return;
        expect(commands).toContainEqual({ type: 'cancelWalk' });
        // Whatever the cancelled walk was doing, and whatever failed as it stopped, the ending is the person's.
        for (const stop of [{ type: 'cancelled' }, { type: 'failed', error: 'x' }] as WalkStop[]) {
          const { ending, reason, cancelled } = endingOf(v, stop);
          expect(ending).toEqual({ kind: 'abort', by: who });
          expect(reason).toBe(`aborted by ${who}: why`);
          expect(cancelled).toBe(false);
        }
        const cs = rollbackOf(v, endingOf(v, { type: 'cancelled' }).reason);
        expect(v.s.phase).toBe('rolled_back');
        expect(v.s.weight).toBe(0);
        expect(cs.some((c) => c.type === 'nameCanceller')).toBe(false);
      }),
      params,
    );
  });

  it('a promotion only ever shifts to 100 % or back to 0 %, and ends promoted at 0 %', () => {
    fc.assert(
      fc.property(viewArb, fc.string({ minLength: 1, maxLength: 8 }), ({ spec }, label) => {
        const v = viewOf({ ...spec, state: { ...spec.state, abortRequest: undefined, resolved: undefined } });
        const cs = [...promoteBegins(v)];
        const shift = promotionShift(v);
        carryOut(v, shift);
        const stable = promoteStable(v);
        const traffic = promoteTraffic(v, stableLabelOf(v, { stableLabel: label }));
        carryOut(v, traffic);
        cs.push(...shift, ...stable, ...traffic, ...promoted(v, T0));
        const wrong = cs.filter(
          (c) =>
            (c.type === 'shift' && c.weight !== 100) ||
            (c.type === 'run' &&
              c.step.step === 'setCanaryWeight' &&
              (c.step.args[0] as { weight: number }).weight !== 0) ||
            (c.type === 'alert' && c.kind !== 'promoted') ||
            (c.type === 'run' && c.step.step === 'scaleDownCanary'),
        );
        expect(wrong).toEqual([]);
        expect(v.s).toMatchObject({ weight: 0, phase: 'promoted', finalizing: true, stageIndex: 2 });
      }),
      params,
    );
  });
});
