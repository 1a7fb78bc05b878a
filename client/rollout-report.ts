// `canary report`: how the rollouts of a time range went, from Temporal visibility (which rollouts ran) and each run's
// history (what it recorded: its plan, the search-attribute upserts that mark its phases and weights, its analysis
// rounds) and result (how it ended, who or what ended it). Pure: the command (commands/fleet-report.ts) fetches.
import type { WorkflowHandle } from '@temporalio/client';
import { defaultPayloadConverter, type Payload } from '@temporalio/common';
import { SA_PHASE, SA_WEIGHT } from '../workflows/api';
import { formatDuration } from '../workflows/duration';
import type { RolloutResult } from '../workflows/types';

type History = Awaited<ReturnType<WorkflowHandle['fetchHistory']>>;
type Event = NonNullable<History['events']>[number];

/** What one run of a rollout workflow recorded, as the report reads it. */
export interface RunRecord {
  workflowId: string;
  runId: string;
  /** The rollout's first run (not continued as new from an earlier one). */
  first: boolean;
  startMs: number;
  closeMs?: number;
  /** Temporal's execution status: RUNNING, COMPLETED, FAILED, CONTINUED_AS_NEW, TERMINATED, ... */
  status: string;
  /** How it ended, where it ended as a rollout does (promoted, rolled back, not started). */
  result?: RolloutResult;
  /** The names of the plan's checks (first runs only: a continued run's input carries its state instead). */
  checks: string[];
  /** The phases it went through, as its search attributes said, with their times. */
  phases: Array<{ phase: string; fromMs: number; toMs: number }>;
  /** A rollback by a check: from the analysis round that saw the breach to the weight reaching 0. */
  breachToZeroMs?: number;
}

const ANALYSIS_STEPS = new Set(['measureChecks', 'runAnalysis']);
const ABORTED_BY: ReadonlyArray<NonNullable<RolloutResult['ending']>['kind']> = [
  'abort',
  'decline',
  'cancel',
  'back',
];

function ms(t: Event['eventTime']): number {
  if (!t) return 0;
  return Number(t.seconds ?? 0) * 1000 + Math.floor((t.nanos ?? 0) / 1e6);
}

/** A search attribute's value in an upsert (typed attributes are JSON; older ones a one-element list). */
function attribute(fields: Record<string, Payload> | null | undefined, name: string) {
  const payload = fields?.[name];
  if (!payload) return undefined;
  try {
    const value = defaultPayloadConverter.fromPayload<unknown>(payload);
    return Array.isArray(value) ? (value[0] as unknown) : value;
  } catch {
    return undefined;
  }
}

/** Reads one run's history: its plan's checks, its phase spans, and a check's breach → weight 0. */
export function runFromHistory(
  history: History,
  run: Pick<RunRecord, 'workflowId' | 'runId' | 'status' | 'startMs' | 'closeMs' | 'result'>,
  nowMs: number,
): RunRecord {
  const events = history.events ?? [];
  const started = events[0]?.workflowExecutionStartedEventAttributes;
  const first = !started?.continuedExecutionRunId;
  let checks: string[] = [];
  try {
    const input = started?.input?.payloads?.[0]
      ? defaultPayloadConverter.fromPayload<{ plan?: { analysis?: { checks?: Array<{ name?: unknown }> } } }>(
          started.input.payloads[0],
        )
      : undefined;
    checks = (input?.plan?.analysis?.checks ?? [])
      .map((c) => c.name)
      .filter((n): n is string => typeof n === 'string');
  } catch {
    checks = [];
  }
  // Phase and weight marks: the start's attributes, then every upsert.
  const marks: Array<{ at: number; phase?: string; weight?: number }> = [];
  const activities = new Map<number, string>();
  let lastRoundAt: number | undefined;
  let breachAt: number | undefined;
  let zeroAt: number | undefined;
  let rollingBack = false;
  for (const e of events) {
    const at = ms(e.eventTime);
    const fields =
      e.workflowExecutionStartedEventAttributes?.searchAttributes?.indexedFields ??
      e.upsertWorkflowSearchAttributesEventAttributes?.searchAttributes?.indexedFields;
    if (fields) {
      const phase = attribute(fields, SA_PHASE.name);
      const weight = attribute(fields, SA_WEIGHT.name);
      marks.push({
        at,
        ...(typeof phase === 'string' ? { phase } : {}),
        ...(typeof weight === 'number' ? { weight } : {}),
      });
      if (phase === 'rolling_back' && !rollingBack) {
        rollingBack = true;
        breachAt = lastRoundAt;
      }
      if (rollingBack && weight === 0 && zeroAt === undefined) zeroAt = at;
    }
    const scheduled = e.activityTaskScheduledEventAttributes;
    if (scheduled?.activityType?.name) activities.set(Number(e.eventId), scheduled.activityType.name);
    const completed = e.activityTaskCompletedEventAttributes;
    if (completed && ANALYSIS_STEPS.has(activities.get(Number(completed.scheduledEventId)) ?? '')) {
      if (!rollingBack) lastRoundAt = at;
    }
  }
  const endMs = run.closeMs ?? nowMs;
  const phases: RunRecord['phases'] = [];
  let phase: string | undefined;
  let since = run.startMs;
  for (const mark of marks) {
    if (mark.phase === undefined || mark.phase === phase) continue;
    if (phase !== undefined && mark.at > since) phases.push({ phase, fromMs: since, toMs: mark.at });
    phase = mark.phase;
    since = mark.at;
  }
  if (phase !== undefined && endMs > since) phases.push({ phase, fromMs: since, toMs: endMs });
  const byCheck = run.result?.outcome === 'rolled_back' && run.result.ending?.kind === 'check';
  return {
    ...run,
    first,
    checks,
    phases,
    ...(byCheck && breachAt !== undefined && zeroAt !== undefined
      ? { breachToZeroMs: Math.max(0, zeroAt - breachAt) }
      : {}),
  };
}

