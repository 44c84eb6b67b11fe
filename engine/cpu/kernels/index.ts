// The CPU kernel registry: one implementation per kernel of engine/kernels.ts, read by the backend
// and by the worker threads (thread-worker.ts), which run the `part` of a kernel that splits.
import type { TypedArray } from '../../dtype.ts';
import type { KernelName, KernelParams } from '../../kernels.ts';
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
  matmul: { run: matmul, part: matmulPart },
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
