// Child process of test/engine/cpu/threads.test.ts: runs every kernel that splits over the worker
// threads (SPLIT_CASES: matmul by rows and by columns, float32 on the WebAssembly kernel and float64
// on the scalar one; the scan forward and backward on the WebAssembly kernel, by channel groups,
// batch rows and channel chunks, and in float64 on the scalar kernel by batch rows; every other
// WebAssembly kernel with a `split`) on seeded inputs above its split threshold, on the CPU backend
// with MI_CPU_THREADS threads, outputs poisoned first (NaN, or INT_POISON for int32), and prints
// one JSON line: a SHA-256 of every output's bytes, the poisoned elements left in them, the threads
// used and the splits that ran (threads.ts's splitCounts).
//   MI_CPU_THREADS=3 npx tsx test/helpers/split-hashes.ts
//
// Sizes: each WebAssembly case is above its kernel's threshold (the SPLIT_MIN constants of
// engine/wasm/kernels/X.ts, read by `split.range`) with at least 3 units of its split axis, so
// that 3 threads make 3 parts (the test checks both with `split.range`), and most have an uneven
// last part. The scalar kernels split above 2^21 multiply-adds (matmul) and 2^18 scan steps with
// batch > 1 (engine/cpu/kernels/matmul.ts, scan.ts).
import { createHash } from 'node:crypto';
import { pathToFileURL } from 'node:url';
import { splitCounts, threadsReady, threadsWanted } from '../../engine/cpu/threads.ts';
import type { TypedArray } from '../../engine/dtype.ts';
import * as mi from '../../engine/index.ts';
import type { KernelName, KernelParams, ScanParams } from '../../engine/kernels.ts';
import { Gen, scanInputs } from '../engine/kernel-cases.ts';
import { INT_POISON } from './kernel-run.ts';

export interface SplitReport {
  threads: number;
  description: string;
  /** case name -> output -> sha256 of its bytes */
  hashes: Record<string, string[]>;
  /** case name -> poisoned elements left in its outputs (NaN, or INT_POISON in an int32 output: an element no thread wrote) */
  nans: Record<string, number>;
  splits: Record<string, number>;
}

/** One output: float (float32, or float64 for a float64 case) or int32, and its size. */
type Out = number | { int32: number };

/** One kernel call. Float inputs run as the case's dtype; Int32Array inputs stay int32. */
export interface SplitCase<K extends KernelName = KernelName> {
  name: string;
  kernel: K;
  dtype: 'float32' | 'float64';
  params: KernelParams[K];
  inputs(g: Gen): TypedArray[];
  outs: Out[];
  /** the splitCounts entry the call must add to: "wasm scan", "scalar scan", ... */
  key: string;
}

function sc<K extends KernelName>(c: Omit<SplitCase<K>, 'key'>): SplitCase<K> {
  return { ...c, key: `${c.dtype === 'float32' ? 'wasm' : 'scalar'} ${c.kernel}` };
}

/** The matmul cases: [batch, M, N, K, transA, transB, broadcast B], each at least 2^22 multiply-adds. */
export const SPLIT_MATMULS: [number, number, number, number, boolean, boolean, boolean][] = [
  [2, 301, 70, 130, false, true, true], // rows, the last part uneven
  [2, 64, 41, 1100, true, false, false], // rows, transA
  [1, 3, 1001, 1400, false, true, false], // columns (M <= 8), transB
  [1, 2, 1203, 1800, true, false, false], // columns, transA
  [1, 1, 4099, 1024, false, true, false], // columns, one row (decoding)
];

/**
 * The scan cases: every flag; batch * T * E * N above 2^18. Batch > 1: the WebAssembly forward
 * splits by groups of 4 channels of every row, its backward by batch rows, the scalar kernel (float64)
 * both by batch rows. Batch 1 (float32 only: the scalar kernel does not split it): the forward by
 * channel groups, the backward by chunks of 64 channels (E = 198: 4 chunks, the last of 6 channels,
 * its last group of 2).
 */
export const SPLIT_SCANS: ScanParams[] = [
  { batch: 5, T: 128, E: 96, N: 16, hasD: true, hasZ: true, hasH0: true, hasDeltaBias: true, deltaSoftplus: true, saveStates: true },
  { batch: 3, T: 200, E: 64, N: 16, hasD: true, hasZ: true, hasH0: false, hasDeltaBias: true, deltaSoftplus: true, saveStates: false },
  { batch: 1, T: 90, E: 198, N: 16, hasD: true, hasZ: true, hasH0: true, hasDeltaBias: true, deltaSoftplus: true, saveStates: true },
];

