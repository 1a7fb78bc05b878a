// WorkloadManager over apps/v1 Deployments: the canary is a second Deployment copied from the stable one, with
// the new version's label and image; promotion rolls the stable Deployment to the new image. Every wait reads the
// Deployment's status as the controller writes it (observedGeneration first, so a stale "all available" from the
// previous generation never counts).
import type {
  V1Container,
  V1Deployment,
  V1DeploymentCondition,
  V1LabelSelector,
} from '@kubernetes/client-node';
import { formatDuration } from '../../workflows/duration';
import type { DeploymentWorkload, Target } from '../../workflows/target';
import {
  ProviderError,
  type CanaryInfo,
  type PreflightFinding,
  type WorkloadManager,
  type WorkloadPreflight,
} from '../types';
import {
  MERGE_PATCH,
  httpStatus,
  kubeCall,
  kubeError,
  retryOnConflict,
  type KubeClients,
  plain,
} from '../kube/client';
import { KubePreflight, type AccessNeed } from '../kube/preflight';
import { pollWait } from '../heartbeat';

/** RBAC resource names, as error messages (and a cluster admin writing a Role) need them. */
export const DEPLOYMENTS = 'deployments.apps';
export const DEPLOYMENT_SCALE = 'deployments/scale';

/** What the workload manager does to Deployments (deploy/rbac.yaml's temporal-canary-workloads), for its preflight. */
export const WORKLOAD_ACCESS: AccessNeed[] = [
  { group: 'apps', resource: 'deployments', verbs: ['get', 'create', 'patch', 'delete'] },
  { group: 'apps', resource: 'deployments', subresource: 'scale', verbs: ['patch'] },
];

/** Marks the Deployments this tool created, so it never overwrites or deletes one it does not own. */
export const ROLE_LABEL = 'canary.temporal.io/role';
/** On the canary: stable's spec.replicas when the canary was made, the capacity stable must have again before a rollback. */
export const STABLE_REPLICAS_ANNOTATION = 'canary.temporal.io/stable-replicas';
/** On the stable Deployment, written by the replica-ratio router: the replica count both sides share. */
export const TOTAL_REPLICAS_ANNOTATION = 'canary.temporal.io/total-replicas';
/**
 * On the canary: the workflow id of the rollout that drives it, and its target (JSON; targets hold no secrets). The
 * sweeper reads them to find routing whose rollout no longer runs (terminated, or its history lost) and to undo it.
 */
export const OWNER_ANNOTATION = 'canary.temporal.io/rollout';
export const OWNER_TARGET_ANNOTATION = 'canary.temporal.io/rollout-target';
/** On the canary: what the sweeper did (JSON), its own record beside the sweep workflow's history. */
export const SWEPT_ANNOTATION = 'canary.temporal.io/swept';

// Fields of a live object that must not be copied into a new one.
const CONTROLLER_ANNOTATIONS = [
  'deployment.kubernetes.io/revision',
  'kubectl.kubernetes.io/last-applied-configuration',
];

/** Reads, scales, writes and deletes Deployments of one namespace, with errors that name verb, resource and object. */
export class Deployments {
  constructor(
    private readonly clients: KubeClients,
    readonly namespace: string,
  ) {}

  get(name: string): Promise<V1Deployment> {
    return kubeCall(
      { verb: 'get', resource: DEPLOYMENTS, namespace: this.namespace, name },
      this.clients,
      () => this.clients.apps.readNamespacedDeployment({ name, namespace: this.namespace }),
    );
  }

  /** undefined when the Deployment does not exist. */
  async find(name: string): Promise<V1Deployment | undefined> {
    try {
      return await this.clients.apps.readNamespacedDeployment({ name, namespace: this.namespace });
    } catch (err) {
      if (httpStatus(err) === 404) return undefined;
      throw this.error(err, 'get', name);
    }
  }

