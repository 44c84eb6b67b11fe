// The WebAssembly float32 reductions (engine/wasm/kernels/reduce.ts) against the scalar kernels of
// engine/cpu/kernels/reduce.ts (float64 accumulation, rounded once) on plain Float32Arrays:
// [outer, len, inner] with each of 1, 7, 33, 1025 (and 4099 rows), NaN and infinities mixed into
// some inputs, outputs NaN-poisoned and fenced.
//
// Bounds: a float32 sum whose terms each go through at most D additions is within gamma_D sum |x|
// of the exact sum (Higham, eq. 3.5); the reference is within half an ulp of it. D = rowDepth(len)
// for inner = 1 (16 lanes in blocks of rowBlock(len) vectors, the block lanes, the final combine),
// colDepth(len) otherwise (blocks of colBlock(len) rows). So |sum - ref| <= gamma_D sum |x| + ulp.
// max and min: exactly the reference, NaN for NaN, except that a zero may come with the other sign
// (compared with ==). argmax: exactly the reference index. Splits: parts give run's bits.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import * as ref from '../../../engine/cpu/kernels/reduce.ts';
import * as mi from '../../../engine/index.ts';
import type { KernelParams, ReduceOp } from '../../../engine/kernels.ts';
import { argmax, colDepth, reduce } from '../../../engine/wasm/kernels/reduce.ts';
import { rowDepth } from '../../../engine/wasm/loops.ts';
import { WasmHeap } from '../../../engine/wasm/memory.ts';
import { assertSameBits, checkGuard, gamma, onHeap, poisoned, release, ulp } from './f32-check.ts';

const test = suite('wasm reduce');
const rng = new mi.Rng('wasm-reduce');
const heap = new WasmHeap({ initialPages: 256 });

const SHAPES: [number, number, number][] = [];
for (const outer of [1, 7, 33]) for (const len of [1, 7, 33, 1025]) for (const inner of [1, 7, 33]) SHAPES.push([outer, len, inner]);
SHAPES.push([1, 4099, 1], [2, 4099, 5], [1, 100_003, 1], [3, 1, 1025], [1, 33, 1025]);

/** Values: normals; `specials` puts NaN, inf and -inf into a few rows. Ties (repeated values) for argmax. */
function values(n: number, specials: boolean): Float32Array {
  const xs = Array.from({ length: n }, () => (rng.uniform() < 0.2 ? Math.round(rng.normal() * 2) : rng.normal()));
  if (specials && n > 10) {
    xs[3] = NaN;
    xs[n - 2] = Infinity;
    xs[Math.floor(n / 2)] = -Infinity;
    xs[5] = -0;
  }
  return onHeap(heap, xs);
}

test('sum, max, min: every shape, within gamma_D sum |x| + 1 ulp (sum) or exact (max, min)', () => {
  for (const [outer, len, inner] of SHAPES)
    for (const specials of [false, true])
      for (const op of ['sum', 'max', 'min'] as ReduceOp[]) {
        const x = values(outer * len * inner, specials);
        const p: KernelParams['reduce'] = { op, outer, len, inner };
        const out = poisoned(heap, outer * inner);
        assert.ok(reduce.accepts([x], [out], p));
        reduce.run(heap, [x], [out], p);
        const want = new Float32Array(outer * inner).fill(NaN);
        ref.reduce([x], [want], p);
        const D = inner === 1 ? rowDepth(len) : colDepth(len);
        const what = `${op} [${outer}, ${len}, ${inner}]${specials ? ' specials' : ''}`;
        for (let o = 0; o < outer; o++)
          for (let i = 0; i < inner; i++) {
            const g = out[o * inner + i],
              w = want[o * inner + i];
            if (Number.isNaN(w) || Number.isNaN(g)) {
              assert.ok(Number.isNaN(w) && Number.isNaN(g), `${what} [${o}, ${i}] = ${g}, want ${w}`);
              continue;
            }
            if (op !== 'sum' || !Number.isFinite(w)) {
              assert.ok(g === w, `${what} [${o}, ${i}] = ${g}, want ${w}`);
              continue;
            }
            let S = 0;
            for (let k = 0; k < len; k++) S += Math.abs(x[(o * len + k) * inner + i]);
            const b = gamma(D) * S + ulp(w);
            if (!(Math.abs(g - w) <= b)) assert.unreachable(`${what} [${o}, ${i}] = ${g}, want ${w}: error ${Math.abs(g - w)} > ${b}`);
          }
        checkGuard(out, what);
        release(heap, x, out);
      }
});

