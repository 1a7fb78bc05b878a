import {
  approvalExpiresAt,
  approvalsNeeded,
  canApprove,
  countedApprovals,
  describeApprovers,
  expiredApprovals,
  gateSatisfied,
  gateTimers,
  mergeApprovalPolicy,
  possibleApprovers,
  recordApproval,
  validateApprovalPolicy,
  validateGateApprovals,
  type ApprovalPolicy,
  type GateApprovalState,
} from '../../workflows/approval-policy';

const at = (iso: string): number => Date.parse(iso);
const EMPTY: GateApprovalState = { approvals: [] };

function policy(spec: unknown): ApprovalPolicy {
  const result = validateApprovalPolicy(spec);
  if (!result.policy) throw new Error(JSON.stringify(result.problems));
  return result.policy;
}

const team = policy({
  approvers: ['alice', 'group:sre'],
  groups: { sre: ['carol', 'dave'] },
});

describe('without a policy (as before)', () => {
  it('lets anyone approve once, and one approval suffices', () => {
    const now = at('2026-03-30T09:00:00Z');
    expect(canApprove(undefined, EMPTY, 'mallory', now)).toEqual({ ok: true });
    expect(canApprove(undefined, EMPTY, 'unknown', now)).toEqual({ ok: true });
    const state = recordApproval(EMPTY, 'mallory', now);
    expect(gateSatisfied(undefined, state, now)).toBe(true);
    expect(canApprove(undefined, state, 'bob', now)).toEqual({
      ok: false,
      reason: 'this gate already has the approval it needs (mallory)',
    });
    expect(gateTimers(undefined, now)).toEqual({});
    expect(describeApprovers(undefined)).toBe('anyone');
  });

  it('still refuses a blank identity', () => {
    expect(canApprove(undefined, EMPTY, '  ', 0)).toEqual({
      ok: false,
      reason: "an approval needs the approver's identity; none was given",
    });
    expect(canApprove(undefined, EMPTY, 'x'.repeat(201), 0)).toEqual({
      ok: false,
      reason: 'an identity must be at most 200 characters, got 201',
    });
  });
});

describe('allow-lists and groups', () => {
  it('lets listed identities and group members approve, and refuses anyone else with the list', () => {
    expect(possibleApprovers(team)).toEqual(['alice', 'carol', 'dave']);
    expect(canApprove(team, EMPTY, 'alice', 0)).toEqual({ ok: true });
    expect(canApprove(team, EMPTY, ' carol ', 0)).toEqual({ ok: true });
    expect(canApprove(team, EMPTY, 'eve', 0)).toEqual({
      ok: false,
      reason: 'eve is not among the approvers of this gate: alice, group:sre (carol, dave)',
    });
    expect(canApprove(team, EMPTY, 'Alice', 0)).toEqual({
      ok: false,
      reason: 'Alice is not among the approvers of this gate: alice, group:sre (carol, dave)',
    });
  });

  it('refuses the identity the CLI records when it cannot tell who is acting', () => {
    expect(canApprove(policy({ required: 2 }), EMPTY, 'unknown', 0)).toEqual({
      ok: false,
      reason:
        'the approver is unknown (no --as, CANARY_IDENTITY, CI actor or OS user); this gate needs a named approver',
    });
  });

  it('records the trimmed identity and the comment', () => {
    expect(recordApproval(EMPTY, ' carol ', 5, 'dashboards look good')).toEqual({
      approvals: [{ identity: 'carol', atMs: 5, comment: 'dashboards look good' }],
    });
  });
});

