import { compareSeries, erfc, mannWhitneyU, normalUpperTail } from '../../workflows/mann-whitney';

describe('mannWhitneyU against published reference values', () => {
  // scipy.stats.mannwhitneyu docstring, "Examples" (scipy/stats/_mannwhitneyu.py), after Shier (2004): ages at
  // diagnosis of type II diabetes.
  const males = [19, 22, 16, 29, 24];
  const females = [20, 11, 17, 12];

  it('scipy: exact two-sided, U1 = 17, p = 0.1111111111111111', () => {
    const r = mannWhitneyU(males, females, { method: 'exact' });
    expect(r.u).toBe(17);
    expect(r.pValue).toBeCloseTo(0.1111111111111111, 14);
    expect(r.method).toBe('exact');
    // auto picks exact here (no ties, small samples), as scipy and R do
    expect(mannWhitneyU(males, females).pValue).toBeCloseTo(0.1111111111111111, 14);
  });

  it('scipy: asymptotic with continuity correction, p = 0.11134688653314041', () => {
    const r = mannWhitneyU(males, females, { method: 'asymptotic' });
    expect(r.pValue).toBeCloseTo(0.11134688653314041, 13);
    expect(r.method).toBe('asymptotic');
  });

  it('scipy: asymptotic without continuity correction, p = 0.0864107329737', () => {
    const r = mannWhitneyU(males, females, { method: 'asymptotic', continuity: false });
    expect(r.pValue).toBeCloseTo(0.0864107329737, 12);
  });

  it('scipy: females against males, alternative less, exact: U = 3, p = 0.05555555555555555', () => {
    const r = mannWhitneyU(females, males, { alternative: 'less', method: 'exact' });
    expect(r.u).toBe(3);
    expect(r.pValue).toBeCloseTo(0.05555555555555555, 14);
  });

  // R, ?wilcox.test, "Two-sample test" example: Hollander & Wolfe (1973), p. 69f, permeability constants of
  // the human chorioamnion at term (x) and at 12-26 weeks (y); R prints W = 35 with p-value = 0.1272 (exact,
  // alternative "greater") and p-value = 0.1103 (exact = FALSE, correct = FALSE: H&W's large-sample version).
  const x = [0.8, 0.83, 1.89, 1.04, 1.45, 1.38, 1.91, 1.64, 0.73, 1.46];
  const y = [1.15, 0.88, 0.9, 0.74, 1.21];

  it('R wilcox.test: W = 35, exact one-sided p = 0.1272', () => {
    const r = mannWhitneyU(x, y, { alternative: 'greater' });
    expect(r.u).toBe(35);
    expect(r.method).toBe('exact');
    expect(r.pValue).toBeCloseTo(0.1272, 4);
  });

  it('R wilcox.test: normal approximation without correction, p = 0.1103', () => {
    const r = mannWhitneyU(x, y, { alternative: 'greater', method: 'asymptotic', continuity: false });
    expect(r.pValue).toBeCloseTo(0.1103, 4);
  });

  // R's wilcox.test with ties (so the normal approximation, continuity-corrected), as printed on endmemo.com's
  // wilcox.test page: W = 51.5, p-value = 0.5966.
  it('R wilcox.test with ties: W = 51.5, p = 0.5966', () => {
    const r = mannWhitneyU([1, 5, 9, 24, 56, 21, 3, 7, 21, 4], [12, 15, 5, 9, 9, 14, 56, 22, 3, 7, 32, 5]);
    expect(r.u).toBe(51.5);
    expect(r.ties).toBe(true);
    expect(r.method).toBe('asymptotic');
    expect(r.pValue).toBeCloseTo(0.5966, 4);
  });

  // NAG Library g08amc (nag_mann_whitney) example program, data and results: 16 and 23 values with many ties;
  // U = 86, "Normal Statistic = -2.8039", "Approximate tail probability = 0.0025" (lower tail).
  it('NAG g08amc with ties: U = 86, z = -2.8039, tail 0.0025', () => {
    const g1 = [13, 6, 12, 7, 12, 7, 10, 7, 10, 7, 16, 7, 10, 8, 9, 8];
    const g2 = [17, 6, 10, 8, 15, 8, 15, 10, 15, 10, 14, 10, 14, 11, 14, 11, 13, 12, 13, 12, 13, 12, 12];
    const r = mannWhitneyU(g1, g2, { alternative: 'less' });
    expect(r.u).toBe(86);
    expect(r.z).toBeCloseTo(-2.8039, 4);
    expect(r.pValue).toBeCloseTo(0.0025, 4);
  });

  // ClickHouse's mannWhitneyUTest documentation example: (10, 11, 12) against (1, 2, 3), 'greater', normal
  // approximation with continuity correction: (9, 0.04042779918503192).
  it("ClickHouse mannWhitneyUTest('greater'): U = 9, p = 0.0404277991850", () => {
    const r = mannWhitneyU([10, 11, 12], [1, 2, 3], { alternative: 'greater', method: 'asymptotic' });
    expect(r.u).toBe(9);
    expect(r.pValue).toBeCloseTo(0.04042779918503192, 12);
  });
});

