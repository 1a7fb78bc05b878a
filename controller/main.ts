// The controller process (`canary controller`): watches CanaryRollout objects, and while it holds the Lease, turns
// each into a rollout and mirrors the rollout back. Objects are handled one look at a time each (a look that is
// under way when something changes is followed by another), on every watch event and every poll interval.
import * as os from 'node:os';
import { CoreV1Api, CustomObjectsApi, type KubeConfig } from '@kubernetes/client-node';
import type { RolloutClient } from '../client/rollout-client';
import { keyOf, type CanaryRollout } from './crd';
import { startRolloutInformer, type RolloutInformer } from './informer';
import { startLeaderElection, type LeaderElector } from './leader';
import { Reconciler } from './reconciler';

export interface ControllerOptions {
  kubeConfig: KubeConfig;
  rollouts: RolloutClient;
  /** Watch one namespace only (default: every namespace). */
  namespace?: string;
  /** Where the Lease lives (default POD_NAMESPACE, else `default`) and its name. */
  leaseNamespace?: string;
  leaseName?: string;
  /** This replica's name (default POD_NAME, else host name and pid). */
  identity?: string;
  leaseDurationMs?: number;
  /** How often every object is looked at (default 1 s): the status of running rollouts follows within it. */
  pollMs?: number;
  log?: (line: string) => void;
}

export interface Controller {
  isLeader(): boolean;
  informer: RolloutInformer;
  /** Stops watching and acting, waits for the looks under way, and gives the Lease up. */
  stop(): Promise<void>;
}

export const DEFAULT_LEASE_NAME = 'temporal-canary-controller';

export function defaultIdentity(env: NodeJS.ProcessEnv = process.env): string {
  return env.POD_NAME || `${os.hostname()}-${process.pid}`;
}

export function startController(opts: ControllerOptions): Controller {
  const log = opts.log ?? ((line: string) => process.stderr.write(`${new Date().toISOString()} ${line}\n`));
  const identity = opts.identity ?? defaultIdentity();
  const reconciler = new Reconciler({
    rollouts: opts.rollouts,
    custom: opts.kubeConfig.makeApiClient(CustomObjectsApi),
    core: opts.kubeConfig.makeApiClient(CoreV1Api),
    identity,
    log,
  });
  const running = new Map<string, Promise<void>>();
  const again = new Set<string>();
  let stopped = false;

  const look = (key: string): void => {
    if (stopped || !elector.isLeader()) return;
    if (running.has(key)) {
      again.add(key);
      return;
    }
    const [namespace, name] = key.split('/');
    const o = informer.get(namespace, name);
    if (!o) return;
    const work = reconciler
      .reconcile(structuredClone(o) as CanaryRollout)
      .catch((err: unknown) => log(`${key}: ${err instanceof Error ? err.message : String(err)}`))
      .finally(() => {
        running.delete(key);
        if (again.delete(key)) look(key);
      });
    running.set(key, work);
  };

  const informer = startRolloutInformer(opts.kubeConfig, {
    ...(opts.namespace ? { namespace: opts.namespace } : {}),
    onChange: (o) => look(keyOf(o)),
    log,
  });
  const lookAll = () => {
    for (const o of informer.list()) look(keyOf(o));
  };
  const elector: LeaderElector = startLeaderElection(opts.kubeConfig, {
    namespace: opts.leaseNamespace ?? (process.env.POD_NAMESPACE || 'default'),
    name: opts.leaseName ?? DEFAULT_LEASE_NAME,
    identity,
    ...(opts.leaseDurationMs ? { leaseDurationMs: opts.leaseDurationMs } : {}),
    onStartedLeading: lookAll,
    onStoppedLeading: () => undefined,
    log,
  });
  // Each poll lists the running rollouts once (the reconciler's hint that spares a describe per unmoved rollout), then
  // looks at every object. A poll whose list is still under way is skipped.
  const pollMs = opts.pollMs ?? 1_000;
  let listing = false;
  const poll = setInterval(() => {
    if (listing || stopped || !elector.isLeader()) return;
    listing = true;
    reconciler
      .listRunning(2 * pollMs)
      .then(lookAll)
      .finally(() => (listing = false));
  }, pollMs);

  return {
    isLeader: () => elector.isLeader(),
    informer,
    async stop() {
      stopped = true;
      clearInterval(poll);
      await informer.stop();
      await Promise.all(running.values());
      await elector.stop();
    },
  };
}
