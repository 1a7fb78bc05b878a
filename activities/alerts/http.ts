// The one HTTP call every alert sink makes, and how its failures are classified. Messages name the receiver's host
// only: URLs carry tokens (Slack, webhooks), and these messages end up in workflow history.
export const DEFAULT_ALERT_TIMEOUT_MS = 10_000;
/** The longest Retry-After honoured; a receiver asking for more gets retried sooner, by the activity's backoff. */
const MAX_RETRY_AFTER_MS = 10 * 60_000;
const SNIPPET_CHARS = 200;

/**
 * A delivery that did not happen. `permanent`: the receiver refused the request (4xx other than 429, or a
 * redirect), and sending it again cannot help; otherwise retrying may (5xx, 429, timeouts, network errors).
 */
export class AlertDeliveryError extends Error {
  readonly permanent: boolean;
  readonly status?: number;
  /** From the receiver's Retry-After, when it sent one. */
  readonly retryAfterMs?: number;

  constructor(message: string, opts: { permanent: boolean; status?: number; retryAfterMs?: number }) {
    super(message);
    this.name = 'AlertDeliveryError';
    this.permanent = opts.permanent;
    if (opts.status !== undefined) this.status = opts.status;
    if (opts.retryAfterMs !== undefined) this.retryAfterMs = opts.retryAfterMs;
  }
}

export interface AlertRequest {
  /** Names the receiver in errors: `slack`, `webhook`, `alertmanager`, `pagerduty`. */
  what: string;
  url: string;
  method?: 'GET' | 'POST';
  headers?: Record<string, string>;
  body?: string;
  timeoutMs: number;
  /** Strings that must never appear in an error (tokens, keys, the URL's path), besides the URL itself. */
  secrets?: string[];
  /** The variable the URL comes from, for the error when it is not a URL (a rotated file's new content). */
  urlVariable?: string;
}

export interface AlertResponse {
  status: number;
  text: string;
}

/** Sends the request; resolves on 2xx, else throws an {@link AlertDeliveryError}. */
export async function send(req: AlertRequest): Promise<AlertResponse> {
  let url: URL;
  try {
    url = new URL(req.url);
  } catch {
    // URL's own error quotes its input: the secret.
    throw new AlertDeliveryError(`${req.what}: ${req.urlVariable ?? 'its URL'} does not hold a valid URL`, {
      permanent: false,
    });
  }
  const where = `${req.what} at ${url.host}`;
  const secrets = [req.url, url.pathname.length > 1 ? url.pathname : '', url.search, ...(req.secrets ?? [])];
  let res: Response;
  try {
    res = await fetch(url, {
      method: req.method ?? 'POST',
      headers: { 'user-agent': 'temporal-canary', ...req.headers },
      ...(req.body !== undefined ? { body: req.body } : {}),
      // A redirect could carry the body (and its secrets) elsewhere: treated as a refusal.
      redirect: 'manual',
      signal: AbortSignal.timeout(req.timeoutMs),
    });
  } catch (err) {
    // Only the error's name or code: fetch's own messages may quote the URL.
    const e = err as { name?: string; cause?: { code?: string } };
    const why =
      e.name === 'TimeoutError'
        ? `no answer within ${req.timeoutMs} ms`
        : (e.cause?.code ?? e.name ?? 'failed');
    throw new AlertDeliveryError(`${where} unreachable: ${why}`, { permanent: false });
  }
  const text = await res.text().catch(() => '');
  if (res.status >= 200 && res.status < 300) return { status: res.status, text };
  const snippet = redact(text.replace(/\s+/g, ' ').trim(), secrets).slice(0, SNIPPET_CHARS);
  const retryAfterMs = parseRetryAfter(res.headers.get('retry-after'));
  const retryable = res.status >= 500 || res.status === 429;
  const redirect = res.status >= 300 && res.status < 400;
  throw new AlertDeliveryError(
    `${where} answered ${res.status}${redirect ? ' (redirects are not followed)' : ''}${snippet ? `: ${snippet}` : ''}`,
    {
      permanent: !retryable,
      status: res.status,
      ...(retryable && retryAfterMs !== undefined ? { retryAfterMs } : {}),
    },
  );
}

/** Retry-After as delay-seconds or an HTTP date; capped. */
export function parseRetryAfter(value: string | null, now = Date.now()): number | undefined {
  if (!value) return undefined;
  const v = value.trim();
  let ms: number | undefined;
  if (/^\d+$/.test(v)) ms = Number(v) * 1000;
  else {
    const at = Date.parse(v);
    if (!Number.isNaN(at)) ms = Math.max(0, at - now);
  }
  return ms === undefined ? undefined : Math.min(ms, MAX_RETRY_AFTER_MS);
}

export function redact(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const s of secrets) if (s && s.length >= 4) out = out.split(s).join('[redacted]');
  return out;
}

/** Basic or bearer authorization for a receiver behind a proxy (Alertmanager). */
export type HttpAuth =
  { bearerToken: { value(): string } } | { username: string; password: { value(): string } };

export function authorization(auth: HttpAuth | undefined): {
  header: Record<string, string>;
  secrets: string[];
} {
  if (!auth) return { header: {}, secrets: [] };
  if ('bearerToken' in auth) {
    const token = auth.bearerToken.value();
    return { header: { authorization: `Bearer ${token}` }, secrets: [token] };
  }
  const password = auth.password.value();
  const basic = Buffer.from(`${auth.username}:${password}`).toString('base64');
  return { header: { authorization: `Basic ${basic}` }, secrets: [password, basic] };
}
