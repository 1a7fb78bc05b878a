// The CLI's handling of bad input and of an unreachable Temporal, in-process (no server needed).
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  EXIT_BAD_INPUT,
  EXIT_INFRASTRUCTURE,
  EXIT_OK,
  cliInvocation,
  main,
  versionFromImage,
  wantsValidateJson,
  type CliOptions,
} from '../../client/cli';
import { validatePlan } from '../../workflows/plan';

interface Captured {
  code: number;
  stdout: string;
  stderr: string;
  connects: number;
}

let closedPort: number;
let tmp: string;

/** A loopback port nothing listens on: bound once to get a free number, then closed. */
async function findClosedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

beforeAll(async () => {
  closedPort = await findClosedPort();
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'canary-cli-'));
});

afterAll(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

function env(): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH,
    TEMPORAL_ADDRESS: `127.0.0.1:${closedPort}`,
    TEMPORAL_NAMESPACE: 'default',
    // Keep the failing connection attempt short.
    CANARY_CONNECT_TIMEOUT: '2s',
    CANARY_IDENTITY: 'tester',
  };
}

/** Runs main with captured output; `spyConnect` records whether a connection was attempted. */
async function run(argv: string[], options: { spyConnect?: boolean } = {}): Promise<Captured> {
  let stdout = '';
  let stderr = '';
  let connects = 0;
  const cli: CliOptions = {
    stdout: { write: (s: string) => (stdout += s) },
    stderr: { write: (s: string) => (stderr += s) },
    env: env(),
  };
  if (options.spyConnect) {
    cli.connect = async () => {
      connects++;
      throw new Error('connect must not be called');
    };
  }
  const code = await main(argv, cli);
  return { code, stdout, stderr, connects };
}

function writePlan(name: string, text: string): string {
  const file = path.join(tmp, name);
  fs.writeFileSync(file, text);
  return file;
}

