// The WebAssembly float32 RMSNorm (engine/wasm/kernels/rmsnorm.ts) against the scalar kernels of
// engine/cpu/kernels/rmsnorm.ts (float64, rounded once) on plain Float32Arrays: rows 1, 3, 17, 64,
// 100 by columns 1, 7, 33, 1025, a row of zeros among them, outputs NaN-poisoned and fenced.
//
// Bounds (u = 2^-24, D = rowDepth(cols), ulp = the float32 spacing at the reference; a relative
// error e is at most e / u ulp):
//   rstd: ss = sum x^2 within (D + 1)u, then / cols, + eps (eps rounded to float32: within u of the
//     sum), sqrt (halves the relative error, adds u), 1 / (u): (D + 8)u / 2, and the reference's
//     rounding  ->  (D + 9) / 2 ulp.
//   y = (x rstd) w: rstd's (D + 8)u / 2 and two roundings  ->  (D + 13) / 2 ulp (+ 2^-148).
//   dx = (rstd w) dy - x c, c = rstd^3 dot / cols, dot = sum (w dy) x within (D + 2)u A,
//     A = sum |w dy x|; c adds 4 roundings:
//     |err| <= 2u |rstd w dy| + |x| rstd^3 / cols ((D + 2)u A + 5u |dot|) + u |dx| + 1 ulp.
//   dw = sum over rows of (x rstd) dy through blocks of B rows (B = dwBlock(rows)): each term two
//     roundings, B additions in its block, one per block after: gamma_(B + blocks + 2) sum |terms| + 1 ulp.
// Splits: forward over any rows; backward over whole dw blocks: parts + finish give the bits of run.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import * as ref from '../../../engine/cpu/kernels/rmsnorm.ts';
import * as mi from '../../../engine/index.ts';
import { dwBlock, rmsnorm, rmsnorm_bwd } from '../../../engine/wasm/kernels/rmsnorm.ts';
import { rowDepth } from '../../../engine/wasm/loops.ts';
import { WasmHeap } from '../../../engine/wasm/memory.ts';
import { assertSameBits, assertWithin, checkGuard, gamma, onHeap, poisoned, release, U, ulp } from './f32-check.ts';

const test = suite('wasm rmsnorm');
const rng = new mi.Rng('wasm-rmsnorm');
const heap = new WasmHeap({ initialPages: 64 });
const EPS = 1e-5;

const normals = (n: number, scale = 1) => Array.from({ length: n }, () => scale * rng.normal());

function inputs(rows: number, cols: number) {
  const xs = normals(rows * cols, 2);
  if (rows > 2) xs.fill(0, cols, 2 * cols); // row 1: zeros (rstd = 1 / sqrt(eps))
  return {
    x: onHeap(heap, xs),
    w: onHeap(
      heap,
      normals(cols).map((v) => 1 + 0.1 * v),
    ),
    dy: onHeap(heap, normals(rows * cols)),
  };
}

const SHAPES: [number, number][] = [];
for (const rows of [1, 3, 17, 64, 100]) for (const cols of [1, 7, 33, 1025]) SHAPES.push([rows, cols]);

test('forward: rstd within (D + 9) / 2 ulp, y within (D + 13) / 2 ulp of the scalar kernel', () => {
  for (const [rows, cols] of SHAPES) {
    const { x, w, dy } = inputs(rows, cols);
    const D = rowDepth(cols);
    const p = { rows, cols, eps: EPS };
    const y = poisoned(heap, rows * cols),
      rstd = poisoned(heap, rows);
    assert.ok(rmsnorm.accepts([x, w], [y, rstd], p));
    rmsnorm.run(heap, [x, w], [y, rstd], p);
    const wantY = new Float32Array(rows * cols),
      wantR = new Float32Array(rows);
    ref.rmsnorm([x, w], [wantY, wantR], p);
    assertWithin(rstd, wantR, (r) => ((D + 9) / 2) * ulp(wantR[r]), `rstd ${rows}x${cols}`);
    assertWithin(y, wantY, (i) => ((D + 13) / 2) * ulp(wantY[i]) + 2 ** -148, `y ${rows}x${cols}`);
    checkGuard(y, 'y');
    checkGuard(rstd, 'rstd');
    release(heap, x, w, dy, y, rstd);
  }
});

