// interp/sae/io.ts: the SAE safetensors round trip.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as mi from '../../../engine/index.ts';
import { encodeAll, trainSae } from '../../../interp/sae/index.ts';
import { loadSae, saveSae } from '../../../interp/sae/io.ts';

mi.setBackend(mi.cpuBackend());

test('saveSae / loadSae: the loaded SAE encodes exactly as the trained one (relu and topk)', async () => {
  const rng = new mi.Rng('acts');
  const x = Float32Array.from({ length: 256 * 8 }, () => rng.normal());
  const dir = mkdtempSync(join(tmpdir(), 'sae-io-'));
  try {
    for (const kind of ['relu', 'topk'] as const) {
      const sae = await trainSae(x, { kind, d: 8, latents: 16, k: 3, steps: 20, seed: 1 });
      const path = join(dir, `${kind}.safetensors`);
      await saveSae(sae, path);
      const back = await loadSae(path);
      assert.equal(back.config, sae.config);
      assert.equal(Array.from(await encodeAll(back, x)), Array.from(await encodeAll(sae, x)));
      sae.dispose();
      back.dispose();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
