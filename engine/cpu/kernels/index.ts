// The CPU kernel registry: one implementation per kernel of engine/kernels.ts.
import type { TypedArray } from '../../dtype.ts';
import type { KernelName, KernelParams } from '../../kernels.ts';
import { binary, cast, copy, fill, unary, where } from './elementwise.ts';
import { conv1d, conv1d_bwd, rmsnorm, rmsnorm_bwd, topk } from './fused.ts';
import { gather, onehot, scatter_add } from './indexing.ts';
import { matmul } from './matmul.ts';
import { argmax, reduce } from './reduce.ts';
import { scan, scan_bwd } from './scan.ts';
import { cross_entropy, cross_entropy_bwd, softmax, softmax_bwd } from './softmax.ts';

export type CpuKernel<K extends KernelName> = (inputs: TypedArray[], outputs: TypedArray[], p: KernelParams[K]) => void;

export const CPU_KERNELS: { [K in KernelName]: CpuKernel<K> } = {
  fill,
  unary,
  binary,
  where,
  cast,
  copy,
  reduce,
  argmax,
  matmul,
  gather,
  scatter_add,
  onehot,
  softmax,
  softmax_bwd,
  cross_entropy,
  cross_entropy_bwd,
  rmsnorm,
  rmsnorm_bwd,
  conv1d,
  conv1d_bwd,
  topk,
  scan,
  scan_bwd,
};