  create(body: V1Deployment): Promise<V1Deployment> {
    const name = body.metadata?.name;
    return kubeCall(
      { verb: 'create', resource: DEPLOYMENTS, namespace: this.namespace, name },
      this.clients,
      () => this.clients.apps.createNamespacedDeployment({ namespace: this.namespace, body }),
    );
  }

  /** A JSON merge patch; with `resourceVersion` the server refuses it (409) if the Deployment changed since it was read. */
  patch(name: string, patch: Record<string, unknown>, resourceVersion?: string): Promise<V1Deployment> {
    const body = withResourceVersion(patch, resourceVersion);
    return kubeCall(
      { verb: 'patch', resource: DEPLOYMENTS, namespace: this.namespace, name },
      this.clients,
      () =>
        this.clients.apps.patchNamespacedDeployment({ name, namespace: this.namespace, body }, MERGE_PATCH),
    );
  }

  /**
   * Sets spec.replicas through the scale subresource (what autoscalers and `kubectl scale` use, and what RBAC
   * can grant apart from the whole Deployment). `resourceVersion` is honoured as a precondition there too.
   */
  async scale(name: string, replicas: number, resourceVersion?: string): Promise<void> {
    const body = withResourceVersion({ spec: { replicas } }, resourceVersion);
    await kubeCall(
      { verb: 'patch', resource: DEPLOYMENT_SCALE, namespace: this.namespace, name },
      this.clients,
      () =>
        this.clients.apps.patchNamespacedDeploymentScale(
          { name, namespace: this.namespace, body },
          MERGE_PATCH,
        ),
    );
  }

  /** Deletes the Deployment (its ReplicaSets follow in the background); false when it was already gone. */
  async delete(name: string, uid?: string): Promise<boolean> {
    try {
      await this.clients.apps.deleteNamespacedDeployment({
        name,
        namespace: this.namespace,
        propagationPolicy: 'Background',
        // The uid precondition: never delete a same-named Deployment someone created after we looked.
        ...(uid ? { body: { preconditions: { uid } } } : {}),
      });
      return true;
    } catch (err) {
      if (httpStatus(err) === 404) return false;
      throw this.error(err, 'delete', name);
    }
  }

  private error(err: unknown, verb: string, name: string): Error {
    return kubeError(err, { verb, resource: DEPLOYMENTS, namespace: this.namespace, name }, this.clients);
  }
}

function withResourceVersion(
  patch: Record<string, unknown>,
  resourceVersion?: string,
): Record<string, unknown> {
  if (!resourceVersion) return patch;
  return { ...patch, metadata: { ...((patch.metadata as object | undefined) ?? {}), resourceVersion } };
}

/** The workload of a target, which must be a Deployment for the Kubernetes providers. */
export function deploymentWorkload(target: Target, who: string): DeploymentWorkload {
  const w = target.workload;
  if (w?.kind !== 'Deployment') {
    throw new ProviderError(
      'invalid',
      `${who} needs a Deployment workload (target.workload.kind Deployment), got ${w ? `kind ${w.kind}` : 'none'}`,
    );
  }
  return w;
}

/**
 * The preflight's finding for a stable Deployment that does not exist: one wording for the workload manager and the
 * replica-ratio router, so a preflight that runs both says it once.
 */
export function missingStableFinding(namespace: string, name: string): PreflightFinding {
  return {
    area: 'object',
    cause: 'input',
    level: 'refuse',
    message: `Deployment "${namespace}/${name}" (the stable workload) does not exist: the canary is made from it; create it, or fix target.workload.name`,
    path: 'target.workload.name',
  };
}

/** Reads a Deployment for a preflight: found, missing, or a finding (no answer, forbidden). */
export function preflightDeployment(check: KubePreflight, name: string) {
  return check.read<V1Deployment>(
    { verb: 'get', resource: DEPLOYMENTS, namespace: check.namespace, name },
    (c) => c.apps.readNamespacedDeployment({ name, namespace: check.namespace }),
  );
}

/** spec.replicas as the API server defaults it. */
export function specReplicas(d: V1Deployment | undefined): number {
  return d?.spec?.replicas ?? 1;
}

