// A worker killed with SIGKILL in the middle of a stage, then restarted: the rollout resumes where it was
// and finishes on time, with no stage repeated or cut short. And one killed while a webhook delivery is in flight:
// the activity retry resends that one event (same id, same body), nothing else is sent twice. Real dev server,
// real worker process.
import { rolloutResult } from '../../client/index';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { startLocalStack, type LocalStack } from '../../demo/stack';
import { startTrafficGenerator } from '../../demo/traffic-generator';
import { rolloutWorkflowId, statusQuery, type RolloutInput } from '../../workflows/api';
import type { canaryRollout } from '../../workflows';
import { EVENT_ID_HEADER } from '../../activities/alerts/webhook';
import type { RolloutAlert } from '../../workflows/alerts/events';
import { readAlerts } from '../../harness/alerts';
import { startDevServer, type DevServer } from '../../demo/dev-server';
import { eventually, killAll, startWorkerProcess } from '../../harness/processes';
import { startReceiver, type Receiver, type RecordedRequest } from '../../harness/receivers';

let server: DevServer;
let stack: LocalStack;
let traffic: { stop(): unknown };
let client: Client;
let connection: Connection;
let receiver: Receiver;
const webhookSecret = 'crash-test-hmac-key-0123456789';
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'canary-crash-'));
const alertLog = path.join(dir, 'alerts.jsonl');
const taskQueue = 'crash-test';

beforeAll(async () => {
  server = await startDevServer({ ui: false });
  stack = await startLocalStack({ stableVersion: 'v1' });
  traffic = startTrafficGenerator({ url: stack.proxyUrl, rps: 40 });
  receiver = await startReceiver({ secret: webhookSecret });
  connection = await Connection.connect({ address: server.address });
  client = new Client({ connection });
}, 120_000);

afterAll(async () => {
  killAll();
  await connection?.close();
  await receiver?.close();
  await traffic?.stop();
  await stack?.close();
  await server?.stop();
});

const alerts = (workflowId: string) => readAlerts(alertLog, workflowId);

/** A rollout of `app` in namespace reliability: 10 % and 50 % for `hold` each, then 100 %; analysis every 10 s. */
function startRollout(app: string, version: string, hold: string, queue: string) {
  const target = { app, namespace: 'reliability' };
  const input: RolloutInput = {
    target,
    version,
    requestedBy: 'jest',
    plan: {
      analysis: { interval: '10s', checks: [{ name: 'error-rate', metric: 'error-rate', max: 5 }] },
      stages: [{ weight: 10, hold }, { weight: 50, hold }, { weight: 100 }],
      promotion: { cleanupDelay: '0s' },
    },
  };
  return client.workflow.start<typeof canaryRollout>('canaryRollout', {
    workflowId: rolloutWorkflowId(target),
    taskQueue: queue,
    args: [input],
  });
}

