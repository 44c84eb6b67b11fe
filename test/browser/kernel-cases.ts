// WebGPU kernel-vs-CPU parity cases that run anywhere: no node: imports, no test runner, the two
// backends passed in. test/browser/page.ts runs them inside Chromium's WebGPU and reports the
// results to test/browser/kernels.test.ts. Every kernel of engine/kernels.ts has cases here (the
// Node test checks KERNELS_COVERED against the CPU registry).
//
// As in test/engine/wgsl/kernels.test.ts: seeded inputs of awkward sizes; outputs poisoned first (NaN
// for float, a sentinel for int32) so an unwritten element is a mismatch; float32 agreement is
// |gpu - cpu| <= 1e-5 * (|cpu| + scale), scale being the op's natural size of rounding error
// (sqrt of the number of terms a sum adds, the exponent's size for pow). Sizes are smaller than the
// Node suite's, since SwiftShader runs the page's WebGPU on the CPU.
import type { Backend } from '../../engine/backend.ts';
import type { TypedArray } from '../../engine/dtype.ts';
import { BINARY, UNARY, type BinaryOp, type UnaryOp } from '../../engine/elementwise.ts';
import type { KernelName, KernelParams, ScanParams } from '../../engine/kernels.ts';
import { Rng } from '../../engine/random.ts';
import { broadcastStrides } from '../../engine/shape.ts';
import { f32, i32, runKernel, unaryCase, worstRelativeError, type OutSpec } from '../helpers/kernel-run.ts';

export const TOLERANCE = 1e-5;

export const KERNELS_COVERED: KernelName[] = [
  'fill',
  'unary',
  'binary',
  'where',
  'cast',
  'copy',
  'reduce',
  'argmax',
  'matmul',
  'gather',
  'scatter_add',
  'onehot',
  'softmax',
  'softmax_bwd',
  'cross_entropy',
  'cross_entropy_bwd',
  'rmsnorm',
  'rmsnorm_bwd',
  'conv1d',
  'conv1d_bwd',
  'topk',
  'scan',
  'scan_bwd',
];

export interface CaseResult {
  kernel: KernelName;
  /** e.g. "matmul b2 33x7x5 TN bcast" */
  name: string;
  ok: boolean;
  /** worst relative error over the outputs (Infinity for a NaN where the CPU has a number) */
  worst: number;
  /** what went wrong: the output, index and both values, or the error thrown */
  detail: string;
  /** wall time of both runs, including WGSL compilation on first use */
  ms: number;
}

/** Scale per output: one number for all outputs, or one per output. */
type Scales = number | number[];

class Cases {
  readonly results: CaseResult[] = [];
  readonly rng = new Rng('browser-kernel-cases');
  private gpu: Backend | null = null;

  /**
   * A WebGPU backend stops at its first device error and throws it from every later call (see
   * engine/wgsl/backend.ts), so a case that fails on the device gets the next one a fresh backend:
   * each failure is reported by the case that caused it.
   */
  constructor(
    private readonly makeGpu: () => Promise<Backend>,
    private readonly cpu: Backend,
    private readonly only?: readonly KernelName[],
  ) {}

  /** Runs the kernel on both backends and records one result; returns the CPU outputs. */
  async parity<K extends KernelName>(
    name: string,
    kernel: K,
    inputs: TypedArray[],
    outs: OutSpec[],
    params: KernelParams[K],
    scales: Scales = 1,
  ): Promise<TypedArray[] | null> {
    const t0 = performance.now();
    const ms = () => Math.round(performance.now() - t0);
    let want: TypedArray[];
    try {
      want = await runKernel(this.cpu, kernel, inputs, outs, params);
    } catch (e) {
      this.results.push({ kernel, name, ok: false, worst: Infinity, detail: `the CPU reference threw: ${(e as Error).message}`, ms: ms() });
      return null;
    }
    // a kernel left out still runs on the CPU: later cases may take its outputs as inputs
    if (this.only && !this.only.includes(kernel)) return want;
    try {
      this.gpu ??= await this.makeGpu();
      const got = await runKernel(this.gpu, kernel, inputs, outs, params);
      let worst = 0;
      const bad: string[] = [];
      got.forEach((g, k) => {
        const scale = typeof scales === 'number' ? scales : scales[k];
        const r = worstRelativeError(g, want[k], scale);
        worst = Math.max(worst, r.worst);
        if (!(r.worst <= TOLERANCE)) {
          bad.push(
            r.at < 0
              ? `output ${k}: length ${g.length}, cpu ${want[k].length}`
              : `output ${k}: relative error ${r.worst} at ${r.at} (gpu ${g[r.at]}, cpu ${want[k][r.at]}, scale ${scale})`,
          );
        }
      });
      this.results.push({ kernel, name, ok: bad.length === 0, worst, detail: bad.join('; '), ms: ms() });
    } catch (e) {
      this.results.push({ kernel, name, ok: false, worst: Infinity, detail: `webgpu threw: ${(e as Error).message}`, ms: ms() });
      this.gpu = null;
    }
    return want;
  }

