// Istio routing: a stage's weight lives in the VirtualService's HTTP routes, as the weights of the destinations
// whose subsets are the stable and canary ones; the DestinationRule's subsets select the pods of each version by
// their version label. Setup adds what the rollout needs (a canary destination, the canary subset, a header route,
// sticky-session routing) and records what it added in an annotation, so any worker can tear it down again.
// This is how Argo Rollouts and Flagger drive Istio.
import type { V1APIResourceList } from '@kubernetes/client-node';
import type { IstioTraffic, Target } from '../../workflows/target';
import type { StageMirror } from '../../workflows/types';
import {
  CustomObjects,
  httpStatus,
  kubeError,
  retryOnConflict,
  type CustomObject,
  type KubeClients,
  routerSettings,
  sameJson,
} from '../kube/client';
import {
  KubePreflight,
  formatLabels,
  selectorFindings,
  type AccessNeed,
  type SelectorSpec,
} from '../kube/preflight';
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

const GROUP = 'networking.istio.io';
/** API versions in order of preference: v1 since Istio 1.22, v1beta1 before. */
const API_VERSIONS = ['v1', 'v1beta1'] as const;
const VIRTUAL_SERVICES = 'virtualservices';
const DESTINATION_RULES = 'destinationrules';
type Plural = typeof VIRTUAL_SERVICES | typeof DESTINATION_RULES;

/** The routes setup prepends: their names are reserved, teardown removes them. */
export const HEADER_ROUTE = 'canary-header';
export const STICKY_ROUTE = 'canary-sticky';
const RESERVED_ROUTES = new Set([HEADER_ROUTE, STICKY_ROUTE]);
/**
 * The routes a shadow stage puts before each managed route (`canary-mirror`, or `canary-mirror-N` for the Nth of
 * several): the same match narrowed to the mirrored methods, the same destinations, and a mirror to the canary
 * subset. Requests of other methods fall through to the managed route untouched.
 */
export const MIRROR_ROUTE = 'canary-mirror';
function isMirrorRoute(name: string | undefined): boolean {
  return name === MIRROR_ROUTE || (name?.startsWith(`${MIRROR_ROUTE}-`) ?? false);
}
/** Names the router keeps for itself: the header, sticky and mirror routes. */
function isReserved(name: string | undefined): boolean {
  return RESERVED_ROUTES.has(name ?? '') || isMirrorRoute(name);
}
/** What setup added to the VirtualService (JSON {@link VirtualServiceRecord}). */
export const VS_RECORD = 'canary.temporal.io/istio-setup';
/** What setup added to the DestinationRule (JSON {@link SubsetRecord}). */
export const DR_RECORD = 'canary.temporal.io/istio-subsets';

// The parts of the Istio objects this router reads; everything else is carried through untouched.
type Json = Record<string, unknown>;
interface HeaderOperations {
  set?: Record<string, string>;
  add?: Record<string, string>;
  remove?: string[];
  [key: string]: unknown;
}
interface RouteDestination {
  destination?: { host?: string; subset?: string; port?: Json; [key: string]: unknown };
  weight?: number;
  headers?: { request?: HeaderOperations; response?: HeaderOperations; [key: string]: unknown };
  [key: string]: unknown;
}
interface HttpRoute {
  name?: string;
  match?: Json[];
  route?: RouteDestination[];
  [key: string]: unknown;
}
interface Subset {
  name: string;
  labels?: Record<string, string>;
  [key: string]: unknown;
}

/** Routes are named by `name`, or `#<index>` among the non-reserved routes when unnamed. */
interface VirtualServiceRecord {
  /** Routes where setup added the canary destination (teardown removes it). */
  addedCanary: string[];
  /** Routes where setup wrote an explicit weight on a stable destination that had none. */
  addedStableWeight: string[];
  /** Routes whose existing canary destination got the sticky Set-Cookie header: its previous value, or null. */
  cookieHeader: Record<string, string | null>;
  /** The mirror routes a shadow stage added (removed by the next weight change, or teardown) and their percent. */
  mirror?: { routes: string[]; percent: number };
}

interface SubsetRecord {
  /** The canary subset's name when setup added it (teardown removes it). */
  addedSubset?: string;
  /** When the canary subset existed: its name and labels before setup (teardown restores them; null: none). */
  previous?: { subset: string; labels: Record<string, string> | null };
}

/** A managed route inside a (cloned) http list. */
interface Managed {
  key: string;
  route: HttpRoute;
}

const SET_COOKIE = 'Set-Cookie';

export class IstioRouter implements TrafficRouter {
  readonly type = 'istio';
  readonly writesAfterGate = true;
  private readonly traffic: IstioTraffic;
  private readonly namespace: string;
  private readonly versionLabel: string;
  private readonly app: string;
  /** The served API version per kind, found by discovery once (forgotten when the kind goes missing). */
  private readonly served = new Map<Plural, Promise<string>>();

  constructor(
    private readonly clients: KubeClients,
    target: Target,
  ) {
    const traffic = routerSettings(target, 'istio');
    const reserved = traffic.routes.filter((r) => isReserved(r));
    if (reserved.length > 0) {
      throw new ProviderError(
        'invalid',
        `traffic.istio.routes names ${reserved.map((r) => `"${r}"`).join(', ')}: the router reserves that name for the route it adds`,
      );
    }
    this.traffic = traffic;
    this.namespace = target.namespace;
    this.app = target.app;
    this.versionLabel = target.workload?.kind === 'Deployment' ? target.workload.versionLabel : 'version';
  }