test('backward: dx and dw within the bounds of the header', () => {
  for (const [rows, cols] of SHAPES) {
    const { x, w, dy } = inputs(rows, cols);
    const D = rowDepth(cols);
    const rstd = onHeap(heap, new Float32Array(rows));
    ref.rmsnorm([x, w], [new Float32Array(rows * cols), rstd], { rows, cols, eps: EPS });
    const p = { rows, cols };
    const dx = poisoned(heap, rows * cols),
      dw = poisoned(heap, cols);
    assert.ok(rmsnorm_bwd.accepts([x, w, rstd, dy], [dx, dw], p));
    rmsnorm_bwd.run(heap, [x, w, rstd, dy], [dx, dw], p);
    const wantDx = new Float32Array(rows * cols),
      wantDw = new Float32Array(cols);
    ref.rmsnorm_bwd([x, w, rstd, dy], [wantDx, wantDw], p);
    const rowStats = Array.from({ length: rows }, (_, r) => {
      let dot = 0,
        A = 0;
      for (let j = 0; j < cols; j++) {
        const t = w[j] * dy[r * cols + j] * x[r * cols + j];
        dot += t;
        A += Math.abs(t);
      }
      return { dot, A };
    });
    assertWithin(
      dx,
      wantDx,
      (i) => {
        const r = Math.floor(i / cols),
          j = i % cols;
        const rs = rstd[r];
        const { dot, A } = rowStats[r];
        return (
          2 * U * Math.abs(rs * w[j] * dy[i]) +
          ((Math.abs(x[i]) * rs ** 3) / cols) * ((D + 2) * U * A + 5 * U * Math.abs(dot)) +
          U * Math.abs(wantDx[i]) +
          ulp(wantDx[i])
        );
      },
      `dx ${rows}x${cols}`,
    );
    const B = dwBlock(rows);
    const depth = B + Math.ceil(rows / B) + 2;
    assertWithin(
      dw,
      wantDw,
      (j) => {
        let S = 0;
        for (let r = 0; r < rows; r++) S += Math.abs(x[r * cols + j] * rstd[r] * dy[r * cols + j]);
        return gamma(depth) * S + ulp(wantDw[j]);
      },
      `dw ${rows}x${cols}`,
    );
    checkGuard(dx, 'dx');
    checkGuard(dw, 'dw');
    release(heap, x, w, dy, rstd, dx, dw);
  }
});

test('split: forward parts over any rows, backward parts over whole dw blocks + finish, give the bits of run', () => {
  const rows = 100,
    cols = 33;
  const { x, w, dy } = inputs(rows, cols);
  const p = { rows, cols, eps: EPS };
  const y = poisoned(heap, rows * cols),
    rstd = poisoned(heap, rows);
  rmsnorm.run(heap, [x, w], [y, rstd], p);
  const y2 = poisoned(heap, rows * cols),
    rstd2 = poisoned(heap, rows);
  for (const [a, b] of [
    [0, 3],
    [3, 4],
    [4, 77],
    [77, 100],
  ])
    rmsnorm.split!.part(heap, [x, w], [y2, rstd2], p, a, b, 0, 0);
  assertSameBits(y2, y, 'y parts');
  assertSameBits(rstd2, rstd, 'rstd parts');

  const q = { rows, cols };
  const dx = poisoned(heap, rows * cols),
    dw = poisoned(heap, cols);
  rmsnorm_bwd.run(heap, [x, w, rstd, dy], [dx, dw], q);
  const range = rmsnorm_bwd.split!.range({ rows: 200, cols: 200 })!;
  assert.equal(range, { n: 200, align: dwBlock(200) });
  const B = dwBlock(rows);
  for (const cuts of [
    [0, rows],
    [0, B, rows],
    [0, 3 * B, 5 * B, rows],
  ]) {
    const dx2 = poisoned(heap, rows * cols),
      dw2 = poisoned(heap, cols);
    const shared = heap.alloc(rmsnorm_bwd.split!.sharedScratch!(q));
    for (let k = 0; k + 1 < cuts.length; k++)
      rmsnorm_bwd.split!.part(heap, [x, w, rstd, dy], [dx2, dw2], q, cuts[k], cuts[k + 1], 0, shared);
    rmsnorm_bwd.split!.finish!(heap, [x, w, rstd, dy], [dx2, dw2], q, shared);
    heap.free(shared);
    assertSameBits(dx2, dx, `dx cuts ${cuts}`);
    assertSameBits(dw2, dw, `dw cuts ${cuts}`);
    release(heap, dx2, dw2);
  }
  release(heap, x, w, dy, y, rstd, y2, rstd2, dx, dw);
  assert.is(heap.stats().inUse, 0, 'every block returned');
});

test('no rows: dw is zeros; float64 goes to the scalar kernel', () => {
  const x = heap.allocF32(4),
    dw = poisoned(heap, 4);
  rmsnorm_bwd.run(heap, [x, x, x, x], [x, dw], { rows: 0, cols: 4 });
  assertSameBits(dw, new Float32Array(4), 'dw');
  assert.not.ok(
    rmsnorm.accepts([new Float64Array(4), new Float64Array(4)], [new Float64Array(4), new Float64Array(1)], { rows: 1, cols: 4, eps: EPS }),
  );
  release(heap, x, dw);
});

test.run();
