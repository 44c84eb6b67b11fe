// interp/controls.ts: the matched-control samplers against planted variance profiles (checked by
// ranks computed here, and failed by the uniform sampler), the rank p-value by hand, and the
// hierarchical bootstrap against the spread it must reproduce at each level.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as mi from '../../engine/index.ts';
import {
  activationProfile,
  controlTest,
  covarianceDirections,
  coordinateVariance,
  matchedChannels,
  matchedControls,
  rankPValue,
} from '../../interp/controls.ts';
import { randomControl } from '../../interp/sites.ts';

const DIM = 200,
  STRATA = 8;
/** Planted variances spanning six decades, in a random order over the coordinates. */
function plantedVariance(rng: mi.Rng): Float64Array {
  const order = rng.permutation(DIM);
  return Float64Array.from(order, (r) => 10 ** (-4 + (6 * r) / (DIM - 1)));
}

/**
 * The profile check, from ranks computed here: sorted by variance, the r-th coordinate of the
 * control must sit within one stratum's share of quantile levels (1/STRATA) of the circuit's r-th.
 */
function profileMatches(variance: Float64Array, circuit: number[], control: number[]): boolean {
  const level = new Map(
    Array.from({ length: DIM }, (_, i) => i)
      .sort((a, b) => variance[a] - variance[b])
      .map((c, rank) => [c, rank / DIM]),
  );
  const lc = circuit.map((c) => level.get(c)!).sort((a, b) => a - b);
  const lk = control.map((c) => level.get(c)!).sort((a, b) => a - b);
  return lc.every((q, r) => Math.abs(q - lk[r]) < 1 / STRATA);
}

test('matched channels follow the circuit variance profile; the uniform sampler does not', () => {
  const rng = new mi.Rng('profile');
  const variance = plantedVariance(rng.fork('v'));
  const byVar = Array.from({ length: DIM }, (_, i) => i).sort((a, b) => variance[b] - variance[a]);
  // a circuit of mostly loud coordinates with a few from the middle, as attribution picks
  const circuit = [...byVar.slice(0, 60).filter((_, i) => i % 6 === 0), ...byVar.slice(90, 110).filter((_, i) => i % 10 === 0)];
  assert.is(circuit.length, 12);
  let uniformFails = 0;
  for (let j = 0; j < 100; j++) {
    const ctl = matchedChannels(circuit, variance, STRATA, rng.fork(`m${j}`));
    assert.is(ctl.length, circuit.length);
    assert.is(new Set(ctl).size, ctl.length, 'distinct coordinates');
    assert.ok(
      ctl.every((c) => !circuit.includes(c)),
      'never the circuit own',
    );
    assert.ok(profileMatches(variance, circuit, ctl), `matched control ${j} ${ctl}`);
    const uni = randomControl({ hook: 'h', channels: circuit }, DIM, rng.fork(`u${j}`)).channels;
    if (!profileMatches(variance, circuit, uni)) uniformFails++;
  }
  assert.ok(uniformFails >= 99, `the uniform sampler matched the profile in ${100 - uniformFails} of 100 draws`);
  // the mean log-variance of the controls equals the circuit's within a stratum's width
  const logMean = (s: number[]) => s.reduce((a, c) => a + Math.log10(variance[c]), 0) / s.length;
  const ctlMeans = Array.from({ length: 50 }, (_, j) => logMean(matchedChannels(circuit, variance, STRATA, rng.fork(`l${j}`))));
  assert.ok(Math.abs(ctlMeans.reduce((a, b) => a + b, 0) / 50 - logMean(circuit)) < 6 / STRATA / 2);
});

test('matched channels: an exhausted stratum spills to the nearest one; bad input names the problem', () => {
  const variance = Float64Array.from({ length: 16 }, (_, i) => i + 1);
  // the circuit holds the whole top stratum (strata 4: coordinates 12..15) and one more
  const circuit = [12, 13, 14, 15, 11];
  for (let j = 0; j < 20; j++) {
    const ctl = matchedChannels(circuit, variance, 4, new mi.Rng(`s${j}`));
    assert.is(new Set(ctl).size, 5);
    assert.ok(ctl.every((c) => !circuit.includes(c)));
    // five from the two upper strata that still have room: 8, 9, 10 of stratum 2, then stratum 1 (4..7)
    assert.ok(ctl.filter((c) => c >= 8).length === 3 && ctl.every((c) => c >= 4), `${ctl}`);
  }
  assert.throws(() => matchedChannels([3, 3], variance, 4, new mi.Rng('x')), /repeats/);
  assert.throws(() => matchedChannels([16], variance, 4, new mi.Rng('x')), /outside \[0, 16\)/);
  assert.throws(() => matchedChannels([1], variance, 0, new mi.Rng('x')), /strata must be a positive integer/);
});

