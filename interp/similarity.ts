// Comparing what two models (or two SAEs) learned: the method's cross-seed reproducibility tools.
//
//  - hungarian(cost): an optimal one-to-one assignment (Kuhn-Munkres with potentials, O(n² m)).
//  - matchDictionaries(A, B): SAE latents of two dictionaries paired one-to-one so that the summed
//    decoder cosine is largest; a latent is "shared" when its partner's cosine reaches a threshold.
//    Signed cosine: SAE latents fire non-negatively, so a flipped direction is a different feature.
//  - linearCka(X, Y): linear centred kernel alignment (Kornblith et al. 2019) in its feature-space
//    form ||Yc'Xc||²_F / (||Xc'Xc||_F ||Yc'Yc||_F), with per-group sufficient statistics so a
//    bootstrap over sequences costs O(groups * p * q) per resample instead of a pass over the rows.
//  - jaccard / randomJaccard / exactJaccardNull: overlap of two index sets and its null for random
//    sets of the same sizes (Monte-Carlo, or exact from the hypergeometric law of the intersection).
//  - activationCorrelations / matchByCorrelation / circularShiftRows: latents of two models matched
//    by the correlation of their activations on the same tokens (basis-free), against a null that
//    shifts one side's tokens within each sequence.
//  - svcca / svccaFromStats: SVCCA (Raghu et al. 2017), the mean canonical correlation after
//    keeping each side's top directions that explain 99% of its variance.
//  - seedPairInterval: a mean over seed pairs with a jackknife-over-seeds t interval (pairs share
//    seeds, so they are not independent units).
//  - locateChannels / locateOneToOne: a channel set of one model located in another by activation
//    correlation (each channel's best partner, or distinct partners by an optimal assignment).
// Decoder cosines and channel Jaccard compare raw coordinates: between independently trained
// models, which share no basis, they are basis-dependent and expected near chance by construction.
import type { Rng } from '../engine/random.ts';
import { jaccard } from './attribution.ts';
import { symmetricEigen } from './linalg.ts';
import { logGamma, quantile, studentTQuantile } from './stats.ts';

export { jaccard };

// ---------------------------------------------------------------------------------------------
// Assignment

/**
 * Minimum-cost assignment of every row of `cost` [n][m] (n <= m) to a distinct column.
 * Returns colOf[row]. Exact (shortest augmenting paths with row/column potentials).
 */
export function hungarian(cost: ArrayLike<number>[]): number[] {
  const n = cost.length;
  if (n === 0) return [];
  const m = cost[0].length;
  if (n > m) throw new Error(`hungarian: ${n} rows cannot be assigned to ${m} distinct columns (transpose the cost)`);
  for (let i = 0; i < n; i++) {
    if (cost[i].length !== m) throw new Error(`hungarian: row ${i} has ${cost[i].length} columns, row 0 has ${m}`);
    for (let j = 0; j < m; j++) if (!Number.isFinite(cost[i][j])) throw new Error(`hungarian: cost[${i}][${j}] is ${cost[i][j]}`);
  }
  // a flat copy (step 10 assigns thousands of small problems: typed-array reads and buffers
  // allocated once per call instead of per row halve the time)
  const C = new Float64Array(n * m);
  for (let i = 0; i < n; i++) C.set(cost[i], i * m);
  // 1-based arrays as in the classic formulation; column 0 is a virtual start.
  const u = new Float64Array(n + 1),
    v = new Float64Array(m + 1);
  const rowOfCol = new Int32Array(m + 1); // 0 = free
  const way = new Int32Array(m + 1);
  const minv = new Float64Array(m + 1);
  const used = new Uint8Array(m + 1);
  for (let i = 1; i <= n; i++) {
    rowOfCol[0] = i;
    let j0 = 0;
    minv.fill(Infinity);
    used.fill(0);
    do {
      used[j0] = 1;
      const i0 = rowOfCol[j0];
      const o = (i0 - 1) * m - 1,
        ui = u[i0];
      let delta = Infinity,
        j1 = 0;
      for (let j = 1; j <= m; j++) {
        if (used[j]) continue;
        const cur = C[o + j] - ui - v[j];
        if (cur < minv[j]) {
          minv[j] = cur;
          way[j] = j0;
        }
        if (minv[j] < delta) {
          delta = minv[j];
          j1 = j;
        }
      }
      for (let j = 0; j <= m; j++) {
        if (used[j]) {
          u[rowOfCol[j]] += delta;
          v[j] -= delta;
        } else minv[j] -= delta;
      }
      j0 = j1;
    } while (rowOfCol[j0] !== 0);
    do {
      const j1 = way[j0];
      rowOfCol[j0] = rowOfCol[j1];
      j0 = j1;
    } while (j0);
  }
  const colOf = new Array<number>(n).fill(-1);
  for (let j = 1; j <= m; j++) if (rowOfCol[j]) colOf[rowOfCol[j] - 1] = j - 1;
  return colOf;
}

