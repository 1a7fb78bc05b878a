// Validation of a check's `web` source (issue 17): one HTTP request per round, a number or a boolean read from its
// JSON answer with a JSONPath. The JSONPath is parsed here by an RFC 9535 parser (jsonpath-rfc9535: pure, no
// Node modules, so the workflow's own validation parses it too); a path it cannot parse is refused with the
// parser's reason. Secrets are placeholders (`${secret:NAME}`) only the worker fills in; a plan never holds one.
import { query as jsonPathQuery } from 'jsonpath-rfc9535';
import { z } from 'zod';
import {
  Collector,
  byHand,
  checkDuration,
  describe,
  isObject,
  typeError,
  type Obj,
  type Segment,
} from './problems';
import { WEB_DEFAULT_TIMEOUT, WEB_METHODS, type WebMethod, type WebSource } from './analysis-model';

/** A web request may take at most this long (a round must not wait on it for longer). */
const MAX_WEB_TIMEOUT_MS = 60_000;

// Module-private (see noDataSchema in analysis-fields.ts): other modules get the field names.
const webSchema = z.strictObject(
  {
    url: z.string(typeError('an http(s) URL', 'is required: the http(s) URL to read')),
    method: z.string(typeError('GET or POST')).optional(),
    headers: z
      .record(z.string(), z.string(typeError('a string')), typeError('an object of header names to values'))
      .optional(),
    body: byHand<unknown>().optional(),
    jsonPath: z.string(
      typeError(
        'a JSONPath (e.g. $.errors.rate)',
        'is required: the JSONPath of the value (e.g. $.errors.rate)',
      ),
    ),
    timeout: byHand<string>().optional(),
  },
  typeError('an object like { url: https://..., jsonPath: $.value }'),
);

/** The fields of a `web` source, for "did you mean". */
export const WEB_FIELDS: readonly string[] = Object.keys(webSchema.shape);

/** Anything `${...}` that is not `${secret:NAME}` is a typo: it would be sent as written. */
const ANY_PLACEHOLDER = /\$\{([^}]*)\}/g;

function checkSecretsIn(c: Collector, text: string, path: Segment[]): void {
  for (const m of text.matchAll(ANY_PLACEHOLDER)) {
    if (!/^secret:[A-Za-z_][A-Za-z0-9_]*$/.test(m[1])) {
      c.add(path, `has ${m[0]}; the only placeholder is \${secret:NAME} (NAME: letters, digits and _)`);
    }
  }
}

/** Why a JSONPath does not parse (RFC 9535), or undefined when it does. */
export function jsonPathProblem(jsonPath: string): string | undefined {
  try {
    // Parsing is the work here: against an empty document nothing is selected.
    jsonPathQuery({}, jsonPath);
    return undefined;
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    const at = (err as { location?: { start?: { offset?: number } } }).location?.start?.offset;
    return at === undefined ? message : `${message} (at character ${at + 1})`;
  }
}

/** `web: { url, method?, headers?, body?, jsonPath, timeout? }` of check `name`; undefined when unusable. */
export function checkWeb(c: Collector, value: unknown, path: Segment[], name: string): WebSource | undefined {
  const before = c.problems.length;
  if (!isObject(value)) {
    c.add(path, `must be an object like { url: https://..., jsonPath: $.value }, got ${describe(value)}`);
    return undefined;
  }
  c.structure(webSchema, value, path);
  const { url, jsonPath } = value as Obj;
  if (typeof url === 'string') {
    if (!/^https?:\/\/[^\s/?#]+/i.test(url)) {
      c.add(
        [...path, 'url'],
        `check "${name}": must be an http:// or https:// URL, got ${describe(url)}` +
          (/^\$\{secret:/.test(url)
            ? ' (a secret may stand for part of it, not for its scheme and host)'
            : ''),
      );
    } else if (/\s/.test(url)) c.add([...path, 'url'], `check "${name}": must not contain spaces`);
    checkSecretsIn(c, url, [...path, 'url']);
  }
  if (isObject(value.headers)) {
    for (const [header, v] of Object.entries(value.headers)) {
      if (typeof v === 'string') checkSecretsIn(c, v, [...path, 'headers', header]);
    }
  }
  let method: WebMethod = 'GET';
  if (typeof value.method === 'string') {
    const upper = value.method.toUpperCase();
    if ((WEB_METHODS as readonly string[]).includes(upper)) method = upper as WebMethod;
    else c.add([...path, 'method'], `must be GET or POST, got ${describe(value.method)}`);
  }
  if (value.body !== undefined && method !== 'POST') {
    c.add([...path, 'body'], 'only applies to method POST (a GET sends no body)');
  }
  if (typeof jsonPath === 'string') {
    const problem = jsonPathProblem(jsonPath);
    if (problem) {
      c.add(
        [...path, 'jsonPath'],
        `check "${name}": ${describe(jsonPath)} is not a JSONPath (RFC 9535, e.g. $.errors.rate): ${problem}`,
      );
    }
  }
  const timeoutMs = checkDuration(c, value.timeout ?? WEB_DEFAULT_TIMEOUT, [...path, 'timeout']);
  if (timeoutMs !== undefined && timeoutMs > MAX_WEB_TIMEOUT_MS) {
    c.add(
      [...path, 'timeout'],
      `must be at most 1m (a round waits for the answer), got ${describe(value.timeout)}`,
    );
  }
  if (c.problems.length > before || typeof url !== 'string' || typeof jsonPath !== 'string') return undefined;
  const out: WebSource = { url, method, jsonPath, timeoutMs: timeoutMs ?? 0 };
  if (isObject(value.headers)) out.headers = value.headers as Record<string, string>;
  if (value.body !== undefined) out.body = value.body;
  return out;
}

/** The fields a web check cannot have: it reads one value now, from one endpoint, with no stable side. */
export function checkWebFits(c: Collector, spec: Obj, path: Segment[]): void {
  checkOneValueFits(
    c,
    spec,
    path,
    'web',
    'a web check reads one value per round, as the endpoint answers it',
  );
}

/**
 * The fields a check that reads one value per round (`web`, `job`) cannot have: no window, no request count, no
 * stable side. `windowWhy` says what the value is instead of a window.
 */
export function checkOneValueFits(
  c: Collector,
  spec: Obj,
  path: Segment[],
  kind: 'web' | 'job',
  windowWhy: string,
): void {
  const why: Record<string, string> = {
    window: `${windowWhy}: it has no window`,
    minRequests: `a ${kind} check has no request count to compare with minRequests`,
    compare: `a ${kind} check has no stable side to compare with`,
    test: `a test compares the canary's series with stable's; a ${kind} check reads one value`,
  };
  for (const [field, message] of Object.entries(why)) {
    if (spec[field] !== undefined) c.add([...path, field], message);
  }
  for (const band of ['success', 'abort'] as const) {
    const b = spec[band];
    if (!isObject(b)) continue;
    for (const dim of ['ratio', 'difference'] as const) {
      if (b[dim] !== undefined)
        c.add([...path, band, dim], `a ${kind} check has no stable side to compare with`);
    }
  }
}
