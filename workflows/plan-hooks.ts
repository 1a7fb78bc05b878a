// Hooks as written in a plan (`hooks:`): steps around the rollout that playbooks rely on (smoke tests, migration
// checks, load tests, notifications), run at fixed points of the walk. Their schema and validation into the
// normalised PlanHooks; the machine runs them (machine/hooks.ts), activities carry them out (activities/hooks/).
// Pure and deterministic, for the workflow sandbox and the client alike.
import { z } from 'zod';
import { formatDuration } from './duration';
import {
  Collector,
  byHand,
  checkDuration,
  describe,
  isObject,
  typeError,
  type Obj,
  type Segment,
} from './problems';

/** Where in the walk a hook runs, in the order a rollout reaches them. */
export const HOOK_POINTS = [
  /** Once, after the canary is deployed and before any traffic moves (smoke tests, migration checks). */
  'before',
  /** At every stage entry, before its traffic shift (after its gate and window). */
  'beforeStage',
  /** At the end of every stage, once its hold is served with evidence, before the next stage. */
  'afterStage',
  /** Once, before promotion (after the promotion gate and window). */
  'beforePromotion',
  /** Once, after promotion: stable runs the new version. */
  'afterPromotion',
  /** During a rollback, after traffic is back on stable; it never blocks or skips the rollback. */
  'onRollback',
] as const;
export type HookPoint = (typeof HOOK_POINTS)[number];

export const HOOK_FAILURE_MODES = ['abort', 'warn', 'approval'] as const;
export type HookOnFailure = (typeof HOOK_FAILURE_MODES)[number];

export const HOOK_DEFAULTS = {
  timeout: '30s',
  retries: 2,
  jobTimeout: '10m',
  ttl: '1h',
} as const;

export const HOOK_LIMITS = { perPoint: 10, nameLength: 63, headers: 20 } as const;

/** An HTTP hook: a signed JSON POST (or the given method) to `url`. */
export interface HttpHookAction {
  kind: 'http';
  url: string;
  method: 'POST' | 'PUT' | 'GET';
  headers?: Record<string, string>;
  timeoutMs: number;
  /** Attempts after the first one, with backoff (Temporal's retry policy). */
  retries: number;
}

/** A Kubernetes Job hook: its pod template given inline, or read from a ConfigMap's key at run time. */
export interface JobHookAction {
  kind: 'job';
  /** A pod template: `{ metadata?, spec: { containers: [...] , ...} }`. */
  template?: Obj;
  configMapRef?: { name: string; key: string };
  timeoutMs: number;
  /** The Job's ttlSecondsAfterFinished, in ms (the hook deletes it when done; the TTL is the safety net). */
  ttlMs: number;
}

export type HookAction = HttpHookAction | JobHookAction;

export interface Hook {
  name: string;
  point: HookPoint;
  action: HookAction;
  onFailure: HookOnFailure;
  /** A confirm-style gate: "not yet" holds the rollout and asks again every interval, up to `limit` asks. */
  confirm?: { intervalMs: number; limit: number };
}

export type PlanHooks = Partial<Record<HookPoint, Hook[]>>;

/** A hook point's default onFailure: before* hooks guard what follows, so they abort; the others warn. */
export function defaultOnFailure(point: HookPoint): HookOnFailure {
  return point.startsWith('before') ? 'abort' : 'warn';
}

// ---------------------------------------------------------------------------------------------------------------
// Structure (zod) and known fields

const httpSchema = z.strictObject(
  {
    url: z.string(typeError('an http(s) URL', 'is required: the http(s) URL to call')),
    method: z.string(typeError('POST, PUT or GET')).optional(),
    headers: z.record(z.string(), z.string(typeError('a string'))).optional(),
    timeout: byHand<string>().optional(),
    retries: z.number(typeError('a whole number of at least 0')).optional(),
  },
  typeError('an object with url, method, headers, timeout and retries'),
);

const configMapRefSchema = z.strictObject(
  {
    name: z.string(typeError('a ConfigMap name', 'is required: the ConfigMap name')),
    key: z.string(typeError('a key of the ConfigMap', 'is required: the key holding the pod template')),
  },
  typeError('an object with name and key'),
);

