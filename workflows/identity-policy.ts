// Where a rollout demands verified identities, and what it refuses: unsigned requests where verification is
// demanded, names that pose as verified ones, replayed nonces. Pure: the handlers (workflows/handlers.ts) run the
// verifier as a local activity and use these to decide.
import type { SignedFields } from './api';
import {
  MAX_NONCES_KEPT,
  claimsVerified,
  type Signable,
  type SignedAction,
  type VerifyInput,
  type VerifyResult,
} from './identity';
import type { RolloutView } from './machine/views';

/** Who demands verified identities for this action, or undefined when nobody does. */
export function verificationDemand(v: RolloutView, action: SignedAction): string | undefined {
  if (v.s.requireVerified) return 'the worker that started it (CANARY_REQUIRE_VERIFIED)';
  if (v.plan.approvals?.verified) return 'its plan (approvals.verified)';
  if (action === 'approve' && v.gatePolicy()?.verified) return `the gate's policy (approvals.verified)`;
  if (action === 'promote') {
    const gates = [...v.plan.stages.map((st) => st.gate), v.plan.promotion.gate];
    if (gates.some((g) => g?.type === 'approval' && g.policy?.verified)) {
      return 'a gate a promotion would skip (approvals.verified)';
    }
  }
  return undefined;
}

/**
 * Why a request is refused before any verification: one that brings its own groups, an unsigned one that poses as a
 * verified principal, or an unsigned one where verification is demanded. Undefined: go on (verify a signed one).
 */
export function identityRefusal(
  v: RolloutView,
  action: SignedAction,
  req: Partial<Signable & SignedFields>,
): string | undefined {
  if (req.groups !== undefined) {
    return 'groups come only from a verified ID token; a request cannot bring its own';
  }
  if (req.signature !== undefined) {
    const sig = req.signature as Partial<typeof req.signature>;
    return typeof sig?.payload === 'string' ? undefined : 'the signature carries no payload';
  }
  const who = (req.identity ?? '').trim();
  if (claimsVerified(who)) {
    return `${who} names a verified principal: sign the request (--sign-key PATH or --id-token FILE) to act as one`;
  }
  const demand = verificationDemand(v, action);
  if (demand) {
    return (
      `unsigned ${action} refused: this rollout demands a verified identity (${demand}); sign it with ` +
      `--sign-key PATH (an SSH key in the worker's allowed signers) or --id-token FILE (an OIDC ID token)` +
      (who ? `; "${who}" is only a name` : '')
    );
  }
  return undefined;
}

/** What a signed request must be about, in this rollout's state (an approval names the gate that waits). */
export function expectedFor(v: RolloutView, action: SignedAction, workflowId: string): VerifyInput['expect'] {
  if (action !== 'approve') return { rolloutId: workflowId, action };
  return {
    rolloutId: workflowId,
    action,
    stage: v.s.stageIndex + 1,
    promotion: v.gateWaiting() && v.atPromotionGate(),
  };
}

/** Why a verification result is refused (the verifier's reason, or a nonce this rollout has seen). */
export function verifiedRefusal(v: RolloutView, action: SignedAction, r: VerifyResult): string | undefined {
  if (!r.ok) return `unverified ${action}: ${r.reason}`;
  if (v.s.seenNonces?.includes(r.nonce)) {
    return `unverified ${action}: replayed request (its nonce was used before in this rollout); sign a new one`;
  }
  return undefined;
}

/** Remembers a nonce (bounded: the oldest go first, long outside the signature window by then). */
export function rememberNonce(v: RolloutView, nonce: string): void {
  const seen = (v.s.seenNonces ??= []);
  seen.push(nonce);
  if (seen.length > MAX_NONCES_KEPT) seen.splice(0, seen.length - MAX_NONCES_KEPT);
}
