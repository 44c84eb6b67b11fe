// The WGSL kernel registry: one module per kernel of engine/kernels.ts. A kernel missing here makes
// the WebGPU backend throw an error naming it (never a silent fallback).
import type { KernelName } from '../../kernels.ts';
import type { WgslKernel } from '../kernel.ts';
import { binary, cast, copy, fill, unary, where } from './elementwise.ts';

export const WGSL_KERNELS: { [K in KernelName]?: WgslKernel<K> } = {
  fill, unary, binary, where, cast, copy,
};
