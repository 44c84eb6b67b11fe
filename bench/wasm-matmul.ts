// The WebAssembly SIMD float32 matmul (engine/wasm/kernels/matmul.ts) against the CPU backend's
// scalar TypeScript kernel (engine/cpu/kernels/matmul.ts, float64 accumulation), one thread each,
// in the same run: square products 256 / 512 / 1024, and the decoding shape (one row against
// [N, K] weights, transB). Each figure is the best of `reps` timed calls after warm-up calls
// (the first calls run V8's baseline code until the optimising tier has compiled the kernel).
//   npx tsx bench/wasm-matmul.ts [--quick]
import { loadavg } from 'node:os';
import { matmulPart } from '../engine/cpu/kernels/matmul.ts';
import type { KernelParams } from '../engine/kernels.ts';
import * as mi from '../engine/index.ts';
import { wasmMatmul } from '../engine/wasm/kernels/matmul.ts';
import { WasmHeap } from '../engine/wasm/memory.ts';
import { bestMs } from './lib/best.ts';
import { reportErrorsAsOneLine } from '../steps/cli-main.ts';

reportErrorsAsOneLine(); // a failure is one line `error: ...`, exit 1 (2 for a bad flag)

const quick = process.argv.includes('--quick');
const rng = new mi.Rng('bench/wasm-matmul');
const heap = new WasmHeap({ initialPages: 1024 });

function random(n: number): Float32Array {
  const a = heap.allocF32(n);
  for (let i = 0; i < n; i++) a[i] = rng.uniform() * 2 - 1;
  return a;
}

function run(label: string, M: number, N: number, K: number, transB: boolean): void {
  const a = random(M * K),
    b = random(K * N),
    out = random(M * N);
  const p: KernelParams['matmul'] = { batch: 1, M, N, K, transA: false, transB, aBatchStride: 0, bBatchStride: 0 };
  const flops = 2 * M * N * K;
  const big = flops > 1e9;
  // the scalar kernel's one-thread part: the whole of the rows (or the columns, for M <= 8)
  const tScalar = bestMs(() => matmulPart([a, b], [out], p, 0, M <= 8 ? N : M), big ? 2 : 5, 1);
  const tWasm = bestMs(() => wasmMatmul(heap, [a, b], [out], p), big ? 5 : 20, big ? 3 : 10);
  const gf = (ms: number) => (flops / (ms * 1e6)).toFixed(2);
  console.log(
    `${label.padEnd(34)} scalar TS ${gf(tScalar).padStart(6)} GFLOP/s (${tScalar.toFixed(2)} ms)   wasm SIMD ${gf(tWasm).padStart(6)} GFLOP/s (${tWasm.toFixed(2)} ms)   ${(tScalar / tWasm).toFixed(1)}x`,
  );
  for (const x of [a, b, out]) heap.free(x.byteOffset);
}

console.log(
  `load average ${loadavg()
    .map((x) => x.toFixed(2))
    .join(' ')}`,
);
for (const n of quick ? [256] : [256, 512, 1024]) run(`matmul f32 ${n}x${n}x${n}`, n, n, n, false);
if (!quick) {
  run('matmul f32 1024 transB', 1024, 1024, 1024, true);
  run('decode 1 x [1536, 768]^T (transB)', 1, 1536, 768, true);
  run('decode 8 x [1536, 768]^T (transB)', 8, 1536, 768, true);
  run('decode 1 x [768, 1536] (B [K, N])', 1, 1536, 768, false);
}
console.log(
  `load average ${loadavg()
    .map((x) => x.toFixed(2))
    .join(' ')}`,
);
