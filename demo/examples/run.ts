// One example plan, run for real on an example stack (stack.ts): the plan compressed to about a minute (scale.ts),
// its target's objects created in a namespace of its own (harness/kube-rollout.ts createTargetFixture), every series
// its checks read served (series.ts: the template set's from a synthetic exporter per side, the cluster's from
// harness/cluster-exporter.ts), with each side's share of requests following the live router object. Then the
// rollout of v2 starts through the client library, as `canary start` would; the worker's preflight has the first
// word (a refusal ends the run with its reasons), approval gates are approved with the real CLI (unless a person
// wants to), and progress and alerts are narrated. `faulty` makes v2 unhealthy in every way the checks watch.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { V1DeploymentSpec } from '@kubernetes/client-node';
import { stringify } from 'yaml';
import { loadPlan } from '../../client/plan-file';
import { RolloutNotStartedError, rolloutResult, rolloutUiUrl, type RolloutStatus } from '../../client/index';
import { formatTime, progressLines } from '../../client/render';
import { readAlerts } from '../../harness/alerts';
import { templateSetForRouter, validateTarget, type Target, type TargetSpec } from '../../workflows/target';
import { describePlan, formatProblems, validatePlan } from '../../workflows/plan';
import type { Plan } from '../../workflows/types';
import { formatDuration } from '../../workflows/duration';
import type { TemplateSetName } from '../../activities/metrics/templates';
import {
  startClusterExporter,
  type ClusterExporter,
  type ClusterSource,
} from '../../harness/cluster-exporter';
import { startDeploymentSimulator, type DeploymentSimulator } from '../../harness/kube-controller';
import {
  createTargetFixture,
  deploymentSpec,
  type RouterSnapshot,
  type TargetFixture,
} from '../../harness/kube-rollout';
import { startExporter, type Exporter, type ExtraCounter, type ExtraSeries } from '../../harness/exporter';
import type { ScrapeTarget } from '../../harness/prometheus';
import { runCli } from '../../harness/processes';
import { scalePlan, type ScaledPlan } from './scale';
import { APP_SERIES, describeNeeds, seriesNeeds, type SeriesNeeds } from './series';
import type { ExampleStack } from './stack';

export const STABLE_VERSION = 'v1';
export const CANARY_VERSION = 'v2';
/** Requests per second both sides share, split by the live weight. */
export const DEFAULT_RPS = 100;

/** How a healthy and a faulty version answer: the faulty one fails 10 % and is slow past every example's bound. */
export const HEALTHY = { errorRate: 0, latencyMs: { p50: 40, p95: 120, p99: 200 } } as const;
export const FAULTY = { errorRate: 0.15, latencyMs: { p50: 400, p95: 2500, p99: 6000 } } as const;

export interface ExampleRunOptions {
  /** The example plan file (with its `target:`). */
  file: string;
  faulty?: boolean;
  /** Leave approval gates to a person (the commands are printed) instead of approving them. */
  approveByHand?: boolean;
  /** Run in this namespace instead of the target's own (CI runs each example twice, side by side). */
  namespace?: string;
  /** What the compressed holds and soak add up to (scale.ts; default 60 s). */
  targetMs?: number;
  rps?: number;
  say?: (line: string) => void;
  /** Stops following the rollout (Ctrl-C). */
  signal?: AbortSignal;
}

export type ExampleOutcome = 'promoted' | 'rolled_back' | 'not_started' | 'failed';

export interface ExampleResult {
  file: string;
  namespace: string;
  app: string;
  workflowId: string;
  outcome: ExampleOutcome;
  /** The final status (absent when the rollout never answered). */
  status?: RolloutStatus;
  /** The preflight's refusal, when it refused. */
  refused?: RolloutNotStartedError;
  /** From the start of the rollout to its end (the canary removed after a promotion). */
  rolloutMs: number;
  /** Creating the objects and exporters and waiting for the first scrapes. */
  setupMs: number;
  /** The `canary approve` commands the run ran. */
  approvals: string[];
  /** Canary weights the live router object carried, in order (repeats collapsed). */
  weightsSeen: number[];
  fixture: TargetFixture;
  /** The router objects and Services before the rollout, and stable's spec. */
  before: { snapshot: RouterSnapshot; stable: V1DeploymentSpec };
  scaled: ScaledPlan;
  needs: SeriesNeeds;
}

