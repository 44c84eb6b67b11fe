// Step 8 (steps/step08-temporal.ts) on the quick run: influence maps causal, long-range claims
// per task over seeds (recomputed here from the per-model tests, long-range.json), figures present.
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { StepReport } from '../../interp/report/index.ts';
import { QUICK_OVERRIDES } from '../../steps/config.ts';
import type { LongRangeTest, SketchCheck, SourceTest, TemporalModelResult } from '../../steps/step08-temporal.ts';
import { quickRun } from '../helpers/quick-run.ts';
import { checkSeedClaim, fisher } from '../helpers/seed-claims.ts';
import { checkClaims, checkFigures, readIn } from '../helpers/step-report.ts';

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
  assert.is(
    report.claims.length,
    tasks.length + new Set(results.filter((r) => r.source).map((r) => r.task)).size,
    'a long-range claim per task, a source claim per task with a source test',
  );
  for (const task of tasks) {
    const claim = report.claims.find((c) => c.statement.startsWith(`${task} (`) && c.statement.includes('share'));
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

test('step 8: source claims per task over seeds, from the per-model Monte Carlo tests (Fisher); the sketch error measured on a prefix', async () => {
  const dir = join(await quickRun(), 'step-08-temporal');
  const report = readIn<StepReport>(dir, 'report.json');
  const sources = readIn<SourceTest[]>(dir, 'source.json');
  const results = readIn<TemporalModelResult[]>(dir, 'temporal.json');
  assert.equal(
    sources.map((t) => t.model),
    results.filter((r) => r.source).map((r) => r.label),
  );
  assert.ok(
    sources.some((t) => t.task === 'induction'),
    'the induction models have a source test',
  );
  for (const t of sources) {
    assert.ok(t.pairs > 0 && t.percentile >= 0 && t.percentile <= 1 && Number.isFinite(t.value), t.model);
    assert.is(t.p, (1 + t.ge) / (1 + t.nPerm));
  }
  for (const task of new Set(sources.map((t) => t.task))) {
    const rows = sources.filter((t) => t.task === task);
    const claim = report.claims.find((c) => c.statement.startsWith(`${task} (`) && c.statement.includes("answer's source"));
    assert.ok(claim, task);
    assert.equal(
      claim.perSeed!.map((v) => [v.model, v.value]),
      rows.map((r) => [r.model, r.value]),
    );
    assert.ok(Math.abs(claim.estimate - rows.reduce((a, r) => a + r.value, 0) / rows.length) < 1e-12);
    if (rows.length >= QUICK_OVERRIDES.claimSeeds!) {
      const want = Math.max(fisher(rows.map((r) => r.p)), fisher(rows.map((r) => r.pFloor)));
      assert.ok(Math.abs(claim.p! - want) < 1e-9 * want, `${task}: Fisher's combination`);
      for (const r of rows) assert.is(r.pFloor, 1 / (1 + r.nPerm));
      assert.is(claim.effect, claim.interval[0] > 0, `${task}: one-sided effect condition`);
    }
  }
  // induction's answers depend on their source: every quick induction model shows it
  for (const t of sources.filter((x) => x.task === 'induction')) assert.ok(t.value > 0, `${t.model}: log ratio ${t.value}`);
  // the sketch's error is measured (not bounded here: one sketch matrix serves every position, so its
  // error is largely a common scale, which the long-range share, a ratio within a map, cancels)
  const checks = readIn<SketchCheck[]>(dir, 'sketch-error.json');
  assert.is(checks.length, new Set(results.map((r) => r.task)).size, "each task's first model");
  for (const c of checks) {
    const r = results.find((x) => x.sketchCheck && x.seqLen > 0 && (c as SketchCheck & { model: string }).model === x.label)!;
    assert.ok(r, 'a model of the run');
    assert.is(c.positions, Math.min(16, r.seqLen));
    assert.is(c.error.entries, (c.positions * (c.positions + 1)) / 2, 'every causal entry of the prefix');
    assert.ok(Number.isFinite(c.error.rmsSquare) && c.error.rmsSquare > 0);
    // the sketched share of the prefix, from the map the claim used (its first example's, here the mean over examples is not it)
    assert.ok(c.longRangeSketch >= 0 && c.longRangeSketch <= 1);
    assert.ok(
      Math.abs(c.longRangeExact - c.longRangeSketch) < 0.05,
      `${r.label}: share exact ${c.longRangeExact} vs sketched ${c.longRangeSketch}`,
    );
  }
});

test.run();
