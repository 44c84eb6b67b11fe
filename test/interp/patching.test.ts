// interp/sites.ts, interp/patching.ts, interp/attribution.ts and interp/perturb.ts on a tiny random
// Mamba (float64 on the CPU, so identities hold to ~1e-12) with induction batches.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as mi from '../../engine/index.ts';
import { makeConfig } from '../../mamba/config.ts';
import { initMamba, type MambaLM } from '../../mamba/model.ts';
import { induction, IGNORE_INDEX } from '../../interp/tasks/index.ts';
import {
  ANSWER_SOURCE,
  ablate,
  ablationEdit,
  cacheActivations,
  corruptAnswers,
  evalSet,
  fractionRestored,
  hookDim,
  idsOf,
  outcome,
  patchClean,
  positionMask,
  randomControl,
  rolledBatch,
  siteHooks,
  otherPositionsMask,
  outcomeMany,
  patchCleanMany,
  isLastResidual,
  type Site,
} from '../../interp/patching.ts';
import { attributionPatching, gradTimesActivation, jaccard, topByMagnitude } from '../../interp/attribution.ts';
import { noiseCurve } from '../../interp/perturb.ts';

const opts = { vocabSize: 10, seqLen: 12 };
function tinyModel(): MambaLM {
  const cfg = makeConfig({
    vocab_size: 10,
    hidden_size: 8,
    num_hidden_layers: 2,
    state_size: 4,
    expand: 2,
    conv_kernel: 3,
    initializer_range: 0.5,
    pad_token_id: null,
    bos_token_id: null,
    eos_token_id: null,
  });
  return initMamba(cfg, new mi.Rng('patching-test'), { dtype: 'float64', backend: mi.cpuBackend() });
}
const model = tinyModel();
const batch = induction.generate(opts, new mi.Rng('batch'), 6);
const maxAbsDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
};
const logitsWith = (hooks: Parameters<MambaLM['runWithHooks']>[1]) =>
  mi.tidy(() =>
    mi
      .noGrad(() => model.runWithHooks(idsOf(model, batch), hooks))
      .dataSync()
      .slice(),
  );

test('zero ablation of every channel of a hook equals zeroing it by hand', () => {
  const hook = 'blocks.0.hook_resid_post';
  const dim = hookDim(model, hook);
  const site: Site = { hook, channels: Array.from({ length: dim }, (_, i) => i) };
  const ours = logitsWith(siteHooks(model, site, positionMask('all', batch), batch.shape, { kind: 'zero' }));
  const byHand = logitsWith([{ name: hook, fn: (x) => mi.zerosLike(x) }]);
  assert.ok(maxAbsDiff(ours, byHand) < 1e-12);
  const untouched = logitsWith([]);
  assert.ok(maxAbsDiff(ours, untouched) > 1e-3, 'zeroing the residual must change the logits');
});

test('a full orthonormal basis edits like all channels; a partial edit leaves other coordinates alone', () => {
  const hook = 'blocks.1.mixer.hook_gated';
  const dim = hookDim(model, hook);
  const basis = randomControl({ hook, channels: [], directions: Array.from({ length: dim }, () => []) }, dim, new mi.Rng('b')).directions!;
  const mask = positionMask('scored', batch);
  const a = logitsWith(siteHooks(model, { hook, channels: [], directions: basis }, mask, batch.shape, { kind: 'zero' }));
  const b = logitsWith(siteHooks(model, { hook, channels: Array.from({ length: dim }, (_, i) => i) }, mask, batch.shape, { kind: 'zero' }));
  assert.ok(maxAbsDiff(a, b) < 1e-10);
  // channel 3 zeroed at scored cells only, checked against the cached activation
  let seen: Float64Array | null = null;
  mi.tidy(() =>
    mi.noGrad(() =>
      model.runWithHooks(idsOf(model, batch), [
        ...siteHooks(model, { hook, channels: [3] }, mask, batch.shape, { kind: 'zero' }),
        {
          name: hook,
          fn: (x) => {
            seen = x.dataSync().slice() as Float64Array;
          },
        },
      ]),
    ),
  );
  const clean = mi.tidy(() => mi.noGrad(() => model.runWithCache(idsOf(model, batch), [hook]).cache.get(hook)!.dataSync().slice()));
  for (let c = 0; c < mask.length; c++)
    for (let j = 0; j < dim; j++) {
      const want = mask[c] && j === 3 ? 0 : clean[c * dim + j];
      assert.ok(Math.abs(seen![c * dim + j] - want) < 1e-12, `cell ${c} channel ${j}`);
    }
});

