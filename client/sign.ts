// Signing a person's request in the client: a canonical payload (rollout, action, stage, nonce, time), signed with
// the user's SSH key (`ssh-keygen -Y sign`, SSHSIG, under our own namespace) or carried with an OIDC ID token. The
// worker verifies it; nothing here decides whether a request is allowed.
import { spawn } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import type { RolloutStatus } from '../workflows/types';
import {
  SIGNATURE_NAMESPACE,
  canonicalPayload,
  type RequestPayload,
  type RequestSignature,
  type SignedAction,
} from '../workflows/identity';
import { RolloutInputError } from './errors';

export const SIGN_KEY_VARIABLE = 'CANARY_SIGN_KEY';
export const ID_TOKEN_VARIABLE = 'CANARY_ID_TOKEN';

/** How a request is signed: an SSH key file (private, or public with the key in ssh-agent), or an ID token. */
export type Signer = { sshKey: string; sshKeygen?: string } | { idToken: string };

/** The request could not be signed (no such key, ssh-keygen failed, no token): bad input, exit 2. */
export class SignError extends RolloutInputError {}

/** The payload of one request, with a fresh nonce and the current time. */
export function requestPayload(
  rolloutId: string,
  action: SignedAction,
  at: { stage?: number; promotion?: boolean } = {},
  now: Date = new Date(),
): RequestPayload {
  return {
    rolloutId,
    action,
    ...(at.stage !== undefined ? { stage: at.stage } : {}),
    ...(at.promotion ? { promotion: true } : {}),
    nonce: crypto.randomBytes(18).toString('base64url'),
    issuedAt: now.toISOString(),
  };
}

/** Signs `message` with `ssh-keygen -Y sign -f KEY -n temporal-canary@v1` (the armored signature on stdout). */
export function sshSign(keyPath: string, message: string, sshKeygen = 'ssh-keygen'): Promise<string> {
  if (!fs.existsSync(keyPath)) return Promise.reject(new SignError(`no such signing key: ${keyPath}`));
  return new Promise((resolve, reject) => {
    const child = spawn(sshKeygen, ['-q', '-Y', 'sign', '-f', keyPath, '-n', SIGNATURE_NAMESPACE], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', (e) => reject(new SignError(`cannot run ${sshKeygen}: ${e.message}`)));
    child.on('close', (code) => {
      if (code === 0 && out.includes('BEGIN SSH SIGNATURE')) resolve(out);
      else
        reject(new SignError(`ssh-keygen could not sign with ${keyPath}: ${err.trim() || `exit ${code}`}`));
    });
    child.stdin.end(message);
  });
}

/** The signature a request carries. */
export async function signPayload(payload: RequestPayload, signer: Signer): Promise<RequestSignature> {
  const text = canonicalPayload(payload);
  if ('idToken' in signer) return { payload: text, idToken: signer.idToken.trim() };
  return { payload: text, ssh: await sshSign(signer.sshKey, text, signer.sshKeygen) };
}

/**
 * The signer the CLI's options and environment name: `--sign-key PATH` / CANARY_SIGN_KEY, or `--id-token FILE|-` /
 * CANARY_ID_TOKEN (the token itself); none: the request goes unsigned. Both at once is refused.
 */
export function signerFrom(
  opts: { signKey?: string; idToken?: string },
  env: NodeJS.ProcessEnv,
  readStdin: () => string = () => fs.readFileSync(0, 'utf8'),
): Signer | undefined {
  const key = opts.signKey?.trim() || (opts.idToken ? undefined : env[SIGN_KEY_VARIABLE]?.trim());
  const tokenSource = opts.idToken?.trim();
  if (key && tokenSource) throw new SignError('give --sign-key or --id-token, not both');
  if (key) {
    if (!fs.existsSync(key)) throw new SignError(`no such signing key: ${key}`);
    return { sshKey: key };
  }
  if (tokenSource) {
    let token: string;
    try {
      token = (tokenSource === '-' ? readStdin() : fs.readFileSync(tokenSource, 'utf8')).trim();
    } catch (err) {
      throw new SignError(`cannot read the ID token from ${tokenSource}: ${(err as Error).message}`);
    }
    if (token.split('.').length !== 3) throw new SignError(`${tokenSource} holds no ID token (a JWT)`);
    return { idToken: token };
  }
  const envToken = env[ID_TOKEN_VARIABLE]?.trim();
  return envToken ? { idToken: envToken } : undefined;
}

/**
 * The signature for one request to a rollout, or nothing without a signer. An approval names the gate that waits
 * (read from `status`), so a signature for one gate cannot approve another.
 */
export async function signatureFor(
  workflowId: string,
  action: SignedAction,
  signer: Signer | undefined,
  status: () => Promise<RolloutStatus>,
): Promise<{ signature?: RequestSignature }> {
  if (!signer) return {};
  let at: { stage?: number; promotion?: boolean } = {};
  if (action === 'approve') {
    const st = await status();
    at = { stage: st.gate?.stage ?? st.stage, ...(st.gate?.promotion ? { promotion: true } : {}) };
  }
  return { signature: await signPayload(requestPayload(workflowId, action, at), signer) };
}
