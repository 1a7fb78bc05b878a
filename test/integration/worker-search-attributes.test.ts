// At start-up the worker makes sure its namespace has the rollout's search attributes: a namespace without them
// gets them; where the server refuses (here: the dev server's SQL visibility has 3 Int slots per namespace, taken
// by other attributes) the worker refuses to start (exit 2) naming one command per attribute, and those commands,
// run as printed, make it start. Also the README's step that registers them, run as printed; and a worker left on
// the demo's local providers outside the demo.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Connection } from '@temporalio/client';
import { encodeSearchAttributeIndexedValueType } from '@temporalio/common/lib/search-attributes';
import { msToTs } from '@temporalio/common/lib/time';
import { findTemporalCli } from '../../demo/temporal-bin';
import { startDevServer, type DevServer } from '../../demo/dev-server';
import {
  eventually,
  killAll,
  requireBuilt,
  runCli,
  startWorkerProcess,
  WORKER_MAIN,
} from '../../harness/processes';
import { SEARCH_ATTRIBUTES } from '../../workflows/api';

jest.setTimeout(120_000);

let server: DevServer;
let connection: Connection;
const cli = findTemporalCli();

beforeAll(async () => {
  server = await startDevServer();
  connection = await Connection.connect({ address: server.address });
}, 60_000);
afterAll(async () => {
  killAll();
  await connection?.close();
  await server?.stop();
});

async function createNamespace(namespace: string): Promise<void> {
  await connection.workflowService.registerNamespace({
    namespace,
    workflowExecutionRetentionPeriod: msToTs('1 day'),
  });
  // A new namespace is usable once the frontend's namespace cache has it.
  await eventually(async () => {
    await connection.operatorService.listSearchAttributes({ namespace });
    return true;
  }, 30_000);
}

async function customAttributes(namespace: string): Promise<Record<string, number>> {
  const r = await connection.operatorService.listSearchAttributes({ namespace });
  return (r.customAttributes ?? {}) as Record<string, number>;
}

const TYPES = { Keyword: 'KEYWORD', Int: 'INT' } as const;
function expectAll(attrs: Record<string, number>): void {
  for (const [name, type] of SEARCH_ATTRIBUTES)
    expect([name, attrs[name]]).toEqual([name, encodeSearchAttributeIndexedValueType(TYPES[type])]);
}

function runWorker(env: Record<string, string>): Promise<{ code: number | null; stderr: string }> {
  requireBuilt(WORKER_MAIN);
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [WORKER_MAIN], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    child.on('exit', (code) => resolve({ code, stderr }));
  });
}

