// The float32 batched matmul of engine/kernels.ts in WebAssembly SIMD, on the CPU backend's heap
// (engine/wasm/memory.ts): out[b] = op(A[b]) @ op(B[b]), A [M, K] ([K, M] if transA), B [K, N]
// ([N, K] if transB), batch strides 0 = broadcast, out [batch, M, N]. Inputs and output are views
// of the heap. The WasmKernel of engine/wasm/kernel.ts, registered beside the scalar kernel in
// engine/cpu/kernels/index.ts:
//   the blocked, packed kernel with a 4x8 register tile (matmul/blocked.ts);
//   for a few rows (M <= 3 with B [N, K], M <= 6 with B [K, N]: where it measured faster) the
//   few-rows kernel reading B unpacked (matmul/small.ts).
// Every output element is the float32 sum over k in increasing order, acc = acc + a * b from +0,
// whatever the path, the tiling or the part of the output computed: results are bit-identical run
// to run and however the rows or columns are split among threads (the split: rows [r0, r1) of
// every batch, or columns when M <= 8, as engine/cpu/kernels/matmul.ts splits).
//
// The module (about 21 KB) is generated and compiled once per process (about 25 ms measured here,
// mostly running the generator for the first time) and instantiated once per memory (kernelModule).
import type { TypedArray } from '../../dtype.ts';
import type { KernelParams } from '../../kernels.ts';
import { ModuleBuilder } from '../assembler.ts';
import { kernelModule, type WasmExports, type WasmKernel } from '../kernel.ts';
import type { WasmHeap } from '../memory.ts';
import { gemm, KC, MC, MR, NC, NR } from './matmul/blocked.ts';
import { fewRowsFaster, packRows, SMALL_M, small } from './matmul/small.ts';

export { SMALL_M } from './matmul/small.ts';

export type MatmulParams = KernelParams['matmul'];

/** The part of every batch's output to compute: rows [m0, m1) x columns [n0, n1). */
export interface OutputRect {
  m0: number;
  m1: number;
  n0: number;
  n1: number;
}

/** gemm, pack_rows, small_t1..small_t8 (B [N, K]) and small_n1..small_n8 (B [K, N]) */
type Exports = WasmExports;

/** The module's code: the blocked kernel, the few-rows kernels for M = 1..8, both B layouts. */
export function buildMatmulModule(shared = true): ModuleBuilder {
  const m = new ModuleBuilder();
  // initial 0 and the wasm32 maximum: the one compiled module links with any heap's memory of its kind
  m.importMemory({ initial: 0, maximum: 65536, shared });
  gemm(m);
  m.export('pack_rows', packRows(m));
  for (let M = 1; M <= SMALL_M; M++) for (const t of [true, false]) m.export(`small_${t ? 't' : 'n'}${M}`, small(m, M, t));
  return m;
}

const exportsFor = kernelModule<Exports>('matmul', buildMatmulModule);

const roundUp = (n: number, a: number) => Math.ceil(n / a) * a;

function checkArgs(heap: WasmHeap, [a, b]: Float32Array[], [out]: Float32Array[], p: MatmulParams, r: OutputRect): void {
  const { batch, M, N, K, aBatchStride, bBatchStride } = p;
  for (const [what, x, need] of [
    ['a', a, (batch - 1) * aBatchStride + M * K],
    ['b', b, (batch - 1) * bBatchStride + K * N],
    ['out', out, batch * M * N],
  ] as const) {
    if (!(x instanceof Float32Array) || !heap.owns(x)) throw new Error(`wasm matmul: ${what} must be a Float32Array view of the heap`);
    if (x.length < need) throw new RangeError(`wasm matmul: ${what} has ${x.length} elements, needs ${need}`);
  }
  if (!(r.m0 >= 0 && r.m0 <= r.m1 && r.m1 <= M && r.n0 >= 0 && r.n0 <= r.n1 && r.n1 <= N))
    throw new RangeError(`wasm matmul: rows [${r.m0}, ${r.m1}) x columns [${r.n0}, ${r.n1}) outside ${M} x ${N}`);
}

