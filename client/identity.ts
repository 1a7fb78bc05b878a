// Who is acting: recorded with every approval, abort, pause and promotion.
import * as os from 'node:os';

/** Where an identity came from. */
export type IdentitySource = 'flag' | 'env' | 'ci' | 'os';

export interface Identity {
  /** The name recorded by the workflow, e.g. `alice`. */
  name: string;
  source: IdentitySource;
  /** The flag or variable the name was read from, e.g. `--as`, `GITHUB_ACTOR`, `os.userInfo()`. */
  from: string;
  /** The CI system, when the name came from a CI variable. */
  ci?: string;
}

/**
 * CI variables naming the person who triggered the job, in the order they are consulted. The first
 * non-empty one wins. Each system sets only its own, so the order matters only on odd setups.
 */
export const CI_ACTOR_VARIABLES: ReadonlyArray<{ variable: string; ci: string }> = [
  { variable: 'GITHUB_ACTOR', ci: 'github' },
  { variable: 'GITLAB_USER_LOGIN', ci: 'gitlab' },
  { variable: 'BUILDKITE_BUILD_CREATOR', ci: 'buildkite' },
  { variable: 'CIRCLE_USERNAME', ci: 'circleci' },
  { variable: 'BUILD_REQUESTEDFOR', ci: 'azure-pipelines' },
  { variable: 'BUILD_USER_ID', ci: 'jenkins' },
  { variable: 'DRONE_COMMIT_AUTHOR', ci: 'drone' },
  { variable: 'BITBUCKET_STEP_TRIGGERER_UUID', ci: 'bitbucket' },
];

/** An explicit identity for scripts that want one without a flag. Consulted right after `--as`. */
export const IDENTITY_ENV_VARIABLE = 'CANARY_IDENTITY';

export interface ResolveIdentityOptions {
  /** The `--as` value. */
  as?: string;
  env?: NodeJS.ProcessEnv;
  /** The OS user name (tests override it); defaults to `os.userInfo().username`. */
  osUser?: () => string | undefined;
}

function clean(value: string | undefined): string | undefined {
  const trimmed = value?.trim();
  return trimmed ? trimmed : undefined;
}

function defaultOsUser(env: NodeJS.ProcessEnv): string | undefined {
  try {
    return os.userInfo().username;
  } catch {
    // No passwd entry for the uid (common in containers): fall back to the shell's variables.
    return env.USER ?? env.LOGNAME ?? env.USERNAME;
  }
}

/** `--as` was given but says nobody (empty or blank): acting under another identity would be a silent surprise. */
export class IdentityError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'IdentityError';
  }
}

/**
 * Resolution order: `--as`, then `CANARY_IDENTITY`, then the CI actor variables in
 * {@link CI_ACTOR_VARIABLES} order, then the OS user, then `unknown`. An `--as` that is given but empty or blank
 * (`--as ''`, `--as "$UNSET_VARIABLE"`) throws IdentityError rather than falling back to another identity.
 */
export function resolveIdentity(options: ResolveIdentityOptions = {}): Identity {
  const env = options.env ?? process.env;
  const flag = clean(options.as);
  if (options.as !== undefined && !flag) {
    throw new IdentityError(
      `--as is ${options.as === '' ? 'empty' : 'blank'}: give the name to act as (--as alice), or leave --as out ` +
        `to act as ${IDENTITY_ENV_VARIABLE}, the CI actor or the OS user`,
    );
  }
  if (flag) return { name: flag, source: 'flag', from: '--as' };
  const explicit = clean(env[IDENTITY_ENV_VARIABLE]);
  if (explicit) return { name: explicit, source: 'env', from: IDENTITY_ENV_VARIABLE };
  for (const { variable, ci } of CI_ACTOR_VARIABLES) {
    const value = clean(env[variable]);
    if (value) return { name: value, source: 'ci', from: variable, ci };
  }
  const user = clean(options.osUser ? options.osUser() : defaultOsUser(env));
  if (user) return { name: user, source: 'os', from: 'os.userInfo()' };
  return { name: 'unknown', source: 'os', from: 'none' };
}

/** `alice (from GITHUB_ACTOR)` — for log lines that say who acted. */
export function describeIdentity(identity: Identity): string {
  return `${identity.name} (from ${identity.from})`;
}
