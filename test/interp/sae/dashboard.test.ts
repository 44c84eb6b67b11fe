// Feature dashboards on a planted SAE whose latents are known by construction: inputs are c * e_token
// (c uniform in [0.5, 1.5]) in d = 4; latent 0 reads e_2 (fires on token 2 only, activation c), latent 1
// reads e_1 + e_3 (tokens 1 and 3), latent 2 never fires. Every expectation is computed here from the
// planted tokens and scales, not from the dashboard code.
import assert from 'node:assert/strict';
import { test } from 'uvu';
import * as mi from '../../../engine/index.ts';
import { neuronpediaBatch, saeDashboard } from '../../../interp/sae/dashboard.ts';
import { Sae } from '../../../interp/sae/index.ts';

const d = 4,
  L = 3,
  seqLen = 12,
  nSeq = 20,
  n = seqLen * nSeq,
  V = 4;
const rng = new mi.Rng('dashboard-planted');
const tokens = Int32Array.from({ length: n }, () => Math.floor(rng.uniform() * V));
const scale = Float64Array.from({ length: n }, () => 0.5 + rng.uniform());
const acts = new Float32Array(n * d);
tokens.forEach((t, r) => (acts[r * d + t] = scale[r]));
const W_enc = new Float32Array(d * L);
W_enc[2 * L + 0] = 1;
W_enc[1 * L + 1] = 1;
W_enc[3 * L + 1] = 1;
const b_enc = Float32Array.from([0, 0, -100]);
const W_dec = Float32Array.from({ length: L * d }, () => rng.normal());
const sae = new Sae(
  { kind: 'relu', d, latents: L, inputScale: 2 },
  {
    W_enc: mi.keep(mi.tensor(W_enc, [d, L])),
    b_enc: mi.keep(mi.tensor(b_enc, [L])),
    W_dec: mi.keep(mi.tensor(W_dec, [L, d])),
    b_dec: mi.keep(mi.tensor(new Float32Array(d), [d])),
  },
);
const W_U = Float32Array.from({ length: V * d }, () => rng.normal());
const normWeight = Float32Array.from({ length: d }, () => 0.5 + rng.uniform());
const names = ['a', 'b', 'c', 'd'];
// the planted variable: "the token is 1 or 3", defined on every row but the first of each sequence
const plantedRows = Int32Array.from({ length: n }, (_, r) => r).filter((r) => r % seqLen !== 0);
const planted = {
  name: 'isOneOrThree',
  rows: plantedRows,
  values: Float64Array.from(plantedRows, (r) => (tokens[r] === 1 || tokens[r] === 3 ? 1 : 0)),
};
const noise = { name: 'noise', values: Float64Array.from({ length: n }, () => rng.uniform()) };

const dash = await saeDashboard(
  {
    sae,
    acts,
    inputs: tokens,
    seqLen,
    tokenString: (id) => names[id],
    unembed: { W_U, vocab: V, normWeight },
    variables: [noise, planted],
  },
  { topK: 5, before: 3, after: 2, quantiles: 4, perQuantile: 2, histogramBins: 10, logits: 2 },
);
// the latent's activation on row r, by construction (z = ReLU(2 * c * [token matches]))
const planted0 = (r: number) => (tokens[r] === 2 ? 2 * scale[r] : 0);

test('a latent that fires on one token: density is that token frequency, top contexts are that token, strongest first', () => {
  const f = dash.latents[0];
  const count = tokens.filter((t) => t === 2).length;
  assert.equal(f.density, count / n);
  assert.equal(f.log10Density, Math.log10(count / n + 1e-10));
  const want = Array.from({ length: n }, (_, r) => r)
    .filter((r) => tokens[r] === 2)
    .sort((a, b) => scale[b] - scale[a])
    .slice(0, 5);
  assert.deepEqual(
    f.top.map((c) => c.sequence * seqLen + c.position),
    want,
  );
  for (const c of f.top) {
    assert.equal(c.strings[c.index], 'c');
    assert.ok(Math.abs(c.activation - 2 * scale[c.sequence * seqLen + c.position]) < 1e-5);
    // every neighbour's shading value is the latent on that row
    c.values.forEach((v, i) => assert.ok(Math.abs(v - planted0(c.sequence * seqLen + c.start + i)) < 1e-5));
    assert.equal(c.start, Math.max(0, c.position - 3));
    assert.equal(c.tokens.length, Math.min(seqLen - 1, c.position + 2) - c.start + 1);
  }
  assert.ok(Math.abs(f.maxActivation - f.top[0].activation) < 1e-12);
  assert.equal(
    f.histogram.counts.reduce((a, b) => a + b, 0),
    count,
  );
  assert.ok(f.histogram.counts[9] >= 1, 'the max lands in the last bin');
});

