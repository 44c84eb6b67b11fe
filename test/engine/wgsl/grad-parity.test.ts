// Gradients on WebGPU against the CPU backend's for every case of the op table
// (test/engine/grad-cases.ts, the one test/engine/X.test.ts checks in float64 for each op file X): the same inputs,
// built in float32, the gradient of sum(f(...xs) * w) for a fixed random cotangent w, pulled back
// with mi.vjp on each backend. Int32 inputs (indices, targets) and inputs marked constant (masks)
// are passed as constants, not differentiated.
//
// Agreement: |gpu - cpu| <= tol * max|cpu| over each gradient, tol = 1e-4 unless LOOSER says why.
// Both sides round in float32, in different orders (tree reductions on the GPU, running sums on the
// CPU), so elementwise relative error is meaningless where a gradient element cancels to near zero;
// the scale of the whole gradient is what float32 rounding is relative to.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import * as mi from '../../../engine/index.ts';
import type { Backend } from '../../../engine/backend.ts';
import type { TypedArray } from '../../../engine/dtype.ts';
import type { ScanParams } from '../../../engine/kernels.ts';
import { shapeStr } from '../../../engine/shape.ts';
import { asSpec, buildInput } from '../../helpers/gradcheck.ts';
import { ALL_GRAD_CASES, type GradCase } from '../grad-cases.ts';
import { flagsOf, Gen, scanInputs } from '../kernel-cases.ts';
import { worstRelativeError, worstRelativeToMax } from '../../helpers/kernel-run.ts';
import { getWebGpu } from '../../helpers/webgpu.ts';

const gpu = await getWebGpu();
const cpu = mi.cpuBackend();
const Parity = suite('webgpu gradients vs cpu, every op of the table');
const TOL = 1e-4;

/** Cases that cannot run in float32, with the reason (checked to still exist in the table). */
const SKIPPED: Record<string, string> = {
  'cast f64 -> f64': 'casts to float64, and WebGPU has no float64 tensors (the case is about the float64 cast)',
};
/** Cases with a tolerance looser than TOL, with the reason. None needed so far. */
const LOOSER: Record<string, { tol: number; why: string }> = {};

interface Grads {
  shapes: number[][];
  inputIndex: number[];
  data: TypedArray[];
  backends: string[];
}

/**
 * The gradients of sum(f(...xs) * w) with respect to every differentiated input of a case, on
 * `backend`. Inputs and w come from seeds named after the case, so both backends get the same
 * float32 values.
 */
async function gradsOn(backend: Backend, [name, f, inputs]: GradCase): Promise<Grads> {
  const prev = mi.getBackend();
  mi.setBackend(backend); // inputs, number operands and scalars made inside f land here
  try {
    return await mi.tidyAsync(async () => {
      const rng = new mi.Rng(`gradcheck/${name}`);
      const specs = inputs.map(asSpec);
      const xs = specs.map((s, k) => buildInput(s, rng.fork(`input${k}`), name, k, 'float32'));
      const inputIndex = xs.flatMap((x, k) => (x.dtype !== 'int32' && specs[k].grad !== false ? [k] : []));
      if (!inputIndex.length) throw new Error(`grad parity ${name}: no input to differentiate`);
      const withConstants = (...leaves: mi.Tensor[]) =>
        f(
          ...xs.map((x, k) => {
            const j = inputIndex.indexOf(k);
            return j < 0 ? x : leaves[j];
          }),
        );
      const [out, pullBack] = mi.vjp(withConstants, ...inputIndex.map((k) => xs[k]));
      const wRng = new mi.Rng(`grad-parity/${name}`).fork('cotangent');
      const w = mi.tensor(
        Float32Array.from({ length: out.size }, () => wRng.normal()),
        out.shape,
        { backend },
      );
      const grads = pullBack(w);
      return {
        shapes: grads.map((g) => [...g.shape]),
        inputIndex,
        data: await Promise.all(grads.map((g) => g.data())),
        backends: grads.map((g) => g.backend.name),
      };
    });
  } finally {
    mi.setBackend(prev);
  }
}

