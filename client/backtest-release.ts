// `canary release backtest`: every member's plan run by the single backtest (backtest.ts, the live machine on a
// simulated clock) over the same range, each member from the time the release would have started it, and the
// release's rules applied to what they did: order (`after:`, a named stage of a member, waves and their bake) and
// the shared verdict (the first member to roll back rolls back every member not yet promoted, and members not
// started by then never start). The rules are pure functions of member timelines (unit-tested); the walk is
// runReleaseBacktest.
import { formatDuration } from '../workflows/duration';
import type { ReleasePromotion } from '../workflows/release-model';
import type { Plan } from '../workflows/types';
import { runBacktest, type BacktestOutcome, type BacktestResult, type MeasureFn } from './backtest';

/** A member as the release's rules see it. */
export interface ReleaseBacktestMember {
  id: string;
  after: string[];
  /** A dependency named with a stage: the member starts once that dependency has entered the stage (1-based). */
  afterStage?: Record<string, number>;
  wave: number;
}

export interface ReleaseRules {
  members: ReleaseBacktestMember[];
  waves: Array<{ wave: number; bakeMs: number }>;
  promotion: ReleasePromotion;
}

/** What one member's backtest says, from the time the release started it. */
export interface MemberTimeline {
  startMs: number;
  /** When it entered each stage (1-based stage → ms). */
  enteredMs: Record<number, number>;
  stages: number;
  outcome: BacktestOutcome;
  /** The checks that breached (or failed) in the round that rolled it back. */
  checks?: string[];
}

export type ReleaseMemberVerdict =
  'promoted' | 'ready' | 'rolled_back' | 'rolled_back_by_release' | 'running' | 'skipped' | 'not_started';

export interface ReleaseBacktestMemberResult {
  id: string;
  wave: number;
  after: string[];
  state: ReleaseMemberVerdict;
  startedAt?: string;
  /** The member's own final line (relative to its start), or why it never started. */
  summary: string;
}

export type ReleaseBacktestOutcome =
  | { kind: 'promoted'; at: string; atMs: number }
  | {
      kind: 'rolled_back';
      at: string;
      atMs: number;
      member: string;
      stage: number;
      weight: number;
      checks: string[];
      reason: string;
    }
  | { kind: 'running'; at: string; atMs: number; waiting: string[] };

export interface ReleaseVerdict {
  outcome: ReleaseBacktestOutcome;
  members: ReleaseBacktestMemberResult[];
  summary: string;
}

/**
 * When a member counts as passed for those after it and for its wave: with `promotion: together`, once it waits
 * at the release's promotion gate (the backtest approves gates at once, so its promotion time); with `each`, once
 * it entered its last stage. Undefined: not in the range.
 */
export function passedAt(t: MemberTimeline, promotion: ReleasePromotion): number | undefined {
  if (promotion === 'together') return t.outcome.kind === 'promoted' ? t.outcome.atMs : undefined;
  return t.enteredMs[t.stages] ?? (t.outcome.kind === 'promoted' ? t.outcome.atMs : undefined);
}

/** When a member entered `stage` (or passed, for a stage past its last). */
export function reachedAt(t: MemberTimeline, stage: number): number | undefined {
  return t.enteredMs[stage] ?? (t.outcome.kind === 'promoted' ? t.outcome.atMs : undefined);
}

/**
 * When the release would have started `id`, given the timelines of the members before it (undefined in the map:
 * that member never started). Undefined: it never starts in the range. The release's own start is `fromMs`.
 */
export function memberStartMs(
  rules: ReleaseRules,
  id: string,
  timelines: Map<string, MemberTimeline | undefined>,
  fromMs: number,
): number | undefined {
  const m = rules.members.find((x) => x.id === id);
  if (!m) throw new Error(`no member ${id}`);
  let start = fromMs;
  for (const d of m.after) {
    const t = timelines.get(d);
    const at =
      t && (m.afterStage?.[d] !== undefined ? reachedAt(t, m.afterStage[d]) : passedAt(t, rules.promotion));
    if (at === undefined) return undefined;
    start = Math.max(start, at);
  }
  for (const w of rules.waves) {
    if (w.wave >= m.wave) break;
    const inWave = rules.members.filter((x) => x.wave === w.wave);
    if (inWave.length === 0) continue;
    let ready = fromMs;
    for (const x of inWave) {
      const t = timelines.get(x.id);
      const at = t && passedAt(t, rules.promotion);
      if (at === undefined) return undefined;
      ready = Math.max(ready, at);
    }
    start = Math.max(start, ready + w.bakeMs);
  }
  return start;
}

