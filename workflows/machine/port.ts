// The commands the rollout machine gives the outside world, and how their results come back. The workflow carries
// them out with Temporal (workflows/driver.ts); tests and the backtest carry them out on a simulated clock. Nothing
// here knows about Temporal: cancellation, timers and activities are the port's business.
import type { RolloutActivities } from '../../activities/rollout-activities';
import type { RolloutAlert } from '../alerts/events';
import type { FleetAsk } from '../fleet-model';
import type { RolloutResult } from '../types';
import type { RolloutState } from './state';

/** How hard a step tries (the driver maps each to its retry policy and timeouts). */
export type StepPolicy =
  /** An ordinary step: a few attempts over a few minutes. */
  | 'step'
  /** A round of analysis: quick, heartbeating. */
  | 'analysis'
  /** Traffic back to stable before routing lifecycles: never gives up. */
  | 'rollback'
  /** A step that must not give up, run in batches of attempts so status can say why it is stuck. */
  | 'persistent'
  /**
   * The rollback's first shift back to stable, run by the worker at once (a local activity: no round trip through
   * the server before traffic moves); one attempt, then the persistent path.
   */
  | 'rollbackFirst'
  /** The read-only preflight: two attempts. */
  | 'preflight'
  /** A look-up that may fail without consequence. */
  | 'lookup'
  /** An alert sent the way rollouts before alert-sinks-v2 send them. */
  | 'alert'
  /** One of the plan's hooks: its own timeout and retries (StepCommand.hook). */
  | 'hook';

export type StepName = keyof RolloutActivities;
export type StepResult<K extends StepName> = Awaited<ReturnType<RolloutActivities[K]>>;

/** One side effect: an activity, how hard it tries, and the summary the Web UI shows for it. */
export interface StepCommand<K extends StepName> {
  policy: StepPolicy;
  step: K;
  summary: string;
  args: Parameters<RolloutActivities[K]>;
  /** The step waits for a workload: it gets the workload's progress deadline. */
  workloadWait?: boolean;
  /** A hook's own limits (policy `hook`): how long one attempt may take, how many attempts, heartbeats. */
  hook?: { timeoutMs: number; attempts: number; heartbeat: boolean };
}

/** A region of steps and waits that a cancel (an abort, a resolve) ends at once. */
export interface Scope {
  run<T>(fn: () => Promise<T>): Promise<T>;
  cancel(): void;
}

/** What the Web UI lists rollouts by; `first` only with the first upsert of a run. */
export interface SearchAttributes {
  first?: { app: string; version: string };
  phase: string;
  stage: number;
  weight: number;
}

export type LatePatch =
  /** A rollback caused by a cancel names who requested it. */
  | 'cancel-identity'
  /** A rolled-back rollout ends as a failed workflow. */
  | 'rollback-fails'
  /** The rollback's first shift back to stable runs as a local activity (policy `rollbackFirst`). */
  | 'rollback-local';

export interface RolloutPort {
  /**
   * Asks each fleet workflow (by id) whether the rollout may advance; resolves with those the ask reached (the others
   * do not run: nothing is frozen there). Their answers come back as messages (RolloutMachine.fleetNotice).
   */
  askFleet(fleetIds: string[], ask: FleetAsk): Promise<string[]>;
  /** Gives the rollout's slot (or its place in the queue) back to its namespace's fleet workflow, at its end. */
  releaseFleetSlot(fleetId: string, workflowId: string): Promise<void>;
  /** The rollout's clock (workflow time). */
  now(): number;
  /** Carries out one step; its result (or failure) comes back as the promise's. */
  run<K extends StepName>(c: StepCommand<K>): Promise<StepResult<K>>;
  /** Waits until `done()` holds or, with a timeout, until it passes; true when `done()` held. */
  waitUntil(done: () => boolean, timeoutMs?: number, summary?: string): Promise<boolean | void>;
  /** Waits for a time (used by rollouts from before never-stuck between batches of a failing step). */
  sleep(ms: number): Promise<void>;
  /** Waits until every message handler has finished. */
  handlersFinished(): Promise<void>;
  scope(): Scope;
  nonCancellable<T>(fn: () => Promise<T>): Promise<T>;
  isCancellation(err: unknown): boolean;
  isContinueAsNew(err: unknown): boolean;
  /** Starts delivering one alert event to one sink, after that sink's earlier events; never awaited. */
  deliver(sink: string, e: RolloutAlert): void;
  /** Deliveries started and not yet finished. */
  pendingDeliveries(): number;
  publish(attributes: SearchAttributes | undefined, details: string): void;
  /** Whether the history is long enough to continue as new. */
  continueAsNewDue(historyLimit: number): boolean;
  continueAsNew(carried: RolloutState): Promise<never>;
  /** Behaviour decided where a run first reaches it (its marker's place in history is fixed). */
  patched(which: LatePatch): boolean;
  /** The failure a rollout that did not promote ends with (`why` after the outcome's prefix), carrying its result. */
  outcome(outcome: 'rolled_back' | 'not_started', why: string, result: RolloutResult): Error;
  log: {
    info(message: string, attrs?: Record<string, unknown>): void;
    warn(message: string, attrs?: Record<string, unknown>): void;
  };
}
