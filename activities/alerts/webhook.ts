// POSTs each alert as JSON to a webhook. The URL usually embeds a token, so it is a secret: it comes from
// the worker's environment, and errors name its host only (they end up in workflow history).
import type { AlertEvent, AlertSink } from '../types';

const DEFAULT_TIMEOUT_MS = 10_000;

export class WebhookAlertSink implements AlertSink {
  readonly type = 'webhook';
  private readonly url: string;
  /** What errors may show of the URL. */
  private readonly host: string;

  constructor(
    url: string,
    private readonly timeoutMs = DEFAULT_TIMEOUT_MS,
  ) {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      // new URL's own error carries the input, i.e. the secret.
      throw new Error('the alert webhook URL is not a valid URL');
    }
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
      throw new Error(`the alert webhook URL must be http or https, not ${parsed.protocol}`);
    }
    this.url = parsed.href;
    this.host = parsed.host;
  }

  async send(event: AlertEvent): Promise<void> {
    let res: Response;
    try {
      res = await fetch(this.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(event),
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (err) {
      // Only the error code: fetch's own errors may quote the URL.
      const e = err as { name?: string; cause?: { code?: string } };
      const why =
        e.name === 'TimeoutError' ? `no answer within ${this.timeoutMs} ms` : (e.cause?.code ?? 'failed');
      throw new Error(`webhook at ${this.host} unreachable: ${why}`);
    }
    // Drain the body so the connection can be reused; its content is not interesting.
    await res.arrayBuffer().catch(() => undefined);
    if (!res.ok) throw new Error(`webhook at ${this.host} answered ${res.status}`);
  }
}