const jobSchema = z.strictObject(
  {
    template: byHand<unknown>().optional(),
    configMapRef: configMapRefSchema.optional(),
    timeout: byHand<string>().optional(),
    ttl: byHand<string>().optional(),
  },
  typeError('an object with template or configMapRef, timeout and ttl'),
);

/** A Job's fields, and its structure check, for a `job` check (analysis-job.ts); the schema stays module-private. */
export const JOB_FIELDS: readonly string[] = Object.keys(jobSchema.shape);
export function checkJobStructure(c: Collector, value: unknown, path: Segment[]): void {
  c.structure(jobSchema, value, path);
}

const confirmSchema = z.strictObject(
  {
    interval: byHand<string>(),
    limit: z.number(typeError('a whole number of at least 1', 'is required: how many times to ask')),
  },
  typeError('an object with interval and limit, e.g. { interval: 1m, limit: 30 }'),
);

const hookSchema = z.strictObject(
  {
    name: z.string(typeError('a string', 'is required: every hook needs a name')),
    http: httpSchema.optional(),
    job: jobSchema.optional(),
    onFailure: z.string(typeError('abort, warn or approval')).optional(),
    confirm: confirmSchema.optional(),
  },
  typeError('an object with name, http or job, onFailure and confirm'),
);

const hooksSchema = z.strictObject(
  Object.fromEntries(
    HOOK_POINTS.map((p) => [p, z.array(byHand<unknown>(), typeError('a list of hooks')).optional()]),
  ),
  typeError(`an object with any of ${HOOK_POINTS.join(', ')}, each a list of hooks`),
);

