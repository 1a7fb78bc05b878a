// The controller's reading of a CanaryRollout: the same validation as `canary validate`, every problem by its path
// in the object, the object's namespace and name as the target's defaults; and the status it mirrors (conditions,
// the events worth telling).
import { checkSpec } from '../../controller/spec';
import { mergeConditions, phaseConditions, transitionEvent } from '../../controller/status';
import type { CanaryRollout } from '../../controller/crd';
import type { RolloutStatus } from '../../workflows/types';

const object = (spec: Partial<CanaryRollout['spec']>, name = 'checkout'): CanaryRollout => ({
  apiVersion: 'canary.temporal.io/v1alpha1',
  kind: 'CanaryRollout',
  metadata: { name, namespace: 'shop', uid: 'u1', generation: 1 },
  spec: {
    target: { traffic: { nginx: {} } },
    plan: { preset: 'quick' },
    version: 'v2',
    ...spec,
  } as CanaryRollout['spec'],
});
const noConfigMaps = () => Promise.resolve(undefined);

test('a valid spec: the target defaults to the object (namespace and app), requested by the object', async () => {
  const r = await checkSpec(object({}), noConfigMaps);
  if (!r.ok) throw new Error(JSON.stringify(r.problems));
  expect(r.start.workflowId).toBe('canary.shop.checkout');
  expect(r.start.input).toMatchObject({ version: 'v2', requestedBy: 'CanaryRollout shop/checkout' });
});

test('every problem by its path in the object: inline plan, target, version', async () => {
  const r = await checkSpec(
    object({
      plan: { inline: { stages: [{ weight: 200, hold: 'x' }] } },
      target: { traffic: { nginx: { ingres: 'a' } } },
      version: 'v 2',
    }),
    noConfigMaps,
  );
  expect(r.ok).toBe(false);
  const paths = r.ok ? [] : r.problems.map((p) => p.path);
  expect(paths).toEqual(
    expect.arrayContaining([
      'spec.plan.inline.stages[0].weight',
      'spec.plan.inline.stages[0].hold',
      'spec.target.traffic.nginx.ingres',
      'spec.version',
    ]),
  );
});

test('a target in another namespace is refused: an object only rolls out in its own namespace', async () => {
  const r = await checkSpec(object({ target: { namespace: 'prod', traffic: { nginx: {} } } }), noConfigMaps);
  expect(r.ok ? [] : r.problems).toEqual([
    expect.objectContaining({ path: 'spec.target.namespace', message: expect.stringContaining('"shop"') }),
  ]);
});

test("a plan from a ConfigMap: read in the object's namespace; missing or broken is named", async () => {
  const plan = 'stages:\n  - weight: 10\n    hold: 1m\n  - weight: 100\n';
  const reads: string[] = [];
  const read = (ns: string, name: string, key: string) => {
    reads.push(`${ns}/${name}/${key}`);
    return Promise.resolve(name === 'plans' ? (key === 'good' ? plan : 'stages: [') : undefined);
  };
  const ok = await checkSpec(object({ plan: { configMapRef: { name: 'plans', key: 'good' } } }), read);
  expect(ok.ok).toBe(true);
  const broken = await checkSpec(object({ plan: { configMapRef: { name: 'plans', key: 'bad' } } }), read);
  expect(broken.ok ? '' : broken.problems[0].message).toContain('is not valid YAML');
  const missing = await checkSpec(object({ plan: { configMapRef: { name: 'nope', key: 'x' } } }), read);
  expect(missing.ok ? '' : missing.problems[0]).toEqual({
    path: 'spec.plan.configMapRef',
    message: 'ConfigMap shop/nope key x does not exist',
  });
  expect(reads).toEqual(['shop/plans/good', 'shop/plans/bad', 'shop/nope/x']);
});

const status = (phase: RolloutStatus['phase'], extra: Partial<RolloutStatus> = {}) =>
  ({
    workflowId: 'w',
    app: 'a',
    namespace: 'n',
    version: 'v2',
    phase,
    stage: 1,
    stageCount: 3,
    weight: 10,
    ...extra,
  }) as RolloutStatus;

test('conditions follow the phase; an unchanged condition keeps its transition time', () => {
  const t0 = new Date('2026-01-01T00:00:00Z');
  const first = mergeConditions(undefined, phaseConditions(status('waiting_approval')), 1, t0);
  expect(first.find((c) => c.type === 'WaitingForApproval')).toMatchObject({ status: 'True' });
  const later = mergeConditions(
    first,
    phaseConditions(status('waiting_approval')),
    1,
    new Date('2026-01-02T00:00:00Z'),
  );
  expect(later.find((c) => c.type === 'WaitingForApproval')!.lastTransitionTime).toBe(t0.toISOString());
  const promoted = mergeConditions(later, phaseConditions(status('promoted')), 1);
  expect(promoted.filter((c) => c.status === 'True').map((c) => c.type)).toEqual(['Promoted']);
});

test('events: a phase change, a weight change, nothing otherwise', () => {
  expect(
    transitionEvent({ phase: 'progressing', stage: 1, weight: 10 }, status('rolled_back')),
  ).toMatchObject({
    reason: 'RolledBack',
    type: 'Warning',
  });
  expect(transitionEvent({ phase: 'progressing', stage: 1, weight: 5 }, status('progressing'))).toMatchObject(
    {
      reason: 'WeightSet',
    },
  );
  expect(
    transitionEvent({ phase: 'progressing', stage: 1, weight: 10 }, status('progressing')),
  ).toBeUndefined();
});