  randn(n: number, f: (x: number) => number = (x) => x): Float32Array {
    const a = new Float32Array(n);
    for (let i = 0; i < n; i++) a[i] = f(this.rng.normal());
    return a;
  }

  randi(n: number, lo: number, hi: number): Int32Array {
    const a = new Int32Array(n);
    for (let i = 0; i < n; i++) a[i] = this.rng.int(lo, hi);
    return a;
  }
}

async function elementwise(c: Cases): Promise<void> {
  for (const n of [1, 33, 1025]) {
    await c.parity(`fill f32 ${n}`, 'fill', [], [f32(n)], { size: n, value: -2.5 });
    await c.parity(`fill i32 ${n}`, 'fill', [], [i32(n)], { size: n, value: 42 });
  }
  for (const op of Object.keys(UNARY) as UnaryOp[]) {
    const u = unaryCase(op);
    for (const n of [7, 1025]) {
      await c.parity(`unary ${op} ${n}`, 'unary', [c.randn(n, u.x)], [f32(n)], { op, size: n, alpha: u.alpha, beta: u.beta }, u.scale);
    }
  }
  for (const op of ['neg', 'abs', 'sign', 'square'] as UnaryOp[]) {
    await c.parity(`unary ${op} int32`, 'unary', [c.randi(33, -50, 50)], [i32(33)], { op, size: 33, alpha: 0, beta: 0 });
  }
  const shapes: [number[], number[]][] = [
    [[7], [7]],
    [
      [33, 7],
      [1, 7],
    ],
    [
      [7, 1, 33],
      [1, 5, 1],
    ],
  ];
  for (const op of Object.keys(BINARY) as BinaryOp[]) {
    for (const [aShape, bShape] of shapes) {
      const out = aShape.map((d, i) => Math.max(d, bShape[i]));
      const na = aShape.reduce((p, d) => p * d, 1),
        nb = bShape.reduce((p, d) => p * d, 1),
        n = out.reduce((p, d) => p * d, 1);
      const tieable = ['gt', 'ge', 'lt', 'le', 'eq', 'ne', 'maximum', 'minimum'].includes(op);
      const fa = op === 'pow' ? c.randn(na, (v) => Math.abs(v) + 0.1) : tieable ? c.randn(na, (v) => Math.round(v * 2)) : c.randn(na);
      const fb =
        op === 'div'
          ? c.randn(nb, (v) => Math.sign(v || 1) * (Math.abs(v) + 0.1))
          : tieable
            ? c.randn(nb, (v) => Math.round(v * 2))
            : c.randn(nb);
      const p = { op, shape: out, aStrides: broadcastStrides(aShape, out), bStrides: broadcastStrides(bShape, out) };
      await c.parity(`binary ${op} ${aShape}x${bShape}`, 'binary', [fa, fb], [f32(n)], p, op === 'pow' ? 10 : 1);
      if (['add', 'sub', 'mul', 'maximum', 'minimum', 'gt', 'eq', 'ne'].includes(op)) {
        await c.parity(`binary ${op} int32 ${aShape}x${bShape}`, 'binary', [c.randi(na, -5, 5), c.randi(nb, -5, 5)], [i32(n)], p);
      }
    }
  }
  const shape = [7, 33];
  const cond = c.randn(33, (v) => (v > 0 ? 1 : 0));
  const wp = {
    shape,
    cStrides: broadcastStrides([33], shape),
    aStrides: broadcastStrides(shape, shape),
    bStrides: broadcastStrides([7, 1], shape),
  };
  await c.parity('where f32 cond', 'where', [cond, c.randn(231), c.randn(7)], [f32(231)], wp);
  await c.parity('where i32 cond', 'where', [Int32Array.from(cond), c.randn(231), c.randn(7)], [f32(231)], wp);
  for (const n of [1, 33, 1025]) {
    await c.parity(`cast f2i ${n}`, 'cast', [c.randn(n, (v) => v * 100)], [i32(n)], { size: n });
    await c.parity(`cast i2f ${n}`, 'cast', [c.randi(n, -1000, 1000)], [f32(n)], { size: n });
  }
  await c.parity('copy permute', 'copy', [c.randn(7 * 33 * 5)], [f32(7 * 33 * 5)], {
    shape: [5, 7, 33],
    inStrides: [1, 165, 5],
    inOffset: 0,
    outStrides: [231, 33, 1],
    outOffset: 0,
  });
  await c.parity('copy slice', 'copy', [c.randn(231)], [f32(4 * 33)], {
    shape: [4, 33],
    inStrides: [33, 1],
    inOffset: 66,
    outStrides: [33, 1],
    outOffset: 0,
  });
  await c.parity('copy expand', 'copy', [c.randn(33)], [f32(130 * 33)], {
    shape: [130, 33],
    inStrides: [0, 1],
    inOffset: 0,
    outStrides: [33, 1],
    outOffset: 0,
  });
  await c.parity('copy int32 permute', 'copy', [c.randi(231, -9, 9)], [i32(231)], {
    shape: [33, 7],
    inStrides: [1, 33],
    inOffset: 0,
    outStrides: [7, 1],
    outOffset: 0,
  });
  // a write into columns 3..8 of a [7, 12] output whose other elements must stay as they are
  await c.parity('copy into region', 'copy', [c.randn(35)], [{ dtype: 'float32', size: 84, init: c.randn(84) }], {
    shape: [7, 5],
    inStrides: [5, 1],
    inOffset: 0,
    outStrides: [12, 1],
    outOffset: 3,
  });
}