// --- images ---------------------------------------------------------------------------------------------------

const TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;

/** `repo/app:1.0` → `repo/app:<tag>`; a digest is dropped (it would pin the old image whatever the tag says). */
export function imageWithTag(image: string, tag: string): string {
  if (!TAG.test(tag)) {
    throw new ProviderError(
      'invalid',
      `version "${tag}" is not a valid image tag (letters, digits, "_", "." and "-", at most 128): give the rollout an explicit image`,
    );
  }
  return `${imageRepository(image)}:${tag}`;
}

function imageRepository(image: string): string {
  const name = image.split('@')[0];
  // A colon after the last slash starts the tag; one before it is a registry port (registry:5000/app).
  const colon = name.lastIndexOf(':');
  return colon > name.lastIndexOf('/') ? name.slice(0, colon) : name;
}

/** The tag of an image reference, if it has one. */
export function imageTag(image: string | undefined): string | undefined {
  if (!image) return undefined;
  const name = image.split('@')[0];
  const colon = name.lastIndexOf(':');
  return colon > name.lastIndexOf('/') ? name.slice(colon + 1) : undefined;
}

// --- readiness --------------------------------------------------------------------------------------------------

interface Progress {
  done: boolean;
  /** The controller gave up on this generation (condition Progressing, reason ProgressDeadlineExceeded). */
  exceeded?: V1DeploymentCondition;
  summary: string;
}

/**
 * Whether the controller has rolled out the current generation. Counts from an older generation prove nothing,
 * so observedGeneration must catch up first (as `kubectl rollout status` does).
 */
function progress(d: V1Deployment, rollout: boolean): Progress {
  const generation = d.metadata?.generation ?? 0;
  const status = d.status ?? {};
  const observed = status.observedGeneration ?? 0;
  const want = specReplicas(d);
  const updated = status.updatedReplicas ?? 0;
  const available = status.availableReplicas ?? 0;
  const total = status.replicas ?? 0;
  const current = observed >= generation;
  const summary =
    `observed generation ${observed} of ${generation}, ${updated} of ${want} replicas updated, ` +
    `${available} available${total > want ? `, ${total - want} old replicas still terminating` : ''}`;
  const exceeded = current
    ? status.conditions?.find((c) => c.type === 'Progressing' && c.reason === 'ProgressDeadlineExceeded')
    : undefined;
  // A promotion must also have replaced every old pod (updated == spec, no surplus); a new canary only needs capacity.
  const done =
    current && available >= want && (rollout ? updated === want && total <= updated : updated >= want);
  return { done, exceeded, summary };
}

/** How often, and for how long at first, ensureStableCapacity polls stable while traffic waits on it. */
const QUICK_POLL_MS = 25;
const QUICK_POLL_FOR_MS = 1_000;

// --- the manager -------------------------------------------------------------------------------------------------

export interface DeploymentWorkloadOptions {
  /** How often waits read the Deployment (default 1000 ms). */
  pollMs?: number;
  /** Called on every poll of a wait (a Temporal activity passes its heartbeat). */
  heartbeat?: (details?: unknown) => void;
  /** How long ensureStableCapacity waits for stable to become available again (default 60 s). */
  stableCapacityWaitMs?: number;
}

export class DeploymentWorkloadManager implements WorkloadManager {
  readonly type = 'Deployment';
  private readonly workload: DeploymentWorkload;
  private readonly deployments: Deployments;
  private readonly pollMs: number;
  private readonly stableCapacityWaitMs: number;
  private readonly heartbeat: (details?: unknown) => void;

  constructor(
    private readonly clients: KubeClients,
    private readonly target: Target,
    options: DeploymentWorkloadOptions = {},
  ) {
    this.workload = deploymentWorkload(target, 'the Deployment workload manager');
    this.deployments = new Deployments(clients, target.namespace);
    this.pollMs = options.pollMs ?? 1000;
    this.stableCapacityWaitMs = options.stableCapacityWaitMs ?? 60_000;
    this.heartbeat = options.heartbeat ?? (() => undefined);
  }

