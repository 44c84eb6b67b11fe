// The hidden attention of a selective scan (Ali et al. 2024): with the scan of engine/ops/scan.ts
// written as a causal linear map of its input per channel, y_t[e] = sum_{s<=t} alpha[e,t,s] x_s[e]
// (+ D x_t, before any gate), the coefficients are
//   alpha[b,e,t,s] = sum_n C[b,t,n] (prod_{r=s+1..t} exp(delta[b,r,e] A[e,n])) delta[b,s,e] B[b,s,n]
// for s <= t and 0 above the diagonal: the scan's Jacobian d y_t / d x_s, channel by channel. One
// kernel computes every (t, s) and a norm over channels (mean |alpha|, or the root of the sum of
// squares) in one pass, without the autograd Jacobian's T backward passes.
//
// The products of exp(delta A) are running products, never exp of differences of prefix sums of
// delta (those lose every digit once the prefix sums grow, and exp of a long prefix under- or
// overflows before the division). Not differentiable: the outputs carry no gradient.
import type { InfluenceParams } from '../kernels.ts';
import { shapeStr } from '../shape.ts';
import type { Tensor } from '../tensor.ts';
import { assertFloat, runKernel } from './run.ts';

export interface ScanInfluenceInputs {
  /** [batch, T, E]: the step, already positive (the scan's delta after any bias and softplus) */ delta: Tensor;
  /** [E, N] */ A: Tensor;
  /** [batch, T, N] */ B: Tensor;
  /** [batch, T, N] */ C: Tensor;
  /** the map over channels (default 'mean_abs': mean over e of |alpha|; 'l2': sqrt of the sum of squares) */
  norm?: InfluenceParams['norm'];
  /** also return alpha [batch, E, T, T] (E times the size of the map) */
  returnAlpha?: boolean;
}

export interface ScanInfluenceOutputs {
  /** [batch, T, T], row t, column s; 0 above the diagonal */
  norm: Tensor;
  /** [batch, E, T, T], when asked for */
  alpha?: Tensor;
}

function expect(name: string, t: Tensor, shape: number[]): void {
  if (t.rank !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
    throw new Error(`scanInfluence: ${name} has shape ${shapeStr(t.shape)}, expected ${shapeStr(shape)}`);
  }
}

export function scanInfluence(inp: ScanInfluenceInputs): ScanInfluenceOutputs {
  const { delta, A, B, C } = inp;
  if (delta.rank !== 3) throw new Error(`scanInfluence: delta has shape ${shapeStr(delta.shape)}, expected [batch, T, E]`);
  const [batch, T, E] = delta.shape;
  if (A.rank !== 2) throw new Error(`scanInfluence: A has shape ${shapeStr(A.shape)}, expected [E, N]`);
  const N = A.shape[1];
  expect('A', A, [E, N]);
  expect('B', B, [batch, T, N]);
  expect('C', C, [batch, T, N]);
  const norm = inp.norm ?? 'mean_abs';
  if (norm !== 'mean_abs' && norm !== 'l2') throw new Error(`scanInfluence: unknown norm '${norm}' (expected mean_abs or l2)`);
  assertFloat('scanInfluence', delta, A, B, C);
  for (const t of [A, B, C]) {
    if (t.dtype !== delta.dtype) throw new Error(`scanInfluence: mixed dtypes ${delta.dtype} and ${t.dtype}`);
  }
  const p: InfluenceParams = { batch, T, E, N, norm, saveAlpha: !!inp.returnAlpha };
  const dtype = delta.dtype;
  const outs = [{ shape: [batch, T, T], dtype }];
  if (p.saveAlpha) outs.push({ shape: [batch, E, T, T], dtype });
  const [m, alpha] = runKernel('influence', [delta, A, B, C], outs, p);
  return { norm: m, alpha };
}
