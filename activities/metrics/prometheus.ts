// MetricsProvider over a Prometheus server's HTTP API (through the prometheus-query package), Flagger's way: named
// checks become PromQL through the rollout's template set (./templates.ts), a raw query is rendered with the same
// placeholders. Where a rollout points (URL, template set) comes with its target; how to talk to that server
// (credentials, TLS, timeout) comes from the worker's environment only, so no secret ever enters workflow input.
//
// Two outcomes stay apart: `null` is "the query ran and there is no data" (no series, NaN, ±Inf: a ratio over zero
// traffic), a MetricsQueryError is "the query did not run" (unreachable, refused, timed out, bad PromQL). Neither
// is evidence that the canary is healthy.
import * as fs from 'node:fs';
import * as https from 'node:https';
import { PrometheusDriver, type QueryResult } from 'prometheus-query';
import { parseDuration } from '../../workflows/duration';
import type { Target, TrafficTarget } from '../../workflows/target';
import type { MetricQuery, MetricsProvider, RoutingVersions } from '../types';
import { MetricsQueryError, type MetricsQueryErrorKind } from './errors';
import {
  STANDARD_PLACEHOLDERS,
  TEMPLATE_SETS,
  TemplateError,
  placeholdersOf,
  promDuration,
  renderQuery,
  templateNames,
  type TemplateSetName,
  type TemplateVars,
} from './templates';

/** How to reach and authenticate to Prometheus: the worker's part (CANARY_PROMETHEUS_*), never from a target. */
export interface PrometheusConnection {
  /** The default server for targets that name none (CANARY_PROMETHEUS_URL). */
  url?: string;
  /** Bearer token, given directly or as a file read at each query (projected tokens rotate). */
  bearerToken?: string;
  bearerTokenFile?: string;
  /** Basic auth; the password given directly or as a file read at each query. */
  username?: string;
  password?: string;
  passwordFile?: string;
  /** PEM bundle of the CA that signed the server's certificate (added to the system's trust store's role). */
  ca?: string;
  insecureSkipVerify?: boolean;
  /** Per request, in ms; also sent to Prometheus as the evaluation timeout. */
  timeoutMs: number;
  /**
   * How many times a query that failed in a way a moment may fix (connection refused or reset, HTTP 5xx: a
   * restarting Prometheus answers 503 while it replays its WAL) is retried, waiting retryDelayMs between tries
   * (CANARY_PROMETHEUS_RETRIES, default DEFAULT_PROMETHEUS_RETRIES).
   */
  retries?: number;
}

/** Everything one provider needs: the rollout's server and template set, and the worker's connection settings. */
export interface PrometheusSettings extends Omit<PrometheusConnection, 'url'> {
  url: string;
  templates: TemplateSetName;
}

export const DEFAULT_PROMETHEUS_TIMEOUT = '10s';
export const DEFAULT_PROMETHEUS_RETRIES = 2;
/** At most this many retries: an analysis round must end well within its activity's 30 s timeout. */
export const MAX_PROMETHEUS_RETRIES = 5;
/** The first retry waits this long, each next one twice as long, up to RETRY_MAX_DELAY_MS. */
export const RETRY_BASE_MS = 500;
const RETRY_MAX_DELAY_MS = 4_000;

/**
 * A query this provider understands. Beyond the shared MetricQuery: the version the queried side runs (the `http`
 * set selects a side by it), a template's parameters (`quantile` for `latency`), and an evaluation time for
 * backtests (default: now).
 */
export interface PrometheusQuery extends MetricQuery {
  version?: string;
  params?: Record<string, string | number>;
  atMs?: number;
}

export interface PrometheusRangeQuery extends PrometheusQuery {
  startMs: number;
  endMs: number;
  stepSeconds: number;
}

// The error type lives in ./errors (the local provider throws it too); exported here as before.
export { MetricsQueryError, type MetricsQueryErrorKind } from './errors';

/** What prometheus-query throws: plain objects, not Errors (see its handleResponse). */
interface DriverFailure {
  status?: string;
  errorType?: string;
  error?: string;
  code?: string;
  httpStatus?: number;
  prometheus?: { errorType?: string; error?: string };
  /** What was thrown underneath (our own error from the request interceptor, say). */
  original?: unknown;
}

