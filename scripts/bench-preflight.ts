// Benchmark, printed as figures (not a test): `npm run bench:preflight`. How long a rollout that cannot work takes
// from `start` to its "not started" verdict, for each kind of preflight failure, through the client library (what
// `canary start` does: start the workflow, wait for its first step's answer) against a Temporal dev server, a real
// kube-apiserver and a real Prometheus, with an in-process worker per worker configuration. Repeats each case and
// prints min / p50 / max, and the exit code `canary start` would give.
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Runtime, Worker } from '@temporalio/worker';
import { NO_METRICS_SINKS } from '../worker/worker';
import { providersFromEnv } from '../activities/factory';
import { kubeClients } from '../activities/kube/client';
import { createActivities } from '../activities/rollout-activities';
import { PlanInvalidError, RolloutClient, RolloutNotStartedError } from '../client/index';
import { startDevServer } from '../demo/dev-server';
import { startExporter } from '../harness/exporter';
import { startKubeServer } from '../harness/kube';
import { createRolloutFixture } from '../harness/kube-rollout';
import { startPrometheus } from '../harness/prometheus';
import { workflowBundle } from '../harness/rollout-env';
import type { PlanSpec } from '../workflows/plan';
import { RolloutLogger } from '../worker/logger';

const REPEATS = 5;

const plan = (checks: unknown[]): PlanSpec =>
  ({
    analysis: { interval: '10s', checks },
    stages: [{ weight: 10, hold: '1m' }, { weight: 100 }],
    promotion: { cleanupDelay: '0s' },
  }) as PlanSpec;
const errorRate = { name: 'error-rate', metric: 'error-rate', success: { max: 1 }, abort: { max: 5 } };

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

async function closedPort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

