// The CanaryRollout controller's latency, printed as figures (not a test): `npm run bench:controller [-- --runs N]`.
// On a real local kube-apiserver and Temporal dev server, with an in-process worker and controller and the
// Deployment simulator (no kubelet), NGINX router: for each run, a CanaryRollout is created and the time until the
// live canary Ingress carries its first weight is measured (the controller's start, the workflow's preflight, the
// canary Deployment made available, the shift). Runs are sequential, each on its own app.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Worker } from '@temporalio/worker';
import { parse } from 'yaml';
import { providersFromEnv } from '../activities/factory';
import { kubeClients } from '../activities/kube/client';
import { createActivities } from '../activities/rollout-activities';
import { RolloutClient } from '../client/rollout-client';
import { GROUP, PLURAL, VERSION } from '../controller/crd';
import { startController } from '../controller/main';
import { startDevServer } from '../demo/dev-server';
import { projectRoot } from '../demo/temporal-bin';
import { startKubeServer } from '../harness/kube';
import { startDeploymentSimulator } from '../harness/kube-controller';
import { createRolloutFixture } from '../harness/kube-rollout';
import { workflowBundle } from '../harness/rollout-env';
import { NO_METRICS_SINKS } from '../worker/worker';

const NS = 'bench';

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

async function main(): Promise<void> {
  const runsArg = process.argv.indexOf('--runs');
  const runs = runsArg >= 0 ? Number(process.argv[runsArg + 1]) : 10;
  const [server, kube] = await Promise.all([startDevServer(), startKubeServer({ crds: 'none' })]);
  const kc = kube.kubeConfig('admin');
  const admin = kubeClients(kc);
  const stops: Array<() => Promise<unknown>> = [];
  try {
    const crd = parse(
      fs.readFileSync(path.join(projectRoot(), 'deploy', 'crds', 'canaryrollouts.yaml'), 'utf8'),
    ) as object;
    await admin.custom.createClusterCustomObject({
      group: 'apiextensions.k8s.io',
      version: 'v1',
      plural: 'customresourcedefinitions',
      body: crd,
    });
    await new Promise((r) => setTimeout(r, 4_000)); // Established, and the API server's 2 s delay after it
    await kube.createNamespace(NS);
    const simulator = startDeploymentSimulator(kc, NS, { pollMs: 50 });
    stops.push(() => simulator.stop());
    const taskQueue = 'bench-controller';
    const native = await NativeConnection.connect({ address: server.address });
    const worker = await Worker.create({
      connection: native,
      taskQueue,
      workflowBundle: await workflowBundle(),
      sinks: NO_METRICS_SINKS,
      activities: createActivities(
        providersFromEnv({ KUBECONFIG: kube.kubeconfigFile('admin'), CANARY_ALERT_LOG: '/dev/null' }),
      ),
    });
    const client = new Client({
      connection: await Connection.connect({ address: server.address }),
      namespace: server.namespace,
    });
    stops.push(() => client.connection.close());
    const controller = startController({
      kubeConfig: kc,
      rollouts: new RolloutClient(client, { taskQueue }),
      leaseNamespace: NS,
      pollMs: 500,
      log: () => undefined,
    });
    stops.push(() => controller.stop());
    const samples: number[] = [];
    await worker.runUntil(async () => {
      for (let i = 0; i < runs; i++) {
        const fx = await createRolloutFixture(admin, 'nginx', NS, `app${i}`);
        const t0 = performance.now();
        await admin.custom.createNamespacedCustomObject({
          group: GROUP,
          version: VERSION,
          plural: PLURAL,
          namespace: NS,
          body: {
            apiVersion: `${GROUP}/${VERSION}`,
            kind: 'CanaryRollout',
            metadata: { name: `app${i}`, namespace: NS },
            spec: {
              target: fx.target,
              plan: {
                inline: {
                  analysis: { interval: '10s', checks: [] },
                  stages: [{ weight: 10, hold: '1h' }, { weight: 100 }],
                },
              },
              version: 'v2',
              image: fx.stableImage.replace(/:v1$/, ':v2'),
            },
          },
        });
        const deadline = Date.now() + 60_000;
        while ((await fx.weights()).canary === 0) {
          if (Date.now() > deadline) throw new Error(`app${i}: no weight within 60 s`);
          await new Promise((r) => setTimeout(r, 20));
        }
        samples.push(performance.now() - t0);
      }
    });
    const sorted = [...samples].sort((a, b) => a - b);
    const f = (ms: number) => `${ms.toFixed(0)} ms`;
    process.stdout.write(
      `CanaryRollout created → first weight set (nginx, ${runs} runs): p50 ${f(percentile(sorted, 50))}  ` +
        `p99 ${f(percentile(sorted, 99))}  min ${f(sorted[0])}  max ${f(sorted[sorted.length - 1])}\n`,
    );
    await native.close();
  } finally {
    for (const stop of stops.reverse()) await stop().catch(() => undefined);
    await Promise.all([server.stop(), kube.stop()]);
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(
      `bench-controller: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
    );
    process.exit(1);
  },
);
