// Fused kernels with their own backward: RMSNorm, causal depthwise conv1d, top-k.
import type { TypedArray } from '../../dtype.ts';
import type { KernelParams } from '../../kernels.ts';

export function rmsnorm([x, w]: TypedArray[], [y, rstd]: TypedArray[], p: KernelParams['rmsnorm']): void {
  const { rows, cols, eps } = p;
  for (let r = 0; r < rows; r++) {
    const off = r * cols;
    let ss = 0;
    for (let j = 0; j < cols; j++) ss += x[off + j] * x[off + j];
    const rs = 1 / Math.sqrt(ss / cols + eps);
    rstd[r] = rs;
    for (let j = 0; j < cols; j++) y[off + j] = x[off + j] * rs * w[j];
  }
}

// y_j = x_j r w_j with r = (mean(x^2) + eps)^-1/2, so
// dx_j = r (w_j dy_j) - x_j r^3 / cols * sum_k (w_k dy_k x_k);  dw_j = sum_rows x_j r dy_j
export function rmsnorm_bwd([x, w, rstd, dy]: TypedArray[], [dx, dw]: TypedArray[], p: KernelParams['rmsnorm_bwd']): void {
  const { rows, cols } = p;
  const dwAcc = new Float64Array(cols);
  for (let r = 0; r < rows; r++) {
    const off = r * cols;
    const rs = rstd[r];
    let dot = 0;
    for (let j = 0; j < cols; j++) dot += w[j] * dy[off + j] * x[off + j];
    const c = (rs * rs * rs * dot) / cols;
    for (let j = 0; j < cols; j++) {
      dx[off + j] = rs * w[j] * dy[off + j] - x[off + j] * c;
      dwAcc[j] += x[off + j] * rs * dy[off + j];
    }
  }
  dw.set(dwAcc);
}

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

export function topk([x]: TypedArray[], [values, indices]: TypedArray[], p: KernelParams['topk']): void {
  const { rows, cols, k } = p;
  const order = new Array<number>(cols);
  for (let r = 0; r < rows; r++) {
    const off = r * cols;
    for (let j = 0; j < cols; j++) order[j] = j;
    // stable: equal values keep the lower index first; NaN sorts as largest
    order.sort((i, j) => {
      const a = x[off + i],
        b = x[off + j];
      if (Number.isNaN(a) || Number.isNaN(b)) return Number.isNaN(a) ? (Number.isNaN(b) ? i - j : -1) : 1;
      return b - a || i - j;
    });
    for (let j = 0; j < k; j++) {
      values[r * k + j] = x[off + order[j]];
      indices[r * k + j] = order[j];
    }
  }
}
