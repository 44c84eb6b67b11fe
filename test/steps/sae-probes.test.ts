// Steps 3 (SAEs) and 4 (sparse probes) on the quick run: the content of saes.json, probes.json,
// the SAE files, the figures and the claims.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as mi from '../../engine/index.ts';
import type { StepReport } from '../../interp/report/index.ts';
import { loadCollections, loadProbeRecords, loadSaeRecord, loadSaeRecords, PROBES_DIR, SAE_DIR } from '../../steps/artefacts.ts';
import { EXPLAINED_VARIANCE_FLOOR } from '../../steps/step03-sae.ts';
import { quickRun } from '../helpers/quick-run.ts';

mi.setBackend(mi.cpuBackend());

function checkReport(dir: string): StepReport {
  const report = JSON.parse(readFileSync(join(dir, 'report.json'), 'utf8')) as StepReport;
  assert.ok(report.summary.length > 0);
  assert.ok(report.figures.length >= 2, 'figures');
  for (const f of report.figures) {
    const svg = readFileSync(join(dir, f.file), 'utf8');
    assert.ok(svg.startsWith('<svg') && svg.length > 1000 && svg.includes('<path'), `${f.file} is a non-empty SVG`);
  }
  assert.ok(report.claims.length > 0, 'claims');
  for (const c of report.claims) {
    assert.ok(c.test.length > 0 && c.control.length > 0, `claim "${c.statement}" names its test and control`);
    assert.ok(
      c.interval[0] <= c.estimate + 1e-12 && c.estimate <= c.interval[1] + 1e-12,
      `claim "${c.statement}": interval [${c.interval}] around ${c.estimate}`,
    );
    assert.ok(c.p! > 0 && c.p! <= 1 && Number.isFinite(c.controlEstimate));
  }
  return report;
}

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
  const report = checkReport(dir);
  assert.is(report.claims.length, loadSaeRecords(run).length, 'one claim per SAE');
  assert.ok(
    existsSync(join(dir, 'figures/l0-fvu.svg')) &&
      existsSync(join(dir, 'figures/loss-recovered.svg')) &&
      existsSync(join(dir, 'figures/latent-correlations.svg')),
  );
  const examples = JSON.parse(readFileSync(join(dir, 'examples.json'), 'utf8')) as {
    examples: { context: number[]; activation: number; position: number }[];
  }[];
  assert.ok(examples.length > 0);
  for (const e of examples) {
    for (const x of e.examples) assert.ok(x.activation > 0 && x.context.length >= 1 && x.context.length <= x.position + 1);
  }
});

test('step 4: probes held-out scores in range, selected dims valid, the induction trigger probe beats its control', async () => {
  const run = await quickRun();
  const probes = loadProbeRecords(run);
  assert.ok(probes.length > 0);
  const saes = loadSaeRecords(run);
  const collections = loadCollections(run);
  assert.ok(
    probes.some((p) => p.features === 'sae'),
    'probes on SAE latents',
  );
  for (const p of probes) {
    const name = `${p.task}-s${p.seed} ${p.hook} ${p.features} ${p.variable}`;
    if (p.metric === 'accuracy') {
      assert.is(p.kind, 'logistic');
      assert.ok(p.heldOut >= 0 && p.heldOut <= 1 && p.control! >= 0 && p.control! <= 1, name);
      assert.ok(p.chance >= 0.5 && p.chance <= 1, `${name}: chance ${p.chance}`);
    } else {
      assert.ok(p.kind === 'lasso' || p.kind === 'elasticnet');
      assert.ok(p.heldOut <= 1 && Number.isFinite(p.heldOut) && p.control! <= 1, name);
    }
    assert.ok(p.interval![0] <= p.heldOut && p.heldOut <= p.interval![1], `${name}: interval`);
    const cols =
      p.features === 'activations'
        ? collections.find((c) => c.task === p.task && c.seed === p.seed)!.hooks.find((h) => h.name === p.hook)!.dim
        : saes.find((s) => s.task === p.task && s.seed === p.seed && s.hook === p.hook && s.kind === p.saeKind)!.latents;
    assert.is(p.coefficients.length, p.selected.length);
    for (let i = 0; i < p.selected.length; i++) {
      assert.ok(Number.isInteger(p.selected[i]) && p.selected[i] >= 0 && p.selected[i] < cols, `${name}: dim ${p.selected[i]} of ${cols}`);
      assert.ok(p.coefficients[i] !== 0 && Number.isFinite(p.coefficients[i]));
      if (i) assert.ok(p.selected[i] > p.selected[i - 1]);
    }
  }
  const trigger = probes.filter((p) => p.task === 'induction' && p.variable === 'isTrigger' && p.features === 'activations');
  assert.ok(trigger.length > 0, 'induction isTrigger probes');
  for (const p of trigger) {
    assert.ok(
      p.heldOut > p.control! && p.interval![0] > p.controlInterval![1],
      `isTrigger ${p.hook} s${p.seed}: ${p.heldOut} vs control ${p.control}`,
    );
    assert.ok(p.heldOut > 0.8 && p.selected.length > 0);
  }
  checkReport(join(run, PROBES_DIR));
});

test.run();
