import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Rng } from '../../engine/random.ts';
import * as st from '../../interp/stats.ts';

const close = (a: number, b: number, tol: number, what: string) => assert.ok(Math.abs(a - b) <= tol, `${what}: ${a} vs ${b} (tol ${tol})`);

function normals(rng: Rng, n: number, mu = 0, sigma = 1): Float64Array {
  return Float64Array.from({ length: n }, () => mu + sigma * rng.normal());
}

test('summaries: mean, unbiased variance, type-7 quantiles', () => {
  const x = [4, 1, 3, 2];
  assert.is(st.mean(x), 2.5);
  close(st.variance(x), 5 / 3, 1e-12, 'variance');
  close(st.variance(x, 0), 1.25, 1e-12, 'population variance');
  close(st.quantile(x, 0.25), 1.75, 1e-12, 'q25'); // numpy.quantile([1,2,3,4], .25) = 1.75
  assert.is(st.median([5, 1, 3]), 3);
  assert.equal(st.quantiles(x, [0, 1]), [1, 4]);
  assert.throws(() => st.mean([]), /mean: need at least 1/);
});

test('normal quantile and cdf agree with tabulated values', () => {
  close(st.normalQuantile(0.975), 1.959963985, 1e-8, 'z_0.975');
  close(st.normalQuantile(0.001), -3.090232306, 1e-7, 'z_0.001');
  close(st.normalCdf(1.959963985), 0.975, 1e-7, 'Phi(1.96)');
  close(st.normalCdf(-1), 0.158655254, 1e-7, 'Phi(-1)');
  close(Math.exp(st.logGamma(5)), 24, 1e-9, 'Gamma(5)');
  close(Math.exp(st.logGamma(3.5)), 1.875 * Math.sqrt(Math.PI), 1e-9, 'Gamma(3.5)');
});

test('Holm and BH on a hand-computed four-test example', () => {
  const p = [0.01, 0.04, 0.03, 0.005];
  // Holm: sorted 0.005*4, 0.01*3, 0.03*2, max(0.04*1, 0.06) -> input order.
  const h = st.holm(p);
  [0.03, 0.06, 0.06, 0.02].forEach((v, i) => close(h[i], v, 1e-12, `holm[${i}]`));
  // BH: 0.005*4/1, 0.01*4/2, 0.03*4/3, 0.04*4/4, then running minimum from the top.
  const q = st.benjaminiHochberg(p);
  [0.02, 0.04, 0.04, 0.02].forEach((v, i) => close(q[i], v, 1e-12, `bh[${i}]`));
});

test('BH 1995 paper example: BH rejects 4 of 15 at 0.05, Holm rejects 3', () => {
  const p = [0.0001, 0.0004, 0.0019, 0.0095, 0.0201, 0.0278, 0.0298, 0.0344, 0.0459, 0.324, 0.4262, 0.5719, 0.6528, 0.759, 1.0];
  const bhRejects = st.rejected(st.benjaminiHochberg(p), 0.05);
  const holmRejects = st.rejected(st.holm(p), 0.05);
  assert.is(bhRejects.filter(Boolean).length, 4);
  assert.ok(bhRejects.slice(0, 4).every(Boolean));
  assert.is(holmRejects.filter(Boolean).length, 3);
  assert.throws(() => st.holm([0.2, 1.5]), /p-value 1 is 1.5/);
});

test("effect sizes: Cohen's d, Hedges' g, paired d on hand cases", () => {
  const a = [1, 2, 3, 4, 5],
    b = [3, 4, 5, 6, 7];
  close(st.cohensD(a, b), -2 / Math.sqrt(2.5), 1e-12, 'cohensD');
  // J(8) = Gamma(4) / (2 Gamma(3.5)) = 6 / (3.75 sqrt(pi)) = 0.902703...
  close(st.hedgesCorrection(8), 6 / (3.75 * Math.sqrt(Math.PI)), 1e-10, 'J(8)');
  close(st.hedgesG(a, b), st.cohensD(a, b) * 0.9027033, 1e-6, 'hedgesG');
  close(st.hedgesCorrection(1000), 1 - 3 / (4 * 1000 - 1), 1e-6, 'J approx for large df');
  // d = [1, 2, 2, 3]: mean 2, sd sqrt(2/3).
  close(st.pairedD([1, 2, 3, 4], [0, 0, 1, 1]), 2 / Math.sqrt(2 / 3), 1e-12, 'pairedD');
  assert.throws(() => st.cohensD([1, 1], [2, 2]), /pooled standard deviation is 0/);
});

