// Step 3 (steps/step03-sae.ts) on the quick run: the content of saes.json and the SAE files (metrics
// recomputed on the held-out split from the saved SAE, the SAELens scores from the recorded losses,
// the baselines at matched L0), the sweep over hooks, the figures, the claims and the top examples.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as mi from '../../engine/index.ts';
import { fisherP } from '../../interp/seeds.ts';
import type { Claim } from '../../interp/report/index.ts';
import { encodeAll, pcaBaseline, reconstructionMetrics, saeMetrics } from '../../interp/sae/index.ts';
import type { NeuronpediaBatchJson } from '../../interp/sae/dashboard.ts';
import { loadSaeLens, readSaeLensConfig, readSaeLensSparsity } from '../../interp/sae/saelens.ts';
import { loadActivations, loadCollections, loadSaeRecord, loadSaeRecords, loadTokens, SAE_DIR } from '../../steps/artefacts.ts';
import { resolveHooks } from '../../steps/hook-patterns.ts';
import { saeSplit } from '../../steps/sae-training.ts';
import type { StepContext } from '../../steps/step.ts';
import { EXPLAINED_VARIANCE_FLOOR, saeClaims, type SaeRow, type SweepRow } from '../../steps/step03-sae.ts';
import { quickRun } from '../helpers/quick-run.ts';
import { checkControlledReport, readIn } from '../helpers/step-report.ts';
import { tInterval } from '../helpers/seed-claims.ts';

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
      `${name}: held-out explained variance ${1 - r.fvu} below the floor ${EXPLAINED_VARIANCE_FLOOR}`,
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

const near = (a: number, b: number, tol = 1e-9) => Math.abs(a - b) <= tol * Math.max(1, Math.abs(b));

test("step 3: metrics are the held-out rows' (recomputed from the saved SAE), scores follow from the recorded losses, baselines at matched L0", async () => {
  const run = await quickRun();
  const rows = readIn<SaeRow[]>(join(run, SAE_DIR), 'saes.json');
  const collections = loadCollections(run);
  for (const r of rows) {
    const name = `${r.task}-s${r.seed} ${r.hook} ${r.kind}`;
    const c = collections.find((x) => x.task === r.task && x.seed === r.seed)!;
    const acts = await loadActivations(run, c, r.hook);
    const split = saeSplit(acts, c.seqLen);
    assert.is(r.trainRows + r.heldOutRows, acts.rows, `${name}: rows`);
    assert.is(r.heldOutRows, split.heldOut.rows);
    const sae = await loadSaeRecord(run, r);
    const held = await saeMetrics(sae, split.heldOut.data);
    const onTrain = await saeMetrics(sae, split.train.data);
    sae.dispose();
    assert.ok(near(r.l0, held.l0) && near(r.fvu, held.fvu, 1e-6) && near(r.deadFraction, held.deadFraction), `${name}: held-out metrics`);
    assert.ok(near(r.explainedVariance, 1 - r.fvu), `${name}: explained variance is 1 - FVU`);
    // the training rows give other numbers, so the record could not have come from them
    assert.ok(!near(onTrain.fvu, held.fvu, 1e-6), `${name}: training and held-out FVU differ`);
    assert.is(r.log10Density.length, r.latents);
    assert.is(r.log10Density.filter((v) => v <= -10 + 1e-9).length, Math.round(r.deadFraction * r.latents), `${name}: dead latents at -10`);
    // SAELens' scores from the recorded mean losses and KLs
    assert.ok(near(r.ceLossScore, (r.lossMeanAblated! - r.lossSpliced) / (r.lossMeanAblated! - r.lossClean)), `${name}: ce_loss_score`);
    assert.ok(near(r.ceLossScoreZero, (r.lossZeroAblated - r.lossSpliced) / (r.lossZeroAblated - r.lossClean)), `${name}: zero-abl.`);
    assert.ok(near(r.klDivScore, (r.klZeroAblated - r.klSpliced) / r.klZeroAblated), `${name}: kl_div_score`);
    assert.ok(r.klSpliced >= 0 && r.klZeroAblated > 0 && r.klMeanAblated > 0);
    const [lo, hi] = r.ceLossScoreInterval;
    assert.ok(lo <= r.ceLossScore && r.ceLossScore <= hi, `${name}: interval [${lo}, ${hi}]`);
    // baselines at matched L0: k = round(held-out L0), PCA fitted on the training rows and scored held out
    const k = Math.max(1, Math.round(r.l0));
    const { pca, random } = r.baselines;
    assert.is(pca.k, k);
    assert.is(random.k, k);
    assert.ok(random.l0 <= k + 1e-9 && random.l0 > k - 0.5, `${name}: random SAE L0 ${random.l0} for k ${k}`);
    const p = pcaBaseline(split.train.data, acts.dim, k);
    const ev = reconstructionMetrics(split.heldOut.data, p.reconstruct(split.heldOut.data), acts.dim).explainedVariance;
    assert.ok(near(pca.explainedVariance, ev, 1e-6), `${name}: PCA explained variance ${pca.explainedVariance} vs ${ev}`);
    for (const b of [pca, random]) {
      assert.ok(near(b.ceLossScore, (r.lossMeanAblated! - b.lossSpliced) / (r.lossMeanAblated! - r.lossClean)), `${name}: baseline score`);
    }
  }
});