/** Sum of cost[i][colOf[i]]. */
export function assignmentCost(cost: ArrayLike<number>[], colOf: readonly number[]): number {
  return colOf.reduce((s, j, i) => s + cost[i][j], 0);
}

// ---------------------------------------------------------------------------------------------
// Dictionaries (SAE decoder directions)

/** Rows of `w` [rows, d] scaled to unit length (zero rows stay zero). */
export function unitRows(w: ArrayLike<number>, d: number): Float64Array {
  if (w.length % d !== 0) throw new Error(`unitRows: ${w.length} values are not rows of width ${d}`);
  const out = Float64Array.from(w);
  for (let r = 0; r < out.length / d; r++) {
    let s = 0;
    for (let j = 0; j < d; j++) s += out[r * d + j] ** 2;
    const norm = Math.sqrt(s);
    if (norm > 0) for (let j = 0; j < d; j++) out[r * d + j] /= norm;
  }
  return out;
}

/** Cosine similarity of every row of a [na, d] with every row of b [nb, d]: [na][nb]. */
export function cosineMatrix(a: ArrayLike<number>, b: ArrayLike<number>, d: number): Float64Array[] {
  const A = unitRows(a, d),
    B = unitRows(b, d);
  const na = A.length / d,
    nb = B.length / d;
  return Array.from({ length: na }, (_, i) => {
    const row = new Float64Array(nb);
    for (let k = 0; k < nb; k++) {
      let s = 0;
      for (let j = 0; j < d; j++) s += A[i * d + j] * B[k * d + j];
      row[k] = s;
    }
    return row;
  });
}

export interface DictionaryMatch {
  /** for each row of A: its partner in B (-1 when B has fewer rows and A's row was left over) */
  partner: number[];
  /** the matched cosine per row of A (-1 for a row left over) */
  cosine: Float64Array;
}

/** One-to-one matching of dictionary rows a [na, d] to b [nb, d] maximising the summed cosine. */
export function matchDictionaries(a: ArrayLike<number>, b: ArrayLike<number>, d: number): DictionaryMatch {
  const cos = cosineMatrix(a, b, d);
  const na = cos.length,
    nb = na ? cos[0].length : 0;
  const partner = new Array<number>(na).fill(-1);
  if (na <= nb) {
    hungarian(cos.map((r) => r.map((c) => -c))).forEach((j, i) => {
      partner[i] = j;
    });
  } else {
    const t = Array.from({ length: nb }, (_, k) => Float64Array.from(cos, (r) => -r[k]));
    hungarian(t).forEach((i, k) => {
      partner[i] = k;
    });
  }
  return { partner, cosine: Float64Array.from(partner, (j, i) => (j >= 0 ? cos[i][j] : -1)) };
}

/** `count` random unit directions in `d` dimensions (Gaussian, normalised), [count, d]. */
export function randomUnitRows(count: number, d: number, rng: Rng): Float64Array {
  const w = Float64Array.from({ length: count * d }, () => rng.normal());
  return unitRows(w, d);
}

/** Fraction of matched cosines at or above `threshold`. */
export function sharedFraction(cosines: ArrayLike<number>, threshold: number): number {
  if (!cosines.length) return NaN;
  let k = 0;
  for (let i = 0; i < cosines.length; i++) if (cosines[i] >= threshold) k++;
  return k / cosines.length;
}

// ---------------------------------------------------------------------------------------------
// Linear CKA

/**
 * Per-group sums of one pair of representations X [n, p], Y [n, q] (rows in groups, e.g. one group
 * per sequence): enough to compute linear CKA on any multiset of groups.
 */
