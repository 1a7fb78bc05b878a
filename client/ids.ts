// What names a rollout: a workflow id, or the target `namespace/app`; and the Web UI page of one.
import { rolloutWorkflowId } from '../workflows/api';
import { dnsLabelProblem } from '../workflows/target';
import { RolloutInputError } from './errors';

function checkTargetPart(what: 'app' | 'namespace', value: string): string {
  const problem = dnsLabelProblem(value);
  if (problem) throw new RolloutInputError(`${what} ${problem}`);
  return value;
}

/**
 * `prod/checkout` → `canary.prod.checkout`; anything without a slash is taken as a workflow id. Rollouts started
 * under the legacy id (`canary-prod-checkout`) are found by {@link RolloutClient.locate}.
 */
export function resolveRolloutId(ref: string): string {
  const trimmed = (ref ?? '').trim();
  if (trimmed === '') throw new RolloutInputError('rollout id is empty: pass a workflow id or namespace/app');
  const slash = trimmed.indexOf('/');
  if (slash < 0) return trimmed;
  const namespace = trimmed.slice(0, slash);
  const app = trimmed.slice(slash + 1);
  if (namespace === '' || app === '' || app.includes('/')) {
    throw new RolloutInputError(`"${ref}" is neither a workflow id nor namespace/app (e.g. prod/checkout)`);
  }
  return rolloutWorkflowId({
    namespace: checkTargetPart('namespace', namespace),
    app: checkTargetPart('app', app),
  });
}

/** The Temporal Web UI page of a rollout: `CANARY_UI_URL` (base URL or template), or derived from the address. */
export function rolloutUiUrl(
  workflowId: string,
  options: { address?: string; namespace: string; env?: NodeJS.ProcessEnv },
): string | undefined {
  const env = options.env ?? process.env;
  const configured = env.CANARY_UI_URL?.trim();
  const id = encodeURIComponent(workflowId);
  const ns = encodeURIComponent(options.namespace);
  if (configured) {
    if (configured.includes('{workflowId}')) {
      return configured.replaceAll('{workflowId}', id).replaceAll('{namespace}', ns);
    }
    return `${configured.replace(/\/+$/, '')}/namespaces/${ns}/workflows/${id}`;
  }
  const address = options.address?.trim();
  if (!address) return undefined;
  const hostPort = address.replace(/^[a-z]+:\/\//, '');
  const portMatch = /:(\d+)$/.exec(hostPort);
  const host = portMatch ? hostPort.slice(0, portMatch.index) : hostPort;
  const port = portMatch ? portMatch[1] : '7233';
  const local = host === 'localhost' || host === '127.0.0.1' || host === '[::1]';
  if (local && port === '7233') {
    // `temporal server start-dev` serves the UI on 8233 next to the frontend on its default 7233.
    return `http://localhost:8233/namespaces/${ns}/workflows/${id}`;
  }
  if (host.endsWith('.tmprl.cloud')) return `https://cloud.temporal.io/namespaces/${ns}/workflows/${id}`;
  return undefined;
}
