// An SAE read against a task: the model's task loss with the SAE spliced into a hook (and with the
// hook zero- or mean-ablated, the references "loss recovered" is measured against), per sequence
// so intervals can resample sequences; correlations of latents with task variables; and the
// token contexts where a latent fires most.
import * as mi from '../../engine/index.ts';
import type { Rng } from '../../engine/random.ts';
import type { Hook, HookFn } from '../../mamba/hooks.ts';
import type { MambaLM } from '../../mamba/model.ts';
import { latentCorrelations, lossRecovered } from './analysis.ts';
import { bootstrapCI, type BootstrapOptions, type BootstrapResult } from '../stats.ts';
import type { TaskVariable } from '../task-variables.ts';
import { IGNORE_INDEX, type TaskBatch } from '../tasks/index.ts';

/** Per sequence (those with at least one scored position): mean cross-entropy and accuracy there. */
export interface SequenceScores {
  loss: Float64Array;
  accuracy: Float64Array;
  /** next-token log-probabilities at the scored positions, in order: [scored, V] */
  logProbs: Float32Array;
  /** given a reference (the clean model's scores): per sequence, mean KL(reference || this) over its scored positions */
  kl?: Float64Array;
}

/**
 * The model's scored loss and accuracy per sequence of `batch`, with `hooks` applied (none: the
 * clean model). Sequences without a scored position are skipped, the same ones in every condition.
 * With `reference` (the clean model's scores on the same batch) also the KL divergence of these
 * predictions from the reference's, for SAELens' kl_div_score; like the loss it is taken at the
 * scored positions (SAELens takes every position of its text).
 */
export async function scoredPerSequence(
  model: MambaLM,
  batch: TaskBatch,
  hooks: readonly Hook[] = [],
  reference?: SequenceScores,
): Promise<SequenceScores> {
  const [B, T] = batch.shape;
  const V = model.config.vocab_size;
  const logits = await mi.tidyAsync(async () => {
    const ids = mi.tensor(batch.inputs, [B, T], { dtype: 'int32', backend: model.backend });
    return Float32Array.from(await mi.noGrad(() => model.run(ids, { hooks }).logits).data());
  });
  const loss: number[] = [],
    acc: number[] = [],
    kl: number[] = [],
    lp: number[] = [];
  let at = 0;
  for (let b = 0; b < B; b++) {
    let sumLoss = 0,
      sumKl = 0,
      hits = 0,
      scored = 0;
    for (let t = 0; t < T; t++) {
      const target = batch.targets[b * T + t];
      if (target === IGNORE_INDEX) continue;
      const row = logits.subarray((b * T + t) * V, (b * T + t + 1) * V);
      let max = -Infinity,
        arg = 0;
      for (let v = 0; v < V; v++)
        if (row[v] > max) {
          max = row[v];
          arg = v;
        }
      let sum = 0;
      for (let v = 0; v < V; v++) sum += Math.exp(row[v] - max);
      const logZ = max + Math.log(sum);
      sumLoss += logZ - row[target];
      for (let v = 0; v < V; v++) lp.push(row[v] - logZ);
      if (reference) {
        if (reference.logProbs.length < (at + 1) * V) throw new Error('scoredPerSequence: the reference has fewer scored positions');
        for (let v = 0; v < V; v++) {
          const q = reference.logProbs[at * V + v];
          sumKl += Math.exp(q) * (q - (row[v] - logZ));
        }
      }
      at++;
      if (arg === target) hits++;
      scored++;
    }
    if (scored) {
      loss.push(sumLoss / scored);
      acc.push(hits / scored);
      kl.push(sumKl / scored);
    }
  }
  if (!loss.length) throw new Error('scoredPerSequence: the batch has no scored positions');
  return {
    loss: Float64Array.from(loss),
    accuracy: Float64Array.from(acc),
    logProbs: Float32Array.from(lp),
    ...(reference ? { kl: Float64Array.from(kl) } : {}),
  };
}

/** A hook function that replaces the activation with zeros. */
export const zeroAblation: HookFn = (t) => mi.zerosLike(t);

