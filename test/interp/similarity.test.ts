import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Rng } from '../../engine/random.ts';
import { mean, std, studentTQuantile } from '../../interp/stats.ts';
import {
  activationCorrelations,
  assignmentCost,
  circularShiftRows,
  matchByCorrelation,
  seedPairInterval,
  svcca,
  svccaFromStats,
  ckaFromStats,
  ckaStats,
  cosineMatrix,
  hungarian,
  locateChannels,
  jaccard,
  linearCka,
  matchDictionaries,
  randomJaccard,
  exactJaccardNull,
  randomUnitRows,
  resampleWeights,
  sharedFraction,
  unionIndicators,
} from '../../interp/similarity.ts';

const close = (a: number, b: number, tol: number, what: string) => assert.ok(Math.abs(a - b) <= tol, `${what}: ${a} vs ${b} (tol ${tol})`);

/** The cheapest assignment by trying every injective map of rows to columns. */
function bruteForce(cost: number[][]): number {
  const n = cost.length,
    m = cost[0].length;
  let best = Infinity;
  const used = new Array<boolean>(m).fill(false);
  const go = (i: number, acc: number) => {
    if (i === n) {
      best = Math.min(best, acc);
      return;
    }
    for (let j = 0; j < m; j++)
      if (!used[j]) {
        used[j] = true;
        go(i + 1, acc + cost[i][j]);
        used[j] = false;
      }
  };
  go(0, 0);
  return best;
}

test('hungarian: optimal cost equals brute force on random square and rectangular matrices', () => {
  const rng = new Rng('hungarian');
  for (let trial = 0; trial < 60; trial++) {
    const n = 1 + (trial % 6),
      m = n + (trial % 3);
    const cost = Array.from({ length: n }, () => Array.from({ length: m }, () => Math.round(rng.normal() * 10) / 2));
    const colOf = hungarian(cost);
    assert.is(new Set(colOf).size, n, 'columns distinct');
    assert.ok(colOf.every((j) => j >= 0 && j < m));
    close(assignmentCost(cost, colOf), bruteForce(cost), 1e-9, `trial ${trial} (${n}x${m})`);
  }
});

test('hungarian: known answer and errors', () => {
  // rows prefer different columns; the greedy choice (row 0 -> col 0) is not optimal
  assert.equal(
    hungarian([
      [1, 2],
      [1, 100],
    ]),
    [1, 0],
  );
  assert.throws(() => hungarian([[1], [2]]), /2 rows cannot be assigned to 1/);
  assert.throws(() => hungarian([[1, NaN]]), /cost\[0\]\[1\] is NaN/);
});

test('matchDictionaries: a permuted, sign-kept copy is recovered with cosine 1; random directions are not shared', () => {
  const rng = new Rng('dict');
  const d = 16,
    n = 24;
  const a = randomUnitRows(n, d, rng);
  const perm = rng.permutation(n);
  const b = new Float64Array(n * d);
  perm.forEach((src, dst) =>
    b.set(
      a.subarray(src * d, (src + 1) * d).map((v) => 3 * v),
      dst * d,
    ),
  );
  const m = matchDictionaries(a, b, d);
  perm.forEach((src, dst) => assert.is(m.partner[src], dst));
  for (const c of m.cosine) close(c, 1, 1e-9, 'matched cosine');
  assert.is(sharedFraction(m.cosine, 0.7), 1);
  const r = matchDictionaries(a, randomUnitRows(n, d, new Rng('other')), d);
  assert.ok(sharedFraction(r.cosine, 0.7) < 0.2, `random shared ${sharedFraction(r.cosine, 0.7)}`);
  // more rows in A than in B: the extra rows are left over
  const short = matchDictionaries(a, b.subarray(0, 5 * d), d);
  assert.is(short.partner.filter((j) => j >= 0).length, 5);
  assert.is(short.cosine.filter((c) => c === -1).length, n - 5);
  close(cosineMatrix([1, 0], [0, 2], 2)[0][0], 0, 0, 'orthogonal cosine');
});

