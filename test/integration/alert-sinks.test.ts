// The alert sinks and their delivery activity against real receivers on loopback: a recording receiver for Slack
// and the signed webhook, a real Alertmanager (Debian's prometheus-alertmanager 0.25, clustering off) whose API
// the test reads back, and a receiver speaking PagerDuty's Events API v2. Covers each message's shape, retries on
// 5xx/429 and the give-up on other 4xx (as the activity classifies them for Temporal's retry policy), slow and
// unreachable receivers, secrets kept out of every error, and the configuration's fail-fast messages.
//
// The activities are called as functions: what Temporal acts on is the ApplicationFailure they throw (its type,
// nonRetryable and nextRetryDelay), asserted here; `untilDelivered` plays the retry policy's part.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import {
  buildRolloutAlert,
  type AlertKind,
  type RolloutAlert,
  type RolloutAlertInput,
} from '../../workflows/alerts/events';
import { dedupKey } from '../../activities/alerts/pagerduty';
import { routes } from '../../workflows/alerts/routing';
import { signatureHeader, verifySignature, type WebhookPayloadV1 } from '../../activities/alerts/webhook';
import { providersFromEnv } from '../../activities/factory';
import { createActivities } from '../../activities/rollout-activities';
import { describeProviders } from '../../worker/main';
import { readAlerts } from '../../harness/alerts';
import { freePort } from '../../demo/dev-server';
import { startAlertmanager, type AlertmanagerServer } from '../../harness/alertmanager';
import {
  startPagerDutyReceiver,
  startReceiver,
  type PagerDutyReceiver,
  type Receiver,
} from '../../harness/receivers';

jest.setTimeout(60_000);

const WORKFLOW_ID = 'canary-prod-checkout';
const SLACK_TOKEN = 'T000/B000/SLACKSECRETTOKEN';
const WEBHOOK_TOKEN = 'WEBHOOKPATHTOKEN';
const HMAC_KEY = 'hmac-key-that-must-stay-secret';
const ROUTING_KEY = 'R0UTINGKEY0123456789abcdefABCDEF'; // 32 characters, as PagerDuty's
const SECRETS = [SLACK_TOKEN, 'SLACKSECRETTOKEN', WEBHOOK_TOKEN, HMAC_KEY, ROUTING_KEY];

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'canary-alert-sinks-'));
let slack: Receiver;
let webhook: Receiver;
let pagerduty: PagerDutyReceiver;
let am: AlertmanagerServer;
let env: Record<string, string>;
let acts: ReturnType<typeof createActivities>;
let seq = 0;
/** Every error message a test saw, checked for secrets at the end. */
const errors: string[] = [];

function alert(kind: AlertKind, extra: Partial<RolloutAlertInput> = {}): RolloutAlert {
  seq += 1;
  return buildRolloutAlert({
    workflowId: WORKFLOW_ID,
    firstRunId: 'run-1',
    seq,
    kind,
    target: { app: 'checkout', namespace: 'prod' },
    version: 'v2.3.1',
    message: `prod/checkout v2.3.1: ${kind.replace(/_/g, ' ')}`,
    at: new Date().toISOString(),
    stage: 2,
    stages: 4,
    weight: 10,
    lastVerdict: { verdict: 'pass', checks: [{ name: 'error-rate', value: 0.4, outcome: 'pass' }] },
    temporalNamespace: 'rollouts',
    ...extra,
  });
}

/** What a failed activity attempt tells Temporal. */
async function failure(attempt: Promise<unknown>): Promise<ApplicationFailure> {
  const err = await attempt.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ApplicationFailure);
  errors.push((err as Error).message);
  return err as ApplicationFailure;
}

/** Retries as Temporal's retry policy would: until success, or a non-retryable failure. */
async function untilDelivered(run: () => Promise<void>, maxAttempts = 10): Promise<ApplicationFailure[]> {
  const failures: ApplicationFailure[] = [];
  for (let i = 0; i < maxAttempts; i++) {
    try {
      await run();
      return failures;
    } catch (err) {
      if (!(err instanceof ApplicationFailure)) throw err;
      errors.push(err.message);
      failures.push(err);
      if (err.nonRetryable) return failures;
    }
  }
  throw new Error(`not delivered after ${maxAttempts} attempts`);
}