export interface CkaStats {
  p: number;
  q: number;
  groups: number;
  count: Float64Array; // [g]
  sumX: Float64Array; // [g, p]
  sumY: Float64Array; // [g, q]
  xx: Float64Array; // [g, p, p]
  yy: Float64Array; // [g, q, q]
  xy: Float64Array; // [g, p, q]
}

/** Sums of X, Y and their cross products per group; group[r] in [0, groups) for each row r. */
export function ckaStats(X: ArrayLike<number>, Y: ArrayLike<number>, p: number, q: number, group?: ArrayLike<number>): CkaStats {
  const n = X.length / p;
  if (!Number.isInteger(n) || Y.length !== n * q)
    throw new Error(`ckaStats: X has ${X.length} values (width ${p}), Y has ${Y.length} (width ${q}); they must hold the same rows`);
  let groups = 1;
  if (group) {
    if (group.length !== n) throw new Error(`ckaStats: ${group.length} group ids for ${n} rows`);
    for (let r = 0; r < n; r++) groups = Math.max(groups, group[r] + 1);
  }
  const s: CkaStats = {
    p,
    q,
    groups,
    count: new Float64Array(groups),
    sumX: new Float64Array(groups * p),
    sumY: new Float64Array(groups * q),
    xx: new Float64Array(groups * p * p),
    yy: new Float64Array(groups * q * q),
    xy: new Float64Array(groups * p * q),
  };
  for (let r = 0; r < n; r++) {
    const g = group ? group[r] : 0;
    s.count[g]++;
    const xo = r * p,
      yo = r * q;
    for (let i = 0; i < p; i++) {
      const xi = X[xo + i];
      s.sumX[g * p + i] += xi;
      const xxo = (g * p + i) * p,
        xyo = (g * p + i) * q;
      for (let j = 0; j < p; j++) s.xx[xxo + j] += xi * X[xo + j];
      for (let j = 0; j < q; j++) s.xy[xyo + j] += xi * Y[yo + j];
    }
    for (let i = 0; i < q; i++) {
      const yi = Y[yo + i];
      s.sumY[g * q + i] += yi;
      const yyo = (g * q + i) * q;
      for (let j = 0; j < q; j++) s.yy[yyo + j] += yi * Y[yo + j];
    }
  }
  return s;
}

/** Linear CKA over the groups in `weights` (how many times each group is taken; default all once). */
export function ckaFromStats(s: CkaStats, weights?: ArrayLike<number>): number {
  const { p, q, groups } = s;
  const w = weights ?? new Float64Array(groups).fill(1);
  let n = 0;
  const sx = new Float64Array(p),
    sy = new Float64Array(q);
  const xx = new Float64Array(p * p),
    yy = new Float64Array(q * q),
    xy = new Float64Array(p * q);
  const acc = (dst: Float64Array, src: Float64Array, g: number, wg: number) => {
    const size = dst.length,
      o = g * size;
    for (let k = 0; k < size; k++) dst[k] += wg * src[o + k];
  };
  for (let g = 0; g < groups; g++) {
    const wg = w[g];
    if (!wg) continue;
    n += wg * s.count[g];
    acc(sx, s.sumX, g, wg);
    acc(sy, s.sumY, g, wg);
    acc(xx, s.xx, g, wg);
    acc(yy, s.yy, g, wg);
    acc(xy, s.xy, g, wg);
  }
  if (n < 2) return NaN;
  // centred cross products: Xc'Yc = X'Y - sx sy' / n
  let hxy = 0,
    hxx = 0,
    hyy = 0;
  for (let i = 0; i < p; i++) for (let j = 0; j < q; j++) hxy += (xy[i * q + j] - (sx[i] * sy[j]) / n) ** 2;
  for (let i = 0; i < p; i++) for (let j = 0; j < p; j++) hxx += (xx[i * p + j] - (sx[i] * sx[j]) / n) ** 2;
  for (let i = 0; i < q; i++) for (let j = 0; j < q; j++) hyy += (yy[i * q + j] - (sy[i] * sy[j]) / n) ** 2;
  const den = Math.sqrt(hxx) * Math.sqrt(hyy);
  return den > 0 ? hxy / den : NaN;
}

/** Linear CKA of X [n, p] and Y [n, q] (same rows): 1 for identical representations up to rotation and scale. */
export function linearCka(X: ArrayLike<number>, Y: ArrayLike<number>, p: number, q: number): number {
  return ckaFromStats(ckaStats(X, Y, p, q));
}

