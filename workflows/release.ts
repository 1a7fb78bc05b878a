// The release workflow: one canary across several services, each member one of today's rollouts run as a child
// workflow (its status and Web UI page stay a rollout's). Members start in `after:` order and by waves (a wave once
// the one before it has baked); the verdict is shared: a member that rolls back, for any reason, rolls back every
// other member, in reverse dependency order. With `promotion: together`, members wait at their promotion gate and
// the release approves them all at once, only after every one has passed its last stage. Closing the release any
// other way (a Terminate) cancels its members, and a cancelled rollout rolls back.
import {
  ApplicationFailure,
  CancellationScope,
  ParentClosePolicy,
  condition,
  isCancellation,
  log,
  patched,
  proxyActivities,
  setHandler,
  startChild,
  workflowInfo,
  type ChildWorkflowHandle,
} from '@temporalio/workflow';
import type { ReleaseActivities } from '../activities/release';
import type { RolloutActivities } from '../activities/rollout-activities';
import { ALERT_DELIVERY_OPTIONS } from './alerts/delivery';
import { buildRolloutAlert, type RolloutAlert } from './alerts/events';
import { routes } from './alerts/routing';
import { RELEASE_WORKERS_PATCH } from './patches';
import {
  abortSignal,
  pauseSignal,
  resumeSignal,
  NOT_STARTED_FAILURE,
  ROLLED_BACK_FAILURE,
  SA_RELEASE,
} from './api';
import {
  clusterWorkersSignal,
  memberProgressSignal,
  releaseAbortSignal,
  releaseContinueSignal,
  releasePauseSignal,
  releaseResumeSignal,
  releaseStatusQuery,
} from './release-api';
import {
  DEFAULT_WORKER_CHECK,
  releaseIdentity,
  type ReleaseClusterStatus,
  type MemberState,
  type ReleaseInput,
  type ReleaseMemberInput,
  type ReleaseMemberStatus,
  type ReleaseResult,
  type ReleaseStatus,
} from './release-model';
import type { canaryRollout } from './rollout';

const acts = proxyActivities<ReleaseActivities>({
  startToCloseTimeout: '30 seconds',
  retry: {
    initialInterval: '1 second',
    backoffCoefficient: 2,
    maximumInterval: '10 seconds',
    maximumAttempts: 10,
  },
});

// The cluster-worker watcher runs as long as the release: it heartbeats each look, and a worker that dies with it is
// noticed by the heartbeat timeout and the watch starts again elsewhere.
const watchActs = (everyMs: number) =>
  proxyActivities<ReleaseActivities>({
    startToCloseTimeout: '3650 days',
    heartbeatTimeout: Math.max(2 * everyMs, 20_000),
    retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '30 seconds' },
  });
// Alerts as a rollout sends them (workflows/driver.ts): the sinks' names once, then one delivery per sink.
const alertActs = proxyActivities<RolloutActivities>({
  startToCloseTimeout: '15 seconds',
  retry: { initialInterval: '1 second', maximumAttempts: 3 },
});
const deliveryActs = proxyActivities<RolloutActivities>(ALERT_DELIVERY_OPTIONS);

interface Member extends ReleaseMemberStatus {
  spec: ReleaseMemberInput;
  handle?: ChildWorkflowHandle<typeof canaryRollout>;
  /** The release asked it to abort. */
  aborted?: boolean;
}

const TERMINAL: MemberState[] = ['promoted', 'rolled_back', 'not_started', 'skipped'];
const FAILED: MemberState[] = ['rolling_back', 'rolled_back', 'not_started'];