beforeAll(async () => {
  [slack, webhook, pagerduty, am] = await Promise.all([
    startReceiver(),
    startReceiver({ secret: HMAC_KEY }),
    startPagerDutyReceiver(),
    startAlertmanager(),
  ]);
  const slackFile = path.join(tmp, 'slack-url');
  fs.writeFileSync(slackFile, `${slack.url}/services/${SLACK_TOKEN}\n`);
  const keyFile = path.join(tmp, 'webhook-secret');
  fs.writeFileSync(keyFile, `${HMAC_KEY}\n`);
  env = {
    CANARY_ALERT_LOG: path.join(tmp, 'alerts.jsonl'),
    CANARY_ALERT_SLACK_URL_FILE: slackFile,
    CANARY_ALERT_WEBHOOK_URL: `${webhook.url}/hooks/${WEBHOOK_TOKEN}`,
    CANARY_ALERT_WEBHOOK_SECRET_FILE: keyFile,
    CANARY_ALERTMANAGER_URL: am.url,
    CANARY_PAGERDUTY_ROUTING_KEY: ROUTING_KEY,
    CANARY_PAGERDUTY_URL: pagerduty.url,
    CANARY_TEMPORAL_UI_URL: 'http://temporal-ui.example:8080',
    CANARY_ALERT_TIMEOUT: '2s',
  };
  acts = createActivities(providersFromEnv(env));
});

afterAll(async () => {
  await Promise.all([slack?.close(), webhook?.close(), pagerduty?.close(), am?.stop()]);
  fs.rmSync(tmp, { recursive: true, force: true });
});

beforeEach(() => {
  for (const r of [slack, webhook, pagerduty]) r.reset();
});

test('alertSinks names the configured sinks, and the worker says which, without secrets', async () => {
  expect(await acts.alertSinks()).toEqual(['log', 'webhook', 'slack', 'alertmanager', 'pagerduty']);
  const line = describeProviders(env);
  expect(line).toContain('alerts=log,webhook,slack,alertmanager,pagerduty');
  for (const s of SECRETS) expect(line).not.toContain(s);
  expect(await createActivities(providersFromEnv({})).alertSinks()).toEqual(['log']);
});

test('Slack: a Block Kit message with app, version, stage, weight, verdict, the UI link and the commands', async () => {
  const e = alert('approval_needed', {
    message: 'prod/checkout v2.3.1 waits for approval to enter stage 2 (10%)',
  });
  await acts.deliverAlert('slack', e);
  expect(slack.requests).toHaveLength(1);
  const req = slack.requests[0];
  expect(req.path).toBe(`/services/${SLACK_TOKEN}`);
  expect(req.headers['content-type']).toBe('application/json');
  const msg = req.json as { text: string; blocks: Array<Record<string, unknown>> };
  expect(msg.text).toContain('waits for approval');
  expect(msg.blocks[0]).toEqual({
    type: 'header',
    text: { type: 'plain_text', text: ':warning: checkout v2.3.1: approval needed', emoji: true },
  });
  const text = JSON.stringify(msg.blocks);
  for (const shown of [
    '*App*\\nprod/checkout',
    '*Version*\\nv2.3.1',
    '*Stage*\\n2/4',
    '*Weight*\\n10%',
    '*Last verdict*\\npass (error-rate 0.4 pass)',
    '<http://temporal-ui.example:8080/namespaces/rollouts/workflows/canary-prod-checkout|Open the rollout in the Temporal UI>',
    'canary approve canary-prod-checkout --stage 2',
    'canary abort canary-prod-checkout --reason \\"&lt;why&gt;\\"',
    e.id,
  ]) {
    expect(text).toContain(shown);
  }
});

