// Step 2 (steps/step02-collect.ts) on the quick run: shard files with the documented shapes, and
// statistics that agree with the activations.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { StepReport } from '../../interp/report/index.ts';
import { openSafetensors } from '../../mamba/safetensors.ts';
import { COLLECT_DIR, loadActivations, loadCollections, loadTokens, loadTrainedModels } from '../../steps/artefacts.ts';
import { DEFAULT_CONFIG, mergeConfig, QUICK_OVERRIDES } from '../../steps/config.ts';
import { quickRun } from '../helpers/quick-run.ts';

const quick = mergeConfig(DEFAULT_CONFIG, QUICK_OVERRIDES, 'quick');

const readReport = (dir: string, step: string) => JSON.parse(readFileSync(join(dir, step, 'report.json'), 'utf8')) as StepReport;

test('step 2: one collection per model; shards hold the documented shapes; tokens match the rows', async () => {
  const dir = await quickRun();
  const collections = loadCollections(dir);
  const c = quick.collect;
  // one per model that passed the learning gate (steps/models.ts): the others are not analysed
  assert.is(collections.length, loadTrainedModels(dir).filter((m) => m.passed).length);
  for (const col of collections) {
    assert.is(col.batch, c.batches * c.batchSize);
    assert.is(col.seqLen, quick.train.seqLen);
    const rows = col.batch * col.seqLen;
    assert.equal(
      col.hooks.map((h) => h.name),
      [
        'blocks.0.hook_resid_post',
        'blocks.1.hook_resid_post',
        'blocks.0.mixer.hook_ssm_out',
        'blocks.1.mixer.hook_ssm_out',
        'blocks.1.mixer.hook_h',
      ],
    );
    const E = quick.train.hiddenSize * quick.train.expand;
    for (const h of col.hooks) {
      const state = h.name.endsWith('hook_h');
      assert.is(h.dim, state ? E * quick.train.stateSize : h.name.includes('mixer') ? E : quick.train.hiddenSize, h.name);
      assert.is(h.rows, state ? c.stateBatches * c.batchSize * col.seqLen : rows, h.name);
      let seen = 0;
      for (const s of h.shards) {
        const f = await openSafetensors(join(dir, COLLECT_DIR, col.dir, s));
        const shape = f.entry('acts').shape;
        await f.close();
        assert.is(shape[1], h.dim);
        assert.ok(shape[0] >= 1 && shape[0] <= c.shardTokens);
        seen += shape[0];
      }
      assert.is(seen, h.rows);
    }
    const tokens = await loadTokens(dir, col);
    assert.is(tokens.inputs.length, rows);
    assert.is(tokens.targets.length, rows);
    assert.ok(
      tokens.targets.some((t) => t >= 0),
      'no scored position',
    );
    assert.equal(Object.keys(tokens.labels).sort(), [...col.labels].sort());
  }
});

test('step 2: stats.json agrees with the activations (mean, variance, norm, sparsity per channel)', async () => {
  const dir = await quickRun();
  const stats = JSON.parse(readFileSync(join(dir, COLLECT_DIR, 'stats.json'), 'utf8')) as {
    collections: {
      task: string;
      seed: number;
      hooks: Record<string, { rows: number; mean: number[]; variance: number[]; norm: number[]; sparsity: number[] }>;
    }[];
  };
  const col = loadCollections(dir)[0];
  const entry = stats.collections.find((s) => s.task === col.task && s.seed === col.seed)!;
  for (const h of col.hooks.slice(0, 2)) {
    const { data, rows, dim } = await loadActivations(dir, col, h.name);
    const s = entry.hooks[h.name];
    assert.is(s.rows, rows);
    for (const ch of [0, dim - 1]) {
      let sum = 0,
        sq = 0,
        zeros = 0;
      for (let r = 0; r < rows; r++) {
        const v = data[r * dim + ch];
        sum += v;
        sq += v * v;
        if (Math.abs(v) < 1e-6) zeros++;
      }
      const mean = sum / rows;
      const close = (a: number, b: number) => Math.abs(a - b) <= 1e-9 + 1e-6 * Math.abs(b);
      assert.ok(close(s.mean[ch], mean), `${h.name}[${ch}] mean`);
      assert.ok(close(s.variance[ch], sq / rows - mean * mean), `${h.name}[${ch}] variance`);
      assert.ok(close(s.norm[ch], Math.sqrt(sq / rows)), `${h.name}[${ch}] norm`);
      assert.is(s.sparsity[ch], zeros / rows);
    }
  }
  const report = readReport(dir, COLLECT_DIR);
  const svg = readFileSync(join(dir, COLLECT_DIR, report.figures[0].file), 'utf8');
  assert.ok(svg.startsWith('<svg') && svg.length > 1000);
});

test.run();
