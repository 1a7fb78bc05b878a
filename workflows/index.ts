// Entry point of the workflow bundle: only workflow functions are exported here.
export { canaryRollout } from './rollout';
export { canarySweep } from './sweep';
export { canaryRelease } from './release';
export { canaryFleet } from './fleet';