/** The file cannot be run: it does not load or validate, or its target is not a Kubernetes one. */
export class ExampleInputError extends Error {}

/** What the example runs: the plan (scaled) and its target, in the run's namespace. */
export interface PreparedExample {
  target: Target;
  targetSpec: TargetSpec;
  scaled: ScaledPlan;
  templates: TemplateSetName;
  needs: SeriesNeeds;
}

/** Loads, validates and scales an example without touching anything. */
export function prepareExample(
  file: string,
  opts: { namespace?: string; targetMs?: number } = {},
): PreparedExample {
  let loaded;
  try {
    loaded = loadPlan(file);
  } catch (err) {
    throw new ExampleInputError((err as Error).message);
  }
  if (!loaded.target) throw new ExampleInputError(`${file} has no target: (an example plan carries one)`);
  const targetSpec: TargetSpec = {
    ...loaded.target,
    ...(opts.namespace ? { namespace: opts.namespace } : {}),
  };
  const checked = validateTarget(targetSpec);
  if (!checked.ok) {
    throw new ExampleInputError(checked.problems.map((p) => `target.${p.path}: ${p.message}`).join('\n'));
  }
  const target = checked.target;
  if (target.workload?.kind !== 'Deployment' || !target.traffic || target.traffic.router === 'local') {
    throw new ExampleInputError(`${file}: its target must name a Deployment and a Kubernetes router`);
  }
  let scaled: ScaledPlan;
  try {
    scaled = scalePlan(loaded.spec, opts.targetMs !== undefined ? { targetMs: opts.targetMs } : {});
  } catch (err) {
    throw new ExampleInputError((err as Error).message);
  }
  const plan = validatePlan(scaled.spec);
  if (!plan.ok) throw new ExampleInputError(formatProblems(plan.problems));
  const templates =
    (target.metrics?.provider === 'prometheus' ? target.metrics.templates : undefined) ??
    templateSetForRouter(target.traffic.router);
  return { target, targetSpec, scaled, templates, needs: seriesNeeds(plan.plan, templates) };
}

