// The fused WGSL kernels (softmax, cross-entropy, RMSNorm, conv1d, top-k, selective scan) against
// the CPU kernels on seeded random inputs of awkward sizes, then gradient parity of small functions
// through autograd on both backends.
//
// Outputs are poisoned first (NaN, or a sentinel for int32), so an element a kernel fails to write
// fails the test. Agreement: |gpu - cpu| <= tol * (|cpu| + 1e-2 * max|cpu|): relative per element,
// with a floor of 1% of the tensor's largest magnitude so that an element that cancels to near zero
// is judged against the scale of its tensor. tol = 1e-5 unless a test states why it is looser.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import * as mi from '../../../engine/index.ts';
import type { TypedArray } from '../../../engine/dtype.ts';
import type { KernelName, KernelParams, ScanParams } from '../../../engine/kernels.ts';
import { f32, runKernel, type OutSpec } from '../../helpers/kernel-run.ts';
import { getWebGpu } from '../../helpers/webgpu.ts';

const gpu = await getWebGpu();
const cpu = mi.cpuBackend();
const Fused = suite('webgpu fused kernels vs cpu');
const TOL = 1e-5;

function assertClose(got: ArrayLike<number>, want: ArrayLike<number>, what: string, tol = TOL): void {
  assert.is(got.length, want.length, `${what}: length`);
  let scale = 0;
  for (let i = 0; i < want.length; i++) scale = Math.max(scale, Math.abs(want[i]));
  for (let i = 0; i < want.length; i++) {
    const err = Math.abs(got[i] - want[i]);
    if (!(err <= tol * (Math.abs(want[i]) + 1e-2 * scale))) {
      assert.unreachable(`${what}: element ${i} is ${got[i]}, cpu ${want[i]} (tolerance ${tol})`);
    }
  }
}

/** Runs the kernel on both backends (GPU outputs poisoned) and compares every output. */
async function parity<K extends KernelName>(
  kernel: K,
  inputs: TypedArray[],
  outs: OutSpec[],
  params: KernelParams[K],
  what: string,
  tol = TOL,
): Promise<void> {
  const want = await runKernel(cpu, kernel, inputs, outs, params);
  const got = await runKernel(gpu!, kernel, inputs, outs, params);
  outs.forEach((o, i) => {
    if (o.dtype === 'int32') assert.equal([...got[i]], [...want[i]], `${what}: int32 output ${i}`);
    else assertClose(got[i], want[i], `${what} output ${i}`, tol);
  });
}

const rng = new mi.Rng('webgpu-fused');
const randn = (n: number, std = 1, mean = 0) => Float32Array.from({ length: n }, () => mean + std * rng.normal());

const ROW_SHAPES = [
  [1, 1],
  [7, 33],
  [3, 1025],
  [33, 7],
  [1025, 7],
];

Fused('softmax, log-softmax and their backward', async () => {
  for (const [rows, cols] of ROW_SHAPES)
    for (const log of [false, true]) {
      const x = randn(rows * cols, 3),
        dy = randn(rows * cols);
      const p = { rows, cols, log };
      await parity('softmax', [x], [f32(rows * cols)], p, `softmax ${rows}x${cols} log=${log}`);
      const [y] = await runKernel(cpu, 'softmax', [x], [f32(rows * cols)], p);
      // dx = y (dy - sum(dy y)) subtracts two numbers of the size of dy: an element where they nearly
      // cancel keeps only float32's absolute accuracy (~1e-7 |dy|), so 1e-4 relative here
      await parity('softmax_bwd', [y, dy], [f32(rows * cols)], p, `softmax_bwd ${rows}x${cols} log=${log}`, 1e-4);
    }
});

