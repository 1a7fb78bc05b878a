// The release workflow's messages, shared by the workflow, its members' rollouts and the client.
import { defineQuery, defineSignal } from '@temporalio/workflow';
import type { ClusterWorkersReport, MemberProgress, ReleaseStatus } from './release-model';

/** From a member's rollout to its release, on every change of phase, stage or weight. */
export const memberProgressSignal = defineSignal<[MemberProgress]>('releaseMemberProgress');
export const releaseAbortSignal = defineSignal<[{ identity: string; reason: string }]>('releaseAbort');
export const releasePauseSignal = defineSignal<[{ identity: string; reason?: string }]>('releasePause');
export const releaseResumeSignal = defineSignal<[{ identity: string }]>('releaseResume');
/** A person's answer to a release held by `onFailure: rollback-member`: go on without the members that rolled back. */
export const releaseContinueSignal =
  defineSignal<[{ identity: string; comment?: string }]>('releaseContinue');
/** From the release's watcher activity (watchClusterWorkers): a cluster's workers went or came back. */
export const clusterWorkersSignal = defineSignal<[ClusterWorkersReport]>('releaseClusterWorkers');
export const releaseStatusQuery = defineQuery<ReleaseStatus>('releaseStatus');