const QUERY_IN_MESSAGE_MAX = 600;
const TLS_CODES =
  /^(CERT_|DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_|ERR_TLS_|ERR_SSL_|EPROTO$|HOSTNAME_MISMATCH)/;

export class PrometheusMetricsProvider implements MetricsProvider {
  readonly type = 'prometheus';
  /** The server's URL as shown in messages: no credentials, no trailing slash. */
  readonly url: string;
  private readonly driver: PrometheusDriver;
  private readonly httpsAgent?: https.Agent;

  constructor(
    private readonly settings: PrometheusSettings,
    private readonly target: Target,
    /** Versions of the two sides, when known at construction; a query's own `version` wins. */
    private readonly versions: Partial<RoutingVersions> = {},
  ) {
    this.url = displayUrl(settings.url);
    if (settings.ca !== undefined || settings.insecureSkipVerify) {
      this.httpsAgent = new https.Agent({
        keepAlive: true,
        ...(settings.ca !== undefined ? { ca: settings.ca } : {}),
        rejectUnauthorized: !settings.insecureSkipVerify,
      });
    }
    this.driver = new PrometheusDriver({
      endpoint: settings.url,
      baseURL: '/api/v1/',
      timeout: settings.timeoutMs,
      // Long custom queries stay out of URLs (and proxies' logs and limits).
      preferPost: true,
      requestInterceptor: {
        onFulfilled: (config) => {
          if (this.httpsAgent) config.httpsAgent = this.httpsAgent;
          const auth = this.credentials();
          if (auth.bearer !== undefined) config.headers.set('Authorization', `Bearer ${auth.bearer}`);
          if (auth.basic) config.auth = auth.basic;
          return config;
        },
      },
      responseInterceptor: {
        onFulfilled: (response) => response,
        // prometheus-query drops the HTTP status of an error whose body is not Prometheus's JSON (a 401 from
        // basic auth, a proxy's 502 page): give it that JSON shape so the status survives.
        onRejected: (error: { response?: { data?: unknown; statusText?: string } }) => {
          const r = error?.response;
          if (r && !(isRecord(r.data) && 'status' in r.data)) {
            const text = typeof r.data === 'string' ? r.data.trim().split('\n')[0].slice(0, 200) : '';
            r.data = { status: 'error', errorType: '', error: text || r.statusText || '' };
          }
          return Promise.reject(error);
        },
      },
    });
  }

  /** The template set this provider renders named metrics with. */
  get templates(): TemplateSetName {
    return this.settings.templates;
  }

  /** The value at `atMs` (default now) over the query's window; null when there is no data. */
  async runQuery(q: PrometheusQuery): Promise<number | null> {
    const query = this.render(q);
    const result = await this.call(query, () => this.driver.instantQuery(query, q.atMs, this.evalTimeout()));
    return this.single(query, result);
  }

  /**
   * runQuery's answer, plus how many series it had and the PromQL it ran: `series` counts a NaN or ±Inf sample too
   * (a ratio over zero traffic: the series exist, the side was quiet), so 0 means "nothing matched at all" (no such
   * series: their exporter is missing, or the labels select nothing). For the preflight; the same errors as runQuery.
   */
  async presence(q: PrometheusQuery): Promise<{ value: number | null; series: number; query: string }> {
    const query = this.render(q);
    const result = await this.call(query, () => this.driver.instantQuery(query, q.atMs, this.evalTimeout()));
    const series =
      result.resultType === 'vector' ? result.result.length : result.resultType === 'scalar' ? 1 : 0;
    return { value: this.single(query, result), series, query };
  }

  /**
   * How many series the query had at any point of the last `lookbackMs` (evaluated every `stepSeconds`). For the
   * preflight: a gauge's series vanish from an instant query for a moment after a failed scrape (Prometheus marks
   * them stale), though their exporter is there.
   */
  async seriesOver(q: PrometheusQuery, lookbackMs: number, stepSeconds: number): Promise<number> {
    const query = this.render(q);
    const end = q.atMs ?? Date.now();
    const result = await this.call(query, () =>
      this.driver.rangeQuery(query, end - lookbackMs, end, stepSeconds, this.evalTimeout()),
    );
    return result.resultType === 'matrix' ? result.result.length : 0;
  }

