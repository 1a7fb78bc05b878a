// The rollout machine on a simulated clock: a port that carries out no side effect, records every command, and lets
// its runner decide what each step answers and when time moves. Property tests drive it with random events; nothing
// here waits for real time. Deterministic: no timers, no I/O, the clock moves only when the runner says.
import type { RolloutAlert } from '../alerts/events';
import type { RolloutResult } from '../types';
import type {
  LatePatch,
  RolloutPort,
  Scope,
  SearchAttributes,
  StepCommand,
  StepName,
  StepResult,
} from './port';
import type { RolloutState } from './state';

/** How a simulated wait or step ends when its scope is cancelled. */
export class SimCancelled extends Error {
  constructor() {
    super('cancelled');
  }
}

/** What a simulated continue-as-new throws: the runner starts the next run from `carried`. */
export class SimContinueAsNew extends Error {
  constructor(readonly carried: RolloutState) {
    super('continue as new');
  }
}

/** A rollout's simulated end that is not a promotion. */
export class SimOutcome extends Error {
  constructor(
    readonly outcome: 'rolled_back' | 'not_started',
    readonly result: RolloutResult,
  ) {
    super(`${outcome}: ${result.reason ?? ''}`);
  }
}

class SimScope implements Scope {
  cancelled = false;
  constructor(
    private readonly sim: SimPort,
    readonly cancellable: boolean,
  ) {}
  run<T>(fn: () => Promise<T>): Promise<T> {
    return this.sim.within(this, fn);
  }
  cancel(): void {
    if (!this.cancellable || this.cancelled) return;
    this.cancelled = true;
    this.sim.cancelScope(this);
  }
}

interface Pending {
  scope: SimScope | undefined;
  reject(err: Error): void;
}
export interface PendingStep extends Pending {
  command: StepCommand<StepName>;
  resolve(value: unknown): void;
}
interface Waiter extends Pending {
  done: () => boolean;
  deadline?: number;
  summary?: string;
  resolve(value: boolean): void;
}

/** A command as the simulation saw it, with the time it was given. */
export interface SimRecord {
  at: number;
  command: StepCommand<StepName>;
}

export class SimPort implements RolloutPort {
  readonly steps: PendingStep[] = [];
  private waiters: Waiter[] = [];
  readonly commands: SimRecord[] = [];
  readonly alerts: RolloutAlert[] = [];
  readonly published: SearchAttributes[] = [];
  /** Called with every command when it is given, before anything answers it (invariant checks). */
  onCommand: (c: StepCommand<StepName>) => void = () => undefined;
  /** Called after every publish: the machine's state is consistent at each one. */
  onPublish: () => void = () => undefined;
  /** Scopes whose run has not settled, innermost last: a step or wait belongs to the innermost. */
  private open: SimScope[] = [];
  continueAsNewAt = Infinity;
  /** The fleet workflows that run (by id): an ask reaches them, and the runner answers it. */
  readonly fleets = new Set<string>();
  /** Every ask the machine sent a fleet workflow, in order. */
  readonly fleetAsks: Array<{ at: number; fleet: string }> = [];

  constructor(public clock: number) {}

  now(): number {
    return this.clock;
  }

  /** Runs `fn` inside `scope` until its promise settles. */
  within<T>(scope: SimScope, fn: () => Promise<T>): Promise<T> {
    this.open.push(scope);
    const close = () => {
      this.open = this.open.filter((s) => s !== scope);
    };
    return fn().then(
      (v) => {
        close();
        return v;
      },
      (err: unknown) => {
        close();
        throw err;
      },
    );
  }

  private current(): SimScope | undefined {
    return this.open[this.open.length - 1];
  }

  cancelScope(scope: SimScope): void {
    const hit = (p: Pending) => p.scope === scope;
    for (const p of [...this.steps.filter(hit), ...this.waiters.filter(hit)]) p.reject(new SimCancelled());
    this.waiters = this.waiters.filter((w) => !hit(w));
    this.steps.splice(0, this.steps.length, ...this.steps.filter((p) => !hit(p)));
  }

  run<K extends StepName>(command: StepCommand<K>): Promise<StepResult<K>> {
    this.commands.push({ at: this.clock, command: command as StepCommand<StepName> });
    this.onCommand(command as StepCommand<StepName>);
    const scope = this.current();
    if (scope?.cancelled) return Promise.reject(new SimCancelled());
    return new Promise<StepResult<K>>((resolve, reject) => {
      this.steps.push({
        command: command as StepCommand<StepName>,
        scope,
        resolve: resolve as (v: unknown) => void,
        reject,
      });
    });
  }

