// The release file's shape and relations (workflows/release-model.ts) and how the client prepares its members.
import * as path from 'node:path';
import { prepareRelease } from '../../client/release';
import { findCycle, validateReleaseShape } from '../../workflows/release-model';

const target = (app: string) => ({ app, namespace: 'shop' });
const member = (id: string, extra: object = {}) => ({
  id,
  target: target(id),
  version: 'v2',
  plan: 'default',
  ...extra,
});
const options = {
  requestedBy: 'ci',
  nowMs: Date.parse('2026-12-01T10:00:00Z'),
  taskQueue: 'canary-rollouts',
};

test('a cycle is named along its members', () => {
  expect(
    findCycle([
      { id: 'a', after: ['c'] },
      { id: 'b', after: ['a'] },
      { id: 'c', after: ['b'] },
    ]),
  ).toEqual(['a', 'b', 'c', 'a']);
  expect(findCycle([{ id: 'a' }, { id: 'b', after: ['a'] }])).toBeUndefined();
});

test.each<[string, object, string, string]>([
  ['no members', { release: 'r', members: [] }, 'members', 'at least one member'],
  ['a bad name', { release: 'R!', members: [member('a')] }, 'release', 'lowercase'],
  ['an unknown field', { release: 'r', members: [member('a')], stages: [] }, 'stages', 'not a release field'],
  [
    'a duplicate id',
    { release: 'r', members: [member('a'), member('a')] },
    'members[1].id',
    "members[0]'s id",
  ],
  [
    'after itself',
    { release: 'r', members: [member('a', { after: ['a'] })] },
    'members[0].after[0]',
    'itself',
  ],
  [
    'after a later wave',
    { release: 'r', members: [member('a', { after: ['b'] }), member('b', { wave: 2 })] },
    'members[0].after[0]',
    'in wave 2',
  ],
  [
    'a bad bake',
    { release: 'r', members: [member('a')], waves: [{ wave: 1, bake: 'soon' }] },
    'waves[0].bake',
    '',
  ],
  [
    'an unknown onFailure',
    { release: 'r', members: [member('a')], onFailure: 'hold' },
    'onFailure',
    'rollback-all (the default) or rollback-member',
  ],
  [
    'a workerCheck that is not an object',
    { release: 'r', members: [member('a')], workerCheck: '30s' },
    'workerCheck',
    '{ every: duration, goneAfter: duration }',
  ],
  [
    'a workerCheck every under a second',
    { release: 'r', members: [member('a')], workerCheck: { every: '0s' } },
    'workerCheck.every',
    'at least 1s',
  ],
  [
    'a workerCheck goneAfter shorter than every',
    { release: 'r', members: [member('a')], workerCheck: { every: '1m', goneAfter: '30s' } },
    'workerCheck.goneAfter',
    'at least every',
  ],
  [
    'an unknown workerCheck field',
    { release: 'r', members: [member('a')], workerCheck: { interval: '1m' } },
    'workerCheck.interval',
    'not a field (every, goneAfter)',
  ],
])('%s is refused at its path', (_what, doc, at, message) => {
  const r = validateReleaseShape(doc);
  expect(r.ok).toBe(false);
  if (r.ok) return;
  expect(r.problems.find((p) => p.path === at)?.message ?? '').toContain(message);
});

test('promotion: together gives every member a promotion gate the release approves; a member with its own is refused', () => {
  const ok = prepareRelease(
    { release: 'r', members: [member('a'), member('b', { after: ['a'], cluster: 'eu-west' })] },
    '.',
    options,
  );
  expect(ok.ok).toBe(true);
  if (!ok.ok) return;
  expect(ok.release.workflowId).toBe('canary-release.r');
  expect(ok.release.input.members.map((m) => m.input.plan.promotion?.gate)).toEqual(['approval', 'approval']);
  expect(ok.release.input.members[1].taskQueue).toBe('canary-rollouts.eu-west');
  expect(ok.release.clusterQueues).toEqual([{ cluster: 'eu-west', taskQueue: 'canary-rollouts.eu-west' }]);
  expect(ok.release.input.members[1].cluster).toBe('eu-west');
  // Without workerCheck the workflow takes the defaults: the input carries nothing.
  expect(ok.release.input.workerCheck).toBeUndefined();

  const own = prepareRelease(
    {
      release: 'r',
      members: [
        member('a', {
          plan: { stages: [{ weight: 10, hold: '1h' }, { weight: 100 }], promotion: { gate: 'approval' } },
        }),
      ],
    },
    '.',
    options,
  );
  expect(own.ok).toBe(false);
  if (!own.ok)
    expect(own.problems[0]).toMatchObject({
      path: 'members[0].plan',
      message: expect.stringContaining('own promotion gate'),
    });
});

