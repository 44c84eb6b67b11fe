// The statistics every step reports with: summaries, bootstrap confidence intervals, permutation
// tests, multiple-comparison corrections and effect sizes. Plain typed-array code on float64; every
// random function takes an Rng so the same seed gives the same interval or p-value.
import type { Rng } from '../engine/random.ts';

export type Sample = ArrayLike<number>;
/** A statistic of one resampled sample (e.g. `mean`). */
export type Statistic = (x: Float64Array) => number;
/** A statistic of two aligned (paired) or independent samples (e.g. difference of means). */
export type Statistic2 = (a: Float64Array, b: Float64Array) => number;
export type Alternative = 'two-sided' | 'greater' | 'less';

function requireLength(what: string, x: Sample, min: number): void {
  if (x.length < min) throw new Error(`${what}: need at least ${min} values, got ${x.length}`);
}

function requireFinite(what: string, x: Sample): void {
  for (let i = 0; i < x.length; i++) {
    if (!Number.isFinite(x[i])) throw new Error(`${what}: value ${i} is ${x[i]} (not finite)`);
  }
}

// ---------------------------------------------------------------------------------------------
// Summaries

export function mean(x: Sample): number {
  requireLength('mean', x, 1);
  let s = 0;
  for (let i = 0; i < x.length; i++) s += x[i];
  return s / x.length;
}

/** Variance with `ddof` degrees of freedom removed (1 = the unbiased sample variance). */
export function variance(x: Sample, ddof = 1): number {
  requireLength('variance', x, ddof + 1);
  const m = mean(x);
  let s = 0;
  for (let i = 0; i < x.length; i++) s += (x[i] - m) ** 2;
  return s / (x.length - ddof);
}

export function std(x: Sample, ddof = 1): number {
  return Math.sqrt(variance(x, ddof));
}

/** Standard error of the mean. */
export function sem(x: Sample): number {
  return std(x, 1) / Math.sqrt(x.length);
}

/** Sorted float64 copy. */
export function sorted(x: Sample): Float64Array {
  return Float64Array.from(x).sort();
}

/**
 * Quantile q in [0, 1] of `x` by linear interpolation between order statistics (R type 7, numpy's
 * default), so quantile(x, 0.5) is the usual median. Pass `isSorted` to skip the sort.
 */
export function quantile(x: Sample, q: number, isSorted = false): number {
  requireLength('quantile', x, 1);
  if (!(q >= 0 && q <= 1)) throw new Error(`quantile: q must be in [0, 1], got ${q}`);
  const s = isSorted ? x : sorted(x);
  const h = (s.length - 1) * q;
  const lo = Math.floor(h),
    hi = Math.min(lo + 1, s.length - 1);
  return s[lo] + (h - lo) * (s[hi] - s[lo]);
}

export function quantiles(x: Sample, qs: number[]): number[] {
  const s = sorted(x);
  return qs.map((q) => quantile(s, q, true));
}

export function median(x: Sample): number {
  return quantile(x, 0.5);
}

// ---------------------------------------------------------------------------------------------
// Normal distribution helpers (needed by BCa)

/** Standard normal CDF, via erfc (W. J. Cody's rational approximations are overkill here; this
 *  Numerical Recipes erfc has relative error < 1.2e-7, ample for interval endpoints). */
export function normalCdf(z: number): number {
  return 0.5 * erfc(-z / Math.SQRT2);
}

function erfc(x: number): number {
  const z = Math.abs(x);
  const t = 1 / (1 + 0.5 * z);
  const r =
    t *
    Math.exp(
      -z * z -
        1.26551223 +
        t *
          (1.00002368 +
            t *
              (0.37409196 +
                t *
                  (0.09678418 +
                    t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))),
    );
  return x >= 0 ? r : 2 - r;
}

