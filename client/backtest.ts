// `canary backtest`: runs a plan's analysis over historical metrics, round by round, and walks the stages on
// simulated time, so a team sees when a rollout would have advanced, held, stepped back or rolled back before it
// trusts the thresholds. It reuses the live rollout's code: measurements come from the measureChecks activity
// (activities/rollout-activities.ts) evaluated at each round's time (`atMs`), verdicts from judgeRound
// (workflows/judge-v2.ts) for the full analysis form, or from the original judge (workflows/judge.ts) for
// short-form plans, as the live rollout judges them. The walk below mirrors workflows/rollout.ts (hold, watch,
// analyse, analyseV2): an analysis every interval from the stage's entry, a stage advances once its hold is served
// and its latest analysis passed, a medium breach steps back to the previous stage's weight and forward again,
// a rollback ends it, and outside the plan's deployment windows nothing advances. The loop takes the measure
// function as an argument, so it runs without Prometheus in tests.
//
// What a backtest cannot know, it assumes and says so: approval gates are approved at once; a question the judge
// asks a person (a breach under `then: approval`, missing evidence at a limit whose `then` is approval) is left
// unanswered, so the judge's own deadline decides; nobody pauses, promotes or aborts; activities take no time; and the stage weights do not change the history (every round reads
// what the canary actually served then, whatever weight the simulated walk would have given it).
import { checksForStage, type AnalysisCheck, type AnalysisMetric } from '../workflows/analysis-spec';
import { DurationError, formatDuration, parseDuration } from '../workflows/duration';
import { describeResults, judge, type Measurement } from '../workflows/judge';
import {
  judgeRound,
  roundOutcome,
  roundSlackFor,
  type JudgeState,
  type RoundMeasurement,
} from '../workflows/judge-v2';
import { describePlan } from '../workflows/plan';
import { describeTarget, type Target } from '../workflows/target';
import type { Plan, Verdict } from '../workflows/types';
import {
  calendarProblem,
  clockProblem,
  describeWindowState,
  mayAdvance,
  nextOpen,
} from '../workflows/windows';
import { renderTable } from './render';

/** More rounds than this is refused: a backtest that long is slow and unreadable; shorten the range. */
export const MAX_BACKTEST_ROUNDS = 10_000;

/** Something about the backtest's input is wrong (range, times, target); nothing was queried. */
export class BacktestInputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BacktestInputError';
  }
}

/** One round's measurements by check name, evaluated as of `atMs` (the measureChecks activity's answer). */
export type MeasureFn = (
  checks: AnalysisCheck[],
  atMs: number,
) => Promise<Record<string, RoundMeasurement | undefined>>;

export interface BacktestCheck {
  name: string;
  value: number | null;
  baseline?: number | null;
  /** judge-v2's outcome (pass, hold, breach, no_data, ...), or the original judge's (pass, fail, no_data). */
  outcome: string;
  severity?: string;
  note?: string;
  error?: string;
}

/**
 * What the walk did after a round: `continue` (passed, the hold goes on), `hold` (no pass: the stage would not
 * advance on this evidence), `advance` / `promote` (the hold was served and this round passed), `step-back` /
 * `step-forward` (a medium check moved traffic to the previous stage's weight and back), `rollback`.
 */
export type BacktestDecision =
  'continue' | 'hold' | 'advance' | 'promote' | 'step-back' | 'step-forward' | 'rollback';

export interface BacktestRound {
  at: string;
  atMs: number;
  /** 1-based. */
  stage: number;
  /** The canary weight during the round (a step-back's weight while stepped back). */
  weight: number;
  verdict: Verdict;
  /** judge-v2's action (advance-ok, hold, step-back, alert, rollback), or the original judge's verdict. */
  action: string;
  decision: BacktestDecision;
  checks: BacktestCheck[];
  reasons: string[];
}

export type BacktestEventKind =
  | 'approval_assumed'
  | 'person_asked'
  | 'window_wait'
  | 'stage_entered'
  | 'stepped_back'
  | 'stepped_forward'
  | 'promoted'
  | 'rolled_back';

