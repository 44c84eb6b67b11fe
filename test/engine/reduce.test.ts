// engine/ops/reduce.ts: sum, mean, max, min and logsumexp against plain-JS references over single,
// non-contiguous and all axes (float64 and float32), logsumexp at extreme inputs, argmax ties; the
// errors; and the gradient checks (test/engine/grad-cases.ts, float64 finite differences).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as mi from '../../engine/index.ts';
import type { Tensor } from '../../engine/tensor.ts';
import { gradcheckPoisoned } from '../helpers/gradcheck.ts';
import { assertClose, f32, FLOATS, randnOf, reduceRef, throwsNaming, vals, type Mismatch } from '../helpers/ops.ts';
import { GRAD_CASES } from './grad-cases.ts';

const rnd = randnOf(new mi.Rng('ops-test/reduce'));

// ---- forward values -------------------------------------------------------------------------------
const reductions: [string, (x: Tensor, axes: number[], keep: boolean) => Tensor, (vs: number[]) => number][] = [
  ['sum', mi.sum, (vs) => vs.reduce((p, v) => p + v, 0)],
  ['mean', mi.mean, (vs) => vs.reduce((p, v) => p + v, 0) / vs.length],
  ['max', mi.max, (vs) => Math.max(...vs)],
  ['min', mi.min, (vs) => Math.min(...vs)],
  ['logsumexp', mi.logsumexp, (vs) => Math.log(vs.reduce((p, v) => p + Math.exp(v), 0))],
];
for (const dtype of FLOATS) {
  test(`reductions ${dtype} over single, non-contiguous and all axes, with keepdim`, () =>
    mi.tidy(() => {
      const x = rnd([3, 4, 2], dtype);
      for (const [name, op, ref] of reductions) {
        for (const axes of [[0], [1], [2], [0, 2], [0, 1], [0, 1, 2]]) {
          const y = op(x, axes, false);
          assert.equal(
            y.shape,
            x.shape.filter((_, i) => !axes.includes(i)),
            `${name} ${axes} shape`,
          );
          assertClose(`${name} ${dtype} axes ${axes}`, y.dataSync(), reduceRef(x, axes, ref), dtype === 'float64' ? 1e-13 : 3e-6, 1e-6);
          assert.equal(
            op(x, axes, true).shape,
            x.shape.map((d, i) => (axes.includes(i) ? 1 : d)),
            `${name} keepdim shape`,
          );
        }
      }
    }));
}

test('logsumexp does not overflow for large inputs', () =>
  mi.tidy(() => {
    const x = mi.tensor([1000, 1000, -1000], [3], { dtype: 'float32' });
    assertClose('lse', vals(mi.logsumexp(x)), [1000 + Math.log(2)], 1e-7);
    // rows that are all -inf, or hold +inf, must not become NaN through inf - inf
    const inf = mi.tensor([-Infinity, -Infinity, Infinity, 1, 0, -Infinity], [3, 2], { dtype: 'float64' });
    assert.equal(vals(mi.logsumexp(inf, 1)), [-Infinity, Infinity, 0]);
  }));

test('argmax: first index on ties, along any axis', () =>
  mi.tidy(() => {
    const x = mi.tensor(
      [
        [1, 3, 3],
        [5, 5, 0],
      ],
      [2, 3],
    );
    assert.equal(vals(mi.argmax(x)), [1, 0]);
    assert.equal(vals(mi.argmax(x, 0)), [1, 1, 0]);
    assert.equal(mi.argmax(x, 1, true).shape, [2, 1]);
    assert.is(mi.argmax(x).dtype, 'int32');
  }));

// ---- errors ---------------------------------------------------------------------------------------
const mismatches: Mismatch[] = [['axis out of range', () => mi.sum(f32([2, 3]), 2), 'sum', 'axis 2', 'rank 2']];
for (const [name, fn, ...fragments] of mismatches) test(`error: ${name}`, () => mi.tidy(() => throwsNaming(fn, ...fragments)));

// ---- gradients ------------------------------------------------------------------------------------
for (const [name, f, inputs] of GRAD_CASES.reduce)
  test(`gradcheck: ${name}`, () => {
    gradcheckPoisoned(name, f, inputs);
  });

test.run();
