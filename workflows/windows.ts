// Deployment windows: when a rollout's stages may advance (days and hours in a time zone) and when nothing may
// change at all (freeze periods). Pure and deterministic, for the workflow sandbox and the client alike: every
// function takes the current time as a parameter, and time-zone rules come only from the platform's Intl data
// (formatToParts), never from hand-written offsets. Their validation from a plan is windows-spec.ts.
import { formatDuration } from './duration';
import type { InputProblem } from './problems';

// ---------------------------------------------------------------------------------------------------------------
// As written, and normalised

export const WEEKDAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'] as const;
export type Weekday = (typeof WEEKDAYS)[number];

/** A plan's `windows:` section as written. */
export interface WindowsSpec {
  /** IANA time zone the hours and freeze dates are in, e.g. Europe/Berlin or UTC. */
  timeZone: string;
  /** When stages may advance; absent means any time outside a freeze. */
  allow?: AllowRangeSpec[];
  freeze?: FreezeSpec[];
  /** Whether promotion (the final 100 % stage) obeys the windows too (default) or may happen any time. */
  promotion?: 'windows' | 'any';
  /**
   * A rollout is refused at start unless the windows open within this long (a duration; default 30 days), so a
   * freeze that never ends or an allow range that never comes is caught before anything changes.
   */
  opensWithin?: string;
}

export interface AllowRangeSpec {
  /** Default: every day. */
  days?: Weekday[];
  /** `HH:MM`, local time. */
  from: string;
  /** `HH:MM` after from; `24:00` is the end of the day. */
  to: string;
}

export interface FreezeSpec {
  /** A local date (`2026-12-20`, from the start of that day) or an RFC 3339 timestamp. */
  from: string;
  /** A local date (inclusive: to the end of that day) or an RFC 3339 timestamp (the freeze ends then). */
  to: string;
  reason?: string;
}

export interface AllowRange {
  days: Weekday[];
  /** Minutes after local midnight: [fromMinute, toMinute), toMinute at most 1440. */
  fromMinute: number;
  toMinute: number;
}

export interface FreezePeriod {
  /** The freeze applies from fromMs (inclusive) until untilMs (exclusive). */
  fromMs: number;
  untilMs: number;
  /** As written, for messages. */
  from: string;
  to: string;
  reason?: string;
}

/** Validated windows; plain data (JSON-safe), so it can travel in a plan and across continue-as-new. */
export interface Windows {
  timeZone: string;
  /** Absent: stages may advance at any time outside a freeze. */
  allow?: AllowRange[];
  freeze: FreezePeriod[];
  promotion: 'windows' | 'any';
  /** `opensWithin` in ms, only when the plan says it (absent: DEFAULT_OPENS_WITHIN_MS), so older plans normalise alike. */
  opensWithinMs?: number;
}

export const WINDOWS_LIMITS = { allow: 50, freeze: 50, reasonLength: 200 } as const;

/** How far ahead nextOpen looks before it gives up. */
export const NEXT_OPEN_HORIZON_DAYS = 400;

/** A rollout must find its windows open within this long from its start, unless `opensWithin` says otherwise. */
export const DEFAULT_OPENS_WITHIN_MS = 30 * 86_400_000;

/** A plain date as plans write it (2026-12-20). */
export const DATE = /^(\d{4})-(\d{2})-(\d{2})$/;

// ---------------------------------------------------------------------------------------------------------------
// Time-zone arithmetic, only through Intl.DateTimeFormat#formatToParts. "Wall" times are local date and time
// written as if they were UTC milliseconds (Date.UTC of the local fields), so calendar arithmetic on them is plain
// addition, and an instant's wall time is the instant plus the zone's offset at that instant.

const MINUTE = 60_000;
const DAY = 86_400_000;

const formatters = new Map<string, Intl.DateTimeFormat>();

function fieldsFormatter(zone: string): Intl.DateTimeFormat {
  let f = formatters.get(zone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone: zone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
    formatters.set(zone, f);
  }
  return f;
}

