// Softmax and log-softmax along an axis, and cross-entropy of logits against integer targets, each
// a fused kernel with its own backward.
import { record } from '../autograd/tape.ts';
import { normAxis, shapeStr } from '../shape.ts';
import type { Tensor } from '../tensor.ts';
import { cast, div, maximum, ne } from './elementwise.ts';
import { sum } from './reduce.ts';
import { assertFloat, runKernel } from './run.ts';
import { transpose } from './shape.ts';

function lastAxisSoftmax(x: Tensor, log: boolean): Tensor {
  const cols = x.shape[x.rank - 1];
  const rows = x.size / Math.max(cols, 1);
  const y = runKernel('softmax', [x], [{ shape: x.shape, dtype: x.dtype }], { rows, cols, log })[0];
  record(log ? 'logSoftmax' : 'softmax', [x], [y], ([g]) =>
    runKernel('softmax_bwd', [y, g!], [{ shape: x.shape, dtype: x.dtype }], { rows, cols, log }),
  );
  return y;
}

function alongAxis(x: Tensor, axis: number, op: string, f: (t: Tensor) => Tensor): Tensor {
  assertFloat(op, x);
  const a = normAxis(axis, x.rank, op);
  if (a === x.rank - 1) return f(x);
  return transpose(f(transpose(x, a, -1)), a, -1);
}

export const softmax = (x: Tensor, axis = -1): Tensor => alongAxis(x, axis, 'softmax', (t) => lastAxisSoftmax(t, false));
export const logSoftmax = (x: Tensor, axis = -1): Tensor => alongAxis(x, axis, 'logSoftmax', (t) => lastAxisSoftmax(t, true));

export interface CrossEntropyOptions {
  /** targets equal to this are skipped (default -100, as in PyTorch) */
  ignoreIndex?: number;
  reduction?: 'mean' | 'sum' | 'none';
}

/**
 * Cross-entropy of logits [..., V] against int32 targets [...]. 'mean' divides by the number of
 * targets that are not ignored.
 */
export function crossEntropy(logits: Tensor, targets: Tensor, opts: CrossEntropyOptions = {}): Tensor {
  assertFloat('crossEntropy', logits);
  const ignoreIndex = opts.ignoreIndex ?? -100;
  const cols = logits.shape[logits.rank - 1];
  const rows = logits.size / Math.max(cols, 1);
  if (
    targets.dtype !== 'int32' ||
    targets.size !== rows ||
    logits.rank - 1 !== targets.rank ||
    targets.shape.some((d, i) => d !== logits.shape[i])
  ) {
    throw new Error(
      `crossEntropy: targets ${targets.dtype}${shapeStr(targets.shape)} do not match logits ${shapeStr(logits.shape)} (want int32 of the leading shape)`,
    );
  }
  const p = { rows, cols, ignoreIndex };
  const rowLoss = runKernel('cross_entropy', [logits, targets], [{ shape: targets.shape, dtype: logits.dtype }], p)[0];
  record('crossEntropy', [logits], [rowLoss], ([g]) =>
    runKernel('cross_entropy_bwd', [logits, targets, g!], [{ shape: logits.shape, dtype: logits.dtype }], p),
  );
  const reduction = opts.reduction ?? 'mean';
  if (reduction === 'none') return rowLoss;
  const total = sum(rowLoss);
  if (reduction === 'sum') return total;
  const count = sum(cast(ne(targets, ignoreIndex), logits.dtype));
  return div(total, maximum(count, 1));
}
