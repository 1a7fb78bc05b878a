// Loading a plan from a preset name or a YAML/JSON file, and a target from a file of its own (Node side;
// validation lives in workflows/plan and workflows/target).
import * as fs from 'fs';
import * as path from 'path';
import {
  ParseErrorCode,
  parse as parseJsonc,
  printParseErrorCode,
  visit as visitJson,
  type ParseError,
} from 'jsonc-parser';
import { parse, YAMLParseError } from 'yaml';
import { formatProblems, validatePlan, type PlanProblem, type PlanSpec } from '../workflows/plan';
import { planStartFindings, type PlanFindings } from '../workflows/plan-findings';
import { PRESETS, presetNames } from '../workflows/presets';
import { formatTargetProblems, type TargetSpec } from '../workflows/target';
import { sortedProblems, type InputProblem, type Segment } from '../workflows/problems';
import type { Plan } from '../workflows/types';
import { querySyntaxProblems } from '../activities/metrics/promql-syntax';
import type { TemplateSetName } from '../activities/metrics/templates';

/** The plan file (or target file) could not be found, read or parsed. */
export class PlanFileError extends Error {
  constructor(
    message: string,
    readonly file: string,
    /** Which document it was: validate --output json files the problem under `target` for a target file. */
    readonly what: 'plan' | 'target' | 'release' = 'plan',
  ) {
    super(message);
    this.name = 'PlanFileError';
  }
}

/** The plan was read but does not validate; the message is formatProblems output. */
export class PlanInvalidError extends Error {
  constructor(
    readonly problems: PlanProblem[],
    readonly source: string,
    /** What would only have been warned about (validate --output json lists them beside the problems). */
    readonly warnings: PlanProblem[] = [],
  ) {
    super(formatProblems(problems));
    this.name = 'PlanInvalidError';
  }
}

export interface LoadedPlan {
  spec: PlanSpec;
  /** `preset "<name>"`, or the file path as given. */
  source: string;
  /** A `target:` written beside the stages (presets have none: they stay reusable across services). */
  target?: TargetSpec;
}

/**
 * Returns the preset with this name, or reads the file: YAML for .yaml/.yml, JSON for .json, otherwise YAML
 * (a JSON superset). Does not validate; throws PlanFileError when the file can't be found, read or parsed.
 */
export function loadPlan(fileOrPreset: string): LoadedPlan {
  if (Object.prototype.hasOwnProperty.call(PRESETS, fileOrPreset)) {
    return { spec: structuredClone(PRESETS[fileOrPreset]), source: `preset "${fileOrPreset}"` };
  }
  const file = fileOrPreset;
  if (/^[a-z0-9][a-z0-9-]*$/i.test(file) && !fs.existsSync(file)) {
    // A bare word is a preset name more likely than a file name: say so rather than "file not found".
    throw new PlanFileError(
      `unknown preset "${file}" (and no plan file of that name); presets: ${presetNames().join(', ')}, or give a plan file (YAML/JSON)`,
      file,
    );
  }
  const doc = readDocument(file, 'plan', ` or a preset (${presetNames().join(', ')})`);
  if (typeof doc === 'object' && doc !== null && !Array.isArray(doc) && 'target' in doc) {
    const { target, ...spec } = doc as Record<string, unknown>;
    return { spec: spec as unknown as PlanSpec, source: file, target: target as TargetSpec };
  }
  return { spec: doc as PlanSpec, source: file };
}

/** Reads a target file: the target itself, or a document with a top-level `target:` (a plan file works too). */
export function loadTargetFile(file: string): TargetSpec {
  const doc = readDocument(file, 'target', '');
  if (typeof doc === 'object' && doc !== null && !Array.isArray(doc) && 'target' in doc) {
    return (doc as { target: TargetSpec }).target;
  }
  return doc as TargetSpec;
}

/** Plan and target files are small; anything bigger is a mistake (`--plan /dev/zero`, a log file). */
export const MAX_FILE_BYTES = 1024 * 1024;

/**
 * Reads and parses a YAML/JSON document; throws PlanFileError naming the file and what is wrong. Only regular
 * files of at most MAX_FILE_BYTES are read: a device never fills memory, a FIFO never hangs the command.
 */
