// The workflow modules a worker shares between rollouts (worker/bundle.ts, SHARED_WORKFLOW_MODULES, the SDK's
// `preloadModules`) are loaded once and deep-frozen by the SDK. This test does the same to them, and to zod and every
// module they import, and then runs validation over many plans and targets, valid and broken in every field: the
// answers must be the ones unfrozen modules give. A module that exports a zod schema, keeps state in an exported
// object, or mutates one, fails here (a frozen zod schema cannot even parse) instead of in a rollout.
/* eslint-disable @typescript-eslint/no-require-imports -- jest.isolateModules loads fresh module copies with require() */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parse } from 'yaml';
import { SHARED_WORKFLOW_MODULES } from '../../worker/bundle';

const WORKFLOWS = path.join(__dirname, '..', '..', 'workflows');
const EXAMPLES = path.join(__dirname, '..', '..', 'examples');

/** The SDK's deepFreeze (reusable-vm.js): own properties, depth first, then the object. */
function deepFreeze(object: unknown, visited = new WeakSet<object>()): void {
  if (object === null || (typeof object !== 'object' && typeof object !== 'function')) return;
  if (visited.has(object) || Object.isFrozen(object)) return;
  visited.add(object);
  if (typeof object === 'object') {
    for (const name of [...Object.getOwnPropertyNames(object), ...Object.getOwnPropertySymbols(object)]) {
      try {
        deepFreeze((object as Record<string | symbol, unknown>)[name], visited);
      } catch {
        // As the SDK: some objects cannot be frozen.
      }
    }
  }
  Object.freeze(object);
}

/** The shared modules and every workflows/ module they import (what the preload loads besides zod). */
function closure(): string[] {
  const seen = new Set<string>();
  const visit = (rel: string): void => {
    const file = path.join(WORKFLOWS, `${rel}.ts`);
    if (seen.has(rel) || !fs.existsSync(file)) return;
    seen.add(rel);
    for (const m of fs.readFileSync(file, 'utf8').matchAll(/^import (?!type )[^;]*? from '(\.[^']+)';/gms)) {
      visit(path.relative(WORKFLOWS, path.join(path.dirname(file), m[1])));
    }
  };
  SHARED_WORKFLOW_MODULES.forEach(visit);
  return [...seen];
}

type Validators = {
  validatePlan: typeof import('../../workflows/plan').validatePlan;
  formatProblems: typeof import('../../workflows/plan').formatProblems;
  describePlan: typeof import('../../workflows/plan-describe').describePlan;
  validateTarget: typeof import('../../workflows/target').validateTarget;
  describeTarget: typeof import('../../workflows/target').describeTarget;
};

function load(frozen: boolean): Validators {
  let v!: Validators;
  jest.isolateModules(() => {
    if (frozen) {
      // Loaded and frozen before anything runs, as the preload does: nothing may be built lazily into them later.
      deepFreeze(require('zod'));
      for (const rel of closure()) deepFreeze(require(path.join(WORKFLOWS, rel)));
    }
    v = {
      ...(require('../../workflows/plan') as typeof import('../../workflows/plan')),
      ...(require('../../workflows/plan-describe') as typeof import('../../workflows/plan-describe')),
      ...(require('../../workflows/target') as typeof import('../../workflows/target')),
    };
  });
  return v;
}

const HOOKS_AND_WEB = {
  name: 'kitchen-sink',
  hooks: {
    before: [{ name: 'smoke', http: { url: 'https://hooks.example.com/smoke', timeout: '10s', retries: 1 } }],
    afterStage: [
      {
        name: 'migrate-check',
        job: { template: { spec: { containers: [{ name: 'c', image: 'busybox:1.36' }] } }, ttl: '10m' },
        onFailure: 'approval',
      },
    ],
  },
  analysis: {
    interval: '1m',
    checks: [
      {
        name: 'web-errors',
        web: { url: 'https://status.example.com/${secret:TOKEN}', jsonPath: '$.errors.rate', timeout: '5s' },
        abort: { max: 5 },
        dryRun: true,
        onQueryError: { limit: 3, then: 'hold' },
        onNoData: { action: 'hold', limit: 2, then: 'approval' },
      },
    ],
  },
  stages: [{ weight: 0, mirror: 20, hold: '10m' }, { weight: 10, hold: '1h' }, { weight: 100 }],
};