test('webhook: schema version 1, the event id header, and an HMAC signature that detects tampering and replays', async () => {
  const e = alert('check_breached', {
    severity: 'critical',
    check: { name: 'error-rate', severity: 'high' },
    message: 'prod/checkout v2.3.1: error-rate: 7.1 % > 5 %',
  });
  await acts.deliverAlert('webhook', e);
  expect(webhook.requests).toHaveLength(1);
  const req = webhook.requests[0];
  expect(req.path).toBe(`/hooks/${WEBHOOK_TOKEN}`);
  expect(req.signatureValid).toBe(true);
  expect(req.headers['x-canary-event-id']).toBe(e.id);
  expect(req.headers['x-canary-schema-version']).toBe('1');
  const body = req.json as WebhookPayloadV1;
  expect(body).toEqual({
    schemaVersion: 1,
    id: `${WORKFLOW_ID}/run-1/${seq}-check_breached`,
    kind: 'check_breached',
    severity: 'critical',
    at: e.at,
    message: e.message,
    app: 'checkout',
    namespace: 'prod',
    version: 'v2.3.1',
    workflowId: WORKFLOW_ID,
    rolloutKey: WORKFLOW_ID,
    temporalNamespace: 'rollouts',
    uiUrl: 'http://temporal-ui.example:8080/namespaces/rollouts/workflows/canary-prod-checkout',
    stage: 2,
    stages: 4,
    weight: 10,
    condition: 'check:error-rate',
    check: { name: 'error-rate', severity: 'high' },
    lastVerdict: { verdict: 'pass', checks: [{ name: 'error-rate', value: 0.4, outcome: 'pass' }] },
    commands: {
      status: `canary status ${WORKFLOW_ID}`,
      abort: `canary abort ${WORKFLOW_ID} --reason "<why>"`,
    },
  });

  const header = String(req.headers['x-canary-signature']);
  expect(header).toMatch(/^t=\d+,v1=[0-9a-f]{64}$/);
  expect(verifySignature(HMAC_KEY, header, req.body)).toBe(true);
  expect(verifySignature(HMAC_KEY, header, Buffer.from(req.body))).toBe(true);
  // A changed body, another key, a missing header, or a replay beyond the tolerance: refused.
  expect(verifySignature(HMAC_KEY, header, req.body.replace('critical', 'info'))).toBe(false);
  expect(verifySignature('another key', header, req.body)).toBe(false);
  expect(verifySignature(HMAC_KEY, undefined, req.body)).toBe(false);
  const t = Number(/t=(\d+)/.exec(header)![1]);
  expect(verifySignature(HMAC_KEY, header, req.body, 300, t + 301)).toBe(false);
  expect(verifySignature(HMAC_KEY, header, req.body, 300, t + 299)).toBe(true);
  // An old signature cannot be passed off with a new timestamp: the timestamp is signed too.
  const old = signatureHeader(HMAC_KEY, req.body, t - 3600);
  expect(verifySignature(HMAC_KEY, old, req.body, 300, t)).toBe(false);
  expect(verifySignature(HMAC_KEY, old.replace(`t=${t - 3600}`, `t=${t}`), req.body, 300, t)).toBe(false);
});

test('Alertmanager: labels read back from its API; approval resolves its alert, the end resolves the rest', async () => {
  const key = `rollout="${WORKFLOW_ID}"`;
  const breach = alert('check_breached', { check: { name: 'error-rate', severity: 'medium' } });
  const waiting = alert('approval_needed');
  await acts.deliverAlert('alertmanager', breach);
  await acts.deliverAlert('alertmanager', waiting);
  // A retried delivery updates the same alert: Alertmanager identifies alerts by their labels.
  await acts.deliverAlert('alertmanager', waiting);

  const open = await am.alerts(key);
  expect(open.map((a) => a.labels).sort((a, b) => a.event.localeCompare(b.event))).toEqual([
    {
      alertname: 'CanaryApprovalNeeded',
      app: 'checkout',
      namespace: 'prod',
      version: 'v2.3.1',
      event: 'approval_needed',
      severity: 'warning',
      rollout: WORKFLOW_ID,
      condition: 'approval',
    },
    {
      alertname: 'CanaryCheckBreached',
      app: 'checkout',
      namespace: 'prod',
      version: 'v2.3.1',
      event: 'check_breached',
      severity: 'warning',
      rollout: WORKFLOW_ID,
      condition: 'check:error-rate',
    },
  ]);
  const approval = open.find((a) => a.labels.event === 'approval_needed')!;
  expect(approval.annotations).toMatchObject({
    summary: waiting.message,
    event_id: waiting.id,
    stage: '2/4',
    weight: '10%',
    approve: `canary approve ${WORKFLOW_ID} --stage 2`,
    ui_url: 'http://temporal-ui.example:8080/namespaces/rollouts/workflows/canary-prod-checkout',
  });
  expect(approval.generatorURL).toBe(approval.annotations.ui_url);
  expect(Date.parse(approval.endsAt)).toBeGreaterThan(Date.now() + 23 * 3600_000);

  await acts.deliverAlert('alertmanager', alert('approved', { by: 'alice' }));
  expect((await am.alerts(key)).map((a) => a.labels.event)).toEqual(['check_breached']);

  const end = alert('rolled_back', { reason: 'error-rate 7.1 % > 5 %' });
  expect(end.ends).toBe(true);
  await acts.deliverAlert('alertmanager', end);
  expect(await am.alerts(key)).toEqual([]);
  // Resolving again (a retry) is harmless.
  await acts.deliverAlert('alertmanager', end);
});