/** The zone's offset from UTC at an instant, in ms (positive east of Greenwich). */
export function zoneOffsetMs(zone: string, atMs: number): number {
  const parts: Record<string, number> = {};
  for (const p of fieldsFormatter(zone).formatToParts(atMs)) {
    if (p.type !== 'literal') parts[p.type] = Number(p.value);
  }
  const wall = Date.UTC(parts.year, parts.month - 1, parts.day, parts.hour, parts.minute, parts.second);
  return wall - (atMs - mod(atMs, 1000));
}

function mod(a: number, n: number): number {
  return ((a % n) + n) % n;
}

function wallOf(zone: string, atMs: number): number {
  return atMs + zoneOffsetMs(zone, atMs);
}

/**
 * The instant a local wall time happens. In an overlap (clocks go back) the first occurrence; in a gap (clocks
 * go forward) the first valid instant after it, which is the moment the clocks jump.
 */
export function localToInstant(zone: string, wall: number): number {
  // The offsets just before and just after any transition near this wall time (transitions are days apart).
  const offsets = [...new Set([zoneOffsetMs(zone, wall - DAY), zoneOffsetMs(zone, wall + DAY)])];
  const occurrences = offsets
    .map((o) => wall - o)
    .filter((t) => zoneOffsetMs(zone, t) === wall - t)
    .sort((a, b) => a - b);
  if (occurrences.length > 0) return occurrences[0];
  // A gap: the transition lies between the two readings of the wall time.
  const [a, b] = offsets.map((o) => wall - o).sort((x, y) => x - y);
  return transitionBetween(zone, a, b);
}

/** The first instant in (lo, hi] whose offset differs from lo's; hi's offset must differ from lo's. */
function transitionBetween(zone: string, lo: number, hi: number): number {
  const offset = zoneOffsetMs(zone, lo);
  while (hi - lo > 1) {
    const mid = lo + Math.floor((hi - lo) / 2);
    if (zoneOffsetMs(zone, mid) === offset) lo = mid;
    else hi = mid;
  }
  return hi;
}

/** The first instant in (from, to] at which the offset changes from `from`'s, probing once a day; or undefined. */
function nextTransition(zone: string, from: number, to: number): number | undefined {
  const offset = zoneOffsetMs(zone, from);
  for (let lo = from; lo < to; lo += DAY) {
    const hi = Math.min(lo + DAY, to);
    if (zoneOffsetMs(zone, hi) !== offset) return transitionBetween(zone, lo, hi);
  }
  return undefined;
}

function weekdayOfWall(wall: number): Weekday {
  // 1970-01-01 was a Thursday.
  return WEEKDAYS[mod(Math.floor(wall / DAY) + 3, 7)];
}

