// The contract between the WebGPU backend (engine/wgsl/backend.ts) and the WGSL kernel modules
// (engine/wgsl/kernels/*.ts). A kernel module turns one kernel call of engine/kernels.ts into one
// or more compute passes; the backend compiles each pass's WGSL (pipelines cached by source),
// allocates its scratch buffers, binds everything and records the passes into the current command
// encoder. Kernel modules never touch the GPUDevice.
//
// Binding layout of every pass, all in @group(0):
//   @binding(0)           the uniform block, when `uniforms` is given (16-byte aligned by the backend)
//   @binding(1), (2), ... the storage buffers listed in `bindings`, in order
// Kernels never write these declarations by hand: computePass (layout.ts) generates the WGSL, the
// uniform bytes and `bindings` from one list of uniform fields and storage buffers.
// A pass binds at most 8 storage buffers, WebGPU's guaranteed maxStorageBuffersPerShaderStage
// (Chromium on SwiftShader has 10): the backend throws, naming kernel and pass, when a pass binds
// more than its device allows; test/engine/wgsl/storage-limit.test.ts holds every kernel to 8.
import type { DType } from '../dtype.ts';
import type { KernelName, KernelParams } from '../kernels.ts';

/** What a kernel module knows about a buffer: element count and type. */
export interface BufferInfo {
  readonly size: number;
  readonly dtype: DType;
}

export type BindingRef =
  | { kind: 'input'; index: number }
  | { kind: 'output'; index: number }
  /** a temporary buffer of this pass list, see `scratch` */
  | { kind: 'scratch'; index: number };

export interface ComputePass {
  /** Complete WGSL module; the entry point is `main`. Identical source means one cached pipeline. */
  code: string;
  /** Workgroup counts; the backend folds x beyond maxComputeWorkgroupsPerDimension into y when `foldable`. */
  workgroups: [number, number, number];
  /** Raw bytes of the uniform block (u32/i32/f32 fields, packed by layout.ts). */
  uniforms?: ArrayBuffer;
  bindings: BindingRef[];
  /** Set when the kernel computes its linear workgroup index from num_workgroups (so y-folding is safe). */
  foldable?: boolean;
  /** A name for errors: "scan_bwd pass 2". */
  label: string;
}

export interface KernelPlan {
  passes: ComputePass[];
  /** Sizes in bytes of scratch buffers used by the passes (freed after the plan). */
  scratch?: number[];
}

/** The device facts a kernel module may depend on. */
export interface DeviceFacts {
  maxWorkgroupSize: number; // maxComputeInvocationsPerWorkgroup
  maxWorkgroupStorage: number; // bytes
  maxWorkgroupsPerDimension: number;
  subgroupSizes?: { min: number; max: number }; // only when the 'subgroups' feature is enabled
}

export type WgslKernel<K extends KernelName> = (
  inputs: BufferInfo[],
  outputs: BufferInfo[],
  params: KernelParams[K],
  device: DeviceFacts,
) => KernelPlan;
