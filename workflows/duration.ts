// Durations as people write them in plans: `90s`, `15m`, `1h30m`, `2d`, `500ms`, or ISO-8601 (`PT1H30M`, `P2D`).
// Pure and deterministic: imported by the workflow sandbox.

export type DurationErrorKind = 'syntax' | 'negative' | 'calendar';

/** Thrown by parseDuration; `reason` is the part after the quoted text, `kind` lets callers phrase it. */
export class DurationError extends Error {
  constructor(
    readonly text: string,
    readonly reason: string,
    readonly kind: DurationErrorKind = 'syntax',
  ) {
    super(`invalid duration "${text}": ${reason}`);
    this.name = 'DurationError';
  }
}

const MS = { w: 604_800_000, d: 86_400_000, h: 3_600_000, m: 60_000, s: 1000, ms: 1 } as const;
type Unit = keyof typeof MS;
/** Largest first: the order components must appear in. */
const UNITS = Object.keys(MS) as Unit[];

const SHORT_COMPONENT = /^(\d+(?:\.\d+)?)([a-z]*)/;
// ISO-8601 allows a comma as the decimal sign.
const N = String.raw`(\d+(?:[.,]\d+)?)`;
const ISO = new RegExp(String.raw`^P(?:${N}W)?(?:${N}D)?(?:T(?:${N}H)?(?:${N}M)?(?:${N}S)?)?$`);

/** Parses a duration into milliseconds. Throws DurationError on anything it does not accept. */
export function parseDuration(text: string): number {
  const trimmed = text.trim();
  if (trimmed === '') throw new DurationError(text, 'is empty');
  if (trimmed.startsWith('-')) {
    throw new DurationError(text, 'negative durations are not allowed', 'negative');
  }
  return /^p/i.test(trimmed)
    ? parseIso(text, trimmed.toUpperCase())
    : parseShort(text, trimmed.toLowerCase());
}

function parseShort(text: string, rest: string): number {
  let total = 0;
  let previous = -1;
  while (rest !== '') {
    const match = SHORT_COMPONENT.exec(rest);
    if (!match) {
      throw new DurationError(
        text,
        previous < 0 ? 'expected a number followed by a unit' : `unexpected "${rest[0]}"`,
      );
    }
    const [whole, amount, unit] = match;
    if (unit === '') {
      throw new DurationError(text, whole === rest ? 'missing unit' : `unexpected "${rest[whole.length]}"`);
    }
    const index = UNITS.indexOf(unit as Unit);
    if (index < 0) throw new DurationError(text, `unknown unit "${unit}" (use ms, s, m, h, d or w)`);
    if (index === previous) throw new DurationError(text, `unit "${unit}" appears twice`);
    if (index < previous) {
      throw new DurationError(
        text,
        `units must go from largest to smallest ("${unit}" after "${UNITS[previous]}")`,
      );
    }
    previous = index;
    total += toMs(text, amount, MS[unit as Unit]);
    rest = rest.slice(whole.length);
  }
  return checked(text, total);
}

function parseIso(text: string, upper: string): number {
  const t = upper.indexOf('T');
  const datePart = t < 0 ? upper : upper.slice(0, t);
  if (/[YM]/.test(datePart.slice(1))) {
    const [what, example] = datePart.includes('Y') ? ['years', 'P365D'] : ['months', 'P30D'];
    throw new DurationError(
      text,
      `${what} are not a fixed length; use days instead, e.g. ${example}`,
      'calendar',
    );
  }
  if (upper === 'P' || upper === 'PT' || upper.endsWith('T')) {
    throw new DurationError(text, 'has no components after P or T');
  }
  const match = ISO.exec(upper);
  if (!match) {
    throw new DurationError(
      text,
      /[HS]/.test(datePart)
        ? 'hours, minutes and seconds must come after T, e.g. PT1H'
        : 'not a valid ISO-8601 duration (P[nW][nD][T[nH][nM][nS]])',
    );
  }
  const [, w, d, h, m, s] = match;
  const parts: Array<[string | undefined, number]> = [
    [w, MS.w],
    [d, MS.d],
    [h, MS.h],
    [m, MS.m],
    [s, MS.s],
  ];
  return checked(
    text,
    parts.reduce((sum, [amount, unit]) => sum + (amount === undefined ? 0 : toMs(text, amount, unit)), 0),
  );
}

function toMs(text: string, amount: string, unit: number): number {
  const exact = Number(amount.replace(',', '.')) * unit;
  const ms = Math.round(exact);
  if (Math.abs(exact - ms) > 1e-6) throw new DurationError(text, 'is finer than a millisecond');
  return ms;
}

function checked(text: string, ms: number): number {
  if (!Number.isSafeInteger(ms)) throw new DurationError(text, 'is too large');
  return ms;
}

/**
 * Formats milliseconds for people, hours being the largest unit: `48h`, `1h30m`, `1m30s`, `0s`. Whole seconds
 * from 1 s up (countdowns stay readable); milliseconds only below 1 s (`500ms`). Parses back with parseDuration.
 */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms)) throw new RangeError(`cannot format ${ms} as a duration`);
  const abs = Math.abs(ms);
  const sign = ms < 0 ? '-' : '';
  if (abs < 1000) {
    const rounded = Math.round(abs);
    return rounded === 0 ? '0s' : rounded === 1000 ? `${sign}1s` : `${sign}${rounded}ms`;
  }
  let rest = Math.round(abs / 1000);
  let out = '';
  for (const [unit, size] of [
    ['h', 3600],
    ['m', 60],
    ['s', 1],
  ] as const) {
    const amount = Math.floor(rest / size);
    if (amount > 0) out += `${amount}${unit}`;
    rest -= amount * size;
  }
  return `${sign}${out}`;
}
