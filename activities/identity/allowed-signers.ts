// git's and ssh-keygen's `allowed_signers` format (ssh-keygen(1), ALLOWED SIGNERS): one key per line,
//   principals [options] keytype base64-key [comment]
// principals: comma-separated patterns (`*` and `?`); options: `namespaces="a,b"`, `valid-after=`, `valid-before=`
// (YYYYMMDD[HHMM[SS]][Z]), `cert-authority` (certificates are not supported here: such lines never match).

export interface AllowedSigner {
  principals: string[];
  namespaces?: string[];
  validAfterMs?: number;
  validBeforeMs?: number;
  certAuthority: boolean;
  keyType: string;
  /** The key in SSH wire format. */
  key: Buffer;
  line: number;
}

export interface AllowedSignersFile {
  signers: AllowedSigner[];
  /** Lines that could not be read (line number and why); they never match. */
  problems: string[];
}

/** Splits on blanks outside double quotes; quotes stay in the token. */
function tokens(line: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quoted = false;
  for (const ch of line) {
    if (ch === '"') quoted = !quoted;
    if (!quoted && (ch === ' ' || ch === '\t')) {
      if (cur) out.push(cur);
      cur = '';
    } else cur += ch;
  }
  if (cur) out.push(cur);
  return out;
}

const unquote = (s: string): string => (s.startsWith('"') && s.endsWith('"') ? s.slice(1, -1) : s);

/** Splits `a=1,b="x,y",c` on commas outside quotes. */
function options(text: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quoted = false;
  for (const ch of text) {
    if (ch === '"') quoted = !quoted;
    if (ch === ',' && !quoted) {
      out.push(cur);
      cur = '';
    } else cur += ch;
  }
  out.push(cur);
  return out.filter((o) => o !== '');
}

/** `YYYYMMDD[HHMM[SS]][Z]` (local time without Z, as ssh-keygen reads it). */
function sshTime(text: string): number | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})(?:(\d{2})(\d{2})(\d{2})?)?(Z)?$/.exec(text);
  if (!m) return undefined;
  const [y, mo, d, h = '0', mi = '0', s = '0'] = m.slice(1, 7);
  const parts = [+y, +mo - 1, +d, +h, +mi, +s] as const;
  return m[7] ? Date.UTC(...parts) : new Date(...parts).getTime();
}

const KEY_TYPE = /^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)|sk-.+|ssh-dss)$/;

export function parseAllowedSigners(text: string): AllowedSignersFile {
  const signers: AllowedSigner[] = [];
  const problems: string[] = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = i + 1;
    const trimmed = raw.trim();
    if (trimmed === '' || trimmed.startsWith('#')) return;
    const t = tokens(trimmed);
    if (t.length < 3) {
      problems.push(`line ${line}: expected principals, key type and key`);
      return;
    }
    const principals = unquote(t[0])
      .split(',')
      .map((p) => p.trim())
      .filter(Boolean);
    let k = 1;
    const signer: Partial<AllowedSigner> = { certAuthority: false };
    if (!KEY_TYPE.test(t[k])) {
      for (const opt of options(t[k])) {
        const [name, ...rest] = opt.split('=');
        const value = unquote(rest.join('='));
        const lower = name.toLowerCase();
        if (lower === 'cert-authority') signer.certAuthority = true;
        else if (lower === 'namespaces') signer.namespaces = value.split(',').map((n) => n.trim());
        else if (lower === 'valid-after' || lower === 'valid-before') {
          const ms = sshTime(value);
          if (ms === undefined) problems.push(`line ${line}: ${name} is not YYYYMMDD[HHMM[SS]][Z]: ${value}`);
          else if (lower === 'valid-after') signer.validAfterMs = ms;
          else signer.validBeforeMs = ms;
        } else problems.push(`line ${line}: unknown option ${name}`);
      }
      k++;
    }
    const keyType = t[k];
    const blob = t[k + 1];
    if (!keyType || !blob || !KEY_TYPE.test(keyType)) {
      problems.push(`line ${line}: expected a key type (ssh-ed25519, ssh-rsa, ecdsa-sha2-nistp256, ...)`);
      return;
    }
    const key = Buffer.from(blob, 'base64');
    if (key.length === 0) {
      problems.push(`line ${line}: the key is not base64`);
      return;
    }
    signers.push({ ...(signer as AllowedSigner), principals, keyType, key, line });
  });
  return { signers, problems };
}

/** ssh's pattern matching: `*` any run, `?` one character; a leading `!` negates. */
export function principalMatches(pattern: string, name: string): boolean {
  const re = new RegExp(
    `^${pattern
      .replace(/[.+^${}()|[\]\\]/g, '\\$&')
      .replace(/\*/g, '.*')
      .replace(/\?/g, '.')}$`,
  );
  return re.test(name);
}
