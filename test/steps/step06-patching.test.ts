// Step 6 (steps/step06-patching.ts) on the quick run: patching effects with ordered intervals and
// p-values, next to their controls; claims and figures.
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { ControlTest } from '../../interp/controls.ts';
import { QUICK_OVERRIDES } from '../../steps/config.ts';
import { fmt, type StepReport } from '../../interp/report/index.ts';
import { quickRun } from '../helpers/quick-run.ts';
import { checkFigures, inOrder, readIn } from '../helpers/step-report.ts';
import { T975 } from '../helpers/seed-claims.ts';
import { readFileSync } from 'node:fs';
import { pearson } from '../../interp/attribution.ts';
import { attributionSweep, patchSweep } from '../../interp/patch-sweep.ts';
import { loadPretrained } from '../../mamba/pretrained.ts';
import type { SweepPair } from '../../steps/step06-patching.ts';

/** P(sum of independent uniform ranks <= the observed sum), by enumerating every combination. */
function sumOfRanksByEnumeration(ranks: { ge: number; n: number }[]): { p: number; floor: number } {
  const observed = ranks.reduce((s, r) => s + r.ge, 0);
  let below = 0,
    total = 0;
  const walk = (i: number, sum: number) => {
    if (i === ranks.length) {
      total++;
      if (sum <= observed) below++;
      return;
    }
    for (let g = 0; g <= ranks[i].n; g++) walk(i + 1, sum + g);
  };
  walk(0, 0);
  return { p: below / total, floor: ranks.reduce((f, r) => f / (r.n + 1), 1) };
}

