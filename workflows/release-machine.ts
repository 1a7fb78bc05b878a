// The release as a machine: what a release knows (its members and their states, its waves, a hold, an abort, its
// clusters' workers) and every decision it takes, with no Temporal in it. Messages (a member's progress, a person's
// abort, continue, pause or resume, the clusters' workers) are transitions that change the state and return the
// commands to carry out; the walk asks `next()` what to do and the workflow (workflows/release.ts) carries it out:
// starting members' rollouts, approving their promotion gates, signalling them, alerting, waiting.
//
// The order of the commands is the order the workflow performed these effects before they were data, and recorded
// releases replay against it (test/replay, the release-* fixtures): change it only behind a patch.
import { buildRolloutAlert, type RolloutAlert } from './alerts/events';
import type { RolloutInput } from './api';
import {
  releaseIdentity,
  type ClusterWorkersReport,
  type MemberProgress,
  type MemberState,
  type ReleaseClusterStatus,
  type ReleaseInput,
  type ReleaseMemberInput,
  type ReleaseMemberStatus,
  type ReleaseResult,
  type ReleaseStatus,
} from './release-model';

/** A member as the release keeps it: its status, its spec, and whether the release asked it to abort. */
export interface ReleaseMember extends ReleaseMemberStatus {
  spec: ReleaseMemberInput;
  /** The release asked it to abort. */
  aborted?: boolean;
}

export const TERMINAL: MemberState[] = ['promoted', 'rolled_back', 'not_started', 'skipped'];
const FAILED: MemberState[] = ['rolling_back', 'rolled_back', 'not_started'];

/** Where the release runs: what its alerts and its clusters' names need from the workflow. */
export interface ReleasePlace {
  firstRunId: string;
  temporalNamespace: string;
  /** The release's own task queue (a cluster's queue is `<it>.<cluster>`). */
  taskQueue: string;
}

/** What a transition or a decision asks the workflow to do, in order. */
export type ReleaseCommand =
  /** A signal to a started member's rollout, sent and not awaited. */
  | { type: 'pause' | 'resume'; member: string; identity: string; reason?: string }
  /** An alert event, delivered to each sink by default routing (never awaited). */
  | { type: 'alert'; event: RolloutAlert }
  | { type: 'log'; level: 'info' | 'warn'; message: string; attrs: Record<string, unknown> };

/** What the walk does next (see ReleaseMachine.next). */
export type ReleaseStep =
  /** A person answered the hold: carry out the commands (the others resume) and ask again. */
  | { type: 'goOn'; commands: ReleaseCommand[] }
  /** Held: carry out the commands (the hold's pauses, when it begins) and wait for a change. */
  | { type: 'held'; commands: ReleaseCommand[] }
  /** The release ends: promoted when `reason` is unset, rolled back otherwise (see reason/cause). */
  | { type: 'end' }
  /** Start the members that may start (eligible), promote together when due, then wait for a change or a bake. */
  | { type: 'advance' };

export class ReleaseMachine {
  readonly name: string;
  readonly identity: string;
  readonly members: ReleaseMember[];
  private readonly byId: Map<string, ReleaseMember>;
  private readonly started = new Set<string>();
  private readonly waveReady = new Map<number, number>();
  phase: ReleaseStatus['phase'] = 'progressing';
  reason: string | undefined;
  cause: string | undefined;
  abortRequest: { identity: string; reason: string } | undefined;
  /** Counts every change a waiting walk must see. */
  changes = 0;
  private approved = false;
  /** onFailure: rollback-member: members the release goes on without, and the hold while a person decides. */
  readonly dropped = new Set<string>();
  private held: { question: string } | undefined;
  private continued: { identity: string; comment?: string } | undefined;
  /** The clusters' task queues the release watches (none without clusters or before RELEASE_WORKERS_PATCH). */
  readonly clusterQueues: string[];
  readonly watch: boolean;
  private readonly clusters: Map<string, ReleaseClusterStatus>;
  /** Members a stuck alert went out for, until their cluster's worker is back. */
  private readonly stuck = new Set<string>();
  private alertSeq = 0;
  private readonly cli: string;

