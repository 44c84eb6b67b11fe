// engine/ops/elementwise.ts: forward values of the binary and unary ops, where and cast against
// plain-JS references (independent formulas, not the engine's elementwise table) in float64 and
// float32, with broadcasting and extreme inputs; the errors they give; and their gradient checks
// (test/engine/grad-cases.ts, float64 finite differences on a NaN-poisoned CPU backend).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as mi from '../../engine/index.ts';
import type { Tensor } from '../../engine/tensor.ts';
import { sizeOf, stridesOf } from '../../engine/shape.ts';
import { gradcheckPoisoned } from '../helpers/gradcheck.ts';
import { assertClose, f32, f64, FLOATS, i32, randnOf, rtolOf, throwsNaming, vals, type Mismatch } from '../helpers/ops.ts';
import { GRAD_CASES } from './grad-cases.ts';

const rnd = randnOf(new mi.Rng('ops-test/elementwise'));

/** numpy-broadcast a[i] op b[i] in plain JS. */
function broadcastRef(a: Tensor, b: Tensor, f: (x: number, y: number) => number): { shape: number[]; data: number[] } {
  const n = Math.max(a.rank, b.rank);
  const pad = (s: readonly number[]) => [...new Array(n - s.length).fill(1), ...s];
  const sa = pad(a.shape),
    sb = pad(b.shape);
  const shape = sa.map((d, i) => Math.max(d, sb[i]));
  const [da, db] = [a.dataSync(), b.dataSync()];
  const [ta, tb] = [stridesOf(sa), stridesOf(sb)];
  const data: number[] = [];
  const idx = new Array(n).fill(0);
  for (let k = 0; k < sizeOf(shape); k++) {
    let r = k;
    for (let d = n - 1; d >= 0; d--) {
      idx[d] = r % shape[d];
      r = Math.floor(r / shape[d]);
    }
    const ia = idx.reduce((s, v, d) => s + (sa[d] === 1 ? 0 : v * ta[d]), 0);
    const ib = idx.reduce((s, v, d) => s + (sb[d] === 1 ? 0 : v * tb[d]), 0);
    data.push(f(da[ia], db[ib]));
  }
  return { shape, data };
}

// ---- forward values -------------------------------------------------------------------------------
const binaryRefs: [string, (a: Tensor, b: Tensor) => Tensor, (x: number, y: number) => number][] = [
  ['add', mi.add, (x, y) => x + y],
  ['sub', mi.sub, (x, y) => x - y],
  ['mul', mi.mul, (x, y) => x * y],
  ['div', mi.div, (x, y) => x / y],
  ['maximum', mi.maximum, Math.max],
  ['minimum', mi.minimum, Math.min],
  ['gt', mi.gt, (x, y) => +(x > y)],
  ['le', mi.le, (x, y) => +(x <= y)],
  ['eq', mi.eq, (x, y) => +(x === y)],
];
for (const dtype of FLOATS) {
  for (const [name, op, ref] of binaryRefs) {
    test(`${name} ${dtype} with broadcasting [2,1,3] x [4,1] and 0-d`, () =>
      mi.tidy(() => {
        const a = rnd([2, 1, 3], dtype),
          b = rnd([4, 1], dtype);
        const want = broadcastRef(a, b, ref);
        const got = op(a, b);
        assert.equal(got.shape, want.shape);
        assertClose(
          name,
          got.dataSync(),
          Float64Array.from(want.data).map((v) => (dtype === 'float32' ? Math.fround(v) : v)),
          rtolOf(dtype),
        );
        const s = mi.scalar(0.5, { dtype });
        assertClose(`${name} with 0-d`, op(a, s).dataSync(), broadcastRef(a, s, ref).data, rtolOf(dtype));
      }));
  }
}

test('pow: positive bases, integral exponents of negative bases, NaN otherwise', () =>
  mi.tidy(() => {
    const a = mi.tensor([2, 0.5, -2, -2, -2, 0], [6], { dtype: 'float64' });
    const b = mi.tensor([3, -1, 3, 2, 0.5, 0], [6], { dtype: 'float64' });
    assertClose('pow', mi.pow(a, b).dataSync(), [8, 2, -8, 4, NaN, 1], 1e-15);
    assertClose('powScalar', mi.powScalar(mi.tensor([4, 9], [2], { dtype: 'float64' }), 1.5).dataSync(), [8, 27], 1e-15);
  }));