function gaussian(rng: Rng, n: number, p: number): Float64Array {
  return Float64Array.from({ length: n * p }, () => rng.normal());
}

function rotate(X: Float64Array, p: number, rng: Rng): Float64Array {
  const Q = orthogonal(p, rng);
  const n = X.length / p,
    out = new Float64Array(X.length);
  for (let r = 0; r < n; r++)
    for (let j = 0; j < p; j++) {
      let s = 0;
      for (let k = 0; k < p; k++) s += X[r * p + k] * Q[k][j];
      out[r * p + j] = s;
    }
  return out;
}

test('linearCka: self = 1, invariant to orthogonal transforms, isotropic scaling and shifts; ~0 for independent data', () => {
  const rng = new Rng('cka');
  const n = 400,
    p = 6;
  const X = gaussian(rng, n, p);
  close(linearCka(X, X, p, p), 1, 1e-12, 'self');
  const R = rotate(X, p, rng).map((v) => 2.5 * v + 7);
  close(linearCka(X, R, p, p), 1, 1e-9, 'rotated, scaled, shifted');
  const Y = gaussian(rng, n, 4);
  const indep = linearCka(X, Y, p, 4);
  assert.ok(indep >= 0 && indep < 0.05, `independent: ${indep}`);
  // a partly shared representation sits in between
  const mixed = X.map((v, i) => v + 2 * Y[Math.floor(i / p) * 4 + ((i % p) % 4)]);
  const c = linearCka(X, mixed, p, p);
  assert.ok(c > 0.1 && c < 0.95, `mixed: ${c}`);
});

test('ckaFromStats: grouped sums give the same CKA; resampled groups give a valid value', () => {
  const rng = new Rng('cka-groups');
  const n = 120,
    p = 3,
    q = 5;
  const X = gaussian(rng, n, p),
    Y = gaussian(rng, n, q).map((v, i) => v + X[Math.floor(i / q) * p + (i % p)]);
  const group = Int32Array.from({ length: n }, (_, r) => Math.floor(r / 10));
  const s = ckaStats(X, Y, p, q, group);
  close(ckaFromStats(s), linearCka(X, Y, p, q), 1e-10, 'grouped vs plain');
  // weights 2 on group 0 = group 0's rows duplicated
  const w = new Float64Array(s.groups).fill(1);
  w[0] = 2;
  const Xd = new Float64Array([...X, ...X.subarray(0, 10 * p)]),
    Yd = new Float64Array([...Y, ...Y.subarray(0, 10 * q)]);
  close(ckaFromStats(s, w), linearCka(Xd, Yd, p, q), 1e-10, 'weighted vs duplicated rows');
  const wb = resampleWeights(s.groups, rng);
  assert.is(
    wb.reduce((a, b) => a + b, 0),
    s.groups,
  );
  const cb = ckaFromStats(s, wb);
  assert.ok(cb >= 0 && cb <= 1 + 1e-12);
  assert.throws(() => ckaStats(X, Y.subarray(0, 5), p, q), /same rows/);
});

test('jaccard, union indicators and the random-set null', () => {
  assert.is(jaccard([1, 2, 3], [2, 3, 4]), 0.5);
  const ind = unionIndicators([1, 2, 3], [2, 3, 4]);
  assert.is(ind.length, 4);
  assert.is(
    ind.reduce((a, b) => a + b, 0),
    2,
  );
  const rng = new Rng('null');
  // sets of 8 in 64: expected Jaccard ~ (8*8/64) / (16 - 1) = 0.067
  const nul = randomJaccard(8, 8, 64, 1, 2000, rng);
  assert.ok(nul.mean > 0.04 && nul.mean < 0.1, `null mean ${nul.mean}`);
  assert.ok(nul.interval[0] <= nul.mean && nul.mean <= nul.interval[1]);
  assert.ok(nul.p < 0.01, 'identical sets are far above random');
  assert.is(randomJaccard(64, 64, 64, 1, 50, rng).p, 1, 'full sets always overlap fully');
});

