// Pure text rendering of a rollout's status and of rollout lists. No I/O; colour only when asked for.
import type { AnalysisRecord, Phase, RolloutStatus, StageView, Verdict } from '../workflows/types';
import { TERMINAL_PHASES } from '../workflows/types';
import { formatDuration } from '../workflows/duration';
import { STAGE_MARKS, describeEnding } from '../workflows/details';
import { describeFreeze, describeQueued } from '../workflows/fleet-model';
import type { RolloutSummary } from './types';
import { hookStatusLines } from './render-hooks';

export interface RenderOptions {
  /** ANSI colours; the CLI sets it only when stdout is a TTY and NO_COLOR is unset. Default false. */
  color?: boolean;
  /** The CLI's name in hints (`canary approve ...`). */
  cliName?: string;
  /** How many analyses to show, newest last. Default 5. */
  maxAnalyses?: number;
  /** Width of the progress bars in cells. Default 20. */
  barWidth?: number;
}

const ANSI = {
  bold: '\u001b[1m',
  dim: '\u001b[2m',
  red: '\u001b[31m',
  green: '\u001b[32m',
  yellow: '\u001b[33m',
  cyan: '\u001b[36m',
  reset: '\u001b[0m',
} as const;

type Style = keyof typeof ANSI;

function paint(text: string, style: Style | undefined, color: boolean): string {
  return color && style ? `${ANSI[style]}${text}${ANSI.reset}` : text;
}

const PHASE_STYLE: Record<Phase, Style> = {
  progressing: 'cyan',
  queued: 'yellow',
  waiting_approval: 'yellow',
  paused: 'yellow',
  rolling_back: 'red',
  rolled_back: 'red',
  promoted: 'green',
  failed: 'red',
  not_started: 'red',
};

const VERDICT_STYLE: Record<Verdict, Style> = { pass: 'green', fail: 'red', inconclusive: 'yellow' };

/**
 * `[██████░░░░]  60%` — fraction is clamped to [0, 1]. Any progress shows at least one cell, and the bar
 * is full only when done.
 */
export function progressBar(fraction: number, width = 20): string {
  const f = Number.isFinite(fraction) ? Math.min(1, Math.max(0, fraction)) : 0;
  const filled = f === 0 ? 0 : f === 1 ? width : Math.min(width - 1, Math.max(1, Math.round(f * width)));
  const percent = Math.floor(f * 100);
  return `[${'█'.repeat(filled)}${'░'.repeat(width - filled)}] ${String(percent).padStart(3)}%`;
}

function pad2(n: number): string {
  return String(n).padStart(2, '0');
}

/** `12:03:04Z` when on the same UTC day as `now`, `2025-01-31 12:03:04Z` otherwise. */
export function formatTime(iso: string | Date, now: Date): string {
  const d = iso instanceof Date ? iso : new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  const time = `${pad2(d.getUTCHours())}:${pad2(d.getUTCMinutes())}:${pad2(d.getUTCSeconds())}Z`;
  const day = `${d.getUTCFullYear()}-${pad2(d.getUTCMonth() + 1)}-${pad2(d.getUTCDate())}`;
  const today = `${now.getUTCFullYear()}-${pad2(now.getUTCMonth() + 1)}-${pad2(now.getUTCDate())}`;
  return day === today ? time : `${day} ${time}`;
}

function ago(iso: string, now: Date): string {
  const ms = now.getTime() - Date.parse(iso);
  return Number.isFinite(ms) ? `${formatDuration(Math.max(0, ms))} ago` : '';
}

function formatValue(value: number | null): string {
  if (value === null) return 'no data';
  if (Number.isInteger(value)) return String(value);
  return String(Number(value.toFixed(3)));
}

/** The current stage's hold time left, corrected for the time elapsed since the query was answered. */
export function liveStageTimeLeftMs(status: RolloutStatus, now: Date): number {
  let left = Math.max(0, status.stageTimeLeftMs);
  if (status.stageEndsAt && status.phase === 'progressing') {
    const untilEnd = Date.parse(status.stageEndsAt) - now.getTime();
    if (Number.isFinite(untilEnd)) left = Math.min(left, Math.max(0, untilEnd));
  }
  return left;
}