export interface BacktestEvent {
  at: string;
  atMs: number;
  kind: BacktestEventKind;
  stage: number;
  weight: number;
  message: string;
}

export type BacktestOutcome =
  | { kind: 'promoted'; at: string; atMs: number }
  | { kind: 'rolled_back'; at: string; atMs: number; stage: number; weight: number; reason: string }
  | { kind: 'running'; at: string; atMs: number; stage: number; weight: number };

export interface BacktestResult {
  from: string;
  to: string;
  intervalMs: number;
  /** Which judge decided: judge-v2 (full analysis form) or the original one (short-form plans). */
  judge: 'judge-v2' | 'judge';
  checks: string[];
  /** What the backtest assumed that a live rollout would have learnt (approvals, unchanged history). */
  assumptions: string[];
  rounds: BacktestRound[];
  events: BacktestEvent[];
  /** What in the history makes the verdicts doubtful: rounds without any data, queries that failed. */
  notes: string[];
  outcome: BacktestOutcome;
  /** The final line: would have promoted / rolled back / still at stage N. */
  summary: string;
}

// ---------------------------------------------------------------------------------------------------------------
// Times and ranges

const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?([Zz]|[+-]\d{2}:\d{2})$/;

/**
 * A time on the command line: RFC 3339 with an offset (`2025-03-01T12:00:00Z`, `2025-03-01T14:00:00+02:00`),
 * `now`, or a time relative to now: `-7d`, `-36h`, `now-90m` (any duration a plan accepts).
 */
export function parseTime(option: string, text: string, nowMs: number): number {
  const t = text.trim();
  if (t.toLowerCase() === 'now') return nowMs;
  const relative = /^(?:now)?-(.+)$/i.exec(t);
  if (relative) {
    try {
      return nowMs - parseDuration(relative[1]);
    } catch (err) {
      if (err instanceof DurationError) {
        throw new BacktestInputError(`${option}: "${text}" is not a time before now: ${err.reason}`);
      }
      throw err;
    }
  }
  const m = RFC3339.exec(t);
  if (m) {
    // Date.parse reads 2025-02-30 as March 2 and lets 24:00 through: check the fields first.
    const [y, mo, d, h, mi] = m.slice(1, 6).map(Number);
    const s = m[6] === undefined ? 0 : Number(m[6]);
    const offset = m[7].length > 1 ? m[7].slice(1).split(':').map(Number) : undefined;
    const impossible =
      calendarProblem(y, mo, d) ??
      clockProblem(h, mi, s) ??
      (offset && (offset[0] > 23 || offset[1] > 59) ? `${m[7]} is not a UTC offset` : undefined);
    if (impossible) {
      throw new BacktestInputError(`${option}: "${text}" is not a real time: ${impossible}`);
    }
    const ms = Date.parse(t.replace(' ', 'T'));
    if (Number.isFinite(ms)) return ms;
  }
  throw new BacktestInputError(
    `${option}: "${text}" is not a time; use RFC 3339 with an offset (2025-03-01T12:00:00Z), now, or a time ` +
      'relative to now such as -7d, -36h or now-90m',
  );
}

/** At most this many analysis rounds fit in [fromMs, toMs] (none for a plan without checks). */
export function roundsInRange(plan: Plan, fromMs: number, toMs: number): number {
  return plan.analysis.checks.length === 0 ? 0 : Math.floor((toMs - fromMs) / plan.analysis.intervalMs);
}

