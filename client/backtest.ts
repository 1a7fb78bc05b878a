// `canary backtest`: runs a plan's analysis over historical metrics, round by round, and walks the stages on
// simulated time, so a team sees when a rollout would have advanced, held, stepped back or rolled back before it
// trusts the thresholds. It runs the live rollout's code: the walk is the rollout machine (workflows/machine/), the
// same code the workflow drives, here on a simulated clock (workflows/machine/sim.ts); measurements come from the
// measureChecks activity (activities/rollout-activities.ts) evaluated at each round's time (`atMs`), and the machine
// judges them as a new rollout does (judge-v2 for the full analysis form, the original judge for short-form plans).
// The loop takes the measure function as an argument, so it runs without Prometheus in tests.
//
// What a backtest cannot know, it assumes and says so: approval gates are approved at once; a question the judge
// asks a person (a breach under `then: approval`, missing evidence at a limit whose `then` is approval) is left
// unanswered, so the judge's own deadline decides; nobody pauses, promotes or aborts; activities take no time; and the stage weights do not change the history (every round reads
// what the canary actually served then, whatever weight the simulated walk would have given it).
import { describeMirror } from '../workflows/mirror-spec';
import type { AnalysisCheck, AnalysisMetric } from '../workflows/analysis-spec';
import { DurationError, formatDuration, parseDuration } from '../workflows/duration';
import { describeResults } from '../workflows/judge';
import type { RoundMeasurement } from '../workflows/judge-v2';
import { runRollout } from '../workflows/machine/ending';
import { RolloutMachine } from '../workflows/machine/machine';
import { SimPort, type PendingStep } from '../workflows/machine/sim';
import { initialState } from '../workflows/machine/state';
import { describePlan } from '../workflows/plan';
import { describeTarget, type Target } from '../workflows/target';
import type { CheckResult, Plan, Verdict } from '../workflows/types';
import { calendarProblem, clockProblem } from '../workflows/windows-spec';
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
  /** A dry-run check: judged and shown, no part in the decision; its note says what it would have done. */
  dryRun?: true;
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
  | 'dry_run'
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

/** A dry-run check's note when it would have acted (judge-dry-run.ts). */
const DRY_RUN_ACTS = /^dry run: would (roll back|step back|ask a person)/;

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

/** What a backtest cannot know and assumes, said in its header. */
function assumptionsOf(plan: Plan): string[] {
  const assumptions = [
    'stage weights do not change the historical data: every round reads what the canary actually served then',
  ];
  const gated = plan.stages.flatMap((st, i) => (st.gate.type === 'approval' ? [`${i + 1}`] : []));
  if (gated.length > 0 || plan.promotion.gate) {
    const stages = gated.length > 0 ? `stage${gated.length > 1 ? 's' : ''} ${gated.join(', ')}` : '';
    const what = [stages, plan.promotion.gate ? 'the promotion' : ''].filter((w) => w !== '').join(' and ');
    assumptions.push(`approval gates were assumed approved at once (${what})`);
  }
  const asking = (plan.analysis.rules ?? []).filter((r) => r.abort?.ask).map((r) => r.name);
  if (asking.length > 0) {
    assumptions.push(
      `a breach that asks a person (then: approval: ${asking.join(', ')}) was left unanswered: it rolls back ` +
        'after decideWithin unless it ends first',
    );
  }
  const shadow = plan.stages.flatMap((st, i) => (st.mirror ? [`${i + 1}`] : []));
  if (shadow.length > 0) {
    assumptions.push(
      `shadow stage${shadow.length > 1 ? 's' : ''} ${shadow.join(', ')} count as weight 0 for traffic: their rounds read ` +
        'what the canary served then, not what mirrored requests would have shown',
    );
  }
  if (plan.analysis.checks.length === 0) {
    assumptions.push('the plan has no checks: nothing is measured, time alone moves the stages');
  }
  const rules = plan.analysis.rules ?? [];
  const dry = rules.filter((r) => r.dryRun).map((r) => r.name);
  if (dry.length > 0) {
    assumptions.push(
      `dry-run checks (${dry.join(', ')}) are measured and judged and say what they would have done; they decide ` +
        'nothing, as in a live rollout',
    );
  }
  const web = rules.filter((r) => r.web).map((r) => r.name);
  if (web.length > 0) {
    assumptions.push(
      `web checks (${web.join(', ')}) read an endpoint as it answers now, not as of a past time: every round of ` +
        'theirs fails (unsupported)',
    );
  }
  return assumptions;
}