test('step 3: the sweep has one sweepKind SAE per sweep hook for the first seed of each task', async () => {
  const run = await quickRun();
  const sweep = readIn<SweepRow[]>(join(run, SAE_DIR), 'sweep.json');
  const { sweepHooks } = (JSON.parse(readFileSync(join(run, 'config.json'), 'utf8')) as { sae: { sweepHooks: string[] } }).sae;
  // the quick preset's: every layer's residual stream and SSM output
  assert.equal(sweepHooks, ['blocks.{i}.hook_resid_post', 'blocks.{i}.mixer.hook_ssm_out']);
  const collections = loadCollections(run);
  const firsts = [...new Set(collections.map((c) => c.task))].map(
    (t) => collections.filter((c) => c.task === t).sort((a, b) => a.seed - b.seed)[0],
  );
  for (const c of firsts) {
    const want = resolveHooks(
      sweepHooks,
      c.hooks.map((h) => h.name),
      'test',
    );
    const got = sweep.filter((r) => r.task === c.task && r.seed === c.seed);
    assert.equal(got.map((r) => r.hook).sort(), [...want].sort(), `${c.task}: every layer's residual and SSM output`);
    for (const r of got) assert.ok(r.kind === 'topk' && Number.isFinite(r.ceLossScore) && r.baselines.pca.k >= 1);
  }
  assert.ok(
    sweep.every((r) => firsts.some((c) => c.task === r.task && c.seed === r.seed)),
    'first seeds only',
  );
});

