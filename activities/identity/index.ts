// Verification of signed requests, in the worker (the workflow runs it as a local activity before it accepts a
// signed request). Keys come from the worker's configuration only: an allowed_signers file (re-read on every
// verification, so a key removed from it is refused at once) and an OIDC issuer's JWKS. Never from workflow input.
import * as fs from 'node:fs';
import {
  SIGNATURE_NAMESPACE,
  SIGNATURE_WINDOW_MS,
  bareName,
  parsePayload,
  payloadMismatch,
  type IdentityActivities,
  type VerifyInput,
  type VerifyResult,
} from '../../workflows/identity';
import { parseAllowedSigners, principalMatches } from './allowed-signers';
import { verifyIdToken, type OidcConfig } from './oidc';
import { SshsigError, fingerprint, keyType, parseSshsig, verifySshsig } from './sshsig';

export interface IdentityConfig {
  /** The allowed_signers file (git's format), e.g. a mounted Secret. */
  allowedSigners?: string;
  oidc?: OidcConfig;
  /** Rollouts started on this worker demand verified identities for every person's request. */
  requireVerified: boolean;
}

export interface IdentityConfigProblem {
  variable: string;
  problem: string;
}

export const IDENTITY_VARIABLES = {
  allowedSigners: 'CANARY_ALLOWED_SIGNERS',
  issuer: 'CANARY_OIDC_ISSUER',
  audience: 'CANARY_OIDC_AUDIENCE',
  jwks: 'CANARY_OIDC_JWKS',
  groupsClaim: 'CANARY_OIDC_GROUPS_CLAIM',
  requireVerified: 'CANARY_REQUIRE_VERIFIED',
} as const;

/** The worker's identity settings from its environment; problems (every one) go to `problems`. */
export function identityConfigFromEnv(
  env: NodeJS.ProcessEnv,
  problems: IdentityConfigProblem[] = [],
): IdentityConfig {
  const v = IDENTITY_VARIABLES;
  const read = (name: string): string | undefined => env[name]?.trim() || undefined;
  const config: IdentityConfig = { requireVerified: false };
  const signers = read(v.allowedSigners);
  if (signers) {
    if (!fs.existsSync(signers))
      problems.push({ variable: v.allowedSigners, problem: `no such file: ${signers}` });
    config.allowedSigners = signers;
  }
  const [issuer, audience, jwks] = [read(v.issuer), read(v.audience), read(v.jwks)];
  if (issuer || audience || jwks) {
    for (const [name, value] of [
      [v.issuer, issuer],
      [v.audience, audience],
      [v.jwks, jwks],
    ] as const) {
      if (!value)
        problems.push({ variable: name, problem: `must be set with the other ${'CANARY_OIDC_*'} settings` });
    }
    if (jwks && !/^https?:\/\//.test(jwks) && !fs.existsSync(jwks)) {
      problems.push({ variable: v.jwks, problem: `neither an http(s) URL nor an existing file: ${jwks}` });
    }
    if (issuer && audience && jwks) {
      config.oidc = { issuer, audience, jwks, groupsClaim: read(v.groupsClaim) ?? 'groups' };
    }
  }
  const require = read(v.requireVerified);
  if (require !== undefined) {
    if (!['1', '0', 'true', 'false'].includes(require.toLowerCase())) {
      problems.push({ variable: v.requireVerified, problem: `must be 1, 0, true or false, got ${require}` });
    } else config.requireVerified = require === '1' || require.toLowerCase() === 'true';
  }
  if (config.requireVerified && !signers && !issuer) {
    problems.push({
      variable: v.requireVerified,
      problem: `demands verified identities, but neither ${v.allowedSigners} nor ${v.issuer} is set, so nobody could act`,
    });
  }
  return config;
}

const refuse = (reason: string): VerifyResult => ({ ok: false, reason });

