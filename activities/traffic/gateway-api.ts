// Gateway API routing: one rule of an HTTPRoute carries both Services as weighted backendRefs (stable 100 - w,
// canary w). Setup adds the canary backendRef (weight 0) and, when the target names a header, a rule sending
// requests with that header to the canary; it records in an annotation what it added and the stable weight it
// found, so teardown (from any worker) puts the HTTPRoute back exactly as it was. Each weighted rule has its own
// annotation and header rule name, so one HTTPRoute can carry the rollouts of several apps, one per rule.
import type { GatewayApiTraffic, Target } from '../../workflows/target';
import type { StageMirror } from '../../workflows/types';
import {
  CustomObjects,
  retryOnConflict,
  type CustomKind,
  type CustomObject,
  type KubeClients,
  routerSettings,
  sameJson,
  isRecord,
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

export const HTTP_ROUTE: CustomKind = {
  group: 'gateway.networking.k8s.io',
  version: 'v1',
  plural: 'httproutes',
};
/**
 * What setup added to the HTTPRoute for the rollout on weighted rule `rule`, and the stable weight it found there
 * (JSON, see SetupRecord). One annotation per rule, so rollouts of several apps can share one HTTPRoute, each on
 * its own rule.
 */
export function setupAnnotation(rule: number): string {
  return `${SETUP_ANNOTATION_PREFIX}.rule-${rule}`;
}
const SETUP_ANNOTATION_PREFIX = 'canary.temporal.io/gateway-api-setup';
/** Where setup kept its record before one annotation per rule: read (and moved) for rollouts that began then. */
export const LEGACY_SETUP_ANNOTATION = SETUP_ANNOTATION_PREFIX;
/** The name of the header rule setup adds for weighted rule `rule` (rule names exist since Gateway API v1.2). */
export function headerRuleName(rule: number): string {
  return `canary-header-${rule}`;
}
const HEADER_RULE_PREFIX = 'canary-header';
/**
 * The name of the rule a shadow stage adds for weighted rule `rule`: the weighted rule's matches narrowed to the
 * mirrored methods (a method match ranks it above the weighted rule for them), its backends and filters, and a
 * RequestMirror filter to the canary Service. Other methods still take the weighted rule, untouched.
 */
export function mirrorRuleName(rule: number): string {
  return `${MIRROR_RULE_PREFIX}-${rule}`;
}
const MIRROR_RULE_PREFIX = 'canary-mirror';
const REQUEST_MIRROR = 'RequestMirror';
// A Gateway API header match needs a value; without one the NGINX convention applies (`always` goes to canary).
const DEFAULT_HEADER_VALUE = 'always';
// What the API implies for a backendRef without a weight.
const IMPLIED_WEIGHT = 1;

interface BackendRef {
  name: string;
  group?: string;
  kind?: string;
  namespace?: string;
  port?: number;
  weight?: number;
  [key: string]: unknown;
}

interface RouteMatch {
  headers?: Array<{ type?: string; name: string; value: string }>;
  method?: string;
  [key: string]: unknown;
}

interface RouteFilter {
  type: string;
  requestMirror?: { backendRef?: BackendRef; percent?: number; [key: string]: unknown };
  [key: string]: unknown;
}

interface RouteRule {
  name?: string;
  matches?: RouteMatch[];
  backendRefs?: BackendRef[];
  filters?: RouteFilter[];
  [key: string]: unknown;
}

/** Written by setup, read by teardown (possibly in another worker process). */
interface SetupRecord {
  canaryBackend: string;
  /** The weighted rule (absent in records written before one annotation per rule). */
  rule?: number;
  /** The stable backendRef's weight before setup; null when it had none. */
  stableWeight: number | null;
  /** Whether setup added the canary backendRef (else it was there before and stays). */
  addedCanary: boolean;
  /**
   * The header rule setup added: found by its name where the CRD keeps rule names (v1.2+), else by these matches
   * and its single canary backendRef, so it is never identified by its index alone.
   */
  headerRule?: { name: string; matches: RouteMatch[] };
  /**
   * A shadow stage's mirror (removed by the next weight change, or teardown): the rule it added (found as the header
   * rule is), or none when every method is mirrored and the filter sits on the weighted rule itself.
   */
  mirror?: { percent: number; rule?: { name: string; matches: RouteMatch[] } };
}

export class GatewayApiRouter implements TrafficRouter {
  readonly type = 'gatewayAPI';
  readonly writesAfterGate = true;
  private readonly traffic: GatewayApiTraffic;
  private readonly namespace: string;
  private readonly routes: CustomObjects;
  private readonly versionLabel?: string;

  constructor(
    private readonly clients: KubeClients,
    target: Target,
  ) {
    const traffic = routerSettings(target, 'gatewayAPI');
    this.traffic = traffic;
    this.namespace = target.namespace;
    this.routes = new CustomObjects(clients, HTTP_ROUTE, target.namespace);
    if (target.workload?.kind === 'Deployment') this.versionLabel = target.workload.versionLabel;
  }

  /**
   * Read-only: the HTTPRoute CRD is served, the verbs are allowed, the HTTPRoute exists with the target's weighted
   * rule and a backendRef to the stable Service, no other rollout holds that rule, and both backend Services exist and
   * select the right pods (stable's now and after promotion; the canary's and not stable's).
   */
  async preflight(_versions: RoutingVersions, pods: PodLabels): Promise<PreflightFinding[]> {
    const check = new KubePreflight(this.clients, this.namespace);
    const cluster = await check.cluster();
    if (cluster.length > 0) return cluster;
    const { group, version, plural } = HTTP_ROUTE;
    const kind = await check.served(
      group,
      [version],
      plural,
      'the Gateway API CRDs (gateway.networking.k8s.io, standard channel)',
    );
    const findings: PreflightFinding[] = [];
    if ('finding' in kind) findings.push(kind.finding);
    const needs: AccessNeed[] = [{ group, resource: plural, verbs: ['get', 'patch'] }];
    findings.push(...(await check.access(needs, 'temporal-canary-gateway-api')));
    if ('finding' in kind || !(await check.allows([{ group, resource: plural, verbs: ['get'] }])))
      return findings;

    const { httpRoute, rule, stableBackend, canaryBackend } = this.traffic;
    const where = `HTTPRoute "${httpRoute}" in namespace "${this.namespace}"`;
    const read = await check.read<CustomObject>(
      { verb: 'get', resource: `${plural}.${group}`, namespace: this.namespace, name: httpRoute },
      (c) =>
        c.custom.getNamespacedCustomObject({
          group,
          version,
          plural,
          namespace: this.namespace,
          name: httpRoute,
        }) as Promise<CustomObject>,
    );
    if ('finding' in read) return [...findings, read.finding];
    if ('missing' in read) {
      findings.push({
        area: 'object',
        cause: 'input',
        level: 'refuse',
        message: `${where} does not exist: the router shifts traffic in it and does not create it; create it, or fix traffic.gatewayAPI.httpRoute`,
        path: 'target.traffic.gatewayAPI.httpRoute',
      });
      return findings;
    }
    const route = read.found;
    const rules = rulesOf(route);
    let stable: BackendRef;
    const refuse = (err: unknown, path: string): PreflightFinding[] => {
      if (!(err instanceof ProviderError)) throw err;
      return [...findings, { area: 'object', cause: 'input', level: 'refuse', message: err.message, path }];
    };
    try {
      this.weightedRule(rules);
    } catch (err) {
      return refuse(err, 'target.traffic.gatewayAPI.rule');
    }
    const refs = this.weightedRule(rules).backendRefs ?? [];
    try {
      stable = this.stableRef(refs);
    } catch (err) {
      return refuse(err, 'target.traffic.gatewayAPI.stableBackend');
    }
    try {
      const { record } = this.ownRecord(route, refs);
      // Setup refuses a rule of that name it did not add: say so now.
      const name = headerRuleName(rule);
      if (
        this.traffic.header &&
        this.headerRuleIndex(rules, record) === -1 &&
        rules.some((r) => r.name === name)
      ) {
        findings.push({
          area: 'object',
          cause: 'input',
          level: 'refuse',
          message: `${where} already has a rule named "${name}" that setup did not add: rename it, or drop traffic.gatewayAPI.header`,
          path: 'target.traffic.gatewayAPI.header',
        });
      }
    } catch (err) {
      return refuse(err, 'target.traffic.gatewayAPI.rule');
    }

    // Backends live in the route's namespace unless the backendRef names another (with a ReferenceGrant there).
    const namespace = stable.namespace ?? this.namespace;
    const checks = [
      check.service({
        name: stableBackend,
        namespace,
        side: 'stable',
        pods,
        ...(this.versionLabel ? { versionLabel: this.versionLabel } : {}),
        role: 'temporal-canary-gateway-api',
        path: 'target.traffic.gatewayAPI.stableBackend',
        missing: `rule ${rule} of ${where} sends stable's traffic to it; create it, or fix traffic.gatewayAPI.stableBackend`,
        fix: `select stable's pods without pinning a version, or fix traffic.gatewayAPI.stableBackend`,
      }),
      check.service({
        name: canaryBackend,
        namespace,
        side: 'canary',
        pods,
        role: 'temporal-canary-gateway-api',
        path: 'target.traffic.gatewayAPI.canaryBackend',
        missing:
          `setup adds it as a backendRef of rule ${rule} of ${where}, which then sends the canary's share of traffic to ` +
          `it; create it selecting the canary's pods${suggestedCanarySelector(pods, this.versionLabel)}, or fix traffic.gatewayAPI.canaryBackend`,
        fix: `select the canary's pods by a label stable's pods lack (canary.temporal.io/role=canary, or the version label), or fix traffic.gatewayAPI.canaryBackend`,
      }),
    ];
    for (const found of await Promise.all(checks)) findings.push(...found);
    return findings;
  }

  async setup(_versions: RoutingVersions): Promise<void> {
    // The versions do not matter here: each Service selects its own pods.
    await retryOnConflict(async () => {
      const route = await this.routes.get(this.traffic.httpRoute);
      const before = rulesOf(route);
      const rules = rulesOf(route);
      const weighted = this.weightedRule(rules);
      const refs = (weighted.backendRefs ??= []);
      const stable = this.stableRef(refs);
      let canary = refs.find((r) => isService(r, this.traffic.canaryBackend));
      const { record: previous, legacy } = this.ownRecord(route, refs);
      const record: SetupRecord = previous
        ? { ...previous, rule: this.traffic.rule }
        : {
            canaryBackend: this.traffic.canaryBackend,
            rule: this.traffic.rule,
            stableWeight: stable.weight ?? null,
            addedCanary: false,
          };
      const port = this.traffic.port ?? stable.port;
      if (!canary) {
        canary = {
          ...(stable.group !== undefined ? { group: stable.group } : {}),
          ...(stable.kind !== undefined ? { kind: stable.kind } : {}),
          name: this.traffic.canaryBackend,
          ...(stable.namespace !== undefined ? { namespace: stable.namespace } : {}),
          ...(port !== undefined ? { port } : {}),
          weight: 0,
        };
        refs.push(canary);
        record.addedCanary = true;
      } else if (record.addedCanary && port !== undefined && canary.port !== port) {
        canary.port = port; // ours: follow the target's port
      }

      const found = this.headerRuleIndex(rules, previous);
      const header = this.traffic.header;
      if (header) {
        const name = headerRuleName(this.traffic.rule);
        const desired: RouteRule = {
          name,
          matches: headerMatches(weighted.matches, header.name, header.value ?? DEFAULT_HEADER_VALUE),
          backendRefs: [refTo(canary)],
        };
        if (found === -1) {
          if (rules.some((r) => r.name === name)) {
            throw new ProviderError(
              'invalid',
              `HTTPRoute "${this.traffic.httpRoute}" in namespace "${this.namespace}" already has a rule named "${name}" that setup did not add: rename it, or drop traffic.gatewayAPI.header`,
            );
          }
          // Appended: rule order only breaks precedence ties (the extra header match makes it more specific than
          // the weighted rule), and appending never shifts the index of a rule another target may name.
          rules.push(desired);
        } else {
          // A CRD without rule names prunes the name: compare (and write) without it then.
          if (rules[found].name === undefined) delete desired.name;
          if (!contains(rules[found], desired)) rules[found] = desired;
        }
        record.headerRule = { name, matches: desired.matches ?? [] };
      } else {
        if (found !== -1) rules.splice(found, 1);
        delete record.headerRule;
      }

      const key = setupAnnotation(this.traffic.rule);
      const annotation = JSON.stringify(record);
      const annotations: Record<string, string | null> = {};
      if (route.metadata.annotations?.[key] !== annotation) annotations[key] = annotation;
      if (legacy) annotations[LEGACY_SETUP_ANNOTATION] = null; // moved to this rule's own annotation
      const annotationChanged = Object.keys(annotations).length > 0;
      const rulesChanged = !sameJson(before, rules);
      if (!annotationChanged && !rulesChanged) return;
      await this.routes.mergePatch(
        this.traffic.httpRoute,
        {
          ...(annotationChanged ? { metadata: { annotations } } : {}),
          ...(rulesChanged ? { spec: { rules } } : {}),
        },
        route.metadata.resourceVersion,
      );
    });
  }

  async getWeight(): Promise<number> {
    const route = await this.routes.get(this.traffic.httpRoute);
    const refs = this.weightedRule(rulesOf(route)).backendRefs ?? [];
    const canary = refs.find((r) => isService(r, this.traffic.canaryBackend));
    return canary
      ? share(
          refs.find((r) => isService(r, this.traffic.stableBackend)),
          canary,
        )
      : 0;
  }

  /** One read and one merge patch; `options.writeAfter` is awaited between them (nothing is written when it rejects). */
  async setWeight(weight: number, mirror?: StageMirror, options: WeightOptions = {}): Promise<WeightChange> {
    checkWeight(weight);
    // What the gate may change (stable's Deployment) is not the HTTPRoute: what was read stays good.
    const beforeWrite = writeGate(options);
    if (mirror && weight !== 0) {
      throw new ProviderError(
        'invalid',
        `a mirror goes with canary weight 0 (a shadow stage), got ${weight}`,
      );
    }
    return retryOnConflict(async () => {
      const route = await this.routes.get(this.traffic.httpRoute);
      const rules = rulesOf(route);
      const refs = this.weightedRule(rules).backendRefs ?? [];
      const stable = this.stableRef(refs);
      const canary = refs.find((r) => isService(r, this.traffic.canaryBackend));
      // Without a mirror to set, a record that cannot be read only means there is no mirror of ours to remove.
      const record = mirror ? this.ownRecord(route, refs).record : this.readableRecord(route, refs);
      if (!canary) {
        // Rollback must always be able to send everything to stable: without a canary backendRef it already is.
        if (weight === 0 && !mirror) return { previous: 0, changed: false };
        throw new ProviderError(
          'invalid',
          `rule ${this.traffic.rule} of HTTPRoute "${this.traffic.httpRoute}" in namespace "${this.namespace}" has no backendRef "${this.traffic.canaryBackend}": setup must run first (it adds it)`,
        );
      }
      const previous = share(stable, canary);
      const before = rulesOf(route);
      stable.weight = 100 - weight;
      canary.weight = weight; // kept at 0, not removed, until teardown
      // Every weight change sets the mirror afresh: a shift without one removes it.
      const mirrored = record || mirror ? this.placeMirror(rules, record, canary, mirror) : undefined;
      const key = setupAnnotation(this.traffic.rule);
      const annotation =
        mirrored && record && !sameJson(record.mirror ?? null, mirrored.mirror ?? null)
          ? JSON.stringify({ ...record, mirror: mirrored.mirror })
          : undefined;
      const rulesChanged = !sameJson(before, rules);
      if (!rulesChanged && annotation === undefined) return { previous, changed: false };
      await beforeWrite();
      await this.routes.mergePatch(
        this.traffic.httpRoute,
        {
          ...(annotation !== undefined ? { metadata: { annotations: { [key]: annotation } } } : {}),
          ...(rulesChanged ? { spec: { rules } } : {}),
        },
        route.metadata.resourceVersion,
      );
      return { previous, changed: true };
    });
  }

  /**
   * Removes the mirror setup recorded (its rule, or its filter on the weighted rule) and, with `mirror`, adds it
   * afresh; changes `rules` in place and returns what the record's `mirror` becomes.
   */
  private placeMirror(
    rules: RouteRule[],
    record: SetupRecord | undefined,
    canary: BackendRef | undefined,
    mirror: StageMirror | undefined,
  ): { mirror: SetupRecord['mirror'] } {
    const weighted = this.weightedRule(rules);
    if (weighted.filters?.some((f) => this.mirrorsToCanary(f))) {
      weighted.filters = weighted.filters.filter((f) => !this.mirrorsToCanary(f));
      if (weighted.filters.length === 0) delete weighted.filters;
    }
    const found = this.addedRuleIndex(rules, record?.mirror?.rule);
    if (found !== -1) rules.splice(found, 1);
    if (!mirror) return { mirror: undefined };
    if (!record || !canary) {
      throw new ProviderError(
        'invalid',
        `rule ${this.traffic.rule} of HTTPRoute "${this.traffic.httpRoute}" in namespace "${this.namespace}" has no canary backendRef "${this.traffic.canaryBackend}" recorded by setup: the router's setup must run before a shadow stage`,
      );
    }
    const { name: _name, weight: _weight, ...backend } = canary;
    const filter: RouteFilter = {
      type: REQUEST_MIRROR,
      requestMirror: {
        backendRef: {
          name: this.traffic.canaryBackend,
          ...pick(backend, ['group', 'kind', 'namespace', 'port']),
        },
        // 100 % is the filter's default, and the only share a CRD before v1.2 (no percent field) can express.
        ...(mirror.percent < 100 ? { percent: mirror.percent } : {}),
      },
    };
    if (!mirror.methods) {
      weighted.filters = [...(weighted.filters ?? []), filter];
      return { mirror: { percent: mirror.percent } };
    }
    const matches = methodMatches(weighted.matches, mirror.methods);
    if (matches.length === 0) {
      throw new ProviderError(
        'invalid',
        `rule ${this.traffic.rule} of HTTPRoute "${this.traffic.httpRoute}" in namespace "${this.namespace}" takes no ${mirror.methods.join(' or ')} requests (its matches name other methods), so nothing can be mirrored: widen stages[].mirrorMethods`,
      );
    }
    const name = mirrorRuleName(this.traffic.rule);
    if (rules.some((r) => r.name === name)) {
      throw new ProviderError(
        'invalid',
        `HTTPRoute "${this.traffic.httpRoute}" in namespace "${this.namespace}" already has a rule named "${name}" that setup did not add: rename it`,
      );
    }
    const { name: _n, matches: _m, filters, ...rest } = structuredClone(weighted);
    // Appended, as the header rule is: its method match ranks it above the weighted rule for those methods.
    rules.push({ name, matches, ...rest, filters: [...(filters ?? []), filter] });
    return { mirror: { percent: mirror.percent, rule: { name, matches } } };
  }

  async verifyWeight(weight: number, mirror?: StageMirror): Promise<WeightVerification> {
    const route = await this.routes.get(this.traffic.httpRoute);
    const mirrorProblem = this.mirrorProblem(route, mirror);
    if (mirrorProblem) return { verified: false, weight, reason: mirrorProblem };
    const refs = this.weightedRule(rulesOf(route)).backendRefs ?? [];
    const stable = refs.find((r) => isService(r, this.traffic.stableBackend));
    const canary = refs.find((r) => isService(r, this.traffic.canaryBackend));
    const where = `rule ${this.traffic.rule} of HTTPRoute "${this.traffic.httpRoute}" in namespace "${this.namespace}"`;
    if (!canary) {
      return weight === 0 && stable
        ? { verified: true, weight: 0 }
        : {
            verified: false,
            weight: 0,
            reason: `${where} has no backendRef "${this.traffic.canaryBackend}"`,
          };
    }
    const actual = share(stable, canary);
    // Both weights decide the share (they are proportions): 1 and 0 right after setup is a verified 0 %.
    const s = stable ? (stable.weight ?? IMPLIED_WEIGHT) : 0;
    const c = canary.weight ?? IMPLIED_WEIGHT;
    if (s + c > 0 && c * 100 === weight * (s + c)) return { verified: true, weight };
    return {
      verified: false,
      weight: actual,
      reason:
        `${where} gives "${this.traffic.stableBackend}" weight ${stable ? (stable.weight ?? `${IMPLIED_WEIGHT} (implied)`) : 'none (no backendRef)'}` +
        ` and "${this.traffic.canaryBackend}" weight ${canary.weight ?? `${IMPLIED_WEIGHT} (implied)`}, expected ${100 - weight} and ${weight} (or the same proportion)`,
    };
  }

  async teardown(): Promise<void> {
    await retryOnConflict(async () => {
      const route = await this.routes.find(this.traffic.httpRoute);
      if (!route) return; // nothing of ours can be left on a route that is gone
      const before = rulesOf(route);
      const rules = rulesOf(route);
      const weighted = this.weightedRule(rules);
      const refs = weighted.backendRefs ?? [];
      const { record, legacy } = this.ownRecord(route, refs);
      const stable = refs.find((r) => isService(r, this.traffic.stableBackend));
      const canaryAt = refs.findIndex((r) => isService(r, this.traffic.canaryBackend));
      if (record) {
        if (canaryAt !== -1) {
          if (record.addedCanary) refs.splice(canaryAt, 1);
          else refs[canaryAt].weight = 0; // there before the rollout: it stays, without traffic
        }
        if (stable) {
          if (record.stableWeight === null) delete stable.weight;
          else stable.weight = record.stableWeight;
        }
      } else if (canaryAt !== -1) {
        // No record (setup never ran, weights set on a canary backendRef that was already there): all to stable.
        refs[canaryAt].weight = 0;
        if (stable?.weight === 0) stable.weight = 100;
      }
      const found = this.headerRuleIndex(rules, record);
      if (found !== -1) rules.splice(found, 1);
      this.placeMirror(rules, record, undefined, undefined);

      const key = setupAnnotation(this.traffic.rule);
      const annotations: Record<string, null> = {};
      if (route.metadata.annotations?.[key] !== undefined) annotations[key] = null;
      if (legacy) annotations[LEGACY_SETUP_ANNOTATION] = null;
      const annotationChanged = Object.keys(annotations).length > 0;
      const rulesChanged = !sameJson(before, rules);
      if (!annotationChanged && !rulesChanged) return;
      await this.routes.mergePatch(
        this.traffic.httpRoute,
        {
          ...(annotationChanged ? { metadata: { annotations } } : {}),
          ...(rulesChanged ? { spec: { rules } } : {}),
        },
        route.metadata.resourceVersion,
      );
    });
  }

  /** What is wrong with the live mirror (one that should be gone, or is missing or pruned), or undefined. */
  private mirrorProblem(route: CustomObject, mirror: StageMirror | undefined): string | undefined {
    const rules = rulesOf(route);
    const where = `HTTPRoute "${this.traffic.httpRoute}" in namespace "${this.namespace}"`;
    const filters = rules
      .filter((r, i) => i === this.traffic.rule || r.name === mirrorRuleName(this.traffic.rule))
      .flatMap((r) => r.filters ?? [])
      .filter((f) => this.mirrorsToCanary(f));
    if (!mirror) {
      return filters.length > 0 ? `${where} still mirrors to "${this.traffic.canaryBackend}"` : undefined;
    }
    if (filters.length === 0)
      return `${where} has no RequestMirror filter to "${this.traffic.canaryBackend}"`;
    const percent = filters[0].requestMirror?.percent ?? 100;
    if (percent === mirror.percent) return undefined;
    return filters[0].requestMirror?.percent === undefined
      ? `the API server dropped requestMirror.percent from ${where}: its HTTPRoute CRD predates percentage mirroring ` +
          `(Gateway API v1.2), so every ${mirror.methods?.join('/') ?? ''} request would be mirrored; install Gateway API v1.2 or later, or use mirror: 100`
      : `${where} mirrors ${percent} % to "${this.traffic.canaryBackend}", expected ${mirror.percent} %`;
  }

  // --- reading the route ------------------------------------------------------------------------------------------

  private weightedRule(rules: RouteRule[]): RouteRule {
    const rule = rules[this.traffic.rule];
    if (!rule) {
      throw new ProviderError(
        'invalid',
        `HTTPRoute "${this.traffic.httpRoute}" in namespace "${this.namespace}" has ${rules.length} ${rules.length === 1 ? 'rule' : 'rules'}` +
          `${rules.length > 0 ? ` (indexes 0 to ${rules.length - 1})` : ''}: traffic.gatewayAPI.rule ${this.traffic.rule} does not exist`,
      );
    }
    if (rule.name?.startsWith(HEADER_RULE_PREFIX) || rule.name?.startsWith(MIRROR_RULE_PREFIX)) {
      throw new ProviderError(
        'invalid',
        `rule ${this.traffic.rule} of HTTPRoute "${this.traffic.httpRoute}" in namespace "${this.namespace}" is the ${rule.name.startsWith(MIRROR_RULE_PREFIX) ? 'mirror' : 'header'} rule "${rule.name}" another rollout's setup added, not a weighted rule: fix traffic.gatewayAPI.rule`,
      );
    }
    return rule;
  }

  /**
   * This rollout's setup record: its rule's annotation, or (a rollout set up before one annotation per rule) the
   * old single annotation when it names this canary backend; `legacy` says where it was found. A record of another
   * canary backend on this rule is another rollout's: refused, so two rollouts never fight over one rule.
   */
  private ownRecord(
    route: { metadata: { annotations?: Record<string, string> } },
    refs: BackendRef[],
  ): { record?: SetupRecord; legacy: boolean } {
    const where = `rule ${this.traffic.rule} of HTTPRoute "${this.traffic.httpRoute}" in namespace "${this.namespace}"`;
    const taken = (other: string, key: string) =>
      new ProviderError(
        'invalid',
        `${where} is in another rollout, to canary backend "${other}" (annotation ${key}): one rollout per rule; ` +
          'give this target a rule of its own (traffic.gatewayAPI.rule), or wait for that rollout to end',
      );
    const key = setupAnnotation(this.traffic.rule);
    const own = recordOf(route, key);
    if (own) {
      if (own.canaryBackend !== this.traffic.canaryBackend) throw taken(own.canaryBackend, key);
      return { record: own, legacy: false };
    }
    const legacy = recordOf(route, LEGACY_SETUP_ANNOTATION);
    if (!legacy) return { legacy: false };
    if (legacy.canaryBackend === this.traffic.canaryBackend) return { record: legacy, legacy: true };
    // An older rollout of another backend: it is on this rule when its canary backendRef is here.
    if (refs.some((r) => isService(r, legacy.canaryBackend))) {
      throw taken(legacy.canaryBackend, LEGACY_SETUP_ANNOTATION);
    }
    return { legacy: false };
  }

  private readableRecord(
    route: { metadata: { annotations?: Record<string, string> } },
    refs: BackendRef[],
  ): SetupRecord | undefined {
    try {
      return this.ownRecord(route, refs).record;
    } catch {
      return undefined;
    }
  }

  private stableRef(refs: BackendRef[]): BackendRef {
    const stable = refs.find((r) => isService(r, this.traffic.stableBackend));
    if (!stable) {
      throw new ProviderError(
        'invalid',
        `rule ${this.traffic.rule} of HTTPRoute "${this.traffic.httpRoute}" in namespace "${this.namespace}" has no backendRef to Service "${this.traffic.stableBackend}"` +
          ` (it has ${refs.length > 0 ? refs.map((r) => `"${r.name}"`).join(', ') : 'none'}): fix traffic.gatewayAPI.stableBackend or the rule`,
      );
    }
    return stable;
  }

  /** The header rule setup recorded, or -1; never the weighted rule, never a rule setup did not record. */
  private headerRuleIndex(rules: RouteRule[], record: SetupRecord | undefined): number {
    return this.addedRuleIndex(rules, record?.headerRule);
  }

  /** A rule the router added (header or mirror rule), by its name, else by its matches and canary backendRef; or -1. */
  private addedRuleIndex(
    rules: RouteRule[],
    recorded: { name: string; matches: RouteMatch[] } | undefined,
  ): number {
    if (!recorded) return -1;
    const byName = rules.findIndex((r, i) => i !== this.traffic.rule && r.name === recorded.name);
    if (byName !== -1) return byName;
    return rules.findIndex(
      (r, i) =>
        i !== this.traffic.rule &&
        r.name === undefined &&
        (r.backendRefs?.length === 1
          ? isService(r.backendRefs[0], this.traffic.canaryBackend)
          : (r.filters ?? []).some((f) => this.mirrorsToCanary(f))) &&
        contains(r.matches, recorded.matches),
    );
  }

  /** A RequestMirror filter to this target's canary Service. */
  private mirrorsToCanary(f: RouteFilter): boolean {
    return (
      f.type === REQUEST_MIRROR &&
      f.requestMirror?.backendRef !== undefined &&
      isService(f.requestMirror.backendRef, this.traffic.canaryBackend)
    );
  }
}

/** The weighted rule's matches (every path without any), each for one of `methods`; one naming another is left out. */
function methodMatches(matches: RouteMatch[] | undefined, methods: string[]): RouteMatch[] {
  const base: RouteMatch[] =
    matches && matches.length > 0 ? matches : [{ path: { type: 'PathPrefix', value: '/' } }];
  return base.flatMap((m) =>
    m.method !== undefined
      ? methods.includes(m.method)
        ? [structuredClone(m)]
        : []
      : methods.map((method) => ({ ...structuredClone(m), method })),
  );
}

function pick<T extends object, K extends keyof T>(obj: T, keys: K[]): Partial<Pick<T, K>> {
  const out: Partial<Pick<T, K>> = {};
  for (const k of keys) if (obj[k] !== undefined) out[k] = obj[k];
  return out;
}

function checkWeight(weight: number): void {
  if (!Number.isInteger(weight) || weight < 0 || weight > 100) {
    throw new ProviderError('invalid', `a weight is a whole percent from 0 to 100, got ${weight}`);
  }
}

function rulesOf(route: { spec?: Record<string, unknown> }): RouteRule[] {
  return JSON.parse(JSON.stringify(route.spec?.rules ?? [])) as RouteRule[];
}

function recordOf(
  route: { metadata: { annotations?: Record<string, string> } },
  key: string,
): SetupRecord | undefined {
  const raw = route.metadata.annotations?.[key];
  if (raw === undefined) return undefined;
  try {
    const r = JSON.parse(raw) as Partial<SetupRecord>;
    if (
      typeof r.canaryBackend === 'string' &&
      typeof r.addedCanary === 'boolean' &&
      (typeof r.stableWeight === 'number' || r.stableWeight === null)
    ) {
      return r as SetupRecord;
    }
  } catch {
    // fall through
  }
  throw new ProviderError(
    'invalid',
    `annotation ${key} on the HTTPRoute is not what setup writes (${raw.slice(0, 200)}): restore it or remove it together with what it recorded`,
  );
}

/** A Service backendRef (the API's defaults: group "" and kind Service). */
function isService(ref: BackendRef, name: string): boolean {
  return ref.name === name && (ref.kind ?? 'Service') === 'Service' && (ref.group ?? '') === '';
}

/** The same backend without its weight: alone in a rule it takes all of that rule's traffic. */
function refTo(ref: BackendRef): BackendRef {
  const { weight: _weight, filters: _filters, ...rest } = ref;
  return rest;
}

/** The canary's share of the two backends, in percent. */
function share(stable: BackendRef | undefined, canary: BackendRef): number {
  const s = stable ? (stable.weight ?? IMPLIED_WEIGHT) : 0;
  const c = canary.weight ?? IMPLIED_WEIGHT;
  return s + c === 0 ? 0 : Math.round((c * 100) / (s + c));
}

/** The weighted rule's matches, each also requiring the header (a rule without matches matches every path). */
function headerMatches(matches: RouteMatch[] | undefined, name: string, value: string): RouteMatch[] {
  const base: RouteMatch[] =
    matches && matches.length > 0 ? matches : [{ path: { type: 'PathPrefix', value: '/' } }];
  return base.map((m) => ({
    ...m,
    headers: [
      ...(m.headers ?? []).filter((h) => h.name.toLowerCase() !== name.toLowerCase()),
      { type: 'Exact', name, value },
    ],
  }));
}

/**
 * Whether `live` carries everything in `wanted` (objects may have more keys: the API server fills in defaults such
 * as a backendRef's weight or a header match's type); arrays must match element by element.
 */
function contains(live: unknown, wanted: unknown): boolean {
  if (Array.isArray(wanted)) {
    return (
      Array.isArray(live) && live.length === wanted.length && wanted.every((w, i) => contains(live[i], w))
    );
  }
  if (isRecord(wanted))
    return isRecord(live) && Object.entries(wanted).every(([k, w]) => contains(live[k], w));
  return live === wanted;
}
