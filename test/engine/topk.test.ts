// engine/ops/topk.ts: values and indices (descending, ties, NaN), the error for k > cols, and the
// gradient checks of the values (test/engine/grad-cases.ts, float64 finite differences).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as mi from '../../engine/index.ts';
import { gradcheckPoisoned } from '../helpers/gradcheck.ts';
import { f32, throwsNaming, vals, type Mismatch } from '../helpers/ops.ts';
import { GRAD_CASES } from './grad-cases.ts';

// ---- forward values -------------------------------------------------------------------------------
test('topk: descending, ties keep the lower index first, NaN sorts as largest', () =>
  mi.tidy(() => {
    const x = mi.tensor(
      [
        [2, 7, 7, 1, 7],
        [0, -1, 4, 4, 3],
      ],
      [2, 5],
    );
    const { values, indices } = mi.topk(x, 3);
    assert.equal(values.shape, [2, 3]);
    assert.equal(vals(values), [7, 7, 7, 4, 4, 3]);
    assert.equal(vals(indices), [1, 2, 4, 2, 3, 4]);
    const n = mi.topk(mi.tensor([1, NaN, 3], [3]), 2);
    assert.ok(Number.isNaN(vals(n.values)[0]));
    assert.equal(vals(n.indices), [1, 2]);
  }));

// ---- errors ---------------------------------------------------------------------------------------
const mismatches: Mismatch[] = [['topk k', () => mi.topk(f32([2, 3]), 4), 'topk', 'k=4', '[2,3]']];
for (const [name, fn, ...fragments] of mismatches) test(`error: ${name}`, () => mi.tidy(() => throwsNaming(fn, ...fragments)));

// ---- gradients ------------------------------------------------------------------------------------
for (const [name, f, inputs] of GRAD_CASES.topk)
  test(`gradcheck: ${name}`, () => {
    gradcheckPoisoned(name, f, inputs);
  });

test.run();
