// What the controller does for one CanaryRollout, each time it looks (on a watch event, and every poll while a
// rollout it started runs): start the rollout its spec asks for, mirror the rollout's state onto .status and into
// Events, apply spec.onNewVersion when the version changes mid-rollout, send a request annotation, and hold the
// finalizer until a deleted object's rollout has ended with traffic back on stable. Idempotent: a controller that
// restarts (or a new leader) reads what was done from .status and from Temporal, and never starts a rollout twice.
import { WorkflowNotFoundError } from '@temporalio/client';
import type { CoreV1Api, CustomObjectsApi } from '@kubernetes/client-node';
import { MERGE_PATCH, httpStatus } from '../activities/kube/client';
import { SA_VERSION, SA_PHASE, SA_STAGE, SA_WEIGHT, WORKFLOW_TYPE } from '../workflows/api';
import type { RolloutStatus } from '../workflows/types';
import type { RolloutClient } from '../client/rollout-client';
import {
  API_VERSION,
  FINALIZER,
  GROUP,
  KIND,
  PLURAL,
  REQUESTS,
  REQUEST_ANNOTATION,
  VERSION,
  keyOf,
  type CanaryRollout,
  type CanaryRolloutStatus,
  type Request,
} from './crd';
import type { PreparedStart } from '../client/prepare-start';
import { checkSpec, requestedByOf, type ConfigMapReader } from './spec';
import {
  mergeConditions,
  phaseConditions,
  statusFields,
  transitionEvent,
  type ConditionWish,
} from './status';

export interface ReconcilerDeps {
  rollouts: RolloutClient;
  custom: CustomObjectsApi;
  core: CoreV1Api;
  /** This replica, for Events (reportingInstance). */
  identity: string;
  log: (line: string) => void;
  /** How often a running rollout's full status is read even when its phase, stage and weight did not change. */
  fullReadEveryMs?: number;
}

/** The target's workflow as describe shows it, without asking a worker. */
interface Execution {
  running: boolean;
  runId: string;
  firstRunId: string;
  version?: string;
  startTime: Date;
  /** phase/stage/weight as the workflow last upserted them. */
  fingerprint: string;
}

/** A running rollout as the visibility store lists it: enough to tell that nothing moved since the last look. */
interface Listed {
  firstRunId: string;
  fingerprint: string;
}

const errorText = (err: unknown): string => (err instanceof Error ? err.message : String(err));
const TERMINAL = ['promoted', 'rolled_back', 'failed', 'not_started'];
/** How far apart the controller's clock and the Temporal server's may be when adopting a start after a crash. */
const CLOCK_SLACK_MS = 60_000;

export class Reconciler {
  private readonly lastFullRead = new Map<string, number>();
  /** The running rollouts from the last listRunning(), and when it was taken. */
  private listed?: { at: number; byId: Map<string, Listed> };
  private listedMaxAgeMs = 0;
  private listFailed = false;

  constructor(private readonly deps: ReconcilerDeps) {}

  /**
   * Lists every running rollout once (one visibility call, paged), so that each look at an object whose rollout did
   * not move needs no describe of its own: with N objects, a poll costs one list instead of N describes. The list is
   * only a hint, used for at most `maxAgeMs`: what it does not show as running and unmoved is described as before, and
   * a list lagging behind (the visibility store is eventually consistent) delays a mirror by a poll, never loses one.
   */
  async listRunning(maxAgeMs: number): Promise<void> {
    const at = Date.now();
    const byId = new Map<string, Listed>();
    try {
      const query = `WorkflowType = '${WORKFLOW_TYPE}' AND ExecutionStatus = 'Running'`;
      for await (const info of this.deps.rollouts.client.workflow.list({ query })) {
        const sa = info.typedSearchAttributes;
        byId.set(info.workflowId, {
          firstRunId: info.raw.firstRunId || info.runId,
          fingerprint: `${sa.get(SA_PHASE)}/${sa.get(SA_STAGE)}/${sa.get(SA_WEIGHT)}`,
        });
      }
      this.listed = { at, byId };
      this.listedMaxAgeMs = maxAgeMs;
      if (this.listFailed) this.deps.log('listing running rollouts works again');
      this.listFailed = false;
    } catch (err) {
      this.listed = undefined;
      if (!this.listFailed) {
        this.deps.log(`cannot list running rollouts (each is described instead): ${errorText(err)}`);
      }
      this.listFailed = true;
    }
  }

