// What every toy task generator returns, so steps and probes can treat tasks alike.
import type { Rng } from '../../engine/random.ts';
import type { Baseline } from './baselines.ts';

/** Target value at positions that are not scored (PyTorch's cross-entropy ignore_index). */
export const IGNORE_INDEX = -100;
/** Label value at positions where a per-position task variable does not apply. */
export const NO_LABEL = -1;

export interface TaskOptions {
  vocabSize: number;
  /** Sequence length T (every sequence in a batch has exactly this length). */
  seqLen: number;
}

export interface TaskBatch {
  /** Token ids, row-major [batch, T]. */
  inputs: Int32Array;
  /** The token the model should output at each position, IGNORE_INDEX where not scored. [batch, T] */
  targets: Int32Array;
  /** Per-position task variables, each [batch, T], NO_LABEL where the variable does not apply. */
  labels: Record<string, Int32Array>;
  shape: [batch: number, seqLen: number];
  /** where each sequence came from, for tasks that read real text (file, document, first token's offset) */
  sources?: { source: string; doc: number; start: number }[];
}

/** One named token or token range of a task's vocabulary. */
export interface VocabEntry {
  name: string;
  first: number;
  last: number;
  description: string;
}

/** A language-model baseline (interp/text/ngram.ts): cross-entropy at the scored positions of batches. */
export interface PerplexityBaseline {
  name: string;
  description: string;
  /** per sequence and overall mean -log P (nats per scored token); perplexity = exp(mean) */
  crossEntropy(batches: readonly TaskBatch[]): { perSequence: number[]; mean: number };
}

export interface Task<O extends TaskOptions = TaskOptions> {
  name: string;
  description: string;
  /** The documented layout of token ids for these options. */
  vocabulary(opts: O): VocabEntry[];
  /** Accuracy of the best guess that ignores the context (uniform over the possible answers). */
  chance(opts: O): number;
  /** Simple rules that read the context without solving the task (baselines.ts); the strongest is the control. */
  baselines(opts: O): Baseline[];
  generate(opts: O, rng: Rng, batch: number): TaskBatch;
  /**
   * The options of the batches a model is trained on, where they differ from those it is measured
   * and analysed on (a corpus's training documents against its held-out ones); default: the same
   * (a toy task's fresh random sequences are held out already).
   */
  trainingOptions?(opts: O): O;
  /**
   * Language modelling (a target at every position): next-token accuracy says little there, so the
   * learning gate is held-out perplexity below the strongest (lowest) of these baselines.
   */
  perplexityBaselines?(opts: O): PerplexityBaseline[];
  /** JSON files to write beside a trained checkpoint, by name (a text task's tokenizer.json) */
  checkpointFiles?(opts: O): Record<string, object>;
}

export function requireInt(task: string, field: string, value: number, min: number, max = Infinity): void {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new Error(`${task}: ${field} must be an integer in [${min}, ${max}], got ${value}`);
  }
}

export function emptyBatch(batch: number, seqLen: number, labelNames: string[]): TaskBatch {
  const size = batch * seqLen;
  return {
    inputs: new Int32Array(size),
    targets: new Int32Array(size).fill(IGNORE_INDEX),
    labels: Object.fromEntries(labelNames.map((name) => [name, new Int32Array(size).fill(NO_LABEL)])),
    shape: [batch, seqLen],
  };
}

/** k sorted distinct integers from [lo, hi), uniformly over such sets. */
export function sortedSample(rng: Rng, lo: number, hi: number, k: number): number[] {
  return rng
    .sample(hi - lo, k)
    .map((v) => v + lo)
    .sort((a, b) => a - b);
}

/** Accuracy of `predictions` ([batch, T] token ids, e.g. argmax logits) at the scored positions. */
export function scoredAccuracy(batch: TaskBatch, predictions: ArrayLike<number>): number {
  if (predictions.length !== batch.targets.length) {
    throw new Error(`scoredAccuracy: predictions has ${predictions.length} values, targets has ${batch.targets.length}`);
  }
  let scored = 0,
    hits = 0;
  batch.targets.forEach((t, i) => {
    if (t === IGNORE_INDEX) return;
    scored++;
    if (predictions[i] === t) hits++;
  });
  if (!scored) throw new Error('scoredAccuracy: the batch has no scored positions');
  return hits / scored;
}

export interface ScoredMean {
  /** per sequence with scored positions: the mean of its scored positions' values */
  perSequence: number[];
  /** over every scored position of the batches */
  mean: number;
  scored: number;
}

/**
 * The mean of a per-position value (a loss) over the scored positions (targets not IGNORE_INDEX),
 * per sequence and overall; `valueAt(k, i)` is the value at flat index i of batch k. `who` names the
 * caller in the error for batches with nothing scored.
 */
export function scoredMean(batches: readonly TaskBatch[], valueAt: (k: number, i: number) => number, who: string): ScoredMean {
  const perSequence: number[] = [];
  let sum = 0,
    scored = 0;
  batches.forEach((batch, k) => {
    const [B, T] = batch.shape;
    for (let b = 0; b < B; b++) {
      let s = 0,
        n = 0;
      for (let i = b * T; i < (b + 1) * T; i++) {
        if (batch.targets[i] === IGNORE_INDEX) continue;
        s += valueAt(k, i);
        n++;
      }
      if (!n) continue;
      perSequence.push(s / n);
      sum += s;
      scored += n;
    }
  });
  if (!scored) throw new Error(`${who}: the batches have no scored positions`);
  return { perSequence, mean: sum / scored, scored };
}
