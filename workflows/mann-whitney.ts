// The Mann-Whitney U test (Wilcoxon rank-sum test) on two independent samples, and the pass / marginal / fail
// classification the judge uses to compare a canary's series with stable's, in the spirit of Kayenta. Pure and
// deterministic: no Node APIs, so it runs in the workflow sandbox.
//
// Ours rather than a library's: the npm packages for this test (mann-whitney-utest and its fork) return U only,
// with no p-value, and @stdlib has the signed-rank test (paired samples), not the rank-sum test. It follows R's
// wilcox.test: the exact null distribution when both samples have fewer than 50 values and there are no ties,
// otherwise the normal approximation with the tie correction and (by default) the continuity correction.

export type Alternative = 'two-sided' | 'greater' | 'less';

export interface MannWhitneyOptions {
  /** `greater`: a tends to be larger than b. Default `two-sided`. */
  alternative?: Alternative;
  /** `auto` (default): exact without ties when both samples have fewer than 50 values; else asymptotic. */
  method?: 'auto' | 'exact' | 'asymptotic';
  /** The continuity correction (1/2) of the normal approximation. Default true, as in R and scipy. */
  continuity?: boolean;
}

export interface MannWhitneyResult {
  /** U of the first sample: the pairs (x from a, y from b) with x > y, ties counting 1/2. R's W, scipy's U1. */
  u: number;
  /** The normal approximation's statistic (tie and, when asked, continuity corrected), also when p is exact. */
  z: number;
  /** The p-value for the alternative asked. */
  pValue: number;
  /**
   * Cliff's delta of a against b, in [-1, 1]: P(x > y) - P(x < y) = 2U / (n_a n_b) - 1. For two independent
   * samples it equals the rank-biserial correlation. Positive: a tends to be larger.
   */
  effectSize: number;
  method: 'exact' | 'asymptotic';
  alternative: Alternative;
  /** Whether the pooled sample has tied values (then the p-value is never exact). */
  ties: boolean;
}

/** R's rule: exact when both samples are smaller than this and nothing is tied. */
const EXACT_BELOW = 50;

export function mannWhitneyU(a: readonly number[], b: readonly number[], options: MannWhitneyOptions = {}) {
  const alternative = options.alternative ?? 'two-sided';
  const continuity = options.continuity ?? true;
  const n1 = a.length;
  const n2 = b.length;
  if (n1 === 0 || n2 === 0)
    throw new RangeError('the Mann-Whitney U test needs at least one value on each side');
  for (const v of [...a, ...b]) {
    if (!Number.isFinite(v)) throw new RangeError(`the Mann-Whitney U test needs finite values, got ${v}`);
  }

  // Ranks of the pooled sample, ties getting their average rank; tie group sizes for the variance correction.
  const pooled = [...a.map((v) => ({ v, first: true })), ...b.map((v) => ({ v, first: false }))];
  pooled.sort((x, y) => x.v - y.v);
  let rankSumA = 0;
  let tieTerm = 0;
  for (let i = 0; i < pooled.length;) {
    let j = i;
    while (j + 1 < pooled.length && pooled[j + 1].v === pooled[i].v) j++;
    const rank = (i + j + 2) / 2;
    const t = j - i + 1;
    tieTerm += t * t * t - t;
    for (let k = i; k <= j; k++) if (pooled[k].first) rankSumA += rank;
    i = j + 1;
  }
  const ties = tieTerm > 0;
  const u = rankSumA - (n1 * (n1 + 1)) / 2;
  const product = n1 * n2;
  const n = n1 + n2;

  // Normal approximation (R's wilcox.test, also scipy's mannwhitneyu).
  const sigma = Math.sqrt((product / 12) * (n + 1 - tieTerm / (n * (n - 1))));
  const centred = u - product / 2;
  const correction = !continuity
    ? 0
    : alternative === 'two-sided'
      ? Math.sign(centred) * 0.5
      : alternative === 'greater'
        ? 0.5
        : -0.5;
  const z = sigma === 0 ? 0 : (centred - correction) / sigma;

  const exact =
    options.method === 'exact' ||
    (options.method !== 'asymptotic' && !ties && n1 < EXACT_BELOW && n2 < EXACT_BELOW);
  let pValue: number;
  if (exact) {
    pValue = exactPValue(u, n1, n2, alternative);
  } else if (sigma === 0) {
    // Every value is the same: nothing tells the samples apart.
    pValue = 1;
  } else {
    pValue =
      alternative === 'greater'
        ? normalUpperTail(z)
        : alternative === 'less'
          ? normalUpperTail(-z)
          : 2 * normalUpperTail(Math.abs(z));
  }
  const result: MannWhitneyResult = {
    u,
    z,
    pValue: Math.min(1, Math.max(0, pValue)),
    effectSize: (2 * u) / product - 1,
    method: exact ? 'exact' : 'asymptotic',
    alternative,
    ties,
  };
  return result;
}

/**
 * The exact p-value from the null distribution of U: the coefficients of the Gaussian binomial coefficient
 * [n1 + n2 choose n1]_q = prod_{i=1..n1} (1 - q^(n2+i)) / (1 - q^i), whose q^k coefficient counts the
 * orderings with U = k. With ties the statistic is not on that lattice: the p-value is then only as good as
 * rounding U allows, which is why `auto` never chooses this with ties (as R and scipy).
 */
