// MambaLM construction, HF-style initialisation, checkpoint round trips, and the loss gradient
// against finite differences (the fixture's stored gradients include an extra term; see
// mamba/parity.ts).
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as mi from '../../engine/index.ts';
import { makeConfig } from '../../mamba/config.ts';
import { initMamba, MambaLM } from '../../mamba/model.ts';
import { loadPretrained, savePretrained } from '../../mamba/pretrained.ts';
import { openSafetensors } from '../../mamba/safetensors.ts';
import { nextTokenLoss } from '../../mamba/train.ts';
import { goldenIds, modelDir } from '../helpers/hf-fixture.ts';

const test = suite('model construction and checkpoints');
const cpu = { backend: mi.cpuBackend() };

test('initMamba follows transformers _init_weights and is seeded', () => {
  const config = makeConfig({ vocab_size: 50, hidden_size: 32, num_hidden_layers: 2, state_size: 8, initializer_range: 0.05 });
  const a = initMamba(config, new mi.Rng(3), cpu),
    b = initMamba(config, new mi.Rng(3), cpu),
    c = initMamba(config, new mi.Rng(4), cpu);
  for (const [n, t] of a.params) assert.equal(b.p(n).dataSync(), t.dataSync(), `${n} differs for the same seed`);
  assert.not.equal(c.p('backbone.embeddings.weight').dataSync(), a.p('backbone.embeddings.weight').dataSync());
  const p = (n: string) => Array.from(a.p(`backbone.layers.1.mixer.${n}`).dataSync());
  const N = config.state_size,
    E = config.intermediate_size;
  p('A_log').forEach((v, i) => assert.ok(Math.abs(v - Math.log((i % N) + 1)) < 1e-6));
  assert.ok(p('D').every((v) => v === 1));
  assert.ok(p('conv1d.bias').every((v) => v === 0));
  for (const b of p('dt_proj.bias')) {
    const dt = Math.log1p(Math.exp(b));
    assert.ok(dt >= config.time_step_min * 0.999 && dt <= config.time_step_max * 1.001, `softplus(dt bias) ${dt}`);
  }
  const bound = config.time_step_rank ** -0.5;
  assert.ok(p('dt_proj.weight').every((v) => Math.abs(v) <= bound));
  assert.ok(p('out_proj.weight').every((v) => Math.abs(v) <= 1 / Math.sqrt(E)));
  const w = p('in_proj.weight');
  const std = Math.sqrt(w.reduce((s, v) => s + v * v, 0) / w.length);
  assert.ok(Math.abs(std - 0.05) < 0.005, `in_proj std ${std}`);
  assert.ok(Array.from(a.p('backbone.norm_f.weight').dataSync()).every((v) => v === 1));
  for (const m of [a, b, c]) m.dispose();
});

test('savePretrained then loadPretrained is bit-identical (float32, float64, untied head)', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'mi-save-'));
  try {
    for (const [dtype, tie] of [
      ['float32', true],
      ['float64', true],
      ['float32', false],
    ] as const) {
      const config = makeConfig({
        vocab_size: 20,
        hidden_size: 8,
        num_hidden_layers: 2,
        state_size: 4,
        use_bias: true,
        tie_word_embeddings: tie,
      });
      const m = initMamba(config, new mi.Rng(`save-${dtype}-${tie}`), { ...cpu, dtype });
      const out = join(dir, `${dtype}-${tie}`);
      await savePretrained(m, out);
      const f = await openSafetensors(join(out, 'model.safetensors'));
      assert.is(f.has('lm_head.weight'), !tie, 'lm_head.weight stored only when untied');
      await f.close();
      assert.is(JSON.parse(await readFile(join(out, 'config.json'), 'utf-8')).use_bias, true);
      const back = await loadPretrained(out, { ...cpu, dtype });
      assert.equal([...back.params.keys()].sort(), [...m.params.keys()].sort());
      for (const [n, t] of m.params) assert.equal(back.p(n).dataSync(), t.dataSync(), n);
      assert.equal(back.forward([[1, 2, 3]]).dataSync(), m.forward([[1, 2, 3]]).dataSync());
      m.dispose();
      back.dispose();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('the loss gradient matches central differences (float64, tiny fixture)', async () => {
  const model = await loadPretrained(modelDir('tiny'), { ...cpu, dtype: 'float64' });
  const ids = model.ids(await goldenIds('tiny'));
  for (const t of model.params.values()) t.requiresGrad = true;
  const grads = mi.backwardFrom(nextTokenLoss(model, ids));
  for (const t of model.params.values()) t.requiresGrad = false;
  const lossAt = () => mi.noGrad(() => nextTokenLoss(model, ids).dataSync()[0]);
  const names = [
    'backbone.embeddings.weight',
    'backbone.layers.0.mixer.A_log',
    'backbone.layers.0.mixer.dt_proj.bias',
    'backbone.layers.1.mixer.conv1d.weight',
    'backbone.layers.1.mixer.x_proj.weight',
    'backbone.layers.0.mixer.D',
    'backbone.norm_f.weight',
  ];
  const rng = new mi.Rng('fd');
  for (const n of names) {
    const p = model.p(n);
    const g = grads.get(p)!.dataSync();
    const base = Float64Array.from(p.dataSync());
    for (let k = 0; k < 3; k++) {
      const i = rng.int(0, base.length),
        h = 1e-5;
      const w = Float64Array.from(base);
      w[i] = base[i] + h;
      p.backend.write(p.buffer, w);
      const up = lossAt();
      w[i] = base[i] - h;
      p.backend.write(p.buffer, w);
      const down = lossAt();
      p.backend.write(p.buffer, base);
      const fd = (up - down) / (2 * h);
      assert.ok(Math.abs(fd - g[i]) <= 1e-7 + 1e-5 * Math.abs(fd), `${n}[${i}]: autograd ${g[i]} vs finite difference ${fd}`);
    }
  }
  model.dispose();
});

test('errors name the parameter, the token or the shape', () => {
  const config = makeConfig({ vocab_size: 10, hidden_size: 8, num_hidden_layers: 1, state_size: 4 });
  const m = initMamba(config, new mi.Rng(1), cpu);
  assert.throws(() => m.forward([[1, 10]]), /token id 10 is outside the vocabulary \[0, 10\)/);
  assert.throws(() => m.forward([[1, 2], [3]]), /rectangular/);
  const params = new Map(m.params);
  params.delete('backbone.layers.0.mixer.D');
  assert.throws(() => new MambaLM(config, params), /missing parameter backbone\.layers\.0\.mixer\.D/);
  params.set('backbone.layers.0.mixer.D', mi.zeros([3]));
  assert.throws(() => new MambaLM(config, params), /backbone\.layers\.0\.mixer\.D has shape \[3\], the config implies \[16\]/);
  m.dispose();
});

test.run();
