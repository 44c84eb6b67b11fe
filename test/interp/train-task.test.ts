// interp/train-task.ts, behind step 1: a finished training job is not retrained, and one with
// changed settings is; the accuracy checks move a curriculum on and stop training early; the
// recorded baselines are those of the model's own held-out data; scoredAccuracyOf, which applies the
// head at the scored positions only, equals the argmax of the whole logits.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as mi from '../../engine/index.ts';
import { baselineAccuracy, getTask } from '../../interp/tasks/index.ts';
import { IGNORE_INDEX } from '../../interp/tasks/types.ts';
import { gateOutlook, jobEvalBatches, scoredAccuracyOf, trainAndEvaluate, type GatePoint } from '../../interp/train-task.ts';
import { loadPretrained } from '../../mamba/pretrained.ts';
import { tinyJob } from '../helpers/tiny-job.ts';

mi.setBackend(mi.cpuBackend());
const tmp = mkdtempSync(join(tmpdir(), 'mi-train-task-'));
process.once('exit', () => rmSync(tmp, { recursive: true, force: true }));

test('trainAndEvaluate: a finished job is not retrained; changed settings retrain', async () => {
  const job = tinyJob(join(tmp, 'resume'));
  let steps = 0;
  const first = await trainAndEvaluate(job, () => {
    steps++;
  });
  assert.is(steps, 3);
  assert.ok(first.accuracy >= 0 && first.accuracy <= 1);
  assert.equal(
    first.lengthAccuracy.map((l) => l.seqLen),
    [16],
  );
  const weights = readFileSync(join(job.dir, 'model.safetensors'));
  steps = 0;
  const again = await trainAndEvaluate(job, () => {
    steps++;
  });
  assert.is(steps, 0, 'the finished model was retrained');
  assert.equal(again, first);
  assert.ok(readFileSync(join(job.dir, 'model.safetensors')).equals(weights));
  steps = 0;
  await trainAndEvaluate({ ...job, steps: 4 }, () => {
    steps++;
  });
  assert.is(steps, 4, 'a job with other settings reused the old model');
});

test('checks: stages advance at each passed check, the last one stops training; a never-passed check trains to the end', async () => {
  // stopAccuracy 0: every check passes, so stage 0 -> 1 at step 2, 1 -> target at step 4, stop at 6
  const stages = [
    { vocabSize: 8, seqLen: 8, occurrences: 2 },
    { vocabSize: 8, seqLen: 10, occurrences: 2 },
  ] as ReturnType<typeof tinyJob>['stages'];
  const job = { ...tinyJob(join(tmp, 'stages'), 20), stages, evalEvery: 2, stopAccuracy: 0 };
  let steps = 0;
  const r = await trainAndEvaluate(job, () => {
    steps++;
  });
  assert.equal(
    r.gateCurve.map((g) => [g.step, g.stage, g.seqLen]),
    [
      [2, 0, 8],
      [4, 1, 10],
      [6, 2, 12],
    ],
  );
  assert.is(r.stepsTrained, 6);
  assert.ok(r.stoppedEarly);
  assert.is(steps, 6, 'training went on after the stop');
  const curve = JSON.parse(readFileSync(join(job.dir, 'loss.json'), 'utf8'));
  assert.is(curve.train.length, 6);
  // above any accuracy: no stage is passed, training runs all its steps on stage 0
  const never = await trainAndEvaluate({ ...job, dir: join(tmp, 'never'), steps: 7, stopAccuracy: 1.01 });
  assert.equal(
    never.gateCurve.map((g) => [g.step, g.stage]),
    [
      [2, 0],
      [4, 0],
      [6, 0],
    ],
  );
  assert.is(never.stepsTrained, 7);
  assert.not.ok(never.stoppedEarly);
});

test('checks: the same job gives the same checks and weights; a stage with another vocabulary is an error', async () => {
  const job = { ...tinyJob(join(tmp, 'det-a'), 6), evalEvery: 2, stopAccuracy: 0.5 };
  const a = await trainAndEvaluate(job);
  const b = await trainAndEvaluate({ ...job, dir: join(tmp, 'det-b') });
  assert.equal(a.gateCurve, b.gateCurve);
  assert.ok(readFileSync(join(tmp, 'det-a', 'model.safetensors')).equals(readFileSync(join(tmp, 'det-b', 'model.safetensors'))));
  const bad = { ...job, dir: join(tmp, 'bad'), stages: [{ vocabSize: 9, seqLen: 12 }] as typeof job.stages };
  await trainAndEvaluate(bad).then(
    () => assert.unreachable('trained with a stage of another vocabulary'),
    (e: Error) => assert.match(e.message, /stage vocabSize 9 differs/),
  );
});

