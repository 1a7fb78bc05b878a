// What every sink adds to an event before sending it: the link to the rollout in the Temporal UI and the commands
// to act on it, when the workflow did not put them in the event.
import {
  rolloutCommands,
  rolloutUiUrl,
  type AlertCommands,
  type RolloutAlert,
} from '../../workflows/alerts/events';
import { DEFAULT_ALERT_TIMEOUT_MS } from './http';

export interface SinkContext {
  /** Per-request timeout (CANARY_ALERT_TIMEOUT). */
  timeoutMs: number;
  /** CANARY_TEMPORAL_UI_URL (else CANARY_UI_URL): a base URL or a {namespace}/{workflowId} template. */
  uiBase?: string;
  /** The worker's TEMPORAL_NAMESPACE, for events that do not say theirs. */
  temporalNamespace: string;
}

export const DEFAULT_SINK_CONTEXT: SinkContext = {
  timeoutMs: DEFAULT_ALERT_TIMEOUT_MS,
  temporalNamespace: 'default',
};

export type LinkedAlert = RolloutAlert & { commands: AlertCommands };

export function withLinks(e: RolloutAlert, ctx: SinkContext): LinkedAlert {
  const uiUrl =
    e.uiUrl ??
    (ctx.uiBase
      ? rolloutUiUrl(ctx.uiBase, e.temporalNamespace ?? ctx.temporalNamespace, e.workflowId)
      : undefined);
  return {
    ...e,
    commands: e.commands ?? rolloutCommands(e.workflowId, e.kind, e.stage),
    ...(uiUrl ? { uiUrl } : {}),
  };
}

/** `prod/checkout`. */
export const rolloutName = (e: RolloutAlert): string => `${e.target.namespace}/${e.target.app}`;

/** `stage 2/5` or `stage 2`, when the event has one. */
export function stageText(e: RolloutAlert): string | undefined {
  if (e.stage === undefined) return undefined;
  return e.stages !== undefined ? `${e.stage}/${e.stages}` : `${e.stage}`;
}

/** `pass (error-rate 0.4 pass, latency 120 pass)`. */
export function verdictText(e: RolloutAlert): string | undefined {
  const v = e.lastVerdict;
  if (!v) return undefined;
  const checks = (v.checks ?? []).map((c) => `${c.name} ${c.value ?? 'no data'} ${c.outcome}`);
  return checks.length > 0 ? `${v.verdict} (${checks.join(', ')})` : v.verdict;
}

/** `approval needed`. */
export const kindText = (e: RolloutAlert): string => e.kind.replace(/_/g, ' ');
