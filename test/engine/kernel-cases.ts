// The one table of kernel parity cases, and the runner that compares a candidate backend with a
// reference backend on them. Every kernel of engine/kernels.ts has cases: KERNEL_CASES is a mapped
// type over KernelName, so a kernel added without cases fails typecheck. Cases are grouped by the
// op file whose kernels they exercise (engine/{ops,cpu/kernels,wgsl/kernels}/X.ts).
//
// Who runs it:
//   test/engine/cpu/kernels.test.ts     the float32 CPU kernels vs the float64 reference (./kernel-reference.ts)
//   test/engine/wgsl/kernels.test.ts    WebGPU in Node vs the CPU backend
//   test/engine/wasm/kernels.test.ts    the CPU backend's WebAssembly kernels vs its scalar TypeScript ones
//   test/browser/page.ts                in headless Chromium, both: the page's WebAssembly CPU kernels
//                                       vs its scalar ones, and WebGPU vs the CPU backend but for the
//                                       cases marked heavy (reported to test/browser/kernels.test.ts)
//   test/engine/wgsl/storage-limit.test.ts  the WGSL plans of every case; the fused kernels' cases on
//                                       a device limited to 8 storage buffers
//
// Each case draws its inputs from its own seeded generator (named after the kernel and the case),
// at awkward sizes (1, 7, 33, 1025, and more than 65535 workgroups where it matters); outputs start
// poisoned (NaN, or a sentinel for int32) on both sides, so an element a kernel fails to write is a
// mismatch. Inputs that must be another kernel's output (softmax_bwd's y, rmsnorm_bwd's rstd) are
// computed on the reference and rounded to float32.
//
// Checks, per output (a case gives one for all its outputs, or one per output):
//   rel(scale)     |got - want| <= 1e-5 (|want| + scale): relative, with `scale` the op's natural size
//                  of rounding error where it is more than 1 (the sqrt of the number of terms a sum
//                  adds, the exponent's size for pow, 2K/pi for a length-K dot product).
//   relToMax(tol)  |got - want| <= tol (|want| + 1e-2 max|want|): relative, with a floor of 1% of the
//                  tensor's largest magnitude, so an element that cancels to near zero is judged
//                  against the scale of its tensor; tol = 1e-5 unless the case says why it is looser.
//   EXACT          every element identical (Object.is).
// Both kinds of relative check are kept: the fused kernels (softmax to scan) have cases of each,
// with different inputs, as the two suites that were merged here had them (the rel(scale) ones are
// named "..., scaled").
//
// Browser-safe: no node: imports, no test runner.
import type { TypedArray } from '../../engine/dtype.ts';
import { BINARY, UNARY, type BinaryOp, type UnaryOp } from '../../engine/elementwise.ts';
import type { InfluenceParams, KernelName, KernelParams, SaeKernelParams, ScanParams } from '../../engine/kernels.ts';
import { Rng } from '../../engine/random.ts';
import { broadcastStrides } from '../../engine/shape.ts';
import {
  f32,
  i32,
  runKernel,
  unaryCase,
  worstRelativeError,
  worstRelativeToMax,
  type KernelBackend,
  type OutSpec,
} from '../helpers/kernel-run.ts';

export const TOLERANCE = 1e-5;

export type Check = { kind: 'rel'; scale: number | ((i: number) => number) } | { kind: 'relToMax'; tol: number } | { kind: 'exact' };
const rel = (scale: number | ((i: number) => number) = 1): Check => ({ kind: 'rel', scale });
const relToMax = (tol = TOLERANCE): Check => ({ kind: 'relToMax', tol });
const EXACT: Check = { kind: 'exact' };

/** Seeded inputs for one case. */
export class Gen {
  private readonly rng: Rng;
  constructor(seed: string) {
    this.rng = new Rng(seed);
  }
  /** n standard normal draws, each passed through f */
  randn(n: number, f: (x: number) => number = (x) => x): Float32Array {
    const a = new Float32Array(n);
    for (let i = 0; i < n; i++) a[i] = f(this.rng.normal());
    return a;
  }
  /** n draws uniform in [lo, hi) */
  uniform(n: number, lo: number, hi: number): Float32Array {
    const a = new Float32Array(n);
    for (let i = 0; i < n; i++) a[i] = lo + (hi - lo) * this.rng.uniform();
    return a;
  }
  /** n integers in [lo, hi) */
  randi(n: number, lo: number, hi: number): Int32Array {
    const a = new Int32Array(n);
    for (let i = 0; i < n; i++) a[i] = this.rng.int(lo, hi);
    return a;
  }
  int(lo: number, hi: number): number {
    return this.rng.int(lo, hi);
  }
}

/** Runs a kernel on the reference backend (for inputs that are another kernel's output); float outputs come back as float32. */
export type RefRun = <K extends KernelName>(
  kernel: K,
  inputs: TypedArray[],
  outs: OutSpec[],
  params: KernelParams[K],
) => Promise<TypedArray[]>;

/** One case as run: inputs, outputs (with what they hold before the run, if not poison), params. */
export interface Built<K extends KernelName> {
  inputs: TypedArray[];
  outs: OutSpec[];
  params: KernelParams[K];
  /** one check for every output, or one per output; default rel(1) */
  check?: Check | Check[];
  /** a further condition on the candidate's outputs: the message when it fails, else null */
  also?: (got: TypedArray[]) => string | null;
}

export interface KernelCase<K extends KernelName> {
  kernel: K;
  /** unique within the kernel */
  name: string;
  build(g: Gen, ref: RefRun): Built<K> | Promise<Built<K>>;
  /**
   * minutes rather than seconds on a software adapter inside Chromium (SwiftShader), and about a
   * grid or size limit that the Node WebGPU suite checks: the browser's WebGPU pass leaves it out
   */
  heavy?: boolean;
}

type Cases<Ks extends KernelName> = { [K in Ks]: KernelCase<K>[] };

function kc<K extends KernelName>(kernel: K, name: string, build: KernelCase<K>['build'], heavy = false): KernelCase<K> {
  return heavy ? { kernel, name, build, heavy } : { kernel, name, build };
}

const SIZES = [1, 7, 33, 1025];
const prod = (s: readonly number[]) => s.reduce((p, d) => p * d, 1);

// ---- elementwise: fill, unary, binary, where, cast ------------------------------------------------
/** more than 65535 workgroups of 256, so the dispatch grid folds into 2-D: about the grid, not the maths */
const BIG = 65535 * 256 + 7;
function bigInput(): Float32Array {
  const x = new Float32Array(BIG);
  for (let i = 0; i < BIG; i++) x[i] = ((i * 7919) % 2003) - 1001;
  return x;
}
const TIEABLE: BinaryOp[] = ['gt', 'ge', 'lt', 'le', 'eq', 'ne', 'maximum', 'minimum'];
const INT_BINARY: BinaryOp[] = ['add', 'sub', 'mul', 'maximum', 'minimum', 'gt', 'ge', 'lt', 'le', 'eq', 'ne'];
const BINARY_SHAPES: [number[], number[]][] = [
  [[1], [1]],
  [[7], [7]],
  [
    [33, 7],
    [1, 7],
  ],
  [
    [7, 1, 33],
    [1, 5, 1],
  ],
  [[1025], [1]],
];

