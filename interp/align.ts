// Aligning the activation spaces of two models before comparing them. Two independently trained
// models share no basis: channel j of one has nothing to do with channel j of the other, so a
// probe, SAE or circuit of model A means nothing on model B's raw coordinates. Orthogonal
// Procrustes finds the rotation R minimising ||X R - Y||_F over paired rows (the same token of the
// same input sequence fed to both models, X from one, Y from the other, each centred on its own
// training mean); R = U V^T from the SVD X^T Y = U S V^T (Schönemann 1966). Two models' residual
// streams can differ in overall scale by orders of magnitude, which no rotation can undo, so one
// scalar s = trace(S) / ||X||_F^2 is fitted with it (the least-squares scale given R): the map is
// x -> s (x - meanX) R + meanY. A rotation and one scale keep angles and ratios of lengths, so the
// map can only line up geometry that is already shared.
//
// The fit is only worth something on rows it was not fitted on, and beside what a rotation gets
// without any shared structure: R^2 on held-out rows of the aligned map, of the identity (raw
// coordinates), of random rotations, and of rotations fitted on rows paired at random (different
// positions or sequences: the same marginal clouds, no correspondence).
import type { Rng } from '../engine/random.ts';
import { symmetricEigen } from './linalg.ts';

/** Rows [rows, d] of activations, row-major. */
export interface Rows {
  data: ArrayLike<number>;
  rows: number;
  d: number;
}

export interface Alignment {
  d: number;
  /** d x d, row-major: x -> scale (x - meanX) R + meanY */
  R: Float64Array;
  scale: number;
  meanX: Float64Array;
  meanY: Float64Array;
}

function check(X: Rows, Y: Rows, what: string): void {
  if (X.d !== Y.d) throw new Error(`${what}: widths differ (${X.d} vs ${Y.d})`);
  if (X.rows !== Y.rows) throw new Error(`${what}: ${X.rows} rows vs ${Y.rows}; rows must be paired`);
  if (X.data.length !== X.rows * X.d || Y.data.length !== Y.rows * Y.d) throw new Error(`${what}: data length is not rows x d`);
  if (X.rows < 2) throw new Error(`${what}: needs at least 2 paired rows, got ${X.rows}`);
}

export function columnMean(X: Rows): Float64Array {
  const m = new Float64Array(X.d);
  for (let r = 0; r < X.rows; r++) for (let j = 0; j < X.d; j++) m[j] += X.data[r * X.d + j] / X.rows;
  return m;
}

/** The orthogonal polar factor of a d x d matrix M (row-major): U V^T for M = U S V^T. */
export function polarFactor(M: Float64Array, d: number): Float64Array {
  // M^T M = V S^2 V^T, so U V^T = M V S^-1 V^T; directions with S ~ 0 are left out (M then has no unique factor)
  const MtM = Array.from({ length: d }, (_, i) =>
    Array.from({ length: d }, (_, j) => {
      let s = 0;
      for (let k = 0; k < d; k++) s += M[k * d + i] * M[k * d + j];
      return s;
    }),
  );
  const sym = MtM.map((row, i) => row.map((v, j) => (v + MtM[j][i]) / 2));
  const { values, vectors } = symmetricEigen(sym);
  const top = Math.max(values[0], 0);
  const W = new Float64Array(d * d); // V S^-1 V^T
  values.forEach((lambda, k) => {
    if (!(lambda > top * 1e-24)) return;
    const inv = 1 / Math.sqrt(lambda),
      v = vectors[k];
    for (let i = 0; i < d; i++) for (let j = 0; j < d; j++) W[i * d + j] += v[i] * v[j] * inv;
  });
  let R = matmul(M, W, d);
  // Newton-Schulz steps R <- R (3I - R^T R) / 2 remove the rounding the eigen-route leaves
  for (let it = 0; it < 3; it++) {
    const RtR = matmul(transpose(R, d), R, d);
    for (let i = 0; i < d; i++) for (let j = 0; j < d; j++) RtR[i * d + j] = ((i === j ? 3 : 0) - RtR[i * d + j]) / 2;
    R = matmul(R, RtR, d);
  }
  return R;
}

function matmul(A: Float64Array, B: Float64Array, d: number): Float64Array {
  const C = new Float64Array(d * d);
  for (let i = 0; i < d; i++)
    for (let k = 0; k < d; k++) {
      const a = A[i * d + k];
      if (a !== 0) for (let j = 0; j < d; j++) C[i * d + j] += a * B[k * d + j];
    }
  return C;
}

function transpose(A: Float64Array, d: number): Float64Array {
  const T = new Float64Array(d * d);
  for (let i = 0; i < d; i++) for (let j = 0; j < d; j++) T[j * d + i] = A[i * d + j];
  return T;
}

/** The rotation R and scale s minimising ||s (X - meanX) R - (Y - meanY)||_F over paired rows (see the header). */
export function procrustes(X: Rows, Y: Rows): Alignment {
  check(X, Y, 'procrustes');
  const d = X.d;
  const meanX = columnMean(X),
    meanY = columnMean(Y);
  const M = new Float64Array(d * d); // Xc^T Yc
  let xx = 0;
  for (let r = 0; r < X.rows; r++)
    for (let i = 0; i < d; i++) {
      const x = X.data[r * d + i] - meanX[i];
      xx += x * x;
      for (let j = 0; j < d; j++) M[i * d + j] += x * (Y.data[r * d + j] - meanY[j]);
    }
  const R = polarFactor(M, d);
  // trace(S) = trace(R^T M) = sum of M * R elementwise
  let trS = 0;
  for (let i = 0; i < d * d; i++) trS += M[i] * R[i];
  return { d, R, scale: xx > 0 ? trS / xx : 1, meanX, meanY };
}