test('PagerDuty: trigger with one dedup key per rollout and condition, resolve at the end', async () => {
  const stuck = alert('stuck', { message: 'prod/checkout: stage 2 has had no evidence for 2h' });
  await acts.deliverAlert('pagerduty', stuck);
  await acts.deliverAlert('pagerduty', stuck); // a retry
  await acts.deliverAlert('pagerduty', alert('approval_escalated'));
  expect(pagerduty.requests.map((r) => r.status)).toEqual([202, 202, 202]);
  expect(JSON.parse(pagerduty.requests[0].body)).toMatchObject({
    routing_key: ROUTING_KEY,
    event_action: 'trigger',
    dedup_key: `${WORKFLOW_ID}/stuck`,
    payload: {
      summary: stuck.message,
      source: 'prod/checkout',
      severity: 'critical',
      class: 'stuck',
      custom_details: { event_id: stuck.id, version: 'v2.3.1', stage: '2/4', weight: '10%' },
    },
    links: [{ href: 'http://temporal-ui.example:8080/namespaces/rollouts/workflows/canary-prod-checkout' }],
  });
  expect([...pagerduty.incidents.values()]).toEqual([
    expect.objectContaining({ dedupKey: `${WORKFLOW_ID}/stuck`, status: 'triggered', triggers: 2 }),
    expect.objectContaining({ dedupKey: `${WORKFLOW_ID}/approval`, status: 'triggered', triggers: 1 }),
  ]);

  await acts.deliverAlert('pagerduty', alert('promoted', { resolves: ['check:error-rate'] }));
  expect([...pagerduty.incidents.values()].map((i) => [i.dedupKey, i.status])).toEqual([
    [`${WORKFLOW_ID}/stuck`, 'resolved'],
    [`${WORKFLOW_ID}/approval`, 'resolved'],
  ]);
  const resolves = pagerduty.requests
    .slice(3)
    .map((r) => r.json as { event_action: string; dedup_key: string });
  expect(resolves.every((r) => r.event_action === 'resolve')).toBe(true);
  expect(resolves.map((r) => r.dedup_key)).toEqual(
    expect.arrayContaining([
      `${WORKFLOW_ID}/stuck`,
      `${WORKFLOW_ID}/approval`,
      `${WORKFLOW_ID}/check:error-rate`,
    ]),
  );
  expect(pagerduty.requests.every((r) => r.status === 202)).toBe(true);
  expect(dedupKey('x'.repeat(300), 'approval')).toHaveLength(255);
});

test('retries on 500 and 429 (honouring Retry-After) until delivered; the receiver keeps one copy', async () => {
  const e = alert('rollback_started');
  webhook.failNext(2, { status: 500, body: 'upstream broken' });
  const failures = await untilDelivered(() => acts.deliverAlert('webhook', e));
  expect(failures.map((f) => [f.type, f.nonRetryable])).toEqual([
    ['AlertFailed', false],
    ['AlertFailed', false],
  ]);
  expect(failures[0].message).toBe(
    `alert ${e.id} not delivered: webhook at ${webhook.host} answered 500: upstream broken`,
  );
  expect(webhook.requests).toHaveLength(3);
  expect(webhook.requests.every((r) => r.signatureValid)).toBe(true);
  expect(webhook.acceptedEventIds()).toEqual([e.id]);

  slack.failNext(1, { status: 429, headers: { 'retry-after': '7' }, body: 'rate_limited' });
  const limited = await untilDelivered(() => acts.deliverAlert('slack', alert('stepped_back')));
  expect(limited).toHaveLength(1);
  expect(limited[0]).toMatchObject({ type: 'AlertFailed', nonRetryable: false, nextRetryDelay: 7000 });

  pagerduty.failNext(1, { status: 503 });
  expect(await untilDelivered(() => acts.deliverAlert('pagerduty', alert('stuck')))).toHaveLength(1);
});

