// Loading a plan from a preset name or a YAML/JSON file (Node side; validation lives in workflows/plan).
import * as fs from 'fs';
import * as path from 'path';
import { parse, YAMLParseError } from 'yaml';
import { formatProblems, validatePlan, type PlanProblem, type PlanSpec } from '../workflows/plan';
import { PRESETS, presetNames } from '../workflows/presets';
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
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      throw new PlanFileError(
        `plan file "${file}" not found; give a plan file or a preset (${presetNames().join(', ')})`,
        file,
      );
    }
    const reason =
      code === 'EISDIR'
        ? 'it is a directory'
        : code === 'EACCES'
          ? 'permission denied'
          : (e as Error).message;
    throw new PlanFileError(`cannot read plan file "${file}": ${reason}`, file);
  }
  const format = path.extname(file).toLowerCase() === '.json' ? 'JSON' : 'YAML';
  let spec: unknown;
  try {
    spec = parse(text);
  } catch (e) {
    if (!(e instanceof YAMLParseError)) throw e;
    const reason = e.message.split('\n')[0].replace(/ at line \d+, column \d+:?$/, '');
    const where = e.linePos ? ` at line ${e.linePos[0].line}, column ${e.linePos[0].col}` : '';
    throw new PlanFileError(`plan file "${file}" has a ${format} syntax error${where}: ${reason}`, file);
  }
  if (spec === null || spec === undefined) {
    throw new PlanFileError(`plan file "${file}" is empty`, file);
  }
  return { spec: spec as PlanSpec, source: file };
}

/** loadPlan, then validatePlan; throws PlanInvalidError listing every problem. */
export function loadAndValidatePlan(fileOrPreset: string): LoadedPlan & { plan: Plan } {
  const { spec, source } = loadPlan(fileOrPreset);
  const result = validatePlan(spec);
  if (!result.ok) throw new PlanInvalidError(result.problems, source);
  return { spec, plan: result.plan, source };
}
