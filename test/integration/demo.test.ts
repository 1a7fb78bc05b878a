// `npm run demo` end to end: the built demo as a child process, on free ports, with short holds.
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { freePort } from '../../demo/dev-server';

const ROOT = path.resolve(__dirname, '..', '..');
const DEMO = path.join(ROOT, 'dist-dev', 'scripts', 'demo.js');
const RUN_TIMEOUT_MS = 110_000;

interface DemoRun {
  code: number | null;
  output: string;
  ports: { port: number; uiPort: number; proxyPort: number; controlPort: number };
}

const live = new Set<ChildProcess>();

async function runDemo(extra: string[]): Promise<DemoRun> {
  if (!fs.existsSync(DEMO)) throw new Error(`${path.relative(ROOT, DEMO)} is missing: run npm run build:dev`);
  const ports = {
    port: await freePort(),
    uiPort: await freePort(),
    proxyPort: await freePort(),
    controlPort: await freePort(),
  };
  const args = [
    DEMO,
    '--exit',
    ...['--port', String(ports.port), '--ui-port', String(ports.uiPort)],
    ...['--proxy-port', String(ports.proxyPort), '--control-port', String(ports.controlPort)],
    // Short holds (hidden flags): one or two analyses per stage instead of four.
    ...['--hold', '5s', '--cleanup-delay', '1s'],
    ...extra,
  ];
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    live.add(child);
    let output = '';
    child.stdout!.on('data', (d) => (output += d));
    child.stderr!.on('data', (d) => (output += d));
    const timer = setTimeout(() => {
      // SIGINT lets the demo stop its servers.
      child.kill('SIGINT');
      reject(new Error(`the demo did not finish within ${RUN_TIMEOUT_MS} ms:\n${output}`));
    }, RUN_TIMEOUT_MS);
    child.on('exit', (code) => {
      live.delete(child);
      clearTimeout(timer);
      resolve({ code, output, ports });
    });
  });
}

function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host: '127.0.0.1' });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** The exit code, with the demo's output in the failure message. */
function expectExit(run: DemoRun, code: number): void {
  if (run.code !== code)
    throw new Error(`the demo exited with ${run.code}, expected ${code}:\n${run.output}`);
}

afterAll(() => {
  for (const child of live) child.kill('SIGKILL');
});

test('a healthy v2 is promoted: exit 0, the UI link and the outcome are printed, everything is stopped', async () => {
  const run = await runDemo([]);
  expectExit(run, 0);
  expect(run.output).toContain(
    `http://localhost:${run.ports.uiPort}/namespaces/default/workflows/canary.demo.shop`,
  );
  expect(run.output).toContain(`TEMPORAL_ADDRESS=127.0.0.1:${run.ports.port} node dist/client/cli.js status`);
  expect(run.output).toMatch(/stage 2\/4: canary at 25%/);
  expect(run.output).toMatch(/Outcome: promoted/);
  for (const p of Object.values(run.ports)) expect(await listening(p)).toBe(false);
}, 120_000);

test('--faulty v2 is rolled back by the analysis: exit 1', async () => {
  const run = await runDemo(['--faulty']);
  expectExit(run, 1);
  expect(run.output).toMatch(/rolled back/);
  expect(run.output).toMatch(/Phase\s+rolled_back/);
  expect(run.output).toMatch(/error-rate=[\d.]+ FAIL/);
  for (const p of Object.values(run.ports)) expect(await listening(p)).toBe(false);
}, 120_000);

test('bad flags exit 2 without starting anything', async () => {
  if (!fs.existsSync(DEMO)) throw new Error(`${path.relative(ROOT, DEMO)} is missing: run npm run build:dev`);
  const child = spawn(process.execPath, [DEMO, '--error-rate', '150'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  expect(code).toBe(2);
  expect(stderr).toContain('--error-rate takes a percent from 0 to 100');
});

test('ports in use are named, and the printed advice, pasted as printed, runs the demo: exit 3, then 0', async () => {
  if (!fs.existsSync(DEMO)) throw new Error(`${path.relative(ROOT, DEMO)} is missing: run npm run build:dev`);
  // The demo's gRPC port and the UI port it derives (+1000) are both taken.
  const blockers: net.Server[] = [];
  let grpc = 0;
  for (;;) {
    grpc = await freePort();
    if (grpc + 1000 > 65535) continue;
    const both = await Promise.all([grpc, grpc + 1000].map((p) => listen(p)));
    if (both.every((b) => b)) {
      blockers.push(...(both as net.Server[]));
      break;
    }
    for (const b of both) if (b) await new Promise((r) => b.close(r));
  }
  try {
    const args = [
      '--exit',
      ...['--port', String(grpc)],
      ...['--proxy-port', String(await freePort()), '--control-port', String(await freePort())],
      ...['--hold', '5s', '--cleanup-delay', '1s'],
    ];
    const refused = await run(args);
    expect(refused.code).toBe(3);
    expect(refused.output).toContain(`port ${grpc} (Temporal gRPC) is already in use`);
    expect(refused.output).toContain(`port ${grpc + 1000} (Temporal Web UI) is already in use`);
    const advice = /^ {4}npm run demo -- (.+)$/m.exec(refused.output);
    if (!advice) throw new Error(`no advice printed:\n${refused.output}`);
    const advised = advice[1].split(' ');
    // `npm run demo --` builds first, then runs exactly this.
    const followed = await run(advised);
    if (followed.code !== 0) throw new Error(`the advised demo exited ${followed.code}:\n${followed.output}`);
    expect(followed.output).toMatch(/Outcome: promoted/);
  } finally {
    for (const b of blockers) await new Promise((r) => b.close(r));
  }
}, 180_000);

function listen(port: number): Promise<net.Server | undefined> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(undefined));
    server.listen(port, '127.0.0.1', () => resolve(server));
  });
}

function run(args: string[]): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [DEMO, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    live.add(child);
    let output = '';
    child.stdout!.on('data', (d) => (output += d));
    child.stderr!.on('data', (d) => (output += d));
    const timer = setTimeout(() => child.kill('SIGINT'), RUN_TIMEOUT_MS);
    child.on('exit', (code) => {
      live.delete(child);
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}
