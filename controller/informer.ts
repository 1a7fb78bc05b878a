// The CanaryRollout informer: client-node's list+watch cache (makeInformer). What client-node 1.4 does and does not:
// - a watch ended by the server (its timeout) is resumed from the last resourceVersion seen;
// - a 410 Gone (an ERROR event with code 410, or a watch answered 410) clears the resourceVersion, and the next
//   round re-lists; the re-list reports objects that vanished meanwhile as deleted, so nothing is missed;
// - any other error (the API server restarting, a refused connection, a failed list) stops the informer for good
//   after calling the error handlers. That is what this file adds: a restart, with a growing delay (0.5 s to 30 s).
import {
  ADD,
  CustomObjectsApi,
  DELETE,
  ERROR,
  UPDATE,
  makeInformer,
  type Informer,
  type KubeConfig,
  type KubernetesListObject,
  type ObjectCache,
} from '@kubernetes/client-node';
import { GROUP, PLURAL, VERSION, type CanaryRollout } from './crd';

export interface RolloutInformer {
  /** Every object in the cache. */
  list(): CanaryRollout[];
  get(namespace: string, name: string): CanaryRollout | undefined;
  stop(): Promise<void>;
  /** How many times the informer (re-)listed, and was restarted after an error (for tests and logs). */
  stats(): { restarts: number };
}

export function startRolloutInformer(
  kc: KubeConfig,
  opts: {
    /** Watch one namespace only; default every namespace. */
    namespace?: string;
    onChange: (o: CanaryRollout, deleted: boolean) => void;
    log?: (line: string) => void;
  },
): RolloutInformer {
  const custom = kc.makeApiClient(CustomObjectsApi);
  const path = opts.namespace
    ? `/apis/${GROUP}/${VERSION}/namespaces/${opts.namespace}/${PLURAL}`
    : `/apis/${GROUP}/${VERSION}/${PLURAL}`;
  const list = async () =>
    (opts.namespace
      ? await custom.listNamespacedCustomObject({
          group: GROUP,
          version: VERSION,
          plural: PLURAL,
          namespace: opts.namespace,
        })
      : await custom.listClusterCustomObject({
          group: GROUP,
          version: VERSION,
          plural: PLURAL,
        })) as KubernetesListObject<CanaryRollout>;
  const informer: Informer<CanaryRollout> & ObjectCache<CanaryRollout> = makeInformer<CanaryRollout>(
    kc,
    path,
    list,
  );
  let stopped = false;
  let restarts = 0;
  let delayMs = 500;
  let timer: NodeJS.Timeout | undefined;

  const changed = (o: CanaryRollout, deleted: boolean) => {
    delayMs = 500; // the watch works again
    opts.onChange(o, deleted);
  };
  informer.on(ADD, (o) => changed(o, false));
  informer.on(UPDATE, (o) => changed(o, false));
  informer.on(DELETE, (o) => changed(o, true));
  informer.on(ERROR, (err: unknown) => {
    if (stopped) return;
    opts.log?.(
      `watch of ${PLURAL} failed (${err instanceof Error ? err.message : String(err)}); restarting in ${delayMs} ms`,
    );
    timer = setTimeout(() => {
      restarts++;
      informer.start().catch(() => undefined);
    }, delayMs);
    delayMs = Math.min(delayMs * 2, 30_000);
  });
  informer.start().catch(() => undefined);

  return {
    list: () => [...informer.list()],
    get: (namespace, name) => informer.get(name, namespace),
    stats: () => ({ restarts }),
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      await informer.stop();
    },
  };
}
