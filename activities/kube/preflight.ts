// What every Kubernetes provider's preflight shares: is the cluster there and does it know the worker, may the
// worker's account use each verb its provider will use (SelfSubjectAccessReviews, which store nothing), does an
// object exist (and is a missing one the target's fault or a missing CRD the cluster's), and do label selectors pick
// the pods of the right side. Read-only: nothing here creates, patches or deletes anything. Every request gives up
// after a few seconds, so a server that is down or black-holed is a finding within seconds, not a hung rollout.
import {
  AppsV1Api,
  AuthorizationV1Api,
  CoreV1Api,
  CustomObjectsApi,
  NetworkingV1Api,
  ServerConfiguration,
  VersionApi,
  createConfiguration,
  type KubeConfig,
  type V1APIResourceList,
  type V1Service,
} from '@kubernetes/client-node';
import type { PodLabels, PreflightFinding } from '../types';
import { apiMessage, httpStatus, kubeError, type KubeCall, type KubeClients } from './client';

/** How long one preflight request may take before the server counts as not answering. */
export const PREFLIGHT_TIMEOUT_MS = 5_000;
/** A reachable cluster stays checked this long (the workload manager and the router of one preflight share it). */
const CLUSTER_CHECK_TTL_MS = 10_000;

/** Clients whose every request is aborted after `timeoutMs`, plus the APIs only a preflight needs. */
export interface TimedClients extends KubeClients {
  authz: AuthorizationV1Api;
  version: VersionApi;
  timeoutMs: number;
}

/** The same credentials and server, each request aborted after `timeoutMs` (client-node has no timeout of its own). */
export function timedClients(base: KubeClients, timeoutMs = PREFLIGHT_TIMEOUT_MS): TimedClients {
  const kc = base.config;
  const cluster = kc.getCurrentCluster();
  const config = createConfiguration({
    baseServer: new ServerConfiguration(cluster?.server ?? base.server, {}),
    authMethods: { default: kc },
    promiseMiddleware: [
      {
        pre: (request) => {
          request.setSignal(AbortSignal.timeout(timeoutMs));
          return Promise.resolve(request);
        },
        post: (response) => Promise.resolve(response),
      },
    ],
  });
  return {
    ...base,
    core: new CoreV1Api(config),
    apps: new AppsV1Api(config),
    networking: new NetworkingV1Api(config),
    custom: new CustomObjectsApi(config),
    authz: new AuthorizationV1Api(config),
    version: new VersionApi(config),
    timeoutMs,
  };
}

// --- findings ----------------------------------------------------------------------------------------------------

/** `the Kubernetes API server at https://…` with who the worker is and where that came from. */
function serverOf(clients: KubeClients): string {
  return `the Kubernetes API server at ${clients.server} (${clients.identity}${clients.source ? `, from ${clients.source}` : ''})`;
}

function clusterFinding(message: string): PreflightFinding {
  return { area: 'cluster', cause: 'infrastructure', level: 'refuse', message };
}

/**
 * Why a request got no HTTP answer, in words (refused, timed out, name does not resolve, TLS), or undefined when
 * the server did answer.
 */
export function noAnswer(err: unknown, timeoutMs = PREFLIGHT_TIMEOUT_MS): string | undefined {
  if (httpStatus(err) !== undefined) return undefined;
  const e = err as { name?: string; type?: string; code?: unknown; message?: string } | undefined;
  if (e?.name === 'AbortError' || e?.type === 'aborted' || e?.name === 'TimeoutError') {
    return `did not answer within ${Math.round(timeoutMs / 1000)} s`;
  }
  const code = typeof e?.code === 'string' ? e.code : undefined;
  switch (code) {
    case 'ECONNREFUSED':
      return 'refused the connection (nothing listens there)';
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return 'cannot be found: its host name does not resolve';
    case 'ETIMEDOUT':
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return `cannot be reached (${code})`;
    case 'ECONNRESET':
    case 'EPIPE':
      return `closed the connection (${code})`;
  }
  if (code && /CERT|SELF_SIGNED|SIGNATURE|TLS|SSL/i.test(code)) {
    return `was reached, but its TLS certificate is not trusted (${code}): check the kubeconfig's certificate-authority`;
  }
  const text = (e?.message ?? String(err)).split('\n')[0];
  return `cannot be reached: ${text}`;
}