function matmulCases(): SplitCase[] {
  return SPLIT_MATMULS.flatMap(([batch, M, N, K, transA, transB, bcast]) =>
    (['float32', 'float64'] as const).map((dtype) =>
      sc({
        name: `matmul ${dtype} b${batch} ${M}x${N}x${K}`,
        kernel: 'matmul',
        dtype,
        params: { batch, M, N, K, transA, transB, aBatchStride: M * K, bBatchStride: bcast ? 0 : K * N },
        inputs: (g) => [g.randn(batch * M * K), g.randn((bcast ? 1 : batch) * K * N)],
        outs: [batch * M * N],
      }),
    ),
  );
}

function scanCases(): SplitCase[] {
  return SPLIT_SCANS.flatMap((p) => {
    const { batch, T, E, N } = p;
    const dims = `${batch}x${T}x${E}x${N}`;
    const pb = { ...p, saveStates: false, hasDhT: true, hasDhs: p.saveStates };
    const cot = (g: Gen) => [g.randn(batch * T * E), g.randn(batch * E * N), ...(pb.hasDhs ? [g.randn(batch * T * E * N)] : [])];
    const outs = [batch * T * E, batch * E * N, ...(p.saveStates ? [batch * T * E * N] : [])];
    // the backward's inputs: the forward's, drawn first from the same generator, then the cotangents
    const bwdInputs = (g: Gen) => [...scanInputs(g, p), ...cot(g)];
    // one gradient per forward input
    const grads = [batch * T * E, batch * T * E, E * N, batch * T * N, batch * T * N].concat(
      p.hasD ? [E] : [],
      p.hasZ ? [batch * T * E] : [],
      p.hasH0 ? [batch * E * N] : [],
      p.hasDeltaBias ? [E] : [],
    );
    return (batch > 1 ? (['float32', 'float64'] as const) : (['float32'] as const)).flatMap((dtype) => [
      sc({ name: `scan ${dtype} ${dims}`, kernel: 'scan', dtype, params: p, inputs: (g) => scanInputs(g, p), outs }),
      sc({ name: `scan_bwd ${dtype} ${dims}`, kernel: 'scan_bwd', dtype, params: pb, inputs: bwdInputs, outs: grads }),
    ]);
  });
}

const f32case = <K extends KernelName>(c: Omit<SplitCase<K>, 'key' | 'dtype'>) => sc({ ...c, dtype: 'float32' });

/** Targets in [0, cols), every 7th row ignoreIndex. */
const targets = (g: Gen, rows: number, cols: number, ignore: number) => g.randi(rows, 0, cols).map((t, i) => (i % 7 === 3 ? ignore : t));

