// The worker's start-up checks that need no server: the provider defaults outside the demo, and the commands it
// prints for search attributes it may not register.
import { providerDefaultProblems } from '../../worker/config';
import { DEV_SERVER_COMMAND } from '../../connection/temporal';
import {
  ensureSearchAttributes,
  registerCommands,
  SearchAttributeError,
} from '../../worker/search-attributes';

const config = {
  address: 'temporal.example.com:7233',
  namespace: 'rollouts',
  taskQueue: 'q',
  shutdownGraceTimeMs: 0,
};

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

describe('search attributes', () => {
  test('one create command per attribute, with the connection flags and never the API key', () => {
    expect(registerCommands(config, [['CanaryStage', 'Int']])).toEqual([
      'temporal operator search-attribute create --address temporal.example.com:7233 --namespace rollouts --name CanaryStage --type Int',
    ]);
    const tls = registerCommands({
      ...config,
      tls: { certPath: '/c.pem', keyPath: '/c.key', caPath: '/ca.pem' },
      apiKey: 'secret-key',
    });
    expect(tls).toHaveLength(6);
    expect(tls[0]).toContain(
      '--tls --tls-cert-path /c.pem --tls-key-path /c.key --tls-ca-path /ca.pem --api-key "$TEMPORAL_API_KEY"',
    );
    expect(tls.join('\n')).not.toContain('secret-key');
  });

  test('a type the workflow does not write cannot be fixed by the worker', async () => {
    const operator = {
      listSearchAttributes: () => Promise.resolve({ customAttributes: { CanaryStage: 2 } }),
      addSearchAttributes: jest.fn(() => Promise.resolve({})),
    };
    const err = await ensureSearchAttributes(operator, config).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SearchAttributeError);
    expect((err as Error).message).toContain(
      'CanaryStage is registered as Keyword, the rollout workflow writes Int',
    );
    expect(operator.addSearchAttributes).not.toHaveBeenCalled();
  });

  test('the dev-server hint names the binary setup installs and every search attribute', () => {
    expect(DEV_SERVER_COMMAND).toBe(
      '.tools/py/bin/temporal server start-dev --search-attribute CanaryApp=Keyword --search-attribute ' +
        'CanaryVersion=Keyword --search-attribute CanaryPhase=Keyword --search-attribute CanaryStage=Int ' +
        '--search-attribute CanaryWeight=Int --search-attribute CanaryRelease=Keyword',
    );
  });
});
