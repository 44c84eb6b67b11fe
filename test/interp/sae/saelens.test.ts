// interp/sae/saelens.ts: SAELens folders written here load back exactly, folders written by hand in
// SAELens's layout (cfg.json + a safetensors file whose bytes this test lays out itself) give the
// latents of a float64 loop written from SAELens's definitions, and bad cfg fields fail by name.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as mi from '../../../engine/index.ts';
import { encodeAll, type Sae, trainSae } from '../../../interp/sae/index.ts';
import { loadSaeLens, readSaeLensSparsity, saelensEvalMetrics, saveSaeLens } from '../../../interp/sae/saelens.ts';

mi.setBackend(mi.cpuBackend());

const root = mkdtempSync(join(tmpdir(), 'saelens-'));
const meta = { modelName: 'induction-s1', hookName: 'blocks.1.hook_resid_post', contextSize: 64 };

const normals = (seed: string, n: number, scale = 1) => {
  const rng = new mi.Rng(seed);
  return Float32Array.from({ length: n }, () => scale * rng.normal());
};

async function paramArrays(sae: Sae): Promise<Record<string, Float32Array>> {
  const out: Record<string, Float32Array> = {};
  for (const [name, t] of Object.entries(sae.params)) out[name] = Float32Array.from(await t!.data());
  return out;
}

test('saveSaeLens / loadSaeLens: a trained SAE exports with its scale folded in, and the folder reloads bit for bit', async () => {
  const x = normals('acts', 256 * 8, 3);
  for (const kind of ['relu', 'topk'] as const) {
    const sae = await trainSae(x, { kind, d: 8, latents: 16, k: 3, steps: 20, seed: 1 });
    const s = sae.config.inputScale;
    assert.ok(Math.abs(s - 1) > 0.1, `the scale is not trivially 1 (${s})`);
    const dir = join(root, `trained-${kind}`);
    await saveSaeLens(sae, dir, { ...meta, log10Density: Array.from({ length: 16 }, (_, i) => -i / 4) });
    const cfg = JSON.parse(readFileSync(join(dir, 'cfg.json'), 'utf-8'));
    assert.equal(cfg.architecture, kind === 'relu' ? 'standard' : 'topk');
    assert.equal([cfg.d_in, cfg.d_sae, cfg.k], [8, 16, kind === 'topk' ? 3 : undefined]);
    assert.equal([cfg.normalize_activations, cfg.apply_b_dec_to_input, cfg.dtype], ['none', true, 'float32']);
    assert.equal(cfg.metadata.hook_name, meta.hookName);
    assert.equal(cfg.metadata.context_size, 64);
    assert.equal(cfg.metadata.hook_head_index, null);

    const back = await loadSaeLens(dir);
    assert.is(back.config.inputScale, 1);
    // the folded weights, recomputed here: W_enc * s, b_enc, W_dec / s, b_dec / s, each rounded to float32
    const p = await paramArrays(sae);
    const q = await paramArrays(back);
    const f: Record<string, number> = { W_enc: s, b_enc: 1, W_dec: 1 / s, b_dec: 1 / s };
    for (const name of ['W_enc', 'b_enc', 'W_dec', 'b_dec']) {
      assert.equal(
        Array.from(q[name]),
        Array.from(p[name], (v) => Math.fround(v * f[name])),
        name,
      );
    }
    // the same latents up to the float32 rounding of the fold
    const z0 = await encodeAll(sae, x);
    const z1 = await encodeAll(back, x);
    let worst = 0;
    for (let i = 0; i < z0.length; i++) worst = Math.max(worst, Math.abs(z0[i] - z1[i]) / (1 + Math.abs(z0[i])));
    assert.ok(worst < 1e-5, `latents differ by ${worst}`);
    assert.equal(Array.from((await readSaeLensSparsity(dir))!), Array.from(Float32Array.from({ length: 16 }, (_, i) => -i / 4)));

    // a loaded SAE (scale 1) writes back bit for bit
    await saveSaeLens(back, dir, meta); // over the existing folder
    const again = await loadSaeLens(dir);
    const r = await paramArrays(again);
    for (const name of Object.keys(q)) assert.equal(Array.from(r[name]), Array.from(q[name]), name);
    assert.equal(Array.from(await encodeAll(again, x)), Array.from(z1));
    assert.is(await readSaeLensSparsity(dir), undefined, 'the rewrite without a density has no sparsity file');
    for (const t of [sae, back, again]) t.dispose();
  }
});

// ---- folders written by hand, in SAELens's layout ----

