// The rollout's first step, before anything is touched: can this worker drive this target with this plan? The
// workload manager, the router and the metrics source each look (read-only) at what they will need, and every
// problem comes back at once, so a rollout that cannot work never starts. Nothing here changes the cluster.
import type { Plan } from '../workflows/types';
import type { Target } from '../workflows/target';
import { metricsOfferProblems } from '../workflows/metrics-offer';
import { mirrorRouterProblems } from '../workflows/mirror-spec';
import { planStartFindings } from '../workflows/plan-findings';
import type { ProviderSource } from './factory';
import { metricsPreflight } from './metrics/preflight';
import { webPreflight } from './metrics/web';
import {
  ProviderError,
  type MetricsProvider,
  type PodLabels,
  type PreflightFinding,
  type TrafficRouter,
  type WorkloadManager,
} from './types';

export interface PreflightInput {
  target: Target;
  /** The validated plan: its checks, as the judge reads them. */
  plan: Plan;
  version: string;
  image?: string;
}

export interface PreflightReport {
  findings: PreflightFinding[];
  /** The version stable runs, when the workload manager could tell. */
  stableVersion?: string;
  /** How long the preflight took, in ms (for the note in status). */
  tookMs: number;
  /** This worker demands verified identities for people's requests (CANARY_REQUIRE_VERIFIED). */
  requireVerified?: true;
}

/** Runs every preflight check this worker's providers offer for the target; never throws for what it finds. */
export async function runPreflight(p: ProviderSource, input: PreflightInput): Promise<PreflightReport> {
  const started = Date.now();
  const { target, plan, version, image } = input;
  // What the plan cannot do as written, judged at this worker's clock (windows that do not open in time, checks that
  // can never act): the client refuses the same before it starts, this guards direct starts and late ones.
  const findings: PreflightFinding[] = planFindings(plan, started);

  const workloads = provider(findings, 'workload', () => p.workloads(target));
  const router = provider(findings, 'router', () => p.router(target));
  // A shadow stage on a router that cannot mirror (the worker's default one, when the target names none).
  for (const problem of mirrorRouterProblems(plan, router?.type)) {
    findings.push({
      area: 'object',
      cause: 'input',
      level: 'refuse',
      message: target.traffic
        ? problem.message
        : `${problem.message} (the target names no router, so this worker's default, ${router?.type}, routes it)`,
      path: problem.path,
    });
  }
  // Web checks read their own endpoints (their secrets are looked at here): only other checks need a metrics source.
  findings.push(...webPreflight(plan));
  const measured = plan.analysis.rules
    ? plan.analysis.rules.some((r) => !r.web && !r.job)
    : plan.analysis.checks.length > 0;
  const metrics = measured ? provider(findings, 'metrics', () => p.metrics(target)) : undefined;

  let pods: PodLabels = {};
  let stableVersion: string | undefined;
  if (workloads?.preflight) {
    const w = await guarded(findings, 'workload', () => workloads.preflight!(version, image));
    if (w) {
      findings.push(...w.findings);
      pods = w.pods ?? {};
      stableVersion = w.stableVersion;
    }
  }
  const versions = { canary: version, ...(stableVersion ? { stable: stableVersion } : {}) };
  const routerFindings = router?.preflight
    ? guarded(findings, 'router', () => router.preflight!(versions, pods))
    : undefined;
  const metricFindings = metrics ? metricsStep(metrics, target, plan, versions, findings) : undefined;
  for (const found of await Promise.all([routerFindings, metricFindings])) findings.push(...(found ?? []));

  return {
    findings: deduplicated(findings),
    ...(stableVersion ? { stableVersion } : {}),
    tookMs: Date.now() - started,
  };
}

function planFindings(plan: Plan, nowMs: number): PreflightFinding[] {
  const { problems, warnings } = planStartFindings(plan, nowMs);
  const finding = (level: 'refuse' | 'warn') => (p: { path: string; message: string }) =>
    ({
      area: p.path.startsWith('windows') ? 'window' : 'query',
      cause: 'input',
      level,
      message: p.message,
      ...(p.path ? { path: p.path } : {}),
    }) satisfies PreflightFinding;
  return [...problems.map(finding('refuse')), ...warnings.map(finding('warn'))];
}

/** What the metrics provider this worker would use can answer, then each check's queries run once. */
async function metricsStep(
  metrics: MetricsProvider,
  target: Target,
  plan: Plan,
  versions: { canary: string; stable?: string },
  findings: PreflightFinding[],
): Promise<PreflightFinding[]> {
  // A target without `metrics` uses the worker's default provider: check the plan against that one.
  const provider = metrics.type === 'prometheus' || metrics.type === 'local' ? metrics.type : undefined;
  const effective: Target =
    target.metrics || !provider ? target : { ...target, metrics: { provider } as Target['metrics'] };
  const unmeasurable = metricsOfferProblems(plan, effective).map((problem): PreflightFinding => ({
    area: 'metrics',
    cause: 'input',
    level: 'refuse',
    message: target.metrics
      ? problem.message
      : `${problem.message} (the target names no metrics source, so this worker's default, ${provider}, measures it)`,
    path: problem.path,
  }));
  if (unmeasurable.length > 0) return unmeasurable;
  return (await guarded(findings, 'metrics', () => metricsPreflight(metrics, plan, versions))) ?? [];
}

type Part = 'workload' | 'router' | 'metrics';

/** Builds a provider; a worker that cannot build one (no cluster configured, no Prometheus URL) is a finding. */
function provider<T extends TrafficRouter | WorkloadManager | MetricsProvider>(
  findings: PreflightFinding[],
  part: Part,
  build: () => T,
): T | undefined {
  try {
    return build();
  } catch (err) {
    findings.push(failed(part, err));
    return undefined;
  }
}

/** Runs one provider's preflight; an error it throws (the server did not answer) is a finding too. */
async function guarded<T>(
  findings: PreflightFinding[],
  part: Part,
  run: () => Promise<T>,
): Promise<T | undefined> {
  try {
    return await run();
  } catch (err) {
    findings.push(failed(part, err));
    return undefined;
  }
}

/**
 * A provider that could not be built or could not look: the target's fault where it asks for what cannot be
 * (`invalid`, `not_found`), the worker's otherwise (no credentials, a forbidden verb, a server that did not answer).
 */
function failed(part: Part, err: unknown): PreflightFinding {
  const message = err instanceof Error ? err.message : String(err);
  const kind = err instanceof ProviderError ? err.kind : undefined;
  return {
    area:
      part === 'metrics'
        ? 'metrics'
        : kind === 'forbidden'
          ? 'access'
          : kind === 'not_found'
            ? 'object'
            : 'cluster',
    cause: kind === 'invalid' || kind === 'not_found' ? 'input' : 'infrastructure',
    level: 'refuse',
    // The worker's own configuration is the same whichever provider met it: said once (deduplicated).
    message:
      kind === 'unconfigured'
        ? message
        : `the ${part === 'workload' ? 'workload manager' : part} could not be checked: ${message}`,
  };
}

/** The router and the workload manager may both find the same unreachable server: say it once. */
function deduplicated(findings: PreflightFinding[]): PreflightFinding[] {
  const seen = new Set<string>();
  return findings.filter((f) => {
    const key = `${f.level}\u0000${f.message}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}