function verifySsh(input: VerifyInput, armored: string, config: IdentityConfig, nowMs: number): VerifyResult {
  if (!config.allowedSigners) {
    return refuse(`this worker accepts no SSH signatures (${IDENTITY_VARIABLES.allowedSigners} is not set)`);
  }
  let sig;
  try {
    sig = parseSshsig(armored);
  } catch (err) {
    return refuse(`the SSH signature cannot be read: ${(err as Error).message}`);
  }
  const fp = fingerprint(sig.publicKey);
  // Re-read on every verification: a key removed from the file is refused without a restart.
  let text: string;
  try {
    text = fs.readFileSync(config.allowedSigners, 'utf8');
  } catch (err) {
    return refuse(
      `the worker cannot read its allowed signers (${config.allowedSigners}): ${(err as Error).message}`,
    );
  }
  const lines = parseAllowedSigners(text).signers.filter(
    (s) => !s.certAuthority && s.key.equals(sig.publicKey),
  );
  if (lines.length === 0) {
    return refuse(
      `unknown key ${keyType(sig.publicKey)} ${fp}: it is not in this worker's allowed signers (never added, or revoked)`,
    );
  }
  const usable = lines.filter(
    (s) =>
      (!s.namespaces || s.namespaces.some((n) => principalMatches(n, SIGNATURE_NAMESPACE))) &&
      (s.validAfterMs === undefined || nowMs >= s.validAfterMs) &&
      (s.validBeforeMs === undefined || nowMs < s.validBeforeMs),
  );
  if (usable.length === 0) {
    return refuse(
      `key ${fp} may not sign rollout requests now (its allowed signers line limits its namespaces or validity)`,
    );
  }
  try {
    if (!verifySshsig(sig, Buffer.from(input.signature.payload, 'utf8'), SIGNATURE_NAMESPACE)) {
      return refuse(`tampered request: the SSH signature by ${fp} does not match the payload it came with`);
    }
  } catch (err) {
    if (err instanceof SshsigError) return refuse(`the SSH signature is not acceptable: ${err.message}`);
    throw err;
  }
  const payload = parsePayload(input.signature.payload);
  if (typeof payload === 'string') return refuse(payload);
  const mismatch = payloadMismatch(payload, input.expect);
  if (mismatch) return refuse(mismatch);
  const issued = Date.parse(payload.issuedAt);
  const minutes = SIGNATURE_WINDOW_MS / 60_000;
  if (issued < nowMs - SIGNATURE_WINDOW_MS) {
    return refuse(
      `expired request: signed at ${payload.issuedAt}, more than ${minutes} minutes ago; sign it again`,
    );
  }
  if (issued > nowMs + SIGNATURE_WINDOW_MS) {
    return refuse(
      `request from the future: signed at ${payload.issuedAt}, more than ${minutes} minutes ahead of the worker's clock`,
    );
  }
  // The principal: the name the request claims when the key's line admits it, else the line's first plain name.
  const claimed = input.claimed ? bareName(input.claimed) : undefined;
  const patterns = usable.flatMap((s) => s.principals);
  const principal =
    claimed && patterns.some((p) => principalMatches(p, claimed))
      ? claimed
      : patterns.find((p) => !/[*?]/.test(p));
  if (!principal) {
    return refuse(
      `key ${fp} lists only principal patterns (${patterns.join(', ')}); act --as a name they match`,
    );
  }
  return { ok: true, principal: `ssh:${principal}`, method: 'ssh', nonce: `ssh:${payload.nonce}` };
}

async function verifyOidc(
  input: VerifyInput,
  token: string,
  config: IdentityConfig,
  nowMs: number,
): Promise<VerifyResult> {
  if (!config.oidc)
    return refuse(`this worker accepts no ID tokens (${IDENTITY_VARIABLES.issuer} is not set)`);
  const r = await verifyIdToken(token, config.oidc, nowMs);
  if (!r.ok) return r;
  // The payload is not covered by the token; it must still name this request (a mistake, not an attack, if not).
  const payload = parsePayload(input.signature.payload);
  if (typeof payload === 'string') return refuse(payload);
  const mismatch = payloadMismatch(payload, input.expect);
  if (mismatch) return refuse(mismatch);
  return {
    ok: true,
    principal: r.principal,
    method: 'oidc',
    nonce: r.nonce,
    ...(r.groups ? { groups: r.groups } : {}),
  };
}

/** Verifies one signed request; never throws for what it finds (the reason is the refusal). */
export async function verifyRequest(
  input: VerifyInput,
  config: IdentityConfig,
  nowMs = Date.now(),
): Promise<VerifyResult> {
  const { ssh, idToken, payload } = input.signature ?? {};
  if (typeof payload !== 'string' || payload.length > 4096) return refuse('the signature carries no payload');
  if (typeof ssh === 'string' && typeof idToken === 'string')
    return refuse('a request carries an SSH signature or an ID token, not both');
  if (typeof ssh === 'string') return verifySsh(input, ssh, config, nowMs);
  if (typeof idToken === 'string') return verifyOidc(input, idToken, config, nowMs);
  return refuse('the signature carries neither an SSH signature nor an ID token');
}

/** The activities a worker registers (the workflow calls verifyRequest as a local activity). */
export function createIdentityActivities(config: IdentityConfig): IdentityActivities {
  return { verifyRequest: (input) => verifyRequest(input, config) };
}
