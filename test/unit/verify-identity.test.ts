// The worker's verifier on real signatures: keys generated here by ssh-keygen and signed by the client's own signer
// (ssh-keygen -Y sign), an allowed_signers file re-read on every verification, and a local JWKS built with jose.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { SignJWT, exportJWK, generateKeyPair } from 'jose';
import { identityConfigFromEnv, verifyRequest, type IdentityConfig } from '../../activities/identity';
import { parseAllowedSigners } from '../../activities/identity/allowed-signers';
import { requestPayload, signPayload, signerFrom } from '../../client/sign';
import { canonicalPayload, parsePayload, type VerifyInput } from '../../workflows/identity';

let dir: string;
const keys: Record<string, string> = {};
const ROLLOUT = 'canary.prod.checkout';

function keygen(name: string, type: string, bits?: number): string {
  const file = path.join(dir, name);
  execFileSync('ssh-keygen', [
    '-q',
    '-t',
    type,
    ...(bits ? ['-b', String(bits)] : []),
    '-N',
    '',
    '-C',
    name,
    '-f',
    file,
  ]);
  return file;
}
const pub = (key: string): string =>
  fs.readFileSync(`${key}.pub`, 'utf8').trim().split(' ').slice(0, 2).join(' ');

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'canary-verify-'));
  keys.alice = keygen('alice', 'ed25519');
  keys.bob = keygen('bob', 'rsa', 2048);
  keys.carol = keygen('carol', 'ecdsa', 256);
  keys.mallory = keygen('mallory', 'ed25519');
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function signersFile(lines: string[]): string {
  const file = path.join(dir, 'allowed_signers');
  fs.writeFileSync(file, `# who may sign rollout requests\n${lines.join('\n')}\n`);
  return file;
}

function config(): IdentityConfig {
  return {
    requireVerified: false,
    allowedSigners: signersFile([
      `alice@example.com ${pub(keys.alice)}`,
      `bob@example.com namespaces="temporal-canary@v1,git" ${pub(keys.bob)} bob's laptop`,
      `"carol@example.com,c@example.com" ${pub(keys.carol)}`,
    ]),
  };
}

async function signed(
  key: string,
  at: { stage?: number; promotion?: boolean } = { stage: 2 },
  rollout = ROLLOUT,
  when = new Date(),
): Promise<VerifyInput> {
  const payload = requestPayload(rollout, 'approve', at, when);
  return {
    signature: await signPayload(payload, { sshKey: key }),
    expect: { rolloutId: ROLLOUT, action: 'approve', stage: 2, promotion: false },
  };
}