export async function canaryRelease(input: ReleaseInput): Promise<ReleaseResult> {
  const name = input.release;
  const identity = releaseIdentity(name);
  const members: Member[] = input.members.map((spec) => ({
    id: spec.id,
    wave: spec.wave,
    after: spec.after,
    workflowId: spec.workflowId,
    state: 'pending',
    stages: Array.isArray(spec.input.plan.stages) ? spec.input.plan.stages.length : 0,
    spec,
  }));
  const byId = new Map(members.map((m) => [m.id, m]));
  const waveReady = new Map<number, number>();
  let phase: ReleaseStatus['phase'] = 'progressing';
  let reason: string | undefined;
  let cause: string | undefined;
  let abort: { identity: string; reason: string } | undefined;
  let changes = 0;
  let approved = false;
  // onFailure: rollback-member: members the release goes on without, and the hold while a person decides.
  const dropped = new Set<string>();
  let held: { question: string } | undefined;
  let continued: { identity: string; comment?: string } | undefined;
  // Members on named clusters run on those clusters' workers: the release watches that each still polls its queue
  // (RELEASE_WORKERS_PATCH; releases without clusters, and those started before the patch, watch nothing).
  const clusterQueues = [...new Set(input.members.flatMap((m) => (m.taskQueue ? [m.taskQueue] : [])))];
  const watch = clusterQueues.length > 0 && patched(RELEASE_WORKERS_PATCH);
  const workerCheck = input.workerCheck ?? DEFAULT_WORKER_CHECK;
  const clusters = new Map<string, ReleaseClusterStatus>(
    watch
      ? clusterQueues.map((q) => [q, { cluster: clusterOf(input, q), taskQueue: q, workers: 'unknown' }])
      : [],
  );
  /** Members a stuck alert went out for, until their cluster's worker is back. */
  const stuck = new Set<string>();
  const cli = input.members[0]?.input.cli ?? 'canary';

  const status = (): ReleaseStatus => ({
    release: name,
    phase,
    promotion: input.promotion,
    onFailure: input.onFailure,
    waves: input.waves.map((w) => ({
      ...w,
      ...(waveReady.has(w.wave) ? { readyAt: new Date(waveReady.get(w.wave)!).toISOString() } : {}),
      members: members.filter((m) => m.wave === w.wave).map((m) => m.id),
    })),
    members: members.map(({ spec: _spec, handle: _handle, aborted: _aborted, ...m }) => m),
    ...(reason ? { reason } : {}),
    ...(cause ? { cause } : {}),
    ...(held ? { question: held.question } : {}),
    ...(dropped.size > 0 ? { dropped: [...dropped] } : {}),
    ...(watch ? { clusters: [...clusters.values()].map((c) => ({ ...c })) } : {}),
  });
  setHandler(releaseStatusQuery, status);
  setHandler(memberProgressSignal, (p) => {
    const m = byId.get(p.member);
    if (!m || TERMINAL.includes(m.state)) return;
    m.phase = p.phase;
    m.stage = p.stage;
    m.weight = p.weight;
    if (p.reason) m.reason = p.reason;
    m.state = stateOf(m, p.phase, p.atPromotionGate, input.promotion);
    changes++;
  });
  setHandler(releaseAbortSignal, (r) => {
    abort ??= r;
    changes++;
  });
  setHandler(releaseContinueSignal, (r) => {
    if (!held) return;
    continued ??= r;
    changes++;
  });
  setHandler(releasePauseSignal, (r) => {
    for (const m of running())
      void m.handle!.signal(pauseSignal, {
        identity: r.identity,
        reason: r.reason ?? `release ${name} paused`,
      });
  });
  setHandler(releaseResumeSignal, (r) => {
    // Held (rollback-member), the members stay paused until a person goes on without the failed ones or aborts.
    if (held) return;
    for (const m of running()) void m.handle!.signal(resumeSignal, { identity: r.identity });
  });
  setHandler(clusterWorkersSignal, (r) => {
    if (!watch) return;
    for (const q of r.queues) {
      const c = clusters.get(q.taskQueue);
      if (!c) continue;
      const was = c.workers;
      c.workers = q.serving ? 'serving' : 'gone';
      if (q.lastSeen) c.lastSeen = q.lastSeen;
      if (c.workers === 'gone' && was !== 'gone') {
        c.goneSince = r.at;
        log.warn('a cluster has no worker', { cluster: c.cluster, taskQueue: c.taskQueue });
      }
      if (c.workers === 'serving') delete c.goneSince;
    }
    tellStuck();
    changes++;
  });

  // ---------- the clusters' workers: alerts ----------
  let sinks: Promise<string[]> | undefined;
  const chains = new Map<string, Promise<void>>();
  let deliveries = 0;
  let alertSeq = 0;
  /** Starts the event's delivery to each sink (default routing), after that sink's previous one; never awaited. */
  const deliver = (e: RolloutAlert) => {
    sinks ??= CancellationScope.nonCancellable(() => alertActs.alertSinks()).catch(() => ['log']);
    deliveries++;
    void CancellationScope.nonCancellable(async () => {
      for (const sink of await sinks!) {
        if (!routes(undefined, sink, e)) continue;
        deliveries++;
        const next = (chains.get(sink) ?? Promise.resolve())
          .then(() =>
            deliveryActs.deliverAlert.executeWithOptions({ summary: `alert ${e.kind} → ${sink}` }, [sink, e]),
          )
          .catch((err: unknown) =>
            log.warn('alert not delivered', { sink, id: e.id, error: innerMessage(err) }),
          )
          .finally(() => deliveries--);
        chains.set(sink, next);
      }
    }).finally(() => deliveries--);
  };
  /** A member's `stuck` alert (its cluster has no worker), or the one that resolves it (a worker is back). */
  const alertStuck = (m: Member, c: ReleaseClusterStatus, back: boolean) => {
    const message = back
      ? `release ${name}: a worker polls task queue ${c.taskQueue} of cluster ${c.cluster} again; member ${m.id} goes on`
      : `release ${name}: no worker serves cluster ${c.cluster}: nothing has polled its task queue ${c.taskQueue} ` +
        `${c.lastSeen ? `since ${c.lastSeen}` : 'at all'}. Member ${m.id} holds and nothing is promoted until a ` +
        `worker polls it again (start that cluster's worker with TEMPORAL_TASK_QUEUE=${c.taskQueue})`;
    const target = m.spec.input.target;
    deliver(
      buildRolloutAlert({
        workflowId: m.workflowId,
        firstRunId: workflowInfo().firstExecutionRunId,
        seq: ++alertSeq,
        kind: 'stuck',
        target: { app: target.app, namespace: target.namespace },
        version: m.spec.input.version,
        message,
        at: new Date().toISOString(),
        ...(m.stage !== undefined ? { stage: m.stage } : {}),
        stages: m.stages,
        ...(m.weight !== undefined ? { weight: m.weight } : {}),
        temporalNamespace: workflowInfo().namespace,
        cli,
        reason: back ? `a worker polls ${c.taskQueue} again` : `no worker polls ${c.taskQueue}`,
        ...(back ? { severity: 'info' as const, resolves: ['stuck'] } : {}),
        commands: {
          status: `${cli} release status ${name}`,
          ...(back ? {} : { abort: `${cli} release abort ${name} --reason "<why>"` }),
        },
      }),
    );
  };
  /** Once per member and absence: running members on a cluster without workers alert; they resolve once it is back. */
  const tellStuck = () => {
    for (const c of clusters.values()) {
      for (const m of members.filter((x) => x.spec.taskQueue === c.taskQueue)) {
        if (c.workers === 'gone' && m.handle && !TERMINAL.includes(m.state) && !stuck.has(m.id)) {
          stuck.add(m.id);
          alertStuck(m, c, false);
        } else if (c.workers === 'serving' && stuck.delete(m.id)) {
          alertStuck(m, c, true);
        }
      }
    }
  };
  /** A kept, running member's cluster has no worker: the release promotes nothing meanwhile. */
  const clusterGone = () =>
    kept().some((m) => m.spec.taskQueue !== undefined && clusters.get(m.spec.taskQueue)?.workers === 'gone');
  const watcher = new CancellationScope();
  if (watch) {
    watcher
      .run(() =>
        watchActs(workerCheck.everyMs).watchClusterWorkers.executeWithOptions(
          { summary: "watch the clusters' workers" },
          [{ releaseWorkflowId: workflowInfo().workflowId, taskQueues: clusterQueues, ...workerCheck }],
        ),
      )
      .catch((err: unknown) => {
        if (!isCancellation(err))
          log.warn("the clusters' workers are not watched", { error: innerMessage(err) });
      });
  }
  /** Before the release returns: the watch stops, and the alerts under way get a minute to be delivered. */
  const finish = async () => {
    if (!watch) return;
    watcher.cancel();
    // Not cancellable: a cancelled release still lets the alerts it raised go out.
    if (deliveries > 0)
      await CancellationScope.nonCancellable(() => condition(() => deliveries === 0, '1 minute'));
  };

  const running = () => members.filter((m) => m.handle && !TERMINAL.includes(m.state));
  const passed = (m: Member) => m.state === 'ready' || m.state === 'promoted';
  /** The members the release still goes on with (all of them unless a person continued without some). */
  const kept = () => members.filter((m) => !dropped.has(m.id));
  /**
   * A member has entered `stage` (1-based), or passed: only for an after: that names a stage (afterStage). A member
   * waiting for approval has not entered the stage behind the gate yet.
   */
  const reached = (m: Member, stage: number) =>
    passed(m) || (m.state === 'running' && m.phase !== 'waiting_approval' && (m.stage ?? 0) >= stage);

  /** Starts a member's rollout; its end (or failure) comes back as its state. */
  const start = async (m: Member) => {
    m.state = 'running';
    try {
      m.handle = await startChild<typeof canaryRollout>('canaryRollout', {
        workflowId: m.workflowId,
        ...(m.spec.taskQueue ? { taskQueue: m.spec.taskQueue } : {}),
        args: [
          {
            ...m.spec.input,
            release: {
              workflowId: workflowInfo().workflowId,
              member: m.id,
              ...(input.promotion === 'together' ? { together: { name, identity } } : {}),
            },
          },
        ],
        // The member names its release (`canary list --release`, the Web UI), from its start: the rollout workflow
        // itself upserts nothing more (continue-as-new keeps it).
        typedSearchAttributes: [{ key: SA_RELEASE, value: name }],
        // A release closed without its own ending (Terminate) cancels its members: a cancelled rollout rolls back.
        parentClosePolicy: ParentClosePolicy.REQUEST_CANCEL,
      });
    } catch (err) {
      // Another rollout of the target runs (started since the client checked): this member cannot start.
      m.state = 'not_started';
      m.reason = `could not start: ${innerMessage(err)}`;
      changes++;
      return;
    }
    // Started on a cluster whose worker is gone: it holds there, and says so.
    if (watch) tellStuck();
    m.handle.result().then(
      (r) => {
        m.state = r.outcome === 'promoted' ? 'promoted' : r.outcome;
        m.weight = r.finalWeight;
        if (r.reason) m.reason = r.reason;
        changes++;
      },
      (err: unknown) => {
        const type = failureType(err);
        m.state = type === NOT_STARTED_FAILURE ? 'not_started' : 'rolled_back';
        m.weight = 0;
        m.reason ??=
          type === ROLLED_BACK_FAILURE || type === NOT_STARTED_FAILURE
            ? innerMessage(err)
            : `its workflow ended without an outcome: ${innerMessage(err)}`;
        changes++;
      },
    );
  };

  /** Whether a member may start now: what it comes after has passed its last stage, and the wave before baked. */
  const eligible = (m: Member, now: number): boolean => {
    if (m.state !== 'pending') return false;
    const stageOf = m.spec.afterStage;
    if (
      !m.after.every((d) =>
        stageOf?.[d] !== undefined ? reached(byId.get(d)!, stageOf[d]) : passed(byId.get(d)!),
      )
    )
      return false;
    for (const w of input.waves) {
      if (w.wave >= m.wave) break;
      const at = waveReady.get(w.wave);
      if (at === undefined || now < at + w.bakeMs) return false;
    }
    return true;
  };

  /** Pauses every running member, naming the member that failed, and asks a person (status: question). */
  const hold = (failed: Member) => {
    const why = `member ${failed.id} ${failed.state === 'not_started' ? 'did not start' : 'rolled back'}${failed.reason ? `: ${failed.reason}` : ''}`;
    const cli = input.members[0]?.input.cli ?? 'canary';
    held = {
      question:
        `${why}. The other members hold. \`${cli} release approve ${name}\` goes on without it (and the members ` +
        `after it); \`${cli} release abort ${name} --reason ...\` rolls every member back`,
    };
    phase = 'held';
    log.warn('release held', { why });
    for (const m of running().filter((x) => !FAILED.includes(x.state)))
      void m.handle!.signal(pauseSignal, { identity, reason: `release ${name} holds: ${why}` });
  };
  /** A person answered the hold: drop the failed members and those after them, resume the others. */
  const goOnWithout = (by: { identity: string; comment?: string }) => {
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
    log.info('release goes on', { by: by.identity, without: [...dropped] });
    held = undefined;
    continued = undefined;
    phase = 'progressing';
    for (const m of running().filter((x) => !dropped.has(x.id)))
      void m.handle!.signal(resumeSignal, { identity });
  };

  try {
    for (;;) {
      const now = Date.now();
      for (const w of input.waves) {
        const inWave = members.filter((m) => m.wave === w.wave);
        const left = inWave.filter((m) => !dropped.has(m.id));
        if (!waveReady.has(w.wave) && inWave.length > 0 && left.every(passed)) waveReady.set(w.wave, now);
      }
      const failed = members.find((m) => FAILED.includes(m.state) && !m.aborted && !dropped.has(m.id));
      if (!abort && failed && input.onFailure === 'rollback-member') {
        // The failing member rolls back on its own; the others hold (paused) until a person decides.
        if (continued) {
          goOnWithout(continued);
          continue;
        }
        if (!held) hold(failed);
        const seen = changes;
        await condition(() => changes !== seen);
        continue;
      }
      if (abort || failed) {
        cause = abort ? undefined : failed!.id;
        reason = abort
          ? `aborted by ${abort.identity}: ${abort.reason}`
          : `member ${failed!.id} ${failed!.state === 'not_started' ? 'did not start' : 'rolled back'}${failed!.reason ? `: ${failed!.reason}` : ''}`;
        break;
      }
      if (kept().every((m) => m.state === 'promoted')) break;
      for (const m of kept()) if (eligible(m, now)) await start(m);
      if (
        input.promotion === 'together' &&
        !approved &&
        kept().every((m) => m.state === 'ready') &&
        !clusterGone()
      ) {
        // Every member passed its last stage: promote them all at once.
        approved = true;
        phase = 'promoting';
        for (const m of kept())
          await acts.approveReleaseMember({ workflowId: m.workflowId, identity, release: name });
      }
      const seen = changes;
      const nextBake = nextBakeEnd(input, waveReady, now);
      if (nextBake === undefined) await condition(() => changes !== seen);
      else await condition(() => changes !== seen, Math.max(1, nextBake - now));
    }
  } catch (err) {
    if (!isCancellation(err)) throw err;
    reason = 'the release was cancelled';
  }

  if (reason === undefined && kept().length > 0) {
    phase = 'promoted';
    await finish();
    return {
      outcome: 'promoted',
      ...(dropped.size > 0
        ? { reason: `promoted without ${[...dropped].join(', ')}`, dropped: [...dropped] }
        : {}),
      members: status().members,
    };
  }
  reason ??= `every member rolled back (${[...dropped].join(', ')})`;
  // One verdict: every member goes back, those that depend on others first. Members no remaining member comes
  // after go together; the next ones once those read weight 0 (or ended).
  phase = abort ? 'aborted' : 'rolling_back';
  log.warn('release rolling back', { reason });
  for (const m of members) if (m.state === 'pending') m.state = 'skipped';
  const back = (m: Member) => TERMINAL.includes(m.state) || (m.aborted === true && m.weight === 0);
  let left = members.filter((m) => m.handle && !TERMINAL.includes(m.state));
  while (left.length > 0) {
    const level = left.filter((m) => !left.some((o) => o.after.includes(m.id)));
    for (const m of level) m.aborted = true;
    await Promise.all(
      level.map((m) => m.handle!.signal(abortSignal, { identity, reason: `release ${name}: ${reason}` })),
    );
    await condition(() => level.every(back));
    left = left.filter((m) => !level.includes(m));
  }
  await condition(() => members.every((m) => !m.handle || TERMINAL.includes(m.state)));
  if (phase === 'rolling_back') phase = 'rolled_back';
  await finish();
  return { outcome: 'rolled_back', reason, ...(cause ? { cause } : {}), members: status().members };
}