async function reductions(c: Cases): Promise<void> {
  for (const [outer, len, inner] of [
    [1, 1, 1],
    [1, 1025, 1],
    [3, 33, 7],
    [2, 7, 33],
  ]) {
    const x = c.randn(outer * len * inner);
    for (const op of ['sum', 'max', 'min'] as const) {
      await c.parity(
        `reduce ${op} [${outer},${len},${inner}]`,
        'reduce',
        [x],
        [f32(outer * inner)],
        { op, outer, len, inner },
        op === 'sum' ? Math.sqrt(len) : 1,
      );
    }
    await c.parity(
      `argmax [${outer},${len},${inner}]`,
      'argmax',
      [c.randn(outer * len * inner, (v) => Math.round(v * 2))],
      [i32(outer * inner)],
      { outer, len, inner },
    );
  }
  await c.parity('reduce sum int32', 'reduce', [c.randi(3 * 33 * 7, -100, 100)], [i32(21)], { op: 'sum', outer: 3, len: 33, inner: 7 });
  await c.parity('reduce max int32', 'reduce', [c.randi(3 * 33 * 7, -100, 100)], [i32(21)], { op: 'max', outer: 3, len: 33, inner: 7 });
  await c.parity('argmax of -Infinity and NaN only', 'argmax', [new Float32Array([-Infinity, -Infinity, NaN, -Infinity])], [i32(1)], {
    outer: 1,
    len: 4,
    inner: 1,
  });
}

async function matmuls(c: Cases): Promise<void> {
  const shapes: [number, number, number, number][] = [
    [1, 1, 1, 1],
    [1, 7, 33, 1],
    [2, 33, 7, 5],
    [1, 65, 130, 17],
    [1, 7, 5, 1025],
  ];
  for (const [batch, M, N, K] of shapes) {
    // NN and TT: both transpose branches; each variant is a WGSL compile of seconds in SwiftShader
    for (const [transA, transB] of [
      [false, false],
      [true, true],
    ]) {
      for (const bcast of batch > 1 ? [false, true] : [false]) {
        const p = { batch, M, N, K, transA, transB, aBatchStride: M * K, bBatchStride: bcast ? 0 : K * N };
        // a length-K dot product of normal inputs: sum |a_k b_k| is about 2K/pi
        await c.parity(
          `matmul b${batch} ${M}x${N}x${K} ${transA ? 'T' : 'N'}${transB ? 'T' : 'N'}${bcast ? ' bcast' : ''}`,
          'matmul',
          [c.randn(batch * M * K), c.randn((bcast ? 1 : batch) * K * N)],
          [f32(batch * M * N)],
          p,
          Math.max(1, (2 * K) / Math.PI),
        );
      }
    }
  }
}

