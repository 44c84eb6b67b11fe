// The WebAssembly float32 softmax family (engine/wasm/kernels/softmax.ts) against the scalar kernels
// of engine/cpu/kernels/softmax.ts (float64, rounded once) on plain Float32Arrays: seeded rows of
// 1, 7, 33, 1025, 4099 columns, confident rows (one logit far above the rest: probabilities near 1,
// log-probabilities and losses near 0), ties at the max, -inf logits, rows with NaN, +inf and all
// -inf, targets at the max, elsewhere and ignored; outputs NaN-poisoned and fenced.
//
// Bounds (u = 2^-24; D = rowDepth(cols), the most float32 additions a term of a row sum goes
// through; ulp = the float32 spacing at the reference). Each float32 operation rounds once (|rel|
// <= u), exp is within 1 ulp (<= 2u relative) and its argument's lo part adds at most 0.35u, so
// e_j = exp(x_j - m) is within 3u; a sum of positive terms within (D + 3)u.
//   softmax: e_j / s: 3u + (D + 3)u + u  ->  (D + 8) ulp, plus 2^-148 for subnormal results.
//   log-softmax: (x - m) rounded (|x - m| <= |out|) minus log s, log s = log1p((c - 1) + s1) with
//     (c - 1) + s1 within (D + 4)u relative, log1p within 1 ulp and d log1p(y) <= dy / (1 + y),
//     y / ((1 + y) log1p(y)) <= 1: log s within (D + 6)u log s <= (D + 6)u |out|; the subtraction
//     u |out|  ->  (D + 9) ulp.
//   cross-entropy: (m - x_t) + log s, both >= 0: the same (D + 9) ulp.
//   cross-entropy backward: p_j g within (D + 9)u; at the target -((c - 1) + s1) / s g, numerator and
//     denominator (D + 4)u each, then two roundings  ->  (2D + 11) ulp.
//   softmax backward: s = sum dy y within (D + 1)u S, S = sum |dy y|; y (dy - s) adds 2u (|dy| + |s|)
//     |y|: |err| <= |y| ((D + 1)u S + 2u (|dy| + |s|)) + 1 ulp.
//   log-softmax backward: dy - exp(y) s: |err| <= exp(y) (3u |s| + D u sum |dy|) + u |out| + 1 ulp.
// The scalar kernels compute lse = m + log(sum) in float64, then x - lse or lse - x_t: when the
// result is tiny the float64 cancellation leaves about 2^-52 (|x| + |m| + log s) absolute, which the
// bounds add (the float32 results above are the more accurate ones there). NaN, inf and zero
// references must be matched exactly. Splits: parts over several row ranges give the bits of run.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import * as ref from '../../../engine/cpu/kernels/softmax.ts';
import * as mi from '../../../engine/index.ts';
import type { KernelParams } from '../../../engine/kernels.ts';
import { cross_entropy, cross_entropy_bwd, softmax, softmax_bwd } from '../../../engine/wasm/kernels/softmax.ts';
import { rowDepth } from '../../../engine/wasm/loops.ts';
import { WasmHeap } from '../../../engine/wasm/memory.ts';
import {
  assertPartsMatchRun,
  assertSameBits,
  checkGuard,
  normalsOnHeap,
  onHeap,
  onHeapI32,
  poisoned,
  release,
  same,
  U,
  ulp,
} from './f32-check.ts';

const test = suite('wasm softmax');
const rng = new mi.Rng('wasm-softmax');
const heap = new WasmHeap({ initialPages: 64 });
const normals = (n: number) => normalsOnHeap(heap, rng, n);
const IGNORE = -100;

type Kind = 'normal' | 'confident' | 'ties' | 'masked' | 'nan' | 'inf' | 'allneg';

/** One row of logits of a kind. */
function row(cols: number, kind: Kind): number[] {
  const xs = Array.from({ length: cols }, () => 3 * rng.normal());
  const j = Math.floor(rng.uniform() * cols);
  if (kind === 'confident') xs[j] = 25 + rng.uniform();
  if (kind === 'ties' && cols > 1) {
    xs[j] = 9;
    xs[(j + 1) % cols] = 9;
  }
  if (kind === 'masked') for (let k = 0; k < cols; k += 3) if (k !== j) xs[k] = -Infinity;
  if (kind === 'nan') xs[j] = NaN;
  if (kind === 'inf') xs[j] = Infinity;
  if (kind === 'allneg') xs.fill(-Infinity);
  return xs;
}

