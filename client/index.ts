// The typed client CI scripts import: `import { RolloutClient } from 'temporal-canary'`. This file only says what the
// library offers; the code lives beside it by role: rollout-client.ts (the client class), errors.ts, ids.ts,
// types.ts, outcome.ts, prepare-start.ts, plan-file.ts, identity.ts, render.ts.
export type {
  AbortRequest,
  ApproveRequest,
  PauseRequest,
  PromoteAck,
  PromoteRequest,
  RolloutInput,
} from '../workflows/api';
export { DEFAULT_TASK_QUEUE, WORKFLOW_TYPE, rolloutWorkflowId } from '../workflows/api';
export type {
  AnalysisRecord,
  ApprovalRecord,
  CheckResult,
  GateWait,
  Phase,
  Plan,
  PreflightFinding,
  PreflightView,
  ResolveRecord,
  RolloutEnding,
  RolloutResult,
  RolloutStatus,
  RolloutTarget,
  StageView,
  Verdict,
} from '../workflows/types';
export { TERMINAL_PHASES } from '../workflows/types';
export type { PlanSpec } from '../workflows/plan';
export {
  PlanFileError,
  PlanInvalidError,
  TargetInvalidError,
  loadAndValidatePlan,
  loadTargetFile,
} from './plan-file';
export type { Target, TargetSpec } from '../workflows/target';
export { IdentityError, resolveIdentity, type Identity } from './identity';
export {
  loadPlan,
  offlinePlanFindings,
  type LoadedPlan,
  type PlanCheckOptions,
  type ValidatedPlan,
} from './plan-file';
export {
  checkStartTarget,
  prepareStart,
  prepareStartOrThrow,
  startProblemError,
  type PreparedStart,
  type StartPreparation,
  type StartProblem,
  type StartSpec,
  type TargetProblem,
} from './prepare-start';
export { renderList, renderStatus } from './render';

export type { ConnectionConfig } from '../connection/config';
/** What `connect` takes: the worker's configuration (or only its connection settings) works as it did. */
export type { WorkerConfig } from '../worker/config';
export { ConfigError } from '../connection/config';

export {
  DEFAULT_POLL_MS,
  DEFAULT_RPC_TIMEOUT_MS,
  HANDOVER_TIMEOUT_MS,
  RolloutClient,
} from './rollout-client';
export {
  InfrastructureError,
  RolloutConflictError,
  RolloutError,
  RolloutInputError,
  RolloutNotFoundError,
  RolloutNotStartedError,
  RolloutRejectedError,
} from './errors';
export { resolveRolloutId, rolloutUiUrl } from './ids';
export { outcomeResult, rolledBackResult, rolloutResult } from './outcome';
export type {
  AbortResult,
  ListFilter,
  RolloutClientOptions,
  RolloutSummary,
  StartRolloutRequest,
  StartRolloutResult,
  WaitOptions,
} from './types';