describe('mannWhitneyU properties', () => {
  it("reports Cliff's delta (= rank-biserial correlation) as the effect size", () => {
    // 17 of 20 pairs favour males: delta = 2 * 17 / 20 - 1
    expect(mannWhitneyU([19, 22, 16, 29, 24], [20, 11, 17, 12]).effectSize).toBeCloseTo(0.7, 12);
    expect(mannWhitneyU([10, 11, 12], [1, 2, 3]).effectSize).toBe(1);
    expect(mannWhitneyU([1, 2, 3], [10, 11, 12]).effectSize).toBe(-1);
  });

  it('is symmetric: swapping the samples mirrors U, z and the effect, not the two-sided p', () => {
    const a = [3.1, 4.5, 2.2, 5.9, 4.4, 3.8];
    const b = [2.0, 2.9, 3.3, 1.7, 2.5];
    const ab = mannWhitneyU(a, b);
    const ba = mannWhitneyU(b, a);
    expect(ab.u + ba.u).toBe(a.length * b.length);
    expect(ab.effectSize).toBeCloseTo(-ba.effectSize, 12);
    expect(ab.pValue).toBeCloseTo(ba.pValue, 12);
    expect(mannWhitneyU(a, b, { alternative: 'greater' }).pValue).toBeCloseTo(
      mannWhitneyU(b, a, { alternative: 'less' }).pValue,
      12,
    );
  });

  it('sees nothing in identical samples: p = 1, z = 0', () => {
    const r = mannWhitneyU([5, 5, 5], [5, 5, 5, 5]);
    expect(r.pValue).toBe(1);
    expect(r.z).toBe(0);
    expect(r.effectSize).toBe(0);
  });

  it('goes asymptotic from 50 values on a side (R rule)', () => {
    const a = Array.from({ length: 50 }, (_, i) => i * 2);
    const b = Array.from({ length: 10 }, (_, i) => i * 2 + 1);
    expect(mannWhitneyU(a, b).method).toBe('asymptotic');
    expect(mannWhitneyU(a.slice(0, 49), b).method).toBe('exact');
  });

  it('exact and asymptotic agree on mid-sized samples', () => {
    const a = Array.from({ length: 30 }, (_, i) => i * 1.7 + 0.35);
    const b = Array.from({ length: 30 }, (_, i) => i * 1.5);
    const exact = mannWhitneyU(a, b, { method: 'exact' }).pValue;
    const approx = mannWhitneyU(a, b, { method: 'asymptotic' }).pValue;
    expect(Math.abs(exact - approx)).toBeLessThan(0.005);
  });

  it('refuses empty or non-finite samples', () => {
    expect(() => mannWhitneyU([], [1])).toThrow(RangeError);
    expect(() => mannWhitneyU([1, NaN], [1])).toThrow(/finite/);
  });
});

describe('erfc and the normal tail', () => {
  // Reference erfc values from Python's math.erfc (C99 libm), to 16 digits.
  it.each([
    [0.1, 0.88753708398171516],
    [0.5, 0.47950012218695348],
    [1, 0.15729920705028513],
    [2, 0.0046777349810472654],
    [3, 2.2090496998585438e-5],
    [5, 1.5374597944280349e-12],
    [10, 2.0884875837625449e-45],
  ])('erfc(%p)', (x, expected) => {
    expect(Math.abs(erfc(x) - expected) / expected).toBeLessThan(1e-13);
  });

  it('is symmetric around 0 and gives the familiar normal quantiles', () => {
    expect(erfc(-1)).toBeCloseTo(2 - 0.15729920705028513, 14);
    expect(normalUpperTail(1.959963984540054)).toBeCloseTo(0.025, 12);
    expect(normalUpperTail(0)).toBe(0.5);
  });
});

describe('compareSeries (pass / marginal / fail)', () => {
  const stable = [100, 102, 98, 101, 99, 100, 103, 97, 100, 101];
  const rule = { effectSize: 0.33, alpha: 0.05, direction: 'increase' as const };

  it('fails a canary that is clearly slower', () => {
    const canary = stable.map((v) => v + 20);
    const c = compareSeries(canary, stable, rule);
    expect(c.outcome).toBe('fail');
    expect(c.result.effectSize).toBe(1);
    expect(c.note).toMatch(/higher than stable/);
  });

  it('passes a canary that is the same, or better when only an increase is bad', () => {
    expect(compareSeries(stable, stable, rule).outcome).toBe('pass');
    expect(
      compareSeries(
        stable.map((v) => v - 20),
        stable,
        rule,
      ).outcome,
    ).toBe('pass');
    expect(
      compareSeries(
        stable.map((v) => v - 20),
        stable,
        { ...rule, direction: 'either' },
      ).outcome,
    ).toBe('fail');
  });

  it('is marginal when the canary looks worse but the samples cannot show it yet', () => {
    // 3 against 3, every canary point higher: delta 1, yet the exact one-sided p is 1/20, not below 0.05
    const c = compareSeries([11, 12, 13], [10, 10.5, 9], rule);
    expect(c.result.effectSize).toBe(1);
    expect(c.result.pValue).toBeCloseTo(0.05, 12);
    expect(c.outcome).toBe('marginal');
  });

  it('passes a significant but small shift (below the effect size)', () => {
    // 200 points a side, the canary shifted by a hair: significant, delta below 0.33
    const base = Array.from({ length: 200 }, (_, i) => (i * 37) % 200);
    const canary = base.map((v) => v + 15);
    const c = compareSeries(canary, base, rule);
    expect(c.result.pValue).toBeLessThan(0.05);
    expect(c.result.effectSize).toBeLessThan(0.33);
    expect(c.outcome).toBe('pass');
  });
});
