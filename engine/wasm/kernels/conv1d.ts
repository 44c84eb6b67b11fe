// The float32 causal depthwise conv1d of engine/cpu/kernels/conv1d.ts in WebAssembly SIMD, vectors
// along the channels. x, y [batch, T, C], w [C, K] (transposed to [K, C] first, in the part's
// scratch), bias [C].
//   forward, per row (b, t): y = bias (or 0), then y += w[:, k] x[b, t - K + 1 + k] for k in order,
//     the taps before t = 0 skipped: each output is the scalar kernel's sum in the same order, in
//     float32 (one rounding per product and per addition);
//   backward: dx the same way from dy (the taps past T skipped); dw[c, k] = sum over (b, t) of
//     dy[b, t, c] x[b, t - K + 1 + k, c] and dbias[c] = sum of dy[b, t, c], through fixed blocks of
//     about sqrt(batch T) rows: each block's float32 sum in row order from 0 into its own partials,
//     then the partials summed in block order (loops.ts columnSum) and transposed to [C, K].
// Both split over rows (b, t): the backward over whole blocks (align = the block), so that dw and
// dbias are the same bits for any split; run is one part and the finish.
import type { TypedArray } from '../../dtype.ts';
import type { KernelParams } from '../../kernels.ts';
import { type FunctionBuilder, type Local, ModuleBuilder } from '../assembler.ts';
import { kernelModule, type WasmKernel } from '../kernel.ts';
import { at, columnSum, i32s, mapLoop } from '../loops.ts';
import type { WasmHeap } from '../memory.ts';

/** Outputs (batch * T * C) from which a call splits over threads (rows: at least 2). */
export const SPLIT_MIN = 1 << 15;

/** Rows (b, t) of one dw block for n rows: about sqrt(n). */
export function dwBlock(rows: number): number {
  return Math.max(1, Math.round(Math.sqrt(rows)));
}

/** out[i] = value for i < n (floats at byte pointer out). */
const fillRow = (f: FunctionBuilder, out: Local, n: Local) => mapLoop(f, [], out, n, 4, () => f.f32x4.const(0));

/** row += a * b over n floats (a, b, row byte pointers). */
const fmaRow = (f: FunctionBuilder, row: Local, a: Local, b: Local, n: Local) =>
  mapLoop(f, [row, a, b], row, n, 4, ([acc, av, bv]) => f.f32x4.add(acc, () => f.f32x4.mul(av, bv)));

const imax = (f: FunctionBuilder, x: Local, y: number) => f.select(x, y, () => f.i32.gt_s(x, y));

