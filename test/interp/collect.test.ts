// interp/collect.ts, behind step 2: per-channel statistics, shard splitting, hook pattern expansion,
// and collection against a direct forward pass.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as mi from '../../engine/index.ts';
import { ChannelStatsAccumulator, collectActivations, expandHookPatterns, ShardWriter } from '../../interp/collect.ts';
import { induction } from '../../interp/tasks/index.ts';
import { taskModelConfig } from '../../interp/train-task.ts';
import { initMamba } from '../../mamba/model.ts';
import { openSafetensors } from '../../mamba/safetensors.ts';

mi.setBackend(mi.cpuBackend());
const tmp = mkdtempSync(join(tmpdir(), 'mi-collect-'));
process.once('exit', () => rmSync(tmp, { recursive: true, force: true }));

test('ChannelStatsAccumulator: mean, population variance, RMS norm and sparsity of known columns', () => {
  const acc = new ChannelStatsAccumulator(2);
  acc.add([1, 0, 3, 0]);
  acc.add([5, 2]);
  const s = acc.result();
  assert.is(s.rows, 3);
  assert.equal(s.mean, [3, 2 / 3]);
  assert.ok(Math.abs(s.variance[0] - 8 / 3) < 1e-12);
  assert.ok(Math.abs(s.variance[1] - (4 / 3 - 4 / 9)) < 1e-12);
  assert.ok(Math.abs(s.norm[0] - Math.sqrt(35 / 3)) < 1e-12);
  assert.equal(s.sparsity, [0, 2 / 3]);
  assert.throws(() => acc.add([1, 2, 3]), /whole number of rows/);
});

test('ShardWriter: rows split into shards of at most shardRows, in order', async () => {
  const dir = join(tmp, 'shards');
  const w = new ShardWriter(dir, 'h', 3, 4);
  const rows = Float32Array.from({ length: 3 * 10 }, (_, i) => i);
  await w.append(rows.subarray(0, 9));
  await w.append(rows.subarray(9));
  await w.flush();
  assert.equal(w.shards, ['h.0.safetensors', 'h.1.safetensors', 'h.2.safetensors']);
  assert.is(w.rows, 10);
  const back: number[] = [];
  const shapes: number[][] = [];
  for (const s of w.shards) {
    const f = await openSafetensors(join(dir, s));
    const r = await f.read('acts');
    shapes.push(r.shape);
    back.push(...Array.from(r.data as Float32Array));
    await f.close();
  }
  assert.equal(shapes, [
    [4, 3],
    [4, 3],
    [2, 3],
  ]);
  assert.equal(back, Array.from(rows));
});

test('expandHookPatterns: {i} to every layer, {last} to the last, duplicates once', () => {
  assert.equal(expandHookPatterns(['blocks.{i}.hook_resid_post', 'blocks.{last}.hook_resid_post', 'hook_embed'], 3), [
    'blocks.0.hook_resid_post',
    'blocks.1.hook_resid_post',
    'blocks.2.hook_resid_post',
    'hook_embed',
  ]);
});

test('collectActivations: shards hold exactly what a direct forward pass gives; limited hooks keep the first batches', async () => {
  const opts = { vocabSize: 8, seqLen: 10, occurrences: 2 };
  const model = initMamba(
    taskModelConfig(8, { hiddenSize: 8, layers: 2, stateSize: 4, expand: 2, convKernel: 4 }),
    new mi.Rng('collect-model'),
  );
  const batches = [0, 1, 2].map((i) => induction.generate(opts, new mi.Rng(`collect-data/${i}`), 3));
  const dir = join(tmp, 'collect');
  const hooks = ['blocks.0.hook_resid_post', 'blocks.1.mixer.hook_h'];
  const got = await collectActivations(model, batches, {
    hooks,
    dir,
    shardRows: 40,
    limited: ['blocks.1.mixer.hook_h'],
    limitedBatches: 1,
  });
  assert.equal(
    got.map((h) => [h.name, h.dim, h.rows, h.shards.length]),
    [
      ['blocks.0.hook_resid_post', 8, 90, 3],
      ['blocks.1.mixer.hook_h', 16 * 4, 30, 1],
    ],
  );
  for (const h of got) {
    const rows: number[] = [];
    for (const s of h.shards) {
      const f = await openSafetensors(join(dir, s));
      rows.push(...Array.from((await f.read('acts')).data as Float32Array));
      await f.close();
    }
    const want: number[] = [];
    for (const b of batches.slice(0, h.rows / 30)) {
      const ids = mi.tensor(b.inputs, b.shape, { dtype: 'int32' });
      const { cache } = mi.noGrad(() => model.runWithCache(ids, [h.name]));
      want.push(...Array.from(cache.get(h.name)!.dataSync()));
    }
    assert.equal(rows, want, h.name);
    // statistics describe exactly the written rows
    const mean0 = want.filter((_, i) => i % h.dim === 0).reduce((a, b) => a + b, 0) / h.rows;
    assert.ok(Math.abs(h.stats.mean[0] - mean0) < 1e-9);
  }
  const err = await collectActivations(model, batches, { hooks: ['blocks.7.hook_resid_post'], dir, shardRows: 4 }).then(
    () => null,
    (e: Error) => e,
  );
  assert.match(err?.message ?? '', /unknown hook "blocks.7.hook_resid_post"/);
  model.dispose();
});

test.run();