test('step 6: effects with ordered intervals, p in [0, 1], controls present, claims with test/interval/control', async () => {
  const dir = join(await quickRun(), 'step-06-patching');
  const rows = readIn<
    {
      model: string;
      seed: number;
      circuit: string;
      task: string;
      kind: string;
      source: string;
      effect: string;
      controls: number;
      comparison: ControlTest;
    }[]
  >(dir, 'effects.json');
  assert.ok(rows.length > 0);
  for (const effect of ['zero ablation', 'mean ablation', 'resample ablation', 'clean patch'])
    assert.ok(
      rows.some((r) => r.effect === effect),
      effect,
    );
  assert.ok(
    rows.some((r) => r.circuit.includes('state') && r.effect === 'clean patch'),
    'the SSM state is patched',
  );
  for (const r of rows) {
    const c = r.comparison;
    assert.ok(r.controls > 0);
    assert.ok(inOrder(c.interval[0], c.estimate, c.interval[1]), `${r.circuit} ${r.effect}: estimate in its interval`);
    assert.ok(inOrder(c.controlInterval[0], c.control, c.controlInterval[1]));
    assert.ok(inOrder(c.differenceInterval[0], c.difference, c.differenceInterval[1]));
    // the rank p-value, recomputed from the control distribution the step wrote
    const want = ['zero ablation', 'resample ablation'].includes(r.effect)
      ? QUICK_OVERRIDES.patching!.tableControls!
      : QUICK_OVERRIDES.patching!.controls!;
    assert.is(c.controls.length, want, `${r.circuit} ${r.effect}: every matched control measured`);
    assert.is(r.controls, want);
    assert.is(c.p, (1 + c.controls.filter((v) => v >= c.estimate).length) / (1 + c.controls.length), `${r.circuit} ${r.effect}: rank p`);
    assert.is(c.pFloor, 1 / (1 + c.controls.length));
  }
  // a resample ablation that never resamples (rolledBatch shift ignored) measures 0 for every set (up
  // to 1e-8 where a state hook splits the scan); resampling from another sequence moves the loss
  const resample = rows.filter((r) => r.effect === 'resample ablation');
  const moved = (v: number) => Math.abs(v) > 1e-4;
  assert.ok(
    resample.some((r) => moved(r.comparison.estimate) && r.comparison.controls.some(moved)),
    `resample ablation changes the loss: ${resample.map((r) => r.comparison.estimate).join(', ')}`,
  );
  const report = readIn<StepReport>(dir, 'report.json');
  assert.ok(report.claims.length > 0);
  for (const c of report.claims) {
    assert.ok(c.test && c.control && c.interval[0] <= c.interval[1] && c.controlEstimate !== undefined && c.p !== undefined);
    // raw combined p, its floor and the effect condition, for the run-wide correction (step 13)
    assert.ok(c.pFloor! > 0 && c.p! >= c.pFloor! && c.condition && typeof c.effect === 'boolean', c.statement);
  }
  // claims over seeds: one per task x circuit kind x claimed effect, recomputed here from the
  // per-model rows (circuit minus mean control per seed; t interval; exact sum of ranks)
  const claimed = rows.filter((r) => ['mean ablation', 'clean patch'].includes(r.effect));
  const name = (r: (typeof rows)[number]) => `${r.source}-${r.kind}`;
  const keys = [...new Set(claimed.map((r) => `${r.task}|${name(r)}|${r.effect}`))];
  assert.is(report.claims.length, keys.length, 'one claim per task x circuit x effect');
  const perTask = readIn<
    { task: string; circuit: string; effect: string; controlMean: number; summary: { perSeed: { model: string }[] } }[]
  >(dir, 'claims.json');
  assert.is(perTask.length, keys.length);
  for (const key of keys) {
    const [task, circuit, effect] = key.split('|');
    const rs = claimed.filter((r) => r.task === task && name(r) === circuit && r.effect === effect);
    const models = new Set(rows.filter((r) => r.task === task).map((r) => r.model));
    assert.is(rs.length, models.size, `${key}: one row per patched seed`);
    assert.ok(rs.length >= QUICK_OVERRIDES.claimSeeds!, `${key}: at least claimSeeds seeds`);
    const claim = report.claims.find((c) => c.statement.startsWith(`${task}, ${circuit} circuit`) && c.statement.includes(`: ${effect} `));
    assert.ok(claim, key);
    assert.equal(
      claim!.perSeed!.map((v) => [v.model, v.value, v.p]),
      rs.map((r) => [r.model, r.comparison.difference, r.comparison.p]),
      `${key}: per-seed values are the per-model differences`,
    );
    const values = rs.map((r) => r.comparison.difference);
    const m = values.reduce((a, b) => a + b, 0) / values.length;
    assert.ok(Math.abs(claim!.estimate - m) < 1e-12, `${key}: estimate = mean over seeds`);
    const sd = Math.sqrt(values.reduce((a, v) => a + (v - m) ** 2, 0) / (values.length - 1));
    const half = (T975[values.length - 1] * sd) / Math.sqrt(values.length);
    assert.ok(Math.abs(claim!.interval[0] - (m - half)) < 1e-9 && Math.abs(claim!.interval[1] - (m + half)) < 1e-9, `${key}: t interval`);
    const ranks = rs.map((r) => ({
      ge: r.comparison.controls.filter((v) => v >= r.comparison.estimate).length,
      n: r.comparison.controls.length,
    }));
    const want = sumOfRanksByEnumeration(ranks);
    assert.ok(Math.abs(claim!.p! - want.p) < 1e-12 && Math.abs(claim!.pFloor! - want.floor) < 1e-15, `${key}: p ${claim!.p} vs ${want.p}`);
    const ctl = rs.map((r) => r.comparison.control).reduce((a, b) => a + b, 0) / rs.length;
    assert.ok(Math.abs(claim!.controlEstimate! - ctl) < 1e-12, `${key}: control = mean over seeds of the mean control`);
    assert.is(claim!.effect, claim!.interval[0] > 0, `${key}: effect condition over seeds`);
    const pt = perTask.find((c) => c.task === task && c.circuit === circuit && c.effect === effect)!;
    assert.equal(
      pt.summary.perSeed.map((v) => v.model),
      rs.map((r) => r.model),
    );
  }
  // the key claim is the one the config names, first, whatever the results
  const kc = { task: 'induction', hook: 'resid', source: 'attribution', effect: 'clean patch' };
  const key = rows.find((r) => r.task === kc.task && r.kind === kc.hook && r.source === kc.source && r.effect === kc.effect)!;
  assert.ok(key, 'the named key claim was measured');
  assert.ok(report.claims[0].statement.startsWith('induction, attribution-resid circuit'), report.claims[0].statement);
  assert.ok(report.claims[0].statement.includes(': clean patch '), report.claims[0].statement);
  assert.match(report.summary, /Key claim \(named in the config\)/);
  for (const r of rows.filter((r) => r.task === kc.task && r.kind === kc.hook && r.source === kc.source && r.effect === kc.effect))
    assert.ok(report.summary.includes(r.model), `the summary gives ${r.model}'s value`);
  checkFigures(dir, report);
});

