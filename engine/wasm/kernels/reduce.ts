// The float32 reductions of engine/cpu/kernels/reduce.ts in WebAssembly SIMD: x viewed as
// [outer, len, inner], out[o, i] = sum / max / min over k of x[o, k, i], and argmax (int32).
//   inner = 1 (contiguous rows): engine/wasm/loops.ts rowReduce, 16 lanes in blocks of about
//     sqrt(len / 16) vectors, combined in one fixed order;
//   inner > 1: columns side by side, loops.ts columnReduce, blocks of about sqrt(len) rows.
// Sums are float32 in a fixed order that depends on the shape alone (the scalar kernel sums in
// float64): within gamma_D * sum |x| (D: rowDepth(len), or colDepth(len)). max and min propagate
// NaN as the scalar kernel does and are otherwise exact, except that among zeros of both signs
// they may return the other zero (the scalar kernel returns the first it meets).
// argmax: the first k with the largest value (NaN never is), 0 when no value beats -inf; per lane
// the first maximum of that lane's elements, then the lanes by (value, lowest index).
// Splits: over outer rows when outer >= 2, else over inner columns (align 4) when inner >= 8; every
// output element is computed the same way whichever part computes it.
import type { TypedArray } from '../../dtype.ts';
import type { KernelParams, ReduceOp } from '../../kernels.ts';
import { type FunctionBuilder, type Local, ModuleBuilder } from '../assembler.ts';
import { kernelModule, type WasmKernel, type WasmSplit } from '../kernel.ts';
import { at, type Combine, columnReduce, hscalar, i32s, loadPartial, rowBlock, rowReduce, storePartial, v128s } from '../loops.ts';
import type { WasmHeap } from '../memory.ts';

/** Elements (outer * len * inner) from which a call splits over threads. */
export const SPLIT_MIN = 1 << 17;

/** The rows per block of a column reduction over len rows: about sqrt(len). */
export function colBlock(len: number): number {
  return Math.max(1, Math.round(Math.sqrt(len)));
}

/** The most additions a term of a column sum over len rows goes through. */
export function colDepth(len: number): number {
  const b = colBlock(len);
  return b + Math.ceil(len / b);
}

const OPS: Record<ReduceOp, { op: (f: FunctionBuilder) => Combine; identity: number }> = {
  sum: { op: (f) => (a, b) => f.f32x4.add(a, b), identity: 0 },
  max: { op: (f) => (a, b) => f.f32x4.max(a, b), identity: -Infinity },
  min: { op: (f) => (a, b) => f.f32x4.min(a, b), identity: Infinity },
};

/** argmax over count vectors from byte pointer p (advanced `step` bytes a vector), lane by lane: into best (value) and idx (k). */
function argmaxLoop(f: FunctionBuilder, p: Local, count: Local, step: Local, load: (into: Local) => void, best: Local, idx: Local): void {
  const k = f.local.declare('i32');
  const x = f.local.declare('v128'),
    gt = f.local.declare('v128');
  f.local.set(best, () => f.f32x4.const(-Infinity));
  f.local.set(idx, () => f.i32x4.const(0));
  f.for(k, 0, count, 1, () => {
    load(x);
    f.local.set(gt, () => f.f32x4.gt(x, best));
    f.local.set(best, () => f.v128.bitselect(x, best, gt));
    f.local.set(idx, () => f.v128.bitselect(() => f.i32x4.splat(k), idx, gt));
    f.local.set(p, () => f.i32.add(p, step));
  });
}