/** Members in an order where each comes after what it depends on: by wave, then `after:`. */
export function startOrder(rules: ReleaseRules): ReleaseBacktestMember[] {
  const done = new Set<string>();
  const out: ReleaseBacktestMember[] = [];
  const waves = [...new Set(rules.members.map((m) => m.wave))].sort((a, b) => a - b);
  for (const w of waves) {
    let left = rules.members.filter((m) => m.wave === w);
    while (left.length > 0) {
      const next = left.filter((m) => m.after.every((d) => done.has(d)));
      if (next.length === 0) throw new Error('after: forms a cycle'); // validated before
      for (const m of next) {
        done.add(m.id);
        out.push(m);
      }
      left = left.filter((m) => !next.includes(m));
    }
  }
  return out;
}

/**
 * The release's verdict from its members' timelines (a member absent or undefined never started). The first
 * rollback rolls back every member not yet promoted; with `promotion: together`, every member promotes once the
 * last one passed, and none before.
 */
export function releaseVerdict(
  rules: ReleaseRules,
  timelines: Map<string, MemberTimeline | undefined>,
  fromMs: number,
  toMs: number,
): ReleaseVerdict {
  const started = rules.members.flatMap((m) => {
    const t = timelines.get(m.id);
    return t ? [{ m, t }] : [];
  });
  let first: { m: ReleaseBacktestMember; t: MemberTimeline } | undefined;
  for (const x of started) {
    if (x.t.outcome.kind !== 'rolled_back') continue;
    if (!first || x.t.outcome.atMs < first.t.outcome.atMs) first = x;
  }
  const passed = rules.members.map((m) => {
    const t = timelines.get(m.id);
    return t && passedAt(t, rules.promotion);
  });
  const ownPromotion = (t: MemberTimeline) => (t.outcome.kind === 'promoted' ? t.outcome.atMs : undefined);
  const allPassedMs = passed.every((p) => p !== undefined) ? Math.max(...passed) : undefined;
  const promotedMs =
    rules.promotion === 'together'
      ? allPassedMs
      : started.length === rules.members.length && started.every((x) => ownPromotion(x.t) !== undefined)
        ? Math.max(...started.map((x) => ownPromotion(x.t)!))
        : undefined;
  const rollbackMs =
    first &&
    first.t.outcome.kind === 'rolled_back' &&
    (promotedMs === undefined || first.t.outcome.atMs < promotedMs)
      ? first.t.outcome.atMs
      : undefined;

  const members = rules.members.map((m): ReleaseBacktestMemberResult => {
    const t = timelines.get(m.id);
    const base = { id: m.id, wave: m.wave, after: m.after };
    if (!t) {
      return rollbackMs !== undefined
        ? { ...base, state: 'skipped', summary: 'never started: the release had rolled back' }
        : { ...base, state: 'not_started', summary: `never started: ${waitingFor(rules, m, timelines)}` };
    }
    const startedAt = iso(t.startMs);
    const own = memberSummary(t);
    if (rollbackMs !== undefined) {
      if (t.startMs >= rollbackMs)
        return { ...base, state: 'skipped', summary: 'never started: the release had rolled back' };
      if (m === first?.m) return { ...base, state: 'rolled_back', startedAt, summary: own };
      const promotedBefore =
        rules.promotion === 'each' && ownPromotion(t) !== undefined && ownPromotion(t)! <= rollbackMs;
      if (promotedBefore) return { ...base, state: 'promoted', startedAt, summary: own };
      return {
        ...base,
        state: 'rolled_back_by_release',
        startedAt,
        summary: `rolled back with the release at ${iso(rollbackMs)} (${first!.m.id} rolled back)`,
      };
    }
    if (promotedMs !== undefined) {
      return {
        ...base,
        state: 'promoted',
        startedAt,
        summary:
          rules.promotion === 'together'
            ? `passed its last stage at ${iso(passedAt(t, 'together')!)}, promoted with the release`
            : own,
      };
    }
    const p = passedAt(t, rules.promotion);
    return { ...base, state: p !== undefined ? 'ready' : 'running', startedAt, summary: own };
  });

  const after = (ms: number) => `${formatDuration(ms - fromMs)} after --from`;
  let outcome: ReleaseBacktestOutcome;
  let summary: string;
  if (rollbackMs !== undefined && first && first.t.outcome.kind === 'rolled_back') {
    const o = first.t.outcome;
    const checks = first.t.checks ?? [];
    outcome = {
      kind: 'rolled_back',
      at: o.at,
      atMs: o.atMs,
      member: first.m.id,
      stage: o.stage,
      weight: o.weight,
      checks,
      reason: o.reason,
    };
    summary =
      `the release would have rolled back at ${o.at} (${after(o.atMs)}) because member ${first.m.id} rolled back` +
      `${checks.length ? ` (check${checks.length > 1 ? 's' : ''} ${checks.join(', ')})` : ''} at stage ` +
      `${o.stage}/${first.t.stages} (${o.weight}%): ${o.reason}`;
  } else if (promotedMs !== undefined) {
    outcome = { kind: 'promoted', at: iso(promotedMs), atMs: promotedMs };
    summary =
      rules.promotion === 'together'
        ? `the release would have promoted every member together at ${iso(promotedMs)} (${after(promotedMs)}), once ${lastToPass(rules, timelines, promotedMs)} passed its last stage`
        : `the release would have promoted: its last member at ${iso(promotedMs)} (${after(promotedMs)})`;
  } else {
    const waiting = members.filter((m) => m.state !== 'promoted' && m.state !== 'ready').map((m) => m.id);
    outcome = { kind: 'running', at: iso(toMs), atMs: toMs, waiting };
    summary = `the release would still be running when the range ended at ${iso(toMs)}: waiting for ${waiting.join(', ')}`;
  }
  return { outcome, members, summary };
}