  private get ns(): string {
    return this.target.namespace;
  }

  private describe(name: string): string {
    return `Deployment "${this.ns}/${name}"`;
  }

  /** The container that takes the new image: the named one, else the first. */
  private container(d: V1Deployment): V1Container {
    const containers = d.spec?.template?.spec?.containers ?? [];
    const wanted = this.workload.container;
    const found = wanted ? containers.find((c) => c.name === wanted) : containers[0];
    if (!found) {
      throw new ProviderError(
        'invalid',
        wanted
          ? `${this.describe(d.metadata?.name ?? '')} has no container "${wanted}" (it has ${containers.map((c) => c.name).join(', ') || 'none'}): fix target.workload.container`
          : `${this.describe(d.metadata?.name ?? '')} has no containers`,
      );
    }
    return found;
  }

  private desiredImage(stable: V1Deployment, version: string, image?: string): string {
    if (image) return image;
    const current = this.container(stable).image;
    if (!current) {
      throw new ProviderError(
        'invalid',
        `${this.describe(this.workload.name)} has no image to derive the canary's from: give the rollout an image`,
      );
    }
    return imageWithTag(current, version);
  }

  private stableVersion(stable: V1Deployment): string | undefined {
    return (
      stable.spec?.template?.metadata?.labels?.[this.workload.versionLabel] ??
      imageTag(this.container(stable).image)
    );
  }

  /**
   * Read-only: the stable Deployment exists and has the container the new image goes into, the canary can be made
   * from it (the verbs, no foreign Deployment under the canary's name), and the labels each side's pods carry: the
   * canary's as ensureCanary would build them.
   */
  async preflight(version: string, image?: string): Promise<WorkloadPreflight> {
    const { name, canaryName } = this.workload;
    const check = new KubePreflight(this.clients, this.ns);
    const cluster = await check.cluster();
    if (cluster.length > 0) return { findings: cluster };
    const findings = await check.access(WORKLOAD_ACCESS, 'temporal-canary-workloads');
    // Without get the reads below would only repeat the access finding.
    if (!(await check.allows([{ group: 'apps', resource: 'deployments', verbs: ['get'] }])))
      return { findings };
    const [stableRead, canaryRead] = await Promise.all([
      preflightDeployment(check, name),
      preflightDeployment(check, canaryName),
    ]);
    for (const read of [stableRead, canaryRead]) if ('finding' in read) findings.push(read.finding);
    if ('missing' in stableRead) findings.push(missingStableFinding(this.ns, name));
    if (!('found' in stableRead)) return { findings };
    const stable = stableRead.found;
    const existing = 'found' in canaryRead ? canaryRead.found : undefined;

    const invalid = (err: unknown, path?: string): void => {
      if (!(err instanceof ProviderError)) throw err;
      findings.push({
        area: 'object',
        cause: 'input',
        level: 'refuse',
        message: err.message,
        ...(path ? { path } : {}),
      });
    };
    let wantImage: string | undefined;
    try {
      this.container(stable);
      try {
        wantImage = this.desiredImage(stable, version, image);
      } catch (err) {
        invalid(err); // the version (or the image given) cannot make the canary's image
      }
    } catch (err) {
      invalid(err, 'target.workload.container');
    }
    const ours = existing?.metadata?.labels?.[ROLE_LABEL] === 'canary';
    if (existing && !ours) {
      findings.push({
        area: 'object',
        cause: 'input',
        level: 'refuse',
        message: `${this.describe(canaryName)} exists but was not created by the canary rollout (no label ${ROLE_LABEL}=canary): the rollout will not overwrite it; remove it or set target.workload.canaryName`,
        path: 'target.workload.canaryName',
      });
    }
    let stableVersion: string | undefined;
    try {
      stableVersion = this.stableVersion(stable);
    } catch {
      // No container: already a finding above.
    }
    const stablePods = { ...(stable.spec?.template?.metadata?.labels ?? {}) };
    if (wantImage === undefined) {
      return { findings, ...(stableVersion ? { stableVersion } : {}), pods: { stable: stablePods } };
    }
    // The canary's pods carry what ensureCanary would give them: built by the same code, written nowhere.
    const canary = this.canaryFrom(stable, version, wantImage, ours ? existing : undefined);
    return {
      findings,
      ...(stableVersion ? { stableVersion } : {}),
      pods: { stable: stablePods, canary: { ...(canary.spec?.template?.metadata?.labels ?? {}) } },
    };
  }

