// The CPU kernels split over worker threads (engine/cpu/threads.ts) give bit-identical results to
// one thread: matmul by rows (by columns when it has few rows), the scan forward and backward by
// batch rows.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { matmul, matmulRows, matmulSmallM } from '../../../engine/cpu/kernels/matmul.ts';
import { scan, scan_bwd, scanBatches, scanBwdBatches, scanBwdCombine, scanBwdPartialSize } from '../../../engine/cpu/kernels/scan.ts';
import { splitRange, threadsReady } from '../../../engine/cpu/threads.ts';
import type { KernelParams } from '../../../engine/kernels.ts';
import * as mi from '../../../engine/index.ts';

const test = suite('cpu worker threads');
const rng = new mi.Rng('cpu-threads');

function sharedArray(n: number, fill = true): Float32Array {
  const a = new Float32Array(new SharedArrayBuffer(4 * n));
  if (fill) for (let i = 0; i < n; i++) a[i] = rng.normal();
  return a;
}

function assertSame(what: string, got: Float32Array, want: Float32Array): void {
  for (let i = 0; i < want.length; i++) {
    if (!Object.is(got[i], want[i])) assert.unreachable(`${what}: element ${i} is ${got[i]}, one thread gave ${want[i]}`);
  }
}

async function workersUp(): Promise<number> {
  for (let i = 0; i < 300 && threadsReady() < 2; i++) await new Promise((r) => setTimeout(r, 50));
  return threadsReady();
}

test('splitRange covers [0, n) in order with aligned starts', () => {
  assert.equal(splitRange(10, 2, 4), [
    [0, 8],
    [8, 10],
  ]);
  assert.equal(splitRange(3, 4), [
    [0, 1],
    [1, 2],
    [2, 3],
  ]);
  assert.equal(splitRange(17, 3, 4), [
    [0, 8],
    [8, 12],
    [12, 17],
  ]);
});

test('matmul and scan on worker threads equal one thread bit for bit', async () => {
  const threads = await workersUp();
  if (process.env.MI_CPU_THREADS === '1') {
    assert.is(threads, 1);
    return;
  }
  assert.ok(threads >= 2, `worker threads did not start (${threads})`);
  // big M: split by rows; M <= 8 (decoding): split by columns; the last output is not shared memory
  for (const [M, N, K, transA, transB] of [
    [301, 70, 130, false, true],
    [64, 40, 1100, true, false],
    [3, 1001, 800, false, true],
    [2, 1203, 900, true, false],
  ] as const) {
    const p: KernelParams['matmul'] = { batch: 1, M, N, K, transA, transB, aBatchStride: 0, bBatchStride: 0 };
    const a = sharedArray(M * K),
      b = sharedArray(K * N);
    const one = sharedArray(M * N, false),
      split = (M === 2 ? new Float32Array(M * N) : sharedArray(M * N, false)).fill(NaN);
    if (M <= 8) matmulSmallM([a, b], [one], p);
    else matmulRows([a, b], [one], p, 0, M);
    matmul([a, b], [split], p);
    assertSame(`matmul M${M} N${N} K${K}`, split, one);
  }

  const [batch, T, E, N] = [5, 40, 24, 16];
  const p: KernelParams['scan'] = {
    batch,
    T,
    E,
    N,
    hasD: true,
    hasZ: true,
    hasH0: true,
    hasDeltaBias: true,
    deltaSoftplus: true,
    saveStates: true,
  };
  const ins = [
    sharedArray(batch * T * E),
    sharedArray(batch * T * E),
    sharedArray(E * N).map((v) => -Math.abs(v)),
    sharedArray(batch * T * N),
    sharedArray(batch * T * N),
    sharedArray(E),
    sharedArray(batch * T * E),
    sharedArray(batch * E * N),
    sharedArray(E),
  ];
  const outSizes = [batch * T * E, batch * E * N, batch * T * E * N];
  const one = outSizes.map((n) => sharedArray(n, false)),
    split = outSizes.map((n) => sharedArray(n, false).fill(NaN));
  scanBatches(ins, one, p, 0, batch);
  scan(ins, split, p);
  one.forEach((o, i) => assertSame(`scan output ${i}`, split[i], o));

  const pb: KernelParams['scan_bwd'] = { ...p, saveStates: false, hasDhT: true, hasDhs: false };
  const bins = [...ins, sharedArray(batch * T * E), sharedArray(batch * E * N)];
  const gradSizes = ins.map((t) => t.length);
  const g1 = gradSizes.map((n) => sharedArray(n, false)),
    g2 = gradSizes.map((n) => sharedArray(n, false).fill(NaN));
  const partials = new Float64Array(scanBwdPartialSize(pb));
  scanBwdBatches(bins, g1, pb, 0, batch, partials);
  scanBwdCombine(g1, pb, partials);
  scan_bwd(bins, g2, pb);
  g1.forEach((g, i) => assertSame(`scan_bwd output ${i}`, g2[i], g));
});

test.run();
