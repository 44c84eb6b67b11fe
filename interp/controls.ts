// Controls that can fail. A circuit's effect means little next to random coordinates that are
// near-silent (most of hook_h): zeroing or patching a coordinate that never moves does nothing, so
// such a control is easy to beat. Controls here are drawn to look like the circuit:
//   channels     stratified by activation-variance quantile: the coordinates of the hook are sorted
//                by their variance over the covered cells and split into `strata` groups of equal
//                count; a control takes as many coordinates from each group as the circuit has
//                there (never the circuit's own; when a group has run out, from the nearest group
//                that has not), so its per-coordinate variance profile follows the circuit's
//   directions   (subspace circuits) Gaussian vectors with the activation's covariance, made
//                orthonormal: directions along which the activations actually vary
// and the primary test asks whether the circuit is special among such sets: the empirical rank
// p-value (1 + #{controls with effect >= circuit's}) / (1 + n) over n control sets, whose floor is
// 1/(n+1), with a hierarchical bootstrap (sequences, then control sets) for the interval of the
// circuit-minus-control difference.
import type { Rng } from '../engine/random.ts';
import type { Tensor } from '../engine/index.ts';
import { symmetricEigen } from './linalg.ts';
import type { Comparison } from './patching.ts';
import { orthonormalize, randomOrthonormal, type Site } from './sites.ts';
import { mean, quantile } from './stats.ts';

/** The covered cells of an activation [batch,T,...] as rows of `dim` values (a copy, float64). */
async function coveredRows(act: Tensor, mask: Uint8Array): Promise<{ rows: Float64Array; n: number; dim: number }> {
  const data = await act.data();
  if (act.size % mask.length) throw new Error(`coveredRows: activation of ${act.size} values does not split into ${mask.length} cells`);
  const dim = act.size / mask.length;
  let n = 0;
  for (const m of mask) n += m ? 1 : 0;
  if (n < 2) throw new Error(`coveredRows: the mask covers ${n} cells; a variance needs at least 2`);
  const rows = new Float64Array(n * dim);
  let r = 0;
  for (let c = 0; c < mask.length; c++) if (mask[c]) rows.set(data.subarray(c * dim, (c + 1) * dim), dim * r++);
  return { rows, n, dim };
}

/** Per coordinate, the variance (population) of an activation [batch,T,...] over the cells of a mask. */
export async function coordinateVariance(act: Tensor, mask: Uint8Array): Promise<Float64Array> {
  const { rows, n, dim } = await coveredRows(act, mask);
  const s1 = new Float64Array(dim),
    s2 = new Float64Array(dim);
  for (let r = 0; r < n; r++)
    for (let j = 0; j < dim; j++) {
      const v = rows[r * dim + j];
      s1[j] += v;
      s2[j] += v * v;
    }
  return s1.map((s, j) => Math.max(s2[j] / n - (s / n) ** 2, 0));
}

/** What matched controls are drawn from: the per-coordinate variance, and for subspaces the covariance's square root. */
export interface ActivationProfile {
  variance: Float64Array;
  /** rows sqrt(lambda_i) q_i of the covariance's eigendecomposition (q_i^T S q_i = lambda_i): g^T covRoot ~ N(0, S) */
  covRoot?: number[][];
}

/** The variance profile of a hook at a mask's cells; with `covariance` also the covariance root (dim^2 memory: residual-width hooks only). */
export async function activationProfile(act: Tensor, mask: Uint8Array, covariance = false): Promise<ActivationProfile> {
  const variance = await coordinateVariance(act, mask);
  if (!covariance) return { variance };
  const { rows, n, dim } = await coveredRows(act, mask);
  const mu = new Float64Array(dim);
  for (let r = 0; r < n; r++) for (let j = 0; j < dim; j++) mu[j] += rows[r * dim + j] / n;
  const cov = Array.from({ length: dim }, () => new Array<number>(dim).fill(0));
  for (let r = 0; r < n; r++)
    for (let i = 0; i < dim; i++) {
      const a = rows[r * dim + i] - mu[i];
      for (let j = i; j < dim; j++) cov[i][j] += (a * (rows[r * dim + j] - mu[j])) / n;
    }
  for (let i = 0; i < dim; i++) for (let j = 0; j < i; j++) cov[i][j] = cov[j][i];
  const { values, vectors } = symmetricEigen(cov);
  return { variance, covRoot: vectors.map((q, i) => q.map((x) => x * Math.sqrt(Math.max(values[i], 0)))) };
}

/** The variance stratum of every coordinate: sorted by variance (ties by index), `strata` groups of (nearly) equal count, 0 = lowest. */
export function varianceStrata(variance: ArrayLike<number>, strata: number): Int32Array {
  const dim = variance.length;
  if (!Number.isInteger(strata) || strata < 1) throw new Error(`varianceStrata: strata must be a positive integer, got ${strata}`);
  const order = Array.from({ length: dim }, (_, i) => i).sort((a, b) => variance[a] - variance[b] || a - b);
  const out = new Int32Array(dim);
  const s = Math.min(strata, dim);
  order.forEach((c, rank) => {
    out[c] = Math.floor((rank * s) / dim);
  });
  return out;
}