export async function runExample(stack: ExampleStack, opts: ExampleRunOptions): Promise<ExampleResult> {
  const say = opts.say ?? (() => undefined);
  const faulty = opts.faulty ?? false;
  const rps = opts.rps ?? DEFAULT_RPS;
  const setupStarted = Date.now();
  const prepared = prepareExample(opts.file, opts);
  const { target, targetSpec, scaled, templates, needs } = prepared;
  const { namespace, app } = target;
  const workflowId = `canary.${namespace}.${app}`;
  const stops: Array<() => Promise<unknown>> = [];
  const group = `example-${namespace}`;

  try {
    // --- the plan ---------------------------------------------------------------------------------------------
    const planned = validatePlan(scaled.spec);
    if (!planned.ok) throw new ExampleInputError(formatProblems(planned.problems));
    say(
      `Plan ${scaled.spec.name ?? opts.file}: every duration × ${formatFactor(scaled.factor)} (holds ` +
        `${formatDuration(scaled.holdMs.before)} → ${formatDuration(scaled.holdMs.after)}): ${describePlan(planned.plan)}`,
    );
    for (const c of scaled.changes) say(`  ${c}`);
    if (scaled.liftedWindows) {
      say(
        `  deployment windows lifted for the demo (the plan says: ${scaled.liftedWindows}), so it moves now`,
      );
    }

    // --- the target's objects -----------------------------------------------------------------------------------
    await stack.kube.createNamespace(namespace);
    const fixture = await createTargetFixture(stack.admin, target, { stableVersion: STABLE_VERSION });
    say(`Namespace ${namespace}: created what the target needs`);
    for (const o of fixture.created) say(`  ${o.kind} ${o.name}: ${o.note}`);
    const simulator: DeploymentSimulator = startDeploymentSimulator(stack.adminConfig, namespace, {
      pollMs: 200,
      readyAfterMs: 1000,
    });
    stops.push(() => simulator.stop());

    // --- the series its checks read -----------------------------------------------------------------------------
    say('Series the checks read, and what serves them here:');
    for (const line of describeNeeds(needs, templates)) say(`  ${line}`);
    const sides = await startSides(prepared, fixture, faulty, rps);
    stops.push(() => Promise.all(sides.map((s) => s.exporter.stop())));
    const clusterSources = [...needs.sources.keys()].filter(
      (s): s is ClusterSource => s === 'kube-state-metrics' || s === 'cadvisor' || s === 'dcgm',
    );
    let cluster: ClusterExporter | undefined;
    if (clusterSources.length > 0) {
      cluster = await startClusterExporter({
        kc: stack.adminConfig,
        namespace,
        sources: clusterSources,
        unhealthy: (labels) => faulty && labels[fixture.versionLabel] === CANARY_VERSION,
      });
      const c = cluster;
      stops.push(() => c.stop());
    }
    const targets: ScrapeTarget[] = [
      ...sides.map((s) => ({
        job: `${templates}-${s.side}`,
        url: s.exporter.url,
        labels: { example_run: namespace },
      })),
      ...(cluster ? [{ job: 'cluster', url: cluster.url, labels: { example_run: namespace } }] : []),
    ];
    stack.prometheus.setTargets(group, targets);
    stops.push(async () => stack.prometheus.setTargets(group, []));

    // Each side's share of requests follows the live router object (or the replica ratio).
    const weightsSeen: number[] = [];
    const follower = followWeights(fixture, sides, rps, weightsSeen);
    stops.push(() => follower.stop());
    await follower.first;

    // The preflight looks for stable's series: wait for a few scrapes of every target (rate() needs two), and for
    // the history a day-over-day check reads back (its scaled offset) by the time its first round comes.
    const historyMs = historyNeededMs(planned.plan);
    await waitForScrapes(stack.prometheus.url, targets, 3, historyMs, opts.signal);
    const setupMs = Date.now() - setupStarted;
    say(
      `  scraped by Prometheus${historyMs > 0 ? ` for ${formatDuration(historyMs)} (history a compare offset reads)` : ''}: ready in ${(setupMs / 1000).toFixed(1)}s`,
    );

    // --- the rollout ---------------------------------------------------------------------------------------------
    const before = {
      snapshot: await fixture.snapshot(),
      stable: deploymentSpec(await fixture.stableDeployment()),
    };
    const image = fixture.imageFor(CANARY_VERSION);
    const cli = stack.cli;
    const ref = `${namespace}/${app}`;
    const t0 = Date.now();
    say(
      `Rolling ${ref} out from ${STABLE_VERSION} to ${CANARY_VERSION} (${image})` +
        (faulty ? ': v2 is faulty (15 % errors, slow, and bad on every series its checks read)' : ''),
    );
    // The plan as it runs, beside its target, where the user can read it (and start it again by hand).
    const planFile = path.join(stack.workDir, `${namespace}.${path.basename(opts.file)}`);
    fs.writeFileSync(planFile, stringify({ ...scaled.spec, target: targetSpec }));
    say(`  as: ${cli} start --plan ${planFile} --version ${CANARY_VERSION} --image ${image}`);
    await stack.client.start({
      target: targetSpec,
      version: CANARY_VERSION,
      image,
      plan: scaled.spec,
      requestedBy: 'canary-demo',
      cli,
    });
    if (stack.uiUrl) {
      say(
        `  Temporal UI: ${rolloutUiUrl(workflowId, { namespace: stack.temporal.namespace, env: { CANARY_UI_URL: stack.uiUrl } })}`,
      );
    }
    const base = {
      file: opts.file,
      namespace,
      app,
      workflowId,
      approvals: [] as string[],
      weightsSeen,
      fixture,
      before,
      scaled,
      needs,
      setupMs,
    };
    try {
      await stack.client.awaitPreflight(workflowId, { timeoutMs: 60_000 });
    } catch (err) {
      if (!(err instanceof RolloutNotStartedError)) throw err;
      say(
        `Refused by the worker's preflight (${err.kind === 'input' ? 'the plan or target' : "the worker's environment"}): nothing was changed.`,
      );
      for (const line of err.message.split('\n').slice(1)) say(line);
      return { ...base, outcome: 'not_started', refused: err, rolloutMs: Date.now() - t0 };
    }

    let prev: RolloutStatus | undefined;
    const approved = new Set<string>();
    let alertsSeen = 0;
    const narrateAlerts = () => {
      const alerts = readAlerts(stack.alertLog, workflowId);
      for (const a of alerts.slice(alertsSeen)) {
        say(`[${formatTime(new Date(a.at), new Date())}] alert (${a.severity}): ${a.message}`);
      }
      alertsSeen = alerts.length;
    };
    const final = await stack.client.waitForOutcome(workflowId, {
      pollMs: 1_000,
      ...(opts.signal ? { signal: opts.signal } : {}),
      onStatus: async (status) => {
        narrateAlerts();
        for (const line of progressLines(prev, status, new Date(), { cliName: cli })) say(line);
        prev = status;
        const gate = status.gate;
        if (status.phase !== 'waiting_approval' || !gate || opts.approveByHand) return;
        const key = `${gate.stage}${gate.promotion ? '/promotion' : ''}`;
        if (approved.has(key)) return;
        approved.add(key);
        const args = ['approve', ref, '--stage', String(gate.stage), '--comment', 'approved by the demo'];
        const command = `${cli} ${args.map(shellWord).join(' ')}`;
        say(`  the demo approves: ${command}`);
        base.approvals.push(command);
        const r = await runCli(args, stack.cliEnv);
        if (r.code !== 0) say(`  approve exited ${r.code}: ${(r.stderr || r.stdout).trim()}`);
      },
    });
    if (final.phase === 'promoted') {
      // Promotion ends with the soak (the cleanup delay): the run is over once the previous version is gone.
      say(`[${formatTime(new Date(), new Date())}] promoted; the canary goes after the soak...`);
      await rolloutResult(stack.client.client.workflow.getHandle(workflowId));
    }
    narrateAlerts();
    const rolloutMs = Date.now() - t0;
    // The weight as the rollout left it (the follower polls, and may not have seen the last change yet).
    await follower.stop();
    const { canary: last } = await fixture.weights();
    if (weightsSeen[weightsSeen.length - 1] !== last) weightsSeen.push(last);
    const outcome: ExampleOutcome =
      final.phase === 'promoted' || final.phase === 'rolled_back' || final.phase === 'not_started'
        ? final.phase
        : 'failed';
    say(
      outcome === 'promoted'
        ? `Outcome: promoted in ${formatDuration(rolloutMs)}: stable runs ${CANARY_VERSION}.`
        : outcome === 'rolled_back'
          ? `Outcome: rolled back after ${formatDuration(rolloutMs)}: ${final.rollbackReason ?? 'no reason given'}`
          : `Outcome: ${final.phase} after ${formatDuration(rolloutMs)}.`,
    );
    return { ...base, outcome, status: final, rolloutMs };
  } finally {
    for (const stop of stops.reverse()) await stop().catch(() => undefined);
  }
}