const unaryRefs: [string, (x: Tensor) => Tensor, (x: number) => number, 'any' | 'positive'][] = [
  ['neg', mi.neg, (x) => -x, 'any'],
  ['exp', mi.exp, (x) => Math.E ** x, 'any'],
  ['log', mi.log, (x) => Math.log(x), 'positive'],
  ['sqrt', mi.sqrt, (x) => x ** 0.5, 'positive'],
  ['rsqrt', mi.rsqrt, (x) => x ** -0.5, 'positive'],
  ['abs', mi.abs, (x) => (x < 0 ? -x : x), 'any'],
  ['square', mi.square, (x) => x ** 2, 'any'],
  ['relu', mi.relu, (x) => (x > 0 ? x : 0), 'any'],
  ['sigmoid', mi.sigmoid, (x) => 1 / (1 + Math.exp(-x)), 'any'],
  ['silu', mi.silu, (x) => x / (1 + Math.exp(-x)), 'any'],
  ['tanh', mi.tanh, (x) => (Math.exp(2 * x) - 1) / (Math.exp(2 * x) + 1), 'any'],
  ['softplus', mi.softplus, (x) => Math.log(1 + Math.exp(x)), 'any'],
  ['clamp', (x) => mi.clamp(x, -0.5, 0.25), (x) => (x < -0.5 ? -0.5 : x > 0.25 ? 0.25 : x), 'any'],
  ['affine', (x) => mi.affine(x, 3, -1), (x) => 3 * x - 1, 'any'],
  ['sign', mi.sign, (x) => (x > 0 ? 1 : x < 0 ? -1 : 0), 'any'],
];
for (const dtype of FLOATS) {
  test(`unary ops ${dtype} against plain-JS formulas`, () =>
    mi.tidy(() => {
      const x = rnd([5, 4], dtype, 2);
      const pos = mi.abs(mi.add(x, 0.01));
      for (const [name, op, ref, domain] of unaryRefs) {
        const input = domain === 'positive' ? pos : x;
        const want = input.dataSync().map((v) => ref(v));
        // float32 outputs are the float64 value rounded once; a few ulps of the f64 formulas differ
        assertClose(`${name} ${dtype}`, op(input).dataSync(), want, dtype === 'float64' ? 1e-13 : 2e-7, 1e-300);
      }
    }));
}

test('softplus, sigmoid, silu, tanh at extreme inputs: finite, no NaN, no lost tails', () =>
  mi.tidy(() => {
    for (const dtype of FLOATS) {
      const x = mi.tensor([-1000, -100, -30, 30, 100, 1000], [6], { dtype });
      const sp = vals(mi.softplus(x));
      const tail = Math.log1p(Math.exp(-30)); // softplus(-30) = log1p(e^-30) = e^-30 (1 - e^-30 / 2 ...)
      const want = [0, Math.exp(-100), tail, 30 + tail, 100, 1000];
      assertClose(
        `softplus ${dtype}`,
        sp,
        want.map((v) => (dtype === 'float32' ? Math.fround(v) : v)),
        dtype === 'float64' ? 1e-14 : 1e-7,
      );
      assert.ok(sp[2] > 0, 'softplus(-30) keeps its tail');
      assertClose(
        `sigmoid ${dtype}`,
        vals(mi.sigmoid(x)),
        [0, Math.exp(-100), 1 / (1 + Math.exp(30)), 1 / (1 + Math.exp(-30)), 1, 1].map((v) => (dtype === 'float32' ? Math.fround(v) : v)),
        dtype === 'float64' ? 1e-14 : 1e-7,
      );
      assertClose(`tanh ${dtype}`, vals(mi.tanh(x)), [-1, -1, -1, 1, 1, 1], 1e-15);
      for (const v of vals(mi.silu(x))) assert.ok(Number.isFinite(v), `silu ${dtype} finite`);
    }
    // the gradient of softplus at +-30 and +-1000 is sigmoid: tiny or 1, never NaN
    const x = mi.tensor([-1000, -30, 30, 1000], [4], { dtype: 'float64', requiresGrad: true });
    mi.backward(mi.sum(mi.softplus(x)));
    assertClose('d softplus', x.grad!.dataSync(), [0, 1 / (1 + Math.exp(30)), 1 / (1 + Math.exp(-30)), 1], 1e-14);
  }));

test('where broadcasts condition and branches; cast truncates to int32', () =>
  mi.tidy(() => {
    const c = mi.tensor([1, 0, 2], [3, 1], { dtype: 'float64' });
    const a = mi.tensor([10, 20], [2], { dtype: 'float64' });
    assert.equal(vals(mi.where(c, a, -1)), [10, 20, -1, -1, 10, 20]);
    const f = mi.tensor([-1.7, -0.2, 0.9, 2.5], [4]);
    const i = mi.cast(f, 'int32');
    assert.is(i.dtype, 'int32');
    assert.equal(vals(i), [-1, 0, 0, 2]);
    assert.equal(vals(mi.cast(i, 'float64')), [-1, 0, 0, 2]);
  }));

// ---- errors ---------------------------------------------------------------------------------------
const mismatches: Mismatch[] = [
  ['add shapes', () => mi.add(f32([2, 3]), f32([4])), 'add', '[2,3]', '[4]'],
  ['mul shapes', () => mi.mul(f32([2, 3]), f32([2, 2])), 'mul', '[2,3]', '[2,2]'],
  ['add dtypes', () => mi.add(f32([2]), f64([2])), 'add', 'float32[2]', 'float64[2]'],
  ['where shapes', () => mi.where(f32([2, 3]), f32([3]), f32([4])), 'where', '[4]'],
  ['float op on int32', () => mi.exp(i32([1, 2])), 'exp', 'int32[2]'],
];
for (const [name, fn, ...fragments] of mismatches) test(`error: ${name}`, () => mi.tidy(() => throwsNaming(fn, ...fragments)));

// ---- gradients ------------------------------------------------------------------------------------
for (const [name, f, inputs] of GRAD_CASES.elementwise)
  test(`gradcheck: ${name}`, () => {
    gradcheckPoisoned(name, f, inputs);
  });

test.run();
