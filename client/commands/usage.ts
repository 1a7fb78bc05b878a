// The CLI's exit codes, and the error for what the user typed wrong.

/** Success; with `--wait`, the rollout was promoted. */
export const EXIT_OK = 0;
/** With `--wait`: the rollout was rolled back (failed analysis, abort, gate timeout). */
export const EXIT_ROLLED_BACK = 1;
/** Bad input: unknown flag, missing option, invalid plan, update rejected, conflict, unknown rollout id. */
export const EXIT_BAD_INPUT = 2;
/** Temporal cannot be reached, a call timed out, or the workflow ended without an outcome. */
export const EXIT_INFRASTRUCTURE = 3;

export const EXIT_CODES = {
  ok: EXIT_OK,
  rolledBack: EXIT_ROLLED_BACK,
  badInput: EXIT_BAD_INPUT,
  infrastructure: EXIT_INFRASTRUCTURE,
} as const;

/** Something the user typed is wrong; nothing was sent. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}