describe('two-person approval', () => {
  const twoPerson = policy({
    approvers: ['alice', 'group:sre'],
    groups: { sre: ['carol', 'dave'] },
    required: 2,
  });
  const first = at('2026-03-30T09:12:00Z');
  const afterAlice = recordApproval(EMPTY, 'alice', first);

  it('needs two distinct people', () => {
    expect(gateSatisfied(twoPerson, afterAlice, first)).toBe(false);
    expect(approvalsNeeded(twoPerson, afterAlice, first)).toBe(1);
    expect(canApprove(twoPerson, afterAlice, 'alice', first + 60_000)).toEqual({
      ok: false,
      reason:
        'alice already approved this gate at 2026-03-30T09:12:00Z; it needs 1 more approver other than alice',
    });
    const both = recordApproval(afterAlice, 'carol', first + 60_000);
    expect(gateSatisfied(twoPerson, both, first + 60_000)).toBe(true);
    expect(canApprove(twoPerson, both, 'dave', first + 120_000)).toEqual({
      ok: false,
      reason: 'this gate already has the 2 approvals it needs (alice, carol)',
    });
  });

  it('does not count a duplicate that bypassed canApprove, nor someone the policy does not list', () => {
    const sloppy = recordApproval(recordApproval(afterAlice, 'alice', first + 1), 'eve', first + 2);
    expect(countedApprovals(twoPerson, sloppy, first + 3).map((a) => a.identity)).toEqual(['alice']);
    expect(gateSatisfied(twoPerson, sloppy, first + 3)).toBe(false);
  });

  it('says how many more people a three-person gate needs', () => {
    const three = policy({ approvers: ['alice', 'bob', 'carol'], required: 3 });
    expect(canApprove(three, afterAlice, 'alice', first)).toEqual({
      ok: false,
      reason:
        'alice already approved this gate at 2026-03-30T09:12:00Z; it needs 2 more approvers other than alice',
    });
  });
});

describe('expiry', () => {
  const expiring = policy({ approvers: ['alice', 'bob'], required: 2, expiresAfter: '4h' });
  const nine = at('2026-03-30T09:00:00Z');
  const state = recordApproval(EMPTY, 'alice', nine);

  it('stops counting an approval expiresAfter after it was given', () => {
    expect(approvalExpiresAt(expiring, state.approvals[0])).toBe(at('2026-03-30T13:00:00Z'));
    expect(expiredApprovals(expiring, state, at('2026-03-30T12:59:59.999Z'))).toEqual([]);
    expect(expiredApprovals(expiring, state, at('2026-03-30T13:00:00Z'))).toEqual(state.approvals);
    const late = recordApproval(state, 'bob', at('2026-03-30T13:30:00Z'));
    expect(gateSatisfied(expiring, late, at('2026-03-30T13:30:00Z'))).toBe(false);
    expect(gateSatisfied(expiring, late, at('2026-03-30T12:00:00Z'))).toBe(true);
  });

  it('lets a person approve again once the earlier approval expired', () => {
    expect(canApprove(expiring, state, 'alice', at('2026-03-30T12:00:00Z')).ok).toBe(false);
    expect(canApprove(expiring, state, 'alice', at('2026-03-30T13:00:00Z'))).toEqual({ ok: true });
    const again = recordApproval(state, 'alice', at('2026-03-30T13:00:00Z'));
    const both = recordApproval(again, 'bob', at('2026-03-30T13:30:00Z'));
    expect(gateSatisfied(expiring, both, at('2026-03-30T13:30:00Z'))).toBe(true);
    expect(approvalExpiresAt(undefined, state.approvals[0])).toBeUndefined();
  });
});

describe('reminders and escalation', () => {
  it('gives the instants measured from when the gate started waiting', () => {
    const p = policy({ remindAfter: '30m', escalateAfter: '2h' });
    const since = at('2026-03-30T09:00:00Z');
    expect(gateTimers(p, since)).toEqual({
      remindAtMs: at('2026-03-30T09:30:00Z'),
      escalateAtMs: at('2026-03-30T11:00:00Z'),
    });
    expect(gateTimers(policy({ escalateAfter: 'PT1H' }), since)).toEqual({
      escalateAtMs: at('2026-03-30T10:00:00Z'),
    });
  });
});

