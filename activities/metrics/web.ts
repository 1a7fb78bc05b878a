// A web check's round (issue 17): one HTTP request, one number read from its JSON answer with an RFC 9535
// JSONPath (jsonpath-rfc9535), for the judge to place in the check's bands like any PromQL value. A boolean reads
// as 1 (true) or 0 (false). What goes wrong is recorded on the check as `error`, never thrown, with the kinds a
// metrics query fails with (errors.ts): the endpoint did not answer (unreachable, timeout), refused the worker
// (auth), failed (server), or answered something that is not one number (bad_query: the check is wrong).
//
// Secrets: the plan holds `${secret:NAME}` placeholders in the URL and header values; this worker fills them in
// as it sends the request, from its environment (CANARY_SECRET_<NAME>) or from a file NAME in the directory
// CANARY_SECRETS_DIR (a mounted Kubernetes Secret). A secret's value never leaves this module: messages name
// the URL as the plan wrote it.
import fs from 'node:fs';
import path from 'node:path';
import { query as jsonPathQuery } from 'jsonpath-rfc9535';
import { SECRET_PLACEHOLDER, webSecrets, type WebSource } from '../../workflows/analysis-model';
import type { RoundMeasurement } from '../../workflows/judge-types';
import type { Plan, PreflightFinding } from '../../workflows/types';
import type { MetricsQueryErrorKind } from './errors';

export type SecretSource = Readonly<Record<string, string | undefined>>;

/** Where this worker finds secret NAME, for messages. */
export function secretWhere(name: string, env: SecretSource = process.env): string {
  const dir = env.CANARY_SECRETS_DIR;
  return `CANARY_SECRET_${name}${dir ? ` or ${path.join(dir, name)}` : ' (or a file in CANARY_SECRETS_DIR)'}`;
}

/** Secret NAME's value on this worker; undefined when it has none. */
export function readSecret(name: string, env: SecretSource = process.env): string | undefined {
  const own = env[`CANARY_SECRET_${name}`];
  if (own !== undefined) return own;
  const dir = env.CANARY_SECRETS_DIR;
  if (!dir) return undefined;
  try {
    // A mounted Secret's file often ends with a newline the value never meant.
    return fs.readFileSync(path.join(dir, name), 'utf8').replace(/\r?\n$/, '');
  } catch {
    return undefined;
  }
}

/** The secrets a web check names that this worker does not have. */
export function missingSecrets(
  web: Pick<WebSource, 'url' | 'headers'>,
  env: SecretSource = process.env,
): string[] {
  return webSecrets(web).filter((name) => readSecret(name, env) === undefined);
}

function fill(text: string, env: SecretSource): string {
  return text.replace(SECRET_PLACEHOLDER, (_m, name: string) => readSecret(name, env) ?? '');
}

class WebFailure extends Error {
  constructor(
    readonly kind: MetricsQueryErrorKind | 'no_data',
    message: string,
  ) {
    super(message);
  }
}

/** What the endpoint answered, as the number the judge reads. */
export function valueAt(document: unknown, jsonPath: string): number {
  const found = jsonPathQuery(document as Parameters<typeof jsonPathQuery>[0], jsonPath);
  if (found.length === 0)
    throw new WebFailure('no_data', `no values: ${jsonPath} selects nothing in the answer`);
  if (found.length > 1) {
    throw new WebFailure('bad_query', `${jsonPath} selects ${found.length} values; it must select one`);
  }
  const v = found[0];
  if (typeof v === 'boolean') return v ? 1 : 0;
  if (typeof v === 'number' && Number.isFinite(v)) return v;
  if (v === null) throw new WebFailure('no_data', `no values: ${jsonPath} is null in the answer`);
  throw new WebFailure(
    'bad_query',
    `${jsonPath} selects ${JSON.stringify(v).slice(0, 80)}, not a number or a boolean`,
  );
}

function statusKind(status: number): MetricsQueryErrorKind {
  if (status === 401 || status === 403) return 'auth';
  if (status === 408 || status === 429 || status >= 500) return 'server';
  return 'bad_query';
}

