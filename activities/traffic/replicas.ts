// The router for clusters without a mesh: one Service selects the pods of both Deployments, so the canary's share of
// traffic is its share of the replicas. A weight becomes replica counts out of the total stable had before the
// rollout (recorded on the stable Deployment, so another worker can finish or undo the rollout). Replica counts
// make weights coarse: with 4 replicas only 25 % steps exist, and each change says what it achieved.
import type { V1Deployment } from '@kubernetes/client-node';
import type { DeploymentWorkload, Target } from '../../workflows/target';
import {
  ProviderError,
  type PodLabels,
  type PreflightFinding,
  type RoutingVersions,
  type TrafficRouter,
  type WeightChange,
  type WeightOptions,
  type WeightVerification,
  writeGate,
} from '../types';
import { retryOnConflict, type KubeClients } from '../kube/client';
import { KubePreflight, type AccessNeed } from '../kube/preflight';
import { pollWait } from '../heartbeat';
import {
  Deployments,
  TOTAL_REPLICAS_ANNOTATION,
  deploymentWorkload,
  missingStableFinding,
  preflightDeployment,
  specReplicas,
} from '../workloads/deployment';

/** What the router does to Deployments (deploy/rbac.yaml's temporal-canary-replicas), for its preflight. */
const REPLICAS_ACCESS: AccessNeed[] = [
  { group: 'apps', resource: 'deployments', verbs: ['get', 'patch'] },
  { group: 'apps', resource: 'deployments', subresource: 'scale', verbs: ['patch'] },
];

/** Replica counts for a weight. */
export interface ReplicaSplit {
  canary: number;
  stable: number;
  /** The weight those counts give (percent of all pods that are canary pods). */
  achieved: number;
}

/**
 * canary = round(total * w / 100), stable = the rest; but between 0 and 100 % each side keeps at least one
 * replica, so a small weight still reaches the canary and stable never goes dark before promotion.
 */
export function replicaSplit(total: number, weight: number): ReplicaSplit {
  if (total <= 0) return { canary: 0, stable: 0, achieved: 0 };
  let canary = Math.round((total * weight) / 100);
  if (weight > 0) canary = Math.max(canary, 1);
  if (weight < 100) canary = Math.min(canary, Math.max(total - 1, 1));
  if (weight >= 100) canary = total;
  let stable = Math.max(total - canary, 0);
  if (weight < 100 && weight > 0) stable = Math.max(stable, 1);
  return { canary, stable, achieved: weightOf(canary, stable) };
}

function weightOf(canary: number, stable: number): number {
  return canary + stable === 0 ? 0 : Math.round((100 * canary) / (canary + stable));
}

export interface ReplicaRatioOptions {
  /**
   * Before stable shrinks to make room for a growing canary, wait until the canary's new pods are available (up
   * to the workload's progress deadline), so the pods serving never drop below the total. Off by default for the
   * bare router; the worker turns it on.
   */
  waitForCanary?: boolean;
  /** Called on every poll of that wait (a Temporal activity passes its heartbeat). */
  heartbeat?: (details?: unknown) => void;
  pollMs?: number;
}

export class ReplicaRatioRouter implements TrafficRouter {
  readonly type = 'replicas';
  readonly writesAfterGate = true;
  private readonly workload: DeploymentWorkload;
  private readonly deployments: Deployments;

  constructor(
    private readonly clients: KubeClients,
    private readonly target: Target,
    private readonly options: ReplicaRatioOptions = {},
  ) {
    if (target.traffic?.router !== 'replicas') {
      throw new ProviderError(
        'invalid',
        `the replica-ratio router needs target.traffic.replicas, got ${target.traffic ? `traffic.${target.traffic.router}` : 'no traffic settings'}`,
      );
    }
    this.workload = deploymentWorkload(target, 'the replica-ratio router');
    this.deployments = new Deployments(clients, target.namespace);
  }

  /**
   * Records stable's replica count as the total both sides share, only once: a re-run (after promotion, or after
   * the router already shrank stable) keeps the original total.
   */
  async setup(_versions: RoutingVersions): Promise<void> {
    const { name } = this.workload;
    await retryOnConflict(async () => {
      const stable = await this.deployments.get(name);
      if (stable.metadata?.annotations?.[TOTAL_REPLICAS_ANNOTATION] !== undefined) return;
      await this.deployments.patch(
        name,
        { metadata: { annotations: { [TOTAL_REPLICAS_ANNOTATION]: String(specReplicas(stable)) } } },
        stable.metadata?.resourceVersion,
      );
    });
  }

