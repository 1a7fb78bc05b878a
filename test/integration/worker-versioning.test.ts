// Worker Versioning on a real dev server: two builds of the worker run side by side in one Worker Deployment. A rollout
// build A started finishes on A while build B, made current, takes new rollouts; then A drains, stops and its
// version is deleted — the upgrade procedure the README describes, with the same `temporal worker deployment`
// commands. B's workflow differs in a way A's rollouts could not replay, so only pinning keeps them on A.
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { decodeVersioningBehavior } from '@temporalio/common';
import { RolloutClient } from '../../client/index';
import { startDevServer, type DevServer } from '../../demo/dev-server';
import { startLocalStack, type LocalStack } from '../../demo/stack';
import { findTemporalCli } from '../../demo/temporal-bin';
import { startTrafficGenerator } from '../../demo/traffic-generator';
import { eventually, killAll, startWorkerProcess, type WorkerProcess } from '../../harness/processes';
import { prepareWorkerBuild, type WorkerBuild } from '../../harness/worker-builds';
import type { PlanSpec } from '../../workflows/plan';
import { loadWorkerConfig } from '../../worker/config';

const DEPLOYMENT = 'canary-worker';
const TASK_QUEUE = 'versioning-test';
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'canary-versioning-'));

let server: DevServer;
let stacks: LocalStack[] = [];
let traffic: { stop(): unknown }[] = [];
let buildB: WorkerBuild;
let rollouts: RolloutClient;
let workerA: WorkerProcess;
let workerB: WorkerProcess;
let env: Record<string, string>;
let firstId: string;

/** `temporal ARGS` against the test's server; the parsed JSON output when `json`. */
function temporal(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(findTemporalCli()!, [...args, '--address', server.address], (err, stdout, stderr) =>
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr }),
    );
  });
}
async function describeVersion(buildId: string): Promise<{ drainageInfo?: { drainageStatus: string } }> {
  const r = await temporal([
    ...['worker', 'deployment', 'describe-version', '--deployment-name', DEPLOYMENT, '--build-id', buildId],
    ...['-o', 'json'],
  ]);
  expect(r.stderr).toBe('');
  return JSON.parse(r.stdout) as { drainageInfo?: { drainageStatus: string } };
}
async function setCurrent(buildId: string): Promise<void> {
  const r = await temporal([
    ...[
      'worker',
      'deployment',
      'set-current-version',
      '--deployment-name',
      DEPLOYMENT,
      '--build-id',
      buildId,
    ],
    '--yes',
  ]);
  expect(r).toMatchObject({ code: 0, stderr: '' });
}
/** Open rollouts pinned to a build, as the visibility store counts them. */
async function openPinnedTo(buildId: string): Promise<number> {
  const query = `TemporalWorkerDeploymentVersion = "${DEPLOYMENT}:${buildId}" AND ExecutionStatus = "Running"`;
  return (await rollouts.client.workflow.count(query)).count;
}

/** Where each workflow task of a rollout ran (build id) and who ran its activities (worker identities). */
async function whereItRan(workflowId: string) {
  const history = await rollouts.client.workflow.getHandle(workflowId).fetchHistory();
  const events = history.events ?? [];
  return {
    builds: new Set(
      events.flatMap((e) => e.workflowTaskCompletedEventAttributes?.deploymentVersion?.buildId ?? []),
    ),
    failedTasks: events.filter((e) => e.workflowTaskFailedEventAttributes).length,
    activityWorkers: new Set(events.flatMap((e) => e.activityTaskStartedEventAttributes?.identity ?? [])),
  };
}
async function pinning(workflowId: string) {
  const described = await rollouts.client.workflow.getHandle(workflowId).describe();
  const info = described.raw.workflowExecutionInfo?.versioningInfo;
  return {
    behavior: decodeVersioningBehavior(info?.behavior),
    buildId: info?.deploymentVersion?.buildId,
    memo: described.memo ?? {},
  };
}

/** A local-stack target of its own for each rollout: the two rollouts run at once. */
function target(stack: LocalStack) {
  return {
    workload: { kind: 'local', controlUrl: stack.controlUrl },
    traffic: { local: { controlUrl: stack.controlUrl } },
    metrics: { local: { controlUrl: stack.controlUrl } },
  };
}
const analysis = { interval: '10s', checks: [{ name: 'error-rate', metric: 'error-rate', max: 5 }] };
const gatedPlan: PlanSpec = {
  analysis,
  stages: [{ weight: 10, hold: '1s' }, { weight: 50, hold: '1s', gate: 'approval' }, { weight: 100 }],
  promotion: { cleanupDelay: '0s' },
};
const fastPlan: PlanSpec = {
  analysis,
  stages: [{ weight: 10, hold: '1s' }, { weight: 100 }],
  promotion: { cleanupDelay: '0s' },
};