/**
 * A control of the circuit's size: per circuit coordinate one coordinate of the same variance
 * stratum, not the circuit's and not already taken; when its stratum has none left, one of the
 * nearest stratum that has (ties broken at random). Only when fewer than k coordinates lie outside
 * the circuit does the control reuse circuit coordinates. Sorted.
 */
export function matchedChannels(circuit: readonly number[], variance: ArrayLike<number>, strata: number, rng: Rng): number[] {
  const dim = variance.length;
  for (const c of circuit)
    if (!Number.isInteger(c) || c < 0 || c >= dim) throw new Error(`matchedChannels: channel ${c} is outside [0, ${dim})`);
  if (new Set(circuit).size !== circuit.length) throw new Error('matchedChannels: the circuit repeats a channel');
  const stratum = varianceStrata(variance, strata);
  const S = Math.min(strata, dim);
  const inCircuit = new Set(circuit);
  const free: number[][] = Array.from({ length: S }, () => []);
  for (let c = 0; c < dim; c++) if (!inCircuit.has(c)) free[stratum[c]].push(c);
  const reuse: number[][] = Array.from({ length: S }, () => []);
  if (dim - circuit.length < circuit.length) for (const c of circuit) reuse[stratum[c]].push(c);
  const take = (pools: number[][], s: number): number | null => {
    for (let d = 0; d < S; d++) {
      const cand = [s - d, s + d].filter((x, i) => x >= 0 && x < S && pools[x].length && (i === 0 || d > 0));
      if (!cand.length) continue;
      const pool = pools[cand.length === 1 ? cand[0] : cand[rng.int(0, 2)]];
      return pool.splice(rng.int(0, pool.length), 1)[0];
    }
    return null;
  };
  const out: number[] = [];
  for (const c of circuit) {
    const got = take(free, stratum[c]) ?? take(reuse, stratum[c]);
    if (got === null) throw new Error('matchedChannels: ran out of coordinates');
    out.push(got);
  }
  return out.sort((a, b) => a - b);
}

/** k orthonormal directions drawn from N(0, S) (the profile's covariance) and made orthonormal; isotropic where S has rank < k. */
export function covarianceDirections(k: number, profile: ActivationProfile, rng: Rng): number[][] {
  const root = profile.covRoot;
  if (!root) throw new Error('covarianceDirections: the profile has no covariance (activationProfile(..., true))');
  const dim = root.length;
  if (k > dim) throw new Error(`covarianceDirections: ${k} directions do not fit in ${dim} dimensions`);
  let rows: number[][] = [];
  for (let tries = 0; rows.length < k && tries < 20 * k; tries++) {
    const v = new Array<number>(dim).fill(0);
    for (const r of root) {
      const g = rng.normal();
      for (let j = 0; j < dim; j++) v[j] += g * r[j];
    }
    rows = orthonormalize([...rows, v]);
  }
  // a covariance of rank < k: the rest isotropic in the orthogonal complement
  while (rows.length < k) rows = orthonormalize([...rows, ...randomOrthonormal(1, dim, rng)]);
  return rows;
}

/** `count` matched controls of a site (channels by variance stratum, directions from the covariance). */
export function matchedControls(site: Site, profile: ActivationProfile, count: number, strata: number, rng: Rng): Site[] {
  if (!Number.isInteger(count) || count < 1) throw new Error(`matchedControls: count must be a positive integer, got ${count}`);
  return Array.from({ length: count }, (_, j) => {
    const r = rng.fork(`control${j}`);
    if (site.directions?.length)
      return { hook: site.hook, channels: [], directions: covarianceDirections(site.directions.length, profile, r) };
    return { hook: site.hook, channels: matchedChannels(site.channels, profile.variance, strata, r) };
  });
}

/** The empirical rank p-value (1 + #{controls >= effect}) / (1 + n): is the circuit special among the controls (one-sided, larger)? */
export function rankPValue(effect: number, controls: ArrayLike<number>): number {
  if (!controls.length) throw new Error('rankPValue: no controls');
  if (!Number.isFinite(effect)) throw new Error(`rankPValue: the circuit's effect is ${effect}`);
  let ge = 0;
  for (let i = 0; i < controls.length; i++) {
    if (!Number.isFinite(controls[i])) throw new Error(`rankPValue: control ${i} has effect ${controls[i]}`);
    if (controls[i] >= effect) ge++;
  }
  return (1 + ge) / (1 + controls.length);
}

/** The control distribution's quantile levels reported beside the circuit's effect. */
export const CONTROL_QUANTILES = [0.05, 0.25, 0.5, 0.75, 0.95];

