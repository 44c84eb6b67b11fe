// Forward values of the ops against plain-JS references (independent formulas and loops, not the
// engine's own tables), in float64 and float32, with broadcasting, ties and extreme inputs.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as mi from '../../engine/index.ts';
import type { Tensor } from '../../engine/tensor.ts';
import type { DType } from '../../engine/dtype.ts';
import { sizeOf, stridesOf } from '../../engine/shape.ts';

const rng = new mi.Rng('ops-test');
const FLOATS: DType[] = ['float64', 'float32'];
/** float64 results must match to rounding; float32 ones to float32 rounding. */
const rtolOf = (d: DType) => (d === 'float64' ? 1e-12 : 2e-6);

function assertClose(what: string, got: ArrayLike<number>, want: ArrayLike<number>, rtol: number, atol = 0): void {
  assert.is(got.length, want.length, `${what}: length`);
  for (let i = 0; i < want.length; i++) {
    const g = got[i],
      w = want[i];
    if (Number.isNaN(w) ? !Number.isNaN(g) : !(Math.abs(g - w) <= rtol * Math.abs(w) + atol)) {
      assert.unreachable(`${what}: element ${i}: got ${g}, want ${w}`);
    }
  }
}
const rnd = (shape: number[], dtype: DType, std = 1) => mi.randn(shape, rng, { dtype, std });
const vals = (t: Tensor) => [...t.dataSync()];

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

// ---- elementwise ----------------------------------------------------------------------------------
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

test('where broadcasts condition and branches; cast truncates to int32; oneHot skips out-of-range', () =>
  mi.tidy(() => {
    const c = mi.tensor([1, 0, 2], [3, 1], { dtype: 'float64' });
    const a = mi.tensor([10, 20], [2], { dtype: 'float64' });
    assert.equal(vals(mi.where(c, a, -1)), [10, 20, -1, -1, 10, 20]);
    const f = mi.tensor([-1.7, -0.2, 0.9, 2.5], [4]);
    const i = mi.cast(f, 'int32');
    assert.is(i.dtype, 'int32');
    assert.equal(vals(i), [-1, 0, 0, 2]);
    assert.equal(vals(mi.cast(i, 'float64')), [-1, 0, 0, 2]);
    assert.equal(vals(mi.oneHot(mi.tensor([2, 0, 5, -1], [4], { dtype: 'int32' }), 3)), [0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0]);
  }));

// ---- reductions ---------------------------------------------------------------------------------
/** Reduce x [3,4,2] over `axes` in plain JS: returns values in row-major order of the kept axes. */
function reduceRef(x: Tensor, axes: number[], f: (vs: number[]) => number): number[] {
  const s = x.shape,
    d = x.dataSync();
  const out = new Map<string, number[]>();
  for (let i = 0; i < s[0]; i++)
    for (let j = 0; j < s[1]; j++)
      for (let k = 0; k < s[2]; k++) {
        const key = [i, j, k].map((v, a) => (axes.includes(a) ? 0 : v)).join(',');
        if (!out.has(key)) out.set(key, []);
        out.get(key)!.push(d[(i * s[1] + j) * s[2] + k]);
      }
  return [...out.values()].map(f);
}
const reductions: [string, (x: Tensor, axes: number[], keep: boolean) => Tensor, (vs: number[]) => number][] = [
  ['sum', mi.sum, (vs) => vs.reduce((p, v) => p + v, 0)],
  ['mean', mi.mean, (vs) => vs.reduce((p, v) => p + v, 0) / vs.length],
  ['max', mi.max, (vs) => Math.max(...vs)],
  ['min', mi.min, (vs) => Math.min(...vs)],
  ['logsumexp', mi.logsumexp, (vs) => Math.log(vs.reduce((p, v) => p + Math.exp(v), 0))],
];
for (const dtype of FLOATS) {
  test(`reductions ${dtype} over single, non-contiguous and all axes, with keepdim`, () =>
    mi.tidy(() => {
      const x = rnd([3, 4, 2], dtype);
      for (const [name, op, ref] of reductions) {
        for (const axes of [[0], [1], [2], [0, 2], [0, 1], [0, 1, 2]]) {
          const y = op(x, axes, false);
          assert.equal(
            y.shape,
            x.shape.filter((_, i) => !axes.includes(i)),
            `${name} ${axes} shape`,
          );
          assertClose(`${name} ${dtype} axes ${axes}`, y.dataSync(), reduceRef(x, axes, ref), dtype === 'float64' ? 1e-13 : 3e-6, 1e-6);
          assert.equal(
            op(x, axes, true).shape,
            x.shape.map((d, i) => (axes.includes(i) ? 1 : d)),
            `${name} keepdim shape`,
          );
        }
      }
    }));
}

