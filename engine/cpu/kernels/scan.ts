// The Mamba selective scan, forward and backward, on the CPU. Channels are independent, so the
// work is a loop over (batch, channel) with the N-dimensional state in a float64 scratch array.
// The backward recomputes that channel's states forward (T*N numbers, with their decay factors)
// and then runs in reverse. exp(delta A), evaluated T*N times per channel, goes through exp64
// (inlineable; Math.exp is an out-of-line call that cost as much as the rest of the step).
import { UNARY } from '../../elementwise.ts';
import type { TypedArray } from '../../dtype.ts';
import { type KernelParams, type ScanParams, scanArrays } from '../../kernels.ts';
import { exp64 } from '../exp64.ts';
import { freeSharedF64, runSplit, sharedF64, splitRange, threadsReady } from '../threads.ts';

const softplus = UNARY.softplus.cpu;
const sigmoid = UNARY.sigmoid.cpu;
const silu = UNARY.silu.cpu;
const siluGrad = UNARY.silu_grad.cpu;

/** Scans of at least this many (t, e, n) steps are split over the worker threads by batch row. */
const SPLIT_MIN_STEPS = 1 << 18;

function threadsFor(p: ScanParams): number {
  return p.batch > 1 && p.batch * p.T * p.E * p.N >= SPLIT_MIN_STEPS ? Math.min(p.batch, threadsReady()) : 1;
}

export function scan(ins: TypedArray[], outs: TypedArray[], p: KernelParams['scan']): void {
  const threads = threadsFor(p);
  const here = (b0: number, b1: number) => scanBatches(ins, outs, p, b0, b1);
  if (threads < 2 || !runSplit({ kernel: 'scan', ins, outs, params: p }, splitRange(p.batch, threads), here)) here(0, p.batch);
}

/** The forward for batch rows [b0, b1) (the worker threads' split; rows are independent). */
export function scanBatches(ins: TypedArray[], outs: TypedArray[], p: KernelParams['scan'], b0: number, b1: number): void {
  const { x, delta, A, B, C, D, z, h0, deltaBias } = scanArrays(ins, p);
  const [y, hT, hs] = outs;
  const { T, E, N } = p;
  const h = new Float64Array(N);
  const a = new Float64Array(N); // this channel's row of A
  const useSoftplus = p.deltaSoftplus;
  for (let b = b0; b < b1; b++) {
    for (let e = 0; e < E; e++) {
      const sOff = (b * E + e) * N;
      for (let n = 0; n < N; n++) {
        h[n] = h0 ? h0[sOff + n] : 0;
        a[n] = A[e * N + n];
      }
      const bias = deltaBias ? deltaBias[e] : 0;
      for (let t = 0; t < T; t++) {
        const i = (b * T + t) * E + e;
        const dr = delta[i] + bias;
        const dt = useSoftplus ? softplus(dr) : dr;
        const xv = x[i];
        const bt = (b * T + t) * N;
        let s = 0;
        for (let n = 0; n < N; n++) {
          const hn = exp64(dt * a[n]) * h[n] + dt * B[bt + n] * xv;
          h[n] = hn;
          s += C[bt + n] * hn;
        }
        if (hs) hs.set(h, i * N);
        if (D) s += D[e] * xv;
        if (z) s *= silu(z[i]);
        y[i] = s;
      }
      hT.set(h, sOff);
    }
  }
}

/** Per batch row, the row's own sums of dA [E*N], dD [E] and d(delta bias) [E]. */
export function scanBwdPartialSize(p: ScanParams): number {
  return p.batch * (p.E * p.N + 2 * p.E);
}

export function scan_bwd(ins: TypedArray[], outs: TypedArray[], p: KernelParams['scan_bwd']): void {
  const threads = threadsFor(p);
  const size = scanBwdPartialSize(p);
  // split: the partials live in the heap the worker threads share
  const partials = threads > 1 ? sharedF64(size) : new Float64Array(size);
  try {
    const here = (b0: number, b1: number) => scanBwdBatches(ins, outs, p, b0, b1, partials);
    const job = { kernel: 'scan_bwd' as const, ins, outs, params: p, extra: partials };
    if (threads < 2 || !runSplit(job, splitRange(p.batch, threads), here)) here(0, p.batch);
    scanBwdCombine(outs, p, partials);
  } finally {
    if (threads > 1) freeSharedF64(partials);
  }
}

/**
 * The gradients summed over the batch (dA, dD, d(delta bias)) are summed per batch row first and
 * then over rows in order (scanBwdCombine), whichever thread ran which rows: the result does not
 * depend on the number of threads.
 */
export function scanBwdCombine(outs: TypedArray[], p: KernelParams['scan_bwd'], partials: Float64Array): void {
  const { batch, E, N } = p;
  const { A: dA, D: dD, deltaBias: dBias } = scanArrays(outs, p);
  const stride = E * N + 2 * E;
  const sumRows = (at: number, len: number, out: TypedArray) => {
    for (let j = 0; j < len; j++) {
      let s = 0;
      for (let b = 0; b < batch; b++) s += partials[b * stride + at + j];
      out[j] = s;
    }
  };
  sumRows(0, E * N, dA);
  if (dD) sumRows(E * N, E, dD);
  if (dBias) sumRows(E * N + E, E, dBias);
}

