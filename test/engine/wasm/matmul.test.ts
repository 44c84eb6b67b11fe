// The WebAssembly SIMD float32 matmul (engine/wasm/kernels/matmul.ts) against the CPU backend's
// scalar kernel (engine/cpu/kernels/matmul.ts: float64 sums rounded once to float32), on seeded
// inputs of awkward sizes (1, 7, 33, 1025 mixed; past the K, M and N block sizes), batch 1 and 3
// with broadcast operands, all four transpose cases, the output NaN-poisoned first.
//
// The error bound. The WebAssembly kernel sums K float32 products in float32, k in order: each
// product rounded once, each add rounded once, so (Higham, Accuracy and Stability of Numerical
// Algorithms, 2nd ed., section 3.1, eq. 3.5)
//     |out - exact| <= gamma_K * S,   gamma_K = K u / (1 - K u),  u = 2^-24,  S = sum_k |a_ik b_kj|.
// The reference's float64 sum is within gamma_K(2^-53) * S of exact and is then rounded to float32
// (at most u * |its value| <= u * (1 + gamma_K(2^-53)) * S more). So the test asserts
//     |out - ref| <= (gamma_K + u + 2 gamma_K(2^-53)) * S   (S computed in float64, plus 1e-12 S slack).
// Beyond the bound, every output must equal, bit for bit, the float32 sum in k order from +0
// computed here with Math.fround (Math.fround of a float64 sum or product of two float32 numbers
// is the float32 operation's result: float64 has more than 2 * 24 + 2 bits), and must not depend on
// how rows or columns are split, on the kernel path, or on the run. The few-rows kernel on B packed
// whole (the derived block the CPU backend keeps for a weight) must give the blocked kernel's bits.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { matmulPart } from '../../../engine/cpu/kernels/matmul.ts';
import * as mi from '../../../engine/index.ts';
import {
  type MatmulParams,
  packedBBytes,
  packMatmulB,
  splitsColumns,
  type WasmMatmulParams,
  wasmMatmul,
  wasmMatmulPart,
  wasmMatmulRect,
} from '../../../engine/wasm/kernels/matmul.ts';
import { WasmHeap } from '../../../engine/wasm/memory.ts';

const test = suite('wasm matmul');
const rng = new mi.Rng('wasm-matmul');
const heap = new WasmHeap({ initialPages: 256 });
const U = 2 ** -24;
const gamma = (n: number, u: number) => (n * u) / (1 - n * u);

interface Case {
  a: Float32Array;
  b: Float32Array;
  out: Float32Array;
  p: MatmulParams;
}

function makeCase(M: number, N: number, K: number, transA: boolean, transB: boolean, batch = 1, aShared = false, bShared = false): Case {
  const p: MatmulParams = { batch, M, N, K, transA, transB, aBatchStride: aShared ? 0 : M * K, bBatchStride: bShared ? 0 : K * N };
  const a = heap.allocF32(Math.max(1, (aShared ? 1 : batch) * M * K));
  const b = heap.allocF32(Math.max(1, (bShared ? 1 : batch) * K * N));
  for (let i = 0; i < a.length; i++) a[i] = rng.normal();
  for (let i = 0; i < b.length; i++) b[i] = rng.normal();
  const out = heap.allocF32(Math.max(1, batch * M * N));
  out.fill(NaN);
  return { a, b, out, p };
}

function release(c: Case): void {
  for (const x of [c.a, c.b, c.out]) heap.free(x.byteOffset);
}

/** The sequential float32 sums (bit-exact expectation) and S = sum |a b| per output. */
function sequential({ a, b, p }: Case): { want: Float32Array; S: Float64Array } {
  const { batch, M, N, K, transA, transB, aBatchStride, bBatchStride } = p;
  const want = new Float32Array(batch * M * N),
    S = new Float64Array(batch * M * N);
  for (let bi = 0; bi < batch; bi++)
    for (let i = 0; i < M; i++)
      for (let j = 0; j < N; j++) {
        let s = 0,
          abs = 0;
        for (let k = 0; k < K; k++) {
          const prod = a[bi * aBatchStride + (transA ? k * M + i : i * K + k)] * b[bi * bBatchStride + (transB ? j * K + k : k * N + j)];
          s = Math.fround(s + Math.fround(prod));
          abs += Math.abs(prod);
        }
        want[(bi * M + i) * N + j] = s;
        S[(bi * M + i) * N + j] = abs;
      }
  return { want, S };
}