test('the record holds each baseline of the task on the held-out data the accuracy is measured on', async () => {
  const job = tinyJob(join(tmp, 'baselines'), 1);
  const r = await trainAndEvaluate(job);
  const batches = jobEvalBatches(job, job.taskOptions.seqLen);
  const expected = getTask('induction')
    .baselines(job.taskOptions)
    .map((b) => baselineAccuracy(b, batches));
  assert.equal(r.baselines, expected);
  assert.is(r.baselines[0].perSequence.length, r.perSequence.length);
});

test('scoredAccuracyOf equals the argmax of the whole logits, per sequence, at the scored positions', async () => {
  const job = { ...tinyJob(join(tmp, 'scored'), 150), evalBatches: 4 };
  await trainAndEvaluate(job);
  const model = await loadPretrained(job.dir);
  const batches = jobEvalBatches(job, 16);
  const got = await scoredAccuracyOf(model, batches);
  const perSequence: number[] = [];
  let hits = 0,
    scored = 0;
  for (const b of batches) {
    const [B, T] = b.shape;
    const rows = Array.from({ length: B }, (_, i) => Array.from(b.inputs.subarray(i * T, (i + 1) * T)));
    const pred = mi.argmax(model.forward(rows), -1).dataSync();
    for (let i = 0; i < B; i++) {
      let h = 0,
        s = 0;
      for (let t = i * T; t < (i + 1) * T; t++) {
        if (b.targets[t] === IGNORE_INDEX) continue;
        s++;
        if (pred[t] === b.targets[t]) h++;
      }
      perSequence.push(h / s);
      hits += h;
      scored += s;
    }
  }
  assert.equal(got.perSequence, perSequence);
  assert.is(got.accuracy, hits / scored);
  assert.is(got.scored, scored);
  assert.ok(new Set(perSequence).size > 1, 'the sequences differ, so a row mix-up would show');
});

test('gateOutlook: a planted linear trend is extrapolated to the gate; a flat one and an unfinished curriculum are said so', () => {
  // stage 0 until step 100, then the target: accuracy 0.2 + 0.5 per 1000 steps from there
  const rising: GatePoint[] = [];
  for (let step = 25; step <= 100; step += 25) rising.push({ step, stage: 0, seqLen: 32, accuracy: 0.99 });
  for (let step = 125; step <= 900; step += 25) rising.push({ step, stage: 1, seqLen: 64, accuracy: 0.2 + (0.5 * (step - 100)) / 1000 });
  const up = gateOutlook(rising, 0.95, 2);
  assert.ok(Math.abs(up.slopePer1000 - 0.5) < 1e-9, `slope ${up.slopePer1000}`);
  // at step 900 the line is at 0.6: (0.95 - 0.6) / 0.0005 = 700 more steps
  assert.is(up.moreSteps, 700);
  // only the later half of the stage's checks count: a plateau followed by a rise reads as the rise
  const late = rising.map((p) => (p.stage === 1 && p.step < 500 ? { ...p, accuracy: 0.2 } : p));
  const lateSlope = gateOutlook(late, 0.95, 2).slopePer1000;
  assert.ok(Math.abs(lateSlope - 0.5) < 1e-9, `later half only: ${lateSlope}`);
  const flat = rising.map((p) => (p.stage === 1 ? { ...p, accuracy: 0.3 } : p));
  assert.is(gateOutlook(flat, 0.95, 2).moreSteps, null);
  assert.match(gateOutlook(flat, 0.95, 2).text, /no upward trend/);
  const stuck = rising.map((p) => ({ ...p, stage: 0 }));
  assert.is(gateOutlook(stuck, 0.95, 2).moreSteps, null);
  assert.match(gateOutlook(stuck, 0.95, 2).text, /never passed curriculum stage 1 of 2/);
});

test.run();