async function indexing(c: Cases): Promise<void> {
  for (const [n, rows, cols] of [
    [1, 1, 1],
    [7, 5, 33],
    [1025, 33, 7],
  ]) {
    const idx = c.randi(n, 0, rows);
    await c.parity(`gather ${n}x${rows}x${cols}`, 'gather', [c.randn(rows * cols), idx], [f32(n * cols)], { n, rows, cols });
    await c.parity(
      `scatter_add ${n}x${rows}x${cols}`,
      'scatter_add',
      [c.randn(n * cols), idx],
      [f32(rows * cols)],
      { n, rows, cols },
      Math.sqrt(n / rows),
    );
    await c.parity(`onehot ${n}x${rows}`, 'onehot', [c.randi(n, -1, rows + 1)], [f32(n * rows)], { n, depth: rows });
  }
}

async function fused(c: Cases): Promise<void> {
  for (const [rows, cols] of [
    [1, 1],
    [7, 33],
    [3, 1025],
  ]) {
    for (const log of [false, true]) {
      const x = c.randn(rows * cols, (v) => 3 * v);
      const y = await c.parity(`softmax${log ? ' log' : ''} ${rows}x${cols}`, 'softmax', [x], [f32(rows * cols)], { rows, cols, log });
      if (!y) continue;
      await c.parity(
        `softmax_bwd${log ? ' log' : ''} ${rows}x${cols}`,
        'softmax_bwd',
        [y[0], c.randn(rows * cols)],
        [f32(rows * cols)],
        { rows, cols, log },
        Math.sqrt(cols),
      );
    }
    // some targets ignored, the rest in range
    const targets = c.randi(rows, 0, cols);
    if (rows > 1) targets[1] = -100;
    const logits = c.randn(rows * cols, (v) => 3 * v);
    await c.parity(
      `cross_entropy ${rows}x${cols}`,
      'cross_entropy',
      [logits, targets],
      [f32(rows)],
      { rows, cols, ignoreIndex: -100 },
      Math.log(cols) + 1,
    );
    await c.parity(`cross_entropy_bwd ${rows}x${cols}`, 'cross_entropy_bwd', [logits, targets, c.randn(rows)], [f32(rows * cols)], {
      rows,
      cols,
      ignoreIndex: -100,
    });
    const xr = c.randn(rows * cols),
      w = c.randn(cols);
    const fwd = await c.parity(`rmsnorm ${rows}x${cols}`, 'rmsnorm', [xr, w], [f32(rows * cols), f32(rows)], { rows, cols, eps: 1e-5 });
    if (fwd) {
      await c.parity(
        `rmsnorm_bwd ${rows}x${cols}`,
        'rmsnorm_bwd',
        [xr, w, fwd[1], c.randn(rows * cols)],
        [f32(rows * cols), f32(cols)],
        { rows, cols },
        [Math.sqrt(cols), Math.sqrt(rows)],
      );
    }
  }
  for (const [batch, T, C, K] of [
    [1, 1, 3, 4],
    [2, 33, 7, 4],
    [1, 130, 16, 3],
  ]) {
    for (const hasBias of [true, false]) {
      const p = { batch, T, C, K, hasBias };
      const x = c.randn(batch * T * C),
        w = c.randn(C * K);
      await c.parity(
        `conv1d b${batch} T${T} C${C} K${K}${hasBias ? ' bias' : ''}`,
        'conv1d',
        hasBias ? [x, w, c.randn(C)] : [x, w],
        [f32(batch * T * C)],
        p,
        Math.sqrt(K),
      );
      const outs = hasBias ? [f32(batch * T * C), f32(C * K), f32(C)] : [f32(batch * T * C), f32(C * K)];
      await c.parity(
        `conv1d_bwd b${batch} T${T} C${C} K${K}${hasBias ? ' bias' : ''}`,
        'conv1d_bwd',
        [x, w, c.randn(batch * T * C)],
        outs,
        p,
        [Math.sqrt(K), Math.sqrt(batch * T), Math.sqrt(batch * T)],
      );
    }
  }
  for (const [rows, cols, k] of [
    [1, 1, 1],
    [7, 33, 5],
    [2, 1025, 17],
    [3, 7, 7],
  ]) {
    // few distinct values: ties, which must keep the lower index first
    await c.parity(`topk ${rows}x${cols} k${k}`, 'topk', [c.randn(rows * cols, (v) => Math.round(v * 3))], [f32(rows * k), i32(rows * k)], {
      rows,
      cols,
      k,
    });
  }
}

