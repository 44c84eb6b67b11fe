// Elementwise ops with numpy broadcasting, each with one gradient rule.
import type { BinaryOp, UnaryOp } from '../elementwise.ts';
import type { DType } from '../dtype.ts';
import { record } from '../autograd/tape.ts';
import { broadcastShapes, broadcastStrides } from '../shape.ts';
import { full, type Tensor } from '../tensor.ts';
import { assertFloat, describe, runKernel } from './run.ts';
import { reshape, sumTo } from './shape.ts';

export type TensorLike = Tensor | number;

function lift(x: TensorLike, like: Tensor): Tensor {
  return typeof x === 'number' ? full([], x, { dtype: like.dtype, backend: like.backend }) : x;
}

function unaryRaw(op: UnaryOp, x: Tensor, alpha = 0, beta = 0): Tensor {
  return runKernel('unary', [x], [{ shape: x.shape, dtype: x.dtype }], { op, size: x.size, alpha, beta })[0];
}

/** A unary op with gradient dx = dy * dydx(x, y). */
function unaryOp(op: UnaryOp, x: Tensor, dydx: (x: Tensor, y: Tensor) => Tensor, alpha = 0, beta = 0): Tensor {
  assertFloat(op, x);
  const y = unaryRaw(op, x, alpha, beta);
  record(op, [x], [y], ([g]) => [mul(g!, dydx(x, y))]);
  return y;
}

function binaryRaw(op: BinaryOp, a: Tensor, b: Tensor, outDtype?: DType): Tensor {
  if (a.dtype !== b.dtype) throw new Error(`${op}: dtype mismatch ${describe(a)} and ${describe(b)}`);
  const shape = broadcastShapes(op, a.shape, b.shape);
  return runKernel('binary', [a, b], [{ shape, dtype: outDtype ?? a.dtype }], {
    op,
    shape,
    aStrides: broadcastStrides(a.shape, shape),
    bStrides: broadcastStrides(b.shape, shape),
  })[0];
}

function binaryOp(
  op: BinaryOp,
  a0: TensorLike,
  b0: TensorLike,
  grads: (g: Tensor, a: Tensor, b: Tensor, y: Tensor) => [Tensor | null, Tensor | null],
): Tensor {
  const [a, b] = typeof a0 === 'number' ? [lift(a0, b0 as Tensor), b0 as Tensor] : [a0, lift(b0, a0)];
  const y = binaryRaw(op, a, b);
  record(op, [a, b], [y], ([g]) => {
    const [ga, gb] = grads(g!, a, b, y);
    return [ga && sumTo(ga, a.shape), gb && sumTo(gb, b.shape)];
  });
  return y;
}

export const add = (a: TensorLike, b: TensorLike): Tensor => binaryOp('add', a, b, (g) => [g, g]);
export const sub = (a: TensorLike, b: TensorLike): Tensor => binaryOp('sub', a, b, (g) => [g, neg(g)]);
export const mul = (a: TensorLike, b: TensorLike): Tensor =>
  binaryOp('mul', a, b, (g, x, w) => [x.requiresGrad ? mul(g, w) : null, w.requiresGrad ? mul(g, x) : null]);
export const div = (a: TensorLike, b: TensorLike): Tensor =>
  binaryOp('div', a, b, (g, x, w, y) => [x.requiresGrad ? div(g, w) : null, w.requiresGrad ? neg(div(mul(g, y), w)) : null]);
/** a ** b; the gradient for b uses log(a) and is only defined for a > 0. */
export const pow = (a: TensorLike, b: TensorLike): Tensor =>
  binaryOp('pow', a, b, (g, x, w, y) => [
    x.requiresGrad ? mul(g, mul(w, binaryRaw('pow', x, sub(w, 1)))) : null,
    w.requiresGrad ? mul(g, mul(y, log(x))) : null,
  ]);
// Gradient of max/min goes to the selected operand; ties send it to the first.
export const maximum = (a: TensorLike, b: TensorLike): Tensor =>
  binaryOp('maximum', a, b, (g, x, w) => {
    const m = binaryRaw('ge', x, w);
    return [mul(g, m), mul(g, sub(1, m))];
  });
export const minimum = (a: TensorLike, b: TensorLike): Tensor =>
  binaryOp('minimum', a, b, (g, x, w) => {
    const m = binaryRaw('le', x, w);
    return [mul(g, m), mul(g, sub(1, m))];
  });