/** The other WebAssembly kernels with a split, each case above its threshold. */
function wasmCases(): SplitCase[] {
  const light = (1 << 18) + 3; // unary SPLIT_MIN_LIGHT = 2^18 elements, align 4: the last part uneven
  const heavy = (1 << 15) + 5; // unary SPLIT_MIN_HEAVY = 2^15 (exp-based ops)
  const unary = (op: KernelParams['unary']['op'], size: number, alpha = 0, beta = 0) =>
    f32case({
      name: `unary ${op} ${size}`,
      kernel: 'unary',
      params: { op, size, alpha, beta },
      inputs: (g) => [g.randn(size, (v) => 3 * v)],
      outs: [size],
    });
  const binary = (
    op: KernelParams['binary']['op'],
    shape: number[],
    aShape: number[],
    aStrides: number[],
    bShape: number[],
    bStrides: number[],
  ) =>
    f32case({
      name: `binary ${op} ${shape.join('x')} a[${aStrides}] b[${bStrides}]`,
      kernel: 'binary',
      params: { op, shape, aStrides, bStrides },
      inputs: (g) => [g.randn(aShape.reduce((x, y) => x * y, 1)), g.randn(bShape.reduce((x, y) => x * y, 1))],
      outs: [shape.reduce((x, y) => x * y, 1)],
    });
  const reduce = (op: 'sum' | 'max' | 'min', outer: number, len: number, inner: number) =>
    f32case({
      name: `reduce ${op} ${outer}x${len}x${inner}`,
      kernel: 'reduce',
      params: { op, outer, len, inner },
      inputs: (g) => [g.randn(outer * len * inner)],
      outs: [outer * inner],
    });
  const argmax = (outer: number, len: number, inner: number) =>
    f32case({
      name: `argmax ${outer}x${len}x${inner}`,
      kernel: 'argmax',
      params: { outer, len, inner },
      inputs: (g) => [g.randn(outer * len * inner)],
      outs: [{ int32: outer * inner }],
    });
  const softmax = (rows: number, cols: number, log: boolean) =>
    f32case({
      name: `softmax ${rows}x${cols}${log ? ' log' : ''}`,
      kernel: 'softmax',
      params: { rows, cols, log },
      inputs: (g) => [g.randn(rows * cols, (v) => 4 * v)],
      outs: [rows * cols],
    });
  const softmaxBwd = (rows: number, cols: number, log: boolean) =>
    f32case({
      name: `softmax_bwd ${rows}x${cols}${log ? ' log' : ''}`,
      kernel: 'softmax_bwd',
      params: { rows, cols, log },
      // y as the forward gives it: probabilities, or their logs
      inputs: (g) => [log ? g.randn(rows * cols, (v) => -Math.abs(v) - 4) : g.uniform(rows * cols, 0, 2 / cols), g.randn(rows * cols)],
      outs: [rows * cols],
    });
  const conv = (batch: number, T: number, C: number, K: number, hasBias: boolean) => ({ batch, T, C, K, hasBias });
  const c1 = conv(3, 101, 130, 4, true),
    c2 = conv(2, 150, 120, 4, true),
    c3 = conv(1, 97, 340, 3, false);
  return [
    // unary: memory-bound ops from 2^18 elements, the exp-based ones from 2^15
    unary('affine', light, 0.75, -0.5),
    unary('relu', light),
    unary('clamp', light, -1, 1.5),
    unary('silu', heavy),
    unary('softplus', heavy),
    unary('tanh', heavy),
    // binary (2^18 output elements): broadcast rows, broadcast columns (a splat), a transposed input
    binary('add', [3, 300, 301], [3, 300, 301], [90300, 301, 1], [301], [0, 0, 1]),
    binary('mul', [3, 300, 301], [3, 300, 301], [90300, 301, 1], [3, 300], [300, 1, 0]),
    binary('sub', [520, 513], [513, 520], [1, 520], [520, 513], [513, 1]),
    binary('maximum', [2, 3, 210, 209], [2, 3, 210, 209], [131670, 43890, 209, 1], [3, 1, 209], [0, 209, 0, 1]),
    // where (2^18): an int32 condition broadcast over the leading axis, a float32 one, a scalar branch
    f32case({
      name: 'where int32 cond 2x400x331',
      kernel: 'where',
      params: { shape: [2, 400, 331], cStrides: [0, 331, 1], aStrides: [132400, 331, 1], bStrides: [0, 0, 0] },
      inputs: (g) => [g.randi(400 * 331, 0, 2), g.randn(2 * 400 * 331), g.randn(1)],
      outs: [2 * 400 * 331],
    }),
    f32case({
      name: 'where float32 cond 700x383',
      kernel: 'where',
      params: { shape: [700, 383], cStrides: [383, 1], aStrides: [0, 1], bStrides: [383, 1] },
      inputs: (g) => [g.randn(700 * 383, (v) => (v > 0.3 ? v : 0)), g.randn(383), g.randn(700 * 383)],
      outs: [700 * 383],
    }),
    // reduce (2^17 elements): outer rows (contiguous rows; columns), and inner columns when outer = 1
    reduce('sum', 301, 450, 1),
    reduce('max', 7, 150, 130),
    reduce('sum', 1, 400, 333),
    reduce('min', 1, 1000, 150),
    argmax(301, 450, 1),
    argmax(1, 300, 450),
    // the row kernels (2^15 elements, rows >= 2)
    softmax(67, 513, false),
    softmax(33, 1025, true),
    softmaxBwd(67, 513, false),
    softmaxBwd(33, 1025, true),
    f32case({
      name: 'cross_entropy 65x600',
      kernel: 'cross_entropy',
      params: { rows: 65, cols: 600, ignoreIndex: -100 },
      inputs: (g) => [g.randn(65 * 600, (v) => 3 * v), targets(g, 65, 600, -100)],
      outs: [65],
    }),
    f32case({
      name: 'cross_entropy_bwd 65x600',
      kernel: 'cross_entropy_bwd',
      params: { rows: 65, cols: 600, ignoreIndex: -100 },
      inputs: (g) => [g.randn(65 * 600, (v) => 3 * v), targets(g, 65, 600, -100), g.randn(65)],
      outs: [65 * 600],
    }),
    // rmsnorm (2^15 elements); the backward over blocks of round(sqrt(rows)) rows: 150 rows, blocks of 12, the last of 6
    f32case({
      name: 'rmsnorm 129x300',
      kernel: 'rmsnorm',
      params: { rows: 129, cols: 300, eps: 1e-5 },
      inputs: (g) => [g.randn(129 * 300), g.randn(300)],
      outs: [129 * 300, 129],
    }),
    f32case({
      name: 'rmsnorm_bwd 150x261',
      kernel: 'rmsnorm_bwd',
      params: { rows: 150, cols: 261 },
      inputs: (g) => [g.randn(150 * 261), g.randn(261), g.uniform(150, 0.5, 2), g.randn(150 * 261)],
      outs: [150 * 261, 261],
    }),
    // conv1d (2^15 outputs, rows (b, t) >= 2); the backward over blocks of round(sqrt(batch T)) rows
    ...[c1, c3].map((p) =>
      f32case({
        name: `conv1d ${p.batch}x${p.T}x${p.C} K${p.K}${p.hasBias ? ' bias' : ''}`,
        kernel: 'conv1d',
        params: p,
        inputs: (g) => [g.randn(p.batch * p.T * p.C), g.randn(p.C * p.K), ...(p.hasBias ? [g.randn(p.C)] : [])],
        outs: [p.batch * p.T * p.C],
      }),
    ),
    ...[c2, c3].map((p) =>
      f32case({
        name: `conv1d_bwd ${p.batch}x${p.T}x${p.C} K${p.K}${p.hasBias ? ' bias' : ''}`,
        kernel: 'conv1d_bwd',
        params: p,
        inputs: (g) => [g.randn(p.batch * p.T * p.C), g.randn(p.C * p.K), g.randn(p.batch * p.T * p.C)],
        outs: [p.batch * p.T * p.C, p.C * p.K, ...(p.hasBias ? [p.C] : [])],
      }),
    ),
    // indexing (2^16 elements written; onehot 2^17): gather and onehot by rows, scatter_add by columns (align 4)
    f32case({
      name: 'gather 600 of 500x130',
      kernel: 'gather',
      params: { n: 600, rows: 500, cols: 130 },
      inputs: (g) => [g.randn(500 * 130), g.randi(600, 0, 500)],
      outs: [600 * 130],
    }),
    f32case({
      name: 'scatter_add 700 into 300x130',
      kernel: 'scatter_add',
      params: { n: 700, rows: 300, cols: 130 },
      inputs: (g) => [g.randn(700 * 130), g.randi(700, 0, 300)],
      outs: [300 * 130],
    }),
    f32case({
      name: 'onehot 301x500',
      kernel: 'onehot',
      params: { n: 301, depth: 500 },
      // some out of range: a zero row
      inputs: (g) => [g.randi(301, -1, 501)],
      outs: [301 * 500],
    }),
  ];
}

