// The float32 batched matmul of engine/kernels.ts in WebAssembly SIMD, on the CPU backend's heap
// (engine/wasm/memory.ts): out[b] = op(A[b]) @ op(B[b]), A [M, K] ([K, M] if transA), B [K, N]
// ([N, K] if transB), batch strides 0 = broadcast, out [batch, M, N]. Inputs and output are views
// of the heap. The WasmKernel of engine/wasm/kernel.ts, registered beside the scalar kernel in
// engine/cpu/kernels/index.ts:
//   the blocked, packed kernel with a 4x8 register tile (matmul/blocked.ts);
//   for a few rows (M <= 8) against a B the backend keeps packed whole (a weight read token after
//   token: WASM_MATMUL.prepare asks the backend's derived-block cache, engine/cpu/derived.ts, which
//   packs it on its second use), the few-rows kernel streaming the packed strips (matmul/packed.ts);
//   otherwise for a few rows (M <= 3 with B [N, K], M <= 6 with B [K, N]: where it measured faster)
//   the few-rows kernel reading B unpacked (matmul/small.ts).
// Every output element is the float32 sum over k in increasing order, acc = acc + a * b from +0,
// whatever the path, the tiling or the part of the output computed: results are bit-identical run
// to run, packed B or not, and however the rows or columns are split among threads (the split:
// columns [r0, r1) of every batch when M <= 8 or N > M, so that each thread reads and packs only
// its part of B, the larger operand; otherwise rows).
//
// The module (about 21 KB) is generated and compiled once per process (about 25 ms measured here,
// mostly running the generator for the first time) and instantiated once per memory (kernelModule).
import type { TypedArray } from '../../dtype.ts';
import type { KernelParams } from '../../kernels.ts';
import { ModuleBuilder } from '../assembler.ts';
import { kernelModule, type WasmContext, type WasmExports, type WasmKernel } from '../kernel.ts';
import type { WasmHeap } from '../memory.ts';
import { gemm, KC, MC, MR, NC, NR } from './matmul/blocked.ts';
import { PACKED_M, packedBytes, packedFewRows } from './matmul/packed.ts';
import { fewRowsFaster, packRows, SMALL_M, small } from './matmul/small.ts';

export { SMALL_M } from './matmul/small.ts';

export type MatmulParams = KernelParams['matmul'];

/**
 * The parameters the WebAssembly kernel runs with: the call's, plus `packedB`, the byte offset of
 * B packed whole (matmul/packed.ts's layout: the blocked kernel's strips of 8 columns over all of
 * K, one B for every batch) when WASM_MATMUL.prepare found or made it (a derived block of the
 * backend's cache); absent, B is read, or packed per call, where it lies.
 */
export interface WasmMatmulParams extends MatmulParams {
  packedB?: number;
}

/** The part of every batch's output to compute: rows [m0, m1) x columns [n0, n1). */
export interface OutputRect {
  m0: number;
  m1: number;
  n0: number;
  n1: number;
}

/** gemm, pack_b, pack_rows, small_t1..small_t8 (B [N, K]), small_n1..small_n8 (B [K, N]), packed_1..packed_8 */
type Exports = WasmExports;

