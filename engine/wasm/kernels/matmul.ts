// The float32 batched matmul of engine/kernels.ts in WebAssembly SIMD, on a WasmHeap's shared
// memory: out[b] = op(A[b]) @ op(B[b]), A [M, K] ([K, M] if transA), B [K, N] ([N, K] if transB),
// batch strides 0 = broadcast, out [batch, M, N]. Inputs and output are views of the heap.
//   the blocked, packed kernel with a 4x8 register tile (matmul-blocked.ts);
//   for a few rows (M <= 3 with B [N, K], M <= 6 with B [K, N]: where it measured faster) the
//   few-rows kernel reading B unpacked (matmul-small.ts).
// Every output element is the float32 sum over k in increasing order, acc = acc + a * b from +0,
// whatever the path, the tiling or the part of the output computed: results are bit-identical run
// to run and however the rows or columns are split among threads (wasmMatmulPart, the split the
// CPU backend's threads use: rows [r0, r1) of every batch, or columns when M <= 8).
//
// The module (about 21 KB) is generated and compiled once per process (about 25 ms measured here,
// mostly running the generator for the first time) and instantiated
// once per memory: a worker thread can receive the compiled WebAssembly.Module by postMessage and
// instantiate it on the same shared memory.
import type { KernelParams } from '../../kernels.ts';
import { ModuleBuilder } from '../assembler.ts';
import type { WasmHeap } from '../memory.ts';
import { gemm, KC, MC, MR, NC, NR } from './matmul-blocked.ts';
import { fewRowsFaster, packRows, SMALL_M, small } from './matmul-small.ts';

export { SMALL_M } from './matmul-small.ts';

export type MatmulParams = KernelParams['matmul'];

/** The part of every batch's output to compute: rows [m0, m1) x columns [n0, n1). */
export interface OutputRect {
  m0: number;
  m1: number;
  n0: number;
  n1: number;
}

type Fn = (...args: number[]) => void;
interface Exports {
  gemm: Fn;
  pack_rows: Fn;
  [small: `small_${'t' | 'n'}${number}`]: Fn;
}

/** The module's code: the blocked kernel, the few-rows kernels for M = 1..8, both B layouts. */
export function buildMatmulModule(): ModuleBuilder {
  const m = new ModuleBuilder();
  // initial 0 and the wasm32 maximum: the one compiled module links with any heap's memory
  m.importMemory({ initial: 0, maximum: 65536, shared: true });
  gemm(m);
  m.export('pack_rows', packRows(m));
  for (let M = 1; M <= SMALL_M; M++) for (const t of [true, false]) m.export(`small_${t ? 't' : 'n'}${M}`, small(m, M, t));
  return m;
}

let compiled: WebAssembly.Module | null = null;

/** The compiled module, built on first use (synchronously: Node, workers; see matmulModuleAsync). */
export function matmulModule(): WebAssembly.Module {
  compiled ??= buildMatmulModule().compile();
  return compiled;
}

/** For a browser's main thread, which does not compile big modules synchronously: call once first. */
export async function matmulModuleAsync(): Promise<WebAssembly.Module> {
  compiled ??= await buildMatmulModule().compileAsync();
  return compiled;
}

const instances = new WeakMap<WebAssembly.Memory, Exports>();
function exportsFor(heap: WasmHeap): Exports {
  let e = instances.get(heap.memory);
  if (!e) {
    e = new WebAssembly.Instance(matmulModule(), { env: { memory: heap.memory } }).exports as unknown as Exports;
    instances.set(heap.memory, e);
  }
  return e;
}

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
 * Rows [m0, m1) x columns [n0, n1) of every batch's output. `path` forces a kernel (tests: both
 * give the same bits); by default the faster for the rows asked for.
 */
export function wasmMatmulRect(
  heap: WasmHeap,
  ins: Float32Array[],
  outs: Float32Array[],
  p: MatmulParams,
  r: OutputRect,
  path: 'auto' | 'blocked' | 'small' = 'auto',
): void {
  checkArgs(heap, ins, outs, p, r);
  const { batch, M, N, K, transA, transB, aBatchStride, bBatchStride } = p;
  const { m0, m1, n0, n1 } = r;
  const [a, b] = ins.map((x) => heap.offsetOf(x)),
    c = heap.offsetOf(outs[0]);
  if (m0 === m1 || n0 === n1 || batch === 0) return;
  if (K === 0) {
    // empty sums: zeros (the kernels assume K >= 1)
    for (let bi = 0; bi < batch; bi++) for (let i = m0; i < m1; i++) outs[0].fill(0, (bi * M + i) * N + n0, (bi * M + i) * N + n1);
    return;
  }
  const e = exportsFor(heap);
  // A(i, k) = a[i * aRs + k * aCs]; B(k, j) = b[k * bRs + j * bCs]
  const aRs = transA ? 1 : K,
    aCs = transA ? M : 1;
  const bRs = transB ? 1 : N,
    bCs = transB ? K : 1;
  const rows = m1 - m0;
  const useSmall = path === 'small' || (path === 'auto' && fewRowsFaster(rows, transB));
  if (useSmall) {
    if (rows > SMALL_M) throw new RangeError(`wasm matmul: the few-rows kernel takes at most ${SMALL_M} rows, not ${rows}`);
    const pa = heap.alloc(4 * rows * K);
    try {
      const fn = e[`small_${transB ? 't' : 'n'}${rows}`];
      for (let bi = 0; bi < batch; bi++) {
        e.pack_rows(a + 4 * (bi * aBatchStride + m0 * aRs), aRs, aCs, rows, K, pa);
        fn(pa, b + 4 * bi * bBatchStride, c + 4 * (bi * M + m0) * N, K, N, n0, n1);
      }
    } finally {
      heap.free(pa);
    }
    return;
  }
  const kc = Math.min(KC, K);
  const aBytes = 4 * roundUp(Math.min(MC, rows), MR) * kc,
    bBytes = 4 * roundUp(Math.min(NC, n1 - n0), NR) * kc;
  const scratch = heap.alloc(aBytes + bBytes + 4 * MR * NR);
  try {
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
  } finally {
    heap.free(scratch);
  }
}

/** The whole product. */
export function wasmMatmul(heap: WasmHeap, ins: Float32Array[], outs: Float32Array[], p: MatmulParams): void {
  wasmMatmulRect(heap, ins, outs, p, { m0: 0, m1: p.M, n0: 0, n1: p.N });
}

/**
 * The part one thread computes, as engine/cpu/kernels/matmul.ts splits it: output columns
 * [r0, r1) when M <= 8, otherwise rows [r0, r1), of every batch.
 */
export function wasmMatmulPart(heap: WasmHeap, ins: Float32Array[], outs: Float32Array[], p: MatmulParams, r0: number, r1: number): void {
  const rect = p.M <= SMALL_M ? { m0: 0, m1: p.M, n0: r0, n1: r1 } : { m0: r0, m1: r1, n0: 0, n1: p.N };
  wasmMatmulRect(heap, ins, outs, p, rect);
}
