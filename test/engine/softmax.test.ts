// engine/ops/softmax.ts: softmax and logSoftmax along several axes, crossEntropy's reductions and
// ignore index, against plain-JS references (float64 and float32); the errors (shapes, dtypes, an
// out-of-range target); and the gradient checks (test/engine/grad-cases.ts, float64 finite differences).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as mi from '../../engine/index.ts';
import { gradcheckPoisoned } from '../helpers/gradcheck.ts';
import { assertClose, f32, FLOATS, i32, randnOf, reduceRef, throwsNaming, vals, type Mismatch } from '../helpers/ops.ts';
import { GRAD_CASES } from './grad-cases.ts';

const rnd = randnOf(new mi.Rng('ops-test/softmax'));

// ---- forward values -------------------------------------------------------------------------------
for (const dtype of FLOATS) {
  test(`softmax / logSoftmax ${dtype} along several axes`, () =>
    mi.tidy(() => {
      const x = rnd([3, 4, 2], dtype, 3);
      for (const axis of [0, 1, 2]) {
        const ref = (vs: number[]) => vs.map((v) => Math.exp(v) / vs.reduce((s, u) => s + Math.exp(u), 0));
        // expected: softmax along `axis` via the moved-axis layout of reduceRef
        const moved = mi.permute(x, [...[0, 1, 2].filter((a) => a !== axis), axis]);
        const want = reduceRef(moved, [], (vs) => vs[0]); // identity, row-major of moved
        const rows = want.length / x.shape[axis];
        const sm: number[] = [];
        for (let r = 0; r < rows; r++) sm.push(...ref(want.slice(r * x.shape[axis], (r + 1) * x.shape[axis])));
        const got = mi.permute(mi.softmax(x, axis), [...[0, 1, 2].filter((a) => a !== axis), axis]);
        assertClose(`softmax axis ${axis}`, got.dataSync(), sm, dtype === 'float64' ? 1e-13 : 2e-6, 1e-7);
        const gotLog = mi.permute(mi.logSoftmax(x, axis), [...[0, 1, 2].filter((a) => a !== axis), axis]);
        assertClose(`logSoftmax axis ${axis}`, gotLog.dataSync(), sm.map(Math.log), dtype === 'float64' ? 1e-12 : 2e-6, 1e-6);
      }
    }));
}

test('crossEntropy: none / sum / mean with the ignore index; all-ignored mean is 0, not NaN', () =>
  mi.tidy(() => {
    for (const dtype of FLOATS) {
      const logits = mi.tensor(
        [
          [1, 2, 3],
          [0, 0, 0],
          [5, -5, 0],
          [2, 2, 1],
        ],
        [4, 3],
        { dtype },
      );
      const targets = mi.tensor([2, -100, 0, 1], [4], { dtype: 'int32' });
      const lse = (r: number[]) => Math.log(r.reduce((s, v) => s + Math.exp(v), 0));
      const rows = [
        [1, 2, 3],
        [0, 0, 0],
        [5, -5, 0],
        [2, 2, 1],
      ];
      const want = [lse(rows[0]) - 3, 0, lse(rows[2]) - 5, lse(rows[3]) - 2];
      const tol = dtype === 'float64' ? 1e-14 : 1e-6;
      assertClose(`none ${dtype}`, vals(mi.crossEntropy(logits, targets, { reduction: 'none' })), want, tol);
      assertClose(`sum ${dtype}`, vals(mi.crossEntropy(logits, targets, { reduction: 'sum' })), [want[0] + want[2] + want[3]], tol);
      assertClose(`mean ${dtype}`, vals(mi.crossEntropy(logits, targets)), [(want[0] + want[2] + want[3]) / 3], tol);
      const allIgnored = mi.tensor([-100, -100], [2], { dtype: 'int32' });
      assert.equal(vals(mi.crossEntropy(mi.slice(logits, 0, 0, 2), allIgnored)), [0]);
    }
  }));

// ---- errors ---------------------------------------------------------------------------------------
const mismatches: Mismatch[] = [
  ['crossEntropy target shape', () => mi.crossEntropy(f32([2, 5]), i32([1, 2, 3])), 'crossEntropy', '[3]', '[2,5]'],
  ['crossEntropy float targets', () => mi.crossEntropy(f32([2, 5]), f32([2])), 'crossEntropy', 'float32[2]', '[2,5]'],
];
for (const [name, fn, ...fragments] of mismatches) test(`error: ${name}`, () => mi.tidy(() => throwsNaming(fn, ...fragments)));

test('an out-of-range target names the value and its row', () =>
  mi.tidy(() => {
    throwsNaming(() => mi.crossEntropy(f32([3, 4]), i32([0, 4, 1])), 'target 4', 'row 1', '[0, 4)');
  }));

// ---- gradients ------------------------------------------------------------------------------------
for (const [name, f, inputs] of GRAD_CASES.softmax)
  test(`gradcheck: ${name}`, () => {
    gradcheckPoisoned(name, f, inputs);
  });

test.run();
