import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Rng } from '../../engine/random.ts';
import {
  assignmentCost,
  ckaFromStats,
  ckaStats,
  cosineMatrix,
  hungarian,
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
  // a random orthogonal matrix from Gram-Schmidt on Gaussian columns
  const Q = Array.from({ length: p }, () => Array.from({ length: p }, () => rng.normal()));
  for (let i = 0; i < p; i++) {
    for (let k = 0; k < i; k++) {
      const dot = Q[i].reduce((s, v, j) => s + v * Q[k][j], 0);
      Q[i] = Q[i].map((v, j) => v - dot * Q[k][j]);
    }
    const norm = Math.hypot(...Q[i]);
    Q[i] = Q[i].map((v) => v / norm);
  }
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

test.run();
