// Runs the real, built entry points (worker and CLI) as child processes, the way users and CI run them.
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { projectRoot } from '../demo/temporal-bin';

// The project root from the sources (harness/) and from dist-dev/harness/ alike: `..` of the compiled file is
// dist-dev/, which would put the entry points at dist-dev/dist/...
const ROOT = projectRoot();
/** Compiled entry points; `npm test` builds them before jest runs. */
export const WORKER_MAIN = path.join(ROOT, 'dist', 'worker', 'main.js');
export const CLI_MAIN = path.join(ROOT, 'dist', 'client', 'cli.js');

export function requireBuilt(file: string): void {
  if (!fs.existsSync(file)) {
    throw new Error(`${path.relative(ROOT, file)} is missing: run npm run build (npm test does it first)`);
  }
}

export interface WorkerProcess {
  pid: number;
  output(): string;
  /** Kills by pid with the given signal and waits for the process to exit. */
  kill(signal?: NodeJS.Signals): Promise<number | null>;
}

// Jest gives each test file its own `process`, so an exit hook would never fire: tests call killAll() in afterAll.
const live = new Set<ChildProcess>();
export function killAll(): void {
  for (const c of live) c.kill('SIGKILL');
}

/**
 * Starts `node dist/worker/main.js` (or another build's entry point, `main`: see harness/worker-builds.ts) and
 * resolves once it polls its task queue.
 */
export async function startWorkerProcess(
  env: Record<string, string>,
  opts: { main?: string } = {},
): Promise<WorkerProcess> {
  const main = opts.main ?? WORKER_MAIN;
  requireBuilt(main);
  const child = spawn(process.execPath, [main], {
    // The harness's workers run on the demo's local stack wherever a test leaves a provider default unset
    // (CANARY_PROVIDERS=local, the opt-in outside which a worker refuses the local providers as defaults).
    env: { ...process.env, CANARY_PROVIDERS: 'local', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  live.add(child);
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((resolve) =>
    child.on('exit', (code) => {
      live.delete(child);
      resolve(code);
    }),
  );
  await new Promise<void>((resolve, reject) => {
    const deadline = setTimeout(() => reject(new Error(`worker did not start within 60 s:\n${out}`)), 60_000);
    const check = setInterval(() => {
      if (/worker started/i.test(out)) {
        clearTimeout(deadline);
        clearInterval(check);
        resolve();
      }
    }, 50);
    void exited.then((code) => {
      clearTimeout(deadline);
      clearInterval(check);
      reject(new Error(`worker exited with ${code} before starting:\n${out}`));
    });
  });
  return {
    pid: child.pid!,
    output: () => out,
    kill: async (signal = 'SIGTERM') => {
      if (child.exitCode === null && child.signalCode === null) process.kill(child.pid!, signal);
      return exited;
    },
  };
}

export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `canary ARGS` (the built bin) to completion. */
export function runCli(args: string[], env: Record<string, string>, timeoutMs = 120_000): Promise<CliRun> {
  requireBuilt(CLI_MAIN);
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI_MAIN, ...args], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    live.add(child);
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d) => (stdout += d));
    child.stderr!.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`canary ${args.join(' ')} did not finish in ${timeoutMs} ms\n${stdout}\n${stderr}`));
    }, timeoutMs);
    child.on('exit', (code) => {
      live.delete(child);
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Polls until `fn` returns a truthy value or the deadline passes. */
export async function eventually<T>(
  fn: () => Promise<T | undefined | false>,
  timeoutMs = 60_000,
  what = 'condition',
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}
