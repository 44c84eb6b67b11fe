// The float32 RMSNorm kernels of engine/cpu/kernels/rmsnorm.ts in WebAssembly SIMD.
//   forward, per row: ss = sum x^2 (engine/wasm/loops.ts's fixed-order blocked sum),
//     rstd = 1 / sqrt(ss / cols + eps), y = (x rstd) w;
//   backward, per row: dot = sum (w dy) x, c = rstd^3 dot / cols, dx = (rstd w) dy - x c, and
//     dw = sum over rows of (x rstd) dy.
// dw sums across rows, so it goes through fixed row blocks (about sqrt(rows) rows each, decided by
// rows alone): each block's float32 sum in row order, from 0, into its own row of partials, then
// the partials summed in block order (loops.ts columnSum). A split gives each part whole blocks
// (align = the block), so dw is the same bits for any split, and run does the same in one part.
// Both kernels split over rows (the forward when rows * cols >= 2^15, the backward then too).
import type { TypedArray } from '../../dtype.ts';
import type { KernelParams } from '../../kernels.ts';
import { ModuleBuilder } from '../assembler.ts';
import { kernelModule, type WasmKernel } from '../kernel.ts';
import { addV, at, columnSum, hsplat, i32s, mapLoop, rowBlock, rowReduce } from '../loops.ts';
import { VecMath } from '../math.ts';
import type { WasmHeap } from '../memory.ts';

/** Elements (rows * cols) from which a call splits over threads (rows: at least 2). */
export const SPLIT_MIN = 1 << 15;

/** The rows of one dw block for `rows` rows: about sqrt(rows). */
export function dwBlock(rows: number): number {
  return Math.max(1, Math.round(Math.sqrt(rows)));
}

const module = kernelModule('rmsnorm', (shared) => {
  const mb = new ModuleBuilder();
  mb.importMemory({ initial: 0, maximum: 65536, shared });
  const I = 'i32' as const;

  // rows [r0, r1): (x, w, y, rstd, r0, r1, cols, blk, eps)
  mb.function(
    'rmsnorm',
    [I, I, I, I, I, I, I, I, 'f32'],
    [],
    (f, x, w, y, rstd, r0, r1, cols, blk, eps) => {
      const m = new VecMath(f);
      const add = addV(f);
      const { r, px, py } = i32s(f, 'r', 'px', 'py');
      const rs = f.local.declare('v128');
      f.for(r, r0, r1, 1, () => {
        f.local.set(px, () => at(f, x, () => f.i32.mul(r, cols)));
        f.local.set(py, () => at(f, y, () => f.i32.mul(r, cols)));
        const ss = rowReduce(f, { ps: [px], n: cols, blk, term: ([v]) => f.f32x4.mul(v, v), op: add, identity: 0 });
        f.local.set(rs, () =>
          m.rsqrt(() =>
            f.f32x4.add(
              () =>
                f.f32x4.div(
                  () => hsplat(f, ss, add),
                  () => f.f32x4.splat(() => f.f32.convert_i32_u(cols)),
                ),
              () => f.f32x4.splat(eps),
            ),
          ),
        );
        f.f32.store(
          () => at(f, rstd, r),
          () => f.f32x4.extract_lane(0, rs),
        );
        mapLoop(f, [px, w], py, cols, 4, ([v, wv]) => f.f32x4.mul(() => f.f32x4.mul(v, rs), wv));
      });
    },
    { export: true },
  );

  // rows [r0, r1) (r0 a multiple of rb): (x, w, rstd, dy, dx, partials, r0, r1, cols, blk, rb); the
  // dw partial of block b is partials[b * cols ...]
  mb.function(
    'rmsnorm_bwd',
    [I, I, I, I, I, I, I, I, I, I, I],
    [],
    (f, x, w, rstd, dy, dx, partials, r0, r1, cols, blk, rb) => {
      const add = addV(f);
      const { r, off, px, pd, po, pp } = i32s(f, 'r', 'off', 'px', 'pd', 'po', 'pp');
      const rs = f.local.declare('v128'),
        c = f.local.declare('v128');
      f.for(r, r0, r1, 1, () => {
        f.local.set(off, () => f.i32.shl(() => f.i32.mul(r, cols), 2));
        f.local.set(px, () => f.i32.add(x, off));
        f.local.set(pd, () => f.i32.add(dy, off));
        f.local.set(po, () => f.i32.add(dx, off));
        // this row's block partial; zeroed at the block's first row
        f.local.set(pp, () => at(f, partials, () => f.i32.mul(() => f.i32.div_u(r, rb), cols)));
        f.if(
          () => f.i32.eqz(() => f.i32.rem_u(r, rb)),
          () => mapLoop(f, [], pp, cols, 4, () => f.f32x4.const(0)),
        );
        f.local.set(rs, () => f.v128.load32_splat(() => at(f, rstd, r)));
        const dot = rowReduce(f, {
          ps: [w, pd, px],
          n: cols,
          blk,
          term: ([wv, g, v]) => f.f32x4.mul(() => f.f32x4.mul(wv, g), v),
          op: add,
          identity: 0,
        });
        // c = rs^3 dot / cols
        f.local.set(c, () =>
          f.f32x4.div(
            () =>
              f.f32x4.mul(
                () => f.f32x4.mul(() => f.f32x4.mul(rs, rs), rs),
                () => hsplat(f, dot, add),
              ),
            () => f.f32x4.splat(() => f.f32.convert_i32_u(cols)),
          ),
        );
        mapLoop(f, [w, pd, px], po, cols, 4, ([wv, g, v]) =>
          f.f32x4.sub(
            () => f.f32x4.mul(() => f.f32x4.mul(rs, wv), g),
            () => f.f32x4.mul(v, c),
          ),
        );
        mapLoop(f, [px, pd, pp], pp, cols, 4, ([v, g, acc]) => f.f32x4.add(acc, () => f.f32x4.mul(() => f.f32x4.mul(v, rs), g)));
      });
    },
    { export: true },
  );

  // dw = the partials of `blocks` blocks summed in block order: (partials, dw, blocks, cols)
  mb.function(
    'rmsnorm_dw',
    [I, I, I, I],
    [],
    (f, partials, dw, blocks, cols) => {
      const stride = f.local.declare('i32');
      f.local.set(stride, () => f.i32.shl(cols, 2));
      columnSum(f, { src: partials, out: dw, n: cols, count: blocks, stride, blk: blocks });
    },
    { export: true },
  );
  return mb;
});