/** safetensors bytes laid out here: u64 header length, the JSON header, then F32 data in order. */
function writeF32Safetensors(path: string, tensors: Record<string, { shape: number[]; data: Float32Array }>): void {
  let offset = 0;
  const header: Record<string, unknown> = {};
  for (const [name, t] of Object.entries(tensors)) {
    header[name] = { dtype: 'F32', shape: t.shape, data_offsets: [offset, offset + 4 * t.data.length] };
    offset += 4 * t.data.length;
  }
  let json = JSON.stringify(header);
  while ((8 + json.length) % 8) json += ' ';
  const buf = Buffer.alloc(8 + json.length + offset);
  buf.writeBigUInt64LE(BigInt(json.length), 0);
  buf.write(json, 8, 'utf-8');
  let o = 8 + json.length;
  for (const t of Object.values(tensors)) for (const v of t.data) o = buf.writeFloatLE(v, o);
  writeFileSync(path, buf);
}

interface Fixture {
  arch: 'standard' | 'topk' | 'jumprelu';
  k?: number;
  applyBDec: boolean;
  /** written as activation_scaler.json with normalize_activations expected_average_only_in */
  scale?: number;
}

const dIn = 6,
  dSae = 20,
  rows = 50;

function writeFixture(name: string, fx: Fixture) {
  const dir = join(root, name);
  mkdirSync(dir, { recursive: true });
  const w = {
    W_enc: normals(`${name}/W_enc`, dIn * dSae),
    b_enc: normals(`${name}/b_enc`, dSae, 0.3),
    W_dec: normals(`${name}/W_dec`, dSae * dIn),
    b_dec: normals(`${name}/b_dec`, dIn, 0.5),
    threshold: Float32Array.from(normals(`${name}/thr`, dSae), (v) => Math.abs(v)),
  };
  const cfg = {
    architecture: fx.arch,
    d_in: dIn,
    d_sae: dSae,
    ...(fx.k ? { k: fx.k } : {}),
    dtype: 'float32',
    device: 'cpu',
    apply_b_dec_to_input: fx.applyBDec,
    normalize_activations: fx.scale ? 'expected_average_only_in' : 'none',
    reshape_activations: 'none',
    metadata: {
      model_name: 'state-spaces/mamba-130m-hf',
      hook_name: 'blocks.3.hook_resid_post',
      hook_head_index: null,
      context_size: 128,
      prepend_bos: false,
      sae_lens_version: '6.5.1',
    },
  };
  writeFileSync(join(dir, 'cfg.json'), JSON.stringify(cfg));
  if (fx.scale) writeFileSync(join(dir, 'activation_scaler.json'), JSON.stringify({ scaling_factor: fx.scale }));
  writeF32Safetensors(join(dir, 'sae_weights.safetensors'), {
    W_dec: { shape: [dSae, dIn], data: w.W_dec },
    W_enc: { shape: [dIn, dSae], data: w.W_enc },
    b_dec: { shape: [dIn], data: w.b_dec },
    b_enc: { shape: [dSae], data: w.b_enc },
    ...(fx.arch === 'jumprelu' ? { threshold: { shape: [dSae], data: w.threshold } } : {}),
  });
  return { dir, w };
}

/** SAELens's encode, in float64: sae_in = x*s - b_dec*apply; pre = sae_in W_enc + b_enc; then the activation. */
function saelensLatents(fx: Fixture, w: ReturnType<typeof writeFixture>['w'], x: Float32Array): Float64Array {
  const s = fx.scale ?? 1;
  const z = new Float64Array(rows * dSae);
  for (let r = 0; r < rows; r++) {
    const pre = new Float64Array(dSae);
    for (let j = 0; j < dSae; j++) {
      let v = w.b_enc[j];
      for (let i = 0; i < dIn; i++) v += (x[r * dIn + i] * s - (fx.applyBDec ? w.b_dec[i] : 0)) * w.W_enc[i * dSae + j];
      pre[j] = v;
    }
    if (fx.arch === 'topk') {
      const order = Array.from(pre.keys()).sort((a, b) => pre[b] - pre[a]);
      for (const j of order.slice(0, fx.k)) z[r * dSae + j] = Math.max(0, pre[j]);
    } else {
      for (let j = 0; j < dSae; j++) {
        const on = fx.arch === 'standard' || pre[j] > w.threshold[j];
        z[r * dSae + j] = on ? Math.max(0, pre[j]) : 0;
      }
    }
  }
  return z;
}

const fixtures: [string, Fixture][] = [
  ['relu', { arch: 'standard', applyBDec: true }],
  ['relu-no-bdec', { arch: 'standard', applyBDec: false }],
  ['topk', { arch: 'topk', k: 4, applyBDec: true }],
  ['jumprelu-scaled', { arch: 'jumprelu', applyBDec: true, scale: 0.37 }],
];

