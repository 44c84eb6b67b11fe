import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as mi from '../../engine/index.ts';
import { Rng } from '../../engine/random.ts';
import { initMamba } from '../../mamba/model.ts';
import { Sae, saeMetrics } from '../../interp/sae/index.ts';
import { balancedRows } from '../../interp/probe-eval.ts';
import { taskModelConfig } from '../../interp/train-task.ts';
import { induction } from '../../interp/tasks/index.ts';
import {
  answerUpperHalf,
  bootstrapRows,
  channelAblationDrops,
  fitTransferProbe,
  fvuOf,
  permuteChannels,
  saeRowErrors,
  scoreTransferProbe,
  saeTransfer,
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
  close(eFirst.l0.reduce((a, b) => a + b, 0) / 500, 1, 0.02, 'one of +x0/-x0 fires per row');
  const perm = [3, 2, 1, 0];
  assert.equal(Array.from(permuteChannels(Float32Array.from([1, 2, 3, 4]), 4, perm)), [4, 3, 2, 1]);
  // transfer: A keeps channel 0 only, B's own SAE keeps all; the control (B's SAE on shuffled channels) is still perfect
  const t = await saeTransfer(first, all, x, rng.fork('t'), 200);
  close(t.ratio.estimate, 0.75, 0.05, 'transferred variance explained ratio');
  assert.ok(t.ratio.interval[0] <= t.ratio.estimate && t.ratio.estimate <= t.ratio.interval[1]);
  close(t.controlRatio.estimate, 1, 1e-9, 'identity SAE does not care about the basis');
  // and a channel-specific SAE does: shuffled channels move the variance away from channel 0
  const c = await saeTransfer(all, first, x, rng.fork('c'), 50);
  assert.ok(c.controlRatio.estimate < 0.5, `control ratio ${c.controlRatio.estimate}`);
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
  const v = answerUpperHalf('induction', opts, batch.labels);
  // content tokens 2..11: upper half is 7..11
  assert.is(v.cut, 7);
  assert.is(v.rows.length, 40 * 2);
  v.rows.forEach((r, i) => assert.is(v.values[i], batch.labels.copyToken[r] >= 7 ? 1 : 0));
  const picked = balancedRows(v, 1000, new Rng('bal'));
  const ones = picked.filter((i) => v.values[i] === 1).length;
  assert.is(ones * 2, picked.length);
  assert.throws(() => answerUpperHalf('nope', opts, batch.labels), /no answer variable defined for task 'nope'/);
});

test('probeTransfer: a variable coded on the same channel transfers, on another channel it does not', () => {
  const rng = new Rng('probe');
  const d = 6,
    n = 300;
  const make = (channel: number, seed: string) => {
    const r = new Rng(seed);
    const y = Float64Array.from({ length: n }, () => (r.uniform() < 0.5 ? 1 : 0));
    const acts = Float32Array.from(
      { length: n * d },
      (_, i) => r.normal() * 0.5 + (i % d === channel ? 3 * (2 * y[Math.floor(i / d)] - 1) : 0),
    );
    const variable: SharedVariable = { name: 'y', rows: Int32Array.from({ length: n }, (_, i) => i), values: y, cut: 0 };
    return { acts, d, variable };
  };
  const A = make(2, 'A'),
    Bsame = make(2, 'B'),
    Bother = make(4, 'C');
  const opts = { maxRows: 200, folds: 3, nLambda: 8, nBoot: 200 };
  const fit = fitTransferProbe(A, rng.fork('fit'), opts);
  assert.ok(fit.inTask.estimate > 0.9, `in-task ${fit.inTask.estimate}`);
  const same = scoreTransferProbe(fit, Bsame, rng.fork('s'), opts);
  assert.ok(same.transfer.estimate > 0.9, `same-channel transfer ${same.transfer.estimate}`);
  assert.ok(same.control.estimate < 0.75, `control ${same.control.estimate}`);
  const other = scoreTransferProbe(fit, Bother, rng.fork('o'), opts);
  assert.ok(other.transfer.estimate < 0.7, `other-channel transfer ${other.transfer.estimate}`);
  for (const e of [fit.inTask, same.transfer, same.control]) assert.ok(e.interval[0] <= e.estimate && e.estimate <= e.interval[1]);
});

test('channelAblationDrops: no channels changes nothing; drops are per example and bounded', async () => {
  const opts = { vocabSize: 8, seqLen: 12, occurrences: 2 };
  const cfg = taskModelConfig(8, { hiddenSize: 8, layers: 1, stateSize: 4, expand: 2, convKernel: 3 });
  const model = initMamba(cfg, new Rng('abl'), { dtype: 'float64', backend: mi.cpuBackend() });
  const batch = induction.generate(opts, new Rng('abl-batch'), 6);
  const [none, all] = await channelAblationDrops(model, batch, 'blocks.0.hook_resid_post', 'all', [
    [],
    Array.from({ length: 8 }, (_, i) => i),
  ]);
  assert.is(none.length, 6);
  for (const v of none) assert.is(v, 0);
  for (const v of all) assert.ok(v >= -1 && v <= 1);
});

test.run();
