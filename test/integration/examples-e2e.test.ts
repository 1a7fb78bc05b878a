// Every example plan, end to end, as `npm run demo:example` runs it: on one Temporal dev server, one kube-apiserver,
// one Prometheus and one worker process shared by all, each example twice side by side in namespaces of its own,
// once healthy (promoted) and once faulty (rolled back), compressed to about a minute (and example 004 on the
// Gateway API and SMI routers too, which no example uses). Each run is checked against
// the live objects it leaves behind: no canary Deployment (or none serving, after a rollback), the router back on
// stable at 0 % with nothing the rollout added, stable running the new version after a promotion (the old one after
// a rollback), and every Service and subset on stable's side still selecting stable's pods. Then an example whose
// target names too little (001 as it was, without its DestinationRule) is refused by the worker's preflight with
// the reasons, before anything changes.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawn } from 'node:child_process';
import { parse, stringify } from 'yaml';
import { startExampleStack, type ExampleStack } from '../../demo/examples/stack';
import { CANARY_VERSION, STABLE_VERSION, runExample, type ExampleResult } from '../../demo/examples/run';
import { requiredObjects, type RouterSnapshot } from '../../harness/kube-rollout';
import { killAll } from '../../harness/processes';
import { validatePlan } from '../../workflows/plan';
import { exitCodeFor } from '../../scripts/demo-example';

jest.setTimeout(600_000);

const ROOT = path.resolve(__dirname, '..', '..');
const EXAMPLES = path.join(ROOT, 'examples');
const FILES = fs
  .readdirSync(EXAMPLES)
  .filter((f) => /^\d{3}-.*\.ya?ml$/.test(f))
  .sort();

interface Run {
  /** What the test names it by. */
  file: string;
  /** The plan file it runs. */
  path: string;
  faulty: boolean;
  namespace: string;
  log: string[];
  result?: Promise<ExampleResult>;
}

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'canary-examples-e2e-'));

/**
 * Example 004 on the two routers no example uses (with the app's http_* series, which select a side by version), so
 * the demo's fixtures for every Kubernetes router run end to end too.
 */
const VARIANTS = (['gatewayAPI', 'smi'] as const).map((router) => {
  const doc = parse(fs.readFileSync(path.join(EXAMPLES, '004-nginx-ingress.yaml'), 'utf8')) as {
    target: Record<string, unknown>;
  };
  doc.target.traffic = { [router]: {} };
  doc.target.metrics = { prometheus: { templates: 'http' } };
  const file = path.join(tmp, `004-on-${router.toLowerCase()}.yaml`);
  fs.writeFileSync(file, stringify(doc));
  return { name: `004 on ${router}`, path: file, short: `004-${router === 'smi' ? 'smi' : 'gw'}` };
});

const RUNS: Run[] = [
  ...FILES.map((file) => ({ name: file, path: path.join(EXAMPLES, file), short: file.slice(0, 3) })),
  ...VARIANTS,
].flatMap(({ name, path: planPath, short }) =>
  [false, true].map((faulty) => ({
    file: name,
    path: planPath,
    faulty,
    namespace: `ex-${short}-${faulty ? 'faulty' : 'healthy'}`,
    log: [],
  })),
);

let stack: ExampleStack;
let wallStart: number;
const timings: string[] = [];

beforeAll(async () => {
  wallStart = Date.now();
  // Every server must start: a missing one fails the file with the harness's message on how to get it.
  stack = await startExampleStack();
  timings.push(`stack up in ${seconds(Date.now() - wallStart)}`);
  // Every example at once, each in its own namespace; the tests below wait for their own.
  for (const run of RUNS) {
    run.result = runExample(stack, {
      file: run.path,
      faulty: run.faulty,
      namespace: run.namespace,
      say: (line) => run.log.push(line),
    });
    run.result.catch(() => undefined); // awaited (and reported) by its test
  }
}, 180_000);

