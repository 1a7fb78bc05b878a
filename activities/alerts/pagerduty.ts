// Sends alerts to PagerDuty's Events API v2 (POST {base}/v2/enqueue). One dedup key per rollout and condition
// (`<rolloutKey>/<condition>`): a retried trigger, or a second event of the same condition, lands in the same
// incident; a resolution resolves it. The Events API keeps no list of open incidents that a sink could read, so
// the end of a rollout resolves every fixed condition plus the `check:<name>` ones its event lists in `resolves`
// (resolving a key that never triggered is a no-op for PagerDuty). The routing key is the credential.
import { createHash } from 'node:crypto';
import type { RolloutAlertSink } from '../types';
import {
  DEFAULT_SINK_CONTEXT,
  rolloutName,
  stageText,
  verdictText,
  withLinks,
  type SinkContext,
} from './context';
import { FIXED_CONDITIONS, isResolution, type RolloutAlert } from '../../workflows/alerts/events';
import { send } from './http';
import type { Secret } from './secrets';

export const DEFAULT_PAGERDUTY_URL = 'https://events.pagerduty.com';
/** PagerDuty's limit on dedup keys. */
const MAX_DEDUP_KEY = 255;

export interface PagerDutySettings {
  routingKey: Secret;
  /** The Events API's base URL (default https://events.pagerduty.com). */
  url?: string;
}

/** The Events API v2 event (PagerDuty's "Send an alert event"). */
export interface PagerDutyEvent {
  routing_key: string;
  event_action: 'trigger' | 'acknowledge' | 'resolve';
  dedup_key: string;
  payload?: {
    summary: string;
    source: string;
    severity: 'critical' | 'error' | 'warning' | 'info';
    timestamp?: string;
    component?: string;
    group?: string;
    class?: string;
    custom_details?: Record<string, unknown>;
  };
  client?: string;
  client_url?: string;
  links?: Array<{ href: string; text: string }>;
}

/** `<rolloutKey>/<condition>`, hashed when longer than PagerDuty allows. */
export function dedupKey(rolloutKey: string, condition: string): string {
  const key = `${rolloutKey}/${condition}`;
  if (key.length <= MAX_DEDUP_KEY) return key;
  const hash = createHash('sha256').update(key).digest('hex').slice(0, 32);
  return `${key.slice(0, MAX_DEDUP_KEY - hash.length - 1)}~${hash}`;
}

export function pagerDutyTrigger(event: RolloutAlert, routingKey: string, ctx: SinkContext): PagerDutyEvent {
  const e = withLinks(event, ctx);
  const details: Record<string, unknown> = {
    event_id: e.id,
    kind: e.kind,
    app: e.target.app,
    namespace: e.target.namespace,
    version: e.version,
    workflow_id: e.workflowId,
    condition: e.condition,
    commands: e.commands,
  };
  const stage = stageText(e);
  if (stage) details.stage = stage;
  if (e.weight !== undefined) details.weight = `${e.weight}%`;
  const verdict = verdictText(e);
  if (verdict) details.last_verdict = verdict;
  if (e.check) details.check = e.check;
  if (e.reason) details.reason = e.reason;
  return {
    routing_key: routingKey,
    event_action: 'trigger',
    dedup_key: dedupKey(e.rolloutKey, e.condition),
    payload: {
      summary: e.message.length <= 1024 ? e.message : `${e.message.slice(0, 1023)}…`,
      source: rolloutName(e),
      severity: e.severity,
      timestamp: e.at,
      component: e.target.app,
      group: e.target.namespace,
      class: e.kind,
      custom_details: details,
    },
    client: 'temporal-canary',
    ...(e.uiUrl
      ? { client_url: e.uiUrl, links: [{ href: e.uiUrl, text: 'Rollout in the Temporal UI' }] }
      : {}),
  };
}

/** The conditions a resolution resolves in PagerDuty. */
export function resolvedConditions(e: RolloutAlert): string[] {
  const listed = e.resolves ?? [];
  return e.ends ? [...new Set([...FIXED_CONDITIONS, ...listed])] : [...new Set(listed)];
}

export class PagerDutyAlertSink implements RolloutAlertSink {
  readonly name = 'pagerduty';
  private readonly endpoint: string;

  constructor(
    private readonly settings: PagerDutySettings,
    private readonly ctx: SinkContext = DEFAULT_SINK_CONTEXT,
  ) {
    this.endpoint = `${(settings.url ?? DEFAULT_PAGERDUTY_URL).replace(/\/+$/, '')}/v2/enqueue`;
  }

  async deliver(e: RolloutAlert): Promise<void> {
    const routingKey = this.settings.routingKey.value();
    if (!isResolution(e)) {
      await this.enqueue(pagerDutyTrigger(e, routingKey, this.ctx), routingKey);
      return;
    }
    // In order, so a retry after a failure resolves the rest; resolving twice is harmless.
    for (const condition of resolvedConditions(e)) {
      await this.enqueue(
        { routing_key: routingKey, event_action: 'resolve', dedup_key: dedupKey(e.rolloutKey, condition) },
        routingKey,
      );
    }
  }

  private async enqueue(event: PagerDutyEvent, routingKey: string): Promise<void> {
    await send({
      what: 'pagerduty',
      url: this.endpoint,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(event),
      timeoutMs: this.ctx.timeoutMs,
      secrets: [routingKey],
    });
  }
}
