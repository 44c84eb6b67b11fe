// interp/sae/baselines.ts and train.ts untrainedSae: the baselines at matched L0.
// PCA is checked against a planted covariance: rows built from orthogonal +-1 (Walsh) columns
// scaled by s_j and rotated by a random orthogonal Q have sample covariance exactly
// Q diag(s²) Qᵀ, so the top-k explained variance is sum of the k largest s_j² / sum s_j² without
// any eigen-solver; the untrained SAE is checked against trainSae's own initialisation.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as mi from '../../../engine/index.ts';
import { pcaBaseline, reconstructionMetrics, saeMetrics, SAE_PARAM_NAMES, trainSae, untrainedSae } from '../../../interp/sae/index.ts';
import { planted } from './planted.ts';

mi.setBackend(mi.cpuBackend());

/** n = 2^m rows [n, d] with sample covariance Q diag(s²) Qᵀ and mean mu; also Q's rows. */
function plantedCovariance(m: number, s: number[], seed: string): { data: Float32Array; n: number; d: number } {
  const n = 2 ** m,
    d = s.length;
  if (d >= n) throw new Error('need d < n');
  // Sylvester-Hadamard column c (c >= 1): (-1)^popcount(r & c), zero mean, mutually orthogonal
  const walsh = (r: number, c: number) => {
    let x = r & c,
      bits = 0;
    while (x) {
      bits += x & 1;
      x >>= 1;
    }
    return bits % 2 ? -1 : 1;
  };
  const rng = new mi.Rng(seed);
  // a random orthogonal Q by Gram-Schmidt on Gaussian rows
  const Q: number[][] = [];
  while (Q.length < d) {
    const v = Array.from({ length: d }, () => rng.normal());
    for (const q of Q) {
      const dot = v.reduce((a, x, j) => a + x * q[j], 0);
      for (let j = 0; j < d; j++) v[j] -= dot * q[j];
    }
    const norm = Math.hypot(...v);
    Q.push(v.map((x) => x / norm));
  }
  const mu = Array.from({ length: d }, () => 3 * rng.normal());
  const data = new Float32Array(n * d);
  for (let r = 0; r < n; r++)
    for (let i = 0; i < d; i++) {
      let x = mu[i];
      for (let j = 0; j < d; j++) x += Q[j][i] * s[j] * walsh(r, j + 1);
      data[r * d + i] = x;
    }
  return { data, n, d };
}

test('PCA baseline: eigenvalues are the planted variances; explained variance of top-k = sum of top-k eigenvalues / trace', () => {
  const s = [3, 0.5, 2, 1, 0.25, 1.5];
  const { data, d } = plantedCovariance(6, s, 'pca');
  const variances = s.map((x) => x * x).sort((a, b) => b - a);
  const trace = variances.reduce((a, b) => a + b, 0);
  for (let k = 1; k <= d; k++) {
    const pca = pcaBaseline(data, d, k);
    assert.is(pca.k, k);
    pca.eigenvalues.forEach((v, i) => assert.ok(Math.abs(v - variances[i]) < 1e-4, `eigenvalue ${i}: ${v} vs ${variances[i]}`));
    const ev = reconstructionMetrics(data, pca.reconstruct(data), d).explainedVariance;
    const want = variances.slice(0, k).reduce((a, b) => a + b, 0) / trace;
    assert.ok(Math.abs(ev - want) < 1e-5, `k = ${k}: explained variance ${ev}, planted ${want}`);
  }
  // k is the SAE's L0 rounded, clipped to [1, d]
  assert.is(pcaBaseline(data, d, 2.4).k, 2);
  assert.is(pcaBaseline(data, d, 2.6).k, 3);
  assert.is(pcaBaseline(data, d, 0.2).k, 1);
  assert.is(pcaBaseline(data, d, 40).k, d);
});

test('PCA baseline: the hook reconstructs a model activation [B, T, d] as reconstruct() does', async () => {
  const { data, d } = plantedCovariance(5, [2, 1, 0.5, 0.3], 'pca-hook');
  const pca = pcaBaseline(data, d, 2);
  const rows = data.subarray(0, 12 * d);
  const out = mi.tidy(() => pca.hook(mi.tensor(rows, [3, 4, d])));
  assert.equal(out.shape, [3, 4, d]);
  const got = await out.data(),
    want = pca.reconstruct(rows);
  for (let i = 0; i < want.length; i++) assert.ok(Math.abs(got[i] - want[i]) < 1e-4, `value ${i}: ${got[i]} vs ${want[i]}`);
  out.dispose();
});

test("untrainedSae: trainSae's initialisation of the same shape, TopK with the matched k (L0 = k)", async () => {
  const small = planted('random-sae', 8, 12, 512, 2 / 12);
  const opts = { d: 8, latents: 32, seed: 7 };
  const random = await untrainedSae(small.xs, { ...opts, k: 3.4 });
  assert.is(random.config.kind, 'topk');
  assert.is(random.config.k, 3);
  assert.is(random.latents, 32);
  // trainSae with lr 0 keeps its initial parameters (decoder rows are unit norm already)
  const init = await trainSae(small.xs, { ...opts, kind: 'topk', k: 3, steps: 1, lr: 0 });
  assert.is(random.config.inputScale, init.config.inputScale);
  for (const name of SAE_PARAM_NAMES) {
    const [a, b] = [await random.params[name].data(), await init.params[name].data()];
    for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i] - b[i]) < 1e-6, `${name}[${i}]: ${a[i]} vs ${b[i]}`);
  }
  // matched L0: every row keeps k latents (their pre-activations are positive on this data)
  const m = await saeMetrics(random, small.xs);
  assert.ok(m.l0 <= 3 && m.l0 > 2.5, `L0 ${m.l0}`);
  for (const s of [random, init]) s.dispose();
});

test.run();