  async setup(versions: RoutingVersions): Promise<void> {
    // Subsets first: a destination must never name a subset that does not exist yet (Istio answers 503).
    if (this.traffic.destinationRule) await this.setupSubsets(this.traffic.destinationRule, versions);
    await this.update(VIRTUAL_SERVICES, this.traffic.virtualService, (vs) => this.setupRoutes(vs));
  }

  async getWeight(): Promise<number> {
    const vs = await this.read(VIRTUAL_SERVICES, this.traffic.virtualService);
    const first = this.managed(httpOf(vs))[0];
    return weightOf(first.route, this.find(first.route, this.traffic.canarySubset));
  }

  /** One read and one merge patch; `options.writeAfter` is awaited between them (nothing is written when it rejects). */
  async setWeight(weight: number, mirror?: StageMirror, options: WeightOptions = {}): Promise<WeightChange> {
    checkWeight(weight);
    checkMirror(weight, mirror);
    let previous = 0;
    // What the gate may change (stable's Deployment) is not the VirtualService: what was read stays good.
    const beforeWrite = writeGate(options);
    const changed = await this.update(
      VIRTUAL_SERVICES,
      this.traffic.virtualService,
      (vs) => {
        const http = structuredClone(httpOf(vs));
        const managed = this.managed(http);
        previous = weightOf(managed[0].route, this.find(managed[0].route, this.traffic.canarySubset));
        for (const m of managed) this.applyWeight(m, weight);
        // Every weight change sets the mirror routes afresh: a shift without a mirror removes them.
        const placed = this.placeMirrors(http, mirror);
        const record = vsRecord(vs);
        const recorded =
          placed.names.length > 0 ? { routes: placed.names, percent: mirror!.percent } : undefined;
        if (sameJson(record.mirror ?? null, recorded ?? null)) return { spec: { http: placed.http } };
        if (recorded) record.mirror = recorded;
        else delete record.mirror;
        return {
          spec: { http: placed.http },
          metadata: { annotations: { [VS_RECORD]: JSON.stringify(record) } },
        };
      },
      beforeWrite,
    );
    return { previous, changed };
  }

  async verifyWeight(weight: number, mirror?: StageMirror): Promise<WeightVerification> {
    const vs = await this.read(VIRTUAL_SERVICES, this.traffic.virtualService);
    const mirrors = httpOf(vs).filter((r) => isMirrorRoute(r.name));
    const where = this.label(VIRTUAL_SERVICES, this.traffic.virtualService);
    if (!mirror && mirrors.length > 0) {
      return {
        verified: false,
        weight,
        reason: `${where} still has the mirror route${mirrors.length > 1 ? 's' : ''} ${mirrors.map((r) => `"${r.name}"`).join(', ')}`,
      };
    }
    const wrong = mirrors.find(
      (r) => (r.mirrorPercentage as { value?: number } | undefined)?.value !== mirror?.percent,
    );
    if (mirror && (mirrors.length === 0 || wrong)) {
      return {
        verified: false,
        weight,
        reason: wrong
          ? `mirror route "${wrong.name}" of ${where} mirrors ${JSON.stringify(wrong.mirrorPercentage ?? null)}, expected ${mirror.percent} %`
          : `${where} has no mirror route`,
      };
    }
    for (const m of this.managed(httpOf(vs))) {
      const canary = weightOf(m.route, this.find(m.route, this.traffic.canarySubset));
      const stable = weightOf(m.route, this.find(m.route, this.traffic.stableSubset));
      if (canary !== weight || stable !== 100 - weight) {
        return {
          verified: false,
          weight: canary,
          reason: `${this.describe(m)} of ${this.label(VIRTUAL_SERVICES, this.traffic.virtualService)} sends ${canary}% to subset "${this.traffic.canarySubset}" and ${stable}% to subset "${this.traffic.stableSubset}", expected ${weight}% and ${100 - weight}%`,
        };
      }
    }
    return { verified: true, weight };
  }

  async teardown(): Promise<void> {
    // Traffic back to stable before the canary subset goes (the reverse of setup).
    await this.update(VIRTUAL_SERVICES, this.traffic.virtualService, (vs) => this.teardownRoutes(vs));
    if (this.traffic.destinationRule) {
      await this.update(DESTINATION_RULES, this.traffic.destinationRule, (dr) => this.teardownSubsets(dr));
    }
  }

  // --- preflight -------------------------------------------------------------------------------------------