const elementwise: Cases<'fill' | 'unary' | 'binary' | 'where' | 'cast'> = {
  fill: SIZES.flatMap((n) => [
    kc('fill', `fill f32 ${n}`, () => ({ inputs: [], outs: [f32(n)], params: { size: n, value: -2.5 } })),
    kc('fill', `fill i32 ${n}`, () => ({ inputs: [], outs: [i32(n)], params: { size: n, value: 42 } })),
  ]),
  unary: [
    // every op of the shared table, in its domain (unaryCase), every size
    ...(Object.keys(UNARY) as UnaryOp[]).flatMap((op) =>
      SIZES.map((n) =>
        kc('unary', `unary ${op} ${n}`, (g) => {
          const u = unaryCase(op);
          return { inputs: [g.randn(n, u.x)], outs: [f32(n)], params: { op, size: n, alpha: u.alpha, beta: u.beta }, check: rel(u.scale) };
        }),
      ),
    ),
    ...(['neg', 'abs', 'sign', 'square'] as UnaryOp[]).map((op) =>
      kc('unary', `unary ${op} int32`, (g) => ({
        inputs: [g.randi(33, -50, 50)],
        outs: [i32(33)],
        params: { op, size: 33, alpha: 0, beta: 0 },
      })),
    ),
    kc('unary', 'unary affine big (more than 65535 workgroups)', () => ({
      inputs: [bigInput()],
      outs: [f32(BIG)],
      params: { op: 'affine', size: BIG, alpha: 0.5, beta: 3 },
    })),
  ],
  binary: [
    ...(Object.keys(BINARY) as BinaryOp[]).flatMap((op) =>
      BINARY_SHAPES.flatMap(([aShape, bShape]) => {
        const shape = aShape.map((d, i) => Math.max(d, bShape[i]));
        const [na, nb, n] = [prod(aShape), prod(bShape), prod(shape)];
        const p = { op, shape, aStrides: broadcastStrides(aShape, shape), bStrides: broadcastStrides(bShape, shape) };
        const cases = [
          kc('binary', `binary ${op} ${aShape}x${bShape}`, (g) => {
            // pow needs a positive base, div a divisor away from 0; comparisons need ties, so draw from a few integers
            const tieable = TIEABLE.includes(op);
            const fa = op === 'pow' ? g.randn(na, (v) => Math.abs(v) + 0.1) : tieable ? g.randn(na, (v) => Math.round(v * 2)) : g.randn(na);
            const fb =
              op === 'div'
                ? g.randn(nb, (v) => Math.sign(v || 1) * (Math.abs(v) + 0.1))
                : tieable
                  ? g.randn(nb, (v) => Math.round(v * 2))
                  : g.randn(nb);
            return { inputs: [fa, fb], outs: [f32(n)], params: p, check: rel(op === 'pow' ? 10 : 1) };
          }),
        ];
        if (INT_BINARY.includes(op)) {
          cases.push(
            kc('binary', `binary ${op} int32 ${aShape}x${bShape}`, (g) => ({
              inputs: [g.randi(na, -5, 5), g.randi(nb, -5, 5)],
              outs: [i32(n)],
              params: p,
            })),
          );
        }
        return cases;
      }),
    ),
    kc('binary', 'binary add big, b broadcast (more than 65535 workgroups)', () => ({
      inputs: [bigInput(), new Float32Array([0.25])],
      outs: [f32(BIG)],
      params: { op: 'add', shape: [BIG], aStrides: [1], bStrides: [0] },
    })),
  ],
  // a [33] condition broadcast over [7, 33], b broadcast from [7, 1]; as float and as int32
  where: (['f32', 'i32'] as const).map((kind) =>
    kc('where', `where ${kind} cond`, (g) => {
      const shape = [7, 33];
      const cond = g.randn(33, (v) => (v > 0 ? 1 : 0));
      return {
        inputs: [kind === 'f32' ? cond : Int32Array.from(cond), g.randn(231), g.randn(7)],
        outs: [f32(231)],
        params: {
          shape,
          cStrides: broadcastStrides([33], shape),
          aStrides: broadcastStrides(shape, shape),
          bStrides: broadcastStrides([7, 1], shape),
        },
      };
    }),
  ),
  // float32 -> int32 truncates toward zero; int32 -> float32
  cast: SIZES.flatMap((n) => [
    kc('cast', `cast f2i ${n}`, (g) => ({ inputs: [g.randn(n, (v) => v * 100)], outs: [i32(n)], params: { size: n } })),
    kc('cast', `cast i2f ${n}`, (g) => ({ inputs: [g.randi(n, -1000, 1000)], outs: [f32(n)], params: { size: n } })),
  ]),
};

// ---- shape: the strided copy behind permute, slice, expand and concat ------------------------------
const expand = (rows: number) =>
  kc('copy', `copy expand [1,33] -> [${rows},33]`, (g) => ({
    inputs: [g.randn(33)],
    outs: [f32(rows * 33)],
    params: { shape: [rows, 33], inStrides: [0, 1], inOffset: 0, outStrides: [33, 1], outOffset: 0 },
  }));
const shape: Cases<'copy'> = {
  copy: [
    kc('copy', 'copy permute [7,33,5] -> [5,7,33]', (g) => ({
      inputs: [g.randn(7 * 33 * 5)],
      outs: [f32(7 * 33 * 5)],
      params: { shape: [5, 7, 33], inStrides: [1, 165, 5], inOffset: 0, outStrides: [231, 33, 1], outOffset: 0 },
    })),
    kc('copy', 'copy slice rows 2..6 of [7,33]', (g) => ({
      inputs: [g.randn(231)],
      outs: [f32(4 * 33)],
      params: { shape: [4, 33], inStrides: [33, 1], inOffset: 66, outStrides: [33, 1], outOffset: 0 },
    })),
    expand(130),
    expand(1025),
    kc('copy', 'copy int32 permute [7,33] -> [33,7]', (g) => ({
      inputs: [g.randi(231, -9, 9)],
      outs: [i32(231)],
      params: { shape: [33, 7], inStrides: [1, 33], inOffset: 0, outStrides: [7, 1], outOffset: 0 },
    })),
    // concat: [7, 5] into columns 3..8 of a [7, 12] output whose other elements must stay as they are
    kc('copy', 'copy into a region (concat)', (g) => {
      const init = g.randn(84);
      return {
        inputs: [g.randn(35)],
        outs: [{ dtype: 'float32', size: 84, init }],
        params: { shape: [7, 5], inStrides: [5, 1], inOffset: 0, outStrides: [12, 1], outOffset: 3 },
        also: (got) =>
          Object.is(got[0][0], init[0]) ? null : `elements outside the region are untouched: got ${got[0][0]}, was ${init[0]}`,
      };
    }),
  ],
};