/** One round of a web check: the value, or the failure the judge weighs. */
export async function measureWeb(
  name: string,
  web: WebSource,
  opts: { atMs?: number; env?: SecretSource } = {},
): Promise<RoundMeasurement> {
  const env = opts.env ?? process.env;
  const where = `web check ${JSON.stringify(name)} (${web.method} ${web.url})`;
  if (opts.atMs !== undefined) {
    // A backtest asks as of a past time: an endpoint only answers for now.
    return {
      value: null,
      error: {
        kind: 'unsupported',
        message: `${where}: an endpoint answers for now only, not as of a past time`,
      },
    };
  }
  try {
    const missing = missingSecrets(web, env);
    if (missing.length > 0) {
      throw new WebFailure(
        'auth',
        `this worker has no secret ${missing.map((m) => `${m} (${secretWhere(m, env)})`).join(', ')}`,
      );
    }
    const headers: Record<string, string> = { accept: 'application/json' };
    for (const [k, v] of Object.entries(web.headers ?? {})) headers[k.toLowerCase()] = fill(v, env);
    let body: string | undefined;
    if (web.method === 'POST' && web.body !== undefined) {
      body = typeof web.body === 'string' ? web.body : JSON.stringify(web.body);
      if (typeof web.body !== 'string') headers['content-type'] ??= 'application/json';
    }
    let res: Response;
    try {
      res = await fetch(fill(web.url, env), {
        method: web.method,
        headers,
        ...(body !== undefined ? { body } : {}),
        signal: AbortSignal.timeout(web.timeoutMs),
        // A redirect is not followed: the worker's secrets must not travel to a host the plan did not name.
        redirect: 'manual',
      });
    } catch (err) {
      const e = err as Error & { cause?: { code?: string } };
      if (e.name === 'TimeoutError' || e.name === 'AbortError') {
        throw new WebFailure('timeout', `no answer within ${web.timeoutMs / 1000}s`);
      }
      throw new WebFailure('unreachable', `could not connect (${e.cause?.code ?? e.message})`);
    }
    const text = await res.text();
    if (res.status >= 300 && res.status < 400) {
      throw new WebFailure(
        'bad_query',
        `answered HTTP ${res.status} (a redirect${res.headers.get('location') ? ` to ${res.headers.get('location')}` : ''}), which a web check does not follow: use the URL it names`,
      );
    }
    if (!res.ok) throw new WebFailure(statusKind(res.status), `answered HTTP ${res.status}`);
    let document: unknown;
    try {
      document = JSON.parse(text);
    } catch {
      throw new WebFailure('bad_query', `answered something that is not JSON: ${text.slice(0, 80)}`);
    }
    return { value: valueAt(document, web.jsonPath) };
  } catch (err) {
    if (err instanceof WebFailure)
      return { value: null, error: { kind: err.kind, message: `${where}: ${err.message}` } };
    return { value: null, error: { kind: 'error', message: `${where}: ${String(err)}` } };
  }
}

/**
 * The preflight's word on the plan's web checks: a secret a check names that this worker does not have refuses the
 * rollout (every round would fail for want of it). The endpoints themselves are not called: one that reports on the
 * canary may not answer before the canary exists.
 */
export function webPreflight(plan: Plan, env: SecretSource = process.env): PreflightFinding[] {
  return (plan.analysis.rules ?? []).flatMap((check, i): PreflightFinding[] => {
    if (!check.web) return [];
    const missing = missingSecrets(check.web, env);
    if (missing.length === 0) return [];
    return [
      {
        area: 'metrics',
        cause: 'infrastructure',
        level: 'refuse',
        message:
          `web check ${JSON.stringify(check.name)} names ${missing.length === 1 ? 'a secret' : 'secrets'} this ` +
          `worker does not have: ${missing.map((m) => `${m} (set ${secretWhere(m, env)})`).join(', ')}`,
        path: `analysis.checks[${i}].web`,
      },
    ];
  });
}
