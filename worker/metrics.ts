// The worker's /metrics (prom-client): what its rollouts do, what their activities do, and the Temporal SDK's own
// metrics, forwarded from the SDK's Prometheus exporter on a loopback port. Rollouts report through a Temporal sink
// (workflows/driver.ts RolloutMetricsSinks): sink calls record nothing in history and are skipped while a worker
// replays, so a round or a rollback is counted once, by the worker that ran it. Activities are measured by an
// activity interceptor. Labels are bounded: phases, verdicts, severities, provider and sink names, error types, and
// a rollout's namespace and app.
import * as http from 'node:http';
import * as net from 'node:net';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import type {
  ActivityExecuteInput,
  ActivityInboundCallsInterceptor,
  ActivityInterceptorsFactory,
  InjectedSinks,
  NativeConnection,
  Next,
} from '@temporalio/worker';
import type { Context as ActivityContext } from '@temporalio/activity';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { ProviderSource } from '../activities/factory';
import type { Target } from '../workflows/target';
import { ROLLOUT_METRICS_SINK, type RolloutMetricsSinks } from '../workflows/driver';

/**
 * The phases a running rollout can be in (queued: waiting for its namespace's maxConcurrent slot; promoted: soaking,
 * the previous version still running).
 */
export const ACTIVE_PHASES = [
  'queued',
  'progressing',
  'paused',
  'waiting_approval',
  'rolling_back',
  'promoted',
] as const;
/** Phases a rollout ends in; `promoted` ends once traffic is back on the promoted stable (weight 0). */
export const END_PHASES = ['promoted', 'rolled_back', 'failed', 'not_started'] as const;

interface RolloutEntry {
  namespace: string;
  app: string;
  phase: string;
  /** When this worker last heard from the rollout (its clock). */
  heardAt: number;
}

/** A rollout not heard from for this long may be running elsewhere or over: prune() asks Temporal. */
export const SILENT_AFTER_MS = 10 * 60_000;

const ROUTER_STEPS = new Set(['setCanaryWeight', 'prepareRouting', 'teardownRouting']);
const WORKLOAD_STEPS = new Set([
  'prepareCanary',
  'promoteStable',
  'ensureStableCapacity',
  'scaleDownCanary',
  'cleanupCanary',
]);
const ANALYSIS_STEPS = new Set(['runAnalysis', 'measureChecks']);
/** Alert errors that retrying cannot help (activities/rollout-activities.ts deliverAlert). */
const ALERT_REFUSALS = new Set(['AlertRejected', 'AlertSinkUnknown']);

export class RolloutMetrics {
  readonly registry = new Registry();
  /** The rollouts this worker drove last, by workflow id (a rollout another worker took over stays until it ends). */
  private readonly rollouts = new Map<string, RolloutEntry>();
  private readonly weight: Gauge;
  private readonly stage: Gauge;
  private readonly lastChange: Gauge;
  private readonly ended: Counter;
  private readonly decisions: Counter;
  private readonly breachToZero: Histogram;
  private readonly roundDuration: Histogram;
  private readonly activityFailures: Counter;
  private readonly deliveries: Counter;
  /** Whether the worker polls its task queue (set by the worker process once it runs). */
  running: () => boolean = () => false;