// ---- indexing: gather, scatter_add (repeated indices), onehot (out-of-range gives a zero row) ------
const INDEX_SHAPES = [
  [1, 1, 1],
  [7, 5, 33],
  [1025, 33, 7],
  [33, 1025, 1],
];
const indexing: Cases<'gather' | 'scatter_add' | 'onehot'> = {
  gather: INDEX_SHAPES.map(([n, rows, cols]) =>
    kc('gather', `gather ${n}x${rows}x${cols}`, (g) => ({
      inputs: [g.randn(rows * cols), g.randi(n, 0, rows)],
      outs: [f32(n * cols)],
      params: { n, rows, cols },
    })),
  ),
  scatter_add: INDEX_SHAPES.map(([n, rows, cols]) =>
    kc('scatter_add', `scatter_add ${n}x${rows}x${cols}`, (g) => ({
      inputs: [g.randn(n * cols), g.randi(n, 0, rows)],
      outs: [f32(rows * cols)],
      params: { n, rows, cols },
      check: rel(Math.sqrt(n / rows)),
    })),
  ),
  onehot: INDEX_SHAPES.map(([n, rows]) =>
    kc('onehot', `onehot ${n}x${rows}`, (g) => ({ inputs: [g.randi(n, -1, rows + 1)], outs: [f32(n * rows)], params: { n, depth: rows } })),
  ),
};

// ---- matmul: transposes, batch broadcast, sizes 1 to 1025 ---------------------------------------------
// and each kernel of engine/wgsl/kernels/matmul.ts at its edges: skinny (M or N <= 8, along a long
// side), tiles of 64 and 128 cut by the edges with vec4 loads (sizes multiples of 4) and scalar ones,
// split-K (few tiles, long K), and grids of more than 65535 workgroups.
const MATMUL_SHAPES: [number, number, number, number][] = [
  [1, 1, 1, 1],
  [1, 7, 33, 1],
  [2, 33, 7, 5],
  [1, 65, 130, 17],
  [1, 7, 5, 1025],
  [3, 64, 64, 64],
  [1, 129, 130, 131],
  [2, 132, 136, 260],
  [1, 4096, 4, 33],
  [1, 3, 1030, 64],
  [1, 64, 72, 2048],
  [1, 33, 40, 2500],
];
/** 128x128 tiles over a large output with a short K, cut by the edges (heavy: Node's WebGPU suite only). */
const MATMUL_LARGE: [number, number, number, number][] = [
  [1, 2048, 2052, 8],
  [1, 2047, 2050, 5],
];
/** Grids past 65535 workgroups (folded into two dimensions), one transpose case each: slow on software adapters (heavy). */
const MATMUL_WIDE: [number, number, number, number, boolean, boolean][] = [
  [70000, 2, 3, 2, false, true],
  [70000, 2, 3, 2, false, false],
  [66000, 9, 9, 2, true, false],
];
const matmulCase = (batch: number, M: number, N: number, K: number, transA: boolean, transB: boolean, bcast: boolean, heavy = false) =>
  kc(
    'matmul',
    `matmul b${batch} ${M}x${N}x${K} ${transA ? 'T' : 'N'}${transB ? 'T' : 'N'}${bcast ? ' bcast' : ''}`,
    (g) => ({
      inputs: [g.randn(batch * M * K), g.randn((bcast ? 1 : batch) * K * N)],
      outs: [f32(batch * M * N)],
      params: { batch, M, N, K, transA, transB, aBatchStride: M * K, bBatchStride: bcast ? 0 : K * N },
      // rounding error of a dot product of length K is bounded by K * eps * sum |a_k b_k|;
      // sum |a_k b_k| is about K * E|a||b| = 2K/pi for normal inputs
      check: rel(Math.max(1, (2 * K) / Math.PI)),
    }),
    heavy,
  );
const matmul: Cases<'matmul'> = {
  matmul: [
    ...MATMUL_SHAPES.flatMap(([batch, M, N, K]) =>
      [false, true].flatMap((transA) =>
        [false, true].flatMap((transB) =>
          (batch > 1 ? [false, true] : [false]).map((bcast) => matmulCase(batch, M, N, K, transA, transB, bcast)),
        ),
      ),
    ),
    ...MATMUL_LARGE.flatMap(([batch, M, N, K]) =>
      [false, true].flatMap((transA) => [false, true].map((transB) => matmulCase(batch, M, N, K, transA, transB, false, true))),
    ),
    ...MATMUL_WIDE.map(([batch, M, N, K, transA, transB]) => matmulCase(batch, M, N, K, transA, transB, false, true)),
  ],
};

// ---- reduce: reduce and argmax over [outer, len, inner] ------------------------------------------------
const REDUCE_SHAPES = [
  [1, 1, 1],
  [1, 1025, 1],
  [7, 33, 1],
  [3, 33, 7],
  [3, 1025, 7],
  [2, 7, 33],
  [1, 33, 1025],
  [5, 1, 7],
];
// argmax: the reduce shapes but the last two (a 1025-wide inner axis, a length-1 reduction)
const ARGMAX_SHAPES = REDUCE_SHAPES.slice(0, 6);
const reduce: Cases<'reduce' | 'argmax'> = {
  reduce: [
    ...REDUCE_SHAPES.flatMap(([outer, len, inner]) =>
      (['sum', 'max', 'min'] as const).map((op) =>
        kc('reduce', `reduce ${op} [${outer},${len},${inner}]`, (g) => ({
          inputs: [g.randn(outer * len * inner)],
          outs: [f32(outer * inner)],
          params: { op, outer, len, inner },
          // a float32 sum's rounding grows with the sum of |x|: scale by it (sqrt(len) is its typical size)
          check: rel(op === 'sum' ? Math.sqrt(len) : 1),
        })),
      ),
    ),
    ...(['sum', 'max'] as const).map((op) =>
      kc('reduce', `reduce ${op} int32`, (g) => ({
        inputs: [g.randi(3 * 33 * 7, -100, 100)],
        outs: [i32(21)],
        params: { op, outer: 3, len: 33, inner: 7 },
      })),
    ),
  ],
  argmax: [
    // few distinct values: many ties, which must resolve to the lowest index
    ...ARGMAX_SHAPES.map(([outer, len, inner]) =>
      kc('argmax', `argmax [${outer},${len},${inner}]`, (g) => ({
        inputs: [g.randn(outer * len * inner, (v) => Math.round(v * 2))],
        outs: [i32(outer * inner)],
        params: { outer, len, inner },
      })),
    ),
    kc('argmax', 'argmax of -Infinity and NaN only', () => ({
      inputs: [new Float32Array([-Infinity, -Infinity, NaN, -Infinity])],
      outs: [i32(1)],
      params: { outer: 1, len: 4, inner: 1 },
    })),
  ],
};

