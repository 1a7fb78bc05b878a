// A release: one canary across several services (and clusters), with one verdict and one abort. This is its model
// and the checks that need no plan or target: the shape of a release file, member ids, `after:` (unknown ids,
// cycles), waves (a wave with no members), and what the workflow takes once the client has prepared each member's
// rollout. Pure and deterministic: the client and the release workflow (workflows/release.ts) share it.
import { parseDuration } from './duration';
import type { RolloutInput } from './api';
import type { InputProblem } from './problems';

export const RELEASE_WORKFLOW = 'canaryRelease';
export const RELEASE_ID_PREFIX = 'canary-release.';
export const releaseWorkflowId = (name: string) => `${RELEASE_ID_PREFIX}${name}`;

/** The task queue of a cluster's worker: `<queue>.<cluster>` (`canary-rollouts.eu-west`). */
export const clusterTaskQueue = (taskQueue: string, cluster: string) => `${taskQueue}.${cluster}`;

/** Who the release acts as when it approves its members' promotion gates. */
export const releaseIdentity = (name: string) => `release:${name}`;

export type ReleasePromotion = 'together' | 'each';

/**
 * How the release watches its clusters' workers (members with `cluster:`): how often it looks at each cluster's task
 * queue, and how long no worker may have polled it before its members count as stuck. A live worker that has nothing
 * to do polls anew at least once a minute (the server's long poll), so goneAfter stays above that.
 */
export interface WorkerCheck {
  everyMs: number;
  goneAfterMs: number;
}
export const DEFAULT_WORKER_CHECK: WorkerCheck = { everyMs: 30_000, goneAfterMs: 2 * 60_000 };
export type ReleaseOnFailure = 'rollback-all' | 'rollback-member';

/** A member as written in the release file (paths resolved by the client). */
export interface ReleaseMemberSpec {
  id: string;
  target: unknown;
  version: string;
  image?: string;
  plan?: unknown;
  /** The ids this member comes after (a stage named or not). */
  after?: string[];
  /** `after: [{ member: payments, stage: 2 }]`: the member starts once payments has entered its stage 2. */
  afterStage?: Record<string, number>;
  wave?: number;
  cluster?: string;
}

/** A release file's content after the shape checks (members' targets and plans are the client's to load). */
export interface ReleaseSpec {
  release: string;
  members: ReleaseMemberSpec[];
  waves: Array<{ wave: number; bakeMs: number }>;
  promotion: ReleasePromotion;
  onFailure: ReleaseOnFailure;
  /** `workerCheck: { every, goneAfter }`: only when the file gives it (the defaults otherwise). */
  workerCheck?: WorkerCheck;
}

/** One member as the release workflow takes it: its rollout, prepared exactly as `canary start` would. */
export interface ReleaseMemberInput {
  id: string;
  after: string[];
  /**
   * Dependencies named with a stage (1-based): the member starts once that one has entered the stage. Only release
   * files that name a stage set it, so releases started before it never reach it.
   */
  afterStage?: Record<string, number>;
  wave: number;
  /** The rollout's workflow id (`canary.<namespace>.<app>`): its status and Web UI page stay a rollout's. */
  workflowId: string;
  /** The task queue of the member's cluster (`<queue>.<cluster>`); absent: the release's own queue. */
  taskQueue?: string;
  /** The member's cluster (`cluster:`), with taskQueue; absent in releases started before it was carried. */
  cluster?: string;
  input: RolloutInput;
}

export interface ReleaseInput {
  release: string;
  members: ReleaseMemberInput[];
  waves: Array<{ wave: number; bakeMs: number }>;
  promotion: ReleasePromotion;
  onFailure: ReleaseOnFailure;
  requestedBy: string;
  /** Only when the release file sets it (DEFAULT_WORKER_CHECK otherwise). */
  workerCheck?: WorkerCheck;
}

/** What the watcher activity tells the release: the queues whose workers changed since it last said. */
export interface ClusterWorkersReport {
  /** When the watcher looked (ISO-8601). */
  at: string;
  queues: Array<{ taskQueue: string; serving: boolean; lastSeen?: string }>;
}