test('patching every coordinate of the clean run into the corrupted run restores 100%', async () => {
  const corrupt = corruptAnswers(induction, opts, batch, ANSWER_SOURCE.induction, new mi.Rng('c'));
  // answers: the clean one, alternatives: the corrupted one (logit difference clean - corrupted)
  const set = evalSet(batch, corrupt);
  const cleanIds = idsOf(model, batch),
    corruptIds = idsOf(model, corrupt);
  const cleanLd = (await outcome(model, cleanIds, set, [])).logitDiff!;
  const corruptLd = (await outcome(model, corruptIds, set, [])).logitDiff!;
  // any hook that cuts the whole computation (the residual stream) carries everything
  for (const hook of ['blocks.0.hook_resid_post', 'blocks.1.hook_resid_pre', 'hook_norm_f']) {
    const cache = cacheActivations(model, cleanIds, [hook]);
    const dim = hookDim(model, hook);
    const all: Site = { hook, channels: Array.from({ length: dim }, (_, i) => i) };
    const eff = await patchClean(model, corruptIds, set, cleanLd, corruptLd, all, positionMask('all', batch), cache.get(hook)!);
    assert.ok(Math.abs(fractionRestored(eff.gained, eff.gap) - 1) < 1e-9, `${hook}: ${fractionRestored(eff.gained, eff.gap)}`);
    const none = await patchClean(
      model,
      corruptIds,
      set,
      cleanLd,
      corruptLd,
      { hook, channels: [] },
      positionMask('all', batch),
      cache.get(hook)!,
    );
    assert.ok(Math.abs(fractionRestored(none.gained, none.gap)) < 1e-9);
    cache.get(hook)!.dispose();
  }
  cleanIds.dispose();
  corruptIds.dispose();
});

test('corruptAnswers changes every scored answer and nothing before its source', () => {
  const corrupt = corruptAnswers(induction, opts, batch, ANSWER_SOURCE.induction, new mi.Rng('c2'));
  const [B, T] = batch.shape;
  for (let b = 0; b < B; b++) {
    const scored = [...Array(T).keys()].filter((t) => batch.targets[b * T + t] !== IGNORE_INDEX);
    assert.ok(scored.length > 0);
    const src = Math.min(...scored.map((t) => batch.labels.sourcePos[b * T + t]));
    for (let t = 0; t < src; t++) assert.is(corrupt.inputs[b * T + t], batch.inputs[b * T + t]);
    for (const t of scored) {
      assert.is.not(corrupt.targets[b * T + t], batch.targets[b * T + t]);
      assert.is(
        corrupt.inputs[b * T + batch.labels.sourcePos[b * T + t]],
        corrupt.targets[b * T + t],
        'the corrupted answer sits at the source',
      );
      assert.ok(corrupt.targets[b * T + t] >= 2, 'a content token');
    }
  }
});

test('a state patch at position p changes nothing before p and propagates after it', () => {
  const hook = 'blocks.0.mixer.hook_h';
  const dim = hookDim(model, hook);
  const p = 5,
    [B, T] = batch.shape,
    V = model.config.vocab_size;
  const mask = positionMask([p], batch);
  const out = logitsWith(
    siteHooks(model, { hook, channels: Array.from({ length: dim }, (_, i) => i) }, mask, batch.shape, { kind: 'zero' }),
  );
  const base = logitsWith([]);
  for (let b = 0; b < B; b++) {
    const at = (t: number) => [b * T * V + t * V, b * T * V + (t + 1) * V] as const;
    for (let t = 0; t < p; t++) assert.ok(maxAbsDiff(out.subarray(...at(t)), base.subarray(...at(t))) < 1e-12);
    assert.ok(maxAbsDiff(out.subarray(...at(p)), base.subarray(...at(p))) > 1e-6, 'the patched position changes');
    assert.ok(maxAbsDiff(out.subarray(...at(T - 1)), base.subarray(...at(T - 1))) > 1e-9, 'the patch propagates');
  }
});

