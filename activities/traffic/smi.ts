// SMI routing (Linkerd, Open Service Mesh, ...): a TrafficSplit (split.smi-spec.io/v1alpha2) splits the root
// Service's traffic between the stable and the canary backend Services by integer weights. Setup creates the split
// when there is none (and teardown deletes it again), or adds the canary backend to an existing one; annotations on
// the object say which, so any worker can tear down.
import type { SmiTraffic, Target } from '../../workflows/target';
import {
  CustomObjects,
  kubeCall,
  resourceName,
  retryOnConflict,
  type CustomKind,
  type CustomObject,
  type KubeCall,
  type KubeClients,
  routerSettings,
  sameJson,
} from '../kube/client';
import { KubePreflight, suggestedCanarySelector } from '../kube/preflight';
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

const KIND: CustomKind = { group: 'split.smi-spec.io', version: 'v1alpha2', plural: 'trafficsplits' };
/** Set when setup created the TrafficSplit: teardown deletes it. */
export const CREATED_BY = 'canary.temporal.io/created-by';
const MANAGER = 'temporal-canary';
/** The backend setup added to a TrafficSplit it found: teardown removes it. */
export const ADDED_BACKEND = 'canary.temporal.io/added-backend';

interface Backend {
  service: string;
  weight: number;
  [key: string]: unknown;
}

export class SmiRouter implements TrafficRouter {
  readonly type = 'smi';
  readonly writesAfterGate = true;
  private readonly traffic: SmiTraffic;
  private readonly namespace: string;
  private readonly objects: CustomObjects;
  private readonly versionLabel?: string;

  constructor(
    private readonly clients: KubeClients,
    target: Target,
  ) {
    const traffic = routerSettings(target, 'smi');
    this.traffic = traffic;
    this.namespace = target.namespace;
    this.objects = new CustomObjects(clients, KIND, target.namespace);
    if (target.workload?.kind === 'Deployment') this.versionLabel = target.workload.versionLabel;
  }

  /**
   * Read-only: the TrafficSplit CRD is served, the verbs are allowed, an existing split has the stable backend (setup
   * creates a missing one), the root Service exists, and the backend Services exist and select the right pods
   * (stable's now and after promotion; the canary's and not stable's).
   */
  async preflight(_versions: RoutingVersions, pods: PodLabels): Promise<PreflightFinding[]> {
    const check = new KubePreflight(this.clients, this.namespace);
    const cluster = await check.cluster();
    if (cluster.length > 0) return cluster;
    const { group, version, plural } = KIND;
    const kind = await check.served(
      group,
      [version],
      plural,
      `the SMI TrafficSplit CRD (${group}/${version}), which the mesh's SMI support brings (Linkerd's SMI extension, Open Service Mesh)`,
    );
    const findings: PreflightFinding[] = [];
    if ('finding' in kind) findings.push(kind.finding);
    findings.push(
      ...(await check.access(
        [{ group, resource: plural, verbs: ['get', 'create', 'patch', 'delete'] }],
        'temporal-canary-smi',
      )),
    );
    const { trafficSplit, rootService, stableBackend, canaryBackend } = this.traffic;
    if (!('finding' in kind) && (await check.allows([{ group, resource: plural, verbs: ['get'] }]))) {
      const read = await check.read<CustomObject>(
        this.call('get', trafficSplit),
        (c) =>
          c.custom.getNamespacedCustomObject({
            group,
            version,
            plural,
            namespace: this.namespace,
            name: trafficSplit,
          }) as Promise<CustomObject>,
      );
      if ('finding' in read) findings.push(read.finding);
      if ('found' in read) {
        try {
          this.requireBackend(backendsOf(read.found), stableBackend);
        } catch (err) {
          if (!(err instanceof ProviderError)) throw err;
          findings.push({
            area: 'object',
            cause: 'input',
            level: 'refuse',
            message: `${err.message}: fix traffic.smi.stableBackend, or the split`,
            path: 'target.traffic.smi.stableBackend',
          });
        }
        const service = read.found.spec?.service;
        if (typeof service === 'string' && service !== rootService) {
          findings.push({
            area: 'object',
            cause: 'input',
            level: 'warn',
            message: `${this.label()} splits Service "${service}", not the target's root Service "${rootService}": the rollout shifts the traffic of "${service}"; fix traffic.smi.rootService if that is not what you mean`,
            path: 'target.traffic.smi.rootService',
          });
        }
      }
    }
    const role = 'temporal-canary-smi';
    const checks = [
      check.service({
        name: rootService,
        side: 'stable',
        pods: {},
        role,
        path: 'target.traffic.smi.rootService',
        missing: `the TrafficSplit splits the traffic sent to it (the mesh needs it as the split's apex); create it, or fix traffic.smi.rootService`,
        fix: 'fix traffic.smi.rootService',
      }),
      check.service({
        name: stableBackend,
        side: 'stable',
        pods,
        ...(this.versionLabel ? { versionLabel: this.versionLabel } : {}),
        role,
        path: 'target.traffic.smi.stableBackend',
        missing: `the TrafficSplit sends stable's share of traffic to it; create it selecting stable's pods, or fix traffic.smi.stableBackend`,
        fix: `select stable's pods without pinning a version, or fix traffic.smi.stableBackend`,
      }),
      check.service({
        name: canaryBackend,
        side: 'canary',
        pods,
        role,
        path: 'target.traffic.smi.canaryBackend',
        missing:
          `the TrafficSplit sends the canary's share of traffic to it; create it selecting the canary's pods` +
          `${suggestedCanarySelector(pods, this.versionLabel)}, or fix traffic.smi.canaryBackend`,
        fix: `select the canary's pods by a label stable's pods lack (canary.temporal.io/role=canary, or the version label), or fix traffic.smi.canaryBackend`,
      }),
    ];
    for (const found of await Promise.all(checks)) findings.push(...found);
    return findings;
  }

