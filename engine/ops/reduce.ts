// Reductions over any set of axes, with keepdim.
import type { ReduceOp } from '../kernels.ts';
import { record } from '../autograd/tape.ts';
import { normAxes, normAxis, type Shape } from '../shape.ts';
import type { Tensor } from '../tensor.ts';
import { abs, add, div, eq, exp, log, lt, mul, sub, where } from './elementwise.ts';
import { assertFloat, runKernel } from './run.ts';
import { expand, permute, reshape } from './shape.ts';

export type Axes = number | readonly number[] | undefined;

interface Plan {
  /** x rearranged so the reduced axes form one block: [outer, len, inner]. */
  src: Tensor;
  outer: number;
  len: number;
  inner: number;
  /** output shape with kept (size-1) axes, and without */
  keptShape: number[];
  outShape: number[];
}

function plan(x: Tensor, axes: Axes, op: string, keepdim: boolean): Plan {
  const ax = normAxes(axes, x.rank, op);
  const keptShape = x.shape.map((d, i) => (ax.includes(i) ? 1 : d));
  const outShape = keepdim ? keptShape : x.shape.filter((_, i) => !ax.includes(i));
  let src = x;
  let first = ax[0] ?? x.rank;
  const contiguous = ax.every((a, i) => a === first + i);
  if (!contiguous) {
    // move the reduced axes to the end, keeping the order of the others
    const rest = x.shape.map((_, i) => i).filter((i) => !ax.includes(i));
    src = permute(x, [...rest, ...ax]);
    first = rest.length;
  }
  const s = src.shape;
  const n = ax.length;
  const prod = (a: readonly number[]) => a.reduce((p, d) => p * d, 1);
  return {
    src,
    outer: prod(s.slice(0, first)),
    len: prod(s.slice(first, first + n)),
    inner: prod(s.slice(first + n)),
    keptShape,
    outShape,
  };
}

function reduceRaw(op: ReduceOp, x: Tensor, axes: Axes, keepdim: boolean): { y: Tensor; p: Plan } {
  const p = plan(x, axes, op, keepdim);
  const y = runKernel('reduce', [p.src], [{ shape: p.outShape, dtype: x.dtype }], { op, outer: p.outer, len: p.len, inner: p.inner })[0];
  if (p.src !== x) p.src.dispose();
  return { y, p };
}

export function sum(x: Tensor, axes?: Axes, keepdim = false): Tensor {
  const { y, p } = reduceRaw('sum', x, axes, keepdim);
  record('sum', [x], [y], ([g]) => [expand(reshape(g!, p.keptShape), x.shape)]);
  return y;
}

export function mean(x: Tensor, axes?: Axes, keepdim = false): Tensor {
  assertFloat('mean', x);
  const s = sum(x, axes, keepdim);
  const n = x.size / Math.max(s.size, 1);
  return div(s, n);
}

function extremum(op: 'max' | 'min', x: Tensor, axes: Axes, keepdim: boolean): Tensor {
  const { y, p } = reduceRaw(op, x, axes, keepdim);
  // the gradient is shared equally among the elements that attain the extremum
  record(op, [x], [y], ([g]) => {
    const mask = eq(x, expand(reshape(y, p.keptShape), x.shape));
    const count = expand(sumKept(mask, p.keptShape, axes), x.shape);
    return [div(mul(expand(reshape(g!, p.keptShape), x.shape), mask), count)];
  });
  return y;
}

function sumKept(x: Tensor, kept: Shape, axes: Axes): Tensor {
  return reshape(sum(x, axes, true), kept);
}

export const max = (x: Tensor, axes?: Axes, keepdim = false) => extremum('max', x, axes, keepdim);
export const min = (x: Tensor, axes?: Axes, keepdim = false) => extremum('min', x, axes, keepdim);

/** Index of the largest element along one axis (int32; first on ties). */
export function argmax(x: Tensor, axis = -1, keepdim = false): Tensor {
  const a = normAxis(axis, x.rank, 'argmax');
  const p = plan(x, [a], 'argmax', keepdim);
  return runKernel('argmax', [x], [{ shape: p.outShape, dtype: 'int32' }], { outer: p.outer, len: p.len, inner: p.inner })[0];
}

/** log(sum(exp(x))) over axes, computed with the maximum subtracted first. */
export function logsumexp(x: Tensor, axes?: Axes, keepdim = false): Tensor {
  const ax = normAxes(axes, x.rank, 'logsumexp');
  // a constant shift (no gradient needed through it); 0 where the max is +-inf or NaN, so that
  // all -inf gives -inf and any +inf gives +inf instead of NaN from inf - inf
  const m0 = reduceRaw('max', x, ax, true).y;
  const m = where(lt(abs(m0), Infinity), m0, 0);
  const out = add(log(sum(exp(sub(x, m)), ax, true)), m);
  return keepdim
    ? out
    : reshape(
        out,
        x.shape.filter((_, i) => !ax.includes(i)),
      );
}