test('gives up at once on 4xx other than 429: 400, 404, 410, and a refused signature', async () => {
  slack.failNext(1, { status: 404, body: 'no_service' });
  const gone = await untilDelivered(() => acts.deliverAlert('slack', alert('rollout_started')));
  expect(gone.map((f) => [f.type, f.nonRetryable])).toEqual([['AlertRejected', true]]);
  expect(gone[0].message).toContain(`slack at ${slack.host} answered 404: no_service`);

  slack.failNext(1, { status: 410, body: 'channel_is_archived' });
  expect((await failure(acts.deliverAlert('slack', alert('rollout_started')))).type).toBe('AlertRejected');

  // PagerDuty refuses a malformed event with 400: a routing key of the wrong length.
  const badKey = createActivities(
    providersFromEnv({ CANARY_PAGERDUTY_ROUTING_KEY: 'SHORTSECRETKEY', CANARY_PAGERDUTY_URL: pagerduty.url }),
  );
  const refused = await failure(badKey.deliverAlert('pagerduty', alert('stuck')));
  expect(refused).toMatchObject({ type: 'AlertRejected', nonRetryable: true });
  expect(refused.message).toContain(`pagerduty at ${pagerduty.host} answered 400`);
  expect(refused.message).toContain('routing_key');
  expect(refused.message).not.toContain('SHORTSECRETKEY');

  // A receiver that does not accept our signature (the key was rotated on one side only).
  const wrongKey = createActivities(
    providersFromEnv({
      CANARY_ALERT_WEBHOOK_URL: `${webhook.url}/hooks/${WEBHOOK_TOKEN}`,
      CANARY_ALERT_WEBHOOK_SECRET: 'not the receiver key',
    }),
  );
  const unsigned = await failure(wrongKey.deliverAlert('webhook', alert('paused')));
  expect(unsigned).toMatchObject({ type: 'AlertRejected', nonRetryable: true });
  expect(webhook.requests.at(-1)?.signatureValid).toBe(false);

  const unknown = await failure(acts.deliverAlert('teams', alert('paused')));
  expect(unknown).toMatchObject({ type: 'AlertSinkUnknown', nonRetryable: true });
  expect(unknown.message).toContain('configured: log, webhook, slack, alertmanager, pagerduty');
});

test('a slow or unreachable receiver is a retryable failure, and delays no other sink', async () => {
  webhook.delay(3_000);
  const slow = failure(acts.deliverAlert('webhook', alert('rollback_started')));
  const started = Date.now();
  await acts.deliverAlert('slack', alert('rollback_started'));
  expect(Date.now() - started).toBeLessThan(1_000);
  const timedOut = await slow;
  expect(timedOut).toMatchObject({ type: 'AlertFailed', nonRetryable: false });
  expect(timedOut.message).toContain(`webhook at ${webhook.host} unreachable: no answer within 2000 ms`);

  const dead = `127.0.0.1:${await freePort()}`;
  const down = createActivities(
    providersFromEnv({ CANARY_ALERT_SLACK_URL: `http://${dead}/services/${SLACK_TOKEN}` }),
  );
  const refused = await failure(down.deliverAlert('slack', alert('rollback_started')));
  expect(refused).toMatchObject({ type: 'AlertFailed', nonRetryable: false });
  expect(refused.message).toContain(`slack at ${dead} unreachable: ECONNREFUSED`);
});