const KINDS: Kind[] = ['normal', 'confident', 'ties', 'masked', 'normal', 'confident', 'nan', 'inf', 'allneg'];
const COLS = [1, 2, 7, 33, 1025, 4099];

interface Batch {
  rows: number;
  cols: number;
  x: Float32Array;
  targets: Int32Array;
}

function batch(cols: number): Batch {
  const rows = KINDS.length + 3;
  const xs: number[] = [];
  const ts: number[] = [];
  for (let r = 0; r < rows; r++) {
    const vals = row(cols, KINDS[r % KINDS.length]);
    xs.push(...vals);
    // the target: the max, a random column, or ignored
    let argmax = 0;
    for (let j = 1; j < cols; j++) if (vals[j] > vals[argmax]) argmax = j;
    ts.push(r % 4 === 3 ? IGNORE : r % 2 ? argmax : Math.floor(rng.uniform() * cols));
  }
  return { rows, cols, x: onHeap(heap, xs), targets: onHeapI32(heap, ts) };
}

/** Row statistics in float64 for the bounds: m (NaN skipped), log s. */
function stats(x: Float32Array, off: number, cols: number): { m: number; logS: number } {
  let m = -Infinity;
  for (let j = 0; j < cols; j++) if (x[off + j] > m) m = x[off + j];
  let s = 0;
  for (let j = 0; j < cols; j++) s += Math.exp(x[off + j] - m);
  return { m, logS: Math.log(s) };
}

/** got within bound(i) of want, exact where want is NaN, infinite or zero. */
function within(got: Float32Array, want: Float32Array, bound: (i: number) => number, what: string): void {
  for (let i = 0; i < want.length; i++) {
    const g = got[i],
      w = want[i];
    if (same(g, w)) continue;
    if (!Number.isFinite(w) || !Number.isFinite(g) || (w === 0 && bound(i) === 0))
      assert.unreachable(`${what}: [${i}] = ${g}, want ${w} exactly`);
    const b = bound(i);
    if (!(Math.abs(g - w) <= b))
      assert.unreachable(`${what}: [${i}] = ${g}, want ${w}: error ${Math.abs(g - w)} > ${b} (${(b / ulp(w)).toFixed(1)} ulp)`);
  }
}

test('softmax and log-softmax: within (D + 8) and (D + 9) ulp of the scalar kernel', () => {
  for (const cols of COLS) {
    const { rows, x, targets } = batch(cols);
    const D = rowDepth(cols);
    for (const log of [false, true]) {
      const p: KernelParams['softmax'] = { rows, cols, log };
      const out = poisoned(heap, rows * cols);
      assert.ok(softmax.accepts([x], [out], p));
      softmax.run(heap, [x], [out], p);
      const want = new Float32Array(rows * cols).fill(NaN);
      ref.softmax([x], [want], p);
      const st = Array.from({ length: rows }, (_, r) => stats(x, r * cols, cols));
      within(
        out,
        want,
        (i) => {
          const { m, logS } = st[Math.floor(i / cols)];
          const f64 = 2 ** -52 * (Math.abs(x[i]) + Math.abs(m) + Math.abs(logS));
          return log ? (D + 9) * ulp(want[i]) + f64 : (D + 8) * ulp(want[i]) + 2 ** -148 + f64 * Math.abs(want[i]);
        },
        `${log ? 'log-' : ''}softmax ${rows}x${cols}`,
      );
      checkGuard(out, `softmax ${cols}`);
      release(heap, out);
    }
    release(heap, x, targets);
  }
});