const module = kernelModule('reduce', (shared) => {
  const mb = new ModuleBuilder();
  mb.importMemory({ initial: 0, maximum: 65536, shared });
  const I = 'i32' as const;

  for (const [name, { op, identity }] of Object.entries(OPS)) {
    // contiguous rows [o0, o1) of len: (x, out, o0, o1, len, blk)
    mb.function(
      `rows_${name}`,
      [I, I, I, I, I, I],
      [],
      (f, x, out, o0, o1, len, blk) => {
        const { o, px } = i32s(f, 'o', 'px');
        f.for(o, o0, o1, 1, () => {
          f.local.set(px, () => at(f, x, () => f.i32.mul(o, len)));
          const v = rowReduce(f, { ps: [px], n: len, blk, term: ([t]) => f.local.get(t), op: op(f), identity });
          f.f32.store(
            () => at(f, out, o),
            () => hscalar(f, v, op(f)),
          );
        });
      },
      { export: true },
    );
    // columns [i0, i1) of rows [o0, o1): (x, out, o0, o1, len, inner, i0, i1, blk)
    mb.function(
      `cols_${name}`,
      [I, I, I, I, I, I, I, I, I],
      [],
      (f, x, out, o0, o1, len, inner, i0, i1, blk) => {
        const { o, src, dst, n, stride } = i32s(f, 'o', 'src', 'dst', 'n', 'stride');
        f.local.set(stride, () => f.i32.shl(inner, 2));
        f.local.set(n, () => f.i32.sub(i1, i0));
        f.for(o, o0, o1, 1, () => {
          f.local.set(src, () => at(f, x, () => f.i32.add(() => f.i32.mul(() => f.i32.mul(o, len), inner), i0)));
          f.local.set(dst, () => at(f, out, () => f.i32.add(() => f.i32.mul(o, inner), i0)));
          columnReduce(f, { src, out: dst, n, count: len, stride, blk, op: op(f), identity });
        });
      },
      { export: true },
    );
  }

  // argmax of contiguous rows [o0, o1): (x, out, o0, o1, len)
  mb.function(
    'argmax_rows',
    [I, I, I, I, I],
    [],
    (f, x, out, o0, o1, len) => {
      const { o, p, n4, rem, step, bestI, arg } = i32s(f, 'o', 'p', 'n4', 'rem', 'step', 'bestI', 'arg');
      const [best, idx, base, x0] = v128s(f, 4);
      const bl = f.local.declare('f32'),
        bestV = f.local.declare('f32');
      f.local.set(step, 16);
      f.for(o, o0, o1, 1, () => {
        f.local.set(p, () => at(f, x, () => f.i32.mul(o, len)));
        f.local.set(n4, () => f.i32.shr_u(len, 2));
        // lane l sees elements 4k + l; idx holds k, made 4k + l after
        argmaxLoop(f, p, n4, step, (into) => f.local.set(into, () => f.v128.load(p)), best, idx);
        f.local.set(idx, () =>
          f.i32x4.add(
            () => f.i32x4.shl(idx, 2),
            () => f.i32x4.const(0, 1, 2, 3),
          ),
        );
        // the last len % 4 (-inf in the missing lanes: never greater)
        f.local.set(rem, () => f.i32.and(len, 3));
        f.if(rem, () => {
          loadPartial(f, p, rem, x0);
          f.local.set(base, () =>
            f.i32x4.lt_s(
              () => f.i32x4.const(0, 1, 2, 3),
              () => f.i32x4.splat(rem),
            ),
          );
          f.local.set(x0, () => f.v128.bitselect(x0, () => f.f32x4.const(-Infinity), base));
          f.local.set(base, () => f.f32x4.gt(x0, best));
          f.local.set(best, () => f.v128.bitselect(x0, best, base));
          f.local.set(idx, () =>
            f.v128.bitselect(
              () =>
                f.i32x4.add(
                  () => f.i32x4.splat(() => f.i32.shl(n4, 2)),
                  () => f.i32x4.const(0, 1, 2, 3),
                ),
              idx,
              base,
            ),
          );
        });
        // the largest value, the lowest index among equals (a lane that never beat -inf holds its
        // first index l, and loses to lane 0, which holds 0 then: nothing beat -inf gives 0)
        f.local.set(bestV, () => f.f32x4.extract_lane(0, best));
        f.local.set(arg, () => f.i32x4.extract_lane(0, idx));
        for (let lane = 1; lane < 4; lane++) {
          f.local.set(bl, () => f.f32x4.extract_lane(lane, best));
          f.local.set(bestI, () => f.i32x4.extract_lane(lane, idx));
          f.if(
            () =>
              f.i32.or(
                () => f.f32.gt(bl, bestV),
                () =>
                  f.i32.and(
                    () => f.f32.eq(bl, bestV),
                    () => f.i32.lt_s(bestI, arg),
                  ),
              ),
            () => {
              f.local.set(bestV, bl);
              f.local.set(arg, bestI);
            },
          );
        }
        f.i32.store(() => at(f, out, o), arg);
      });
    },
    { export: true },
  );

  // argmax over columns [i0, i1) of rows [o0, o1): (x, out, o0, o1, len, inner, i0, i1)
  mb.function(
    'argmax_cols',
    [I, I, I, I, I, I, I, I],
    [],
    (f, x, out, o0, o1, len, inner, i0, i1) => {
      const { o, i, p, q, rem, stride, end4 } = i32s(f, 'o', 'i', 'p', 'q', 'rem', 'stride', 'end4');
      const [best, idx] = v128s(f, 2);
      f.local.set(stride, () => f.i32.shl(inner, 2));
      f.local.set(end4, () => f.i32.add(i0, () => f.i32.and(() => f.i32.sub(i1, i0), -4)));
      f.local.set(rem, () => f.i32.and(() => f.i32.sub(i1, i0), 3));
      f.for(o, o0, o1, 1, () => {
        const start = () => at(f, x, () => f.i32.add(() => f.i32.mul(() => f.i32.mul(o, len), inner), i));
        f.for(i, i0, end4, 4, () => {
          f.local.set(p, start);
          argmaxLoop(f, p, len, stride, (into) => f.local.set(into, () => f.v128.load(p)), best, idx);
          f.v128.store(() => at(f, out, () => f.i32.add(() => f.i32.mul(o, inner), i)), idx);
        });
        f.if(rem, () => {
          f.local.set(i, end4);
          f.local.set(p, start);
          argmaxLoop(f, p, len, stride, (into) => loadPartial(f, p, rem, into), best, idx);
          f.local.set(q, () => at(f, out, () => f.i32.add(() => f.i32.mul(o, inner), i)));
          storePartial(f, q, rem, idx);
        });
      });
    },
    { export: true },
  );
  return mb;
});

