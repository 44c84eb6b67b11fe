// Child process of test/engine/cpu/threads.test.ts: runs every kernel that splits over the worker
// threads (matmul by rows and by columns, float32 on the WebAssembly kernel and float64 on the
// scalar one; the scan forward and backward by batch rows) on seeded inputs above every split
// threshold, on the CPU backend with MI_CPU_THREADS threads, outputs NaN-poisoned first, and prints
// one JSON line: a SHA-256 of every output's bytes, the NaNs left in them, the threads used and the
// splits that ran (threads.ts's splitCounts).
//   MI_CPU_THREADS=3 npx tsx test/helpers/split-hashes.ts
import { createHash } from 'node:crypto';
import { pathToFileURL } from 'node:url';
import { splitCounts, threadsReady, threadsWanted } from '../../engine/cpu/threads.ts';
import type { TypedArray } from '../../engine/dtype.ts';
import * as mi from '../../engine/index.ts';
import type { KernelName, KernelParams, ScanParams } from '../../engine/kernels.ts';
import { Gen, scanInputs } from '../engine/kernel-cases.ts';

export interface SplitReport {
  threads: number;
  description: string;
  /** case name -> output -> sha256 of its bytes */
  hashes: Record<string, string[]>;
  /** case name -> NaNs in its outputs (an element no thread wrote) */
  nans: Record<string, number>;
  splits: Record<string, number>;
}

/** The matmul cases: [batch, M, N, K, transA, transB, broadcast B], each at least 2^22 multiply-adds. */
export const SPLIT_MATMULS: [number, number, number, number, boolean, boolean, boolean][] = [
  [2, 301, 70, 130, false, true, true], // rows, the last part uneven
  [2, 64, 41, 1100, true, false, false], // rows, transA
  [1, 3, 1001, 1400, false, true, false], // columns (M <= 8), transB
  [1, 2, 1203, 1800, true, false, false], // columns, transA
  [1, 1, 4099, 1024, false, true, false], // columns, one row (decoding)
];

/** The scan cases: every flag, batch rows split 5 ways at most; batch * T * E * N well above 2^18. */
export const SPLIT_SCANS: ScanParams[] = [
  { batch: 5, T: 128, E: 96, N: 16, hasD: true, hasZ: true, hasH0: true, hasDeltaBias: true, deltaSoftplus: true, saveStates: true },
  { batch: 3, T: 200, E: 64, N: 16, hasD: true, hasZ: true, hasH0: false, hasDeltaBias: true, deltaSoftplus: true, saveStates: false },
];

function run<K extends KernelName>(
  cpu: ReturnType<typeof mi.cpuBackend>,
  kernel: K,
  inputs: TypedArray[],
  outSizes: number[],
  dtype: 'float32' | 'float64',
  p: KernelParams[K],
) {
  const ins = inputs.map((a) => {
    const b = cpu.alloc(dtype, a.length);
    cpu.write(b, dtype === 'float64' ? Float64Array.from(a) : a);
    return b;
  });
  const outs = outSizes.map((n) => {
    const b = cpu.alloc(dtype, n);
    cpu.view(b).fill(Number.NaN);
    return b;
  });
  cpu.run(kernel, ins, outs, p);
  const got = outs.map((b) => cpu.readSync(b));
  for (const b of [...ins, ...outs]) cpu.free(b);
  return got;
}

async function main(): Promise<void> {
  const cpu = mi.cpuBackend();
  const want = threadsWanted();
  for (let i = 0; i < 600 && threadsReady() < want; i++) await new Promise((r) => setTimeout(r, 100));
  const report: SplitReport = { threads: threadsReady(), description: cpu.description, hashes: {}, nans: {}, splits: splitCounts };
  const record = (name: string, outs: TypedArray[]) => {
    report.hashes[name] = outs.map((o) =>
      createHash('sha256')
        .update(new Uint8Array(o.buffer, o.byteOffset, o.byteLength))
        .digest('hex'),
    );
    report.nans[name] = outs.reduce((n, o) => n + o.filter((v) => Number.isNaN(v)).length, 0);
  };
  for (const [batch, M, N, K, transA, transB, bcast] of SPLIT_MATMULS) {
    const g = new Gen(`split-hashes/matmul/${batch}x${M}x${N}x${K}`);
    const ins = [g.randn(batch * M * K), g.randn((bcast ? 1 : batch) * K * N)];
    const p = { batch, M, N, K, transA, transB, aBatchStride: M * K, bBatchStride: bcast ? 0 : K * N };
    for (const dtype of ['float32', 'float64'] as const) {
      record(`matmul ${dtype} b${batch} ${M}x${N}x${K}`, run(cpu, 'matmul', ins, [batch * M * N], dtype, p));
    }
  }
  for (const p of SPLIT_SCANS) {
    const { batch, T, E, N } = p;
    const g = new Gen(`split-hashes/scan/${batch}x${T}x${E}x${N}`);
    const ins = scanInputs(g, p);
    const fwdOuts = [batch * T * E, batch * E * N, ...(p.saveStates ? [batch * T * E * N] : [])];
    record(`scan ${batch}x${T}x${E}x${N}`, run(cpu, 'scan', ins, fwdOuts, 'float32', p));
    const pb = { ...p, saveStates: false, hasDhT: true, hasDhs: p.saveStates };
    const cot = [g.randn(batch * T * E), g.randn(batch * E * N), ...(pb.hasDhs ? [g.randn(batch * T * E * N)] : [])];
    record(
      `scan_bwd ${batch}x${T}x${E}x${N}`,
      run(
        cpu,
        'scan_bwd',
        [...ins, ...cot],
        ins.map((a) => a.length),
        'float32',
        pb,
      ),
    );
  }
  console.log(JSON.stringify(report));
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) await main();
