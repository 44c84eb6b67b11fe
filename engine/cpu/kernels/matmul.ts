// Batched matmul on the CPU, blocked for cache: the output is computed in panels of 4 rows x 256
// columns held in a float64 accumulator (8 KiB, stays in L1), streaming a 256-column strip of B
// that stays in L2 across all row panels. Each B element loaded serves 4 rows of A.
import type { TypedArray } from '../../dtype.ts';
import type { KernelParams } from '../../kernels.ts';

const PANEL_COLS = 256;

export function matmul([a, b]: TypedArray[], [out]: TypedArray[], p: KernelParams['matmul']): void {
  const { batch, M, N, K, transA, transB, aBatchStride, bBatchStride } = p;
  // B is read by rows of length N: pack it once per batch when it arrives transposed.
  const packed = transB ? new Float64Array(K * N) : null;
  const acc = new Float64Array(4 * PANEL_COLS);
  for (let bi = 0; bi < batch; bi++) {
    const aOff = bi * aBatchStride;
    let bm: TypedArray | Float64Array = b;
    let bOff = bi * bBatchStride;
    if (packed) {
      if (bi === 0 || bBatchStride !== 0) {
        for (let n = 0; n < N; n++) for (let k = 0; k < K; k++) packed[k * N + n] = b[bOff + n * K + k];
      }
      bm = packed;
      bOff = 0;
    }
    const outOff = bi * M * N;
    // A(i, k) as a flat index
    const aRow = transA ? 1 : K;
    const aCol = transA ? M : 1;
    for (let j0 = 0; j0 < N; j0 += PANEL_COLS) {
      const w = Math.min(PANEL_COLS, N - j0);
      for (let i0 = 0; i0 < M; i0 += 4) {
        const h = Math.min(4, M - i0);
        acc.fill(0, 0, 4 * PANEL_COLS);
        if (h === 4) {
          const r0 = aOff + i0 * aRow, r1 = r0 + aRow, r2 = r1 + aRow, r3 = r2 + aRow;
          for (let k = 0; k < K; k++) {
            const ka = k * aCol;
            const a0 = a[r0 + ka], a1 = a[r1 + ka], a2 = a[r2 + ka], a3 = a[r3 + ka];
            const bk = bOff + k * N + j0;
            for (let j = 0; j < w; j++) {
              const bv = bm[bk + j];
              acc[j] += a0 * bv;
              acc[PANEL_COLS + j] += a1 * bv;
              acc[2 * PANEL_COLS + j] += a2 * bv;
              acc[3 * PANEL_COLS + j] += a3 * bv;
            }
          }
        } else {
          for (let r = 0; r < h; r++) {
            const ra = aOff + (i0 + r) * aRow;
            const ar = r * PANEL_COLS;
            for (let k = 0; k < K; k++) {
              const av = a[ra + k * aCol];
              const bk = bOff + k * N + j0;
              for (let j = 0; j < w; j++) acc[ar + j] += av * bm[bk + j];
            }
          }
        }
        for (let r = 0; r < h; r++) {
          const o = outOff + (i0 + r) * N + j0;
          for (let j = 0; j < w; j++) out[o + j] = acc[r * PANEL_COLS + j];
        }
      }
    }
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
