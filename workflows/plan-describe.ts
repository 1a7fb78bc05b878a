// How a plan reads in one line (CLI, Web UI details, alerts): stages with their gates, holds and mirrors, the
// promotion gate, and the hooks.
import { formatDuration } from './duration';
import { describeMirror } from './mirror-spec';
import type { Gate, Plan } from './types';
import { describeHooks } from './plan-hooks';

/** `[approval] `, `[approval within 2h, else abort] ` or nothing: how describePlan writes a gate. */
function describeGate(gate: Gate): string {
  if (gate.type !== 'approval') return '';
  return gate.timeoutMs === undefined
    ? '[approval] '
    : `[approval within ${formatDuration(gate.timeoutMs)}, else ${gate.onTimeout}] `;
}

/**
 * One line, e.g. `5% 1h → 10% 3h → [approval] 25% 20h → 100%` (a gate is passed before its stage's shift); a
 * promotion gate ends it with `→ [approval] promotion`.
 */
export function describePlan(plan: Plan): string {
  const stages = plan.stages.map((stage) => {
    const hold = stage.holdMs > 0 ? ` ${formatDuration(stage.holdMs)}` : '';
    return `${describeGate(stage.gate)}${stage.weight}%${stage.mirror ? ` (mirror ${describeMirror(stage.mirror)})` : ''}${hold}`;
  });
  const gate = plan.promotion.gate ? [`${describeGate(plan.promotion.gate)}promotion`] : [];
  return [...stages, ...gate].join(' → ') + describeHooks(plan.hooks);
}
