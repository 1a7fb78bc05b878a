// Short-form checks (`{ name, metric|query, max?, min? }`, plans without `analysis.rules`) and their messages.
import type { Check, CheckResult } from './types';

/** One line a person can read, e.g. `error-rate 8.1 > max 1; latency-p95 120 ok`. */
export function describeResults(checks: Check[], results: CheckResult[]): string {
  return results
    .map((r) => {
      const c = checks.find((x) => x.name === r.name);
      if (r.outcome === 'no_data') return `${r.name} no data${r.error ? ` (${r.error})` : ''}`;
      const v = round(r.value as number);
      if (r.outcome === 'pass') return `${r.name} ${v} ok`;
      if (c?.max !== undefined && (r.value as number) > c.max) return `${r.name} ${v} > max ${c.max}`;
      return `${r.name} ${v} < min ${c?.min}`;
    })
    .join('; ');
}

function round(v: number): number {
  return Math.round(v * 100) / 100;
}
