// Alerts from the workflow (alert-sinks-v2) on the time-skipping server, against real receivers on loopback: a
// recording receiver for Slack and the signed webhook, a real Alertmanager whose API the test reads back, and a
// receiver speaking PagerDuty's Events API v2. The worker gets its sinks from the environment, as in production.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { WorkflowHandle } from '@temporalio/client';
import { historyToJSON } from '@temporalio/common/lib/proto-utils';
import type { RolloutAlert } from '../../workflows/alerts/events';
import { dedupKey } from '../../activities/alerts/pagerduty';
import { EVENT_ID_HEADER } from '../../activities/alerts/webhook';
import type { ProviderRegistry, ProviderSource } from '../../activities/factory';
import type { MetricQuery, MetricsProvider } from '../../activities/types';
import { approveUpdate, pauseUpdate, resumeUpdate, statusQuery } from '../../workflows/api';
import type { PlanSpec } from '../../workflows/plan';
import type { canaryRollout } from '../../workflows';
import { startAlertmanager, type AlertmanagerServer } from '../../harness/alertmanager';
import {
  startPagerDutyReceiver,
  startReceiver,
  type PagerDutyReceiver,
  type Receiver,
  type RecordedRequest,
} from '../../harness/receivers';
import { HOUR, MINUTE, RolloutBench } from '../../harness/rollout-env';

jest.setTimeout(600_000);

type Handle = WorkflowHandle<typeof canaryRollout>;

const SLACK_TOKEN = 'T000/B000/SLACKSECRETTOKEN';
const WEBHOOK_TOKEN = 'WEBHOOKPATHTOKEN';
const HMAC_KEY = 'hmac-key-that-must-stay-secret';
const ROUTING_KEY = 'R0UTINGKEY0123456789abcdefABCDEF';
const SECRETS = [SLACK_TOKEN, 'SLACKSECRETTOKEN', WEBHOOK_TOKEN, HMAC_KEY, ROUTING_KEY];

/** What the scripted metrics answer for the canary (stable always gets the defaults). */
const DEFAULT_VALUES: Record<string, number | null> = {
  'error-rate': 0.1,
  'latency-p95': 100,
  'request-rate': 50,
  'request-count': 10_000,
  saturation: 0.2,
};
let values: Record<string, number | null> = { ...DEFAULT_VALUES };
const scripted: MetricsProvider = {
  type: 'scripted',
  runQuery: async (q: MetricQuery) => {
    const key = q.metric ?? q.query ?? '';
    const table = q.side === 'canary' ? values : DEFAULT_VALUES;
    return key in table ? table[key] : 1;
  },
  isOnline: async () => true,
};

let bench: RolloutBench;
let slack: Receiver;
let webhook: Receiver;
let pagerduty: PagerDutyReceiver;
let am: AlertmanagerServer;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'canary-wf-alerts-'));

beforeAll(async () => {
  [slack, webhook, pagerduty, am] = await Promise.all([
    startReceiver(),
    startReceiver({ secret: HMAC_KEY }),
    startPagerDutyReceiver(),
    startAlertmanager(),
  ]);
  const keyFile = path.join(tmp, 'webhook-secret');
  fs.writeFileSync(keyFile, `${HMAC_KEY}\n`);
  bench = await RolloutBench.start({
    // The restart test hands the rollout to another worker at once (no sticky queue to time out).
    stickyCache: false,
    env: {
      CANARY_ALERT_SLACK_URL: `${slack.url}/services/${SLACK_TOKEN}`,
      CANARY_ALERT_WEBHOOK_URL: `${webhook.url}/hooks/${WEBHOOK_TOKEN}`,
      CANARY_ALERT_WEBHOOK_SECRET_FILE: keyFile,
      CANARY_ALERTMANAGER_URL: am.url,
      CANARY_PAGERDUTY_ROUTING_KEY: ROUTING_KEY,
      CANARY_PAGERDUTY_URL: pagerduty.url,
      CANARY_ALERT_TIMEOUT: '2s',
    },
    providers: (real: ProviderRegistry): ProviderSource => ({
      router: (t) => real.router(t),
      workloads: (t) => real.workloads(t),
      metrics: () => scripted,
      alerts: real.alerts,
      alertSinks: real.alertSinks,
    }),
  });
}, 180_000);