type Shape3 = { outer: number; len: number; inner: number };

/** Over outer rows when outer >= 2, else over inner columns (inner >= 8), else none. */
function splitAxis(p: Shape3): 'outer' | 'inner' | null {
  if (p.outer * p.len * p.inner < SPLIT_MIN) return null;
  if (p.outer >= 2) return 'outer';
  return p.inner >= 8 ? 'inner' : null;
}

function reduceRange(
  heap: WasmHeap,
  name: string,
  x: TypedArray,
  out: TypedArray,
  p: Shape3,
  axis: 'outer' | 'inner',
  r0: number,
  r1: number,
): void {
  if (r1 <= r0) return;
  const { outer, len, inner } = p;
  const [o0, o1] = axis === 'outer' ? [r0, r1] : [0, outer];
  const [i0, i1] = axis === 'inner' ? [r0, r1] : [0, inner];
  const e = module(heap);
  const xo = heap.offsetOf(x),
    oo = heap.offsetOf(out);
  if (name === 'argmax') {
    if (inner === 1) e.argmax_rows(xo, oo, o0, o1, len);
    else e.argmax_cols(xo, oo, o0, o1, len, inner, i0, i1);
  } else if (inner === 1) e[`rows_${name}`](xo, oo, o0, o1, len, rowBlock(len));
  else e[`cols_${name}`](xo, oo, o0, o1, len, inner, i0, i1, colBlock(len));
}

/** The whole call (an empty reduction, len = 0, gives the identity: 0, -inf, inf; argmax 0). */
function runAll(heap: WasmHeap, name: string, x: TypedArray, out: TypedArray, p: Shape3): void {
  if (p.len === 0) {
    out.fill(name === 'argmax' || name === 'sum' ? 0 : name === 'max' ? -Infinity : Infinity, 0, p.outer * p.inner);
    return;
  }
  if (p.inner === 1 || p.outer > 1) reduceRange(heap, name, x, out, p, 'outer', 0, p.outer);
  else reduceRange(heap, name, x, out, p, 'inner', 0, p.inner);
}

function split<K extends 'reduce' | 'argmax'>(name: (p: KernelParams[K]) => string): WasmSplit<K> {
  return {
    range: (p) => {
      const axis = p.len === 0 ? null : splitAxis(p);
      return axis === 'outer' ? { n: p.outer, align: 1 } : axis === 'inner' ? { n: p.inner, align: 4 } : null;
    },
    part: (heap, [x], [out], p, r0, r1) => reduceRange(heap, name(p), x, out, p, splitAxis(p)!, r0, r1),
  };
}

export const reduce: WasmKernel<'reduce'> = {
  accepts: ([x], [out]) => x instanceof Float32Array && out instanceof Float32Array,
  run: (heap, [x], [out], p) => runAll(heap, p.op, x, out, p),
  split: split<'reduce'>((p) => p.op),
};

export const argmax: WasmKernel<'argmax'> = {
  accepts: ([x], [out]) => x instanceof Float32Array && out instanceof Int32Array,
  run: (heap, [x], [out], p) => runAll(heap, 'argmax', x, out, p),
  split: split<'argmax'>(() => 'argmax'),
};
