// Top-k of each row on the CPU: a stable sort of the column indices (ties keep the lower index first).
import type { TypedArray } from '../../dtype.ts';
import type { KernelParams } from '../../kernels.ts';

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
