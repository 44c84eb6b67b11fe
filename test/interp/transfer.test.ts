// interp/transfer.ts: the answer cells and the model's tail against the full hooked forward, mean
// and latent ablation against direct computations, firing density, SAE row errors, the grouped
// bootstrap, the answer bit, and probes split by sequence on planted data.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as mi from '../../engine/index.ts';
import { Rng } from '../../engine/random.ts';
import { initMamba } from '../../mamba/model.ts';
import { ablate, ablationEdit, ANSWER_SOURCE, cacheActivations, evalSet, idsOf, outcome, positionMask } from '../../interp/patching.ts';
import { Sae, saeMetrics } from '../../interp/sae/index.ts';
import { balancedRows } from '../../interp/probe-eval.ts';
import { taskModelConfig } from '../../interp/train-task.ts';
import { induction } from '../../interp/tasks/index.ts';
import {
  answerCells,
  answerUpperHalf,
  bootstrapRows,
  cellLatents,
  firingDensity,
  fitTransferProbe,
  fvuOf,
  lastResidual,
  lastResidualAttribution,
  lastResidualHook,
  latentImportance,
  latentsAblated,
  lossIncreases,
  meanAblated,
  perGroup,
  saeRowErrors,
  scoreTransferProbe,
  tailOutcome,
  topK,
  type SharedVariable,
} from '../../interp/transfer.ts';

const close = (a: number, b: number, tol: number, what: string) => assert.ok(Math.abs(a - b) <= tol, `${what}: ${a} vs ${b} (tol ${tol})`);

/** A ReLU SAE whose latents are +x_j and -x_j for the channels in `keep`: it reconstructs exactly those channels. */
function channelSae(d: number, keep: number[]): Sae {
  const L = 2 * keep.length;
  const Wenc = new Float32Array(d * L),
    Wdec = new Float32Array(L * d);
  keep.forEach((j, k) => {
    Wenc[j * L + 2 * k] = 1;
    Wenc[j * L + 2 * k + 1] = -1;
    Wdec[2 * k * d + j] = 1;
    Wdec[(2 * k + 1) * d + j] = -1;
  });
  const t = (data: Float32Array, shape: number[]) => mi.keep(mi.tensor(data, shape, { backend: mi.cpuBackend() }));
  return new Sae(
    { kind: 'relu', d, latents: L, inputScale: 1 },
    {
      W_enc: t(Wenc, [d, L]),
      b_enc: t(new Float32Array(L), [L]),
      W_dec: t(Wdec, [L, d]),
      b_dec: t(new Float32Array(d), [d]),
    },
  );
}

function data(rng: Rng, n: number, scales: number[]): Float32Array {
  const d = scales.length;
  return Float32Array.from({ length: n * d }, (_, i) => scales[i % d] * rng.normal());
}

test("saeRowErrors: an SAE keeping some channels leaves exactly the others' variance; matches saeMetrics", async () => {
  const rng = new Rng('rows');
  const x = data(rng, 500, [3, 1, 1, 1]);
  const all = channelSae(4, [0, 1, 2, 3]),
    first = channelSae(4, [0]);
  const eAll = await saeRowErrors(all, x),
    eFirst = await saeRowErrors(first, x);
  close(fvuOf(eAll), 0, 1e-10, 'full SAE');
  // channel 0 carries 9 of 12 units of variance
  close(fvuOf(eFirst), 3 / 12, 0.05, 'first-channel SAE');
  close(fvuOf(eFirst), (await saeMetrics(first, x)).fvu, 1e-9, 'same as saeMetrics');
  for (const s of [all, first]) s.dispose();
});

test('bootstrapRows: the interval of a mean brackets it, and grouped resampling keeps groups whole', () => {
  const x = Float64Array.from({ length: 100 }, (_, i) => i % 2);
  const mean = (idx: ArrayLike<number> | null) => {
    const n = idx ? idx.length : 100;
    let s = 0;
    for (let i = 0; i < n; i++) s += x[idx ? idx[i] : i];
    return s / n;
  };
  const r = bootstrapRows(100, mean, new Rng('b'), 300);
  assert.is(r.estimate, 0.5);
  assert.ok(r.interval[0] < 0.5 && r.interval[1] > 0.5);
  // groups of two rows {0,1} each have mean exactly 0.5: every grouped resample has mean 0.5
  const g = bootstrapRows(
    100,
    mean,
    new Rng('g'),
    100,
    Int32Array.from({ length: 100 }, (_, i) => Math.floor(i / 2)),
  );
  assert.equal(g.interval, [0.5, 0.5]);
});

