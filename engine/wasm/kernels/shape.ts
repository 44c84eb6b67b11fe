// The strided copy of engine/cpu/kernels/shape.ts (behind permute, slice, expand, concat and split)
// in WebAssembly, for 4-byte elements (float32 or int32, in and out the same: the bits are moved,
// not the numbers, so the result is the scalar kernel's bit for bit, NaN payloads included). The
// shape is collapsed over the output's and the input's strides (collapse of ./elementwise.ts:
// size-1 axes dropped, neighbours merged where both allow) to at most 4 axes, walked by nested
// loops; an innermost run contiguous on both sides moves 4 elements at a time, any other one at a
// time. What it is for: short runs, such as a decoding step's conv state (its last 3 steps of each
// of 1536 channels), where the scalar kernel pays a JavaScript callback per run (measured: a
// [1536, 3] slice of a [1536, 4] state, 30 us scalar).
import type { TypedArray } from '../../dtype.ts';
import { ModuleBuilder } from '../assembler.ts';
import { kernelModule, type WasmKernel } from '../kernel.ts';
import { i32s } from '../loops.ts';
import { collapse } from './elementwise.ts';

/** Axes of the walk after collapsing (more: the scalar kernel). */
const AXES = 4;

/**
 * copy4(dst, src, n0..n3, o0..o3, i0..i3): for every index (a, b, c, d) < (n0, n1, n2, n3), the
 * 4 bytes at src + a i0 + b i1 + c i2 + d i3 to dst + a o0 + b o1 + c o2 + d o3 (strides in bytes).
 */
function buildShapeModule(shared = true): ModuleBuilder {
  const m = new ModuleBuilder();
  m.importMemory({ initial: 0, maximum: 65536, shared });
  m.function(
    'copy4',
    Array(2 + 3 * AXES).fill('i32'),
    [],
    (f, dst, src, n0, n1, n2, n3, o0, o1, o2, o3, i0, i1, i2, i3) => {
      const { a, b, c, d, pd, ps } = i32s(f, 'a', 'b', 'c', 'd', 'pd', 'ps');
      const row = [f.local.declare('i32'), f.local.declare('i32'), f.local.declare('i32')];
      const srow = [f.local.declare('i32'), f.local.declare('i32'), f.local.declare('i32')];
      const n = [n0, n1, n2],
        o = [o0, o1, o2],
        is = [i0, i1, i2];
      const counters = [a, b, c];
      const run = () => {
        f.local.set(pd, row[2]);
        f.local.set(ps, srow[2]);
        f.local.set(d, 0);
        f.if(
          () =>
            f.i32.and(
              () => f.i32.eq(o3, 4),
              () => f.i32.eq(i3, 4),
            ),
          () => {
            // contiguous on both sides: 4 at a time, then the rest one by one
            f.block((done) =>
              f.loop((top) => {
                f.br_if(done, () => f.i32.gt_s(() => f.i32.add(d, 4), n3));
                f.v128.store(pd, () => f.v128.load(ps));
                f.local.set(pd, () => f.i32.add(pd, 16));
                f.local.set(ps, () => f.i32.add(ps, 16));
                f.local.set(d, () => f.i32.add(d, 4));
                f.br(top);
              }),
            );
          },
        );
        f.for(d, d, n3, 1, () => {
          f.i32.store(pd, () => f.i32.load(ps));
          f.local.set(pd, () => f.i32.add(pd, o3));
          f.local.set(ps, () => f.i32.add(ps, i3));
        });
      };
      // loop level l walks axis l from the pointers of level l - 1 (level 0 from dst, src)
      const level = (l: number) => {
        const from = l === 0 ? dst : row[l - 1],
          sfrom = l === 0 ? src : srow[l - 1];
        f.local.set(row[l], from);
        f.local.set(srow[l], sfrom);
        f.for(counters[l], 0, n[l], 1, () => {
          if (l < 2) level(l + 1);
          else run();
          f.local.set(row[l], () => f.i32.add(row[l], o[l]));
          f.local.set(srow[l], () => f.i32.add(srow[l], is[l]));
        });
      };
      level(0);
    },
    { export: true },
  );
  return m;
}

const module = kernelModule('shape', buildShapeModule);

// byte strides and offsets stay within i32: arrays of fewer than 2^29 elements (2 GiB)
const fourBytes = (x: TypedArray) => (x instanceof Float32Array || x instanceof Int32Array) && x.length < 2 ** 29;

export const copy: WasmKernel<'copy'> = {
  accepts: ([x], [out], p) =>
    fourBytes(x) && x.constructor === out.constructor && collapse(p.shape, [p.outStrides, p.inStrides]).shape.length <= AXES,
  run: (heap, [x], [out], p) => {
    const c = collapse(p.shape, [p.outStrides, p.inStrides]);
    const pad = AXES - c.shape.length;
    const padded = (xs: number[], v: number) => [...Array(pad).fill(v), ...xs];
    const bytes = (xs: number[]) => padded(xs, 0).map((s) => 4 * s);
    module(heap).copy4(
      heap.offsetOf(out) + 4 * p.outOffset,
      heap.offsetOf(x) + 4 * p.inOffset,
      ...padded(c.shape, 1),
      ...bytes(c.strides[0]),
      ...bytes(c.strides[1]),
    );
  },
};