  /**
   * The series over [startMs, endMs] every stepSeconds, as [timestamp ms, value] pairs; points without a number
   * (NaN, ±Inf) are dropped. Each point covers the query's window ending at its timestamp.
   */
  async rangeQuery(q: PrometheusRangeQuery): Promise<Array<[number, number]>> {
    const query = this.render(q);
    if (!(q.endMs >= q.startMs) || !(q.stepSeconds > 0)) {
      throw new MetricsQueryError(
        'bad_query',
        `a range query needs startMs <= endMs and stepSeconds > 0, got ${q.startMs}..${q.endMs} step ${q.stepSeconds}; query: ${shorten(query)}`,
        query,
      );
    }
    const result = await this.call(query, () =>
      this.driver.rangeQuery(query, q.startMs, q.endMs, q.stepSeconds, this.evalTimeout()),
    );
    if (result.resultType !== 'matrix') {
      throw this.badShape(query, `returned a ${result.resultType}, not a series`);
    }
    const series = result.result as Array<{ values: Array<{ time: Date; value: number }> }>;
    if (series.length === 0) return [];
    if (series.length > 1) throw this.badShape(query, `returned ${series.length} series`);
    return series[0].values
      .filter((v) => Number.isFinite(v.value))
      .map((v): [number, number] => [v.time.getTime(), v.value]);
  }

  /** True when the server answers a trivial query (with the configured credentials) at once: no retries. */
  async isOnline(): Promise<boolean> {
    try {
      const result = await this.call('vector(1)', () => this.driver.instantQuery('vector(1)'), 0);
      return this.single('vector(1)', result) === 1;
    } catch {
      return false;
    }
  }

  /** The PromQL a query runs: a named template of the set, or the query's own PromQL, rendered for its side. */
  render(q: PrometheusQuery): string {
    const set = TEMPLATE_SETS[this.settings.templates];
    let template: string;
    let source: string;
    if (q.query !== undefined) {
      template = q.query;
      source = 'the custom query';
    } else if (q.metric !== undefined) {
      const named = set.metrics[q.metric];
      if (!named || !Object.hasOwn(set.metrics, q.metric)) {
        throw new MetricsQueryError(
          'bad_query',
          `unknown metric ${JSON.stringify(q.metric)}: the ${set.name} template set offers ` +
            `${templateNames(set.name).join(', ')} (or give a custom query)`,
        );
      }
      for (const [param, what] of Object.entries(named.params ?? {})) {
        if (q.params?.[param] === undefined) {
          throw new MetricsQueryError(
            'bad_query',
            `the ${q.metric} template needs the parameter ${param} (${what})`,
          );
        }
      }
      template = named.query;
      source = `the ${set.name} template ${q.metric}`;
    } else {
      throw new MetricsQueryError(
        'bad_query',
        `a check needs a metric (${templateNames(set.name).join(', ')}) or a custom query`,
      );
    }
    const vars = this.vars(q);
    try {
      // The side's selector is rendered only where it is used: a custom query may not need the version.
      const selector = placeholdersOf(template).includes('selector')
        ? renderQuery(set.selector[q.side], vars)
        : '';
      return renderQuery(template, { ...vars, selector });
    } catch (err) {
      if (!(err instanceof TemplateError)) throw err;
      const usesVersion =
        placeholdersOf(template).includes('version') ||
        (placeholdersOf(template).includes('selector') &&
          placeholdersOf(set.selector[q.side]).includes('version'));
      if (vars.version === undefined && usesVersion) {
        throw new MetricsQueryError(
          'unknown_version',
          `${source} selects the ${q.side} side by its version, which is not known here` +
            `${q.side === 'stable' ? ' (the workload manager could not tell the stable version)' : ''}`,
        );
      }
      throw new MetricsQueryError('bad_query', `cannot render ${source}: ${err.message}`);
    }
  }

