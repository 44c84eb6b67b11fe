// Small creation helpers used by op implementations.
import type { Backend } from '../backend.ts';
import { arrayFor, type DType } from '../dtype.ts';
import { arange, tensor, type Tensor } from '../tensor.ts';

/** int32 [0, n) on the same backend as `like`. */
export function arangeLike(n: number, like: Tensor): Tensor {
  return arange(n, { dtype: 'int32', backend: like.backend });
}

/** Rows [start, start + rows) of the n x n identity: shape [rows, n]. */
export function eye(n: number, dtype: DType = 'float32', backend?: Backend, start = 0, rows = n): Tensor {
  const a = arrayFor(dtype, rows * n);
  for (let r = 0; r < rows; r++) if (start + r < n) a[r * n + start + r] = 1;
  return tensor(a, [rows, n], { dtype, backend });
}
