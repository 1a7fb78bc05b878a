// The servers an example runs on, started once and shared by every example run on them: a Temporal dev server (with
// its Web UI for the demo), a kube-apiserver with the Istio, Gateway API and SMI CRDs (no kubelet: each run starts a
// Deployment simulator for its namespace), a Prometheus that scrapes whatever exporters the runs register, and one
// worker process (the built `dist/worker/main.js`, as users run it) pointed at both. Everything is real but the pods.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { KubeConfig } from '@kubernetes/client-node';
import { kubeClients, type KubeClients } from '../../activities/kube/client';
import { RolloutClient } from '../../client/index';
import { loadWorkerConfig } from '../../worker/config';
import { startDevServer, type DevServer } from '../dev-server';
import { startKubeServer, type KubeServer } from '../../harness/kube';
import { startPrometheus, type PrometheusServer } from '../../harness/prometheus';
import { CLI_MAIN, requireBuilt, startWorkerProcess, type WorkerProcess } from '../../harness/processes';

export interface ExampleStackOptions {
  /** Temporal gRPC port (default: a free one). */
  port?: number;
  /** Serve the Temporal Web UI on this port (default: none, unless `ui`). */
  uiPort?: number;
  ui?: boolean;
  /** The worker's task queue (default: one of this process's own). */
  taskQueue?: string;
  /** Told what starts, as it starts. */
  say?: (line: string) => void;
}

export interface ExampleStack {
  temporal: DevServer;
  kube: KubeServer;
  prometheus: PrometheusServer;
  worker: WorkerProcess;
  admin: KubeClients;
  adminConfig: KubeConfig;
  client: RolloutClient;
  taskQueue: string;
  /** The worker's alert log (JSON lines): runs narrate their rollout's alerts from it. */
  alertLog: string;
  /** The environment the CLI needs to reach this stack's Temporal and worker. */
  cliEnv: Record<string, string>;
  /** How printed commands spell the CLI, with the environment it needs when that is not the default. */
  cli: string;
  /** The Web UI, when served. */
  uiUrl?: string;
  /** A folder of the stack's own (removed by stop): runs write the plans they run there. */
  workDir: string;
  /** Stops the worker, then the servers; removes the temp folder. */
  stop(): Promise<void>;
}

/** The CLI as a user in this repository runs it. */
export const CLI_COMMAND = 'node dist/client/cli.js';
const DEFAULT_ADDRESS = '127.0.0.1:7233';

/**
 * Variables of the calling shell that would point the worker somewhere else (another cluster, another Prometheus,
 * real alert sinks): empty counts as unset.
 */
const CLEARED_ENV = [
  'CANARY_KUBECONFIG',
  'CANARY_KUBE_CONTEXT',
  'CANARY_ROUTER',
  'CANARY_WORKLOADS',
  'CANARY_METRICS',
  'CANARY_LOCAL_CONTROL_URL',
  'CANARY_PROMETHEUS_USERNAME',
  'CANARY_PROMETHEUS_PASSWORD',
  'CANARY_PROMETHEUS_PASSWORD_FILE',
  'CANARY_PROMETHEUS_BEARER_TOKEN',
  'CANARY_PROMETHEUS_CA_FILE',
  'CANARY_ALERT_WEBHOOK_URL',
  'CANARY_ALERT_SLACK_URL',
  'CANARY_ALERTMANAGER_URL',
  'CANARY_PAGERDUTY_ROUTING_KEY',
];

export async function startExampleStack(opts: ExampleStackOptions = {}): Promise<ExampleStack> {
  const say = opts.say ?? (() => undefined);
  requireBuilt(CLI_MAIN);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'canary-examples-'));
  const stops: Array<() => Promise<unknown>> = [];
  const stopAll = async () => {
    for (const stop of stops.reverse()) await stop().catch(() => undefined);
    fs.rmSync(dir, { recursive: true, force: true });
  };
  try {
    const t0 = Date.now();
    const ui = opts.ui ?? opts.uiPort !== undefined;
    const started = await Promise.allSettled([
      startDevServer({
        ...(opts.port ? { port: opts.port } : {}),
        ui,
        ...(opts.uiPort ? { uiPort: opts.uiPort } : {}),
      }),
      startKubeServer(),
      startPrometheus({ targets: [], discovery: true }),
    ]);
    for (const s of started) if (s.status === 'fulfilled') stops.push(() => s.value.stop());
    const failed = started.flatMap((s) =>
      s.status === 'rejected' ? [String((s.reason as Error)?.message ?? s.reason)] : [],
    );
    if (failed.length > 0) throw new Error(failed.join('\n'));
    const [temporal, kube, prometheus] = started.map((s) => (s as PromiseFulfilledResult<unknown>).value) as [
      DevServer,
      KubeServer,
      PrometheusServer,
    ];
    say(
      `  Temporal dev server ${temporal.address}${temporal.uiUrl ? ` (Web UI ${temporal.uiUrl})` : ''}, kube-apiserver ` +
        `${kube.version} at ${kube.url}, Prometheus ${prometheus.url}: up in ${((Date.now() - t0) / 1000).toFixed(1)}s`,
    );

    const taskQueue = opts.taskQueue ?? `canary-examples-${process.pid}`;
    const alertLog = path.join(dir, 'alerts.jsonl');
    const temporalEnv = {
      TEMPORAL_ADDRESS: temporal.address,
      TEMPORAL_NAMESPACE: temporal.namespace,
      TEMPORAL_TASK_QUEUE: taskQueue,
    };
    const worker = await startWorkerProcess({
      ...Object.fromEntries(CLEARED_ENV.map((v) => [v, ''])),
      ...temporalEnv,
      KUBECONFIG: kube.kubeconfigFile('admin'),
      CANARY_PROMETHEUS_URL: prometheus.url,
      CANARY_ALERT_LOG: alertLog,
      ...(temporal.uiUrl ? { CANARY_TEMPORAL_UI_URL: temporal.uiUrl } : {}),
    });
    stops.push(() => worker.kill('SIGTERM'));
    say(
      `  worker: pid ${worker.pid}, task queue ${taskQueue}, kubeconfig of the local API server, Prometheus ${prometheus.url}`,
    );

    const client = await RolloutClient.connect(loadWorkerConfig(temporalEnv));
    stops.push(() => client.close());
    const adminConfig = kube.kubeConfig('admin');
    const needsEnv = temporal.address !== DEFAULT_ADDRESS || taskQueue !== 'canary-rollouts';
    const cli = needsEnv
      ? `TEMPORAL_ADDRESS=${temporal.address} TEMPORAL_TASK_QUEUE=${taskQueue} ${CLI_COMMAND}`
      : CLI_COMMAND;
    return {
      temporal,
      kube,
      prometheus,
      worker,
      admin: kubeClients(adminConfig),
      adminConfig,
      client,
      taskQueue,
      alertLog,
      cliEnv: { ...temporalEnv, CANARY_IDENTITY: 'canary-demo', GITHUB_ACTOR: '' },
      cli,
      ...(temporal.uiUrl ? { uiUrl: temporal.uiUrl } : {}),
      workDir: dir,
      stop: stopAll,
    };
  } catch (err) {
    await stopAll();
    throw err;
  }
}