  /**
   * Read-only: Istio's CRDs are served, the verbs are allowed, the VirtualService and its managed routes exist with a
   * stable destination, and the subsets those routes name (and setup will name: the canary's) are defined by a
   * DestinationRule that selects the right version's pods, before traffic moves and after promotion. A
   * DestinationRule the target names is the router's to keep right; one it does not name must be right by itself.
   */
  async preflight(versions: RoutingVersions, pods: PodLabels): Promise<PreflightFinding[]> {
    const check = new KubePreflight(this.clients, this.namespace);
    const cluster = await check.cluster();
    if (cluster.length > 0) return cluster;
    const what = "Istio's networking CRDs (install Istio, or its CRDs)";
    const [vsKind, drKind] = await Promise.all([
      check.served(GROUP, API_VERSIONS, VIRTUAL_SERVICES, what),
      check.served(GROUP, API_VERSIONS, DESTINATION_RULES, what),
    ]);
    const findings: PreflightFinding[] = [];
    for (const kind of [vsKind, drKind]) if ('finding' in kind) findings.push(kind.finding);
    const needs: AccessNeed[] = [{ group: GROUP, resource: VIRTUAL_SERVICES, verbs: ['get', 'patch'] }];
    if (this.traffic.destinationRule) {
      needs.push({ group: GROUP, resource: DESTINATION_RULES, verbs: ['get', 'patch'] });
    }
    findings.push(...(await check.access(needs, 'temporal-canary-istio')));
    if (!('version' in vsKind) || !(await check.allows([{ ...needs[0], verbs: ['get'] }]))) return findings;

    const vsName = this.traffic.virtualService;
    const vsRead = await this.preflightRead(check, vsKind.version, VIRTUAL_SERVICES, vsName);
    if ('finding' in vsRead) return [...findings, vsRead.finding];
    if ('missing' in vsRead) {
      findings.push({
        area: 'object',
        cause: 'input',
        level: 'refuse',
        message: `${this.label(VIRTUAL_SERVICES, vsName)} does not exist: the router shifts traffic in it; create it, or fix traffic.istio.virtualService`,
        path: 'target.traffic.istio.virtualService',
      });
      return findings;
    }
    const vs = vsRead.found;
    let hosts: string[];
    try {
      vsRecord(vs);
      const managed = this.managed(httpOf(vs));
      hosts = [...new Set(managed.map((m) => this.requireStable(m).destination?.host ?? ''))];
    } catch (err) {
      if (!(err instanceof ProviderError)) throw err;
      findings.push({
        area: 'object',
        cause: 'input',
        level: 'refuse',
        message: err.message,
        path: /stableSubset/.test(err.message)
          ? 'target.traffic.istio.stableSubset'
          : 'target.traffic.istio.routes',
      });
      return findings;
    }
    if (!('version' in drKind)) return findings;
    const named = this.traffic.destinationRule;
    if (named) {
      if (!(await check.allows([{ group: GROUP, resource: DESTINATION_RULES, verbs: ['get'] }]))) {
        return findings;
      }
      findings.push(...(await this.namedRuleFindings(check, drKind.version, named, hosts, versions, pods)));
    } else {
      findings.push(...(await this.unnamedRuleFindings(check, drKind.version, hosts, pods)));
    }
    return findings;
  }

  /**
   * The DestinationRule the target names: it must exist, be for the routes' host, and (once setup has pointed its
   * subsets at the versions) select the right pods.
   */
  private async namedRuleFindings(
    check: KubePreflight,
    version: string,
    name: string,
    hosts: string[],
    versions: RoutingVersions,
    pods: PodLabels,
  ): Promise<PreflightFinding[]> {
    const path = 'target.traffic.istio.destinationRule';
    const read = await this.preflightRead(check, version, DESTINATION_RULES, name);
    if ('finding' in read) return [read.finding];
    if ('missing' in read) {
      return [
        {
          area: 'object',
          cause: 'input',
          level: 'refuse',
          message: `${this.label(DESTINATION_RULES, name)} does not exist: setup keeps the stable and canary subsets in it but does not create it; create it for host ${hosts.map((h) => `"${h}"`).join(', ')}, or fix traffic.istio.destinationRule`,
          path,
        },
      ];
    }
    const dr = read.found;
    const host = typeof dr.spec?.host === 'string' ? dr.spec.host : '';
    const foreign = hosts.filter((h) => !this.hostMatches(host, h));
    if (foreign.length > 0) {
      return [
        {
          area: 'selector',
          cause: 'input',
          level: 'refuse',
          message: `${this.label(DESTINATION_RULES, name)} is for host "${host}", but the routes the router shifts send to ${foreign.map((h) => `"${h}"`).join(', ')}: Istio takes those subsets from another DestinationRule; name that one as traffic.istio.destinationRule`,
          path,
        },
      ];
    }
    try {
      subsetRecord(dr);
    } catch (err) {
      if (!(err instanceof ProviderError)) throw err;
      return [{ area: 'object', cause: 'input', level: 'refuse', message: err.message, path }];
    }
    // The subsets as setup will leave them (the same code, on a copy): each must select its side's pods.
    const subsets = structuredClone(subsetsOf(dr));
    if (versions.stable !== undefined) this.select(subsets, this.traffic.stableSubset, versions.stable);
    this.select(subsets, this.traffic.canarySubset, versions.canary);
    const fix =
      `the router sets ${this.versionLabel} on both subsets and keeps their other labels, so every other label a subset ` +
      `selects must be on its side's pods, and stable's pods need ${this.versionLabel} (target.workload.versionLabel)`;
    // The router keeps the stable subset on stable's version after promotion too: no promotion check needed.
    return this.subsetFindings(name, subsets, pods, { fix, path }, false);
  }