/** The live rollout's machine, as a new rollout runs it, on a simulated clock starting at `fromMs`. */
function simulatedRollout(plan: Plan, fromMs: number): RolloutMachine {
  return new RolloutMachine(
    {
      ...initialState(),
      neverStuck: true,
      machineV2: true,
      touched: {},
      planRules: { strict: true, limits: true },
    },
    {
      plan,
      target: { app: 'backtest', namespace: 'backtest' },
      version: 'canary',
      requestedBy: 'backtest',
      cli: 'canary',
      workflowId: 'backtest',
      firstRunId: 'backtest',
      temporalNamespace: 'backtest',
      flags: { routingLifecycle: true, judgeV2: plan.analysis.rules !== undefined, alertsV2: true },
      historyLimit: Infinity,
    },
    new SimPort(fromMs),
  );
}

/** What the machine did, as the backtest reports it: its rounds, and the events between them. */
class BacktestRecorder {
  readonly rounds: BacktestRound[] = [];
  readonly events: BacktestEvent[] = [];
  /** Each round's measurements (their errors are the backtest's notes), in the order they were taken. */
  readonly measured: Array<Record<string, RoundMeasurement | undefined>> = [];
  ended: BacktestOutcome | undefined;
  private judged = 0;
  private personAsked = false;
  /** The stage (0-based) whose hold was last served, and the last entered. */
  private served = -1;
  private entered = -1;
  private windowWaitSeen = false;
  /** Dry-run checks whose last round would have acted (rolled back, stepped back, asked). */
  private dryActing = new Set<string>();
  private readonly plan: Plan;
  private readonly last: number;

  constructor(
    private readonly m: RolloutMachine,
    private readonly port: SimPort,
  ) {
    this.plan = m.plan;
    this.last = m.plan.stages.length - 1;
  }

  private label(): string {
    return `stage ${this.m.s.stageIndex + 1}/${this.plan.stages.length}`;
  }

  event(kind: BacktestEventKind, message: string, weight = this.m.s.weight, at = this.port.now()): void {
    this.events.push({ at: iso(at), atMs: at, kind, stage: this.m.s.stageIndex + 1, weight, message });
  }

  /** Once per run of rounds in which a dry-run check would have acted: what it would have done. */
  private dryRunEvents(checks: readonly CheckResult[], weight: number, at: number): void {
    for (const c of checks) {
      if (!c.dryRun) continue;
      const acts = DRY_RUN_ACTS.test(c.note ?? '');
      if (acts && !this.dryActing.has(c.name)) this.event('dry_run', `${c.name}: ${c.note}`, weight, at);
      if (acts) this.dryActing.add(c.name);
      else this.dryActing.delete(c.name);
    }
  }

  private lastRound(): BacktestRound | undefined {
    return this.rounds[this.rounds.length - 1];
  }

  /** Picks up the rounds the machine has judged since the last look. */
  private syncRounds(): void {
    const s = this.m.s;
    while (this.judged < (s.analysesRun ?? 0)) {
      this.judged++;
      const record = s.analyses[s.analyses.length - 1 - ((s.analysesRun ?? 0) - this.judged)];
      const measurements = this.measured[this.judged - 1] ?? {};
      const at = Date.parse(record.at);
      const reasons = record.reasons ?? [describeResults(this.plan.analysis.checks, record.checks)];
      this.rounds.push({
        at: record.at,
        atMs: at,
        stage: record.stage,
        weight: record.weight,
        verdict: record.verdict,
        action: record.action ?? record.verdict,
        decision: record.verdict === 'pass' ? 'continue' : 'hold',
        checks: record.checks.map((c) => {
          const e = measurements[c.name]?.error;
          return {
            name: c.name,
            value: c.value,
            ...(c.baseline !== undefined ? { baseline: c.baseline } : {}),
            outcome: c.judged ?? c.outcome,
            ...(c.severity ? { severity: c.severity } : {}),
            ...(c.note !== undefined ? { note: c.note } : {}),
            ...(e ? { error: `${e.kind}: ${e.message}` } : {}),
            ...(c.dryRun ? { dryRun: true as const } : {}),
          };
        }),
        reasons,
      });
      this.dryRunEvents(record.checks, s.weight, at);
      // A person would be asked once per run of rounds that ask (the backtest leaves the question unanswered).
      const asks = record.action === 'await-approval';
      if (asks && !this.personAsked) {
        this.event('person_asked', `a person would be asked: ${reasons.join('; ')}`, s.weight, at);
      }
      this.personAsked = asks;
    }
  }

