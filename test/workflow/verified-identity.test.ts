// Signed requests through the real workflow (time-skipping server, local stack, a worker whose verifier reads an
// allowed_signers file and a local JWKS): a signature by an allowed key is accepted and its principal recorded;
// unknown and revoked keys, tampered payloads, replayed nonces and expired timestamps are refused with the reason;
// the two-person rule counts verified principals; OIDC tokens; a worker that demands verified identities.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { WorkflowHandle } from '@temporalio/client';
import { SignJWT, exportJWK, generateKeyPair } from 'jose';
import { RolloutRejectedError } from '../../client/errors';
import { RolloutClient } from '../../client/rollout-client';
import { requestPayload, signPayload } from '../../client/sign';
import {
  abortUpdate,
  approveUpdate,
  pauseSignal,
  pauseUpdate,
  promoteUpdate,
  resolveUpdate,
  statusQuery,
} from '../../workflows/api';
import type { RequestSignature } from '../../workflows/identity';
import type { PlanSpec } from '../../workflows/plan';
import type { canaryRollout } from '../../workflows';
import { HOUR, MINUTE, RolloutBench, rejection } from '../../harness/rollout-env';

jest.setTimeout(300_000);

type Handle = WorkflowHandle<typeof canaryRollout>;
const ISSUER = 'https://idp.example.com';
const AUDIENCE = 'temporal-canary';

let dir: string;
let signers: string;
const keys: Record<string, string> = {};
let idp: Awaited<ReturnType<typeof generateKeyPair>>;

function keygen(name: string): string {
  const file = path.join(dir, name);
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', name, '-f', file]);
  return file;
}
const pub = (name: string): string =>
  fs.readFileSync(`${keys[name]}.pub`, 'utf8').split(' ').slice(0, 2).join(' ');
const allow = (...names: string[]): void =>
  fs.writeFileSync(signers, names.map((n) => `${n}@example.com ${pub(n)}`).join('\n') + '\n');

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'canary-verified-'));
  signers = path.join(dir, 'allowed_signers');
  for (const n of ['alice', 'bob', 'mallory']) keys[n] = keygen(n);
  allow('alice', 'bob');
  idp = await generateKeyPair('ES256');
  const jwk = { ...(await exportJWK(idp.publicKey)), kid: 'idp-1', alg: 'ES256' };
  fs.writeFileSync(path.join(dir, 'jwks.json'), JSON.stringify({ keys: [jwk] }));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function workerEnv(extra: Record<string, string> = {}): Record<string, string> {
  return {
    CANARY_ALLOWED_SIGNERS: signers,
    CANARY_OIDC_ISSUER: ISSUER,
    CANARY_OIDC_AUDIENCE: AUDIENCE,
    CANARY_OIDC_JWKS: path.join(dir, 'jwks.json'),
    ...extra,
  };
}

function plan(approvals: Record<string, unknown>, gate: Record<string, unknown> = {}): PlanSpec {
  return {
    analysis: { interval: '10m', checks: [{ name: 'error-rate', metric: 'error-rate', max: 5 }] },
    approvals,
    stages: [
      { weight: 5, hold: '1h' },
      { weight: 25, hold: '1h', gate: { type: 'approval', approvals: gate } },
      { weight: 100 },
    ],
    promotion: { cleanupDelay: '0s' },
  } as PlanSpec;
}

async function sshSigned(
  key: string,
  rolloutId: string,
  action: 'approve' | 'pause' | 'abort' | 'promote' | 'resolve',
  at: { stage?: number } = {},
  when = new Date(),
) {
  return signPayload(requestPayload(rolloutId, action, at, when), { sshKey: keys[key] });
}

async function idToken(claims: Record<string, unknown>, aud = AUDIENCE): Promise<string> {
  return new SignJWT({ email: 'dana@example.com', groups: ['sre'], ...claims })
    .setProtectedHeader({ alg: 'ES256', kid: 'idp-1' })
    .setIssuer(ISSUER)
    .setAudience(aud)
    .setSubject('dana')
    .setIssuedAt()
    .setExpirationTime('5m')
    .sign(idp.privateKey);
}

