// A float64 reference for every kernel of engine/kernels.ts: textbook loops written from the
// contract's comments, sharing no code with the engine's kernels (not even the elementwise table of
// engine/elementwise.ts). Float buffers are Float64Array whatever dtype they are allocated as, so a
// float32 input is read exactly and every result is the float64 value of the formula. The CPU
// kernel suite (test/engine/cpu/kernels.test.ts) runs the cases of ./kernel-cases.ts on the float32
// CPU backend against this reference. Browser-safe: no node: imports.
import type { Buffer } from '../../engine/backend.ts';
import type { DType, TypedArray } from '../../engine/dtype.ts';
import type { BinaryOp, UnaryOp } from '../../engine/elementwise.ts';
import type { KernelName, KernelParams, SaeKernelParams, ScanParams } from '../../engine/kernels.ts';
import type { KernelBackend } from '../helpers/kernel-run.ts';

type Arr = Float64Array | Int32Array;
type RefKernel<K extends KernelName> = (ins: Arr[], outs: Arr[], p: KernelParams[K]) => void;

const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));

/** Every unary op by its definition (a new op of engine/elementwise.ts fails typecheck here until it has one). */
const UNARY_REF: { [op in UnaryOp]: (x: number, alpha: number, beta: number) => number } = {
  neg: (x) => -x,
  exp: (x) => Math.exp(x),
  log: (x) => Math.log(x),
  sqrt: (x) => Math.sqrt(x),
  rsqrt: (x) => 1 / Math.sqrt(x),
  abs: (x) => (x < 0 ? -x : x),
  sign: (x) => (x > 0 ? 1 : x < 0 ? -1 : 0),
  square: (x) => x * x,
  recip: (x) => 1 / x,
  relu: (x) => (x > 0 ? x : 0),
  step: (x) => (x > 0 ? 1 : 0),
  sigmoid,
  silu: (x) => x * sigmoid(x),
  // d/dx x s(x) = s + x s (1 - s)
  silu_grad: (x) => sigmoid(x) + x * sigmoid(x) * (1 - sigmoid(x)),
  tanh: (x) => Math.tanh(x),
  softplus: (x) => Math.log1p(Math.exp(x)),
  clamp: (x, lo, hi) => (x < lo ? lo : x > hi ? hi : x),
  inside: (x, lo, hi) => (x >= lo && x <= hi ? 1 : 0),
  affine: (x, a, b) => a * x + b,
  pow_scalar: (x, p) => x ** p,
};

const BINARY_REF: { [op in BinaryOp]: (a: number, b: number) => number } = {
  add: (a, b) => a + b,
  sub: (a, b) => a - b,
  mul: (a, b) => a * b,
  div: (a, b) => a / b,
  pow: (a, b) => a ** b,
  maximum: (a, b) => (a >= b ? a : b),
  minimum: (a, b) => (a <= b ? a : b),
  gt: (a, b) => (a > b ? 1 : 0),
  ge: (a, b) => (a >= b ? 1 : 0),
  lt: (a, b) => (a < b ? 1 : 0),
  le: (a, b) => (a <= b ? 1 : 0),
  eq: (a, b) => (a === b ? 1 : 0),
  ne: (a, b) => (a !== b ? 1 : 0),
};

/** Calls f with the offsets idx . strides[j] for every index idx of shape, in row-major order. */
function forEachIndex(shape: number[], strides: number[][], f: (offsets: number[], flat: number) => void): void {
  const size = shape.reduce((p, d) => p * d, 1);
  const idx = new Array<number>(shape.length).fill(0);
  for (let flat = 0; flat < size; flat++) {
    f(
      strides.map((st) => idx.reduce((s, v, d) => s + v * st[d], 0)),
      flat,
    );
    for (let d = shape.length - 1; d >= 0; d--) {
      if (++idx[d] < shape[d]) break;
      idx[d] = 0;
    }
  }
}

/** x[o, k, i] of x viewed as [outer, len, inner]. */
const at3 = (x: Arr, len: number, inner: number, o: number, k: number, i: number) => x[(o * len + k) * inner + i];

