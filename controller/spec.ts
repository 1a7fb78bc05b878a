// From a CanaryRollout's spec to a start, validated by the same code as `canary validate` and `canary start`
// (prepareStart): every problem is listed by its path in the object, and nothing starts while there is one.
import { parse, YAMLParseError } from 'yaml';
import { presetNames, PRESETS } from '../workflows/presets';
import type { PlanSpec } from '../workflows/plan';
import type { InputProblem } from '../workflows/problems';
import type { TargetSpec } from '../workflows/target';
import { prepareStart, type PreparedStart, type StartProblem } from '../client/prepare-start';
import type { LoadedPlan } from '../client/plan-file';
import { keyOf, type CanaryRollout } from './crd';

/** Reads a ConfigMap's key in the object's namespace: its text, or undefined when the map or the key is missing. */
export type ConfigMapReader = (namespace: string, name: string, key: string) => Promise<string | undefined>;

export type SpecCheck = { ok: true; start: PreparedStart } | { ok: false; problems: InputProblem[] };

/** Who the rollouts the controller starts are requested by (recorded in the rollout, shown in its summary). */
export const requestedByOf = (o: CanaryRollout): string => `CanaryRollout ${keyOf(o)}`;

const join = (prefix: string, path: string): string =>
  path === '' ? prefix : path.startsWith('[') ? `${prefix}${path}` : `${prefix}.${path}`;

/** The plan the spec names, or the problems with it (only the reference: its content is validated with the start). */
async function loadPlanRef(
  o: CanaryRollout,
  readConfigMap: ConfigMapReader,
): Promise<{ ok: true; plan: LoadedPlan; prefix: string } | { ok: false; problems: InputProblem[] }> {
  const ref = o.spec.plan ?? {};
  const forms = (['inline', 'preset', 'configMapRef'] as const).filter((k) => ref[k] !== undefined);
  if (forms.length !== 1) {
    return {
      ok: false,
      problems: [
        { path: 'spec.plan', message: 'exactly one of inline, preset and configMapRef must be set' },
      ],
    };
  }
  if (ref.inline !== undefined) {
    return {
      ok: true,
      plan: { spec: ref.inline as unknown as PlanSpec, source: 'spec.plan.inline' },
      prefix: 'spec.plan.inline',
    };
  }
  if (ref.preset !== undefined) {
    if (!Object.prototype.hasOwnProperty.call(PRESETS, ref.preset)) {
      return {
        ok: false,
        problems: [
          {
            path: 'spec.plan.preset',
            message: `unknown preset "${ref.preset}"; presets: ${presetNames().join(', ')}`,
          },
        ],
      };
    }
    return {
      ok: true,
      plan: { spec: structuredClone(PRESETS[ref.preset]), source: `preset "${ref.preset}"` },
      prefix: 'spec.plan.preset',
    };
  }
  const { name, key } = ref.configMapRef!;
  const where = `ConfigMap ${o.metadata.namespace}/${name} key ${key}`;
  const text = await readConfigMap(o.metadata.namespace, name, key);
  if (text === undefined) {
    return { ok: false, problems: [{ path: 'spec.plan.configMapRef', message: `${where} does not exist` }] };
  }
  let doc: unknown;
  try {
    doc = parse(text, { uniqueKeys: true });
  } catch (e) {
    const reason = e instanceof YAMLParseError ? e.message.split('\n')[0] : String(e);
    return {
      ok: false,
      problems: [{ path: 'spec.plan.configMapRef', message: `${where} is not valid YAML: ${reason}` }],
    };
  }
  if (typeof doc === 'object' && doc !== null && !Array.isArray(doc) && 'target' in doc) {
    // A plan file's own target: the object's spec.target says where the rollout points.
    const { target: _ignored, ...spec } = doc as Record<string, unknown>;
    doc = spec;
  }
  return { ok: true, plan: { spec: doc as PlanSpec, source: where }, prefix: `${where}:` };
}

/** The target as written, with the object's namespace (and name, when nothing names the app) as defaults. */
export function targetOf(o: CanaryRollout): TargetSpec {
  const target: TargetSpec = { ...(o.spec.target ?? {}) };
  target.namespace ??= o.metadata.namespace;
  if (target.app === undefined && typeof target.workload?.name !== 'string') target.app = o.metadata.name;
  return target;
}

function pathsOf(problem: StartProblem, planPrefix: string): InputProblem[] {
  const under = (prefix: string, list: InputProblem[]) =>
    list.map((p) => ({
      path: prefix.endsWith(':') ? `${prefix} ${p.path || '(the plan)'}` : join(prefix, p.path),
      message: p.message,
    }));
  switch (problem.kind) {
    case 'plan':
    case 'unmeasurable':
      return under(planPrefix, problem.problems);
    case 'target':
      return under('spec.target', problem.problems);
    case 'version':
      return [{ path: 'spec.version', message: problem.message }];
    case 'requested-by':
      return [{ path: 'metadata.name', message: problem.message }];
  }
}

/** The spec checked as `canary validate` and `canary start` check it, plus what only an object can get wrong. */
export async function checkSpec(
  o: CanaryRollout,
  readConfigMap: ConfigMapReader,
  nowMs = Date.now(),
): Promise<SpecCheck> {
  const problems: InputProblem[] = [];
  const target = targetOf(o);
  if (target.namespace !== o.metadata.namespace) {
    // The controller's rights are not the object author's: an object only drives workloads in its own namespace.
    problems.push({
      path: 'spec.target.namespace',
      message: `must be the object's own namespace "${o.metadata.namespace}" (a CanaryRollout only rolls out in its namespace), got "${String(target.namespace)}"`,
    });
  }
  const plan = await loadPlanRef(o, readConfigMap);
  if (!plan.ok) problems.push(...plan.problems);
  const prepared = prepareStart({
    plan: plan.ok ? plan.plan : { spec: { stages: [{ weight: 100 }] } as PlanSpec, source: 'none' },
    nowMs,
    target,
    version: o.spec.version ?? '',
    ...(o.spec.image ? { image: o.spec.image } : {}),
    requestedBy: requestedByOf(o),
  });
  if (!prepared.ok)
    problems.push(...prepared.problems.flatMap((p) => pathsOf(p, plan.ok ? plan.prefix : 'spec.plan')));
  if (problems.length > 0 || !prepared.ok) return { ok: false, problems };
  return { ok: true, start: prepared.start };
}