test('exact Jaccard null: a hand-worked case and agreement with the Monte-Carlo null', () => {
  // two random pairs from 4 elements: intersection 0, 1, 2 with probabilities 1/6, 4/6, 1/6 (Jaccard 0, 1/3, 1)
  const small = exactJaccardNull(2, 2, 4, 1 / 3);
  assert.ok(Math.abs(small.mean - (4 / 6 / 3 + 1 / 6)) < 1e-12, `mean ${small.mean}`);
  assert.ok(Math.abs(small.p - 5 / 6) < 1e-12, `P(J >= 1/3) = ${small.p}`);
  assert.ok(Math.abs(exactJaccardNull(2, 2, 4, 1).p - 1 / 6) < 1e-12, 'P(J = 1)');
  assert.equal(small.interval, [0, 1]);
  // sets of 8 and 12 in 64: the exact law against 20000 random draws
  const exact = exactJaccardNull(8, 12, 64, 0.25);
  const mc = randomJaccard(8, 12, 64, 0.25, 20000, new Rng('exact-vs-mc'));
  assert.ok(Math.abs(exact.mean - mc.mean) < 0.003, `mean ${exact.mean} vs ${mc.mean}`);
  assert.ok(Math.abs(exact.p - mc.p) < 0.01, `p ${exact.p} vs ${mc.p}`);
  // identical 16-sets in 512: p = 1 / C(512, 16), far below any Monte-Carlo floor
  const same = exactJaccardNull(16, 16, 512, 1);
  assert.ok(same.p > 0 && same.p < 1e-20, `p ${same.p}`);
  assert.throws(() => exactJaccardNull(8, 8, 4, 1), /do not fit/);
});

/** A random orthogonal matrix [p][p] (Gram-Schmidt on Gaussian rows). */
function orthogonal(p: number, rng: Rng): number[][] {
  const Q = Array.from({ length: p }, () => Array.from({ length: p }, () => rng.normal()));
  for (let i = 0; i < p; i++) {
    for (let k = 0; k < i; k++) {
      const dot = Q[i].reduce((s, v, j) => s + v * Q[k][j], 0);
      Q[i] = Q[i].map((v, j) => v - dot * Q[k][j]);
    }
    const norm = Math.hypot(...Q[i]);
    Q[i] = Q[i].map((v) => v / norm);
  }
  return Q;
}

/** X [n, p] times M [p][q]. */
function times(X: ArrayLike<number>, p: number, M: number[][]): Float64Array {
  const q = M[0].length,
    n = X.length / p;
  const out = new Float64Array(n * q);
  for (let r = 0; r < n; r++)
    for (let k = 0; k < p; k++) {
      const x = X[r * p + k];
      if (x) for (let j = 0; j < q; j++) out[r * q + j] += x * M[k][j];
    }
  return out;
}

/** Pearson correlation of column i of a and column j of b, directly (0 when either is constant). */
function pearson(a: ArrayLike<number>, la: number, i: number, b: ArrayLike<number>, lb: number, j: number): number {
  const n = a.length / la;
  const x = Float64Array.from({ length: n }, (_, r) => a[r * la + i]),
    y = Float64Array.from({ length: n }, (_, r) => b[r * lb + j]);
  const mx = mean(x),
    my = mean(y);
  let sxy = 0,
    sxx = 0,
    syy = 0;
  for (let r = 0; r < n; r++) {
    sxy += (x[r] - mx) * (y[r] - my);
    sxx += (x[r] - mx) ** 2;
    syy += (y[r] - my) ** 2;
  }
  return sxx > 0 && syy > 0 ? sxy / Math.sqrt(sxx * syy) : 0;
}