test('Alertmanager behind basic auth; refused credentials are a give-up that shows no password', async () => {
  const guarded = await startAlertmanager({
    basicAuth: { username: 'canary', password: 'am-password-secret' },
  });
  try {
    const ok = createActivities(
      providersFromEnv({
        CANARY_ALERTMANAGER_URL: guarded.url,
        CANARY_ALERTMANAGER_USERNAME: 'canary',
        CANARY_ALERTMANAGER_PASSWORD: 'am-password-secret',
      }),
    );
    await ok.deliverAlert('alertmanager', alert('drift_detected'));
    expect((await guarded.alerts()).map((a) => a.labels.event)).toEqual(['drift_detected']);

    const wrong = createActivities(
      providersFromEnv({
        CANARY_ALERTMANAGER_URL: guarded.url,
        CANARY_ALERTMANAGER_USERNAME: 'canary',
        CANARY_ALERTMANAGER_PASSWORD: 'wrong-password-secret',
      }),
    );
    const refused = await failure(wrong.deliverAlert('alertmanager', alert('drift_detected')));
    expect(refused).toMatchObject({ type: 'AlertRejected', nonRetryable: true });
    expect(refused.message).toContain(`alertmanager at ${guarded.url.replace('http://', '')} answered 401`);
    expect(refused.message).not.toMatch(/password-secret/);
    expect(refused.message).not.toContain(Buffer.from('canary:wrong-password-secret').toString('base64'));
  } finally {
    await guarded.stop();
  }
});

test('a secret file is read again at each delivery: a rotated Slack URL takes effect without a restart', async () => {
  const file = path.join(tmp, 'rotating-slack-url');
  fs.writeFileSync(file, `${slack.url}/services/OLD-TOKEN-0001`);
  const rotating = createActivities(providersFromEnv({ CANARY_ALERT_SLACK_URL_FILE: file }));
  await rotating.deliverAlert('slack', alert('paused'));
  fs.writeFileSync(file, `${slack.url}/services/NEW-TOKEN-0002\n`);
  await rotating.deliverAlert('slack', alert('resumed'));
  expect(slack.requests.map((r) => r.path)).toEqual(['/services/OLD-TOKEN-0001', '/services/NEW-TOKEN-0002']);
  fs.writeFileSync(file, 'not a url NEW-TOKEN-0003');
  const bad = await failure(rotating.deliverAlert('slack', alert('resumed')));
  expect(bad).toMatchObject({ type: 'AlertFailed', nonRetryable: false });
  expect(bad.message).toContain('slack: CANARY_ALERT_SLACK_URL_FILE does not hold a valid URL');
  expect(bad.message).not.toContain('NEW-TOKEN-0003');
});

test('the log sink writes rollout events that the legacy readers still parse', async () => {
  const e = alert('promoted');
  await acts.deliverAlert('log', e);
  const logged = readAlerts(env.CANARY_ALERT_LOG, WORKFLOW_ID).find((a) => a.event === 'promoted');
  expect(logged).toMatchObject({
    id: e.id,
    kind: 'promoted',
    event: 'promoted',
    ends: true,
    workflowId: WORKFLOW_ID,
  });
});

test('sendAlert (the workflow today) still delivers the legacy event to the log and the webhook only', async () => {
  const legacy = {
    event: 'rollback_started',
    severity: 'critical' as const,
    target: { app: 'checkout', namespace: 'prod' },
    version: 'v2.3.1',
    workflowId: 'canary-prod-legacy',
    message: 'legacy',
    at: new Date().toISOString(),
  };
  await acts.sendAlert(legacy);
  expect(webhook.requests.map((r) => r.json)).toEqual([legacy]);
  expect(webhook.requests[0].signatureValid).toBe(true);
  expect(slack.requests).toEqual([]);
  expect(pagerduty.requests).toEqual([]);
  expect(readAlerts(env.CANARY_ALERT_LOG, 'canary-prod-legacy')).toMatchObject([legacy]);
});

test('default routing sends each event only where it belongs', () => {
  const sinks = ['log', 'webhook', 'slack', 'alertmanager', 'pagerduty'];
  const to = (e: RolloutAlert) => sinks.filter((s) => routes(undefined, s, e));
  expect(to(alert('stage_advanced'))).toEqual(['log', 'webhook', 'slack', 'alertmanager', 'pagerduty']);
  expect(to(alert('rollout_started'))).toEqual(['log', 'webhook', 'slack']);
  expect(to(alert('check_breached', { severity: 'info' }))).toEqual(['log', 'webhook']);
  expect(to(alert('check_breached', { severity: 'warning' }))).toEqual([
    'log',
    'webhook',
    'slack',
    'alertmanager',
  ]);
  expect(to(alert('approval_escalated', { severity: 'warning' }))).toEqual(sinks);
  expect(to(alert('rollback_started'))).toEqual(sinks);
});

