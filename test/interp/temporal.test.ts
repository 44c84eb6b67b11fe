// interp/temporal: influence maps against the fixtures' golden Jacobian norms and finite
// differences; hidden attention (the influence kernel) against the scan output, the autograd
// Jacobian of the layer's scan, the plain-loop sum, and on WebGPU against the CPU.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as mi from '../../engine/index.ts';
import { cpuBackend, Rng } from '../../engine/index.ts';
import { expectedParameterShapes } from '../../mamba/config.ts';
import { initMamba, MambaLM } from '../../mamba/model.ts';
import { loadPretrained } from '../../mamba/pretrained.ts';
import { taskModelConfig } from '../../interp/train-task.ts';
import { getTask } from '../../interp/tasks/index.ts';
import { openSafetensors } from '../../mamba/safetensors.ts';
import {
  acausalMass,
  answerSources,
  applyHiddenAttention,
  blockNorms,
  decayCurve,
  hiddenAttention,
  hiddenAttentionFrom,
  hiddenAttentionMap,
  longRangeFraction,
  outputInfluence,
  residualInfluence,
  sketchError,
  sketchErrorBound,
  sourcePeak,
  stateInfluence,
  type TimeMap,
} from '../../interp/temporal.ts';
import { goldenIds, goldenPath, modelDir } from '../helpers/hf-fixture.ts';
import { getWebGpu } from '../helpers/webgpu.ts';

async function goldenJacobian(name: 'tiny' | 'small'): Promise<number[][]> {
  const f = await openSafetensors(goldenPath(name));
  try {
    const j = await f.read('f64.jacobian_fro_out_t_in_s');
    const T = j.shape[0];
    return Array.from({ length: T }, (_, t) => Array.from(j.data.subarray(t * T, (t + 1) * T), Number));
  } finally {
    await f.close();
  }
}

test('residual influence: final-hidden Jacobian norms match the tiny fixture (f32 and f64 models)', async () => {
  const ids = (await goldenIds('tiny'))[0];
  const want = await goldenJacobian('tiny');
  let scale = 0;
  for (const r of want) for (const v of r) scale = Math.max(scale, v);
  for (const dtype of ['float32', 'float64'] as const) {
    const model = await loadPretrained(modelDir('tiny'), { backend: cpuBackend(), dtype });
    try {
      const before = mi.liveTensorCount();
      const got = await residualInfluence(model, ids, { chunk: 100 });
      assert.is(mi.liveTensorCount(), before, 'no tensors left behind');
      const tol = (dtype === 'float32' ? 1e-4 : 1e-5) * scale; // f64 goldens are float32-accurate (README)
      want.forEach((row, t) =>
        row.forEach((v, s) => assert.ok(Math.abs(got.final[t][s] - v) <= tol, `${dtype} [${t},${s}]: ${got.final[t][s]} vs ${v}`)),
      );
      assert.is(got.layers.length, 2);
      for (const m of [...got.layers, got.final]) assert.is(acausalMass(m), 0, 'zero above the diagonal');
      // the first layer's residual includes the embedding itself: identity on the diagonal, norm sqrt(d)
      assert.ok(got.layers[0][3][3] > 0.5 * Math.sqrt(16));
    } finally {
      model.dispose();
    }
  }
});