/** The earliest wall time ≥ wall inside an allow range, within the next 8 days (ranges repeat weekly). */
function nextOpenWall(allow: readonly AllowRange[], wall: number): number | undefined {
  const today = Math.floor(wall / DAY);
  for (let day = today; day <= today + 7; day++) {
    let best: number | undefined;
    for (const range of allow) {
      if (!range.days.includes(weekdayOfWall(day * DAY))) continue;
      const end = day * DAY + range.toMinute * MINUTE;
      if (end <= wall) continue;
      const start = Math.max(day * DAY + range.fromMinute * MINUTE, wall);
      if (best === undefined || start < best) best = start;
    }
    if (best !== undefined) return best;
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------------------------
// Questions the workflow and status ask

/** The freeze period in force at an instant, if any (the one that lasts longest when several overlap). */
export function activeFreeze(w: Windows, atMs: number): FreezePeriod | undefined {
  let found: FreezePeriod | undefined;
  for (const f of w.freeze) {
    if (f.fromMs <= atMs && atMs < f.untilMs && (!found || f.untilMs > found.untilMs)) found = f;
  }
  return found;
}

function inAllowRange(w: Windows, atMs: number): boolean {
  if (!w.allow) return true;
  const wall = wallOf(w.timeZone, atMs);
  return nextOpenWall(w.allow, wall) === wall;
}

/** Whether stages may advance at this instant: inside an allow range and outside every freeze. */
export function isOpen(w: Windows, atMs: number): boolean {
  return activeFreeze(w, atMs) === undefined && inAllowRange(w, atMs);
}

/**
 * The earliest instant ≥ atMs at which the windows are open (atMs itself when they are), or undefined when
 * they do not open within NEXT_OPEN_HORIZON_DAYS.
 */
export function nextOpen(w: Windows, atMs: number): number | undefined {
  const horizon = atMs + NEXT_OPEN_HORIZON_DAYS * DAY;
  let t = atMs;
  // Every round moves t strictly forward (to a freeze's end, an opening, or a DST transition).
  while (t <= horizon) {
    const freeze = activeFreeze(w, t);
    if (freeze) {
      t = freeze.untilMs;
      continue;
    }
    if (!w.allow) return t;
    // Between transitions the offset is constant, so wall time moves with the instant.
    const offset = zoneOffsetMs(w.timeZone, t);
    const wall = nextOpenWall(w.allow, t + offset);
    if (wall === undefined) return undefined;
    const candidate = wall - offset;
    if (candidate === t) return t;
    t = nextTransition(w.timeZone, t, candidate) ?? candidate;
  }
  return undefined;
}

/** Whether a step may happen now: promotion (the final 100 % stage) ignores the windows with `promotion: any`. */
export function mayAdvance(w: Windows | undefined, atMs: number, isPromotion: boolean): boolean {
  if (!w || (isPromotion && w.promotion === 'any')) return true;
  return isOpen(w, atMs);
}

/**
 * The end of the run of allow ranges that contains `wall` (ranges that touch or overlap chain on, across midnight),
 * as a wall time; `wall` itself when no range contains it; undefined when the run lasts beyond a week (always open).
 */
function allowRunEndWall(allow: readonly AllowRange[], wall: number): number | undefined {
  let cur = wall;
  while (cur - wall <= 8 * DAY) {
    const day = Math.floor(cur / DAY);
    let end: number | undefined;
    for (const range of allow) {
      if (!range.days.includes(weekdayOfWall(day * DAY))) continue;
      const from = day * DAY + range.fromMinute * MINUTE;
      const to = day * DAY + range.toMinute * MINUTE;
      if (from <= cur && cur < to && (end === undefined || to > end)) end = to;
    }
    if (end === undefined) return cur;
    cur = end;
  }
  return undefined;
}

/**
 * The earliest instant after atMs at which the windows are closed (atMs itself when they are), or undefined when
 * they stay open beyond NEXT_OPEN_HORIZON_DAYS.
 */
export function nextClose(w: Windows, atMs: number): number | undefined {
  const horizon = atMs + NEXT_OPEN_HORIZON_DAYS * DAY;
  let t = atMs;
  // Every round either answers or moves t strictly forward (to a DST transition).
  while (t <= horizon) {
    if (!isOpen(w, t)) return t;
    let candidate = Infinity;
    for (const f of w.freeze) if (f.fromMs > t && f.fromMs < candidate) candidate = f.fromMs;
    if (w.allow) {
      // Between transitions the offset is constant, so wall time moves with the instant.
      const offset = zoneOffsetMs(w.timeZone, t);
      const endWall = allowRunEndWall(w.allow, t + offset);
      if (endWall !== undefined) candidate = Math.min(candidate, endWall - offset);
      const transition = nextTransition(w.timeZone, t, Math.min(candidate, horizon));
      if (transition !== undefined && transition < candidate) {
        t = transition;
        continue;
      }
    }
    return candidate === Infinity ? undefined : candidate;
  }
  return undefined;
}

/**
 * How much of [fromMs, toMs) the next step may happen in: the time inside the windows (for a step that is the
 * promotion, all of it with `promotion: any`). A hold counts only this time (rollouts from machine-v2 on).
 */
export function openMsBetween(
  w: Windows | undefined,
  fromMs: number,
  toMs: number,
  isPromotion: boolean,
): number {
  if (!w || (isPromotion && w.promotion === 'any')) return Math.max(0, toMs - fromMs);
  let sum = 0;
  let t = fromMs;
  while (t < toMs) {
    const opens = nextOpen(w, t);
    if (opens === undefined || opens >= toMs) break;
    const closes = nextClose(w, opens) ?? Infinity;
    sum += Math.min(closes, toMs) - opens;
    t = closes;
  }
  return sum;
}

/**
 * The instant by which `openMs` of window time has passed since fromMs (openMsBetween(w, fromMs, t) === openMs), or
 * undefined when the windows do not open enough within the horizon.
 */
export function openReachedAt(
  w: Windows | undefined,
  fromMs: number,
  openMs: number,
  isPromotion: boolean,
): number | undefined {
  if (openMs <= 0) return fromMs;
  if (!w || (isPromotion && w.promotion === 'any')) return fromMs + openMs;
  const horizon = fromMs + NEXT_OPEN_HORIZON_DAYS * DAY;
  let served = 0;
  let t = fromMs;
  while (t <= horizon) {
    const opens = nextOpen(w, t);
    if (opens === undefined) return undefined;
    const closes = nextClose(w, opens) ?? Infinity;
    if (served + (closes - opens) >= openMs) return opens + (openMs - served);
    served += closes - opens;
    t = closes;
  }
  return undefined;
}

/**
 * Whether windows that open only beyond their `opensWithin` bound (default DEFAULT_OPENS_WITHIN_MS) from nowMs, or
 * never within NEXT_OPEN_HORIZON_DAYS, should refuse a rollout starting at nowMs: such a rollout would shift its
 * first traffic (or its next stage) months from now, or never (a freeze until 2999). Undefined when they open in
 * time. Not part of validatePlan: whether windows open depends on when the rollout starts, and recorded histories
 * re-validate their plans long after.
 */
export function windowOpeningProblem(w: Windows, nowMs: number): InputProblem | undefined {
  const boundMs = w.opensWithinMs ?? DEFAULT_OPENS_WITHIN_MS;
  const next = nextOpen(w, nowMs);
  if (next !== undefined && next - nowMs <= boundMs) return undefined;
  const bound = `${formatDays(boundMs)}${w.opensWithinMs === undefined ? ' (the default of windows.opensWithin)' : ' (windows.opensWithin)'}`;
  const when =
    next === undefined
      ? `do not open within the next ${NEXT_OPEN_HORIZON_DAYS} days (as far ahead as openings are searched)`
      : `next open ${formatLocal(w.timeZone, next)}, in ${formatDays(next - nowMs)}`;
  return {
    path: 'windows',
    message:
      `the deployment windows ${when}, more than ${bound} from now (${formatLocal(w.timeZone, nowMs)}): the ` +
      'rollout would wait that long before it changes anything. Check the freeze dates and allow ranges, or set ' +
      'windows.opensWithin to a longer bound if the wait is meant',
  };
}

/** `30 days`, `45 days 6h`, `2h30m`: long spans in days, short ones as durations. */
function formatDays(ms: number): string {
  if (ms < DAY) return formatDuration(ms);
  const days = Math.floor(ms / DAY);
  const rest = ms - days * DAY;
  return `${days} day${days === 1 ? '' : 's'}${rest >= 60_000 ? ` ${formatDuration(rest - (rest % 60_000))}` : ''}`;
}

// ---------------------------------------------------------------------------------------------------------------
// Describing

const DAY_LABELS: Record<Weekday, string> = {
  mon: 'Mon',
  tue: 'Tue',
  wed: 'Wed',
  thu: 'Thu',
  fri: 'Fri',
  sat: 'Sat',
  sun: 'Sun',
};

/** `Mon–Fri`, `Sat, Sun`, `Mon, Wed, Fri`, `daily`. */
export function describeDays(days: readonly Weekday[]): string {
  if (days.length === 7) return 'daily';
  const runs: Weekday[][] = [];
  for (const d of WEEKDAYS.filter((x) => days.includes(x))) {
    const last = runs[runs.length - 1];
    if (last && WEEKDAYS.indexOf(last[last.length - 1]) === WEEKDAYS.indexOf(d) - 1) last.push(d);
    else runs.push([d]);
  }
  return runs
    .map((r) =>
      r.length >= 3
        ? `${DAY_LABELS[r[0]]}–${DAY_LABELS[r[r.length - 1]]}`
        : r.map((d) => DAY_LABELS[d]).join(', '),
    )
    .join(', ');
}

function hhmm(minute: number): string {
  return `${String(Math.floor(minute / 60)).padStart(2, '0')}:${String(minute % 60).padStart(2, '0')}`;
}

/** `Mon–Fri 09:00–12:00, 13:00–17:00; Sat 10:00–12:00 Europe/Berlin` (ranges with the same days side by side). */
export function describeWindows(w: Windows): string {
  if (!w.allow) return `any time outside freezes, ${w.timeZone}`;
  const groups: Array<{ days: string; times: string[] }> = [];
  for (const r of w.allow) {
    const days = describeDays(r.days);
    const times = `${hhmm(r.fromMinute)}–${hhmm(r.toMinute)}`;
    const last = groups[groups.length - 1];
    if (last && last.days === days) last.times.push(times);
    else groups.push({ days, times: [times] });
  }
  return `${groups.map((g) => `${g.days} ${g.times.join(', ')}`).join('; ')} ${w.timeZone}`;
}

/** The zone's short name at an instant (CEST, EDT), else its offset (GMT+9); from Intl, en-US then en-GB names. */
function zoneName(zone: string, atMs: number): string {
  let fallback = '';
  for (const locale of ['en-US', 'en-GB']) {
    const name =
      new Intl.DateTimeFormat(locale, { timeZone: zone, timeZoneName: 'short' })
        .formatToParts(atMs)
        .find((p) => p.type === 'timeZoneName')?.value ?? '';
    if (!/^GMT[+-]/.test(name) && name !== '') return name;
    fallback ||= name;
  }
  return fallback;
}

function localDate(wall: number): string {
  return new Date(wall).toISOString().slice(0, 10);
}

/** `Mon 2026-03-30 09:00 CEST`: an instant in the windows' zone. */
export function formatLocal(zone: string, atMs: number): string {
  const wall = wallOf(zone, atMs);
  const time = hhmm(Math.floor(mod(wall, DAY) / MINUTE));
  return `${DAY_LABELS[weekdayOfWall(wall)]} ${localDate(wall)} ${time} ${zoneName(zone, atMs)}`;
}

/**
 * One sentence for status, e.g. `outside the deployment window (Mon–Fri 09:00–17:00 Europe/Berlin); next opens
 * Mon 2026-03-30 09:00 CEST`, or `frozen through 2027-01-04 (year-end freeze); next opens Tue 2027-01-05 09:00 CET`.
 */
export function describeWindowState(w: Windows, atMs: number): string {
  const next = nextOpen(w, atMs);
  const then =
    next === undefined
      ? `; does not open within ${NEXT_OPEN_HORIZON_DAYS} days`
      : `; next opens ${formatLocal(w.timeZone, next)}`;
  const freeze = activeFreeze(w, atMs);
  if (freeze) {
    const until = DATE.test(freeze.to)
      ? `through ${freeze.to}`
      : `until ${formatLocal(w.timeZone, freeze.untilMs)}`;
    return `frozen ${until}${freeze.reason ? ` (${freeze.reason})` : ''}${then}`;
  }
  if (next === atMs) return `inside the deployment window (${describeWindows(w)})`;
  return `outside the deployment window (${describeWindows(w)})${then}`;
}