  /**
   * Read-only: the verbs are allowed, and stable has replicas to share (a ratio of nothing cannot give the canary a
   * share). The pods' labels do not matter here: one Service selects both sides.
   */
  async preflight(_versions: RoutingVersions, _pods: PodLabels): Promise<PreflightFinding[]> {
    const { name, canaryName } = this.workload;
    const check = new KubePreflight(this.clients, this.target.namespace);
    const cluster = await check.cluster();
    if (cluster.length > 0) return cluster;
    const findings = await check.access(REPLICAS_ACCESS, 'temporal-canary-replicas');
    if (!(await check.allows([{ group: 'apps', resource: 'deployments', verbs: ['get'] }]))) return findings;
    const [stable, canary] = await Promise.all([
      preflightDeployment(check, name),
      preflightDeployment(check, canaryName),
    ]);
    for (const read of [stable, canary]) if ('finding' in read) findings.push(read.finding);
    if ('missing' in stable) findings.push(missingStableFinding(this.target.namespace, name));
    if (!('found' in stable)) return findings;
    const total = this.total(stable.found, 'found' in canary ? specReplicas(canary.found) : 0);
    if (total === 0) {
      findings.push({
        area: 'object',
        cause: 'input',
        level: 'refuse',
        message:
          `Deployment "${this.target.namespace}/${name}" has 0 replicas: the replica-ratio router gives the canary its ` +
          `share of stable's replicas, and a share of none is none; scale it up first, or use a mesh router`,
        path: 'target.traffic.replicas',
      });
    }
    return findings;
  }

  async getWeight(): Promise<number> {
    const { stable, canary } = await this.read();
    return weightOf(canary ? specReplicas(canary) : 0, specReplicas(stable));
  }

  /**
   * Reads both Deployments at once; `options.writeAfter` is awaited before the first write (both are read again
   * when it changed them: the rollback's capacity check grows stable).
   */
  async setWeight(weight: number, _mirror?: unknown, options: WeightOptions = {}): Promise<WeightChange> {
    checkWeight(weight);
    const { name, canaryName } = this.workload;
    let previous: number | undefined;
    let changed = false;
    let split: ReplicaSplit = { canary: 0, stable: 0, achieved: 0 };
    let total = 0;
    const beforeWrite = writeGate(options);
    await retryOnConflict(async () => {
      let { stable, canary } = await this.read();
      // A retry after a partial write reads our own first write: previous is what the first attempt saw (before
      // the gate's own change, too).
      previous ??= weightOf(canary ? specReplicas(canary) : 0, specReplicas(stable));
      if (await beforeWrite()) ({ stable, canary } = await this.read());
      const canaryNow = canary ? specReplicas(canary) : 0;
      const stableNow = specReplicas(stable);
      total = this.total(stable, canaryNow);
      if (weight > 0 && total === 0) {
        throw new ProviderError(
          'invalid',
          `Deployment "${this.target.namespace}/${name}" had 0 replicas when the rollout started: a replica ratio cannot give the canary ${weight}%`,
        );
      }
      split = replicaSplit(total, weight);
      if (!canary && split.canary > 0) {
        throw new ProviderError(
          'not_found',
          `Deployment "${this.target.namespace}/${canaryName}" (the canary) does not exist: it is created before traffic moves`,
        );
      }
      // Grow one side before shrinking the other, so the pods serving never drop below what is left. A growing
      // canary must also be available before stable gives its pods up. (A growing stable, on the way back, is
      // not waited for: a rollback must not wait; the rollback's capacity check restores stable first.)
      const writes: Array<() => Promise<void>> = [];
      const stableWrite = () => this.deployments.scale(name, split.stable, stable.metadata?.resourceVersion);
      const canaryWrite = () =>
        this.deployments.scale(canaryName, split.canary, canary?.metadata?.resourceVersion);
      if (split.stable > stableNow) writes.push(stableWrite);
      if (canary && split.canary !== canaryNow) writes.push(canaryWrite);
      if (split.stable < stableNow) {
        if (this.options.waitForCanary && split.canary > 0) {
          writes.push(() => this.waitAvailable(canaryName, split.canary, name));
        }
        writes.push(stableWrite);
      }
      for (const write of writes) {
        await write();
        changed = true;
      }
    });
    const result: WeightChange = { previous: previous ?? 0, changed };
    if (split.achieved !== weight) {
      result.achieved = split.achieved;
      result.note =
        `${weight}% requested; ${split.canary} canary and ${split.stable} stable replica${split.stable === 1 ? '' : 's'} ` +
        `(of ${total}) give ${split.achieved}%`;
    }
    return result;
  }

