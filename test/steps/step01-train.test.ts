// Step 1 (steps/step01-train.ts) on the quick run: trained models and their records, checkpoints
// that reproduce the recorded accuracy, the baselines beside them, the learning gate (and that
// step 2, which the later steps read, holds exactly the models that passed it), figures and claims.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as mi from '../../engine/index.ts';
import { evaluateJobAt, RECORD_FILE, type TaskModelRecord } from '../../interp/train-task.ts';
import type { StepReport } from '../../interp/report/index.ts';
import { loadCollections, loadTrainedModel, loadTrainedModels, TRAIN_DIR } from '../../steps/artefacts.ts';
import { DEFAULT_CONFIG, mergeConfig, PRESETS, QUICK_OVERRIDES } from '../../steps/config.ts';
import { getTask } from '../../interp/tasks/index.ts';
import { quickRun } from '../helpers/quick-run.ts';

mi.setBackend(mi.cpuBackend());
const quick = mergeConfig(DEFAULT_CONFIG, QUICK_OVERRIDES, 'quick');

const readReport = (dir: string, step: string) => JSON.parse(readFileSync(join(dir, step, 'report.json'), 'utf8')) as StepReport;

test('step 1: one model per task and seed, accuracies in [0, 1], induction above chance for every seed', async () => {
  const dir = await quickRun();
  const models = loadTrainedModels(dir);
  assert.is(models.length, quick.tasks.length * quick.train.seeds);
  for (const m of models) {
    assert.ok(m.accuracy >= 0 && m.accuracy <= 1, `${m.task}-s${m.seed} accuracy ${m.accuracy}`);
    assert.ok(m.chance > 0 && m.chance < 1);
    assert.equal(
      m.lengthAccuracy.map((l) => l.seqLen),
      quick.train.lengthGeneralisation,
    );
    for (const l of m.lengthAccuracy) assert.ok(l.accuracy >= 0 && l.accuracy <= 1);
    assert.ok(Number.isFinite(m.finalLoss) && m.trainSeconds > 0);
    assert.is(m.taskOptions.seqLen, quick.train.seqLen);
    assert.ok(existsSync(join(dir, TRAIN_DIR, m.dir, 'loss.json')));
  }
  for (const m of models.filter((x) => x.task === 'induction')) {
    assert.ok(m.accuracy >= quick.train.gate && m.passed, `induction-s${m.seed}: accuracy ${m.accuracy}, gate ${quick.train.gate}`);
  }
});

test('step 1: the gate marks exactly the models below it, and step 2 collects only the others', async () => {
  const dir = await quickRun();
  const models = loadTrainedModels(dir);
  for (const m of models) {
    assert.is(m.gate, quick.train.gate);
    assert.is(m.passed, m.accuracy >= quick.train.gate, `${m.task}-s${m.seed}`);
    assert.ok(m.stepsTrained >= 1 && m.stepsTrained <= quick.train.steps);
  }
  const passed = models.filter((m) => m.passed).map((m) => `${m.task}-s${m.seed}`);
  assert.equal(
    loadCollections(dir).map((c) => `${c.task}-s${c.seed}`),
    passed,
  );
  const excluded = models.filter((m) => !m.passed);
  const collectPage = readReport(dir, 'step-02-collect');
  for (const m of excluded)
    assert.ok(
      collectPage.notes.some((n) => n.includes(`${m.task}-s${m.seed} (accuracy`)),
      `${m.task}-s${m.seed}`,
    );
});

test('step 1: baselines of each model, strongest first, equal to those of its record (its own held-out data)', async () => {
  const dir = await quickRun();
  for (const m of loadTrainedModels(dir)) {
    const record = JSON.parse(readFileSync(join(dir, TRAIN_DIR, m.dir, RECORD_FILE), 'utf8')) as TaskModelRecord;
    assert.is(m.baselines.length, 3);
    assert.equal(m.baselines.map((b) => b.name).sort(), record.baselines.map((b) => b.name).sort());
    for (const b of m.baselines) assert.is(b.accuracy, record.baselines.find((x) => x.name === b.name)!.accuracy);
    for (let i = 1; i < m.baselines.length; i++) assert.ok(m.baselines[i - 1].accuracy >= m.baselines[i].accuracy);
    assert.is(record.baselines[0].perSequence.length, record.perSequence.length);
  }
});