test('bootstrap is deterministic by seed and BCa moves with skew', () => {
  const x = normals(new Rng('data'), 25);
  const r1 = st.bootstrapCI(x, new Rng(7), st.mean, { nBoot: 500 });
  const r2 = st.bootstrapCI(x, new Rng(7), st.mean, { nBoot: 500 });
  assert.equal([r1.lo, r1.hi], [r2.lo, r2.hi]);
  assert.ok(r1.lo < r1.estimate && r1.estimate < r1.hi);
  // Right-skewed data: the BCa interval for the mean is shifted right of the percentile one.
  const skew = Float64Array.from({ length: 40 }, (_, i) => Math.exp(2 * normals(new Rng(`s${i}`), 1)[0]));
  const pct = st.bootstrapCI(skew, new Rng(1), st.mean, { nBoot: 2000, method: 'percentile' });
  const bca = st.bootstrapCI(skew, new Rng(1), st.mean, { nBoot: 2000, method: 'bca' });
  assert.ok(bca.acceleration > 0, `acceleration ${bca.acceleration}`);
  assert.ok(bca.hi > pct.hi, `bca hi ${bca.hi} vs percentile hi ${pct.hi}`);
});

test('BCa on skewed data equals the textbook formula on the same resamples (the sign of z0 matters)', () => {
  // An exponential sample (rate 1; skewness 2) and its mean: the bootstrap distribution is right-
  // skewed, so z0 and the acceleration are both clearly positive, unlike on symmetric data.
  const dataRng = new Rng('bca-exponential');
  const n = 20;
  const x = Float64Array.from({ length: n }, () => -Math.log(1 - dataRng.uniform()));
  const B = 4000;
  const got = st.bootstrapCI(x, new Rng('bca-boot'), st.mean, { nBoot: B });
  // The same resamples: bootstrapCI draws n indices per replicate with rng.int(0, n), in order.
  const rng = new Rng('bca-boot');
  let total = 0;
  for (const v of x) total += v;
  const theta = total / n;
  const reps = Array.from({ length: B }, () => {
    let s = 0;
    for (let i = 0; i < n; i++) s += x[rng.int(0, n)];
    return s / n;
  });
  // Efron & Tibshirani (1993), eqs. 14.14-14.15: z0 from the share of replicates below the
  // estimate, a from the jackknife, then the adjusted percentile levels.
  const z0 = st.normalQuantile(reps.filter((r) => r < theta).length / B);
  const jack = Array.from(x, (v) => (total - v) / (n - 1));
  const jbar = jack.reduce((a, b) => a + b, 0) / n;
  const a = jack.reduce((s, v) => s + (jbar - v) ** 3, 0) / (6 * jack.reduce((s, v) => s + (jbar - v) ** 2, 0) ** 1.5);
  const level = (zAlpha: number, zb: number) => st.normalCdf(zb + (zb + zAlpha) / (1 - a * (zb + zAlpha)));
  const ordered = reps.slice().sort((p, q) => p - q);
  const q7 = (p: number) => {
    const h = (B - 1) * p,
      lo = Math.floor(h);
    return ordered[lo] + (h - lo) * (ordered[Math.min(lo + 1, B - 1)] - ordered[lo]);
  };
  const zLo = st.normalQuantile(0.025),
    zHi = st.normalQuantile(0.975);
  close(got.z0, z0, 1e-12, 'z0');
  close(got.acceleration, a, 1e-9, 'acceleration');
  close(got.lo, q7(level(zLo, z0)), 1e-9, 'BCa lower end');
  close(got.hi, q7(level(zHi, z0)), 1e-9, 'BCa upper end');
  // z0 is far from 0 here, so the interval with its sign flipped lies well away from the right one.
  assert.ok(z0 > 0.05 && a > 0.03, `z0 ${z0}, a ${a}`);
  assert.ok(Math.abs(q7(level(zLo, -z0)) - got.lo) > 0.02, 'a flipped z0 would move the lower end');
  assert.ok(Math.abs(q7(level(zHi, -z0)) - got.hi) > 0.02, 'a flipped z0 would move the upper end');
});

