// The contract between the CPU backend and its WebAssembly SIMD kernels. For an op file X with a
// scalar TypeScript kernel in engine/cpu/kernels/X.ts (the reference), engine/wasm/kernels/X.ts
// holds the WebAssembly version of (some of) its kernels, registered beside the scalar one in
// engine/cpu/kernels/index.ts (`wasm:` in the CPU_KERNELS entry). The backend runs the WebAssembly
// kernel when WebAssembly SIMD is available (not switched off with MI_WASM=0) and the kernel
// accepts the call; otherwise the scalar kernel.
//
// Every CPU buffer lives in one WasmHeap (engine/wasm/memory.ts), so the typed arrays a kernel gets
// are views of the heap's memory: `heap.offsetOf(view)` is the pointer the WebAssembly code reads.
// Kernel modules import that memory ("env" "memory"); `kernelModule` builds each module once per
// process and instantiates it once per memory (a worker thread instantiates it on the same shared
// memory).
//
// Allocation: only the calling thread allocates (a worker's heap is attached to the memory and has
// no block table), so a split's scratch is allocated by the caller before the parts start. On a
// non-shared memory (a page that is not cross-origin isolated) growing the memory detaches every
// view made before: a kernel that allocates takes its operands' offsets (heap.offsetOf) first.
//
// Derived blocks: a kernel may keep, across calls, a block computed from one input alone (a packed
// copy of a weight matrix, laid out for streaming): `prepare` asks the backend's cache for it
// (WasmContext.derived) on the calling thread, before the call runs or splits, and returns the
// parameters to run with (the block's offset added); worker parts only read the block. The backend
// keeps a block while its input buffer lives unwritten (engine/cpu/backend.ts) and may have none
// to give (a first sight, its budget spent), so a kernel always has a way without it, and gives the
// same bits either way.
//
// Determinism: float32 work may accumulate in float32, in a fixed order that depends only on the
// shapes and parameters, never on how the work is split: each output element is computed the same
// way whichever thread computes it and whatever range it belongs to, so results are bit-identical
// run to run and for any thread count. Reductions across a split axis go through per-unit partials
// (one per batch row, say) combined in unit order, never per-part partials.
import type { TypedArray } from '../dtype.ts';
import type { KernelName, KernelParams } from '../kernels.ts';
import type { ModuleBuilder } from './assembler.ts';
import type { WasmHeap } from './memory.ts';

/** What the backend offers a kernel's `prepare`, for one call. */
export interface WasmContext {
  /**
   * The byte offset of a block of `bytes` bytes derived from input `input` alone, `key` naming
   * everything else its contents depend on (layout, the shape the input is read as): made by
   * `build(offset)` (which writes it, on this thread) when the cache decides to keep one, then
   * reused while that input's buffer lives and is not written. 0 when there is none for this call.
   * Allocates: take the inputs' offsets before calling (views of a non-shared memory detach).
   */
  derived(input: number, key: string, bytes: number, build: (offset: number) => void): number;
}

export interface WasmKernel<K extends KernelName> {
  /**
   * Whether this call runs here (dtypes, layouts and sizes the kernel handles); otherwise the
   * scalar kernel runs it. Decided from dtypes, shapes and parameters only, never from values.
   */
  accepts(ins: TypedArray[], outs: TypedArray[], p: KernelParams[K]): boolean;
  /**
   * Before the call (the backend's, on the calling thread, ahead of `run` or any split): the
   * parameters to run with, e.g. the call's with the offsets of derived blocks (ctx.derived) added;
   * `split` and the parts get these. Without it (or outside the backend) the call's own.
   */
  prepare?(heap: WasmHeap, ins: TypedArray[], outs: TypedArray[], p: KernelParams[K], ctx: WasmContext): KernelParams[K];
  /** The whole call, on the calling thread. May allocate scratch from `heap` (and must free it). */
  run(heap: WasmHeap, ins: TypedArray[], outs: TypedArray[], p: KernelParams[K]): void;
  /** How the call splits over worker threads, for kernels that do (engine/cpu/threads.ts). */
  split?: WasmSplit<K>;
}

