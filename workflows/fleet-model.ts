// Fleet controls' words, shared by the fleet workflow (fleet.ts), the rollout machine, and the client: a freeze, the
// fleet workflow's id per scope, and what travels between them. Pure: the messages themselves are in fleet-api.ts.

/** The workflow type of a scope's fleet workflow. */
export const FLEET_WORKFLOW = 'canaryFleet';
/** The scope of an org-wide freeze (every namespace). */
export const ALL_NAMESPACES = '*';

/** A freeze: nothing in its scope advances (or starts traffic) until it is lifted. Times are ISO-8601. */
export interface FleetFreeze {
  /** `*` (every namespace) or one namespace. */
  scope: string;
  by: string;
  reason: string;
  since: string;
  /** When it lifts by itself (a timer in the fleet workflow), if given. */
  until?: string;
}

export interface FleetInput {
  scope: string;
  /** What a run carries to the next across continue-as-new. */
  carried?: FleetCarried;
  /**
   * History length past which a run continues as new once nothing is pending (default 2000, far below Temporal's
   * 10,240-event warning). Only tests lower it, to see the limit and the queue cross a new run; carried to every run.
   */
  continueAfterEvents?: number;
}

export interface FleetCarried {
  freeze?: FleetFreeze;
  /** Rollouts told about the freeze (workflow ids), told again when it changes. */
  members: string[];
  /** The namespace's maxConcurrent and who holds or waits for its slots (absent in runs before the limit). */
  slots?: FleetSlots;
}

/** A namespace's limit on rollouts under way at once (`canary fleet limit`). */
export interface FleetLimit {
  max: number;
  by: string;
  since: string;
}

/** The slots of a namespace: rollouts that hold one (deployed their canary) and those queued for one, in order. */
export interface FleetSlots {
  limit?: FleetLimit;
  holders: string[];
  queue: string[];
}

/** A rollout's place in its namespace's slots: granted, or queued at `position` (1 is next). */
export interface SlotPlace {
  granted: boolean;
  position?: number;
  /** The limit when told (absent: lifted). */
  max?: number;
  /** While queued: the rollouts holding the slots when told (the first MAX_HOLDERS_NAMED; absent from older fleets). */
  holders?: string[];
  /** While queued, when more hold slots than `holders` names: how many do. */
  holderCount?: number;
}

/** How many slot holders a queued rollout is told of by name. */
export const MAX_HOLDERS_NAMED = 5;

/** From the client to a namespace's fleet workflow: set its limit (a count >= 1), or lift it (none). */
export interface LimitRequest {
  identity: string;
  max?: number;
}

export interface FleetStatus {
  scope: string;
  workflowId: string;
  freeze?: FleetFreeze;
  /** Rollouts the fleet workflow tells about a freeze (running when last told). */
  members: string[];
  limit?: FleetLimit;
  /** Rollouts holding a slot, and those queued for one in order (only while a limit was set). */
  holders?: string[];
  queue?: string[];
}

export interface FreezeRequest {
  identity: string;
  reason: string;
  /** ISO-8601; in the future. */
  until?: string;
}

/** From a rollout to its scope's fleet workflow, before it advances: "tell me whether I may". */
export interface FleetAsk {
  workflowId: string;
  /** Before its canary: it asks for a slot too (a namespace with a limit grants it or queues the rollout). */
  slot?: boolean;
}

/** From a fleet workflow to a rollout: the scope's freeze now (none: the scope is not frozen). */
export interface FleetNotice {
  /** The fleet workflow's id. */
  fleet: string;
  freeze?: FleetFreeze;
  /** The rollout's slot, when its namespace has a limit (or had one when it asked). */
  slot?: SlotPlace;
}

/** `canary-fleet/<namespace>`, or `canary-fleet/*` for the org-wide scope. */
export function fleetWorkflowId(scope: string): string {
  return `canary-fleet/${scope}`;
}

/** The fleet workflows a rollout in `namespace` asks before it advances: its namespace's, then the org-wide one. */
export function fleetIdsFor(namespace: string): string[] {
  return [fleetWorkflowId(namespace), fleetWorkflowId(ALL_NAMESPACES)];
}

/** How status and alerts name a freeze: `frozen by alice: incident 42 (until 2026-12-07T18:00:00.000Z)`. */
export function describeFreeze(f: FleetFreeze): string {
  const where = f.scope === ALL_NAMESPACES ? 'every namespace' : `namespace ${f.scope}`;
  return `frozen by ${f.by}: ${f.reason}${f.until ? ` until ${f.until}` : ''} (${where})`;
}

/** A rollout's place in `slots`, if it holds or waits for one. */
export function slotPlace(slots: FleetSlots, id: string): SlotPlace | undefined {
  const max = slots.limit ? { max: slots.limit.max } : {};
  if (slots.holders.includes(id)) return { granted: true, ...max };
  const i = slots.queue.indexOf(id);
  if (i < 0) return undefined;
  const { holders } = slots;
  return {
    granted: false,
    position: i + 1,
    ...max,
    holders: holders.slice(0, MAX_HOLDERS_NAMED),
    ...(holders.length > MAX_HOLDERS_NAMED ? { holderCount: holders.length } : {}),
  };
}

/**
 * One round of a namespace's slots: `asked` (in order of their asks) join the queue unless they hold or wait already
 * (without a limit nobody queues: they go on untracked); `released` leave; then the queue's head gets the free slots,
 * in order. Returns the new slots and the rollouts whose place changed (granted, or moved up in the queue).
 */
export function settleSlots(
  slots: FleetSlots,
  asked: readonly string[],
  released: readonly string[],
): { slots: FleetSlots; moved: string[] } {
  const gone = new Set(released);
  const holders = slots.holders.filter((id) => !gone.has(id));
  const queue = slots.queue.filter((id) => !gone.has(id));
  if (slots.limit) {
    for (const id of asked) {
      if (!gone.has(id) && !holders.includes(id) && !queue.includes(id)) queue.push(id);
    }
  }
  const max = slots.limit?.max ?? Infinity;
  const granted: string[] = [];
  while (queue.length > 0 && holders.length < max) {
    const id = queue.shift()!;
    holders.push(id);
    granted.push(id);
  }
  // Those granted, and those queued before whose position changed (a new ask is answered anyway).
  const moved = [
    ...granted,
    ...queue.filter((id, i) => slots.queue.includes(id) && slots.queue.indexOf(id) !== i),
  ];
  return { slots: { ...(slots.limit ? { limit: slots.limit } : {}), holders, queue }, moved };
}

/** Nothing left to hold: no limit, no slot held, nobody queued. */
export function slotsIdle(slots: FleetSlots): boolean {
  return !slots.limit && slots.holders.length === 0 && slots.queue.length === 0;
}

/** How status names a queued rollout: `queued: position 2 for namespace ns (maxConcurrent 1)`. */
export function describeQueued(place: SlotPlace, namespace: string): string {
  return (
    `queued: position ${place.position ?? 0} for a slot in namespace ${namespace}` +
    (place.max !== undefined ? ` (maxConcurrent ${place.max})` : '')
  );
}