  /** What the last list says of a running workflow, while it is recent enough. */
  private listedRun(workflowId: string): Listed | undefined {
    if (!this.listed || Date.now() - this.listed.at > this.listedMaxAgeMs) return undefined;
    return this.listed.byId.get(workflowId);
  }

  async reconcile(o: CanaryRollout): Promise<void> {
    if (o.metadata.deletionTimestamp) return this.finalize(o);
    if (!(o.metadata.finalizers ?? []).includes(FINALIZER)) {
      // First the finalizer: once it is there, a delete waits for the rollout's traffic to be back on stable.
      await this.patchMeta(o, { finalizers: [...(o.metadata.finalizers ?? []), FINALIZER] });
      o = { ...o, metadata: { ...o.metadata, finalizers: [...(o.metadata.finalizers ?? []), FINALIZER] } };
    }
    const request = o.metadata.annotations?.[REQUEST_ANNOTATION];
    if (request !== undefined) await this.handleRequest(o, request);
    await this.drive(o);
  }

  // ------------------------------------------------------------------------------------------- versions

  private async drive(o: CanaryRollout): Promise<void> {
    const st = o.status ?? {};
    const wanted = o.spec.version;
    if (st.version === wanted && st.runId) return this.mirror(o);

    const checked = await checkSpec(o, this.readConfigMap);
    if (!checked.ok) {
      const lines = checked.problems.map((p) => `${p.path}: ${p.message}`);
      const message = `spec is invalid (${lines.length} problem${lines.length === 1 ? '' : 's'}); nothing starts:\n${lines.join('\n')}`;
      const was = st.conditions?.find((c) => c.type === 'Invalid');
      await this.writeStatus(o, { message, observedGeneration: o.metadata.generation }, [
        { type: 'Invalid', status: 'True', reason: 'SpecInvalid', message },
      ]);
      if (was?.status !== 'True' || was.message !== message)
        await this.event(o, 'Warning', 'Invalid', message);
      if (st.runId) await this.mirror(o, true);
      return;
    }
    const valid: ConditionWish = { type: 'Invalid', status: 'False', reason: 'SpecValid', message: '' };
    const { start } = checked;
    const workflowId = start.workflowId;
    const exec = await this.describe(workflowId);

    if (exec?.running) {
      if (exec.version === wanted) return this.adopt(o, workflowId, exec, [valid]);
      const ours = st.workflowId === workflowId && st.runId === exec.firstRunId;
      const policy = o.spec.onNewVersion ?? 'supersede';
      if (!ours) {
        const message = `a rollout of ${exec.version ?? 'another version'} that this object did not start runs for this target (${workflowId}); ${wanted} starts once it has ended`;
        await this.hold(o, 'ForeignRollout', message, [valid]);
        return;
      }
      if (policy !== 'supersede') {
        const message =
          policy === 'queue'
            ? `${wanted} is queued: it starts once the rollout of ${st.version} has ended`
            : `${wanted} is refused while the rollout of ${st.version} runs (onNewVersion: refuse); it is left alone`;
        await this.hold(o, policy === 'queue' ? 'Queued' : 'Refused', message, [valid]);
        return this.mirror(o, true);
      }
      return this.supersede(o, start, [valid]);
    }

    if (exec && st.runId === exec.firstRunId && st.version !== wanted) {
      // This object's previous rollout has ended (rolled back by a supersede, or done): its end goes on record first.
      await this.mirror(o, true);
    }
    if (st.version === wanted && !st.runId && st.startRequestedAt && exec?.version === wanted) {
      // A start was asked for and the controller stopped before it recorded the answer: that run is this object's.
      if (exec.startTime.getTime() >= Date.parse(st.startRequestedAt) - CLOCK_SLACK_MS) {
        return this.adopt(o, workflowId, exec, [valid]);
      }
    }
    return this.startNew(o, start, [valid]);
  }

