// What the recurrent cache keeps besides the states (mamba/recurrent.ts): A = -exp(A_log) per
// layer, computed on the first step and reused by the next ones, computed again once an A_log
// tensor holds another buffer (Tensor.assign, as an optimiser does), and disposed with the cache.
// And the decoding step's products on the CPU backend: the weights packed on their second use
// (engine/cpu/derived.ts) give the same logits as the first step's unpacked kernels.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import * as mi from '../../engine/index.ts';
import { loadPretrained } from '../../mamba/pretrained.ts';
import { disposeCache } from '../../mamba/recurrent.ts';
import { goldenIds, modelDir } from '../helpers/hf-fixture.ts';

const test = suite('recurrent cache');

test('A is computed once per cache, again after A_log is assigned, and disposed with the cache', async () => {
  const cpu = mi.cpuBackend();
  const model = await loadPretrained(modelDir('tiny'), { dtype: 'float32', backend: cpu });
  const rows = (await goldenIds('tiny')).map((r) => r.slice(0, 6));
  const live = mi.liveTensorCount();
  const cache = model.newCache(rows.length);
  mi.tidy(
    () =>
      void model.step(
        cache,
        rows.map((r) => r[0]),
      ),
  );
  const first = cache.A?.A;
  assert.ok(first && first.length === model.config.num_hidden_layers, 'A kept in the cache after a step');
  mi.tidy(
    () =>
      void model.step(
        cache,
        rows.map((r) => r[1]),
      ),
  );
  assert.ok(
    cache.A?.A.every((a, i) => a === first[i]),
    'the next step reuses it',
  );
  // a new A_log for layer 0: A computed again, and the step uses the new value
  const A_log = model.layer(0).A_log;
  const [old, bumped] = mi.tidy(() => [mi.mul(A_log, 1), mi.add(A_log, 0.5)]);
  A_log.assign(bumped);
  bumped.dispose();
  const stepWith = (c: typeof cache) =>
    mi.tidy(() => [
      ...model
        .step(
          c,
          rows.map((r) => r[2]),
        )
        .dataSync(),
    ]);
  // the same step from a copy of the states in a fresh cache (which computes A itself)
  const fresh = model.newCache(rows.length);
  fresh.layers.forEach((l, i) => {
    l.conv.assign(cache.layers[i].conv);
    l.ssm.assign(cache.layers[i].ssm);
  });
  const got = stepWith(cache);
  assert.ok(
    first.every((a) => a.disposed),
    'the old A tensors are disposed',
  );
  assert.equal(got, stepWith(fresh), 'the step after the assign uses the new A_log');
  A_log.assign(old);
  old.dispose();
  disposeCache(fresh);
  disposeCache(cache);
  assert.is(cache.A, undefined);
  assert.is(mi.liveTensorCount(), live, 'every tensor of the caches disposed');
  model.dispose();
});

test('decoding on the CPU backend: the same logits with the weights packed (second and later steps) as without', async () => {
  const cpu = mi.cpuBackend();
  const model = await loadPretrained(modelDir('small'), { dtype: 'float32', backend: cpu });
  const ids = (await goldenIds('small'))[0].slice(0, 4);
  const builds = cpu.derivedBlocks().builds;
  // the same model on a backend that keeps no derived blocks: every step's logits bit for bit
  // (the first step reads each weight unpacked, the later ones the packed copies)
  const plain = new (cpu.constructor as typeof import('../../engine/cpu/backend.ts').CpuBackend)({ derivedBudget: 0 });
  const twin = await loadPretrained(modelDir('small'), { dtype: 'float32', backend: plain });
  const a = model.newCache(1),
    b = twin.newCache(1);
  for (const t of ids) {
    const x = mi.tidy(() => [...new Uint32Array((model.step(a, [t]).dataSync() as Float32Array).buffer)]);
    const y = mi.tidy(() => [...new Uint32Array((twin.step(b, [t]).dataSync() as Float32Array).buffer)]);
    assert.equal(x, y, `token ${t}: bit for bit`);
  }
  assert.ok(cpu.derivedBlocks().builds > builds, 'the weights were packed');
  assert.is(plain.derivedBlocks().builds, 0);
  disposeCache(a);
  disposeCache(b);
  model.dispose();
  twin.dispose();
});

test.run();