test('answerUpperHalf: the shared answer bit of induction at its scored positions', () => {
  const opts = { vocabSize: 12, seqLen: 24, occurrences: 3 };
  const batch = induction.generate(opts, new Rng('ans'), 40);
  const v = answerUpperHalf(induction, opts, batch.labels);
  // content tokens 2..11: upper half is 7..11
  assert.is(v.cut, 7);
  assert.is(v.rows.length, 40 * 2);
  v.rows.forEach((r, i) => assert.is(v.values[i], batch.labels.copyToken[r] >= 7 ? 1 : 0));
  const picked = balancedRows(v, 1000, new Rng('bal'));
  const ones = picked.filter((i) => v.values[i] === 1).length;
  assert.is(ones * 2, picked.length);
  assert.throws(() => answerUpperHalf({ ...induction, name: 'nope' }, opts, batch.labels), /no answer variable defined for task 'nope'/);
});

/** n sequences of length T; each cell's bit y is coded on `channel` (+-3) under noise. */
function probeSource(channel: number, seed: string, n = 60, T = 5) {
  const r = new Rng(seed),
    d = 6;
  const y = Float64Array.from({ length: n * T }, () => (r.uniform() < 0.5 ? 1 : 0));
  const acts = Float32Array.from(
    { length: n * T * d },
    (_, i) => r.normal() * 0.5 + (i % d === channel ? 3 * (2 * y[Math.floor(i / d)] - 1) : 0),
  );
  const variable: SharedVariable = { name: 'y', rows: Int32Array.from({ length: n * T }, (_, i) => i), values: y, cut: 0 };
  return { acts, d, seqLen: T, variable };
}

test('fitTransferProbe: held-out rows are whole sequences; a variable on the same channel transfers, on another it does not', () => {
  const rng = new Rng('probe');
  const A = probeSource(2, 'A'),
    Bsame = probeSource(2, 'B'),
    Bother = probeSource(4, 'C');
  const opts = { maxRows: 200, folds: 3, nLambda: 8, nBoot: 200 };
  const fit = fitTransferProbe(A, rng.fork('fit'), opts);
  // no held-out row shares a sequence with a training row: the picked rows minus the test rows are the training rows
  const picked = balancedRows(A.variable, opts.maxRows, rng.fork('fit').fork('rows'));
  const seqOf = (i: number) => Math.floor(A.variable.rows[i] / A.seqLen);
  const testSeqs = new Set(fit.testRows.map(seqOf));
  const train = picked.filter((i) => !fit.testRows.includes(i));
  assert.is(train.length, fit.nTrain);
  for (const i of train) assert.not.ok(testSeqs.has(seqOf(i)), `training row ${i} shares sequence ${seqOf(i)} with the test rows`);
  assert.is(testSeqs.size, fit.testSequences);
  const own = scoreTransferProbe(fit, A, fit.testRows, rng.fork('own'), 200);
  assert.ok(own.accuracy.estimate > 0.9, `in-task ${own.accuracy.estimate}`);
  const all = balancedRows(Bsame.variable, 200, rng.fork('rows'));
  const same = scoreTransferProbe(fit, Bsame, all, rng.fork('s'), 200);
  assert.ok(same.accuracy.estimate > 0.9, `same-channel transfer ${same.accuracy.estimate}`);
  assert.ok(same.control.estimate < 0.75, `control ${same.control.estimate}`);
  const other = scoreTransferProbe(fit, Bother, balancedRows(Bother.variable, 200, rng.fork('rows')), rng.fork('o'), 200);
  assert.ok(other.accuracy.estimate < 0.7, `other-channel transfer ${other.accuracy.estimate}`);
  // per-sequence accuracies average (weighted by rows) to the overall accuracy
  const rowsPer = new Map<number, number>();
  for (const i of all) rowsPer.set(Math.floor(i / 5), (rowsPer.get(Math.floor(i / 5)) ?? 0) + 1);
  const w = [...rowsPer.keys()].sort((a, b) => a - b).map((k) => rowsPer.get(k)!);
  close(same.perSequence.reduce((s, v, k) => s + v * w[k], 0) / all.length, same.accuracy.estimate, 1e-12, 'per-sequence vs overall');
  assert.is(same.sequences, rowsPer.size);
  for (const e of [own.accuracy, same.accuracy, same.control]) assert.ok(e.interval[0] <= e.estimate && e.estimate <= e.interval[1]);
});

test('perGroup and topK', () => {
  assert.equal([...perGroup([1, 2, 3, 4, 5], [1, 1, 2, 2, 1], [0, 0, 1, 1, 2])], [1.5, 7 / 4, 5]);
  assert.equal(topK([0.1, 3, -1, 3, 2], 3), [1, 3, 4]);
});

function tinyModel() {
  const cfg = taskModelConfig(8, { hiddenSize: 8, layers: 2, stateSize: 4, expand: 2, convKernel: 3 });
  return initMamba(cfg, new Rng('tiny'), { dtype: 'float64', backend: mi.cpuBackend() });
}
const tinyOpts = { vocabSize: 8, seqLen: 12, occurrences: 3 };