/** Every case, in the order the child runs them. */
export const SPLIT_CASES: SplitCase[] = [...matmulCases(), ...scanCases(), ...wasmCases()];

function run<K extends KernelName>(cpu: ReturnType<typeof mi.cpuBackend>, c: SplitCase<K>): TypedArray[] {
  const g = new Gen(`split-hashes/${c.name.replace(/^(\w+) float(32|64)/, '$1')}`);
  const ins = c.inputs(g).map((a) => {
    const dtype = a instanceof Int32Array ? 'int32' : c.dtype;
    const b = cpu.alloc(dtype, a.length);
    cpu.write(b, dtype === 'float64' ? Float64Array.from(a) : a);
    return b;
  });
  const outs = c.outs.map((o) => {
    const b = typeof o === 'number' ? cpu.alloc(c.dtype, o) : cpu.alloc('int32', o.int32);
    cpu.view(b).fill(typeof o === 'number' ? Number.NaN : INT_POISON);
    return b;
  });
  cpu.run(c.kernel, ins, outs, c.params);
  const got = outs.map((b) => cpu.readSync(b));
  for (const b of [...ins, ...outs]) cpu.free(b);
  return got;
}

const unwritten = (o: TypedArray) =>
  (o instanceof Int32Array ? o.filter((v) => v === INT_POISON) : o.filter((v) => Number.isNaN(v))).length;

async function main(): Promise<void> {
  const cpu = mi.cpuBackend();
  const want = threadsWanted();
  for (let i = 0; i < 600 && threadsReady() < want; i++) await new Promise((r) => setTimeout(r, 100));
  const report: SplitReport = { threads: threadsReady(), description: cpu.description, hashes: {}, nans: {}, splits: splitCounts };
  for (const c of SPLIT_CASES) {
    const outs = run(cpu, c);
    report.hashes[c.name] = outs.map((o) =>
      createHash('sha256')
        .update(new Uint8Array(o.buffer, o.byteOffset, o.byteLength))
        .digest('hex'),
    );
    report.nans[c.name] = outs.reduce((n, o) => n + unwritten(o), 0);
  }
  console.log(JSON.stringify(report));
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) await main();
