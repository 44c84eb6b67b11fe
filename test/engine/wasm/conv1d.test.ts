// The WebAssembly float32 causal depthwise conv1d (engine/wasm/kernels/conv1d.ts) against the scalar
// kernels of engine/cpu/kernels/conv1d.ts (float64, rounded once) on plain Float32Arrays: batch 1
// and 3, T from 1 (shorter than the kernel) to 33, channels 1, 7, 33, 130, kernel widths 1, 3, 4,
// with and without bias; outputs NaN-poisoned and fenced.
//
// Bounds (u = 2^-24, Higham's gamma_n = n u / (1 - n u), ulp = the float32 spacing at the
// reference, whose own rounding is at most half of one):
//   y and dx: bias (or 0) and then at most K products, each rounded, added in order: every term
//     goes through at most K + 1 roundings: gamma_(K + 1) (|bias| + sum |w x|) + 1 ulp.
//   dw, dbias: sums over the batch T rows through blocks of B rows (B = dwBlock(batch T)), each
//     block from 0 in row order, the blocks in order: gamma_(B + blocks + 1) sum |terms| + 1 ulp.
// Splits: the forward over any rows, the backward over whole blocks: parts (+ finish) give run's bits.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import * as ref from '../../../engine/cpu/kernels/conv1d.ts';
import * as mi from '../../../engine/index.ts';
import type { KernelParams } from '../../../engine/kernels.ts';
import { conv1d, conv1d_bwd, dwBlock } from '../../../engine/wasm/kernels/conv1d.ts';
import { WasmHeap } from '../../../engine/wasm/memory.ts';
import { assertSameBits, assertWithin, checkGuard, gamma, normalsOnHeap, poisoned, release, ulp } from './f32-check.ts';

const test = suite('wasm conv1d');
const rng = new mi.Rng('wasm-conv1d');
const heap = new WasmHeap({ initialPages: 64 });

const normals = (n: number) => normalsOnHeap(heap, rng, n);

const CASES: KernelParams['conv1d'][] = [];
for (const batch of [1, 3])
  for (const T of [1, 2, 5, 33])
    for (const C of [1, 7, 33, 130])
      for (const K of [1, 3, 4])
        for (const hasBias of [true, false]) if ((T + C + K) % 2 === 0 || hasBias) CASES.push({ batch, T, C, K, hasBias });

test('forward and backward: within the bounds of the header, every shape', () => {
  for (const p of CASES) {
    const { batch, T, C, K, hasBias } = p;
    const n = batch * T * C;
    const x = normals(n),
      w = normals(C * K),
      bias = normals(C),
      dy = normals(n);
    const what = `b${batch} T${T} C${C} K${K}${hasBias ? ' bias' : ''}`;
    const y = poisoned(heap, n);
    const ins = hasBias ? [x, w, bias] : [x, w];
    assert.ok(conv1d.accepts(ins, [y], p));
    conv1d.run(heap, ins, [y], p);
    const wantY = new Float32Array(n);
    ref.conv1d(ins, [wantY], p);
    // S: the sum of |terms| of an output; taps of row (b, t) over time offsets
    const S = (src: Float32Array, i: number, dir: 1 | -1) => {
      const c = i % C,
        t = Math.floor(i / C) % T,
        b = Math.floor(i / (C * T));
      let s = hasBias && dir === 1 ? Math.abs(bias[c]) : 0;
      for (let k = 0; k < K; k++) {
        const ts = dir === 1 ? t - K + 1 + k : t + K - 1 - k;
        if (ts >= 0 && ts < T) s += Math.abs(w[c * K + k] * src[(b * T + ts) * C + c]);
      }
      return s;
    };
    assertWithin(y, wantY, (i) => gamma(K + 1) * S(x, i, 1) + ulp(wantY[i]), `y ${what}`);
    checkGuard(y, 'y');

    const dx = poisoned(heap, n),
      dw = poisoned(heap, C * K),
      db = poisoned(heap, C);
    const outs = hasBias ? [dx, dw, db] : [dx, dw];
    assert.ok(conv1d_bwd.accepts([x, w, dy], outs, p));
    conv1d_bwd.run(heap, [x, w, dy], outs, p);
    const wantDx = new Float32Array(n),
      wantDw = new Float32Array(C * K),
      wantDb = new Float32Array(C);
    ref.conv1d_bwd([x, w, dy], hasBias ? [wantDx, wantDw, wantDb] : [wantDx, wantDw], p);
    assertWithin(dx, wantDx, (i) => gamma(K + 1) * S(dy, i, -1) + ulp(wantDx[i]), `dx ${what}`);
    const rows = batch * T;
    const B = dwBlock(rows);
    const g = gamma(B + Math.ceil(rows / B) + 1);
    assertWithin(
      dw,
      wantDw,
      (i) => {
        const c = Math.floor(i / K),
          k = i % K;
        let s = 0;
        for (let b = 0; b < batch; b++)
          for (let t = 0; t < T; t++) {
            const ts = t - K + 1 + k;
            if (ts >= 0) s += Math.abs(dy[(b * T + t) * C + c] * x[(b * T + ts) * C + c]);
          }
        return g * s + ulp(wantDw[i]);
      },
      `dw ${what}`,
    );
    if (hasBias)
      assertWithin(
        db,
        wantDb,
        (c) => {
          let s = 0;
          for (let r = 0; r < rows; r++) s += Math.abs(dy[r * C + c]);
          return g * s + ulp(wantDb[c]);
        },
        `dbias ${what}`,
      );
    else assert.ok(Number.isNaN(db[0]), 'no bias: dbias untouched');
    for (const o of [dx, dw, db]) checkGuard(o, what);
    release(heap, x, w, bias, dy, y, dx, dw, db);
  }
});