/** The whole plan's hold time left (gate waits excluded), corrected like {@link liveStageTimeLeftMs}. */
export function livePlanTimeLeftMs(status: RolloutStatus, now: Date): number {
  const drift = Math.max(0, status.stageTimeLeftMs) - liveStageTimeLeftMs(status, now);
  return Math.max(0, status.planTimeLeftMs - drift);
}

function currentStage(status: RolloutStatus): StageView | undefined {
  return status.stages.find((s) => s.stage === status.stage);
}

function stageStrip(status: RolloutStatus, color: boolean): string {
  return status.stages
    .map((s) => {
      const mark = STAGE_MARKS[s.state];
      const gate = s.gate === 'approval' ? ' (approval)' : '';
      const note =
        s.state === 'skipped'
          ? ' skipped'
          : s.state === 'failed'
            ? ' failed'
            : s.state === 'stopped'
              ? ` ${status.ending ? describeEnding(status.ending) : 'stopped'}`
              : '';
      const text = `${mark} ${s.weight}%${gate}${note}`;
      if (s.state === 'failed') return paint(text, 'red', color);
      if (s.state === 'stopped') return paint(text, 'yellow', color);
      return s.state === 'current' ? paint(text, 'bold', color) : text;
    })
    .concat(status.promotionGate ? [promotionMark(status, color)] : [])
    .join('  ');
}

/** The promotion gate after the stages: `· promotion (approval)`, current while it waits, done once promoted. */
function promotionMark(status: RolloutStatus, color: boolean): string {
  if (status.phase === 'promoted') return '✓ promotion (approval)';
  if (status.gate?.promotion) return paint('▶ promotion (approval)', 'bold', color);
  return '· promotion (approval)';
}

function renderChecks(a: AnalysisRecord): string {
  if (a.checks.length === 0) return '(no checks)';
  return a.checks
    .map((c) => {
      if (c.judged) {
        // The full analysis form: the judge's own outcome, the band and severity, and stable's value.
        const baseline = c.baseline !== undefined ? ` vs stable ${formatValue(c.baseline)}` : '';
        const band = c.band ? ` ${c.band}${c.severity ? `/${c.severity}` : ''}` : '';
        const dry = c.dryRun ? ' (dry run)' : '';
        return `${c.name}=${formatValue(c.value)}${baseline} ${c.judged.toUpperCase().replace('_', ' ')}${band}${dry}`;
      }
      const outcome = c.outcome === 'pass' ? 'ok' : c.outcome === 'fail' ? 'FAIL' : 'NO DATA';
      const error = c.error ? ` (error: ${c.error})` : '';
      return `${c.name}=${formatValue(c.value)} ${outcome}${error}`;
    })
    .join(', ');
}

/** Aligns `label  value` pairs. */
function fields(rows: Array<[string, string | undefined]>, indent = '  '): string[] {
  const shown = rows.filter((r): r is [string, string] => r[1] !== undefined && r[1] !== '');
  const width = Math.max(0, ...shown.map(([label]) => label.length));
  return shown.map(([label, value]) => `${indent}${label.padEnd(width)}  ${value}`);
}

/** A plain aligned table (no borders, no colours), safe for CI logs. */
export function renderTable(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i])))
      .join('  ')
      .trimEnd();
  return [line(headers), ...rows.map(line)].join('\n');
}

/**
 * A human summary of the `status` query answer: identity of the rollout, stage and weight, hold
 * progress bars with time left, gate and pause information with the command that unblocks it, the
 * latest analyses, the approvals log and the rollback reason.
 */
