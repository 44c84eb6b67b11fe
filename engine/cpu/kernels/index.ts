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
import { conv1d_bwd as wasmConv1dBwd, conv1d as wasmConv1d } from '../../wasm/kernels/conv1d.ts';
import { binary as wasmBinary, unary as wasmUnary, where as wasmWhere } from '../../wasm/kernels/elementwise.ts';
import { gather as wasmGather, onehot as wasmOnehot, scatter_add as wasmScatterAdd } from '../../wasm/kernels/indexing.ts';
import { WASM_MATMUL } from '../../wasm/kernels/matmul.ts';
import { argmax as wasmArgmax, reduce as wasmReduce } from '../../wasm/kernels/reduce.ts';
import { rmsnorm_bwd as wasmRmsnormBwd, rmsnorm as wasmRmsnorm } from '../../wasm/kernels/rmsnorm.ts';
import { scan_bwd as wasmScanBwd, scan as wasmScan } from '../../wasm/kernels/scan.ts';
import { copy as wasmCopy } from '../../wasm/kernels/shape.ts';
import {
  cross_entropy_bwd as wasmCrossEntropyBwd,
  cross_entropy as wasmCrossEntropy,
  softmax_bwd as wasmSoftmaxBwd,
  softmax as wasmSoftmax,
} from '../../wasm/kernels/softmax.ts';
import { conv1d, conv1d_bwd } from './conv1d.ts';
import { binary, cast, fill, unary, where } from './elementwise.ts';
import { gather, onehot, scatter_add } from './indexing.ts';
import { influence } from './influence.ts';
import { matmul, matmulPart } from './matmul.ts';
import { argmax, reduce } from './reduce.ts';
import { rmsnorm, rmsnorm_bwd } from './rmsnorm.ts';
import { sae, sae_bwd } from './sae.ts';
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
  unary: { run: unary, wasm: wasmUnary },
  binary: { run: binary, wasm: wasmBinary },
  where: { run: where, wasm: wasmWhere },
  cast: { run: cast },
  copy: { run: copy, wasm: wasmCopy },
  reduce: { run: reduce, wasm: wasmReduce },
  argmax: { run: argmax, wasm: wasmArgmax },
  matmul: { run: matmul, part: matmulPart, wasm: WASM_MATMUL },
  gather: { run: gather, wasm: wasmGather },
  scatter_add: { run: scatter_add, wasm: wasmScatterAdd },
  onehot: { run: onehot, wasm: wasmOnehot },
  softmax: { run: softmax, wasm: wasmSoftmax },
  softmax_bwd: { run: softmax_bwd, wasm: wasmSoftmaxBwd },
  cross_entropy: { run: cross_entropy, wasm: wasmCrossEntropy },
  cross_entropy_bwd: { run: cross_entropy_bwd, wasm: wasmCrossEntropyBwd },
  rmsnorm: { run: rmsnorm, wasm: wasmRmsnorm },
  rmsnorm_bwd: { run: rmsnorm_bwd, wasm: wasmRmsnormBwd },
  conv1d: { run: conv1d, wasm: wasmConv1d },
  conv1d_bwd: { run: conv1d_bwd, wasm: wasmConv1dBwd },
  topk: { run: topk },
  scan: { run: scan, part: scanBatches, wasm: wasmScan },
  scan_bwd: { run: scan_bwd, part: scanBwdBatches, wasm: wasmScanBwd },
  sae: { run: sae },
  sae_bwd: { run: sae_bwd },
  influence: { run: influence },
};
