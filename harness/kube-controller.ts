// A stand-in for the Deployment controller and the kubelet, which the test API server does not run: it polls the
// Deployments of one namespace and, some time after each new generation, writes the status a real cluster would
// report once the rollout finished (every replica updated, ready and available). Until then the status stays what
// it was, observedGeneration included, so code that trusts counts from an older generation is caught.
import {
  AppsV1Api,
  type KubeConfig,
  type V1Deployment,
  type V1DeploymentStatus,
} from '@kubernetes/client-node';
import { MERGE_PATCH } from '../activities/kube/client';
import { statusOf } from './kube';

export interface DeploymentSimulatorOptions {
  /** How long after a new generation is first seen its pods are available (default 1000 ms). */
  readyAfterMs?: number;
  /**
   * Deployments whose pods never become available (a crashing canary): their status shows the new generation
   * observed with no available replica, and, after spec.progressDeadlineSeconds, ProgressDeadlineExceeded.
   */
  neverReady?: (name: string) => boolean;
  /** How often the namespace is listed (default 50 ms). */
  pollMs?: number;
}

export interface DeploymentSimulator {
  /** Stops polling; resolves after the last status write finished. */
  stop(): Promise<void>;
}

export function startDeploymentSimulator(
  kc: KubeConfig,
  namespace: string,
  opts: DeploymentSimulatorOptions = {},
): DeploymentSimulator {
  const apps = kc.makeApiClient(AppsV1Api);
  const readyAfterMs = opts.readyAfterMs ?? 1000;
  const pollMs = opts.pollMs ?? 50;
  const neverReady = opts.neverReady ?? (() => false);
  // When each Deployment's current generation was first seen, keyed by uid (a re-created Deployment starts over).
  const seen = new Map<string, { generation: number; since: number }>();
  let stopped = false;

  const desiredStatus = (d: V1Deployment, now: number): V1DeploymentStatus | undefined => {
    const generation = d.metadata?.generation ?? 1;
    const key = d.metadata?.uid ?? d.metadata?.name ?? '';
    let first = seen.get(key);
    if (!first || first.generation !== generation) {
      first = { generation, since: now };
      seen.set(key, first);
    }
    const replicas = d.spec?.replicas ?? 1;
    const elapsed = now - first.since;
    const at = new Date();
    if (neverReady(d.metadata?.name ?? '')) {
      const deadlineMs = (d.spec?.progressDeadlineSeconds ?? 600) * 1000;
      const exceeded = elapsed >= deadlineMs;
      return {
        observedGeneration: generation,
        replicas,
        updatedReplicas: replicas,
        readyReplicas: 0,
        availableReplicas: 0,
        ...(replicas > 0 ? { unavailableReplicas: replicas } : {}),
        conditions: [
          {
            type: 'Available',
            status: replicas > 0 ? 'False' : 'True',
            reason: replicas > 0 ? 'MinimumReplicasUnavailable' : 'MinimumReplicasAvailable',
            message:
              replicas > 0
                ? 'Deployment does not have minimum availability.'
                : 'Deployment has minimum availability.',
            lastUpdateTime: at,
            lastTransitionTime: at,
          },
          exceeded && replicas > 0
            ? {
                type: 'Progressing',
                status: 'False',
                reason: 'ProgressDeadlineExceeded',
                message: `ReplicaSet "${d.metadata?.name}-sim" has timed out progressing.`,
                lastUpdateTime: at,
                lastTransitionTime: at,
              }
            : {
                type: 'Progressing',
                status: 'True',
                reason: 'ReplicaSetUpdated',
                message: `ReplicaSet "${d.metadata?.name}-sim" is progressing.`,
                lastUpdateTime: at,
                lastTransitionTime: at,
              },
        ],
      };
    }
    if (elapsed < readyAfterMs) return undefined;
    return {
      observedGeneration: generation,
      replicas,
      updatedReplicas: replicas,
      readyReplicas: replicas,
      availableReplicas: replicas,
      conditions: [
        {
          type: 'Available',
          status: 'True',
          reason: 'MinimumReplicasAvailable',
          message: 'Deployment has minimum availability.',
          lastUpdateTime: at,
          lastTransitionTime: at,
        },
        {
          type: 'Progressing',
          status: 'True',
          reason: 'NewReplicaSetAvailable',
          message: `ReplicaSet "${d.metadata?.name}-sim" has successfully progressed.`,
          lastUpdateTime: at,
          lastTransitionTime: at,
        },
      ],
    };
  };

  // Writes only when the counts or the condition reasons differ, so a settled Deployment's resourceVersion stays put.
  const same = (a: V1DeploymentStatus | undefined, b: V1DeploymentStatus): boolean => {
    const counts = (s: V1DeploymentStatus | undefined) =>
      [s?.observedGeneration, s?.replicas, s?.updatedReplicas, s?.readyReplicas, s?.availableReplicas]
        .map((n) => n ?? 0)
        .join(',') +
      '|' +
      (s?.conditions ?? [])
        .map((c) => `${c.type}=${c.status}/${c.reason}`)
        .sort()
        .join(',');
    return counts(a) === counts(b);
  };

  const tick = async (): Promise<void> => {
    const list = await apps.listNamespacedDeployment({ namespace });
    const now = Date.now();
    for (const d of list.items) {
      const status = desiredStatus(d, now);
      if (!status || same(d.status, status)) continue;
      try {
        // Guarded by the read resourceVersion: a status computed from an older spec is never written.
        await apps.patchNamespacedDeploymentStatus(
          {
            name: d.metadata!.name!,
            namespace,
            body: { metadata: { resourceVersion: d.metadata?.resourceVersion }, status },
          },
          MERGE_PATCH,
        );
      } catch (err) {
        // Changed or deleted since the list: the next tick sees the new state.
        if (statusOf(err) !== 409 && statusOf(err) !== 404) throw err;
      }
    }
  };

  const loop = (async () => {
    while (!stopped) {
      try {
        await tick();
      } catch (err) {
        // Keep simulating (the server may be restarting in a test); say why once per failure.
        console.warn(`deployment simulator (${namespace}): ${(err as Error).message}`);
      }
      await new Promise((r) => setTimeout(r, pollMs));
    }
  })();

  return {
    stop: async () => {
      stopped = true;
      await loop;
    },
  };
}
