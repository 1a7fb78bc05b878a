// Who may approve an approval gate, how many distinct people it needs, how long an approval stays good, and when
// a waiting gate reminds and escalates. Pure and deterministic, for the workflow sandbox (the approve Update's
// validator) and the client alike: every function takes the current time as a parameter.
//
// An identity is only as trustworthy as the channel it came through. The workflow sees the name the client
// sends; what stops someone from sending another person's name is the Temporal namespace's authorization:
// mTLS client certificates or API keys, with a claim mapper / authorizer that lets only the right people send
// Updates to rollouts (the worker and the client support both). Without that, or signed requests (identity.ts:
// the worker verifies who sent them), an allow-list guards against mistakes, not against impostors.
//
// Without a policy everything behaves as before: anyone may approve and one approval suffices.
import { z } from 'zod';
import { formatDuration } from './duration';
import { CLAIM_GROUP_PREFIX, entryAdmits } from './identity';
import {
  Collector,
  byHand,
  checkDuration,
  describe,
  distance,
  formatPath,
  isObject,
  sortedProblems,
  typeError,
  type InputProblem,
  type Obj,
  type Segment,
} from './problems';

// ---------------------------------------------------------------------------------------------------------------
// As written, and normalised

/** An entry of `approvers` that stands for every member of a group declared under `groups`. */
export const GROUP_PREFIX = 'group:';

/** What the CLI records when it cannot tell who is acting; never an approver under a policy. */
export const UNKNOWN_IDENTITY = 'unknown';

export const APPROVAL_LIMITS = { approvers: 50, groups: 50, members: 100, identityLength: 200 } as const;

/** The plan's `approvals:` section as written. */
export interface ApprovalPolicySpec {
  /** Identities and `group:<name>` references; absent means anyone may approve. */
  approvers?: string[];
  /** Group name → identities; referenced as `group:<name>` from approvers (here or in a gate). */
  groups?: Record<string, string[]>;
  /** Distinct approvers a gate needs (default 1). */
  required?: number;
  /** An approval no longer counts this long after it was given (durations as in the rest of the plan). */
  expiresAfter?: string;
  /** A waiting gate sends a reminder after this long... */
  remindAfter?: string;
  /** ...and escalates after this long. */
  escalateAfter?: string;
  /** Only verified identities (a signed request, workflows/identity.ts) may approve, promote, pause, resume, abort. */
  verified?: boolean;
}

/** A gate's own `approvals:` (inside `gate: { type: approval, approvals: ... }`): replaces the plan's fields it names. */
export type GateApprovalSpec = Omit<ApprovalPolicySpec, 'groups'>;

/** A validated policy, plain data (JSON-safe). */
export interface ApprovalPolicy {
  /** Trimmed identities and `group:<name>` references, as listed; absent means anyone may approve. */
  approvers?: string[];
  groups: Record<string, string[]>;
  required: number;
  expiresAfterMs?: number;
  remindAfterMs?: number;
  escalateAfterMs?: number;
  verified?: true;
}

/** A validated gate override: the fields the gate sets itself. */
export type GateApprovalOverride = Partial<Omit<ApprovalPolicy, 'groups'>>;

/** One approval given at a gate. */
export interface GivenApproval {
  identity: string;
  /** A verified token's groups (`oidc-group:` entries admit by them). */
  groups?: string[];
  atMs: number;
  comment?: string;
}

/** The approvals given at one gate so far, oldest first (expired ones stay, for the record). */
export interface GateApprovalState {
  approvals: GivenApproval[];
}

export type ApprovalCheck = { ok: true } | { ok: false; reason: string };

// ---------------------------------------------------------------------------------------------------------------
// Structure (zod) and known fields

const identityList = z.array(byHand<string>(), typeError('a list of identities and group:<name> references'));

const gateShape = {
  approvers: identityList.optional(),
  required: z.number(typeError('a whole number of at least 1')).optional(),
  expiresAfter: byHand<string>().optional(),
  remindAfter: byHand<string>().optional(),
  escalateAfter: byHand<string>().optional(),
  verified: z.boolean(typeError('true or false')).optional(),
};

const policySchema = z.strictObject(
  {
    approvers: gateShape.approvers,
    groups: z
      .record(
        z.string(),
        z.array(byHand<string>(), typeError('a list of identities')),
        typeError('an object mapping group names to lists of identities'),
      )
      .optional(),
    required: gateShape.required,
    expiresAfter: gateShape.expiresAfter,
    remindAfter: gateShape.remindAfter,
    escalateAfter: gateShape.escalateAfter,
    verified: gateShape.verified,
  },
  typeError('an object with approvers, groups, required, expiresAfter, remindAfter and escalateAfter'),
);

