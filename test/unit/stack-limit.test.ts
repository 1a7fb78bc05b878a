// workflows/stack-limit.ts cuts the stacks captured inside the workflow sandbox (the SDK captures one for every promise
// a rollout creates, which cost most of the workflow thread's CPU). It must reach the sandbox through the bundle's
// preload by default, leave the worker's own Error alone, and step aside with CANARY_WORKFLOW_STACK_TRACES=full.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vm from 'node:vm';
import { transpileModule, ModuleKind } from 'typescript';
import { workflowBundleOptions } from '../../worker/bundle';

const MODULE = path.join(__dirname, '..', '..', 'workflows', 'stack-limit.ts');

function withEnv<T>(value: string | undefined, fn: () => T): T {
  const before = process.env.CANARY_WORKFLOW_STACK_TRACES;
  if (value === undefined) delete process.env.CANARY_WORKFLOW_STACK_TRACES;
  else process.env.CANARY_WORKFLOW_STACK_TRACES = value;
  try {
    return fn();
  } finally {
    if (before === undefined) delete process.env.CANARY_WORKFLOW_STACK_TRACES;
    else process.env.CANARY_WORKFLOW_STACK_TRACES = before;
  }
}

test('the bundle preloads the stack limit first by default, and not with CANARY_WORKFLOW_STACK_TRACES=full', () => {
  const preload = (env: string | undefined) =>
    withEnv(env, () => workflowBundleOptions().preloadModules ?? []);
  expect(preload(undefined)[0]).toBe(require.resolve('../../workflows/stack-limit'));
  expect(preload('full')).not.toContain(require.resolve('../../workflows/stack-limit'));
  expect(preload('full')).toContain('zod');
});

test('inside a sandbox the module leaves no frames in a stack; the outer Error keeps its own', () => {
  const { outputText } = transpileModule(fs.readFileSync(MODULE, 'utf8'), {
    compilerOptions: { module: ModuleKind.CommonJS },
  });
  const sandbox = vm.createContext({ exports: {} });
  const deep = 'function f(n) { return n === 0 ? new Error("x").stack : f(n - 1); }';
  vm.runInContext(deep, sandbox);
  expect(vm.runInContext('f(20)', sandbox).split('\n').length).toBeGreaterThan(5);
  vm.runInContext(outputText, sandbox);
  expect(vm.runInContext('f(20)', sandbox)).toBe('Error: x');
  expect(vm.runInContext('exports.WORKFLOW_STACK_FRAMES', sandbox)).toBe(0);
  expect((new Error('outside').stack ?? '').split('\n').length).toBeGreaterThan(1);
});
