// What `canary status` shows of the plan's hooks: a failed hook waiting for a person, the running load, the latest
// hook runs.
import type { RolloutStatus } from '../workflows/types';

/** How many hook runs status lists (the newest; the rollout keeps a few more). */
const RUNS_SHOWN = 8;

export function hookStatusLines(status: RolloutStatus, cli: string, ref: string): string[] {
  const out: string[] = [];
  const q = status.hookQuestion;
  if (q) {
    out.push(
      '',
      `Waiting for a person since ${q.since}: ${q.reason}`,
      `  Go on anyway: ${cli} approve ${ref} --stage ${q.stage} --comment "why it is fine"`,
      `  Or roll back: ${cli} abort ${ref} --reason "why"`,
    );
  }
  if (status.load) {
    const l = status.load;
    out.push('', `Load: stage ${l.stage} since ${l.since}: ${l.what} (job ${l.job})`);
  }
  const runs = status.hookRuns ?? [];
  if (runs.length === 0) return out;
  out.push('', `Hooks (latest ${Math.min(RUNS_SHOWN, runs.length)} of ${runs.length} kept):`);
  for (const r of runs.slice(-RUNS_SHOWN)) {
    const ask = r.attempt > 1 ? ` ask ${r.attempt}` : '';
    out.push(
      `  ${r.at}  ${r.point} ${r.hook}${ask} (stage ${r.stage}): ${r.result} in ${r.tookMs} ms: ${r.detail}`,
    );
    if (r.excerpt) out.push(`    ${r.excerpt.split('\n').slice(0, 3).join('\n    ')}`);
  }
  return out;
}
