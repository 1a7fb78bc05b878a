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
}

export interface FleetCarried {
  freeze?: FleetFreeze;
  /** Rollouts told about the freeze (workflow ids), told again when it changes. */
  members: string[];
}

export interface FleetStatus {
  scope: string;
  workflowId: string;
  freeze?: FleetFreeze;
  /** Rollouts the fleet workflow tells about a freeze (running when last told). */
  members: string[];
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
}

/** From a fleet workflow to a rollout: the scope's freeze now (none: the scope is not frozen). */
export interface FleetNotice {
  /** The fleet workflow's id. */
  fleet: string;
  freeze?: FleetFreeze;
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
