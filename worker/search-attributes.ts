// The rollout workflow upserts its search attributes (SEARCH_ATTRIBUTES in workflows/api.ts) at every step; in a
// namespace without them every start fails ("no mapping defined for search attribute CanaryWeight"). So the worker
// checks its namespace at start-up, registers what is missing where the server lets it, and otherwise refuses to
// start with the exact commands that register them.
import { encodeSearchAttributeIndexedValueType } from '@temporalio/common/lib/search-attributes';
import type { NativeConnection } from '@temporalio/worker';
import { SEARCH_ATTRIBUTES } from '../workflows/api';
import type { WorkerConfig } from './config';

/** The type names the `temporal` CLI takes (`--type`), and what each is in the API. */
const CLI_TYPES = {
  Text: 'TEXT',
  Keyword: 'KEYWORD',
  Int: 'INT',
  Double: 'DOUBLE',
  Bool: 'BOOL',
  Datetime: 'DATETIME',
  KeywordList: 'KEYWORD_LIST',
} as const;
type CliType = keyof typeof CLI_TYPES;

/** The operator calls the check needs (a NativeConnection's or a Connection's `operatorService`). */
export interface SearchAttributeOperator {
  listSearchAttributes(req: {
    namespace: string;
  }): Promise<{ customAttributes?: Record<string, number> | null }>;
  addSearchAttributes(req: { namespace: string; searchAttributes: Record<string, number> }): Promise<unknown>;
}

export interface SearchAttributeCheck {
  /** Registered by this check (they were missing and the server took them). */
  registered: string[];
}

/** The worker cannot run in this namespace as it is: a configuration error, with what to run. */
export class SearchAttributeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SearchAttributeError';
  }
}

/**
 * Makes sure `namespace` has every search attribute the rollout workflow writes: lists them, registers the
 * missing ones, and throws a SearchAttributeError when one has another type or the server refuses to register.
 * Errors of the list call itself (unreachable, unknown namespace) are thrown as they are.
 */
export async function ensureSearchAttributes(
  operator: SearchAttributeOperator,
  config: WorkerConfig,
): Promise<SearchAttributeCheck> {
  const { namespace } = config;
  const listed = await operator.listSearchAttributes({ namespace });
  const existing = listed.customAttributes ?? {};
  const wrongType: string[] = [];
  const missing: Array<readonly [string, CliType]> = [];
  for (const [name, type] of SEARCH_ATTRIBUTES) {
    const have = existing[name];
    if (have === undefined || have === null) missing.push([name, type]);
    else if (have !== encode(type)) {
      wrongType.push(`${name} is registered as ${cliTypeName(have)}, the rollout workflow writes ${type}`);
    }
  }
  if (wrongType.length > 0) {
    // A search attribute cannot change its type; only its owner can decide to remove it (self-hosted) or rename.
    throw new SearchAttributeError(
      `namespace "${namespace}" has search attributes of the wrong type: ${wrongType.join('; ')}. ` +
        `Remove them (temporal operator search-attribute remove --namespace ${namespace} --name NAME, ` +
        `self-hosted only) and start the worker again, or run the rollouts in another namespace`,
    );
  }
  if (missing.length === 0) return { registered: [] };
  try {
    await operator.addSearchAttributes({
      namespace,
      searchAttributes: Object.fromEntries(missing.map(([name, type]) => [name, encode(type)])),
    });
  } catch (err) {
    throw new SearchAttributeError(
      `namespace "${namespace}" lacks the search attribute${missing.length === 1 ? '' : 's'} ` +
        `${missing.map(([name]) => name).join(', ')} the rollout workflow writes, and the server did not let ` +
        `this worker register them (${errorMessage(err)}). Register them once, then start the worker again:\n` +
        registerCommands(config, missing)
          .map((c) => `  ${c}`)
          .join('\n') +
        '\n  (Temporal Cloud: tcld namespace search-attributes add, or the Cloud UI.)',
    );
  }
  return { registered: missing.map(([name]) => name) };
}

/** `ensureSearchAttributes` on a worker's connection. */
export function ensureSearchAttributesOn(
  connection: NativeConnection,
  config: WorkerConfig,
): Promise<SearchAttributeCheck> {
  return ensureSearchAttributes(connection.operatorService as unknown as SearchAttributeOperator, config);
}

/**
 * One `temporal operator search-attribute create` per attribute: the CLI (1.9.1) takes one `--type` per command
 * and, given several `--name` flags, registers the first one only while it still answers "added". The connection
 * flags are the worker's own (the CLI's TLS variables have other names than the worker's); an API key is left to
 * the shell, never printed.
 */
export function registerCommands(
  config: WorkerConfig,
  attributes: ReadonlyArray<readonly [string, string]> = SEARCH_ATTRIBUTES,
): string[] {
  const flags = [`--address ${config.address}`, `--namespace ${config.namespace}`];
  if (config.tls) {
    flags.push('--tls');
    if (config.tls.certPath) flags.push(`--tls-cert-path ${config.tls.certPath}`);
    if (config.tls.keyPath) flags.push(`--tls-key-path ${config.tls.keyPath}`);
    if (config.tls.caPath) flags.push(`--tls-ca-path ${config.tls.caPath}`);
    if (config.tls.serverName) flags.push(`--tls-server-name ${config.tls.serverName}`);
  }
  if (config.apiKey) flags.push('--api-key "$TEMPORAL_API_KEY"');
  return attributes.map(
    ([name, type]) =>
      `temporal operator search-attribute create ${flags.join(' ')} --name ${name} --type ${type}`,
  );
}

function encode(type: CliType): number {
  const value = encodeSearchAttributeIndexedValueType(CLI_TYPES[type]);
  if (value === undefined) throw new Error(`unknown search attribute type ${type}`);
  return value;
}

function cliTypeName(value: number): string {
  const found = (Object.keys(CLI_TYPES) as CliType[]).find((t) => encode(t) === value);
  return found ?? `type ${value}`;
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
