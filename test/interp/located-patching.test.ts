// interp/located-patching.ts on tiny random Mambas (float64 on the CPU): the closed-form patch at
// the last residual against the engine's patchCleanMany; the test's point numbers against
// controls.ts controlTest (an independent implementation of the same rank test); a planted model
// B that is model A with its residual basis permuted and sign-flipped by construction, where the
// located circuit must be the permuted circuit and every number must equal A's own; and a null
// where the "circuit" is drawn like its controls, so it must not beat them.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as mi from '../../engine/index.ts';
import { makeConfig } from '../../mamba/config.ts';
import { initMamba, MambaLM } from '../../mamba/model.ts';
import { activationProfile, controlTest, matchedChannels } from '../../interp/controls.ts';
import { lastResidualPatch, locatedPatchTest, patchGained, patchLocated } from '../../interp/located-patching.ts';
import {
  ANSWER_SOURCE,
  cacheActivations,
  corruptAnswers,
  evalSet,
  idsOf,
  outcome,
  patchCleanMany,
  positionMask,
} from '../../interp/patching.ts';
import { activationCorrelations, locateOneToOne } from '../../interp/similarity.ts';
import { induction, type TaskBatch } from '../../interp/tasks/index.ts';

const d = 16;
const opts = { vocabSize: 10, seqLen: 16 };
const cfg = makeConfig({
  vocab_size: 10,
  hidden_size: d,
  num_hidden_layers: 2,
  state_size: 4,
  expand: 2,
  conv_kernel: 3,
  initializer_range: 0.5,
  pad_token_id: null,
  bos_token_id: null,
  eos_token_id: null,
});
const cpu = mi.cpuBackend();
const modelOf = (seed: string) => {
  const m = initMamba(cfg, new mi.Rng(seed), { dtype: 'float64', backend: cpu });
  // norm weights other than 1, so a wrong permutation of them shows
  const r = new mi.Rng(`${seed}/norms`);
  for (const [name, t] of m.params)
    if (name.endsWith('norm.weight') || name.endsWith('norm_f.weight')) {
      const w = t.dataSync() as Float64Array;
      m.params.set(
        name,
        mi.tensor(
          Float64Array.from(w, () => 0.5 + r.uniform()),
          t.shape,
          { dtype: 'float64', backend: cpu },
        ),
      );
    }
  return m;
};
const A = modelOf('located-A');

/**
 * A with its residual basis changed: B's channel perm[j] is sign[j] times A's channel j. Every
 * weight that reads or writes the residual stream is permuted along that axis (and flipped where
 * it is not behind an RMSNorm, which keeps signs), so B computes exactly what A does, in its basis.
 */
function permutedModel(m: MambaLM, perm: number[], sign: number[]): MambaLM {
  const params = new Map<string, mi.Tensor>();
  for (const [name, t] of m.params) {
    const w = t.dataSync() as Float64Array;
    const out = Float64Array.from(w);
    const [rows, cols] = t.shape.length === 2 ? t.shape : [1, t.shape[0]];
    const residCols = name === 'backbone.embeddings.weight' || name === 'lm_head.weight' || name.endsWith('in_proj.weight');
    const residRows = name.endsWith('out_proj.weight');
    const norm = name.endsWith('norm.weight') || name.endsWith('norm_f.weight');
    if (residCols) for (let r = 0; r < rows; r++) for (let j = 0; j < d; j++) out[r * cols + perm[j]] = sign[j] * w[r * cols + j];
    else if (residRows) for (let j = 0; j < d; j++) for (let c = 0; c < cols; c++) out[perm[j] * cols + c] = sign[j] * w[j * cols + c];
    else if (norm) for (let j = 0; j < d; j++) out[perm[j]] = w[j];
    params.set(name, mi.tensor(out, t.shape, { dtype: 'float64', backend: cpu }));
  }
  return new MambaLM(m.config, params);
}

const hook = `blocks.${cfg.num_hidden_layers - 1}.hook_resid_post`;
const locationBatch = induction.generate(opts, new mi.Rng('location'), 24);
const patchBatch = induction.generate(opts, new mi.Rng('patch'), 16);
const corrupt = corruptAnswers(induction, opts, patchBatch, ANSWER_SOURCE.induction, new mi.Rng('corrupt'));
const set = evalSet(patchBatch, corrupt);
const mask = positionMask('scored', patchBatch);
const lastResid = (m: MambaLM, b: TaskBatch) =>
  mi.tidy(() => {
    const act = cacheActivations(m, idsOf(m, b), [hook]).get(hook)!;
    const out = Float64Array.from(act.dataSync());
    act.dispose();
    return out;
  });
