// interp/sae/train.ts: SAEs trained on planted features (./planted.ts) recover them, with unit-norm
// decoder rows and a falling loss; training is deterministic, matches on WebGPU, resamples dead
// latents; the AuxK loss reaches only dead latents; bad options are errors naming them.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as mi from '../../../engine/index.ts';
import { getWebGpu } from '../../helpers/webgpu.ts';
import { auxKLoss, matchDirections, saeMetrics, trainSae, type TrainSaeOptions } from '../../../interp/sae/index.ts';
import { base, d, data, decoderRowNorms, F, planted, trainedSae } from './planted.ts';

const COSINE_BOUND = 0.95; // mean over planted features of the best decoder-row cosine
const FVU_BOUND = 0.2;

for (const kind of ['topk', 'relu'] as const) {
  test(`${kind} SAE recovers the planted features (mean best cosine >= ${COSINE_BOUND}, FVU < ${FVU_BOUND})`, async () => {
    const sae = await trainedSae(kind);
    const match = await matchDirections(sae, data.features);
    const meanCos = match.reduce((s, m) => s + m.cosine, 0) / F;
    const m = await saeMetrics(sae, data.xs);
    console.log(
      `  ${kind}: mean best cosine ${meanCos.toFixed(4)}, min ${Math.min(...match.map((x) => x.cosine)).toFixed(4)}, ` +
        `FVU ${m.fvu.toFixed(4)}, L0 ${m.l0.toFixed(2)}, dead (eval) ${m.deadFraction.toFixed(3)}, dead (training window) ${sae.deadFraction.toFixed(3)}`,
    );
    assert.ok(meanCos >= COSINE_BOUND, `mean best cosine ${meanCos}`);
    assert.ok(m.fvu < FVU_BOUND, `FVU ${m.fvu}`);
    // sparse codes: TopK exactly k (or fewer where a kept pre-activation is <= 0); ReLU well below d
    if (kind === 'topk') assert.ok(m.l0 <= 4 && m.l0 > 3.9, `L0 ${m.l0}`);
    else assert.ok(m.l0 < 12, `L0 ${m.l0}`);
    assert.ok(m.deadFraction >= 0 && m.deadFraction <= 0.5, `dead fraction ${m.deadFraction}`);
    assert.ok(sae.deadFraction >= 0 && sae.deadFraction <= 0.5);
    // the planted features should mostly map to distinct latents
    assert.ok(new Set(match.map((x) => x.latent)).size >= F - 2);
  });

  test(`${kind} SAE: decoder rows unit norm, loss curve recorded and falling`, async () => {
    const sae = await trainedSae(kind);
    for (const norm of await decoderRowNorms(sae)) assert.ok(Math.abs(norm - 1) < 1e-5, `decoder row norm ${norm}`);
    assert.is(sae.history.length, base.steps);
    // reconstruction error falls (the total loss of relu also carries the L1 term, which warms up)
    const meanMse = (a: number, b: number) => sae.history.slice(a, b).reduce((s, e) => s + e.mse, 0) / (b - a);
    assert.ok(meanMse(base.steps - 50, base.steps) < 0.5 * meanMse(0, 50), 'reconstruction error fell by half');
    assert.ok(sae.history.every((e) => Number.isFinite(e.loss) && e.mse >= 0 && e.penalty >= 0));
  });
}

test(`relu SAE trained by the fused op (fused: true, on the CPU) recovers the planted features as well (mean best cosine >= ${COSINE_BOUND}, FVU < ${FVU_BOUND})`, async () => {
  const sae = await trainSae(data.xs, { ...base, kind: 'relu', l1: 1, fused: true });
  const match = await matchDirections(sae, data.features);
  const meanCos = match.reduce((s, m) => s + m.cosine, 0) / F;
  const m = await saeMetrics(sae, data.xs);
  console.log(`  relu (fused): mean best cosine ${meanCos.toFixed(4)}, FVU ${m.fvu.toFixed(4)}, L0 ${m.l0.toFixed(2)}`);
  assert.ok(meanCos >= COSINE_BOUND, `mean best cosine ${meanCos}`);
  assert.ok(m.fvu < FVU_BOUND, `FVU ${m.fvu}`);
  assert.ok(m.l0 < 12, `L0 ${m.l0}`);
  assert.ok(new Set(match.map((x) => x.latent)).size >= F - 2);
  sae.dispose();
});

