// The training loop: the loss falls on a learnable toy task; a NaN loss stops training naming the
// step after saving the last good checkpoint; a run resumed from a checkpoint continues exactly
// as the uninterrupted run (parameters, optimiser state and loss curve).
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as mi from '../../engine/index.ts';
import { initMamba } from '../../mamba/model.ts';
import { loadPretrained } from '../../mamba/pretrained.ts';
import { train, type TrainOptions } from '../../mamba/train.ts';
import { counting, TOY_CONFIG, tempDirs, toyTraining } from '../helpers/train-loop.ts';

const test = suite('model training loop');
const config = TOY_CONFIG;
const tmp = tempDirs([test], 'mi-train-');
const base = (outDir: string): TrainOptions => toyTraining(outDir, [1000]);

test('a few steps lower the loss; the curve and an HF checkpoint are written', async () => {
  const outDir = await tmp();
  const model = initMamba(config, new mi.Rng('train-test'), { backend: mi.cpuBackend() });
  const lines: string[] = [];
  const curve = await train(model, { ...base(outDir), log: (l) => lines.push(l) });
  assert.is(curve.train.length, 12);
  const first = curve.train[0].loss,
    last = curve.train[11].loss;
  assert.ok(last < first - 0.3, `loss ${first} -> ${last}`);
  assert.ok(curve.eval[1].loss < curve.eval[0].loss + 1e-9, 'eval loss does not rise');
  assert.ok(
    lines.some((l) => /^step 12\/12 {2}loss [\d.]+ {2}lr .* tok\/s$/.test(l)),
    lines.join('\n'),
  );
  const saved = JSON.parse(await readFile(join(outDir, 'loss.json'), 'utf-8'));
  assert.is(saved.train.length, 12);
  const reloaded = await loadPretrained(join(outDir, 'checkpoint'), { backend: mi.cpuBackend() });
  for (const [n, t] of model.params) assert.equal(reloaded.p(n).dataSync(), t.dataSync(), n);
  reloaded.dispose();
  model.dispose();
});

test('a NaN loss stops training, naming the step, after saving the last good parameters', async () => {
  const outDir = await tmp();
  const model = initMamba(config, new mi.Rng('nan-test'), { backend: mi.cpuBackend() });
  let before: Float32Array | null = null;
  const err = await train(model, {
    ...base(outDir),
    loss: (m, ids, step) => {
      const T = ids.shape[1];
      const l = mi.crossEntropy(mi.slice(m.forward(ids), 1, 0, T - 1), mi.slice(ids, 1, 1, T));
      if (step === 4) {
        before = Float32Array.from(m.p('backbone.layers.0.mixer.in_proj.weight').dataSync());
        return mi.mul(l, NaN);
      }
      return l;
    },
  }).then(
    () => null,
    (e: Error) => e,
  );
  assert.ok(err && /loss is NaN at step 4/.test(err.message), String(err));
  const state = JSON.parse(await readFile(join(outDir, 'checkpoint', 'trainer_state.json'), 'utf-8'));
  assert.is(state.step, 3);
  const saved = await loadPretrained(join(outDir, 'checkpoint'), { backend: mi.cpuBackend() });
  assert.equal(saved.p('backbone.layers.0.mixer.in_proj.weight').dataSync(), before!);
  saved.dispose();
  model.dispose();
});

test('resuming from the step-6 checkpoint gives the same run as no interruption', async () => {
  const straightDir = await tmp(),
    resumedDir = await tmp();
  const a = initMamba(config, new mi.Rng('resume'), { backend: mi.cpuBackend() });
  const straight = await train(a, base(straightDir));
  const b = initMamba(config, new mi.Rng('resume'), { backend: mi.cpuBackend() });
  await train(b, {
    ...base(resumedDir),
    steps: 12,
    batch: (s) => {
      if (s > 6) throw new Error('interrupted');
      return counting(s);
    },
  }).catch((e: Error) => assert.match(e.message, 'interrupted'));
  const c = initMamba(config, new mi.Rng('something else'), { backend: mi.cpuBackend() });
  const lines: string[] = [];
  const resumed = await train(c, { ...base(resumedDir), log: (l) => lines.push(l) });
  assert.ok(lines[0].includes('resumed') && lines[0].includes('after step 6'), lines[0]);
  assert.equal(
    resumed.train.map((p) => p.loss),
    straight.train.map((p) => p.loss),
  );
  for (const [n, t] of a.params) assert.equal(c.p(n).dataSync(), t.dataSync(), n);
  for (const m of [a, b, c]) m.dispose();
});

test('early stopping: a stop at step 8 ends training there (checkpointed, logged), the same with deferred reads', async () => {
  for (const readEvery of [undefined, 5]) {
    const outDir = await tmp();
    const model = initMamba(config, new mi.Rng('stop-test'), { backend: mi.cpuBackend() });
    const asked: number[] = [];
    const lines: string[] = [];
    const curve = await train(model, {
      ...base(outDir),
      readEvery,
      log: (l) => lines.push(l),
      stopEvery: 4,
      stop: (_m, step) => {
        asked.push(step);
        return step === 8;
      },
    });
    const how = `readEvery ${readEvery}`;
    assert.equal(asked, [4, 8], how);
    assert.equal(
      curve.train.map((p) => p.step),
      [1, 2, 3, 4, 5, 6, 7, 8],
      how,
    );
    assert.is(curve.eval[curve.eval.length - 1].step, 8, how);
    assert.ok(
      lines.some((l) => l.startsWith('step 8/12 ')),
      how,
    );
    const state = JSON.parse(await readFile(join(outDir, 'checkpoint', 'trainer_state.json'), 'utf-8'));
    assert.is(state.step, 8, how);
    const saved = await loadPretrained(join(outDir, 'checkpoint'), { backend: mi.cpuBackend() });
    for (const [n, t] of model.params) assert.equal(saved.p(n).dataSync(), t.dataSync(), n);
    saved.dispose();
    model.dispose();
  }
});

test.run();
