// Deployment windows: when a rollout's stages may advance (days and hours in a time zone) and when nothing may
// change at all (freeze periods). Pure and deterministic, for the workflow sandbox and the client alike: every
// function takes the current time as a parameter, and time-zone rules come only from the platform's Intl data
// (formatToParts), never from hand-written offsets.
import { z } from 'zod';
import { DurationError, formatDuration, parseDuration } from './duration';
import {
  Collector,
  byHand,
  describe,
  distance,
  isObject,
  sortedProblems,
  typeError,
  type InputProblem,
  type Segment,
} from './problems';

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

// ---------------------------------------------------------------------------------------------------------------
// Structure (zod) and known fields

const allowSchema = z.strictObject(
  {
    days: z
      .array(z.string(typeError('a day name (mon ... sun)')), typeError('a list of days, e.g. [mon, tue]'))
      .optional(),
    from: byHand<string>(),
    to: byHand<string>(),
  },
  typeError("an object like { days: [mon, tue, wed, thu, fri], from: '09:00', to: '17:00' }"),
);

const freezeSchema = z.strictObject(
  {
    from: byHand<string>(),
    to: byHand<string>(),
    reason: z.string(typeError('a string')).optional(),
  },
  typeError("an object like { from: '2026-12-20', to: '2027-01-04', reason: year-end freeze }"),
);

const windowsSchema = z.strictObject(
  {
    timeZone: z.string(
      typeError('an IANA time zone name', 'is required: an IANA time zone such as Europe/Berlin or UTC'),
    ),
    allow: z.array(byHand<unknown>(), typeError('a list of ranges')).optional(),
    freeze: z.array(byHand<unknown>(), typeError('a list of freeze periods')).optional(),
    promotion: z.string(typeError('windows or any')).optional(),
    opensWithin: byHand<string>().optional(),
  },
  typeError('an object with timeZone, allow, freeze, promotion and opensWithin'),
);