/** Throws naming the case, the input and the worst element when gpu and cpu differ by more than tol * max|cpu|. */
function compareGrads(name: string, got: Grads, want: Grads, tol: number): void {
  // An input may rightly get a zero gradient (C of a scan whose cotangent is on hT only), and the
  // GPU's must then be exactly zero too; but a case whose gradients are all zero compares nothing.
  if (want.data.every((w) => w.every((v) => v === 0)))
    throw new Error(`grad parity ${name}: every CPU gradient is zero, so parity proves nothing`);
  want.data.forEach((w, j) => {
    const k = want.inputIndex[j],
      g = got.data[j];
    const what = `grad parity ${name}: input ${k} ${shapeStr(want.shapes[j])}`;
    if (shapeStr(got.shapes[j]) !== shapeStr(want.shapes[j])) throw new Error(`${what}: gpu gradient has shape ${shapeStr(got.shapes[j])}`);
    let scale = 0;
    for (const v of w) scale = Math.max(scale, Math.abs(v));
    if (Number.isNaN(scale)) throw new Error(`${what}: the CPU gradient has NaN`);
    let worst = 0,
      at = 0;
    for (let i = 0; i < w.length; i++) {
      const err = Math.abs(g[i] - w[i]);
      if (!(err <= worst)) {
        worst = err;
        at = i;
      } // NaN always becomes the worst
      if (Number.isNaN(err)) break;
    }
    if (!(worst <= tol * scale)) {
      throw new Error(
        `${what}: element ${at} is ${g[at]} on WebGPU, ${w[at]} on the CPU ` +
          `(|difference| ${worst.toExponential(2)} > ${tol} * max|cpu| ${scale.toExponential(2)})`,
      );
    }
  });
}

for (const c of ALL_GRAD_CASES) {
  const [name] = c;
  if (SKIPPED[name]) continue;
  Parity(name, async () => {
    const want = await gradsOn(cpu, c);
    const got = await gradsOn(gpu!, c);
    // the GPU run must really have run there (an op that silently fell back would prove nothing)
    assert.ok(
      got.backends.every((b) => b === gpu!.name),
      `${name}: gradients on ${got.backends.join(', ')}, not ${gpu!.name}`,
    );
    assert.equal(got.inputIndex, want.inputIndex);
    compareGrads(name, got, want, LOOSER[name]?.tol ?? TOL);
  });
}

Parity('every skipped or loosened case is in the table, and every other case ran above', () => {
  const names = new Set(ALL_GRAD_CASES.map(([n]) => n));
  for (const n of [...Object.keys(SKIPPED), ...Object.keys(LOOSER)])
    assert.ok(names.has(n), `"${n}" is not a case of test/engine/grad-cases.ts`);
  assert.ok(ALL_GRAD_CASES.length - Object.keys(SKIPPED).length > 100, `only ${ALL_GRAD_CASES.length} cases`);
});

Parity('the comparison fails on a gradient off by 2e-4 of its scale, naming case, input and element', () => {
  const want: Grads = { shapes: [[3]], inputIndex: [1], data: [new Float32Array([1, -2, 0.5])], backends: ['cpu'] };
  const got: Grads = { ...want, data: [new Float32Array([1, -2, 0.5 + 4e-4])] };
  assert.throws(() => compareGrads('demo', got, want, TOL), /grad parity demo: input 1 \[3\]: element 2/);
  const nan: Grads = { ...want, data: [new Float32Array([NaN, -2, 0.5])] };
  assert.throws(() => compareGrads('demo', nan, want, TOL), /element 0 is NaN/);
  compareGrads('demo', want, want, TOL); // and passes on equal gradients
});