export function readDocument(
  file: string,
  what: 'plan' | 'target' | 'release',
  alternatives: string,
): unknown {
  const text = readSmallRegularFile(file, what, alternatives);
  const json = path.extname(file).toLowerCase() === '.json';
  let spec: unknown;
  if (json) {
    const problem = jsonProblem(text);
    if (problem) throw new PlanFileError(`${what} file "${file}" is not valid JSON ${problem}`, file, what);
    const duplicate = duplicateJsonKey(text);
    if (duplicate) throw new PlanFileError(`${what} file "${file}" ${duplicate}`, file, what);
    spec = JSON.parse(text);
  } else {
    try {
      // yaml's own alias limit (100) guards against "billion laughs" documents; a key given twice in one mapping
      // is refused (uniqueKeys, yaml's default, said here so that no option change turns it off).
      spec = parse(text, { uniqueKeys: true });
    } catch (e) {
      if (e instanceof YAMLParseError && e.code === 'DUPLICATE_KEY') {
        const at = e.linePos ? ` at line ${e.linePos[0].line}, column ${e.linePos[0].col}` : '';
        const key = /^[^:\n]*/.exec(text.slice(e.pos[0]))?.[0].trim();
        throw new PlanFileError(
          `${what} file "${file}" gives the key ${key ? `${key} ` : ''}twice in one mapping${at}: ` +
            'YAML keys must be unique; remove or merge one of them',
          file,
          what,
        );
      }
      if (e instanceof YAMLParseError) {
        const reason = e.message.split('\n')[0].replace(/ at line \d+, column \d+:?$/, '');
        const where = e.linePos ? ` at line ${e.linePos[0].line}, column ${e.linePos[0].col}` : '';
        throw new PlanFileError(
          `${what} file "${file}" has a YAML syntax error${where}: ${reason}`,
          file,
          what,
        );
      }
      if (e instanceof ReferenceError && /alias/i.test(e.message)) {
        throw new PlanFileError(
          `${what} file "${file}" uses too many YAML aliases (more than 100 expansions); write the values out instead`,
          file,
          what,
        );
      }
      throw new PlanFileError(
        `${what} file "${file}" cannot be read as YAML: ${(e as Error).message}`,
        file,
        what,
      );
    }
  }
  if (spec === null || spec === undefined) {
    throw new PlanFileError(`${what} file "${file}" is empty`, file, what);
  }
  return spec;
}

