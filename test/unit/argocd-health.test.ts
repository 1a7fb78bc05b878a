// deploy/argocd/health.lua, run by a real Lua VM (fengari, Lua 5.3 in JavaScript) the way Argo CD runs a health
// check: `obj` is the live object, the script returns { status, message }.
import * as fs from 'node:fs';
import * as path from 'node:path';

// fengari ships no type declarations: the few calls used here.
interface Fengari {
  lua: Record<string, (...args: never[]) => unknown> & { LUA_OK: number };
  lauxlib: Record<string, (...args: never[]) => unknown>;
  lualib: { luaL_openlibs(L: unknown): void };
  to_luastring(s: string): Uint8Array;
  to_jsstring(s: Uint8Array): string;
}
// eslint-disable-next-line @typescript-eslint/no-require-imports
const fengari = require('fengari') as Fengari;
const { lua, lauxlib, lualib, to_luastring, to_jsstring } = fengari;

const SCRIPT = fs.readFileSync(path.join(__dirname, '..', '..', 'deploy', 'argocd', 'health.lua'), 'utf8');

/** A Lua table constructor for a JSON value (objects, arrays, strings, numbers, booleans). */
function luaValue(v: unknown): string {
  if (v === null || v === undefined) return 'nil';
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (Array.isArray(v)) return `{${v.map(luaValue).join(', ')}}`;
  return `{${Object.entries(v as Record<string, unknown>)
    .map(([k, x]) => `[${JSON.stringify(k)}] = ${luaValue(x)}`)
    .join(', ')}}`;
}

function health(obj: unknown): { status: string; message: string } {
  const L = (lauxlib.luaL_newstate as () => unknown)();
  lualib.luaL_openlibs(L);
  const code = `obj = ${luaValue(obj)}\nlocal function check()\n${SCRIPT}\nend\nlocal hs = check()\nreturn hs.status, hs.message`;
  const load = (lauxlib.luaL_loadstring as (L: unknown, s: Uint8Array) => number)(L, to_luastring(code));
  const call =
    load === lua.LUA_OK
      ? (lua.lua_pcall as (L: unknown, a: number, r: number, e: number) => number)(L, 0, 2, 0)
      : load;
  const str = (i: number) => to_jsstring((lua.lua_tostring as (L: unknown, i: number) => Uint8Array)(L, i));
  if (call !== lua.LUA_OK) throw new Error(`Lua error: ${str(-1)}`);
  return { status: str(-2), message: str(-1) };
}

const object = (status: object | undefined, generation = 1, version = 'v2') => ({
  metadata: { name: 'checkout', namespace: 'prod', generation },
  spec: { version, plan: { preset: 'quick' }, target: {} },
  ...(status ? { status } : {}),
});
const seen = (phase: string, extra: object = {}) =>
  object({ phase, version: 'v2', observedGeneration: 1, message: `v2: ${phase}`, ...extra });

test.each([
  ['no status yet', 'Progressing', object(undefined)],
  ['a stage running', 'Progressing', seen('progressing')],
  ['rolling back', 'Progressing', seen('rolling_back')],
  ['waiting for an approval', 'Suspended', seen('waiting_approval')],
  ['paused', 'Suspended', seen('paused')],
  ['promoted', 'Healthy', seen('promoted')],
  ['rolled back', 'Degraded', seen('rolled_back')],
  ['not started', 'Degraded', seen('not_started')],
  [
    'promoted, but the spec changed since',
    'Progressing',
    object({ phase: 'promoted', version: 'v2', observedGeneration: 1 }, 2),
  ],
  [
    'promoted v1, v2 superseding it',
    'Progressing',
    object({ phase: 'rolling_back', version: 'v1', observedGeneration: 2 }, 2),
  ],
])('%s → %s', (_what, status, obj) => {
  expect(health(obj).status).toBe(status);
});

test('an invalid spec is Degraded with the problems as the message', () => {
  const obj = object({
    observedGeneration: 1,
    conditions: [
      { type: 'Invalid', status: 'True', reason: 'SpecInvalid', message: 'spec.version: version is empty' },
    ],
  });
  expect(health(obj)).toEqual({ status: 'Degraded', message: 'spec.version: version is empty' });
});

test('a new version refused while another runs is Degraded, saying so', () => {
  const obj = object(
    {
      phase: 'progressing',
      version: 'v1',
      observedGeneration: 2,
      conditions: [{ type: 'NewVersionHeld', status: 'True', reason: 'Refused', message: 'v2 is refused' }],
    },
    2,
  );
  expect(health(obj)).toEqual({ status: 'Degraded', message: 'v2 is refused' });
});
