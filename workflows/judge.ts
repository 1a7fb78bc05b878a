// Turns measured metric values into a verdict. Pure and deterministic: runs inside the workflow.
import type { Check, CheckResult, Verdict } from './types';

export interface Measurement {
  name: string;
  value: number | null;
  error?: string;
}

export function judgeCheck(check: Check, m: Measurement | undefined): CheckResult {
  if (!m || m.value === null || !Number.isFinite(m.value)) {
    // No data is its own outcome: it is never read as healthy.
    return { name: check.name, value: null, outcome: 'no_data', ...(m?.error ? { error: m.error } : {}) };
  }
  const tooHigh = check.max !== undefined && m.value > check.max;
  const tooLow = check.min !== undefined && m.value < check.min;
  return { name: check.name, value: m.value, outcome: tooHigh || tooLow ? 'fail' : 'pass' };
}

export function judge(
  checks: Check[],
  measurements: Measurement[],
): { verdict: Verdict; checks: CheckResult[] } {
  const byName = new Map(measurements.map((m) => [m.name, m]));
  const results = checks.map((c) => judgeCheck(c, byName.get(c.name)));
  const verdict: Verdict = results.some((r) => r.outcome === 'fail')
    ? 'fail'
    : results.some((r) => r.outcome === 'no_data')
      ? 'inconclusive'
      : 'pass';
  return { verdict, checks: results };
}

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
