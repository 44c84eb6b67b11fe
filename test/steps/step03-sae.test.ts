// Step 3 (steps/step03-sae.ts) on the quick run: the content of saes.json and the SAE files, the
// figures, the claims and the top examples.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as mi from '../../engine/index.ts';
import { fisherP } from '../../interp/seeds.ts';
import type { Claim } from '../../interp/report/index.ts';
import { loadCollections, loadSaeRecord, loadSaeRecords, SAE_DIR } from '../../steps/artefacts.ts';
import type { StepContext } from '../../steps/step.ts';
import { EXPLAINED_VARIANCE_FLOOR, saeClaims, type SaeRow } from '../../steps/step03-sae.ts';
import { quickRun } from '../helpers/quick-run.ts';
import { checkControlledReport, readIn } from '../helpers/step-report.ts';

mi.setBackend(mi.cpuBackend());

test('step 3: every SAE clears the explained-variance floor, with L0, dead fraction and loss recovered in range', async () => {
  const run = await quickRun();
  const recs = loadSaeRecords(run);
  assert.ok(recs.length >= 2, `${recs.length} SAEs`);
  assert.ok(new Set(recs.map((r) => r.kind)).size === 2, 'both kinds');
  const dims = new Map(loadCollections(run).flatMap((c) => c.hooks.map((h) => [`${c.task}-${c.seed}-${h.name}`, h.dim] as const)));
  for (const r of recs) {
    const name = `${r.task}-s${r.seed} ${r.hook} ${r.kind}`;
    assert.ok(
      1 - r.fvu >= EXPLAINED_VARIANCE_FLOOR,
      `${name}: explained variance ${1 - r.fvu} below the floor ${EXPLAINED_VARIANCE_FLOOR}`,
    );
    assert.ok(r.latents > dims.get(`${r.task}-${r.seed}-${r.hook}`)!, `${name}: overcomplete`);
    // quick ReLU SAEs (100 steps, L1 still settling) fire about 40% of their latents; TopK exactly k
    assert.ok(r.l0 > 0 && r.l0 <= 0.6 * r.latents, `${name}: L0 ${r.l0}`);
    if (r.kind === 'topk') assert.ok(r.l0 <= r.k! + 1e-9, `${name}: L0 ${r.l0} above k ${r.k}`);
    assert.ok(r.deadFraction >= 0 && r.deadFraction < 0.9, `${name}: dead ${r.deadFraction}`);
    assert.ok(
      Number.isFinite(r.lossRecovered) && r.lossRecovered >= -1 && r.lossRecovered <= 1.5,
      `${name}: loss recovered ${r.lossRecovered}`,
    );
    const [lo, hi] = r.lossRecoveredInterval!;
    assert.ok(lo <= r.lossRecovered && r.lossRecovered <= hi, `${name}: interval [${lo}, ${hi}]`);
    assert.ok(r.lossZeroAblated > r.lossClean, `${name}: zero-ablating the hook costs loss`);
    for (const x of [r.lossClean, r.lossSpliced, r.lossMeanAblated!]) assert.ok(Number.isFinite(x) && x > 0);
    for (const a of [r.accuracyClean!, r.accuracySpliced!]) assert.ok(a >= 0 && a <= 1);
    const vars = Object.entries(r.topLatents);
    assert.ok(vars.length >= 2, `${name}: task variables`);
    for (const [, top] of vars) {
      assert.ok(top.length > 0);
      for (const t of top) assert.ok(Number.isInteger(t.latent) && t.latent >= 0 && t.latent < r.latents && Math.abs(t.r) <= 1 + 1e-9);
      for (let i = 1; i < top.length; i++) assert.ok(Math.abs(top[i - 1].r) >= Math.abs(top[i].r));
    }
  }
  // the saved SAE loads with the recorded shape and kind
  const sae = await loadSaeRecord(run, recs[0]);
  assert.is(sae.latents, recs[0].latents);
  assert.is(sae.config.kind, recs[0].kind);
  sae.dispose();
});

test('step 3: report, figures, claims and top examples', async () => {
  const run = await quickRun();
  const dir = join(run, SAE_DIR);
  const report = checkControlledReport(dir);
  assert.ok(report.claims.length > 0 && report.claims.length < loadSaeRecords(run).length, 'claims over seeds: fewer than SAEs');
  assert.ok(
    existsSync(join(dir, 'figures/l0-fvu.svg')) &&
      existsSync(join(dir, 'figures/loss-recovered.svg')) &&
      existsSync(join(dir, 'figures/latent-correlations.svg')) &&
      existsSync(join(dir, 'figures/loss-recovered-seeds.svg')),
  );
  const examples = JSON.parse(readFileSync(join(dir, 'examples.json'), 'utf8')) as {
    examples: { context: number[]; activation: number; position: number }[];
  }[];
  assert.ok(examples.length > 0);
  for (const e of examples) {
    for (const x of e.examples) assert.ok(x.activation > 0 && x.context.length >= 1 && x.context.length <= x.position + 1);
  }
});

