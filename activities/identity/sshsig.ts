// SSHSIG (`ssh-keygen -Y sign`, PROTOCOL.sshsig) verified in pure Node crypto: ssh-ed25519, rsa-sha2-256/512 (over
// an ssh-rsa key) and ecdsa-sha2-nistp256/384/521. The signer's public key is inside the signature; whether it is
// allowed is the caller's business (allowed-signers.ts).
import * as crypto from 'node:crypto';

const MAGIC = Buffer.from('SSHSIG');

/** Reads SSH wire-format fields (RFC 4251: uint32, string, mpint). */
class Reader {
  private at = 0;
  constructor(private readonly buf: Buffer) {}
  get done(): boolean {
    return this.at === this.buf.length;
  }
  bytes(n: number): Buffer {
    if (this.at + n > this.buf.length) throw new SshsigError('the signature is truncated');
    const out = this.buf.subarray(this.at, this.at + n);
    this.at += n;
    return out;
  }
  uint32(): number {
    return this.bytes(4).readUInt32BE(0);
  }
  string(): Buffer {
    return this.bytes(this.uint32());
  }
  text(): string {
    return this.string().toString('utf8');
  }
}

export class SshsigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SshsigError';
  }
}

function sshString(b: Buffer | string): Buffer {
  const body = typeof b === 'string' ? Buffer.from(b) : b;
  const len = Buffer.alloc(4);
  len.writeUInt32BE(body.length, 0);
  return Buffer.concat([len, body]);
}

export interface ParsedSshsig {
  /** The signer's public key, in SSH wire format (what allowed_signers lists, base64-encoded). */
  publicKey: Buffer;
  namespace: string;
  hashAlgorithm: 'sha256' | 'sha512';
  /** The signature's own algorithm (`ssh-ed25519`, `rsa-sha2-512`, ...) and bytes. */
  sigAlgorithm: string;
  sigBytes: Buffer;
}

/** Parses an armored `-----BEGIN SSH SIGNATURE-----` block. */
export function parseSshsig(armored: string): ParsedSshsig {
  const m = /-----BEGIN SSH SIGNATURE-----([\s\S]*?)-----END SSH SIGNATURE-----/.exec(armored);
  if (!m) throw new SshsigError('not an SSH signature (no BEGIN SSH SIGNATURE block)');
  const blob = Buffer.from(m[1].replace(/\s+/g, ''), 'base64');
  const r = new Reader(blob);
  if (!r.bytes(6).equals(MAGIC)) throw new SshsigError('not an SSH signature (bad magic)');
  const version = r.uint32();
  if (version !== 1) throw new SshsigError(`unsupported SSH signature version ${version}`);
  const publicKey = Buffer.from(r.string());
  const namespace = r.text();
  r.string(); // reserved
  const hash = r.text();
  if (hash !== 'sha256' && hash !== 'sha512') throw new SshsigError(`unsupported hash algorithm ${hash}`);
  const sig = new Reader(r.string());
  if (!r.done) throw new SshsigError('trailing data after the signature');
  const sigAlgorithm = sig.text();
  const sigBytes = Buffer.from(sig.string());
  return { publicKey, namespace, hashAlgorithm: hash, sigAlgorithm, sigBytes };
}

/** The key's type as SSH names it (`ssh-ed25519`, `ssh-rsa`, `ecdsa-sha2-nistp256`). */
export function keyType(publicKey: Buffer): string {
  return new Reader(publicKey).text();
}

/** `SHA256:…`, as ssh-keygen -l prints it. */
export function fingerprint(publicKey: Buffer): string {
  return `SHA256:${crypto.createHash('sha256').update(publicKey).digest('base64').replace(/=+$/, '')}`;
}

function b64url(b: Buffer): string {
  return b.toString('base64url');
}

/** A positive mpint without its sign byte. */
function unsigned(b: Buffer): Buffer {
  let i = 0;
  while (i < b.length - 1 && b[i] === 0) i++;
  return b.subarray(i);
}

const CURVES: Record<string, { crv: string; hash: string; size: number }> = {
  nistp256: { crv: 'P-256', hash: 'sha256', size: 32 },
  nistp384: { crv: 'P-384', hash: 'sha384', size: 48 },
  nistp521: { crv: 'P-521', hash: 'sha512', size: 66 },
};

