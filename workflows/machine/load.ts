// Load during analysis (plan-load.ts), on the rollout machine: the stage's load Job starts once its weight is set and
// stops when the stage ends (its hold served), on rollback (abort included) and on promotion. It is best effort: a
// load that cannot start, or that had failed by the time it stops, raises a `hook_failed` warning and the rollout
// goes on; it never holds or rolls back anything. The running load is kept in state (`s.load`), so a replay, a
// worker crash or a continue-as-new neither starts it twice nor forgets to stop it. Plans without `load:` give no
// command here: their histories are what they were.
import { canaryUrl, describeLoad, stageLoad } from '../plan-load';
import { errorMessage, iso } from './context';
import type { RolloutMachine } from './machine';

async function warn(m: RolloutMachine, reason: string): Promise<void> {
  await m.alert(
    'hook_failed',
    'warning',
    `${m.label()}: ${reason}; the rollout goes on (load is best effort)`,
    false,
    {
      reason,
    },
  );
}

/** Starts the entered stage's load, if the plan gives it one and it is not running yet. */
export async function startStageLoad(m: RolloutMachine): Promise<void> {
  const { s, ctx } = m;
  const load = stageLoad(m.plan.load, s.stageIndex);
  const stage = s.stageIndex + 1;
  if (!load || s.load?.stage === stage) return;
  if (s.load) await stopStageLoad(m, `stage ${stage} started`);
  const since = m.now();
  try {
    const r = await m.port.run({
      policy: 'lookup',
      step: 'startLoad',
      summary: `load at the canary: stage ${stage}, ${load.rate} req/s`,
      args: [
        {
          target: ctx.target,
          load,
          rolloutId: ctx.workflowId,
          stage,
          // Stable for every attempt of this stage entry; another entry of the same stage gets another Job.
          key: `${ctx.workflowId}/${ctx.firstRunId}/load/${stage}/${since}`,
        },
      ],
    });
    // A simulated port (the backtest) runs no Job.
    if (r === undefined) return;
    const url = r.url ?? load.url ?? canaryUrl(ctx.target);
    s.load = { stage, job: r.job, since: iso(since), what: describeLoad(load, url), ...(url ? { url } : {}) };
    m.publish();
  } catch (err) {
    if (m.port.isCancellation(err)) throw err;
    await warn(m, `load for stage ${stage} did not start: ${errorMessage(err)}`);
  }
}

/** Stops the running load (deletes its Job); `why` for the log. Never throws but for a cancellation. */
export async function stopStageLoad(m: RolloutMachine, why: string): Promise<void> {
  const { s, ctx } = m;
  const running = s.load;
  if (!running) return;
  try {
    const r = await m.port.run({
      policy: 'lookup',
      step: 'stopLoad',
      summary: `stop the load of stage ${running.stage}: ${why}`,
      args: [{ target: ctx.target, job: running.job }],
    });
    s.load = undefined;
    m.publish();
    if (r.failed) await warn(m, `load of stage ${running.stage} (job ${running.job}) failed: ${r.failed}`);
  } catch (err) {
    if (m.port.isCancellation(err)) throw err;
    s.load = undefined;
    m.publish();
    await warn(
      m,
      `load of stage ${running.stage} (job ${running.job}) could not be stopped: ${errorMessage(err)}; ` +
        'its deadline and TTL remove it',
    );
  }
}