  async setup(_versions: RoutingVersions): Promise<void> {
    // The versions do not matter here: each backend Service selects its own pods.
    const { trafficSplit, stableBackend, canaryBackend } = this.traffic;
    await retryOnConflict(async () => {
      const live = await this.objects.find(trafficSplit);
      if (!live) {
        // A concurrent create answers 409 AlreadyExists (a conflict): the retry then finds the split and adds to it.
        await this.create();
        return;
      }
      const backends = structuredClone(backendsOf(live));
      this.requireBackend(backends, stableBackend);
      const annotations: Record<string, string> = {};
      if (!backends.some((b) => b.service === canaryBackend)) {
        backends.push({ service: canaryBackend, weight: 0 });
        if (live.metadata.annotations?.[CREATED_BY] !== MANAGER) annotations[ADDED_BACKEND] = canaryBackend;
      }
      if (sameJson(backends, backendsOf(live))) return;
      await this.objects.mergePatch(
        trafficSplit,
        { spec: { backends }, ...(Object.keys(annotations).length > 0 ? { metadata: { annotations } } : {}) },
        live.metadata.resourceVersion,
      );
    });
  }

  async getWeight(): Promise<number> {
    const live = await this.objects.find(this.traffic.trafficSplit);
    return live ? share(backendsOf(live), this.traffic.canaryBackend) : 0;
  }

  /** One read and one merge patch; `options.writeAfter` is awaited between them (nothing is written when it rejects). */
  async setWeight(weight: number, _mirror?: unknown, options: WeightOptions = {}): Promise<WeightChange> {
    if (!Number.isInteger(weight) || weight < 0 || weight > 100) {
      throw new ProviderError('invalid', `a canary weight is a whole percent from 0 to 100, got ${weight}`);
    }
    const { trafficSplit, stableBackend, canaryBackend } = this.traffic;
    const beforeWrite = writeGate(options);
    return retryOnConflict(async () => {
      const live = await this.objects.get(trafficSplit);
      const previous = share(backendsOf(live), canaryBackend);
      const backends = structuredClone(backendsOf(live));
      const stable = this.requireBackend(backends, stableBackend);
      const canary = backends.find((b) => b.service === canaryBackend);
      if (!canary && weight > 0) {
        throw new ProviderError(
          'invalid',
          `${this.label()} has no backend "${canaryBackend}": run the router's setup first (it adds one)`,
        );
      }
      stable.weight = 100 - weight;
      if (canary) canary.weight = weight;
      if (sameJson(backends, backendsOf(live))) return { previous, changed: false };
      // What the gate may change (stable's Deployment) is not the split: what was read stays good.
      await beforeWrite();
      await this.objects.mergePatch(trafficSplit, { spec: { backends } }, live.metadata.resourceVersion);
      return { previous, changed: true };
    });
  }

