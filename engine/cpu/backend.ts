// The CPU backend. Every buffer (float32, float64, int32) is a block of one WebAssembly heap (the
// thread's processHeap(), engine/wasm/memory.ts), viewed as a typed array, so the WebAssembly SIMD
// kernels read inputs and write outputs in place, by offset, and the worker threads
// (threads.ts) see them too. float32 buffers are Float32Array views: every kernel's result is
// rounded to float32 on store and agrees with the WebGPU backend to float32 rounding. Kernels run
// synchronously when dispatched.
//
// Dispatch: a kernel's CPU_KERNELS entry has the scalar TypeScript kernel (`run`, the reference,
// float64-exact) and, for some, a WebAssembly one (`wasm`, engine/wasm/kernel.ts). The WebAssembly
// kernel runs when the backend has WebAssembly on (SIMD present, MI_WASM not 0, the modules
// compiled: in a browser's main thread only after initBackend('cpu') / prepare()) and it accepts
// the call (float32 work); a WebAssembly kernel with a `split` is split over the worker threads.
// A WebAssembly kernel's `prepare` runs first, on this thread, and may use blocks derived from its
// inputs (packed weights), kept across calls in the backend's DerivedCache (derived.ts): dropped
// when their buffer is freed or written (through any backend on the heap: the buffer tells the
// caches), built on a buffer's second use, within a byte budget.
import type { Backend, Buffer } from '../backend.ts';
import { bytesPer, type DType, type TypedArray } from '../dtype.ts';
import type { KernelName, KernelParams } from '../kernels.ts';
import { wasmFeatures } from '../wasm/features.ts';
import { kernelModulesCompiled, precompileKernelModules, type WasmKernel } from '../wasm/kernel.ts';
import { processHeap, WASM32_MAX_PAGES, type WasmHeap } from '../wasm/memory.ts';
import { DerivedCache, type DerivedStats, defaultDerivedBudget } from './derived.ts';
import { CPU_KERNELS, type CpuKernel } from './kernels/index.ts';
import { runWasmSplit, splitRange, threadsFor, threadsWanted } from './threads.ts';

export interface CpuBackendOptions {
  /** the heap buffers live in (default: this thread's processHeap(); a small one for limit tests) */
  heap?: WasmHeap;
  /**
   * whether float32 work may go to the WebAssembly kernels (default: unless MI_WASM=0); false
   * gives the scalar TypeScript kernels only (the reference the WebAssembly ones are tested against)
   */
  wasm?: boolean;
  /**
   * the most bytes of the heap that blocks derived from buffers (packed weights for the matmul
   * kernels) may hold (default defaultDerivedBudget: half the heap's limit, at most 2 GiB; 0: none)
   */
  derivedBudget?: number;
}

export class CpuBuffer implements Buffer {
  private view: TypedArray | null = null;
  private generation = -1;
  private freed = false;
  // the caches that hold (or were asked for) blocks derived from this buffer, whichever backend on
  // the heap asked: a write or a free through any backend drops them all
  private derivedIn: Set<DerivedCache> | null = null;

  constructor(
    readonly heap: WasmHeap,
    readonly dtype: DType,
    readonly size: number,
    /** the block's byte offset in the heap */
    readonly offset: number,
  ) {}

  /** The buffer's typed array (a view of the heap, made again after the memory grows); null once freed. */
  get data(): TypedArray | null {
    if (this.freed) return null;
    if (this.generation !== this.heap.generation) {
      this.view = this.heap.viewAt(this.dtype, this.offset, this.size);
      this.generation = this.heap.generation;
    }
    return this.view;
  }

  /** Marks the buffer freed (the backend gives the block back), dropping what was derived from it. */
  release(): void {
    this.contentsChange();
    this.freed = true;
    this.view = null;
  }

  /** Notes that `cache` keeps state derived from this buffer (DerivedCache.get). */
  derivedBy(cache: DerivedCache): void {
    if (!this.derivedIn) this.derivedIn = new Set();
    this.derivedIn.add(cache);
  }

  /** The contents are about to change (or go): every cache drops what it derived from them. */
  contentsChange(): void {
    if (!this.derivedIn) return;
    for (const c of this.derivedIn) c.invalidate(this);
    this.derivedIn = null;
  }
}

function formatBytes(n: number): string {
  const units = ['bytes', 'KiB', 'MiB', 'GiB'];
  let u = 0;
  while (n >= 1024 && u < units.length - 1 && n % 1024 === 0) {
    n /= 1024;
    u++;
  }
  return `${n} ${units[u]}`;
}

function envDefaultsWasm(): boolean {
  return !wasmFeatures().switchedOff;
}

export class CpuBackend implements Backend {
  readonly name = 'cpu' as const;
  readonly heap: WasmHeap;
  private readonly wasmWanted: boolean;
  private compiled: boolean;
  private live = 0;
  private bytes = 0;
  private peak = 0;
  private readonly derived: DerivedCache;

  constructor(opts: CpuBackendOptions = {}) {
    this.heap = opts.heap ?? processHeap();
    this.derived = new DerivedCache(this.heap, opts.derivedBudget ?? defaultDerivedBudget(this.heap.limit));
    this.wasmWanted = opts.wasm ?? envDefaultsWasm();
    // a browser's main thread compiles the modules asynchronously first (prepare)
    this.compiled = wasmFeatures().syncCompile || kernelModulesCompiled(this.heap.shared);
  }

  /** Whether float32 work goes to the WebAssembly kernels (those that accept it). */
  get wasmEnabled(): boolean {
    return this.wasmWanted && wasmFeatures().simd && this.compiled;
  }