test('logsumexp does not overflow for large inputs', () =>
  mi.tidy(() => {
    const x = mi.tensor([1000, 1000, -1000], [3], { dtype: 'float32' });
    assertClose('lse', vals(mi.logsumexp(x)), [1000 + Math.log(2)], 1e-7);
    // rows that are all -inf, or hold +inf, must not become NaN through inf - inf
    const inf = mi.tensor([-Infinity, -Infinity, Infinity, 1, 0, -Infinity], [3, 2], { dtype: 'float64' });
    assert.equal(vals(mi.logsumexp(inf, 1)), [-Infinity, Infinity, 0]);
  }));

test('argmax: first index on ties, along any axis', () =>
  mi.tidy(() => {
    const x = mi.tensor(
      [
        [1, 3, 3],
        [5, 5, 0],
      ],
      [2, 3],
    );
    assert.equal(vals(mi.argmax(x)), [1, 0]);
    assert.equal(vals(mi.argmax(x, 0)), [1, 1, 0]);
    assert.equal(mi.argmax(x, 1, true).shape, [2, 1]);
    assert.is(mi.argmax(x).dtype, 'int32');
  }));

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

// ---- linear algebra ------------------------------------------------------------------------------
function matmulRef(a: number[][], b: number[][]): number[] {
  return a.flatMap((row) => b[0].map((_, j) => row.reduce((s, v, k) => s + v * b[k][j], 0)));
}
const rowsOf = (t: Tensor, trans: boolean): number[][] => {
  const [r, c] = t.shape.slice(-2);
  const d = t.dataSync();
  return trans
    ? Array.from({ length: c }, (_, i) => Array.from({ length: r }, (_, j) => d[j * c + i]))
    : Array.from({ length: r }, (_, i) => Array.from(d.subarray(i * c, i * c + c)));
};
for (const dtype of FLOATS) {
  test(`matmul ${dtype}: every transA/transB combination against a triple loop`, () =>
    mi.tidy(() => {
      for (const transA of [false, true])
        for (const transB of [false, true]) {
          // 7 x 300 x 5 crosses the CPU kernel's 4-row and 256-column panels
          const a = rnd(transA ? [300, 7] : [7, 300], dtype),
            b = rnd(transB ? [5, 300] : [300, 5], dtype);
          const want = matmulRef(rowsOf(a, transA), rowsOf(b, transB));
          assertClose(
            `matmul ${transA} ${transB}`,
            mi.matmul(a, b, { transA, transB }).dataSync(),
            want,
            dtype === 'float64' ? 1e-12 : 1e-5,
            1e-4,
          );
        }
    }));
}

