// engine/ops/influence.ts: the hidden attention of a scan against plain loops and against the
// engine's autograd Jacobian of the scan (d y_t / d x_s, channel by channel), its norms, its
// float32 accuracy on long sequences (where products of decays taken from prefix sums of delta
// would lose their digits), and its errors.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as mi from '../../engine/index.ts';
import type { DType } from '../../engine/dtype.ts';
import type { Tensor } from '../../engine/tensor.ts';
import { assertClose, f32, f64, FLOATS, rtolOf, throwsNaming, vals, type Mismatch } from '../helpers/ops.ts';

function inputs(batch: number, T: number, E: number, N: number, dtype: DType, seed: string) {
  const rng = new mi.Rng(seed);
  return {
    delta: mi.rand([batch, T, E], rng.fork('delta'), { dtype, lo: 0.05, hi: 0.6 }),
    A: mi.rand([E, N], rng.fork('A'), { dtype, lo: -1.5, hi: -0.1 }),
    B: mi.randn([batch, T, N], rng.fork('B'), { dtype }),
    C: mi.randn([batch, T, N], rng.fork('C'), { dtype }),
  };
}

/** alpha [batch, E, T, T] by the definition: the product of exp(delta_r A) over r in (s, t], one factor at a time. */
function alphaLoops(delta: Tensor, A: Tensor, B: Tensor, C: Tensor): number[] {
  const [batch, T, E] = delta.shape;
  const N = A.shape[1];
  const [dl, a, b, c] = [delta, A, B, C].map((t) => t.dataSync());
  const out: number[] = [];
  for (let bb = 0; bb < batch; bb++)
    for (let e = 0; e < E; e++)
      for (let t = 0; t < T; t++)
        for (let s = 0; s < T; s++) {
          let v = 0;
          if (s <= t)
            for (let n = 0; n < N; n++) {
              let prod = 1;
              for (let r = s + 1; r <= t; r++) prod *= Math.exp(dl[(bb * T + r) * E + e] * a[e * N + n]);
              v += c[(bb * T + t) * N + n] * prod * dl[(bb * T + s) * E + e] * b[(bb * T + s) * N + n];
            }
          out.push(v);
        }
  return out;
}

for (const dtype of FLOATS) {
  test(`scanInfluence ${dtype}: alpha and both norms match plain loops; causal`, () =>
    mi.tidy(() => {
      const [batch, T, E, N] = [2, 9, 5, 3];
      const I = inputs(batch, T, E, N, dtype, `influence-loops-${dtype}`);
      const tol = rtolOf(dtype) * 10;
      const { norm, alpha } = mi.scanInfluence({ ...I, returnAlpha: true });
      assert.equal(alpha!.shape, [batch, E, T, T]);
      assert.equal(norm.shape, [batch, T, T]);
      const want = alphaLoops(I.delta, I.A, I.B, I.C);
      assertClose('alpha', vals(alpha!), want, tol, tol);
      const meanAbs: number[] = [],
        l2: number[] = [];
      for (let b = 0; b < batch; b++)
        for (let t = 0; t < T; t++)
          for (let s = 0; s < T; s++) {
            let sa = 0,
              sq = 0;
            for (let e = 0; e < E; e++) {
              const v = want[((b * E + e) * T + t) * T + s];
              sa += Math.abs(v);
              sq += v * v;
            }
            meanAbs.push(sa / E);
            l2.push(Math.sqrt(sq));
            if (s > t) assert.is(vals(norm)[(b * T + t) * T + s], 0);
          }
      assertClose('mean |alpha|', vals(norm), meanAbs, tol, tol);
      assertClose('l2', vals(mi.scanInfluence({ ...I, norm: 'l2' }).norm), l2, tol, tol);
      assert.is(mi.scanInfluence(I).alpha, undefined);
    }));
}

test('scanInfluence: alpha is the autograd Jacobian of the scan, d y_t[e] / d x_s[e] (zero across channels)', () =>
  mi.tidy(() => {
    const [T, E, N] = [6, 4, 3];
    const I = inputs(1, T, E, N, 'float64', 'influence-jacobian');
    const x = mi.randn([1, T, E], new mi.Rng('x'), { dtype: 'float64' });
    // y [1, T, E] as a function of x [1, T, E]: J [T, E, T, E] with the batch axes dropped
    const J = mi.jacobian((xs: Tensor) => mi.selectiveScan({ x: xs, delta: I.delta, A: I.A, B: I.B, C: I.C }).y, x).dataSync();
    const alpha = vals(mi.scanInfluence({ ...I, returnAlpha: true }).alpha!);
    let checked = 0;
    for (let t = 0; t < T; t++)
      for (let e = 0; e < E; e++)
        for (let s = 0; s < T; s++)
          for (let e2 = 0; e2 < E; e2++) {
            const j = J[((t * E + e) * T + s) * E + e2];
            const want = e2 === e ? alpha[(e * T + t) * T + s] : 0;
            assert.ok(Math.abs(j - want) <= 1e-12 * (1 + Math.abs(want)), `J[${t},${e},${s},${e2}] ${j} vs alpha ${want}`);
            checked++;
          }
    assert.is(checked, T * E * T * E);
  }));

