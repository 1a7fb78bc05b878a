// How the walk stops: each is thrown inside the machine and caught by it; none leaves the workflow.
import type { RolloutEnding } from '../types';

/** Thrown inside the walk to stop it and roll back. */
export class RollbackRequired extends Error {
  constructor(
    public readonly reason: string,
    /** Who or what asks for it: an analysis (`check`), a failed step, a gate's timeout. */
    public readonly ending: RolloutEnding = { kind: 'check' },
  ) {
    super(reason);
  }
}

/** Thrown out of a step that kept failing once a person resolved the rollback by hand (`canary resolve`). */
export class ResolvedByHand extends Error {}

/** Thrown by the preflight when it refuses: the rollout ends as not started, with nothing to roll back. */
export class NotStarted extends Error {}