test('state influence: exact norms match central finite differences; causal; the sketch estimates them', async () => {
  const model = await loadPretrained(modelDir('tiny'), { backend: cpuBackend(), dtype: 'float64' });
  try {
    const ids = (await goldenIds('tiny'))[1].slice(0, 6);
    const T = ids.length,
      d = 16,
      layer = 1,
      s = 2;
    const map = await stateInfluence(model, ids, layer, { chunk: 512 });
    assert.is(acausalMass(map), 0);
    // finite differences of h (all t) along each basis direction of the mixer input at position s
    const normName = `blocks.${layer}.hook_norm`,
      hName = `blocks.${layer}.mixer.hook_h`;
    const sq = new Float64Array(T);
    const eps = 1e-5;
    const statesWith = (i: number, sign: number) =>
      mi.noGrad(() =>
        mi.tidy(() => {
          const r = model.run([ids], {
            cache: [hName],
            hooks: [
              {
                name: normName,
                fn: (x) => {
                  const delta = new Float64Array(x.size);
                  delta[s * d + i] = sign * eps;
                  return mi.add(x, mi.tensor(delta, x.shape, { dtype: 'float64' }));
                },
              },
            ],
          });
          return r.cache.get(hName)!.dataSync() as Float64Array;
        }),
      );
    for (let i = 0; i < d; i++) {
      const hp = statesWith(i, 1),
        hm = statesWith(i, -1);
      const per = hp.length / T;
      for (let t = 0; t < T; t++) for (let j = 0; j < per; j++) sq[t] += ((hp[t * per + j] - hm[t * per + j]) / (2 * eps)) ** 2;
    }
    for (let t = 0; t < T; t++) {
      const fd = Math.sqrt(sq[t]);
      assert.ok(Math.abs(map[t][s] - fd) <= 1e-6 * Math.max(1, fd), `t=${t}: jacobian ${map[t][s]} vs finite differences ${fd}`);
      if (t < s) assert.is(map[t][s], 0);
    }
    assert.ok(map[s][s] > 0 && map[T - 1][s] > 0);
    const sk = await stateInfluence(model, ids, layer, { sketch: 256, rng: new Rng('sketch') });
    assert.is(acausalMass(sk), 0);
    const ratio = sk[T - 1][s] / map[T - 1][s];
    assert.ok(ratio > 0.75 && ratio < 1.25, `sketch/exact ${ratio}`);
  } finally {
    model.dispose();
  }
});

test('hidden attention reproduces the scan output exactly (float64, every layer)', async () => {
  const model = await loadPretrained(modelDir('small'), { backend: cpuBackend(), dtype: 'float64' });
  try {
    const ids = (await goldenIds('small'))[0].slice(0, 20);
    for (let layer = 0; layer < model.config.num_hidden_layers; layer++) {
      const h = await hiddenAttention(model, ids, layer);
      const y = applyHiddenAttention(h.alpha, h.u, h.D, h.T, h.E);
      let err = 0,
        scale = 0;
      y.forEach((v, i) => {
        err = Math.max(err, Math.abs(v - h.ssmOut[i]));
        scale = Math.max(scale, Math.abs(h.ssmOut[i]));
      });
      assert.ok(err <= 1e-10 * scale, `layer ${layer}: max error ${err} (scale ${scale})`);
      assert.is(acausalMass(h.meanAbs), 0);
      for (let t = 0; t < h.T; t++) assert.ok(h.meanAbs[t][t] > 0);
    }
  } finally {
    model.dispose();
  }
});

test('hidden attention is the autograd Jacobian of the layer scan and the plain-loop sum (tiny fixture, float64, both layers)', async () => {
  const model = await loadPretrained(modelDir('tiny'), { backend: cpuBackend(), dtype: 'float64' });
  try {
    const ids = (await goldenIds('tiny'))[0];
    const T = ids.length,
      E = model.config.intermediate_size,
      N = model.config.state_size;
    for (let layer = 0; layer < model.config.num_hidden_layers; layer++) {
      const h = await hiddenAttention(model, ids, layer);
      const p = `blocks.${layer}.mixer.`;
      const names = ['hook_delta', 'hook_B', 'hook_C', 'hook_conv_act'].map((n) => p + n);
      const { J, loop } = mi.tidy(() => {
        const { cache } = mi.noGrad(() => model.runWithCache([ids], names));
        const [delta, B, C, u] = names.map((n) => cache.get(n)!);
        const A = mi.noGrad(() => model.layer(layer).A());
        // d y_t[e] / d u_s[e'] of the scan alone (no D, no gate): [T, E, T, E]
        const jac = mi.jacobian((x: mi.Tensor) => mi.selectiveScan({ x, delta, A, B, C }).y, u).dataSync();
        const plain = hiddenAttentionFrom(delta.dataSync(), A.dataSync(), B.dataSync(), C.dataSync(), T, E, N);
        return { J: Float64Array.from(jac), loop: plain };
      });
      let scale = 0;
      for (const v of h.alpha) scale = Math.max(scale, Math.abs(v));
      for (let t = 0; t < T; t++)
        for (let e = 0; e < E; e++)
          for (let s = 0; s < T; s++) {
            const a = h.alpha[(e * T + t) * T + s];
            const j = J[((t * E + e) * T + s) * E + e];
            assert.ok(Math.abs(a - j) <= 1e-12 * scale, `layer ${layer} alpha[${e},${t},${s}] ${a} vs jacobian ${j}`);
            assert.ok(Math.abs(a - loop[(e * T + t) * T + s]) <= 1e-12 * scale, `layer ${layer} alpha vs plain loop`);
          }
      // across channels the scan's Jacobian is zero
      let across = 0;
      for (let t = 0; t < T; t++) for (let s = 0; s < T; s++) across = Math.max(across, Math.abs(J[((t * E + 0) * T + s) * E + 1]));
      assert.is(across, 0);
      // the map alone, without alpha: the same mean |alpha|
      const map = await hiddenAttentionMap(model, ids, layer);
      map.forEach((row, t) => row.forEach((v, s) => assert.ok(Math.abs(v - h.meanAbs[t][s]) <= 1e-14 * scale)));
      const l2 = await hiddenAttentionMap(model, ids, layer, 'l2');
      let sq = 0;
      for (let e = 0; e < E; e++) sq += h.alpha[(e * T + T - 1) * T + 2] ** 2;
      assert.ok(Math.abs(l2[T - 1][2] - Math.sqrt(sq)) <= 1e-12 * scale);
    }
    const err = await hiddenAttentionMap(model, ids, 5).then(
      () => null,
      (e: Error) => e.message,
    );
    assert.match(err ?? '', 'layer 5 is outside [0, 2)');
  } finally {
    model.dispose();
  }
});

