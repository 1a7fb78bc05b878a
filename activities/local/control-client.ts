// A small typed client for the local stack's control API (see stack.ts), shared by the local providers.
import type { Side, SideMetrics } from '../../demo/stack';

export interface StackState {
  weight: number;
  stable: { version: string; url: string };
  canary: { version: string; url: string } | null;
}

export interface MetricsAnswer extends SideMetrics {
  side: Side;
  /** The version on that side, null when no canary runs. */
  version: string | null;
  window: number;
}

export const DEFAULT_CONTROL_URL = 'http://127.0.0.1:7001';
const DEFAULT_TIMEOUT_MS = 10_000;

/** Carries the HTTP status of a refusal, so callers can tell "refused" (4xx) from "broken". */
export class LocalStackError extends Error {
  constructor(
    message: string,
    readonly status?: number,
  ) {
    super(message);
    this.name = 'LocalStackError';
  }
}

export class LocalStackClient {
  readonly baseUrl: string;

  constructor(
    baseUrl: string = DEFAULT_CONTROL_URL,
    private readonly timeoutMs = DEFAULT_TIMEOUT_MS,
  ) {
    this.baseUrl = baseUrl.replace(/\/+$/, '');
  }

  state(): Promise<StackState> {
    return this.call('GET', '/state');
  }

  /** Returns the state after the change, with the weight before it. */
  setWeight(weight: number): Promise<StackState & { previous: number }> {
    return this.call('PUT', '/weight', { weight });
  }

  ensureCanary(version: string): Promise<StackState & { changed: boolean }> {
    return this.call('PUT', '/canary', { version });
  }

  /** Refused (409) while the canary still has weight. */
  deleteCanary(): Promise<StackState & { changed: boolean }> {
    return this.call('DELETE', '/canary');
  }

  promote(version: string): Promise<StackState & { changed: boolean }> {
    return this.call('POST', '/promote', { version });
  }

  metrics(side: Side, windowSeconds: number): Promise<MetricsAnswer> {
    return this.call('GET', `/metrics?side=${side}&window=${windowSeconds}`);
  }

  /** True when the stack answers its health check; never throws. */
  async healthy(): Promise<boolean> {
    try {
      await this.call('GET', '/healthz');
      return true;
    } catch {
      return false;
    }
  }

  private async call<T>(method: string, path: string, body?: unknown): Promise<T> {
    const what = `${method} ${path.split('?')[0]}`;
    let res: Response;
    try {
      res = await fetch(this.baseUrl + path, {
        method,
        headers: body === undefined ? undefined : { 'content-type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (err) {
      if (err instanceof Error && err.name === 'TimeoutError') {
        throw new LocalStackError(
          `local stack at ${this.baseUrl} did not answer ${what} within ${this.timeoutMs} ms`,
        );
      }
      // fetch reports "fetch failed" and hides the useful part (ECONNREFUSED, ...) in the cause.
      const code = (err as { cause?: { code?: string } }).cause?.code;
      throw new LocalStackError(
        `cannot reach the local stack at ${this.baseUrl} (is it running? start it with npm run demo or ` +
          `node dist/demo/stack-main.js)${code ? `: ${code}` : ''}`,
      );
    }
    const text = await res.text();
    if (!res.ok) {
      let detail = text;
      try {
        detail = (JSON.parse(text) as { error?: string }).error ?? text;
      } catch {
        // Not JSON: show the raw body.
      }
      throw new LocalStackError(
        `local stack at ${this.baseUrl} ${res.status >= 500 ? 'failed' : 'refused'} ${what}: ${res.status} ${detail.slice(0, 500)}`,
        res.status,
      );
    }
    try {
      return JSON.parse(text) as T;
    } catch {
      throw new LocalStackError(
        `local stack at ${this.baseUrl} answered ${what} with a body that is not JSON`,
      );
    }
  }
}
