// What the built CLI and the shared connection module load: the CLI stays light (no Temporal worker, no Kubernetes
// client for commands that do not need them). Runs dist/ (npm run build first; npm test does), each probe in a
// fresh node process that lists every module file it resolved.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';

const root = path.join(__dirname, '..', '..');
const dist = path.join(root, 'dist');
let tmp: string;
let probe: string;

beforeAll(() => {
  if (!fs.existsSync(path.join(dist, 'client', 'cli.js'))) {
    throw new Error(`${dist} is missing: run npm run build first`);
  }
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'canary-graph-'));
  probe = path.join(tmp, 'probe.js');
  // Preloaded: records every file a require resolves (CommonJS, and ES modules loaded through require), and writes
  // the list when the process exits (the CLI ends with process.exit).
  fs.writeFileSync(
    probe,
    `const Module = require('node:module');
const fs = require('node:fs');
const seen = new Set();
const resolve = Module._resolveFilename;
Module._resolveFilename = function (...args) {
  const file = resolve.apply(this, args);
  seen.add(file);
  return file;
};
process.on('exit', () => fs.writeFileSync(process.env.PROBE_OUT, JSON.stringify([...seen, ...Object.keys(require.cache)])));
`,
  );
});

afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** Every module file node resolved running `args` (node options and script), with the exit status. */
function modulesLoaded(
  args: string[],
  env: NodeJS.ProcessEnv = {},
): { files: string[]; status: number | null } {
  const out = path.join(tmp, `modules-${Math.random().toString(36).slice(2)}.json`);
  const r = spawnSync(process.execPath, ['-r', probe, ...args], {
    cwd: root,
    env: { PATH: process.env.PATH, CANARY_IDENTITY: 'tester', PROBE_OUT: out, ...env },
    encoding: 'utf8',
    timeout: 60_000,
  });
  if (!fs.existsSync(out)) throw new Error(`no module list from ${args.join(' ')}: ${r.stderr}`);
  return { files: JSON.parse(fs.readFileSync(out, 'utf8')) as string[], status: r.status };
}

const loads = (files: string[], pkg: string): boolean =>
  files.some((f) => f.includes(`${path.sep}node_modules${path.sep}${pkg}${path.sep}`));

/** A loopback port nothing listens on. */
async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe('the shared Temporal connection module', () => {
  it('loads the Temporal client but not the worker', () => {
    const { files } = modulesLoaded([
      '-e',
      `require(${JSON.stringify(path.join(dist, 'connection', 'temporal.js'))})`,
    ]);
    expect(loads(files, '@temporalio/client')).toBe(true);
    expect(loads(files, '@temporalio/worker')).toBe(false);
  });
});

describe('the built CLI', () => {
  let address: string;
  beforeAll(async () => {
    address = `127.0.0.1:${await closedPort()}`;
  });

  // Every command but backtest talks to Temporal only: none loads a provider, the Kubernetes client least of all.
  it('canary status loads the Temporal client, not the worker, the providers or the Kubernetes client', () => {
    const { files, status } = modulesLoaded(
      [path.join(dist, 'client', 'cli.js'), 'status', 'prod/checkout', '--connect-timeout', '300ms'],
      { TEMPORAL_ADDRESS: address },
    );
    expect(status).toBe(3); // nothing listens there
    expect(loads(files, '@temporalio/client')).toBe(true);
    expect(loads(files, '@temporalio/worker')).toBe(false);
    expect(loads(files, '@kubernetes/client-node')).toBe(false);
    expect(files.filter((f) => f.includes(`${path.sep}activities${path.sep}factory.js`))).toEqual([]);
  });

  // The control: the probe sees the Kubernetes client when a command does load it.
  it('canary backtest loads the providers (Kubernetes client included) once it measures', () => {
    const { files, status } = modulesLoaded(
      [
        path.join(dist, 'client', 'cli.js'),
        ...['backtest', '--plan', 'quick', '--from', '-1h', '--app', 'checkout'],
        ...['--version', '1.0.0', '--stable-version', '0.9.0'],
      ],
      { CANARY_PROMETHEUS_URL: `http://${address}` },
    );
    expect(status).toBe(3); // Prometheus unreachable
    expect(loads(files, '@kubernetes/client-node')).toBe(true);
    expect(loads(files, '@temporalio/worker')).toBe(false);
  });
});