/** Inverse standard normal CDF (Acklam's algorithm, relative error < 1.2e-9). */
export function normalQuantile(p: number): number {
  if (!(p > 0 && p < 1)) {
    if (p === 0) return -Infinity;
    if (p === 1) return Infinity;
    throw new Error(`normalQuantile: p must be in [0, 1], got ${p}`);
  }
  const a = [-3.969683028665376e1, 2.209460984245205e2, -2.759285104469687e2, 1.38357751867269e2, -3.066479806614716e1, 2.506628277459239];
  const b = [-5.447609879822406e1, 1.615858368580409e2, -1.556989798598866e2, 6.680131188771972e1, -1.328068155288572e1];
  const c = [-7.784894002430293e-3, -3.223964580411365e-1, -2.400758277161838, -2.549732539343734, 4.374664141464968, 2.938163982698783];
  const d = [7.784695709041462e-3, 3.224671290700398e-1, 2.445134137142996, 3.754408661907416];
  const pLow = 0.02425;
  if (p < pLow) {
    const q = Math.sqrt(-2 * Math.log(p));
    return (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) / ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  }
  if (p > 1 - pLow) return -normalQuantile(1 - p);
  const q = p - 0.5,
    r = q * q;
  return (
    ((((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q) /
    (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1)
  );
}

/** log Gamma(x) for x > 0 (Lanczos, g = 7), for the exact Hedges correction. */
export function logGamma(x: number): number {
  const g = [
    0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059, 12.507343278686905,
    -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7,
  ];
  if (x < 0.5) return Math.log(Math.PI / Math.abs(Math.sin(Math.PI * x))) - logGamma(1 - x);
  x -= 1;
  let s = g[0];
  for (let i = 1; i < 9; i++) s += g[i] / (x + i);
  const t = x + 7.5;
  return 0.5 * Math.log(2 * Math.PI) + (x + 0.5) * Math.log(t) - t + Math.log(s);
}

/** The regularised incomplete beta function I_x(a, b) (continued fraction, modified Lentz). */
export function incompleteBeta(x: number, a: number, b: number): number {
  if (!(a > 0 && b > 0)) throw new Error(`incompleteBeta: a and b must be positive, got ${a}, ${b}`);
  if (!(x >= 0 && x <= 1)) throw new Error(`incompleteBeta: x must be in [0, 1], got ${x}`);
  if (x === 0 || x === 1) return x;
  // the fraction converges fast for x < (a + 1) / (a + b + 2); the symmetry I_x(a, b) = 1 - I_{1-x}(b, a) covers the rest
  if (x > (a + 1) / (a + b + 2)) return 1 - incompleteBeta(1 - x, b, a);
  const front = Math.exp(logGamma(a + b) - logGamma(a) - logGamma(b) + a * Math.log(x) + b * Math.log(1 - x)) / a;
  const tiny = 1e-300;
  let c = 1,
    d = 1 - ((a + b) * x) / (a + 1);
  d = 1 / (Math.abs(d) < tiny ? tiny : d);
  let f = d;
  for (let m = 1; m <= 500; m++) {
    for (const num of [
      (m * (b - m) * x) / ((a + 2 * m - 1) * (a + 2 * m)),
      -((a + m) * (a + b + m) * x) / ((a + 2 * m) * (a + 2 * m + 1)),
    ]) {
      d = 1 + num * d;
      d = 1 / (Math.abs(d) < tiny ? tiny : d);
      c = 1 + num / c;
      if (Math.abs(c) < tiny) c = tiny;
      f *= c * d;
    }
    if (Math.abs(c * d - 1) < 1e-15) break;
  }
  return front * f;
}

/** Student's t CDF with `df` degrees of freedom. */
export function studentTCdf(t: number, df: number): number {
  if (!(df > 0)) throw new Error(`studentTCdf: df must be positive, got ${df}`);
  if (!Number.isFinite(t)) return t > 0 ? 1 : 0;
  const tail = 0.5 * incompleteBeta(df / (df + t * t), df / 2, 0.5);
  return t >= 0 ? 1 - tail : tail;
}

/** Student's t quantile (bisection on the CDF: ample for interval endpoints). */
export function studentTQuantile(p: number, df: number): number {
  if (!(p > 0 && p < 1)) throw new Error(`studentTQuantile: p must be in (0, 1), got ${p}`);
  if (p < 0.5) return -studentTQuantile(1 - p, df);
  let lo = 0,
    hi = 1;
  while (studentTCdf(hi, df) < p) hi *= 2;
  for (let i = 0; i < 200 && hi - lo > 1e-12 * hi; i++) {
    const mid = (lo + hi) / 2;
    if (studentTCdf(mid, df) < p) lo = mid;
    else hi = mid;
  }
  return (lo + hi) / 2;
}

// ---------------------------------------------------------------------------------------------
// Bootstrap

export interface BootstrapOptions {
  /** Number of bootstrap resamples (default 2000). */
  nBoot?: number;
  /** Confidence level (default 0.95). */
  level?: number;
  /** 'bca' (bias-corrected and accelerated, default) or 'percentile'. */
  method?: 'bca' | 'percentile';
}

export interface BootstrapResult {
  /** The statistic on the original data. */
  estimate: number;
  lo: number;
  hi: number;
  level: number;
  method: 'bca' | 'percentile';
  nBoot: number;
  /** Standard deviation of the bootstrap replicates. */
  se: number;
  /** BCa bias correction z0 and acceleration a (0 for the percentile method). */
  z0: number;
  acceleration: number;
}

function resolveBootstrap(opts: BootstrapOptions): Required<BootstrapOptions> {
  const { nBoot = 2000, level = 0.95, method = 'bca' } = opts;
  if (!(nBoot >= 10)) throw new Error(`bootstrap: nBoot must be >= 10, got ${nBoot}`);
  if (!(level > 0 && level < 1)) throw new Error(`bootstrap: level must be in (0, 1), got ${level}`);
  if (method !== 'bca' && method !== 'percentile') throw new Error(`bootstrap: unknown method '${method}'`);
  return { nBoot, level, method };
}

/**
 * The interval from bootstrap replicates `reps`, the original `estimate` and, for BCa, the jackknife
 * leave-one-out values (Efron & Tibshirani 1993, ch. 14).
 */
function intervalFrom(reps: Float64Array, estimate: number, jack: Float64Array | null, o: Required<BootstrapOptions>): BootstrapResult {
  const sortedReps = reps.slice().sort();
  const se = std(reps, 1);
  const alpha = (1 - o.level) / 2;
  let pLo = alpha,
    pHi = 1 - alpha,
    z0 = 0,
    acceleration = 0;
  if (o.method === 'bca' && jack) {
    // Bias correction: how far the replicates' median sits from the estimate (ties count half).
    let below = 0;
    for (const r of reps) below += r < estimate ? 1 : r === estimate ? 0.5 : 0;
    const frac = Math.min(Math.max(below / reps.length, 0.5 / reps.length), 1 - 0.5 / reps.length);
    z0 = normalQuantile(frac);
    // Acceleration: skewness of the jackknife influence values.
    const jm = mean(jack);
    let num = 0,
      den = 0;
    for (const v of jack) {
      const d = jm - v;
      num += d ** 3;
      den += d * d;
    }
    acceleration = den > 0 ? num / (6 * den ** 1.5) : 0;
    const adjust = (p: number) => {
      const z = normalQuantile(p);
      return normalCdf(z0 + (z0 + z) / (1 - acceleration * (z0 + z)));
    };
    pLo = adjust(alpha);
    pHi = adjust(1 - alpha);
  }
  return {
    estimate,
    lo: quantile(sortedReps, pLo, true),
    hi: quantile(sortedReps, pHi, true),
    level: o.level,
    method: o.method,
    nBoot: o.nBoot,
    se,
    z0,
    acceleration,
  };
}

/**
 * What every bootstrap below shares: `o.nBoot` replicates, each from `replicate` (which draws its own
 * resample), then for BCa the `nJack` jackknife values `leaveOut(0 .. nJack-1)`, then the interval.
 */
function resampled(
  estimate: number,
  o: Required<BootstrapOptions>,
  replicate: () => number,
  nJack: number,
  leaveOut: (i: number) => number,
): BootstrapResult {
  const reps = new Float64Array(o.nBoot);
  for (let b = 0; b < o.nBoot; b++) reps[b] = replicate();
  let jack: Float64Array | null = null;
  if (o.method === 'bca') {
    jack = new Float64Array(nJack);
    for (let i = 0; i < nJack; i++) jack[i] = leaveOut(i);
  }
  return intervalFrom(reps, estimate, jack, o);
}

/** Bootstrap confidence interval for `statistic` (default: the mean) of one sample. */
export function bootstrapCI(x: Sample, rng: Rng, statistic: Statistic = mean, opts: BootstrapOptions = {}): BootstrapResult {
  const o = resolveBootstrap(opts);
  requireLength('bootstrapCI', x, 2);
  requireFinite('bootstrapCI', x);
  const data = Float64Array.from(x),
    n = data.length;
  const buf = new Float64Array(n),
    loo = new Float64Array(n - 1);
  return resampled(
    statistic(data),
    o,
    () => {
      for (let i = 0; i < n; i++) buf[i] = data[rng.int(0, n)];
      return statistic(buf);
    },
    n,
    (i) => {
      for (let j = 0, k = 0; j < n; j++) if (j !== i) loo[k++] = data[j];
      return statistic(loo);
    },
  );
}

const diffOfMeans: Statistic2 = (a, b) => mean(a) - mean(b);

/**
 * Bootstrap interval for a statistic of paired samples (default: mean(a) - mean(b), i.e. the mean
 * paired difference). Pairs (a[i], b[i]) are resampled together, keeping their correlation.
 */
export function bootstrapPairedCI(
  a: Sample,
  b: Sample,
  rng: Rng,
  statistic: Statistic2 = diffOfMeans,
  opts: BootstrapOptions = {},
): BootstrapResult {
  const o = resolveBootstrap(opts);
  if (a.length !== b.length) throw new Error(`bootstrapPairedCI: a has ${a.length} values, b has ${b.length}; pairs must align`);
  requireLength('bootstrapPairedCI', a, 2);
  requireFinite('bootstrapPairedCI a', a);
  requireFinite('bootstrapPairedCI b', b);
  const A = Float64Array.from(a),
    B = Float64Array.from(b),
    n = A.length;
  const ba = new Float64Array(n),
    bb = new Float64Array(n),
    la = new Float64Array(n - 1),
    lb = new Float64Array(n - 1);
  return resampled(
    statistic(A, B),
    o,
    () => {
      for (let i = 0; i < n; i++) {
        const j = rng.int(0, n);
        ba[i] = A[j];
        bb[i] = B[j];
      }
      return statistic(ba, bb);
    },
    n,
    (i) => {
      for (let j = 0, k = 0; j < n; j++)
        if (j !== i) {
          la[k] = A[j];
          lb[k++] = B[j];
        }
      return statistic(la, lb);
    },
  );
}

/**
 * Bootstrap interval for a statistic of two independent samples (default: mean(a) - mean(b)); each
 * sample is resampled separately. BCa's jackknife leaves out one value of either sample in turn.
 */
export function bootstrapTwoSampleCI(
  a: Sample,
  b: Sample,
  rng: Rng,
  statistic: Statistic2 = diffOfMeans,
  opts: BootstrapOptions = {},
): BootstrapResult {
  const o = resolveBootstrap(opts);
  requireLength('bootstrapTwoSampleCI a', a, 2);
  requireLength('bootstrapTwoSampleCI b', b, 2);
  requireFinite('bootstrapTwoSampleCI a', a);
  requireFinite('bootstrapTwoSampleCI b', b);
  const A = Float64Array.from(a),
    B = Float64Array.from(b),
    na = A.length,
    nb = B.length;
  const ba = new Float64Array(na),
    bb = new Float64Array(nb),
    la = new Float64Array(na - 1),
    lb = new Float64Array(nb - 1);
  return resampled(
    statistic(A, B),
    o,
    () => {
      for (let i = 0; i < na; i++) ba[i] = A[rng.int(0, na)];
      for (let i = 0; i < nb; i++) bb[i] = B[rng.int(0, nb)];
      return statistic(ba, bb);
    },
    na + nb,
    // one value of A left out in turn, then one of B
    (i) => {
      if (i < na) {
        for (let j = 0, k = 0; j < na; j++) if (j !== i) la[k++] = A[j];
        return statistic(la, B);
      }
      for (let j = 0, k = 0; j < nb; j++) if (j !== i - na) lb[k++] = B[j];
      return statistic(A, lb);
    },
  );
}

// ---------------------------------------------------------------------------------------------
// Permutation tests

export interface PermutationOptions {
  /** Random permutations (default 9999). The paired test enumerates all 2^n sign flips instead
   *  when that is no more than nPerm + 1. */
  nPerm?: number;
  alternative?: Alternative;
}

export interface PermutationResult {
  /** The observed statistic (difference of means, or mean paired difference). */
  statistic: number;
  pValue: number;
  /** Number of rearrangements the p-value counts over (including the observed one). */
  nPerm: number;
  exact: boolean;
  alternative: Alternative;
  /** the smallest p-value this test can return: 1 / nPerm (1/(n+1) for n random rearrangements,
   *  1/2^n for a full sign-flip enumeration), so a report can say when the floor, not the data, binds */
  floor: number;
}

// Rearranged statistics that equal the observed one up to rounding must count as "as extreme"; a
// relative tolerance keeps floating-point summation order from deciding that.
function atLeastAsExtreme(t: number, obs: number, alt: Alternative, tol: number): boolean {
  if (alt === 'greater') return t >= obs - tol;
  if (alt === 'less') return t <= obs + tol;
  return Math.abs(t) >= Math.abs(obs) - tol;
}

function resolvePermutation(opts: PermutationOptions): Required<PermutationOptions> {
  const { nPerm = 9999, alternative = 'two-sided' } = opts;
  if (!(nPerm >= 1)) throw new Error(`permutation test: nPerm must be >= 1, got ${nPerm}`);
  if (!['two-sided', 'greater', 'less'].includes(alternative)) throw new Error(`permutation test: unknown alternative '${alternative}'`);
  return { nPerm, alternative };
}

/**
 * Two-sample permutation test for a difference of means, mean(a) - mean(b). The p-value is
 * (1 + #{permuted statistics at least as extreme}) / (1 + nPerm), which is never 0 and is a valid
 * (slightly conservative) p-value for random permutations (Phipson & Smyth 2010).
 */
export function permutationTest(a: Sample, b: Sample, rng: Rng, opts: PermutationOptions = {}): PermutationResult {
  const o = resolvePermutation(opts);
  requireLength('permutationTest a', a, 1);
  requireLength('permutationTest b', b, 1);
  requireFinite('permutationTest a', a);
  requireFinite('permutationTest b', b);
  const na = a.length,
    n = na + b.length;
  const pooled = new Float64Array(n);
  pooled.set(Float64Array.from(a), 0);
  pooled.set(Float64Array.from(b), na);
  let total = 0,
    scale = 0;
  for (const v of pooled) {
    total += v;
    scale = Math.max(scale, Math.abs(v));
  }
  // mean(a) - mean(b) from the sum of the first na values alone.
  const diff = (sumA: number) => sumA / na - (total - sumA) / (n - na);
  let sumA = 0;
  for (let i = 0; i < na; i++) sumA += pooled[i];
  const observed = diff(sumA);
  const tol = 1e-10 * Math.max(scale, 1e-300);
  let count = 0;
  const idx = Array.from({ length: n }, (_, i) => i);
  for (let r = 0; r < o.nPerm; r++) {
    // Partial Fisher-Yates: only the first na slots need to be a uniform random subset.
    let s = 0;
    for (let i = 0; i < na; i++) {
      const j = rng.int(i, n);
      const t = idx[i];
      idx[i] = idx[j];
      idx[j] = t;
      s += pooled[idx[i]];
    }
    if (atLeastAsExtreme(diff(s), observed, o.alternative, tol)) count++;
  }
  const result = monteCarloResult(observed, count, o.nPerm, o.alternative);
  // Random permutations only ever draw one of the C(n, na) splits of the pooled values: the
  // observed split (and, two-sided with equal sizes, its mirror) is at least as extreme, so p stays
  // near 1/C(n, na) (2/C) however many are drawn; that, not 1/(nPerm + 1), is then the floor.
  const mirrored = o.alternative === 'two-sided' && na === n - na ? 2 : 1;
  const splitsFloor = mirrored * Math.exp(logGamma(na + 1) + logGamma(n - na + 1) - logGamma(n + 1));
  return { ...result, floor: Math.min(result.pValue, Math.max(result.floor, splitsFloor)) };
}

/**
 * A Monte Carlo permutation test's result: `count` of `nPerm` random permutations at least as
 * extreme as the observed statistic, which counts as one more (p = (count + 1) / (nPerm + 1)).
 */
function monteCarloResult(
  observed: number,
  count: number,
  nPerm: number,
  alternative: PermutationResult['alternative'],
): PermutationResult {
  return { statistic: observed, pValue: (count + 1) / (nPerm + 1), nPerm: nPerm + 1, exact: false, alternative, floor: 1 / (nPerm + 1) };
}

/** Whether a paired sign-flip test of n differences enumerates all 2^n flips at this nPerm. */
function enumeratesFlips(n: number, nPerm: number): boolean {
  return n <= 30 && 2 ** n <= nPerm + 1;
}

/**
 * The smallest p-value `pairedPermutationTest` can return on n differences with `nPerm` flips: when
 * it enumerates every flip, 1/2^n one-sided and 2/2^n two-sided (flipping every sign mirrors the
 * observed statistic); else 1/(nPerm + 1). For callers that keep only the p-value.
 */
export function pairedPermutationFloor(n: number, nPerm: number, alternative: Alternative = 'two-sided'): number {
  if (!(Number.isInteger(n) && n >= 1)) throw new Error(`pairedPermutationFloor: n must be a positive integer, got ${n}`);
  if (!(nPerm >= 1)) throw new Error(`pairedPermutationFloor: nPerm must be >= 1, got ${nPerm}`);
  if (!enumeratesFlips(n, nPerm)) return 1 / (nPerm + 1);
  return (alternative === 'two-sided' ? 2 : 1) / 2 ** n;
}

/**
 * Paired sign-flip permutation test on the differences d = a - b (pass b = null when `a` already holds
 * differences): under the null each difference is symmetric about 0, so its sign is exchangeable.
 * Enumerates all 2^n flips when that is small, else draws nPerm random flips with the +1 correction.
 */
export function pairedPermutationTest(a: Sample, b: Sample | null, rng: Rng, opts: PermutationOptions = {}): PermutationResult {
  const o = resolvePermutation(opts);
  if (b && a.length !== b.length) throw new Error(`pairedPermutationTest: a has ${a.length} values, b has ${b.length}; pairs must align`);
  requireLength('pairedPermutationTest', a, 1);
  requireFinite('pairedPermutationTest a', a);
  if (b) requireFinite('pairedPermutationTest b', b);
  const n = a.length;
  const d = Float64Array.from(a, (v, i) => v - (b ? b[i] : 0));
  const observed = mean(d);
  let scale = 0;
  for (const v of d) scale = Math.max(scale, Math.abs(v));
  const tol = 1e-10 * Math.max(scale, 1e-300);
  let count = 0;
  if (enumeratesFlips(n, o.nPerm)) {
    const total = 2 ** n;
    for (let mask = 0; mask < total; mask++) {
      let s = 0;
      for (let i = 0; i < n; i++) s += (mask >>> i) & 1 ? -d[i] : d[i];
      if (atLeastAsExtreme(s / n, observed, o.alternative, tol)) count++;
    }
    const floor = pairedPermutationFloor(n, o.nPerm, o.alternative);
    return { statistic: observed, pValue: count / total, nPerm: total, exact: true, alternative: o.alternative, floor };
  }
  for (let r = 0; r < o.nPerm; r++) {
    let s = 0;
    for (let i = 0; i < n; i++) s += rng.uniform() < 0.5 ? -d[i] : d[i];
    if (atLeastAsExtreme(s / n, observed, o.alternative, tol)) count++;
  }
  return monteCarloResult(observed, count, o.nPerm, o.alternative);
}

// ---------------------------------------------------------------------------------------------
// Multiple comparisons

function checkPValues(what: string, p: Sample): void {
  for (let i = 0; i < p.length; i++) {
    if (!(p[i] >= 0 && p[i] <= 1)) throw new Error(`${what}: p-value ${i} is ${p[i]}, not in [0, 1]`);
  }
}

/** Holm step-down adjusted p-values (controls the family-wise error rate), in the input order. */
export function holm(p: Sample): Float64Array {
  checkPValues('holm', p);
  const m = p.length;
  const order = Array.from({ length: m }, (_, i) => i).sort((i, j) => p[i] - p[j]);
  const adj = new Float64Array(m);
  let running = 0;
  order.forEach((idx, rank) => {
    running = Math.max(running, Math.min(1, (m - rank) * p[idx]));
    adj[idx] = running;
  });
  return adj;
}

/** Benjamini-Hochberg adjusted p-values (q-values; controls the false discovery rate), in input order. */
export function benjaminiHochberg(p: Sample): Float64Array {
  checkPValues('benjaminiHochberg', p);
  const m = p.length;
  const order = Array.from({ length: m }, (_, i) => i).sort((i, j) => p[i] - p[j]);
  const adj = new Float64Array(m);
  let running = 1;
  for (let rank = m - 1; rank >= 0; rank--) {
    const idx = order[rank];
    running = Math.min(running, (m / (rank + 1)) * p[idx]);
    adj[idx] = running;
  }
  return adj;
}

/** Which hypotheses an adjusted p-value rejects at level alpha. */
export function rejected(adjusted: Sample, alpha = 0.05): boolean[] {
  return Array.from(adjusted, (q) => q <= alpha);
}

// ---------------------------------------------------------------------------------------------
// Effect sizes

/** Cohen's d for two independent samples: (mean(a) - mean(b)) / pooled standard deviation. */
export function cohensD(a: Sample, b: Sample): number {
  requireLength('cohensD a', a, 2);
  requireLength('cohensD b', b, 2);
  const na = a.length,
    nb = b.length;
  const pooled = ((na - 1) * variance(a) + (nb - 1) * variance(b)) / (na + nb - 2);
  if (!(pooled > 0)) throw new Error('cohensD: both samples are constant; the pooled standard deviation is 0');
  return (mean(a) - mean(b)) / Math.sqrt(pooled);
}

/** Hedges' small-sample correction J(df) = Gamma(df/2) / (sqrt(df/2) Gamma((df-1)/2)), exact. */
export function hedgesCorrection(df: number): number {
  if (!(df > 1)) throw new Error(`hedgesCorrection: df must be > 1, got ${df}`);
  return Math.exp(logGamma(df / 2) - logGamma((df - 1) / 2)) / Math.sqrt(df / 2);
}

/** Hedges' g: Cohen's d times the exact small-sample bias correction J(na + nb - 2). */
export function hedgesG(a: Sample, b: Sample): number {
  return cohensD(a, b) * hedgesCorrection(a.length + b.length - 2);
}

/** Paired effect size d_z: mean of the differences a - b over their standard deviation. */
export function pairedD(a: Sample, b: Sample): number {
  if (a.length !== b.length) throw new Error(`pairedD: a has ${a.length} values, b has ${b.length}; pairs must align`);
  requireLength('pairedD', a, 2);
  const d = Float64Array.from(a, (v, i) => v - b[i]);
  const s = std(d);
  if (!(s > 0)) throw new Error('pairedD: the differences are constant; their standard deviation is 0');
  return mean(d) / s;
}