const module = kernelModule('conv1d', (shared) => {
  const mb = new ModuleBuilder();
  mb.importMemory({ initial: 0, maximum: 65536, shared });
  const I = 'i32' as const;

  // wT[k][c] = w[c][k]: (w, wT, C, K)
  mb.function(
    'transpose',
    [I, I, I, I],
    [],
    (f, w, wT, C, K) => {
      const { c, k } = i32s(f, 'c', 'k');
      f.for(c, 0, C, 1, () => {
        f.for(k, 0, K, 1, () => {
          f.f32.store(
            () => at(f, wT, () => f.i32.add(() => f.i32.mul(k, C), c)),
            () => f.f32.load(() => at(f, w, () => f.i32.add(() => f.i32.mul(c, K), k))),
          );
        });
      });
    },
    { export: true },
  );

  // rows [r0, r1) of (b, t): (x, wT, bias, y, r0, r1, T, C, K, hasBias)
  mb.function(
    'conv1d',
    [I, I, I, I, I, I, I, I, I, I],
    [],
    (f, x, wT, bias, y, r0, r1, T, C, K, hasBias) => {
      const { r, k, k0, py, pw, px } = i32s(f, 'r', 'k', 'k0', 'py', 'pw', 'px');
      f.for(r, r0, r1, 1, () => {
        f.local.set(py, () => at(f, y, () => f.i32.mul(r, C)));
        f.if(
          hasBias,
          () => mapLoop(f, [bias], py, C, 4, ([b]) => f.local.get(b)),
          () => fillRow(f, py, C),
        );
        // k0 = max(0, K - 1 - t): the first tap at or after t = 0
        f.local.set(k0, () =>
          f.i32.sub(
            () => f.i32.sub(K, 1),
            () => f.i32.rem_u(r, T),
          ),
        );
        f.local.set(k0, () => imax(f, k0, 0));
        f.for(k, k0, K, 1, () => {
          f.local.set(pw, () => at(f, wT, () => f.i32.mul(k, C)));
          f.local.set(px, () => at(f, x, () => f.i32.mul(() => f.i32.sub(r, () => f.i32.sub(() => f.i32.sub(K, 1), k)), C)));
          fmaRow(f, py, pw, px, C);
        });
      });
    },
    { export: true },
  );

  // rows [r0, r1) (r0 a multiple of rb): dx, and the block partials [K + 1][C] (dw^T rows, then
  // dbias) of block r / rb at partials + 4 (r / rb) (K + 1) C: (x, wT, dy, dx, partials, r0, r1, T, C, K, rb)
  mb.function(
    'conv1d_bwd',
    [I, I, I, I, I, I, I, I, I, I, I],
    [],
    (f, x, wT, dy, dx, partials, r0, r1, T, C, K, rb) => {
      const { r, t, k, k0, pdx, pdy, pw, px, pp, pk, plane } = i32s(f, 'r', 't', 'k', 'k0', 'pdx', 'pdy', 'pw', 'px', 'pp', 'pk', 'plane');
      f.local.set(plane, () => f.i32.mul(() => f.i32.add(K, 1), C));
      f.for(r, r0, r1, 1, () => {
        f.local.set(t, () => f.i32.rem_u(r, T));
        // dx[r] = sum over k >= t + K - T of w[:, k] dy[r + K - 1 - k]
        f.local.set(pdx, () => at(f, dx, () => f.i32.mul(r, C)));
        fillRow(f, pdx, C);
        f.local.set(k0, () => f.i32.sub(() => f.i32.add(t, K), T));
        f.local.set(k0, () => imax(f, k0, 0));
        f.for(k, k0, K, 1, () => {
          f.local.set(pw, () => at(f, wT, () => f.i32.mul(k, C)));
          f.local.set(pdy, () => at(f, dy, () => f.i32.mul(() => f.i32.add(r, () => f.i32.sub(() => f.i32.sub(K, 1), k)), C)));
          fmaRow(f, pdx, pw, pdy, C);
        });
        // the block's partials: zeroed at its first row
        f.local.set(pp, () => at(f, partials, () => f.i32.mul(() => f.i32.div_u(r, rb), plane)));
        f.if(
          () => f.i32.eqz(() => f.i32.rem_u(r, rb)),
          () => fillRow(f, pp, plane),
        );
        f.local.set(pdy, () => at(f, dy, () => f.i32.mul(r, C)));
        // dw^T[k] += dy[r] x[r - (K - 1 - k)] for k >= K - 1 - t
        f.local.set(k0, () => f.i32.sub(() => f.i32.sub(K, 1), t));
        f.local.set(k0, () => imax(f, k0, 0));
        f.for(k, k0, K, 1, () => {
          f.local.set(pk, () => at(f, pp, () => f.i32.mul(k, C)));
          f.local.set(px, () => at(f, x, () => f.i32.mul(() => f.i32.sub(r, () => f.i32.sub(() => f.i32.sub(K, 1), k)), C)));
          fmaRow(f, pk, pdy, px, C);
        });
        // dbias += dy[r]
        f.local.set(pk, () => at(f, pp, () => f.i32.mul(K, C)));
        mapLoop(f, [pk, pdy], pk, C, 4, ([acc, g]) => f.f32x4.add(acc, g));
      });
    },
    { export: true },
  );

  // the partials of `blocks` blocks summed in block order into block 0's, then dw = their first K
  // rows transposed, dbias = the last: (partials, dw, db, blocks, C, K, hasBias)
  mb.function(
    'conv1d_dw',
    [I, I, I, I, I, I, I],
    [],
    (f, partials, dw, db, blocks, C, K, hasBias) => {
      const { plane, stride, c, k } = i32s(f, 'plane', 'stride', 'c', 'k');
      f.local.set(plane, () => f.i32.mul(() => f.i32.add(K, 1), C));
      f.local.set(stride, () => f.i32.shl(plane, 2));
      // each column's blocks are read before its sum is stored over block 0's value
      columnSum(f, { src: partials, out: partials, n: plane, count: blocks, stride, blk: blocks });
      f.for(c, 0, C, 1, () => {
        f.for(k, 0, K, 1, () => {
          f.f32.store(
            () => at(f, dw, () => f.i32.add(() => f.i32.mul(c, K), k)),
            () => f.f32.load(() => at(f, partials, () => f.i32.add(() => f.i32.mul(k, C), c))),
          );
        });
      });
      f.if(hasBias, () => {
        f.local.set(c, () => at(f, partials, () => f.i32.mul(K, C)));
        mapLoop(f, [c], db, C, 4, ([v]) => f.local.get(v));
      });
    },
    { export: true },
  );
  return mb;
});