test('random controls have the stated size: distinct channels in range, orthonormal subspaces', () => {
  const rng = new mi.Rng('ctl');
  const ch = randomControl({ hook: 'blocks.0.hook_resid_post', channels: [0, 1, 2] }, 8, rng);
  assert.is(ch.channels.length, 3);
  assert.is(new Set(ch.channels).size, 3);
  assert.ok(
    ch.channels.every((c) => c >= 3 && c < 8),
    'avoids the circuit when it can',
  );
  const sub = randomControl({ hook: 'blocks.0.mixer.hook_h', channels: [], directions: [[], [], [], []] }, 64, rng);
  assert.is(sub.directions!.length, 4);
  for (const [i, u] of sub.directions!.entries()) {
    assert.is(u.length, 64);
    for (const [j, v] of sub.directions!.entries()) {
      const dot = u.reduce((s, x, k) => s + x * v[k], 0);
      assert.ok(Math.abs(dot - (i === j ? 1 : 0)) < 1e-10);
    }
  }
});

test('ablations: zeroing nothing has no effect; resample from itself has no effect; mean is the masked mean', async () => {
  const set = evalSet(batch);
  const ids = idsOf(model, batch);
  const base = await outcome(model, ids, set, []);
  const hook = 'blocks.1.hook_resid_pre';
  const mask = positionMask('scored', batch);
  const cache = cacheActivations(model, ids, [hook]);
  const act = cache.get(hook)!;
  const none = await ablate(model, ids, set, base, { hook, channels: [] }, mask, { kind: 'zero' });
  assert.ok(maxAbsDiff(none.lossIncrease, new Float64Array(6)) < 1e-12);
  const self = rolledBatch(act, 0);
  const same = await ablate(model, ids, set, base, { hook, channels: [0, 1, 2, 3] }, mask, await ablationEdit('resample', act, mask, self));
  assert.ok(maxAbsDiff(same.lossIncrease, new Float64Array(6)) < 1e-12);
  const meanEdit = await ablationEdit('mean', act, mask);
  assert.is(meanEdit.kind, 'constant');
  const data = act.dataSync(),
    dim = hookDim(model, hook);
  let s = 0,
    n = 0;
  mask.forEach((m, c) => {
    if (m) {
      s += data[c * dim + 2];
      n++;
    }
  });
  assert.ok(Math.abs((meanEdit as { value: Float32Array }).value[2] - s / n) < 1e-6);
  self.dispose();
  act.dispose();
  ids.dispose();
});

test('gradient x activation matches a finite difference of the loss along a * e_c', async () => {
  const hook = 'blocks.0.mixer.hook_conv_act';
  const mask = positionMask('scored', batch);
  const [attr] = await gradTimesActivation(model, batch, [{ hook, mask }]);
  const dim = hookDim(model, hook);
  assert.is(attr.length, dim);
  const ids = idsOf(model, batch);
  const act = cacheActivations(model, ids, [hook]).get(hook)!;
  const targets = mi.tensor(batch.targets, batch.shape, { dtype: 'int32' });
  const cells = mask.reduce((a, b) => a + b, 0);
  for (const c of [0, 5]) {
    const lossAt = (eps: number) =>
      mi.tidy(() => {
        const offset = mi.mul(act, eps);
        const hooks = siteHooks(model, { hook, channels: [c] }, mask, batch.shape, { kind: 'offset', value: offset });
        return mi.noGrad(() => mi.crossEntropy(model.runWithHooks(ids, hooks), targets, { ignoreIndex: IGNORE_INDEX })).dataSync()[0];
      });
    const h = 1e-5;
    const fd = (lossAt(h) - lossAt(-h)) / (2 * h);
    assert.ok(Math.abs(fd - attr[c] * cells) < 1e-6 * Math.max(1, Math.abs(fd)), `channel ${c}: fd ${fd} vs ${attr[c] * cells}`);
  }
  // the state hook at chosen positions: one value per E*N coordinate
  const [state] = await gradTimesActivation(model, batch, [
    { hook: 'blocks.1.mixer.hook_h', mask: positionMask({ label: 'sourcePos' }, batch) },
  ]);
  assert.is(state.length, hookDim(model, 'blocks.1.mixer.hook_h'));
  assert.ok(state.some((v) => v !== 0));
  assert.equal(topByMagnitude([0.1, -5, 3, 0], 2), [1, 2]);
  assert.is(jaccard([1, 2, 3], [2, 3, 4]), 0.5);
  act.dispose();
  ids.dispose();
  targets.dispose();
});

