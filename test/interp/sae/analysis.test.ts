// interp/sae/analysis.ts on an SAE trained on planted features (./planted.ts): spliceHook replaces an
// activation (and with the error term is the identity), loss recovered, latents correlate with their
// planted feature, top-activating rows are sorted; a mismatched label is an error.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as mi from '../../../engine/index.ts';
import {
  ceLossScore,
  encodeAll,
  featureDensity,
  klDivScore,
  latentCorrelations,
  lossRecovered,
  matchDirections,
  spliceHook,
  topActivating,
  topCorrelatedLatents,
} from '../../../interp/sae/index.ts';
import { d, data, F, n, trainedSae } from './planted.ts';

test('spliceHook replaces an activation; lossRecovered', async () => {
  const sae = await trainedSae('topk');
  const x = mi.tensor(data.xs.slice(0, 2 * 3 * d), [2, 3, d]);
  const hook = spliceHook(sae);
  const spliced = hook(x);
  assert.equal(spliced.shape, [2, 3, d]);
  const direct = sae.forward(mi.reshape(x, [6, d])).dataSync();
  assert.equal(Array.from(spliced.dataSync()), Array.from(direct));
  // with the error term added back the hook is the identity (up to rounding)
  const identity = spliceHook(sae, { addError: true })(x).dataSync();
  x.dataSync().forEach((v, i) => assert.ok(Math.abs(v - identity[i]) < 1e-5));
  assert.throws(() => hook(mi.zeros([2, d + 1])), /width 16/);
  assert.ok(Math.abs(lossRecovered({ clean: 2, spliced: 2.5, ablated: 4 }) - 0.75) < 1e-12);
});

test('analysis: latents correlate with their planted feature; top-activating rows are sorted', async () => {
  const sae = await trainedSae('topk');
  const z = await encodeAll(sae, data.xs, 1000);
  assert.is(z.length, n * 64);
  const match = await matchDirections(sae, data.features);
  let agree = 0;
  for (let f = 0; f < F; f++) {
    const label = Float32Array.from({ length: n }, (_, r) => data.coeffs[r * F + f]);
    const [best] = topCorrelatedLatents(z, 64, label, 1);
    if (best.latent === match[f].latent && best.r > 0.5) agree++;
  }
  // the latent whose decoder matches a feature is also the one most correlated with its presence
  assert.ok(agree >= F - 3, `${agree} of ${F} features`);
  const r = latentCorrelations(
    z,
    64,
    Float32Array.from({ length: n }, () => 1),
  );
  assert.ok(
    r.every((v) => v === 0),
    'a constant label correlates with nothing',
  );
  const top = topActivating(z, 64, match[0].latent, 5);
  assert.is(top.indices.length, 5);
  for (let i = 0; i < 5; i++) {
    assert.is(top.values[i], z[top.indices[i] * 64 + match[0].latent]);
    if (i) assert.ok(top.values[i] <= top.values[i - 1]);
  }
});

test('SAELens scores: ce_loss_score, kl_div_score; feature density puts dead latents at -10', () => {
  assert.ok(Math.abs(ceLossScore({ clean: 1, spliced: 1.5, ablated: 3 }) - 0.75) < 1e-12);
  assert.ok(Math.abs(klDivScore({ spliced: 0.1, ablated: 0.4 }) - 0.75) < 1e-12);
  assert.throws(() => klDivScore({ spliced: 0.1, ablated: 0 }), /above 0/);
  const { log10, bins } = featureDensity([0, 1e-3, 0.5, 1]);
  assert.equal(
    Array.from(log10, (v) => Math.round(v * 1000) / 1000),
    [-10, -3, -0.301, 0],
  );
  assert.is(bins.length, 20);
  assert.is(
    bins.reduce((a, b) => a + b.count, 0),
    4,
  );
  // -10 in the first bin, -3 in [-3, -2.5), both -0.301 and 0 in the last
  assert.equal(
    bins.filter((b) => b.count).map((b) => [b.lo, b.count]),
    [
      [-10, 1],
      [-3, 1],
      [-0.5, 2],
    ],
  );
});

test('analysis errors name the problem', () => {
  assert.throws(() => latentCorrelations(new Float32Array(10), 3, [1, 2]), /latentCorrelations/);
});

test.run();
