// Loopback HTTP receivers for the alert sinks' tests: one that records every request (Slack-style incoming
// webhooks and signed webhooks alike), checks webhook signatures, deduplicates by event id as a receiver should,
// and can be told to fail or to be slow; and one that speaks PagerDuty's Events API v2 (validates the request
// format, answers 202 like PagerDuty, and keeps the incidents' state by dedup key).
import * as http from 'node:http';
import type * as net from 'node:net';
import { EVENT_ID_HEADER, SIGNATURE_HEADER, verifySignature } from '../activities/alerts/webhook';

export interface RecordedRequest {
  method: string;
  /** Path and query, as received: the part of the URL that is a secret for Slack and webhooks. */
  path: string;
  headers: http.IncomingHttpHeaders;
  /** The raw body, as signed. */
  body: string;
  /** The body parsed as JSON, when it is JSON. */
  json?: unknown;
  /** With a secret: whether X-Canary-Signature verifies; absent without one. */
  signatureValid?: boolean;
  /** The status this receiver answered with. */
  status: number;
}

export interface Answer {
  status: number;
  body?: string;
  headers?: Record<string, string>;
}

export interface ReceiverOptions {
  /** Checks X-Canary-Signature with this key; a request that does not verify is answered 401. */
  secret?: string;
  toleranceSec?: number;
  /** How to answer a request that is not made to fail (default 200 `ok`, as Slack answers). */
  respond?: (req: Omit<RecordedRequest, 'status'>) => Answer;
}