test('attribution in chunks of sequences equals the unchunked attribution (up to summation order)', async () => {
  const T = batch.shape[1];
  const targets = [
    { hook: 'blocks.1.hook_resid_post', mask: positionMask('scored', batch) },
    { hook: 'blocks.0.mixer.hook_h', mask: positionMask({ label: 'sourcePos' }, batch) },
    { hook: 'blocks.1.mixer.hook_h', mask: positionMask({ label: 'sourcePos', offset: 1 }, batch) },
  ];
  const corrupt = corruptAnswers(induction, opts, batch, ANSWER_SOURCE.induction, new mi.Rng('chunks'));
  const ids = idsOf(model, batch);
  const cache = cacheActivations(
    model,
    ids,
    targets.map((t) => t.hook),
  );
  const clean = targets.map((t) => cache.get(t.hook)!);
  const whole = await gradTimesActivation(model, batch, targets, 6 * T);
  const wholeAp = await attributionPatching(model, corrupt, batch.targets, targets, clean, 6 * T);
  // 6 sequences: chunks of 4 + 2 (uneven), and of 1
  for (const tokens of [4 * T, T]) {
    const parts = await gradTimesActivation(model, batch, targets, tokens);
    const partsAp = await attributionPatching(model, corrupt, batch.targets, targets, clean, tokens);
    for (const k of targets.keys()) {
      assert.ok(whole[k].some((v) => v !== 0) && wholeAp[k].some((v) => v !== 0), targets[k].hook);
      assert.ok(maxAbsDiff(parts[k], whole[k]) < 1e-12, `${targets[k].hook} grad x act, ${tokens / T} a chunk`);
      assert.ok(maxAbsDiff(partsAp[k], wholeAp[k]) < 1e-12, `${targets[k].hook} attribution patching, ${tokens / T} a chunk`);
    }
  }
  for (const t of cache.values()) t.dispose();
  ids.dispose();
});

test('noise: scale 0 has no effect, larger scales have more; other positions are disjoint and as many', async () => {
  const set = evalSet(batch);
  const ids = idsOf(model, batch);
  const clean = await outcome(model, ids, set, [], { logProbs: true });
  const hook = 'blocks.0.hook_resid_post';
  const mask = positionMask('scored', batch);
  const act = cacheActivations(model, ids, [hook]).get(hook)!;
  const curve = await noiseCurve(model, set, clean, { hook, channels: [0, 1, 2, 3] }, mask, act, [0, 1, 8], 2, new mi.Rng('n'));
  assert.equal([...curve[0].kl], new Array(6).fill(0));
  assert.equal([...curve[0].accuracyDrop], new Array(6).fill(0));
  const meanKl = (i: number) => curve[i].kl.reduce((a, b) => a + b, 0);
  assert.ok(meanKl(1) > 0 && meanKl(2) > meanKl(1), `KL ${meanKl(1)} then ${meanKl(2)}`);
  const other = otherPositionsMask(mask, batch, new mi.Rng('o'));
  assert.is(
    other.reduce((a, b) => a + b, 0),
    mask.reduce((a, b) => a + b, 0),
  );
  other.forEach((v, i) => assert.ok(!(v && mask[i])));
  act.dispose();
  ids.dispose();
});