const patchOf = (m: MambaLM) => lastResidualPatch(m, idsOf(m, patchBatch), idsOf(m, corrupt), set, mask);
const maxAbsDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let x = 0;
  for (let i = 0; i < a.length; i++) x = Math.max(x, Math.abs(a[i] - b[i]));
  return x;
};

test("lastResidualPatch + patchGained: the engine's patchCleanMany (gained and gap), per example", async () => {
  const p = await patchOf(A);
  const cleanIds = idsOf(A, patchBatch),
    corruptIds = idsOf(A, corrupt);
  const cleanLd = (await outcome(A, cleanIds, set, [])).logitDiff!;
  const corruptLd = (await outcome(A, corruptIds, set, [])).logitDiff!;
  const act = cacheActivations(A, cleanIds, [hook]).get(hook)!;
  const sets = [[0, 3, 5], [1], [], Array.from({ length: d }, (_, j) => j), [15, 2, 7, 9]];
  const engine = await patchCleanMany(
    A,
    corruptIds,
    set,
    cleanLd,
    corruptLd,
    sets.map((channels) => ({ hook, channels })),
    mask,
    act,
  );
  assert.ok(maxAbsDiff(p.gap, engine[0].gap) < 1e-10, 'gap');
  for (const [k, channels] of sets.entries())
    assert.ok(maxAbsDiff(patchGained(p, channels), engine[k].gained) < 1e-10, `channels ${channels}`);
  // every channel restores the whole gap, none restores nothing
  assert.ok(maxAbsDiff(patchGained(p, sets[3]), p.gap) < 1e-10);
  assert.ok(patchGained(p, []).every((v) => v === 0));
  // a mask that covers no scored cell patches nothing there
  const other = await lastResidualPatch(A, cleanIds, corruptIds, set, new Uint8Array(mask.length));
  assert.ok(patchGained(other, sets[3]).every((v) => v === 0));
  assert.throws(() => patchGained(p, [d]), /channel 16 is outside/);
  act.dispose();
});

test('locatedPatchTest: the point numbers of controlTest (its own implementation of the same test), intervals around them', () => {
  const rng = new mi.Rng('lpt');
  const E = 12;
  const gap = Float64Array.from({ length: E }, () => 1 + rng.uniform());
  const row = (shift: number) => Float64Array.from({ length: E }, (_, e) => gap[e] * (0.2 + shift) + 0.3 * rng.normal());
  const circuit = row(0.4);
  const controls = Array.from({ length: 30 }, (_, j) => row(j % 3 === 0 ? 0.45 : 0));
  const ours = locatedPatchTest(circuit, controls, gap, new mi.Rng('b1'), { bootstrap: 400 });
  const theirs = controlTest(circuit, controls, new mi.Rng('b2'), { bootstrap: 10, ratioTo: gap });
  for (const k of ['estimate', 'control', 'difference', 'p', 'pFloor'] as const)
    assert.ok(Math.abs(ours[k] - theirs[k]) < 1e-12, `${k}: ${ours[k]} vs ${theirs[k]}`);
  assert.equal(ours.controlInterval, theirs.controlInterval);
  assert.equal(ours.controlQuantiles, theirs.controlQuantiles);
  // the controls at or above the circuit, counted by hand
  const ge = controls.filter((c) => c.reduce((s, v) => s + v, 0) / gap.reduce((s, v) => s + v, 0) >= ours.estimate).length;
  assert.is(ours.p, (1 + ge) / 31);
  assert.ok(ge > 0 && ge < 30, `a rank inside the controls (${ge})`);
  assert.ok(ours.interval[0] <= ours.estimate && ours.estimate <= ours.interval[1]);
  assert.ok(ours.differenceInterval[0] <= ours.difference && ours.difference <= ours.differenceInterval[1]);
  assert.is(ours.percentiles.length, 99);
  assert.throws(() => locatedPatchTest(circuit, [], gap, rng, { bootstrap: 10 }), /no controls/);
  assert.throws(() => locatedPatchTest(circuit, [circuit.slice(1)], gap, rng, { bootstrap: 10 }), /control 0 has 11/);
});

