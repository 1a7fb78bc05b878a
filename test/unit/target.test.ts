// The per-rollout target: validation (the same pure code the workflow runs), defaults derived from the app,
// and how the CLI assembles a target from a plan file, a target file and flags.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { targetFromOptions, UsageError } from '../../client/cli';
import { loadPlan, loadTargetFile } from '../../client/plan-file';
import { describeTarget, formatTargetProblems, validateTarget } from '../../workflows/target';

let tmp: string;
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'canary-target-'));
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

function ok(spec: unknown, defaults?: { app?: string; namespace?: string }) {
  const v = validateTarget(spec, defaults);
  if (!v.ok) throw new Error(formatTargetProblems(v.problems));
  return v.target;
}

function problems(spec: unknown): string[] {
  const v = validateTarget(spec);
  if (v.ok) throw new Error('expected problems');
  return v.problems.map((p) => `${p.path}: ${p.message}`);
}

describe('validateTarget', () => {
  test('app and namespace alone: the worker defaults apply', () => {
    expect(ok({ app: 'checkout' })).toEqual({ app: 'checkout', namespace: 'default' });
    expect(ok({}, { app: 'shop', namespace: 'prod' })).toEqual({ app: 'shop', namespace: 'prod' });
  });

  test('the issue example: Deployment and istio with defaults derived from names', () => {
    expect(
      ok({
        namespace: 'prod',
        workload: { kind: 'Deployment', name: 'checkout', container: 'app' },
        traffic: { istio: { virtualService: 'checkout', routes: ['primary'], destinationRule: 'checkout' } },
      }),
    ).toEqual({
      app: 'checkout',
      namespace: 'prod',
      workload: {
        kind: 'Deployment',
        name: 'checkout',
        canaryName: 'checkout-canary',
        container: 'app',
        versionLabel: 'version',
        progressDeadlineMs: 600_000,
      },
      traffic: {
        router: 'istio',
        virtualService: 'checkout',
        routes: ['primary'],
        destinationRule: 'checkout',
        stableSubset: 'stable',
        canarySubset: 'canary',
      },
    });
  });

  test('every router with its defaults', () => {
    const t = (traffic: object) => ok({ app: 'shop', traffic }).traffic;
    expect(t({ nginx: {} })).toEqual({ router: 'nginx', ingress: 'shop', canaryIngress: 'shop-canary' });
    expect(t({ nginx: { ingress: 'web', header: { name: 'x-canary' }, cookie: 'beta' } })).toEqual({
      router: 'nginx',
      ingress: 'web',
      canaryIngress: 'web-canary',
      header: { name: 'x-canary' },
      cookie: 'beta',
    });
    expect(t({ gatewayAPI: { httpRoute: 'web', port: 8080 } })).toEqual({
      router: 'gatewayAPI',
      httpRoute: 'web',
      rule: 0,
      stableBackend: 'shop',
      canaryBackend: 'shop-canary',
      port: 8080,
    });
    expect(t({ smi: {} })).toEqual({
      router: 'smi',
      trafficSplit: 'shop',
      rootService: 'shop',
      stableBackend: 'shop-stable',
      canaryBackend: 'shop-canary',
    });
    expect(t({ replicas: {} })).toEqual({ router: 'replicas' });
    expect(t({ local: { controlUrl: 'http://127.0.0.1:7001' } })).toEqual({
      router: 'local',
      controlUrl: 'http://127.0.0.1:7001',
    });
  });

  test('every problem is listed by path', () => {
    expect(
      problems({
        app: 'Check_Out',
        namespace: 'x'.repeat(64),
        workload: { kind: 'deployment', progressDeadline: 'soon' },
        traffic: { istio: { virtualServce: 'a' } },
        metric: {},
      }),
    ).toEqual([
      'app: "Check_Out" is not a valid Kubernetes name: use lower-case letters, digits and "-", starting and ending with a letter or digit',
      'namespace: must be at most 63 characters (a Kubernetes name), got 64',
      'workload.kind: unknown workload kind "deployment" (did you mean "Deployment"?)',
      'traffic.istio.virtualServce: unknown field "virtualServce" (did you mean "virtualService"?)',
      'metric: unknown field "metric" (did you mean "metrics"?)',
    ]);
  });

  test('routers: exactly one, known, with valid settings', () => {
    expect(problems({ app: 'a', traffic: {} })).toEqual([
      'traffic: must name a router: one of istio, nginx, gatewayAPI, smi, replicas, local, e.g. {istio: {virtualService: a}}',
    ]);
    expect(problems({ app: 'a', traffic: { istio: {}, nginx: {} } })).toEqual([
      'traffic: names 2 routers (istio, nginx); a rollout uses exactly one',
    ]);
    expect(problems({ app: 'a', traffic: { gateway_api: {} } })).toEqual([
      'traffic.gateway_api: unknown router "gateway_api" (did you mean "gatewayAPI"?)',
    ]);
    expect(problems({ app: 'a', traffic: { linkerd: {} } })).toEqual([
      'traffic.linkerd: unknown router "linkerd"; use istio, nginx, gatewayAPI, smi, replicas, local',
    ]);
    expect(
      problems({ app: 'a', traffic: { gatewayAPI: { rule: -1, port: 70000, canaryBackend: 'a' } } }),
    ).toEqual([
      'traffic.gatewayAPI.rule: must be a rule index (0, 1, ...), got -1',
      'traffic.gatewayAPI.port: must be a port number from 1 to 65535, got 70000',
      'traffic.gatewayAPI.canaryBackend: must differ from stableBackend',
    ]);
    expect(problems({ app: 'a', traffic: { istio: { header: { name: 'bad header' } } } })).toEqual([
      'traffic.istio.header.name: "bad header" is not a valid HTTP header name',
    ]);
    expect(problems({ app: 'a', traffic: { istio: { virtualService: 42 } } })).toEqual([
      'traffic.istio.virtualService: must be the name of the VirtualService, got 42',
    ]);
  });

  test('a local workload takes no Deployment settings, and replicas needs a Deployment', () => {
    expect(problems({ app: 'a', workload: { kind: 'local', name: 'x' }, traffic: { replicas: {} } })).toEqual(
      [
        'workload.name: only applies to kind Deployment',
        'traffic.replicas: needs a Deployment workload (the local stack has no replicas)',
      ],
    );
  });

  test('not an object', () => {
    expect(problems('istio')).toEqual([
      ': a target must be an object (app, namespace, workload, traffic, metrics), got "istio"',
    ]);
  });

  test('describeTarget', () => {
    expect(describeTarget(ok({ app: 'shop', namespace: 'prod', workload: {}, traffic: { nginx: {} } }))).toBe(
      'prod/shop, Deployment shop (canary shop-canary), via nginx Ingress shop (canary Ingress shop-canary)',
    );
  });
});

