// Steering hooks (interp/steering.ts): activation addition over an absolute position range, and
// SAE-latent clamping, each checked against the same edit computed by hand from the cached
// activation (float64 loops here), with positions outside the range untouched.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as mi from '../../engine/index.ts';
import { Sae } from '../../interp/sae/index.ts';
import { addVectorHook, clampLatentHook, latentDirection, steeringEffect } from '../../interp/steering.ts';
import { loadPretrained } from '../../mamba/pretrained.ts';
import { modelDir } from '../helpers/hf-fixture.ts';

const backend = mi.cpuBackend();
const IDS = [[3, 17, 5, 42, 8, 8, 21, 30, 2]];
const HOOK = 'blocks.0.hook_resid_post';

/** The activation at HOOK with and without `hook`, as flat arrays ([1, T, d]). */
async function edited(hook: ReturnType<typeof addVectorHook>) {
  const model = await loadPretrained(modelDir('tiny'), { backend });
  try {
    const read = (hooks: ReturnType<typeof addVectorHook>[]) =>
      mi.noGrad(() => mi.tidy(() => model.run(IDS, { hooks, cache: [HOOK] }).cache.get(HOOK)!)).dataSync();
    return { before: Float64Array.from(read([])), after: Float64Array.from(read([hook])), d: model.config.hidden_size };
  } finally {
    model.dispose();
  }
}

test('addVectorHook adds scale * v at positions [from, to) and nowhere else', async () => {
  const d = 16; // the tiny fixture's hidden size
  const v = Array.from({ length: d }, (_, i) => Math.sin(i + 1));
  const { before, after } = await edited(addVectorHook(HOOK, v, { from: 2, to: 5, scale: 1.5 }));
  for (let t = 0; t < IDS[0].length; t++)
    for (let k = 0; k < d; k++) {
      const want = before[t * d + k] + (t >= 2 && t < 5 ? 1.5 * v[k] : 0);
      assert.ok(Math.abs(after[t * d + k] - want) < 1e-5, `position ${t}, channel ${k}`);
    }
});

test('clampLatentHook sets latent j to the value: x + (value - z_j(x)) W_dec[j] / inputScale, in range only', async () => {
  const d = 16,
    L = 24,
    j = 5,
    value = 4;
  const rng = new mi.Rng(11);
  const w = (n: number, s: number) => Float32Array.from({ length: n }, () => s * rng.normal());
  const Wenc = w(d * L, 0.2),
    benc = w(L, 0.1),
    Wdec = w(L * d, 0.2),
    bdec = w(d, 0.1);
  const T = (a: Float32Array, shape: number[]) => mi.keep(mi.tensor(a, shape, { backend }));
  const sae = new Sae(
    { kind: 'relu', d, latents: L, inputScale: 0.7 },
    { W_enc: T(Wenc, [d, L]), b_enc: T(benc, [L]), W_dec: T(Wdec, [L, d]), b_dec: T(bdec, [d]) },
  );
  const { before, after } = await edited(clampLatentHook(HOOK, sae, j, value, { from: 3 }));
  const dir = await latentDirection(sae, j);
  for (let t = 0; t < IDS[0].length; t++) {
    // z_j of the unedited activation, from the SAE's encoder (interp/sae tests check the encoder itself)
    const x = before.subarray(t * d, (t + 1) * d);
    const zj = (await mi.tidy(() => sae.encode(mi.tensor(Float32Array.from(x), [1, d], { backend }))).data())[j];
    for (let k = 0; k < d; k++) {
      assert.ok(Math.abs(dir[k] - Wdec[j * d + k] / 0.7) < 1e-6, 'the direction is W_dec[j] / inputScale');
      const want = x[k] + (t >= 3 ? (value - zj) * dir[k] : 0);
      assert.ok(Math.abs(after[t * d + k] - want) < 1e-4, `position ${t}, channel ${k}: ${after[t * d + k]} vs ${want}`);
    }
  }
  sae.dispose();
});

test('steeringEffect: KL per position computed by hand from the two passes; a zero vector changes nothing', async () => {
  const model = await loadPretrained(modelDir('tiny'), { backend });
  try {
    const v = Array.from({ length: 16 }, (_, i) => (i % 2 ? 2 : -2));
    const hooks = [addVectorHook(HOOK, v, { from: 4 })];
    const e = await steeringEffect(model, IDS[0], hooks, { maxNewTokens: 5 });
    const logits = (hs: typeof hooks) => Float64Array.from(mi.noGrad(() => mi.tidy(() => model.run(IDS, { hooks: hs }).logits)).dataSync());
    const a = logits([]),
      b = logits(hooks);
    const V = model.config.vocab_size;
    for (let t = 0; t < IDS[0].length; t++) {
      const lse = (x: Float64Array) => {
        let m = -Infinity;
        for (let v2 = 0; v2 < V; v2++) m = Math.max(m, x[t * V + v2]);
        let s2 = 0;
        for (let v2 = 0; v2 < V; v2++) s2 += Math.exp(x[t * V + v2] - m);
        return m + Math.log(s2);
      };
      const la = lse(a),
        lb = lse(b);
      let kl = 0;
      for (let v2 = 0; v2 < V; v2++) kl += Math.exp(a[t * V + v2] - la) * (a[t * V + v2] - la - (b[t * V + v2] - lb));
      assert.ok(Math.abs(e.klPerPosition[t] - kl) < 1e-5, `KL at ${t}: ${e.klPerPosition[t]} vs ${kl}`);
      if (t < 4) assert.ok(Math.abs(kl) < 1e-9, `no effect before the range (${t})`);
    }
    assert.ok(e.meanKl > 0);
    const none = await steeringEffect(model, IDS[0], [addVectorHook(HOOK, new Array(16).fill(0))], { maxNewTokens: 5 });
    assert.ok(none.klPerPosition.every((k) => Math.abs(k) < 1e-9));
    assert.equal(none.steeredTokens, none.plainTokens);
  } finally {
    model.dispose();
  }
});

test.run();
