// Step 11 (steps/step11-transfer.ts) on the quick run, checked against independent computations:
// the mixture model's per-component gate accuracy recomputed from its stored weights on the step's
// own stream; one circuit-reuse effect recomputed through the full hooked forward (patching.ts)
// instead of the step's tail-only shortcut; rank p-values against their floors; claims per ordered
// pair; the cross-model alignment beside its nulls; and no NaN in the summary.
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Rng } from '../../engine/random.ts';
import { loadPretrained } from '../../mamba/pretrained.ts';
import { ablate, ablationEdit, cacheActivations, evalSet, idsOf, outcome, positionMask } from '../../interp/patching.ts';
import { getTask, mixtureTask } from '../../interp/tasks/index.ts';
import { scoredAccuracyOf } from '../../interp/train-task.ts';
import type { StepReport } from '../../interp/report/index.ts';
import type { RunConfig } from '../../steps/config.ts';
import { quickRun } from '../helpers/quick-run.ts';
import { assertInInterval, assertInUnit, checkOrderedReport, readIn } from '../helpers/step-report.ts';

interface ControlRow {
  from: string;
  to: string;
  effect: number;
  lo: number;
  hi: number;
  control: number;
  difference: number;
  p: number;
  pFloor: number;
  controls: number;
}
interface Mixture {
  components: { name: string; options: Record<string, number> }[];
  taskOptions: { vocabSize: number; seqLen: number };
  gate: { name: string; accuracy: number; passed: boolean; baseline: { accuracy: number } }[];
  circuits: Record<string, number[]>;
  circuitRows: ControlRow[];
  featureRows: ControlRow[];
  probeRows: { from: string; to: string; accuracy: number; lo: number; hi: number; control: number }[];
}
interface CrossModel {
  alignment: { pair: string; aligned: number; identity: number; random: number; shuffled: number; train: number }[];
  probes: { pair: string; aligned: number; raw: number; own: number; control: number }[];
}

const close = (a: number, b: number, tol: number, what: string) => assert.ok(Math.abs(a - b) <= tol, `${what}: ${a} vs ${b} (tol ${tol})`);

test('step 11: the mixture model passes its gate per component, recomputed from its weights', async () => {
  const run = await quickRun();
  const dir = join(run, 'step-11-transfer');
  const cfg = readIn<RunConfig>(run, 'config.json');
  const m = readIn<Mixture>(dir, 'mixture.json');
  assert.ok(m.components.length >= 2);
  const mix = mixtureTask(m.components.map((c) => ({ task: getTask(c.name), options: c.options })));
  assert.is(m.taskOptions.vocabSize, mix.vocabSize);
  const model = await loadPretrained(join(dir, 'mixture'));
  try {
    const n = cfg.train.evalBatches * cfg.train.batchSize;
    for (const [k, c] of m.components.entries()) {
      const batch = mix.generateComponent(m.taskOptions, k, new Rng(`${cfg.seed}/step11/mixture-gate/${c.name}`), n);
      const acc = (await scoredAccuracyOf(model, [batch])).accuracy;
      close(m.gate[k].accuracy, acc, 1e-12, `${c.name} gate accuracy`);
      assert.is(m.gate[k].passed, acc >= cfg.train.gate);
      assert.ok(m.gate[k].baseline.accuracy < acc, `${c.name}: a baseline beats the model`);
    }
    // one reuse effect through the whole hooked forward: A's circuit mean-ablated at B's answer cells
    const [a, b] = m.components.map((c) => c.name);
    const row = m.circuitRows.find((r) => r.from === a && r.to === b)!;
    const kb = m.components.findIndex((c) => c.name === b);
    const testB = mix.generateComponent(m.taskOptions, kb, new Rng(`${cfg.seed}/step11/mixture-data/${b}/test`), cfg.transfer.examples);
    const hook = `blocks.${cfg.train.layers - 1}.hook_resid_post`;
    const ids = idsOf(model, testB);
    const set = evalSet(testB);
    const mask = positionMask('scored', testB);
    const clean = cacheActivations(model, ids, [hook]);
    const base = await outcome(model, ids, set, []);
    const eff = await ablate(
      model,
      ids,
      set,
      base,
      { hook, channels: m.circuits[a] },
      mask,
      await ablationEdit('mean', clean.get(hook)!, mask),
    );
    const meanIncrease = eff.lossIncrease.reduce((s, v) => s + v, 0) / eff.lossIncrease.length;
    close(row.effect, meanIncrease, 1e-5, `circuit ${a} -> ${b}: loss increase`);
    for (const t of clean.values()) t.dispose();
    ids.dispose();
  } finally {
    model.dispose();
  }
});

test('step 11: reuse rows beside their controls, rank p at or above its floor; claims per ordered pair; alignment beside its nulls; no NaN in the summary', async () => {
  const run = await quickRun();
  const dir = join(run, 'step-11-transfer');
  const cfg = readIn<RunConfig>(run, 'config.json');
  const m = readIn<Mixture>(dir, 'mixture.json');
  const names = m.gate.filter((g) => g.passed).map((g) => g.name);
  const nPairs = names.length * names.length;
  for (const rows of [m.circuitRows, m.featureRows]) {
    assert.is(rows.length, nPairs, 'every ordered pair, diagonal included');
    for (const r of rows) {
      assert.is(r.controls, r.from === r.to ? cfg.circuit.controls : cfg.transfer.controls, 'claims rank among transfer.controls');
      close(r.pFloor, 1 / (r.controls + 1), 1e-15, 'rank-p floor');
      assert.ok(r.p >= r.pFloor - 1e-15 && r.p <= 1, `p ${r.p}`);
      // the rank p counts the controls at or above the effect: (1 + k) / (n + 1) for an integer k
      const k = r.p * (r.controls + 1) - 1;
      close(k, Math.round(k), 1e-6, 'rank p is (1 + k)/(n + 1)');
      close(r.difference, r.effect - r.control, 1e-12, 'difference = effect - control');
      assertInInterval([r.lo, r.hi], r.effect, `${r.from}->${r.to}`);
    }
  }
  for (const p of m.probeRows) {
    assertInUnit(p.accuracy, 'probe accuracy');
    assertInInterval([p.lo, p.hi], p.accuracy, `${p.from}->${p.to} probe`);
  }
  const x = readIn<CrossModel>(dir, 'cross-model.json');
  assert.ok(x.alignment.length >= 2, 'both directions of a model pair');
  for (const a of x.alignment) for (const v of [a.aligned, a.identity, a.random, a.shuffled, a.train]) assert.ok(Number.isFinite(v));
  const report = checkOrderedReport(dir, 11) as StepReport;
  const within = names.length * (names.length - 1) * 3;
  assert.is(report.claims.length, within + x.probes.length + report.claims.filter((c) => c.statement.startsWith('Aligned SAE')).length);
  for (const c of report.claims) {
    assert.ok(c.p !== undefined && c.pFloor !== undefined && c.pFloor <= c.p, `claim "${c.statement}": p ${c.p}, floor ${c.pFloor}`);
    assert.ok(Number.isFinite(c.controlEstimate), `claim "${c.statement}" shows its control`);
    assert.is(c.status, report.claims[0].status);
  }
  assert.not.ok(/NaN/.test(report.summary), report.summary);
  assert.ok(
    report.figures.some((f) => f.file.includes('alignment-fit')) && report.figures.some((f) => f.file.includes('mixture-training')),
  );
});

test.run();
