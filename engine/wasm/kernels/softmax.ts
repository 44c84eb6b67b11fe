// The float32 row kernels of engine/cpu/kernels/softmax.ts in WebAssembly SIMD: softmax and
// log-softmax, their backward, cross-entropy with int32 targets (ignoreIndex) and its backward.
// Rows are independent: each kernel splits over ranges of rows, and a row's outputs are the same
// whichever range computes it.
//
// Per row, in float32 (the scalar kernels work in float64 and round once):
//   m = max of the row, NaN skipped (as the scalar `x > m`);
//   softmax: e_j = exp(x_j - m), the difference carried as hi + lo (TwoSum) into exp's range
//     reduction so that small probabilities keep their accuracy; s = sum e_j (engine/wasm/loops.ts's
//     fixed-order blocked sum); out_j = e_j / s;
//   log-softmax and cross-entropy: the terms equal to 1 (x_j = m) are counted, c, apart from the
//     others, s1 = sum over x_j < m of exp(x_j - m), and log s = log1p((c - 1) + s1): when the
//     largest probability is near 1, log s is near 0 and keeps its relative accuracy (log(1 + s1)
//     rounded would lose it). out_j = (x_j - m) - log s (two non-positive terms: no cancellation);
//     loss = (m - x_t) + log s (two non-negative terms);
//   cross-entropy backward: out_j = (e_j / s) g, s = c + s1, and at the target
//     (p_t - 1) g = -((c - 1) + s1) / s * g when x_t = m (no cancellation), (e_t / s - 1) g otherwise
//     (then p_t <= 1/2);
//   softmax backward: s = sum dy_j y_j, dx_j = y_j (dy_j - s); log: s = sum dy_j, dx_j = dy_j - exp(y_j) s.
// Special rows behave as the scalar kernels': a NaN anywhere in a row makes the row's outputs NaN, a
// row of -inf gives NaN, a +inf gives NaN. Target checks (out of range and not ignoreIndex) throw
// the scalar kernel's error before anything runs.
import type { TypedArray } from '../../dtype.ts';
import type { KernelParams } from '../../kernels.ts';
import { type FunctionBuilder, type Local, ModuleBuilder, type Operand } from '../assembler.ts';
import { kernelModule, type WasmKernel, type WasmSplit } from '../kernel.ts';
import { type Combine, hsplat, i32s, mapLoop, rowBlock, rowReduce } from '../loops.ts';
import { VecMath } from '../math.ts';
import type { WasmHeap } from '../memory.ts';

/** Elements (rows * cols) from which a call splits over threads (rows: at least 2). */
export const SPLIT_MIN = 1 << 15;

const ONE_BITS = 0x3f800000;

/** The helpers of one function: the row's max, sums, the exp of a difference. */
class Rows {
  readonly m: VecMath;
  readonly add: Combine;
  readonly pmax: Combine;

  constructor(
    readonly f: FunctionBuilder,
    readonly n: Local,
    readonly blk: Local,
  ) {
    this.m = new VecMath(f);
    this.add = (a, b) => f.f32x4.add(a, b);
    this.pmax = (a, b) => f.f32x4.pmax(a, b);
  }

  /** A local holding the row's max in every lane (NaN skipped: pmax(acc, x) keeps acc when x is NaN). */
  max(px: Local): Local {
    const f = this.f;
    const v = rowReduce(f, { ps: [px], n: this.n, blk: this.blk, term: ([x]) => f.local.get(x), op: this.pmax, identity: -Infinity });
    return this.m.let(() => hsplat(f, v, this.pmax));
  }

  /** A local with the fixed-order sum of term over the row in every lane. */
  sum(ps: Local[], term: (xs: Local[]) => void, store?: Local): Local {
    const v = rowReduce(this.f, { ps, n: this.n, blk: this.blk, term, op: this.add, identity: 0, store });
    return this.m.let(() => hsplat(this.f, v, this.add));
  }

