// Worker threads for the big CPU kernels (matmul rows, or columns when there are few rows; scan
// batch rows), on the shared memory of the CPU backend's heap (engine/wasm/memory.ts, processHeap):
// every CPU buffer is a view of it, and each worker is handed the memory at start, so a part
// travels as buffer references (dtype, byte offset, length) from which the worker makes its own
// views (of its `memory.buffer`, read afresh each job: the memory may have grown) and writes the
// outputs in place. Kernels stay synchronous: the calling thread posts the other parts to the
// workers, computes the first part itself, then blocks (Atomics.wait) until every worker has
// flagged its part done. A worker does not wait in its event loop but in Atomics.wait on its flag
// (woken by Atomics.notify, then reading its job from its port with receiveMessageOnPort): a
// wake-up without the event loop's, which a decoding step pays some 50 times a token. Work is split so that every output element is computed by exactly one
// thread, in the same order as with one thread: results are bit-identical whatever the number of
// threads.
//
// Two kinds of split:
//   a scalar kernel (engine/cpu/kernels/X.ts) calls runSplit with its ranges; workers run the
//     `part` of its CPU_KERNELS entry, with an optional float64 scratch shared by every part
//     (sharedF64: the scan backward's per-row partial sums);
//   a WebAssembly kernel with a `split` (engine/wasm/kernel.ts) goes through runWasmSplit: the
//     calling thread allocates each thread's scratch and the shared scratch from the heap (workers
//     never allocate), workers run `split.part` on their own instance of the kernel module (on the
//     same memory), and the calling thread runs `finish` after every part. The parts are claimed
//     in turn from a shared counter by the calling thread and the workers alike, so a worker that
//     starts late (a busy machine: woken after the calling thread has done its share) leaves its
//     parts to the others rather than making them wait; the split's `range` may ask for several
//     parts per thread (WasmSplit.range's `parts`) so that the share evens out.
//
// Threads: MI_CPU_THREADS (default: 2 at most, the available cores; 1 inside worker threads, which
// already share the cores, e.g. interp/worker-pool.ts). The workers start in the background on
// first use (about a second with tsx; each compiles the kernel modules before it reports ready);
// until they are up, kernels run on the calling thread alone. Node only, and only on a shared
// memory: in a browser nothing starts.
import { type DType, dtypeOfArray, type TypedArray } from '../dtype.ts';
import type { KernelName, KernelParams } from '../kernels.ts';
import type { WasmSplit } from '../wasm/kernel.ts';
import { processHeap, type WasmHeap } from '../wasm/memory.ts';

/** A scalar kernel call split by ranges of one axis; each worker runs the kernel's `part` (CPU_KERNELS). */
export interface SplitJob {
  kernel: KernelName;
  ins: TypedArray[];
  outs: TypedArray[];
  params: unknown;
  /** per-kernel scratch shared by every part (e.g. the scan backward's per-row partial sums): from sharedF64 */
  extra?: Float64Array;
}

/** A view of the heap as a worker rebuilds it. */
export interface BufferRef {
  dtype: DType;
  offset: number;
  length: number;
}

/** One part as posted to a worker. */
export interface PartJob {
  /** 'scalar': CPU_KERNELS[kernel].part; 'wasm': CPU_KERNELS[kernel].wasm.split.part */
  kind: 'scalar' | 'wasm';
  kernel: KernelName;
  ins: BufferRef[];
  outs: BufferRef[];
  params: unknown;
  r0: number;
  r1: number;
  /** scalar: the shared float64 scratch */
  extra?: BufferRef;
  /** wasm: this thread's scratch and the shared scratch (byte offsets, 0 if none) */
  scratch: number;
  shared: number;
  /** wasm: the parts [r0, r1), claimed in turn from the pool's counter (r0 and r1 unused) */
  parts?: [number, number][];
}

// flags[slot]: worker state. READY after start-up, BUSY while a part runs, then READY or FAILED.
const READY = 1,
  BUSY = 2,
  FAILED = 3; // 0: starting

interface Pool {
  heap: WasmHeap;
  /** each worker's job port */
  workers: { postMessage(m: unknown): void }[];
  flags: Int32Array;
  /** claims[0]: the next part of the running WebAssembly split to be taken */
  claims: Int32Array;
}

let pool: Pool | null = null;
let starting = false;

/** Calls split over threads so far, by "scalar matmul", "wasm matmul", ... (tests check that a split happened). */
export const splitCounts: Record<string, number> = {};
const counted = (key: string) => {
  splitCounts[key] = (splitCounts[key] ?? 0) + 1;
};

function wantedThreads(): number {
  if (typeof process === 'undefined' || typeof SharedArrayBuffer === 'undefined') return 1;
  const env = process.env.MI_CPU_THREADS;
  if (env !== undefined) {
    const n = Number(env);
    if (!Number.isInteger(n) || n < 1) throw new Error(`MI_CPU_THREADS must be a whole number >= 1, got '${env}'`);
    return n;
  }
  return 0; // decided once node:os and node:worker_threads are loaded
}

