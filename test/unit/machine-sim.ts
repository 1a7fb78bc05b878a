// Runs the rollout machine on the simulated port: random plans, random events (time, metrics, failing steps, drift,
// people's messages), and the invariants a user relies on, checked at every step. Used by the property tests.
import type { HookRunInput, HookRunResult } from '../../activities/hooks/types';
import type { RolloutAlert } from '../../workflows/alerts/events';
import { runRollout } from '../../workflows/machine/ending';
import type { RolloutContext } from '../../workflows/machine/context';
import { RolloutMachine } from '../../workflows/machine/machine';
import { SimContinueAsNew, SimOutcome, SimPort, type PendingStep } from '../../workflows/machine/sim';
import type { FleetFreeze, SlotPlace } from '../../workflows/fleet-model';
import type { StepCommand, StepName } from '../../workflows/machine/port';
import { initialState, migrateCarried, type RolloutState } from '../../workflows/machine/state';
import { validatePlan, type PlanSpec } from '../../workflows/plan';
import type { Target } from '../../workflows/target';
import type { Plan, RolloutResult } from '../../workflows/types';
import { mayAdvance, openMsBetween } from '../../workflows/windows';

export type Message = 'pause' | 'resume' | 'abort' | 'approve' | 'promote' | 'resolve' | 'endSoak';
export type SimEvent =
  | { k: 'advance'; ms: number }
  | { k: 'metric'; value: number | null }
  | { k: 'fail' }
  | { k: 'drift' }
  | { k: 'msg'; m: Message; who: string }
  /** A fleet workflow's news (it runs from then on): its scope's freeze, or none. */
  | { k: 'fleet'; fleet: string; freeze?: FleetFreeze; slot?: SlotPlace };

export interface Scenario {
  plan: PlanSpec;
  events: SimEvent[];
  neverStuck: boolean;
  /** The machine-v2 behaviour (with never-stuck, as every rollout started by this build has both). */
  machineV2?: boolean;
  alertsV2: boolean;
  /** The fleet-controls behaviour: the rollout asks its fleet workflows before it advances. */
  fleet?: boolean;
  /** The fleet-queue-alerts behaviour: being queued for a slot, and leaving the queue, raise alerts. */
  queueAlerts?: boolean;
  /** The pause-holds-advance behaviour: while paused, no canary is deployed, no stage entered, nothing promoted. */
  pauseHolds?: boolean;
  /** Fleet workflows that run from the start, with their freeze (undefined: none). */
  fleets?: Record<string, FleetFreeze | undefined>;
  /** How a fleet workflow answers an ask for a slot (by id): granted, or a place in the queue. */
  slots?: Record<string, SlotPlace>;
  /** When the rollout starts, after Monday 2026-12-07 10:00 UTC (ms; default 0), so holds straddle windows. */
  startAfterMs?: number;
  /** Continue as new this far into the rollout (ms), if at all. */
  continueAfterMs?: number;
  /** Steps that fail every attempt (the simulated port rejects them). */
  failSteps?: string[];
  /** Steps before the run counts as unfinished (a long plan needs more). */
  maxSteps?: number;
  /** How the plan's hooks answer (default: every run passes). */
  hookAnswer?: (input: HookRunInput) => HookRunResult;
  /**
   * Answers a step itself (e.g. with a real activity); undefined: the simulation's answer; a throw fails the attempt.
   * It may hand the machine a message while the step runs (e.g. a pause during the preflight).
   */
  stepAnswer?: (command: StepCommand<StepName>, machine: RolloutMachine) => Promise<unknown>;
  /** More of the rollout's target (its router, say); default `{ app: 'app', namespace: 'ns' }` alone. */
  target?: Partial<Target>;
}

