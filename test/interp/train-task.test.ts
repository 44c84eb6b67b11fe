// interp/train-task.ts, behind step 1: a finished training job is not retrained, and one with
// changed settings is.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as mi from '../../engine/index.ts';
import { trainAndEvaluate } from '../../interp/train-task.ts';
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

test.run();