/** Refuses an empty or reversed range, one in the future, and one with more than MAX_BACKTEST_ROUNDS rounds. */
export function checkRange(plan: Plan, fromMs: number, toMs: number, nowMs: number): void {
  if (!(toMs > fromMs)) {
    throw new BacktestInputError(`the range is empty: --from ${iso(fromMs)} is not before --to ${iso(toMs)}`);
  }
  if (toMs > nowMs) {
    throw new BacktestInputError(
      `--to ${iso(toMs)} is in the future (now is ${iso(nowMs)}): a backtest reads history only; use --to now`,
    );
  }
  const rounds = roundsInRange(plan, fromMs, toMs);
  if (rounds > MAX_BACKTEST_ROUNDS) {
    const longest = MAX_BACKTEST_ROUNDS * plan.analysis.intervalMs;
    throw new BacktestInputError(
      `the range ${iso(fromMs)} → ${iso(toMs)} holds ${rounds} analysis rounds at the plan's interval of ` +
        `${formatDuration(plan.analysis.intervalMs)}; at most ${MAX_BACKTEST_ROUNDS} are run: use a shorter range ` +
        `(at most ${formatDuration(longest)} at this interval)`,
    );
  }
}

// ---------------------------------------------------------------------------------------------------------------
// The walk

export interface BacktestInput {
  plan: Plan;
  fromMs: number;
  toMs: number;
  measure: MeasureFn;
}

/** What the simulated rollout carries between rounds: the part of the workflow's RolloutState analysis touches. */
interface WalkState {
  stageIndex: number;
  /** Whether stageIndex's traffic is on (before, the canary carries the previous stage's). */
  entered: boolean;
  weight: number;
  enteredAt: number;
  lastAnalysisAt: number;
  passedInStage: boolean;
  /** Since when every round of the stage has passed (its entry, at best): a stage's healthyFor. */
  passingSince?: number;
  lastVerdict?: Verdict;
  consecutiveFailures: number;
  consecutiveInconclusive: number;
  judge?: JudgeState;
  steppedBack?: { stageWeight: number; toWeight: number };
  /** The judge is asking a person (await-approval); the backtest leaves it unanswered. */
  asking?: boolean;
}

/** The short form's checks as measureChecks reads them: the plan's analysis window, the canary's value only. */
export function shortFormMeasureChecks(plan: Plan): AnalysisCheck[] {
  // The live rollout reads max(interval, 30s) of metrics per analysis (analysisWindowSeconds in rollout.ts).
  const windowMs = Math.max(30, Math.round(plan.analysis.intervalMs / 1000)) * 1000;
  const limit = plan.analysis.inconclusiveLimit;
  return plan.analysis.checks.map((c) => ({
    name: c.name,
    ...(c.metric !== undefined ? { metric: c.metric as AnalysisMetric } : {}),
    ...(c.query !== undefined ? { query: c.query } : {}),
    windowMs,
    onNoData: { action: 'hold', limit, then: 'rollback' },
    onQueryError: { limit, then: 'rollback' },
    shortForm: true,
  }));
}

