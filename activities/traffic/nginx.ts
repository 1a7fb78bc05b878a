// NGINX Ingress canary routing: the primary Ingress stays as it is; setup derives a canary Ingress from it (same
// hosts, paths and TLS, backends pointing at the canary Service) carrying `nginx.ingress.kubernetes.io/canary`
// annotations, and a stage's weight is its `canary-weight` annotation. Teardown deletes the canary Ingress, which
// sends everything back through the primary one. This is how Argo Rollouts and Flagger drive ingress-nginx.
import type { V1Ingress, V1IngressBackend, V1IngressSpec } from '@kubernetes/client-node';
import type { NginxTraffic, Target } from '../../workflows/target';
import {
  MERGE_PATCH,
  kubeCall,
  retryOnConflict,
  type KubeCall,
  type KubeClients,
  routerSettings,
  sameJson,
  isRecord,
  plain,
} from '../kube/client';
import { KubePreflight, suggestedCanarySelector, type AccessNeed } from '../kube/preflight';
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

const NGINX = 'nginx.ingress.kubernetes.io/';
const CANARY = `${NGINX}canary`;
const WEIGHT = `${NGINX}canary-weight`;
const WEIGHT_TOTAL = `${NGINX}canary-weight-total`;
const BY_HEADER = `${NGINX}canary-by-header`;
const BY_HEADER_VALUE = `${NGINX}canary-by-header-value`;
const BY_COOKIE = `${NGINX}canary-by-cookie`;
// The legacy way of naming the ingress class: without it on the canary Ingress a controller that selects by this
// annotation would ignore the canary Ingress altogether, so it is carried over like the nginx ones.
const LEGACY_CLASS = 'kubernetes.io/ingress.class';
const MANAGED_BY = 'app.kubernetes.io/managed-by';
const MANAGER = 'temporal-canary';
/** Which target's setup created the canary Ingress (its app), so another rollout's setup does not take it over. */
export const CREATED_FOR = 'canary.temporal.io/created-for';
/** The primary Ingress the canary one was derived from. */
export const DERIVED_FROM = 'canary.temporal.io/derived-from';

const RESOURCE = 'ingresses.networking.k8s.io';
/** What the router does to Ingresses (deploy/rbac.yaml's temporal-canary-nginx), for its preflight. */
const NGINX_ACCESS: AccessNeed[] = [
  { group: 'networking.k8s.io', resource: 'ingresses', verbs: ['get', 'create', 'patch', 'delete'] },
];
const ROLE = 'temporal-canary-nginx';

type Annotations = Record<string, string>;

/** Annotations of the primary that the canary Ingress carries too (ingress-nginx behaviour, not canary policy). */
function inherited(key: string): boolean {
  return (key.startsWith(NGINX) && !key.startsWith(CANARY)) || key === LEGACY_CLASS;
}

/** Annotations this router derives on the canary Ingress: anything else on it belongs to someone else. */
function derivedKey(key: string): boolean {
  return key.startsWith(NGINX) || key === LEGACY_CLASS;
}

export class NginxRouter implements TrafficRouter {
  readonly type = 'nginx';
  readonly writesAfterGate = true;
  private readonly traffic: NginxTraffic;
  private readonly namespace: string;
  private readonly app: string;
  private readonly versionLabel?: string;

  constructor(
    private readonly clients: KubeClients,
    target: Target,
  ) {
    const traffic = routerSettings(target, 'nginx');
    this.traffic = traffic;
    this.namespace = target.namespace;
    this.app = target.app;
    if (target.workload?.kind === 'Deployment') this.versionLabel = target.workload.versionLabel;
  }