// ---- composed functions through autograd ----------------------------------------------------------
// mi.grad of small functions on both backends from the same float32 inputs. Agreement: relative
// per element, |gpu - cpu| <= 1e-5 (|cpu| + 1) for the first, and |gpu - cpu| <= tol (|cpu| +
// 1e-2 max|cpu|) for the fused ops (tol = 1e-5, 1e-4 for the scan's long float32 recurrences).
const Composed = suite('webgpu gradients vs cpu, composed functions');
const TOL_COMPOSED = 1e-5;
// Scans are long float32 recurrences; the CPU keeps its states in float64 (as in test/engine/kernel-cases.ts).
const SCAN_TOL = 1e-4;
const rng = new mi.Rng('webgpu-grad-composed');
const randn = (n: number, f: (x: number) => number = (x) => x) => Float32Array.from({ length: n }, () => f(rng.normal()));

/** float32 agreement within 1e-5 relative, NaN where the CPU has NaN. */
function compare(what: string, got: TypedArray, want: TypedArray, scale: number): void {
  assert.is(got.length, want.length, `${what}: length`);
  const { worst, at } = worstRelativeError(got, want, scale);
  assert.ok(worst <= 1e-5, `${what}: relative error ${worst} at ${at} (gpu ${got[at]}, cpu ${want[at]})`);
}

function assertClose(got: TypedArray, want: TypedArray, what: string, tol = TOL_COMPOSED): void {
  assert.is(got.length, want.length, `${what}: length`);
  const r = worstRelativeToMax(got, want, tol);
  if (!r.ok) assert.unreachable(`${what}: element ${r.at} is ${got[r.at]}, cpu ${want[r.at]} (tolerance ${tol})`);
}

/** mi.grad of f on both backends, from the same float32 inputs. */
async function gradParity(
  what: string,
  f: (...xs: mi.Tensor[]) => mi.Tensor,
  inputs: Array<{ data: TypedArray; shape: number[] }>,
  tol = TOL_COMPOSED,
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

Composed('gradients on WebGPU match the CPU (elementwise, reduce, matmul, shape ops)', async () => {
  const f = (x: mi.Tensor, w: mi.Tensor, b: mi.Tensor) => {
    const h = mi.tanh(mi.add(mi.matmul(x, w), b)); // [7, 5]
    const t = mi.transpose(mi.mul(h, mi.sigmoid(h))); // [5, 7]
    const s = mi.slice(mi.concat([t, mi.exp(mi.neg(mi.square(t)))], 0), 0, 3, 8); // [5, 7]
    const m = mi.max(s, 1); // [5]
    return mi.add(mi.mean(mi.sum(mi.square(s), 0)), mi.sum(mi.div(m, mi.add(mi.abs(m), 1))));
  };
  const xs = [randn(7 * 33), randn(33 * 5, (v) => v * 0.2), randn(5)];
  const shapes = [[7, 33], [33, 5], [5]];
  const run = async (backend: Backend) => {
    const args = xs.map((a, i) => mi.tensor(a, shapes[i], { backend }));
    const gs = mi.grad(f)(...args);
    return Promise.all(gs.map((g) => g.data()));
  };
  const want = await run(cpu);
  const got = await run(gpu!);
  got.forEach((g, i) => compare(`gradient ${i}`, g, want[i], 1));
});

Composed('gradient parity: softmax, logSoftmax, crossEntropy, rmsNorm, conv1dCausal, topk', async () => {
  const [R, V] = [5, 33];
  const w = t(randn(R * V), [R, V]);
  const x = t(
    randn(R * V, (v) => 2 * v),
    [R, V],
  );
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

Composed('gradient parity: selectiveScan, all 32 flag combinations (with and without returned states)', async () => {
  const [batch, T, E, N] = [2, 9, 3, 4];
  for (let mask = 0; mask < 32; mask++) {
    const flags = flagsOf(mask);
    const returnStates = mask % 3 === 0;
    const p: ScanParams = { batch, T, E, N, ...flags, saveStates: returnStates };
    const ins = scanInputs(new Gen(`webgpu-grad-composed/scan/${mask}`), p);
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

if (gpu) {
  Parity.run();
  Composed.run();
} else console.log('webgpu grad parity: skipped (no adapter)');
