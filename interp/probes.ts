// Sparse linear probes: which few dimensions of an activation carry a variable?
//
// - Lasso / ElasticNet regression by cyclic coordinate descent (Friedman, Hastie & Tibshirani 2010,
//   "glmnet"), minimising  (1/2n) ||y - b0 - X b||^2 + lambda (alpha ||b||_1 + (1-alpha)/2 ||b||^2)
//   on standardised columns, along a path lambda_max -> lambda_max * ratio with warm starts.
// - L1 logistic regression (binary; one-vs-rest for several classes) by the same coordinate descent
//   inside iteratively reweighted least squares, minimising  -(1/n) loglik + the same penalty.
// - k-fold cross-validation with seeded folds picks lambda; held-out R2 / accuracy come from the
//   out-of-fold predictions at the chosen lambda. With `groups` (e.g. the sequence of each row) the
//   folds are dealt by group, so rows that share a group (the positions of one sequence, which share
//   its copied token, its keys and values) never sit on both sides of a split.
// Coefficients are reported in the original units of X; `selected` lists the nonzero dimensions.
import type { Rng } from '../engine/random.ts';

/** A row-major [rows, cols] matrix, e.g. `{ data: await acts.data(), rows: n, cols: d }`. */
export interface Matrix {
  data: ArrayLike<number>;
  rows: number;
  cols: number;
}

export function matrixFromRows(rows: ArrayLike<number>[]): Matrix {
  if (!rows.length) throw new Error('matrixFromRows: no rows');
  const cols = rows[0].length,
    data = new Float64Array(rows.length * cols);
  rows.forEach((r, i) => {
    if (r.length !== cols) throw new Error(`matrixFromRows: row ${i} has ${r.length} values, row 0 has ${cols}`);
    data.set(Array.from(r), i * cols);
  });
  return { data, rows: rows.length, cols };
}

