// The CanaryRollout controller at scale, printed as figures (not a test):
// `npm run bench:controller-scale [-- --objects N] [-- --steady 60s]`.
// A real local kube-apiserver and Temporal dev server, a worker process (dist/worker, local metrics) and the
// Deployment simulator (no kubelet); N CanaryRollout objects, each with its own target (a Deployment of 10 replicas,
// the replica-ratio router: one object per target, where a Service per target would exhaust the API server's service
// IP range) and a plan that holds an hour at stage 1 so every rollout keeps running. The controller is the real `canary controller` from dist/, in a
// process of its own, so its memory and CPU are its own (/proc/PID/status VmRSS and VmHWM, /proc/PID/stat utime +
// stime). Printed: how long until every object has a workflow (.status.runId) and until every object's .status
// shows stage 1 (the workflow's first shift mirrored back); the controller's RSS after that and its peak; its CPU
// seconds during that initial sync; its CPU % in steady state (N running rollouts, status polling) over a window;
// and the API-server requests per second it causes then (apiserver_request_total for the resources only the
// controller touches: canaryrollouts, events, leases).
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as https from 'node:https';
import * as path from 'node:path';
import { parse } from 'yaml';
import { kubeClients, type KubeClients } from '../activities/kube/client';
import { GROUP, PLURAL, VERSION, type CanaryRollout } from '../controller/crd';
import { startDevServer } from '../demo/dev-server';
import { projectRoot } from '../demo/temporal-bin';
import { startKubeServer, type KubeServer } from '../harness/kube';
import { startDeploymentSimulator } from '../harness/kube-controller';
import { CLI_MAIN, killAll, requireBuilt, startWorkerProcess } from '../harness/processes';
import { parseDuration } from '../workflows/duration';