test('bad configuration fails at start, naming the variable and never the secret', () => {
  const fails = (e: Record<string, string>): string => {
    let message = '';
    try {
      providersFromEnv(e);
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).not.toBe('');
    errors.push(message);
    return message;
  };
  expect(fails({ CANARY_ALERT_SLACK_URL: 'hooks.slack.com/services/SLACKSECRETTOKEN' })).toBe(
    'invalid alert configuration (1 problem):\n' +
      '  CANARY_ALERT_SLACK_URL: is not a valid URL (the value is not shown: it is a secret)',
  );
  expect(fails({ CANARY_ALERT_SLACK_URL_FILE: path.join(tmp, 'no-such-file') })).toContain(
    `CANARY_ALERT_SLACK_URL_FILE: cannot read ${path.join(tmp, 'no-such-file')} (no such file)`,
  );
  expect(fails({ CANARY_ALERT_WEBHOOK_URL: `https://hooks.example.com/${WEBHOOK_TOKEN}` })).toContain(
    'CANARY_ALERT_WEBHOOK_SECRET: is not set (nor CANARY_ALERT_WEBHOOK_SECRET_FILE)',
  );
  expect(
    fails({ CANARY_ALERT_WEBHOOK_SECRET: HMAC_KEY, CANARY_ALERT_WEBHOOK_SECRET_FILE: '/etc/hostname' }),
  ).toContain('CANARY_ALERT_WEBHOOK_SECRET_FILE: set together with CANARY_ALERT_WEBHOOK_SECRET; use one');
  expect(fails({ CANARY_ALERT_WEBHOOK_URL: `ftp://hooks.example.com/${WEBHOOK_TOKEN}` })).toContain(
    'CANARY_ALERT_WEBHOOK_URL: must be an http or https URL, not ftp:',
  );
  const empty = path.join(tmp, 'empty-key');
  fs.writeFileSync(empty, '\n');
  expect(fails({ CANARY_PAGERDUTY_ROUTING_KEY_FILE: empty })).toContain(
    `CANARY_PAGERDUTY_ROUTING_KEY_FILE: ${empty} is empty`,
  );
  expect(fails({ CANARY_PAGERDUTY_URL: pagerduty.url })).toContain(
    'CANARY_PAGERDUTY_ROUTING_KEY: is not set (nor CANARY_PAGERDUTY_ROUTING_KEY_FILE) but CANARY_PAGERDUTY_URL is',
  );
  const many = fails({
    CANARY_ALERTMANAGER_URL: 'alertmanager:9093',
    CANARY_ALERTMANAGER_USERNAME: 'canary',
    CANARY_ALERT_TIMEOUT: 'soon',
    CANARY_TEMPORAL_UI_URL: 'temporal ui',
  });
  expect(many).toMatch(/^invalid alert configuration \(4 problems\):/);
  expect(many).toContain('CANARY_ALERTMANAGER_URL: must be an http or https URL, not alertmanager:');
  expect(many).toContain('CANARY_ALERTMANAGER_PASSWORD: is not set (nor CANARY_ALERTMANAGER_PASSWORD_FILE)');
  expect(many).toContain('CANARY_ALERT_TIMEOUT:');
  expect(many).toContain('CANARY_TEMPORAL_UI_URL: "temporal ui" is not a valid URL');

  // Accepted: an unsigned webhook on purpose, or on loopback.
  expect(() =>
    providersFromEnv({
      CANARY_ALERT_WEBHOOK_URL: 'https://hooks.example.com/x',
      CANARY_ALERT_WEBHOOK_UNSIGNED: 'true',
    }),
  ).not.toThrow();
  expect(() => providersFromEnv({ CANARY_ALERT_WEBHOOK_URL: 'http://127.0.0.1:9/x' })).not.toThrow();
});

test('no error seen in this file shows a secret', () => {
  expect(errors.length).toBeGreaterThan(10);
  for (const message of errors) for (const s of SECRETS) expect(message).not.toContain(s);
});