test('scanInfluence float32 on 2000 steps: within 1e-5 of float64, where differences of prefix sums would not be', () =>
  mi.tidy(() => {
    const [T, E, N] = [2000, 2, 2];
    const rng = new mi.Rng('influence-long');
    // steps of 1 to 2: the prefix sums of delta reach about 3000
    const delta = mi.rand([1, T, E], rng.fork('delta'), { dtype: 'float64', lo: 1, hi: 2 });
    const A = mi.full([E, N], -1, { dtype: 'float64' });
    const B = mi.randn([1, T, N], rng.fork('B'), { dtype: 'float64' });
    const C = mi.randn([1, T, N], rng.fork('C'), { dtype: 'float64' });
    const to32 = (t: Tensor) => mi.tensor(Float32Array.from(t.dataSync()), t.shape);
    const want = mi.scanInfluence({ delta, A, B, C, norm: 'l2' }).norm.dataSync();
    const got = mi.scanInfluence({ delta: to32(delta), A: to32(A), B: to32(B), C: to32(C), norm: 'l2' }).norm.dataSync();
    let scale = 0;
    for (const v of want) scale = Math.max(scale, Math.abs(v));
    let worst = 0;
    want.forEach((w, i) => (worst = Math.max(worst, Math.abs(got[i] - w) / (Math.abs(w) + 1e-2 * scale))));
    assert.ok(worst < 1e-5, `worst relative error ${worst}`);
    // the alternative the kernel avoids: the decay over (s, t] as exp(A (S_t - S_s)), S the float32
    // prefix sum of delta; near the diagonal at the end of the sequence it is off by ~ulp(S) |A|
    const d = Float32Array.from(delta.dataSync());
    const S = new Float32Array(T);
    for (let t = 0, acc = 0; t < T; t++) S[t] = acc = Math.fround(acc + d[t * E]);
    let prefixWorst = 0;
    for (let s = T - 6; s < T - 1; s++) {
      let exact = 0;
      for (let r = s + 1; r < T; r++) exact += d[r * E];
      prefixWorst = Math.max(prefixWorst, Math.abs(Math.exp(-Math.fround(S[T - 1] - S[s])) / Math.exp(-exact) - 1));
    }
    assert.ok(prefixWorst > 1e-5, `prefix sums lose ${prefixWorst}`);
  }));

// ---- errors ---------------------------------------------------------------------------------------
const I = () => ({ delta: f32([1, 4, 3]), A: f32([3, 2]), B: f32([1, 4, 2]), C: f32([1, 4, 2]) });
const mismatches: Mismatch[] = [
  ['delta rank', () => mi.scanInfluence({ ...I(), delta: f32([4, 3]) }), 'scanInfluence', 'delta', '[4,3]'],
  ['A channels', () => mi.scanInfluence({ ...I(), A: f32([2, 2]) }), 'scanInfluence', 'A', '[2,2]', '[3,2]'],
  ['B', () => mi.scanInfluence({ ...I(), B: f32([1, 4, 3]) }), 'scanInfluence', 'B', '[1,4,3]', '[1,4,2]'],
  ['C', () => mi.scanInfluence({ ...I(), C: f32([1, 3, 2]) }), 'scanInfluence', 'C', '[1,3,2]', '[1,4,2]'],
  ['norm', () => mi.scanInfluence({ ...I(), norm: 'max' as 'l2' }), 'scanInfluence', "'max'"],
  ['mixed dtypes', () => mi.scanInfluence({ ...I(), A: f64([3, 2]) }), 'scanInfluence', 'mixed dtypes'],
];
for (const [name, fn, ...fragments] of mismatches) test(`error: ${name}`, () => mi.tidy(() => throwsNaming(fn, ...fragments)));

test('scanInfluence: no gradient (an analysis quantity)', () =>
  mi.tidy(() => {
    const inp = inputs(1, 3, 2, 2, 'float64', 'influence-nograd');
    inp.delta.requiresGrad = true;
    assert.not.ok(mi.scanInfluence(inp).norm.requiresGrad);
  }));

test.run();
