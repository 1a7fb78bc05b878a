// Runs a Kubernetes Job to its end: a separate module with a small API, so hooks, load generators and job checks
// share it. The Job's name is deterministic (from a key the caller keeps stable across retries), so a retried
// activity adopts the Job an earlier attempt created (AlreadyExists) instead of starting a second one. It waits
// with heartbeats, reads an excerpt of its pods' logs (best effort: a cluster without kubelets, like the tests'
// API server, has none, and the excerpt says so), and deletes the Job (and, in the background, its pods) after, or
// at once when the wait is cancelled (the activity's cancellation: an abort mid-round); ttlSecondsAfterFinished is
// the safety net when the worker is gone before it can.
import { createHash } from 'node:crypto';
import { BatchV1Api, type V1Job, type V1Pod, type V1PodTemplateSpec } from '@kubernetes/client-node';
import { apiMessage, httpStatus, kubeCall, kubeError, type KubeClients } from '../kube/client';
import { ProviderError } from '../types';

/** Who made a Job, and for which rollout: every Job this module creates carries these labels. */
export const JOB_MANAGED_BY = 'temporal-canary';
export const JOB_ROLLOUT_LABEL = 'canary.temporal.io/rollout';
export const JOB_PURPOSE_LABEL = 'canary.temporal.io/purpose';
/** On the Job's pods, so they are found without the job controller's own labels. */
export const JOB_NAME_LABEL = 'canary.temporal.io/job';

export interface JobSpec {
  namespace: string;
  /** From {@link jobName}: the same for every retry of one run. */
  name: string;
  /** Merged into the Job's and its pods' labels (label values: see {@link labelValue}). */
  labels: Record<string, string>;
  /** The pod template: `spec.containers` at least; restartPolicy defaults to Never. */
  podTemplate: V1PodTemplateSpec;
  /** The Job's activeDeadlineSeconds; the wait gives up a little after it. */
  timeoutMs: number;
  /** ttlSecondsAfterFinished. */
  ttlSeconds: number;
}

export interface JobOutcome {
  state: 'succeeded' | 'failed' | 'timed_out';
  /** The first terminated container's exit code, when a pod reported one. */
  exitCode?: number;
  /** The Job's condition reason and message, or why the wait gave up. */
  reason?: string;
  /** The start of the pods' logs, or why none could be read. */
  logs?: string;
  /** An earlier attempt had created the Job already. */
  adopted: boolean;
}

/** `<prefix>-<hash of key>`: a valid Job name (at most 63 characters, DNS label), the same for the same key. */
export function jobName(prefix: string, key: string): string {
  const hash = createHash('sha256').update(key).digest('hex').slice(0, 10);
  const clean = prefix
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 63 - hash.length - 1)
    .replace(/-+$/, '');
  return clean ? `${clean}-${hash}` : `job-${hash}`;
}

/** A label value (at most 63 characters of [A-Za-z0-9-_.], starting and ending alphanumeric). */
export function labelValue(text: string): string {
  return text
    .replace(/[^A-Za-z0-9._-]+/g, '-')
    .slice(0, 63)
    .replace(/^[^A-Za-z0-9]+|[^A-Za-z0-9]+$/g, '');
}

export interface JobRunnerOptions {
  /** How often the Job is read while it runs (default 1 s). */
  pollMs?: number;
  /** Called at every poll (an activity's heartbeat). */
  heartbeat?: () => void;
  /** How many log lines per pod the excerpt reads (default 40). */
  tailLines?: number;
  /** How long after the Job's deadline the wait gives up (default 30 s). */
  graceMs?: number;
  /** The activity's cancellation: the wait stops at once, and run() deletes the Job before it rethrows. */
  cancelled?: AbortSignal;
}

/** What a cancelled wait throws: the signal's reason (the activity's CancelledFailure), or an Error saying so. */
function cancelledError(signal: AbortSignal): unknown {
  return signal.reason ?? new Error('the Job wait was cancelled');
}

export class JobRunner {
  private readonly batch: BatchV1Api;

  constructor(
    private readonly clients: KubeClients,
    private readonly opts: JobRunnerOptions = {},
  ) {
    this.batch = clients.config.makeApiClient(BatchV1Api);
  }

  /** Creates the Job, or adopts the one an earlier attempt created under the same name. */
  async start(spec: JobSpec): Promise<{ adopted: boolean }> {
    const { namespace, name } = spec;
    const labels = { 'app.kubernetes.io/managed-by': JOB_MANAGED_BY, ...spec.labels };
    const template = spec.podTemplate;
    const body: V1Job = {
      apiVersion: 'batch/v1',
      kind: 'Job',
      metadata: { name, namespace, labels },
      spec: {
        backoffLimit: 0,
        activeDeadlineSeconds: Math.max(1, Math.ceil(spec.timeoutMs / 1000)),
        ttlSecondsAfterFinished: Math.max(0, Math.round(spec.ttlSeconds)),
        template: {
          ...template,
          metadata: {
            ...(template.metadata ?? {}),
            labels: { ...(template.metadata?.labels ?? {}), ...labels, [JOB_NAME_LABEL]: name },
          },
          spec: { restartPolicy: 'Never', ...template.spec!, containers: template.spec!.containers },
        },
      },
    };
    try {
      await this.batch.createNamespacedJob({ namespace, body });
      return { adopted: false };
    } catch (err) {
      if (httpStatus(err) !== 409) throw this.error(err, 'create', namespace, name);
      return { adopted: true };
    }
  }

