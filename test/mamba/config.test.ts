import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { configToJSON, expectedParameterShapes, makeConfig, parseConfig, readConfig, writeConfig } from '../../mamba/config.ts';
import { openCheckpoint } from '../../mamba/safetensors.ts';

const fixtures = resolve(import.meta.dirname, '../../../shared/fixtures/hf-mamba');
const manifest = JSON.parse(readFileSync(join(fixtures, 'manifest.json'), 'utf-8'));
const quiet = { warn: () => undefined };

test('readConfig reads the fixture configs and resolves the derived fields', async () => {
  const tiny = await readConfig(join(fixtures, 'tiny/model'), quiet);
  const m = manifest.cases.tiny.config;
  for (const k of ['vocab_size', 'hidden_size', 'state_size', 'num_hidden_layers', 'expand', 'conv_kernel', 'use_bias', 'use_conv_bias']) {
    assert.is((tiny as unknown as Record<string, unknown>)[k], m[k], k);
  }
  assert.is(tiny.time_step_rank, Math.ceil(16 / 16));
  assert.is(tiny.intermediate_size, 32);
  assert.is(tiny.tie_word_embeddings, true);
  assert.equal(tiny.extra.architectures, ['MambaForCausalLM']);
  const small = await readConfig(join(fixtures, 'small/model/config.json'), quiet);
  assert.is(small.time_step_rank, 4);
  assert.is(small.use_bias, true);
  assert.is(small.intermediate_size, 128);
});

test('defaults are transformers MambaConfig defaults; "auto" rank is ceil(hidden/16)', () => {
  const c = parseConfig(
    { vocab_size: 50280, hidden_size: 768, num_hidden_layers: 24, state_size: 16, time_step_rank: 'auto' },
    'inline',
    quiet,
  );
  assert.is(c.time_step_rank, 48);
  assert.is(c.intermediate_size, 1536);
  assert.is(c.layer_norm_epsilon, 1e-5);
  assert.is(c.conv_kernel, 4);
  assert.is(c.use_bias, false);
  assert.is(c.use_conv_bias, true);
  assert.is(c.hidden_act, 'silu');
  assert.is(c.residual_in_fp32, true);
  assert.is(c.time_step_init_scheme, 'random');
  assert.is(c.time_step_floor, 1e-4);
  assert.is(c.pad_token_id, 0);
  assert.is(makeConfig({ vocab_size: 10, hidden_size: 40, num_hidden_layers: 1, state_size: 4 }).time_step_rank, 3);
});

test('expectedParameterShapes matches the fixture checkpoints exactly', async () => {
  for (const name of ['tiny', 'small']) {
    const dir = join(fixtures, name, 'model');
    const config = await readConfig(dir, quiet);
    const ckpt = await openCheckpoint(dir);
    try {
      const expected = expectedParameterShapes(config);
      assert.equal([...expected.keys()].sort(), [...ckpt.names], `${name}: names`);
      for (const [n, shape] of expected) assert.equal(ckpt.entry(n).shape, shape, `${name}: ${n}`);
      // The golden file's gradients cover exactly the parameters.
      const gradNames = Object.keys(manifest.cases[name].tensors)
        .filter((k) => k.startsWith('f64.grad.'))
        .map((k) => k.slice(9));
      assert.equal(gradNames.sort(), [...expected.keys()].sort(), `${name}: gradient names`);
    } finally {
      await ckpt.close();
    }
  }
  const untied = makeConfig({ vocab_size: 10, hidden_size: 8, num_hidden_layers: 1, state_size: 2, tie_word_embeddings: false });
  assert.equal(expectedParameterShapes(untied).get('lm_head.weight'), [10, 8]);
});

test('unknown fields are kept, written back, and warned about once in one list', async () => {
  const warnings: string[] = [];
  const c = parseConfig(
    { vocab_size: 8, hidden_size: 4, num_hidden_layers: 1, state_size: 2, model_type: 'mamba', zeta: 1, alpha: { x: [1] } },
    'mine.json',
    { warn: (m) => warnings.push(m) },
  );
  assert.is(warnings.length, 1);
  assert.match(warnings[0], /mine\.json.*alpha, zeta/);
  assert.not.match(warnings[0], /model_type/);
  const dir = mkdtempSync(join(tmpdir(), 'mamba-config-'));
  try {
    await writeConfig(dir, c);
    const back = await readConfig(dir, quiet);
    assert.equal(back.extra, { model_type: 'mamba', zeta: 1, alpha: { x: [1] } });
    assert.equal(configToJSON(back), configToJSON(c));
    const written = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf-8'));
    assert.is(written.time_step_rank, 1);
    assert.is(written.intermediate_size, 8);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('fixture config round-trips through writeConfig unchanged', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'mamba-config-'));
  try {
    const original = JSON.parse(readFileSync(join(fixtures, 'small/model/config.json'), 'utf-8'));
    await writeConfig(dir, await readConfig(join(fixtures, 'small/model'), quiet));
    assert.equal(JSON.parse(readFileSync(join(dir, 'config.json'), 'utf-8')), original);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('missing required fields and wrong types are errors naming the field and file', async () => {
  const base = { vocab_size: 8, hidden_size: 4, num_hidden_layers: 1, state_size: 2 };
  for (const field of ['vocab_size', 'hidden_size', 'num_hidden_layers', 'state_size']) {
    const json = { ...base } as Record<string, unknown>;
    delete json[field];
    assert.throws(() => parseConfig(json, 'cfg.json'), new RegExp(`cfg\\.json: missing required field "${field}"`));
  }
  assert.throws(() => parseConfig({ ...base, use_bias: 'yes' }, 'cfg.json'), /cfg\.json: field "use_bias" must be a boolean, found "yes"/);
  assert.throws(() => parseConfig({ ...base, hidden_size: 4.5 }, 'cfg.json'), /field "hidden_size" must be a positive integer/);
  assert.throws(
    () => parseConfig({ ...base, layer_norm_epsilon: '1e-5' }, 'cfg.json'),
    /field "layer_norm_epsilon" must be a finite number/,
  );
  assert.throws(() => parseConfig({ ...base, time_step_rank: 'big' }, 'cfg.json'), /field "time_step_rank"/);
  assert.throws(() => parseConfig({ d_model: 768, n_layer: 24, vocab_size: 50277 }, 'cfg.json'), /mamba_ssm config/);
  const dir = mkdtempSync(join(tmpdir(), 'mamba-config-'));
  try {
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...base, vocab_size: undefined }));
    await readConfig(dir).then(
      () => assert.unreachable('should throw'),
      (e: Error) => {
        assert.match(e.message, /config .*config\.json: missing required field "vocab_size"/);
      },
    );
    writeFileSync(join(dir, 'config.json'), '{ not json');
    await readConfig(dir).then(
      () => assert.unreachable('should throw'),
      (e: Error) => assert.match(e.message, /config\.json: not valid JSON/),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