interface Side {
  side: 'stable' | 'canary';
  exporter: Exporter;
}

/** One synthetic exporter per side: the template set's series, and the app series the checks read. */
async function startSides(
  prepared: PreparedExample,
  fixture: TargetFixture,
  faulty: boolean,
  rps: number,
): Promise<Side[]> {
  const { target, templates, needs } = prepared;
  const traffic = target.traffic!;
  const appSeries = [...(needs.sources.get('app')?.series ?? [])];
  return Promise.all(
    (['stable', 'canary'] as const).map(async (side) => {
      const version = side === 'stable' ? STABLE_VERSION : CANARY_VERSION;
      const bad = faulty && side === 'canary';
      const behaviour = bad ? FAULTY : HEALTHY;
      const labels = { namespace: target.namespace, app: target.app, version };
      const extraCounters: ExtraCounter[] = [];
      const extraSeries: ExtraSeries[] = [];
      for (const name of appSeries) {
        const s = APP_SERIES[name];
        const value = bad ? s.faulty : s.healthy;
        if (s.kind === 'counter') extraCounters.push({ name, labels, perRequest: value });
        else extraSeries.push({ name, labels, value });
      }
      const service =
        traffic.router === 'nginx'
          ? side === 'stable'
            ? target.app
            : (traffic.canaryService ?? `${target.app}-canary`)
          : undefined;
      const exporter = await startExporter({
        set: templates,
        side,
        app: target.app,
        namespace: target.namespace,
        version,
        workload: side === 'stable' ? fixture.stableName : fixture.canaryName,
        ...(service ? { service } : {}),
        ...(traffic.router === 'nginx' ? { ingress: traffic.ingress } : {}),
        rps: side === 'stable' ? rps : 0,
        errorRate: behaviour.errorRate,
        latencyMs: { ...behaviour.latencyMs },
        extraCounters,
        extraSeries,
      });
      return { side, exporter };
    }),
  );
}