test('matmul broadcasts batch axes and handles 1-D operands', () =>
  mi.tidy(() => {
    const a = rnd([2, 1, 3, 4], 'float64'),
      b = rnd([3, 4, 2], 'float64');
    const y = mi.matmul(a, b);
    assert.equal(y.shape, [2, 3, 3, 2]);
    for (let i = 0; i < 2; i++)
      for (let j = 0; j < 3; j++) {
        const want = matmulRef(
          rowsOf(mi.reshape(mi.slice(a, 0, i, i + 1), [3, 4]), false),
          rowsOf(mi.reshape(mi.slice(b, 0, j, j + 1), [4, 2]), false),
        );
        assertClose(`batch ${i},${j}`, mi.reshape(mi.slice(mi.slice(y, 0, i, i + 1), 1, j, j + 1), [6]).dataSync(), want, 1e-12);
      }
    const v = mi.tensor([1, 2, 3], [3], { dtype: 'float64' });
    const m = mi.tensor(
      [
        [1, 0],
        [0, 1],
        [1, 1],
      ],
      [3, 2],
      { dtype: 'float64' },
    );
    assert.equal(vals(mi.matmul(v, m)), [4, 5]);
    assert.equal(vals(mi.matmul(m, mi.tensor([1, 2], [2], { dtype: 'float64' }), {})), [1, 2, 3]);
    const dot = mi.matmul(v, v);
    assert.equal(dot.shape, []);
    assert.equal(vals(dot), [14]);
    const lin = mi.linear(mi.reshape(v, [1, 3]), mi.transpose(m), mi.tensor([10, 20], [2], { dtype: 'float64' }));
    assert.equal(vals(lin), [14, 25]);
  }));

// ---- nn ops ---------------------------------------------------------------------------------------
for (const dtype of FLOATS) {
  test(`softmax / logSoftmax ${dtype} along several axes`, () =>
    mi.tidy(() => {
      const x = rnd([3, 4, 2], dtype, 3);
      for (const axis of [0, 1, 2]) {
        const ref = (vs: number[]) => vs.map((v) => Math.exp(v) / vs.reduce((s, u) => s + Math.exp(u), 0));
        // expected: softmax along `axis` via the moved-axis layout of reduceRef
        const moved = mi.permute(x, [...[0, 1, 2].filter((a) => a !== axis), axis]);
        const want = reduceRef(moved, [], (vs) => vs[0]); // identity, row-major of moved
        const rows = want.length / x.shape[axis];
        const sm: number[] = [];
        for (let r = 0; r < rows; r++) sm.push(...ref(want.slice(r * x.shape[axis], (r + 1) * x.shape[axis])));
        const got = mi.permute(mi.softmax(x, axis), [...[0, 1, 2].filter((a) => a !== axis), axis]);
        assertClose(`softmax axis ${axis}`, got.dataSync(), sm, dtype === 'float64' ? 1e-13 : 2e-6, 1e-7);
        const gotLog = mi.permute(mi.logSoftmax(x, axis), [...[0, 1, 2].filter((a) => a !== axis), axis]);
        assertClose(`logSoftmax axis ${axis}`, gotLog.dataSync(), sm.map(Math.log), dtype === 'float64' ? 1e-12 : 2e-6, 1e-6);
      }
    }));
}

test('crossEntropy: none / sum / mean with the ignore index; all-ignored mean is 0, not NaN', () =>
  mi.tidy(() => {
    for (const dtype of FLOATS) {
      const logits = mi.tensor(
        [
          [1, 2, 3],
          [0, 0, 0],
          [5, -5, 0],
          [2, 2, 1],
        ],
        [4, 3],
        { dtype },
      );
      const targets = mi.tensor([2, -100, 0, 1], [4], { dtype: 'int32' });
      const lse = (r: number[]) => Math.log(r.reduce((s, v) => s + Math.exp(v), 0));
      const rows = [
        [1, 2, 3],
        [0, 0, 0],
        [5, -5, 0],
        [2, 2, 1],
      ];
      const want = [lse(rows[0]) - 3, 0, lse(rows[2]) - 5, lse(rows[3]) - 2];
      const tol = dtype === 'float64' ? 1e-14 : 1e-6;
      assertClose(`none ${dtype}`, vals(mi.crossEntropy(logits, targets, { reduction: 'none' })), want, tol);
      assertClose(`sum ${dtype}`, vals(mi.crossEntropy(logits, targets, { reduction: 'sum' })), [want[0] + want[2] + want[3]], tol);
      assertClose(`mean ${dtype}`, vals(mi.crossEntropy(logits, targets)), [(want[0] + want[2] + want[3]) / 3], tol);
      const allIgnored = mi.tensor([-100, -100], [2], { dtype: 'int32' });
      assert.equal(vals(mi.crossEntropy(mi.slice(logits, 0, 0, 2), allIgnored)), [0]);
    }
  }));

