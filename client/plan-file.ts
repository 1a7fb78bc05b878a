// Loading a plan from a preset name or a YAML/JSON file, and a target from a file of its own (Node side;
// validation lives in workflows/plan and workflows/target).
import * as fs from 'fs';
import * as path from 'path';
import { parse, YAMLParseError } from 'yaml';
import { formatProblems, validatePlan, type PlanProblem, type PlanSpec } from '../workflows/plan';
import { PRESETS, presetNames } from '../workflows/presets';
import { formatTargetProblems, type TargetSpec } from '../workflows/target';
import type { InputProblem } from '../workflows/problems';
import type { Plan } from '../workflows/types';

/** The plan file could not be found, read or parsed. */
export class PlanFileError extends Error {
  constructor(
    message: string,
    readonly file: string,
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

/** Reads and parses a YAML/JSON document; throws PlanFileError naming the file and what is wrong. */
function readDocument(file: string, what: 'plan' | 'target', alternatives: string): unknown {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      throw new PlanFileError(`${what} file "${file}" not found; give a ${what} file${alternatives}`, file);
    }
    const reason =
      code === 'EISDIR'
        ? 'it is a directory'
        : code === 'EACCES'
          ? 'permission denied'
          : (e as Error).message;
    throw new PlanFileError(`cannot read ${what} file "${file}": ${reason}`, file);
  }
  const format = path.extname(file).toLowerCase() === '.json' ? 'JSON' : 'YAML';
  let spec: unknown;
  try {
    spec = parse(text);
  } catch (e) {
    if (!(e instanceof YAMLParseError)) throw e;
    const reason = e.message.split('\n')[0].replace(/ at line \d+, column \d+:?$/, '');
    const where = e.linePos ? ` at line ${e.linePos[0].line}, column ${e.linePos[0].col}` : '';
    throw new PlanFileError(`${what} file "${file}" has a ${format} syntax error${where}: ${reason}`, file);
  }
  if (spec === null || spec === undefined) {
    throw new PlanFileError(`${what} file "${file}" is empty`, file);
  }
  return spec;
}

/** loadPlan, then validatePlan; throws PlanInvalidError listing every problem. */
export function loadAndValidatePlan(fileOrPreset: string): LoadedPlan & { plan: Plan } {
  const loaded = loadPlan(fileOrPreset);
  const result = validatePlan(loaded.spec);
  if (!result.ok) throw new PlanInvalidError(result.problems, loaded.source);
  return { ...loaded, plan: result.plan };
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
