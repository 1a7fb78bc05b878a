// Verified identities in plans and policies (pure): `approvals.verified`, `oidc-group:` entries, principals admitted
// by their bare name, and what the rollout refuses before any verification.
import {
  canApprove,
  mayApprove,
  recordApproval,
  validateApprovalPolicy,
  validateGateApprovals,
  type ApprovalPolicy,
} from '../../workflows/approval-policy';
import { claimsVerified, entryAdmits } from '../../workflows/identity';
import {
  identityRefusal,
  rememberNonce,
  verificationDemand,
  verifiedRefusal,
} from '../../workflows/identity-policy';
import { carryOver, initialState, migrateCarried } from '../../workflows/machine/state';
import type { RolloutView } from '../../workflows/machine/views';
import { validatePlan, type PlanSpec } from '../../workflows/plan';

function policy(spec: unknown): ApprovalPolicy {
  const r = validateApprovalPolicy(spec);
  if (!r.policy) throw new Error(JSON.stringify(r.problems));
  return r.policy;
}

/** The parts of a rollout's view the identity policy reads. */
function view(plan: PlanSpec, s: Record<string, unknown> = {}): RolloutView {
  const r = validatePlan(plan);
  if (!r.ok) throw new Error(JSON.stringify(r.problems));
  const stage = r.plan.stages[1];
  return {
    s,
    plan: r.plan,
    gatePolicy: () => (stage.gate.type === 'approval' ? stage.gate.policy : undefined),
  } as unknown as RolloutView;
}

const stages = (gate: Record<string, unknown> = {}) => [
  { weight: 10, hold: '1h' },
  { weight: 50, hold: '1h', gate: { type: 'approval', approvals: gate } },
  { weight: 100 },
];

test('approvals.verified is a boolean on the plan and on a gate, merged like the other fields', () => {
  expect(policy({ verified: true })).toEqual({ groups: {}, required: 1, verified: true });
  expect(policy({ verified: false })).toEqual({ groups: {}, required: 1 });
  expect(validateApprovalPolicy({ verified: 'yes' }).problems.map((p) => p.message)).toEqual([
    expect.stringMatching(/true or false/),
  ]);
  expect(
    validateGateApprovals({ verified: true }, ['stages', 1, 'gate', 'approvals'], undefined).policy,
  ).toEqual({
    groups: {},
    required: 1,
    verified: true,
  });
});

test('oidc-group: entries admit verified tokens by their groups, and never a plain name', () => {
  const p = policy({ approvers: ['oidc-group:sre', 'alice@example.com'], required: 3 });
  expect(mayApprove(p, 'oidc:dana@example.com', ['sre'])).toBe(true);
  expect(mayApprove(p, 'oidc:dana@example.com', ['dev'])).toBe(false);
  expect(mayApprove(p, 'dana', ['sre'])).toBe(false);
  expect(mayApprove(p, 'ssh:alice@example.com')).toBe(true);
  expect(mayApprove(p, 'alice@example.com')).toBe(true);
  expect(entryAdmits('ssh:alice@example.com', 'alice@example.com', undefined)).toBe(false);
  expect(validateApprovalPolicy({ approvers: ['oidc-group:'] }).problems.map((p) => p.message)).toEqual([
    'names no group after oidc-group:',
  ]);
  // Two verified principals from one group count as two; the same principal twice as one.
  let state = recordApproval({ approvals: [] }, 'oidc:dana@example.com', 0, undefined, ['sre']);
  expect(canApprove(p, state, 'oidc:dana@example.com', 1, ['sre'])).toMatchObject({ ok: false });
  state = recordApproval(state, 'oidc:erin@example.com', 1, undefined, ['sre']);
  expect(canApprove(p, state, 'ssh:alice@example.com', 2)).toEqual({ ok: true });
});

test('who demands verification: the worker, the plan, a gate (for approving it, and a promotion skipping it)', () => {
  expect(verificationDemand(view({ stages: stages() } as PlanSpec), 'approve')).toBeUndefined();
  expect(verificationDemand(view({ stages: stages() } as PlanSpec, { requireVerified: true }), 'pause')).toBe(
    'the worker that started it (CANARY_REQUIRE_VERIFIED)',
  );
  expect(
    verificationDemand(view({ approvals: { verified: true }, stages: stages() } as PlanSpec), 'abort'),
  ).toBe('its plan (approvals.verified)');
  const gated = view({ stages: stages({ verified: true }) } as PlanSpec);
  expect(verificationDemand(gated, 'approve')).toBe("the gate's policy (approvals.verified)");
  expect(verificationDemand(gated, 'promote')).toBe('a gate a promotion would skip (approvals.verified)');
  expect(verificationDemand(gated, 'pause')).toBeUndefined();
});

test('refused before verification: own groups, a name posing as verified, unsigned where demanded', () => {
  const open = view({ stages: stages() } as PlanSpec);
  expect(identityRefusal(open, 'approve', { identity: 'alice' })).toBeUndefined();
  expect(identityRefusal(open, 'approve', { identity: 'alice', groups: ['sre'] })).toBe(
    'groups come only from a verified ID token; a request cannot bring its own',
  );
  expect(claimsVerified(' oidc:x')).toBe(true);
  expect(identityRefusal(open, 'pause', { identity: 'ssh:alice@example.com' })).toBe(
    'ssh:alice@example.com names a verified principal: sign the request (--sign-key PATH or --id-token FILE) to act as one',
  );
  const strict = view({ approvals: { verified: true }, stages: stages() } as PlanSpec);
  expect(identityRefusal(strict, 'resume', { identity: 'bob' })).toMatch(
    /^unsigned resume refused: this rollout demands/,
  );
  expect(identityRefusal(strict, 'resolve', { identity: 'bob' })).toMatch(
    /^unsigned resolve refused: this rollout demands/,
  );
  expect(
    identityRefusal(strict, 'resume', { identity: 'bob', signature: { payload: '{}', ssh: 'x' } }),
  ).toBeUndefined();
});

test('a nonce is accepted once, and the rollout keeps a bounded number of them', () => {
  const v = view({ stages: stages() } as PlanSpec);
  const ok = { ok: true as const, principal: 'ssh:a', method: 'ssh' as const, nonce: 'ssh:n1' };
  expect(verifiedRefusal(v, 'approve', ok)).toBeUndefined();
  rememberNonce(v, 'ssh:n1');
  expect(verifiedRefusal(v, 'approve', ok)).toBe(
    'unverified approve: replayed request (its nonce was used before in this rollout); sign a new one',
  );
  for (let i = 0; i < 600; i++) rememberNonce(v, `n${i}`);
  expect(v.s.seenNonces).toHaveLength(500);
  expect(v.s.seenNonces?.[499]).toBe('n599');
  expect(verifiedRefusal(v, 'pause', { ok: false, reason: 'unknown key' })).toBe(
    'unverified pause: unknown key',
  );
});

test('the nonces seen and the worker demand cross continue-as-new', () => {
  const s = { ...initialState(), seenNonces: ['ssh:n1'], requireVerified: true as const };
  expect(migrateCarried(JSON.parse(JSON.stringify(carryOver(s))))).toMatchObject({
    seenNonces: ['ssh:n1'],
    requireVerified: true,
    run: 2,
  });
});