/** Comparisons give 1 or 0 in the inputs' dtype and carry no gradient. */
function compare(op: BinaryOp, a0: TensorLike, b0: TensorLike): Tensor {
  const [a, b] = typeof a0 === 'number' ? [lift(a0, b0 as Tensor), b0 as Tensor] : [a0, lift(b0, a0)];
  return binaryRaw(op, a, b);
}
export const gt = (a: TensorLike, b: TensorLike): Tensor => compare('gt', a, b);
export const ge = (a: TensorLike, b: TensorLike): Tensor => compare('ge', a, b);
export const lt = (a: TensorLike, b: TensorLike): Tensor => compare('lt', a, b);
export const le = (a: TensorLike, b: TensorLike): Tensor => compare('le', a, b);
export const eq = (a: TensorLike, b: TensorLike): Tensor => compare('eq', a, b);
export const ne = (a: TensorLike, b: TensorLike): Tensor => compare('ne', a, b);

export const neg = (x: Tensor): Tensor => {
  const y = unaryRaw('neg', x);
  record('neg', [x], [y], ([g]) => [neg(g!)]);
  return y;
};
export const exp = (x: Tensor): Tensor => unaryOp('exp', x, (_x, y) => y);
export const log = (x: Tensor): Tensor => unaryOp('log', x, (x) => unaryRaw('recip', x));
export const sqrt = (x: Tensor): Tensor => unaryOp('sqrt', x, (_x, y) => unaryRaw('affine', unaryRaw('recip', y), 0.5, 0));
export const rsqrt = (x: Tensor): Tensor => unaryOp('rsqrt', x, (x, y) => mul(unaryRaw('affine', y, -0.5, 0), unaryRaw('recip', x)));
export const abs = (x: Tensor): Tensor => unaryOp('abs', x, (x) => unaryRaw('sign', x));
export const square = (x: Tensor): Tensor => unaryOp('square', x, (x) => unaryRaw('affine', x, 2, 0));
export const relu = (x: Tensor): Tensor => unaryOp('relu', x, (x) => unaryRaw('step', x));
export const sigmoid = (x: Tensor): Tensor => unaryOp('sigmoid', x, (_x, y) => mul(y, unaryRaw('affine', y, -1, 1)));
export const silu = (x: Tensor): Tensor => unaryOp('silu', x, (x) => unaryRaw('silu_grad', x));
export const tanh = (x: Tensor): Tensor => unaryOp('tanh', x, (_x, y) => unaryRaw('affine', unaryRaw('square', y), -1, 1));
/** log(1 + exp(x)), stable for any x. */
export const softplus = (x: Tensor): Tensor => unaryOp('softplus', x, (x) => unaryRaw('sigmoid', x));
export const clamp = (x: Tensor, lo: number, hi: number): Tensor => unaryOp('clamp', x, (x) => unaryRaw('inside', x, lo, hi), lo, hi);
/** a * x + b for scalars a, b. */
export const affine = (x: Tensor, a: number, b: number): Tensor => {
  const y = unaryRaw('affine', x, a, b);
  record('affine', [x], [y], ([g]) => [unaryRaw('affine', g!, a, 0)]);
  return y;
};
export const powScalar = (x: Tensor, p: number): Tensor =>
  unaryOp('pow_scalar', x, (x) => unaryRaw('affine', unaryRaw('pow_scalar', x, p - 1), p, 0), p);
export const sign = (x: Tensor): Tensor => unaryRaw('sign', x);

/** cond != 0 ? a : b, broadcast together; gradients flow to a and b through the mask. */
export function where(cond: Tensor, a0: TensorLike, b0: TensorLike): Tensor {
  const [a, b] = typeof a0 === 'number' ? [lift(a0, b0 as Tensor), b0 as Tensor] : [a0, lift(b0, a0)];
  if (a.dtype !== b.dtype) throw new Error(`where: dtype mismatch ${describe(a)} and ${describe(b)}`);
  const shape = broadcastShapes('where', broadcastShapes('where', cond.shape, a.shape), b.shape);
  const y = runKernel('where', [cond, a, b], [{ shape, dtype: a.dtype }], {
    shape,
    cStrides: broadcastStrides(cond.shape, shape),
    aStrides: broadcastStrides(a.shape, shape),
    bStrides: broadcastStrides(b.shape, shape),
  })[0];
  record('where', [a, b], [y], ([g]) => {
    const z = full([], 0, { dtype: g!.dtype, backend: g!.backend });
    return [sumTo(where(cond, g!, z), a.shape), sumTo(where(cond, z, g!), b.shape)];
  });
  return y;
}

/** Converts dtype; gradients pass through between float types. */
export function cast(x: Tensor, dtype: DType): Tensor {
  if (x.dtype === dtype) return x;
  const y = runKernel('cast', [x], [{ shape: x.shape, dtype }], { size: x.size })[0];
  if (dtype !== 'int32' && x.dtype !== 'int32') record('cast', [x], [y], ([g]) => [cast(g!, x.dtype)]);
  return y;
}

export function onesLike(t: Tensor): Tensor {
  return full(t.shape, 1, { dtype: t.dtype, backend: t.backend });
}
export function zerosLike(t: Tensor): Tensor {
  return full(t.shape, 0, { dtype: t.dtype, backend: t.backend });
}

export { reshape };
