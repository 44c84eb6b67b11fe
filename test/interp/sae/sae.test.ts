// interp/sae/sae.ts: the Sae's encode, decode and forward keep leading axes; export in SAELens
// names and layout, and the JSON round trip and scale folding preserve the forward pass.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as mi from '../../../engine/index.ts';
import { exportToJson, Sae, type SaeExportJson } from '../../../interp/sae/index.ts';
import { d, data, trainedSae } from './planted.ts';

test('encode/decode/forward keep leading axes', async () => {
  const sae = await trainedSae('topk');
  const x = mi.tensor(data.xs.slice(0, 2 * 3 * d), [2, 3, d]);
  const z = sae.encode(x);
  assert.equal(z.shape, [2, 3, 64]);
  assert.equal(sae.decode(z).shape, [2, 3, d]);
});

test('export: SAELens names and layout; JSON round trip and scale folding preserve the forward pass', async () => {
  const sae = await trainedSae('relu');
  const exp = await sae.exportParams();
  assert.equal(Object.keys(exp.tensors).sort(), ['W_dec', 'W_enc', 'b_dec', 'b_enc']);
  assert.equal(exp.tensors.W_enc.shape, [d, 64]);
  assert.equal(exp.tensors.W_dec.shape, [64, d]);
  assert.is(exp.config.architecture, 'standard');
  assert.is(exp.config.scaling_factor, sae.config.inputScale);
  const json = JSON.parse(JSON.stringify(exportToJson(exp))) as SaeExportJson;
  const folded = Sae.fromExport(await sae.exportParams({ foldScale: true }));
  assert.is(folded.config.inputScale, 1);
  assert.ok(Number.isNaN(folded.deadFraction), 'a loaded SAE has no training window to judge dead latents by');
  const x = mi.tensor(data.xs.slice(0, 20 * d), [20, d]);
  const want = sae.forward(x).dataSync();
  for (const other of [Sae.fromExport(json), folded]) {
    const got = other.forward(x).dataSync();
    want.forEach((v, i) => assert.ok(Math.abs(v - got[i]) < 1e-4, `forward differs at ${i}: ${v} vs ${got[i]}`));
    other.dispose();
  }
  assert.throws(() => Sae.fromExport({ ...json, config: { ...json.config, architecture: 'gated' } }), /unknown architecture 'gated'/);
});

test.run();