function logSumExp(x: Arr, off: number, cols: number): number {
  let m = -Infinity;
  for (let j = 0; j < cols; j++) m = Math.max(m, x[off + j]);
  if (m === -Infinity) return -Infinity;
  let s = 0;
  for (let j = 0; j < cols; j++) s += Math.exp(x[off + j] - m);
  return m + Math.log(s);
}

/**
 * The scan's inputs by name (null where a flag leaves one out), then whatever follows them (the
 * backward's cotangents); also its gradients. Read from the contract's comment, not from the
 * engine's scanArrays, so that a wrong order in the kernels is not repeated here.
 */
export function scanInputsByName<T>(ins: T[], p: ScanParams) {
  let i = 5;
  const [x, delta, A, B, C] = ins;
  const D = p.hasD ? ins[i++] : null;
  const z = p.hasZ ? ins[i++] : null;
  const h0 = p.hasH0 ? ins[i++] : null;
  const bias = p.hasDeltaBias ? ins[i++] : null;
  return { x, delta, A, B, C, D, z, h0, bias, rest: ins.slice(i) };
}

const softplus = (v: number) => Math.log1p(Math.exp(v));

export const REFERENCE_KERNELS: { [K in KernelName]: RefKernel<K> } = {
  fill: (_ins, [out], p) => {
    for (let i = 0; i < p.size; i++) out[i] = p.value;
  },
  unary: ([x], [out], p) => {
    for (let i = 0; i < p.size; i++) out[i] = UNARY_REF[p.op](x[i], p.alpha, p.beta);
  },
  binary: ([a, b], [out], p) =>
    forEachIndex(p.shape, [p.aStrides, p.bStrides], ([ia, ib], k) => {
      out[k] = BINARY_REF[p.op](a[ia], b[ib]);
    }),
  where: ([c, a, b], [out], p) =>
    forEachIndex(p.shape, [p.cStrides, p.aStrides, p.bStrides], ([ic, ia, ib], k) => {
      out[k] = c[ic] !== 0 ? a[ia] : b[ib];
    }),
  cast: ([x], [out], p) => {
    for (let i = 0; i < p.size; i++) out[i] = out instanceof Int32Array ? Math.trunc(x[i]) : x[i];
  },
  copy: ([x], [out], p) =>
    forEachIndex(p.shape, [p.inStrides, p.outStrides], ([ii, io]) => {
      out[p.outOffset + io] = x[p.inOffset + ii];
    }),
  reduce: ([x], [out], p) => {
    const { outer, len, inner, op } = p;
    for (let o = 0; o < outer; o++)
      for (let i = 0; i < inner; i++) {
        let acc = op === 'sum' ? 0 : op === 'max' ? -Infinity : Infinity;
        for (let k = 0; k < len; k++) {
          const v = at3(x, len, inner, o, k, i);
          acc = op === 'sum' ? acc + v : op === 'max' ? Math.max(acc, v) : Math.min(acc, v);
        }
        out[o * inner + i] = acc;
      }
  },
  // the first k with the largest value above -Infinity (NaN never is), else 0
  argmax: ([x], [out], p) => {
    const { outer, len, inner } = p;
    for (let o = 0; o < outer; o++)
      for (let i = 0; i < inner; i++) {
        let best = 0,
          bestValue = -Infinity;
        for (let k = 0; k < len; k++) {
          const v = at3(x, len, inner, o, k, i);
          if (v > bestValue) [best, bestValue] = [k, v];
        }
        out[o * inner + i] = best;
      }
  },
  matmul: ([a, b], [out], p) => {
    const { batch, M, N, K, transA, transB, aBatchStride, bBatchStride } = p;
    for (let bi = 0; bi < batch; bi++)
      for (let i = 0; i < M; i++)
        for (let j = 0; j < N; j++) {
          let s = 0;
          for (let k = 0; k < K; k++) {
            s += a[bi * aBatchStride + (transA ? k * M + i : i * K + k)] * b[bi * bBatchStride + (transB ? j * K + k : k * N + j)];
          }
          out[(bi * M + i) * N + j] = s;
        }
  },
  gather: ([table, idx], [out], p) => {
    for (let i = 0; i < p.n; i++) for (let c = 0; c < p.cols; c++) out[i * p.cols + c] = table[idx[i] * p.cols + c];
  },
  scatter_add: ([g, idx], [out], p) => {
    out.fill(0, 0, p.rows * p.cols);
    for (let i = 0; i < p.n; i++) for (let c = 0; c < p.cols; c++) out[idx[i] * p.cols + c] += g[i * p.cols + c];
  },
  onehot: ([idx], [out], p) => {
    for (let i = 0; i < p.n; i++) for (let d = 0; d < p.depth; d++) out[i * p.depth + d] = idx[i] === d ? 1 : 0;
  },
  softmax: ([x], [out], p) => {
    for (let r = 0; r < p.rows; r++) {
      const off = r * p.cols,
        lse = logSumExp(x, off, p.cols);
      for (let j = 0; j < p.cols; j++) out[off + j] = p.log ? x[off + j] - lse : Math.exp(x[off + j] - lse);
    }
  },
  softmax_bwd: ([y, dy], [dx], p) => {
    for (let r = 0; r < p.rows; r++) {
      const off = r * p.cols;
      let s = 0;
      for (let j = 0; j < p.cols; j++) s += p.log ? dy[off + j] : dy[off + j] * y[off + j];
      for (let j = 0; j < p.cols; j++) dx[off + j] = p.log ? dy[off + j] - Math.exp(y[off + j]) * s : y[off + j] * (dy[off + j] - s);
    }
  },
  cross_entropy: ([x, t], [loss], p) => {
    for (let r = 0; r < p.rows; r++) loss[r] = t[r] === p.ignoreIndex ? 0 : logSumExp(x, r * p.cols, p.cols) - x[r * p.cols + t[r]];
  },
  cross_entropy_bwd: ([x, t, g], [dx], p) => {
    for (let r = 0; r < p.rows; r++) {
      const off = r * p.cols,
        lse = logSumExp(x, off, p.cols);
      for (let j = 0; j < p.cols; j++) {
        dx[off + j] = t[r] === p.ignoreIndex ? 0 : (Math.exp(x[off + j] - lse) - (j === t[r] ? 1 : 0)) * g[r];
      }
    }
  },
  rmsnorm: ([x, w], [y, rstd], p) => {
    for (let r = 0; r < p.rows; r++) {
      let ss = 0;
      for (let j = 0; j < p.cols; j++) ss += x[r * p.cols + j] ** 2;
      rstd[r] = 1 / Math.sqrt(ss / p.cols + p.eps);
      for (let j = 0; j < p.cols; j++) y[r * p.cols + j] = x[r * p.cols + j] * rstd[r] * w[j];
    }
  },
  // y_j = x_j r w_j with r given: dy_j/dx_k = r w_j [j = k] - x_j w_j r^3 x_k / cols
  rmsnorm_bwd: ([x, w, rstd, dy], [dx, dw], p) => {
    const { rows, cols } = p;
    dw.fill(0, 0, cols);
    for (let r = 0; r < rows; r++) {
      const off = r * cols,
        rs = rstd[r];
      let dot = 0;
      for (let j = 0; j < cols; j++) dot += dy[off + j] * w[j] * x[off + j];
      for (let k = 0; k < cols; k++) dx[off + k] = rs * w[k] * dy[off + k] - (x[off + k] * rs ** 3 * dot) / cols;
      for (let j = 0; j < cols; j++) dw[j] += dy[off + j] * x[off + j] * rs;
    }
  },
  conv1d: ([x, w, bias], [y], p) => {
    const { batch, T, C, K } = p;
    for (let b = 0; b < batch; b++)
      for (let t = 0; t < T; t++)
        for (let c = 0; c < C; c++) {
          let s = p.hasBias ? bias[c] : 0;
          for (let k = 0; k < K; k++) if (t - K + 1 + k >= 0) s += w[c * K + k] * x[(b * T + t - K + 1 + k) * C + c];
          y[(b * T + t) * C + c] = s;
        }
  },
  // every term w[c,k] x[b, t-K+1+k, c] of y[b,t,c] passes its cotangent back to both factors
  conv1d_bwd: ([x, w, dy], [dx, dw, db], p) => {
    const { batch, T, C, K } = p;
    dx.fill(0, 0, batch * T * C);
    dw.fill(0, 0, C * K);
    if (p.hasBias) db.fill(0, 0, C);
    for (let b = 0; b < batch; b++)
      for (let t = 0; t < T; t++)
        for (let c = 0; c < C; c++) {
          const g = dy[(b * T + t) * C + c];
          if (p.hasBias) db[c] += g;
          for (let k = 0; k < K; k++) {
            const s = t - K + 1 + k;
            if (s < 0) continue;
            dx[(b * T + s) * C + c] += g * w[c * K + k];
            dw[c * K + k] += g * x[(b * T + s) * C + c];
          }
        }
  },
  // selection: k times the largest remaining value (NaN above everything, ties to the lower index)
  topk: ([x], [values, indices], p) => {
    const { rows, cols, k } = p;
    for (let r = 0; r < rows; r++) {
      const taken = new Array<boolean>(cols).fill(false);
      for (let j = 0; j < k; j++) {
        let best = -1;
        for (let c = 0; c < cols; c++) {
          if (taken[c]) continue;
          const v = x[r * cols + c];
          if (best < 0) best = c;
          else {
            const b = x[r * cols + best];
            if (!Number.isNaN(b) && (Number.isNaN(v) || v > b)) best = c;
          }
        }
        taken[best] = true;
        values[r * k + j] = x[r * cols + best];
        indices[r * k + j] = best;
      }
    }
  },
  scan: (ins, outs, p) => {
    const { x, delta, A, B, C, D, z, h0, bias } = scanInputsByName(ins, p);
    const [y, hT, hs] = outs;
    const { batch, T, E, N } = p;
    for (let b = 0; b < batch; b++)
      for (let e = 0; e < E; e++) {
        const h = Array.from({ length: N }, (_, n) => (h0 ? h0[(b * E + e) * N + n] : 0));
        for (let t = 0; t < T; t++) {
          const i = (b * T + t) * E + e;
          const raw = delta[i] + (bias ? bias[e] : 0);
          const dt = p.deltaSoftplus ? softplus(raw) : raw;
          let out = 0;
          for (let n = 0; n < N; n++) {
            h[n] = Math.exp(dt * A[e * N + n]) * h[n] + dt * B[(b * T + t) * N + n] * x[i];
            out += C[(b * T + t) * N + n] * h[n];
            if (p.saveStates) hs[i * N + n] = h[n];
          }
          if (D) out += D[e] * x[i];
          if (z) out *= z[i] * sigmoid(z[i]);
          y[i] = out;
        }
        for (let n = 0; n < N; n++) hT[(b * E + e) * N + n] = h[n];
      }
  },
  // Reverse mode through the recurrence, one (batch, channel) at a time, from the stored states:
  // with g = dy * silu(z), dL/dh_t = dh_{t+1} Abar_{t+1} + g_t C_t + dhs_t (+ dhT at t = T-1), and
  // h_t = Abar_t h_{t-1} + dt_t B_t x_t gives the rest.
  scan_bwd: (ins, outs, p) => {
    const { x, delta, A, B, C, D, z, h0, bias, rest } = scanInputsByName(ins, p);
    let c = 0;
    const dy = rest[c++];
    const dhT = p.hasDhT ? rest[c++] : null;
    const dhs = p.hasDhs ? rest[c++] : null;
    // the gradients come in the order of the inputs they belong to
    const { x: dx, delta: ddelta, A: dA, B: dB, C: dC, D: dD, z: dz, h0: dh0, bias: dBias } = scanInputsByName(outs, p);
    const { batch, T, E, N } = p;
    for (const a of [dA, dB, dC, dD, dBias]) a?.fill(0);
    for (let b = 0; b < batch; b++)
      for (let e = 0; e < E; e++) {
        // forward, keeping every state: h[t + 1] after step t, h[0] the initial state
        const h: number[][] = [Array.from({ length: N }, (_, n) => (h0 ? h0[(b * E + e) * N + n] : 0))];
        const dts: number[] = [];
        for (let t = 0; t < T; t++) {
          const i = (b * T + t) * E + e;
          const raw = delta[i] + (bias ? bias[e] : 0);
          const dt = p.deltaSoftplus ? softplus(raw) : raw;
          dts.push(dt);
          h.push(h[t].map((hp, n) => Math.exp(dt * A[e * N + n]) * hp + dt * B[(b * T + t) * N + n] * x[i]));
        }
        const dh = Array.from({ length: N }, (_, n) => (dhT ? dhT[(b * E + e) * N + n] : 0));
        for (let t = T - 1; t >= 0; t--) {
          const i = (b * T + t) * E + e,
            bt = (b * T + t) * N,
            dt = dts[t];
          let pre = D ? D[e] * x[i] : 0; // the output before the gate
          for (let n = 0; n < N; n++) pre += C[bt + n] * h[t + 1][n];
          let g = dy[i];
          if (z && dz) {
            const s = sigmoid(z[i]);
            dz[i] = g * pre * (s + z[i] * s * (1 - s));
            g *= z[i] * s;
          }
          let dxi = D ? g * D[e] : 0;
          if (dD) dD[e] += g * x[i];
          let ddt = 0;
          for (let n = 0; n < N; n++) {
            if (dhs) dh[n] += dhs[i * N + n];
            dh[n] += g * C[bt + n];
            dC[bt + n] += g * h[t + 1][n];
            const a = A[e * N + n],
              abar = Math.exp(dt * a);
            // h_t[n] = abar h_{t-1}[n] + dt B x
            ddt += dh[n] * (a * abar * h[t][n] + B[bt + n] * x[i]);
            dA[e * N + n] += dh[n] * dt * abar * h[t][n];
            dB[bt + n] += dh[n] * dt * x[i];
            dxi += dh[n] * dt * B[bt + n];
            dh[n] *= abar;
          }
          const raw = delta[i] + (bias ? bias[e] : 0);
          const dRaw = p.deltaSoftplus ? ddt * sigmoid(raw) : ddt;
          ddelta[i] = dRaw;
          if (dBias) dBias[e] += dRaw;
          dx[i] = dxi;
        }
        if (dh0) for (let n = 0; n < N; n++) dh0[(b * E + e) * N + n] = dh[n];
      }
  },
  sae: (ins, outs, p) => {
    const { rows, d, latents: L, k, kAux, l1 } = p;
    const dead = ins[5];
    for (let r = 0; r < rows; r++) {
      const { xr, pre, z, top, recon, decode } = saeRow(ins, p, r);
      const sq = recon.reduce((s, v, j) => s + (v - xr[j]) ** 2, 0);
      const loss = sq + l1 * z.reduce((s, v) => s + v, 0);
      if (p.kind === 'relu') {
        const [zo, ro, lo] = outs;
        z.forEach((v, l) => (zo[r * L + l] = v));
        recon.forEach((v, j) => (ro[r * d + j] = v));
        lo[r] = loss;
        continue;
      }
      const [vo, io, ro, lo, avo, aio, alo] = outs;
      top.forEach((l, j) => {
        vo[r * k + j] = pre[l];
        io[r * k + j] = l;
      });
      recon.forEach((v, j) => (ro[r * d + j] = v));
      lo[r] = loss;
      if (kAux > 0) {
        const masked = pre.map((v, l) => (dead[l] !== 0 ? v : -Infinity));
        const aux = topIndices(masked, kAux);
        const za = new Array<number>(L).fill(0);
        aux.forEach((l, j) => {
          avo[r * kAux + j] = masked[l];
          aio[r * kAux + j] = l;
          za[l] += masked[l] > 0 ? masked[l] : 0;
        });
        const ehat = decode(za, false);
        alo[r] = ehat.reduce((s, v, j) => s + (v - (xr[j] - recon[j])) ** 2, 0);
      }
    }
  },
  // Dense reverse mode through the formulas, row by row: dpre = mask (dz + l1 gloss + glatents),
  // with the AuxK term's cotangent added on its own latents (the residual held constant).
  sae_bwd: (ins, outs, p) => {
    const { rows, d, latents: L, kind, k, kAux, l1 } = p;
    const [x, We, , Wd, bd] = ins;
    let c = 5;
    const z = kind === 'relu' ? ins[c++] : null;
    const values = kind === 'topk' ? ins[c++] : null;
    const indices = kind === 'topk' ? ins[c++] : null;
    const recon = ins[c++];
    const auxValues = kAux > 0 ? ins[c++] : null;
    const auxIndices = kAux > 0 ? ins[c++] : null;
    const gloss = ins[c++];
    const gaux = kAux > 0 ? ins[c++] : null;
    const grecon = p.hasGRecon ? ins[c++] : null;
    const glat = p.hasGLatents ? ins[c++] : null;
    const [dx, dWe, dbe, dWd, dbd] = outs;
    for (const a of [dWe, dbe, dWd, dbd]) a.fill(0);
    for (let r = 0; r < rows; r++) {
      // dense activations, masks and latent cotangents of this row
      const act = new Array<number>(L).fill(0);
      const extra = new Array<number>(L).fill(0);
      if (z) {
        for (let l = 0; l < L; l++) {
          act[l] = z[r * L + l];
          extra[l] = glat ? glat[r * L + l] : 0;
        }
      } else {
        for (let j = 0; j < k; j++) {
          const l = indices![r * k + j];
          act[l] = values![r * k + j] > 0 ? values![r * k + j] : 0;
          extra[l] = glat ? glat[r * k + j] : 0;
        }
      }
      const G = Array.from({ length: d }, (_, j) => 2 * gloss[r] * (recon[r * d + j] - x[r * d + j]) + (grecon ? grecon[r * d + j] : 0));
      const dpre = new Array<number>(L).fill(0);
      for (let l = 0; l < L; l++) {
        if (!(act[l] > 0)) continue;
        let dz = l1 * gloss[r] + extra[l];
        for (let j = 0; j < d; j++) dz += G[j] * Wd[l * d + j];
        dpre[l] = dz;
        for (let j = 0; j < d; j++) dWd[l * d + j] += act[l] * G[j];
      }
      if (kAux > 0) {
        const actA = new Array<number>(L).fill(0);
        for (let j = 0; j < kAux; j++) {
          const v = auxValues![r * kAux + j];
          actA[auxIndices![r * kAux + j]] += v > 0 ? v : 0;
        }
        const Ga = Array.from({ length: d }, (_, j) => {
          let ehat = 0;
          for (let l = 0; l < L; l++) ehat += actA[l] * Wd[l * d + j];
          return 2 * gaux![r] * (ehat - (x[r * d + j] - recon[r * d + j]));
        });
        for (let l = 0; l < L; l++) {
          if (!(actA[l] > 0)) continue;
          for (let j = 0; j < d; j++) {
            dpre[l] += Ga[j] * Wd[l * d + j];
            dWd[l * d + j] += actA[l] * Ga[j];
          }
        }
      }
      for (let j = 0; j < d; j++) {
        let dxc = 0;
        for (let l = 0; l < L; l++) {
          dxc += dpre[l] * We[j * L + l];
          dWe[j * L + l] += dpre[l] * (x[r * d + j] - bd[j]);
        }
        dx[r * d + j] = -2 * gloss[r] * (recon[r * d + j] - x[r * d + j]) + dxc;
        dbd[j] += G[j] - dxc;
      }
      for (let l = 0; l < L; l++) dbe[l] += dpre[l];
    }
  },
  // alpha by the textbook form: the product of decays as the exponential of the sum of delta over (s, t]
  influence: ([delta, A, B, C], [norm, alpha], p) => {
    const { batch, T, E, N } = p;
    const acc = new Float64Array(batch * T * T);
    for (let b = 0; b < batch; b++)
      for (let e = 0; e < E; e++)
        for (let s = 0; s < T; s++) {
          let sum = 0; // delta over (s, t]
          for (let t = 0; t < T; t++) {
            let a = 0;
            if (t >= s) {
              if (t > s) sum += delta[(b * T + t) * E + e];
              for (let n = 0; n < N; n++)
                a += C[(b * T + t) * N + n] * Math.exp(A[e * N + n] * sum) * delta[(b * T + s) * E + e] * B[(b * T + s) * N + n];
            }
            if (p.saveAlpha) alpha[((b * E + e) * T + t) * T + s] = a;
            acc[(b * T + t) * T + s] += p.norm === 'mean_abs' ? Math.abs(a) : a * a;
          }
        }
    acc.forEach((v, i) => (norm[i] = p.norm === 'mean_abs' ? v / E : Math.sqrt(v)));
  },
};

