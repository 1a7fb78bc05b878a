// The sweeper's activities (workflows/sweep.ts): find canaries whose rollout no longer runs but which still carry
// traffic or replicas, and leave a record on each one swept. The canary Deployment names its rollout and target
// (OWNER_ANNOTATION, written when the rollout prepared it); Temporal says whether that workflow still runs.
import { Context } from '@temporalio/activity';
import type { V1Deployment } from '@kubernetes/client-node';
import type { Target } from '../workflows/target';
import type { StrandedRollout } from '../workflows/sweep-model';
import type { ProviderSource } from './factory';
import { MERGE_PATCH, apiMessage, httpStatus, type KubeClients } from './kube/client';
import {
  OWNER_ANNOTATION,
  OWNER_TARGET_ANNOTATION,
  ROLE_LABEL,
  SWEPT_ANNOTATION,
} from './workloads/deployment';

export interface SweepSource {
  providers: ProviderSource;
  /** The worker's cluster clients; absent when the worker drives no cluster (then nothing can be stranded). */
  kube?: () => KubeClients;
}

/** Why a workflow id does not run, or undefined while it runs. */
export type WorkflowState = (workflowId: string) => Promise<string | undefined>;

export function createSweepActivities(src: SweepSource, workflowState?: WorkflowState) {
  const stateOf: WorkflowState =
    workflowState ??
    (async (workflowId) => {
      try {
        const d = await Context.current().client.workflow.getHandle(workflowId).describe();
        return d.status.name === 'RUNNING' ? undefined : d.status.name;
      } catch (err) {
        if ((err as { name?: string }).name === 'WorkflowNotFoundError') return 'NOT_FOUND';
        throw err;
      }
    });

  return {
    /** The canaries (role=canary, with an owner record) whose rollout does not run and that still carry traffic or replicas. */
    async findStrandedRollouts(input: {
      namespaces?: string[];
    }): Promise<{ scanned: number; stranded: StrandedRollout[] }> {
      if (!src.kube) return { scanned: 0, stranded: [] };
      const kube = src.kube();
      const canaries = await listCanaries(kube, input.namespaces);
      const stranded: StrandedRollout[] = [];
      let scanned = 0;
      for (const d of canaries) {
        const a = d.metadata?.annotations ?? {};
        const workflowId = a[OWNER_ANNOTATION];
        const target = parseTarget(a[OWNER_TARGET_ANNOTATION]);
        if (!workflowId || !target) continue;
        scanned++;
        const workflowStatus = await stateOf(workflowId);
        if (workflowStatus === undefined) continue;
        const canaryReplicas = d.spec?.replicas ?? 1;
        let weight: number | undefined;
        try {
          weight = await src.providers.router(target).getWeight();
        } catch {
          weight = undefined; // routing that cannot be read is swept if the canary still has replicas
        }
        if ((weight ?? 0) === 0 && canaryReplicas === 0) continue;
        // A completed rollout ran its own ending: traffic is where it left it. Only a canary it could not remove
        // after a promotion may still have replicas, and status already says how to remove it: not stranded.
        if (workflowStatus === 'COMPLETED' && (weight ?? 0) === 0) continue;
        Context.current().heartbeat(workflowId);
        const versionLabel =
          target.workload?.kind === 'Deployment' ? target.workload.versionLabel : 'version';
        const version = d.spec?.template?.metadata?.labels?.[versionLabel];
        stranded.push({
          workflowId,
          workflowStatus,
          ...(version ? { version } : {}),
          namespace: d.metadata!.namespace!,
          canary: d.metadata!.name!,
          target,
          ...(weight !== undefined ? { weight } : {}),
          canaryReplicas,
        });
      }
      return { scanned, stranded };
    },

    /** Leaves the sweeper's record on the canary (what it did, when, for which workflow). */
    async recordSweep(input: { namespace: string; canary: string; record: object }): Promise<void> {
      if (!src.kube) return;
      const kube = src.kube();
      try {
        await kube.apps.patchNamespacedDeployment(
          {
            name: input.canary,
            namespace: input.namespace,
            body: { metadata: { annotations: { [SWEPT_ANNOTATION]: JSON.stringify(input.record) } } },
          },
          MERGE_PATCH,
        );
      } catch (err) {
        if (httpStatus(err) === 404) return; // deleted since: nothing left to mark
        throw new Error(
          `cannot record the sweep on deployment ${input.namespace}/${input.canary}: ${apiMessage(err)}`,
        );
      }
    },
  };
}

export type SweepActivities = ReturnType<typeof createSweepActivities>;

async function listCanaries(kube: KubeClients, namespaces: string[] | undefined): Promise<V1Deployment[]> {
  const labelSelector = `${ROLE_LABEL}=canary`;
  try {
    if (!namespaces || namespaces.length === 0) {
      return (await kube.apps.listDeploymentForAllNamespaces({ labelSelector })).items;
    }
    const lists = await Promise.all(
      namespaces.map((namespace) => kube.apps.listNamespacedDeployment({ namespace, labelSelector })),
    );
    return lists.flatMap((l) => l.items);
  } catch (err) {
    const where = namespaces?.length ? `namespaces ${namespaces.join(', ')}` : 'all namespaces';
    throw new Error(
      `the sweeper cannot list deployments in ${where} as ${kube.identity}: ${apiMessage(err)}` +
        (httpStatus(err) === 403
          ? ' (grant list on deployments.apps, as deploy/rbac.yaml does, or name the namespaces it may list with --namespace / CANARY_SWEEP_NAMESPACES)'
          : ''),
    );
  }
}

function parseTarget(text: string | undefined): Target | undefined {
  if (!text) return undefined;
  try {
    const t = JSON.parse(text) as Target;
    return typeof t?.app === 'string' && typeof t?.namespace === 'string' ? t : undefined;
  } catch {
    return undefined;
  }
}