afterAll(async () => {
  await bench?.close();
  await Promise.all([slack?.close(), webhook?.close(), pagerduty?.close(), am?.stop()]);
  fs.rmSync(tmp, { recursive: true, force: true });
});

beforeEach(async () => {
  values = { ...DEFAULT_VALUES };
  for (const r of [slack, webhook, pagerduty]) r.reset();
  await bench.reset();
});

/** The webhook's accepted events of one rollout, in arrival order. */
function webhookEvents(workflowId: string): RolloutAlert[] {
  return webhook
    .accepted()
    .map((r) => r.json as RolloutAlert)
    .filter((e) => e.workflowId === workflowId);
}

function eventId(r: RecordedRequest): string {
  return String(r.headers[EVENT_ID_HEADER]);
}

/** Every id delivered exactly once to the webhook, signed, and of the form <workflowId>/<firstRunId>/<seq>-<kind>. */
function expectOncePerId(workflowId: string, firstRunId: string): RolloutAlert[] {
  const mine = webhook.requests.filter(
    (r) => (r.json as RolloutAlert | undefined)?.workflowId === workflowId,
  );
  for (const r of mine) expect(r.signatureValid).toBe(true);
  const ids = mine.filter((r) => r.status < 300).map(eventId);
  expect(new Set(ids).size).toBe(ids.length);
  const events = webhookEvents(workflowId);
  events.forEach((e) => {
    expect(e.id).toMatch(new RegExp(`^${workflowId.replace(/\./g, '\\.')}/${firstRunId}/\\d+-${e.kind}$`));
  });
  // Sequence numbers count up without gaps across the rollout (and across continue-as-new).
  // The id ends in /<seq>-<kind> (the run id before it is a UUID, which may also hold digits and dashes).
  const seqs = events.map((e) => Number(/\/(\d+)-[a-z_]+$/.exec(e.id)![1])).sort((a, b) => a - b);
  expect(seqs).toEqual(seqs.map((_, i) => seqs[0] + i));
  return events;
}

async function allRunsHistoryText(h: Handle, firstRunId: string): Promise<string> {
  const texts: string[] = [];
  let runId: string | undefined = firstRunId;
  while (runId) {
    const history: Awaited<ReturnType<Handle['fetchHistory']>> = await bench.env.client.workflow
      .getHandle(h.workflowId, runId)
      .fetchHistory();
    // Proto JSON carries payload bytes as base64: decode every `data`, so the text holds each input, result,
    // summary and failure as written.
    const decode = (v: unknown): unknown => {
      if (Array.isArray(v)) return v.map(decode);
      if (v && typeof v === 'object') {
        return Object.fromEntries(
          Object.entries(v).map(([k, x]) => [
            k,
            k === 'data' && typeof x === 'string' ? Buffer.from(x, 'base64').toString('utf8') : decode(x),
          ]),
        );
      }
      return v;
    };
    texts.push(JSON.stringify(decode(JSON.parse(historyToJSON(history)))));
    const events: NonNullable<typeof history.events> = history.events ?? [];
    runId =
      events[events.length - 1]?.workflowExecutionContinuedAsNewEventAttributes?.newExecutionRunId ??
      undefined;
  }
  return texts.join('\n');
}

const peoplePlan: PlanSpec = {
  analysis: { interval: '10m', checks: [{ name: 'error-rate', metric: 'error-rate', max: 5 }] },
  stages: [
    { weight: 5, hold: '1h' },
    {
      weight: 25,
      hold: '1h',
      gate: { type: 'approval', approvals: { remindAfter: '1h', escalateAfter: '2h' } },
    },
    { weight: 100 },
  ],
  promotion: { cleanupDelay: '0s' },
  alerts: { routes: [{ sinks: ['slack'], kinds: ['rollout_started', 'approval_escalated', 'promoted'] }] },
};

