// The CPU kernels split over worker threads (engine/cpu/threads.ts) give bit-identical results
// whatever the number of threads: matmul by rows (by columns when it has few rows), float32 on the
// WebAssembly kernel and float64 on the scalar one; the scan forward and backward on the
// WebAssembly kernel (by channel groups; the backward by batch rows, or by channel chunks for
// batch 1) and in float64 on the scalar one (by batch rows); and every other WebAssembly kernel
// with a `split` (elementwise, reductions, row kernels, rmsnorm, conv1d, indexing; those with
// shared partials through their `finish`). Child processes with MI_CPU_THREADS=1, 2 and 3 run
// every case of test/helpers/split-hashes.ts (sizes above each kernel's split threshold, at least
// 3 units of its split axis), outputs poisoned first, and report a hash of each output: the hashes
// must agree, no poisoned element may be left, and with 2 and 3 threads every case must actually
// have split. In this process: the splits run on views of the heap, and a split that drops its
// last part leaves NaNs the check sees.
import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import { promisify } from 'node:util';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { CpuBackend } from '../../../engine/cpu/backend.ts';
import { CPU_KERNELS } from '../../../engine/cpu/kernels/index.ts';
import { matmulRows, matmulSmallM } from '../../../engine/cpu/kernels/matmul.ts';
import { scanBatches, scanBwdBatches, scanBwdCombine, scanBwdPartialSize } from '../../../engine/cpu/kernels/scan.ts';
import { runWasmSplit, splitCounts, splitRange, threadsReady } from '../../../engine/cpu/threads.ts';
import * as mi from '../../../engine/index.ts';
import type { KernelName, KernelParams } from '../../../engine/kernels.ts';
import type { WasmKernel } from '../../../engine/wasm/kernel.ts';
import { WASM_MATMUL } from '../../../engine/wasm/kernels/matmul.ts';
import { processHeap } from '../../../engine/wasm/memory.ts';
import { SPLIT_CASES, type SplitReport } from '../../helpers/split-hashes.ts';

const test = suite('cpu worker threads');
const rng = new mi.Rng('cpu-threads');
const heap = processHeap();
// WebAssembly on whatever MI_WASM says, on the process heap the workers share
const cpu = new CpuBackend({ wasm: true });

/** A float32 view of a new block of the backend's heap, filled with normal draws through f (or NaN). */
function heapArray(n: number, fill = true, f = (v: number) => v): Float32Array {
  const a = heap.allocF32(n);
  for (let i = 0; i < n; i++) a[i] = fill ? f(rng.normal()) : Number.NaN;
  return a;
}

function assertSame(what: string, got: Float32Array, want: Float32Array): void {
  for (let i = 0; i < want.length; i++) {
    if (!Object.is(got[i], want[i])) assert.unreachable(`${what}: element ${i} is ${got[i]}, one thread gave ${want[i]}`);
  }
}

const nans = (a: Float32Array) => a.filter((v) => Number.isNaN(v)).length;

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

test('in this process: scalar and WebAssembly splits on views of the heap equal one thread bit for bit', async () => {
  const threads = await workersUp();
  if (process.env.MI_CPU_THREADS === '1') {
    assert.is(threads, 1);
    return;
  }
  assert.ok(threads >= 2, `worker threads did not start (${threads})`);
  const before = { ...splitCounts };
  // big M: split by rows; M <= 8 (decoding): split by columns
  for (const [M, N, K, transA, transB] of [
    [301, 70, 230, false, true],
    [64, 40, 1700, true, false],
    [3, 1001, 1400, false, true],
    [2, 1203, 1800, true, false],
  ] as const) {
    const p: KernelParams['matmul'] = { batch: 1, M, N, K, transA, transB, aBatchStride: 0, bBatchStride: 0 };
    const a = heapArray(M * K),
      b = heapArray(K * N);
    // float32 on the WebAssembly kernel: one thread's whole product vs the backend's split
    const one = heapArray(M * N, false),
      split = heapArray(M * N, false);
    WASM_MATMUL.run(heap, [a, b], [one], p);
    const [A, B, O] = [a, b, split].map((x) => {
      const buf = cpu.alloc('float32', x.length);
      cpu.write(buf, x);
      return buf;
    });
    cpu.run('matmul', [A, B], [O], p);
    assertSame(`wasm matmul M${M} N${N} K${K}`, cpu.view(O) as Float32Array, one);
    // the scalar kernel's own split (float32 arrays of the heap, called directly)
    const scalarOne = heapArray(M * N, false),
      scalarSplit = heapArray(M * N, false);
    if (M <= 8) matmulSmallM([a, b], [scalarOne], p);
    else matmulRows([a, b], [scalarOne], p, 0, M);
    CPU_KERNELS.matmul.run([a, b], [scalarSplit], p);
    assertSame(`scalar matmul M${M} N${N} K${K}`, scalarSplit, scalarOne);
    for (const x of [A, B, O]) cpu.free(x);
    for (const x of [a, b, one, split, scalarOne, scalarSplit]) heap.free(x.byteOffset);
  }

  const [batch, T, E, N] = [5, 60, 64, 16];
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
    heapArray(batch * T * E),
    heapArray(batch * T * E),
    heapArray(E * N, true, (v) => -Math.abs(v)),
    heapArray(batch * T * N),
    heapArray(batch * T * N),
    heapArray(E),
    heapArray(batch * T * E),
    heapArray(batch * E * N),
    heapArray(E),
  ];
  const outSizes = [batch * T * E, batch * E * N, batch * T * E * N];
  const one = outSizes.map((n) => heapArray(n, false)),
    split = outSizes.map((n) => heapArray(n, false));
  scanBatches(ins, one, p, 0, batch);
  CPU_KERNELS.scan.run(ins, split, p);
  one.forEach((o, i) => assertSame(`scan output ${i}`, split[i], o));

  const pb: KernelParams['scan_bwd'] = { ...p, saveStates: false, hasDhT: true, hasDhs: false };
  const bins = [...ins, heapArray(batch * T * E), heapArray(batch * E * N)];
  const gradSizes = ins.map((t) => t.length);
  const g1 = gradSizes.map((n) => heapArray(n, false)),
    g2 = gradSizes.map((n) => heapArray(n, false));
  const partials = new Float64Array(scanBwdPartialSize(pb));
  scanBwdBatches(bins, g1, pb, 0, batch, partials);
  scanBwdCombine(g1, pb, partials);
  CPU_KERNELS.scan_bwd.run(bins, g2, pb);
  g1.forEach((g, i) => assertSame(`scan_bwd output ${i}`, g2[i], g));
  for (const k of ['wasm matmul', 'scalar matmul', 'scalar scan', 'scalar scan_bwd'])
    assert.ok((splitCounts[k] ?? 0) > (before[k] ?? 0), `${k} did not split`);
});