describe('per-gate policy', () => {
  const base = policy({
    approvers: ['alice', 'bob'],
    groups: { sre: ['carol', 'dave'], dba: ['erin'] },
    expiresAfter: '4h',
    remindAfter: '30m',
  });

  it('replaces the fields the gate names and keeps the rest', () => {
    const result = validateGateApprovals(
      { approvers: ['group:sre'], required: 2 },
      ['stages', 2, 'gate', 'approvals'],
      base,
    );
    expect(result.problems).toEqual([]);
    expect(result.override).toEqual({ approvers: ['group:sre'], required: 2 });
    expect(result.policy).toEqual({
      approvers: ['group:sre'],
      groups: { sre: ['carol', 'dave'], dba: ['erin'] },
      required: 2,
      expiresAfterMs: 4 * 3_600_000,
      remindAfterMs: 30 * 60_000,
    });
    expect(mergeApprovalPolicy(undefined, undefined)).toBeUndefined();
    expect(mergeApprovalPolicy(base, undefined)).toEqual(base);
    expect(mergeApprovalPolicy(undefined, { required: 2 })).toEqual({ groups: {}, required: 2 });
  });

  it("checks a gate's fields against the plan's groups and the merged result", () => {
    const result = validateGateApprovals(
      { approvers: ['group:sr', 'group:ops'], groups: { ops: ['x'] }, escalateAfter: '10m' },
      ['stages', 2, 'gate', 'approvals'],
      base,
    );
    expect(result.problems).toEqual([
      {
        path: 'stages[2].gate.approvals.approvers[0]',
        message: 'unknown group "sr" (did you mean "group:sre"?)',
      },
      {
        path: 'stages[2].gate.approvals.approvers[1]',
        message: 'unknown group "ops"; declared groups: sre, dba',
      },
      {
        path: 'stages[2].gate.approvals.groups',
        message:
          "groups are declared once, in the plan's approvals section; reference them here as group:<name>",
      },
      {
        path: 'stages[2].gate.approvals.escalateAfter',
        message: 'must be longer than remindAfter (30m), so the reminder comes first; got 10m',
      },
    ]);
    expect(validateGateApprovals({ required: 3 }, ['stages', 0, 'gate', 'approvals'], base).problems).toEqual(
      [
        {
          path: 'stages[0].gate.approvals.required',
          message: 'needs 3 distinct approvers, but only 2 can approve: alice, bob',
        },
      ],
    );
    expect(
      validateGateApprovals({ approvers: ['group:sre'] }, ['stages', 0, 'gate', 'approvals'], undefined)
        .problems,
    ).toEqual([
      {
        path: 'stages[0].gate.approvals.approvers[0]',
        message: 'unknown group "sre": no groups are declared (declare them under approvals.groups)',
      },
    ]);
    expect(validateGateApprovals({ requird: 2 }, ['stages', 0, 'gate', 'approvals'], base).problems).toEqual([
      {
        path: 'stages[0].gate.approvals.requird',
        message: 'unknown field "requird" (did you mean "required"?)',
      },
    ]);
  });
});

