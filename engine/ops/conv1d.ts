// Causal depthwise convolution over time (Mamba's short conv), a fused kernel with its own backward.
import { record } from '../autograd/tape.ts';
import { shapeStr } from '../shape.ts';
import type { Tensor } from '../tensor.ts';
import { assertFloat, runKernel } from './run.ts';
import { reshape } from './shape.ts';

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