  constructor() {
    collectDefaultMetrics({ register: this.registry });
    const registers = [this.registry];
    const rollouts = this.rollouts;
    new Gauge({
      name: 'canary_rollouts',
      help: 'Running rollouts this worker drives, by phase (promoted: soaking)',
      labelNames: ['phase'],
      registers,
      collect() {
        const counts = new Map<string, number>(ACTIVE_PHASES.map((p) => [p, 0]));
        for (const r of rollouts.values()) counts.set(r.phase, (counts.get(r.phase) ?? 0) + 1);
        this.reset();
        for (const [phase, n] of counts) this.set({ phase }, n);
      },
    });
    this.weight = new Gauge({
      name: 'canary_rollout_weight',
      help: "A running rollout's canary weight (percent of traffic)",
      labelNames: ['namespace', 'app'],
      registers,
    });
    this.stage = new Gauge({
      name: 'canary_rollout_stage',
      help: "A running rollout's stage (1-based)",
      labelNames: ['namespace', 'app'],
      registers,
    });
    this.lastChange = new Gauge({
      name: 'canary_rollout_last_change_timestamp_seconds',
      help: "When a running rollout's phase, stage or weight last changed (Unix time)",
      labelNames: ['namespace', 'app'],
      registers,
    });
    this.ended = new Counter({
      name: 'canary_rollouts_ended_total',
      help: 'Rollouts that ended on this worker, by final phase',
      labelNames: ['phase'],
      registers,
    });
    for (const phase of END_PHASES) this.ended.inc({ phase }, 0);
    this.decisions = new Counter({
      name: 'canary_analysis_decisions_total',
      help: "Analysis rounds judged: verdict, the full form's action (none for the short form), the highest severity among failed checks",
      labelNames: ['verdict', 'action', 'severity'],
      registers,
    });
    this.breachToZero = new Histogram({
      name: 'canary_breach_to_zero_seconds',
      help: 'From the start of a rollback (a breach, an abort, a cancel) to the canary weight at 0, in workflow time',
      buckets: [0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300],
      registers,
    });
    this.roundDuration = new Histogram({
      name: 'canary_analysis_round_duration_seconds',
      help: "An analysis round's measuring activity, by metrics provider and outcome (ok, error)",
      labelNames: ['provider', 'outcome'],
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    });
    this.activityFailures = new Counter({
      name: 'canary_activity_failures_total',
      help: 'Activity attempts that failed, by provider (router, workload, metrics or alert sink type) and error kind',
      labelNames: ['activity', 'provider', 'kind'],
      registers,
    });
    this.deliveries = new Counter({
      name: 'canary_alert_deliveries_total',
      help: 'Alert delivery attempts, by sink and outcome (delivered, failed: retried, rejected: given up)',
      labelNames: ['sink', 'outcome'],
      registers,
    });
    const running = (): boolean => this.running();
    new Gauge({
      name: 'canary_worker_polling',
      help: '1 while the worker polls its task queue, 0 before it starts and once it stops',
      registers,
      collect() {
        this.set(running() ? 1 : 0);
      },
    });
  }

  /** A rollout's phase, stage and weight, at each publish (workflowId: the rollout). */
  rollout(
    workflowId: string,
    u: { namespace: string; app: string; phase: string; stage: number; weight: number; changedAt?: number },
  ): void {
    const labels = { namespace: u.namespace, app: u.app };
    const ends =
      u.phase === 'rolled_back' ||
      u.phase === 'failed' ||
      u.phase === 'not_started' ||
      (u.phase === 'promoted' && u.weight === 0);
    if (ends) {
      this.rollouts.delete(workflowId);
      this.ended.inc({ phase: u.phase });
      // Another rollout of the same app may run on (a new one started meanwhile): only the last one's series go.
      if (![...this.rollouts.values()].some((r) => r.namespace === u.namespace && r.app === u.app)) {
        this.weight.remove(labels);
        this.stage.remove(labels);
        this.lastChange.remove(labels);
      }
      return;
    }
    this.rollouts.set(workflowId, {
      namespace: u.namespace,
      app: u.app,
      phase: u.phase,
      heardAt: Date.now(),
    });
    this.weight.set(labels, u.weight);
    this.stage.set(labels, u.stage);
    this.lastChange.set(labels, (u.changedAt ?? Date.now()) / 1000);
  }

  /**
   * Forgets the rollouts not heard from for SILENT_AFTER_MS that `running` says are no longer running: they ended
   * on another worker (after taking them over), so their series here would be stale (a rollout that looks stuck).
   * A rollout still running elsewhere stays until it ends (with several workers, sum or max across them).
   */
  async prune(running: (workflowId: string) => Promise<boolean>, now = Date.now()): Promise<string[]> {
    const gone: string[] = [];
    for (const [id, r] of [...this.rollouts]) {
      if (now - r.heardAt < SILENT_AFTER_MS) continue;
      let still = true;
      try {
        still = await running(id);
      } catch {
        // Temporal unreachable: ask again next time.
      }
      // Heard from meanwhile (a publish during the call): it runs here.
      if (still || this.rollouts.get(id)?.heardAt !== r.heardAt) continue;
      this.rollouts.delete(id);
      gone.push(id);
      const labels = { namespace: r.namespace, app: r.app };
      if (![...this.rollouts.values()].some((o) => o.namespace === r.namespace && o.app === r.app)) {
        this.weight.remove(labels);
        this.stage.remove(labels);
        this.lastChange.remove(labels);
      }
    }
    return gone;
  }

