// RMSNorm over the last axis, a fused kernel with its own backward.
import { record } from '../autograd/tape.ts';
import { shapeStr } from '../shape.ts';
import type { Tensor } from '../tensor.ts';
import { assertFloat, runKernel } from './run.ts';

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