  /** Looks at the machine after each of its steps: rounds, stage entries, served holds, windows, the end. */
  observe(): void {
    this.syncRounds();
    const { s, plan } = this.m;
    const now = this.port.now();
    if (s.stageIndex > this.entered && s.stageEntered && s.phase === 'progressing' && !s.finalizing) {
      this.entered = s.stageIndex;
      const hold = plan.stages[s.stageIndex].holdMs;
      const mirror = plan.stages[s.stageIndex].mirror;
      this.event(
        'stage_entered',
        `${this.label()} entered: canary at ${s.weight}%` +
          (mirror ? `, mirroring ${describeMirror(mirror)} to it (a shadow stage)` : '') +
          (hold > 0 ? ` for ${formatDuration(hold)}` : ''),
      );
    }
    // A hold is served once the walk moves past it: to the next stage's gate, or to the promotion gate, its window
    // or promotion itself.
    const finalServed =
      s.stageIndex === this.last &&
      s.stageEntered &&
      (s.promotionGate !== undefined || s.finalizing || s.phase === 'promoted' || s.windowWait !== undefined);
    if (s.stageIndex - 1 > this.served || (finalServed && this.served < this.last)) {
      this.served = finalServed ? this.last : s.stageIndex - 1;
      // Label the round that completed the hold (when one did, at this very time).
      const r = this.lastRound();
      if (r && r.atMs === now && r.stage === this.served + 1 && r.decision === 'continue') {
        r.decision = this.served === this.last ? 'promote' : 'advance';
      }
    }
    if (s.windowWait && !this.windowWaitSeen) {
      this.windowWaitSeen = true;
      const what =
        s.stageIndex === this.last && s.stageEntered
          ? 'promotion'
          : `${this.label()} at ${plan.stages[s.stageIndex].weight}%`;
      this.event('window_wait', `${what} waits: ${s.windowWait.note}`);
    } else if (!s.windowWait) this.windowWaitSeen = false;
    if (this.ended) return;
    if (s.finalizing || s.phase === 'promoted') {
      const hold = plan.stages[this.last].holdMs;
      this.event('promoted', `promoted: ${this.label()} served${hold > 0 ? ' its hold' : ''}`);
      this.ended = { kind: 'promoted', at: iso(now), atMs: now };
    } else if (s.phase === 'rolling_back') {
      const r = this.lastRound();
      const reason = s.rollbackReason ?? '';
      if (r) {
        r.decision = 'rollback';
        // The original judge's round says why it rolled back (judge-v2's reasons say it already).
        if (!this.m.ctx.flags.judgeV2) r.reasons = [reason];
      }
      this.event('rolled_back', `rolled back at ${s.weight}%: ${r ? r.reasons.join('; ') : reason}`);
      this.ended = {
        kind: 'rolled_back',
        at: iso(now),
        atMs: now,
        stage: s.stageIndex + 1,
        weight: s.weight,
        reason,
      };
    }
  }

  /** A traffic shift the machine asks for: a step back or forward is an event of the round that caused it. */
  shift(summary: string, to: number): void {
    const r = this.lastRound();
    if (summary.startsWith('step back')) {
      if (r) r.decision = 'step-back';
      this.event(
        'stepped_back',
        `stepped back from ${this.m.s.weight}% to ${to}%: ${(r?.reasons ?? []).join('; ')}`,
        to,
      );
    } else if (summary.startsWith('forward again')) {
      if (r) r.decision = 'step-forward';
      this.event('stepped_forward', `healthy again: forward to ${to}%`, to);
    }
  }