test('rmsNorm and conv1dCausal against plain loops', () =>
  mi.tidy(() => {
    for (const dtype of FLOATS) {
      const tol = dtype === 'float64' ? 1e-13 : 2e-6;
      const x = rnd([2, 3, 4], dtype),
        w = rnd([4], dtype);
      const xd = x.dataSync(),
        wd = w.dataSync();
      const want: number[] = [];
      for (let r = 0; r < 6; r++) {
        const row = Array.from(xd.subarray(r * 4, r * 4 + 4));
        const rs = 1 / Math.sqrt(row.reduce((s, v) => s + v * v, 0) / 4 + 1e-5);
        want.push(...row.map((v, j) => v * rs * wd[j]));
      }
      assertClose(`rmsNorm ${dtype}`, mi.rmsNorm(x, w).dataSync(), want, tol, 1e-7);

      for (const K of [1, 3, 6]) {
        const [B, T, C] = [2, 4, 3];
        const cx = rnd([B, T, C], dtype),
          cw = rnd([C, K], dtype),
          cb = rnd([C], dtype);
        const [xv, wv, bv] = [cx.dataSync(), cw.dataSync(), cb.dataSync()];
        const y: number[] = [];
        for (let b = 0; b < B; b++)
          for (let t = 0; t < T; t++)
            for (let c = 0; c < C; c++) {
              let s = bv[c];
              // y[t] = bias + sum_j w[K-1-j] x[t-j]
              for (let j = 0; j < K && t - j >= 0; j++) s += wv[c * K + K - 1 - j] * xv[(b * T + t - j) * C + c];
              y.push(s);
            }
        assertClose(`conv1dCausal ${dtype} K=${K}`, mi.conv1dCausal(cx, cw, cb).dataSync(), y, tol, 1e-6);
      }
    }
  }));

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

// ---- determinism ----------------------------------------------------------------------------------
test('determinism: the same computation twice gives identical bits, values and gradients', () => {
  const once = () =>
    mi.tidy(() => {
      const r = new mi.Rng('determinism');
      const x = mi.randn([2, 5, 3], r.fork('x'), { requiresGrad: true });
      const W = mi.randn([4, 3], r.fork('W'), { requiresGrad: true });
      const h = mi.silu(mi.linear(x, W));
      const s = mi.selectiveScan({
        x: mi.slice(h, 2, 0, 3),
        delta: mi.softplus(mi.slice(h, 2, 1, 4)),
        A: mi.neg(mi.exp(mi.randn([3, 2], r.fork('A')))),
        B: mi.slice(h, 2, 0, 2),
        C: mi.slice(h, 2, 2, 4),
        deltaSoftplus: true,
      });
      const loss = mi.crossEntropy(mi.rmsNorm(s.y, mi.ones([3])), mi.randint([2, 5], 0, 3, r.fork('t')));
      const g = mi.backwardFrom(loss);
      return [loss, g.get(x)!, g.get(W)!].map((t) => new Uint8Array((t.dataSync() as Float32Array).buffer));
    });
  const a = once(),
    b = once();
  for (let i = 0; i < a.length; i++) assert.equal([...a[i]], [...b[i]], `output ${i} bit for bit`);
  assert.ok(
    a[1].some((v) => v !== 0),
    'the gradient is not trivially zero',
  );
});

test.run();
