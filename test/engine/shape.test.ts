// engine/ops/shape.ts: reshape, permute, transpose, slice, concat, stack, expand and split move the
// right elements; their errors name the op and the shapes; and the gradient checks
// (test/engine/grad-cases.ts, float64 finite differences).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as mi from '../../engine/index.ts';
import { gradcheckPoisoned } from '../helpers/gradcheck.ts';
import { f32, f64, throwsNaming, vals, type Mismatch } from '../helpers/ops.ts';
import { GRAD_CASES } from './grad-cases.ts';

// ---- forward values -------------------------------------------------------------------------------
test('shape ops move the right elements', () =>
  mi.tidy(() => {
    const x = mi.tensor([0, 1, 2, 3, 4, 5], [2, 3]);
    assert.equal(vals(mi.transpose(x)), [0, 3, 1, 4, 2, 5]);
    assert.equal(vals(mi.permute(mi.reshape(x, [1, 2, 3]), [2, 0, 1])), [0, 3, 1, 4, 2, 5]);
    assert.equal(vals(mi.slice(x, 1, 1)), [1, 2, 4, 5]);
    assert.equal(vals(mi.concat([x, mi.slice(x, 1, 0, 1)], 1)), [0, 1, 2, 0, 3, 4, 5, 3]);
    assert.equal(vals(mi.stack([x, x], 2)), [0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5]);
    assert.equal(vals(mi.expand(mi.tensor([1, 2], [2, 1]), [2, 2, 3])), [1, 1, 1, 2, 2, 2, 1, 1, 1, 2, 2, 2]);
    assert.equal(
      mi.split(x, [1, 2], 1).map((p) => vals(p)),
      [
        [0, 3],
        [1, 2, 4, 5],
      ],
    );
  }));

// ---- errors ---------------------------------------------------------------------------------------
const mismatches: Mismatch[] = [
  ['concat shapes', () => mi.concat([f32([2, 3]), f32([2, 4])], 0), 'concat', '[2,3]', '[2,4]', 'axis 0'],
  ['concat dtypes', () => mi.concat([f32([2, 3]), f64([2, 3])], 0), 'concat', 'float32[2,3]', 'float64[2,3]'],
  ['concat ranks', () => mi.concat([f32([2, 3]), f32([2, 3, 1])], 1), 'concat', '[2,3]', '[2,3,1]'],
  ['reshape', () => mi.reshape(f32([2, 3]), [4]), 'reshape', '[2,3]', '[4]'],
  ['reshape with -1', () => mi.reshape(f32([2, 3]), [4, -1]), 'reshape', '[2,3]', '[4,-1]'],
  ['expand', () => mi.expand(f32([2, 3]), [4, 3]), 'expand', '[2,3]', '[4,3]'],
  ['slice range', () => mi.slice(f32([2, 3]), 1, 1, 5), 'slice', '[2,3]'],
  ['split sizes', () => mi.split(f32([2, 3]), [1, 1], 1), 'split', '[2,3]'],
  ['permute', () => mi.permute(f32([2, 3]), [0, 0]), 'permute', '[2,3]'],
  ['squeeze non-1 axis', () => mi.squeeze(f32([2, 3]), 0), 'squeeze', '[2,3]'],
];
for (const [name, fn, ...fragments] of mismatches) test(`error: ${name}`, () => mi.tidy(() => throwsNaming(fn, ...fragments)));

// ---- gradients ------------------------------------------------------------------------------------
for (const [name, f, inputs] of GRAD_CASES.shape)
  test(`gradcheck: ${name}`, () => {
    gradcheckPoisoned(name, f, inputs);
  });

test.run();