function unreachableFinding(clients: KubeClients, why: string): PreflightFinding {
  return clusterFinding(
    `${serverOf(clients)} ${why}: check the server address in the worker's Kubernetes configuration and that this worker can reach it`,
  );
}

function credentialsFinding(clients: KubeClients, detail: string): PreflightFinding {
  return clusterFinding(
    `${serverOf(clients)} does not accept the worker's credentials (${detail}): renew the token or client certificate the worker uses`,
  );
}

/** A failed request as a finding when it is about the cluster (no answer, bad credentials), else undefined. */
function clusterProblem(clients: TimedClients, err: unknown): PreflightFinding | undefined {
  const why = noAnswer(err, clients.timeoutMs);
  if (why) return unreachableFinding(clients, why);
  if (httpStatus(err) === 401) return credentialsFinding(clients, 'HTTP 401 Unauthorized');
  return undefined;
}

// --- the cluster -------------------------------------------------------------------------------------------------

const clusterChecks = new WeakMap<KubeConfig, { done?: number; findings: Promise<PreflightFinding[]> }>();

/**
 * Whether the API server answers and accepts the worker's credentials: GET /version (open to everyone), then an
 * access review (open to every authenticated account, so a 401 or 403 there means the server does not know the
 * worker). Empty when all is well. One check per configuration at a time, and its answer for a few seconds after,
 * so the workload manager and the router of one preflight share it (a black-holed server costs one timeout).
 */
export function checkCluster(
  base: KubeClients,
  timeoutMs = PREFLIGHT_TIMEOUT_MS,
): Promise<PreflightFinding[]> {
  const cached = clusterChecks.get(base.config);
  if (cached && (cached.done === undefined || Date.now() - cached.done < CLUSTER_CHECK_TTL_MS)) {
    return cached.findings;
  }
  const entry: { done?: number; findings: Promise<PreflightFinding[]> } = {
    findings: clusterCheck(timedClients(base, timeoutMs)),
  };
  clusterChecks.set(base.config, entry);
  void entry.findings.finally(() => (entry.done = Date.now()));
  return entry.findings;
}

async function clusterCheck(clients: TimedClients): Promise<PreflightFinding[]> {
  try {
    await clients.version.getCode();
  } catch (err) {
    const problem = clusterProblem(clients, err);
    if (problem) return [problem];
    // Some clusters close /version to anonymous users; the access review below is the real test.
    if (httpStatus(err) !== 403) {
      return [clusterFinding(`${serverOf(clients)} answered GET /version with ${errorOf(err)}`)];
    }
  }
  try {
    await clients.authz.createSelfSubjectAccessReview({
      body: { spec: { nonResourceAttributes: { path: '/version', verb: 'get' } } },
    });
  } catch (err) {
    const problem = clusterProblem(clients, err);
    if (problem) return [problem];
    if (httpStatus(err) === 403) {
      return [
        credentialsFinding(
          clients,
          'it treats the worker as anonymous: every authenticated account may create a SelfSubjectAccessReview, the worker may not',
        ),
      ];
    }
    return [clusterFinding(`${serverOf(clients)} answered an access review with ${errorOf(err)}`)];
  }
  return [];
}

function errorOf(err: unknown): string {
  const status = httpStatus(err);
  const text = (err instanceof Error ? err.message : String(err)).split('\n')[0];
  return status ? `HTTP ${status}` : text;
}

// --- one namespace ---------------------------------------------------------------------------------------------

/** What a provider needs to do to one resource (RBAC's group, resource and subresource). */
export interface AccessNeed {
  group: string;
  resource: string;
  subresource?: string;
  verbs: string[];
}

/** `deployments.apps`, `deployments.apps/scale`, `services` (core), as kubectl auth can-i names them. */
export function resourceLabel(group: string, resource: string, subresource?: string): string {
  return `${resource}${group ? `.${group}` : ''}${subresource ? `/${subresource}` : ''}`;
}