test('activationCorrelations: equals a direct Pearson computation, with a re-pairing of rows and a dead latent', () => {
  const rng = new Rng('act-corr');
  const n = 60,
    la = 5,
    lb = 4;
  const sparse = (l: number) => Float64Array.from({ length: n * l }, () => (rng.uniform() < 0.3 ? 0.2 + rng.uniform() : 0));
  const a = sparse(la),
    b = sparse(lb);
  for (let r = 0; r < n; r++) b[r * lb + 3] = 0; // dead
  b[lb + 1] = -0.7; // a negative value (ReLU-free codes) must count too
  const perm = rng.permutation(n);
  const bPerm = new Float64Array(n * lb);
  perm.forEach((src, r) => bPerm.set(b.subarray(src * lb, (src + 1) * lb), r * lb));
  const c = activationCorrelations(a, b, la, lb);
  const cp = activationCorrelations(a, b, la, lb, perm);
  for (let i = 0; i < la; i++)
    for (let j = 0; j < lb; j++) {
      close(c[i][j], pearson(a, la, i, b, lb, j), 1e-12, `corr ${i},${j}`);
      close(cp[i][j], pearson(a, la, i, bPerm, lb, j), 1e-12, `re-paired corr ${i},${j}`);
    }
  assert.ok(
    c.every((row) => row[3] === 0),
    'a dead latent correlates 0',
  );
  assert.throws(() => activationCorrelations(a, b.subarray(0, 10 * lb), la, lb), /same inputs/);
});

test('circularShiftRows: a permutation within each sequence, a nonzero circular shift', () => {
  const rows = circularShiftRows(5, 7, new Rng('shift'));
  for (let s = 0; s < 5; s++) {
    const seq = [...rows.subarray(s * 7, s * 7 + 7)];
    assert.equal(
      [...seq].sort((x, y) => x - y),
      [0, 1, 2, 3, 4, 5, 6].map((t) => s * 7 + t),
    );
    const off = (seq[0] - s * 7 + 7) % 7;
    assert.ok(off > 0);
    seq.forEach((r, t) => assert.is(r, s * 7 + ((t + off) % 7)));
  }
});

/**
 * Two synthetic "models" of width d: each token's activation is a sparse code over `latents`
 * features seen through the model's own random orthogonal basis, plus noise. The first `shared`
 * features of A are features of B too (the same values on the same tokens), at B's latent slots
 * `slot[i]`; the rest are independent. Each model's "SAE" is its ideal encoder (its own basis,
 * a threshold), so its decoder rows are its basis rows: all a raw-coordinate comparison sees.
 */
function plantedPair(shared: number, rng: Rng) {
  const d = 24,
    latents = 24,
    sequences = 48,
    T = 32,
    n = sequences * T;
  const code = () => Float64Array.from({ length: n * latents }, () => (rng.uniform() < 0.06 ? 0.5 - Math.log(1 - rng.uniform()) : 0));
  const fa = code(),
    fb = code();
  const slot = rng.permutation(latents);
  for (let r = 0; r < n; r++) for (let i = 0; i < shared; i++) fb[r * latents + slot[i]] = fa[r * latents + i];
  const Ra = orthogonal(d, rng),
    Rb = orthogonal(d, rng);
  const observe = (f: Float64Array, R: number[][]) => times(f, latents, R).map((v) => v + 0.05 * rng.normal());
  const xa = observe(fa, Ra),
    xb = observe(fb, Rb);
  const transpose = (R: number[][]) => R[0].map((_, j) => R.map((row) => row[j]));
  const encode = (x: Float64Array, R: number[][]) => times(x, d, transpose(R)).map((v) => Math.max(0, v - 0.2));
  return {
    d,
    latents,
    sequences,
    T,
    xa,
    xb,
    za: encode(xa, Ra),
    zb: encode(xb, Rb),
    decA: Float64Array.from(Ra.flat()),
    decB: Float64Array.from(Rb.flat()),
    slot,
  };
}

