// Step 8 (steps/step08-temporal.ts) on the quick run: influence maps causal, long-range claims
// per task over seeds (recomputed here from the per-model tests, long-range.json), figures present.
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Claim, StepReport } from '../../interp/report/index.ts';
import { QUICK_OVERRIDES } from '../../steps/config.ts';
import type { LongRangeTest, TemporalModelResult } from '../../steps/step08-temporal.ts';
import { quickRun } from '../helpers/quick-run.ts';
import { checkClaims, checkFigures, readIn } from '../helpers/step-report.ts';

/** Student's t quantile at 0.975 for 1..4 degrees of freedom (scipy.stats.t.ppf). */
const T975 = [Number.NaN, 12.706204736174698, 4.302652729749464, 3.182446305284263, 2.7764451051977934];

/** The 95% t interval of a mean over seeds, computed here independently of interp/seeds.ts. */
function tInterval(xs: number[]): [number, number] {
  const n = xs.length,
    m = xs.reduce((a, b) => a + b, 0) / n;
  const sd = Math.sqrt(xs.reduce((a, x) => a + (x - m) ** 2, 0) / (n - 1));
  const h = (T975[n - 1] * sd) / Math.sqrt(n);
  return [m - h, m + h];
}

/** Fisher's combination in closed form: with q the product of the k p-values, p = q sum_{j<k} (-ln q)^j / j!. */
function fisher(ps: number[]): number {
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
function checkSeedClaim(
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

test('step 8: causal influence maps, long-range share in [0, 1] with interval and control', async () => {
  const dir = join(await quickRun(), 'step-08-temporal');
  const results = readIn<TemporalModelResult[]>(dir, 'temporal.json');
  assert.ok(results.length >= 1);
  for (const r of results) {
    assert.is(r.maxAcausal, 0, `${r.label}: influence above the diagonal`);
    for (const m of [...r.residual.map((x) => x.map), ...r.state.map((x) => x.map), ...r.hiddenAttention.map((x) => x.meanAbs)]) {
      assert.is(m.length, r.seqLen);
      m.forEach((row, t) =>
        row.forEach((v, s) => {
          assert.ok(Number.isFinite(v));
          if (s > t) assert.is(v, 0);
        }),
      );
      assert.ok(m[r.seqLen - 1][r.seqLen - 1] > 0, 'the diagonal carries influence');
    }
    for (const v of [...r.longRange.task, ...r.longRange.random]) assert.ok(v >= 0 && v <= 1);
  }
  const report = readIn<StepReport>(dir, 'report.json');
  checkFigures(dir, report, { minChars: 1000 });
  // the quick run's gate-passing seeds, the first temporal.seeds of each task
  const tasks = [...new Set(results.map((r) => r.task))];
  for (const t of tasks) assert.ok(results.filter((r) => r.task === t).length <= QUICK_OVERRIDES.temporal!.seeds!, t);
  assert.ok(
    results.some((r) => r.seed > 0),
    'more than the first seed',
  );
  const tests = readIn<LongRangeTest[]>(dir, 'long-range.json');
  assert.equal(
    tests.map((t) => t.model),
    results.map((r) => r.label),
  );
  for (const [i, t] of tests.entries()) {
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    assert.ok(
      Math.abs(t.taskShare - mean(results[i].longRange.task)) < 1e-12 &&
        Math.abs(t.randomShare - mean(results[i].longRange.random)) < 1e-12,
    );
    assert.ok(Math.abs(t.difference - (t.taskShare - t.randomShare)) < 1e-12);
  }
  assert.is(report.claims.length, tasks.length, 'one claim per task');
  for (const task of tasks) {
    const claim = report.claims.find((c) => c.statement.startsWith(`${task} (`));
    assert.ok(claim, task);
    const rows = tests.filter((t) => t.task === task);
    checkSeedClaim(
      claim,
      rows.map((t) => ({ model: t.model, seed: t.seed, value: t.difference, p: t.p, pFloor: t.pFloor })),
      QUICK_OVERRIDES.claimSeeds!,
      task,
    );
    if (rows.length >= 2) assert.is(claim.effect, claim.interval[0] > 0 || claim.interval[1] < 0, `${task}: two-sided effect condition`);
    assert.ok(Math.abs(claim.controlEstimate! - rows.reduce((a, t) => a + t.randomShare, 0) / rows.length) < 1e-12);
  }
  checkClaims({ ...report, claims: report.claims.filter((c) => c.p !== undefined) });
});

test.run();