/** A cluster's workers as the release last saw them (releases whose members name clusters). */
export interface ReleaseClusterStatus {
  cluster: string;
  taskQueue: string;
  /** `gone`: no worker has polled the cluster's task queue for workerCheck.goneAfter; its members hold. */
  workers: 'unknown' | 'serving' | 'gone';
  /** The last poll the server saw on the queue (ISO-8601), when it still lists one. */
  lastSeen?: string;
  /** Since when the release has counted the workers gone (ISO-8601). */
  goneSince?: string;
}

/** What a member tells its release (a signal from the member's rollout workflow, on every phase or stage change). */
export interface MemberProgress {
  member: string;
  phase: string;
  stage: number;
  weight: number;
  /** The final stage has served its hold and promotion waits at the gate. */
  atPromotionGate: boolean;
  reason?: string;
}

export type MemberState =
  'pending' | 'running' | 'ready' | 'promoted' | 'rolling_back' | 'rolled_back' | 'not_started' | 'skipped';

export interface ReleaseMemberStatus {
  id: string;
  wave: number;
  after: string[];
  workflowId: string;
  state: MemberState;
  phase?: string;
  stage?: number;
  stages: number;
  weight?: number;
  reason?: string;
}

export interface ReleaseStatus {
  release: string;
  /** `held`: with onFailure: rollback-member, a member rolled back and a person decides (see `question`). */
  phase: 'progressing' | 'held' | 'promoting' | 'rolling_back' | 'promoted' | 'rolled_back' | 'aborted';
  promotion: ReleasePromotion;
  onFailure: ReleaseOnFailure;
  waves: Array<{ wave: number; bakeMs: number; readyAt?: string; members: string[] }>;
  members: ReleaseMemberStatus[];
  /** Why the release rolled back: the member and its reason. */
  reason?: string;
  cause?: string;
  /** While held: what happened and what a person may answer. */
  question?: string;
  /** Members the release went on without (onFailure: rollback-member): those that rolled back, those after them. */
  dropped?: string[];
  /** The clusters' workers (releases whose members name clusters). */
  clusters?: ReleaseClusterStatus[];
}

export interface ReleaseResult {
  outcome: 'promoted' | 'rolled_back';
  reason?: string;
  /** The member whose failure rolled the release back. */
  cause?: string;
  /** Promoted without these members (onFailure: rollback-member, continued by a person). */
  dropped?: string[];
  members: ReleaseMemberStatus[];
}

const NAME = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Checks a release file's shape and its members' relations; returns every problem with its path, or the spec.
 * Plans and targets are not checked here (the client loads and validates them per member).
 */