test('same seed gives bit-identical parameters and losses; another seed differs', async () => {
  const small = planted('determinism', 8, 12, 512);
  const opts: TrainSaeOptions = { kind: 'topk', d: 8, latents: 16, k: 2, steps: 60, batchSize: 32, lr: 0.01, seed: 7 };
  const live = mi.liveTensorCount();
  const [a, b, c] = [await trainSae(small.xs, opts), await trainSae(small.xs, opts), await trainSae(small.xs, { ...opts, seed: 8 })];
  const wa = Array.from(await a.params.W_dec.data()),
    wb = Array.from(await b.params.W_dec.data());
  assert.equal(wa, wb);
  assert.equal(Array.from(await a.params.b_enc.data()), Array.from(await b.params.b_enc.data()));
  assert.equal(
    a.history.map((e) => e.loss),
    b.history.map((e) => e.loss),
  );
  assert.not.equal(wa, Array.from(await c.params.W_dec.data()));
  // a tensor [n, d] trains exactly as the same rows given as a Float32Array
  const fromTensor = await trainSae(mi.tensor(small.xs, [512, 8]), { ...opts, d: undefined });
  assert.equal(Array.from(await fromTensor.params.W_dec.data()), wa);
  for (const s of [a, b, c, fromTensor]) s.dispose();
  assert.is(mi.liveTensorCount(), live + 1, 'training frees everything but the parameters (the input tensor remains)');
});

test('the fused op and the composed ops train the same SAE (both kinds, with AuxK / resampling; CPU)', async () => {
  const small = planted('fused', 8, 12, 256);
  for (const kind of ['topk', 'relu'] as const) {
    const opts: TrainSaeOptions = {
      kind,
      d: 8,
      latents: 16,
      k: 2,
      l1: 10,
      steps: 30,
      batchSize: 32,
      lr: 0.02,
      seed: 1,
      deadWindow: 64,
      resampleEvery: 5,
      resampleUntil: 30,
      backend: mi.cpuBackend(),
    };
    const [fused, composed] = [await trainSae(small.xs, { ...opts, fused: true }), await trainSae(small.xs, { ...opts, fused: false })];
    if (kind === 'topk')
      assert.ok(
        fused.history.some((e) => e.deadFraction > 0),
        'the run had dead latents (so AuxK is compared too)',
      );
    composed.history.forEach((e, i) => {
      const f = fused.history[i];
      for (const key of ['loss', 'mse', 'penalty', 'l0'] as const)
        assert.ok(
          Math.abs(e[key] - f[key]) < 1e-4 * (1 + Math.abs(e[key])),
          `${kind} step ${i} ${key}: fused ${f[key]}, composed ${e[key]}`,
        );
    });
    const [wf, wc] = [await fused.params.W_dec.data(), await composed.params.W_dec.data()];
    wc.forEach((v, i) => assert.ok(Math.abs(v - wf[i]) < 1e-4, `${kind} W_dec[${i}] ${wf[i]} vs ${v}`));
    fused.dispose();
    composed.dispose();
  }
});

test('WebGPU: training (with AuxK / resampling) matches the CPU run', async () => {
  const gpu = await getWebGpu();
  if (!gpu) return;
  const small = planted('webgpu', 8, 12, 256);
  for (const kind of ['topk', 'relu'] as const) {
    const opts: TrainSaeOptions = {
      kind,
      d: 8,
      latents: 16,
      k: 2,
      l1: 10,
      steps: 30,
      batchSize: 32,
      lr: 0.02,
      seed: 1,
      deadWindow: 64,
      resampleEvery: 5,
      resampleUntil: 30,
    };
    const cpu = await trainSae(small.xs, { ...opts, backend: mi.cpuBackend() });
    let resampled = 0;
    const onGpu = await trainSae(small.xs, {
      ...opts,
      backend: gpu,
      onProgress: (p) => {
        resampled += p.resampled;
      },
    });
    assert.is(onGpu.params.W_dec.backend, gpu);
    if (kind === 'relu') assert.ok(resampled > 0, 'the run resampled (so that path is compared too)');
    else
      assert.ok(
        onGpu.history.some((e) => e.deadFraction > 0),
        'the run had dead latents (so AuxK is compared too)',
      );
    cpu.history.forEach((e, i) => assert.ok(Math.abs(e.loss - onGpu.history[i].loss) < 1e-4 * (1 + e.loss), `${kind} step ${i} loss`));
    const [wc, wg] = [await cpu.params.W_dec.data(), await onGpu.params.W_dec.data()];
    wc.forEach((v, i) => assert.ok(Math.abs(v - wg[i]) < 1e-4, `${kind} W_dec[${i}] ${v} vs ${wg[i]}`));
    const [mc, mg] = [await saeMetrics(cpu, small.xs), await saeMetrics(onGpu, small.xs)];
    assert.ok(Math.abs(mc.fvu - mg.fvu) < 1e-4);
    cpu.dispose();
    onGpu.dispose();
  }
});

