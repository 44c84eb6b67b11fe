// engine/ops/sae.ts: the fused sparse autoencoder against plain loops and against the same SAE
// composed of matmul, topk and scatter-add (values and gradients), its errors, and the gradient
// checks of test/engine/grad-cases.ts (float64 finite differences).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as mi from '../../engine/index.ts';
import type { DType } from '../../engine/dtype.ts';
import type { Tensor } from '../../engine/tensor.ts';
import { gradcheckPoisoned } from '../helpers/gradcheck.ts';
import { assertClose, f32, f64, FLOATS, rtolOf, throwsNaming, vals, type Mismatch } from '../helpers/ops.ts';
import { GRAD_CASES } from './grad-cases.ts';

interface Params {
  x: Tensor;
  W_enc: Tensor;
  b_enc: Tensor;
  W_dec: Tensor;
  b_dec: Tensor;
}

function params(rows: number, d: number, L: number, dtype: DType, seed: string): Params {
  const rng = new mi.Rng(seed);
  const r = (shape: number[], std: number) => mi.randn(shape, rng.fork(shape.join('x')), { dtype, std });
  return { x: r([rows, d], 1), W_enc: r([d, L], 0.5), b_enc: r([L], 0.3), W_dec: r([L, d], 0.5), b_dec: r([d], 0.2) };
}

/** The SAE by plain loops: per row pre, the kept latents, recon, loss, and AuxK. */
function loops(P: Params, kind: 'relu' | 'topk', k: number, l1: number, dead?: number[], kAux = 0) {
  const [x, We, be, Wd, bd] = [P.x, P.W_enc, P.b_enc, P.W_dec, P.b_dec].map((t) => Array.from(t.dataSync()));
  const [rows, d] = P.x.shape;
  const L = P.b_enc.size;
  const out = { z: [] as number[], values: [] as number[], indices: [] as number[], recon: [] as number[], loss: [] as number[] };
  const aux = { values: [] as number[], indices: [] as number[], loss: [] as number[] };
  const rank = (v: number[]) => v.map((_, i) => i).sort((i, j) => v[j] - v[i] || i - j);
  for (let r = 0; r < rows; r++) {
    const xr = x.slice(r * d, r * d + d);
    const pre = Array.from({ length: L }, (_, l) => be[l] + xr.reduce((s, v, j) => s + (v - bd[j]) * We[j * L + l], 0));
    const act = new Array<number>(L).fill(0);
    if (kind === 'relu') pre.forEach((v, l) => (act[l] = Math.max(v, 0)));
    else
      for (const l of rank(pre).slice(0, k)) {
        out.values.push(pre[l]);
        out.indices.push(l);
        act[l] = Math.max(pre[l], 0);
      }
    out.z.push(...act);
    const rec = Array.from({ length: d }, (_, j) => act.reduce((s, a, l) => s + a * Wd[l * d + j], bd[j]));
    out.recon.push(...rec);
    out.loss.push(rec.reduce((s, v, j) => s + (v - xr[j]) ** 2, 0) + l1 * act.reduce((s, a) => s + a, 0));
    if (kAux > 0) {
      const masked = pre.map((v, l) => (dead![l] ? v : -Infinity));
      const chosen = rank(masked).slice(0, kAux);
      const ehat = Array.from({ length: d }, (_, j) => chosen.reduce((s, l) => s + Math.max(masked[l], 0) * Wd[l * d + j], 0));
      for (const l of chosen) {
        aux.values.push(masked[l]);
        aux.indices.push(l);
      }
      aux.loss.push(ehat.reduce((s, v, j) => s + (v - (xr[j] - rec[j])) ** 2, 0));
    }
  }
  return { out, aux };
}

// ---- forward values -------------------------------------------------------------------------------
for (const dtype of FLOATS) {
  test(`sparseAutoencoder ${dtype}: relu and topk (with AuxK) match plain loops`, () =>
    mi.tidy(() => {
      const P = params(5, 6, 9, dtype, `sae-loops-${dtype}`);
      const tol = rtolOf(dtype) * 10;
      const relu = mi.sparseAutoencoder({ ...P, kind: 'relu', l1: 0.3 });
      const want = loops(P, 'relu', 0, 0.3);
      assertClose('relu z', vals(relu.z!), want.out.z, tol, tol);
      assertClose('relu recon', vals(relu.recon), want.out.recon, tol, tol);
      assertClose('relu loss', vals(relu.loss), want.out.loss, tol, tol);
      assert.equal(relu.recon.shape, [5, 6]);
      assert.equal(relu.loss.shape, [5]);
      const dead = [1, 0, 1, 1, 0, 0, 1, 0, 1];
      const top = mi.sparseAutoencoder({ ...P, kind: 'topk', k: 3, l1: 0.1, dead: mi.tensor(dead, [9], { dtype }), kAux: 2 });
      const w = loops(P, 'topk', 3, 0.1, dead, 2);
      assert.equal(vals(top.indices!), w.out.indices);
      assertClose('topk values', vals(top.values!), w.out.values, tol, tol);
      assertClose('topk recon', vals(top.recon), w.out.recon, tol, tol);
      assertClose('topk loss', vals(top.loss), w.out.loss, tol, tol);
      assert.equal(vals(top.auxIndices!), w.aux.indices);
      assertClose('aux values', vals(top.auxValues!), w.aux.values, tol, tol);
      assertClose('aux loss', vals(top.auxLoss!), w.aux.loss, tol, tol);
      assert.equal(top.indices!.dtype, 'int32');
      assert.is(top.z, undefined);
    }));
}