  async setup(_versions: RoutingVersions): Promise<void> {
    // The versions do not matter here: the canary Service selects the canary pods, the primary's the stable ones.
    await retryOnConflict(async () => {
      const primary = await this.read(this.traffic.ingress);
      const live = await this.find(this.traffic.canaryIngress);
      if (!live) {
        // A concurrent create answers 409 AlreadyExists (a conflict): the retry then finds and reconciles it.
        await kubeCall(this.call('create'), this.clients, () =>
          this.clients.networking.createNamespacedIngress({
            namespace: this.namespace,
            body: {
              apiVersion: 'networking.k8s.io/v1',
              kind: 'Ingress',
              metadata: {
                name: this.traffic.canaryIngress,
                namespace: this.namespace,
                labels: { [MANAGED_BY]: MANAGER },
                annotations: this.desiredAnnotations(primary, '0'),
              },
              spec: this.desiredSpec(primary),
            },
          }),
        );
        return;
      }
      this.assertOwned(live, 'setup');
      const liveAnnotations = live.metadata?.annotations ?? {};
      // A re-run (a retried activity, or after promotion) keeps the weight the rollout has reached.
      const desired = this.desiredAnnotations(primary, liveAnnotations[WEIGHT] ?? '0');
      const annotations: Record<string, string | null> = {};
      for (const [k, v] of Object.entries(desired)) if (liveAnnotations[k] !== v) annotations[k] = v;
      for (const k of Object.keys(liveAnnotations)) {
        if (derivedKey(k) && !(k in desired)) annotations[k] = null;
      }
      const spec = mergeDiff(plain(live.spec ?? {}), plain(this.desiredSpec(primary)));
      const changedAnnotations = Object.keys(annotations).length > 0;
      if (!changedAnnotations && spec === undefined) return;
      await this.patch({
        metadata: {
          resourceVersion: live.metadata?.resourceVersion,
          ...(changedAnnotations ? { annotations } : {}),
        },
        ...(spec !== undefined ? { spec } : {}),
      });
    });
  }

  async getWeight(): Promise<number> {
    const live = await this.find(this.traffic.canaryIngress);
    return live ? weightOf(live) : 0;
  }

  /** One read and one patch; `options.writeAfter` is awaited between them (nothing is written when it rejects). */
  async setWeight(weight: number, _mirror?: unknown, options: WeightOptions = {}): Promise<WeightChange> {
    checkWeight(weight);
    // What the gate may change (stable's Deployment) is not the canary Ingress: what was read stays good.
    const beforeWrite = writeGate(options);
    return retryOnConflict(async () => {
      const live = await this.find(this.traffic.canaryIngress);
      if (!live) {
        // Rollback must always be able to send everything to stable: with no canary Ingress it already is.
        if (weight === 0) return { previous: 0, changed: false };
        throw new ProviderError(
          'invalid',
          `canary Ingress "${this.traffic.canaryIngress}" does not exist in namespace "${this.namespace}": setup must run first (it derives it from Ingress "${this.traffic.ingress}")`,
        );
      }
      this.assertOwned(live, 'setWeight');
      const previous = weightOf(live);
      if (live.metadata?.annotations?.[WEIGHT] === String(weight)) return { previous, changed: false };
      await beforeWrite();
      await this.patch({
        metadata: {
          resourceVersion: live.metadata?.resourceVersion,
          annotations: { [WEIGHT]: String(weight) },
        },
      });
      return { previous, changed: true };
    });
  }

  async verifyWeight(weight: number): Promise<WeightVerification> {
    const live = await this.find(this.traffic.canaryIngress);
    if (!live) {
      return weight === 0
        ? { verified: true, weight: 0 }
        : {
            verified: false,
            weight: 0,
            reason: `canary Ingress "${this.traffic.canaryIngress}" does not exist in namespace "${this.namespace}"`,
          };
    }
    const annotations = live.metadata?.annotations ?? {};
    const actual = weightOf(live);
    if (actual !== weight) {
      return {
        verified: false,
        weight: actual,
        reason: `canary Ingress "${this.traffic.canaryIngress}" has ${WEIGHT}=${JSON.stringify(annotations[WEIGHT] ?? null)}${annotations[WEIGHT_TOTAL] ? ` of ${annotations[WEIGHT_TOTAL]}` : ''} (${actual} %), expected ${weight} %`,
      };
    }
    return { verified: true, weight: actual };
  }

  async teardown(): Promise<void> {
    await retryOnConflict(async () => {
      const live = await this.find(this.traffic.canaryIngress);
      // Not ours (or already gone): nothing this router created is left to remove.
      if (!live || !this.owned(live)) return;
      // The preconditions keep us from deleting an Ingress someone recreated in between.
      await kubeCall(this.call('delete', this.traffic.canaryIngress), this.clients, async () => {
        try {
          await this.clients.networking.deleteNamespacedIngress({
            name: this.traffic.canaryIngress,
            namespace: this.namespace,
            body: {
              preconditions: { uid: live.metadata?.uid, resourceVersion: live.metadata?.resourceVersion },
            },
          });
        } catch (err) {
          if ((err as { code?: number }).code === 404) return; // deleted by someone else meanwhile
          throw err;
        }
      });
    });
  }

  // --- preflight ---------------------------------------------------------------------------------------------

