// The float32 indexing kernels of engine/cpu/kernels/indexing.ts in WebAssembly SIMD, with int32
// indices: gather (embedding rows), scatter_add (its backward) and onehot.
//   gather: out[i] = table[idx[i]], row copies; an index out of range stops the copy there and
//     throws the scalar kernel's error (the rows before it are written, as there).
//   scatter_add: out[r] = the float32 sum of the rows g[i] with idx[i] = r, i in increasing order,
//     from 0 (the scalar kernel sums in float64); the indices are all checked first, so an index
//     out of range throws before anything is written.
//   onehot: zeros, and 1 at idx[i] when it is in range.
// Splits: gather and onehot over output rows; scatter_add over columns (align 4), each part summing
// its columns of every row in the same index order, so the sums do not depend on the split.
import type { TypedArray } from '../../dtype.ts';
import type { KernelParams } from '../../kernels.ts';
import { ModuleBuilder } from '../assembler.ts';
import { kernelModule, type WasmKernel } from '../kernel.ts';
import { at, i32s, mapLoop } from '../loops.ts';
import type { WasmHeap } from '../memory.ts';

/** Elements written from which a call splits over threads. */
export const SPLIT_MIN = 1 << 16;

const module = kernelModule('indexing', (shared) => {
  const mb = new ModuleBuilder();
  mb.importMemory({ initial: 0, maximum: 65536, shared });
  const I = 'i32' as const;

  // out rows [i0, i1) = table rows idx[i]: (table, idx, out, i0, i1, rows, cols) -> the first position
  // with an index out of range, or -1
  mb.function(
    'gather',
    [I, I, I, I, I, I, I],
    [I],
    (f, table, idx, out, i0, i1, rows, cols) => {
      const { i, r, src, dst } = i32s(f, 'i', 'r', 'src', 'dst');
      f.for(i, i0, i1, 1, () => {
        f.local.set(r, () => f.i32.load(() => at(f, idx, i)));
        f.if(
          () => f.i32.ge_u(r, rows),
          () => f.return(i),
        );
        f.local.set(src, () => at(f, table, () => f.i32.mul(r, cols)));
        f.local.set(dst, () => at(f, out, () => f.i32.mul(i, cols)));
        mapLoop(f, [src], dst, cols, 4, ([v]) => f.local.get(v));
      });
      f.i32.const(-1);
    },
    { export: true },
  );

  // columns [c0, c1) of out [rows, cols] = the sums of g's rows by index: (g, idx, out, n, rows, cols,
  // c0, c1) -> the first position with an index out of range (nothing written), or -1
  mb.function(
    'scatter_add',
    [I, I, I, I, I, I, I, I],
    [I],
    (f, g, idx, out, n, rows, cols, c0, c1) => {
      const { i, r, src, dst, w } = i32s(f, 'i', 'r', 'src', 'dst', 'w');
      f.for(i, 0, n, 1, () => {
        f.if(
          () => f.i32.ge_u(() => f.i32.load(() => at(f, idx, i)), rows),
          () => f.return(i),
        );
      });
      f.local.set(w, () => f.i32.sub(c1, c0));
      f.for(r, 0, rows, 1, () => {
        f.local.set(dst, () => at(f, out, () => f.i32.add(() => f.i32.mul(r, cols), c0)));
        mapLoop(f, [], dst, w, 4, () => f.f32x4.const(0));
      });
      f.for(i, 0, n, 1, () => {
        f.local.set(r, () => f.i32.load(() => at(f, idx, i)));
        f.local.set(src, () => at(f, g, () => f.i32.add(() => f.i32.mul(i, cols), c0)));
        f.local.set(dst, () => at(f, out, () => f.i32.add(() => f.i32.mul(r, cols), c0)));
        mapLoop(f, [dst, src], dst, w, 4, ([acc, v]) => f.f32x4.add(acc, v));
      });
      f.i32.const(-1);
    },
    { export: true },
  );

  // rows [i0, i1) of out [n, depth]: (idx, out, i0, i1, depth)
  mb.function(
    'onehot',
    [I, I, I, I, I],
    [],
    (f, idx, out, i0, i1, depth) => {
      const { i, v, dst } = i32s(f, 'i', 'v', 'dst');
      f.for(i, i0, i1, 1, () => {
        f.local.set(dst, () => at(f, out, () => f.i32.mul(i, depth)));
        mapLoop(f, [], dst, depth, 4, () => f.f32x4.const(0));
        f.local.set(v, () => f.i32.load(() => at(f, idx, i)));
        f.if(
          () => f.i32.lt_u(v, depth),
          () => f.f32.store(() => at(f, dst, v), 1),
        );
      });
    },
    { export: true },
  );
  return mb;
});