test('sparseAutoencoder topk: more AuxK slots than dead latents are filled with -inf (activation 0)', () =>
  mi.tidy(() => {
    const P = params(2, 3, 5, 'float64', 'sae-few-dead');
    const o = mi.sparseAutoencoder({ ...P, kind: 'topk', k: 2, dead: f64([5], 0), kAux: 2 });
    assert.equal(vals(o.auxValues!), [-Infinity, -Infinity, -Infinity, -Infinity]);
    assert.equal(vals(o.auxIndices!), [0, 1, 0, 1], 'ties keep the lower index first');
    // ehat = 0: the AuxK loss is the residual's energy
    const res = vals(mi.sum(mi.square(mi.sub(P.x, o.recon)), 1));
    assertClose('aux loss', vals(o.auxLoss!), res, 1e-12);
  }));

/** The same SAE composed of the engine's ops, as interp/sae did before the fused op. */
function composed(P: Params, kind: 'relu' | 'topk', k: number, l1: number) {
  const pre = mi.add(mi.matmul(mi.sub(P.x, P.b_dec), P.W_enc), P.b_enc);
  const [rows, L] = pre.shape;
  let z: Tensor;
  if (kind === 'relu') z = mi.relu(pre);
  else {
    const { values, indices } = mi.topk(pre, k);
    const flat = mi.reshape(mi.add(indices, mi.mul(mi.reshape(mi.arange(rows), [rows, 1]), L)), [rows * k]);
    z = mi.reshape(mi.scatterAdd(mi.reshape(mi.relu(values), [rows * k, 1]), flat, [rows * L, 1]), [rows, L]);
  }
  const recon = mi.add(mi.matmul(z, P.W_dec), P.b_dec);
  const loss = mi.add(mi.sum(mi.square(mi.sub(recon, P.x)), 1), mi.mul(mi.sum(z, 1), l1));
  return { z, recon, loss };
}

for (const kind of ['relu', 'topk'] as const) {
  test(`sparseAutoencoder ${kind}: values and gradients equal the composed ops (float64)`, () =>
    mi.tidy(() => {
      const P = params(7, 5, 11, 'float64', `sae-composed-${kind}`);
      const list = [P.x, P.W_enc, P.b_enc, P.W_dec, P.b_dec];
      for (const t of list) t.requiresGrad = true;
      const l1 = kind === 'relu' ? 0.2 : 0.05;
      const fused = mi.sparseAutoencoder({ ...P, kind, k: 4, l1 });
      const ref = composed(P, kind, 4, l1);
      assertClose('recon', vals(fused.recon), vals(ref.recon), 1e-12, 1e-12);
      assertClose('loss', vals(fused.loss), vals(ref.loss), 1e-12, 1e-12);
      // a loss that weighs rows differently and also pulls on recon
      const w = mi.randn([7], new mi.Rng('w'), { dtype: 'float64' });
      const wr = mi.randn([7, 5], new mi.Rng('wr'), { dtype: 'float64' });
      const objective = (o: { recon: Tensor; loss: Tensor }) => mi.add(mi.sum(mi.mul(o.loss, w)), mi.sum(mi.mul(o.recon, wr)));
      const gf = mi.backwardFrom(objective(fused));
      const gc = mi.backwardFrom(objective(ref));
      for (const [i, t] of list.entries()) assertClose(`grad ${i}`, vals(gf.get(t)!), vals(gc.get(t)!), 1e-10, 1e-10);
      for (const t of list) t.requiresGrad = false;
    }));
}

