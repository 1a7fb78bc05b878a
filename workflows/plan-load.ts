// Load during analysis (`load:`, issue 17): traffic driven at the canary while a stage is analysed, by a Kubernetes
// Job running a load tool (hey by default, or k6, or a pod template of one's own). Written on the plan (the default
// for every stage) and on a stage (its own, or `false`/`none` to switch it off there). Its schema and validation into
// the normalised PlanLoad; the machine starts and stops it (machine/load.ts), activities/hooks/load.ts runs the Job.
// Pure and deterministic, for the workflow sandbox and the client alike.
import { z } from 'zod';
import { checkPodTemplate } from './plan-hooks';
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
import type { Target } from './target-model';

export const LOAD_TOOLS = ['hey', 'k6'] as const;
export type LoadTool = (typeof LOAD_TOOLS)[number];

export const LOAD_DEFAULTS = {
  images: { hey: 'williamyeh/hey:latest', k6: 'grafana/k6:latest' } as Record<LoadTool, string>,
  concurrency: 1,
  /** Without a duration the load runs until its stage ends (the Job is deleted then); this bounds a lost one. */
  maxRunMs: 24 * 3_600_000,
} as const;

export const LOAD_LIMITS = { rate: 100_000, concurrency: 1_000 } as const;

/** One stage's load, normalised. */
export interface Load {
  /** Requests per second, all workers together. */
  rate: number;
  concurrency: number;
  /** How long the tool runs; absent: until the stage ends. */
  durationMs?: number;
  /** Absent: the target's canary Service ({@link canaryUrl}), resolved when the load starts. */
  url?: string;
  tool: LoadTool;
  image: string;
  /** A pod template of one's own instead of the tool's container. */
  template?: Obj;
}

/** The plan's load: its default, and each stage's own (`false`: none there), by 0-based stage index. */
export interface PlanLoad {
  default?: Load;
  stages?: Record<string, Load | false>;
}

const loadSchema = z.strictObject(
  {
    rate: z.number(typeError('a number of requests per second', 'is required: requests per second, e.g. 10')),
    concurrency: z.number(typeError('a whole number of at least 1')).optional(),
    duration: byHand<string>().optional(),
    url: z.string(typeError('an http(s) URL')).optional(),
    image: z.string(typeError('an image reference')).optional(),
    tool: z.string(typeError('hey or k6')).optional(),
    template: byHand<unknown>().optional(),
  },
  typeError('an object like { rate: 10, concurrency: 2 }'),
);

export const LOAD_FIELDS = Object.keys(loadSchema.shape);