export function renderStatus(status: RolloutStatus, now: Date, options: RenderOptions = {}): string {
  const v: StatusView = {
    status,
    now,
    color: options.color ?? false,
    cli: options.cliName ?? 'canary',
    ref: `${status.namespace}/${status.app}`,
    width: options.barWidth ?? 20,
    maxAnalyses: options.maxAnalyses ?? 5,
  };
  return [
    ...summaryLines(v),
    ...gateLines(v),
    ...(v.status.verifiedBy && !TERMINAL_PHASES.includes(v.status.phase)
      ? [`Signed requests only (${v.status.verifiedBy}): ${v.cli} --sign-key PATH (or --id-token FILE) ...`]
      : []),
    ...evidenceLines(v),
    ...hookStatusLines(v.status, v.cli, v.ref),
    ...windowLines(v),
    ...pauseLines(v),
    ...promotedLines(v),
    ...preflightLines(v),
    ...troubleLines(v),
    ...rollbackLines(v),
    ...analysesLines(v),
    ...approvalsLines(v),
  ].join('\n');
}

/** What a status is rendered from: the status, the time, and the options. */
interface StatusView {
  status: RolloutStatus;
  now: Date;
  color: boolean;
  /** The CLI as hints spell it. */
  cli: string;
  /** `namespace/app`. */
  ref: string;
  /** Width of the progress bars. */
  width: number;
  maxAnalyses: number;
}

/** The title and the aligned fields: target, phase, stage, weight, the stage strip and the hold bars. */
function summaryLines(v: StatusView): string[] {
  const { status, now, color } = v;
  const stage = currentStage(status);
  const stageText =
    status.stage > 0
      ? `${status.stage}/${status.stageCount}${stage?.gate === 'approval' ? ' (approval gate)' : ''}`
      : `0/${status.stageCount} (not started)`;
  return [
    paint(`Rollout ${v.ref} → ${status.version}`, 'bold', color),
    ...fields([
      ['Workflow', `${status.workflowId}${status.run > 1 ? ` (run ${status.run})` : ''}`],
      ['Target', status.target],
      ['Image', status.image],
      ['Plan', status.planName],
      ['Requested by', status.requestedBy],
      ['Phase', paint(status.phase, PHASE_STYLE[status.phase], color)],
      ['Stage', stageText],
      [
        'Weight',
        `${status.weight}% canary` +
          (status.achievedWeight !== undefined ? ` (the router achieves ${status.achievedWeight}%)` : '') +
          (status.mirroring ? `, ${status.mirroring}` : ''),
      ],
      ['Routing', status.routingNote],
      ['Stages', status.stages.length > 0 ? stageStrip(status, color) : undefined],
      ['Stage hold', stageHoldBar(v)],
      ['Plan hold', planHoldBar(v)],
      [
        'Last verdict',
        status.lastVerdict ? paint(status.lastVerdict, VERDICT_STYLE[status.lastVerdict], color) : undefined,
      ],
      ['Promoted at', status.promotedAt ? formatTime(status.promotedAt, now) : undefined],
    ]),
  ];
}

/** A rollout that stopped short of promotion: its bars show how far it got, not time left. */
function stoppedEarly(status: RolloutStatus): boolean {
  return (
    status.phase === 'rolling_back' ||
    status.phase === 'rolled_back' ||
    status.phase === 'failed' ||
    status.phase === 'not_started'
  );
}

/** The current stage's hold: served so far and time left, or what it waits for. */
function stageHoldBar(v: StatusView): string | undefined {
  const { status } = v;
  const stage = currentStage(status);
  if (!stage || stoppedEarly(status) || status.phase === 'promoted') return undefined;
  if (stage.holdMs <= 0) return 'no hold';
  const stageLeft = liveStageTimeLeftMs(status, v.now);
  const fraction = (stage.holdMs - stageLeft) / stage.holdMs;
  const suffix = status.gate?.promotion
    ? `${formatDuration(stage.holdMs)} served; promotion waits for approval`
    : status.phase === 'waiting_approval'
      ? `${formatDuration(stage.holdMs)} hold starts after approval`
      : `${formatDuration(stageLeft)} left of ${formatDuration(stage.holdMs)}${status.phase === 'paused' ? ' (paused)' : ''}`;
  return `${progressBar(fraction, v.width)}  ${suffix}`;
}

