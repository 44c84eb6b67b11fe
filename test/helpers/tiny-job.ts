// A task-model training job small enough for a test: 3 steps of a 1-layer model on induction.
import type { TaskModelJob } from '../../interp/train-task.ts';

export function tinyJob(dir: string, steps = 3): TaskModelJob {
  return {
    task: 'induction',
    seed: 0,
    rngSeed: 'test/train-collect',
    taskOptions: { vocabSize: 8, seqLen: 12, occurrences: 3 } as TaskModelJob['taskOptions'],
    stages: [],
    model: { hiddenSize: 8, layers: 1, stateSize: 4, expand: 2, convKernel: 4 },
    steps,
    batchSize: 4,
    lr: 1e-2,
    warmupSteps: 1,
    weightDecay: 0.01,
    clipNorm: 1,
    evalEvery: 0,
    stopAccuracy: 1,
    evalBatches: 1,
    evalLengths: [16],
    dir,
  };
}
