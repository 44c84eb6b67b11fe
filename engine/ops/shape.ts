// Shape ops: reshape (no copy), permute/transpose, expand, slice, concat, split, squeeze/unsqueeze,
// and sumTo, the reduction that undoes broadcasting in gradient rules.
import { record } from '../autograd/tape.ts';
import { broadcastShapes, broadcastStrides, normAxis, sameShape, shapeStr, sizeOf, stridesOf, type Shape } from '../shape.ts';
import { empty, type Tensor } from '../tensor.ts';
import { runKernel } from './run.ts';
import { sum } from './reduce.ts';

/** Same elements, another shape; one dimension may be -1. Shares the buffer. */
export function reshape(x: Tensor, shape: Shape): Tensor {
  const s = [...shape];
  const hole = s.indexOf(-1);
  if (hole >= 0) {
    const rest = sizeOf(s.filter((_, i) => i !== hole));
    s[hole] = rest === 0 ? 0 : x.size / rest;
  }
  if (sizeOf(s) !== x.size || s.some((d) => !Number.isInteger(d) || d < 0)) {
    throw new Error(`reshape: cannot reshape ${shapeStr(x.shape)} (${x.size} elements) to ${shapeStr(shape)}`);
  }
  if (sameShape(s, x.shape)) return x;
  const y = x.view(s);
  record('reshape', [x], [y], ([g]) => [reshape(g!, x.shape)]);
  return y;
}

export const flatten = (x: Tensor) => reshape(x, [x.size]);

export function unsqueeze(x: Tensor, axis: number): Tensor {
  const a = normAxis(axis, x.rank + 1, 'unsqueeze');
  return reshape(x, [...x.shape.slice(0, a), 1, ...x.shape.slice(a)]);
}

export function squeeze(x: Tensor, axis?: number): Tensor {
  if (axis === undefined)
    return reshape(
      x,
      x.shape.filter((d) => d !== 1),
    );
  const a = normAxis(axis, x.rank, 'squeeze');
  if (x.shape[a] !== 1) throw new Error(`squeeze: axis ${axis} of ${shapeStr(x.shape)} is not 1`);
  return reshape(
    x,
    x.shape.filter((_, i) => i !== a),
  );
}

function stridedCopy(x: Tensor, shape: number[], inStrides: number[], inOffset: number): Tensor {
  return runKernel('copy', [x], [{ shape, dtype: x.dtype }], {
    shape,
    inStrides,
    inOffset,
    outStrides: stridesOf(shape),
    outOffset: 0,
  })[0];
}

/** Reorders axes: y.shape[i] = x.shape[perm[i]]. */
export function permute(x: Tensor, perm: readonly number[]): Tensor {
  const p = perm.map((a) => normAxis(a, x.rank, 'permute'));
  if (p.length !== x.rank || new Set(p).size !== p.length) {
    throw new Error(`permute: ${JSON.stringify(perm)} is not a permutation of the axes of ${shapeStr(x.shape)}`);
  }
  if (p.every((a, i) => a === i)) return x;
  const xs = stridesOf(x.shape);
  const y = stridedCopy(
    x,
    p.map((a) => x.shape[a]),
    p.map((a) => xs[a]),
    0,
  );
  const inv = new Array<number>(p.length);
  p.forEach((a, i) => {
    inv[a] = i;
  });
  record('permute', [x], [y], ([g]) => [permute(g!, inv)]);
  return y;
}

/** Swaps two axes (default: the last two). */
export function transpose(x: Tensor, a = -2, b = -1): Tensor {
  const perm = Array.from({ length: x.rank }, (_, i) => i);
  const i = normAxis(a, x.rank, 'transpose'),
    j = normAxis(b, x.rank, 'transpose');
  [perm[i], perm[j]] = [perm[j], perm[i]];
  return permute(x, perm);
}

/** Broadcasts x to `shape` (numpy rules), copying. */
export function expand(x: Tensor, shape: Shape): Tensor {
  const out = broadcastShapes('expand', x.shape, shape);
  if (!sameShape(out, shape)) throw new Error(`expand: cannot expand ${shapeStr(x.shape)} to ${shapeStr(shape)}`);
  if (sameShape(x.shape, shape)) return x;
  const y = stridedCopy(x, out, broadcastStrides(x.shape, out), 0);
  record('expand', [x], [y], ([g]) => [sumTo(g!, x.shape)]);
  return y;
}

