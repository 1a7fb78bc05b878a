import { DurationError, formatDuration, parseDuration } from '../../workflows/duration';

const S = 1000;
const M = 60 * S;
const H = 60 * M;
const D = 24 * H;

describe('parseDuration', () => {
  test.each([
    ['90s', 90 * S],
    ['15m', 15 * M],
    ['1h30m', H + 30 * M],
    ['2d', 2 * D],
    ['500ms', 500],
    ['1h30m15s', H + 30 * M + 15 * S],
    ['1d2h3m4s5ms', D + 2 * H + 3 * M + 4 * S + 5],
    ['2w', 14 * D],
    ['0s', 0],
    ['1.5h', 90 * M],
    ['1H30M', H + 30 * M],
    ['  15m  ', 15 * M],
  ])('short form %j is %d ms', (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });

  test.each([
    ['PT1H30M', H + 30 * M],
    ['P2D', 2 * D],
    ['PT90S', 90 * S],
    ['P1DT2H', D + 2 * H],
    ['P1W', 7 * D],
    ['PT0.5S', 500],
    ['PT1,5H', 90 * M],
    ['pt15m', 15 * M],
    ['PT0S', 0],
  ])('ISO-8601 %j is %d ms', (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });

  test.each([
    ['PT1H30M', '1h30m'],
    ['P2D', '2d'],
    ['P2D', '48h'],
    ['PT90S', '90s'],
    ['PT90S', '1m30s'],
    ['P1DT2H', '1d2h'],
    ['PT0.5S', '500ms'],
    ['P1W', '7d'],
  ])('ISO %j and short %j agree', (iso, short) => {
    expect(parseDuration(iso)).toBe(parseDuration(short));
  });

  test.each([
    ['90', 'missing unit'],
    ['0', 'missing unit'],
    ['', 'is empty'],
    ['   ', 'is empty'],
    ['abc', 'expected a number followed by a unit'],
    ['1h 30m', 'unexpected " "'],
    ['5%', 'unexpected "%"'],
    ['5x', 'unknown unit "x" (use ms, s, m, h, d or w)'],
    ['1hour', 'unknown unit "hour" (use ms, s, m, h, d or w)'],
    ['30m1h', 'units must go from largest to smallest ("h" after "m")'],
    ['1h1h', 'unit "h" appears twice'],
    ['0.0001s', 'is finer than a millisecond'],
    ['99999999999999999d', 'is too large'],
    ['P', 'has no components after P or T'],
    ['PT', 'has no components after P or T'],
    ['P1DT', 'has no components after P or T'],
    ['P1H', 'hours, minutes and seconds must come after T, e.g. PT1H'],
    ['PT1D', 'not a valid ISO-8601 duration (P[nW][nD][T[nH][nM][nS]])'],
    ['P1M', 'months are not a fixed length; use days instead, e.g. P30D'],
    ['P1Y', 'years are not a fixed length; use days instead, e.g. P365D'],
    ['P1Y2M3D', 'years are not a fixed length; use days instead, e.g. P365D'],
    ['-5m', 'negative durations are not allowed'],
    ['-PT5M', 'negative durations are not allowed'],
  ])('refuses %j: %s', (text, reason) => {
    let error: unknown;
    try {
      parseDuration(text);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(DurationError);
    expect((error as DurationError).reason).toBe(reason);
    expect((error as DurationError).message).toBe(`invalid duration "${text}": ${reason}`);
  });

  test('classifies negative and calendar errors', () => {
    const kind = (text: string) => {
      try {
        parseDuration(text);
      } catch (e) {
        return (e as DurationError).kind;
      }
      return undefined;
    };
    expect(kind('-1s')).toBe('negative');
    expect(kind('P1M')).toBe('calendar');
    expect(kind('soon')).toBe('syntax');
  });
});

describe('formatDuration', () => {
  test.each([
    [0, '0s'],
    [500, '500ms'],
    [999.6, '1s'],
    [1499, '1s'],
    [1500, '2s'],
    [H - 1, '1h'],
    [H + 59 * M + 59_999, '2h'],
    [H + 23 * M + 45_678, '1h23m46s'],
    [90 * S, '1m30s'],
    [15 * M, '15m'],
    [H + 30 * M, '1h30m'],
    [48 * H, '48h'],
    [30 * D, '720h'],
    [H + 15 * S, '1h15s'],
    [-15 * M, '-15m'],
  ])('%d ms is %j', (ms, text) => {
    expect(formatDuration(ms)).toBe(text);
  });

  test('output parses back to the same value', () => {
    for (const ms of [0, 1, 999, 1000, 61_000, 5_415_000, 30 * D, 123_456_000]) {
      expect(parseDuration(formatDuration(ms))).toBe(ms);
    }
  });

  test('refuses non-finite values', () => {
    expect(() => formatDuration(Number.NaN)).toThrow('cannot format NaN as a duration');
  });
});