  async ensureCanary(version: string, image?: string): Promise<CanaryInfo> {
    const { name, canaryName, versionLabel } = this.workload;
    const stableVersion = await retryOnConflict(async () => {
      const stable = await this.deployments.get(name);
      const wantImage = this.desiredImage(stable, version, image);
      const existing = await this.deployments.find(canaryName);
      if (existing && existing.metadata?.labels?.[ROLE_LABEL] !== 'canary') {
        throw new ProviderError(
          'invalid',
          `${this.describe(canaryName)} exists but was not created by the canary rollout (no label ${ROLE_LABEL}=canary): refusing to overwrite it; remove it or set target.workload.canaryName`,
        );
      }
      const desired = this.canaryFrom(stable, version, wantImage, existing);
      if (!existing) {
        await this.deployments.create(desired);
      } else if (!sameSelector(existing.spec?.selector, desired.spec?.selector)) {
        // A Deployment's selector is immutable, and the canary's carries the version: a new version needs a new
        // Deployment. Deleted with a uid precondition, so a concurrent re-creation is never the one removed.
        await this.deployments.delete(canaryName, existing.metadata?.uid);
        await this.waitGone(canaryName);
        await this.deployments.create(desired);
      } else if (
        existing.spec?.template?.metadata?.labels?.[versionLabel] !== version ||
        this.container(existing).image !== wantImage
      ) {
        // A merge patch (lists such as containers are replaced whole), guarded by the read resourceVersion.
        await this.deployments.patch(
          canaryName,
          plain({
            metadata: { labels: desired.metadata?.labels, annotations: desired.metadata?.annotations },
            spec: desired.spec,
          }),
          existing.metadata?.resourceVersion,
        );
      } else if (specReplicas(existing) !== specReplicas(desired)) {
        // Same version, scaled to zero by a rollback: a mesh router is about to send it traffic again.
        await this.deployments.scale(canaryName, specReplicas(desired), existing.metadata?.resourceVersion);
      }
      return this.stableVersion(stable);
    });
    await this.waitForRollout(canaryName, false);
    return stableVersion === undefined ? {} : { stableVersion };
  }

