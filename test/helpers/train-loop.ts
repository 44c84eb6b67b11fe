// What the training-loop suites share (test/mamba/train.test.ts and train-deferred.test.ts, both on
// mamba/train.ts): a 1-layer toy model, a task it can learn in a few steps, run directories that
// the suite removes when it ends, and 12-step training options that evaluate and checkpoint at
// step 6.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Test } from 'uvu';
import { makeConfig } from '../../mamba/config.ts';
import type { TrainOptions } from '../../mamba/train.ts';

export const TOY_CONFIG = makeConfig({ vocab_size: 12, hidden_size: 16, num_hidden_layers: 1, state_size: 4, expand: 2 });

/** Rows counting upward mod V from a step-dependent start: next token = current + 1. */
export const counting = (step: number, rows = 4, L = 12) =>
  Array.from({ length: rows }, (_, r) => Array.from({ length: L }, (_, t) => (step * 7 + r * 3 + t) % TOY_CONFIG.vocab_size));

/**
 * A maker of fresh temporary directories (named prefix...): those made so far are removed after
 * each of the suites, so a file's later suites (run after the first one's hook) clean up too.
 */
export function tempDirs(suites: Test[], prefix: string): () => Promise<string> {
  const dirs: string[] = [];
  for (const s of suites)
    s.after(async () => {
      for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
    });
  return async () => {
    const d = await mkdtemp(join(tmpdir(), prefix));
    dirs.push(d);
    return d;
  };
}

/** 12 steps on `counting` batches, evaluated on `evalSteps`' batches and checkpointed at step 6. */
export const toyTraining = (outDir: string, evalSteps: number[]): TrainOptions => ({
  outDir,
  steps: 12,
  batch: (s) => counting(s),
  evalBatches: evalSteps.map((s) => counting(s)),
  lr: 2e-2,
  warmupSteps: 2,
  evalEvery: 6,
  checkpointEvery: 6,
  logEvery: 6,
  log: () => undefined,
});
