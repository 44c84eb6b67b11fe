// One backend interface, two implementations (engine/cpu/backend.ts, engine/wgsl/backend.ts).
// A backend owns buffers and runs the kernels of engine/kernels.ts on them; everything above it
// (tensors, autograd, the model) is backend-independent.
import type { DType, TypedArray } from './dtype.ts';
import type { KernelName, KernelParams } from './kernels.ts';

/** An opaque buffer of `size` elements of `dtype`, owned by one backend. */
export interface Buffer {
  readonly size: number;
  readonly dtype: DType;
}

export interface Backend {
  readonly name: 'cpu' | 'webgpu';
  /** One line naming what computes: "cpu (Node 20, float32/float64)" or the adapter. */
  readonly description: string;
  /** Contents undefined until written. */
  alloc(dtype: DType, size: number): Buffer;
  write(buf: Buffer, data: TypedArray): void;
  /** A copy of the buffer's contents; on WebGPU this waits for queued work. */
  read(buf: Buffer): Promise<TypedArray>;
  /** Synchronous read where the backend can do it (CPU); undefined otherwise. */
  readSync?(buf: Buffer): TypedArray;
  run<K extends KernelName>(kernel: K, inputs: Buffer[], outputs: Buffer[], params: KernelParams[K]): void;
  /** The buffer may be reused once work already queued on it is done. */
  free(buf: Buffer): void;
  /** Resolves when all queued work has finished. */
  flush(): Promise<void>;
  /** Number of buffers allocated and not freed (for leak tests). */
  liveBuffers(): number;
  /** Bytes held by live buffers and the peak since resetPeak(), where the backend tracks them. */
  memory?(): { liveBytes: number; peakBytes: number };
  resetPeak?(): void;
  /** Which dtypes this backend can hold. */
  supports(dtype: DType): boolean;
}

export type BackendName = 'auto' | 'cpu' | 'webgpu';