/** Bootstrap resample weights over `groups` (how often each group is drawn). */
export function resampleWeights(groups: number, rng: Rng): Float64Array {
  const w = new Float64Array(groups);
  for (let i = 0; i < groups; i++) w[rng.int(0, groups)]++;
  return w;
}

// ---------------------------------------------------------------------------------------------
// Set overlap

/** Indicators over the union of a and b: 1 where an element is in both (their mean is the Jaccard index). */
export function unionIndicators(a: readonly number[], b: readonly number[]): Float64Array {
  const A = new Set(a),
    B = new Set(b);
  const union = new Set([...A, ...B]);
  return Float64Array.from([...union], (x) => (A.has(x) && B.has(x) ? 1 : 0));
}

export interface OverlapNull {
  mean: number;
  interval: [number, number] /** Monte-Carlo p: random overlap >= observed */;
  p: number;
}

/**
 * The Jaccard index of random sets of sizes |a| and |b| drawn from [0, universe): its mean, 95%
 * range and the one-sided Monte-Carlo p-value of the observed overlap (+1 correction).
 */
export function randomJaccard(sizeA: number, sizeB: number, universe: number, observed: number, draws: number, rng: Rng): OverlapNull {
  if (sizeA > universe || sizeB > universe)
    throw new Error(`randomJaccard: sets of ${sizeA} and ${sizeB} do not fit in ${universe} elements`);
  const vals = new Float64Array(draws);
  let atLeast = 0;
  for (let k = 0; k < draws; k++) {
    vals[k] = jaccard(rng.sample(universe, sizeA), rng.sample(universe, sizeB));
    if (vals[k] >= observed - 1e-12) atLeast++;
  }
  const sortedVals = vals.slice().sort();
  return {
    mean: vals.reduce((s, v) => s + v, 0) / draws,
    interval: [quantile(sortedVals, 0.025, true), quantile(sortedVals, 0.975, true)],
    p: (atLeast + 1) / (draws + 1),
  };
}

const logChoose = (n: number, k: number) => logGamma(n + 1) - logGamma(k + 1) - logGamma(n - k + 1);

/**
 * The same null as `randomJaccard`, exactly: for uniformly random sets of sizes a and b in
 * [0, universe), the intersection size is hypergeometric, P(i) = C(a, i) C(U - a, b - i) / C(U, b),
 * and the Jaccard index i / (a + b - i) grows with i. Mean, 95% range (discrete quantiles) and the
 * one-sided p = P(J >= observed), with no Monte-Carlo floor: a run-wide correction over ~100 claims
 * needs p-values far below what affordable draws reach.
 */
export function exactJaccardNull(sizeA: number, sizeB: number, universe: number, observed: number): OverlapNull {
  for (const [what, v] of [
    ['sizeA', sizeA],
    ['sizeB', sizeB],
    ['universe', universe],
  ] as const)
    if (!(Number.isInteger(v) && v >= 0)) throw new Error(`exactJaccardNull: ${what} must be a non-negative integer, got ${v}`);
  if (sizeA > universe || sizeB > universe)
    throw new Error(`exactJaccardNull: sets of ${sizeA} and ${sizeB} do not fit in ${universe} elements`);
  const lo = Math.max(0, sizeA + sizeB - universe),
    hi = Math.min(sizeA, sizeB);
  const logTotal = logChoose(universe, sizeB);
  const js: number[] = [],
    ps: number[] = [];
  for (let i = lo; i <= hi; i++) {
    const union = sizeA + sizeB - i;
    js.push(union === 0 ? 1 : i / union);
    ps.push(Math.exp(logChoose(sizeA, i) + logChoose(universe - sizeA, sizeB - i) - logTotal));
  }
  // the terms sum to 1 up to rounding; normalise so p and the quantiles are exact probabilities
  const z = ps.reduce((a, b) => a + b, 0);
  let mean = 0,
    p = 0;
  js.forEach((j, k) => {
    mean += (j * ps[k]) / z;
    if (j >= observed - 1e-12) p += ps[k] / z;
  });
  const q = (level: number) => {
    let c = 0;
    for (let k = 0; k < js.length; k++) {
      c += ps[k] / z;
      if (c >= level - 1e-12) return js[k];
    }
    return js[js.length - 1];
  };
  return { mean, interval: [q(0.025), q(0.975)], p: Math.min(1, Math.max(p, Number.MIN_VALUE)) };
}