  /**
   * No DestinationRule named: the one that defines the routes' subsets for their host must exist already, define
   * both subsets, and stay right without the router's help (after promotion too).
   */
  private async unnamedRuleFindings(
    check: KubePreflight,
    version: string,
    hosts: string[],
    pods: PodLabels,
  ): Promise<PreflightFinding[]> {
    const path = 'target.traffic.istio.destinationRule';
    const { stableSubset, canarySubset } = this.traffic;
    const keep = `name it as traffic.istio.destinationRule so the router keeps the canary and stable subsets on the right versions`;
    const { rules, searched, finding } = await this.destinationRules(check, version, hosts);
    if (finding) return [finding];
    const findings: PreflightFinding[] = [];
    for (const host of hosts) {
      const dr = this.ruleFor(rules, host);
      // A host of another namespace takes its subsets from a DestinationRule there: not this router's to look at.
      if (!dr && !this.fqdn(host).endsWith(`.${this.namespace}.svc.cluster.local`)) continue;
      if (!dr) {
        findings.push({
          area: 'object',
          cause: 'input',
          level: 'refuse',
          message:
            `the routes of ${this.label(VIRTUAL_SERVICES, this.traffic.virtualService)} send to subsets "${stableSubset}" and "${canarySubset}" of host "${host}", ` +
            `but no DestinationRule ${searched} defines them, so Istio would answer 503 for them: create a DestinationRule for host "${host}" with those subsets and ${keep}`,
          path,
        });
        continue;
      }
      const name = dr.metadata.name;
      const missing = [stableSubset, canarySubset].filter((s) => !subsetsOf(dr).some((x) => x.name === s));
      if (missing.length > 0) {
        findings.push({
          area: 'object',
          cause: 'input',
          level: 'refuse',
          message:
            `${this.label(DESTINATION_RULES, name)} (host "${dr.spec?.host as string}") defines no subset ${missing.map((s) => `"${s}"`).join(' or ')}, ` +
            `which the routes ${missing.includes(canarySubset) ? 'will ' : ''}name, so Istio would answer 503 for them, and the router does not manage it: ${keep}`,
          path,
        });
        continue;
      }
      findings.push(
        ...this.subsetFindings(
          name,
          subsetsOf(dr),
          pods,
          { fix: `the router does not manage this DestinationRule; ${keep}`, path },
          true,
        ),
      );
    }
    return findings;
  }

  /** Each of the two subsets must select its side's pods (and stable's after promotion, when asked). */
  private subsetFindings(
    name: string,
    subsets: Subset[],
    pods: PodLabels,
    how: Pick<SelectorSpec, 'fix' | 'path'>,
    afterPromotion: boolean,
  ): PreflightFinding[] {
    const findings: PreflightFinding[] = [];
    for (const side of ['stable', 'canary'] as const) {
      const subsetName = side === 'stable' ? this.traffic.stableSubset : this.traffic.canarySubset;
      const subset = subsets.find((s) => s.name === subsetName);
      const labels = subset?.labels ?? {};
      const what = `subset "${subsetName}" of ${this.label(DESTINATION_RULES, name)} selects ${formatLabels(labels)}`;
      const spec: SelectorSpec = {
        side,
        ...how,
        ...(afterPromotion ? { versionLabel: this.versionLabel } : {}),
      };
      findings.push(...selectorFindings(labels, what, spec, pods));
    }
    return findings;
  }

  /**
   * The DestinationRules that may define the routes' subsets: all of the namespace when the account may list them,
   * else those named like the hosts, the app or the VirtualService (the router's role has get, not list).
   */
  private async destinationRules(
    check: KubePreflight,
    version: string,
    hosts: string[],
  ): Promise<{ rules: CustomObject[]; searched: string; finding?: PreflightFinding }> {
    const where = `in namespace "${this.namespace}"`;
    const resource = { group: GROUP, resource: DESTINATION_RULES };
    if (await check.allows([{ ...resource, verbs: ['list'] }])) {
      const list = await check.read(
        { verb: 'list', resource: `${DESTINATION_RULES}.${GROUP}`, namespace: this.namespace },
        (c) =>
          c.custom.listNamespacedCustomObject({
            group: GROUP,
            version,
            plural: DESTINATION_RULES,
            namespace: this.namespace,
          }),
      );
      if ('finding' in list) return { rules: [], searched: where, finding: list.finding };
      const items = 'found' in list ? ((list.found as { items?: CustomObject[] }).items ?? []) : [];
      return { rules: items, searched: where };
    }
    const names = [
      ...new Set([...hosts.map((h) => h.split('.')[0]), this.app, this.traffic.virtualService]),
    ].filter((n) => n !== '' && n !== '*');
    const searched = `${where} named ${names.map((n) => `"${n}"`).join(', ')} (the worker may not list DestinationRules, so no others were looked at)`;
    if (!(await check.allows([{ ...resource, verbs: ['get'] }]))) return { rules: [], searched };
    const reads = await Promise.all(
      names.map((n) => this.preflightRead(check, version, DESTINATION_RULES, n)),
    );
    const rules: CustomObject[] = [];
    for (const read of reads) {
      if ('finding' in read) return { rules, searched, finding: read.finding };
      if ('found' in read) rules.push(read.found);
    }
    return { rules, searched };
  }