const bitsEqual = (x: Float32Array, y: Float32Array) => {
  const ux = new Uint32Array(x.buffer, x.byteOffset, x.length),
    uy = new Uint32Array(y.buffer, y.byteOffset, y.length);
  for (let i = 0; i < ux.length; i++) if (ux[i] !== uy[i]) return i;
  return -1;
};

function check(M: number, N: number, K: number, transA: boolean, transB: boolean, batch = 1, aShared = false, bShared = false): void {
  const c = makeCase(M, N, K, transA, transB, batch, aShared, bShared);
  const what = `M=${M} N=${N} K=${K} transA=${transA} transB=${transB} batch=${batch}${aShared ? ' A broadcast' : ''}${bShared ? ' B broadcast' : ''}`;
  wasmMatmul(heap, [c.a, c.b], [c.out], c.p);
  // the scalar TypeScript kernel, one thread: rows, or columns when M <= 8
  const ref = new Float32Array(batch * M * N).fill(NaN);
  matmulPart([c.a, c.b], [ref], c.p, 0, M <= 8 ? N : M);
  const { want, S } = sequential(c);
  const bound = gamma(K, U) + U + 2 * gamma(K, 2 ** -53) + 1e-12;
  for (let i = 0; i < ref.length; i++) {
    const err = Math.abs(c.out[i] - ref[i]);
    if (!(err <= bound * S[i])) assert.unreachable(`${what}: out[${i}] = ${c.out[i]}, reference ${ref[i]}: error ${err} > ${bound * S[i]}`);
  }
  const at = bitsEqual(c.out.subarray(0, want.length), want);
  assert.is(at, -1, `${what}: out[${at}] = ${c.out[at]} is not the float32 sum in k order ${want[at]}`);
  release(c);
}

const TRANS: [boolean, boolean][] = [
  [false, false],
  [true, false],
  [false, true],
  [true, true],
];

test('every mix of 1, 7, 33 for M, N, K; all four transpose cases; within the bound and bit-exact', () => {
  for (const M of [1, 7, 33]) for (const N of [1, 7, 33]) for (const K of [1, 7, 33]) for (const [tA, tB] of TRANS) check(M, N, K, tA, tB);
});

test('1025 in one or two of M, N, K (past the K, row and column blocks); N past the 2048-column block', () => {
  const sizes: [number, number, number][] = [
    [1025, 7, 33],
    [7, 1025, 33],
    [33, 7, 1025],
    [1025, 33, 33],
    [33, 1025, 33],
    [33, 33, 1025],
    [1, 1025, 1025],
    [1025, 1025, 7],
    [9, 2100, 3],
    [8, 2100, 5],
  ];
  for (const [M, N, K] of sizes) for (const [tA, tB] of TRANS) check(M, N, K, tA, tB);
});

test('batch 3: per-batch operands, A broadcast, B broadcast', () => {
  for (const [M, N, K] of [
    [7, 33, 7],
    [33, 7, 300],
    [1, 33, 33],
    [130, 20, 9],
  ])
    for (const [tA, tB] of TRANS) {
      check(M, N, K, tA, tB, 3);
      check(M, N, K, tA, tB, 3, true, false);
      check(M, N, K, tA, tB, 3, false, true);
    }
});