// ---------------------------------------------------------------------------------------------
// Latents matched by what they do: activation correlation on the same inputs
//
// Two independently trained models share no basis, so decoder directions (or channel indices) of
// one say nothing about the other's: a feature both learned sits at unrelated coordinates. What
// they share is behaviour on the same inputs, so a latent of A is matched to the latent of B whose
// activations correlate best with its own over the same tokens (Wang et al. 2024, "Towards
// Universality", report the mean max correlation; Bricken et al. 2023 the same across seeds).

/** Per-latent mean and population sd of z [rows, latents], and each row's nonzero latents (SAE codes are sparse). */
export interface SparseCodes {
  rows: number;
  latents: number;
  mean: Float64Array;
  sd: Float64Array;
  /** per row: start of its entries in idx/val */
  start: Int32Array;
  idx: Int32Array;
  val: Float64Array;
}

/** SAE codes z [rows, latents] in the sparse form activationCorrelations works on (build once, correlate many times). */
export function sparseCodes(z: ArrayLike<number>, latents: number, who = 'sparseCodes'): SparseCodes {
  const rows = z.length / latents;
  if (!Number.isInteger(rows)) throw new Error(`${who}: ${z.length} values are not rows of ${latents} latents`);
  const mean = new Float64Array(latents),
    sq = new Float64Array(latents);
  const start = new Int32Array(rows + 1);
  const idx: number[] = [],
    val: number[] = [];
  for (let r = 0; r < rows; r++) {
    start[r] = idx.length;
    for (let j = 0; j < latents; j++) {
      const v = z[r * latents + j];
      if (!Number.isFinite(v)) throw new Error(`${who}: row ${r}, latent ${j} is ${v}`);
      if (v === 0) continue;
      idx.push(j);
      val.push(v);
      mean[j] += v;
      sq[j] += v * v;
    }
  }
  start[rows] = idx.length;
  const sd = new Float64Array(latents);
  for (let j = 0; j < latents; j++) {
    mean[j] /= rows;
    sd[j] = Math.sqrt(Math.max(0, sq[j] / rows - mean[j] ** 2));
  }
  return { rows, latents, mean, sd, start, idx: Int32Array.from(idx), val: Float64Array.from(val) };
}

/**
 * Pearson correlation [la][lb] of every latent of a [rows, la] with every latent of b [rows, lb]
 * over the same rows; rowOfB[r] is the row of b paired with row r of a (a null re-pairing; default
 * the identity). Cross products run over the nonzero entries only (O(rows * l0a * l0b)); a latent
 * that never varies (dead) correlates 0 with everything, so it is never "shared".
 */
export function activationCorrelations(
  a: ArrayLike<number> | SparseCodes,
  b: ArrayLike<number> | SparseCodes,
  la: number,
  lb: number,
  rowOfB?: ArrayLike<number>,
): Float64Array[] {
  const codes = (z: ArrayLike<number> | SparseCodes, l: number, who: string) => {
    if (!('start' in z)) return sparseCodes(z, l, who);
    if (z.latents !== l) throw new Error(`${who}: codes of ${z.latents} latents, ${l} expected`);
    return z;
  };
  const A = codes(a, la, 'activationCorrelations (a)'),
    B = codes(b, lb, 'activationCorrelations (b)');
  if (A.rows !== B.rows) throw new Error(`activationCorrelations: ${A.rows} rows of a, ${B.rows} of b; they must be the same inputs`);
  if (rowOfB && rowOfB.length !== A.rows) throw new Error(`activationCorrelations: rowOfB has ${rowOfB.length} rows for ${A.rows}`);
  const n = A.rows;
  const cross = Array.from({ length: la }, () => new Float64Array(lb));
  for (let r = 0; r < n; r++) {
    const rb = rowOfB ? rowOfB[r] : r;
    for (let p = A.start[r]; p < A.start[r + 1]; p++) {
      const row = cross[A.idx[p]],
        va = A.val[p];
      for (let q = B.start[rb]; q < B.start[rb + 1]; q++) row[B.idx[q]] += va * B.val[q];
    }
  }
  // relative tolerance: a constant latent's sd is rounding noise, not variation
  const alive = (c: SparseCodes, j: number) => c.sd[j] > 1e-9 * (Math.abs(c.mean[j]) + 1e-300);
  const aliveB = Uint8Array.from({ length: lb }, (_, j) => (alive(B, j) ? 1 : 0));
  for (let i = 0; i < la; i++) {
    const row = cross[i];
    if (!alive(A, i)) {
      row.fill(0);
      continue;
    }
    const ma = n * A.mean[i],
      sa = n * A.sd[i];
    for (let j = 0; j < lb; j++) row[j] = aliveB[j] ? Math.max(-1, Math.min(1, (row[j] - ma * B.mean[j]) / (sa * B.sd[j]))) : 0;
  }
  return cross;
}