export function validateReleaseShape(
  doc: unknown,
): { ok: true; spec: ReleaseSpec } | { ok: false; problems: InputProblem[] } {
  const problems: InputProblem[] = [];
  const add = (path: string, message: string) => problems.push({ path, message });
  if (!isObject(doc)) {
    return {
      ok: false,
      problems: [{ path: '', message: 'a release must be an object with release and members' }],
    };
  }
  for (const key of Object.keys(doc)) {
    if (!['release', 'members', 'waves', 'promotion', 'onFailure', 'workerCheck'].includes(key)) {
      add(key, 'is not a release field (release, members, waves, promotion, onFailure, workerCheck)');
    }
  }
  const workerCheck = readWorkerCheck(doc.workerCheck, add);
  const name = doc.release;
  if (typeof name !== 'string' || !NAME.test(name)) {
    add('release', 'must be a name of lowercase letters, digits and dashes (e.g. checkout-2025-06)');
  }
  const promotion = doc.promotion ?? 'together';
  if (promotion !== 'together' && promotion !== 'each') add('promotion', 'must be together or each');
  const onFailure = doc.onFailure ?? 'rollback-all';
  if (onFailure !== 'rollback-all' && onFailure !== 'rollback-member') {
    add('onFailure', 'must be rollback-all (the default) or rollback-member');
  }

  const members: ReleaseMemberSpec[] = [];
  if (!Array.isArray(doc.members) || doc.members.length === 0) {
    add('members', 'must list at least one member ({ id, target, version, plan })');
  } else {
    doc.members.forEach((m: unknown, i) => {
      const at = `members[${i}]`;
      if (!isObject(m)) return add(at, 'must be an object with id, target, version and plan');
      for (const key of Object.keys(m)) {
        if (!['id', 'target', 'version', 'image', 'plan', 'after', 'wave', 'cluster'].includes(key)) {
          add(
            `${at}.${key}`,
            'is not a member field (id, target, version, image, plan, after, wave, cluster)',
          );
        }
      }
      if (typeof m.id !== 'string' || !NAME.test(m.id))
        add(`${at}.id`, 'must be a name (lowercase, digits, dashes)');
      if (m.target === undefined) add(`${at}.target`, 'is required: a target file or an inline target');
      if (typeof m.version !== 'string' || m.version.trim() === '') add(`${at}.version`, 'is required');
      const after: string[] = [];
      const afterStage: Record<string, number> = {};
      if (m.after !== undefined && !Array.isArray(m.after)) {
        add(`${at}.after`, 'must be a list of member ids (or { member: id, stage: N })');
      }
      (Array.isArray(m.after) ? (m.after as unknown[]) : []).forEach((a, j) => {
        const id = typeof a === 'string' ? a : isObject(a) ? a.member : undefined;
        if (typeof id === 'string' && after.includes(id)) {
          return add(`${at}.after[${j}]`, `names "${id}" twice`);
        }
        if (typeof a === 'string') return after.push(a);
        if (isObject(a) && typeof a.member === 'string') {
          const extra = Object.keys(a).filter((k) => k !== 'member' && k !== 'stage');
          if (extra.length > 0)
            add(`${at}.after[${j}].${extra[0]}`, 'is not a field of after: (member, stage)');
          if (a.stage !== undefined && (!Number.isInteger(a.stage) || (a.stage as number) < 1)) {
            add(`${at}.after[${j}].stage`, 'must be a stage number from 1 (the first stage is 1)');
          } else if (a.stage !== undefined) {
            afterStage[a.member] = a.stage as number;
          }
          return after.push(a.member);
        }
        add(`${at}.after[${j}]`, 'must be a member id or { member: id, stage: N }');
      });
      if (m.wave !== undefined && (!Number.isInteger(m.wave) || (m.wave as number) < 1)) {
        add(`${at}.wave`, 'must be a whole number from 1');
      }
      if (m.cluster !== undefined && (typeof m.cluster !== 'string' || !NAME.test(m.cluster))) {
        add(`${at}.cluster`, 'must be a cluster name (lowercase, digits, dashes)');
      }
      members.push({
        id: String(m.id),
        target: m.target,
        version: String(m.version ?? ''),
        ...(typeof m.image === 'string' ? { image: m.image } : {}),
        ...(m.plan !== undefined ? { plan: m.plan } : {}),
        after,
        ...(Object.keys(afterStage).length > 0 ? { afterStage } : {}),
        wave: Number.isInteger(m.wave) ? (m.wave as number) : 1,
        ...(typeof m.cluster === 'string' ? { cluster: m.cluster } : {}),
      });
    });
  }

  const ids = new Map<string, number>();
  members.forEach((m, i) => {
    if (ids.has(m.id)) add(`members[${i}].id`, `"${m.id}" is also members[${ids.get(m.id)}]'s id`);
    else ids.set(m.id, i);
  });
  members.forEach((m, i) =>
    (m.after ?? []).forEach((a, j) => {
      if (!ids.has(a))
        add(`members[${i}].after[${j}]`, `names no member: "${a}" (members: ${[...ids.keys()].join(', ')})`);
      else if (a === m.id) add(`members[${i}].after[${j}]`, 'a member cannot come after itself');
    }),
  );
  const cycle = findCycle(members);
  if (cycle) add('members', `after: forms a cycle: ${cycle.join(' → ')}`);

  const waves: Array<{ wave: number; bakeMs: number }> = [];
  if (doc.waves !== undefined && !Array.isArray(doc.waves)) add('waves', 'must be a list of { wave, bake }');
  (Array.isArray(doc.waves) ? doc.waves : []).forEach((w: unknown, i) => {
    const at = `waves[${i}]`;
    if (!isObject(w) || !Number.isInteger(w.wave) || (w.wave as number) < 1) {
      return add(at, 'must be { wave: N, bake?: duration } with N a whole number from 1');
    }
    let bakeMs = 0;
    if (w.bake !== undefined) {
      try {
        bakeMs = parseDuration(String(w.bake));
      } catch (err) {
        add(`${at}.bake`, (err as Error).message);
      }
    }
    if (waves.some((x) => x.wave === w.wave)) add(`${at}.wave`, `wave ${String(w.wave)} is listed twice`);
    else if (!members.some((m) => m.wave === w.wave)) add(at, `wave ${String(w.wave)} has no members`);
    waves.push({ wave: w.wave as number, bakeMs });
  });
  // Waves members name but the list leaves out bake for 0.
  for (const m of members) {
    if (!waves.some((w) => w.wave === m.wave)) waves.push({ wave: m.wave ?? 1, bakeMs: 0 });
  }
  waves.sort((a, b) => a.wave - b.wave);
  // A member may not come after a member of a later wave: it would wait for a wave that waits for it.
  members.forEach((m, i) =>
    (m.after ?? []).forEach((a, j) => {
      const dep = members.find((x) => x.id === a);
      if (dep && (dep.wave ?? 1) > (m.wave ?? 1)) {
        add(`members[${i}].after[${j}]`, `"${a}" is in wave ${dep.wave}, after this member's wave ${m.wave}`);
      }
    }),
  );

  if (problems.length > 0) return { ok: false, problems };
  return {
    ok: true,
    spec: {
      release: name as string,
      members,
      waves,
      promotion: promotion as ReleasePromotion,
      onFailure: onFailure as ReleaseOnFailure,
      ...(workerCheck ? { workerCheck } : {}),
    },
  };
}

