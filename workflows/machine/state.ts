// The rollout's state: everything a run needs to resume where the previous one stopped. It crosses
// continue-as-new as the workflow input's `carried` field, so its JSON is in recorded histories: reading must accept
// every shape an older run carried, and changes to it bump CARRIED_SCHEMA_VERSION with a step in migrateCarried.
import type { WeightResult } from '../../activities/rollout-activities';
import type { FleetFreeze, SlotPlace } from '../fleet-model';
import type { LoadRun } from '../plan-load';
import type { GivenApproval } from '../approval-policy';
import type { JudgeState } from '../judge-v2';
import type {
  AnalysisRecord,
  ApprovalRecord,
  HookRunRecord,
  PreflightView,
  ResolveRecord,
  RolloutEnding,
  Verdict,
} from '../types';

/**
 * The current shape of carried state. 0 (absent): runs carried before the state had a version; 1: the same fields,
 * stamped with the version on the way out of every continue-as-new.
 */
export const CARRIED_SCHEMA_VERSION = 1;

/** Everything a run needs to resume where the previous one stopped (carried through continue-as-new). */
export interface RolloutState {
  /**
   * The shape of this state (CARRIED_SCHEMA_VERSION). Absent in state carried by runs before it was versioned
   * (schema 0, the same fields); migrateCarried reads every older shape.
   */
  schemaVersion?: number;
  run: number;
  /** Base phase; `paused` and `waiting_approval` are derived. */
  phase: 'progressing' | 'rolling_back' | 'rolled_back' | 'promoted' | 'failed' | 'not_started';
  canaryReady: boolean;
  /** 0-based index of the current stage. */
  stageIndex: number;
  /** Whether the current stage's traffic shift happened (false while its gate waits). */
  stageEntered: boolean;
  weight: number;
  /** Start of the current wait (a gate or a hold), in workflow time. */
  waitStartedAt?: number;
  /** Paused time accumulated during the current wait; it does not count toward holds or gate timeouts. */
  pausedMsInWait: number;
  pausedSince?: number;
  pausedBy?: string;
  /** From fleet-controls on: the rollout asks its fleet workflows before it advances (decided at the first run). */
  fleet?: boolean;
  /** The freezes that hold the rollout, by fleet workflow id (told by those workflows). */
  freezes?: Record<string, FleetFreeze>;
  /** Fleet workflows asked before an advance that have not answered yet. */
  fleetAsked?: string[];
  /** Its namespace's slot (a maxConcurrent): granted, or its place in the queue; given back at its end. */
  slot?: SlotPlace & { fleet: string };
  /** The fleet workflow asked for a slot whose answer has not come yet (it is given back at the end all the same). */
  slotAsked?: string;
  /** From fleet-queue-alerts on: being queued, and leaving the queue, raise alerts (decided at the first run). */
  queueAlerts?: boolean;
  /** From pause-holds-advance on: while paused, no canary, no stage entry, no promotion (decided at the first run). */
  pauseHolds?: boolean;
  approvedStage?: number;
  lastAnalysisAt?: number;
  passedInStage: boolean;
  /** Since when every round of this stage has passed (its entry, at best); unset after one that did not. */
  passingSince?: number;
  consecutiveFailures: number;
  consecutiveInconclusive: number;
  lastVerdict?: Verdict;
  analyses: AnalysisRecord[];
  approvals: ApprovalRecord[];
  promoteRequest?: { by: string; at: number; fromStage: number };
  /** `declined`: what the abort declined (a waiting gate or question), when it came while one waited. */
  abortRequest?: { by: string; reason: string; declined?: string; back?: true };
  rollbackReason?: string;
  finalizing: boolean;
  promotedAt?: number;
  /** The version stable ran when the canary was prepared (from the workload manager). */
  stableVersion?: string;
  /** The weight the router really carries, where it differs from the stage weight (replica ratios). */
  achievedWeight?: number;
  /** Why the router could not meet or verify the weight, as it said last. */
  routingNote?: string;
  /** Someone else changed the weights; the rollout paused until a person resumes it. */
  drift?: { expected: number; found: number; at: number };
  pauseReason?: string;
  /** A step that must not give up (rollback, return to stable) and keeps failing. */
  retrying?: { step: string; attempts: number; error: string; since: number };
  /** What the rollback found and did about stable's capacity. */
  capacityNote?: string;
  /** judge-v2's memory between rounds (breach streaks, missing evidence, step-backs). */
  judge?: JudgeState;
  steppedBack?: { stageWeight: number; toWeight: number; at: number };
  /** The plan rules the rollout started under (set from the plan-limits patch on). */
  planRules?: { strict: boolean; limits: boolean };
  /** Every analysis that ran (the record keeps only the latest). */
  analysesRun?: number;
  /** 0-based index of the first stage a promotion request skipped (the final stage is never skipped). */
  skippedFrom?: number;
  /** 0-based index of the stage the rollback happened in. */
  failedStage?: number;
  /**
   * Evidence has been missing (or queries failing) past a check's limit whose `then` is approval: a person decides
   * whether the rollout goes on without it (approve) or rolls back (abort). Traffic holds meanwhile.
   */
  evidenceQuestion?: { checks: string[]; since: number; reasons: string[]; breaches?: string[] };
  /** 0-based index of the stage a person let advance without the missing evidence. */
  evidenceWaivedStage?: number;
  /** The sequence number of the rollout's last alert event (alert-sinks-v2; counts across continue-as-new). */
  alertSeq?: number;
  /** Approvals given at the current gate, oldest first (expired ones stay, for the record). */
  gateApprovals?: GivenApproval[];
  /** Whether the current gate sent its reminder, and escalated. */
  gateReminded?: boolean;
  gateEscalated?: boolean;
  /**
   * Waiting for a deployment window before the next advance: the next-open instant computed when the wait began
   * (kept, so a replay never recomputes it with other time-zone data) and what status says.
   */
  windowWait?: { since: number; nextOpenAt?: number; note: string };
  /**
   * The plan's promotion gate (`promotion.gate`): waiting once the final stage's hold is served, passed once a person
   * approved it (or it timed out with onTimeout: proceed). Absent before, and for plans without one.
   */
  promotionGate?: 'waiting' | 'passed';
  /** The never-stuck behaviour (NEVER_STUCK_PATCH), decided at the rollout's first run; absent before it. */
  neverStuck?: boolean;
  /** The machine-v2 behaviour (MACHINE_V2_PATCH), decided at the rollout's first run; absent before it. */
  machineV2?: boolean;
  /** Window time (see openMsBetween) inside pauses in the current wait (machine-v2, plans with windows). */
  pausedOpenMsInWait?: number;
  /** Promoted, but the canary workload could not be removed (machine-v2): why, and the command that removes it. */
  cleanupFailed?: { at: number; error: string };
  /** What the first step found. */
  preflight?: PreflightView;
  /**
   * What the rollout has changed so far (never-stuck): a rollback undoes only that, so a rollout that never moved
   * traffic or set up routing is rolled back at once, whatever state its cluster is in.
   */
  touched?: { canary?: boolean; routing?: boolean; traffic?: boolean };
  /** Who or what ended the rollout, once it rolls back (never-stuck). */
  ending?: RolloutEnding;
  /** A person confirmed by hand that traffic is back on stable while a rollback step kept failing. */
  resolved?: ResolveRecord;
  /** 0-based index of the stage whose wait for evidence after its hold has been alerted (once per stage). */
  evidenceAlertedStage?: number;
  /**
   * The soak after promotion (never-stuck, a cleanup delay above 0): the new version serves all traffic from the
   * canary while stable keeps the previous one, so going back is a weight change. `endNow`: a person (or a start
   * of another version) asked to finish the promotion before `until`.
   */
  soak?: { since: number; until: number; previousVersion?: string; endNow?: { by: string; at: number } };
  /** The nonces of signed requests this rollout accepted, newest last (bounded): a replayed one is refused. */
  seenNonces?: string[];
  /** The worker that started this rollout demanded verified identities (CANARY_REQUIRE_VERIFIED). */
  requireVerified?: true;
  /** The plan's hook runs, newest last (bounded: HOOK_RUNS_KEPT). Absent for plans without hooks. */
  hookRuns?: HookRunRecord[];
  /** The stage's load Job while it runs (plan-load.ts). Absent for plans without load. */
  load?: LoadRun;
  /** Hooks finished at their point and stage entry (`point:stage:hook`), so none runs twice (bounded). */
  hooksDone?: string[];
  /** A confirm gate being asked: its run key and the asks so far, so a continue-as-new keeps counting. */
  hookConfirm?: { key: string; asks: number };
  /** A failed hook with onFailure: approval waits for a person (ms: since). */
  hookQuestion?: { point: string; stage: number; hook: string; reason: string; since: number };
}

