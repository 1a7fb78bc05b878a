// OIDC ID tokens (a CI's token, the company IdP's) verified with jose against a JWKS from a file (re-read on every
// verification, so a rotated or removed key takes effect without a restart) or a URL (jose caches and refreshes it).
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import {
  createLocalJWKSet,
  createRemoteJWKSet,
  decodeProtectedHeader,
  errors,
  jwtVerify,
  type JSONWebKeySet,
  type JWTPayload,
} from 'jose';

export interface OidcConfig {
  issuer: string;
  audience: string;
  /** A JWKS file path, or an http(s) URL. */
  jwks: string;
  /** The claim holding the token's groups (default `groups`). */
  groupsClaim: string;
}

/** Asymmetric algorithms only: a JWKS is public, so a shared-secret (HS*) token would be forgeable. */
const ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'];

const remote = new Map<string, ReturnType<typeof createRemoteJWKSet>>();

function keySet(jwks: string): Parameters<typeof jwtVerify>[1] {
  if (/^https?:\/\//.test(jwks)) {
    let set = remote.get(jwks);
    if (!set) {
      set = createRemoteJWKSet(new URL(jwks));
      remote.set(jwks, set);
    }
    return set;
  }
  return createLocalJWKSet(JSON.parse(fs.readFileSync(jwks, 'utf8')) as JSONWebKeySet);
}

export type OidcResult =
  { ok: true; principal: string; nonce: string; groups?: string[] } | { ok: false; reason: string };

const list = (v: unknown): string =>
  Array.isArray(v) ? v.map(String).join(', ') : v === undefined ? 'none' : String(v);

/** Verifies an ID token: signature (by a key in the JWKS), issuer, audience, expiry; never `alg: none`. */
export async function verifyIdToken(token: string, config: OidcConfig, nowMs: number): Promise<OidcResult> {
  let alg: string | undefined;
  try {
    alg = decodeProtectedHeader(token).alg;
  } catch {
    return { ok: false, reason: 'the ID token is not a JWT' };
  }
  if (alg === undefined || alg.toLowerCase() === 'none') {
    return { ok: false, reason: 'the ID token is unsigned (alg: none); only signed tokens are accepted' };
  }
  if (!ALGORITHMS.includes(alg)) {
    return {
      ok: false,
      reason: `the ID token's algorithm ${alg} is not accepted (${ALGORITHMS.join(', ')})`,
    };
  }
  let payload: JWTPayload;
  try {
    ({ payload } = await jwtVerify(token, keySet(config.jwks), {
      issuer: config.issuer,
      audience: config.audience,
      algorithms: ALGORITHMS,
      currentDate: new Date(nowMs),
      clockTolerance: 30,
      requiredClaims: ['exp', 'iat'],
    }));
  } catch (err) {
    return { ok: false, reason: tokenRefusal(err, token, config) };
  }
  const email =
    typeof payload.email === 'string' && payload.email_verified !== false ? payload.email : undefined;
  const who = email ?? payload.sub;
  if (!who) return { ok: false, reason: 'the ID token names nobody (no verified email, no sub)' };
  const claim = payload[config.groupsClaim];
  const groups = Array.isArray(claim) ? claim.filter((g): g is string => typeof g === 'string') : undefined;
  // A token proves who, not what: it may serve one request per rollout (its jti, or its digest).
  const nonce =
    typeof payload.jti === 'string' && payload.jti !== ''
      ? `jti:${payload.iss}:${payload.jti}`
      : `token:${crypto.createHash('sha256').update(token).digest('base64url')}`;
  return { ok: true, principal: `oidc:${who}`, nonce, ...(groups ? { groups } : {}) };
}

function unverifiedClaims(token: string): JWTPayload {
  try {
    return JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')) as JWTPayload;
  } catch {
    return {};
  }
}

function tokenRefusal(err: unknown, token: string, config: OidcConfig): string {
  const claims = unverifiedClaims(token);
  if (err instanceof errors.JWTExpired) {
    const exp = typeof claims.exp === 'number' ? ` at ${new Date(claims.exp * 1000).toISOString()}` : '';
    return `the ID token expired${exp}`;
  }
  if (err instanceof errors.JWTClaimValidationFailed) {
    if (err.claim === 'aud') {
      return `wrong audience: the ID token is for ${list(claims.aud)}, this worker accepts ${config.audience}`;
    }
    if (err.claim === 'iss') {
      return `wrong issuer: the ID token is from ${list(claims.iss)}, this worker accepts ${config.issuer}`;
    }
    return `the ID token's ${err.claim} claim is not acceptable: ${err.reason}`;
  }
  if (err instanceof errors.JWKSNoMatchingKey)
    return 'the ID token was signed by a key that is not in the JWKS';
  if (err instanceof errors.JWSSignatureVerificationFailed) {
    return "the ID token's signature does not verify (tampered, or another key)";
  }
  if (err instanceof errors.JOSEAlgNotAllowed)
    return `the ID token's algorithm is not accepted: ${err.message}`;
  if (err instanceof errors.JOSEError) return `the ID token is not acceptable: ${err.message}`;
  return `the ID token could not be verified: ${err instanceof Error ? err.message : String(err)}`;
}