describe('SSH signatures', () => {
  test.each([
    ['ed25519', 'alice', 'ssh:alice@example.com'],
    ['rsa-sha2-512', 'bob', 'ssh:bob@example.com'],
    ['ecdsa-p256', 'carol', 'ssh:carol@example.com'],
  ])('a %s signature by an allowed key is accepted with its principal', async (_kind, who, principal) => {
    const r = await verifyRequest(await signed(keys[who]), config());
    expect(r).toMatchObject({ ok: true, principal, method: 'ssh' });
  });

  test('the claimed name picks among the principals a line lists', async () => {
    const input = { ...(await signed(keys.carol)), claimed: 'c@example.com' };
    expect(await verifyRequest(input, config())).toMatchObject({ ok: true, principal: 'ssh:c@example.com' });
  });

  test('an unknown key is refused, naming its fingerprint', async () => {
    const r = await verifyRequest(await signed(keys.mallory), config());
    expect(r).toEqual({
      ok: false,
      reason: expect.stringMatching(
        /^unknown key ssh-ed25519 SHA256:\S+: it is not in this worker's allowed signers \(never added, or revoked\)$/,
      ),
    });
  });

  test('a key removed from the file is refused at the next verification, without a restart', async () => {
    const c = config();
    const input = await signed(keys.alice);
    expect((await verifyRequest(input, c)).ok).toBe(true);
    signersFile([`bob@example.com ${pub(keys.bob)}`]);
    const r = await verifyRequest(await signed(keys.alice), c);
    expect(r.ok).toBe(false);
    expect(!r.ok && r.reason).toMatch(/^unknown key .*revoked/);
  });

  test('a tampered payload is refused: another stage, another rollout, another action, edited text', async () => {
    const c = config();
    expect(await verifyRequest(await signed(keys.alice, { stage: 3 }), c)).toEqual({
      ok: false,
      reason: 'tampered request: it was signed for stage 3, not stage 2',
    });
    expect(await verifyRequest(await signed(keys.alice, { stage: 2 }, 'canary.prod.payments'), c)).toEqual({
      ok: false,
      reason: 'tampered request: it was signed for rollout canary.prod.payments, not canary.prod.checkout',
    });
    const abort = await signed(keys.alice);
    expect(await verifyRequest({ ...abort, expect: { ...abort.expect, action: 'abort' } }, c)).toEqual({
      ok: false,
      reason: 'tampered request: it was signed to approve, not to abort',
    });
    const edited = await signed(keys.alice);
    const text = edited.signature.payload.replace('"stage":2', '"stage":3');
    const r = await verifyRequest({ ...edited, signature: { ...edited.signature, payload: text } }, c);
    expect(!r.ok && r.reason).toMatch(
      /^tampered request: the SSH signature by SHA256:\S+ does not match the payload/,
    );
  });

  test('an expired or future timestamp is refused', async () => {
    const c = config();
    const old = await signed(keys.alice, { stage: 2 }, ROLLOUT, new Date(Date.now() - 6 * 60_000));
    expect(await verifyRequest(old, c)).toEqual({
      ok: false,
      reason: expect.stringMatching(
        /^expired request: signed at \S+, more than 5 minutes ago; sign it again$/,
      ),
    });
    const future = await signed(keys.alice, { stage: 2 }, ROLLOUT, new Date(Date.now() + 6 * 60_000));
    expect(await verifyRequest(future, c)).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/^request from the future/),
    });
  });

  test('a key limited to other namespaces may not sign rollout requests', async () => {
    const c = {
      ...config(),
      allowedSigners: signersFile([`alice@example.com namespaces="git" ${pub(keys.alice)}`]),
    };
    const r = await verifyRequest(await signed(keys.alice), c);
    expect(!r.ok && r.reason).toMatch(/may not sign rollout requests now/);
  });

  test('a worker without allowed signers says so', async () => {
    const r = await verifyRequest(await signed(keys.alice), { requireVerified: false });
    expect(r).toEqual({
      ok: false,
      reason: 'this worker accepts no SSH signatures (CANARY_ALLOWED_SIGNERS is not set)',
    });
  });
});

type PrivateKey = Awaited<ReturnType<typeof generateKeyPair>>['privateKey'];