type Path = 'auto' | 'blocked' | 'small';

function useSmall(p: MatmulParams, r: OutputRect, path: Path): boolean {
  const rows = r.m1 - r.m0;
  const small = path === 'small' || (path === 'auto' && fewRowsFaster(rows, p.transB));
  if (small && rows > SMALL_M) throw new RangeError(`wasm matmul: the few-rows kernel takes at most ${SMALL_M} rows, not ${rows}`);
  return small;
}

/** Bytes of scratch the rectangle needs (packed panels, the edge tile; packed rows for the few-rows kernel). */
export function rectScratchBytes(p: MatmulParams, r: OutputRect, path: Path = 'auto'): number {
  const rows = r.m1 - r.m0,
    cols = r.n1 - r.n0;
  if (rows <= 0 || cols <= 0 || p.batch === 0 || p.K === 0) return 0;
  if (useSmall(p, r, path)) return 4 * rows * p.K;
  const kc = Math.min(KC, p.K);
  return 4 * (roundUp(Math.min(MC, rows), MR) * kc + roundUp(Math.min(NC, cols), NR) * kc + MR * NR);
}

/**
 * Rows [m0, m1) x columns [n0, n1) of every batch's output, with `scratch`: a block of at least
 * rectScratchBytes bytes (a worker thread is handed one; it does not allocate). `path` forces a
 * kernel (tests: both give the same bits); by default the faster for the rows asked for.
 */
export function wasmMatmulRectIn(
  heap: WasmHeap,
  ins: Float32Array[],
  outs: Float32Array[],
  p: MatmulParams,
  r: OutputRect,
  scratch: number,
  path: Path = 'auto',
): void {
  const at = operands(heap, ins, outs, p, r);
  if (at) compute(heap, at, p, r, scratch, path);
}

/** wasmMatmulRectIn with its scratch allocated from the heap (the calling thread). */
export function wasmMatmulRect(
  heap: WasmHeap,
  ins: Float32Array[],
  outs: Float32Array[],
  p: MatmulParams,
  r: OutputRect,
  path: Path = 'auto',
): void {
  // the operands' offsets first: allocating may grow the memory, which detaches the views of a
  // non-shared one
  const at = operands(heap, ins, outs, p, r);
  if (!at) return;
  const scratch = heap.alloc(rectScratchBytes(p, r, path));
  try {
    compute(heap, at, p, r, scratch, path);
  } finally {
    heap.free(scratch);
  }
}

/** The operands' byte offsets, or null when there is nothing to compute (an empty rectangle; K = 0, whose zeros are written here). */
function operands(
  heap: WasmHeap,
  ins: Float32Array[],
  outs: Float32Array[],
  p: MatmulParams,
  r: OutputRect,
): [number, number, number] | null {
  checkArgs(heap, ins, outs, p, r);
  const { batch, M, N, K } = p;
  const { m0, m1, n0, n1 } = r;
  if (m0 === m1 || n0 === n1 || batch === 0) return null;
  if (K === 0) {
    // empty sums: zeros (the kernels assume K >= 1)
    for (let bi = 0; bi < batch; bi++) for (let i = m0; i < m1; i++) outs[0].fill(0, (bi * M + i) * N + n0, (bi * M + i) * N + n1);
    return null;
  }
  return [heap.offsetOf(ins[0]), heap.offsetOf(ins[1]), heap.offsetOf(outs[0])];
}

