// The WebAssembly float32 elementwise kernels (engine/wasm/kernels/elementwise.ts) against the
// scalar kernels of engine/cpu/kernels/elementwise.ts (float64 arithmetic, rounded once to float32)
// on plain Float32Arrays: seeded inputs of awkward sizes (1, 7, 33, 1025, 4099) with edge values
// (zeros, infinities, NaN, extremes, subnormals) mixed in, outputs NaN-poisoned and fenced by guard
// elements.
//
// Bounds, per op (derivations: engine/wasm/math.ts's header and this file's math.test.ts):
//   exact (the same float32 number, NaN = NaN, -0 != +0): neg abs sign square recip sqrt relu step
//   clamp inside affine, and every binary op: float32 +, -, *, / of float32 operands are the float64
//   results rounded (float64 has more than 2 * 24 + 2 bits), min / max / comparisons are exact, and
//   affine is computed in float64 lanes as the scalar kernel computes it;
//   within n ulp of the reference: exp 1, log 1, tanh 1, rsqrt 1, sigmoid 2, softplus 2, silu 3,
//   silu_grad 3 (+ 2^-24 absolute, near its zero).
// where: exactly the scalar kernel (a select), float32 or int32 conditions (NaN != 0, -0 == 0).
// Splits: every `part` over several ranges of elements must give the bits of `run`.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { binary as scalarBinary, unary as scalarUnary, where as scalarWhere } from '../../../engine/cpu/kernels/elementwise.ts';
import type { BinaryOp, UnaryOp } from '../../../engine/elementwise.ts';
import * as mi from '../../../engine/index.ts';
import type { KernelParams } from '../../../engine/kernels.ts';
import { stridesOf } from '../../../engine/shape.ts';
import {
  binary,
  collapse,
  f32AtLeast,
  f32AtMost,
  unary,
  WASM_BINARY_OPS,
  WASM_UNARY_OPS,
  where,
} from '../../../engine/wasm/kernels/elementwise.ts';
import { WasmHeap } from '../../../engine/wasm/memory.ts';
import { assertSameBits, checkGuard, EDGE_VALUES, onHeap, onHeapI32, poisoned, release, same, ulp } from './f32-check.ts';

const test = suite('wasm elementwise');
const rng = new mi.Rng('wasm-elementwise');
const heap = new WasmHeap({ initialPages: 64 });

const ULPS: Partial<Record<UnaryOp, [number, number]>> = {
  exp: [1, 0],
  log: [1, 0],
  tanh: [1, 0],
  rsqrt: [1, 0],
  sigmoid: [2, 0],
  softplus: [2, 0],
  silu: [3, 0],
  silu_grad: [3, 2 ** -24],
};

const SIZES = [1, 2, 3, 4, 7, 33, 1025, 4099];

/** n seeded values: normals scaled by `scale`, every 13th an edge value. */
function values(n: number, scale = 3): number[] {
  return Array.from({ length: n }, (_, i) => (i % 13 === 5 ? EDGE_VALUES[((i / 13) % EDGE_VALUES.length) | 0] : scale * rng.normal()));
}

/** got against want: the same float where the bound is exact, else within ulps (+ abs); the same float for NaN, inf, 0. */
function compare(got: Float32Array, want: Float32Array, [ulps, abs]: [number, number], what: string, x?: ArrayLike<number>): void {
  for (let i = 0; i < want.length; i++) {
    const g = got[i],
      w = want[i];
    if (same(g, w)) continue;
    const exactly = ulps === 0 || !Number.isFinite(w) || !Number.isFinite(g) || w === 0;
    if (exactly || Math.abs(g - w) > ulps * ulp(w) + abs)
      assert.unreachable(`${what}: [${i}]${x ? ` (x = ${x[i]})` : ''} = ${g}, want ${w}${exactly ? ' exactly' : ` within ${ulps} ulp`}`);
  }
}

const PARAMS: Partial<Record<UnaryOp, [number, number][]>> = {
  clamp: [
    [-1, 2],
    [0.1, 0.7],
    [-Infinity, 0],
    [0.30000000000000004, 1e39],
    [NaN, 1],
  ],
  inside: [
    [-1, 2],
    [0.1, 0.7],
    [0.30000000000000004, 0.30000001192092896],
    [-1e39, 1e39],
    [NaN, 1],
  ],
  affine: [
    [2, 0],
    [-1, 1],
    [0.1, 1e-3],
    [1e30, -1e30],
    [3.000000001, 0.7],
  ],
};

