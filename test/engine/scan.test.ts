// The fused selective scan (one kernel forward, one backward) against the same recurrence unrolled
// step by step from ordinary engine ops in float64, whose gradients come from the tape through
// exp, mul, add, sum, slice and stack. Outputs y, hT, hs and every input gradient must agree.
// Then selectiveScan's errors and the gradient checks of its cases in test/engine/grad-cases.ts.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as mi from '../../engine/index.ts';
import type { Tensor } from '../../engine/tensor.ts';
import { gradcheckPoisoned } from '../helpers/gradcheck.ts';
import { throwsNaming, type Mismatch } from '../helpers/ops.ts';
import { GRAD_CASES } from './grad-cases.ts';

interface ScanCase {
  batch: number;
  T: number;
  E: number;
  N: number;
  D?: boolean;
  z?: boolean;
  h0?: boolean;
  deltaBias?: boolean;
  deltaSoftplus?: boolean;
}
type Inputs = Record<'x' | 'delta' | 'A' | 'B' | 'C', Tensor> & Partial<Record<'D' | 'z' | 'h0' | 'deltaBias', Tensor>>;
interface Outs {
  y: Tensor;
  hT: Tensor;
  hs: Tensor;
}

function makeInputs(c: ScanCase, rng: mi.Rng): Inputs {
  const f64 = { dtype: 'float64' as const };
  const { batch, T, E, N } = c;
  const inp: Inputs = {
    x: mi.randn([batch, T, E], rng.fork('x'), f64),
    // raw delta may be negative only when a softplus follows
    delta: c.deltaSoftplus
      ? mi.randn([batch, T, E], rng.fork('delta'), f64)
      : mi.rand([batch, T, E], rng.fork('delta'), { ...f64, lo: 0.05, hi: 1 }),
    A: mi.rand([E, N], rng.fork('A'), { ...f64, lo: -1.5, hi: -0.1 }),
    B: mi.randn([batch, T, N], rng.fork('B'), f64),
    C: mi.randn([batch, T, N], rng.fork('C'), f64),
  };
  if (c.D) inp.D = mi.randn([E], rng.fork('D'), f64);
  if (c.z) inp.z = mi.randn([batch, T, E], rng.fork('z'), f64);
  if (c.h0) inp.h0 = mi.randn([batch, E, N], rng.fork('h0'), f64);
  if (c.deltaBias) inp.deltaBias = mi.randn([E], rng.fork('deltaBias'), { ...f64, std: 0.5 });
  return inp;
}

/** h_t = exp(dt A) h_{t-1} + dt B_t x_t;  y_t = (C_t . h_t + D x_t) silu(z_t), one position at a time. */
function unrolled(inp: Inputs, softplus: boolean): Outs {
  const [batch, T, E] = inp.x.shape;
  const N = inp.A.shape[1];
  let dt = inp.deltaBias ? mi.add(inp.delta, inp.deltaBias) : inp.delta;
  if (softplus) dt = mi.softplus(dt);
  const at = (t: Tensor, i: number, shape: number[]) => mi.reshape(mi.slice(t, 1, i, i + 1), shape);
  let h = inp.h0 ?? mi.zeros([batch, E, N], { dtype: 'float64' });
  const ys: Tensor[] = [];
  const hs: Tensor[] = [];
  for (let i = 0; i < T; i++) {
    const d = at(dt, i, [batch, E, 1]);
    const x = at(inp.x, i, [batch, E, 1]);
    const Abar = mi.exp(mi.mul(d, inp.A));
    h = mi.add(mi.mul(Abar, h), mi.mul(mi.mul(d, at(inp.B, i, [batch, 1, N])), x));
    let y = mi.sum(mi.mul(h, at(inp.C, i, [batch, 1, N])), -1);
    if (inp.D) y = mi.add(y, mi.mul(inp.D, mi.reshape(x, [batch, E])));
    if (inp.z) y = mi.mul(y, mi.silu(at(inp.z, i, [batch, E])));
    ys.push(y);
    hs.push(h);
  }
  return { y: mi.stack(ys, 1), hT: h, hs: mi.stack(hs, 1) };
}

function fused(inp: Inputs, softplus: boolean): Outs {
  const r = mi.selectiveScan({ ...inp, deltaSoftplus: softplus, returnStates: true });
  return { y: r.y, hT: r.hT, hs: r.hs! };
}

/** Outputs and the gradients of sum(y*wy) + sum(hT*wh) + sum(hs*ws) w.r.t. every input. */
function run(impl: (inp: Inputs, sp: boolean) => Outs, inp: Inputs, c: ScanCase, rng: mi.Rng) {
  const names = Object.keys(inp) as (keyof Inputs)[];
  const leaves = Object.fromEntries(
    names.map((k) => {
      const l = mi.detach(inp[k]!);
      l.requiresGrad = true;
      return [k, l];
    }),
  ) as Inputs;
  const out = impl(leaves, !!c.deltaSoftplus);
  const f64 = { dtype: 'float64' as const };
  const loss = mi.add(
    mi.add(
      mi.sum(mi.mul(out.y, mi.randn(out.y.shape, rng.fork('wy'), f64))),
      mi.sum(mi.mul(out.hT, mi.randn(out.hT.shape, rng.fork('wh'), f64))),
    ),
    mi.sum(mi.mul(out.hs, mi.randn(out.hs.shape, rng.fork('ws'), f64))),
  );
  const g = mi.backwardFrom(loss);
  return { out, grads: Object.fromEntries(names.map((k) => [k, g.get(leaves[k]!)!])) as Record<keyof Inputs, Tensor> };
}

