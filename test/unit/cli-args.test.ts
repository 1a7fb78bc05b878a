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
