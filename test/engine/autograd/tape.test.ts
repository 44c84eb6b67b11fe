// engine/autograd/tape.ts: backward's errors name what is wrong; gradients accumulate where a tensor
// is used twice and across backward calls; cotangents passed through or owned by the caller are
// not freed; int32 outputs never require gradients.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as mi from '../../../engine/index.ts';
import { f64, throwsNaming, type Mismatch } from '../../helpers/ops.ts';

// ---- errors ---------------------------------------------------------------------------------------
const mismatches: Mismatch[] = [
  [
    'backward of a non-scalar without a cotangent',
    () => mi.backward(mi.mul(f64([2, 2]), mi.tensor([1, 2], [2], { dtype: 'float64', requiresGrad: true }))),
    'backward',
    '[2,2]',
  ],
  [
    'backward with a cotangent of the wrong shape',
    () => mi.backwardFrom(mi.mul(mi.tensor([1, 2], [2], { dtype: 'float64', requiresGrad: true }), 2), f64([3])),
    'backward',
    '[3]',
    '[2]',
  ],
  ['backward of something with no gradient', () => mi.backward(mi.sum(f64([2]))), 'backward'],
];
for (const [name, fn, ...fragments] of mismatches) test(`error: ${name}`, () => mi.tidy(() => throwsNaming(fn, ...fragments)));

// ---- the tape ------------------------------------------------------------------------------------
test('backward accumulates when a tensor is used twice, and across backward calls', () => {
  const x = mi.tensor([1, -2, 3], [3], { dtype: 'float64', requiresGrad: true });
  // y = sum(x * x + 3x): dy/dx = 2x + 3
  mi.backward(mi.sum(mi.add(mi.mul(x, x), mi.mul(x, 3))));
  assert.equal([...x.grad!.dataSync()], [5, -1, 9]);
  mi.backward(mi.sum(x)); // .grad accumulates like PyTorch's
  assert.equal([...x.grad!.dataSync()], [6, 0, 10]);
});

test('a cotangent passed through unchanged to two inputs is not freed under either', () => {
  const a = mi.tensor([1, 2], [2], { dtype: 'float64', requiresGrad: true });
  const b = mi.mul(a, 2);
  const c = mi.mul(a, 3);
  // d/da sum((b + c) + b) = 2 + 3 + 2
  mi.backward(mi.sum(mi.add(mi.add(b, c), b)));
  assert.equal([...a.grad!.dataSync()], [7, 7]);
});

test('backward does not free a caller-owned cotangent', () => {
  const x = mi.tensor([1, 2], [2], { dtype: 'float64', requiresGrad: true });
  const seed = mi.tensor([0.5, 2], [2], { dtype: 'float64' });
  mi.backward(mi.add(x, 1), seed);
  assert.not.ok(seed.disposed);
  mi.backward(mi.add(x, 1), seed);
  assert.equal([...x.grad!.dataSync()], [1, 4]);
  assert.equal([...seed.dataSync()], [0.5, 2]);
});

test('int32 outputs never require gradients', () => {
  const x = mi.tensor([3, 1, 2], [3], { dtype: 'float64', requiresGrad: true });
  const { values, indices } = mi.topk(x, 2);
  assert.ok(values.requiresGrad);
  assert.not.ok(indices.requiresGrad);
  assert.is(mi.argmax(x).dtype, 'int32');
});

test.run();