  async verifyWeight(weight: number): Promise<WeightVerification> {
    const live = await this.objects.get(this.traffic.trafficSplit);
    const backends = backendsOf(live);
    const canary = share(backends, this.traffic.canaryBackend);
    const stable = share(backends, this.traffic.stableBackend);
    if (canary === weight && stable === 100 - weight) return { verified: true, weight };
    const weights = backends.map((b) => `${b.service}=${b.weight}`).join(', ') || 'no backends';
    return {
      verified: false,
      weight: canary,
      reason: `${this.label()} sends ${canary}% to "${this.traffic.canaryBackend}" and ${stable}% to "${this.traffic.stableBackend}" (weights ${weights}), expected ${weight}% and ${100 - weight}%`,
    };
  }

  async teardown(): Promise<void> {
    const { trafficSplit, stableBackend, canaryBackend } = this.traffic;
    await retryOnConflict(async () => {
      const live = await this.objects.find(trafficSplit);
      if (!live) return;
      const annotations = live.metadata.annotations ?? {};
      if (annotations[CREATED_BY] === MANAGER) {
        await this.delete(live);
        return;
      }
      const added = annotations[ADDED_BACKEND];
      const backends = structuredClone(backendsOf(live)).filter((b) => b.service !== added);
      for (const b of backends) {
        if (b.service === stableBackend) b.weight = 100;
        else if (b.service === canaryBackend) b.weight = 0;
      }
      if (added === undefined && sameJson(backends, backendsOf(live))) return;
      await this.objects.mergePatch(
        trafficSplit,
        {
          spec: { backends },
          ...(added !== undefined ? { metadata: { annotations: { [ADDED_BACKEND]: null } } } : {}),
        },
        live.metadata.resourceVersion,
      );
    });
  }

  private requireBackend(backends: Backend[], service: string): Backend {
    const found = backends.find((b) => b.service === service);
    if (!found) {
      throw new ProviderError(
        'invalid',
        `${this.label()} has no backend "${service}" (traffic.smi.stableBackend); its backends: ${backends.map((b) => `"${b.service}"`).join(', ') || 'none'}`,
      );
    }
    return found;
  }

  private async create(): Promise<void> {
    const { group, version, plural } = KIND;
    const { trafficSplit, rootService, stableBackend, canaryBackend } = this.traffic;
    await kubeCall(this.call('create', trafficSplit), this.clients, () =>
      this.clients.custom.createNamespacedCustomObject({
        group,
        version,
        plural,
        namespace: this.namespace,
        body: {
          apiVersion: `${group}/${version}`,
          kind: 'TrafficSplit',
          metadata: { name: trafficSplit, namespace: this.namespace, annotations: { [CREATED_BY]: MANAGER } },
          spec: {
            service: rootService,
            backends: [
              { service: stableBackend, weight: 100 },
              { service: canaryBackend, weight: 0 },
            ],
          },
        },
      }),
    );
  }

  /** Deletes the split as read: if it changed since (say, someone took it over), the 409 makes teardown look again. */
  private async delete(live: CustomObject): Promise<void> {
    const { group, version, plural } = KIND;
    const name = live.metadata.name;
    try {
      await kubeCall(this.call('delete', name), this.clients, () =>
        this.clients.custom.deleteNamespacedCustomObject({
          group,
          version,
          plural,
          namespace: this.namespace,
          name,
          body: { preconditions: { resourceVersion: live.metadata.resourceVersion } },
        }),
      );
    } catch (err) {
      // Gone already (another attempt got there first): that is what teardown wants.
      if (err instanceof ProviderError && err.kind === 'not_found' && /does not exist/.test(err.message))
        return;
      throw err;
    }
  }

  private call(verb: string, name: string): KubeCall {
    return { verb, resource: resourceName(KIND), namespace: this.namespace, name };
  }

  private label(): string {
    return `TrafficSplit "${this.traffic.trafficSplit}" in namespace "${this.namespace}"`;
  }
}

function backendsOf(ts: CustomObject): Backend[] {
  return (ts.spec?.backends as Backend[] | undefined) ?? [];
}

/** A backend's percent of the traffic: SMI weights are relative, so its weight over the sum of all of them. */
function share(backends: Backend[], service: string): number {
  const total = backends.reduce((sum, b) => sum + (b.weight ?? 0), 0);
  const own = backends.find((b) => b.service === service)?.weight ?? 0;
  return total > 0 ? Math.round((100 * own) / total) : 0;
}
