// Gather (embedding lookup), its scatter-add backward, and one-hot.
import type { TypedArray } from '../../dtype.ts';
import type { KernelParams } from '../../kernels.ts';

function checkIndex(v: number, rows: number, i: number, op: string): void {
  if (v < 0 || v >= rows) throw new Error(`${op}: index ${v} at position ${i} is out of range [0, ${rows})`);
}

export function gather([table, idx]: TypedArray[], [out]: TypedArray[], p: KernelParams['gather']): void {
  const { n, rows, cols } = p;
  for (let i = 0; i < n; i++) {
    const r = idx[i];
    checkIndex(r, rows, i, 'gather');
    out.set(table.subarray(r * cols, r * cols + cols), i * cols);
  }
}

export function scatter_add([g, idx]: TypedArray[], [out]: TypedArray[], p: KernelParams['scatter_add']): void {
  const { n, rows, cols } = p;
  // accumulate in float64 so the result does not depend on the order rounding happens in
  const acc = new Float64Array(rows * cols);
  for (let i = 0; i < n; i++) {
    const r = idx[i];
    checkIndex(r, rows, i, 'scatter_add');
    const o = r * cols;
    const s = i * cols;
    for (let c = 0; c < cols; c++) acc[o + c] += g[s + c];
  }
  out.set(acc);
}

export function onehot([idx]: TypedArray[], [out]: TypedArray[], p: KernelParams['onehot']): void {
  const { n, depth } = p;
  out.fill(0, 0, n * depth);
  for (let i = 0; i < n; i++) {
    const v = idx[i];
    if (v >= 0 && v < depth) out[i * depth + v] = 1;
  }
}