test('people events: each reaches the webhook once, signed, with a stable id; routing; resolved at the end', async () => {
  const h = await bench.startRollout('alerts-people', 'v2', peoplePlan);
  const firstRunId = h.firstExecutionRunId;
  await bench.env.sleep(25 * MINUTE);
  // Someone else changes the weights: the next analysis finds the drift and pauses.
  await fetch(`${bench.stack.controlUrl}/weight`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ weight: 7 }),
  });
  await bench.env.sleep(10 * MINUTE);
  expect((await h.query(statusQuery)).phase).toBe('paused');
  await h.executeUpdate(resumeUpdate, { args: [{ identity: 'ops' }] });
  await h.executeUpdate(pauseUpdate, { args: [{ identity: 'alice', reason: 'a closer look' }] });
  await bench.env.sleep(5 * MINUTE);
  await h.executeUpdate(resumeUpdate, { args: [{ identity: 'alice' }] });
  // The gate opens after the hold (1 h plus the paused time); it reminds after 1 h and escalates after 2 h.
  await bench.env.sleep(HOUR);
  const waiting = await h.query(statusQuery);
  expect(waiting.phase).toBe('waiting_approval');
  expect(waiting.gate?.remindAt).toBeDefined();
  // While the gate waits, Alertmanager holds the approval alert open.
  expect((await am.alerts(`rollout="${h.workflowId}"`)).map((a) => a.labels.event)).toContain(
    'approval_needed',
  );
  await bench.env.sleep(2 * HOUR + 10 * MINUTE);
  // The escalation paged PagerDuty under the rollout's approval condition.
  expect(pagerduty.incidents.get(dedupKey(h.workflowId, 'approval'))?.status).toBe('triggered');
  await h.executeUpdate(approveUpdate, { args: [{ identity: 'bob', stage: 2 }] });
  const result = await bench.result(h);
  expect(result.outcome).toBe('promoted');

  const events = expectOncePerId(h.workflowId, firstRunId);
  const kinds = events.map((e) => e.kind);
  for (const kind of [
    'rollout_started',
    'stage_advanced',
    'drift_detected',
    'paused',
    'resumed',
    'approval_needed',
    'approval_reminder',
    'approval_escalated',
    'approved',
    'promoted',
  ] as const) {
    expect(kinds).toContain(kind);
  }
  for (const once of [
    'rollout_started',
    'approval_needed',
    'approval_reminder',
    'approval_escalated',
    'approved',
  ]) {
    expect(kinds.filter((k) => k === once)).toHaveLength(1);
  }
  expect(kinds[0]).toBe('rollout_started');
  expect(kinds[kinds.length - 1]).toBe('promoted');
  const approved = events.find((e) => e.kind === 'approved')!;
  expect(approved.by).toBe('bob');
  const escalated = events.find((e) => e.kind === 'approval_escalated')!;
  expect(escalated.commands?.approve).toBe(`canary approve ${h.workflowId} --stage 2`);
  expect(escalated).toMatchObject({ stage: 2, stages: 3, weight: 5, lastVerdict: { verdict: 'pass' } });
  const paused = events.find((e) => e.kind === 'paused' && e.by === 'alice')!;
  expect(paused.reason).toBe('a closer look');
  // Reminder 1 h and escalation 2 h after the gate began waiting (workflow time). The `approval_needed` event is
  // stamped a workflow task after the wait began, and the time-skipping server's clock runs on between tasks: on
  // a loaded machine that was a second (a clean-clone CI run saw 1,023 ms), so allow a few.
  const needed = Date.parse(events.find((e) => e.kind === 'approval_needed')!.at);
  expect(
    Math.abs(Date.parse(events.find((e) => e.kind === 'approval_reminder')!.at) - needed - HOUR),
  ).toBeLessThan(5000);
  expect(Math.abs(Date.parse(escalated.at) - needed - 2 * HOUR)).toBeLessThan(5000);

  // Routing: Slack got only the kinds its rule names.
  const slackKinds = slack
    .accepted()
    .map((r) => JSON.stringify(r.json))
    .filter((b) => b.includes('alerts-people'));
  expect(slackKinds).toHaveLength(3);
  // The end resolved what Alertmanager and PagerDuty held open.
  expect(await am.alerts(`rollout="${h.workflowId}"`)).toEqual([]);
  expect(pagerduty.incidents.get(dedupKey(h.workflowId, 'approval'))?.status).toBe('resolved');

  // Secrets never reach history: not in inputs, results, summaries or failures.
  const history = await allRunsHistoryText(h, firstRunId);
  expect(history).toContain('approval_escalated');
  for (const secret of SECRETS) expect(history).not.toContain(secret);
});