  constructor(
    readonly input: ReleaseInput,
    private readonly place: ReleasePlace,
    /** Whether the release watches its clusters' workers (RELEASE_WORKERS_PATCH), asked only when it has clusters. */
    watchWorkers: () => boolean,
  ) {
    this.name = input.release;
    this.identity = releaseIdentity(this.name);
    this.members = input.members.map((spec) => ({
      id: spec.id,
      wave: spec.wave,
      after: spec.after,
      workflowId: spec.workflowId,
      state: 'pending',
      stages: Array.isArray(spec.input.plan.stages) ? spec.input.plan.stages.length : 0,
      spec,
    }));
    this.byId = new Map(this.members.map((m) => [m.id, m]));
    this.clusterQueues = [...new Set(input.members.flatMap((m) => (m.taskQueue ? [m.taskQueue] : [])))];
    this.watch = this.clusterQueues.length > 0 && watchWorkers();
    this.clusters = new Map(
      this.watch
        ? this.clusterQueues.map((q) => [q, { cluster: this.clusterOf(q), taskQueue: q, workers: 'unknown' }])
        : [],
    );
    this.cli = input.members[0]?.input.cli ?? 'canary';
  }

  status(): ReleaseStatus {
    const { input, waveReady, held, dropped } = this;
    return {
      release: this.name,
      phase: this.phase,
      promotion: input.promotion,
      onFailure: input.onFailure,
      waves: input.waves.map((w) => ({
        ...w,
        ...(waveReady.has(w.wave) ? { readyAt: new Date(waveReady.get(w.wave)!).toISOString() } : {}),
        members: this.members.filter((m) => m.wave === w.wave).map((m) => m.id),
      })),
      members: this.members.map(({ spec: _spec, aborted: _aborted, ...m }) => m),
      ...(this.reason ? { reason: this.reason } : {}),
      ...(this.cause ? { cause: this.cause } : {}),
      ...(held ? { question: held.question } : {}),
      ...(dropped.size > 0 ? { dropped: [...dropped] } : {}),
      ...(this.watch ? { clusters: [...this.clusters.values()].map((c) => ({ ...c })) } : {}),
    };
  }

  // ---------- messages ----------

  /** A member's rollout says where it is (on every phase or stage change). */
  memberProgress(p: MemberProgress): void {
    const m = this.byId.get(p.member);
    if (!m || TERMINAL.includes(m.state)) return;
    m.phase = p.phase;
    m.stage = p.stage;
    m.weight = p.weight;
    if (p.reason) m.reason = p.reason;
    m.state = memberState(m, p.phase, p.atPromotionGate, this.input.promotion);
    this.changes++;
  }

  /** A person aborts the release: every member rolls back (the first abort counts). */
  abort(r: { identity: string; reason: string }): void {
    this.abortRequest ??= r;
    this.changes++;
  }

  /** A person answers the hold: the release goes on without the members that failed (only while held). */
  continueWithout(r: { identity: string; comment?: string }): void {
    if (!this.held) return;
    this.continued ??= r;
    this.changes++;
  }

  /** A person pauses the release: every running member pauses, as that person. */
  pause(r: { identity: string; reason?: string }): ReleaseCommand[] {
    return this.running().map((m) => ({
      type: 'pause' as const,
      member: m.id,
      identity: r.identity,
      reason: r.reason ?? `release ${this.name} paused`,
    }));
  }

  /** A person resumes the release; held (rollback-member), the members stay paused until a person answers. */
  resume(r: { identity: string }): ReleaseCommand[] {
    if (this.held) return [];
    return this.running().map((m) => ({ type: 'resume' as const, member: m.id, identity: r.identity }));
  }