  /** Reads the Job until it ends or its deadline (and the grace) passes. */
  async wait(spec: JobSpec, startedAt = Date.now()): Promise<Omit<JobOutcome, 'adopted' | 'logs'>> {
    const { namespace, name } = spec;
    const pollMs = this.opts.pollMs ?? 1000;
    const giveUpAt = startedAt + spec.timeoutMs + (this.opts.graceMs ?? 30_000);
    const signal = this.opts.cancelled;
    for (;;) {
      if (signal?.aborted) throw cancelledError(signal);
      this.opts.heartbeat?.();
      const job = await kubeCall({ verb: 'get', resource: 'jobs.batch', namespace, name }, this.clients, () =>
        this.batch.readNamespacedJob({ name, namespace }),
      );
      const ended = (type: string) =>
        job.status?.conditions?.find((c) => c.type === type && c.status === 'True');
      const done = ended('Complete') ?? ended('SuccessCriteriaMet');
      const failed = ended('Failed') ?? ended('FailureTarget');
      if (done || failed || (job.status?.succeeded ?? 0) > 0 || (job.status?.failed ?? 0) > 0) {
        const c = failed ?? done;
        const exitCode = await this.exitCode(namespace, name);
        return {
          state: failed || (!done && (job.status?.failed ?? 0) > 0) ? 'failed' : 'succeeded',
          ...(exitCode !== undefined ? { exitCode } : {}),
          ...(c?.reason ? { reason: `${c.reason}${c.message ? `: ${c.message}` : ''}` } : {}),
        };
      }
      if (Date.now() >= giveUpAt) {
        return { state: 'timed_out', reason: `did not finish within ${Math.round(spec.timeoutMs / 1000)}s` };
      }
      await pause(pollMs, signal);
    }
  }

  private async pods(namespace: string, name: string): Promise<V1Pod[]> {
    const list = await this.clients.core.listNamespacedPod({
      namespace,
      labelSelector: `${JOB_NAME_LABEL}=${name}`,
    });
    return list.items;
  }

  private async exitCode(namespace: string, name: string): Promise<number | undefined> {
    try {
      for (const pod of await this.pods(namespace, name)) {
        for (const c of pod.status?.containerStatuses ?? []) {
          const code = c.state?.terminated?.exitCode;
          if (code !== undefined) return code;
        }
      }
    } catch {
      // Best effort: the Job's own status decided the outcome.
    }
    return undefined;
  }

  /** The last lines of each pod's log, or why none could be read (no pod, no kubelet, no permission). */
  async logs(namespace: string, name: string): Promise<string> {
    let pods: V1Pod[];
    try {
      pods = await this.pods(namespace, name);
    } catch (err) {
      return `(no logs: cannot list the Job's pods: ${this.error(err, 'list', namespace).message})`;
    }
    if (pods.length === 0) return '(no logs: the Job has no pods)';
    const parts: string[] = [];
    for (const pod of pods) {
      const podName = pod.metadata?.name ?? '';
      try {
        const text = await this.clients.core.readNamespacedPodLog({
          name: podName,
          namespace,
          tailLines: this.opts.tailLines ?? 40,
        });
        parts.push(pods.length > 1 ? `[${podName}] ${text}` : text);
      } catch (err) {
        const status = httpStatus(err);
        parts.push(
          `(no logs from pod ${podName}: ${status ? `HTTP ${status}: ` : ''}${apiMessage(err).slice(0, 200)})`,
        );
      }
    }
    return parts.join('\n');
  }

  /** Deletes the Job and (in the background) its pods; a Job already gone is fine. */
  async remove(namespace: string, name: string): Promise<void> {
    try {
      await this.batch.deleteNamespacedJob({ name, namespace, propagationPolicy: 'Background' });
    } catch (err) {
      if (httpStatus(err) !== 404) throw this.error(err, 'delete', namespace, name);
    }
  }

  /** start, wait, logs, remove: one run of the Job to its end; a cancelled run removes the Job at once. */
  async run(spec: JobSpec): Promise<JobOutcome> {
    const started = Date.now();
    const { adopted } = await this.start(spec);
    let end: Awaited<ReturnType<JobRunner['wait']>>;
    try {
      end = await this.wait(spec, started);
    } catch (err) {
      if (this.opts.cancelled?.aborted) {
        // Nobody waits for its end any more: it would only run on until its deadline, then linger until its TTL.
        await this.remove(spec.namespace, spec.name).catch(() => undefined);
      }
      throw err;
    }
    const logs = await this.logs(spec.namespace, spec.name);
    await this.remove(spec.namespace, spec.name);
    return { ...end, adopted, logs };
  }

  /** A ConfigMap key holding a pod template (YAML or JSON), parsed by `parse`. */
  async configMapText(namespace: string, ref: { name: string; key: string }): Promise<string> {
    const cm = await kubeCall(
      { verb: 'get', resource: 'configmaps', namespace, name: ref.name },
      this.clients,
      () => this.clients.core.readNamespacedConfigMap({ name: ref.name, namespace }),
    );
    const text = cm.data?.[ref.key];
    if (text === undefined) {
      throw new ProviderError(
        'invalid',
        `configmap "${ref.name}" in namespace "${namespace}" has no key "${ref.key}" (keys: ${Object.keys(cm.data ?? {}).join(', ') || 'none'})`,
      );
    }
    return text;
  }

  private error(err: unknown, verb: string, namespace: string, name?: string): Error {
    const resource = verb === 'list' ? 'pods' : 'jobs.batch';
    return kubeError(err, { verb, resource, namespace, ...(name ? { name } : {}) }, this.clients);
  }
}

/** Waits `ms`, or less when `signal` aborts meanwhile (the caller checks it). */
function pause(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}
