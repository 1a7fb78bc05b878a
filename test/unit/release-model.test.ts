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
    'rollback-member (not built yet)',
    { release: 'r', members: [member('a')], onFailure: 'rollback-member' },
    'onFailure',
    'not built yet',
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
