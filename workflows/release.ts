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
import type { RolloutAlert } from './alerts/events';
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
import { DEFAULT_WORKER_CHECK, type ReleaseInput, type ReleaseResult } from './release-model';
import { ReleaseMachine, type ReleaseCommand, type ReleaseMember } from './release-machine';
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

export async function canaryRelease(input: ReleaseInput): Promise<ReleaseResult> {
  const info = workflowInfo();
  const r = new ReleaseMachine(
    input,
    { firstRunId: info.firstExecutionRunId, temporalNamespace: info.namespace, taskQueue: info.taskQueue },
    () => patched(RELEASE_WORKERS_PATCH),
  );
  const handles = new Map<string, ChildWorkflowHandle<typeof canaryRollout>>();
  const alerts = releaseAlerts();
  /** Carries out a transition's commands, in order; signals and alerts are started, never awaited. */
  const carryOut = (commands: ReleaseCommand[]) => {
    for (const c of commands) {
      if (c.type === 'alert') alerts.deliver(c.event);
      else if (c.type === 'log') log[c.level](c.message, c.attrs);
      else if (c.type === 'pause')
        void handles.get(c.member)!.signal(pauseSignal, { identity: c.identity, reason: c.reason });
      else void handles.get(c.member)!.signal(resumeSignal, { identity: c.identity });
    }
  };

  setHandler(releaseStatusQuery, () => r.status());
  setHandler(memberProgressSignal, (p) => r.memberProgress(p));
  setHandler(releaseAbortSignal, (a) => r.abort(a));
  setHandler(releaseContinueSignal, (c) => r.continueWithout(c));
  setHandler(releasePauseSignal, (p) => carryOut(r.pause(p)));
  setHandler(releaseResumeSignal, (p) => carryOut(r.resume(p)));
  setHandler(clusterWorkersSignal, (report) => carryOut(r.clusterWorkers(report, Date.now())));

  // Members on named clusters run on those clusters' workers: the release watches that each still polls its queue
  // (RELEASE_WORKERS_PATCH; releases without clusters, and those started before the patch, watch nothing).
  const watcher = new CancellationScope();
  if (r.watch) {
    const check = input.workerCheck ?? DEFAULT_WORKER_CHECK;
    watcher
      .run(() =>
        watchActs(check.everyMs).watchClusterWorkers.executeWithOptions(
          { summary: "watch the clusters' workers" },
          [{ releaseWorkflowId: info.workflowId, taskQueues: r.clusterQueues, ...check }],
        ),
      )
      .catch((err: unknown) => {
        if (!isCancellation(err))
          log.warn("the clusters' workers are not watched", { error: innerMessage(err) });
      });
  }
  /** Before the release returns: the watch stops, and the alerts under way get a minute to be delivered. */
  const finish = async () => {
    if (!r.watch) return;
    watcher.cancel();
    // Not cancellable: a cancelled release still lets the alerts it raised go out.
    if (alerts.pending() > 0)
      await CancellationScope.nonCancellable(() => condition(() => alerts.pending() === 0, '1 minute'));
  };
  const changed = (seen: number, timeoutMs?: number) =>
    timeoutMs === undefined
      ? condition(() => r.changes !== seen)
      : condition(() => r.changes !== seen, timeoutMs);

  /** Starts a member's rollout; its end (or failure) comes back as its state. */
  const start = async (m: ReleaseMember) => {
    r.starting(m);
    let handle: ChildWorkflowHandle<typeof canaryRollout>;
    try {
      handle = await startChild<typeof canaryRollout>('canaryRollout', {
        workflowId: m.workflowId,
        ...(m.spec.taskQueue ? { taskQueue: m.spec.taskQueue } : {}),
        args: [r.childInput(m, info.workflowId)],
        // The member names its release (`canary list --release`, the Web UI), from its start: the rollout workflow
        // itself upserts nothing more (continue-as-new keeps it).
        typedSearchAttributes: [{ key: SA_RELEASE, value: r.name }],
        // A release closed without its own ending (Terminate) cancels its members: a cancelled rollout rolls back.
        parentClosePolicy: ParentClosePolicy.REQUEST_CANCEL,
      });
    } catch (err) {
      return r.startFailed(m, innerMessage(err));
    }
    handles.set(m.id, handle);
    carryOut(r.startedChild(m, Date.now()));
    handle.result().then(
      (result) => r.memberEnded(m, result),
      (err: unknown) => {
        const type = failureType(err);
        const typed =
          type === NOT_STARTED_FAILURE
            ? 'not_started'
            : type === ROLLED_BACK_FAILURE
              ? 'rolled_back'
              : undefined;
        r.memberFailed(m, typed, innerMessage(err));
      },
    );
  };

  try {
    for (;;) {
      const now = Date.now();
      const next = r.next(now);
      if (next.type === 'end') break;
      if (next.type === 'goOn') {
        carryOut(next.commands);
        continue;
      }
      if (next.type === 'held') {
        carryOut(next.commands);
        await changed(r.changes);
        continue;
      }
      for (const m of r.kept()) if (r.eligible(m, now)) await start(m);
      const together = r.promoteTogether();
      // Every member passed its last stage: promote them all at once.
      for (const m of together ?? [])
        await acts.approveReleaseMember({ workflowId: m.workflowId, identity: r.identity, release: r.name });
      const seen = r.changes;
      const nextBake = r.nextBakeEnd(now);
      await changed(seen, nextBake === undefined ? undefined : Math.max(1, nextBake - now));
    }
  } catch (err) {
    if (!isCancellation(err)) throw err;
    r.cancelled();
  }

  if (r.endsPromoted()) {
    await finish();
    return r.promotedResult();
  }
  carryOut([r.beginRollback()]);
  let left = r.running();
  while (left.length > 0) {
    const level = r.rollbackLevel(left);
    await Promise.all(
      level.map((m) =>
        handles.get(m.id)!.signal(abortSignal, { identity: r.identity, reason: r.abortReason() }),
      ),
    );
    await condition(() => level.every((m) => r.back(m)));
    left = left.filter((m) => !level.includes(m));
  }
  await condition(() => r.allEnded());
  r.rolledBack();
  await finish();
  return r.rolledBackResult();
}

/**
 * Alerts as a rollout sends them (workflows/driver.ts): the sinks' names once, then one delivery per sink (default
 * routing), each after that sink's previous one; never awaited.
 */
function releaseAlerts() {
  let sinks: Promise<string[]> | undefined;
  const chains = new Map<string, Promise<void>>();
  let deliveries = 0;
  return {
    pending: () => deliveries,
    deliver(e: RolloutAlert): void {
      sinks ??= CancellationScope.nonCancellable(() => alertActs.alertSinks()).catch(() => ['log']);
      deliveries++;
      void CancellationScope.nonCancellable(async () => {
        for (const sink of await sinks!) {
          if (!routes(undefined, sink, e)) continue;
          deliveries++;
          const next = (chains.get(sink) ?? Promise.resolve())
            .then(() =>
              deliveryActs.deliverAlert.executeWithOptions({ summary: `alert ${e.kind} → ${sink}` }, [
                sink,
                e,
              ]),
            )
            .catch((err: unknown) =>
              log.warn('alert not delivered', { sink, id: e.id, error: innerMessage(err) }),
            )
            .finally(() => deliveries--);
          chains.set(sink, next);
        }
      }).finally(() => deliveries--);
    },
  };
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
