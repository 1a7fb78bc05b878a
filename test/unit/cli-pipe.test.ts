// `canary --help | head`: a reader that closes the pipe early ends the built CLI quietly, with its usual exit code.
// Runs dist/client/cli.js (npm run build first; npm test does).
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

const root = path.join(__dirname, '..', '..');
const cli = path.join(root, 'dist', 'client', 'cli.js');

beforeAll(() => {
  if (!fs.existsSync(cli)) throw new Error(`${cli} is missing: run npm run build first`);
});

/** Runs the CLI with one of its output pipes closed before it writes; returns its exit code and the other stream. */
function withClosed(
  closed: 'stdout' | 'stderr',
  args: string[],
): Promise<{ code: number | null; signal: NodeJS.Signals | null; other: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cli, ...args], {
      cwd: root,
      env: { PATH: process.env.PATH, CANARY_IDENTITY: 'tester' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child[closed].destroy();
    let other = '';
    child[closed === 'stdout' ? 'stderr' : 'stdout'].on('data', (d: Buffer) => (other += d.toString()));
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, other }));
  });
}

describe('a closed output pipe ends the CLI quietly', () => {
  it('--help with stdout closed: exit 0, no EPIPE stack trace', async () => {
    const r = await withClosed('stdout', ['--help']);
    expect(r).toEqual({ code: 0, signal: null, other: '' });
  });

  it('a refused command with stderr closed keeps its exit code 2', async () => {
    const r = await withClosed('stderr', ['deploy']);
    expect(r).toEqual({ code: 2, signal: null, other: '' });
  });

  it('canary --help | head -1 through a shell prints one line and exits 0', () => {
    const r = spawnSync(
      'bash',
      ['-c', `"${process.execPath}" "${cli}" --help | head -1; echo "status=\${PIPESTATUS[0]}" >&2`],
      { cwd: root, encoding: 'utf8', env: { PATH: process.env.PATH } },
    );
    expect(r.stdout).toBe('Usage: canary [options] [command]\n');
    // (A login environment may add its own noise to stderr: look for ours only.)
    expect(r.stderr).toMatch(/^status=0$/m);
    expect(r.stderr).not.toMatch(/EPIPE|Error|\n\s+at /);
  });
});