test('step 3: report, figures, claims and top examples', async () => {
  const run = await quickRun();
  const dir = join(run, SAE_DIR);
  const report = checkControlledReport(dir);
  assert.ok(report.claims.length > 0 && report.claims.length < loadSaeRecords(run).length, 'claims over seeds: fewer than SAEs');
  assert.ok(
    ['l0-fvu', 'ce-loss-score', 'latent-correlations', 'ce-loss-score-seeds', 'feature-density', 'sweep'].every((f) =>
      existsSync(join(dir, `figures/${f}.svg`)),
    ),
  );
  const examples = JSON.parse(readFileSync(join(dir, 'examples.json'), 'utf8')) as {
    examples: { context: number[]; activation: number; position: number }[];
  }[];
  assert.ok(examples.length > 0);
  for (const e of examples) {
    for (const x of e.examples) assert.ok(x.activation > 0 && x.context.length >= 1 && x.context.length <= x.position + 1);
  }
});

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
      seeds.map((r) => [r.seed, `${task}-s${r.seed}`, r.gainOverPca, r.p]),
      `${key}: per-seed values are the SAE rows' gain in ce_loss_score over PCA at matched L0`,
    );
    for (const r of seeds) assert.ok(r.p >= r.pFloor && r.p <= 1 && r.pFloor > 0);
    const v = seeds.map((r) => r.gainOverPca);
    const n = v.length,
      m = v.reduce((a, b) => a + b, 0) / n;
    const [lo, hi] = tInterval(v);
    assert.ok(Math.abs(c.estimate - m) < 1e-12, `${key}: estimate is the mean over seeds`);
    assert.ok(Math.abs(c.interval[0] - lo) < 1e-9 && Math.abs(c.interval[1] - hi) < 1e-9, `${key}: t interval ${c.interval}`);
    assert.ok(n >= claimSeeds);
    const f = fisherP(
      seeds.map((r) => r.p),
      seeds.map((r) => r.pFloor),
    );
    assert.ok(Math.abs(c.p! - f.p) < 1e-12 && Math.abs(c.pFloor! - f.pFloor!) < 1e-15, `${key}: Fisher's p ${c.p} vs ${f.p}`);
    // the claim's quantity is the SAE's ce_loss_score minus PCA's at matched L0, each from its own splice
    for (const r of seeds)
      assert.ok(
        Math.abs(r.gainOverPca - (r.ceLossScore - r.baselines.pca.ceLossScore)) < 1e-9,
        `${key}: gain ${r.gainOverPca} vs ${r.ceLossScore} - ${r.baselines.pca.ceLossScore}`,
      );
    // p is the paired test against PCA's splice (not against mean-ablation, which every SAE beats): it
    // sides with the gain's sign on the same sequences
    for (const r of seeds) assert.ok(r.gainOverPca > 0 ? r.p < 0.5 : r.p > 0.5, `${key}: p ${r.p} against gain ${r.gainOverPca}`);
    assert.is(c.controlEstimate, 0, `${key}: the control (PCA) sits at 0 on the gain scale`);
    assert.ok(c.statement.includes('better than PCA at matched L0'), c.statement);
    assert.is(c.effect, lo > 0, `${key}: effect condition is the seeds' t interval above 0`);
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

test("step 3: each claim SAE's SAELens folder encodes as the saved SAE and gives saes.json's SAELens-named metrics", async () => {
  const run = await quickRun();
  const rows = readIn<SaeRow[]>(join(run, SAE_DIR), 'saes.json');
  const collections = loadCollections(run);
  assert.ok(rows.length > 0);
  for (const r of rows) {
    const name = `${r.task}-s${r.seed} ${r.hook} ${r.kind}`;
    const c = collections.find((x) => x.task === r.task && x.seed === r.seed)!;
    const dir = join(run, SAE_DIR, r.saelensDir);
    const cfg = await readSaeLensConfig(dir);
    assert.equal([cfg.architecture, cfg.d_sae, cfg.k], [r.kind === 'relu' ? 'standard' : 'topk', r.latents, r.k], name);
    assert.equal([cfg.metadata.hook_name, cfg.metadata.context_size], [r.hook, c.seqLen], name);
    const split = saeSplit(await loadActivations(run, c, r.hook), c.seqLen);
    const saved = await loadSaeRecord(run, r);
    const folder = await loadSaeLens(dir);
    const z0 = await encodeAll(saved, split.heldOut.data);
    const z1 = await encodeAll(folder, split.heldOut.data);
    let worst = 0;
    for (let i = 0; i < z0.length; i++) worst = Math.max(worst, Math.abs(z0[i] - z1[i]) / (1 + Math.abs(z0[i])));
    assert.ok(worst < 1e-4, `${name}: the folder's latents differ by ${worst}`);
    // the metrics SAELens would compute from the folder on the held-out rows, under its names in saes.json
    const m = await saeMetrics(folder, split.heldOut.data);
    saved.dispose();
    folder.dispose();
    const s = r.saelens;
    assert.ok(near(s.sparsity.l0, m.l0, 1e-6) && near(s.sparsity.l0, r.l0), `${name}: l0`);
    assert.ok(near(s.reconstruction_quality.explained_variance, m.explainedVariance, 1e-5), `${name}: explained_variance`);
    assert.ok(near(s.sparsity.dead_fraction, m.deadFraction), `${name}: dead fraction`);
    assert.is(s.sparsity.dead_features, Math.round(r.deadFraction * r.latents));
    assert.is(
      s.model_performance_preservation.ce_loss_score,
      r.ceLossScoreZero,
      `${name}: SAELens's ce_loss_score is the zero-ablation one`,
    );
    assert.is(s.model_behavior_preservation.kl_div_score, r.klDivScore);
    assert.equal(Array.from((await readSaeLensSparsity(dir))!), Array.from(Float32Array.from(r.log10Density)), `${name}: sparsity`);
  }
});

