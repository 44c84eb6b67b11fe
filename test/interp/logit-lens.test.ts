// interp/logit-lens.ts on a tiny random Mamba in float64 with an untied head and a non-trivial final
// norm weight (so using the embeddings as the head, or dropping the weight, shows), each number
// checked against a plain loop over the cached residuals or against the model's own logits.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as mi from '../../engine/index.ts';
import { makeConfig } from '../../mamba/config.ts';
import { initMamba, type MambaLM } from '../../mamba/model.ts';
import { accumulatedResidual, directLogitAttribution, disposeLens, lensLogitDiff, logitDiffOf } from '../../interp/logit-lens.ts';

const V = 11,
  D = 8,
  L = 2,
  T = 7,
  B = 3;
function tinyModel(): MambaLM {
  const cfg = makeConfig({
    vocab_size: V,
    hidden_size: D,
    num_hidden_layers: L,
    state_size: 4,
    expand: 2,
    conv_kernel: 3,
    initializer_range: 0.5,
    tie_word_embeddings: false,
    pad_token_id: null,
    bos_token_id: null,
    eos_token_id: null,
  });
  const m = initMamba(cfg, new mi.Rng('logit-lens-test'), { dtype: 'float64', backend: mi.cpuBackend() });
  const r = new mi.Rng('norm-f');
  m.params.get('backbone.norm_f.weight')!.dispose();
  m.params.set(
    'backbone.norm_f.weight',
    mi.tensor(
      Float64Array.from({ length: D }, () => 0.5 + r.uniform()),
      [D],
      { dtype: 'float64', backend: mi.cpuBackend() },
    ),
  );
  return m;
}
const model = tinyModel();
const rng = new mi.Rng('ids');
const ids = Array.from({ length: B }, () => Array.from({ length: T }, () => rng.int(0, V - 1)));
const diff = { position: [6, 3, 5], a: [1, 4, 9], b: [2, 0, 9 - 1] };

async function rejects(fn: () => Promise<unknown>, pattern: RegExp): Promise<void> {
  try {
    await fn();
  } catch (e) {
    assert.match((e as Error).message, pattern);
    return;
  }
  assert.unreachable(`expected an error matching ${pattern}`);
}
const maxAbsDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  assert.is(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
};
const cached = (names: string[]) =>
  mi.tidy(() => {
    const r = mi.noGrad(() => model.run(ids, { cache: names }));
    return names.map((n) => r.cache.get(n)!.dataSync() as Float64Array);
  });
const logitsOf = () => mi.tidy(() => mi.noGrad(() => model.forward(ids)).dataSync() as Float64Array);

/** The lens computed by hand: rows [B*T][d] of x, scaled by s (per cell), times w, times the head. */
function lensByHand(x: Float64Array, scaleOf: Float64Array): Float64Array {
  const w = model.p('backbone.norm_f.weight').dataSync();
  const wU = model.p('lm_head.weight').dataSync();
  const out = new Float64Array(B * T * V);
  for (let c = 0; c < B * T; c++)
    for (let v = 0; v < V; v++) {
      let s = 0;
      for (let j = 0; j < D; j++) s += x[c * D + j] * scaleOf[c] * w[j] * wU[v * D + j];
      out[c * V + v] = s;
    }
  return out;
}
const rmsScale = (x: Float64Array) =>
  Float64Array.from({ length: B * T }, (_, c) => {
    let ms = 0;
    for (let j = 0; j < D; j++) ms += x[c * D + j] ** 2 / D;
    return 1 / Math.sqrt(ms + model.config.layer_norm_epsilon);
  });

test('the last layer of the lens is the model logits, with the norm scale recomputed or frozen', () => {
  const want = logitsOf();
  for (const scale of ['recompute', 'frozen'] as const) {
    const lens = accumulatedResidual(model, ids, { scale });
    assert.equal(lens.labels, ['hook_embed', 'blocks.0.hook_resid_post', 'blocks.1.hook_resid_post']);
    assert.ok(maxAbsDiff(lens.logits[L].dataSync(), want) < 1e-12, scale);
    disposeLens(lens);
  }
});

