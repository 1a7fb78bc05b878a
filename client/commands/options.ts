// What several commands share: the target's flags, the output and --strict options, and the parsing of durations
// and stage numbers.
import { Option } from 'commander';
import { DurationError, parseDuration } from '../../workflows/duration';
import type { InputProblem } from '../../workflows/problems';
import { ROUTER_TYPES, type TargetSpec } from '../../workflows/target';
import { loadTargetFile } from '../plan-file';
import { UsageError } from './usage';

export type OutputFormat = 'text' | 'json';

export function json(value: unknown): string {
  return `${JSON.stringify(value, null, 2)}\n`;
}

export function parseDurationOption(option: string, text: string): number {
  let ms: number;
  try {
    ms = parseDuration(text);
  } catch (err) {
    if (err instanceof DurationError) throw new UsageError(`${option}: ${err.message}`);
    throw err;
  }
  if (ms < 100) throw new UsageError(`${option} must be at least 100ms, got "${text}"`);
  return ms;
}

export function parseInterval(text: string): number {
  return parseDurationOption('--interval', text);
}

export function parseStage(text: string): number {
  const n = Number(text);
  if (!/^\d+$/.test(text.trim()) || !Number.isSafeInteger(n) || n < 1) {
    throw new UsageError(`--stage must be a stage number (1, 2, ...), got "${text}"`);
  }
  return n;
}

// The target options start and validate share.
export const targetFileOption = (): Option =>
  new Option(
    '--target <file>',
    'target file (YAML/JSON): workload, traffic router and its settings, metrics',
  );
export const workloadOption = (): Option =>
  new Option('--workload <name>', 'the stable Deployment (the canary is derived from it)');
export const containerOption = (): Option =>
  new Option('--container <name>', 'the container that takes the new image (default: the first)');
export const routerOption = (): Option =>
  new Option('--router <type>', "traffic router (default: the target's, else the worker's)").choices([
    ...ROUTER_TYPES,
  ]);
export const routerOptOption = (): Option =>
  new Option(
    '--router-opt <key=value>',
    'a router setting, e.g. virtualService=checkout or routes=primary,secondary (repeatable)',
  ).argParser((value: string, previous: string[] = []) => [...previous, value]);

export function outputOption(): Option {
  return new Option('--output <format>', 'output format').choices(['text', 'json']).default('text');
}

export const strictOption = (): Option =>
  new Option(
    '--strict',
    'refuse what is otherwise a warning (a query that measures the whole fleet, a breach bound longer than the holds)',
  );

/** The options that say a target, shared by start, validate and backtest. */
export interface TargetOptions {
  app?: string;
  namespace?: string;
  target?: string;
  workload?: string;
  container?: string;
  router?: string;
  routerOpt?: string[];
}

/**
 * The target from, in rising precedence: a `target:` in the plan file, `--target FILE`, then the flags.
 * `--router` replaces the router; `--router-opt key=value` sets one of its settings (comma lists for `routes`).
 */
export function targetFromOptions(opts: TargetOptions, fromPlan?: TargetSpec): TargetSpec {
  const base: TargetSpec = structuredClone(opts.target ? loadTargetFile(opts.target) : (fromPlan ?? {}));
  if (typeof base !== 'object' || base === null || Array.isArray(base)) return base;
  const t: TargetSpec = { ...base };
  if (opts.app !== undefined) t.app = opts.app.trim();
  if (opts.namespace !== undefined) t.namespace = opts.namespace.trim();
  if (opts.workload !== undefined || opts.container !== undefined) {
    t.workload = {
      ...(t.workload ?? {}),
      ...(opts.workload !== undefined ? { name: opts.workload.trim() } : {}),
      ...(opts.container !== undefined ? { container: opts.container.trim() } : {}),
    };
  }
  if (opts.router !== undefined) t.traffic = { [opts.router]: {} };
  if (opts.routerOpt?.length) {
    const keys = Object.keys(t.traffic ?? {});
    if (keys.length !== 1) {
      throw new UsageError('--router-opt needs a router: pass --router, or a target that names one');
    }
    const settings: Record<string, unknown> = { ...((t.traffic![keys[0]] as object | undefined) ?? {}) };
    for (const pair of opts.routerOpt) {
      const eq = pair.indexOf('=');
      if (eq <= 0) throw new UsageError(`--router-opt takes key=value, got "${pair}"`);
      const key = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      if (value === '') {
        // `routes=` would read as "no routes named", which the router takes as every route: never by accident.
        throw new UsageError(
          key === 'routes'
            ? '--router-opt routes= names no route; name the routes to shift (routes=primary,secondary), or leave ' +
                '--router-opt routes out to shift every HTTP route'
            : `--router-opt ${key}= has no value; give ${key}=VALUE, or leave it out for the router's default`,
        );
      }
      settings[key] = routerOptValue(key, value);
    }
    t.traffic = { [keys[0]]: settings };
  }
  return t;
}

/** Flag text to the setting's type: lists for routes, numbers for rule and port, {name, value} for header. */
function routerOptValue(key: string, value: string): unknown {
  if (key === 'routes') return value.split(',').map((r) => r.trim());
  if (key === 'rule' || key === 'port') return /^\d+$/.test(value) ? Number(value) : value;
  if (key === 'header') {
    const colon = value.indexOf(':');
    return colon < 0
      ? { name: value }
      : { name: value.slice(0, colon).trim(), value: value.slice(colon + 1).trim() };
  }
  return value;
}

/** Target problems with their paths under `target`, as validate --output json lists them beside the plan's. */
export function underTarget(problems: readonly InputProblem[]): InputProblem[] {
  return problems.map((p) => ({ ...p, path: p.path === '' ? 'target' : `target.${p.path}` }));
}