for (const [name, fx] of fixtures) {
  test(`loadSaeLens: a hand-written ${name} folder gives SAELens's latents (float64 loop)`, async () => {
    const { dir, w } = writeFixture(`fixture-${name}`, fx);
    const x = normals(`${name}/x`, rows * dIn, 2);
    const sae = await loadSaeLens(dir);
    const want = saelensLatents(fx, w, x);
    const got = await encodeAll(sae, x);
    let worst = 0,
      active = 0;
    for (let i = 0; i < want.length; i++) {
      worst = Math.max(worst, Math.abs(got[i] - want[i]));
      if (want[i] > 0) active++;
    }
    assert.ok(worst < 1e-4, `latents differ by ${worst}`);
    // a fixture where every latent is on or off would not test the activation
    assert.ok(active > 0.05 * want.length && active < 0.95 * want.length, `${active} of ${want.length} active`);
    if (fx.arch === 'topk') assert.is(active, rows * 4);
    // SAELens's decode, z W_dec + b_dec, returned in raw units (divided by the scale, as its ActivationScaler unscales)
    const zt = mi.tensor(got, [rows, dSae]);
    const recon = await sae.decode(zt).data();
    const s = fx.scale ?? 1;
    for (let r = 0; r < rows; r++) {
      for (let i = 0; i < dIn; i++) {
        let v = w.b_dec[i];
        for (let j = 0; j < dSae; j++) v += got[r * dSae + j] * w.W_dec[j * dIn + i];
        assert.ok(Math.abs(recon[r * dIn + i] - v / s) < 1e-4, `recon [${r}, ${i}]`);
      }
    }
    zt.dispose();
    // and the folder written back from it reloads to the same latents, bit for bit when nothing was folded
    await saveSaeLens(sae, join(root, `rewrite-${name}`), meta);
    const again = await loadSaeLens(join(root, `rewrite-${name}`));
    const z2 = await encodeAll(again, x);
    if (s === 1) assert.equal(Array.from(z2), Array.from(got));
    else for (let i = 0; i < z2.length; i++) assert.ok(Math.abs(z2[i] - got[i]) < 1e-4);
    sae.dispose();
    again.dispose();
  });
}

test('loadSaeLens: bad cfg fields and weights fail with one line naming the file and the field', async () => {
  const { dir } = writeFixture('bad', { arch: 'topk', k: 4, applyBDec: true });
  const cfgFile = join(dir, 'cfg.json');
  const good = JSON.parse(readFileSync(cfgFile, 'utf-8'));
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ architecture: 'gated' }, /cfg\.json: architecture 'gated' is not supported/],
    [{ d_in: 0 }, /cfg\.json: d_in must be a positive integer, got 0/],
    [{ d_sae: '20' }, /cfg\.json: d_sae must be a positive integer/],
    [{ k: undefined }, /cfg\.json: k must be a positive integer/],
    [{ k: 21 }, /cfg\.json: k 21 exceeds d_sae 20/],
    [{ normalize_activations: 'layer_norm' }, /cfg\.json: normalize_activations 'layer_norm' is not supported/],
    [{ apply_b_dec_to_input: 'yes' }, /cfg\.json: apply_b_dec_to_input must be true or false/],
    [{ d_in: dSae, d_sae: dIn, k: 2 }, /sae_weights\.safetensors: W_enc has shape \[6,20\], expected \[20,6\]/],
  ];
  for (const [patch, re] of cases) {
    writeFileSync(cfgFile, JSON.stringify({ ...good, ...patch }));
    try {
      await loadSaeLens(dir);
      assert.unreachable(`${JSON.stringify(patch)} should fail`);
    } catch (e) {
      const msg = (e as Error).message;
      assert.match(msg, re);
      assert.ok(msg.includes(dir), `names the file: ${msg}`);
      assert.not.match(msg, /\n/);
    }
  }
  writeFileSync(cfgFile, '{ not json');
  try {
    await loadSaeLens(dir);
    assert.unreachable();
  } catch (e) {
    assert.match((e as Error).message, /cfg\.json: not valid JSON/);
  }
  writeFileSync(cfgFile, JSON.stringify({ ...good, architecture: 'jumprelu' }));
  try {
    await loadSaeLens(dir);
    assert.unreachable();
  } catch (e) {
    assert.match((e as Error).message, /sae_weights\.safetensors: tensor threshold is missing/);
  }
});

test('saelensEvalMetrics: step 3 metrics under SAELens run_evals names (ce_loss_score against zero-ablation)', () => {
  const m = saelensEvalMetrics({
    l0: 7.5,
    explainedVariance: 0.9,
    ceLossScoreZero: 0.97,
    klDivScore: 0.95,
    deadFraction: 0.125,
    latents: 64,
  });
  assert.equal(m, {
    sparsity: { l0: 7.5, dead_features: 8, dead_fraction: 0.125 },
    reconstruction_quality: { explained_variance: 0.9 },
    model_performance_preservation: { ce_loss_score: 0.97 },
    model_behavior_preservation: { kl_div_score: 0.95 },
  });
});

test.after(() => rmSync(root, { recursive: true, force: true }));

test.run();