const analysisPlan: PlanSpec = {
  analysis: {
    interval: '10m',
    checks: [
      { name: 'errors', metric: 'error-rate', success: { max: 1 }, abort: { max: 5, severity: 'critical' } },
      {
        name: 'latency',
        metric: 'latency-p95',
        success: { max: 500 },
        abort: { max: 800, severity: 'medium', recoverAfter: '20m', rollbackAfter: '5h' },
      },
      { name: 'throughput', metric: 'request-rate', abort: { min: 1, severity: 'low' } },
      {
        name: 'saturation',
        query: 'saturation',
        success: { max: 1 },
        onNoData: { action: 'hold', limit: 2, then: 'hold' },
      },
    ],
  },
  stages: [{ weight: 10, hold: '30m' }, { weight: 50, hold: '10h' }, { weight: 100 }],
  promotion: { cleanupDelay: '0s' },
};

test('analysis events: breaches once per episode, step-back, stuck, rollback paged and resolved', async () => {
  const h = await bench.startRollout('alerts-analysis', 'v2', analysisPlan);
  await bench.env.sleep(45 * MINUTE);
  expect((await h.query(statusQuery)).stage).toBe(2);
  values = { ...values, 'request-rate': 0, 'latency-p95': 900 };
  await bench.env.sleep(35 * MINUTE);
  expect((await h.query(statusQuery)).steppedBack).toBeDefined();
  values = { ...values, saturation: null };
  await bench.env.sleep(35 * MINUTE);
  values = { ...values, 'error-rate': 9 };
  const result = await bench.result(h);
  expect(result.outcome).toBe('rolled_back');
  expect(result.finalWeight).toBe(0);

  const events = expectOncePerId(h.workflowId, h.firstExecutionRunId);
  const kinds = events.map((e) => e.kind);
  for (const kind of [
    'check_breached',
    'stepped_back',
    'stuck',
    'rollback_started',
    'rolled_back',
  ] as const) {
    expect(kinds).toContain(kind);
  }
  // The low check breached for many rounds, but alerted once for the episode, with its plan severity.
  const throughput = events.filter((e) => e.kind === 'check_breached' && e.check?.name === 'throughput');
  expect(throughput).toHaveLength(1);
  expect(throughput[0].check).toEqual({ name: 'throughput', severity: 'low' });
  const rolledBack = events.find((e) => e.kind === 'rolled_back')!;
  expect(rolledBack.ends).toBe(true);
  expect(rolledBack.reason).toContain('errors');
  expect(kinds[kinds.length - 1]).toBe('rolled_back');
  // rollback_started paged PagerDuty; the end resolved it under the same dedup key.
  const incident = pagerduty.incidents.get(dedupKey(h.workflowId, 'rollout'));
  expect(incident?.triggers).toBeGreaterThanOrEqual(1);
  expect(incident?.status).toBe('resolved');
  expect(pagerduty.incidents.get(dedupKey(h.workflowId, 'stuck'))?.status).toBe('resolved');
  expect(await am.alerts(`rollout="${h.workflowId}"`)).toEqual([]);
});

