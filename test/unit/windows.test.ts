import {
  describeWindowState,
  describeWindows,
  isOpen,
  localToInstant,
  mayAdvance,
  nextOpen,
  windowOpeningProblem,
  type Windows,
  type WindowsSpec,
} from '../../workflows/windows';
import { validateWindows } from '../../workflows/windows-spec';

const at = (iso: string): number => {
  const ms = Date.parse(iso);
  if (Number.isNaN(ms)) throw new Error(`bad test instant ${iso}`);
  return ms;
};
const show = (ms: number | undefined): string | undefined =>
  ms === undefined ? undefined : new Date(ms).toISOString();

function windows(spec: unknown): Windows {
  const result = validateWindows(spec, ['windows']);
  if (!result.windows) throw new Error(JSON.stringify(result.problems));
  return result.windows;
}

const WEEKDAYS_9_TO_5 = { days: ['mon', 'tue', 'wed', 'thu', 'fri'], from: '09:00', to: '17:00' };
const berlin = windows({ timeZone: 'Europe/Berlin', allow: [WEEKDAYS_9_TO_5] });
const newYork = windows({ timeZone: 'America/New_York', allow: [WEEKDAYS_9_TO_5] });

describe('a stage that ends on Friday evening under a Monday-to-Friday 09:00–17:00 window', () => {
  it('advances on Monday at 09:00 local time in an ordinary week', () => {
    // Fri 2026-03-20 18:00 CET → Mon 2026-03-23 09:00 CET
    expect(show(nextOpen(berlin, at('2026-03-20T17:00:00Z')))).toBe('2026-03-23T08:00:00.000Z');
  });

  it('advances on Monday 09:00 CEST across the EU spring-forward weekend (Berlin, 2026-03-29)', () => {
    // Fri 2026-03-27 18:00 CET (UTC+1) → Mon 2026-03-30 09:00 CEST (UTC+2)
    expect(show(nextOpen(berlin, at('2026-03-27T17:00:00Z')))).toBe('2026-03-30T07:00:00.000Z');
    expect(describeWindowState(berlin, at('2026-03-27T17:00:00Z'))).toBe(
      'outside the deployment window (Mon–Fri 09:00–17:00 Europe/Berlin); next opens Mon 2026-03-30 09:00 CEST',
    );
  });

  it('advances on Monday 09:00 CET across the EU autumn weekend (Berlin, 2026-10-25)', () => {
    // Fri 2026-10-23 18:00 CEST → Mon 2026-10-26 09:00 CET
    expect(show(nextOpen(berlin, at('2026-10-23T16:00:00Z')))).toBe('2026-10-26T08:00:00.000Z');
    expect(describeWindowState(berlin, at('2026-10-23T16:00:00Z'))).toBe(
      'outside the deployment window (Mon–Fri 09:00–17:00 Europe/Berlin); next opens Mon 2026-10-26 09:00 CET',
    );
  });

  it('advances on Monday 09:00 across both US changes (New York, 2026-03-08 and 2026-11-01)', () => {
    // Fri 2026-03-06 18:00 EST → Mon 2026-03-09 09:00 EDT
    expect(show(nextOpen(newYork, at('2026-03-06T23:00:00Z')))).toBe('2026-03-09T13:00:00.000Z');
    // Fri 2026-10-30 18:00 EDT → Mon 2026-11-02 09:00 EST
    expect(show(nextOpen(newYork, at('2026-10-30T22:00:00Z')))).toBe('2026-11-02T14:00:00.000Z');
    expect(describeWindowState(newYork, at('2026-10-30T22:00:00Z'))).toBe(
      'outside the deployment window (Mon–Fri 09:00–17:00 America/New_York); next opens Mon 2026-11-02 09:00 EST',
    );
  });

  it('is closed at 17:00 exactly and open at 09:00 exactly', () => {
    expect(isOpen(berlin, at('2026-03-30T07:00:00Z'))).toBe(true); // Mon 09:00 CEST
    expect(isOpen(berlin, at('2026-03-30T06:59:59.999Z'))).toBe(false);
    expect(isOpen(berlin, at('2026-03-30T14:59:59.999Z'))).toBe(true);
    expect(isOpen(berlin, at('2026-03-30T15:00:00Z'))).toBe(false); // Mon 17:00 CEST
    expect(isOpen(berlin, at('2026-03-28T10:00:00Z'))).toBe(false); // Saturday
  });
});

