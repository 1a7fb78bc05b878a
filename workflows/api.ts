// The rollout workflow's public surface: input, messages, and ids. Imported by the workflow and the client.
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';
import type { RequestSignature } from './identity';
import type { ApprovalRecord, ResolveRecord, RolloutStatus, RolloutTarget } from './types';
import type { PlanSpec } from './plan';
import type { TargetSpec } from './target';

export const WORKFLOW_TYPE = 'canaryRollout';
export const DEFAULT_TASK_QUEUE = 'canary-rollouts';

export interface RolloutInput {
  /**
   * Where the rollout points, as written (validated by the workflow exactly as the client did): app and
   * namespace, and optionally its workload, traffic router and metrics source. Never a secret.
   */
  target: RolloutTarget & TargetSpec;
  version: string;
  image?: string;
  /** The plan as written (durations as text); the workflow validates it exactly as the client did. */
  plan: PlanSpec;
  requestedBy: string;
  /**
   * How the CLI that started the rollout spells itself (`canary`, `npx canary`, `node dist/client/cli.js`), so
   * the commands the rollout suggests (alerts, the Web UI's details) can be pasted; default `canary`.
   */
  cli?: string;
  /** Tuning that tests and benchmarks use; production leaves it unset. */
  options?: {
    /** Continue-as-new once a run's history passes this many events (default 4000). */
    continueAsNewAfterEvents?: number;
  };
  /** Set only by continue-as-new: where the previous run stopped. */
  carried?: unknown;
  /**
   * Set when a release (workflows/release.ts) started this rollout as one of its members: the rollout tells the
   * release each change of its phase, stage and weight.
   */
  release?: {
    workflowId: string;
    member: string;
    /** The release promotes every member at once (`promotion: together`): only it may pass this promotion gate. */
    together?: { name: string; identity: string };
  };
}

/**
 * What every person's request may carry: a signature (workflows/identity.ts) the worker verifies before the request
 * is accepted; the verified principal then replaces `identity`. `groups` is set by the workflow alone, from a
 * verified token (a request that brings its own is refused).
 */
export interface SignedFields {
  signature?: RequestSignature;
  groups?: string[];
}

export interface ApproveRequest extends SignedFields {
  /** 1-based stage number the approver means; refused when another stage is waiting. */
  stage?: number;
  comment?: string;
  identity: string;
}

export interface AbortRequest extends SignedFields {
  reason: string;
  identity: string;
}

export interface PauseRequest extends SignedFields {
  identity: string;
  reason?: string;
}

export interface PromoteRequest extends SignedFields {
  identity: string;
  comment?: string;
  /**
   * During the soak after promotion (the previous version still runs): finish the promotion now, so stable takes
   * the new version and the canary goes. Refused at any other time; a plain promote during the soak is refused too.
   */
  endSoak?: boolean;
}

/**
 * `canary resolve`: a person confirms that traffic is back on stable (done by hand), so a rollback stuck on a step
 * that keeps failing (a lost cluster, a revoked permission) may end. Accepted only while a step keeps failing.
 */
export interface ResolveRequest extends SignedFields {
  identity: string;
  reason: string;
  /** Must be true: the caller has checked, by hand, that all traffic is on stable. */
  confirmTrafficRestored: boolean;
}

export interface PromoteAck {
  /** The stage the rollout jumps from. */
  fromStage: number;
  acceptedAt: string;
  /** A signed promotion: the verified principal the rollout recorded. */
  by?: string;
}

export const approveUpdate = defineUpdate<ApprovalRecord, [ApproveRequest]>('approve');
export const resolveUpdate = defineUpdate<ResolveRecord, [ResolveRequest]>('resolve');
export const promoteUpdate = defineUpdate<PromoteAck, [PromoteRequest]>('promote');
/** What a pause or resume changed, as the workflow recorded it. */
export interface PauseAck {
  at: string;
  by: string;
  stage: number;
}

/**
 * Pause and resume as Updates: the validator refuses a message that would change nothing (a second pause, a
 * resume when not paused), so the caller hears why. The signals stay for older clients.
 */
