// An HTTP hook: a JSON request to the plan's URL, signed with HMAC-SHA256 exactly as the alert webhook signs its
// bodies (X-Canary-Signature: t=<unix>,v1=<hex> over `<t>.<body>`), with an Idempotency-Key that stays the same
// across retries of one run. Transient failures (network, timeout, 5xx, 429) throw, so the activity's retry policy
// (the hook's `retries`, with backoff) tries again; any other answer is the hook's result.
import { ApplicationFailure } from '@temporalio/common';
import { SIGNATURE_HEADER, signatureHeader } from '../alerts/webhook';
import type { HttpHookAction } from '../../workflows/plan-hooks';
import { excerptOf, type HookRunInput, type HookRunResult } from './types';

export const IDEMPOTENCY_HEADER = 'idempotency-key';
export const HOOK_POINT_HEADER = 'x-canary-hook-point';

/** The JSON body every HTTP hook receives. Fields are only ever added. */
export interface HookRequestBody {
  rolloutId: string;
  target: { app: string; namespace: string };
  version: string;
  stage: number;
  weight: number;
  point: string;
  hook: string;
  attempt: number;
}

export function hookBody(input: HookRunInput): HookRequestBody {
  return {
    rolloutId: input.rolloutId,
    target: { app: input.target.app, namespace: input.target.namespace },
    version: input.version,
    stage: input.stage,
    weight: input.weight,
    point: input.point,
    hook: input.hook.name,
    attempt: input.attempt,
  };
}

/** A JSON answer `{"ready": false}` is "not yet"; anything else (or no JSON) says nothing. */
function saysNotReady(text: string): boolean {
  try {
    const v = JSON.parse(text) as unknown;
    return typeof v === 'object' && v !== null && (v as { ready?: unknown }).ready === false;
  } catch {
    return false;
  }
}

export async function runHttpHook(
  input: HookRunInput,
  action: HttpHookAction,
  secret: string | undefined,
  now: () => number = Date.now,
): Promise<HookRunResult> {
  const started = now();
  const body = hookBody(input);
  const text = action.method === 'GET' ? undefined : JSON.stringify(body);
  const host = new URL(action.url).host;
  const headers: Record<string, string> = {
    ...(action.headers ?? {}),
    [IDEMPOTENCY_HEADER]: input.idempotencyKey,
    [HOOK_POINT_HEADER]: input.point,
    ...(text !== undefined ? { 'content-type': 'application/json' } : {}),
    // A GET signs the empty body, so a receiver checks it the same way.
    ...(secret ? { [SIGNATURE_HEADER]: signatureHeader(secret, text ?? '') } : {}),
  };
  let res: Response;
  try {
    res = await fetch(action.url, {
      method: action.method,
      headers,
      ...(text !== undefined ? { body: text } : {}),
      redirect: 'manual',
      signal: AbortSignal.timeout(action.timeoutMs),
    });
  } catch (err) {
    const why =
      err instanceof Error && (err.name === 'TimeoutError' || err.name === 'AbortError')
        ? `no answer within ${action.timeoutMs} ms`
        : `${err instanceof Error ? ((err.cause as Error | undefined)?.message ?? err.message) : String(err)}`;
    throw ApplicationFailure.retryable(`hook ${input.hook.name} at ${host}: ${why}`, 'HookUnreachable');
  }
  const answer = await res.text().catch(() => '');
  const excerpt = excerptOf(answer, secret ? [secret] : []);
  const tookMs = now() - started;
  const said = `${host} answered HTTP ${res.status}`;
  if (res.status >= 500 || res.status === 429) {
    throw ApplicationFailure.retryable(
      `hook ${input.hook.name}: ${said}${excerpt ? `: ${excerpt.slice(0, 200)}` : ''}`,
      'HookUnavailable',
    );
  }
  if (res.status === 409 || res.status === 423) {
    return { result: 'not_ready', detail: `${said} (not yet)`, tookMs, ...(excerpt ? { excerpt } : {}) };
  }
  if (res.status >= 200 && res.status < 300) {
    if (saysNotReady(answer)) {
      return {
        result: 'not_ready',
        detail: `${said} with ready: false`,
        tookMs,
        ...(excerpt ? { excerpt } : {}),
      };
    }
    return { result: 'ok', detail: said, tookMs, ...(excerpt ? { excerpt } : {}) };
  }
  return { result: 'failed', detail: said, tookMs, ...(excerpt ? { excerpt } : {}) };
}