export interface CorrelationMatch {
  /** per latent of A: its largest correlation with any latent of B */
  maxCorrA: Float64Array;
  /** per latent of B: its largest correlation with any latent of A */
  maxCorrB: Float64Array;
  /** mean of the two directions' max correlations (symmetric in A and B) */
  meanMax: number;
  /** one-to-one (Hungarian) matching on correlation: A's partner in B (-1 left over) and its correlation */
  partner: number[];
  matched: Float64Array;
}

/** Max-correlation and one-to-one matching of latents from their correlation matrix [la][lb]. */
export function matchByCorrelation(corr: Float64Array[], o: { oneToOne?: boolean } = {}): CorrelationMatch {
  const la = corr.length,
    lb = la ? corr[0].length : 0;
  const maxCorrA = Float64Array.from(corr, (row) => row.reduce((m, v) => Math.max(m, v), -1));
  const maxCorrB = new Float64Array(lb).fill(-1);
  for (const row of corr) for (let j = 0; j < lb; j++) maxCorrB[j] = Math.max(maxCorrB[j], row[j]);
  const meanMax = (maxCorrA.reduce((s, v) => s + v, 0) / la + maxCorrB.reduce((s, v) => s + v, 0) / lb) / 2;
  let partner: number[] = [];
  let matched = new Float64Array(0);
  if (o.oneToOne ?? true) {
    // matchDictionaries' assignment, on correlation instead of decoder cosine
    partner = new Array<number>(la).fill(-1);
    if (la <= lb) hungarian(corr.map((r) => r.map((c) => -c))).forEach((j, i) => (partner[i] = j));
    else hungarian(Array.from({ length: lb }, (_, k) => Float64Array.from(corr, (r) => -r[k]))).forEach((i, k) => (partner[i] = k));
    matched = Float64Array.from(partner, (j, i) => (j >= 0 ? corr[i][j] : -1));
  }
  return { maxCorrA, maxCorrB, meanMax, partner, matched };
}

/**
 * A null pairing of rows for activationCorrelations: within each sequence of length T, B's tokens
 * are shifted circularly by a random offset in [1, T) (one per sequence). Each latent keeps its
 * autocorrelation and its rate in each sequence, which a full shuffle would destroy (and so make
 * chance correlations of slow latents look significant), while the token-by-token alignment of
 * the two models is broken.
 */
