// The README's layout section is the map a newcomer reads first: it must name every top-level folder the repository
// tracks, and every folder and file it names must exist where it says.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

const ROOT = path.join(__dirname, '..', '..');
const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
const section = /### Layout\n\n```\n([\s\S]*?)\n```/.exec(readme)?.[1];

/** The layout's entries: a top-level folder and the text that describes it (continuation lines included). */
function entries(): Map<string, string> {
  const out = new Map<string, string>();
  let current: string | undefined;
  for (const line of (section ?? '').split('\n')) {
    const m = /^([a-z][\w-]*)\/\s+(.*)$/.exec(line);
    if (m) {
      current = m[1];
      out.set(current, m[2]);
    } else if (current && /^\s+\S/.test(line)) {
      out.set(current, `${out.get(current)} ${line.trim()}`);
    }
  }
  return out;
}

/** Every path under `dir` (relative to it), files and folders. */
function walk(dir: string, prefix = ''): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((d) => {
    const rel = prefix ? `${prefix}/${d.name}` : d.name;
    return d.isDirectory() ? [`${rel}/`, ...walk(path.join(dir, d.name), rel)] : [rel];
  });
}

test('the README has a layout section', () => {
  expect(section).toBeDefined();
});

test('it names every top-level folder the repository tracks, and no other', () => {
  const tracked = new Set(
    execFileSync('git', ['ls-files'], { cwd: ROOT, encoding: 'utf8' })
      .split('\n')
      .filter((f) => f.includes('/') && !f.startsWith('.'))
      .map((f) => f.split('/')[0]),
  );
  expect([...entries().keys()].sort()).toEqual([...tracked].sort());
});

test('every file and folder it names exists in the folder it describes', () => {
  const missing: string[] = [];
  for (const [top, text] of entries()) {
    const present = walk(path.join(ROOT, top));
    // File names (x.ts, x.md, x.yaml) and sub-folders (name/) the description mentions.
    const named = text.match(/[\w.-]+\.(?:ts|md|ya?ml|json)\b|\b[a-z][\w-]*\//g) ?? [];
    // Build outputs (dist/, dist-dev/) are named, not tracked.
    for (const name of named.filter((n) => !/^dist(-dev)?\/$/.test(n))) {
      const found = present.some((p) => p === name || p.endsWith(`/${name}`));
      if (!found) missing.push(`${top}/: ${name}`);
    }
  }
  expect(missing).toEqual([]);
});