/** The outcome of reading one object: found, missing (the object, not its kind), or a finding that says why not. */
export type Lookup<T> = { found: T } | { missing: true } | { finding: PreflightFinding };

/**
 * One preflight of one provider in one namespace: its cluster check, access reviews and reads share a client whose
 * requests time out, and remember what they learnt (an access review is asked once).
 */
export class KubePreflight {
  readonly clients: TimedClients;
  private readonly reviews = new Map<string, Promise<boolean>>();

  constructor(
    readonly base: KubeClients,
    readonly namespace: string,
    timeoutMs = PREFLIGHT_TIMEOUT_MS,
  ) {
    this.clients = timedClients(base, timeoutMs);
  }

  /** {@link checkCluster}: empty when the server answers and knows the worker. */
  cluster(): Promise<PreflightFinding[]> {
    return checkCluster(this.base, this.clients.timeoutMs);
  }

  /** Whether the worker's account may do this in the namespace (a SelfSubjectAccessReview, asked once). */
  can(group: string, resource: string, verb: string, subresource?: string): Promise<boolean> {
    const key = [group, resource, subresource ?? '', verb].join('\u0000');
    let answer = this.reviews.get(key);
    if (!answer) {
      answer = this.clients.authz
        .createSelfSubjectAccessReview({
          body: {
            spec: {
              resourceAttributes: {
                namespace: this.namespace,
                group,
                resource,
                verb,
                ...(subresource ? { subresource } : {}),
              },
            },
          },
        })
        .then((review) => review.status?.allowed === true);
      this.reviews.set(key, answer);
    }
    return answer;
  }

  /**
   * Every verb of every need, by access review: one finding per resource naming the verbs the account lacks and
   * the ClusterRole of deploy/rbac.yaml that grants them.
   */
  async access(needs: AccessNeed[], role: string): Promise<PreflightFinding[]> {
    let answers: Array<{ need: AccessNeed; denied: string[] }>;
    try {
      answers = await Promise.all(
        needs.map(async (need) => {
          const verdicts = await Promise.all(
            need.verbs.map((verb) => this.can(need.group, need.resource, verb, need.subresource)),
          );
          return { need, denied: need.verbs.filter((_, i) => !verdicts[i]) };
        }),
      );
    } catch (err) {
      return [this.failure(err, 'ask the API server for an access review')];
    }
    return answers
      .filter((a) => a.denied.length > 0)
      .map(({ need, denied }) => ({
        area: 'access',
        cause: 'infrastructure',
        level: 'refuse',
        message:
          `the worker's Kubernetes account (${this.base.identity}) may not ${denied.join(', ')} ` +
          `${resourceLabel(need.group, need.resource, need.subresource)} in namespace "${this.namespace}": ` +
          `bind the ClusterRole ${role} to it in that namespace (deploy/rbac.yaml)`,
      }));
  }

  /** Whether the account may do everything in `needs` (answers already asked for by {@link access} are reused). */
  async allows(needs: AccessNeed[]): Promise<boolean> {
    try {
      const all = await Promise.all(
        needs.flatMap((n) => n.verbs.map((v) => this.can(n.group, n.resource, v, n.subresource))),
      );
      return all.every(Boolean);
    } catch {
      return false;
    }
  }

  /**
   * Reads one object. A missing object is `missing` (the caller says what to fix in the target); a missing kind (a
   * bare 404: its CRD is not installed), a forbidden read or a server that does not answer is a finding.
   */
  async read<T>(call: KubeCall, fn: (clients: TimedClients) => Promise<T>): Promise<Lookup<T>> {
    try {
      return { found: await fn(this.clients) };
    } catch (err) {
      if (httpStatus(err) === 404) {
        const e = kubeError(err, call, this.base);
        if (/does not exist/.test(e.message)) return { missing: true };
        return {
          finding: this.crdMissing(
            call.resource,
            'install it (or the mesh or controller that brings it)',
            `the API server said: ${apiMessage(err)}`,
          ),
        };
      }
      return {
        finding: this.failure(
          err,
          `${call.verb} ${call.resource}${call.name ? ` "${call.name}"` : ''}`,
          call,
        ),
      };
    }
  }