test("tailOutcome and meanAblated: the tail on the answer cells equals the model's full (hooked) forward", async () => {
  const model = tinyModel();
  const batch = induction.generate(tinyOpts, new Rng('tail'), 6);
  const cells = await answerCells(model, batch);
  assert.is(cells.answer.length, 6 * 2);
  const ids = idsOf(model, batch);
  const set = evalSet(batch);
  const full = await outcome(model, ids, set, []);
  const tail = await tailOutcome(model, cells);
  // the cells keep the residual in float32: agreement to float32 rounding, not float64's
  full.loss.forEach((l, i) => close(tail.loss[i], l, 1e-6, `loss of sequence ${i}`));
  full.accuracy.forEach((a, i) => close(tail.accuracy[i], a, 1e-12, `accuracy of sequence ${i}`));
  // mean ablation of channels at the scored cells, through the whole hooked forward (patching.ts)
  const hook = lastResidualHook(model);
  const mask = positionMask('scored', batch);
  const clean = cacheActivations(model, ids, [hook]);
  const channels = [1, 5, 6];
  const ref = await ablate(model, ids, set, full, { hook, channels }, mask, await ablationEdit('mean', clean.get(hook)!, mask));
  const [mine] = await lossIncreases(model, cells, [() => meanAblated(cells, channels)]);
  ref.lossIncrease.forEach((v, i) => close(mine[i], v, 1e-6, `mean-ablation loss increase of sequence ${i}`));
  assert.ok(
    mine.some((v) => Math.abs(v) > 1e-6),
    'the ablation changes something',
  );
  // several edits a pass of the tail (chunks of 2 over 3 edits) give what one edit a pass gives
  const edits = [[0], [1, 5, 6], [7]].map((c) => () => meanAblated(cells, c));
  const one = await lossIncreases(model, cells, edits, 1),
    chunked = await lossIncreases(model, cells, edits, 2);
  one.forEach((x, k) => x.forEach((v, i) => close(chunked[k][i], v, 1e-12, `edit ${k} sequence ${i}`)));
  assert.throws(() => meanAblated(cells, [8]), /meanAblated: channel 8 is not in \[0, 8\)/);
  for (const t of clean.values()) t.dispose();
  ids.dispose();
  model.dispose();
});

test('lastResidual and lastResidualAttribution in chunks of sequences equal one forward of the whole batch', async () => {
  const model = tinyModel();
  const batch = induction.generate(tinyOpts, new Rng('chunks'), 5);
  const T = batch.shape[1];
  const hook = lastResidualHook(model);
  const ids = idsOf(model, batch);
  const ref = Float32Array.from(await cacheActivations(model, ids, [hook]).get(hook)!.data());
  ids.dispose();
  // the default takes these 60 tokens in one forward: the same values exactly
  assert.equal(Array.from(await lastResidual(model, batch)), Array.from(ref));
  // one and two sequences a forward (the last chunk shorter)
  for (const maxTokens of [T, 2 * T + 1]) {
    const parts = await lastResidual(model, batch, maxTokens);
    assert.is(parts.length, ref.length);
    parts.forEach((v, i) => close(v, ref[i], 1e-6, `cell value ${i} in chunks of ${maxTokens} tokens`));
  }
  const attribution = (maxTokens?: number) =>
    lastResidualAttribution(model, induction, tinyOpts, batch, ANSWER_SOURCE.induction, new Rng('corrupt'), maxTokens);
  const whole = await attribution();
  const chunked = await attribution(2 * T);
  assert.ok(
    whole.some((v) => Math.abs(v) > 1e-6),
    'the attribution is not all zero',
  );
  whole.forEach((v, c) => close(chunked[c], v, 1e-9, `attribution of channel ${c}`));
  model.dispose();
});

test('latentsAblated, firingDensity, latentImportance: with latents +x_j / -x_j, ablating both of a channel zeroes it', async () => {
  const model = tinyModel();
  const batch = induction.generate(tinyOpts, new Rng('lat'), 6);
  const cells = await answerCells(model, batch);
  const sae = channelSae(8, [0, 3]);
  const lat = await cellLatents(sae, cells);
  const S = cells.answer.length;
  // latent 2k is +x_j, 2k+1 is -x_j: together they remove channel j exactly
  const ablated = latentsAblated(cells, lat, [2, 3]);
  for (let i = 0; i < S; i++)
    for (let j = 0; j < 8; j++) close(ablated[i * 8 + j], j === 3 ? 0 : cells.resid[i * 8 + j], 1e-6, `cell ${i} channel ${j}`);
  const density = firingDensity(lat);
  let pos = 0;
  for (let i = 0; i < S; i++) if (cells.resid[i * 8] > 0) pos++;
  close(density[0], pos / S, 1e-12, 'density of +x_0');
  close(density[0] + density[1], 1, 1e-12, '+x_0 or -x_0 fires on every cell');
  // importance of latent l is its own ablation's mean loss increase
  const imp = await latentImportance(model, cells, lat);
  const [direct] = await lossIncreases(model, cells, [() => latentsAblated(cells, lat, [2])]);
  close(imp[2], direct.reduce((s, v) => s + v, 0) / direct.length, 1e-12, 'importance of latent 2');
  sae.dispose();
  model.dispose();
});

test.run();