/** The whole plan's holds: time left (approval waits aside), done, or how far a stopped rollout got. */
function planHoldBar(v: StatusView): string | undefined {
  const { status, width } = v;
  const totalHold = status.stages.reduce((sum, s) => sum + s.holdMs, 0);
  if (status.phase === 'promoted') return `${progressBar(1, width)}  done`;
  if (totalHold <= 0) return undefined;
  if (stoppedEarly(status)) {
    // Time left is zero once a rollback starts: show how far the plan got instead.
    const served = status.stages.filter((s) => s.state === 'done').reduce((sum, s) => sum + s.holdMs, 0);
    return `${progressBar(served / totalHold, width)}  stopped`;
  }
  const planLeft = livePlanTimeLeftMs(status, v.now);
  const gatesAhead =
    status.promotionGate !== undefined ||
    status.stages.some(
      (s) => s.gate === 'approval' && (s.state === 'pending' || status.phase === 'waiting_approval'),
    );
  return (
    `${progressBar((totalHold - planLeft) / totalHold, width)}  ` +
    `${formatDuration(planLeft)} left of ${formatDuration(totalHold)}${gatesAhead ? ' (+ approval waits)' : ''}`
  );
}

/** The gate the rollout waits at, and the commands that approve or decline it. */
function gateLines(v: StatusView): string[] {
  const { status, now, color, cli, ref } = v;
  const out: string[] = [];
  if (status.gate && status.phase === 'waiting_approval') {
    const g = status.gate;
    const target = status.stages.find((s) => s.stage === g.stage);
    let line = g.promotion
      ? `Waiting for approval to promote ${status.version} (stage ${g.stage}/${status.stageCount} served its hold)`
      : `Waiting for approval to enter stage ${g.stage}/${status.stageCount}`;
    if (target && !g.promotion) line += ` (${target.weight}%)`;
    line += ` since ${formatTime(g.since, now)} (${ago(g.since, now)})`;
    if (g.timeoutAt) {
      const left = Math.max(0, Date.parse(g.timeoutAt) - now.getTime());
      line += `; times out in ${formatDuration(left)}, then ${g.onTimeout === 'proceed' ? 'proceeds' : 'aborts'}`;
    }
    out.push('', paint(line, 'yellow', color));
    if (g.required !== undefined) {
      const by = (g.approvedBy ?? [])
        .map(
          (a) =>
            `${a.by} at ${formatTime(a.at, now)}${a.expiresAt ? ` (expires ${formatTime(a.expiresAt, now)})` : ''}`,
        )
        .join(', ');
      out.push(
        `  Approvals: ${g.required - (g.needed ?? 0)} of ${g.required}${by ? ` (${by})` : ''}; ` +
          `${g.needed ?? 0} more needed from ${g.approvers ?? 'anyone'}`,
      );
    }
    if (g.remindAt) out.push(`  Reminder at ${formatTime(g.remindAt, now)}`);
    if (g.escalateAt) out.push(`  Escalates at ${formatTime(g.escalateAt, now)}`);
    out.push(`  Approve: ${cli} approve ${ref} --stage ${g.stage} --comment "looks good"`);
    out.push(`  Decline: ${cli} abort ${ref} --reason "why"   (rolls back)`);
  }
  return out;
}

/** A question the judge asks a person, or evidence the rollout waits for. */
function evidenceLines(v: StatusView): string[] {
  const { status, now, color, cli, ref } = v;
  const out: string[] = [];
  if (status.evidenceQuestion) {
    const q = status.evidenceQuestion;
    out.push(
      '',
      paint(
        `Waiting for a person since ${formatTime(q.since, now)} (${ago(q.since, now)}): ${q.reasons.join('; ')}`,
        'yellow',
        color,
      ),
      `  Traffic holds at ${status.weight}%; analysis goes on.`,
      q.breaches
        ? `  Accept the breach, go on:    ${cli} approve ${ref} --stage ${status.stage} --comment "why it is fine"`
        : `  Go on without that evidence: ${cli} approve ${ref} --stage ${status.stage} --comment "why it is fine"`,
      `  Or roll back:                ${cli} abort ${ref} --reason "why"`,
    );
  } else if (status.evidenceWait) {
    out.push(
      '',
      paint(
        `Waiting for evidence since ${formatTime(status.evidenceWait.since, now)}: ${status.evidenceWait.note}`,
        'yellow',
        color,
      ),
    );
  }
  return out;
}

