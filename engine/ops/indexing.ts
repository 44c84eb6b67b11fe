// Gather (embedding lookup, index-select) with its scatter-add backward, and one-hot.
import { record } from '../autograd/tape.ts';
import type { DType } from '../dtype.ts';
import { normAxis, shapeStr } from '../shape.ts';
import type { Tensor } from '../tensor.ts';
import { runKernel } from './run.ts';
import { permute, reshape } from './shape.ts';

function checkIndices(op: string, idx: Tensor): void {
  if (idx.dtype !== 'int32') throw new Error(`${op}: indices must be int32, got ${idx.dtype}${shapeStr(idx.shape)}`);
}

/** Rows of table [V, ...] picked by int32 indices of any shape: [...idx.shape, ...]. */
export function embedding(table: Tensor, idx: Tensor): Tensor {
  checkIndices('embedding', idx);
  if (table.rank < 1) throw new Error(`embedding: table ${shapeStr(table.shape)} has no rows`);
  const rows = table.shape[0];
  const cols = table.size / Math.max(rows, 1);
  const y = runKernel('gather', [table, idx], [{ shape: [...idx.shape, ...table.shape.slice(1)], dtype: table.dtype }], {
    n: idx.size,
    rows,
    cols,
  })[0];
  record('embedding', [table], [y], ([g]) => [scatterAdd(g!, idx, table.shape)]);
  return y;
}

/** The adjoint of embedding: rows of g summed into a [rows, ...] tensor by index. */
export function scatterAdd(g: Tensor, idx: Tensor, shape: readonly number[]): Tensor {
  checkIndices('scatterAdd', idx);
  const rows = shape[0];
  const cols = g.size / Math.max(idx.size, 1);
  const y = runKernel('scatter_add', [g, idx], [{ shape, dtype: g.dtype }], { n: idx.size, rows, cols })[0];
  record('scatterAdd', [g], [y], ([gy]) => [reshape(embedding(gy!, idx), g.shape)]);
  return y;
}

/** x's slices at `idx` along `axis` (torch.index_select). */
export function indexSelect(x: Tensor, axis: number, idx: Tensor): Tensor {
  const a = normAxis(axis, x.rank, 'indexSelect');
  if (idx.rank !== 1) throw new Error(`indexSelect: indices must be 1-D, got ${shapeStr(idx.shape)}`);
  if (a === 0) return embedding(x, idx);
  const perm = [a, ...x.shape.map((_, i) => i).filter((i) => i !== a)];
  const moved = embedding(permute(x, perm), idx);
  const inv = new Array<number>(perm.length);
  perm.forEach((p, i) => {
    inv[p] = i;
  });
  return permute(moved, inv);
}

/** [..., depth] with a 1 at each index (0 rows for out-of-range indices). No gradient. */
export function oneHot(idx: Tensor, depth: number, dtype: DType = 'float32'): Tensor {
  checkIndices('oneHot', idx);
  return runKernel('onehot', [idx], [{ shape: [...idx.shape, depth], dtype }], { n: idx.size, depth })[0];
}
