// engine/ops/indexing.ts: embedding, indexSelect, scatterAdd and oneHot pick and sum the right rows;
// float indices and out-of-range indices are errors naming the value and its position; and the
// gradient checks (test/engine/grad-cases.ts, float64 finite differences).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as mi from '../../engine/index.ts';
import { gradcheckPoisoned } from '../helpers/gradcheck.ts';
import { f32, i32, throwsNaming, vals, type Mismatch } from '../helpers/ops.ts';
import { GRAD_CASES } from './grad-cases.ts';

// ---- forward values -------------------------------------------------------------------------------
test('embedding, indexSelect and scatterAdd pick and sum the right rows', () =>
  mi.tidy(() => {
    const table = mi.tensor(
      [
        [0, 1],
        [10, 11],
        [20, 21],
      ],
      [3, 2],
    );
    const idx = mi.tensor(
      [
        [2, 0],
        [2, 1],
      ],
      [2, 2],
      { dtype: 'int32' },
    );
    const e = mi.embedding(table, idx);
    assert.equal(e.shape, [2, 2, 2]);
    assert.equal(vals(e), [20, 21, 0, 1, 20, 21, 10, 11]);
    assert.equal(vals(mi.indexSelect(table, 1, mi.tensor([1, 1, 0], [3], { dtype: 'int32' }))), [1, 1, 0, 11, 11, 10, 21, 21, 20]);
    const g = mi.tensor(
      [
        [1, 2],
        [3, 4],
        [5, 6],
      ],
      [3, 2],
    );
    assert.equal(vals(mi.scatterAdd(g, mi.tensor([2, 0, 2], [3], { dtype: 'int32' }), [4, 2])), [3, 4, 0, 0, 6, 8, 0, 0]);
  }));

test('oneHot skips out-of-range', () =>
  mi.tidy(() => {
    assert.equal(vals(mi.oneHot(mi.tensor([2, 0, 5, -1], [4], { dtype: 'int32' }), 3)), [0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0]);
  }));

// ---- errors ---------------------------------------------------------------------------------------
const mismatches: Mismatch[] = [['embedding float indices', () => mi.embedding(f32([4, 2]), f32([3])), 'embedding', 'int32', 'float32[3]']];
for (const [name, fn, ...fragments] of mismatches) test(`error: ${name}`, () => mi.tidy(() => throwsNaming(fn, ...fragments)));

test('out-of-range indices name the value and its position', () =>
  mi.tidy(() => {
    throwsNaming(() => mi.embedding(f32([5, 2]), i32([0, 1, 7, 2])), 'index 7', 'position 2', '[0, 5)');
    throwsNaming(() => mi.embedding(f32([5, 2]), i32([-1])), 'index -1', 'position 0');
    throwsNaming(() => mi.indexSelect(f32([2, 3]), 1, i32([0, 3])), 'index 3', 'position 1', '[0, 3)');
    throwsNaming(() => mi.scatterAdd(f32([2, 2]), i32([0, 4]), [3, 2]), 'index 4', 'position 1');
  }));

// ---- gradients ------------------------------------------------------------------------------------
for (const [name, f, inputs] of GRAD_CASES.indexing)
  test(`gradcheck: ${name}`, () => {
    gradcheckPoisoned(name, f, inputs);
  });

test.run();