  /** The canary Deployment built from stable's. `existing` (same version, other image) keeps its replicas and record. */
  private canaryFrom(
    stable: V1Deployment,
    version: string,
    image: string,
    existing: V1Deployment | undefined,
  ): V1Deployment {
    const { canaryName, versionLabel } = this.workload;
    const sameVersion = existing?.spec?.template?.metadata?.labels?.[versionLabel] === version;
    const spec = structuredClone(stable.spec!);
    const template = spec.template;
    const podLabels = {
      ...(template.metadata?.labels ?? {}),
      [versionLabel]: version,
      [ROLE_LABEL]: 'canary',
    };
    template.metadata = { ...stripMeta(template.metadata ?? {}), labels: podLabels };
    const containers = template.spec?.containers ?? [];
    const target = this.container({ spec });
    template.spec = {
      ...template.spec!,
      containers: containers.map((c) => (c === target ? { ...c, image } : c)),
    };
    spec.selector = canarySelector(spec.selector, versionLabel, version);

    // With the replica-ratio router the canary starts empty and the router gives it its share; a mesh router
    // sends it 100 % at promotion, so it needs stable's full capacity from the start.
    const ratioRouter = this.target.traffic?.router === 'replicas';
    // A canary already running this version keeps its count (the ratio router's share, or an autoscaler's),
    // unless a rollback scaled it to zero while a mesh router needs it at full capacity.
    const kept = sameVersion && existing ? specReplicas(existing) : undefined;
    spec.replicas = ratioRouter ? (kept ?? 0) : kept || specReplicas(stable);

    // What stable had before the rollout. The ratio router's record wins: it may already have shrunk stable.
    const total = Number(stable.metadata?.annotations?.[TOTAL_REPLICAS_ANNOTATION]);
    const recorded =
      (sameVersion && existing?.metadata?.annotations?.[STABLE_REPLICAS_ANNOTATION]) ||
      String(Number.isInteger(total) && total > 0 ? total : specReplicas(stable));

    const annotations = { ...(stable.metadata?.annotations ?? {}) };
    for (const key of [...CONTROLLER_ANNOTATIONS, TOTAL_REPLICAS_ANNOTATION]) delete annotations[key];
    annotations[STABLE_REPLICAS_ANNOTATION] = recorded;
    return {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: {
        name: canaryName,
        namespace: this.ns,
        labels: { ...(stable.metadata?.labels ?? {}), [ROLE_LABEL]: 'canary' },
        annotations,
      },
      spec,
    };
  }

  private async waitGone(name: string): Promise<void> {
    const deadline = Date.now() + Math.max(this.workload.progressDeadlineMs, 30_000);
    while (await this.deployments.find(name)) {
      if (Date.now() >= deadline) {
        throw new ProviderError(
          'deadline',
          `${this.describe(name)} was deleted but is still there (finalizers?)`,
        );
      }
      this.heartbeat({ waitingFor: `${name} to be deleted` });
      await pollWait(Math.min(this.pollMs, 200));
    }
  }

  /** Polls until the current generation is rolled out; a missed progress deadline is a `deadline` ProviderError. */
  private async waitForRollout(name: string, rollout: boolean): Promise<void> {
    const deadlineMs = this.workload.progressDeadlineMs;
    const deadline = Date.now() + deadlineMs;
    for (;;) {
      const d = await this.deployments.get(name);
      const p = progress(d, rollout);
      this.heartbeat({ deployment: name, progress: p.summary });
      if (p.done) return;
      if (p.exceeded) {
        throw new ProviderError(
          'deadline',
          `${this.describe(name)} did not become available: the Deployment controller reports ProgressDeadlineExceeded ` +
            `(${p.exceeded.message ?? 'no message'}); last seen: ${p.summary}`,
        );
      }
      if (Date.now() >= deadline) {
        throw new ProviderError(
          'deadline',
          `${this.describe(name)} did not become available within the progress deadline of ${formatDuration(deadlineMs)} ` +
            `(target.workload.progressDeadline); last seen: ${p.summary}`,
        );
      }
      await pollWait(Math.min(this.pollMs, Math.max(0, deadline - Date.now())));
    }
  }

  /**
   * Stable takes the new image and version label, then rolls out. The label goes on the pod template only when
   * stable's selector does not include it: a selector is immutable, and a template that stops matching its own
   * selector is refused. (Then stable's pods keep their old version label, and routers selecting on it must not
   * rely on it after promotion.)
   */
  /**
   * Returns the version label stable's pods carry afterwards: the new version, or, when stable's (immutable)
   * selector holds the label, the old one, so routing that selects subsets by that label keeps finding them.
   */
  async promoteStable(version: string, image?: string): Promise<{ stableLabel?: string }> {
    const { name, versionLabel } = this.workload;
    let stableLabel: string | undefined;
    await retryOnConflict(async () => {
      const stable = await this.deployments.get(name);
      const wantImage = this.desiredImage(stable, version, image);
      const target = this.container(stable);
      const selectorHasLabel = selectorKeys(stable.spec?.selector).has(versionLabel);
      const labels = stable.spec?.template?.metadata?.labels ?? {};
      const labelPatch = !selectorHasLabel && labels[versionLabel] !== version;
      stableLabel = selectorHasLabel ? labels[versionLabel] : version;
      if (target.image === wantImage && !labelPatch) return;
      const containers = (stable.spec?.template?.spec?.containers ?? []).map((c) =>
        c === target ? { ...c, image: wantImage } : c,
      );
      // A merge patch replaces lists whole: send every container, with the read resourceVersion as a guard.
      await this.deployments.patch(
        name,
        {
          spec: {
            template: {
              ...(labelPatch ? { metadata: { labels: { [versionLabel]: version } } } : {}),
              spec: { containers },
            },
          },
        },
        stable.metadata?.resourceVersion,
      );
    });
    await this.waitForRollout(name, true);
    return stableLabel === undefined ? {} : { stableLabel };
  }