  decision(d: { verdict: string; action: string; severity: string }): void {
    this.decisions.inc({ verdict: d.verdict, action: d.action, severity: d.severity });
  }

  rolledBackToZero(ms: number): void {
    this.breachToZero.observe(Math.max(0, ms) / 1000);
  }

  /** The sinks the workflows call (Worker option `sinks`); never called while a worker replays. */
  sinks(): InjectedSinks<RolloutMetricsSinks> {
    return {
      [ROLLOUT_METRICS_SINK]: {
        rollout: { fn: (info, u) => this.rollout(info.workflowId, u), callDuringReplay: false },
        decision: { fn: (_info, d) => this.decision(d), callDuringReplay: false },
        breachToZero: { fn: (_info, d) => this.rolledBackToZero(d.ms), callDuringReplay: false },
      },
    };
  }

  /** Measures every activity attempt: failures by provider and kind, analysis rounds, alert deliveries. */
  activityInterceptor(providers?: ProviderSource): ActivityInterceptorsFactory {
    return (ctx: ActivityContext) => ({ inbound: new MeasuringInterceptor(this, ctx, providers) });
  }

  /** @internal */
  activityDone(
    activity: string,
    args: unknown[],
    ms: number,
    err: unknown,
    providers?: ProviderSource,
  ): void {
    const failed = err !== undefined;
    const provider = providerOf(activity, args, providers);
    if (ANALYSIS_STEPS.has(activity)) {
      this.roundDuration.observe({ provider, outcome: failed ? 'error' : 'ok' }, ms / 1000);
    }
    if (activity === 'deliverAlert') {
      const kind = failed ? errorKind(err) : '';
      const outcome = !failed ? 'delivered' : ALERT_REFUSALS.has(kind) ? 'rejected' : 'failed';
      this.deliveries.inc({ sink: provider, outcome });
    }
    if (failed) this.activityFailures.inc({ activity, provider, kind: errorKind(err) });
  }

  /** The exposition text: this worker's series, then the SDK's (when it exports any). */
  async text(sdkMetricsUrl?: string): Promise<string> {
    const own = await this.registry.metrics();
    if (!sdkMetricsUrl) return own;
    try {
      const res = await fetch(sdkMetricsUrl, { signal: AbortSignal.timeout(2_000) });
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      return `${own}\n${await res.text()}`;
    } catch (err) {
      return `${own}\n# the Temporal SDK's metrics are unavailable: ${oneLine(err)}\n`;
    }
  }
}

class MeasuringInterceptor implements ActivityInboundCallsInterceptor {
  constructor(
    private readonly metrics: RolloutMetrics,
    private readonly ctx: ActivityContext,
    private readonly providers: ProviderSource | undefined,
  ) {}

  async execute(
    input: ActivityExecuteInput,
    next: Next<ActivityInboundCallsInterceptor, 'execute'>,
  ): Promise<unknown> {
    const started = performance.now();
    const activity = this.ctx.info.activityType;
    try {
      const result = await next(input);
      this.record(activity, input.args, started, undefined);
      return result;
    } catch (err) {
      this.record(activity, input.args, started, err ?? new Error('undefined thrown'));
      throw err;
    }
  }

  private record(activity: string, args: unknown[], started: number, err: unknown): void {
    try {
      this.metrics.activityDone(activity, args, performance.now() - started, err, this.providers);
    } catch {
      // Metrics never fail an activity.
    }
  }
}

