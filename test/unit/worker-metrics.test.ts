// The worker's metrics settings and the collector's bookkeeping (what a rollout's sink calls do to the series).
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import { loadMetricsEndpoint, loadWorkerProcessConfig, type ConfigProblem } from '../../worker/config';
import { errorKind, RolloutMetrics, SILENT_AFTER_MS } from '../../worker/metrics';

function endpoint(env: NodeJS.ProcessEnv): { value: unknown; problems: ConfigProblem[] } {
  const problems: ConfigProblem[] = [];
  return { value: loadMetricsEndpoint(env, problems), problems };
}

describe('CANARY_METRICS_PORT', () => {
  test('unset or empty: no /metrics', () => {
    expect(endpoint({})).toEqual({ value: undefined, problems: [] });
    expect(endpoint({ CANARY_METRICS_PORT: ' ' })).toEqual({ value: undefined, problems: [] });
    expect(loadWorkerProcessConfig({})).not.toHaveProperty('metrics');
  });

  test('a port: all interfaces unless CANARY_METRICS_HOST names one', () => {
    expect(endpoint({ CANARY_METRICS_PORT: '9464' }).value).toEqual({ port: 9464, host: '0.0.0.0' });
    expect(endpoint({ CANARY_METRICS_PORT: '9464', CANARY_METRICS_HOST: '127.0.0.1' }).value).toEqual({
      port: 9464,
      host: '127.0.0.1',
    });
    expect(loadWorkerProcessConfig({ CANARY_METRICS_PORT: '9100' }).metrics).toEqual({
      port: 9100,
      host: '0.0.0.0',
    });
  });

  test.each(['0', '65536', 'abc', '9464x', '-1', '94.64'])('%s is refused, naming the variable', (port) => {
    const { value, problems } = endpoint({ CANARY_METRICS_PORT: port });
    expect(value).toBeUndefined();
    expect(problems).toEqual([
      {
        variable: 'CANARY_METRICS_PORT',
        problem: `"${port}" is not a port number (1-65535), e.g. 9464; unset it to serve no /metrics`,
      },
    ]);
  });

  test('a host that is not an address is refused', () => {
    expect(endpoint({ CANARY_METRICS_PORT: '9464', CANARY_METRICS_HOST: 'my host' }).problems).toEqual([
      {
        variable: 'CANARY_METRICS_HOST',
        problem:
          '"my host" is not an IP address to listen on, e.g. 0.0.0.0 (all interfaces, the default) or 127.0.0.1',
      },
    ]);
  });
});