const requested = wantedThreads();

/**
 * Node's built-in modules, loaded synchronously: a kernel loop may never yield to the event loop
 * (CPU reads resolve in microtasks), and a dynamic import() would wait for it. Not a static import,
 * so the browser bundle stays free of node: modules.
 */
function builtin<T>(name: string): T | null {
  if (typeof process === 'undefined') return null;
  const get = (process as { getBuiltinModule?: (id: string) => unknown }).getBuiltinModule;
  return get ? (get(name) as T) : null;
}

/** The threads kernels are split over once the workers are up (1: none start). */
export function threadsWanted(): number {
  if (requested === 1 || typeof process === 'undefined' || !processHeap().shared) return 1;
  if (requested) return requested;
  const wt = builtin<typeof import('node:worker_threads')>('node:worker_threads');
  const os = builtin<typeof import('node:os')>('node:os');
  if (!wt || !os) return 1;
  return wt.isMainThread ? Math.min(2, os.availableParallelism()) : 1;
}

function startPool(): void {
  const n = threadsWanted();
  if (n <= 1) return;
  const wt = builtin<typeof import('node:worker_threads')>('node:worker_threads')!;
  const heap = processHeap();
  const flags = new Int32Array(new SharedArrayBuffer(4 * (n - 1)));
  const claims = new Int32Array(new SharedArrayBuffer(4));
  const entry = new URL(import.meta.url.endsWith('.ts') ? './thread-worker.ts' : './thread-worker.js', import.meta.url);
  // TypeScript sources (tests, tsx): each worker registers tsx's loader itself, as hooks
  // registered in the main thread do not reach workers
  const boot = import.meta.url.endsWith('.ts')
    ? `import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))}).then((m) => { m.register(); return import(${JSON.stringify(entry.href)}); })`
    : `import(${JSON.stringify(entry.href)})`;
  const workers = [];
  for (let slot = 0; slot < n - 1; slot++) {
    // jobs go through a port of their own, which the worker reads synchronously when woken
    const { port1, port2 } = new wt.MessageChannel();
    port1.unref();
    const w = new wt.Worker(boot, {
      eval: true,
      workerData: { flags, claims, slot, memory: heap.memory, jobs: port2 },
      transferList: [port2],
    });
    w.unref();
    w.on('error', (e: Error) => {
      console.error(`cpu thread ${slot}: ${e.message}`);
      Atomics.store(flags, slot, FAILED);
    });
    workers.push(port1);
  }
  pool = { heap, workers, flags, claims };
}

/** The number of threads a split may use now (1 until the workers are up). */
export function threadsReady(): number {
  if (!pool) {
    if (!starting && requested !== 1 && typeof process !== 'undefined') {
      starting = true;
      try {
        startPool();
      } catch (e) {
        console.error(`cpu threads not started: ${(e as Error).message}`);
      }
    }
    return 1;
  }
  for (let s = 0; s < pool.flags.length; s++) if (Atomics.load(pool.flags, s) !== READY) return 1;
  return pool.workers.length + 1;
}

/** threadsReady() for work on `heap`: 1 unless it is the heap the workers share. */
export function threadsFor(heap: WasmHeap): number {
  return heap === processHeap() ? threadsReady() : 1;
}

/** References to views of the pool's heap, or null if one is not (an array of a test, say). */
function refs(heap: WasmHeap, arrays: TypedArray[]): BufferRef[] | null {
  const out: BufferRef[] = [];
  for (const a of arrays) {
    if (!heap.owns(a)) return null;
    out.push({ dtype: dtypeOfArray(a), offset: a.byteOffset, length: a.length });
  }
  return out;
}

/** Posts jobs[i] to worker i, runs `here`, and waits for every worker (even when `here` throws). */
function runParts(pool: Pool, jobs: PartJob[], here: () => void): void {
  const { workers, flags } = pool;
  if (jobs.length > workers.length) throw new Error(`cpu threads: ${jobs.length + 1} parts for ${workers.length + 1} threads`);
  let posted = 0;
  const waitAll = () => {
    let failed = false;
    for (let s = 1; s <= posted; s++) {
      while (Atomics.load(flags, s - 1) === BUSY) Atomics.wait(flags, s - 1, BUSY);
      if (Atomics.load(flags, s - 1) === FAILED) failed = true;
    }
    return failed;
  };
  try {
    for (let s = 1; s <= jobs.length; s++) {
      // the job first, then the flag that wakes the worker (blocked in Atomics.wait) to read it
      workers[s - 1].postMessage(jobs[s - 1]);
      Atomics.store(flags, s - 1, BUSY);
      Atomics.notify(flags, s - 1);
      posted = s;
    }
    here();
  } catch (e) {
    // the workers still write into the outputs and scratch: wait for them before the caller frees anything
    waitAll();
    throw e;
  }
  if (waitAll()) throw new Error(`cpu threads: a worker failed running ${jobs[0].kernel} (see the error printed above)`);
}