/** The backward for batch rows [b0, b1): all per-row outputs, and each row's partial sums. */
export function scanBwdBatches(
  ins: TypedArray[],
  outs: TypedArray[],
  p: KernelParams['scan_bwd'],
  b0: number,
  b1: number,
  partials: Float64Array,
): void {
  const { x, delta, A, B, C, D, z, h0, deltaBias, rest } = scanArrays(ins, p);
  const [dy, ...cot] = rest;
  const dhT = p.hasDhT ? cot.shift() : undefined;
  const dhs = p.hasDhs ? cot.shift() : undefined;
  const { x: dx, delta: ddelta, B: dB, C: dC, z: dz, h0: dh0 } = scanArrays(outs, p);
  const hasD = p.hasD;
  const { T, E, N } = p;
  const stride = E * N + 2 * E;

  const hist = new Float64Array((T + 1) * N); // hist[t+1] = state after step t; hist[0] = h0
  // the recompute pass keeps each step's delta and exp(delta A) for the reverse pass, which would
  // otherwise evaluate the same T*N exponentials (a third of the backward's time) a second time
  const dtHist = new Float64Array(T);
  const sPreHist = new Float64Array(T);
  const abarHist = new Float64Array(T * N);
  const dh = new Float64Array(N);
  const a = new Float64Array(N); // this channel's row of A
  const dAe = new Float64Array(N);
  // dB, dC of these rows (offset by row b0), summed over channels in float64
  const dBacc = new Float64Array((b1 - b0) * T * N);
  const dCacc = new Float64Array((b1 - b0) * T * N);
  const dtOf = (i: number, e: number) => {
    const dr = delta[i] + (deltaBias ? deltaBias[e] : 0);
    return p.deltaSoftplus ? softplus(dr) : dr;
  };

  for (let b = b0; b < b1; b++) {
    const part = b * stride;
    for (let e = 0; e < E; e++) {
      const sOff = (b * E + e) * N;
      for (let n = 0; n < N; n++) {
        hist[n] = h0 ? h0[sOff + n] : 0;
        a[n] = A[e * N + n];
        dAe[n] = 0;
      }
      let dDe = 0,
        dBiasE = 0;
      for (let t = 0; t < T; t++) {
        const i = (b * T + t) * E + e;
        const dt = dtOf(i, e);
        const xv = x[i];
        const bt = (b * T + t) * N;
        dtHist[t] = dt;
        // the ungated output C.h + D x (for dz), summed as the forward sums it
        let sPre = hasD ? D![e] * xv : 0;
        for (let n = 0; n < N; n++) {
          const abar = exp64(dt * a[n]);
          abarHist[t * N + n] = abar;
          const hn = abar * hist[t * N + n] + dt * B[bt + n] * xv;
          hist[(t + 1) * N + n] = hn;
          sPre += C[bt + n] * hn;
        }
        sPreHist[t] = sPre;
      }
      for (let n = 0; n < N; n++) dh[n] = dhT ? dhT[sOff + n] : 0;
      for (let t = T - 1; t >= 0; t--) {
        const i = (b * T + t) * E + e;
        const dr = delta[i] + (deltaBias ? deltaBias[e] : 0);
        const dt = dtHist[t];
        const xv = x[i];
        const bt = (b * T + t) * N;
        const lt = bt - b0 * T * N; // the same row in dBacc, dCacc
        const ht = (t + 1) * N;
        const hp = t * N;
        let g = dy[i];
        if (z) {
          dz![i] = g * sPreHist[t] * siluGrad(z[i]);
          g *= silu(z[i]);
        }
        let dxv = 0;
        if (hasD) {
          dDe += g * xv;
          dxv = g * D![e];
        }
        let ddt = 0;
        if (dhs) for (let n = 0; n < N; n++) dh[n] += dhs[i * N + n];
        for (let n = 0; n < N; n++) {
          const dhn = dh[n] + g * C[bt + n];
          const bn = B[bt + n];
          dCacc[lt + n] += g * hist[ht + n];
          const abar = abarHist[hp + n];
          const hprev = hist[hp + n];
          ddt += dhn * (a[n] * abar * hprev + bn * xv);
          const dhdt = dhn * dt;
          dAe[n] += dhdt * abar * hprev;
          dBacc[lt + n] += dhdt * xv;
          dxv += dhdt * bn;
          dh[n] = dhn * abar;
        }
        dx[i] = dxv;
        const ddr = p.deltaSoftplus ? ddt * sigmoid(dr) : ddt;
        ddelta[i] = ddr;
        dBiasE += ddr;
      }
      for (let n = 0; n < N; n++) partials[part + e * N + n] = dAe[n];
      partials[part + E * N + e] = dDe;
      partials[part + E * N + E + e] = dBiasE;
      if (dh0) for (let n = 0; n < N; n++) dh0[sOff + n] = dh[n];
    }
  }
  dB.set(dBacc, b0 * T * N);
  dC.set(dCacc, b0 * T * N);
}