  /** Starts the rollout the spec asks for, recording the intent first. */
  private async startNew(o: CanaryRollout, start: PreparedStart, wishes: ConditionWish[]): Promise<void> {
    const wanted = o.spec.version;
    const workflowId = start.workflowId;
    // Intent first, so a controller killed between the start and its record finds the run and adopts it.
    await this.writeStatus(o, {
      workflowId,
      version: wanted,
      runId: null,
      startRequestedAt: new Date().toISOString(),
      startedGeneration: o.metadata.generation,
      observedGeneration: o.metadata.generation,
    });
    const result = await this.deps.rollouts.startPrepared(start, {
      onHandover: (line) => this.deps.log(`${keyOf(o)}: ${line}`),
    });
    const message = `${result.started ? 'started' : 'adopted'} the rollout of ${wanted} (${workflowId})`;
    await this.writeStatus(
      o,
      {
        workflowId,
        runId: result.runId,
        version: wanted,
        phase: 'progressing',
        stage: 0,
        weight: 0,
        message,
      },
      [...wishes, { type: 'NewVersionHeld', status: 'False', reason: 'Started', message: '' }],
    );
    await this.event(o, 'Normal', 'Started', message);
    this.lastFullRead.delete(keyOf(o));
  }

  private async adopt(
    o: CanaryRollout,
    workflowId: string,
    exec: Execution,
    wishes: ConditionWish[],
  ): Promise<void> {
    await this.writeStatus(
      o,
      {
        workflowId,
        runId: exec.firstRunId,
        version: o.spec.version,
        observedGeneration: o.metadata.generation,
      },
      [...wishes, { type: 'NewVersionHeld', status: 'False', reason: 'Started', message: '' }],
    );
    const adopted = {
      ...o,
      status: { ...o.status, workflowId, runId: exec.firstRunId, version: o.spec.version },
    };
    this.lastFullRead.delete(keyOf(o));
    await this.mirror(adopted, true);
  }

  private async hold(
    o: CanaryRollout,
    reason: string,
    message: string,
    wishes: ConditionWish[],
  ): Promise<void> {
    const was = o.status?.conditions?.find((c) => c.type === 'NewVersionHeld');
    await this.writeStatus(o, { observedGeneration: o.metadata.generation }, [
      ...wishes,
      { type: 'NewVersionHeld', status: 'True', reason, message },
    ]);
    if (was?.status !== 'True' || was.message !== message) await this.event(o, 'Normal', reason, message);
  }

  /** spec.version changed while this object's rollout runs: roll it back to weight 0, then (next look) start. */
  private async supersede(o: CanaryRollout, start: PreparedStart, wishes: ConditionWish[]): Promise<void> {
    const { workflowId } = start;
    const wanted = o.spec.version;
    const current = await this.deps.rollouts.status(workflowId);
    if (current.phase === 'promoted' && !current.promoting) {
      // Promoted but still soaking or cleaning up: the start hands over (the soak ends, stable takes it), then starts.
      return this.startNew(o, start, wishes);
    }
    const message = `superseding ${current.version}: rolling it back to weight 0, then ${wanted} starts`;
    if (current.phase !== 'rolling_back' && current.phase !== 'rolled_back' && !current.promoting) {
      await this.deps.rollouts.abort(workflowId, {
        reason: `superseded by ${wanted} (${KIND} ${keyOf(o)})`,
        identity: requestedByOf(o),
      });
      await this.event(o, 'Normal', 'Superseding', message);
    }
    await this.writeStatus(o, { observedGeneration: o.metadata.generation }, [
      ...wishes,
      { type: 'NewVersionHeld', status: 'True', reason: 'Superseding', message },
    ]);
    await this.mirror(o, true);
  }

  // ------------------------------------------------------------------------------------------- mirror

