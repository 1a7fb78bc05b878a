// Deployment windows as written in a plan: their schema and validation into the normalised Windows (windows.ts holds
// the model, and when windows are open). Pure and deterministic, for the workflow sandbox and the client alike.
import { z } from 'zod';
import { DurationError, parseDuration } from './duration';
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
import {
  DATE,
  NEXT_OPEN_HORIZON_DAYS,
  WEEKDAYS,
  WINDOWS_LIMITS,
  type AllowRange,
  type FreezePeriod,
  type Weekday,
  type Windows,
  localToInstant,
} from './windows';

const MINUTE = 60_000;
const DAY = 86_400_000;

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