  /** exp(x - m) with the difference as hi + lo (TwoSum, exact), lo set to 0 where it is NaN (x or m infinite). */
  expDiff(x: Local, negM: Local): void {
    const f = this.f,
      m = this.m;
    const d = m.let(() => f.f32x4.add(x, negM));
    const bb = m.let(() => f.f32x4.sub(d, x));
    const lo = m.let(() =>
      f.f32x4.add(
        () => f.f32x4.sub(x, () => f.f32x4.sub(d, bb)),
        () => f.f32x4.sub(negM, bb),
      ),
    );
    m.exp(d, () => f.v128.and(lo, () => f.f32x4.eq(lo, lo)));
  }

  /**
   * For log-softmax and cross-entropy: c = the count of x_j - m = 0, s1 = the sum of the other
   * exp(x_j - m) (NaN differences included, so NaN propagates), log s = log1p((c - 1) + s1).
   */
  logStats(px: Local, mx: Local): { c: Local; s1: Local; logS: Local } {
    const f = this.f,
      m = this.m;
    const s1 = this.sum([px], ([x]) => {
      const d = m.let(() => f.f32x4.sub(x, mx));
      f.v128.andnot(
        () => m.exp(d),
        () => f.f32x4.eq(d, m.c(0)),
      );
    });
    const c = this.sum([px], ([x]) => f.v128.and(() => f.f32x4.eq(() => f.f32x4.sub(x, mx), m.c(0)), m.ci(ONE_BITS)));
    const logS = m.let(() => m.log1p(() => f.f32x4.add(() => f.f32x4.sub(c, m.c(1)), s1)));
    return { c, s1, logS };
  }
}

/** for r in [r0, r1): body(r), with the row's byte offset r * cols * 4 in `off`. */
function forRows(f: FunctionBuilder, r0: Local, r1: Local, cols: Local, body: (r: Local, off: Local) => void): void {
  const { r, off } = i32s(f, 'r', 'off');
  f.for(r, r0, r1, 1, () => {
    f.local.set(off, () => f.i32.shl(() => f.i32.mul(r, cols), 2));
    body(r, off);
  });
}

const ptr = (f: FunctionBuilder, base: Local, off: Operand) => f.i32.add(base, off);

