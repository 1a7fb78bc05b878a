// PEM files the worker is pointed at (Temporal TLS, Prometheus CA), checked at start rather than at the first
// handshake.
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';

/**
 * Why a file is not a PEM certificate (bundle) or private key, parsed by Node's crypto, or undefined. Catches a
 * DER file, a key where a certificate belongs, or the wrong file altogether, before gRPC says "handshake failed".
 */
export function pemProblem(file: string, kind: 'certificate' | 'key'): string | undefined {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    return (err as Error).message;
  }
  const marker = kind === 'key' ? /-----BEGIN [A-Z ]*PRIVATE KEY-----/ : /-----BEGIN CERTIFICATE-----/;
  if (!marker.test(text)) {
    return kind === 'key'
      ? 'is not a PEM private key (no "-----BEGIN ... PRIVATE KEY-----" block)'
      : 'is not a PEM certificate (no "-----BEGIN CERTIFICATE-----" block)';
  }
  try {
    if (kind === 'key') crypto.createPrivateKey(text);
    else new crypto.X509Certificate(text);
    return undefined;
  } catch (err) {
    return `is not a valid PEM ${kind}: ${(err as Error).message}`;
  }
}
