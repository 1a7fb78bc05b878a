// Deployment windows on the time-skipping server: the clock is moved to the wanted Friday before each rollout
// starts (skipped months cost nothing), then the rollout runs against the real local stack.
import type { MetricQuery, MetricsProvider } from '../../activities/types';
import type { ProviderRegistry, ProviderSource } from '../../activities/factory';
import { statusQuery } from '../../workflows/api';
import { localToInstant, zoneOffsetMs } from '../../workflows/windows';
import type { PlanSpec } from '../../workflows/plan';
import { HOUR, MINUTE, RolloutBench } from '../../harness/rollout-env';

jest.setTimeout(300_000);

let bench: RolloutBench;
/** The canary's error rate the scripted metrics answer (stable always 0.1). */
let canaryErrorRate = 0.1;
const scripted: MetricsProvider = {
  type: 'scripted',
  runQuery: async (q: MetricQuery) => (q.side === 'canary' ? canaryErrorRate : 0.1),
  isOnline: async () => true,
};

beforeAll(async () => {
  bench = await RolloutBench.start({
    providers: (real: ProviderRegistry): ProviderSource => ({
      router: (t) => real.router(t),
      workloads: (t) => real.workloads(t),
      metrics: () => scripted,
      alerts: real.alerts,
      alertSinks: real.alertSinks,
    }),
  });
}, 180_000);
afterAll(async () => bench?.close());
beforeEach(async () => {
  canaryErrorRate = 0.1;
  await bench.reset();
});

const ZONE = 'Europe/Berlin';
const DAY = 24 * HOUR;

/** Moves the test server's clock to `ms` (it only moves forward). */
async function clockTo(ms: number): Promise<void> {
  const now = await bench.env.currentTimeMs();
  expect(ms).toBeGreaterThan(now);
  await bench.env.sleep(ms - now);
}

/** A local wall time (`Date.UTC` of the local fields) in Berlin as an instant, through Intl's zone data. */
const berlin = (wall: number): number => localToInstant(ZONE, wall);

/**
 * The first Friday 15:00 (Berlin) after `afterMs` whose weekend has the spring DST change (the last Sunday of
 * March), and the Monday 09:00 after it. The server's clock starts wherever it starts, so the dates are computed.
 */
function springForwardWeekend(afterMs: number): { friday: number; monday: number; mondayDate: string } {
  for (let year = new Date(afterMs).getUTCFullYear(); ; year++) {
    const march31 = Date.UTC(year, 2, 31);
    const sunday = march31 - new Date(march31).getUTCDay() * DAY;
    const friday = berlin(sunday - 2 * DAY + 15 * HOUR);
    if (friday <= afterMs + HOUR) continue;
    const mondayWall = sunday + DAY;
    return {
      friday,
      monday: berlin(mondayWall + 9 * HOUR),
      mondayDate: new Date(mondayWall).toISOString().slice(0, 10),
    };
  }
}

/** The next Friday 15:00 (Berlin) after `afterMs`, and the Monday 09:00 after it. */
function nextWeekend(afterMs: number): { friday: number; monday: number } {
  const today = Math.floor((afterMs + zoneOffsetMs(ZONE, afterMs)) / DAY) * DAY;
  for (let day = today + DAY; ; day += DAY) {
    if (new Date(day).getUTCDay() !== 5) continue;
    return { friday: berlin(day + 15 * HOUR), monday: berlin(day + 3 * DAY + 9 * HOUR) };
  }
}

const weekdays = ['mon', 'tue', 'wed', 'thu', 'fri'];
const plan: PlanSpec = {
  analysis: { interval: '10m', checks: [{ name: 'error-rate', metric: 'error-rate', max: 5 }] },
  stages: [{ weight: 10, hold: '2h' }, { weight: 50, hold: '1h' }, { weight: 100 }],
  promotion: { cleanupDelay: '0s' },
  windows: { timeZone: 'Europe/Berlin', allow: [{ days: weekdays, from: '09:00', to: '17:00' }] },
} as PlanSpec;