export const pauseUpdate = defineUpdate<PauseAck, [PauseRequest]>('pauseRollout');
export const resumeUpdate = defineUpdate<PauseAck, [PauseRequest]>('resumeRollout');
/** Abort stays a signal: it is recorded even while no worker runs, and acted on as soon as one polls. */
export const abortSignal = defineSignal<[AbortRequest]>('abort');
/** What a signed abort (an Update, so the worker verifies it before it is accepted) did. */
export interface AbortAck {
  by: string;
  at: string;
  /** false: the rollout was already rolling back or finishing, so the abort changed nothing. */
  accepted: boolean;
}
/** Abort as an Update: what a signed abort uses (a signal cannot be verified before it is accepted). */
export const abortUpdate = defineUpdate<AbortAck, [AbortRequest]>('abortRollout');
export const pauseSignal = defineSignal<[PauseRequest]>('pause');
export const resumeSignal = defineSignal<[PauseRequest]>('resume');
export const statusQuery = defineQuery<RolloutStatus>('status');

// Custom search attributes shown (and filterable) in the Temporal Web UI.
export const SA_APP = defineSearchAttributeKey('CanaryApp', SearchAttributeType.KEYWORD);
export const SA_VERSION = defineSearchAttributeKey('CanaryVersion', SearchAttributeType.KEYWORD);
export const SA_PHASE = defineSearchAttributeKey('CanaryPhase', SearchAttributeType.KEYWORD);
export const SA_STAGE = defineSearchAttributeKey('CanaryStage', SearchAttributeType.INT);
export const SA_WEIGHT = defineSearchAttributeKey('CanaryWeight', SearchAttributeType.INT);
/** The release a rollout is a member of (and the release workflow's own name): set at start, only for releases. */
export const SA_RELEASE = defineSearchAttributeKey('CanaryRelease', SearchAttributeType.KEYWORD);

/** `name=Type` pairs, as `temporal server start-dev --search-attribute` and `operator search-attribute create` take them. */
export const SEARCH_ATTRIBUTES: ReadonlyArray<readonly [string, 'Keyword' | 'Int']> = [
  ['CanaryApp', 'Keyword'],
  ['CanaryVersion', 'Keyword'],
  ['CanaryPhase', 'Keyword'],
  ['CanaryStage', 'Int'],
  ['CanaryWeight', 'Int'],
  ['CanaryRelease', 'Keyword'],
];

const ROLLOUT_ID_PREFIX = 'canary.';

/** The failure type a rolled-back rollout's workflow ends with; its details hold the RolloutResult. */
export const ROLLED_BACK_FAILURE = 'RolledBack';
/** How that failure's message begins (what is left of it once it crosses a thread by structured clone). */
export const ROLLED_BACK_MESSAGE_PREFIX = 'rolled back: ';
/** The failure type of a rollout its preflight refused (nothing was touched); its details hold the RolloutResult. */
export const NOT_STARTED_FAILURE = 'NotStarted';
export const NOT_STARTED_MESSAGE_PREFIX = 'not started: ';

/**
 * One rollout per target at a time: the workflow id derives from namespace and app, joined by dots. Both are
 * DNS-1123 labels, which cannot hold a dot, so distinct targets never share an id (`t/eu-coll` is
 * `canary.t.eu-coll`, `t-eu/coll` is `canary.t-eu.coll`).
 */
export function rolloutWorkflowId(target: RolloutTarget): string {
  return `${ROLLOUT_ID_PREFIX}${target.namespace}.${target.app}`;
}

/**
 * The id rollouts started before 0.2 got: `canary-<namespace>-<app>`, which two targets could share. The client
 * still finds such rollouts, checking the app search attribute so that it never picks another target's.
 */
export function legacyRolloutWorkflowId(target: RolloutTarget): string {
  return `canary-${target.namespace}-${target.app}`;
}

/** The target a workflow id names (either scheme; the legacy one needs the app to split it), if any. */
export function targetOfWorkflowId(workflowId: string, app?: string): RolloutTarget | undefined {
  if (workflowId.startsWith(ROLLOUT_ID_PREFIX)) {
    const parts = workflowId.slice(ROLLOUT_ID_PREFIX.length).split('.');
    if (parts.length === 2 && parts[0] !== '' && parts[1] !== '')
      return { namespace: parts[0], app: parts[1] };
    return undefined;
  }
  if (app && workflowId.startsWith('canary-') && workflowId.endsWith(`-${app}`)) {
    const namespace = workflowId.slice('canary-'.length, workflowId.length - app.length - 1);
    if (namespace !== '') return { namespace, app };
  }
  return undefined;
}