  /** The gate waiting now, passed at once: a person is assumed to approve. */
  approveGate(): void {
    const { s } = this.m;
    const which = this.m.atPromotionGate() ? 'promotion gate' : 'approval gate';
    this.event('approval_assumed', `${this.label()}: ${which} assumed approved`);
    s.approvedStage = s.stageIndex;
    void this.m.carry([{ type: 'wake' }]);
  }
}

/** Answers one of the machine's steps: at once, measuring history for a round; other steps change nothing. */
async function answerStep(p: PendingStep, m: RolloutMachine, measure: MeasureFn, rec: BacktestRecorder) {
  const c = p.command;
  const now = m.now();
  switch (c.step) {
    case 'preflight':
      return p.resolve({ findings: [] });
    case 'alertSinks':
      return p.resolve(['log']);
    case 'setCanaryWeight':
      return p.resolve({ previous: m.s.weight, current: (c.args[0] as { weight: number }).weight });
    case 'measureChecks': {
      const measurements = await measure((c.args[0] as { checks: AnalysisCheck[] }).checks, now);
      rec.measured.push(measurements);
      return p.resolve({ measurements });
    }
    case 'runAnalysis': {
      // The short form as measureChecks reads it: the plan's analysis window, the canary's value only.
      const measurements = await measure(shortFormMeasureChecks(m.plan), now);
      rec.measured.push(measurements);
      return p.resolve(
        m.plan.analysis.checks.map((ch) => {
          const x = measurements[ch.name];
          return { name: ch.name, value: x?.value ?? null, ...(x?.error ? { error: x.error.message } : {}) };
        }),
      );
    }
    default:
      return p.resolve(c.step === 'prepareCanary' ? {} : undefined);
  }
}

/**
 * Runs the plan's analysis over [fromMs, toMs] and walks the stages; checkRange is the caller's. The walk is the
 * live rollout's machine (workflows/machine/) on a simulated clock: every step answers at once (a round with the
 * history as of its time), a waiting gate is approved at once, and time moves to the machine's next deadline.
 */
export async function runBacktest(input: BacktestInput): Promise<BacktestResult> {
  const { plan, fromMs, toMs, measure } = input;
  const m = simulatedRollout(plan, fromMs);
  const port = m.port as SimPort;
  const rec = new BacktestRecorder(m, port);
  port.onPublish = () => rec.observe();
  port.onCommand = (c) => {
    rec.observe();
    if (c.step === 'setCanaryWeight') rec.shift(c.summary, (c.args[0] as { weight: number }).weight);
  };
  const finish = (outcome: BacktestOutcome): BacktestResult => ({
    from: iso(fromMs),
    to: iso(toMs),
    intervalMs: plan.analysis.intervalMs,
    judge: plan.analysis.rules ? 'judge-v2' : 'judge',
    checks: plan.analysis.checks.map((c) => c.name),
    assumptions: assumptionsOf(plan),
    rounds: rec.rounds,
    events: rec.events,
    notes: notesOf(rec.rounds),
    outcome,
    summary: summaryLine(outcome, fromMs, plan.stages.length),
  });
  void runRollout(m).catch(() => undefined);
  for (;;) {
    await new Promise((r) => setImmediate(r));
    rec.observe();
    if (rec.ended) return finish(rec.ended);
    if (port.wakeOne()) continue;
    const step = port.steps.shift();
    if (step) {
      // A failed query of the backtest's own (Prometheus unreachable) stops it: it is not the rollout's failure.
      await answerStep(step, m, measure, rec);
      continue;
    }
    if (m.gateWaiting() && m.s.approvedStage !== m.s.stageIndex) {
      rec.approveGate();
      continue;
    }
    const next = port.nextDeadline();
    if (next === undefined || !(next <= toMs)) {
      return finish({
        kind: 'running',
        at: iso(toMs),
        atMs: toMs,
        stage: m.s.stageIndex + 1,
        weight: m.s.weight,
      });
    }
    port.advanceTo(next);
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
      return `${c.value === null ? '-' : formatValue(c.value)} ${c.outcome}${c.dryRun ? ' (dry run)' : ''}`;
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
