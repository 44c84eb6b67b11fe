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
import type { Rng } from '../engine/random.ts';
import { jaccard } from './attribution.ts';
import { logGamma, quantile } from './stats.ts';

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
  // 1-based arrays as in the classic formulation; column 0 is a virtual start.
  const u = new Float64Array(n + 1),
    v = new Float64Array(m + 1);
  const rowOfCol = new Int32Array(m + 1); // 0 = free
  const way = new Int32Array(m + 1);
  for (let i = 1; i <= n; i++) {
    rowOfCol[0] = i;
    let j0 = 0;
    const minv = new Float64Array(m + 1).fill(Infinity);
    const used = new Uint8Array(m + 1);
    do {
      used[j0] = 1;
      const i0 = rowOfCol[j0];
      let delta = Infinity,
        j1 = 0;
      for (let j = 1; j <= m; j++) {
        if (used[j]) continue;
        const cur = cost[i0 - 1][j - 1] - u[i0] - v[j];
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
