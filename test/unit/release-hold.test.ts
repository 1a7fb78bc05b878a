// A release member paused by its release's hold (onFailure: rollback-member) is resumed by the release alone: a
// person's resume is refused with the release and its two answers (RolloutView.releaseHoldRefusal).
import type { RolloutContext } from '../../workflows/machine/context';
import { initialState, type RolloutState } from '../../workflows/machine/state';
import { RolloutView } from '../../workflows/machine/views';
import { validatePlan } from '../../workflows/plan';

const checked = validatePlan(
  { analysis: { interval: '10s', checks: [] }, stages: [{ weight: 20, hold: '1h' }, { weight: 100 }] },
  { strict: true, limits: true },
);
if (!checked.ok) throw new Error('invalid plan');
const plan = checked.plan;

const ctx = (release?: RolloutContext['release']): RolloutContext => ({
  plan,
  target: { app: 'payments', namespace: 'shop' },
  version: 'v2',
  requestedBy: 'ci',
  cli: 'canary',
  workflowId: 'canary.shop.payments',
  firstRunId: 'run-1',
  temporalNamespace: 'default',
  flags: { routingLifecycle: true, judgeV2: false, alertsV2: true },
  historyLimit: 4000,
  ...(release ? { release } : {}),
});
const member = { name: 'alone', identity: 'release:alone', member: 'payments' };
const paused = (by: string, reason?: string): RolloutState => ({
  ...initialState(),
  stageEntered: true,
  weight: 20,
  pausedSince: 1_000,
  pausedBy: by,
  ...(reason ? { pauseReason: reason } : {}),
});
const HOLD = 'release alone holds: member checkout rolled back: p95 spike';

test("a member the release's hold paused: a person's resume is refused, naming the release and its two answers", () => {
  const refusal = new RolloutView(paused('release:alone', HOLD), ctx(member)).releaseHoldRefusal('alice');
  expect(refusal).toBe(
    `cannot resume: this rollout is member payments of release alone, which holds it (${HOLD}); answer the ` +
      'release: `canary release approve alone` goes on without the members that rolled back, ' +
      '`canary release abort alone --reason ...` rolls every member back',
  );
});

test('the release itself resumes it (a person went on without the failed members)', () => {
  expect(
    new RolloutView(paused('release:alone', HOLD), ctx(member)).releaseHoldRefusal('release:alone'),
  ).toBeUndefined();
});

test.each<[string, RolloutState, RolloutContext]>([
  ['paused by a person (a release pause carries their name)', paused('alice', 'lunch'), ctx(member)],
  ['paused by drift detection', paused('drift detection', 'the canary weight is 0%'), ctx(member)],
  ['not paused', { ...initialState(), stageEntered: true, weight: 20 }, ctx(member)],
  [
    'no release (every rollout before releases, and every rollout started alone)',
    paused('release:alone', HOLD),
    ctx(),
  ],
])('nothing to refuse: %s', (_what, s, c) => {
  expect(new RolloutView(s, c).releaseHoldRefusal('alice')).toBeUndefined();
});

test("the paused alert of a member the release's hold paused offers the release's answers, not `canary resume`", () => {
  expect(
    new RolloutView(paused('release:alone', HOLD), ctx(member)).releaseHoldCommands('release:alone'),
  ).toEqual({
    status: 'canary status canary.shop.payments',
    resume: 'canary release approve alone',
    abort: 'canary release abort alone --reason "<why>"',
  });
  // Any other pause keeps the rollout's own commands (buildRolloutAlert's defaults).
  expect(new RolloutView(paused('alice', 'lunch'), ctx(member)).releaseHoldCommands('alice')).toBeUndefined();
  expect(
    new RolloutView(paused('release:alone', HOLD), ctx()).releaseHoldCommands('release:alone'),
  ).toBeUndefined();
});