// ---- softmax: softmax, softmax_bwd, cross_entropy, cross_entropy_bwd --------------------------------
/** [rows, cols] of the row-wise fused kernels (the relToMax cases) */
const ROW_SHAPES = [
  [1, 1],
  [7, 33],
  [3, 1025],
  [33, 7],
  [1025, 7],
];
/** [rows, cols] of the rel(scale) cases */
const ROW_SHAPES_SCALED = [
  [1, 1],
  [7, 33],
  [3, 1025],
];
const softmaxOf = async (ref: RefRun, x: Float32Array, rows: number, cols: number, log: boolean) =>
  (await ref('softmax', [x], [f32(rows * cols)], { rows, cols, log }))[0];

const softmax: Cases<'softmax' | 'softmax_bwd' | 'cross_entropy' | 'cross_entropy_bwd'> = {
  softmax: [
    ...ROW_SHAPES.flatMap(([rows, cols]) =>
      [false, true].map((log) =>
        kc('softmax', `softmax ${rows}x${cols} log=${log}`, (g) => ({
          inputs: [g.randn(rows * cols, (v) => 3 * v)],
          outs: [f32(rows * cols)],
          params: { rows, cols, log },
          check: relToMax(),
        })),
      ),
    ),
    ...ROW_SHAPES_SCALED.flatMap(([rows, cols]) =>
      [false, true].map((log) =>
        kc('softmax', `softmax${log ? ' log' : ''} ${rows}x${cols}, scaled`, (g) => ({
          inputs: [g.randn(rows * cols, (v) => 3 * v)],
          outs: [f32(rows * cols)],
          params: { rows, cols, log },
        })),
      ),
    ),
  ],
  softmax_bwd: [
    ...ROW_SHAPES.flatMap(([rows, cols]) =>
      [false, true].map((log) =>
        kc('softmax_bwd', `softmax_bwd ${rows}x${cols} log=${log}`, async (g, ref) => {
          const y = await softmaxOf(
            ref,
            g.randn(rows * cols, (v) => 3 * v),
            rows,
            cols,
            log,
          );
          return {
            inputs: [y, g.randn(rows * cols)],
            outs: [f32(rows * cols)],
            params: { rows, cols, log },
            // dx = y (dy - sum(dy y)) subtracts two numbers of the size of dy: an element where they nearly
            // cancel keeps only float32's absolute accuracy (~1e-7 |dy|), so 1e-4 relative here
            check: relToMax(1e-4),
          };
        }),
      ),
    ),
    ...ROW_SHAPES_SCALED.flatMap(([rows, cols]) =>
      [false, true].map((log) =>
        kc('softmax_bwd', `softmax_bwd${log ? ' log' : ''} ${rows}x${cols}, scaled`, async (g, ref) => {
          const y = await softmaxOf(
            ref,
            g.randn(rows * cols, (v) => 3 * v),
            rows,
            cols,
            log,
          );
          return { inputs: [y, g.randn(rows * cols)], outs: [f32(rows * cols)], params: { rows, cols, log }, check: rel(Math.sqrt(cols)) };
        }),
      ),
    ),
  ],
  cross_entropy: [
    ...ROW_SHAPES.map(([rows, cols]) =>
      kc('cross_entropy', `cross_entropy ${rows}x${cols}`, (g) => ({
        inputs: [g.randn(rows * cols, (v) => 3 * v), Int32Array.from({ length: rows }, (_, r) => (r % 4 === 1 ? -100 : g.int(0, cols)))],
        outs: [f32(rows)],
        params: { rows, cols, ignoreIndex: -100 },
        check: relToMax(),
      })),
    ),
    ...ROW_SHAPES_SCALED.map(([rows, cols]) =>
      kc('cross_entropy', `cross_entropy ${rows}x${cols}, scaled`, (g) => {
        // some targets ignored, the rest in range
        const targets = g.randi(rows, 0, cols);
        if (rows > 1) targets[1] = -100;
        return {
          inputs: [g.randn(rows * cols, (v) => 3 * v), targets],
          outs: [f32(rows)],
          params: { rows, cols, ignoreIndex: -100 },
          check: rel(Math.log(cols) + 1),
        };
      }),
    ),
  ],
  cross_entropy_bwd: [
    ...ROW_SHAPES.map(([rows, cols]) =>
      kc('cross_entropy_bwd', `cross_entropy_bwd ${rows}x${cols}`, (g) => ({
        inputs: [
          g.randn(rows * cols, (v) => 3 * v),
          Int32Array.from({ length: rows }, (_, r) => (r % 4 === 1 ? -100 : g.int(0, cols))),
          g.randn(rows),
        ],
        outs: [f32(rows * cols)],
        params: { rows, cols, ignoreIndex: -100 },
        // at the target dx = (p - 1) g: when p is near 1 the difference keeps float32's absolute
        // accuracy of p (~1e-7), not its relative one, so 1e-4 relative here
        check: relToMax(1e-4),
      })),
    ),
    ...ROW_SHAPES_SCALED.map(([rows, cols]) =>
      kc('cross_entropy_bwd', `cross_entropy_bwd ${rows}x${cols}, scaled`, (g) => {
        const targets = g.randi(rows, 0, cols);
        if (rows > 1) targets[1] = -100;
        return {
          inputs: [g.randn(rows * cols, (v) => 3 * v), targets, g.randn(rows)],
          outs: [f32(rows * cols)],
          params: { rows, cols, ignoreIndex: -100 },
        };
      }),
    ),
  ],
};

// ---- rmsnorm: rmsnorm and its backward (dw summed over rows in two passes on WebGPU) ----------------
const rstdOf = async (ref: RefRun, x: Float32Array, w: Float32Array, rows: number, cols: number) =>
  (await ref('rmsnorm', [x, w], [f32(rows * cols), f32(rows)], { rows, cols, eps: 1e-5 }))[1];

const rmsnorm: Cases<'rmsnorm' | 'rmsnorm_bwd'> = {
  rmsnorm: [
    ...ROW_SHAPES.map(([rows, cols]) =>
      kc('rmsnorm', `rmsnorm ${rows}x${cols}`, (g) => ({
        inputs: [g.randn(rows * cols), g.randn(cols)],
        outs: [f32(rows * cols), f32(rows)],
        params: { rows, cols, eps: 1e-5 },
        check: relToMax(),
      })),
    ),
    ...ROW_SHAPES_SCALED.map(([rows, cols]) =>
      kc('rmsnorm', `rmsnorm ${rows}x${cols}, scaled`, (g) => ({
        inputs: [g.randn(rows * cols), g.randn(cols)],
        outs: [f32(rows * cols), f32(rows)],
        params: { rows, cols, eps: 1e-5 },
      })),
    ),
  ],
  rmsnorm_bwd: [
    ...ROW_SHAPES.map(([rows, cols]) =>
      kc('rmsnorm_bwd', `rmsnorm_bwd ${rows}x${cols}`, async (g, ref) => {
        const x = g.randn(rows * cols),
          w = g.randn(cols);
        const dy = g.randn(rows * cols);
        return {
          inputs: [x, w, await rstdOf(ref, x, w, rows, cols), dy],
          outs: [f32(rows * cols), f32(cols)],
          params: { rows, cols },
          // With one column dx = r w dy - x c is a difference of two nearly equal terms (exactly
          // w dy eps / (x^2 + eps)^1.5): float32 keeps about 1e-7 of the terms, 1e-3 of the result.
          check: relToMax(cols === 1 ? 1e-2 : TOLERANCE),
        };
      }),
    ),
    ...ROW_SHAPES_SCALED.map(([rows, cols]) =>
      kc('rmsnorm_bwd', `rmsnorm_bwd ${rows}x${cols}, scaled`, async (g, ref) => {
        const x = g.randn(rows * cols),
          w = g.randn(cols);
        return {
          inputs: [x, w, await rstdOf(ref, x, w, rows, cols), g.randn(rows * cols)],
          outs: [f32(rows * cols), f32(cols)],
          params: { rows, cols },
          check: [rel(Math.sqrt(cols)), rel(Math.sqrt(rows))],
        };
      }),
    ),
  ],
};