  /**
   * The first of `versions` in which the API server serves `plural` of `group` (API discovery, open to every
   * account), or a finding: the CRD is not installed, or the server did not answer.
   */
  async served(
    group: string,
    versions: readonly string[],
    plural: string,
    what: string,
  ): Promise<{ version: string } | { finding: PreflightFinding }> {
    for (const version of versions) {
      let list: V1APIResourceList;
      try {
        list = await this.clients.custom.getAPIResources({ group, version });
      } catch (err) {
        if (httpStatus(err) === 404) continue; // the group does not serve this version at all
        return { finding: this.failure(err, `read the API discovery of ${group}/${version}`) };
      }
      if (list.resources.some((r) => r.name === plural)) return { version };
    }
    return {
      finding: this.crdMissing(
        `${plural}.${group}`,
        `install ${what}`,
        `not served in ${versions.join(' or ')}`,
      ),
    };
  }

  /** A kind the API server does not serve: the cluster lacks a CRD (or the mesh that brings it). */
  crdMissing(resource: string, fix: string, detail: string): PreflightFinding {
    return {
      area: 'object',
      cause: 'infrastructure',
      level: 'refuse',
      message: `${serverOf(this.base)} has no ${resource} (${detail}): its CRD is not installed; ${fix}`,
    };
  }

  /** A request that failed for another reason than a missing object: the cluster's, the account's, or the server's. */
  failure(err: unknown, doing: string, call?: KubeCall): PreflightFinding {
    const problem = clusterProblem(this.clients, err);
    if (problem) return problem;
    const status = httpStatus(err);
    if (status === 403) {
      const message = call
        ? kubeError(err, call, this.base).message
        : `the worker's Kubernetes account (${this.base.identity}) may not ${doing} in namespace "${this.namespace}"`;
      return { area: 'access', cause: 'infrastructure', level: 'refuse', message };
    }
    return clusterFinding(
      `${serverOf(this.base)} could not ${doing} in namespace "${this.namespace}": ${errorOf(err)}`,
    );
  }

  // --- Services and the pods they select ---------------------------------------------------------------------

  /**
   * Whether the Service `name` exists and selects the pods of `side` now (and, for stable, after promotion too), and
   * for the canary not stable's. Needs `get services`: an account without it gets one warning, not a refusal (the
   * rollout itself never reads Services).
   */
  async service(spec: ServiceCheck): Promise<PreflightFinding[]> {
    const namespace = spec.namespace ?? this.namespace;
    const label = `Service "${spec.name}" in namespace "${namespace}"`;
    let allowed: boolean;
    try {
      allowed =
        namespace === this.namespace
          ? await this.can('', 'services', 'get')
          : await this.canIn(namespace, '', 'services', 'get');
    } catch (err) {
      return [this.failure(err, 'ask the API server for an access review')];
    }
    if (!allowed) {
      return [
        {
          area: 'access',
          cause: 'infrastructure',
          level: 'warn',
          message:
            `the worker's Kubernetes account (${this.base.identity}) may not get services in namespace "${namespace}", ` +
            `so the preflight could not check the Services the routing sends to: grant it get on services there ` +
            `(the ClusterRole ${spec.role} in deploy/rbac.yaml)`,
        },
      ];
    }
    const read = await this.read<V1Service>(
      { verb: 'get', resource: 'services', namespace, name: spec.name },
      (c) => c.core.readNamespacedService({ name: spec.name, namespace }),
    );
    if ('finding' in read) return [read.finding];
    if ('missing' in read) {
      return [
        {
          area: 'object',
          cause: 'input',
          level: 'refuse',
          message: `${label} does not exist: ${spec.missing}`,
          ...(spec.path ? { path: spec.path } : {}),
        },
      ];
    }
    const selector = read.found.spec?.selector ?? {};
    // A Service without a selector has its endpoints managed by hand: nothing to compare.
    if (Object.keys(selector).length === 0) return [];
    return selectorFindings(selector, `${label} selects ${formatLabels(selector)}`, spec, spec.pods);
  }

