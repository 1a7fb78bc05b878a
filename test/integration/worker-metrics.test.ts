// The worker's /metrics, scraped by a real Prometheus while the real worker process drives real rollouts (dev server,
// the local stack: one stack per app, so rollouts do not share a proxy). The test reads the series back through
// Prometheus' HTTP API, as a dashboard or a rule would, and `promtool check rules` passes on deploy/'s rules, whose
// every expression also evaluates against the live series.
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { startDevServer, freePort, type DevServer } from '../../demo/dev-server';
import { startLocalStack, type LocalStack } from '../../demo/stack';
import { startTrafficGenerator, type TrafficGenerator } from '../../demo/traffic-generator';
import { eventually, killAll, runCli, startWorkerProcess, type WorkerProcess } from '../../harness/processes';
import { startPrometheus, type PrometheusServer } from '../../harness/prometheus';
import { findBinary } from '../../harness/served-binary';
import { NativeConnection } from '@temporalio/worker';
import { rolloutRunning } from '../../worker/metrics';
import type { RolloutStatus } from '../../workflows/types';

const ROOT = path.resolve(__dirname, '..', '..');
const RULES = path.join(ROOT, 'deploy', 'monitoring', 'prometheus-rules.yaml');
const DASHBOARD = path.join(ROOT, 'deploy', 'monitoring', 'grafana-dashboard.json');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'canary-metrics-'));

let server: DevServer;
let prometheus: PrometheusServer;
let worker: WorkerProcess;
let metricsUrl: string;
let env: Record<string, string>;
const stacks = new Map<string, { stack: LocalStack; traffic: TrafficGenerator }>();

function file(name: string, body: unknown): string {
  const f = path.join(dir, name);
  fs.writeFileSync(f, typeof body === 'string' ? body : JSON.stringify(body));
  return f;
}

/** A target on the app's own local stack (router, workload and metrics). */
function target(app: string): string {
  const controlUrl = stacks.get(app)!.stack.controlUrl;
  return file(`${app}.target.json`, {
    app,
    namespace: 'metrics',
    traffic: { local: { controlUrl } },
    workload: { kind: 'local', controlUrl },
    metrics: { local: { controlUrl } },
  });
}

const checks = [{ name: 'error-rate', metric: 'error-rate', max: 5 }];
const plans = {
  held: file('held.json', {
    analysis: { interval: '10s', checks },
    stages: [{ weight: 20, hold: '1h' }, { weight: 100 }],
    promotion: { cleanupDelay: '0s' },
  }),
  gated: file('gated.json', {
    analysis: { interval: '10s', checks },
    stages: [{ weight: 10, hold: '1s' }, { weight: 50, hold: '1h', gate: 'approval' }, { weight: 100 }],
    promotion: { cleanupDelay: '0s' },
  }),
  bad: file('bad.json', {
    analysis: { interval: '10s', checks, failureLimit: 2 },
    stages: [{ weight: 30, hold: '1h' }, { weight: 100 }],
    promotion: { cleanupDelay: '0s' },
  }),
};

const canary = (...args: string[]) => runCli(args, env);

async function status(app: string): Promise<RolloutStatus> {
  const r = await canary('status', `metrics/${app}`, '--output', 'json');
  if (r.code !== 0) throw new Error(`status metrics/${app}: exit ${r.code}: ${r.stderr}`);
  return JSON.parse(r.stdout) as RolloutStatus;
}

/** An instant query's samples: labels and value. */
async function query(expr: string): Promise<Array<{ metric: Record<string, string>; value: number }>> {
  const res = await fetch(`${prometheus.url}/api/v1/query?query=${encodeURIComponent(expr)}`);
  const body = (await res.json()) as {
    status: string;
    error?: string;
    data?: { result: Array<{ metric: Record<string, string>; value: [number, string] }> };
  };
  if (body.status !== 'success') throw new Error(`${expr}: ${body.error}`);
  return body.data!.result.map((r) => ({ metric: r.metric, value: Number(r.value[1]) }));
}

/** The single value of `expr`, undefined when it has no sample. */
async function value(expr: string): Promise<number | undefined> {
  const r = await query(expr);
  if (r.length > 1) throw new Error(`${expr}: ${r.length} samples, expected one`);
  return r[0]?.value;
}

/** Waits until Prometheus has scraped `expr` at `want` (values that could be otherwise: a wrong count fails). */
async function until(expr: string, want: (v: number | undefined) => boolean, what: string): Promise<number> {
  let last: number | undefined;
  await eventually(
    async () => {
      last = await value(expr);
      return want(last);
    },
    45_000,
    `${what} (${expr}, last ${String(last)})`,
  );
  return last!;
}