/** scipy.stats.t.ppf(0.975, df) for df 1..4, so the test does not lean on interp/stats' quantile. */
const T975 = [Number.NaN, 12.7062047362, 4.30265272975, 3.18244630528, 2.7764451052];

test('step 3: one claim per task x SAE kind x hook over the seeds; per-seed values, mean, t interval and Fisher p from the SAE rows', async () => {
  const run = await quickRun();
  const dir = join(run, SAE_DIR);
  const rows = readIn<SaeRow[]>(dir, 'saes.json');
  const { claims } = readIn<{ claims: Claim[] }>(dir, 'report.json');
  const groups = new Map<string, SaeRow[]>();
  for (const r of rows) groups.set(`${r.task} ${r.kind} ${r.hook}`, [...(groups.get(`${r.task} ${r.kind} ${r.hook}`) ?? []), r]);
  assert.is(claims.length, groups.size, 'one claim per task x kind x hook');
  const claimSeeds = 2; // the quick preset's
  for (const [key, rs] of groups) {
    const { task, kind, hook } = rs[0];
    const mine = claims.filter((c) => c.statement.startsWith(`On ${task} (`) && c.statement.includes(`the ${kind} SAE on ${hook} `));
    assert.is(mine.length, 1, `${key}: one claim`);
    const c = mine[0];
    const seeds = [...rs].sort((a, b) => a.seed - b.seed);
    assert.ok(seeds.length >= 2, `${key}: the quick run has two seeds a task`);
    assert.equal(
      c.perSeed!.map((v) => [v.seed, v.model, v.value, v.p]),
      seeds.map((r) => [r.seed, `${task}-s${r.seed}`, r.aboveMeanAblation, r.p]),
      `${key}: per-seed values are the SAE rows'`,
    );
    for (const r of seeds) {
      // the seed's value is the SAE's loss recovered minus mean-ablation's (same sequences)
      assert.ok(Math.abs(r.aboveMeanAblation - (r.lossRecovered - r.meanAblationRecovered!)) < 1e-9, `${key} s${r.seed}: value`);
      assert.ok(r.p >= r.pFloor && r.p <= 1 && r.pFloor > 0);
    }
    const v = seeds.map((r) => r.aboveMeanAblation);
    const n = v.length,
      m = v.reduce((a, b) => a + b, 0) / n;
    const sd = Math.sqrt(v.reduce((a, x) => a + (x - m) ** 2, 0) / (n - 1));
    const half = (T975[n - 1] * sd) / Math.sqrt(n);
    assert.ok(Math.abs(c.estimate - m) < 1e-12, `${key}: estimate is the mean over seeds`);
    assert.ok(
      Math.abs(c.interval[0] - (m - half)) < 1e-9 && Math.abs(c.interval[1] - (m + half)) < 1e-9,
      `${key}: t interval ${c.interval}`,
    );
    assert.ok(n >= claimSeeds);
    const f = fisherP(
      seeds.map((r) => r.p),
      seeds.map((r) => r.pFloor),
    );
    assert.ok(Math.abs(c.p! - f.p) < 1e-12 && Math.abs(c.pFloor! - f.pFloor!) < 1e-15, `${key}: Fisher's p ${c.p} vs ${f.p}`);
    const control = seeds.reduce((a, r) => a + r.meanAblationRecovered!, 0) / n;
    assert.ok(Math.abs(c.controlEstimate! - control) < 1e-12, `${key}: control is the mean over seeds`);
    assert.is(c.effect, m - half > 0, `${key}: effect condition is the seeds' t interval above 0`);
  }
});

test('step 3: a task with fewer than claimSeeds seeds is stated without a p-value', async () => {
  const run = await quickRun();
  const rows = readIn<SaeRow[]>(join(run, SAE_DIR), 'saes.json');
  const config = { claimSeeds: 3, permutations: 65535, sae: { evalSequences: 32, seeds: 2 } };
  const { claims, points } = saeClaims(
    { config } as unknown as StepContext,
    rows,
    new Map([
      ['induction', 2],
      ['selective-copying', 2],
    ]),
  );
  assert.ok(claims.length > 0);
  for (const c of claims) {
    assert.is(c.p, undefined, c.statement);
    assert.ok(c.test.includes('a claim needs 3'), c.test);
    assert.is(c.perSeed!.length, 2);
  }
  // one figure row per seed, and the mean per claim
  assert.is(points.filter((p) => p.what === 'seed').length, rows.length);
  // one seed: the claim keeps that seed's own interval, no p
  const one = saeClaims(
    { config } as unknown as StepContext,
    rows.filter((r) => r.seed === 0),
    new Map([['induction', 2]]),
  );
  for (const c of one.claims) {
    assert.is(c.perSeed!.length, 1);
    assert.ok(Number.isFinite(c.interval[0]) && c.p === undefined && !c.effect, c.statement);
  }
});

test.run();