  waitUntil(done: () => boolean, timeoutMs?: number, summary?: string): Promise<boolean> {
    const scope = this.current();
    if (scope?.cancelled) return Promise.reject(new SimCancelled());
    if (done()) return Promise.resolve(true);
    return new Promise<boolean>((resolve, reject) => {
      this.waiters.push({
        done,
        ...(timeoutMs !== undefined ? { deadline: this.clock + timeoutMs } : {}),
        ...(summary !== undefined ? { summary } : {}),
        scope,
        resolve,
        reject,
      });
    });
  }

  askFleet(fleetIds: string[]): Promise<string[]> {
    const reached = fleetIds.filter((id) => this.fleets.has(id));
    reached.forEach((fleet) => this.fleetAsks.push({ at: this.clock, fleet }));
    return Promise.resolve(reached);
  }

  /** Every slot the machine gave back, in order. */
  readonly fleetReleases: Array<{ at: number; fleet: string }> = [];

  releaseFleetSlot(fleetId: string): Promise<void> {
    this.fleetReleases.push({ at: this.clock, fleet: fleetId });
    return Promise.resolve();
  }

  sleep(ms: number): Promise<void> {
    return this.waitUntil(() => false, ms).then(() => undefined);
  }

  handlersFinished(): Promise<void> {
    return Promise.resolve();
  }

  scope(): Scope {
    return new SimScope(this, true);
  }

  nonCancellable<T>(fn: () => Promise<T>): Promise<T> {
    return new SimScope(this, false).run(fn);
  }

  isCancellation(err: unknown): boolean {
    return err instanceof SimCancelled;
  }

  isContinueAsNew(err: unknown): boolean {
    return err instanceof SimContinueAsNew;
  }

  deliver(_sink: string, e: RolloutAlert): void {
    this.alerts.push(e);
  }

  pendingDeliveries(): number {
    return 0;
  }

  publish(attributes: SearchAttributes | undefined): void {
    if (attributes) this.published.push(attributes);
    this.onPublish();
  }

  continueAsNewDue(): boolean {
    return this.clock >= this.continueAsNewAt;
  }

  continueAsNew(carried: RolloutState): Promise<never> {
    return Promise.reject(new SimContinueAsNew(JSON.parse(JSON.stringify(carried)) as RolloutState));
  }

  patched(_which: LatePatch): boolean {
    return true;
  }

  outcome(outcome: 'rolled_back' | 'not_started', _why: string, result: RolloutResult): Error {
    return new SimOutcome(outcome, result);
  }

  readonly log = { info: () => undefined, warn: () => undefined };

  // ---------- for the runner ----------

  /** Ends the first wait whose condition holds; false when none does. */
  wakeOne(): boolean {
    const w = this.waiters.find((x) => x.done());
    if (!w) return false;
    this.waiters = this.waiters.filter((x) => x !== w);
    w.resolve(true);
    return true;
  }

  /** The earliest instant a wait times out, if any wait has a timeout. */
  nextDeadline(): number | undefined {
    const ds = this.waiters.map((w) => w.deadline).filter((d): d is number => d !== undefined);
    return ds.length > 0 ? Math.min(...ds) : undefined;
  }

  /** Moves the clock to `t` (never back), ending the waits whose timeouts have passed, earliest first. */
  advanceTo(t: number): void {
    this.clock = Math.max(this.clock, t);
    const due = this.waiters
      .filter((w) => w.deadline !== undefined && w.deadline <= this.clock)
      .sort((a, b) => a.deadline! - b.deadline!);
    this.waiters = this.waiters.filter((w) => !due.includes(w));
    for (const w of due) w.resolve(false);
  }

  /** What waits, for a report: each wait's summary and deadline, each step's summary. */
  waiting(): string[] {
    return [
      ...this.waiters.map(
        (w) =>
          `${w.summary ?? 'a message'}${w.deadline !== undefined ? ` until ${new Date(w.deadline).toISOString()}` : ''}`,
      ),
      ...this.steps.map((p) => p.command.summary),
    ];
  }

  /** Whether anything waits at all (a step, a wait). */
  idle(): boolean {
    return this.steps.length === 0 && this.waiters.length === 0;
  }
}