Fused('cross-entropy and its backward, with ignored targets', async () => {
  for (const [rows, cols] of ROW_SHAPES) {
    const x = randn(rows * cols, 3),
      g = randn(rows);
    const targets = Int32Array.from({ length: rows }, (_, r) => (r % 4 === 1 ? -100 : rng.int(0, cols)));
    const p = { rows, cols, ignoreIndex: -100 };
    await parity('cross_entropy', [x, targets], [f32(rows)], p, `cross_entropy ${rows}x${cols}`);
    // at the target dx = (p - 1) g: when p is near 1 the difference keeps float32's absolute
    // accuracy of p (~1e-7), not its relative one, so 1e-4 relative here
    await parity('cross_entropy_bwd', [x, targets, g], [f32(rows * cols)], p, `cross_entropy_bwd ${rows}x${cols}`, 1e-4);
  }
});

Fused('rmsnorm and its backward (dw summed over rows in two passes)', async () => {
  for (const [rows, cols] of ROW_SHAPES) {
    const x = randn(rows * cols),
      w = randn(cols),
      dy = randn(rows * cols);
    const p = { rows, cols, eps: 1e-5 };
    await parity('rmsnorm', [x, w], [f32(rows * cols), f32(rows)], p, `rmsnorm ${rows}x${cols}`);
    const [, rstd] = await runKernel(cpu, 'rmsnorm', [x, w], [f32(rows * cols), f32(rows)], p);
    // With one column dx = r w dy - x c is a difference of two nearly equal terms (exactly
    // w dy eps / (x^2 + eps)^1.5): float32 keeps about 1e-7 of the terms, 1e-3 of the result.
    const tol = cols === 1 ? 1e-2 : TOL;
    await parity('rmsnorm_bwd', [x, w, rstd, dy], [f32(rows * cols), f32(cols)], { rows, cols }, `rmsnorm_bwd ${rows}x${cols}`, tol);
  }
});

Fused('causal conv1d and its backward (dw, dbias reduced over batch*T without atomics)', async () => {
  for (const [batch, T, C, K, hasBias] of [
    [1, 1, 1, 4, true],
    [2, 7, 33, 4, false],
    [3, 33, 7, 3, true],
    [2, 1025, 5, 4, true],
  ] as const) {
    const x = randn(batch * T * C),
      w = randn(C * K),
      bias = randn(C),
      dy = randn(batch * T * C);
    const p = { batch, T, C, K, hasBias };
    const what = `conv1d ${batch}x${T}x${C} K=${K} bias=${hasBias}`;
    await parity('conv1d', hasBias ? [x, w, bias] : [x, w], [f32(x.length)], p, what);
    const outs = [f32(x.length), f32(C * K)];
    if (hasBias) outs.push(f32(C));
    await parity('conv1d_bwd', [x, w, dy], outs, p, `${what} bwd`);
  }
});

Fused('topk: descending values, int32 indices, ties to the lower index, NaN largest', async () => {
  for (const [rows, cols] of ROW_SHAPES) {
    // half-integers: many ties
    const x = Float32Array.from({ length: rows * cols }, () => Math.round(rng.normal() * 3) / 2);
    if (x.length > 3) x[2] = NaN;
    for (const k of new Set([1, Math.min(5, cols), cols])) {
      const outs: OutSpec[] = [f32(rows * k), { dtype: 'int32', size: rows * k }];
      const want = await runKernel(cpu, 'topk', [x], outs, { rows, cols, k });
      const got = await runKernel(gpu!, 'topk', [x], outs, { rows, cols, k });
      assert.equal([...got[1]], [...want[1]], `topk ${rows}x${cols} k=${k} indices`);
      assert.ok(
        got[0].every((v, i) => Object.is(v, want[0][i])),
        `topk ${rows}x${cols} k=${k} values`,
      );
    }
  }
});

// ---- selective scan ---------------------------------------------------------------------------
const FLAGS = ['hasD', 'hasZ', 'hasH0', 'hasDeltaBias', 'deltaSoftplus'] as const;
function flagsOf(mask: number): Omit<ScanParams, 'batch' | 'T' | 'E' | 'N' | 'saveStates'> {
  return Object.fromEntries(FLAGS.map((f, i) => [f, !!(mask & (1 << i))])) as Omit<ScanParams, 'batch' | 'T' | 'E' | 'N' | 'saveStates'>;
}