  /**
   * Compiles the WebAssembly kernel modules asynchronously, as a browser's main thread requires
   * before the first WebAssembly kernel runs (initBackend('cpu') calls it; in Node it is optional).
   */
  async prepare(): Promise<void> {
    if (!this.wasmWanted || !wasmFeatures().simd) return;
    await precompileKernelModules(this.heap.shared);
    this.compiled = true;
  }

  /**
   * One line: where it runs and what computes, e.g. "cpu (Node 20.20.2, WebAssembly SIMD, 2
   * threads)" or "cpu (Node 20.20.2, scalar TypeScript kernels: WebAssembly SIMD switched off by
   * MI_WASM=0, 2 threads)".
   */
  get description(): string {
    const where = typeof process !== 'undefined' && process.versions?.node ? `Node ${process.versions.node}` : 'browser';
    const f = wasmFeatures();
    const kernels = this.wasmEnabled
      ? 'WebAssembly SIMD'
      : `scalar TypeScript kernels: ${
          !this.wasmWanted
            ? f.switchedOff
              ? 'WebAssembly SIMD switched off by MI_WASM=0'
              : 'WebAssembly SIMD switched off for this backend'
            : !f.simd
              ? 'this JavaScript engine has no WebAssembly SIMD'
              : "the WebAssembly kernels are not compiled yet (initBackend('cpu') compiles them)"
        }`;
    const n = this.heap.shared ? threadsWanted() : 1;
    return `cpu (${where}, ${kernels}, ${n} thread${n === 1 ? '' : 's'})`;
  }

  alloc(dtype: DType, size: number): CpuBuffer {
    const bytes = size * bytesPer(dtype);
    let offset: number;
    try {
      offset = this.allocBlock(bytes);
    } catch (e) {
      if (!(e instanceof RangeError)) throw e;
      const { limit } = this.heap;
      const max = limit === WASM32_MAX_PAGES * 65536 ? ', the wasm32 maximum' : '';
      const grow = /growing the memory/.test((e as Error).message) ? `; ${(e as Error).message}` : '';
      throw new RangeError(
        `cpu backend: cannot allocate a ${dtype} tensor of ${size} elements (${bytes} bytes): the WebAssembly heap's limit is ` +
          `${formatBytes(limit)} (${limit} bytes${max}) and ${this.heap.stats().inUse} bytes are in use${grow}`,
      );
    }
    this.live++;
    this.bytes += bytes;
    if (this.bytes > this.peak) this.peak = this.bytes;
    return new CpuBuffer(this.heap, dtype, size, offset);
  }

  /** A heap block, dropping derived blocks (least recently used first) while it would not fit otherwise. */
  private allocBlock(bytes: number): number {
    for (;;) {
      try {
        return this.heap.alloc(bytes);
      } catch (e) {
        if (!(e instanceof RangeError) || !this.derived.dropOne()) throw e;
      }
    }
  }

  write(buf: Buffer, data: TypedArray): void {
    const b = this.own(buf, 'write');
    if (data.length !== b.size) throw new Error(`write: ${data.length} elements into a buffer of ${b.size}`);
    b.contentsChange();
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
    let ins = inputs.map((b) => this.own(b, kernel).data!);
    let outs = outputs.map((b) => this.own(b, kernel).data!);
    // an output is written: nothing derived from its old contents may stay
    for (const b of outputs) (b as CpuBuffer).contentsChange();
    const w = impl.wasm;
    if (w && this.wasmEnabled && w.accepts(ins, outs, params)) {
      let p = params;
      if (w.prepare) {
        const generation = this.heap.generation;
        const ctx = {
          derived: (i: number, key: string, bytes: number, build: (offset: number) => void) => {
            const b = inputs[i] as CpuBuffer;
            b.derivedBy(this.derived);
            return this.derived.get(b, key, bytes, build);
          },
        };
        p = w.prepare(this.heap, ins, outs, params, ctx);
        // a block allocated there may have grown the memory (detaching the views of a non-shared one)
        if (this.heap.generation !== generation) {
          ins = inputs.map((b) => (b as CpuBuffer).data!);
          outs = outputs.map((b) => (b as CpuBuffer).data!);
        }
      }
      this.runWasm(kernel, w, ins, outs, p);
    } else impl.run(ins, outs, params);
  }

  /** The blocks derived from buffers that the kernels keep (packed weights): bytes, count, budget, builds and hits so far. */
  derivedBlocks(): DerivedStats {
    return this.derived.stats();
  }

  /** Drops every derived block (their bytes return to the heap; they are built again when used). */
  dropDerived(): void {
    this.derived.clear();
  }

  private runWasm<K extends KernelName>(kernel: K, w: WasmKernel<K>, ins: TypedArray[], outs: TypedArray[], p: KernelParams[K]): void {
    const range = w.split?.range(p);
    if (range) {
      const threads = threadsFor(this.heap);
      if (threads > 1 && runWasmSplit(kernel, w.split!, ins, outs, p, splitRange(range.n, threads * (range.parts ?? 1), range.align)))
        return;
    }
    w.run(this.heap, ins, outs, p);
  }

  free(buf: Buffer): void {
    const b = this.own(buf, 'free');
    // first: its derived blocks go back to the heap too
    b.release();
    this.heap.free(b.offset);
    this.bytes -= b.size * bytesPer(b.dtype);
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
    if (buf.heap !== this.heap) throw new Error(`cpu backend: ${what} got a buffer of a CPU backend on another heap`);
    if (buf.data === null) throw new Error(`cpu backend: ${what} on a freed buffer`);
    return buf;
  }
}
