// Matmul for a few rows (M small: decoding one token, a batch of a few sequences). Packing both
// operands into float64 panels, as the blocked kernel does, costs about as much as the product
// itself when M is 1, and for the 50280 x 768 head far more, so here B is read where it lies:
//   transB (B stored [N, K], as linear() calls it): dot products along B's rows, eight rows at a
//     time so that each A value is loaded once for eight independent sums (eight chains of
//     dependent adds in flight instead of one; measured faster than four);
//   B stored [K, N]: rows of B scaled and added into a float64 accumulator row (axpy).
// Either way every output is one float64 sum over k in increasing order, rounded once on store,
// exactly as in the textbook loop and the blocked kernel.
import type { TypedArray } from '../../dtype.ts';
import type { KernelParams } from '../../kernels.ts';

let aRowBuf = new Float64Array(0);
let accBuf = new Float64Array(0);

/** The largest M this path takes: above it the blocked kernel's packing pays for itself. */
export const SMALL_M = 8;

/** Output columns [j0, j1) of every row (the worker threads split the columns). */
export function matmulSmallM([a, b]: TypedArray[], [out]: TypedArray[], p: KernelParams['matmul'], j0 = 0, j1 = p.N): void {
  const { batch, M, N, K, transA, transB, aBatchStride, bBatchStride } = p;
  if (aRowBuf.length < K) aRowBuf = new Float64Array(K);
  if (!transB && accBuf.length < N) accBuf = new Float64Array(N);
  const ar = aRowBuf,
    acc = accBuf;
  const aRow = transA ? 1 : K,
    aCol = transA ? M : 1;
  for (let bi = 0; bi < batch; bi++) {
    const aOff = bi * aBatchStride,
      bOff = bi * bBatchStride;
    for (let i = 0; i < M; i++) {
      // row i of op(A), converted to float64 once (exact) and made contiguous
      const ai = aOff + i * aRow;
      for (let k = 0; k < K; k++) ar[k] = a[ai + k * aCol];
      const o = (bi * M + i) * N;
      if (transB) dotRows(ar, b, bOff, j0, j1, K, out, o);
      else {
        acc.fill(0, j0, j1);
        for (let k = 0; k < K; k++) {
          const av = ar[k];
          const bk = bOff + k * N;
          for (let j = j0; j < j1; j++) acc[j] += av * b[bk + j];
        }
        for (let j = j0; j < j1; j++) out[o + j] = acc[j];
      }
    }
  }
}

/** out[o + j] = sum_k x[k] * b[bOff + j * K + k] for j in [j0, j1), eight rows of b at a time. */
function dotRows(x: Float64Array, b: TypedArray, bOff: number, j0: number, j1: number, K: number, out: TypedArray, o: number): void {
  let j = j0;
  for (; j + 8 <= j1; j += 8) {
    const r0 = bOff + j * K,
      r1 = r0 + K,
      r2 = r1 + K,
      r3 = r2 + K,
      r4 = r3 + K,
      r5 = r4 + K,
      r6 = r5 + K,
      r7 = r6 + K;
    let s0 = 0,
      s1 = 0,
      s2 = 0,
      s3 = 0,
      s4 = 0,
      s5 = 0,
      s6 = 0,
      s7 = 0;
    for (let k = 0; k < K; k++) {
      const xv = x[k];
      s0 += xv * b[r0 + k];
      s1 += xv * b[r1 + k];
      s2 += xv * b[r2 + k];
      s3 += xv * b[r3 + k];
      s4 += xv * b[r4 + k];
      s5 += xv * b[r5 + k];
      s6 += xv * b[r6 + k];
      s7 += xv * b[r7 + k];
    }
    out[o + j] = s0;
    out[o + j + 1] = s1;
    out[o + j + 2] = s2;
    out[o + j + 3] = s3;
    out[o + j + 4] = s4;
    out[o + j + 5] = s5;
    out[o + j + 6] = s6;
    out[o + j + 7] = s7;
  }
  for (; j + 4 <= j1; j += 4) {
    const r0 = bOff + j * K,
      r1 = r0 + K,
      r2 = r1 + K,
      r3 = r2 + K;
    let s0 = 0,
      s1 = 0,
      s2 = 0,
      s3 = 0;
    for (let k = 0; k < K; k++) {
      const xv = x[k];
      s0 += xv * b[r0 + k];
      s1 += xv * b[r1 + k];
      s2 += xv * b[r2 + k];
      s3 += xv * b[r3 + k];
    }
    out[o + j] = s0;
    out[o + j + 1] = s1;
    out[o + j + 2] = s2;
    out[o + j + 3] = s3;
  }
  for (; j < j1; j++) {
    const r = bOff + j * K;
    let s = 0;
    for (let k = 0; k < K; k++) s += x[k] * b[r + k];
    out[o + j] = s;
  }
}