  /** The watcher says which clusters' workers went or came back: the members there alert once, and resolve. */
  clusterWorkers(r: ClusterWorkersReport, now: number): ReleaseCommand[] {
    if (!this.watch) return [];
    const commands: ReleaseCommand[] = [];
    for (const q of r.queues) {
      const c = this.clusters.get(q.taskQueue);
      if (!c) continue;
      const was = c.workers;
      c.workers = q.serving ? 'serving' : 'gone';
      if (q.lastSeen) c.lastSeen = q.lastSeen;
      if (c.workers === 'gone' && was !== 'gone') {
        c.goneSince = r.at;
        commands.push({
          type: 'log',
          level: 'warn',
          message: 'a cluster has no worker',
          attrs: { cluster: c.cluster, taskQueue: c.taskQueue },
        });
      }
      if (c.workers === 'serving') delete c.goneSince;
    }
    commands.push(...this.tellStuck(now));
    this.changes++;
    return commands;
  }

  // ---------- members' rollouts ----------

  /** The rollout input of a member, as the release starts it. */
  childInput(m: ReleaseMember, releaseWorkflowId: string): RolloutInput {
    return {
      ...m.spec.input,
      release: {
        workflowId: releaseWorkflowId,
        member: m.id,
        ...(this.input.promotion === 'together'
          ? { together: { name: this.name, identity: this.identity } }
          : {}),
      },
    };
  }

  /** A member's rollout is being started (its state reads running from now). */
  starting(m: ReleaseMember): void {
    m.state = 'running';
  }

  /** Its rollout started: on a cluster whose worker is gone, it holds there, and says so. */
  startedChild(m: ReleaseMember, now: number): ReleaseCommand[] {
    this.started.add(m.id);
    return this.watch ? this.tellStuck(now) : [];
  }

  /** Another rollout of the target runs (started since the client checked): this member cannot start. */
  startFailed(m: ReleaseMember, why: string): void {
    m.state = 'not_started';
    m.reason = `could not start: ${why}`;
    this.changes++;
  }

  /** A member's rollout returned its result. */
  memberEnded(m: ReleaseMember, r: { outcome: string; finalWeight: number; reason?: string }): void {
    m.state = r.outcome === 'promoted' ? 'promoted' : (r.outcome as MemberState);
    m.weight = r.finalWeight;
    if (r.reason) m.reason = r.reason;
    this.changes++;
  }

  /**
   * A member's rollout failed: `typed` says whether the failure is one of the rollout's outcomes (rolled back, not
   * started) and which.
   */
  memberFailed(m: ReleaseMember, typed: 'not_started' | 'rolled_back' | undefined, message: string): void {
    m.state = typed === 'not_started' ? 'not_started' : 'rolled_back';
    m.weight = 0;
    m.reason ??= typed !== undefined ? message : `its workflow ended without an outcome: ${message}`;
    this.changes++;
  }

  // ---------- the walk ----------

  /** What the release does next, at `now` (waves that have just passed are marked ready first). */
  next(now: number): ReleaseStep {
    const { input, members, dropped } = this;
    for (const w of input.waves) {
      const inWave = members.filter((m) => m.wave === w.wave);
      const left = inWave.filter((m) => !dropped.has(m.id));
      if (!this.waveReady.has(w.wave) && inWave.length > 0 && left.every(passed))
        this.waveReady.set(w.wave, now);
    }
    const failed = members.find((m) => FAILED.includes(m.state) && !m.aborted && !dropped.has(m.id));
    if (!this.abortRequest && failed && input.onFailure === 'rollback-member') {
      // The failing member rolls back on its own; the others hold (paused) until a person decides.
      if (this.continued) return { type: 'goOn', commands: this.goOnWithout(this.continued) };
      return { type: 'held', commands: this.held ? [] : this.hold(failed) };
    }
    if (this.abortRequest || failed) {
      const abort = this.abortRequest;
      this.cause = abort ? undefined : failed!.id;
      this.reason = abort ? `aborted by ${abort.identity}: ${abort.reason}` : failedWhy(failed!);
      return { type: 'end' };
    }
    if (this.kept().every((m) => m.state === 'promoted')) return { type: 'end' };
    return { type: 'advance' };
  }