  private canIn(namespace: string, group: string, resource: string, verb: string): Promise<boolean> {
    return this.clients.authz
      .createSelfSubjectAccessReview({
        body: { spec: { resourceAttributes: { namespace, group, resource, verb } } },
      })
      .then((review) => review.status?.allowed === true);
  }
}

/** What one Service (or subset) must select, and how to say it when it does not. */
export interface SelectorSpec {
  side: 'stable' | 'canary';
  /** The pod label that carries the version (after promotion stable's pods carry the canary's value). */
  versionLabel?: string;
  /** Where in the target this is named. */
  path?: string;
  /** How to fix a selector that picks the wrong pods (appended to the message). */
  fix: string;
}

export interface ServiceCheck extends SelectorSpec {
  name: string;
  /** Default: the preflight's namespace. */
  namespace?: string;
  pods: PodLabels;
  /** The ClusterRole of deploy/rbac.yaml that should grant `get services`. */
  role: string;
  /** How to fix a missing Service (appended to the message). */
  missing: string;
}

/** Whether an equality selector picks pods with these labels. */
export function selects(selector: Record<string, string>, labels: Record<string, string>): boolean {
  return Object.entries(selector).every(([k, v]) => labels[k] === v);
}

export function formatLabels(labels: Record<string, string>): string {
  const entries = Object.entries(labels);
  return entries.length === 0 ? 'no labels' : entries.map(([k, v]) => `${k}=${v}`).join(', ');
}

/**
 * ` (e.g. app=x, canary.temporal.io/role=canary)`: a selector for the canary's pods that does not pin the version,
 * so it stays right for the next rollout; empty when the canary's labels are unknown.
 */
export function suggestedCanarySelector(pods: PodLabels, versionLabel: string | undefined): string {
  if (!pods.canary) return '';
  const labels = Object.fromEntries(Object.entries(pods.canary).filter(([k]) => k !== versionLabel));
  return Object.keys(labels).length > 0 ? ` (e.g. ${formatLabels(labels)})` : '';
}

/**
 * The labels stable's pods carry after promotion: stable's, with the version label the canary's pods carry (the
 * Deployment workload manager moves it, unless stable's immutable selector holds the label).
 */
export function promotedStable(
  pods: PodLabels,
  versionLabel: string | undefined,
): Record<string, string> | undefined {
  if (!pods.stable || !versionLabel) return undefined;
  const next = pods.canary?.[versionLabel];
  return next === undefined ? undefined : { ...pods.stable, [versionLabel]: next };
}

/**
 * Whether `selector` picks the right side's pods: stable's now and after promotion; the canary's, and not stable's.
 * `what` starts the message (`Service "x" in namespace "y" selects a=b`). Sides whose labels are unknown are skipped.
 */
export function selectorFindings(
  selector: Record<string, string>,
  what: string,
  spec: SelectorSpec,
  pods: PodLabels,
): PreflightFinding[] {
  const finding = (message: string): PreflightFinding => ({
    area: 'selector',
    cause: 'input',
    level: 'refuse',
    message: `${what}, ${message}: ${spec.fix}`,
    ...(spec.path ? { path: spec.path } : {}),
  });
  if (spec.side === 'canary') {
    if (pods.canary && !selects(selector, pods.canary)) {
      return [
        finding(`but the canary's pods will carry ${formatLabels(pods.canary)}, so it selects none of them`),
      ];
    }
    if (pods.stable && selects(selector, pods.stable)) {
      return [
        finding(
          `which stable's pods (${formatLabels(pods.stable)}) match too, so the canary's share would also go to stable`,
        ),
      ];
    }
    return [];
  }
  if (pods.stable && !selects(selector, pods.stable)) {
    return [finding(`but stable's pods carry ${formatLabels(pods.stable)}, so it selects none of them`)];
  }
  const promoted = promotedStable(pods, spec.versionLabel);
  if (promoted && !selects(selector, promoted)) {
    const label = spec.versionLabel!;
    return [
      finding(
        `which stable's pods no longer match after promotion (they then carry ${label}=${promoted[label]}), so it would select none of them`,
      ),
    ];
  }
  return [];
}