test('WebGPU: hidden attention of the tiny fixture matches the CPU (float32, within 1e-5 of its largest entry)', async () => {
  const gpu = await getWebGpu();
  if (!gpu) return;
  const ids = (await goldenIds('tiny'))[0];
  const [onGpu, onCpu] = [
    await loadPretrained(modelDir('tiny'), { backend: gpu }),
    await loadPretrained(modelDir('tiny'), { backend: cpuBackend() }),
  ];
  try {
    for (let layer = 0; layer < onCpu.config.num_hidden_layers; layer++) {
      const [g, c] = [await hiddenAttention(onGpu, ids, layer), await hiddenAttention(onCpu, ids, layer)];
      let scale = 0;
      for (const v of c.alpha) scale = Math.max(scale, Math.abs(v));
      c.alpha.forEach((v, i) => assert.ok(Math.abs(v - g.alpha[i]) <= 1e-5 * scale, `layer ${layer} alpha[${i}] ${g.alpha[i]} vs ${v}`));
      c.meanAbs.forEach((row, t) => row.forEach((v, s) => assert.ok(Math.abs(v - g.meanAbs[t][s]) <= 1e-5 * scale)));
    }
  } finally {
    onGpu.dispose();
    onCpu.dispose();
  }
});

test('hiddenAttentionFrom: one channel, one state, known closed form', () => {
  // alpha[t,s] = C_t exp(A sum_{k=s+1..t} delta_k) delta_s B_s with constant delta: C B delta exp(A delta (t-s))
  const T = 5,
    delta = new Float64Array(T).fill(0.5),
    B = new Float64Array(T).fill(2),
    C = new Float64Array(T).fill(3);
  const alpha = hiddenAttentionFrom(delta, [-0.4], B, C, T, 1, 1);
  for (let t = 0; t < T; t++)
    for (let s = 0; s < T; s++) {
      const want = s <= t ? 3 * 2 * 0.5 * Math.exp(-0.4 * 0.5 * (t - s)) : 0;
      assert.ok(Math.abs(alpha[t * T + s] - want) < 1e-14, `[${t},${s}]`);
    }
});

test('decay curve, long-range fraction and block norms on known maps', () => {
  const map = [
    [1, 0, 0],
    [2, 3, 0],
    [4, 5, 6],
  ];
  assert.equal(decayCurve(map), [(1 + 3 + 6) / 3, (2 + 5) / 2, 4]);
  assert.is(longRangeFraction(map, 2), 4 / 21);
  assert.is(longRangeFraction(map, 1), 11 / 21);
  assert.is(
    acausalMass([
      [1, 0.5],
      [0, 1],
    ]),
    0.5,
  );
  // blockNorms: 1 group, T = 2, outInner 1, inInner 2
  const J = [3, 4, 0, 0, 1, 0, 0, 2];
  assert.equal(blockNorms(J, 1, 2, 1, 2), [
    [
      [5, 0],
      [1, 2],
    ],
  ]);
  assert.throws(() => blockNorms(J, 1, 3, 1, 2), /expected 1 x 3/);
});

