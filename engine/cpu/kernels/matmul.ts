// Batched matmul on the CPU, register-blocked: both operands are packed once per call into float64
// panels (A in strips of 4 rows, B in strips of 4 columns, each laid out k-major), then every 4x4
// tile of the output is accumulated in 16 local variables over the whole of K. Each k step loads
// 4 + 4 numbers for 16 multiply-adds, and the packing does the float32 -> float64 conversion and
// any transpose once instead of in the inner loop. Column strips are visited in blocks small
// enough to stay in L2 while every row strip passes over them.
// Every output is one float64 sum over k in increasing order, rounded once on store: float64
// results are exactly the textbook loop's, float32 results are that sum rounded to float32.
import type { TypedArray } from '../../dtype.ts';
import type { KernelParams } from '../../kernels.ts';
import { runSplit, splitRange, threadsReady } from '../threads.ts';

/** Column strips per L2 block: 32 strips x 4 columns x K x 8 bytes = 1 MiB at K = 1024. */
const STRIPS_PER_BLOCK = 32;

// Packing buffers, grown on demand and reused across calls (training runs many small matmuls).
let packA: Float64Array = new Float64Array(0);
let packB: Float64Array = new Float64Array(0);
function scratch(cur: Float64Array, n: number): Float64Array {
  return cur.length >= n ? cur : new Float64Array(Math.max(n, cur.length * 2));
}

/**
 * Packs the rows x cols matrix M(r, c) = src[off + r * rs + c * cs] into strips of 4 rows, each
 * stored c-major: dst[(r / 4) * cols * 4 + c * 4 + r % 4]; rows past the end are zero.
 */
function packStrips(src: TypedArray, off: number, rs: number, cs: number, rows: number, cols: number, dst: Float64Array): void {
  const strips = Math.ceil(rows / 4);
  for (let s = 0; s < strips; s++) {
    const base = s * cols * 4;
    for (let r = 0; r < 4; r++) {
      const row = s * 4 + r;
      if (row >= rows) {
        for (let c = 0; c < cols; c++) dst[base + c * 4 + r] = 0;
        continue;
      }
      const ro = off + row * rs;
      for (let c = 0; c < cols; c++) dst[base + c * 4 + r] = src[ro + c * cs];
    }
  }
}

/** Products of at least this many multiply-adds are split over the worker threads. */
const SPLIT_MIN_MACS = 1 << 21;

export function matmul(ins: TypedArray[], outs: TypedArray[], p: KernelParams['matmul']): void {
  const threads = p.batch * p.M * p.N * p.K >= SPLIT_MIN_MACS ? threadsReady() : 1;
  // few rows (decoding): the threads split the columns, i.e. the rows of the weight
  const [n, align] = p.M <= SMALL_M ? [p.N, 8] : [p.M, 4];
  const here = (r0: number, r1: number) => matmulPart(ins, outs, p, r0, r1);
  if (threads < 2 || !runSplit({ kernel: 'matmul', ins, outs, params: p }, splitRange(n, threads, align), here)) here(0, n);
}

/** The part one thread computes: output columns [r0, r1) when M is small, otherwise rows [r0, r1). */
export function matmulPart(ins: TypedArray[], outs: TypedArray[], p: KernelParams['matmul'], r0: number, r1: number): void {
  if (p.M <= SMALL_M) matmulSmallM(ins, outs, p, r0, r1);
  else matmulRows(ins, outs, p, r0, r1);
}

/**
 * Rows [m0, m1) of every batch's output (the split the worker threads use: each output element is
 * still computed whole, by one thread, exactly as when one thread does every row).
 */