  async verifyWeight(weight: number): Promise<WeightVerification> {
    checkWeight(weight);
    const { stable, canary } = await this.read();
    const canaryNow = canary ? specReplicas(canary) : 0;
    const stableNow = specReplicas(stable);
    const live = weightOf(canaryNow, stableNow);
    const want = replicaSplit(this.total(stable, canaryNow), weight);
    if (canaryNow === want.canary && stableNow === want.stable) return { verified: true, weight: live };
    return {
      verified: false,
      weight: live,
      reason:
        `${weight}% means ${want.canary} canary and ${want.stable} stable replicas (${want.achieved}%), ` +
        `but the Deployments ask for ${canaryNow} canary and ${stableNow} stable (${live}%)`,
    };
  }

  /** Stable back to the recorded total, canary to zero, record removed. Idempotent. */
  async teardown(): Promise<void> {
    const { name, canaryName } = this.workload;
    await retryOnConflict(async () => {
      const stable = await this.deployments.get(name);
      const recorded = recordedTotal(stable);
      if (recorded !== undefined && specReplicas(stable) !== recorded) {
        await this.deployments.scale(name, recorded, stable.metadata?.resourceVersion);
      }
    });
    await retryOnConflict(async () => {
      const canary = await this.deployments.find(canaryName);
      if (canary && specReplicas(canary) !== 0) {
        await this.deployments.scale(canaryName, 0, canary.metadata?.resourceVersion);
      }
    });
    await retryOnConflict(async () => {
      const stable = await this.deployments.get(name);
      if (stable.metadata?.annotations?.[TOTAL_REPLICAS_ANNOTATION] === undefined) return;
      await this.deployments.patch(
        name,
        { metadata: { annotations: { [TOTAL_REPLICAS_ANNOTATION]: null } } },
        stable.metadata?.resourceVersion,
      );
    });
  }

  /** Polls until `name` runs `replicas` available pods of its current generation, within the progress deadline. */
  private async waitAvailable(name: string, replicas: number, shrinking: string): Promise<void> {
    const deadlineMs = this.workload.progressDeadlineMs;
    const deadline = Date.now() + deadlineMs;
    const pollMs = this.options.pollMs ?? 500;
    for (;;) {
      const d = await this.deployments.get(name);
      const current = (d.status?.observedGeneration ?? 0) >= (d.metadata?.generation ?? 0);
      const available = current ? (d.status?.availableReplicas ?? 0) : 0;
      this.options.heartbeat?.({ deployment: name, available, want: replicas });
      if (available >= replicas) return;
      if (Date.now() >= deadline) {
        throw new ProviderError(
          'deadline',
          `Deployment "${this.target.namespace}/${name}" has ${available} of ${replicas} replicas available after ` +
            `the progress deadline of ${Math.round(deadlineMs / 1000)} s (target.workload.progressDeadline); ` +
            `"${shrinking}" was not scaled down, so no capacity was lost`,
        );
      }
      await pollWait(Math.min(pollMs, Math.max(0, deadline - Date.now())));
    }
  }

  /** Both Deployments, read at once. */
  private async read() {
    const [stable, canary] = await Promise.all([
      this.deployments.get(this.workload.name),
      this.deployments.find(this.workload.canaryName),
    ]);
    return { stable, canary };
  }

  /** The recorded total; without setup, what both sides have now. */
  private total(stable: V1Deployment | undefined, canaryReplicas: number): number {
    return recordedTotal(stable) ?? specReplicas(stable) + canaryReplicas;
  }
}

function recordedTotal(stable: V1Deployment | undefined): number | undefined {
  const value = stable?.metadata?.annotations?.[TOTAL_REPLICAS_ANNOTATION];
  const n = Number(value);
  return value !== undefined && Number.isInteger(n) && n >= 0 ? n : undefined;
}

function checkWeight(weight: number): void {
  if (!Number.isInteger(weight) || weight < 0 || weight > 100) {
    throw new ProviderError('invalid', `a weight is a whole percent from 0 to 100, got ${weight}`);
  }
}
