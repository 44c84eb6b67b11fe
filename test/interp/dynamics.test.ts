// interp/dynamics: discretisation, time constants, delta by token, state PCA and the layer-step
// Jacobian's spectrum on the tiny fixture model.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { cpuBackend, Rng } from '../../engine/index.ts';
import * as mi from '../../engine/index.ts';
import { loadPretrained } from '../../mamba/pretrained.ts';
import {
  abarValues,
  deltaByToken,
  discretisation,
  layerStepJacobian,
  meanDeltaPerPosition,
  splitByToken,
  spreadChannels,
  stateTrajectories,
  timeConstants,
} from '../../interp/dynamics.ts';
import { goldenIds, modelDir } from '../helpers/hf-fixture.ts';

const load = (dtype: 'float32' | 'float64' = 'float64') => loadPretrained(modelDir('tiny'), { backend: cpuBackend(), dtype });

test('discretisation: Abar in (0, 1), time constants positive and equal to -1/(mean delta A)', async () => {
  const model = await load();
  try {
    const ids = await goldenIds('tiny');
    const d = await discretisation(model, ids, 1);
    assert.is(d.delta.length, 2 * 12 * 32);
    const abar = abarValues(d);
    for (const v of abar) assert.ok(v > 0 && v < 1, `Abar ${v}`);
    const tau = timeConstants(d);
    for (const v of tau) assert.ok(v > 0 && Number.isFinite(v), `tau ${v}`);
    let md = 0;
    for (let i = 0; i < 24; i++) md += d.delta[i * 32 + 5] / 24;
    assert.ok(Math.abs(tau[5 * 16 + 3] - -1 / (md * d.A[5 * 16 + 3])) < 1e-9 * tau[5 * 16 + 3]);
    const per = meanDeltaPerPosition(d);
    const byTok = deltaByToken(d, ids);
    assert.is(
      byTok.reduce((s, x) => s + x.count, 0),
      24,
    );
    const tok = ids[0][4];
    const [at, other] = splitByToken(per, ids, tok);
    assert.ok(at.length >= 1 && at.length + other.length === 22);
    const all = ids.flatMap((row, b) => row.flatMap((t, p) => (t === tok ? [per[b * 12 + p]] : [])));
    assert.ok(Math.abs(byTok.find((x) => x.token === tok)!.meanDelta - all.reduce((a, b) => a + b, 0) / all.length) < 1e-12);
  } finally {
    model.dispose();
  }
});

test('state trajectories: principal coordinates per sequence and position', async () => {
  const model = await load('float32');
  try {
    const ids = await goldenIds('tiny');
    const tr = await stateTrajectories(model, ids, 0, 2, new Rng('pca'));
    assert.is(tr.coords.length, 2);
    assert.is(tr.coords[0].length, 12);
    assert.is(tr.coords[0][0].length, 2);
    assert.ok(tr.pca.explained[0] > tr.pca.explained[1] && tr.pca.explained[0] <= 1);
  } finally {
    model.dispose();
  }
});

test("layer-step Jacobian: d h'/d h = diag(Abar); spectrum = Abar plus zeros; no leak", async () => {
  const model = await load();
  try {
    const ids = (await goldenIds('tiny'))[0];
    const channels = spreadChannels(32, 4);
    assert.equal(channels, [0, 8, 16, 24]);
    const before = mi.liveTensorCount();
    const r = await layerStepJacobian(model, ids, 1, 6, channels);
    assert.is(mi.liveTensorCount(), before);
    const K = 4,
      N = 16,
      S = r.size;
    assert.is(S, 4 * (K + N));
    // the SSM-to-SSM block is diagonal with entries Abar
    channels.forEach((_, i) => {
      for (let n = 0; n < N; n++)
        for (let i2 = 0; i2 < channels.length; i2++)
          for (let n2 = 0; n2 < N; n2++) {
            const v = r.jacobian[(i * (K + N) + K + n) * S + i2 * (K + N) + K + n2];
            const want = i === i2 && n === n2 ? r.abar[i * N + n] : 0;
            assert.ok(Math.abs(v - want) < 1e-12, `dh/dh [${i},${n}][${i2},${n2}] = ${v}, want ${want}`);
          }
    });
    // the SSM state does not feed the conv state
    let convFromH = 0;
    for (let a = 0; a < channels.length; a++)
      for (let k = 0; k < K; k++)
        for (let b = 0; b < channels.length; b++)
          for (let n = 0; n < N; n++) {
            convFromH = Math.max(convFromH, Math.abs(r.jacobian[(a * (K + N) + k) * S + b * (K + N) + K + n]));
          }
    assert.is(convFromH, 0);
    // but h' depends on the conv state through u, delta and B (the input dependence)
    let hFromConv = 0;
    for (let n = 0; n < N; n++) for (let k = 1; k < K; k++) hFromConv = Math.max(hFromConv, Math.abs(r.jacobian[(K + n) * S + k]));
    assert.ok(hFromConv > 1e-6);
    const eig = r.eigenvalues;
    assert.is(eig.length, S);
    for (const e of eig) assert.ok(Number.isFinite(e.re) && Number.isFinite(e.im));
    const nonzero = eig
      .filter((e) => Math.hypot(e.re, e.im) > 0.05)
      .map((e) => e.re)
      .sort();
    const abar = [...r.abar].filter((v) => v > 0.05).sort();
    assert.is(nonzero.length, abar.length);
    nonzero.forEach((v, i) => assert.ok(Math.abs(v - abar[i]) < 1e-6, `eigenvalue ${v} vs Abar ${abar[i]}`));
    for (const e of eig)
      if (Math.hypot(e.re, e.im) <= 0.05) assert.ok(Math.hypot(e.re, e.im) < 0.02 || r.abar.some((a) => Math.abs(a - e.re) < 1e-6));
  } finally {
    model.dispose();
  }
});

test.run();
