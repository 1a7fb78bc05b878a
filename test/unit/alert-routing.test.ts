// The pure half of alerting, which the workflow imports: event building (ids, conditions, resolutions, commands,
// links) and routing (defaults and plan rules).
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  ALERT_KINDS,
  alertEventId,
  buildRolloutAlert,
  conditionFor,
  DEFAULT_SEVERITY,
  rolloutCommands,
  rolloutUiUrl,
  severityForCheck,
  type AlertKind,
  type RolloutAlert,
} from '../../workflows/alerts/events';
import {
  ALERT_SINK_NAMES,
  defaultRoute,
  routes,
  validateAlertRoutes,
  type AlertRoute,
} from '../../workflows/alerts/routing';

const ID = 'canary-prod-checkout';

function alert(kind: AlertKind, extra: Partial<RolloutAlert> = {}): RolloutAlert {
  return buildRolloutAlert({
    workflowId: ID,
    firstRunId: 'r1',
    seq: 7,
    kind,
    target: { app: 'checkout', namespace: 'prod' },
    version: 'v2',
    message: kind,
    at: '2025-03-07T17:00:00.000Z',
    stage: 3,
    ...extra,
  });
}

test('the alert model (workflows/alerts/) is workflow-safe: no imports but types and each other', () => {
  for (const file of ['kinds.ts', 'events.ts', 'routing.ts']) {
    const source = fs.readFileSync(path.join(__dirname, '../../workflows/alerts', file), 'utf8');
    const imports = [...source.matchAll(/^(?:import|export)\s+(type\s+)?[^;]*?from\s+'([^']+)'/gms)];
    // kinds.ts is the leaf the others and workflows/types.ts build on: it imports nothing.
    expect(imports.length > 0).toBe(file !== 'kinds.ts');
    for (const [, typeOnly, from] of imports) {
      expect(typeOnly !== undefined || from === './events' || from === './kinds').toBe(true);
    }
    expect(source).not.toMatch(/require\(|node:|process\.|Date\.now|Math\.random/);
  }
});

test('an event has a stable id, a default severity, condition, resolutions and commands', () => {
  const e = alert('approval_needed');
  expect(e).toMatchObject({
    id: `${ID}/r1/7-approval_needed`,
    kind: 'approval_needed',
    event: 'approval_needed',
    severity: 'warning',
    rolloutKey: ID,
    condition: 'approval',
    commands: {
      status: `canary status ${ID}`,
      approve: `canary approve ${ID} --stage 3`,
      abort: `canary abort ${ID} --reason "<why>"`,
    },
  });
  expect(e.resolves).toBeUndefined();
  expect(e.ends).toBeUndefined();
  expect(alertEventId(ID, 'r1', 7, 'approval_needed')).toBe(e.id);
  expect(buildRolloutAlert({ ...e, firstRunId: 'r1', seq: 7 }).id).toBe(e.id);

  expect(alert('approved')).toMatchObject({
    condition: 'approval',
    resolves: ['approval'],
    severity: 'info',
  });
  expect(alert('stage_advanced').resolves).toEqual(['approval', 'stuck']);
  expect(alert('resumed')).toMatchObject({
    resolves: ['paused', 'drift'],
    commands: { status: `canary status ${ID}` },
  });
  expect(alert('paused').commands?.resume).toBe(`canary resume ${ID}`);
  expect(alert('rolled_back')).toMatchObject({ ends: true, severity: 'critical', condition: 'rollout' });
  expect(alert('rolled_back').commands).toEqual({ status: `canary status ${ID}` });
  expect(alert('promoted', { resolves: ['check:error-rate'] })).toMatchObject({
    ends: true,
    resolves: ['check:error-rate'],
  });
  expect(alert('check_breached', { check: { name: 'p95' } }).condition).toBe('check:p95');
  expect(conditionFor('check_breached')).toBe('check:unknown');
  expect(alert('stuck', { severity: 'warning' }).severity).toBe('warning');
  for (const kind of ALERT_KINDS) expect(DEFAULT_SEVERITY[kind]).toBeDefined();
  expect(['low', 'medium', 'high', 'critical'].map((s) => severityForCheck(s as 'low'))).toEqual([
    'warning',
    'warning',
    'critical',
    'critical',
  ]);
  expect(rolloutCommands(ID, 'approval_reminder')).toMatchObject({ approve: `canary approve ${ID}` });
});

test('the Temporal UI link: a base URL or a template', () => {
  expect(rolloutUiUrl('https://ui.example/', 'prod ns', 'canary-a/b')).toBe(
    'https://ui.example/namespaces/prod%20ns/workflows/canary-a%2Fb',
  );
  expect(rolloutUiUrl('https://cloud.example/{namespace}/wf/{workflowId}', 'ns', ID)).toBe(
    `https://cloud.example/ns/wf/${ID}`,
  );
});

test('default routing per sink', () => {
  const table = (e: RolloutAlert) => ALERT_SINK_NAMES.filter((s) => defaultRoute(s, e));
  expect(table(alert('rollout_started'))).toEqual(['log', 'webhook', 'slack']);
  expect(table(alert('check_breached', { severity: 'info' }))).toEqual(['log', 'webhook']);
  expect(table(alert('stepped_back'))).toEqual(['log', 'webhook', 'slack', 'alertmanager']);
  expect(table(alert('approval_escalated', { severity: 'warning' }))).toEqual([...ALERT_SINK_NAMES]);
  expect(table(alert('stuck'))).toEqual([...ALERT_SINK_NAMES]);
  // Resolutions reach the stateful sinks whatever their severity.
  expect(table(alert('approved'))).toEqual([...ALERT_SINK_NAMES]);
  expect(table(alert('promoted'))).toEqual([...ALERT_SINK_NAMES]);
  // A sink this file does not know gets everything.
  expect(defaultRoute('teams', alert('rollout_started'))).toBe(true);
});

test('plan rules replace the defaults of the sinks they name; stateful sinks still get resolutions', () => {
  const rules: AlertRoute[] = [
    { sinks: ['slack'], kinds: ['approval_needed', 'rolled_back'] },
    { sinks: ['pagerduty'], minSeverity: 'warning', kinds: ['approval_needed'] },
  ];
  expect(routes(rules, 'slack', alert('approval_needed'))).toBe(true);
  expect(routes(rules, 'slack', alert('rollout_started'))).toBe(false);
  expect(routes(rules, 'pagerduty', alert('approval_needed'))).toBe(true);
  expect(routes(rules, 'pagerduty', alert('stuck'))).toBe(false);
  expect(routes(rules, 'pagerduty', alert('rolled_back'))).toBe(true);
  expect(routes(rules, 'slack', alert('approved'))).toBe(false);
  // Not named by any rule: defaults.
  expect(routes(rules, 'alertmanager', alert('stepped_back'))).toBe(true);
  expect(routes(rules, 'alertmanager', alert('rollout_started'))).toBe(false);
  expect(routes([], 'slack', alert('rollout_started'))).toBe(true);
  const everything: AlertRoute[] = [{ sinks: ['*'], minSeverity: 'critical' }];
  expect(ALERT_SINK_NAMES.filter((s) => routes(everything, s, alert('stepped_back')))).toEqual([]);
  expect(ALERT_SINK_NAMES.filter((s) => routes(everything, s, alert('rollback_started')))).toEqual([
    ...ALERT_SINK_NAMES,
  ]);
});

test('routing rules are validated with every problem listed', () => {
  expect(validateAlertRoutes([{ sinks: ['slack'], kinds: ['stuck'], minSeverity: 'warning' }])).toEqual([]);
  expect(validateAlertRoutes({})).toEqual([
    { path: 'alerts.routes', message: expect.stringMatching(/list/) },
  ]);
  expect(
    validateAlertRoutes([{ sinks: ['teams'], kinds: ['stuk'], minSeverity: 'high', sink: 'x' }, 3], 'routes'),
  ).toEqual([
    { path: 'routes[0].sink', message: 'unknown field "sink"' },
    {
      path: 'routes[0].sinks[0]',
      message: expect.stringMatching(/^unknown sink "teams"; known: log, webhook/),
    },
    { path: 'routes[0].kinds[0]', message: expect.stringMatching(/^unknown event kind "stuk"/) },
    { path: 'routes[0].minSeverity', message: 'must be info, warning, critical' },
    { path: 'routes[1]', message: expect.stringMatching(/must be an object/) },
  ]);
});