describe('a plan that demands verified identities', () => {
  let bench: RolloutBench;
  let client: RolloutClient;

  beforeAll(async () => {
    bench = await RolloutBench.start({ env: workerEnv() });
    client = new RolloutClient(bench.env.client, { taskQueue: bench.taskQueue });
  }, 180_000);
  afterAll(async () => bench?.close());
  beforeEach(async () => {
    allow('alice', 'bob');
    await bench.reset();
  });

  async function atGate(app: string, p: PlanSpec): Promise<Handle> {
    const h = await bench.startRollout(app, 'v2', p);
    await bench.env.sleep(HOUR + 5 * MINUTE);
    expect((await h.query(statusQuery)).phase).toBe('waiting_approval');
    return h;
  }

  test('an approval signed by an allowed key is accepted; its principal is in the record, status, alerts and report', async () => {
    const h = await atGate(
      'ver-ok',
      plan({ verified: true, approvers: ['alice@example.com', 'bob@example.com'] }),
    );
    const record = await client.approve(h.workflowId, {
      identity: 'whoever',
      comment: 'looks good',
      signer: { sshKey: keys.alice },
    });
    expect(record).toMatchObject({ stage: 2, by: 'ssh:alice@example.com', kind: 'approved' });
    await bench.env.sleep(MINUTE);
    const st = await h.query(statusQuery);
    expect(st.approvals.find((a) => a.kind === 'approved')?.by).toBe('ssh:alice@example.com');
    const result = await bench.result(h);
    expect(result.outcome).toBe('promoted');
    expect(result.approvals.map((a) => a.by)).toEqual(['ssh:alice@example.com']);
    expect(bench.alerts(h.workflowId).find((e) => e.event === 'approved')?.message).toContain(
      'ssh:alice@example.com',
    );
  });

  test('refused with the reason: unsigned, a name posing as verified, unknown key, revoked key, tampered, replayed, expired', async () => {
    const h = await atGate('ver-refusals', plan({ verified: true }));
    const id = h.workflowId;
    const send = (req: Record<string, unknown>) =>
      rejection(h.executeUpdate(approveUpdate, { args: [{ identity: 'alice', ...req }] }));

    expect(await send({})).toBe(
      'unsigned approve refused: this rollout demands a verified identity (its plan (approvals.verified)); sign it ' +
        "with --sign-key PATH (an SSH key in the worker's allowed signers) or --id-token FILE (an OIDC ID token); " +
        '"alice" is only a name',
    );
    expect(await send({ identity: 'ssh:alice@example.com' })).toMatch(
      /^ssh:alice@example.com names a verified principal/,
    );
    expect(await send({ signature: await sshSigned('mallory', id, 'approve', { stage: 2 }) })).toMatch(
      /^unverified approve: unknown key ssh-ed25519 SHA256:\S+: it is not in this worker's allowed signers \(never added, or revoked\)$/,
    );
    expect(await send({ signature: await sshSigned('alice', id, 'approve', { stage: 3 }) })).toBe(
      'unverified approve: tampered request: it was signed for stage 3, not stage 2',
    );
    expect(
      await send({ signature: await sshSigned('alice', 'canary.test.other', 'approve', { stage: 2 }) }),
    ).toBe(`unverified approve: tampered request: it was signed for rollout canary.test.other, not ${id}`);
    const old = new Date(Date.now() - 10 * MINUTE);
    expect(await send({ signature: await sshSigned('alice', id, 'approve', { stage: 2 }, old) })).toMatch(
      /^unverified approve: expired request: signed at \S+, more than 5 minutes ago; sign it again$/,
    );
    // Bob's key leaves the file: refused at once, no worker restart.
    allow('alice');
    expect(await send({ signature: await sshSigned('bob', id, 'approve', { stage: 2 }) })).toMatch(
      /^unverified approve: unknown key .*revoked\)$/,
    );
    // A signed pause, then the very same request again: the nonce was used.
    const pause = await sshSigned('alice', id, 'pause');
    await h.executeUpdate(pauseUpdate, { args: [{ identity: 'x', signature: pause }] });
    expect((await h.query(statusQuery)).pausedBy).toBe('ssh:alice@example.com');
    await client.resume(id, { identity: 'x', signer: { sshKey: keys.alice } });
    expect(
      await rejection(h.executeUpdate(pauseUpdate, { args: [{ identity: 'x', signature: pause }] })),
    ).toBe('unverified pause: replayed request (its nonce was used before in this rollout); sign a new one');
    // An unsigned pause signal (what older clients send) changes nothing here.
    await h.signal(pauseSignal, { identity: 'alice' });
    await bench.env.sleep(MINUTE);
    expect((await h.query(statusQuery)).pausedBy).toBeUndefined();
    // Through the client library: a refusal is a RolloutRejectedError (the CLI's exit 2) with the reason.
    const err = await client
      .approve(id, { identity: 'x', signer: { sshKey: keys.mallory } })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RolloutRejectedError);
    expect((err as Error).message).toMatch(/unknown key/);
    // A signed resolve is verified, then judged as any resolve: nothing is stuck here.
    const resolve = (signature: RequestSignature | undefined) =>
      rejection(
        h.executeUpdate(resolveUpdate, {
          args: [
            {
              identity: 'x',
              reason: 'by hand',
              confirmTrafficRestored: true,
              ...(signature ? { signature } : {}),
            },
          ],
        }),
      );
    expect(await resolve(undefined)).toMatch(/^unsigned resolve refused/);
    expect(await resolve(await sshSigned('alice', id, 'resolve'))).toMatch(/^nothing to resolve/);
    // Status says who demands signatures; the client refuses an unsigned abort (a signal the rollout would ignore).
    expect((await h.query(statusQuery)).verifiedBy).toBe('its plan (approvals.verified)');
    const unsignedAbort = await client.abort(id, { identity: 'alice', reason: 'x' }).catch((e: unknown) => e);
    expect(unsignedAbort).toBeInstanceOf(RolloutRejectedError);
    expect((unsignedAbort as Error).message).toMatch(
      /^unsigned abort refused: this rollout demands a verified identity/,
    );
    const ack = await h.executeUpdate(abortUpdate, {
      args: [{ identity: 'x', reason: 'enough', signature: await sshSigned('alice', id, 'abort') }],
    });
    expect(ack).toMatchObject({ by: 'ssh:alice@example.com', accepted: true });
    const result = await bench.result(h);
    expect(result.outcome).toBe('rolled_back');
    expect(result.reason).toContain('ssh:alice@example.com');
  });

  test('two-person rule: one key twice is refused; a second key passes the gate', async () => {
    const h = await atGate('ver-two', plan({ verified: true }, { required: 2 }));
    const first = await client.approve(h.workflowId, { identity: 'alice', signer: { sshKey: keys.alice } });
    expect(first).toMatchObject({ by: 'ssh:alice@example.com', count: 1, required: 2 });
    const again = await client
      .approve(h.workflowId, { identity: 'bob', signer: { sshKey: keys.alice } })
      .catch((e: unknown) => e);
    expect((again as Error).message).toMatch(
      /ssh:alice@example.com already approved this gate at \S+; it needs 1 more approver other than ssh:alice@example.com/,
    );
    const second = await client.approve(h.workflowId, { identity: 'bob', signer: { sshKey: keys.bob } });
    expect(second).toMatchObject({ by: 'ssh:bob@example.com', count: 2, required: 2 });
    expect((await bench.result(h)).outcome).toBe('promoted');
  });

  test('an OIDC token with the right audience is accepted and its groups admit; the wrong audience is refused', async () => {
    const h = await atGate('ver-oidc', plan({ verified: true, approvers: ['oidc-group:sre'] }));
    expect(
      await rejection(
        h.executeUpdate(promoteUpdate, {
          args: [
            { identity: 'dana', signature: { payload: '{}', idToken: await idToken({}, 'someone-else') } },
          ],
        }),
      ),
    ).toBe(
      'unverified promote: wrong audience: the ID token is for someone-else, this worker accepts temporal-canary',
    );
    const outsider = await client
      .approve(h.workflowId, { identity: 'dana', signer: { idToken: await idToken({ groups: ['dev'] }) } })
      .catch((e: unknown) => e);
    expect((outsider as Error).message).toBe(
      'oidc:dana@example.com is not among the approvers of this gate: oidc-group:sre',
    );
    const token = await idToken({});
    const record = await client.approve(h.workflowId, { identity: 'dana', signer: { idToken: token } });
    expect(record.by).toBe('oidc:dana@example.com');
    expect((await bench.result(h)).outcome).toBe('promoted');
  });
});

describe('a worker that demands verified identities (CANARY_REQUIRE_VERIFIED=1)', () => {
  let bench: RolloutBench;

  beforeAll(async () => {
    bench = await RolloutBench.start({ env: workerEnv({ CANARY_REQUIRE_VERIFIED: '1' }) });
  }, 180_000);
  afterAll(async () => bench?.close());

  test('a plan without a policy still refuses unsigned requests, and takes signed ones', async () => {
    const h = await bench.startRollout('ver-worker', 'v2', plan({}));
    await bench.env.sleep(10 * MINUTE);
    expect(await rejection(h.executeUpdate(pauseUpdate, { args: [{ identity: 'alice' }] }))).toMatch(
      /^unsigned pause refused: this rollout demands a verified identity \(the worker that started it \(CANARY_REQUIRE_VERIFIED\)\)/,
    );
    const ack = await h.executeUpdate(promoteUpdate, {
      args: [{ identity: 'alice', signature: await sshSigned('alice', h.workflowId, 'promote') }],
    });
    expect(ack.by).toBe('ssh:alice@example.com');
    expect((await bench.result(h)).outcome).toBe('promoted');
  });
});
