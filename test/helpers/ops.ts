// Shared by the per-op test files test/engine/X.test.ts: the float dtypes and their tolerances,
// closeness against plain-JS references, small tensor builders, a plain-JS reduction, and the check
// that an error names what went wrong.
import * as assert from 'uvu/assert';
import * as mi from '../../engine/index.ts';
import type { DType } from '../../engine/dtype.ts';
import type { Tensor } from '../../engine/tensor.ts';

export const FLOATS: DType[] = ['float64', 'float32'];
/** float64 results must match to rounding; float32 ones to float32 rounding. */
export const rtolOf = (d: DType) => (d === 'float64' ? 1e-12 : 2e-6);

export function assertClose(what: string, got: ArrayLike<number>, want: ArrayLike<number>, rtol: number, atol = 0): void {
  assert.is(got.length, want.length, `${what}: length`);
  for (let i = 0; i < want.length; i++) {
    const g = got[i],
      w = want[i];
    if (Number.isNaN(w) ? !Number.isNaN(g) : !(Math.abs(g - w) <= rtol * Math.abs(w) + atol)) {
      assert.unreachable(`${what}: element ${i}: got ${g}, want ${w}`);
    }
  }
}

/** A normal random tensor of rng's stream: rnd(shape, dtype, std). */
export const randnOf =
  (rng: mi.Rng) =>
  (shape: number[], dtype: DType, std = 1): Tensor =>
    mi.randn(shape, rng, { dtype, std });
export const vals = (t: Tensor) => [...t.dataSync()];

export const f32 = (shape: number[], v = 1) => mi.full(shape, v);
export const f64 = (shape: number[], v = 1) => mi.full(shape, v, { dtype: 'float64' });
export const i32 = (values: number[]) => mi.tensor(values, [values.length], { dtype: 'int32' });

/** fn throws, and the message contains every fragment (literal text). */
export function throwsNaming(fn: () => unknown, ...fragments: string[]): void {
  let msg: string | null = null;
  try {
    fn();
  } catch (e) {
    msg = (e as Error).message;
  }
  assert.ok(msg !== null, `expected an error naming ${fragments.join(', ')}`);
  for (const f of fragments) assert.ok(msg!.includes(f), `error "${msg}" does not mention "${f}"`);
}

/** [name, what to run, fragments the error must contain] */
export type Mismatch = [string, () => unknown, ...string[]];

/** Reduce x [3,4,2] over `axes` in plain JS: returns values in row-major order of the kept axes. */
export function reduceRef(x: Tensor, axes: number[], f: (vs: number[]) => number): number[] {
  const s = x.shape,
    d = x.dataSync();
  const out = new Map<string, number[]>();
  for (let i = 0; i < s[0]; i++)
    for (let j = 0; j < s[1]; j++)
      for (let k = 0; k < s[2]; k++) {
        const key = [i, j, k].map((v, a) => (axes.includes(a) ? 0 : v)).join(',');
        if (!out.has(key)) out.set(key, []);
        out.get(key)!.push(d[(i * s[1] + j) * s[2] + k]);
      }
  return [...out.values()].map(f);
}
