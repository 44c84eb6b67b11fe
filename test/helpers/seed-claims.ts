// Claims over seeds (interp/seeds.ts) checked against the per-model rows they rest on, computed
// here independently of interp/seeds.ts: scipy's t quantiles, the t interval, Fisher's combination
// in closed form. Shared by the step tests of steps 3-9.
import * as assert from 'uvu/assert';
import type { Claim } from '../../interp/report/index.ts';

/** Student's t quantile at 0.975 for 1..4 degrees of freedom (scipy.stats.t.ppf). */
export const T975 = [Number.NaN, 12.706204736174698, 4.302652729749464, 3.182446305284263, 2.7764451051977934];

/** The 95% t interval of a mean over seeds, computed here independently of interp/seeds.ts. */
export function tInterval(xs: number[]): [number, number] {
  const n = xs.length,
    m = xs.reduce((a, b) => a + b, 0) / n;
  const sd = Math.sqrt(xs.reduce((a, x) => a + (x - m) ** 2, 0) / (n - 1));
  const h = (T975[n - 1] * sd) / Math.sqrt(n);
  return [m - h, m + h];
}

/** Fisher's combination in closed form: with q the product of the k p-values, p = q sum_{j<k} (-ln q)^j / j!. */
export function fisher(ps: number[]): number {
  const q = ps.reduce((a, b) => a * b, 1),
    x = -Math.log(q);
  let term = 1,
    sum = 1;
  for (let j = 1; j < ps.length; j++) {
    term *= x / j;
    sum += term;
  }
  return Math.min(1, q * sum);
}

/**
 * A claim over seeds against the per-model rows it rests on: one seed per row (model, value, p),
 * estimate the mean of the values, interval the t interval over seeds, p Fisher's combination of
 * the rows' p (floors likewise) with at least `minSeeds` seeds, else no p and the test saying so.
 */
export function checkSeedClaim(
  claim: Claim,
  rows: { model: string; seed: number; value: number; p: number; pFloor: number }[],
  minSeeds: number,
  what: string,
): void {
  assert.equal(
    claim.perSeed!.map((v) => [v.model, v.value, v.p]),
    rows.map((r) => [r.model, r.value, r.p]),
    `${what}: per-seed values are the per-model rows`,
  );
  assert.is(new Set(rows.map((r) => r.seed)).size, rows.length, `${what}: a model per seed`);
  const values = rows.map((r) => r.value);
  assert.ok(Math.abs(claim.estimate - values.reduce((a, b) => a + b, 0) / values.length) < 1e-12, `${what}: mean over seeds`);
  if (values.length >= 2) {
    const [lo, hi] = tInterval(values);
    assert.ok(Math.abs(claim.interval[0] - lo) < 1e-9 && Math.abs(claim.interval[1] - hi) < 1e-9, `${what}: t interval over seeds`);
  }
  if (rows.length >= minSeeds) {
    const p = Math.max(fisher(rows.map((r) => r.p)), fisher(rows.map((r) => r.pFloor)));
    assert.ok(Math.abs(claim.p! - p) < 1e-9 * p, `${what}: p ${claim.p} vs Fisher ${p}`);
    assert.ok(Math.abs(claim.pFloor! - fisher(rows.map((r) => r.pFloor))) < 1e-9 * claim.pFloor!, `${what}: floor`);
  } else {
    assert.is(claim.p, undefined, `${what}: fewer than ${minSeeds} seeds, no p`);
    assert.ok(claim.test.includes('only'), claim.test);
    assert.not.ok(claim.effect);
  }
}