beforeAll(async () => {
  server = await startDevServer({ ui: false });
  for (const app of ['held', 'gated', 'bad']) {
    const stack = await startLocalStack({ stableVersion: 'v1', faults: { 'v-bad': { errorRate: 0.5 } } });
    stacks.set(app, { stack, traffic: startTrafficGenerator({ url: stack.proxyUrl, rps: 40 }) });
  }
  const port = await freePort();
  metricsUrl = `http://127.0.0.1:${port}/metrics`;
  env = {
    TEMPORAL_ADDRESS: server.address,
    TEMPORAL_TASK_QUEUE: 'metrics-test',
    CANARY_ALERT_LOG: path.join(dir, 'alerts.jsonl'),
    CANARY_IDENTITY: 'ci-bot',
    GITHUB_ACTOR: '',
  };
  worker = await startWorkerProcess({
    ...env,
    CANARY_METRICS_PORT: String(port),
    CANARY_METRICS_HOST: '127.0.0.1',
  });
  prometheus = await startPrometheus({ targets: [{ job: 'canary-worker', url: metricsUrl }] });
  await prometheus.waitUp(30_000);
}, 180_000);

afterAll(async () => {
  await worker?.kill('SIGTERM');
  killAll();
  await prometheus?.stop();
  for (const { stack, traffic } of stacks.values()) {
    await traffic.stop();
    await stack.close();
  }
  await server?.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

test('a second worker on the same metrics port refuses to start: exit 2, naming the port', async () => {
  const port = new URL(metricsUrl).port;
  await expect(
    startWorkerProcess({ ...env, CANARY_METRICS_PORT: port, CANARY_METRICS_HOST: '127.0.0.1' }),
  ).rejects.toThrow(
    new RegExp(
      `exited with 2 before starting:[\\s\\S]*metrics port ${port} is already in use \\(CANARY_METRICS_PORT`,
    ),
  );
}, 60_000);

test('rollouts by phase, weight and stage, decisions, breach to 0 and alert deliveries, through Prometheus', async () => {
  for (const [app, version] of [
    ['held', 'v2'],
    ['gated', 'v2'],
    ['bad', 'v-bad'],
  ] as const) {
    const r = await canary('start', '--target', target(app), '--version', version, '--plan', plans[app]);
    expect(`${r.code} ${r.stderr}`).toBe('0 ');
  }
  await eventually(async () => (await status('held')).weight === 20, 60_000, 'held at 20%');
  await eventually(
    async () => (await status('gated')).phase === 'waiting_approval',
    60_000,
    'gated waiting for approval',
  );
  await eventually(async () => (await status('bad')).phase === 'rolled_back', 90_000, 'bad rolled back');
  const gated = await status('gated');

  // One rollout per phase; the rolled-back one counted as ended, its per-rollout series gone.
  await until('canary_rollouts{phase="progressing"}', (v) => v === 1, 'one progressing');
  await until('canary_rollouts{phase="waiting_approval"}', (v) => v === 1, 'one waiting');
  expect(await value('canary_rollouts{phase="rolling_back"}')).toBe(0);
  await until('canary_rollouts_ended_total{phase="rolled_back"}', (v) => v === 1, 'one rolled back');
  expect(await value('canary_rollouts_ended_total{phase="promoted"}')).toBe(0);
  expect(await value('canary_rollout_weight{namespace="metrics",app="held"}')).toBe(20);
  expect(await value('canary_rollout_stage{namespace="metrics",app="held"}')).toBe(1);
  expect(await value('canary_rollout_weight{app="gated"}')).toBe(gated.weight);
  expect(await value('canary_rollout_stage{app="gated"}')).toBe(gated.stage);
  expect(await value('canary_rollout_weight{app="bad"}')).toBeUndefined();

  // The bad version's rounds failed and it went back to 0 once; the healthy ones' rounds passed.
  const failed = await value('sum(canary_analysis_decisions_total{verdict="fail"})');
  expect(failed).toBeGreaterThanOrEqual(2);
  await until('sum(canary_analysis_decisions_total{verdict="pass"})', (v) => (v ?? 0) >= 2, 'passed rounds');
  expect(await value('canary_breach_to_zero_seconds_count')).toBe(1);
  expect(await value('canary_breach_to_zero_seconds_sum')).toBeLessThan(30);
  // Every round's measuring activity, on the local metrics provider.
  const rounds = await value('sum(canary_analysis_decisions_total)');
  expect(
    await value('sum(canary_analysis_round_duration_seconds_count{provider="local"})'),
  ).toBeGreaterThanOrEqual(rounds!);
  // Alerts to the log sink: at least started and rolled back.
  await until(
    'canary_alert_deliveries_total{sink="log",outcome="delivered"}',
    (v) => (v ?? 0) >= 4,
    'alert deliveries',
  );
  expect(await value('sum(canary_activity_failures_total)')).toBeUndefined();
  // The worker polls, and the SDK's own series come through the same endpoint.
  expect(await value('canary_worker_polling')).toBe(1);
  expect((await query('temporal_num_pollers')).length).toBeGreaterThan(0);
  expect((await query('{__name__=~"temporal_workflow_completed.*"}')).length).toBeGreaterThanOrEqual(0);

  // A restarted worker (the same port) shows a running rollout again from its next publish (a round, within the
  // 10 s interval), with the time of its last change as the rollout recorded it, not the restart's.
  const changedAt = await value('canary_rollout_last_change_timestamp_seconds{app="held"}');
  expect(changedAt).toBeGreaterThan(0);
  await worker.kill('SIGTERM');
  worker = await startWorkerProcess({
    ...env,
    CANARY_METRICS_PORT: new URL(metricsUrl).port,
    CANARY_METRICS_HOST: '127.0.0.1',
  });
  await until('canary_rollouts_ended_total{phase="rolled_back"}', (v) => v === 0, 'the new worker scraped');
  await until('canary_rollout_weight{app="held"}', (v) => v === 20, 'held shown by the new worker');
  expect(await value('canary_rollout_last_change_timestamp_seconds{app="held"}')).toBe(changedAt);
  expect(await value('canary_rollouts{phase="progressing"}')).toBe(1);

  // An abort: a rollback to 0 on the new worker, the held rollout's series go.
  expect((await canary('abort', 'metrics/held', '--reason', 'metrics test')).code).toBe(0);
  await until('canary_rollouts_ended_total{phase="rolled_back"}', (v) => v === 1, 'held rolled back');
  expect(await value('canary_breach_to_zero_seconds_count')).toBe(1);
  expect(await value('canary_rollout_weight{app="held"}')).toBeUndefined();
  expect(await value('canary_rollouts{phase="progressing"}')).toBe(0);

  const series = await value('count({job="canary-worker"})');
  const own = await value('count({job="canary-worker",__name__=~"canary_.*"})');
  console.log(`/metrics with 3 rollouts (1 running): ${series} series, ${own} of them canary_*`);

  // What a worker asks Temporal before it forgets a rollout it no longer hears from.
  const connection = await NativeConnection.connect({ address: server.address });
  try {
    const running = rolloutRunning(connection, 'default');
    expect(await running('canary.metrics.gated')).toBe(true);
    expect(await running('canary.metrics.bad')).toBe(false);
    expect(await running('canary.metrics.never-started')).toBe(false);
  } finally {
    await connection.close();
  }

  expect((await canary('abort', 'metrics/gated', '--reason', 'metrics test')).code).toBe(0);
  await until('canary_rollouts{phase="waiting_approval"}', (v) => v === 0, 'gated aborted');
  // Its rollback over too: nothing runs (the rules below see a quiet worker).
  await until('canary_rollouts_ended_total{phase="rolled_back"}', (v) => v === 2, 'gated rolled back');
  await until('sum(canary_rollouts)', (v) => v === 0, 'no rollout running');
}, 240_000);

describe('deploy/monitoring/prometheus-rules.yaml', () => {
  test('promtool check rules passes on the rule groups', async () => {
    const promtool = findBinary('PROMTOOL_PATH', ['promtool'], ['/usr/bin/promtool']);
    if (!promtool)
      throw new Error("promtool not found (PROMTOOL_PATH, PATH): it comes with Debian's prometheus");
    // The PrometheusRule's spec is a rule file's content.
    const rule = parseYaml(fs.readFileSync(RULES, 'utf8')) as { spec: unknown };
    const groups = file('rules.yaml', JSON.stringify(rule.spec));
    const out = await new Promise<{ code: number; text: string }>((resolve) =>
      execFile(promtool, ['check', 'rules', groups], (err, stdout, stderr) =>
        resolve({ code: err ? 1 : 0, text: `${stdout}${stderr}` }),
      ),
    );
    expect(out.text).toMatch(/SUCCESS: \d+ rules found/);
    expect(out.code).toBe(0);
  });

  test('every rule expression evaluates against the worker live series', async () => {
    const rule = parseYaml(fs.readFileSync(RULES, 'utf8')) as {
      spec: { groups: Array<{ rules: Array<{ alert?: string; record?: string; expr: string }> }> };
    };
    const exprs = rule.spec.groups.flatMap((g) => g.rules.map((r) => [r.alert ?? r.record, r.expr] as const));
    expect(exprs.length).toBeGreaterThanOrEqual(4);
    for (const [, expr] of exprs) await query(expr);
    // Nothing is stuck, no worker lacks a poller: those alerts do not fire here.
    for (const [name, expr] of exprs) {
      if (/Stuck|NoPoller|NotPolling/.test(name ?? '')) expect([name, await query(expr)]).toEqual([name, []]);
    }
  });
});

test('every query of deploy/monitoring/grafana-dashboard.json evaluates against the live series', async () => {
  const dashboard = JSON.parse(fs.readFileSync(DASHBOARD, 'utf8')) as {
    panels: Array<{ title: string; targets?: Array<{ expr: string }> }>;
  };
  const answered = new Set<string>();
  for (const panel of dashboard.panels) {
    for (const t of panel.targets ?? []) {
      const samples = await query(t.expr.replace(/\$namespace/g, '.*'));
      if (samples.length > 0) answered.add(panel.title);
    }
  }
  // The panels on what this worker did have data (the rollouts above ran before this test).
  expect([...answered]).toEqual(
    expect.arrayContaining([
      'Running rollouts by phase',
      'Rollouts ended per hour',
      'Decisions per minute by verdict and action',
      'Analysis round duration',
      'Breach to weight 0',
      'Alert deliveries per minute',
      'Workers polling',
      'Workflow task pollers',
      'Worker memory (RSS)',
    ]),
  );
});