export function hooksKnownFields(base = 'hooks'): Record<string, readonly string[]> {
  const out: Record<string, readonly string[]> = { [base]: HOOK_POINTS };
  for (const p of HOOK_POINTS) {
    out[`${base}.${p}.*`] = Object.keys(hookSchema.shape);
    out[`${base}.${p}.*.http`] = Object.keys(httpSchema.shape);
    out[`${base}.${p}.*.job`] = Object.keys(jobSchema.shape);
    out[`${base}.${p}.*.job.configMapRef`] = Object.keys(configMapRefSchema.shape);
    out[`${base}.${p}.*.confirm`] = Object.keys(confirmSchema.shape);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// Validation

const HTTP_METHODS = ['POST', 'PUT', 'GET'] as const;

function checkUrl(c: Collector, url: string, path: Segment[]): string | undefined {
  const m = /^([a-zA-Z][a-zA-Z0-9+.-]*):\/\/([^/?#]*)/.exec(url);
  if (!m) {
    c.add(path, `must be an http(s) URL like https://hooks.example.com/smoke, got ${describe(url)}`);
    return undefined;
  }
  const scheme = m[1].toLowerCase();
  if (scheme !== 'http' && scheme !== 'https') {
    c.add(path, `must be an http(s) URL (the scheme is "${scheme}"), got ${describe(url)}`);
    return undefined;
  }
  if (m[2] === '' || m[2].startsWith('@') || m[2].startsWith(':')) {
    c.add(path, `must name a host, got ${describe(url)}`);
    return undefined;
  }
  return url;
}

function checkHttp(c: Collector, spec: Obj, path: Segment[]): HttpHookAction | undefined {
  const before = c.problems.length;
  const url = typeof spec.url === 'string' ? checkUrl(c, spec.url, [...path, 'url']) : undefined;
  let method: HttpHookAction['method'] = 'POST';
  if (typeof spec.method === 'string') {
    const upper = spec.method.toUpperCase();
    if ((HTTP_METHODS as readonly string[]).includes(upper)) method = upper as HttpHookAction['method'];
    else c.add([...path, 'method'], `must be POST, PUT or GET, got ${describe(spec.method)}`);
  }
  const timeoutMs = checkDuration(c, spec.timeout ?? HOOK_DEFAULTS.timeout, [...path, 'timeout']);
  let retries: number = HOOK_DEFAULTS.retries;
  if (typeof spec.retries === 'number') {
    if (!Number.isInteger(spec.retries) || spec.retries < 0 || spec.retries > 20) {
      c.add([...path, 'retries'], `must be a whole number from 0 to 20, got ${describe(spec.retries)}`);
    } else retries = spec.retries;
  }
  const headers = isObject(spec.headers) ? (spec.headers as Record<string, string>) : undefined;
  if (headers) {
    if (Object.keys(headers).length > HOOK_LIMITS.headers) {
      c.add([...path, 'headers'], `lists more than ${HOOK_LIMITS.headers} headers`);
    }
    for (const name of Object.keys(headers)) {
      if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(name)) {
        c.add([...path, 'headers', name], `is not a valid header name`);
      } else if (/^(x-canary-|idempotency-key$|content-type$|content-length$|host$)/i.test(name)) {
        c.add([...path, 'headers', name], `is set by the worker and cannot be given in a plan`);
      }
    }
  }
  if (c.problems.length > before || url === undefined || timeoutMs === undefined) return undefined;
  return { kind: 'http', url, method, timeoutMs, retries, ...(headers ? { headers } : {}) };
}

/** A pod template must run something: `spec.containers` is a non-empty list of objects with a name and an image. */
export function checkPodTemplate(c: Collector, template: unknown, path: Segment[]): Obj | undefined {
  if (!isObject(template)) {
    c.add(path, `must be a pod template ({ spec: { containers: [...] } }), got ${describe(template)}`);
    return undefined;
  }
  const spec = template.spec;
  if (!isObject(spec)) {
    c.add([...path, 'spec'], 'is required: the pod spec, with at least one container');
    return undefined;
  }
  const containers = spec.containers;
  if (!Array.isArray(containers) || containers.length === 0) {
    c.add(
      [...path, 'spec', 'containers'],
      `must list at least one container (name and image), got ${Array.isArray(containers) ? 'an empty list' : describe(containers)}`,
    );
    return undefined;
  }
  let ok = true;
  containers.forEach((k, i) => {
    if (!isObject(k) || typeof k.name !== 'string' || typeof k.image !== 'string') {
      c.add([...path, 'spec', 'containers', i], 'must be a container with a name and an image');
      ok = false;
    }
  });
  return ok ? template : undefined;
}

/** A Job's spec (template or configMapRef, timeout, ttl): a hook's, and a `job` check's with its own default timeout. */
export function checkJob(
  c: Collector,
  spec: Obj,
  path: Segment[],
  defaultTimeout: string = HOOK_DEFAULTS.jobTimeout,
): JobHookAction | undefined {
  const before = c.problems.length;
  let template: Obj | undefined;
  if (spec.template !== undefined && spec.configMapRef !== undefined) {
    c.add(path, 'must have either template or configMapRef, not both');
  } else if (spec.template === undefined && spec.configMapRef === undefined) {
    c.add(path, 'must have a template (a pod template) or a configMapRef ({ name, key })');
  } else if (spec.template !== undefined) {
    template = checkPodTemplate(c, spec.template, [...path, 'template']);
  }
  const timeoutMs = checkDuration(c, spec.timeout ?? defaultTimeout, [...path, 'timeout']);
  const ttlMs = checkDuration(c, spec.ttl ?? HOOK_DEFAULTS.ttl, [...path, 'ttl'], { allowZero: true });
  if (c.problems.length > before || timeoutMs === undefined || ttlMs === undefined) return undefined;
  const ref = spec.configMapRef as { name: string; key: string } | undefined;
  return {
    kind: 'job',
    ...(template ? { template } : {}),
    ...(ref ? { configMapRef: { name: ref.name, key: ref.key } } : {}),
    timeoutMs,
    ttlMs,
  };
}

function checkHook(c: Collector, spec: unknown, point: HookPoint, path: Segment[]): Hook | undefined {
  if (!isObject(spec)) return undefined; // the structure check named it
  const before = c.problems.length;
  const name = typeof spec.name === 'string' ? spec.name : undefined;
  if (name !== undefined && !/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/.test(name)) {
    c.add(
      [...path, 'name'],
      `must be lowercase letters, digits and dashes (at most ${HOOK_LIMITS.nameLength}), got ${describe(name)}`,
    );
  }
  let action: HookAction | undefined;
  if (spec.http !== undefined && spec.job !== undefined) {
    c.add(path, 'must have either http or job, not both');
  } else if (spec.http === undefined && spec.job === undefined) {
    c.add(path, 'must say what to run: http ({ url }) or job ({ template } or { configMapRef })');
  } else if (isObject(spec.http)) {
    action = checkHttp(c, spec.http, [...path, 'http']);
  } else if (isObject(spec.job)) {
    action = checkJob(c, spec.job, [...path, 'job']);
  }
  let onFailure = defaultOnFailure(point);
  if (typeof spec.onFailure === 'string') {
    if ((HOOK_FAILURE_MODES as readonly string[]).includes(spec.onFailure)) {
      onFailure = spec.onFailure as HookOnFailure;
    } else {
      c.add([...path, 'onFailure'], `must be abort, warn or approval, got ${describe(spec.onFailure)}`);
    }
  }
  if (point === 'onRollback' && onFailure !== 'warn') {
    c.add([...path, 'onFailure'], 'must be warn for onRollback hooks: nothing may block or skip a rollback');
  }
  if (point === 'afterPromotion' && onFailure !== 'warn') {
    c.add(
      [...path, 'onFailure'],
      'must be warn for afterPromotion hooks: stable already runs the new version, there is nothing to go back to',
    );
  }
  let confirm: Hook['confirm'];
  if (isObject(spec.confirm)) {
    const intervalMs = checkDuration(c, spec.confirm.interval, [...path, 'confirm', 'interval']);
    const limit = spec.confirm.limit;
    if (typeof limit === 'number' && (!Number.isInteger(limit) || limit < 1 || limit > 1000)) {
      c.add([...path, 'confirm', 'limit'], `must be a whole number from 1 to 1000, got ${describe(limit)}`);
    } else if (intervalMs !== undefined && typeof limit === 'number') {
      confirm = { intervalMs, limit };
    }
    if (point === 'onRollback') {
      c.add([...path, 'confirm'], 'is not allowed on onRollback hooks: nothing may hold a rollback');
    }
  }
  if (c.problems.length > before || name === undefined || action === undefined) return undefined;
  return { name, point, action, onFailure, ...(confirm ? { confirm } : {}) };
}

/** The plan's `hooks:` section, or undefined (with problems in `c`, or when it lists no hook). */
export function collectHooks(
  c: Collector,
  spec: unknown,
  path: Segment[] = ['hooks'],
): PlanHooks | undefined {
  if (!isObject(spec)) {
    c.add(path, `must be an object with any of ${HOOK_POINTS.join(', ')}, got ${describe(spec)}`);
    return undefined;
  }
  const before = c.problems.length;
  c.structure(hooksSchema, spec, path);
  const out: PlanHooks = {};
  for (const point of HOOK_POINTS) {
    const list = spec[point];
    if (!Array.isArray(list)) continue;
    if (list.length > HOOK_LIMITS.perPoint) {
      c.add([...path, point], `lists ${list.length} hooks; at most ${HOOK_LIMITS.perPoint} per point`);
      continue;
    }
    const seen = new Set<string>();
    const hooks: Hook[] = [];
    list.forEach((h, i) => {
      const at = [...path, point, i];
      c.structure(hookSchema, h, at);
      const hook = checkHook(c, h, point, at);
      if (hook && seen.has(hook.name)) c.add([...at, 'name'], `"${hook.name}" is used twice at ${point}`);
      else if (hook) hooks.push(hook);
      if (hook) seen.add(hook.name);
    });
    if (hooks.length > 0) out[point] = hooks;
  }
  return c.problems.length > before || Object.keys(out).length === 0 ? undefined : out;
}

/** Every hook of the plan, in the order of their points. */
export function allHooks(hooks: PlanHooks | undefined): Hook[] {
  return HOOK_POINTS.flatMap((p) => hooks?.[p] ?? []);
}

/** One line per hook, e.g. `before: smoke (http POST https://…, abort)`. */
export function describeHook(h: Hook): string {
  const what =
    h.action.kind === 'http'
      ? `http ${h.action.method} ${h.action.url}`
      : `job ${h.action.configMapRef ? `from configmap ${h.action.configMapRef.name}/${h.action.configMapRef.key}` : 'template'}`;
  const confirm = h.confirm
    ? `, confirm every ${formatDuration(h.confirm.intervalMs)} up to ${h.confirm.limit} times`
    : '';
  return `${h.point}: ${h.name} (${what}, on failure ${h.onFailure}${confirm})`;
}

/** `; hooks: before smoke, afterStage notify` or nothing: what describePlan adds for a plan with hooks. */
export function describeHooks(hooks: PlanHooks | undefined): string {
  const all = allHooks(hooks);
  return all.length === 0 ? '' : `; hooks: ${all.map((h) => `${h.point} ${h.name}`).join(', ')}`;
}
