// Signed requests: what a person's approve, promote, abort, pause or resume carries so the worker can tell who sent
// it, whatever name the request claims. Pure types and helpers shared by the client (which signs), the worker's
// verifier (activities/identity/) and the workflow (which runs the verifier as a local activity before it accepts).
//
// The client signs a canonical JSON payload naming the rollout (its workflow id), the action, the stage and a
// nonce with a timestamp; the worker checks the signature against keys from its own configuration (never from
// workflow input), and the workflow refuses a nonce it has seen. A verified principal is `ssh:<principal>` (from
// the worker's allowed_signers file) or `oidc:<email or sub>` (from an ID token); names with these prefixes are
// never accepted from an unsigned request.

/** The SSHSIG namespace requests are signed under (`ssh-keygen -Y sign -n`), so no other signature can pass. */
export const SIGNATURE_NAMESPACE = 'temporal-canary@v1';

/** How far a signed request's timestamp may be from the worker's clock, either way. */
export const SIGNATURE_WINDOW_MS = 5 * 60_000;

/** How many nonces a rollout remembers (carried across continue-as-new); older ones are outside the window anyway. */
export const MAX_NONCES_KEPT = 500;

/** The prefixes of verified principals. */
export const VERIFIED_PREFIXES = ['ssh:', 'oidc:'] as const;

/** An allow-list entry naming a group from a verified ID token's groups claim: `oidc-group:sre`. */
export const CLAIM_GROUP_PREFIX = 'oidc-group:';

export type SignedAction = 'approve' | 'promote' | 'abort' | 'pause' | 'resume' | 'resolve';

/** What a signature covers. */
export interface RequestPayload {
  /** The rollout's workflow id. */
  rolloutId: string;
  action: SignedAction;
  /** 1-based stage the request means (an approval names the stage whose gate it approves). */
  stage?: number;
  /** An approval of the promotion gate. */
  promotion?: boolean;
  /** Random, unique per request: a rollout refuses a nonce it has seen. */
  nonce: string;
  /** When the request was signed (ISO 8601). */
  issuedAt: string;
}

/**
 * The signature a request carries (the optional `signature` field of the update). `payload` is the exact text that
 * was signed; `ssh` an armored SSHSIG over it; `idToken` an OIDC ID token (which proves who, not what: the payload's
 * binding for a token is its audience, its lifetime and its one use per rollout).
 */
export interface RequestSignature {
  payload: string;
  ssh?: string;
  idToken?: string;
}

/** A request that may carry a signature. */
export interface Signable {
  identity: string;
  signature?: RequestSignature;
}

/** What the workflow asks the verifier: the signature and what the request must be. */
export interface VerifyInput {
  signature: RequestSignature;
  expect: { rolloutId: string; action: SignedAction; stage?: number; promotion?: boolean };
  /** The name the request claims (`--as`): picks among the principals a key line lists. */
  claimed?: string;
}

export type VerifyResult =
  | {
      ok: true;
      /** `ssh:alice@example.com`, `oidc:alice@example.com`. */
      principal: string;
      method: 'ssh' | 'oidc';
      /** Refused if the rollout has seen it before. */
      nonce: string;
      /** The token's groups claim (OIDC only). */
      groups?: string[];
    }
  | { ok: false; reason: string };

/** The local activity the worker registers. */
export interface IdentityActivities {
  verifyRequest(input: VerifyInput): Promise<VerifyResult>;
}

/** The payload as one canonical text: keys sorted, no spaces, absent fields left out. */
export function canonicalPayload(p: RequestPayload): string {
  const entries = Object.entries(p)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v)}`).join(',')}}`;
}

const ACTIONS: readonly SignedAction[] = ['approve', 'promote', 'abort', 'pause', 'resume', 'resolve'];

/** Reads a signed payload; a string says what is wrong with it. */
export function parsePayload(text: string): RequestPayload | string {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return 'the signed payload is not JSON';
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return 'the signed payload is not an object';
  const o = v as Record<string, unknown>;
  if (typeof o.rolloutId !== 'string' || o.rolloutId === '') return 'the signed payload names no rollout';
  if (typeof o.action !== 'string' || !ACTIONS.includes(o.action as SignedAction))
    return `the signed payload's action must be one of ${ACTIONS.join(', ')}`;
  if (o.stage !== undefined && (typeof o.stage !== 'number' || !Number.isInteger(o.stage) || o.stage < 1))
    return "the signed payload's stage must be a whole number of at least 1";
  if (o.promotion !== undefined && typeof o.promotion !== 'boolean')
    return "the signed payload's promotion must be true or false";
  if (typeof o.nonce !== 'string' || o.nonce.length < 16 || o.nonce.length > 200)
    return 'the signed payload needs a nonce of 16 to 200 characters';
  if (typeof o.issuedAt !== 'string' || Number.isNaN(Date.parse(o.issuedAt)))
    return "the signed payload's issuedAt must be an ISO 8601 time";
  if (text !== canonicalPayload(o as unknown as RequestPayload)) return 'the signed payload is not canonical';
  return o as unknown as RequestPayload;
}

/**
 * Why a signed payload does not match the request it came with (another rollout, another action, another stage),
 * or undefined when it matches.
 */
export function payloadMismatch(p: RequestPayload, expect: VerifyInput['expect']): string | undefined {
  if (p.rolloutId !== expect.rolloutId) {
    return `tampered request: it was signed for rollout ${p.rolloutId}, not ${expect.rolloutId}`;
  }
  if (p.action !== expect.action) {
    return `tampered request: it was signed to ${p.action}, not to ${expect.action}`;
  }
  if (expect.stage !== undefined && p.stage !== expect.stage) {
    return p.stage === undefined
      ? `tampered request: the signature names no stage; stage ${expect.stage} is waiting`
      : `tampered request: it was signed for stage ${p.stage}, not stage ${expect.stage}`;
  }
  if (expect.promotion !== undefined && (p.promotion ?? false) !== expect.promotion) {
    return expect.promotion
      ? 'tampered request: it was signed for a stage gate, not for the promotion gate'
      : 'tampered request: it was signed for the promotion gate, not for a stage gate';
  }
  return undefined;
}

/** Whether a name claims to be verified (`ssh:…`, `oidc:…`): refused from unsigned requests, which could forge it. */
export function claimsVerified(identity: string): boolean {
  const id = identity.trim();
  return VERIFIED_PREFIXES.some((p) => id.startsWith(p));
}

/** `ssh:alice@example.com` → `alice@example.com`; other names as they are. */
export function bareName(identity: string): string {
  const id = identity.trim();
  for (const p of VERIFIED_PREFIXES) if (id.startsWith(p)) return id.slice(p.length);
  return id;
}

/**
 * Whether an allow-list entry admits this identity: by its name as given, by a verified principal's bare name
 * (`alice@example.com` admits `ssh:alice@example.com`), or, for `oidc-group:<name>`, by a verified token's groups.
 */
export function entryAdmits(entry: string, identity: string, groups: readonly string[] | undefined): boolean {
  const id = identity.trim();
  if (entry.startsWith(CLAIM_GROUP_PREFIX)) {
    return id.startsWith('oidc:') && (groups ?? []).includes(entry.slice(CLAIM_GROUP_PREFIX.length));
  }
  return entry === id || (claimsVerified(id) && entry === bareName(id));
}