test('unary: every op, sizes 1 to 4099, edge values, against the scalar kernel', () => {
  for (const op of WASM_UNARY_OPS) {
    const scale = op === 'exp' || op === 'sigmoid' || op === 'tanh' ? 20 : 3;
    for (const [alpha, beta] of PARAMS[op] ?? [[0, 0]]) {
      for (const n of SIZES) {
        const xs = values(n, scale);
        // inside's bounds: put float32 neighbours of the bounds among the inputs
        if (op === 'inside' || op === 'clamp')
          for (let i = 0; i + 1 < n; i += 5) xs[i] = i % 2 ? Math.fround(alpha) : Math.fround(beta) * (1 + 2 ** -23 * ((i % 3) - 1));
        const x = onHeap(heap, xs);
        const out = poisoned(heap, n);
        const p: KernelParams['unary'] = { op, size: n, alpha, beta };
        assert.ok(unary.accepts([x], [out], p), `accepts ${op}`);
        unary.run(heap, [x], [out], p);
        const want = new Float32Array(n).fill(NaN);
        scalarUnary([x], [want], p);
        compare(out, want, ULPS[op] ?? [0, 0], `${op}(${alpha}, ${beta}) n=${n}`, x);
        checkGuard(out, `${op} n=${n}`);
        release(heap, x, out);
      }
    }
  }
});

test('unary: pow_scalar, and int32 / float64 arrays, go to the scalar kernel', () => {
  const x = heap.allocF32(8),
    out = heap.allocF32(8);
  assert.not.ok(unary.accepts([x], [out], { op: 'pow_scalar', size: 8, alpha: 2, beta: 0 }));
  assert.not.ok(unary.accepts([new Int32Array(8)], [new Int32Array(8)], { op: 'neg', size: 8, alpha: 0, beta: 0 }));
  assert.not.ok(unary.accepts([new Float64Array(8)], [new Float64Array(8)], { op: 'exp', size: 8, alpha: 0, beta: 0 }));
  assert.ok(unary.accepts([x], [out], { op: 'exp', size: 8, alpha: 0, beta: 0 }));
  release(heap, x, out);
});

test("inside's bounds are rounded inwards, clamp's to nearest", () => {
  assert.is(f32AtLeast(0.1), Math.fround(0.1)); // fround(0.1) > 0.1
  assert.ok(f32AtLeast(0.3) > 0.3 && f32AtLeast(0.3) === Math.fround(0.30000001));
  assert.ok(f32AtMost(0.1) < 0.1);
  assert.is(f32AtLeast(-Infinity), -Infinity);
  assert.is(f32AtLeast(1e39), Infinity);
  assert.is(f32AtMost(1e39), 3.4028234663852886e38);
  assert.is(f32AtLeast(-0), -0);
  assert.is(f32AtLeast(2 ** -160), 2 ** -149);
  assert.is(f32AtMost(2 ** -160), 0);
  assert.ok(Number.isNaN(f32AtLeast(NaN)));
});

test('unary split: parts over several ranges give the bits of run', () => {
  for (const op of ['exp', 'silu', 'neg', 'affine', 'softplus'] as UnaryOp[]) {
    const n = 40_003;
    const x = onHeap(heap, values(n));
    const whole = poisoned(heap, n),
      parts = poisoned(heap, n);
    const p: KernelParams['unary'] = { op, size: n, alpha: 0.5, beta: -2 };
    unary.run(heap, [x], [whole], p);
    for (const cuts of [
      [0, 4, n],
      [0, 20_000, 40_000, n],
      [0, 1, 2, 3, 4, 9, n],
      [0, 17_000, n],
    ])
      for (let k = 0; k + 1 < cuts.length; k++) unary.split!.part(heap, [x], [parts], p, cuts[k], cuts[k + 1], 0, 0);
    assertSameBits(parts, whole, `${op} parts`);
    release(heap, x, whole, parts);
  }
  assert.is(unary.split!.range({ op: 'neg', size: 1000, alpha: 0, beta: 0 }), null);
  assert.equal(unary.split!.range({ op: 'neg', size: 1 << 20, alpha: 0, beta: 0 }), { n: 1 << 20, align: 4 });
  assert.equal(unary.split!.range({ op: 'exp', size: 1 << 16, alpha: 0, beta: 0 }), { n: 1 << 16, align: 4 });
});

// ---- binary

/** Strides of an input of shape `inShape` broadcast to `shape` (numpy rules, right-aligned). */
function broadcast(inShape: number[], shape: number[]): number[] {
  const st = stridesOf(inShape);
  const off = shape.length - inShape.length;
  return shape.map((_, d) => (d < off || inShape[d - off] === 1 ? 0 : st[d - off]));
}