test('a stage ending on Friday evening advances on Monday 09:00, across the spring DST change', async () => {
  // Friday 15:00 CET (UTC+1); clocks go forward on Sunday; Monday 09:00 is CEST (UTC+2).
  const w = springForwardWeekend(await bench.env.currentTimeMs());
  expect(zoneOffsetMs(ZONE, w.friday)).toBe(HOUR);
  expect(zoneOffsetMs(ZONE, w.monday)).toBe(2 * HOUR);
  // Friday 15:00 to Monday 09:00 is 66 h of wall time, but only 65 h pass.
  expect(w.monday - w.friday).toBe(65 * HOUR);
  await clockTo(w.friday);
  const h = await bench.startRollout('win-dst', 'v2', plan);
  // The window closes at 17:00 CET a few seconds before the 2 h hold is served (the rollout took them to start):
  // the hold counts only window time, so stage 1 stays at 10 % over the weekend and status says why.
  await bench.env.sleep(2 * HOUR + 30 * MINUTE);
  const friday = await h.query(statusQuery);
  expect([friday.phase, friday.stage, friday.weight]).toEqual(['progressing', 1, 10]);
  expect(friday.window).toEqual({
    open: false,
    note:
      `outside the deployment window (Mon–Fri 09:00–17:00 Europe/Berlin); next opens Mon ${w.mondayDate} 09:00 CEST; ` +
      'the hold of stage 1 counts only time inside the windows',
    nextOpenAt: new Date(w.monday).toISOString(),
  });
  const analysedFriday = friday.analysesRun ?? 0;
  // Saturday: still waiting, still analysing.
  await bench.env.sleep(24 * HOUR);
  const saturday = await h.query(statusQuery);
  expect([saturday.stage, saturday.weight]).toEqual([1, 10]);
  expect(saturday.window?.nextOpenAt).toBe(new Date(w.monday).toISOString());
  expect(saturday.analysesRun ?? 0).toBeGreaterThan(analysedFriday + 100);
  expect(saturday.lastVerdict).toBe('pass');
  expect((await bench.live()).weight).toBe(10);

  const result = await bench.result(h);
  expect(result.outcome).toBe('promoted');
  const advanced = bench
    .alerts(h.workflowId)
    .filter((e) => e.event === 'stage_advanced')
    .map((e) => [e.weight, e.at]);
  expect(advanced[0][0]).toBe(10);
  expect(Math.abs(Date.parse(String(advanced[0][1])) - w.friday)).toBeLessThan(MINUTE);
  // Monday 09:00 CEST, not an hour later as a fixed +1 h offset would have it, plus the seconds of the hold that were
  // left on Friday.
  expect(advanced[1][0]).toBe(50);
  const leftOnFriday = Date.parse(String(advanced[0][1])) - w.friday;
  expect(Date.parse(String(advanced[1][1])) - w.monday).toBeGreaterThanOrEqual(leftOnFriday);
  expect(Date.parse(String(advanced[1][1])) - w.monday).toBeLessThan(MINUTE);
  // Promotion after the 1 h hold, inside Monday's window.
  expect(advanced[2][0]).toBe(100);
  expect(Math.abs(Date.parse(String(advanced[2][1])) - (w.monday + HOUR))).toBeLessThan(MINUTE);
});

test('outside the window analysis goes on and a failing canary still rolls back', async () => {
  // Friday 15:00: the hold ends after the window closed at 17:00.
  const w = nextWeekend(await bench.env.currentTimeMs());
  await clockTo(w.friday);
  const h = await bench.startRollout('win-rollback', 'v2', plan);
  await bench.env.sleep(HOUR * 20); // Saturday 11:00 CEST
  const st = await h.query(statusQuery);
  expect(st.window?.nextOpenAt).toBe(new Date(w.monday).toISOString());
  canaryErrorRate = 9;
  const result = await bench.result(h);
  expect(result.outcome).toBe('rolled_back');
  expect(result.reason).toMatch(/error-rate/);
  expect(result.finalWeight).toBe(0);
  expect((await bench.live()).weight).toBe(0);
  const rolledBack = bench.alerts(h.workflowId).find((e) => e.event === 'rolled_back')!;
  // On Saturday, at the first analysis after the canary turned bad (not on Monday).
  expect(Date.parse(rolledBack.at)).toBeLessThan(w.friday + 20 * HOUR + 15 * MINUTE);
  const after = await h.query(statusQuery);
  expect(after.window).toBeUndefined();
});
