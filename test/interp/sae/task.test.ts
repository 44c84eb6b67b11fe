// The pieces steps 3 and 4 build on, on small cases with known answers: task variables from labels,
// SAE evaluation on task data (per-sequence loss, ablation hooks, loss-recovered interval, top
// contexts), SAE safetensors round trip, and held-out sparse probes with their shuffled control.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as mi from '../../../engine/index.ts';
import { makeConfig } from '../../../mamba/config.ts';
import { initMamba } from '../../../mamba/model.ts';
import { evaluateProbe } from '../../../interp/probe-eval.ts';
import { encodeAll, trainSae } from '../../../interp/sae/index.ts';
import { loadSae, saveSae } from '../../../interp/sae/io.ts';
import {
  columnMeans,
  lossRecoveredCI,
  meanAblation,
  scoredPerSequence,
  topExamples,
  variableCorrelations,
  zeroAblation,
} from '../../../interp/sae/task.ts';
import { lossRecovered } from '../../../interp/sae/analysis.ts';
import { taskVariables, type TaskVariable } from '../../../interp/task-variables.ts';
import { induction, IGNORE_INDEX, NO_LABEL } from '../../../interp/tasks/index.ts';
import { resolveHooks } from '../../../steps/hook-patterns.ts';

mi.setBackend(mi.cpuBackend());
const _ = NO_LABEL;