/** Outside the plan's deployment windows: nothing advances. */
function windowLines(v: StatusView): string[] {
  const { status, now, color, cli, ref } = v;
  const out: string[] = [];
  if (status.window && !status.window.open) {
    let line = `Not advancing: ${status.window.note}`;
    if (status.window.nextOpenAt) line += ` (${formatTime(status.window.nextOpenAt, now)})`;
    out.push('', paint(line, 'yellow', color), '  Analysis goes on; a failing canary still rolls back.');
  }
  if (status.freeze) {
    out.push(
      '',
      paint(`Not advancing: ${describeFreeze(status.freeze)}`, 'yellow', color),
      `  Analysis goes on; a failing canary still rolls back. Lifted by: ${cli} unfreeze` +
        (status.freeze.scope === '*' ? '' : ` --namespace ${status.freeze.scope}`),
    );
  } else if (status.queued) {
    const q = status.queued;
    out.push(
      '',
      paint(
        describeQueued(
          { granted: false, position: q.position, ...(q.max !== undefined ? { max: q.max } : {}) },
          q.namespace,
        ),
        'yellow',
        color,
      ),
      `  Nothing is deployed until a slot is free; abort ends it without touching traffic: ${cli} abort ${ref}`,
    );
  } else if (status.fleetAsked) {
    out.push('', `Waiting for the answer of ${status.fleetAsked.join(', ')} (is this scope frozen?)`);
  }
  return out;
}

/** Who paused, why (traffic drift too), and how to resume. */
function pauseLines(v: StatusView): string[] {
  const { status, now, color, cli, ref } = v;
  const out: string[] = [];
  if (status.phase === 'paused') {
    let line = 'Paused';
    if (status.pausedSince)
      line += ` since ${formatTime(status.pausedSince, now)} (${ago(status.pausedSince, now)})`;
    if (status.pausedBy) line += ` by ${status.pausedBy}`;
    if (status.pauseReason) line += `: ${status.pauseReason}`;
    line += '; the stage hold timer is stopped.';
    out.push('', paint(line, 'yellow', color));
    if (status.drift) {
      out.push(
        `  Someone changed the traffic weights: the canary had ${status.drift.found}%, the rollout had set ${status.drift.expected}% (seen ${formatTime(status.drift.at, now)}).`,
      );
      out.push(`  Resume (puts ${status.weight}% back): ${cli} resume ${ref}`);
      out.push(`  Or roll back:              ${cli} abort ${ref} --reason "why"`);
    } else {
      out.push(`  Resume: ${cli} resume ${ref}`);
    }
  }
  return out;
}

/** After a promotion: the soak and its way back, or how to go back once it is over. */
function promotedLines(v: StatusView): string[] {
  const { status, now, color, cli, ref } = v;
  const out: string[] = [];
  if (status.phase === 'promoted' && status.soak) {
    const previous = status.soak.previousVersion ?? 'the previous version';
    out.push(
      '',
      paint(
        `Soaking until ${formatTime(status.soak.until, now)}: ${previous} keeps running beside ${status.version}`,
        'green',
        color,
      ),
      `  Go back to ${previous} (traffic returns in seconds): ${cli} abort ${ref} --reason "why"`,
      `  End the soak now (stable takes ${status.version}): ${cli} promote ${ref} --end-soak`,
    );
  } else if (status.phase === 'promoted' && status.stableVersion && status.stableVersion !== status.version) {
    // An abort can no longer undo a promotion: going back is a rollout of the previous version, with this plan.
    out.push(
      '',
      `Go back: ${cli} start --like ${ref} --version ${status.stableVersion}   (this plan and target, ${status.stableVersion} as the canary)`,
    );
  }
  return out;
}

