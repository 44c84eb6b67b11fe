// Brown: language modelling on the Brown corpus (interp/text/), the real-text task. A sequence is a
// window of seqLen tokens at a uniformly random offset of a split's token stream (the documents in
// corpus order, each begun by <|endoftext|>); the target at every position is the next token of the
// stream. BOS handling: no BOS is added at position 0, so a window mostly starts mid-document, as in
// GPT-style training on packed text; <|endoftext|> marks each document start inside a window, and the
// model never reads across it without seeing it. <unk> targets are scored like any other token, for
// the model and for the n-gram baselines alike.
//
// Options: vocabSize (the word vocabulary's size, its three special tokens included), seqLen, and
// heldOut (1, the default: the held-out documents, which every measurement and analysis reads; 0: the
// training documents, which only the optimiser's batches come from, via trainingOptions).
//
// Labels (NO_LABEL = -1 elsewhere), of the current input token:
//   pos                 its coarse tag (index into COARSE_TAGS; a category: task-variables.ts makes
//                       no variable of it, the indicators below carry it)
//   isNOUN ... isADP    1 where its coarse tag is that tag (INDICATOR_TAGS, the most frequent content
//                       and function tags)
//   positionInSentence  the word's index in its sentence (0 = first)
//   repeatsEarlier      1 where the next token (the target, not <unk>) already occurred in the window
//                       at or before this position: where copying from context can predict it
import type { Rng } from '../../engine/random.ts';
import { brownData } from '../text/brown-stream.ts';
import { COARSE_TAGS } from '../text/brown.ts';
import { ngramCrossEntropy } from '../text/ngram.ts';
import { EOT_ID, PAD_ID, SPECIAL_TOKENS, UNK_ID, wordTokenizerConfig, wordTokenizerJson } from '../text/word-tokenizer.ts';
import type { Baseline } from './baselines.ts';
import { emptyBatch, requireInt, type Task, type TaskOptions } from './types.ts';

export interface BrownOptions extends TaskOptions {
  /** 1 (default): held-out documents; 0: training documents */
  heldOut?: number;
}

export const INDICATOR_TAGS = ['NOUN', 'VERB', 'ADJ', 'DET', 'ADP'] as const;
export const BROWN_LABELS = ['pos', ...INDICATOR_TAGS.map((t) => `is${t}`), 'positionInSentence', 'repeatsEarlier'];

function resolve(o: BrownOptions) {
  const { vocabSize, seqLen, heldOut = 1 } = o;
  requireInt('brown', 'vocabSize', vocabSize, SPECIAL_TOKENS.length + 1);
  requireInt('brown', 'seqLen', seqLen, 2);
  requireInt('brown', 'heldOut', heldOut, 0, 1);
  return { vocabSize, seqLen, heldOut };
}

/** The argmax of a next-token model's row for each previous token (ties: the lowest id). */
function argmaxTable(vocabSize: number, p: (prev: number, next: number) => number): Int32Array {
  return Int32Array.from({ length: vocabSize }, (_, v) => {
    let best = 0;
    for (let w = 1; w < vocabSize; w++) if (p(v, w) > p(v, best)) best = w;
    return best;
  });
}
const argmaxCache = new Map<string, Int32Array>();

export const brown: Task<BrownOptions> = {
  name: 'brown',
  description: 'Predict the next word of Brown-corpus text (held-out documents); labels: part of speech, position in sentence, repeats.',
  vocabulary(opts) {
    const { vocabSize } = resolve(opts);
    return [
      { name: '<|endoftext|>', first: EOT_ID, last: EOT_ID, description: 'BOS and document separator: begins every document' },
      { name: '<|padding|>', first: PAD_ID, last: PAD_ID, description: 'padding (never in a window)' },
      { name: '<unk>', first: UNK_ID, last: UNK_ID, description: 'a word outside the vocabulary' },
      {
        name: 'words',
        first: SPECIAL_TOKENS.length,
        last: vocabSize - 1,
        description: 'the most frequent lowercased words and punctuation marks of the training documents, most frequent first',
      },
    ];
  },
  chance(opts) {
    return 1 / resolve(opts).vocabSize;
  },
  baselines(opts) {
    const { vocabSize } = resolve(opts);
    const { ngrams } = brownData(vocabSize);
    const table = (name: string, p: (a: number, b: number) => number) => {
      const key = `${vocabSize}/${name}`;
      if (!argmaxCache.has(key)) argmaxCache.set(key, argmaxTable(vocabSize, p));
      return argmaxCache.get(key)!;
    };
    const uni = table('unigram', ngrams.unigram),
      bi = table('bigram', ngrams.bigram);
    const rules: Baseline[] = [
      { name: 'most frequent word', description: 'the most frequent token of the training documents', guess: (row, t) => [uni[row[t]]] },
      {
        name: 'bigram argmax',
        description: "the bigram model's most likely next token after the current one (fitted on training documents)",
        guess: (row, t) => [bi[row[t]]],
      },
    ];
    return rules;
  },
  perplexityBaselines(opts) {
    const { vocabSize } = resolve(opts);
    const { ngrams } = brownData(vocabSize);
    return [
      {
        name: 'unigram',
        description: `add-k unigram of the training documents (k = ${ngrams.k}, chosen on a tenth of them)`,
        crossEntropy: (batches) => ngramCrossEntropy(ngrams.unigram, batches),
      },
      {
        name: 'bigram',
        description: `bigram interpolated with the unigram (lambda = ${ngrams.lambda}, chosen on a tenth of the training documents)`,
        crossEntropy: (batches) => ngramCrossEntropy(ngrams.bigram, batches),
      },
    ];
  },
  trainingOptions(opts) {
    return { ...opts, heldOut: 0 };
  },
  checkpointFiles(opts) {
    const { vocab } = brownData(resolve(opts).vocabSize);
    return { 'tokenizer.json': wordTokenizerJson(vocab), 'tokenizer_config.json': wordTokenizerConfig() };
  },
  generate(opts, rng: Rng, batch: number) {
    const { vocabSize, seqLen: T, heldOut } = resolve(opts);
    requireInt('brown', 'batch', batch, 1);
    const data = brownData(vocabSize);
    const s = heldOut ? data.heldOut : data.train;
    if (s.ids.length < T + 1) throw new Error(`brown: seqLen ${T} is longer than the split's ${s.ids.length - 1} tokens`);
    const out = emptyBatch(batch, T, BROWN_LABELS);
    const { inputs, targets, labels } = out;
    const indicator = INDICATOR_TAGS.map((tag) => ({ id: COARSE_TAGS.indexOf(tag), label: labels[`is${tag}`] }));
    for (let b = 0; b < batch; b++) {
      const row = b * T;
      const start = rng.int(0, s.ids.length - T);
      const seen = new Set<number>();
      for (let t = 0; t < T; t++) {
        const i = start + t,
          r = row + t;
        inputs[r] = s.ids[i];
        targets[r] = s.ids[i + 1];
        seen.add(s.ids[i]);
        if (targets[r] !== UNK_ID && seen.has(targets[r])) labels.repeatsEarlier[r] = 1;
        if (s.tag[i] < 0) continue;
        labels.pos[r] = s.tag[i];
        labels.positionInSentence[r] = s.positionInSentence[i];
        for (const x of indicator) if (s.tag[i] === x.id) x.label[r] = 1;
      }
    }
    return out;
  },
};
