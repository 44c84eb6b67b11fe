// The pure-TypeScript backend. Buffers are typed arrays; float32 buffers are Float32Array, so every
// kernel's result is rounded to float32 on store and agrees with the WebGPU backend to float32
// rounding. Kernels run synchronously when dispatched.
import type { Backend, Buffer } from '../backend.ts';
import { arrayFor, bytesPer, type DType, type TypedArray } from '../dtype.ts';
import type { KernelName, KernelParams } from '../kernels.ts';
import { CPU_KERNELS, type CpuKernel } from './kernels/index.ts';
import { threadsPossible } from './threads.ts';

/** Buffers from this many bytes up live in shared memory, so worker threads can write them. */
const SHARED_MIN_BYTES = 1 << 16;

function allocArray(dtype: DType, size: number): TypedArray {
  const bytes = size * bytesPer(dtype);
  if (!threadsPossible || bytes < SHARED_MIN_BYTES) return arrayFor(dtype, size);
  const sab = new SharedArrayBuffer(bytes);
  return dtype === 'float32' ? new Float32Array(sab) : dtype === 'float64' ? new Float64Array(sab) : new Int32Array(sab);
}

export class CpuBuffer implements Buffer {
  constructor(
    readonly dtype: DType,
    readonly size: number,
    public data: TypedArray | null,
  ) {}
}

export class CpuBackend implements Backend {
  readonly name = 'cpu' as const;
  readonly description = `cpu (Node ${typeof process !== 'undefined' ? process.versions.node : 'browser'}, TypeScript kernels)`;
  private live = 0;
  private bytes = 0;
  private peak = 0;

  alloc(dtype: DType, size: number): CpuBuffer {
    this.live++;
    const buf = new CpuBuffer(dtype, size, allocArray(dtype, size));
    this.bytes += buf.data!.byteLength;
    if (this.bytes > this.peak) this.peak = this.bytes;
    return buf;
  }

  write(buf: Buffer, data: TypedArray): void {
    const b = this.own(buf, 'write');
    if (data.length !== b.size) throw new Error(`write: ${data.length} elements into a buffer of ${b.size}`);
    b.data!.set(data);
  }

  readSync(buf: Buffer): TypedArray {
    return this.own(buf, 'read').data!.slice();
  }

  async read(buf: Buffer): Promise<TypedArray> {
    return this.readSync(buf);
  }

  /** The live array behind a buffer, without copying (CPU only; for kernels and fast paths). */
  view(buf: Buffer): TypedArray {
    return this.own(buf, 'view').data!;
  }

  run<K extends KernelName>(kernel: K, inputs: Buffer[], outputs: Buffer[], params: KernelParams[K]): void {
    const impl = CPU_KERNELS[kernel] as CpuKernel<K> | undefined;
    if (!impl) throw new Error(`cpu backend: no kernel '${kernel}'`);
    impl.run(
      inputs.map((b) => this.own(b, kernel).data!),
      outputs.map((b) => this.own(b, kernel).data!),
      params,
    );
  }

  free(buf: Buffer): void {
    const b = this.own(buf, 'free');
    this.bytes -= b.data!.byteLength;
    b.data = null;
    this.live--;
  }

  async flush(): Promise<void> {}

  liveBuffers(): number {
    return this.live;
  }

  /** Bytes held by live buffers, and the most held since the last resetPeak(). */
  memory(): { liveBytes: number; peakBytes: number } {
    return { liveBytes: this.bytes, peakBytes: this.peak };
  }

  resetPeak(): void {
    this.peak = this.bytes;
  }

  supports(_dtype: DType): boolean {
    return true;
  }

  private own(buf: Buffer, what: string): CpuBuffer {
    if (!(buf instanceof CpuBuffer)) throw new Error(`cpu backend: ${what} got a buffer of another backend`);
    if (buf.data === null) throw new Error(`cpu backend: ${what} on a freed buffer`);
    return buf;
  }
}
