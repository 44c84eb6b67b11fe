// Top-k along the last axis; the gradient of the values goes back to the columns they came from.
import { record } from '../autograd/tape.ts';
import { shapeStr } from '../shape.ts';
import type { Tensor } from '../tensor.ts';
import { arangeLike } from './creation.ts';
import { add, mul } from './elementwise.ts';
import { scatterAdd } from './indexing.ts';
import { runKernel } from './run.ts';
import { reshape } from './shape.ts';

/** The k largest entries of the last axis, descending: values (differentiable) and int32 indices. */
export function topk(x: Tensor, k: number): { values: Tensor; indices: Tensor } {
  const cols = x.shape[x.rank - 1];
  if (!Number.isInteger(k) || k < 1 || k > cols) throw new Error(`topk: k=${k} out of range for last axis ${cols} of ${shapeStr(x.shape)}`);
  const rows = x.size / cols;
  const shape = [...x.shape.slice(0, -1), k];
  const [values, indices] = runKernel(
    'topk',
    [x],
    [
      { shape, dtype: x.dtype },
      { shape, dtype: 'int32' },
    ],
    { rows, cols, k },
  );
  record('topk', [x], [values], ([g]) => {
    // route each value's gradient back to the column it came from
    const flatIdx = add(indices, mul(reshape(arangeLike(rows, indices), [...x.shape.slice(0, -1), 1]), cols));
    const dx = scatterAdd(reshape(g!, [rows * k, 1]), reshape(flatIdx, [rows * k]), [rows * cols, 1]);
    return [reshape(dx, x.shape)];
  });
  return { values, indices };
}
