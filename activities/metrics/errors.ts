// The error every metrics provider throws when a query did not run, kept apart from "it ran and found no data"
// (null). Its own module, so providers other than Prometheus (the local stack) name their failures the same way.

/**
 * `bad_query`: the query itself is invalid (a PromQL syntax error: Prometheus's 400 bad_data; an unknown metric or
 * placeholder; an answer that is not one number). `execution`: valid PromQL that failed on the data it met
 * (Prometheus's 422: many-to-many matching, duplicate series, too many samples). The others: the source did not
 * answer (`unreachable`, `timeout`), refused the worker's credentials (`auth`) or failed (`server`).
 * `unknown_version`: the query selects a side by its version, which is not known yet (stable's, before the workload
 * manager has said it): the query is fine, this worker cannot render it now.
 */
export type MetricsQueryErrorKind =
  'unreachable' | 'bad_query' | 'execution' | 'server' | 'auth' | 'timeout' | 'unknown_version';

/**
 * The query did not run (as opposed to "ran and found no data", which is null). The message names the server (its
 * URL without credentials) and the query, never a credential. `bad_query` is permanent until someone fixes the
 * plan or the target; the others may pass (a restart, a network blip, series that churn).
 */
export class MetricsQueryError extends Error {
  constructor(
    readonly kind: MetricsQueryErrorKind,
    message: string,
    readonly query?: string,
    /** A moment may fix it (refused, reset, 5xx): the provider retries it with backoff before giving up. */
    readonly transient = false,
  ) {
    super(message);
    this.name = 'MetricsQueryError';
  }

  get permanent(): boolean {
    return this.kind === 'bad_query';
  }
}