/**
 * A one-layer Mamba set by hand to solve induction's lookup (vocabulary 8: BOS 0, TRIGGER 1,
 * content 2..7; hidden 8, E 16, N 4, conv kernel 4). Embedding: dim 0 = 1 for every token, dim 1 =
 * the trigger flag, dim c = content token c. Channels 0..5 carry the content (u = SiLU of the
 * current token's content dimension); channel 6 is the write flag: its conv reads the previous
 * position's trigger flag with a bias, so u_6 = SiLU(+-8) is ~8 right after a trigger and ~0
 * elsewhere, and B = u_6: the state is written only at sources. Channel 7 is the read flag (the
 * current token is the trigger), C = u_7. delta = 0.5, A = -0.02 (memory of ~100 tokens), D = 0,
 * the gate SiLU(4), out_proj copies the content channels back to the content dimensions.
 */
function plantedInduction(): MambaLM {
  const config = taskModelConfig(8, { hiddenSize: 8, layers: 1, stateSize: 4, expand: 2, convKernel: 4 } as never);
  const E = config.intermediate_size,
    N = config.state_size,
    K = config.conv_kernel,
    R = config.time_step_rank,
    d = 8;
  assert.is(E, 16);
  const params = new Map<string, mi.Tensor>();
  const set = (name: string, fill: (a: Float64Array) => void) => {
    const shape = expectedParameterShapes(config).get(name)!;
    const a = new Float64Array(shape.reduce((x, y) => x * y, 1));
    fill(a);
    params.set(name, mi.tensor(a, shape, { dtype: 'float64', backend: cpuBackend() }));
  };
  const p = 'backbone.layers.0.';
  set('backbone.embeddings.weight', (a) => {
    for (let v = 0; v < 8; v++) {
      a[v * d] = 1;
      if (v === 1) a[v * d + 1] = 1;
      if (v >= 2) a[v * d + v] = 1;
    }
  });
  set(`${p}norm.weight`, (a) => a.fill(1));
  set('backbone.norm_f.weight', (a) => a.fill(1));
  set(`${p}mixer.in_proj.weight`, (a) => {
    for (let e = 0; e < 6; e++) a[e * d + 2 + e] = 1; // x_e = content c = e + 2
    a[6 * d + 1] = 1; // x_6 = trigger flag
    a[7 * d + 1] = 1; // x_7 = trigger flag
    for (let e = 0; e < E; e++) a[(E + e) * d] = 2; // z = 2 * normed constant = 4
  });
  set(`${p}mixer.conv1d.weight`, (a) => {
    for (let e = 0; e < 6; e++) a[e * K + K - 1] = 1; // the current token
    a[6 * K + K - 2] = 8; // the previous token
    a[7 * K + K - 1] = 8; // the current token
  });
  set(`${p}mixer.conv1d.bias`, (a) => {
    a[6] = -8;
    a[7] = -8;
  });
  set(`${p}mixer.x_proj.weight`, (a) => {
    for (let n = 0; n < N; n++) {
      a[(R + n) * E + 6] = 1; // B = u_6
      a[(R + N + n) * E + 7] = 1; // C = u_7
    }
  });
  set(`${p}mixer.dt_proj.weight`, () => {});
  set(`${p}mixer.dt_proj.bias`, (a) => a.fill(0.5 + Math.log(-Math.expm1(-0.5)))); // softplus^-1(0.5)
  set(`${p}mixer.A_log`, (a) => a.fill(Math.log(0.02)));
  set(`${p}mixer.D`, () => {});
  set(`${p}mixer.out_proj.weight`, (a) => {
    for (let e = 0; e < 6; e++) a[(2 + e) * E + e] = 0.01;
  });
  assert.equal([...params.keys()].sort(), [...expectedParameterShapes(config).keys()].sort());
  return new MambaLM(config, params);
}

/** Induction sequences (two trigger occurrences, one answer each) and their final-hidden influence maps under `model`, exact. */
async function inductionMaps(model: MambaLM, n: number) {
  const batch = getTask('induction').generate({ vocabSize: 8, seqLen: 20, occurrences: 2 } as never, new Rng('planted-data'), n);
  const T = batch.shape[1];
  const maps: TimeMap[] = [];
  for (let b = 0; b < n; b++)
    maps.push((await residualInfluence(model, Array.from(batch.inputs.subarray(b * T, (b + 1) * T)), { finalOnly: true })).final);
  return { batch, maps };
}