  /**
   * Read-only: the verbs are allowed, the primary Ingress exists with Service backends, no foreign Ingress holds the
   * canary Ingress's name, and the Services both Ingresses send to exist and select the right pods: the primary's
   * stable's (now and after promotion), the canary's the canary's and not stable's. The canary Ingress itself need
   * not exist: setup derives it.
   */
  async preflight(_versions: RoutingVersions, pods: PodLabels): Promise<PreflightFinding[]> {
    const check = new KubePreflight(this.clients, this.namespace);
    const cluster = await check.cluster();
    if (cluster.length > 0) return cluster;
    const findings = await check.access(NGINX_ACCESS, ROLE);
    if (!(await check.allows([{ ...NGINX_ACCESS[0], verbs: ['get'] }]))) return findings;
    const { ingress, canaryIngress } = this.traffic;
    const read = (name: string) =>
      check.read<V1Ingress>(this.call('get', name), (c) =>
        c.networking.readNamespacedIngress({ name, namespace: this.namespace }),
      );
    const [primary, canary] = await Promise.all([read(ingress), read(canaryIngress)]);
    for (const r of [primary, canary]) if ('finding' in r) findings.push(r.finding);
    if ('found' in canary && !this.owned(canary.found)) {
      try {
        this.assertOwned(canary.found, 'setup');
      } catch (err) {
        findings.push({
          area: 'object',
          cause: 'input',
          level: 'refuse',
          message: (err as Error).message,
          path: 'target.traffic.nginx.canaryIngress',
        });
      }
    }
    if ('missing' in primary) {
      findings.push({
        area: 'object',
        cause: 'input',
        level: 'refuse',
        message: `Ingress "${ingress}" (the primary) does not exist in namespace "${this.namespace}": the canary Ingress is derived from it; create it, or fix traffic.nginx.ingress`,
        path: 'target.traffic.nginx.ingress',
      });
    }
    if (!('found' in primary)) return findings;

    const spec = primary.found.spec ?? {};
    const backends = [
      spec.defaultBackend,
      ...(spec.rules ?? []).flatMap((r) => (r.http?.paths ?? []).map((p) => p.backend)),
    ]
      .map((b) => b?.service?.name)
      .filter((n): n is string => n !== undefined);
    const stableServices = [...new Set(backends)];
    if (stableServices.length === 0) {
      findings.push({
        area: 'object',
        cause: 'input',
        level: 'refuse',
        message: `Ingress "${ingress}" in namespace "${this.namespace}" sends to no Service, so a canary Ingress derived from it could not send to the canary's: give it a Service backend`,
        path: 'target.traffic.nginx.ingress',
      });
      return findings;
    }
    // Each primary backend's canary counterpart, as setup derives it (desiredSpec).
    const derived = this.desiredSpec(primary.found);
    const canaryServices = [
      ...new Set(
        [
          derived.defaultBackend,
          ...(derived.rules ?? []).flatMap((r) => (r.http?.paths ?? []).map((p) => p.backend)),
        ]
          .map((b) => b?.service?.name)
          .filter((n): n is string => n !== undefined),
      ),
    ];
    const canaryLabels = suggestedCanarySelector(pods, this.versionLabel);
    const checks = [
      ...stableServices.map((name) =>
        check.service({
          name,
          side: 'stable',
          pods,
          ...(this.versionLabel ? { versionLabel: this.versionLabel } : {}),
          role: ROLE,
          path: 'target.traffic.nginx.ingress',
          missing: `Ingress "${ingress}" sends stable's traffic to it; create it, or fix the Ingress`,
          fix: `select stable's pods without pinning a version, or fix the Ingress's backend`,
        }),
      ),
      ...canaryServices.map((name) =>
        check.service({
          name,
          side: 'canary',
          pods,
          role: ROLE,
          path: 'target.traffic.nginx.canaryService',
          missing:
            `the canary Ingress would send the canary's share of traffic to it (ingress-nginx answers 503 without it); ` +
            `create it selecting the canary's pods${canaryLabels}, or name an existing one as traffic.nginx.canaryService`,
          fix: `select the canary's pods by a label stable's pods lack (canary.temporal.io/role=canary, or the version label), or name another Service as traffic.nginx.canaryService`,
        }),
      ),
    ];
    for (const found of await Promise.all(checks)) findings.push(...found);
    return findings;
  }

  // --- deriving the canary Ingress ------------------------------------------------------------------------------