// ---------------------------------------------------------------------------------------------------------------
// The report

export interface Spread {
  count: number;
  p50Ms?: number;
  p90Ms?: number;
}

export interface RolloutReport {
  from: string;
  to: string;
  rollouts: {
    /** Rollouts whose first run started in the range. */
    started: number;
    promoted: number;
    /** Rolled back by a check, a failed step or a gate's timeout. */
    rolledBack: number;
    /** Ended by a person: an abort, a declined gate, a cancel, a go-back during the soak. */
    aborted: number;
    notStarted: number;
    running: number;
    /** Terminated, timed out, or failed without a rollout's result. */
    other: number;
  };
  /** Rollbacks by the check their reason names (a check named in several counts for each), most first. */
  rollbackReasons: Array<{ check: string; count: number }>;
  /** Every rollback and abort by who or what ended it (check, step, timeout, abort, decline, cancel, back). */
  endings: Record<string, number>;
  /** Time in each phase per rollout (a rollout's runs together), p50 and p90. */
  phases: Array<{ phase: string } & Spread>;
  /** A rollback by a check: from the round that saw the breach to weight 0. */
  breachToZero: Spread;
  /** Each wait for a person (phase waiting_approval, until it went on or ended). */
  approvalWaits: Spread;
  /** Rollouts left out beyond the limit (newest kept). */
  truncated?: number;
}

