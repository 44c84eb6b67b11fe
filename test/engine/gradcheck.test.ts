// Every differentiable op of engine/ops (the table in test/helpers/op-cases.ts), checked against
// finite differences in float64 (see test/helpers/gradcheck.ts for the method).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as mi from '../../engine/index.ts';
import type { Tensor } from '../../engine/tensor.ts';
import type { DType } from '../../engine/dtype.ts';
import { CpuBackend, type CpuBuffer } from '../../engine/cpu/backend.ts';
import { gradcheck } from '../helpers/gradcheck.ts';
import { opCases } from './op-cases.ts';

// Every case runs on a CPU backend whose new buffers hold NaN (int32: an out-of-range index), so a
// kernel that leaves part of an output unwritten (the kernel contract forbids it; the plain CPU
// backend would hide it behind zeroed arrays) fails the check instead of passing by luck.
class PoisonedCpu extends CpuBackend {
  override alloc(dtype: DType, size: number): CpuBuffer {
    const b = super.alloc(dtype, size);
    b.data!.fill(dtype === 'int32' ? 0x3fffffff : NaN);
    return b;
  }
}
const poisoned = new PoisonedCpu();
function onPoisoned<T>(fn: () => T): T {
  const prev = mi.getBackend();
  mi.setBackend(poisoned);
  try {
    return fn();
  } finally {
    mi.setBackend(prev);
  }
}

for (const [name, f, inputs] of opCases)
  test(name, () => {
    onPoisoned(() => gradcheck(name, f, inputs));
  });

// The check itself must be able to fail: an op whose recorded gradient is off by a factor 1 + 1e-4
// must be caught, and the message must name the case, the input and the element.
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