  private vars(q: PrometheusQuery): TemplateVars {
    const t = this.target;
    const w = t.workload;
    const canary = q.side === 'canary';
    const workload =
      w?.kind === 'Deployment' ? (canary ? w.canaryName : w.name) : canary ? `${t.app}-canary` : t.app;
    if (!(q.windowSeconds > 0)) {
      throw new MetricsQueryError(
        'bad_query',
        `a query needs a window of more than 0 s, got ${q.windowSeconds}`,
      );
    }
    const params: Record<string, string | number> = {};
    for (const [name, value] of Object.entries(q.params ?? {})) {
      if ((STANDARD_PLACEHOLDERS as readonly string[]).includes(name)) {
        throw new MetricsQueryError(
          'bad_query',
          `the parameter ${name} would shadow the placeholder {{${name}}}`,
        );
      }
      if (name === 'quantile' && !(Number(value) >= 0 && Number(value) <= 1)) {
        throw new MetricsQueryError(
          'bad_query',
          `the parameter quantile must be between 0 and 1, got ${value}`,
        );
      }
      params[name] = value;
    }
    return {
      namespace: t.namespace,
      app: t.app,
      version: q.version ?? this.versions[q.side],
      side: q.side,
      workload,
      service: serviceOf(t.traffic, q.side, t.app),
      ingress: t.traffic?.router === 'nginx' ? t.traffic.ingress : t.app,
      window: promDuration(q.windowSeconds),
      ...params,
    };
  }

  private evalTimeout(): string {
    return `${Math.max(1, Math.ceil(this.settings.timeoutMs / 1000))}s`;
  }