interface BinaryCase {
  shape: number[];
  a: number[]; // a's own shape (broadcast), or strides when aStrides given
  b: number[];
  aStrides?: number[];
  bStrides?: number[];
  aSize?: number;
  bSize?: number;
}

const CASES: BinaryCase[] = [
  { shape: [1], a: [1], b: [1] },
  { shape: [], a: [], b: [] },
  { shape: [7], a: [7], b: [7] },
  { shape: [1025], a: [1025], b: [1025] },
  { shape: [4099], a: [4099], b: [] },
  { shape: [4099], a: [], b: [4099] },
  { shape: [7, 33], a: [7, 33], b: [33] },
  { shape: [33, 7], a: [33, 7], b: [33, 1] },
  { shape: [33, 7], a: [1, 7], b: [33, 1] },
  { shape: [3, 4, 5], a: [3, 1, 5], b: [1, 4, 5] },
  { shape: [2, 3, 4, 5, 6], a: [2, 3, 4, 5, 6], b: [6] },
  { shape: [2, 1, 3, 1, 5], a: [2, 1, 3, 1, 5], b: [1, 1, 3, 1, 1] },
  { shape: [5, 3, 7, 2], a: [5, 1, 7, 1], b: [1, 3, 1, 2] },
  { shape: [0, 5], a: [0, 5], b: [5] },
  // transposed and strided views: a is [7, 33] read column-major, b every other element
  { shape: [7, 33], a: [], b: [], aStrides: [1, 7], bStrides: [66, 2], aSize: 231, bSize: 462 },
  { shape: [33, 9], a: [], b: [], aStrides: [9, 1], bStrides: [1, 33], aSize: 297, bSize: 297 },
  { shape: [1025, 3], a: [], b: [], aStrides: [3, 1], bStrides: [0, 0], aSize: 3075, bSize: 1 },
];

function binaryParams(c: BinaryCase, op: BinaryOp): { p: KernelParams['binary']; aSize: number; bSize: number } {
  const size = (s: number[]) => s.reduce((x, y) => x * y, 1);
  const aStrides = c.aStrides ?? broadcast(c.a, c.shape),
    bStrides = c.bStrides ?? broadcast(c.b, c.shape);
  return { p: { op, shape: c.shape, aStrides, bStrides }, aSize: c.aSize ?? size(c.a), bSize: c.bSize ?? size(c.b) };
}

test('binary: every op, broadcasts, transposed and strided inputs, scalars: bit-identical to the scalar kernel', () => {
  for (const op of WASM_BINARY_OPS)
    for (const c of CASES) {
      const { p, aSize, bSize } = binaryParams(c, op);
      const n = p.shape.reduce((x, y) => x * y, 1);
      const a = onHeap(heap, values(aSize)),
        b = onHeap(heap, values(bSize));
      // equal pairs for the comparisons
      for (let i = 0; i < Math.min(aSize, bSize); i += 7) b[i] = a[i];
      const out = poisoned(heap, n);
      assert.ok(binary.accepts([a, b], [out], p), `accepts ${op} ${c.shape}`);
      binary.run(heap, [a, b], [out], p);
      const want = new Float32Array(n).fill(NaN);
      scalarBinary([a, b], [want], p);
      compare(out, want, [0, 0], `${op} shape ${c.shape} strides ${p.aStrides} / ${p.bStrides}`);
      checkGuard(out, `${op} ${c.shape}`);
      release(heap, a, b, out);
    }
});

test('binary split: parts over several ranges (across rows and axes) give the bits of run', () => {
  for (const c of [CASES[6], CASES[9], CASES[10], CASES[12], CASES[14], { shape: [300_001], a: [300_001], b: [] }]) {
    const { p, aSize, bSize } = binaryParams(c, 'mul');
    const n = p.shape.reduce((x, y) => x * y, 1);
    const a = onHeap(heap, values(aSize)),
      b = onHeap(heap, values(bSize));
    const whole = poisoned(heap, n),
      parts = poisoned(heap, n);
    binary.run(heap, [a, b], [whole], p);
    for (const cuts of [
      [0, 4, n],
      [0, Math.floor(n / 3), Math.floor(n / 2), n],
      [0, 1, 2, 3, 5, 8, 13, 21, n],
    ]) {
      parts.fill(NaN);
      for (let k = 0; k + 1 < cuts.length; k++)
        if (cuts[k] < cuts[k + 1]) binary.split!.part(heap, [a, b], [parts], p, cuts[k], cuts[k + 1], 0, 0);
      assertSameBits(parts, whole, `shape ${c.shape} cuts ${cuts}`);
    }
    release(heap, a, b, whole, parts);
  }
  assert.equal(binary.split!.range({ op: 'add', shape: [512, 1024], aStrides: [1024, 1], bStrides: [0, 1] }), { n: 1 << 19, align: 4 });
  assert.is(binary.split!.range({ op: 'add', shape: [64, 64], aStrides: [64, 1], bStrides: [0, 1] }), null);
});