describe('nextOpen', () => {
  it('returns atMs itself inside the window', () => {
    const now = at('2026-03-30T08:30:12.345Z');
    expect(nextOpen(berlin, now)).toBe(now);
    expect(describeWindowState(berlin, now)).toBe(
      'inside the deployment window (Mon–Fri 09:00–17:00 Europe/Berlin)',
    );
  });

  it('waits through a lunch break and overnight with several ranges in a day', () => {
    const w = windows({
      timeZone: 'Europe/Berlin',
      allow: [
        { days: ['mon', 'tue', 'wed', 'thu', 'fri'], from: '09:00', to: '12:00' },
        { days: ['mon', 'tue', 'wed', 'thu', 'fri'], from: '13:00', to: '17:00' },
        { days: ['sat'], from: '10:00', to: '11:00' },
      ],
    });
    expect(describeWindows(w)).toBe('Mon–Fri 09:00–12:00, 13:00–17:00; Sat 10:00–11:00 Europe/Berlin');
    // Mon 2026-03-30 12:30 CEST → 13:00 CEST
    expect(show(nextOpen(w, at('2026-03-30T10:30:00Z')))).toBe('2026-03-30T11:00:00.000Z');
    // Mon 17:30 → Tue 09:00
    expect(show(nextOpen(w, at('2026-03-30T15:30:00Z')))).toBe('2026-03-31T07:00:00.000Z');
    // Fri 2026-04-03 17:30 → Sat 10:00
    expect(show(nextOpen(w, at('2026-04-03T15:30:00Z')))).toBe('2026-04-04T08:00:00.000Z');
  });

  it("treats to: '24:00' as the end of the day, so ranges join across midnight", () => {
    const w = windows({
      timeZone: 'UTC',
      allow: [
        { days: ['sat'], from: '20:00', to: '24:00' },
        { days: ['sun'], from: '00:00', to: '06:00' },
      ],
    });
    expect(isOpen(w, at('2026-03-28T23:59:59.999Z'))).toBe(true);
    expect(isOpen(w, at('2026-03-29T00:00:00Z'))).toBe(true);
    expect(isOpen(w, at('2026-03-29T06:00:00Z'))).toBe(false);
    expect(show(nextOpen(w, at('2026-03-28T19:00:00Z')))).toBe('2026-03-28T20:00:00.000Z');
    expect(describeWindowState(w, at('2026-03-29T07:00:00Z'))).toBe(
      'outside the deployment window (Sat 20:00–24:00; Sun 00:00–06:00 UTC); next opens Sat 2026-04-04 20:00 UTC',
    );
  });

  it('opens a 01:00–03:00 window on the spring-forward day for its one real hour', () => {
    const w = windows({ timeZone: 'Europe/Berlin', allow: [{ days: ['sun'], from: '01:00', to: '03:00' }] });
    // Sun 2026-03-29 00:30 CET → 01:00 CET; 02:00 CET is skipped to 03:00 CEST, which closes the window.
    expect(show(nextOpen(w, at('2026-03-28T23:30:00Z')))).toBe('2026-03-29T00:00:00.000Z');
    expect(isOpen(w, at('2026-03-29T00:59:59.999Z'))).toBe(true);
    expect(isOpen(w, at('2026-03-29T01:00:00Z'))).toBe(false);
    // Next Sunday, 01:00 CEST.
    expect(show(nextOpen(w, at('2026-03-29T01:00:00Z')))).toBe('2026-04-04T23:00:00.000Z');
  });

  it('opens a window that starts inside the spring-forward gap at the first valid instant after it', () => {
    const w = windows({ timeZone: 'Europe/Berlin', allow: [{ days: ['sun'], from: '02:30', to: '04:00' }] });
    // 02:30 does not exist on 2026-03-29: the window opens when clocks jump to 03:00 CEST.
    expect(show(nextOpen(w, at('2026-03-28T23:30:00Z')))).toBe('2026-03-29T01:00:00.000Z');
    // A window that lies wholly inside the gap does not happen that day.
    const gap = windows({
      timeZone: 'America/New_York',
      allow: [{ days: ['sun'], from: '02:00', to: '03:00' }],
    });
    // Sun 2026-03-08 00:00 EST → Sun 2026-03-15 02:00 EDT
    expect(show(nextOpen(gap, at('2026-03-08T05:00:00Z')))).toBe('2026-03-15T06:00:00.000Z');
  });

  it('opens at the first occurrence of a wall time the autumn change repeats', () => {
    const w = windows({ timeZone: 'Europe/Berlin', allow: [{ days: ['sun'], from: '02:30', to: '04:00' }] });
    // Sun 2026-10-25 00:00 CEST → 02:30 CEST (the first of the two 02:30s)
    expect(show(nextOpen(w, at('2026-10-24T22:00:00Z')))).toBe('2026-10-25T00:30:00.000Z');
    // A window that ends in the repeated hour opens again when the clocks go back into it.
    const early = windows({
      timeZone: 'Europe/Berlin',
      allow: [{ days: ['sun'], from: '01:00', to: '02:30' }],
    });
    expect(isOpen(early, at('2026-10-25T00:29:59Z'))).toBe(true); // 02:29 CEST
    expect(isOpen(early, at('2026-10-25T00:30:00Z'))).toBe(false); // 02:30 CEST
    expect(show(nextOpen(early, at('2026-10-25T00:30:00Z')))).toBe('2026-10-25T01:00:00.000Z'); // 02:00 CET
    expect(isOpen(early, at('2026-10-25T01:30:00Z'))).toBe(false); // 02:30 CET
  });
});