/**
 * A split over ranges [r0, r1) of one axis of the work (rows of a matmul, batch rows or channels
 * of a scan, runs of elements), which the threads claim in turn (one thread may run several, one
 * after the other, with the same scratch). Only the calling thread allocates from the heap, so it
 * allocates every thread's scratch before the parts start and frees it after.
 */
export interface WasmSplit<K extends KernelName> {
  /**
   * The axis to split, the alignment of range starts, and the parts per thread to cut it into
   * (default 1; the threads claim parts in turn, so more parts even out a thread that starts late),
   * or null when the call is too small to split.
   */
  range(p: KernelParams[K]): { n: number; align: number; parts?: number } | null;
  /** Bytes of private scratch a part needs (default none). */
  partScratch?(p: KernelParams[K], r0: number, r1: number): number;
  /** Bytes of scratch shared by all parts, e.g. per-unit partial sums (default none). */
  sharedScratch?(p: KernelParams[K]): number;
  /** One part: range [r0, r1), with its private scratch and the shared scratch (byte offsets, 0 if none). */
  part(
    heap: WasmHeap,
    ins: TypedArray[],
    outs: TypedArray[],
    p: KernelParams[K],
    r0: number,
    r1: number,
    scratch: number,
    shared: number,
  ): void;
  /** After every part: combine the shared partials into the outputs, in unit order (default nothing). */
  finish?(heap: WasmHeap, ins: TypedArray[], outs: TypedArray[], p: KernelParams[K], shared: number): void;
}

/** The exports of an instantiated kernel module: functions taking and returning numbers. */
export type WasmExports = Record<string, (...args: number[]) => number | undefined>;

interface KernelModule {
  build: (shared: boolean) => ModuleBuilder;
  compiled: Map<boolean, WebAssembly.Module>;
  instances: WeakMap<WebAssembly.Memory, WasmExports>;
}

const MODULES = new Map<string, KernelModule>();

function isShared(memory: WebAssembly.Memory): boolean {
  return typeof SharedArrayBuffer !== 'undefined' && memory.buffer instanceof SharedArrayBuffer;
}

/**
 * A kernel module, generated by `build` (given whether the memory it imports is shared: a page
 * that is not cross-origin isolated has no shared memory), compiled on first use and instantiated
 * once per memory. Returns the function that gives a heap's instance of it.
 */
export function kernelModule<E extends WasmExports = WasmExports>(
  name: string,
  build: (shared: boolean) => ModuleBuilder,
): (heap: WasmHeap) => E {
  if (MODULES.has(name)) throw new Error(`wasm kernel module '${name}' is defined twice`);
  const mod: KernelModule = { build, compiled: new Map(), instances: new WeakMap() };
  MODULES.set(name, mod);
  return (heap) => (mod.instances.get(heap.memory) ?? instantiate(mod, heap.memory)) as E;
}

function instantiate(mod: KernelModule, memory: WebAssembly.Memory): WasmExports {
  const shared = isShared(memory);
  let compiled = mod.compiled.get(shared);
  if (!compiled) {
    compiled = mod.build(shared).compile();
    mod.compiled.set(shared, compiled);
  }
  const e = new WebAssembly.Instance(compiled, { env: { memory } }).exports as unknown as WasmExports;
  mod.instances.set(memory, e);
  return e;
}

/**
 * Instantiates every kernel module on a heap's memory now, compiling synchronously what is not
 * compiled yet (a worker thread, before it reports ready, so that its first part does not wait).
 */
export function instantiateKernelModules(heap: WasmHeap): void {
  for (const mod of MODULES.values()) if (!mod.instances.has(heap.memory)) instantiate(mod, heap.memory);
}

/** Whether every kernel module is compiled for a memory of this kind (a browser's main thread runs none before). */
export function kernelModulesCompiled(shared: boolean): boolean {
  for (const mod of MODULES.values()) if (!mod.compiled.has(shared)) return false;
  return true;
}

/**
 * Compiles every kernel module for a memory of this kind ahead of use, asynchronously: a browser's
 * main thread refuses to compile a module of more than 4 KB synchronously. Node needs no call.
 */
export async function precompileKernelModules(shared: boolean): Promise<void> {
  for (const mod of MODULES.values()) {
    if (!mod.compiled.has(shared)) mod.compiled.set(shared, await mod.build(shared).compileAsync());
  }
}