function exactPValue(u: number, n1: number, n2: number, alternative: Alternative): number {
  const max = n1 * n2;
  const counts = new Array<number>(max + 1).fill(0);
  counts[0] = 1;
  for (let i = 1; i <= n1; i++) {
    // Multiply by (1 - q^(n2+i)), then divide by (1 - q^i): the result is [n2+i choose i]_q, non-negative.
    const up = n2 + i;
    for (let k = max; k >= up; k--) counts[k] -= counts[k - up];
    for (let k = i; k <= max; k++) counts[k] += counts[k - i];
  }
  const total = counts.reduce((s, c) => s + c, 0);
  const atMost = (k: number): number => {
    let s = 0;
    for (let j = 0; j <= Math.min(max, Math.floor(k)); j++) s += counts[j];
    return s / total;
  };
  const atLeast = (k: number): number => {
    let s = 0;
    for (let j = Math.max(0, Math.ceil(k)); j <= max; j++) s += counts[j];
    return s / total;
  };
  if (alternative === 'greater') return atLeast(u);
  if (alternative === 'less') return atMost(u);
  return Math.min(1, 2 * (u > max / 2 ? atLeast(u) : atMost(u)));
}

/** P(Z > z) for a standard normal Z. */
export function normalUpperTail(z: number): number {
  return 0.5 * erfc(z / Math.SQRT2);
}

const TWO_OVER_SQRT_PI = 2 / Math.sqrt(Math.PI);

/**
 * The complementary error function, to about 1e-15 relative (checked against a reference erfc on [0.3, 6.3]): a
 * series of positive terms below 0.5, where 1 - erf loses nothing; above, the continued fraction, which keeps
 * the digits that matter in a tail.
 */
export function erfc(x: number): number {
  if (Number.isNaN(x)) return NaN;
  if (x < 0) return 2 - erfc(-x);
  if (x < 0.5) {
    // erf(x) = 2/sqrt(pi) e^(-x^2) sum_n (2x^2)^n x / (1 * 3 * ... * (2n+1))
    let term = x;
    let sum = x;
    for (let k = 1; k < 100 && term > sum * 1e-17; k++) {
      term *= (2 * x * x) / (2 * k + 1);
      sum += term;
    }
    return 1 - TWO_OVER_SQRT_PI * Math.exp(-x * x) * sum;
  }
  if (x > 27) return 0;
  // erfc(x) = e^(-x^2)/sqrt(pi) / (x + (1/2)/(x + 1/(x + (3/2)/(x + 2/(x + ...))))), evaluated from the tail;
  // 1000 terms reach full precision from x = 0.5 on.
  let f = x;
  for (let k = 1000; k >= 1; k--) f = x + k / 2 / f;
  return Math.exp(-x * x) / (Math.sqrt(Math.PI) * f);
}

// ---------------------------------------------------------------------------------------------------------------
// The judge's classification

/** Which change of the canary against the baseline is bad: `increase` for latencies and error rates. */
export type Direction = 'increase' | 'decrease' | 'either';

export interface ComparisonRule {
  /** The smallest |Cliff's delta| in the bad direction that counts as a real degradation, in (0, 1]. */
  effectSize: number;
  /** Significance level of the one-sided (two-sided for `either`) test. */
  alpha: number;
  direction: Direction;
}

export type ComparisonOutcome = 'pass' | 'marginal' | 'fail';

export interface Comparison {
  outcome: ComparisonOutcome;
  result: MannWhitneyResult;
  /** One line a person can read, e.g. `canary higher than stable: delta 0.62, p 0.004 < 0.05`. */
  note: string;
}

/**
 * Canary against baseline: `fail` when the canary is significantly worse (p < alpha) by at least the effect
 * size; `marginal` when it looks that much worse but the samples cannot show it yet (p >= alpha); `pass` when
 * the effect in the bad direction is below the effect size, significant or not (as Kayenta's allowed change: a
 * tiny but real shift on big samples is no reason to hold a stage).
 */
export function compareSeries(
  canary: readonly number[],
  baseline: readonly number[],
  rule: ComparisonRule,
): Comparison {
  const alternative: Alternative =
    rule.direction === 'increase' ? 'greater' : rule.direction === 'decrease' ? 'less' : 'two-sided';
  const result = mannWhitneyU(canary, baseline, { alternative });
  const delta = result.effectSize;
  const bad =
    rule.direction === 'increase' ? delta : rule.direction === 'decrease' ? -delta : Math.abs(delta);
  const significant = result.pValue < rule.alpha;
  const outcome: ComparisonOutcome = bad < rule.effectSize ? 'pass' : significant ? 'fail' : 'marginal';
  const side = delta > 0 ? 'higher than' : delta < 0 ? 'lower than' : 'level with';
  const p = `p ${round(result.pValue)} ${significant ? '<' : '>='} ${rule.alpha}`;
  const note =
    `canary ${side} stable: delta ${round(delta)} (effect size ${rule.effectSize}), ${p}` +
    (outcome === 'marginal' ? ' (not significant yet)' : '');
  return { outcome, result, note };
}

function round(v: number): number {
  return Number(v.toPrecision(3));
}