test('planted induction model (set by hand): the influence on the answer peaks at its source against matched positions; not in a random-init model', async () => {
  const model = plantedInduction();
  const random = initMamba(model.config, new Rng('init'), { dtype: 'float64', backend: cpuBackend() });
  try {
    // the planted model does the task: its output at each answer carries the source's content
    const { batch, maps } = await inductionMaps(model, 16);
    const pairs = answerSources(batch);
    assert.is(pairs.length, 16, 'one answer per sequence');
    for (const q of pairs) {
      const T = batch.shape[1];
      assert.is(batch.inputs[q.seq * T + q.source - 1], 1, 'the source follows the previous trigger');
      assert.is(batch.inputs[q.seq * T + q.answer], 1, 'the answer is at the trigger');
    }
    const out = mi.noGrad(() =>
      mi.tidy(() =>
        model
          .runWithCache([Array.from(batch.inputs.subarray(0, 20))], ['hook_norm_f'])
          .cache.get('hook_norm_f')!
          .dataSync(),
      ),
    );
    const q0 = pairs[0];
    const copied = batch.inputs[q0.source];
    const row = Array.from(out.subarray(q0.answer * 8, q0.answer * 8 + 8));
    for (let c = 2; c < 8; c++) if (c !== copied) assert.ok(row[copied] > row[c] + 0.1, `answer row ${row} carries token ${copied}`);
    const peak = sourcePeak(maps, pairs, new Rng('perm'), 999, (seq, pos) => Math.min(2, batch.inputs[seq * 20 + pos]));
    assert.is(peak.skipped + peak.pairs.length, 16);
    assert.ok(peak.pairs.length >= 12, `${peak.skipped} pairs without a control`);
    assert.ok(peak.value > 2, `log ratio ${peak.value}`);
    assert.ok(peak.percentile > 0.9, `percentile ${peak.percentile}`);
    assert.is(peak.p, 1 / 1000, 'no null draw reaches it');
    // every source is its answer row's largest entry before the answer's own position and the previous trigger's
    for (const q of pairs) {
      const m = maps[q.seq][q.answer];
      const T = batch.shape[1];
      for (let s = 0; s < q.answer; s++)
        if (s !== q.source && batch.inputs[q.seq * T + s] !== 1) assert.ok(m[q.source] > 10 * m[s], `pair ${JSON.stringify(q)}: s=${s}`);
    }
    // the control: the same shape freshly initialised, which has no lookup (the source is one position among its controls)
    const c = await inductionMaps(random, 16);
    const none = sourcePeak(c.maps, answerSources(c.batch), new Rng('perm'), 999, (seq, pos) =>
      Math.min(2, c.batch.inputs[seq * 20 + pos]),
    );
    assert.ok(Math.abs(none.value) < 0.2, `control log ratio ${none.value}`);
    assert.ok(none.p > 0.05 && none.percentile > 0.35 && none.percentile < 0.65, `control p ${none.p}, percentile ${none.percentile}`);
  } finally {
    model.dispose();
    random.dispose();
  }
});

test('sourcePeak on a hand-made map: controls from the other answer rows at the same distance, value, percentile and null by hand', () => {
  // two sequences of length 5, answers at t = 4: sequence 0 with source 1 (distance 3), sequence 1
  // with source 2 (distance 2); each pair's one control is the other answer row at its distance
  const map = (): TimeMap => Array.from({ length: 5 }, (_, t) => Array.from({ length: 5 }, (_, s) => (s <= t ? 1 : 0)));
  const maps = [map(), map()];
  maps[0][4][1] = Math.exp(3); // pair 0's source
  maps[1][4][1] = Math.exp(1); // its control
  maps[1][4][2] = Math.exp(2); // pair 1's source
  maps[0][4][2] = Math.exp(2.5); // its control
  const pairs = [
    { seq: 0, answer: 4, source: 1 },
    { seq: 1, answer: 4, source: 2 },
  ];
  const r = sourcePeak(maps, pairs, new Rng('x'), 4000);
  assert.equal(
    r.pairs.map((q) => [q.distance, q.controls]),
    [
      [3, 1],
      [2, 1],
    ],
  );
  assert.ok(Math.abs(r.pairs[0].logRatio - 2) < 1e-12 && Math.abs(r.pairs[1].logRatio + 0.5) < 1e-12);
  assert.ok(Math.abs(r.value - 0.75) < 1e-12);
  assert.is(r.percentile, 0.5);
  // null: each pair's log ratio flips sign with probability 1/2; P(mean >= 0.75) = P(first keeps its sign) = 1/2
  assert.ok(Math.abs(r.ge / r.nPerm - 0.5) < 0.03, `null share ${r.ge / r.nPerm}`);
  // one sequence, one answer: no other answer row, no control
  assert.throws(() => sourcePeak([maps[0]], [pairs[0]], new Rng('x'), 10), /no \(answer, source\) pair with a matched control/);
});