describe('validateApprovalPolicy', () => {
  it('normalises a valid section', () => {
    expect(
      validateApprovalPolicy({
        approvers: [' alice ', 'group:sre'],
        groups: { sre: ['carol', 'dave '] },
        required: 2,
        expiresAfter: '4h',
        remindAfter: '30m',
        escalateAfter: '2h',
      }),
    ).toEqual({
      policy: {
        approvers: ['alice', 'group:sre'],
        groups: { sre: ['carol', 'dave'] },
        required: 2,
        expiresAfterMs: 4 * 3_600_000,
        remindAfterMs: 30 * 60_000,
        escalateAfterMs: 2 * 3_600_000,
      },
      problems: [],
    });
    expect(validateApprovalPolicy({})).toEqual({ policy: { groups: {}, required: 1 }, problems: [] });
  });

  it('lists every problem by path, in document order', () => {
    const result = validateApprovalPolicy({
      approvers: ['alice', 'alice', '', 'group:', 'group:sre', 'group:nope', 'unknown', 42, 'x'.repeat(201)],
      groups: { sre: ['carol', 'carol', 'group:dba'], empty: [], 'sre team': ['x'], dba: 'erin' },
      required: 0,
      expiresAfter: 'soon',
      remindAfter: '3h',
      escalateAfter: '2h',
      escalateAftr: '1h',
    });
    expect(result.policy).toBeUndefined();
    expect(result.problems).toEqual([
      { path: 'approvals.approvers[1]', message: '"alice" is listed twice (also approvals.approvers[0])' },
      { path: 'approvals.approvers[2]', message: 'must not be empty' },
      { path: 'approvals.approvers[3]', message: 'names no group after group:' },
      {
        path: 'approvals.approvers[5]',
        message: 'unknown group "nope"; declared groups: sre, empty, sre team',
      },
      {
        path: 'approvals.approvers[6]',
        message:
          '"unknown" is what canary records when it cannot tell who is acting; it cannot be an approver',
      },
      {
        path: 'approvals.approvers[7]',
        message: 'must be an identity (a name, as approvers give it), got 42',
      },
      { path: 'approvals.approvers[8]', message: 'must be at most 200 characters, got 201' },
      { path: 'approvals.groups.sre[1]', message: '"carol" is listed twice (also approvals.groups.sre[0])' },
      {
        path: 'approvals.groups.sre[2]',
        message: 'groups cannot contain groups; list the members of group:dba instead',
      },
      { path: 'approvals.groups.empty', message: 'lists no members' },
      {
        path: 'approvals.groups.sre team',
        message: "group name \"sre team\" must be letters, digits, '.', '_' or '-' (at most 100)",
      },
      { path: 'approvals.groups.dba', message: 'must be a list of identities, got "erin"' },
      { path: 'approvals.required', message: 'must be a whole number of at least 1, got 0' },
      {
        path: 'approvals.expiresAfter',
        message:
          'invalid duration "soon": expected a number followed by a unit; use 90s, 15m, 1h30m or ISO-8601 like PT1H30M',
      },
      {
        path: 'approvals.remindAfter',
        message: 'must be shorter than escalateAfter (2h), so the reminder comes first; got 3h',
      },
      {
        path: 'approvals.escalateAftr',
        message: 'unknown field "escalateAftr" (did you mean "escalateAfter"?)',
      },
    ]);
  });

  it('refuses more required approvers than can approve, an empty list and a section that is not an object', () => {
    expect(
      validateApprovalPolicy({
        approvers: ['alice', 'group:sre'],
        groups: { sre: ['alice', 'carol'] },
        required: 3,
      }).problems,
    ).toEqual([
      {
        path: 'approvals.required',
        message: 'needs 3 distinct approvers, but only 2 can approve: alice, carol',
      },
    ]);
    expect(validateApprovalPolicy({ approvers: [] }).problems).toEqual([
      {
        path: 'approvals.approvers',
        message: 'lists no approvers, so nobody could approve; leave approvers out to let anyone approve',
      },
    ]);
    expect(
      validateApprovalPolicy({ approvers: Array.from({ length: 51 }, (_, i) => `p${i}`) }).problems,
    ).toEqual([{ path: 'approvals.approvers', message: 'lists 51 approvers; at most 50 are allowed' }]);
    expect(validateApprovalPolicy(['alice']).problems).toEqual([
      {
        path: 'approvals',
        message: 'must be an object with approvers, groups, required and durations, got a list',
      },
    ]);
    expect(validateApprovalPolicy({ required: 2.5, remindAfter: '0s' }).problems).toEqual([
      { path: 'approvals.required', message: 'must be a whole number of at least 1, got 2.5' },
      { path: 'approvals.remindAfter', message: 'must be more than 0s' },
    ]);
  });

  it('looks groups up as plain data: a group may be called constructor, and toString is no group', () => {
    const p = policy({ approvers: ['group:constructor'], groups: { constructor: ['zoe'] } });
    expect(possibleApprovers(p)).toEqual(['zoe']);
    expect(canApprove(p, EMPTY, 'zoe', 0)).toEqual({ ok: true });
    expect(validateApprovalPolicy({ approvers: ['group:toString'] }).problems).toEqual([
      {
        path: 'approvals.approvers[0]',
        message: 'unknown group "toString": no groups are declared (declare them under approvals.groups)',
      },
    ]);
  });
});