export interface RunReport {
  result?: RolloutResult;
  /** `failed`: a step failed past its retries where nothing catches it (the workflow fails, as it does today). */
  outcome: 'promoted' | 'rolled_back' | 'not_started' | 'failed' | 'unfinished';
  steps: number;
  runs: number;
  violations: string[];
  /** Every traffic shift the machine asked for: when, to what, and why. */
  shifts: Array<{ atMs: number; weight: number; why: string; mirror?: unknown }>;
  /** The phase status showed after each publish, when it changed (ms after the start). */
  phases: Array<{ atMs: number; phase: string }>;
  /** The alerts raised (alert-sinks-v2 scenarios): kind and message. */
  alerts: Array<{ kind: string; message: string }>;
  /** The same alerts as the sinks receive them. */
  events: RolloutAlert[];
  /** The final state. */
  state: RolloutState;
  /** Where an unfinished run stood. */
  stoodAt?: string;
  /** Every hook run the machine asked for, in order: `point stage hook#attempt` with when (ms after the start). */
  hooks: Array<{ atMs: number; run: string; weight: number }>;
  /** Every load Job started and stopped (plan-load.ts): when, which, and the weight then. */
  loads: Array<{ atMs: number; op: 'start' | 'stop'; job: string; weight: number }>;
  /** Slots given back to fleet workflows (ms after the start). */
  fleetReleases: Array<{ atMs: number; fleet: string }>;
  /** Every step the machine asked for, in order: when (ms after the start), which, and its summary. */
  commands: Array<{ atMs: number; step: string; summary: string; policy: string }>;
}

const MONDAY_10 = Date.UTC(2026, 11, 7, 10, 0, 0);
/** Monday 2026-12-07 10:00 UTC: where the machine tests' clocks start. */
export const T0 = MONDAY_10;
export const MINUTE = 60_000;
/** fast-check runs per property of the machine tests, and a seed to replay a failure with (both from the env). */
export const RUNS = Number(process.env.MACHINE_PROPERTY_RUNS ?? 3000);
export const SEED = process.env.MACHINE_PROPERTY_SEED ? Number(process.env.MACHINE_PROPERTY_SEED) : undefined;
const MAX_STEPS = 4000;

const settle = (): Promise<void> => new Promise((r) => setImmediate(r));

export function planOf(spec: PlanSpec): Plan | undefined {
  const v = validatePlan(spec, { strict: true, limits: true });
  return v.ok ? v.plan : undefined;
}

/** `n` minutes of simulated time, a minute at a time. */
export const minutes = (n: number): SimEvent[] =>
  Array.from({ length: n }, () => ({ k: 'advance', ms: 60_000 }) as const);

/**
 * A scenario of a rollout as this build starts one: never-stuck, machine-v2, alert-sinks-v2, fleet-controls,
 * fleet-queue-alerts and pause-holds-advance.
 */
export function currentScenario(plan: PlanSpec, over: Partial<Scenario> = {}): Scenario {
  return {
    plan,
    events: [],
    neverStuck: true,
    machineV2: true,
    alertsV2: true,
    fleet: true,
    queueAlerts: true,
    pauseHolds: true,
    ...over,
  };
}

/**
 * A rollout machine as this build starts one (the flags of {@link currentScenario}), not running, on a simulated
 * port at Monday 10:00 UTC: for tests that hand it messages one at a time and read its status or its alerts.
 */
export function currentMachine(spec: PlanSpec, port = new SimPort(MONDAY_10)): RolloutMachine {
  const plan = planOf(spec);
  if (!plan) throw new Error('invalid plan');
  return new RolloutMachine(
    {
      ...initialState(),
      neverStuck: true,
      machineV2: true,
      fleet: true,
      queueAlerts: true,
      pauseHolds: true,
      touched: {},
    },
    simContext(plan),
    port,
  );
}