// ---- conv1d: causal depthwise conv and its backward (dw, dbias reduced over batch*T without atomics) --
/** [batch, T, C, K, hasBias], checked relative to the largest value; forward and backward alike. */
const CONV_SHAPES = [
  [1, 1, 1, 4, true],
  [2, 7, 33, 4, false],
  [3, 33, 7, 3, true],
  [2, 1025, 5, 4, true],
] as const;
/** [batch, T, C, K], each with and without bias, with the scaled check. */
const CONV_SCALED_SHAPES = [
  [1, 1, 3, 4],
  [2, 33, 7, 4],
  [1, 130, 16, 3],
];
const conv1d: Cases<'conv1d' | 'conv1d_bwd'> = {
  conv1d: [
    ...CONV_SHAPES.map(([batch, T, C, K, hasBias]) =>
      kc('conv1d', `conv1d ${batch}x${T}x${C} K=${K} bias=${hasBias}`, (g) => {
        const x = g.randn(batch * T * C),
          w = g.randn(C * K);
        return {
          inputs: hasBias ? [x, w, g.randn(C)] : [x, w],
          outs: [f32(x.length)],
          params: { batch, T, C, K, hasBias },
          check: relToMax(),
        };
      }),
    ),
    ...CONV_SCALED_SHAPES.flatMap(([batch, T, C, K]) =>
      [true, false].map((hasBias) =>
        kc('conv1d', `conv1d b${batch} T${T} C${C} K${K}${hasBias ? ' bias' : ''}, scaled`, (g) => {
          const x = g.randn(batch * T * C),
            w = g.randn(C * K);
          return {
            inputs: hasBias ? [x, w, g.randn(C)] : [x, w],
            outs: [f32(batch * T * C)],
            params: { batch, T, C, K, hasBias },
            check: rel(Math.sqrt(K)),
          };
        }),
      ),
    ),
  ],
  conv1d_bwd: [
    ...CONV_SHAPES.map(([batch, T, C, K, hasBias]) =>
      kc('conv1d_bwd', `conv1d_bwd ${batch}x${T}x${C} K=${K} bias=${hasBias}`, (g) => {
        const outs = [f32(batch * T * C), f32(C * K)];
        if (hasBias) outs.push(f32(C));
        return {
          inputs: [g.randn(batch * T * C), g.randn(C * K), g.randn(batch * T * C)],
          outs,
          params: { batch, T, C, K, hasBias },
          check: relToMax(),
        };
      }),
    ),
    ...CONV_SCALED_SHAPES.flatMap(([batch, T, C, K]) =>
      [true, false].map((hasBias) =>
        kc('conv1d_bwd', `conv1d_bwd b${batch} T${T} C${C} K${K}${hasBias ? ' bias' : ''}, scaled`, (g) => ({
          inputs: [g.randn(batch * T * C), g.randn(C * K), g.randn(batch * T * C)],
          outs: hasBias ? [f32(batch * T * C), f32(C * K), f32(C)] : [f32(batch * T * C), f32(C * K)],
          params: { batch, T, C, K, hasBias },
          check: [rel(Math.sqrt(K)), rel(Math.sqrt(batch * T)), rel(Math.sqrt(batch * T))],
        })),
      ),
    ),
  ],
};

// ---- topk: descending values, int32 indices, ties to the lower index, NaN largest -------------------
const topk: Cases<'topk'> = {
  topk: [
    // half-integers: many ties; a NaN at element 2
    ...ROW_SHAPES.flatMap(([rows, cols]) =>
      [...new Set([1, Math.min(5, cols), cols])].map((k) =>
        kc('topk', `topk ${rows}x${cols} k=${k}`, (g) => {
          const x = g.randn(rows * cols, (v) => Math.round(v * 3) / 2);
          if (x.length > 3) x[2] = NaN;
          return { inputs: [x], outs: [f32(rows * k), i32(rows * k)], params: { rows, cols, k }, check: EXACT };
        }),
      ),
    ),
    // few distinct values: ties, which must keep the lower index first
    ...[
      [1, 1, 1],
      [7, 33, 5],
      [2, 1025, 17],
      [3, 7, 7],
    ].map(([rows, cols, k]) =>
      kc('topk', `topk ${rows}x${cols} k${k}, scaled`, (g) => ({
        inputs: [g.randn(rows * cols, (v) => Math.round(v * 3))],
        outs: [f32(rows * k), i32(rows * k)],
        params: { rows, cols, k },
      })),
    ),
  ],
};

// ---- scan: the selective scan forward (chunked on WebGPU) and backward, every flag ------------------
const FLAGS = ['hasD', 'hasZ', 'hasH0', 'hasDeltaBias', 'deltaSoftplus'] as const;
type Flags = Pick<ScanParams, (typeof FLAGS)[number]>;
/** The scan's flags from the bits of mask, in the order of FLAGS. */
export function flagsOf(mask: number): Flags {
  return Object.fromEntries(FLAGS.map((f, i) => [f, !!(mask & (1 << i))])) as unknown as Flags;
}

/** The relToMax cases' scan inputs in kernel order (also the WebGPU gradient parity suite's). */
export function scanInputs(g: Gen, p: ScanParams): TypedArray[] {
  const { batch, T, E, N } = p;
  const x = g.randn(batch * T * E);
  // a raw delta around -1 for the softplus, else a positive step
  const delta = p.deltaSoftplus ? g.randn(batch * T * E, (v) => v - 1) : g.uniform(batch * T * E, 0.05, 0.25);
  const A = g.uniform(E * N, -1.2, -0.2);
  const ins = [x, delta, A, g.randn(batch * T * N), g.randn(batch * T * N)];
  if (p.hasD) ins.push(g.randn(E));
  if (p.hasZ) ins.push(g.randn(batch * T * E));
  if (p.hasH0) ins.push(g.randn(batch * E * N));
  // without the softplus the bias must keep the step positive, or the recurrence grows without bound
  if (p.hasDeltaBias) ins.push(p.deltaSoftplus ? g.randn(E, (v) => 0.3 * v) : g.uniform(E, 0, 0.1));
  return ins;
}