/** Known fields per object for "did you mean", by path pattern under `base` (e.g. `windows`). */
export function windowsKnownFields(base = 'windows'): Record<string, readonly string[]> {
  return {
    [base]: Object.keys(windowsSchema.shape),
    [`${base}.allow.*`]: Object.keys(allowSchema.shape),
    [`${base}.freeze.*`]: Object.keys(freezeSchema.shape),
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Validation

/** A list holding `inner` at `index`, so problems under `stages[2]` sort by the document's own positions. */
function placeAt(index: number, inner: unknown): unknown[] {
  const list: unknown[] = [];
  list[index] = inner;
  return list;
}

export interface WindowsValidation {
  windows?: Windows;
  problems: InputProblem[];
}

/** Validates a `windows:` section as written, with paths under `path`; `windows` is set when there are no problems. */
export function validateWindows(spec: unknown, path: Segment[] = ['windows']): WindowsValidation {
  const base = path.map((s) => (typeof s === 'number' ? '*' : s)).join('.');
  const c = new Collector(windowsKnownFields(base));
  const windows = collectWindows(c, spec, path);
  if (c.problems.length > 0) {
    // sortedProblems ranks paths from the root: rebuild the document around the section.
    const root = path.reduceRight<unknown>(
      (inner, s) => (typeof s === 'number' ? placeAt(s, inner) : { [s]: inner }),
      spec,
    );
    return { problems: sortedProblems(root, c.problems) };
  }
  return { windows, problems: [] };
}

/** The same, into a caller's Collector (validatePlan); returns the windows when this section had no problems. */
export function collectWindows(
  c: Collector,
  spec: unknown,
  path: Segment[] = ['windows'],
): Windows | undefined {
  if (!isObject(spec)) {
    c.add(path, `must be an object with timeZone, allow, freeze and promotion, got ${describe(spec)}`);
    return undefined;
  }
  const before = c.problems.length;
  c.structure(windowsSchema, spec, path);
  const timeZone =
    typeof spec.timeZone === 'string' ? checkTimeZone(c, spec.timeZone, [...path, 'timeZone']) : undefined;

  let allow: AllowRange[] | undefined;
  if (Array.isArray(spec.allow)) {
    if (spec.allow.length === 0) {
      c.add(
        [...path, 'allow'],
        'lists no ranges, so stages could never advance; leave allow out to allow any time outside freezes',
      );
    } else if (spec.allow.length > WINDOWS_LIMITS.allow) {
      c.add(
        [...path, 'allow'],
        `lists ${spec.allow.length} ranges; at most ${WINDOWS_LIMITS.allow} are allowed`,
      );
    } else {
      allow = spec.allow.flatMap((range, i) => checkAllowRange(c, range, [...path, 'allow', i]) ?? []);
    }
  }

  let freeze: FreezePeriod[] = [];
  if (Array.isArray(spec.freeze)) {
    if (spec.freeze.length > WINDOWS_LIMITS.freeze) {
      c.add(
        [...path, 'freeze'],
        `lists ${spec.freeze.length} freeze periods; at most ${WINDOWS_LIMITS.freeze} are allowed`,
      );
    } else {
      freeze = spec.freeze.flatMap((f, i) => checkFreeze(c, f, [...path, 'freeze', i], timeZone) ?? []);
    }
  }

  const promotion = spec.promotion ?? 'windows';
  if (typeof promotion === 'string' && promotion !== 'windows' && promotion !== 'any') {
    c.add(
      [...path, 'promotion'],
      `must be windows (promotion waits for a window, the default) or any, got ${describe(promotion)}`,
    );
  }
  const opensWithinMs =
    spec.opensWithin === undefined
      ? undefined
      : checkOpensWithin(c, spec.opensWithin, [...path, 'opensWithin']);
  if (c.problems.length > before || timeZone === undefined) return undefined;
  return {
    timeZone,
    ...(allow ? { allow } : {}),
    freeze,
    promotion: promotion as 'windows' | 'any',
    ...(opensWithinMs !== undefined ? { opensWithinMs } : {}),
  };
}

/** `opensWithin`: a duration of more than 0 and at most NEXT_OPEN_HORIZON_DAYS (as far as nextOpen looks). */
function checkOpensWithin(c: Collector, value: unknown, path: Segment[]): number | undefined {
  const forms = '7d, 720h or P45D';
  if (typeof value !== 'string' && typeof value !== 'number') {
    c.add(path, `must be a duration like ${forms}, got ${describe(value)}`);
    return undefined;
  }
  let ms: number;
  try {
    ms = parseDuration(String(value));
  } catch (e) {
    if (!(e instanceof DurationError)) throw e;
    c.add(path, e.kind === 'syntax' ? `${e.message}; use a duration like ${forms}` : e.message);
    return undefined;
  }
  if (ms <= 0 || ms > NEXT_OPEN_HORIZON_DAYS * DAY) {
    c.add(
      path,
      `must be more than 0s and at most ${NEXT_OPEN_HORIZON_DAYS} days (how far ahead openings are searched), ` +
        `got ${describe(value)}`,
    );
    return undefined;
  }
  return ms;
}

function checkTimeZone(c: Collector, zone: string, path: Segment[]): string | undefined {
  if (zone.trim() === '') {
    c.add(path, 'must not be empty: an IANA time zone such as Europe/Berlin or UTC');
    return undefined;
  }
  if (isTimeZone(zone)) return zone;
  const close = closestTimeZone(zone);
  c.add(
    path,
    `unknown time zone ${describe(zone)}` +
      (close
        ? ` (did you mean "${close}"?)`
        : '; use an IANA name such as Europe/Berlin, America/New_York or UTC'),
  );
  return undefined;
}

/** Whether the platform's Intl data knows this zone. */
export function isTimeZone(zone: string): boolean {
  try {
    new Intl.DateTimeFormat(undefined, { timeZone: zone });
    return true;
  } catch (e) {
    if (e instanceof RangeError) return false;
    throw e;
  }
}

function closestTimeZone(zone: string): string | undefined {
  const known = typeof Intl.supportedValuesOf === 'function' ? Intl.supportedValuesOf('timeZone') : [];
  const v = zone.toLowerCase();
  let best: { zone: string; d: number } | undefined;
  for (const candidate of ['UTC', ...known]) {
    const d = distance(v, candidate.toLowerCase());
    if (!best || d < best.d) best = { zone: candidate, d };
  }
  return best && best.d <= Math.min(3, Math.max(1, Math.floor(v.length / 4))) ? best.zone : undefined;
}

function checkAllowRange(c: Collector, range: unknown, path: Segment[]): AllowRange | undefined {
  if (!isObject(range)) {
    c.add(
      path,
      `must be an object like { days: [mon, tue], from: '09:00', to: '17:00' }, got ${describe(range)}`,
    );
    return undefined;
  }
  const before = c.problems.length;
  c.structure(allowSchema, range, path);
  const days = Array.isArray(range.days) ? checkDays(c, range.days, [...path, 'days']) : [...WEEKDAYS];
  const fromMinute = checkTime(c, range.from, [...path, 'from'], false);
  const toMinute = checkTime(c, range.to, [...path, 'to'], true);
  if (fromMinute !== undefined && toMinute !== undefined && fromMinute >= toMinute) {
    c.add(
      path,
      `from (${range.from}) must be before to (${range.to}); a range cannot cross midnight, ` +
        `so split it in two (e.g. 22:00–24:00 and 00:00–06:00 of the next day)`,
    );
  }
  if (c.problems.length > before || fromMinute === undefined || toMinute === undefined) return undefined;
  return { days, fromMinute, toMinute };
}

const FULL_DAY_NAMES = ['monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday', 'sunday'];

function checkDays(c: Collector, days: unknown[], path: Segment[]): Weekday[] {
  if (days.length === 0) c.add(path, 'lists no days; leave days out for every day');
  const out: Weekday[] = [];
  days.forEach((day, i) => {
    if (typeof day !== 'string') return; // reported by the structure check
    if ((WEEKDAYS as readonly string[]).includes(day)) {
      if (out.includes(day as Weekday)) c.add([...path, i], `"${day}" is listed twice`);
      else out.push(day as Weekday);
      return;
    }
    const v = day.trim().toLowerCase();
    const full = FULL_DAY_NAMES.findIndex((name) => name === v || (v.length >= 3 && name.startsWith(v)));
    const typo = WEEKDAYS.find((d) => distance(d, v) <= 1);
    const close = full >= 0 ? WEEKDAYS[full] : typo;
    c.add(
      [...path, i],
      `unknown day ${describe(day)}` +
        (close ? ` (did you mean "${close}"?)` : `; use ${WEEKDAYS.join(', ')}`),
    );
  });
  // Week order, so descriptions read naturally whatever order they were written in.
  return WEEKDAYS.filter((d) => out.includes(d));
}

const TIME = /^(\d{1,2}):(\d{2})$/;

/** `HH:MM` as minutes after midnight; 24:00 only where `endOfDay` is allowed. */
function checkTime(c: Collector, value: unknown, path: Segment[], endOfDay: boolean): number | undefined {
  const forms = endOfDay ? 'HH:MM from 00:00 to 24:00' : 'HH:MM from 00:00 to 23:59';
  if (value === undefined) {
    c.add(path, `is required: a local time of day as ${forms}`);
    return undefined;
  }
  if (typeof value !== 'string') {
    const hint = typeof value === 'number' ? " (quote it in YAML: '09:00')" : '';
    c.add(path, `must be a time of day as ${forms}${hint}, got ${describe(value)}`);
    return undefined;
  }
  const match = TIME.exec(value.trim());
  const hours = match ? Number(match[1]) : NaN;
  const minutes = match ? Number(match[2]) : NaN;
  const minute = hours * 60 + minutes;
  if (!match || minutes > 59 || minute > (endOfDay ? 1440 : 1439)) {
    // Say what is impossible about a time of the right shape (24:61, 25:00): its hour or its minute.
    const why = !match
      ? undefined
      : minutes > 59
        ? clockProblem(0, minutes)
        : endOfDay && hours === 24
          ? 'only 24:00 itself ends a day'
          : clockProblem(hours, minutes);
    c.add(path, `must be a time of day as ${forms}, got ${describe(value)}${why ? `: ${why}` : ''}`);
    return undefined;
  }
  return minute;
}

const DATE = /^(\d{4})-(\d{2})-(\d{2})$/;
const TIMESTAMP =
  /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?([Zz]|([+-])(\d{2}):(\d{2}))$/;
const MOMENT_FORMS = 'a date like 2026-12-20 or an RFC 3339 timestamp like 2026-12-20T18:00:00+01:00';

type Moment = { kind: 'date'; y: number; m: number; d: number } | { kind: 'instant'; ms: number };

const MONTH_NAMES = [
  'January',
  'February',
  'March',
  'April',
  'May',
  'June',
  'July',
  'August',
  'September',
  'October',
  'November',
  'December',
];

/**
 * Why y-m-d is not a day of the calendar (`February 2025 has 28 days`, `there is no month 13`), or undefined when
 * it is one. Date.UTC would quietly roll 2025-02-30 over to March 2.
 */
export function calendarProblem(y: number, m: number, d: number): string | undefined {
  if (!(m >= 1 && m <= 12)) return `there is no month ${m} (months go from 01 to 12)`;
  const days = new Date(Date.UTC(y, m, 0)).getUTCDate();
  if (!(d >= 1 && d <= days)) return `${MONTH_NAMES[m - 1]} ${y} has ${days} days, so there is no day ${d}`;
  return undefined;
}

/** Why a time of day is impossible (`there is no hour 24`), or undefined. Leap seconds (:60) are refused too. */
export function clockProblem(h: number, mi: number, s = 0): string | undefined {
  if (h > 23) return `there is no hour ${h} (hours go from 00 to 23)`;
  if (mi > 59) return `there is no minute ${mi} (minutes go from 00 to 59)`;
  if (s > 59) return `there is no second ${s} (seconds go from 00 to 59)`;
  return undefined;
}

/** A moment, or why text has a moment's shape but names an impossible one, or undefined for any other text. */
function parseMoment(text: string): Moment | { impossible: string } | undefined {
  const date = DATE.exec(text);
  if (date) {
    const [y, m, d] = date.slice(1, 4).map(Number);
    const wrong = calendarProblem(y, m, d);
    return wrong ? { impossible: wrong } : { kind: 'date', y, m, d };
  }
  const ts = TIMESTAMP.exec(text);
  if (!ts) return undefined;
  const [y, mo, d, h, mi, s] = ts.slice(1, 7).map(Number);
  const wrong = calendarProblem(y, mo, d) ?? clockProblem(h, mi, s);
  if (wrong) return { impossible: wrong };
  const fraction = ts[7] ? Math.floor(Number(`0${ts[7]}`) * 1000) : 0;
  let offsetMinutes = 0;
  if (ts[9]) {
    const [oh, om] = [Number(ts[10]), Number(ts[11])];
    if (oh > 23 || om > 59)
      return { impossible: `the offset ${ts[9]}${ts[10]}:${ts[11]} is not a UTC offset` };
    offsetMinutes = (ts[9] === '-' ? -1 : 1) * (oh * 60 + om);
  }
  return { kind: 'instant', ms: Date.UTC(y, mo - 1, d, h, mi, s, fraction) - offsetMinutes * MINUTE };
}

function checkMoment(c: Collector, value: unknown, path: Segment[]): Moment | undefined {
  if (value === undefined) {
    c.add(path, `is required: ${MOMENT_FORMS}`);
    return undefined;
  }
  const moment = typeof value === 'string' ? parseMoment(value.trim()) : undefined;
  if (moment && 'impossible' in moment) {
    c.add(path, `${describe(value)} is not a real date or time: ${moment.impossible}`);
    return undefined;
  }
  if (!moment) c.add(path, `must be ${MOMENT_FORMS}, got ${describe(value)}`);
  return moment;
}

function checkFreeze(
  c: Collector,
  spec: unknown,
  path: Segment[],
  zone: string | undefined,
): FreezePeriod | undefined {
  if (!isObject(spec)) {
    c.add(
      path,
      `must be an object like { from: '2026-12-20', to: '2027-01-04', reason: ... }, got ${describe(spec)}`,
    );
    return undefined;
  }
  const before = c.problems.length;
  c.structure(freezeSchema, spec, path);
  const from = checkMoment(c, spec.from, [...path, 'from']);
  const to = checkMoment(c, spec.to, [...path, 'to']);
  if (typeof spec.reason === 'string' && spec.reason.length > WINDOWS_LIMITS.reasonLength) {
    c.add(
      [...path, 'reason'],
      `must be at most ${WINDOWS_LIMITS.reasonLength} characters, got ${spec.reason.length}`,
    );
  }
  if (!from || !to) return undefined;
  // Without a valid zone (reported already) UTC still tells whether the period runs backwards.
  const z = zone ?? 'UTC';
  const fromMs = from.kind === 'date' ? localToInstant(z, Date.UTC(from.y, from.m - 1, from.d)) : from.ms;
  // A date is inclusive: the freeze lasts until the start of the next day.
  const untilMs = to.kind === 'date' ? localToInstant(z, Date.UTC(to.y, to.m - 1, to.d + 1)) : to.ms;
  if (untilMs <= fromMs) {
    c.add(
      [...path, 'to'],
      `must not be before from (${String(spec.from).trim()}), got ${describe(String(spec.to).trim())}` +
        (to.kind === 'instant' ? ' (a timestamp must be after from)' : ''),
    );
  }
  if (c.problems.length > before) return undefined;
  const reason =
    typeof spec.reason === 'string' && spec.reason.trim() !== '' ? spec.reason.trim() : undefined;
  return {
    fromMs,
    untilMs,
    from: String(spec.from).trim(),
    to: String(spec.to).trim(),
    ...(reason ? { reason } : {}),
  };
}

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