function checkMatrix(what: string, X: Matrix, nY?: number): void {
  if (X.data.length !== X.rows * X.cols)
    throw new Error(`${what}: X.data has ${X.data.length} values, expected rows*cols = ${X.rows}*${X.cols}`);
  if (nY !== undefined && nY !== X.rows) throw new Error(`${what}: X has ${X.rows} rows but y has ${nY} values`);
  for (let i = 0; i < X.data.length; i++) {
    if (!Number.isFinite(X.data[i])) throw new Error(`${what}: X[${Math.floor(i / X.cols)}, ${i % X.cols}] is ${X.data[i]}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Standardised design

/** Columns centred (and scaled to unit population sd), stored column-major for coordinate descent. */
interface Design {
  n: number;
  p: number;
  cols: Float64Array[];
  means: Float64Array;
  /** Divisor applied to each centred column; 0 marks a constant column (its coefficient stays 0). */
  scales: Float64Array;
}

function makeDesign(X: Matrix, rows: ArrayLike<number> | null, standardize: boolean): Design {
  const n = rows ? rows.length : X.rows,
    p = X.cols;
  const cols: Float64Array[] = [],
    means = new Float64Array(p),
    scales = new Float64Array(p);
  for (let j = 0; j < p; j++) {
    const c = new Float64Array(n);
    for (let i = 0; i < n; i++) c[i] = X.data[(rows ? rows[i] : i) * p + j];
    let m = 0;
    for (let i = 0; i < n; i++) m += c[i];
    m /= n;
    let ss = 0;
    for (let i = 0; i < n; i++) {
      c[i] -= m;
      ss += c[i] * c[i];
    }
    const sd = Math.sqrt(ss / n);
    // Relative threshold: a column that is constant up to rounding carries no signal.
    const s = sd > 1e-12 * Math.max(1, Math.abs(m)) ? (standardize ? sd : 1) : 0;
    if (s === 0) c.fill(0);
    else if (s !== 1) for (let i = 0; i < n; i++) c[i] /= s;
    cols.push(c);
    means[j] = m;
    scales[j] = s;
  }
  return { n, p, cols, means, scales };
}

/** Standardised coefficients -> original units: coef_j = beta_j / s_j, intercept absorbs the means. */
function toOriginal(d: Design, beta: Float64Array, b0: number): { coef: Float64Array; intercept: number } {
  const coef = new Float64Array(d.p);
  let intercept = b0;
  for (let j = 0; j < d.p; j++) {
    if (d.scales[j] === 0 || beta[j] === 0) continue;
    coef[j] = beta[j] / d.scales[j];
    intercept -= coef[j] * d.means[j];
  }
  return { coef, intercept };
}

function linearPredict(X: Matrix, rows: ArrayLike<number> | null, coef: Float64Array, intercept: number): Float64Array {
  const n = rows ? rows.length : X.rows,
    p = X.cols,
    out = new Float64Array(n);
  const nz: number[] = [];
  for (let j = 0; j < p; j++) if (coef[j] !== 0) nz.push(j);
  for (let i = 0; i < n; i++) {
    const base = (rows ? rows[i] : i) * p;
    let s = intercept;
    for (const j of nz) s += coef[j] * X.data[base + j];
    out[i] = s;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Weighted coordinate descent (the shared core)

interface CDState {
  beta: Float64Array;
  b0: number;
  /** Working residual z - b0 - X beta, kept up to date as coordinates move. */
  r: Float64Array;
}

const soft = (u: number, t: number) => (u > t ? u - t : u < -t ? u + t : 0);

/**
 * Minimises (1/2n) sum_i w_i r_i^2 + lambda * penalty over beta[j], j in `candidates` (and b0 if
 * fitIntercept), in place; the other coefficients stay as they are. `xw[j]` = (1/n) sum_i w_i x_ij^2.
 * Alternates sweeps over the candidates with sweeps over the active set (the nonzero coefficients)
 * until the largest weighted squared change is below `tol`.
 */
function coordinateDescent(
  d: Design,
  w: Float64Array | null,
  xw: Float64Array,
  st: CDState,
  candidates: number[],
  lambda: number,
  alpha: number,
  fitIntercept: boolean,
  tol: number,
  maxSweeps: number,
): boolean {
  const { n, cols } = d,
    { beta, r } = st;
  const l1 = lambda * alpha,
    l2 = lambda * (1 - alpha);
  let sumW = n;
  if (w) {
    sumW = 0;
    for (let i = 0; i < n; i++) sumW += w[i];
  }
  const sweep = (idx: number[]): number => {
    let maxChange = 0;
    for (const j of idx) {
      if (xw[j] === 0) continue;
      const c = cols[j];
      let g = 0;
      if (w) for (let i = 0; i < n; i++) g += w[i] * c[i] * r[i];
      else for (let i = 0; i < n; i++) g += c[i] * r[i];
      g /= n;
      const old = beta[j];
      const next = soft(g + xw[j] * old, l1) / (xw[j] + l2);
      if (next === old) continue;
      const delta = next - old;
      beta[j] = next;
      for (let i = 0; i < n; i++) r[i] -= delta * c[i];
      maxChange = Math.max(maxChange, xw[j] * delta * delta);
    }
    if (fitIntercept) {
      let s = 0;
      if (w) for (let i = 0; i < n; i++) s += w[i] * r[i];
      else for (let i = 0; i < n; i++) s += r[i];
      const delta = s / sumW;
      if (delta !== 0) {
        st.b0 += delta;
        for (let i = 0; i < n; i++) r[i] -= delta;
        maxChange = Math.max(maxChange, (sumW / n) * delta * delta);
      }
    }
    return maxChange;
  };
  let sweeps = 0;
  while (sweeps < maxSweeps) {
    sweeps++;
    if (sweep(candidates) < tol) return true;
    const active = candidates.filter((j) => beta[j] !== 0);
    while (sweeps < maxSweeps) {
      sweeps++;
      if (sweep(active) < tol) break;
    }
  }
  return false;
}

function lambdaSequence(lambdaMax: number, nLambda: number, ratio: number): Float64Array {
  if (!(nLambda >= 1)) throw new Error(`probes: nLambda must be >= 1, got ${nLambda}`);
  if (!(ratio > 0 && ratio < 1)) throw new Error(`probes: lambdaRatio must be in (0, 1), got ${ratio}`);
  if (nLambda === 1) return Float64Array.of(lambdaMax);
  return Float64Array.from({ length: nLambda }, (_, k) => lambdaMax * ratio ** (k / (nLambda - 1)));
}

/**
 * Sequential strong rule (Tibshirani et al. 2012): moving from lambdaPrev to lambda, a coefficient
 * whose gradient |g_j| at the previous solution is below alpha (2 lambda - lambdaPrev) is very likely
 * to stay 0, so descent runs over the rest; a KKT check over all columns afterwards adds any it missed.
 */
function strongSet(d: Design, grad: Float64Array, beta: Float64Array, lambda: number, lambdaPrev: number, alpha: number): number[] {
  const cut = alpha * (2 * lambda - lambdaPrev),
    out: number[] = [];
  for (let j = 0; j < d.p; j++) if (d.scales[j] !== 0 && (beta[j] !== 0 || Math.abs(grad[j]) >= cut)) out.push(j);
  return out;
}

/** grad[j] = (1/n) x_j . v for all columns: the loss gradient when v is the (generalised) residual. */
function fullGradient(d: Design, v: Float64Array, grad: Float64Array): void {
  for (let j = 0; j < d.p; j++) {
    const c = d.cols[j];
    let g = 0;
    for (let i = 0; i < d.n; i++) g += c[i] * v[i];
    grad[j] = g / d.n;
  }
}

/** Columns outside `set` that break the KKT condition |g_j| <= lambda * alpha (so must be added). */
function kktViolations(d: Design, grad: Float64Array, set: number[], lambda: number, alpha: number): number[] {
  const inSet = new Uint8Array(d.p);
  for (const j of set) inSet[j] = 1;
  const out: number[] = [];
  for (let j = 0; j < d.p; j++) if (!inSet[j] && d.scales[j] !== 0 && Math.abs(grad[j]) > lambda * alpha * (1 + 1e-9)) out.push(j);
  return out;
}

function checkAlpha(what: string, alpha: number): void {
  if (!(alpha >= 0 && alpha <= 1)) throw new Error(`${what}: alpha must be in [0, 1] (1 = lasso), got ${alpha}`);
}

// alpha -> 0 (ridge) has no finite lambda_max; glmnet's convention floors alpha at 1e-3 for it.
const alphaForLambdaMax = (alpha: number) => Math.max(alpha, 1e-3);

// ---------------------------------------------------------------------------------------------
// Linear (Lasso / ElasticNet)

export interface PathOptions {
  /** Mixing: 1 = lasso, 0 < alpha < 1 = elastic net (default 1). */
  alpha?: number;
  /** Explicit decreasing lambdas; default: nLambda values from lambda_max down to lambda_max*lambdaRatio. */
  lambdas?: ArrayLike<number>;
  nLambda?: number;
  lambdaRatio?: number;
  /** Scale columns to unit sd before penalising (default true). Coefficients come back in original units either way. */
  standardize?: boolean;
  /** Convergence threshold on the largest weighted squared coefficient change, relative to the null deviance (default 1e-9). */
  tol?: number;
  maxSweeps?: number;
}

export interface LinearPath {
  lambdas: Float64Array;
  alpha: number;
  /** Per lambda: coefficients in original units, and the intercept. */
  coefs: Float64Array[];
  intercepts: number[];
  converged: boolean[];
}

function resolvePath(what: string, o: PathOptions) {
  const { alpha = 1, nLambda = 100, lambdaRatio = 1e-3, standardize = true, tol = 1e-9, maxSweeps = 100_000 } = o;
  checkAlpha(what, alpha);
  return { alpha, nLambda, lambdaRatio, standardize, tol, maxSweeps, lambdas: o.lambdas };
}

function centred(y: ArrayLike<number>, rows: ArrayLike<number> | null): { yc: Float64Array; mean: number } {
  const n = rows ? rows.length : y.length,
    yc = new Float64Array(n);
  let m = 0;
  for (let i = 0; i < n; i++) {
    yc[i] = y[rows ? rows[i] : i];
    m += yc[i];
  }
  m /= n;
  for (let i = 0; i < n; i++) yc[i] -= m;
  return { yc, mean: m };
}

/** max_j |(1/n) x_j . yc|: the gradient at beta = 0, which no penalty below it can hold at 0. */
function maxCorrelation(d: Design, yc: Float64Array): number {
  let best = 0;
  for (let j = 0; j < d.p; j++) {
    let g = 0;
    for (let i = 0; i < d.n; i++) g += d.cols[j][i] * yc[i];
    best = Math.max(best, Math.abs(g) / d.n);
  }
  return best;
}

function linearLambdaMax(d: Design, yc: Float64Array, alpha: number): number {
  return maxCorrelation(d, yc) / alphaForLambdaMax(alpha);
}

function fitLinearPath(
  X: Matrix,
  y: ArrayLike<number>,
  rows: ArrayLike<number> | null,
  lambdas: Float64Array,
  o: ReturnType<typeof resolvePath>,
): LinearPath {
  const d = makeDesign(X, rows, o.standardize);
  const { yc, mean: yMean } = centred(y, rows);
  let nullDev = 0;
  for (const v of yc) nullDev += v * v;
  nullDev /= d.n;
  const xw = Float64Array.from(d.cols, (c) => {
    let s = 0;
    for (const v of c) s += v * v;
    return s / d.n;
  });
  // Columns are centred, so the intercept is mean(y) and never moves during descent.
  const st: CDState = { beta: new Float64Array(d.p), b0: 0, r: yc.slice() };
  const path: LinearPath = { lambdas, alpha: o.alpha, coefs: [], intercepts: [], converged: [] };
  const grad = new Float64Array(d.p);
  fullGradient(d, st.r, grad);
  let lambdaPrev = lambdas[0];
  for (const lambda of lambdas) {
    const set = strongSet(d, grad, st.beta, lambda, Math.max(lambdaPrev, lambda), o.alpha);
    let ok = false;
    for (;;) {
      ok = coordinateDescent(d, null, xw, st, set, lambda, o.alpha, false, o.tol * Math.max(nullDev, 1e-300), o.maxSweeps);
      fullGradient(d, st.r, grad);
      const missed = kktViolations(d, grad, set, lambda, o.alpha);
      if (!missed.length) break;
      set.push(...missed);
    }
    lambdaPrev = lambda;
    const { coef, intercept } = toOriginal(d, st.beta, yMean);
    path.coefs.push(coef);
    path.intercepts.push(intercept);
    path.converged.push(ok);
  }
  return path;
}

/** Lasso / ElasticNet solutions along a decreasing lambda path (warm-started). */
export function linearPath(X: Matrix, y: ArrayLike<number>, opts: PathOptions = {}): LinearPath {
  checkMatrix('linearPath', X, y.length);
  const o = resolvePath('linearPath', opts);
  const lambdas = o.lambdas
    ? Float64Array.from(o.lambdas)
    : (() => {
        const d = makeDesign(X, null, o.standardize);
        return lambdaSequence(linearLambdaMax(d, centred(y, null).yc, o.alpha), o.nLambda, o.lambdaRatio);
      })();
  return fitLinearPath(X, y, null, lambdas, o);
}

/** Single-lambda fit (solved along the path from lambda_max for warm starts). */
export function lasso(
  X: Matrix,
  y: ArrayLike<number>,
  lambda: number,
  opts: Omit<PathOptions, 'lambdas'> = {},
): { coef: Float64Array; intercept: number; selected: number[] } {
  checkMatrix('lasso', X, y.length);
  const o = resolvePath('lasso', opts);
  const d = makeDesign(X, null, o.standardize);
  const lmax = linearLambdaMax(d, centred(y, null).yc, o.alpha);
  const steps = lambda < lmax ? Array.from(lambdaSequence(lmax, 20, Math.max(lambda / lmax, 1e-12))) : [lambda];
  steps[steps.length - 1] = lambda;
  const path = fitLinearPath(X, y, null, Float64Array.from(steps), o);
  const coef = path.coefs[path.coefs.length - 1];
  return { coef, intercept: path.intercepts[path.intercepts.length - 1], selected: nonzero(coef) };
}

export const elasticNet = (
  X: Matrix,
  y: ArrayLike<number>,
  lambda: number,
  alpha: number,
  opts: Omit<PathOptions, 'lambdas' | 'alpha'> = {},
) => lasso(X, y, lambda, { ...opts, alpha });

export function nonzero(coef: ArrayLike<number>): number[] {
  const out: number[] = [];
  for (let j = 0; j < coef.length; j++) if (coef[j] !== 0) out.push(j);
  return out;
}

export function predictLinear(probe: { coef: Float64Array; intercept: number }, X: Matrix): Float64Array {
  if (X.cols !== probe.coef.length) throw new Error(`predictLinear: X has ${X.cols} columns, probe has ${probe.coef.length} coefficients`);
  return linearPredict(X, null, probe.coef, probe.intercept);
}

export function r2Score(y: ArrayLike<number>, pred: ArrayLike<number>): number {
  if (y.length !== pred.length) throw new Error(`r2Score: y has ${y.length} values, pred has ${pred.length}`);
  let m = 0;
  for (let i = 0; i < y.length; i++) m += y[i];
  m /= y.length;
  let sse = 0,
    sst = 0;
  for (let i = 0; i < y.length; i++) {
    sse += (y[i] - pred[i]) ** 2;
    sst += (y[i] - m) ** 2;
  }
  return sst > 0 ? 1 - sse / sst : NaN;
}

// ---------------------------------------------------------------------------------------------
// Cross-validation

export interface CVOptions {
  nFolds?: number;
  /** Group of each row (e.g. its sequence): folds are dealt by group (groupKFolds), never splitting one. */
  groups?: ArrayLike<number>;
  /** 'min': lambda with the lowest CV error; '1se' (default): the largest lambda within one
   *  standard error of it, the sparser choice that usually drops noise dimensions. */
  rule?: 'min' | '1se';
}

export interface CVSummary {
  lambdas: Float64Array;
  /** Mean and standard error over folds of the held-out loss (MSE, or binomial deviance). */
  meanLoss: Float64Array;
  seLoss: Float64Array;
  lambdaMin: number;
  lambda1se: number;
  nFolds: number;
  /** Fold of each row (seeded; by group when CVOptions.groups is given). */
  folds: Int32Array;
}

/** Seeded k-fold assignment: a random permutation dealt round-robin, so fold sizes differ by at most 1. */
export function kFolds(n: number, k: number, rng: Rng): Int32Array {
  if (!(k >= 2 && k <= n)) throw new Error(`kFolds: need 2 <= k <= n, got k=${k}, n=${n}`);
  const folds = new Int32Array(n);
  rng.permutation(n).forEach((row, pos) => {
    folds[row] = pos % k;
  });
  return folds;
}

/**
 * Seeded grouped k-fold assignment: the distinct groups in a random order, each dealt whole to the
 * fold that has the fewest rows so far (ties: the lower fold), so every group sits in one fold and
 * fold sizes stay close even when groups differ in size.
 */
export function groupKFolds(groups: ArrayLike<number>, k: number, rng: Rng): Int32Array {
  const members = new Map<number, number[]>();
  for (let i = 0; i < groups.length; i++) {
    const g = groups[i];
    const m = members.get(g);
    if (m) m.push(i);
    else members.set(g, [i]);
  }
  const ids = [...members.keys()].sort((a, b) => a - b);
  if (!(k >= 2 && k <= ids.length)) throw new Error(`groupKFolds: need 2 <= k <= groups, got k=${k}, ${ids.length} groups`);
  const folds = new Int32Array(groups.length),
    size = new Array<number>(k).fill(0);
  for (const pos of rng.permutation(ids.length)) {
    const rows = members.get(ids[pos])!;
    let f = 0;
    for (let j = 1; j < k; j++) if (size[j] < size[f]) f = j;
    for (const r of rows) folds[r] = f;
    size[f] += rows.length;
  }
  return folds;
}

function foldsFor(what: string, n: number, k: number, rng: Rng, groups: ArrayLike<number> | undefined): Int32Array {
  if (!groups) return kFolds(n, k, rng);
  if (groups.length !== n) throw new Error(`${what}: groups has ${groups.length} values, X has ${n} rows`);
  return groupKFolds(groups, k, rng);
}

function splitRows(folds: Int32Array, f: number): { train: number[]; test: number[] } {
  const train: number[] = [],
    test: number[] = [];
  folds.forEach((g, i) => (g === f ? test : train).push(i));
  return { train, test };
}

/**
 * The CV choice from per-fold held-out losses ([fold][lambda], lambdas decreasing): the lambda with the
 * lowest mean loss, and the one-standard-error rule's largest lambda whose mean loss is within one
 * standard error of that minimum. The standard error is that of the mean over k folds, sd / sqrt(k)
 * (sd with k - 1): the rule asks which lambdas the CV estimate cannot tell from the best, not how
 * much a single fold varies.
 */
export function summariseCV(lambdas: Float64Array, foldLoss: Float64Array[], folds: Int32Array, rule: 'min' | '1se') {
  const k = foldLoss.length,
    L = lambdas.length;
  const meanLoss = new Float64Array(L),
    seLoss = new Float64Array(L);
  for (let l = 0; l < L; l++) {
    let m = 0;
    for (let f = 0; f < k; f++) m += foldLoss[f][l];
    m /= k;
    let v = 0;
    for (let f = 0; f < k; f++) v += (foldLoss[f][l] - m) ** 2;
    meanLoss[l] = m;
    seLoss[l] = Math.sqrt(v / (k - 1) / k);
  }
  let best = 0;
  for (let l = 1; l < L; l++) if (meanLoss[l] < meanLoss[best]) best = l;
  // Lambdas decrease along the path, so the first index within one SE is the largest such lambda.
  let oneSe = best;
  for (let l = 0; l <= best; l++)
    if (meanLoss[l] <= meanLoss[best] + seLoss[best]) {
      oneSe = l;
      break;
    }
  const summary: CVSummary = { lambdas, meanLoss, seLoss, lambdaMin: lambdas[best], lambda1se: lambdas[oneSe], nFolds: k, folds };
  return { summary, chosen: rule === 'min' ? best : oneSe };
}

export interface LinearProbe {
  kind: 'linear';
  alpha: number;
  lambda: number;
  /** Coefficients in the original units of X. */
  coef: Float64Array;
  intercept: number;
  /** Dimensions with a nonzero coefficient. */
  selected: number[];
  /** R2 of the pooled out-of-fold predictions at the chosen lambda. */
  heldOutR2: number;
  cv: CVSummary;
  /** The full-data path the chosen model was taken from. */
  path: LinearPath;
}

/** Lasso / ElasticNet with lambda chosen by seeded k-fold cross-validation on MSE. */
export function linearProbeCV(X: Matrix, y: ArrayLike<number>, rng: Rng, opts: PathOptions & CVOptions = {}): LinearProbe {
  checkMatrix('linearProbeCV', X, y.length);
  const o = resolvePath('linearProbeCV', opts);
  const { nFolds = 5, rule = '1se' } = opts;
  const path = linearPath(X, y, opts);
  const folds = foldsFor('linearProbeCV', X.rows, nFolds, rng, opts.groups);
  const oofPred = Array.from(path.lambdas, () => new Float64Array(X.rows));
  const foldLoss: Float64Array[] = [];
  for (let f = 0; f < nFolds; f++) {
    const { train, test } = splitRows(folds, f);
    const fp = fitLinearPath(X, y, train, path.lambdas, o);
    const loss = new Float64Array(path.lambdas.length);
    fp.coefs.forEach((coef, l) => {
      const pred = linearPredict(X, test, coef, fp.intercepts[l]);
      let s = 0;
      test.forEach((row, i) => {
        s += (y[row] - pred[i]) ** 2;
        oofPred[l][row] = pred[i];
      });
      loss[l] = s / test.length;
    });
    foldLoss.push(loss);
  }
  const { summary, chosen } = summariseCV(path.lambdas, foldLoss, folds, rule);
  const coef = path.coefs[chosen];
  return {
    kind: 'linear',
    alpha: o.alpha,
    lambda: path.lambdas[chosen],
    coef,
    intercept: path.intercepts[chosen],
    selected: nonzero(coef),
    heldOutR2: r2Score(y, oofPred[chosen]),
    cv: summary,
    path,
  };
}

// ---------------------------------------------------------------------------------------------
// L1 logistic regression (binary; one-vs-rest for K > 2)

export interface LogisticPath {
  lambdas: Float64Array;
  alpha: number;
  /** The label values; classifier k separates classes[k] from the rest (binary: one classifier for classes[1]). */
  classes: number[];
  /** [classifier][lambda] coefficients in original units, and intercepts. */
  coefs: Float64Array[][];
  intercepts: number[][];
  converged: boolean[];
}

const P_CLIP = 1e-5; // glmnet's floor on fitted probabilities: keeps IRLS weights away from 0.
const sigmoid = (z: number) => 1 / (1 + Math.exp(-z));

function classesOf(y: ArrayLike<number>): number[] {
  const set = new Set<number>();
  for (let i = 0; i < y.length; i++) {
    if (!Number.isInteger(y[i])) throw new Error(`logistic probe: label ${i} is ${y[i]}, labels must be integers`);
    set.add(y[i]);
  }
  const classes = [...set].sort((a, b) => a - b);
  if (classes.length < 2) throw new Error(`logistic probe: need at least 2 classes, got ${classes.length} (${classes.join(', ')})`);
  return classes;
}

/** 0/1 targets per classifier. */
function binaryTargets(y: ArrayLike<number>, rows: ArrayLike<number> | null, classes: number[]): Float64Array[] {
  const positives = classes.length === 2 ? [classes[1]] : classes;
  const n = rows ? rows.length : y.length;
  return positives.map((c) => Float64Array.from({ length: n }, (_, i) => (y[rows ? rows[i] : i] === c ? 1 : 0)));
}

function logisticLambdaMax(d: Design, targets: Float64Array[], alpha: number): number {
  // For the logistic loss at beta = 0 (intercept fitted) the gradient is (1/n) X^T (t - mean(t)).
  let best = 0;
  for (const t of targets) best = Math.max(best, maxCorrelation(d, centred(t, null).yc));
  return best / alphaForLambdaMax(alpha);
}

/** One binary L1 logistic path by IRLS with coordinate descent on each quadratic approximation. */
function binaryPath(
  d: Design,
  t: Float64Array,
  lambdas: Float64Array,
  alpha: number,
  tol: number,
  maxSweeps: number,
  maxOuter: number,
): { betas: Float64Array[]; b0s: number[]; converged: boolean[] } {
  const n = d.n;
  let ybar = 0;
  for (const v of t) ybar += v;
  ybar /= n;
  const st: CDState = { beta: new Float64Array(d.p), b0: Math.log(ybar / (1 - ybar)), r: new Float64Array(n) };
  const eta = new Float64Array(n),
    w = new Float64Array(n),
    xw = new Float64Array(d.p);
  const nullDev = ybar * (1 - ybar); // scale for the tolerance: the weighted variance at beta = 0
  const out = { betas: [] as Float64Array[], b0s: [] as number[], converged: [] as boolean[] };
  const computeEta = () => {
    eta.fill(st.b0);
    for (let j = 0; j < d.p; j++) {
      const b = st.beta[j];
      if (b === 0) continue;
      const c = d.cols[j];
      for (let i = 0; i < n; i++) eta[i] += b * c[i];
    }
  };
  // IRLS over the coefficients in `set`: each pass replaces the log-likelihood by its quadratic
  // approximation at the current fit and solves that penalised weighted least squares by descent.
  const irls = (set: number[], lambda: number): boolean => {
    for (let outer = 0; outer < maxOuter; outer++) {
      computeEta();
      for (let i = 0; i < n; i++) {
        const p = Math.min(Math.max(sigmoid(eta[i]), P_CLIP), 1 - P_CLIP);
        w[i] = p * (1 - p);
        st.r[i] = (t[i] - p) / w[i]; // working response z minus the current fit eta
      }
      for (const j of set) {
        const c = d.cols[j];
        let s = 0;
        for (let i = 0; i < n; i++) s += w[i] * c[i] * c[i];
        xw[j] = s / n;
      }
      const before = st.beta.slice(),
        b0Before = st.b0;
      const inner = coordinateDescent(d, w, xw, st, set, lambda, alpha, true, tol * nullDev, maxSweeps);
      let change = 0.25 * (st.b0 - b0Before) ** 2;
      for (const j of set) change = Math.max(change, xw[j] * (st.beta[j] - before[j]) ** 2);
      if (inner && change < tol * nullDev * 100) return true;
    }
    return false;
  };
  // Gradient of the mean log-likelihood, (1/n) X^T (t - p), for the strong rule and the KKT check.
  const grad = new Float64Array(d.p),
    resid = new Float64Array(n);
  const refreshGradient = () => {
    computeEta();
    for (let i = 0; i < n; i++) resid[i] = t[i] - sigmoid(eta[i]);
    fullGradient(d, resid, grad);
  };
  refreshGradient();
  let lambdaPrev = lambdas[0];
  for (const lambda of lambdas) {
    const set = strongSet(d, grad, st.beta, lambda, Math.max(lambdaPrev, lambda), alpha);
    let ok = false;
    for (;;) {
      ok = irls(set, lambda);
      refreshGradient();
      const missed = kktViolations(d, grad, set, lambda, alpha);
      if (!missed.length) break;
      set.push(...missed);
    }
    lambdaPrev = lambda;
    out.betas.push(st.beta.slice());
    out.b0s.push(st.b0);
    out.converged.push(ok);
  }
  return out;
}

export interface LogisticOptions extends PathOptions {
  /** IRLS (outer) iterations per lambda (default 100). */
  maxOuter?: number;
}

function fitLogisticPath(
  X: Matrix,
  y: ArrayLike<number>,
  rows: ArrayLike<number> | null,
  classes: number[],
  lambdas: Float64Array,
  o: ReturnType<typeof resolvePath>,
  maxOuter: number,
): LogisticPath {
  const d = makeDesign(X, rows, o.standardize);
  const targets = binaryTargets(y, rows, classes);
  const path: LogisticPath = { lambdas, alpha: o.alpha, classes, coefs: [], intercepts: [], converged: Array.from(lambdas, () => true) };
  for (const t of targets) {
    let pos = 0;
    for (const v of t) pos += v;
    if (pos === 0 || pos === t.length)
      throw new Error(`logistic probe: a training split has only one class (${pos} of ${t.length} positive); use fewer folds or more data`);
    const fit = binaryPath(d, t, lambdas, o.alpha, o.tol, o.maxSweeps, maxOuter);
    const cs: Float64Array[] = [],
      bs: number[] = [];
    fit.betas.forEach((beta, l) => {
      const { coef, intercept } = toOriginal(d, beta, fit.b0s[l]);
      cs.push(coef);
      bs.push(intercept);
      if (!fit.converged[l]) path.converged[l] = false;
    });
    path.coefs.push(cs);
    path.intercepts.push(bs);
  }
  return path;
}

/** L1 / elastic-net logistic regression along a decreasing lambda path; labels are any integers. */
export function logisticPath(X: Matrix, y: ArrayLike<number>, opts: LogisticOptions = {}): LogisticPath {
  checkMatrix('logisticPath', X, y.length);
  const o = resolvePath('logisticPath', { tol: 1e-8, ...opts });
  const classes = classesOf(y);
  const lambdas = o.lambdas
    ? Float64Array.from(o.lambdas)
    : lambdaSequence(
        logisticLambdaMax(makeDesign(X, null, o.standardize), binaryTargets(y, null, classes), o.alpha),
        o.nLambda,
        o.lambdaRatio,
      );
  return fitLogisticPath(X, y, null, classes, lambdas, o, opts.maxOuter ?? 100);
}

/** Decision values [n, classifiers] at one lambda index. */
function decisionValues(X: Matrix, rows: ArrayLike<number> | null, path: LogisticPath, l: number): Float64Array[] {
  return path.coefs.map((cs, k) => linearPredict(X, rows, cs[l], path.intercepts[k][l]));
}

/** Predicted labels: binary by the sign of the decision value, one-vs-rest by the largest one. */
function labelsFrom(dec: Float64Array[], classes: number[]): Int32Array {
  const n = dec[0].length,
    out = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    if (classes.length === 2) {
      out[i] = dec[0][i] >= 0 ? classes[1] : classes[0];
      continue;
    }
    let best = 0;
    for (let k = 1; k < dec.length; k++) if (dec[k][i] > dec[best][i]) best = k;
    out[i] = classes[best];
  }
  return out;
}

export interface LogisticProbe {
  kind: 'logistic';
  alpha: number;
  lambda: number;
  classes: number[];
  /** One coefficient vector (original units) per classifier: 1 for binary, K for one-vs-rest. */
  coef: Float64Array[];
  intercept: number[];
  /** Dimensions nonzero in any classifier. */
  selected: number[];
  /** Accuracy of the pooled out-of-fold predictions at the chosen lambda. */
  heldOutAccuracy: number;
  /** Accuracy of always predicting the most frequent class, for comparison. */
  majorityAccuracy: number;
  cv: CVSummary;
  path: LogisticPath;
}

export function predictLogistic(probe: Pick<LogisticProbe, 'coef' | 'intercept' | 'classes'>, X: Matrix): Int32Array {
  if (X.cols !== probe.coef[0].length)
    throw new Error(`predictLogistic: X has ${X.cols} columns, probe has ${probe.coef[0].length} coefficients`);
  return labelsFrom(
    probe.coef.map((c, k) => linearPredict(X, null, c, probe.intercept[k])),
    probe.classes,
  );
}

/** Probability of the positive class (binary probes only). */
export function predictProba(probe: Pick<LogisticProbe, 'coef' | 'intercept' | 'classes'>, X: Matrix): Float64Array {
  if (probe.classes.length !== 2)
    throw new Error(`predictProba: probe has ${probe.classes.length} classes; only binary probes give one probability`);
  return linearPredict(X, null, probe.coef[0], probe.intercept[0]).map(sigmoid);
}

export function accuracy(y: ArrayLike<number>, pred: ArrayLike<number>): number {
  if (y.length !== pred.length) throw new Error(`accuracy: y has ${y.length} values, pred has ${pred.length}`);
  let hits = 0;
  for (let i = 0; i < y.length; i++) if (y[i] === pred[i]) hits++;
  return hits / y.length;
}

/**
 * L1 logistic probe with lambda chosen by seeded k-fold CV on held-out binomial deviance (summed
 * over the one-vs-rest classifiers). Folds are stratified-free; each training split needs both classes.
 */
export function logisticProbeCV(X: Matrix, y: ArrayLike<number>, rng: Rng, opts: LogisticOptions & CVOptions = {}): LogisticProbe {
  checkMatrix('logisticProbeCV', X, y.length);
  const o = resolvePath('logisticProbeCV', { tol: 1e-8, ...opts });
  const { nFolds = 5, rule = '1se', maxOuter = 100 } = opts;
  const path = logisticPath(X, y, opts);
  const { classes, lambdas } = path;
  const folds = foldsFor('logisticProbeCV', X.rows, nFolds, rng, opts.groups);
  const oofLabels = Array.from(lambdas, () => new Int32Array(X.rows));
  const foldLoss: Float64Array[] = [];
  for (let f = 0; f < nFolds; f++) {
    const { train, test } = splitRows(folds, f);
    const fp = fitLogisticPath(X, y, train, classes, lambdas, o, maxOuter);
    const targets = binaryTargets(y, test, classes);
    const loss = new Float64Array(lambdas.length);
    for (let l = 0; l < lambdas.length; l++) {
      const dec = decisionValues(X, test, fp, l);
      let dev = 0;
      dec.forEach((dk, k) =>
        dk.forEach((z, i) => {
          const p = Math.min(Math.max(sigmoid(z), P_CLIP), 1 - P_CLIP);
          dev -= 2 * (targets[k][i] ? Math.log(p) : Math.log(1 - p));
        }),
      );
      loss[l] = dev / test.length;
      labelsFrom(dec, classes).forEach((lab, i) => {
        oofLabels[l][test[i]] = lab;
      });
    }
    foldLoss.push(loss);
  }
  const { summary, chosen } = summariseCV(lambdas, foldLoss, folds, rule);
  const coef = path.coefs.map((cs) => cs[chosen]);
  const selected = nonzero(coef.reduce((acc, c) => acc.map((v, j) => v + Math.abs(c[j])), new Float64Array(X.cols)));
  const counts = new Map<number, number>();
  for (let i = 0; i < y.length; i++) counts.set(y[i], (counts.get(y[i]) ?? 0) + 1);
  return {
    kind: 'logistic',
    alpha: o.alpha,
    lambda: lambdas[chosen],
    classes,
    coef,
    intercept: path.intercepts.map((bs) => bs[chosen]),
    selected,
    heldOutAccuracy: accuracy(y, oofLabels[chosen]),
    majorityAccuracy: Math.max(...counts.values()) / y.length,
    cv: summary,
    path,
  };
}