/** Polls the live weights and splits the requests accordingly; `first` resolves after the first reading. */
function followWeights(
  fixture: TargetFixture,
  sides: Side[],
  rps: number,
  seen: number[],
): { first: Promise<void>; stop(): Promise<void> } {
  let stopped = false;
  let resolveFirst!: () => void;
  const first = new Promise<void>((r) => (resolveFirst = r));
  const loop = (async () => {
    while (!stopped) {
      try {
        const { canary } = await fixture.weights();
        // Only on a change: each set() starts a new counting segment, and rounding at many short ones would skew
        // the histogram's buckets.
        if (seen[seen.length - 1] !== canary) {
          seen.push(canary);
          for (const s of sides) {
            s.exporter.set({ rps: (rps * (s.side === 'canary' ? canary : 100 - canary)) / 100 });
          }
        }
        resolveFirst();
      } catch {
        // A read racing a write: the next poll reads again.
      }
      await new Promise((r) => setTimeout(r, 500));
    }
  })();
  return {
    first,
    stop: async () => {
      stopped = true;
      resolveFirst();
      await loop;
    },
  };
}

/**
 * How much of stable's history must exist before the rollout starts, so that a check comparing with stable `offset`
 * ago finds data at its first round: the offset, less the time the stages before its first one take at least (each
 * one its hold, or one round when that is longer).
 */
export function historyNeededMs(plan: Plan): number {
  let needed = 0;
  for (const rule of plan.analysis.rules ?? []) {
    const offset = rule.compare?.offsetMs;
    if (!offset) continue;
    const first = Math.min(...(rule.stages ?? [1]));
    const before = plan.stages
      .slice(0, first - 1)
      .reduce((sum, s) => sum + Math.max(s.holdMs, plan.analysis.intervalMs), 0);
    needed = Math.max(needed, offset - before);
  }
  return needed;
}

/** Until every target has been scraped `samples` times (and the first of them is `historyMs` old). */
async function waitForScrapes(
  prometheusUrl: string,
  targets: ScrapeTarget[],
  samples: number,
  historyMs: number,
  signal?: AbortSignal,
): Promise<void> {
  const deadline = Date.now() + 60_000 + historyMs;
  let firstUp: number | undefined;
  for (;;) {
    if (signal?.aborted) throw signal.reason;
    const counts = await Promise.all(
      targets.map(async (t) => {
        // Successful scrapes only (up is 0 for a scrape that failed or timed out, as one does under load). The job and
        // the target's labels too: a loopback port freed by an earlier run's exporter can be this one's, and that
        // exporter's `up` would count before this target was scraped at all.
        const labels = Object.entries({ job: t.job, ...t.labels })
          .map(([k, v]) => `,${k}="${v}"`)
          .join('');
        const q = `sum_over_time(up{instance="${new URL(t.url).host}"${labels}}[5m])`;
        try {
          const res = await fetch(`${prometheusUrl}/api/v1/query?query=${encodeURIComponent(q)}`, {
            signal: AbortSignal.timeout(2_000),
          });
          const body = (await res.json()) as { data?: { result?: Array<{ value: [number, string] }> } };
          return Number(body.data?.result?.[0]?.value[1] ?? 0);
        } catch {
          return 0;
        }
      }),
    );
    if (counts.every((n) => n > 0)) firstUp ??= Date.now();
    if (counts.every((n) => n >= samples) && firstUp !== undefined && Date.now() - firstUp >= historyMs)
      return;
    if (Date.now() > deadline) {
      throw new Error(
        `Prometheus ${prometheusUrl} did not scrape ${targets.map((t) => t.url).join(', ')} in time (samples: ${counts.join(', ')})`,
      );
    }
    await new Promise((r) => setTimeout(r, 500));
  }
}

function formatFactor(f: number): string {
  return f === 1 ? '1 (short enough already)' : `1/${Math.round(1 / f)}`;
}

function shellWord(s: string): string {
  return /^[A-Za-z0-9_./:=@-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}