function lastToPass(
  rules: ReleaseRules,
  timelines: Map<string, MemberTimeline | undefined>,
  ms: number,
): string {
  const last = rules.members.filter((m) => {
    const t = timelines.get(m.id);
    return t !== undefined && passedAt(t, rules.promotion) === ms;
  });
  return last.map((m) => m.id).join(' and ');
}

function waitingFor(
  rules: ReleaseRules,
  m: ReleaseBacktestMember,
  timelines: Map<string, MemberTimeline | undefined>,
): string {
  const deps = m.after.filter((d) => {
    const t = timelines.get(d);
    const stage = m.afterStage?.[d];
    return !t || (stage !== undefined ? reachedAt(t, stage) : passedAt(t, rules.promotion)) === undefined;
  });
  if (deps.length > 0) {
    const named = deps.map((d) => (m.afterStage?.[d] !== undefined ? `${d} (stage ${m.afterStage[d]})` : d));
    return `${named.join(', ')} had not ${deps.some((d) => m.afterStage?.[d] !== undefined) ? 'reached it' : 'passed'} by the end of the range`;
  }
  return 'the wave before it had not passed and baked by the end of the range';
}

function memberSummary(t: MemberTimeline): string {
  const after = (ms: number) => `${formatDuration(ms - t.startMs)} after it started`;
  const o = t.outcome;
  switch (o.kind) {
    case 'promoted':
      return `would have promoted at ${o.at} (${after(o.atMs)})`;
    case 'rolled_back':
      return `would have rolled back at ${o.at} (${after(o.atMs)}, stage ${o.stage}/${t.stages} at ${o.weight}%) because ${o.reason}`;
    case 'running':
      return `still at stage ${o.stage}/${t.stages} (${o.weight}%) when the range ended`;
  }
}

