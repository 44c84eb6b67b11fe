// Batched matrix multiplication (either operand transposed, batch dims broadcast) and linear layers.
import { record } from '../autograd/tape.ts';
import { broadcastShapes, sameShape, shapeStr, sizeOf } from '../shape.ts';
import type { Tensor } from '../tensor.ts';
import { add } from './elementwise.ts';
import { assertSameDtype, runKernel } from './run.ts';
import { expand, reshape, squeeze, sumTo, unsqueeze } from './shape.ts';

export interface MatmulOptions {
  transA?: boolean;
  transB?: boolean;
}

/**
 * op(a) @ op(b) where op transposes the last two axes when asked. Leading (batch) axes broadcast.
 * A 1-D a is a row vector, a 1-D b a column vector, and that axis is dropped from the result.
 */
export function matmul(a: Tensor, b: Tensor, opts: MatmulOptions = {}): Tensor {
  const transA = !!opts.transA,
    transB = !!opts.transB;
  assertSameDtype('matmul', a, b);
  if (a.rank === 0 || b.rank === 0) throw new Error(`matmul: scalar operand ${shapeStr(a.shape)} @ ${shapeStr(b.shape)}`);
  if (a.rank === 1 || b.rank === 1) {
    // lift 1-D operands to matrices, then drop the axes they added (N first, then M)
    const a2 = a.rank === 1 ? unsqueeze(a, transA ? 1 : 0) : a;
    const b2 = b.rank === 1 ? unsqueeze(b, transB ? 0 : 1) : b;
    let y = matmul(a2, b2, opts);
    if (b.rank === 1) y = squeeze(y, -1);
    if (a.rank === 1) y = squeeze(y, b.rank === 1 ? -1 : -2);
    return y;
  }
  const [ar, ac] = a.shape.slice(-2);
  const [br, bc] = b.shape.slice(-2);
  const M = transA ? ac : ar,
    K = transA ? ar : ac;
  const Kb = transB ? bc : br,
    N = transB ? br : bc;
  if (K !== Kb) {
    throw new Error(
      `matmul: inner dimensions differ: ${shapeStr(a.shape)}${transA ? '^T' : ''} @ ${shapeStr(b.shape)}${transB ? '^T' : ''}`,
    );
  }
  const batchShape = broadcastShapes(
    `matmul: batch axes of ${shapeStr(a.shape)} @ ${shapeStr(b.shape)}`,
    a.shape.slice(0, -2),
    b.shape.slice(0, -2),
  );
  const batch = sizeOf(batchShape);
  // an operand whose batch is neither the full one nor a single matrix is expanded (copied)
  const prep = (t: Tensor): [Tensor, number] => {
    const own = t.shape.slice(0, -2);
    const mat = t.shape.slice(-2);
    if (sizeOf(own) === 1) return [t, 0];
    if (sameShape(own, batchShape)) return [t, sizeOf(mat)];
    return [expand(t, [...batchShape, ...mat]), sizeOf(mat)];
  };
  const [ae, aStride] = prep(a);
  const [be, bStride] = prep(b);
  const y = runKernel('matmul', [ae, be], [{ shape: [...batchShape, M, N], dtype: a.dtype }], {
    batch,
    M,
    N,
    K,
    transA,
    transB,
    aBatchStride: aStride,
    bBatchStride: bStride,
  })[0];
  record('matmul', [a, b], [y], ([g]) => {
    const ga = !a.requiresGrad ? null : transA ? matmul(b, g!, { transA: transB, transB: true }) : matmul(g!, b, { transB: !transB });
    const gb = !b.requiresGrad ? null : transB ? matmul(g!, a, { transA: true, transB: transA }) : matmul(a, g!, { transA: !transA });
    return [ga && sumTo(ga, a.shape), gb && sumTo(gb, b.shape)];
  });
  return y;
}

/** x @ W^T + b with W stored [out, in] as in PyTorch; leading axes of x are flattened for one matmul. */
export function linear(x: Tensor, weight: Tensor, bias?: Tensor | null): Tensor {
  const lead = x.shape.slice(0, -1);
  const inF = x.shape[x.rank - 1];
  if (weight.rank !== 2 || weight.shape[1] !== inF) {
    throw new Error(`linear: input ${shapeStr(x.shape)} does not match weight ${shapeStr(weight.shape)} ([out, in])`);
  }
  let y = matmul(reshape(x, [-1, inF]), weight, { transB: true });
  if (bias) y = add(y, bias);
  return reshape(y, [...lead, weight.shape[0]]);
}