/** Sums g over the axes that broadcasting added or stretched, giving `shape`. */
export function sumTo(g: Tensor, shape: Shape): Tensor {
  if (sameShape(g.shape, shape)) return g;
  const lead = g.rank - shape.length;
  const axes: number[] = [];
  for (let i = 0; i < g.rank; i++) {
    if (i < lead || (shape[i - lead] === 1 && g.shape[i] !== 1)) axes.push(i);
  }
  return reshape(sum(g, axes, true), shape);
}

/** x[start:end] along `axis` (end exclusive; negatives count from the end). */
export function slice(x: Tensor, axis: number, start: number, end?: number): Tensor {
  const a = normAxis(axis, x.rank, 'slice');
  const d = x.shape[a];
  const s = start < 0 ? start + d : start;
  const e = end === undefined ? d : end < 0 ? end + d : end;
  if (s < 0 || e > d || s > e) throw new Error(`slice: [${start}, ${end}) out of range for axis ${axis} of ${shapeStr(x.shape)}`);
  if (s === 0 && e === d) return x;
  const shape = [...x.shape];
  shape[a] = e - s;
  const xs = stridesOf(x.shape);
  const y = stridedCopy(x, shape, xs, s * xs[a]);
  record('slice', [x], [y], ([g]) => {
    const pieces: Tensor[] = [];
    const pad = (n: number) => {
      const ps = [...x.shape];
      ps[a] = n;
      pieces.push(zerosOf(ps, g!));
    };
    if (s > 0) pad(s);
    pieces.push(g!);
    if (e < d) pad(d - e);
    return [concat(pieces, a)];
  });
  return y;
}

function zerosOf(shape: number[], like: Tensor): Tensor {
  const t = empty(shape, like.dtype, like.backend);
  t.backend.run('fill', [], [t.buffer], { size: t.size, value: 0 });
  return t;
}

/** Joins tensors along an existing axis. */
export function concat(xs: readonly Tensor[], axis: number): Tensor {
  if (!xs.length) throw new Error('concat: no tensors');
  const a = normAxis(axis, xs[0].rank, 'concat');
  for (const t of xs) {
    if (t.rank !== xs[0].rank || t.dtype !== xs[0].dtype || t.shape.some((d, i) => i !== a && d !== xs[0].shape[i])) {
      throw new Error(`concat: ${t.dtype}${shapeStr(t.shape)} does not fit ${xs[0].dtype}${shapeStr(xs[0].shape)} along axis ${axis}`);
    }
  }
  if (xs.length === 1) return xs[0];
  const shape = [...xs[0].shape];
  shape[a] = xs.reduce((n, t) => n + t.shape[a], 0);
  const y = empty(shape, xs[0].dtype, xs[0].backend);
  const ys = stridesOf(shape);
  let off = 0;
  for (const t of xs) {
    if (t.size) {
      y.backend.run('copy', [t.buffer], [y.buffer], {
        shape: [...t.shape],
        inStrides: stridesOf(t.shape),
        inOffset: 0,
        outStrides: ys,
        outOffset: off * ys[a],
      });
    }
    off += t.shape[a];
  }
  record('concat', xs, [y], ([g]) => {
    let o = 0;
    return xs.map((t) => {
      const p = slice(g!, a, o, o + t.shape[a]);
      o += t.shape[a];
      return p;
    });
  });
  return y;
}

/** Splits along `axis` into pieces of the given sizes. */
export function split(x: Tensor, sizes: readonly number[], axis: number): Tensor[] {
  const a = normAxis(axis, x.rank, 'split');
  if (sizes.reduce((n, s) => n + s, 0) !== x.shape[a]) {
    throw new Error(`split: sizes ${JSON.stringify(sizes)} do not add up to axis ${axis} of ${shapeStr(x.shape)}`);
  }
  let o = 0;
  return sizes.map((s) => {
    const p = slice(x, a, o, o + s);
    o += s;
    return p;
  });
}

/** Stacks same-shaped tensors along a new axis. */
export function stack(xs: readonly Tensor[], axis = 0): Tensor {
  return concat(
    xs.map((t) => unsqueeze(t, axis)),
    axis,
  );
}
