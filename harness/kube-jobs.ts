// A stand-in for the Job controller and the kubelet, which the test API server does not run: it polls the Jobs of
// one namespace and, some time after each one appears, makes the pod the controller would have made (from the
// Job's template, with its labels), marks that pod terminated with the exit code the test chose, and writes the
// Job status a real cluster reports (SuccessCriteriaMet + Complete, or FailureTarget + Failed). There is no kubelet,
// so the pod has no logs: reading them fails as it does for a pod without a node.
import { BatchV1Api, CoreV1Api, type KubeConfig, type V1Job } from '@kubernetes/client-node';
import { statusOf } from './kube';

export interface JobSimulatorOptions {
  /** The exit code of a Job's pod, by Job name (default 0: success). */
  exitCode?: (jobName: string) => number;
  /** How long after a Job is first seen it ends (default 300 ms). */
  runMs?: number;
  /** Jobs that never end (a hook that hangs). */
  hangs?: (jobName: string) => boolean;
  pollMs?: number;
}

export interface JobSimulator {
  /** Every Job seen, as it was first read (spec and labels as the worker wrote them). */
  seen: V1Job[];
  stop(): Promise<void>;
}

export function startJobSimulator(
  kc: KubeConfig,
  namespace: string,
  opts: JobSimulatorOptions = {},
): JobSimulator {
  const batch = kc.makeApiClient(BatchV1Api);
  const core = kc.makeApiClient(CoreV1Api);
  const runMs = opts.runMs ?? 300;
  const firstSeen = new Map<string, number>();
  const seen: V1Job[] = [];
  let stopped = false;

  const finish = async (job: V1Job): Promise<void> => {
    const name = job.metadata!.name!;
    const code = opts.exitCode?.(name) ?? 0;
    const started = new Date(firstSeen.get(job.metadata!.uid!)!);
    const now = new Date();
    const template = job.spec!.template;
    const podName = `${name}-sim`;
    try {
      await core.createNamespacedPod({
        namespace,
        body: {
          metadata: { name: podName, labels: { ...(template.metadata?.labels ?? {}), 'job-name': name } },
          spec: template.spec!,
        },
      });
    } catch (err) {
      if (statusOf(err) !== 409) throw err;
    }
    await core.replaceNamespacedPodStatus({
      name: podName,
      namespace,
      body: {
        ...(await core.readNamespacedPod({ name: podName, namespace })),
        status: {
          phase: code === 0 ? 'Succeeded' : 'Failed',
          containerStatuses: template.spec!.containers.map((c) => ({
            name: c.name,
            image: c.image ?? '',
            imageID: '',
            ready: false,
            restartCount: 0,
            state: {
              terminated: {
                exitCode: code,
                reason: code === 0 ? 'Completed' : 'Error',
                startedAt: started,
                finishedAt: now,
              },
            },
          })),
        },
      },
    });
    const ok = code === 0;
    const condition = (type: string, reason: string, message: string) => ({
      type,
      status: 'True',
      reason,
      message,
      lastProbeTime: now,
      lastTransitionTime: now,
    });
    await batch.replaceNamespacedJobStatus({
      name,
      namespace,
      body: {
        ...job,
        status: ok
          ? {
              startTime: started,
              completionTime: now,
              succeeded: 1,
              ready: 0,
              terminating: 0,
              uncountedTerminatedPods: {},
              conditions: [
                condition(
                  'SuccessCriteriaMet',
                  'CompletionsReached',
                  'Reached expected number of succeeded pods',
                ),
                condition('Complete', 'CompletionsReached', 'Reached expected number of succeeded pods'),
              ],
            }
          : {
              startTime: started,
              failed: 1,
              ready: 0,
              terminating: 0,
              uncountedTerminatedPods: {},
              conditions: [
                condition(
                  'FailureTarget',
                  'BackoffLimitExceeded',
                  'Job has reached the specified backoff limit',
                ),
                condition('Failed', 'BackoffLimitExceeded', 'Job has reached the specified backoff limit'),
              ],
            },
      },
    });
  };

  const tick = async (): Promise<void> => {
    const list = await batch.listNamespacedJob({ namespace });
    const now = Date.now();
    for (const job of list.items) {
      const uid = job.metadata?.uid ?? '';
      if (!firstSeen.has(uid)) {
        firstSeen.set(uid, now);
        seen.push(job);
      }
      const ended = (job.status?.conditions ?? []).some((c) => c.type === 'Complete' || c.type === 'Failed');
      if (ended || opts.hangs?.(job.metadata!.name!) || now - firstSeen.get(uid)! < runMs) continue;
      try {
        await finish(job);
      } catch (err) {
        // Deleted or changed since the list: the next tick sees the new state.
        if (statusOf(err) !== 409 && statusOf(err) !== 404) throw err;
      }
    }
  };

  const loop = (async () => {
    while (!stopped) {
      try {
        await tick();
      } catch (err) {
        console.warn(`job simulator (${namespace}): ${(err as Error).message}`);
      }
      await new Promise((r) => setTimeout(r, opts.pollMs ?? 50));
    }
  })();

  return {
    seen,
    stop: async () => {
      stopped = true;
      await loop;
    },
  };
}