/** What the preflight refused or warned about. */
function preflightLines(v: StatusView): string[] {
  const { status, color } = v;
  const out: string[] = [];
  if (status.preflight?.state === 'failed') {
    const refusals = status.preflight.findings.filter((f) => f.level === 'refuse');
    out.push(
      '',
      paint(
        `Not started: nothing was changed; ${status.preflight.cause === 'input' ? 'fix the plan or the target' : "fix the worker's cluster, credentials or metrics source"}, then start again`,
        'red',
        color,
      ),
      ...refusals.map((f) => `  - ${f.path ? `${f.path}: ` : ''}${f.message}`),
    );
  }
  const warnings = status.preflight?.findings.filter((f) => f.level === 'warn') ?? [];
  if (warnings.length > 0) {
    out.push(
      '',
      'Preflight warnings:',
      ...warnings.map((f) => `  - ${f.path ? `${f.path}: ` : ''}${f.message}`),
    );
  }
  return out;
}

/** A step that keeps failing, a resolve by hand, stable's capacity, a step-back, the last analysis's action. */
function troubleLines(v: StatusView): string[] {
  const { status, now, color } = v;
  const out: string[] = [];
  if (status.retrying) {
    const r = status.retrying;
    out.push(
      '',
      paint(
        `Retrying "${r.step}" since ${formatTime(r.since, now)} (${r.attempts} ${r.attempts === 1 ? 'round' : 'rounds'} of attempts): ${r.error}`,
        'red',
        color,
      ),
    );
    if (r.resolve) {
      out.push(`  Once all traffic is on stable (fixed, or moved by hand), end it: ${r.resolve}`);
    }
  }
  if (status.resolved) {
    out.push(
      '',
      `Resolved by hand by ${status.resolved.by} at ${formatTime(status.resolved.at, now)}: ${status.resolved.reason}`,
    );
  }
  if (status.capacityNote) out.push('', `Stable capacity: ${status.capacityNote}`);
  if (status.cleanupFailed) {
    const c = status.cleanupFailed;
    out.push('', `Canary not removed (${c.at}): ${c.error}`, `  remove it by hand: ${c.fix}`);
  }
  if (status.steppedBack) {
    const b = status.steppedBack;
    out.push(
      '',
      paint(
        `Stepped back to ${b.toWeight}% (the stage's ${b.stageWeight}%) since ${formatTime(b.since, now)} after a medium breach; ` +
          'it goes forward again after a healthy period, or rolls back if the breach persists',
        'yellow',
        color,
      ),
    );
  }
  const last = status.analyses[status.analyses.length - 1];
  if (last?.action && last.action !== 'advance-ok' && last.reasons?.length) {
    out.push('', `Last analysis: ${last.action}: ${last.reasons.join('; ')}`);
  }
  // Dry-run checks decide nothing: say what each would have done.
  const dry = (last?.checks ?? []).filter((c) => c.dryRun && c.note).map((c) => `${c.name}: ${c.note}`);
  if (dry.length > 0) out.push('', ...dry);
  return out;
}

/** Why the rollout rolls (or rolled) back. */
function rollbackLines(v: StatusView): string[] {
  const { status, color } = v;
  const out: string[] = [];
  if (status.rollbackReason) {
    const label = status.phase === 'rolling_back' ? 'Rolling back' : 'Rollback reason';
    const how = status.ending ? ` (${describeEnding(status.ending)})` : '';
    out.push('', paint(`${label}${how}: ${status.rollbackReason}`, 'red', color));
  }
  return out;
}

/** The latest analyses, one line each. */
function analysesLines(v: StatusView): string[] {
  const { status, now, color } = v;
  const out: string[] = [];
  if (status.analyses.length > 0) {
    const shown = status.analyses.slice(-v.maxAnalyses);
    const total = Math.max(status.analysesRun ?? 0, status.analyses.length);
    const title =
      shown.length < total ? `Analyses (last ${shown.length} of ${total})` : `Analyses (${shown.length})`;
    out.push('', title);
    for (const a of shown) {
      const verdict = paint(a.verdict.padEnd(12), VERDICT_STYLE[a.verdict], color);
      out.push(
        `  ${formatTime(a.at, now)}  stage ${a.stage} ${`${a.weight}%`.padStart(4)}  ${verdict}  ${renderChecks(a)}`,
      );
    }
  }
  return out;
}

