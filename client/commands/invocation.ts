// How this CLI names itself in the hints it prints, and its version.
import * as fs from 'node:fs';
import * as path from 'node:path';

/**
 * How this CLI was run, as a person should type it again: `canary` from a global install (a bin on PATH),
 * `npx canary` from a project's node_modules/.bin (npx in a clone of this repository too), else
 * `node <script>` (relative to the working directory when inside it), e.g. `node dist/client/cli.js`.
 */
export function cliInvocation(script = process.argv[1] ?? '', cwd = process.cwd()): string {
  if (path.basename(script) === 'canary') {
    return script.split(path.sep).includes('.bin') ? 'npx canary' : 'canary';
  }
  const relative = path.relative(cwd, script);
  const shown =
    relative !== '' && !relative.startsWith('..') && !path.isAbsolute(relative) ? relative : script;
  return `node ${shellWord(shown)}`;
}

/** A word the shell reads back as itself. */
export function shellWord(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replaceAll("'", "'\\''")}'`;
}

/**
 * This package's version, from the nearest package.json above this file: the repo's from the sources and from
 * dist/, the installed package's from node_modules. (Importing package.json would copy it into dist/, where the
 * harnesses' project-root lookup would then stop.)
 */
export function packageVersion(): string {
  for (let dir = __dirname; ; dir = path.dirname(dir)) {
    const file = path.join(dir, 'package.json');
    if (fs.existsSync(file))
      return (JSON.parse(fs.readFileSync(file, 'utf8')) as { version: string }).version;
    if (path.dirname(dir) === dir) return 'unknown';
  }
}