test('bit-identical however the output is split (columns for M <= 8 or N > M, else rows), run after run, by either kernel', () => {
  const configs: [number, number, number, boolean, boolean][] = [
    [33, 40, 1025, false, false],
    [301, 19, 70, true, true],
    [1025, 9, 33, false, true],
    [7, 1025, 33, false, true],
    [3, 100, 515, true, false],
  ];
  for (const [M, N, K, tA, tB] of configs) {
    const c = makeCase(M, N, K, tA, tB, 2);
    wasmMatmul(heap, [c.a, c.b], [c.out], c.p);
    const whole = c.out.slice();
    const n = splitsColumns(c.p) ? N : M;
    for (let trial = 0; trial < 4; trial++) {
      c.out.fill(NaN);
      // random cut points, not aligned to the 4-row / 8-column tiles
      const cuts = [0, n];
      for (let i = 0; i < 3; i++) cuts.push(Math.floor(rng.uniform() * (n + 1)));
      cuts.sort((x, y) => x - y);
      for (let i = 0; i + 1 < cuts.length; i++) wasmMatmulPart(heap, [c.a, c.b], [c.out], c.p, cuts[i], cuts[i + 1]);
      assert.is(bitsEqual(c.out, whole), -1, `M=${M} N=${N} K=${K} split at ${cuts}`);
    }
    // a rectangle of rows and columns: the same bits inside, the poison untouched outside
    c.out.fill(NaN);
    const r = { m0: Math.floor(M / 3), m1: M - Math.floor(M / 4), n0: Math.floor(N / 5), n1: N - 1 };
    wasmMatmulRect(heap, [c.a, c.b], [c.out], c.p, r);
    for (let bi = 0; bi < 2; bi++)
      for (let i = 0; i < M; i++)
        for (let j = 0; j < N; j++) {
          const o = (bi * M + i) * N + j;
          const inside = i >= r.m0 && i < r.m1 && j >= r.n0 && j < r.n1;
          if (inside) assert.ok(Object.is(c.out[o], whole[o]), `rect (${i}, ${j})`);
          else assert.ok(Number.isNaN(c.out[o]), `outside the rect (${i}, ${j}) was written`);
        }
    // the blocked kernel and the few-rows kernel agree bit for bit
    if (M <= 8) {
      c.out.fill(NaN);
      wasmMatmulRect(heap, [c.a, c.b], [c.out], c.p, { m0: 0, m1: M, n0: 0, n1: N }, 'blocked');
      assert.is(bitsEqual(c.out, whole), -1, `M=${M}: blocked vs few-rows kernel`);
    } else {
      c.out.fill(NaN);
      for (let m0 = 0; m0 < M; m0 += 8)
        wasmMatmulRect(heap, [c.a, c.b], [c.out], c.p, { m0, m1: Math.min(M, m0 + 8), n0: 0, n1: N }, 'small');
      assert.is(bitsEqual(c.out, whole), -1, `M=${M}: few-rows kernel 8 rows at a time vs blocked`);
    }
    release(c);
  }
});

/** B packed whole into a new block: the parameters with its offset. */
function packed(c: Case): WasmMatmulParams {
  const dst = heap.alloc(packedBBytes(c.p));
  packMatmulB(heap, c.b.byteOffset, c.p, dst);
  return { ...c.p, packedB: dst };
}

/** Fills with a cheap deterministic pattern in [-1, 1) (rng.normal is slow for 38 million). */
function pattern(x: Float32Array, seed: number): void {
  let h = seed >>> 0;
  for (let i = 0; i < x.length; i++) {
    h = (Math.imul(h, 1664525) + 1013904223) >>> 0;
    x[i] = h / 2 ** 31 - 1;
  }
}

/** The packed few-rows kernel (its rows, parts and rectangles) against the blocked kernel, bit for bit. */
function checkPacked(c: Case, what: string, parts = true): void {
  const { M, N } = c.p;
  wasmMatmul(heap, [c.a, c.b], [c.out], c.p, 'blocked');
  const blocked = c.out.slice();
  const q = packed(c);
  for (const path of ['packed', 'auto'] as const) {
    c.out.fill(NaN);
    wasmMatmul(heap, [c.a, c.b], [c.out], q, path);
    const at = bitsEqual(c.out, blocked);
    assert.is(at, -1, `${what} ${path}: out[${at}] = ${c.out[at]}, blocked ${blocked[at]}`);
  }
  if (parts && N > 8) {
    // columns cut at multiples of 8 (the split's alignment) and at n1 anywhere; a rectangle starting
    // off a strip (n0 % 8 != 0) takes the kernels on B where it lies: the same bits still
    c.out.fill(NaN);
    const cuts = [0, N];
    for (let i = 0; i < 3; i++) cuts.push(8 * Math.floor((rng.uniform() * N) / 8));
    cuts.sort((x, y) => x - y);
    for (let i = 0; i + 1 < cuts.length; i++) wasmMatmulPart(heap, [c.a, c.b], [c.out], q, cuts[i], cuts[i + 1]);
    assert.is(bitsEqual(c.out, blocked), -1, `${what}: parts at ${cuts}`);
    c.out.fill(NaN);
    const r = { m0: 0, m1: M, n0: 3, n1: N - 1 };
    wasmMatmulRect(heap, [c.a, c.b], [c.out], q, r);
    for (let i = 0; i < M; i++)
      for (let j = 0; j < N; j++) {
        const o = i * N + j;
        if (j >= r.n0 && j < r.n1) assert.ok(Object.is(c.out[o], blocked[o]), `${what}: rect (${i}, ${j})`);
        else assert.ok(Number.isNaN(c.out[o]), `${what}: outside the rect (${i}, ${j}) was written`);
      }
  }
  heap.free(q.packedB!);
}

