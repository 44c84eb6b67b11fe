// Step 10 (steps/step10-reproducibility.ts) on the quick run: cross-seed reproducibility (SAE
// latents matched by activation correlation, CKA and SVCCA, the basis-dependent tables), checked
// for content: CKA of a model with itself is 1, the shared fractions and means agree with the
// stored per-latent correlations, the claims' estimates are the means over seed pairs of the
// table's values, figures present, claims complete.
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { seedPairInterval } from '../../interp/similarity.ts';
import { loadTrainedModels, type Circuit } from '../../steps/artefacts.ts';
import type { RunConfig } from '../../steps/config.ts';
import { overPairs } from '../../steps/step10-reproducibility.ts';
import { quickRun } from '../helpers/quick-run.ts';
import { assertInInterval, assertInUnit, checkOrderedReport, inOrder, readIn } from '../helpers/step-report.ts';

interface SaeRow {
  task: string;
  seedA: number;
  seedB: number;
  latents: number;
  meanMaxCorrelation: number;
  interval: number[];
  nullMean: number;
  nullRange: number[];
  p: number;
  shared: number;
  nullShared: number;
  matchedMean: number;
  maxCorrelations: number[];
  nullMaxCorrelations: number[];
  decoderCosine: { shared: number; meanCosine: number; randomShared: number };
}
interface LayerRow {
  task: string;
  seedA: number;
  seedB: number;
  layer: number;
  cka: number;
  interval: number[];
  control: number;
  controlInterval: number[];
  self: number;
  p: number;
  svcca: number;
  svccaControl: number;
  svccaKept: number[];
}
interface Repro {
  threshold: number;
  sae: SaeRow[];
  representations: (LayerRow | { task: string; matrix: number[][] })[];
  circuits: {
    hookA: string;
    sameHook: boolean;
    channelJaccard: number;
    control: number;
    positionJaccard: number;
    locatedJaccard?: number;
    locatedControl?: number;
    locatedP?: number;
    locatedControls?: number;
  }[];
}

const mean = (x: number[]) => x.reduce((s, v) => s + v, 0) / x.length;