/** The rank order of the top-k selections: NaN first (by index), then larger values, then lower indices. */
function ranksBefore(a: number, ia: number, b: number, ib: number): boolean {
  if (Number.isNaN(a) || Number.isNaN(b)) return Number.isNaN(a) && Number.isNaN(b) ? ia < ib : Number.isNaN(a);
  return a !== b ? a > b : ia < ib;
}

/** The `k` first indices of v in rank order (a full sort). */
function topIndices(v: number[], k: number): number[] {
  return v
    .map((_, i) => i)
    .sort((i, j) => (ranksBefore(v[i], i, v[j], j) ? -1 : 1))
    .slice(0, k);
}

/** One SAE row by the formulas of the contract: pre, the latent activations (dense), recon. */
function saeRow(ins: Arr[], p: SaeKernelParams, r: number) {
  const [x, We, be, Wd, bd] = ins;
  const { d, latents: L } = p;
  const xr = Array.from({ length: d }, (_, j) => x[r * d + j]);
  const pre = Array.from({ length: L }, (_, l) => {
    let s = be[l];
    for (let j = 0; j < d; j++) s += (xr[j] - bd[j]) * We[j * L + l];
    return s;
  });
  const relu = (v: number) => (v > 0 ? v : 0);
  const z = new Array<number>(L).fill(0);
  const top = p.kind === 'topk' ? topIndices(pre, p.k) : [];
  if (p.kind === 'relu') pre.forEach((v, l) => (z[l] = relu(v)));
  else for (const l of top) z[l] = relu(pre[l]);
  const decode = (zz: number[], bias: boolean) =>
    Array.from({ length: d }, (_, j) => zz.reduce((s, a, l) => s + a * Wd[l * d + j], bias ? bd[j] : 0));
  return { xr, pre, z, top, recon: decode(z, true), decode };
}

interface RefBuffer extends Buffer {
  data: Arr;
}

/** The reference as a backend for the kernel-case runner: float buffers hold float64. */
export const float64Reference: KernelBackend = {
  alloc: (dtype: DType, size: number): RefBuffer => ({
    dtype,
    size,
    data: dtype === 'int32' ? new Int32Array(size) : new Float64Array(size),
  }),
  write: (buf: Buffer, data: TypedArray) => (buf as RefBuffer).data.set(data),
  read: async (buf: Buffer) => (buf as RefBuffer).data.slice(),
  run: <K extends KernelName>(kernel: K, inputs: Buffer[], outputs: Buffer[], params: KernelParams[K]) =>
    (REFERENCE_KERNELS[kernel] as RefKernel<K>)(
      inputs.map((b) => (b as RefBuffer).data),
      outputs.map((b) => (b as RefBuffer).data),
      params,
    ),
  free: () => {},
};
