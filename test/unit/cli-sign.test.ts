// The CLI's signing options refuse bad input before anything contacts Temporal (exit 2, the reason on stderr).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { EXIT_BAD_INPUT, main } from '../../client/cli';

let tmp: string;
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'canary-cli-sign-'));
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

async function run(argv: string[], env: NodeJS.ProcessEnv = {}) {
  let stderr = '';
  let connects = 0;
  const code = await main(argv, {
    stdout: { write: () => true },
    stderr: { write: (s: string) => (stderr += s) },
    env: { PATH: process.env.PATH, CANARY_IDENTITY: 'tester', ...env },
    connect: async () => {
      connects++;
      throw new Error('connect must not be called');
    },
  });
  return { code, stderr, connects };
}

const COMMANDS = [
  ['approve', 'prod/checkout'],
  ['abort', 'prod/checkout', '--reason', 'why'],
  ['pause', 'prod/checkout'],
  ['resume', 'prod/checkout'],
  ['promote', 'prod/checkout'],
  ['resolve', 'prod/checkout', '--confirm-traffic-restored', '--reason', 'by hand'],
];

test('a missing key, an unreadable or malformed token, or both at once: exit 2 before connecting', async () => {
  const notJwt = path.join(tmp, 'token');
  fs.writeFileSync(notJwt, 'not a token\n');
  const cases: Array<[string[], NodeJS.ProcessEnv, RegExp]> = [
    [['--sign-key', path.join(tmp, 'nope')], {}, /no such signing key: .*nope/],
    [[], { CANARY_SIGN_KEY: path.join(tmp, 'nope') }, /no such signing key/],
    [['--id-token', path.join(tmp, 'missing')], {}, /cannot read the ID token from .*missing/],
    [['--id-token', notJwt], {}, /holds no ID token \(a JWT\)/],
    [['--sign-key', notJwt, '--id-token', notJwt], {}, /give --sign-key or --id-token, not both/],
  ];
  for (const command of COMMANDS) {
    for (const [flags, env, message] of cases) {
      const r = await run([...flags, ...command], env);
      expect({ command, code: r.code, connects: r.connects }).toEqual({
        command,
        code: EXIT_BAD_INPUT,
        connects: 0,
      });
      expect(r.stderr).toMatch(message);
    }
  }
});

test('the worker refuses identity settings it cannot use: exit 2, naming each variable', async () => {
  const { main: worker, EXIT_CONFIG } = await import('../../worker/main');
  const errors: string[] = [];
  const spy = jest.spyOn(console, 'error').mockImplementation((m: unknown) => void errors.push(String(m)));
  try {
    const code = await worker({
      CANARY_PROVIDERS: 'local',
      CANARY_ALLOWED_SIGNERS: path.join(tmp, 'missing_signers'),
      CANARY_OIDC_ISSUER: 'https://idp.example.com',
      CANARY_REQUIRE_VERIFIED: 'sometimes',
    });
    expect(code).toBe(EXIT_CONFIG);
  } finally {
    spy.mockRestore();
  }
  const text = errors.join('\n');
  for (const variable of [
    'CANARY_ALLOWED_SIGNERS',
    'CANARY_OIDC_AUDIENCE',
    'CANARY_OIDC_JWKS',
    'CANARY_REQUIRE_VERIFIED',
  ]) {
    expect(text).toContain(variable);
  }
});