describe('canary CLI: bad input exits 2', () => {
  it('unknown flag', async () => {
    const r = await run(['start', '--app', 'checkout', '--version', '1.0.0', '--bogus'], {
      spyConnect: true,
    });
    expect(r.code).toBe(EXIT_BAD_INPUT);
    expect(r.stderr).toMatch(/unknown option '--bogus'/);
    expect(r.connects).toBe(0);
  });

  it('unknown command', async () => {
    const r = await run(['deploy'], { spyConnect: true });
    expect(r.code).toBe(EXIT_BAD_INPUT);
    expect(r.stderr).toMatch(/unknown command 'deploy'/);
  });

  it('missing --app', async () => {
    const r = await run(['start', '--version', '1.0.0'], { spyConnect: true });
    expect(r.code).toBe(EXIT_BAD_INPUT);
    expect(r.stderr).toContain('target is invalid (1 problem):');
    expect(r.stderr).toContain(
      '  - target.app: is required: the application to roll out (or give workload.name)',
    );
    expect(r.connects).toBe(0);
  });

  it('canary --version prints the package version; start --version still names the version to roll out', async () => {
    const r = await run(['--version'], { spyConnect: true });
    expect(r.code).toBe(EXIT_OK);
    expect(r.stdout.trim()).toBe(
      JSON.parse(fs.readFileSync(path.join(__dirname, '../../package.json'), 'utf8')).version,
    );
    expect(r.connects).toBe(0);
  });

  it('neither --version nor --image', async () => {
    const r = await run(['start', '--app', 'checkout'], { spyConnect: true });
    expect(r.code).toBe(EXIT_BAD_INPUT);
    expect(r.stderr).toContain('start needs --version or --image');
  });

  it('a version that could not be a label value or image tag is refused before anything starts', async () => {
    const shell = await run(['start', '--app', 'checkout', '--version', '1.0;rm -rf /'], {
      spyConnect: true,
    });
    expect(shell.code).toBe(EXIT_BAD_INPUT);
    expect(shell.stderr).toContain(
      'version "1.0;rm -rf /" may only hold letters, digits, "-", "_" and ".", starting and ending with a letter or digit',
    );
    expect(shell.connects).toBe(0);
    const newline = await run(['start', '--app', 'checkout', '--version', 'v1\nv2'], { spyConnect: true });
    expect(newline.code).toBe(EXIT_BAD_INPUT);
    const long = await run(['start', '--app', 'checkout', '--version', 'v'.repeat(5000)], {
      spyConnect: true,
    });
    expect(long.code).toBe(EXIT_BAD_INPUT);
    expect(long.stderr).toContain(
      'version must be at most 63 characters (it becomes a Kubernetes label value), got 5000',
    );
    expect(long.connects).toBe(0);
  });

  it('an image without a tag', async () => {
    const r = await run(['start', '--app', 'checkout', '--image', 'registry:5000/checkout'], {
      spyConnect: true,
    });
    expect(r.code).toBe(EXIT_BAD_INPUT);
    expect(r.stderr).toContain('cannot derive a version from image "registry:5000/checkout"');
  });

  it('abort without --reason', async () => {
    const r = await run(['abort', 'prod/checkout'], { spyConnect: true });
    expect(r.code).toBe(EXIT_BAD_INPUT);
    expect(r.stderr).toMatch(/required option '--reason <text>' not specified/);
  });

  it('a malformed rollout id, a bad --stage, a bad --phase, a bad --interval', async () => {
    for (const argv of [
      ['status', 'prod/'],
      ['approve', 'prod/checkout', '--stage', 'two'],
      ['list', '--phase', 'sleeping'],
      ['status', 'prod/checkout', '--watch', '--interval', 'soon'],
      ['status', 'prod/checkout', '--output', 'yaml'],
    ]) {
      const r = await run(argv, { spyConnect: true });
      expect({ argv, code: r.code }).toEqual({ argv, code: EXIT_BAD_INPUT });
      expect(r.stderr).toMatch(/error/);
      expect(r.connects).toBe(0);
    }
  });

  it('a missing plan file, naming the file and the presets', async () => {
    const r = await run([
      'start',
      '--app',
      'checkout',
      '--version',
      '1.0.0',
      '--plan',
      path.join(tmp, 'nope.yaml'),
    ]);
    expect(r.code).toBe(EXIT_BAD_INPUT);
    expect(r.stderr).toContain('nope.yaml');
    expect(r.stderr).toContain('not found');
  });

  it('an invalid plan: every problem on stderr, and Temporal is never contacted', async () => {
    const spec = {
      stages: [
        { weight: 150, hold: '10m' },
        { weight: 20, hold: 'soon' },
        { weight: 50, hold: '5m', gate: { type: 'approval', timeout: '1h' } },
      ],
      analysis: { interval: '-1m', checks: [{ name: 'errors', metric: 'error-percentage', max: 1 }] },
    };
    const file = writePlan('bad.json', JSON.stringify(spec));
    const validation = validatePlan(spec);
    if (validation.ok) throw new Error('the test plan must be invalid');
    expect(validation.problems.length).toBeGreaterThanOrEqual(3);

    const r = await run(['start', '--app', 'checkout', '--version', '1.0.0', '--plan', file]);
    // 3 would mean a connection to the closed port was attempted.
    expect(r.code).toBe(EXIT_BAD_INPUT);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain(file);
    for (const p of validation.problems) expect(r.stderr).toContain(p.message);

    const spied = await run(['start', '--app', 'checkout', '--version', '1.0.0', '--plan', file], {
      spyConnect: true,
    });
    expect(spied.code).toBe(EXIT_BAD_INPUT);
    expect(spied.connects).toBe(0);
  });

  it('a plan file with a syntax error', async () => {
    const file = writePlan('broken.yaml', 'stages:\n  - weight: 10\n    hold: [5m\n');
    const r = await run(['start', '--app', 'checkout', '--version', '1.0.0', '--plan', file]);
    expect(r.code).toBe(EXIT_BAD_INPUT);
    expect(r.stderr).toContain('syntax error');
  });
});

describe('canary CLI: help', () => {
  it('--help exits 0', async () => {
    const r = await run(['start', '--help'], { spyConnect: true });
    expect(r.code).toBe(EXIT_OK);
    expect(r.stdout).toContain('--plan <file|preset>');
  });
});

describe('canary CLI: unreachable Temporal exits 3', () => {
  it('names the address', async () => {
    const started = Date.now();
    const r = await run(['start', '--app', 'checkout', '--version', '1.0.0', '--plan', 'default']);
    expect(r.code).toBe(EXIT_INFRASTRUCTURE);
    expect(r.stderr).toContain(`127.0.0.1:${closedPort}`);
    expect(Date.now() - started).toBeLessThan(30_000);
  }, 60_000);

  it('--address overrides TEMPORAL_ADDRESS', async () => {
    const other = await findClosedPort();
    const r = await run(['status', 'prod/checkout', '--address', `127.0.0.1:${other}`]);
    expect(r.code).toBe(EXIT_INFRASTRUCTURE);
    expect(r.stderr).toContain(`127.0.0.1:${other}`);
  }, 60_000);
});