function assertClose(what: string, got: Tensor, want: Tensor, rtol = 1e-9): void {
  assert.equal(got.shape, want.shape, `${what}: shape`);
  const a = got.dataSync(),
    b = want.dataSync();
  let scale = 0;
  for (const v of b) scale = Math.max(scale, Math.abs(v));
  for (let i = 0; i < a.length; i++) {
    const err = Math.abs(a[i] - b[i]);
    if (!(err <= rtol * Math.max(Math.abs(b[i]), 1e-3 * scale, 1e-12))) {
      assert.unreachable(`${what}: element ${i}: fused ${a[i]}, unrolled ${b[i]}`);
    }
  }
}

function check(c: ScanCase, label: string): void {
  mi.tidy(() => {
    const rng = new mi.Rng(`scan/${label}`);
    const inp = makeInputs(c, rng.fork('inputs'));
    const ref = run(unrolled, inp, c, rng.fork('cot'));
    const got = run(fused, inp, c, rng.fork('cot'));
    for (const k of ['y', 'hT', 'hs'] as const) assertClose(`${label} ${k}`, got.out[k], ref.out[k]);
    for (const k of Object.keys(inp) as (keyof Inputs)[]) {
      assert.ok(ref.grads[k] && got.grads[k], `${label}: gradient of ${k} missing`);
      assertClose(`${label} d${k}`, got.grads[k], ref.grads[k]);
    }
  });
}

const all = { D: true, z: true, h0: true, deltaBias: true, deltaSoftplus: true };

test('T=1, all options', () => check({ batch: 2, T: 1, E: 3, N: 4, ...all }, 'T1-all'));
test('T=1, plain', () => check({ batch: 1, T: 1, E: 2, N: 3 }, 'T1-plain'));
test('T=7, plain', () => check({ batch: 2, T: 7, E: 3, N: 4 }, 'T7-plain'));
test('T=7, with z and D', () => check({ batch: 2, T: 7, E: 3, N: 4, D: true, z: true }, 'T7-zD'));
test('T=7, with h0, deltaSoftplus (no bias)', () => check({ batch: 2, T: 7, E: 3, N: 4, h0: true, deltaSoftplus: true }, 'T7-h0-sp'));
test('T=7, all options', () => check({ batch: 2, T: 7, E: 3, N: 4, ...all }, 'T7-all'));
test('T=1000, all options (small batch/E/N)', () => check({ batch: 1, T: 1000, E: 2, N: 2, ...all }, 'T1000-all'));

test('float32 scan agrees with the float64 one to float32 precision', () => {
  mi.tidy(() => {
    const c: ScanCase = { batch: 2, T: 16, E: 3, N: 4, ...all };
    const inp = makeInputs(c, new mi.Rng('scan/f32'));
    const ref = fused(inp, true);
    const inp32 = Object.fromEntries(Object.entries(inp).map(([k, t]) => [k, mi.cast(t, 'float32')])) as Inputs;
    const got = fused(inp32, true);
    for (const k of ['y', 'hT', 'hs'] as const) assertClose(`f32 ${k}`, mi.cast(got[k], 'float64'), ref[k], 2e-5);
  });
});

// ---- errors ---------------------------------------------------------------------------------------
const f32 = (shape: number[], v = 1) => mi.full(shape, v);
const f64 = (shape: number[], v = 1) => mi.full(shape, v, { dtype: 'float64' });
const mismatches: Mismatch[] = [
  [
    'selectiveScan B',
    () => mi.selectiveScan({ x: f32([1, 4, 3]), delta: f32([1, 4, 3]), A: f32([3, 2]), B: f32([1, 4, 5]), C: f32([1, 4, 2]) }),
    'selectiveScan',
    'B',
    '[1,4,5]',
    '[1,4,2]',
  ],
  [
    'selectiveScan delta',
    () => mi.selectiveScan({ x: f32([1, 4, 3]), delta: f32([1, 3, 3]), A: f32([3, 2]), B: f32([1, 4, 2]), C: f32([1, 4, 2]) }),
    'selectiveScan',
    'delta',
    '[1,3,3]',
    '[1,4,3]',
  ],
  [
    'selectiveScan h0',
    () =>
      mi.selectiveScan({
        x: f32([1, 4, 3]),
        delta: f32([1, 4, 3]),
        A: f32([3, 2]),
        B: f32([1, 4, 2]),
        C: f32([1, 4, 2]),
        h0: f32([1, 2, 3]),
      }),
    'selectiveScan',
    'h0',
    '[1,2,3]',
    '[1,3,2]',
  ],
  [
    'selectiveScan dtypes',
    () => mi.selectiveScan({ x: f32([1, 4, 3]), delta: f64([1, 4, 3]), A: f32([3, 2]), B: f32([1, 4, 2]), C: f32([1, 4, 2]) }),
    'selectiveScan',
    'float32',
    'float64',
  ],
];
for (const [name, fn, ...fragments] of mismatches) test(`error: ${name}`, () => mi.tidy(() => throwsNaming(fn, ...fragments)));

// ---- gradients: the cases of test/engine/grad-cases.ts (float64 finite differences) ------------------
for (const [name, f, inputs] of GRAD_CASES.scan)
  test(`gradcheck: ${name}`, () => {
    gradcheckPoisoned(name, f, inputs);
  });

test.run();