export function matmulRows([a, b]: TypedArray[], [out]: TypedArray[], p: KernelParams['matmul'], m0: number, m1: number): void {
  const { batch, M, N, K, transA, transB, aBatchStride, bBatchStride } = p;
  const mStrips = Math.ceil((m1 - m0) / 4),
    nStrips = Math.ceil(N / 4);
  packA = scratch(packA, mStrips * 4 * K);
  packB = scratch(packB, nStrips * 4 * K);
  const pa = packA,
    pb = packB;
  // A(i, k) = a[i * aRow + k * aCol]; B(k, j) = b[k * bRow + j * bCol]
  const aRow = transA ? 1 : K,
    aCol = transA ? M : 1;
  const bRow = transB ? 1 : N,
    bCol = transB ? K : 1;
  for (let bi = 0; bi < batch; bi++) {
    if (bi === 0 || aBatchStride !== 0) packStrips(a, bi * aBatchStride + m0 * aRow, aRow, aCol, m1 - m0, K, pa);
    // B packed by columns: strip s holds columns 4s..4s+3, k-major
    if (bi === 0 || bBatchStride !== 0) packStrips(b, bi * bBatchStride, bCol, bRow, N, K, pb);
    const outOff = bi * M * N;
    for (let s0 = 0; s0 < nStrips; s0 += STRIPS_PER_BLOCK) {
      const s1 = Math.min(nStrips, s0 + STRIPS_PER_BLOCK);
      for (let is = 0; is < mStrips; is++) {
        const aBase = is * K * 4;
        const i0 = m0 + is * 4;
        for (let js = s0; js < s1; js++) {
          const bBase = js * K * 4;
          let c00 = 0,
            c01 = 0,
            c02 = 0,
            c03 = 0,
            c10 = 0,
            c11 = 0,
            c12 = 0,
            c13 = 0;
          let c20 = 0,
            c21 = 0,
            c22 = 0,
            c23 = 0,
            c30 = 0,
            c31 = 0,
            c32 = 0,
            c33 = 0;
          for (let k = 0; k < K; k++) {
            const ak = aBase + k * 4,
              bk = bBase + k * 4;
            const a0 = pa[ak],
              a1 = pa[ak + 1],
              a2 = pa[ak + 2],
              a3 = pa[ak + 3];
            const b0 = pb[bk],
              b1 = pb[bk + 1],
              b2 = pb[bk + 2],
              b3 = pb[bk + 3];
            c00 += a0 * b0;
            c01 += a0 * b1;
            c02 += a0 * b2;
            c03 += a0 * b3;
            c10 += a1 * b0;
            c11 += a1 * b1;
            c12 += a1 * b2;
            c13 += a1 * b3;
            c20 += a2 * b0;
            c21 += a2 * b1;
            c22 += a2 * b2;
            c23 += a2 * b3;
            c30 += a3 * b0;
            c31 += a3 * b1;
            c32 += a3 * b2;
            c33 += a3 * b3;
          }
          const j0 = js * 4;
          const w = Math.min(4, N - j0),
            h = Math.min(4, m1 - i0);
          const o = outOff + i0 * N + j0;
          if (w === 4 && h === 4) {
            out[o] = c00;
            out[o + 1] = c01;
            out[o + 2] = c02;
            out[o + 3] = c03;
            out[o + N] = c10;
            out[o + N + 1] = c11;
            out[o + N + 2] = c12;
            out[o + N + 3] = c13;
            out[o + 2 * N] = c20;
            out[o + 2 * N + 1] = c21;
            out[o + 2 * N + 2] = c22;
            out[o + 2 * N + 3] = c23;
            out[o + 3 * N] = c30;
            out[o + 3 * N + 1] = c31;
            out[o + 3 * N + 2] = c32;
            out[o + 3 * N + 3] = c33;
          } else {
            const tile = [c00, c01, c02, c03, c10, c11, c12, c13, c20, c21, c22, c23, c30, c31, c32, c33];
            for (let r = 0; r < h; r++) for (let c = 0; c < w; c++) out[o + r * N + c] = tile[r * 4 + c];
          }
        }
      }
    }
  }
}

// ---- few rows
// Matmul for a few rows (M small: decoding one token, a batch of a few sequences). Packing both
// operands into float64 panels, as the blocked kernel does, costs about as much as the product
// itself when M is 1, and for the 50280 x 768 head far more, so here B is read where it lies:
//   transB (B stored [N, K], as linear() calls it): dot products along B's rows, eight rows at a
//     time so that each A value is loaded once for eight independent sums (eight chains of
//     dependent adds in flight instead of one; measured faster than four);
//   B stored [K, N]: rows of B scaled and added into a float64 accumulator row (axpy).
// Either way every output is one float64 sum over k in increasing order, rounded once on store,
// exactly as in the textbook loop and the blocked kernel.

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

/** The textbook triple loop, kept as the baseline the benchmark compares against. */
export function matmulNaive(a: Float32Array, b: Float32Array, out: Float32Array, M: number, N: number, K: number): void {
  for (let i = 0; i < M; i++) {
    for (let j = 0; j < N; j++) {
      let s = 0;
      for (let k = 0; k < K; k++) s += a[i * K + k] * b[k * N + j];
      out[i * N + j] = s;
    }
  }
}