  /**
   * The rollout's state onto .status: a describe each look, unless the last list of running rollouts shows it unmoved;
   * the worker is asked only when something moved (or every fullReadEveryMs).
   */
  private async mirror(o: CanaryRollout, force = false): Promise<void> {
    const st = o.status ?? {};
    if (!st.workflowId || !st.runId) return;
    const key = keyOf(o);
    const seen = `${st.phase}/${st.stage}/${st.weight}`;
    const stale = Date.now() - (this.lastFullRead.get(key) ?? 0) > (this.deps.fullReadEveryMs ?? 30_000);
    const listed = this.listedRun(st.workflowId);
    // Listed as running, this object's run, and nothing moved: no describe needed.
    if (!force && !stale && listed?.firstRunId === st.runId && listed.fingerprint === seen) return;
    const exec = await this.describe(st.workflowId);
    if (!exec) return;
    if (exec.firstRunId !== st.runId) return; // another rollout of this target runs now: this one has ended
    const ended = !exec.running && !TERMINAL.includes(st.phase ?? '');
    if (!force && !stale && !ended && exec.fingerprint === seen) return;
    if (!force && !exec.running && TERMINAL.includes(st.phase ?? '')) return;
    let s: RolloutStatus;
    try {
      s = await this.deps.rollouts.status(st.workflowId);
    } catch (err) {
      this.deps.log(`${key}: cannot read the status of ${st.workflowId}: ${errorText(err)}`);
      return;
    }
    this.lastFullRead.set(key, Date.now());
    if (s.version !== st.version) return;
    const fields = statusFields(s);
    const event = transitionEvent(st, s);
    const changed = (Object.keys(fields) as Array<keyof typeof fields>).some((k) => fields[k] !== st[k]);
    const conditions = phaseConditions(s);
    const condChanged = conditions.some((w) => {
      const c = st.conditions?.find((x) => x.type === w.type);
      return !c || c.status !== w.status || c.message !== w.message;
    });
    if (changed || condChanged) await this.writeStatus(o, fields, conditions);
    if (event) await this.event(o, event.type, event.reason, event.message);
  }

  // ------------------------------------------------------------------------------------------- requests

  private async handleRequest(o: CanaryRollout, request: string): Promise<void> {
    const st = o.status ?? {};
    const by = `${requestedByOf(o)} (annotation ${REQUEST_ANNOTATION})`;
    let wish: ConditionWish;
    if (!(REQUESTS as readonly string[]).includes(request)) {
      wish = {
        type: 'Request',
        status: 'False',
        reason: 'UnknownRequest',
        message: `unknown request "${request}": use ${REQUESTS.join(', ')} (approvals stay with the CLI)`,
      };
    } else if (!st.workflowId || !st.runId) {
      wish = {
        type: 'Request',
        status: 'False',
        reason: 'NoRollout',
        message: `${request}: no rollout of this object runs`,
      };
    } else {
      try {
        const r = request as Request;
        if (r === 'pause')
          await this.deps.rollouts.pause(st.workflowId, { identity: by, reason: 'requested on the object' });
        else if (r === 'resume') await this.deps.rollouts.resume(st.workflowId, { identity: by });
        else
          await this.deps.rollouts.promote(st.workflowId, {
            identity: by,
            comment: 'requested on the object',
          });
        wish = {
          type: 'Request',
          status: 'True',
          reason: `${r[0].toUpperCase()}${r.slice(1)}Accepted`,
          message: `${r} accepted`,
        };
      } catch (err) {
        wish = {
          type: 'Request',
          status: 'False',
          reason: 'Rejected',
          message: `${request} refused: ${errorText(err)}`,
        };
      }
    }
    await this.writeStatus(o, {}, [wish]);
    await this.event(o, wish.status === 'True' ? 'Normal' : 'Warning', wish.reason, wish.message);
    await this.patchMeta(o, { annotations: { [REQUEST_ANNOTATION]: null } });
    this.lastFullRead.delete(keyOf(o));
  }

  // ------------------------------------------------------------------------------------------- deletion

  /** A deleted object: its rollout is aborted; the finalizer goes once traffic is back on stable. */
  private async finalize(o: CanaryRollout): Promise<void> {
    const finalizers = o.metadata.finalizers ?? [];
    if (!finalizers.includes(FINALIZER)) return;
    const st = o.status ?? {};
    const exec = st.workflowId ? await this.describe(st.workflowId) : undefined;
    if (
      exec?.running &&
      // Its run, or (deleted between a start and its record) the run of the version it asked for.
      (st.runId
        ? exec.firstRunId === st.runId
        : st.startRequestedAt !== undefined && exec.version === st.version)
    ) {
      const current = await this.deps.rollouts.status(st.workflowId!);
      if (current.phase === 'promoted' && current.soak && !current.promoting) {
        // Deleting the object does not undo a promotion: the soak ends, stable takes the new version.
        await this.deps.rollouts.promote(st.workflowId!, {
          identity: requestedByOf(o),
          comment: `${KIND} ${keyOf(o)} deleted`,
          endSoak: true,
        });
      } else if (!['rolling_back', 'rolled_back', 'promoted'].includes(current.phase) && !current.promoting) {
        await this.deps.rollouts.abort(st.workflowId!, {
          reason: `${KIND} ${keyOf(o)} deleted`,
          identity: requestedByOf(o),
        });
        await this.event(o, 'Normal', 'Deleting', `rolling ${current.version} back: the object was deleted`);
      }
      await this.mirror(o, true);
      return;
    }
    if (st.runId) await this.mirror(o, true);
    await this.patchMeta(o, { finalizers: finalizers.filter((f) => f !== FINALIZER) }, true);
    this.lastFullRead.delete(keyOf(o));
    this.deps.log(`${keyOf(o)}: deleted; its rollout has ended, finalizer removed`);
  }