test('relu: resampling dead latents leaves fewer dead latents than no resampling', async () => {
  // a large L1 coefficient kills many latents; resampling gives them new directions
  const small = planted('resample', 8, 12, 1024, 2 / 12);
  const opts: TrainSaeOptions = {
    kind: 'relu',
    d: 8,
    latents: 32,
    l1: 5,
    steps: 300,
    batchSize: 64,
    lr: 0.02,
    seed: 3,
    deadWindow: 512,
    resampleEvery: 50,
  };
  let resampled = 0;
  const on = await trainSae(small.xs, {
    ...opts,
    onProgress: (p) => {
      resampled += p.resampled;
    },
  });
  const off = await trainSae(small.xs, { ...opts, resampleEvery: 0 });
  const [mOn, mOff] = [await saeMetrics(on, small.xs), await saeMetrics(off, small.xs)];
  console.log(
    `  ${resampled} latent resamplings in all; dead with resampling ${mOn.deadFraction.toFixed(3)}, without ${mOff.deadFraction.toFixed(3)}`,
  );
  assert.ok(resampled > 0, 'some latents were resampled');
  assert.ok(mOff.deadFraction > 0, 'the setting does kill latents');
  assert.ok(mOn.deadFraction < mOff.deadFraction);
  const w = await on.params.W_dec.data();
  for (let l = 0; l < 32; l++) assert.ok(Math.abs(Math.hypot(...w.subarray(l * 8, l * 8 + 8)) - 1) < 1e-5, 'resampled rows are unit norm');
  for (const s of [on, off]) s.dispose();
});

test('topk: AuxK revives dead latents (default auxCoef), and with auxCoef 0 they stay dead', async () => {
  // 128 latents for 64 planted features at k = 2 and a high learning rate: about half the latents
  // die early. AuxK gives dead latents the gradient of reconstructing the live ones' residual, so
  // they come back; without it their encoder gets no gradient. (With AuxK weighted auxCoef, not
  // auxCoef * d, against the per-token MSE it was d = 16 times too weak: 0.54 dead vs 0.49 without.)
  const small = planted('auxk-revive', 16, 64, 4096, 4 / 64);
  const opts: TrainSaeOptions = { kind: 'topk', d: 16, latents: 128, k: 2, steps: 400, batchSize: 64, lr: 0.03, seed: 1, deadWindow: 1024 };
  const on = await trainSae(small.xs, opts);
  const off = await trainSae(small.xs, { ...opts, auxCoef: 0 });
  const [mOn, mOff] = [await saeMetrics(on, small.xs), await saeMetrics(off, small.xs)];
  console.log(`  dead latents on the data: with AuxK ${mOn.deadFraction.toFixed(3)}, auxCoef 0 ${mOff.deadFraction.toFixed(3)}`);
  assert.ok(mOff.deadFraction >= 0.4, `the setting kills latents: ${mOff.deadFraction} dead without AuxK`);
  assert.ok(mOn.deadFraction <= mOff.deadFraction - 0.1, `AuxK revives at least 13 of 128: ${mOn.deadFraction} vs ${mOff.deadFraction}`);
  assert.ok(off.history.every((e) => e.penalty === 0) && on.history.some((e) => e.penalty > 0), 'the AuxK term is on in one run only');
  for (const s of [on, off]) s.dispose();
});

test('AuxK: its gradient reaches only dead latents', () => {
  const rng = new mi.Rng('auxk');
  const pre = mi.randn([5, 6], rng, { requiresGrad: true });
  const xb = mi.randn([5, 3], rng);
  const recon = mi.randn([5, 3], rng);
  const wDec = mi.randn([6, 3], rng, { requiresGrad: true });
  const dead = mi.tensor([0, 1, 0, 0, 1, 1], [6]);
  // make every dead latent's pre-activation positive so ReLU passes it
  const prePos = mi.add(mi.abs(pre), 0.1);
  const loss = auxKLoss(prePos, recon, xb, dead, 2, wDec);
  const grads = mi.backwardFrom(loss);
  const gPre = grads.get(pre)!.dataSync(),
    gW = grads.get(wDec)!.dataSync();
  for (let l = 0; l < 6; l++) {
    const preCol = Array.from({ length: 5 }, (_, r) => gPre[r * 6 + l]);
    const wRow = Array.from(gW.subarray(l * 3, l * 3 + 3));
    const live = dead.dataSync()[l] === 0;
    if (live) {
      assert.ok(preCol.every((g) => g === 0) && wRow.every((g) => g === 0), `live latent ${l} got a gradient`);
    } else {
      assert.ok(
        preCol.some((g) => g !== 0),
        `dead latent ${l} got no encoder gradient`,
      );
    }
  }
});

test('training errors name the problem', async () => {
  const messageOf = (p: Promise<unknown>) =>
    p.then(
      () => '',
      (e: Error) => e.message,
    );
  assert.match(await messageOf(trainSae(data.xs, { kind: 'relu', latents: 8, steps: 1 })), /options\.d/);
  assert.match(await messageOf(trainSae(data.xs, { kind: 'topk', d, latents: 8, steps: 1 })), /topk needs an integer k/);
});

test.run();
