// The shadow stage: `mirror: 20` on a stage whose weight is 0 copies that share of requests to the canary without
// serving its answers (Istio's `mirror` with `mirrorPercentage`, Gateway API's `RequestMirror` filter). Only GET
// requests are mirrored unless `mirrorMethods` widens it: a mirrored write is carried out twice, once by stable and
// once by the canary. Validation of the stage's fields (into validatePlan's Collector), the routers that can mirror,
// and how a mirror is described. Pure and deterministic: imported by the workflow sandbox and the client alike.
import { describe, type Collector, type InputProblem, type Obj, type Segment } from './problems';
import type { Plan, Stage, StageMirror } from './types';

/** The routers that can mirror, and with what. */
export const MIRROR_ROUTERS = ['istio', 'gatewayAPI'] as const;
const MIRROR_ROUTERS_TEXT = 'istio (VirtualService mirror) and gatewayAPI (HTTPRoute RequestMirror filter)';

/** The methods a route can match on (Gateway API's list; Istio matches any token). */
export const HTTP_METHODS = [
  'GET',
  'HEAD',
  'POST',
  'PUT',
  'DELETE',
  'CONNECT',
  'OPTIONS',
  'TRACE',
  'PATCH',
] as const;
/** Methods that change nothing on the server (RFC 9110 safe methods): mirroring them repeats no write. */
const SAFE_METHODS: readonly string[] = ['GET', 'HEAD', 'OPTIONS', 'TRACE'];
/** What a mirror stage mirrors unless it says otherwise. */
export const DEFAULT_MIRROR_METHODS: readonly string[] = ['GET'];

/** A shadow stage's fields as written in a plan's stage. */
export interface ShadowStageSpec {
  /** Percent of requests copied to the canary, 1..100, on a stage whose weight is 0. */
  mirror?: number;
  /** The methods mirrored: a list, or `all` (default [GET]). */
  mirrorMethods?: string[] | 'all';
}

/**
 * A stage's `mirror` and `mirrorMethods`, checked into the caller's Collector; the normalised mirror, or undefined
 * when the stage has none (or it is invalid). `strict` off (rollouts started before mirroring) refuses both fields.
 */
export function collectMirror(
  c: Collector,
  stage: Obj,
  path: Segment[],
  where: { strict: boolean; final: boolean; previous?: { weight: number; index: number } },
): StageMirror | undefined {
  const { strict, final, previous } = where;
  const { mirror, mirrorMethods, weight } = stage;
  if (mirror === undefined) {
    if (mirrorMethods !== undefined) {
      c.add([...path, 'mirrorMethods'], 'only applies to a mirror stage: add mirror (e.g. mirror: 20)');
    }
    return undefined;
  }
  if (!strict) {
    c.add([...path, 'mirror'], 'is not available for this rollout (started before it existed)');
    return undefined;
  }
  const before = c.problems.length;
  if (typeof mirror !== 'number' || !Number.isInteger(mirror) || mirror < 1 || mirror > 100) {
    c.add(
      [...path, 'mirror'],
      `must be a whole percent from 1 to 100 (the share of requests copied to the canary), got ${describe(mirror)}`,
    );
  }
  if (typeof weight === 'number' && weight !== 0) {
    c.add(
      [...path, 'weight'],
      `must be 0 on a mirror stage (mirror copies requests to a canary that serves no one), got ${weight}: ` +
        'give the shadow stage weight: 0 and put it before the stages that serve traffic',
    );
  }
  if (final) c.add([...path, 'mirror'], 'the last stage serves all traffic (weight 100); it cannot mirror');
  else if (previous) {
    c.add(
      [...path, 'mirror'],
      `a shadow stage comes before the stages that serve traffic, not after stages[${previous.index}] (${previous.weight}%)`,
    );
  }
  const methods = collectMethods(c, mirrorMethods, [...path, 'mirrorMethods']);
  if (c.problems.length > before) return undefined;
  return { percent: mirror as number, ...(methods ? { methods } : {}) };
}

