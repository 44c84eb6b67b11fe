// Training an SAE with the run's SAE settings (config.sae): step 3 trains its SAEs this way, and
// step 10 trains the SAEs of the seeds step 3 left out the same way, so every seed's SAE compares.
// Given the collection's sequence length, training uses the training split of the rows only
// (saeSplit: whole sequences, the last SAE_HELD_OUT_FRACTION of them held out for the metrics).
import { saeMetrics, trainSae, type Sae, type SaeKind, type SaeMetrics, type TrainSaeOptions } from '../interp/sae/index.ts';
import type { StepContext } from './step.ts';

/** The fraction of a collection's sequences that no SAE trains on: step 3's L0, FVU and dead fraction are measured there. */
export const SAE_HELD_OUT_FRACTION = 0.2;

export interface ActivationSplit {
  train: { data: Float32Array; rows: number };
  heldOut: { data: Float32Array; rows: number };
  trainSequences: number;
  heldOutSequences: number;
}

/**
 * Splits collected activations [sequences * seqLen, dim] by whole sequence: the last
 * ceil(SAE_HELD_OUT_FRACTION x sequences) sequences (at least one, and at least one left to train
 * on) are held out, so no held-out row shares a sequence (a context) with a training row.
 */
export function saeSplit(acts: { data: Float32Array; dim: number }, seqLen: number): ActivationSplit {
  const rows = acts.data.length / acts.dim;
  const sequences = rows / seqLen;
  if (!Number.isInteger(sequences) || sequences < 2)
    throw new Error(`saeSplit: ${rows} rows are not >= 2 whole sequences of length ${seqLen}`);
  const heldOutSequences = Math.min(sequences - 1, Math.max(1, Math.ceil(SAE_HELD_OUT_FRACTION * sequences)));
  const trainSequences = sequences - heldOutSequences;
  const cut = trainSequences * seqLen * acts.dim;
  return {
    train: { data: acts.data.subarray(0, cut), rows: trainSequences * seqLen },
    heldOut: { data: acts.data.subarray(cut), rows: heldOutSequences * seqLen },
    trainSequences,
    heldOutSequences,
  };
}

/** L0, FVU, explained variance and dead fraction on the held-out rows of `split` only (never the training rows). */
export function heldOutMetrics(sae: Sae, split: ActivationSplit): Promise<SaeMetrics> {
  return saeMetrics(sae, split.heldOut.data);
}

/**
 * An SAE of `kind` on activations [rows, dim], with config.sae's width, sparsity and optimiser
 * settings. With acts.seqLen it trains on saeSplit's training rows only (step 3 does this, so its
 * metrics are on rows the SAE never saw); without, on every row.
 */
export function trainConfiguredSae(
  ctx: StepContext,
  acts: { data: Float32Array; dim: number; seqLen?: number },
  kind: SaeKind,
  seed: number,
  onProgress: TrainSaeOptions['onProgress'],
): Promise<Sae> {
  const cfg = ctx.config.sae;
  const data = acts.seqLen ? saeSplit(acts, acts.seqLen).train.data : acts.data;
  return trainSae(data, {
    kind,
    d: acts.dim,
    latents: cfg.latentsMultiplier * acts.dim,
    k: cfg.k,
    l1: cfg.l1,
    steps: cfg.steps,
    batchSize: cfg.batchSize,
    lr: cfg.lr,
    seed,
    backend: ctx.backend,
    onProgress,
  });
}
