// Releases on the client side: a release file read, every member's rollout prepared exactly as `canary start`
// prepares one (plans and targets relative to the release file), and every problem listed under its member's path.
import * as path from 'node:path';
import type { PlanSpec } from '../workflows/plan';
import type { InputProblem } from '../workflows/problems';
import {
  clusterTaskQueue,
  releaseWorkflowId,
  validateReleaseShape,
  type ReleaseInput,
  type ReleaseMemberInput,
} from '../workflows/release-model';
import type { TargetSpec } from '../workflows/target';
import { PRESETS } from '../workflows/presets';
import { loadPlan, loadTargetFile, readDocument, type LoadedPlan } from './plan-file';
import { prepareStart, startProblemError } from './prepare-start';

export interface PreparedRelease {
  workflowId: string;
  input: ReleaseInput;
  /** The task queues the members' clusters need (a worker must poll each). */
  clusterQueues: Array<{ cluster: string; taskQueue: string }>;
}

export type ReleasePreparation =
  { ok: true; release: PreparedRelease } | { ok: false; problems: InputProblem[] };

export interface ReleaseOptions {
  requestedBy: string;
  nowMs: number;
  /** The task queue of the release (and of members that name no cluster). */
  taskQueue: string;
  cli?: string;
}

/** Reads and checks a release file; throws PlanFileError when it cannot be read or parsed. */
export function prepareReleaseFile(file: string, options: ReleaseOptions): ReleasePreparation {
  const doc = readDocument(file, 'release', '');
  return prepareRelease(doc, path.dirname(file), options);
}

export function prepareRelease(doc: unknown, baseDir: string, options: ReleaseOptions): ReleasePreparation {
  const shape = validateReleaseShape(doc);
  if (!shape.ok) return shape;
  const spec = shape.spec;
  const problems: InputProblem[] = [];
  const members: ReleaseMemberInput[] = [];
  const targets = new Map<string, string>();
  spec.members.forEach((m, i) => {
    const at = `members[${i}]`;
    const under = (where: string, message: string) =>
      problems.push({ path: `${at}${where}`, message: `${m.id}: ${message}` });
    let plan: LoadedPlan;
    let target: TargetSpec;
    try {
      plan = loadMemberPlan(m.plan, baseDir, at);
    } catch (err) {
      return under('.plan', (err as Error).message);
    }
    try {
      target =
        typeof m.target === 'string'
          ? loadTargetFile(path.resolve(baseDir, m.target))
          : (m.target as TargetSpec);
    } catch (err) {
      return under('.target', (err as Error).message);
    }
    if (spec.promotion === 'together') {
      // The release approves every member's promotion at once: a member's own gate or approval policy would
      // leave a person's approval in the middle of that.
      const own = plan.spec.promotion?.gate;
      if (own !== undefined && own !== 'auto') {
        return under(
          '.plan',
          'has its own promotion gate; with promotion: together the release promotes every member at once (drop promotion.gate, or use promotion: each)',
        );
      }
      if (plan.spec.approvals !== undefined) {
        return under(
          '.plan',
          'has an approval policy (approvals:); with promotion: together the release approves the promotion itself (use promotion: each)',
        );
      }
      plan = { ...plan, spec: { ...plan.spec, promotion: { ...plan.spec.promotion, gate: 'approval' } } };
    }
    const prepared = prepareStart({
      plan,
      nowMs: options.nowMs,
      target: { ...(plan.target ?? {}), ...target },
      targetSource: `${at}.target`,
      version: m.version,
      ...(m.image ? { image: m.image } : {}),
      requestedBy: options.requestedBy,
      ...(options.cli ? { cli: options.cli } : {}),
    });
    if (!prepared.ok) {
      for (const p of prepared.problems) {
        const where = p.kind === 'plan' ? '.plan' : p.kind === 'version' ? '.version' : '.target';
        under(where, startProblemError(p).message);
      }
      return;
    }
    const { namespace, app } = prepared.start.target;
    const key = `${m.cluster ?? ''}/${namespace}/${app}`;
    if (targets.has(key)) {
      return under(
        '.target',
        `${namespace}/${app}${m.cluster ? ` in cluster ${m.cluster}` : ''} is also ${targets.get(key)}'s target: one rollout per target`,
      );
    }
    targets.set(key, m.id);
    members.push({
      id: m.id,
      after: m.after ?? [],
      ...(m.afterStage ? { afterStage: m.afterStage } : {}),
      wave: m.wave ?? 1,
      workflowId: prepared.start.workflowId,
      ...(m.cluster ? { taskQueue: clusterQueue(options.taskQueue, m.cluster), cluster: m.cluster } : {}),
      input: prepared.start.input,
    });
  });
  // A stage an after: names must be one of that member's stages.
  spec.members.forEach((m, i) => {
    for (const [dep, stage] of Object.entries(m.afterStage ?? {})) {
      const stages = members.find((x) => x.id === dep)?.input.plan.stages;
      if (!Array.isArray(stages) || stage <= stages.length) continue;
      problems.push({
        path: `members[${i}].after[${(m.after ?? []).indexOf(dep)}].stage`,
        message: `${m.id}: ${dep} has ${stages.length} stage${stages.length === 1 ? '' : 's'}: stage ${stage} is not one of them`,
      });
    }
  });
  if (problems.length > 0) return { ok: false, problems };
  const clusters = [...new Set(spec.members.flatMap((m) => (m.cluster ? [m.cluster] : [])))];
  return {
    ok: true,
    release: {
      workflowId: releaseWorkflowId(spec.release),
      input: {
        release: spec.release,
        members,
        waves: spec.waves,
        promotion: spec.promotion,
        onFailure: spec.onFailure,
        requestedBy: options.requestedBy,
        ...(spec.workerCheck ? { workerCheck: spec.workerCheck } : {}),
      },
      clusterQueues: clusters.map((cluster) => ({
        cluster,
        taskQueue: clusterQueue(options.taskQueue, cluster),
      })),
    },
  };
}

/** The task queue of a cluster's worker: `<queue>.<cluster>` (`canary-rollouts.eu-west`). */
export const clusterQueue = clusterTaskQueue;

function loadMemberPlan(plan: unknown, baseDir: string, at: string): LoadedPlan {
  if (plan === undefined) return loadPlan('default');
  if (typeof plan === 'string') {
    return Object.prototype.hasOwnProperty.call(PRESETS, plan)
      ? loadPlan(plan)
      : loadPlan(path.resolve(baseDir, plan));
  }
  return { spec: plan as PlanSpec, source: `${at}.plan` };
}