test('cross-entropy and its backward: within (D + 9) and (2D + 11) ulp of the scalar kernel; ignored rows 0', () => {
  for (const cols of COLS) {
    const { rows, x, targets } = batch(cols);
    const D = rowDepth(cols);
    const st = Array.from({ length: rows }, (_, r) => stats(x, r * cols, cols));
    const p = { rows, cols, ignoreIndex: IGNORE };
    const loss = poisoned(heap, rows);
    assert.ok(cross_entropy.accepts([x, targets], [loss], p));
    cross_entropy.run(heap, [x, targets], [loss], p);
    const wantLoss = new Float32Array(rows).fill(NaN);
    ref.cross_entropy([x, targets], [wantLoss], p);
    within(
      loss,
      wantLoss,
      (r) => (D + 9) * ulp(wantLoss[r]) + 2 ** -52 * (Math.abs(st[r].m) + Math.abs(st[r].logS) + Math.abs(x[r * cols + targets[r]])),
      `cross_entropy ${rows}x${cols}`,
    );
    for (let r = 0; r < rows; r++) if (targets[r] === IGNORE) assert.ok(Object.is(loss[r], 0), `ignored row ${r}: loss 0`);
    checkGuard(loss, 'loss');

    const g = normals(rows);
    const dx = poisoned(heap, rows * cols);
    assert.ok(cross_entropy_bwd.accepts([x, targets, g], [dx], p));
    cross_entropy_bwd.run(heap, [x, targets, g], [dx], p);
    const want = new Float32Array(rows * cols).fill(NaN);
    ref.cross_entropy_bwd([x, targets, g], [want], p);
    within(
      dx,
      want,
      (i) => {
        const r = Math.floor(i / cols);
        const { m, logS } = st[r];
        return (2 * D + 11) * ulp(want[i]) + 2 ** -148 + 2 ** -51 * (Math.abs(x[i]) + Math.abs(m) + Math.abs(logS) + 1) * Math.abs(g[r]);
      },
      `cross_entropy_bwd ${rows}x${cols}`,
    );
    for (let r = 0; r < rows; r++) if (targets[r] === IGNORE) for (let j = 0; j < cols; j++) assert.ok(Object.is(dx[r * cols + j], 0));
    checkGuard(dx, 'dx');
    release(heap, x, targets, loss, g, dx);
  }
});

test('softmax backward (both): within the bounds of the header', () => {
  for (const cols of COLS) {
    const rows = 9;
    const D = rowDepth(cols);
    for (const log of [false, true]) {
      // y: a forward output (probabilities, or log-probabilities), dy: anything
      const { x, targets } = batch(cols);
      const xs = x.subarray(0, rows * cols).map((v) => (Number.isFinite(v) ? v : 0.5));
      const y = new Float32Array(rows * cols);
      ref.softmax([xs], [y], { rows, cols, log });
      const yh = onHeap(heap, y),
        dy = normals(rows * cols);
      const p = { rows, cols, log };
      const dx = poisoned(heap, rows * cols);
      assert.ok(softmax_bwd.accepts([yh, dy], [dx], p));
      softmax_bwd.run(heap, [yh, dy], [dx], p);
      const want = new Float32Array(rows * cols).fill(NaN);
      ref.softmax_bwd([yh, dy], [want], p);
      const sums = Array.from({ length: rows }, (_, r) => {
        let s = 0,
          S = 0;
        for (let j = r * cols; j < (r + 1) * cols; j++) {
          s += log ? dy[j] : dy[j] * yh[j];
          S += Math.abs(log ? dy[j] : dy[j] * yh[j]);
        }
        return { s, S };
      });
      within(
        dx,
        want,
        (i) => {
          const { s, S } = sums[Math.floor(i / cols)];
          if (log) return Math.exp(yh[i]) * (3 * U * Math.abs(s) + D * U * S) + U * Math.abs(want[i]) + ulp(want[i]);
          return Math.abs(yh[i]) * ((D + 1) * U * S + 2 * U * (Math.abs(dy[i]) + Math.abs(s))) + ulp(want[i]);
        },
        `${log ? 'log-' : ''}softmax_bwd ${rows}x${cols}`,
      );
      checkGuard(dx, 'dx');
      release(heap, x, targets, yh, dy, dx);
    }
  }
});

test('confident rows: log-probability and loss near 0 keep their relative accuracy', () => {
  // one logit 30 above the others: p = 1 - ~1e-13, log p ~ -1e-13, which float32 log(1 + s1) would round to 0
  const cols = 33;
  const xs = Array.from({ length: cols }, (_, j) => (j === 5 ? 30 : Math.sin(j)));
  const x = onHeap(heap, xs),
    t = onHeapI32(heap, [5]);
  const out = poisoned(heap, cols),
    loss = poisoned(heap, 1);
  softmax.run(heap, [x], [out], { rows: 1, cols, log: true });
  cross_entropy.run(heap, [x, t], [loss], { rows: 1, cols, ignoreIndex: IGNORE });
  let s1 = 0;
  for (let j = 0; j < cols; j++) if (j !== 5) s1 += Math.exp(x[j] - 30);
  const exact = Math.log1p(s1);
  assert.ok(out[5] < 0 && Math.abs(-out[5] - exact) <= 8 * U * exact, `log p = ${out[5]}, want ${-exact}`);
  assert.ok(Math.abs(loss[0] - exact) <= 8 * U * exact, `loss ${loss[0]}, want ${exact}`);
  release(heap, x, t, out, loss);
});