test("step 3: each claim SAE's dashboard batch agrees with the saved SAE on the held-out rows", async () => {
  const run = await quickRun();
  const rows = readIn<SaeRow[]>(join(run, SAE_DIR), 'saes.json');
  const collections = loadCollections(run);
  const rel = (a: number, b: number) => Math.abs(a - b) <= 1e-5 * Math.max(1e-3, Math.abs(b));
  for (const r of rows) {
    const name = `${r.task}-s${r.seed} ${r.hook} ${r.kind}`;
    assert.is(r.dashboard, `dashboards/${r.task}-s${r.seed}-${r.hook}-${r.kind}/batch-0.json`);
    const batch = JSON.parse(readFileSync(join(run, SAE_DIR, r.dashboard), 'utf8')) as NeuronpediaBatchJson;
    const c = collections.find((x) => x.task === r.task && x.seed === r.seed)!;
    const split = saeSplit(await loadActivations(run, c, r.hook), c.seqLen);
    const { inputs } = await loadTokens(run, c);
    const sae = await loadSaeRecord(run, r);
    const z = await encodeAll(sae, split.heldOut.data);
    sae.dispose();
    const L = r.latents;
    const cut = split.train.rows;
    assert.is(batch.rows, split.heldOut.rows, `${name}: rows`);
    assert.is(batch.features.length, L, `${name}: one feature per latent`);
    let withContexts = 0;
    for (const f of batch.features) {
      const col = Array.from({ length: batch.rows }, (_, i) => z[i * L + f.feature_index]);
      const active = col.filter((v) => v > 0);
      assert.ok(rel(f.frac_nonzero, active.length / batch.rows), `${name} latent ${f.feature_index}: density`);
      assert.is(
        f.freq_hist_data_bar_heights.reduce((a: number, b: number) => a + b, 0),
        active.length,
        `${name}: histogram counts every active row`,
      );
      if (!active.length) continue;
      withContexts++;
      const max = Math.max(...active);
      assert.ok(rel(f.maxActApprox, max), `${name} latent ${f.feature_index}: max ${f.maxActApprox} vs ${max}`);
      // the histogram's last bin is the one holding the max; the top context fires at the max
      assert.ok(f.freq_hist_data_bar_heights.at(-1)! >= 1);
      const top = f.activations[0];
      assert.is(top.bin_min, -1);
      assert.ok(rel(top.values[top.qualifying_token_index], max), `${name}: top context at the max`);
      const row = top.sequence * c.seqLen + top.start + top.qualifying_token_index;
      assert.ok(rel(col[row], max), `${name}: the top context's row is the max row`);
      top.token_ids.forEach((t: number, i: number) =>
        assert.is(t, inputs[cut + top.sequence * c.seqLen + top.start + i], `${name}: tokens`),
      );
      top.values.forEach((v: number, i: number) =>
        assert.ok(rel(v, col[top.sequence * c.seqLen + top.start + i]) || (v === 0 && col[top.sequence * c.seqLen + top.start + i] === 0)),
      );
      assert.ok(f.pos_str.length > 0 && f.pos_values[0] >= f.neg_values[0], `${name}: logits`);
    }
    assert.ok(withContexts > L / 4, `${name}: ${withContexts} latents with contexts`);
  }
});

test.run();
