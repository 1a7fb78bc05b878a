// Finds Helm 4 for the chart's test the way scripts/helm.sh does (HELM, then a Helm 4 on PATH, then the cache
// outside the repo), and builds it there once when none is found (from the Go module proxy; a few minutes of CPU on
// 2 cores, so only the chart's test pays for it, never the demo). Runs it without a shell.
import { execFile } from 'node:child_process';
import * as path from 'node:path';
import { projectRoot } from '../demo/temporal-bin';

// From the sources and from dist-dev/harness/ alike.
const ROOT = projectRoot();
export const HELM_HINT =
  'run bash scripts/helm.sh (builds Helm 4 from the Go module proxy once, into ~/.cache/temporal-canary/helm) or set HELM to a Helm 4 binary';

/** How long a cold build may take on a loaded 2-core machine. */
export const HELM_BUILD_TIMEOUT_MS = 20 * 60_000;

/** The Helm 4 binary's path, built into the cache first when there is none; throws with what to do. */
export function findHelm(): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      'bash',
      [path.join(ROOT, 'scripts', 'helm.sh')],
      { timeout: HELM_BUILD_TIMEOUT_MS, maxBuffer: 16 * 1024 * 1024 },
      (err, stdout, stderr) => {
        const line = stdout
          .trim()
          .split('\n')
          .reverse()
          .find((l) => l.startsWith('HELM='));
        if (err || !line) {
          reject(
            new Error(`Helm 4 not found: ${stderr.trim() || err?.message || 'no HELM= line'}\n${HELM_HINT}`),
          );
        } else resolve(line.slice('HELM='.length));
      },
    );
  });
}

export interface HelmRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `helm ARGS` to completion (never throws for a non-zero exit). */
export function runHelm(helm: string, args: string[], timeoutMs = 60_000): Promise<HelmRun> {
  return new Promise((resolve) => {
    execFile(helm, args, { timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}