  /** Whether a member may start now: what it comes after has passed (or entered its stage), the wave before baked. */
  eligible(m: ReleaseMember, now: number): boolean {
    if (m.state !== 'pending') return false;
    const stageOf = m.spec.afterStage;
    if (
      !m.after.every((d) =>
        stageOf?.[d] !== undefined ? reached(this.byId.get(d)!, stageOf[d]) : passed(this.byId.get(d)!),
      )
    )
      return false;
    for (const w of this.input.waves) {
      if (w.wave >= m.wave) break;
      const at = this.waveReady.get(w.wave);
      if (at === undefined || now < at + w.bakeMs) return false;
    }
    return true;
  }

  /**
   * With promotion: together, once every kept member passed its last stage (and no cluster's worker is gone): the
   * members whose promotion gate the release approves now, all at once; undefined while that is not due.
   */
  promoteTogether(): ReleaseMember[] | undefined {
    if (
      this.input.promotion !== 'together' ||
      this.approved ||
      !this.kept().every((m) => m.state === 'ready') ||
      this.clusterGone()
    )
      return undefined;
    this.approved = true;
    this.phase = 'promoting';
    return this.kept();
  }

  /** The end of the next wave's bake still to come after `now`, if any (the walk wakes then). */
  nextBakeEnd(now: number): number | undefined {
    let next: number | undefined;
    for (const w of this.input.waves) {
      const at = this.waveReady.get(w.wave);
      if (at !== undefined && at + w.bakeMs > now) next = Math.min(next ?? Infinity, at + w.bakeMs);
    }
    return next;
  }

  /** A cancelled walk (the release's workflow was cancelled): it rolls back. */
  cancelled(): void {
    this.reason = 'the release was cancelled';
  }

  /** The members the release still goes on with (all of them unless a person continued without some). */
  kept(): ReleaseMember[] {
    return this.members.filter((m) => !this.dropped.has(m.id));
  }

  /** Whether the walk's end is a promotion (no reason, some member kept); if so, the phase says so from now. */
  endsPromoted(): boolean {
    if (this.reason !== undefined || this.kept().length === 0) return false;
    this.phase = 'promoted';
    return true;
  }

  promotedResult(): ReleaseResult {
    const dropped = [...this.dropped];
    return {
      outcome: 'promoted',
      ...(dropped.length > 0 ? { reason: `promoted without ${dropped.join(', ')}`, dropped } : {}),
      members: this.status().members,
    };
  }

  // ---------- the rollback ----------

  /**
   * One verdict: every member goes back, those that depend on others first. Returns the log line; members not
   * started yet are skipped.
   */
  beginRollback(): ReleaseCommand {
    this.reason ??= `every member rolled back (${[...this.dropped].join(', ')})`;
    this.phase = this.abortRequest ? 'aborted' : 'rolling_back';
    for (const m of this.members) if (m.state === 'pending') m.state = 'skipped';
    return { type: 'log', level: 'warn', message: 'release rolling back', attrs: { reason: this.reason } };
  }

  /**
   * The next members of `left` to go back together: those no remaining member comes after. They are marked as
   * asked to abort; the walk signals each and waits until every one reads weight 0 (or ended).
   */
  rollbackLevel(left: ReleaseMember[]): ReleaseMember[] {
    const level = left.filter((m) => !left.some((o) => o.after.includes(m.id)));
    for (const m of level) m.aborted = true;
    return level;
  }

  /** The reason a member's rollout is aborted with. */
  abortReason(): string {
    return `release ${this.name}: ${this.reason}`;
  }

