// The plan's alert routing, approval policy and deployment windows, as validatePlan reads them.
import { formatProblems, validatePlan } from '../../workflows/plan';

const stages = [
  { weight: 5, hold: '1h' },
  { weight: 50, hold: '1h', gate: { type: 'approval', approvals: { required: 2 } } },
  { weight: 100, gate: 'approval' },
];

test('alerts, approvals and windows are normalised; gates carry the policy they apply', () => {
  const r = validatePlan({
    stages,
    approvals: { approvers: ['alice', 'group:sre'], groups: { sre: ['bob', 'carol'] }, expiresAfter: '2h' },
    alerts: { routes: [{ sinks: ['slack'], kinds: ['promoted'], minSeverity: 'info' }] },
    windows: { timeZone: 'Europe/Berlin', allow: [{ days: ['mon', 'fri'], from: '09:00', to: '17:00' }] },
  });
  if (!r.ok) throw new Error(formatProblems(r.problems));
  expect(r.plan.alerts).toEqual({ routes: [{ sinks: ['slack'], kinds: ['promoted'], minSeverity: 'info' }] });
  expect(r.plan.approvals).toMatchObject({ required: 1, expiresAfterMs: 2 * 3_600_000 });
  expect(r.plan.stages[1].gate).toMatchObject({
    type: 'approval',
    policy: { required: 2, expiresAfterMs: 7_200_000 },
  });
  expect(r.plan.stages[2].gate).toMatchObject({ type: 'approval', policy: { required: 1 } });
  expect(r.plan.stages[0].gate).toEqual({ type: 'auto' });
  expect(r.plan.windows).toMatchObject({ timeZone: 'Europe/Berlin', promotion: 'windows' });
});

test('problems in the new sections are listed with their paths, typos get a did-you-mean', () => {
  const r = validatePlan({
    stages: [{ weight: 5, hold: '1h', gate: { type: 'auto', approvals: {} } }, { weight: 100 }],
    alerts: { routes: [{ sinks: ['slack', 'pagerdty'] }], extra: 1 },
    approvals: { approvers: ['group:ops'] },
    windows: { timeZone: 'Europe/Berln' },
    windws: {},
  });
  expect(r.ok).toBe(false);
  const text = r.ok ? '' : formatProblems(r.problems);
  expect(text).toContain('alerts.routes[0].sinks[1]: unknown sink "pagerdty"');
  expect(text).toContain('alerts.extra: unknown field "extra"');
  expect(text).toContain('approvals.approvers[0]: unknown group "ops"');
  expect(text).toContain(
    'windows.timeZone: unknown time zone "Europe/Berln" (did you mean "Europe/Berlin"?)',
  );
  expect(text).toContain('windws: unknown field "windws" (did you mean "windows"?)');
  expect(text).toContain('stages[0].gate.approvals: only applies to approval gates');
});

test('plans of rollouts started before strict validation refuse the new sections', () => {
  const r = validatePlan({ stages: [{ weight: 100 }], windows: { timeZone: 'UTC' } }, { strict: false });
  expect(r.ok).toBe(false);
});