test('cross-seed matching by activation correlation recovers a planted shared feature set under random rotations; raw coordinates do not', () => {
  const rng = new Rng('planted-shared');
  const shared = 9;
  const m = plantedPair(shared, rng);
  const match = matchByCorrelation(activationCorrelations(m.za, m.zb, m.latents, m.latents));
  // exactly the planted latents are shared, each one-to-one with its planted partner
  assert.is(sharedFraction(match.maxCorrA, 0.7), shared / m.latents, 'shared fraction (max correlation)');
  assert.is(sharedFraction(match.matched, 0.7), shared / m.latents, 'shared fraction (one-to-one)');
  for (let i = 0; i < shared; i++) assert.is(match.partner[i], m.slot[i], `latent ${i}'s partner`);
  for (let i = shared; i < m.latents; i++) assert.ok(match.maxCorrA[i] < 0.3, `unshared latent ${i}: ${match.maxCorrA[i]}`);
  // the raw-coordinate comparison (decoder cosine, Hungarian) sees two unrelated random bases
  const raw = matchDictionaries(m.decA, m.decB, m.d);
  assert.is(sharedFraction(raw.cosine, 0.7), 0, `raw decoder cosines shared: ${sharedFraction(raw.cosine, 0.7)}`);
  // the shift null: no latent shared, mean max correlation far below the pair's
  const nul = matchByCorrelation(activationCorrelations(m.za, m.zb, m.latents, m.latents, circularShiftRows(m.sequences, m.T, rng)));
  assert.is(sharedFraction(nul.maxCorrA, 0.7), 0);
  assert.ok(match.meanMax > nul.meanMax + 0.25, `pair ${match.meanMax} vs null ${nul.meanMax}`);
});

test('cross-seed matching finds nothing between unrelated feature sets: at the shift null', () => {
  const rng = new Rng('planted-unrelated');
  const m = plantedPair(0, rng);
  const match = matchByCorrelation(activationCorrelations(m.za, m.zb, m.latents, m.latents));
  assert.is(sharedFraction(match.maxCorrA, 0.7), 0);
  assert.is(sharedFraction(match.matched, 0.7), 0);
  const nulls = Array.from(
    { length: 20 },
    () =>
      matchByCorrelation(activationCorrelations(m.za, m.zb, m.latents, m.latents, circularShiftRows(m.sequences, m.T, rng)), {
        oneToOne: false,
      }).meanMax,
  );
  // the unrelated pair is one more draw of the null: within its spread
  const z = (match.meanMax - mean(nulls)) / std(nulls);
  assert.ok(Math.abs(z) < 3, `unrelated pair ${match.meanMax} vs null ${mean(nulls)} +- ${std(nulls)} (z ${z})`);
});

/** Canonical correlations by Bjorck-Golub: orthonormal bases of the centred columns (Gram-Schmidt), then singular values of Qx' Qy. */
function cca(X: Float64Array, Y: Float64Array, p: number, q: number): number[] {
  const n = X.length / p;
  const basis = (Z: Float64Array, w: number) => {
    const cols: Float64Array[] = [];
    for (let j = 0; j < w; j++) {
      const c = Float64Array.from({ length: n }, (_, r) => Z[r * w + j]);
      const m = mean(c);
      for (let r = 0; r < n; r++) c[r] -= m;
      for (const b of cols) {
        const dot = c.reduce((s, v, r) => s + v * b[r], 0);
        for (let r = 0; r < n; r++) c[r] -= dot * b[r];
      }
      const norm = Math.hypot(...c);
      if (norm > 1e-9) cols.push(c.map((v) => v / norm));
    }
    return cols;
  };
  const qx = basis(X, p),
    qy = basis(Y, q);
  const M = qx.map((a) => qy.map((b) => a.reduce((s, v, r) => s + v * b[r], 0)));
  // singular values by power iteration with deflation on M'M (small)
  const k = Math.min(qx.length, qy.length);
  let G = qy.map((_, i) => qy.map((_, j) => M.reduce((s, row) => s + row[i] * row[j], 0)));
  const out: number[] = [];
  for (let s = 0; s < k; s++) {
    let v = G.map((_, i) => 1 + i * 0.01);
    let lambda = 0;
    for (let it = 0; it < 3000; it++) {
      const w = G.map((row) => row.reduce((t, x, j) => t + x * v[j], 0));
      lambda = Math.hypot(...w);
      if (lambda < 1e-15) break;
      v = w.map((x) => x / lambda);
    }
    out.push(Math.sqrt(Math.max(0, lambda)));
    G = G.map((row, i) => row.map((x, j) => x - lambda * v[i] * v[j]));
  }
  return out;
}