test('where: float32 and int32 conditions, broadcasts and strided views: bit-identical to the scalar kernel', () => {
  for (const c of CASES)
    for (const intCond of [false, true]) {
      const { p: bp, aSize, bSize } = binaryParams(c, 'add');
      // the condition takes a's layout, a takes b's, b takes a's: three strided inputs
      const p: KernelParams['where'] = { shape: bp.shape, cStrides: bp.aStrides, aStrides: bp.bStrides, bStrides: bp.aStrides };
      const n = p.shape.reduce((x, y) => x * y, 1);
      const condValues = values(aSize).map((v, i) => (i % 3 === 0 ? 0 : i % 5 === 0 ? -0 : v));
      const cond = intCond
        ? onHeapI32(
            heap,
            condValues.map((v) => (Number.isNaN(v) ? 7 : Math.trunc(Math.min(Math.max(v, -1e9), 1e9)))),
          )
        : onHeap(heap, condValues);
      const a = onHeap(heap, values(bSize)),
        b = onHeap(heap, values(aSize));
      const out = poisoned(heap, n);
      assert.ok(where.accepts([cond, a, b], [out], p), `accepts where ${c.shape}`);
      where.run(heap, [cond, a, b], [out], p);
      const want = new Float32Array(n).fill(NaN);
      scalarWhere([cond, a, b], [want], p);
      compare(out, want, [0, 0], `where${intCond ? ' (int32 cond)' : ''} shape ${c.shape}`);
      checkGuard(out, 'where');
      if (n > 8) {
        const parts = poisoned(heap, n);
        for (const [r0, r1] of [
          [0, 5],
          [5, Math.floor(n / 2)],
          [Math.floor(n / 2), n],
        ])
          where.split!.part(heap, [cond, a, b], [parts], p, r0, r1, 0, 0);
        assertSameBits(parts, out, `where parts ${c.shape}`);
        release(heap, parts);
      }
      release(heap, cond, a, b, out);
    }
  const x = heap.allocF32(4);
  assert.not.ok(
    where.accepts([x, new Int32Array(4), new Int32Array(4)], [new Int32Array(4)], {
      shape: [4],
      cStrides: [1],
      aStrides: [1],
      bStrides: [1],
    }),
  );
  release(heap, x);
});

test('binary: shapes collapse (size-1 axes dropped, contiguous axes merged); more than 4 axes left, or pow, go to the scalar kernel', () => {
  assert.equal(
    collapse(
      [2, 3, 4],
      [
        [12, 4, 1],
        [0, 0, 0],
      ],
    ),
    { shape: [24], strides: [[1], [0]] },
  );
  assert.equal(
    collapse(
      [2, 3, 4],
      [
        [12, 4, 1],
        [4, 0, 1],
      ],
    ),
    {
      shape: [2, 3, 4],
      strides: [
        [12, 4, 1],
        [4, 0, 1],
      ],
    },
  );
  assert.equal(
    collapse(
      [2, 1, 3, 4],
      [
        [12, 12, 4, 1],
        [0, 0, 4, 1],
      ],
    ),
    {
      shape: [2, 12],
      strides: [
        [12, 1],
        [0, 1],
      ],
    },
  );
  assert.equal(collapse([], [[], []]), { shape: [1], strides: [[0], [0]] });
  const x = heap.allocF32(64);
  const p5: KernelParams['binary'] = { op: 'add', shape: [2, 2, 2, 2, 2], aStrides: [16, 8, 4, 2, 1], bStrides: [0, 8, 0, 2, 0] };
  assert.not.ok(binary.accepts([x, x], [x], p5));
  assert.ok(binary.accepts([x, x], [x], { ...p5, bStrides: [0, 0, 0, 0, 0] }));
  assert.not.ok(binary.accepts([x, x], [x], { op: 'pow', shape: [4], aStrides: [1], bStrides: [1] }));
  assert.not.ok(
    binary.accepts([new Int32Array(4), new Int32Array(4)], [new Int32Array(4)], { op: 'add', shape: [4], aStrides: [1], bStrides: [1] }),
  );
  release(heap, x);
  assert.is(heap.stats().inUse, 0, 'every block returned');
});

test.run();
