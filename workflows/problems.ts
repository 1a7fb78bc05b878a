// Shared machinery for validating what a user wrote (plans, targets): problems with paths, zod structure with our
// own messages, "did you mean" for unknown fields, durations, and document-order sorting. Pure and deterministic:
// imported by the workflow sandbox and the client alike.
import { z } from 'zod';
import { DurationError, parseDuration } from './duration';

/** The longest duration a plan may use anywhere: 30 days. */
export const MAX_DURATION_MS = 30 * 24 * 3_600_000;

export const DURATION_FORMS = '90s, 15m, 1h30m or ISO-8601 like PT1H30M';

/** One problem found in user input; the path is like `stages[2].weight`, empty for the document itself. */
export interface InputProblem {
  path: string;
  message: string;
}

/** How a value is shown after "got". */
export function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'an object';
  if (typeof value === 'string') return JSON.stringify(value);
  return String(value);
}

interface IssueLike {
  code?: string;
  input?: unknown;
}

/** `must be <what>, got <value>`, or `required` when the field is absent. */
export function typeError(what: string, required = 'is required') {
  return {
    error: (issue: IssueLike) =>
      issue.input === undefined ? required : `must be ${what}, got ${describe(issue.input)}`,
  };
}

/** Validated by hand (durations, gates): anything passes the structural stage. */
export function byHand<T>() {
  return z.custom<T>(() => true);
}

export type Segment = string | number;

export interface Problem {
  path: Segment[];
  message: string;
}

export type Obj = Record<string, unknown>;

export function isObject(value: unknown): value is Obj {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export class Collector {
  readonly problems: Problem[] = [];

  /** Known fields per object, by path pattern (indexes as `*`), for "did you mean". */
  constructor(private readonly knownFields: Record<string, readonly string[]> = {}) {}

  add(path: Segment[], message: string): void {
    this.problems.push({ path, message });
  }

  /** Runs a strict zod schema and records its issues under `prefix`. */
  structure(schema: z.ZodType, value: unknown, prefix: Segment[] = []): void {
    const result = schema.safeParse(value, { reportInput: true });
    if (result.success) return;
    for (const issue of result.error.issues) {
      const path = [...prefix, ...issue.path.map((s) => (typeof s === 'number' ? s : String(s)))];
      if (issue.code === 'unrecognized_keys') {
        for (const key of issue.keys) this.add([...path, key], unknownField(this.knownFields, path, key));
      } else {
        this.add(path, issue.message);
      }
    }
  }
}

function unknownField(
  knownFields: Record<string, readonly string[]>,
  parent: Segment[],
  key: string,
): string {
  const pattern = parent.map((s) => (typeof s === 'number' ? '*' : s)).join('.');
  const known = knownFields[pattern] ?? [];
  const limit = Math.max(1, Math.min(2, Math.floor(key.length / 3)));
  const close = known.find((k) => distance(k.toLowerCase(), key.toLowerCase()) <= limit);
  if (close) return `unknown field "${key}" (did you mean "${close}"?)`;
  return known.length > 0
    ? `unknown field "${key}" (known fields: ${known.join(', ')})`
    : `unknown field "${key}"`;
}

/** Levenshtein distance, for typo suggestions. */
export function distance(a: string, b: string): number {
  let row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const next = [i];
    for (let j = 1; j <= b.length; j++) {
      next[j] = Math.min(row[j] + 1, next[j - 1] + 1, row[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    row = next;
  }
  return row[b.length];
}

export interface DurationRules {
  allowZero?: boolean;
  /** Appended to the "must be more than 0s" message. */
  zeroHint?: string;
}

/** Checks a duration field that is present; returns ms when valid. */
export function checkDuration(
  c: Collector,
  value: unknown,
  path: Segment[],
  rules: DurationRules = {},
): number | undefined {
  if (typeof value !== 'string' && typeof value !== 'number') {
    c.add(path, `must be a duration like ${DURATION_FORMS}, got ${describe(value)}`);
    return undefined;
  }
  const text = String(value);
  let ms: number;
  try {
    ms = parseDuration(text);
  } catch (e) {
    if (!(e instanceof DurationError)) throw e;
    if (e.kind === 'negative') c.add(path, `must not be negative, got ${describe(value)}`);
    else if (e.kind === 'calendar') c.add(path, e.message);
    else c.add(path, `${e.message}; use ${DURATION_FORMS}`);
    return undefined;
  }
  if (ms === 0 && !rules.allowZero) {
    c.add(path, `must be more than 0s${rules.zeroHint ?? ''}`);
    return undefined;
  }
  if (ms > MAX_DURATION_MS) {
    c.add(path, `must be at most 30 days (720h), got ${describe(value)}`);
    return undefined;
  }
  return ms;
}

/** Sort key: the position of each path segment in the input, so problems come out in document order. */
function documentRank(root: unknown, path: Segment[]): number[] {
  const rank: number[] = [];
  let node = root;
  for (const segment of path) {
    if (Array.isArray(node) && typeof segment === 'number') {
      rank.push(segment);
      node = node[segment];
    } else if (isObject(node)) {
      const keys = Object.keys(node);
      const at = keys.indexOf(String(segment));
      rank.push(at < 0 ? keys.length : at);
      node = at < 0 ? undefined : node[String(segment)];
    } else {
      rank.push(0);
      node = undefined;
    }
  }
  return rank;
}

function compareRanks(a: number[], b: number[]): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    if (a[i] !== b[i]) return a[i] - b[i];
  }
  return a.length - b.length;
}

export function formatPath(path: readonly Segment[]): string {
  return path.reduce<string>(
    (out, s) => (typeof s === 'number' ? `${out}[${s}]` : out === '' ? s : `${out}.${s}`),
    '',
  );
}

/** Sorts problems into the order their paths appear in the input and formats the paths. */
export function sortedProblems(root: unknown, problems: readonly Problem[]): InputProblem[] {
  const ranked = problems.map((p) => ({ p, rank: documentRank(root, p.path) }));
  ranked.sort((a, b) => compareRanks(a.rank, b.rank));
  return ranked.map(({ p }) => ({ path: formatPath(p.path), message: p.message }));
}

/** The most problems a message lists; the rest are counted. */
export const MAX_PROBLEMS_SHOWN = 50;

/** `  - path: message` lines, the first MAX_PROBLEMS_SHOWN of them, then `  ... and N more`. */
export function problemLines(problems: readonly InputProblem[], prefix = ''): string[] {
  const lines = problems
    .slice(0, MAX_PROBLEMS_SHOWN)
    .map(
      (p) =>
        `  - ${p.path === '' ? (prefix ? `${prefix}: ` : '') : `${prefix ? `${prefix}.` : ''}${p.path}: `}${p.message}`,
    );
  if (problems.length > MAX_PROBLEMS_SHOWN)
    lines.push(`  ... and ${problems.length - MAX_PROBLEMS_SHOWN} more`);
  return lines;
}
