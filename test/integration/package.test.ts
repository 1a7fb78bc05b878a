// The installable package: `npm pack` of the built tree, installed with `npm install -g` into a temporary prefix
// (dependencies from the npm cache or registry), then its own bins, run by their shebangs: `canary --version`, and a
// short rollout driven by the installed `canary-worker` and `canary` against the dev server, on the local stack.
// The package holds the compiled worker, CLI and client library only: no tests, no harness, no dev scripts.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { startDevServer, type DevServer } from '../../demo/dev-server';
import { startLocalStack, type LocalStack } from '../../demo/stack';
import { startTrafficGenerator, type TrafficGenerator } from '../../demo/traffic-generator';
import { CLI_MAIN, WORKER_MAIN, requireBuilt } from '../../harness/processes';

const ROOT = path.resolve(__dirname, '..', '..');
const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as {
  name: string;
  version: string;
  private?: boolean;
  bin: Record<string, string>;
  scripts: Record<string, string>;
};
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'canary-package-'));
const prefix = path.join(dir, 'prefix');
const bin = (name: string) => path.join(prefix, 'bin', name);

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(
  cmd: string,
  args: string[],
  opts: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
) {
  return new Promise<Run>((resolve) => {
    execFile(
      cmd,
      args,
      {
        cwd: opts.cwd ?? dir,
        env: opts.env ?? process.env,
        timeout: opts.timeoutMs ?? 120_000,
        maxBuffer: 32 * 1024 * 1024,
      },
      (err, stdout, stderr) =>
        resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr }),
    );
  });
}

let files: string[] = [];
let tarball: string;
let installMs = 0;
let server: DevServer | undefined;
let stack: LocalStack | undefined;
let traffic: TrafficGenerator | undefined;
let worker: ChildProcess | undefined;

/**
 * A copy of the source tree (node_modules linked, no builds, caches or tools), where `npm pack` may build: its prepack
 * empties and rebuilds dist/, which other test files running at the same time use from the repository.
 */
function sourceCopy(): string {
  const copy = path.join(dir, 'source');
  const skip = new Set(['node_modules', 'dist', 'dist-dev', '.tools', '.git', 'coverage', '.cache']);
  fs.cpSync(ROOT, copy, {
    recursive: true,
    filter: (src) => {
      const rel = path.relative(ROOT, src);
      return !skip.has(rel.split(path.sep)[0]) && !rel.endsWith('.tgz');
    },
  });
  fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(copy, 'node_modules'), 'dir');
  return copy;
}