test('step 10: latents matched by activation, CKA (self = 1) and SVCCA across seeds; claims over seed pairs', async () => {
  const dir = join(await quickRun(), 'step-10-reproducibility');
  const r = readIn<Repro>(dir, 'reproducibility.json');
  // a seed pair for each task with two seeds past the learning gate (steps/models.ts)
  const passed = loadTrainedModels(await quickRun()).filter((m) => m.passed);
  const paired = new Set(passed.filter((m) => m.seed === 1).map((m) => m.task));
  assert.ok(paired.size >= 1 && r.sae.length >= paired.size, `a seed pair per task: ${r.sae.length} for ${[...paired]}`);
  for (const s of r.sae) {
    // both directions' max correlations: one per latent of each SAE
    assert.is(s.maxCorrelations.length, 2 * s.latents);
    assert.ok(s.maxCorrelations.every((c) => c >= -1 - 1e-9 && c <= 1 + 1e-9));
    assert.ok(Math.abs(mean(s.maxCorrelations) - s.meanMaxCorrelation) < 1e-9, 'mean max correlation = mean of the stored maxima');
    const shared = s.maxCorrelations.filter((c) => c >= r.threshold).length / s.maxCorrelations.length;
    assert.ok(Math.abs(shared - s.shared) < 1e-12, `shared ${s.shared} vs recount ${shared}`);
    assert.ok(s.matchedMean <= s.meanMaxCorrelation + 1e-9, 'one-to-one matching cannot beat the free maximum');
    assertInInterval(s.interval, s.meanMaxCorrelation, `${s.task} interval`);
    assertInUnit(s.nullShared, 'null shared');
    assert.ok(s.p > 0 && s.p <= 1);
    assertInUnit(s.decoderCosine.shared, 'decoder-cosine shared (basis-dependent)');
  }
  const layers = r.representations.filter((x): x is LayerRow => 'layer' in x);
  assert.ok(layers.length >= 3);
  for (const c of layers) {
    assert.ok(Math.abs(c.self - 1) < 1e-9, `CKA of a model with itself is 1 (${c.self})`);
    assertInUnit(c.cka, 'CKA');
    assertInUnit(c.control, 'control CKA');
    assertInInterval(c.interval, c.cka, 'CKA interval');
    assertInInterval(c.controlInterval, c.control, 'control CKA interval');
    assertInUnit(c.svcca, 'SVCCA');
    assertInUnit(c.svccaControl, 'SVCCA control');
    assert.ok(c.svccaKept.every((k) => k >= 1 && Number.isInteger(k)));
  }
  for (const m of r.representations.filter((x): x is { task: string; matrix: number[][] } => 'matrix' in x)) {
    for (const row of m.matrix) for (const v of row) assertInUnit(v, 'CKA matrix entry');
  }
  for (const c of r.circuits) {
    assertInUnit(c.channelJaccard, 'channel Jaccard');
    assertInUnit(c.positionJaccard, 'position Jaccard');
    assertInUnit(c.control, 'random Jaccard');
    // residual-stream circuits are located by function; the rank p sits on the grid of its controls
    if (c.sameHook && c.hookA.endsWith('hook_resid_post')) {
      assertInUnit(c.locatedJaccard!, 'located Jaccard');
      assertInUnit(c.locatedControl!, 'located controls');
      const ge = c.locatedP! * (1 + c.locatedControls!) - 1;
      assert.ok(Math.abs(ge - Math.round(ge)) < 1e-9 && ge >= 0 && ge <= c.locatedControls!, `rank p ${c.locatedP}`);
    }
  }
  assert.ok(
    r.circuits.some((c) => c.locatedJaccard !== undefined),
    'some circuit located by function',
  );
  // the claims: per task, the mean over its seed pairs of the table's values, p the largest pair p
  const report = checkOrderedReport(dir, 10);
  for (const task of new Set(r.sae.map((s) => s.task))) {
    const rows = r.sae.filter((s) => s.task === task);
    const sae = report.claims.find((c) => c.statement.startsWith(`${task}: SAE latents`));
    assert.ok(sae, `${task}: an SAE matching claim`);
    assert.ok(Math.abs(sae.estimate - mean(rows.map((s) => s.meanMaxCorrelation))) < 1e-12);
    assert.ok(Math.abs(sae.controlEstimate! - mean(rows.map((s) => s.nullMean))) < 1e-12);
    if (sae.p !== undefined) assert.is(sae.p, Math.max(...rows.map((s) => s.p)));
    const last = layers.filter((l) => l.task === task && l.layer === Math.max(...layers.map((x) => x.layer)));
    const cka = report.claims.find((c) => c.statement.startsWith(`${task}: last-layer`));
    assert.ok(cka && Math.abs(cka.estimate - mean(last.map((l) => l.cka))) < 1e-12);
    if (cka.p !== undefined) assert.is(cka.p, Math.max(...last.map((l) => l.p)));
  }
  assert.not.ok(
    report.claims.some((c) => /decoder|Jaccard/.test(c.statement)),
    'no claim rests on raw coordinates',
  );
});

interface LocatedTestRow {
  estimate: number;
  interval: number[];
  control: number;
  controlInterval: number[];
  difference: number;
  differenceInterval: number[];
  p: number;
  pFloor: number;
  controls: number;
  distinctControls: number;
  percentiles: number[];
}
interface LocatedRow {
  task: string;
  seedA: number;
  seedB: number;
  circuit: string;
  size: number;
  channelsA: number[];
  located: number[];
  channelsB: number[];
  locatedJaccard: number;
  test: LocatedTestRow;
  own: LocatedTestRow;
  engineDiff: number;
}

