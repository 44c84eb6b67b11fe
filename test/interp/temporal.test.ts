// interp/temporal: influence maps against the fixtures' golden Jacobian norms and finite
// differences; hidden attention (the influence kernel) against the scan output, the autograd
// Jacobian of the layer's scan, the plain-loop sum, and on WebGPU against the CPU.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as mi from '../../engine/index.ts';
import { cpuBackend, Rng } from '../../engine/index.ts';
import { loadPretrained } from '../../mamba/pretrained.ts';
import { openSafetensors } from '../../mamba/safetensors.ts';
import {
  acausalMass,
  applyHiddenAttention,
  blockNorms,
  decayCurve,
  hiddenAttention,
  hiddenAttentionFrom,
  hiddenAttentionMap,
  longRangeFraction,
  residualInfluence,
  stateInfluence,
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

test.run();