test('taskVariables: indicator -> binary over all rows, token -> upper-half bit where defined, others numeric', () => {
  const vars = taskVariables(
    {
      isTrigger: [_, 1, _, _, 1, _, _, _, 1, _],
      copyToken: [_, 2, 9, 5, 7, _, 3, 8, _, 4],
      distance: [_, 3, 1, 4, 1, 5, 9, 2, 6, _],
      everywhere: [1, 1, 1, 1, 1, 1, 1, 1, 1, 1],
    },
    { minRows: 3 },
  );
  assert.equal(
    vars.map((v) => [v.name, v.kind]),
    [
      ['isTrigger', 'binary'],
      ['copyToken>=6', 'binary'],
      ['distance', 'continuous'],
    ],
  );
  assert.equal(Array.from(vars[0].rows), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  assert.equal(Array.from(vars[0].values), [0, 1, 0, 0, 1, 0, 0, 0, 1, 0]);
  assert.equal(Array.from(vars[1].rows), [1, 2, 3, 4, 6, 7, 9]);
  assert.equal(Array.from(vars[1].values), [0, 1, 0, 1, 0, 1, 0]); // ids 2..9: upper half is 6..9
  assert.equal(Array.from(vars[2].values), [3, 1, 4, 1, 5, 9, 2, 6]);
  assert.equal(taskVariables({ rare: [_, 1, _, _] }).length, 0, 'fewer than minRows (8) defined rows');
});

test('variableCorrelations uses only the rows where the variable is defined', () => {
  // latent 0 tracks the variable on its rows and is wild elsewhere; latent 1 is anti-correlated
  const z = Float32Array.from([100, 0, 1, 3, -50, 7, 2, 2, 3, 1]);
  const v: TaskVariable = {
    name: 'x',
    label: 'x',
    kind: 'continuous',
    description: '',
    rows: Int32Array.from([1, 3, 4]),
    values: Float64Array.from([1, 2, 3]),
  };
  const r = variableCorrelations(z, 2, v);
  assert.ok(Math.abs(r[0] - 1) < 1e-9, `r0 ${r[0]}`);
  assert.ok(Math.abs(r[1] + 1) < 1e-9, `r1 ${r[1]}`);
});

test('topExamples: strongest rows first, context up to the firing position within its sequence', () => {
  const T = 4,
    latents = 2;
  const inputs = [10, 11, 12, 13, 20, 21, 22, 23];
  const z = new Float32Array(8 * latents);
  z[5 * latents + 1] = 3; // sequence 1, position 1
  z[2 * latents + 1] = 5; // sequence 0, position 2
  z[7 * latents + 0] = 9; // other latent
  const ex = topExamples(z, latents, 1, inputs, T, { before: 1 });
  assert.equal(
    ex.map((e) => [e.sequence, e.position, e.activation, e.context]),
    [
      [0, 2, 5, [11, 12]],
      [1, 1, 3, [20, 21]],
    ],
  );
  assert.throws(() => topExamples(z, latents, 2, inputs, T), /out of range/);
});

test('lossRecoveredCI: the estimate is the ratio of mean losses, inside its interval', () => {
  const rng = new mi.Rng('lr');
  const clean = Array.from({ length: 40 }, () => 1 + 0.1 * rng.normal());
  const ablated = clean.map((c) => c + 2 + 0.1 * rng.normal());
  const spliced = clean.map((c, i) => c + 0.5 + 0.1 * Math.sin(i));
  const mean = (x: number[]) => x.reduce((a, b) => a + b, 0) / x.length;
  const ci = lossRecoveredCI(clean, spliced, ablated, new mi.Rng('boot'), { nBoot: 500 });
  const want = lossRecovered({ clean: mean(clean), spliced: mean(spliced), ablated: mean(ablated) });
  assert.ok(Math.abs(ci.estimate - want) < 1e-12);
  assert.ok(ci.lo <= ci.estimate && ci.estimate <= ci.hi && ci.hi - ci.lo < 0.2, `[${ci.lo}, ${ci.hi}]`);
  assert.ok(Math.abs(want - 0.75) < 0.05);
  assert.throws(() => lossRecoveredCI(clean, spliced.slice(1), ablated, rng), /must align/);
});

function tinyModel() {
  const config = makeConfig({
    vocab_size: 12,
    hidden_size: 16,
    num_hidden_layers: 2,
    state_size: 4,
    expand: 2,
    conv_kernel: 4,
    pad_token_id: null,
    bos_token_id: null,
    eos_token_id: null,
  });
  return initMamba(config, new mi.Rng('tiny-model'));
}

test('scoredPerSequence: per-sequence scored cross-entropy matches the engine; ablation hooks change it', async () => {
  const model = tinyModel();
  try {
    const batch = induction.generate({ vocabSize: 12, seqLen: 16 }, new mi.Rng('batch'), 6);
    const clean = await scoredPerSequence(model, batch);
    assert.is(clean.loss.length, 6); // one scored position per sequence (2 trigger occurrences)
    const want = await mi.tidyAsync(() =>
      mi
        .noGrad(() =>
          mi.crossEntropy(
            model.forward(mi.tensor(batch.inputs, batch.shape, { dtype: 'int32' })),
            mi.tensor(batch.targets, batch.shape, { dtype: 'int32' }),
            { ignoreIndex: IGNORE_INDEX },
          ),
        )
        .item(),
    );
    const got = clean.loss.reduce((a, b) => a + b, 0) / clean.loss.length;
    assert.ok(Math.abs(got - want) < 1e-4, `${got} vs ${want}`);
    for (const a of clean.accuracy) assert.ok(a === 0 || a === 1);
    const hook = 'blocks.1.hook_resid_post';
    const zero = await scoredPerSequence(model, batch, [{ name: hook, fn: zeroAblation }]);
    assert.ok(
      zero.loss.some((l, i) => Math.abs(l - clean.loss[i]) > 1e-4),
      'zero-ablation changes the loss',
    );
    // mean-ablation with a mean that is all zeros is zero-ablation
    const zm = await scoredPerSequence(model, batch, [{ name: hook, fn: meanAblation(new Float32Array(16)) }]);
    zm.loss.forEach((l, i) => assert.ok(Math.abs(l - zero.loss[i]) < 1e-5));
    assert.equal(Array.from(columnMeans(Float32Array.from([1, 2, 3, 6]), 2)), [2, 4]);
  } finally {
    model.dispose();
  }
});

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

/** Rows [n, p] of noise; the variable is planted in column 3 (and 5 for the continuous one). */
function plantedProbe(kind: 'binary' | 'continuous') {
  const rng = new mi.Rng(`probe-${kind}`);
  const n = 600,
    p = 12;
  const data = Float32Array.from({ length: n * p }, () => rng.normal());
  const values = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    values[i] = kind === 'binary' ? (rng.uniform() < 0.2 ? 1 : 0) : rng.normal();
    if (kind === 'binary') data[i * p + 3] += 4 * values[i];
    else {
      data[i * p + 3] = values[i] + 0.2 * rng.normal();
      data[i * p + 5] = -values[i] + 0.2 * rng.normal();
    }
  }
  const v: TaskVariable = { name: 'v', label: 'v', kind, description: '', rows: Int32Array.from({ length: n }, (_, i) => i), values };
  return { X: { data, rows: n, cols: p }, v };
}