function scanInputs(p: ScanParams): TypedArray[] {
  const { batch, T, E, N } = p;
  const x = randn(batch * T * E);
  // a raw delta around -1 for the softplus, else a positive step
  const delta = p.deltaSoftplus
    ? randn(batch * T * E, 1, -1)
    : Float32Array.from({ length: batch * T * E }, () => 0.05 + 0.2 * rng.uniform());
  const A = Float32Array.from({ length: E * N }, () => -0.2 - rng.uniform());
  const ins = [x, delta, A, randn(batch * T * N), randn(batch * T * N)];
  if (p.hasD) ins.push(randn(E));
  if (p.hasZ) ins.push(randn(batch * T * E));
  if (p.hasH0) ins.push(randn(batch * E * N));
  // without the softplus the bias must keep the step positive, or the recurrence grows without bound
  if (p.hasDeltaBias) ins.push(p.deltaSoftplus ? randn(E, 0.3) : Float32Array.from({ length: E }, () => 0.1 * rng.uniform()));
  return ins;
}

// Scans are long float32 recurrences; the CPU keeps its states in float64. 1e-4 covers the
// rounding accumulated over T = 1025 steps (decays exp(dt A) in (0.5, 1) keep it from growing).
const SCAN_TOL = 1e-4;
const SCAN_SHAPES = [
  [1, 1, 1, 1],
  [2, 7, 33, 7],
  [1, 33, 5, 16],
];
/** The long scan runs with every flag off and every flag on (each new flag set compiles new shaders). */
const LONG_SCAN = [1, 1025, 3, 4];
// every flag on and off, plus all on / all off (all 32 combinations run in the gradient test)
const SCAN_MASKS = [0, 31, 0b10101, 0b01010, 0b00110, 0b11001];

Fused('selective scan forward (chunked) and backward: kernel parity, every flag', async () => {
  const cases = SCAN_SHAPES.flatMap((s) => SCAN_MASKS.map((m, i) => [s, m, i] as const));
  cases.push([LONG_SCAN, 0, 0], [LONG_SCAN, 31, 1]);
  for (const [[batch, T, E, N], mask, mi_] of cases) {
    const p: ScanParams = { batch, T, E, N, ...flagsOf(mask), saveStates: mi_ % 2 === 0 };
    const ins = scanInputs(p);
    const what = `scan ${batch}x${T}x${E}x${N} flags=${mask.toString(2)} states=${p.saveStates}`;
    const outs = [f32(batch * T * E), f32(batch * E * N)];
    if (p.saveStates) outs.push(f32(batch * T * E * N));
    await parity('scan', ins, outs, p, what, SCAN_TOL);
    const hasDhT = mi_ % 2 === 1,
      hasDhs = mi_ % 3 === 0;
    const bins = [...ins, randn(batch * T * E)];
    if (hasDhT) bins.push(randn(batch * E * N));
    if (hasDhs) bins.push(randn(batch * T * E * N));
    await parity(
      'scan_bwd',
      bins,
      ins.map((a) => f32(a.length)),
      { ...p, saveStates: false, hasDhT, hasDhs },
      `${what} bwd dhT=${hasDhT} dhs=${hasDhs}`,
      SCAN_TOL,
    );
  }
});

// ---- gradient parity through autograd -----------------------------------------------------------
/** mi.grad of f on both backends, from the same float32 inputs. */
async function gradParity(
  what: string,
  f: (...xs: mi.Tensor[]) => mi.Tensor,
  inputs: Array<{ data: TypedArray; shape: number[] }>,
  tol = TOL,
): Promise<void> {
  const results: TypedArray[][] = [];
  for (const backend of [cpu, gpu!]) {
    const grads = await mi.tidyAsync(async () => {
      const xs = inputs.map((i) => mi.tensor(i.data, i.shape, { backend, dtype: i.data instanceof Int32Array ? 'int32' : 'float32' }));
      const gs = mi.grad(f)(...xs);
      return Promise.all(gs.map((g) => g.data()));
    });
    results.push(grads);
  }
  results[0].forEach((want, i) => assertClose(results[1][i], want, `${what}: gradient ${i}`, tol));
}

