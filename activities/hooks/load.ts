// Load during analysis (workflows/plan-load.ts): a Kubernetes Job running a load tool at the canary while a stage is
// analysed. Started (not waited for) when the stage starts, deleted when it ends. Its name comes from a key the
// rollout keeps stable across retries, so a retried start adopts the running Job (AlreadyExists). Best effort: what
// goes wrong is answered, never thrown past the retries, and the rollout only warns.
import type { V1Container, V1EnvVar, V1PodTemplateSpec } from '@kubernetes/client-node';
import { BatchV1Api } from '@kubernetes/client-node';
import { LOAD_DEFAULTS, canaryUrl, type Load } from '../../workflows/plan-load';
import type { Target } from '../../workflows/target';
import { httpStatus, type KubeClients } from '../kube/client';
import { JOB_PURPOSE_LABEL, JOB_ROLLOUT_LABEL, JobRunner, jobName, labelValue } from './job';

export interface LoadStartInput {
  target: Target;
  load: Load;
  rolloutId: string;
  /** 1-based stage. */
  stage: number;
  /** The same for every attempt of one stage entry's load. */
  key: string;
}

export interface LoadStartResult {
  job: string;
  url?: string;
  adopted: boolean;
}

/** How long the tool runs: as written, else as long as a lost Job may live (it is deleted when its stage ends). */
function runSeconds(load: Load): number {
  return Math.max(1, Math.round((load.durationMs ?? LOAD_DEFAULTS.maxRunMs) / 1000));
}

/** A k6 script at a constant arrival rate (requests per second, all VUs together). */
function k6Script(load: Load, seconds: number): string {
  const options = {
    scenarios: {
      load: {
        executor: 'constant-arrival-rate',
        rate: load.rate,
        timeUnit: '1s',
        duration: `${seconds}s`,
        preAllocatedVUs: load.concurrency,
        maxVUs: load.concurrency,
      },
    },
  };
  return [
    "import http from 'k6/http';",
    `export const options = ${JSON.stringify(options)};`,
    'export default function () { http.get(__ENV.LOAD_URL); }',
  ].join('\n');
}

/** The Job's pod template: the tool's container from rate, concurrency, duration and URL, or the plan's own. */
export function loadPodTemplate(load: Load, url: string | undefined): V1PodTemplateSpec {
  const seconds = runSeconds(load);
  const env: V1EnvVar[] = [
    ...(url ? [{ name: 'LOAD_URL', value: url }] : []),
    { name: 'LOAD_RATE', value: String(load.rate) },
    { name: 'LOAD_CONCURRENCY', value: String(load.concurrency) },
    { name: 'LOAD_DURATION_SECONDS', value: String(seconds) },
  ];
  if (load.template) {
    const t = structuredClone(load.template) as V1PodTemplateSpec;
    t.spec!.containers = t.spec!.containers.map((c) => ({ ...c, env: [...(c.env ?? []), ...env] }));
    return t;
  }
  let container: V1Container;
  if (load.tool === 'k6') {
    container = {
      name: 'load',
      image: load.image,
      command: ['sh', '-c', 'printf "%s" "$K6_SCRIPT" > /tmp/load.js && exec k6 run --quiet /tmp/load.js'],
      env: [...env, { name: 'K6_SCRIPT', value: k6Script(load, seconds) }],
    };
  } else {
    // hey's -q is per worker: the plan's rate is for all of them together.
    const perWorker = Math.round((load.rate / load.concurrency) * 1000) / 1000;
    container = {
      name: 'load',
      image: load.image,
      args: ['-z', `${seconds}s`, '-q', String(perWorker), '-c', String(load.concurrency), url ?? ''],
      env,
    };
  }
  return { spec: { containers: [container], restartPolicy: 'Never' } };
}

export function createLoadActivities(kube: (() => KubeClients) | undefined) {
  const clients = () => {
    if (!kube) {
      throw new Error(
        'this worker has no Kubernetes cluster configured (KUBECONFIG or a service account) to run load Jobs',
      );
    }
    return kube();
  };
  return {
    /** Starts the stage's load Job, or adopts the one an earlier attempt started. */
    async startLoad(input: LoadStartInput): Promise<LoadStartResult> {
      const { load, target } = input;
      const url = load.url ?? canaryUrl(target);
      const job = jobName(`load-stage-${input.stage}`, input.key);
      const runner = new JobRunner(clients());
      const { adopted } = await runner.start({
        namespace: target.namespace,
        name: job,
        labels: {
          [JOB_ROLLOUT_LABEL]: labelValue(input.rolloutId),
          [JOB_PURPOSE_LABEL]: 'load',
        },
        podTemplate: loadPodTemplate(load, url),
        // The tool's run, and a little for the image pull; the Job is deleted when its stage ends anyway.
        timeoutMs: runSeconds(load) * 1000 + 5 * 60_000,
        ttlSeconds: 600,
      });
      return { job, adopted, ...(url ? { url } : {}) };
    },

    /**
     * Stops a load Job (deletes it and its pods); one already gone is fine. Answers how it had ended, when it had
     * failed before it was stopped (a load that failed warns).
     */
    async stopLoad(input: { target: Target; job: string }): Promise<{ failed?: string }> {
      const namespace = input.target.namespace;
      const c = clients();
      let failed: string | undefined;
      try {
        const job = await c.config
          .makeApiClient(BatchV1Api)
          .readNamespacedJob({ name: input.job, namespace });
        const f = job.status?.conditions?.find((x) => x.type === 'Failed' && x.status === 'True');
        if (f) failed = `${f.reason ?? 'Failed'}${f.message ? `: ${f.message}` : ''}`;
      } catch (err) {
        if (httpStatus(err) === 404) return {};
        // Unreadable: it is deleted all the same.
      }
      await new JobRunner(c).remove(namespace, input.job);
      return failed ? { failed } : {};
    },
  };
}
