// What the sweeper (workflows/sweep.ts) takes and answers: shared by the workflow, its activities and the CLI,
// without importing the workflow runtime.
import type { Target } from './target';

/** The workflow type and id prefix the CLI and the schedule start. */
export const SWEEP_WORKFLOW = 'canarySweep';

export interface SweepInput {
  /** Kubernetes namespaces to look in (default: every namespace the worker may list Deployments in). */
  namespaces?: string[];
  /** Only report what would be swept. */
  dryRun?: boolean;
  /** Who asked (the CLI's identity, or `schedule`), for the record and the alert. */
  requestedBy?: string;
}

/** A canary whose rollout no longer runs, with traffic or replicas still on it. */
export interface StrandedRollout {
  workflowId: string;
  /** Why its workflow does not run: TERMINATED, TIMED_OUT, FAILED, CANCELED, COMPLETED, or NOT_FOUND (history lost). */
  workflowStatus: string;
  namespace: string;
  /** The version the canary runs (its pods' version label). */
  version?: string;
  /** The canary Deployment's name. */
  canary: string;
  /** The target recorded on the canary when its rollout prepared it. */
  target: Target;
  /** The live canary weight, when the router could read it. */
  weight?: number;
  canaryReplicas: number;
}

export interface SweptRollout extends StrandedRollout {
  /** What was done, in order. */
  steps: string[];
  /** Set when a step failed: the next sweep tries again. */
  error?: string;
}

export interface SweepResult {
  /** How many canaries with an owner record were looked at. */
  scanned: number;
  swept: SweptRollout[];
  dryRun: boolean;
}
