// The Mamba selective scan, forward and backward, on the CPU. Channels are independent, so the
// work is a loop over (batch, channel) with the N-dimensional state in a float64 scratch array.
// The backward recomputes that channel's states forward (T*N numbers, with their decay factors)
// and then runs in reverse. exp(delta A), evaluated T*N times per channel, goes through exp64
// (inlineable; Math.exp is an out-of-line call that cost as much as the rest of the step).
import { UNARY } from '../../elementwise.ts';
import type { TypedArray } from '../../dtype.ts';
import type { KernelParams, ScanParams } from '../../kernels.ts';
import { exp64 } from './exp64.ts';

const softplus = UNARY.softplus.cpu;
const sigmoid = UNARY.sigmoid.cpu;
const silu = UNARY.silu.cpu;
const siluGrad = UNARY.silu_grad.cpu;

interface ScanInputs { x: TypedArray; delta: TypedArray; A: TypedArray; B: TypedArray; C: TypedArray; D?: TypedArray; z?: TypedArray; h0?: TypedArray; deltaBias?: TypedArray; rest: TypedArray[] }

/** Splits the flag-dependent input list of the scan kernels. */
function unpack(ins: TypedArray[], p: ScanParams): ScanInputs {
  let i = 5;
  const [x, delta, A, B, C] = ins;
  const D = p.hasD ? ins[i++] : undefined;
  const z = p.hasZ ? ins[i++] : undefined;
  const h0 = p.hasH0 ? ins[i++] : undefined;
  const deltaBias = p.hasDeltaBias ? ins[i++] : undefined;
  return { x, delta, A, B, C, D, z, h0, deltaBias, rest: ins.slice(i) };
}

export function scan(ins: TypedArray[], outs: TypedArray[], p: KernelParams['scan']): void {
  const { x, delta, A, B, C, D, z, h0, deltaBias } = unpack(ins, p);
  const [y, hT, hs] = outs;
  const { batch, T, E, N } = p;
  const h = new Float64Array(N);
  const a = new Float64Array(N); // this channel's row of A
  const useSoftplus = p.deltaSoftplus;
  for (let b = 0; b < batch; b++) {
    for (let e = 0; e < E; e++) {
      const sOff = (b * E + e) * N;
      for (let n = 0; n < N; n++) { h[n] = h0 ? h0[sOff + n] : 0; a[n] = A[e * N + n]; }
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

export function scan_bwd(ins: TypedArray[], outs: TypedArray[], p: KernelParams['scan_bwd']): void {
  const { x, delta, A, B, C, D, z, h0, deltaBias, rest } = unpack(ins, p);
  const [dy, ...cot] = rest;
  const dhT = p.hasDhT ? cot.shift() : undefined;
  const dhs = p.hasDhs ? cot.shift() : undefined;
  let o = 5;
  const [dx, ddelta, dA, dB, dC] = outs;
  const dD = p.hasD ? outs[o++] : undefined;
  const dz = p.hasZ ? outs[o++] : undefined;
  const dh0 = p.hasH0 ? outs[o++] : undefined;
  const dBias = p.hasDeltaBias ? outs[o++] : undefined;
  const { batch, T, E, N } = p;

  const hist = new Float64Array((T + 1) * N); // hist[t+1] = state after step t; hist[0] = h0
  // the recompute pass keeps each step's delta and exp(delta A) for the reverse pass, which would
  // otherwise evaluate the same T*N exponentials (a third of the backward's time) a second time
  const dtHist = new Float64Array(T);
  const abarHist = new Float64Array(T * N);
  const dh = new Float64Array(N);
  const a = new Float64Array(N); // this channel's row of A
  const dAe = new Float64Array(N);
  const dAacc = new Float64Array(E * N);
  const dBacc = new Float64Array(batch * T * N);
  const dCacc = new Float64Array(batch * T * N);
  const dDacc = new Float64Array(E);
  const dBiasAcc = new Float64Array(E);
  const dtOf = (i: number, e: number) => {
    const dr = delta[i] + (deltaBias ? deltaBias[e] : 0);
    return p.deltaSoftplus ? softplus(dr) : dr;
  };

  for (let b = 0; b < batch; b++) {
    for (let e = 0; e < E; e++) {
      const sOff = (b * E + e) * N;
      // dA[e] summed in a local row, in the same order as into dAacc directly
      for (let n = 0; n < N; n++) { hist[n] = h0 ? h0[sOff + n] : 0; a[n] = A[e * N + n]; dAe[n] = dAacc[e * N + n]; }
      for (let t = 0; t < T; t++) {
        const i = (b * T + t) * E + e;
        const dt = dtOf(i, e);
        const xv = x[i];
        const bt = (b * T + t) * N;
        dtHist[t] = dt;
        for (let n = 0; n < N; n++) {
          const abar = exp64(dt * a[n]);
          abarHist[t * N + n] = abar;
          hist[(t + 1) * N + n] = abar * hist[t * N + n] + dt * B[bt + n] * xv;
        }
      }
      for (let n = 0; n < N; n++) dh[n] = dhT ? dhT[sOff + n] : 0;
      for (let t = T - 1; t >= 0; t--) {
        const i = (b * T + t) * E + e;
        const dr = delta[i] + (deltaBias ? deltaBias[e] : 0);
        const dt = dtHist[t];
        const xv = x[i];
        const bt = (b * T + t) * N;
        const ht = (t + 1) * N;
        const hp = t * N;
        let g = dy[i];
        if (z) {
          let sPre = D ? D[e] * xv : 0;
          for (let n = 0; n < N; n++) sPre += C[bt + n] * hist[ht + n];
          dz![i] = g * sPre * siluGrad(z[i]);
          g *= silu(z[i]);
        }
        let dxv = 0;
        if (D) { dDacc[e] += g * xv; dxv = g * D[e]; }
        let ddt = 0;
        if (dhs) for (let n = 0; n < N; n++) dh[n] += dhs[i * N + n];
        for (let n = 0; n < N; n++) {
          const dhn = dh[n] + g * C[bt + n];
          const bn = B[bt + n];
          dCacc[bt + n] += g * hist[ht + n];
          const abar = abarHist[hp + n];
          const hprev = hist[hp + n];
          ddt += dhn * (a[n] * abar * hprev + bn * xv);
          dAe[n] += dhn * dt * abar * hprev;
          dBacc[bt + n] += dhn * dt * xv;
          dxv += dhn * dt * bn;
          dh[n] = dhn * abar;
        }
        dx[i] = dxv;
        const ddr = p.deltaSoftplus ? ddt * sigmoid(dr) : ddt;
        ddelta[i] = ddr;
        dBiasAcc[e] += ddr;
      }
      for (let n = 0; n < N; n++) dAacc[e * N + n] = dAe[n];
      if (dh0) for (let n = 0; n < N; n++) dh0[sOff + n] = dh[n];
    }
  }
  dA.set(dAacc);
  dB.set(dBacc);
  dC.set(dCacc);
  if (dD) dD.set(dDacc);
  if (dBias) dBias.set(dBiasAcc);
}
