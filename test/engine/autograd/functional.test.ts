// jacobian() against finite differences and against one VJP per output row, in default and
// batched mode, on a small non-linear function in float64; grad, vjp and detach.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as mi from '../../../engine/index.ts';
import type { Tensor } from '../../../engine/tensor.ts';
import { cpuView } from '../../../engine/tensor.ts';
import { centralDifference } from '../../helpers/gradcheck.ts';

const f64 = { dtype: 'float64' as const };
const rng = new mi.Rng('jacobian-test');
const W = mi.keep(mi.randn([3, 4], rng.fork('W'), f64));

/** [b, 2, 3] -> [b, 2, 4]: tanh(x W) scaled by each example's own squared norm (mixes all of x). */
const f = (x: Tensor) => mi.mul(mi.tanh(mi.matmul(x, W)), mi.sum(mi.square(x), [1, 2], true));

/** Richardson-extrapolated central differences: [...out.shape, ...x.shape]. */
function finiteDiffJacobian(fn: (x: Tensor) => Tensor, x: Tensor): { J: Float64Array; outSize: number } {
  const data = cpuView(mi.detach(x));
  const evalAt = () => mi.noGrad(() => mi.tidy(() => fn(x).dataSync()));
  const outSize = evalAt().length;
  const J = new Float64Array(outSize * x.size);
  for (let j = 0; j < x.size; j++) {
    const d = centralDifference(data, j, 1e-3, evalAt);
    for (let i = 0; i < outSize; i++) J[i * x.size + j] = d[i];
  }
  return { J, outSize };
}

function assertClose(what: string, got: ArrayLike<number>, want: ArrayLike<number>, tol: number): void {
  assert.is(got.length, want.length, `${what}: length`);
  for (let i = 0; i < got.length; i++) {
    if (!(Math.abs(got[i] - want[i]) <= tol * Math.max(1, Math.abs(want[i])))) {
      assert.unreachable(`${what}: element ${i}: ${got[i]} vs ${want[i]}`);
    }
  }
}

test('default mode: shape [...out, ...x], equals finite differences and row-by-row VJPs', () => {
  mi.tidy(() => {
    const x = mi.randn([1, 2, 3], rng.fork('x1'), f64);
    const J = mi.jacobian(f, x);
    assert.equal(J.shape, [1, 2, 4, 1, 2, 3]);
    const fd = finiteDiffJacobian(f, x);
    assertClose('J vs finite differences', J.dataSync(), fd.J, 1e-8);
    const [out, pull] = mi.vjp(f, x);
    const rows = new Float64Array(out.size * x.size);
    for (let i = 0; i < out.size; i++) {
      const e = new Float64Array(out.size);
      e[i] = 1;
      rows.set(pull(mi.tensor(e, out.shape))[0].dataSync(), i * x.size);
    }
    assert.equal([...J.dataSync()], [...rows], 'J vs row-by-row VJP (same arithmetic, same bits)');
  });
});

test('default mode on a 2-D input with a scalar output: shape of x', () => {
  mi.tidy(() => {
    const x = mi.randn([2, 3], rng.fork('x2'), f64);
    const g = (t: Tensor) => mi.logsumexp(mi.matmul(t, W));
    const J = mi.jacobian(g, x);
    assert.equal(J.shape, [2, 3]);
    assertClose('J vs grad', J.dataSync(), mi.grad(g)(x)[0].dataSync(), 1e-12);
    assertClose('J vs finite differences', J.dataSync(), finiteDiffJacobian(g, x).J, 1e-8);
  });
});

test('batched mode: shape [...out without batch, ...x], equals the default mode, for several chunk sizes', () => {
  mi.tidy(() => {
    const x = mi.randn([1, 2, 3], rng.fork('x3'), f64);
    const full = mi.jacobian(f, x);
    const fd = finiteDiffJacobian(f, x);
    for (const chunk of [1, 3, 8, 256]) {
      const J = mi.jacobian(f, x, { batched: true, chunk });
      assert.equal(J.shape, [2, 4, 1, 2, 3], `chunk ${chunk}: shape`);
      assertClose(`chunk ${chunk} vs default mode`, J.dataSync(), full.dataSync(), 1e-12);
      assertClose(`chunk ${chunk} vs finite differences`, J.dataSync(), fd.J, 1e-8);
    }
  });
});

test('jacobian disposes everything but its result', () => {
  const x = mi.randn([1, 2, 3], rng.fork('x4'), f64);
  const before = mi.liveTensorCount();
  const J1 = mi.jacobian(f, x);
  const J2 = mi.jacobian(f, x, { batched: true, chunk: 3 });
  assert.is(mi.liveTensorCount(), before + 2);
  J1.dispose();
  J2.dispose();
  x.dispose();
});

test('batched mode rejects x without a leading axis of 1, and f that is not batch-polymorphic', () => {
  mi.tidy(() => {
    assert.throws(() => mi.jacobian(f, mi.randn([2, 2, 3], rng, f64), { batched: true }), /leading axis of 1, got \[2,2,3\]/);
    // sums over the batch axis: the copies are not independent
    const mixing = (t: Tensor) => mi.sum(mi.tanh(t), 0, true);
    assert.throws(() => mi.jacobian(mixing, mi.randn([1, 3], rng, f64), { batched: true, chunk: 3 }), /not batch-polymorphic/);
  });
});

test('grad, vjp and jacobian record their own forward pass inside noGrad', () => {
  mi.tidy(() => {
    const x = mi.randn([1, 2, 3], rng.fork('x5'), f64);
    const want = mi.jacobian(f, x);
    const got = mi.noGrad(() => mi.jacobian(f, x));
    const gotBatched = mi.noGrad(() => mi.jacobian(f, x, { batched: true }));
    assert.equal([...got.dataSync()], [...want.dataSync()]);
    assert.equal([...gotBatched.dataSync()], [...want.dataSync()]);
    const g = mi.noGrad(() => mi.grad((t) => mi.sum(mi.square(t)))(x)[0]);
    assertClose(
      'grad inside noGrad',
      g.dataSync(),
      x.dataSync().map((v) => 2 * v),
      1e-15,
    );
    assert.not.ok(
      mi.noGrad(() => {
        mi.jacobian(f, x);
        return mi.isGradEnabled();
      }),
      'noGrad is still in force after jacobian returns',
    );
  });
});

test('detach stops gradients', () => {
  const x = mi.tensor([1, 2], [2], { dtype: 'float64', requiresGrad: true });
  const d = mi.detach(mi.mul(x, 5));
  assert.not.ok(d.requiresGrad);
  assert.is(d.node, null);
  // y = sum(x * detach(5x)): dy/dx = 5x, not 10x
  mi.backward(mi.sum(mi.mul(x, d)));
  assert.equal([...x.grad!.dataSync()], [5, 10]);
});

test.run();