/** The nearest-rank percentile of sorted values. */
function percentile(sorted: number[], p: number): number | undefined {
  if (sorted.length === 0) return undefined;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

function spread(values: number[]): Spread {
  const sorted = [...values].sort((a, b) => a - b);
  const p50 = percentile(sorted, 50);
  const p90 = percentile(sorted, 90);
  return {
    count: sorted.length,
    ...(p50 !== undefined ? { p50Ms: p50 } : {}),
    ...(p90 !== undefined ? { p90Ms: p90 } : {}),
  };
}

/** Whether a rollback reason names this check (as `name:`, `name=` or `name (`, the judges' forms). */
function names(reason: string, check: string): boolean {
  const escaped = check.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return new RegExp(`(^|[\\s;:,(])${escaped}(?=[:=\\s(,;]|$)`).test(reason);
}

/**
 * The report over the runs of a range: a rollout is its runs of one workflow id from a first run on; it counts when its
 * first run started in the range (one continued into the range from before it does not).
 */
export function buildReport(
  runs: RunRecord[],
  range: { fromMs: number; toMs: number },
  truncated = 0,
): RolloutReport {
  const sorted = [...runs].sort((a, b) => a.startMs - b.startMs);
  const chains: RunRecord[][] = [];
  const open = new Map<string, RunRecord[]>();
  for (const run of sorted) {
    const chain = run.first ? undefined : open.get(run.workflowId);
    if (chain) chain.push(run);
    else {
      const fresh = [run];
      chains.push(fresh);
      open.set(run.workflowId, fresh);
    }
  }
  // A chain whose first run is not in the list began before the range: that rollout is not one of the range's.
  const inRange = chains.filter(
    (c) => c[0].first && c[0].startMs >= range.fromMs && c[0].startMs < range.toMs,
  );
  const report: RolloutReport = {
    from: new Date(range.fromMs).toISOString(),
    to: new Date(range.toMs).toISOString(),
    rollouts: {
      started: inRange.length,
      promoted: 0,
      rolledBack: 0,
      aborted: 0,
      notStarted: 0,
      running: 0,
      other: 0,
    },
    rollbackReasons: [],
    endings: {},
    phases: [],
    breachToZero: spread([]),
    approvalWaits: spread([]),
    ...(truncated > 0 ? { truncated } : {}),
  };
  const reasons = new Map<string, number>();
  const phaseTimes = new Map<string, number[]>();
  const breaches: number[] = [];
  const waits: number[] = [];
  for (const chain of inRange) {
    const last = chain[chain.length - 1];
    const result = last.result;
    const r = report.rollouts;
    if (last.status === 'RUNNING') r.running++;
    else if (result?.outcome === 'promoted') r.promoted++;
    else if (result?.outcome === 'not_started') r.notStarted++;
    else if (result?.outcome === 'rolled_back') {
      const kind = result.ending?.kind;
      if (kind !== undefined && ABORTED_BY.includes(kind)) r.aborted++;
      else r.rolledBack++;
      const ending = kind ?? 'unknown';
      report.endings[ending] = (report.endings[ending] ?? 0) + 1;
      if (kind === 'check' || (kind === undefined && result.reason)) {
        const checks = chain[0].checks.filter((c) => names(result.reason ?? '', c));
        for (const c of checks.length > 0 ? checks : ['(no check named)']) {
          reasons.set(c, (reasons.get(c) ?? 0) + 1);
        }
      }
    } else r.other++;
    const totals = new Map<string, number>();
    let waitOpen = false;
    for (const run of chain) {
      for (const span of run.phases) {
        totals.set(span.phase, (totals.get(span.phase) ?? 0) + (span.toMs - span.fromMs));
        if (span.phase === 'waiting_approval') {
          // A wait continued into the next run is still one wait.
          if (waitOpen) waits[waits.length - 1] += span.toMs - span.fromMs;
          else waits.push(span.toMs - span.fromMs);
          waitOpen = span.toMs === run.closeMs && run.status === 'CONTINUED_AS_NEW';
        } else waitOpen = false;
      }
      if (run.breachToZeroMs !== undefined) breaches.push(run.breachToZeroMs);
    }
    for (const [phase, t] of totals) phaseTimes.set(phase, [...(phaseTimes.get(phase) ?? []), t]);
  }
  report.rollbackReasons = [...reasons]
    .map(([check, count]) => ({ check, count }))
    .sort((a, b) => b.count - a.count || a.check.localeCompare(b.check));
  report.phases = [...phaseTimes].map(([phase, times]) => ({ phase, ...spread(times) }));
  report.breachToZero = spread(breaches);
  report.approvalWaits = spread(waits);
  return report;
}

function showSpread(s: Spread): string {
  if (s.count === 0) return 'none';
  const d = (v: number | undefined) => (v === undefined ? '-' : v < 1000 ? `${v} ms` : formatDuration(v));
  return `p50 ${d(s.p50Ms)}, p90 ${d(s.p90Ms)} (${s.count})`;
}

/** The report as text for people. */
export function renderReport(report: RolloutReport): string {
  const r = report.rollouts;
  const lines = [
    `Rollouts started ${report.from} – ${report.to}: ${r.started}`,
    `  promoted ${r.promoted}, rolled back ${r.rolledBack}, aborted ${r.aborted}, not started ${r.notStarted}, ` +
      `running ${r.running}${r.other > 0 ? `, other ${r.other}` : ''}`,
  ];
  if (report.truncated) lines.push(`  (${report.truncated} more runs left out: narrow the range)`);
  const endings = Object.entries(report.endings);
  if (endings.length > 0) {
    lines.push('', 'Ended by:', ...endings.map(([kind, n]) => `  ${kind.padEnd(10)} ${n}`));
  }
  lines.push('', 'Rollback reasons by check:');
  if (report.rollbackReasons.length === 0) lines.push('  none');
  else {
    const width = Math.max(...report.rollbackReasons.map((x) => x.check.length));
    lines.push(...report.rollbackReasons.map((x) => `  ${x.check.padEnd(width)}  ${x.count}`));
  }
  lines.push('', 'Time per phase:');
  if (report.phases.length === 0) lines.push('  none');
  else {
    const width = Math.max(...report.phases.map((p) => p.phase.length));
    lines.push(...report.phases.map((p) => `  ${p.phase.padEnd(width)}  ${showSpread(p)}`));
  }
  lines.push(
    '',
    `Breach → weight 0:     ${showSpread(report.breachToZero)}`,
    `Waiting for approval:  ${showSpread(report.approvalWaits)}`,
  );
  return lines.join('\n');
}