function readSmallRegularFile(
  file: string,
  what: 'plan' | 'target' | 'release',
  alternatives: string,
): string {
  let fd: number | undefined;
  try {
    const st = fs.statSync(file);
    if (st.isDirectory())
      throw new PlanFileError(`cannot read ${what} file "${file}": it is a directory`, file, what);
    if (!st.isFile()) {
      throw new PlanFileError(
        `cannot read ${what} file "${file}": it is not a regular file (a device, FIFO or socket); give a ${what} file`,
        file,
        what,
      );
    }
    if (st.size > MAX_FILE_BYTES) {
      throw new PlanFileError(
        `${what} file "${file}" is ${st.size} bytes; a ${what} file may have at most ${MAX_FILE_BYTES} bytes (1 MiB)`,
        file,
        what,
      );
    }
    fd = fs.openSync(file, 'r');
    // Read at most one byte more than allowed: a file that grew since stat is still refused.
    const buffer = Buffer.alloc(MAX_FILE_BYTES + 1);
    const n = fs.readSync(fd, buffer, 0, buffer.length, 0);
    if (n > MAX_FILE_BYTES) {
      throw new PlanFileError(
        `${what} file "${file}" is larger than ${MAX_FILE_BYTES} bytes (1 MiB)`,
        file,
        what,
      );
    }
    return buffer.subarray(0, n).toString('utf8');
  } catch (e) {
    if (e instanceof PlanFileError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      throw new PlanFileError(
        `${what} file "${file}" not found; give a ${what} file${alternatives}`,
        file,
        what,
      );
    }
    const reason =
      code === 'EISDIR'
        ? 'it is a directory'
        : code === 'EACCES'
          ? 'permission denied'
          : (e as Error).message;
    throw new PlanFileError(`cannot read ${what} file "${file}": ${reason}`, file, what);
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

const JSON_ERRORS: Partial<Record<ParseErrorCode, string>> = {
  [ParseErrorCode.InvalidSymbol]: 'unexpected character (JSON strings and names take double quotes)',
  [ParseErrorCode.InvalidNumberFormat]: 'invalid number',
  [ParseErrorCode.PropertyNameExpected]: 'expected a property name in double quotes',
  [ParseErrorCode.ValueExpected]: 'expected a value (JSON allows no trailing commas)',
  [ParseErrorCode.ColonExpected]: 'expected ":"',
  [ParseErrorCode.CommaExpected]: 'expected ","',
  [ParseErrorCode.CloseBraceExpected]: 'expected "}"',
  [ParseErrorCode.CloseBracketExpected]: 'expected "]"',
  [ParseErrorCode.EndOfFileExpected]: 'unexpected text after the end of the document',
  [ParseErrorCode.InvalidCommentToken]: 'comments are not allowed in JSON',
  [ParseErrorCode.UnexpectedEndOfComment]: 'comments are not allowed in JSON',
  [ParseErrorCode.UnexpectedEndOfString]: 'unterminated string',
  [ParseErrorCode.UnexpectedEndOfNumber]: 'unterminated number',
  [ParseErrorCode.InvalidUnicode]: 'invalid unicode escape',
  [ParseErrorCode.InvalidEscapeCharacter]: 'invalid escape character',
  [ParseErrorCode.InvalidCharacter]: 'invalid character in a string',
};

/**
 * `at line L, column C: <what is wrong>` for the first error in strict JSON (no comments, no trailing commas),
 * or undefined when the text is valid JSON. JSON.parse names no line, and sometimes no position at all.
 */
function jsonProblem(text: string): string | undefined {
  const errors: ParseError[] = [];
  parseJsonc(text, errors, { allowTrailingComma: false, disallowComments: true, allowEmptyContent: true });
  const first = errors[0];
  if (!first) return undefined;
  const before = text.slice(0, first.offset);
  const line = before.split('\n').length;
  const column = first.offset - before.lastIndexOf('\n');
  return `at line ${line}, column ${column}: ${JSON_ERRORS[first.error] ?? printParseErrorCode(first.error)}`;
}

/**
 * `has the key "stages" twice in one object (at line 9, column 3; first at line 2, column 3): JSON keeps only the
 * last one, ...`, or undefined when every object's keys are distinct. JSON.parse silently keeps the last.
 */
function duplicateJsonKey(text: string): string | undefined {
  const objects: Array<Map<string, { line: number; column: number }>> = [];
  let found: string | undefined;
  visitJson(text, {
    onObjectBegin: () => {
      objects.push(new Map());
    },
    onObjectEnd: () => {
      objects.pop();
    },
    onObjectProperty: (key, _offset, _length, line, character) => {
      const keys = objects[objects.length - 1];
      if (found || !keys) return;
      const first = keys.get(key);
      if (first) {
        found =
          `has the key ${JSON.stringify(key)} twice in one object (at line ${line + 1}, column ${character + 1}; ` +
          `first at line ${first.line}, column ${first.column}): JSON would keep only the last one; remove or merge ` +
          'one of them';
      } else keys.set(key, { line: line + 1, column: character + 1 });
    },
  });
  return found;
}

/** How a plan is validated for a new rollout, beyond validatePlan. */
export interface PlanCheckOptions {
  /** Refuse what is otherwise only warned about (`--strict`): a query that measures the whole fleet, ... */
  strict?: boolean;
  /** The time deployment windows must open soon after (default: now; a backtest uses its --from). */
  nowMs?: number;
  /** The template set whose selector stands in for {{selector}} when queries are parsed (default http). */
  templates?: TemplateSetName;
}

export type ValidatedPlan = LoadedPlan & {
  plan: Plan;
  /** Findings that do not refuse the plan (unless strict), with paths in it; print them as warnings. */
  warnings: PlanProblem[];
};

/** loadPlan, then validateLoadedPlan; throws PlanInvalidError listing every problem. */
export function loadAndValidatePlan(fileOrPreset: string, options: PlanCheckOptions = {}): ValidatedPlan {
  return validateLoadedPlan(loadPlan(fileOrPreset), options);
}

/**
 * Validates a plan however it was obtained (a file, a preset, a plan object, a rollout's history) for a new
 * rollout: validatePlan, then what validatePlan must not refuse because recorded histories re-validate their plans
 * (offlinePlanFindings: PromQL syntax, unreachable persistence, windows that do not open). Throws PlanInvalidError
 * with every problem (and, with `strict`, every warning).
 */
export function validateLoadedPlan(loaded: LoadedPlan, options: PlanCheckOptions = {}): ValidatedPlan {
  const result = validatePlan(loaded.spec);
  if (!result.ok) throw new PlanInvalidError(result.problems, loaded.source);
  const findings = offlinePlanFindings(result.plan, options);
  const strictly = options.strict
    ? findings.warnings.map((w) => ({ ...w, message: `${w.message} (refused by --strict)` }))
    : [];
  const refused = [...findings.problems, ...strictly];
  if (refused.length > 0) {
    throw new PlanInvalidError(
      inDocumentOrder(loaded.spec, refused),
      loaded.source,
      options.strict ? [] : findings.warnings,
    );
  }
  return { ...loaded, plan: result.plan, warnings: findings.warnings };
}

/** Everything a new rollout's plan is checked for offline beyond validatePlan, in document order. */
export function offlinePlanFindings(plan: Plan, options: PlanCheckOptions = {}): PlanFindings {
  const start = planStartFindings(plan, options.nowMs ?? Date.now());
  return {
    problems: [
      ...querySyntaxProblems(plan, options.templates ? { templates: options.templates } : {}),
      ...start.problems,
    ],
    warnings: start.warnings,
  };
}

/** Problems with string paths (`analysis.checks[2].query`) in the order their paths appear in the document. */
function inDocumentOrder(spec: unknown, problems: readonly InputProblem[]): InputProblem[] {
  const segments = (path: string): Segment[] =>
    [...path.matchAll(/([^.[\]]+)|\[(\d+)\]/g)].map((m) => (m[2] !== undefined ? Number(m[2]) : m[1]));
  return sortedProblems(
    spec,
    problems.map((p) => ({ path: segments(p.path), message: p.message })),
  );
}

/** The target does not validate; the message lists every problem by path (`target.traffic.istio...`). */
export class TargetInvalidError extends Error {
  constructor(
    readonly problems: InputProblem[],
    readonly source: string,
  ) {
    super(formatTargetProblems(problems));
    this.name = 'TargetInvalidError';
  }
}