/** The approvals log: gates approved, promotions requested, time-outs, waivers. */
function approvalsLines(v: StatusView): string[] {
  const { status, now } = v;
  const out: string[] = [];
  if (status.approvals.length > 0) {
    const kinds = new Set(status.approvals.map((a) => a.kind));
    const heading = [
      ...(kinds.has('approved') ? ['Approvals'] : []),
      ...(kinds.has('promote') ? ['promotion requests'] : []),
      ...(kinds.has('timeout-proceed') ? ['gate time-outs'] : []),
      ...(kinds.has('missing-evidence') ? ['evidence waivers'] : []),
      ...(kinds.has('breach-accepted') ? ['accepted breaches'] : []),
    ].join(', ');
    out.push('', heading.charAt(0).toUpperCase() + heading.slice(1));
    for (const a of status.approvals) {
      const what =
        a.kind === 'timeout-proceed'
          ? `${a.promotion ? 'promotion gate' : 'approval gate'} timed out: proceeded without approval`
          : a.promotion
            ? `promotion approved by ${a.by}` +
              (a.required !== undefined && a.count !== undefined ? ` (${a.count} of ${a.required})` : '')
            : a.kind === 'promote'
              ? `promotion requested by ${a.by} (remaining stages skipped)`
              : a.kind === 'missing-evidence'
                ? `went on without the missing evidence, as ${a.by} decided`
                : a.kind === 'breach-accepted'
                  ? `went on despite the breach, as ${a.by} decided`
                  : `approval gate approved by ${a.by}` +
                    (a.required !== undefined && a.count !== undefined
                      ? ` (${a.count} of ${a.required})`
                      : '');
      const comment = a.comment ? `  "${a.comment}"` : '';
      out.push(`  ${formatTime(a.at, now)}  stage ${a.stage}  ${what}${comment}`);
    }
  }
  return out;
}

/** One line per rollout, newest first as given. */
export function renderList(rows: RolloutSummary[], now: Date = new Date()): string {
  if (rows.length === 0) return 'No rollouts found.';
  return renderTable(
    ['WORKFLOW ID', 'APP', 'VERSION', 'PHASE', 'STAGE', 'WEIGHT', 'STATUS', 'STARTED'],
    rows.map((r) => [
      r.workflowId,
      r.namespace && r.app ? `${r.namespace}/${r.app}` : (r.app ?? '-'),
      r.version ?? '-',
      r.phase ?? '-',
      r.stage === undefined ? '-' : String(r.stage),
      r.weight === undefined ? '-' : `${r.weight}%`,
      r.status,
      formatTime(r.startTime, now),
    ]),
  );
}

/**
 * What changed between two polled statuses, one line each (stage changes, gates, pauses, verdicts,
 * approvals, rollback): the `--wait` progress log. `prev` undefined means the first poll.
 */