/** The state of a rollout's first run. */
export function initialState(): RolloutState {
  return {
    schemaVersion: CARRIED_SCHEMA_VERSION,
    run: 1,
    phase: 'progressing',
    canaryReady: false,
    stageIndex: 0,
    stageEntered: false,
    weight: 0,
    pausedMsInWait: 0,
    passedInStage: false,
    consecutiveFailures: 0,
    consecutiveInconclusive: 0,
    analyses: [],
    approvals: [],
    finalizing: false,
  };
}

const PHASES: readonly RolloutState['phase'][] = [
  'progressing',
  'rolling_back',
  'rolled_back',
  'promoted',
  'failed',
  'not_started',
];

/**
 * Reads the state a previous run carried (the input's `carried`) into the current shape; undefined for a first run.
 * Fields a newer version added stay absent when an older run did not carry them: each one's absence means the
 * behaviour the rollout started with (e.g. no `neverStuck`, no `planRules`), so nothing is filled in that would change
 * how a rollout in flight decides. A shape this code cannot read is refused loudly rather than guessed at.
 */
export function migrateCarried(carried: unknown): RolloutState | undefined {
  if (carried === undefined || carried === null) return undefined;
  if (typeof carried !== 'object' || Array.isArray(carried)) {
    throw new TypeError(`carried state is not an object: ${typeof carried}`);
  }
  const c = carried as Partial<RolloutState> & Record<string, unknown>;
  const version = c.schemaVersion ?? 0;
  if (typeof version !== 'number' || !Number.isInteger(version) || version < 0) {
    throw new TypeError(`carried state has an unreadable schemaVersion: ${JSON.stringify(c.schemaVersion)}`);
  }
  if (version > CARRIED_SCHEMA_VERSION) {
    // A newer worker carried it (a rollout moved back to an older build): its fields may mean what this code does not know.
    throw new TypeError(
      `carried state has schemaVersion ${version}, newer than this worker reads (${CARRIED_SCHEMA_VERSION})`,
    );
  }
  if (typeof c.run !== 'number' || typeof c.stageIndex !== 'number' || !PHASES.includes(c.phase!)) {
    throw new TypeError('carried state lacks its run, stage or phase');
  }
  // Schema 0 → 1: the same fields; every run carried them (the defaults only guard hand-made inputs).
  return {
    ...c,
    schemaVersion: CARRIED_SCHEMA_VERSION,
    run: c.run,
    phase: c.phase!,
    canaryReady: c.canaryReady ?? false,
    stageIndex: c.stageIndex,
    stageEntered: c.stageEntered ?? false,
    weight: c.weight ?? 0,
    pausedMsInWait: c.pausedMsInWait ?? 0,
    passedInStage: c.passedInStage ?? false,
    consecutiveFailures: c.consecutiveFailures ?? 0,
    consecutiveInconclusive: c.consecutiveInconclusive ?? 0,
    analyses: c.analyses ?? [],
    approvals: c.approvals ?? [],
    finalizing: c.finalizing ?? false,
  };
}

/** The state the next run starts from: this one's, one run later, in the current shape. */
export function carryOver(s: RolloutState): RolloutState {
  return { ...s, schemaVersion: CARRIED_SCHEMA_VERSION, run: s.run + 1 };
}

/**
 * The weight this rollout has set, and what the router said it did: the weight it reached when that differs (status
 * shows both), and its note (or why the weight could not be verified).
 */
export function applyWeight(s: RolloutState, weight: number, r: WeightResult | undefined | null): void {
  s.weight = weight;
  if (r && typeof r === 'object') {
    s.achievedWeight = r.current !== weight ? r.current : undefined;
    s.routingNote = r.note ?? (r.unverified ? `weight not verified: ${r.unverified}` : undefined);
  }
}
