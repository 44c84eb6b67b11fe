// The CPU kernel registry: one scalar TypeScript implementation per kernel of engine/kernels.ts
// (the reference, and what runs float64 and int32 work), and beside it, for the kernels that have
// one, the WebAssembly SIMD version (engine/wasm/kernels/X.ts for the same op file X, the contract
// of engine/wasm/kernel.ts). Read by the backend (engine/cpu/backend.ts: the WebAssembly kernel
// when enabled and it accepts the call, else the scalar one) and by the worker threads
// (thread-worker.ts), which run the `part` of a scalar kernel that splits or the `split.part`
// of a WebAssembly one.
import type { TypedArray } from '../../dtype.ts';
import type { KernelName, KernelParams } from '../../kernels.ts';
import type { WasmKernel } from '../../wasm/kernel.ts';
import { WASM_MATMUL } from '../../wasm/kernels/matmul.ts';
import { conv1d, conv1d_bwd } from './conv1d.ts';
import { binary, cast, fill, unary, where } from './elementwise.ts';
import { gather, onehot, scatter_add } from './indexing.ts';
import { matmul, matmulPart } from './matmul.ts';
import { argmax, reduce } from './reduce.ts';
import { rmsnorm, rmsnorm_bwd } from './rmsnorm.ts';
import { scan, scan_bwd, scanBatches, scanBwdBatches } from './scan.ts';
import { copy } from './shape.ts';
import { cross_entropy, cross_entropy_bwd, softmax, softmax_bwd } from './softmax.ts';
import { topk } from './topk.ts';

export interface CpuKernel<K extends KernelName> {
  /** the whole call */
  run(inputs: TypedArray[], outputs: TypedArray[], p: KernelParams[K]): void;
  /**
   * For a kernel that splits over the worker threads (threads.ts): the range [r0, r1) of its split
   * axis, writing only the outputs that range owns; `scratch` is the kernel's shared scratch.
   */
  part?(inputs: TypedArray[], outputs: TypedArray[], p: KernelParams[K], r0: number, r1: number, scratch?: Float64Array): void;
  /** The WebAssembly SIMD kernel (float32 work it accepts), from engine/wasm/kernels/ */
  wasm?: WasmKernel<K>;
}

export const CPU_KERNELS: { [K in KernelName]: CpuKernel<K> } = {
  fill: { run: fill },
  unary: { run: unary },
  binary: { run: binary },
  where: { run: where },
  cast: { run: cast },
  copy: { run: copy },
  reduce: { run: reduce },
  argmax: { run: argmax },
  matmul: { run: matmul, part: matmulPart, wasm: WASM_MATMUL },
  gather: { run: gather },
  scatter_add: { run: scatter_add },
  onehot: { run: onehot },
  softmax: { run: softmax },
  softmax_bwd: { run: softmax_bwd },
  cross_entropy: { run: cross_entropy },
  cross_entropy_bwd: { run: cross_entropy_bwd },
  rmsnorm: { run: rmsnorm },
  rmsnorm_bwd: { run: rmsnorm_bwd },
  conv1d: { run: conv1d },
  conv1d_bwd: { run: conv1d_bwd },
  topk: { run: topk },
  scan: { run: scan, part: scanBatches },
  scan_bwd: { run: scan_bwd, part: scanBwdBatches },
};
