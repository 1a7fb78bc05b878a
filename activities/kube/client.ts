// What every Kubernetes provider shares: the worker's cluster credentials (kubeconfig, in-cluster service
// account, an explicit context), API clients, and the translation of API errors into ProviderErrors that name
// the verb, resource and namespace a worker's account lacks, or the missing object or CRD.
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import type { Agent } from 'node:http';
import * as path from 'node:path';
import {
  ApiException,
  AppsV1Api,
  CoreV1Api,
  CustomObjectsApi,
  KubeConfig,
  NetworkingV1Api,
  PatchStrategy,
  setHeaderOptions,
} from '@kubernetes/client-node';
import type { Target, TrafficTarget } from '../../workflows/target';
import { ProviderError } from '../types';

export interface KubeSettings {
  /** A kubeconfig file (CANARY_KUBECONFIG, else KUBECONFIG, else ~/.kube/config, else in-cluster). */
  kubeconfig?: string;
  /** The kubeconfig context to use (CANARY_KUBE_CONTEXT); default: the file's current context. */
  context?: string;
}

export interface KubeClients {
  config: KubeConfig;
  core: CoreV1Api;
  apps: AppsV1Api;
  networking: NetworkingV1Api;
  custom: CustomObjectsApi;
  /** `https://host:port` of the API server, for messages. */
  server: string;
  /** Who the worker acts as, for messages (`user "canary" in context "prod"`). */
  identity: string;
  /** Where the credentials came from, for messages (`kubeconfig /etc/canary/kubeconfig`, `the pod's service account`). */
  source?: string;
}

/** Where client-node's loadFromDefault looks for the pod's service-account token. */
const SERVICE_ACCOUNT_TOKEN = '/var/run/secrets/kubernetes.io/serviceaccount/token';

const IN_CLUSTER = "the pod's service account";

/** Where loadKubeConfig found each configuration, for messages (kept beside the object, never in it). */
const sources = new WeakMap<KubeConfig, string>();

/**
 * Which source client-node's loadFromDefault would read, or undefined when it has none and would fall back to
 * http://localhost:8080 without credentials (a cluster nobody configured, which must not pass for one).
 */
function defaultSource(): { source?: string; looked: string[] } {
  const looked: string[] = [];
  const kubeconfig = process.env.KUBECONFIG;
  if (kubeconfig) return { source: `kubeconfig ${kubeconfig} (KUBECONFIG)`, looked };
  looked.push('KUBECONFIG and CANARY_KUBECONFIG are not set');
  const home = process.env.HOME;
  const file = home ? path.join(home, '.kube', 'config') : undefined;
  if (file && fs.existsSync(file)) return { source: `kubeconfig ${file}`, looked };
  looked.push(file ? `${file} does not exist` : 'HOME is not set (no ~/.kube/config)');
  const host = process.env.KUBERNETES_SERVICE_HOST;
  const token = fs.existsSync(SERVICE_ACCOUNT_TOKEN);
  if (host && token) return { source: IN_CLUSTER, looked };
  looked.push(
    !host && !token
      ? 'not in a pod (KUBERNETES_SERVICE_HOST is not set)'
      : !host
        ? `${SERVICE_ACCOUNT_TOKEN} exists but KUBERNETES_SERVICE_HOST is not set`
        : `KUBERNETES_SERVICE_HOST is set but ${SERVICE_ACCOUNT_TOKEN} does not exist (no service account token mounted)`,
  );
  return { looked };
}

const NOT_CONFIGURED =
  'no Kubernetes cluster configured: set KUBECONFIG (or CANARY_KUBECONFIG) to a kubeconfig file, or run the worker in a pod with a service account';

/**
 * Loads credentials the usual way: an explicit file, KUBECONFIG, ~/.kube/config, or the pod's service account.
 * With none of them it refuses (`unconfigured`): client-node would otherwise fall back to http://localhost:8080
 * without credentials, and a worker would start against a cluster that does not exist.
 */