/** `workerCheck: { every: 30s, goneAfter: 2m }`, either one left out takes its default. */
function readWorkerCheck(
  value: unknown,
  add: (path: string, message: string) => void,
): WorkerCheck | undefined {
  if (value === undefined) return undefined;
  if (!isObject(value)) {
    add('workerCheck', 'must be { every: duration, goneAfter: duration } (defaults 30s and 2m)');
    return undefined;
  }
  for (const key of Object.keys(value)) {
    if (key !== 'every' && key !== 'goneAfter')
      add(`workerCheck.${key}`, 'is not a field (every, goneAfter)');
  }
  const read = (key: 'every' | 'goneAfter', fallback: number): number => {
    if (value[key] === undefined) return fallback;
    try {
      const ms = parseDuration(String(value[key]));
      if (ms >= 1000) return ms;
      add(`workerCheck.${key}`, 'must be at least 1s');
    } catch (err) {
      add(`workerCheck.${key}`, (err as Error).message);
    }
    return fallback;
  };
  const check = {
    everyMs: read('every', DEFAULT_WORKER_CHECK.everyMs),
    goneAfterMs: read('goneAfter', DEFAULT_WORKER_CHECK.goneAfterMs),
  };
  if (check.goneAfterMs < check.everyMs) {
    add('workerCheck.goneAfter', 'must be at least every: a cluster is looked at once per every');
  }
  return check;
}

/** The first cycle `after:` forms, as the ids along it (first id repeated at the end), or undefined. */
export function findCycle(members: Array<{ id: string; after?: string[] }>): string[] | undefined {
  const deps = new Map(members.map((m) => [m.id, m.after ?? []]));
  const state = new Map<string, 'visiting' | 'done'>();
  const stack: string[] = [];
  const visit = (id: string): string[] | undefined => {
    if (state.get(id) === 'done') return undefined;
    if (state.get(id) === 'visiting') return [...stack.slice(stack.indexOf(id)), id];
    state.set(id, 'visiting');
    stack.push(id);
    for (const d of deps.get(id) ?? []) {
      if (!deps.has(d) || d === id) continue;
      const found = visit(d);
      if (found) return found;
    }
    stack.pop();
    state.set(id, 'done');
    return undefined;
  };
  for (const m of members) {
    const found = visit(m.id);
    if (found) return found.reverse();
  }
  return undefined;
}