describe('targets from files and flags', () => {
  test('a plan file may carry the target beside its stages; presets never do', () => {
    const file = path.join(tmp, 'plan.yaml');
    fs.writeFileSync(
      file,
      'target:\n  app: checkout\n  traffic: { nginx: { ingress: web } }\nstages:\n  - { weight: 100 }\n',
    );
    const loaded = loadPlan(file);
    expect(loaded.target).toEqual({ app: 'checkout', traffic: { nginx: { ingress: 'web' } } });
    expect(loaded.spec).toEqual({ stages: [{ weight: 100 }] });
    expect(loadPlan('default').target).toBeUndefined();
  });

  test('a target file: the target itself, or under target:', () => {
    const a = path.join(tmp, 'a.yaml');
    const b = path.join(tmp, 'b.json');
    fs.writeFileSync(a, 'app: shop\ntraffic:\n  smi: {}\n');
    fs.writeFileSync(b, JSON.stringify({ target: { app: 'shop' } }));
    expect(loadTargetFile(a)).toEqual({ app: 'shop', traffic: { smi: {} } });
    expect(loadTargetFile(b)).toEqual({ app: 'shop' });
    expect(() => loadTargetFile(path.join(tmp, 'missing.yaml'))).toThrow(
      /target file ".*missing.yaml" not found/,
    );
  });

  test('flags win over a target file, which wins over the plan', () => {
    const file = path.join(tmp, 'target.yaml');
    fs.writeFileSync(file, 'app: shop\nnamespace: prod\ntraffic:\n  istio: { virtualService: shop-vs }\n');
    const fromPlan = { app: 'other', traffic: { nginx: {} } };
    expect(targetFromOptions({ target: file }, fromPlan)).toEqual({
      app: 'shop',
      namespace: 'prod',
      traffic: { istio: { virtualService: 'shop-vs' } },
    });
    expect(
      targetFromOptions(
        {
          target: file,
          namespace: 'staging',
          routerOpt: ['routes=primary, secondary', 'header=x-canary:always'],
        },
        fromPlan,
      ),
    ).toEqual({
      app: 'shop',
      namespace: 'staging',
      traffic: {
        istio: {
          virtualService: 'shop-vs',
          routes: ['primary', 'secondary'],
          header: { name: 'x-canary', value: 'always' },
        },
      },
    });
    expect(
      targetFromOptions({
        app: 'web',
        workload: 'web-v',
        container: 'app',
        router: 'gatewayAPI',
        routerOpt: ['rule=1'],
      }),
    ).toEqual({
      app: 'web',
      workload: { name: 'web-v', container: 'app' },
      traffic: { gatewayAPI: { rule: 1 } },
    });
    expect(() => targetFromOptions({ app: 'web', routerOpt: ['rule=1'] })).toThrow(UsageError);
    expect(() => targetFromOptions({ app: 'web', router: 'smi', routerOpt: ['rule'] })).toThrow(
      '--router-opt takes key=value, got "rule"',
    );
  });
});
