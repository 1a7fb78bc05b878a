// The rollout's messages: each validates against the machine (a refusal is the update's error) and becomes one of
// its transitions. Signals cannot be refused, so an unacceptable one changes nothing.
//
// A signed request (workflows/identity.ts) is verified by a local activity before the machine takes it: the verified
// principal replaces the name the request claims. An unsigned request where nothing demands verification takes
// exactly the path it always took (no local activity, nothing new in history).
import {
  ApplicationFailure,
  log,
  patched,
  proxyLocalActivities,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import {
  abortSignal,
  abortUpdate,
  approveUpdate,
  pauseSignal,
  pauseUpdate,
  promoteUpdate,
  resolveUpdate,
  resumeSignal,
  resumeUpdate,
  statusQuery,
  type AbortAck,
  type SignedFields,
} from './api';
import { fleetNoticeSignal } from './fleet-api';
import type { IdentityActivities, Signable, SignedAction } from './identity';
import { expectedFor, identityRefusal, rememberNonce, verifiedRefusal } from './identity-policy';
import { iso } from './machine/context';
import type { RolloutMachine } from './machine/machine';
import { RELEASE_HOLD_PATCH } from './patches';

const identity = proxyLocalActivities<IdentityActivities>({
  startToCloseTimeout: '10 seconds',
  retry: { maximumAttempts: 3, initialInterval: '200 milliseconds' },
  summary: 'verify a signed request',
});

/** Throws a validator's refusal as the update's error. */
function refuse(refusal: string | undefined): void {
  if (refusal) throw new Error(refusal);
}

/** Fails an update after it was accepted (a handler's refusal: the verifier's, or the state's once verified). */
function fail(refusal: string | undefined): void {
  if (refusal) throw ApplicationFailure.nonRetryable(refusal, 'Refused');
}

/**
 * Verifies a signed request (a local activity) and returns it as the verified principal sends it: identity
 * replaced, groups from a token, the signature dropped. Throws the refusal (the update fails with it).
 */
async function verified<R extends Signable & SignedFields>(
  m: RolloutMachine,
  action: SignedAction,
  req: R,
): Promise<R & { stage?: number }> {
  const expect = expectedFor(m, action, workflowInfo().workflowId);
  const r = await identity.verifyRequest({ signature: req.signature!, expect, claimed: req.identity });
  fail(verifiedRefusal(m, action, r));
  if (!r.ok) throw new Error('unreachable');
  rememberNonce(m, r.nonce);
  const { signature: _signature, groups: _groups, ...rest } = req;
  return {
    ...(rest as R),
    identity: r.principal,
    ...(r.groups ? { groups: r.groups } : {}),
    ...(expect.stage !== undefined ? { stage: expect.stage } : {}),
  };
}

/** A signal's request where an update's would be refused: dropped, with a warning in the worker's log. */
function ignoredSignal(m: RolloutMachine, action: SignedAction, req: Signable & SignedFields): boolean {
  const refusal = req.signature
    ? `a signed ${action} must come as an Update (signals cannot be verified before they are accepted)`
    : identityRefusal(m, action, req);
  if (refusal) log.warn(`${action} signal ignored: ${refusal}`, { identity: req.identity });
  return refusal !== undefined;
}

/**
 * A resume held back by the member's release (RolloutView.releaseHoldRefusal), where a handler (not a validator)
 * decides: behind RELEASE_HOLD_PATCH, since a member's recorded history may hold such a resume, accepted.
 */
function releaseHeld(m: RolloutMachine, identity: string | undefined): string | undefined {
  const refusal = m.releaseHoldRefusal(identity);
  return refusal !== undefined && patched(RELEASE_HOLD_PATCH) ? refusal : undefined;
}

export function setRolloutHandlers(m: RolloutMachine): void {
  setHandler(statusQuery, () => m.status());
  // A fleet workflow's answer or news (workflows/fleet.ts): a freeze holds the rollout from its next advance on.
  setHandler(fleetNoticeSignal, (n) => m.fleetNotice(n));
  setHandler(
    approveUpdate,
    (req) =>
      req.signature
        ? verified(m, 'approve', req).then((r) => {
            fail(m.approveRefusal(r, m.now()));
            return m.approve(r);
          })
        : m.approve(req),
    {
      validator: (req) =>
        refuse(
          identityRefusal(m, 'approve', req) ?? (req.signature ? undefined : m.approveRefusal(req, m.now())),
        ),
    },
  );
  setHandler(
    promoteUpdate,
    (req) =>
      req.signature
        ? verified(m, 'promote', req).then((r) => {
            fail(m.promoteRefusal(r, m.now()));
            return { ...m.promote(r), by: r.identity };
          })
        : m.promote(req),
    {
      validator: (req) =>
        refuse(
          identityRefusal(m, 'promote', req) ?? (req.signature ? undefined : m.promoteRefusal(req, m.now())),
        ),
    },
  );
  setHandler(abortSignal, async (req) => {
    if (ignoredSignal(m, 'abort', req)) return;
    m.abort(req);
  });
  setHandler(
    abortUpdate,
    async (req): Promise<AbortAck> => {
      const r = req.signature ? await verified(m, 'abort', req) : req;
      const before = m.s.abortRequest;
      m.abort(r);
      return {
        by: r.identity,
        at: iso(m.now()),
        accepted: before === undefined && m.s.abortRequest !== undefined,
      };
    },
    {
      validator: (req) => {
        refuse(identityRefusal(m, 'abort', req));
        if (!req.reason?.trim()) throw new Error('an abort needs a reason');
      },
    },
  );
  setHandler(
    resolveUpdate,
    (req) =>
      req.signature
        ? verified(m, 'resolve', req).then((r) => {
            fail(m.resolveRefusal(r));
            return m.resolve(r);
          })
        : m.resolve(req),
    {
      validator: (req) =>
        refuse(identityRefusal(m, 'resolve', req) ?? (req.signature ? undefined : m.resolveRefusal(req))),
    },
  );
  setHandler(pauseSignal, async (req) => {
    if (m.pauseRefusal() || ignoredSignal(m, 'pause', req)) return;
    m.pause(req);
    await m.pausedAlert(req);
  });
  setHandler(resumeSignal, async (req) => {
    if (m.resumeRefusal() || ignoredSignal(m, 'resume', req)) return;
    const held = releaseHeld(m, req.identity);
    if (held) {
      log.warn(`resume signal ignored: ${held}`, { identity: req.identity });
      return;
    }
    m.resume(req);
    await m.resumedAlert(req);
  });
  setHandler(
    pauseUpdate,
    async (req) => {
      if (req.signature) {
        req = await verified(m, 'pause', req);
        fail(m.pauseRefusal());
      }
      const ack = m.pause(req);
      await m.pausedAlert(req);
      return ack;
    },
    { validator: (req) => refuse(identityRefusal(m, 'pause', req) ?? m.pauseRefusal()) },
  );
  setHandler(
    resumeUpdate,
    async (req) => {
      if (req.signature) {
        req = await verified(m, 'resume', req);
        fail(m.resumeRefusal() ?? releaseHeld(m, req.identity));
      }
      const ack = m.resume(req);
      await m.resumedAlert(req);
      return ack;
    },
    {
      // A validator runs only for a new update (never on replay): no patch needed to refuse here.
      validator: (req) =>
        refuse(
          identityRefusal(m, 'resume', req) ??
            m.resumeRefusal() ??
            (req.signature ? undefined : m.releaseHoldRefusal(req.identity)),
        ),
    },
  );
}
