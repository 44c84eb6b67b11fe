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
import { shapeStr } from '../../../engine/shape.ts';
import { asSpec, buildInput } from '../../helpers/gradcheck.ts';
import { ALL_GRAD_CASES, type GradCase } from '../grad-cases.ts';
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

if (gpu) Parity.run();
else console.log('webgpu grad parity: skipped (no adapter)');