export function loadKubeConfig(settings: KubeSettings = {}): KubeConfig {
  const kc = new KubeConfig();
  let source: string;
  try {
    if (settings.kubeconfig) {
      kc.loadFromFile(settings.kubeconfig);
      source = `kubeconfig ${settings.kubeconfig}`;
    } else {
      const found = defaultSource();
      if (!found.source)
        throw new ProviderError('unconfigured', `${NOT_CONFIGURED} (${found.looked.join('; ')})`);
      kc.loadFromDefault();
      source = found.source;
    }
  } catch (err) {
    if (err instanceof ProviderError) throw err;
    throw new ProviderError(
      'unconfigured',
      `cannot load the Kubernetes configuration${settings.kubeconfig ? ` from ${settings.kubeconfig}` : ''}: ${errorText(err)}`,
    );
  }
  if (settings.context) {
    if (!kc.getContexts().some((c) => c.name === settings.context)) {
      const known = kc.getContexts().map((c) => c.name);
      throw new ProviderError(
        'unconfigured',
        `Kubernetes context "${settings.context}" is not in the kubeconfig (CANARY_KUBE_CONTEXT); known: ${known.join(', ') || 'none'}`,
      );
    }
    kc.setCurrentContext(settings.context);
  }
  const cluster = kc.getCurrentCluster();
  if (!cluster) {
    throw new ProviderError('unconfigured', `${NOT_CONFIGURED} (${source} names no current cluster)`);
  }
  if (!cluster.server) {
    throw new ProviderError(
      'unconfigured',
      `cluster "${cluster.name}" in ${source} has no server address: set clusters[].cluster.server`,
    );
  }
  sources.set(kc, source);
  return kc;
}

/**
 * In a pod, who the worker is: the ServiceAccount its token names (client-node calls the user `inClusterUser`, which
 * tells an operator nothing). Read from the token's claims, without verifying them (the API server does that).
 */
function serviceAccountOf(kc: KubeConfig): string | undefined {
  const tokenFile = kc.getCurrentUser()?.authProvider?.config?.tokenFile as string | undefined;
  if (!tokenFile) return undefined;
  try {
    const payload = fs.readFileSync(tokenFile, 'utf8').trim().split('.')[1];
    const sub = (JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as { sub?: unknown }).sub;
    return typeof sub === 'string' && sub.startsWith('system:serviceaccount:') ? sub : undefined;
  } catch {
    return undefined;
  }
}

/** Configurations whose agents are already reused (reuseConnections is idempotent). */
const reusing = new WeakSet<KubeConfig>();

/**
 * client-node 1.4 builds a new https.Agent for every request (KubeConfig.createAgent, kubernetes-client/javascript#2893),
 * so each API call opens its own TCP and TLS connection, client certificate and all: several milliseconds per call on
 * an idle machine and many more on a busy one, and on the API server's CPU too. A rollback's shift is three calls in a
 * row. This keeps one keep-alive agent per distinct set of TLS settings (a rotated certificate gets a new one), so
 * calls share connections. Requests through a proxy keep client-node's own agents.
 */
export function reuseConnections(kc: KubeConfig): void {
  if (reusing.has(kc)) return;
  reusing.add(kc);
  const patched = kc as unknown as {
    createAgent(
      cluster: { server?: string; proxyUrl?: string } | null,
      options: Record<string, unknown>,
    ): Agent;
  };
  const original = patched.createAgent.bind(kc);
  const agents = new Map<string, Agent>();
  patched.createAgent = (cluster, options) => {
    if (!cluster?.server?.startsWith('https:') || cluster.proxyUrl) return original(cluster, options);
    const hash = createHash('sha256').update(cluster.server);
    for (const name of Object.keys(options).sort()) {
      const v = options[name];
      if (v === undefined) continue;
      hash.update(`\0${name}=`);
      hash.update(Buffer.isBuffer(v) || typeof v === 'string' ? v : JSON.stringify(v));
    }
    const key = hash.digest('hex');
    let agent = agents.get(key);
    if (!agent) {
      agent = original(cluster, { ...options, keepAlive: true });
      agents.set(key, agent);
    }
    return agent;
  };
}