  /**
   * Before traffic goes back: stable needs the replicas it had when the canary was made (an autoscaler may have
   * shrunk it while the canary carried traffic). Never fails because stable is slow or cannot be scaled: traffic
   * must go back regardless, so those outcomes come back as a remark.
   */
  async ensureStableCapacity(): Promise<string | undefined> {
    const { name, canaryName } = this.workload;
    let recorded: number | undefined;
    let had = 0;
    try {
      // Both read at once: when stable is big enough (the usual case) this is the whole cost before traffic moves.
      const [canary, stable] = await Promise.all([
        this.deployments.find(canaryName),
        this.deployments.get(name),
      ]);
      recorded = positiveInt(canary?.metadata?.annotations?.[STABLE_REPLICAS_ANNOTATION]);
      recorded ??= positiveInt(stable.metadata?.annotations?.[TOTAL_REPLICAS_ANNOTATION]);
      had = specReplicas(stable);
      if (recorded === undefined || had >= recorded) return undefined;
      const want = recorded;
      // The first attempt scales stable as just read (no second read); a conflict reads it again.
      let live: V1Deployment | undefined = stable;
      await retryOnConflict(async () => {
        live ??= await this.deployments.get(name);
        const rv = live.metadata?.resourceVersion;
        const short = specReplicas(live) < want;
        live = undefined;
        if (short) await this.deployments.scale(name, want, rv);
      });
    } catch (err) {
      if (!(err instanceof ProviderError)) throw err;
      return (
        `could not check or restore stable's capacity${recorded ? ` (it had ${had} of ${recorded} replicas)` : ''}: ` +
        `${err.message}; traffic goes back to stable anyway`
      );
    }
    const why =
      this.target.traffic?.router === 'replicas'
        ? 'the replica-ratio router had moved them to the canary'
        : 'an autoscaler may have shrunk it';
    const before = `stable had ${had} of ${recorded} replicas (${why}); scaled back to ${recorded}`;
    const started = Date.now();
    const deadline = started + this.stableCapacityWaitMs;
    let available = 0;
    for (;;) {
      try {
        const d = await this.deployments.get(name);
        const current = (d.status?.observedGeneration ?? 0) >= (d.metadata?.generation ?? 0);
        available = d.status?.availableReplicas ?? 0;
        this.heartbeat({ deployment: name, available, want: recorded });
        if (current && available >= recorded) return `${before}, available ${available}`;
      } catch {
        // A failed read while waiting is no reason to hold traffic back: keep polling until the wait is over.
      }
      if (Date.now() >= deadline) {
        return (
          `${before}, but only ${available} available after ${formatDuration(this.stableCapacityWaitMs)}; ` +
          `traffic goes back to stable anyway`
        );
      }
      // Traffic waits on this: the first second polls quickly, so pods ready at once are seen at once.
      const pollMs =
        Date.now() - started < QUICK_POLL_FOR_MS ? Math.min(this.pollMs, QUICK_POLL_MS) : this.pollMs;
      await pollWait(Math.min(pollMs, Math.max(0, deadline - Date.now())));
    }
  }