/** The rel(scale) cases' scan inputs in kernel order. */
function scanInputsScaled(g: Gen, p: ScanParams): TypedArray[] {
  const { batch, T, E, N } = p;
  const ins: TypedArray[] = [
    g.randn(batch * T * E), // x
    p.deltaSoftplus ? g.randn(batch * T * E) : g.randn(batch * T * E, (v) => 0.5 * Math.abs(v) + 0.01), // delta
    g.randn(E * N, (v) => -Math.exp(0.5 * v)), // A < 0
    g.randn(batch * T * N), // B
    g.randn(batch * T * N), // C
  ];
  if (p.hasD) ins.push(g.randn(E));
  if (p.hasZ) ins.push(g.randn(batch * T * E));
  if (p.hasH0) ins.push(g.randn(batch * E * N));
  if (p.hasDeltaBias) ins.push(g.randn(E, (v) => 0.5 * v));
  return ins;
}

const scanOuts = ({ batch, T, E, N, saveStates }: ScanParams) =>
  saveStates ? [f32(batch * T * E), f32(batch * E * N), f32(batch * T * E * N)] : [f32(batch * T * E), f32(batch * E * N)];

// Scans are long float32 recurrences; the CPU keeps its states in float64. 1e-4 covers the
// rounding accumulated over T = 4100 steps (decays exp(dt A) in (0.5, 1) keep it from growing).
const SCAN_TOL = 1e-4;
const SCAN_SHAPES = [
  [1, 1, 1, 1],
  [2, 7, 33, 7],
  [1, 33, 5, 16],
];
/** The long scan runs with every flag off and every flag on (each new flag set compiles new shaders). */
const LONG_SCAN = [1, 1025, 3, 4];
/**
 * Long sequences at small E, and several channel blocks at N 16: the WebGPU kernels walk a
 * sequence in segments of at most a few hundred steps, carrying the state (and backward the
 * adjoint) from one to the next, so these cross 4 to 33 segment boundaries, the last segment partial.
 */
const CARRY_SCANS: [number[], number, number][] = [
  [[1, 2048, 4, 4], 0b10101, 2],
  [[1, 4100, 2, 3], 31, 3],
  [[2, 300, 40, 16], 31, 0],
  [[2, 300, 40, 16], 0b01010, 1],
];
// every flag on and off, plus all on / all off (all 32 combinations run in the gradient parity suite)
const SCAN_MASKS = [0, 31, 0b10101, 0b01010, 0b00110, 0b11001];
/** [shape, flag mask, i]: i picks saveStates (even), and for the backward dhT (odd) and dhs (multiple of 3) */
const SCAN_CASES: [number[], number, number][] = [
  ...SCAN_SHAPES.flatMap((s) => SCAN_MASKS.map((m, i): [number[], number, number] => [s, m, i])),
  [LONG_SCAN, 0, 0],
  [LONG_SCAN, 31, 1],
  ...CARRY_SCANS,
];
const scanParams = ([batch, T, E, N]: number[], mask: number, i: number): ScanParams => ({
  batch,
  T,
  E,
  N,
  ...flagsOf(mask),
  saveStates: i % 2 === 0,
});
const scanName = (p: ScanParams, mask: number) => `scan ${p.batch}x${p.T}x${p.E}x${p.N} flags=${mask.toString(2)} states=${p.saveStates}`;

const ALL = { hasD: true, hasZ: true, hasH0: true, hasDeltaBias: true, deltaSoftplus: true };
const NONE = { hasD: false, hasZ: false, hasH0: false, hasDeltaBias: false, deltaSoftplus: false };
const MODEL = { hasD: true, hasZ: true, hasH0: false, hasDeltaBias: true, deltaSoftplus: true };
const SCAN_CONFIGS_SCALED: [string, ScanParams][] = [
  ['all flags', { batch: 2, T: 33, E: 7, N: 5, ...ALL, saveStates: true }],
  ['no flags', { batch: 1, T: 1, E: 3, N: 16, ...NONE, saveStates: false }],
  ['model flags', { batch: 1, T: 130, E: 16, N: 16, ...MODEL, saveStates: false }],
];
const scaledName = (label: string, { batch, T, E, N }: ScanParams) => `${label} b${batch} T${T} E${E} N${N}`;

const scan: Cases<'scan' | 'scan_bwd'> = {
  scan: [
    ...SCAN_CASES.map(([shape, mask, i]) => {
      const p = scanParams(shape, mask, i);
      return kc('scan', scanName(p, mask), (g) => ({ inputs: scanInputs(g, p), outs: scanOuts(p), params: p, check: relToMax(SCAN_TOL) }));
    }),
    ...SCAN_CONFIGS_SCALED.map(([label, p]) =>
      kc('scan', `scan ${scaledName(label, p)}, scaled`, (g) => ({
        inputs: scanInputsScaled(g, p),
        outs: scanOuts(p),
        params: p,
        check: [rel(Math.sqrt(p.N)), rel(1), rel(1)],
      })),
    ),
  ],
  scan_bwd: [
    ...SCAN_CASES.map(([shape, mask, i]) => {
      const fwd = scanParams(shape, mask, i);
      const p = { ...fwd, saveStates: false, hasDhT: i % 2 === 1, hasDhs: i % 3 === 0 };
      const { batch, T, E, N } = p;
      return kc('scan_bwd', `${scanName(fwd, mask)} bwd dhT=${p.hasDhT} dhs=${p.hasDhs}`, (g) => {
        const ins = scanInputs(g, p);
        const cot = [g.randn(batch * T * E)];
        if (p.hasDhT) cot.push(g.randn(batch * E * N));
        if (p.hasDhs) cot.push(g.randn(batch * T * E * N));
        return { inputs: [...ins, ...cot], outs: ins.map((a) => f32(a.length)), params: p, check: relToMax(SCAN_TOL) };
      });
    }),
    ...SCAN_CONFIGS_SCALED.flatMap(([label, fwd]) =>
      (
        [
          [false, false],
          [true, fwd.saveStates],
        ] as const
      ).map(([hasDhT, hasDhs]) => {
        const p = { ...fwd, hasDhT, hasDhs };
        const { batch, T, E, N } = p;
        return kc('scan_bwd', `scan_bwd ${scaledName(label, p)}${hasDhT ? ' dhT' : ''}${hasDhs ? ' dhs' : ''}, scaled`, (g) => {
          const ins = [...scanInputsScaled(g, p), g.randn(batch * T * E)];
          if (hasDhT) ins.push(g.randn(batch * E * N));
          if (hasDhs) ins.push(g.randn(batch * T * E * N));
          // each output and the number of terms its direct sum adds: dx, ddelta over N states; dA, dD and
          // ddeltaBias over batch*T steps; dB, dC over E channels
          const grads: [OutSpec, number][] = [
            [f32(batch * T * E), N],
            [f32(batch * T * E), N],
            [f32(E * N), batch * T],
            [f32(batch * T * N), E],
            [f32(batch * T * N), E],
          ];
          if (p.hasD) grads.push([f32(E), batch * T]);
          if (p.hasZ) grads.push([f32(batch * T * E), 1]);
          if (p.hasH0) grads.push([f32(batch * E * N), 1]);
          if (p.hasDeltaBias) grads.push([f32(E), batch * T]);
          return { inputs: ins, outs: grads.map((o) => o[0]), params: p, check: grads.map((o) => rel(Math.sqrt(o[1]))) };
        });
      }),
    ),
  ],
};

