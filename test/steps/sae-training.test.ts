// steps/sae-training.ts: the split by whole sequences, and held-out metrics that are the held-out
// rows' only. A memorising SAE (one latent per training row, reconstructing it exactly) has FVU 0
// on the rows it was built from; its held-out FVU must be what saeMetrics gives on the held-out
// rows, far from 0, so metrics taken on training rows would fail the test.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as mi from '../../engine/index.ts';
import { Sae, saeMetrics } from '../../interp/sae/index.ts';
import { heldOutMetrics, SAE_HELD_OUT_FRACTION, saeSplit } from '../../steps/sae-training.ts';

mi.setBackend(mi.cpuBackend());

/** rows [n, d] of Gaussian noise around a random mean */
function noise(n: number, d: number, seed: string): Float32Array {
  const rng = new mi.Rng(seed);
  const mean = Array.from({ length: d }, () => rng.normal());
  return Float32Array.from({ length: n * d }, (_, i) => mean[i % d] + rng.normal());
}

/**
 * A TopK (k = 1) SAE whose latent i is training row x_i: pre_i = x·x_i - |x_i|²/2 is largest at
 * the nearest training row, and decoding pre_i(x_i) = |x_i|²/2 along W_dec row 2 x_i / |x_i|²
 * gives x_i back exactly. On other rows it returns a scaled nearest neighbour.
 */
function memorisingSae(train: Float32Array, d: number): Sae {
  const n = train.length / d;
  const wEnc = new Float32Array(d * n),
    bEnc = new Float32Array(n),
    wDec = new Float32Array(n * d);
  for (let i = 0; i < n; i++) {
    let sq = 0;
    for (let j = 0; j < d; j++) sq += train[i * d + j] ** 2;
    bEnc[i] = -sq / 2;
    for (let j = 0; j < d; j++) {
      wEnc[j * n + i] = train[i * d + j];
      wDec[i * d + j] = (2 * train[i * d + j]) / sq;
    }
  }
  const t = (a: Float32Array, shape: number[]) => mi.keep(mi.tensor(a, shape));
  return new Sae(
    { kind: 'topk', d, latents: n, k: 1, inputScale: 1 },
    { W_enc: t(wEnc, [d, n]), b_enc: t(bEnc, [n]), W_dec: t(wDec, [n, d]), b_dec: t(new Float32Array(d), [d]) },
  );
}

test('saeSplit: whole sequences, the last ceil(20%) held out, at least one on each side', () => {
  const d = 3,
    seqLen = 4;
  const data = Float32Array.from({ length: 10 * seqLen * d }, (_, i) => i);
  const s = saeSplit({ data, dim: d }, seqLen);
  assert.is(s.heldOutSequences, Math.ceil(SAE_HELD_OUT_FRACTION * 10));
  assert.is(s.trainSequences + s.heldOutSequences, 10);
  assert.is(s.train.rows, s.trainSequences * seqLen);
  assert.is(s.heldOut.rows, s.heldOutSequences * seqLen);
  // contiguous and disjoint: the held-out part starts where training ends, on a sequence boundary
  assert.is(s.train.data.length + s.heldOut.data.length, data.length);
  assert.is(s.heldOut.data[0], s.trainSequences * seqLen * d);
  const two = saeSplit({ data: data.subarray(0, 2 * seqLen * d), dim: d }, seqLen);
  assert.equal([two.trainSequences, two.heldOutSequences], [1, 1]);
  assert.throws(() => saeSplit({ data: data.subarray(0, seqLen * d), dim: d }, seqLen), /whole sequences/);
  assert.throws(() => saeSplit({ data: data.subarray(0, 5 * d), dim: d }, seqLen), /whole sequences/);
});

test('heldOutMetrics: a memorising SAE is perfect on its training rows and measured on the held-out rows only', async () => {
  const d = 6,
    seqLen = 8;
  const data = noise(20 * seqLen, d, 'memorise');
  const split = saeSplit({ data, dim: d }, seqLen);
  const sae = memorisingSae(split.train.data, d);
  const onTrain = await saeMetrics(sae, split.train.data);
  assert.ok(onTrain.fvu < 1e-9, `memorised: FVU ${onTrain.fvu} on its training rows`);
  const m = await heldOutMetrics(sae, split);
  const want = await saeMetrics(sae, split.heldOut.data);
  assert.ok(m.fvu > 0.3, `held-out FVU ${m.fvu}: a nearest training row does not reconstruct fresh noise`);
  assert.is(m.fvu, want.fvu);
  assert.is(m.explainedVariance, 1 - want.fvu);
  // dead fraction on held-out rows: most memorised rows are nobody's nearest neighbour there
  assert.is(m.deadFraction, want.deadFraction);
  assert.ok(m.deadFraction > onTrain.deadFraction, `dead ${m.deadFraction} held out vs ${onTrain.deadFraction} on training rows`);
  sae.dispose();
});

test.run();