describe('RolloutMetrics', () => {
  async function samples(m: RolloutMetrics, name: string): Promise<Array<[Record<string, unknown>, number]>> {
    const metric = (await m.registry.getMetricsAsJSON()).find((x) => x.name === name);
    return (metric?.values ?? []).map((v) => [v.labels, v.value]);
  }
  const at = { namespace: 'shop', app: 'web' };

  test('a rollout moves through phases: counted by phase while it runs, as ended once it ends', async () => {
    const m = new RolloutMetrics();
    m.rollout('w1', { ...at, phase: 'progressing', stage: 1, weight: 10 });
    m.rollout('w2', { namespace: 'shop', app: 'api', phase: 'waiting_approval', stage: 2, weight: 10 });
    expect(await samples(m, 'canary_rollouts')).toEqual(
      expect.arrayContaining([
        [{ phase: 'progressing' }, 1],
        [{ phase: 'waiting_approval' }, 1],
        [{ phase: 'rolling_back' }, 0],
        // Waiting for a maxConcurrent slot: a zero too, so a dashboard's queue panel has a series at once.
        [{ phase: 'queued' }, 0],
      ]),
    );
    expect(await samples(m, 'canary_rollout_weight')).toEqual([
      [at, 10],
      [{ namespace: 'shop', app: 'api' }, 10],
    ]);
    // Promoted at 100 % is the soak: still running.
    m.rollout('w1', { ...at, phase: 'promoted', stage: 2, weight: 100 });
    expect(await samples(m, 'canary_rollouts')).toContainEqual([{ phase: 'promoted' }, 1]);
    expect(await samples(m, 'canary_rollouts_ended_total')).toContainEqual([{ phase: 'promoted' }, 0]);
    // Promoted with traffic back on the promoted stable: ended, its series gone.
    m.rollout('w1', { ...at, phase: 'promoted', stage: 2, weight: 0 });
    expect(await samples(m, 'canary_rollouts_ended_total')).toContainEqual([{ phase: 'promoted' }, 1]);
    expect(await samples(m, 'canary_rollout_weight')).toEqual([[{ namespace: 'shop', app: 'api' }, 10]]);
    expect(await samples(m, 'canary_rollouts')).toContainEqual([{ phase: 'promoted' }, 0]);
  });

  test("the last change is the rollout's own time; a quiet rollout that ended elsewhere is forgotten", async () => {
    const m = new RolloutMetrics();
    const t0 = Date.now();
    m.rollout('w1', { ...at, phase: 'progressing', stage: 1, weight: 10, changedAt: 1_000_000 });
    m.rollout('w2', { namespace: 'shop', app: 'api', phase: 'progressing', stage: 1, weight: 20 });
    expect(await samples(m, 'canary_rollout_last_change_timestamp_seconds')).toContainEqual([at, 1000]);
    const asked: string[] = [];
    const running = async (id: string) => {
      asked.push(id);
      return id === 'w2';
    };
    // Heard from recently: nothing is asked.
    expect(await m.prune(running, t0 + 60_000)).toEqual([]);
    expect(asked).toEqual([]);
    // Quiet for longer than SILENT_AFTER_MS: w1 is over (taken over and ended elsewhere), w2 still runs.
    expect(await m.prune(running, t0 + SILENT_AFTER_MS + 1_000)).toEqual(['w1']);
    expect(asked).toEqual(['w1', 'w2']);
    expect(await samples(m, 'canary_rollout_weight')).toEqual([[{ namespace: 'shop', app: 'api' }, 20]]);
    expect(await samples(m, 'canary_rollouts')).toContainEqual([{ phase: 'progressing' }, 1]);
    // Not counted as ended here: it ended on the other worker.
    expect(await samples(m, 'canary_rollouts_ended_total')).toContainEqual([{ phase: 'rolled_back' }, 0]);
    // Temporal unreachable: kept, asked again later.
    m.rollout('w3', { ...at, phase: 'paused', stage: 1, weight: 10 });
    await expect(
      m.prune(async () => Promise.reject(new Error('unreachable')), Date.now() + SILENT_AFTER_MS + 1),
    ).resolves.toEqual([]);
    expect(await samples(m, 'canary_rollouts')).toContainEqual([{ phase: 'paused' }, 1]);
  });

  test('decisions and breach-to-zero from the sinks', async () => {
    const m = new RolloutMetrics();
    const sinks = m.sinks().canaryMetrics;
    const info = { workflowId: 'w' } as never;
    sinks.decision.fn(info, { verdict: 'fail', action: 'rollback', severity: 'critical' });
    sinks.decision.fn(info, { verdict: 'fail', action: 'rollback', severity: 'critical' });
    sinks.breachToZero.fn(info, { ...at, ms: 350 });
    expect(sinks.rollout.callDuringReplay).toBe(false);
    expect(await samples(m, 'canary_analysis_decisions_total')).toEqual([
      [{ verdict: 'fail', action: 'rollback', severity: 'critical' }, 2],
    ]);
    const hist = await samples(m, 'canary_breach_to_zero_seconds');
    expect(hist).toContainEqual([{ le: 0.25 }, 0]);
    expect(hist).toContainEqual([{ le: 0.5 }, 1]);
  });

  test('activity outcomes: failures by provider and kind, deliveries by sink and outcome', async () => {
    const m = new RolloutMetrics();
    m.activityDone('deliverAlert', ['slack', {}], 5, undefined);
    m.activityDone('deliverAlert', ['slack', {}], 5, ApplicationFailure.create({ type: 'AlertRejected' }));
    m.activityDone('deliverAlert', ['webhook', {}], 5, ApplicationFailure.create({ type: 'AlertFailed' }));
    m.activityDone('setCanaryWeight', [{}], 5, new TypeError('x'));
    expect(await samples(m, 'canary_alert_deliveries_total')).toEqual([
      [{ sink: 'slack', outcome: 'delivered' }, 1],
      [{ sink: 'slack', outcome: 'rejected' }, 1],
      [{ sink: 'webhook', outcome: 'failed' }, 1],
    ]);
    expect(await samples(m, 'canary_activity_failures_total')).toContainEqual([
      { activity: 'setCanaryWeight', provider: 'unknown', kind: 'TypeError' },
      1,
    ]);
  });

  test('error kinds are bounded labels', () => {
    expect(errorKind(ApplicationFailure.create({ type: 'Forbidden' }))).toBe('Forbidden');
    expect(errorKind(new CancelledFailure('x'))).toBe('Cancelled');
    expect(errorKind(ApplicationFailure.create({ type: 'a b/c'.repeat(20) }))).toHaveLength(40);
    expect(errorKind('boom')).toBe('unknown');
  });
});