async function main(): Promise<void> {
  try {
    Runtime.install({ logger: new RolloutLogger('WARN') });
  } catch {
    // installed already
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'canary-bench-preflight-'));
  const [server, kube] = await Promise.all([
    startDevServer({ ui: false }),
    startKubeServer({ crds: ['istio'] }),
  ]);
  const stable = await startExporter({
    set: 'istio',
    side: 'stable',
    app: 'shop',
    namespace: 'bench-pf',
    version: 'v1',
    workload: 'shop',
    rps: 20,
    errorRate: 0.001,
    latencyMs: { p50: 20, p95: 60, p99: 90 },
  });
  const prom = await startPrometheus({ targets: [{ job: 'stable', url: stable.url }] });
  await prom.waitUp();
  const admin = kubeClients(kube.kubeConfig('admin'));
  const ns = await kube.createNamespace('bench-pf');
  const fx = await createRolloutFixture(admin, 'istio', ns, 'shop');
  const connection = await Connection.connect({ address: server.address });
  const client = new Client({ connection, namespace: server.namespace });
  const native = await NativeConnection.connect({ address: server.address });
  const bundle = await workflowBundle();

  const writeKubeconfig = (
    name: string,
    edit: (c: { clusters: Array<{ cluster: { server: string } }> }) => void,
  ) => {
    const config = JSON.parse(kube.kubeConfig('admin').exportConfig()) as {
      clusters: Array<{ cluster: { server: string } }>;
    };
    edit(config);
    const file = path.join(dir, `${name}.kubeconfig`);
    fs.writeFileSync(file, JSON.stringify(config));
    return file;
  };
  const closed = await closedPort();
  const kubeconfigs = {
    admin: kube.kubeconfigFile('admin'),
    restricted: kube.kubeconfigFile('restricted'),
    closed: writeKubeconfig('closed', (c) =>
      c.clusters.forEach((x) => (x.cluster.server = `https://127.0.0.1:${closed}`)),
    ),
  };
  const base = fx.target as Record<string, unknown>;
  const withMetrics = { ...base, metrics: { prometheus: { url: prom.url, templates: 'istio' } } };

  type Case = {
    name: string;
    kubeconfig: string;
    target: Record<string, unknown>;
    plan: PlanSpec;
    env?: Record<string, string>;
  };
  const cases: Case[] = [
    {
      name: 'unreachable API server (closed port)',
      kubeconfig: kubeconfigs.closed,
      target: base,
      plan: plan([]),
    },
    {
      name: 'forbidden verbs (no role bound)',
      kubeconfig: kubeconfigs.restricted,
      target: base,
      plan: plan([]),
    },
    {
      name: 'missing VirtualService',
      kubeconfig: kubeconfigs.admin,
      target: { ...base, traffic: { istio: { virtualService: 'nope', destinationRule: 'shop' } } },
      plan: plan([]),
    },
    {
      name: 'missing CRD (SMI TrafficSplit not installed)',
      kubeconfig: kubeconfigs.admin,
      target: { ...base, traffic: { smi: {} } },
      plan: plan([]),
    },
    {
      // Valid syntax (the client's offline check passes it); Prometheus rejects its types (rate of an instant vector).
      name: 'query Prometheus rejects (rate of an instant vector)',
      kubeconfig: kubeconfigs.admin,
      target: withMetrics,
      plan: plan([
        {
          name: 'bad',
          query: 'sum(rate(istio_requests_total{destination_workload="{{workload}}"}))',
          abort: { max: 5 },
        },
      ]),
    },
    {
      name: 'check the provider cannot answer (query on the local default)',
      kubeconfig: kubeconfigs.admin,
      target: base,
      plan: plan([{ name: 'q', query: 'sum(up{job="{{workload}}"})', abort: { max: 5 } }]),
    },
    {
      name: 'exporter missing (no series even for stable)',
      kubeconfig: kubeconfigs.admin,
      target: withMetrics,
      plan: plan([
        errorRate,
        {
          name: 'pods',
          query: 'sum(kube_deployment_status_replicas_unavailable{deployment="{{workload}}"})',
          abort: { max: 0 },
        },
      ]),
    },
  ];

  const lines: string[] = [];
  try {
    for (const [i, c] of cases.entries()) {
      const taskQueue = `bench-preflight-${i}`;
      const activities = createActivities(
        providersFromEnv({
          KUBECONFIG: c.kubeconfig,
          CANARY_ALERT_LOG: path.join(dir, 'alerts.jsonl'),
          ...c.env,
        }),
      );
      const worker = await Worker.create({
        connection: native,
        namespace: server.namespace,
        taskQueue,
        workflowBundle: bundle,
        sinks: NO_METRICS_SINKS,
        activities,
      });
      const running = worker.run();
      const rollouts = new RolloutClient(client, { taskQueue });
      const times: number[] = [];
      let verdict = '';
      try {
        for (let r = 0; r < REPEATS; r++) {
          const t0 = performance.now();
          const started = await rollouts
            .start({
              target: { ...c.target, app: `shop-${i}-${r}`, namespace: ns },
              version: 'v2',
              plan: c.plan,
              requestedBy: 'bench',
            })
            .catch((err: unknown) => {
              // What the client refuses offline never reaches the worker: that verdict's time is the client's.
              if (!(err instanceof PlanInvalidError)) throw err;
              times.push(performance.now() - t0);
              verdict = `refused by the client before starting (exit 2): ${err.problems[0]?.message.slice(0, 110)}…`;
              return undefined;
            });
          if (!started) continue;
          try {
            await rollouts.awaitPreflight(started.workflowId, { timeoutMs: 60_000, pollMs: 20 });
            verdict = 'started (expected not started)';
          } catch (err) {
            if (!(err instanceof RolloutNotStartedError)) throw err;
            times.push(performance.now() - t0);
            verdict = `not started, ${err.kind} (exit ${err.kind === 'input' ? 2 : 3}): ${err.findings.find((f) => f.level === 'refuse')?.message.slice(0, 110)}…`;
          }
        }
      } finally {
        worker.shutdown();
        await running;
      }
      const sorted = [...times].sort((a, b) => a - b);
      lines.push(
        `  ${c.name.padEnd(62)} ${times.length === 0 ? 'n/a' : `min ${sorted[0].toFixed(0)} ms  p50 ${percentile(sorted, 50).toFixed(0)} ms  max ${sorted[sorted.length - 1].toFixed(0)} ms`}`,
        `    ${verdict}`,
      );
    }
  } finally {
    await native.close();
    await connection.close();
    await prom.stop();
    await stable.stop();
    await Promise.all([server.stop(), kube.stop()]);
  }
  console.log(
    `start → "not started" verdict, ${REPEATS} rollouts each (client.start + awaitPreflight, dev server, real kube-apiserver and Prometheus)`,
  );
  for (const l of lines) console.log(l);
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(3);
  },
);