// ---- sae: the fused sparse autoencoder, forward (relu, topk with and without AuxK) and backward ----
/** [rows, d, latents, k, kAux]: sizes 1, 7, 33, 1025; 130 rows give 3 column-sum blocks and 2 sort blocks */
const SAE_SHAPES: [number, number, number, number, number][] = [
  [1, 1, 1, 1, 0],
  [7, 33, 7, 3, 2],
  [33, 7, 33, 5, 4],
  [3, 5, 1025, 33, 7],
  [2, 1025, 9, 4, 3],
  [130, 8, 300, 8, 3],
];
const saeParams = ([rows, d, latents, k, kAux]: number[], kind: 'relu' | 'topk', l1: number): SaeKernelParams => ({
  rows,
  d,
  latents,
  kind,
  k: kind === 'topk' ? k : 0,
  l1,
  kAux: kind === 'topk' ? kAux : 0,
});
const saeName = (p: SaeKernelParams) =>
  `sae ${p.kind} ${p.rows}x${p.d}x${p.latents}${p.kind === 'topk' ? ` k=${p.k} kAux=${p.kAux}` : ''} l1=${p.l1}`;

/**
 * The forward inputs in kernel order. `exact`: small dyadic values (x integers, b_dec halves,
 * W_enc eighths, b_enc sixteenths), so every pre-activation is exact in float32 whatever the order
 * of its sum and every backend selects the same latents, ties included (there are many); with
 * `nan`, latent 2's b_enc is NaN (it ranks first and activates nothing). Otherwise normal values.
 */
function saeInputs(g: Gen, p: SaeKernelParams, exact: boolean, nan = false): TypedArray[] {
  const { rows, d, latents: L } = p;
  const scaled = (a: Int32Array, s: number) => Float32Array.from(a, (v) => v / s);
  const ins: TypedArray[] = exact
    ? [scaled(g.randi(rows * d, -2, 3), 1), scaled(g.randi(d * L, -8, 9), 8), scaled(g.randi(L, -16, 17), 16)]
    : [g.randn(rows * d), g.randn(d * L, (v) => v / Math.sqrt(d)), g.randn(L, (v) => 0.3 * v)];
  ins.push(
    g.randn(L * d, (v) => v / Math.sqrt(d)),
    exact ? scaled(g.randi(d, -2, 3), 2) : g.randn(d, (v) => 0.2 * v),
  );
  if (nan && L > 3) ins[2][2] = NaN;
  if (p.kAux > 0) ins.push(scaled(g.randi(L, 0, 2), 1)); // dead: about half
  return ins;
}

function saeOuts(p: SaeKernelParams): OutSpec[] {
  const { rows, d, latents: L, k, kAux } = p;
  if (p.kind === 'relu') return [f32(rows * L), f32(rows * d), f32(rows)];
  const outs = [f32(rows * k), i32(rows * k), f32(rows * d), f32(rows)];
  if (kAux > 0) outs.push(f32(rows * kAux), i32(rows * kAux), f32(rows));
  return outs;
}

const SAE_TOL = 1e-5;
const sae: Cases<'sae' | 'sae_bwd'> = {
  sae: SAE_SHAPES.flatMap((shape, i) =>
    (['relu', 'topk'] as const).map((kind) => {
      const p = saeParams(shape, kind, i % 2 ? 0.25 : 0);
      return kc('sae', `${saeName(p)}${i === 2 ? ' NaN' : ''}`, (g) => ({
        inputs: saeInputs(g, p, true, i === 2),
        outs: saeOuts(p),
        params: p,
        // the selection and the ReLU of exact pre-activations are exact; sums over d to 1e-5
        check:
          kind === 'relu'
            ? [EXACT, relToMax(SAE_TOL), relToMax(SAE_TOL)]
            : [EXACT, EXACT, relToMax(SAE_TOL), relToMax(SAE_TOL), EXACT, EXACT, relToMax(SAE_TOL)],
      }));
    }),
  ),
  sae_bwd: SAE_SHAPES.flatMap((shape, i) =>
    (['relu', 'topk'] as const).map((kind) => {
      const fwd = saeParams(shape, kind, i % 2 ? 0 : 0.25);
      const p = { ...fwd, hasGRecon: i % 3 !== 1, hasGLatents: i % 2 === 0 };
      return kc('sae_bwd', `${saeName(fwd)} bwd grecon=${p.hasGRecon} glatents=${p.hasGLatents}`, async (g, ref) => {
        const ins = saeInputs(g, p, false);
        const [first, ...rest] = await ref('sae', ins, saeOuts(p), p);
        const { rows, d, latents: L, k, kAux } = p;
        const saved = kind === 'relu' ? [first, rest[0]] : [first, rest[0], rest[1]];
        const aux = kAux > 0 ? [rest[3], rest[4]] : [];
        const cot = [g.randn(rows)];
        if (kAux > 0) cot.push(g.randn(rows));
        if (p.hasGRecon) cot.push(g.randn(rows * d));
        if (p.hasGLatents) cot.push(g.randn(rows * (kind === 'relu' ? L : k)));
        return {
          inputs: [...ins.slice(0, 5), ...saved, ...aux, ...cot],
          outs: [f32(rows * d), f32(d * L), f32(L), f32(L * d), f32(d)],
          params: p,
          // dval is a dot product over d of float32 terms that may cancel (G against a row of W_dec)
          check: relToMax(SAE_TOL * Math.max(1, Math.sqrt(d / 64))),
        };
      });
    }),
  ),
};

