// One worker serving several clusters: CANARY_CLUSTERS names each cluster a release member may name (`cluster:`) and
// the kubeconfig context that reaches it. The worker then polls `<queue>.<cluster>` for each, with activities whose
// Kubernetes client uses that context, beside its own queue. Credentials stay in the kubeconfig file: the workflow
// input only ever names the cluster.
import { providerConfigFromEnv, ProviderRegistry, type ProviderConfig } from '../activities/factory';
import { loadKubeConfig } from '../activities/kube/client';
import { clusterTaskQueue } from '../workflows/release-model';
import type { ConfigProblem } from './config';

export const CLUSTERS_VARIABLE = 'CANARY_CLUSTERS';

/** A cluster this worker serves, and the kubeconfig context that reaches it. */
export interface ClusterEntry {
  cluster: string;
  context: string;
}

/** As release files name clusters (workflows/release-model.ts). */
const CLUSTER_NAME = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

/**
 * CANARY_CLUSTERS=`eu-west=ctx-eu,us-east=ctx-us` (commas or newlines between entries; a context name runs to the
 * end of its entry). Unset or empty: no cluster registry. Problems go to `problems` (a configuration error, exit 2).
 */
export function loadClusterRegistry(env: NodeJS.ProcessEnv, problems: ConfigProblem[]): ClusterEntry[] {
  const text = env[CLUSTERS_VARIABLE]?.trim();
  if (!text) return [];
  const entries: ClusterEntry[] = [];
  for (const raw of text.split(/[,\n]/)) {
    const entry = raw.trim();
    if (entry === '') continue;
    const eq = entry.indexOf('=');
    const cluster = eq < 0 ? entry : entry.slice(0, eq).trim();
    const context = eq < 0 ? '' : entry.slice(eq + 1).trim();
    const problem = (message: string) => problems.push({ variable: CLUSTERS_VARIABLE, problem: message });
    if (eq < 0 || context === '') {
      problem(`"${entry}" names no kubeconfig context: write cluster=context, e.g. eu-west=prod-eu-west`);
      continue;
    }
    if (!CLUSTER_NAME.test(cluster)) {
      problem(
        `"${cluster}" is not a cluster name (lowercase letters, digits and dashes, as release files name it)`,
      );
      continue;
    }
    if (entries.some((e) => e.cluster === cluster)) {
      problem(`cluster ${cluster} is named twice`);
      continue;
    }
    entries.push({ cluster, context });
  }
  return entries;
}

/** What the worker runs for one cluster: its task queue and providers whose Kubernetes client uses its context. */
export interface ClusterProviders extends ClusterEntry {
  taskQueue: string;
  registry: ProviderRegistry;
}

/** A context the registry names is not in the kubeconfig: the worker does not start (exit 2). */
export class ClusterContextError extends Error {
  override readonly name = 'ClusterContextError';
}

/**
 * The providers of each cluster in the registry, every context checked against the worker's kubeconfig now (the
 * worker's own CANARY_KUBECONFIG, KUBECONFIG or ~/.kube/config), so a missing one stops the worker at start naming it.
 */
export function clusterProviders(
  env: NodeJS.ProcessEnv,
  entries: ClusterEntry[],
  taskQueue: string,
  base: ProviderConfig = providerConfigFromEnv(env),
): ClusterProviders[] {
  if (entries.length === 0) return [];
  const file = base.kube.kubeconfig;
  const kc = loadKubeConfig(file ? { kubeconfig: file } : {});
  const known = kc.getContexts().map((c) => c.name);
  const missing = entries.filter((e) => !known.includes(e.context));
  if (missing.length > 0) {
    throw new ClusterContextError(
      `${CLUSTERS_VARIABLE}: ` +
        missing
          .map((e) => `cluster ${e.cluster} names kubeconfig context "${e.context}", which is not in`)
          .join('; ') +
        ` ${file ? `kubeconfig ${file}` : 'the kubeconfig'} (its contexts: ${known.join(', ') || 'none'})`,
    );
  }
  return entries.map((e) => {
    const registry = new ProviderRegistry({ ...base, kube: { ...base.kube, context: e.context } });
    // Loaded now: a context whose credentials cannot be read stops the worker at start, not at a rollout's.
    registry.kubeClients();
    return { ...e, taskQueue: clusterTaskQueue(taskQueue, e.cluster), registry };
  });
}

/** `eu-west (context prod-eu) on canary-rollouts.eu-west, ...`, for the worker's start-up line. */
export function describeClusters(clusters: ClusterProviders[]): string {
  return clusters.map((c) => `${c.cluster} (context ${c.context}) on ${c.taskQueue}`).join(', ');
}