/** Runs the plan's analysis over [fromMs, toMs] and walks the stages; checkRange is the caller's. */
export async function runBacktest(input: BacktestInput): Promise<BacktestResult> {
  const { plan, fromMs, toMs, measure } = input;
  const rules = plan.analysis.rules;
  const v2 = rules !== undefined;
  const shortForm = rules ? undefined : shortFormMeasureChecks(plan);
  const intervalMs = plan.analysis.intervalMs;
  const stageCount = plan.stages.length;
  const rounds: BacktestRound[] = [];
  const events: BacktestEvent[] = [];
  const assumptions = [
    'stage weights do not change the historical data: every round reads what the canary actually served then',
  ];
  const gated = plan.stages.flatMap((st, i) => (st.gate.type === 'approval' ? [`${i + 1}`] : []));
  if (gated.length > 0 || plan.promotion.gate) {
    const stages = gated.length > 0 ? `stage${gated.length > 1 ? 's' : ''} ${gated.join(', ')}` : '';
    const what = [stages, plan.promotion.gate ? 'the promotion' : ''].filter((w) => w !== '').join(' and ');
    assumptions.push(`approval gates were assumed approved at once (${what})`);
  }
  const asking = (rules ?? []).filter((r) => r.abort?.ask).map((r) => r.name);
  if (asking.length > 0) {
    assumptions.push(
      `a breach that asks a person (then: approval: ${asking.join(', ')}) was left unanswered: it rolls back ` +
        'after decideWithin unless it ends first',
    );
  }
  if (plan.analysis.checks.length === 0) {
    assumptions.push('the plan has no checks: nothing is measured, time alone moves the stages');
  }

  const s: WalkState = {
    stageIndex: 0,
    entered: false,
    weight: 0,
    enteredAt: fromMs,
    lastAnalysisAt: fromMs,
    passedInStage: false,
    consecutiveFailures: 0,
    consecutiveInconclusive: 0,
  };
  const label = () => `stage ${s.stageIndex + 1}/${stageCount}`;
  const event = (at: number, kind: BacktestEventKind, message: string) =>
    events.push({ at: iso(at), atMs: at, kind, stage: s.stageIndex + 1, weight: s.weight, message });
  const finish = (outcome: BacktestOutcome): BacktestResult => ({
    from: iso(fromMs),
    to: iso(toMs),
    intervalMs,
    judge: v2 ? 'judge-v2' : 'judge',
    checks: plan.analysis.checks.map((c) => c.name),
    assumptions,
    rounds,
    events,
    notes: notesOf(rounds),
    outcome,
    summary: summaryLine(outcome, fromMs, stageCount),
  });
  const running = (): BacktestResult =>
    finish({ kind: 'running', at: iso(toMs), atMs: toMs, stage: s.stageIndex + 1, weight: s.weight });

  let t = fromMs;
  /** The checks that apply while the canary carries stage `n`'s traffic (a check's `stages`, as live). */
  const checksIn = (n: number): AnalysisCheck[] => (rules ? checksForStage(rules, n) : shortForm!);
  const liveStage = () => (s.entered ? s.stageIndex + 1 : s.stageIndex);
  const analysing = () => checksIn(liveStage()).length > 0 && s.weight > 0;

  /** The round due at t; a rollback ends the backtest with its result. */
  const roundAt = async (): Promise<BacktestResult | undefined> => {
    const round = await analyse(t);
    if (round.decision !== 'rollback') return undefined;
    const reason = round.reasons.join('; ');
    event(t, 'rolled_back', `rolled back at ${s.weight}%: ${reason}`);
    return finish({
      kind: 'rolled_back',
      at: iso(t),
      atMs: t,
      stage: s.stageIndex + 1,
      weight: s.weight,
      reason: v2 ? `analysis at ${round.weight}%: ${reason}` : reason,
    });
  };

  /**
   * Outside the plan's deployment windows nothing advances (rollout.ts awaitWindow): the walk waits until they
   * open, analysing every interval meanwhile wherever the canary has traffic. Undefined once open; the result when
   * a rollback or the end of the range comes first.
   */
  const awaitWindow = async (isPromotion: boolean, what: string): Promise<BacktestResult | undefined> => {
    const w = plan.windows;
    if (!w || mayAdvance(w, t, isPromotion)) return undefined;
    const opensAt = nextOpen(w, t);
    event(t, 'window_wait', `${what} waits: ${describeWindowState(w, t)}`);
    for (;;) {
      if (opensAt !== undefined && t >= opensAt) return undefined;
      const due = analysing() ? s.lastAnalysisAt + intervalMs : undefined;
      if (due !== undefined && t >= due) {
        const ended = await roundAt();
        if (ended) return ended;
        continue;
      }
      const next = Math.min(due ?? Infinity, opensAt ?? Infinity);
      if (!(next <= toMs)) return running();
      t = next;
    }
  };

  for (;;) {
    const stage = plan.stages[s.stageIndex];
    const final = s.stageIndex === stageCount - 1;
    // The gate is passed before the stage's traffic shift; a person is assumed to approve at once.
    if (stage.gate.type === 'approval') {
      event(t, 'approval_assumed', `${label()}: approval gate assumed approved`);
    }
    const closed = await awaitWindow(final, `${label()} at ${stage.weight}%`);
    if (closed) return closed;
    s.weight = stage.weight;
    s.entered = true;
    s.enteredAt = t;
    s.lastAnalysisAt = t;
    s.passedInStage = false;
    s.passingSince = t;
    event(
      t,
      'stage_entered',
      `${label()} entered: canary at ${s.weight}%` +
        (stage.holdMs > 0 ? ` for ${formatDuration(stage.holdMs)}` : ''),
    );

    // The hold (rollout.ts hold + watch): it ends once served with evidence; analyses run every interval.
    // A stage none of whose checks apply moves by time alone, as a plan without checks does.
    const healthy = () =>
      stage.healthyForMs === undefined ||
      (s.passingSince !== undefined && t - s.passingSince >= stage.healthyForMs);
    const holdEnd = s.enteredAt + stage.holdMs;
    // The stage advances on a round taken at or after its hold's end (rollout.ts roundAfterHold), which the end of
    // the hold calls for when the schedule has none there.
    const roundAfterHold = () => s.lastAnalysisAt >= holdEnd;
    const evidence = () =>
      !analysing() ||
      stage.holdMs === 0 ||
      (s.passedInStage && s.lastVerdict === 'pass' && healthy() && roundAfterHold());
    for (;;) {
      if (t - s.enteredAt >= stage.holdMs && evidence()) break;
      const due = analysing()
        ? Math.min(s.lastAnalysisAt + intervalMs, roundAfterHold() ? Infinity : holdEnd)
        : undefined;
      if (due !== undefined && t >= due) {
        const ended = await roundAt();
        if (ended) return ended;
        continue;
      }
      const next = Math.min(due ?? Infinity, holdEnd > t ? holdEnd : Infinity);
      if (!(next <= toMs)) return running();
      t = next;
    }
    // Label the round that completed the hold (when one did, at this very time).
    const last = rounds[rounds.length - 1];
    if (last && last.atMs === t && last.stage === s.stageIndex + 1 && last.decision === 'continue') {
      last.decision = final ? 'promote' : 'advance';
    }
    if (final) {
      // The prompt before promotion (promotion.gate) comes once the hold is served; approved at once, as above.
      if (plan.promotion.gate) {
        event(t, 'approval_assumed', `${label()}: promotion gate assumed approved`);
      }
      // Promotion obeys the windows too, unless the plan says `promotion: any`.
      const waiting = await awaitWindow(true, 'promotion');
      if (waiting) return waiting;
      event(t, 'promoted', `promoted: ${label()} served${stage.holdMs > 0 ? ' its hold' : ''}`);
      return finish({ kind: 'promoted', at: iso(t), atMs: t });
    }
    s.stageIndex++;
    s.entered = false;
  }

  /** Keeps the unbroken run of passing rounds of the entered stage (healthyFor), as rollout.ts does. */
  function passing(passed: boolean, at: number): void {
    if (!s.entered) return;
    if (!passed) s.passingSince = undefined;
    else s.passingSince ??= at;
  }

  /** One analysis round at `at`, as rollout.ts analyseV2 / analyse act on it. */
  async function analyse(at: number): Promise<BacktestRound> {
    const applying = checksIn(liveStage());
    const measurements = await measure(applying, at);
    s.lastAnalysisAt = at;
    const weight = s.weight;
    const stage = s.stageIndex + 1;
    if (rules) {
      // As a new rollout judges: a query the source rejects fails its check at once.
      const { state, decision } = judgeRound(applying, measurements, at, s.judge, {
        permanentQueryErrors: true,
        roundSlackMs: roundSlackFor(intervalMs),
      });
      s.judge = state;
      const { advances, verdict } = roundOutcome(decision);
      s.lastVerdict = verdict;
      const round: BacktestRound = {
        at: iso(at),
        atMs: at,
        stage,
        weight,
        verdict,
        action: decision.action,
        decision: advances ? 'continue' : 'hold',
        checks: decision.perCheck.map((v) => {
          const m = measurements[v.name];
          return {
            name: v.name,
            value: v.value,
            ...(v.baseline !== undefined ? { baseline: v.baseline } : {}),
            outcome: v.outcome,
            ...(v.severity ? { severity: v.severity } : {}),
            note: v.note,
            ...(m?.error ? { error: `${m.error.kind}: ${m.error.message}` } : {}),
          };
        }),
        reasons: decision.reasons,
      };
      rounds.push(round);
      if (decision.action === 'rollback') {
        round.decision = 'rollback';
        return round;
      }
      if (advances) s.passedInStage = true;
      passing(advances, at);
      if (decision.action === 'await-approval' && !s.asking) {
        s.asking = true;
        event(at, 'person_asked', `a person would be asked: ${decision.reasons.join('; ')}`);
      } else if (decision.action !== 'await-approval') s.asking = false;
      if (decision.steppedBack && !s.steppedBack) {
        // In the first stage no earlier weight carries canary traffic: the judge's hold applies instead.
        if (s.stageIndex > 0) {
          const previous = plan.stages[s.stageIndex - 1].weight;
          s.steppedBack = { stageWeight: s.weight, toWeight: previous };
          s.weight = previous;
          round.decision = 'step-back';
          event(
            at,
            'stepped_back',
            `stepped back from ${s.steppedBack.stageWeight}% to ${previous}%: ${decision.reasons.join('; ')}`,
          );
        }
      } else if (!decision.steppedBack && s.steppedBack) {
        const back = s.steppedBack;
        s.steppedBack = undefined;
        s.weight = back.stageWeight;
        round.decision = 'step-forward';
        event(at, 'stepped_forward', `healthy again: forward to ${back.stageWeight}%`);
      }
      return round;
    }

    // The short form: the original judge, with the plan's failureLimit and inconclusiveLimit.
    const byName: Measurement[] = plan.analysis.checks.map((c) => {
      const m = measurements[c.name];
      return {
        name: c.name,
        value: m?.value ?? null,
        ...(m?.error ? { error: m.error.message } : {}),
      };
    });
    const { verdict, checks } = judge(plan.analysis.checks, byName);
    s.lastVerdict = verdict;
    const summary = describeResults(plan.analysis.checks, checks);
    const round: BacktestRound = {
      at: iso(at),
      atMs: at,
      stage,
      weight,
      verdict,
      action: verdict,
      decision: verdict === 'pass' ? 'continue' : 'hold',
      checks: checks.map((r) => {
        const e = measurements[r.name]?.error;
        return {
          name: r.name,
          value: r.value,
          outcome: r.outcome,
          ...(e ? { error: `${e.kind}: ${e.message}` } : {}),
        };
      }),
      reasons: [summary],
    };
    rounds.push(round);
    passing(verdict === 'pass', at);
    if (verdict === 'pass') {
      s.consecutiveFailures = 0;
      s.consecutiveInconclusive = 0;
      s.passedInStage = true;
    } else if (verdict === 'fail') {
      s.consecutiveFailures++;
      s.consecutiveInconclusive = 0;
      if (s.consecutiveFailures >= plan.analysis.failureLimit) {
        round.decision = 'rollback';
        round.reasons = [
          `analysis failed ${s.consecutiveFailures} time(s) in a row at ${weight}%: ${summary}`,
        ];
      }
    } else {
      s.consecutiveInconclusive++;
      if (s.consecutiveInconclusive >= plan.analysis.inconclusiveLimit) {
        round.decision = 'rollback';
        round.reasons = [
          `no metric evidence for ${s.consecutiveInconclusive} analyses in a row at ${weight}%: ${summary}`,
        ];
      }
    }
    return round;
  }
}