test('argmax: every shape, exactly the scalar kernel (first maximum; NaN never; 0 when nothing beats -inf)', () => {
  const odd = [
    [NaN, NaN, NaN],
    [-Infinity, -Infinity, NaN, -Infinity, -Infinity],
    [1, 5, 5, 2, 5, 0, 5],
    [NaN, -Infinity, 3, NaN, 3, Infinity, 0, Infinity],
  ];
  for (const row of odd) {
    const x = onHeap(heap, row);
    const out = heap.i32(heap.alloc(4), 1);
    out[0] = -7;
    argmax.run(heap, [x], [out], { outer: 1, len: row.length, inner: 1 });
    const want = new Int32Array(1);
    ref.argmax([x], [want], { outer: 1, len: row.length, inner: 1 });
    assert.is(out[0], want[0], `argmax of ${row}`);
    release(heap, x, out);
  }
  for (const [outer, len, inner] of SHAPES)
    for (const specials of [false, true]) {
      const x = values(outer * len * inner, specials);
      const p = { outer, len, inner };
      const off = heap.alloc(4 * outer * inner + 16);
      const out = heap.i32(off, outer * inner);
      out.fill(-7);
      assert.ok(argmax.accepts([x], [out], p));
      argmax.run(heap, [x], [out], p);
      const want = new Int32Array(outer * inner);
      ref.argmax([x], [want], p);
      for (let i = 0; i < want.length; i++)
        if (out[i] !== want[i]) assert.unreachable(`argmax [${outer}, ${len}, ${inner}] [${i}] = ${out[i]}, want ${want[i]}`);
      heap.free(off);
      release(heap, x);
    }
});

test('split: over outer rows, or inner columns when outer = 1: parts give the bits of run', () => {
  for (const [outer, len, inner] of [
    [7, 2000, 33],
    [1, 1025, 517],
    [300, 1025, 1],
  ] as [number, number, number][]) {
    const x = values(outer * len * inner, false);
    for (const op of ['sum', 'max'] as ReduceOp[]) {
      const p = { op, outer, len, inner };
      const range = reduce.split!.range(p)!;
      assert.ok(range, `splits [${outer}, ${len}, ${inner}]`);
      assert.equal(range, outer > 1 ? { n: outer, align: 1 } : { n: inner, align: 4 });
      const whole = poisoned(heap, outer * inner),
        parts = poisoned(heap, outer * inner);
      reduce.run(heap, [x], [whole], p);
      const n = range.n;
      for (const cuts of [
        [0, n],
        [0, 4, n],
        [0, 4 * Math.floor(n / 12), 4 * Math.floor(n / 8), n],
      ]) {
        parts.fill(NaN);
        for (let k = 0; k + 1 < cuts.length; k++) reduce.split!.part(heap, [x], [parts], p, cuts[k], cuts[k + 1], 0, 0);
        assertSameBits(parts, whole, `${op} [${outer}, ${len}, ${inner}] cuts ${cuts}`);
      }
      release(heap, whole, parts);
    }
    release(heap, x);
  }
  assert.is(reduce.split!.range({ op: 'sum', outer: 1, len: 1 << 20, inner: 1 }), null, 'one row does not split');
  assert.is(heap.stats().inUse, 0, 'every block returned');
});

test('empty reductions (len 0) give the identity; float64 goes to the scalar kernel', () => {
  for (const [op, v] of [
    ['sum', 0],
    ['max', -Infinity],
    ['min', Infinity],
  ] as [ReduceOp, number][]) {
    const x = heap.allocF32(1),
      out = poisoned(heap, 6);
    reduce.run(heap, [x], [out], { op, outer: 2, len: 0, inner: 3 });
    for (const g of out) assert.is(g, v);
    release(heap, x, out);
  }
  assert.not.ok(reduce.accepts([new Float64Array(4)], [new Float64Array(1)], { op: 'sum', outer: 1, len: 4, inner: 1 }));
});

test.run();