  /** Whether a member asked to abort is back: ended, or at weight 0. */
  back(m: ReleaseMember): boolean {
    return TERMINAL.includes(m.state) || (m.aborted === true && m.weight === 0);
  }

  /** Every started member has ended. */
  allEnded(): boolean {
    return this.members.every((m) => !this.started.has(m.id) || TERMINAL.includes(m.state));
  }

  /** Every member is back: a release that was not aborted reads rolled back. */
  rolledBack(): void {
    if (this.phase === 'rolling_back') this.phase = 'rolled_back';
  }

  rolledBackResult(): ReleaseResult {
    return {
      outcome: 'rolled_back',
      reason: this.reason!,
      ...(this.cause ? { cause: this.cause } : {}),
      members: this.status().members,
    };
  }

  // ---------- inside ----------

  /** Members started and not ended. */
  running(): ReleaseMember[] {
    return this.members.filter((m) => this.started.has(m.id) && !TERMINAL.includes(m.state));
  }

  /** Pauses every running member, naming the member that failed, and asks a person (status: question). */
  private hold(failed: ReleaseMember): ReleaseCommand[] {
    const why = failedWhy(failed);
    this.held = {
      question:
        `${why}. The other members hold. \`${this.cli} release approve ${this.name}\` goes on without it (and the ` +
        `members after it); \`${this.cli} release abort ${this.name} --reason ...\` rolls every member back`,
    };
    this.phase = 'held';
    return [
      { type: 'log', level: 'warn', message: 'release held', attrs: { why } },
      ...this.running()
        .filter((x) => !FAILED.includes(x.state))
        .map((m) => ({
          type: 'pause' as const,
          member: m.id,
          identity: this.identity,
          reason: `release ${this.name} holds: ${why}`,
        })),
    ];
  }

  /** A person answered the hold: drop the failed members and those after them, resume the others. */
  private goOnWithout(by: { identity: string; comment?: string }): ReleaseCommand[] {
    const { members, dropped } = this;
    for (const m of members) if (FAILED.includes(m.state)) dropped.add(m.id);
    for (let grew = true; grew;) {
      grew = false;
      for (const m of members) {
        if (dropped.has(m.id) || m.state !== 'pending' || !m.after.some((d) => dropped.has(d))) continue;
        m.state = 'skipped';
        m.reason = `skipped: it comes after ${m.after.filter((d) => dropped.has(d)).join(', ')}`;
        dropped.add(m.id);
        grew = true;
      }
    }
    this.held = undefined;
    this.continued = undefined;
    this.phase = 'progressing';
    return [
      {
        type: 'log',
        level: 'info',
        message: 'release goes on',
        attrs: { by: by.identity, without: [...dropped] },
      },
      ...this.running()
        .filter((x) => !dropped.has(x.id))
        .map((m) => ({ type: 'resume' as const, member: m.id, identity: this.identity })),
    ];
  }

  /** A kept, running member's cluster has no worker: the release promotes nothing meanwhile. */
  private clusterGone(): boolean {
    return this.kept().some(
      (m) => m.spec.taskQueue !== undefined && this.clusters.get(m.spec.taskQueue)?.workers === 'gone',
    );
  }

  /** Once per member and absence: running members on a cluster without workers alert; they resolve once it is back. */
  private tellStuck(now: number): ReleaseCommand[] {
    const commands: ReleaseCommand[] = [];
    for (const c of this.clusters.values()) {
      for (const m of this.members.filter((x) => x.spec.taskQueue === c.taskQueue)) {
        if (
          c.workers === 'gone' &&
          this.started.has(m.id) &&
          !TERMINAL.includes(m.state) &&
          !this.stuck.has(m.id)
        ) {
          this.stuck.add(m.id);
          commands.push({ type: 'alert', event: this.stuckAlert(m, c, false, now) });
        } else if (c.workers === 'serving' && this.stuck.delete(m.id)) {
          commands.push({ type: 'alert', event: this.stuckAlert(m, c, true, now) });
        }
      }
    }
    return commands;
  }