/** Rounds that saw no data at all (outside Prometheus's retention? wrong labels?) and failed queries. */
function notesOf(rounds: BacktestRound[]): string[] {
  const notes: string[] = [];
  const empty = rounds.filter((r) => r.checks.length > 0 && r.checks.every((c) => c.value === null));
  if (empty.length > 0) {
    notes.push(
      `${empty.length} of ${rounds.length} rounds had no data for any check, the first at ${empty[0].at}: is the ` +
        "range within Prometheus's retention, and do the target and versions match the series' labels?",
    );
  }
  const failed = rounds.flatMap((r) =>
    r.checks.filter((c) => c.error !== undefined && !c.error.startsWith('no_data:')),
  );
  if (failed.length > 0) {
    notes.push(
      `${failed.length} check measurements failed (${failed[0].name}: ${failed[0].error}); a live rollout would ` +
        'have met the same failure',
    );
  }
  return notes;
}

function summaryLine(o: BacktestOutcome, fromMs: number, stageCount: number): string {
  const after = (ms: number) => `${formatDuration(ms - fromMs)} after --from`;
  switch (o.kind) {
    case 'promoted':
      return `would have promoted at ${o.at} (${after(o.atMs)})`;
    case 'rolled_back':
      return `would have rolled back at ${o.at} (${after(o.atMs)}, stage ${o.stage}/${stageCount} at ${o.weight}%) because ${o.reason}`;
    case 'running':
      return `still at stage ${o.stage}/${stageCount} (${o.weight}%) when the range ended at ${o.at}`;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Output

export interface BacktestContext {
  /** Where the plan came from (`preset "quick"`, a file path). */
  planSource: string;
  plan: Plan;
  target: Target;
  /** The Prometheus server's URL as shown in messages (no credentials). */
  prometheus?: string;
}

/** The header, the round table (events interleaved) and the final line. */
export function renderBacktest(result: BacktestResult, ctx: BacktestContext): string {
  const lines: string[] = [
    `Backtest of ${ctx.planSource} (${describePlan(ctx.plan)})`,
    `  Target:     ${describeTarget(ctx.target)}`,
    ...(ctx.prometheus ? [`  Prometheus: ${ctx.prometheus}`] : []),
    `  Range:      ${result.from} → ${result.to}, an analysis every ${formatDuration(result.intervalMs)}`,
    `  Judge:      ${
      result.judge === 'judge-v2'
        ? 'judge-v2 (full analysis form)'
        : 'the original judge (short-form plan), as the live rollout judges it'
    }`,
    ...result.assumptions.map((a, i) => `  ${i === 0 ? 'Assumed:   ' : '           '} ${a}`),
    '',
  ];
  const headers = ['time', 'stage', 'weight', ...result.checks, 'verdict', 'decision'];
  const rows = result.rounds.map((r) => [
    r.at,
    `${r.stage}`,
    `${r.weight}%`,
    ...result.checks.map((name) => {
      const c = r.checks.find((x) => x.name === name);
      if (!c) return '-';
      return `${c.value === null ? '-' : formatValue(c.value)} ${c.outcome}`;
    }),
    r.verdict,
    r.decision === 'rollback' || r.decision === 'hold' ? `${r.decision}: ${r.reasons[0] ?? ''}` : r.decision,
  ]);
  const [head, ...body] = renderTable(headers, rows).split('\n');
  // Events go between the rows, outside the columns: those of a round's own time (a step-back it caused, the
  // stage it completed) right after it.
  const eventLine = (ev: BacktestEvent): string => `${ev.at}  » ${ev.message}`;
  const out = [head];
  let e = 0;
  result.rounds.forEach((r, i) => {
    while (e < result.events.length && result.events[e].atMs < r.atMs)
      out.push(eventLine(result.events[e++]));
    out.push(body[i]);
    while (e < result.events.length && result.events[e].atMs === r.atMs)
      out.push(eventLine(result.events[e++]));
  });
  while (e < result.events.length) out.push(eventLine(result.events[e++]));
  lines.push(...out, '', ...result.notes.map((n) => `Note: ${n}`), result.summary);
  return lines.join('\n');
}

function formatValue(v: number): string {
  return String(Math.round(v * 1000) / 1000);
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}