test("the few-rows kernel on B packed whole: the blocked kernel's bits, M 1..8, N and K of 1, 7, 33, 1025 / 768, both B layouts", () => {
  for (let M = 1; M <= 8; M++)
    for (const N of [1, 7, 33, 1025])
      for (const K of [1, 7, 33, 768])
        for (const transB of [true, false]) {
          const transA = (M + N + K) % 2 === 1;
          const c = makeCase(M, N, K, transA, transB);
          checkPacked(c, `M=${M} N=${N} K=${K} transA=${transA} transB=${transB}`, K !== 768 || M % 3 === 0);
          release(c);
        }
  // batch 2 with B broadcast: one packed B for both batches
  const c = makeCase(3, 33, 7, false, true, 2, false, true);
  checkPacked(c, 'batch 2, B broadcast', false);
  release(c);
});

test("the few-rows kernel on B packed whole at the LM head's size: [50277, 768] weights (a partial last strip), M 1, 2, 5, 8; B [K, N] M 1", () => {
  const N = 50277,
    K = 768;
  for (const [M, transB] of [
    [1, true],
    [2, true],
    [5, true],
    [8, true],
    [1, false],
  ] as const) {
    const p: MatmulParams = { batch: 1, M, N, K, transA: false, transB, aBatchStride: M * K, bBatchStride: K * N };
    const c: Case = { a: heap.allocF32(M * K), b: heap.allocF32(K * N), out: heap.allocF32(M * N), p };
    pattern(c.a, M);
    pattern(c.b, 7);
    checkPacked(c, `M=${M} N=${N} K=${K} transB=${transB}`, M === 1);
    release(c);
  }
});

test('the packed path refuses what it cannot do: no packed B, more than 8 rows, columns off a strip', () => {
  const c = makeCase(9, 33, 7, false, true);
  const q = packed(c);
  assert.throws(() => wasmMatmul(heap, [c.a, c.b], [c.out], c.p, 'packed'), /packed few-rows kernel/);
  assert.throws(() => wasmMatmul(heap, [c.a, c.b], [c.out], q, 'packed'), /packed few-rows kernel/);
  assert.throws(() => wasmMatmulRect(heap, [c.a, c.b], [c.out], q, { m0: 0, m1: 2, n0: 4, n1: 33 }, 'packed'), /packed few-rows kernel/);
  // more than 8 rows with a packed B: the blocked kernel, which ignores it
  c.out.fill(NaN);
  wasmMatmul(heap, [c.a, c.b], [c.out], q);
  const want = c.out.slice();
  wasmMatmul(heap, [c.a, c.b], [c.out], c.p);
  assert.is(bitsEqual(c.out, want), -1);
  heap.free(q.packedB!);
  release(c);
});

test('edge cases: K = 0 gives zeros, empty outputs, arrays that are not heap views', () => {
  const c = makeCase(5, 6, 0, false, false, 2);
  wasmMatmul(heap, [c.a, c.b], [c.out], c.p);
  assert.ok(
    c.out.subarray(0, 60).every((x) => x === 0),
    'K = 0: zeros',
  );
  release(c);
  const e = makeCase(0, 4, 3, false, true);
  wasmMatmul(heap, [e.a, e.b], [e.out], e.p);
  release(e);
  const d = makeCase(9, 9, 9, false, false);
  assert.throws(() => wasmMatmul(heap, [new Float32Array(81), d.b], [d.out], d.p), /view of the heap/);
  assert.throws(() => wasmMatmul(heap, [d.a, d.b], [d.out], { ...d.p, K: 10 }), /needs/);
  assert.throws(() => wasmMatmulRect(heap, [d.a, d.b], [d.out], d.p, { m0: 0, m1: 10, n0: 0, n1: 9 }), /outside/);
  release(d);
  assert.is(heap.stats().inUse, 0, 'every block returned, scratch included');
});

test.run();
