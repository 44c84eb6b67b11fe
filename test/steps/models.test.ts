// steps/models.ts: the learning gate. An untrained model (0 training steps, its accuracy measured
// on its held-out data) is excluded; the steps' model list (studyModels) holds only the models
// that passed; each analysis page names the others with their accuracy (saveReport); a run where
// none passed stops with one line naming the gate.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as mi from '../../engine/index.ts';
import { emptyReport, type StepReport } from '../../interp/report/index.ts';
import { trainAndEvaluate } from '../../interp/train-task.ts';
import { TRAIN_DIR, type TrainedModel } from '../../steps/artefacts.ts';
import { DEFAULT_CONFIG } from '../../steps/config.ts';
import { excludedModels, gateModels, gateNote, passesGate, studyModels } from '../../steps/models.ts';
import { saveReport } from '../../steps/report-io.ts';
import type { StepContext } from '../../steps/step.ts';
import { tinyJob } from '../helpers/tiny-job.ts';

mi.setBackend(mi.cpuBackend());
const tmp = mkdtempSync(join(tmpdir(), 'mi-models-'));
process.once('exit', () => rmSync(tmp, { recursive: true, force: true }));

const model = (task: string, seed: number, accuracy: number, gate = 0.95): TrainedModel => ({
  task,
  seed,
  dir: join('models', `${task}-s${seed}`),
  taskOptions: { vocabSize: 8, seqLen: 12 },
  chance: 1 / 6,
  accuracy,
  lengthAccuracy: [],
  baselines: [],
  gate,
  passed: passesGate(accuracy, gate),
  stepsTrained: 10,
  finalLoss: 1,
  trainSeconds: 1,
});

/** A run directory holding only step 1's models.json (and its done.json), and a context on it. */
function runWith(models: TrainedModel[], name: string): StepContext {
  const runDir = join(tmp, name);
  mkdirSync(join(runDir, TRAIN_DIR), { recursive: true });
  writeFileSync(join(runDir, TRAIN_DIR, 'models.json'), JSON.stringify(models));
  writeFileSync(join(runDir, TRAIN_DIR, 'done.json'), '{}');
  const dir = join(runDir, 'work');
  mkdirSync(dir, { recursive: true });
  return {
    config: DEFAULT_CONFIG,
    runDir,
    dir,
    backend: mi.cpuBackend(),
    rng: (n) => new mi.Rng(n),
    log: () => undefined,
    report: () => emptyReport(0, 'test'),
    progress: () => undefined,
    input: () => join(runDir, TRAIN_DIR),
    readJson: () => {
      throw new Error('not used');
    },
    writeJson: (file, value) => writeFileSync(join(dir, file), JSON.stringify(value)),
    writeText: () => undefined,
    writeBytes: () => undefined,
    path: (file) => join(dir, file),
  };
}

test('gate: a model with 0 training steps, measured on its held-out data, is excluded; the gate itself passes', async () => {
  const untrained = await trainAndEvaluate(tinyJob(join(tmp, 'untrained'), 0));
  assert.is(untrained.stepsTrained, 0);
  // what it measured: near chance (1/6 over 6 content tokens), far below any gate worth the name
  assert.ok(untrained.accuracy < 0.6, `untrained accuracy ${untrained.accuracy}`);
  const learned = { accuracy: 0.95 };
  const { passed, excluded } = gateModels([untrained, learned], 0.95);
  assert.equal(passed, [learned], 'accuracy exactly at the gate passes');
  assert.equal(excluded, [untrained]);
  assert.not.ok(passesGate(Number.NaN, 0.5));
  assert.not.ok(passesGate(0.9499, 0.95));
  assert.throws(() => passesGate(0.5, 1.5), /train\.gate must be in \[0, 1\], got 1\.5/);
});

test('studyModels: only the models that passed; gateNote names the others with their accuracy', () => {
  const ctx = runWith([model('induction', 0, 1), model('induction', 1, 0.412), model('mqar', 0, 0.97), model('mqar', 1, 0.2)], 'mixed');
  assert.equal(
    studyModels(ctx).map((m) => m.label),
    ['induction-s0', 'mqar-s0'],
  );
  assert.equal(
    excludedModels(ctx).map((m) => `${m.task}-s${m.seed}`),
    ['induction-s1', 'mqar-s1'],
  );
  const note = gateNote(ctx)!;
  assert.match(note, /^Not analysed/);
  assert.match(note, /induction-s1 \(accuracy 0\.412 < gate 0\.95\)/);
  assert.match(note, /mqar-s1 \(accuracy 0\.200 < gate 0\.95\)/);
  // with --model there is no gate (one checkpoint, studied as it is)
  assert.is(gateNote({ ...ctx, config: { ...ctx.config, model: '/some/checkpoint' } }), null);
  assert.is(gateNote(runWith([model('induction', 0, 1)], 'all-passed')), null);
});

test('saveReport: analysis steps (2-11) carry the note, others do not', () => {
  const ctx = runWith([model('induction', 0, 1), model('induction', 1, 0.3)], 'pages');
  const page = (step: number): StepReport => {
    saveReport(ctx, emptyReport(step, 'x'));
    return JSON.parse(readFileSync(join(ctx.dir, 'report.json'), 'utf8')) as StepReport;
  };
  for (const step of [2, 6, 11]) assert.match(page(step).notes[0] ?? '', /induction-s1 \(accuracy 0\.300 < gate 0\.95\)/, `step ${step}`);
  for (const step of [1, 12, 13]) assert.equal(page(step).notes, [], `step ${step}`);
});

test('no model passed: one error line naming the gate and each model', () => {
  const ctx = runWith([model('induction', 0, 0.1), model('mqar', 0, 0.3)], 'none');
  assert.throws(
    () => studyModels(ctx),
    /no model passed the learning gate \(train\.gate 0\.95\): induction-s0 \(accuracy 0\.100 < gate 0\.95\), mqar-s0/,
  );
});

test.run();