  /** The DestinationRule Istio applies to a host: an exact host first, then the longest wildcard. */
  private ruleFor(rules: CustomObject[], host: string): CustomObject | undefined {
    const hostOf = (r: CustomObject) => (typeof r.spec?.host === 'string' ? r.spec.host : '');
    const exact = rules.find((r) => !hostOf(r).includes('*') && this.hostMatches(hostOf(r), host));
    if (exact) return exact;
    return rules
      .filter((r) => hostOf(r).includes('*') && this.hostMatches(hostOf(r), host))
      .sort((a, b) => hostOf(b).length - hostOf(a).length)[0];
  }

  /** Whether a DestinationRule's host covers a route's destination host (short names are namespace-relative). */
  private hostMatches(ruleHost: string, host: string): boolean {
    const a = this.fqdn(ruleHost);
    const b = this.fqdn(host);
    if (a === '*') return true;
    if (a.startsWith('*.')) return b.endsWith(a.slice(1));
    return a === b;
  }

  private fqdn(host: string): string {
    if (host.includes('*')) return host;
    const parts = host.split('.');
    if (parts.length === 1) return `${host}.${this.namespace}.svc.cluster.local`;
    if (parts.length === 2) return `${host}.svc.cluster.local`;
    if (parts.length === 3 && parts[2] === 'svc') return `${host}.cluster.local`;
    return host;
  }

  private preflightRead(check: KubePreflight, version: string, plural: Plural, name: string) {
    return check.read<CustomObject>(
      { verb: 'get', resource: `${plural}.${GROUP}`, namespace: this.namespace, name },
      (c) =>
        c.custom.getNamespacedCustomObject({
          group: GROUP,
          version,
          plural,
          namespace: this.namespace,
          name,
        }) as Promise<CustomObject>,
    );
  }

  // --- VirtualService ------------------------------------------------------------------------------------

  private setupRoutes(vs: CustomObject): Json {
    const http = structuredClone(httpOf(vs));
    const record = vsRecord(vs);
    const managed = this.managed(http);
    for (const m of managed) {
      const dests = (m.route.route ??= []);
      const stable = this.requireStable(m);
      let canary = this.find(m.route, this.traffic.canarySubset);
      if (!canary) {
        // A copy of the stable destination (same host, port and header operations), carrying nothing yet.
        if (stable.weight === undefined) {
          stable.weight = weightOf(m.route, stable);
          addOnce(record.addedStableWeight, m.key);
        }
        canary = {
          ...structuredClone(stable),
          destination: { ...structuredClone(stable.destination), subset: this.traffic.canarySubset },
          weight: 0,
        };
        dests.splice(dests.indexOf(stable) + 1, 0, canary);
        addOnce(record.addedCanary, m.key);
      }
      if (this.traffic.stickyCookie) {
        // Whoever lands on the canary gets the cookie, and the sticky route keeps them there.
        const previous = canary.headers?.response?.add?.[SET_COOKIE];
        if (!record.addedCanary.includes(m.key) && !(m.key in record.cookieHeader)) {
          record.cookieHeader[m.key] = previous ?? null;
        }
        canary.headers ??= {};
        canary.headers.response ??= {};
        canary.headers.response.add ??= {};
        canary.headers.response.add[SET_COOKIE] = `${this.traffic.stickyCookie}=canary; Path=/`;
      }
    }
    const extra: HttpRoute[] = [];
    const { header, stickyCookie } = this.traffic;
    if (header) {
      extra.push(
        this.canaryRoute(HEADER_ROUTE, managed[0], {
          // Istio matches header names in lower case only.
          [header.name.toLowerCase()]: { exact: header.value ?? 'always' },
        }),
      );
    }
    if (stickyCookie) {
      extra.push(
        this.canaryRoute(STICKY_ROUTE, managed[0], {
          cookie: { regex: `^(.*?;\\s*)?(${escapeRegex(stickyCookie)}=canary)(;.*)?$` },
        }),
      );
    }
    // The reserved routes go first so they win over the weighted ones; stale ones (settings changed) are dropped.
    const next = [...extra, ...http.filter((r) => !RESERVED_ROUTES.has(r.name ?? ''))];
    const empty =
      record.addedCanary.length === 0 &&
      record.addedStableWeight.length === 0 &&
      Object.keys(record.cookieHeader).length === 0;
    return {
      spec: { http: next },
      ...(empty && !vs.metadata.annotations?.[VS_RECORD]
        ? {}
        : { metadata: { annotations: { [VS_RECORD]: JSON.stringify(record) } } }),
    };
  }

  private teardownRoutes(vs: CustomObject): Json {
    const record = vsRecord(vs);
    // The header, sticky and mirror routes go; a mirror route is the router's by its reserved name (and record).
    const mirrored = new Set(record.mirror?.routes ?? []);
    const http = structuredClone(httpOf(vs)).filter(
      (r) => !isReserved(r.name) && !mirrored.has(r.name ?? ''),
    );
    for (const m of this.managed(http)) {
      const dests = m.route.route ?? [];
      const stable = this.requireStable(m);
      const canary = this.find(m.route, this.traffic.canarySubset);
      if (canary && record.addedCanary.includes(m.key)) {
        dests.splice(dests.indexOf(canary), 1);
      } else if (canary) {
        canary.weight = 0;
        if (m.key in record.cookieHeader) restoreCookie(canary, record.cookieHeader[m.key]);
      }
      if (record.addedStableWeight.includes(m.key) && dests.length === 1) delete stable.weight;
      else if (weightOf(m.route, stable) !== 100) stable.weight = 100;
    }
    return {
      spec: { http },
      ...(vs.metadata.annotations?.[VS_RECORD] !== undefined
        ? { metadata: { annotations: { [VS_RECORD]: null } } }
        : {}),
    };
  }