/** The public key as a Node KeyObject, and the digest its signatures use (undefined for ed25519). */
function nodeKey(publicKey: Buffer): { key: crypto.KeyObject; type: string; ecdsa?: { size: number } } {
  const r = new Reader(publicKey);
  const type = r.text();
  if (type === 'ssh-ed25519') {
    const x = r.string();
    return {
      type,
      key: crypto.createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: b64url(x) }, format: 'jwk' }),
    };
  }
  if (type === 'ssh-rsa') {
    const e = unsigned(r.string());
    const n = unsigned(r.string());
    return {
      type,
      key: crypto.createPublicKey({ key: { kty: 'RSA', e: b64url(e), n: b64url(n) }, format: 'jwk' }),
    };
  }
  const ec = /^ecdsa-sha2-(nistp256|nistp384|nistp521)$/.exec(type);
  if (ec) {
    const curve = CURVES[ec[1]];
    r.text(); // the curve's name again
    const q = r.string();
    if (q[0] !== 4 || q.length !== 1 + 2 * curve.size)
      throw new SshsigError('unsupported ECDSA point encoding');
    const x = q.subarray(1, 1 + curve.size);
    const y = q.subarray(1 + curve.size);
    return {
      type,
      ecdsa: { size: curve.size },
      key: crypto.createPublicKey({
        key: { kty: 'EC', crv: curve.crv, x: b64url(x), y: b64url(y) },
        format: 'jwk',
      }),
    };
  }
  throw new SshsigError(`unsupported key type ${type} (ssh-ed25519, ssh-rsa and ecdsa-sha2-nistp* are)`);
}

/** The bytes an SSHSIG signs: the magic, the namespace, the hash algorithm and the message's digest. */
function signedData(namespace: string, hash: 'sha256' | 'sha512', message: Buffer): Buffer {
  const digest = crypto.createHash(hash).update(message).digest();
  return Buffer.concat([MAGIC, sshString(namespace), sshString(''), sshString(hash), sshString(digest)]);
}

/**
 * Whether `sig` is a valid signature of `message` under `namespace` by the key it names. Throws SshsigError for a
 * signature it cannot read or a namespace that is not the one expected; false when the signature does not verify.
 */
export function verifySshsig(sig: ParsedSshsig, message: Buffer, namespace: string): boolean {
  if (sig.namespace !== namespace) {
    throw new SshsigError(`the signature is for namespace "${sig.namespace}", not "${namespace}"`);
  }
  const { key, type, ecdsa } = nodeKey(sig.publicKey);
  const data = signedData(namespace, sig.hashAlgorithm, message);
  if (type === 'ssh-ed25519') {
    if (sig.sigAlgorithm !== 'ssh-ed25519')
      throw new SshsigError(`a ${sig.sigAlgorithm} signature by an ed25519 key`);
    return crypto.verify(null, data, key, sig.sigBytes);
  }
  if (type === 'ssh-rsa') {
    // SHA-1 (`ssh-rsa` signatures) is refused, as OpenSSH does for SSHSIG.
    const digest = { 'rsa-sha2-256': 'sha256', 'rsa-sha2-512': 'sha512' }[sig.sigAlgorithm];
    if (!digest) throw new SshsigError(`unsupported RSA signature algorithm ${sig.sigAlgorithm}`);
    return crypto.verify(digest, data, key, sig.sigBytes);
  }
  if (sig.sigAlgorithm !== type) throw new SshsigError(`a ${sig.sigAlgorithm} signature by a ${type} key`);
  // An ECDSA signature is two mpints, r and s; Node takes them side by side (IEEE P1363).
  const r = new Reader(sig.sigBytes);
  const size = ecdsa!.size;
  const pad = (b: Buffer): Buffer => {
    const u = unsigned(b);
    if (u.length > size) throw new SshsigError('malformed ECDSA signature');
    return Buffer.concat([Buffer.alloc(size - u.length), u]);
  };
  const rs = Buffer.concat([pad(r.string()), pad(r.string())]);
  const digest = CURVES[type.slice('ecdsa-sha2-'.length)].hash;
  return crypto.verify(digest, data, { key, dsaEncoding: 'ieee-p1363' }, rs);
}
