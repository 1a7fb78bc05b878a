// Another build of the worker, as a deploy of a new release beside the running one makes it: a copy of the built
// dist/ whose prebuilt workflow bundle comes from another workflows module. Run it with
// startWorkerProcess(env, { main }) (Worker Versioning tests run two builds side by side).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { bundleWorkflowCode } from '@temporalio/worker';
import { projectRoot } from '../demo/temporal-bin';
import { WORKER_MAIN, requireBuilt } from './processes';

export interface WorkerBuild {
  /** The copy's worker entry point (`DIR/dist/worker/main.js`). */
  main: string;
  /** Its prebuilt workflow bundle. */
  bundle: string;
}

/**
 * Copies dist/ into `dir` and replaces its workflow bundle with one built from `workflowsPath` (a module exporting
 * the workflow functions, as workflows/index.ts does). The copy finds the project's node_modules through a link.
 */
export async function prepareWorkerBuild(opts: { dir: string; workflowsPath: string }): Promise<WorkerBuild> {
  requireBuilt(WORKER_MAIN);
  const root = projectRoot();
  const dist = path.join(opts.dir, 'dist');
  fs.mkdirSync(opts.dir, { recursive: true });
  fs.cpSync(path.join(root, 'dist'), dist, { recursive: true });
  const modules = path.join(opts.dir, 'node_modules');
  if (!fs.existsSync(modules)) fs.symlinkSync(path.join(root, 'node_modules'), modules, 'dir');
  const bundle = path.join(dist, 'workflow-bundle.js');
  const { code } = await bundleWorkflowCode({ workflowsPath: opts.workflowsPath });
  fs.writeFileSync(bundle, code);
  return { main: path.join(dist, 'worker', 'main.js'), bundle };
}