// ---- influence: the hidden attention of a scan, every (t, s) at once ------------------------------
/** [batch, T, E, N]: 40 and 1025 steps span several blocks of 32 source positions; E 136 over 4 rows splits each group's channels in two */
const INFLUENCE_SHAPES = [
  [1, 1, 1, 1],
  [2, 7, 33, 7],
  [1, 33, 5, 16],
  [3, 40, 9, 5],
  [4, 100, 136, 2],
  [1, 1025, 3, 4],
];
// A product of up to T float32 decays and a sum over N states: relative rounding grows with T.
const INFLUENCE_TOL = 1e-4;
// One case per shape (each N compiles its own WGSL module), alternating the norm and alpha, plus
// both norms on one shape.
const INFLUENCE_CASES: [number[], InfluenceParams['norm'], boolean][] = [
  ...INFLUENCE_SHAPES.map((s, i): [number[], InfluenceParams['norm'], boolean] => [s, i % 2 ? 'l2' : 'mean_abs', i % 3 !== 1]),
  [INFLUENCE_SHAPES[2], 'l2', false],
];
const influence: Cases<'influence'> = {
  influence: INFLUENCE_CASES.map(([[batch, T, E, N], norm, saveAlpha]) => {
    const p: InfluenceParams = { batch, T, E, N, norm, saveAlpha };
    return kc('influence', `influence ${batch}x${T}x${E}x${N} ${norm} alpha=${saveAlpha}`, (g) => ({
      inputs: [g.uniform(batch * T * E, 0.02, 0.4), g.uniform(E * N, -1.5, -0.1), g.randn(batch * T * N), g.randn(batch * T * N)],
      outs: saveAlpha ? [f32(batch * T * T), f32(batch * E * T * T)] : [f32(batch * T * T)],
      params: p,
      check: relToMax(INFLUENCE_TOL),
    }));
  }),
};

/** The cases by op file (engine/ops/X.ts, engine/cpu/kernels/X.ts, engine/wgsl/kernels/X.ts). */
export const KERNEL_CASES_BY_FILE = { elementwise, shape, indexing, matmul, reduce, softmax, rmsnorm, conv1d, topk, scan, sae, influence };

/** Every kernel's cases: a kernel of engine/kernels.ts missing here is a type error. */
export const KERNEL_CASES: { [K in KernelName]: KernelCase<K>[] } = {
  ...elementwise,
  ...shape,
  ...indexing,
  ...matmul,
  ...reduce,
  ...softmax,
  ...rmsnorm,
  ...conv1d,
  ...topk,
  ...scan,
  ...sae,
  ...influence,
};

export const KERNEL_NAMES = Object.keys(KERNEL_CASES) as KernelName[];

// ---- the runner ------------------------------------------------------------------------------------
export interface CaseResult {
  kernel: KernelName;
  /** e.g. "matmul b2 33x7x5 TN bcast" */
  name: string;
  ok: boolean;
  /** worst error over the outputs, in units of each check's bound (Infinity for a NaN where the reference has a number) */
  worst: number;
  /** what went wrong: the output, index and both values, or the error thrown */
  detail: string;
  /** wall time of both runs, including e.g. WGSL compilation on first use */
  ms: number;
}

export interface RunOptions {
  /** only these kernels' cases (default: all) */
  kernels?: readonly KernelName[];
  /** what to call the two sides in messages (default candidate, reference) */
  labels?: [candidate: string, reference: string];
  /** leave out the cases marked heavy (the browser's WebGPU pass on SwiftShader) */
  skipHeavy?: boolean;
}

/** Compares one output; null when it passes, else what is wrong. worst is in units of the check's bound. */
function compare(got: TypedArray, want: TypedArray, check: Check, [c, r]: [string, string]): { worst: number; bad: string | null } {
  if (got.length !== want.length) return { worst: Infinity, bad: `length ${got.length}, ${r} ${want.length}` };
  if (check.kind === 'exact') {
    const at = want.findIndex((w, i) => !Object.is(got[i], w));
    return at < 0 ? { worst: 0, bad: null } : { worst: Infinity, bad: `element ${at} is ${got[at]}, ${r} ${want[at]} (exact)` };
  }
  if (check.kind === 'rel') {
    const { worst, at } = worstRelativeError(got, want, check.scale);
    const e = worst / TOLERANCE;
    const scale = typeof check.scale === 'number' ? check.scale : check.scale(at);
    return worst <= TOLERANCE
      ? { worst: e, bad: null }
      : { worst: e, bad: `relative error ${worst} at ${at} (${c} ${got[at]}, ${r} ${want[at]}, scale ${scale}; tolerance ${TOLERANCE})` };
  }
  const { ok, worst, at } = worstRelativeToMax(got, want, check.tol);
  return ok
    ? { worst: worst / check.tol, bad: null }
    : {
        worst: worst / check.tol,
        bad: `element ${at} is ${got[at]}, ${r} ${want[at]} (error ${worst} of |${r}| + 1e-2 max|${r}|; tolerance ${check.tol})`,
      };
}

/**
 * Runs every case (or those of `opts.kernels`) on `candidate` and `reference` and compares the
 * outputs. `candidate` may be a factory: it is called for the first case and again after each case
 * that threw on it (a WebGPU backend stops at its first device error and throws it from every later
 * call, so each failure is reported by the case that caused it). Never throws; every case gives one
 * result.
 */
export async function runKernelCases(
  candidate: KernelBackend | (() => Promise<KernelBackend>),
  reference: KernelBackend,
  opts: RunOptions = {},
): Promise<CaseResult[]> {
  const labels = opts.labels ?? ['candidate', 'reference'];
  const make = typeof candidate === 'function' ? candidate : null;
  let cand: KernelBackend | null = make ? null : (candidate as KernelBackend);
  const ref: RefRun = async (kernel, inputs, outs, params) =>
    (await runKernel(reference, kernel, inputs, outs, params)).map((a) => (a instanceof Int32Array ? a : Float32Array.from(a)));
  const results: CaseResult[] = [];
  for (const kernel of opts.kernels ?? KERNEL_NAMES) {
    for (const c of KERNEL_CASES[kernel] as KernelCase<typeof kernel>[]) {
      if (opts.skipHeavy && c.heavy) continue;
      const t0 = performance.now();
      const done = (ok: boolean, worst: number, detail: string) =>
        results.push({ kernel, name: c.name, ok, worst, detail, ms: Math.round(performance.now() - t0) });
      let built: Built<typeof kernel>, want: TypedArray[];
      try {
        built = await c.build(new Gen(`kernel-cases/${kernel}/${c.name}`), ref);
        want = await runKernel(reference, kernel, built.inputs, built.outs, built.params);
      } catch (e) {
        done(false, Infinity, `the ${labels[1]} threw: ${(e as Error).message}`);
        continue;
      }
      let got: TypedArray[];
      try {
        cand ??= await make!();
        got = await runKernel(cand, kernel, built.inputs, built.outs, built.params);
      } catch (e) {
        done(false, Infinity, `${labels[0]} threw: ${(e as Error).message}`);
        if (make) cand = null;
        continue;
      }
      let worst = 0;
      const bad: string[] = [];
      got.forEach((g, k) => {
        const check = Array.isArray(built.check) ? built.check[k] : (built.check ?? rel(1));
        const r = compare(g, want[k], check, labels);
        worst = Math.max(worst, r.worst);
        if (r.bad) bad.push(`output ${k}: ${r.bad}`);
      });
      const also = built.also?.(got);
      if (also) bad.push(also);
      done(bad.length === 0, worst, bad.join('; '));
    }
  }
  return results;
}

/** "name: detail" for each failed result. */
export const failures = (results: readonly CaseResult[]): string[] => results.filter((r) => !r.ok).map((r) => `${r.name}: ${r.detail}`);
