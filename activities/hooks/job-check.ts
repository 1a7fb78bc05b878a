// One round of a `job` check (workflows/analysis-job.ts): the check's Job is run to its end by the Job runner hooks
// use (job.ts), under a name fixed by the rollout, the stage and the round, so a retried measurement adopts the Job
// an earlier attempt created instead of starting a second one. Its end is the value: 1 succeeded, 0 failed; a Job
// that does not finish in time (its deadline, or the wait's) is a failed query, no evidence either way.
import type { V1PodTemplateSpec } from '@kubernetes/client-node';
import type { AnalysisCheck } from '../../workflows/analysis-model';
import type { RoundMeasurement } from '../../workflows/judge-types';
import type { KubeClients } from '../kube/client';
import { cancellation, heartbeat } from '../heartbeat';
import { ProviderError } from '../types';
import { JOB_PURPOSE_LABEL, JOB_ROLLOUT_LABEL, JobRunner, jobName, labelValue } from './job';
import { podTemplate } from './index';
import { excerptOf } from './types';

export interface JobCheckRound {
  namespace: string;
  /** The rollout's workflow id (labels the Job). */
  rolloutId: string;
  /** Stable for every attempt of one round of one rollout (e.g. `id/run/stage/round`). */
  roundKey: string;
}

export async function measureJobCheck(
  check: AnalysisCheck,
  round: JobCheckRound | undefined,
  kube: (() => KubeClients) | undefined,
  opts: { atMs?: number; pollMs?: number; cancelled?: AbortSignal } = {},
): Promise<RoundMeasurement> {
  const signal = opts.cancelled ?? cancellation();
  const job = check.job!;
  const where = `job check ${JSON.stringify(check.name)}`;
  if (opts.atMs !== undefined) {
    return {
      value: null,
      error: { kind: 'unsupported', message: `${where}: a Job runs now only, not as of a past time` },
    };
  }
  if (!kube || !round) {
    return {
      value: null,
      error: {
        kind: 'auth',
        message: `${where}: this worker has no Kubernetes cluster configured (KUBECONFIG or a service account)`,
      },
    };
  }
  const { namespace } = round;
  const name = jobName(`check-${check.name}`, `${round.roundKey}/${check.name}`);
  try {
    const runner = new JobRunner(kube(), {
      heartbeat: () => heartbeat(),
      pollMs: opts.pollMs ?? 1000,
      ...(signal ? { cancelled: signal } : {}),
    });
    const template: V1PodTemplateSpec = job.template
      ? (job.template as V1PodTemplateSpec)
      : podTemplate(
          await runner.configMapText(namespace, job.configMapRef!),
          `configmap ${job.configMapRef!.name} key ${job.configMapRef!.key}`,
        );
    const end = await runner.run({
      namespace,
      name,
      labels: {
        [JOB_ROLLOUT_LABEL]: labelValue(round.rolloutId),
        [JOB_PURPOSE_LABEL]: labelValue(`check-${check.name}`),
      },
      podTemplate: template,
      timeoutMs: job.timeoutMs,
      ttlSeconds: job.ttlMs / 1000,
    });
    const excerpt = excerptOf(end.logs ?? '');
    const code = end.exitCode !== undefined ? ` (exit code ${end.exitCode})` : '';
    const why = end.reason ? `: ${end.reason}` : '';
    const logs = excerpt ? `; logs: ${excerpt}` : '';
    if (end.state === 'timed_out' || /^DeadlineExceeded/.test(end.reason ?? '')) {
      return {
        value: null,
        error: { kind: 'timeout', message: `${where}: job ${name} timed out${why}` },
        detail: `job ${name} timed out${why}${logs}`,
      };
    }
    const ok = end.state === 'succeeded';
    return { value: ok ? 1 : 0, detail: `job ${name} ${ok ? 'succeeded' : 'failed'}${code}${why}${logs}` };
  } catch (err) {
    // Cancelled (an abort mid-round): the runner deleted the Job; the round has no value to give.
    if (signal?.aborted) throw err;
    // A pod template that cannot be read (a missing ConfigMap key) is a wrong check, as a rejected query is.
    const kind = err instanceof ProviderError && err.permanent ? 'bad_query' : 'error';
    return {
      value: null,
      error: { kind, message: `${where}: ${err instanceof Error ? err.message : String(err)}` },
    };
  }
}