const isF32 = (xs: TypedArray[]) => xs.every((x) => x instanceof Float32Array);

const wBytes = (p: { C: number; K: number }) => 4 * p.C * p.K;

function forwardRows(
  heap: WasmHeap,
  ins: TypedArray[],
  [y]: TypedArray[],
  p: KernelParams['conv1d'],
  r0: number,
  r1: number,
  wT: number,
): void {
  if (r1 <= r0 || p.C === 0) return;
  const { T, C, K, hasBias } = p;
  const e = module(heap);
  e.transpose(heap.offsetOf(ins[1]), wT, C, K);
  e.conv1d(heap.offsetOf(ins[0]), wT, hasBias ? heap.offsetOf(ins[2]) : 0, heap.offsetOf(y), r0, r1, T, C, K, hasBias ? 1 : 0);
}

/** Runs body with a scratch block of `bytes` bytes, freed after. */
function withScratch(heap: WasmHeap, bytes: number, body: (at: number) => void): void {
  const s = heap.alloc(bytes);
  try {
    body(s);
  } finally {
    heap.free(s);
  }
}

export const conv1d: WasmKernel<'conv1d'> = {
  accepts: (ins, outs, p) => isF32(ins.slice(0, p.hasBias ? 3 : 2)) && isF32(outs) && p.K >= 1,
  run: (heap, ins, outs, p) => withScratch(heap, wBytes(p), (wT) => forwardRows(heap, ins, outs, p, 0, p.batch * p.T, wT)),
  split: {
    range: (p) => {
      const n = p.batch * p.T;
      return n >= 2 && n * p.C >= SPLIT_MIN ? { n, align: 1 } : null;
    },
    partScratch: (p) => wBytes(p),
    part: (heap, ins, outs, p, r0, r1, scratch) => forwardRows(heap, ins, outs, p, r0, r1, scratch),
  },
};

type BwdParams = KernelParams['conv1d_bwd'];
const rowsOf = (p: BwdParams) => p.batch * p.T;
const blocksOf = (p: BwdParams) => Math.ceil(rowsOf(p) / dwBlock(rowsOf(p)));
const partialBytes = (p: BwdParams) => 4 * blocksOf(p) * (p.K + 1) * p.C;

function backwardRows(
  heap: WasmHeap,
  [x, w, dy]: TypedArray[],
  [dx]: TypedArray[],
  p: BwdParams,
  r0: number,
  r1: number,
  wT: number,
  partials: number,
): void {
  if (r1 <= r0 || p.C === 0) return;
  const { T, C, K } = p;
  const e = module(heap);
  e.transpose(heap.offsetOf(w), wT, C, K);
  e.conv1d_bwd(heap.offsetOf(x), wT, heap.offsetOf(dy), heap.offsetOf(dx), partials, r0, r1, T, C, K, dwBlock(rowsOf(p)));
}

function finishDw(heap: WasmHeap, [, dw, db]: TypedArray[], p: BwdParams, partials: number): void {
  if (p.C === 0) return;
  if (rowsOf(p) === 0) {
    dw.fill(0, 0, p.C * p.K);
    if (p.hasBias) db.fill(0, 0, p.C);
    return;
  }
  module(heap).conv1d_dw(partials, heap.offsetOf(dw), p.hasBias ? heap.offsetOf(db) : 0, blocksOf(p), p.C, p.K, p.hasBias ? 1 : 0);
}

export const conv1d_bwd: WasmKernel<'conv1d_bwd'> = {
  accepts: (ins, outs, p) => isF32(ins) && isF32(outs.slice(0, p.hasBias ? 3 : 2)) && p.K >= 1,
  run: (heap, ins, outs, p) =>
    withScratch(heap, wBytes(p) + partialBytes(p), (s) => {
      backwardRows(heap, ins, outs, p, 0, rowsOf(p), s, s + wBytes(p));
      finishDw(heap, outs, p, s + wBytes(p));
    }),
  split: {
    range: (p) => {
      const n = rowsOf(p);
      return n >= 2 && n * p.C >= SPLIT_MIN ? { n, align: dwBlock(n) } : null;
    },
    partScratch: (p) => wBytes(p),
    sharedScratch: partialBytes,
    part: (heap, ins, outs, p, r0, r1, scratch, shared) => backwardRows(heap, ins, outs, p, r0, r1, scratch, shared),
    finish: (heap, _ins, outs, p, shared) => finishDw(heap, outs, p, shared),
  },
};