test('svcca: a hand-computed case, a rotated copy, invariance to invertible maps, and Bjorck-Golub CCA', () => {
  // centred orthogonal columns on 4 rows: X = [a, b], Y = [a, b cos t + c sin t] has canonical
  // correlations 1 and cos t, so mean (1 + cos t) / 2
  const a = [1, 1, -1, -1],
    b = [1, -1, 1, -1],
    c = [1, -1, -1, 1];
  const t = 1.1;
  const X = Float64Array.from({ length: 8 }, (_, i) => (i % 2 ? b : a)[i >> 1]);
  const Y = Float64Array.from({ length: 8 }, (_, i) => (i % 2 ? b[i >> 1] * Math.cos(t) + c[i >> 1] * Math.sin(t) : a[i >> 1]));
  const h = svcca(X, Y, 2, 2);
  close(h.mean, (1 + Math.cos(t)) / 2, 1e-12, 'hand-computed SVCCA');
  close(h.correlations[1], Math.cos(t), 1e-12, 'second canonical correlation');
  // one column each: |Pearson|
  const rng = new Rng('svcca');
  const x1 = gaussian(rng, 50, 1),
    y1 = x1.map((v) => -v + rng.normal());
  close(svcca(x1, y1, 1, 1).mean, Math.abs(pearson(x1, 1, 0, y1, 1, 0)), 1e-12, '1-d');
  // a rotated, scaled, shifted copy
  const n = 300,
    p = 6;
  const G = gaussian(rng, n, p).map((v, i) => v * (1 + (i % p)));
  close(
    svcca(
      G,
      rotate(G, p, rng).map((v) => 3 * v - 1),
      p,
      p,
    ).mean,
    1,
    1e-9,
    'rotated copy',
  );
  // exact rank 3 in 5 dimensions: only the 2 null directions are cut (kept = 1; a 99% cut could also
  // drop a small direction, and which one depends on the map), and then any invertible map of one
  // side leaves SVCCA unchanged
  const F = gaussian(rng, n, 3);
  const lift = (Z: Float64Array) =>
    times(
      Z,
      3,
      Array.from({ length: 3 }, () => Array.from({ length: 5 }, () => rng.normal())),
    );
  const Xr = lift(F),
    Zr = lift(F.map((v, i) => (i % 3 === 2 ? rng.normal() : v + 0.8 * rng.normal())));
  const L = Array.from({ length: 5 }, (_, i) => Array.from({ length: 5 }, (_, j) => (i === j ? 2 : 0) + rng.normal()));
  const base = svcca(Xr, Zr, 5, 5, 1);
  assert.equal([base.kx, base.ky], [3, 3]);
  close(svcca(times(Xr, 5, L), Zr, 5, 5, 1).mean, base.mean, 1e-8, 'invertible map of X');
  close(svcca(Xr, times(Zr, 5, L), 5, 5, 1).mean, base.mean, 1e-8, 'invertible map of Y');
  close(svcca(Xr, times(Xr, 5, L), 5, 5).mean, 1, 1e-8, 'a linear image of itself');
  assert.ok(base.mean > 0.2 && base.mean < 0.9, `partly related: ${base.mean}`);
  // nothing cut (kept = 1): plain CCA, against Bjorck-Golub on anisotropic correlated data
  const A = gaussian(rng, n, 4).map((v, i) => v * (1 + 2 * (i % 4)));
  const B = Float64Array.from({ length: n * 3 }, (_, i) => A[Math.floor(i / 3) * 4 + (i % 3)] * 0.3 + rng.normal() * (1 + (i % 3)));
  const ours = svccaFromStats(ckaStats(A, B, 4, 3), { kept: 1 });
  const ref = cca(A, B, 4, 3);
  ours.correlations.forEach((r, k) => close(r, ref[k], 1e-8, `canonical correlation ${k}`));
  // the 99% cut drops directions: fewer kept than the width when the spectrum has a tail
  const tail = gaussian(rng, n, p).map((v, i) => (i % p === p - 1 ? v * 1e-3 : v));
  assert.is(svcca(tail, tail, p, p).kx, p - 1);
});

