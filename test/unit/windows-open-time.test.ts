// Time inside the deployment windows (what a hold counts from machine-v2 on): openMsBetween, openReachedAt and
// nextClose against a brute-force reading of isOpen, for random windows in a fixed-offset zone and in zones with
// daylight-saving transitions.
import fc from 'fast-check';
import {
  isOpen,
  nextClose,
  openMsBetween,
  openReachedAt,
  WEEKDAYS,
  type Windows,
} from '../../workflows/windows';
import { validateWindows } from '../../workflows/windows-spec';

const STEP = 15 * 60_000;
// Spans the EU and US spring-forward weekends of 2026 (clocks move on whole hours, so a 15-minute grid is exact).
const BASE = Date.parse('2026-03-05T00:00:00Z');

function windows(spec: unknown): Windows {
  const result = validateWindows(spec, ['windows']);
  if (!result.windows) throw new Error(JSON.stringify(result.problems));
  return result.windows;
}

const hhmm = (quarter: number): string =>
  `${String(Math.floor(quarter / 4)).padStart(2, '0')}:${String((quarter % 4) * 15).padStart(2, '0')}`;

const rangeArb = fc
  .record({
    days: fc.subarray([...WEEKDAYS], { minLength: 1 }),
    from: fc.integer({ min: 0, max: 95 }),
    length: fc.integer({ min: 1, max: 96 }),
  })
  .map(({ days, from, length }) => ({
    days,
    from: hhmm(from),
    to: from + length >= 96 ? '24:00' : hhmm(from + length),
  }));

const freezeArb = fc
  .record({ start: fc.integer({ min: 0, max: 40 * 96 }), length: fc.integer({ min: 1, max: 4 * 96 }) })
  .map(({ start, length }) => ({
    from: new Date(BASE + start * STEP).toISOString(),
    to: new Date(BASE + (start + length) * STEP).toISOString(),
  }));

const windowsArb = fc
  .record({
    timeZone: fc.constantFrom('UTC', 'Europe/Berlin', 'America/New_York', 'Asia/Kolkata'),
    allow: fc.option(fc.array(rangeArb, { minLength: 1, maxLength: 3 }), { nil: undefined }),
    freeze: fc.array(freezeArb, { maxLength: 2 }),
  })
  .map((spec) => windows({ ...spec, ...(spec.allow ? {} : { allow: undefined }) }));

/** Open time in [from, to) read off isOpen every 15 minutes (from and to on the grid). */
function bruteOpenMs(w: Windows, from: number, to: number): number {
  let sum = 0;
  for (let t = from; t < to; t += STEP) if (isOpen(w, t)) sum += STEP;
  return sum;
}

const spanArb = fc
  .record({ start: fc.integer({ min: 0, max: 30 * 96 }), length: fc.integer({ min: 0, max: 6 * 96 }) })
  .map(({ start, length }) => ({ from: BASE + start * STEP, to: BASE + (start + length) * STEP }));

describe('time inside the deployment windows', () => {
  it('openMsBetween counts exactly the time isOpen says is open', () => {
    fc.assert(
      fc.property(windowsArb, spanArb, (w, { from, to }) => {
        expect(openMsBetween(w, from, to, false)).toBe(bruteOpenMs(w, from, to));
      }),
      { numRuns: 150 },
    );
  });

  it('openReachedAt is the first instant by which that much open time has passed', () => {
    fc.assert(
      fc.property(windowsArb, spanArb, fc.integer({ min: 1, max: 3 * 96 }), (w, { from }, quarters) => {
        const at = openReachedAt(w, from, quarters * STEP, false);
        if (at === undefined) return;
        expect(openMsBetween(w, from, at, false)).toBe(quarters * STEP);
        // Not a moment later than needed: the last instant before it was open and still short.
        expect(openMsBetween(w, from, at - 1, false)).toBe(quarters * STEP - 1);
      }),
      { numRuns: 150 },
    );
  });

  it('nextClose finds the first closed instant after an open one', () => {
    fc.assert(
      fc.property(windowsArb, spanArb, (w, { from }) => {
        const closes = nextClose(w, from);
        if (!isOpen(w, from)) return expect(closes).toBe(from);
        if (closes === undefined) return;
        expect(isOpen(w, closes)).toBe(false);
        for (let t = from; t < Math.min(closes, from + 8 * 96 * STEP); t += STEP)
          expect(isOpen(w, t)).toBe(true);
      }),
      { numRuns: 150 },
    );
  });

  it('a Friday-evening stage under weekday 09:00–17:00 windows serves its 4 h hold on Monday morning', () => {
    const w = windows({
      timeZone: 'Europe/Berlin',
      allow: [{ days: ['mon', 'tue', 'wed', 'thu', 'fri'], from: '09:00', to: '17:00' }],
    });
    // Entered Friday 2026-03-20 15:00 CET: 2 h served by 17:00, the other 2 h from Monday 09:00 (08:00Z).
    const entered = Date.parse('2026-03-20T14:00:00Z');
    expect(new Date(openReachedAt(w, entered, 4 * 3_600_000, false)!).toISOString()).toBe(
      '2026-03-23T10:00:00.000Z',
    );
    expect(openMsBetween(w, entered, Date.parse('2026-03-22T12:00:00Z'), false)).toBe(2 * 3_600_000);
  });

  it('with promotion: any, a hold before the promotion counts all of its time', () => {
    const w = windows({ timeZone: 'UTC', allow: [{ from: '09:00', to: '10:00' }], promotion: 'any' });
    const from = Date.parse('2026-03-20T00:00:00Z');
    expect(openMsBetween(w, from, from + 5 * 3_600_000, true)).toBe(5 * 3_600_000);
    expect(openMsBetween(w, from, from + 24 * 3_600_000, false)).toBe(3_600_000);
    expect(openReachedAt(w, from, 3_600_000, true)).toBe(from + 3_600_000);
  });
});