  private credentials(): { bearer?: string; basic?: { username: string; password: string } } {
    const s = this.settings;
    const readSecret = (file: string, variable: string): string => {
      try {
        return fs.readFileSync(file, 'utf8').trim();
      } catch (err) {
        throw new MetricsQueryError(
          'auth',
          `cannot read ${variable}=${file} for Prometheus at ${this.url}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
        );
      }
    };
    if (s.bearerToken !== undefined) return { bearer: s.bearerToken };
    if (s.bearerTokenFile !== undefined) {
      return { bearer: readSecret(s.bearerTokenFile, 'CANARY_PROMETHEUS_BEARER_TOKEN_FILE') };
    }
    if (s.username !== undefined) {
      const password =
        s.password ??
        (s.passwordFile !== undefined ? readSecret(s.passwordFile, 'CANARY_PROMETHEUS_PASSWORD_FILE') : '');
      return { basic: { username: s.username, password } };
    }
    return {};
  }

  /**
   * Runs one request. A transient failure (a restart, a blip) is retried with backoff, so it does not cost the
   * rollout an analysis round; one that lasts is thrown, saying how many attempts it got.
   */
  private async call(
    query: string,
    run: () => Promise<QueryResult>,
    retries = this.settings.retries ?? DEFAULT_PROMETHEUS_RETRIES,
  ): Promise<QueryResult> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await run();
      } catch (err) {
        const failure = this.wrap(err, query);
        if (!failure.transient) throw failure;
        if (attempt > retries) throw attempt === 1 ? failure : this.wrap(err, query, attempt);
        await new Promise((resolve) => setTimeout(resolve, retryDelayMs(attempt)));
      }
    }
  }

  /** One number from an instant query's answer; null when there is none. */
  private single(query: string, result: QueryResult): number | null {
    let value: number;
    switch (result.resultType) {
      case 'vector': {
        const samples = result.result as Array<{ value: { value: number } }>;
        if (samples.length === 0) return null;
        if (samples.length > 1) throw this.badShape(query, `returned ${samples.length} series`);
        value = samples[0].value.value;
        break;
      }
      case 'scalar':
        // prometheus-query leaves a scalar as Prometheus sent it: [time, "value"].
        value = Number.parseFloat(String((result.result as unknown as [number, string])[1]));
        break;
      default:
        throw this.badShape(query, `returned a ${result.resultType}, not a number`);
    }
    // NaN (0/0: no traffic), +Inf and -Inf (x/0) are no data, never a number to judge.
    return Number.isFinite(value) ? value : null;
  }

  private badShape(query: string, what: string): MetricsQueryError {
    return new MetricsQueryError(
      'bad_query',
      `the query to Prometheus at ${this.url} ${what}; a check needs one value: aggregate it (sum, max, ...) ` +
        `or select one series; query: ${shorten(query)}`,
      query,
    );
  }

  /** Turns whatever prometheus-query threw (a plain object, an Error, a string) into a MetricsQueryError. */
  private wrap(err: unknown, query: string, attempts = 1): MetricsQueryError {
    if (err instanceof MetricsQueryError) return err;
    const at = `Prometheus at ${this.url}`;
    const q = `${attempts > 1 ? ` (${attempts} attempts)` : ''}; query: ${shorten(query)}`;
    const make = (kind: MetricsQueryErrorKind, what: string, transient = false) =>
      new MetricsQueryError(kind, this.redact(`${at} ${what}${q}`), query, transient);
    if (!isRecord(err)) {
      const text = err instanceof Error ? err.message : String(err);
      return make('server', `could not be queried: ${text}`);
    }
    let f = err as DriverFailure;
    if (f.original instanceof MetricsQueryError) return f.original;
    // prometheus-query throws its own failure from the success path into its error path, which wraps it again
    // as a network error: the inner one is what happened.
    while (
      isRecord(f.original) &&
      f.original.status === 'error' &&
      typeof f.original.errorType === 'string'
    ) {
      f = f.original as DriverFailure;
    }
    const detail = (f.prometheus?.error ?? f.error ?? '').trim();
    switch (f.errorType) {
      case 'timeout_error':
        return make('timeout', `did not answer within ${this.settings.timeoutMs} ms`);
      case 'ssl_error':
      case 'network_error': {
        const code = f.code ?? '';
        if (code === 'ETIMEDOUT' || code === 'ECONNABORTED') {
          return make('timeout', `did not answer within ${this.settings.timeoutMs} ms (${code})`);
        }
        if (TLS_CODES.test(code) || f.errorType === 'ssl_error') {
          return make(
            'unreachable',
            `failed the TLS handshake (${code}: ${detail}): give the worker the server's CA in ` +
              'CANARY_PROMETHEUS_CA_FILE (or CANARY_PROMETHEUS_INSECURE_SKIP_VERIFY=true for a test server)',
          );
        }
        return make(
          'unreachable',
          `is unreachable (${[code, detail].filter(Boolean).join(': ') || 'network error'})`,
          true,
        );
      }
      case 'http_error': {
        const status = f.httpStatus ?? 0;
        const type = f.prometheus?.errorType ?? '';
        const why = `HTTP ${status}${type ? ` ${type}` : ''}${detail ? `: ${detail}` : ''}`;
        if (status === 401 || status === 403) {
          return make(
            'auth',
            `refused the request (${why}): check the worker's CANARY_PROMETHEUS_BEARER_TOKEN(_FILE) or ` +
              'CANARY_PROMETHEUS_USERNAME / CANARY_PROMETHEUS_PASSWORD(_FILE)',
          );
        }
        if (type === 'timeout') return make('timeout', `gave up evaluating the query (${why})`);
        // 422 (execution): valid PromQL that failed on the data it met (many-to-many matching, duplicate series
        // while a target restarts, too many samples); the same query may run next round. 400 (bad_data): the query
        // itself is invalid, and stays so.
        if (type === 'execution' || status === 422) {
          return make('execution', `could not evaluate the query on its data (${why})`);
        }
        if (type === 'bad_data' || status === 400) return make('bad_query', `rejected the query (${why})`);
        if (status === 404) {
          return make('server', `has no query API at this URL (${why}): is it the server's base URL?`);
        }
        // 5xx: Prometheus starting up (503 while it replays its WAL), overloaded, or a proxy in front of it.
        return make('server', `failed the query (${why})`, status >= 500);
      }
      case 'client_error':
        return make(
          'server',
          'answered with something that is not the Prometheus HTTP API: is it the right URL?',
        );
      default:
        return make(
          'server',
          `could not be queried (${f.errorType ?? 'unknown error'}${detail ? `: ${detail}` : ''})`,
        );
    }
  }

  /** Defence in depth: no credential may reach a message, whatever a server or library echoes back. */
  private redact(text: string): string {
    let out = text;
    const s = this.settings;
    const secrets = [s.bearerToken, s.password];
    try {
      if (s.bearerTokenFile) secrets.push(fs.readFileSync(s.bearerTokenFile, 'utf8').trim());
      if (s.passwordFile) secrets.push(fs.readFileSync(s.passwordFile, 'utf8').trim());
    } catch {
      // Unreadable now: then it cannot have been sent either.
    }
    for (const secret of secrets) {
      if (secret && secret.length >= 3) out = out.split(secret).join('[redacted]');
    }
    return out;
  }
}