beforeAll(async () => {
  // Drainage is refreshed every 3 minutes by default, and pollers remembered for 5: seconds here.
  const drainFast = {
    'matching.wv.VersionDrainageStatusRefreshInterval': '1s',
    'matching.wv.VersionDrainageStatusVisibilityGracePeriod': '1s',
    'matching.PollerHistoryTTL': '5s',
  };
  let stackList: LocalStack[];
  [server, stackList, buildB] = await Promise.all([
    startDevServer({ ui: false, dynamicConfig: drainFast }),
    Promise.all([startLocalStack({ stableVersion: 'v1' }), startLocalStack({ stableVersion: 'v1' })]),
    prepareWorkerBuild({
      dir: path.join(dir, 'build-b'),
      workflowsPath: require.resolve('./versioning/build-b-workflows'),
    }),
  ]);
  stacks = stackList;
  traffic = stacks.map((s) => startTrafficGenerator({ url: s.proxyUrl, rps: 40 }));
  env = {
    TEMPORAL_ADDRESS: server.address,
    TEMPORAL_TASK_QUEUE: TASK_QUEUE,
    TEMPORAL_DEPLOYMENT_NAME: DEPLOYMENT,
    CANARY_ALERT_LOG: path.join(dir, 'alerts.jsonl'),
  };
  rollouts = await RolloutClient.connect(loadWorkerConfig(env));
}, 120_000);

afterAll(async () => {
  killAll();
  await rollouts?.close();
  await Promise.all(traffic.map((t) => t.stop()));
  await Promise.all(stacks.map((s) => s.close()));
  await server?.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

test('build A, made current, starts a rollout pinned to A', async () => {
  workerA = await startWorkerProcess({ ...env, TEMPORAL_WORKER_BUILD_ID: 'A' });
  expect(workerA.output()).toContain(`deployment=${DEPLOYMENT} build=A (rollouts pinned)`);
  // Said just after the start line: nothing is current yet, so new rollouts would wait.
  await eventually(async () => workerA.output().includes(`deployment ${DEPLOYMENT} has no current version`));
  await setCurrent('A');

  ({ workflowId: firstId } = await rollouts.start({
    app: 'first',
    namespace: 'versioning',
    target: target(stacks[0]),
    version: 'v2',
    plan: gatedPlan,
    requestedBy: 'jest',
  }));
  await eventually(
    async () => (await rollouts.status(firstId)).phase === 'waiting_approval',
    60_000,
    'the first rollout to wait at its gate',
  );
  expect(await pinning(firstId)).toEqual({ behavior: 'PINNED', buildId: 'A', memo: {} });
}, 90_000);

test('build B beside it, made current, takes the new rollouts while A keeps its own', async () => {
  workerB = await startWorkerProcess({ ...env, TEMPORAL_WORKER_BUILD_ID: 'B' }, { main: buildB.main });
  await eventually(async () =>
    workerB
      .output()
      .includes('build B is not current in deployment canary-worker: new rollouts go to build A'),
  );
  await setCurrent('B');

  const { workflowId } = await rollouts.start({
    app: 'second',
    namespace: 'versioning',
    target: target(stacks[1]),
    version: 'v2',
    plan: fastPlan,
    requestedBy: 'jest',
  });
  expect((await rollouts.waitForOutcome(workflowId)).phase).toBe('promoted');
  expect(await pinning(workflowId)).toEqual({
    behavior: 'PINNED',
    buildId: 'B',
    memo: { startedByBuild: 'B' },
  });
  const second = await whereItRan(workflowId);
  expect(second.builds).toEqual(new Set(['B']));
  expect([...second.activityWorkers].every((id) => id.startsWith(`${workerB.pid}@`))).toBe(true);

  // A serves no new rollout but still has one pinned to it: draining.
  await eventually(async () => (await describeVersion('A')).drainageInfo?.drainageStatus === 'draining');
  expect(await openPinnedTo('A')).toBe(1);
  expect((await rollouts.status(firstId)).phase).toBe('waiting_approval');
}, 90_000);

test("A's rollout finishes on A, with none of B's code", async () => {
  await rollouts.approve(firstId, { stage: 2, identity: 'alice' });
  expect((await rollouts.waitForOutcome(firstId)).phase).toBe('promoted');
  const first = await whereItRan(firstId);
  expect(first.builds).toEqual(new Set(['A']));
  expect(first.failedTasks).toBe(0);
  expect([...first.activityWorkers].every((id) => id.startsWith(`${workerA.pid}@`))).toBe(true);
  expect((await pinning(firstId)).memo).toEqual({});
}, 90_000);

test('A drains: drained with no open rollout, then stopped and its version deleted', async () => {
  await eventually(
    async () => (await describeVersion('A')).drainageInfo?.drainageStatus === 'drained',
    30_000,
    'build A to drain',
  );
  expect(await openPinnedTo('A')).toBe(0);
  expect(await workerA.kill('SIGTERM')).toBe(0);

  // A version is deleted once no worker of it has polled for a while (5 s on this server).
  await eventually(
    async () => {
      const r = await temporal([
        ...['worker', 'deployment', 'delete-version', '--deployment-name', DEPLOYMENT, '--build-id', 'A'],
      ]);
      return r.code === 0;
    },
    30_000,
    'build A to be deleted',
  );
  const deployment = await temporal(['worker', 'deployment', 'describe', '--name', DEPLOYMENT, '-o', 'json']);
  expect(deployment.stdout).not.toMatch(/"buildId": "A"/i);
  expect(await workerB.kill('SIGTERM')).toBe(0);
}, 90_000);