test('every layer of the lens matches a loop over the cached residuals (each its own scale, or the final one)', () => {
  const names = ['hook_embed', 'blocks.0.hook_resid_post', 'blocks.1.hook_resid_post'];
  const res = cached(names);
  const frozenScale = rmsScale(res[L]);
  const rec = accumulatedResidual(model, ids, { scale: 'recompute' });
  const fro = accumulatedResidual(model, ids, { scale: 'frozen' });
  const raw = accumulatedResidual(model, ids, { applyLn: false });
  for (let l = 0; l <= L; l++) {
    assert.ok(maxAbsDiff(rec.logits[l].dataSync(), lensByHand(res[l], rmsScale(res[l]))) < 1e-12, `recompute ${l}`);
    assert.ok(maxAbsDiff(fro.logits[l].dataSync(), lensByHand(res[l], frozenScale)) < 1e-12, `frozen ${l}`);
    assert.ok(maxAbsDiff(raw.resid[l].dataSync(), res[l]) === 0, `raw residual ${l}`);
  }
  // the two scales differ before the last layer (otherwise the test could not tell them apart)
  assert.ok(maxAbsDiff(rec.logits[0].dataSync(), fro.logits[0].dataSync()) > 1e-3);
  for (const l of [rec, fro, raw]) disposeLens(l);
});

test('the logit difference is read per example at its own position and tokens', async () => {
  const logits = logitsOf();
  const t = mi.tensor(logits, [B, T, V], { dtype: 'float64', backend: mi.cpuBackend() });
  const ld = await logitDiffOf(model, t, diff);
  t.dispose();
  for (let e = 0; e < B; e++) {
    const o = (e * T + diff.position[e]) * V;
    assert.ok(Math.abs(ld[e] - (logits[o + diff.a[e]] - logits[o + diff.b[e]])) < 1e-15);
  }
});

test('DLA parts (final scale frozen) sum to the logit difference, and each is the frozen lens step it adds', async () => {
  const dla = await directLogitAttribution(model, ids, diff);
  assert.equal(dla.labels, ['hook_embed', 'blocks.0.hook_mixer_out', 'blocks.1.hook_mixer_out']);
  // the model's logit difference from its logits, by hand
  const logits = logitsOf();
  for (let e = 0; e < B; e++) {
    const o = (e * T + diff.position[e]) * V;
    const want = logits[o + diff.a[e]] - logits[o + diff.b[e]];
    assert.ok(Math.abs(dla.logitDiff[e] - want) < 1e-12);
    const total = dla.perExample.reduce((s, p) => s + p[e], 0);
    assert.ok(Math.abs(total - want) < 1e-12, `example ${e}: parts ${total} vs ${want}`);
  }
  // the frozen lens at layer l is embed + mixers 0..l-1, so consecutive layers differ by one mixer's part
  const lens = await lensLogitDiff(model, ids, diff, 'frozen');
  for (let e = 0; e < B; e++) {
    assert.ok(Math.abs(lens[0][e] - dla.perExample[0][e]) < 1e-12);
    for (let l = 0; l < L; l++) assert.ok(Math.abs(lens[l + 1][e] - lens[l][e] - dla.perExample[l + 1][e]) < 1e-12, `layer ${l}`);
  }
  // every part is non-trivial and the means are the means
  for (const p of dla.perExample) assert.ok(p.some((v) => Math.abs(v) > 1e-4));
  dla.mean.forEach((m, k) => assert.ok(Math.abs(m - dla.perExample[k].reduce((s, v) => s + v, 0) / B) < 1e-15));
});

test('bad logit differences are refused with a line naming what is wrong', async () => {
  await rejects(() => directLogitAttribution(model, ids, { position: T, a: 0, b: 1 }), /position 7 is outside \[0, 7\)/);
  await rejects(() => directLogitAttribution(model, ids, { position: 0, a: V, b: 1 }), /token a 11 is outside/);
  await rejects(() => directLogitAttribution(model, ids, { position: [0, 1], a: 0, b: 1 }), /position has 2 entries for 3 examples/);
  assert.throws(() => accumulatedResidual(model, ids, { scale: 'both' as 'frozen' }), /scale must be/);
});

test.after(() => model.dispose());
test.run();
