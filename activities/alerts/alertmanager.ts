// Posts alerts to Alertmanager's API (POST /api/v2/alerts), which routes, groups, silences and notifies as the
// team already configured it. Alertmanager identifies an alert by its label set, so posting the same event again
// (a retry) updates the same alert: deliveries are idempotent. Labels: alertname, app, namespace, version, event
// (the kind), severity, rollout (the rollout key) and condition; stage, weight, links and commands are
// annotations (they change without making a new alert).
//
// An alert stays active until a resolution resolves it (an `approved` resolves `approval`; the end of the rollout
// resolves everything with its rollout label), or at most `ttl` after it was last posted, a safety net should the
// rollout never end (its workflow terminated). Resolving reads the open alerts back (GET /api/v2/alerts filtered by
// the rollout label) and posts each again with endsAt = now, which is how Alertmanager is told an alert is over.
import type { RolloutAlertSink } from '../types';
import { DEFAULT_SINK_CONTEXT, stageText, verdictText, withLinks, type SinkContext } from './context';
import type { RolloutAlert } from '../../workflows/alerts/events';
import { authorization, send, type HttpAuth } from './http';
import { isResolution } from '../../workflows/alerts/events';

export const DEFAULT_ALERTMANAGER_TTL_MS = 24 * 3600_000;

export interface AlertmanagerSettings {
  /** Base URL, e.g. http://alertmanager.monitoring:9093 (a path prefix is kept). */
  url: string;
  auth?: HttpAuth;
  /** How long a posted alert stays active without a resolution. */
  ttlMs?: number;
}

/** An alert as Alertmanager's API takes it (postableAlert). */
export interface PostableAlert {
  labels: Record<string, string>;
  annotations?: Record<string, string>;
  startsAt?: string;
  endsAt?: string;
  generatorURL?: string;
}

const pascal = (kind: string): string => kind.replace(/(^|_)(\w)/g, (_m, _s, c: string) => c.toUpperCase());

export function alertmanagerLabels(e: RolloutAlert): Record<string, string> {
  const labels: Record<string, string> = {
    alertname: `Canary${pascal(e.kind)}`,
    app: e.target.app,
    namespace: e.target.namespace,
    version: e.version,
    event: e.kind,
    severity: e.severity,
    rollout: e.rolloutKey,
    condition: e.condition,
  };
  // An empty label value means "no such label" to Alertmanager.
  for (const [k, v] of Object.entries(labels)) if (v === '') delete labels[k];
  return labels;
}

export function alertmanagerAlert(
  event: RolloutAlert,
  ctx: SinkContext,
  nowMs: number,
  ttlMs: number,
): PostableAlert {
  const e = withLinks(event, ctx);
  const annotations: Record<string, string> = { summary: e.message, event_id: e.id };
  const stage = stageText(e);
  if (stage) annotations.stage = stage;
  if (e.weight !== undefined) annotations.weight = `${e.weight}%`;
  const verdict = verdictText(e);
  if (verdict) annotations.last_verdict = verdict;
  if (e.check) annotations.check = e.check.severity ? `${e.check.name} (${e.check.severity})` : e.check.name;
  if (e.reason) annotations.reason = e.reason;
  if (e.uiUrl) annotations.ui_url = e.uiUrl;
  if (e.commands.approve) annotations.approve = e.commands.approve;
  if (e.commands.abort) annotations.abort = e.commands.abort;
  if (e.commands.resume) annotations.resume = e.commands.resume;
  annotations.status = e.commands.status;
  // Workflow time may run ahead of the wall clock (time-skipping tests): an alert never starts in the future.
  const at = Date.parse(e.at);
  const startsAt = new Date(Number.isNaN(at) ? nowMs : Math.min(at, nowMs)).toISOString();
  return {
    labels: alertmanagerLabels(e),
    annotations,
    startsAt,
    endsAt: new Date(nowMs + ttlMs).toISOString(),
    ...(e.uiUrl ? { generatorURL: e.uiUrl } : {}),
  };
}

/** A matcher value in Alertmanager's filter syntax. */
const quote = (v: string): string => `"${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;

export class AlertmanagerAlertSink implements RolloutAlertSink {
  readonly name = 'alertmanager';
  private readonly endpoint: string;

  constructor(
    private readonly settings: AlertmanagerSettings,
    private readonly ctx: SinkContext = DEFAULT_SINK_CONTEXT,
  ) {
    this.endpoint = `${settings.url.replace(/\/+$/, '')}/api/v2/alerts`;
  }

  async deliver(e: RolloutAlert): Promise<void> {
    if (isResolution(e)) {
      await this.resolve(e);
      return;
    }
    await this.post([
      alertmanagerAlert(e, this.ctx, Date.now(), this.settings.ttlMs ?? DEFAULT_ALERTMANAGER_TTL_MS),
    ]);
  }

  /** Ends the rollout's open alerts: all of them when it ended, else those of the conditions it resolves. */
  private async resolve(e: RolloutAlert): Promise<void> {
    const open = (await this.openAlerts(e.rolloutKey)).filter(
      (a) => e.ends === true || (e.resolves ?? []).includes(a.labels.condition ?? ''),
    );
    if (open.length === 0) return;
    const now = new Date().toISOString();
    await this.post(
      open.map((a) => ({
        labels: a.labels,
        ...(a.annotations ? { annotations: a.annotations } : {}),
        ...(a.startsAt && a.startsAt <= now ? { startsAt: a.startsAt } : { startsAt: now }),
        endsAt: now,
        ...(a.generatorURL ? { generatorURL: a.generatorURL } : {}),
      })),
    );
  }

  /** The rollout's alerts that are not resolved yet (silenced and inhibited ones included). */
  async openAlerts(rolloutKey: string): Promise<PostableAlert[]> {
    const auth = authorization(this.settings.auth);
    const res = await send({
      what: 'alertmanager',
      method: 'GET',
      url: `${this.endpoint}?filter=${encodeURIComponent(`rollout=${quote(rolloutKey)}`)}`,
      headers: { accept: 'application/json', ...auth.header },
      timeoutMs: this.ctx.timeoutMs,
      secrets: auth.secrets,
    });
    let alerts: PostableAlert[];
    try {
      alerts = JSON.parse(res.text) as PostableAlert[];
    } catch {
      throw new Error(`alertmanager answered GET /api/v2/alerts with something that is not JSON`);
    }
    return Array.isArray(alerts) ? alerts.filter((a) => a.labels?.rollout === rolloutKey) : [];
  }

  private async post(alerts: PostableAlert[]): Promise<void> {
    const auth = authorization(this.settings.auth);
    await send({
      what: 'alertmanager',
      url: this.endpoint,
      headers: { 'content-type': 'application/json', ...auth.header },
      body: JSON.stringify(alerts),
      timeoutMs: this.ctx.timeoutMs,
      secrets: auth.secrets,
    });
  }
}