  /**
   * Mesh routers keep the canary at full capacity whatever its weight; the replica-ratio router scales it itself.
   * So there is nothing to do here.
   */
  async scaleCanary(_weight: number): Promise<void> {}

  /**
   * Records on the canary which rollout drives it and its target, for the sweeper. A metadata-only merge patch (no
   * new generation, so no rollout of the canary's pods); skipped when the record is already there.
   */
  async recordOwner(owner: { workflowId: string; target: unknown }): Promise<void> {
    const { canaryName } = this.workload;
    const target = JSON.stringify(owner.target);
    const canary = await this.deployments.find(canaryName);
    if (!canary) return;
    const a = canary.metadata?.annotations ?? {};
    if (
      a[OWNER_ANNOTATION] === owner.workflowId &&
      a[OWNER_TARGET_ANNOTATION] === target &&
      !a[SWEPT_ANNOTATION]
    ) {
      return;
    }
    await this.deployments.patch(canaryName, {
      metadata: {
        annotations: {
          [OWNER_ANNOTATION]: owner.workflowId,
          [OWNER_TARGET_ANNOTATION]: target,
          [SWEPT_ANNOTATION]: null,
        },
      },
    });
  }

  async scaleDownCanary(): Promise<void> {
    const { canaryName } = this.workload;
    await retryOnConflict(async () => {
      const canary = await this.deployments.find(canaryName);
      if (!canary || specReplicas(canary) === 0) return;
      await this.deployments.scale(canaryName, 0, canary.metadata?.resourceVersion);
    });
  }

  async cleanupCanary(): Promise<void> {
    const { canaryName } = this.workload;
    const canary = await this.deployments.find(canaryName);
    if (!canary) return;
    if (canary.metadata?.labels?.[ROLE_LABEL] !== 'canary') {
      throw new ProviderError(
        'invalid',
        `${this.describe(canaryName)} was not created by the canary rollout (no label ${ROLE_LABEL}=canary): refusing to delete it`,
      );
    }
    await this.deployments.delete(canaryName, canary.metadata?.uid);
  }
}

// --- helpers -------------------------------------------------------------------------------------------------------

function stripMeta<T extends object>(meta: T): T {
  const copy = { ...meta } as Record<string, unknown>;
  for (const key of [
    'creationTimestamp',
    'resourceVersion',
    'uid',
    'managedFields',
    'generation',
    'selfLink',
  ]) {
    delete copy[key];
  }
  return copy as T;
}

/**
 * Stable's selector plus the version and the canary role, so the canary's ReplicaSets never adopt stable's pods
 * (and the other way round). Expressions on the version label would contradict it, so they go.
 */
function canarySelector(selector: V1LabelSelector, versionLabel: string, version: string): V1LabelSelector {
  const expressions = selector.matchExpressions?.filter(
    (e) => e.key !== versionLabel && e.key !== ROLE_LABEL,
  );
  return {
    matchLabels: { ...(selector.matchLabels ?? {}), [versionLabel]: version, [ROLE_LABEL]: 'canary' },
    ...(expressions?.length ? { matchExpressions: expressions } : {}),
  };
}

function selectorKeys(selector: V1LabelSelector | undefined): Set<string> {
  return new Set([
    ...Object.keys(selector?.matchLabels ?? {}),
    ...(selector?.matchExpressions ?? []).map((e) => e.key),
  ]);
}

function sameSelector(a: V1LabelSelector | undefined, b: V1LabelSelector | undefined): boolean {
  const norm = (s: V1LabelSelector | undefined) =>
    JSON.stringify({
      l: Object.entries(s?.matchLabels ?? {}).sort(([x], [y]) => x.localeCompare(y)),
      e: (s?.matchExpressions ?? []).map((e) => [e.key, e.operator, [...(e.values ?? [])].sort()]),
    });
  return norm(a) === norm(b);
}

function positiveInt(value: string | undefined): number | undefined {
  const n = Number(value);
  return value !== undefined && Number.isInteger(n) && n > 0 ? n : undefined;
}