test('seedPairInterval: the jackknife over seeds by hand, and its coverage where pairs share seeds', () => {
  // 3 seeds: leaving seed i out leaves the one pair without it
  const r = seedPairInterval([
    { seedA: 0, seedB: 1, value: 1 },
    { seedA: 0, seedB: 2, value: 2 },
    { seedA: 1, seedB: 2, value: 4 },
  ]);
  close(r.mean, 7 / 3, 1e-12, 'mean');
  const half = studentTQuantile(0.975, 2) * Math.sqrt((2 / 3) * (42 / 9));
  close(r.interval[0], 7 / 3 - half, 1e-12, 'lo');
  close(r.interval[1], 7 / 3 + half, 1e-12, 'hi');
  assert.ok(Number.isNaN(seedPairInterval([{ seedA: 0, seedB: 1, value: 1 }]).interval[0]), 'one pair: no interval');
  // pair value = mu + u_a + u_b + e_ab with seed effects u: the truth is mu. Pairs as independent
  // units under-cover; the jackknife over seeds does not
  const rng = new Rng('pair-coverage');
  const seeds = 5,
    reps = 2000,
    mu = 0.3;
  let jack = 0,
    naive = 0;
  for (let k = 0; k < reps; k++) {
    const u = Array.from({ length: seeds }, () => rng.normal());
    const pairs = [];
    for (let i = 0; i < seeds; i++)
      for (let j = i + 1; j < seeds; j++) pairs.push({ seedA: i, seedB: j, value: mu + u[i] + u[j] + 0.3 * rng.normal() });
    const ji = seedPairInterval(pairs).interval;
    if (ji[0] <= mu && mu <= ji[1]) jack++;
    const v = pairs.map((x) => x.value);
    const nh = (studentTQuantile(0.975, v.length - 1) * std(v)) / Math.sqrt(v.length);
    if (Math.abs(mean(v) - mu) <= nh) naive++;
  }
  assert.ok(jack / reps > 0.93, `jackknife coverage ${jack / reps}`);
  assert.ok(naive / reps < 0.85, `pairs-as-units coverage ${naive / reps}`);
});

test('locateChannels: a circuit found again in a model whose channels are permuted, flipped in sign and rescaled', () => {
  const rng = new Rng('locate');
  const n = 400,
    d = 10;
  const A = gaussian(rng, n, d);
  const perm = rng.permutation(d);
  // B's channel perm[c] is A's channel c, negated for odd c and scaled, plus a little noise
  const B = new Float64Array(n * d);
  for (let r = 0; r < n; r++) for (let c = 0; c < d; c++) B[r * d + perm[c]] = (c % 2 ? -3 : 0.5) * A[r * d + c] + 0.1 * rng.normal();
  const corr = activationCorrelations(A, B, d, d);
  assert.equal(
    locateChannels(corr, [1, 4, 7]),
    [perm[1], perm[4], perm[7]].sort((x, y) => x - y),
  );
  // channels of A that share one partner give it once
  const twin = Float64Array.from({ length: n * 2 }, (_, i) => A[Math.floor(i / 2) * d]);
  assert.equal(locateChannels(activationCorrelations(twin, A, 2, d), [0, 1]), [0]);
  assert.throws(() => locateChannels(corr, [12]), /not a row/);
});

test.run();