describe('versionFromImage', () => {
  it('takes the tag, or a short digest', () => {
    expect(versionFromImage('registry.example.com:5000/team/checkout:1.4.2')).toBe('1.4.2');
    expect(versionFromImage('checkout:1.4.2@sha256:' + 'a'.repeat(64))).toBe('1.4.2');
    expect(versionFromImage('checkout@sha256:0123456789abcdef' + '0'.repeat(48))).toBe('sha256-0123456789ab');
    expect(() => versionFromImage('registry:5000/checkout')).toThrow(/no tag/);
  });
});

describe('cliInvocation: hints spell the CLI as it can be typed again', () => {
  it('a global install, a project bin run through npx, and the script in a clone', () => {
    expect(cliInvocation('/usr/local/bin/canary', '/home/me')).toBe('canary');
    expect(cliInvocation('/home/me/app/node_modules/.bin/canary', '/home/me/app')).toBe('npx canary');
    expect(cliInvocation('/work/repo/dist/client/cli.js', '/work/repo')).toBe('node dist/client/cli.js');
    expect(cliInvocation('/work/repo/dist/client/cli.js', '/tmp')).toBe('node /work/repo/dist/client/cli.js');
    expect(cliInvocation("/work/it's here/dist/client/cli.js", '/tmp')).toBe(
      "node '/work/it'\\''s here/dist/client/cli.js'",
    );
  });
});

describe('canary validate --output json: every refusal is a document on stdout, exit 2', () => {
  interface Report {
    valid: boolean;
    problems: Array<{ path: string; message: string }>;
    warnings: Array<{ path: string; message: string }>;
  }
  async function refused(argv: string[]): Promise<Report & { stderr: string }> {
    const r = await run(argv, { spyConnect: true });
    expect({ argv, code: r.code, connects: r.connects }).toEqual({ argv, code: EXIT_BAD_INPUT, connects: 0 });
    const doc = JSON.parse(r.stdout) as Report;
    expect(doc.valid).toBe(false);
    expect(doc.problems.length).toBeGreaterThan(0);
    for (const p of doc.problems) expect(p.message).not.toBe('');
    expect(Array.isArray(doc.warnings)).toBe(true);
    return { ...doc, stderr: r.stderr };
  }

  it('an unknown preset and a missing plan file', async () => {
    expect((await refused(['validate', '--plan', 'fastest', '--output', 'json'])).problems).toEqual([
      {
        path: '',
        message:
          'unknown preset "fastest" (and no plan file of that name); presets: default, progressive, quick, gpu-model, or give a plan file (YAML/JSON)',
      },
    ]);
    const missing = path.join(tmp, 'missing.yaml');
    expect((await refused(['validate', '--plan', missing, '--output=json'])).problems[0].message).toBe(
      `plan file "${missing}" not found; give a plan file or a preset (default, progressive, quick, gpu-model)`,
    );
  });

  it('a target file that is missing, or repeats a key', async () => {
    const missing = path.join(tmp, 'nowhere.target.yaml');
    expect(
      (await refused(['validate', '--plan', 'default', '--target', missing, '--output', 'json'])).problems,
    ).toEqual([{ path: 'target', message: `target file "${missing}" not found; give a target file` }]);
    const dup = writePlan('dup.target.json', '{"app": "a", "app": "b"}');
    const doc = await refused(['validate', '--plan', 'default', '--target', dup, '--output', 'json']);
    expect(doc.problems[0].path).toBe('target');
    expect(doc.problems[0].message).toContain('has the key "app" twice in one object');
  });

  it("commander's own refusals: an unknown flag, a missing --plan, a bad --router", async () => {
    const bogus = await refused(['validate', '--plan', 'default', '--bogus', '--output', 'json']);
    expect(bogus.problems).toEqual([{ path: '', message: "unknown option '--bogus'" }]);
    expect((await refused(['validate', '--output', 'json'])).problems).toEqual([
      { path: '', message: "required option '--plan <file|preset>' not specified" },
    ]);
    expect(
      (
        await refused([
          '--as',
          'x',
          'validate',
          '--plan',
          'default',
          '--router',
          'haproxy',
          '--output',
          'json',
        ])
      ).problems[0].message,
    ).toMatch(/^option '--router <type>' argument 'haproxy' is invalid/);
  });

  it('usage errors: an empty --router-opt routes=', async () => {
    const doc = await refused([
      'validate',
      '--plan',
      'default',
      '--app',
      'checkout',
      '--router',
      'istio',
      '--router-opt',
      'routes=',
      '--output',
      'json',
    ]);
    expect(doc.problems).toEqual([
      {
        path: '',
        message:
          '--router-opt routes= names no route; name the routes to shift (routes=primary,secondary), or leave ' +
          '--router-opt routes out to shift every HTTP route',
      },
    ]);
  });

  it('the new offline refusals: PromQL syntax and windows that never open', async () => {
    const file = writePlan(
      'never.yaml',
      [
        'analysis:',
        '  checks:',
        '    - { name: fleet, query: "sum(up)", max: 1 }',
        '    - { name: p95, query: "sum(rate(x{version=\\"{{version}}\\"}[{{window}}])", max: 1 }',
        'stages: [{ weight: 10, hold: 10m }, { weight: 100 }]',
        'windows: { timeZone: UTC, freeze: [{ from: 2026-01-01, to: 2999-12-31 }] }',
      ].join('\n'),
    );
    const doc = await refused(['validate', '--plan', file, '--output', 'json']);
    expect(doc.problems.map((p) => p.path)).toEqual(['analysis.checks[1].query', 'windows']);
    expect(doc.problems[0].message).toMatch(/^is not valid PromQL: at column 47, /);
    expect(doc.problems[1].message).toMatch(/^the deployment windows do not open within the next 400 days/);
    expect(doc.warnings.map((p) => p.path)).toEqual(['analysis.checks[0].query']);
    expect(doc.stderr).toBe('');
  });
});

