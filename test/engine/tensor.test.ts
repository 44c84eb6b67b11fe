import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as mi from '../../engine/index.ts';

test('add and backward on the CPU backend', () => {
  const a = mi.tensor([1, 2, 3], undefined, { dtype: 'float64', requiresGrad: true });
  const y = mi.sum(mi.mul(a, a));
  mi.backward(y);
  assert.equal([...a.grad!.dataSync()], [2, 4, 6]);
});

test.run();
