// Worker-thread entry for training task models in parallel (interp/worker-pool.ts): trains each
// job it is sent on the CPU backend and reports the steps done as progress (all of job.steps once
// it is done, so a model that stopped early counts as finished).
import * as mi from '../engine/index.ts';
import { trainAndEvaluate, type TaskModelJob } from './train-task.ts';
import { serveJobs } from './worker-pool.ts';

mi.setBackend(mi.cpuBackend());
serveJobs(async (job: TaskModelJob, progress) => {
  let last = 0;
  const record = await trainAndEvaluate(job, (step) => {
    last = step;
    progress(step);
  });
  if (last > 0 && last < job.steps) progress(job.steps);
  return record;
});
