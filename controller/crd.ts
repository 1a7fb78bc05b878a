// The CanaryRollout custom resource (deploy/crds/canaryrollouts.yaml) as the controller reads and writes it.
import type { TargetSpec } from '../workflows/target';

export const GROUP = 'canary.temporal.io';
export const VERSION = 'v1alpha1';
export const PLURAL = 'canaryrollouts';
export const KIND = 'CanaryRollout';
export const API_VERSION = `${GROUP}/${VERSION}`;
/** Held while a rollout the object started may still carry traffic: removed once traffic is back on stable. */
export const FINALIZER = 'canary.temporal.io/rollback';
/** `pause`, `resume` or `promote`: sent to the running rollout, then cleared; the answer is the Request condition. */
export const REQUEST_ANNOTATION = 'canary.temporal.io/request';
export const REQUESTS = ['pause', 'resume', 'promote'] as const;
export type Request = (typeof REQUESTS)[number];

export type OnNewVersion = 'supersede' | 'queue' | 'refuse';

export interface PlanRef {
  inline?: Record<string, unknown>;
  preset?: string;
  configMapRef?: { name: string; key: string };
}

export interface CanaryRolloutSpec {
  target: TargetSpec;
  plan: PlanRef;
  version: string;
  image?: string;
  onNewVersion?: OnNewVersion;
}

export const CONDITION_TYPES = [
  'Progressing',
  'Paused',
  'WaitingForApproval',
  'Promoted',
  'RolledBack',
  'Invalid',
  /** spec.version changed while a rollout ran and onNewVersion is refuse (or the running one is not ours). */
  'NewVersionHeld',
  /** The answer to the last request annotation. */
  'Request',
] as const;
export type ConditionType = (typeof CONDITION_TYPES)[number];

export interface Condition {
  type: ConditionType;
  status: 'True' | 'False' | 'Unknown';
  reason: string;
  message: string;
  lastTransitionTime: string;
  observedGeneration?: number;
}

export interface CanaryRolloutStatus {
  phase?: string;
  stage?: number;
  stageCount?: number;
  weight?: number;
  lastVerdict?: string;
  workflowId?: string;
  /** The first run id of the rollout the controller started (continue-as-new keeps it). */
  runId?: string;
  /** The version of the rollout the status describes; with no runId, a start was asked for (see startRequestedAt). */
  version?: string;
  startRequestedAt?: string;
  startedGeneration?: number;
  message?: string;
  observedGeneration?: number;
  conditions?: Condition[];
}

export interface CanaryRollout {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    namespace: string;
    uid: string;
    generation?: number;
    resourceVersion?: string;
    // Typed as client-node's KubernetesObject says; custom objects arrive as JSON, so these are strings (only
    // their presence is read).
    creationTimestamp?: Date;
    deletionTimestamp?: Date;
    finalizers?: string[];
    annotations?: Record<string, string>;
  };
  spec: CanaryRolloutSpec;
  status?: CanaryRolloutStatus;
}

export const keyOf = (o: { metadata: { namespace?: string; name?: string } }): string =>
  `${o.metadata.namespace ?? ''}/${o.metadata.name ?? ''}`;