test("step 10: the key claim's circuit of each seed located in every other seed's model and patched there, against located matched controls", async () => {
  const run = await quickRun();
  const dir = join(run, 'step-10-reproducibility');
  const config = readIn<RunConfig>(run, 'config.json');
  const located = readIn<{ located: LocatedRow[] }>(dir, 'reproducibility.json').located;
  const circuits = readIn<Circuit[]>(join(run, 'step-05-circuits'), 'circuits.json');
  const passed = loadTrainedModels(run).filter((m) => m.passed);
  const kc = config.patching.keyClaim;
  const report = checkOrderedReport(dir, 10);
  for (const task of new Set(passed.map((m) => m.task))) {
    const seeds = passed.filter((m) => m.task === task).map((m) => m.seed);
    const rows = located.filter((r) => r.task === task);
    if (seeds.length < 2) continue;
    // every ordered pair of gate-passing seeds
    assert.is(rows.length, seeds.length * (seeds.length - 1), `${task}: ordered pairs`);
    assert.equal(new Set(rows.map((r) => `${r.seedA}>${r.seedB}`)).size, rows.length);
    const circuitOf = (seed: number) =>
      circuits.find((c) => c.task === task && c.seed === seed && c.source === kc.source && c.hook.endsWith('hook_resid_post'))!;
    for (const r of rows) {
      const what = `${task} s${r.seedA} in s${r.seedB}`;
      // the step-5 circuits of the key claim's kind, A's located one-to-one (same size, distinct partners)
      assert.equal(r.channelsA, circuitOf(r.seedA).channels, `${what}: A's circuit`);
      assert.equal(r.channelsB, circuitOf(r.seedB).channels, `${what}: B's circuit`);
      assert.is(r.located.length, r.channelsA.length);
      assert.is(new Set(r.located).size, r.located.length, `${what}: distinct partners`);
      assert.ok(r.located.every((c) => Number.isInteger(c) && c >= 0 && c < config.train.hiddenSize));
      const inter = r.located.filter((c) => r.channelsB.includes(c)).length;
      assert.ok(Math.abs(r.locatedJaccard - inter / (2 * r.size - inter)) < 1e-12, `${what}: Jaccard`);
      // controls: repro.controls draws of A's matched sets; B's own: step 5's, as many as step 6 ranks among
      assert.is(r.test.controls, config.repro.controls);
      assert.is(r.own.controls, Math.min(config.patching.controls, circuitOf(r.seedB).controls.length));
      for (const [t, label] of [
        [r.test, 'located'],
        [r.own, 'own'],
      ] as const) {
        assert.ok(t.distinctControls >= 1 && t.distinctControls <= t.controls, `${what} ${label}: distinct sets`);
        assert.ok(Math.abs(t.pFloor - 1 / (t.distinctControls + 1)) < 1e-15, `${what} ${label}: floor from the distinct sets`);
        // the rank p on the grid of its draws, or held at its floor
        const ge = t.p * (t.controls + 1) - 1;
        assert.ok(t.p === t.pFloor || (Math.abs(ge - Math.round(ge)) < 1e-6 && ge >= 0 && ge <= t.controls), `${what} ${label}: p ${t.p}`);
        assert.ok(t.p >= t.pFloor && t.p <= 1);
        assertInInterval(t.interval, t.estimate, `${what} ${label} interval`);
        assertInInterval(t.differenceInterval, t.difference, `${what} ${label} difference interval`);
        assert.ok(Math.abs(t.difference - (t.estimate - t.control)) < 1e-12);
        assert.is(t.percentiles.length, 99);
        assert.ok(
          t.percentiles.every((v, i) => i === 0 || v >= t.percentiles[i - 1]),
          'percentiles ascend',
        );
        // the 2.5 and 97.5% quantiles between the 2-3% and 97-98% percentiles of the same sets
        assert.ok(inOrder(t.percentiles[1], t.controlInterval[0], t.percentiles[2]), `${what} ${label}: 2.5%`);
        assert.ok(inOrder(t.percentiles[96], t.controlInterval[1], t.percentiles[97]), `${what} ${label}: 97.5%`);
      }
      assert.ok(r.engineDiff < 1e-4, `${what}: closed form vs patchCleanMany ${r.engineDiff}`);
    }
    // the claim: over the ordered pairs (mean, p the largest pair p, floor the largest pair floor)
    const claim = report.claims.find((c) => c.statement.startsWith(`${task}: a seed's ${kc.source} circuit`));
    assert.ok(claim, `${task}: a located-patching claim`);
    assert.ok(Math.abs(claim.estimate - mean(rows.map((r) => r.test.estimate))) < 1e-12);
    assert.ok(Math.abs(claim.controlEstimate! - mean(rows.map((r) => r.test.control))) < 1e-12);
    if (seeds.length >= config.claimSeeds) {
      assert.is(claim.p, Math.max(...rows.map((r) => r.test.p)));
      assert.is(claim.pFloor, Math.max(...rows.map((r) => r.test.pFloor)));
    } else assert.is(claim.p, undefined);
    assert.ok(
      report.figures.some((f) => f.file === `figures/located-${task}.svg`),
      `${task}: the located-patching figure`,
    );
  }
  assert.ok(located.length >= 2, 'some circuit located and patched');
});