/**
 * The circuit against a distribution of controls. `estimate`, `interval`: the circuit's effect
 * with a bootstrap over sequences; `control`: the mean effect over control sets and
 * `controlInterval` the 2.5-97.5% quantiles of their effects (the spread among sets, not an
 * interval of the mean); `difference`, `differenceInterval`: circuit minus mean control with the
 * hierarchical bootstrap; `p`: the rank p-value.
 */
export interface ControlTest extends Comparison {
  /** each control set's effect (same order as the controls) */
  controls: number[];
  /** the control distribution at CONTROL_QUANTILES */
  controlQuantiles: number[];
  /** the smallest p the rank test can give, 1/(n+1) */
  pFloor: number;
  /** (circuit - mean control) / sd of the controls: how far out the circuit sits (null when the controls do not vary) */
  z: number | null;
}

/**
 * Per-example effects of the circuit [examples] and of each control [controls][examples]; with
 * `ratioTo` (per-example denominators) every effect is a ratio of means (fraction restored).
 * Hierarchical bootstrap: each replicate resamples the sequences, then the control sets, both
 * with replacement, and recomputes circuit minus mean control; percentile intervals.
 */
export function controlTest(
  circuit: ArrayLike<number>,
  controls: readonly ArrayLike<number>[],
  rng: Rng,
  o: { bootstrap: number; ratioTo?: ArrayLike<number>; level?: number },
): ControlTest {
  const nEx = circuit.length,
    nC = controls.length;
  if (!nC) throw new Error('controlTest: no controls');
  if (nEx < 2) throw new Error(`controlTest: ${nEx} examples; the bootstrap needs at least 2`);
  for (const [j, c] of controls.entries())
    if (c.length !== nEx) throw new Error(`controlTest: control ${j} has ${c.length} examples, the circuit ${nEx}`);
  if (o.ratioTo && o.ratioTo.length !== nEx) throw new Error(`controlTest: ratioTo has ${o.ratioTo.length} examples, the circuit ${nEx}`);
  if (!Number.isInteger(o.bootstrap) || o.bootstrap < 1)
    throw new Error(`controlTest: bootstrap must be a positive integer, got ${o.bootstrap}`);
  const den = o.ratioTo ?? null;
  const effectOn = (x: ArrayLike<number>, idx: Int32Array | null): number => {
    let s = 0,
      d = 0;
    const n = idx ? idx.length : nEx;
    for (let i = 0; i < n; i++) {
      const e = idx ? idx[i] : i;
      s += x[e];
      d += den ? den[e] : 1;
    }
    return d === 0 ? 0 : s / d;
  };
  const estimate = effectOn(circuit, null);
  const ctl = controls.map((c) => effectOn(c, null));
  const ctlMean = mean(ctl);
  const sd = Math.sqrt(ctl.reduce((s, v) => s + (v - ctlMean) ** 2, 0) / Math.max(nC - 1, 1));
  const level = o.level ?? 0.95;
  const circB = new Float64Array(o.bootstrap),
    diffB = new Float64Array(o.bootstrap);
  const idx = new Int32Array(nEx);
  for (let b = 0; b < o.bootstrap; b++) {
    for (let i = 0; i < nEx; i++) idx[i] = rng.int(0, nEx);
    const c = effectOn(circuit, idx);
    let k = 0;
    for (let j = 0; j < nC; j++) k += effectOn(controls[rng.int(0, nC)], idx);
    circB[b] = c;
    diffB[b] = c - k / nC;
  }
  const lo = (1 - level) / 2,
    hi = 1 - lo;
  const sortedCtl = Float64Array.from(ctl).sort();
  const circS = circB.sort(),
    diffS = diffB.sort();
  return {
    estimate,
    interval: [quantile(circS, lo, true), quantile(circS, hi, true)],
    control: ctlMean,
    controlInterval: [quantile(sortedCtl, 0.025, true), quantile(sortedCtl, 0.975, true)],
    difference: estimate - ctlMean,
    differenceInterval: [quantile(diffS, lo, true), quantile(diffS, hi, true)],
    p: rankPValue(estimate, ctl),
    controls: ctl,
    controlQuantiles: CONTROL_QUANTILES.map((q) => quantile(sortedCtl, q, true)),
    pFloor: 1 / (nC + 1),
    z: sd > 0 ? (estimate - ctlMean) / sd : null,
  };
}

/**
 * What a claim resting on a control test records for the run-wide policy: the raw rank p-value,
 * its floor, and the effect condition with whether it holds (the hierarchical-bootstrap interval of
 * circuit minus control lies above 0).
 */
export function controlClaimFields(t: ControlTest): { p: number; pFloor: number; effectCondition: string; effectHolds: boolean } {
  return {
    p: t.p,
    pFloor: t.pFloor,
    effectCondition: 'the 95% hierarchical-bootstrap interval of circuit minus mean control lies above 0',
    effectHolds: t.differenceInterval[0] > 0,
  };
}
