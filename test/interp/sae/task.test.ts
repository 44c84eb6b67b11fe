// interp/sae/task.ts, on small cases with known answers: SAE evaluation on task data (per-sequence
// loss, ablation hooks, loss-recovered interval, top contexts). Also steps/hook-patterns.ts's
// resolveHooks (its test stays here: test/steps/ is renamed elsewhere).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as mi from '../../../engine/index.ts';
import { makeConfig } from '../../../mamba/config.ts';
import { initMamba } from '../../../mamba/model.ts';
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
import type { TaskVariable } from '../../../interp/task-variables.ts';
import { induction, IGNORE_INDEX } from '../../../interp/tasks/index.ts';
import { resolveHooks } from '../../../steps/hook-patterns.ts';

mi.setBackend(mi.cpuBackend());
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

test('scoredPerSequence with a reference: per-sequence KL(clean || ablated) matches log-softmaxes of the logits; 0 against itself', async () => {
  const model = tinyModel();
  try {
    const batch = induction.generate({ vocabSize: 12, seqLen: 16 }, new mi.Rng('kl'), 5);
    const hook = 'blocks.0.hook_resid_post';
    const clean = await scoredPerSequence(model, batch);
    const self = await scoredPerSequence(model, batch, [], clean);
    for (const k of self.kl!) assert.ok(Math.abs(k) < 1e-6, `KL of clean with itself ${k}`);
    const zero = await scoredPerSequence(model, batch, [{ name: hook, fn: zeroAblation }], clean);
    // independently: log-softmax of both runs' logits by the engine, KL at each sequence's scored positions
    const logp = async (hooks: { name: string; fn: typeof zeroAblation }[]) =>
      mi.tidyAsync(async () =>
        Float32Array.from(
          await mi
            .noGrad(() => mi.logSoftmax(model.run(mi.tensor(batch.inputs, batch.shape, { dtype: 'int32' }), { hooks }).logits, -1))
            .data(),
        ),
      );
    const [p, q] = [await logp([]), await logp([{ name: hook, fn: zeroAblation }])];
    const V = model.config.vocab_size,
      [B, T] = batch.shape;
    const want: number[] = [];
    for (let b = 0; b < B; b++) {
      let sum = 0,
        count = 0;
      for (let t = 0; t < T; t++) {
        if (batch.targets[b * T + t] === IGNORE_INDEX) continue;
        for (let v = 0; v < V; v++) {
          const i = (b * T + t) * V + v;
          sum += Math.exp(p[i]) * (p[i] - q[i]);
        }
        count++;
      }
      if (count) want.push(sum / count);
    }
    assert.is(zero.kl!.length, want.length);
    zero.kl!.forEach((k, i) => assert.ok(Math.abs(k - want[i]) < 1e-4 && k > 0, `sequence ${i}: KL ${k} vs ${want[i]}`));
    assert.is(clean.kl, undefined);
    assert.is(clean.logProbs.length, clean.loss.length * V); // one scored position a sequence here
  } finally {
    model.dispose();
  }
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
