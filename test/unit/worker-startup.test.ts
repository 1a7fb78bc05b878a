// The worker's start-up checks that need no server: the provider defaults outside the demo.
import { providerDefaultProblems } from '../../worker/config';

describe('provider defaults outside the demo', () => {
  test('none set: each is named with its choices and the demo opt-in', () => {
    const problems = providerDefaultProblems({});
    expect(problems.map((p) => p.variable)).toEqual(['CANARY_ROUTER', 'CANARY_WORKLOADS', 'CANARY_METRICS']);
    expect(problems[0].problem).toContain('set it to istio, nginx, gatewayAPI, smi or replicas');
    expect(problems[2].problem).toContain('prometheus (with CANARY_PROMETHEUS_URL)');
    for (const p of problems) expect(p.problem).toContain('CANARY_PROVIDERS=local');
  });

  test('every default chosen (local too, when named): nothing to say', () => {
    expect(
      providerDefaultProblems({
        CANARY_ROUTER: 'istio',
        CANARY_WORKLOADS: 'kubernetes',
        CANARY_METRICS: 'local',
      }),
    ).toEqual([]);
  });

  test('CANARY_PROVIDERS=local keeps the demo stack as every unset default; another value is refused', () => {
    expect(providerDefaultProblems({ CANARY_PROVIDERS: 'local' })).toEqual([]);
    expect(providerDefaultProblems({ CANARY_PROVIDERS: 'LOCAL', CANARY_ROUTER: 'nginx' })).toEqual([]);
    expect(providerDefaultProblems({ CANARY_PROVIDERS: 'demo' })).toEqual([
      {
        variable: 'CANARY_PROVIDERS',
        problem: `"demo" is not known; local (the demo's stack as every unset default) is the only value, or unset it`,
      },
    ]);
  });
});
