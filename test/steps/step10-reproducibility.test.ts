// Step 10 (steps/step10-reproducibility.ts) on the quick run: cross-seed reproducibility (SAE
// matching, CKA, circuit overlap), checked for content: CKA of a model with itself is 1, fractions
// in [0, 1], intervals ordered, figures present, claims complete.
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { loadTrainedModels } from '../../steps/artefacts.ts';
import { quickRun } from '../helpers/quick-run.ts';
import { assertInInterval, assertInUnit, checkOrderedReport, readIn } from '../helpers/step-report.ts';

interface Repro {
  threshold: number;
  sae: {
    task: string;
    shared: number;
    sharedInterval: number[];
    control: number;
    controlInterval: number[];
    cosines: number[];
    latents: number;
  }[];
  cka: (
    | { task: string; layer: number; cka: number; interval: number[]; control: number; controlInterval: number[]; self: number }
    | { task: string; matrix: number[][] }
  )[];
  circuits: { channelJaccard: number; interval: number[]; control: number; positionJaccard: number }[];
}

test('step 10: shared latents, CKA (self = 1) and circuit overlap across seeds', async () => {
  const dir = join(await quickRun(), 'step-10-reproducibility');
  const r = readIn<Repro>(dir, 'reproducibility.json');
  // a seed pair for each task with two seeds past the learning gate (steps/models.ts)
  const passed = loadTrainedModels(await quickRun()).filter((m) => m.passed);
  const paired = new Set(passed.filter((m) => m.seed === 1).map((m) => m.task));
  assert.ok(paired.size >= 1 && r.sae.length >= paired.size, `a seed pair per task: ${r.sae.length} for ${[...paired]}`);
  for (const s of r.sae) {
    assertInUnit(s.shared, 'shared fraction');
    assertInUnit(s.control, 'control fraction');
    assertInInterval(s.sharedInterval, s.shared, `${s.task} shared`);
    assertInInterval(s.controlInterval, s.control, `${s.task} control`);
    assert.is(s.cosines.length, s.latents, 'one matched cosine per latent');
    assert.ok(s.cosines.every((c) => c >= -1 - 1e-6 && c <= 1 + 1e-6));
  }
  const layers = r.cka.filter((x): x is Extract<Repro['cka'][number], { layer: number }> => 'layer' in x);
  assert.ok(layers.length >= 3);
  for (const c of layers) {
    assert.ok(Math.abs(c.self - 1) < 1e-9, `CKA of a model with itself is 1 (${c.self})`);
    assertInUnit(c.cka, 'CKA');
    assertInUnit(c.control, 'control CKA');
    assertInInterval(c.interval, c.cka, 'CKA interval');
    assertInInterval(c.controlInterval, c.control, 'control CKA interval');
  }
  for (const m of r.cka.filter((x): x is { task: string; matrix: number[][] } => 'matrix' in x)) {
    for (const row of m.matrix) for (const v of row) assertInUnit(v, 'CKA matrix entry');
  }
  for (const c of r.circuits) {
    assertInUnit(c.channelJaccard, 'channel Jaccard');
    assertInUnit(c.positionJaccard, 'position Jaccard');
    assertInUnit(c.control, 'random Jaccard');
    assertInInterval(c.interval, c.channelJaccard, 'Jaccard interval');
  }
  checkOrderedReport(dir, 10);
});

test.run();
