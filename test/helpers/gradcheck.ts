// One gradient check for every differentiable op: the engine's reverse-mode gradient of
// sum(f(...xs) * w), for a fixed random cotangent w, against central finite differences in float64,
// element by element. The cases live in test/engine/grad-cases.ts, one list per op file; each
// test/engine/X.test.ts runs its list through gradcheckPoisoned.
//
// Finite differences use Richardson extrapolation of two central differences (steps h and h/2),
// whose error is O(h^4): with h = 1e-3 it is ~1e-12 for smooth functions, far below the 1e-6
// tolerance, while the step stays large enough that float64 rounding of the loss does not matter.
// Inputs near a kink (abs, relu, clamp, max) must therefore keep 2h away from it; the input
// builders below (awayFrom, distinct) do that.
import * as mi from '../../engine/index.ts';
import { CpuBackend, type CpuBuffer } from '../../engine/cpu/backend.ts';
import type { DType } from '../../engine/dtype.ts';
import { cpuView, type Tensor } from '../../engine/tensor.ts';
import { shapeStr, sizeOf, stridesOf } from '../../engine/shape.ts';

/** How to build one input. A bare shape means standard-normal float64 values. */
export interface InputSpec {
  shape: number[];
  /** explicit values (row-major); otherwise drawn by `draw` */
  values?: number[];
  draw?: (rng: mi.Rng, i: number) => number;
  dtype?: 'float64' | 'int32';
  /** differentiate with respect to this input (default: float inputs yes, int32 never) */
  grad?: boolean;
}
export type Input = number[] | InputSpec;

export const normal = (shape: number[], std = 1): InputSpec => ({ shape, draw: (r) => std * r.normal() });
export const uniform = (shape: number[], lo: number, hi: number): InputSpec => ({ shape, draw: (r) => lo + (hi - lo) * r.uniform() });
/** Positive values in [lo, hi): for log, sqrt, pow bases, step sizes. */
export const positive = (shape: number[], lo = 0.5, hi = 2): InputSpec => uniform(shape, lo, hi);
export const negative = (shape: number[], lo = -2, hi = -0.5): InputSpec => uniform(shape, lo, hi);
/** Normal values at least `gap` away from every point in `kinks` (relu, abs, clamp bounds). */
export const awayFrom = (shape: number[], kinks: number[], gap = 0.05): InputSpec => ({
  shape,
  draw: (r) => {
    for (;;) {
      const v = r.normal();
      if (kinks.every((k) => Math.abs(v - k) >= gap)) return v;
    }
  },
});
/**
 * Distinct multiples of 0.1 in shuffled order, plus `offset`: no ties for max/min/topk. Two inputs
 * with offsets 0 and 0.05 never tie with each other either.
 */
export function distinct(shape: number[], offset = 0): InputSpec {
  const n = sizeOf(shape);
  let perm: number[] = [];
  return {
    shape,
    draw: (r, i) => {
      if (i === 0) perm = r.permutation(n); // draws come in order, so each build gets its own
      return (perm[i] - Math.floor(n / 2)) * 0.1 + offset;
    },
  };
}
/** int32 indices in [0, n) (never differentiated). */
export const indices = (shape: number[], n: number): InputSpec => ({ shape, dtype: 'int32', draw: (r) => r.int(0, n) });
export const given = (shape: number[], values: number[], opts: { dtype?: 'float64' | 'int32'; grad?: boolean } = {}): InputSpec => ({
  shape,
  values,
  ...opts,
});
/** A float input that is not differentiated (masks, conditions). */
export const constant = (spec: Input): InputSpec => ({ ...asSpec(spec), grad: false });

export interface GradcheckOptions {
  seed?: string | number;
  /** finite-difference step (default 1e-3; see the header) */
  h?: number;
  /** largest allowed relative error (default 1e-6) */
  tol?: number;
}

export interface GradcheckResult {
  maxRelErr: number;
  checked: number;
}

export function asSpec(s: Input): InputSpec {
  return Array.isArray(s) ? normal(s) : s;
}

/**
 * The derivative of every output of `f` with respect to element `i` of `data` (the values `f`
 * reads), by the Richardson extrapolation above: (4 D(h/2) - D(h)) / 3, where D(s) is f with data[i]
 * raised by s, minus f with it lowered by s, over 2s. data[i] is put back after.
 */
export function centralDifference(data: { [i: number]: number }, i: number, h: number, f: () => ArrayLike<number>): Float64Array {
  const x0 = data[i];
  const central = (s: number) => {
    data[i] = x0 + s;
    const up = f();
    data[i] = x0 - s;
    const down = f();
    data[i] = x0;
    return Float64Array.from(up, (u, k) => (u - down[k]) / (2 * s));
  };
  const d1 = central(h),
    d2 = central(h / 2);
  return d2.map((v, k) => (4 * v - d1[k]) / 3);
}

/**
 * Checks d/dx sum(f(...xs) * w) for every float input x that is differentiated; throws an Error
 * naming the case, the input, the element (flat and multi-index) and both values on a mismatch.
 * The relative error is |a - n| / max(|a|, |n|, 1e-3 * max(1, largest |n| of that input)).
 */