test('bootstrap 95% intervals cover the true mean near nominally (200 normal datasets)', () => {
  const rng = new Rng('coverage');
  const trials = 200,
    n = 30,
    mu = 1.5;
  let coverPct = 0,
    coverBca = 0,
    coverPaired = 0,
    coverTwo = 0;
  for (let t = 0; t < trials; t++) {
    const x = normals(rng, n, mu, 2);
    const p = st.bootstrapCI(x, rng.fork(`p${t}`), st.mean, { nBoot: 400, method: 'percentile' });
    const b = st.bootstrapCI(x, rng.fork(`b${t}`), st.mean, { nBoot: 400, method: 'bca' });
    if (p.lo <= mu && mu <= p.hi) coverPct++;
    if (b.lo <= mu && mu <= b.hi) coverBca++;
    // Paired: y = x + noise with mean shift 0.5; independent: two groups differing by 0.5.
    const y = Float64Array.from(x, (v) => v - 0.5 + 0.5 * rng.normal());
    const pd = st.bootstrapPairedCI(x, y, rng.fork(`pd${t}`), undefined, { nBoot: 400 });
    if (pd.lo <= 0.5 && 0.5 <= pd.hi) coverPaired++;
    const z = normals(rng, n, mu - 0.5, 2);
    const two = st.bootstrapTwoSampleCI(x, z, rng.fork(`two${t}`), undefined, { nBoot: 400 });
    if (two.lo <= 0.5 && 0.5 <= two.hi) coverTwo++;
  }
  for (const [name, c] of [
    ['percentile', coverPct],
    ['bca', coverBca],
    ['paired', coverPaired],
    ['two-sample', coverTwo],
  ] as const) {
    const rate = c / trials;
    assert.ok(rate >= 0.88 && rate <= 0.99, `${name} coverage ${rate}`);
  }
});

test('permutation p-values are roughly uniform under the null', () => {
  const rng = new Rng('null');
  const runs = 200,
    ps: number[] = [],
    pairedPs: number[] = [];
  for (let r = 0; r < runs; r++) {
    const a = normals(rng, 12),
      b = normals(rng, 15);
    ps.push(st.permutationTest(a, b, rng.fork(`t${r}`), { nPerm: 199 }).pValue);
    pairedPs.push(st.pairedPermutationTest(normals(rng, 20), null, rng.fork(`p${r}`), { nPerm: 199 }).pValue);
  }
  for (const [name, p] of [
    ['two-sample', ps],
    ['paired', pairedPs],
  ] as const) {
    const below = p.filter((v) => v <= 0.05).length / runs;
    assert.ok(below >= 0.01 && below <= 0.1, `${name}: fraction p<=0.05 is ${below}`);
    // Kolmogorov-Smirnov distance to Uniform(0, 1); 5% critical value for n=200 is ~0.096.
    const s = st.sorted(p);
    let ks = 0;
    s.forEach((v, i) => {
      ks = Math.max(ks, Math.abs(v - (i + 1) / runs), Math.abs(v - i / runs));
    });
    assert.ok(ks < 0.12, `${name}: KS distance ${ks}`);
  }
});

