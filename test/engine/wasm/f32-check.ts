// What the WebAssembly float32 kernel tests share: units in the last place, comparisons that treat
// every NaN alike, outputs poisoned with NaN and fenced by guard elements, error bounds of float32
// sums.
import * as assert from 'uvu/assert';
import type { Rng } from '../../../engine/random.ts';
import type { WasmHeap } from '../../../engine/wasm/memory.ts';

/** float32 unit roundoff */
export const U = 2 ** -24;

/** gamma_n = n u / (1 - n u) (Higham 3.1): the relative bound of n float32 roundings. */
export const gamma = (n: number, u = U) => (n * u) / (1 - n * u);

/** The spacing of float32 numbers at |r| (an ulp of r): 2^-149 below 2^-126, 2^(e-23) in [2^e, 2^(e+1)). */
export function ulp(r: number): number {
  const a = Math.abs(r);
  if (a < 2 ** -126) return 2 ** -149;
  if (a === Infinity) return Infinity;
  let e = Math.floor(Math.log2(a));
  if (2 ** e > a) e--;
  if (2 ** (e + 1) <= a) e++;
  return 2 ** (e - 23);
}

/** Whether two numbers are the same float: both NaN, or Object.is (so +0 and -0 differ). */
export const same = (x: number, y: number) => (Number.isNaN(x) && Number.isNaN(y)) || Object.is(x, y);

/** Index of the first element where got and want are not the same float (NaN = NaN), or -1. */
export function firstDifference(got: ArrayLike<number>, want: ArrayLike<number>, n = want.length): number {
  for (let i = 0; i < n; i++) if (!same(got[i], want[i])) return i;
  return -1;
}

export function assertSameFloats(got: ArrayLike<number>, want: ArrayLike<number>, what: string, n = want.length): void {
  const i = firstDifference(got, want, n);
  if (i >= 0) assert.unreachable(`${what}: [${i}] = ${got[i]}, want ${want[i]}`);
}

/** got within bound(i) of want elementwise (absolute error), or the same float (NaN = NaN). */
export function assertWithin(got: Float32Array, want: Float32Array, bound: (i: number) => number, what: string): void {
  for (let i = 0; i < want.length; i++) {
    if (same(got[i], want[i])) continue;
    const b = bound(i);
    if (!(Math.abs(got[i] - want[i]) <= b))
      assert.unreachable(`${what}: [${i}] = ${got[i]}, want ${want[i]}: error ${Math.abs(got[i] - want[i])} > ${b}`);
  }
}

/**
 * A split kernel's parts give the bits of one whole call: for each list of cuts, `part` over each
 * range [cuts[k], cuts[k+1]) fills a fresh NaN-poisoned output of `size` floats, which must equal
 * `run`'s output bit for bit.
 */
export function assertPartsMatchRun(
  heap: WasmHeap,
  what: string,
  size: number,
  run: (out: Float32Array) => void,
  part: (out: Float32Array, a: number, b: number) => void,
  cuts: number[][],
): void {
  const whole = poisoned(heap, size),
    parts = poisoned(heap, size);
  run(whole);
  for (const c of cuts) {
    parts.fill(NaN);
    for (let k = 0; k + 1 < c.length; k++) part(parts, c[k], c[k + 1]);
    assertSameBits(parts, whole, `${what} cuts ${c}`);
  }
  release(heap, whole, parts);
}

/** The bits of a float32 view, to compare bit for bit. */
export const bits = (x: Float32Array) => new Uint32Array(x.buffer, x.byteOffset, x.length);

export function assertSameBits(got: Float32Array, want: Float32Array, what: string): void {
  const g = bits(got),
    w = bits(want);
  assert.is(g.length, w.length, `${what}: lengths`);
  for (let i = 0; i < g.length; i++)
    if (g[i] !== w[i]) assert.unreachable(`${what}: [${i}] = ${got[i]} (0x${g[i].toString(16)}), want ${want[i]} (0x${w[i].toString(16)})`);
}

const GUARD = 4;
const GUARD_BITS = 0x7fc0dead;

/**
 * A heap Float32Array of n elements poisoned with NaN, followed by GUARD elements holding a NaN
 * pattern that checkGuard later checks: writes past the end show up there.
 */
export function poisoned(heap: WasmHeap, n: number): Float32Array {
  const off = heap.alloc(4 * (n + GUARD));
  const all = heap.f32(off, n + GUARD);
  all.fill(NaN);
  bits(all).fill(GUARD_BITS, n);
  return all.subarray(0, n);
}

export function checkGuard(x: Float32Array, what: string): void {
  const after = new Uint32Array(x.buffer, x.byteOffset + 4 * x.length, GUARD);
  for (let i = 0; i < GUARD; i++) if (after[i] !== GUARD_BITS) assert.unreachable(`${what}: wrote past the end (element ${x.length + i})`);
}

/** A heap copy of values. */
export function onHeap(heap: WasmHeap, values: ArrayLike<number>): Float32Array {
  const x = heap.allocF32(Math.max(1, values.length)).subarray(0, values.length);
  x.set(values);
  return x;
}

/** n standard normal draws of rng, in order, copied onto the heap. */
export const normalsOnHeap = (heap: WasmHeap, rng: Rng, n: number): Float32Array =>
  onHeap(
    heap,
    Array.from({ length: n }, () => rng.normal()),
  );

export function onHeapI32(heap: WasmHeap, values: ArrayLike<number>): Int32Array {
  const off = heap.alloc(4 * Math.max(1, values.length));
  const x = heap.i32(off, values.length);
  x.set(values);
  return x;
}

/** Frees the heap blocks of views made by poisoned / onHeap / allocF32. */
export function release(heap: WasmHeap, ...xs: ArrayBufferView[]): void {
  for (const x of xs) heap.free(x.byteOffset);
}

/** Values that stress float code: zeros, infinities, NaN, the float32 extremes, subnormals. */
export const EDGE_VALUES = [
  0,
  -0,
  Infinity,
  -Infinity,
  NaN,
  1,
  -1,
  3.4028234663852886e38,
  -3.4028234663852886e38,
  2 ** -126,
  -(2 ** -126),
  2 ** -149,
  -(2 ** -149),
  1e-30,
  -1e-30,
  1e30,
  -1e30,
  0.5,
  -0.5,
  2,
  -2,
];