const gateSchema = z.strictObject(
  { ...gateShape, groups: byHand<unknown>().optional() },
  typeError('an object with approvers, required, expiresAfter, remindAfter and escalateAfter'),
);

/** Known fields for "did you mean", by path pattern: `base` for the plan's section, `gateBase` for a gate's. */
export function approvalPolicyKnownFields(
  base = 'approvals',
  gateBase = 'stages.*.gate.approvals',
): Record<string, readonly string[]> {
  return {
    [base]: Object.keys(policySchema.shape),
    [gateBase]: Object.keys(gateShape),
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Validation

/** A list holding `inner` at `index`, so problems under `stages[2]` sort by the document's own positions. */
function placeAt(index: number, inner: unknown): unknown[] {
  const list: unknown[] = [];
  list[index] = inner;
  return list;
}

export interface ApprovalPolicyValidation {
  policy?: ApprovalPolicy;
  problems: InputProblem[];
}

export interface GateApprovalValidation {
  override?: GateApprovalOverride;
  /** The policy the gate applies: the plan's merged with the gate's own fields. */
  policy?: ApprovalPolicy;
  problems: InputProblem[];
}

function finish<T extends object>(
  c: Collector,
  spec: unknown,
  path: Segment[],
  ok: T,
): T | { problems: InputProblem[] } {
  if (c.problems.length === 0) return ok;
  const root = path.reduceRight<unknown>(
    (inner, s) => (typeof s === 'number' ? placeAt(s, inner) : { [s]: inner }),
    spec,
  );
  return { problems: sortedProblems(root, c.problems) };
}

function patternOf(path: Segment[]): string {
  return path.map((s) => (typeof s === 'number' ? '*' : s)).join('.');
}

/** Validates the plan's `approvals:` section, with paths under `path`; `policy` is set when there are no problems. */
export function validateApprovalPolicy(
  spec: unknown,
  path: Segment[] = ['approvals'],
): ApprovalPolicyValidation {
  const c = new Collector(approvalPolicyKnownFields(patternOf(path)));
  const policy = collectApprovalPolicy(c, spec, path);
  return finish(c, spec, path, { policy, problems: [] });
}

/**
 * Validates a gate's own `approvals:` against the plan's policy (whose groups it may reference); `policy` is the
 * merged policy the gate applies.
 */
export function validateGateApprovals(
  spec: unknown,
  path: Segment[],
  base: ApprovalPolicy | undefined,
): GateApprovalValidation {
  const c = new Collector(approvalPolicyKnownFields('approvals', patternOf(path)));
  const override = collectGateApprovals(c, spec, path, base);
  return finish(c, spec, path, {
    override,
    policy: override ? mergeApprovalPolicy(base, override) : undefined,
    problems: [],
  });
}

/** validateApprovalPolicy into a caller's Collector (validatePlan); returns the policy when this section is valid. */
export function collectApprovalPolicy(
  c: Collector,
  spec: unknown,
  path: Segment[] = ['approvals'],
): ApprovalPolicy | undefined {
  if (!isObject(spec)) {
    c.add(path, `must be an object with approvers, groups, required and durations, got ${describe(spec)}`);
    return undefined;
  }
  const before = c.problems.length;
  c.structure(policySchema, spec, path);
  const groups = isObject(spec.groups) ? checkGroups(c, spec.groups, [...path, 'groups']) : {};
  const fields = checkCommon(c, spec, path, groups, [...path, 'groups']);
  const policy: ApprovalPolicy = { groups, required: fields.required ?? 1, ...withoutRequired(fields) };
  checkConsistency(c, policy, path, spec);
  return c.problems.length > before ? undefined : policy;
}

/** validateGateApprovals into a caller's Collector; returns the gate's own fields when they are valid. */
export function collectGateApprovals(
  c: Collector,
  spec: unknown,
  path: Segment[],
  base: ApprovalPolicy | undefined,
): GateApprovalOverride | undefined {
  if (!isObject(spec)) {
    c.add(path, `must be an object with approvers, required and durations, got ${describe(spec)}`);
    return undefined;
  }
  const before = c.problems.length;
  c.structure(gateSchema, spec, path);
  if (spec.groups !== undefined) {
    c.add(
      [...path, 'groups'],
      "groups are declared once, in the plan's approvals section; reference them here as group:<name>",
    );
  }
  const override = checkCommon(c, spec, path, base?.groups ?? {}, ['approvals', 'groups']);
  // Cross-field rules on what the gate will apply, reported where the gate sets one of the fields.
  checkConsistency(c, mergeApprovalPolicy(base, override), path, spec);
  return c.problems.length > before ? undefined : override;
}

function withoutRequired(o: GateApprovalOverride): Omit<GateApprovalOverride, 'required'> {
  const { required: _required, ...rest } = o;
  return rest;
}

/** The fields a policy and a gate share. */
function checkCommon(
  c: Collector,
  spec: Obj,
  path: Segment[],
  groups: Record<string, string[]>,
  groupsPath: Segment[],
): GateApprovalOverride {
  const out: GateApprovalOverride = {};
  if (Array.isArray(spec.approvers)) {
    const approvers = checkApprovers(c, spec.approvers, [...path, 'approvers'], groups, groupsPath);
    if (approvers) out.approvers = approvers;
  }
  if (typeof spec.required === 'number') {
    if (Number.isInteger(spec.required) && spec.required >= 1) out.required = spec.required;
    else c.add([...path, 'required'], `must be a whole number of at least 1, got ${spec.required}`);
  }
  if (spec.verified === true) out.verified = true;
  for (const [field, key] of [
    ['expiresAfter', 'expiresAfterMs'],
    ['remindAfter', 'remindAfterMs'],
    ['escalateAfter', 'escalateAfterMs'],
  ] as const) {
    if (spec[field] === undefined) continue;
    const ms = checkDuration(c, spec[field], [...path, field]);
    if (ms !== undefined) out[key] = ms;
  }
  return out;
}

/** A trimmed identity, or undefined after recording what is wrong with it. */
function checkIdentity(c: Collector, value: unknown, path: Segment[]): string | undefined {
  if (typeof value !== 'string') {
    c.add(path, `must be an identity (a name, as approvers give it), got ${describe(value)}`);
    return undefined;
  }
  const id = value.trim();
  if (id === '') c.add(path, 'must not be empty');
  else if (id.length > APPROVAL_LIMITS.identityLength) {
    c.add(path, `must be at most ${APPROVAL_LIMITS.identityLength} characters, got ${id.length}`);
  } else if (id === UNKNOWN_IDENTITY) {
    c.add(
      path,
      `"${UNKNOWN_IDENTITY}" is what canary records when it cannot tell who is acting; it cannot be an approver`,
    );
  } else return id;
  return undefined;
}

const GROUP_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

function checkGroups(c: Collector, spec: Obj, path: Segment[]): Record<string, string[]> {
  const names = Object.keys(spec);
  if (names.length > APPROVAL_LIMITS.groups) {
    c.add(path, `declares ${names.length} groups; at most ${APPROVAL_LIMITS.groups} are allowed`);
    return {};
  }
  const entries: Array<[string, string[]]> = [];
  for (const name of names) {
    const members = spec[name];
    if (!GROUP_NAME.test(name) || name.length > 100) {
      c.add(
        [...path, name],
        `group name ${describe(name)} must be letters, digits, '.', '_' or '-' (at most 100)`,
      );
    }
    if (!Array.isArray(members)) continue; // reported by the structure check
    const memberPath = [...path, name];
    if (members.length === 0) c.add(memberPath, 'lists no members');
    if (members.length > APPROVAL_LIMITS.members) {
      c.add(memberPath, `lists ${members.length} members; at most ${APPROVAL_LIMITS.members} are allowed`);
      continue;
    }
    const seen = new Map<string, number>();
    members.forEach((member, i) => {
      if (typeof member === 'string' && member.trim().startsWith(GROUP_PREFIX)) {
        c.add(
          [...memberPath, i],
          `groups cannot contain groups; list the members of ${member.trim()} instead`,
        );
        return;
      }
      const id = checkIdentity(c, member, [...memberPath, i]);
      if (id === undefined) return;
      const first = seen.get(id);
      if (first !== undefined)
        c.add([...memberPath, i], `"${id}" is listed twice (also ${formatPath([...memberPath, first])})`);
      else seen.set(id, i);
    });
    entries.push([name, [...seen.keys()]]);
  }
  // Own properties only (looked up with Object.hasOwn), so a group called "constructor" stays plain data.
  return Object.fromEntries(entries);
}

function checkApprovers(
  c: Collector,
  list: unknown[],
  path: Segment[],
  groups: Record<string, string[]>,
  groupsPath: Segment[],
): string[] | undefined {
  if (list.length === 0) {
    c.add(path, 'lists no approvers, so nobody could approve; leave approvers out to let anyone approve');
    return undefined;
  }
  if (list.length > APPROVAL_LIMITS.approvers) {
    c.add(path, `lists ${list.length} approvers; at most ${APPROVAL_LIMITS.approvers} are allowed`);
    return undefined;
  }
  const before = c.problems.length;
  const seen = new Map<string, number>();
  list.forEach((entry, i) => {
    const id = checkIdentity(c, entry, [...path, i]);
    if (id === undefined) return;
    if (id.startsWith(CLAIM_GROUP_PREFIX) && id.length === CLAIM_GROUP_PREFIX.length) {
      c.add([...path, i], `names no group after ${CLAIM_GROUP_PREFIX}`);
      return;
    }
    if (id.startsWith(GROUP_PREFIX)) {
      const name = id.slice(GROUP_PREFIX.length).trim();
      if (name === '') {
        c.add([...path, i], `names no group after ${GROUP_PREFIX}`);
        return;
      }
      if (!Object.hasOwn(groups, name)) {
        c.add([...path, i], unknownGroup(name, groups, groupsPath));
        return;
      }
    }
    const first = seen.get(id);
    if (first !== undefined)
      c.add([...path, i], `"${id}" is listed twice (also ${formatPath([...path, first])})`);
    else seen.set(id, i);
  });
  return c.problems.length > before ? undefined : [...seen.keys()];
}

function unknownGroup(name: string, groups: Record<string, string[]>, groupsPath: Segment[]): string {
  const declared = Object.keys(groups);
  if (declared.length === 0)
    return `unknown group "${name}": no groups are declared (declare them under ${formatPath(groupsPath)})`;
  const close = declared.find(
    (g) => distance(g.toLowerCase(), name.toLowerCase()) <= Math.max(1, Math.floor(name.length / 3)),
  );
  return close
    ? `unknown group "${name}" (did you mean "${GROUP_PREFIX}${close}"?)`
    : `unknown group "${name}"; declared groups: ${declared.join(', ')}`;
}

/** Rules across fields, reported at a field `spec` sets (so a gate does not repeat the plan's problems). */
function checkConsistency(
  c: Collector,
  policy: ApprovalPolicy | undefined,
  path: Segment[],
  spec: Obj,
): void {
  if (!policy) return;
  const possible = possibleApprovers(policy);
  // A token's group admits people nobody can count here.
  const claims = policy.approvers?.some((a) => a.startsWith(CLAIM_GROUP_PREFIX)) ?? false;
  if (possible !== undefined && !claims && policy.required > possible.length) {
    const at =
      spec.required !== undefined ? 'required' : spec.approvers !== undefined ? 'approvers' : undefined;
    if (at) {
      c.add(
        [...path, at],
        `needs ${policy.required} distinct approvers, but only ${possible.length} can approve: ${possible.join(', ')}`,
      );
    }
  }
  const { remindAfterMs: remind, escalateAfterMs: escalate } = policy;
  if (remind !== undefined && escalate !== undefined && remind >= escalate) {
    const at =
      spec.remindAfter !== undefined
        ? 'remindAfter'
        : spec.escalateAfter !== undefined
          ? 'escalateAfter'
          : undefined;
    if (at === 'remindAfter') {
      c.add(
        [...path, at],
        `must be shorter than escalateAfter (${text(spec.escalateAfter, escalate)}), so the reminder comes first; got ${text(spec.remindAfter, remind)}`,
      );
    } else if (at === 'escalateAfter') {
      c.add(
        [...path, at],
        `must be longer than remindAfter (${text(spec.remindAfter, remind)}), so the reminder comes first; got ${text(spec.escalateAfter, escalate)}`,
      );
    }
  }
}

function text(written: unknown, ms: number): string {
  return written === undefined ? formatDuration(ms) : String(written);
}

// ---------------------------------------------------------------------------------------------------------------
// The policy a gate applies

/** The plan's policy with a gate's own fields on top; undefined when neither says anything. */
export function mergeApprovalPolicy(
  base: ApprovalPolicy | undefined,
  override: GateApprovalOverride | undefined,
): ApprovalPolicy | undefined {
  if (!base && !override) return undefined;
  const merged: ApprovalPolicy = { ...(base ?? { groups: {}, required: 1 }) };
  for (const [key, value] of Object.entries(override ?? {})) {
    if (value !== undefined) (merged as unknown as Record<string, unknown>)[key] = value;
  }
  return merged;
}

/** Everyone who may approve, distinct, in listed order; undefined when anyone may. */
export function possibleApprovers(policy: ApprovalPolicy | undefined): string[] | undefined {
  if (!policy?.approvers) return undefined;
  const out = new Set<string>();
  for (const entry of policy.approvers) {
    for (const id of expand(policy, entry)) out.add(id);
  }
  return [...out];
}

function expand(policy: ApprovalPolicy, entry: string): string[] {
  if (!entry.startsWith(GROUP_PREFIX)) return [entry];
  const name = entry.slice(GROUP_PREFIX.length);
  return Object.hasOwn(policy.groups, name) ? policy.groups[name] : [];
}

/** `bob, group:sre (carol, dave)`, or `anyone`. */
export function describeApprovers(policy: ApprovalPolicy | undefined): string {
  if (!policy?.approvers) return 'anyone';
  return policy.approvers
    .map((entry) =>
      entry.startsWith(GROUP_PREFIX) ? `${entry} (${expand(policy, entry).join(', ')})` : entry,
    )
    .join(', ');
}

/**
 * Whether this identity may approve under the policy (anyone may without a policy or an approvers list); a verified
 * principal is admitted by its bare name too, and by a token group named `oidc-group:<name>` (workflows/identity.ts).
 */
export function mayApprove(
  policy: ApprovalPolicy | undefined,
  identity: string,
  groups?: readonly string[],
): boolean {
  const possible = possibleApprovers(policy);
  return possible === undefined || possible.some((entry) => entryAdmits(entry, identity, groups));
}

// ---------------------------------------------------------------------------------------------------------------
// Approvals at a waiting gate

function isExpired(policy: ApprovalPolicy | undefined, approval: GivenApproval, atMs: number): boolean {
  return policy?.expiresAfterMs !== undefined && atMs >= approval.atMs + policy.expiresAfterMs;
}

/** When an approval stops counting; undefined when approvals do not expire. */
export function approvalExpiresAt(
  policy: ApprovalPolicy | undefined,
  approval: GivenApproval,
): number | undefined {
  return policy?.expiresAfterMs === undefined ? undefined : approval.atMs + policy.expiresAfterMs;
}

/** The approvals that no longer count at atMs, oldest first. */
export function expiredApprovals(
  policy: ApprovalPolicy | undefined,
  state: GateApprovalState,
  atMs: number,
): GivenApproval[] {
  return state.approvals.filter((a) => isExpired(policy, a, atMs));
}

/** The latest unexpired approval of each allowed approver, oldest first: what counts toward the gate. */
export function countedApprovals(
  policy: ApprovalPolicy | undefined,
  state: GateApprovalState,
  atMs: number,
): GivenApproval[] {
  const latest = new Map<string, GivenApproval>();
  for (const a of state.approvals) {
    if (!isExpired(policy, a, atMs) && mayApprove(policy, a.identity, a.groups)) {
      latest.delete(a.identity);
      latest.set(a.identity, a);
    }
  }
  return [...latest.values()];
}

/** How many more distinct approvers the gate needs at atMs (0 when it is satisfied). */
export function approvalsNeeded(
  policy: ApprovalPolicy | undefined,
  state: GateApprovalState,
  atMs: number,
): number {
  return Math.max(0, (policy?.required ?? 1) - countedApprovals(policy, state, atMs).length);
}

/** Whether enough distinct, unexpired approvals have been given. */
export function gateSatisfied(
  policy: ApprovalPolicy | undefined,
  state: GateApprovalState,
  atMs: number,
): boolean {
  return approvalsNeeded(policy, state, atMs) === 0;
}

function isoSeconds(ms: number): string {
  return new Date(ms).toISOString().replace(/\.000Z$/, 'Z');
}

function approvers(n: number): string {
  return n === 1 ? '1 more approver' : `${n} more approvers`;
}

/**
 * Whether `identity` may approve the gate now; for the approve Update's validator. Refuses a blank identity, and
 * under a policy "unknown", anyone not listed, a second approval by the same person, and a gate that already
 * has what it needs.
 */
export function canApprove(
  policy: ApprovalPolicy | undefined,
  state: GateApprovalState,
  identity: string,
  atMs: number,
  groups?: readonly string[],
): ApprovalCheck {
  const who = identity.trim();
  if (who === '') return { ok: false, reason: "an approval needs the approver's identity; none was given" };
  if (who.length > APPROVAL_LIMITS.identityLength) {
    return {
      ok: false,
      reason: `an identity must be at most ${APPROVAL_LIMITS.identityLength} characters, got ${who.length}`,
    };
  }
  if (policy && who === UNKNOWN_IDENTITY) {
    return {
      ok: false,
      reason:
        'the approver is unknown (no --as, CANARY_IDENTITY, CI actor or OS user); this gate needs a named approver',
    };
  }
  if (!mayApprove(policy, who, groups)) {
    return {
      ok: false,
      reason: `${who} is not among the approvers of this gate: ${describeApprovers(policy)}`,
    };
  }
  const counted = countedApprovals(policy, state, atMs);
  const needed = approvalsNeeded(policy, state, atMs);
  if (needed === 0) {
    const n = counted.length;
    return {
      ok: false,
      reason: `this gate already has the ${n === 1 ? 'approval' : `${n} approvals`} it needs (${counted.map((a) => a.identity).join(', ')})`,
    };
  }
  const mine = counted.find((a) => a.identity === who);
  if (mine) {
    return {
      ok: false,
      reason: `${who} already approved this gate at ${isoSeconds(mine.atMs)}; it needs ${approvers(needed)} other than ${who}`,
    };
  }
  return { ok: true };
}

/** The state with one more approval (identity trimmed); call canApprove first. */
export function recordApproval(
  state: GateApprovalState,
  identity: string,
  atMs: number,
  comment?: string,
  groups?: readonly string[],
): GateApprovalState {
  const approval: GivenApproval = {
    identity: identity.trim(),
    atMs,
    ...(comment ? { comment } : {}),
    ...(groups ? { groups: [...groups] } : {}),
  };
  return { approvals: [...state.approvals, approval] };
}

/** When a gate that has waited since waitingSinceMs reminds and escalates (each absent when the policy has none). */
export function gateTimers(
  policy: ApprovalPolicy | undefined,
  waitingSinceMs: number,
): { remindAtMs?: number; escalateAtMs?: number } {
  return {
    ...(policy?.remindAfterMs !== undefined ? { remindAtMs: waitingSinceMs + policy.remindAfterMs } : {}),
    ...(policy?.escalateAfterMs !== undefined
      ? { escalateAtMs: waitingSinceMs + policy.escalateAfterMs }
      : {}),
  };
}

/**
 * Whether a promotion request by `identity` may pass a gate it would skip (`name`: `stage 3`, `the promotion`).
 * Skipping a gate approves it, so it needs what `approve` needs: the approvals the gate holds now (none for a gate
 * not reached yet) together with the requester's must reach the gate's `required`, each from an allowed approver.
 * Undefined when it may; otherwise why not, and what would let it.
 */
export function promotionRefusal(
  policy: ApprovalPolicy,
  state: GateApprovalState | undefined,
  identity: string,
  atMs: number,
  name: string,
  groups?: readonly string[],
): string | undefined {
  const who = identity.trim();
  if (who === '' || who === UNKNOWN_IDENTITY || !mayApprove(policy, who, groups)) {
    return (
      `cannot promote: ${who || 'an unnamed caller'} may not approve the gate of ${name} ` +
      `(approvers: ${describeApprovers(policy)}), which a promotion would skip`
    );
  }
  const counted = countedApprovals(policy, state ?? { approvals: [] }, atMs).map((a) => a.identity);
  const together = new Set([...counted, who]);
  if (together.size >= policy.required) return undefined;
  const has =
    counted.length === 0
      ? state
        ? 'it has no approval yet'
        : 'it is not waiting yet, so it has no approval'
      : `it has ${counted.length} (${counted.join(', ')})`;
  const adds = counted.includes(who) ? `${who} approved it already` : `${who}'s own counts as one`;
  const more = policy.required - together.size;
  return (
    `cannot promote: the gate of ${name} needs ${policy.required} distinct approvals (approvers: ` +
    `${describeApprovers(policy)}); ${has} and ${adds}, so ${approvers(more)} must approve it first ` +
    `(a promotion skips a gate only with the approvals the gate itself needs)`
  );
}