/**
 * A scalar kernel's split: runs `ranges[0]` here and the other ranges on workers, returning when
 * all are done. False (and nothing run) when the workers are not ready or an array is not a view
 * of their heap; the caller then does the whole range itself. ranges.length must be at most
 * threadsReady().
 */
export function runSplit(job: SplitJob, ranges: [number, number][], runHere: (r0: number, r1: number) => void): boolean {
  if (!pool || ranges.length < 2) return false;
  const ins = refs(pool.heap, job.ins),
    outs = refs(pool.heap, job.outs),
    extra = job.extra ? refs(pool.heap, [job.extra]) : [];
  if (!ins || !outs || !extra) return false;
  if (ranges.length > pool.workers.length + 1)
    throw new Error(`cpu threads: ${ranges.length} parts for ${pool.workers.length + 1} threads`);
  const part = { kind: 'scalar' as const, kernel: job.kernel, ins, outs, params: job.params, extra: extra[0], scratch: 0, shared: 0 };
  const jobs = ranges.slice(1).map(([r0, r1]) => ({ ...part, r0, r1 }));
  runParts(pool, jobs, () => runHere(ranges[0][0], ranges[0][1]));
  counted(`scalar ${job.kernel}`);
  return true;
}

/**
 * A WebAssembly kernel's split into the parts `ranges` (any number) on the workers' heap: scratch
 * allocated here for every thread (the most any part needs) and for all, the parts claimed in turn
 * by this thread and up to ranges.length - 1 workers, then `finish`, then the scratch freed. False
 * (nothing run) when the workers are not ready or the arrays are not views of their heap.
 */
export function runWasmSplit<K extends KernelName>(
  kernel: K,
  split: WasmSplit<K>,
  ins: TypedArray[],
  outs: TypedArray[],
  p: KernelParams[K],
  ranges: [number, number][],
): boolean {
  if (!pool || ranges.length < 2) return false;
  const heap = pool.heap;
  const inRefs = refs(heap, ins),
    outRefs = refs(heap, outs);
  if (!inRefs || !outRefs) return false;
  const threads = Math.min(pool.workers.length + 1, ranges.length);
  const claims = pool.claims;
  const blocks: number[] = [];
  try {
    const bytes = Math.max(...ranges.map(([r0, r1]) => split.partScratch?.(p, r0, r1) ?? 0));
    const scratch = Array.from({ length: threads }, () => {
      if (!bytes) return 0;
      const b = heap.alloc(bytes);
      blocks.push(b);
      return b;
    });
    const sharedBytes = split.sharedScratch?.(p) ?? 0;
    const shared = sharedBytes ? heap.alloc(sharedBytes) : 0;
    if (shared) blocks.push(shared);
    Atomics.store(claims, 0, 0);
    const job = { kind: 'wasm' as const, kernel, ins: inRefs, outs: outRefs, params: p, r0: 0, r1: 0, shared, parts: ranges };
    const jobs = scratch.slice(1).map((sc) => ({ ...job, scratch: sc }));
    runParts(pool, jobs, () => claimParts(claims, ranges, (r0, r1) => split.part(heap, ins, outs, p, r0, r1, scratch[0], shared)));
    split.finish?.(heap, ins, outs, p, shared);
    counted(`wasm ${kernel}`);
  } finally {
    for (const b of blocks) heap.free(b);
  }
  return true;
}

/** Runs the parts of `ranges` not yet claimed (claims[0] counts the parts taken, by every thread). */
export function claimParts(claims: Int32Array, ranges: [number, number][], part: (r0: number, r1: number) => void): void {
  for (;;) {
    const i = Atomics.add(claims, 0, 1);
    if (i >= ranges.length) return;
    part(ranges[i][0], ranges[i][1]);
  }
}

/** A float64 scratch array of n in the workers' heap, for SplitJob.extra; give it back with freeSharedF64. */
export function sharedF64(n: number): Float64Array {
  const heap = processHeap();
  return heap.f64(heap.alloc(8 * n), n);
}

export function freeSharedF64(a: Float64Array): void {
  processHeap().free(a.byteOffset);
}

/** Splits [0, n) into `parts` contiguous ranges whose starts are multiples of `align`. */
export function splitRange(n: number, parts: number, align = 1): [number, number][] {
  const units = Math.ceil(n / align);
  const ranges: [number, number][] = [];
  let u0 = 0;
  for (let p = 0; p < parts && u0 < units; p++) {
    const u1 = Math.round((units * (p + 1)) / parts);
    if (u1 > u0) ranges.push([u0 * align, Math.min(n, u1 * align)]);
    u0 = u1;
  }
  return ranges;
}

export { BUSY, READY, FAILED };
