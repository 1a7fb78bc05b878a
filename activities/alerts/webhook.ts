// POSTs each alert as JSON to a webhook: the versioned schema of docs/alerts.md, signed with HMAC-SHA256 over
// `<timestamp>.<body>` (X-Canary-Signature: t=<unix>,v1=<hex>) so a receiver can check who sent it and refuse
// replays, and named by X-Canary-Event-Id so it can drop duplicates (retries resend the same id with a fresh
// timestamp). The URL usually embeds a token, so it is a secret: it comes from the worker's environment or a
// mounted file, and errors name its host only (they end up in workflow history).
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { AlertSeverity, AlertEvent, AlertSink, RolloutAlertSink } from '../types';
import { DEFAULT_SINK_CONTEXT, withLinks, type SinkContext } from './context';
import type {
  AlertCommands,
  AlertKind,
  AlertVerdict,
  CheckSeverity,
  RolloutAlert,
} from '../../workflows/alerts/events';
import { send } from './http';
import { literalSecret, type Secret } from './secrets';

export const WEBHOOK_SCHEMA_VERSION = 1;
export const SIGNATURE_HEADER = 'x-canary-signature';
export const EVENT_ID_HEADER = 'x-canary-event-id';
/** How old a signature's timestamp a receiver should accept by default, in seconds. */
export const DEFAULT_SIGNATURE_TOLERANCE_SEC = 300;

/** The body of every webhook delivery, schema version 1 (docs/alerts.md). Fields are only ever added. */
export interface WebhookPayloadV1 {
  schemaVersion: 1;
  id: string;
  kind: AlertKind;
  severity: AlertSeverity;
  /** When it happened (ISO-8601, workflow time). */
  at: string;
  message: string;
  app: string;
  namespace: string;
  version: string;
  workflowId: string;
  rolloutKey: string;
  temporalNamespace?: string;
  uiUrl?: string;
  stage?: number;
  stages?: number;
  weight?: number;
  condition: string;
  resolves?: string[];
  ends?: boolean;
  check?: { name: string; severity?: CheckSeverity };
  reason?: string;
  by?: string;
  lastVerdict?: AlertVerdict;
  commands: AlertCommands;
}

export function webhookPayload(
  event: RolloutAlert,
  ctx: SinkContext = DEFAULT_SINK_CONTEXT,
): WebhookPayloadV1 {
  const e = withLinks(event, ctx);
  const body: WebhookPayloadV1 = {
    schemaVersion: WEBHOOK_SCHEMA_VERSION,
    id: e.id,
    kind: e.kind,
    severity: e.severity,
    at: e.at,
    message: e.message,
    app: e.target.app,
    namespace: e.target.namespace,
    version: e.version,
    workflowId: e.workflowId,
    rolloutKey: e.rolloutKey,
    condition: e.condition,
    commands: e.commands,
  };
  const optional = {
    temporalNamespace: e.temporalNamespace ?? ctx.temporalNamespace,
    uiUrl: e.uiUrl,
    stage: e.stage,
    stages: e.stages,
    weight: e.weight,
    resolves: e.resolves,
    ends: e.ends,
    check: e.check,
    reason: e.reason,
    by: e.by,
    lastVerdict: e.lastVerdict,
  };
  for (const [k, v] of Object.entries(optional)) {
    if (v !== undefined) (body as unknown as Record<string, unknown>)[k] = v;
  }
  return body;
}

/** `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`. */
export function signatureHeader(
  secret: string,
  body: string,
  nowSec = Math.floor(Date.now() / 1000),
): string {
  return `t=${nowSec},v1=${hmac(secret, `${nowSec}.${body}`)}`;
}

/**
 * For receivers: whether `header` (X-Canary-Signature) signs `body` (the raw bytes received, before any JSON
 * parsing) with `secret`, at a timestamp at most `toleranceSec` from now. Accepts several v1 values (a sender
 * rotating its key). Constant-time comparison.
 */
export function verifySignature(
  secret: string,
  header: string | undefined | null,
  body: string | Buffer,
  toleranceSec = DEFAULT_SIGNATURE_TOLERANCE_SEC,
  nowSec = Math.floor(Date.now() / 1000),
): boolean {
  if (!header) return false;
  let t: number | undefined;
  const signatures: string[] = [];
  for (const part of header.split(',')) {
    const [k, v] = part.trim().split('=', 2);
    if (k === 't' && v !== undefined && /^\d+$/.test(v)) t = Number(v);
    else if (k === 'v1' && v !== undefined && /^[0-9a-f]{64}$/i.test(v)) signatures.push(v.toLowerCase());
  }
  if (t === undefined || signatures.length === 0) return false;
  if (Math.abs(nowSec - t) > toleranceSec) return false;
  const expected = Buffer.from(hmac(secret, Buffer.concat([Buffer.from(`${t}.`), Buffer.from(body)])), 'hex');
  return signatures.some((s) => timingSafeEqual(Buffer.from(s, 'hex'), expected));
}

function hmac(secret: string, data: string | Buffer): string {
  return createHmac('sha256', secret).update(data).digest('hex');
}

export interface WebhookSettings {
  url: Secret;
  /** The HMAC key; absent: bodies go unsigned (loopback receivers, or CANARY_ALERT_WEBHOOK_UNSIGNED=true). */
  secret?: Secret;
}

export class WebhookAlertSink implements AlertSink, RolloutAlertSink {
  readonly type = 'webhook';
  readonly name = 'webhook';
  private readonly settings: WebhookSettings;

  /** A URL string (checked by the factory, which names its variable) or the settings with their sources. */
  constructor(
    settings: WebhookSettings | string,
    private readonly ctx: SinkContext = DEFAULT_SINK_CONTEXT,
  ) {
    this.settings =
      typeof settings === 'string' ? { url: literalSecret('CANARY_ALERT_WEBHOOK_URL', settings) } : settings;
  }

  async deliver(event: RolloutAlert): Promise<void> {
    await this.post(JSON.stringify(webhookPayload(event, this.ctx)), event.id);
  }

  /** The legacy `sendAlert` body: the event as the workflow sent it (no schema version). */
  async send(event: AlertEvent): Promise<void> {
    await this.post(JSON.stringify(event));
  }

  private async post(body: string, id?: string): Promise<void> {
    const url = this.settings.url.value();
    const key = this.settings.secret?.value();
    await send({
      what: 'webhook',
      url,
      urlVariable: this.settings.url.variable,
      body,
      timeoutMs: this.ctx.timeoutMs,
      headers: {
        'content-type': 'application/json',
        ...(id ? { [EVENT_ID_HEADER]: id, 'x-canary-schema-version': String(WEBHOOK_SCHEMA_VERSION) } : {}),
        ...(key ? { [SIGNATURE_HEADER]: signatureHeader(key, body) } : {}),
      },
      secrets: key ? [key] : [],
    });
  }
}