test('rolledBatch(act, shift) gives example b the values of example b + shift; resample ablation with shift 1 has an effect', async () => {
  const B = 6,
    T = 3,
    d = 2;
  const act = mi.tensor(
    Float64Array.from({ length: B * T * d }, (_, i) => i),
    [B, T, d],
    { dtype: 'float64' },
  );
  for (const shift of [1, 2, 5]) {
    const rolled = rolledBatch(act, shift);
    const data = rolled.dataSync();
    for (let b = 0; b < B; b++)
      for (let j = 0; j < T * d; j++) assert.is(data[b * T * d + j], ((b + shift) % B) * T * d + j, `shift ${shift}, example ${b}`);
    rolled.dispose();
  }
  assert.is(rolledBatch(act).dataSync()[0], T * d, 'the default shift is 1');
  act.dispose();
  // on the model: resampling every channel of the residual from the next sequence changes the loss, resampling from itself does not
  const set = evalSet(batch);
  const ids = idsOf(model, batch);
  const base = await outcome(model, ids, set, []);
  const hook = 'blocks.1.hook_resid_pre';
  const all: Site = { hook, channels: Array.from({ length: hookDim(model, hook) }, (_, i) => i) };
  const mask = positionMask('scored', batch);
  const clean = cacheActivations(model, ids, [hook]).get(hook)!;
  const next = rolledBatch(clean, 1);
  const eff = await ablate(model, ids, set, base, all, mask, await ablationEdit('resample', clean, mask, next));
  // the same edit by hand, from the clean activations: example (b + 1) mod B's values at the scored cells
  const cleanData = clean.dataSync();
  const [Bm, Tm] = batch.shape;
  const byHand = await outcome(model, ids, set, [
    {
      name: hook,
      fn: (x) => {
        const xd = x.dataSync().slice();
        const dim = hookDim(model, hook);
        mask.forEach((m, c) => {
          const from = (((Math.floor(c / Tm) + 1) % Bm) * Tm + (c % Tm)) * dim;
          if (m) for (let j = 0; j < dim; j++) xd[c * dim + j] = cleanData[from + j];
        });
        return mi.tensor(xd, x.shape, { dtype: x.dtype, backend: x.backend });
      },
    },
  ]);
  assert.ok(
    maxAbsDiff(
      eff.lossIncrease,
      byHand.loss.map((l, i) => l - base.loss[i]),
    ) < 1e-10,
  );
  assert.ok(
    eff.lossIncrease.some((v) => Math.abs(v) > 1e-3),
    'resampling from another sequence changes the loss',
  );
  next.dispose();
  clean.dispose();
  ids.dispose();
});

test('outcomeMany: sites stacked along the batch, or at the last residual through the tail alone, give each site exactly its single-site outcome', async () => {
  const corrupt = corruptAnswers(induction, opts, batch, ANSWER_SOURCE.induction, new mi.Rng('c3'));
  const set = evalSet(batch, corrupt);
  const ids = idsOf(model, batch),
    corruptIds = idsOf(model, corrupt);
  const rng = new mi.Rng('many');
  for (const [hook, positions] of [
    ['blocks.1.hook_resid_pre', 'scored'],
    ['blocks.0.mixer.hook_h', { label: 'sourcePos' }],
    // the last layer's residual output: no forward per site (isLastResidual)
    ['blocks.1.hook_resid_post', 'scored'],
  ] as const) {
    assert.is(isLastResidual(model, hook), hook === 'blocks.1.hook_resid_post');
    const dim = hookDim(model, hook);
    const mask = positionMask(positions, batch);
    const act = cacheActivations(model, ids, [hook]).get(hook)!;
    // 7 distinct channel sites and one subspace, in chunks of 3 (tokens for 3 batches a forward)
    const sites: Site[] = Array.from({ length: 7 }, (_, j) => randomControl({ hook, channels: [0, 1, 2] }, dim, rng.fork(`s${j}`)));
    sites.splice(4, 0, randomControl({ hook, channels: [], directions: [[], []] }, dim, rng.fork('sub')));
    const tokens = 3 * batch.shape[0] * batch.shape[1];
    const edits = [{ kind: 'zero' as const }, await ablationEdit('mean', act, mask), { kind: 'activations' as const, value: act }];
    for (const edit of edits) {
      const many = await outcomeMany(model, corruptIds, set, sites, mask, edit, tokens);
      for (const [j, s] of sites.entries()) {
        const one = await outcome(model, corruptIds, set, siteHooks(model, s, mask, batch.shape, edit));
        assert.ok(maxAbsDiff(many[j].loss, one.loss) < 1e-10, `${hook} ${edit.kind} site ${j}: loss`);
        assert.ok(maxAbsDiff(many[j].logitDiff!, one.logitDiff!) < 1e-10, `${hook} ${edit.kind} site ${j}: logit diff`);
      }
    }
    const [eff] = await patchCleanMany(model, corruptIds, set, new Float64Array(6), new Float64Array(6), sites.slice(0, 1), mask, act);
    const single = await patchClean(model, corruptIds, set, new Float64Array(6), new Float64Array(6), sites[0], mask, act);
    assert.ok(maxAbsDiff(eff.gained, single.gained) < 1e-10);
    act.dispose();
  }
  ids.dispose();
  corruptIds.dispose();
});

test.after(() => model.dispose());
test.run();