function stateOf(
  m: Member,
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
  // Without a promotion gate (promotion: each), a member has passed once it reached its last stage.
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

/** The cluster a member's task queue serves: as its member names it, else the queue's last part after the release's. */
function clusterOf(input: ReleaseInput, taskQueue: string): string {
  const named = input.members.find((m) => m.taskQueue === taskQueue && m.cluster)?.cluster;
  if (named) return named;
  const own = `${workflowInfo().taskQueue}.`;
  return taskQueue.startsWith(own) ? taskQueue.slice(own.length) : taskQueue;
}

function nextBakeEnd(input: ReleaseInput, waveReady: Map<number, number>, now: number): number | undefined {
  let next: number | undefined;
  for (const w of input.waves) {
    const at = waveReady.get(w.wave);
    if (at !== undefined && at + w.bakeMs > now) next = Math.min(next ?? Infinity, at + w.bakeMs);
  }
  return next;
}

function failureType(err: unknown): string | undefined {
  let e: unknown = err;
  while (e instanceof Error) {
    if (e instanceof ApplicationFailure) return e.type ?? undefined;
    e = e.cause;
  }
  return undefined;
}

function innerMessage(err: unknown): string {
  let e: unknown = err;
  let message = String(err);
  while (e instanceof Error) {
    message = e.message;
    e = e.cause;
  }
  return message;
}
