// Functional autograd: grad, valueAndGrad, vjp and jacobian, on top of the tape.
import { backwardFrom } from './tape.ts';
import { enableGrad, noGrad, tidy } from '../runtime.ts';
import { shapeStr, sizeOf } from '../shape.ts';
import { empty, type Tensor } from '../tensor.ts';
import { concat, expand, eye, reshape } from '../ops/index.ts';

/** A new leaf over the same buffer with no history (requiresGrad off). */
export function detach(t: Tensor): Tensor {
  return t.view(t.shape);
}

function leafCopy(t: Tensor): Tensor {
  const l = detach(t);
  l.requiresGrad = true;
  return l;
}

function zerosLikeT(t: Tensor): Tensor {
  const z = empty(t.shape, t.dtype, t.backend);
  z.backend.run('fill', [], [z.buffer], { size: z.size, value: 0 });
  return z;
}

/**
 * The value of f(...xs) (a scalar) and its gradient with respect to every argument. Like vjp and
 * jacobian, it records its own forward pass even when called inside noGrad.
 */
export function valueAndGrad(f: (...xs: Tensor[]) => Tensor): (...xs: Tensor[]) => { value: Tensor; grads: Tensor[] } {
  return (...xs) => {
    const leaves = xs.map(leafCopy);
    const value = enableGrad(() => f(...leaves));
    const g = backwardFrom(value);
    return { value, grads: leaves.map((l) => g.get(l) ?? zerosLikeT(l)) };
  };
}

/** d f / d xs for a scalar-valued f. */
export function grad(f: (...xs: Tensor[]) => Tensor): (...xs: Tensor[]) => Tensor[] {
  const vg = valueAndGrad(f);
  return (...xs) => vg(...xs).grads;
}

/** f(...xs) and a function pulling a cotangent of its output back to every argument. */
export function vjp(f: (...xs: Tensor[]) => Tensor, ...xs: Tensor[]): [Tensor, (cotangent: Tensor) => Tensor[]] {
  const leaves = xs.map(leafCopy);
  const out = enableGrad(() => f(...leaves));
  return [
    out,
    (cot) => {
      const g = backwardFrom(out, cot);
      return leaves.map((l) => g.get(l) ?? zerosLikeT(l));
    },
  ];
}

export interface JacobianOptions {
  /**
   * f maps a leading batch axis independently (f(stack(xs)) = stack(f(x) for x in xs)), as models
   * do, and x has a leading axis of 1. Rows of the Jacobian are then computed `chunk` at a time in
   * one backward pass each, by running f on `chunk` copies of x and seeding copy j with the basis
   * cotangent of output element j.
   */
  batched?: boolean;
  /** copies per backward pass in batched mode (default 256) */
  chunk?: number;
}

/**
 * The Jacobian d f(x) / d x by reverse mode, as a tensor whose rows (one per output element) are
 * shaped like x, so J[i...] is the gradient of output element i with respect to x.
 * - default: shape [...f(x).shape, ...x.shape]; one backward pass per output element.
 * - batched: x is [1, ...rest] and f(x) is [1, ...outRest]; shape [...outRest, ...x.shape] (the
 *   output's batch axis is dropped, x keeps its own); ceil(size(outRest) / chunk) backward passes.
 * Everything but the result is disposed, including the forward pass.
 */
export function jacobian(f: (x: Tensor) => Tensor, x: Tensor, opts: JacobianOptions = {}): Tensor {
  return tidy(() => (opts.batched ? batchedJacobian(f, x, opts.chunk ?? 256) : rowJacobian(f, x)));
}

function rowJacobian(f: (x: Tensor) => Tensor, x: Tensor): Tensor {
  const [out, pull] = vjp(f, x);
  const rows: Tensor[] = [];
  for (let i = 0; i < out.size; i++) {
    // each row in its own scope, so the backward pass's intermediates go at once
    rows.push(tidy(() => reshape(pull(basisRow(out, i, 1))[0], [1, x.size])));
  }
  if (!rows.length) return empty([...out.shape, ...x.shape], x.dtype, x.backend);
  return reshape(concat(rows, 0), [...out.shape, ...x.shape]);
}

function batchedJacobian(f: (x: Tensor) => Tensor, x: Tensor, chunk: number): Tensor {
  if (x.shape[0] !== 1) throw new Error(`jacobian: batched mode needs x with a leading axis of 1, got ${shapeStr(x.shape)}`);
  const outShape = noGrad(() => tidy(() => [...f(x).shape]));
  if (outShape[0] !== 1) throw new Error(`jacobian: batched mode needs f(x) with a leading axis of 1, got ${shapeStr(outShape)}`);
  const outRest = outShape.slice(1);
  const m = sizeOf(outRest);
  const k0 = Math.max(1, Math.min(chunk, m));
  const blocks: Tensor[] = [];
  for (let start = 0; start < m; start += k0) {
    const k = Math.min(k0, m - start);
    blocks.push(
      tidy(() => {
        const xs = expand(x, [k, ...x.shape.slice(1)]);
        const [out, pull] = vjp(f, xs);
        // row j of the cotangent is the basis vector for output element start + j, placed in copy j
        const cot = reshape(basisBlock(out, start, k, m), out.shape);
        return reshape(pull(cot)[0], [k, x.size]);
      }),
    );
  }
  if (!blocks.length) return empty([...outRest, ...x.shape], x.dtype, x.backend);
  return reshape(concat(blocks, 0), [...outRest, ...x.shape]);
}

/** A tensor like `out` with a 1 at flat position i. */
function basisRow(out: Tensor, i: number, _k: number): Tensor {
  return reshape(eye(out.size, out.dtype, out.backend, i, 1), out.shape);
}

/** k copies' cotangent: copy j holds the basis vector e_{start+j} of the m = per-copy output size. */
function basisBlock(out: Tensor, start: number, k: number, m: number): Tensor {
  if (out.size !== k * m)
    throw new Error(`jacobian: f is not batch-polymorphic (output ${shapeStr(out.shape)} for ${k} copies of ${m} outputs)`);
  return eye(m, out.dtype, out.backend, start, k);
}
