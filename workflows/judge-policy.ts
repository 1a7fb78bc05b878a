// The judge's one severity policy (judge-v2.ts): what a round in a check's abort band does, by the check's severity
// and how far its breach has got; and how the actions the rules fire rank into one decision.
import type { Severity } from './analysis-model';
import type { JudgeAction } from './judge-types';

/** What a breach round's severity does this round. */
export type BreachResponse =
  /** Not persisted yet (`for`, `consecutive`): note the progress, hold. */
  | 'wait'
  /** Roll back (critical: at once; high: once persisted). */
  | 'roll back'
  /** `then: approval`: ask a person instead of rolling back (critical, high). */
  | 'ask'
  /** medium, persisted: step traffic back to the previous stage's weight. */
  | 'step back'
  /** medium, stepped back and still breaching after `rollbackAfter`. */
  | 'roll back after step-back'
  /** medium, stepped back, within `rollbackAfter`. */
  | 'wait stepped back'
  /** low, persisted: alert once per breach and keep going. */
  | 'alert'
  /** low, already alerted for this breach. */
  | 'nothing';

/** What the policy reads of a breach. */
export interface BreachFacts {
  /** It has lasted its `for` or its `consecutive` rounds. */
  persisted: boolean;
  /** The abort band says `then: approval`. */
  asks: boolean;
  /**
   * medium: traffic is stepped back for this check, since this long (ms, counting the rounds' slack); undefined
   * when it is not.
   */
  steppedBackFor?: number;
  /** medium: how long a step-back may last before it rolls back (ms). */
  rollbackAfterMs: number;
  /** low: this breach streak has alerted already. */
  alerted: boolean;
}

/**
 * critical → at once (or asks); high → once persisted (or asks); medium → steps back once persisted, rolls back if
 * it lasts rollbackAfter after that; low → alerts once persisted, once per breach.
 */
export const SEVERITY_POLICY: Record<Severity, (b: BreachFacts) => BreachResponse> = {
  critical: (b) => (b.asks ? 'ask' : 'roll back'),
  high: (b) => (!b.persisted ? 'wait' : b.asks ? 'ask' : 'roll back'),
  medium: (b) =>
    !b.persisted
      ? 'wait'
      : b.steppedBackFor === undefined
        ? 'step back'
        : b.steppedBackFor >= b.rollbackAfterMs
          ? 'roll back after step-back'
          : 'wait stepped back',
  low: (b) => (!b.persisted ? 'wait' : b.alerted ? 'nothing' : 'alert'),
};

/** The decision is the strongest action any rule fired. */
export const STRENGTH: Record<JudgeAction, number> = {
  rollback: 5,
  'await-approval': 4,
  'step-back': 3,
  hold: 2,
  alert: 1,
  'advance-ok': 0,
};

/** Kayenta-like precedence of reasons within one strength. */
export const PRECEDENCE = { critical: 1, high: 2, evidence: 3, medium: 4, low: 5, hold: 6 } as const;

/** An action a rule fired for a check, with its reason. */
export interface Fired {
  action: JudgeAction;
  precedence: number;
  reason: string;
  check: string;
}