test('a split that drops its last part leaves NaNs in the poisoned output', async () => {
  if ((await workersUp()) < 2) return;
  const p: KernelParams['matmul'] = { batch: 1, M: 301, N: 70, K: 230, transA: false, transB: true, aBatchStride: 0, bBatchStride: 0 };
  const a = heapArray(p.M * p.K),
    b = heapArray(p.K * p.N),
    out = heapArray(p.M * p.N, false);
  // two threads run the first two parts of a three-way split; the third is dropped
  const ranges = splitRange(p.M, 3, 4);
  assert.ok(runWasmSplit('matmul', WASM_MATMUL.split!, [a, b], [out], p, ranges.slice(0, 2)));
  const [r0, r1] = ranges[2];
  assert.is(nans(out), (r1 - r0) * p.N, 'exactly the dropped rows are NaN');
  assert.ok(runWasmSplit('matmul', WASM_MATMUL.split!, [a, b], [out], p, splitRange(p.M, 2, 4)));
  assert.is(nans(out), 0);
  for (const x of [a, b, out]) heap.free(x.byteOffset);
});

test('every case of the child processes is above its split threshold, with at least 3 units to split', () => {
  for (const c of SPLIT_CASES) {
    if (c.key.startsWith('wasm ')) {
      const split = (CPU_KERNELS[c.kernel].wasm as WasmKernel<typeof c.kernel> | undefined)?.split;
      assert.ok(split, `${c.name}: ${c.kernel} has no WebAssembly split`);
      const range = split.range(c.params);
      assert.ok(range, `${c.name}: below the split threshold`);
      assert.ok(Math.ceil(range.n / range.align) >= 3, `${c.name}: ${range.n} / ${range.align} units, fewer than 3`);
    } else if (c.kernel === 'scan' || c.kernel === 'scan_bwd') {
      assert.ok((c.params as KernelParams['scan']).batch >= 3, `${c.name}: the scalar scan splits by batch rows`);
    }
  }
  const wasmKernels = new Set(SPLIT_CASES.filter((c) => c.key.startsWith('wasm ')).map((c) => c.kernel));
  const splitting = Object.entries(CPU_KERNELS)
    .filter(([, k]) => k.wasm?.split)
    .map(([name]) => name);
  assert.equal(
    splitting.filter((k) => !wasmKernels.has(k as KernelName)),
    [],
    'every WebAssembly kernel with a split has a case',
  );
});

test('child processes with 1, 2 and 3 threads: the same bits for every split kernel above its threshold, no NaN left', async () => {
  const child = resolve(import.meta.dirname, '../../helpers/split-hashes.ts');
  const tsx = resolve(import.meta.dirname, '../../../node_modules/.bin/tsx');
  const runs: SplitReport[] = [];
  for (const n of [1, 2, 3]) {
    const { stdout } = await promisify(execFile)(tsx, [child], {
      env: { ...process.env, MI_CPU_THREADS: String(n), MI_WASM: '1' },
      maxBuffer: 1 << 24,
      timeout: 300_000,
    });
    runs.push(JSON.parse(stdout.trim().split('\n').pop()!) as SplitReport);
  }
  // every case adds one to its kernel's count ("wasm scan", "scalar scan", ...)
  const expected: Record<string, number> = {};
  for (const c of SPLIT_CASES) expected[c.key] = (expected[c.key] ?? 0) + 1;
  runs.forEach((r, i) => {
    assert.is(r.threads, i + 1, `the child with MI_CPU_THREADS=${i + 1} ran ${r.threads} thread(s)`);
    assert.match(r.description, new RegExp(`WebAssembly SIMD, ${i + 1} thread`));
    assert.equal(
      Object.keys(r.hashes),
      SPLIT_CASES.map((c) => c.name),
    );
    const left = Object.entries(r.nans).filter(([, n]) => n > 0);
    assert.equal(left, [], `${i + 1} thread(s): outputs with unwritten (NaN) elements`);
  });
  for (const r of runs.slice(1)) {
    for (const [name, hashes] of Object.entries(runs[0].hashes)) assert.equal(r.hashes[name], hashes, `${name}: ${r.threads} threads vs 1`);
    assert.equal(r.splits, expected, `${r.threads} threads: every case split`);
  }
  assert.equal(runs[0].splits, {}, 'one thread: nothing splits');
});

test.run();