function outOfRange(op: string, idx: TypedArray, at: number, rows: number): Error {
  return new Error(`${op}: index ${idx[at]} at position ${at} is out of range [0, ${rows})`);
}

function gatherRows(
  heap: WasmHeap,
  [table, idx]: TypedArray[],
  [out]: TypedArray[],
  p: KernelParams['gather'],
  i0: number,
  i1: number,
): void {
  if (i1 <= i0) return;
  const bad = module(heap).gather(heap.offsetOf(table), heap.offsetOf(idx), heap.offsetOf(out), i0, i1, p.rows, p.cols) as number;
  if (bad >= 0) throw outOfRange('gather', idx, bad, p.rows);
}

export const gather: WasmKernel<'gather'> = {
  accepts: ([table, idx], [out]) => table instanceof Float32Array && idx instanceof Int32Array && out instanceof Float32Array,
  run: (heap, ins, outs, p) => gatherRows(heap, ins, outs, p, 0, p.n),
  split: {
    range: (p) => (p.n >= 2 && p.n * p.cols >= SPLIT_MIN ? { n: p.n, align: 1 } : null),
    part: (heap, ins, outs, p, r0, r1) => gatherRows(heap, ins, outs, p, r0, r1),
  },
};

function scatterColumns(
  heap: WasmHeap,
  [g, idx]: TypedArray[],
  [out]: TypedArray[],
  p: KernelParams['scatter_add'],
  c0: number,
  c1: number,
): void {
  if (p.cols === 0) {
    // nothing to sum, but the indices are checked as the scalar kernel does
    for (let i = 0; i < p.n; i++) if (!(idx[i] >= 0 && idx[i] < p.rows)) throw outOfRange('scatter_add', idx, i, p.rows);
    return;
  }
  if (c1 <= c0) return;
  const bad = module(heap).scatter_add(heap.offsetOf(g), heap.offsetOf(idx), heap.offsetOf(out), p.n, p.rows, p.cols, c0, c1) as number;
  if (bad >= 0) throw outOfRange('scatter_add', idx, bad, p.rows);
}

export const scatter_add: WasmKernel<'scatter_add'> = {
  accepts: ([g, idx], [out]) => g instanceof Float32Array && idx instanceof Int32Array && out instanceof Float32Array,
  run: (heap, ins, outs, p) => scatterColumns(heap, ins, outs, p, 0, p.cols),
  split: {
    range: (p) => (p.cols >= 8 && Math.max(p.n, p.rows) * p.cols >= SPLIT_MIN ? { n: p.cols, align: 4 } : null),
    part: (heap, ins, outs, p, r0, r1) => scatterColumns(heap, ins, outs, p, r0, r1),
  },
};

function onehotRows(heap: WasmHeap, [idx]: TypedArray[], [out]: TypedArray[], p: KernelParams['onehot'], i0: number, i1: number): void {
  if (i1 <= i0 || p.depth === 0) return;
  module(heap).onehot(heap.offsetOf(idx), heap.offsetOf(out), i0, i1, p.depth);
}

export const onehot: WasmKernel<'onehot'> = {
  accepts: ([idx], [out]) => idx instanceof Int32Array && out instanceof Float32Array,
  run: (heap, ins, outs, p) => onehotRows(heap, ins, outs, p, 0, p.n),
  split: {
    range: (p) => (p.n >= 2 && p.n * p.depth >= 2 * SPLIT_MIN ? { n: p.n, align: 1 } : null),
    part: (heap, ins, outs, p, r0, r1) => onehotRows(heap, ins, outs, p, r0, r1),
  },
};