describe('freeze periods', () => {
  const holiday = windows({
    timeZone: 'Europe/Berlin',
    allow: [WEEKDAYS_9_TO_5],
    freeze: [{ from: '2026-12-18', to: '2026-12-21', reason: 'holiday party' }],
  });

  it('covers whole local days, both ends inclusive', () => {
    expect(holiday.freeze[0]).toEqual({
      fromMs: at('2026-12-17T23:00:00Z'),
      untilMs: at('2026-12-21T23:00:00Z'),
      from: '2026-12-18',
      to: '2026-12-21',
      reason: 'holiday party',
    });
  });

  it('holds a stage that ends on Thursday evening through a Friday-to-Monday freeze', () => {
    // Thu 2026-12-17 18:00 CET → Tue 2026-12-22 09:00 CET
    expect(show(nextOpen(holiday, at('2026-12-17T17:00:00Z')))).toBe('2026-12-22T08:00:00.000Z');
    expect(isOpen(holiday, at('2026-12-18T09:00:00Z'))).toBe(false); // Fri 10:00, inside hours but frozen
    expect(describeWindowState(holiday, at('2026-12-18T09:00:00Z'))).toBe(
      'frozen through 2026-12-21 (holiday party); next opens Tue 2026-12-22 09:00 CET',
    );
  });

  it('describes a year-end freeze', () => {
    const w = windows({
      timeZone: 'Europe/Berlin',
      allow: [WEEKDAYS_9_TO_5],
      freeze: [{ from: '2026-12-20', to: '2027-01-04', reason: 'year-end freeze' }],
    });
    expect(describeWindowState(w, at('2026-12-21T10:00:00Z'))).toBe(
      'frozen through 2027-01-04 (year-end freeze); next opens Tue 2027-01-05 09:00 CET',
    );
  });

  it('takes RFC 3339 timestamps as exact instants, and allows any time outside freezes without allow', () => {
    const w = windows({
      timeZone: 'Europe/Berlin',
      freeze: [{ from: '2026-06-01T12:00:00+02:00', to: '2026-06-01T15:30:00Z', reason: 'maintenance' }],
    });
    expect(isOpen(w, at('2026-06-01T09:59:59.999Z'))).toBe(true);
    expect(isOpen(w, at('2026-06-01T10:00:00Z'))).toBe(false);
    expect(show(nextOpen(w, at('2026-06-01T11:00:00Z')))).toBe('2026-06-01T15:30:00.000Z');
    expect(describeWindowState(w, at('2026-06-01T11:00:00Z'))).toBe(
      'frozen until Mon 2026-06-01 17:30 CEST (maintenance); next opens Mon 2026-06-01 17:30 CEST',
    );
    expect(describeWindowState(w, at('2026-06-02T11:00:00Z'))).toBe(
      'inside the deployment window (any time outside freezes, Europe/Berlin)',
    );
  });

  it('follows overlapping freezes to the end of the last one', () => {
    const w = windows({
      timeZone: 'UTC',
      freeze: [
        { from: '2026-07-01', to: '2026-07-03' },
        { from: '2026-07-03', to: '2026-07-05' },
        { from: '2026-07-02', to: '2026-07-02' },
      ],
    });
    expect(show(nextOpen(w, at('2026-07-01T12:00:00Z')))).toBe('2026-07-06T00:00:00.000Z');
  });

  it('gives up after 400 days', () => {
    const w = windows({
      timeZone: 'UTC',
      allow: [WEEKDAYS_9_TO_5],
      freeze: [{ from: '2026-01-01', to: '2028-01-01' }],
    });
    expect(nextOpen(w, at('2026-01-02T00:00:00Z'))).toBeUndefined();
    expect(describeWindowState(w, at('2026-01-02T00:00:00Z'))).toBe(
      'frozen through 2028-01-01; does not open within 400 days',
    );
  });
});