export function progressLines(
  prev: RolloutStatus | undefined,
  next: RolloutStatus,
  now: Date,
  options: Pick<RenderOptions, 'cliName'> = {},
): string[] {
  const cli = options.cliName ?? 'canary';
  const ref = `${next.namespace}/${next.app}`;
  const lines: string[] = [];
  const stamp = `[${formatTime(now.toISOString(), now)}]`;
  const say = (text: string): void => {
    lines.push(`${stamp} ${text}`);
  };

  if (!prev) {
    say(
      `${ref} ${next.version}: ${next.phase}, stage ${next.stage}/${next.stageCount}, canary at ${next.weight}%` +
        (next.planTimeLeftMs > 0 ? `, ${formatDuration(next.planTimeLeftMs)} of holds left` : ''),
    );
  } else if (
    // A stage is told once its traffic moved: between the step to the next stage and its shift (a gate, a window)
    // the canary still carries the previous stage's weight.
    (prev.weight !== next.weight ||
      (prev.stage !== next.stage &&
        next.stageStartedAt !== undefined &&
        next.stageStartedAt !== prev.stageStartedAt)) &&
    (next.phase === 'progressing' || next.phase === 'waiting_approval' || next.phase === 'paused')
  ) {
    // Weight changes during a rollback or a promotion are told by their own lines, not as stages.
    const st = next.stages.find((s) => s.stage === next.stage);
    const hold =
      st && st.holdMs > 0 && next.phase === 'progressing' ? `, holding ${formatDuration(st.holdMs)}` : '';
    say(`stage ${next.stage}/${next.stageCount}: canary at ${next.weight}%${hold}`);
  }

  const prevAnalyses = prev?.analyses ?? [];
  const lastSeen = prevAnalyses.length > 0 ? prevAnalyses[prevAnalyses.length - 1].at : undefined;
  const fresh = prev ? next.analyses.filter((a) => lastSeen === undefined || a.at > lastSeen) : [];
  for (const a of fresh) say(`analysis at ${a.weight}%: ${a.verdict} (${renderChecks(a)})`);

  const prevApprovals = prev?.approvals ?? [];
  const lastApproval = prevApprovals.length > 0 ? prevApprovals[prevApprovals.length - 1].at : undefined;
  const newApprovals = prev
    ? next.approvals.filter((a) => lastApproval === undefined || a.at > lastApproval)
    : [];
  for (const a of newApprovals) {
    say(
      a.kind === 'timeout-proceed'
        ? `stage ${a.stage}: ${a.promotion ? 'promotion gate' : 'approval gate'} timed out, proceeding`
        : `stage ${a.stage}: ${a.kind === 'promote' ? 'promotion requested' : a.kind === 'missing-evidence' ? 'goes on without the missing evidence' : a.kind === 'breach-accepted' ? 'goes on despite the breach' : a.promotion ? 'promotion approved' : 'approved'} by ${a.by}${a.comment ? ` ("${a.comment}")` : ''}`,
    );
  }

  if (
    prev?.phase !== next.phase ||
    (next.gate && (prev?.gate?.stage !== next.gate.stage || prev?.gate?.promotion !== next.gate.promotion))
  ) {
    switch (next.phase) {
      case 'waiting_approval':
        if (next.gate) {
          const timeout = next.gate.timeoutAt
            ? `; times out in ${formatDuration(Math.max(0, Date.parse(next.gate.timeoutAt) - now.getTime()))}, then ${next.gate.onTimeout === 'proceed' ? 'proceeds' : 'aborts'}`
            : '';
          say(
            `${next.gate.promotion ? `the promotion (after stage ${next.gate.stage})` : `stage ${next.gate.stage}`} waits for approval: ${cli} approve ${ref} --stage ${next.gate.stage}${timeout}`,
          );
        } else if (next.evidenceQuestion) {
          say(
            `stage ${next.stage} waits for a person: ${next.evidenceQuestion.reasons.join('; ')}; go on: ${cli} approve ${ref} --stage ${next.stage}, or roll back: ${cli} abort ${ref} --reason "why"`,
          );
        } else {
          say('waiting for approval');
        }
        break;
      case 'paused':
        say(`paused${next.pausedBy ? ` by ${next.pausedBy}` : ''}: ${cli} resume ${ref}`);
        break;
      case 'progressing':
        if (prev) say(prev.phase === 'paused' ? 'resumed' : 'progressing');
        break;
      case 'rolling_back':
        say(`rolling back: ${next.rollbackReason ?? 'no reason given'}`);
        break;
      case 'rolled_back':
        say(
          `rolled back${next.ending ? ` (${describeEnding(next.ending)})` : ''}: ${next.rollbackReason ?? 'no reason given'}`,
        );
        break;
      case 'not_started':
        say(
          `not started (nothing was changed): ${(next.preflight?.findings ?? [])
            .filter((f) => f.level === 'refuse')
            .map((f) => f.message)
            .join('; ')}`,
        );
        break;
      case 'promoted':
        say(
          next.soak
            ? `promoted: ${next.version} serves all traffic; ${next.soak.previousVersion ?? 'the previous version'} keeps running until ${formatTime(next.soak.until, now)} (the soak)`
            : `promoted: stable now runs ${next.version}`,
        );
        break;
      case 'failed':
        say('failed');
        break;
    }
  }
  return lines;
}
