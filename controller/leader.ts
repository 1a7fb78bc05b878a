// Lease-based leader election (coordination.k8s.io/v1), the way client-go does it: the holder renews the Lease every
// retry period; a candidate takes it over only once it has seen the same record, unrenewed, for a whole lease
// duration by its own clock (so clock skew between replicas does not matter). Writes carry the resourceVersion read,
// so two candidates never both win: the second gets a 409 and stays a candidate.
import { CoordinationV1Api, V1MicroTime, type KubeConfig, type V1Lease } from '@kubernetes/client-node';
import { httpStatus } from '../activities/kube/client';

export interface LeaderElectionOptions {
  namespace: string;
  name: string;
  /** This replica's identity (the pod name, by default the host name and pid). */
  identity: string;
  leaseDurationMs?: number;
  /** How often the holder renews and a candidate retries (default a third of the lease duration). */
  retryPeriodMs?: number;
  onStartedLeading: () => void;
  onStoppedLeading: () => void;
  log?: (line: string) => void;
}

export interface LeaderElector {
  isLeader(): boolean;
  /** Stops trying; a leader gives the Lease up (so another replica takes over at once). */
  stop(): Promise<void>;
}

export function startLeaderElection(kc: KubeConfig, opts: LeaderElectionOptions): LeaderElector {
  const api = kc.makeApiClient(CoordinationV1Api);
  const durationMs = opts.leaseDurationMs ?? 15_000;
  const retryMs = opts.retryPeriodMs ?? Math.max(200, Math.floor(durationMs / 3));
  const { namespace, name, identity } = opts;
  let leader = false;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  /** The last record seen (holder + renew time) and when this replica first saw it, by its own clock. */
  let observed: { record: string; at: number } | undefined;
  /** When this replica last renewed successfully: it stops leading once that is older than the lease duration. */
  let renewedAt = 0;

  const setLeader = (now: boolean) => {
    if (now === leader) return;
    leader = now;
    opts.log?.(now ? `${identity} leads (Lease ${namespace}/${name})` : `${identity} no longer leads`);
    if (now) opts.onStartedLeading();
    else opts.onStoppedLeading();
  };

  const spec = (lease: V1Lease | undefined, transitions: number) => ({
    holderIdentity: identity,
    leaseDurationSeconds: Math.max(1, Math.round(durationMs / 1000)),
    acquireTime:
      lease?.spec?.holderIdentity === identity && lease.spec.acquireTime
        ? lease.spec.acquireTime
        : new V1MicroTime(),
    renewTime: new V1MicroTime(),
    leaseTransitions: transitions,
  });

  async function tryOnce(): Promise<void> {
    let lease: V1Lease | undefined;
    try {
      lease = await api.readNamespacedLease({ namespace, name });
    } catch (err) {
      if (httpStatus(err) !== 404) throw err;
    }
    if (!lease) {
      await api.createNamespacedLease({
        namespace,
        body: { metadata: { name, namespace }, spec: spec(undefined, 0) },
      });
      renewedAt = Date.now();
      setLeader(true);
      return;
    }
    const holder = lease.spec?.holderIdentity ?? '';
    const record = `${holder}@${String(lease.spec?.renewTime ?? '')}`;
    if (observed?.record !== record) observed = { record, at: Date.now() };
    const leaseMs = (lease.spec?.leaseDurationSeconds ?? durationMs / 1000) * 1000;
    const mine = holder === identity;
    const expired = holder === '' || Date.now() - observed.at > leaseMs;
    if (!mine && !expired) {
      setLeader(false);
      return;
    }
    const transitions = (lease.spec?.leaseTransitions ?? 0) + (mine ? 0 : 1);
    await api.replaceNamespacedLease({
      namespace,
      name,
      body: { metadata: { ...lease.metadata, name, namespace }, spec: spec(lease, transitions) },
    });
    renewedAt = Date.now();
    setLeader(true);
  }

  const loop = async () => {
    if (stopped) return;
    try {
      await tryOnce();
    } catch (err) {
      // A conflict means another replica wrote first; anything else (the API server away) is retried. A leader
      // that cannot renew for a whole lease duration must stop acting: another replica may take over now.
      if (httpStatus(err) !== 409)
        opts.log?.(`leader election: ${err instanceof Error ? err.message : String(err)}`);
      if (leader && Date.now() - renewedAt > durationMs - retryMs) setLeader(false);
    }
    if (!stopped) timer = setTimeout(() => void loop(), retryMs);
  };
  void loop();

  return {
    isLeader: () => leader,
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      if (!leader) return;
      setLeader(false);
      try {
        const lease = await api.readNamespacedLease({ namespace, name });
        if (lease.spec?.holderIdentity === identity) {
          await api.replaceNamespacedLease({
            namespace,
            name,
            body: { metadata: lease.metadata, spec: { ...lease.spec, holderIdentity: '' } },
          });
        }
      } catch {
        // Best effort: the Lease expires by itself.
      }
    },
  };
}