test('split: forward parts over any rows, backward parts over whole blocks + finish, give the bits of run', () => {
  const p = { batch: 3, T: 37, C: 33, K: 4, hasBias: true };
  const rows = p.batch * p.T,
    n = rows * p.C;
  const x = normals(n),
    w = normals(p.C * p.K),
    bias = normals(p.C),
    dy = normals(n);
  const y = poisoned(heap, n),
    y2 = poisoned(heap, n);
  conv1d.run(heap, [x, w, bias], [y], p);
  const wT = heap.alloc(conv1d.split!.partScratch!(p, 0, rows));
  for (const [a, b] of [
    [0, 1],
    [1, 40],
    [40, 41],
    [41, rows],
  ])
    conv1d.split!.part(heap, [x, w, bias], [y2], p, a, b, wT, 0);
  assertSameBits(y2, y, 'y parts');

  const dx = poisoned(heap, n),
    dw = poisoned(heap, p.C * p.K),
    db = poisoned(heap, p.C);
  conv1d_bwd.run(heap, [x, w, dy], [dx, dw, db], p);
  const B = dwBlock(rows);
  assert.is(conv1d_bwd.split!.range(p), null);
  assert.equal(conv1d_bwd.split!.range({ ...p, C: 512 }), { n: rows, align: B });
  for (const cuts of [
    [0, rows],
    [0, B, rows],
    [0, 2 * B, 3 * B, 7 * B, rows],
  ]) {
    const dx2 = poisoned(heap, n),
      dw2 = poisoned(heap, p.C * p.K),
      db2 = poisoned(heap, p.C);
    const shared = heap.alloc(conv1d_bwd.split!.sharedScratch!(p));
    for (let k = 0; k + 1 < cuts.length; k++)
      conv1d_bwd.split!.part(heap, [x, w, dy], [dx2, dw2, db2], p, cuts[k], cuts[k + 1], wT, shared);
    conv1d_bwd.split!.finish!(heap, [x, w, dy], [dx2, dw2, db2], p, shared);
    heap.free(shared);
    assertSameBits(dx2, dx, `dx cuts ${cuts}`);
    assertSameBits(dw2, dw, `dw cuts ${cuts}`);
    assertSameBits(db2, db, `dbias cuts ${cuts}`);
    release(heap, dx2, dw2, db2);
  }
  heap.free(wT);
  release(heap, x, w, bias, dy, y, y2, dx, dw, db);
  assert.is(heap.stats().inUse, 0, 'every block returned');
});

test('no rows: dw and dbias are zeros', () => {
  const x = heap.allocF32(4);
  const dw = poisoned(heap, 8),
    db = poisoned(heap, 2);
  conv1d_bwd.run(heap, [x, x, x], [x, dw, db], { batch: 0, T: 5, C: 2, K: 4, hasBias: true });
  assertSameBits(dw, new Float32Array(8), 'dw');
  assertSameBits(db, new Float32Array(2), 'db');
  release(heap, x, dw, db);
});

test.run();
