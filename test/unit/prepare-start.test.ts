// prepareStart: a start validated once, offline, with its problems typed; and the client library and the CLI
// refusing through it as they always did.
import type { Client } from '@temporalio/client';
import {
  PlanInvalidError,
  RolloutClient,
  RolloutInputError,
  TargetInvalidError,
  loadPlan,
  prepareStart,
  startProblemError,
  type StartSpec,
} from '../../client/index';
import { validateLoadedPlan } from '../../client/plan-file';

const NOW = Date.parse('2026-03-02T10:00:00Z');

const spec = (over: Partial<StartSpec> = {}): StartSpec => ({
  plan: loadPlan('quick'),
  nowMs: NOW,
  target: { app: 'checkout', namespace: 'prod' },
  version: '1.4.2',
  requestedBy: 'alice',
  ...over,
});

/** A plan with a check the local metrics provider cannot run (a query). */
const queryPlan = {
  spec: {
    analysis: { checks: [{ name: 'gpu', query: 'sum(gpu_memory_errors_total)', max: 0 }] },
    stages: [{ weight: 10, hold: '1h' }, { weight: 100 }],
  },
  source: 'gpu.yaml',
} as unknown as ReturnType<typeof loadPlan>;

describe('prepareStart', () => {
  it('prepares everything a start sends', () => {
    const r = prepareStart(spec({ image: 'reg/checkout:1.4.2', cli: 'npx canary' }));
    if (!r.ok) throw new Error(JSON.stringify(r.problems));
    expect(r.start.workflowId).toBe('canary.prod.checkout');
    expect(r.start.input).toEqual({
      target: { app: 'checkout', namespace: 'prod' },
      version: '1.4.2',
      image: 'reg/checkout:1.4.2',
      plan: loadPlan('quick').spec,
      requestedBy: 'alice',
      cli: 'npx canary',
    });
    expect(r.start.planSource).toBe('preset "quick"');
    expect(r.start.target).toMatchObject({ app: 'checkout', namespace: 'prod' });
    expect(r.start.summary).toMatch(/^prod\/checkout → 1\.4\.2.*, by alice$/);
    expect(r.start.details).toMatch(
      /^Plan: .*\n\nTarget: prod\/checkout.*\n\nImage: reg\/checkout:1\.4\.2$/s,
    );
    // `canary` is the default and is not recorded.
    const plain = prepareStart(spec({ cli: 'canary' }));
    expect(plain.ok && plain.start.input.cli).toBe(undefined);
  });

  it('returns every problem, typed, in the order a start reports them', () => {
    const r = prepareStart(
      spec({
        plan: { spec: { stages: [] } as never, source: 'bad.yaml' },
        target: { app: 'Bad_App' },
        targetSource: 'target.yaml',
        version: ' ',
        requestedBy: '',
      }),
    );
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.problems.map((p) => p.kind)).toEqual(['plan', 'target', 'version', 'requested-by']);
    expect(r.problems[0]).toMatchObject({ kind: 'plan', source: 'bad.yaml' });
    expect(r.problems[1]).toMatchObject({ kind: 'target', source: 'target.yaml' });
    expect(startProblemError(r.problems[2])).toEqual(new RolloutInputError('version is empty'));
  });

  it("refuses checks the target's metrics provider cannot measure, once the plan and the target are valid", () => {
    const r = prepareStart(spec({ plan: queryPlan, target: { app: 'checkout', metrics: { local: {} } } }));
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.problems).toEqual([
      {
        kind: 'unmeasurable',
        problems: [expect.objectContaining({ path: 'analysis.checks[0].query' })],
      },
    ]);
    const error = startProblemError(r.problems[0]);
    expect(error).toBeInstanceOf(PlanInvalidError);
    expect((error as PlanInvalidError).source).toBe('plan');
    // Against Prometheus the same plan starts.
    const prom = prepareStart(
      spec({
        plan: queryPlan,
        target: { app: 'checkout', metrics: { prometheus: { url: 'http://p:9090' } } },
      }),
    );
    expect(prom.ok).toBe(true);
  });

  it('takes a plan the caller already validated as it is', () => {
    const validated = validateLoadedPlan(loadPlan('quick'), { nowMs: NOW });
    const r = prepareStart(spec({ plan: validated }));
    expect(r.ok && r.start.plan).toBe(validated.plan);
  });
});

describe('RolloutClient.start refuses bad input before it contacts Temporal', () => {
  // A client whose every call would fail the test: nothing may be sent.
  const temporal = {
    options: { namespace: 'default' },
    workflow: new Proxy({}, { get: () => () => Promise.reject(new Error('Temporal was contacted')) }),
  } as unknown as Client;
  const client = new RolloutClient(temporal);
  const request = { app: 'checkout', version: '1.4.2', plan: 'quick', requestedBy: 'alice' };

  it.each([
    ['a bad version', { version: 'has space' }, RolloutInputError, undefined],
    ['no requester', { requestedBy: ' ' }, RolloutInputError, undefined],
    ['a bad target', { app: 'Bad_App' }, TargetInvalidError, 'target'],
    ['an invalid plan', { plan: { stages: [] } }, PlanInvalidError, 'plan object'],
    [
      'an unmeasurable plan',
      { plan: queryPlan.spec, target: { metrics: { local: {} } } },
      PlanInvalidError,
      'plan',
    ],
  ])('%s', async (_what, over, type, source) => {
    const error = await client.start({ ...request, ...over } as never).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(type);
    if (source !== undefined) expect((error as { source: string }).source).toBe(source);
  });
});