  /** A member's `stuck` alert (its cluster has no worker), or the one that resolves it (a worker is back). */
  private stuckAlert(m: ReleaseMember, c: ReleaseClusterStatus, back: boolean, now: number): RolloutAlert {
    const { name, cli } = this;
    const message = back
      ? `release ${name}: a worker polls task queue ${c.taskQueue} of cluster ${c.cluster} again; member ${m.id} goes on`
      : `release ${name}: no worker serves cluster ${c.cluster}: nothing has polled its task queue ${c.taskQueue} ` +
        `${c.lastSeen ? `since ${c.lastSeen}` : 'at all'}. Member ${m.id} holds and nothing is promoted until a ` +
        `worker polls it again (start that cluster's worker with TEMPORAL_TASK_QUEUE=${c.taskQueue})`;
    const target = m.spec.input.target;
    return buildRolloutAlert({
      workflowId: m.workflowId,
      firstRunId: this.place.firstRunId,
      seq: ++this.alertSeq,
      kind: 'stuck',
      target: { app: target.app, namespace: target.namespace },
      version: m.spec.input.version,
      message,
      at: new Date(now).toISOString(),
      ...(m.stage !== undefined ? { stage: m.stage } : {}),
      stages: m.stages,
      ...(m.weight !== undefined ? { weight: m.weight } : {}),
      temporalNamespace: this.place.temporalNamespace,
      cli,
      reason: back ? `a worker polls ${c.taskQueue} again` : `no worker polls ${c.taskQueue}`,
      ...(back ? { severity: 'info' as const, resolves: ['stuck'] } : {}),
      commands: {
        status: `${cli} release status ${name}`,
        ...(back ? {} : { abort: `${cli} release abort ${name} --reason "<why>"` }),
      },
    });
  }

  /** The cluster a member's task queue serves: as its member names it, else the queue's last part after the release's. */
  private clusterOf(taskQueue: string): string {
    const named = this.input.members.find((m) => m.taskQueue === taskQueue && m.cluster)?.cluster;
    if (named) return named;
    const own = `${this.place.taskQueue}.`;
    return taskQueue.startsWith(own) ? taskQueue.slice(own.length) : taskQueue;
  }
}

const passed = (m: ReleaseMember) => m.state === 'ready' || m.state === 'promoted';

/**
 * A member has entered `stage` (1-based), or passed: only for an after: that names a stage (afterStage). A member
 * waiting for approval has not entered the stage behind the gate yet.
 */
const reached = (m: ReleaseMember, stage: number) =>
  passed(m) || (m.state === 'running' && m.phase !== 'waiting_approval' && (m.stage ?? 0) >= stage);

const failedWhy = (m: ReleaseMember) =>
  `member ${m.id} ${m.state === 'not_started' ? 'did not start' : 'rolled back'}${m.reason ? `: ${m.reason}` : ''}`;

/** A member's state from its rollout's progress. */
export function memberState(
  m: ReleaseMemberStatus,
  phase: string,
  atPromotionGate: boolean,
  promotion: ReleaseInput['promotion'],
): MemberState {
  if (phase === 'rolling_back') return 'rolling_back';
  if (phase === 'rolled_back') return 'rolled_back';
  if (phase === 'not_started') return 'not_started';
  if (phase === 'promoted') return 'promoted';
  if (atPromotionGate) return 'ready';
  if (m.state === 'ready') return 'ready';
  // With promotion: together only the gate counts (the release approves it); without a gate (promotion: each), a
  // member has passed once it reached its last stage.
  return promotion === 'each' &&
    m.stages > 0 &&
    m.stage !== undefined &&
    m.stage >= m.stages &&
    phase === 'progressing'
    ? 'ready'
    : 'running';
}