export function gradcheck(name: string, f: (...xs: Tensor[]) => Tensor, inputs: Input[], opts: GradcheckOptions = {}): GradcheckResult {
  const rng = new mi.Rng(opts.seed ?? `gradcheck/${name}`);
  const h = opts.h ?? 1e-3;
  const tol = opts.tol ?? 1e-6;
  return mi.tidy(() => {
    const specs = inputs.map(asSpec);
    const xs = specs.map((s, k) => buildInput(s, rng.fork(`input${k}`), name, k));
    const wrt = specs.map((s, k) => xs[k].dtype !== 'int32' && s.grad !== false);
    if (!wrt.some(Boolean)) throw new Error(`gradcheck ${name}: no input to differentiate`);

    // analytic: one backward pass from sum(f * w)
    const leaves = xs.map((x, k) => {
      if (!wrt[k]) return x;
      const l = mi.detach(x);
      l.requiresGrad = true;
      return l;
    });
    const out = f(...leaves);
    if (out.dtype !== 'float64') throw new Error(`gradcheck ${name}: f returned ${out.dtype}; build it from float64 ops`);
    const w = mi.randn(out.shape, rng.fork('cotangent'), { dtype: 'float64' });
    const grads = mi.backwardFrom(mi.sum(mi.mul(out, w)));

    const loss = () => mi.noGrad(() => mi.tidy(() => mi.sum(mi.mul(f(...xs), w)).dataSync()[0]));
    let maxRelErr = 0,
      checked = 0;
    xs.forEach((x, k) => {
      if (!wrt[k]) return;
      const g = grads.get(leaves[k]);
      const analytic = g ? g.dataSync() : new Float64Array(x.size);
      const data = cpuView(x);
      const numeric = new Float64Array(x.size);
      for (let i = 0; i < x.size; i++) numeric[i] = centralDifference(data, i, h, () => [loss()])[0];
      let scale = 1;
      for (const v of numeric) scale = Math.max(scale, Math.abs(v));
      for (let i = 0; i < x.size; i++) {
        const a = analytic[i],
          n = numeric[i];
        const err = Math.abs(a - n) / Math.max(Math.abs(a), Math.abs(n), 1e-3 * scale);
        if (!(err <= tol)) {
          throw new Error(
            `gradcheck ${name}: input ${k} ${shapeStr(x.shape)} element ${i} ${indexStr(i, x.shape)}: ` +
              `analytic ${a}, numeric ${n} (relative error ${err.toExponential(2)} > ${tol})`,
          );
        }
        maxRelErr = Math.max(maxRelErr, err);
        checked++;
      }
    });
    return { maxRelErr, checked };
  });
}

// A CPU backend whose new buffers hold NaN (int32: an out-of-range index), so a kernel that leaves
// part of an output unwritten (the kernel contract forbids it; the plain CPU backend would hide it
// behind zeroed arrays) fails the check instead of passing by luck.
class PoisonedCpu extends CpuBackend {
  override alloc(dtype: DType, size: number): CpuBuffer {
    const b = super.alloc(dtype, size);
    b.data!.fill(dtype === 'int32' ? 0x3fffffff : NaN);
    return b;
  }
}
let poisoned: PoisonedCpu | null = null;

/** gradcheck on a CPU backend whose new buffers are poisoned (see PoisonedCpu). */
export function gradcheckPoisoned(
  name: string,
  f: (...xs: Tensor[]) => Tensor,
  inputs: Input[],
  opts: GradcheckOptions = {},
): GradcheckResult {
  poisoned ??= new PoisonedCpu();
  const prev = mi.getBackend();
  mi.setBackend(poisoned);
  try {
    return gradcheck(name, f, inputs, opts);
  } finally {
    mi.setBackend(prev);
  }
}

/**
 * Input k of case `name`, drawn from `rng` (the fork gradcheck uses: `rng.fork(`input${k}`)` of
 * `new mi.Rng(`gradcheck/${name}`)`). Float inputs get `floatDType` (the WebGPU parity test builds
 * the same values in float32), on the current backend.
 */
export function buildInput(s: InputSpec, rng: mi.Rng, name: string, k: number, floatDType: 'float32' | 'float64' = 'float64'): Tensor {
  const n = sizeOf(s.shape);
  const dtype = s.dtype === 'int32' ? 'int32' : floatDType;
  let values: number[];
  if (s.values) {
    if (s.values.length !== n)
      throw new Error(`gradcheck ${name}: input ${k} has ${s.values.length} values for shape ${shapeStr(s.shape)}`);
    values = s.values;
  } else {
    const draw = s.draw ?? ((r: mi.Rng) => r.normal());
    values = Array.from({ length: n }, (_, i) => draw(rng, i));
  }
  return mi.tensor(values, s.shape, { dtype });
}

function indexStr(flat: number, shape: readonly number[]): string {
  const st = stridesOf(shape);
  return `[${st.map((s, d) => Math.floor(flat / s) % shape[d]).join(',')}]`;
}