test('evaluateProbe: a planted binary variable is read from its column, class-balanced, above the shuffled control', () => {
  const { X, v } = plantedProbe('binary');
  const e = evaluateProbe(X, v, new mi.Rng('e'), { folds: 3, nBoot: 200, nPerm: 200 });
  assert.is(e.kind, 'logistic');
  assert.ok(e.heldOut > 0.9, `accuracy ${e.heldOut}`);
  assert.ok(Math.abs(e.chance - 0.5) < 0.15, `balanced test rows, majority ${e.chance}`);
  assert.ok(e.control < 0.7, `control ${e.control}`);
  assert.ok(e.p < 0.01 && e.interval[0] <= e.heldOut && e.heldOut <= e.interval[1]);
  assert.ok(e.selected.includes(3));
  assert.is(e.coefficients.length, e.selected.length);
  assert.ok(e.coefficients[e.selected.indexOf(3)] > 0);
  assert.ok(e.nTrain + e.nTest <= 2 * 600 * 0.2 + 60, 'balanced subsample: about twice the positives');
  const again = evaluateProbe(X, v, new mi.Rng('e'), { folds: 3, nBoot: 200, nPerm: 200 });
  assert.equal(again, e, 'deterministic for a seed');
});

test('evaluateProbe: a planted continuous variable (lasso and elastic net) has high held-out R2; the control has none', () => {
  const { X, v } = plantedProbe('continuous');
  for (const alpha of [1, 0.5]) {
    const e = evaluateProbe(X, v, new mi.Rng('c'), { folds: 3, alpha, nBoot: 200, nPerm: 200 });
    assert.is(e.kind, alpha === 1 ? 'lasso' : 'elasticnet');
    assert.ok(e.heldOut > 0.9, `R2 ${e.heldOut}`);
    assert.ok(e.control < 0.1, `control R2 ${e.control}`);
    assert.ok(e.selected.includes(3) && e.selected.includes(5), `selected ${e.selected}`);
    assert.ok(e.p < 0.01);
  }
  assert.throws(
    () =>
      evaluateProbe(
        { ...X, rows: 10, data: X.data.subarray(0, 120) },
        { ...v, rows: v.rows.subarray(0, 10), values: v.values.subarray(0, 10) },
        new mi.Rng('x'),
      ),
    /too few/,
  );
});

test('resolveHooks: {i} is every layer, {last} the last; unknown patterns name what exists', () => {
  const av = ['blocks.0.hook_resid_post', 'blocks.1.hook_resid_post', 'blocks.0.mixer.hook_ssm_out', 'blocks.1.mixer.hook_ssm_out'];
  assert.equal(resolveHooks(['blocks.{last}.hook_resid_post'], av, 'x'), ['blocks.1.hook_resid_post']);
  assert.equal(resolveHooks(['blocks.{i}.mixer.hook_ssm_out', 'blocks.1.mixer.hook_ssm_out'], av, 'x'), [
    'blocks.0.mixer.hook_ssm_out',
    'blocks.1.mixer.hook_ssm_out',
  ]);
  assert.throws(
    () => resolveHooks(['blocks.{i}.hook_h'], av, 'sae.hooks'),
    /sae\.hooks: hook pattern "blocks\.\{i\}\.hook_h" matches none.*blocks\.0\.hook_resid_post/,
  );
});

test.run();