test('step 1: checkpoints load and reproduce the recorded accuracy on the held-out data', async () => {
  const dir = await quickRun();
  for (const m of loadTrainedModels(dir).filter((x) => x.task === 'induction')) {
    const record = JSON.parse(readFileSync(join(dir, TRAIN_DIR, m.dir, RECORD_FILE), 'utf8')) as TaskModelRecord;
    const model = await loadTrainedModel(dir, m);
    try {
      const again = await evaluateJobAt(model, record.job, m.taskOptions.seqLen);
      assert.is(again.accuracy, m.accuracy);
      assert.equal(again.perSequence, record.perSequence);
    } finally {
      model.dispose();
    }
  }
});

test('step 1: figures are non-empty SVG; each task claim carries a test, an interval and the chance control', async () => {
  const dir = await quickRun();
  const report = readReport(dir, TRAIN_DIR);
  // loss, accuracy checks during training, accuracy by length: per task
  assert.is(report.figures.length, 3 * quick.tasks.length);
  for (const f of report.figures) {
    const svg = readFileSync(join(dir, TRAIN_DIR, f.file), 'utf8');
    assert.ok(svg.startsWith('<svg') && svg.length > 1000 && svg.includes('<path'), f.file);
  }
  assert.is(report.claims.length, quick.tasks.length);
  for (const c of report.claims) {
    assert.ok(c.test.length > 0 && c.control.length > 0);
    assert.ok(c.interval[0] <= c.estimate && c.estimate <= c.interval[1], c.statement);
    assert.ok(c.p! > 0 && c.p! <= 1 && c.pAdjusted! >= c.p!);
  }
  const ind = report.claims.find((c) => c.statement.startsWith('induction'))!;
  assert.ok(ind.supported && ind.interval[0] > ind.controlEstimate!, ind.statement);
  // the control is the strongest baseline's accuracy on the same sequences, pooled over seeds
  const records = loadTrainedModels(dir)
    .filter((m) => m.task === 'induction')
    .map((m) => JSON.parse(readFileSync(join(dir, TRAIN_DIR, m.dir, RECORD_FILE), 'utf8')) as TaskModelRecord);
  const pooled = records[0].baselines.map((b) => {
    const values = records.flatMap((r) => r.baselines.find((x) => x.name === b.name)!.perSequence);
    return { name: b.name, mean: values.reduce((a, v) => a + v, 0) / values.length };
  });
  const best = pooled.reduce((a, b) => (b.mean > a.mean ? b : a));
  assert.ok(ind.control.startsWith(best.name), `${ind.control} vs ${best.name}`);
  assert.ok(Math.abs(ind.controlEstimate! - best.mean) < 1e-9, `${ind.controlEstimate} vs ${best.mean}`);
});

test('every preset: the options and curriculum stages of each task are valid, stages keep its vocabulary', () => {
  for (const [name, patch] of Object.entries({ default: {}, ...PRESETS })) {
    const t = mergeConfig(DEFAULT_CONFIG, patch, name).train;
    assert.ok(t.stopAccuracy >= t.gate, `${name}: stopping below the gate leaves models just under it`);
    for (const [task, opts] of Object.entries(t.taskOptions)) {
      const target = { seqLen: t.seqLen, ...opts } as Parameters<ReturnType<typeof getTask>['chance']>[0];
      getTask(task).chance(target); // throws naming the option at fault
      for (const stage of t.curriculum[task as keyof typeof t.curriculum]) {
        getTask(task).chance({ ...target, ...stage });
        assert.ok(
          Object.keys(stage).every((k) => k in target && k !== 'vocabSize'),
          `${name}: ${task} stage ${JSON.stringify(stage)}`,
        );
      }
    }
  }
});

test.run();