function build(shared: boolean): ModuleBuilder {
  const mb = new ModuleBuilder();
  mb.importMemory({ initial: 0, maximum: 65536, shared });
  const I = 'i32' as const;

  // softmax / log-softmax of rows [r0, r1): (x, out, r0, r1, cols, blk)
  for (const log of [false, true])
    mb.function(
      log ? 'log_softmax' : 'softmax',
      [I, I, I, I, I, I],
      [],
      (f, x, out, r0, r1, cols, blk) => {
        const R = new Rows(f, cols, blk),
          m = R.m;
        const { px, po } = i32s(f, 'px', 'po');
        forRows(f, r0, r1, cols, (_r, off) => {
          f.local.set(px, () => ptr(f, x, off));
          f.local.set(po, () => ptr(f, out, off));
          const mx = R.max(px);
          if (log) {
            const { logS } = R.logStats(px, mx);
            mapLoop(f, [px], po, cols, 4, ([v]) => f.f32x4.sub(() => f.f32x4.sub(v, mx), logS));
          } else {
            const negM = m.let(() => f.f32x4.neg(mx));
            const s = R.sum([px], ([v]) => R.expDiff(v, negM), po);
            mapLoop(f, [po], po, cols, 4, ([e]) => f.f32x4.div(e, s));
          }
        });
      },
      { export: true },
    );

  // the backward of softmax / log-softmax: (y, dy, dx, r0, r1, cols, blk)
  for (const log of [false, true])
    mb.function(
      log ? 'log_softmax_bwd' : 'softmax_bwd',
      [I, I, I, I, I, I, I],
      [],
      (f, y, dy, dx, r0, r1, cols, blk) => {
        const R = new Rows(f, cols, blk),
          m = R.m;
        const { py, pd, po } = i32s(f, 'py', 'pd', 'po');
        forRows(f, r0, r1, cols, (_r, off) => {
          f.local.set(py, () => ptr(f, y, off));
          f.local.set(pd, () => ptr(f, dy, off));
          f.local.set(po, () => ptr(f, dx, off));
          if (log) {
            const s = R.sum([pd], ([g]) => f.local.get(g));
            mapLoop(f, [py, pd], po, cols, 4, ([v, g]) => f.f32x4.sub(g, () => f.f32x4.mul(() => m.exp(v), s)));
          } else {
            const s = R.sum([py, pd], ([v, g]) => f.f32x4.mul(g, v));
            mapLoop(f, [py, pd], po, cols, 4, ([v, g]) => f.f32x4.mul(v, () => f.f32x4.sub(g, s)));
          }
        });
      },
      { export: true },
    );

  // cross-entropy loss of rows [r0, r1): (x, targets, loss, r0, r1, cols, blk, ignore)
  mb.function(
    'cross_entropy',
    [I, I, I, I, I, I, I, I],
    [],
    (f, x, targets, loss, r0, r1, cols, blk, ignore) => {
      const R = new Rows(f, cols, blk),
        m = R.m;
      const { px, t } = i32s(f, 'px', 't');
      forRows(f, r0, r1, cols, (r, off) => {
        const lossAt = () => f.i32.add(loss, () => f.i32.shl(r, 2));
        f.local.set(t, () => f.i32.load(() => f.i32.add(targets, () => f.i32.shl(r, 2))));
        f.if(
          () => f.i32.eq(t, ignore),
          () => f.f32.store(lossAt, 0),
          () => {
            f.local.set(px, () => ptr(f, x, off));
            const mx = R.max(px);
            const { logS } = R.logStats(px, mx);
            const xt = m.let(() => f.v128.load32_splat(() => f.i32.add(px, () => f.i32.shl(t, 2))));
            f.f32.store(lossAt, () => f.f32x4.extract_lane(0, () => f.f32x4.add(() => f.f32x4.sub(mx, xt), logS)));
          },
        );
      });
    },
    { export: true },
  );

  // its backward: (x, targets, g, dx, r0, r1, cols, blk, ignore)
  mb.function(
    'cross_entropy_bwd',
    [I, I, I, I, I, I, I, I, I],
    [],
    (f, x, targets, g, dx, r0, r1, cols, blk, ignore) => {
      const R = new Rows(f, cols, blk),
        m = R.m;
      const { px, po, t, pt } = i32s(f, 'px', 'po', 't', 'pt');
      forRows(f, r0, r1, cols, (r, off) => {
        f.local.set(t, () => f.i32.load(() => f.i32.add(targets, () => f.i32.shl(r, 2))));
        f.local.set(po, () => ptr(f, dx, off));
        f.if(
          () => f.i32.eq(t, ignore),
          () => mapLoop(f, [], po, cols, 4, () => f.f32x4.const(0)),
          () => {
            f.local.set(px, () => ptr(f, x, off));
            const mx = R.max(px);
            const { c, s1 } = R.logStats(px, mx);
            const s = m.let(() => f.f32x4.add(c, s1));
            const negM = m.let(() => f.f32x4.neg(mx));
            const gv = m.let(() => f.v128.load32_splat(() => f.i32.add(g, () => f.i32.shl(r, 2))));
            // x_t - m, read before dx is written (dx may be x)
            f.local.set(pt, () => f.i32.shl(t, 2));
            const dt = m.let(() => f.f32x4.sub(() => f.v128.load32_splat(() => f.i32.add(px, pt)), mx));
            mapLoop(f, [px], po, cols, 4, ([v]) => f.f32x4.mul(() => f.f32x4.div(() => R.expDiff(v, negM), s), gv));
            // the target: (p_t - 1) g
            const atMax = () => f.f32x4.neg(() => f.f32x4.div(() => f.f32x4.add(() => f.f32x4.sub(c, m.c(1)), s1), s));
            const below = () => f.f32x4.sub(() => f.f32x4.div(() => m.exp(dt), s), m.c(1));
            f.f32.store(
              () => f.i32.add(po, pt),
              () => f.f32x4.extract_lane(0, () => f.f32x4.mul(() => f.v128.bitselect(atMax, below, () => f.f32x4.eq(dt, m.c(0))), gv)),
            );
          },
        );
      });
    },
    { export: true },
  );
  return mb;
}