/** The module's code: the blocked kernel, the few-rows kernels for M = 1..8, on B of either layout and on the packed B. */
export function buildMatmulModule(shared = true): ModuleBuilder {
  const m = new ModuleBuilder();
  // initial 0 and the wasm32 maximum: the one compiled module links with any heap's memory of its kind
  m.importMemory({ initial: 0, maximum: 65536, shared });
  gemm(m);
  m.export('pack_rows', packRows(m));
  for (let M = 1; M <= SMALL_M; M++) for (const t of [true, false]) m.export(`small_${t ? 't' : 'n'}${M}`, small(m, M, t));
  for (let M = 1; M <= PACKED_M; M++) m.export(`packed_${M}`, packedFewRows(m, M));
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

/**
 * Which kernel computes a rectangle: 'auto' (the fastest measured), or one forced (tests: they all
 * give the same bits): 'blocked', 'small' (the few-rows kernel on B where it lies), 'packed' (the
 * few-rows kernel on the packed B).
 */
export type Path = 'auto' | 'blocked' | 'small' | 'packed';

/** Whether the rectangle can read the packed B: there is one, the rows are few, the columns start on a strip. */
const canUsePacked = (p: WasmMatmulParams, r: OutputRect) => !!p.packedB && r.m1 - r.m0 <= PACKED_M && r.n0 % NR === 0;

function kernelFor(p: WasmMatmulParams, r: OutputRect, path: Path): 'blocked' | 'small' | 'packed' {
  const rows = r.m1 - r.m0;
  if (path === 'small' && rows > SMALL_M)
    throw new RangeError(`wasm matmul: the few-rows kernel takes at most ${SMALL_M} rows, not ${rows}`);
  if (path === 'packed' && !canUsePacked(p, r))
    throw new RangeError(
      `wasm matmul: the packed few-rows kernel takes a packed B, at most ${PACKED_M} rows and columns from a multiple of ${NR}`,
    );
  if (path !== 'auto') return path;
  // the packed B, wherever there is one: measured with 768 x 3072 weights (one thread, 300 MB
  // cycled, none in cache), 25, 21, 20, 19, 11, 11, 6, 8 GB/s for M = 1..8 against 11, 10, 8, 8,
  // 6, 6, 6, 6 for the faster of the few-rows and blocked kernels on B where it lies
  if (canUsePacked(p, r)) return 'packed';
  return fewRowsFaster(rows, p.transB) ? 'small' : 'blocked';
}

/** Bytes of scratch the rectangle needs (packed panels, the edge tile; packed rows for the few-rows kernels). */
export function rectScratchBytes(p: WasmMatmulParams, r: OutputRect, path: Path = 'auto'): number {
  const rows = r.m1 - r.m0,
    cols = r.n1 - r.n0;
  if (rows <= 0 || cols <= 0 || p.batch === 0 || p.K === 0) return 0;
  const kernel = kernelFor(p, r, path);
  if (kernel === 'small') return 4 * rows * p.K;
  if (kernel === 'packed') return 4 * rows * p.K + 4 * NR * rows;
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
  p: WasmMatmulParams,
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
  p: WasmMatmulParams,
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

function compute(
  heap: WasmHeap,
  [a, b, c]: [number, number, number],
  p: WasmMatmulParams,
  r: OutputRect,
  scratch: number,
  path: Path,
): void {
  const { batch, M, N, K, transA, transB, aBatchStride, bBatchStride } = p;
  const { m0, m1, n0, n1 } = r;
  const e = exportsFor(heap);
  // A(i, k) = a[i * aRs + k * aCs]; B(k, j) = b[k * bRs + j * bCs]
  const aRs = transA ? 1 : K,
    aCs = transA ? M : 1;
  const bRs = transB ? 1 : N,
    bCs = transB ? K : 1;
  const rows = m1 - m0;
  const kernel = kernelFor(p, r, path);
  if (kernel !== 'blocked') {
    const packed = kernel === 'packed';
    const fn = e[packed ? `packed_${rows}` : `small_${transB ? 't' : 'n'}${rows}`];
    for (let bi = 0; bi < batch; bi++) {
      e.pack_rows(a + 4 * (bi * aBatchStride + m0 * aRs), aRs, aCs, rows, K, scratch);
      const cAt = c + 4 * (bi * M + m0) * N;
      if (packed) fn(scratch, p.packedB!, cAt, K, N, n0, n1, scratch + 4 * rows * K);
      else fn(scratch, b + 4 * bi * bBatchStride, cAt, K, N, n0, n1);
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

/** Bytes of B packed whole (WasmMatmulParams.packedB): strips of 8 columns over all of K. */
export function packedBBytes(p: MatmulParams): number {
  return packedBytes(p.K, p.N);
}

/**
 * Packs batch 0's B (at byte offset `b`) whole into `dst` (packedBBytes bytes): the layout of
 * WasmMatmulParams.packedB. One pass over B (transposing 4 x 4 blocks in registers for B [N, K]).
 */
export function packMatmulB(heap: WasmHeap, b: number, p: MatmulParams, dst: number): void {
  if (p.K === 0 || p.N === 0) return;
  exportsFor(heap).pack_b(b, p.transB ? 1 : p.N, p.transB ? p.K : 1, p.N, p.K, dst);
}

/** The whole product. */
export function wasmMatmul(heap: WasmHeap, ins: Float32Array[], outs: Float32Array[], p: WasmMatmulParams, path: Path = 'auto'): void {
  wasmMatmulRect(heap, ins, outs, p, { m0: 0, m1: p.M, n0: 0, n1: p.N }, path);
}

/**
 * Whether the threads split the output's columns (rather than its rows): for a few rows, and
 * whenever there are more columns than rows, so that each thread reads (and, unpacked, packs)
 * only its own part of B, which is then the larger operand.
 */
export function splitsColumns(p: MatmulParams): boolean {
  return p.M <= SMALL_M || p.N > p.M;
}

/** The rectangle of a thread's part: output columns [r0, r1) when splitsColumns, otherwise rows [r0, r1), of every batch. */
export function partRect(p: MatmulParams, r0: number, r1: number): OutputRect {
  return splitsColumns(p) ? { m0: 0, m1: p.M, n0: r0, n1: r1 } : { m0: r0, m1: r1, n0: 0, n1: p.N };
}

/** The part one thread computes (partRect), allocating its scratch (tests; the threads use WASM_MATMUL.split). */
export function wasmMatmulPart(
  heap: WasmHeap,
  ins: Float32Array[],
  outs: Float32Array[],
  p: WasmMatmulParams,
  r0: number,
  r1: number,
): void {
  wasmMatmulRect(heap, ins, outs, p, partRect(p, r0, r1));
}

/**
 * Products of at least this many multiply-adds are split over the worker threads: more than 8
 * rows from 2^22 (by rows or columns: splitsColumns; at ~48 GFLOP/s about 0.2 ms; measured on 2
 * busy cores, 64 x 256 x 64 = 2^20 took 45 us on one thread and 77 us split, 256 x 256 x 64 = 2^22
 * 169 and 135 us), a few rows (by columns) from 2^20 (reading the weights is the cost there, and
 * two cores read faster: 1 x 1536 x 768 took 189 and 169 us, 1 x 3072 x 768 407 and 297 us).
 */
export const WASM_SPLIT_MIN_MACS = 1 << 22;
export const WASM_SPLIT_MIN_MACS_FEW_ROWS = 1 << 20;

const f32s = (xs: TypedArray[]): xs is Float32Array[] => xs.every((x) => x instanceof Float32Array);

/** The key of the packed B among an input buffer's derived blocks: what the layout depends on besides B's data. */
export const packedBKey = (p: MatmulParams) => `matmul B packed, ${p.transB ? '[N, K]' : '[K, N]'}, K ${p.K}, N ${p.N}`;

/**
 * WASM_MATMUL.prepare: B packed whole, from the backend's derived-block cache (built there, on
 * the calling thread, by one pass over B), when B is one matrix for every batch; the call's
 * parameters with its offset added, or unchanged when the cache has none for it.
 */
function preparePacked(heap: WasmHeap, ins: TypedArray[], p: MatmulParams, ctx: WasmContext): MatmulParams {
  // more rows: the blocked kernel, which packs B itself at little cost beside the product (measured
  // with M = 128: the same GFLOP/s on B packed whole as packing per call)
  if (p.M > PACKED_M || p.batch === 0 || p.M === 0 || p.N === 0 || p.K === 0 || (p.batch > 1 && p.bBatchStride !== 0)) return p;
  const b = heap.offsetOf(ins[1]);
  const packedB = ctx.derived(1, packedBKey(p), packedBBytes(p), (dst) => packMatmulB(heap, b, p, dst));
  if (!packedB) return p;
  const q: WasmMatmulParams = { ...p, packedB };
  return q;
}

/** The WebAssembly matmul for the CPU backend: every float32 call. */
export const WASM_MATMUL: WasmKernel<'matmul'> = {
  accepts: (ins, outs) => f32s(ins) && f32s(outs),
  prepare: (heap, ins, _outs, p, ctx) => preparePacked(heap, ins, p, ctx),
  run: (heap, ins, outs, p) => wasmMatmul(heap, ins as Float32Array[], outs as Float32Array[], p),
  split: {
    range: (p) => {
      const macs = p.batch * p.M * p.N * p.K;
      if (macs < (p.M <= SMALL_M ? WASM_SPLIT_MIN_MACS_FEW_ROWS : WASM_SPLIT_MIN_MACS)) return null;
      // parts per thread: 4 for a few rows (streaming the weights: nothing is packed twice), else
      // 2 (each part packs its own panels of the other operand)
      return splitsColumns(p) ? { n: p.N, align: NR, parts: p.M <= SMALL_M ? 4 : 2 } : { n: p.M, align: MR, parts: 2 };
    },
    partScratch: (p, r0, r1) => rectScratchBytes(p, partRect(p, r0, r1)),
    part: (heap, ins, outs, p, r0, r1, scratch) =>
      wasmMatmulRectIn(heap, ins as Float32Array[], outs as Float32Array[], p, partRect(p, r0, r1), scratch),
  },
};