describe('OIDC ID tokens', () => {
  const ISSUER = 'https://token.actions.example.com';
  const AUDIENCE = 'temporal-canary';
  let priv: PrivateKey;
  let other: PrivateKey;
  let oidc: IdentityConfig;

  beforeAll(async () => {
    const pair = await generateKeyPair('ES256');
    priv = pair.privateKey;
    other = (await generateKeyPair('ES256')).privateKey;
    const jwk = { ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' };
    const jwks = path.join(dir, 'jwks.json');
    fs.writeFileSync(jwks, JSON.stringify({ keys: [jwk] }));
    oidc = {
      requireVerified: false,
      oidc: { issuer: ISSUER, audience: AUDIENCE, jwks, groupsClaim: 'groups' },
    };
  });

  function token(
    claims: Record<string, unknown> = {},
    opts: { key?: PrivateKey; exp?: string | number } = {},
  ) {
    return new SignJWT({ email: 'dana@example.com', groups: ['sre'], ...claims })
      .setProtectedHeader({ alg: 'ES256', kid: 'k1' })
      .setIssuer((claims.iss as string) ?? ISSUER)
      .setAudience((claims.aud as string) ?? AUDIENCE)
      .setSubject('user-42')
      .setIssuedAt()
      .setExpirationTime(opts.exp ?? '5m')
      .sign(opts.key ?? priv);
  }

  const input = (idToken: string): VerifyInput => ({
    signature: { payload: canonicalPayload(requestPayload(ROLLOUT, 'approve', { stage: 2 })), idToken },
    expect: { rolloutId: ROLLOUT, action: 'approve', stage: 2, promotion: false },
  });

  test('a token signed by a key of the JWKS with the right audience is accepted, with its groups', async () => {
    const r = await verifyRequest(input(await token()), oidc);
    expect(r).toMatchObject({
      ok: true,
      principal: 'oidc:dana@example.com',
      method: 'oidc',
      groups: ['sre'],
    });
    expect(r.ok && r.nonce).toMatch(/^token:/);
  });

  test('the wrong audience, the wrong issuer, expiry, another key and alg none are each refused', async () => {
    const reason = async (t: string) => {
      const r = await verifyRequest(input(t), oidc);
      return r.ok ? 'accepted' : r.reason;
    };
    expect(await reason(await token({ aud: 'someone-else' }))).toBe(
      'wrong audience: the ID token is for someone-else, this worker accepts temporal-canary',
    );
    expect(await reason(await token({ iss: 'https://evil.example.com' }))).toBe(
      'wrong issuer: the ID token is from https://evil.example.com, this worker accepts https://token.actions.example.com',
    );
    expect(await reason(await token({}, { exp: Math.floor(Date.now() / 1000) - 120 }))).toMatch(
      /^the ID token expired at /,
    );
    expect(await reason(await token({}, { key: other }))).toBe(
      "the ID token's signature does not verify (tampered, or another key)",
    );
    const header = Buffer.from(JSON.stringify({ alg: 'none', typ: 'JWT' })).toString('base64url');
    const body = Buffer.from(
      JSON.stringify({
        iss: ISSUER,
        aud: AUDIENCE,
        sub: 'x',
        iat: Math.floor(Date.now() / 1000),
        exp: Math.floor(Date.now() / 1000) + 300,
      }),
    ).toString('base64url');
    expect(await reason(`${header}.${body}.`)).toBe(
      'the ID token is unsigned (alg: none); only signed tokens are accepted',
    );
  });
});

describe('payloads, files and settings', () => {
  test('a payload is canonical JSON, and only canonical JSON is read', () => {
    const p = requestPayload(ROLLOUT, 'pause', {}, new Date('2026-01-02T03:04:05Z'));
    const text = canonicalPayload(p);
    expect(text).toBe(
      `{"action":"pause","issuedAt":"2026-01-02T03:04:05.000Z","nonce":"${p.nonce}","rolloutId":"${ROLLOUT}"}`,
    );
    expect(parsePayload(text)).toEqual(p);
    expect(parsePayload(JSON.stringify(p, null, 1))).toBe('the signed payload is not canonical');
  });

  test('allowed_signers lines: options, quoted principals, comments, and what cannot be read', () => {
    const f = parseAllowedSigners(
      [
        '# comment',
        'a@x,b@x namespaces="git,temporal-canary@v1",valid-before=20300101Z ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIO9i comment',
        'c@x cert-authority ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIO9i',
        'broken',
      ].join('\n'),
    );
    expect(f.signers.map((s) => [s.principals, s.namespaces, s.certAuthority, s.line])).toEqual([
      [['a@x', 'b@x'], ['git', 'temporal-canary@v1'], false, 2],
      [['c@x'], undefined, true, 3],
    ]);
    expect(f.signers[0].validBeforeMs).toBe(Date.UTC(2030, 0, 1));
    expect(f.problems).toEqual(['line 4: expected principals, key type and key']);
  });

  test('the worker settings: every problem at once', () => {
    const problems: Array<{ variable: string; problem: string }> = [];
    identityConfigFromEnv(
      {
        CANARY_OIDC_ISSUER: 'https://i',
        CANARY_REQUIRE_VERIFIED: 'yes',
        CANARY_ALLOWED_SIGNERS: '/nonexistent',
      },
      problems,
    );
    expect(problems.map((p) => p.variable)).toEqual([
      'CANARY_ALLOWED_SIGNERS',
      'CANARY_OIDC_AUDIENCE',
      'CANARY_OIDC_JWKS',
      'CANARY_REQUIRE_VERIFIED',
    ]);
    const none: typeof problems = [];
    expect(identityConfigFromEnv({ CANARY_REQUIRE_VERIFIED: '1' }, none).requireVerified).toBe(true);
    expect(none[0].problem).toMatch(/nobody could act/);
  });

  test('the CLI signer: --sign-key, --id-token FILE or -, CANARY_ID_TOKEN; both at once refused', () => {
    const key = path.join(dir, 'alice');
    expect(signerFrom({ signKey: key }, {})).toEqual({ sshKey: key });
    expect(signerFrom({}, { CANARY_SIGN_KEY: key })).toEqual({ sshKey: key });
    expect(signerFrom({ idToken: '-' }, {}, () => 'a.b.c\n')).toEqual({ idToken: 'a.b.c' });
    expect(signerFrom({}, { CANARY_ID_TOKEN: 'x.y.z' })).toEqual({ idToken: 'x.y.z' });
    expect(signerFrom({}, {})).toBeUndefined();
    expect(() => signerFrom({ signKey: key, idToken: '-' }, {})).toThrow(
      'give --sign-key or --id-token, not both',
    );
    expect(() => signerFrom({ signKey: '/nope' }, {})).toThrow('no such signing key: /nope');
  });
});