export function circularShiftRows(sequences: number, T: number, rng: Rng): Int32Array {
  if (T < 2) throw new Error(`circularShiftRows: sequences of length ${T} cannot be shifted`);
  const out = new Int32Array(sequences * T);
  for (let s = 0; s < sequences; s++) {
    const off = rng.int(1, T);
    for (let t = 0; t < T; t++) out[s * T + t] = s * T + ((t + off) % T);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// SVCCA (Raghu et al. 2017)

export interface Svcca {
  /** mean canonical correlation over the min(kx, ky) pairs */
  mean: number;
  /** canonical correlations, descending */
  correlations: number[];
  /** directions kept on each side (the fewest explaining `kept` of the variance) */
  kx: number;
  ky: number;
}

/** The top directions of a covariance explaining `kept` of its variance, as whitening columns W [dim, k] (X W has identity covariance). */
function whitenTop(cov: Float64Array, dim: number, kept: number): number[][] {
  const { values, vectors } = symmetricEigen(cov);
  const total = values.reduce((s, v) => s + Math.max(v, 0), 0);
  const cols: number[][] = [];
  let acc = 0;
  for (let k = 0; k < dim && values[k] > 1e-12 * total; k++) {
    cols.push(vectors[k].map((x) => x / Math.sqrt(values[k])));
    acc += values[k];
    if (acc >= kept * total * (1 - 1e-12)) break;
  }
  return cols;
}

/**
 * SVCCA from the sums of ckaStats (so it shares CKA's pass over the rows): each side reduced by
 * SVD (here the eigenvectors of its covariance) to the fewest top directions explaining `kept` of
 * its variance, then CCA between the reduced sides. On whitened PCA coordinates CCA is an SVD: the
 * canonical correlations are the singular values of Wx' Cxy Wy. Invariant to rotations and
 * isotropic scaling of either side; to any invertible linear map when nothing is cut (e.g. data of
 * exact rank k), since CCA itself is.
 */
export function svccaFromStats(s: CkaStats, o: { kept?: number; weights?: ArrayLike<number> } = {}): Svcca {
  const { p, q, groups } = s;
  const kept = o.kept ?? 0.99;
  const w = o.weights ?? new Float64Array(groups).fill(1);
  let n = 0;
  const sx = new Float64Array(p),
    sy = new Float64Array(q),
    xx = new Float64Array(p * p),
    yy = new Float64Array(q * q),
    xy = new Float64Array(p * q);
  for (let g = 0; g < groups; g++) {
    const wg = w[g];
    if (!wg) continue;
    n += wg * s.count[g];
    for (let k = 0; k < p; k++) sx[k] += wg * s.sumX[g * p + k];
    for (let k = 0; k < q; k++) sy[k] += wg * s.sumY[g * q + k];
    for (let k = 0; k < p * p; k++) xx[k] += wg * s.xx[g * p * p + k];
    for (let k = 0; k < q * q; k++) yy[k] += wg * s.yy[g * q * q + k];
    for (let k = 0; k < p * q; k++) xy[k] += wg * s.xy[g * p * q + k];
  }
  if (n < 2) return { mean: NaN, correlations: [], kx: 0, ky: 0 };
  for (let i = 0; i < p; i++) for (let j = 0; j < p; j++) xx[i * p + j] = (xx[i * p + j] - (sx[i] * sx[j]) / n) / n;
  for (let i = 0; i < q; i++) for (let j = 0; j < q; j++) yy[i * q + j] = (yy[i * q + j] - (sy[i] * sy[j]) / n) / n;
  for (let i = 0; i < p; i++) for (let j = 0; j < q; j++) xy[i * q + j] = (xy[i * q + j] - (sx[i] * sy[j]) / n) / n;
  // symmetrise against rounding so the eigen solver's check passes
  for (const [m, d] of [
    [xx, p],
    [yy, q],
  ] as const)
    for (let i = 0; i < d; i++) for (let j = 0; j < i; j++) m[i * d + j] = m[j * d + i] = (m[i * d + j] + m[j * d + i]) / 2;
  const wx = whitenTop(xx, p, kept),
    wy = whitenTop(yy, q, kept);
  const kx = wx.length,
    ky = wy.length;
  if (!kx || !ky) return { mean: NaN, correlations: [], kx, ky };
  // M = Wx' Cxy Wy [kx, ky]
  const cw = wy.map((col) => Float64Array.from({ length: p }, (_, i) => col.reduce((t, c, j) => t + xy[i * q + j] * c, 0)));
  const M = wx.map((cx) => cw.map((c) => cx.reduce((t, v, i) => t + v * c[i], 0)));
  // singular values of M: square roots of the eigenvalues of the smaller Gram matrix
  const small = kx <= ky;
  const k = Math.min(kx, ky);
  const gram = Array.from({ length: k }, (_, i) =>
    Array.from({ length: k }, (_, j) =>
      small ? M[i].reduce((t, v, c) => t + v * M[j][c], 0) : M.reduce((t, row) => t + row[i] * row[j], 0),
    ),
  );
  for (let i = 0; i < k; i++) for (let j = 0; j < i; j++) gram[i][j] = gram[j][i] = (gram[i][j] + gram[j][i]) / 2;
  const correlations = symmetricEigen(gram).values.map((v) => Math.min(1, Math.sqrt(Math.max(0, v))));
  return { mean: correlations.reduce((t, v) => t + v, 0) / k, correlations, kx, ky };
}

/** SVCCA of X [n, p] and Y [n, q] on the same rows (see svccaFromStats). */
export function svcca(X: ArrayLike<number>, Y: ArrayLike<number>, p: number, q: number, kept = 0.99): Svcca {
  return svccaFromStats(ckaStats(X, Y, p, q), { kept });
}

// ---------------------------------------------------------------------------------------------
// Seed pairs as the unit

export interface PairValue {
  seedA: number;
  seedB: number;
  value: number;
}

/**
 * The mean of a statistic over every pair of seeds and a t interval that treats the seed, not the
 * pair, as the unit. The pairs of n seeds share seeds (3 seeds give 3 pairs, each two of which share
 * one), so a t interval over pairs as if independent is too narrow. The mean over pairs is a
 * U-statistic of the seeds; its jackknife over seeds (leave one seed out: drop every pair with it)
 * estimates its variance, var = (n-1)/n sum_i (theta_(i) - theta_(.))^2, with Student's t on n-1
 * degrees of freedom. Needs 3 seeds (with 2 only one pair remains and nothing is left out).
 */
export function seedPairInterval(pairs: readonly PairValue[], level = 0.95): { mean: number; interval: [number, number]; seeds: number } {
  if (!pairs.length) throw new Error('seedPairInterval: no pairs');
  const seeds = [...new Set(pairs.flatMap((x) => [x.seedA, x.seedB]))];
  const n = seeds.length;
  const m = pairs.reduce((t, x) => t + x.value, 0) / pairs.length;
  for (const [i, x] of pairs.entries()) if (!Number.isFinite(x.value)) throw new Error(`seedPairInterval: pair ${i} is ${x.value}`);
  if (n < 3) return { mean: m, interval: [NaN, NaN], seeds: n };
  const loo = seeds.map((s) => {
    const rest = pairs.filter((x) => x.seedA !== s && x.seedB !== s);
    if (!rest.length) throw new Error(`seedPairInterval: leaving out seed ${s} leaves no pair (every pair has it)`);
    return rest.reduce((t, x) => t + x.value, 0) / rest.length;
  });
  const lm = loo.reduce((t, v) => t + v, 0) / n;
  const se = Math.sqrt(((n - 1) / n) * loo.reduce((t, v) => t + (v - lm) ** 2, 0));
  const half = studentTQuantile(1 - (1 - level) / 2, n - 1) * se;
  return { mean: m, interval: [m - half, m + half], seeds: n };
}

/**
 * Channels of model A located in model B by function: each channel's partner is the channel of B
 * whose activations correlate most strongly with it, in either sign (a channel's sign is as
 * arbitrary as its index), from their correlation matrix [channels of A][channels of B]. Returns
 * the distinct partners, ascending (two channels of A may share one).
 */
export function locateChannels(corr: Float64Array[], channels: readonly number[]): number[] {
  const out = new Set<number>();
  for (const c of channels) {
    const row = corr[c];
    if (!row) throw new Error(`locateChannels: channel ${c} is not a row of the ${corr.length}-channel correlation matrix`);
    let best = 0;
    for (let j = 1; j < row.length; j++) if (Math.abs(row[j]) > Math.abs(row[best])) best = j;
    out.add(best);
  }
  return [...out].sort((x, y) => x - y);
}

/**
 * Channels of model A located in model B one-to-one: the distinct partners in B (one per channel,
 * in the order given) that maximise the summed |correlation| (Hungarian on -|corr|; a channel's
 * sign is as arbitrary as its index). Unlike locateChannels the located set keeps the circuit's
 * size, so a patch of it is compared with sets of the same size.
 */
export function locateOneToOne(corr: Float64Array[], channels: readonly number[]): number[] {
  const cols = corr[0]?.length ?? 0;
  if (channels.length > cols) throw new Error(`locateOneToOne: ${channels.length} channels cannot have distinct partners among ${cols}`);
  const best = channels.map((c) => {
    const row = corr[c];
    if (!row) throw new Error(`locateOneToOne: channel ${c} is not a row of the ${corr.length}-channel correlation matrix`);
    let j = 0;
    for (let k = 1; k < row.length; k++) if (Math.abs(row[k]) > Math.abs(row[j])) j = k;
    return j;
  });
  // every channel's own best partner, all distinct: no assignment can beat that sum (and step 10
  // locates thousands of control sets, where the assignment would dominate its time)
  if (new Set(best).size === best.length) return best;
  return hungarian(
    channels.map((c) => {
      const row = corr[c],
        out = new Float64Array(row.length);
      for (let j = 0; j < row.length; j++) out[j] = -Math.abs(row[j]);
      return out;
    }),
  );
}
