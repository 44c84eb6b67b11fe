// The WebAssembly strided copy (engine/wasm/kernels/shape.ts) against the scalar copy of
// engine/cpu/kernels/shape.ts: every element's bits (NaN payloads, -0, int32; the scalar kernel,
// going through JavaScript numbers, quiets a signaling NaN, which the WebAssembly one moves as it
// is: inputs here have quiet NaNs only, and one case checks the signaling one), on permutes of
// 2-4 axes, slices of every axis, broadcast expands, concat regions of an output whose other
// elements must stay, and short runs (a decoding step's conv state); more than 4 axes after
// collapsing goes to the scalar kernel (accepts false).
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { copy as scalarCopy } from '../../../engine/cpu/kernels/shape.ts';
import type { KernelParams } from '../../../engine/kernels.ts';
import * as mi from '../../../engine/index.ts';
import { copy } from '../../../engine/wasm/kernels/shape.ts';
import { WasmHeap } from '../../../engine/wasm/memory.ts';

const test = suite('wasm copy');
const rng = new mi.Rng('wasm-copy');
const heap = new WasmHeap({ initialPages: 64 });
type P = KernelParams['copy'];

const contiguous = (shape: number[]) => shape.map((_, d) => shape.slice(d + 1).reduce((a, b) => a * b, 1));

/** Runs both kernels on the same input into outputs filled alike; their bits must agree everywhere. */
function check(what: string, inSize: number, outSize: number, p: P, int = false): void {
  const make = (n: number) => (int ? heap.i32(heap.alloc(4 * Math.max(1, n)), n) : heap.f32(heap.alloc(4 * Math.max(1, n)), n));
  const x = make(inSize);
  const bitsOf = (a: Float32Array | Int32Array) => new Uint32Array(a.buffer, a.byteOffset, a.length);
  // random bits: NaNs with payloads, -0, denormals, and int32 values alike
  const xb = bitsOf(x);
  for (let i = 0; i < xb.length; i++) {
    xb[i] = Math.floor(rng.uniform() * 2 ** 32);
    // a float32 NaN quiet (exponent all ones, mantissa not zero: set its top mantissa bit)
    if (!int && (xb[i] & 0x7f800000) === 0x7f800000 && xb[i] & 0x7fffff) xb[i] |= 0x400000;
  }
  const got = make(outSize),
    want = make(outSize);
  const gb = bitsOf(got),
    wb = bitsOf(want);
  for (let i = 0; i < gb.length; i++) gb[i] = wb[i] = 0x7fc00001 + i;
  assert.ok(copy.accepts([x], [got], p), `${what}: accepted`);
  copy.run(heap, [x], [got], p);
  scalarCopy([x], [want], p);
  for (let i = 0; i < gb.length; i++) if (gb[i] !== wb[i]) assert.unreachable(`${what}: element ${i}: ${gb[i]} vs ${wb[i]}`);
  for (const a of [x, got, want]) heap.free(a.byteOffset);
}

const permute = (shape: number[], perm: number[], int = false) => {
  const st = contiguous(shape);
  const out = perm.map((d) => shape[d]);
  check(
    `permute [${shape}] by [${perm}]`,
    shape.reduce((a, b) => a * b, 1),
    out.reduce((a, b) => a * b, 1),
    {
      shape: out,
      inStrides: perm.map((d) => st[d]),
      inOffset: 0,
      outStrides: contiguous(out),
      outOffset: 0,
    },
    int,
  );
};

test("permutes of 2, 3 and 4 axes, float32 and int32: the scalar kernel's bits", () => {
  permute([7, 33], [1, 0]);
  permute([33, 7], [1, 0], true);
  permute([7, 33, 5], [2, 0, 1]);
  permute([5, 1, 9, 4], [3, 1, 0, 2]);
  permute([3, 4, 5, 6], [0, 2, 1, 3]);
  permute([1025, 3], [1, 0]);
});

