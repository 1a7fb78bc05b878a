// Carried state crosses continue-as-new in the workflow input, so runs recorded before a change carry older shapes:
// every one of them must read into the current state, unchanged in meaning.
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  CARRIED_SCHEMA_VERSION,
  carryOver,
  initialState,
  migrateCarried,
} from '../../workflows/machine/state';

const FIXTURES = path.join(__dirname, '..', 'fixtures');

/** The `carried` field of the first event's input in every recorded history that has one. */
function carriedInputs(): Array<[string, unknown]> {
  const found: Array<[string, unknown]> = [];
  for (const file of fs.readdirSync(FIXTURES).filter((f) => f.endsWith('.history.json'))) {
    const history = JSON.parse(fs.readFileSync(path.join(FIXTURES, file), 'utf8')) as {
      events: Array<{
        workflowExecutionStartedEventAttributes?: { input?: { payloads?: Array<{ data: string }> } };
      }>;
    };
    const payload = history.events[0].workflowExecutionStartedEventAttributes?.input?.payloads?.[0];
    if (!payload) continue;
    const input = JSON.parse(Buffer.from(payload.data, 'base64').toString('utf8')) as { carried?: unknown };
    if (input.carried !== undefined) found.push([file, input.carried]);
  }
  return found;
}

const recorded = carriedInputs();

test('the recorded histories include continued runs of every generation', () => {
  expect(recorded.map(([f]) => f)).toEqual(
    expect.arrayContaining([
      'continued-as-new-run-2.history.json',
      'target-continued-as-new-run-2.history.json',
      'alerts-v2-continued-as-new-run-2.history.json',
      'never-stuck-continued-as-new-run-2.history.json',
    ]),
  );
});

test.each(recorded)(
  '%s: its carried state reads into the current shape, every field kept',
  (_file, carried) => {
    const state = migrateCarried(carried);
    expect(state).toBeDefined();
    expect(state!.schemaVersion).toBe(CARRIED_SCHEMA_VERSION);
    // Nothing the old run carried is lost or changed; nothing is added but the version.
    expect({ ...state, schemaVersion: undefined }).toEqual({
      ...(carried as object),
      schemaVersion: undefined,
    });
    // Fields that came later stay absent where the run did not carry them: their absence is what keeps an old
    // rollout deciding as it did.
    for (const later of ['neverStuck', 'touched', 'planRules', 'alertSeq'] as const) {
      if (!(later in (carried as object))) expect(state![later]).toBeUndefined();
    }
  },
);

test('state older than planRules keeps planRules absent (the run decides the rules as it did)', () => {
  const [, carried] = recorded.find(([f]) => f === 'continued-as-new-run-2.history.json')!;
  expect(migrateCarried(carried)!.planRules).toBeUndefined();
});

test('a first run carries nothing', () => {
  expect(migrateCarried(undefined)).toBeUndefined();
  expect(migrateCarried(null)).toBeUndefined();
});

test('the next run gets the current version, one run later, and reads back the same', () => {
  const s = { ...initialState(), stageIndex: 2, weight: 25, neverStuck: true, touched: { traffic: true } };
  const next = carryOver(s);
  expect(next.run).toBe(2);
  expect(next.schemaVersion).toBe(CARRIED_SCHEMA_VERSION);
  expect(migrateCarried(JSON.parse(JSON.stringify(next)))).toEqual(next);
});

test('shapes this worker cannot read are refused, not guessed at', () => {
  expect(() => migrateCarried('run 2')).toThrow('not an object');
  expect(() => migrateCarried({ ...initialState(), schemaVersion: CARRIED_SCHEMA_VERSION + 1 })).toThrow(
    'newer than this worker reads',
  );
  expect(() => migrateCarried({ phase: 'progressing' })).toThrow('lacks its run');
  expect(() => migrateCarried({ ...initialState(), schemaVersion: -1 })).toThrow('unreadable schemaVersion');
});

test('state carried without the always-present fields gets their first-run values', () => {
  const s = migrateCarried({ run: 3, phase: 'progressing', stageIndex: 1 })!;
  expect(s).toMatchObject({
    run: 3,
    stageIndex: 1,
    analyses: [],
    approvals: [],
    weight: 0,
    finalizing: false,
  });
});