function checkLoad(c: Collector, spec: unknown, path: Segment[]): Load | undefined {
  if (!isObject(spec)) {
    c.add(path, `must be an object like { rate: 10, concurrency: 2 }, got ${describe(spec)}`);
    return undefined;
  }
  const before = c.problems.length;
  c.structure(loadSchema, spec, path);
  const { rate, concurrency, url } = spec;
  if (typeof rate === 'number' && !(rate > 0 && rate <= LOAD_LIMITS.rate)) {
    c.add(
      [...path, 'rate'],
      `must be more than 0 and at most ${LOAD_LIMITS.rate} requests per second, got ${describe(rate)}`,
    );
  }
  if (
    typeof concurrency === 'number' &&
    (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > LOAD_LIMITS.concurrency)
  ) {
    c.add(
      [...path, 'concurrency'],
      `must be a whole number from 1 to ${LOAD_LIMITS.concurrency}, got ${describe(concurrency)}`,
    );
  }
  if (typeof url === 'string' && !/^https?:\/\/[^\s/?#]+[^\s]*$/i.test(url)) {
    c.add([...path, 'url'], `must be an http:// or https:// URL, got ${describe(url)}`);
  }
  let tool: LoadTool = 'hey';
  if (typeof spec.tool === 'string') {
    if ((LOAD_TOOLS as readonly string[]).includes(spec.tool)) tool = spec.tool as LoadTool;
    else c.add([...path, 'tool'], `must be hey or k6, got ${describe(spec.tool)}`);
  }
  const durationMs =
    spec.duration === undefined ? undefined : checkDuration(c, spec.duration, [...path, 'duration']);
  const template =
    spec.template === undefined ? undefined : checkPodTemplate(c, spec.template, [...path, 'template']);
  if (c.problems.length > before || typeof rate !== 'number') return undefined;
  return {
    rate,
    concurrency: typeof concurrency === 'number' ? concurrency : LOAD_DEFAULTS.concurrency,
    ...(durationMs !== undefined ? { durationMs } : {}),
    ...(typeof url === 'string' ? { url } : {}),
    tool,
    image:
      typeof spec.image === 'string' && spec.image.trim() !== '' ? spec.image : LOAD_DEFAULTS.images[tool],
    ...(template ? { template } : {}),
  };
}

/** `load: false` or `load: none` switches a stage's load off. */
const isOff = (v: unknown) => v === false || v === 'none';

/** The plan's `load:` and its stages' own; undefined (with problems in `c`, or when no stage has load). */
export function collectLoad(c: Collector, spec: Obj): PlanLoad | undefined {
  const before = c.problems.length;
  const out: PlanLoad = {};
  if (spec.load !== undefined && !isOff(spec.load)) {
    const load = checkLoad(c, spec.load, ['load']);
    if (load) out.default = load;
  }
  const stages = Array.isArray(spec.stages) ? spec.stages : [];
  stages.forEach((stage, i) => {
    if (!isObject(stage) || stage.load === undefined) return;
    if (isOff(stage.load)) {
      if (spec.load !== undefined) (out.stages ??= {})[String(i)] = false;
      return;
    }
    const load = checkLoad(c, stage.load, ['stages', i, 'load']);
    if (load) (out.stages ??= {})[String(i)] = load;
  });
  if (c.problems.length > before) return undefined;
  return out.default || Object.values(out.stages ?? {}).some(Boolean) ? out : undefined;
}

/** The load of stage `index` (0-based), if any. */
export function stageLoad(load: PlanLoad | undefined, index: number): Load | undefined {
  if (!load) return undefined;
  const own = load.stages?.[String(index)];
  if (own === false) return undefined;
  return own ?? load.default;
}

/**
 * The URL that reaches the canary alone, from the target: the canary Service its router sends to (Gateway API and
 * SMI backends, NGINX's canary Service). Istio subsets, the replicas router and the local stack have none.
 */
export function canaryUrl(target: Pick<Target, 'namespace' | 'traffic'>): string | undefined {
  const t = target.traffic;
  const at = (service: string, port?: number) =>
    `http://${service}.${target.namespace}${port !== undefined ? `:${port}` : ''}/`;
  if (t?.router === 'gatewayAPI') return at(t.canaryBackend, t.port);
  if (t?.router === 'smi') return at(t.canaryBackend);
  if (t?.router === 'nginx' && t.canaryService) return at(t.canaryService);
  return undefined;
}

/** Loads that need a URL the target cannot give: refused before start (the plan and target together). */
export function loadTargetProblems(
  load: PlanLoad | undefined,
  target: Pick<Target, 'namespace' | 'traffic'>,
): Array<{ path: string; message: string }> {
  if (!load || canaryUrl(target) !== undefined) return [];
  const router = target.traffic?.router ?? 'the worker default';
  const why =
    `is required: the target's router (${router}) has no canary Service to send load to ` +
    '(only gatewayAPI, smi and nginx with canaryService do); give the URL that reaches the canary';
  const out: Array<{ path: string; message: string }> = [];
  if (load.default && !load.default.url && !load.default.template)
    out.push({ path: 'load.url', message: why });
  for (const [i, l] of Object.entries(load.stages ?? {})) {
    if (l && !l.url && !l.template) out.push({ path: `stages[${i}].load.url`, message: why });
  }
  return out;
}

/** One line, e.g. `20 req/s, 2 workers (hey) at http://shop-canary.prod/ until the stage ends`. */
export function describeLoad(l: Load, url = l.url): string {
  const until =
    l.durationMs !== undefined ? `for ${Math.round(l.durationMs / 1000)}s` : 'until the stage ends';
  const how = l.template ? 'its own pod template' : `${l.tool}, ${l.image}`;
  return `${l.rate} req/s, ${l.concurrency} worker${l.concurrency === 1 ? '' : 's'} (${how})${url ? ` at ${url}` : ''} ${until}`;
}

/** The load that runs now, as the rollout's state and status keep it. */
export interface LoadRun {
  /** 1-based. */
  stage: number;
  /** The Job's name in the target's namespace. */
  job: string;
  url?: string;
  /** ISO time it started. */
  since: string;
  /** describeLoad's line. */
  what: string;
}