/** The provider an activity used: the router, workload manager or metrics provider type, or the alert sink. */
function providerOf(activity: string, args: unknown[], providers?: ProviderSource): string {
  if (activity === 'deliverAlert') return label(args[0]);
  if (activity === 'sendAlert' || activity === 'alertSinks') return 'alerts';
  if (activity === 'preflight') return 'preflight';
  if (activity === 'cancelRequester') return 'temporal';
  const target = (args[0] as { target?: Target } | undefined)?.target;
  if (!providers || !target) return 'unknown';
  try {
    if (ROUTER_STEPS.has(activity)) return label(providers.router(target).type);
    if (WORKLOAD_STEPS.has(activity)) return label(providers.workloads(target).type);
    if (ANALYSIS_STEPS.has(activity)) return label(providers.metrics(target).type);
  } catch {
    // No provider for this target (unconfigured): the activity failed for that reason too.
  }
  return 'unknown';
}

/** A bounded label for an error: an ApplicationFailure's type, cancelled, or the error's class name. */
export function errorKind(err: unknown): string {
  if (err instanceof CancelledFailure) return 'Cancelled';
  if (err instanceof ApplicationFailure && err.type) return label(err.type);
  if (err instanceof Error) return label(err.name);
  return 'unknown';
}

function label(v: unknown): string {
  const s = typeof v === 'string' ? v.replace(/[^\w.-]/g, '_').slice(0, 40) : '';
  return s || 'unknown';
}

function oneLine(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).replace(/\s+/g, ' ');
}

const WORKFLOW_RUNNING = 1;
const GRPC_NOT_FOUND = 5;

/** Whether a rollout's workflow runs (any worker), for RolloutMetrics.prune. */
export function rolloutRunning(
  connection: Pick<NativeConnection, 'workflowService'>,
  namespace: string,
): (workflowId: string) => Promise<boolean> {
  return async (workflowId) => {
    try {
      const r = await connection.workflowService.describeWorkflowExecution({
        namespace,
        execution: { workflowId },
      });
      // WORKFLOW_EXECUTION_STATUS_RUNNING (temporal.api.enums.v1.WorkflowExecutionStatus).
      return r.workflowExecutionInfo?.status === WORKFLOW_RUNNING;
    } catch (err) {
      // Gone (past the namespace's retention, or never there): not running. Anything else: asked again later.
      if ((err as { code?: unknown }).code === GRPC_NOT_FOUND) return false;
      throw err;
    }
  };
}

/** The metrics port is taken (or cannot be bound): the worker refuses to start (exit 2). */
export class MetricsPortError extends Error {
  constructor(
    readonly port: number,
    message: string,
  ) {
    super(message);
    this.name = 'MetricsPortError';
  }
}

export interface MetricsServer {
  port: number;
  close(): Promise<void>;
}

/** Serves GET /metrics on host:port; refuses (MetricsPortError) when the port is in use. */
export async function serveMetrics(opts: {
  port: number;
  host: string;
  metrics: RolloutMetrics;
  /** Where the SDK's own Prometheus exporter answers (a loopback URL), forwarded after the worker's series. */
  sdkMetricsUrl?: string;
}): Promise<MetricsServer> {
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    if (path !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: the metrics are at /metrics\n');
      return;
    }
    opts.metrics.text(opts.sdkMetricsUrl).then(
      (body) => {
        res.writeHead(200, { 'content-type': opts.metrics.registry.contentType }).end(body);
      },
      (err: unknown) => {
        res.writeHead(500, { 'content-type': 'text/plain' }).end(`${oneLine(err)}\n`);
      },
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => {
      const why =
        err.code === 'EADDRINUSE'
          ? 'is already in use'
          : err.code === 'EACCES'
            ? 'may not be bound by this user'
            : `cannot be bound (${err.message})`;
      reject(
        new MetricsPortError(
          opts.port,
          `metrics port ${opts.port} ${why} (CANARY_METRICS_PORT${opts.host === '0.0.0.0' ? '' : `, on ${opts.host}`}): ` +
            'free it, choose another port, or unset CANARY_METRICS_PORT to run without /metrics',
        ),
      );
    });
    server.listen(opts.port, opts.host, () => resolve());
  });
  const address = server.address() as net.AddressInfo;
  return {
    port: address.port,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** A loopback port free right now, for the SDK's exporter (which cannot report the port it bound). */
export function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}