/** scale (x - meanX) R + meanY for every row of X. */
export function applyAlignment(a: Alignment, X: Rows): Float32Array {
  if (X.d !== a.d) throw new Error(`applyAlignment: rows of width ${X.d}, alignment of width ${a.d}`);
  const d = a.d,
    out = new Float32Array(X.rows * d),
    x = new Float64Array(d);
  for (let r = 0; r < X.rows; r++) {
    for (let i = 0; i < d; i++) x[i] = a.scale * (X.data[r * d + i] - a.meanX[i]);
    for (let j = 0; j < d; j++) {
      let s = a.meanY[j];
      for (let i = 0; i < d; i++) s += x[i] * a.R[i * d + j];
      out[r * d + j] = s;
    }
  }
  return out;
}

/** 1 - ||pred - Y||^2 / ||Y - meanY||^2 over the rows (meanY: the centre the fit used, e.g. the training mean). */
export function rSquared(pred: ArrayLike<number>, Y: Rows, meanY: ArrayLike<number>): number {
  if (pred.length !== Y.data.length) throw new Error(`rSquared: ${pred.length} predictions for ${Y.data.length} values`);
  let sse = 0,
    sst = 0;
  for (let r = 0; r < Y.rows; r++)
    for (let j = 0; j < Y.d; j++) {
      const y = Y.data[r * Y.d + j];
      sse += (pred[r * Y.d + j] - y) ** 2;
      sst += (y - meanY[j]) ** 2;
    }
  return sst > 0 ? 1 - sse / sst : NaN;
}

/** A uniformly random d x d orthogonal matrix (Gram-Schmidt on Gaussian columns, sign-corrected). */
export function randomRotation(d: number, rng: Rng): Float64Array {
  const cols: Float64Array[] = [];
  while (cols.length < d) {
    const v = Float64Array.from({ length: d }, () => rng.normal());
    for (const c of cols) {
      let dot = 0;
      for (let i = 0; i < d; i++) dot += v[i] * c[i];
      for (let i = 0; i < d; i++) v[i] -= dot * c[i];
    }
    const n = Math.hypot(...v);
    if (n < 1e-8) continue;
    cols.push(v.map((x) => x / n));
  }
  const R = new Float64Array(d * d);
  for (let j = 0; j < d; j++) for (let i = 0; i < d; i++) R[i * d + j] = cols[j][i];
  return R;
}

/** Rows `idx` of X (e.g. the rows of some sequences). */
export function pickRows(X: Rows, idx: ArrayLike<number>): Rows {
  const data = new Float64Array(idx.length * X.d);
  for (let k = 0; k < idx.length; k++) for (let j = 0; j < X.d; j++) data[k * X.d + j] = X.data[idx[k] * X.d + j];
  return { data, rows: idx.length, d: X.d };
}

export interface AlignmentFit {
  alignment: Alignment;
  /** held-out R^2 of the fitted rotation */
  aligned: number;
  /** held-out R^2 of the raw coordinates (identity rotation, the fitted scale, both centred on their training means) */
  identity: number;
  /** held-out R^2 of random rotations at the fitted scale (one per draw) */
  random: number[];
  /** held-out R^2 of rotations fitted on the training rows paired at random (one per draw) */
  shuffled: number[];
  /** training-row R^2 of the fitted rotation (beside the held-out one: how much it overfits) */
  train: number;
}

/**
 * Procrustes from X to Y fitted on the training rows and measured on the held-out rows, with the
 * identity, `draws` random rotations and `draws` fits on randomly re-paired training rows beside it.
 */
export function fitAlignment(train: { X: Rows; Y: Rows }, heldOut: { X: Rows; Y: Rows }, rng: Rng, draws: number): AlignmentFit {
  check(heldOut.X, heldOut.Y, 'fitAlignment (held-out rows)');
  if (!(Number.isInteger(draws) && draws >= 1)) throw new Error(`fitAlignment: draws must be a positive integer, got ${draws}`);
  const a = procrustes(train.X, train.Y);
  const score = (al: Alignment, rows = heldOut) => rSquared(applyAlignment(al, rows.X), rows.Y, al.meanY);
  const d = a.d;
  const identity = new Float64Array(d * d);
  for (let i = 0; i < d; i++) identity[i * d + i] = 1;
  const random: number[] = [],
    shuffled: number[] = [];
  for (let k = 0; k < draws; k++) {
    random.push(score({ ...a, R: randomRotation(d, rng.fork(`rotation${k}`)) }));
    const perm = rng.fork(`pairing${k}`).permutation(train.X.rows);
    shuffled.push(score(procrustes(pickRows(train.X, perm), train.Y)));
  }
  return { alignment: a, aligned: score(a), identity: score({ ...a, R: identity }), random, shuffled, train: score(a, train) };
}
