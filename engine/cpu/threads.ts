// Worker threads for the big CPU kernels (matmul rows, or columns when there are few rows; scan
// batch rows). Kernels stay synchronous:
// the calling thread posts the other parts to the workers, computes the first part itself, then
// blocks (Atomics.wait) until every worker has flagged its part done. Buffers are shared memory
// (the CPU backend allocates large buffers on SharedArrayBuffer), so workers write the outputs in
// place. Work is split so that every output element is computed by exactly one thread, in the
// same order as with one thread: results are bit-identical whatever the number of threads.
//
// Threads: MI_CPU_THREADS (default: 2 at most, the available cores; 1 inside worker threads, which
// already share the cores, e.g. interp/worker-pool.ts). The workers start in the background on
// first use (about a second with tsx); until they are up, kernels run on the calling thread alone. Node only: in a browser
// (no process, no SharedArrayBuffer without cross-origin isolation) nothing starts.
import type { TypedArray } from '../dtype.ts';
import type { KernelName } from '../kernels.ts';

/** A kernel call split by ranges of one axis; each worker runs the kernel's `part` (CPU_KERNELS). */
export interface SplitJob {
  kernel: KernelName;
  ins: TypedArray[];
  outs: TypedArray[];
  params: unknown;
  /** per-kernel scratch shared by every part (e.g. the scan backward's per-row partial sums) */
  extra?: Float64Array;
}

// flags[slot]: worker state. READY after start-up, BUSY while a part runs, then READY or FAILED.
const READY = 1,
  BUSY = 2,
  FAILED = 3; // 0: starting

interface Pool {
  workers: { postMessage(m: unknown): void }[];
  flags: Int32Array;
}

let pool: Pool | null = null;
let starting = false;

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

/** Whether buffers should be shared memory: only when threads may be used. */
export const threadsPossible = requested !== 1;

/**
 * Node's built-in modules, loaded synchronously: a kernel loop may never yield to the event loop
 * (CPU reads resolve in microtasks), and a dynamic import() would wait for it. Not a static import,
 * so the browser bundle stays free of node: modules.
 */
function builtin<T>(name: string): T | null {
  const get = (process as { getBuiltinModule?: (id: string) => unknown }).getBuiltinModule;
  return get ? (get(name) as T) : null;
}

function startPool(): void {
  const wt = builtin<typeof import('node:worker_threads')>('node:worker_threads');
  const os = builtin<typeof import('node:os')>('node:os');
  if (!wt || !os) return;
  const n = requested || (wt.isMainThread ? Math.min(2, os.availableParallelism()) : 1);
  if (n <= 1) return;
  const flags = new Int32Array(new SharedArrayBuffer(4 * (n - 1)));
  const entry = new URL(import.meta.url.endsWith('.ts') ? './thread-worker.ts' : './thread-worker.js', import.meta.url);
  // TypeScript sources (tests, tsx): each worker registers tsx's loader itself, as hooks
  // registered in the main thread do not reach workers
  const boot = import.meta.url.endsWith('.ts')
    ? `import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))}).then((m) => { m.register(); return import(${JSON.stringify(entry.href)}); })`
    : `import(${JSON.stringify(entry.href)})`;
  const workers = [];
  for (let slot = 0; slot < n - 1; slot++) {
    const w = new wt.Worker(boot, { eval: true, workerData: { flags, slot } });
    w.unref();
    w.on('error', (e: Error) => {
      console.error(`cpu thread ${slot}: ${e.message}`);
      Atomics.store(flags, slot, FAILED);
    });
    workers.push(w);
  }
  pool = { workers, flags };
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

function shared(a: TypedArray): boolean {
  return a.buffer instanceof SharedArrayBuffer;
}

function sharedLike(a: TypedArray): TypedArray {
  const sab = new SharedArrayBuffer(a.byteLength);
  return a instanceof Float32Array ? new Float32Array(sab) : a instanceof Float64Array ? new Float64Array(sab) : new Int32Array(sab);
}

/**
 * Runs `ranges[0]` here (writing into the `outs` it is given) and the other ranges on workers,
 * returning when all are done. False (and nothing run) when the workers are not ready; the caller
 * then does the whole range itself. ranges.length must be at most threadsReady().
 */
export function runSplit(
  job: SplitJob,
  ranges: [number, number][],
  runHere: (r0: number, r1: number, outs: TypedArray[]) => void,
): boolean {
  if (!pool || ranges.length < 2 || (job.extra && !shared(job.extra))) return false;
  const { workers, flags } = pool;
  // small outputs are not in shared memory: the parts write a shared stand-in, copied back after
  const outs = job.outs.map((o) => (shared(o) ? o : sharedLike(o)));
  for (let s = 1; s < ranges.length; s++) {
    Atomics.store(flags, s - 1, BUSY);
    workers[s - 1].postMessage({ ...job, outs, r0: ranges[s][0], r1: ranges[s][1] });
  }
  runHere(ranges[0][0], ranges[0][1], outs);
  let failed = false;
  for (let s = 1; s < ranges.length; s++) {
    while (Atomics.load(flags, s - 1) === BUSY) Atomics.wait(flags, s - 1, BUSY);
    if (Atomics.load(flags, s - 1) === FAILED) failed = true;
  }
  if (failed) throw new Error(`cpu threads: a worker failed running ${job.kernel} (see the error printed above)`);
  job.outs.forEach((o, i) => {
    if (outs[i] !== o) o.set(outs[i]);
  });
  return true;
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

export { READY, FAILED };