test('overPairs: the jackknife over seeds for 3 seeds, p the largest pair p; one pair stands alone; too few seeds give no p', () => {
  const pair = (seedA: number, seedB: number, value: number, control: number, p: number) => ({
    seedA,
    seedB,
    value,
    control,
    p,
    interval: [value - 0.1, value + 0.1] as [number, number],
    controlInterval: [control - 0.1, control + 0.1] as [number, number],
  });
  // values and controls move together across pairs (a seed effect): their own intervals overlap,
  // the pairs' differences (0.2, 0.25, 0.3) do not reach 0
  const pairs = [pair(0, 1, 0.5, 0.3, 1e-4), pair(0, 2, 0.9, 0.65, 0.02), pair(1, 2, 1.6, 1.3, 1e-6)];
  const f = overPairs(pairs, 't', 3);
  const v = seedPairInterval(pairs);
  assert.is(f.estimate, v.mean);
  assert.equal(f.interval, v.interval);
  assert.is(f.p, 0.02, 'the largest pair p');
  assert.ok(f.interval[0] < f.controlInterval![1], 'the raw intervals overlap');
  assert.ok(f.effect, 'the paired difference over seeds lies above 0');
  const lone = overPairs([pair(0, 1, 0.5, 0.2, 1e-3)], 't', 2);
  assert.equal(lone.interval, [0.4, 0.6]);
  assert.ok(lone.effect && lone.p === 1e-3);
  assert.ok(!overPairs([pair(0, 1, 0.5, 0.45, 1e-3)], 't', 2).effect, 'own intervals overlap');
  assert.is(overPairs([pair(0, 1, 0.5, 0.2, 1e-3)], 't', 3).p, undefined, 'fewer seeds than claimSeeds: not tested');
  // one seed pair in both directions: their mean, the union of their intervals, the condition in each
  const two = overPairs([pair(0, 1, 0.5, 0.2, 1e-3), pair(1, 0, 0.7, 0.3, 0.04)], 't', 2);
  assert.ok(Math.abs(two.estimate - 0.6) < 1e-12 && Math.abs(two.controlEstimate! - 0.25) < 1e-12);
  assert.equal(two.interval, [0.5 - 0.1, 0.7 + 0.1]);
  assert.ok(two.effect && two.p === 0.04);
  assert.ok(!overPairs([pair(0, 1, 0.5, 0.2, 1e-3), pair(1, 0, 0.5, 0.45, 1e-3)], 't', 2).effect, 'one direction fails');
});

test.run();