afterAll(async () => {
  await Promise.allSettled(RUNS.map((r) => r.result));
  timings.push(`wall time of the file: ${seconds(Date.now() - wallStart)}`);
  console.log(`examples end to end:\n  ${timings.join('\n  ')}`);
  await stack?.stop();
  killAll();
  fs.rmSync(tmp, { recursive: true, force: true });
});

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)}s`;
}

/** The run's result, failing with its narration and the worker's log when it threw. */
async function resultOf(run: Run): Promise<ExampleResult> {
  try {
    return await run.result!;
  } catch (err) {
    throw new Error(
      `${run.file} (${run.faulty ? 'faulty' : 'healthy'}) failed: ${(err as Error).stack}\n--- narration ---\n` +
        `${run.log.join('\n')}\n--- worker (tail) ---\n${stack.worker.output().slice(-4000)}`,
    );
  }
}

/** `expect` with the run's narration in the failure message. */
function check(run: Run, fn: () => void | Promise<void>): Promise<void> {
  return Promise.resolve()
    .then(fn)
    .catch((err: Error) => {
      err.message += `\n--- narration of ${run.namespace} ---\n${run.log.join('\n')}`;
      throw err;
    });
}

/** The router objects before the rollout, with what a promotion changes on purpose: Istio's stable subset follows v2. */
function promotedSnapshot(before: RouterSnapshot, versionLabel: string): RouterSnapshot {
  const expected = structuredClone(before);
  for (const [key, state] of Object.entries(expected)) {
    if (!key.startsWith('DestinationRule/') || !state) continue;
    const subsets = (state.spec as { subsets: Array<{ name: string; labels: Record<string, string> }> })
      .subsets;
    const stable = subsets.find((s) => s.name === 'stable');
    if (stable) stable.labels = { ...stable.labels, [versionLabel]: CANARY_VERSION };
  }
  return expected;
}

/** How many approval gates the run's plan has (stage gates and the promotion gate). */
function approvalGates(result: ExampleResult): number {
  const v = validatePlan(result.scaled.spec);
  if (!v.ok) throw new Error('invalid');
  return v.plan.stages.filter((s) => s.gate.type === 'approval').length + (v.plan.promotion.gate ? 1 : 0);
}

describe.each(RUNS.filter((r) => !r.faulty))('$file, healthy ($namespace)', (run) => {
  test('promoted: the canary is gone, stable runs v2, routing is back on stable as it was', async () => {
    const r = await resultOf(run);
    timings.push(
      `${run.file} healthy: ${r.outcome} in ${seconds(r.rolloutMs)} (setup ${seconds(r.setupMs)}), weights ${r.weightsSeen.join(' → ')}`,
    );
    await check(run, async () => {
      expect(r.outcome).toBe('promoted');
      expect(r.status?.preflight?.state).toBe('passed');
      const fx = r.fixture;
      // What the header says must exist is what was made.
      for (const o of requiredObjects(fx.target)) {
        expect(fx.created.map((c) => `${c.kind} ${c.name}`)).toContain(`${o.kind} ${o.name}`);
      }
      // The live router object walked every stage's weight, in order, and ended on stable.
      const stages = (
        validatePlan(r.scaled.spec) as { ok: true; plan: { stages: Array<{ weight: number }> } }
      ).plan.stages;
      let at = -1;
      for (const s of stages) {
        const next = r.weightsSeen.indexOf(s.weight, at + 1);
        expect(next).toBeGreaterThan(at);
        at = next;
      }
      expect(r.weightsSeen[r.weightsSeen.length - 1]).toBe(0);
      // Every approval gate was approved by the demo with the CLI.
      expect(r.approvals).toHaveLength(approvalGates(r));
      for (const a of r.approvals) expect(a).toMatch(/node dist\/client\/cli\.js approve ex-\S+ --stage \d+/);

      expect(await fx.canaryDeployment()).toBeUndefined();
      expect(await fx.weights()).toEqual({ stable: 100, canary: 0 });
      expect(await fx.snapshot()).toEqual(promotedSnapshot(r.before.snapshot, fx.versionLabel));
      const stable = structuredClone(r.before.stable);
      stable.template.metadata!.labels![fx.versionLabel] = CANARY_VERSION;
      stable.template.spec!.containers[0].image = fx.imageFor(CANARY_VERSION);
      const now = (await fx.stableDeployment()).spec!;
      expect(JSON.parse(JSON.stringify(now))).toEqual(stable);
      for (const s of await fx.stableSelectors())
        expect(s).toMatchObject({ what: s.what, selectsStable: true });
    });
  });
});

describe.each(RUNS.filter((r) => r.faulty))('$file, faulty ($namespace)', (run) => {
  test('rolled back by a check: no canary serving, routing back on stable exactly as it was, stable untouched', async () => {
    const r = await resultOf(run);
    timings.push(
      `${run.file} faulty: ${r.outcome} in ${seconds(r.rolloutMs)} (setup ${seconds(r.setupMs)}), weights ${r.weightsSeen.join(' → ')}; ${r.status?.rollbackReason ?? ''}`,
    );
    await check(run, async () => {
      expect(r.outcome).toBe('rolled_back');
      expect(r.status?.ending?.kind).toBe('check');
      expect(r.status?.rollbackReason).toMatch(/^analysis at \d+%/);
      const fx = r.fixture;
      expect(r.weightsSeen[r.weightsSeen.length - 1]).toBe(0);
      // The rollback scales the canary to 0 and keeps it (for a look at what went wrong): nothing of it serves.
      const canary = await fx.canaryDeployment();
      expect(canary?.spec?.replicas ?? 0).toBe(0);
      expect(await fx.weights()).toEqual({ stable: 100, canary: 0 });
      expect(await fx.snapshot()).toEqual(r.before.snapshot);
      expect(JSON.parse(JSON.stringify((await fx.stableDeployment()).spec))).toEqual(r.before.stable);
      expect((await fx.stableDeployment()).spec?.template?.metadata?.labels?.[fx.versionLabel]).toBe(
        STABLE_VERSION,
      );
      for (const s of await fx.stableSelectors())
        expect(s).toMatchObject({ what: s.what, selectsStable: true });
    });
  });
});

test('an example whose target names too little is refused by the preflight with the reasons, nothing changed (exit 2)', async () => {
  // Example 001 as it was: no DestinationRule named, so the canary subset would be defined nowhere.
  const doc = parse(fs.readFileSync(path.join(EXAMPLES, '001-flagger.yaml'), 'utf8')) as {
    target: { traffic: { istio: Record<string, unknown> } };
  };
  delete doc.target.traffic.istio.destinationRule;
  const file = path.join(tmp, '001-without-destination-rule.yaml');
  fs.writeFileSync(file, stringify(doc));
  const log: string[] = [];
  const r = await runExample(stack, { file, namespace: 'ex-001-refused', say: (l) => log.push(l) });
  await check({ file, path: file, faulty: false, namespace: 'ex-001-refused', log }, async () => {
    expect(r.outcome).toBe('not_started');
    expect(r.refused?.kind).toBe('input');
    expect(exitCodeFor(r)).toBe(2);
    const text = log.join('\n');
    expect(text).toContain("Refused by the worker's preflight");
    expect(text).toContain('target.traffic.istio.destinationRule');
    expect(text).toContain('no DestinationRule');
    expect(await r.fixture.canaryDeployment()).toBeUndefined();
    expect(await r.fixture.snapshot()).toEqual(r.before.snapshot);
  });
});

test('demo:example refuses a plan it cannot run before starting any server (exit 2)', async () => {
  const script = path.join(ROOT, 'dist-dev', 'scripts', 'demo-example.js');
  if (!fs.existsSync(script))
    throw new Error('dist-dev/scripts/demo-example.js is missing: run npm run build:dev');
  const missing = path.join(tmp, 'no-such-plan.yaml');
  const t0 = Date.now();
  const { code, output } = await new Promise<{ code: number | null; output: string }>((resolve) => {
    const child = spawn(process.execPath, [script, '--plan', missing, '--exit'], { cwd: ROOT });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    child.on('exit', (c) => resolve({ code: c, output }));
  });
  expect(code).toBe(2);
  expect(output).toContain(missing);
  expect(Date.now() - t0).toBeLessThan(10_000);
});
