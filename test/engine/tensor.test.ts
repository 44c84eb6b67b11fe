// engine/tensor.ts: a tensor's gradient on the CPU backend; disposed tensors and views.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as mi from '../../engine/index.ts';
import { f32, throwsNaming } from '../helpers/ops.ts';

test('add and backward on the CPU backend', () => {
  const a = mi.tensor([1, 2, 3], undefined, { dtype: 'float64', requiresGrad: true });
  const y = mi.sum(mi.mul(a, a));
  mi.backward(y);
  assert.equal([...a.grad!.dataSync()], [2, 4, 6]);
});

// ---- disposal ----------------------------------------------------------------------------------
test('disposed tensors say so, with their shape, wherever they are used', () => {
  const t = f32([2, 3]);
  t.name = 'weights';
  t.dispose();
  assert.ok(t.disposed);
  throwsNaming(() => t.dataSync(), 'disposed', '[2,3]', 'weights');
  throwsNaming(() => mi.add(t, 1), 'disposed', '[2,3]');
  throwsNaming(() => mi.reshape(t, [6]), 'disposed');
  t.dispose(); // a second dispose is harmless
});

test('a view keeps the buffer alive after its source is disposed', () => {
  const t = mi.tensor([1, 2, 3, 4], [2, 2]);
  const v = mi.reshape(t, [4]);
  t.dispose();
  assert.equal([...v.dataSync()], [1, 2, 3, 4]);
  v.dispose();
});

test.run();