/** The wait before retry number `attempt` (1-based): RETRY_BASE_MS, doubling, at most RETRY_MAX_DELAY_MS. */
export function retryDelayMs(attempt: number): number {
  return Math.min(RETRY_BASE_MS * 2 ** (attempt - 1), RETRY_MAX_DELAY_MS);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null;
}

function shorten(query: string): string {
  const flat = query.replace(/\s+/g, ' ').trim();
  return flat.length > QUERY_IN_MESSAGE_MAX ? `${flat.slice(0, QUERY_IN_MESSAGE_MAX)}...` : flat;
}

/** A URL fit for messages: no user info, no trailing slash. */
export function displayUrl(url: string): string {
  try {
    const u = new URL(url);
    u.username = '';
    u.password = '';
    return u.toString().replace(/\/$/, '');
  } catch {
    return '(an invalid URL)';
  }
}

/** The Service in front of one side, by the router's own settings. */
function serviceOf(traffic: TrafficTarget | undefined, side: 'stable' | 'canary', app: string): string {
  const canary = side === 'canary';
  switch (traffic?.router) {
    case 'gatewayAPI':
    case 'smi':
      return canary ? traffic.canaryBackend : traffic.stableBackend;
    case 'nginx':
      return canary ? (traffic.canaryService ?? `${app}-canary`) : app;
    default:
      return canary ? `${app}-canary` : app;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// The worker's part, from its environment

/** One problem per variable, all at once, so a misconfigured worker learns every mistake in one start. */
export function prometheusConnectionFromEnv(env: NodeJS.ProcessEnv): PrometheusConnection {
  const problems: string[] = [];
  const read = (name: string): string | undefined => env[name]?.trim() || undefined;
  const problem = (variable: string, text: string) => problems.push(`${variable}: ${text}`);
  const file = (variable: string): string | undefined => {
    const path = read(variable);
    if (path === undefined) return undefined;
    try {
      if (!fs.statSync(path).isFile()) {
        problem(variable, `${path} is not a file`);
        return undefined;
      }
      fs.accessSync(path, fs.constants.R_OK);
      return path;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      problem(variable, `${path}: ${code === 'ENOENT' ? 'no such file' : (code ?? (err as Error).message)}`);
      return undefined;
    }
  };

  const out: PrometheusConnection = { timeoutMs: parseDuration(DEFAULT_PROMETHEUS_TIMEOUT) };
  const url = read('CANARY_PROMETHEUS_URL');
  if (url !== undefined) {
    const bad = urlProblem(url);
    if (bad) problem('CANARY_PROMETHEUS_URL', bad);
    else out.url = url;
  }

  const token = read('CANARY_PROMETHEUS_BEARER_TOKEN');
  const tokenFile = file('CANARY_PROMETHEUS_BEARER_TOKEN_FILE');
  if (token !== undefined && read('CANARY_PROMETHEUS_BEARER_TOKEN_FILE') !== undefined) {
    problem(
      'CANARY_PROMETHEUS_BEARER_TOKEN_FILE',
      'set together with CANARY_PROMETHEUS_BEARER_TOKEN; use one',
    );
  } else if (token !== undefined) out.bearerToken = token;
  else if (tokenFile !== undefined) out.bearerTokenFile = tokenFile;

  const username = read('CANARY_PROMETHEUS_USERNAME');
  const password = env.CANARY_PROMETHEUS_PASSWORD || undefined; // a password may start or end with spaces
  const passwordFileSet = read('CANARY_PROMETHEUS_PASSWORD_FILE') !== undefined;
  const passwordFile = file('CANARY_PROMETHEUS_PASSWORD_FILE');
  if (password !== undefined && passwordFileSet) {
    problem('CANARY_PROMETHEUS_PASSWORD_FILE', 'set together with CANARY_PROMETHEUS_PASSWORD; use one');
  }
  if (username === undefined && (password !== undefined || passwordFileSet)) {
    problem('CANARY_PROMETHEUS_USERNAME', 'is not set but a password is; basic auth needs both');
  }
  if (username !== undefined && password === undefined && !passwordFileSet) {
    problem(
      'CANARY_PROMETHEUS_PASSWORD',
      'is not set (nor CANARY_PROMETHEUS_PASSWORD_FILE) but a username is',
    );
  }
  if (username !== undefined && (token !== undefined || read('CANARY_PROMETHEUS_BEARER_TOKEN_FILE'))) {
    problem('CANARY_PROMETHEUS_USERNAME', 'basic auth and a bearer token are both set; use one');
  }
  if (username !== undefined) {
    out.username = username;
    if (password !== undefined) out.password = password;
    else if (passwordFile !== undefined) out.passwordFile = passwordFile;
  }

  const caFile = file('CANARY_PROMETHEUS_CA_FILE');
  if (caFile !== undefined) {
    const pem = fs.readFileSync(caFile, 'utf8');
    if (!/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.test(pem)) {
      problem(
        'CANARY_PROMETHEUS_CA_FILE',
        `${caFile} holds no PEM certificate (-----BEGIN CERTIFICATE-----)`,
      );
    } else out.ca = pem;
  }

  const insecure = read('CANARY_PROMETHEUS_INSECURE_SKIP_VERIFY');
  if (insecure !== undefined) {
    const v = insecure.toLowerCase();
    if (['true', '1', 'yes'].includes(v)) out.insecureSkipVerify = true;
    else if (!['false', '0', 'no'].includes(v)) {
      problem(
        'CANARY_PROMETHEUS_INSECURE_SKIP_VERIFY',
        `${JSON.stringify(insecure)} is not a boolean; use true or false`,
      );
    }
  }

  const timeout = read('CANARY_PROMETHEUS_TIMEOUT');
  if (timeout !== undefined) {
    let ms: number | undefined;
    try {
      ms = parseDuration(timeout);
    } catch (err) {
      problem('CANARY_PROMETHEUS_TIMEOUT', `${(err as Error).message}; use a duration like 10s or 1m`);
    }
    if (ms !== undefined && ms <= 0) problem('CANARY_PROMETHEUS_TIMEOUT', 'must be more than 0s');
    else if (ms !== undefined) out.timeoutMs = ms;
  }

  const retries = read('CANARY_PROMETHEUS_RETRIES');
  if (retries !== undefined) {
    const n = Number(retries);
    if (!/^\d+$/.test(retries) || n > MAX_PROMETHEUS_RETRIES) {
      problem(
        'CANARY_PROMETHEUS_RETRIES',
        `${JSON.stringify(retries)} is not a whole number from 0 to ${MAX_PROMETHEUS_RETRIES}`,
      );
    } else out.retries = n;
  }

  if (problems.length > 0) {
    throw new Error(
      `invalid Prometheus configuration (${problems.length} problem${problems.length === 1 ? '' : 's'}):\n` +
        problems.map((p) => `  ${p}`).join('\n'),
    );
  }
  return out;
}

function urlProblem(url: string): string | undefined {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return `${JSON.stringify(url)} is not a URL; use the server's base URL, e.g. http://prometheus:9090`;
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') {
    return `${JSON.stringify(displayUrl(url))} is not an http(s) URL`;
  }
  if (u.username || u.password) {
    return 'must not carry credentials: use CANARY_PROMETHEUS_USERNAME and CANARY_PROMETHEUS_PASSWORD(_FILE)';
  }
  return undefined;
}