export function kubeClients(kc: KubeConfig): KubeClients {
  reuseConnections(kc);
  const context = kc.getCurrentContext();
  const user = kc.getCurrentUser()?.name ?? 'unknown user';
  const source = sources.get(kc);
  const serviceAccount = source === IN_CLUSTER ? serviceAccountOf(kc) : undefined;
  return {
    config: kc,
    core: kc.makeApiClient(CoreV1Api),
    apps: kc.makeApiClient(AppsV1Api),
    networking: kc.makeApiClient(NetworkingV1Api),
    custom: kc.makeApiClient(CustomObjectsApi),
    server: kc.getCurrentCluster()?.server ?? 'unknown server',
    identity: serviceAccount
      ? `service account "${serviceAccount}"`
      : `user "${user}"${context ? ` in context "${context}"` : ''}`,
    ...(source ? { source } : {}),
  };
}

/** Request options for merge patches: client-node 1.4 sends JSON-patch unless told otherwise. */
export const MERGE_PATCH = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);

/** What an API call was about, so an error can name it. */
export interface KubeCall {
  /** The RBAC verb: get, list, create, update, patch, delete. */
  verb: string;
  /** The resource with its group, e.g. `virtualservices.networking.istio.io` or `deployments.apps`. */
  resource: string;
  namespace: string;
  name?: string;
}

export function httpStatus(err: unknown): number | undefined {
  if (err instanceof ApiException) return err.code;
  const code = (err as { code?: unknown } | undefined)?.code;
  return typeof code === 'number' ? code : undefined;
}

/** The API server's own message for a failed call (its Status message), else the error's first line. */
export function apiMessage(err: unknown): string {
  if (err instanceof ApiException) {
    const body = err.body as unknown;
    const parsed = typeof body === 'string' ? safeJson(body) : body;
    const m = (parsed as { message?: unknown } | undefined)?.message;
    if (typeof m === 'string') return m;
  }
  return errorText(err);
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message.split('\n')[0] : String(err);
}

/**
 * Turns an API failure into an error that says what to do. 403 and 404 are permanent ProviderErrors; 409 a
 * `conflict`; anything else (5xx, connection refused) stays a plain, retryable error with the server named.
 */
export function kubeError(
  err: unknown,
  call: KubeCall,
  clients?: Pick<KubeClients, 'identity' | 'server'>,
): Error {
  if (err instanceof ProviderError) return err;
  const status = httpStatus(err);
  const where = `in namespace "${call.namespace}"`;
  const object = call.name ? `${call.resource} "${call.name}"` : call.resource;
  const who = clients ? ` (${clients.identity})` : '';
  if (status === 403) {
    return new ProviderError(
      'forbidden',
      `the worker's Kubernetes account${who} may not ${call.verb} ${call.resource} ${where}: grant the verb "${call.verb}" on "${call.resource}" to it (see deploy/rbac.yaml); API server said: ${apiMessage(err)}`,
      { cause: err },
    );
  }
  if (status === 404) {
    const message = apiMessage(err);
    // A missing CRD answers with a bare 404 ("the server could not find the requested resource").
    const crdMissing =
      call.name === undefined ||
      !/not found/i.test(message) ||
      /could not find the requested resource/i.test(message);
    return new ProviderError(
      'not_found',
      crdMissing
        ? `the API server has no ${call.resource}: is its CRD installed? (${message})`
        : `${object} does not exist ${where}: create it or fix the rollout's target`,
      { cause: err },
    );
  }
  if (status === 409) {
    return new ProviderError('conflict', `${object} ${where} was changed concurrently: ${apiMessage(err)}`, {
      cause: err,
    });
  }
  if (status === 422 || status === 400) {
    return new ProviderError(
      'invalid',
      `the API server refused to ${call.verb} ${object} ${where}: ${apiMessage(err)}`,
      {
        cause: err,
      },
    );
  }
  const server = clients ? ` at ${clients.server}` : '';
  return new Error(
    `cannot ${call.verb} ${object} ${where}${server}: ${status ? `HTTP ${status}: ` : ''}${apiMessage(err)}`,
    { cause: err },
  );
}

/** Runs `fn`, translating its failure with kubeError. */
export async function kubeCall<T>(
  call: KubeCall,
  clients: KubeClients | undefined,
  fn: () => Promise<T>,
): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw kubeError(err, call, clients);
  }
}

/**
 * Read-modify-write with optimistic concurrency: `attempt` reads the live object and writes with its
 * resourceVersion; a 409 conflict means someone else wrote in between, so it runs again on a fresh read.
 */
