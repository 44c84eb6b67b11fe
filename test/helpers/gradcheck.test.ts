// The gradient check itself (test/helpers/gradcheck.ts) must be able to fail: an op whose recorded
// gradient is off by a factor 1 + 1e-4 must be caught, and the message must name the case, the
// input and the element; a gradient that never arrives is caught; the check leaves no tensors.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as mi from '../../engine/index.ts';
import type { Tensor } from '../../engine/tensor.ts';
import { gradcheck } from './gradcheck.ts';

test('gradcheck catches a slightly wrong gradient and names the element', () => {
  const badExp = (x: Tensor) => {
    const y = mi.noGrad(() => mi.exp(x));
    mi.record('badExp', [x], [y], ([g]) => [mi.mul(g!, mi.affine(y, 1 + 1e-4, 0))]);
    return y;
  };
  assert.throws(() => gradcheck('badExp', badExp, [[2, 3]]), /gradcheck badExp: input 0 \[2,3\] element 0 \[0,0\]: analytic/);
});

test('gradcheck catches a gradient that never arrives', () => {
  const detached = (x: Tensor, y: Tensor) => mi.add(mi.detach(x), mi.mul(y, 2));
  assert.throws(() => gradcheck('detached', detached, [[3], [3]]), /input 0 \[3\] element 0/);
});

test('gradcheck leaves no tensors behind', () => {
  const before = mi.liveTensorCount();
  gradcheck('leak check', (a, b) => mi.matmul(a, b), [
    [2, 3],
    [3, 2],
  ]);
  assert.is(mi.liveTensorCount(), before);
});

test.run();