/** The context of a rollout of app `app` in namespace `ns`, as this build starts one (or without alert-sinks-v2). */
export function simContext(plan: Plan, alertsV2 = true): RolloutContext {
  return {
    plan,
    target: { app: 'app', namespace: 'ns' },
    version: 'v2',
    requestedBy: 'ci',
    cli: 'canary',
    workflowId: 'canary.ns.app',
    firstRunId: 'r1',
    temporalNamespace: 'default',
    flags: { routingLifecycle: true, judgeV2: false, alertsV2 },
    historyLimit: 4000,
  };
}

/** Three stages (10 %, 50 % for 10 minutes each, 100 % for 5), an error-rate check every minute, no cleanup delay. */
export const THREE_STAGES = {
  analysis: { interval: '1m', checks: [{ name: 'error-rate', metric: 'error-rate', max: 0.05 }] },
  stages: [
    { weight: 10, hold: '10m' },
    { weight: 50, hold: '10m' },
    { weight: 100, hold: '5m' },
  ],
  promotion: { cleanupDelay: '0s' },
} as unknown as PlanSpec;

/** Drives one scenario to its end (or MAX_STEPS), checking every invariant on the way. */
export async function runScenario(sc: Scenario): Promise<RunReport> {
  const plan = planOf(sc.plan);
  if (!plan) throw new Error('invalid plan');
  const violations: string[] = [];
  const fail = (what: string) => {
    if (violations.length < 5) violations.push(what);
  };
  const START = MONDAY_10 + (sc.startAfterMs ?? 0);
  const port = new SimPort(START);
  const fleetFreezes = new Map(Object.entries(sc.fleets ?? {}));
  for (const id of fleetFreezes.keys()) port.fleets.add(id);
  if (sc.continueAfterMs !== undefined) port.continueAsNewAt = START + sc.continueAfterMs;
  let metric: number | null = 0;
  let failNext = false;
  let driftNext = false;
  let rollbackSeen = false;
  let abortAccepted = false;
  let machine!: RolloutMachine;
  let runs = 0;
  // Hold time credited to each stage: only while entered, progressing, not paused (the simulation's own clock), and
  // from machine-v2 on only inside the deployment windows (the windows the step after the hold obeys).
  const credit = new Map<number, number>();
  let lastStage = 0;
  let lastWeightAfterRollback: number | undefined;
  /** The highest weight set while not paused: a paused rollout (pause-holds-advance) sets none above it. */
  let highestUnpaused = 0;
  const loads: RunReport['loads'] = [];

  const state0 = (): RolloutState => ({
    ...initialState(),
    neverStuck: sc.neverStuck,
    planRules: { strict: true, limits: true },
    ...(sc.neverStuck ? { touched: {} } : {}),
    ...(sc.machineV2 ? { machineV2: true } : {}),
    ...(sc.fleet ? { fleet: true } : {}),
    ...(sc.queueAlerts ? { queueAlerts: true } : {}),
    ...(sc.pauseHolds ? { pauseHolds: true } : {}),
  });
  const start = (s: RolloutState): Promise<RolloutResult> => {
    runs++;
    machine = new RolloutMachine(
      s,
      {
        plan,
        target: { app: 'app', namespace: 'ns', ...sc.target },
        version: 'v2',
        requestedBy: 'ci',
        cli: 'canary',
        workflowId: 'canary-ns-app',
        firstRunId: 'run-1',
        temporalNamespace: 'default',
        flags: { routingLifecycle: true, judgeV2: plan.analysis.rules !== undefined, alertsV2: sc.alertsV2 },
        historyLimit: 4000,
      },
      port,
    );
    return runRollout(machine);
  };

  port.onCommand = (c) => {
    const s = machine.s;
    const advancing =
      c.step === 'prepareCanary' ||
      c.step === 'promoteStable' ||
      (c.step === 'setCanaryWeight' &&
        /^(stage \d+\/|promotion)/.test(c.summary) &&
        s.phase === 'progressing');
    // (A promotion under way is not undone by a freeze told after it began; no scenario freezes that late.)
    const promotes = c.step === 'promoteStable' || c.summary.startsWith('promotion');
    if (advancing && (promotes || !s.finalizing) && machine.frozen()) fail(`${c.summary} while frozen`);
    if (advancing && s.fleet && s.fleetAsked) fail(`${c.summary} before the fleet answered`);
    // From pause-holds-advance on, a paused rollout deploys no canary, enters no stage and does not promote; the
    // weight never rises (a step back's return to its stage's weight, decided by analysis, stays below the highest).
    const pausedHolds =
      sc.pauseHolds && s.pausedSince !== undefined && s.phase === 'progressing' && !s.finalizing;
    if (pausedHolds && (c.step === 'prepareCanary' || c.step === 'prepareRouting' || advancing))
      fail(`${c.summary} while paused by ${s.pausedBy}`);
    if (c.step === 'setCanaryWeight' && !rollbackSeen) {
      const weight = (c.args[0] as { weight: number }).weight;
      if (pausedHolds && weight > highestUnpaused)
        fail(`weight ${weight}% set while paused (the highest before: ${highestUnpaused}%): ${c.summary}`);
      if (s.pausedSince === undefined) highestUnpaused = Math.max(highestUnpaused, weight);
    }
    if (c.step === 'setCanaryWeight') {
      const weight = (c.args[0] as { weight: number }).weight;
      const stageWeight = plan.stages[s.stageIndex].weight;
      if (rollbackSeen && weight > 0) fail(`weight ${weight}% set after the rollback started`);
      if (rollbackSeen) lastWeightAfterRollback = weight;
      if (
        !s.finalizing &&
        !c.summary.startsWith('promotion') &&
        s.phase === 'progressing' &&
        weight > stageWeight
      ) {
        fail(`shift to ${weight}% in stage ${s.stageIndex + 1} (${stageWeight}%): ${c.summary}`);
      }
      if (c.summary.startsWith('step back')) {
        if (s.stageIndex < 1 || weight < plan.stages[0].weight)
          fail(`step back to ${weight}% below the first stage`);
      }
      if (/^stage \d+\//.test(c.summary) && s.phase === 'progressing' && !s.promoteRequest) {
        // A stage is entered only through its gate and inside the deployment windows.
        const gate = plan.stages[s.stageIndex].gate;
        const passed =
          s.approvedStage === s.stageIndex ||
          s.approvals.some(
            (a) => a.kind === 'timeout-proceed' && a.stage === s.stageIndex + 1 && !a.promotion,
          );
        if (gate.type === 'approval' && !passed)
          fail(`stage ${s.stageIndex + 1} entered while its gate waits`);
        // (Before machine-v2 a pause that outlasted the windows' opening let a stage in after they closed again.)
        const isPromotion = s.stageIndex === plan.stages.length - 1;
        if (sc.machineV2 && plan.windows && !mayAdvance(plan.windows, port.now(), isPromotion)) {
          fail(`stage ${s.stageIndex + 1} entered outside the deployment windows`);
        }
      }
    }
    const promoting =
      c.step === 'promoteStable' ||
      (c.step === 'setCanaryWeight' &&
        c.summary.startsWith('promotion') &&
        (c.args[0] as { weight: number }).weight === 100);
    if (promoting) {
      // A person's promote request is their answer to every gate it skips (its validator holds it to their policies).
      if (machine.gateWaiting() && !s.promoteRequest) fail(`promotion while ${machine.gateName()} waits`);
      if (!s.promoteRequest && plan.promotion.gate && s.promotionGate !== 'passed')
        fail('promotion before its gate passed');
    }
  };
  const phases: RunReport['phases'] = [];
  port.onPublish = () => {
    const s = machine.s;
    const phase = machine.phase();
    if (phases[phases.length - 1]?.phase !== phase) phases.push({ atMs: port.now() - START, phase });
    if (s.phase === 'rolling_back') rollbackSeen = true;
    if (s.stageIndex > lastStage && s.phase === 'progressing' && !s.finalizing && !s.promoteRequest) {
      const k = lastStage;
      const stage = plan.stages[k];
      const checks = plan.analysis.rules ? machine.stageChecks(k + 1) : plan.analysis.checks;
      const needsEvidence = plan.analysis.checks.length > 0 && (checks?.length ?? 0) > 0 && stage.holdMs > 0;
      const evidence = s.evidenceWaivedStage === k || (s.passedInStage && s.lastVerdict === 'pass');
      if (needsEvidence && !evidence) fail(`stage ${k + 1} advanced without a passing analysis`);
      if ((credit.get(k) ?? 0) < stage.holdMs) {
        fail(`stage ${k + 1} advanced after ${credit.get(k) ?? 0} ms of its ${stage.holdMs} ms hold`);
      }
    }
    lastStage = Math.max(lastStage, s.stageIndex);
  };

  const advance = (t: number) => {
    const s = machine.s;
    const counts =
      s.phase === 'progressing' &&
      s.stageEntered &&
      s.pausedSince === undefined &&
      !s.finalizing &&
      s.promotionGate === undefined;
    if (counts && t > port.clock) {
      const leadsToPromotion = s.stageIndex + 1 >= plan.stages.length - 1;
      const served = sc.machineV2
        ? openMsBetween(plan.windows, port.clock, t, leadsToPromotion)
        : t - port.clock;
      credit.set(s.stageIndex, (credit.get(s.stageIndex) ?? 0) + served);
    }
    port.advanceTo(t);
  };

  const answer = (p: PendingStep) => {
    const c = p.command;
    port.steps.splice(port.steps.indexOf(p), 1);
    if (sc.failSteps?.includes(c.step)) {
      p.reject(new Error(`${c.step} failed`));
      return;
    }
    if (failNext && c.step !== 'alertSinks') {
      failNext = false;
      p.reject(new Error(`${c.step} failed`));
      return;
    }
    const s = machine.s;
    switch (c.step) {
      case 'preflight':
        return p.resolve({ findings: [], tookMs: 5 });
      case 'alertSinks':
        return p.resolve(['log']);
      case 'prepareCanary':
        return p.resolve({ stableVersion: 'v1' });
      case 'setCanaryWeight': {
        const weight = (c.args[0] as { weight: number }).weight;
        return p.resolve({ previous: s.weight, current: weight });
      }
      case 'promoteStable':
        return p.resolve({ stableLabel: 'v2' });
      case 'runHook': {
        const input = c.args[0] as HookRunInput;
        return p.resolve(sc.hookAnswer?.(input) ?? { result: 'ok', detail: 'HTTP 200', tookMs: 3 });
      }
      case 'ensureStableCapacity':
        return p.resolve(undefined);
      case 'startLoad': {
        const input = c.args[0] as { stage: number; key: string };
        const job = `load-${input.stage}-${input.key.split('/').pop()}`;
        loads.push({ atMs: port.clock - START, op: 'start', job, weight: s.weight });
        return p.resolve({ job, adopted: false });
      }
      case 'stopLoad':
        loads.push({
          atMs: port.clock - START,
          op: 'stop',
          job: (c.args[0] as { job: string }).job,
          weight: s.weight,
        });
        return p.resolve({});
      case 'measureChecks': {
        const rules = (c.args[0] as { checks: Array<{ name: string }> }).checks;
        const measurements = Object.fromEntries(rules.map((r) => [r.name, { value: metric }]));
        const live = driftNext ? Math.min(100, (s.achievedWeight ?? s.weight) + 3) : undefined;
        driftNext = false;
        return p.resolve({ measurements, ...(live !== undefined ? { liveWeight: live } : {}) });
      }
      case 'runAnalysis': {
        const checks = (c.args[0] as { checks: Array<{ name: string }> }).checks;
        const live = driftNext ? Math.min(100, (s.achievedWeight ?? s.weight) + 3) : undefined;
        driftNext = false;
        return p.resolve({
          measurements: checks.map((ch) => ({ name: ch.name, value: metric })),
          ...(live !== undefined ? { liveWeight: live } : {}),
        });
      }
      default:
        return p.resolve(undefined);
    }
  };

  const send = (m: Message, who: string) => {
    const s = machine.s;
    const now = port.now();
    switch (m) {
      case 'pause':
        if (!machine.pauseRefusal()) {
          machine.pause({ identity: who });
          void machine.pausedAlert({ identity: who });
        }
        return;
      case 'resume':
        if (!machine.resumeRefusal()) {
          machine.resume({ identity: who });
          void machine.resumedAlert({ identity: who });
        }
        return;
      case 'abort': {
        const before = s.abortRequest;
        const acceptable = s.phase === 'progressing' && !s.finalizing;
        machine.abort({ identity: who, reason: 'property test' });
        if (!before && s.abortRequest && (acceptable || s.abortRequest.back)) abortAccepted = true;
        return;
      }
      case 'approve':
        if (!machine.approveRefusal({ identity: who }, now)) machine.approve({ identity: who });
        return;
      case 'promote':
        if (!machine.promoteRefusal({ identity: who }, now)) machine.promote({ identity: who });
        return;
      case 'endSoak':
        if (!machine.promoteRefusal({ identity: who, endSoak: true }, now))
          machine.promote({ identity: who, endSoak: true });
        return;
      case 'resolve': {
        const req = { identity: who, reason: 'moved by hand', confirmTrafficRestored: true };
        if (!machine.resolveRefusal(req)) machine.resolve(req);
        return;
      }
    }
  };

  let finished: { result?: RolloutResult; outcome: RunReport['outcome'] } | undefined;
  const launch = (s: RolloutState) => {
    start(s).then(
      (result) => (finished = { result, outcome: 'promoted' }),
      (err: unknown) => {
        if (err instanceof SimContinueAsNew) {
          port.continueAsNewAt = Infinity;
          // The next run reads the carried state as a recorded run would: through JSON and the migration.
          launch(migrateCarried(err.carried)!);
        } else if (err instanceof SimOutcome) finished = { result: err.result, outcome: err.outcome };
        else finished = { outcome: 'failed' };
      },
    );
  };
  launch(state0());

  let steps = 0;
  let next = 0;
  while (!finished && steps < (sc.maxSteps ?? MAX_STEPS)) {
    steps++;
    await settle();
    if (finished) break;
    if (port.wakeOne()) continue;
    const asked = machine.s.fleetAsked?.[0];
    if (asked !== undefined) {
      // A fleet workflow answers its ask with its scope's freeze.
      const freeze = fleetFreezes.get(asked);
      const slot = machine.s.slotAsked === asked ? sc.slots?.[asked] : undefined;
      void machine.fleetNotice({ fleet: asked, ...(freeze ? { freeze } : {}), ...(slot ? { slot } : {}) });
      continue;
    }
    if (port.steps.length > 0) {
      const p = port.steps[0];
      let own: unknown;
      try {
        own = sc.stepAnswer ? await sc.stepAnswer(p.command, machine) : undefined;
      } catch (err) {
        // A step answer that throws fails this attempt of the step, as an activity's failure does.
        port.steps.splice(port.steps.indexOf(p), 1);
        p.reject(err instanceof Error ? err : new Error(String(err)));
        continue;
      }
      if (own === undefined) answer(p);
      else if (port.steps.includes(p)) {
        port.steps.splice(port.steps.indexOf(p), 1);
        p.resolve(own);
      }
      continue;
    }
    const e = sc.events[next];
    if (e) {
      next++;
      if (e.k === 'advance') {
        const d = port.nextDeadline();
        advance(Math.min(port.clock + e.ms, d ?? Infinity));
      } else if (e.k === 'metric') metric = e.value;
      else if (e.k === 'fail') failNext = true;
      else if (e.k === 'drift') driftNext = true;
      else if (e.k === 'fleet') {
        fleetFreezes.set(e.fleet, e.freeze);
        port.fleets.add(e.fleet);
        void machine.fleetNotice({
          fleet: e.fleet,
          ...(e.freeze ? { freeze: e.freeze } : {}),
          ...(e.slot ? { slot: e.slot } : {}),
        });
      } else send(e.m, e.who);
      continue;
    }
    // The events are spent: healthy metrics, and whatever a patient person would do to let it end.
    metric = 0;
    failNext = false;
    const d = port.nextDeadline();
    const s = machine.s;
    if (s.pausedSince !== undefined) send('resume', 'carol');
    else if (
      (machine.gateWaiting() || s.evidenceQuestion || s.hookQuestion) &&
      !machine.approveRefusal({ identity: 'carol' }, port.now())
    ) {
      send('approve', 'carol');
    } else if (
      s.retrying &&
      machine.resolveRefusal({ identity: 'carol', reason: 'x', confirmTrafficRestored: true }) === undefined
    )
      send('resolve', 'carol');
    else if (d !== undefined) advance(d);
    else send('abort', 'carol');
  }
  const s = machine.s;
  const outcome = finished?.outcome ?? 'unfinished';
  if (rollbackSeen && finished) {
    if (outcome !== 'rolled_back') fail(`a rollback ended ${outcome}`);
    if (s.weight !== 0) fail(`rolled back with the weight at ${s.weight}%`);
    if (!s.resolved && lastWeightAfterRollback !== undefined && lastWeightAfterRollback !== 0)
      fail('the last shift of a rollback was not to 0%');
  }
  if (abortAccepted && finished && outcome !== 'rolled_back') fail(`an accepted abort ended ${outcome}`);
  // From machine-v2 on a rollout ends promoted, rolled back or not started: a step failing past its retries is
  // caught wherever it happens (after promotion, a cleanup that fails leaves the rollout promoted, with a warning).
  if (sc.machineV2 && outcome === 'failed') fail('the workflow failed');
  if (outcome === 'promoted' && (s.weight !== 0 || s.phase !== 'promoted'))
    fail(`promoted with phase ${s.phase} at ${s.weight}%`);
  const stoodAt = finished
    ? undefined
    : `${machine.phase()} stage ${s.stageIndex + 1} at ${s.weight}% ${new Date(port.clock).toISOString()}: ${port.waiting().join(', ')}`;
  const shifts = port.commands
    .filter((r) => r.command.step === 'setCanaryWeight')
    .map((r) => ({
      atMs: r.at - START,
      weight: (r.command.args[0] as { weight: number }).weight,
      why: r.command.summary,
      ...((r.command.args[0] as { mirror?: unknown }).mirror
        ? { mirror: (r.command.args[0] as { mirror?: unknown }).mirror }
        : {}),
    }));
  const hooks = port.commands
    .filter((r) => r.command.step === 'runHook')
    .map((r) => {
      const i = r.command.args[0] as HookRunInput;
      return {
        atMs: r.at - START,
        run: `${i.point} ${i.stage} ${i.hook.name}#${i.attempt}`,
        weight: i.weight,
      };
    });
  return {
    hooks,
    loads,
    commands: port.commands.map((r) => ({
      atMs: r.at - START,
      step: r.command.step,
      summary: r.command.summary,
      policy: r.command.policy,
    })),
    fleetReleases: port.fleetReleases.map((r) => ({ atMs: r.at - START, fleet: r.fleet })),
    ...(finished?.result ? { result: finished.result } : {}),
    outcome,
    steps,
    runs,
    violations,
    shifts,
    phases,
    alerts: port.alerts.map((a) => ({ kind: a.kind, message: a.message })),
    events: port.alerts,
    state: s,
    ...(stoodAt ? { stoodAt } : {}),
  };
}
