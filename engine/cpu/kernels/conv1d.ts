// Causal depthwise conv1d forward and backward on the CPU; dw and dbias summed over (batch, t) in float64.
import type { TypedArray } from '../../dtype.ts';
import type { KernelParams } from '../../kernels.ts';

export function conv1d(ins: TypedArray[], [y]: TypedArray[], p: KernelParams['conv1d']): void {
  const [x, w, bias] = ins;
  const { batch, T, C, K } = p;
  for (let b = 0; b < batch; b++) {
    for (let t = 0; t < T; t++) {
      const o = (b * T + t) * C;
      for (let c = 0; c < C; c++) {
        let s = p.hasBias ? bias[c] : 0;
        for (let k = 0; k < K; k++) {
          const ts = t - K + 1 + k;
          if (ts >= 0) s += w[c * K + k] * x[(b * T + ts) * C + c];
        }
        y[o + c] = s;
      }
    }
  }
}

export function conv1d_bwd([x, w, dy]: TypedArray[], outs: TypedArray[], p: KernelParams['conv1d_bwd']): void {
  const [dx, dw, db] = outs;
  const { batch, T, C, K } = p;
  const dwAcc = new Float64Array(C * K);
  const dbAcc = new Float64Array(C);
  for (let b = 0; b < batch; b++) {
    for (let t = 0; t < T; t++) {
      const o = (b * T + t) * C;
      for (let c = 0; c < C; c++) {
        // x[t] feeds y[t + K - 1 - k] through w[c, k]
        let s = 0;
        for (let k = 0; k < K; k++) {
          const to = t + K - 1 - k;
          if (to < T) s += w[c * K + k] * dy[(b * T + to) * C + c];
        }
        dx[o + c] = s;
        const g = dy[o + c];
        dbAcc[c] += g;
        for (let k = 0; k < K; k++) {
          const ts = t - K + 1 + k;
          if (ts >= 0) dwAcc[c * K + k] += g * x[(b * T + ts) * C + c];
        }
      }
    }
  }
  dw.set(dwAcc);
  if (p.hasBias) db.set(dbAcc);
}