  private applyWeight(m: Managed, weight: number): void {
    const stable = this.requireStable(m);
    const canary = this.find(m.route, this.traffic.canarySubset);
    if (!canary) {
      if (weight > 0) {
        throw new ProviderError(
          'invalid',
          `${this.describe(m)} of ${this.label(VIRTUAL_SERVICES, this.traffic.virtualService)} has no destination with subset "${this.traffic.canarySubset}": run the router's setup first (it adds one)`,
        );
      }
      // Without a canary destination, 0 % means the stable one carries everything.
      if (weightOf(m.route, stable) !== 100) stable.weight = 100;
      return;
    }
    stable.weight = 100 - weight;
    canary.weight = weight;
  }

  /**
   * The http list with mirror routes afresh: none without a mirror; with one, before each managed route a copy of it
   * (its settings, destinations and match, narrowed to the mirrored methods) that also mirrors to the canary subset.
   */
  private placeMirrors(http: HttpRoute[], mirror?: StageMirror): { http: HttpRoute[]; names: string[] } {
    const kept = http.filter((r) => !isMirrorRoute(r.name));
    if (!mirror) return { http: kept, names: [] };
    const managed = this.managed(kept);
    const out: HttpRoute[] = [];
    const names: string[] = [];
    for (const route of kept) {
      const i = managed.findIndex((m) => m.route === route);
      if (i !== -1) {
        const name = managed.length > 1 ? `${MIRROR_ROUTE}-${i + 1}` : MIRROR_ROUTE;
        const copy = this.mirrorRoute(name, managed[i], mirror);
        if (copy) {
          out.push(copy);
          names.push(name);
        }
      }
      out.push(route);
    }
    if (names.length === 0) {
      throw new ProviderError(
        'invalid',
        `no route of ${this.label(VIRTUAL_SERVICES, this.traffic.virtualService)} the router shifts takes ${mirror.methods?.join(' or ')} requests (each matches other methods only), so nothing can be mirrored: widen stages[].mirrorMethods`,
      );
    }
    return { http: out, names };
  }

  /** The mirror route before managed route `m`, or undefined when `m` takes none of the mirrored methods. */
  private mirrorRoute(name: string, m: Managed, mirror: StageMirror): HttpRoute | undefined {
    const where = `${this.describe(m)} of ${this.label(VIRTUAL_SERVICES, this.traffic.virtualService)}`;
    if (m.route.mirror !== undefined || m.route.mirrors !== undefined) {
      throw new ProviderError(
        'invalid',
        `${where} mirrors requests already (mirror or mirrors): a shadow stage would replace that; remove it, or drop the shadow stage`,
      );
    }
    const match = methodMatch(m.route.match, mirror.methods);
    if (match === null) return undefined;
    const { host, port } = this.requireStable(m).destination ?? {};
    const { name: _name, match: _match, ...rest } = structuredClone(m.route);
    return {
      name,
      ...(match ? { match } : {}),
      ...rest,
      mirror: {
        ...(host !== undefined ? { host } : {}),
        subset: this.traffic.canarySubset,
        ...(port !== undefined ? { port: structuredClone(port) } : {}),
      },
      mirrorPercentage: { value: mirror.percent },
    };
  }

  /** A route sending everything that matches `headers` to the canary, on the first managed route's paths. */
  private canaryRoute(name: string, first: Managed, headers: Json): HttpRoute {
    const { host, port } = this.requireStable(first).destination ?? {};
    const uris = (first.route.match ?? []).filter((m) => m.uri !== undefined);
    const match =
      uris.length > 0 ? uris.map((m) => ({ uri: structuredClone(m.uri), headers })) : [{ headers }];
    return {
      name,
      match,
      route: [
        {
          destination: {
            ...(host !== undefined ? { host } : {}),
            subset: this.traffic.canarySubset,
            ...(port !== undefined ? { port: structuredClone(port) } : {}),
          },
          weight: 100,
        },
      ],
    };
  }

  /** The routes the weights apply to: those named in the target, else every route but the reserved ones. */
  private managed(http: HttpRoute[]): Managed[] {
    const candidates = http
      .filter((r) => !isReserved(r.name))
      .map((route, i) => ({ route, key: route.name ?? `#${i}` }));
    const vs = this.label(VIRTUAL_SERVICES, this.traffic.virtualService);
    if (this.traffic.routes.length === 0) {
      if (candidates.length === 0) throw new ProviderError('invalid', `${vs} has no HTTP routes to shift`);
      return candidates;
    }
    return this.traffic.routes.map((name) => {
      const found = candidates.find((c) => c.route.name === name);
      if (!found) {
        const names = candidates.map((c) => c.route.name).filter((n) => n !== undefined);
        throw new ProviderError(
          'not_found',
          `${vs} has no HTTP route named "${name}" (its routes: ${names.map((n) => `"${n}"`).join(', ') || 'none named'}): fix traffic.istio.routes`,
        );
      }
      return found;
    });
  }

