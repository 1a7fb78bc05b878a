// The plan's hooks on a real dev server with a real worker process and a local HTTP receiver: every point fires in
// order, exactly once per stage entry (after dedup by Idempotency-Key, as a receiver does), even when the worker is
// killed with SIGKILL while a hook's request waits for its answer; a failing `before` hook leaves traffic untouched;
// a failing afterStage hook with onFailure: approval asks a person, and their approval lets the rollout go on.
import { rolloutResult } from '../../client/index';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { startLocalStack, type LocalStack } from '../../demo/stack';
import { approveUpdate, rolloutWorkflowId, statusQuery, type RolloutInput } from '../../workflows/api';
import type { canaryRollout } from '../../workflows';
import type { PlanSpec } from '../../workflows/plan';
import { IDEMPOTENCY_HEADER, type HookRequestBody } from '../../activities/hooks/http';
import { readAlerts } from '../../harness/alerts';
import { startDevServer, type DevServer } from '../../demo/dev-server';
import { eventually, killAll, startWorkerProcess } from '../../harness/processes';
import { startReceiver, type Receiver, type RecordedRequest } from '../../harness/receivers';

let server: DevServer;
let stack: LocalStack;
let client: Client;
let connection: Connection;
let receiver: Receiver;
const secret = 'hooks-test-hmac-key-0123456789';
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'canary-hooks-'));
/** Paths the receiver refuses (HTTP 422): a failing hook. */
const refused = new Set<string>();

beforeAll(async () => {
  server = await startDevServer({ ui: false });
  stack = await startLocalStack({ stableVersion: 'v1' });
  receiver = await startReceiver({
    secret,
    respond: (r) =>
      refused.has(r.path)
        ? { status: 422, body: 'smoke test failed: 3 of 40 requests' }
        : { status: 200, body: '{"ok":true}' },
  });
  connection = await Connection.connect({ address: server.address });
  client = new Client({ connection });
}, 120_000);

afterAll(async () => {
  killAll();
  await connection?.close();
  await receiver?.close();
  await stack?.close();
  await server?.stop();
});

const hook = (app: string, point: string, extra: Record<string, unknown> = {}) => ({
  name: point.toLowerCase(),
  http: { url: `${receiver.url}/${app}/${point}`, timeout: '20s', retries: 3 },
  ...extra,
});

function env(queue: string) {
  return {
    TEMPORAL_ADDRESS: server.address,
    TEMPORAL_TASK_QUEUE: queue,
    CANARY_LOCAL_CONTROL_URL: stack.controlUrl,
    CANARY_ALERT_LOG: path.join(dir, `${queue}.jsonl`),
    CANARY_HOOK_SECRET: secret,
  };
}

function start(app: string, hooks: Record<string, unknown>, hold: string, queue: string) {
  const target = { app, namespace: 'hooks' };
  const plan = {
    analysis: { interval: '10s', checks: [] },
    stages: [{ weight: 10, hold }, { weight: 50, hold }, { weight: 100 }],
    promotion: { cleanupDelay: '0s' },
    hooks,
  } as PlanSpec;
  const input: RolloutInput = { target, version: 'v2', requestedBy: 'jest', plan };
  return client.workflow.start<typeof canaryRollout>('canaryRollout', {
    workflowId: rolloutWorkflowId(target),
    taskQueue: queue,
    args: [input],
  });
}

const mine = (app: string): RecordedRequest[] =>
  receiver.requests.filter((r) => r.path.startsWith(`/${app}/`));
const keyOf = (r: RecordedRequest) => String(r.headers[IDEMPOTENCY_HEADER]);
const bodyOf = (r: RecordedRequest) => r.json as HookRequestBody;