test('slices of every axis, short runs (a conv state), broadcast expands, concat regions', () => {
  for (const [shape, axis, a, b] of [
    [[1, 1536, 4], 2, 1, 4],
    [[2, 1536, 4], 2, 1, 4],
    [[7, 33], 0, 2, 6],
    [[7, 33], 1, 5, 31],
    [[3, 5, 7, 9], 2, 1, 6],
    [[1, 80], 1, 48, 64],
  ] as [number[], number, number, number][]) {
    const st = contiguous(shape);
    const out = shape.map((n, d) => (d === axis ? b - a : n));
    check(
      `slice [${a}, ${b}) of axis ${axis} of [${shape}]`,
      shape.reduce((x, y) => x * y, 1),
      out.reduce((x, y) => x * y, 1),
      {
        shape: out,
        inStrides: st,
        inOffset: a * st[axis],
        outStrides: contiguous(out),
        outOffset: 0,
      },
    );
  }
  for (const rows of [1, 7, 130])
    check(`expand [1, 33] to [${rows}, 33]`, 33, rows * 33, {
      shape: [rows, 33],
      inStrides: [0, 1],
      inOffset: 0,
      outStrides: [33, 1],
      outOffset: 0,
    });
  check('expand [5, 1] to [5, 9]', 5, 45, { shape: [5, 9], inStrides: [1, 0], inOffset: 0, outStrides: [9, 1], outOffset: 0 });
  // concat: [1536, 3] and [1536, 1] into [1536, 4] (the conv state's shift), and a block of columns
  check('concat: columns 0..3 of [1536, 4]', 4608, 6144, {
    shape: [1, 1536, 3],
    inStrides: [4608, 3, 1],
    inOffset: 0,
    outStrides: [6144, 4, 1],
    outOffset: 0,
  });
  check('concat: column 3 of [1536, 4]', 1536, 6144, {
    shape: [1, 1536, 1],
    inStrides: [1536, 1, 1],
    inOffset: 0,
    outStrides: [6144, 4, 1],
    outOffset: 3,
  });
  check('concat: columns 3..8 of [7, 12]', 35, 84, { shape: [7, 5], inStrides: [5, 1], inOffset: 0, outStrides: [12, 1], outOffset: 3 });
  check('empty', 4, 4, { shape: [0, 4], inStrides: [4, 1], inOffset: 0, outStrides: [4, 1], outOffset: 0 });
  check('a scalar', 3, 1, { shape: [], inStrides: [], inOffset: 2, outStrides: [], outOffset: 0 });
});

test('a signaling NaN is moved as it is', () => {
  const x = heap.f32(heap.alloc(16), 4),
    o = heap.f32(heap.alloc(16), 4);
  new Uint32Array(x.buffer, x.byteOffset, 4).set([0x7f800001, 0xff812345, 0x80000000, 1]);
  copy.run(heap, [x], [o], { shape: [4], inStrides: [1], inOffset: 0, outStrides: [1], outOffset: 0 });
  assert.equal([...new Uint32Array(o.buffer, o.byteOffset, 4)], [0x7f800001, 0xff812345, 0x80000000, 1]);
  for (const a of [x, o]) heap.free(a.byteOffset);
});

test('more than 4 axes after collapsing, float64, mixed types: left to the scalar kernel', () => {
  const shape = [2, 3, 2, 3, 2];
  const x = heap.f32(heap.alloc(4 * 72), 72),
    o = heap.f32(heap.alloc(4 * 72), 72);
  const st = contiguous(shape);
  const perm = [4, 3, 2, 1, 0];
  const p: P = {
    shape: perm.map((d) => shape[d]),
    inStrides: perm.map((d) => st[d]),
    inOffset: 0,
    outStrides: contiguous(perm.map((d) => shape[d])),
    outOffset: 0,
  };
  assert.not.ok(copy.accepts([x], [o], p));
  const c = { shape: [72], inStrides: [1], inOffset: 0, outStrides: [1], outOffset: 0 };
  assert.not.ok(copy.accepts([new Float64Array(72)], [new Float64Array(72)], c));
  assert.not.ok(copy.accepts([x], [heap.i32(o.byteOffset, 72)], c));
  for (const a of [x, o]) heap.free(a.byteOffset);
  assert.is(heap.stats().inUse, 0);
});

test.run();
