// The rollout's messages: each validates against the machine (a refusal is the update's error) and becomes one of
// its transitions. Signals cannot be refused, so an unacceptable one changes nothing.
import { setHandler } from '@temporalio/workflow';
import {
  abortSignal,
  approveUpdate,
  pauseSignal,
  pauseUpdate,
  promoteUpdate,
  resolveUpdate,
  resumeSignal,
  resumeUpdate,
  statusQuery,
} from './api';
import type { RolloutMachine } from './machine/machine';

/** Throws a validator's refusal as the update's error. */
function refuse(refusal: string | undefined): void {
  if (refusal) throw new Error(refusal);
}

export function setRolloutHandlers(m: RolloutMachine): void {
  setHandler(statusQuery, () => m.status());
  setHandler(approveUpdate, (req) => m.approve(req), {
    validator: (req) => refuse(m.approveRefusal(req, m.now())),
  });
  setHandler(promoteUpdate, (req) => m.promote(req), {
    validator: (req) => refuse(m.promoteRefusal(req, m.now())),
  });
  setHandler(abortSignal, async (req) => {
    m.abort(req);
  });
  setHandler(resolveUpdate, (req) => m.resolve(req), {
    validator: (req) => refuse(m.resolveRefusal(req)),
  });
  setHandler(pauseSignal, async (req) => {
    if (m.pauseRefusal()) return;
    m.pause(req);
    await m.pausedAlert(req);
  });
  setHandler(resumeSignal, async (req) => {
    if (m.resumeRefusal()) return;
    m.resume(req);
    await m.resumedAlert(req);
  });
  setHandler(
    pauseUpdate,
    async (req) => {
      const ack = m.pause(req);
      await m.pausedAlert(req);
      return ack;
    },
    { validator: (_req) => refuse(m.pauseRefusal()) },
  );
  setHandler(
    resumeUpdate,
    async (req) => {
      const ack = m.resume(req);
      await m.resumedAlert(req);
      return ack;
    },
    { validator: (_req) => refuse(m.resumeRefusal()) },
  );
}
