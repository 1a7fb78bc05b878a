// Load during analysis (plan-load.ts), on the rollout machine: the stage's load Job starts once its weight is set and
// stops when the stage ends (its hold served), on rollback (abort included) and on promotion. It is best effort: a
// load that cannot start, or that had failed by the time it stops, raises a `hook_failed` warning and the rollout
// goes on; it never holds or rolls back anything. The running load is kept in state (`s.load`), so a replay, a
// worker crash or a continue-as-new neither starts it twice nor forgets to stop it. Plans without `load:` give no
// command here: their histories are what they were.
//
// Whether a load starts or stops, its steps, and what their answers change are decided in hook-steps.ts; here they
// are carried out, each alert awaited where the decision puts it.
import { errorMessage } from './context';
import {
  loadStart,
  loadStartFailed,
  loadStarted,
  loadStop,
  loadStopFailed,
  loadStopped,
  startLoadStep,
} from './hook-steps';
import type { RolloutMachine } from './machine';
import type { MachineCommand } from './transitions';

/** A publish at once; a warning awaited. */
async function carry(m: RolloutMachine, commands: MachineCommand[]): Promise<void> {
  const alerted = m.carry(commands);
  if (alerted) await alerted;
}

/** Starts the entered stage's load at the time after anything before it; a failure to start only warns. */
async function start(m: RolloutMachine): Promise<void> {
  const load = startLoadStep(m, m.now());
  try {
    const r = await m.port.run(load.step);
    const alerted = m.carry(loadStarted(m, load, r));
    if (alerted) await alerted;
  } catch (err) {
    if (m.port.isCancellation(err)) throw err;
    await carry(m, loadStartFailed(m, load, errorMessage(err)));
  }
}

/** Starts the entered stage's load, if the plan gives it one and it is not running yet. */
export async function startStageLoad(m: RolloutMachine): Promise<void> {
  for (const c of loadStart(m)) {
    if (c.type === 'stopLoad') await stopStageLoad(m, c.why);
    else if (c.type === 'startLoad') await start(m);
    else throw new Error(`a load's start does not ${c.type}`);
  }
}

/** Stops the running load (deletes its Job); `why` for the log. Never throws but for a cancellation. */
export async function stopStageLoad(m: RolloutMachine, why: string): Promise<void> {
  const stop = loadStop(m, why);
  if (!stop) return;
  try {
    const r = await m.port.run(stop.step);
    const alerted = m.carry(loadStopped(m, stop, r));
    if (alerted) await alerted;
  } catch (err) {
    if (m.port.isCancellation(err)) throw err;
    await carry(m, loadStopFailed(m, stop, errorMessage(err)));
  }
}