  // ------------------------------------------------------------------------------------------- plumbing

  private readonly readConfigMap: ConfigMapReader = async (namespace, name, key) => {
    try {
      const cm = await this.deps.core.readNamespacedConfigMap({ namespace, name });
      return cm.data?.[key];
    } catch (err) {
      if (httpStatus(err) === 404) return undefined;
      throw err;
    }
  };

  private async describe(workflowId: string): Promise<Execution | undefined> {
    try {
      const d = await this.deps.rollouts.client.workflow.getHandle(workflowId).describe();
      const sa = d.typedSearchAttributes;
      const firstRunId = d.raw.workflowExecutionInfo?.firstRunId || d.runId;
      return {
        running: d.status.name === 'RUNNING',
        runId: d.runId,
        firstRunId,
        ...(sa.get(SA_VERSION) !== undefined ? { version: sa.get(SA_VERSION) } : {}),
        startTime: d.startTime,
        fingerprint: `${sa.get(SA_PHASE)}/${sa.get(SA_STAGE)}/${sa.get(SA_WEIGHT)}`,
      };
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) return undefined;
      throw err;
    }
  }

  /** A merge patch of .status (conditions merged with what is there; null clears a field). */
  private async writeStatus(
    o: CanaryRollout,
    fields: { [K in keyof CanaryRolloutStatus]?: CanaryRolloutStatus[K] | null },
    wishes: ConditionWish[] = [],
  ): Promise<void> {
    const body: Record<string, unknown> = { ...fields };
    if (wishes.length > 0) {
      body.conditions = mergeConditions(o.status?.conditions, wishes, o.metadata.generation);
    }
    const updated = (await this.deps.custom.patchNamespacedCustomObjectStatus(
      {
        group: GROUP,
        version: VERSION,
        plural: PLURAL,
        namespace: o.metadata.namespace,
        name: o.metadata.name,
        body: { status: body },
      },
      MERGE_PATCH,
    )) as CanaryRollout;
    // Later steps of this look see what was written.
    o.status = updated.status ?? {};
    o.metadata.resourceVersion = updated.metadata.resourceVersion;
  }

  /** A merge patch of the object's metadata; `guarded` makes it conditional on the resourceVersion read. */
  private async patchMeta(
    o: CanaryRollout,
    metadata: Record<string, unknown>,
    guarded = false,
  ): Promise<void> {
    await this.deps.custom.patchNamespacedCustomObject(
      {
        group: GROUP,
        version: VERSION,
        plural: PLURAL,
        namespace: o.metadata.namespace,
        name: o.metadata.name,
        body: {
          metadata: { ...metadata, ...(guarded ? { resourceVersion: o.metadata.resourceVersion } : {}) },
        },
      },
      MERGE_PATCH,
    );
  }

  private async event(
    o: CanaryRollout,
    type: 'Normal' | 'Warning',
    reason: string,
    message: string,
  ): Promise<void> {
    const now = new Date();
    try {
      await this.deps.core.createNamespacedEvent({
        namespace: o.metadata.namespace,
        body: {
          metadata: { generateName: `${o.metadata.name}.`, namespace: o.metadata.namespace },
          involvedObject: {
            apiVersion: API_VERSION,
            kind: KIND,
            name: o.metadata.name,
            namespace: o.metadata.namespace,
            uid: o.metadata.uid,
          },
          type,
          reason,
          message: message.slice(0, 1024),
          source: { component: 'canary-controller' },
          reportingComponent: 'canary.temporal.io/controller',
          reportingInstance: this.deps.identity,
          firstTimestamp: now,
          lastTimestamp: now,
          count: 1,
        },
      });
    } catch (err) {
      // An Event is a courtesy: a failure to record one never blocks the rollout's handling.
      this.deps.log(`${keyOf(o)}: cannot record event ${reason}: ${errorText(err)}`);
    }
  }
}