test('coordinateVariance is the masked variance; covariance directions follow the activation covariance', async () => {
  const rng = new mi.Rng('cov');
  const B = 8,
    T = 25,
    d = 32;
  // activations with 4 loud axes (std 10) and 28 quiet ones (std 0.1)
  const data = new Float64Array(B * T * d);
  for (let c = 0; c < B * T; c++) for (let j = 0; j < d; j++) data[c * d + j] = (j < 4 ? 10 : 0.1) * rng.normal() + 3;
  const act = mi.tensor(data, [B, T, d], { dtype: 'float64' });
  const mask = Uint8Array.from({ length: B * T }, (_, i) => (i % 2 ? 1 : 0));
  const v = await coordinateVariance(act, mask);
  let s1 = 0,
    s2 = 0,
    n = 0;
  for (let c = 1; c < B * T; c += 2) {
    s1 += data[c * d + 5];
    s2 += data[c * d + 5] ** 2;
    n++;
  }
  assert.ok(Math.abs(v[5] - (s2 / n - (s1 / n) ** 2)) < 1e-9);
  const profile = await activationProfile(act, mask, true);
  // projected variance u^T S u of a direction, with S the planted covariance diag(100 x4, 0.01 x28)
  const projVar = (u: number[]) => u.reduce((a, x, j) => a + x * x * (j < 4 ? 100 : 0.01), 0);
  let cov = 0,
    iso = 0;
  for (let r = 0; r < 30; r++) {
    const dirs = covarianceDirections(3, profile, rng.fork(`c${r}`));
    for (const [i, u] of dirs.entries())
      for (const [j, w] of dirs.entries()) {
        const dot = u.reduce((a, x, k) => a + x * w[k], 0);
        assert.ok(Math.abs(dot - (i === j ? 1 : 0)) < 1e-9, 'orthonormal');
      }
    cov += dirs.reduce((a, u) => a + projVar(u), 0) / 90;
    iso +=
      randomControl({ hook: 'h', channels: [], directions: [[], [], []] }, d, rng.fork(`i${r}`)).directions!.reduce(
        (a, u) => a + projVar(u),
        0,
      ) / 90;
  }
  // isotropic directions see 4/32 of the loud variance (~12.5); drawn from S, most of it
  assert.ok(iso < 25 && cov > 60, `covariance-drawn ${cov}, isotropic ${iso}`);
  // a covariance of rank 1 still gives k orthonormal directions
  const flat = mi.tensor(
    Float64Array.from({ length: 50 * d }, (_, i) => (i % d === 0 ? rng.normal() : 0)),
    [5, 10, d],
    { dtype: 'float64' },
  );
  const rank1 = await activationProfile(flat, new Uint8Array(50).fill(1), true);
  const dirs = matchedControls({ hook: 'h', channels: [], directions: [[], [], []] }, rank1, 2, 4, rng.fork('r1'));
  assert.is(dirs.length, 2);
  assert.is(dirs[0].directions!.length, 3);
  assert.ok(Math.abs(Math.abs(dirs[0].directions![0][0]) - 1) < 1e-9, 'the first direction is the one axis that varies');
  act.dispose();
  flat.dispose();
});

test('rankPValue counts the controls at or above the circuit, plus one, over n + 1', () => {
  assert.is(rankPValue(5, [1, 5, 7, 2]), 3 / 5);
  assert.is(rankPValue(8, [1, 5, 7, 2]), 1 / 5);
  assert.is(rankPValue(0, [1, 5, 7, 2]), 1);
  assert.throws(() => rankPValue(1, []), /no controls/);
  assert.throws(() => rankPValue(Number.NaN, [1]), /effect is NaN/);
});

test('controlTest: the hierarchical bootstrap reproduces the spread of each level', () => {
  const rng = new mi.Rng('hb');
  const nEx = 400,
    nC = 100;
  // level 1, sequences: controls all 0, circuit x_i ~ N(1, 2^2): the difference interval is mean(x) +- 1.96 sd / sqrt(n)
  const x = Float64Array.from({ length: nEx }, () => 1 + 2 * rng.normal());
  const zeros = Array.from({ length: nC }, () => new Float64Array(nEx));
  const a = controlTest(x, zeros, rng.fork('a'), { bootstrap: 2000 });
  const mx = x.reduce((s, v) => s + v, 0) / nEx;
  const sx = Math.sqrt(x.reduce((s, v) => s + (v - mx) ** 2, 0) / (nEx - 1));
  const half = (1.96 * sx) / Math.sqrt(nEx);
  assert.ok(Math.abs(a.difference - mx) < 1e-12);
  assert.ok(
    Math.abs(a.differenceInterval[1] - a.differenceInterval[0] - 2 * half) < 0.15 * 2 * half,
    `${a.differenceInterval} vs +-${half}`,
  );
  // level 2, control sets: every sequence shifts together, control j by c_j: circuit minus mean control
  // varies only through which control sets are drawn, 1.96 sd(c) / sqrt(nC)
  const c = Float64Array.from({ length: nC }, () => rng.normal());
  const base = Float64Array.from({ length: nEx }, () => rng.normal());
  const circuit = base.map((v) => v + 3);
  const controls = Array.from(c, (cj) => base.map((v) => v + cj));
  const b = controlTest(circuit, controls, rng.fork('b'), { bootstrap: 2000 });
  const mc = c.reduce((s, v) => s + v, 0) / nC;
  const sc = Math.sqrt(c.reduce((s, v) => s + (v - mc) ** 2, 0) / (nC - 1));
  const halfC = (1.96 * sc) / Math.sqrt(nC);
  assert.ok(Math.abs(b.difference - (3 - mc)) < 1e-9);
  const width = b.differenceInterval[1] - b.differenceInterval[0];
  assert.ok(Math.abs(width - 2 * halfC) < 0.15 * 2 * halfC, `width ${width} vs ${2 * halfC}`);
  assert.is(b.controls.length, nC);
  assert.is(b.pFloor, 1 / (nC + 1));
  assert.is(b.p, rankPValue(b.estimate, b.controls));
  // ratio of means: sum(gained) / sum(gap)
  const r = controlTest([1, 2, 3], [[0, 0, 3]], rng.fork('r'), { bootstrap: 10, ratioTo: [2, 2, 2] });
  assert.ok(Math.abs(r.estimate - 1) < 1e-12 && Math.abs(r.control - 0.5) < 1e-12 && r.p === 0.5);
  assert.throws(() => controlTest([1, 2], [[1]], rng, { bootstrap: 10 }), /control 0 has 1 examples, the circuit 2/);
});

test.run();