const isF32 = (xs: TypedArray[]) => xs.every((x) => x instanceof Float32Array);

function forwardRows(
  heap: WasmHeap,
  [x, w]: TypedArray[],
  [y, rstd]: TypedArray[],
  p: KernelParams['rmsnorm'],
  r0: number,
  r1: number,
): void {
  if (r1 <= r0) return;
  const { cols, eps } = p;
  module(heap).rmsnorm(heap.offsetOf(x), heap.offsetOf(w), heap.offsetOf(y), heap.offsetOf(rstd), r0, r1, cols, rowBlock(cols), eps);
}

export const rmsnorm: WasmKernel<'rmsnorm'> = {
  accepts: (ins, outs) => isF32(ins) && isF32(outs),
  run: (heap, ins, outs, p) => forwardRows(heap, ins, outs, p, 0, p.rows),
  split: {
    range: (p) => (p.rows >= 2 && p.rows * p.cols >= SPLIT_MIN ? { n: p.rows, align: 1 } : null),
    part: (heap, ins, outs, p, r0, r1) => forwardRows(heap, ins, outs, p, r0, r1),
  },
};

const blocksOf = (rows: number) => Math.ceil(rows / dwBlock(rows));

function backwardRows(
  heap: WasmHeap,
  [x, w, rstd, dy]: TypedArray[],
  [dx]: TypedArray[],
  p: KernelParams['rmsnorm_bwd'],
  r0: number,
  r1: number,
  partials: number,
): void {
  if (r1 <= r0 || p.cols === 0) return;
  const { cols, rows } = p;
  const o = [x, w, rstd, dy, dx].map((a) => heap.offsetOf(a));
  module(heap).rmsnorm_bwd(...o, partials, r0, r1, cols, rowBlock(cols), dwBlock(rows));
}

function finishDw(heap: WasmHeap, outs: TypedArray[], p: KernelParams['rmsnorm_bwd'], partials: number): void {
  if (p.cols === 0) return;
  if (p.rows === 0) {
    outs[1].fill(0, 0, p.cols);
    return;
  }
  module(heap).rmsnorm_dw(partials, heap.offsetOf(outs[1]), blocksOf(p.rows), p.cols);
}

const partialBytes = (p: KernelParams['rmsnorm_bwd']) => 4 * blocksOf(p.rows) * p.cols;

export const rmsnorm_bwd: WasmKernel<'rmsnorm_bwd'> = {
  accepts: (ins, outs) => isF32(ins) && isF32(outs),
  run: (heap, ins, outs, p) => {
    const partials = heap.alloc(partialBytes(p));
    try {
      backwardRows(heap, ins, outs, p, 0, p.rows, partials);
      finishDw(heap, outs, p, partials);
    } finally {
      heap.free(partials);
    }
  },
  split: {
    range: (p) => (p.rows >= 2 && p.rows * p.cols >= SPLIT_MIN ? { n: p.rows, align: dwBlock(p.rows) } : null),
    sharedScratch: partialBytes,
    part: (heap, ins, outs, p, r0, r1, _scratch, shared) => backwardRows(heap, ins, outs, p, r0, r1, shared),
    finish: (heap, _ins, outs, p, shared) => finishDw(heap, outs, p, shared),
  },
};