const t = (data: TypedArray, shape: number[]) => ({ data, shape });

Fused('gradient parity: softmax, logSoftmax, crossEntropy, rmsNorm, conv1dCausal, topk', async () => {
  const [R, V] = [5, 33];
  const w = t(randn(R * V), [R, V]);
  const x = t(randn(R * V, 2), [R, V]);
  // weighting by w makes every output element's cotangent different
  await gradParity('softmax', (a, b) => mi.sum(mi.mul(mi.softmax(a), b)), [x, w]);
  await gradParity('logSoftmax', (a, b) => mi.sum(mi.mul(mi.logSoftmax(a), b)), [x, w]);
  const targets = Int32Array.from({ length: R }, (_, r) => (r === 2 ? -100 : rng.int(0, V)));
  await gradParity('crossEntropy', (a) => mi.crossEntropy(a, mi.tensor(targets, [R], { dtype: 'int32', backend: a.backend })), [x]);
  await gradParity('rmsNorm', (a, g, b) => mi.sum(mi.mul(mi.rmsNorm(a, g), b)), [x, t(randn(V), [V]), w]);
  const [B, T, C, K] = [2, 7, 5, 4];
  await gradParity('conv1dCausal', (a, k, b, c) => mi.sum(mi.mul(mi.conv1dCausal(a, k, b), c)), [
    t(randn(B * T * C), [B, T, C]),
    t(randn(C * K), [C, K]),
    t(randn(C), [C]),
    t(randn(B * T * C), [B, T, C]),
  ]);
  await gradParity('topk values', (a, b) => mi.sum(mi.mul(mi.topk(a, 4).values, b)), [x, t(randn(R * 4), [R, 4])]);
});

Fused('gradient parity: selectiveScan, all 32 flag combinations (with and without returned states)', async () => {
  const [batch, T, E, N] = [2, 9, 3, 4];
  for (let mask = 0; mask < 32; mask++) {
    const flags = flagsOf(mask);
    const returnStates = mask % 3 === 0;
    const p: ScanParams = { batch, T, E, N, ...flags, saveStates: returnStates };
    const ins = scanInputs(p);
    const shapes = [
      [batch, T, E],
      [batch, T, E],
      [E, N],
      [batch, T, N],
      [batch, T, N],
    ];
    if (p.hasD) shapes.push([E]);
    if (p.hasZ) shapes.push([batch, T, E]);
    if (p.hasH0) shapes.push([batch, E, N]);
    if (p.hasDeltaBias) shapes.push([E]);
    const wy = t(randn(batch * T * E), [batch, T, E]),
      wh = t(randn(batch * E * N), [batch, E, N]);
    const ws = t(randn(batch * T * E * N), [batch, T, E, N]);
    const f = (...xs: mi.Tensor[]) => {
      const [x, delta, A, Bm, Cm, ...rest] = xs.slice(0, ins.length);
      const [gy, gh, gs] = xs.slice(ins.length);
      const opt = [...rest];
      const out = mi.selectiveScan({
        x,
        delta,
        A,
        B: Bm,
        C: Cm,
        D: p.hasD ? opt.shift() : null,
        z: p.hasZ ? opt.shift() : null,
        h0: p.hasH0 ? opt.shift() : null,
        deltaBias: p.hasDeltaBias ? opt.shift() : null,
        deltaSoftplus: p.deltaSoftplus,
        returnStates,
      });
      let loss = mi.add(mi.sum(mi.mul(out.y, gy)), mi.sum(mi.mul(out.hT, gh)));
      if (out.hs) loss = mi.add(loss, mi.sum(mi.mul(out.hs, gs)));
      return loss;
    };
    await gradParity(
      `selectiveScan flags=${mask.toString(2)} states=${returnStates}`,
      f,
      [...ins.map((d, i) => t(d, shapes[i])), wy, wh, ws],
      SCAN_TOL,
    );
  }
});

if (gpu) Fused.run();
else console.log('webgpu fused: skipped (no adapter)');