/** Every example plan, the kitchen sink, and each of them broken in every field: a typo beside, a wrong type in. */
function plans(): unknown[] {
  const base: unknown[] = [HOOKS_AND_WEB];
  for (const f of fs.readdirSync(EXAMPLES).filter((n) => /\.ya?ml$/.test(n))) {
    // An example file carries its target beside the plan (client/plan-file.ts splits them).
    const { target, ...plan } = parse(fs.readFileSync(path.join(EXAMPLES, f), 'utf8')) as Record<
      string,
      unknown
    >;
    base.push(plan);
    TARGETS.push(target);
  }
  const out: unknown[] = [...base, undefined, 'stages', { stages: [] }];
  const broken = (doc: unknown): unknown[] => {
    const variants: unknown[] = [];
    const walk = (node: unknown, edit: (f: (n: unknown) => unknown) => unknown): void => {
      if (Array.isArray(node)) {
        node.forEach((child, i) =>
          walk(child, (f) => edit((n) => (n as unknown[]).map((c, j) => (j === i ? f(c) : c)))),
        );
      } else if (node !== null && typeof node === 'object') {
        const rec = node as Record<string, unknown>;
        variants.push(edit((n) => ({ ...(n as object), colour: 'blue' })));
        for (const key of Object.keys(rec)) {
          const wrong = typeof rec[key] === 'string' ? 42 : 'forty-two';
          variants.push(edit((n) => ({ ...(n as object), [key]: wrong })));
          walk(rec[key], (f) =>
            edit((n) => ({ ...(n as object), [key]: f((n as Record<string, unknown>)[key]) })),
          );
        }
      }
    };
    walk(doc, (f) => f(doc));
    return variants;
  };
  for (const doc of base) out.push(...broken(doc));
  return out;
}

const TARGETS: unknown[] = [
  undefined,
  { app: 'shop', namespace: 'prod' },
  { app: 'shop', traffic: { router: 'istio', virtualService: 'shop', host: 'shop.prod.svc' } },
  { app: 'shop', traffic: { router: 'nginx', ingress: 'shop' }, workload: { kind: 'Deployment' } },
  { app: 'shop', traffic: { router: 'gatewayAPI', httpRoute: 'shop' }, metrics: { provider: 'prometheus' } },
  { app: 'shop', traffic: { router: 'smi' }, colour: 'blue' },
  { app: 42, traffic: 'istio' },
];

test('validation answers the same with the shared modules frozen as the worker shares them', () => {
  const plain = load(false);
  const frozen = load(true);
  expect(Object.isFrozen(frozen.validatePlan)).toBe(true);
  const corpus = plans();
  expect(corpus.length).toBeGreaterThan(400);
  let valid = 0;
  for (const spec of corpus) {
    for (const strict of [true, false]) {
      const want = plain.validatePlan(spec, { strict });
      const got = frozen.validatePlan(spec, { strict });
      expect(got).toEqual(want);
      if (want.ok && got.ok) {
        valid++;
        expect(frozen.describePlan(got.plan)).toBe(plain.describePlan(want.plan));
      } else if (!want.ok && !got.ok) {
        expect(frozen.formatProblems(got.problems)).toBe(plain.formatProblems(want.problems));
      }
    }
  }
  // The corpus reaches past the first problem: valid plans, judged and described, are part of it.
  expect(valid).toBeGreaterThanOrEqual(6);
  const sink = plain.validatePlan(HOOKS_AND_WEB);
  expect(sink.ok ? '' : plain.formatProblems(sink.problems)).toBe('');
  for (const spec of TARGETS) {
    const want = plain.validateTarget(spec, { namespace: 'default' });
    expect(frozen.validateTarget(spec, { namespace: 'default' })).toEqual(want);
    if (want.ok) expect(frozen.describeTarget(want.target)).toBe(plain.describeTarget(want.target));
  }
});

test('the shared modules keep no zod schema where the SDK freezes it (in their exports)', () => {
  jest.isolateModules(() => {
    for (const rel of closure()) {
      const exported = require(path.join(WORKFLOWS, rel)) as Record<string, unknown>;
      for (const [name, value] of Object.entries(exported)) {
        const isSchema = value !== null && typeof value === 'object' && '_zod' in value;
        expect(isSchema ? `${rel}.ts exports the zod schema ${name}` : '').toBe('');
      }
    }
  });
});
