// The fleet workflow's messages (fleet.ts), shared by the workflow, the rollouts that ask it and the client.
import { defineQuery, defineSignal } from '@temporalio/workflow';
import type { FleetAsk, FleetNotice, FleetStatus, FreezeRequest, LimitRequest } from './fleet-model';

export * from './fleet-model';

export const fleetFreezeSignal = defineSignal<[FreezeRequest]>('fleetFreeze');
export const fleetUnfreezeSignal = defineSignal<[{ identity: string }]>('fleetUnfreeze');
export const fleetAskSignal = defineSignal<[FleetAsk]>('fleetAsk');
/** A namespace's maxConcurrent (`canary fleet limit`): set, or lifted (no max). */
export const fleetLimitSignal = defineSignal<[LimitRequest]>('fleetLimit');
/** From a rollout at its end (any end): the slot it held, or its place in the queue, is given back. */
export const fleetReleaseSignal = defineSignal<[{ workflowId: string }]>('fleetRelease');
export const fleetStatusQuery = defineQuery<FleetStatus>('fleetStatus');
/** The rollout's side: a fleet workflow's answer or news. */
export const fleetNoticeSignal = defineSignal<[FleetNotice]>('fleetNotice');
