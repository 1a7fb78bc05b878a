// Reads the alert log (JSON lines, as the log alert sink writes it) of one rollout.
import * as fs from 'node:fs';
import type { AlertEvent } from '../activities/types';

/** Alert events of one rollout, in order; `offsetMs` is workflow time since its first event (rollout_started). */
export function readAlerts(file: string, workflowId: string): Array<AlertEvent & { offsetMs: number }> {
  if (!fs.existsSync(file)) return [];
  const events = fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as AlertEvent)
    .filter((e) => e.workflowId === workflowId);
  const t0 = Date.parse(events.find((e) => e.event === 'rollout_started')?.at ?? events[0]?.at ?? '0');
  return events.map((e) => ({ ...e, offsetMs: Date.parse(e.at) - t0 }));
}