describe('warnings, and --strict on validate, start and backtest', () => {
  let fleet: string;
  beforeAll(() => {
    fleet = writePlan(
      'fleet.yaml',
      [
        'analysis:',
        '  checks: [{ name: fleet, query: "sum(rate(http_requests_total[{{window}}]))", max: 100 }]',
        'stages: [{ weight: 10, hold: 10m }, { weight: 100 }]',
      ].join('\n'),
    );
  });
  const warning =
    'analysis.checks[0].query: uses none of {{side}}, {{version}}, {{workload}}, {{service}} or {{selector}}, so ' +
    'it measures the whole fleet';

  it('validate warns on stderr and passes; JSON lists the warning; --strict refuses', async () => {
    const text = await run(['validate', '--plan', fleet], { spyConnect: true });
    expect(text.code).toBe(EXIT_OK);
    expect(text.stderr).toContain(`canary: warning: ${fleet}: ${warning}`);
    expect(text.stdout).toContain('is valid');

    const asJson = await run(['validate', '--plan', fleet, '--output', 'json'], { spyConnect: true });
    expect(asJson.code).toBe(EXIT_OK);
    expect(asJson.stderr).toBe('');
    const doc = JSON.parse(asJson.stdout) as { valid: boolean; warnings: Array<{ path: string }> };
    expect(doc.valid).toBe(true);
    expect(doc.warnings.map((w) => w.path)).toEqual(['analysis.checks[0].query']);

    const strict = await run(['validate', '--plan', fleet, '--strict'], { spyConnect: true });
    expect(strict.code).toBe(EXIT_BAD_INPUT);
    expect(strict.stderr).toContain(`canary: error: ${fleet}: plan is invalid (1 problem):\n  - ${warning}`);
    expect(strict.stderr).toContain('(refused by --strict)');
    const strictJson = await run(['validate', '--plan', fleet, '--strict', '--output', 'json']);
    expect(strictJson.code).toBe(EXIT_BAD_INPUT);
    expect((JSON.parse(strictJson.stdout) as { valid: boolean }).valid).toBe(false);
    expect((await run(['validate', '--plan', 'default', '--strict'])).code).toBe(EXIT_OK);
  });

  it('start warns and goes on, or with --strict refuses before contacting Temporal', async () => {
    const argv = ['start', '--app', 'checkout', '--version', '1.0.0', '--plan', fleet];
    const warned = await run(argv, { spyConnect: true });
    expect(warned.stderr).toContain(`canary: warning: ${fleet}: ${warning}`);
    expect(warned.connects).toBe(1);
    const strict = await run([...argv, '--strict'], { spyConnect: true });
    expect(strict.code).toBe(EXIT_BAD_INPUT);
    expect(strict.connects).toBe(0);
    expect(strict.stderr).toContain('(refused by --strict)');
  });

  it('start refuses PromQL that does not parse before contacting Temporal', async () => {
    const file = writePlan(
      'broken-query.yaml',
      [
        'analysis:',
        '  checks: [{ name: p, query: "sum(rate(x{version=\\"{{version}}\\"}[{{window}}])", max: 1 }]',
        'stages: [{ weight: 10, hold: 10m }, { weight: 100 }]',
      ].join('\n'),
    );
    const r = await run(['start', '--app', 'checkout', '--version', '1.0.0', '--plan', file], {
      spyConnect: true,
    });
    expect(r.code).toBe(EXIT_BAD_INPUT);
    expect(r.connects).toBe(0);
    expect(r.stderr).toContain('  - analysis.checks[0].query: is not valid PromQL: at column 47');
  });

  it("start refuses a check the target's metrics provider cannot measure before contacting Temporal", async () => {
    const file = writePlan(
      'local-query.yaml',
      [
        'analysis:',
        '  checks: [{ name: gpu, query: "sum(gpu_memory_errors_total)", max: 0 }]',
        'stages: [{ weight: 10, hold: 10m }, { weight: 100 }]',
        'target: { app: checkout, metrics: { local: {} } }',
      ].join('\n'),
    );
    const r = await run(['start', '--version', '1.0.0', '--plan', file], { spyConnect: true });
    expect(r.code).toBe(EXIT_BAD_INPUT);
    expect(r.connects).toBe(0);
    expect(r.stderr).toContain('canary: error: plan: plan is invalid (1 problem):');
    expect(r.stderr).toContain(
      '  - analysis.checks[0].query: the local metrics provider (target.metrics.local) reads named metrics only',
    );
  });

  it('backtest: --strict refuses the warning, an impossible --from is refused', async () => {
    const base = ['backtest', '--app', 'checkout', '--plan', fleet, '--from', '-1h'];
    const strict = await run([...base, '--strict'], { spyConnect: true });
    expect(strict.code).toBe(EXIT_BAD_INPUT);
    expect(strict.stderr).toContain('(refused by --strict)');
    const impossible = await run(
      ['backtest', '--app', 'checkout', '--plan', 'default', '--from', '2025-02-30T00:00:00Z'],
      { spyConnect: true },
    );
    expect(impossible.code).toBe(EXIT_BAD_INPUT);
    expect(impossible.stderr).toContain(
      'canary: error: --from: "2025-02-30T00:00:00Z" is not a real time: February 2025 has 28 days, so there is no day 30',
    );
  });
});

