// Hooks in a plan (`hooks:`): validation, what `canary validate` says, and bad input through the CLI (exit 2).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { EXIT_BAD_INPUT, EXIT_OK, main } from '../../client/cli';
import { describePlan, formatProblems, validatePlan } from '../../workflows/plan';
import { allHooks } from '../../workflows/plan-hooks';

let tmp: string;
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'canary-hooks-'));
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

async function cli(argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await main(argv, {
    stdout: { write: (s: string) => (stdout += s) },
    stderr: { write: (s: string) => (stderr += s) },
    env: { PATH: process.env.PATH, CANARY_IDENTITY: 'tester' },
    connect: async () => {
      throw new Error('validate must not connect');
    },
  });
  return { code, stdout, stderr };
}

const STAGES = 'stages:\n  - weight: 10\n    hold: 1m\n  - weight: 100\n';

function planFile(name: string, hooks: string): string {
  const file = path.join(tmp, name);
  fs.writeFileSync(file, `${STAGES}hooks:\n${hooks}`);
  return file;
}

const GOOD = `  before:
    - name: smoke
      http: { url: "https://hooks.example.com/smoke", timeout: 10s, retries: 1 }
  afterStage:
    - name: migrate-check
      job:
        template: { spec: { containers: [{ name: check, image: "busybox:1.36", command: [sh, -c, "exit 0"] }] } }
        ttl: 10m
      onFailure: approval
  beforePromotion:
    - name: confirm
      http: { url: "http://127.0.0.1:9999/confirm" }
      confirm: { interval: 30s, limit: 10 }
  onRollback:
    - name: page
      http: { url: "https://hooks.example.com/rollback", method: put }
`;

describe('plan hooks: validation', () => {
  it('normalises every point, with the default onFailure per point', () => {
    const r = validatePlan({
      stages: [{ weight: 10, hold: '1m' }, { weight: 100 }],
      hooks: {
        before: [{ name: 'smoke', http: { url: 'https://x.example/s' } }],
        afterStage: [{ name: 'n', http: { url: 'https://x.example/n' } }],
        onRollback: [{ name: 'r', http: { url: 'https://x.example/r' } }],
      },
    });
    if (!r.ok) throw new Error(formatProblems(r.problems));
    expect(allHooks(r.plan.hooks).map((h) => [h.point, h.name, h.onFailure])).toEqual([
      ['before', 'smoke', 'abort'],
      ['afterStage', 'n', 'warn'],
      ['onRollback', 'r', 'warn'],
    ]);
    expect(r.plan.hooks?.before?.[0].action).toEqual({
      kind: 'http',
      url: 'https://x.example/s',
      method: 'POST',
      timeoutMs: 30_000,
      retries: 2,
    });
    expect(describePlan(r.plan)).toBe('10% 1m → 100%; hooks: before smoke, afterStage n, onRollback r');
  });

  it('a plan without hooks describes and normalises as before', () => {
    const r = validatePlan({ stages: [{ weight: 10, hold: '1m' }, { weight: 100 }] });
    expect(r.ok && r.plan.hooks).toBe(undefined);
    expect(r.ok && describePlan(r.plan)).toBe('10% 1m → 100%');
  });

  it('hooks are refused for rollouts started before them (non-strict plans)', () => {
    const r = validatePlan(
      { stages: [{ weight: 100 }], hooks: { before: [{ name: 'a', http: { url: 'https://x' } }] } },
      { strict: false },
    );
    expect(r.ok).toBe(false);
    expect(!r.ok && r.problems).toEqual([
      { path: 'hooks', message: 'is not available for this rollout (started before it existed)' },
    ]);
  });

  it('names the path of every problem', () => {
    const r = validatePlan({
      stages: [{ weight: 100 }],
      hooks: {
        befor: [],
        before: [
          { name: 'a', http: { url: 'ftp://x/y' } },
          { name: 'b', job: { template: { spec: { containers: [] } } } },
          { name: 'c', http: { url: 'https://x/y', timeout: '5q' } },
          { name: 'd' },
          { name: 'e', http: { url: 'https://x' }, onFailure: 'ignore' },
        ],
        onRollback: [{ name: 'f', http: { url: 'https://x' }, onFailure: 'abort' }],
      },
    });
    expect(r.ok).toBe(false);
    const lines = !r.ok ? r.problems.map((p) => `${p.path}: ${p.message}`) : [];
    expect(lines).toEqual([
      'hooks.befor: unknown field "befor" (did you mean "before"?)',
      'hooks.before[0].http.url: must be an http(s) URL (the scheme is "ftp"), got "ftp://x/y"',
      'hooks.before[1].job.template.spec.containers: must list at least one container (name and image), got an empty list',
      'hooks.before[2].http.timeout: invalid duration "5q": unknown unit "q" (use ms, s, m, h, d or w); use 90s, 15m, 1h30m or ISO-8601 like PT1H30M',
      'hooks.before[3]: must say what to run: http ({ url }) or job ({ template } or { configMapRef })',
      'hooks.before[4].onFailure: must be abort, warn or approval, got "ignore"',
      'hooks.onRollback[0].onFailure: must be warn for onRollback hooks: nothing may block or skip a rollback',
    ]);
  });
});

describe('canary validate: hooks', () => {
  it('shows the hooks of a valid plan', async () => {
    const r = await cli(['validate', '--plan', planFile('good.yaml', GOOD)]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(EXIT_OK);
    expect(r.stdout).toContain(
      'hooks: before smoke, afterStage migrate-check, beforePromotion confirm, onRollback page',
    );
    expect(r.stdout).toContain(
      '  hook before: smoke (http POST https://hooks.example.com/smoke, on failure abort)\n' +
        '  hook afterStage: migrate-check (job template, on failure approval)\n' +
        '  hook beforePromotion: confirm (http POST http://127.0.0.1:9999/confirm, on failure abort, confirm every 30s up to 10 times)\n' +
        '  hook onRollback: page (http PUT https://hooks.example.com/rollback, on failure warn)\n',
    );
  });

  it.each([
    [
      'a hook URL that is not http(s)',
      '  before:\n    - name: smoke\n      http: { url: "file:///etc/passwd" }\n',
      'hooks.before[0].http.url: must be an http(s) URL (the scheme is "file")',
    ],
    [
      'a Job template with no containers',
      '  afterStage:\n    - name: check\n      job: { template: { spec: { containers: [] } } }\n',
      'hooks.afterStage[0].job.template.spec.containers: must list at least one container',
    ],
    [
      'an unknown point',
      '  beforeStages:\n    - name: check\n      http: { url: "https://x" }\n',
      'hooks.beforeStages: unknown field "beforeStages" (did you mean "beforeStage"?)',
    ],
    [
      'a bad duration',
      '  before:\n    - name: smoke\n      http: { url: "https://x" }\n      confirm: { interval: soon, limit: 3 }\n',
      'hooks.before[0].confirm.interval:',
    ],
  ])('%s: exit 2, naming the path', async (_what, hooks, message) => {
    const r = await cli(['validate', '--plan', planFile('bad.yaml', hooks)]);
    expect(r.code).toBe(EXIT_BAD_INPUT);
    expect(r.stderr).toContain(message);
  });
});