/** A member's timeline from its backtest. */
export function timelineOf(result: BacktestResult, startMs: number, stages: number): MemberTimeline {
  const enteredMs: Record<number, number> = {};
  for (const e of result.events) {
    if (e.kind === 'stage_entered' && enteredMs[e.stage] === undefined) enteredMs[e.stage] = e.atMs;
  }
  const last = result.rounds[result.rounds.length - 1];
  const checks =
    result.outcome.kind === 'rolled_back' && last?.decision === 'rollback'
      ? last.checks
          .filter((c) => !c.dryRun && ['breach', 'fail', 'no_data', 'error'].includes(c.outcome))
          .map((c) => c.name)
      : undefined;
  return { startMs, enteredMs, stages, outcome: result.outcome, ...(checks?.length ? { checks } : {}) };
}

export interface ReleaseBacktestInput {
  rules: ReleaseRules;
  /** Each member's plan and the measure function of its target. */
  plans: Map<string, { plan: Plan; measure: MeasureFn }>;
  fromMs: number;
  toMs: number;
}

export interface ReleaseBacktestResult extends ReleaseVerdict {
  from: string;
  to: string;
  /** Every member's own backtest, from the time the release would have started it. */
  backtests: Record<string, BacktestResult>;
}

/**
 * Runs every member's backtest from the time the release would have started it (members in dependency order),
 * then applies the release's verdict. A member that would start only after another had already rolled back is not
 * run: the release never started it.
 */
export async function runReleaseBacktest(input: ReleaseBacktestInput): Promise<ReleaseBacktestResult> {
  const { rules, fromMs, toMs } = input;
  const timelines = new Map<string, MemberTimeline | undefined>();
  const backtests: Record<string, BacktestResult> = {};
  let firstRollback = Infinity;
  for (const m of startOrder(rules)) {
    const start = memberStartMs(rules, m.id, timelines, fromMs);
    if (start === undefined || start > toMs || start >= firstRollback) {
      timelines.set(m.id, undefined);
      continue;
    }
    const { plan, measure } = input.plans.get(m.id)!;
    const result = await runBacktest({ plan, fromMs: start, toMs, measure });
    backtests[m.id] = result;
    const t = timelineOf(result, start, plan.stages.length);
    timelines.set(m.id, t);
    if (t.outcome.kind === 'rolled_back') firstRollback = Math.min(firstRollback, t.outcome.atMs);
  }
  return { from: iso(fromMs), to: iso(toMs), ...releaseVerdict(rules, timelines, fromMs, toMs), backtests };
}

/** The text output: the release, each wave's members with when they started and what they did, the verdict. */
export function renderReleaseBacktest(
  name: string,
  rules: ReleaseRules & { onFailure: string },
  r: ReleaseBacktestResult,
  prometheus: string[],
): string {
  const lines = [
    `Backtest of release ${name} (${rules.members.length} members, promotion ${rules.promotion}, on failure ${rules.onFailure})`,
    `  Range:      ${r.from} → ${r.to}`,
    ...(prometheus.length ? [`  Prometheus: ${prometheus.join(', ')}`] : []),
    '  Assumed:    each member starts when the release would have started it, and its analysis ends when it waits',
    '              at the promotion gate; within a member, what its own backtest assumes (see --output json)',
    '',
  ];
  for (const w of rules.waves) {
    lines.push(`wave ${w.wave}${w.bakeMs ? ` (bakes ${formatDuration(w.bakeMs)})` : ''}`);
    for (const m of r.members.filter((x) => x.wave === w.wave)) {
      const spec = rules.members.find((x) => x.id === m.id)!;
      const after = m.after.length
        ? ` (after ${m.after.map((d) => (spec.afterStage?.[d] !== undefined ? `${d} stage ${spec.afterStage[d]}` : d)).join(', ')})`
        : '';
      lines.push(
        `  ${m.id}${after}: ${m.state.replace(/_/g, ' ')}${m.startedAt ? `, started ${m.startedAt}` : ''}: ${m.summary}`,
      );
    }
  }
  lines.push('', r.summary);
  return lines.join('\n');
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}