describe('promotion', () => {
  it('obeys the windows unless the plan says promotion: any', () => {
    const saturday = at('2026-03-28T10:00:00Z');
    expect(mayAdvance(berlin, saturday, true)).toBe(false);
    expect(mayAdvance(windows({ ...berlinSpec(), promotion: 'any' }), saturday, true)).toBe(true);
    expect(mayAdvance(windows({ ...berlinSpec(), promotion: 'any' }), saturday, false)).toBe(false);
    expect(mayAdvance(undefined, saturday, false)).toBe(true);
  });
});

function berlinSpec(): WindowsSpec {
  return {
    timeZone: 'Europe/Berlin',
    allow: [{ days: ['mon', 'tue', 'wed', 'thu', 'fri'], from: '09:00', to: '17:00' }],
  };
}

describe('localToInstant', () => {
  it('maps a wall time in a gap to the moment the clocks jump, and a repeated one to its first occurrence', () => {
    expect(show(localToInstant('Europe/Berlin', Date.UTC(2026, 2, 29, 2, 30)))).toBe(
      '2026-03-29T01:00:00.000Z',
    );
    expect(show(localToInstant('Europe/Berlin', Date.UTC(2026, 9, 25, 2, 30)))).toBe(
      '2026-10-25T00:30:00.000Z',
    );
    expect(show(localToInstant('America/New_York', Date.UTC(2026, 10, 1, 1, 30)))).toBe(
      '2026-11-01T05:30:00.000Z',
    );
    expect(show(localToInstant('Asia/Kolkata', Date.UTC(2026, 0, 1)))).toBe('2025-12-31T18:30:00.000Z');
  });
});