/** `[GET, HEAD]` (upper-cased, in the order given), `all` (undefined: every method), or absent (GET). */
function collectMethods(c: Collector, value: unknown, path: Segment[]): string[] | undefined {
  if (value === undefined) return [...DEFAULT_MIRROR_METHODS];
  if (value === 'all') return undefined;
  const forms = `a list of HTTP methods (e.g. [GET, HEAD]) or all`;
  if (!Array.isArray(value)) {
    c.add(path, `must be ${forms}, got ${describe(value)}`);
    return [];
  }
  if (value.length === 0) {
    c.add(path, `must name at least one method (e.g. [GET]), or be all`);
    return [];
  }
  const out: string[] = [];
  value.forEach((m, i) => {
    const method = typeof m === 'string' ? m.toUpperCase() : undefined;
    if (!method || !(HTTP_METHODS as readonly string[]).includes(method)) {
      c.add([...path, i], `must be an HTTP method (${HTTP_METHODS.join(', ')}), got ${describe(m)}`);
    } else if (out.includes(method)) {
      c.add([...path, i], `names ${method} twice`);
    } else out.push(method);
  });
  return out;
}

/** The plan's mirror stages, with their indexes. */
export function mirrorStages(plan: Plan): Array<{ index: number; mirror: StageMirror }> {
  return plan.stages.flatMap((s, index) => (s.mirror ? [{ index, mirror: s.mirror }] : []));
}

/**
 * A plan with mirror stages on a router that cannot mirror: one problem per mirror stage, naming the routers that
 * can. `router` undefined (the worker's default, unknown here) finds nothing: the worker's preflight checks that one.
 */
export function mirrorRouterProblems(plan: Plan, router: string | undefined): InputProblem[] {
  const message = router === undefined ? undefined : cannotMirror(router);
  if (message === undefined) return [];
  return mirrorStages(plan).map(({ index }) => ({ path: `stages[${index}].mirror`, message }));
}

/** Why `router` cannot mirror, naming the routers that can; undefined when it can. */
export function cannotMirror(router: string): string | undefined {
  if ((MIRROR_ROUTERS as readonly string[]).includes(router)) return undefined;
  return (
    `the ${router} router cannot mirror traffic; only ${MIRROR_ROUTERS_TEXT} can: ` +
    'route this target with one of them, or drop the shadow stage'
  );
}

/** Mirror stages that copy writes (a method that is not safe, or every method): `--strict` refuses them. */
export function mirrorWriteWarnings(plan: Plan): InputProblem[] {
  return mirrorStages(plan).flatMap(({ index, mirror }) => {
    const unsafe = mirror.methods?.filter((m) => !SAFE_METHODS.includes(m));
    if (mirror.methods && unsafe?.length === 0) return [];
    return [
      {
        path: `stages[${index}].mirrorMethods`,
        message:
          `mirrors ${mirror.methods ? unsafe!.join(', ') : 'every method'} requests: each mirrored write is carried out ` +
          'twice, by stable and again by the canary (double charges, duplicate messages, conflicting rows) unless the ' +
          'canary writes nowhere shared; mirror only GET (the default) unless you mean it',
      },
    ];
  });
}

/** `20 % of GET requests`, `20 % of GET and HEAD requests`, `20 % of all requests`. */
export function describeMirror(mirror: StageMirror): string {
  const m = mirror.methods;
  const which = !m ? 'all' : m.length === 1 ? m[0] : `${m.slice(0, -1).join(', ')} and ${m[m.length - 1]}`;
  return `${mirror.percent} % of ${which} requests`;
}

/** A stage's mirror, for status lines: `mirroring 20 % of GET requests to the canary`. */
export function mirroringNote(stage: Stage): string | undefined {
  return stage.mirror ? `mirroring ${describeMirror(stage.mirror)} to the canary` : undefined;
}