function scanInputs(c: Cases, p: ScanParams): TypedArray[] {
  const { batch, T, E, N } = p;
  const ins: TypedArray[] = [
    c.randn(batch * T * E), // x
    p.deltaSoftplus ? c.randn(batch * T * E) : c.randn(batch * T * E, (v) => 0.5 * Math.abs(v) + 0.01), // delta
    c.randn(E * N, (v) => -Math.exp(0.5 * v)), // A < 0
    c.randn(batch * T * N),
    c.randn(batch * T * N), // B, C
  ];
  if (p.hasD) ins.push(c.randn(E));
  if (p.hasZ) ins.push(c.randn(batch * T * E));
  if (p.hasH0) ins.push(c.randn(batch * E * N));
  if (p.hasDeltaBias) ins.push(c.randn(E, (v) => 0.5 * v));
  return ins;
}

async function scans(c: Cases): Promise<void> {
  const all = { hasD: true, hasZ: true, hasH0: true, hasDeltaBias: true, deltaSoftplus: true };
  const none = { hasD: false, hasZ: false, hasH0: false, hasDeltaBias: false, deltaSoftplus: false };
  const model = { hasD: true, hasZ: true, hasH0: false, hasDeltaBias: true, deltaSoftplus: true };
  const configs: [string, ScanParams][] = [
    ['all flags', { batch: 2, T: 33, E: 7, N: 5, ...all, saveStates: true }],
    ['no flags', { batch: 1, T: 1, E: 3, N: 16, ...none, saveStates: false }],
    ['model flags', { batch: 1, T: 130, E: 16, N: 16, ...model, saveStates: false }],
  ];
  for (const [label, p] of configs) {
    const { batch, T, E, N } = p;
    const ins = scanInputs(c, p);
    const outs = [f32(batch * T * E), f32(batch * E * N)];
    if (p.saveStates) outs.push(f32(batch * T * E * N));
    const name = `${label} b${batch} T${T} E${E} N${N}`;
    await c.parity(`scan ${name}`, 'scan', ins, outs, p, [Math.sqrt(N), 1, 1]);
    for (const [hasDhT, hasDhs] of [
      [false, false],
      [true, p.saveStates],
    ] as const) {
      const bwdIns = [...ins, c.randn(batch * T * E)];
      if (hasDhT) bwdIns.push(c.randn(batch * E * N));
      if (hasDhs) bwdIns.push(c.randn(batch * T * E * N));
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
      await c.parity(
        `scan_bwd ${name}${hasDhT ? ' dhT' : ''}${hasDhs ? ' dhs' : ''}`,
        'scan_bwd',
        bwdIns,
        grads.map((g) => g[0]),
        { ...p, hasDhT, hasDhs },
        grads.map((g) => Math.sqrt(g[1])),
      );
    }
  }
}

/**
 * Every case, in kernel order; `only` restricts to some kernels (the others run on the CPU alone
 * and are not reported). `makeGpu` is called for the first case and again after each case that
 * failed on the device.
 */
export async function runKernelCases(makeGpu: () => Promise<Backend>, cpu: Backend, only?: readonly KernelName[]): Promise<CaseResult[]> {
  const c = new Cases(makeGpu, cpu, only);
  for (const group of [elementwise, reductions, matmuls, indexing, fused, scans]) await group(c);
  return c.results;
}