export async function retryOnConflict<T>(attempt: () => Promise<T>, attempts = 5): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await attempt();
    } catch (err) {
      const conflict = (err instanceof ProviderError && err.kind === 'conflict') || httpStatus(err) === 409;
      if (!conflict || i >= attempts) throw err;
      await new Promise((r) => setTimeout(r, 20 * i));
    }
  }
}

/** A custom resource kind, addressed the way CustomObjectsApi wants it. */
export interface CustomKind {
  group: string;
  version: string;
  plural: string;
}

export function resourceName(kind: CustomKind): string {
  return `${kind.plural}.${kind.group}`;
}

/** A custom object as read from the API server (only what routers need). */
export interface CustomObject {
  apiVersion?: string;
  kind?: string;
  metadata: {
    name: string;
    namespace?: string;
    resourceVersion?: string;
    annotations?: Record<string, string>;
    labels?: Record<string, string>;
  };
  spec?: Record<string, unknown>;
  [key: string]: unknown;
}

/** get/find/merge-patch of one custom object kind in one namespace, with errors that name it. */
export class CustomObjects {
  constructor(
    private readonly clients: KubeClients,
    readonly kind: CustomKind,
    readonly namespace: string,
  ) {}

  private call(verb: string, name?: string): KubeCall {
    return { verb, resource: resourceName(this.kind), namespace: this.namespace, ...(name ? { name } : {}) };
  }

  async get(name: string): Promise<CustomObject> {
    const { group, version, plural } = this.kind;
    return kubeCall(this.call('get', name), this.clients, () =>
      this.clients.custom.getNamespacedCustomObject({
        group,
        version,
        plural,
        namespace: this.namespace,
        name,
      }),
    ) as Promise<CustomObject>;
  }

  /** Returns undefined when the object does not exist (a missing CRD still throws). */
  async find(name: string): Promise<CustomObject | undefined> {
    try {
      return await this.get(name);
    } catch (err) {
      if (err instanceof ProviderError && err.kind === 'not_found' && /does not exist/.test(err.message))
        return undefined;
      throw err;
    }
  }

  /**
   * A JSON merge patch (RFC 7386) sent with its own content type. With `resourceVersion` the server refuses
   * the write (409) if the object changed since it was read.
   */
  async mergePatch(
    name: string,
    patch: Record<string, unknown>,
    resourceVersion?: string,
  ): Promise<CustomObject> {
    const { group, version, plural } = this.kind;
    const body = resourceVersion
      ? { ...patch, metadata: { ...((patch.metadata as object | undefined) ?? {}), resourceVersion } }
      : patch;
    return kubeCall(this.call('patch', name), this.clients, () =>
      this.clients.custom.patchNamespacedCustomObject(
        { group, version, plural, namespace: this.namespace, name, body },
        MERGE_PATCH,
      ),
    ) as Promise<CustomObject>;
  }
}

/** The target's traffic settings for this router; a router built for another router's target is a bug. */
export function routerSettings<R extends TrafficTarget['router']>(
  target: Target,
  router: R,
): Extract<TrafficTarget, { router: R }> {
  if (target.traffic?.router !== router) {
    throw new ProviderError(
      'invalid',
      `the ${router} router needs traffic.${router} settings, got ${target.traffic ? `traffic.${target.traffic.router}` : 'no traffic settings'}`,
    );
  }
  return target.traffic as Extract<TrafficTarget, { router: R }>;
}

export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Structural equality of JSON values; an absent key equals an undefined one. (Objects client-node deserialises
 * need not have Object's prototype, so util.isDeepStrictEqual calls them different.)
 */
export function sameJson(a: unknown, b: unknown): boolean {
  if (Array.isArray(a) && Array.isArray(b))
    return a.length === b.length && a.every((x, i) => sameJson(x, b[i]));
  if (isRecord(a) && isRecord(b)) {
    const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
    return [...keys].every((k) => sameJson(a[k], b[k]));
  }
  return a === b;
}

/** The JSON form of an object read by client-node (its model classes carry undefined fields and Dates). */
export function plain<T>(value: T): T {
  return JSON.parse(JSON.stringify(value)) as T;
}
