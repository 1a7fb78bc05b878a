import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import {
  loadAndValidatePlan,
  loadPlan,
  loadTargetFile,
  PlanFileError,
  PlanInvalidError,
  validateLoadedPlan,
} from '../../client/plan-file';
import { validatePlan, type PlanSpec } from '../../workflows/plan';
import { PRESETS } from '../../workflows/presets';

const PRESET_LIST = 'default, progressive, quick, gpu-model';

const YAML_PLAN = `# The plan from the README
name: my-plan
analysis:
  interval: 1m
  failureLimit: 2
  checks:
    - name: error-rate
      metric: error-rate
      max: 1
    - name: p95
      query: 'histogram_quantile(0.95, sum(rate(x[1m])) by (le))'
      max: 500
stages:
  - weight: 5
    hold: 1h
  - weight: 25
    hold: PT20H
    gate: approval
  - weight: 50
    hold: 24h
    gate: {type: approval, timeout: 2h, onTimeout: abort}
  - weight: 100
promotion:
  cleanupDelay: 0s
`;

const JSON_PLAN = {
  name: 'my-plan',
  analysis: {
    interval: '1m',
    failureLimit: 2,
    checks: [
      { name: 'error-rate', metric: 'error-rate', max: 1 },
      { name: 'p95', query: 'histogram_quantile(0.95, sum(rate(x[1m])) by (le))', max: 500 },
    ],
  },
  stages: [
    { weight: 5, hold: '1h' },
    { weight: 25, hold: 'PT20H', gate: 'approval' },
    { weight: 50, hold: '24h', gate: { type: 'approval', timeout: '2h', onTimeout: 'abort' } },
    { weight: 100 },
  ],
  promotion: { cleanupDelay: '0s' },
};

let dir: string;

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'plan-file-'));
});

afterAll(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

function write(name: string, text: string): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, text);
  return file;
}