  private desiredAnnotations(primary: V1Ingress, weight: string): Annotations {
    const out: Annotations = {};
    for (const [k, v] of Object.entries(primary.metadata?.annotations ?? {})) if (inherited(k)) out[k] = v;
    out[CANARY] = 'true';
    out[WEIGHT] = weight;
    const { header, cookie } = this.traffic;
    if (header) {
      out[BY_HEADER] = header.name;
      if (header.value !== undefined) out[BY_HEADER_VALUE] = header.value;
    }
    if (cookie) out[BY_COOKIE] = cookie;
    out[CREATED_FOR] = this.app;
    out[DERIVED_FROM] = this.traffic.ingress;
    return out;
  }

  private desiredSpec(primary: V1Ingress): V1IngressSpec {
    const spec = plain(primary.spec ?? {}) as V1IngressSpec;
    const toCanary = (backend: V1IngressBackend | undefined): void => {
      if (backend?.service)
        backend.service.name = this.traffic.canaryService ?? `${backend.service.name}-canary`;
    };
    toCanary(spec.defaultBackend);
    for (const rule of spec.rules ?? []) for (const p of rule.http?.paths ?? []) toCanary(p.backend);
    return spec;
  }

  private owned(live: V1Ingress): boolean {
    return (
      live.metadata?.labels?.[MANAGED_BY] === MANAGER &&
      live.metadata?.annotations?.[CREATED_FOR] === this.app
    );
  }

  private assertOwned(live: V1Ingress, step: string): void {
    if (this.owned(live)) return;
    const createdFor = live.metadata?.annotations?.[CREATED_FOR];
    throw new ProviderError(
      'invalid',
      `Ingress "${this.traffic.canaryIngress}" in namespace "${this.namespace}" was not created by temporal-canary for app "${this.app}"` +
        `${createdFor ? ` (it was created for "${createdFor}")` : ` (no ${MANAGED_BY}=${MANAGER} label and ${CREATED_FOR} annotation)`}` +
        `: ${step} will not take it over; delete it or set traffic.nginx.canaryIngress to another name`,
    );
  }

  // --- API calls --------------------------------------------------------------------------------------------------

  private call(verb: string, name?: string): KubeCall {
    return { verb, resource: RESOURCE, namespace: this.namespace, ...(name ? { name } : {}) };
  }

  private read(name: string): Promise<V1Ingress> {
    return kubeCall(this.call('get', name), this.clients, () =>
      this.clients.networking.readNamespacedIngress({ name, namespace: this.namespace }),
    );
  }

  /** The Ingress, or undefined when it does not exist. */
  private async find(name: string): Promise<V1Ingress | undefined> {
    try {
      return await this.read(name);
    } catch (err) {
      if (err instanceof ProviderError && err.kind === 'not_found') return undefined;
      throw err;
    }
  }

  private patch(body: Record<string, unknown>): Promise<V1Ingress> {
    const name = this.traffic.canaryIngress;
    return kubeCall(this.call('patch', name), this.clients, () =>
      this.clients.networking.patchNamespacedIngress({ name, namespace: this.namespace, body }, MERGE_PATCH),
    );
  }
}

function checkWeight(weight: number): void {
  if (!Number.isInteger(weight) || weight < 0 || weight > 100) {
    throw new ProviderError('invalid', `a weight is a whole percent from 0 to 100, got ${weight}`);
  }
}

/** The canary's share in percent, as ingress-nginx reads it (an unparsable weight counts as 0, as it does there). */
function weightOf(ingress: V1Ingress): number {
  const annotations = ingress.metadata?.annotations ?? {};
  if (annotations[CANARY] !== 'true') return 0;
  const weight = Number.parseInt(annotations[WEIGHT] ?? '0', 10);
  const parsedTotal = Number.parseInt(annotations[WEIGHT_TOTAL] ?? '100', 10);
  const total = Number.isFinite(parsedTotal) && parsedTotal > 0 ? parsedTotal : 100;
  if (!Number.isFinite(weight) || weight <= 0) return 0;
  return Math.min(100, Math.round((weight * 100) / total));
}

/**
 * The RFC 7386 merge patch that turns `live` into `desired` (undefined when they are equal): changed keys are set,
 * missing ones nulled, arrays replaced whole.
 */
function mergeDiff(live: unknown, desired: unknown): unknown {
  if (sameJson(live, desired)) return undefined;
  if (!isRecord(live) || !isRecord(desired)) return desired;
  const patch: Record<string, unknown> = {};
  for (const k of new Set([...Object.keys(live), ...Object.keys(desired)])) {
    if (!(k in desired)) patch[k] = null;
    else {
      const d = mergeDiff(live[k], desired[k]);
      if (d !== undefined) patch[k] = d;
    }
  }
  return patch;
}
