// A worker killed with SIGKILL in the middle of a stage, then restarted: the rollout resumes where it was
// and finishes on time, with no stage repeated or cut short. Real dev server, real worker process.
import { rolloutResult } from '../../client/index';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { startLocalStack, type LocalStack } from '../../activities/local/stack';
import { startTrafficGenerator } from '../../activities/local/traffic-generator';
import { rolloutWorkflowId, statusQuery, type RolloutInput } from '../../workflows/api';
import type { canaryRollout } from '../../workflows';
import { readAlerts } from '../harness/alerts';
import { startDevServer, type DevServer } from '../harness/dev-server';
import { eventually, killAll, startWorkerProcess } from '../harness/processes';

let server: DevServer;
let stack: LocalStack;
let traffic: { stop(): unknown };
let client: Client;
let connection: Connection;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'canary-crash-'));
const alertLog = path.join(dir, 'alerts.jsonl');
const taskQueue = 'crash-test';

beforeAll(async () => {
  server = await startDevServer({ ui: false });
  stack = await startLocalStack({ stableVersion: 'v1' });
  traffic = startTrafficGenerator({ url: stack.proxyUrl, rps: 40 });
  connection = await Connection.connect({ address: server.address });
  client = new Client({ connection });
}, 120_000);

afterAll(async () => {
  killAll();
  await connection?.close();
  await traffic?.stop();
  await stack?.close();
  await server?.stop();
});

const alerts = (workflowId: string) => readAlerts(alertLog, workflowId);

test('SIGKILL mid-stage, restart: the rollout finishes on time with every stage once', async () => {
  const env = {
    TEMPORAL_ADDRESS: server.address,
    TEMPORAL_TASK_QUEUE: taskQueue,
    CANARY_LOCAL_CONTROL_URL: stack.controlUrl,
    CANARY_ALERT_LOG: alertLog,
  };
  let worker = await startWorkerProcess(env);
  const target = { app: 'crash', namespace: 'reliability' };
  const input: RolloutInput = {
    target,
    version: 'v2',
    requestedBy: 'jest',
    plan: {
      analysis: { interval: '10s', checks: [{ name: 'error-rate', metric: 'error-rate', max: 5 }] },
      stages: [{ weight: 10, hold: '30s' }, { weight: 50, hold: '30s' }, { weight: 100 }],
      promotion: { cleanupDelay: '0s' },
    },
  };
  const handle = await client.workflow.start<typeof canaryRollout>('canaryRollout', {
    workflowId: rolloutWorkflowId(target),
    taskQueue,
    args: [input],
  });
  const wid = handle.workflowId;
  await eventually(async () => (await handle.query(statusQuery)).weight === 10, 30_000, 'stage 1');
  await new Promise((r) => setTimeout(r, 10_000)); // ten seconds into stage 1

  expect(await worker.kill('SIGKILL')).toBeNull(); // killed, not exited
  await new Promise((r) => setTimeout(r, 3_000));
  const live = (await fetch(`${stack.controlUrl}/state`).then((r) => r.json())) as { weight: number };
  expect(live.weight).toBe(10); // traffic held while no worker runs
  worker = await startWorkerProcess(env);

  const result = await rolloutResult(handle);
  expect(result.outcome).toBe('promoted');
  expect((await handle.query(statusQuery)).phase).toBe('promoted');
  expect(await worker.kill('SIGTERM')).toBe(0); // graceful shutdown

  const stages = alerts(wid).filter((e) => e.event === 'stage_advanced');
  expect(stages.map((e) => e.weight)).toEqual([10, 50, 100]); // none repeated
  const t1 = stages[0].offsetMs;
  // Holds measured from the first stage's shift: 30 s each, neither reset nor cut short by the crash.
  expect(stages[1].offsetMs - t1).toBeGreaterThanOrEqual(30_000);
  expect(stages[1].offsetMs - t1).toBeLessThan(33_000);
  expect(stages[2].offsetMs - t1).toBeGreaterThanOrEqual(60_000);
  expect(stages[2].offsetMs - t1).toBeLessThan(64_000);
}, 240_000);
