// Step 3 (steps/step03-sae.ts) on the quick run: the content of saes.json and the SAE files, the
// figures, the claims and the top examples.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as mi from '../../engine/index.ts';
import { loadCollections, loadSaeRecord, loadSaeRecords, SAE_DIR } from '../../steps/artefacts.ts';
import { EXPLAINED_VARIANCE_FLOOR } from '../../steps/step03-sae.ts';
import { quickRun } from '../helpers/quick-run.ts';
import { checkControlledReport } from '../helpers/step-report.ts';

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

test.run();
