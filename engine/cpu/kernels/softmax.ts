// Row-wise softmax / log-softmax and cross-entropy with integer targets, forward and backward.
import type { TypedArray } from '../../dtype.ts';
import type { KernelParams } from '../../kernels.ts';

/** log(sum(exp(row))) with the max subtracted first. */
function rowLogSumExp(x: TypedArray, off: number, cols: number): number {
  let m = -Infinity;
  for (let j = 0; j < cols; j++) if (x[off + j] > m) m = x[off + j];
  if (m === -Infinity) return -Infinity;
  let s = 0;
  for (let j = 0; j < cols; j++) s += Math.exp(x[off + j] - m);
  return m + Math.log(s);
}

export function softmax([x]: TypedArray[], [out]: TypedArray[], p: KernelParams['softmax']): void {
  const { rows, cols } = p;
  for (let r = 0; r < rows; r++) {
    const off = r * cols;
    const lse = rowLogSumExp(x, off, cols);
    if (p.log) for (let j = 0; j < cols; j++) out[off + j] = x[off + j] - lse;
    else for (let j = 0; j < cols; j++) out[off + j] = Math.exp(x[off + j] - lse);
  }
}

export function softmax_bwd([y, dy]: TypedArray[], [dx]: TypedArray[], p: KernelParams['softmax_bwd']): void {
  const { rows, cols } = p;
  for (let r = 0; r < rows; r++) {
    const off = r * cols;
    let s = 0;
    if (p.log) {
      for (let j = 0; j < cols; j++) s += dy[off + j];
      for (let j = 0; j < cols; j++) dx[off + j] = dy[off + j] - Math.exp(y[off + j]) * s;
    } else {
      for (let j = 0; j < cols; j++) s += dy[off + j] * y[off + j];
      for (let j = 0; j < cols; j++) dx[off + j] = y[off + j] * (dy[off + j] - s);
    }
  }
}

function checkTarget(t: number, cols: number, r: number, ignore: number): boolean {
  if (t === ignore) return false;
  if (t < 0 || t >= cols) throw new Error(`cross_entropy: target ${t} in row ${r} is out of range [0, ${cols})`);
  return true;
}

export function cross_entropy([x, targets]: TypedArray[], [loss]: TypedArray[], p: KernelParams['cross_entropy']): void {
  const { rows, cols, ignoreIndex } = p;
  for (let r = 0; r < rows; r++) {
    const t = targets[r];
    if (!checkTarget(t, cols, r, ignoreIndex)) {
      loss[r] = 0;
      continue;
    }
    loss[r] = rowLogSumExp(x, r * cols, cols) - x[r * cols + t];
  }
}

export function cross_entropy_bwd([x, targets, g]: TypedArray[], [dx]: TypedArray[], p: KernelParams['cross_entropy_bwd']): void {
  const { rows, cols, ignoreIndex } = p;
  for (let r = 0; r < rows; r++) {
    const off = r * cols;
    const t = targets[r];
    if (!checkTarget(t, cols, r, ignoreIndex)) {
      dx.fill(0, off, off + cols);
      continue;
    }
    const lse = rowLogSumExp(x, off, cols);
    const gr = g[r];
    for (let j = 0; j < cols; j++) dx[off + j] = Math.exp(x[off + j] - lse) * gr;
    dx[off + t] = (Math.exp(x[off + t] - lse) - 1) * gr;
  }
}