function errorOf(fn: () => unknown): Error {
  try {
    fn();
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected an error');
}

describe('loadPlan', () => {
  test('returns a preset by name, as a copy', () => {
    const loaded = loadPlan('default');
    expect(loaded).toEqual({ spec: PRESETS.default, source: 'preset "default"' });
    loaded.spec.stages.pop();
    expect(PRESETS.default.stages).toHaveLength(5);
  });

  test('YAML and JSON files give the same spec and the same plan', () => {
    const yaml = loadPlan(write('plan.yaml', YAML_PLAN));
    const yml = loadPlan(write('plan.yml', YAML_PLAN));
    const json = loadPlan(write('plan.json', JSON.stringify(JSON_PLAN, null, 2)));
    expect(yaml.spec).toEqual(JSON_PLAN);
    expect(yml.spec).toEqual(JSON_PLAN);
    expect(json.spec).toEqual(JSON_PLAN);
    expect(json.source).toBe(path.join(dir, 'plan.json'));
    expect(validatePlan(yaml.spec)).toEqual(validatePlan(json.spec));
  });

  test('other extensions are read as YAML, which also covers JSON', () => {
    expect(loadPlan(write('plan.txt', YAML_PLAN)).spec).toEqual(JSON_PLAN);
    expect(loadPlan(write('plan.conf', JSON.stringify(JSON_PLAN))).spec).toEqual(JSON_PLAN);
  });

  test('does not validate', () => {
    expect(loadPlan(write('invalid.yaml', 'stages: []\nextra: 1\n')).spec).toEqual({ stages: [], extra: 1 });
  });

  test('a missing file names the presets as alternatives; a bare word is an unknown preset', () => {
    const error = errorOf(() => loadPlan('fast'));
    expect(error).toBeInstanceOf(PlanFileError);
    expect(error.message).toBe(
      `unknown preset "fast" (and no plan file of that name); presets: ${PRESET_LIST}, or give a plan file (YAML/JSON)`,
    );
    const file = path.join(dir, 'nope.yaml');
    expect(errorOf(() => loadPlan(file)).message).toBe(
      `plan file "${file}" not found; give a plan file or a preset (${PRESET_LIST})`,
    );
  });

  test('a directory is unreadable', () => {
    const error = errorOf(() => loadPlan(dir));
    expect(error).toBeInstanceOf(PlanFileError);
    expect(error.message).toBe(`cannot read plan file "${dir}": it is a directory`);
  });

  test('a YAML syntax error names the line', () => {
    const file = write('broken.yaml', 'stages:\n  - weight: 5\n    hold: 1h\n   gate: approval\n');
    const error = errorOf(() => loadPlan(file));
    expect(error).toBeInstanceOf(PlanFileError);
    expect(error.message).toBe(
      `plan file "${file}" has a YAML syntax error at line 4, column 1: Sequence item without - indicator`,
    );
  });

  test('a JSON syntax error names the line', () => {
    const file = write('broken.json', '{\n  "stages": [\n    {"weight": 5 "hold": "1h"}\n  ]\n}\n');
    expect(errorOf(() => loadPlan(file)).message).toBe(
      `plan file "${file}" is not valid JSON at line 3, column 18: expected ","`,
    );
  });

  test('.json files are JSON: trailing commas and single quotes are refused in JSON terms', () => {
    const trailing = write('trailing.json', '{\n  "stages": [{"weight": 100},]\n}\n');
    expect(errorOf(() => loadPlan(trailing)).message).toBe(
      `plan file "${trailing}" is not valid JSON at line 2, column 30: expected a value (JSON allows no trailing commas)`,
    );
    const quotes = write('quotes.json', "{'stages': []}");
    expect(errorOf(() => loadPlan(quotes)).message).toBe(
      `plan file "${quotes}" is not valid JSON at line 1, column 2: unexpected character (JSON strings and names take double quotes)`,
    );
  });

  test('only regular files of at most 1 MiB are read: no device, no FIFO, no huge file', () => {
    expect(errorOf(() => loadPlan('/dev/zero')).message).toBe(
      'cannot read plan file "/dev/zero": it is not a regular file (a device, FIFO or socket); give a plan file',
    );
    const fifo = path.join(dir, 'plan.fifo');
    execFileSync('mkfifo', [fifo]);
    // Would block forever if it were opened for reading with no writer.
    expect(errorOf(() => loadPlan(fifo)).message).toMatch(/it is not a regular file/);
    const big = write('big.yaml', `# ${'x'.repeat(1024 * 1024)}\nstages: [{weight: 100}]\n`);
    expect(errorOf(() => loadPlan(big)).message).toBe(
      `plan file "${big}" is ${fs.statSync(big).size} bytes; a plan file may have at most 1048576 bytes (1 MiB)`,
    );
  });

  test('a YAML alias bomb is refused with a plain message', () => {
    const levels = Array.from(
      { length: 12 },
      (_, i) =>
        `b${i}: &b${i} [${Array(10)
          .fill(i ? `*b${i - 1}` : '*a')
          .join(', ')}]`,
    );
    const file = write('bomb.yaml', ['a: &a [x, x, x, x, x, x, x, x, x, x]', ...levels].join('\n'));
    expect(errorOf(() => loadPlan(file)).message).toBe(
      `plan file "${file}" uses too many YAML aliases (more than 100 expansions); write the values out instead`,
    );
  });

  test('duplicate keys are refused with the key and where, not silently overridden', () => {
    const file = write('dup.yaml', 'stages:\n  - weight: 5\n    weight: 10\n');
    expect(errorOf(() => loadPlan(file)).message).toBe(
      `plan file "${file}" gives the key weight twice in one mapping at line 3, column 5: YAML keys must be ` +
        'unique; remove or merge one of them',
    );
  });

  test('an empty file', () => {
    const file = write('empty.yaml', '# nothing yet\n');
    expect(errorOf(() => loadPlan(file)).message).toBe(`plan file "${file}" is empty`);
  });
});

describe('loadAndValidatePlan', () => {
  test('returns spec, plan and source', () => {
    const file = write('ok.yaml', YAML_PLAN);
    const loaded = loadAndValidatePlan(file);
    expect(loaded.source).toBe(file);
    expect(loaded.spec).toEqual(JSON_PLAN);
    expect(loaded.plan.stages.map((s) => [s.weight, s.holdMs])).toEqual([
      [5, 3_600_000],
      [25, 72_000_000],
      [50, 86_400_000],
      [100, 0],
    ]);
    expect(loaded.plan.stages[2].gate).toEqual({
      type: 'approval',
      timeoutMs: 7_200_000,
      onTimeout: 'abort',
    });
  });

  test('validates presets', () => {
    expect(loadAndValidatePlan('quick').plan.stages).toHaveLength(4);
  });

  test('an invalid plan lists every problem', () => {
    const file = write('bad.yaml', 'stages:\n  - weight: 5\n    hold: 90\n  - weight: 50\n    holdd: 1h\n');
    const error = errorOf(() => loadAndValidatePlan(file));
    expect(error).toBeInstanceOf(PlanInvalidError);
    const invalid = error as PlanInvalidError;
    expect(invalid.source).toBe(file);
    expect(invalid.problems).toHaveLength(3);
    expect(invalid.message).toBe(
      [
        'plan is invalid (3 problems):',
        '  - stages[0].hold: invalid duration "90": missing unit; use 90s, 15m, 1h30m or ISO-8601 like PT1H30M',
        '  - stages[1].weight: the last stage must have weight 100 (full promotion), got 50',
        '  - stages[1].holdd: unknown field "holdd" (did you mean "hold"?)',
      ].join('\n'),
    );
  });

  test('file errors pass through', () => {
    expect(() => loadAndValidatePlan(path.join(dir, 'missing.yml'))).toThrow(PlanFileError);
  });
});

describe('duplicate keys are refused, in JSON as in YAML', () => {
  test('JSON: the key, where it is repeated and where it first was', () => {
    const file = write(
      'dup.json',
      [
        '{',
        '  "stages": [{ "weight": 5, "hold": "1m", "weight": 10 }],',
        '  "name": "a",',
        '  "name": "b"',
        '}',
      ].join('\n'),
    );
    const error = errorOf(() => loadPlan(file));
    expect(error).toBeInstanceOf(PlanFileError);
    expect(error.message).toBe(
      `plan file "${file}" has the key "weight" twice in one object (at line 2, column 43; first at line 2, ` +
        'column 16): JSON would keep only the last one; remove or merge one of them',
    );
  });

  test('JSON: the same key in different objects is fine', () => {
    const file = write(
      'distinct.json',
      JSON.stringify({ stages: [{ weight: 5, hold: '1m' }, { weight: 100 }], analysis: { checks: [] } }),
    );
    expect(loadPlan(file).spec.stages).toHaveLength(2);
  });

  test('JSON target files too', () => {
    const file = write('dup.target.json', '{"app": "a", "namespace": "x", "app": "b"}');
    const error = errorOf(() => loadTargetFile(file)) as PlanFileError;
    expect(error.what).toBe('target');
    expect(error.message).toBe(
      `target file "${file}" has the key "app" twice in one object (at line 1, column 32; first at line 1, ` +
        'column 2): JSON would keep only the last one; remove or merge one of them',
    );
  });

  test('YAML: deep inside the plan, and in target files', () => {
    const plan = write(
      'deep.yaml',
      'analysis:\n  checks:\n    - name: e\n      metric: error-rate\n      abort: { max: 5, max: 6 }\nstages: [{ weight: 100 }]\n',
    );
    expect(errorOf(() => loadPlan(plan)).message).toBe(
      `plan file "${plan}" gives the key max twice in one mapping at line 5, column 24: YAML keys must be unique; ` +
        'remove or merge one of them',
    );
    const target = write('dup.target.yaml', 'app: a\napp: b\n');
    expect(errorOf(() => loadTargetFile(target)).message).toBe(
      `target file "${target}" gives the key app twice in one mapping at line 2, column 1: YAML keys must be ` +
        'unique; remove or merge one of them',
    );
  });
});

describe('validateLoadedPlan: what cannot work is refused before a rollout starts', () => {
  const NOW = Date.UTC(2026, 2, 2, 10);
  const loaded = (spec: unknown) => ({ spec: spec as PlanSpec, source: 'plan.yaml' });
  const stages = [{ weight: 10, hold: '10m' }, { weight: 100 }];

  test('PromQL that does not parse, with its path and where it breaks', () => {
    const error = errorOf(() =>
      validateLoadedPlan(
        loaded({
          analysis: {
            checks: [
              { name: 'errors', metric: 'error-rate', max: 1 },
              { name: 'ok', query: 'sum(rate(x{version="{{version}}"}[{{window}}]))', max: 1 },
              { name: 'broken', query: 'sum(rate(x{version="{{version}}"}[{{window}}])', max: 1 },
            ],
          },
          stages,
        }),
        { nowMs: NOW },
      ),
    ) as PlanInvalidError;
    expect(error).toBeInstanceOf(PlanInvalidError);
    expect(error.source).toBe('plan.yaml');
    expect(error.problems.map((p) => p.path)).toEqual(['analysis.checks[2].query']);
    expect(error.message).toContain(
      '  - analysis.checks[2].query: is not valid PromQL: at column 47, after "…on="{{version}}"}[{{window}}])": ' +
        'the query ends too early: 1 "(" is never closed (missing ")")',
    );
  });

  test('warnings come back with the plan, and --strict refuses them', () => {
    const spec = { analysis: { checks: [{ name: 'fleet', query: 'sum(up)', max: 1 }] }, stages };
    const ok = validateLoadedPlan(loaded(spec), { nowMs: NOW });
    expect(ok.plan.stages).toHaveLength(2);
    expect(ok.warnings.map((w) => w.path)).toEqual(['analysis.checks[0].query']);
    const error = errorOf(() =>
      validateLoadedPlan(loaded(spec), { nowMs: NOW, strict: true }),
    ) as PlanInvalidError;
    expect(error).toBeInstanceOf(PlanInvalidError);
    expect(error.problems).toHaveLength(1);
    expect(error.problems[0].message).toMatch(/measures the whole fleet .* \(refused by --strict\)$/);
  });

  test('refusals come in document order, with the warnings kept for the JSON report', () => {
    const error = errorOf(() =>
      validateLoadedPlan(
        loaded({
          analysis: {
            checks: [
              { name: 'fleet', query: 'sum(up)', max: 1 },
              { name: 'broken', query: 'sum(up{version="{{version}}"', max: 1 },
            ],
          },
          stages,
          windows: { timeZone: 'UTC', freeze: [{ from: '2026-01-01', to: '2999-01-01' }] },
        }),
        { nowMs: NOW },
      ),
    ) as PlanInvalidError;
    expect(error.problems.map((p) => p.path)).toEqual(['analysis.checks[1].query', 'windows']);
    expect(error.warnings.map((p) => p.path)).toEqual(['analysis.checks[0].query']);
  });

  test('the same through loadAndValidatePlan, for files and presets', () => {
    const file = write(
      'never.yaml',
      'stages: [{ weight: 10, hold: 10m }, { weight: 100 }]\nwindows: { timeZone: UTC, freeze: [{ from: 2026-01-01, to: 2999-01-01 }] }\n',
    );
    expect(() => loadAndValidatePlan(file, { nowMs: NOW })).toThrow(PlanInvalidError);
    expect(loadAndValidatePlan('default', { nowMs: NOW, strict: true }).warnings).toEqual([]);
  });
});