function compute(heap: WasmHeap, [a, b, c]: [number, number, number], p: MatmulParams, r: OutputRect, scratch: number, path: Path): void {
  const { batch, M, N, K, transA, transB, aBatchStride, bBatchStride } = p;
  const { m0, m1, n0, n1 } = r;
  const e = exportsFor(heap);
  // A(i, k) = a[i * aRs + k * aCs]; B(k, j) = b[k * bRs + j * bCs]
  const aRs = transA ? 1 : K,
    aCs = transA ? M : 1;
  const bRs = transB ? 1 : N,
    bCs = transB ? K : 1;
  const rows = m1 - m0;
  if (useSmall(p, r, path)) {
    const fn = e[`small_${transB ? 't' : 'n'}${rows}`];
    for (let bi = 0; bi < batch; bi++) {
      e.pack_rows(a + 4 * (bi * aBatchStride + m0 * aRs), aRs, aCs, rows, K, scratch);
      fn(scratch, b + 4 * bi * bBatchStride, c + 4 * (bi * M + m0) * N, K, N, n0, n1);
    }
    return;
  }
  const kc = Math.min(KC, K);
  const aBytes = 4 * roundUp(Math.min(MC, rows), MR) * kc,
    bBytes = 4 * roundUp(Math.min(NC, n1 - n0), NR) * kc;
  e.gemm(
    a,
    b,
    c,
    M,
    N,
    K,
    aRs,
    aCs,
    bRs,
    bCs,
    batch,
    aBatchStride,
    bBatchStride,
    m0,
    m1,
    n0,
    n1,
    scratch,
    scratch + aBytes,
    scratch + aBytes + bBytes,
  );
}

/** The whole product. */
export function wasmMatmul(heap: WasmHeap, ins: Float32Array[], outs: Float32Array[], p: MatmulParams): void {
  wasmMatmulRect(heap, ins, outs, p, { m0: 0, m1: p.M, n0: 0, n1: p.N });
}

/** The rectangle of a thread's part: output columns [r0, r1) when M <= 8, otherwise rows [r0, r1), of every batch. */
export function partRect(p: MatmulParams, r0: number, r1: number): OutputRect {
  return p.M <= SMALL_M ? { m0: 0, m1: p.M, n0: r0, n1: r1 } : { m0: r0, m1: r1, n0: 0, n1: p.N };
}

/** The part one thread computes (partRect), allocating its scratch (tests; the threads use WASM_MATMUL.split). */
export function wasmMatmulPart(heap: WasmHeap, ins: Float32Array[], outs: Float32Array[], p: MatmulParams, r0: number, r1: number): void {
  wasmMatmulRect(heap, ins, outs, p, partRect(p, r0, r1));
}

/**
 * Products of at least this many multiply-adds are split over the worker threads: by rows from
 * 2^22 (at ~48 GFLOP/s about 0.2 ms; measured on 2 busy cores, 64 x 256 x 64 = 2^20 took 45 us on
 * one thread and 77 us split, 256 x 256 x 64 = 2^22 169 and 135 us), by columns for a few rows from
 * 2^20 (reading the weights is the cost there, and two cores read faster: 1 x 1536 x 768 took 189
 * and 169 us, 1 x 3072 x 768 407 and 297 us).
 */
export const WASM_SPLIT_MIN_MACS = 1 << 22;
export const WASM_SPLIT_MIN_MACS_FEW_ROWS = 1 << 20;

const f32s = (xs: TypedArray[]): xs is Float32Array[] => xs.every((x) => x instanceof Float32Array);

/** The WebAssembly matmul for the CPU backend: every float32 call. */
export const WASM_MATMUL: WasmKernel<'matmul'> = {
  accepts: (ins, outs) => f32s(ins) && f32s(outs),
  run: (heap, ins, outs, p) => wasmMatmul(heap, ins as Float32Array[], outs as Float32Array[], p),
  split: {
    range: (p) => {
      const macs = p.batch * p.M * p.N * p.K;
      if (p.M <= SMALL_M) return macs < WASM_SPLIT_MIN_MACS_FEW_ROWS ? null : { n: p.N, align: NR };
      return macs < WASM_SPLIT_MIN_MACS ? null : { n: p.M, align: MR };
    },
    partScratch: (p, r0, r1) => rectScratchBytes(p, partRect(p, r0, r1)),
    part: (heap, ins, outs, p, r0, r1, scratch) =>
      wasmMatmulRectIn(heap, ins as Float32Array[], outs as Float32Array[], p, partRect(p, r0, r1), scratch),
  },
};