const quickPlan: PlanSpec = {
  analysis: { interval: '10m', checks: [{ name: 'error-rate', metric: 'error-rate', max: 5 }] },
  stages: [{ weight: 10, hold: '2h' }, { weight: 100 }],
  promotion: { cleanupDelay: '0s' },
};

test('a sink that is down during a rollback delays nothing; the others get each alert once', async () => {
  const h = await bench.startRollout('alerts-down', 'v2', quickPlan);
  await bench.env.sleep(15 * MINUTE);
  slack.failNext(10_000, { status: 500, body: 'down' });
  values = { ...values, 'error-rate': 9 };
  const result = await bench.result(h);
  expect(result.outcome).toBe('rolled_back');
  expect((await bench.live()).weight).toBe(0);
  const events = expectOncePerId(h.workflowId, h.firstExecutionRunId);
  const started = events.find((e) => e.kind === 'rollback_started')!;
  const ended = events.find((e) => e.kind === 'rolled_back')!;
  // The rollback took no longer than its own steps, though Slack kept failing.
  expect(Date.parse(ended.at) - Date.parse(started.at)).toBeLessThan(MINUTE);
  expect(slack.requests.filter((r) => r.status === 500).length).toBeGreaterThan(1);
  // PagerDuty got the page once, and its resolve once.
  const pd = pagerduty.accepted().filter((r) => JSON.stringify(r.json).includes(h.workflowId));
  const actions = pd.map((r) => (r.json as { event_action: string; dedup_key: string }).event_action);
  expect(actions.filter((a) => a === 'trigger')).toHaveLength(1);
  expect(actions).toContain('resolve');
});

test('a sink that refuses (400) is not retried, and the others are not affected', async () => {
  slack.failNext(10_000, { status: 400, body: 'invalid_payload' });
  const h = await bench.startRollout('alerts-refused', 'v2', quickPlan);
  const result = await bench.result(h);
  expect(result.outcome).toBe('promoted');
  const events = expectOncePerId(h.workflowId, h.firstExecutionRunId);
  // Slack got each event once (no retries after a 400): as many requests as the webhook got events.
  const slackRequests = slack.requests.filter((r) => r.body.includes('alerts-refused'));
  expect(slackRequests.length).toBe(events.length);
  expect(slackRequests.every((r) => r.status === 400)).toBe(true);
  expect(events.map((e) => e.kind)).toEqual([
    'rollout_started',
    'stage_advanced',
    'stage_advanced',
    'promoted',
  ]);
});

test('no duplicates after a worker restart mid-rollout, and ids stay stable across continue-as-new', async () => {
  const plan: PlanSpec = {
    ...quickPlan,
    analysis: { interval: '1m', checks: [{ name: 'error-rate', metric: 'error-rate', max: 5 }] },
    stages: [{ weight: 10, hold: '2h' }, { weight: 20, hold: '1h', gate: 'approval' }, { weight: 100 }],
  };
  const h = await bench.startRollout('alerts-restart', 'v2', plan, { continueAsNewAfterEvents: 300 });
  await bench.env.sleep(HOUR);
  await bench.restartWorker(); // during stage 1's hold
  await bench.env.sleep(HOUR + 5 * MINUTE);
  await bench.restartWorker(); // while the gate waits
  await bench.env.sleep(5 * MINUTE);
  await h.executeUpdate(approveUpdate, { args: [{ identity: 'carol' }] });
  await bench.env.sleep(10 * MINUTE);
  await bench.restartWorker();
  await bench.env.sleep(10 * MINUTE);
  const result = await bench.result(h);
  expect(result.outcome).toBe('promoted');
  const events = expectOncePerId(h.workflowId, h.firstExecutionRunId);
  expect((await h.query(statusQuery)).run).toBeGreaterThan(1);
  expect(events.map((e) => e.kind)).toEqual([
    'rollout_started',
    'stage_advanced',
    'approval_needed',
    'approved',
    'stage_advanced',
    'stage_advanced',
    'promoted',
  ]);
  for (const secret of SECRETS) {
    expect(await allRunsHistoryText(h, h.firstExecutionRunId)).not.toContain(secret);
  }
});
