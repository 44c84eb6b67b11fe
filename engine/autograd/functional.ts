// Functional autograd: grad, valueAndGrad, vjp and jacobian, on top of the tape.
import { backwardFrom } from './tape.ts';
import { keep, noGrad, tidy } from '../runtime.ts';
import { shapeStr, sizeOf } from '../shape.ts';
import { empty, Tensor } from '../tensor.ts';
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

/** The value of f(...xs) (a scalar) and its gradient with respect to every argument. */
export function valueAndGrad(f: (...xs: Tensor[]) => Tensor): (...xs: Tensor[]) => { value: Tensor; grads: Tensor[] } {
  return (...xs) => {
    const leaves = xs.map(leafCopy);
    const value = f(...leaves);
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
  const out = f(...leaves);
  return [out, (cot) => {
    const g = backwardFrom(out, cot);
    return leaves.map((l) => g.get(l) ?? zerosLikeT(l));
  }];
}

export interface JacobianOptions {
  /**
   * f maps a leading batch axis independently (f(stack(xs)) = stack(f(x) for x in xs)), as models
   * do. Then rows of the Jacobian are computed `chunk` at a time in one backward pass each, by
   * running f on copies of x and seeding each copy with one basis cotangent.
   */
  batched?: boolean;
  chunk?: number;
}

/**
 * The Jacobian d f(x) / d x, shaped [...out.shape, ...x.shape], by reverse mode. Without `batched`
 * it takes one backward pass per output element.
 */
export function jacobian(f: (x: Tensor) => Tensor, x: Tensor, opts: JacobianOptions = {}): Tensor {
  if (!opts.batched) {
    const [out, pull] = vjp(f, x);
    const rows: Tensor[] = [];
    const m = out.size;
    for (let i = 0; i < m; i++) {
      rows.push(keep(tidy(() => reshape(pull(basisRow(out, i, 1))[0], [1, x.size]))));
    }
    const J = reshape(concat(rows, 0), [...out.shape, ...x.shape]);
    for (const r of rows) r.dispose();
    return J;
  }
  // batched: x is [1, ...rest]; f on [k, ...rest] gives [k, ...outRest]
  if (x.shape[0] !== 1) throw new Error(`jacobian: batched mode needs x with a leading axis of 1, got ${shapeStr(x.shape)}`);
  const outShape = noGrad(() => tidy(() => [...f(x).shape]));
  const m = sizeOf(outShape);
  const chunk = Math.max(1, Math.min(opts.chunk ?? 256, m));
  const blocks: Tensor[] = [];
  for (let start = 0; start < m; start += chunk) {
    const k = Math.min(chunk, m - start);
    blocks.push(keep(tidy(() => {
      const xs = expand(x, [k, ...x.shape.slice(1)]);
      const [out, pull] = vjp(f, xs);
      // row j of the cotangent is the basis vector for output element start + j, placed in copy j
      const cot = reshape(basisBlock(out, start, k, m), out.shape);
      return reshape(pull(cot)[0], [k, x.size]);
    })));
  }
  const J = reshape(concat(blocks, 0), [...outShape, ...x.shape]);
  for (const b of blocks) b.dispose();
  return J;
}

/** A tensor like `out` with a 1 at flat position i. */
function basisRow(out: Tensor, i: number, _k: number): Tensor {
  return reshape(eye(out.size, out.dtype, out.backend, i, 1), out.shape);
}

/** k copies' cotangent: copy j holds the basis vector e_{start+j} of the m = per-copy output size. */
function basisBlock(out: Tensor, start: number, k: number, m: number): Tensor {
  if (out.size !== k * m) throw new Error(`jacobian: f is not batch-polymorphic (output ${shapeStr(out.shape)} for ${k} copies of ${m} outputs)`);
  return eye(m, out.dtype, out.backend, start, k);
}
