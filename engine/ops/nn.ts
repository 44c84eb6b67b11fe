// Fused neural-network ops, each with its own backward kernel: softmax / log-softmax,
// cross-entropy with integer targets, RMSNorm, causal depthwise conv1d, and top-k.
import { record } from '../autograd/tape.ts';
import { normAxis, shapeStr } from '../shape.ts';
import type { Tensor } from '../tensor.ts';
import { arangeLike } from './creation.ts';
import { add, cast, div, maximum, mul, ne } from './elementwise.ts';
import { scatterAdd } from './indexing.ts';
import { sum } from './reduce.ts';
import { assertFloat, runKernel } from './run.ts';
import { reshape, transpose } from './shape.ts';

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

/** x * w / sqrt(mean(x^2, last axis) + eps). */
export function rmsNorm(x: Tensor, weight: Tensor, eps = 1e-5): Tensor {
  assertFloat('rmsNorm', x, weight);
  const cols = x.shape[x.rank - 1];
  if (weight.rank !== 1 || weight.shape[0] !== cols) {
    throw new Error(`rmsNorm: weight ${shapeStr(weight.shape)} does not match the last axis of ${shapeStr(x.shape)}`);
  }
  const rows = x.size / Math.max(cols, 1);
  const [y, rstd] = runKernel(
    'rmsnorm',
    [x, weight],
    [
      { shape: x.shape, dtype: x.dtype },
      { shape: [rows], dtype: x.dtype },
    ],
    { rows, cols, eps },
  );
  record('rmsNorm', [x, weight], [y], ([g]) =>
    runKernel(
      'rmsnorm_bwd',
      [x, weight, rstd, g!],
      [
        { shape: x.shape, dtype: x.dtype },
        { shape: weight.shape, dtype: x.dtype },
      ],
      { rows, cols },
    ),
  );
  return y;
}

/**
 * Causal depthwise convolution over time: x [batch, T, C], weight [C, K] (or [C, 1, K] as
 * PyTorch stores it), optional bias [C]; left padding K-1, so y[t] sees x[t-K+1..t].
 */
export function conv1dCausal(x: Tensor, weight: Tensor, bias?: Tensor | null): Tensor {
  assertFloat('conv1dCausal', x, weight);
  if (x.rank !== 3) throw new Error(`conv1dCausal: input ${shapeStr(x.shape)} is not [batch, T, C]`);
  const [batch, T, C] = x.shape;
  const w = weight.rank === 3 && weight.shape[1] === 1 ? reshape(weight, [weight.shape[0], weight.shape[2]]) : weight;
  if (w.rank !== 2 || w.shape[0] !== C) throw new Error(`conv1dCausal: weight ${shapeStr(weight.shape)} does not match ${C} channels`);
  if (bias && (bias.rank !== 1 || bias.shape[0] !== C))
    throw new Error(`conv1dCausal: bias ${shapeStr(bias.shape)} does not match ${C} channels`);
  const K = w.shape[1];
  const p = { batch, T, C, K, hasBias: !!bias };
  const inputs = bias ? [x, w, bias] : [x, w];
  const y = runKernel('conv1d', inputs, [{ shape: x.shape, dtype: x.dtype }], p)[0];
  record('conv1dCausal', inputs, [y], ([g]) => {
    const outs = [
      { shape: x.shape, dtype: x.dtype },
      { shape: w.shape, dtype: x.dtype },
    ];
    if (bias) outs.push({ shape: bias.shape, dtype: x.dtype });
    return runKernel('conv1d_bwd', [x, w, g!], outs, p);
  });
  return y;
}

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