test('step 6: the AtP-against-patching figure shows the two sweeps of each induction model, with their Pearson r', async () => {
  const run = await quickRun();
  const dir = join(run, 'step-06-patching');
  const sweeps = readIn<SweepPair[]>(dir, 'sweeps.json');
  const report = readIn<StepReport>(dir, 'report.json');
  // one pair per gate-passing induction model: the models step 6 patched
  const effects = readIn<{ model: string; task: string }[]>(dir, 'effects.json');
  const induction = [...new Set(effects.filter((r) => r.task === 'induction').map((r) => r.model))];
  assert.ok(induction.length > 0, 'an induction model learned the task');
  assert.equal(
    sweeps.map((p) => p.model),
    induction,
  );
  const table = report.tables.find((t) => t.title.startsWith('Attribution patching against activation patching'))!;
  assert.ok(table, 'the correlation table');
  for (const [k, p] of sweeps.entries()) {
    const real = p.patching.values.flat(),
      atp = p.atp.values.flat();
    assert.is(real.length, p.patching.hooks.length * p.patching.positions);
    assert.ok(real.every(Number.isFinite) && atp.every(Number.isFinite));
    // r is the Pearson correlation of the two grids, in sweeps.json, the table and the figure's title
    assert.is(p.r, pearson(real, atp));
    assert.is(table.rows[k][0], p.model);
    assert.is(table.rows[k][3], p.r);
    const fig = report.figures.find((f) => f.file === `figures/atp-vs-patching-${p.model}.svg`)!;
    assert.ok(fig, `${p.model}: the figure is in the report`);
    const svg = readFileSync(join(dir, fig.file), 'utf8');
    assert.ok(svg.includes(`Pearson r ${fmt(p.r)}`), `${p.model}: r in the title`);
    // the figure's points are the cells of the two sweeps (Vega writes each point's fields in its aria-label)
    const points = [
      ...svg.matchAll(/aria-label="activation patching \(normalised\): ([^;]+); attribution patching \(normalised\): ([^;]+);/g),
      // Vega writes negative numbers with a minus sign, U+2212
    ].map((m) => [m[1], m[2]].map((v) => Number(v.replace('\u2212', '-'))));
    assert.is(points.length, real.length, `${p.model}: one point per cell`);
    // each cell matched to its own point (the labels are rounded)
    const near = (a: number, b: number) => Math.abs(a - b) <= 1e-9 + 1e-6 * Math.abs(b);
    const unused = new Set(points.keys());
    real.forEach((x, i) => {
      const hit = [...unused].find((q) => near(points[q][0], x) && near(points[q][1], atp[i]));
      assert.ok(hit !== undefined, `${p.model} cell ${i}: no point at (${x}, ${atp[i]})`);
      unused.delete(hit!);
    });
    // the corruption changes each sequence's answer, and the ids only where the copied token sat
    for (const [e, ids] of p.clean.entries()) {
      assert.is(ids.length, p.patching.positions);
      assert.ok(p.diff.a[e] !== p.diff.b[e], `${p.model} sequence ${e}: clean and corrupted answers differ`);
      assert.ok(
        ids.some((v, t) => v !== p.corrupted[e][t]),
        `${p.model} sequence ${e}: the corrupted ids differ`,
      );
    }
  }
  // the grids are what the library's sweeps give on those sequences (first model; a few seconds)
  const p = sweeps[0];
  const model = await loadPretrained(join(run, 'step-01-train', 'models', p.model));
  try {
    const real = await patchSweep(model, p.clean, p.corrupted, p.diff, p.patching.hooks);
    const atp = await attributionSweep(model, p.clean, p.corrupted, p.diff, p.atp.hooks);
    const close = (a: number[][], b: number[][], what: string) =>
      a.forEach((r, i) =>
        r.forEach((v, t) => assert.ok(Math.abs(v - b[i][t]) < 1e-9, `${what} ${p.patching.hooks[i]} ${t}: ${v} vs ${b[i][t]}`)),
      );
    close(real.values, p.patching.values, 'patching');
    close(atp.values, p.atp.values, 'AtP');
  } finally {
    model.dispose();
  }
});

test.run();
