// RMSNorm forward and backward on the CPU, one row at a time; dw summed over rows in float64.
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