  private find(route: HttpRoute, subset: string): RouteDestination | undefined {
    return route.route?.find((d) => d.destination?.subset === subset);
  }

  private requireStable(m: Managed): RouteDestination {
    const stable = this.find(m.route, this.traffic.stableSubset);
    if (!stable) {
      throw new ProviderError(
        'invalid',
        `${this.describe(m)} of ${this.label(VIRTUAL_SERVICES, this.traffic.virtualService)} has no destination with subset "${this.traffic.stableSubset}" (traffic.istio.stableSubset)`,
      );
    }
    return stable;
  }

  private describe(m: Managed): string {
    return m.route.name !== undefined ? `HTTP route "${m.route.name}"` : `HTTP route ${m.key}`;
  }

  // --- DestinationRule -----------------------------------------------------------------------------------

  private async setupSubsets(name: string, versions: RoutingVersions): Promise<void> {
    const { stableSubset, canarySubset } = this.traffic;
    await this.update(DESTINATION_RULES, name, (dr) => {
      const subsets = structuredClone(subsetsOf(dr));
      const record = subsetRecord(dr);
      if (versions.stable !== undefined) this.select(subsets, stableSubset, versions.stable);
      const canary = subsets.find((s) => s.name === canarySubset);
      if (!canary) record.addedSubset ??= canarySubset;
      else if (record.addedSubset !== canarySubset && !record.previous) {
        record.previous = { subset: canarySubset, labels: canary.labels ? { ...canary.labels } : null };
      }
      this.select(subsets, canarySubset, versions.canary);
      return {
        spec: { subsets },
        metadata: { annotations: { [DR_RECORD]: JSON.stringify(record) } },
      };
    });
  }

  /** Points a subset at a version (other labels it selects on stay), adding the subset when missing. */
  private select(subsets: Subset[], name: string, version: string): void {
    const subset = subsets.find((s) => s.name === name);
    if (subset) subset.labels = { ...subset.labels, [this.versionLabel]: version };
    else subsets.push({ name, labels: { [this.versionLabel]: version } });
  }

  private teardownSubsets(dr: CustomObject): Json {
    // The stable subset keeps the last stable version setup gave it, and stays even if setup added it: all
    // traffic now goes through it.
    const record = subsetRecord(dr);
    let subsets = structuredClone(subsetsOf(dr));
    if (record.addedSubset) subsets = subsets.filter((s) => s.name !== record.addedSubset);
    const previous = record.previous;
    const canary = previous && subsets.find((s) => s.name === previous.subset);
    if (previous && canary) {
      if (previous.labels) canary.labels = previous.labels;
      else delete canary.labels;
    }
    return {
      spec: { subsets },
      ...(dr.metadata.annotations?.[DR_RECORD] !== undefined
        ? { metadata: { annotations: { [DR_RECORD]: null } } }
        : {}),
    };
  }

  // --- API access ----------------------------------------------------------------------------------------

  /**
   * Read-modify-write: `desired` computes a merge patch from the live object; it is sent (with the read
   * resourceVersion, so a concurrent writer causes a 409 and a fresh attempt) only when it changes something.
   * Lists in a merge patch replace the live ones whole, which is why the full, freshly read list is sent.
   */
  private async update(
    plural: Plural,
    name: string,
    desired: (live: CustomObject) => Json,
    /** Awaited after the read, before the write (setWeight's gate). */
    beforeWrite?: () => Promise<unknown>,
  ): Promise<boolean> {
    return retryOnConflict(async () => {
      const live = await this.read(plural, name);
      const patch = desired(live);
      if (!changes(live, patch)) return false;
      await beforeWrite?.();
      const objects = await this.objects(plural);
      await this.forgetOnMissingKind(plural, objects.mergePatch(name, patch, live.metadata.resourceVersion));
      return true;
    });
  }

  private async read(plural: Plural, name: string): Promise<CustomObject> {
    const objects = await this.objects(plural);
    return this.forgetOnMissingKind(plural, objects.get(name));
  }

  private async objects(plural: Plural): Promise<CustomObjects> {
    let version = this.served.get(plural);
    if (!version) {
      version = this.discover(plural);
      this.served.set(plural, version);
      version.catch(() => this.served.delete(plural));
    }
    return new CustomObjects(this.clients, { group: GROUP, version: await version, plural }, this.namespace);
  }

  /** A CRD reinstalled with other versions is found again on the next call. */
  private async forgetOnMissingKind<T>(plural: Plural, call: Promise<T>): Promise<T> {
    try {
      return await call;
    } catch (err) {
      if (err instanceof ProviderError && err.kind === 'not_found' && !/does not exist/.test(err.message)) {
        this.served.delete(plural);
      }
      throw err;
    }
  }