const NS = 'scale';
const CLK_TCK = 100; // Linux USER_HZ: /proc/PID/stat counts CPU time in 1/100 s
const argOf = (name: string): string | undefined => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const log = (line: string) => process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${line}\n`);

/** Resident and peak resident memory (MiB) and CPU seconds (user + system) of a process. */
function procStats(pid: number): { rssMiB: number; hwmMiB: number; cpuS: number } {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  // Fields after the command name (which may contain spaces): state is field 3, utime 14, stime 15.
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(rest[11]) + Number(rest[12]);
  return { rssMiB: kb('VmRSS') / 1024, hwmMiB: kb('VmHWM') / 1024, cpuS: ticks / CLK_TCK };
}

/** apiserver_request_total summed per `resource verb` for the resources only the controller touches. */
async function apiRequests(kube: KubeServer): Promise<Map<string, number>> {
  const token = kube.kubeConfig('admin').getCurrentUser()?.token ?? '';
  const body = await new Promise<string>((resolve, reject) => {
    https
      .get(
        `${kube.url}/metrics`,
        { ca: kube.caPem, headers: { Authorization: `Bearer ${token}` } },
        (res) => {
          let b = '';
          res.on('data', (d) => (b += d));
          res.on('end', () => resolve(b));
        },
      )
      .on('error', reject);
  });
  const out = new Map<string, number>();
  for (const line of body.split('\n')) {
    if (!line.startsWith('apiserver_request_total{')) continue;
    const resource = /resource="([^"]*)"/.exec(line)?.[1] ?? '';
    if (!['canaryrollouts', 'events', 'leases'].includes(resource)) continue;
    const verb = /verb="([^"]*)"/.exec(line)?.[1] ?? '';
    const sub = /subresource="([^"]*)"/.exec(line)?.[1];
    const key = `${resource}${sub ? `/${sub}` : ''} ${verb}`;
    out.set(key, (out.get(key) ?? 0) + Number(line.slice(line.lastIndexOf(' ') + 1)));
  }
  return out;
}

/** Runs fn over items, `width` at a time. */
async function inBatches<T>(items: T[], width: number, fn: (item: T) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < items.length) await fn(items[next++]);
    }),
  );
}

async function listRollouts(admin: KubeClients): Promise<CanaryRollout[]> {
  const list = (await admin.custom.listNamespacedCustomObject({
    group: GROUP,
    version: VERSION,
    plural: PLURAL,
    namespace: NS,
  })) as { items: CanaryRollout[] };
  return list.items;
}

async function main(): Promise<void> {
  const n = Number(argOf('--objects') ?? 1000);
  const steadyMs = parseDuration(argOf('--steady') ?? '60s');
  const syncTimeoutMs = parseDuration(argOf('--timeout') ?? '20m');
  const pollArg = argOf('--poll') ?? '1s';
  if (!Number.isInteger(n) || n < 1) throw new Error(`--objects must be a positive integer, got ${n}`);
  requireBuilt(CLI_MAIN);
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
    await kube.createNamespace(NS);
    const apps = Array.from({ length: n }, (_, i) => `app${i}`);
    let t = Date.now();
    await inBatches(apps, 16, (app) =>
      admin.apps.createNamespacedDeployment({
        namespace: NS,
        body: {
          metadata: { name: app, labels: { app } },
          spec: {
            replicas: 10,
            selector: { matchLabels: { app } },
            template: {
              metadata: { labels: { app, version: 'v1' } },
              spec: { containers: [{ name: 'app', image: `registry.example:5000/shop/${app}:v1` }] },
            },
          },
        },
      }),
    );
    log(`${n} targets (a Deployment each) created in ${((Date.now() - t) / 1000).toFixed(1)} s`);

    const simulator = startDeploymentSimulator(kc, NS, { pollMs: 1_000 });
    stops.push(() => simulator.stop());
    const queue = 'bench-controller-scale';
    const env = {
      TEMPORAL_ADDRESS: server.address,
      TEMPORAL_NAMESPACE: server.namespace,
      TEMPORAL_TASK_QUEUE: queue,
      KUBECONFIG: kube.kubeconfigFile('admin'),
      CANARY_KUBECONFIG: '',
      CANARY_KUBE_CONTEXT: '',
      CANARY_ALERT_LOG: '/dev/null',
      CANARY_ALERT_WEBHOOK_URL: '',
    };
    const worker = await startWorkerProcess(env);
    stops.push(() => worker.kill('SIGTERM'));

    const controller = spawn(
      process.execPath,
      [CLI_MAIN, 'controller', '--lease-namespace', NS, '--poll', pollArg],
      { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let controllerOut = '';
    controller.stderr.on('data', (d) => (controllerOut = (controllerOut + String(d)).slice(-20_000)));
    stops.push(async () => {
      if (controller.exitCode === null) controller.kill('SIGKILL');
    });
    const pid = controller.pid!;
    const deadline = Date.now() + 30_000;
    while (!/watching CanaryRollouts/.test(controllerOut)) {
      if (Date.now() > deadline || controller.exitCode !== null)
        throw new Error(`the controller did not start:\n${controllerOut}`);
      await sleep(100);
    }
    await sleep(3_000); // the CRD Established (and the API server's 2 s delay after it), the Lease taken
    const idle = procStats(pid);
    log(`controller pid ${pid} up: RSS ${idle.rssMiB.toFixed(0)} MiB, CPU ${idle.cpuS.toFixed(2)} s`);

    // Initial sync: every object created at once, as `kubectl apply -f dir/` or Argo CD would.
    const plan = {
      analysis: { interval: '10m', checks: [] },
      stages: [{ weight: 10, hold: '1h' }, { weight: 100 }],
    };
    t = Date.now();
    const cpu0 = procStats(pid).cpuS;
    await inBatches(apps, 16, async (app) => {
      await admin.custom.createNamespacedCustomObject({
        group: GROUP,
        version: VERSION,
        plural: PLURAL,
        namespace: NS,
        body: {
          apiVersion: `${GROUP}/${VERSION}`,
          kind: 'CanaryRollout',
          metadata: { name: app, namespace: NS },
          spec: {
            target: {
              app,
              namespace: NS,
              workload: { kind: 'Deployment', name: app, container: 'app', progressDeadline: '5m' },
              traffic: { replicas: {} },
            },
            plan: { inline: plan },
            version: 'v2',
            image: `registry.example:5000/shop/${app}:v2`,
          },
        },
      });
    });
    const createdS = (Date.now() - t) / 1000;
    log(`${n} CanaryRollouts created in ${createdS.toFixed(1)} s`);
    let allStartedS: number | undefined;
    let allMirroredS: number | undefined;
    let peakRss = 0;
    let started = 0;
    let mirrored = 0;
    while (allMirroredS === undefined) {
      const items = await listRollouts(admin);
      started = items.filter((o) => o.status?.runId).length;
      mirrored = items.filter(
        (o) => o.status?.runId && o.status.stage === 1 && (o.status.weight ?? 0) > 0,
      ).length;
      const s = procStats(pid);
      peakRss = Math.max(peakRss, s.rssMiB);
      const elapsed = (Date.now() - t) / 1000;
      if (allStartedS === undefined && started === n) allStartedS = elapsed;
      if (mirrored === n) allMirroredS = elapsed;
      log(
        `${elapsed.toFixed(0)} s: ${started}/${n} started, ${mirrored}/${n} at stage 1 on .status; controller RSS ${s.rssMiB.toFixed(0)} MiB, CPU ${(s.cpuS - cpu0).toFixed(1)} s; worker RSS ${procStats(worker.pid).rssMiB.toFixed(0)} MiB`,
      );
      if (Date.now() - t > syncTimeoutMs) break;
      await sleep(3_000);
    }
    const synced = procStats(pid);
    const syncCpuS = synced.cpuS - cpu0;

    // Steady state: N running rollouts in their hold; nothing else touches the objects (this script stops listing).
    await sleep(5_000);
    const before = procStats(pid);
    const server0 = procStats(server.pid);
    const api0 = await apiRequests(kube);
    const w0 = Date.now();
    await sleep(steadyMs);
    const after = procStats(pid);
    const server1 = procStats(server.pid);
    const api1 = await apiRequests(kube);
    const windowS = (Date.now() - w0) / 1000;
    const rates = [...api1]
      .map(([k, v]) => [k, (v - (api0.get(k) ?? 0)) / windowS] as const)
      .filter(([, r]) => r > 0);
    const apiRate = rates.reduce((sum, [, r]) => sum + r, 0);

    const f = (x: number | undefined, unit: string) =>
      x === undefined ? 'not reached' : `${x.toFixed(1)} ${unit}`;
    process.stdout.write(
      [
        `controller at scale: ${n} CanaryRollouts (replica-ratio targets, one worker process, poll ${pollArg})`,
        `  created (16 at a time):                      ${createdS.toFixed(1)} s`,
        `  all with a workflow (.status.runId):         ${f(allStartedS, 's')}${allStartedS === undefined ? ` (${started}/${n})` : ''}`,
        `  all with stage 1 mirrored on .status:        ${f(allMirroredS, 's')}${allMirroredS === undefined ? ` (${mirrored}/${n})` : ''}`,
        `  controller RSS idle / after sync / peak:     ${idle.rssMiB.toFixed(0)} / ${synced.rssMiB.toFixed(0)} / ${Math.max(peakRss, synced.hwmMiB).toFixed(0)} MiB (VmHWM ${synced.hwmMiB.toFixed(0)})`,
        `  controller CPU during sync:                  ${syncCpuS.toFixed(1)} s`,
        `  controller CPU in steady state (${windowS.toFixed(0)} s):      ${(((after.cpuS - before.cpuS) / windowS) * 100).toFixed(1)} % of a core; RSS ${after.rssMiB.toFixed(0)} MiB`,
        `  API-server requests by the controller:       ${apiRate.toFixed(2)}/s (${rates.map(([k, r]) => `${k} ${r.toFixed(2)}`).join(', ') || 'none'})`,
        `  Temporal dev server CPU in that window:      ${(((server1.cpuS - server0.cpuS) / windowS) * 100).toFixed(1)} % of a core (the controller's describes and lists, the worker's polls)`,
        `  worker RSS:                                  ${procStats(worker.pid).rssMiB.toFixed(0)} MiB`,
        '',
      ].join('\n'),
    );
  } finally {
    for (const stop of stops.reverse()) await stop().catch(() => undefined);
    killAll();
    await Promise.all([server.stop({ signal: 'SIGKILL' }), kube.stop()]);
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(
      `bench-controller-scale: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
    );
    process.exit(1);
  },
);