test('sparseAutoencoder topk: AuxK gradients equal the composed AuxK loss with its residual held constant (float64)', () =>
  mi.tidy(() => {
    const P = params(6, 5, 12, 'float64', 'sae-auxk');
    const list = [P.x, P.W_enc, P.b_enc, P.W_dec, P.b_dec];
    for (const t of list) t.requiresGrad = true;
    const deadData = [1, 1, 0, 1, 0, 1, 1, 0, 0, 1, 1, 0];
    const dead = mi.tensor(deadData, [12], { dtype: 'float64' });
    const fused = mi.sparseAutoencoder({ ...P, kind: 'topk', k: 3, dead, kAux: 4 });
    // composed: top kAux of the dead latents' pre-activations reconstruct the constant residual
    const ref = composed(P, 'topk', 3, 0);
    const pre = mi.add(mi.matmul(mi.sub(P.x, P.b_dec), P.W_enc), P.b_enc);
    const residual = mi.noGrad(() => mi.sub(P.x, ref.recon));
    const { values, indices } = mi.topk(mi.where(dead, pre, -Infinity), 4);
    const rowStart = mi.mul(mi.reshape(mi.arange(6), [6, 1]), 12);
    const flat = mi.reshape(mi.add(indices, rowStart), [24]);
    const zAux = mi.reshape(mi.scatterAdd(mi.reshape(mi.relu(values), [24, 1]), flat, [72, 1]), [6, 12]);
    const auxLoss = mi.sum(mi.square(mi.sub(mi.matmul(zAux, P.W_dec), residual)), 1);
    assert.equal(vals(fused.auxIndices!), vals(indices));
    assertClose('aux loss', vals(fused.auxLoss!), vals(auxLoss), 1e-12, 1e-12);
    const w = mi.randn([6], new mi.Rng('aux w'), { dtype: 'float64' });
    const gf = mi.backwardFrom(mi.add(mi.sum(fused.loss), mi.sum(mi.mul(fused.auxLoss!, w))));
    const gc = mi.backwardFrom(mi.add(mi.sum(ref.loss), mi.sum(mi.mul(auxLoss, w))));
    for (const [i, t] of list.entries()) assertClose(`grad ${i}`, vals(gf.get(t)!), vals(gc.get(t)!), 1e-10, 1e-10);
    for (const t of list) t.requiresGrad = false;
  }));

test('sparseAutoencoder: no gradient recorded without a differentiable input; nothing left behind', () => {
  const before = mi.liveTensorCount();
  mi.tidy(() => {
    const P = params(3, 4, 6, 'float32', 'sae-nograd');
    const o = mi.sparseAutoencoder({ ...P, kind: 'topk', k: 2 });
    assert.not.ok(o.loss.requiresGrad);
  });
  assert.is(mi.liveTensorCount(), before);
});

// ---- errors ---------------------------------------------------------------------------------------
const P32 = () => ({ x: f32([3, 4]), W_enc: f32([4, 6]), b_enc: f32([6]), W_dec: f32([6, 4]), b_dec: f32([4]) });
const mismatches: Mismatch[] = [
  ['x rank', () => mi.sparseAutoencoder({ ...P32(), x: f32([12]), kind: 'relu' }), 'sparseAutoencoder', 'x', '[12]'],
  [
    'W_enc rows',
    () => mi.sparseAutoencoder({ ...P32(), W_enc: f32([5, 6]), kind: 'relu' }),
    'sparseAutoencoder',
    'W_enc',
    '[5,6]',
    '[4,6]',
  ],
  ['b_enc', () => mi.sparseAutoencoder({ ...P32(), b_enc: f32([5]), kind: 'relu' }), 'sparseAutoencoder', 'b_enc', '[5]', '[6]'],
  ['W_dec', () => mi.sparseAutoencoder({ ...P32(), W_dec: f32([4, 6]), kind: 'relu' }), 'sparseAutoencoder', 'W_dec', '[4,6]', '[6,4]'],
  ['b_dec', () => mi.sparseAutoencoder({ ...P32(), b_dec: f32([6]), kind: 'relu' }), 'sparseAutoencoder', 'b_dec', '[6]', '[4]'],
  ['kind', () => mi.sparseAutoencoder({ ...P32(), kind: 'gated' as 'relu' }), 'sparseAutoencoder', "'gated'"],
  ['k too large', () => mi.sparseAutoencoder({ ...P32(), kind: 'topk', k: 7 }), 'sparseAutoencoder', 'k in [1, 6]', '7'],
  ['k missing', () => mi.sparseAutoencoder({ ...P32(), kind: 'topk' }), 'sparseAutoencoder', 'k in [1, 6]'],
  ['kAux on relu', () => mi.sparseAutoencoder({ ...P32(), kind: 'relu', kAux: 2, dead: f32([6]) }), 'sparseAutoencoder', 'kAux=2', 'topk'],
  ['kAux without dead', () => mi.sparseAutoencoder({ ...P32(), kind: 'topk', k: 2, kAux: 2 }), 'sparseAutoencoder', 'kAux=2', 'dead'],
  ['dead shape', () => mi.sparseAutoencoder({ ...P32(), kind: 'topk', k: 2, kAux: 2, dead: f32([5]) }), 'sparseAutoencoder', 'dead', '[5]'],
  ['mixed dtypes', () => mi.sparseAutoencoder({ ...P32(), b_dec: f64([4]), kind: 'relu' }), 'sparseAutoencoder', 'mixed dtypes'],
];
for (const [name, fn, ...fragments] of mismatches) test(`error: ${name}`, () => mi.tidy(() => throwsNaming(fn, ...fragments)));

// ---- gradients ------------------------------------------------------------------------------------
for (const [name, f, inputs] of GRAD_CASES.sae)
  test(`gradcheck: ${name}`, () => {
    gradcheckPoisoned(name, f, inputs);
  });

test.run();