test('answerSources: induction, selective copying and MQAR sources from their labels', () => {
  const rng = new Rng('tasks');
  const ind = getTask('induction').generate({ vocabSize: 8, seqLen: 16, occurrences: 3 } as never, rng, 4);
  const T = 16;
  const pi = answerSources(ind);
  assert.is(pi.length, 8);
  for (const q of pi) {
    assert.is(ind.inputs[q.seq * T + q.answer], 1);
    assert.is(ind.inputs[q.seq * T + q.source - 1], 1);
    assert.is(ind.targets[q.seq * T + q.answer], ind.inputs[q.seq * T + q.source], 'the answer is the source token');
  }
  for (const [name, opts] of [
    ['selective-copying', { vocabSize: 8, numTokens: 2, seqLen: 16 }],
    ['mqar', { vocabSize: 9, numPairs: 2, seqLen: 16 }],
  ] as const) {
    const b = getTask(name).generate(opts as never, rng, 3);
    const ps = answerSources(b);
    assert.ok(ps.length >= 3, name);
    for (const q of ps)
      assert.is(b.targets[q.seq * 16 + q.answer], b.inputs[q.seq * 16 + q.source], `${name}: the answer is the source token`);
  }
});

test('sketched and exact influence maps agree within the stated error sqrt(2/k) of the squared norm, unbiased, shrinking as 1/sqrt(k)', async () => {
  const model = await loadPretrained(modelDir('tiny'), { backend: cpuBackend(), dtype: 'float64' });
  try {
    const ids = (await goldenIds('tiny'))[0];
    const exact = (await residualInfluence(model, ids, { finalOnly: true })).final;
    // the exact rows alone (what step 8's source test reads) are the full map's rows
    const rows = await outputInfluence(model, ids, [3, 9, 11]);
    exact.forEach((row, t) =>
      row.forEach((v, s) => {
        const want = [3, 9, 11].includes(t) ? v : 0;
        assert.ok(Math.abs(rows[t][s] - want) <= 1e-12 * Math.max(1, v), `row ${t}, s ${s}: ${rows[t][s]} vs ${want}`);
      }),
    );
    const rms: number[] = [];
    for (const k of [4, 8]) {
      const errs = [];
      for (let i = 0; i < 6; i++) {
        const sk = (await residualInfluence(model, ids, { finalOnly: true, sketch: k, rng: new Rng(`sketch ${k} ${i}`) })).final;
        errs.push(sketchError(exact, sk));
      }
      const meanRms = Math.sqrt(errs.reduce((a, e) => a + e.rmsSquare ** 2, 0) / errs.length);
      assert.ok(meanRms <= sketchErrorBound(k), `k=${k}: rms ${meanRms} above the bound ${sketchErrorBound(k)}`);
      assert.ok(meanRms >= 0.2 * sketchErrorBound(k), `k=${k}: rms ${meanRms} implausibly small`);
      const ratio = errs.reduce((a, e) => a + e.meanRatio, 0) / errs.length;
      assert.ok(Math.abs(ratio - 1) < 0.1, `k=${k}: mean ||SJ||^2 / ||J||^2 = ${ratio}`);
      rms.push(meanRms);
    }
    assert.ok(rms[0] / rms[1] > 1.1 && rms[0] / rms[1] < 2, `rms k=4 / k=8: ${rms[0] / rms[1]} (sqrt 2 expected)`);
    // the state influence's sketch (k = 16 as step 8) against the exact map
    const ids6 = ids.slice(0, 6);
    const st = await stateInfluence(model, ids6, 1, { chunk: 512 });
    const ss = await stateInfluence(model, ids6, 1, { sketch: 16, rng: new Rng('state sketch') });
    const e = sketchError(st, ss);
    assert.ok(e.rmsSquare <= sketchErrorBound(16), `state sketch rms ${e.rmsSquare}`);
  } finally {
    model.dispose();
  }
});

test.run();