describe('small CLI defects (issue 21)', () => {
  it('--router-opt routes= (or any empty value) is refused on start, not read as "every route"', async () => {
    for (const [opt, message] of [
      ['routes=', '--router-opt routes= names no route'],
      ['routes= ', '--router-opt routes= names no route'],
      [
        'virtualService=',
        "--router-opt virtualService= has no value; give virtualService=VALUE, or leave it out for the router's default",
      ],
    ]) {
      const r = await run(
        ['start', '--app', 'checkout', '--version', '1.0.0', '--router', 'istio', '--router-opt', opt],
        { spyConnect: true },
      );
      expect({ opt, code: r.code, connects: r.connects }).toEqual({ opt, code: EXIT_BAD_INPUT, connects: 0 });
      expect(r.stderr).toContain(`canary: error: ${message}`);
    }
  });

  it('an empty or blank --as is refused on every command that records who acts', async () => {
    const commands = [
      ['start', '--app', 'checkout', '--version', '1.0.0'],
      ['approve', 'prod/checkout'],
      ['abort', 'prod/checkout', '--reason', 'why'],
      ['pause', 'prod/checkout'],
      ['resume', 'prod/checkout'],
      ['promote', 'prod/checkout'],
    ];
    for (const command of commands) {
      for (const as of [['--as', ''], ['--as', '   '], ['--as=']]) {
        const argv = [...as, ...command];
        const r = await run(argv, { spyConnect: true });
        expect({ argv, code: r.code, connects: r.connects }).toEqual({
          argv,
          code: EXIT_BAD_INPUT,
          connects: 0,
        });
        expect(r.stderr).toMatch(/^canary: error: --as is (empty|blank): give the name to act as/);
      }
    }
  });

  it('wantsValidateJson finds validate --output json behind global options', () => {
    expect(wantsValidateJson(['validate', '--plan', 'x', '--output', 'json'])).toBe(true);
    expect(wantsValidateJson(['--as', 'validate', 'status', '--output', 'json'])).toBe(false);
    expect(wantsValidateJson(['--address', 'h:1', 'validate', '--output=json'])).toBe(true);
    expect(wantsValidateJson(['validate', '--output', 'text'])).toBe(false);
    expect(wantsValidateJson(['start', '--output', 'json'])).toBe(false);
  });
});
