// interp/worker-pool.ts with the training worker (interp/train-worker.ts): a model trained in a
// worker thread is bit-identical to one trained in-process, and a failing job rejects with its error.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as mi from '../../engine/index.ts';
import { trainAndEvaluate, type TaskModelJob } from '../../interp/train-task.ts';
import { runInWorkers } from '../../interp/worker-pool.ts';
import { tinyJob } from '../helpers/tiny-job.ts';

mi.setBackend(mi.cpuBackend());
const tmp = mkdtempSync(join(tmpdir(), 'mi-worker-pool-'));
process.once('exit', () => rmSync(tmp, { recursive: true, force: true }));

test('runInWorkers: a model trained in a worker thread is bit-identical to one trained in-process', async () => {
  const serial = tinyJob(join(tmp, 'serial'));
  const threaded = tinyJob(join(tmp, 'threaded'));
  const a = await trainAndEvaluate(serial);
  const progress: unknown[] = [];
  const [b] = await runInWorkers<TaskModelJob, Awaited<ReturnType<typeof trainAndEvaluate>>>(
    new URL('../../interp/train-worker.ts', import.meta.url),
    [threaded],
    { workers: 2, onProgress: (p) => progress.push(p) },
  );
  assert.equal(progress, [1, 2, 3]);
  assert.is(b.accuracy, a.accuracy);
  assert.is(b.finalLoss, a.finalLoss);
  assert.ok(readFileSync(join(threaded.dir, 'model.safetensors')).equals(readFileSync(join(serial.dir, 'model.safetensors'))));
});

test('runInWorkers: a failing job rejects with its error', async () => {
  const bad = { ...tinyJob(join(tmp, 'bad')), task: 'no-such-task' };
  try {
    await runInWorkers(new URL('../../interp/train-worker.ts', import.meta.url), [bad], { workers: 1 });
    assert.unreachable('should have thrown');
  } catch (e) {
    assert.match((e as Error).message, /unknown task 'no-such-task'/);
  }
});

test.run();
