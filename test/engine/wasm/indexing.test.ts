// The WebAssembly indexing kernels (engine/wasm/kernels/indexing.ts) against the scalar kernels of
// engine/cpu/kernels/indexing.ts on plain Float32Arrays with int32 indices: tables of 1 to 300
// rows, rows of 1, 7, 33, 1025 floats, repeated indices, out-of-range indices; outputs NaN-poisoned
// and fenced.
//
// Bounds: gather and onehot copy or write constants: exactly the reference. scatter_add sums the
// rows of each index in index order in float32, from 0: each term goes through at most `count`
// additions (count: how often its index occurs), so |out - ref| <= gamma_count sum |g| + 1 ulp (the
// reference sums in float64 and rounds once); and it must equal, bit for bit, that sequential
// float32 sum computed here with Math.fround. Splits: parts give run's bits.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import * as ref from '../../../engine/cpu/kernels/indexing.ts';
import * as mi from '../../../engine/index.ts';
import { gather, onehot, scatter_add } from '../../../engine/wasm/kernels/indexing.ts';
import { WasmHeap } from '../../../engine/wasm/memory.ts';
import {
  assertPartsMatchRun,
  assertSameBits,
  assertSameFloats,
  checkGuard,
  gamma,
  normalsOnHeap,
  onHeapI32,
  poisoned,
  release,
  ulp,
} from './f32-check.ts';

const test = suite('wasm indexing');
const rng = new mi.Rng('wasm-indexing');
const heap = new WasmHeap({ initialPages: 128 });

const normals = (n: number) => normalsOnHeap(heap, rng, n);
/** n indices in [0, rows), skewed so that some repeat often. */
const indices = (n: number, rows: number) =>
  onHeapI32(
    heap,
    Array.from({ length: n }, () => Math.floor(rows * rng.uniform() ** 2)),
  );

const SHAPES: [number, number, number][] = []; // n, rows, cols
for (const rows of [1, 7, 300]) for (const cols of [1, 7, 33, 1025]) for (const n of [1, 5, 64]) SHAPES.push([n, rows, cols]);

test('gather: bit-identical to the scalar kernel', () => {
  for (const [n, rows, cols] of SHAPES) {
    const table = normals(rows * cols),
      idx = indices(n, rows);
    const p = { n, rows, cols };
    const out = poisoned(heap, n * cols);
    assert.ok(gather.accepts([table, idx], [out], p));
    gather.run(heap, [table, idx], [out], p);
    const want = new Float32Array(n * cols);
    ref.gather([table, idx], [want], p);
    assertSameBits(out, want, `gather n${n} rows${rows} cols${cols}`);
    checkGuard(out, 'gather');
    release(heap, table, idx, out);
  }
});

test('scatter_add: the float32 sums in index order, within gamma_count sum |g| + 1 ulp of the scalar kernel', () => {
  for (const [n, rows, cols] of SHAPES) {
    const g = normals(n * cols),
      idx = indices(n, rows);
    const p = { n, rows, cols };
    const out = poisoned(heap, rows * cols);
    assert.ok(scatter_add.accepts([g, idx], [out], p));
    scatter_add.run(heap, [g, idx], [out], p);
    const want = new Float32Array(rows * cols);
    ref.scatter_add([g, idx], [want], p);
    const seq = new Float32Array(rows * cols),
      S = new Float64Array(rows * cols),
      count = new Int32Array(rows);
    for (let i = 0; i < n; i++) {
      count[idx[i]]++;
      for (let c = 0; c < cols; c++) {
        const o = idx[i] * cols + c;
        seq[o] = Math.fround(seq[o] + g[i * cols + c]);
        S[o] += Math.abs(g[i * cols + c]);
      }
    }
    for (let o = 0; o < rows * cols; o++) {
      const b = gamma(count[Math.floor(o / cols)]) * S[o] + ulp(want[o]);
      if (!(Math.abs(out[o] - want[o]) <= b)) assert.unreachable(`scatter_add [${o}] = ${out[o]}, want ${want[o]}: error > ${b}`);
    }
    assertSameBits(out, seq, `scatter_add n${n} rows${rows} cols${cols}: the sequential float32 sums`);
    checkGuard(out, 'scatter_add');
    release(heap, g, idx, out);
  }
});