test('quantile intervals cover the non-zero activations in order, each example inside its interval', () => {
  const f = dash.latents[1];
  const active = Array.from({ length: n }, (_, r) => r).filter((r) => tokens[r] === 1 || tokens[r] === 3);
  const sorted = active.map((r) => 2 * scale[r]).sort((a, b) => a - b);
  assert.equal(f.quantiles.length, 4);
  assert.ok(Math.abs(f.quantiles[0].lo - sorted[0]) < 1e-5);
  assert.ok(Math.abs(f.quantiles[3].hi - sorted[sorted.length - 1]) < 1e-5);
  assert.ok(Math.abs(f.quantiles.reduce((s, q) => s + q.fraction, 0) - 1) < 1e-12);
  for (const q of f.quantiles) {
    assert.equal(q.examples.length, 2);
    for (const e of q.examples) assert.ok(e.activation >= q.lo && e.activation <= q.hi);
  }
  for (let i = 1; i < 4; i++) assert.ok(f.quantiles[i].lo >= f.quantiles[i - 1].hi);
});

test('decoder logits equal a float64 loop over W_dec / scale, the norm weight and W_U', () => {
  for (const f of dash.latents) {
    const logits = Array.from({ length: V }, (_, v) => {
      let s = 0;
      for (let i = 0; i < d; i++) s += (W_dec[f.latent * d + i] / 2) * normWeight[i] * W_U[v * d + i];
      return s;
    });
    const order = logits.map((_, v) => v).sort((a, b) => logits[b] - logits[a]);
    assert.deepEqual(
      f.logits!.positive.map((x) => x.token),
      order.slice(0, 2),
    );
    assert.deepEqual(
      f.logits!.negative.map((x) => x.token),
      order.slice(-2).reverse(),
    );
    for (const x of [...f.logits!.positive, ...f.logits!.negative]) assert.ok(Math.abs(x.value - logits[x.token]) < 1e-9);
  }
});

test('the correlated variable is the planted one; a dead latent has empty panels', () => {
  assert.equal(dash.latents[1].correlates[0].variable, 'isOneOrThree');
  assert.ok(dash.latents[1].correlates[0].r > 0.8);
  assert.equal(dash.latents[0].correlates[0].variable, 'token=c');
  const dead = dash.latents[2];
  assert.equal(dead.density, 0);
  assert.deepEqual(dead.top, []);
  assert.deepEqual(dead.quantiles, []);
  assert.deepEqual(dead.correlates, []);
});

test('the Neuronpedia batch carries the dashboard under SAEDashboard names', () => {
  const batch = neuronpediaBatch(dash, { modelId: 'm', layer: 'blocks.0.hook_resid_post', saeSet: 'relu' });
  const f0 = batch.features[0];
  assert.equal(f0.feature_index, 0);
  assert.equal(f0.frac_nonzero, dash.latents[0].density);
  assert.equal(f0.freq_hist_data_bar_values.length, f0.freq_hist_data_bar_heights.length);
  assert.deepEqual(
    f0.pos_str,
    dash.latents[0].logits!.positive.map((x) => x.string),
  );
  assert.equal(f0.activations.length, 5 + 4 * 2);
  const top = f0.activations[0];
  assert.equal(top.bin_min, -1);
  assert.equal(top.tokens[top.qualifying_token_index], 'c');
  assert.equal(top.values[top.qualifying_token_index], f0.maxActApprox);
});

test('bad input is one line naming the thing', async () => {
  await assert.rejects(saeDashboard({ sae, acts, inputs: tokens.subarray(1), seqLen }), /not whole sequences/);
  await assert.rejects(saeDashboard({ sae, acts, inputs: tokens, seqLen }, { latents: [3] }), /latent 3 out of range/);
});
test.run();