test('permutation tests have power under a real effect and exact sign-flip values', () => {
  const rng = new Rng('power');
  let hits = 0,
    pairedHits = 0;
  for (let r = 0; r < 60; r++) {
    // d = 1 with 20 per group: t-test power ~0.87.
    if (st.permutationTest(normals(rng, 20, 1), normals(rng, 20), rng.fork(`a${r}`), { nPerm: 199 }).pValue <= 0.05) hits++;
    if (st.pairedPermutationTest(normals(rng, 15, 0.8), null, rng.fork(`b${r}`), { nPerm: 199 }).pValue <= 0.05) pairedHits++;
  }
  assert.ok(hits / 60 >= 0.7, `two-sample power ${hits / 60}`);
  assert.ok(pairedHits / 60 >= 0.7, `paired power ${pairedHits / 60}`);
  // All 8 sign flips of d = [1, 2, 3]: only all-plus and all-minus reach |mean| >= 2.
  const exact = st.pairedPermutationTest([1, 2, 3], null, new Rng(0), { nPerm: 100 });
  assert.ok(exact.exact);
  assert.is(exact.pValue, 2 / 8);
  assert.is(st.pairedPermutationTest([1, 2, 3], null, new Rng(0), { alternative: 'greater' }).pValue, 1 / 8);
  // The +1 correction: a huge effect still gets p = 1/(nPerm+1), never 0.
  const big = st.permutationTest([10, 11, 12, 13], [0, 1, 2, 3], new Rng(3), { nPerm: 99, alternative: 'greater' });
  assert.ok(big.pValue >= 1 / 100 && big.pValue < 0.1, `p ${big.pValue}`);
});

test('permutation floors: the smallest p each test can give, reached by a planted all-positive effect', () => {
  // exact enumeration of 2^5 flips: one-sided floor 1/32, two-sided 2/32 (all-minus mirrors all-plus)
  const d = [1, 2, 3, 4, 5];
  const one = st.pairedPermutationTest(d, null, new Rng(0), { nPerm: 100, alternative: 'greater' });
  const two = st.pairedPermutationTest(d, null, new Rng(0), { nPerm: 100 });
  assert.equal([one.exact, one.pValue, one.floor], [true, 1 / 32, 1 / 32]);
  assert.equal([two.pValue, two.floor], [2 / 32, 2 / 32]);
  assert.is(st.pairedPermutationFloor(5, 100, 'greater'), 1 / 32);
  // random flips (2^40 > nPerm + 1): floor 1/(nPerm + 1), which 40 positive differences reach
  const many = Array.from({ length: 40 }, (_, i) => 1 + i);
  const rnd = st.pairedPermutationTest(many, null, new Rng(1), { nPerm: 199, alternative: 'greater' });
  assert.equal([rnd.exact, rnd.pValue, rnd.floor], [false, 1 / 200, 1 / 200]);
  assert.is(st.pairedPermutationFloor(40, 199, 'greater'), 1 / 200);
  // two-sample: separated groups sit at the floor 1/(nPerm + 1)
  const sep = st.permutationTest([10, 11, 12, 13, 14, 15], [0, 1, 2, 3, 4, 5], new Rng(2), { nPerm: 99, alternative: 'greater' });
  assert.ok(sep.floor === 1 / 100 && sep.pValue >= sep.floor, `p ${sep.pValue}, floor ${sep.floor}`);
  // 4 against 4 values have C(8, 4) = 70 splits: many random permutations cannot take p below about
  // 2/70 two-sided (the observed split and its mirror), so that is the floor, not 1/(nPerm + 1)
  const few = st.permutationTest([10, 11, 12, 13], [0, 1, 2, 3], new Rng(3), { nPerm: 99999 });
  // (a Monte Carlo p can fall a little below 2/70 by chance; the floor never exceeds p)
  assert.ok(Math.abs(few.floor - Math.min(2 / 70, few.pValue)) < 1e-12, `floor ${few.floor}, p ${few.pValue}`);
  assert.ok(Math.abs(few.pValue - 2 / 70) < 0.003, `p ${few.pValue} sits at the split floor`);
  const fewOne = st.permutationTest([10, 11, 12, 13], [0, 1, 2, 3], new Rng(3), { nPerm: 99999, alternative: 'greater' });
  assert.ok(Math.abs(fewOne.floor - Math.min(1 / 70, fewOne.pValue)) < 1e-12, `one-sided floor ${fewOne.floor}`);
  assert.ok(fewOne.floor > 0.013, `one-sided floor ${fewOne.floor} near 1/70, not 1/(nPerm + 1)`);
  assert.throws(() => st.pairedPermutationFloor(0, 10), /n must be a positive integer/);
});

test.run();
