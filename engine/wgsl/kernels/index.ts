// The WGSL kernel registry: one module per kernel of engine/kernels.ts. A kernel missing here makes
// the WebGPU backend throw an error naming it (never a silent fallback).
import type { KernelName } from '../../kernels.ts';
import type { WgslKernel } from '../kernel.ts';
import { binary, cast, fill, unary, where } from './elementwise.ts';
import { copy } from './shape.ts';
import { gather, onehot, scatter_add } from './indexing.ts';
import { influence } from './influence.ts';
import { matmul } from './matmul.ts';
import { argmax, reduce } from './reduce.ts';
import { conv1d, conv1d_bwd } from './conv1d.ts';
import { rmsnorm, rmsnorm_bwd } from './rmsnorm.ts';
import { sae, sae_bwd } from './sae.ts';
import { scan, scan_bwd } from './scan.ts';
import { cross_entropy, cross_entropy_bwd, softmax, softmax_bwd } from './softmax.ts';
import { topk } from './topk.ts';

export const WGSL_KERNELS: { [K in KernelName]?: WgslKernel<K> } = {
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
  sae,
  sae_bwd,
  influence,
};