export interface Receiver {
  /** http://127.0.0.1:port */
  url: string;
  /** 127.0.0.1:port: all an error message may show. */
  host: string;
  /** Every request, in arrival order, with what it was answered. */
  requests: RecordedRequest[];
  /** The requests answered 2xx. */
  accepted(): RecordedRequest[];
  /** Distinct X-Canary-Event-Id values among accepted requests (a receiver drops repeats). */
  acceptedEventIds(): string[];
  /** The next `times` requests get this answer instead (e.g. 500, or 429 with Retry-After). */
  failNext(times: number, answer: Answer): void;
  /** Every request waits this long before it is answered (0: answer at once). */
  delay(ms: number): void;
  /** Forgets recorded requests, failures and delay. */
  reset(): void;
  /** Resolves once at least `n` requests arrived. */
  waitFor(n: number, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

export async function startReceiver(opts: ReceiverOptions = {}): Promise<Receiver> {
  const requests: RecordedRequest[] = [];
  let failures: Array<Answer> = [];
  let delayMs = 0;
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      let json: unknown;
      try {
        json = body ? JSON.parse(body) : undefined;
      } catch {
        json = undefined;
      }
      const seen: Omit<RecordedRequest, 'status'> = {
        method: req.method ?? '',
        path: req.url ?? '',
        headers: req.headers,
        body,
        ...(json !== undefined ? { json } : {}),
      };
      if (opts.secret !== undefined) {
        const header = req.headers[SIGNATURE_HEADER];
        seen.signatureValid = verifySignature(
          opts.secret,
          Array.isArray(header) ? header[0] : header,
          body,
          opts.toleranceSec,
        );
      }
      const answer: Answer =
        failures.shift() ??
        (seen.signatureValid === false
          ? { status: 401, body: 'bad signature' }
          : (opts.respond?.(seen) ?? { status: 200, body: 'ok' }));
      const record: RecordedRequest = { ...seen, status: answer.status };
      requests.push(record);
      const reply = () => {
        if (res.destroyed) return;
        res.writeHead(answer.status, { 'content-type': 'text/plain', ...answer.headers });
        res.end(answer.body ?? '');
      };
      if (delayMs > 0) setTimeout(reply, delayMs);
      else reply();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  const accepted = () => requests.filter((r) => r.status >= 200 && r.status < 300);
  return {
    url: `http://127.0.0.1:${port}`,
    host: `127.0.0.1:${port}`,
    requests,
    accepted,
    acceptedEventIds: () => [
      ...new Set(
        accepted().flatMap((r) => (r.headers[EVENT_ID_HEADER] ? [String(r.headers[EVENT_ID_HEADER])] : [])),
      ),
    ],
    failNext: (times, answer) => {
      for (let i = 0; i < times; i++) failures.push(answer);
    },
    delay: (ms) => {
      delayMs = ms;
    },
    reset: () => {
      requests.length = 0;
      failures = [];
      delayMs = 0;
    },
    waitFor: async (n, timeoutMs = 10_000) => {
      const deadline = Date.now() + timeoutMs;
      while (requests.length < n) {
        if (Date.now() > deadline) throw new Error(`receiver got ${requests.length} of ${n} requests`);
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    close: async () => {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
}

// ---------------------------------------------------------------------------------------------------- PagerDuty

export interface Incident {
  dedupKey: string;
  status: 'triggered' | 'acknowledged' | 'resolved';
  /** How many trigger events it received (a second trigger of an open incident is deduplicated into it). */
  triggers: number;
  summary?: string;
  severity?: string;
  customDetails?: Record<string, unknown>;
}

export interface PagerDutyReceiver extends Receiver {
  /** By dedup key. */
  incidents: Map<string, Incident>;
}

const PD_SEVERITIES = ['critical', 'error', 'warning', 'info'];
const PD_ACTIONS = ['trigger', 'acknowledge', 'resolve'];

/** What PagerDuty's Events API v2 would refuse in this body (its 400 "Event object is invalid"). */
export function pagerDutyProblems(body: unknown): string[] {
  const errors: string[] = [];
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return ['body must be a JSON object'];
  const b = body as Record<string, unknown>;
  if (typeof b.routing_key !== 'string' || b.routing_key.length !== 32) {
    errors.push("'routing_key' must be a 32-character string");
  }
  if (typeof b.event_action !== 'string' || !PD_ACTIONS.includes(b.event_action)) {
    errors.push(`'event_action' must be one of ${PD_ACTIONS.join(', ')}`);
  }
  if (b.dedup_key !== undefined && (typeof b.dedup_key !== 'string' || b.dedup_key.length > 255)) {
    errors.push("'dedup_key' must be a string of at most 255 characters");
  }
  if (b.event_action !== 'trigger' && typeof b.dedup_key !== 'string') {
    errors.push(`'dedup_key' is required for ${String(b.event_action)}`);
  }
  if (b.event_action === 'trigger') {
    const p = b.payload as Record<string, unknown> | undefined;
    if (typeof p !== 'object' || p === null) errors.push("'payload' is missing or not an object");
    else {
      if (typeof p.summary !== 'string' || p.summary === '' || p.summary.length > 1024) {
        errors.push("'payload.summary' must be a non-empty string of at most 1024 characters");
      }
      if (typeof p.source !== 'string' || p.source === '') errors.push("'payload.source' is missing");
      if (typeof p.severity !== 'string' || !PD_SEVERITIES.includes(p.severity)) {
        errors.push(`'payload.severity' must be one of ${PD_SEVERITIES.join(', ')}`);
      }
      if (p.timestamp !== undefined && Number.isNaN(Date.parse(String(p.timestamp)))) {
        errors.push("'payload.timestamp' must be an ISO-8601 timestamp");
      }
    }
  }
  return errors;
}

/** A receiver for POST /v2/enqueue that answers as PagerDuty does, and keeps incidents by dedup key. */
export async function startPagerDutyReceiver(): Promise<PagerDutyReceiver> {
  const incidents = new Map<string, Incident>();
  let generated = 0;
  const receiver = await startReceiver({
    respond: (req) => {
      if (req.method !== 'POST' || req.path !== '/v2/enqueue') return { status: 404, body: 'not found' };
      const errors = pagerDutyProblems(req.json);
      if (errors.length > 0) {
        return {
          status: 400,
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ status: 'invalid event', message: 'Event object is invalid', errors }),
        };
      }
      const b = req.json as {
        event_action: 'trigger' | 'acknowledge' | 'resolve';
        dedup_key?: string;
        payload?: { summary: string; severity: string; custom_details?: Record<string, unknown> };
      };
      const key = b.dedup_key ?? `generated-${++generated}`;
      const open = incidents.get(key);
      if (b.event_action === 'trigger') {
        if (open && open.status !== 'resolved') open.triggers += 1;
        else {
          incidents.set(key, {
            dedupKey: key,
            status: 'triggered',
            triggers: 1,
            summary: b.payload!.summary,
            severity: b.payload!.severity,
            ...(b.payload!.custom_details ? { customDetails: b.payload!.custom_details } : {}),
          });
        }
      } else if (open && open.status !== 'resolved') {
        // Acknowledging or resolving a key with no open incident is accepted and does nothing, as PagerDuty does.
        open.status = b.event_action === 'resolve' ? 'resolved' : 'acknowledged';
      }
      return {
        status: 202,
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ status: 'success', message: 'Event processed', dedup_key: key }),
      };
    },
  });
  const reset = receiver.reset;
  return Object.assign(receiver, {
    incidents,
    reset: () => {
      reset();
      incidents.clear();
    },
  });
}