test('every point in order, once per stage entry, across a worker SIGKILL mid-request', async () => {
  const queue = 'hooks-order';
  const app = 'ordered';
  let worker = await startWorkerProcess(env(queue));
  const points = ['before', 'beforeStage', 'afterStage', 'beforePromotion', 'afterPromotion'];
  const hooks = Object.fromEntries(points.map((p) => [p, [hook(app, p)]]));
  const handle = await start(app, hooks, '10s', queue);

  // The afterStage hook of stage 1 stalls at the receiver; the worker dies while it waits for the answer.
  await eventually(async () => mine(app).length >= 2, 60_000, 'before and beforeStage 1');
  receiver.delay(8_000);
  await eventually(async () => mine(app).length >= 3, 60_000, 'afterStage 1 to arrive');
  expect(await worker.kill('SIGKILL')).toBeNull();
  receiver.delay(0);
  const cut = mine(app)[2];
  expect([bodyOf(cut).point, bodyOf(cut).stage]).toEqual(['afterStage', 1]);
  worker = await startWorkerProcess(env(queue));

  const result = await rolloutResult(handle);
  expect(result.outcome).toBe('promoted');
  const status = await handle.query(statusQuery);
  expect(await worker.kill('SIGTERM')).toBe(0);

  const requests = mine(app);
  for (const r of requests) expect(r.signatureValid).toBe(true);
  // The cut-off request was sent again by the activity's retry, with the same key and body.
  const again = requests.filter((r) => keyOf(r) === keyOf(cut));
  expect(again.length).toBeGreaterThanOrEqual(2);
  for (const r of again) expect(r.body).toBe(cut.body);
  // Deduplicated by Idempotency-Key, as a receiver does: every point once per stage entry, in order.
  const seen = new Set<string>();
  const once = requests.filter((r) => !seen.has(keyOf(r)) && seen.add(keyOf(r)));
  expect(once.map((r) => `${bodyOf(r).point} ${bodyOf(r).stage} w${bodyOf(r).weight}`)).toEqual([
    'before 1 w0',
    'beforeStage 1 w0',
    'afterStage 1 w10',
    'beforeStage 2 w10',
    'afterStage 2 w50',
    'beforeStage 3 w50',
    'afterStage 3 w100',
    'beforePromotion 3 w100',
    'afterPromotion 3 w0',
  ]);
  expect(status.hookRuns?.map((h) => `${h.point} ${h.stage} ${h.result}`)).toEqual(
    once.map((r) => `${bodyOf(r).point} ${bodyOf(r).stage} ok`),
  );
  for (const r of once) {
    expect(bodyOf(r)).toMatchObject({ rolloutId: handle.workflowId, version: 'v2', attempt: 1 });
    expect(bodyOf(r).target).toEqual({ app, namespace: 'hooks' });
  }
}, 240_000);

test('a failing before hook leaves traffic untouched: rolled back, the weight never left 0', async () => {
  const queue = 'hooks-before';
  const app = 'smoke-fails';
  refused.add(`/${app}/before`);
  const worker = await startWorkerProcess(env(queue));
  const handle = await start(
    app,
    { before: [hook(app, 'before')], onRollback: [hook(app, 'onRollback')] },
    '10s',
    queue,
  );
  const result = await rolloutResult(handle);
  const status = await handle.query(statusQuery);
  expect(status.hookRuns?.[0]).toMatchObject({
    point: 'before',
    result: 'failed',
    excerpt: 'smoke test failed: 3 of 40 requests',
  });
  expect(result.outcome).toBe('rolled_back');
  expect(result.reason).toBe(
    `hook before (before) failed: 127.0.0.1:${receiver.url.split(':').pop()} answered HTTP 422`,
  );
  expect(await worker.kill('SIGTERM')).toBe(0);
  const kinds = readAlerts(path.join(dir, `${queue}.jsonl`), handle.workflowId).map((e) => e.event);
  expect(kinds).toContain('hook_failed');
  expect(kinds).not.toContain('stage_advanced');
  const live = (await fetch(`${stack.controlUrl}/state`).then((r) => r.json())) as { weight: number };
  expect(live.weight).toBe(0);
  // A refusal is not retried; onRollback ran once traffic was (still) on stable.
  expect(mine(app).map((r) => `${bodyOf(r).point} ${r.status}`)).toEqual(['before 422', 'onRollback 200']);
}, 120_000);

test('a failing afterStage hook with onFailure: approval asks a person; approve goes on', async () => {
  const queue = 'hooks-approval';
  const app = 'asks';
  refused.add(`/${app}/afterStage`);
  const worker = await startWorkerProcess(env(queue));
  const handle = await start(
    app,
    { afterStage: [hook(app, 'afterStage', { onFailure: 'approval' })] },
    '5s',
    queue,
  );
  await eventually(
    async () => (await handle.query(statusQuery)).phase === 'waiting_approval',
    60_000,
    'the question',
  );
  const waiting = await handle.query(statusQuery);
  expect(waiting.weight).toBe(10); // traffic holds at stage 1
  expect(waiting.hookQuestion).toMatchObject({ point: 'afterStage', stage: 1, hook: 'afterstage' });
  refused.delete(`/${app}/afterStage`);
  const record = await handle.executeUpdate(approveUpdate, { args: [{ identity: 'alice', stage: 1 }] });
  expect(record.kind).toBe('hook-failure-accepted');
  const result = await rolloutResult(handle);
  expect(result.outcome).toBe('promoted');
  expect(await worker.kill('SIGTERM')).toBe(0);
  const kinds = readAlerts(path.join(dir, `${queue}.jsonl`), handle.workflowId).map((e) => e.event);
  expect(kinds).toEqual(expect.arrayContaining(['hook_failed', 'approval_needed']));
}, 120_000);
