// What every server harness shares: servers must not outlive the process that started them, however it ends.
// Jest gives each test file a copy of `process` whose 'exit' listeners never fire, and a jest worker may be
// SIGKILLed, so an exit handler is not enough: a small watchdog process holds a pipe from this one, and this one
// writes it each pid it starts. When the pipe closes (this process is gone) it stops them, last started first:
// SIGTERM, SIGKILL after the grace period; then it removes the server's temp dir, if any.
import { spawn, type ChildProcess } from 'node:child_process';
import type * as net from 'node:net';

const WATCHDOG_SCRIPT = `
const grace = Number(process.argv[1]);
const dir = process.argv[2];
const pids = [];
let buf = '';
const alive = (pid) => { try { process.kill(pid, 0); return true; } catch { return false; } };
const kill = (pid, sig) => { try { process.kill(pid, sig); } catch {} };
const stopOne = (pid) => new Promise((resolve) => {
  kill(pid, 'SIGTERM');
  const started = Date.now();
  const t = setInterval(() => {
    if (!alive(pid)) { clearInterval(t); resolve(); }
    else if (Date.now() - started > grace) { kill(pid, 'SIGKILL'); clearInterval(t); setTimeout(resolve, 200); }
  }, 100);
});
process.stdin.on('data', (d) => {
  buf += d;
  const lines = buf.split('\\n');
  buf = lines.pop();
  for (const l of lines) if (Number(l) > 0) pids.push(Number(l));
});
process.stdin.on('end', async () => {
  for (const pid of pids.reverse()) await stopOne(pid);
  if (dir) { try { require('fs').rmSync(dir, { recursive: true, force: true }); } catch {} }
  process.exit(0);
});
process.stdin.resume();
`;

export interface Watchdog {
  /** Stop this pid too when this process is gone. */
  watch(pid: number): void;
  /** The servers were stopped normally: the watchdog has nothing left to do. */
  dismiss(): void;
}

export function startWatchdog(opts: { graceMs: number; dir?: string }): Watchdog {
  const watchdog = spawn(process.execPath, ['-e', WATCHDOG_SCRIPT, String(opts.graceMs), opts.dir ?? ''], {
    stdio: ['pipe', 'ignore', 'ignore'],
  });
  watchdog.on('error', () => undefined);
  watchdog.stdin?.on('error', () => undefined);
  // Neither the watchdog nor its pipe may keep this process alive.
  watchdog.unref();
  (watchdog.stdin as unknown as net.Socket | null)?.unref();
  return {
    watch: (pid) => void watchdog.stdin?.write(`${pid}\n`),
    dismiss: () => void watchdog.kill('SIGKILL'),
  };
}

/** Sends a signal to a process that may already be gone. */
export function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // Already gone.
  }
}

/** Keeps the last `chars` characters of a child's stdout and stderr, for failure messages. */
export function collectTail(child: ChildProcess, chars = 8_000, empty = ''): () => string {
  let tail = '';
  const append = (chunk: Buffer): void => {
    tail = (tail + chunk.toString('utf8')).slice(-chars);
  };
  child.stdout?.on('data', append);
  child.stderr?.on('data', append);
  return () => tail.trim() || empty;
}