const module = kernelModule('softmax', build);

const isF32 = (x: TypedArray | undefined) => x instanceof Float32Array;

/** The targets' check of the scalar kernel (the same error), over rows [r0, r1). */
function checkTargets(targets: TypedArray, cols: number, ignore: number, r0: number, r1: number): void {
  for (let r = r0; r < r1; r++) {
    const t = targets[r];
    if (t !== ignore && (t < 0 || t >= cols)) throw new Error(`cross_entropy: target ${t} in row ${r} is out of range [0, ${cols})`);
  }
}

type RowKernel = 'softmax' | 'softmax_bwd' | 'cross_entropy' | 'cross_entropy_bwd';

function rowsOf(
  heap: WasmHeap,
  name: RowKernel,
  ins: TypedArray[],
  outs: TypedArray[],
  p: KernelParams[RowKernel],
  r0: number,
  r1: number,
) {
  if (r1 <= r0 || p.cols === 0) return;
  const e = module(heap);
  const off = ins.map((a) => heap.offsetOf(a));
  const o = heap.offsetOf(outs[0]);
  const blk = rowBlock(p.cols);
  switch (name) {
    case 'softmax':
      e[(p as KernelParams['softmax']).log ? 'log_softmax' : 'softmax'](off[0], o, r0, r1, p.cols, blk);
      return;
    case 'softmax_bwd':
      e[(p as KernelParams['softmax_bwd']).log ? 'log_softmax_bwd' : 'softmax_bwd'](off[0], off[1], o, r0, r1, p.cols, blk);
      return;
    case 'cross_entropy': {
      const { ignoreIndex } = p as KernelParams['cross_entropy'];
      checkTargets(ins[1], p.cols, ignoreIndex, r0, r1);
      e.cross_entropy(off[0], off[1], o, r0, r1, p.cols, blk, ignoreIndex | 0);
      return;
    }
    case 'cross_entropy_bwd': {
      const { ignoreIndex } = p as KernelParams['cross_entropy_bwd'];
      checkTargets(ins[1], p.cols, ignoreIndex, r0, r1);
      e.cross_entropy_bwd(off[0], off[1], off[2], o, r0, r1, p.cols, blk, ignoreIndex | 0);
      return;
    }
  }
}

function rowSplit<K extends RowKernel>(name: K): WasmSplit<K> {
  return {
    range: (p) => (p.rows >= 2 && p.rows * p.cols >= SPLIT_MIN ? { n: p.rows, align: 1 } : null),
    part: (heap, ins, outs, p, r0, r1) => rowsOf(heap, name, ins, outs, p, r0, r1),
  };
}

function rowKernel<K extends RowKernel>(
  name: K,
  accepts: (ins: TypedArray[], outs: TypedArray[], p: KernelParams[K]) => boolean,
): WasmKernel<K> {
  return {
    accepts,
    run: (heap, ins, outs, p) => rowsOf(heap, name, ins, outs, p, 0, p.rows),
    split: rowSplit(name),
  };
}

/** ignoreIndex must be an int32 for the comparison in WebAssembly (any other never matches a target). */
const int32Ignore = (p: { ignoreIndex: number }) => Number.isInteger(p.ignoreIndex) && (p.ignoreIndex | 0) === p.ignoreIndex;

export const softmax = rowKernel('softmax', ([x], [out]) => isF32(x) && isF32(out));
export const softmax_bwd = rowKernel('softmax_bwd', ([y, dy], [dx]) => isF32(y) && isF32(dy) && isF32(dx));
export const cross_entropy = rowKernel(
  'cross_entropy',
  ([x, t], [loss], p) => isF32(x) && t instanceof Int32Array && isF32(loss) && int32Ignore(p),
);
export const cross_entropy_bwd = rowKernel(
  'cross_entropy_bwd',
  ([x, t, g], [dx], p) => isF32(x) && t instanceof Int32Array && isF32(g) && isF32(dx) && int32Ignore(p),
);
