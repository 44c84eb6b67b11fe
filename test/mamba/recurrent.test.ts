// Recurrent decoding: one token at a time through the cache gives the parallel forward's logits
// at every position; prefill then step continues exactly; greedy decoding matches transformers'.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import * as mi from '../../engine/index.ts';
import { loadPretrained } from '../../mamba/pretrained.ts';
import { disposeCache, sample } from '../../mamba/recurrent.ts';
import { openSafetensors } from '../../mamba/safetensors.ts';
import { goldenIds, goldenPath, modelDir } from '../helpers/hf-fixture.ts';

const test = suite('model recurrent decoding');

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

for (const [fixture, dtype, tol] of [
  ['tiny', 'float64', 1e-9],
  ['small', 'float32', 2e-5],
] as const) {
  test(`${fixture} ${dtype}: step() reproduces the parallel logits at every position`, async () => {
    const model = await loadPretrained(modelDir(fixture), { dtype, backend: mi.cpuBackend() });
    const rows = (await goldenIds(fixture)).map((r) => r.slice(0, 16));
    const [B, T, V] = [rows.length, rows[0].length, model.config.vocab_size];
    const parallel = mi.noGrad(() => model.forward(rows)).dataSync();
    const cache = model.newCache(B);
    for (let t = 0; t < T; t++) {
      const logits = model
        .step(
          cache,
          rows.map((r) => r[t]),
        )
        .dataSync();
      for (let b = 0; b < B; b++) {
        const want = parallel.subarray((b * T + t) * V, (b * T + t + 1) * V);
        const d = maxDiff(logits.subarray(b * V, (b + 1) * V), want);
        assert.ok(d < tol, `batch ${b} position ${t}: max diff ${d}`);
      }
    }
    assert.is(cache.position, T);
    disposeCache(cache);
    model.dispose();
  });
}

test('prefill then step equals the parallel forward on the longer sequence', async () => {
  const model = await loadPretrained(modelDir('tiny'), { dtype: 'float64', backend: mi.cpuBackend() });
  const rows = await goldenIds('tiny');
  const T = rows[0].length,
    V = model.config.vocab_size;
  for (const cut of [2, 7]) {
    // shorter and longer than the conv kernel (4)
    const { logits, cache } = model.prefill(rows.map((r) => r.slice(0, cut)));
    logits.dispose();
    const full = mi.noGrad(() => model.forward(rows)).dataSync();
    for (let t = cut; t < T; t++) {
      const got = model
        .step(
          cache,
          rows.map((r) => r[t]),
        )
        .dataSync();
      for (let b = 0; b < rows.length; b++) {
        const d = maxDiff(got.subarray(b * V, (b + 1) * V), full.subarray((b * T + t) * V, (b * T + t + 1) * V));
        assert.ok(d < 1e-9, `prefill ${cut}, position ${t}, batch ${b}: ${d}`);
      }
    }
    disposeCache(cache);
  }
  model.dispose();
});

test('greedy generation equals transformers greedy_prompt5_new10 (tiny and small)', async () => {
  for (const fixture of ['tiny', 'small'] as const) {
    const f = await openSafetensors(goldenPath(fixture));
    const want = Array.from((await f.read('greedy_prompt5_new10')).data);
    await f.close();
    const model = await loadPretrained(modelDir(fixture), { dtype: 'float64', backend: mi.cpuBackend() });
    const got = await model.generate(want.slice(0, 5), { maxNewTokens: 10, temperature: 0 });
    assert.equal(got, [want], fixture);
    model.dispose();
  }
});

test('sampling is seeded and respects top-k and top-p', async () => {
  const model = await loadPretrained(modelDir('tiny'), { backend: mi.cpuBackend() });
  const opts = { maxNewTokens: 8, temperature: 1, seed: 7 };
  const a = await model.generate([1, 2, 3], opts);
  const b = await model.generate([1, 2, 3], opts);
  assert.equal(a, b);
  assert.is(a[0].length, 11);
  const rng = new mi.Rng(1);
  const row = [0, 5, 1, 4, 3];
  for (let i = 0; i < 50; i++) assert.ok([1, 3].includes(sample(row, 1, 2, undefined, rng)), 'top-k 2 keeps the two largest');
  for (let i = 0; i < 50; i++) assert.is(sample([0, 10, 0], 1, undefined, 0.5, rng), 1, 'top-p 0.5 keeps only the dominant token');
  model.dispose();
});

test.run();
