// Unigram and bigram language models over token ids: the baselines a language model's held-out
// perplexity is read against. The unigram is add-k smoothed, P(w) = (c(w) + k) / (N + kV); the
// bigram interpolates its maximum-likelihood estimate with that unigram (Jelinek-Mercer),
// P(w | v) = lambda c(v, w) / c(v) + (1 - lambda) P(w), and is the unigram where v was never a
// context. k and lambda are chosen on training data only (fitNgrams: counts from part of the
// training streams, the choice by cross-entropy on the rest, then the counts of all of them), so the
// held-out documents they are scored on play no part. Both score exactly the positions a model is
// scored on: the next token after each input token of a window (ngramCrossEntropy).
import { scoredMean, type TaskBatch } from '../tasks/types.ts';

export interface NgramCounts {
  vocabSize: number;
  unigram: Float64Array;
  total: number;
  /** c(v, w) keyed v * vocabSize + w */
  bigram: Map<number, number>;
  /** c(v): how often v is followed by a token */
  context: Float64Array;
}

/** Unigram and bigram counts of token streams (bigrams inside a stream only). */
export function countNgrams(streams: readonly ArrayLike<number>[], vocabSize: number): NgramCounts {
  const unigram = new Float64Array(vocabSize),
    context = new Float64Array(vocabSize);
  const bigram = new Map<number, number>();
  let total = 0;
  for (const s of streams) {
    for (let i = 0; i < s.length; i++) {
      const w = s[i];
      if (!(Number.isInteger(w) && w >= 0 && w < vocabSize)) throw new Error(`countNgrams: token ${w} outside [0, ${vocabSize})`);
      unigram[w]++;
      total++;
      if (i === 0) continue;
      const key = s[i - 1] * vocabSize + w;
      bigram.set(key, (bigram.get(key) ?? 0) + 1);
      context[s[i - 1]]++;
    }
  }
  return { vocabSize, unigram, total, bigram, context };
}

/** Add-k unigram probabilities. */
export function unigramProbs(c: NgramCounts, k: number): Float64Array {
  if (!(k > 0)) throw new Error(`unigramProbs: k must be > 0, got ${k}`);
  const denom = c.total + k * c.vocabSize;
  return Float64Array.from(c.unigram, (n) => (n + k) / denom);
}

/** A next-token model: P(next | prev). */
export type NextTokenProb = (prev: number, next: number) => number;

export const unigramModel =
  (uni: Float64Array): NextTokenProb =>
  (_prev, next) =>
    uni[next];

export function bigramModel(c: NgramCounts, uni: Float64Array, lambda: number): NextTokenProb {
  if (!(lambda >= 0 && lambda < 1)) throw new Error(`bigramModel: lambda must be in [0, 1), got ${lambda}`);
  return (prev, next) => {
    const cv = c.context[prev];
    if (!cv) return uni[next];
    return (lambda * (c.bigram.get(prev * c.vocabSize + next) ?? 0)) / cv + (1 - lambda) * uni[next];
  };
}

/** Mean -log P over the bigrams of token streams (nats per token). */
export function streamCrossEntropy(p: NextTokenProb, streams: readonly ArrayLike<number>[]): number {
  let sum = 0,
    n = 0;
  for (const s of streams)
    for (let i = 1; i < s.length; i++) {
      sum -= Math.log(p(s[i - 1], s[i]));
      n++;
    }
  if (!n) throw new Error('streamCrossEntropy: no bigrams');
  return sum / n;
}

export const K_GRID = [0.01, 0.03, 0.1, 0.3, 1, 3, 10, 30];
export const LAMBDA_GRID = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95];

export interface FittedNgrams {
  k: number;
  lambda: number;
  unigram: NextTokenProb;
  bigram: NextTokenProb;
  /** dev cross-entropy (nats) of the chosen k and lambda */
  devUnigram: number;
  devBigram: number;
}

/**
 * k and lambda chosen on `dev` with counts from `fit` (both parts of the training data), then the
 * two models with the counts of fit and dev together.
 */
export function fitNgrams(fit: readonly ArrayLike<number>[], dev: readonly ArrayLike<number>[], vocabSize: number): FittedNgrams {
  const part = countNgrams(fit, vocabSize);
  const best = <T>(grid: T[], ce: (x: T) => number) => grid.map((x) => ({ x, ce: ce(x) })).reduce((a, b) => (b.ce < a.ce ? b : a));
  const k = best(K_GRID, (k) => streamCrossEntropy(unigramModel(unigramProbs(part, k)), dev));
  const partUni = unigramProbs(part, k.x);
  const lambda = best(LAMBDA_GRID, (l) => streamCrossEntropy(bigramModel(part, partUni, l), dev));
  const all = countNgrams([...fit, ...dev], vocabSize);
  const uni = unigramProbs(all, k.x);
  return {
    k: k.x,
    lambda: lambda.x,
    unigram: unigramModel(uni),
    bigram: bigramModel(all, uni, lambda.x),
    devUnigram: k.ce,
    devBigram: lambda.ce,
  };
}

export interface WindowCrossEntropy {
  /** per sequence: mean -log P of its scored targets (nats) */
  perSequence: number[];
  /** over every scored position; perplexity = exp(mean) */
  mean: number;
  scored: number;
}

/** Cross-entropy of a next-token model at a batch's scored positions: P(targets[t] | inputs[t]). */
export function ngramCrossEntropy(p: NextTokenProb, batches: readonly TaskBatch[]): WindowCrossEntropy {
  return scoredMean(batches, (k, i) => -Math.log(p(batches[k].inputs[i], batches[k].targets[i])), 'ngramCrossEntropy');
}
