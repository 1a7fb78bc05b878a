// The shapes the client library's methods take and answer, apart from the workflow's own (workflows/types.ts).
import type { Phase, RolloutStatus } from '../workflows/types';
import type { PlanSpec } from '../workflows/plan';
import type { TargetSpec } from '../workflows/target';

export interface StartRolloutRequest {
  /** The application; may instead come from `target.app` (or its workload name). */
  app?: string;
  /** The target namespace (Kubernetes or equivalent), not the Temporal namespace. Default `default`. */
  namespace?: string;
  /**
   * Where the rollout points: workload, traffic router with its settings, metrics. Parts left out use the
   * worker's defaults. A `target:` inside a plan file is used when this is absent. `app` and `namespace` win.
   */
  target?: TargetSpec;
  version: string;
  image?: string;
  /** A plan object, or a plan file path or preset name (resolved and validated before Temporal is contacted). */
  plan: PlanSpec | string;
  requestedBy: string;
  /** How the commands the rollout suggests (alerts, the Web UI's details) spell the CLI; default `canary`. */
  cli?: string;
  /** Told what a start does to a promoted rollout still running on the target (going back, or finishing it). */
  onHandover?: (message: string) => void;
  /** Refuse what `--strict` refuses (a query that measures the whole fleet, a breach bound past the holds). */
  strict?: boolean;
}

export interface StartRolloutResult {
  workflowId: string;
  runId: string;
  /** false when the same version was already rolling out to this target (nothing new started). */
  started: boolean;
  version: string;
  /**
   * The target's promoted rollout was soaking and this version still ran beside it: the start went back to it
   * (traffic returned to stable) instead of starting a rollout.
   */
  wentBack?: true;
}

export interface AbortResult {
  workflowId: string;
  /**
   * `requested`: the signal was delivered; `already_rolling_back` / `already_rolled_back`: nothing to do, the
   * rollout is (or was) rolling back anyway. `unconfirmed`: delivered, but no worker answered the status query,
   * so the rollout acts on it once a worker polls again.
   */
  state: 'requested' | 'already_rolling_back' | 'already_rolled_back' | 'unconfirmed';
  /** The rollback reason already under way, for `already_*`. */
  reason?: string;
  /** `already_rolling_back` with a step that keeps failing: what it is, and the command that ends it. */
  retrying?: RolloutStatus['retrying'];
  /** A signed abort: the verified principal the rollout recorded. */
  by?: string;
}

export interface ListFilter {
  app?: string;
  phase?: Phase;
  /** Only members of this release (the CanaryRelease search attribute). */
  release?: string;
  /** Target namespace; filtered client-side (it is part of the workflow id, not a search attribute). */
  namespace?: string;
  /** Only running rollouts. */
  running?: boolean;
  /** At most this many rows, newest first. Default 100. */
  limit?: number;
}

export interface RolloutSummary {
  workflowId: string;
  runId: string;
  app?: string;
  namespace?: string;
  version?: string;
  /** As last published by the workflow (search attribute). */
  phase?: string;
  stage?: number;
  weight?: number;
  /** Temporal execution status: RUNNING, COMPLETED, FAILED, TERMINATED, ... */
  status: string;
  startTime: Date;
  closeTime?: Date;
}

export interface WaitOptions {
  /** Time between two polls. Default 2 s. */
  pollMs?: number;
  /** Called with every polled status (also the final one). */
  onStatus?: (status: RolloutStatus) => void | Promise<void>;
  /** How long transient failures (server restart, network blip) are tolerated in a row. Default 60 s. */
  toleranceMs?: number;
  signal?: AbortSignal;
}

export interface RolloutClientOptions {
  /** Temporal namespace; must be the one `client` was created for (default: the client's). */
  namespace?: string;
  /** Task queue new rollouts are started on. Default `canary-rollouts`. */
  taskQueue?: string;
  /** Server address, used in error messages and UI links only. */
  address?: string;
  rpcTimeoutMs?: number;
  /** Close the client's connection in `close()` (set by `connect`). */
  ownsConnection?: boolean;
  /** How messages that suggest a command spell the CLI (default `canary`; the CLI passes its own invocation). */
  cliName?: string;
}