test('a member plan file is read relative to the release file, and an unreadable one is named under the member', () => {
  const r = prepareRelease(
    { release: 'r', members: [member('a', { plan: 'missing-plan.yaml' })] },
    path.join(__dirname, 'nowhere'),
    options,
  );
  expect(r.ok).toBe(false);
  if (!r.ok) expect(r.problems[0].path).toBe('members[0].plan');
});

describe('after: naming a stage ({ member, stage })', () => {
  test('keeps the member in after (cycles, waves, rollback order) and the stage in afterStage', () => {
    const r = validateReleaseShape({
      release: 'r',
      members: [member('a'), member('b'), member('c', { after: [{ member: 'a', stage: 2 }, 'b'] })],
    });
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.spec.members[2]).toMatchObject({ after: ['a', 'b'], afterStage: { a: 2 } });
    // A plain after: sets no afterStage (the workflow input of such releases is what it was).
    expect(r.spec.members[1]).not.toHaveProperty('afterStage');
  });

  test.each<[string, unknown, string, string]>([
    ['stage 0', { member: 'a', stage: 0 }, 'members[1].after[0].stage', 'from 1'],
    ['a stage that is not a number', { member: 'a', stage: 'two' }, 'members[1].after[0].stage', 'from 1'],
    [
      'an unknown field',
      { member: 'a', stage: 1, when: 'entered' },
      'members[1].after[0].when',
      'not a field',
    ],
    ['no member', { stage: 1 }, 'members[1].after[0]', 'member id or { member: id, stage: N }'],
    ['an unknown member', { member: 'x', stage: 1 }, 'members[1].after[0]', 'names no member: "x"'],
    ['a member named twice', 'a', 'members[1].after[1]', 'names "a" twice'],
  ])('%s is refused at its path', (_what, dep, at, message) => {
    const after = dep === 'a' ? [{ member: 'a', stage: 1 }, 'a'] : [dep];
    const r = validateReleaseShape({ release: 'r', members: [member('a'), member('b', { after })] });
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.problems.find((p) => p.path === at)?.message ?? '').toContain(message);
  });

  test('a cycle through a named stage is still a cycle', () => {
    const r = validateReleaseShape({
      release: 'r',
      members: [member('a', { after: [{ member: 'b', stage: 1 }] }), member('b', { after: ['a'] })],
    });
    expect(r.ok).toBe(false);
    if (!r.ok)
      expect(r.problems.map((p) => p.message).join('\n')).toMatch(/cycle: a → b → a|cycle: b → a → b/);
  });

  test("the stage must be one of that member's plan's stages (exit 2, under the member that names it)", () => {
    const plan = { stages: [{ weight: 10, hold: '1h' }, { weight: 50, hold: '1h' }, { weight: 100 }] };
    const ok = prepareRelease(
      { release: 'r', members: [member('a', { plan }), member('b', { after: [{ member: 'a', stage: 3 }] })] },
      '.',
      options,
    );
    expect(ok.ok).toBe(true);
    if (ok.ok) expect(ok.release.input.members[1].afterStage).toEqual({ a: 3 });
    const bad = prepareRelease(
      {
        release: 'r',
        members: [member('a', { plan }), member('b', { after: [{ member: 'a', stage: 4 }] })],
      },
      '.',
      options,
    );
    expect(bad.ok).toBe(false);
    if (!bad.ok)
      expect(bad.problems).toEqual([
        { path: 'members[1].after[0].stage', message: 'b: a has 3 stages: stage 4 is not one of them' },
      ]);
  });
});

test('onFailure: rollback-member is taken as it is (the workflow holds the others and asks a person)', () => {
  const r = validateReleaseShape({ release: 'r', members: [member('a')], onFailure: 'rollback-member' });
  expect(r.ok && r.spec.onFailure).toBe('rollback-member');
});

test('workerCheck: how often the release looks at its clusters, and how long without a poll counts as gone', () => {
  const r = prepareRelease(
    {
      release: 'r',
      members: [member('a', { cluster: 'eu-west' })],
      workerCheck: { goneAfter: '90s' },
    },
    '.',
    options,
  );
  expect(r.ok).toBe(true);
  if (r.ok) expect(r.release.input.workerCheck).toEqual({ everyMs: 30_000, goneAfterMs: 90_000 });
});