test('SIGKILL mid-stage, restart: the rollout finishes on time with every stage once', async () => {
  const env = {
    TEMPORAL_ADDRESS: server.address,
    TEMPORAL_TASK_QUEUE: taskQueue,
    CANARY_LOCAL_CONTROL_URL: stack.controlUrl,
    CANARY_ALERT_LOG: alertLog,
  };
  let worker = await startWorkerProcess(env);
  const handle = await startRollout('crash', 'v2', '30s', taskQueue);
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

test('SIGKILL while a webhook delivery is in flight: only that event is resent, same id and body', async () => {
  const env = {
    TEMPORAL_ADDRESS: server.address,
    TEMPORAL_TASK_QUEUE: 'crash-alerts-test',
    CANARY_LOCAL_CONTROL_URL: stack.controlUrl,
    CANARY_ALERT_LOG: path.join(dir, 'crash-alerts.jsonl'),
    CANARY_ALERT_WEBHOOK_URL: `${receiver.url}/hooks/canary`,
    CANARY_ALERT_WEBHOOK_SECRET: webhookSecret,
    CANARY_ALERT_TIMEOUT: '20s', // longer than the receiver's stall: the request is cut by the crash, not a timeout
  };
  let worker = await startWorkerProcess(env);
  const handle = await startRollout('crash-alerts', 'v3', '20s', env.TEMPORAL_TASK_QUEUE);
  const wid = handle.workflowId;
  const mine = (): RecordedRequest[] =>
    receiver.requests.filter((r) => (r.json as RolloutAlert | undefined)?.workflowId === wid);
  const idOf = (r: RecordedRequest): string => String(r.headers[EVENT_ID_HEADER]);
  const eventOf = (r: RecordedRequest): RolloutAlert => r.json as RolloutAlert;

  // Stage 1 reached, and its events delivered (answered at once).
  await eventually(async () => (await handle.query(statusQuery)).weight === 10, 60_000, 'stage 1');
  await eventually(async () => mine().length >= 2, 30_000, "stage 1's alerts");
  expect(mine().map((r) => [eventOf(r).kind, eventOf(r).weight])).toEqual([
    ['rollout_started', 0],
    ['stage_advanced', 10],
  ]);

  // The next delivery (stage 2) stalls at the receiver; the worker dies while it waits for the answer.
  receiver.delay(8_000);
  await eventually(async () => mine().length >= 3, 60_000, "stage 2's alert to arrive");
  const arrivedAt = Date.now();
  expect(await worker.kill('SIGKILL')).toBeNull(); // killed, not exited
  const killedAt = Date.now();
  expect(killedAt - arrivedAt).toBeLessThan(8_000); // before the receiver answered: the delivery was cut off
  receiver.delay(0);
  const cut = mine()[2];
  expect(eventOf(cut).kind).toBe('stage_advanced');
  expect(eventOf(cut).weight).toBe(50);
  worker = await startWorkerProcess(env);
  await eventually(
    async () => mine().filter((r) => idOf(r) === idOf(cut)).length >= 2,
    60_000,
    'the cut-off alert to be delivered again',
  );
  // The crash is noticed by the delivery's heartbeat timeout (10 s), not its start-to-close timeout (30 s).
  expect(Date.now() - killedAt).toBeLessThan(25_000);

  const result = await rolloutResult(handle);
  expect(result.outcome).toBe('promoted');
  expect(await worker.kill('SIGTERM')).toBe(0);

  const requests = mine();
  for (const r of requests) {
    expect(r.signatureValid).toBe(true);
    expect(r.status).toBe(200);
  }
  // The cut-off delivery was redelivered by the activity retry: same event id, byte-identical body.
  const resent = requests.filter((r) => idOf(r) === idOf(cut));
  expect(resent.length).toBeGreaterThanOrEqual(2);
  expect(resent[0]).toBe(cut);
  for (const r of resent) expect(r.body).toBe(cut.body);
  // No other event arrived twice: what was delivered before the crash is not sent again after it.
  const others = requests.filter((r) => idOf(r) !== idOf(cut)).map(idOf);
  expect(new Set(others).size).toBe(others.length);
  // After dedup by id (what a receiver does), every event once, in order, with gapless sequence numbers.
  const ids = receiver.acceptedEventIds().filter((id) => id.startsWith(`${wid}/`));
  const prefix = `${wid}/${handle.firstExecutionRunId}/`;
  const parsed = ids.map((id) => {
    expect(id.startsWith(prefix)).toBe(true);
    const m = /^(\d+)-([a-z_]+)$/.exec(id.slice(prefix.length));
    expect(m).not.toBeNull();
    return { seq: Number(m![1]), kind: m![2] };
  });
  expect(parsed.map((p) => p.kind)).toEqual([
    'rollout_started',
    'stage_advanced',
    'stage_advanced',
    'stage_advanced',
    'promoted',
  ]);
  expect(parsed.map((p) => p.seq)).toEqual([1, 2, 3, 4, 5]); // a new rollout's events count from 1, no gaps
  const byId = new Map(requests.map((r) => [idOf(r), eventOf(r)]));
  expect(
    ids.filter((id) => byId.get(id)!.kind === 'stage_advanced').map((id) => byId.get(id)!.weight),
  ).toEqual([10, 50, 100]);
  for (const id of ids) expect(byId.get(id)!.id).toBe(id); // the body names the same id as the header
}, 180_000);
