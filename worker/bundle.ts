// The workflow code a Worker runs: a bundle prebuilt by `npm run build` (dist/workflow-bundle.js) when running
// compiled code, else the workflows' sources, bundled by the Worker at start (dev and tests under jest).
// Run as a script (`node dist/worker/bundle.js`), it writes that prebuilt bundle.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { bundleWorkflowCode, type BundleOptions } from '@temporalio/worker';

export type WorkflowSource =
  | { workflowBundle: { codePath: string } }
  | { workflowsPath: string; bundlerOptions?: { preloadModules?: string[] } };

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

/** How the workflow code is bundled: by the build, and by the tests' workers. */
export function workflowBundleOptions(): BundleOptions {
  return {
    workflowsPath: workflowsPath(),
    preloadModules: ['zod', ...SHARED_WORKFLOW_MODULES.map((m) => require.resolve(`../workflows/${m}`))],
  };
}

export function workflowSource(): WorkflowSource {
  // Only compiled code (this file is .js) uses the prebuilt bundle: from the TS sources it would be stale.
  const compiled = path.extname(__filename) === '.js';
  if (compiled && fs.existsSync(WORKFLOW_BUNDLE_PATH))
    return { workflowBundle: { codePath: WORKFLOW_BUNDLE_PATH } };
  const { workflowsPath: from, preloadModules } = workflowBundleOptions();
  return { workflowsPath: from, bundlerOptions: { preloadModules } };
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