// The README's install step, run as printed: `npm pack` (its prepack builds dist/ again), `npm install -g` of the
// tarball and `canary --version`, with npm's global prefix (npm_config_prefix) a temporary folder and its bin first
// on PATH. Dependencies come from npm's cache where it has them (CI's `npm ci` filled it), else from the registry.
// It runs in a copy of the source tree, so the repository's own dist/ stays as the other test files use it.
beforeAll(async () => {
  requireBuilt(WORKER_MAIN);
  requireBuilt(CLI_MAIN);
  const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const from = readme.indexOf('### Installing the package');
  expect(from).toBeGreaterThan(0);
  const block = /```sh\n([\s\S]*?)```/.exec(readme.slice(from))![1];
  const commands = block
    .split('\n')
    .map((l) => l.replace(/\s+#.*$/, '').trim())
    .filter(Boolean);
  const source = sourceCopy();
  tarball = path.join(source, `${pkg.name}-${pkg.version}.tgz`);
  expect(commands).toEqual(['npm pack', `npm install -g ./${path.basename(tarball)}`, 'canary --version']);
  const started = Date.now();
  const r = await run('bash', ['-euo', 'pipefail', '-c', block], {
    cwd: source,
    env: {
      ...process.env,
      npm_config_prefix: prefix,
      npm_config_prefer_offline: 'true',
      npm_config_audit: 'false',
      npm_config_fund: 'false',
      PATH: `${path.join(prefix, 'bin')}${path.delimiter}${process.env.PATH}`,
    },
    timeoutMs: 300_000,
  });
  installMs = Date.now() - started;
  try {
    if (r.code !== 0)
      throw new Error(`the README's install step failed (${r.code}):\n${r.stdout}\n${r.stderr}`);
    // The last command's answer: the installed canary's version.
    expect(r.stdout.trimEnd().split('\n').pop()).toBe(pkg.version);
    const listed = await run('tar', ['-tzf', tarball]);
    files = listed.stdout
      .split('\n')
      .filter(Boolean)
      .map((f) => f.replace(/^package\//, ''));
    const packedBytes = fs.statSync(tarball).size;
    const du = await run('du', ['-sk', path.join(prefix, 'lib', 'node_modules', pkg.name)]);
    console.log(
      `package ${path.basename(tarball)}: ${(packedBytes / 1024 / 1024).toFixed(2)} MiB, ${files.length} files; ` +
        `installed with its dependencies ${(Number(du.stdout.split('\t')[0]) / 1024).toFixed(0)} MiB; ` +
        `pack (with its build) and install ${(installMs / 1000).toFixed(1)} s`,
    );
  } finally {
    fs.rmSync(tarball, { force: true });
  }
}, 360_000);

afterAll(async () => {
  if (worker && worker.exitCode === null) worker.kill('SIGKILL');
  await traffic?.stop();
  await stack?.close();
  await server?.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

test('package.json: publishable, both bins, a prepack build', () => {
  expect(pkg.private).toBeUndefined();
  expect(pkg.bin).toEqual({ canary: 'dist/client/cli.js', 'canary-worker': 'dist/worker/main.js' });
  expect(pkg.scripts.prepack).toBe('npm run build');
  for (const main of [WORKER_MAIN, CLI_MAIN]) {
    expect(fs.readFileSync(main, 'utf8').startsWith('#!/usr/bin/env node\n')).toBe(true);
  }
});

test('the tarball holds the compiled product only: no tests, harness, dev scripts or sources', () => {
  expect(files).toEqual(
    expect.arrayContaining([
      'package.json',
      'README.md',
      'dist/worker/main.js',
      'dist/client/cli.js',
      'dist/client/index.d.ts',
      'dist/workflow-bundle.js',
    ]),
  );
  const stray = files.filter(
    (f) =>
      !(f === 'package.json' || f === 'README.md' || f.startsWith('dist/')) ||
      /(^|\/)(test|harness|scripts|dist-dev)\//.test(f) ||
      /\.(ts|map)$/.test(f.replace(/\.d\.ts$/, '')),
  );
  expect(stray).toEqual([]);
});

test('the installed canary says its version', async () => {
  const r = await run(bin('canary'), ['--version']);
  expect(r).toEqual({ code: 0, stdout: `${pkg.version}\n`, stderr: '' });
});

test('the installed canary-worker and canary drive a rollout to promotion against the dev server', async () => {
  server = await startDevServer({ ui: false });
  stack = await startLocalStack({ stableVersion: 'v1' });
  traffic = startTrafficGenerator({ url: stack.proxyUrl, rps: 50 });
  const plan = path.join(dir, 'plan.yaml');
  fs.writeFileSync(
    plan,
    `analysis:
  interval: 10s
  checks:
    - { name: error-rate, metric: error-rate, max: 5 }
stages:
  - { weight: 20, hold: 1s }
  - { weight: 100 }
promotion: { cleanupDelay: 0s }
`,
  );
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: dir,
    TEMPORAL_ADDRESS: server.address,
    TEMPORAL_TASK_QUEUE: 'package-test',
    CANARY_PROVIDERS: 'local',
    CANARY_LOCAL_CONTROL_URL: stack.controlUrl,
    CANARY_ALERT_LOG: path.join(dir, 'alerts.jsonl'),
    CANARY_IDENTITY: 'ci-bot',
  };
  worker = spawn(bin('canary-worker'), [], { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  worker.stdout!.on('data', (d) => (out += d));
  worker.stderr!.on('data', (d) => (out += d));
  const deadline = Date.now() + 60_000;
  while (!/canary worker started/.test(out)) {
    if (worker.exitCode !== null || Date.now() > deadline) {
      throw new Error(`the installed canary-worker did not start (exit ${worker.exitCode}):\n${out}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  // It runs the installed package's prebuilt workflow bundle, not sources bundled at start.
  expect(out).not.toContain('Workflow bundle created');

  const r = await run(
    bin('canary'),
    [
      'start',
      '--app',
      'pkg',
      '--namespace',
      'it',
      '--version',
      'v2',
      '--plan',
      plan,
      '--wait',
      '--output',
      'json',
    ],
    { env, timeoutMs: 120_000 },
  );
  expect([r.code, r.stderr]).toEqual([0, '']);
  expect(JSON.parse(r.stdout)).toMatchObject({ phase: 'promoted', app: 'pkg', version: 'v2' });
  expect(await fetch(`${stack.controlUrl}/state`).then((x) => x.json())).toMatchObject({
    stable: { version: 'v2' },
  });

  worker.kill('SIGTERM');
  const code = await new Promise<number | null>((resolve) =>
    worker!.exitCode !== null ? resolve(worker!.exitCode) : worker!.once('exit', (c) => resolve(c)),
  );
  expect([code, out]).toEqual([0, expect.stringContaining('canary worker stopped')]);
}, 180_000);
