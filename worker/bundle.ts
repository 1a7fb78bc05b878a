// The workflow code a Worker runs: a bundle prebuilt by `npm run build` (dist/workflow-bundle.js) when running
// compiled code, else the workflows' sources, bundled by the Worker at start (dev and tests under jest).
// Run as a script (`node dist/worker/bundle.js`), it writes that prebuilt bundle.
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { bundleWorkflowCode, type BundleOptions, type Logger } from '@temporalio/worker';

export type WorkflowSource = { workflowBundle: { codePath: string } | { code: string } };

/** dist/workflow-bundle.js, beside the compiled folders. */
export const WORKFLOW_BUNDLE_PATH = path.resolve(__dirname, '..', 'workflow-bundle.js');

export function workflowsPath(): string {
  return require.resolve('../workflows');
}

/**
 * Workflow modules a worker loads once and shares between every rollout it runs (the SDK's `preloadModules`): the
 * validation of plans, targets and checks, with their zod schemas and what they import. Without this each cached
 * rollout built its own copy of every schema: half its CPU at start and most of its memory (`npm run bench:scale`).
 * The SDK deep-freezes shared modules, so these must keep no per-rollout state and export no zod schema (a frozen
 * schema cannot parse); test/unit/shared-modules.test.ts holds them to that.
 */
export const SHARED_WORKFLOW_MODULES = [
  'plan',
  'target',
  'analysis-spec',
  'analysis-fields',
  'analysis-web',
  'approval-policy',
  'plan-hooks',
  'problems',
  'windows-spec',
] as const;

/**
 * `CANARY_WORKFLOW_STACK_TRACES=full` when the bundle is built keeps the SDK's default: every promise a rollout
 * creates records where it was created, for the Web UI's Stack Trace tab. By default workflows/stack-limit.ts turns
 * that capture off: it cost a quarter of the worker's CPU per analysis round with 1,000 rollouts (`npm run bench:scale`).
 */
export function fullStackTraces(): boolean {
  return process.env.CANARY_WORKFLOW_STACK_TRACES === 'full';
}

/** How the workflow code is bundled: by the build, and by the tests' workers. */
export function workflowBundleOptions(): BundleOptions {
  return {
    workflowsPath: workflowsPath(),
    preloadModules: [
      ...(fullStackTraces() ? [] : [require.resolve('../workflows/stack-limit')]),
      'zod',
      ...SHARED_WORKFLOW_MODULES.map((m) => require.resolve(`../workflows/${m}`)),
    ],
  };
}

export async function workflowSource(): Promise<WorkflowSource> {
  // Only compiled code (this file is .js) uses the prebuilt bundle: from the TS sources it would be stale.
  const compiled = path.extname(__filename) === '.js';
  if (compiled && fs.existsSync(WORKFLOW_BUNDLE_PATH))
    return { workflowBundle: { codePath: WORKFLOW_BUNDLE_PATH } };
  return { workflowBundle: { code: await sourceBundle() } };
}

/** Where bundles built from the sources are kept, outside the repo, by content: `TEMPORAL_CANARY_CACHE` or ~/.cache. */
function bundleCacheDir(): string {
  const root = process.env.TEMPORAL_CANARY_CACHE ?? path.join(os.homedir(), '.cache', 'temporal-canary');
  return path.join(root, 'workflow-bundles');
}

/** Everything a bundle is made of: the workflows' sources (they import nothing outside workflows/), this file's
 * options, and the installed packages. */
function sourceKey(): string {
  const hash = createHash('sha256');
  const root = path.dirname(workflowsPath());
  const files = (fs.readdirSync(root, { recursive: true }) as string[])
    .filter((f) => /\.[cm]?[jt]s$/.test(f))
    .sort();
  for (const f of files)
    hash
      .update(`${f}\0`)
      .update(fs.readFileSync(path.join(root, f)))
      .update('\0');
  hash.update(fs.readFileSync(__filename));
  if (fullStackTraces()) hash.update('\0stack-traces:full');
  const lock = path.resolve(root, '..', 'package-lock.json');
  if (fs.existsSync(lock)) hash.update(fs.readFileSync(lock));
  return hash.digest('hex').slice(0, 32);
}

const quiet: Logger = {
  log: () => undefined,
  trace: () => undefined,
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: (m: string) => console.error(m),
};

let pending: Promise<string> | undefined;

/**
 * The workflow bundle built from the sources (tests and `ts` dev runs). Bundling takes 10-20 s, and every test file
 * that runs a worker needs one, so it is kept on disk by the sources' content and built again only when they change.
 */
export function sourceBundle(): Promise<string> {
  pending ??= (async () => {
    const file = path.join(bundleCacheDir(), `${sourceKey()}.js`);
    try {
      return await fs.promises.readFile(file, 'utf8');
    } catch {
      // Not built yet for these sources.
    }
    const { code } = await bundleWorkflowCode({ ...workflowBundleOptions(), logger: quiet });
    await fs.promises.mkdir(path.dirname(file), { recursive: true });
    const tmp = `${file}.${process.pid}.tmp`;
    await fs.promises.writeFile(tmp, code);
    await fs.promises.rename(tmp, file);
    await pruneBundles(path.dirname(file), 8);
    return code;
  })();
  return pending;
}

/** Keeps the newest `keep` bundles. */
async function pruneBundles(dir: string, keep: number): Promise<void> {
  const entries = await Promise.all(
    (await fs.promises.readdir(dir))
      .filter((f) => f.endsWith('.js'))
      .map(async (f) => ({ f, t: (await fs.promises.stat(path.join(dir, f))).mtimeMs })),
  );
  entries.sort((a, b) => b.t - a.t);
  for (const { f } of entries.slice(keep)) await fs.promises.rm(path.join(dir, f), { force: true });
}

export async function buildWorkflowBundle(outFile: string = WORKFLOW_BUNDLE_PATH): Promise<string> {
  const { code } = await bundleWorkflowCode(workflowBundleOptions());
  await fs.promises.mkdir(path.dirname(outFile), { recursive: true });
  // Written beside, then renamed: a worker starting meanwhile never reads half a bundle.
  const tmp = `${outFile}.${process.pid}.tmp`;
  await fs.promises.writeFile(tmp, code);
  await fs.promises.rename(tmp, outFile);
  return outFile;
}

if (require.main === module) {
  buildWorkflowBundle().then(
    (file) => console.log(`workflow bundle written to ${path.relative(process.cwd(), file)}`),
    (err: unknown) => {
      console.error(`cannot build the workflow bundle: ${err instanceof Error ? err.message : String(err)}`);
      process.exit(1);
    },
  );
}
