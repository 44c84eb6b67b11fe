// Step 7 (steps/step07-perturb.ts) on the quick run: noise curves starting at 0, with ordered
// bands, at three granularities; claims per task x granularity over seeds, their numbers recomputed
// here from the per-model rank tests (tests.json); figures.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { StepReport } from '../../interp/report/index.ts';
import { QUICK_OVERRIDES } from '../../steps/config.ts';
import type { PerturbTest } from '../../steps/step07-perturb.ts';
import { quickRun } from '../helpers/quick-run.ts';
import { tInterval } from '../helpers/seed-claims.ts';
import { checkFigures, inOrder, readIn } from '../helpers/step-report.ts';

test('step 7: noise curves start at 0 for scale 0 and have ordered bands, at three granularities', async () => {
  const dir = join(await quickRun(), 'step-07-perturb');
  const points = readIn<
    {
      granularity: string;
      which: string;
      scale: number;
      accuracyDrop: number;
      kl: number;
      klCI: [number, number];
      accuracyDropCI: [number, number];
    }[]
  >(dir, 'curves.json');
  for (const g of ['channel', 'state', 'position'])
    for (const w of ['circuit', 'control']) {
      assert.ok(
        points.some((p) => p.granularity === g && p.which === w),
        `${g} ${w}`,
      );
    }
  for (const p of points) {
    if (p.scale === 0) {
      assert.is(p.kl, 0);
      assert.is(p.accuracyDrop, 0);
    }
    assert.ok(p.kl >= 0 && inOrder(p.klCI[0], p.kl, p.klCI[1]) && inOrder(p.accuracyDropCI[0], p.accuracyDrop, p.accuracyDropCI[1]));
  }
  const report = readIn<StepReport>(dir, 'report.json');
  assert.ok(report.claims.every((c) => (c.p === undefined || (c.p > 0 && c.p <= 1)) && c.control));
  checkFigures(dir, report);
  assert.ok(existsSync(join(dir, 'tests.json')));
  // each claim ranks the circuit among its matched controls: the rank p-value, recomputed here
  const tests = readIn<{ granularity: string; c: { estimate: number; controls: number[]; p: number; pFloor: number } }[]>(
    dir,
    'tests.json',
  );
  assert.ok(tests.length > 0);
  for (const t of tests) {
    assert.is(t.c.controls.length, QUICK_OVERRIDES.perturb!.controls!, t.granularity);
    assert.is(t.c.p, (1 + t.c.controls.filter((v) => v >= t.c.estimate).length) / (1 + t.c.controls.length));
    assert.is(t.c.pFloor, 1 / (1 + t.c.controls.length));
  }
});

/** P(sum of independent uniform ranks <= observed), by enumerating every combination of ranks. */
function sumOfRanksByEnumeration(ranks: { ge: number; n: number }[]): number {
  const observed = ranks.reduce((a, r) => a + r.ge, 0);
  let hits = 0,
    total = 0;
  const walk = (i: number, sum: number) => {
    if (i === ranks.length) {
      total++;
      if (sum <= observed) hits++;
      return;
    }
    for (let g = 0; g <= ranks[i].n; g++) walk(i + 1, sum + g);
  };
  walk(0, 0);
  return hits / total;
}

test('step 7: one claim per task x granularity over seeds, recomputed from the per-model tests', async () => {
  const dir = join(await quickRun(), 'step-07-perturb');
  const tests = readIn<PerturbTest[]>(dir, 'tests.json');
  const report = readIn<StepReport>(dir, 'report.json');
  const keys = [...new Set(tests.map((t) => `${t.task} ${t.granularity}`))];
  assert.is(report.claims.length, keys.length, 'one claim per task x granularity');
  const minSeeds = QUICK_OVERRIDES.claimSeeds!;
  for (const key of keys) {
    const [task, g] = key.split(' ');
    const perModel = tests.filter((t) => t.task === task && t.granularity === g);
    const claim = report.claims.find((c) => c.statement.startsWith(`${task} (`) && c.statement.includes(`(${g} granularity)`));
    assert.ok(claim, key);
    // one seed per model, each the model's circuit minus mean control
    assert.equal(
      claim.perSeed!.map((v) => [v.model, v.value, v.p]),
      perModel.map((t) => [t.model, t.c.estimate - t.c.control, t.c.p]),
      key,
    );
    assert.ok(new Set(perModel.map((t) => t.seed)).size === perModel.length, `${key}: a model per seed`);
    const values = perModel.map((t) => t.c.difference);
    assert.ok(Math.abs(claim.estimate - values.reduce((a, b) => a + b, 0) / values.length) < 1e-12, `${key}: mean over seeds`);
    if (values.length >= 2) {
      const [lo, hi] = tInterval(values);
      assert.ok(Math.abs(claim.interval[0] - lo) < 1e-9 && Math.abs(claim.interval[1] - hi) < 1e-9, `${key}: t interval over seeds`);
      assert.is(claim.effect, lo > 0, `${key}: effect = t interval above 0`);
    } else assert.not.ok(claim.effect);
    if (perModel.length >= minSeeds) {
      const ranks = perModel.map((t) => ({ ge: t.c.controls.filter((v) => v >= t.c.estimate).length, n: t.c.controls.length }));
      assert.ok(Math.abs(claim.p! - sumOfRanksByEnumeration(ranks)) < 1e-12, `${key}: p ${claim.p} = sum-of-ranks`);
      assert.ok(Math.abs(claim.pFloor! - ranks.reduce((a, r) => a / (r.n + 1), 1)) < 1e-15, `${key}: floor`);
    } else {
      assert.is(claim.p, undefined, `${key}: fewer than ${minSeeds} seeds, no p`);
      assert.ok(claim.test.includes('only'), claim.test);
    }
    const ctl = perModel.reduce((a, t) => a + t.c.control, 0) / perModel.length;
    assert.ok(Math.abs(claim.controlEstimate! - ctl) < 1e-12, `${key}: control = mean over seeds`);
  }
});

test.run();