  /** Which preferred version the API server serves the kind in (API discovery, open to every account). */
  private async discover(plural: Plural): Promise<string> {
    for (const version of API_VERSIONS) {
      let list: V1APIResourceList;
      try {
        list = await this.clients.custom.getAPIResources({ group: GROUP, version });
      } catch (err) {
        if (httpStatus(err) === 404) continue; // the group does not serve this version at all
        throw kubeError(
          err,
          { verb: 'get', resource: `API discovery of ${GROUP}/${version}`, namespace: this.namespace },
          this.clients,
        );
      }
      if (list.resources.some((r) => r.name === plural)) return version;
    }
    throw new ProviderError(
      'not_found',
      `the API server has no ${plural}.${GROUP} in ${API_VERSIONS.join(' or ')}: is Istio's ${plural}.${GROUP} CRD installed?`,
    );
  }

  private label(plural: Plural, name: string): string {
    const kind = plural === VIRTUAL_SERVICES ? 'VirtualService' : 'DestinationRule';
    return `${kind} "${name}" in namespace "${this.namespace}"`;
  }
}

// --- pure helpers ----------------------------------------------------------------------------------------

function checkWeight(weight: number): void {
  if (!Number.isInteger(weight) || weight < 0 || weight > 100) {
    throw new ProviderError('invalid', `a canary weight is a whole percent from 0 to 100, got ${weight}`);
  }
}

function httpOf(vs: CustomObject): HttpRoute[] {
  return (vs.spec?.http as HttpRoute[] | undefined) ?? [];
}

function subsetsOf(dr: CustomObject): Subset[] {
  return (dr.spec?.subsets as Subset[] | undefined) ?? [];
}

/** A destination's share: its weight, or everything when it is a route's only destination without one. */
function weightOf(route: HttpRoute, d: RouteDestination | undefined): number {
  if (!d) return 0;
  if (typeof d.weight === 'number') return d.weight;
  return (route.route?.length ?? 0) === 1 ? 100 : 0;
}

function vsRecord(vs: CustomObject): VirtualServiceRecord {
  const r = parseRecord(vs, VS_RECORD) as Partial<VirtualServiceRecord>;
  return {
    addedCanary: Array.isArray(r.addedCanary) ? r.addedCanary : [],
    addedStableWeight: Array.isArray(r.addedStableWeight) ? r.addedStableWeight : [],
    cookieHeader: r.cookieHeader && typeof r.cookieHeader === 'object' ? r.cookieHeader : {},
    ...(r.mirror && typeof r.mirror === 'object' && Array.isArray(r.mirror.routes)
      ? { mirror: r.mirror }
      : {}),
  };
}

function subsetRecord(dr: CustomObject): SubsetRecord {
  return parseRecord(dr, DR_RECORD) as SubsetRecord;
}

function parseRecord(obj: CustomObject, key: string): Json {
  const text = obj.metadata.annotations?.[key];
  if (text === undefined) return {};
  try {
    const parsed = JSON.parse(text) as unknown;
    if (parsed && typeof parsed === 'object') return parsed as Json;
  } catch {
    // fall through
  }
  throw new ProviderError(
    'invalid',
    `annotation ${key} on ${obj.kind ?? 'object'} "${obj.metadata.name}" is not the JSON this router writes: remove it or restore it`,
  );
}

/** Whether applying the merge patch would change the live object (null deletes a key). */
function changes(live: unknown, patch: unknown): boolean {
  if (patch === null) return live !== undefined;
  if (typeof patch !== 'object' || Array.isArray(patch)) return !sameJson(live, patch);
  const base = live && typeof live === 'object' && !Array.isArray(live) ? (live as Json) : undefined;
  if (!base) return true;
  return Object.entries(patch as Json).some(([k, v]) => changes(base[k], v));
}

function restoreCookie(canary: RouteDestination, previous: string | null): void {
  const add = canary.headers?.response?.add;
  if (!add) return;
  if (previous !== null) {
    add[SET_COOKIE] = previous;
    return;
  }
  delete add[SET_COOKIE];
  // Drop the levels setup had to create for the header.
  if (Object.keys(add).length === 0) delete canary.headers!.response!.add;
  if (Object.keys(canary.headers!.response!).length === 0) delete canary.headers!.response;
  if (Object.keys(canary.headers!).length === 0) delete canary.headers;
}

/** A mirror only on a stage that serves the canary no traffic (plans are validated so; this guards direct calls). */
function checkMirror(weight: number, mirror: StageMirror | undefined): void {
  if (mirror && weight !== 0) {
    throw new ProviderError('invalid', `a mirror goes with canary weight 0 (a shadow stage), got ${weight}`);
  }
}

/**
 * A route's match narrowed to `methods` (undefined: every method, the match as it is): each entry also matches the
 * method, an entry with a method of its own stays only when that method is mirrored. null: nothing is left.
 */
function methodMatch(match: Json[] | undefined, methods: string[] | undefined): Json[] | undefined | null {
  if (!methods) return match ? structuredClone(match) : undefined;
  const method = methods.length === 1 ? { exact: methods[0] } : { regex: methods.join('|') };
  if (!match || match.length === 0) return [{ method }];
  const out = match.flatMap((entry): Json[] => {
    if (entry.method === undefined) return [{ ...structuredClone(entry), method }];
    const own = (entry.method as { exact?: unknown }).exact;
    return typeof own === 'string' && methods.includes(own.toUpperCase()) ? [structuredClone(entry)] : [];
  });
  return out.length > 0 ? out : null;
}

function addOnce(list: string[], key: string): void {
  if (!list.includes(key)) list.push(key);
}

function escapeRegex(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