/** Runs one printed `temporal ...` command line with the CLI this machine has (no shell). */
function runPrinted(
  line: string,
  env: Record<string, string> = {},
): Promise<{ code: number | null; out: string }> {
  const words = line.trim().split(/\s+/);
  expect(words[0]).toBe('temporal');
  return new Promise((resolve) => {
    const child = spawn(cli!, words.slice(1), {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    child.on('exit', (code) => resolve({ code, out }));
  });
}

test('a namespace without the search attributes gets them when the worker starts, once', async () => {
  await createNamespace('fresh');
  expect(Object.keys(await customAttributes('fresh')).filter((n) => n.startsWith('Canary'))).toEqual([]);
  const env = { TEMPORAL_ADDRESS: server.address, TEMPORAL_NAMESPACE: 'fresh' };
  const first = await startWorkerProcess(env);
  expect(first.output()).toContain(
    'canary worker: registered the search attributes CanaryApp, CanaryVersion, CanaryPhase, CanaryStage, CanaryWeight, CanaryRelease in namespace fresh',
  );
  expect(await first.kill()).toBe(0);
  expectAll(await customAttributes('fresh'));
  const second = await startWorkerProcess(env);
  expect(second.output()).not.toContain('registered the search attributes');
  expect(await second.kill()).toBe(0);
});

test('a registration the server refuses: exit 2 with one command per attribute, which work as printed', async () => {
  await createNamespace('crowded');
  // The dev server's SQL visibility has three Int columns per namespace: take them all.
  const int = encodeSearchAttributeIndexedValueType('INT')!;
  await connection.operatorService.addSearchAttributes({
    namespace: 'crowded',
    searchAttributes: { Shard: int, Priority: int, Attempt: int },
  });
  const r = await runWorker({
    TEMPORAL_ADDRESS: server.address,
    TEMPORAL_NAMESPACE: 'crowded',
    CANARY_PROVIDERS: 'local',
  });
  expect(r.code).toBe(2);
  expect(r.stderr).toContain(
    'namespace "crowded" lacks the search attributes CanaryApp, CanaryVersion, CanaryPhase, CanaryStage, CanaryWeight, ' +
      'CanaryRelease ' +
      'the rollout workflow writes, and the server did not let this worker register them (',
  );
  expect(r.stderr).toContain('cannot have more than 3 search attribute of type Int');
  const commands = r.stderr
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.startsWith('temporal operator search-attribute create'));
  expect(commands).toEqual(
    SEARCH_ATTRIBUTES.map(
      ([name, type]) =>
        `temporal operator search-attribute create --address ${server.address} --namespace crowded --name ${name} --type ${type}`,
    ),
  );
  // Nothing was registered by the refused call (it is all or nothing).
  expect(Object.keys(await customAttributes('crowded')).filter((n) => n.startsWith('Canary'))).toEqual([]);

  // Make room, as an operator would, then run the printed commands as they are.
  for (const name of ['Shard', 'Priority']) {
    const removed = await runPrinted(
      `temporal operator search-attribute remove --address ${server.address} --namespace crowded --name ${name} --yes`,
    );
    expect(removed.code).toBe(0);
  }
  for (const command of commands) {
    const run = await runPrinted(command);
    expect([command, run.code, run.out.trim()]).toEqual([command, 0, 'Search attributes have been added']);
  }
  expectAll(await customAttributes('crowded'));
  const worker = await startWorkerProcess({
    TEMPORAL_ADDRESS: server.address,
    TEMPORAL_NAMESPACE: 'crowded',
  });
  expect(worker.output()).not.toContain('registered the search attributes');
  expect(await worker.kill()).toBe(0);
});

test('an attribute of another type: exit 2, saying which and why the worker cannot fix it', async () => {
  await createNamespace('typed');
  await connection.operatorService.addSearchAttributes({
    namespace: 'typed',
    searchAttributes: { CanaryWeight: encodeSearchAttributeIndexedValueType('KEYWORD')! },
  });
  const r = await runWorker({
    TEMPORAL_ADDRESS: server.address,
    TEMPORAL_NAMESPACE: 'typed',
    CANARY_PROVIDERS: 'local',
  });
  expect(r.code).toBe(2);
  expect(r.stderr).toContain(
    'namespace "typed" has search attributes of the wrong type: CanaryWeight is registered as Keyword, the rollout workflow writes Int.',
  );
});

test("the README's registration step, run as printed, registers all six", async () => {
  await createNamespace('readme');
  const readme = fs.readFileSync(path.join(__dirname, '..', '..', 'README.md'), 'utf8');
  const from = readme.indexOf('2. Register the search attributes once per namespace');
  expect(from).toBeGreaterThan(0);
  const step = /```sh\n([\s\S]*?)```/.exec(readme.slice(from));
  expect(step).not.toBeNull();
  const lines = step![1].split('\n').filter((l) => l.trim() !== '');
  expect(lines).toHaveLength(SEARCH_ATTRIBUTES.length);
  // The CLI reads TEMPORAL_ADDRESS and TEMPORAL_NAMESPACE, the worker's variables, itself.
  for (const line of lines) {
    const run = await runPrinted(line, { TEMPORAL_ADDRESS: server.address, TEMPORAL_NAMESPACE: 'readme' });
    expect([line, run.code]).toEqual([line, 0]);
  }
  expectAll(await customAttributes('readme'));
});

test('outside the demo, a worker with no provider defaults refuses the local ones: exit 2, each named', async () => {
  const r = await runWorker({
    TEMPORAL_ADDRESS: server.address,
    CANARY_ROUTER: 'istio',
    CANARY_PROVIDERS: '',
  });
  expect(r.code).toBe(2);
  expect(r.stderr).toContain('invalid configuration (2 problems):');
  expect(r.stderr).toContain(
    'CANARY_WORKLOADS: is not set, and a worker outside the demo has no default for',
  );
  expect(r.stderr).toContain('CANARY_METRICS: is not set, and a worker outside the demo has no default for');
  expect(r.stderr).not.toContain('CANARY_ROUTER');
});

test('a start on a namespace without the search attributes says how to get them, exit 3, and starts nothing', async () => {
  await createNamespace('bare');
  const plan = path.join(__dirname, '..', '..', 'examples', '003-ai-model-default.yaml');
  const r = await runCli(['start', '--app', 'shop', '--namespace', 'it', '--version', 'v2', '--plan', plan], {
    TEMPORAL_ADDRESS: server.address,
    TEMPORAL_NAMESPACE: 'bare',
  });
  expect(r.code).toBe(3);
  expect(r.stderr).toMatch(/namespace "bare" at \S+ has no search attribute Canary\w+/);
  expect(r.stderr).toContain('Start a canary worker on this namespace once: it registers them');
  const open = await connection.workflowService.listWorkflowExecutions({ namespace: 'bare', query: '' });
  expect(open.executions ?? []).toEqual([]);
});