/** A hook function that replaces every position's activation [..., d] with a fixed mean [d]. */
export function meanAblation(mean: Float32Array): HookFn {
  return (t) => {
    const d = t.shape[t.rank - 1];
    if (mean.length !== d) throw new Error(`meanAblation: mean has ${mean.length} values, the activation [${t.shape}] has width ${d}`);
    return mi.add(mi.zerosLike(t), mi.tensor(mean, [d], { backend: t.backend, dtype: t.dtype }));
  };
}

/** Per-channel mean of rows [n, d]. */
export function columnMeans(data: Float32Array, d: number): Float32Array {
  const n = data.length / d,
    m = new Float64Array(d);
  for (let i = 0; i < data.length; i++) m[i % d] += data[i];
  return Float32Array.from(m, (v) => v / n);
}

/**
 * Loss recovered, (ablated - spliced) / (ablated - clean) of the mean per-sequence losses, with a
 * bootstrap interval that resamples sequences (the three losses of a sequence stay together).
 */
export function lossRecoveredCI(
  clean: ArrayLike<number>,
  spliced: ArrayLike<number>,
  ablated: ArrayLike<number>,
  rng: Rng,
  opts: BootstrapOptions = {},
): BootstrapResult {
  const n = clean.length;
  if (spliced.length !== n || ablated.length !== n)
    throw new Error(`lossRecoveredCI: ${n} clean, ${spliced.length} spliced and ${ablated.length} ablated losses must align`);
  const meanAt = (x: ArrayLike<number>, idx: Float64Array) => {
    let s = 0;
    for (const i of idx) s += x[i];
    return s / idx.length;
  };
  // The statistic sees resampled sequence indices, so one resample picks whole sequences.
  const statistic = (idx: Float64Array) => {
    const a = meanAt(ablated, idx),
      c = meanAt(clean, idx);
    return a === c ? 0 : lossRecovered({ clean: c, spliced: meanAt(spliced, idx), ablated: a });
  };
  return bootstrapCI(
    Float64Array.from({ length: n }, (_, i) => i),
    rng,
    statistic,
    opts,
  );
}

/**
 * Pearson correlation of every latent with a task variable, over the rows where the variable is
 * defined. z is [n, latents] over all rows.
 */
export function variableCorrelations(z: Float32Array, latents: number, v: TaskVariable): Float64Array {
  const sub = new Float32Array(v.rows.length * latents);
  v.rows.forEach((r, i) => sub.set(z.subarray(r * latents, (r + 1) * latents), i * latents));
  return latentCorrelations(sub, latents, v.values);
}

export interface LatentExample {
  /** row index (sequence * seqLen + position) */
  row: number;
  sequence: number;
  position: number;
  activation: number;
  /** the tokens from position - before to position (clipped at the sequence start) */
  context: number[];
}

/**
 * The rows where `latent` fires most, each with the tokens leading up to it (the activation at
 * position t has read tokens 0..t only, so the window ends there).
 */
export function topExamples(
  z: Float32Array,
  latents: number,
  latent: number,
  inputs: ArrayLike<number>,
  seqLen: number,
  opts: { count?: number; before?: number } = {},
): LatentExample[] {
  const count = opts.count ?? 5,
    before = opts.before ?? 8;
  if (z.length !== inputs.length * latents)
    throw new Error(`topExamples: z has ${z.length} values, expected ${inputs.length} rows x ${latents} latents`);
  if (!(latent >= 0 && latent < latents)) throw new Error(`topExamples: latent ${latent} out of range [0, ${latents})`);
  const hits: [number, number][] = [];
  for (let r = 0; r < inputs.length; r++) {
    const v = z[r * latents + latent];
    if (v > 0) hits.push([r, v]);
  }
  hits.sort((a, b) => b[1] - a[1] || a[0] - b[0]);
  return hits.slice(0, count).map(([row, activation]) => {
    const sequence = Math.floor(row / seqLen),
      position = row % seqLen;
    const start = sequence * seqLen + Math.max(0, position - before);
    const context: number[] = [];
    for (let i = start; i <= row; i++) context.push(inputs[i]);
    return { row, sequence, position, activation, context };
  });
}