describe('validateWindows', () => {
  it('normalises a valid section', () => {
    expect(validateWindows({ ...berlinSpec(), freeze: [{ from: '2026-12-20', to: '2027-01-04' }] })).toEqual({
      windows: {
        timeZone: 'Europe/Berlin',
        allow: [{ days: ['mon', 'tue', 'wed', 'thu', 'fri'], fromMinute: 540, toMinute: 1020 }],
        freeze: [
          {
            fromMs: at('2026-12-19T23:00:00Z'),
            untilMs: at('2027-01-04T23:00:00Z'),
            from: '2026-12-20',
            to: '2027-01-04',
          },
        ],
        promotion: 'windows',
      },
      problems: [],
    });
    // Days default to every day and come out in week order.
    expect(windows({ timeZone: 'UTC', allow: [{ from: '9:00', to: '24:00' }] }).allow).toEqual([
      { days: ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'], fromMinute: 540, toMinute: 1440 },
    ]);
    expect(
      windows({ timeZone: 'UTC', allow: [{ days: ['fri', 'mon'], from: '09:00', to: '10:00' }] }).allow?.[0]
        .days,
    ).toEqual(['mon', 'fri']);
  });

  it('lists every problem by path, in document order', () => {
    const result = validateWindows(
      {
        timeZone: 'Europe/Berln',
        allow: [
          { days: ['monday', 'tue', 'tue', 'xyz'], from: '9am', to: '25:00' },
          { days: ['sat'], from: '18:00', to: '17:00' },
          { days: [], from: 540, to: '24:00', dayz: 'x' },
          { from: '24:00', to: '24:00' },
        ],
        freeze: [
          { from: '2026-12-20', to: '2026-12-01' },
          { from: '2026-02-30', to: 'soon', reasn: 'x' },
          { from: '2026-06-01T12:00:00Z', to: '2026-06-01T12:00:00Z' },
          'christmas',
        ],
        promotion: 'never',
        promotoin: 'any',
      },
      ['windows'],
    );
    expect(result.windows).toBeUndefined();
    expect(result.problems).toEqual([
      {
        path: 'windows.timeZone',
        message: 'unknown time zone "Europe/Berln" (did you mean "Europe/Berlin"?)',
      },
      { path: 'windows.allow[0].days[0]', message: 'unknown day "monday" (did you mean "mon"?)' },
      { path: 'windows.allow[0].days[2]', message: '"tue" is listed twice' },
      {
        path: 'windows.allow[0].days[3]',
        message: 'unknown day "xyz"; use mon, tue, wed, thu, fri, sat, sun',
      },
      {
        path: 'windows.allow[0].from',
        message: 'must be a time of day as HH:MM from 00:00 to 23:59, got "9am"',
      },
      {
        path: 'windows.allow[0].to',
        message:
          'must be a time of day as HH:MM from 00:00 to 24:00, got "25:00": there is no hour 25 (hours go from 00 to 23)',
      },
      {
        path: 'windows.allow[1]',
        message:
          'from (18:00) must be before to (17:00); a range cannot cross midnight, so split it in two ' +
          '(e.g. 22:00–24:00 and 00:00–06:00 of the next day)',
      },
      { path: 'windows.allow[2].days', message: 'lists no days; leave days out for every day' },
      {
        path: 'windows.allow[2].from',
        message: "must be a time of day as HH:MM from 00:00 to 23:59 (quote it in YAML: '09:00'), got 540",
      },
      { path: 'windows.allow[2].dayz', message: 'unknown field "dayz" (did you mean "days"?)' },
      {
        path: 'windows.allow[3].from',
        message:
          'must be a time of day as HH:MM from 00:00 to 23:59, got "24:00": there is no hour 24 (hours go from 00 to 23)',
      },
      { path: 'windows.freeze[0].to', message: 'must not be before from (2026-12-20), got "2026-12-01"' },
      {
        path: 'windows.freeze[1].from',
        message: '"2026-02-30" is not a real date or time: February 2026 has 28 days, so there is no day 30',
      },
      {
        path: 'windows.freeze[1].to',
        message:
          'must be a date like 2026-12-20 or an RFC 3339 timestamp like 2026-12-20T18:00:00+01:00, got "soon"',
      },
      { path: 'windows.freeze[1].reasn', message: 'unknown field "reasn" (did you mean "reason"?)' },
      {
        path: 'windows.freeze[2].to',
        message:
          'must not be before from (2026-06-01T12:00:00Z), got "2026-06-01T12:00:00Z" (a timestamp must be after from)',
      },
      {
        path: 'windows.freeze[3]',
        message:
          "must be an object like { from: '2026-12-20', to: '2027-01-04', reason: ... }, got \"christmas\"",
      },
      {
        path: 'windows.promotion',
        message: 'must be windows (promotion waits for a window, the default) or any, got "never"',
      },
      { path: 'windows.promotoin', message: 'unknown field "promotoin" (did you mean "promotion"?)' },
    ]);
  });

  it('refuses an empty allow list, too many entries, a missing zone and a section that is not an object', () => {
    expect(validateWindows({ timeZone: 'UTC', allow: [] }).problems).toEqual([
      {
        path: 'windows.allow',
        message:
          'lists no ranges, so stages could never advance; leave allow out to allow any time outside freezes',
      },
    ]);
    const many = Array.from({ length: 51 }, () => ({ from: '09:00', to: '10:00' }));
    expect(
      validateWindows({
        timeZone: 'UTC',
        allow: many,
        freeze: Array(51).fill({ from: '2026-01-01', to: '2026-01-01' }),
      }).problems,
    ).toEqual([
      { path: 'windows.allow', message: 'lists 51 ranges; at most 50 are allowed' },
      { path: 'windows.freeze', message: 'lists 51 freeze periods; at most 50 are allowed' },
    ]);
    expect(validateWindows({ allow: [{ from: '09:00', to: '10:00' }] }).problems).toEqual([
      { path: 'windows.timeZone', message: 'is required: an IANA time zone such as Europe/Berlin or UTC' },
    ]);
    expect(validateWindows({ timeZone: 'Mars/Olympus_Mons' }).problems).toEqual([
      {
        path: 'windows.timeZone',
        message:
          'unknown time zone "Mars/Olympus_Mons"; use an IANA name such as Europe/Berlin, America/New_York or UTC',
      },
    ]);
    expect(validateWindows('weekdays', ['stages', 2, 'windows']).problems).toEqual([
      {
        path: 'stages[2].windows',
        message: 'must be an object with timeZone, allow, freeze and promotion, got "weekdays"',
      },
    ]);
  });
});

describe('impossible dates and times are refused, never rolled over', () => {
  it.each([
    ['2026-02-29', 'February 2026 has 28 days, so there is no day 29'],
    ['2026-04-31', 'April 2026 has 30 days, so there is no day 31'],
    ['2026-13-01', 'there is no month 13 (months go from 01 to 12)'],
    ['2026-00-01', 'there is no month 0 (months go from 01 to 12)'],
    ['2026-12-20T24:00:00Z', 'there is no hour 24 (hours go from 00 to 23)'],
    ['2026-12-20T23:61:00Z', 'there is no minute 61 (minutes go from 00 to 59)'],
    ['2026-12-20T23:59:60Z', 'there is no second 60 (seconds go from 00 to 59)'],
    ['2026-02-30T12:00:00+01:00', 'February 2026 has 28 days, so there is no day 30'],
    ['2026-12-20T12:00:00+24:00', 'the offset +24:00 is not a UTC offset'],
  ])('freeze from %s: %s', (from, why) => {
    expect(validateWindows({ timeZone: 'UTC', freeze: [{ from, to: '2027-01-04' }] }).problems).toEqual([
      { path: 'windows.freeze[0].from', message: `"${from}" is not a real date or time: ${why}` },
    ]);
  });

  it('a leap day is a real day', () => {
    expect(windows({ timeZone: 'UTC', freeze: [{ from: '2028-02-29', to: '2028-02-29' }] }).freeze).toEqual([
      {
        fromMs: Date.UTC(2028, 1, 29),
        untilMs: Date.UTC(2028, 2, 1),
        from: '2028-02-29',
        to: '2028-02-29',
      },
    ]);
  });

  it.each([
    ['from', '24:61', 'HH:MM from 00:00 to 23:59', 'there is no minute 61 (minutes go from 00 to 59)'],
    ['from', '25:00', 'HH:MM from 00:00 to 23:59', 'there is no hour 25 (hours go from 00 to 23)'],
    ['to', '24:30', 'HH:MM from 00:00 to 24:00', 'only 24:00 itself ends a day'],
    ['to', '12:75', 'HH:MM from 00:00 to 24:00', 'there is no minute 75 (minutes go from 00 to 59)'],
  ])('allow %s %s', (field, value, forms, why) => {
    const range = { from: '00:00', to: '24:00', [field]: value };
    expect(validateWindows({ timeZone: 'UTC', allow: [range] }).problems).toEqual([
      {
        path: `windows.allow[0].${field}`,
        message: `must be a time of day as ${forms}, got "${value}": ${why}`,
      },
    ]);
  });
});

describe('windowOpeningProblem: windows that never open refuse a new rollout', () => {
  const now = at('2026-03-02T10:00:00Z'); // a Monday

  it('is silent when the windows are open, or open within the bound', () => {
    expect(windowOpeningProblem(berlin, now)).toBeUndefined();
    expect(windowOpeningProblem(berlin, at('2026-03-07T10:00:00Z'))).toBeUndefined(); // Saturday: opens Monday
    const freeze = windows({ timeZone: 'UTC', freeze: [{ from: '2026-03-01', to: '2026-03-20' }] });
    expect(windowOpeningProblem(freeze, now)).toBeUndefined();
  });

  it('refuses a freeze that lasts past the horizon (until 2999)', () => {
    const w = windows({
      timeZone: 'Europe/Berlin',
      freeze: [{ from: '2026-01-01', to: '2999-12-31', reason: 'forever' }],
    });
    expect(windowOpeningProblem(w, now)).toEqual({
      path: 'windows',
      message:
        'the deployment windows do not open within the next 400 days (as far ahead as openings are searched), ' +
        'more than 30 days (the default of windows.opensWithin) from now (Mon 2026-03-02 11:00 CET): the rollout ' +
        'would wait that long before it changes anything. Check the freeze dates and allow ranges, or set ' +
        'windows.opensWithin to a longer bound if the wait is meant',
    });
  });

  it('refuses windows that open later than the default 30 days, naming when; opensWithin moves the bound', () => {
    const spec = { timeZone: 'UTC', freeze: [{ from: '2026-03-01', to: '2026-04-15' }] };
    expect(windowOpeningProblem(windows(spec), now)?.message).toMatch(
      /^the deployment windows next open Thu 2026-04-16 00:00 UTC, in 44 days 14h, more than 30 days \(the default of windows.opensWithin\) from now/,
    );
    expect(windowOpeningProblem(windows({ ...spec, opensWithin: '60d' }), now)).toBeUndefined();
    expect(
      windowOpeningProblem(windows({ ...spec, opensWithin: '7d' }), at('2026-04-10T00:00:00Z')),
    ).toBeUndefined();
    expect(
      windowOpeningProblem(windows({ ...spec, opensWithin: '2d' }), at('2026-04-10T00:00:00Z'))?.message,
    ).toMatch(
      /next open Thu 2026-04-16 00:00 UTC, in 6 days, more than 2 days \(windows.opensWithin\) from now/,
    );
  });

  it('opensWithin is a duration up to 400 days, kept only when written (older plans normalise as before)', () => {
    expect(windows({ timeZone: 'UTC' })).toEqual({ timeZone: 'UTC', freeze: [], promotion: 'windows' });
    expect(windows({ timeZone: 'UTC', opensWithin: 'P45D' }).opensWithinMs).toBe(45 * 86_400_000);
    const refused = (opensWithin: unknown) => validateWindows({ timeZone: 'UTC', opensWithin }).problems;
    expect(refused('soon')).toEqual([
      {
        path: 'windows.opensWithin',
        message:
          'invalid duration "soon": expected a number followed by a unit; use a duration like 7d, 720h or P45D',
      },
    ]);
    expect(refused('401d')[0].message).toBe(
      'must be more than 0s and at most 400 days (how far ahead openings are searched), got "401d"',
    );
    expect(refused('0s')[0].path).toBe('windows.opensWithin');
    expect(refused(['7d'])[0].message).toBe('must be a duration like 7d, 720h or P45D, got a list');
    expect(validateWindows({ timeZone: 'UTC', opensWithn: '7d' }).problems).toEqual([
      { path: 'windows.opensWithn', message: 'unknown field "opensWithn" (did you mean "opensWithin"?)' },
    ]);
  });
});
