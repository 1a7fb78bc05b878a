// The fleet workflow's messages (fleet.ts), shared by the workflow, the rollouts that ask it and the client.
import { defineQuery, defineSignal } from '@temporalio/workflow';
import type { FleetAsk, FleetNotice, FleetStatus, FreezeRequest } from './fleet-model';

export * from './fleet-model';

export const fleetFreezeSignal = defineSignal<[FreezeRequest]>('fleetFreeze');
export const fleetUnfreezeSignal = defineSignal<[{ identity: string }]>('fleetUnfreeze');
export const fleetAskSignal = defineSignal<[FleetAsk]>('fleetAsk');
export const fleetStatusQuery = defineQuery<FleetStatus>('fleetStatus');
/** The rollout's side: a fleet workflow's answer or news. */
export const fleetNoticeSignal = defineSignal<[FleetNotice]>('fleetNotice');