test('in place (the output is the input): the same bits as out of place', () => {
  const cols = 33;
  const { rows, x, targets } = batch(cols);
  const g = normals(rows);
  const q = { rows, cols, ignoreIndex: IGNORE };
  const outOfPlace = poisoned(heap, rows * cols);
  cross_entropy_bwd.run(heap, [x, targets, g], [outOfPlace], q);
  const inPlace = onHeap(heap, x);
  cross_entropy_bwd.run(heap, [inPlace, targets, g], [inPlace], q);
  assertSameBits(inPlace, outOfPlace, 'cross_entropy_bwd in place');
  for (const log of [false, true]) {
    const p = { rows, cols, log };
    softmax.run(heap, [x], [outOfPlace], p);
    inPlace.set(x);
    softmax.run(heap, [inPlace], [inPlace], p);
    assertSameBits(inPlace, outOfPlace, `softmax log=${log} in place`);
  }
  release(heap, x, targets, g, outOfPlace, inPlace);
});

test('targets out of range throw the scalar kernel error; ignoreIndex must be an int32', () => {
  const x = onHeap(heap, [1, 2, 3, 4, 5, 6]);
  const t = onHeapI32(heap, [0, 3]);
  const loss = poisoned(heap, 2),
    dx = poisoned(heap, 6),
    g = onHeap(heap, [1, 1]);
  const p = { rows: 2, cols: 3, ignoreIndex: -1 };
  assert.throws(() => cross_entropy.run(heap, [x, t], [loss], p), /target 3 in row 1 is out of range \[0, 3\)/);
  assert.throws(() => cross_entropy_bwd.run(heap, [x, t, g], [dx], p), /target 3 in row 1 is out of range/);
  assert.not.ok(cross_entropy.accepts([x, t], [loss], { ...p, ignoreIndex: 2 ** 40 }));
  assert.not.ok(cross_entropy.accepts([x, new Float32Array(2)], [loss], p));
  assert.not.ok(softmax.accepts([new Float64Array(6)], [new Float64Array(6)], { rows: 2, cols: 3, log: false }));
  release(heap, x, t, loss, dx, g);
});

test('split: parts over several row ranges give the bits of run, every kernel', () => {
  const cols = 1025;
  const { rows, x, targets } = batch(cols);
  const g = normals(rows);
  const dy = normals(rows * cols);
  const cuts = [
    [0, 1, rows],
    [0, 5, 6, rows],
    [0, 7, rows],
  ];
  const check = (name: string, run: (o: Float32Array) => void, part: (o: Float32Array, r0: number, r1: number) => void, n: number) =>
    assertPartsMatchRun(heap, name, n, run, part, cuts);
  for (const log of [false, true]) {
    const p = { rows, cols, log };
    check(
      `softmax log=${log}`,
      (o) => softmax.run(heap, [x], [o], p),
      (o, a, b) => softmax.split!.part(heap, [x], [o], p, a, b, 0, 0),
      rows * cols,
    );
    check(
      `softmax_bwd log=${log}`,
      (o) => softmax_bwd.run(heap, [x, dy], [o], p),
      (o, a, b) => softmax_bwd.split!.part(heap, [x, dy], [o], p, a, b, 0, 0),
      rows * cols,
    );
  }
  const q = { rows, cols, ignoreIndex: IGNORE };
  check(
    'cross_entropy',
    (o) => cross_entropy.run(heap, [x, targets], [o], q),
    (o, a, b) => cross_entropy.split!.part(heap, [x, targets], [o], q, a, b, 0, 0),
    rows,
  );
  check(
    'cross_entropy_bwd',
    (o) => cross_entropy_bwd.run(heap, [x, targets, g], [o], q),
    (o, a, b) => cross_entropy_bwd.split!.part(heap, [x, targets, g], [o], q, a, b, 0, 0),
    rows * cols,
  );
  assert.equal(softmax.split!.range({ rows, cols, log: false }), null);
  assert.equal(softmax.split!.range({ rows: 64, cols: 1024, log: false }), { n: 64, align: 1 });
  release(heap, x, targets, g, dy);
  assert.is(heap.stats().inUse, 0, 'every block returned');
});

test.run();
