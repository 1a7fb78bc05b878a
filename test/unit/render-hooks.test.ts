// What `canary status` shows of hooks: a failed hook waiting for a person, and the latest runs with their excerpts.
import { hookStatusLines } from '../../client/render-hooks';
import type { RolloutStatus } from '../../workflows/types';

const base = { hookRuns: [], stage: 2 } as unknown as RolloutStatus;

test('nothing for a rollout without hook runs', () => {
  expect(hookStatusLines(base, 'canary', 'shop/checkout')).toEqual([]);
});

test('a question, then the latest runs', () => {
  const status = {
    ...base,
    hookQuestion: {
      point: 'afterStage',
      stage: 1,
      hook: 'migration',
      reason: 'hook migration (afterStage of stage 1) failed: 127.0.0.1:8080 answered HTTP 422',
      since: '2026-12-07T10:10:00.000Z',
    },
    hookRuns: [
      {
        point: 'before',
        stage: 1,
        hook: 'smoke',
        at: '2026-12-07T10:00:00.000Z',
        tookMs: 1200,
        result: 'ok',
        detail: 'hooks.example.com answered HTTP 200',
        attempt: 1,
      },
      {
        point: 'afterStage',
        stage: 1,
        hook: 'migration',
        at: '2026-12-07T10:10:00.000Z',
        tookMs: 40,
        result: 'failed',
        detail: '127.0.0.1:8080 answered HTTP 422',
        excerpt: 'migration check failed\ntable orders: 3 rows behind',
        attempt: 2,
      },
    ],
  } as RolloutStatus;
  expect(hookStatusLines(status, 'canary', 'shop/checkout')).toEqual([
    '',
    'Waiting for a person since 2026-12-07T10:10:00.000Z: hook migration (afterStage of stage 1) failed: 127.0.0.1:8080 answered HTTP 422',
    '  Go on anyway: canary approve shop/checkout --stage 1 --comment "why it is fine"',
    '  Or roll back: canary abort shop/checkout --reason "why"',
    '',
    'Hooks (latest 2 of 2 kept):',
    '  2026-12-07T10:00:00.000Z  before smoke (stage 1): ok in 1200 ms: hooks.example.com answered HTTP 200',
    '  2026-12-07T10:10:00.000Z  afterStage migration ask 2 (stage 1): failed in 40 ms: 127.0.0.1:8080 answered HTTP 422',
    '    migration check failed\n    table orders: 3 rows behind',
  ]);
});