test('onehot: exactly the scalar kernel, zero rows for indices out of range', () => {
  for (const depth of [1, 7, 33, 1025]) {
    const idx = onHeapI32(heap, [0, depth - 1, -1, depth, 3 % depth, 2 ** 31 - 1, -(2 ** 31)]);
    const p = { n: idx.length, depth };
    const out = poisoned(heap, p.n * depth);
    assert.ok(onehot.accepts([idx], [out], p));
    onehot.run(heap, [idx], [out], p);
    const want = new Float32Array(p.n * depth);
    ref.onehot([idx], [want], p);
    assertSameFloats(out, want, `onehot depth ${depth}`);
    checkGuard(out, 'onehot');
    release(heap, idx, out);
  }
});

test('indices out of range throw the scalar kernel errors', () => {
  const table = normals(12);
  for (const bad of [-1, 3, 1000]) {
    const idx = onHeapI32(heap, [0, 2, bad, 1]);
    const out = poisoned(heap, 16);
    assert.throws(
      () => gather.run(heap, [table, idx], [out], { n: 4, rows: 3, cols: 4 }),
      new RegExp(`gather: index ${bad} at position 2 is out of range \\[0, 3\\)`),
    );
    const s = poisoned(heap, 12);
    assert.throws(
      () => scatter_add.run(heap, [out, idx], [s], { n: 4, rows: 3, cols: 4 }),
      new RegExp(`scatter_add: index ${bad} at position 2 is out of range`),
    );
    assert.ok(
      Array.from(s).every((v) => Number.isNaN(v)),
      'scatter_add writes nothing before it throws',
    );
    release(heap, idx, out, s);
  }
  release(heap, table);
  // no columns: the indices are still checked
  const idx = onHeapI32(heap, [0, 5]),
    empty = heap.allocF32(0);
  assert.throws(() => scatter_add.run(heap, [empty, idx], [empty], { n: 2, rows: 3, cols: 0 }), /index 5 at position 1/);
  release(heap, idx, empty);
  assert.not.ok(gather.accepts([new Float32Array(4), new Float32Array(1)], [new Float32Array(4)], { n: 1, rows: 1, cols: 4 }));
});

test('split: gather and onehot over rows, scatter_add over columns: parts give the bits of run', () => {
  const n = 300,
    rows = 50,
    cols = 517;
  const table = normals(rows * cols),
    idx = indices(n, rows),
    g = normals(n * cols);
  const p = { n, rows, cols };
  assert.equal(gather.split!.range(p), { n, align: 1 });
  assert.equal(scatter_add.split!.range(p), { n: cols, align: 4 });
  const check = (
    what: string,
    size: number,
    run: (o: Float32Array) => void,
    part: (o: Float32Array, a: number, b: number) => void,
    cuts: number[][],
  ) => assertPartsMatchRun(heap, what, size, run, part, cuts);
  check(
    'gather',
    n * cols,
    (o) => gather.run(heap, [table, idx], [o], p),
    (o, a, b) => gather.split!.part(heap, [table, idx], [o], p, a, b, 0, 0),
    [
      [0, 1, n],
      [0, 150, 151, n],
    ],
  );
  check(
    'scatter_add',
    rows * cols,
    (o) => scatter_add.run(heap, [g, idx], [o], p),
    (o, a, b) => scatter_add.split!.part(heap, [g, idx], [o], p, a, b, 0, 0),
    [
      [0, 4, cols],
      [0, 256, 260, cols],
    ],
  );
  const q = { n, depth: cols };
  check(
    'onehot',
    n * cols,
    (o) => onehot.run(heap, [idx], [o], q),
    (o, a, b) => onehot.split!.part(heap, [idx], [o], q, a, b, 0, 0),
    [[0, 7, 200, n]],
  );
  release(heap, table, idx, g);
  assert.is(heap.stats().inUse, 0, 'every block returned');
});

test.run();