test('planted: B is A in a permuted, sign-flipped residual basis; the located circuit is the permuted one and every number is A’s own', async () => {
  const rng = new mi.Rng('planted');
  const perm = rng.permutation(d);
  const sign = Array.from({ length: d }, (_, j) => (j % 3 === 1 ? -1 : 1));
  const B = permutedModel(A, perm, sign);
  const corr = activationCorrelations(lastResid(A, locationBatch), lastResid(B, locationBatch), d, d);
  const pa = await patchOf(A),
    pb = await patchOf(B);
  // A's circuit: its 4 channels that restore most alone; controls matched by variance stratum (2
  // strata of 8, so the 40 draws are mostly distinct sets)
  const single = Array.from({ length: d }, (_, j) => patchGained(pa, [j]).reduce((s, v) => s + v, 0));
  const circuit = Array.from({ length: d }, (_, j) => j)
    .sort((x, y) => single[y] - single[x])
    .slice(0, 4);
  const act = mi.tensor(lastResid(A, locationBatch), [...locationBatch.shape, d], { dtype: 'float64', backend: cpu });
  const profile = await activationProfile(act, positionMask('scored', locationBatch));
  const controls = Array.from({ length: 40 }, (_, k) => matchedChannels(circuit, profile.variance, 2, rng.fork(`c${k}`)));
  const inB = patchLocated(corr, circuit, controls, pb, new mi.Rng('boot'), { bootstrap: 200 });
  assert.equal(
    inB.located,
    circuit.map((j) => perm[j]),
  );
  // A's own test: the circuit and its controls patched in A itself (identity location)
  const identity = Array.from({ length: d }, (_, i) => Float64Array.from({ length: d }, (_, j) => (i === j ? 1 : 0)));
  const own = patchLocated(identity, circuit, controls, pa, new mi.Rng('boot'), { bootstrap: 200 });
  assert.equal(own.located, circuit);
  for (const k of ['estimate', 'control', 'difference', 'p'] as const)
    assert.ok(Math.abs(inB.test[k] - own.test[k]) < 1e-9, `${k}: in B ${inB.test[k]}, in A ${own.test[k]}`);
  assert.ok(maxAbsDiff(inB.test.interval, own.test.interval) < 1e-9, 'same bootstrap draws, same interval');
  assert.ok(inB.test.estimate > inB.test.control && inB.test.p < 0.1, `the planted circuit beats its controls (p ${inB.test.p})`);
  // 40 draws of 2 distinct sets are 2 controls: the p-value cannot go below 1/3 however it ranks
  const twoSets = patchLocated(
    corr,
    circuit,
    Array.from({ length: 40 }, (_, k) => controls[k % 2]),
    pb,
    new mi.Rng('boot'),
    {
      bootstrap: 20,
    },
  );
  assert.is(twoSets.test.distinctControls, 2);
  assert.ok(twoSets.test.p >= 1 / 3 && twoSets.test.pFloor === 1 / 3, `p ${twoSets.test.p}`);
  act.dispose();
});

test('null: a "circuit" drawn like its controls, located in an unrelated model, does not beat them (rank p about uniform)', async () => {
  const C = modelOf('located-C');
  const corr = activationCorrelations(lastResid(A, locationBatch), lastResid(C, locationBatch), d, d);
  const pc = await patchOf(C);
  const act = mi.tensor(lastResid(A, locationBatch), [...locationBatch.shape, d], { dtype: 'float64', backend: cpu });
  const variance = (await activationProfile(act, positionMask('scored', locationBatch))).variance;
  const rng = new mi.Rng('null');
  const base = [0, 5, 10, 15];
  const ps: number[] = [];
  for (let r = 0; r < 60; r++) {
    // circuit and controls from the same draw (excluding the same base set): exchangeable
    const draw = () => matchedChannels(base, variance, 4, rng);
    const circuit = draw();
    const controls = Array.from({ length: 19 }, draw);
    ps.push(patchLocated(corr, circuit, controls, pc, rng, { bootstrap: 20 }).test.p);
  }
  const meanP = ps.reduce((s, v) => s + v, 0) / ps.length;
  const small = ps.filter((p) => p <= 0.1).length;
  // uniform on {1/20, ..., 1} has mean 0.525 and 2/20 of its mass at or below 0.1 (6 of 60 expected)
  assert.ok(meanP > 0.4 && meanP < 0.7, `mean rank p ${meanP}`);
  assert.ok(small <= 13, `${small} of 60 at p <= 0.1`);
  act.dispose();
});

test('locateOneToOne: distinct partners maximising summed |correlation|, the order of the channels given; errors', () => {
  const corr = [Float64Array.of(0.9, 0.8, 0.1), Float64Array.of(-0.95, 0.2, 0.3), Float64Array.of(0.1, 0.1, -0.2)];
  // greedily both rows would take column 0; the optimum gives row 0 column 1 (0.8 + 0.95 > 0.9 + 0.3)
  assert.equal(locateOneToOne(corr, [0, 1]), [1, 0]);
  assert.equal(locateOneToOne(corr, [1, 0]), [0, 1]);
  assert.equal(locateOneToOne(corr, [2, 1, 0]), [2, 0, 1]);
  assert.throws(() => locateOneToOne(corr, [3]), /channel 3 is not a row/);
  assert.throws(() => locateOneToOne([Float64Array.of(1)], [0, 0]), /distinct partners among 1/);
});

test.run();
